/*
 * converge.c — bench/converge: libreplica on the shared workload W3 (../shared/WORKLOADS.md),
 * office convergence over the network, linked like any user of the library (public replica.h
 * only).
 *
 *   bench/converge [--reps N] [--json] [--smoke] [--kill9] [--keep]
 *
 * Five workstations, each a separate process (this program re-executed as a node child) that
 * opens its replica directory and runs a node (rep_node_start) listening on 127.0.0.1 at a
 * port chosen free at run time, CURVE on, dialing the four others (full mesh). The first
 * makes the office (admin); the other four join it by invitation (rep_node_invite_at on the
 * first, rep_replica_join in the child). The application writes through the same replica
 * handle the node serves, in the node's process: every commit pokes the node (node.notify).
 *
 * Phase 1  every node makes 20,000 updates to the W1 records (w1/rec:NNNNN, f0..f7, 24-byte
 *          values; updates as WORKLOADS.md draws them, node k = 1..5 seeded 10 + k), 100 per
 *          durable transaction, all five told to start at once. Figures: the time from the last
 *          commit anywhere until the parent sees all five replicas hold the same version
 *          vector and the same rep_replica_digest(); bytes sent per write = bytes sent by all
 *          nodes from just before the writes until convergence ÷ (writes × (nodes − 1)), once
 *          as the sync engine's messages (rep_node_status sent_bytes) and once as TCP payload
 *          (TCP_INFO tcpi_bytes_sent over every TCP socket of each node process: ZMTP framing,
 *          CURVE boxes, heartbeats and handshakes included; TCP/IP headers not).
 * Phase 2  node 5 is stopped (SIGTERM: a clean stop; --kill9: SIGKILL), the other four make
 *          2,500 updates each (seeds 21..24), the parent waits until those four agree, then
 *          node 5 is started again (same directory, same port). Figure: its catch-up time,
 *          from the restart (before the fork) until its version vector and digest equal the
 *          others'.
 * Checks   all five digests equal after each phase; every field holds the last value one of
 *          the writers wrote to it (after phase 2, a phase-2 value wherever phase 2 wrote it,
 *          since those writes saw all of phase 1).
 *
 * The parent opens every directory itself (LMDB supports readers in other processes) and
 * polls version vectors every 2 ms, computing the five digests only when the vectors agree.
 * Every wait is bounded. Everything lives in a fresh $TMPDIR/libreplica-bench-XXXXXX, removed
 * at the end. With --reps N everything is rebuilt N times and medians are printed. --json
 * prints only one JSON object. --smoke runs tiny sizes (a few seconds).
 * Exit status: 0; 1 when a check failed or something broke; 2 for a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <replica.h>

#include "workload.h"

#define WHO "libreplica"
#define NODES 5
#define MAX_REPS 50
#define SEED_P1 10 /* node k (1-based) writes phase 1 from seed SEED_P1 + k */
#define SEED_P2 20 /* survivor k writes phase 2 from seed SEED_P2 + k */
#define POLL_MS 2

typedef struct cfg {
    uint32_t R;
    size_t per_node;  /* phase-1 updates per node */
    size_t phase2;    /* phase-2 updates in all, spread over NODES - 1 */
    int reps, json, smoke, kill9, keep;
    double wait_s;    /* bound of every wait for convergence */
} cfg_t;

static int g_failed = 0;

static void
check(const char *what, int ok, const char *detail)
{
    if (!w_check(WHO, what, ok, detail))
        g_failed = 1;
}

/* ======================================================================================== */
/* The node child: bench/converge --child DIR NAME LISTEN (--create | --join TOKEN | --open)  */
/*                 [PEER...]; commands on stdin, answers on stdout, node log on stderr.       */
/* ======================================================================================== */

static volatile sig_atomic_t g_term = 0;

static void
on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

static void
node_log(void *ctx, const char *line)
{
    fprintf(stderr, "[%s %.3f] %s\n", (const char *)ctx, w_now(), line);
}

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* Write n updates from seed, per_txn to a durable transaction. */
static int
child_write(rep_replica_t *r, uint64_t seed, size_t n, size_t per_txn, uint32_t R, double *t0,
            double *t1, double *cpu)
{
    w_rng_t g = {seed};
    rep_txn_t *t = NULL;
    char key[32], field[8];
    w_op_t op;
    double c0 = w_cpu_now();
    *t0 = w_now();
    for (size_t i = 0; i < n; i++) {
        w_update_op(&g, R, &op);
        int rc = 0;
        if (!t && (rc = rep_txn_begin(r, NULL, &t)) < 0)
            return rc;
        w_key(key, sizeof key, op.rec);
        w_field(field, sizeof field, op.fld);
        rep_value_t v = {.type = REP_STRING, .u.s = {op.val, W_VLEN}};
        if ((rc = rep_txn_set(t, key, field, &v)) < 0) {
            rep_txn_free(&t);
            return rc;
        }
        if ((i + 1) % per_txn == 0 || i + 1 == n) {
            rc = rep_txn_commit(t, NULL);
            rep_txn_free(&t);
            if (rc < 0)
                return rc;
        }
    }
    *t1 = w_now();
    *cpu = w_cpu_now() - c0;
    return 0;
}

/* Bytes sent and received over every TCP connection of this process (TCP payload: ZMTP and
 * CURVE included, TCP/IP headers not), and how many connections there are. */
static void
tcp_totals(unsigned long long *sent, unsigned long long *recv, int *nconn)
{
    *sent = *recv = 0;
    *nconn = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || e->d_name[0] == '\0' || fd == dirfd(d))
            continue;
        struct stat sb;
        if (fstat((int)fd, &sb) < 0 || !S_ISSOCK(sb.st_mode))
            continue;
        int dom = 0, type = 0;
        socklen_t l = sizeof dom;
        if (getsockopt((int)fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 ||
            (dom != AF_INET && dom != AF_INET6))
            continue;
        l = sizeof type;
        if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
            continue;
        struct tcp_info ti;
        memset(&ti, 0, sizeof ti);
        l = sizeof ti;
        if (getsockopt((int)fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 || ti.tcpi_state == 10)
            continue; /* 10: TCP_LISTEN */
        *sent += ti.tcpi_bytes_sent;
        *recv += ti.tcpi_bytes_received;
        (*nconn)++;
    }
    closedir(d);
}

static int
child_main(int argc, char **argv)
{
    /* argv: --child DIR NAME LISTEN MODE [TOKEN] PEER... */
    if (argc < 6)
        return 2;
    const char *dir = argv[2], *name = argv[3], *listen = argv[4], *mode = argv[5];
    const char *token = NULL;
    int pi = 6;
    if (!strcmp(mode, "--join")) {
        if (argc < 7)
            return 2;
        token = argv[6];
        pi = 7;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: a read of stdin returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rep_replica_t *r = NULL;
    int rc;
    rep_open_opts_t o;
    memset(&o, 0, sizeof o);
    o.device_name = name;
    if (!strcmp(mode, "--create")) {
        o.flags = REP_OPEN_CREATE | REP_OPEN_EXCL; /* durable: no REP_OPEN_NOSYNC */
        o.office_name = "W3 office";
        rc = rep_replica_open(&r, dir, &o);
    } else if (token) {
        char *why = NULL;
        rc = rep_replica_join(dir, token, &o, 15000, &r, &why);
        if (rc < 0 && why)
            fprintf(stderr, "%s: join refused: %s\n", name, why);
        rep_free(why);
    } else {
        rc = rep_replica_open(&r, dir, NULL);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: opening %s: %s\n", name, dir, rep_strerror(rc));
        say("FAIL open\n");
        return 1;
    }
    if ((rc = rep_replica_announce(r, &listen, 1, NULL)) < 0) {
        fprintf(stderr, "%s: announce: %s\n", name, rep_strerror(rc));
        say("FAIL announce\n");
        return 1;
    }
    rep_node_opts_t no;
    memset(&no, 0, sizeof no);
    no.listen = listen;
    no.peers = (const char *const *)(argv + pi);
    no.npeers = (size_t)(argc - pi);
    no.log = node_log;
    no.log_ctx = (void *)name;
    rep_node_t *node = NULL;
    if ((rc = rep_node_start(r, &no, &node)) < 0) {
        fprintf(stderr, "%s: rep_node_start: %s\n", name, rep_strerror(rc));
        say("FAIL node\n");
        rep_replica_close(&r);
        return 1;
    }
    say("READY %.6f\n", w_now());

    char line[256];
    size_t have = 0;
    int ret = 0;
    while (!g_term) {
        ssize_t k = read(0, line + have, sizeof line - 1 - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* the parent went away */
        have += (size_t)k;
        line[have] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            unsigned long long seed, n, per;
            unsigned R;
            if (sscanf(line, "WRITE %llu %llu %llu %u", &seed, &n, &per, &R) == 4) {
                double t0, t1, cpu;
                rc = child_write(r, seed, n, per, R, &t0, &t1, &cpu);
                if (rc < 0) {
                    fprintf(stderr, "%s: writing: %s\n", name, rep_strerror(rc));
                    say("FAIL write\n");
                } else {
                    say("DONE %.6f %.6f %.6f\n", t0, t1, cpu);
                }
            } else if (!strcmp(line, "STAT")) {
                rep_node_status_t *ns = NULL;
                unsigned long long s = 0, rv = 0;
                int conn = 0;
                if ((rc = rep_node_status(node, &ns)) < 0) {
                    say("FAIL status\n");
                } else {
                    for (size_t i = 0; i < ns->npeers; i++) {
                        s += ns->peers[i].sent_bytes;
                        rv += ns->peers[i].received_bytes;
                        conn += ns->peers[i].connected && ns->peers[i].device_id[0];
                    }
                    unsigned long long ts, tr;
                    int nc;
                    tcp_totals(&ts, &tr, &nc);
                    say("STAT %d %llu %llu %llu %llu %d\n", conn, s, rv, ts, tr, nc);
                    rep_node_status_free(&ns);
                }
            } else if (!strcmp(line, "QUIT")) {
                g_term = 1;
            } else {
                say("FAIL command\n");
            }
            have -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, have + 1);
        }
        if (have >= sizeof line - 1)
            have = 0;
    }
    rep_node_stop(&node);
    rep_replica_close(&r);
    return ret;
}

/* ======================================================================================== */
/* The parent                                                                               */
/* ======================================================================================== */

typedef struct child {
    pid_t pid;
    int to, from;     /* its stdin (our write end), its stdout (our read end) */
    char buf[512];
    size_t have;
} child_t;

typedef struct node {
    char dir[512], name[16], listen[64], log[512];
    int port;
    child_t c;
    rep_replica_t *r; /* the parent's own handle, for polling */
} node_t;

static char g_self[4096];

static int
free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* Start node i's process: mode "--create", "--join" (with token) or "--open". */
static int
spawn(node_t *nodes, int i, const char *mode, const char *token)
{
    node_t *n = &nodes[i];
    const char *argv[8 + NODES];
    int a = 0;
    argv[a++] = g_self;
    argv[a++] = "--child";
    argv[a++] = n->dir;
    argv[a++] = n->name;
    argv[a++] = n->listen;
    argv[a++] = mode;
    if (token)
        argv[a++] = token;
    for (int j = 0; j < NODES; j++)
        if (j != i)
            argv[a++] = nodes[j].listen;
    argv[a] = NULL;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int logfd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        execv(g_self, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    n->c.pid = pid;
    n->c.to = in[1];
    n->c.from = out[0];
    n->c.have = 0;
    return 0;
}

static int
tell(node_t *n, const char *cmd)
{
    size_t len = strlen(cmd);
    return write(n->c.to, cmd, len) == (ssize_t)len ? 0 : -1;
}

/* One line from node n within timeout_s (without its newline); -1 on timeout, EOF or error. */
static int
hear(node_t *n, char *out, size_t outsz, double timeout_s)
{
    child_t *c = &n->c;
    double deadline = w_now() + timeout_s;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl) {
            size_t k = (size_t)(nl - c->buf);
            snprintf(out, outsz, "%.*s", (int)k, c->buf);
            c->have -= k + 1;
            memmove(c->buf, nl + 1, c->have);
            if (!strncmp(out, "FAIL", 4)) {
                fprintf(stderr, "bench/converge: %s: %s (log: %s)\n", n->name, out, n->log);
                return -1;
            }
            return 0;
        }
        double left = deadline - w_now();
        if (left <= 0 || c->have >= sizeof c->buf - 1) {
            fprintf(stderr, "bench/converge: %s did not answer within %.0f s (log: %s)\n", n->name,
                    timeout_s, n->log);
            return -1;
        }
        struct pollfd p = {c->from, POLLIN, 0};
        int k = poll(&p, 1, (int)(left * 1000) + 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            continue;
        ssize_t got = read(c->from, c->buf + c->have, sizeof c->buf - 1 - c->have);
        if (got <= 0) {
            fprintf(stderr, "bench/converge: %s exited (log: %s)\n", n->name, n->log);
            return -1;
        }
        c->have += (size_t)got;
    }
}

/* Stop node n's process with sig and reap it (bounded: SIGKILL after 10 s). */
static void
stop_child(node_t *n, int sig)
{
    if (n->c.pid <= 0)
        return;
    kill(n->c.pid, sig);
    int st;
    double deadline = w_now() + 10;
    while (waitpid(n->c.pid, &st, WNOHANG) == 0) {
        if (w_now() > deadline) {
            kill(n->c.pid, SIGKILL);
            waitpid(n->c.pid, &st, 0);
            break;
        }
        usleep(2000);
    }
    close(n->c.to);
    close(n->c.from);
    n->c.pid = 0;
}

typedef struct stat_line {
    int connected, tcp_conns;
    unsigned long long sent, recv, tcp_sent, tcp_recv;
} stat_t;

static int
ask_stat(node_t *n, stat_t *s)
{
    char line[256];
    if (tell(n, "STAT\n") < 0 || hear(n, line, sizeof line, 10) < 0)
        return -1;
    if (sscanf(line, "STAT %d %llu %llu %llu %llu %d", &s->connected, &s->sent, &s->recv,
               &s->tcp_sent, &s->tcp_recv, &s->tcp_conns) != 6)
        return -1;
    return 0;
}

/* Do the nodes in idx[0..k) hold the same version vector and digest? 1, 0, or -1 on failure.
 * The digests are computed only when the version vectors agree. */
static int
agree(node_t *nodes, const int *idx, int k, uint8_t digest[REP_DIGEST_BYTES])
{
    uint8_t *vv0 = NULL;
    size_t n0 = 0;
    int same = 1;
    for (int j = 0; j < k && same; j++) {
        uint8_t *vv;
        size_t n;
        int rc = rep_replica_vv(nodes[idx[j]].r, &vv, &n);
        if (rc < 0) {
            fprintf(stderr, "bench/converge: rep_replica_vv: %s\n", rep_strerror(rc));
            rep_free(vv0);
            return -1;
        }
        if (!vv0) {
            vv0 = vv;
            n0 = n;
            continue;
        }
        same = n == n0 && !memcmp(vv, vv0, n);
        rep_free(vv);
    }
    rep_free(vv0);
    if (!same)
        return 0;
    uint8_t d0[REP_DIGEST_BYTES], d[REP_DIGEST_BYTES];
    for (int j = 0; j < k; j++) {
        int rc = rep_replica_digest(nodes[idx[j]].r, j ? d : d0);
        if (rc < 0) {
            fprintf(stderr, "bench/converge: rep_replica_digest: %s\n", rep_strerror(rc));
            return -1;
        }
        if (j && memcmp(d, d0, sizeof d))
            return 0;
    }
    if (digest)
        memcpy(digest, d0, sizeof d0);
    return 1;
}

/* Poll until the nodes idx[0..k) agree: the time (w_now) of the poll that saw it, or -1. */
static double
wait_agree(node_t *nodes, const int *idx, int k, double timeout_s, uint8_t *digest,
           double *digest_s)
{
    double deadline = w_now() + timeout_s;
    for (;;) {
        double t = w_now();
        int a = agree(nodes, idx, k, digest);
        if (a < 0)
            return -1;
        if (a) {
            if (digest_s)
                *digest_s = w_now() - t;
            return t;
        }
        if (t > deadline)
            return -1;
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- The expected outcome: which values a field may hold ---------------------------------- */

typedef struct lastw {
    char *p1[NODES];      /* each node's last phase-1 value per field ('?' = none) */
    char *p2[NODES - 1];  /* each survivor's last phase-2 value per field */
} lastw_t;

static char *
last_values(uint32_t R, uint64_t seed, size_t n)
{
    char *s = w_state_new(R);
    if (!s)
        abort();
    w_rng_t g = {seed};
    w_op_t op;
    for (size_t i = 0; i < n; i++) {
        w_update_op(&g, R, &op);
        memcpy(w_state_at(s, op.rec, op.fld), op.val, W_VLEN);
    }
    return s;
}

static size_t
p2_share(const cfg_t *c, int k)
{
    size_t base = c->phase2 / (NODES - 1), extra = c->phase2 % (NODES - 1);
    return base + ((size_t)k < extra);
}

static int
is_missing(const char *v)
{
    return v[0] == '?';
}

/* Read the state of r and check each field against the writers' last values; with p2, phase 2's
 * values win where phase 2 wrote. Sets hash. 1 when every field is as allowed, 0, -1. */
static int
check_state(rep_replica_t *r, const cfg_t *c, const lastw_t *lw, int p2, char hash[65],
            size_t *bad_out)
{
    rep_list_t *l = NULL;
    int rc = rep_replica_list(r, W_COLL, NULL, 0, &l);
    if (rc < 0) {
        fprintf(stderr, "bench/converge: rep_replica_list: %s\n", rep_strerror(rc));
        return -1;
    }
    char *s = w_state_new(c->R);
    size_t bad = 0;
    static const char pre[] = W_COLL "/rec:";
    for (size_t i = 0; i < l->n; i++) {
        const rep_record_t *rec = &l->records[i];
        char *end;
        if (strncmp(rec->key, pre, sizeof pre - 1) != 0) {
            bad++;
            continue;
        }
        unsigned long rn = strtoul(rec->key + sizeof pre - 1, &end, 10);
        if (*end || rn >= c->R) {
            bad++;
            continue;
        }
        for (size_t j = 0; j < rec->nfields; j++) {
            const rep_field_t *f = &rec->fields[j];
            if (!f->name[0])
                continue;
            unsigned fn = (unsigned)(f->name[1] - '0');
            if (f->name[0] != 'f' || fn >= W_F || f->name[2] || f->value.type != REP_STRING ||
                f->value.u.s.len != W_VLEN) {
                bad++;
                continue;
            }
            memcpy(w_state_at(s, (uint32_t)rn, fn), f->value.u.s.ptr, W_VLEN);
        }
    }
    rep_list_free(&l);
    for (uint32_t rec = 0; rec < c->R; rec++)
        for (uint32_t f = 0; f < W_F; f++) {
            const char *got = w_state_at(s, rec, f);
            int any2 = 0, ok = 0, any = 0;
            if (p2)
                for (int k = 0; k < NODES - 1; k++) {
                    const char *v = w_state_at(lw->p2[k], rec, f);
                    if (!is_missing(v)) {
                        any2 = 1;
                        ok |= !memcmp(v, got, W_VLEN);
                    }
                }
            if (!any2)
                for (int k = 0; k < NODES; k++) {
                    const char *v = w_state_at(lw->p1[k], rec, f);
                    if (!is_missing(v)) {
                        any = 1;
                        ok |= !memcmp(v, got, W_VLEN);
                    }
                }
            if (!any2 && !any)
                ok = is_missing(got);
            bad += !ok;
        }
    w_state_hash(s, c->R, hash);
    free(s);
    *bad_out = bad;
    return bad == 0;
}

/* ---- One repetition --------------------------------------------------------------------- */

typedef struct res {
    double write_s;        /* from the first begin to the last commit, anywhere */
    double write_rate;     /* all nodes' writes / write_s */
    double converge_s;     /* last commit -> all five agree */
    double digest_s;       /* how long the five digests took to compute, in the parent */
    double p1_bytes, p1_tcp_bytes;
    double bpw, bpw_tcp;   /* bytes per write per other node */
    double setup_s;        /* office made, four joined, mesh up and agreeing */
    double p2_write_s, p2_agree_s;
    double catchup_s;      /* restart -> its digest equals the others' */
    double node_up_s;      /* restart -> its node started (replica open, sockets bound) */
    double catchup_recv;   /* sync bytes the restarted node received while catching up */
    int digests_equal, catchup_equal, state_ok, state2_ok;
    char hash[65], hash2[65];
    size_t bad, bad2;
} res_t;

static void
kill_all(node_t *nodes)
{
    for (int i = 0; i < NODES; i++)
        stop_child(&nodes[i], SIGKILL);
}

static int
run_once(const cfg_t *c, const lastw_t *lw, res_t *res)
{
    memset(res, 0, sizeof *res);
    char *tmp = w_tmpdir();
    if (!tmp) {
        perror("bench/converge: mkdtemp");
        return -1;
    }
    node_t nodes[NODES];
    memset(nodes, 0, sizeof nodes);
    int ret = -1;
    char line[256];
    for (int i = 0; i < NODES; i++) {
        node_t *n = &nodes[i];
        snprintf(n->dir, sizeof n->dir, "%s/ws%d", tmp, i + 1);
        snprintf(n->log, sizeof n->log, "%s/ws%d.log", tmp, i + 1);
        snprintf(n->name, sizeof n->name, "ws%d", i + 1);
        for (int tries = 0; tries < 20; tries++) { /* distinct ports */
            n->port = free_port();
            int dup = n->port <= 0;
            for (int j = 0; j < i; j++)
                dup |= nodes[j].port == n->port;
            if (!dup)
                break;
        }
        snprintf(n->listen, sizeof n->listen, "tcp://127.0.0.1:%d", n->port);
    }

    /* ---- the office: ws1 makes it, the others join by invitation */
    double t_setup = w_now();
    if (spawn(nodes, 0, "--create", NULL) < 0 || hear(&nodes[0], line, sizeof line, 20) < 0)
        goto out;
    for (int i = 1; i < NODES; i++) {
        char *token = NULL, *why = NULL;
        int rc = rep_node_invite_at(nodes[0].dir, 60000, NULL, &token, &why);
        if (rc < 0) {
            fprintf(stderr, "bench/converge: rep_node_invite_at: %s%s%s\n", rep_strerror(rc),
                    why ? ": " : "", why ? why : "");
            rep_free(why);
            goto out;
        }
        rc = spawn(nodes, i, "--join", token);
        rep_free(token);
        if (rc < 0 || hear(&nodes[i], line, sizeof line, 30) < 0)
            goto out;
    }
    for (int i = 0; i < NODES; i++) {
        int rc = rep_replica_open(&nodes[i].r, nodes[i].dir, NULL);
        if (rc < 0) {
            fprintf(stderr, "bench/converge: opening %s: %s\n", nodes[i].dir, rep_strerror(rc));
            goto out;
        }
    }
    /* full mesh: every node connected to the four others, and all agreeing */
    int all[NODES] = {0, 1, 2, 3, 4};
    double deadline = w_now() + 30;
    for (;;) {
        int full = 1;
        for (int i = 0; i < NODES && full; i++) {
            stat_t s;
            if (ask_stat(&nodes[i], &s) < 0)
                goto out;
            /* every device connected, and both connections of each pair (ours, theirs) up */
            full = s.connected == NODES - 1 && s.tcp_conns == 2 * (NODES - 1);
        }
        if (full && agree(nodes, all, NODES, NULL) == 1)
            break;
        if (w_now() > deadline) {
            fprintf(stderr, "bench/converge: the mesh did not form within 30 s (logs in %s)\n",
                    tmp);
            goto out;
        }
        usleep(20000);
    }
    res->setup_s = w_now() - t_setup;

    /* ---- phase 1: all five write at once */
    stat_t before[NODES], after[NODES];
    for (int i = 0; i < NODES; i++)
        if (ask_stat(&nodes[i], &before[i]) < 0)
            goto out;
    for (int i = 0; i < NODES; i++) {
        snprintf(line, sizeof line, "WRITE %d %zu %d %u\n", SEED_P1 + i + 1, c->per_node,
                 W_PER_TXN, c->R);
        if (tell(&nodes[i], line) < 0)
            goto out;
    }
    double first = 1e300, last = 0;
    for (int i = 0; i < NODES; i++) {
        double t0, t1, cpu;
        if (hear(&nodes[i], line, sizeof line, 300) < 0 ||
            sscanf(line, "DONE %lf %lf %lf", &t0, &t1, &cpu) != 3)
            goto out;
        first = t0 < first ? t0 : first;
        last = t1 > last ? t1 : last;
    }
    uint8_t dg[REP_DIGEST_BYTES];
    double t_conv = wait_agree(nodes, all, NODES, c->wait_s, dg, &res->digest_s);
    if (t_conv < 0) {
        fprintf(stderr, "bench/converge: the five did not agree within %.0f s of the last write\n",
                c->wait_s);
        goto out;
    }
    res->digests_equal = 1;
    for (int i = 0; i < NODES; i++)
        if (ask_stat(&nodes[i], &after[i]) < 0)
            goto out;
    double writes = (double)c->per_node * NODES;
    res->write_s = last - first;
    res->write_rate = writes / res->write_s;
    res->converge_s = t_conv > last ? t_conv - last : 0;
    for (int i = 0; i < NODES; i++) {
        res->p1_bytes += (double)(after[i].sent - before[i].sent);
        res->p1_tcp_bytes += (double)(after[i].tcp_sent - before[i].tcp_sent);
        if (after[i].tcp_conns != before[i].tcp_conns)
            fprintf(stderr, "bench/converge: %s had %d TCP connections, then %d: the TCP "
                            "count may miss a closed one\n",
                    nodes[i].name, before[i].tcp_conns, after[i].tcp_conns);
    }
    res->bpw = res->p1_bytes / (writes * (NODES - 1));
    res->bpw_tcp = res->p1_tcp_bytes / (writes * (NODES - 1));
    if (check_state(nodes[0].r, c, lw, 0, res->hash, &res->bad) < 0)
        goto out;
    res->state_ok = res->bad == 0;

    /* ---- phase 2: stop ws5, the four others write, restart it */
    node_t *v = &nodes[NODES - 1];
    stop_child(v, c->kill9 ? SIGKILL : SIGTERM);
    double p2first = 1e300, p2last = 0;
    for (int k = 0; k < NODES - 1; k++) {
        snprintf(line, sizeof line, "WRITE %d %zu %d %u\n", SEED_P2 + k + 1, p2_share(c, k),
                 W_PER_TXN, c->R);
        if (tell(&nodes[k], line) < 0)
            goto out;
    }
    for (int k = 0; k < NODES - 1; k++) {
        double t0, t1, cpu;
        if (hear(&nodes[k], line, sizeof line, 300) < 0 ||
            sscanf(line, "DONE %lf %lf %lf", &t0, &t1, &cpu) != 3)
            goto out;
        p2first = t0 < p2first ? t0 : p2first;
        p2last = t1 > p2last ? t1 : p2last;
    }
    res->p2_write_s = p2last - p2first;
    double t4 = wait_agree(nodes, all, NODES - 1, c->wait_s, NULL, NULL);
    if (t4 < 0) {
        fprintf(stderr, "bench/converge: the four did not agree within %.0f s\n", c->wait_s);
        goto out;
    }
    res->p2_agree_s = t4 > p2last ? t4 - p2last : 0;
    usleep(100000); /* let the four settle (acks, HAVEs) before the restart */

    double t_restart = w_now();
    if (spawn(nodes, NODES - 1, "--open", NULL) < 0 || hear(v, line, sizeof line, 20) < 0)
        goto out;
    double t_up;
    if (sscanf(line, "READY %lf", &t_up) == 1)
        res->node_up_s = t_up - t_restart;
    double t_caught = wait_agree(nodes, all, NODES, c->wait_s, dg, NULL);
    if (t_caught < 0) {
        fprintf(stderr, "bench/converge: the restarted node did not catch up within %.0f s\n",
                c->wait_s);
        goto out;
    }
    res->catchup_equal = 1;
    res->catchup_s = t_caught - t_restart;
    stat_t vs;
    if (ask_stat(v, &vs) < 0)
        goto out;
    res->catchup_recv = (double)vs.recv;
    if (check_state(v->r, c, lw, 1, res->hash2, &res->bad2) < 0)
        goto out;
    res->state2_ok = res->bad2 == 0;
    ret = 0;

out:
    for (int i = 0; i < NODES; i++)
        if (nodes[i].c.pid > 0) {
            if (ret == 0 && tell(&nodes[i], "QUIT\n") == 0)
                stop_child(&nodes[i], SIGTERM);
        }
    kill_all(nodes);
    for (int i = 0; i < NODES; i++)
        rep_replica_close(&nodes[i].r);
    if (ret < 0) {
        for (int i = 0; i < NODES; i++) { /* the end of each node's log */
            FILE *f = fopen(nodes[i].log, "r");
            if (!f)
                continue;
            static char tail[4096];
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            fseek(f, sz > (long)sizeof tail - 1 ? sz - (long)sizeof tail + 1 : 0, SEEK_SET);
            size_t k = fread(tail, 1, sizeof tail - 1, f);
            tail[k] = '\0';
            fclose(f);
            fprintf(stderr, "--- %s (end)\n%s\n", nodes[i].log, tail);
        }
    }
    if (c->keep)
        fprintf(stderr, "bench/converge: kept %s (node logs ws*.log)\n", tmp);
    else
        w_rmtree(tmp);
    free(tmp);
    return ret;
}

#define MED(A, n, expr)                                                                            \
    ({                                                                                             \
        double xs_[MAX_REPS] = {0};                                                                \
        for (int i_ = 0; i_ < (n); i_++)                                                           \
            xs_[i_] = (double)((A)[i_].expr);                                                      \
        w_median(xs_, (n));                                                                        \
    })

static double
loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench/converge [--reps N] [--json] [--smoke] [--kill9] [--keep]\n"
               "  --reps N    repetitions (default 1); medians are reported\n"
               "  --json      print only a JSON object\n"
               "  --smoke     tiny sizes (seconds), for the test suite\n"
               "  --kill9     stop the node of phase 2 with SIGKILL (default SIGTERM)\n"
               "  --keep      keep the replicas and the node logs (the directory is printed)\n");
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--child"))
        return child_main(argc, argv);
    cfg_t c = {W_R, 20000, 10000, 1, 0, 0, 0, 0, 60};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            c.reps = atoi(argv[++i]);
            if (c.reps < 1 || c.reps > MAX_REPS) {
                fprintf(stderr, "bench/converge: --reps must be 1..%d\n", MAX_REPS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--json")) {
            c.json = 1;
        } else if (!strcmp(argv[i], "--smoke") || !strcmp(argv[i], "--quick")) {
            c.smoke = 1;
        } else if (!strcmp(argv[i], "--kill9")) {
            c.kill9 = 1;
        } else if (!strcmp(argv[i], "--keep")) {
            c.keep = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (c.smoke) {
        c.R = 200;
        c.per_node = 500;
        c.phase2 = 400;
        c.wait_s = 30;
    }
    w_quiet = c.json;
    ssize_t k = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (k <= 0) {
        perror("bench/converge: /proc/self/exe");
        return 1;
    }
    g_self[k] = '\0';
    signal(SIGPIPE, SIG_IGN);

    lastw_t lw;
    for (int i = 0; i < NODES; i++)
        lw.p1[i] = last_values(c.R, SEED_P1 + i + 1, c.per_node);
    for (int i = 0; i < NODES - 1; i++)
        lw.p2[i] = last_values(c.R, SEED_P2 + i + 1, p2_share(&c, i));

    static res_t rs[MAX_REPS];
    double load0 = loadavg1();
    for (int i = 0; i < c.reps; i++)
        if (run_once(&c, &lw, &rs[i]) < 0) {
            fprintf(stderr, "bench/converge: repetition %d failed\n", i + 1);
            return 1;
        }
    double load1 = loadavg1();

    int n = c.reps, deq = 1, ceq = 1, s1 = 1, s2 = 1;
    for (int i = 0; i < n; i++) {
        deq &= rs[i].digests_equal;
        ceq &= rs[i].catchup_equal;
        s1 &= rs[i].state_ok;
        s2 &= rs[i].state2_ok;
    }
    char note[256], what[128];
    snprintf(what, sizeof what, "W3 all %d digests equal after the writes (all %d reps)", NODES, n);
    check(what, deq, "");
    snprintf(note, sizeof note, "bad fields %zu; state sha256 %s", rs[0].bad, rs[0].hash);
    check("W3 every field = one writer's last value", s1, note);
    check("W3 restarted node's digest == the others' (all reps)", ceq, "");
    snprintf(note, sizeof note, "bad fields %zu; state sha256 %s", rs[0].bad2, rs[0].hash2);
    check("W3 after phase 2: phase-2 values win where written", s2, note);

    double writes = (double)c.per_node * NODES;
    double conv = MED(rs, n, converge_s), cu = MED(rs, n, catchup_s);
    double bpw = MED(rs, n, bpw), bpw_tcp = MED(rs, n, bpw_tcp);
    double wr = MED(rs, n, write_rate), wsec = MED(rs, n, write_s);
    double dgs = MED(rs, n, digest_s), up = MED(rs, n, node_up_s);
    double p1b = MED(rs, n, p1_bytes), p1t = MED(rs, n, p1_tcp_bytes);
    double setup = MED(rs, n, setup_s), p2w = MED(rs, n, p2_write_s);
    double p2a = MED(rs, n, p2_agree_s), cur = MED(rs, n, catchup_recv);

    snprintf(note, sizeof note,
             "%d nodes x %zu updates, 100/txn, durable; first begin -> last commit %.2f s",
             NODES, c.per_node, wsec);
    w_result(WHO, "W3", "writes, all nodes at once", wr, "ops/s", note);
    snprintf(note, sizeof note,
             "last commit anywhere -> all %d vv and digests equal (poll %d ms; digests took %.0f ms)",
             NODES, POLL_MS, dgs * 1e3);
    w_result(WHO, "W3", "converge after last write", conv * 1e3, "ms", note);
    snprintf(note, sizeof note, "sync messages (rep_node_status sent_bytes): %.0f B / (%.0f x %d)",
             p1b, writes, NODES - 1);
    w_result(WHO, "W3", "bytes sent per write per peer", bpw, "B", note);
    snprintf(note, sizeof note, "TCP payload (TCP_INFO bytes_sent; ZMTP+CURVE): %.0f B", p1t);
    w_result(WHO, "W3", "bytes sent per write per peer, on the wire", bpw_tcp, "B", note);
    snprintf(note, sizeof note,
             "restart (%s before) -> digest equal; %zu writes missed; node up after %.0f ms; "
             "received %.0f B",
             c.kill9 ? "SIGKILL" : "SIGTERM", c.phase2, up * 1e3, cur);
    w_result(WHO, "W3", "restarted node catch-up", cu * 1e3, "ms", note);
    snprintf(note, sizeof note, "4 nodes x %zu updates in %.2f s; they agreed %.0f ms after",
             c.phase2 / (NODES - 1), p2w, p2a * 1e3);
    w_result(WHO, "W3", "phase 2 writes (one node down)", (double)c.phase2 / p2w, "ops/s", note);
    w_result(WHO, "W3", "office set up (1 creates, 4 join, mesh up)", setup * 1e3, "ms", "");

    if (c.json) {
        printf("{\"W3\":{\"converge_s\":%.4f,\"catchup_s\":%.4f,\"bytes_per_write\":%.2f,"
               "\"bytes_per_write_tcp\":%.2f,\"nodes\":%d,\"writes\":%.0f,\"catchup_writes\":%zu,"
               "\"write_s\":%.4f,\"writes_per_s\":%.0f,\"sent_bytes\":%.0f,\"tcp_sent_bytes\":%.0f,"
               "\"node_up_s\":%.4f,\"catchup_received_bytes\":%.0f,\"setup_s\":%.3f,"
               "\"digests_equal\":%s,\"catchup_digest_equal\":%s,\"state_ok\":%s,"
               "\"state_sha256\":\"%s\",\"stop\":\"%s\",\"loadavg\":[%.2f,%.2f]},",
               conv, cu, bpw, bpw_tcp, NODES, writes, c.phase2, wsec, wr, p1b, p1t, up, cur, setup,
               deq ? "true" : "false", ceq ? "true" : "false", s1 && s2 ? "true" : "false",
               rs[0].hash2, c.kill9 ? "SIGKILL" : "SIGTERM", load0, load1);
        printf("\"reps\":%d,\"smoke\":%s,\"ok\":%s}\n", n, c.smoke ? "true" : "false",
               g_failed ? "false" : "true");
    } else {
        printf("\nlibreplica bench/converge: W3 %s, %d rep(s), medians; durable commits; %s; "
               "load average %.2f -> %.2f\n",
               c.smoke ? "SMOKE sizes" : "full", n,
               getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", load0, load1);
        printf("W3  %d nodes, CURVE, full mesh; %.0f writes (%zu per node, 100/txn) in %.2f s\n",
               NODES, writes, c.per_node, wsec);
        printf("    converge after last write  %7.0f ms    (target <= 1000)\n", conv * 1e3);
        printf("    bytes/write/peer           %7.2f B     sync messages (target <= 40)\n", bpw);
        printf("                               %7.2f B     TCP payload, ZMTP + CURVE included\n",
               bpw_tcp);
        printf("    restarted node catch-up    %7.0f ms    %zu writes missed (target <= 1000); "
               "stopped by %s\n",
               cu * 1e3, c.phase2, c.kill9 ? "SIGKILL" : "SIGTERM");
        if (n > 1) {
            printf("    per rep (converge ms / catch-up ms / B/write):");
            for (int i = 0; i < n; i++)
                printf(" %.0f/%.0f/%.1f", rs[i].converge_s * 1e3, rs[i].catchup_s * 1e3,
                       rs[i].bpw);
            printf("\n");
        }
        printf("%s\n", g_failed ? "FAILED: see the CHECK lines" : "all checks passed");
    }
    for (int i = 0; i < NODES; i++)
        free(lw.p1[i]);
    for (int i = 0; i < NODES - 1; i++)
        free(lw.p2[i]);
    return g_failed ? 1 : 0;
}
