/*
 * check_crash.c — an acknowledged write survives kill -9 (DESIGN.md invariant 4).
 *
 * A child process opens a durable replica and commits in a loop; after each successful
 * rep_txn_commit() it tells the parent, over a pipe, which write it just committed. The parent
 * kills it with SIGKILL at a random moment, reopens the replica itself and checks that every
 * acknowledged write is there, that each transaction landed whole, and that nothing was
 * invented. Then the next child continues counting on the same directory. Only the public API
 * is used.
 *
 * Write i (i = 0, 1, 2, ...) is one transaction:
 *   "crash/r<i % 50>"  n = i, pad = pad_for(i) (about 200 bytes)
 *   and when i % 10 == 0 also "crash/t<(i / 10) % 20>"  n = i
 * so the stored n of a record determines every other value the same transaction wrote.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "replica.h"
#include "checkutil.h"

#define NR 50            /* "crash/r<k>" records */
#define NT 20            /* "crash/t<k>" records */
#define PAD_LEN 200
#define CYCLES 60
#define CHILD_MAX_WRITES 200000   /* a child that is never killed stops by itself */
#define CHILD_ALARM_S 30          /* ... and so does one whose parent went away */
#define FIRST_ACK_WAIT_MS 10000   /* how long a child may take to open and commit once */
#define DRAIN_WAIT_MS 10000       /* how long the pipe may take to reach EOF after the kill */

/* The pad string write @p i stores: its number, then letters that depend on it. */
static void
pad_for(int64_t i, char out[PAD_LEN + 1])
{
    int n = snprintf(out, PAD_LEN + 1, "%" PRId64 ":", i);
    for (int k = n; k < PAD_LEN; k++)
        out[k] = (char)('a' + (i + k) % 26);
    out[PAD_LEN] = '\0';
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- The child -------------------------------------------------------------------------------- */

/* What the child says: an acknowledged write, or the step that failed and its code. */
enum { MSG_ACK = 1, MSG_FAIL_OPEN, MSG_FAIL_BEGIN, MSG_FAIL_SET, MSG_FAIL_COMMIT };

typedef struct msg {
    int64_t kind;
    int64_t val;   /* MSG_ACK: the write i; otherwise the return code */
} msg_t;

static void
child_say(int fd, int64_t kind, int64_t val)
{
    msg_t m = {kind, val};
    /* sizeof m < PIPE_BUF: the write is atomic, the parent never sees half a message */
    if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(4);
}

/* Commit writes start, start+1, ... until killed. Never returns; never uses Check. */
static void
child_main(const char *dir, int64_t start, int fd)
{
    rep_replica_t *r = NULL;
    rep_open_opts_t opts;
    char pad[PAD_LEN + 1], key[32], tkey[32];
    int rc;

    alarm(CHILD_ALARM_S);
    memset(&opts, 0, sizeof opts);   /* durable: no REP_OPEN_NOSYNC */
    if ((rc = rep_replica_open(&r, dir, &opts)) != 0) {
        child_say(fd, MSG_FAIL_OPEN, rc);
        _exit(2);
    }
    for (int64_t i = start; i < start + CHILD_MAX_WRITES; i++) {
        rep_txn_t *t = NULL;
        if ((rc = rep_txn_begin(r, "crash", &t)) != 0) {
            child_say(fd, MSG_FAIL_BEGIN, rc);
            _exit(2);
        }
        snprintf(key, sizeof key, "crash/r%d", (int)(i % NR));
        pad_for(i, pad);
        rc = rep_txn_set_int(t, key, "n", i);
        if (rc == 0)
            rc = rep_txn_set_str(t, key, "pad", pad);
        if (rc == 0 && i % 10 == 0) {
            snprintf(tkey, sizeof tkey, "crash/t%d", (int)((i / 10) % NT));
            rc = rep_txn_set_int(t, tkey, "n", i);
        }
        if (rc != 0) {
            child_say(fd, MSG_FAIL_SET, rc);
            _exit(2);
        }
        if ((rc = rep_txn_commit(t, NULL)) != 0) {
            child_say(fd, MSG_FAIL_COMMIT, rc);
            _exit(2);
        }
        rep_txn_free(&t);
        child_say(fd, MSG_ACK, i);
    }
    _exit(3);
}

/* ---- The parent -------------------------------------------------------------------------------- */

typedef struct run {
    int fd;
    msg_t partial;
    size_t have;        /* bytes of .partial received */
    int64_t acked[NR];  /* last acknowledged write per "crash/r<k>", -1 if none yet */
    int64_t tacked[NT]; /* last acknowledged write per "crash/t<k>" */
    int64_t hi;         /* highest acknowledged write ever, or start - 1 */
    int64_t fail_kind, fail_rc;
    unsigned acks;      /* acknowledgements in this cycle */
    int eof;
} run_t;

static void
on_msg(run_t *ru, const msg_t *m)
{
    if (m->kind != MSG_ACK) {
        ru->fail_kind = m->kind;
        ru->fail_rc = m->val;
        return;
    }
    int64_t i = m->val;
    ck_assert_msg(i == ru->hi + 1, "child acknowledged write %" PRId64 " after %" PRId64, i,
                  ru->hi);
    ru->hi = i;
    ru->acked[i % NR] = i;
    if (i % 10 == 0)
        ru->tacked[(i / 10) % NT] = i;
    ru->acks++;
}

/* Read what the child said for up to @p wait_ms (or until @p until_acks acks, if > 0). */
static void
read_msgs(run_t *ru, int wait_ms, unsigned until_acks)
{
    uint64_t deadline = now_ms() + (uint64_t)wait_ms;
    while (!ru->eof) {
        if (until_acks > 0 && ru->acks >= until_acks)
            return;
        uint64_t t = now_ms();
        if (t >= deadline)
            return;
        struct pollfd p = {ru->fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)(deadline - t));
        if (pr < 0 && errno == EINTR)
            continue;
        ck_assert_msg(pr >= 0, "poll: %s", strerror(errno));
        if (pr == 0)
            return;
        ssize_t n = read(ru->fd, (char *)&ru->partial + ru->have, sizeof ru->partial - ru->have);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n >= 0, "read: %s", strerror(errno));
        if (n == 0) {
            ru->eof = 1;
            ck_assert_msg(ru->have == 0, "pipe ended inside a message");
            return;
        }
        ru->have += (size_t)n;
        if (ru->have == sizeof ru->partial) {
            on_msg(ru, &ru->partial);
            ru->have = 0;
        }
    }
}

static int
get_int(rep_replica_t *r, const char *key, const char *field, int64_t *out)
{
    rep_value_t *v = NULL;
    int rc = rep_replica_get(r, key, field, &v);
    if (rc != 0)
        return rc;
    ck_assert_msg(v->type == REP_INT, "%s.%s has type %d", key, field, (int)v->type);
    *out = v->u.i;
    rep_value_free(&v);
    return 0;
}

/*
 * Check the replica after a kill. Every acknowledged write is there; each record holds a write
 * that was really made (n maps to the record, pad matches n); no write beyond the first
 * unacknowledged one landed; the log holds exactly writes 0..max. @return the highest write.
 */
static int64_t
verify(rep_replica_t *r, const run_t *ru, int cycle, uint64_t actor)
{
    char key[32], pad[PAD_LEN + 1];
    int64_t max = -1, stored[NR];

    for (int k = 0; k < NR; k++) {
        int64_t n = -1;
        snprintf(key, sizeof key, "crash/r%d", k);
        int rc = get_int(r, key, "n", &n);
        if (rc == REP_ENOTFOUND) {
            ck_assert_msg(ru->acked[k] < 0, "cycle %d: %s lost (acknowledged write %" PRId64 ")",
                          cycle, key, ru->acked[k]);
            stored[k] = -1;
            continue;
        }
        ck_assert_msg(rc == 0, "cycle %d: get %s.n = %d (%s)", cycle, key, rc, rep_strerror(rc));
        ck_assert_msg(n >= ru->acked[k], "cycle %d: %s.n = %" PRId64 " but write %" PRId64
                      " was acknowledged", cycle, key, n, ru->acked[k]);
        ck_assert_msg(n >= 0 && n % NR == k, "cycle %d: %s.n = %" PRId64 " was never written "
                      "there", cycle, key, n);
        ck_assert_msg(n <= ru->hi + 1, "cycle %d: %s.n = %" PRId64 " but only writes up to %"
                      PRId64 " were begun", cycle, key, n, ru->hi + 1);

        rep_value_t *v = NULL;
        rc = rep_replica_get(r, key, "pad", &v);
        ck_assert_msg(rc == 0, "cycle %d: get %s.pad = %d (%s)", cycle, key, rc, rep_strerror(rc));
        pad_for(n, pad);
        ck_assert_msg(v->type == REP_STRING && v->u.s.len == PAD_LEN &&
                      memcmp(v->u.s.ptr, pad, PAD_LEN) == 0,
                      "cycle %d: %s.pad is not the pad of write %" PRId64 " (torn transaction)",
                      cycle, key, n);
        rep_value_free(&v);
        stored[k] = n;
        if (n > max)
            max = n;
    }

    for (int k = 0; k < NT; k++) {
        int64_t n = -1;
        snprintf(key, sizeof key, "crash/t%d", k);
        int rc = get_int(r, key, "n", &n);
        if (rc == REP_ENOTFOUND) {
            ck_assert_msg(ru->tacked[k] < 0, "cycle %d: %s lost (acknowledged write %" PRId64
                          ")", cycle, key, ru->tacked[k]);
            continue;
        }
        ck_assert_msg(rc == 0, "cycle %d: get %s.n = %d (%s)", cycle, key, rc, rep_strerror(rc));
        ck_assert_msg(n >= ru->tacked[k], "cycle %d: %s.n = %" PRId64 " but write %" PRId64
                      " was acknowledged", cycle, key, n, ru->tacked[k]);
        ck_assert_msg(n >= 0 && n % 10 == 0 && (n / 10) % NT == k,
                      "cycle %d: %s.n = %" PRId64 " was never written there", cycle, key, n);
        /* the same transaction wrote crash/r<n % NR>: it must hold n or a later write */
        ck_assert_msg(stored[n % NR] >= n, "cycle %d: %s.n = %" PRId64 " but crash/r%d.n = %"
                      PRId64 " (half a transaction landed)", cycle, key, n, (int)(n % NR),
                      stored[n % NR]);
    }

    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(r, &info));
    ck_assert_msg(info->actor == actor, "cycle %d: actor changed from %016" PRIx64 " to %016"
                  PRIx64 " on reopening the same directory", cycle, actor, info->actor);
    /* one change per write, numbered from 1: writes 0..max are changes 1..max+1 */
    ck_assert_msg(info->seq == (uint64_t)(max + 1), "cycle %d: seq %" PRIu64 " but the highest "
                  "write stored is %" PRId64, cycle, info->seq, max);
    ck_assert_uint_eq(info->changes, info->seq);
    ck_assert_uint_eq(info->pending, 0);
    ck_assert_uint_eq(info->conflicts, 0);
    rep_info_free(&info);

    uint8_t d[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(r, d));
    return max;
}

START_TEST(test_acknowledged_writes_survive_kill9)
{
    char *base = tu_tmpdir_in(g_root);
    char dir[TU_PATH_MAX];
    rep_replica_t *r = NULL;
    rep_info_t *info = NULL;
    run_t ru;
    tu_rng_t rng;
    unsigned total_acks = 0, cycles_with_acks = 0, killed = 0;
    uint64_t seed = tu_seed(0xc0ffee);

    ck_assert_ptr_nonnull(base);
    tu_rng_seed(&rng, seed);
    CK_OK(tu_path(dir, base, "r"));

    /* Created once by the parent; children only reopen it. */
    CK_OK(tu_replica_create(&r, base, "r", NULL, NULL));
    CK_OK(rep_replica_info(r, &info));
    uint64_t actor = info->actor;
    rep_info_free(&info);
    rep_replica_close(&r);

    memset(&ru, 0, sizeof ru);
    for (int k = 0; k < NR; k++)
        ru.acked[k] = -1;
    for (int k = 0; k < NT; k++)
        ru.tacked[k] = -1;
    ru.hi = -1;

    uint64_t t0 = now_ms();
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        int fds[2];
        int64_t start = ru.hi + 1;

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        pid_t pid = fork();
        ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, start, fds[1]);
        }
        close(fds[1]);
        ru.fd = fds[0];
        ru.have = 0;
        ru.acks = 0;
        ru.eof = 0;
        ru.fail_kind = 0;

        /* Odd cycles kill at 1–30 ms after the first acknowledged write (mid-commit loop);
         * even ones 1–30 ms after fork (which may land while the child is still opening). */
        unsigned delay = (unsigned)tu_rng_range(&rng, 1, 30);
        if (cycle % 2 == 1)
            read_msgs(&ru, FIRST_ACK_WAIT_MS, 1);
        read_msgs(&ru, (int)delay, 0);
        int was_running = !ru.eof && ru.fail_kind == 0;
        kill(pid, SIGKILL);
        read_msgs(&ru, DRAIN_WAIT_MS, 0);
        ck_assert_msg(ru.eof, "cycle %d: the child's pipe did not close after SIGKILL", cycle);
        close(ru.fd);

        int status = 0;
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        ck_assert_int_eq(w, pid);
        ck_assert_msg(ru.fail_kind == 0, "cycle %d: child failed at step %" PRId64 ": %" PRId64
                      " (%s)", cycle, ru.fail_kind, ru.fail_rc, rep_strerror((int)ru.fail_rc));
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "cycle %d: child ended by itself (status %#x), was_running %d", cycle,
                      (unsigned)status, was_running);
        if (cycle % 2 == 1)
            ck_assert_msg(ru.acks >= 1, "cycle %d: no write acknowledged within %d ms", cycle,
                          FIRST_ACK_WAIT_MS);
        killed++;
        total_acks += ru.acks;
        cycles_with_acks += ru.acks > 0;

        /* The replica opens cleanly after the kill and holds every acknowledged write. */
        rep_open_opts_t opts;
        memset(&opts, 0, sizeof opts);
        int rc = rep_replica_open(&r, dir, &opts);
        ck_assert_msg(rc == 0, "cycle %d: reopen after kill -9 = %d (%s)", cycle, rc,
                      rep_strerror(rc));
        int64_t max = verify(r, &ru, cycle, actor);
        rep_replica_close(&r);
        ck_assert_ptr_null(r);

        /* An unacknowledged last commit may have landed: continue after it. */
        ck_assert_msg(max >= ru.hi, "cycle %d", cycle);
        ru.hi = max;
        ck_assert_msg(now_ms() - t0 < 120000, "crash cycles take too long (%d done)", cycle);
    }
    ck_assert_uint_eq(killed, CYCLES);
    ck_assert_msg(cycles_with_acks >= CYCLES / 2, "only %u of %d cycles committed anything",
                  cycles_with_acks, CYCLES);
    ck_assert_uint_gt(total_acks, 0);

    /* After the last kill the replica also takes a write. */
    rep_open_opts_t opts;
    rep_txn_t *t = NULL;
    uint64_t seq = 0;
    memset(&opts, 0, sizeof opts);
    CK_OK(rep_replica_open(&r, dir, &opts));
    CK_OK(rep_txn_begin(r, "parent", &t));
    CK_OK(rep_txn_set_str(t, "crash/after", "ok", "yes"));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, (uint64_t)(ru.hi + 2));
    rep_txn_free(&t);
    rep_replica_close(&r);

    tu_rmtree(base);
    free(base);
}
END_TEST

static Suite *
crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("kill9");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_acknowledged_writes_survive_kill9);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(crash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
