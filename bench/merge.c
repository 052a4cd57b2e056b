/*
 * merge.c — bench/merge: libreplica on the shared workloads W1 and W2 (../shared/WORKLOADS.md),
 * linked like any user of the library (public replica.h only).
 *
 *   bench/merge [--reps N] [--json] [--smoke] [--no-per1]
 *
 * W1[per100]  replica A writes W1's 200,000 writes, 100 per transaction (2,000 durable
 *             changes); what A sends an empty peer (rep_replica_catchup with no version
 *             vector: a snapshot of A's state) is imported into a fresh, empty replica B of
 *             the same office, in a forked child that
 *             reports its peak memory. Figures: A's write rate, payload bytes per write, B's
 *             merge rate (200,000 / import seconds), the child's VmHWM and RssAnon, and the
 *             merge time as a multiple of the LMDB floor measured in the same run. Checks: A's
 *             and B's states hash to the W1 state hash, and B's digest equals A's.
 * W1[per1]    the same with one write per transaction, on the first 20,000 writes, once.
 * W2[per100]  A writes W1's 80,000 initial sets, B imports them (untimed); then A makes
 *             100,000 updates (seed 1) and B 100,000 (seed 2), 100 per transaction; each
 *             answers the other's version vector with rep_replica_catchup (changes or a
 *             snapshot, whichever is smaller: here the changes) and the other imports it. Figures: 100,000 / import seconds, each way. Checks: equal digests,
 *             equal states, every field holds the base value or one side's last write.
 *
 * Every commit and import is durable (no REP_OPEN_NOSYNC), on real LMDB directories under
 * $TMPDIR (default /tmp), removed at the end. With --reps N each repetition rebuilds
 * everything and the medians are printed. --json prints only one JSON object. --smoke runs
 * tiny sizes (seconds; checks the states against the stream rather than the fixed W1 hash).
 * Exit status: 0; 1 when a check failed or something broke; 2 for a usage error.
 */
#include <errno.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <replica.h>

#include "floor_lmdb.h"
#include "workload.h"

#define WHO "libreplica"

typedef struct cfg {
    uint32_t R;        /* records */
    size_t w1_updates; /* W1 updates after the R*8 initial sets */
    size_t per1;       /* writes of the 1-write-per-transaction variant (0: skip) */
    size_t w2_updates; /* W2 updates on each side */
    int reps, json, smoke;
} cfg_t;

static int g_failed = 0;

static void
check(const char *what, int ok, const char *detail)
{
    if (!w_check(WHO, what, ok, detail))
        g_failed = 1;
}

static int
rep_fail(const char *what, int rc)
{
    fprintf(stderr, "bench/merge: %s: %s\n", what, rep_strerror(rc));
    return -1;
}

#define TRY(what, expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0)                                                                               \
            return rep_fail(what, rc_);                                                            \
    } while (0)

static char *
path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* What a new replica of A's office starts from (rep_replica_provision). */
typedef struct prov {
    uint8_t *p;
    size_t n;
} prov_t;

static int
open_replica(rep_replica_t **r, const char *dir, const char *device, const prov_t *prov)
{
    rep_open_opts_t o;
    memset(&o, 0, sizeof o);
    o.flags = REP_OPEN_CREATE | REP_OPEN_EXCL; /* durable: no REP_OPEN_NOSYNC */
    o.office_name = "bench office";
    o.device_name = device;
    if (prov) { /* a member of A's office, enrolled by A */
        o.provision = prov->p;
        o.provision_len = prov->n;
    }
    TRY("rep_replica_open", rep_replica_open(r, dir, &o));
    return 0;
}

/* ---- Writing a stream ------------------------------------------------------------------------ */

typedef enum { STREAM_W1, STREAM_UPDATES } stream_kind_t;

typedef struct stream {
    stream_kind_t kind;
    uint32_t R;
    w_rng_t g;
} stream_t;

/*
 * Write @p n writes of @p s into @p r, @p per_txn to a transaction (one change each), durably.
 * @p last, if not NULL, receives each field's last value written. The time covers everything:
 * drawing the writes, rep_txn_begin / set / commit; @p cpu (if not NULL) gets the CPU time
 * (the rest of the wall time is mostly waiting for the disk).
 */
static int
write_stream(rep_replica_t *r, stream_t *s, size_t n, size_t per_txn, char *last, double *secs,
             double *cpu)
{
    rep_txn_t *t = NULL;
    char key[32], field[8];
    w_op_t op;
    double t0 = w_now(), c0 = w_cpu_now();
    for (size_t i = 0; i < n; i++) {
        if (s->kind == STREAM_W1)
            w_w1_op(&s->g, s->R, i, &op);
        else
            w_update_op(&s->g, s->R, &op);
        if (!t)
            TRY("rep_txn_begin", rep_txn_begin(r, NULL, &t));
        w_key(key, sizeof key, op.rec);
        w_field(field, sizeof field, op.fld);
        rep_value_t v = {.type = REP_STRING, .u.s = {op.val, W_VLEN}};
        int rc = rep_txn_set(t, key, field, &v);
        if (rc < 0) {
            rep_txn_free(&t);
            return rep_fail("rep_txn_set", rc);
        }
        if (last)
            memcpy(w_state_at(last, op.rec, op.fld), op.val, W_VLEN);
        if ((i + 1) % per_txn == 0 || i + 1 == n) {
            rc = rep_txn_commit(t, NULL);
            rep_txn_free(&t);
            if (rc < 0)
                return rep_fail("rep_txn_commit", rc);
        }
    }
    *secs = w_now() - t0;
    if (cpu)
        *cpu = w_cpu_now() - c0;
    return 0;
}

/* ---- Reading the state back ------------------------------------------------------------------ */

/*
 * Read every record of the collection with one rep_replica_list() into a fresh state
 * ((record, field) order, '?' for missing); NULL on failure or on anything unexpected.
 */
static char *
read_state(rep_replica_t *r, uint32_t R)
{
    rep_list_t *l = NULL;
    int rc = rep_replica_list(r, W_COLL, NULL, 0, &l);
    if (rc < 0) {
        rep_fail("rep_replica_list", rc);
        return NULL;
    }
    char *s = w_state_new(R);
    int bad = !s;
    static const char pre[] = W_COLL "/rec:";
    for (size_t i = 0; i < l->n && !bad; i++) {
        const rep_record_t *rec = &l->records[i];
        char *end;
        if (strncmp(rec->key, pre, sizeof pre - 1) != 0) {
            bad = 1;
            break;
        }
        unsigned long rn = strtoul(rec->key + sizeof pre - 1, &end, 10);
        if (*end || rn >= R) {
            bad = 1;
            break;
        }
        for (size_t j = 0; j < rec->nfields; j++) {
            const rep_field_t *f = &rec->fields[j];
            if (!f->name[0])
                continue; /* the record's existence, should a version list it */
            unsigned fn = (unsigned)(f->name[1] - '0');
            if (f->name[0] != 'f' || fn >= W_F || f->name[2] || f->kind != REP_KIND_REGISTER ||
                f->value.type != REP_STRING || f->value.u.s.len != W_VLEN) {
                bad = 1;
                break;
            }
            memcpy(w_state_at(s, (uint32_t)rn, fn), f->value.u.s.ptr, W_VLEN);
        }
    }
    rep_list_free(&l);
    if (bad) {
        fprintf(stderr, "bench/merge: unexpected record or field in the replica\n");
        free(s);
        return NULL;
    }
    return s;
}

static int
state_hash(rep_replica_t *r, uint32_t R, char hex[65], double *secs)
{
    double t0 = w_now();
    char *s = read_state(r, R);
    if (!s)
        return -1;
    if (secs)
        *secs = w_now() - t0;
    w_state_hash(s, R, hex);
    free(s);
    return 0;
}

static void
hex_of(const uint8_t *p, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

/* ---- Importing in a forked child (the merging replica's memory) ------------------------------ */

typedef struct import_res {
    int rc;              /* 0, or the failing step's code */
    double import_s;     /* rep_replica_import() only */
    double verify_s;     /* rep_replica_verify() of the same payload, after: what checking
                            signatures and opening seals (and decoding) costs of import_s */
    double import_cpu_s; /* its CPU time (user + system) */
    double read_s;       /* read all R*8 fields back (rep_replica_list) */
    long rss_fork_kb;    /* VmRSS when the child starts (inherited from the parent) */
    long hwm_kb;         /* VmHWM at the end of the import */
    long rss_anon_kb;    /* RssAnon at the end of the import */
    uint8_t digest[REP_DIGEST_BYTES];
    char hash[65];
    rep_import_stats_t st;
} import_res_t;

/* kB values of VmHWM, VmRSS and RssAnon from /proc/self/status (-1 when absent). */
static void
proc_status(long *hwm, long *rss, long *anon)
{
    char line[256];
    *hwm = *rss = *anon = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmHWM:", 6))
            *hwm = strtol(line + 6, NULL, 10);
        else if (!strncmp(line, "VmRSS:", 6))
            *rss = strtol(line + 6, NULL, 10);
        else if (!strncmp(line, "RssAnon:", 8))
            *anon = strtol(line + 8, NULL, 10);
    }
    fclose(f);
}

static void
child_import(const char *dir, const prov_t *office, const uint8_t *payload, size_t len, uint32_t R,
             import_res_t *res)
{
    long hwm, anon;
    rep_replica_t *b = NULL;
    memset(res, 0, sizeof *res);
    proc_status(&hwm, &res->rss_fork_kb, &anon);
    if ((res->rc = open_replica(&b, dir, "B", office)) < 0)
        return;
    double t0 = w_now(), c0 = w_cpu_now();
    res->rc = rep_replica_import(b, payload, len, &res->st);
    res->import_s = w_now() - t0;
    res->import_cpu_s = w_cpu_now() - c0;
    proc_status(&res->hwm_kb, &hwm, &res->rss_anon_kb);
    if (res->rc == 0) {
        t0 = w_now();
        if ((res->rc = rep_replica_verify(b, payload, len, NULL)) < 0)
            rep_fail("rep_replica_verify", res->rc);
        res->verify_s = w_now() - t0;
    }
    if (res->rc < 0)
        rep_fail("rep_replica_import", res->rc);
    else if ((res->rc = rep_replica_digest(b, res->digest)) < 0)
        rep_fail("rep_replica_digest", res->rc);
    else
        res->rc = state_hash(b, R, res->hash, &res->read_s);
    rep_replica_close(&b);
}

/* Open a fresh replica of @p office in @p dir in a forked child and import @p payload there. */
static int
import_forked(const char *dir, const prov_t *office, const uint8_t *payload, size_t len,
              uint32_t R, import_res_t *res)
{
    int fd[2];
    if (pipe(fd) != 0) {
        perror("bench/merge: pipe");
        return -1;
    }
    fflush(NULL);
    malloc_trim(0); /* what the parent freed is not counted against the child */
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench/merge: fork");
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        import_res_t r;
        child_import(dir, office, payload, len, R, &r);
        const char *p = (const char *)&r;
        size_t left = sizeof r;
        while (left) {
            ssize_t k = write(fd[1], p, left);
            if (k <= 0)
                _exit(1);
            p += k;
            left -= (size_t)k;
        }
        _exit(r.rc < 0 ? 1 : 0);
    }
    close(fd[1]);
    char *p = (char *)res;
    size_t got = 0;
    while (got < sizeof *res) {
        ssize_t k = read(fd[0], p + got, sizeof *res - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof *res || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench/merge: the importing child failed\n");
        return -1;
    }
    return 0;
}

/* ---- W1 -------------------------------------------------------------------------------------- */

typedef struct w1_res {
    size_t writes, changes, payload;
    double write_s, write_cpu_s, export_s;
    char a_hash[65];
    uint8_t a_digest[REP_DIGEST_BYTES];
    import_res_t imp;
} w1_res_t;

/* One W1 pass: A writes the first @p n writes of the stream, @p per_txn to a change; B imports. */
static int
run_w1(const cfg_t *c, size_t n, size_t per_txn, w1_res_t *res)
{
    int rc = -1;
    char *top = w_tmpdir();
    if (!top) {
        perror("bench/merge: mkdtemp");
        return -1;
    }
    char *adir = path_join(top, "a"), *bdir = path_join(top, "b");
    rep_replica_t *a = NULL;
    rep_info_t *info = NULL;
    uint8_t *payload = NULL;
    memset(res, 0, sizeof *res);
    res->writes = n;
    res->changes = (n + per_txn - 1) / per_txn;

    if (open_replica(&a, adir, "A", NULL) < 0)
        goto out;
    stream_t s = {STREAM_W1, c->R, {W_SEED_W1}};
    if (write_stream(a, &s, n, per_txn, NULL, &res->write_s, &res->write_cpu_s) < 0)
        goto out;
    double t0 = w_now();
    int e = rep_replica_catchup(a, NULL, 0, 0, &payload, &res->payload, NULL);
    res->export_s = w_now() - t0;
    if (e < 0) {
        rep_fail("rep_replica_catchup", e);
        goto out;
    }
    if ((e = rep_replica_digest(a, res->a_digest)) < 0 || (e = rep_replica_info(a, &info)) < 0) {
        rep_fail("rep_replica_digest/info", e);
        goto out;
    }
    if (state_hash(a, c->R, res->a_hash, NULL) < 0)
        goto out;
    rep_info_free(&info);
    prov_t office = {NULL, 0};
    if ((e = rep_replica_provision(a, "B", "member", &office.p, &office.n)) < 0) {
        rep_fail("rep_replica_provision", e);
        goto out;
    }
    rep_replica_close(&a); /* the child opens only B */
    rc = import_forked(bdir, &office, payload, res->payload, c->R, &res->imp);
    rep_free(office.p);
out:
    rep_info_free(&info);
    rep_replica_close(&a);
    rep_free(payload);
    if (w_rmtree(top) != 0)
        fprintf(stderr, "bench/merge: could not remove %s\n", top);
    free(adir);
    free(bdir);
    free(top);
    return rc;
}

/* ---- W2 -------------------------------------------------------------------------------------- */

typedef struct w2_res {
    double a_write_s, b_write_s;
    size_t pay_ab, pay_ba;     /* A's changes for B, B's for A */
    double exp_ab_s, exp_ba_s; /* their exports */
    double imp_ab_s, imp_ba_s; /* importing them: into B, into A */
    double ver_ab_s, ver_ba_s; /* verifying them (rep_replica_verify) */
    rep_import_stats_t st_ab, st_ba;
    int digests_equal, states_equal, fields_ok;
    size_t from_a, from_b, bad;
    uint64_t conflicts;
    char hash[65];
} w2_res_t;

/* Export what @p to lacks from @p from (to's version vector), then import it into @p to. */
static int
sync_timed(rep_replica_t *from, rep_replica_t *to, size_t *len, double *exp_s, double *imp_s,
           double *ver_s, rep_import_stats_t *st)
{
    uint8_t *vv = NULL, *p = NULL;
    size_t vvlen;
    TRY("rep_replica_vv", rep_replica_vv(to, &vv, &vvlen));
    double t0 = w_now();
    int rc = rep_replica_catchup(from, vv, vvlen, 0, &p, len, NULL);
    *exp_s = w_now() - t0;
    rep_free(vv);
    if (rc < 0)
        return rep_fail("rep_replica_catchup", rc);
    t0 = w_now();
    rc = rep_replica_import(to, p, *len, st);
    *imp_s = w_now() - t0;
    if (rc == 0) { /* what verification took of that: the same checks again, nothing applied */
        t0 = w_now();
        rc = rep_replica_verify(to, p, *len, NULL);
        *ver_s = w_now() - t0;
    }
    rep_free(p);
    if (rc < 0)
        return rep_fail("rep_replica_import/verify", rc);
    return 0;
}

static int
run_w2(const cfg_t *c, w2_res_t *res)
{
    int rc = -1;
    char *top = w_tmpdir();
    if (!top) {
        perror("bench/merge: mkdtemp");
        return -1;
    }
    char *adir = path_join(top, "a"), *bdir = path_join(top, "b");
    rep_replica_t *a = NULL, *b = NULL;
    rep_info_t *info = NULL;
    uint8_t *p = NULL;
    char *last_a = w_state_new(c->R), *last_b = w_state_new(c->R);
    char *base = w_w1_expected(c->R, (size_t)c->R * W_F), *sa = NULL, *sb = NULL;
    size_t len, base_n = (size_t)c->R * W_F;
    double t;
    memset(res, 0, sizeof *res);
    if (!last_a || !last_b || !base)
        goto out;

    /* the base: W1's initial sets on A in one change, B gets them (untimed) */
    if (open_replica(&a, adir, "A", NULL) < 0)
        goto out;
    stream_t s = {STREAM_W1, c->R, {W_SEED_W1}};
    if (write_stream(a, &s, base_n, base_n, NULL, &t, NULL) < 0)
        goto out;
    int e = rep_replica_info(a, &info);
    if (e < 0) {
        rep_fail("rep_replica_info", e);
        goto out;
    }
    prov_t pb = {NULL, 0};
    if ((e = rep_replica_provision(a, "B", "member", &pb.p, &pb.n)) < 0) {
        rep_fail("rep_replica_provision", e);
        goto out;
    }
    e = open_replica(&b, bdir, "B", &pb);
    rep_free(pb.p);
    if (e < 0)
        goto out;
    if ((e = rep_replica_export(a, NULL, 0, 0, &p, &len, NULL)) < 0 ||
        (e = rep_replica_import(b, p, len, NULL)) < 0) {
        rep_fail("base export/import", e);
        goto out;
    }
    rep_free(p);
    p = NULL;

    /* each side's updates, 100 to a change */
    stream_t ua = {STREAM_UPDATES, c->R, {W_SEED_W2_A}};
    stream_t ub = {STREAM_UPDATES, c->R, {W_SEED_W2_B}};
    if (write_stream(a, &ua, c->w2_updates, W_PER_TXN, last_a, &res->a_write_s, NULL) < 0 ||
        write_stream(b, &ub, c->w2_updates, W_PER_TXN, last_b, &res->b_write_s, NULL) < 0)
        goto out;

    /* B's changes into A, then A's into B: each export answers the receiver's version vector,
       which covers the receiver's own updates, so each payload holds the other side's updates */
    if (sync_timed(b, a, &res->pay_ba, &res->exp_ba_s, &res->imp_ba_s, &res->ver_ba_s, &res->st_ba) < 0)
        goto out;
    if (sync_timed(a, b, &res->pay_ab, &res->exp_ab_s, &res->imp_ab_s, &res->ver_ab_s, &res->st_ab) < 0)
        goto out;

    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    if ((e = rep_replica_digest(a, da)) < 0 || (e = rep_replica_digest(b, db)) < 0) {
        rep_fail("rep_replica_digest", e);
        goto out;
    }
    res->digests_equal = memcmp(da, db, sizeof da) == 0;
    if (!(sa = read_state(a, c->R)) || !(sb = read_state(b, c->R)))
        goto out;
    res->states_equal = memcmp(sa, sb, (size_t)c->R * W_F * W_VLEN) == 0;
    w_state_hash(sa, c->R, res->hash);
    for (uint32_t r = 0; r < c->R; r++)
        for (uint32_t f = 0; f < W_F; f++) {
            const char *w = w_state_at(sa, r, f), *la = w_state_at(last_a, r, f),
                       *lb = w_state_at(last_b, r, f);
            int wa = la[0] != '?', wb = lb[0] != '?';
            if (wa && !memcmp(w, la, W_VLEN))
                res->from_a++;
            else if (wb && !memcmp(w, lb, W_VLEN))
                res->from_b++;
            else if (wa || wb || memcmp(w, w_state_at(base, r, f), W_VLEN))
                res->bad++;
        }
    res->fields_ok = res->bad == 0;
    rep_info_free(&info);
    if ((e = rep_replica_info(a, &info)) < 0) {
        rep_fail("rep_replica_info", e);
        goto out;
    }
    res->conflicts = info->conflicts;
    rc = 0;
out:
    rep_info_free(&info);
    rep_replica_close(&a);
    rep_replica_close(&b);
    rep_free(p);
    free(last_a);
    free(last_b);
    free(base);
    free(sa);
    free(sb);
    if (w_rmtree(top) != 0)
        fprintf(stderr, "bench/merge: could not remove %s\n", top);
    free(adir);
    free(bdir);
    free(top);
    return rc;
}

/* ---- Reporting ------------------------------------------------------------------------------- */

#define MAX_REPS 100

/* The median of member `expr` over the first n elements of array A (a statement expression). */
#define MED(A, n, expr)                                                                            \
    ({                                                                                             \
        double xs_[MAX_REPS] = {0};                                                                \
        for (int i_ = 0; i_ < (n); i_++)                                                           \
            xs_[i_] = (double)((A)[i_].expr);                                                      \
        w_median(xs_, (n));                                                                        \
    })

typedef struct w1_summary {
    size_t writes, changes;
    double write_s, write_cpu_s, export_s, payload, import_s, import_cpu_s, read_s, hwm, anon,
        rss_fork, verify_s;
    int digests_equal, a_ok, b_ok;
    char hash[65];
} w1_summary_t;

static void
summarize_w1(const char *label, const w1_res_t *r, int n, const char *expected, w1_summary_t *s)
{
    char what[128], note[256], dh[2 * REP_DIGEST_BYTES + 1];
    memset(s, 0, sizeof *s);
    s->writes = r[0].writes;
    s->changes = r[0].changes;
    s->write_s = MED(r, n, write_s);
    s->write_cpu_s = MED(r, n, write_cpu_s);
    s->import_cpu_s = MED(r, n, imp.import_cpu_s);
    s->export_s = MED(r, n, export_s);
    s->payload = MED(r, n, payload);
    s->import_s = MED(r, n, imp.import_s);
    s->verify_s = MED(r, n, imp.verify_s);
    s->read_s = MED(r, n, imp.read_s);
    s->hwm = MED(r, n, imp.hwm_kb) * 1024;
    s->anon = MED(r, n, imp.rss_anon_kb) * 1024;
    s->rss_fork = MED(r, n, imp.rss_fork_kb) * 1024;
    s->digests_equal = s->a_ok = s->b_ok = 1;
    for (int i = 0; i < n; i++) {
        s->digests_equal &= !memcmp(r[i].a_digest, r[i].imp.digest, REP_DIGEST_BYTES);
        s->a_ok &= !strcmp(r[i].a_hash, expected);
        s->b_ok &= !strcmp(r[i].imp.hash, expected);
    }
    snprintf(s->hash, sizeof s->hash, "%s", r[0].imp.hash);

    snprintf(what, sizeof what, "%s A state == expected (all %d reps)", label, n);
    check(what, s->a_ok, r[0].a_hash);
    snprintf(what, sizeof what, "%s B state == expected (all %d reps)", label, n);
    check(what, s->b_ok, r[0].imp.hash);
    hex_of(r[0].imp.digest, REP_DIGEST_BYTES, dh);
    snprintf(what, sizeof what, "%s B digest == A digest (all %d reps)", label, n);
    check(what, s->digests_equal, dh);

    double W = (double)s->writes;
    snprintf(note, sizeof note, "t=%.1f ms (cpu %.1f ms), %zu change(s), durable", s->write_s * 1e3,
             s->write_cpu_s * 1e3, s->changes);
    w_result(WHO, label, "A writes", W / s->write_s, "ops/s", note);
    snprintf(note, sizeof note, "%.0f B, encode %.1f ms", s->payload, s->export_s * 1e3);
    w_result(WHO, label, "export>import payload", s->payload / W, "B/op", note);
    snprintf(note, sizeof note, "t=%.1f ms (cpu %.1f ms); %llu changes applied, durable",
             s->import_s * 1e3, s->import_cpu_s * 1e3, (unsigned long long)r[0].imp.st.applied);
    w_result(WHO, label, "export>import apply", W / s->import_s, "ops/s", note);
    snprintf(note, sizeof note, "rep_replica_verify %.1f ms = %.0f%% of the merge's %.1f ms",
             s->verify_s * 1e3, 100 * s->verify_s / s->import_s, s->import_s * 1e3);
    w_result(WHO, label, "export>import apply without verification", W / (s->import_s - s->verify_s),
             "ops/s", note);
    snprintf(note, sizeof note, "t=%.1f ms; read with rep_replica_list",
             (s->import_s + s->read_s) * 1e3);
    w_result(WHO, label, "export>import apply+read all", W / (s->import_s + s->read_s), "ops/s",
             note);
    snprintf(note, sizeof note, "forked child; VmRSS %.1f MiB at fork (payload included)",
             s->rss_fork / 1048576);
    w_result(WHO, label, "B peak memory (VmHWM)", s->hwm / 1048576, "MiB", note);
    w_result(WHO, label, "B RssAnon after import", s->anon / 1048576, "MiB", "");
}

static const char *
yesno(int b)
{
    return b ? "yes" : "NO";
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench/merge [--reps N] [--json] [--smoke] [--no-per1]\n"
               "  --reps N    repetitions (default 1); medians are reported\n"
               "  --json      print only a JSON object\n"
               "  --smoke     tiny sizes (seconds), for the test suite\n"
               "  --no-per1   skip the 1-write-per-transaction variant\n");
}

int
main(int argc, char **argv)
{
    cfg_t c = {W_R, W1_UPDATES, 20000, W2_UPDATES, 1, 0, 0};
    int no_per1 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            c.reps = atoi(argv[++i]);
            if (c.reps < 1 || c.reps > MAX_REPS) {
                fprintf(stderr, "bench/merge: --reps must be 1..%d\n", MAX_REPS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--json")) {
            c.json = 1;
        } else if (!strcmp(argv[i], "--smoke") || !strcmp(argv[i], "--quick")) {
            c.smoke = 1;
        } else if (!strcmp(argv[i], "--no-per1")) {
            no_per1 = 1;
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
        c.w1_updates = 3000;
        c.per1 = 200;
        c.w2_updates = 2000;
    }
    if (no_per1)
        c.per1 = 0;
    w_quiet = c.json;
    if (sodium_init() < 0) {
        fprintf(stderr, "bench/merge: sodium_init failed\n");
        return 1;
    }

    const size_t n1 = (size_t)c.R * W_F + c.w1_updates;
    char *expected = w_w1_expected(c.R, n1);
    if (!expected)
        return 1;
    char exp_hex[65], floor_hex[65], note[256];
    w_state_hash(expected, c.R, exp_hex);
    if (!c.smoke)
        check("W1 stream state hash == WORKLOADS.md", !strcmp(exp_hex, W_W1_STATE_SHA256), exp_hex);

    static w1_res_t w1[MAX_REPS];
    static w2_res_t w2[MAX_REPS];
    double floor_s[MAX_REPS];
    char *ftmp = w_tmpdir();
    if (!ftmp) {
        perror("bench/merge: mkdtemp");
        return 1;
    }
    int floor_ok = 1;
    for (int i = 0; i < c.reps; i++) {
        floor_s[i] = floor_lmdb_final(ftmp, expected, c.R, 0, floor_hex);
        if (floor_s[i] < 0)
            return 1;
        floor_ok &= !strcmp(floor_hex, exp_hex);
        if (run_w1(&c, n1, W_PER_TXN, &w1[i]) < 0)
            return 1;
        if (run_w2(&c, &w2[i]) < 0)
            return 1;
    }
    w_rmtree(ftmp);
    free(ftmp);

    /* ---- the LMDB floor */
    double fl = w_median(floor_s, c.reps);
    check("LMDB floor: state read back == expected", floor_ok, floor_hex);
    snprintf(note, sizeof note, "t=%.1f ms incl. commit (the floor of floor_ratio)", fl * 1e3);
    w_result("lmdb", "W1", "final-state puts, 1 txn, sync", c.R * W_F / fl, "puts/s", note);

    /* ---- W1[per100] */
    w1_summary_t s1;
    summarize_w1("W1[per100]", w1, c.reps, exp_hex, &s1);
    double ratio = s1.import_s / fl;
    snprintf(note, sizeof note, "apply %.1f ms / LMDB floor %.1f ms", s1.import_s * 1e3, fl * 1e3);
    w_result(WHO, "W1[per100]", "apply / LMDB floor", ratio, "x", note);

    /* ---- W1[per1], once */
    w1_summary_t sp = {0};
    if (c.per1) {
        w1_res_t one;
        char *e1 = w_w1_expected(c.R, c.per1);
        char e1hex[65];
        if (!e1)
            return 1;
        w_state_hash(e1, c.R, e1hex);
        free(e1);
        if (run_w1(&c, c.per1, 1, &one) < 0)
            return 1;
        summarize_w1("W1[per1]", &one, 1, e1hex, &sp);
    }

    /* ---- W2[per100] */
    int n = c.reps;
    double ba = MED(w2, n, imp_ba_s), ab = MED(w2, n, imp_ab_s);
    double vba = MED(w2, n, ver_ba_s), vab = MED(w2, n, ver_ab_s);
    double U = (double)c.w2_updates;
    int w2_digests = 1, w2_states = 1, w2_fields = 1;
    for (int i = 0; i < n; i++) {
        w2_digests &= w2[i].digests_equal;
        w2_states &= w2[i].states_equal;
        w2_fields &= w2[i].fields_ok;
    }
    snprintf(note, sizeof note, "all %d reps", n);
    check("W2[per100] A digest == B digest", w2_digests, note);
    check("W2[per100] A state == B state", w2_states, w2[0].hash);
    snprintf(note, sizeof note, "bad=%zu fromA=%zu fromB=%zu", w2[0].bad, w2[0].from_a,
             w2[0].from_b);
    check("W2[per100] every field = base or a last write", w2_fields, note);
    double pba = MED(w2, n, pay_ba), pab = MED(w2, n, pay_ab);
    snprintf(note, sizeof note, "%.0f B, encode %.1f ms", pba, MED(w2, n, exp_ba_s) * 1e3);
    w_result(WHO, "W2[per100]", "export from vv>import payload B->A", pba / U, "B/op", note);
    snprintf(note, sizeof note, "t=%.1f ms, durable; %llu conflicts after", ba * 1e3,
             (unsigned long long)w2[0].conflicts);
    w_result(WHO, "W2[per100]", "export from vv>import merge B->A", U / ba, "ops/s", note);
    snprintf(note, sizeof note, "t=%.1f ms, durable; payload %.0f B, encode %.1f ms", ab * 1e3, pab,
             MED(w2, n, exp_ab_s) * 1e3);
    w_result(WHO, "W2[per100]", "export from vv>import merge A->B", U / ab, "ops/s", note);
    double w2_writes = MED(w2, n, a_write_s);
    snprintf(note, sizeof note, "t=%.1f ms, %zu changes, durable", w2_writes * 1e3,
             c.w2_updates / W_PER_TXN);
    w_result(WHO, "W2[per100]", "A writes (updates)", U / w2_writes, "ops/s", note);

    double w2_rate = U / (ba > ab ? ba : ab); /* the slower direction */

    if (c.json) {
        printf("{\"W1\":{\"merge_writes_per_s\":%.0f,\"bytes_per_write\":%.2f,"
               "\"local_writes_per_s\":%.0f,\"peak_rss_bytes\":%.0f,\"state_sha256\":\"%s\","
               "\"floor_ratio\":%.2f,\"verify_s\":%.4f,",
               (double)s1.writes / s1.import_s, s1.payload / (double)s1.writes,
               (double)s1.writes / s1.write_s, s1.hwm, s1.hash, ratio, s1.verify_s);
        printf("\"writes\":%zu,\"changes\":%zu,\"payload_bytes\":%.0f,\"export_s\":%.4f,"
               "\"merge_s\":%.4f,\"read_all_s\":%.4f,\"rss_anon_bytes\":%.0f,"
               "\"rss_at_fork_bytes\":%.0f,\"floor_s\":%.4f,\"digests_equal\":%s,"
               "\"state_ok\":%s},",
               s1.writes, s1.changes, s1.payload, s1.export_s, s1.import_s, s1.read_s, s1.anon,
               s1.rss_fork, fl, s1.digests_equal ? "true" : "false",
               s1.a_ok && s1.b_ok ? "true" : "false");
        if (c.per1)
            printf("\"W1_per1\":{\"writes\":%zu,\"local_writes_per_s\":%.0f,"
                   "\"bytes_per_write\":%.2f,\"merge_writes_per_s\":%.0f,"
                   "\"peak_rss_bytes\":%.0f,\"digests_equal\":%s,\"state_ok\":%s},",
                   sp.writes, (double)sp.writes / sp.write_s, sp.payload / (double)sp.writes,
                   (double)sp.writes / sp.import_s, sp.hwm, sp.digests_equal ? "true" : "false",
                   sp.a_ok && sp.b_ok ? "true" : "false");
        printf("\"W2\":{\"merge_writes_per_s\":%.0f,\"digests_equal\":%s,"
               "\"merge_b_to_a_writes_per_s\":%.0f,\"merge_a_to_b_writes_per_s\":%.0f,"
               "\"bytes_per_write_b_to_a\":%.2f,\"bytes_per_write_a_to_b\":%.2f,"
               "\"states_equal\":%s,\"state_sha256\":\"%s\"},",
               w2_rate, w2_digests ? "true" : "false", U / ba, U / ab, pba / U, pab / U,
               w2_states && w2_fields ? "true" : "false", w2[0].hash);
        printf("\"reps\":%d,\"smoke\":%s,\"ok\":%s}\n", c.reps, c.smoke ? "true" : "false",
               g_failed ? "false" : "true");
    } else {
        printf("\nlibreplica bench/merge: %s, %d rep(s), medians; durable commits; %s\n",
               c.smoke ? "SMOKE sizes" : "full W1/W2", c.reps,
               getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        printf(
            "W1[per100]  A writes            %9.0f writes/s  (%zu writes, %zu changes, %.2f s)\n",
            s1.writes / s1.write_s, s1.writes, s1.changes, s1.write_s);
        printf("            payload             %9.0f bytes     (%.2f B/write, export %.3f s)\n",
               s1.payload, s1.payload / s1.writes, s1.export_s);
        printf("            merge into empty B  %9.0f writes/s  (%.3f s = %.1f x the LMDB floor "
               "of %.1f ms)\n",
               s1.writes / s1.import_s, s1.import_s, ratio, fl * 1e3);
        printf("            verification        %9.1f ms       (%.0f%% of the merge; without it "
               "%.0f writes/s)\n",
               s1.verify_s * 1e3, 100 * s1.verify_s / s1.import_s,
               s1.writes / (s1.import_s - s1.verify_s));
        printf("            B peak memory       VmHWM %.1f MiB, RssAnon %.1f MiB (VmRSS %.1f MiB "
               "at fork)\n",
               s1.hwm / 1048576, s1.anon / 1048576, s1.rss_fork / 1048576);
        printf("            state sha256        %s (%s)\n", s1.hash,
               s1.b_ok ? "as expected" : "WRONG");
        printf("            digests equal       %s\n", yesno(s1.digests_equal));
        if (c.per1) {
            printf("W1[per1]    A writes            %9.0f writes/s  (%zu writes, %zu changes, "
                   "%.2f s)\n",
                   sp.writes / sp.write_s, sp.writes, sp.changes, sp.write_s);
            printf("            payload             %9.0f bytes     (%.2f B/write)\n", sp.payload,
                   sp.payload / sp.writes);
            printf("            merge into empty B  %9.0f writes/s  (%.3f s), VmHWM %.1f MiB\n",
                   sp.writes / sp.import_s, sp.import_s, sp.hwm / 1048576);
            printf("            state, digests      %s, %s\n", sp.b_ok ? "as expected" : "WRONG",
                   sp.digests_equal ? "equal" : "DIFFERENT");
        }
        printf("W2[per100]  merge B->A          %9.0f writes/s  (%.3f s, %.0f bytes)\n", U / ba, ba,
               pba);
        printf("            merge A->B          %9.0f writes/s  (%.3f s, %.0f bytes)\n", U / ab, ab,
               pab);
        printf("            verification        %.1f ms B->A, %.1f ms A->B (%.0f%%, %.0f%% of "
               "the merges; without it %.0f and %.0f writes/s)\n",
               vba * 1e3, vab * 1e3, 100 * vba / ba, 100 * vab / ab, U / (ba - vba), U / (ab - vab));
        printf("            digests equal       %s; converged state %s\n", yesno(w2_digests),
               w2[0].hash);
        printf("%s\n", g_failed ? "FAILED: see the CHECK lines" : "all checks passed");
    }
    free(expected);
    return g_failed ? 1 : 0;
}
