/* change.h — changes, batches and version vectors as bytes (internal, pure).
 *
 * A change is what one local transaction made (DESIGN.md "Changes and causality"), encoded
 * as a msgpack array:
 *   [1, actor, seq, hlc, prev(bin 32), deps[[actor, seq]...], user, ops[...]]
 *   op = [type, collection, record, field, kind, value]
 * with (type: kind, value): SET, DEL (register; value, nil), CLEAR (register, field "": a
 * record delete; nil), INCR (counter; int delta), ADD, REMOVE (set; the member), APPEND (log;
 * the entry). Field "" is the record's existence register. An unknown type is REP_EVERSION.
 * deps is the writer's version vector when it wrote, sorted by actor, without its own actor
 * (its own previous change is implied by seq). prev is the hash of the actor's previous
 * change (zeros for seq 1): a per-actor hash chain that exposes forks. A change's hash is
 * BLAKE2b-256 of its bytes; changes are stored and relayed as exactly those bytes.
 *
 * A batch (also the content of a bundle file) and an encoded version vector are framed as
 *   magic(4: "RPLB" / "RPLV") version(1) flags(1) body(msgpack) checksum(32)
 * where the checksum is BLAKE2b-256 of everything before it, so any flipped bit or
 * truncation is caught before anything is parsed. Bodies:
 *   batch: [office(bin 16), office name, sender actor, [change(bin)...]]
 *   vv:    [office(bin 16), [[actor, seq]...]]
 * flags: REP_FRAME_ZSTD (batches only) when the body is one zstd frame, used for bodies of
 * REP_FRAME_ZIP_MIN bytes or more when it makes them smaller; other bits are reserved (sealed
 * and signed content) and are REP_EVERSION here.
 */
#ifndef REP_CHANGE_H
#define REP_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "keys.h"
#include "replica.h"

#define REP_CHANGE_VERSION 1
#define REP_FRAME_VERSION 1
#define REP_FRAME_ZSTD 0x01
#define REP_FRAME_ZIP_MIN 4096
#define REP_FRAME_HDR 6

typedef struct rep__op {
    uint8_t type;               /* rep_op_type_t */
    uint8_t kind;               /* rep_kind_t */
    const char *coll, *rec, *field;
    uint32_t colln, recn, fieldn;
    const uint8_t *val;         /* canonical msgpack, SET only */
    uint32_t valn;
} rep__op_t;

typedef struct rep__change {
    uint64_t actor, seq, hlc;
    uint8_t prev[REP_HASH_BYTES];
    rep_vv_entry_t *deps;
    size_t ndeps;
    const char *user;
    uint32_t usern;
    rep__op_t *ops;
    size_t nops;
    /* set by rep__change_decode: the bytes it was read from and their hash */
    const uint8_t *bytes;
    size_t len;
    uint8_t hash[REP_HASH_BYTES];
} rep__change_t;

/* Append the encoding of c (its bytes/len/hash fields are ignored). */
int rep__change_encode(rep__buf_t *b, const rep__change_t *c);
/* Decode and validate a change: every name, kind, op and value is checked (REP_ECORRUPT);
 * a newer change version is REP_EVERSION. out borrows strings and values from p and owns
 * its deps and ops arrays: release with rep__change_clear(). */
int rep__change_decode(const uint8_t *p, size_t n, rep__change_t *out);
void rep__change_clear(rep__change_t *c);

/* A verified batch: views of each change's bytes inside the batch. */
typedef struct rep__batch {
    uint8_t *owned;            /* the decompressed body the views below point into, if any */
    uint8_t office[REP_OFFICE_ID_BYTES];
    const char *office_name;   /* not NUL-terminated */
    uint32_t office_namen;
    uint64_t sender;
    size_t n;
    struct {
        const uint8_t *p;
        size_t n;
    } *changes;
} rep__batch_t;

/* Frame a batch of changes. begin writes the header; add appends one change's bytes; end
 * patches the count and appends the checksum. */
typedef struct rep__batch_writer {
    rep__buf_t buf;
    size_t count_at;
    uint32_t count;
} rep__batch_writer_t;
void rep__batch_begin(rep__batch_writer_t *w, const uint8_t office[REP_OFFICE_ID_BYTES],
                      const char *office_name, uint64_t sender);
void rep__batch_add(rep__batch_writer_t *w, const uint8_t *p, size_t n);
/* Size the batch has once the next change of n bytes is added and it is ended, before
 * compression (which only makes it smaller). */
size_t rep__batch_size_with(const rep__batch_writer_t *w, size_t n);
int rep__batch_end(rep__batch_writer_t *w, uint8_t **out, size_t *len);

/* Verify the frame and read the body; out->changes is malloc'd (rep__batch_clear()).
 * REP_ECORRUPT, REP_EVERSION. */
int rep__batch_decode(const uint8_t *p, size_t n, rep__batch_t *out);
void rep__batch_clear(rep__batch_t *b);

/* Frames (batches, version vectors, snapshots): begin writes magic, version and flags 0; end
 * compresses the body (with zip, when REP_FRAME_ZIP_MIN bytes or more and it gets smaller),
 * appends the checksum and hands the bytes out (b is reset, also on error). open checks magic,
 * checksum and version (flags outside allowed are REP_EVERSION) and expands a compressed body:
 * the body is [*body, *body + *bodyn), inside p or in *owned (malloc'd, NULL when not). */
void rep__frame_begin(rep__buf_t *b, const char magic[4]);
int rep__frame_end(rep__buf_t *b, bool zip, uint8_t **out, size_t *len);
int rep__frame_open(const uint8_t *p, size_t n, const char magic[4], unsigned allowed,
                    const uint8_t **body, size_t *bodyn, uint8_t **owned);

/* A reader shared by the frame bodies: a name checked as rep__name_check() does
 * (REP_ECORRUPT when it fails). */
int rep__rd_name(rep__rd_t *r, const char **s, uint32_t *n, size_t max, bool allow_empty);

/* Version vectors as bytes. */
int rep__vv_encode(const uint8_t office[REP_OFFICE_ID_BYTES], const rep_vv_entry_t *vv, size_t n,
                   uint8_t **out, size_t *len);
/* *vv is malloc'd (free()), sorted by actor; duplicate actors are REP_ECORRUPT. */
int rep__vv_decode(const uint8_t *p, size_t n, uint8_t office[REP_OFFICE_ID_BYTES],
                   rep_vv_entry_t **vv, size_t *nvv);

#endif /* REP_CHANGE_H */
