/*
 * checkutil.h — what every Check program under tests/ shares: status assertions that print
 * rep_strerror(), a fixture giving each test a fresh directory (g_root) that is removed even
 * when the test fails, and a one-field write and read. Includes testutil.h (the Check-free
 * helpers).
 */
#ifndef REPLICA_CHECKUTIL_H
#define REPLICA_CHECKUTIL_H

#include <check.h>
#include <stdlib.h>

#include "replica.h"
#include "testutil.h"

/* expr must return 0. */
#define CK_OK(expr)                                                                                \
    do {                                                                                           \
        int ck_rc_ = (expr);                                                                       \
        ck_assert_msg(ck_rc_ == 0, "%s = %d (%s)", #expr, ck_rc_, rep_strerror(ck_rc_));           \
    } while (0)

/* expr must return want. */
#define CK_RC(expr, want)                                                                          \
    do {                                                                                           \
        int ck_rc_ = (expr), ck_want_ = (want);                                                    \
        ck_assert_msg(ck_rc_ == ck_want_, "%s = %d (%s), want %d (%s)", #expr, ck_rc_,             \
                      rep_strerror(ck_rc_), ck_want_, rep_strerror(ck_want_));                     \
    } while (0)

/* The test's own directory; use root_setup/root_teardown as an unchecked fixture so it is
 * removed even when a test fails (a failing test exits its forked process early). */
static char *g_root;

static TU_UNUSED void
root_setup(void)
{
    g_root = tu_tmpdir();
    ck_assert_msg(g_root != NULL, "mkdtemp failed");
}

static TU_UNUSED void
root_teardown(void)
{
    tu_rmtree(g_root);
    free(g_root);
    g_root = NULL;
}

/* Commit one change setting string field of key to s, by user "staff"; fails the test if not. */
static TU_UNUSED void
ck_put_str(rep_replica_t *r, const char *key, const char *field, const char *s)
{
    rep_txn_t *t = NULL;
    CK_OK(rep_txn_begin(r, "staff", &t));
    CK_OK(rep_txn_set_str(t, key, field, s));
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);
}

/* 1 when field of key is the string s. */
static TU_UNUSED int
ck_has_str(rep_replica_t *r, const char *key, const char *field, const char *s)
{
    rep_value_t *v = NULL;
    int rc = rep_replica_get(r, key, field, &v);
    int yes = rc == 0 && tu_is_str(v, s);
    rep_value_free(&v);
    return yes;
}

#endif /* REPLICA_CHECKUTIL_H */
