/* change.c — change, batch and version-vector encodings. See change.h. */
#include "change.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crdt.h"
#include "seal.h"
#include "zip.h"

static const char batch_magic[4] = {'R', 'P', 'L', 'B'};
static const char vv_magic[4] = {'R', 'P', 'L', 'V'};

/* ---- Changes ---- */
static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
pack_vv(msgpack_packer *pk, const rep_vv_entry_t *vv, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, vv[i].actor);
        msgpack_pack_uint64(pk, vv[i].seq);
    }
}

/* The plaintext body of a change: [user, ops[...]]. */
static int
body_encode(rep__buf_t *b, const rep__change_t *c)
{
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, 2);
    pack_str(&pk, c->user, c->usern);
    msgpack_pack_array(&pk, c->nops);
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint8(&pk, op->type);
        pack_str(&pk, op->coll, op->colln);
        pack_str(&pk, op->rec, op->recn);
        pack_str(&pk, op->field, op->fieldn);
        msgpack_pack_uint8(&pk, op->kind);
        if (op->type == REP_OP_DEL || op->type == REP_OP_CLEAR)
            msgpack_pack_nil(&pk);
        else
            rep__buf_add(b, op->val, op->valn); /* already canonical msgpack */
    }
    return b->err;
}

int
rep__change_seal(rep__buf_t *b, const rep__change_t *c, const uint8_t office[REP_OFFICE_ID_BYTES],
                 const uint8_t key[REP_KEY_BYTES], const uint8_t sk[REP_SIGN_SK_BYTES])
{
    if (c->actor == 0 || c->seq == 0 || c->epoch == 0)
        return -EINVAL; /* what rep__change_decode would refuse */
    for (size_t i = 0; i < c->ndeps; i++)
        if (c->deps[i].actor == c->actor || c->deps[i].actor == 0 || c->deps[i].seq == 0)
            return -EINVAL;
    rep__buf_t body;
    rep__buf_init(&body);
    int rc = body_encode(&body, c);
    size_t start = b->len;
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, 11);
    msgpack_pack_uint8(&pk, REP_CHANGE_VERSION);
    msgpack_pack_uint32(&pk, c->epoch);
    msgpack_pack_uint64(&pk, c->actor);
    msgpack_pack_uint32(&pk, c->inc);
    msgpack_pack_uint64(&pk, c->seq);
    msgpack_pack_uint64(&pk, c->hlc);
    msgpack_pack_bin(&pk, REP_HASH_BYTES);
    msgpack_pack_bin_body(&pk, c->prev, REP_HASH_BYTES);
    pack_vv(&pk, c->deps, c->ndeps);
    if (rc == 0)
        rc = rep__seal_append(b, start, office, body.p, body.len, key, sk);
    if (body.p)
        rep__wipe(body.p, body.len);
    rep__buf_free(&body);
    return rc;
}

/* Read [[actor, seq]...] sorted strictly by actor, no zero seq; with members, the first may be
 * actor 0 (the membership log, in a vv frame). *out malloc'd. */
static int
rd_vv(rep__rd_t *r, bool members, rep_vv_entry_t **out, size_t *nout)
{
    uint32_t n;
    *out = NULL;
    *nout = 0;
    REP_TRY(rep__rd_array(r, &n));
    if (n == 0)
        return 0;
    rep_vv_entry_t *vv = calloc(n, sizeof *vv);
    if (!vv)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        uint32_t two;
        if ((rc = rep__rd_array(r, &two)) < 0)
            break;
        if (two != 2 || (rc = rep__rd_uint(r, &vv[i].actor)) < 0 ||
            (rc = rep__rd_uint(r, &vv[i].seq)) < 0 || vv[i].seq == 0 ||
            (vv[i].actor == 0 && (!members || i > 0)) ||
            (i > 0 && vv[i].actor <= vv[i - 1].actor))
            rc = REP_ECORRUPT;
    }
    if (rc < 0) {
        free(vv);
        return rc;
    }
    *out = vv;
    *nout = n;
    return 0;
}

int
rep__rd_name(rep__rd_t *r, const char **s, uint32_t *n, size_t max, bool allow_empty)
{
    REP_TRY(rep__rd_str(r, s, n));
    return rep__name_check(*s, *n, max, allow_empty) == 0 ? 0 : REP_ECORRUPT;
}

static int
rd_op(rep__rd_t *r, rep__op_t *op)
{
    uint32_t n;
    uint64_t type, kind;
    REP_TRY(rep__rd_array(r, &n));
    if (n != 6)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_uint(r, &type));
    REP_TRY(rep__rd_name(r, &op->coll, &op->colln, REP_MAX_COLLECTION, false));
    if (memchr(op->coll, '/', op->colln))
        return REP_ECORRUPT;
    REP_TRY(rep__rd_name(r, &op->rec, &op->recn, REP_MAX_RECORD, false));
    REP_TRY(rep__rd_name(r, &op->field, &op->fieldn, REP_MAX_FIELD, true));
    REP_TRY(rep__rd_uint(r, &kind));
    /* each op type works on one kind; only registers have the existence field "" */
    static const uint8_t kind_of[] = {
        [REP_OP_SET] = REP_KIND_REGISTER, [REP_OP_DEL] = REP_KIND_REGISTER,
        [REP_OP_CLEAR] = REP_KIND_REGISTER, [REP_OP_INCR] = REP_KIND_COUNTER,
        [REP_OP_ADD] = REP_KIND_SET, [REP_OP_REMOVE] = REP_KIND_SET,
        [REP_OP_APPEND] = REP_KIND_LOG,
    };
    if (type == 0)
        return REP_ECORRUPT;
    if (type >= sizeof kind_of)
        return type <= 255 ? REP_EVERSION : REP_ECORRUPT; /* an op of a newer version */
    bool empty = op->fieldn == 0;
    if (kind != kind_of[type] ||
        (type == REP_OP_CLEAR ? !empty : empty && kind != REP_KIND_REGISTER))
        return REP_ECORRUPT;
    op->type = (uint8_t)type;
    op->kind = (uint8_t)kind;
    op->val = NULL;
    op->valn = 0;
    if (type == REP_OP_DEL || type == REP_OP_CLEAR)
        return rep__rd_nil(r);
    size_t vn;
    REP_TRY(rep__rd_value(r, &op->val, &vn));
    op->valn = (uint32_t)vn;
    rep_value_t delta;
    if (type == REP_OP_INCR && (rep__value_decode(op->val, vn, &delta) < 0 || delta.type != REP_INT))
        return REP_ECORRUPT;
    return 0;
}

int
rep__change_decode(const uint8_t *p, size_t n, rep__change_t *c)
{
    memset(c, 0, sizeof *c);
    rep__rd_t r;
    rep__rd_init(&r, p, n);
    uint32_t count;
    uint64_t version, epoch, inc;
    REP_TRY(rep__rd_array(&r, &count));
    REP_TRY(rep__rd_uint(&r, &version));
    if (version != REP_CHANGE_VERSION)
        return version > REP_CHANGE_VERSION ? REP_EVERSION : REP_ECORRUPT;
    if (count != 11)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_uint(&r, &epoch));
    REP_TRY(rep__rd_uint(&r, &c->actor));
    REP_TRY(rep__rd_uint(&r, &inc));
    REP_TRY(rep__rd_uint(&r, &c->seq));
    REP_TRY(rep__rd_uint(&r, &c->hlc));
    if (c->actor == 0 || c->seq == 0 || epoch == 0 || epoch > UINT32_MAX || inc > UINT32_MAX)
        return REP_ECORRUPT;
    c->epoch = (uint32_t)epoch;
    c->inc = (uint32_t)inc;
    REP_TRY(rep__rd_fixed(&r, c->prev, REP_HASH_BYTES));
    REP_TRY(rd_vv(&r, false, &c->deps, &c->ndeps));
    int rc = REP_ECORRUPT;
    for (size_t i = 0; i < c->ndeps; i++)
        if (c->deps[i].actor == c->actor)
            goto fail;
    if ((rc = rep__rd_sealed(&r, p, &c->env)) < 0)
        goto fail;
    rc = REP_ECORRUPT;
    if (rep__rd_left(&r) != 0)
        goto fail;
    c->bytes = p;
    c->len = n;
    rep__hash(c->hash, p, n);
    return 0;
fail:
    rep__change_clear(c);
    return rc;
}

int
rep__change_verify(const rep__change_t *c, const uint8_t office[REP_OFFICE_ID_BYTES],
                   const uint8_t pk[REP_SIGN_PK_BYTES])
{
    return rep__sealed_verify(&c->env, office, pk);
}

/* Decode the plaintext body [user, ops[...]]: every name, kind, op and value is checked. */
static int
body_decode(rep__change_t *c, const uint8_t *p, size_t n)
{
    rep__rd_t r;
    rep__rd_init(&r, p, n);
    uint32_t two, nops;
    REP_TRY(rep__rd_array(&r, &two));
    if (two != 2)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_name(&r, &c->user, &c->usern, REP_MAX_USER, true));
    REP_TRY(rep__rd_array(&r, &nops));
    if (nops == 0 || nops > REP_MAX_OPS * 3)
        return REP_ECORRUPT;
    if (!(c->ops = calloc(nops, sizeof *c->ops)))
        return -ENOMEM;
    c->nops = nops;
    for (uint32_t i = 0; i < nops; i++)
        REP_TRY(rd_op(&r, &c->ops[i]));
    return rep__rd_left(&r) == 0 ? 0 : REP_ECORRUPT;
}

int
rep__change_open(rep__change_t *c, const uint8_t office[REP_OFFICE_ID_BYTES],
                 const uint8_t key[REP_KEY_BYTES])
{
    if (c->plain)
        return 0;
    REP_TRY(rep__sealed_open(&c->env, office, key, &c->plain, &c->plainn));
    int rc = body_decode(c, c->plain, c->plainn);
    if (rc < 0)
        rep__change_close(c);
    return rc;
}

void
rep__change_close(rep__change_t *c)
{
    free(c->ops);
    if (c->plain) {
        rep__wipe(c->plain, c->plainn);
        free(c->plain);
    }
    c->ops = NULL;
    c->nops = 0;
    c->plain = NULL;
    c->plainn = 0;
    c->user = NULL;
    c->usern = 0;
}

void
rep__change_clear(rep__change_t *c)
{
    rep__change_close(c);
    free(c->deps);
    memset(c, 0, sizeof *c);
}

/* ---- Frames ---- */
void
rep__frame_begin(rep__buf_t *b, const char magic[4])
{
    rep__buf_add(b, magic, 4);
    uint8_t vf[2] = {REP_FRAME_VERSION, 0};
    rep__buf_add(b, vf, 2);
}

int
rep__frame_end(rep__buf_t *b, bool zip, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (zip && b->err == 0 && b->len - REP_FRAME_HDR >= REP_FRAME_ZIP_MIN) {
        rep__buf_t z;
        rep__buf_init(&z);
        rep__buf_add(&z, b->p, REP_FRAME_HDR);
        int rc = rep__zip(&z, b->p + REP_FRAME_HDR, b->len - REP_FRAME_HDR);
        if (rc == 0 && z.err == 0 && z.len < b->len) {
            z.p[5] |= REP_FRAME_ZSTD;
            rep__buf_free(b);
            *b = z;
        } else {
            rep__buf_free(&z); /* kept as it is: not smaller, or no memory to try */
        }
    }
    if (b->err == 0) {
        uint8_t sum[REP_HASH_BYTES];
        rep__hash(sum, b->p, b->len);
        rep__buf_add(b, sum, sizeof sum);
    }
    int rc = b->err;
    if (rc < 0) {
        rep__buf_free(b);
        return rc;
    }
    *out = rep__buf_take(b, len);
    return 0;
}

int
rep__frame_open(const uint8_t *p, size_t n, const char magic[4], unsigned allowed,
                const uint8_t **body, size_t *bodyn, uint8_t **owned)
{
    *owned = NULL;
    if (!p || n < REP_FRAME_HDR + REP_HASH_BYTES || memcmp(p, magic, 4) != 0)
        return REP_ECORRUPT;
    uint8_t sum[REP_HASH_BYTES];
    rep__hash(sum, p, n - REP_HASH_BYTES);
    if (memcmp(sum, p + n - REP_HASH_BYTES, REP_HASH_BYTES) != 0)
        return REP_ECORRUPT;
    if (p[4] != REP_FRAME_VERSION)
        return p[4] > REP_FRAME_VERSION ? REP_EVERSION : REP_ECORRUPT;
    if ((p[5] & ~allowed) != 0)
        return REP_EVERSION; /* sealed or signed content: not understood by this version */
    *body = p + REP_FRAME_HDR;
    *bodyn = n - REP_FRAME_HDR - REP_HASH_BYTES;
    if (p[5] & REP_FRAME_ZSTD) {
        REP_TRY(rep__unzip(*body, *bodyn, owned, bodyn));
        *body = *owned;
    }
    return 0;
}

/* Read n bins into *out (malloc'd views; NULL when n is 0). */
static int
rd_bins_n(rep__rd_t *r, uint32_t n, rep__bytes_t **out)
{
    *out = NULL;
    if (n && !(*out = calloc(n, sizeof **out)))
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t pn;
        REP_TRY(rep__rd_bin(r, &p, &pn));
        (*out)[i].p = p;
        (*out)[i].n = pn;
    }
    return 0;
}

int
rep__rd_bins(rep__rd_t *r, rep__bytes_t **out, size_t *n)
{
    uint32_t count;
    *out = NULL;
    *n = 0;
    REP_TRY(rep__rd_array(r, &count));
    int rc = rd_bins_n(r, count, out);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        return rc;
    }
    *n = count;
    return 0;
}

void
rep__batch_begin(rep__batch_writer_t *w, const uint8_t office[REP_OFFICE_ID_BYTES],
                 const char *office_name, uint64_t sender)
{
    rep__buf_init(&w->buf);
    rep__frame_begin(&w->buf, batch_magic);
    msgpack_packer pk;
    rep__packer_init(&pk, &w->buf);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
    msgpack_pack_bin_body(&pk, office, REP_OFFICE_ID_BYTES);
    pack_str(&pk, office_name, strlen(office_name));
    msgpack_pack_uint64(&pk, sender);
    /* array32 with the count patched in at the end */
    uint8_t hdr[5] = {0xdd, 0, 0, 0, 0};
    w->count_at = w->buf.len + 1;
    rep__buf_add(&w->buf, hdr, sizeof hdr);
    w->count = 0;
}

void
rep__batch_add(rep__batch_writer_t *w, const uint8_t *p, size_t n)
{
    msgpack_packer pk;
    rep__packer_init(&pk, &w->buf);
    msgpack_pack_bin(&pk, n);
    msgpack_pack_bin_body(&pk, p, n);
    w->count++;
}

size_t
rep__batch_size_with(const rep__batch_writer_t *w, size_t n)
{
    size_t hdr = n < 256 ? 2 : n < 65536 ? 3 : 5; /* msgpack-c's bin8/16/32 */
    return w->buf.len + hdr + n + REP_HASH_BYTES;
}

int
rep__batch_end(rep__batch_writer_t *w, const rep__buf_t *entries, uint8_t **out, size_t *len)
{
    if (w->buf.err == 0)
        rep__put_be32(w->buf.p + w->count_at, w->count);
    if (entries)
        rep__buf_add(&w->buf, entries->p, entries->len);
    else
        rep__buf_add(&w->buf, (const uint8_t[]){0x90}, 1); /* [] */
    return rep__frame_end(&w->buf, true, out, len);
}

int
rep__batch_decode(const uint8_t *p, size_t n, rep__batch_t *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *body;
    size_t bodyn;
    REP_TRY(rep__frame_open(p, n, batch_magic, REP_FRAME_ZSTD, &body, &bodyn, &out->owned));
    rep__rd_t r;
    rep__rd_init(&r, body, bodyn);
    uint32_t five, count;
    int rc;
    if ((rc = rep__rd_array(&r, &five)) < 0)
        goto fail;
    if (five != 5)
        goto corrupt;
    if ((rc = rep__rd_fixed(&r, out->office, REP_OFFICE_ID_BYTES)) < 0 ||
        (rc = rep__rd_name(&r, &out->office_name, &out->office_namen, REP_MAX_USER, false)) < 0 ||
        (rc = rep__rd_uint(&r, &out->sender)) < 0 || (rc = rep__rd_array(&r, &count)) < 0)
        goto fail;
    if ((rc = rd_bins_n(&r, count, &out->changes)) < 0)
        goto fail;
    out->n = count;
    if ((rc = rep__rd_bins(&r, &out->entries, &out->nentries)) < 0)
        goto fail;
    if (rep__rd_left(&r) == 0)
        return 0;
corrupt:
    rc = REP_ECORRUPT;
fail:
    rep__batch_clear(out);
    return rc;
}

void
rep__batch_clear(rep__batch_t *b)
{
    free(b->owned);
    free(b->changes);
    free(b->entries);
    memset(b, 0, sizeof *b);
}

void
rep__vv_pack(msgpack_packer *pk, const rep_vv_entry_t *vv, size_t n)
{
    pack_vv(pk, vv, n);
}

int
rep__rd_vv(rep__rd_t *r, rep_vv_entry_t **vv, size_t *nvv)
{
    return rd_vv(r, true, vv, nvv);
}

int
rep__vv_encode(const uint8_t office[REP_OFFICE_ID_BYTES], const rep_vv_entry_t *vv, size_t n,
               uint8_t **out, size_t *len)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep__frame_begin(&b, vv_magic);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
    msgpack_pack_bin_body(&pk, office, REP_OFFICE_ID_BYTES);
    pack_vv(&pk, vv, n);
    return rep__frame_end(&b, false, out, len);
}

int
rep__vv_decode(const uint8_t *p, size_t n, uint8_t office[REP_OFFICE_ID_BYTES],
               rep_vv_entry_t **vv, size_t *nvv)
{
    *vv = NULL;
    *nvv = 0;
    const uint8_t *body;
    uint8_t *owned; /* stays NULL: vv frames are never compressed */
    size_t bodyn;
    REP_TRY(rep__frame_open(p, n, vv_magic, 0, &body, &bodyn, &owned));
    rep__rd_t r;
    rep__rd_init(&r, body, bodyn);
    uint32_t two;
    REP_TRY(rep__rd_array(&r, &two));
    if (two != 2)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_fixed(&r, office, REP_OFFICE_ID_BYTES));
    REP_TRY(rd_vv(&r, true, vv, nvv));
    if (rep__rd_left(&r) != 0) {
        free(*vv);
        *vv = NULL;
        *nvv = 0;
        return REP_ECORRUPT;
    }
    return 0;
}
