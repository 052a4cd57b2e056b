/* replica.c — the public facade: open/close, transactions, reads, exchange. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "change.h"
#include "codec.h"
#include "common.h"
#include "crdt.h"
#include "hlc.h"
#include "keys.h"
#include "store.h"

struct rep_replica {
    rep__store_t *st;
    uint8_t office[REP_OFFICE_ID_BYTES];
    char *office_name, *device_name;
    uint64_t actor;
    uint32_t incarnation;
    uint64_t (*clock_ms)(void *);
    void *clock_ctx;
    uint64_t max_drift_ms;
};

/* ---- Small helpers ---- */
static uint64_t
wall_ms(const rep_replica_t *r)
{
    if (r->clock_ms)
        return r->clock_ms(r->clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *
strndup_or_null(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int
meta_get_str(rep__txn_t *t, const char *key, char **out)
{
    rep__slice_t v;
    REP_TRY(rep__txn_get(t, REP_DB_META, key, strlen(key), &v));
    *out = strndup_or_null((const char *)v.p, v.n);
    return *out ? 0 : -ENOMEM;
}

static int
meta_get_fixed(rep__txn_t *t, const char *key, void *out, size_t n)
{
    rep__slice_t v;
    REP_TRY(rep__txn_get(t, REP_DB_META, key, strlen(key), &v));
    if (v.n != n)
        return REP_ECORRUPT;
    memcpy(out, v.p, n);
    return 0;
}

static int
meta_put(rep__txn_t *t, const char *key, const void *v, size_t n)
{
    return rep__txn_put(t, REP_DB_META, key, strlen(key), v, n);
}

/* Copy a stored canonical value out into *out (strings NUL-terminated, caller frees ptr). */
static int
value_copy(const uint8_t *p, size_t n, rep_value_t *out)
{
    REP_TRY(rep__value_decode(p, n, out));
    if (out->type == REP_STRING || out->type == REP_BYTES) {
        char *s = strndup_or_null(out->u.s.ptr, out->u.s.len);
        if (!s)
            return -ENOMEM;
        out->u.s.ptr = s;
    }
    return 0;
}

static void
value_release(rep_value_t *v)
{
    if (v->type == REP_STRING || v->type == REP_BYTES)
        free((void *)v->u.s.ptr);
    memset(v, 0, sizeof *v);
}

/* ---- Open and close ---- */
typedef struct init_ctx {
    const rep_open_opts_t *opts;
} init_ctx_t;

static int
init_fn(rep__txn_t *t, void *arg)
{
    init_ctx_t *ic = arg;
    const rep_open_opts_t *o = ic->opts;
    rep__slice_t v;
    int rc = rep__txn_get(t, REP_DB_META, REP_META_FORMAT, strlen(REP_META_FORMAT), &v);
    if (rc == 0)
        return o && (o->flags & REP_OPEN_EXCL) ? REP_EEXIST : 0; /* a replica already */
    if (rc != REP_ENOTFOUND)
        return rc;

    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES], office[REP_OFFICE_ID_BYTES], u32[4];
    char host[256] = "workstation";
    rep__sign_keypair(pk, sk);
    if (o && o->office_id)
        memcpy(office, o->office_id, sizeof office);
    else
        rep__random(office, sizeof office);
    const char *office_name = o && o->office_name ? o->office_name : "office";
    const char *device_name = o && o->device_name ? o->device_name : NULL;
    if (!device_name) {
        if (gethostname(host, sizeof host - 1) < 0)
            strcpy(host, "workstation");
        host[sizeof host - 1] = 0;
        device_name = host;
    }
    rep__put_be32(u32, REP_STORE_FORMAT);
    REP_TRY(meta_put(t, REP_META_FORMAT, u32, 4));
    REP_TRY(meta_put(t, REP_META_OFFICE, office, sizeof office));
    REP_TRY(meta_put(t, REP_META_OFFICE_NAME, office_name, strlen(office_name)));
    REP_TRY(meta_put(t, REP_META_DEVICE_NAME, device_name, strlen(device_name)));
    REP_TRY(meta_put(t, REP_META_SIGN_PK, pk, sizeof pk));
    REP_TRY(meta_put(t, REP_META_SIGN_SK, sk, sizeof sk));
    rep__put_be32(u32, 0);
    REP_TRY(meta_put(t, REP_META_INCARNATION, u32, 4));
    REP_TRY(rep__meta_put_u64(t, REP_META_ACTOR, rep__actor_derive(pk, 0)));
    return rep__meta_put_u64(t, REP_META_HLC, 0);
}

static int
load_fn(rep__txn_t *t, void *arg)
{
    rep_replica_t *r = arg;
    uint8_t u32[4];
    int rc = meta_get_fixed(t, REP_META_FORMAT, u32, 4);
    if (rc == REP_ENOTFOUND)
        return REP_ENOTREPLICA;
    REP_TRY(rc);
    if (rep__get_be32(u32) > REP_STORE_FORMAT)
        return REP_EVERSION;
    REP_TRY(meta_get_fixed(t, REP_META_OFFICE, r->office, sizeof r->office));
    REP_TRY(meta_get_str(t, REP_META_OFFICE_NAME, &r->office_name));
    REP_TRY(meta_get_str(t, REP_META_DEVICE_NAME, &r->device_name));
    REP_TRY(meta_get_fixed(t, REP_META_INCARNATION, u32, 4));
    r->incarnation = rep__get_be32(u32);
    return rep__meta_get_u64(t, REP_META_ACTOR, &r->actor);
}

static int
check_name_opt(const char *s)
{
    return s ? rep__name_check(s, strlen(s), REP_MAX_USER, false) : 0;
}

int
rep_replica_open(rep_replica_t **out, const char *dir, const rep_open_opts_t *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || !*dir)
        return -EINVAL;
    bool create = opts && (opts->flags & REP_OPEN_CREATE);
    if (opts) {
        if (opts->max_drift_ms > 24ull * 3600 * 1000)
            return -EINVAL;
        REP_TRY(check_name_opt(opts->office_name));
        REP_TRY(check_name_opt(opts->device_name));
    }
    REP_TRY(rep__keys_init());
    rep_replica_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    if (opts) {
        r->clock_ms = opts->clock_ms;
        r->clock_ctx = opts->clock_ctx;
        r->max_drift_ms = opts->max_drift_ms;
    }
    if (!r->max_drift_ms)
        r->max_drift_ms = REP_DEFAULT_MAX_DRIFT_MS;
    int rc = rep__store_open(&r->st, dir, create, opts && (opts->flags & REP_OPEN_NOSYNC));
    if (rc < 0)
        goto fail;
    if (create) {
        init_ctx_t ic = {opts};
        if ((rc = rep__store_write(r->st, init_fn, &ic)) < 0)
            goto fail;
    }
    if ((rc = rep__store_read(r->st, load_fn, r)) < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    rep_replica_close(&r);
    return rc;
}

void
rep_replica_close(rep_replica_t **rp)
{
    rep_replica_t *r = rp ? *rp : NULL;
    if (!r)
        return;
    rep__store_close(&r->st);
    free(r->office_name);
    free(r->device_name);
    free(r);
    *rp = NULL;
}

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
    if (type == REP_OP_SET) {
        int rc = rep__value_encode(&vb, v);
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
    op->k.kind = REP_KIND_REGISTER;
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

/*
 * Turn the buffered writes into the change's ops: per record (in key order) an optional
 * CLEAR (a record delete; writes made before it are dropped), then the last write of each
 * field made after it, then the existence register: live if the record was written, deleted
 * if it was only deleted. A change thus writes each field at most once.
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
    for (size_t g = 0, end; g < t->n; g = end) {
        uint32_t clear_at = 0;
        bool cleared = false, written = false;
        for (end = g; end < t->n && cmp_record(&t->ops[g], &t->ops[end]) == 0; end++)
            if (t->ops[end].type == REP_OP_CLEAR &&
                (!cleared || t->ops[end].order > clear_at)) {
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
        for (size_t i = g; i < end; i++) {
            const txn_op_t *o = &t->ops[i];
            if (o->type == REP_OP_CLEAR || (cleared && o->order < clear_at))
                continue;
            if (i + 1 < end && t->ops[i + 1].type != REP_OP_CLEAR &&
                cmp_mem(o->k.field, o->k.fieldn, t->ops[i + 1].k.field, t->ops[i + 1].k.fieldn) == 0)
                continue; /* a later write of the same field replaces this one */
            ops[n++] = (rep__op_t){o->type, REP_KIND_REGISTER, o->k.coll, o->k.rec, o->k.field,
                                   (uint32_t)o->k.colln, (uint32_t)o->k.recn,
                                   (uint32_t)o->k.fieldn, o->val, o->valn};
            written |= o->type == REP_OP_SET;
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
    *out = ops;
    *nout = n;
    return 0;
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
    uint64_t now = wall_ms(r);
    rep__applier_t a;
    rep__change_t c = {0};
    rep_vv_entry_t *vv = NULL;
    size_t nvv = 0;
    rep__buf_t buf;
    rep__buf_init(&buf);

    int rc = rep__applier_begin(&a, st, now, r->max_drift_ms);
    if (rc < 0)
        goto out;
    if ((rc = rep__vv_get(st, r->actor, &c.seq, c.prev)) < 0 || (rc = rep__vv_all(st, &vv, &nvv)) < 0)
        goto out;
    /* deps: the version vector without our own actor (implied by seq) */
    size_t w = 0;
    for (size_t i = 0; i < nvv; i++)
        if (vv[i].actor != r->actor)
            vv[w++] = vv[i];
    c.actor = r->actor;
    c.seq++;
    c.hlc = a.hlc = rep__hlc_next(a.hlc, now);
    c.deps = vv;
    c.ndeps = w;
    c.user = cc->t->user;
    c.usern = (uint32_t)strlen(cc->t->user);
    c.ops = cc->ops;
    c.nops = cc->nops;
    if ((rc = rep__change_encode(&buf, &c)) < 0)
        goto out;
    c.bytes = buf.p;
    c.len = buf.len;
    rep__hash(c.hash, buf.p, buf.len);
    if ((rc = rep__apply_change(&a, &c)) < 0)
        goto out;
    if (a.stats.applied != 1)
        rc = REP_ECORRUPT; /* our own chain does not continue: the store is damaged */
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
        if (rc == 0 && seq)
            *seq = cc.seq;
    }
    txn_release_ops(t);
    t->done = true;
    return rc;
}

/* ---- Reads ---- */
/* Decode the siblings under a state key; REP_ENOTFOUND when absent. */
static int
load_sibs(rep__txn_t *t, const uint8_t *key, size_t kn, rep__sibs_t *s)
{
    rep__slice_t v;
    REP_TRY(rep__txn_get(t, REP_DB_STATE, key, kn, &v));
    return rep__sibs_decode(s, v.p, v.n);
}

/* Is the record (its existence register) live? Sets *conflict for delete vs update. */
static int
record_exists(rep__txn_t *t, const rep__skey_t *rk, rep__sibs_t *s, bool *conflict)
{
    uint8_t key[REP_STATE_KEY_MAX];
    rep__skey_t k = *rk;
    k.field = "";
    k.fieldn = 0;
    k.kind = REP_KIND_REGISTER;
    size_t kn = rep__skey_make(key, &k, true);
    int rc = load_sibs(t, key, kn, s);
    if (rc == REP_ENOTFOUND)
        return 0;
    REP_TRY(rc);
    int live = 0, dead = 0;
    for (size_t i = 0; i < s->n; i++)
        s->v[i].deleted ? dead++ : live++;
    if (conflict)
        *conflict = live && dead;
    return live > 0;
}

typedef struct get_ctx {
    rep__skey_t k;
    rep_value_t *out;
} get_ctx_t;

static int
get_fn(rep__txn_t *t, void *arg)
{
    get_ctx_t *g = arg;
    rep__sibs_t s = {0};
    uint8_t key[REP_STATE_KEY_MAX];
    int rc = record_exists(t, &g->k, &s, NULL);
    if (rc == 0)
        rc = REP_ENOTFOUND;
    if (rc > 0) {
        size_t kn = rep__skey_make(key, &g->k, true);
        rc = load_sibs(t, key, kn, &s);
        int w = rc == 0 ? rep__reg_winner(&s) : -1;
        if (rc == 0 && w < 0)
            rc = REP_ENOTFOUND;
        if (rc == 0)
            rc = value_copy(s.v[w].val, s.v[w].valn, g->out);
    }
    rep__sibs_free(&s);
    return rc;
}

int
rep_replica_get(rep_replica_t *r, const char *key, const char *field, rep_value_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || !field)
        return -EINVAL;
    get_ctx_t g;
    REP_TRY(rep__key_split(key, &g.k));
    g.k.field = field;
    g.k.fieldn = strlen(field);
    REP_TRY(rep__name_check(field, g.k.fieldn, REP_MAX_FIELD, false));
    g.out = calloc(1, sizeof *g.out);
    if (!g.out)
        return -ENOMEM;
    int rc = rep__store_read(r->st, get_fn, &g);
    if (rc < 0) {
        free(g.out);
        return rc;
    }
    *out = g.out;
    return 0;
}

void
rep_value_free(rep_value_t **vp)
{
    if (!vp || !*vp)
        return;
    value_release(*vp);
    free(*vp);
    *vp = NULL;
}

static void
record_release(rep_record_t *rec)
{
    for (size_t i = 0; i < rec->nfields; i++) {
        free((void *)rec->fields[i].name);
        value_release(&rec->fields[i].value);
    }
    free(rec->fields);
    free((void *)rec->key);
    memset(rec, 0, sizeof *rec);
}

/* A cursor over state entries, read one record at a time. */
typedef struct rec_reader {
    rep__cur_t *cur;
    rep__slice_t k, v;
    int rc;              /* of the last cursor step: 0 or REP_ENOTFOUND */
    rep__sibs_t sibs;
} rec_reader_t;

/* Read the record whose entries start at the cursor into rec; *visible says whether it
 * exists (rec is empty otherwise). Leaves the cursor on the first entry past the record. */
static int
read_record(rec_reader_t *rr, rep_record_t *rec, bool *visible)
{
    memset(rec, 0, sizeof *rec);
    *visible = false;
    rep__skey_t first;
    REP_TRY(rep__skey_parse(rr->k.p, rr->k.n, &first));
    size_t cap = 0;
    bool exists = false;
    int rc = 0;
    for (; rr->rc == 0; rr->rc = rep__cur_next(rr->cur, &rr->k, &rr->v)) {
        rep__skey_t sk;
        if ((rc = rep__skey_parse(rr->k.p, rr->k.n, &sk)) < 0)
            break;
        if (sk.colln != first.colln || sk.recn != first.recn ||
            memcmp(sk.coll, first.coll, sk.colln) || memcmp(sk.rec, first.rec, sk.recn))
            break;
        if ((rc = rep__sibs_decode(&rr->sibs, rr->v.p, rr->v.n)) < 0)
            break;
        int w = rep__reg_winner(&rr->sibs);
        if (sk.fieldn == 0) {
            exists = w >= 0;
            int dead = 0;
            for (size_t i = 0; i < rr->sibs.n; i++)
                dead += rr->sibs.v[i].deleted;
            rec->delete_conflict = exists && dead > 0;
            continue;
        }
        if (w < 0)
            continue;
        if (rec->nfields == cap) {
            cap = cap ? cap * 2 : 8;
            rep_field_t *f = realloc(rec->fields, cap * sizeof *f);
            if (!f) {
                rc = -ENOMEM;
                break;
            }
            rec->fields = f;
        }
        rep_field_t *f = &rec->fields[rec->nfields];
        memset(f, 0, sizeof *f);
        f->name = strndup_or_null(sk.field, sk.fieldn);
        f->kind = (rep_kind_t)sk.kind;
        f->siblings = (unsigned)rr->sibs.n;
        if (!f->name) {
            rc = -ENOMEM;
            break;
        }
        rec->nfields++;
        if ((rc = value_copy(rr->sibs.v[w].val, rr->sibs.v[w].valn, &f->value)) < 0)
            break;
    }
    if (rc == 0 && rr->rc != 0 && rr->rc != REP_ENOTFOUND)
        rc = rr->rc;
    if (rc == 0 && exists) {
        char *key = malloc(first.colln + first.recn + 2);
        if (!key) {
            rc = -ENOMEM;
        } else {
            memcpy(key, first.coll, first.colln);
            key[first.colln] = '/';
            memcpy(key + first.colln + 1, first.rec, first.recn);
            key[first.colln + 1 + first.recn] = 0;
            rec->key = key;
            *visible = true;
        }
    }
    if (rc < 0 || !*visible)
        record_release(rec);
    return rc;
}

typedef struct list_ctx {
    rep__skey_t k;       /* collection and record prefix */
    bool one_record;     /* exact record (get_record) rather than a prefix */
    size_t limit;
    rep_list_t *out;
} list_ctx_t;

static int
list_fn(rep__txn_t *t, void *arg)
{
    list_ctx_t *lc = arg;
    uint8_t prefix[REP_STATE_KEY_MAX];
    /* "coll\0" + record prefix; with one_record the full "coll\0rec\0" */
    size_t pn = rep__skey_make(prefix, &lc->k, false);
    if (!lc->one_record)
        pn--; /* drop the record's terminator: a prefix of record ids */
    rec_reader_t rr = {0};
    size_t cap = 0;
    int rc = rep__cur_open(t, REP_DB_STATE, &rr.cur);
    if (rc < 0)
        return rc;
    rr.rc = rep__cur_seek(rr.cur, prefix, pn, &rr.k, &rr.v);
    while (rr.rc == 0 && rr.k.n >= pn && memcmp(rr.k.p, prefix, pn) == 0) {
        if (lc->limit && lc->out->n >= lc->limit)
            break;
        rep_record_t rec;
        bool visible;
        if ((rc = read_record(&rr, &rec, &visible)) < 0)
            break;
        if (!visible)
            continue;
        if (lc->out->n == cap) {
            cap = cap ? cap * 2 : 16;
            rep_record_t *v = realloc(lc->out->records, cap * sizeof *v);
            if (!v) {
                record_release(&rec);
                rc = -ENOMEM;
                break;
            }
            lc->out->records = v;
        }
        lc->out->records[lc->out->n++] = rec;
    }
    if (rc == 0 && rr.rc != 0 && rr.rc != REP_ENOTFOUND)
        rc = rr.rc;
    rep__cur_close(&rr.cur);
    rep__sibs_free(&rr.sibs);
    return rc;
}

static int
list_run(rep_replica_t *r, list_ctx_t *lc, rep_list_t **out)
{
    lc->out = calloc(1, sizeof *lc->out);
    if (!lc->out)
        return -ENOMEM;
    int rc = rep__store_read(r->st, list_fn, lc);
    if (rc < 0) {
        rep_list_free(&lc->out);
        return rc;
    }
    *out = lc->out;
    return 0;
}

int
rep_replica_get_record(rep_replica_t *r, const char *key, rep_record_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    list_ctx_t lc = {.one_record = true, .limit = 1};
    REP_TRY(rep__key_split(key, &lc.k));
    rep_list_t *l;
    REP_TRY(list_run(r, &lc, &l));
    if (l->n == 0) {
        rep_list_free(&l);
        return REP_ENOTFOUND;
    }
    rep_record_t *rec = malloc(sizeof *rec);
    if (!rec) {
        rep_list_free(&l);
        return -ENOMEM;
    }
    *rec = l->records[0];
    l->n = 0;
    rep_list_free(&l);
    *out = rec;
    return 0;
}

void
rep_record_free(rep_record_t **recp)
{
    if (!recp || !*recp)
        return;
    record_release(*recp);
    free(*recp);
    *recp = NULL;
}

int
rep_replica_list(rep_replica_t *r, const char *coll, const char *prefix, size_t limit,
                 rep_list_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || !coll)
        return -EINVAL;
    list_ctx_t lc = {.limit = limit};
    lc.k.coll = coll;
    lc.k.colln = strlen(coll);
    lc.k.rec = prefix ? prefix : "";
    lc.k.recn = strlen(lc.k.rec);
    REP_TRY(rep__name_check(coll, lc.k.colln, REP_MAX_COLLECTION, false));
    if (memchr(coll, '/', lc.k.colln))
        return -EINVAL;
    REP_TRY(rep__name_check(lc.k.rec, lc.k.recn, REP_MAX_RECORD, true));
    return list_run(r, &lc, out);
}

void
rep_list_free(rep_list_t **lp)
{
    if (!lp || !*lp)
        return;
    for (size_t i = 0; i < (*lp)->n; i++)
        record_release(&(*lp)->records[i]);
    free((*lp)->records);
    free(*lp);
    *lp = NULL;
}

/* ---- Conflicts ---- */
static void
conflict_release(rep_conflict_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free((void *)c->siblings[i].user);
        value_release(&c->siblings[i].value);
    }
    free(c->siblings);
    free((void *)c->key);
    free((void *)c->field);
}

static char *
record_key_str(const rep__skey_t *k)
{
    char *s = malloc(k->colln + k->recn + 2);
    if (s)
        sprintf(s, "%.*s/%.*s", (int)k->colln, k->coll, (int)k->recn, k->rec);
    return s;
}

/* Fill c from a state entry with more than one sibling. */
static int
conflict_fill(rep_conflict_t *c, const rep__skey_t *sk, const rep__sibs_t *s)
{
    memset(c, 0, sizeof *c);
    c->kind = (rep_kind_t)sk->kind;
    c->key = record_key_str(sk);
    c->field = strndup_or_null(sk->field, sk->fieldn);
    c->siblings = calloc(s->n, sizeof *c->siblings);
    if (!c->key || !c->field || !c->siblings)
        return -ENOMEM;
    int w = rep__reg_winner(s);
    for (size_t i = 0; i < s->n; i++) {
        const rep__sib_t *x = &s->v[i];
        rep_sibling_t *o = &c->siblings[i];
        c->n++;
        o->actor = x->actor;
        o->seq = x->seq;
        o->hlc = x->hlc;
        o->deleted = x->deleted;
        o->winner = (int)i == w;
        if (!(o->user = strndup_or_null(x->user, x->usern)))
            return -ENOMEM;
        if (!x->deleted && sk->fieldn > 0)
            REP_TRY(value_copy(x->val, x->valn, &o->value));
    }
    return 0;
}

/* More than one sibling is a conflict; for the record's existence only a delete concurrent
 * with an update is (concurrent updates each leave a live sibling there: not news). */
static bool
is_conflict(const rep__skey_t *sk, const rep__sibs_t *s)
{
    if (s->n < 2)
        return false;
    if (sk->fieldn > 0)
        return true;
    size_t dead = 0;
    for (size_t i = 0; i < s->n; i++)
        dead += s->v[i].deleted;
    return dead > 0 && dead < s->n;
}

typedef struct conflicts_ctx {
    const rep__skey_t *k;    /* one record, or NULL */
    rep_conflicts_t *out;
    uint64_t count;          /* with out NULL: only count */
} conflicts_ctx_t;

static int
conflicts_fn(rep__txn_t *t, void *arg)
{
    conflicts_ctx_t *cc = arg;
    uint8_t prefix[REP_STATE_KEY_MAX];
    size_t pn = cc->k ? rep__skey_make(prefix, cc->k, false) : 0;
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &cur));
    rep__sibs_t s = {0};
    rep__slice_t k, v;
    size_t cap = 0;
    int rc;
    for (rc = rep__cur_seek(cur, pn ? prefix : NULL, pn, &k, &v); rc == 0;
         rc = rep__cur_next(cur, &k, &v)) {
        if (k.n < pn || memcmp(k.p, prefix, pn) != 0)
            break;
        rep__skey_t sk;
        if ((rc = rep__skey_parse(k.p, k.n, &sk)) < 0 ||
            (rc = rep__sibs_decode(&s, v.p, v.n)) < 0)
            break;
        if (!is_conflict(&sk, &s))
            continue;
        cc->count++;
        if (!cc->out)
            continue;
        if (cc->out->n == cap) {
            cap = cap ? cap * 2 : 8;
            rep_conflict_t *items = realloc(cc->out->items, cap * sizeof *items);
            if (!items) {
                rc = -ENOMEM;
                break;
            }
            cc->out->items = items;
        }
        rc = conflict_fill(&cc->out->items[cc->out->n], &sk, &s);
        cc->out->n++;
        if (rc < 0)
            break;
    }
    rep__cur_close(&cur);
    rep__sibs_free(&s);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

int
rep_replica_conflicts(rep_replica_t *r, const char *key, rep_conflicts_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    rep__skey_t k;
    conflicts_ctx_t cc = {NULL, NULL, 0};
    if (key) {
        REP_TRY(rep__key_split(key, &k));
        cc.k = &k;
    }
    if (!(cc.out = calloc(1, sizeof *cc.out)))
        return -ENOMEM;
    int rc = rep__store_read(r->st, conflicts_fn, &cc);
    if (rc < 0) {
        rep_conflicts_free(&cc.out);
        return rc;
    }
    *out = cc.out;
    return 0;
}

void
rep_conflicts_free(rep_conflicts_t **cp)
{
    if (!cp || !*cp)
        return;
    for (size_t i = 0; i < (*cp)->n; i++)
        conflict_release(&(*cp)->items[i]);
    free((*cp)->items);
    free(*cp);
    *cp = NULL;
}

/* ---- History ---- */
static void
change_info_release(rep_change_info_t *ci)
{
    for (size_t i = 0; i < ci->nops; i++) {
        free((void *)ci->ops[i].field);
        value_release(&ci->ops[i].value);
    }
    free(ci->ops);
    free((void *)ci->user);
}

/* The ops of change c that touch record k. */
static int
change_info_fill(rep_change_info_t *ci, const rep__change_t *c, const rep__skey_t *k)
{
    memset(ci, 0, sizeof *ci);
    ci->actor = c->actor;
    ci->seq = c->seq;
    ci->hlc = c->hlc;
    if (!(ci->user = strndup_or_null(c->user, c->usern)) ||
        !(ci->ops = calloc(c->nops, sizeof *ci->ops)))
        return -ENOMEM;
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        if (op->colln != k->colln || op->recn != k->recn || memcmp(op->coll, k->coll, k->colln) ||
            memcmp(op->rec, k->rec, k->recn))
            continue;
        rep_op_t *o = &ci->ops[ci->nops++];
        o->type = (rep_op_type_t)op->type;
        o->kind = (rep_kind_t)op->kind;
        if (!(o->field = strndup_or_null(op->field, op->fieldn)))
            return -ENOMEM;
        if (op->type == REP_OP_SET && op->fieldn > 0)
            REP_TRY(value_copy(op->val, op->valn, &o->value));
    }
    return 0;
}

typedef struct history_ctx {
    rep__skey_t k;
    rep_history_t *out;
} history_ctx_t;

static int
history_fn(rep__txn_t *t, void *arg)
{
    history_ctx_t *hc = arg;
    uint8_t key[REP_STATE_KEY_MAX];
    size_t kn = rep__skey_make(key, &hc->k, false);
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_HIST, &cur));
    rep__slice_t k, v;
    size_t cap = 0;
    int rc = rep__cur_seek(cur, key, kn, &k, &v);
    if (rc == 0 && (k.n != kn || memcmp(k.p, key, kn) != 0))
        rc = REP_ENOTFOUND;
    for (; rc == 0; rc = rep__cur_next_dup(cur, &k, &v)) {
        rep__slice_t bytes;
        rep__change_t c;
        if (v.n != 16 || (rc = rep__txn_get(t, REP_DB_LOG, v.p, 16, &bytes)) < 0)
            break;
        if ((rc = rep__change_decode(bytes.p, bytes.n, &c)) < 0)
            break;
        if (hc->out->n == cap) {
            cap = cap ? cap * 2 : 8;
            rep_change_info_t *ch = realloc(hc->out->changes, cap * sizeof *ch);
            if (!ch) {
                rep__change_clear(&c);
                rc = -ENOMEM;
                break;
            }
            hc->out->changes = ch;
        }
        rc = change_info_fill(&hc->out->changes[hc->out->n++], &c, &hc->k);
        rep__change_clear(&c);
        if (rc < 0)
            break;
    }
    rep__cur_close(&cur);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

static int
cmp_change_info(const void *pa, const void *pb)
{
    const rep_change_info_t *a = pa, *b = pb;
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    if (a->actor != b->actor)
        return a->actor < b->actor ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

int
rep_replica_history(rep_replica_t *r, const char *key, rep_history_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    history_ctx_t hc;
    REP_TRY(rep__key_split(key, &hc.k));
    if (!(hc.out = calloc(1, sizeof *hc.out)))
        return -ENOMEM;
    int rc = rep__store_read(r->st, history_fn, &hc);
    if (rc < 0) {
        rep_history_free(&hc.out);
        return rc;
    }
    if (hc.out->n > 1)
        qsort(hc.out->changes, hc.out->n, sizeof *hc.out->changes, cmp_change_info);
    *out = hc.out;
    return 0;
}

void
rep_history_free(rep_history_t **hp)
{
    if (!hp || !*hp)
        return;
    for (size_t i = 0; i < (*hp)->n; i++)
        change_info_release(&(*hp)->changes[i]);
    free((*hp)->changes);
    free(*hp);
    *hp = NULL;
}

/* ---- Digest and info ---- */
static int
digest_fn(rep__txn_t *t, void *arg)
{
    uint8_t *out = arg;
    rep__hasher_t h;
    rep__hasher_init(&h);
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &cur));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(cur, &k, &v)) {
        uint8_t len[8];
        rep__put_be32(len, (uint32_t)k.n);
        rep__put_be32(len + 4, (uint32_t)v.n);
        rep__hasher_add(&h, len, sizeof len);
        rep__hasher_add(&h, k.p, k.n);
        rep__hasher_add(&h, v.p, v.n);
    }
    rep__cur_close(&cur);
    rep__hasher_final(&h, out);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

int
rep_replica_digest(rep_replica_t *r, uint8_t out[REP_DIGEST_BYTES])
{
    if (!r || !out)
        return -EINVAL;
    return rep__store_read(r->st, digest_fn, out);
}

typedef struct info_ctx {
    rep_replica_t *r;
    rep_info_t *out;
} info_ctx_t;

static int
count_records(rep__txn_t *t, uint64_t *records)
{
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &cur));
    rep__sibs_t s = {0};
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(cur, &k, &v)) {
        rep__skey_t sk;
        if ((rc = rep__skey_parse(k.p, k.n, &sk)) < 0 || (rc = rep__sibs_decode(&s, v.p, v.n)) < 0)
            break;
        if (sk.fieldn == 0 && rep__reg_winner(&s) >= 0)
            (*records)++;
    }
    rep__cur_close(&cur);
    rep__sibs_free(&s);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

static int
info_fn(rep__txn_t *t, void *arg)
{
    info_ctx_t *ic = arg;
    rep_info_t *o = ic->out;
    conflicts_ctx_t cc = {NULL, NULL, 0};
    free(o->vv);
    o->vv = NULL;
    o->records = 0;
    REP_TRY(rep__vv_get(t, ic->r->actor, &o->seq, NULL));
    REP_TRY(rep__meta_get_u64(t, REP_META_HLC, &o->hlc));
    REP_TRY(rep__txn_count(t, REP_DB_LOG, &o->changes));
    REP_TRY(rep__txn_count(t, REP_DB_PENDING, &o->pending));
    REP_TRY(count_records(t, &o->records));
    REP_TRY(conflicts_fn(t, &cc));
    o->conflicts = cc.count;
    return rep__vv_all(t, &o->vv, &o->nvv);
}

int
rep_replica_info(rep_replica_t *r, rep_info_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    rep_info_t *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    memcpy(o->office_id, r->office, sizeof o->office_id);
    o->office_name = strdup(r->office_name);
    o->device_name = strdup(r->device_name);
    o->actor = r->actor;
    o->incarnation = r->incarnation;
    info_ctx_t ic = {r, o};
    int rc = !o->office_name || !o->device_name ? -ENOMEM : rep__store_read(r->st, info_fn, &ic);
    if (rc < 0) {
        rep_info_free(&o);
        return rc;
    }
    *out = o;
    return 0;
}

void
rep_info_free(rep_info_t **ip)
{
    if (!ip || !*ip)
        return;
    free((void *)(*ip)->office_name);
    free((void *)(*ip)->device_name);
    free((*ip)->vv);
    free(*ip);
    *ip = NULL;
}

/* ---- Exchange ---- */
typedef struct vv_ctx {
    rep_vv_entry_t *vv;
    size_t n;
} vv_ctx_t;

static int
vv_fn(rep__txn_t *t, void *arg)
{
    vv_ctx_t *vc = arg;
    return rep__vv_all(t, &vc->vv, &vc->n);
}

int
rep_replica_vv(rep_replica_t *r, uint8_t **out, size_t *len)
{
    if (!out || !len)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (!r)
        return -EINVAL;
    vv_ctx_t vc = {NULL, 0};
    REP_TRY(rep__store_read(r->st, vv_fn, &vc));
    int rc = rep__vv_encode(r->office, vc.vv, vc.n, out, len);
    free(vc.vv);
    return rc;
}

typedef struct export_ctx {
    rep_replica_t *r;
    const rep_vv_entry_t *theirs;
    size_t ntheirs;
    size_t max_bytes;
    rep__batch_writer_t w;
    int more;
} export_ctx_t;

static uint64_t
vv_lookup(const rep_vv_entry_t *vv, size_t n, uint64_t actor)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vv[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && vv[lo].actor == actor ? vv[lo].seq : 0;
}

/*
 * Emit what the other side lacks in causal order: `sent` starts as their version vector
 * (restricted to our actors); repeatedly take, for each actor, its next change if every
 * dependency is covered by sent. Our own log was applied causally, so this always drains.
 */
static int
export_fn(rep__txn_t *t, void *arg)
{
    export_ctx_t *ec = arg;
    rep_vv_entry_t *ours = NULL, *sent = NULL;
    size_t n = 0;
    REP_TRY(rep__vv_all(t, &ours, &n));
    int rc = 0;
    if (n && !(sent = calloc(n, sizeof *sent)))
        rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sent[i].actor = ours[i].actor;
        sent[i].seq = vv_lookup(ec->theirs, ec->ntheirs, ours[i].actor);
    }
    bool progress = true, full = false;
    while (rc == 0 && progress && !full) {
        progress = false;
        for (size_t i = 0; i < n && rc == 0 && !full; i++) {
            while (sent[i].seq < ours[i].seq) {
                uint8_t k[16];
                rep__put_be64(k, ours[i].actor);
                rep__put_be64(k + 8, sent[i].seq + 1);
                rep__slice_t bytes;
                rep__change_t c;
                if ((rc = rep__txn_get(t, REP_DB_LOG, k, sizeof k, &bytes)) < 0 ||
                    (rc = rep__change_decode(bytes.p, bytes.n, &c)) < 0)
                    break;
                bool ready = true;
                for (size_t d = 0; d < c.ndeps && ready; d++)
                    ready = vv_lookup(sent, n, c.deps[d].actor) >= c.deps[d].seq;
                rep__change_clear(&c);
                if (!ready)
                    break;
                if (ec->max_bytes && ec->w.count > 0 &&
                    rep__batch_size_with(&ec->w, bytes.n) > ec->max_bytes) {
                    full = true;
                    ec->more = 1;
                    break;
                }
                rep__batch_add(&ec->w, bytes.p, bytes.n);
                sent[i].seq++;
                progress = true;
            }
        }
    }
    if (rc == REP_ENOTFOUND)
        rc = REP_ECORRUPT; /* the vv promises a change the log does not have */
    free(ours);
    free(sent);
    return rc;
}

int
rep_replica_export(rep_replica_t *r, const uint8_t *vv, size_t vvlen, size_t max_bytes,
                   uint8_t **out, size_t *len, int *more)
{
    if (!out || !len)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (more)
        *more = 0;
    if (!r)
        return -EINVAL;
    export_ctx_t ec = {r, NULL, 0, max_bytes, {{0}, 0, 0}, 0};
    rep_vv_entry_t *theirs = NULL;
    if (vv || vvlen) {
        uint8_t office[REP_OFFICE_ID_BYTES];
        REP_TRY(rep__vv_decode(vv, vvlen, office, &theirs, &ec.ntheirs));
        if (memcmp(office, r->office, sizeof office) != 0) {
            free(theirs);
            return REP_EOFFICE;
        }
        ec.theirs = theirs;
    }
    rep__batch_begin(&ec.w, r->office, r->office_name, r->actor);
    int rc = rep__store_read(r->st, export_fn, &ec);
    free(theirs);
    if (rc < 0) {
        rep__buf_free(&ec.w.buf);
        return rc;
    }
    REP_TRY(rep__batch_end(&ec.w, out, len));
    if (more)
        *more = ec.more;
    return 0;
}

typedef struct import_ctx {
    rep_replica_t *r;
    rep__change_t *changes;
    size_t n;
    rep_import_stats_t stats;
} import_ctx_t;

static int
import_fn(rep__txn_t *t, void *arg)
{
    import_ctx_t *ic = arg;
    rep__applier_t a;
    int rc = rep__applier_begin(&a, t, wall_ms(ic->r), ic->r->max_drift_ms);
    for (size_t i = 0; i < ic->n && rc == 0; i++)
        rc = rep__apply_change(&a, &ic->changes[i]);
    if (rc == 0)
        rc = rep__apply_pending(&a);
    if (rc == 0)
        rc = rep__txn_count(t, REP_DB_PENDING, &a.stats.pending);
    ic->stats = a.stats;
    return rep__applier_end(&a, rc);
}

int
rep_replica_import(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!r)
        return -EINVAL;
    rep__batch_t b;
    REP_TRY(rep__batch_decode(batch, len, &b));
    import_ctx_t ic = {r, NULL, 0, {0}};
    int rc = 0;
    if (memcmp(b.office, r->office, sizeof b.office) != 0)
        rc = REP_EOFFICE;
    else if (b.n && !(ic.changes = calloc(b.n, sizeof *ic.changes)))
        rc = -ENOMEM;
    /* verify everything before touching the store */
    for (size_t i = 0; i < b.n && rc == 0; i++, ic.n++)
        rc = rep__change_decode(b.changes[i].p, b.changes[i].n, &ic.changes[i]);
    if (rc == 0 && ic.n)
        rc = rep__store_write(r->st, import_fn, &ic);
    for (size_t i = 0; i < ic.n; i++)
        rep__change_clear(&ic.changes[i]);
    free(ic.changes);
    if (rc == 0 && stats) {
        *stats = ic.stats;
        stats->changes = b.n;
    }
    rep__batch_clear(&b);
    return rc;
}

int
rep_batch_office(const uint8_t *batch, size_t len, uint8_t office_id[REP_OFFICE_ID_BYTES],
                 char **office_name)
{
    if (office_name)
        *office_name = NULL;
    if (!office_id)
        return -EINVAL;
    rep__batch_t b;
    REP_TRY(rep__batch_decode(batch, len, &b));
    memcpy(office_id, b.office, REP_OFFICE_ID_BYTES);
    int rc = 0;
    if (office_name && !(*office_name = strndup_or_null(b.office_name, b.office_namen)))
        rc = -ENOMEM;
    rep__batch_clear(&b);
    return rc;
}

void
rep_free(void *p)
{
    free(p);
}

/* ---- Misc ---- */
const char *
rep_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case REP_ENOTFOUND: return "not found";
    case REP_ECORRUPT: return "corrupted or malformed data (checksum or decoding failed)";
    case REP_EVERSION: return "written by a newer version of libreplica";
    case REP_ENOTREPLICA: return "not a replica directory";
    case REP_EOFFICE: return "belongs to another office";
    case REP_EBUSY: return "replica already open in this process";
    case REP_ETOOBIG: return "name, value or transaction over the documented limit";
    case REP_EEXIST: return "already exists";
    case REP_EFORK: return "a device's history forked (same change number, different content)";
    case REP_EKIND: return "field used with another kind than its own";
    case REP_EDONE: return "transaction already committed or aborted";
    }
    if (rc < 0 && rc > REP_ERROR_BASE)
        return strerror(-rc);
    return "unknown error";
}

const char *
rep_version(void)
{
    return REP_VERSION_STRING;
}
