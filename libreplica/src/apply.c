/* apply.c — apply changes inside one write transaction. See apply.h. */
#include "apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "hlc.h"

static const uint8_t zero_hash[REP_HASH_BYTES];

int
rep__meta_get_u64(rep__txn_t *t, const char *key, uint64_t *v)
{
    rep__slice_t s;
    REP_TRY(rep__txn_get(t, REP_DB_META, key, strlen(key), &s));
    if (s.n != 8)
        return REP_ECORRUPT;
    *v = rep__get_be64(s.p);
    return 0;
}

int
rep__meta_get_fixed(rep__txn_t *t, const char *key, void *out, size_t n)
{
    rep__slice_t v;
    REP_TRY(rep__txn_get(t, REP_DB_META, key, strlen(key), &v));
    if (v.n != n)
        return REP_ECORRUPT;
    memcpy(out, v.p, n);
    return 0;
}

int
rep__meta_put_u64(rep__txn_t *t, const char *key, uint64_t v)
{
    uint8_t b[8];
    rep__put_be64(b, v);
    return rep__txn_put(t, REP_DB_META, key, strlen(key), b, sizeof b);
}

int
rep__own_get(rep__txn_t *t, uint64_t *seq, uint8_t head[REP_HASH_BYTES])
{
    uint8_t v[8 + REP_HASH_BYTES];
    int rc = rep__meta_get_fixed(t, REP_META_OWN, v, sizeof v);
    if (rc == REP_ENOTFOUND)
        memset(v, 0, sizeof v);
    else if (rc < 0)
        return rc;
    *seq = rep__get_be64(v);
    if (head)
        memcpy(head, v + 8, REP_HASH_BYTES);
    return 0;
}

int
rep__own_put(rep__txn_t *t, uint64_t seq, const uint8_t head[REP_HASH_BYTES])
{
    uint8_t v[8 + REP_HASH_BYTES];
    rep__put_be64(v, seq);
    memcpy(v + 8, head, REP_HASH_BYTES);
    return rep__txn_put(t, REP_DB_META, REP_META_OWN, strlen(REP_META_OWN), v, sizeof v);
}

int
rep__vv_get(rep__txn_t *t, uint64_t actor, uint64_t *seq, uint8_t head[REP_HASH_BYTES])
{
    uint8_t k[8];
    rep__slice_t v;
    rep__put_be64(k, actor);
    int rc = rep__txn_get(t, REP_DB_VV, k, sizeof k, &v);
    if (rc == REP_ENOTFOUND) {
        *seq = 0;
        if (head)
            memset(head, 0, REP_HASH_BYTES);
        return 0;
    }
    REP_TRY(rc);
    if (v.n != 8 + REP_HASH_BYTES)
        return REP_ECORRUPT;
    *seq = rep__get_be64(v.p);
    if (head)
        memcpy(head, v.p + 8, REP_HASH_BYTES);
    return 0;
}

int
rep__vv_all(rep__txn_t *t, rep_vv_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    uint64_t count;
    REP_TRY(rep__txn_count(t, REP_DB_VV, &count));
    if (count == 0)
        return 0;
    rep_vv_entry_t *vv = calloc(count, sizeof *vv);
    if (!vv)
        return -ENOMEM;
    rep__cur_t *c;
    int rc = rep__cur_open(t, REP_DB_VV, &c);
    size_t i = 0;
    rep__slice_t k, v;
    for (int r = rc ? rc : rep__cur_seek(c, NULL, 0, &k, &v); r == 0 && i < count;
         r = rep__cur_next(c, &k, &v)) {
        if (k.n != 8 || v.n != 8 + REP_HASH_BYTES) {
            rc = REP_ECORRUPT;
            break;
        }
        vv[i].actor = rep__get_be64(k.p);
        vv[i].seq = rep__get_be64(v.p);
        i++;
    }
    rep__cur_close(&c);
    if (rc < 0) {
        free(vv);
        return rc;
    }
    *out = vv;
    *n = i;
    return 0;
}

int
rep__applier_begin(rep__applier_t *a, rep__txn_t *t, uint64_t wall_ms, uint64_t max_drift_ms)
{
    memset(a, 0, sizeof *a);
    a->t = t;
    a->wall_ms = wall_ms;
    a->max_drift_ms = max_drift_ms;
    rep__buf_init(&a->buf);
    REP_TRY(rep__meta_get_fixed(t, REP_META_OFFICE, a->office, sizeof a->office));
    REP_TRY(rep__trust_load(t, a->office, &a->trust));
    a->relay = rep__trust_relay(&a->trust);
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &a->state));
    int rc = rep__meta_get_u64(t, REP_META_SEEN, &a->seen);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    rc = rep__meta_get_u64(t, REP_META_HLC, &a->hlc);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

/* Open c's sealed body with the office key of its epoch (REP_EKEY when this replica lacks
 * it; a relay never opens one). */
static int
applier_open(rep__applier_t *a, rep__change_t *c)
{
    if (a->relay)
        return 0;
    const uint8_t *key = rep__trust_key(&a->trust, c->epoch, REP_SUBKEY_CHANGE);
    return key ? rep__change_open(c, a->office, key) : REP_EKEY;
}

int
rep__applier_end(rep__applier_t *a, int rc)
{
    if (rc >= 0)
        rc = rep__applier_flush(a);
    if (rc >= 0)
        rc = rep__meta_put_u64(a->t, REP_META_HLC, a->hlc);
    if (rc >= 0)
        rc = rep__meta_put_u64(a->t, REP_META_SEEN, a->seen > a->hlc ? a->seen : a->hlc);
    rep__cur_close(&a->state);
    rep__trust_clear(&a->trust);
    rep__sibs_free(&a->sibs);
    rep__buf_free(&a->buf);
    free(a->q);
    a->q = NULL;
    a->nq = a->capq = 0;
    return rc;
}

static void
dot_key(uint8_t k[16], uint64_t actor, uint64_t seq)
{
    rep__put_be64(k, actor);
    rep__put_be64(k + 8, seq);
}

/* Rewrite one register field: decode, apply, store (or delete when nothing is left). The
 * state cursor reads the field and then writes it back in place. */
static int
write_register(rep__applier_t *a, const uint8_t *key, size_t keyn, const rep__ctx_t *ctx,
               const rep__sib_t *add)
{
    rep__slice_t v;
    int rc = rep__cur_get(a->state, key, keyn, &v);
    if (rc == REP_ENOTFOUND) {
        a->sibs.n = 0;
        if (!add)
            return 0;
    } else {
        REP_TRY(rc);
        REP_TRY(rep__sibs_decode(&a->sibs, v.p, v.n));
    }
    size_t before = a->sibs.n;
    REP_TRY(rep__reg_apply(&a->sibs, ctx, add));
    if (!add && a->sibs.n == before)
        return 0; /* a clear that removed nothing */
    if (a->sibs.n == 0)
        return rep__cur_del(a->state);
    a->buf.len = 0;
    rep__sibs_encode(&a->buf, &a->sibs);
    REP_TRY(a->buf.err);
    return rep__cur_put(a->state, key, keyn, a->buf.p, a->buf.len, rc == 0);
}

/* Rewrite one set field (elem NULL: a record delete's clear). */
static int
write_set(rep__applier_t *a, const uint8_t *key, size_t keyn, const rep__ctx_t *ctx,
          const uint8_t *elem, size_t elemn, const rep__dot_t *dot)
{
    rep__slice_t v = {NULL, 0};
    int rc = rep__cur_get(a->state, key, keyn, &v);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    if (rc == REP_ENOTFOUND && !dot)
        return 0; /* removing from an empty set */
    REP_TRY(rep__set_apply(v.p, v.n, ctx, elem, elemn, dot, &a->buf));
    if (a->buf.len == 0)
        return rc == 0 ? rep__cur_del(a->state) : 0;
    if (rc == 0 && v.n == a->buf.len && memcmp(v.p, a->buf.p, v.n) == 0)
        return 0; /* unchanged */
    return rep__cur_put(a->state, key, keyn, a->buf.p, a->buf.len, rc == 0);
}

static int
write_counter(rep__applier_t *a, const uint8_t *key, size_t keyn, uint64_t actor,
              const uint8_t *val, size_t valn)
{
    rep_value_t delta;
    REP_TRY(rep__value_decode(val, valn, &delta)); /* an int: checked by rep__change_decode */
    rep__slice_t v = {NULL, 0};
    int rc = rep__cur_get(a->state, key, keyn, &v);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    a->buf.len = 0;
    REP_TRY(rep__ctr_add(v.p, v.n, actor, delta.u.i, &a->buf));
    return rep__cur_put(a->state, key, keyn, a->buf.p, a->buf.len, rc == 0);
}

static int
write_log(rep__applier_t *a, const uint8_t *key, size_t keyn, const rep__change_t *c,
          const uint8_t *val, size_t valn)
{
    a->buf.len = 0;
    uint8_t usern = (uint8_t)c->usern;
    rep__buf_add(&a->buf, &usern, 1);
    rep__buf_add(&a->buf, c->user, c->usern);
    rep__buf_add(&a->buf, val, valn);
    REP_TRY(a->buf.err);
    return rep__cur_put(a->state, key, keyn, a->buf.p, a->buf.len, false);
}

/* A record delete: remove what the context covers from every register and set of the
 * record. Counters and logs are kept (hidden while the record is deleted). */
static int
clear_record(rep__applier_t *a, const rep__skey_t *rk, const rep__ctx_t *ctx)
{
    uint8_t prefix[REP_STATE_KEY_MAX];
    size_t pn = rep__skey_make(prefix, rk, false);
    /* Collect the keys first: rewriting under a live cursor would move it. */
    rep__buf_t keys;
    rep__buf_init(&keys);
    rep__cur_t *c;
    REP_TRY(rep__cur_open(a->t, REP_DB_STATE, &c));
    rep__slice_t k;
    int rc;
    for (rc = rep__cur_seek(c, prefix, pn, &k, NULL); rc == 0; rc = rep__cur_next(c, &k, NULL)) {
        if (k.n < pn || memcmp(k.p, prefix, pn) != 0)
            break;
        rep__skey_t sk;
        if ((rc = rep__skey_parse(k.p, k.n, &sk)) < 0)
            break;
        if (sk.kind != REP_KIND_REGISTER && sk.kind != REP_KIND_SET)
            continue;
        uint8_t len[2] = {(uint8_t)(k.n >> 8), (uint8_t)k.n}; /* k.n <= REP_STATE_KEY_MAX */
        rep__buf_add(&keys, len, 2);
        rep__buf_add(&keys, k.p, k.n);
    }
    rep__cur_close(&c);
    rc = rc == REP_ENOTFOUND ? 0 : rc;
    if (rc == 0)
        rc = keys.err;
    for (size_t off = 0, n; rc == 0 && off < keys.len; off += 2 + n) {
        n = (size_t)keys.p[off] << 8 | keys.p[off + 1];
        const uint8_t *key = keys.p + off + 2; /* register and set keys end in their kind */
        if (key[n - 1] == REP_KIND_REGISTER)
            rc = write_register(a, key, n, ctx, NULL);
        else
            rc = write_set(a, key, n, ctx, NULL, 0, NULL);
    }
    rep__buf_free(&keys);
    return rc;
}

static int
apply_op(rep__applier_t *a, const rep__change_t *c, const rep__ctx_t *ctx, size_t i)
{
    const rep__op_t *op = &c->ops[i];
    rep__skey_t sk = {op->coll, op->rec, op->field, op->colln, op->recn, op->fieldn, op->kind,
                      NULL};
    uint8_t key[REP_STATE_KEY_MAX], id[REP_LOG_ID_BYTES];
    if (op->type == REP_OP_APPEND) {
        rep__log_id(id, c->hlc, c->actor, c->seq, (uint32_t)i);
        sk.id = id;
    }
    size_t kn = rep__skey_make(key, &sk, true);
    rep__dot_t dot = {c->actor, c->seq};
    switch (op->type) {
    case REP_OP_SET:
    case REP_OP_DEL: {
        rep__sib_t add = {c->actor, c->seq, c->hlc, op->type == REP_OP_DEL, (uint8_t)c->usern,
                          c->user, op->valn, op->val};
        return write_register(a, key, kn, ctx, &add);
    }
    case REP_OP_CLEAR:
        return clear_record(a, &sk, ctx);
    case REP_OP_INCR:
        return write_counter(a, key, kn, c->actor, op->val, op->valn);
    case REP_OP_ADD:
    case REP_OP_REMOVE:
        return write_set(a, key, kn, ctx, op->val, op->valn, op->type == REP_OP_ADD ? &dot : NULL);
    case REP_OP_APPEND:
        return write_log(a, key, kn, c, op->val, op->valn);
    }
    return REP_ECORRUPT;
}

/* Put c's dot under the record op is on, in hist (through cur when given: the search starts
 * from its page). */
static int
put_hist(rep__applier_t *a, rep__cur_t *cur, const rep__change_t *c, const rep__op_t *op)
{
    uint8_t key[REP_STATE_KEY_MAX], dot[16];
    dot_key(dot, c->actor, c->seq);
    rep__skey_t rk = {op->coll, op->rec, NULL, op->colln, op->recn, 0, 0, NULL};
    size_t rn = rep__skey_make(key, &rk, false);
    if (cur)
        return rep__cur_put(cur, key, rn, dot, sizeof dot, false);
    return rep__txn_put(a->t, REP_DB_HIST, key, rn, dot, sizeof dot);
}

static bool
same_record(const rep__op_t *x, const rep__op_t *y)
{
    return x->colln == y->colln && x->recn == y->recn && !memcmp(x->coll, y->coll, x->colln) &&
           !memcmp(x->rec, y->rec, x->recn);
}

static int
apply_ops(rep__applier_t *a, const rep__change_t *c)
{
    rep__ctx_t ctx = {c->actor, c->seq, c->deps, c->ndeps};
    const rep__op_t *prev = NULL;
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        REP_TRY(apply_op(a, c, &ctx, i));
        /* history index: once per record (a change's ops on a record are usually adjacent;
         * a repeated put of the same duplicate is a no-op anyway) */
        if (!prev || !same_record(prev, op))
            REP_TRY(put_hist(a, NULL, c, op));
        prev = op;
    }
    return 0;
}

/* ---- Deferred writes (a->defer) ---- */

#define Q_LONG 0x80000000u     /* in rep__queued_t.op: the record prefix is longer than 16 bytes */
#define Q_MAX  (1u << 18)      /* queued ops at most: a longer queue is flushed first (8 MiB,
                                  and as much scratch for the sort) */

struct rep__queued {
    uint64_t k0, k1;           /* the record's state-key prefix (coll 0 rec 0): its first 16
                                  bytes, zero-padded, big-endian, so that they compare as bytes */
    const rep__change_t *c;
    uint32_t ord;              /* position in the queue: the order of application */
    uint32_t op;               /* index in c->ops, with Q_LONG */
};

/* Order of the records of two queued ops, as their state keys sort. Equal first 16 bytes mean
 * equal prefixes unless both are longer: a prefix ends at its second NUL, and NUL is in no
 * name, so a prefix of 16 bytes or fewer fixes where the other one ends. */
static int
rec_cmp(const rep__queued_t *x, const rep__queued_t *y)
{
    if (x->k0 != y->k0)
        return x->k0 < y->k0 ? -1 : 1;
    if (x->k1 != y->k1)
        return x->k1 < y->k1 ? -1 : 1;
    if (!(x->op & Q_LONG))
        return 0;
    const rep__op_t *ox = &x->c->ops[x->op & ~Q_LONG], *oy = &y->c->ops[y->op & ~Q_LONG];
    uint8_t kx[REP_STATE_KEY_MAX], ky[REP_STATE_KEY_MAX];
    rep__skey_t rx = {ox->coll, ox->rec, NULL, ox->colln, ox->recn, 0, 0, NULL};
    rep__skey_t ry = {oy->coll, oy->rec, NULL, oy->colln, oy->recn, 0, 0, NULL};
    size_t nx = rep__skey_make(kx, &rx, false), ny = rep__skey_make(ky, &ry, false);
    int d = memcmp(kx, ky, nx < ny ? nx : ny);
    return d ? d : nx < ny ? -1 : nx > ny;
}

/* By record, then in the order of application (so the sort is stable where it matters). */
static int
queued_cmp(const void *pa, const void *pb)
{
    const rep__queued_t *x = pa, *y = pb;
    int d = rec_cmp(x, y);
    return d ? d : x->ord < y->ord ? -1 : x->ord > y->ord;
}

static unsigned
q_byte(const rep__queued_t *e, unsigned b)
{
    return (unsigned)((b < 8 ? e->k0 >> (56 - 8 * b) : e->k1 >> (120 - 8 * b)) & 0xff);
}

/* Sort q by record, then by ord (queued_cmp), with tmp (as long) as scratch. The first 16 bytes
 * of the records' keys are sorted by a stable LSD radix sort over them (bytes that every entry
 * has alike are skipped: a collection's name, the zero padding), which keeps each record's ops
 * in queue order; runs that tie on 16 bytes of longer keys are then sorted in full. */
static void
sort_queue(rep__queued_t *q, rep__queued_t *tmp, size_t n)
{
    uint64_t d0 = 0, d1 = 0; /* the bits in which some entry differs from the first */
    for (size_t i = 1; i < n; i++) {
        d0 |= q[i].k0 ^ q[0].k0;
        d1 |= q[i].k1 ^ q[0].k1;
    }
    rep__queued_t *src = q, *dst = tmp;
    for (unsigned b = 16; b-- > 0;) {
        if (!((b < 8 ? d0 >> (56 - 8 * b) : d1 >> (120 - 8 * b)) & 0xff))
            continue; /* every entry has this byte alike */
        uint32_t at[256] = {0}, sum = 0; /* (n <= Q_MAX) */
        for (size_t i = 0; i < n; i++)
            at[q_byte(&src[i], b)]++;
        for (unsigned v = 0; v < 256; v++) {
            uint32_t c = at[v];
            at[v] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[at[q_byte(&src[i], b)]++] = src[i];
        rep__queued_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != q)
        memcpy(q, src, n * sizeof *q);
    for (size_t i = 0, j; i < n; i = j) { /* ties of longer keys: in full */
        for (j = i + 1; j < n && q[j].k0 == q[i].k0 && q[j].k1 == q[i].k1; j++)
            ;
        if (j - i > 1 && (q[i].op & Q_LONG))
            qsort(q + i, j - i, sizeof *q, queued_cmp);
    }
}

/* Queue c's ops (a->defer): they are applied by rep__applier_flush. */
static int
queue_ops(rep__applier_t *a, const rep__change_t *c)
{
    if (c->nops > Q_MAX - a->nq)
        REP_TRY(rep__applier_flush(a));
    if (c->nops > Q_MAX) /* (a change of a million ops: at once) */
        return apply_ops(a, c);
    if (a->nq + c->nops > a->capq) {
        size_t cap = a->capq ? a->capq : 1024;
        while (cap < a->nq + c->nops)
            cap *= 2;
        rep__queued_t *q = realloc(a->q, cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        a->q = q;
        a->capq = cap;
    }
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        uint8_t key[REP_STATE_KEY_MAX], k16[16] = {0};
        rep__skey_t rk = {op->coll, op->rec, NULL, op->colln, op->recn, 0, 0, NULL};
        size_t rn = rep__skey_make(key, &rk, false);
        memcpy(k16, key, rn < sizeof k16 ? rn : sizeof k16);
        rep__queued_t *e = &a->q[a->nq];
        e->k0 = rep__get_be64(k16);
        e->k1 = rep__get_be64(k16 + 8);
        e->c = c;
        e->ord = (uint32_t)a->nq;
        e->op = (uint32_t)i | (rn > sizeof k16 ? Q_LONG : 0);
        a->nq++;
    }
    return 0;
}

int
rep__applier_flush(rep__applier_t *a)
{
    if (a->nq == 0)
        return 0;
    rep__queued_t *tmp = malloc(a->nq * sizeof *tmp);
    if (!tmp)
        return -ENOMEM;
    sort_queue(a->q, tmp, a->nq);
    free(tmp);
    rep__cur_t *hist;
    int rc = rep__cur_open(a->t, REP_DB_HIST, &hist);
    uint8_t dots[64][16]; /* a record's hist entries, put together */
    size_t ndots = 0;
    for (size_t i = 0; i < a->nq && rc == 0; i++) {
        /* the ops are read out of their changes' bodies in key order, not in memory order:
         * fetch them ahead (the op, then its names and value) */
        if (i + 16 < a->nq) {
            const rep__queued_t *f = &a->q[i + 16];
            __builtin_prefetch(&f->c->ops[f->op & ~Q_LONG]);
        }
        if (i + 8 < a->nq) {
            const rep__queued_t *f = &a->q[i + 8];
            const rep__op_t *o = &f->c->ops[f->op & ~Q_LONG];
            __builtin_prefetch(o->rec);
            __builtin_prefetch(o->val);
        }
        const rep__queued_t *e = &a->q[i];
        const rep__change_t *c = e->c;
        uint32_t op = e->op & ~Q_LONG;
        rep__ctx_t ctx = {c->actor, c->seq, c->deps, c->ndeps};
        rc = apply_op(a, c, &ctx, op);
        /* hist: c's dot once per record (a change's ops on a record are adjacent here), all
         * of a record's put at its last op */
        if (rc == 0 && (i == 0 || e[-1].c != c || rec_cmp(&e[-1], e) != 0))
            dot_key(dots[ndots++], c->actor, c->seq);
        if (rc == 0 && (i + 1 == a->nq || ndots == REP_ARRAY_LEN(dots) || rec_cmp(e, &e[1]) != 0)) {
            const rep__op_t *o = &c->ops[op];
            uint8_t key[REP_STATE_KEY_MAX];
            rep__skey_t rk = {o->coll, o->rec, NULL, o->colln, o->recn, 0, 0, NULL};
            size_t rn = rep__skey_make(key, &rk, false);
            rc = rep__cur_put_dups(hist, key, rn, dots, sizeof dots[0], ndots);
            ndots = 0;
        }
    }
    rep__cur_close(&hist);
    a->nq = 0;
    return rc;
}

/* Are all of c's dependencies here (and its actor's previous change)? */
static int
deliverable(rep__applier_t *a, const rep__change_t *c, uint64_t have)
{
    if (c->seq != have + 1)
        return 0;
    for (size_t i = 0; i < c->ndeps; i++) {
        uint64_t seq;
        REP_TRY(rep__vv_get(a->t, c->deps[i].actor, &seq, NULL));
        if (seq < rep__trust_cap(&a->trust, c->deps[i].actor, c->deps[i].seq))
            return 0; /* (what it saw of a revoked device past its cutoff is not needed) */
    }
    return 1;
}

/* Keep, in db, the highest value seen for actor (skew: ms ahead; forks: a seq). */
static int
note_max(rep__applier_t *a, int db, uint64_t actor, uint64_t value)
{
    uint8_t k[8], v[8];
    rep__slice_t old;
    rep__put_be64(k, actor);
    int rc = rep__txn_get(a->t, db, k, sizeof k, &old);
    if (rc == 0 && old.n == 8 && rep__get_be64(old.p) >= value)
        return 0;
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    rep__put_be64(v, value);
    return rep__txn_put(a->t, db, k, sizeof k, v, sizeof v);
}

int
rep__apply_fork(rep__applier_t *a, uint64_t actor, uint64_t seq)
{
    a->stats.forks++;
    return note_max(a, REP_DB_FORKS, actor, seq);
}

static int
fork_seen(rep__applier_t *a, const rep__change_t *c)
{
    return rep__apply_fork(a, c->actor, c->seq);
}

int
rep__base_get(rep__txn_t *t, uint64_t actor, uint64_t *seq)
{
    uint8_t k[8];
    rep__slice_t v;
    rep__put_be64(k, actor);
    int rc = rep__txn_get(t, REP_DB_BASE, k, sizeof k, &v);
    *seq = 0;
    if (rc == REP_ENOTFOUND)
        return 0;
    REP_TRY(rc);
    if (v.n != 8)
        return REP_ECORRUPT;
    *seq = rep__get_be64(v.p);
    return 0;
}

/* Park c in pending; the same dot with other bytes is a fork. */
static int
park(rep__applier_t *a, const rep__change_t *c)
{
    uint8_t k[16];
    rep__slice_t v;
    dot_key(k, c->actor, c->seq);
    int rc = rep__txn_get(a->t, REP_DB_PENDING, k, sizeof k, &v);
    if (rc == 0) {
        if (v.n != c->len || memcmp(v.p, c->bytes, c->len) != 0)
            return fork_seen(a, c);
        return 0;
    }
    if (rc != REP_ENOTFOUND)
        return rc;
    return rep__txn_put(a->t, REP_DB_PENDING, k, sizeof k, c->bytes, c->len);
}

int
rep__apply_change(rep__applier_t *a, const rep__change_t *c)
{
    uint64_t have;
    uint8_t head[REP_HASH_BYTES], k[16];
    REP_TRY(rep__vv_get(a->t, c->actor, &have, head));
    dot_key(k, c->actor, c->seq);

    if (c->seq <= have) {
        rep__slice_t v;
        int rc = rep__txn_get(a->t, REP_DB_LOG, k, sizeof k, &v);
        if (rc < 0 && rc != REP_ENOTFOUND)
            return rc;
        if (rc == 0 && v.n == c->len && memcmp(v.p, c->bytes, c->len) == 0) {
            a->stats.duplicates++;
            return 0;
        }
        if (rc == REP_ENOTFOUND) { /* not in the log: known here by state, or it is a fork */
            uint64_t base;
            REP_TRY(rep__base_get(a->t, c->actor, &base));
            if (c->seq < have ? c->seq <= base : memcmp(c->hash, head, REP_HASH_BYTES) == 0) {
                a->stats.duplicates++;
                return 0;
            }
        }
        return fork_seen(a, c);
    }
    int ok = deliverable(a, c, have);
    REP_TRY(ok);
    if (!ok)
        return park(a, c);
    if (memcmp(c->prev, have ? head : zero_hash, REP_HASH_BYTES) != 0) {
        return fork_seen(a, c); /* its chain does not continue the one we have */
    }

    if (!a->relay) /* a relay stores changes sealed: no state */
        REP_TRY(a->defer ? queue_ops(a, c) : apply_ops(a, c));
    REP_TRY(rep__txn_put(a->t, REP_DB_LOG, k, sizeof k, c->bytes, c->len));
    uint8_t vv[8 + REP_HASH_BYTES];
    rep__put_be64(vv, c->seq);
    memcpy(vv + 8, c->hash, REP_HASH_BYTES);
    REP_TRY(rep__txn_put(a->t, REP_DB_VV, k, 8, vv, sizeof vv));
    bool skewed = false;
    if (!a->local)
        a->hlc = rep__hlc_observe(a->hlc, c->hlc, a->wall_ms, a->max_drift_ms, &skewed);
    if (c->hlc > a->seen)
        a->seen = c->hlc;
    if (skewed) {
        a->stats.skewed++;
        REP_TRY(note_max(a, REP_DB_SKEW, c->actor, REP_HLC_MS(c->hlc) - a->wall_ms));
    }
    a->stats.applied++;
    return 0;
}

/* Take the first deliverable pending change out of pending, copied to the heap. */
static int
next_pending(rep__applier_t *a, uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(a->t, REP_DB_PENDING, &cur));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(cur, &k, &v)) {
        if (k.n != 16)
            break;
        uint64_t have;
        if ((rc = rep__vv_get(a->t, rep__get_be64(k.p), &have, NULL)) < 0)
            break;
        uint64_t seq = rep__get_be64(k.p + 8);
        if (seq <= have) { /* arrived meanwhile by another path */
            if ((rc = rep__cur_del(cur)) < 0)
                break;
            continue;
        }
        if (seq != have + 1)
            continue;
        rep__change_t c;
        if ((rc = rep__change_decode(v.p, v.n, &c)) < 0)
            break;
        int ok = deliverable(a, &c, have);
        rep__change_clear(&c);
        if ((rc = ok) < 0)
            break;
        if (!ok)
            continue;
        if (!(*bytes = malloc(v.n))) {
            rc = -ENOMEM;
            break;
        }
        memcpy(*bytes, v.p, v.n);
        *len = v.n;
        rc = rep__cur_del(cur);
        break;
    }
    rep__cur_close(&cur);
    if (rc == REP_ENOTFOUND)
        rc = 0;
    if (rc < 0) {
        free(*bytes);
        *bytes = NULL;
    }
    return rc;
}

/* Each pending change is applied at once: it lives only for the call. */
int
rep__apply_pending(rep__applier_t *a)
{
    REP_TRY(rep__applier_flush(a));
    bool defer = a->defer;
    a->defer = false;
    int rc = 0;
    while (rc == 0) {
        uint8_t *bytes;
        size_t len;
        if ((rc = next_pending(a, &bytes, &len)) < 0 || !bytes)
            break;
        rep__change_t c;
        rc = rep__change_decode(bytes, len, &c);
        if (rc == 0 && (rc = applier_open(a, &c)) == 0) {
            rc = rep__apply_change(a, &c);
            rep__change_clear(&c);
        }
        free(bytes);
    }
    a->defer = defer;
    return rc;
}

/* ---- Revocation ---- */

/* Delete from db (log or pending) the changes of actor after seq (all with seq 0), and at seq
 * when its hash is not hash. 1 when something was deleted. */
static int
drop_after(rep__applier_t *a, int db, const rep__cutoff_t *cut)
{
    rep__cur_t *c;
    REP_TRY(rep__cur_open(a->t, db, &c));
    uint8_t k[16];
    dot_key(k, cut->actor, cut->seq ? cut->seq : 1);
    rep__slice_t key, val;
    int rc, dropped = 0;
    for (rc = rep__cur_seek(c, k, sizeof k, &key, &val);
         rc == 0 && key.n == 16 && rep__get_be64(key.p) == cut->actor;) {
        uint8_t h[REP_HASH_BYTES];
        uint64_t seq = rep__get_be64(key.p + 8);
        if (seq == cut->seq) {
            rep__hash(h, val.p, val.n);
            if (memcmp(h, cut->hash, sizeof h) == 0) {
                rc = rep__cur_next(c, &key, &val);
                continue;
            }
        }
        if ((rc = rep__cur_del(c)) < 0)
            break;
        dropped = 1;
        rc = rep__cur_seek(c, k, sizeof k, &key, &val); /* the cursor moved: find the next */
    }
    rep__cur_close(&c);
    return rc == 0 || rc == REP_ENOTFOUND ? dropped : rc;
}

/* Is actor (with seq changes here) one of d's? Its latest change says with which incarnation
 * it was derived; known only by state, the first incarnations are tried. */
static int
actor_of(rep__applier_t *a, const rep__dev_t *d, uint64_t actor, uint64_t seq)
{
    uint8_t k[16];
    rep__slice_t v;
    rep__change_t c;
    dot_key(k, actor, seq);
    int rc = rep__txn_get(a->t, REP_DB_LOG, k, sizeof k, &v);
    if (rc == 0 && rep__change_decode(v.p, v.n, &c) == 0) {
        rc = rep__actor_derive(d->pk, c.inc) == actor;
        rep__change_clear(&c);
        return rc;
    }
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    uint32_t inc;
    return rep__trust_inc_of(d->pk, actor, &inc);
}

/* The cutoffs of a revoked device, plus a cutoff at 0 for each other actor of it in the vv. */
static int
device_cuts(rep__applier_t *a, const rep__dev_t *d, rep__cutoff_t **out, size_t *n)
{
    rep_vv_entry_t *vv;
    size_t nvv;
    REP_TRY(rep__vv_all(a->t, &vv, &nvv));
    rep__cutoff_t *cuts = calloc(d->ncuts + nvv + 1, sizeof *cuts);
    if (!cuts) {
        free(vv);
        return -ENOMEM;
    }
    memcpy(cuts, d->cuts, d->ncuts * sizeof *cuts);
    size_t k = d->ncuts;
    int rc = 0;
    for (size_t i = 0; i < nvv && rc >= 0; i++) {
        bool listed = false;
        for (size_t j = 0; j < d->ncuts; j++)
            listed |= d->cuts[j].actor == vv[i].actor;
        if (!listed && (rc = actor_of(a, d, vv[i].actor, vv[i].seq)) == 1)
            cuts[k++] = (rep__cutoff_t){.actor = vv[i].actor}; /* none of it stays */
    }
    free(vv);
    if (rc < 0) {
        free(cuts);
        return rc;
    }
    *out = cuts;
    *n = k;
    return 0;
}

/* Apply the whole log again on an empty state, once changes were dropped from it: the log
 * moves into pending, state, hist, vv and base are emptied, and rep__apply_pending puts every
 * change back in causal order. What came by state (a snapshot) is forgotten with the rest: it
 * may hold the revoked device's late changes, which a merged state cannot tell apart, so it
 * comes again from the office (the vv says it is lacking now), as changes or a snapshot made
 * under the revocation. Changes here whose dependencies only the state held wait in pending. */
static int
rebuild_state(rep__applier_t *a)
{
    rep_import_stats_t keep = a->stats;
    rep__cur_t *c;
    REP_TRY(rep__cur_open(a->t, REP_DB_LOG, &c));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(c, &k, &v))
        if ((rc = rep__txn_put(a->t, REP_DB_PENDING, k.p, k.n, v.p, v.n)) < 0)
            break;
    rep__cur_close(&c);
    if (rc != REP_ENOTFOUND)
        return rc;
    rep__cur_close(&a->state); /* emptied under it: opened again after */
    static const int dbs[] = {REP_DB_LOG, REP_DB_STATE, REP_DB_HIST, REP_DB_VV, REP_DB_BASE};
    for (size_t i = 0; i < REP_ARRAY_LEN(dbs); i++)
        REP_TRY(rep__txn_empty(a->t, dbs[i]));
    REP_TRY(rep__cur_open(a->t, REP_DB_STATE, &a->state));
    REP_TRY(rep__apply_pending(a));
    a->stats = keep;
    a->stats.rebuilt = 1;
    return 0;
}

int
rep__apply_revocations(rep__applier_t *a)
{
    REP_TRY(rep__applier_flush(a)); /* the state may be rebuilt below */
    bool rebuild = false;
    for (size_t i = 0; i < a->trust.ndevs; i++) {
        const rep__dev_t *d = &a->trust.devs[i];
        if (!d->removed)
            continue;
        rep__cutoff_t *cuts;
        size_t n;
        REP_TRY(device_cuts(a, d, &cuts, &n));
        int rc = 0;
        for (size_t j = 0; j < n && rc >= 0; j++) {
            uint64_t have;
            uint8_t head[REP_HASH_BYTES];
            if ((rc = drop_after(a, REP_DB_PENDING, &cuts[j])) < 0 ||
                (rc = rep__vv_get(a->t, cuts[j].actor, &have, head)) < 0)
                break;
            if (have < cuts[j].seq ||
                (have == cuts[j].seq && (have == 0 || !memcmp(head, cuts[j].hash, sizeof head))))
                continue; /* nothing of it past the cutoff here */
            rebuild = true;
            rc = drop_after(a, REP_DB_LOG, &cuts[j]);
        }
        free(cuts);
        REP_TRY(rc);
    }
    return rebuild ? rebuild_state(a) : 0;
}
