/*
 * check_snapshot.c — catch-up by state (DESIGN.md "Catch-up by state"; replica.h
 * rep_replica_snapshot, rep_replica_catchup, rep_replica_import).
 *
 * The property under test: merging a peer's snapshot gives exactly the state that importing
 * the peer's changes gives. It is checked by making two replicas hold one state (a "twin"
 * imports every change of the target), then giving one the peer's snapshot and the other the
 * peer's changes, and comparing digests, records, conflicts and version vectors, over random
 * seeded workloads with every field kind on replicas that edit concurrently.
 *
 * Then what a snapshot leaves behind: an empty receiver equals its sender, its history is
 * partial, it answers a peer that needs changes it only holds as state with REP_ESTATE (export)
 * or a snapshot (catchup), re-sent changes it holds as state are duplicates, and its own
 * writes travel by ordinary batches. Pending changes whose dependencies a snapshot brings are
 * applied. A snapshot contradicting a known hash chain, or claiming the receiver's own
 * changes, is refused whole (REP_EFORK) and reported. Damaged, foreign and hand-made invalid
 * snapshots are refused whole (REP_ECORRUPT, REP_EOFFICE). Catchup sends changes to a replica
 * a little behind and a snapshot to an empty one when the sender's log is mostly overwrites.
 *
 * Replicas live in temporary directories, with fake clocks; only the public API is used,
 * except for hand-made frames (msgpack-c and libsodium build them, as snapshot.h describes).
 * A failure names its seed; REPLICA_TEST_SEED=n reruns the random test from seed n.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <inttypes.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "change.h"
#include "checkutil.h"
#include "keys.h"
#include "seal.h"
#include "trust.h"
#include "replica.h"

/* ---- A small office: replicas of one office id, each with its own fake clock --------------- */

#define MAXR 8

typedef struct office {
    char *dir;
    int n;
    uint8_t id[REP_OFFICE_ID_BYTES];
    rep_replica_t *r[MAXR];
    uint64_t actor[MAXR];
    tu_clock_t clk[MAXR];
    char sub[MAXR][16];
} office_t;

/* Add one replica of the office (the first makes the office); returns its index. */
static int
office_add(office_t *o)
{
    ck_assert_int_lt(o->n, MAXR);
    int i = o->n++;
    rep_open_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC;
    opts.device_name = "ws";
    opts.office_name = "clinic";
    tu_clock_set(&o->clk[i], TU_CLOCK_EPOCH_MS + (uint64_t)i * 300);
    tu_clock_use(&o->clk[i], &opts);
    snprintf(o->sub[i], sizeof o->sub[i], "r%d", i);
    CK_OK(tu_replica_create(&o->r[i], o->dir, o->sub[i], &opts, i == 0 ? NULL : o->r[0]));
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(o->r[i], &info));
    if (i == 0)
        memcpy(o->id, info->office_id, REP_OFFICE_ID_BYTES);
    ck_assert_mem_eq(info->office_id, o->id, REP_OFFICE_ID_BYTES);
    o->actor[i] = info->actor;
    rep_info_free(&info);
    return i;
}

static void
office_open(office_t *o, int n)
{
    memset(o, 0, sizeof *o);
    o->dir = tu_tmpdir_in(g_root);
    ck_assert_msg(o->dir != NULL, "mkdtemp");
    for (int i = 0; i < n; i++)
        office_add(o);
    for (int i = 1; i < n; i++) /* every replica knows every member */
        CK_OK(tu_members_share(o->r[0], o->r[i]));
}

static void
office_close(office_t *o)
{
    for (int i = 0; i < o->n; i++)
        rep_replica_close(&o->r[i]);
    tu_rmtree(o->dir);
    free(o->dir);
    o->dir = NULL;
}

/* ---- Exchanges ------------------------------------------------------------------------------ */

/* Send dst what it lacks from src as changes (max_bytes 0: all); stats may be NULL. */
static void
sync_from(rep_replica_t *dst, rep_replica_t *src, size_t max_bytes, rep_import_stats_t *stats)
{
    uint8_t *vv = NULL, *batch = NULL;
    size_t vvn = 0, n = 0;
    rep_import_stats_t st;
    CK_OK(rep_replica_vv(dst, &vv, &vvn));
    CK_OK(rep_replica_export(src, vv, vvn, max_bytes, &batch, &n, NULL));
    CK_OK(rep_replica_import(dst, batch, n, &st));
    ck_assert_uint_eq(st.forks, 0);
    ck_assert_uint_eq(st.entries, 0);
    rep_free(vv);
    rep_free(batch);
    if (stats)
        *stats = st;
}

/* Merge src's snapshot into dst; returns what the import returned. */
static int
snap_from(rep_replica_t *dst, rep_replica_t *src, rep_import_stats_t *stats)
{
    uint8_t *snap = NULL;
    size_t n = 0;
    rep_import_stats_t st;
    CK_OK(rep_replica_snapshot(src, &snap, &n));
    ck_assert_ptr_nonnull(snap);
    int rc = rep_replica_import(dst, snap, n, &st);
    if (rc == 0)
        ck_assert_uint_eq(st.changes, 0);
    rep_free(snap);
    if (stats)
        *stats = st;
    return rc;
}

/* What catchup from src sends dst, imported; stats may be NULL. */
static void
catch_from(rep_replica_t *dst, rep_replica_t *src, rep_import_stats_t *stats)
{
    uint8_t *vv = NULL, *out = NULL;
    size_t vvn = 0, n = 0;
    rep_import_stats_t st;
    int more = -1;
    CK_OK(rep_replica_vv(dst, &vv, &vvn));
    CK_OK(rep_replica_catchup(src, vv, vvn, 0, &out, &n, &more));
    ck_assert_int_eq(more, 0);
    CK_OK(rep_replica_import(dst, out, n, &st));
    ck_assert_uint_eq(st.forks, 0);
    rep_free(vv);
    rep_free(out);
    if (stats)
        *stats = st;
}

/* ---- Comparing replicas -------------------------------------------------------------------- */

static void
digest_of(rep_replica_t *r, uint8_t d[REP_DIGEST_BYTES])
{
    CK_OK(rep_replica_digest(r, d));
}

static int
same_digest(rep_replica_t *a, rep_replica_t *b)
{
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    digest_of(a, da);
    digest_of(b, db);
    return memcmp(da, db, sizeof da) == 0;
}

static int
str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void
assert_entry_eq(const rep_entry_t *a, const rep_entry_t *b, const char *what, const char *key,
                const char *field)
{
    ck_assert_msg(a->actor == b->actor && a->seq == b->seq && a->hlc == b->hlc &&
                      str_eq(a->user, b->user) && tu_value_eq(&a->value, &b->value),
                  "%s: %s.%s: items differ", what, key, field);
}

static void
assert_record_eq(const rep_record_t *a, const rep_record_t *b, const char *what)
{
    char b1[96], b2[96];
    ck_assert_msg(str_eq(a->key, b->key), "%s: record %s vs %s", what, a->key, b->key);
    ck_assert_msg(a->delete_conflict == b->delete_conflict, "%s: %s delete_conflict %d vs %d", what,
                  a->key, a->delete_conflict, b->delete_conflict);
    ck_assert_msg(a->nfields == b->nfields, "%s: %s has %zu fields vs %zu", what, a->key,
                  a->nfields, b->nfields);
    for (size_t i = 0; i < a->nfields; i++) {
        const rep_field_t *x = &a->fields[i], *y = &b->fields[i];
        ck_assert_msg(str_eq(x->name, y->name) && x->kind == y->kind, "%s: %s field %s/%d vs %s/%d",
                      what, a->key, x->name, (int)x->kind, y->name, (int)y->kind);
        ck_assert_msg(tu_value_eq(&x->value, &y->value), "%s: %s.%s = %s vs %s", what, a->key,
                      x->name, tu_value_fmt(&x->value, b1, sizeof b1),
                      tu_value_fmt(&y->value, b2, sizeof b2));
        ck_assert_msg(x->siblings == y->siblings && x->kind_clash == y->kind_clash,
                      "%s: %s.%s siblings %u vs %u", what, a->key, x->name, x->siblings,
                      y->siblings);
        ck_assert_msg(x->nitems == y->nitems, "%s: %s.%s has %zu items vs %zu", what, a->key,
                      x->name, x->nitems, y->nitems);
        for (size_t k = 0; k < x->nitems; k++)
            assert_entry_eq(&x->items[k], &y->items[k], what, a->key, x->name);
    }
}

static const char *const COLLS[] = {"p", "q"};
#define NCOLLS ((int)(sizeof COLLS / sizeof COLLS[0]))

/* a and b hold the same replicated state: digest, every record as read, every conflict with
 * its siblings, the counts rep_replica_info gives, and the version vector. */
static void
assert_same_state(rep_replica_t *a, rep_replica_t *b, const char *what)
{
    ck_assert_msg(same_digest(a, b), "%s: digests differ", what);

    for (int c = 0; c < NCOLLS; c++) {
        rep_list_t *la = NULL, *lb = NULL;
        CK_OK(rep_replica_list(a, COLLS[c], NULL, 0, &la));
        CK_OK(rep_replica_list(b, COLLS[c], NULL, 0, &lb));
        ck_assert_msg(la->n == lb->n, "%s: collection %s has %zu records vs %zu", what, COLLS[c],
                      la->n, lb->n);
        for (size_t i = 0; i < la->n; i++)
            assert_record_eq(&la->records[i], &lb->records[i], what);
        rep_list_free(&la);
        rep_list_free(&lb);
    }

    rep_conflicts_t *ca = NULL, *cb = NULL;
    CK_OK(rep_replica_conflicts(a, NULL, &ca));
    CK_OK(rep_replica_conflicts(b, NULL, &cb));
    ck_assert_msg(ca->n == cb->n, "%s: %zu conflicts vs %zu", what, ca->n, cb->n);
    for (size_t i = 0; i < ca->n; i++) {
        const rep_conflict_t *x = &ca->items[i], *y = &cb->items[i];
        ck_assert_msg(str_eq(x->key, y->key) && str_eq(x->field, y->field) && x->kind == y->kind &&
                          x->kind_clash == y->kind_clash && x->n == y->n,
                      "%s: conflict %zu differs (%s.%s)", what, i, x->key, x->field);
        for (size_t k = 0; k < x->n; k++) {
            const rep_sibling_t *s = &x->siblings[k], *t = &y->siblings[k];
            ck_assert_msg(s->actor == t->actor && s->seq == t->seq && s->hlc == t->hlc &&
                              str_eq(s->user, t->user) && s->deleted == t->deleted &&
                              s->winner == t->winner && tu_value_eq(&s->value, &t->value),
                          "%s: %s.%s sibling %zu differs", what, x->key, x->field, k);
        }
    }
    rep_conflicts_free(&ca);
    rep_conflicts_free(&cb);

    rep_info_t *ia = NULL, *ib = NULL;
    CK_OK(rep_replica_info(a, &ia));
    CK_OK(rep_replica_info(b, &ib));
    ck_assert_msg(ia->records == ib->records && ia->conflicts == ib->conflicts,
                  "%s: records %" PRIu64 "/%" PRIu64 ", conflicts %" PRIu64 "/%" PRIu64, what,
                  ia->records, ib->records, ia->conflicts, ib->conflicts);
    ck_assert_msg(ia->nvv == ib->nvv, "%s: vv of %zu vs %zu actors", what, ia->nvv, ib->nvv);
    for (size_t i = 0; i < ia->nvv; i++)
        ck_assert_msg(ia->vv[i].actor == ib->vv[i].actor && ia->vv[i].seq == ib->vv[i].seq,
                      "%s: vv entry %zu differs", what, i);
    rep_info_free(&ia);
    rep_info_free(&ib);
}

static rep_info_t *
info_of(rep_replica_t *r)
{
    rep_info_t *i = NULL;
    CK_OK(rep_replica_info(r, &i));
    return i;
}

static uint64_t
vv_seq_of(rep_replica_t *r, uint64_t actor)
{
    rep_info_t *i = info_of(r);
    uint64_t seq = 0;
    for (size_t k = 0; k < i->nvv; k++)
        if (i->vv[k].actor == actor)
            seq = i->vv[k].seq;
    rep_info_free(&i);
    return seq;
}

/* ---- Writes -------------------------------------------------------------------------------- */

static void
commit(rep_txn_t **t)
{
    uint64_t seq = 0;
    CK_OK(rep_txn_commit(*t, &seq));
    ck_assert_uint_gt(seq, 0);
    rep_txn_free(t);
}

static void
set_str(office_t *o, int i, const char *key, const char *field, const char *s)
{
    rep_txn_t *t = NULL;
    tu_clock_advance(&o->clk[i], 10);
    CK_OK(rep_txn_begin(o->r[i], "staff", &t));
    CK_OK(rep_txn_set_str(t, key, field, s));
    commit(&t);
}

static void
incr(office_t *o, int i, const char *key, const char *field, int64_t d)
{
    rep_txn_t *t = NULL;
    tu_clock_advance(&o->clk[i], 10);
    CK_OK(rep_txn_begin(o->r[i], "staff", &t));
    CK_OK(rep_txn_incr(t, key, field, d));
    commit(&t);
}

static void
set_op(office_t *o, int i, const char *key, const char *field, const char *member, int add)
{
    rep_txn_t *t = NULL;
    rep_value_t v = tu_v_str(member);
    tu_clock_advance(&o->clk[i], 10);
    CK_OK(rep_txn_begin(o->r[i], "staff", &t));
    CK_OK(add ? rep_txn_add(t, key, field, &v) : rep_txn_remove(t, key, field, &v));
    commit(&t);
}

static void
del_record(office_t *o, int i, const char *key)
{
    rep_txn_t *t = NULL;
    tu_clock_advance(&o->clk[i], 10);
    CK_OK(rep_txn_begin(o->r[i], "staff", &t));
    CK_OK(rep_txn_del_record(t, key));
    commit(&t);
}

static int64_t
get_int(rep_replica_t *r, const char *key, const char *field)
{
    rep_value_t *v = NULL;
    CK_OK(rep_replica_get(r, key, field, &v));
    ck_assert_int_eq(v->type, REP_INT);
    int64_t i = v->u.i;
    rep_value_free(&v);
    return i;
}

/* ---- The random workload: every kind over a small key space ---------------------------------- */

static const char *const KEYS[] = {"p/1", "p/2", "p/3", "q/a"};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))
static const char *const REGS[] = {"name", "phone"};
static const char *const MEMBERS[] = {"flu", "vip", "new"};

static rep_value_t
random_value(tu_rng_t *rng)
{
    static const char *const strs[] = {"a", "Zoë", "555-0100", ""};
    rep_value_t v;
    memset(&v, 0, sizeof v);
    switch (tu_rng_below(rng, 5)) {
    case 0:
        v.type = REP_NULL;
        break;
    case 1:
        v.type = REP_BOOL;
        v.u.b = (int)tu_rng_below(rng, 2);
        break;
    case 2:
        v = tu_v_int((int64_t)tu_rng_below(rng, 7) - 3);
        break;
    case 3:
        v.type = REP_DOUBLE;
        v.u.d = 0.5;
        break;
    default:
        v = tu_v_str(strs[tu_rng_below(rng, 4)]);
        break;
    }
    return v;
}

/* Tallies across a random test, to check the workload reached what it is meant to. */
typedef struct tally {
    unsigned conflicts, delete_conflicts, counters_from_several, set_members, log_entries;
    unsigned concurrent; /* target and peer each had changes the other lacked */
    unsigned rebased;    /* the target had caught up by state before */
} tally_t;

/* One local transaction of 1..3 random ops on replica i. */
static void
random_txn(office_t *o, int i, tu_rng_t *rng)
{
    char user[16];
    rep_txn_t *t = NULL;
    snprintf(user, sizeof user, "u%d", i);
    tu_clock_advance(&o->clk[i], 1 + tu_rng_below(rng, 40));
    CK_OK(rep_txn_begin(o->r[i], tu_rng_chance(rng, 20) ? NULL : user, &t));
    int nops = (int)tu_rng_range(rng, 1, 3);
    for (int k = 0; k < nops; k++) {
        const char *key = KEYS[tu_rng_below(rng, NKEYS)];
        uint64_t p = tu_rng_below(rng, 100);
        rep_value_t m = tu_v_str(MEMBERS[tu_rng_below(rng, 3)]);
        if (p < 28) {
            rep_value_t v = random_value(rng);
            CK_OK(rep_txn_set(t, key, REGS[tu_rng_below(rng, 2)], &v));
        } else if (p < 36) {
            CK_OK(rep_txn_del_field(t, key, REGS[tu_rng_below(rng, 2)]));
        } else if (p < 44) {
            CK_OK(rep_txn_del_record(t, key));
        } else if (p < 60) {
            int64_t d = (int64_t)tu_rng_range(rng, 1, 9);
            CK_OK(rep_txn_incr(t, key, "visits", tu_rng_chance(rng, 40) ? -d : d));
        } else if (p < 76) {
            CK_OK(rep_txn_add(t, key, "tags", &m));
        } else if (p < 88) {
            CK_OK(rep_txn_remove(t, key, "tags", &m));
        } else {
            rep_value_t v = random_value(rng);
            CK_OK(rep_txn_append(t, key, "notes", &v));
        }
    }
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);
}

/* Random writes on replicas 0..nwriters-1, with some exchanges by batches among them. */
static void
random_rounds(office_t *o, int nwriters, int steps, tu_rng_t *rng)
{
    for (int s = 0; s < steps; s++) {
        random_txn(o, (int)tu_rng_below(rng, (uint64_t)nwriters), rng);
        if (tu_rng_chance(rng, 30)) {
            int d = (int)tu_rng_below(rng, (uint64_t)nwriters);
            int f = (int)tu_rng_below(rng, (uint64_t)nwriters);
            if (d != f)
                sync_from(o->r[d], o->r[f], tu_rng_chance(rng, 30) ? 300 : 0, NULL);
        }
    }
}

/* Does a have a change of some actor that b lacks? */
static int
ahead_somewhere(rep_replica_t *a, rep_replica_t *b)
{
    rep_info_t *ia = info_of(a);
    int ahead = 0;
    for (size_t k = 0; k < ia->nvv && !ahead; k++)
        ahead = ia->vv[k].seq > vv_seq_of(b, ia->vv[k].actor);
    rep_info_free(&ia);
    return ahead;
}

static void
tally_state(rep_replica_t *r, tally_t *t)
{
    rep_info_t *info = info_of(r);
    t->conflicts += info->conflicts > 0;
    rep_info_free(&info);
    for (int c = 0; c < NCOLLS; c++) {
        rep_list_t *l = NULL;
        CK_OK(rep_replica_list(r, COLLS[c], NULL, 0, &l));
        for (size_t i = 0; i < l->n; i++) {
            const rep_record_t *rec = &l->records[i];
            t->delete_conflicts += rec->delete_conflict;
            for (size_t f = 0; f < rec->nfields; f++) {
                const rep_field_t *fl = &rec->fields[f];
                if (fl->kind == REP_KIND_SET)
                    t->set_members += fl->nitems > 0;
                if (fl->kind == REP_KIND_LOG)
                    t->log_entries += fl->nitems > 0;
            }
        }
        rep_list_free(&l);
    }
}

/*
 * The core property, for target t and peer p of office o: a twin of t is made (a new replica
 * that imports every change t has, or t's snapshot when t holds some changes only as state,
 * and so holds t's state); then one of the two merges p's
 * snapshot and the other imports p's changes, and both must hold the same state. Merging
 * the same snapshot again changes nothing. Returns the index of the replica that took the
 * snapshot.
 */
static int
check_equivalence(office_t *o, int t, int p, int snapshot_to_twin, const char *what, int *changed)
{
    char msg[128];
    int twin = office_add(o);
    catch_from(o->r[twin], o->r[t], NULL);
    rep_info_t *it = info_of(o->r[t]);
    ck_assert_uint_eq(it->pending, 0);
    rep_info_free(&it);
    snprintf(msg, sizeof msg, "%s: twin of r%d", what, t);
    assert_same_state(o->r[t], o->r[twin], msg);

    int xs = snapshot_to_twin ? twin : t, xc = snapshot_to_twin ? t : twin;
    if (changed)
        *changed = xc;
    rep_import_stats_t ss, cs;
    CK_OK(snap_from(o->r[xs], o->r[p], &ss));
    ck_assert_uint_eq(ss.forks, 0);
    ck_assert_uint_eq(ss.duplicates, 0);
    sync_from(o->r[xc], o->r[p], 0, &cs);
    snprintf(msg, sizeof msg, "%s: r%d took r%d's snapshot, r%d its changes", what, xs, p, xc);
    assert_same_state(o->r[xs], o->r[xc], msg);

    /* idempotent: the same state merged again changes nothing */
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    digest_of(o->r[xs], before);
    CK_OK(snap_from(o->r[xs], o->r[p], &ss));
    digest_of(o->r[xs], after);
    ck_assert_msg(memcmp(before, after, sizeof before) == 0, "%s: second merge changed state",
                  what);
    return xs;
}

/* Everyone catches up with everyone (changes or snapshots, as catchup picks), until all hold
 * one state. */
static void
converge_by_catchup(office_t *o, const char *what)
{
    for (int round = 0; round < 2; round++)
        for (int d = 0; d < o->n; d++)
            for (int s = 0; s < o->n; s++)
                if (d != s)
                    catch_from(o->r[d], o->r[s], NULL);
    char msg[128];
    for (int i = 1; i < o->n; i++) {
        snprintf(msg, sizeof msg, "%s: after catchup, r0 vs r%d", what, i);
        assert_same_state(o->r[0], o->r[i], msg);
    }
}

#define EQUIV_SEEDS 48

START_TEST(test_snapshot_equals_changes_random)
{
    uint64_t first = tu_seed(1000);
    tally_t tl;
    memset(&tl, 0, sizeof tl);
    for (uint64_t seed = first; seed < first + EQUIV_SEEDS; seed++) {
        office_t o;
        tu_rng_t rng;
        char what[64];
        tu_rng_seed(&rng, seed);
        snprintf(what, sizeof what, "seed %" PRIu64, seed);
        int nw = 3 + (int)tu_rng_below(&rng, 2);
        office_open(&o, nw);
        random_rounds(&o, nw, 20 + (int)tu_rng_below(&rng, 30), &rng);
        int t = (int)tu_rng_below(&rng, (uint64_t)nw);
        int p = (int)((uint64_t)(t + 1) + tu_rng_below(&rng, (uint64_t)nw - 1)) % nw;
        if (tu_rng_chance(&rng, 40)) {
            /* the target caught up by state before: it merges a second snapshot */
            int q = (p + 1) % nw == t ? (p + 2) % nw : (p + 1) % nw;
            CK_OK(snap_from(o.r[t], o.r[q], NULL));
            random_txn(&o, t, &rng);
            tl.rebased++;
        }
        tl.concurrent += ahead_somewhere(o.r[t], o.r[p]) && ahead_somewhere(o.r[p], o.r[t]);
        int xc;
        int xs = check_equivalence(&o, t, p, (int)tu_rng_below(&rng, 2), what, &xc);
        tally_state(o.r[xs], &tl);

        /* counters with totals from several actors */
        rep_record_t *rec = NULL;
        for (int k = 0; k < NKEYS; k++)
            if (rep_replica_get_record(o.r[xs], KEYS[k], &rec) == 0) {
                rep_history_t *h = NULL; /* the one that took changes has their history */
                CK_OK(rep_replica_history(o.r[xc], KEYS[k], &h));
                uint64_t first_actor = 0;
                int several = 0;
                for (size_t c = 0; c < h->n; c++)
                    for (size_t op = 0; op < h->changes[c].nops; op++)
                        if (h->changes[c].ops[op].type == REP_OP_INCR) {
                            if (first_actor && h->changes[c].actor != first_actor)
                                several = 1;
                            first_actor = h->changes[c].actor;
                        }
                tl.counters_from_several += several;
                rep_history_free(&h);
                rep_record_free(&rec);
            }

        /* afterwards: writes on the receiver, then everyone catches up (some by state) */
        random_txn(&o, xs, &rng);
        random_txn(&o, p, &rng);
        converge_by_catchup(&o, what);
        office_close(&o);
    }
    /* the workload must have reached the cases the property is about */
    ck_assert_uint_gt(tl.concurrent, EQUIV_SEEDS / 4);
    ck_assert_uint_gt(tl.rebased, EQUIV_SEEDS / 4);
    ck_assert_uint_gt(tl.conflicts, 3);
    ck_assert_uint_gt(tl.delete_conflicts, 0);
    ck_assert_uint_gt(tl.counters_from_several, 3);
    ck_assert_uint_gt(tl.set_members, 3);
    ck_assert_uint_gt(tl.log_entries, 3);
}
END_TEST

/*
 * The same property on chosen concurrent edits, with the merged values checked too: a register
 * written on both sides (a conflict), a set member removed on one side while re-added on the
 * other (the add wins), a record deleted on one side while updated on the other (the update
 * keeps it, the delete conflict shows), and a counter incremented by three devices.
 */
START_TEST(test_snapshot_equals_changes_concurrent_edits)
{
    for (int to_twin = 0; to_twin < 2; to_twin++) {
        office_t o;
        office_open(&o, 3); /* 0: the receiver, 1: the peer, 2: a third device */
        set_str(&o, 1, "p/1", "name", "Ann");
        set_op(&o, 1, "p/1", "tags", "vip", 1);
        incr(&o, 1, "p/1", "visits", 5);
        set_str(&o, 1, "p/2", "name", "Bob");
        incr(&o, 2, "p/1", "visits", 10);
        sync_from(o.r[0], o.r[1], 0, NULL);
        sync_from(o.r[0], o.r[2], 0, NULL);
        sync_from(o.r[1], o.r[2], 0, NULL);

        /* concurrently: */
        set_str(&o, 0, "p/1", "name", "Anne");  /* conflicts with ... */
        set_str(&o, 1, "p/1", "name", "Annie"); /* ... this */
        set_op(&o, 0, "p/1", "tags", "vip", 0); /* removes the add it saw ... */
        set_op(&o, 1, "p/1", "tags", "vip", 1); /* ... while the peer adds it again */
        set_op(&o, 0, "p/1", "tags", "new", 1);
        del_record(&o, 1, "p/2");              /* deleted here ... */
        set_str(&o, 0, "p/2", "phone", "555"); /* ... updated there */
        incr(&o, 0, "p/1", "visits", -3);
        incr(&o, 1, "p/1", "visits", 7);
        incr(&o, 2, "p/1", "visits", 100); /* the peer does not have this one */

        int xs = check_equivalence(&o, 0, 1, to_twin, to_twin ? "to twin" : "to receiver", NULL);
        rep_replica_t *r = o.r[xs];
        ck_assert_int_eq(get_int(r, "p/1", "visits"), 5 + 10 - 3 + 7);

        rep_conflicts_t *c = NULL;
        CK_OK(rep_replica_conflicts(r, "p/1", &c));
        ck_assert_uint_eq(c->n, 1);
        ck_assert_str_eq(c->items[0].field, "name");
        ck_assert_uint_eq(c->items[0].n, 2);
        rep_conflicts_free(&c);

        rep_record_t *rec = NULL;
        CK_OK(rep_replica_get_record(r, "p/1", &rec));
        const rep_field_t *tags = NULL;
        for (size_t f = 0; f < rec->nfields; f++)
            if (rec->fields[f].kind == REP_KIND_SET)
                tags = &rec->fields[f];
        ck_assert_ptr_nonnull(tags);
        ck_assert_uint_eq(tags->nitems, 2); /* "new" and the concurrently re-added "vip" */
        int vip = 0;
        for (size_t k = 0; k < tags->nitems; k++)
            vip |= tu_is_str(&tags->items[k].value, "vip");
        ck_assert_int_eq(vip, 1);
        rep_record_free(&rec);

        CK_OK(rep_replica_get_record(r, "p/2", &rec));
        ck_assert_int_eq(rec->delete_conflict, 1);
        rep_record_free(&rec);

        /* the third device's increment, and everything else, reaches everyone */
        converge_by_catchup(&o, "concurrent edits");
        ck_assert_int_eq(get_int(o.r[xs], "p/1", "visits"), 5 + 10 - 3 + 7 + 100);
        office_close(&o);
    }
}
END_TEST

/* ---- An empty receiver -------------------------------------------------------------------- */

START_TEST(test_snapshot_into_empty_replica)
{
    office_t o;
    office_open(&o, 4); /* 0, 1: writers; 2: empty, takes a snapshot; 3: empty, later */
    tu_rng_t rng;
    tu_rng_seed(&rng, 7);
    for (int i = 0; i < 30; i++)
        random_txn(&o, i % 2, &rng);
    /* the sender's clock is two minutes ahead of the receivers' (within the allowed drift) */
    tu_clock_advance(&o.clk[0], 120000);
    rep_txn_t *t = NULL;
    rep_value_t first = tu_v_str("first"), second = tu_v_str("second");
    CK_OK(rep_txn_begin(o.r[0], "staff", &t));
    CK_OK(rep_txn_set_str(t, "p/9", "name", "Zed"));
    CK_OK(rep_txn_append(t, "p/9", "notes", &first));
    commit(&t);
    sync_from(o.r[0], o.r[1], 0, NULL);

    rep_import_stats_t st;
    CK_OK(snap_from(o.r[2], o.r[0], &st));
    ck_assert_uint_gt(st.entries, 0);
    ck_assert_uint_eq(st.changes, 0);
    ck_assert_uint_eq(st.applied, 0);
    ck_assert_uint_eq(st.forks, 0);
    assert_same_state(o.r[2], o.r[0], "empty receiver");
    rep_info_t *info = info_of(o.r[2]);
    ck_assert_uint_eq(info->changes, 0); /* state only: no log */
    ck_assert_uint_eq(info->seq, 0);
    rep_info_free(&info);

    /* history: partial on the receiver, complete on the sender */
    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(o.r[2], "p/9", &h));
    ck_assert_int_eq(h->partial, 1);
    rep_history_free(&h);
    CK_OK(rep_replica_history(o.r[0], "p/9", &h));
    ck_assert_int_eq(h->partial, 0);
    ck_assert_uint_eq(h->n, 1);
    rep_history_free(&h);

    /* the receiver cannot export what it only holds as state ... */
    uint8_t *vv = NULL, *out = NULL;
    size_t vvn = 0, n = 0;
    int more = -1;
    CK_OK(rep_replica_vv(o.r[3], &vv, &vvn));
    CK_RC(rep_replica_export(o.r[2], vv, vvn, 0, &out, &n, &more), REP_ESTATE);
    ck_assert_ptr_null(out);
    CK_RC(rep_replica_export(o.r[2], NULL, 0, 0, &out, &n, NULL), REP_ESTATE);
    ck_assert_ptr_null(out);
    /* ... so catchup answers with a snapshot, even under a size bound */
    CK_OK(rep_replica_catchup(o.r[2], vv, vvn, 64, &out, &n, &more));
    ck_assert_int_eq(more, 0);
    ck_assert_uint_gt(n, 64);
    CK_OK(rep_replica_import(o.r[3], out, n, &st));
    ck_assert_uint_gt(st.entries, 0);
    ck_assert_uint_eq(st.changes, 0);
    rep_free(out);
    rep_free(vv);
    assert_same_state(o.r[3], o.r[0], "snapshot of a snapshot");

    /* the changes it holds as state, sent again, are duplicates and change nothing */
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    digest_of(o.r[2], before);
    CK_OK(rep_replica_export(o.r[0], NULL, 0, 0, &out, &n, NULL));
    CK_OK(rep_replica_import(o.r[2], out, n, &st));
    rep_free(out);
    ck_assert_uint_eq(st.changes, 31);
    ck_assert_uint_eq(st.duplicates, 31);
    ck_assert_uint_eq(st.forks, 0);
    ck_assert_uint_eq(st.applied, 0);
    ck_assert_uint_eq(st.pending, 0);
    digest_of(o.r[2], after);
    ck_assert_mem_eq(before, after, sizeof before);
    info = info_of(o.r[2]);
    ck_assert_uint_eq(info->nforked, 0);
    ck_assert_uint_eq(info->changes, 0);
    rep_info_free(&info);
    sync_from(o.r[2], o.r[0], 0, &st); /* nothing is lacking */
    ck_assert_uint_eq(st.changes, 0);

    /* its own writes travel by ordinary batches, both ways; its clock has observed the
     * state's, so what it appends comes after what it saw */
    tu_clock_advance(&o.clk[2], 10);
    CK_OK(rep_txn_begin(o.r[2], "staff", &t));
    CK_OK(rep_txn_set_str(t, "p/9", "name", "Zoe"));
    CK_OK(rep_txn_append(t, "p/9", "notes", &second));
    commit(&t);
    incr(&o, 2, "q/a", "visits", -4);
    sync_from(o.r[0], o.r[2], 0, &st);
    ck_assert_uint_eq(st.changes, 2);
    ck_assert_uint_eq(st.applied, 2);
    sync_from(o.r[3], o.r[2], 0, &st);
    ck_assert_uint_eq(st.applied, 2);
    sync_from(o.r[1], o.r[0], 0, NULL); /* 1 hears of everything, then writes after it */
    set_str(&o, 1, "p/9", "phone", "555-0199");
    sync_from(o.r[2], o.r[1], 0, &st);
    ck_assert_uint_eq(st.applied, 1);
    sync_from(o.r[0], o.r[1], 0, NULL);
    sync_from(o.r[3], o.r[1], 0, NULL);
    assert_same_state(o.r[0], o.r[2], "after new writes");
    assert_same_state(o.r[0], o.r[3], "after new writes (third)");
    rep_value_t *v = NULL;
    CK_OK(rep_replica_get(o.r[0], "p/9", "name", &v));
    ck_assert(tu_is_str(v, "Zoe"));
    rep_value_free(&v);
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(o.r[0], "p/9", &rec));
    const rep_field_t *notes = NULL;
    for (size_t f = 0; f < rec->nfields; f++)
        if (rec->fields[f].kind == REP_KIND_LOG)
            notes = &rec->fields[f];
    ck_assert_ptr_nonnull(notes);
    ck_assert_uint_eq(notes->nitems, 2);
    ck_assert(tu_is_str(&notes->items[0].value, "first"));
    ck_assert(tu_is_str(&notes->items[1].value, "second"));
    ck_assert_uint_eq(notes->items[1].actor, o.actor[2]);
    rep_record_free(&rec);
    CK_OK(rep_replica_history(o.r[2], "p/9", &h)); /* the new change is in its history */
    ck_assert_int_eq(h->partial, 1);
    ck_assert_uint_eq(h->n, 2);
    ck_assert_uint_eq(h->changes[0].actor, o.actor[2]);
    ck_assert_uint_eq(h->changes[1].actor, o.actor[1]);
    rep_history_free(&h);

    /* rep_batch_office reads a snapshot's office */
    uint8_t id[REP_OFFICE_ID_BYTES];
    char *name = NULL;
    CK_OK(rep_replica_snapshot(o.r[2], &out, &n));
    CK_OK(rep_batch_office(out, n, id, &name));
    ck_assert_mem_eq(id, o.id, sizeof id);
    ck_assert_str_eq(name, "clinic");
    rep_free(name);
    rep_free(out);
    office_close(&o);
}
END_TEST

/* A snapshot of an empty replica merges into anything as a no-op, and an empty snapshot into
 * an empty replica leaves it empty and complete. */
START_TEST(test_empty_snapshot)
{
    office_t o;
    office_open(&o, 3);
    set_str(&o, 0, "p/1", "name", "Ann");
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    rep_import_stats_t st;
    digest_of(o.r[0], before);
    CK_OK(snap_from(o.r[0], o.r[1], &st));
    ck_assert_uint_eq(st.entries, 0);
    digest_of(o.r[0], after);
    ck_assert_mem_eq(before, after, sizeof before);
    CK_OK(snap_from(o.r[2], o.r[1], &st));
    ck_assert(same_digest(o.r[2], o.r[1]));
    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(o.r[2], "p/1", &h));
    ck_assert_int_eq(h->partial, 0);
    rep_history_free(&h);
    office_close(&o);
}
END_TEST

/* A snapshot of counters alone carries no clock in its entries: it carries the sender's, so
 * the receiver's next change is later than everything it has seen. */
START_TEST(test_snapshot_carries_the_senders_clock)
{
    office_t o;
    office_open(&o, 2);
    tu_clock_advance(&o.clk[0], 120000); /* the sender's clock two minutes ahead */
    incr(&o, 0, "p/1", "visits", 3);
    rep_info_t *ia = info_of(o.r[0]);
    rep_import_stats_t st;
    CK_OK(snap_from(o.r[1], o.r[0], &st));
    ck_assert_uint_eq(st.entries, 2); /* the counter and the record's existence */
    rep_info_t *ib = info_of(o.r[1]);
    ck_assert_uint_ge(ib->hlc, ia->hlc);
    rep_info_free(&ia);
    rep_info_free(&ib);
    office_close(&o);
}
END_TEST

/* ---- Pending changes ------------------------------------------------------------------------ */

/* b waits for a's changes under c's; a's snapshot brings them, and the waiting change applies. */
START_TEST(test_snapshot_releases_pending)
{
    office_t o;
    office_open(&o, 4); /* a, b, c, d */
    set_str(&o, 0, "p/1", "name", "Ann");
    incr(&o, 0, "p/1", "visits", 2);
    set_str(&o, 3, "p/2", "name", "Dee");
    sync_from(o.r[2], o.r[0], 0, NULL);
    set_str(&o, 2, "p/1", "name", "Anne"); /* depends on a:2 */
    incr(&o, 2, "p/1", "visits", -5);      /* and this on c:1 */

    /* b gets c's two changes, exported against a's vv: they wait for a's */
    uint8_t *vv = NULL, *batch = NULL;
    size_t vvn = 0, n = 0;
    rep_import_stats_t st;
    CK_OK(rep_replica_vv(o.r[0], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[2], vv, vvn, 0, &batch, &n, NULL));
    rep_free(vv);
    CK_OK(rep_replica_import(o.r[1], batch, n, &st));
    ck_assert_uint_eq(st.changes, 2);
    ck_assert_uint_eq(st.applied, 0);
    ck_assert_uint_eq(st.pending, 2);

    /* d's snapshot does not cover a's changes: they still wait */
    CK_OK(snap_from(o.r[1], o.r[3], &st));
    ck_assert_uint_eq(st.applied, 0);
    ck_assert_uint_eq(st.pending, 2);

    /* a's does */
    CK_OK(snap_from(o.r[1], o.r[0], &st));
    ck_assert_uint_gt(st.entries, 0);
    ck_assert_uint_eq(st.applied, 2);
    ck_assert_uint_eq(st.pending, 0);
    rep_info_t *info = info_of(o.r[1]);
    ck_assert_uint_eq(info->pending, 0);
    ck_assert_uint_eq(info->changes, 2); /* c's, in the log */
    rep_info_free(&info);
    ck_assert_int_eq(get_int(o.r[1], "p/1", "visits"), -3);
    rep_value_t *v = NULL;
    CK_OK(rep_replica_get(o.r[1], "p/1", "name", &v));
    ck_assert(tu_is_str(v, "Anne"));
    rep_value_free(&v);

    /* the sender, given the same changes, holds the same state (d's too) */
    CK_OK(rep_replica_import(o.r[0], batch, n, &st));
    ck_assert_uint_eq(st.applied, 2);
    sync_from(o.r[0], o.r[3], 0, NULL);
    assert_same_state(o.r[1], o.r[0], "pending released by a snapshot");
    rep_free(batch);
    office_close(&o);
}
END_TEST

/* A pending change that the snapshot itself already covers is not applied again. */
START_TEST(test_snapshot_covering_a_pending_change)
{
    office_t o;
    office_open(&o, 3); /* a, b, c */
    set_str(&o, 0, "p/1", "name", "Ann");
    sync_from(o.r[2], o.r[0], 0, NULL);
    incr(&o, 2, "p/1", "visits", 4); /* c:1 depends on a:1 */
    uint8_t *vv = NULL, *batch = NULL;
    size_t vvn = 0, n = 0;
    rep_import_stats_t st;
    CK_OK(rep_replica_vv(o.r[0], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[2], vv, vvn, 0, &batch, &n, NULL));
    rep_free(vv);
    CK_OK(rep_replica_import(o.r[1], batch, n, &st));
    rep_free(batch);
    ck_assert_uint_eq(st.pending, 1);
    CK_OK(snap_from(o.r[1], o.r[2], &st)); /* c's state has a:1 and c:1 */
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.applied, 0);
    ck_assert_int_eq(get_int(o.r[1], "p/1", "visits"), 4);
    assert_same_state(o.r[1], o.r[2], "covered pending");
    office_close(&o);
}
END_TEST

/* ---- Forks ----------------------------------------------------------------------------------- */

static void
copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char from[TU_PATH_MAX], to[TU_PATH_MAX];
    CK_OK(tu_path(from, from_dir, name));
    CK_OK(tu_path(to, to_dir, name));
    mkdir(to_dir, 0700);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert_msg(in && out, "copy %s -> %s", from, to);
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, k, out), k);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

static void
assert_forked(rep_replica_t *r, uint64_t actor, uint64_t seq)
{
    rep_info_t *info = info_of(r);
    int found = 0;
    for (size_t i = 0; i < info->nforked; i++)
        if (info->forked[i].actor == actor) {
            found = 1;
            ck_assert_uint_eq(info->forked[i].seq, seq);
        }
    ck_assert_msg(found, "actor %016" PRIx64 " is not listed as forked", actor);
    rep_info_free(&info);
}

/* Import src's snapshot into dst: it must be refused as a fork, with dst unchanged. */
static void
assert_snapshot_forks(rep_replica_t *dst, rep_replica_t *src)
{
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    rep_info_t *ib = info_of(dst);
    rep_import_stats_t st;
    digest_of(dst, before);
    CK_RC(snap_from(dst, src, &st), REP_EFORK);
    ck_assert_uint_ge(st.forks, 1);
    ck_assert_uint_eq(st.applied, 0);
    digest_of(dst, after);
    ck_assert_mem_eq(before, after, sizeof before);
    rep_info_t *ia = info_of(dst); /* nothing else moved either: vv, log, clock */
    ck_assert_uint_eq(ia->nvv, ib->nvv);
    for (size_t i = 0; i < ia->nvv; i++) {
        ck_assert_uint_eq(ia->vv[i].actor, ib->vv[i].actor);
        ck_assert_uint_eq(ia->vv[i].seq, ib->vv[i].seq);
    }
    ck_assert_uint_eq(ia->changes, ib->changes);
    ck_assert_uint_eq(ia->hlc, ib->hlc);
    rep_info_free(&ia);
    rep_info_free(&ib);
    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(dst, "p/1", &h));
    ck_assert_int_eq(h->partial, 0);
    rep_history_free(&h);
}

/*
 * Replica a is restored in place from a backup its file identity cannot tell apart (the
 * data file overwritten with its old bytes), so it reuses its actor's seqs: its history
 * forks. b and c had the original's changes 1..4.
 */
START_TEST(test_snapshot_fork_is_refused)
{
    office_t o;
    office_open(&o, 4); /* a, b, c, d */
    char adir[TU_PATH_MAX], backup[TU_PATH_MAX];
    CK_OK(tu_path(adir, o.dir, o.sub[0]));
    CK_OK(tu_path(backup, o.dir, "backup"));
    uint64_t a = o.actor[0];

    set_str(&o, 0, "p/1", "name", "Ann");
    set_str(&o, 0, "p/1", "phone", "1");
    rep_replica_close(&o.r[0]);
    copy_file(adir, backup, "data.mdb");
    copy_file(adir, backup, "replica.id");
    rep_open_opts_t opts = {.flags = REP_OPEN_NOSYNC};
    tu_clock_use(&o.clk[0], &opts);
    CK_OK(tu_replica_reopen(&o.r[0], o.dir, o.sub[0], &opts));
    set_str(&o, 0, "p/1", "phone", "2");
    set_str(&o, 0, "p/1", "phone", "3");
    sync_from(o.r[1], o.r[0], 0, NULL);
    sync_from(o.r[2], o.r[0], 0, NULL);
    ck_assert_uint_eq(vv_seq_of(o.r[1], a), 4);

    rep_replica_close(&o.r[0]);
    copy_file(backup, adir, "data.mdb");
    copy_file(backup, adir, "replica.id");
    CK_OK(tu_replica_reopen(&o.r[0], o.dir, o.sub[0], &opts));
    rep_info_t *info = info_of(o.r[0]);
    ck_assert_uint_eq(info->actor, a); /* undetectable here */
    ck_assert_uint_eq(info->seq, 2);
    rep_info_free(&info);

    /* b's snapshot claims a:3 and a:4, which a (as it is now) never made */
    assert_snapshot_forks(o.r[0], o.r[1]);
    assert_forked(o.r[0], a, 4);

    /* a writes a:3 again, other content, and picks up d's work (legitimate) */
    set_str(&o, 3, "q/a", "name", "Dee");
    sync_from(o.r[0], o.r[3], 0, NULL);
    set_str(&o, 0, "p/1", "phone", "fork-3");
    /* b has the original a:3 in its log: a's snapshot (head a:3') contradicts it */
    assert_snapshot_forks(o.r[1], o.r[0]);
    assert_forked(o.r[1], a, 3);
    ck_assert_uint_eq(vv_seq_of(o.r[1], o.actor[3]), 0); /* d's state did not come either */

    /* and a:4' against c's head a:4 */
    set_str(&o, 0, "p/1", "phone", "fork-4");
    assert_snapshot_forks(o.r[2], o.r[0]);
    assert_forked(o.r[2], a, 4);

    /* the refusal is final: changes of the others still flow */
    rep_import_stats_t st;
    sync_from(o.r[1], o.r[3], 0, &st);
    ck_assert_uint_eq(st.applied, 1);
    office_close(&o);
}
END_TEST

/* ---- Bad input ------------------------------------------------------------------------------- */

/* Import bytes that must be refused with want, leaving r as it was. */
static void
assert_refused(rep_replica_t *r, const uint8_t *p, size_t n, int want, const char *what)
{
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    rep_import_stats_t st;
    digest_of(r, before);
    int rc = rep_replica_import(r, p, n, &st);
    ck_assert_msg(rc == want, "%s: import = %d (%s), want %d (%s)", what, rc, rep_strerror(rc),
                  want, rep_strerror(want));
    digest_of(r, after);
    ck_assert_msg(memcmp(before, after, sizeof before) == 0, "%s: state changed", what);
}

/* Bytes for hand-made state keys and values (crdt.h describes both). */
typedef struct bytes {
    uint8_t p[256];
    size_t n;
} bytes_t;

static void
b_add(bytes_t *b, const void *p, size_t n)
{
    ck_assert_uint_le(b->n + n, sizeof b->p);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void
b_be(bytes_t *b, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        uint8_t x = (uint8_t)(v >> (8 * i));
        b_add(b, &x, 1);
    }
}

static bytes_t
skey(const char *coll, const char *rec, const char *field, uint8_t kind)
{
    bytes_t b = {.n = 0};
    b_add(&b, coll, strlen(coll) + 1);
    b_add(&b, rec, strlen(rec) + 1);
    b_add(&b, field, strlen(field) + 1);
    b_add(&b, &kind, 1);
    return b;
}

/* A register of one sibling; val is its canonical msgpack bytes. */
static bytes_t
reg1(uint64_t actor, uint64_t seq, uint64_t hlc, const char *user, const void *val, size_t valn)
{
    bytes_t b = {.n = 0};
    b_be(&b, 1, 2);
    b_be(&b, actor, 8);
    b_be(&b, seq, 8);
    b_be(&b, hlc, 8);
    b_be(&b, 0, 1);
    b_be(&b, strlen(user), 1);
    b_add(&b, user, strlen(user));
    b_be(&b, valn, 4);
    b_add(&b, val, valn);
    return b;
}

static bytes_t
ctr1(uint64_t actor, int64_t total)
{
    bytes_t b = {.n = 0};
    b_be(&b, 1, 2);
    b_be(&b, actor, 8);
    b_be(&b, (uint64_t)total, 8);
    return b;
}

#define CRAFT_MAX 8

typedef struct craft {
    const uint8_t *office;
    uint64_t vv_actor[2], vv_seq[2];
    size_t nvv;
    bytes_t keys[CRAFT_MAX], vals[CRAFT_MAX];
    size_t n;
    int odd; /* leave the last value out */
} craft_t;

/* The identity hand-made snapshots are signed with: a member the office's admin enrolled
 * (rep_replica_provision), with the office keys. */
static rep__provision_t g_crafter;
static uint8_t *g_crafter_bytes;

static void
crafter_enroll(rep_replica_t *admin)
{
    size_t n;
    CK_OK(rep_replica_provision(admin, "crafter", "member", &g_crafter_bytes, &n));
    CK_OK(rep__provision_decode(g_crafter_bytes, n, &g_crafter));
}

static void
crafter_forget(void)
{
    rep__provision_clear(&g_crafter);
    rep_free(g_crafter_bytes);
    g_crafter_bytes = NULL;
}

/* A snapshot frame as snapshot.h lays it out, signed by the crafter and sealed with the
 * office's snapshot key. Free with free(). */
static uint8_t *
craft_frame(const craft_t *c, size_t *len)
{
    static const char name[] = "clinic";
    rep__buf_t body, b;
    msgpack_packer pk;
    rep__buf_init(&body);
    rep__packer_init(&pk, &body);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, 0); /* the sender's clock */
    msgpack_pack_array(&pk, c->nvv);
    for (size_t i = 0; i < c->nvv; i++) {
        uint8_t head[32];
        memset(head, 0xab, sizeof head);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint64(&pk, c->vv_actor[i]);
        msgpack_pack_uint64(&pk, c->vv_seq[i]);
        msgpack_pack_bin(&pk, sizeof head);
        msgpack_pack_bin_body(&pk, head, sizeof head);
    }
    msgpack_pack_array(&pk, 2 * c->n - (c->odd ? 1 : 0));
    for (size_t i = 0; i < c->n; i++) {
        msgpack_pack_bin(&pk, c->keys[i].n);
        msgpack_pack_bin_body(&pk, c->keys[i].p, c->keys[i].n);
        if (c->odd && i == c->n - 1)
            break;
        msgpack_pack_bin(&pk, c->vals[i].n);
        msgpack_pack_bin_body(&pk, c->vals[i].p, c->vals[i].n);
    }
    const rep__provision_t *p = &g_crafter;
    uint8_t key[REP_KEY_BYTES];
    rep__kdf(key, REP_SUBKEY_SNAPSHOT, "replica_", p->keys[p->nkeys - 1].key);
    rep__buf_init(&b);
    rep__frame_begin(&b, "RPLS");
    size_t start = b.len;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
    msgpack_pack_bin_body(&pk, c->office, REP_OFFICE_ID_BYTES);
    msgpack_pack_str(&pk, sizeof name - 1);
    msgpack_pack_str_body(&pk, name, sizeof name - 1);
    msgpack_pack_uint64(&pk, rep__actor_derive(p->pk, 0));
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_uint32(&pk, p->keys[p->nkeys - 1].epoch);
    msgpack_pack_array(&pk, p->nentries);
    for (size_t i = 0; i < p->nentries; i++) {
        msgpack_pack_bin(&pk, p->entries[i].n);
        msgpack_pack_bin_body(&pk, p->entries[i].p, p->entries[i].n);
    }
    CK_OK(body.err);
    CK_OK(rep__seal_append(&b, start, c->office, body.p, body.len, key, p->sk));
    rep__buf_free(&body);
    uint8_t *out;
    CK_OK(rep__frame_end(&b, false, &out, len));
    return out;
}

#define X_ACTOR 0x0123456789abcdefull
#define Y_ACTOR 0x0fedcba987654321ull
#define X_HLC   ((TU_CLOCK_EPOCH_MS - 1000) << 16)

/* A valid hand-made snapshot: record c/a (existence, a register "f" = "hi", a counter "n" = 5)
 * and record c/b (existence, "f" = "yo"), all by actor X's change 1. */
static void
craft_valid(craft_t *c, const uint8_t *office)
{
    static const uint8_t nil[] = {0xc0}, hi[] = {0xa2, 'h', 'i'}, yo[] = {0xa2, 'y', 'o'};
    memset(c, 0, sizeof *c);
    c->office = office;
    c->vv_actor[0] = X_ACTOR;
    c->vv_seq[0] = 1;
    c->nvv = 1;
    c->keys[0] = skey("c", "a", "", REP_KIND_REGISTER);
    c->vals[0] = reg1(X_ACTOR, 1, X_HLC, "u", nil, sizeof nil);
    c->keys[1] = skey("c", "a", "f", REP_KIND_REGISTER);
    c->vals[1] = reg1(X_ACTOR, 1, X_HLC, "u", hi, sizeof hi);
    c->keys[2] = skey("c", "a", "n", REP_KIND_COUNTER);
    c->vals[2] = ctr1(X_ACTOR, 5);
    c->keys[3] = skey("c", "b", "", REP_KIND_REGISTER);
    c->vals[3] = reg1(X_ACTOR, 1, X_HLC, "u", nil, sizeof nil);
    c->keys[4] = skey("c", "b", "f", REP_KIND_REGISTER);
    c->vals[4] = reg1(X_ACTOR, 1, X_HLC, "u", yo, sizeof yo);
    c->n = 5;
}

START_TEST(test_bad_snapshots_are_refused)
{
    office_t o, other;
    office_open(&o, 2);
    office_open(&other, 1);
    tu_rng_t rng;
    tu_rng_seed(&rng, 99);
    for (int i = 0; i < 12; i++)
        random_txn(&o, i % 2, &rng);
    set_str(&o, 1, "p/1", "name", "Ann");
    set_str(&other, 0, "p/1", "name", "Bob");
    rep_replica_t *r = o.r[0];

    uint8_t *snap = NULL;
    size_t n = 0;
    CK_OK(rep_replica_snapshot(o.r[1], &snap, &n));
    ck_assert_uint_gt(n, 38);
    uint8_t *bad = malloc(n);
    ck_assert_ptr_nonnull(bad);

    /* a flipped bit anywhere */
    char what[64];
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, snap, n);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        snprintf(what, sizeof what, "bit %zu flipped", i * 8 + i % 8);
        assert_refused(r, bad, n, REP_ECORRUPT, what);
    }
    /* truncated anywhere */
    for (size_t k = 0; k < n; k += 1 + k / 16) {
        snprintf(what, sizeof what, "truncated to %zu of %zu", k, n);
        assert_refused(r, snap, k, REP_ECORRUPT, what);
    }
    /* trailing bytes (the checksum no longer at the end) */
    uint8_t *longer = malloc(n + 1);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, snap, n);
    longer[n] = 0;
    assert_refused(r, longer, n + 1, REP_ECORRUPT, "a byte appended");
    free(longer);
    free(bad);
    /* the same snapshot, intact, is fine */
    rep_import_stats_t st;
    CK_OK(rep_replica_import(o.r[0], snap, n, &st));
    ck_assert_uint_gt(st.entries, 0);
    rep_free(snap);

    /* another office's */
    CK_OK(rep_replica_snapshot(other.r[0], &snap, &n));
    assert_refused(r, snap, n, REP_EOFFICE, "another office's snapshot");
    uint8_t id[REP_OFFICE_ID_BYTES];
    CK_OK(rep_batch_office(snap, n, id, NULL));
    ck_assert_mem_eq(id, other.id, sizeof id);
    rep_free(snap);

    /* hand-made frames: first a valid one, to show they are made right (on another replica) */
    craft_t c;
    crafter_enroll(o.r[0]);
    craft_valid(&c, o.id);
    uint8_t *f = craft_frame(&c, &n);
    CK_OK(rep_batch_office(f, n, id, NULL));
    ck_assert_mem_eq(id, o.id, sizeof id);
    CK_OK(rep_replica_import(o.r[1], f, n, &st));
    free(f);
    ck_assert_uint_eq(st.entries, 5);
    rep_value_t *v = NULL;
    CK_OK(rep_replica_get(o.r[1], "c/a", "f", &v));
    ck_assert(tu_is_str(v, "hi"));
    rep_value_free(&v);
    ck_assert_int_eq(get_int(o.r[1], "c/a", "n"), 5);
    ck_assert_uint_eq(vv_seq_of(o.r[1], X_ACTOR), 1);

    static const uint8_t noncanon[] = {0xcc, 0x05}; /* 5 in a longer form than msgpack's */
    static const uint8_t hi[] = {0xa2, 'h', 'i'};
    for (int k = 0; k < 13; k++) {
        craft_valid(&c, o.id);
        const char *why = NULL;
        switch (k) {
        case 0:
            why = "keys out of order";
            c.keys[1] = skey("c", "b", "f", REP_KIND_REGISTER);
            c.keys[4] = skey("c", "a", "f", REP_KIND_REGISTER);
            break;
        case 1:
            why = "a duplicate key";
            c.keys[2] = c.keys[1];
            c.vals[2] = c.vals[1];
            break;
        case 2:
            why = "a dot the vv does not cover";
            c.vals[1] = reg1(X_ACTOR, 2, X_HLC, "u", hi, sizeof hi);
            break;
        case 3:
            why = "a sibling of actor 0";
            c.vals[1] = reg1(0, 1, X_HLC, "u", hi, sizeof hi);
            break;
        case 4:
            why = "a non-canonical value";
            c.vals[1] = reg1(X_ACTOR, 1, X_HLC, "u", noncanon, sizeof noncanon);
            break;
        case 5:
            why = "a field name that is not UTF-8";
            c.keys[4] = skey("c", "b", "\xff", REP_KIND_REGISTER);
            break;
        case 6:
            why = "an unknown kind";
            c.keys[2] = skey("c", "a", "n", 9);
            break;
        case 7:
            why = "an empty register";
            c.vals[4].n = 0;
            b_be(&c.vals[4], 0, 2);
            break;
        case 8:
            why = "a counter actor not in the vv";
            c.vals[2] = ctr1(Y_ACTOR, 5);
            break;
        case 9:
            why = "an odd number of entry items";
            c.odd = 1;
            break;
        case 10:
            why = "a collection with '/'";
            c.keys[3] = skey("c/d", "b", "", REP_KIND_REGISTER);
            c.keys[4] = skey("c/d", "b", "f", REP_KIND_REGISTER);
            break;
        case 11:
            why = "a vv entry of seq 0";
            c.vv_actor[1] = Y_ACTOR;
            c.vv_seq[1] = 0;
            c.nvv = 2;
            break;
        case 12:
            why = "a vv out of actor order";
            c.vv_actor[1] = X_ACTOR - 1;
            c.vv_seq[1] = 1;
            c.nvv = 2;
            break;
        }
        f = craft_frame(&c, &n);
        assert_refused(r, f, n, REP_ECORRUPT, why);
        /* what is wrong is sealed: only the office's replicas can see it */
        int rc = rep_batch_office(f, n, id, NULL);
        ck_assert_msg(rc == 0, "%s: rep_batch_office = %d", why, rc);
        free(f);
    }
    crafter_forget();
    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(r, "p/1", &h));
    ck_assert_int_eq(h->partial, 1); /* the intact snapshot above */
    rep_history_free(&h);
    ck_assert_uint_eq(vv_seq_of(r, X_ACTOR), 0);
    office_close(&other);
    office_close(&o);
}
END_TEST

/* ---- Choosing changes or state --------------------------------------------------------------- */

START_TEST(test_catchup_chooses)
{
    office_t o;
    /* 0: writer, 1: a little behind, 2: empty, 3: empty */
    office_open(&o, 4);
    for (int i = 0; i < 300; i++) { /* many overwrites of a small state */
        rep_txn_t *t = NULL;
        tu_clock_advance(&o.clk[0], 5);
        CK_OK(rep_txn_begin(o.r[0], "staff", &t));
        CK_OK(rep_txn_set_int(t, i % 2 ? "p/1" : "p/2", "name", i));
        CK_OK(rep_txn_set_str(t, "p/3", "phone", i % 3 ? "555-0100" : "555-0101"));
        commit(&t);
    }
    sync_from(o.r[1], o.r[0], 0, NULL);
    set_str(&o, 0, "p/1", "phone", "555-0199");

    /* a little behind: changes */
    uint8_t *vv = NULL, *out = NULL, *changes = NULL;
    size_t vvn = 0, n = 0, changesn = 0;
    int more = -1;
    rep_import_stats_t st;
    CK_OK(rep_replica_vv(o.r[1], &vv, &vvn));
    CK_OK(rep_replica_catchup(o.r[0], vv, vvn, 0, &out, &n, &more));
    ck_assert_int_eq(more, 0);
    CK_OK(rep_replica_import(o.r[1], out, n, &st));
    ck_assert_uint_eq(st.changes, 1);
    ck_assert_uint_eq(st.applied, 1);
    ck_assert_uint_eq(st.entries, 0);
    rep_free(out);
    rep_free(vv);
    assert_same_state(o.r[0], o.r[1], "a little behind");

    /* empty, and the log is mostly overwrites: state, smaller than the changes */
    CK_OK(rep_replica_vv(o.r[2], &vv, &vvn));
    CK_OK(rep_replica_catchup(o.r[0], vv, vvn, 0, &out, &n, &more));
    CK_OK(rep_replica_export(o.r[0], vv, vvn, 0, &changes, &changesn, NULL));
    ck_assert_uint_lt(n, changesn);
    ck_assert_int_eq(more, 0);
    CK_OK(rep_replica_import(o.r[2], out, n, &st));
    ck_assert_uint_eq(st.changes, 0);
    ck_assert_uint_gt(st.entries, 0);
    rep_free(out);
    assert_same_state(o.r[0], o.r[2], "empty");

    /* a snapshot over the size bound, when the log has the changes: changes, bounded */
    CK_OK(rep_replica_catchup(o.r[0], vv, vvn, 120, &out, &n, &more));
    ck_assert_int_eq(more, 1);
    CK_OK(rep_replica_import(o.r[3], out, n, &st));
    ck_assert_uint_gt(st.changes, 0);
    ck_assert_uint_lt(st.changes, 301);
    ck_assert_uint_eq(st.entries, 0);
    rep_free(out);
    rep_free(changes);
    rep_free(vv);
    office_close(&o);
}
END_TEST

static Suite *
snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc;

    tc = tcase_create("equivalence");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_snapshot_equals_changes_random);
    tcase_add_test(tc, test_snapshot_equals_changes_concurrent_edits);
    suite_add_tcase(s, tc);

    tc = tcase_create("receiver");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_snapshot_into_empty_replica);
    tcase_add_test(tc, test_empty_snapshot);
    tcase_add_test(tc, test_snapshot_carries_the_senders_clock);
    tcase_add_test(tc, test_snapshot_releases_pending);
    tcase_add_test(tc, test_snapshot_covering_a_pending_change);
    tcase_add_test(tc, test_catchup_chooses);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_snapshot_fork_is_refused);
    tcase_add_test(tc, test_bad_snapshots_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    SRunner *sr = srunner_create(snapshot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
