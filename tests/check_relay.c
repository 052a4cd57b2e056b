/*
 * check_relay.c — a relay (DESIGN.md "Merging with the cloud"): a member enrolled with role
 * "relay" that holds no office key. It takes the membership log, checks every change's
 * signature, stores the changes sealed and passes them on, and can read, write and seal
 * nothing: its file holds none of the plaintext written.
 *
 * Real replicas in LMDB, in one process; changes travel as the batches rep_replica_export
 * and rep_replica_catchup make, as they would over the network, or between two real sync
 * engines (a workstation's and the relay's: a change the relay must wait with brings no storm).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkutil.h"
#include "replica.h"
#include "sync.h"

/* A relay enrolled by admin, in base/sub. */
static int
relay_create(rep_replica_t **out, const char *base, const char *sub, rep_replica_t *admin,
             unsigned flags)
{
    char dir[TU_PATH_MAX];
    uint8_t *prov = NULL;
    size_t provn = 0;
    *out = NULL;
    int rc = tu_path(dir, base, sub);
    if (rc == 0)
        rc = rep_replica_provision(admin, sub, "relay", &prov, &provn);
    if (rc == 0) {
        rep_open_opts_t o = {.flags = REP_OPEN_CREATE | REP_OPEN_NOSYNC | flags,
                             .provision = prov, .provision_len = provn};
        rc = rep_replica_open(out, dir, &o);
    }
    rep_free(prov);
    return rc;
}

typedef struct office {
    char *dir;
    rep_replica_t *a, *b, *relay; /* founder (admin), a member, the relay */
} office_t;

static void
office_open(office_t *o)
{
    memset(o, 0, sizeof *o);
    o->dir = tu_tmpdir_in(g_root);
    ck_assert_ptr_nonnull(o->dir);
    rep_open_opts_t opts = {.flags = REP_OPEN_NOSYNC, .device_name = "front"};
    CK_OK(tu_replica_create(&o->a, o->dir, "front", &opts, NULL));
    CK_OK(tu_replica_create(&o->b, o->dir, "branch", &opts, o->a));
    CK_OK(relay_create(&o->relay, o->dir, "cloud", o->a, REP_OPEN_RELAY));
    CK_OK(tu_members_share(o->a, o->b));
}

static void
office_close(office_t *o)
{
    rep_replica_close(&o->a);
    rep_replica_close(&o->b);
    rep_replica_close(&o->relay);
    tu_rmtree(o->dir);
    free(o->dir);
}


/* from -> to as a node answers: rep_replica_catchup (changes or a snapshot), or, to a relay,
 * which cannot take a snapshot, rep_replica_export; the import's code. */
static int
pass(rep_replica_t *from, rep_replica_t *to, rep_import_stats_t *st)
{
    uint8_t *vv = NULL, *b = NULL;
    size_t vvn = 0, n = 0;
    rep_info_t *ti = NULL;
    CK_OK(rep_replica_info(to, &ti));
    CK_OK(rep_replica_vv(to, &vv, &vvn));
    if (ti->relay)
        CK_OK(rep_replica_export(from, vv, vvn, 0, &b, &n, NULL));
    else
        CK_OK(rep_replica_catchup(from, vv, vvn, 0, &b, &n, NULL));
    rep_info_free(&ti);
    rep_import_stats_t s;
    int rc = rep_replica_import(to, b, n, &s);
    rep_free(vv);
    rep_free(b);
    if (st)
        *st = s;
    return rc;
}


static rep_info_t *
info(rep_replica_t *r)
{
    rep_info_t *i = NULL;
    CK_OK(rep_replica_info(r, &i));
    return i;
}

/* Does any file of directory base/sub contain s? */
static int
dir_contains(const char *base, const char *sub, const char *s)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char dir[TU_PATH_MAX], path[TU_PATH_MAX];
        CK_OK(tu_path(dir, base, sub));
        CK_OK(tu_path(path, dir, files[f]));
        FILE *fp = fopen(path, "rb");
        if (!fp)
            continue;
        size_t cap = 1 << 20, n = 0, k = strlen(s);
        char *buf = malloc(cap);
        ck_assert_ptr_nonnull(buf);
        for (size_t got; (got = fread(buf + n, 1, cap - n, fp)) > 0;) {
            n += got;
            if (n == cap) {
                char *bigger = realloc(buf, cap *= 2);
                ck_assert_ptr_nonnull(bigger);
                buf = bigger;
            }
        }
        fclose(fp);
        int found = n >= k && memmem(buf, n, s, k) != NULL;
        free(buf);
        if (found)
            return 1;
    }
    return 0;
}

/* A relay is made only when asked for, and never gets a key. */
START_TEST(test_relay_enroll)
{
    char *dir = tu_tmpdir_in(g_root);
    rep_open_opts_t opts = {.flags = REP_OPEN_NOSYNC, .device_name = "front"};
    rep_replica_t *a = NULL, *r = NULL;
    CK_OK(tu_replica_create(&a, dir, "front", &opts, NULL));
    /* a relay's provisioning opened as a workstation, and the other way round */
    CK_RC(relay_create(&r, dir, "cloud", a, 0), REP_EROLE);
    ck_assert_ptr_null(r);
    char made[TU_PATH_MAX];
    CK_OK(tu_path(made, dir, "cloud"));
    ck_assert_int_ne(access(made, F_OK), 0); /* nothing left behind */
    uint8_t *prov = NULL;
    size_t provn = 0;
    char path[TU_PATH_MAX];
    CK_OK(rep_replica_provision(a, "desk", "member", &prov, &provn));
    CK_OK(tu_path(path, dir, "desk"));
    rep_open_opts_t mo = {.flags = REP_OPEN_CREATE | REP_OPEN_NOSYNC | REP_OPEN_RELAY,
                          .provision = prov, .provision_len = provn};
    CK_RC(rep_replica_open(&r, path, &mo), REP_EROLE);
    rep_free(prov);
    /* as asked */
    CK_OK(relay_create(&r, dir, "cloud2", a, REP_OPEN_RELAY));
    rep_info_t *i = info(r);
    ck_assert_int_eq(i->relay, 1);
    rep_info_free(&i);
    i = info(a);
    ck_assert_int_eq(i->relay, 0);
    rep_info_free(&i);
    /* listed with its role */
    rep_devices_t *d = NULL;
    CK_OK(rep_replica_devices(a, &d));
    int seen = 0;
    for (size_t k = 0; k < d->n; k++)
        if (strcmp(d->items[k].name, "cloud2") == 0) {
            ck_assert_str_eq(d->items[k].role, "relay");
            seen = 1;
        }
    ck_assert_int_eq(seen, 1);
    rep_devices_free(&d);
    /* it cannot write, nor make a snapshot */
    rep_txn_t *t = NULL;
    CK_OK(rep_txn_begin(r, "cloud", &t));
    CK_OK(rep_txn_set_str(t, "appts/1", "who", "x"));
    CK_RC(rep_txn_commit(t, NULL), REP_EROLE);
    rep_txn_free(&t);
    uint8_t *snap = NULL;
    size_t snapn = 0;
    CK_RC(rep_replica_snapshot(r, &snap, &snapn), REP_EROLE);
    ck_assert_ptr_null(snap);
    /* a relay cannot enroll anyone either */
    CK_RC(rep_replica_provision(r, "x", "member", &prov, &provn), -EPERM);
    rep_replica_close(&r);
    rep_replica_close(&a);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Changes go through the relay from one side to the other, blind. */
START_TEST(test_relay_carries_blind)
{
    office_t o;
    office_open(&o);
    ck_put_str(o.a, "patients/p1", "name", "Ada Lovelace-Relaytest");
    ck_put_str(o.a, "patients/p1", "phone", "555-0100-relaytest");
    ck_put_str(o.b, "msgs/m1", "text", "call back about refill relaytest");
    rep_import_stats_t st;
    /* both sides to the relay (it asks them with its vv; they answer with changes) */
    CK_OK(pass(o.a, o.relay, &st));
    ck_assert_uint_eq(st.applied, 2);
    CK_OK(pass(o.b, o.relay, &st));
    ck_assert_uint_eq(st.applied, 1);
    rep_info_t *i = info(o.relay);
    ck_assert_uint_eq(i->changes, 3);
    ck_assert_uint_eq(i->records, 0); /* it holds them sealed, nothing as state */
    rep_info_free(&i);
    rep_value_t *v = NULL;
    CK_RC(rep_replica_get(o.relay, "patients/p1", "name", &v), REP_ENOTFOUND);
    /* and passes them on: each side gets the other's */
    CK_OK(pass(o.relay, o.b, &st));
    ck_assert_uint_eq(st.applied, 2);
    CK_OK(pass(o.relay, o.a, &st));
    ck_assert_uint_eq(st.applied, 1);
    ck_assert(ck_has_str(o.b, "patients/p1", "name", "Ada Lovelace-Relaytest"));
    ck_assert(ck_has_str(o.a, "msgs/m1", "text", "call back about refill relaytest"));
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(o.a, da));
    CK_OK(rep_replica_digest(o.b, db));
    ck_assert_mem_eq(da, db, sizeof da);
    /* again: nothing new, every change a duplicate */
    CK_OK(pass(o.a, o.relay, &st));
    ck_assert_uint_eq(st.applied, 0);
    /* its file holds none of the plaintext; the workstations' do */
    rep_replica_close(&o.relay);
    ck_assert(!dir_contains(o.dir, "cloud", "Lovelace-Relaytest"));
    ck_assert(!dir_contains(o.dir, "cloud", "555-0100-relaytest"));
    ck_assert(!dir_contains(o.dir, "cloud", "refill relaytest"));
    ck_assert(!dir_contains(o.dir, "cloud", "patients"));
    rep_replica_close(&o.a);
    ck_assert(dir_contains(o.dir, "front", "Lovelace-Relaytest"));
    office_close(&o);
}
END_TEST

/* A relay cannot take state: a snapshot is refused whole, and what it answers is changes. */
START_TEST(test_relay_no_state)
{
    office_t o;
    office_open(&o);
    for (int k = 0; k < 50; k++) {
        char key[32];
        snprintf(key, sizeof key, "appts/%02d", k);
        ck_put_str(o.a, key, "reason", "checkup");
    }
    uint8_t *snap = NULL;
    size_t snapn = 0;
    CK_OK(rep_replica_snapshot(o.a, &snap, &snapn));
    rep_import_stats_t st;
    CK_RC(rep_replica_import(o.relay, snap, snapn, &st), REP_EKEY);
    rep_free(snap);
    rep_info_t *i = info(o.relay);
    ck_assert_uint_eq(i->changes, 0);
    ck_assert_uint_eq(i->refused, 1);
    rep_info_free(&i);
    CK_OK(pass(o.a, o.relay, &st));
    ck_assert_uint_eq(st.applied, 50);
    /* B is empty: an answer for it from A would be a snapshot; from the relay it is changes */
    CK_OK(pass(o.relay, o.b, &st));
    ck_assert_uint_eq(st.applied, 50);
    ck_assert(ck_has_str(o.b, "appts/49", "reason", "checkup"));
    office_close(&o);
}
END_TEST

/* Revocations reach the relay: the revoked device's late changes are dropped there too, and
 * the new epoch's key is boxed to no relay. A relay can itself be revoked. */
START_TEST(test_relay_revocation)
{
    office_t o;
    office_open(&o);
    ck_put_str(o.b, "msgs/1", "text", "before");
    rep_import_stats_t st;
    CK_OK(pass(o.b, o.relay, &st));
    CK_OK(pass(o.b, o.a, &st));
    CK_OK(rep_replica_revoke(o.a, "branch", NULL, NULL));
    ck_put_str(o.b, "msgs/2", "text", "after the revocation"); /* B has not heard yet */
    CK_OK(pass(o.b, o.relay, &st));
    ck_assert_uint_eq(st.applied, 1);
    /* the REMOVE reaches the relay: the late change goes */
    CK_OK(pass(o.a, o.relay, &st));
    ck_assert_uint_eq(st.members, 1);
    ck_assert_uint_eq(st.rebuilt, 1);
    rep_info_t *i = info(o.relay);
    ck_assert_uint_eq(i->changes, 1);
    rep_info_free(&i);
    /* writes of the new epoch still pass through, and the admin reads them after the trip */
    ck_put_str(o.a, "msgs/3", "text", "new epoch");
    CK_OK(pass(o.a, o.relay, &st));
    ck_assert_uint_eq(st.applied, 1);
    CK_RC(pass(o.relay, o.b, &st), REP_EKEY); /* B was revoked: it cannot open epoch 2 */
    /* a relay revoked: no longer a device of the office (ZAP refuses it), and the REMOVE
     * boxes no key to anyone who is not a keyed member */
    CK_OK(rep_replica_revoke(o.a, "cloud", NULL, NULL));
    rep_devices_t *d = NULL;
    CK_OK(rep_replica_devices(o.a, &d));
    for (size_t k = 0; k < d->n; k++)
        ck_assert_str_ne(d->items[k].name, "cloud");
    rep_devices_free(&d);
    CK_OK(pass(o.a, o.relay, &st)); /* it takes the REMOVE of itself */
    ck_assert_uint_eq(st.members, 1);
    office_close(&o);
}
END_TEST

/* ---- The sync engine with a relay peer ---- */
#define WS_PEER    1u /* the workstation, at the relay's engine */
#define RELAY_PEER 2u /* the relay, at the workstation's engine */

/* Carry what the engines ws and rl send each other at this instant (no loss), until nothing is
 * left or limit messages were delivered; *data counts the DATAs ws sent. Returns how many
 * were delivered. */
static int
engines_run(rep__sync_t *ws, rep__sync_t *rl, uint64_t now, int limit, int *data)
{
    int delivered = 0;
    for (bool any = true; any && delivered < limit;) {
        any = false;
        rep__sync_t *from[2] = {ws, rl}, *to[2] = {rl, ws};
        uint32_t as[2] = {WS_PEER, RELAY_PEER};
        for (int e = 0; e < 2 && delivered < limit; e++) {
            uint32_t peer;
            uint8_t *p;
            size_t n;
            while (delivered < limit && rep__sync_take(from[e], &peer, &p, &n) == 1) {
                /* [version, type, ...]: a fixarray, a positive fixint, the type */
                if (e == 0 && n > 2 && p[2] == REP_SYNC_DATA)
                    (*data)++;
                CK_OK(rep__sync_received(to[e], as[e], p, n, now));
                free(p);
                delivered++;
                any = true;
            }
        }
    }
    return delivered;
}

/* A workstation's own change that depends on changes it holds only as state goes to the relay,
 * which cannot have those from it (they are not in its log): the change waits there and the
 * relay asks for what it lacks. The workstation has nothing more to send: it must not answer
 * each ask with the same DATA again (a storm at one instant, until the changes come from
 * elsewhere); it tries again once per anti-entropy period, and the change is released when its
 * dependency comes from its author. */
START_TEST(test_relay_waits_without_storm)
{
    office_t o;
    office_open(&o);
    ck_put_str(o.a, "appts/1", "reason", "checkup");
    uint8_t *snap = NULL;
    size_t snapn = 0;
    CK_OK(rep_replica_snapshot(o.a, &snap, &snapn));
    CK_OK(rep_replica_import(o.b, snap, snapn, NULL)); /* B holds A's change as state */
    rep_free(snap);
    ck_put_str(o.b, "appts/2", "reason", "follow-up"); /* which B's change depends on */
    rep__sync_opts_t opts;
    rep__sync_opts_default(&opts);
    opts.anti_entropy_ms = 1000;
    rep__sync_t *ws = NULL, *rl = NULL;
    CK_OK(rep__sync_new(o.b, &opts, &ws));
    CK_OK(rep__sync_new(o.relay, &opts, &rl));
    uint64_t now = 1000000, next;
    CK_OK(rep__sync_connected(ws, RELAY_PEER, now));
    rep__sync_relay(ws, RELAY_PEER, true);
    CK_OK(rep__sync_connected(rl, WS_PEER, now));
    CK_OK(rep__sync_tick(ws, now, &next));
    CK_OK(rep__sync_tick(rl, now, &next));
    int data = 0;
    ck_assert_int_lt(engines_run(ws, rl, now, 500, &data), 500); /* it ends */
    ck_assert_int_ge(data, 1);
    ck_assert_int_le(data, 2);
    rep_info_t *i = info(o.relay);
    ck_assert_uint_eq(i->changes, 0);
    ck_assert_uint_eq(i->pending, 1); /* B's own change, waiting for A's */
    rep_info_free(&i);
    /* a period later: once more, no more */
    now += opts.anti_entropy_ms;
    data = 0;
    CK_OK(rep__sync_tick(ws, now, &next));
    CK_OK(rep__sync_tick(rl, now, &next));
    ck_assert_int_lt(engines_run(ws, rl, now, 500, &data), 500);
    ck_assert_int_le(data, 1);
    /* A's change comes from A: B's is released */
    rep_import_stats_t st;
    CK_OK(pass(o.a, o.relay, &st));
    ck_assert_uint_eq(st.applied, 2);
    i = info(o.relay);
    ck_assert_uint_eq(i->pending, 0);
    ck_assert_uint_eq(i->records, 0);
    rep_info_free(&i);
    rep__sync_free(&ws);
    rep__sync_free(&rl);
    office_close(&o);
}
END_TEST

static Suite *
relay_suite(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("relay");
    tcase_add_checked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_relay_enroll);
    tcase_add_test(tc, test_relay_carries_blind);
    tcase_add_test(tc, test_relay_no_state);
    tcase_add_test(tc, test_relay_revocation);
    tcase_add_test(tc, test_relay_waits_without_storm);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(relay_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
