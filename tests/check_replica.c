/* check_replica.c — the public facade: open, transactions, reads, history, many writers. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- Copies and restores ---------------------------------------------------------------- */

/* Copy file sub/name of g_root to dsub/name (dsub is made if missing). */
static void
copy_file(const char *sub, const char *dsub, const char *name)
{
    char from[TU_PATH_MAX], to[TU_PATH_MAX], dir[TU_PATH_MAX / 2];
    ck_assert_int_lt(snprintf(from, sizeof from, "%s/%s/%s", g_root, sub, name), TU_PATH_MAX);
    ck_assert_int_lt(snprintf(dir, sizeof dir, "%s/%s", g_root, dsub), (int)sizeof dir);
    ck_assert_int_lt(snprintf(to, sizeof to, "%s/%s", dir, name), TU_PATH_MAX);
    mkdir(dir, 0700);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert_msg(in && out, "copy %s -> %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* A replica directory's files, as a backup tool copies them (not the lock file). */
static void
copy_replica(const char *sub, const char *dsub)
{
    copy_file(sub, dsub, "data.mdb");
    copy_file(sub, dsub, "replica.id");
}

static void
write_n(rep_replica_t *r, const char *user, const char *key, int from, int to)
{
    for (int i = from; i < to; i++) {
        rep_txn_t *t;
        CK_OK(rep_txn_begin(r, user, &t));
        CK_OK(rep_txn_set_int(t, key, "n", i));
        commit(&t);
    }
}

/* Everything a lacks from b goes into a; returns the import's stats. */
static rep_import_stats_t
pull(rep_replica_t *a, rep_replica_t *b)
{
    uint8_t *vv, *batch;
    size_t vvn, n;
    rep_import_stats_t st;
    CK_OK(rep_replica_vv(a, &vv, &vvn));
    CK_OK(rep_replica_export(b, vv, vvn, 0, &batch, &n, NULL));
    CK_OK(rep_replica_import(a, batch, n, &st));
    rep_free(vv);
    rep_free(batch);
    return st;
}

static void
assert_same_digest(rep_replica_t *a, rep_replica_t *b)
{
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(a, da));
    CK_OK(rep_replica_digest(b, db));
    ck_assert_mem_eq(da, db, sizeof da);
}

static rep_info_t *
info_of(rep_replica_t *r)
{
    rep_info_t *i;
    CK_OK(rep_replica_info(r, &i));
    return i;
}

/* A copied replica takes a new incarnation (a new actor) before it writes: the original and
 * the copy both write and merge with no fork. */
START_TEST(test_copy_takes_a_new_incarnation)
{
    rep_replica_t *a = fresh("a", NULL);
    write_n(a, "u", "c/r", 0, 3);
    rep_info_t *before = info_of(a);
    rep_replica_close(&a);
    copy_replica("a", "copy");

    CK_OK(tu_replica_reopen(&a, g_root, "a", NULL)); /* the original keeps its identity */
    rep_info_t *ia = info_of(a);
    ck_assert_uint_eq(ia->actor, before->actor);
    ck_assert_uint_eq(ia->incarnation, 0);

    rep_replica_t *c;
    CK_OK(tu_replica_reopen(&c, g_root, "copy", NULL));
    rep_info_t *ic = info_of(c);
    ck_assert_uint_eq(ic->incarnation, 1);
    ck_assert_uint_ne(ic->actor, before->actor);
    ck_assert_uint_eq(ic->changes, 3);
    rep_replica_close(&c); /* reopening the copy keeps its new identity */
    CK_OK(tu_replica_reopen(&c, g_root, "copy", NULL));
    rep_info_t *ic2 = info_of(c);
    ck_assert_uint_eq(ic2->actor, ic->actor);
    ck_assert_uint_eq(ic2->incarnation, 1);

    write_n(a, "orig", "c/r", 10, 13);
    write_n(c, "copy", "c/s", 20, 23);
    rep_import_stats_t s1 = pull(a, c), s2 = pull(c, a);
    ck_assert_uint_eq(s1.forks + s2.forks, 0);
    ck_assert_uint_eq(s1.applied, 3);
    ck_assert_uint_eq(s2.applied, 3);
    assert_same_digest(a, c);
    rep_info_free(&before);
    rep_info_free(&ia);
    rep_info_free(&ic);
    rep_info_free(&ic2);
    rep_replica_close(&a);
    rep_replica_close(&c);
}
END_TEST

/* Yesterday's backup restored (to a new file) writes while offline, then syncs: its writes
 * get a new actor, nothing forks, and the changes it had lost come back from the office. */
START_TEST(test_restore_from_backup_writes_offline)
{
    rep_replica_t *a = fresh("a", NULL), *b = fresh("b", NULL);
    rep_replica_close(&b);
    rep_info_t *ia = info_of(a);
    rep_open_opts_t o = {.flags = REP_OPEN_NOSYNC};
    CK_OK(tu_replica_create(&b, g_root, "b2", &o, a));
    write_n(a, "u", "c/r", 0, 3);
    rep_replica_close(&a);
    copy_replica("a", "backup");

    CK_OK(tu_replica_reopen(&a, g_root, "a", NULL));
    write_n(a, "u", "c/r", 3, 6); /* written, then lost with the disk ... */
    pull(b, a);                   /* ... but b has them */
    rep_replica_close(&a);

    /* the disk dies; the backup is put back into a new directory */
    copy_replica("backup", "restored");
    CK_OK(tu_replica_reopen(&a, g_root, "restored", NULL));
    rep_info_t *ir = info_of(a);
    ck_assert_uint_eq(ir->incarnation, 1);
    ck_assert_uint_ne(ir->actor, ia->actor);
    write_n(a, "u", "c/offline", 0, 2); /* offline, before hearing from anyone */

    rep_import_stats_t s1 = pull(a, b), s2 = pull(b, a);
    ck_assert_uint_eq(s1.forks + s2.forks, 0);
    assert_same_digest(a, b);
    rep_value_t *v;
    CK_OK(rep_replica_get(a, "c/r", "n", &v));
    ck_assert_int_eq(v->u.i, 5); /* the lost writes came back */
    rep_value_free(&v);
    CK_OK(rep_replica_get(b, "c/offline", "n", &v));
    ck_assert_int_eq(v->u.i, 1);
    rep_value_free(&v);
    rep_info_free(&ia);
    rep_info_free(&ir);
    rep_replica_close(&a);
    rep_replica_close(&b);
}
END_TEST

/* A restore the file identity cannot see (the same data file overwritten in place with its
 * own old identity file) forks its actor if it writes first; the office detects the fork on
 * arrival, rejects it, and reports it; nothing is applied. */
START_TEST(test_fork_is_detected_on_arrival)
{
    rep_replica_t *a = fresh("a", NULL), *b;
    rep_info_t *ia = info_of(a);
    rep_open_opts_t o = {.flags = REP_OPEN_NOSYNC};
    CK_OK(tu_replica_create(&b, g_root, "b", &o, a));
    write_n(a, "u", "c/r", 0, 2);
    rep_replica_close(&a);
    copy_replica("a", "backup");
    CK_OK(tu_replica_reopen(&a, g_root, "a", NULL));
    write_n(a, "u", "c/r", 2, 4);
    pull(b, a);
    rep_replica_close(&a);

    /* overwrite a's files in place with the backup's bytes (same inode, same nonce) */
    copy_file("backup", "a", "data.mdb");
    copy_file("backup", "a", "replica.id");
    CK_OK(tu_replica_reopen(&a, g_root, "a", NULL));
    rep_info_t *ia2 = info_of(a);
    ck_assert_uint_eq(ia2->actor, ia->actor); /* undetectable here */
    write_n(a, "u", "c/r", 100, 103);         /* seq 3, 4, 5 again, other content */

    /* b has seq 1-4 of the original: seq 5 of the fork does not continue its chain */
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(b, before));
    rep_import_stats_t st = pull(b, a);
    ck_assert_uint_eq(st.changes, 1);
    ck_assert_uint_eq(st.forks, 1);
    ck_assert_uint_eq(st.applied, 0);
    CK_OK(rep_replica_digest(b, after));
    ck_assert_mem_eq(before, after, sizeof before);
    rep_info_t *ib = info_of(b); /* and reported, durably */
    ck_assert_uint_eq(ib->nforked, 1);
    ck_assert_uint_eq(ib->forked[0].actor, ia->actor);
    ck_assert_uint_eq(ib->forked[0].seq, 5);
    rep_info_free(&ib);

    /* and a, sent all of b's changes, finds the original's seq 3 and 4 under its own */
    uint8_t *batch;
    size_t n;
    CK_OK(rep_replica_digest(a, before));
    CK_OK(rep_replica_export(b, NULL, 0, 0, &batch, &n, NULL));
    CK_OK(rep_replica_import(a, batch, n, &st));
    rep_free(batch);
    ck_assert_uint_eq(st.forks, 2);
    ck_assert_uint_eq(st.duplicates, 2);
    ck_assert_uint_eq(st.applied, 0);
    CK_OK(rep_replica_digest(a, after));
    ck_assert_mem_eq(before, after, sizeof before);
    rep_info_free(&ia);
    rep_info_free(&ia2);
    rep_replica_close(&a);
    rep_replica_close(&b);
}
END_TEST

/* rep_value_equal: same type and content, doubles bit for bit. */
START_TEST(test_value_equal)
{
    rep_value_t a = tu_v_str("ab"), b = tu_v_str("ab"), c = tu_v_str("ac"), e = tu_v_str("");
    ck_assert_int_eq(rep_value_equal(&a, &b), 1);
    ck_assert_int_eq(rep_value_equal(&a, &c), 0);
    ck_assert_int_eq(rep_value_equal(&a, &e), 0);
    ck_assert_int_eq(rep_value_equal(&e, &e), 1);
    rep_value_t bytes = a;
    bytes.type = REP_BYTES;
    ck_assert_int_eq(rep_value_equal(&a, &bytes), 0); /* another type, the same bytes */
    rep_value_t i1 = tu_v_int(7), i2 = tu_v_int(7), i3 = tu_v_int(-7);
    ck_assert_int_eq(rep_value_equal(&i1, &i2), 1);
    ck_assert_int_eq(rep_value_equal(&i1, &i3), 0);
    rep_value_t z = {.type = REP_DOUBLE, .u.d = 0.0}, nz = {.type = REP_DOUBLE, .u.d = -0.0};
    ck_assert_int_eq(rep_value_equal(&z, &z), 1);
    ck_assert_int_eq(rep_value_equal(&z, &nz), 0); /* bit for bit, as stored */
    rep_value_t t = {.type = REP_BOOL, .u.b = 1}, f = {.type = REP_BOOL, .u.b = 0};
    rep_value_t n1 = {.type = REP_NULL}, n2 = {.type = REP_NULL};
    ck_assert_int_eq(rep_value_equal(&t, &f), 0);
    ck_assert_int_eq(rep_value_equal(&t, &t), 1);
    ck_assert_int_eq(rep_value_equal(&n1, &n2), 1);
    ck_assert_int_eq(rep_value_equal(&n1, &f), 0);
    ck_assert_int_eq(rep_value_equal(NULL, NULL), 1);
    ck_assert_int_eq(rep_value_equal(&a, NULL), 0);
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
    tcase_add_test(tc, test_value_equal);
    tcase_add_test(tc, test_txn_semantics);
    tcase_add_test(tc, test_longest_names);
    tcase_add_test(tc, test_list_order_prefix_limit);
    tcase_add_test(tc, test_history_and_clock);
    tcase_add_test(tc, test_many_processes_one_replica);
    tcase_add_test(tc, test_strerror_and_version);
    tcase_add_test(tc, test_copy_takes_a_new_incarnation);
    tcase_add_test(tc, test_restore_from_backup_writes_offline);
    tcase_add_test(tc, test_fork_is_detected_on_arrival);
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
