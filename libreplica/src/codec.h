/* codec.h — byte buffers, msgpack writing, and a bounded msgpack reader (internal).
 *
 * Writing goes through msgpack-c's packer into a growable buffer. Reading never hands
 * untrusted bytes to msgpack-c's unpacker (it allocates for a declared count before reading
 * a single element): rep__rd_* read one item at a time from a [p, end) window, check every
 * declared length against the bytes that remain, and fail with REP_ECORRUPT otherwise.
 * The formats read here are fixed schemas, so nesting depth is bounded by the code itself.
 *
 * Values are encoded canonically: one msgpack form per value (the shortest integer and
 * string/bin headers, doubles always as float64 with one NaN), so equal values have equal
 * bytes. The decoder rejects any other form.
 */
#ifndef REP_CODEC_H
#define REP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "replica.h"

/* ---- Growable buffer: errors are sticky, checked once at the end ---- */
typedef struct rep__buf {
    uint8_t *p;
    size_t len, cap;
    int err;            /* 0, or -ENOMEM after a failed growth */
} rep__buf_t;

void rep__buf_init(rep__buf_t *b);
void rep__buf_free(rep__buf_t *b);
/* Ensure room for n more bytes; 0 or -ENOMEM (also recorded in b->err). */
int rep__buf_reserve(rep__buf_t *b, size_t n);
void rep__buf_add(rep__buf_t *b, const void *p, size_t n);
/* Hand the bytes to the caller (malloc'd; NULL when empty) and reset the buffer. */
uint8_t *rep__buf_take(rep__buf_t *b, size_t *len);

/* A msgpack packer writing into b. */
void rep__packer_init(msgpack_packer *pk, rep__buf_t *b);

/* ---- Values ---- */
/* Append the canonical msgpack form of v. -EINVAL for a malformed value (bad type,
 * a string that is not UTF-8), REP_ETOOBIG over REP_MAX_VALUE. */
int rep__value_encode(rep__buf_t *b, const rep_value_t *v);
/* Check v without encoding it: same returns as rep__value_encode. */
int rep__value_check(const rep_value_t *v);
/* Decode exactly one canonical value filling [p, p+n). On success *out borrows from p (strings
 * are NOT NUL-terminated here). REP_ECORRUPT otherwise. */
int rep__value_decode(const uint8_t *p, size_t n, rep_value_t *out);

/* 1 if [s, s+n) is well-formed UTF-8 (no overlongs, no surrogates); NUL bytes are allowed. */
bool rep__utf8_valid(const char *s, size_t n);

/* A view of bytes held elsewhere. */
typedef struct rep__bytes {
    const uint8_t *p;
    size_t n;
} rep__bytes_t;

/* ---- Bounded reader ---- */
typedef struct rep__rd {
    const uint8_t *p, *end;
} rep__rd_t;

static inline void
rep__rd_init(rep__rd_t *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->end = p + n;
}

static inline size_t
rep__rd_left(const rep__rd_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Each returns 0 or REP_ECORRUPT and consumes the item only on success. */
int rep__rd_array(rep__rd_t *r, uint32_t *n);      /* n <= bytes left */
int rep__rd_uint(rep__rd_t *r, uint64_t *v);
int rep__rd_str(rep__rd_t *r, const char **s, uint32_t *n);
int rep__rd_bin(rep__rd_t *r, const uint8_t **p, uint32_t *n);
int rep__rd_nil(rep__rd_t *r);
int rep__rd_bool(rep__rd_t *r, bool *b);
/* A bin of exactly n bytes, copied to out. */
int rep__rd_fixed(rep__rd_t *r, uint8_t *out, size_t n);
/* 1 if the next item is nil (not consumed), else 0. */
int rep__rd_is_nil(const rep__rd_t *r);
/* Skip one canonical value (as rep__value_decode would read), returning its extent. */
int rep__rd_value(rep__rd_t *r, const uint8_t **p, size_t *n);

#endif /* REP_CODEC_H */
