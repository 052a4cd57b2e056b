/*
 * check_exchange.c — replicas of one office trading batches converge (DESIGN.md invariants 1–3).
 *
 * Several replicas live in one process. Each makes random writes over a small key space, so
 * concurrent edits are frequent, and they trade batches (rep_replica_vv → rep_replica_export →
 * rep_replica_import) in random orders, with duplicates, stale and foreign version vectors,
 * size-bounded batches and self-imports. After a full exchange every replica must hold the same
 * state: equal digests, equal reads, equal conflicts. Only the public API is used.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"
#include "checkutil.h"

/* ---- Assertion helpers -------------------------------------------------------------------- */

/* ---- A small office: n replicas of one office in one process ------------------------------ */

#define MAXR 5
#define VV_KEEP 4      /* stale version vectors kept per replica */
#define POOL 24        /* old batches kept for re-import */

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob_t;

typedef struct office {
    char *dir;
    int n;
    rep_replica_t *r[MAXR];
    tu_clock_t clk[MAXR];
    uint64_t actor[MAXR];
    uint8_t id[REP_OFFICE_ID_BYTES];
    uint64_t seed;
    tu_rng_t rng;
    blob_t oldvv[MAXR][VV_KEEP];
    blob_t pool[POOL];
    uint64_t last_hlc[MAXR];
    uint64_t last_seq[MAXR];
} office_t;

static void
blob_free(blob_t *b)
{
    rep_free(b->p);
    b->p = NULL;
    b->n = 0;
}

/* Take ownership of library-allocated bytes @p p (freed with rep_free). */
static void
blob_take(blob_t *dst, uint8_t *p, size_t n)
{
    blob_free(dst);
    dst->p = p;
    dst->n = n;
}

/* Open @p n replicas of one new office, with NOSYNC and fake clocks skewed a little apart. */
static void
office_open(office_t *o, int n, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->n = n;
    o->seed = seed;
    tu_rng_seed(&o->rng, seed);
    o->dir = tu_tmpdir_in(g_root);
    ck_assert_msg(o->dir != NULL, "mkdtemp");

    for (int i = 0; i < n; i++) {
        rep_open_opts_t opts;
        char sub[16];

        memset(&opts, 0, sizeof opts);
        opts.flags = REP_OPEN_NOSYNC;
        opts.device_name = "ws";
        tu_clock_set(&o->clk[i], TU_CLOCK_EPOCH_MS + (uint64_t)i * 700);
        tu_clock_use(&o->clk[i], &opts);
        snprintf(sub, sizeof sub, "r%d", i);
        CK_OK(tu_replica_create(&o->r[i], o->dir, sub, &opts, i == 0 ? NULL : o->r[0]));
        ck_assert_ptr_nonnull(o->r[i]);

        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(o->r[i], &info));
        if (i == 0)
            memcpy(o->id, info->office_id, REP_OFFICE_ID_BYTES);
        else
            ck_assert_mem_eq(info->office_id, o->id, REP_OFFICE_ID_BYTES);
        ck_assert_uint_eq(info->seq, 0);
        ck_assert_uint_eq(info->records, 0);
        o->actor[i] = info->actor;
        o->last_hlc[i] = info->hlc;
        rep_info_free(&info);
        for (int j = 0; j < i; j++)
            ck_assert_msg(o->actor[j] != o->actor[i], "replicas %d and %d share actor %016" PRIx64,
                          j, i, o->actor[i]);
    }
    for (int i = 1; i < n; i++) /* every replica knows every member */
        CK_OK(tu_members_share(o->r[0], o->r[i]));
}

static void
office_close(office_t *o)
{
    for (int i = 0; i < o->n; i++) {
        rep_replica_close(&o->r[i]);
        ck_assert_ptr_null(o->r[i]);
        for (int k = 0; k < VV_KEEP; k++)
            blob_free(&o->oldvv[i][k]);
    }
    for (int k = 0; k < POOL; k++)
        blob_free(&o->pool[k]);
    tu_rmtree(o->dir);
    free(o->dir);
    o->dir = NULL;
}

/* ---- The key space ------------------------------------------------------------------------ */

static const char *const KEYS[] = {"pat/1", "pat/2", "pat/3/x", "appt/a", "appt/b"};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))
static const char *const FIELDS[] = {"f0", "f1", "f2", "phone"};
#define NFIELDS ((int)(sizeof FIELDS / sizeof FIELDS[0]))
/* Every collection a test writes to (the deterministic tests use "conf" and "pat"). */
static const char *const COLLS[] = {"pat", "appt", "conf"};
#define NCOLLS ((int)(sizeof COLLS / sizeof COLLS[0]))
/* Every key any test writes, to compare whole replicas. */
static const char *const ALLKEYS[] = {"pat/1", "pat/2", "pat/3/x", "appt/a", "appt/b", "conf/x"};
#define NALLKEYS ((int)(sizeof ALLKEYS / sizeof ALLKEYS[0]))

/* ---- Random values -------------------------------------------------------------------------- */

typedef struct genval {
    rep_value_t v;
    char buf[72];
} genval_t;

static void
gen_value(tu_rng_t *rng, genval_t *g)
{
    static const char *const pieces[] = {"a", "Zoë", "日本", "😀", " ", "555-0100", "x\ty", ""};
    memset(g, 0, sizeof *g);
    switch (tu_rng_below(rng, 6)) {
    case 0:
        g->v.type = REP_NULL;
        break;
    case 1:
        g->v.type = REP_BOOL;
        g->v.u.b = (int)tu_rng_below(rng, 2);
        break;
    case 2:
        g->v.type = REP_INT;
        switch (tu_rng_below(rng, 4)) {
        case 0: g->v.u.i = INT64_MIN; break;
        case 1: g->v.u.i = INT64_MAX; break;
        case 2: g->v.u.i = (int64_t)tu_rng_below(rng, 200) - 100; break;
        default: g->v.u.i = (int64_t)tu_rng_next(rng); break;
        }
        break;
    case 3:
        g->v.type = REP_DOUBLE;
        g->v.u.d = tu_rng_chance(rng, 20) ? 0.5 : (tu_rng_double(rng) - 0.5) * 1e12;
        break;
    case 4: {
        size_t len = 0, parts = tu_rng_below(rng, 5);
        for (size_t k = 0; k < parts; k++) {
            const char *p = pieces[tu_rng_below(rng, sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (len + pl >= sizeof g->buf)
                break;
            memcpy(g->buf + len, p, pl);
            len += pl;
        }
        g->buf[len] = '\0';
        g->v.type = REP_STRING;
        g->v.u.s.ptr = g->buf;
        g->v.u.s.len = len;
        break;
    }
    default: {
        size_t len = tu_rng_below(rng, 33);
        tu_rng_bytes(rng, g->buf, len);
        g->v.type = REP_BYTES;
        g->v.u.s.ptr = g->buf;
        g->v.u.s.len = len;
        break;
    }
    }
}

/* Set through rep_txn_set() or, at random, the matching convenience form. */
static int
txn_set_any(tu_rng_t *rng, rep_txn_t *t, const char *key, const char *field, const rep_value_t *v)
{
    if (tu_rng_chance(rng, 50))
        return rep_txn_set(t, key, field, v);
    switch (v->type) {
    case REP_NULL: return rep_txn_set_null(t, key, field);
    case REP_BOOL: return rep_txn_set_bool(t, key, field, v->u.b);
    case REP_INT: return rep_txn_set_int(t, key, field, v->u.i);
    case REP_DOUBLE: return rep_txn_set_double(t, key, field, v->u.d);
    case REP_STRING: return rep_txn_set_str(t, key, field, v->u.s.ptr);
    case REP_BYTES: return rep_txn_set_bytes(t, key, field, v->u.s.ptr, v->u.s.len);
    }
    return -1;
}

/* ---- Local writes, checked against what the writer must then read ------------------------- */

enum { OP_SET, OP_DELF, OP_DELR };

typedef struct tops {
    int type, key, field;
    genval_t val;
} tops_t;

static void
check_value_is(rep_replica_t *r, const char *key, const char *field, const rep_value_t *want,
               const char *why)
{
    rep_value_t *got = NULL;
    char b1[96], b2[96];
    int rc = rep_replica_get(r, key, field, &got);
    ck_assert_msg(rc == 0, "%s: get %s.%s = %d (%s)", why, key, field, rc, rep_strerror(rc));
    ck_assert_msg(tu_value_eq(got, want), "%s: %s.%s is %s, want %s", why, key, field,
                  tu_value_fmt(got, b1, sizeof b1), tu_value_fmt(want, b2, sizeof b2));
    rep_value_free(&got);
    ck_assert_ptr_null(got);
}

static void
check_absent(rep_replica_t *r, const char *key, const char *field, const char *why)
{
    rep_value_t *got = NULL;
    char b[96];
    int rc = rep_replica_get(r, key, field, &got);
    ck_assert_msg(rc == REP_ENOTFOUND, "%s: get %s.%s = %d (%s) %s, want REP_ENOTFOUND", why,
                  key, field, rc, rep_strerror(rc), got ? tu_value_fmt(got, b, sizeof b) : "");
    ck_assert_ptr_null(got);
}

static uint64_t
info_hlc(rep_replica_t *r, uint64_t *seq)
{
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(r, &info));
    uint64_t h = info->hlc;
    if (seq != NULL)
        *seq = info->seq;
    rep_info_free(&info);
    return h;
}

/*
 * One local transaction of 1..4 random ops on replica @p i. Afterwards the writer must read its
 * own writes: a field whose last op was a set holds exactly that value (one sibling: the write
 * superseded everything this replica had seen), a deleted field or record is gone.
 */
static void
local_write(office_t *o, int i)
{
    tu_rng_t *rng = &o->rng;
    rep_replica_t *r = o->r[i];
    rep_txn_t *t = NULL;
    tops_t ops[4];
    int nops = (int)tu_rng_range(rng, 1, 4);
    char user[16];

    snprintf(user, sizeof user, "staff%d", i);
    CK_OK(rep_txn_begin(r, tu_rng_chance(rng, 10) ? NULL : user, &t));
    ck_assert_ptr_nonnull(t);
    for (int k = 0; k < nops; k++) {
        tops_t *op = &ops[k];
        uint64_t p = tu_rng_below(rng, 100);
        op->key = (int)tu_rng_below(rng, NKEYS);
        op->field = (int)tu_rng_below(rng, NFIELDS);
        if (p < 72) {
            op->type = OP_SET;
            gen_value(rng, &op->val);
            CK_OK(txn_set_any(rng, t, KEYS[op->key], FIELDS[op->field], &op->val.v));
        } else if (p < 90) {
            op->type = OP_DELF;
            CK_OK(rep_txn_del_field(t, KEYS[op->key], FIELDS[op->field]));
        } else {
            op->type = OP_DELR;
            CK_OK(rep_txn_del_record(t, KEYS[op->key]));
        }
    }
    uint64_t seq = 0;
    CK_OK(rep_txn_commit(t, &seq));
    rep_txn_free(&t);
    ck_assert_ptr_null(t);

    /* The transaction in words, for failure messages. */
    char desc[256];
    size_t dl = 0;
    desc[0] = '\0';
    for (int k = 0; k < nops && dl < sizeof desc; k++) {
        static const char *const names[] = {"set", "del_field", "del_record"};
        char vb[64];
        int m = snprintf(desc + dl, sizeof desc - dl, "%s%s %s%s%s%s", k ? "; " : "",
                         names[ops[k].type], KEYS[ops[k].key],
                         ops[k].type == OP_DELR ? "" : ".",
                         ops[k].type == OP_DELR ? "" : FIELDS[ops[k].field],
                         ops[k].type == OP_SET ? tu_value_fmt(&ops[k].val.v, vb, sizeof vb) : "");
        if (m < 0)
            break;
        dl += (size_t)m;
    }

    /* A non-empty commit is the next change of this actor, with a later clock. */
    uint64_t now_seq = 0, hlc = info_hlc(r, &now_seq);
    ck_assert_uint_eq(seq, o->last_seq[i] + 1);
    ck_assert_uint_eq(now_seq, seq);
    ck_assert_msg(hlc > o->last_hlc[i], "seed %" PRIu64 ": replica %d hlc went from %" PRIu64
                  " to %" PRIu64 " on a commit", o->seed, i, o->last_hlc[i], hlc);
    o->last_seq[i] = seq;
    o->last_hlc[i] = hlc;

    /* Read your writes. */
    for (int key = 0; key < NKEYS; key++) {
        /* A later op on a field replaces an earlier one; a record delete drops what came
         * before it. The record is written when some field's last op is a set. */
        int last_delr = -1, written = 0, delf_after = 0, touched = 0;
        for (int k = 0; k < nops; k++) {
            if (ops[k].key != key)
                continue;
            touched = 1;
            if (ops[k].type == OP_DELR) {
                last_delr = k;
                delf_after = 0;
            } else if (ops[k].type == OP_DELF) {
                delf_after = 1;
            }
        }
        if (!touched)
            continue;
        for (int f = 0; f < NFIELDS; f++) {
            int last = -1;
            for (int k = 0; k < nops; k++)
                if (ops[k].key == key && (ops[k].type == OP_DELR || ops[k].field == f))
                    last = k;
            if (last < 0)
                continue;
            if (ops[last].type == OP_SET) {
                written = 1;
                check_value_is(r, KEYS[key], FIELDS[f], &ops[last].val.v, desc);
            } else {
                check_absent(r, KEYS[key], FIELDS[f], desc);
            }
        }
        rep_record_t *rec = NULL;
        int rc = rep_replica_get_record(r, KEYS[key], &rec);
        if (last_delr >= 0 && !written && !delf_after) {
            ck_assert_msg(rc == REP_ENOTFOUND, "seed %" PRIu64 ": %s deleted by replica %d but "
                          "get_record = %d (%s) after [%s]", o->seed, KEYS[key], i, rc,
                          rep_strerror(rc), desc);
        } else if (written) {
            ck_assert_msg(rc == 0, "seed %" PRIu64 ": %s written by replica %d but get_record = "
                          "%d (%s) after [%s]", o->seed, KEYS[key], i, rc, rep_strerror(rc), desc);
            ck_assert_msg(rec->delete_conflict == 0, "seed %" PRIu64 ": %s written by replica %d "
                          "still has delete_conflict after [%s]", o->seed, KEYS[key], i, desc);
            for (size_t k = 0; k < rec->nfields; k++) {
                for (int q = nops - 1; q >= 0; q--) {
                    if (ops[q].key != key || (ops[q].type != OP_DELR &&
                        strcmp(FIELDS[ops[q].field], rec->fields[k].name) != 0))
                        continue;
                    if (ops[q].type == OP_SET)
                        ck_assert_msg(rec->fields[k].siblings == 1, "seed %" PRIu64 ": %s.%s has"
                                      " %u siblings after its writer's [%s]", o->seed, KEYS[key],
                                      rec->fields[k].name, rec->fields[k].siblings, desc);
                    break;
                }
            }
        }
        rep_record_free(&rec);
        ck_assert_ptr_null(rec);
    }
}

/* ---- Exchanges ---------------------------------------------------------------------------- */

static void
check_stats(const office_t *o, const rep_import_stats_t *s, const char *what)
{
    ck_assert_msg(s->forks == 0, "seed %" PRIu64 ": %s: %" PRIu64 " forks", o->seed, what,
                  s->forks);
    ck_assert_msg(s->duplicates <= s->changes, "seed %" PRIu64 ": %s: duplicates %" PRIu64
                  " > changes %" PRIu64, o->seed, what, s->duplicates, s->changes);
}

/* Keep a batch for later re-import (takes ownership). */
static void
pool_put(office_t *o, uint8_t *p, size_t n)
{
    blob_take(&o->pool[tu_rng_below(&o->rng, POOL)], p, n);
}

/* The length of r's membership log (actor 0 of its vv). */
static uint64_t
members_of(rep_replica_t *r)
{
    rep_devices_t *d = NULL;
    CK_OK(rep_replica_devices(r, &d));
    uint64_t n = d->n;
    rep_devices_free(&d);
    return n;
}

static void
import_checked(office_t *o, int dst, const uint8_t *b, size_t n, rep_import_stats_t *st,
               const char *what)
{
    rep_import_stats_t s;
    memset(&s, 0xa5, sizeof s);
    uint64_t before = members_of(o->r[dst]);
    int rc = rep_replica_import(o->r[dst], b, n, &s);
    /* A batch made for another replica (a foreign or old vv) leaves out the membership entries
     * that replica had; a change of a device dst does not know yet is then refused, whole. */
    if (rc == REP_EAUTH && strcmp(what, "pull") != 0 && before < members_of(o->r[0])) {
        ck_assert_uint_eq(members_of(o->r[dst]), before);
        if (st != NULL)
            memset(st, 0, sizeof *st);
        return;
    }
    ck_assert_msg(rc == 0, "seed %" PRIu64 ": %s into %d: import = %d (%s)", o->seed, what, dst,
                  rc, rep_strerror(rc));
    check_stats(o, &s, what);
    uint64_t hlc = info_hlc(o->r[dst], NULL);
    ck_assert_msg(hlc >= o->last_hlc[dst], "seed %" PRIu64 ": replica %d hlc went back on import",
                  o->seed, dst);
    o->last_hlc[dst] = hlc;
    if (st != NULL)
        *st = s;
}

/*
 * @p dst pulls from @p src with its current vv; with @p max_bytes, batch after batch until
 * nothing is left out. Keeps the batches in the pool when @p keep.
 */
static void
pull(office_t *o, int src, int dst, size_t max_bytes, int keep)
{
    for (int round = 0;; round++) {
        uint8_t *vv = NULL, *b = NULL;
        size_t vvn = 0, bn = 0;
        int more = -1;

        ck_assert_msg(round < 10000, "seed %" PRIu64 ": bounded pull %d->%d does not end",
                      o->seed, src, dst);
        CK_OK(rep_replica_vv(o->r[dst], &vv, &vvn));
        ck_assert_ptr_nonnull(vv);
        CK_OK(rep_replica_export(o->r[src], vv, vvn, max_bytes, &b, &bn, &more));
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(more == 0 || more == 1, "more = %d", more);
        if (max_bytes == 0)
            ck_assert_int_eq(more, 0);
        rep_import_stats_t s;
        import_checked(o, dst, b, bn, &s, "pull");
        /* over the bound only with the one change always included, or when the bound is
         * below the size of an empty batch */
        if (max_bytes != 0)
            ck_assert_msg(bn <= max_bytes || s.changes <= 1,
                          "seed %" PRIu64 ": batch of %zu bytes > max_bytes %zu with %" PRIu64
                          " changes", o->seed, bn, max_bytes, s.changes);
        if (more)
            ck_assert_msg(s.changes >= 1, "an export that left changes out holds none");
        /* Remember dst's vv as it was: a stale vv for later. */
        blob_take(&o->oldvv[dst][tu_rng_below(&o->rng, VV_KEEP)], vv, vvn);
        if (keep)
            pool_put(o, b, bn);
        else
            rep_free(b);
        if (!more)
            break;
    }
}

/* Export from @p src against an arbitrary vv (stale, someone else's, or NULL) into @p dst. */
static void
push_with_vv(office_t *o, int src, int dst, const blob_t *vv, const char *what)
{
    uint8_t *b = NULL;
    size_t bn = 0;
    int more = -1;
    CK_OK(rep_replica_export(o->r[src], vv ? vv->p : NULL, vv ? vv->n : 0, 0, &b, &bn, &more));
    ck_assert_int_eq(more, 0);
    import_checked(o, dst, b, bn, NULL, what);
    pool_put(o, b, bn);
}

static void
digest_of(rep_replica_t *r, uint8_t d[REP_DIGEST_BYTES])
{
    CK_OK(rep_replica_digest(r, d));
}

/* A replica's own export, imported into itself, changes nothing. */
static void
self_import(office_t *o, int i)
{
    uint8_t d0[REP_DIGEST_BYTES], d1[REP_DIGEST_BYTES];
    uint8_t *b = NULL;
    size_t bn = 0;
    rep_import_stats_t s;

    digest_of(o->r[i], d0);
    CK_OK(rep_replica_export(o->r[i], NULL, 0, 0, &b, &bn, NULL));
    import_checked(o, i, b, bn, &s, "self import");
    ck_assert_uint_eq(s.applied, 0);
    ck_assert_uint_eq(s.duplicates, s.changes);
    digest_of(o->r[i], d1);
    ck_assert_mem_eq(d0, d1, REP_DIGEST_BYTES);
    pool_put(o, b, bn);

    /* Against its own vv: it lacks nothing, so the batch holds no change. */
    uint8_t *vv = NULL;
    size_t vvn = 0;
    CK_OK(rep_replica_vv(o->r[i], &vv, &vvn));
    CK_OK(rep_replica_export(o->r[i], vv, vvn, 0, &b, &bn, NULL));
    import_checked(o, i, b, bn, &s, "self import (own vv)");
    ck_assert_uint_eq(s.changes, 0);
    ck_assert_uint_eq(s.applied, 0);
    rep_free(b);
    rep_free(vv);
}

/* Everyone pulls from everyone, twice: afterwards every replica has every change. */
static void
full_exchange(office_t *o)
{
    for (int pass = 0; pass < 2; pass++)
        for (int dst = 0; dst < o->n; dst++)
            for (int src = 0; src < o->n; src++)
                if (src != dst)
                    pull(o, src, dst, 0, 0);
}

static void
random_step(office_t *o)
{
    tu_rng_t *rng = &o->rng;
    int a = (int)tu_rng_below(rng, (uint64_t)o->n);
    int b = (int)tu_rng_below(rng, (uint64_t)o->n);
    uint64_t p = tu_rng_below(rng, 100);

    for (int i = 0; i < o->n; i++)
        tu_clock_advance(&o->clk[i], tu_rng_below(rng, 25));
    if (tu_rng_chance(rng, 1)) /* a wall clock stepped back: the HLC must not */
        tu_clock_set(&o->clk[a], tu_clock_ms(&o->clk[a]) - 3000);

    if (p < 45) {
        local_write(o, a);
    } else if (p < 65) {
        pull(o, a, b, tu_rng_chance(rng, 25) ? (size_t)tu_rng_range(rng, 64, 2048) : 0,
             tu_rng_chance(rng, 50));
    } else if (p < 73) {
        /* b's vv from some time ago: the batch repeats what b already has */
        blob_t *vv = &o->oldvv[b][tu_rng_below(rng, VV_KEEP)];
        push_with_vv(o, a, b, vv->p ? vv : NULL, "stale vv");
    } else if (p < 81) {
        /* made for a third replica's vv: b may lack dependencies and hold changes pending */
        int c = (int)tu_rng_below(rng, (uint64_t)o->n);
        blob_t *vv = &o->oldvv[c][tu_rng_below(rng, VV_KEEP)];
        push_with_vv(o, a, b, vv->p ? vv : NULL, "foreign vv");
    } else if (p < 91) {
        blob_t *old = &o->pool[tu_rng_below(rng, POOL)];
        if (old->p != NULL)
            import_checked(o, b, old->p, old->n, NULL, "old batch");
    } else if (p < 95) {
        self_import(o, a);
    } else {
        push_with_vv(o, a, b, NULL, "everything");
    }
}

/* ---- Comparing replicas ------------------------------------------------------------------- */

static void
assert_value_eq(const rep_value_t *a, const rep_value_t *b, const char *what)
{
    char b1[96], b2[96];
    ck_assert_msg(tu_value_eq(a, b), "%s: %s != %s", what, tu_value_fmt(a, b1, sizeof b1),
                  tu_value_fmt(b, b2, sizeof b2));
}

static void
assert_record_eq(const rep_record_t *a, const rep_record_t *b, const char *what)
{
    ck_assert_msg(strcmp(a->key, b->key) == 0, "%s: key %s != %s", what, a->key, b->key);
    ck_assert_msg(a->nfields == b->nfields, "%s: %s has %zu fields vs %zu", what, a->key,
                  a->nfields, b->nfields);
    ck_assert_msg(a->delete_conflict == b->delete_conflict, "%s: %s delete_conflict %d vs %d",
                  what, a->key, a->delete_conflict, b->delete_conflict);
    for (size_t k = 0; k < a->nfields; k++) {
        const rep_field_t *fa = &a->fields[k], *fb = &b->fields[k];
        ck_assert_msg(strcmp(fa->name, fb->name) == 0, "%s: %s field %s vs %s", what, a->key,
                      fa->name, fb->name);
        ck_assert_int_eq(fa->kind, fb->kind);
        ck_assert_msg(fa->siblings == fb->siblings, "%s: %s.%s siblings %u vs %u", what, a->key,
                      fa->name, fa->siblings, fb->siblings);
        assert_value_eq(&fa->value, &fb->value, what);
        if (k > 0)
            ck_assert_msg(strcmp(a->fields[k - 1].name, fa->name) < 0,
                          "%s: %s fields not in name order", what, a->key);
    }
}

static void
assert_conflicts_eq(const rep_conflicts_t *a, const rep_conflicts_t *b, const char *what)
{
    ck_assert_msg(a->n == b->n, "%s: %zu conflicts vs %zu", what, a->n, b->n);
    for (size_t k = 0; k < a->n; k++) {
        const rep_conflict_t *ca = &a->items[k], *cb = &b->items[k];
        ck_assert_msg(strcmp(ca->key, cb->key) == 0 && strcmp(ca->field, cb->field) == 0,
                      "%s: conflict %s.%s vs %s.%s", what, ca->key, ca->field, cb->key, cb->field);
        ck_assert_int_eq(ca->kind, cb->kind);
        ck_assert_msg(ca->n == cb->n, "%s: %s.%s %zu siblings vs %zu", what, ca->key, ca->field,
                      ca->n, cb->n);
        for (size_t s = 0; s < ca->n; s++) {
            const rep_sibling_t *sa = &ca->siblings[s], *sb = &cb->siblings[s];
            ck_assert_msg(sa->actor == sb->actor && sa->seq == sb->seq && sa->hlc == sb->hlc,
                          "%s: %s.%s sibling %zu differs", what, ca->key, ca->field, s);
            ck_assert_str_eq(sa->user, sb->user);
            ck_assert_int_eq(sa->deleted, sb->deleted);
            ck_assert_msg(sa->winner == sb->winner, "%s: %s.%s winner differs", what, ca->key,
                          ca->field);
            assert_value_eq(&sa->value, &sb->value, what);
        }
    }
}

/*
 * What a conflict list must look like on its own: siblings in (actor, seq) order, one winner
 * (the live sibling with the highest (hlc, actor)) when any is live, and the winner is what
 * the reads show.
 */
static void
check_conflicts_valid(rep_replica_t *r, const rep_conflicts_t *c, const char *what)
{
    for (size_t k = 0; k < c->n; k++) {
        const rep_conflict_t *it = &c->items[k];
        size_t winners = 0, live = 0, dead = 0;
        const rep_sibling_t *best = NULL, *win = NULL;

        ck_assert_msg(it->n >= 2, "%s: %s.%s listed with %zu siblings", what, it->key, it->field,
                      it->n);
        if (k > 0) {
            const rep_conflict_t *pv = &c->items[k - 1];
            int ord = strcmp(pv->key, it->key);
            ck_assert_msg(ord < 0 || (ord == 0 && strcmp(pv->field, it->field) <= 0),
                          "%s: conflicts not in key, field order", what);
        }
        for (size_t s = 0; s < it->n; s++) {
            const rep_sibling_t *sb = &it->siblings[s];
            if (s > 0) {
                const rep_sibling_t *pv = &it->siblings[s - 1];
                ck_assert_msg(pv->actor < sb->actor || (pv->actor == sb->actor && pv->seq < sb->seq),
                              "%s: %s.%s siblings not in (actor, seq) order", what, it->key,
                              it->field);
            }
            ck_assert_ptr_nonnull(sb->user);
            if (sb->winner) {
                winners++;
                win = sb;
            }
            if (sb->deleted) {
                dead++;
                ck_assert_int_eq(sb->value.type, REP_NULL);
                continue;
            }
            live++;
            if (best == NULL || sb->hlc > best->hlc ||
                (sb->hlc == best->hlc && sb->actor > best->actor))
                best = sb;
        }
        if (live == 0)
            continue;
        ck_assert_msg(winners == 1, "%s: %s.%s has %zu winners", what, it->key, it->field,
                      winners);
        ck_assert_msg(win == best, "%s: %s.%s winner is not the live sibling with the highest "
                      "(hlc, actor)", what, it->key, it->field);

        rep_record_t *rec = NULL;
        int rc = rep_replica_get_record(r, it->key, &rec);
        ck_assert_msg(rc == 0, "%s: %s has a live conflict on '%s' but get_record = %d (%s)", what,
                      it->key, it->field, rc, rep_strerror(rc));
        if (it->field[0] == '\0') {
            ck_assert_msg(rec->delete_conflict == (dead > 0), "%s: %s delete_conflict = %d with "
                          "%zu deleted existence siblings", what, it->key, rec->delete_conflict,
                          dead);
        } else {
            check_value_is(r, it->key, it->field, &win->value, what);
            size_t f;
            for (f = 0; f < rec->nfields; f++)
                if (strcmp(rec->fields[f].name, it->field) == 0)
                    break;
            ck_assert_msg(f < rec->nfields, "%s: conflicted field %s.%s missing from its record",
                          what, it->key, it->field);
            ck_assert_msg(rec->fields[f].siblings == it->n, "%s: %s.%s siblings %u in the record, "
                          "%zu in conflicts", what, it->key, it->field, rec->fields[f].siblings,
                          it->n);
        }
        rep_record_free(&rec);
    }
}

/* Every read of replica @p j equals replica 0's, and both look sane on their own. */
static void
assert_same_state(office_t *o, int j)
{
    rep_replica_t *a = o->r[0], *b = o->r[j];
    char what[64];
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    char ha[2 * REP_DIGEST_BYTES + 1], hb[2 * REP_DIGEST_BYTES + 1];

    snprintf(what, sizeof what, "seed %" PRIu64 " replica 0 vs %d", o->seed, j);
    digest_of(a, da);
    digest_of(b, db);
    ck_assert_msg(memcmp(da, db, sizeof da) == 0, "%s: digests %s != %s", what,
                  tu_hex(da, sizeof da, ha), tu_hex(db, sizeof db, hb));

    rep_info_t *ia = NULL, *ib = NULL;
    CK_OK(rep_replica_info(a, &ia));
    CK_OK(rep_replica_info(b, &ib));
    ck_assert_msg(ia->pending == 0 && ib->pending == 0, "%s: pending %" PRIu64 " / %" PRIu64
                  " after a full exchange", what, ia->pending, ib->pending);
    ck_assert_uint_eq(ia->records, ib->records);
    ck_assert_uint_eq(ia->conflicts, ib->conflicts);
    ck_assert_uint_eq(ia->changes, ib->changes);
    ck_assert_uint_eq(ia->nvv, ib->nvv);
    for (size_t k = 0; k < ia->nvv; k++) {
        ck_assert_uint_eq(ia->vv[k].actor, ib->vv[k].actor);
        ck_assert_uint_eq(ia->vv[k].seq, ib->vv[k].seq);
    }
    rep_info_free(&ia);
    rep_info_free(&ib);

    for (int c = 0; c < NCOLLS; c++) {
        rep_list_t *la = NULL, *lb = NULL;
        CK_OK(rep_replica_list(a, COLLS[c], NULL, 0, &la));
        CK_OK(rep_replica_list(b, COLLS[c], NULL, 0, &lb));
        ck_assert_msg(la->n == lb->n, "%s: list %s has %zu vs %zu records", what, COLLS[c], la->n,
                      lb->n);
        for (size_t k = 0; k < la->n; k++) {
            assert_record_eq(&la->records[k], &lb->records[k], what);
            if (k > 0)
                ck_assert_msg(strcmp(la->records[k - 1].key, la->records[k].key) < 0,
                              "%s: list %s not in key order", what, COLLS[c]);
        }
        rep_list_free(&la);
        rep_list_free(&lb);
        ck_assert_ptr_null(la);
    }

    for (int k = 0; k < NALLKEYS; k++) {
        rep_record_t *ra = NULL, *rb = NULL;
        int rca = rep_replica_get_record(a, ALLKEYS[k], &ra);
        int rcb = rep_replica_get_record(b, ALLKEYS[k], &rb);
        ck_assert_msg(rca == rcb, "%s: get_record %s = %d vs %d", what, ALLKEYS[k], rca, rcb);
        ck_assert_msg(rca == 0 || rca == REP_ENOTFOUND, "%s: get_record %s = %d (%s)", what,
                      ALLKEYS[k], rca, rep_strerror(rca));
        if (rca == 0)
            assert_record_eq(ra, rb, what);
        else
            ck_assert_ptr_null(ra);
        rep_record_free(&ra);
        rep_record_free(&rb);

        for (int f = 0; f < NFIELDS; f++) {
            rep_value_t *va = NULL, *vb = NULL;
            rca = rep_replica_get(a, ALLKEYS[k], FIELDS[f], &va);
            rcb = rep_replica_get(b, ALLKEYS[k], FIELDS[f], &vb);
            ck_assert_msg(rca == rcb, "%s: get %s.%s = %d vs %d", what, ALLKEYS[k], FIELDS[f],
                          rca, rcb);
            if (rca == 0)
                assert_value_eq(va, vb, what);
            rep_value_free(&va);
            rep_value_free(&vb);
        }

        rep_history_t *hx = NULL, *hy = NULL;
        CK_OK(rep_replica_history(a, ALLKEYS[k], &hx));
        CK_OK(rep_replica_history(b, ALLKEYS[k], &hy));
        ck_assert_msg(hx->n == hy->n, "%s: history of %s has %zu vs %zu changes", what,
                      ALLKEYS[k], hx->n, hy->n);
        for (size_t q = 0; q < hx->n; q++) {
            ck_assert_uint_eq(hx->changes[q].actor, hy->changes[q].actor);
            ck_assert_uint_eq(hx->changes[q].seq, hy->changes[q].seq);
            ck_assert_uint_eq(hx->changes[q].hlc, hy->changes[q].hlc);
            ck_assert_uint_eq(hx->changes[q].nops, hy->changes[q].nops);
        }
        rep_history_free(&hx);
        rep_history_free(&hy);
        ck_assert_ptr_null(hx);
    }

    rep_conflicts_t *ca = NULL, *cb = NULL;
    CK_OK(rep_replica_conflicts(a, NULL, &ca));
    CK_OK(rep_replica_conflicts(b, NULL, &cb));
    check_conflicts_valid(a, ca, what);
    check_conflicts_valid(b, cb, what);
    assert_conflicts_eq(ca, cb, what);
    rep_conflicts_free(&ca);
    rep_conflicts_free(&cb);
    ck_assert_ptr_null(ca);
}

/* Find the conflict on @p key.@p field in @p c, or NULL. */
static const rep_conflict_t *
find_conflict(const rep_conflicts_t *c, const char *key, const char *field)
{
    for (size_t k = 0; k < c->n; k++)
        if (strcmp(c->items[k].key, key) == 0 && strcmp(c->items[k].field, field) == 0)
            return &c->items[k];
    return NULL;
}

static void
write_str(rep_replica_t *r, const char *user, const char *key, const char *field, const char *s)
{
    rep_txn_t *t = NULL;
    uint64_t seq = 0;
    CK_OK(rep_txn_begin(r, user, &t));
    CK_OK(rep_txn_set_str(t, key, field, s));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_ne(seq, 0);
    rep_txn_free(&t);
}

static void
delete_record(rep_replica_t *r, const char *key)
{
    rep_txn_t *t = NULL;
    uint64_t seq = 0;
    CK_OK(rep_txn_begin(r, "admin", &t));
    CK_OK(rep_txn_del_record(t, key));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_ne(seq, 0);
    rep_txn_free(&t);
}

static int
str_is(const rep_value_t *v, const char *s)
{
    return v->type == REP_STRING && v->u.s.len == strlen(s) && memcmp(v->u.s.ptr, s, v->u.s.len) == 0;
}

/* ---- Tests ------------------------------------------------------------------------------------ */

/*
 * Random writes and random trades, then a full exchange: all replicas equal, and one
 * deterministic concurrent edit is listed as a conflict with the same winner everywhere.
 */
START_TEST(test_random_exchange_converges)
{
    office_t o;
    uint64_t seed = tu_seed(1000) + (uint64_t)_i;
    int n = 3 + (int)(seed % 3);

    office_open(&o, n, seed);
    for (int step = 0; step < 200; step++)
        random_step(&o);

    /* One edit of one field made on two replicas that have not seen each other's. */
    write_str(o.r[0], "alice", "conf/x", "phone", "from-0");
    write_str(o.r[1], "bob", "conf/x", "phone", "from-1");

    full_exchange(&o);
    for (int j = 1; j < o.n; j++)
        assert_same_state(&o, j);

    uint64_t win_actor = 0, win_seq = 0;
    for (int i = 0; i < o.n; i++) {
        rep_conflicts_t *c = NULL;
        CK_OK(rep_replica_conflicts(o.r[i], "conf/x", &c));
        const rep_conflict_t *it = find_conflict(c, "conf/x", "phone");
        ck_assert_msg(it != NULL, "seed %" PRIu64 ": replica %d does not list the concurrent "
                      "edit of conf/x.phone", seed, i);
        ck_assert_uint_eq(it->n, 2);
        int seen0 = 0, seen1 = 0, winners = 0;
        for (size_t s = 0; s < it->n; s++) {
            const rep_sibling_t *sb = &it->siblings[s];
            ck_assert_int_eq(sb->deleted, 0);
            if (str_is(&sb->value, "from-0")) {
                seen0++;
                ck_assert_uint_eq(sb->actor, o.actor[0]);
                ck_assert_str_eq(sb->user, "alice");
            } else if (str_is(&sb->value, "from-1")) {
                seen1++;
                ck_assert_uint_eq(sb->actor, o.actor[1]);
                ck_assert_str_eq(sb->user, "bob");
            }
            if (sb->winner) {
                winners++;
                if (i == 0) {
                    win_actor = sb->actor;
                    win_seq = sb->seq;
                } else {
                    ck_assert_msg(sb->actor == win_actor && sb->seq == win_seq,
                                  "seed %" PRIu64 ": replica %d picks another winner", seed, i);
                }
            }
        }
        ck_assert_int_eq(seen0, 1);
        ck_assert_int_eq(seen1, 1);
        ck_assert_int_eq(winners, 1);
        rep_conflicts_free(&c);
    }
    office_close(&o);
}
END_TEST

/* Size-bounded batches: a replica catches up batch by batch while `more` says so. */
START_TEST(test_bounded_batches)
{
    office_t o;
    char val[101];
    const size_t max_bytes = 1024;
    int batches = 0;
    uint64_t applied = 0;

    office_open(&o, 2, tu_seed(7));
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    for (int k = 0; k < 200; k++) {
        rep_txn_t *t = NULL;
        char key[32];
        snprintf(key, sizeof key, "pat/%d", k % 37);
        val[k % 100] = (char)('a' + k % 26);
        CK_OK(rep_txn_begin(o.r[0], "u", &t));
        CK_OK(rep_txn_set_str(t, key, "note", val));
        CK_OK(rep_txn_set_int(t, key, "k", k));
        CK_OK(rep_txn_commit(t, NULL));
        rep_txn_free(&t);
    }

    for (int more = 1; more;) {
        uint8_t *vv = NULL, *b = NULL;
        size_t vvn = 0, bn = 0;
        rep_import_stats_t s;

        ck_assert_int_lt(batches, 1000);
        CK_OK(rep_replica_vv(o.r[1], &vv, &vvn));
        more = -1;
        CK_OK(rep_replica_export(o.r[0], vv, vvn, max_bytes, &b, &bn, &more));
        ck_assert_msg(more == 0 || more == 1, "more = %d", more);
        CK_OK(rep_replica_import(o.r[1], b, bn, &s));
        ck_assert_uint_ge(s.changes, 1);
        ck_assert_msg(bn <= max_bytes || s.changes == 1, "batch %d: %zu bytes, %" PRIu64
                      " changes, bound %zu", batches, bn, s.changes, max_bytes);
        ck_assert_uint_eq(s.applied, s.changes);
        ck_assert_uint_eq(s.pending, 0);
        applied += s.applied;
        batches++;
        rep_free(vv);
        rep_free(b);
    }
    ck_assert_uint_eq(applied, 200);
    ck_assert_int_gt(batches, 1);

    /* Nothing is left: the next batch holds no change and says there is no more. */
    uint8_t *vv = NULL, *b = NULL;
    size_t vvn = 0, bn = 0;
    int more = -1;
    rep_import_stats_t s;
    CK_OK(rep_replica_vv(o.r[1], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[0], vv, vvn, max_bytes, &b, &bn, &more));
    ck_assert_int_eq(more, 0);
    CK_OK(rep_replica_import(o.r[1], b, bn, &s));
    ck_assert_uint_eq(s.changes, 0);
    rep_free(vv);
    rep_free(b);

    assert_same_state(&o, 1);
    office_close(&o);
}
END_TEST

/* Importing the same batch again is a counted no-op: every change a duplicate, nothing moves. */
START_TEST(test_duplicate_import_is_noop)
{
    office_t o;
    uint8_t *b = NULL;
    size_t bn = 0;
    rep_import_stats_t s;
    uint8_t d0[REP_DIGEST_BYTES], d1[REP_DIGEST_BYTES];
    rep_info_t *info = NULL;

    office_open(&o, 2, tu_seed(11));
    for (int k = 0; k < 50; k++)
        local_write(&o, 0);
    CK_OK(rep_replica_info(o.r[0], &info));
    ck_assert_uint_eq(info->seq, 50);
    rep_info_free(&info);

    CK_OK(rep_replica_export(o.r[0], NULL, 0, 0, &b, &bn, NULL));
    CK_OK(rep_replica_import(o.r[1], b, bn, &s));
    ck_assert_uint_eq(s.changes, 50);
    ck_assert_uint_eq(s.applied, 50);
    ck_assert_uint_eq(s.duplicates, 0);
    ck_assert_uint_eq(s.pending, 0);
    assert_same_state(&o, 1);

    digest_of(o.r[1], d0);
    CK_OK(rep_replica_info(o.r[1], &info));
    uint64_t changes = info->changes;
    rep_info_free(&info);

    for (int again = 0; again < 3; again++) {
        memset(&s, 0xa5, sizeof s);
        CK_OK(rep_replica_import(o.r[1], b, bn, &s));
        ck_assert_uint_eq(s.changes, 50);
        ck_assert_uint_eq(s.duplicates, s.changes);
        ck_assert_uint_eq(s.applied, 0);
        ck_assert_uint_eq(s.pending, 0);
        ck_assert_uint_eq(s.forks, 0);
        digest_of(o.r[1], d1);
        ck_assert_mem_eq(d0, d1, REP_DIGEST_BYTES);
        CK_OK(rep_replica_info(o.r[1], &info));
        ck_assert_uint_eq(info->changes, changes);
        rep_info_free(&info);
    }

    /* The writer's own batch is all duplicates to it as well. */
    CK_OK(rep_replica_import(o.r[0], b, bn, &s));
    ck_assert_uint_eq(s.duplicates, 50);
    ck_assert_uint_eq(s.applied, 0);
    digest_of(o.r[0], d1);
    ck_assert_mem_eq(d0, d1, REP_DIGEST_BYTES);

    rep_free(b);
    office_close(&o);
}
END_TEST

/* A record deleted on one replica while another updates it stays, with the conflict reported. */
START_TEST(test_concurrent_delete_keeps_record)
{
    office_t o;

    office_open(&o, 3, tu_seed(21));
    {
        rep_txn_t *t = NULL;
        CK_OK(rep_txn_begin(o.r[0], "alice", &t));
        CK_OK(rep_txn_set_str(t, "pat/1", "a", "a0"));
        CK_OK(rep_txn_set_str(t, "pat/1", "b", "b0"));
        CK_OK(rep_txn_commit(t, NULL));
        rep_txn_free(&t);
    }
    pull(&o, 0, 1, 0, 0);
    pull(&o, 0, 2, 0, 0);

    delete_record(o.r[0], "pat/1");      /* has not seen the update below */
    write_str(o.r[1], "bob", "pat/1", "a", "a1");
    check_absent(o.r[0], "pat/1", "a", "deleter before exchange");

    full_exchange(&o);
    for (int j = 1; j < o.n; j++)
        assert_same_state(&o, j);

    for (int i = 0; i < o.n; i++) {
        rep_record_t *rec = NULL;
        char why[32];
        snprintf(why, sizeof why, "replica %d", i);
        CK_OK(rep_replica_get_record(o.r[i], "pat/1", &rec));
        ck_assert_msg(rec->delete_conflict == 1, "replica %d: delete_conflict = %d", i,
                      rec->delete_conflict);
        rep_record_free(&rec);

        rep_value_t want = {.type = REP_STRING, .u.s = {"a1", 2}};
        check_value_is(o.r[i], "pat/1", "a", &want, why);
        /* b was seen by the delete and written by nobody since: it is gone */
        check_absent(o.r[i], "pat/1", "b", why);

        rep_list_t *l = NULL;
        CK_OK(rep_replica_list(o.r[i], "pat", NULL, 0, &l));
        ck_assert_uint_eq(l->n, 1);
        ck_assert_str_eq(l->records[0].key, "pat/1");
        ck_assert_int_eq(l->records[0].delete_conflict, 1);
        rep_list_free(&l);

        rep_conflicts_t *c = NULL;
        CK_OK(rep_replica_conflicts(o.r[i], "pat/1", &c));
        const rep_conflict_t *it = find_conflict(c, "pat/1", "");
        ck_assert_msg(it != NULL, "replica %d: delete vs update not listed as a conflict", i);
        int live = 0, dead = 0;
        for (size_t s = 0; s < it->n; s++) {
            const rep_sibling_t *sb = &it->siblings[s];
            if (sb->deleted) {
                dead++;
                ck_assert_uint_eq(sb->actor, o.actor[0]);
                ck_assert_int_eq(sb->winner, 0);
            } else {
                live++;
                ck_assert_uint_eq(sb->actor, o.actor[1]);
                ck_assert_int_eq(sb->winner, 1);
            }
        }
        ck_assert_int_eq(dead, 1);
        ck_assert_int_eq(live, 1);
        rep_conflicts_free(&c);
    }
    office_close(&o);
}
END_TEST

/* A delete made after seeing the update removes the record everywhere, with no conflict. */
START_TEST(test_delete_after_update_removes_record)
{
    office_t o;

    office_open(&o, 3, tu_seed(31));
    write_str(o.r[0], "alice", "pat/2", "a", "x");
    pull(&o, 0, 1, 0, 0);
    pull(&o, 0, 2, 0, 0);

    {
        rep_txn_t *t = NULL;
        CK_OK(rep_txn_begin(o.r[1], "bob", &t));
        CK_OK(rep_txn_set_str(t, "pat/2", "a", "y"));
        CK_OK(rep_txn_set_str(t, "pat/2", "c", "z"));
        CK_OK(rep_txn_commit(t, NULL));
        rep_txn_free(&t);
    }
    pull(&o, 1, 0, 0, 0);                 /* replica 0 sees the update ... */
    delete_record(o.r[0], "pat/2");       /* ... then deletes the record */
    pull(&o, 0, 2, 0, 0);                 /* replica 2 gets update and delete in one batch */
    full_exchange(&o);
    for (int j = 1; j < o.n; j++)
        assert_same_state(&o, j);

    for (int i = 0; i < o.n; i++) {
        rep_record_t *rec = NULL;
        CK_RC(rep_replica_get_record(o.r[i], "pat/2", &rec), REP_ENOTFOUND);
        ck_assert_ptr_null(rec);
        check_absent(o.r[i], "pat/2", "a", "deleted record");
        check_absent(o.r[i], "pat/2", "c", "deleted record");

        rep_list_t *l = NULL;
        CK_OK(rep_replica_list(o.r[i], "pat", NULL, 0, &l));
        ck_assert_uint_eq(l->n, 0);
        rep_list_free(&l);

        rep_conflicts_t *c = NULL;
        CK_OK(rep_replica_conflicts(o.r[i], "pat/2", &c));
        ck_assert_uint_eq(c->n, 0);
        rep_conflicts_free(&c);

        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(o.r[i], &info));
        ck_assert_uint_eq(info->records, 0);
        ck_assert_uint_eq(info->conflicts, 0);
        rep_info_free(&info);
    }
    office_close(&o);
}
END_TEST

/*
 * A change that arrives before one it depends on waits (pending) and is applied when that one
 * arrives, so the later write still supersedes the earlier one (DESIGN.md invariant 2).
 */
START_TEST(test_early_change_waits_for_deps)
{
    office_t o;
    uint8_t *vv = NULL, *b = NULL;
    size_t vvn = 0, bn = 0;
    rep_import_stats_t s;
    rep_info_t *info = NULL;
    rep_value_t want = {.type = REP_STRING, .u.s = {"b", 1}};

    office_open(&o, 3, tu_seed(41));
    write_str(o.r[0], "alice", "pat/1", "f0", "a");   /* A */
    pull(&o, 0, 1, 0, 0);
    write_str(o.r[1], "bob", "pat/1", "f0", "b");     /* B, which saw A */

    /* Replica 2 gets B alone: made against replica 0's vv, which already covers A. */
    CK_OK(rep_replica_vv(o.r[0], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[1], vv, vvn, 0, &b, &bn, NULL));
    rep_free(vv);
    CK_OK(rep_replica_import(o.r[2], b, bn, &s));
    ck_assert_uint_eq(s.changes, 1);
    ck_assert_uint_eq(s.applied, 0);
    ck_assert_uint_eq(s.duplicates, 0);
    rep_free(b);
    check_absent(o.r[2], "pat/1", "f0", "B before A");
    CK_OK(rep_replica_info(o.r[2], &info));
    ck_assert_uint_eq(info->pending, 1);
    rep_info_free(&info);

    /* The same early batch again changes nothing. */
    CK_OK(rep_replica_vv(o.r[0], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[1], vv, vvn, 0, &b, &bn, NULL));
    rep_free(vv);
    CK_OK(rep_replica_import(o.r[2], b, bn, &s));
    ck_assert_uint_eq(s.applied, 0);
    rep_free(b);

    /* A arrives: both apply, B on top. */
    CK_OK(rep_replica_vv(o.r[2], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[0], vv, vvn, 0, &b, &bn, NULL));
    rep_free(vv);
    CK_OK(rep_replica_import(o.r[2], b, bn, &s));
    ck_assert_uint_eq(s.changes, 1);
    ck_assert_uint_eq(s.applied, 2);
    rep_free(b);
    check_value_is(o.r[2], "pat/1", "f0", &want, "A then pending B");
    CK_OK(rep_replica_info(o.r[2], &info));
    ck_assert_uint_eq(info->pending, 0);
    ck_assert_uint_eq(info->conflicts, 0);
    rep_info_free(&info);

    full_exchange(&o);
    for (int j = 1; j < o.n; j++)
        assert_same_state(&o, j);
    office_close(&o);
}
END_TEST

/* rep_replica_import_progress: the phases in order, with counts; nothing for a refused batch. */
typedef struct progress_log {
    int n;
    struct {
        rep_import_phase_t phase;
        uint64_t done, total;
    } ev[16];
} progress_log_t;

static void
log_progress(void *ctx, rep_import_phase_t phase, uint64_t done, uint64_t total)
{
    progress_log_t *l = ctx;
    ck_assert_int_lt(l->n, 16);
    l->ev[l->n].phase = phase;
    l->ev[l->n].done = done;
    l->ev[l->n].total = total;
    l->n++;
}

START_TEST(test_import_progress)
{
    office_t o;
    uint8_t *b = NULL, *snap = NULL;
    size_t bn = 0, snapn = 0;
    rep_import_stats_t s;
    progress_log_t l = {0};

    office_open(&o, 3, tu_seed(13));
    for (int k = 0; k < 4100; k++)
        local_write(&o, 0);
    CK_OK(rep_replica_export(o.r[0], NULL, 0, 0, &b, &bn, NULL));

    uint8_t *bad = malloc(bn);
    ck_assert_ptr_nonnull(bad);
    memcpy(bad, b, bn);
    bad[bn / 2] ^= 0x10;
    CK_RC(rep_replica_import_progress(o.r[1], bad, bn, log_progress, &l, &s), REP_ECORRUPT);
    ck_assert_int_eq(l.n, 0);
    free(bad);

    CK_OK(rep_replica_import_progress(o.r[1], b, bn, log_progress, &l, &s));
    ck_assert_uint_eq(s.applied, 4100);
    ck_assert_int_eq(l.n, 5);
    const rep_import_phase_t V = REP_IMPORT_VERIFYING, A = REP_IMPORT_APPLYING;
    const struct { rep_import_phase_t phase; uint64_t done; } want[5] = {
        {V, 0}, {V, 4100}, {A, 0}, {A, 4096}, {A, 4100}};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(l.ev[i].phase, want[i].phase);
        ck_assert_uint_eq(l.ev[i].done, want[i].done);
        ck_assert_uint_eq(l.ev[i].total, 4100);
    }
    assert_same_state(&o, 1);

    CK_OK(rep_replica_snapshot(o.r[0], &snap, &snapn));
    l.n = 0;
    CK_OK(rep_replica_import_progress(o.r[2], snap, snapn, log_progress, &l, &s));
    ck_assert_int_eq(l.n, 4);
    ck_assert(l.ev[0].phase == V && l.ev[0].done == 0 && l.ev[0].total == 1);
    ck_assert(l.ev[1].phase == V && l.ev[1].done == 1);
    ck_assert(l.ev[2].phase == A && l.ev[2].done == 0 && l.ev[2].total == s.entries);
    ck_assert(l.ev[3].phase == A && l.ev[3].done == s.entries && s.entries > 0);
    CK_OK(rep_replica_import_progress(o.r[2], b, bn, NULL, NULL, &s)); /* no reporter */
    ck_assert_uint_eq(s.duplicates, 4100);
    rep_free(snap);
    rep_free(b);
    office_close(&o);
}
END_TEST

/* ---- One import, one batch: each record's ops in order ------------------------------------- */

#define LONG1 "appt/a-record-whose-key-is-long-1" /* state keys alike in their first 16 bytes */
#define LONG2 "appt/a-record-whose-key-is-long-2"
#define NELEM(a) (sizeof(a) / sizeof(a)[0])

/* One transaction of @p r: @p n (op, key, field, string) steps, op 's' set, 'x' delete the
 * record, 'a' add to a set, 'i' increment, 'l' append. */
typedef struct step {
    char op;
    const char *key, *field, *s;
} step_t;

static void
commit_steps(rep_replica_t *r, const step_t *st, size_t n)
{
    rep_txn_t *t = NULL;
    CK_OK(rep_txn_begin(r, "ed", &t));
    for (size_t i = 0; i < n; i++) {
        rep_value_t v = {.type = REP_STRING, .u.s = {st[i].s, st[i].s ? strlen(st[i].s) : 0}};
        switch (st[i].op) {
        case 's': CK_OK(rep_txn_set(t, st[i].key, st[i].field, &v)); break;
        case 'x': CK_OK(rep_txn_del_record(t, st[i].key)); break;
        case 'a': CK_OK(rep_txn_add(t, st[i].key, st[i].field, &v)); break;
        case 'i': CK_OK(rep_txn_incr(t, st[i].key, st[i].field, 1)); break;
        case 'l': CK_OK(rep_txn_append(t, st[i].key, st[i].field, &v)); break;
        default: ck_abort_msg("step op %c", st[i].op);
        }
    }
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);
}

static unsigned
siblings_of(rep_replica_t *r, const char *key, const char *field)
{
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(r, key, &rec));
    unsigned n = 0;
    for (size_t f = 0; f < rec->nfields; f++)
        if (strcmp(rec->fields[f].name, field) == 0)
            n = rec->fields[f].siblings;
    rep_record_free(&rec);
    return n;
}

static void
assert_same_history(rep_replica_t *a, rep_replica_t *b, const char *key)
{
    rep_history_t *ha = NULL, *hb = NULL;
    CK_OK(rep_replica_history(a, key, &ha));
    CK_OK(rep_replica_history(b, key, &hb));
    ck_assert_msg(ha->n == hb->n, "history of %s: %zu vs %zu changes", key, ha->n, hb->n);
    for (size_t i = 0; i < ha->n; i++) {
        ck_assert_uint_eq(ha->changes[i].actor, hb->changes[i].actor);
        ck_assert_uint_eq(ha->changes[i].seq, hb->changes[i].seq);
        ck_assert_uint_eq(ha->changes[i].nops, hb->changes[i].nops);
    }
    rep_history_free(&ha);
    rep_history_free(&hb);
}

/*
 * An import writes a batch's ops grouped by record in key order, not change by change; within a
 * record they must keep their order. Here record deletes sit between writes to their records'
 * fields, in other changes and within one change, beside writes to other records and to records
 * whose keys share their first 16 bytes. Replica 1 gets every change on its own as it is made,
 * replica 2 all of them in one batch (from replica 1): both must end with the same state and
 * history, and with the values the deletes leave. Were a delete applied before the earlier
 * writes to its record (as a sort by field key would do), pat/1.d and LONG1.f would keep them.
 */
START_TEST(test_batch_keeps_each_record_in_order)
{
    office_t o;
    office_open(&o, 4, tu_seed(51));
    static const step_t s1[] = {
        {'s', "pat/1", "a", "a1"}, {'s', "pat/2", "x", "x1"}, {'s', "pat/1", "d", "d1"},
        {'s', LONG2, "f", "m1"},   {'s', LONG1, "f", "l1"},   {'a', "pat/1", "s", "s1"},
        {'i', "pat/1", "n", NULL}, {'s', "pat/1", "b", "b1"},
    };
    static const step_t s2[] = { /* replica 0, after s1 */
        {'s', "pat/2", "y", "y2"}, {'x', "pat/1", NULL, NULL}, {'s', "pat/1", "c", "c2"},
        {'s', LONG2, "g", "m2"},   {'x', LONG1, NULL, NULL},   {'s', "pat/0", "z", "z2"},
    };
    static const step_t s3[] = { /* replica 3, after s1, concurrent with s2 */
        {'s', LONG1, "h", "l3"}, {'s', "pat/1", "b", "b3"}, {'l', "pat/1", "log", "e3"},
        {'s', LONG2, "f", "m3"},
    };
    static const step_t s4[] = { /* replica 0, after s2 */
        {'s', "pat/1", "a", "a4"}, {'x', LONG2, NULL, NULL}, {'s', LONG2, "f", "m4"},
        {'s', "pat/1", "e", "e4"},
    };
    commit_steps(o.r[0], s1, NELEM(s1));
    pull(&o, 0, 1, 0, 0);
    pull(&o, 0, 3, 0, 0);
    commit_steps(o.r[0], s2, NELEM(s2));
    pull(&o, 0, 1, 0, 0);
    commit_steps(o.r[3], s3, NELEM(s3));
    pull(&o, 3, 1, 0, 0);
    commit_steps(o.r[0], s4, NELEM(s4));
    pull(&o, 0, 1, 0, 0);

    uint8_t *b = NULL;
    size_t bn = 0;
    rep_import_stats_t st;
    CK_OK(rep_replica_export(o.r[1], NULL, 0, 0, &b, &bn, NULL));
    import_checked(&o, 2, b, bn, &st, "one batch");
    rep_free(b);
    ck_assert_uint_eq(st.changes, 4);
    ck_assert_uint_eq(st.applied, 4);

    uint8_t d1[REP_DIGEST_BYTES], d2[REP_DIGEST_BYTES];
    digest_of(o.r[1], d1);
    digest_of(o.r[2], d2);
    ck_assert_mem_eq(d1, d2, REP_DIGEST_BYTES);
    static const char *const keys[] = {"pat/0", "pat/1", "pat/2", LONG1, LONG2};
    for (size_t k = 0; k < NELEM(keys); k++)
        assert_same_history(o.r[1], o.r[2], keys[k]);

    for (int i = 1; i <= 2; i++) {
        char why[32];
        snprintf(why, sizeof why, "replica %d", i);
        rep_value_t a4 = {.type = REP_STRING, .u.s = {"a4", 2}};
        rep_value_t b3 = {.type = REP_STRING, .u.s = {"b3", 2}};
        rep_value_t c2 = {.type = REP_STRING, .u.s = {"c2", 2}};
        rep_value_t l3 = {.type = REP_STRING, .u.s = {"l3", 2}};
        check_value_is(o.r[i], "pat/1", "a", &a4, why);
        check_value_is(o.r[i], "pat/1", "b", &b3, why); /* concurrent with the delete: kept */
        check_value_is(o.r[i], "pat/1", "c", &c2, why); /* written after the delete, same change */
        check_absent(o.r[i], "pat/1", "d", why);        /* written before the delete only */
        check_absent(o.r[i], LONG1, "f", why);
        check_value_is(o.r[i], LONG1, "h", &l3, why);
        /* m3 and m4, concurrent; both saw m1 */
        ck_assert_uint_eq(siblings_of(o.r[i], LONG2, "f"), 2);
        check_absent(o.r[i], LONG2, "g", why);
        ck_assert_uint_eq(siblings_of(o.r[i], "pat/1", "a"), 1);
        ck_assert_uint_eq(siblings_of(o.r[i], "pat/1", "b"), 1);
    }

    full_exchange(&o);
    for (int j = 1; j < o.n; j++)
        assert_same_state(&o, j);
    office_close(&o);
}
END_TEST

static Suite *
exchange_suite(void)
{
    Suite *s = suite_create("exchange");
    TCase *tc;

    tc = tcase_create("random");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_random_exchange_converges, 0, 20);
    suite_add_tcase(s, tc);

    tc = tcase_create("batches");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_bounded_batches);
    tcase_add_test(tc, test_duplicate_import_is_noop);
    tcase_add_test(tc, test_import_progress);
    tcase_add_test(tc, test_early_change_waits_for_deps);
    tcase_add_test(tc, test_batch_keeps_each_record_in_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("delete");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_concurrent_delete_keeps_record);
    tcase_add_test(tc, test_delete_after_update_removes_record);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(exchange_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
