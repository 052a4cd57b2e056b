/*
 * testutil.h — small helpers shared by the Check programs under tests/.
 *
 * Header-only: every function is static (inline or marked unused), so a test that includes it
 * and uses nothing from it still builds with -Wall -Wextra -Werror. Nothing here depends on
 * Check; helpers return a status and leave asserting to the caller.
 *
 *   temp dirs   tu_tmpdir(), tu_tmpdir_in(), tu_rmtree(), tu_path()
 *   replicas    tu_replica_create(), tu_replica_reopen()
 *   PRNG        tu_rng_t (splitmix64, as in shared/WORKLOADS.md)
 *   clock       tu_clock_t, usable as rep_open_opts_t.clock_ms / clock_ctx
 *   hex         tu_hex(), tu_unhex()
 *   values      tu_v_str(), tu_v_int(), tu_is_str(), tu_value_eq(), tu_value_fmt()
 */
#ifndef REPLICA_TESTUTIL_H
#define REPLICA_TESTUTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "replica.h"

#define TU_UNUSED __attribute__((unused))

/** Big enough for every path a test builds. */
#define TU_PATH_MAX 4096

/* ---- Temporary directories ---------------------------------------------------------------- */

/**
 * Make a fresh directory "replica-test-XXXXXX" under @p base.
 * @return the path (caller frees with free()), or NULL with errno set.
 */
static inline char *
tu_tmpdir_in(const char *base)
{
    size_t n = strlen(base) + sizeof "/replica-test-XXXXXX";
    char *path = malloc(n);
    if (path == NULL)
        return NULL;
    snprintf(path, n, "%s/replica-test-XXXXXX", base);
    if (mkdtemp(path) == NULL) {
        int e = errno;
        free(path);
        errno = e;
        return NULL;
    }
    return path;
}

/**
 * Make a fresh directory "replica-test-XXXXXX" under $TMPDIR (or /tmp).
 * @return the path (caller frees with free()), or NULL with errno set.
 */
static inline char *
tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    return tu_tmpdir_in(base);
}

static TU_UNUSED int
tu__rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

/**
 * Remove @p path and everything below it (does not follow symlinks). A missing path is fine.
 * @return 0, or -errno.
 */
static inline int
tu_rmtree(const char *path)
{
    if (path == NULL)
        return 0;
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (nftw(path, tu__rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return errno ? -errno : -EIO;
    return 0;
}

/** Write "base/sub" into @p buf (TU_PATH_MAX bytes). @return 0, or -ENAMETOOLONG. */
static inline int
tu_path(char *buf, const char *base, const char *sub)
{
    int n = snprintf(buf, TU_PATH_MAX, "%s/%s", base, sub);
    return n < 0 || n >= TU_PATH_MAX ? -ENAMETOOLONG : 0;
}

/* ---- Opening replicas --------------------------------------------------------------------- */

/**
 * Create a replica in the fresh subdirectory @p base/@p sub (made here; it must not exist yet).
 *
 * @param[out] out    the open replica (NULL on failure)
 * @param[in]  opts   options to start from, or NULL; copied; REP_OPEN_CREATE is added
 * @param[in]  admin  an admin replica of the office to join, which enrolls the new device as a
 *                    member named @p sub (rep_replica_provision()); NULL founds a new office
 * @return what rep_replica_provision() or rep_replica_open() returns, or -errno if the
 *         directory cannot be made.
 */
static inline int
tu_replica_create(rep_replica_t **out, const char *base, const char *sub,
                  const rep_open_opts_t *opts, rep_replica_t *admin)
{
    char dir[TU_PATH_MAX];
    rep_open_opts_t o;
    uint8_t *prov = NULL;
    size_t provn = 0;
    int rc;

    *out = NULL;
    if ((rc = tu_path(dir, base, sub)) != 0)
        return rc;
    if (mkdir(dir, 0700) != 0)
        return -errno;
    if (opts != NULL)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    o.flags |= REP_OPEN_CREATE;
    if (admin != NULL) {
        if ((rc = rep_replica_provision(admin, sub, "member", &prov, &provn)) != 0)
            return rc;
        o.provision = prov;
        o.provision_len = provn;
    }
    rc = rep_replica_open(out, dir, &o);
    rep_free(prov);
    return rc;
}

/**
 * Give @p r the membership entries @p admin has and @p r lacks (and whatever changes of
 * @p admin it lacks: call it before anything is written to share the office's member list).
 * @return what rep_replica_vv(), rep_replica_export() or rep_replica_import() returns.
 */
static inline int
tu_members_share(rep_replica_t *admin, rep_replica_t *r)
{
    uint8_t *vv = NULL, *b = NULL;
    size_t vvn = 0, bn = 0;
    int rc = rep_replica_vv(r, &vv, &vvn);
    if (rc == 0)
        rc = rep_replica_export(admin, vv, vvn, 0, &b, &bn, NULL);
    if (rc == 0)
        rc = rep_replica_import(r, b, bn, NULL);
    rep_free(vv);
    rep_free(b);
    return rc;
}

/** Open the existing replica @p base/@p sub with @p opts (may be NULL). */
static inline int
tu_replica_reopen(rep_replica_t **out, const char *base, const char *sub,
                  const rep_open_opts_t *opts)
{
    char dir[TU_PATH_MAX];
    int rc;

    *out = NULL;
    if ((rc = tu_path(dir, base, sub)) != 0)
        return rc;
    return rep_replica_open(out, dir, opts);
}

/* ---- Deterministic PRNG: splitmix64 -------------------------------------------------------- */

typedef struct tu_rng {
    uint64_t s;
} tu_rng_t;

static inline void
tu_rng_seed(tu_rng_t *r, uint64_t seed)
{
    r->s = seed;
}

static inline uint64_t
tu_rng_next(tu_rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/** Uniform-enough in [0, n); n must be > 0. */
static inline uint64_t
tu_rng_below(tu_rng_t *r, uint64_t n)
{
    return tu_rng_next(r) % n;
}

/** Uniform in [lo, hi] (inclusive). */
static inline uint64_t
tu_rng_range(tu_rng_t *r, uint64_t lo, uint64_t hi)
{
    return lo + tu_rng_below(r, hi - lo + 1);
}

/** Uniform in [0, 1). */
static inline double
tu_rng_double(tu_rng_t *r)
{
    return (double)(tu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/** 1 with probability @p percent / 100. */
static inline int
tu_rng_chance(tu_rng_t *r, unsigned percent)
{
    return tu_rng_below(r, 100) < percent;
}

static inline void
tu_rng_bytes(tu_rng_t *r, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        uint64_t x = tu_rng_next(r);
        for (int i = 0; i < 8 && n > 0; i++, n--, x >>= 8)
            *b++ = (uint8_t)x;
    }
}

/**
 * A seed for a test: $REPLICA_TEST_SEED when set (decimal or 0x hex), else @p dflt.
 * Tests print the seed they use so a failure can be replayed.
 */
static inline uint64_t
tu_seed(uint64_t dflt)
{
    const char *s = getenv("REPLICA_TEST_SEED");
    if (s == NULL || s[0] == '\0')
        return dflt;
    return strtoull(s, NULL, 0);
}

/* ---- Deterministic randomness for libsodium -------------------------------------------------- */

/* The stream libsodium draws from once tu_sodium_deterministic() is called. */
static tu_rng_t tu__sodium_rng;

static inline const char *
tu__rb_name(void)
{
    return "tu-splitmix64";
}

static inline uint32_t
tu__rb_random(void)
{
    return (uint32_t)(tu_rng_next(&tu__sodium_rng) >> 32);
}

static inline void
tu__rb_buf(void *const buf, const size_t size)
{
    tu_rng_bytes(&tu__sodium_rng, buf, size);
}

/**
 * Make libsodium's random bytes a splitmix64 stream seeded with @p seed, so device keys (hence
 * actor ids), nonces and one-time codes repeat from run to run and a failure replays. Call it
 * before anything uses libsodium (it calls sodium_init); reseed with tu_sodium_reseed().
 * Tests only: such keys are no secret.
 * @return 0, or -1 when libsodium cannot be set up.
 */
static inline int
tu_sodium_deterministic(uint64_t seed)
{
    static randombytes_implementation impl = {
        tu__rb_name, tu__rb_random, NULL, NULL, tu__rb_buf, NULL,
    };
    tu_rng_seed(&tu__sodium_rng, seed);
    return randombytes_set_implementation(&impl) == 0 && sodium_init() >= 0 ? 0 : -1;
}

/** Start tu_sodium_deterministic()'s stream again from @p seed. */
static inline void
tu_sodium_reseed(uint64_t seed)
{
    tu_rng_seed(&tu__sodium_rng, seed);
}

/* ---- Fake clock ----------------------------------------------------------------------------- */

/**
 * A wall clock the test sets: put tu_clock_ms in rep_open_opts_t.clock_ms and the tu_clock_t in
 * clock_ctx (tu_clock_use() does both). Reads and writes are atomic, so a library thread may read
 * it while the test advances it. The tu_clock_t must outlive the replica.
 */
typedef struct tu_clock {
    uint64_t now_ms;
} tu_clock_t;

static TU_UNUSED uint64_t
tu_clock_ms(void *ctx)
{
    return __atomic_load_n(&((tu_clock_t *)ctx)->now_ms, __ATOMIC_SEQ_CST);
}

static inline void
tu_clock_set(tu_clock_t *c, uint64_t ms)
{
    __atomic_store_n(&c->now_ms, ms, __ATOMIC_SEQ_CST);
}

static inline uint64_t
tu_clock_advance(tu_clock_t *c, uint64_t ms)
{
    return __atomic_add_fetch(&c->now_ms, ms, __ATOMIC_SEQ_CST);
}

/** Point @p o at clock @p c. */
static inline void
tu_clock_use(tu_clock_t *c, rep_open_opts_t *o)
{
    o->clock_ms = tu_clock_ms;
    o->clock_ctx = c;
}

/** 2024-01-01T00:00:00Z in ms: a plausible "now" for fake clocks. */
#define TU_CLOCK_EPOCH_MS 1704067200000ull

/* ---- Hex ------------------------------------------------------------------------------------ */

/** Write 2*n lowercase hex digits and a NUL into @p out (2*n+1 bytes). @return out. */
static inline char *
tu_hex(const void *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static inline int
tu__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/** Parse exactly 2*n hex digits of @p s into @p out. @return 0, or -EINVAL. */
static inline int
tu_unhex(const char *s, void *out, size_t n)
{
    uint8_t *b = out;
    if (strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = tu__hexval(s[2 * i]), lo = tu__hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- Values --------------------------------------------------------------------------------- */

/** A string value borrowing @p s. */
static inline rep_value_t
tu_v_str(const char *s)
{
    rep_value_t v = {.type = REP_STRING};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

/** An int value. */
static inline rep_value_t
tu_v_int(int64_t i)
{
    rep_value_t v = {.type = REP_INT};
    v.u.i = i;
    return v;
}

/** 1 when @p v is the string @p s. */
static inline int
tu_is_str(const rep_value_t *v, const char *s)
{
    return v->type == REP_STRING && v->u.s.len == strlen(s) &&
           memcmp(v->u.s.ptr, s, v->u.s.len) == 0;
}

/** 1 when @p a and @p b are the same typed value (doubles compared bit for bit). */
static inline int
tu_value_eq(const rep_value_t *a, const rep_value_t *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case REP_NULL:
        return 1;
    case REP_BOOL:
        return !!a->u.b == !!b->u.b;
    case REP_INT:
        return a->u.i == b->u.i;
    case REP_DOUBLE:
        return memcmp(&a->u.d, &b->u.d, sizeof a->u.d) == 0;
    case REP_STRING:
    case REP_BYTES:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    }
    return 0;
}

/** A short printable form of @p v for failure messages, into @p buf of @p n bytes. */
static inline const char *
tu_value_fmt(const rep_value_t *v, char *buf, size_t n)
{
    switch (v->type) {
    case REP_NULL:
        snprintf(buf, n, "null");
        break;
    case REP_BOOL:
        snprintf(buf, n, "%s", v->u.b ? "true" : "false");
        break;
    case REP_INT:
        snprintf(buf, n, "%lld", (long long)v->u.i);
        break;
    case REP_DOUBLE:
        snprintf(buf, n, "%.17g", v->u.d);
        break;
    case REP_STRING:
        snprintf(buf, n, "\"%.*s\"", (int)(v->u.s.len > 40 ? 40 : v->u.s.len),
                 v->u.s.ptr ? v->u.s.ptr : "");
        break;
    case REP_BYTES:
        snprintf(buf, n, "bytes[%zu]", v->u.s.len);
        break;
    default:
        snprintf(buf, n, "type?%d", (int)v->type);
        break;
    }
    return buf;
}

#endif /* REPLICA_TESTUTIL_H */
