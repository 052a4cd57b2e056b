/*
 * check_kinds.c — the field kinds besides the register, through the public API: counters, sets,
 * logs, a record delete over them, kind clashes, their history, and two things they made
 * visible: changes waiting for their dependencies (rep_replica_missing) and clock skew.
 *
 * The rules under test (DESIGN.md "Merge rules, precisely"; replica.h "Field kinds"):
 *   counter  per-actor totals, the value is their sum; each change adds its delta once; wraps
 *   set      add-wins observed-remove: a remove drops the adds it has seen, a concurrent add stays
 *   log      append-only, one order everywhere: (hlc, actor, seq, position)
 *   delete   hides counters, sets and logs; an update concurrent with it keeps the record, the
 *            counter and log reappear whole, the set keeps only the adds the delete had not seen
 *   kinds    a field is keyed by (name, kind): another kind on a stored name is REP_EKIND; two
 *            kinds started concurrently become two fields, both kept and reported as a clash
 *
 * Replicas of one office live in one process and trade batches: rep_replica_vv →
 * rep_replica_export → rep_replica_import. Fake clocks (tu_clock) make every HLC predictable.
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

#include "checkutil.h"
#include "replica.h"

#define DAY_MS    (24ull * 3600 * 1000)
#define DRIFT_MS  (5ull * 60 * 1000) /* the default max_drift */
#define HLC_MS(h) ((h) >> 16)

/* ---- A small office: replicas of one office id, each with its own fake clock ----------------- */

#define MAXR 8

typedef struct office {
    char *dir; /* the office's own directory under g_root */
    int n;
    uint8_t id[REP_OFFICE_ID_BYTES];
    rep_replica_t *r[MAXR];
    uint64_t actor[MAXR];
    tu_clock_t clk[MAXR];
    char sub[MAXR][16];
} office_t;

/* Add one replica of the office, its clock at @p now_ms; returns its index. */
static int
office_add(office_t *o, uint64_t now_ms)
{
    ck_assert_int_lt(o->n, MAXR);
    int i = o->n++;
    rep_open_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC;
    opts.device_name = "ws";
    tu_clock_set(&o->clk[i], now_ms);
    tu_clock_use(&o->clk[i], &opts);
    snprintf(o->sub[i], sizeof o->sub[i], "r%d", i);
    CK_OK(tu_replica_create(&o->r[i], o->dir, o->sub[i], &opts, i == 0 ? NULL : o->r[0]));
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(o->r[i], &info));
    if (i == 0)
        memcpy(o->id, info->office_id, REP_OFFICE_ID_BYTES);
    o->actor[i] = info->actor;
    rep_info_free(&info);
    return i;
}

/* An office without replicas yet, in a fresh directory (g_root is shared by a tcase). */
static void
office_init(office_t *o)
{
    memset(o, 0, sizeof *o);
    o->dir = tu_tmpdir_in(g_root);
    ck_assert_msg(o->dir != NULL, "mkdtemp");
}

static void
office_open(office_t *o, int n)
{
    office_init(o);
    for (int i = 0; i < n; i++)
        office_add(o, TU_CLOCK_EPOCH_MS);
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

/* Send @p dst what it lacks from @p src; stats may be NULL. */
static void
sync_from(rep_replica_t *dst, rep_replica_t *src, rep_import_stats_t *stats)
{
    uint8_t *vv = NULL, *batch = NULL;
    size_t vvn = 0, n = 0;
    CK_OK(rep_replica_vv(dst, &vv, &vvn));
    CK_OK(rep_replica_export(src, vv, vvn, 0, &batch, &n, NULL));
    CK_OK(rep_replica_import(dst, batch, n, stats));
    rep_free(vv);
    rep_free(batch);
}

/* Everyone sends everyone everything (twice round, so relayed changes arrive too). */
static void
sync_all(office_t *o)
{
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < o->n; i++)
            for (int j = 0; j < o->n; j++)
                if (i != j)
                    sync_from(o->r[i], o->r[j], NULL);
}

static void
assert_digests_equal(office_t *o)
{
    uint8_t d0[REP_DIGEST_BYTES], d[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(o->r[0], d0));
    for (int i = 1; i < o->n; i++) {
        CK_OK(rep_replica_digest(o->r[i], d));
        ck_assert_msg(memcmp(d, d0, sizeof d) == 0, "replica %d's digest differs from replica 0's",
                      i);
    }
}

/* ---- Changes one at a time ------------------------------------------------------------------- */

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob_t;

#define MAXBLOBS 128

/*
 * Every change @p src holds, each in a batch of its own, in src's causal order: a scratch
 * replica asks for one change at a time (max_bytes 1 still sends one) and imports it.
 */
static size_t
changes_of(office_t *o, rep_replica_t *src, blob_t *out)
{
    int c = office_add(o, TU_CLOCK_EPOCH_MS);
    size_t n = 0;
    for (;;) {
        uint8_t *vv = NULL, *batch = NULL;
        size_t vvn = 0, len = 0;
        rep_import_stats_t st;
        CK_OK(rep_replica_vv(o->r[c], &vv, &vvn));
        CK_OK(rep_replica_export(src, vv, vvn, 1, &batch, &len, NULL));
        rep_free(vv);
        CK_OK(rep_replica_import(o->r[c], batch, len, &st));
        if (st.changes == 0) {
            rep_free(batch);
            break;
        }
        ck_assert_uint_eq(st.changes, 1);
        ck_assert_uint_eq(st.applied, 1);
        ck_assert_uint_lt(n, MAXBLOBS);
        out[n].p = batch;
        out[n].n = len;
        n++;
    }
    return n;
}

static void
blobs_free(blob_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rep_free(b[i].p);
        b[i].p = NULL;
    }
}

/* Import every blob 1-3 times into @p dst in a random order (early ones wait in pending);
 * at the end nothing may be pending. */
static void
deliver_shuffled(rep_replica_t *dst, const blob_t *b, size_t n, tu_rng_t *rng)
{
    size_t order[3 * MAXBLOBS], m = 0;
    for (size_t i = 0; i < n; i++)
        for (uint64_t d = tu_rng_range(rng, 1, 3); d > 0; d--)
            order[m++] = i;
    for (size_t j = m; j > 1; j--) {
        size_t s = tu_rng_below(rng, j), t = order[j - 1];
        order[j - 1] = order[s];
        order[s] = t;
    }
    rep_import_stats_t st = {0};
    for (size_t j = 0; j < m; j++)
        CK_OK(rep_replica_import(dst, b[order[j]].p, b[order[j]].n, &st));
    ck_assert_uint_eq(st.pending, 0);
}

/* ---- Writing --------------------------------------------------------------------------------- */

static uint64_t
commit(rep_txn_t **t)
{
    uint64_t seq = 0;
    CK_OK(rep_txn_commit(*t, &seq));
    rep_txn_free(t);
    return seq;
}

static uint64_t
incr(rep_replica_t *r, const char *key, const char *field, int64_t delta)
{
    rep_txn_t *t;
    CK_OK(rep_txn_begin(r, "ann", &t));
    CK_OK(rep_txn_incr(t, key, field, delta));
    return commit(&t);
}

static uint64_t
set_add(rep_replica_t *r, const char *key, const char *field, const char *member)
{
    rep_txn_t *t;
    rep_value_t v = tu_v_str(member);
    CK_OK(rep_txn_begin(r, "ann", &t));
    CK_OK(rep_txn_add(t, key, field, &v));
    return commit(&t);
}

static uint64_t
set_remove(rep_replica_t *r, const char *key, const char *field, const char *member)
{
    rep_txn_t *t;
    rep_value_t v = tu_v_str(member);
    CK_OK(rep_txn_begin(r, "ann", &t));
    CK_OK(rep_txn_remove(t, key, field, &v));
    return commit(&t);
}

static uint64_t
append(rep_replica_t *r, const char *user, const char *key, const char *field, const char *entry)
{
    rep_txn_t *t;
    rep_value_t v = tu_v_str(entry);
    CK_OK(rep_txn_begin(r, user, &t));
    CK_OK(rep_txn_append(t, key, field, &v));
    return commit(&t);
}

static uint64_t
del_record(rep_replica_t *r, const char *key)
{
    rep_txn_t *t;
    CK_OK(rep_txn_begin(r, "bob", &t));
    CK_OK(rep_txn_del_record(t, key));
    return commit(&t);
}

/* Buffer one write of @p kind to @p field: register "reg", counter +5, set {"m"}, log "e". */
static int
write_kind(rep_txn_t *t, rep_kind_t kind, const char *key, const char *field)
{
    rep_value_t v;
    switch (kind) {
    case REP_KIND_REGISTER:
        return rep_txn_set_str(t, key, field, "reg");
    case REP_KIND_COUNTER:
        return rep_txn_incr(t, key, field, 5);
    case REP_KIND_SET:
        v = tu_v_str("m");
        return rep_txn_add(t, key, field, &v);
    case REP_KIND_LOG:
        v = tu_v_str("e");
        return rep_txn_append(t, key, field, &v);
    }
    return -1;
}

/* ---- Reading --------------------------------------------------------------------------------- */

/* The field (name, kind) of a record, or NULL. */
static const rep_field_t *
field_of(const rep_record_t *rec, const char *name, rep_kind_t kind)
{
    for (size_t i = 0; i < rec->nfields; i++)
        if (strcmp(rec->fields[i].name, name) == 0 && rec->fields[i].kind == kind)
            return &rec->fields[i];
    return NULL;
}

/* rep_replica_get of a counter: must be REP_INT. */
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

/* The members (strings) of a set field, joined with ',' in item order, into buf. */
static const char *
members(rep_replica_t *r, const char *key, const char *field, char *buf, size_t n)
{
    rep_record_t *rec = NULL;
    buf[0] = '\0';
    int rc = rep_replica_get_record(r, key, &rec);
    if (rc == REP_ENOTFOUND)
        return strcpy(buf, "<no record>");
    CK_OK(rc);
    const rep_field_t *f = field_of(rec, field, REP_KIND_SET);
    size_t len = 0;
    for (size_t i = 0; f && i < f->nitems; i++) {
        const rep_value_t *v = &f->items[i].value;
        ck_assert_int_eq(v->type, REP_STRING);
        len += (size_t)snprintf(buf + len, n - len, "%s%.*s", i ? "," : "", (int)v->u.s.len,
                                v->u.s.ptr);
        ck_assert_uint_lt(len, n);
        ck_assert_int_eq(f->items[i].hlc, 0);
        ck_assert_str_eq(f->items[i].user, "");
    }
    if (f)
        ck_assert_uint_eq(f->siblings, 1);
    rep_record_free(&rec);
    return buf;
}

/* A log's entries, copied out for comparisons. */
typedef struct entry {
    uint64_t actor, seq, hlc;
    char user[REP_MAX_USER + 1];
    char val[32];
} entry_t;

static size_t
log_entries(rep_replica_t *r, const char *key, const char *field, entry_t *out, size_t max)
{
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(r, key, &rec));
    const rep_field_t *f = field_of(rec, field, REP_KIND_LOG);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_le(f->nitems, max);
    ck_assert_int_eq(f->value.type, REP_NULL);
    for (size_t i = 0; i < f->nitems; i++) {
        const rep_entry_t *e = &f->items[i];
        ck_assert_int_eq(e->value.type, REP_STRING);
        ck_assert_uint_lt(e->value.u.s.len, sizeof out[i].val);
        memset(&out[i], 0, sizeof out[i]);
        out[i].actor = e->actor;
        out[i].seq = e->seq;
        out[i].hlc = e->hlc;
        snprintf(out[i].user, sizeof out[i].user, "%s", e->user);
        memcpy(out[i].val, e->value.u.s.ptr, e->value.u.s.len);
    }
    size_t n = f->nitems;
    rep_record_free(&rec);
    return n;
}

/* ==== Counters ================================================================================ */

START_TEST(counter_get_returns_the_int_total_of_its_increments)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    CK_RC(rep_replica_get(a, "visits/ann", "count", &(rep_value_t *){NULL}), REP_ENOTFOUND);
    incr(a, "visits/ann", "count", 3);
    ck_assert_int_eq(get_int(a, "visits/ann", "count"), 3);
    incr(a, "visits/ann", "count", 4);
    ck_assert_int_eq(get_int(a, "visits/ann", "count"), 7);

    /* the record shows it as a counter whose value is the total */
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "visits/ann", &rec));
    ck_assert_uint_eq(rec->nfields, 1);
    ck_assert_str_eq(rec->fields[0].name, "count");
    ck_assert_int_eq(rec->fields[0].kind, REP_KIND_COUNTER);
    ck_assert_int_eq(rec->fields[0].value.type, REP_INT);
    ck_assert_int_eq(rec->fields[0].value.u.i, 7);
    ck_assert_uint_eq(rec->fields[0].siblings, 1);
    ck_assert_uint_eq(rec->fields[0].nitems, 0);
    ck_assert_int_eq(rec->fields[0].kind_clash, 0);
    ck_assert_int_eq(rec->delete_conflict, 0);
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

START_TEST(counter_negative_deltas_decrease_it_below_zero)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    incr(a, "stock/gauze", "n", 10);
    incr(a, "stock/gauze", "n", -4);
    ck_assert_int_eq(get_int(a, "stock/gauze", "n"), 6);
    incr(a, "stock/gauze", "n", -9);
    ck_assert_int_eq(get_int(a, "stock/gauze", "n"), -3);
    incr(a, "stock/gauze", "n", 0);
    ck_assert_int_eq(get_int(a, "stock/gauze", "n"), -3);
    office_close(&o);
}
END_TEST

START_TEST(counter_several_increments_in_one_txn_all_count)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, "ann", &t));
    CK_OK(rep_txn_incr(t, "stock/gauze", "n", 5));
    CK_OK(rep_txn_incr(t, "stock/gauze", "n", 7));
    CK_OK(rep_txn_incr(t, "stock/gauze", "n", -2));
    CK_OK(rep_txn_incr(t, "stock/tape", "n", 1));
    uint64_t seq = commit(&t);
    ck_assert_uint_eq(seq, 1); /* one change */
    ck_assert_int_eq(get_int(a, "stock/gauze", "n"), 10);
    ck_assert_int_eq(get_int(a, "stock/tape", "n"), 1);
    office_close(&o);
}
END_TEST

START_TEST(counter_concurrent_increments_sum_in_any_order_with_duplicates)
{
    uint64_t seed = tu_seed(0x5eed);
    tu_rng_t rng;
    tu_rng_seed(&rng, seed);
    office_t o;
    office_open(&o, 3);
    int64_t want = 0;
    /* three rounds of concurrent increments, with partial gossip between them so later
     * changes depend on earlier ones of other replicas */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 2; k++) {
                int64_t d = (int64_t)tu_rng_below(&rng, 200) - 50;
                incr(o.r[i], "stock/gauze", "n", d);
                want += d;
            }
        sync_from(o.r[(round + 1) % 3], o.r[round % 3], NULL);
    }
    /* every change, one per batch, to fresh replicas in random orders with duplicates */
    sync_from(o.r[0], o.r[1], NULL);
    sync_from(o.r[0], o.r[2], NULL);
    ck_assert_int_eq(get_int(o.r[0], "stock/gauze", "n"), want);
    blob_t b[MAXBLOBS];
    size_t n = changes_of(&o, o.r[0], b);
    ck_assert_uint_eq(n, 18);
    for (int k = 0; k < 3; k++) {
        int d = office_add(&o, TU_CLOCK_EPOCH_MS);
        deliver_shuffled(o.r[d], b, n, &rng);
        ck_assert_msg(get_int(o.r[d], "stock/gauze", "n") == want, "seed %" PRIu64, seed);
    }
    blobs_free(b, n);
    sync_all(&o);
    for (int i = 0; i < o.n; i++)
        ck_assert_int_eq(get_int(o.r[i], "stock/gauze", "n"), want);
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(counter_int64_overflow_wraps)
{
    office_t o;
    office_open(&o, 2);
    incr(o.r[0], "c/1", "n", INT64_MAX);
    incr(o.r[0], "c/1", "n", 1);
    ck_assert_int_eq(get_int(o.r[0], "c/1", "n"), INT64_MIN);
    incr(o.r[0], "c/1", "n", -1);
    ck_assert_int_eq(get_int(o.r[0], "c/1", "n"), INT64_MAX);
    /* across actors too: the sum of per-actor totals wraps the same way everywhere */
    incr(o.r[1], "c/1", "n", INT64_MAX);
    sync_all(&o);
    ck_assert_int_eq(get_int(o.r[0], "c/1", "n"), -2); /* 2 * INT64_MAX mod 2^64 */
    ck_assert_int_eq(get_int(o.r[1], "c/1", "n"), -2);
    incr(o.r[1], "c/1", "n", INT64_MIN);
    incr(o.r[1], "c/1", "n", INT64_MIN);
    sync_all(&o);
    ck_assert_int_eq(get_int(o.r[0], "c/1", "n"), -2);
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

/* ==== Sets ==================================================================================== */

START_TEST(set_add_and_remove_members)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    char buf[256];
    set_add(a, "pat/1", "allergies", "latex");
    set_add(a, "pat/1", "allergies", "pecan");
    set_add(a, "pat/1", "allergies", "dairy");
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "dairy,latex,pecan");
    set_remove(a, "pat/1", "allergies", "latex");
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "dairy,pecan");
    set_remove(a, "pat/1", "allergies", "pollen"); /* not a member: nothing changes */
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "dairy,pecan");

    /* a set is not read with rep_replica_get */
    rep_value_t *v = NULL;
    CK_RC(rep_replica_get(a, "pat/1", "allergies", &v), REP_EKIND);
    ck_assert_ptr_null(v);
    office_close(&o);
}
END_TEST

START_TEST(set_members_are_listed_in_value_order)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    static const char *const add[] = {"kiwi", "date", "pear", "lime", "plum", "fig1", "apex"};
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, NULL, &t));
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
        rep_value_t v = tu_v_str(add[i]);
        CK_OK(rep_txn_add(t, "shop/1", "fruit", &v));
    }
    for (int64_t i = 9; i >= 1; i -= 2) { /* small ints, in another field */
        rep_value_t v = tu_v_int(i);
        CK_OK(rep_txn_add(t, "shop/1", "sizes", &v));
    }
    commit(&t);
    char buf[256];
    ck_assert_str_eq(members(a, "shop/1", "fruit", buf, sizeof buf),
                     "apex,date,fig1,kiwi,lime,pear,plum");
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "shop/1", &rec));
    const rep_field_t *f = field_of(rec, "sizes", REP_KIND_SET);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(f->nitems, 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(f->items[i].value.type, REP_INT);
        ck_assert_int_eq(f->items[i].value.u.i, (int64_t)(1 + 2 * i));
    }
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

START_TEST(set_members_are_in_the_order_of_their_canonical_encoding)
{
    /* replica.h: rep_field_t.items of a set are "members in value order". Strings of other
     * lengths and negative ints must sort by value too, not by their msgpack headers
     * (fixstr 0xa0|len puts every shorter string first; negative ints after 0xcc..). */
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    static const char *const add[] = {"penicillin", "latex", "iodine", "egg"};
    static const int64_t ints[] = {200, -1, 3, -100, 70000};
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, NULL, &t));
    for (size_t i = 0; i < 4; i++) {
        rep_value_t v = tu_v_str(add[i]);
        CK_OK(rep_txn_add(t, "pat/1", "allergies", &v));
    }
    for (size_t i = 0; i < 5; i++) {
        rep_value_t v = tu_v_int(ints[i]);
        CK_OK(rep_txn_add(t, "pat/1", "codes", &v));
    }
    commit(&t);
    char buf[128];
    /* fixstr headers carry the length, so shorter strings come first */
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf),
                     "egg,latex,iodine,penicillin");
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "pat/1", &rec));
    const rep_field_t *f = field_of(rec, "codes", REP_KIND_SET);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(f->nitems, 5);
    /* 03 < cc c8 < ce 00 01 11 70 < d0 9c < ff */
    static const int64_t sorted[] = {3, 200, 70000, -100, -1};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(f->items[i].value.u.i, sorted[i]);
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

START_TEST(set_adding_a_member_twice_keeps_one)
{
    office_t o;
    office_open(&o, 2);
    rep_replica_t *a = o.r[0];
    rep_txn_t *t;
    rep_value_t v = tu_v_str("latex");
    CK_OK(rep_txn_begin(a, NULL, &t));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &v));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &v));
    commit(&t);
    set_add(a, "pat/1", "allergies", "latex");
    char buf[64];
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "latex");
    /* and one added on two replicas concurrently is one member too */
    set_add(o.r[1], "pat/1", "allergies", "latex");
    sync_all(&o);
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "latex");
    ck_assert_str_eq(members(o.r[1], "pat/1", "allergies", buf, sizeof buf), "latex");
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(set_remove_then_add_in_one_txn_keeps_the_member)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    set_add(a, "pat/1", "allergies", "latex");
    rep_txn_t *t;
    rep_value_t latex = tu_v_str("latex"), sulfa = tu_v_str("sulfa");
    CK_OK(rep_txn_begin(a, NULL, &t));
    CK_OK(rep_txn_remove(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_remove(t, "pat/1", "allergies", &sulfa)); /* a new one, removed then added */
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &sulfa));
    uint64_t seq = commit(&t);
    char buf[64];
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "latex,sulfa");
    /* the member's latest add is this change's */
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "pat/1", &rec));
    const rep_field_t *f = field_of(rec, "allergies", REP_KIND_SET);
    ck_assert_uint_eq(f->items[1].seq, seq);
    ck_assert_uint_eq(f->items[1].actor, o.actor[0]);
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

START_TEST(set_add_then_remove_in_one_txn_leaves_it_out)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    set_add(a, "pat/1", "allergies", "latex");
    rep_txn_t *t;
    rep_value_t latex = tu_v_str("latex"), iodine = tu_v_str("iodine"), pollen = tu_v_str("pollen");
    CK_OK(rep_txn_begin(a, NULL, &t));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_remove(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &iodine));
    CK_OK(rep_txn_remove(t, "pat/1", "allergies", &iodine));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &pollen));
    commit(&t);
    char buf[64];
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "pollen");
    office_close(&o);
}
END_TEST

START_TEST(set_concurrent_add_wins_over_a_remove)
{
    office_t o;
    office_open(&o, 3);
    rep_replica_t *a = o.r[0], *b = o.r[1];
    set_add(a, "pat/1", "allergies", "latex");
    sync_all(&o);
    set_remove(a, "pat/1", "allergies", "latex"); /* saw the first add */
    set_add(b, "pat/1", "allergies", "latex");    /* concurrently: a new add */
    char buf[64];
    ck_assert_str_eq(members(a, "pat/1", "allergies", buf, sizeof buf), "");
    sync_all(&o);
    for (int i = 0; i < o.n; i++)
        ck_assert_str_eq(members(o.r[i], "pat/1", "allergies", buf, sizeof buf), "latex");
    assert_digests_equal(&o);
    /* the surviving dot is B's */
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "pat/1", &rec));
    const rep_field_t *f = field_of(rec, "allergies", REP_KIND_SET);
    ck_assert_uint_eq(f->items[0].actor, o.actor[1]);
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

START_TEST(set_remove_that_saw_every_add_removes_it_everywhere)
{
    office_t o;
    office_open(&o, 3);
    rep_replica_t *a = o.r[0], *b = o.r[1], *c = o.r[2];
    set_add(a, "pat/1", "allergies", "latex");
    set_add(b, "pat/1", "allergies", "latex");
    set_add(c, "pat/1", "allergies", "iodine");
    sync_all(&o);
    set_remove(c, "pat/1", "allergies", "latex"); /* has seen both adds */
    sync_all(&o);
    char buf[64];
    for (int i = 0; i < o.n; i++)
        ck_assert_str_eq(members(o.r[i], "pat/1", "allergies", buf, sizeof buf), "iodine");
    set_remove(a, "pat/1", "allergies", "iodine");
    sync_all(&o);
    for (int i = 0; i < o.n; i++) /* an empty set: no members (the record stays) */
        ck_assert_str_eq(members(o.r[i], "pat/1", "allergies", buf, sizeof buf), "");
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(set_members_may_be_values_of_every_type)
{
    office_t o;
    office_open(&o, 2);
    rep_value_t vals[] = {{.type = REP_NULL},  {.type = REP_BOOL},   {.type = REP_BOOL},
                          {.type = REP_INT},   {.type = REP_DOUBLE}, {.type = REP_STRING},
                          {.type = REP_BYTES}, {.type = REP_INT}};
    vals[1].u.b = 0;
    vals[2].u.b = 1;
    vals[3].u.i = 1;
    vals[4].u.d = 1.0;
    vals[5].u.s.ptr = "1";
    vals[5].u.s.len = 1;
    vals[6].u.s.ptr = "1";
    vals[6].u.s.len = 1;
    vals[7].u.i = -70000;
    const size_t nv = sizeof vals / sizeof vals[0];
    rep_txn_t *t;
    CK_OK(rep_txn_begin(o.r[0], NULL, &t));
    for (size_t i = 0; i < nv; i++)
        CK_OK(rep_txn_add(t, "m/1", "s", &vals[i]));
    commit(&t);
    sync_all(&o);

    rep_record_t *rec[2] = {NULL, NULL};
    for (int r = 0; r < 2; r++)
        CK_OK(rep_replica_get_record(o.r[r], "m/1", &rec[r]));
    const rep_field_t *f0 = field_of(rec[0], "s", REP_KIND_SET);
    const rep_field_t *f1 = field_of(rec[1], "s", REP_KIND_SET);
    ck_assert_ptr_nonnull(f0);
    ck_assert_ptr_nonnull(f1);
    /* 1, 1.0, "1" and bytes "1" are four members; each value comes back with its type */
    ck_assert_uint_eq(f0->nitems, nv);
    for (size_t i = 0; i < nv; i++) {
        size_t hits = 0;
        for (size_t j = 0; j < nv; j++)
            hits += tu_value_eq(&f0->items[j].value, &vals[i]);
        char b[64];
        ck_assert_msg(hits == 1, "member %s listed %zu times", tu_value_fmt(&vals[i], b, sizeof b),
                      hits);
    }
    /* in the same order on both replicas */
    ck_assert_uint_eq(f1->nitems, nv);
    for (size_t j = 0; j < nv; j++)
        ck_assert(tu_value_eq(&f0->items[j].value, &f1->items[j].value));
    rep_record_free(&rec[0]);
    rep_record_free(&rec[1]);
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

/* ==== Logs ==================================================================================== */

START_TEST(log_appends_keep_call_order_within_a_txn)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    static const char *const msgs[] = {"zulu", "alpha", "mike", "alpha", "bravo"};
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, "ann", &t));
    for (size_t i = 0; i < 5; i++) {
        rep_value_t v = tu_v_str(msgs[i]);
        CK_OK(rep_txn_append(t, "msg/1", "thread", &v));
        CK_OK(rep_txn_set_str(t, "msg/1", "subject", msgs[i])); /* interleaved writes */
    }
    commit(&t);
    entry_t e[8];
    size_t n = log_entries(a, "msg/1", "thread", e, 8);
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(e[i].val, msgs[i]); /* duplicates are separate entries */
        ck_assert_uint_eq(e[i].seq, 1);
    }
    /* a log is not read with rep_replica_get */
    rep_value_t *v = NULL;
    CK_RC(rep_replica_get(a, "msg/1", "thread", &v), REP_EKIND);
    office_close(&o);
}
END_TEST

static int
entry_cmp(const entry_t *a, const entry_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    if (a->actor != b->actor)
        return a->actor < b->actor ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

START_TEST(log_concurrent_appends_have_one_order_everywhere)
{
    uint64_t seed = tu_seed(0x106);
    tu_rng_t rng;
    tu_rng_seed(&rng, seed);
    office_t o;
    office_open(&o, 3);
    size_t total = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 3; i++) {
            /* clocks apart by a little, so hlc order and actor order both matter */
            tu_clock_advance(&o.clk[i], tu_rng_below(&rng, 3));
            for (int k = 0; k < 2; k++) {
                char msg[48];
                snprintf(msg, sizeof msg, "r%d-%d-%d", i, round, k);
                append(o.r[i], "ann", "msg/1", "thread", msg);
                total++;
            }
        }
        if (round % 2)
            sync_from(o.r[round % 3], o.r[(round + 2) % 3], NULL);
    }
    ck_assert_uint_eq(total, 24);
    sync_from(o.r[0], o.r[1], NULL);
    sync_from(o.r[0], o.r[2], NULL);
    blob_t b[MAXBLOBS];
    size_t nb = changes_of(&o, o.r[0], b);
    for (int k = 0; k < 2; k++)
        deliver_shuffled(o.r[office_add(&o, TU_CLOCK_EPOCH_MS)], b, nb, &rng);
    sync_all(&o);
    /* duplicates again, after everything is here */
    for (int i = 0; i < o.n; i++)
        for (size_t j = 0; j < nb; j++) {
            rep_import_stats_t st;
            CK_OK(rep_replica_import(o.r[i], b[j].p, b[j].n, &st));
            ck_assert_uint_eq(st.duplicates, 1);
            ck_assert_uint_eq(st.applied, 0);
        }
    blobs_free(b, nb);

    entry_t e0[32], e[32];
    size_t n0 = log_entries(o.r[0], "msg/1", "thread", e0, 32);
    ck_assert_uint_eq(n0, total);
    for (size_t i = 0; i < n0; i++) {
        if (i > 0) /* sorted by (hlc, actor, seq) */
            ck_assert_msg(entry_cmp(&e0[i - 1], &e0[i]) <= 0, "entries %zu and %zu out of order",
                          i - 1, i);
        for (size_t j = 0; j < i; j++) /* each exactly once */
            ck_assert_msg(strcmp(e0[i].val, e0[j].val) != 0, "%s listed twice", e0[i].val);
    }
    for (int r = 1; r < o.n; r++) {
        size_t n = log_entries(o.r[r], "msg/1", "thread", e, 32);
        ck_assert_uint_eq(n, n0);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(e[i].actor == e0[i].actor && e[i].seq == e0[i].seq &&
                              e[i].hlc == e0[i].hlc && strcmp(e[i].val, e0[i].val) == 0 &&
                              strcmp(e[i].user, e0[i].user) == 0,
                          "seed %" PRIu64 ": replica %d entry %zu is %s, replica 0 has %s", seed, r,
                          i, e[i].val, e0[i].val);
    }
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(log_entry_fields_name_its_change)
{
    office_t o;
    office_open(&o, 2);
    rep_replica_t *a = o.r[0], *b = o.r[1];
    tu_clock_set(&o.clk[0], TU_CLOCK_EPOCH_MS + 1000);
    uint64_t s1 = append(a, "dr.ann", "msg/1", "thread", "first");
    tu_clock_set(&o.clk[1], TU_CLOCK_EPOCH_MS + 2000);
    uint64_t s2 = append(b, NULL, "msg/1", "thread", "second");
    tu_clock_set(&o.clk[0], TU_CLOCK_EPOCH_MS + 3000);
    uint64_t s3 = append(a, "nurse.bo", "msg/1", "thread", "third");
    ck_assert_uint_eq(s1, 1);
    ck_assert_uint_eq(s2, 1);
    ck_assert_uint_eq(s3, 2);
    sync_all(&o);
    for (int r = 0; r < 2; r++) {
        entry_t e[4];
        ck_assert_uint_eq(log_entries(o.r[r], "msg/1", "thread", e, 4), 3);
        ck_assert_str_eq(e[0].val, "first");
        ck_assert_uint_eq(e[0].actor, o.actor[0]);
        ck_assert_uint_eq(e[0].seq, 1);
        ck_assert_uint_eq(HLC_MS(e[0].hlc), TU_CLOCK_EPOCH_MS + 1000);
        ck_assert_str_eq(e[0].user, "dr.ann");
        ck_assert_str_eq(e[1].val, "second");
        ck_assert_uint_eq(e[1].actor, o.actor[1]);
        ck_assert_uint_eq(e[1].seq, 1);
        ck_assert_uint_eq(HLC_MS(e[1].hlc), TU_CLOCK_EPOCH_MS + 2000);
        ck_assert_str_eq(e[1].user, "");
        ck_assert_str_eq(e[2].val, "third");
        ck_assert_uint_eq(e[2].actor, o.actor[0]);
        ck_assert_uint_eq(e[2].seq, 2);
        ck_assert_uint_eq(HLC_MS(e[2].hlc), TU_CLOCK_EPOCH_MS + 3000);
        ck_assert_str_eq(e[2].user, "nurse.bo");
    }
    /* the hlc is the change's: the one history shows */
    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(a, "msg/1", &h));
    ck_assert_uint_eq(h->n, 3);
    entry_t e[4];
    log_entries(a, "msg/1", "thread", e, 4);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(h->changes[i].hlc, e[i].hlc);
        ck_assert_uint_eq(h->changes[i].actor, e[i].actor);
        ck_assert_uint_eq(h->changes[i].seq, e[i].seq);
    }
    rep_history_free(&h);
    office_close(&o);
}
END_TEST

/* ==== Record delete =========================================================================== */

/* pat/1 with a register, a counter (5), a set {latex, sulfa} and a log ("first"). */
static void
write_full_record(rep_replica_t *r)
{
    rep_txn_t *t;
    rep_value_t latex = tu_v_str("latex"), sulfa = tu_v_str("sulfa"), first = tu_v_str("first");
    CK_OK(rep_txn_begin(r, "ann", &t));
    CK_OK(rep_txn_set_str(t, "pat/1", "name", "Ada"));
    CK_OK(rep_txn_incr(t, "pat/1", "visits", 5));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &sulfa));
    CK_OK(rep_txn_append(t, "pat/1", "notes", &first));
    commit(&t);
}

START_TEST(record_delete_hides_counters_sets_and_logs)
{
    office_t o;
    office_open(&o, 2);
    rep_replica_t *a = o.r[0];
    write_full_record(a);
    sync_all(&o);
    del_record(a, "pat/1");
    sync_all(&o);
    for (int i = 0; i < o.n; i++) {
        rep_record_t *rec = NULL;
        rep_value_t *v = NULL;
        CK_RC(rep_replica_get_record(o.r[i], "pat/1", &rec), REP_ENOTFOUND);
        ck_assert_ptr_null(rec);
        CK_RC(rep_replica_get(o.r[i], "pat/1", "visits", &v), REP_ENOTFOUND);
        CK_RC(rep_replica_get(o.r[i], "pat/1", "name", &v), REP_ENOTFOUND);
        rep_list_t *l = NULL;
        CK_OK(rep_replica_list(o.r[i], "pat", NULL, 0, &l));
        ck_assert_uint_eq(l->n, 0);
        rep_list_free(&l);
        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(o.r[i], &info));
        ck_assert_uint_eq(info->records, 0);
        ck_assert_uint_eq(info->conflicts, 0);
        rep_info_free(&info);
    }
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(record_update_concurrent_with_a_delete_keeps_counter_and_log_whole)
{
    office_t o;
    office_open(&o, 3);
    rep_replica_t *a = o.r[0], *b = o.r[1];
    write_full_record(a);
    sync_all(&o);
    del_record(a, "pat/1");
    incr(b, "pat/1", "visits", 2); /* concurrently */
    append(b, "bo", "pat/1", "notes", "second");
    sync_all(&o);
    for (int i = 0; i < o.n; i++) {
        rep_record_t *rec = NULL;
        CK_OK(rep_replica_get_record(o.r[i], "pat/1", &rec));
        ck_assert_int_eq(rec->delete_conflict, 1);
        const rep_field_t *f = field_of(rec, "visits", REP_KIND_COUNTER);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(f->value.u.i, 7); /* every increment, the deleted record's too */
        f = field_of(rec, "notes", REP_KIND_LOG);
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(f->nitems, 2);
        ck_assert(tu_is_str(&f->items[0].value, "first"));
        ck_assert(tu_is_str(&f->items[1].value, "second"));
        /* the register the delete had seen is gone */
        ck_assert_ptr_null(field_of(rec, "name", REP_KIND_REGISTER));
        rep_record_free(&rec);
        ck_assert_int_eq(get_int(o.r[i], "pat/1", "visits"), 7);

        /* and the conflict is reported on the existence field "" */
        rep_conflicts_t *c = NULL;
        CK_OK(rep_replica_conflicts(o.r[i], "pat/1", &c));
        ck_assert_uint_eq(c->n, 1);
        ck_assert_str_eq(c->items[0].field, "");
        ck_assert_int_eq(c->items[0].kind_clash, 0);
        rep_conflicts_free(&c);
    }
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(record_delete_removes_the_set_members_it_saw_and_keeps_a_concurrent_add)
{
    office_t o;
    office_open(&o, 3);
    rep_replica_t *a = o.r[0], *b = o.r[1];
    write_full_record(a); /* allergies {latex, sulfa} */
    sync_all(&o);
    del_record(a, "pat/1");
    set_add(b, "pat/1", "allergies", "pollen"); /* concurrently: new */
    set_add(b, "pat/1", "allergies", "latex"); /* concurrently: a member the delete saw, re-added */
    sync_all(&o);
    char buf[128];
    for (int i = 0; i < o.n; i++)
        ck_assert_str_eq(members(o.r[i], "pat/1", "allergies", buf, sizeof buf), "latex,pollen");
    assert_digests_equal(&o);
    office_close(&o);
}
END_TEST

START_TEST(record_recreated_after_a_delete_keeps_its_counter_and_log)
{
    /* replica.h: a record delete removes the register values and set members it had seen;
     * counters and logs are never reset, and reappear whole when the record is written again */
    office_t o;
    office_open(&o, 2);
    rep_replica_t *a = o.r[0];
    write_full_record(a);
    del_record(a, "pat/1");
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, "ann", &t));
    CK_OK(rep_txn_set_str(t, "pat/1", "name", "Bo, a new patient"));
    commit(&t);
    sync_all(&o);
    for (int i = 0; i < o.n; i++) {
        rep_record_t *rec = NULL;
        CK_OK(rep_replica_get_record(o.r[i], "pat/1", &rec));
        ck_assert_int_eq(rec->delete_conflict, 0);
        ck_assert_uint_eq(rec->nfields, 3); /* allergies were seen by the delete: gone */
        ck_assert_str_eq(rec->fields[0].name, "name");
        ck_assert_str_eq(rec->fields[0].value.u.s.ptr, "Bo, a new patient");
        const rep_field_t *notes = field_of(rec, "notes", REP_KIND_LOG);
        ck_assert_ptr_nonnull(notes);
        ck_assert_uint_eq(notes->nitems, 1);
        ck_assert_str_eq(notes->items[0].value.u.s.ptr, "first");
        const rep_field_t *visits = field_of(rec, "visits", REP_KIND_COUNTER);
        ck_assert_ptr_nonnull(visits);
        ck_assert_int_eq(visits->value.u.i, 5);
        rep_record_free(&rec);
    }
    office_close(&o);
}
END_TEST

START_TEST(record_delete_then_increment_in_one_txn_keeps_counting)
{
    /* replica.h, rep_txn_del_record: later writes in the transaction recreate the record,
     * with its counters and logs, which a delete never resets */
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    incr(a, "pat/1", "visits", 5);
    append(a, "ann", "pat/1", "notes", "old");
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, "ann", &t));
    CK_OK(rep_txn_del_record(t, "pat/1"));
    CK_OK(rep_txn_incr(t, "pat/1", "visits", 1));
    commit(&t);
    ck_assert_int_eq(get_int(a, "pat/1", "visits"), 6);
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "pat/1", &rec));
    ck_assert_uint_eq(rec->nfields, 2);
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

/* ==== Kinds =================================================================================== */

static const rep_kind_t kinds[] = {REP_KIND_REGISTER, REP_KIND_COUNTER, REP_KIND_SET, REP_KIND_LOG};
static const char *const kind_names[] = {"?", "register", "counter", "set", "log"};

/* Loop index → an ordered pair of two different kinds (12 pairs). */
static void
kind_pair(int i, rep_kind_t *first, rep_kind_t *second)
{
    *first = kinds[i / 3];
    int j = i % 3;
    *second = kinds[j >= i / 3 ? j + 1 : j];
}

START_TEST(kind_another_kind_on_a_stored_field_is_ekind_and_writes_nothing)
{
    rep_kind_t k1, k2;
    kind_pair(_i, &k1, &k2);
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, NULL, &t));
    CK_OK(write_kind(t, k1, "pat/1", "x"));
    commit(&t);
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(a, before));

    CK_OK(rep_txn_begin(a, NULL, &t));
    CK_OK(rep_txn_set_str(t, "pat/1", "y", "other field"));
    CK_OK(rep_txn_set_str(t, "pat/2", "y", "other record"));
    int rc = write_kind(t, k2, "pat/1", "x");
    ck_assert_msg(rc == 0 || rc == REP_EKIND, "%s on a %s: %d", kind_names[k2], kind_names[k1], rc);
    if (rc == 0) {
        uint64_t seq = 99;
        CK_RC(rep_txn_commit(t, &seq), REP_EKIND);
        ck_assert_uint_eq(seq, 0);
    }
    rep_txn_free(&t);
    CK_OK(rep_replica_digest(a, after));
    if (rc == 0) { /* refused at commit: nothing of the transaction is written */
        ck_assert_mem_eq(before, after, sizeof before);
        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(a, &info));
        ck_assert_uint_eq(info->seq, 1);
        ck_assert_uint_eq(info->changes, 1);
        rep_info_free(&info);
        rep_value_t *v = NULL;
        CK_RC(rep_replica_get(a, "pat/1", "y", &v), REP_ENOTFOUND);
        CK_RC(rep_replica_get_record(a, "pat/2", &(rep_record_t *){NULL}), REP_ENOTFOUND);
    }
    /* the field is as it was: one field, of the first kind */
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(a, "pat/1", &rec));
    size_t nx = 0;
    for (size_t i = 0; i < rec->nfields; i++)
        if (strcmp(rec->fields[i].name, "x") == 0) {
            nx++;
            ck_assert_int_eq(rec->fields[i].kind, k1);
        }
    ck_assert_uint_eq(nx, 1);
    rep_record_free(&rec);
    office_close(&o);
}
END_TEST

START_TEST(kind_two_kinds_for_one_field_in_one_txn_is_ekind)
{
    rep_kind_t k1, k2;
    kind_pair(_i, &k1, &k2);
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    rep_txn_t *t;
    CK_OK(rep_txn_begin(a, NULL, &t));
    CK_OK(rep_txn_set_str(t, "pat/1", "y", "other field"));
    CK_OK(write_kind(t, k1, "pat/1", "x"));
    int rc = write_kind(t, k2, "pat/1", "x");
    ck_assert_msg(rc == 0 || rc == REP_EKIND, "%s after %s: %d", kind_names[k2], kind_names[k1],
                  rc);
    if (rc == REP_EKIND) { /* refused here: the transaction stays usable without it */
        commit(&t);
        rep_record_t *rec = NULL;
        CK_OK(rep_replica_get_record(a, "pat/1", &rec));
        ck_assert_ptr_nonnull(field_of(rec, "x", k1));
        ck_assert_ptr_null(field_of(rec, "x", k2));
        rep_record_free(&rec);
    } else {
        CK_RC(rep_txn_commit(t, NULL), REP_EKIND);
        rep_txn_free(&t);
        CK_RC(rep_replica_get_record(a, "pat/1", &(rep_record_t *){NULL}), REP_ENOTFOUND);
        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(a, &info));
        ck_assert_uint_eq(info->seq, 0);
        ck_assert_uint_eq(info->changes, 0);
        rep_info_free(&info);
    }
    office_close(&o);
}
END_TEST

/* Loop index → an unordered pair of two different kinds (6 pairs), first < second. */
static void
kind_upair(int i, rep_kind_t *first, rep_kind_t *second)
{
    static const int p[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
    *first = kinds[p[i][0]];
    *second = kinds[p[i][1]];
}

START_TEST(kind_clash_keeps_both_fields_and_reports_them)
{
    rep_kind_t k1, k2;
    kind_upair(_i / 2, &k1, &k2);
    if (_i % 2) { /* each kind on either replica */
        rep_kind_t k = k1;
        k1 = k2;
        k2 = k;
    }
    office_t o;
    office_open(&o, 3);
    rep_txn_t *t;
    CK_OK(rep_txn_begin(o.r[0], NULL, &t));
    CK_OK(write_kind(t, k1, "pat/1", "x"));
    commit(&t);
    CK_OK(rep_txn_begin(o.r[1], NULL, &t));
    CK_OK(write_kind(t, k2, "pat/1", "x"));
    commit(&t);
    sync_all(&o);
    assert_digests_equal(&o);

    rep_kind_t lo = k1 < k2 ? k1 : k2, hi = k1 < k2 ? k2 : k1;
    for (int i = 0; i < o.n; i++) {
        rep_record_t *rec = NULL;
        CK_OK(rep_replica_get_record(o.r[i], "pat/1", &rec));
        ck_assert_uint_eq(rec->nfields, 2); /* fields in (name, kind) order */
        ck_assert_str_eq(rec->fields[0].name, "x");
        ck_assert_str_eq(rec->fields[1].name, "x");
        ck_assert_int_eq(rec->fields[0].kind, lo);
        ck_assert_int_eq(rec->fields[1].kind, hi);
        ck_assert_int_eq(rec->fields[0].kind_clash, 1);
        ck_assert_int_eq(rec->fields[1].kind_clash, 1);
        rep_record_free(&rec);

        rep_conflicts_t *c = NULL;
        CK_OK(rep_replica_conflicts(o.r[i], NULL, &c));
        ck_assert_uint_eq(c->n, 2);
        for (size_t j = 0; j < 2; j++) {
            ck_assert_str_eq(c->items[j].key, "pat/1");
            ck_assert_str_eq(c->items[j].field, "x");
            ck_assert_int_eq(c->items[j].kind_clash, 1);
            if (c->items[j].kind != REP_KIND_REGISTER)
                ck_assert_uint_eq(c->items[j].n, 0);
        }
        ck_assert_int_eq(c->items[0].kind, lo);
        ck_assert_int_eq(c->items[1].kind, hi);
        rep_conflicts_free(&c);
        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(o.r[i], &info));
        ck_assert_uint_eq(info->conflicts, 2);
        rep_info_free(&info);

        /* rep_replica_get reads the register, else the counter; a set or a log is EKIND */
        rep_value_t *v = NULL;
        int rc = rep_replica_get(o.r[i], "pat/1", "x", &v);
        if (lo == REP_KIND_REGISTER) {
            CK_OK(rc);
            ck_assert(tu_is_str(v, "reg"));
        } else if (lo == REP_KIND_COUNTER) {
            CK_OK(rc);
            ck_assert_int_eq(v->type, REP_INT);
            ck_assert_int_eq(v->u.i, 5);
        } else {
            CK_RC(rc, REP_EKIND);
        }
        rep_value_free(&v);
    }
    office_close(&o);
}
END_TEST

START_TEST(kind_clash_conflict_lists_the_register_siblings)
{
    /* replica.h: a conflict's siblings are "register siblings ...; none for a clash of
     * another kind": the register of a clash is listed with its value */
    office_t o;
    office_open(&o, 2);
    rep_txn_t *t;
    CK_OK(rep_txn_begin(o.r[0], NULL, &t));
    CK_OK(rep_txn_set_str(t, "pat/1", "x", "reg"));
    commit(&t);
    incr(o.r[1], "pat/1", "x", 5);
    sync_all(&o);
    rep_conflicts_t *c = NULL;
    CK_OK(rep_replica_conflicts(o.r[0], "pat/1", &c));
    ck_assert_uint_eq(c->n, 2);
    ck_assert_int_eq(c->items[0].kind, REP_KIND_REGISTER);
    ck_assert_uint_eq(c->items[0].n, 1);
    ck_assert(tu_is_str(&c->items[0].siblings[0].value, "reg"));
    ck_assert_int_eq(c->items[0].siblings[0].winner, 1);
    ck_assert_int_eq(c->items[1].kind, REP_KIND_COUNTER);
    ck_assert_uint_eq(c->items[1].n, 0);
    rep_conflicts_free(&c);
    office_close(&o);
}
END_TEST

/* ==== History ================================================================================= */

/* The op of @p type on @p field in a change, or NULL (the first one). */
static const rep_op_t *
op_of(const rep_change_info_t *ci, rep_op_type_t type, const char *field, size_t nth)
{
    for (size_t i = 0; i < ci->nops; i++)
        if (ci->ops[i].type == type && strcmp(ci->ops[i].field, field) == 0 && nth-- == 0)
            return &ci->ops[i];
    return NULL;
}

START_TEST(history_shows_incr_add_remove_and_append_with_their_values)
{
    office_t o;
    office_open(&o, 1);
    rep_replica_t *a = o.r[0];
    rep_txn_t *t;
    rep_value_t latex = tu_v_str("latex"), iodine = tu_v_str("iodine");
    rep_value_t first = tu_v_str("first"), second = tu_v_str("second");
    CK_OK(rep_txn_begin(a, "ann", &t));
    CK_OK(rep_txn_incr(t, "pat/1", "visits", 5));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_add(t, "pat/1", "allergies", &iodine));
    CK_OK(rep_txn_append(t, "pat/1", "notes", &first));
    commit(&t);
    CK_OK(rep_txn_begin(a, "bob", &t));
    CK_OK(rep_txn_remove(t, "pat/1", "allergies", &latex));
    CK_OK(rep_txn_incr(t, "pat/1", "visits", -2));
    CK_OK(rep_txn_append(t, "pat/1", "notes", &second));
    commit(&t);

    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(a, "pat/1", &h));
    ck_assert_uint_eq(h->n, 2);
    const rep_change_info_t *c1 = &h->changes[0], *c2 = &h->changes[1];
    ck_assert_str_eq(c1->user, "ann");
    ck_assert_str_eq(c2->user, "bob");
    ck_assert_uint_eq(c1->seq, 1);
    ck_assert_uint_eq(c2->seq, 2);

    const rep_op_t *op = op_of(c1, REP_OP_INCR, "visits", 0);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->kind, REP_KIND_COUNTER);
    ck_assert_int_eq(op->value.type, REP_INT);
    ck_assert_int_eq(op->value.u.i, 5);
    const rep_op_t *add0 = op_of(c1, REP_OP_ADD, "allergies", 0);
    const rep_op_t *add1 = op_of(c1, REP_OP_ADD, "allergies", 1);
    ck_assert_ptr_nonnull(add0);
    ck_assert_ptr_nonnull(add1);
    ck_assert_ptr_null(op_of(c1, REP_OP_ADD, "allergies", 2));
    ck_assert_int_eq(add0->kind, REP_KIND_SET);
    ck_assert_int_eq(add1->kind, REP_KIND_SET);
    ck_assert((tu_is_str(&add0->value, "latex") && tu_is_str(&add1->value, "iodine")) ||
              (tu_is_str(&add0->value, "iodine") && tu_is_str(&add1->value, "latex")));
    op = op_of(c1, REP_OP_APPEND, "notes", 0);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->kind, REP_KIND_LOG);
    ck_assert(tu_is_str(&op->value, "first"));
    op = op_of(c1, REP_OP_SET, "", 0); /* the record was written */
    ck_assert_ptr_nonnull(op);

    op = op_of(c2, REP_OP_REMOVE, "allergies", 0);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->kind, REP_KIND_SET);
    ck_assert(tu_is_str(&op->value, "latex"));
    op = op_of(c2, REP_OP_INCR, "visits", 0);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->value.type, REP_INT);
    ck_assert_int_eq(op->value.u.i, -2);
    op = op_of(c2, REP_OP_APPEND, "notes", 0);
    ck_assert_ptr_nonnull(op);
    ck_assert(tu_is_str(&op->value, "second"));
    rep_history_free(&h);
    office_close(&o);
}
END_TEST

/* ==== Missing dependencies ==================================================================== */

/*
 * A wrote changes 1 and 2 to pat/1 (f = 1, then f = 2). *one is a batch of change 1 alone,
 * *two of change 2 alone: C took change 1 (a size-bounded export), and A's export against
 * C's vv then holds only change 2.
 */
static void
two_changes_apart(office_t *o, blob_t *one, blob_t *two)
{
    int a = 0, c = office_add(o, TU_CLOCK_EPOCH_MS);
    rep_txn_t *t;
    CK_OK(rep_txn_begin(o->r[a], NULL, &t));
    CK_OK(rep_txn_set_int(t, "pat/1", "f", 1));
    commit(&t);
    CK_OK(rep_txn_begin(o->r[a], NULL, &t));
    CK_OK(rep_txn_set_int(t, "pat/1", "f", 2));
    commit(&t);

    uint8_t *vv;
    size_t vvn;
    int more = 0;
    rep_import_stats_t st;
    CK_OK(rep_replica_vv(o->r[c], &vv, &vvn));
    CK_OK(rep_replica_export(o->r[a], vv, vvn, 1, &one->p, &one->n, &more));
    rep_free(vv);
    ck_assert_int_eq(more, 1);
    CK_OK(rep_replica_import(o->r[c], one->p, one->n, &st));
    ck_assert_uint_eq(st.changes, 1);
    ck_assert_uint_eq(st.applied, 1);
    CK_OK(rep_replica_vv(o->r[c], &vv, &vvn));
    CK_OK(rep_replica_export(o->r[a], vv, vvn, 0, &two->p, &two->n, &more));
    rep_free(vv);
    ck_assert_int_eq(more, 0);
}

static void
assert_waiting_for(rep_replica_t *r, uint64_t actor, uint64_t seq, uint64_t pending)
{
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(r, &info));
    ck_assert_uint_eq(info->pending, pending);
    rep_info_free(&info);
    rep_vv_entry_t *m = NULL;
    size_t n = 99;
    CK_OK(rep_replica_missing(r, &m, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(m[0].actor, actor);
    ck_assert_uint_eq(m[0].seq, seq);
    rep_free(m);
}

static void
assert_waiting_for_nothing(rep_replica_t *r)
{
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(r, &info));
    ck_assert_uint_eq(info->pending, 0);
    rep_info_free(&info);
    rep_vv_entry_t *m = (rep_vv_entry_t *)&m; /* not NULL: must be reset */
    size_t n = 99;
    CK_OK(rep_replica_missing(r, &m, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(m);
}

START_TEST(missing_lists_what_a_pending_change_waits_for)
{
    office_t o;
    office_open(&o, 1);
    blob_t one, two;
    two_changes_apart(&o, &one, &two);
    int d = office_add(&o, TU_CLOCK_EPOCH_MS);
    assert_waiting_for_nothing(o.r[d]);

    rep_import_stats_t st;
    CK_OK(rep_replica_import(o.r[d], two.p, two.n, &st));
    ck_assert_uint_eq(st.changes, 1);
    ck_assert_uint_eq(st.applied, 0);
    ck_assert_uint_eq(st.pending, 1);
    assert_waiting_for(o.r[d], o.actor[0], 1, 1);
    CK_RC(rep_replica_get_record(o.r[d], "pat/1", &(rep_record_t *){NULL}), REP_ENOTFOUND);

    CK_OK(rep_replica_import(o.r[d], one.p, one.n, &st));
    ck_assert_uint_eq(st.applied, 2); /* change 1, and change 2 it released */
    ck_assert_uint_eq(st.pending, 0);
    assert_waiting_for_nothing(o.r[d]);
    ck_assert_int_eq(get_int(o.r[d], "pat/1", "f"), 2);
    rep_free(one.p);
    rep_free(two.p);
    office_close(&o);
}
END_TEST

START_TEST(missing_lists_a_dependency_on_another_device)
{
    office_t o;
    office_open(&o, 2);
    blob_t one, two;
    two_changes_apart(&o, &one, &two); /* C = replica 2 holds A's change 1 */
    /* B sees A's change 1 only, then writes: its change depends on (A, 1) */
    rep_import_stats_t st;
    CK_OK(rep_replica_import(o.r[1], one.p, one.n, &st));
    incr(o.r[1], "pat/1", "n", 1);
    uint8_t *vv;
    size_t vvn;
    blob_t bs;
    CK_OK(rep_replica_vv(o.r[2], &vv, &vvn));
    CK_OK(rep_replica_export(o.r[1], vv, vvn, 0, &bs.p, &bs.n, NULL));
    rep_free(vv);

    int d = office_add(&o, TU_CLOCK_EPOCH_MS);
    CK_OK(rep_replica_import(o.r[d], bs.p, bs.n, &st));
    ck_assert_uint_eq(st.changes, 1);
    ck_assert_uint_eq(st.pending, 1);
    assert_waiting_for(o.r[d], o.actor[0], 1, 1);
    CK_OK(rep_replica_import(o.r[d], one.p, one.n, &st));
    ck_assert_uint_eq(st.applied, 2);
    assert_waiting_for_nothing(o.r[d]);
    ck_assert_int_eq(get_int(o.r[d], "pat/1", "n"), 1);
    rep_free(one.p);
    rep_free(two.p);
    rep_free(bs.p);
    office_close(&o);
}
END_TEST

START_TEST(missing_pending_change_survives_reopen_and_applies_later)
{
    office_t o;
    office_open(&o, 1);
    blob_t one, two;
    two_changes_apart(&o, &one, &two);
    int d = office_add(&o, TU_CLOCK_EPOCH_MS);
    rep_import_stats_t st;
    CK_OK(rep_replica_import(o.r[d], two.p, two.n, &st));
    ck_assert_uint_eq(st.pending, 1);

    rep_replica_close(&o.r[d]);
    rep_open_opts_t opts;
    memset(&opts, 0, sizeof opts);
    tu_clock_use(&o.clk[d], &opts);
    CK_OK(tu_replica_reopen(&o.r[d], o.dir, o.sub[d], &opts));
    assert_waiting_for(o.r[d], o.actor[0], 1, 1);

    CK_OK(rep_replica_import(o.r[d], one.p, one.n, &st));
    ck_assert_uint_eq(st.applied, 2);
    ck_assert_uint_eq(st.pending, 0);
    assert_waiting_for_nothing(o.r[d]);
    ck_assert_int_eq(get_int(o.r[d], "pat/1", "f"), 2);
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(o.r[d], &info));
    ck_assert_uint_eq(info->nvv, 1);
    ck_assert_uint_eq(info->vv[0].actor, o.actor[0]);
    ck_assert_uint_eq(info->vv[0].seq, 2);
    rep_info_free(&info);
    rep_free(one.p);
    rep_free(two.p);
    office_close(&o);
}
END_TEST

/* ==== Clock skew ============================================================================== */

START_TEST(skew_a_device_a_day_ahead_is_reported_and_not_followed)
{
    office_t o;
    office_init(&o);
    int b = office_add(&o, TU_CLOCK_EPOCH_MS);          /* normal clock */
    int a = office_add(&o, TU_CLOCK_EPOCH_MS + DAY_MS); /* a day ahead */
    append(o.r[a], "ann", "msg/1", "thread", "from the future");
    incr(o.r[a], "msg/1", "n", 1);

    rep_import_stats_t st;
    sync_from(o.r[b], o.r[a], &st);
    ck_assert_uint_eq(st.changes, 2);
    ck_assert_uint_eq(st.applied, 2); /* applied all the same */
    ck_assert_uint_eq(st.skewed, 2);
    ck_assert_int_eq(get_int(o.r[b], "msg/1", "n"), 1);

    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(o.r[b], &info));
    ck_assert_uint_eq(info->nskewed, 1);
    ck_assert_uint_eq(info->skewed[0].actor, o.actor[a]);
    ck_assert_uint_ge(info->skewed[0].seq, DAY_MS - 1000);
    ck_assert_uint_le(info->skewed[0].seq, DAY_MS + 1000);
    ck_assert_uint_le(HLC_MS(info->hlc), TU_CLOCK_EPOCH_MS + DRIFT_MS);
    rep_info_free(&info);

    /* B's own next change is not dragged a day ahead: max_drift past its wall clock at most.
     * (The adopted bound is wall + drift with a full counter, hlc.c, so the very next tick
     * carries into the following millisecond: allow that one.) */
    append(o.r[b], "bo", "msg/1", "thread", "from today");
    entry_t e[4];
    ck_assert_uint_eq(log_entries(o.r[b], "msg/1", "thread", e, 4), 2);
    ck_assert_str_eq(e[0].val, "from today"); /* the day-ahead entry sorts last */
    ck_assert_uint_eq(e[0].actor, o.actor[b]);
    ck_assert_uint_ge(HLC_MS(e[0].hlc), TU_CLOCK_EPOCH_MS);
    ck_assert_uint_le(HLC_MS(e[0].hlc), TU_CLOCK_EPOCH_MS + DRIFT_MS + 1);
    ck_assert_uint_eq(HLC_MS(e[1].hlc), TU_CLOCK_EPOCH_MS + DAY_MS);

    /* the writer itself reports no one */
    CK_OK(rep_replica_info(o.r[a], &info));
    ck_assert_uint_eq(info->nskewed, 0);
    rep_info_free(&info);
    office_close(&o);
}
END_TEST

START_TEST(skew_within_max_drift_is_not_reported)
{
    office_t o;
    office_init(&o);
    int b = office_add(&o, TU_CLOCK_EPOCH_MS);
    int a = office_add(&o, TU_CLOCK_EPOCH_MS + DRIFT_MS / 2);
    incr(o.r[a], "c/1", "n", 1);
    rep_import_stats_t st;
    sync_from(o.r[b], o.r[a], &st);
    ck_assert_uint_eq(st.applied, 1);
    ck_assert_uint_eq(st.skewed, 0);
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(o.r[b], &info));
    ck_assert_uint_eq(info->nskewed, 0);
    ck_assert_ptr_null(info->skewed);
    rep_info_free(&info);
    office_close(&o);
}
END_TEST

/* ---- Suite ----------------------------------------------------------------------------------- */

static Suite *
kinds_suite(void)
{
    Suite *s = suite_create("kinds");
    TCase *tc = tcase_create("counter");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, counter_get_returns_the_int_total_of_its_increments);
    tcase_add_test(tc, counter_negative_deltas_decrease_it_below_zero);
    tcase_add_test(tc, counter_several_increments_in_one_txn_all_count);
    tcase_add_test(tc, counter_concurrent_increments_sum_in_any_order_with_duplicates);
    tcase_add_test(tc, counter_int64_overflow_wraps);
    suite_add_tcase(s, tc);

    tc = tcase_create("set");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, set_add_and_remove_members);
    tcase_add_test(tc, set_members_are_listed_in_value_order);
    tcase_add_test(tc, set_members_are_in_the_order_of_their_canonical_encoding);
    tcase_add_test(tc, set_adding_a_member_twice_keeps_one);
    tcase_add_test(tc, set_remove_then_add_in_one_txn_keeps_the_member);
    tcase_add_test(tc, set_add_then_remove_in_one_txn_leaves_it_out);
    tcase_add_test(tc, set_concurrent_add_wins_over_a_remove);
    tcase_add_test(tc, set_remove_that_saw_every_add_removes_it_everywhere);
    tcase_add_test(tc, set_members_may_be_values_of_every_type);
    suite_add_tcase(s, tc);

    tc = tcase_create("log");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, log_appends_keep_call_order_within_a_txn);
    tcase_add_test(tc, log_concurrent_appends_have_one_order_everywhere);
    tcase_add_test(tc, log_entry_fields_name_its_change);
    suite_add_tcase(s, tc);

    tc = tcase_create("delete");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, record_delete_hides_counters_sets_and_logs);
    tcase_add_test(tc, record_update_concurrent_with_a_delete_keeps_counter_and_log_whole);
    tcase_add_test(tc, record_delete_removes_the_set_members_it_saw_and_keeps_a_concurrent_add);
    tcase_add_test(tc, record_recreated_after_a_delete_keeps_its_counter_and_log);
    tcase_add_test(tc, record_delete_then_increment_in_one_txn_keeps_counting);
    suite_add_tcase(s, tc);

    tc = tcase_create("kind");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_loop_test(tc, kind_another_kind_on_a_stored_field_is_ekind_and_writes_nothing, 0, 12);
    tcase_add_loop_test(tc, kind_two_kinds_for_one_field_in_one_txn_is_ekind, 0, 12);
    tcase_add_loop_test(tc, kind_clash_keeps_both_fields_and_reports_them, 0, 12);
    tcase_add_test(tc, kind_clash_conflict_lists_the_register_siblings);
    suite_add_tcase(s, tc);

    tc = tcase_create("history");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, history_shows_incr_add_remove_and_append_with_their_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("missing");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, missing_lists_what_a_pending_change_waits_for);
    tcase_add_test(tc, missing_lists_a_dependency_on_another_device);
    tcase_add_test(tc, missing_pending_change_survives_reopen_and_applies_later);
    suite_add_tcase(s, tc);

    tc = tcase_create("skew");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, skew_a_device_a_day_ahead_is_reported_and_not_followed);
    tcase_add_test(tc, skew_within_max_drift_is_not_reported);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(kinds_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
