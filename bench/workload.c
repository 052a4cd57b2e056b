/* workload.c — see workload.h. */
#include "workload.h"

#include <errno.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int w_quiet = 0;

static const char W_ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

uint64_t
w_next(w_rng_t *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void
w_value(w_rng_t *g, char out[W_VLEN])
{
    for (int k = 0; k < 3; k++) {
        uint64_t x = w_next(g);
        for (int i = 0; i < 8; i++)
            out[k * 8 + i] = W_ALPHA[(x >> (8 * i)) & 63];
    }
}

void
w_update_op(w_rng_t *g, uint32_t R, w_op_t *op)
{
    op->rec = (uint32_t)(w_next(g) % R);
    op->fld = (uint32_t)(w_next(g) % W_F);
    w_value(g, op->val);
}

void
w_w1_op(w_rng_t *g, uint32_t R, size_t i, w_op_t *op)
{
    if (i < (size_t)R * W_F) {
        op->rec = (uint32_t)(i / W_F);
        op->fld = (uint32_t)(i % W_F);
        w_value(g, op->val);
    } else {
        w_update_op(g, R, op);
    }
}

char *
w_state_new(uint32_t R)
{
    size_t n = (size_t)R * W_F * W_VLEN;
    char *s = malloc(n);
    if (s)
        memset(s, '?', n);
    return s;
}

char *
w_w1_expected(uint32_t R, size_t n)
{
    char *s = w_state_new(R);
    if (!s)
        return NULL;
    w_rng_t g = {W_SEED_W1};
    w_op_t op;
    for (size_t i = 0; i < n; i++) {
        w_w1_op(&g, R, i, &op);
        memcpy(w_state_at(s, op.rec, op.fld), op.val, W_VLEN);
    }
    return s;
}

void
w_state_hash(const char *state, uint32_t R, char hex[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)state, (unsigned long long)R * W_F * W_VLEN);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

void
w_key(char *buf, size_t n, uint32_t rec)
{
    snprintf(buf, n, W_COLL "/rec:%05u", (unsigned)rec);
}

void
w_field(char *buf, size_t n, uint32_t fld)
{
    snprintf(buf, n, "f%u", (unsigned)fld);
}

double
w_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double
w_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double
w_median(const double *xs, int n)
{
    double *s = malloc(sizeof *s * (size_t)n);
    if (!s)
        abort();
    memcpy(s, xs, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

char *
w_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + sizeof "/libreplica-bench-XXXXXX";
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/libreplica-bench-XXXXXX", base);
    if (!mkdtemp(p)) {
        int e = errno;
        free(p);
        errno = e;
        return NULL;
    }
    return p;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int
w_rmtree(const char *dir)
{
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void
w_result(const char *who, const char *workload, const char *figure, double value, const char *unit,
         const char *note)
{
    if (w_quiet)
        return;
    if (value >= 100 || value <= -100)
        printf("RESULT\t%s\t%s\t%s\t%.0f\t%s\t%s\n", who, workload, figure, value, unit, note);
    else
        printf("RESULT\t%s\t%s\t%s\t%.4g\t%s\t%s\n", who, workload, figure, value, unit, note);
    fflush(stdout);
}

int
w_check(const char *who, const char *what, int ok, const char *detail)
{
    if (!w_quiet) {
        printf("CHECK\t%s\t%s\t%s\t%s\n", who, what, ok ? "OK" : "FAIL", detail);
        fflush(stdout);
    }
    if (!ok)
        fprintf(stderr, "bench: check failed: %s (%s)\n", what, detail);
    return ok;
}
