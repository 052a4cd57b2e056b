/*
 * check_revoke.c — revoking a device (rep_replica_revoke, DESIGN.md "Security"): the REMOVE
 * entry with its cutoff, the office key rotated to a new epoch boxed to the remaining members,
 * and, wherever the entry arrives, the device's later changes refused (also when relayed or
 * imported from a file), a replica that had applied some rebuilt without them, dependencies
 * on them capped at the cutoff, and nothing sealed from then on readable by the device.
 *
 * Real replicas in LMDB, in one process; changes travel as the batches rep_replica_export
 * makes, as they would over the network or on a USB stick.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkutil.h"
#include "replica.h"

#define MAXR 5

typedef struct office {
    char *dir;
    rep_replica_t *r[MAXR];
    int n;
} office_t;

/* r[0] founds the office (admin); the others are members it enrolled, and know each other. */
static void
office_open(office_t *o, int n)
{
    memset(o, 0, sizeof *o);
    o->dir = tu_tmpdir_in(g_root);
    ck_assert_ptr_nonnull(o->dir);
    for (int i = 0; i < n; i++) {
        rep_open_opts_t opts = {.flags = REP_OPEN_NOSYNC, .device_name = "admin"};
        char sub[16];
        snprintf(sub, sizeof sub, "ws%d", i);
        CK_OK(tu_replica_create(&o->r[i], o->dir, sub, &opts, i ? o->r[0] : NULL));
    }
    o->n = n;
    for (int i = 1; i < n; i++)
        CK_OK(tu_members_share(o->r[0], o->r[i]));
}

static void
office_close(office_t *o)
{
    for (int i = 0; i < o->n; i++)
        rep_replica_close(&o->r[i]);
    tu_rmtree(o->dir);
    free(o->dir);
}


/* What from has that to lacks, as a batch (or snapshot: catchup). */
static uint8_t *
batch_for(rep_replica_t *from, rep_replica_t *to, size_t *n)
{
    uint8_t *vv = NULL, *b = NULL;
    size_t vvn = 0;
    CK_OK(rep_replica_vv(to, &vv, &vvn));
    CK_OK(rep_replica_export(from, vv, vvn, 0, &b, n, NULL));
    rep_free(vv);
    return b;
}

/* from -> to; returns the import's code, stats in *st. */
static int
sync_to(rep_replica_t *from, rep_replica_t *to, rep_import_stats_t *st)
{
    size_t n;
    uint8_t *b = batch_for(from, to, &n);
    rep_import_stats_t s;
    int rc = rep_replica_import(to, b, n, &s);
    rep_free(b);
    if (st)
        *st = s;
    return rc;
}


static size_t
ndevices(rep_replica_t *r)
{
    rep_devices_t *d = NULL;
    CK_OK(rep_replica_devices(r, &d));
    size_t n = d->n;
    rep_devices_free(&d);
    return n;
}

static void
same_digest(rep_replica_t *a, rep_replica_t *b, const char *what)
{
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(a, da));
    CK_OK(rep_replica_digest(b, db));
    ck_assert_msg(memcmp(da, db, sizeof da) == 0, "%s: digests differ", what);
}

/* Who may revoke whom. */
START_TEST(test_revoke_rules)
{
    office_t o;
    office_open(&o, 3);
    char id[REP_DEVICE_ID_SIZE];
    CK_RC(rep_replica_revoke(o.r[1], "ws2", NULL, NULL), -EPERM); /* a member */
    CK_RC(rep_replica_revoke(o.r[0], "nobody", NULL, NULL), REP_ENOTFOUND);
    CK_RC(rep_replica_revoke(o.r[0], "admin", NULL, NULL), -EINVAL); /* itself */
    uint64_t kept = 99;
    CK_OK(rep_replica_revoke(o.r[0], "ws2", id, &kept));
    ck_assert_uint_eq(kept, 0);
    ck_assert_uint_eq(strlen(id), REP_DEVICE_ID_SIZE - 1);
    CK_RC(rep_replica_revoke(o.r[0], id, NULL, NULL), REP_ENOTFOUND); /* gone already */
    ck_assert_uint_eq(ndevices(o.r[0]), 2);
    /* the entry reaches the others with anything the admin sends */
    rep_import_stats_t st;
    CK_OK(sync_to(o.r[0], o.r[1], &st));
    ck_assert_uint_eq(st.members, 1);
    ck_assert_uint_eq(ndevices(o.r[1]), 2);
    /* its name is free again: a replacement workstation */
    uint8_t *prov = NULL;
    size_t provn = 0;
    CK_OK(rep_replica_provision(o.r[0], "ws2", "member", &prov, &provn));
    rep_free(prov);
    ck_assert_uint_eq(ndevices(o.r[0]), 3);
    office_close(&o);
}
END_TEST

/* After the rotation, the revoked device can read nothing new; the others can. */
START_TEST(test_rotation_locks_the_device_out)
{
    office_t o;
    office_open(&o, 3);
    ck_put_str(o.r[0], "p/1", "name", "Ann");
    CK_OK(sync_to(o.r[0], o.r[2], NULL));
    ck_assert(ck_has_str(o.r[2], "p/1", "name", "Ann"));
    CK_OK(rep_replica_revoke(o.r[0], "ws2", NULL, NULL));
    ck_put_str(o.r[0], "p/1", "phone", "555-0101"); /* sealed under the new epoch's key */
    /* the stolen laptop gets it anyway (a copied bundle): it cannot open it */
    size_t n;
    uint8_t *b = batch_for(o.r[0], o.r[2], &n);
    rep_import_stats_t st;
    int rc = rep_replica_import(o.r[2], b, n, &st);
    ck_assert_msg(rc == REP_EKEY || rc == REP_EAUTH, "import = %d (%s)", rc, rep_strerror(rc));
    ck_assert(!ck_has_str(o.r[2], "p/1", "phone", "555-0101"));
    rep_free(b);
    /* a remaining member reads it: checked first (the revocation in the same batch brings the
     * key), then imported */
    b = batch_for(o.r[0], o.r[1], &n);
    CK_OK(rep_replica_verify(o.r[1], b, n, &st));
    ck_assert_uint_eq(st.members, 1);
    ck_assert(!ck_has_str(o.r[1], "p/1", "phone", "555-0101")); /* checking applied nothing */
    rep_free(b);
    CK_OK(sync_to(o.r[0], o.r[1], &st));
    ck_assert(ck_has_str(o.r[1], "p/1", "phone", "555-0101"));
    /* and writes under the new key too, which the admin reads */
    ck_put_str(o.r[1], "p/1", "note", "called back");
    CK_OK(sync_to(o.r[1], o.r[0], NULL));
    ck_assert(ck_has_str(o.r[0], "p/1", "note", "called back"));
    same_digest(o.r[0], o.r[1], "after the rotation");
    office_close(&o);
}
END_TEST

/* The device's changes after the cutoff are refused everywhere: imported from its own file,
 * relayed by a member who had them, and undone where they had been applied. */
START_TEST(test_late_changes_refused_and_undone)
{
    office_t o;
    office_open(&o, 4); /* 0 admin, 1 and 2 members, 3 to be revoked */
    ck_put_str(o.r[3], "p/1", "name", "Ann");             /* before the cutoff: stays */
    CK_OK(sync_to(o.r[3], o.r[0], NULL));
    CK_OK(sync_to(o.r[3], o.r[1], NULL));
    ck_put_str(o.r[3], "p/1", "name", "Mallory's edit");  /* after: the admin never sees it */
    ck_put_str(o.r[3], "p/2", "name", "Eve");
    size_t late_n;
    uint8_t *late = batch_for(o.r[3], o.r[2], &late_n); /* its file: all three changes */
    CK_OK(sync_to(o.r[3], o.r[1], NULL)); /* member 1 applies them, not knowing yet */
    ck_assert(ck_has_str(o.r[1], "p/2", "name", "Eve"));
    ck_put_str(o.r[1], "p/2", "phone", "555-0199"); /* member 1 builds on them: deps past the cutoff */

    uint64_t kept;
    CK_OK(rep_replica_revoke(o.r[0], "ws3", NULL, &kept));
    ck_assert_uint_eq(kept, 1);

    /* member 2 knows of the revocation, then gets the device's file: the first change applies,
     * the two late ones are refused */
    rep_import_stats_t st;
    CK_OK(sync_to(o.r[0], o.r[2], &st));
    CK_OK(rep_replica_import(o.r[2], late, late_n, &st));
    ck_assert_uint_eq(st.revoked, 2);
    ck_assert(ck_has_str(o.r[2], "p/1", "name", "Ann"));
    ck_assert(!ck_has_str(o.r[2], "p/2", "name", "Eve"));
    rep_free(late);

    /* member 1 gets the revocation: it rebuilds without the late changes, keeping its own */
    CK_OK(sync_to(o.r[0], o.r[1], &st));
    ck_assert_uint_eq(st.rebuilt, 1);
    ck_assert(ck_has_str(o.r[1], "p/1", "name", "Ann"));
    ck_assert(!ck_has_str(o.r[1], "p/2", "name", "Eve"));
    ck_assert(ck_has_str(o.r[1], "p/2", "phone", "555-0199"));
    /* it no longer relays them; its own change, which saw them, still applies elsewhere */
    CK_OK(sync_to(o.r[1], o.r[2], &st));
    ck_assert_uint_eq(st.revoked, 0);
    ck_assert(ck_has_str(o.r[2], "p/2", "phone", "555-0199"));
    ck_assert_uint_eq(st.pending, 0);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    CK_OK(sync_to(o.r[i], o.r[j], NULL));
    same_digest(o.r[0], o.r[1], "admin and member 1");
    same_digest(o.r[0], o.r[2], "admin and member 2");
    ck_assert(!ck_has_str(o.r[0], "p/1", "name", "Mallory's edit"));
    office_close(&o);
}
END_TEST

/* An epoch rotation in the middle of heavy writes: every remaining replica converges, and no
 * change of a remaining member is lost. */
START_TEST(test_rotation_during_heavy_writes)
{
    office_t o;
    office_open(&o, 5);
    tu_rng_t rng;
    tu_rng_seed(&rng, tu_seed(0x7e70c));
    int writes[MAXR] = {0};
    for (int step = 0; step < 400; step++) {
        if (step == 200)
            CK_OK(rep_replica_revoke(o.r[0], "ws4", NULL, NULL));
        int a = (int)tu_rng_below(&rng, MAXR), b = (int)tu_rng_below(&rng, MAXR);
        if (tu_rng_chance(&rng, 60)) {
            char key[16], val[32];
            snprintf(key, sizeof key, "p/%d", (int)tu_rng_below(&rng, 20));
            snprintf(val, sizeof val, "ws%d-%d", a, writes[a]);
            rep_txn_t *t = NULL;
            int rc = rep_txn_begin(o.r[a], "staff", &t);
            if (rc == 0 && (rc = rep_txn_set_str(t, key, "v", val)) == 0) {
                char field[24];
                snprintf(field, sizeof field, "ws%d-%d", a, writes[a]);
                CK_OK(rep_txn_add(t, "log/all", "writes", &(rep_value_t){.type = REP_STRING,
                                                                          .u.s = {field, strlen(field)}}));
                rc = rep_txn_commit(t, NULL);
            }
            rep_txn_free(&t);
            /* the revoked device, once it knows, has no key to seal with */
            ck_assert_msg(rc == 0 || (a == 4 && rc == REP_EKEY), "write on %d: %d", a, rc);
            if (rc == 0)
                writes[a]++;
        } else if (a != b) {
            int rc = sync_to(o.r[a], o.r[b], NULL);
            ck_assert_msg(rc == 0 || a == 4 || b == 4 || rc == REP_EKEY,
                          "sync %d->%d: %d (%s)", a, b, rc, rep_strerror(rc));
        }
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                if (i != j)
                    CK_OK(sync_to(o.r[i], o.r[j], NULL));
    for (int i = 1; i < 4; i++)
        same_digest(o.r[0], o.r[i], "after the rotation");
    /* every write of a remaining member is there */
    rep_value_t *v = NULL;
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(o.r[1], "log/all", &rec));
    size_t items = 0;
    for (size_t f = 0; f < rec->nfields; f++)
        if (strcmp(rec->fields[f].name, "writes") == 0)
            items = rec->fields[f].nitems;
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < writes[a]; k++) {
            char field[32];
            snprintf(field, sizeof field, "ws%d-%d", a, k);
            int found = 0;
            for (size_t f = 0; f < rec->nfields && !found; f++)
                for (size_t j = 0; strcmp(rec->fields[f].name, "writes") == 0 &&
                                   j < rec->fields[f].nitems && !found;
                     j++)
                    found = tu_is_str(&rec->fields[f].items[j].value, field);
            ck_assert_msg(found, "write %s was lost", field);
        }
    ck_assert_uint_ge(items, (size_t)(writes[0] + writes[1] + writes[2] + writes[3]));
    rep_record_free(&rec);
    rep_value_free(&v);
    office_close(&o);
}
END_TEST

static Suite *
revoke_suite(void)
{
    Suite *s = suite_create("revoke");
    TCase *tc = tcase_create("revoke");
    tcase_add_checked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_revoke_rules);
    tcase_add_test(tc, test_rotation_locks_the_device_out);
    tcase_add_test(tc, test_late_changes_refused_and_undone);
    tcase_add_test(tc, test_rotation_during_heavy_writes);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(revoke_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
