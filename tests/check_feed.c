/*
 * check_feed.c — the change feed (rep_replica_changes): what a connector that pushes the
 * office's edits to a cloud EMR relies on. Every change comes once, in causal order, across
 * pages and across new writes; changes that arrive from other workstations come too, late or
 * not; a bad cursor is refused. Real replicas in temporary directories, public API only.
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"
#include "checkutil.h"

/* ---- A small office: an admin and members, with fake clocks ------------------------------- */

#define MAXR 3

typedef struct office {
    char *dir;
    int n;
    rep_replica_t *r[MAXR];
    tu_clock_t clk[MAXR];
} office_t;

static const char *const names[MAXR] = {"front-desk", "nurse", "billing"};

static void
office_open(office_t *o, int n)
{
    memset(o, 0, sizeof *o);
    o->n = n;
    o->dir = tu_tmpdir_in(g_root);
    ck_assert_msg(o->dir != NULL, "mkdtemp");
    for (int i = 0; i < n; i++) {
        rep_open_opts_t opts = {.flags = REP_OPEN_NOSYNC, .office_name = "Main Street Clinic"};
        tu_clock_set(&o->clk[i], TU_CLOCK_EPOCH_MS);
        tu_clock_use(&o->clk[i], &opts);
        opts.device_name = i == 0 ? names[0] : NULL;
        CK_OK(tu_replica_create(&o->r[i], o->dir, names[i], &opts, i == 0 ? NULL : o->r[0]));
    }
    for (int i = 1; i < n; i++)
        CK_OK(tu_members_share(o->r[0], o->r[i]));
}

static void
office_close(office_t *o)
{
    for (int i = 0; i < o->n; i++)
        rep_replica_close(&o->r[i]);
    free(o->dir);
}

/* Replica i writes field = value in record key, as user, in one change. */
static void
put(office_t *o, int i, const char *key, const char *field, const char *value, const char *user)
{
    rep_txn_t *t;
    tu_clock_advance(&o->clk[i], 3);
    CK_OK(rep_txn_begin(o->r[i], user, &t));
    CK_OK(rep_txn_set_str(t, key, field, value));
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);
}

/* Everything src has that dst lacks goes to dst. */
static void
sync_to(office_t *o, int src, int dst)
{
    uint8_t *vv, *b;
    size_t vvn, bn;
    CK_OK(rep_replica_vv(o->r[dst], &vv, &vvn));
    CK_OK(rep_replica_export(o->r[src], vv, vvn, 0, &b, &bn, NULL));
    CK_OK(rep_replica_import(o->r[dst], b, bn, NULL));
    rep_free(vv);
    rep_free(b);
}

/* The feed after since, all of it in one call; the cursor is the caller's (free()). */
static rep_feed_t *
feed(rep_replica_t *r, const char *since)
{
    rep_feed_t *f;
    CK_OK(rep_replica_changes(r, since, 0, 0, &f));
    ck_assert_ptr_nonnull(f->cursor);
    ck_assert_int_eq(f->more, 0);
    return f;
}

/* A string the test owns. */
static char *
sdup(const char *s)
{
    char *d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

static int
is_str(const rep_value_t *v, const char *s)
{
    return v->type == REP_STRING && v->u.s.len == strlen(s) && memcmp(v->u.s.ptr, s, v->u.s.len) == 0;
}

/* ---- Tests ------------------------------------------------------------------------------------ */

/* What a change looks like in the feed: its device, user, records and ops. */
START_TEST(test_feed_shows_a_change)
{
    office_t o;
    office_open(&o, 2);
    rep_txn_t *t;
    CK_OK(rep_txn_begin(o.r[1], "maria", &t));
    CK_OK(rep_txn_set_str(t, "appts/0900", "patient", "8812"));
    CK_OK(rep_txn_incr(t, "patients/8812", "visits", 2));
    CK_OK(rep_txn_set_str(t, "appts/0900", "status", "booked"));
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);

    rep_feed_t *f = feed(o.r[1], NULL);
    ck_assert_uint_eq(f->n, 1);
    const rep_feed_change_t *c = &f->changes[0];
    ck_assert_uint_eq(c->seq, 1);
    ck_assert_str_eq(c->user, "maria");
    ck_assert_str_eq(c->device_name, "nurse");
    ck_assert_int_eq(f->partial, 0);
    rep_devices_t *d;
    CK_OK(rep_replica_devices(o.r[1], &d));
    int found = 0;
    for (size_t i = 0; i < d->n; i++)
        found |= d->items[i].self && strcmp(d->items[i].id, c->device_id) == 0;
    ck_assert_msg(found, "device_id %s is not this device's", c->device_id);
    rep_devices_free(&d);

    /* two records, in the order the change first touched them, each with its own ops */
    ck_assert_uint_eq(c->nrecords, 2);
    ck_assert_str_eq(c->records[0].key, "appts/0900");
    ck_assert_str_eq(c->records[1].key, "patients/8812");
    int patient = 0, status = 0, visits = 0;
    for (size_t i = 0; i < c->records[0].nops; i++) {
        const rep_op_t *op = &c->records[0].ops[i];
        if (strcmp(op->field, "patient") == 0)
            patient = op->type == REP_OP_SET && is_str(&op->value, "8812");
        if (strcmp(op->field, "status") == 0)
            status = op->type == REP_OP_SET && is_str(&op->value, "booked");
    }
    for (size_t i = 0; i < c->records[1].nops; i++) {
        const rep_op_t *op = &c->records[1].ops[i];
        if (strcmp(op->field, "visits") == 0)
            visits = op->type == REP_OP_INCR && op->kind == REP_KIND_COUNTER &&
                     op->value.type == REP_INT && op->value.u.i == 2;
        ck_assert_msg(strcmp(op->field, "patient") != 0, "an op of another record");
    }
    ck_assert(patient && status && visits);
    rep_feed_free(&f);
    ck_assert_ptr_null(f);
    rep_feed_free(NULL);
    office_close(&o);
}
END_TEST

/* The cursor given back picks up where the feed stopped: nothing again, then exactly the new
 * changes; "", "0" and NULL are the beginning. */
START_TEST(test_cursor_round_trip)
{
    office_t o;
    office_open(&o, 1);
    put(&o, 0, "patients/1", "name", "Ada", "maria");
    put(&o, 0, "patients/2", "name", "Eve", "maria");
    rep_feed_t *f = feed(o.r[0], NULL), *g;
    ck_assert_uint_eq(f->n, 2);
    char *c1 = sdup(f->cursor);
    rep_feed_free(&f);
    f = feed(o.r[0], "");
    g = feed(o.r[0], "0");
    ck_assert_uint_eq(f->n, 2);
    ck_assert_uint_eq(g->n, 2);
    ck_assert_str_eq(f->cursor, c1); /* one vv, one cursor */
    ck_assert_str_eq(g->cursor, c1);
    rep_feed_free(&f);
    rep_feed_free(&g);

    f = feed(o.r[0], c1); /* nothing new */
    ck_assert_uint_eq(f->n, 0);
    ck_assert_str_eq(f->cursor, c1);
    rep_feed_free(&f);

    /* printable, one token: what a connector keeps in a file and passes on a command line */
    for (const char *p = c1; *p; p++)
        ck_assert_msg((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                          (*p >= '0' && *p <= '9') || *p == '-' || *p == '_',
                      "cursor %s has '%c'", c1, *p);

    put(&o, 0, "patients/3", "name", "Ida", "joe");
    put(&o, 0, "patients/1", "phone", "555-0100", "joe");
    f = feed(o.r[0], c1);
    ck_assert_uint_eq(f->n, 2);
    ck_assert_uint_eq(f->changes[0].seq, 3);
    ck_assert_str_eq(f->changes[0].records[0].key, "patients/3");
    ck_assert_uint_eq(f->changes[1].seq, 4);
    ck_assert_str_eq(f->changes[1].records[0].key, "patients/1");
    ck_assert_str_ne(f->cursor, c1);
    g = feed(o.r[0], f->cursor);
    ck_assert_uint_eq(g->n, 0);
    rep_feed_free(&g);
    rep_feed_free(&f);
    free(c1);
    office_close(&o);
}
END_TEST

/* An empty replica's feed is empty, with a cursor that works. */
START_TEST(test_empty_feed)
{
    office_t o;
    office_open(&o, 1);
    rep_feed_t *f = feed(o.r[0], NULL);
    ck_assert_uint_eq(f->n, 0);
    char *c = sdup(f->cursor);
    rep_feed_free(&f);
    put(&o, 0, "patients/1", "name", "Ada", NULL);
    f = feed(o.r[0], c);
    ck_assert_uint_eq(f->n, 1);
    ck_assert_str_eq(f->changes[0].user, "");
    rep_feed_free(&f);
    free(c);
    office_close(&o);
}
END_TEST

typedef struct dot {
    uint64_t actor, seq, hlc;
} dot_t;

/* Pages of every size give every change exactly once, in the same causal order as one call:
 * three workstations writing concurrently and trading changes in random order. */
START_TEST(test_limit_paging)
{
    office_t o;
    office_open(&o, 3);
    tu_rng_t rng;
    tu_rng_seed(&rng, 42);
    char key[32], val[32];
    for (int step = 0; step < 120; step++) {
        int i = (int)tu_rng_below(&rng, 3);
        snprintf(key, sizeof key, "patients/%d", (int)tu_rng_below(&rng, 8));
        snprintf(val, sizeof val, "v%d", step);
        put(&o, i, key, "note", val, names[i]);
        if (tu_rng_chance(&rng, 30)) {
            int a = (int)tu_rng_below(&rng, 3), b = (int)tu_rng_below(&rng, 3);
            if (a != b)
                sync_to(&o, a, b);
        }
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                sync_to(&o, i, j);

    rep_feed_t *all = feed(o.r[0], NULL);
    ck_assert_uint_eq(all->n, 120);
    rep_info_t *in;
    CK_OK(rep_replica_info(o.r[0], &in));
    dot_t *want = calloc(all->n, sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (size_t k = 0; k < all->n; k++) {
        want[k] = (dot_t){all->changes[k].actor, all->changes[k].seq, all->changes[k].hlc};
        /* per actor, seqs 1, 2, 3, ... in order: every change once, none skipped */
        uint64_t prev = 0;
        for (size_t m = 0; m < k; m++)
            if (want[m].actor == want[k].actor)
                prev = want[m].seq;
        ck_assert_uint_eq(want[k].seq, prev + 1);
        /* no clock ran ahead here, so causal order is clock order */
        if (k)
            ck_assert_uint_le(want[k - 1].hlc, want[k].hlc);
    }
    uint64_t total = 0;
    for (size_t k = 0; k < in->nvv; k++)
        total += in->vv[k].seq;
    ck_assert_uint_eq(total, all->n);
    rep_info_free(&in);

    for (size_t limit = 1; limit <= 7; limit++) {
        char *cur = NULL;
        size_t got = 0, calls = 0;
        for (;;) {
            rep_feed_t *f;
            CK_OK(rep_replica_changes(o.r[0], cur, limit, 0, &f));
            ck_assert_uint_le(f->n, limit);
            for (size_t k = 0; k < f->n; k++, got++) {
                ck_assert_uint_lt(got, all->n);
                ck_assert_uint_eq(f->changes[k].actor, want[got].actor);
                ck_assert_uint_eq(f->changes[k].seq, want[got].seq);
            }
            int more = f->more;
            free(cur);
            cur = sdup(f->cursor);
            rep_feed_free(&f);
            ck_assert_uint_lt(++calls, 1000);
            if (!more)
                break;
        }
        ck_assert_uint_eq(got, all->n);
        /* the last page's cursor is the whole feed's */
        ck_assert_str_eq(cur, all->cursor);
        free(cur);
    }
    free(want);
    rep_feed_free(&all);
    office_close(&o);
}
END_TEST

/* Changes made on another workstation appear once imported, with that device's name; one
 * that arrives late, with an older clock than what was handed out, still comes. */
START_TEST(test_imported_changes_appear)
{
    office_t o;
    office_open(&o, 2);
    tu_clock_advance(&o.clk[0], 60000); /* the nurse's clock is a minute behind */
    put(&o, 1, "patients/7", "allergy", "latex", "nurse-kim"); /* offline, early */
    put(&o, 0, "patients/1", "name", "Ada", "maria");
    rep_feed_t *f = feed(o.r[0], NULL);
    ck_assert_uint_eq(f->n, 1);
    char *c = sdup(f->cursor);
    rep_feed_free(&f);

    sync_to(&o, 1, 0); /* the link comes back */
    f = feed(o.r[0], c);
    ck_assert_uint_eq(f->n, 1);
    ck_assert_str_eq(f->changes[0].device_name, "nurse");
    ck_assert_str_eq(f->changes[0].user, "nurse-kim");
    ck_assert_str_eq(f->changes[0].records[0].key, "patients/7");
    rep_feed_free(&f);

    /* the cursor is the office's, not the replica's: the nurse's replica takes it too */
    sync_to(&o, 0, 1);
    f = feed(o.r[1], c);
    ck_assert_uint_eq(f->n, 1);
    ck_assert_str_eq(f->changes[0].records[0].key, "patients/7");
    rep_feed_free(&f);
    free(c);
    office_close(&o);
}
END_TEST

/* A mistyped, cut or altered cursor is -EINVAL, another office's REP_EOFFICE. */
START_TEST(test_malformed_cursor_refused)
{
    office_t o, other;
    office_open(&o, 1);
    office_open(&other, 1);
    for (int i = 0; i < 3; i++)
        put(&o, 0, "patients/1", "n", "x", NULL);
    rep_feed_t *f = feed(o.r[0], NULL), *g = NULL;
    char *c = sdup(f->cursor);
    rep_feed_free(&f);

    const char *bad[] = {"!", "not a cursor", "AAAA", "1", "-", " ", "\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CK_RC(rep_replica_changes(o.r[0], bad[i], 0, 0, &g), -EINVAL);
        ck_assert_ptr_null(g);
    }
    size_t n = strlen(c);
    char *cut = sdup(c);
    for (size_t k = 1; k < n; k++) { /* every cut */
        cut[n - k] = '\0';
        int rc = rep_replica_changes(o.r[0], cut, 0, 0, &g);
        ck_assert_msg(rc == -EINVAL, "cursor cut to %zu chars: %d", n - k, rc);
    }
    for (size_t k = 0; k < n; k++) { /* every one-character change */
        strcpy(cut, c);
        cut[k] = cut[k] == 'A' ? 'B' : 'A';
        int rc = rep_replica_changes(o.r[0], cut, 0, 0, &g);
        ck_assert_msg(rc == -EINVAL, "cursor altered at %zu: %d", k, rc);
    }
    strcpy(cut, c);
    cut[n - 1] = '\0';
    strcat(cut, " ");
    CK_RC(rep_replica_changes(o.r[0], cut, 0, 0, &g), -EINVAL);
    free(cut);
    CK_RC(rep_replica_changes(other.r[0], c, 0, 0, &g), REP_EOFFICE);
    CK_RC(rep_replica_changes(o.r[0], c, 0, 0x80, &g), -EINVAL);
    CK_RC(rep_replica_changes(o.r[0], c, 0, 0, NULL), -EINVAL);
    CK_RC(rep_replica_changes(NULL, c, 0, 0, &g), -EINVAL);
    /* and the good one still works */
    f = feed(o.r[0], c);
    ck_assert_uint_eq(f->n, 0);
    rep_feed_free(&f);
    free(c);
    office_close(&other);
    office_close(&o);
}
END_TEST

/* The library's own records (collections starting with '_', like _devices) are skipped by
 * default, and the cursor moves past them; REP_FEED_INTERNAL shows them. */
START_TEST(test_internal_records_skipped)
{
    office_t o;
    office_open(&o, 1);
    const char *ep[] = {"tcp://127.0.0.1:7400"};
    int written;
    CK_OK(rep_replica_announce(o.r[0], ep, 1, &written));
    ck_assert_int_eq(written, 1);
    put(&o, 0, "patients/1", "name", "Ada", NULL);
    CK_OK(rep_replica_announce(o.r[0], (const char *[]){"tcp://127.0.0.1:7401"}, 1, &written));

    rep_feed_t *f = feed(o.r[0], NULL), *g;
    ck_assert_uint_eq(f->n, 1);
    ck_assert_uint_eq(f->changes[0].seq, 2);
    ck_assert_str_eq(f->changes[0].records[0].key, "patients/1");
    g = feed(o.r[0], f->cursor);
    ck_assert_uint_eq(g->n, 0);
    ck_assert_str_eq(g->cursor, f->cursor);
    rep_feed_free(&g);
    /* a page of one: the trailing internal change is passed over too, and more is 0 */
    CK_OK(rep_replica_changes(o.r[0], NULL, 1, 0, &g));
    ck_assert_uint_eq(g->n, 1);
    ck_assert_int_eq(g->more, 0);
    ck_assert_str_eq(g->cursor, f->cursor);
    rep_feed_free(&g);
    rep_feed_free(&f);

    CK_OK(rep_replica_changes(o.r[0], NULL, 0, REP_FEED_INTERNAL, &f));
    ck_assert_uint_eq(f->n, 3);
    ck_assert_msg(strncmp(f->changes[0].records[0].key, "_devices/", 9) == 0, "%s",
                  f->changes[0].records[0].key);
    rep_feed_free(&f);
    office_close(&o);
}
END_TEST

/* A replica that caught up from a snapshot holds those changes only as state: the feed says
 * so (partial) once, and gives what comes after as changes. */
START_TEST(test_snapshot_catch_up_is_partial)
{
    office_t o;
    office_open(&o, 2);
    put(&o, 0, "patients/1", "name", "Ada", NULL);
    put(&o, 0, "patients/2", "name", "Eve", NULL);
    uint8_t *snap;
    size_t snapn;
    CK_OK(rep_replica_snapshot(o.r[0], &snap, &snapn));
    CK_OK(rep_replica_import(o.r[1], snap, snapn, NULL));
    rep_free(snap);

    rep_feed_t *f = feed(o.r[1], NULL), *g;
    ck_assert_uint_eq(f->n, 0);
    ck_assert_int_eq(f->partial, 1);
    g = feed(o.r[1], f->cursor); /* reported once */
    ck_assert_int_eq(g->partial, 0);
    ck_assert_uint_eq(g->n, 0);
    rep_feed_free(&g);

    put(&o, 0, "patients/3", "name", "Ida", NULL);
    sync_to(&o, 0, 1);
    g = feed(o.r[1], f->cursor);
    ck_assert_uint_eq(g->n, 1);
    ck_assert_int_eq(g->partial, 0);
    ck_assert_str_eq(g->changes[0].records[0].key, "patients/3");
    rep_feed_free(&g);
    rep_feed_free(&f);
    office_close(&o);
}
END_TEST

/* Causal even when a clock ran ahead: a change made after seeing another comes after it,
 * whatever the clocks say. */
START_TEST(test_causal_order_with_a_skewed_clock)
{
    office_t o;
    office_open(&o, 2);
    /* the nurse's clock is a day ahead: beyond the allowed drift, so it is not adopted */
    tu_clock_advance(&o.clk[1], 24ull * 3600 * 1000);
    put(&o, 1, "patients/1", "name", "Ada", NULL);
    sync_to(&o, 1, 0);
    put(&o, 0, "patients/1", "name", "Ada Lovelace", NULL); /* after seeing it */
    rep_feed_t *f = feed(o.r[0], NULL);
    ck_assert_uint_eq(f->n, 2);
    ck_assert_str_eq(f->changes[0].device_name, "nurse");
    ck_assert_str_eq(f->changes[1].device_name, "front-desk");
    rep_feed_free(&f);
    office_close(&o);
}
END_TEST

static Suite *
feed_suite(void)
{
    Suite *s = suite_create("feed");
    TCase *tc = tcase_create("feed");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_feed_shows_a_change);
    tcase_add_test(tc, test_cursor_round_trip);
    tcase_add_test(tc, test_empty_feed);
    tcase_add_test(tc, test_limit_paging);
    tcase_add_test(tc, test_imported_changes_appear);
    tcase_add_test(tc, test_malformed_cursor_refused);
    tcase_add_test(tc, test_internal_records_skipped);
    tcase_add_test(tc, test_snapshot_catch_up_is_partial);
    tcase_add_test(tc, test_causal_order_with_a_skewed_clock);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    SRunner *sr = srunner_create(feed_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
