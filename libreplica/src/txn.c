/* txn.c — transactions: buffered writes become one change, committed in one LMDB txn. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "change.h"
#include "codec.h"
#include "common.h"
#include "facade.h"
#include "hlc.h"
#include "keys.h"
#include "node.h"

/* ---- Transactions ---- */
/* A buffered write. Strings point into the op's own allocation. */
typedef struct txn_op {
    uint8_t type;
    uint32_t order;
    rep__skey_t k;       /* coll, rec, field views into mem */
    uint32_t valn;
    uint8_t *val;        /* canonical value bytes, in mem */
    char *mem;
} txn_op_t;

struct rep_txn {
    rep_replica_t *r;
    char *user;
    txn_op_t *ops;
    size_t n, cap;
    bool done;
};

int
rep_txn_begin(rep_replica_t *r, const char *user, rep_txn_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    if (user && *user)
        REP_TRY(rep__name_check(user, strlen(user), REP_MAX_USER, false));
    rep_txn_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->r = r;
    t->user = strdup(user ? user : "");
    if (!t->user) {
        free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

/* The kind each op type writes. */
static uint8_t
op_kind(uint8_t type)
{
    switch (type) {
    case REP_OP_INCR: return REP_KIND_COUNTER;
    case REP_OP_ADD:
    case REP_OP_REMOVE: return REP_KIND_SET;
    case REP_OP_APPEND: return REP_KIND_LOG;
    default: return REP_KIND_REGISTER;
    }
}

static int
txn_push(rep_txn_t *t, uint8_t type, const char *key, const char *field, const rep_value_t *v)
{
    if (!t)
        return -EINVAL;
    if (t->done)
        return REP_EDONE;
    rep__skey_t k;
    REP_TRY(rep__key_split(key, &k));
    k.field = field ? field : "";
    k.fieldn = strlen(k.field);
    if (type != REP_OP_CLEAR)
        REP_TRY(rep__name_check(k.field, k.fieldn, REP_MAX_FIELD, false));
    if (t->n >= REP_MAX_OPS)
        return REP_ETOOBIG;
    rep__buf_t vb;
    rep__buf_init(&vb);
    if (type != REP_OP_DEL && type != REP_OP_CLEAR) {
        int rc = v ? rep__value_encode(&vb, v) : -EINVAL;
        if (rc < 0) {
            rep__buf_free(&vb);
            return rc;
        }
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        txn_op_t *ops = realloc(t->ops, cap * sizeof *ops);
        if (!ops) {
            rep__buf_free(&vb);
            return -ENOMEM;
        }
        t->ops = ops;
        t->cap = cap;
    }
    size_t memn = k.colln + k.recn + k.fieldn + vb.len + 3;
    char *mem = malloc(memn);
    if (!mem) {
        rep__buf_free(&vb);
        return -ENOMEM;
    }
    txn_op_t *op = &t->ops[t->n];
    op->type = type;
    op->order = (uint32_t)t->n;
    op->mem = mem;
    memcpy(mem, k.coll, k.colln);
    op->k.coll = mem;
    mem += k.colln;
    *mem++ = 0;
    memcpy(mem, k.rec, k.recn);
    op->k.rec = mem;
    mem += k.recn;
    *mem++ = 0;
    memcpy(mem, k.field, k.fieldn);
    op->k.field = mem;
    mem += k.fieldn;
    *mem++ = 0;
    op->k.colln = k.colln;
    op->k.recn = k.recn;
    op->k.fieldn = k.fieldn;
    op->k.kind = op_kind(type);
    op->val = (uint8_t *)mem;
    op->valn = (uint32_t)vb.len;
    if (vb.len)
        memcpy(mem, vb.p, vb.len);
    rep__buf_free(&vb);
    t->n++;
    return 0;
}

int
rep_txn_set(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value)
{
    if (!value)
        return -EINVAL;
    return txn_push(t, REP_OP_SET, key, field, value);
}

int
rep_txn_set_str(rep_txn_t *t, const char *key, const char *field, const char *s)
{
    if (!s)
        return -EINVAL;
    rep_value_t v = {.type = REP_STRING, .u.s = {s, strlen(s)}};
    return rep_txn_set(t, key, field, &v);
}

int
rep_txn_set_int(rep_txn_t *t, const char *key, const char *field, int64_t i)
{
    rep_value_t v = {.type = REP_INT, .u.i = i};
    return rep_txn_set(t, key, field, &v);
}

int
rep_txn_set_bool(rep_txn_t *t, const char *key, const char *field, int b)
{
    rep_value_t v = {.type = REP_BOOL, .u.b = b ? 1 : 0};
    return rep_txn_set(t, key, field, &v);
}

int
rep_txn_set_double(rep_txn_t *t, const char *key, const char *field, double d)
{
    rep_value_t v = {.type = REP_DOUBLE, .u.d = d};
    return rep_txn_set(t, key, field, &v);
}

int
rep_txn_set_null(rep_txn_t *t, const char *key, const char *field)
{
    rep_value_t v = {.type = REP_NULL};
    return rep_txn_set(t, key, field, &v);
}

int
rep_txn_set_bytes(rep_txn_t *t, const char *key, const char *field, const void *p, size_t n)
{
    rep_value_t v = {.type = REP_BYTES, .u.s = {p, n}};
    return rep_txn_set(t, key, field, &v);
}

int
rep_txn_incr(rep_txn_t *t, const char *key, const char *field, int64_t delta)
{
    rep_value_t v = {.type = REP_INT, .u.i = delta};
    return txn_push(t, REP_OP_INCR, key, field, &v);
}

int
rep_txn_add(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value)
{
    return txn_push(t, REP_OP_ADD, key, field, value);
}

int
rep_txn_remove(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value)
{
    return txn_push(t, REP_OP_REMOVE, key, field, value);
}

int
rep_txn_append(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value)
{
    return txn_push(t, REP_OP_APPEND, key, field, value);
}

int
rep_txn_del_field(rep_txn_t *t, const char *key, const char *field)
{
    return txn_push(t, REP_OP_DEL, key, field, NULL);
}

int
rep_txn_del_record(rep_txn_t *t, const char *key)
{
    return txn_push(t, REP_OP_CLEAR, key, NULL, NULL);
}

static void
txn_release_ops(rep_txn_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->ops[i].mem);
    free(t->ops);
    t->ops = NULL;
    t->n = t->cap = 0;
}

void
rep_txn_abort(rep_txn_t *t)
{
    if (!t || t->done)
        return;
    txn_release_ops(t);
    t->done = true;
}

void
rep_txn_free(rep_txn_t **tp)
{
    if (!tp || !*tp)
        return;
    rep_txn_abort(*tp);
    free((*tp)->user);
    free(*tp);
    *tp = NULL;
}

static int
cmp_mem(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int
cmp_record(const txn_op_t *a, const txn_op_t *b)
{
    int c = cmp_mem(a->k.coll, a->k.colln, b->k.coll, b->k.colln);
    return c ? c : cmp_mem(a->k.rec, a->k.recn, b->k.rec, b->k.recn);
}

/* Order: record, then field, then call order (so the last write of a field is last). */
static int
cmp_op(const void *pa, const void *pb)
{
    const txn_op_t *a = pa, *b = pb;
    int c = cmp_record(a, b);
    if (c)
        return c;
    c = cmp_mem(a->k.field, a->k.fieldn, b->k.field, b->k.fieldn);
    if (c)
        return c;
    return (a->order > b->order) - (a->order < b->order);
}

static const uint8_t exists_val[1] = {0xc3}; /* msgpack true */

static bool
same_field(const txn_op_t *a, const txn_op_t *b)
{
    return cmp_mem(a->k.field, a->k.fieldn, b->k.field, b->k.fieldn) == 0;
}

/* Set members: by value, then call order (so the last add or remove of a member is last). */
static int
cmp_member(const void *pa, const void *pb)
{
    const txn_op_t *a = pa, *b = pb;
    int c = cmp_mem((const char *)a->val, a->valn, (const char *)b->val, b->valn);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

static rep__op_t
change_op(const txn_op_t *o)
{
    return (rep__op_t){o->type, o->k.kind, o->k.coll, o->k.rec, o->k.field, (uint32_t)o->k.colln,
                       (uint32_t)o->k.recn, (uint32_t)o->k.fieldn, o->val, o->valn};
}

/*
 * The ops of one field's writes [g, end) made after the record's last delete (their order
 * numbers >= after): a register's last write; every counter increment; each set member's
 * last add or remove; every log append in call order. REP_EKIND when they mix kinds.
 */
static int
field_ops(txn_op_t *ops, size_t g, size_t end, uint32_t after, rep__op_t *out, size_t *n,
          bool *written)
{
    size_t first = g; /* the group is in call order: skip the writes before the delete */
    while (first < end && ops[first].order < after)
        first++;
    if (first == end)
        return 0;
    uint8_t kind = ops[first].k.kind;
    for (size_t i = first; i < end; i++)
        if (ops[i].k.kind != kind)
            return REP_EKIND;
    switch (kind) {
    case REP_KIND_REGISTER:
        out[(*n)++] = change_op(&ops[end - 1]);
        *written |= ops[end - 1].type == REP_OP_SET;
        return 0;
    case REP_KIND_SET:
        qsort(ops + first, end - first, sizeof *ops, cmp_member);
        for (size_t i = first; i < end; i++)
            if (i + 1 == end || cmp_mem((const char *)ops[i].val, ops[i].valn,
                                        (const char *)ops[i + 1].val, ops[i + 1].valn) != 0)
                out[(*n)++] = change_op(&ops[i]); /* the member's last add or remove */
        break;
    default: /* counters and logs: every write */
        for (size_t i = first; i < end; i++)
            out[(*n)++] = change_op(&ops[i]);
    }
    *written = true;
    return 0;
}

/*
 * Turn the buffered writes into the change's ops: per record (in key order) an optional
 * CLEAR (a record delete; writes made before it are dropped), then each field's writes made
 * after it (field_ops), then the existence register: live if the record was written, deleted
 * if it was only deleted. A register is thus written at most once per change.
 */
static int
txn_build_ops(rep_txn_t *t, rep__op_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    qsort(t->ops, t->n, sizeof *t->ops, cmp_op);
    rep__op_t *ops = calloc(t->n * 2 + 1, sizeof *ops);
    if (!ops)
        return -ENOMEM;
    size_t n = 0;
    int rc = 0;
    for (size_t g = 0, end; g < t->n && rc == 0; g = end) {
        uint32_t clear_at = 0;
        bool cleared = false, written = false;
        for (end = g; end < t->n && cmp_record(&t->ops[g], &t->ops[end]) == 0; end++)
            if (t->ops[end].type == REP_OP_CLEAR && (!cleared || t->ops[end].order > clear_at)) {
                cleared = true;
                clear_at = t->ops[end].order;
            }
        const txn_op_t *first = &t->ops[g];
        rep__op_t rec = {0, REP_KIND_REGISTER, first->k.coll, first->k.rec, "",
                         (uint32_t)first->k.colln, (uint32_t)first->k.recn, 0, NULL, 0};
        if (cleared) {
            ops[n] = rec;
            ops[n++].type = REP_OP_CLEAR;
        }
        size_t f = g;
        while (f < end && t->ops[f].type == REP_OP_CLEAR) /* field "": sorted first */
            f++;
        for (size_t fend; f < end && rc == 0; f = fend) {
            for (fend = f; fend < end && same_field(&t->ops[f], &t->ops[fend]); fend++)
                ;
            rc = field_ops(t->ops, f, fend, cleared ? clear_at : 0, ops, &n, &written);
        }
        if (written || cleared) {
            ops[n] = rec;
            ops[n].type = written ? REP_OP_SET : REP_OP_DEL;
            if (written) {
                ops[n].val = exists_val;
                ops[n].valn = sizeof exists_val;
            }
            n++;
        }
    }
    if (rc < 0) {
        free(ops);
        return rc;
    }
    *out = ops;
    *nout = n;
    return 0;
}

/* Do two change ops name the same field of the same record? */
static bool
same_target(const rep__op_t *a, const rep__op_t *b)
{
    return cmp_mem(a->coll, a->colln, b->coll, b->colln) == 0 &&
           cmp_mem(a->rec, a->recn, b->rec, b->recn) == 0 &&
           cmp_mem(a->field, a->fieldn, b->field, b->fieldn) == 0;
}

/* REP_EKIND when the store has a field of op's name of another kind and none of op's kind.
 * (After a concurrent clash both kinds exist, and either may still be written.) */
static int
check_kind(rep__txn_t *st, const rep__op_t *op)
{
    uint8_t key[REP_STATE_KEY_MAX];
    rep__skey_t k = {op->coll, op->rec, op->field, op->colln, op->recn, op->fieldn, op->kind,
                     NULL};
    size_t kn = rep__skey_make(key, &k, true); /* "coll\0rec\0field\0" kind */
    rep__cur_t *c;
    REP_TRY(rep__cur_open(st, REP_DB_STATE, &c));
    rep__slice_t found;
    int rc = rep__cur_seek(c, key, kn, &found, NULL);
    if (rc == 0 && found.n >= kn && memcmp(found.p, key, kn) == 0) {
        rc = 0; /* the field exists with this kind */
    } else if (rc == 0 || rc == REP_ENOTFOUND) {
        rc = rep__cur_seek(c, key, kn - 1, &found, NULL);
        rc = rc == 0 && found.n >= kn && memcmp(found.p, key, kn - 1) == 0 ? REP_EKIND
             : rc == REP_ENOTFOUND                                       ? 0
                                                                         : rc;
    }
    rep__cur_close(&c);
    return rc;
}

typedef struct commit_ctx {
    rep_txn_t *t;
    rep__op_t *ops;
    size_t nops;
    uint64_t seq;
} commit_ctx_t;

static int
commit_fn(rep__txn_t *st, void *arg)
{
    commit_ctx_t *cc = arg;
    rep_replica_t *r = cc->t->r;
    uint64_t now = rep__wall_ms(r);
    rep__applier_t a;
    rep__change_t c = {0};
    rep_vv_entry_t *vv = NULL;
    size_t nvv = 0;
    rep__buf_t buf;
    rep__buf_init(&buf);

    int rc = rep__applier_begin(&a, st, now, r->max_drift_ms);
    if (rc < 0)
        goto out;
    if ((rc = rep__own_get(st, &c.seq, c.prev)) < 0 || (rc = rep__vv_all(st, &vv, &nvv)) < 0)
        goto out;
    /* deps: the version vector without our own actor (implied by seq) */
    size_t w = 0;
    for (size_t i = 0; i < nvv; i++)
        if (vv[i].actor != r->actor)
            vv[w++] = vv[i];
    c.actor = r->actor;
    c.seq++;
    c.hlc = a.hlc = rep__hlc_next(a.hlc, now);
    a.local = true;
    c.deps = vv;
    c.ndeps = w;
    c.user = cc->t->user;
    c.usern = (uint32_t)strlen(cc->t->user);
    c.ops = cc->ops;
    c.nops = cc->nops;
    for (size_t i = 0; i < c.nops; i++) /* a field keeps its kind */
        if (c.ops[i].fieldn && (i == 0 || !same_target(&c.ops[i], &c.ops[i - 1])) &&
            (rc = check_kind(st, &c.ops[i])) < 0)
            goto out;
    /* sealed with the key of the current epoch, signed with this device's key */
    c.epoch = a.trust.epoch;
    c.inc = r->incarnation;
    const uint8_t *key = rep__trust_key(&a.trust, c.epoch, REP_SUBKEY_CHANGE);
    uint8_t sk[REP_SIGN_SK_BYTES];
    if (!key) {
        rc = a.relay ? REP_EROLE : REP_EKEY; /* a relay writes nothing of its own */
        goto out;
    }
    if ((rc = rep__meta_get_fixed(st, REP_META_SIGN_SK, sk, sizeof sk)) == 0)
        rc = rep__change_seal(&buf, &c, r->office, key, sk);
    rep__wipe(sk, sizeof sk);
    if (rc < 0)
        goto out;
    c.bytes = buf.p;
    c.len = buf.len;
    rep__hash(c.hash, buf.p, buf.len);
    if ((rc = rep__apply_change(&a, &c)) < 0)
        goto out;
    /* applied; or, after a rebuild (a revocation) left our earlier changes waiting for state
     * that comes again, waiting behind them, applied with them */
    if (a.stats.applied != 1 && a.stats.forks + a.stats.duplicates != 0)
        rc = REP_ECORRUPT; /* our own chain does not continue: the store is damaged */
    else
        rc = rep__own_put(st, c.seq, c.hash);
    cc->seq = c.seq;
out:
    rc = rep__applier_end(&a, rc);
    free(vv);
    rep__buf_free(&buf);
    return rc;
}

int
rep_txn_commit(rep_txn_t *t, uint64_t *seq)
{
    if (seq)
        *seq = 0;
    if (!t)
        return -EINVAL;
    if (t->done)
        return REP_EDONE;
    int rc = 0;
    if (t->n > 0) {
        commit_ctx_t cc = {t, NULL, 0, 0};
        rc = txn_build_ops(t, &cc.ops, &cc.nops);
        if (rc == 0)
            rc = rep__store_write(t->r->st, commit_fn, &cc);
        free(cc.ops);
        if (rc == 0)
            rep__node_poke(t->r); /* a node serving this directory pushes the change at once */
        if (rc == 0 && seq)
            *seq = cc.seq;
    }
    txn_release_ops(t);
    t->done = true;
    return rc;
}

