/* check_replica.c — the public facade: open, transactions, reads, history, many writers. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "replica.h"
#include "checkutil.h"

static rep_replica_t *
fresh(const char *sub, tu_clock_t *clock)
{
    rep_open_opts_t o = {0};
    o.flags = REP_OPEN_NOSYNC;
    o.office_name = "Riverside";
    o.device_name = sub;
    if (clock)
        tu_clock_use(clock, &o);
    rep_replica_t *r;
    CK_OK(tu_replica_create(&r, g_root, sub, &o, NULL));
    return r;
}

static void
commit(rep_txn_t **t)
{
    CK_OK(rep_txn_commit(*t, NULL));
    rep_txn_free(t);
}

START_TEST(test_create_reopen_info)
{
    rep_replica_t *r = fresh("a", NULL);
    rep_info_t *i1, *i2;
    CK_OK(rep_replica_info(r, &i1));
    ck_assert_str_eq(i1->office_name, "Riverside");
    ck_assert_str_eq(i1->device_name, "a");
    ck_assert_uint_ne(i1->actor, 0);
    ck_assert_uint_eq(i1->incarnation, 0);
    ck_assert_uint_eq(i1->seq, 0);
    ck_assert_uint_eq(i1->changes, 0);

    rep_txn_t *t;
    CK_OK(rep_txn_begin(r, "maria", &t));
    CK_OK(rep_txn_set_str(t, "patients/8812", "name", "Ada Lovelace"));
    commit(&t);
    rep_replica_close(&r);
    ck_assert_ptr_null(r);
    rep_replica_close(&r); /* NULL is fine */

    CK_OK(tu_replica_reopen(&r, g_root, "a", NULL));
    CK_OK(rep_replica_info(r, &i2));
    ck_assert_mem_eq(i1->office_id, i2->office_id, REP_OFFICE_ID_BYTES);
    ck_assert_uint_eq(i1->actor, i2->actor);
    ck_assert_uint_eq(i2->seq, 1);
    ck_assert_uint_eq(i2->changes, 1);
    ck_assert_uint_eq(i2->records, 1);
    ck_assert_uint_eq(i2->nvv, 1);
    ck_assert_uint_eq(i2->vv[0].actor, i2->actor);
    ck_assert_uint_eq(i2->vv[0].seq, 1);
    rep_value_t *v;
    CK_OK(rep_replica_get(r, "patients/8812", "name", &v));
    ck_assert_str_eq(v->u.s.ptr, "Ada Lovelace");
    rep_value_free(&v);
    ck_assert_ptr_null(v);
    rep_info_free(&i1);
    rep_info_free(&i2);
    rep_replica_close(&r);
}
END_TEST

START_TEST(test_every_type_round_trips)
{
    rep_replica_t *r = fresh("a", NULL);
    rep_txn_t *t;
    const uint8_t blob[] = {0, 1, 2, 0xff};
    CK_OK(rep_txn_begin(r, NULL, &t));
    CK_OK(rep_txn_set_null(t, "c/r", "n"));
    CK_OK(rep_txn_set_bool(t, "c/r", "b", 1));
    CK_OK(rep_txn_set_int(t, "c/r", "i", -1234567890123LL));
    CK_OK(rep_txn_set_double(t, "c/r", "d", 2.5));
    CK_OK(rep_txn_set_str(t, "c/r", "s", "héllo"));
    CK_OK(rep_txn_set_bytes(t, "c/r", "y", blob, sizeof blob));
    commit(&t);

    rep_value_t *v;
    CK_OK(rep_replica_get(r, "c/r", "n", &v));
    ck_assert_int_eq(v->type, REP_NULL);
    rep_value_free(&v);
    CK_OK(rep_replica_get(r, "c/r", "b", &v));
    ck_assert_int_eq(v->type, REP_BOOL);
    ck_assert_int_eq(v->u.b, 1);
    rep_value_free(&v);
    CK_OK(rep_replica_get(r, "c/r", "i", &v));
    ck_assert_int_eq(v->type, REP_INT);
    ck_assert(v->u.i == -1234567890123LL);
    rep_value_free(&v);
    CK_OK(rep_replica_get(r, "c/r", "d", &v));
    ck_assert_int_eq(v->type, REP_DOUBLE);
    ck_assert(v->u.d == 2.5);
    rep_value_free(&v);
    CK_OK(rep_replica_get(r, "c/r", "s", &v));
    ck_assert_int_eq(v->type, REP_STRING);
    ck_assert_str_eq(v->u.s.ptr, "héllo");
    ck_assert_uint_eq(v->u.s.len, strlen("héllo"));
    rep_value_free(&v);
    CK_OK(rep_replica_get(r, "c/r", "y", &v));
    ck_assert_int_eq(v->type, REP_BYTES);
    ck_assert_uint_eq(v->u.s.len, sizeof blob);
    ck_assert_mem_eq(v->u.s.ptr, blob, sizeof blob);
    rep_value_free(&v);

    rep_record_t *rec;
    CK_OK(rep_replica_get_record(r, "c/r", &rec));
    ck_assert_str_eq(rec->key, "c/r");
    ck_assert_uint_eq(rec->nfields, 6);
    const char *names[] = {"b", "d", "i", "n", "s", "y"}; /* name order */
    for (size_t i = 0; i < 6; i++) {
        ck_assert_str_eq(rec->fields[i].name, names[i]);
        ck_assert_uint_eq(rec->fields[i].siblings, 1);
        ck_assert_int_eq(rec->fields[i].kind, REP_KIND_REGISTER);
    }
    ck_assert_int_eq(rec->delete_conflict, 0);
    rep_record_free(&rec);
    rep_replica_close(&r);
}
END_TEST

START_TEST(test_txn_semantics)
{
    rep_replica_t *r = fresh("a", NULL);
    rep_txn_t *t;
    uint64_t seq;

    /* an empty transaction commits nothing */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, 0);
    ck_assert_int_eq(rep_txn_commit(t, &seq), REP_EDONE);
    ck_assert_int_eq(rep_txn_set_int(t, "c/r", "f", 1), REP_EDONE);
    rep_txn_free(&t);
    ck_assert_ptr_null(t);

    /* the last write of a field in one transaction wins; seq counts commits */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_set_int(t, "c/r", "f", 1));
    CK_OK(rep_txn_set_int(t, "c/r", "f", 2));
    CK_OK(rep_txn_set_int(t, "c/r", "g", 3));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, 1);
    rep_txn_free(&t);
    rep_value_t *v;
    CK_OK(rep_replica_get(r, "c/r", "f", &v));
    ck_assert(v->u.i == 2);
    rep_value_free(&v);
    rep_conflicts_t *c;
    CK_OK(rep_replica_conflicts(r, NULL, &c));
    ck_assert_uint_eq(c->n, 0); /* own later write supersedes: no conflict */
    rep_conflicts_free(&c);

    /* aborted writes vanish */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_set_int(t, "c/r", "f", 99));
    rep_txn_abort(t);
    ck_assert_int_eq(rep_txn_commit(t, NULL), REP_EDONE);
    rep_txn_free(&t);
    CK_OK(rep_replica_get(r, "c/r", "f", &v));
    ck_assert(v->u.i == 2);
    rep_value_free(&v);

    /* delete a field */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_del_field(t, "c/r", "g"));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, 2);
    rep_txn_free(&t);
    ck_assert_int_eq(rep_replica_get(r, "c/r", "g", &v), REP_ENOTFOUND);
    ck_assert_ptr_null(v);

    /* delete the record, then write it again in the same transaction: only new fields */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_set_int(t, "c/r", "h", 5)); /* dropped by the delete that follows */
    CK_OK(rep_txn_del_record(t, "c/r"));
    CK_OK(rep_txn_set_int(t, "c/r", "k", 7));
    commit(&t);
    rep_record_t *rec;
    CK_OK(rep_replica_get_record(r, "c/r", &rec));
    ck_assert_uint_eq(rec->nfields, 1);
    ck_assert_str_eq(rec->fields[0].name, "k");
    rep_record_free(&rec);

    /* delete the record for good */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_del_record(t, "c/r"));
    commit(&t);
    ck_assert_int_eq(rep_replica_get_record(r, "c/r", &rec), REP_ENOTFOUND);
    ck_assert_int_eq(rep_replica_get(r, "c/r", "k", &v), REP_ENOTFOUND);
    rep_list_t *l;
    CK_OK(rep_replica_list(r, "c", NULL, 0, &l));
    ck_assert_uint_eq(l->n, 0);
    rep_list_free(&l);

    /* and bring it back */
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_set_str(t, "c/r", "f", "again"));
    commit(&t);
    CK_OK(rep_replica_get_record(r, "c/r", &rec));
    ck_assert_uint_eq(rec->nfields, 1);
    ck_assert_str_eq(rec->fields[0].value.u.s.ptr, "again");
    rep_record_free(&rec);
    rep_replica_close(&r);
}
END_TEST

/* The longest names the limits allow, through a write, a record delete and a revival. */
START_TEST(test_longest_names)
{
    rep_replica_t *r = fresh("a", NULL);
    char key[REP_MAX_COLLECTION + REP_MAX_RECORD + 2], field[REP_MAX_FIELD + 1];
    memset(key, 'c', REP_MAX_COLLECTION);
    key[REP_MAX_COLLECTION] = '/';
    memset(key + REP_MAX_COLLECTION + 1, 'r', REP_MAX_RECORD);
    key[sizeof key - 1] = 0;
    memset(field, 'f', REP_MAX_FIELD);
    field[REP_MAX_FIELD] = 0;
    rep_txn_t *t;
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_set_int(t, key, field, 1));
    commit(&t);
    rep_record_t *rec;
    CK_OK(rep_replica_get_record(r, key, &rec));
    ck_assert_str_eq(rec->fields[0].name, field);
    rep_record_free(&rec);
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_del_record(t, key));
    commit(&t);
    ck_assert_int_eq(rep_replica_get_record(r, key, &rec), REP_ENOTFOUND);
    CK_OK(rep_txn_begin(r, "u", &t));
    CK_OK(rep_txn_set_int(t, key, "other", 2));
    commit(&t);
    CK_OK(rep_replica_get_record(r, key, &rec));
    ck_assert_uint_eq(rec->nfields, 1); /* the deleted field stays deleted */
    ck_assert_str_eq(rec->fields[0].name, "other");
    rep_record_free(&rec);
    rep_replica_close(&r);
}
END_TEST

START_TEST(test_list_order_prefix_limit)
{
    rep_replica_t *r = fresh("a", NULL);
    rep_txn_t *t;
    const char *keys[] = {"appts/2026-11-25-1000-7", "appts/2026-11-24-0900-1",
                          "appts/2026-11-25-0900-3", "appts/2026-11-26-0800-2",
                          "patients/8812", "appts2/x"};
    CK_OK(rep_txn_begin(r, "u", &t));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CK_OK(rep_txn_set_str(t, keys[i], "status", "booked"));
    commit(&t);

    rep_list_t *l;
    CK_OK(rep_replica_list(r, "appts", NULL, 0, &l));
    ck_assert_uint_eq(l->n, 4);
    ck_assert_str_eq(l->records[0].key, "appts/2026-11-24-0900-1");
    ck_assert_str_eq(l->records[1].key, "appts/2026-11-25-0900-3");
    ck_assert_str_eq(l->records[2].key, "appts/2026-11-25-1000-7");
    ck_assert_str_eq(l->records[3].key, "appts/2026-11-26-0800-2");
    rep_list_free(&l);

    CK_OK(rep_replica_list(r, "appts", "2026-11-25", 0, &l));
    ck_assert_uint_eq(l->n, 2);
    ck_assert_str_eq(l->records[0].key, "appts/2026-11-25-0900-3");
    ck_assert_str_eq(l->records[1].key, "appts/2026-11-25-1000-7");
    rep_list_free(&l);

    CK_OK(rep_replica_list(r, "appts", NULL, 3, &l));
    ck_assert_uint_eq(l->n, 3);
    rep_list_free(&l);

    CK_OK(rep_replica_list(r, "nothing", NULL, 0, &l));
    ck_assert_uint_eq(l->n, 0);
    rep_list_free(&l);
    ck_assert_int_eq(rep_replica_list(r, "a/b", NULL, 0, &l), -EINVAL);
    ck_assert_int_eq(rep_replica_list(r, "", NULL, 0, &l), -EINVAL);
    rep_replica_close(&r);
}
END_TEST

START_TEST(test_history_and_clock)
{
    tu_clock_t clock;
    tu_clock_set(&clock, 1764000000000ull);
    rep_replica_t *r = fresh("a", &clock);
    rep_txn_t *t;
    CK_OK(rep_txn_begin(r, "maria", &t));
    CK_OK(rep_txn_set_str(t, "patients/1", "phone", "555-0101"));
    CK_OK(rep_txn_set_str(t, "patients/2", "phone", "555-0202"));
    commit(&t);
    tu_clock_set(&clock, 1764000000000ull - 3600 * 1000); /* the wall clock jumps back an hour */
    CK_OK(rep_txn_begin(r, "jon", &t));
    CK_OK(rep_txn_set_str(t, "patients/1", "phone", "555-0199"));
    commit(&t);
    tu_clock_advance(&clock, 7200 * 1000);
    CK_OK(rep_txn_begin(r, "maria", &t));
    CK_OK(rep_txn_del_record(t, "patients/1"));
    commit(&t);

    rep_history_t *h;
    CK_OK(rep_replica_history(r, "patients/1", &h));
    ck_assert_uint_eq(h->n, 3);
    ck_assert_str_eq(h->changes[0].user, "maria");
    ck_assert_str_eq(h->changes[1].user, "jon");
    ck_assert_str_eq(h->changes[2].user, "maria");
    /* the clock never goes backwards, even when the wall clock does */
    ck_assert_uint_eq(h->changes[0].hlc >> 16, 1764000000000ull);
    ck_assert_uint_gt(h->changes[1].hlc, h->changes[0].hlc);
    ck_assert_uint_eq(h->changes[2].hlc >> 16, 1764000000000ull + 3600 * 1000);
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_eq(h->changes[i].seq, i + 1);
    /* only this record's ops: the phone and the existence register */
    ck_assert_uint_eq(h->changes[0].nops, 2);
    int saw_phone = 0;
    for (size_t i = 0; i < h->changes[0].nops; i++)
        if (strcmp(h->changes[0].ops[i].field, "phone") == 0) {
            saw_phone = 1;
            ck_assert_int_eq(h->changes[0].ops[i].type, REP_OP_SET);
            ck_assert_str_eq(h->changes[0].ops[i].value.u.s.ptr, "555-0101");
        }
    ck_assert(saw_phone);
    ck_assert_int_eq(h->changes[2].ops[0].type, REP_OP_CLEAR);
    rep_history_free(&h);
    ck_assert_ptr_null(h);

    CK_OK(rep_replica_history(r, "patients/404", &h));
    ck_assert_uint_eq(h->n, 0);
    rep_history_free(&h);
    rep_replica_close(&r);
}
END_TEST

/* Many processes writing one replica at once: seq and clock advance inside the write
 * transaction, so no two commits share a change number and none is lost. */
START_TEST(test_many_processes_one_replica)
{
    enum { PROCS = 4, COMMITS = 40 };
    rep_replica_t *r = fresh("shared", NULL);
    rep_replica_close(&r);
    char dir[TU_PATH_MAX];
    CK_OK(tu_path(dir, g_root, "shared"));
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            rep_replica_t *c;
            rep_open_opts_t o = {.flags = REP_OPEN_NOSYNC};
            if (rep_replica_open(&c, dir, &o) != 0)
                _exit(2);
            for (int i = 0; i < COMMITS; i++) {
                rep_txn_t *t;
                char key[64];
                snprintf(key, sizeof key, "w/p%d-%d", p, i);
                if (rep_txn_begin(c, "proc", &t) || rep_txn_set_int(t, key, "i", i) ||
                    rep_txn_commit(t, NULL))
                    _exit(3);
                rep_txn_free(&t);
            }
            rep_replica_close(&c);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st;
        ck_assert_int_eq(waitpid(pids[p], &st, 0), pids[p]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed: %d", p, st);
    }
    CK_OK(tu_replica_reopen(&r, g_root, "shared", NULL));
    rep_info_t *info;
    CK_OK(rep_replica_info(r, &info));
    ck_assert_uint_eq(info->seq, PROCS * COMMITS);
    ck_assert_uint_eq(info->changes, PROCS * COMMITS);
    ck_assert_uint_eq(info->records, PROCS * COMMITS);
    rep_info_free(&info);
    rep_replica_close(&r);
}
END_TEST

START_TEST(test_strerror_and_version)
{
    ck_assert_str_eq(rep_version(), REP_VERSION_STRING);
    for (int rc = REP_ERROR_BASE; rc >= REP_ERROR_LAST; rc--)
        ck_assert_str_ne(rep_strerror(rc), "unknown error");
    ck_assert_str_eq(rep_strerror(-ENOMEM), strerror(ENOMEM));
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("replica");
    TCase *tc = tcase_create("facade");
    tcase_add_checked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_reopen_info);
    tcase_add_test(tc, test_every_type_round_trips);
    tcase_add_test(tc, test_txn_semantics);
    tcase_add_test(tc, test_longest_names);
    tcase_add_test(tc, test_list_order_prefix_limit);
    tcase_add_test(tc, test_history_and_clock);
    tcase_add_test(tc, test_many_processes_one_replica);
    tcase_add_test(tc, test_strerror_and_version);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
