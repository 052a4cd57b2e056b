/* codec.c — byte buffers, canonical values, bounded msgpack reader. See codec.h. */
#include "codec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void
rep__buf_init(rep__buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void
rep__buf_free(rep__buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int
rep__buf_reserve(rep__buf_t *b, size_t n)
{
    if (b->err)
        return b->err;
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->err = -ENOMEM;
            return b->err;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->err = -ENOMEM;
        return b->err;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void
rep__buf_add(rep__buf_t *b, const void *p, size_t n)
{
    if (n == 0 || rep__buf_reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

uint8_t *
rep__buf_take(rep__buf_t *b, size_t *len)
{
    uint8_t *p = b->p;
    *len = b->len;
    rep__buf_init(b);
    return p;
}

static int
buf_write(void *data, const char *p, size_t n)
{
    rep__buf_t *b = data;
    rep__buf_add(b, p, n);
    return b->err;
}

void
rep__packer_init(msgpack_packer *pk, rep__buf_t *b)
{
    msgpack_packer_init(pk, b, buf_write);
}

/* ---- UTF-8 ---- */
bool
rep__utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - s) <= need)
            return false;
        for (size_t i = 1; i <= need; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += need + 1;
    }
    return true;
}

/* ---- Values ---- */
static const uint64_t canonical_nan = 0x7ff8000000000000ull;

int
rep__value_check(const rep_value_t *v)
{
    if (!v)
        return -EINVAL;
    switch (v->type) {
    case REP_NULL:
    case REP_INT:
    case REP_DOUBLE:
        return 0;
    case REP_BOOL:
        return v->u.b == 0 || v->u.b == 1 ? 0 : -EINVAL;
    case REP_STRING:
    case REP_BYTES:
        if (v->u.s.len > REP_MAX_VALUE)
            return REP_ETOOBIG;
        if (v->u.s.len && !v->u.s.ptr)
            return -EINVAL;
        if (v->type == REP_STRING && !rep__utf8_valid(v->u.s.ptr, v->u.s.len))
            return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

int
rep__value_encode(rep__buf_t *b, const rep_value_t *v)
{
    REP_TRY(rep__value_check(v));
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    switch (v->type) {
    case REP_NULL:
        msgpack_pack_nil(&pk);
        break;
    case REP_BOOL:
        v->u.b ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
        break;
    case REP_INT:
        msgpack_pack_int64(&pk, v->u.i);
        break;
    case REP_DOUBLE:
        if (isnan(v->u.d)) {
            uint8_t nan[9] = {0xcb};
            rep__put_be64(nan + 1, canonical_nan);
            rep__buf_add(b, nan, sizeof nan);
        } else {
            msgpack_pack_double(&pk, v->u.d);
        }
        break;
    case REP_STRING:
        msgpack_pack_str(&pk, v->u.s.len);
        msgpack_pack_str_body(&pk, v->u.s.ptr, v->u.s.len);
        break;
    case REP_BYTES:
        msgpack_pack_bin(&pk, v->u.s.len);
        msgpack_pack_bin_body(&pk, v->u.s.ptr, v->u.s.len);
        break;
    }
    return b->err;
}

/* ---- Bounded reader ---- */
#define CORRUPT REP_ECORRUPT

static int
need(const rep__rd_t *r, size_t n)
{
    return rep__rd_left(r) >= n ? 0 : CORRUPT;
}

/* Read a big-endian integer of w bytes at r->p + 1 (after the tag). */
static uint64_t
tail_be(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < w; i++)
        v = (v << 8) | p[1 + i];
    return v;
}

int
rep__rd_array(rep__rd_t *r, uint32_t *n)
{
    REP_TRY(need(r, 1));
    uint8_t t = r->p[0];
    uint64_t v;
    size_t hdr;
    if ((t & 0xf0) == 0x90) {
        v = t & 0x0f, hdr = 1;
    } else if (t == 0xdc) {
        REP_TRY(need(r, 3));
        v = tail_be(r->p, 2), hdr = 3;
    } else if (t == 0xdd) {
        REP_TRY(need(r, 5));
        v = tail_be(r->p, 4), hdr = 5;
    } else {
        return CORRUPT;
    }
    /* every element takes at least one byte */
    if (v > rep__rd_left(r) - hdr)
        return CORRUPT;
    r->p += hdr;
    *n = (uint32_t)v;
    return 0;
}

int
rep__rd_uint(rep__rd_t *r, uint64_t *v)
{
    REP_TRY(need(r, 1));
    uint8_t t = r->p[0];
    unsigned w;
    if (t < 0x80) {
        *v = t;
        r->p++;
        return 0;
    }
    switch (t) {
    case 0xcc: w = 1; break;
    case 0xcd: w = 2; break;
    case 0xce: w = 4; break;
    case 0xcf: w = 8; break;
    default: return CORRUPT;
    }
    REP_TRY(need(r, 1 + w));
    *v = tail_be(r->p, w);
    r->p += 1 + w;
    return 0;
}

/* Header of a str (is_bin 0) or bin (1); returns the body length, checks it is there. */
static int
rd_blob(rep__rd_t *r, int is_bin, const uint8_t **p, uint32_t *n, size_t *hdr_out)
{
    REP_TRY(need(r, 1));
    uint8_t t = r->p[0];
    uint64_t len;
    size_t hdr;
    if (!is_bin && (t & 0xe0) == 0xa0) {
        len = t & 0x1f, hdr = 1;
    } else if (t == (is_bin ? 0xc4 : 0xd9)) {
        REP_TRY(need(r, 2));
        len = tail_be(r->p, 1), hdr = 2;
    } else if (t == (is_bin ? 0xc5 : 0xda)) {
        REP_TRY(need(r, 3));
        len = tail_be(r->p, 2), hdr = 3;
    } else if (t == (is_bin ? 0xc6 : 0xdb)) {
        REP_TRY(need(r, 5));
        len = tail_be(r->p, 4), hdr = 5;
    } else {
        return CORRUPT;
    }
    if (len > rep__rd_left(r) - hdr)
        return CORRUPT;
    *p = r->p + hdr;
    *n = (uint32_t)len;
    *hdr_out = hdr;
    r->p += hdr + len;
    return 0;
}

int
rep__rd_str(rep__rd_t *r, const char **s, uint32_t *n)
{
    size_t hdr;
    const uint8_t *p;
    REP_TRY(rd_blob(r, 0, &p, n, &hdr));
    *s = (const char *)p;
    return 0;
}

int
rep__rd_bin(rep__rd_t *r, const uint8_t **p, uint32_t *n)
{
    size_t hdr;
    return rd_blob(r, 1, p, n, &hdr);
}

int
rep__rd_nil(rep__rd_t *r)
{
    REP_TRY(need(r, 1));
    if (r->p[0] != 0xc0)
        return CORRUPT;
    r->p++;
    return 0;
}

int
rep__rd_fixed(rep__rd_t *r, uint8_t *out, size_t n)
{
    const uint8_t *p;
    uint32_t len;
    rep__rd_t save = *r;
    REP_TRY(rep__rd_bin(r, &p, &len));
    if (len != n) {
        *r = save;
        return CORRUPT;
    }
    memcpy(out, p, n);
    return 0;
}

int
rep__rd_bool(rep__rd_t *r, bool *b)
{
    REP_TRY(need(r, 1));
    if (r->p[0] != 0xc2 && r->p[0] != 0xc3)
        return CORRUPT;
    *b = r->p[0] == 0xc3;
    r->p++;
    return 0;
}

int
rep__rd_is_nil(const rep__rd_t *r)
{
    return rep__rd_left(r) >= 1 && r->p[0] == 0xc0;
}

/* The shortest header a str/bin of len bytes takes. */
static size_t
blob_hdr_len(int is_bin, uint64_t len)
{
    if (!is_bin && len < 32)
        return 1;
    if (len < 256)
        return 2;
    return len < 65536 ? 3 : 5;
}

/* Read one canonical value into *out (borrowing). */
static int
rd_value(rep__rd_t *r, rep_value_t *out)
{
    REP_TRY(need(r, 1));
    const uint8_t *start = r->p;
    uint8_t t = start[0];
    memset(out, 0, sizeof *out);

    if (t == 0xc0) {
        out->type = REP_NULL;
        r->p++;
        return 0;
    }
    if (t == 0xc2 || t == 0xc3) {
        out->type = REP_BOOL;
        out->u.b = t == 0xc3;
        r->p++;
        return 0;
    }
    if (t == 0xcb) {
        REP_TRY(need(r, 9));
        uint64_t bits = tail_be(start, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isnan(d) && bits != canonical_nan)
            return CORRUPT;
        out->type = REP_DOUBLE;
        out->u.d = d;
        r->p += 9;
        return 0;
    }
    if ((t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb || t == 0xc4 || t == 0xc5 ||
        t == 0xc6) {
        int is_bin = t == 0xc4 || t == 0xc5 || t == 0xc6;
        const uint8_t *p;
        uint32_t n;
        size_t hdr;
        REP_TRY(rd_blob(r, is_bin, &p, &n, &hdr));
        if (hdr != blob_hdr_len(is_bin, n) || n > REP_MAX_VALUE ||
            (!is_bin && !rep__utf8_valid((const char *)p, n))) {
            r->p = start;
            return CORRUPT;
        }
        out->type = is_bin ? REP_BYTES : REP_STRING;
        out->u.s.ptr = (const char *)p;
        out->u.s.len = n;
        return 0;
    }
    /* integers: decode, then insist on msgpack-c's shortest form */
    int64_t iv;
    size_t len;
    if (t < 0x80) {
        iv = t, len = 1;
    } else if (t >= 0xe0) {
        iv = (int8_t)t, len = 1;
    } else {
        unsigned w;
        switch (t) {
        case 0xcc: case 0xd0: w = 1; break;
        case 0xcd: case 0xd1: w = 2; break;
        case 0xce: case 0xd2: w = 4; break;
        case 0xcf: case 0xd3: w = 8; break;
        default: return CORRUPT;
        }
        REP_TRY(need(r, 1 + w));
        uint64_t u = tail_be(start, w);
        if (t <= 0xcf) {
            if (u > INT64_MAX)
                return CORRUPT; /* int64 values only */
            iv = (int64_t)u;
        } else {
            /* sign-extend a w-byte two's complement number */
            unsigned shift = 64 - 8 * w;
            iv = (int64_t)(u << shift) >> shift;
        }
        len = 1 + w;
    }
    uint8_t canon[16];
    rep__buf_t b = {canon, 0, sizeof canon, 0};
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_int64(&pk, iv);
    if (b.len != len || memcmp(canon, start, len) != 0)
        return CORRUPT;
    out->type = REP_INT;
    out->u.i = iv;
    r->p += len;
    return 0;
}

int
rep__rd_value(rep__rd_t *r, const uint8_t **p, size_t *n)
{
    rep_value_t v;
    const uint8_t *start = r->p;
    REP_TRY(rd_value(r, &v));
    *p = start;
    *n = (size_t)(r->p - start);
    return 0;
}

int
rep__value_decode(const uint8_t *p, size_t n, rep_value_t *out)
{
    rep__rd_t r;
    rep__rd_init(&r, p, n);
    REP_TRY(rd_value(&r, out));
    return rep__rd_left(&r) == 0 ? 0 : CORRUPT;
}
