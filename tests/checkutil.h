/*
 * checkutil.h — what every Check program under tests/ shares: status assertions that print
 * rep_strerror(), and a fixture giving each test a fresh directory (g_root) that is removed
 * even when the test fails. Includes testutil.h (the Check-free helpers).
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

#endif /* REPLICA_CHECKUTIL_H */
