/*
 * check_badinput.c — bad bytes and bad arguments are refused, and refusing changes nothing.
 *
 * Damaged, truncated, foreign and random batches; damaged version vectors; over-long and
 * malformed names; directories that are not replicas; a directory opened twice; a finished
 * transaction; rep_strerror() for every code. Also a write large enough to outgrow the initial
 * LMDB map, which must succeed (DESIGN.md "Map full → grow the map and retry").
 * Only the public API is used.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "checkutil.h"
#include "keys.h"
#include "replica.h"

/* ---- Fixtures: two replicas of one office, the first with data ---------------------------- */

typedef struct pair {
    char *dir;
    rep_replica_t *a, *b;
    uint8_t office[REP_OFFICE_ID_BYTES];
} pair_t;

static rep_replica_t *
create_in(const char *dir, const char *sub, rep_replica_t *admin)
{
    rep_open_opts_t opts;
    rep_replica_t *r = NULL;
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC;
    CK_OK(tu_replica_create(&r, dir, sub, &opts, admin));
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Write @p n changes, numbered from @p from, of every value type, to @p r. */
static void
write_some(rep_replica_t *r, int from, int n)
{
    for (int k = from; k < from + n; k++) {
        rep_txn_t *t = NULL;
        char key[32], s[48];
        uint8_t bytes[24];

        snprintf(key, sizeof key, "pat/%d", k % 7);
        snprintf(s, sizeof s, "note %d: Zoë ☎ %d", k, k * 31);
        for (size_t q = 0; q < sizeof bytes; q++)
            bytes[q] = (uint8_t)(k * 7 + (int)q);
        CK_OK(rep_txn_begin(r, "staff", &t));
        CK_OK(rep_txn_set_str(t, key, "note", s));
        CK_OK(rep_txn_set_int(t, key, "n", k));
        CK_OK(rep_txn_set_double(t, key, "d", k * 0.25));
        CK_OK(rep_txn_set_bool(t, key, "b", k & 1));
        CK_OK(rep_txn_set_null(t, key, "z"));
        CK_OK(rep_txn_set_bytes(t, key, "raw", bytes, sizeof bytes));
        if (k % 5 == 4)
            CK_OK(rep_txn_del_field(t, key, "z"));
        if (k % 11 == 10)
            CK_OK(rep_txn_del_record(t, "pat/x"));
        CK_OK(rep_txn_commit(t, NULL));
        rep_txn_free(&t);
    }
}

static void
pair_open(pair_t *p)
{
    memset(p, 0, sizeof *p);
    p->dir = tu_tmpdir_in(g_root);
    ck_assert_ptr_nonnull(p->dir);
    p->a = create_in(p->dir, "a", NULL);
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(p->a, &info));
    memcpy(p->office, info->office_id, sizeof p->office);
    rep_info_free(&info);
    p->b = create_in(p->dir, "b", p->a);
}

static void
pair_close(pair_t *p)
{
    rep_replica_close(&p->a);
    rep_replica_close(&p->b);
    tu_rmtree(p->dir);
    free(p->dir);
    p->dir = NULL;
}

/* The batch @p from has that @p to lacks. Caller rep_free()s it. */
static uint8_t *
batch_for(rep_replica_t *from, rep_replica_t *to, size_t *len)
{
    uint8_t *vv = NULL, *b = NULL;
    size_t vvn = 0;
    CK_OK(rep_replica_vv(to, &vv, &vvn));
    CK_OK(rep_replica_export(from, vv, vvn, 0, &b, len, NULL));
    ck_assert_ptr_nonnull(b);
    rep_free(vv);
    return b;
}

/* What must not move when an input is refused. */
typedef struct snap {
    uint8_t digest[REP_DIGEST_BYTES];
    uint64_t changes, pending, seq, records;
    size_t nvv;
} snap_t;

static void
snap_take(rep_replica_t *r, snap_t *s)
{
    rep_info_t *info = NULL;
    CK_OK(rep_replica_digest(r, s->digest));
    CK_OK(rep_replica_info(r, &info));
    s->changes = info->changes;
    s->pending = info->pending;
    s->seq = info->seq;
    s->records = info->records;
    s->nvv = info->nvv;
    rep_info_free(&info);
}

static void
snap_same(rep_replica_t *r, const snap_t *before, const char *what)
{
    snap_t now;
    char h1[2 * REP_DIGEST_BYTES + 1], h2[2 * REP_DIGEST_BYTES + 1];
    snap_take(r, &now);
    ck_assert_msg(memcmp(now.digest, before->digest, REP_DIGEST_BYTES) == 0,
                  "%s: digest moved from %s to %s", what,
                  tu_hex(before->digest, REP_DIGEST_BYTES, h1), tu_hex(now.digest, REP_DIGEST_BYTES, h2));
    ck_assert_msg(now.changes == before->changes && now.pending == before->pending &&
                  now.seq == before->seq && now.records == before->records &&
                  now.nvv == before->nvv,
                  "%s: info moved: changes %" PRIu64 "->%" PRIu64 " pending %" PRIu64 "->%" PRIu64,
                  what, before->changes, now.changes, before->pending, now.pending);
}

/* A refused import: code @p rc is one of the allowed ones and the stats say nothing happened. */
static void
assert_refused(int rc, const rep_import_stats_t *st, int allow_version, const char *what)
{
    ck_assert_msg(rc == REP_ECORRUPT || (allow_version && rc == REP_EVERSION),
                  "%s: import = %d (%s), want REP_ECORRUPT%s", what, rc, rep_strerror(rc),
                  allow_version ? " or REP_EVERSION" : "");
    ck_assert_msg(st->applied == 0 && st->pending == 0 && st->duplicates == 0,
                  "%s: refused import reports applied %" PRIu64 " pending %" PRIu64, what,
                  st->applied, st->pending);
}

/*
 * A fixture shared by the batch tests: a has 30 changes; b already imported the first 12 (so
 * "unchanged" means something), and the batch holds the 18 b lacks.
 */
typedef struct damaged {
    pair_t p;
    uint8_t *batch;
    size_t len;
    snap_t before;
} damaged_t;

static void
damaged_open(damaged_t *d)
{
    pair_open(&d->p);
    write_some(d->p.a, 0, 12);
    size_t n = 0;
    uint8_t *first = batch_for(d->p.a, d->p.b, &n);
    CK_OK(rep_replica_import(d->p.b, first, n, NULL));
    rep_free(first);
    write_some(d->p.a, 12, 18);
    d->batch = batch_for(d->p.a, d->p.b, &d->len);
    ck_assert_uint_gt(d->len, 128);
    snap_take(d->p.b, &d->before);
    ck_assert_uint_eq(d->before.changes, 12);
}

/* The undamaged batch does apply: what was refused was refused for the damage. */
static void
damaged_close(damaged_t *d)
{
    rep_import_stats_t st;
    snap_t after;
    CK_OK(rep_replica_import(d->p.b, d->batch, d->len, &st));
    ck_assert_uint_eq(st.applied, 18);
    snap_take(d->p.b, &after);
    ck_assert_uint_eq(after.changes, 30);
    ck_assert_msg(memcmp(after.digest, d->before.digest, REP_DIGEST_BYTES) != 0,
                  "applying 18 changes left the digest unchanged");
    rep_free(d->batch);
    pair_close(&d->p);
}

/* ---- (1) bit flips ------------------------------------------------------------------------ */

START_TEST(test_batch_bitflips_rejected)
{
    damaged_t d;
    tu_rng_t rng;
    size_t npos = 0, *pos;

    damaged_open(&d);
    tu_rng_seed(&rng, tu_seed(0xb17f));
    pos = calloc(200 + 128, sizeof *pos);
    ck_assert_ptr_nonnull(pos);
    for (size_t k = 0; k < 64 && k < d.len; k++)
        pos[npos++] = k;
    for (size_t k = 0; k < 64 && k < d.len; k++)
        pos[npos++] = d.len - 1 - k;
    for (int k = 0; k < 200; k++)
        pos[npos++] = (size_t)tu_rng_below(&rng, d.len);

    uint8_t *copy = malloc(d.len);
    ck_assert_ptr_nonnull(copy);
    for (size_t k = 0; k < npos; k++) {
        for (int bit = 0; bit < 8; bit++) {
            char what[64];
            rep_import_stats_t st;
            memcpy(copy, d.batch, d.len);
            copy[pos[k]] ^= (uint8_t)(1u << bit);
            snprintf(what, sizeof what, "bit %d of byte %zu/%zu", bit, pos[k], d.len);
            int rc = rep_replica_import(d.p.b, copy, d.len, &st);
            assert_refused(rc, &st, pos[k] < 64, what);
            if (k % 16 == 0 && bit == 0)
                snap_same(d.p.b, &d.before, what);
        }
    }
    snap_same(d.p.b, &d.before, "after every bit flip");
    free(copy);
    free(pos);
    damaged_close(&d);
}
END_TEST

/* ---- (1b) tampered sealed changes behind an intact frame --------------------------------- */

/* A batch of the changes in @p b, with change @p which replaced by [p, p+n). */
static uint8_t *
rebatch(const rep__batch_t *b, size_t which, const uint8_t *p, size_t n, size_t *len)
{
    rep__batch_writer_t w;
    rep__batch_begin(&w, b->office, "clinic", b->sender);
    for (size_t i = 0; i < b->n; i++)
        if (i == which)
            rep__batch_add(&w, p, n);
        else
            rep__batch_add(&w, b->changes[i].p, b->changes[i].n);
    uint8_t *out = NULL;
    CK_OK(rep__batch_end(&w, NULL, &out, len));
    return out;
}

/* Every byte of every sealed change altered, in a batch whose frame is intact (its checksum
 * recomputed, as whoever tampered would): refused whole, counted, and nothing applied. */
START_TEST(test_tampered_changes_rejected)
{
    damaged_t d;
    damaged_open(&d);
    rep__batch_t b;
    CK_OK(rep__batch_decode(d.batch, d.len, &b));
    ck_assert_uint_eq(b.n, 18);
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(d.p.b, &info));
    uint64_t refused = info->refused;
    rep_info_free(&info);
    uint64_t tries = 0;
    for (size_t i = 0; i < b.n; i += 5) { /* the first, middle and last of a's chain */
        uint8_t *copy = malloc(b.changes[i].n);
        ck_assert_ptr_nonnull(copy);
        for (size_t j = 0; j < b.changes[i].n; j++, tries++) {
            memcpy(copy, b.changes[i].p, b.changes[i].n);
            copy[j] ^= (uint8_t)(1u << (j % 8));
            size_t n;
            uint8_t *batch = rebatch(&b, i, copy, b.changes[i].n, &n);
            rep_import_stats_t st;
            int rc = rep_replica_import(d.p.b, batch, n, &st);
            ck_assert_msg(rc == REP_EAUTH || rc == REP_ECORRUPT || rc == REP_EVERSION ||
                              rc == REP_EKEY,
                          "change %zu, byte %zu of %zu altered: import = %d (%s)", i, j,
                          b.changes[i].n, rc, rep_strerror(rc));
            free(batch);
        }
        free(copy);
        snap_same(d.p.b, &d.before, "after tampered changes");
    }
    CK_OK(rep_replica_info(d.p.b, &info));
    ck_assert_uint_eq(info->refused, refused + tries); /* each one counted */
    rep_info_free(&info);
    rep__batch_clear(&b);
    damaged_close(&d);
}
END_TEST

/* A genuine batch sent again is a counted no-op. */
START_TEST(test_replayed_batch_is_a_noop)
{
    damaged_t d;
    damaged_open(&d);
    rep_import_stats_t st;
    snap_t applied;
    CK_OK(rep_replica_import(d.p.b, d.batch, d.len, &st));
    ck_assert_uint_eq(st.applied, 18);
    snap_take(d.p.b, &applied);
    for (int k = 0; k < 3; k++) {
        CK_OK(rep_replica_import(d.p.b, d.batch, d.len, &st));
        ck_assert_uint_eq(st.applied, 0);
        ck_assert_uint_eq(st.duplicates, 18);
        snap_same(d.p.b, &applied, "replayed batch");
    }
    rep_free(d.batch);
    pair_close(&d.p);
}
END_TEST

/* A device of the office that has no key of it (a replica not enrolled: here, another
 * office's member posing with this office's id is impossible, so: a change sealed for this
 * office by someone outside the membership log) is refused. */
START_TEST(test_change_by_a_stranger_rejected)
{
    damaged_t d;
    damaged_open(&d);
    rep__batch_t b;
    CK_OK(rep__batch_decode(d.batch, d.len, &b));
    /* re-sign a's newest change with a stranger's key: same header and body, other signer */
    rep__change_t c;
    size_t last = b.n - 1;
    CK_OK(rep__change_decode(b.changes[last].p, b.changes[last].n, &c));
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES], dg[REP_HASH_BYTES];
    rep__sign_keypair(pk, sk);
    uint8_t *forged = malloc(c.len);
    ck_assert_ptr_nonnull(forged);
    memcpy(forged, c.bytes, c.len);
    rep__hasher_t h;
    rep__hasher_init(&h);
    rep__hasher_add(&h, b.office, REP_OFFICE_ID_BYTES);
    rep__hasher_add(&h, c.bytes, c.env.signed_len);
    rep__hasher_final(&h, dg);
    rep__sign(forged + c.len - REP_SIG_BYTES, dg, sizeof dg, sk);
    size_t n;
    uint8_t *batch = rebatch(&b, last, forged, c.len, &n);
    rep_import_stats_t st;
    ck_assert_int_eq(rep_replica_import(d.p.b, batch, n, &st), REP_EAUTH);
    snap_same(d.p.b, &d.before, "a stranger's signature");
    free(batch);
    free(forged);
    rep__change_clear(&c);
    rep__batch_clear(&b);
    damaged_close(&d);
}
END_TEST

/* ---- (2) truncation and trailing bytes ------------------------------------------------------ */

START_TEST(test_batch_truncations_rejected)
{
    damaged_t d;
    tu_rng_t rng;

    damaged_open(&d);
    tu_rng_seed(&rng, tu_seed(0x7a11));
    uint8_t *copy = malloc(d.len);
    ck_assert_ptr_nonnull(copy);
    /* every length when the batch is small, else every short one and a sample of the rest */
    for (size_t n = 0; n < d.len; n++) {
        if (d.len > 16384 && n > 256 && n < d.len - 256 && !tu_rng_chance(&rng, 5))
            continue;
        char what[64];
        rep_import_stats_t st;
        uint8_t office[REP_OFFICE_ID_BYTES];
        snprintf(what, sizeof what, "first %zu of %zu bytes", n, d.len);
        memcpy(copy, d.batch, n); /* a fresh buffer of exactly n bytes for ASan */
        uint8_t *exact = n ? malloc(n) : NULL;
        if (n)
            memcpy(exact, copy, n);
        int rc = rep_replica_import(d.p.b, n ? exact : copy, n, &st);
        assert_refused(rc, &st, 0, what);
        rc = rep_batch_office(n ? exact : copy, n, office, NULL);
        ck_assert_msg(rc == REP_ECORRUPT, "%s: rep_batch_office = %d (%s)", what, rc,
                      rep_strerror(rc));
        free(exact);
    }
    snap_same(d.p.b, &d.before, "after every truncation");
    free(copy);
    damaged_close(&d);
}
END_TEST

START_TEST(test_batch_trailing_bytes_rejected)
{
    damaged_t d;
    tu_rng_t rng;
    size_t extra[] = {1, 7, 64, 1000};

    damaged_open(&d);
    tu_rng_seed(&rng, tu_seed(0x7a12));
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) {
        char what[64];
        rep_import_stats_t st;
        uint8_t *longer = malloc(d.len + extra[k]);
        ck_assert_ptr_nonnull(longer);
        memcpy(longer, d.batch, d.len);
        tu_rng_bytes(&rng, longer + d.len, extra[k]);
        snprintf(what, sizeof what, "batch + %zu bytes", extra[k]);
        int rc = rep_replica_import(d.p.b, longer, d.len + extra[k], &st);
        assert_refused(rc, &st, 0, what);
        free(longer);
    }
    /* two batches glued together are not one batch either */
    uint8_t *twice = malloc(2 * d.len);
    ck_assert_ptr_nonnull(twice);
    memcpy(twice, d.batch, d.len);
    memcpy(twice + d.len, d.batch, d.len);
    rep_import_stats_t st;
    assert_refused(rep_replica_import(d.p.b, twice, 2 * d.len, &st), &st, 0, "batch twice");
    free(twice);
    snap_same(d.p.b, &d.before, "after trailing bytes");
    damaged_close(&d);
}
END_TEST

/* ---- (3) empty, NULL and garbage ------------------------------------------------------------ */

/*
 * Cap the address space (soft limit) at what the process maps now plus @p extra, so that a
 * decoder that trusts a length field and allocates gigabytes fails (and shows as -ENOMEM)
 * instead of quietly succeeding under overcommit. Not under ASan or valgrind, which map huge
 * regions of their own. @return 1 when the cap is in place; undo with uncap_address_space().
 */
static struct rlimit g_saved_as;

static int
cap_address_space(size_t extra)
{
#if defined(__SANITIZE_ADDRESS__)
    (void)extra;
    return 0;
#else
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    (void)extra;
    return 0;
#endif
#endif
    const char *pre = getenv("LD_PRELOAD");
    if (pre != NULL && strstr(pre, "vgpreload") != NULL)
        return 0;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f == NULL)
        return 0;
    int ok = fscanf(f, "%lu", &pages) == 1;
    fclose(f);
    if (!ok || getrlimit(RLIMIT_AS, &g_saved_as) != 0)
        return 0;
    struct rlimit rl = g_saved_as;
    rlim_t want = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        return 0;
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_AS, &rl) == 0;
#endif
}

/* Put back the limit cap_address_space() replaced (tests may share a process: CK_FORK=no). */
static void
uncap_address_space(int capped)
{
    if (capped)
        ck_assert_int_eq(setrlimit(RLIMIT_AS, &g_saved_as), 0);
}

static void
garbage_one(rep_replica_t *r, const snap_t *before, const uint8_t *p, size_t n, const char *what)
{
    rep_import_stats_t st;
    uint8_t office[REP_OFFICE_ID_BYTES];
    int rc = rep_replica_import(r, p, n, &st);
    ck_assert_msg(rc == REP_ECORRUPT || rc == REP_EVERSION || (n == 0 && rc == -EINVAL),
                  "%s (%zu bytes): import = %d (%s)", what, n, rc, rep_strerror(rc));
    ck_assert_uint_eq(st.applied, 0);
    rc = rep_batch_office(p, n, office, NULL);
    ck_assert_msg(rc == REP_ECORRUPT || rc == REP_EVERSION || (n == 0 && rc == -EINVAL),
                  "%s (%zu bytes): rep_batch_office = %d (%s)", what, n, rc, rep_strerror(rc));
    snap_same(r, before, what);
}

START_TEST(test_garbage_rejected)
{
    pair_t p;
    snap_t before;
    tu_rng_t rng;
    static const uint8_t huge_headers[][5] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff}, /* array 32 */
        {0xdf, 0xff, 0xff, 0xff, 0xff}, /* map 32 */
        {0xc6, 0xff, 0xff, 0xff, 0xff}, /* bin 32 */
        {0xdb, 0xff, 0xff, 0xff, 0xff}, /* str 32 */
        {0xc9, 0xff, 0xff, 0xff, 0xff}, /* ext 32 */
    };
    static const size_t sizes[] = {1, 2, 3, 5, 8, 16, 31, 32, 33, 64, 100, 1000, 4096, 65536,
                                   1u << 20};

    pair_open(&p);
    write_some(p.a, 0, 5);
    size_t n = 0;
    uint8_t *real = batch_for(p.a, p.b, &n);
    write_some(p.b, 100, 3);
    snap_take(p.b, &before);
    int capped = cap_address_space((size_t)512 << 20);
    tu_rng_seed(&rng, tu_seed(0x6a7b));

    uint8_t empty[1] = {0};
    garbage_one(p.b, &before, empty, 0, "empty");
    garbage_one(p.b, &before, NULL, 0, "NULL");

    for (size_t k = 0; k < sizeof huge_headers / sizeof huge_headers[0]; k++) {
        uint8_t buf[64];
        char what[64];
        snprintf(what, sizeof what, "huge msgpack header %02x", huge_headers[k][0]);
        garbage_one(p.b, &before, huge_headers[k], 5, what);
        /* the same header followed by a little more, and after the real batch's start */
        memcpy(buf, huge_headers[k], 5);
        memset(buf + 5, 0xff, sizeof buf - 5);
        garbage_one(p.b, &before, buf, sizeof buf, what);
        if (n > 40) {
            uint8_t *mixed = malloc(n);
            ck_assert_ptr_nonnull(mixed);
            memcpy(mixed, real, n);
            for (size_t off = 8; off + 5 <= n && off < 40; off += 8) {
                memcpy(mixed + off, huge_headers[k], 5);
                garbage_one(p.b, &before, mixed, n, what);
            }
            free(mixed);
        }
    }

    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint8_t *g = malloc(sizes[k]);
        char what[64];
        ck_assert_ptr_nonnull(g);
        tu_rng_bytes(&rng, g, sizes[k]);
        snprintf(what, sizeof what, "random bytes");
        garbage_one(p.b, &before, g, sizes[k], what);
        /* the real batch's first bytes (magic, version, office) then garbage */
        if (sizes[k] > 32 && n > 32) {
            memcpy(g, real, 32);
            snprintf(what, sizeof what, "real header + random bytes");
            garbage_one(p.b, &before, g, sizes[k], what);
        }
        memset(g, 0, sizes[k]);
        snprintf(what, sizeof what, "zeros");
        garbage_one(p.b, &before, g, sizes[k], what);
        memset(g, 0xff, sizes[k]);
        snprintf(what, sizeof what, "0xff bytes");
        garbage_one(p.b, &before, g, sizes[k], what);
        free(g);
    }

    /* Under the cap the replica still works: refusing garbage left nothing behind. */
    rep_import_stats_t st;
    CK_OK(rep_replica_import(p.b, real, n, &st));
    ck_assert_uint_eq(st.applied, 5);
    uncap_address_space(capped);
    rep_free(real);
    pair_close(&p);
}
END_TEST

/* ---- (4) another office ---------------------------------------------------------------------- */

START_TEST(test_foreign_office_batch_rejected)
{
    pair_t p;
    snap_t before;
    uint8_t theirs[REP_OFFICE_ID_BYTES];

    pair_open(&p);
    write_some(p.b, 0, 4);
    rep_replica_t *other = NULL;
    rep_open_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC;
    opts.office_name = "Other Clinic";
    CK_OK(tu_replica_create(&other, p.dir, "other", &opts, NULL));
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(other, &info));
    memcpy(theirs, info->office_id, sizeof theirs);
    ck_assert_str_eq(info->office_name, "Other Clinic");
    rep_info_free(&info);
    ck_assert_msg(memcmp(theirs, p.office, sizeof theirs) != 0, "two new offices share an id");

    /* an empty batch of the other office, then one with changes */
    for (int round = 0; round < 2; round++) {
        uint8_t *b = NULL, id[REP_OFFICE_ID_BYTES];
        size_t n = 0;
        rep_import_stats_t st;
        if (round == 1)
            write_some(other, 0, 6);
        snap_take(p.b, &before);
        CK_OK(rep_replica_export(other, NULL, 0, 0, &b, &n, NULL));
        char *name = NULL;
        CK_OK(rep_batch_office(b, n, id, &name));
        ck_assert_mem_eq(id, theirs, sizeof id);
        ck_assert_ptr_nonnull(name);
        ck_assert_str_eq(name, "Other Clinic");
        rep_free(name);
        CK_RC(rep_replica_import(p.b, b, n, &st), REP_EOFFICE);
        ck_assert_uint_eq(st.applied, 0);
        snap_same(p.b, &before, "foreign batch");
        rep_free(b);
    }
    rep_replica_close(&other);
    pair_close(&p);
}
END_TEST

START_TEST(test_foreign_office_vv_rejected)
{
    pair_t p;
    uint8_t *vv = NULL, *b = (uint8_t *)&p;
    size_t vvn = 0, n = 1;

    pair_open(&p);
    write_some(p.a, 0, 3);
    rep_replica_t *other = create_in(p.dir, "other", NULL);
    CK_OK(rep_replica_vv(other, &vv, &vvn));
    CK_RC(rep_replica_export(p.a, vv, vvn, 0, &b, &n, NULL), REP_EOFFICE);
    ck_assert_ptr_null(b);
    rep_free(vv);
    rep_replica_close(&other);
    pair_close(&p);
}
END_TEST

/* ---- (5) names and limits --------------------------------------------------------------------- */

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

START_TEST(test_names_over_limit_too_big)
{
    pair_t p;
    rep_txn_t *t = NULL;
    char key[512];
    uint64_t seq = 99;
    snap_t before;

    pair_open(&p);
    snap_take(p.a, &before);
    char *c65 = repeat('c', REP_MAX_COLLECTION + 1), *c64 = repeat('c', REP_MAX_COLLECTION);
    char *r129 = repeat('r', REP_MAX_RECORD + 1), *r128 = repeat('r', REP_MAX_RECORD);
    char *f65 = repeat('f', REP_MAX_FIELD + 1), *f64 = repeat('f', REP_MAX_FIELD);
    char *u65 = repeat('u', REP_MAX_USER + 1), *u64 = repeat('u', REP_MAX_USER);

    /* one over each limit: refused */
    CK_RC(rep_txn_begin(p.a, u65, &t), REP_ETOOBIG);
    ck_assert_ptr_null(t);
    CK_OK(rep_txn_begin(p.a, "staff", &t));
    snprintf(key, sizeof key, "%s/r", c65);
    CK_RC(rep_txn_set_str(t, key, "f", "v"), REP_ETOOBIG);
    CK_RC(rep_txn_del_record(t, key), REP_ETOOBIG);
    snprintf(key, sizeof key, "c/%s", r129);
    CK_RC(rep_txn_set_str(t, key, "f", "v"), REP_ETOOBIG);
    CK_RC(rep_txn_del_field(t, key, "f"), REP_ETOOBIG);
    CK_RC(rep_txn_set_int(t, "c/r", f65, 1), REP_ETOOBIG);
    CK_RC(rep_txn_del_field(t, "c/r", f65), REP_ETOOBIG);
    /* multi-byte characters count in bytes: 33 two-byte characters are 66 bytes */
    char wide[2 * 33 + 1];
    for (int k = 0; k < 33; k++)
        memcpy(wide + 2 * k, "é", 2);
    wide[66] = '\0';
    CK_RC(rep_txn_set_int(t, "c/r", wide, 1), REP_ETOOBIG);
    uint8_t *big = calloc(1, (size_t)REP_MAX_VALUE + 1);
    ck_assert_ptr_nonnull(big);
    CK_RC(rep_txn_set_bytes(t, "c/r", "f", big, (size_t)REP_MAX_VALUE + 1), REP_ETOOBIG);
    /* nothing refused was buffered: the commit is empty */
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, 0);
    rep_txn_free(&t);
    snap_same(p.a, &before, "refused names");

    /* exactly at each limit: accepted, stored and read back */
    CK_OK(rep_txn_begin(p.a, u64, &t));
    snprintf(key, sizeof key, "%s/r", c64);
    CK_OK(rep_txn_set_str(t, key, f64, "at the limits"));
    snprintf(key, sizeof key, "c/%s", r128);
    CK_OK(rep_txn_set_bytes(t, key, "big", big, REP_MAX_VALUE));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, 1);
    rep_txn_free(&t);

    rep_value_t *v = NULL;
    snprintf(key, sizeof key, "%s/r", c64);
    CK_OK(rep_replica_get(p.a, key, f64, &v));
    ck_assert_int_eq(v->type, REP_STRING);
    ck_assert_str_eq(v->u.s.ptr, "at the limits");
    rep_value_free(&v);
    snprintf(key, sizeof key, "c/%s", r128);
    CK_OK(rep_replica_get(p.a, key, "big", &v));
    ck_assert_int_eq(v->type, REP_BYTES);
    ck_assert_uint_eq(v->u.s.len, REP_MAX_VALUE);
    ck_assert_int_eq(memcmp(v->u.s.ptr, big, REP_MAX_VALUE), 0);
    rep_value_free(&v);

    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(p.a, key, &h));
    ck_assert_uint_eq(h->n, 1);
    ck_assert_str_eq(h->changes[0].user, u64);
    rep_history_free(&h);

    free(big);
    free(c65);
    free(c64);
    free(r129);
    free(r128);
    free(f65);
    free(f64);
    free(u65);
    free(u64);
    pair_close(&p);
}
END_TEST

START_TEST(test_too_many_ops_too_big)
{
    pair_t p;
    rep_txn_t *t = NULL;
    char key[32], field[16];
    int rc = 0;

    pair_open(&p);
    CK_OK(rep_txn_begin(p.a, NULL, &t));
    for (int k = 0; k < REP_MAX_OPS && rc == 0; k++) {
        snprintf(key, sizeof key, "c/r%d", k / 64);
        snprintf(field, sizeof field, "f%d", k % 64);
        rc = rep_txn_set_int(t, key, field, k);
    }
    ck_assert_msg(rc == 0, "write %d of %d refused: %d (%s)", REP_MAX_OPS, REP_MAX_OPS, rc,
                  rep_strerror(rc));
    CK_RC(rep_txn_set_int(t, "c/extra", "f", 1), REP_ETOOBIG);
    rep_txn_abort(t);
    rep_txn_free(&t);
    pair_close(&p);
}
END_TEST

START_TEST(test_malformed_names_invalid)
{
    pair_t p;
    rep_txn_t *t = NULL;
    uint64_t seq = 99;
    static const char *const bad_keys[] = {
        "norecord",      /* no '/' */
        "/r",            /* empty collection */
        "c/",            /* empty record id */
        "",              /* nothing */
        "c\xff/r",       /* invalid UTF-8 byte in the collection */
        "c/r\xc3",       /* truncated sequence in the record id */
        "c/\xc0\xaf",    /* overlong encoding of '/' */
        "c/\xed\xa0\x80", /* UTF-16 surrogate */
    };
    static const char *const bad_fields[] = {"", "f\xff", "\xc3", "\xc0\x80", "\xf8\x88\x80\x80\x80"};
    static const char *const bad_strings[] = {"\xff", "ok\xc3", "\xc0\xaf", "\xed\xbf\xbf",
                                              "\xf4\x90\x80\x80"};

    pair_open(&p);
    CK_RC(rep_txn_begin(p.a, "bad\xff", &t), -EINVAL);
    ck_assert_ptr_null(t);
    CK_OK(rep_txn_begin(p.a, "staff", &t));
    for (size_t k = 0; k < sizeof bad_keys / sizeof bad_keys[0]; k++) {
        ck_assert_msg(rep_txn_set_str(t, bad_keys[k], "f", "v") == -EINVAL, "set key #%zu", k);
        ck_assert_msg(rep_txn_del_field(t, bad_keys[k], "f") == -EINVAL, "del_field key #%zu", k);
        ck_assert_msg(rep_txn_del_record(t, bad_keys[k]) == -EINVAL, "del_record key #%zu", k);
    }
    for (size_t k = 0; k < sizeof bad_fields / sizeof bad_fields[0]; k++) {
        ck_assert_msg(rep_txn_set_int(t, "c/r", bad_fields[k], 1) == -EINVAL, "field #%zu", k);
        ck_assert_msg(rep_txn_del_field(t, "c/r", bad_fields[k]) == -EINVAL, "del field #%zu", k);
    }
    for (size_t k = 0; k < sizeof bad_strings / sizeof bad_strings[0]; k++) {
        rep_value_t v = {.type = REP_STRING, .u.s = {bad_strings[k], strlen(bad_strings[k])}};
        ck_assert_msg(rep_txn_set_str(t, "c/r", "f", bad_strings[k]) == -EINVAL, "string #%zu", k);
        ck_assert_msg(rep_txn_set(t, "c/r", "f", &v) == -EINVAL, "value string #%zu", k);
    }
    rep_value_t badtype = {.type = (rep_type_t)42};
    CK_RC(rep_txn_set(t, "c/r", "f", &badtype), -EINVAL);
    /* bytes are bytes: invalid UTF-8 is fine there */
    CK_OK(rep_txn_set_bytes(t, "c/r", "raw", "\xff\xc3", 2));
    CK_OK(rep_txn_commit(t, &seq));
    ck_assert_uint_eq(seq, 1);
    rep_txn_free(&t);

    /* only the bytes write landed */
    rep_record_t *rec = NULL;
    CK_OK(rep_replica_get_record(p.a, "c/r", &rec));
    ck_assert_uint_eq(rec->nfields, 1);
    ck_assert_str_eq(rec->fields[0].name, "raw");
    rep_record_free(&rec);

    /* readers refuse the same malformed names */
    rep_value_t *v = NULL;
    rep_list_t *l = NULL;
    rep_conflicts_t *c = NULL;
    rep_history_t *h = NULL;
    for (size_t k = 0; k < sizeof bad_keys / sizeof bad_keys[0]; k++) {
        ck_assert_msg(rep_replica_get(p.a, bad_keys[k], "f", &v) == -EINVAL, "get key #%zu", k);
        ck_assert_ptr_null(v);
        ck_assert_msg(rep_replica_get_record(p.a, bad_keys[k], &rec) == -EINVAL, "record #%zu", k);
        ck_assert_ptr_null(rec);
        ck_assert_msg(rep_replica_conflicts(p.a, bad_keys[k], &c) == -EINVAL, "conflicts #%zu", k);
        ck_assert_ptr_null(c);
        ck_assert_msg(rep_replica_history(p.a, bad_keys[k], &h) == -EINVAL, "history #%zu", k);
        ck_assert_ptr_null(h);
    }
    CK_RC(rep_replica_get(p.a, "c/r", "", &v), -EINVAL);
    CK_RC(rep_replica_list(p.a, "c/r", NULL, 0, &l), -EINVAL);
    ck_assert_ptr_null(l);
    CK_RC(rep_replica_list(p.a, "", NULL, 0, &l), -EINVAL);
    CK_RC(rep_replica_list(p.a, "c\xff", NULL, 0, &l), -EINVAL);
    pair_close(&p);
}
END_TEST

/* ---- (6) directories that are not replicas ---------------------------------------------------- */

static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

START_TEST(test_open_not_a_replica)
{
    char *base = tu_tmpdir_in(g_root);
    char dir[TU_PATH_MAX], file[TU_PATH_MAX], missing[TU_PATH_MAX];
    uint8_t junk[3000], back[3000];
    tu_rng_t rng;
    rep_replica_t *r = (rep_replica_t *)&rng;
    rep_open_opts_t opts;

    ck_assert_ptr_nonnull(base);
    tu_rng_seed(&rng, tu_seed(0xd1));
    tu_rng_bytes(&rng, junk, sizeof junk);
    CK_OK(tu_path(dir, base, "stuff"));
    CK_OK(tu_path(file, dir, "letter.doc"));
    CK_OK(tu_path(missing, base, "nothing-here"));
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    FILE *f = fopen(file, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);

    memset(&opts, 0, sizeof opts);
    CK_RC(rep_replica_open(&r, dir, &opts), REP_ENOTREPLICA);
    ck_assert_ptr_null(r);
    CK_RC(rep_replica_open(&r, dir, NULL), REP_ENOTREPLICA);
    ck_assert_ptr_null(r);
    opts.flags = REP_OPEN_CREATE;
    r = (rep_replica_t *)&rng;
    CK_RC(rep_replica_open(&r, dir, &opts), REP_ENOTREPLICA);
    ck_assert_ptr_null(r);

    /* the directory was left exactly as it was */
    ck_assert_int_eq(count_entries(dir), 1);
    f = fopen(file, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(back, 1, sizeof back, f), sizeof back);
    fclose(f);
    ck_assert_mem_eq(junk, back, sizeof junk);

    /* a directory that does not exist, without CREATE: refused and not created */
    opts.flags = 0;
    CK_RC(rep_replica_open(&r, missing, &opts), REP_ENOTREPLICA);
    ck_assert_ptr_null(r);
    struct stat st;
    ck_assert_int_eq(stat(missing, &st), -1);

    /* an empty directory without CREATE is not a replica either */
    ck_assert_int_eq(mkdir(missing, 0700), 0);
    CK_RC(rep_replica_open(&r, missing, &opts), REP_ENOTREPLICA);
    ck_assert_int_eq(count_entries(missing), 0);

    tu_rmtree(base);
    free(base);
}
END_TEST

/* ---- (7) the same directory twice in one process ---------------------------------------------- */

START_TEST(test_open_twice_busy)
{
    char *base = tu_tmpdir_in(g_root);
    char dir[TU_PATH_MAX], dotted[TU_PATH_MAX], link[TU_PATH_MAX];
    rep_replica_t *r = NULL, *again = NULL;
    rep_open_opts_t opts;

    ck_assert_ptr_nonnull(base);
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC;
    CK_OK(tu_replica_create(&r, base, "r", &opts, NULL));
    CK_OK(tu_path(dir, base, "r"));
    snprintf(dotted, sizeof dotted, "%s/./r/", base);
    CK_OK(tu_path(link, base, "link"));
    ck_assert_int_eq(symlink(dir, link), 0);

    CK_RC(rep_replica_open(&again, dir, &opts), REP_EBUSY);
    ck_assert_ptr_null(again);
    opts.flags |= REP_OPEN_CREATE;
    CK_RC(rep_replica_open(&again, dir, &opts), REP_EBUSY);
    ck_assert_ptr_null(again);
    /* the same directory by another path is the same directory */
    CK_RC(rep_replica_open(&again, dotted, &opts), REP_EBUSY);
    ck_assert_ptr_null(again);
    CK_RC(rep_replica_open(&again, link, &opts), REP_EBUSY);
    ck_assert_ptr_null(again);

    /* the first handle still works */
    rep_txn_t *t = NULL;
    CK_OK(rep_txn_begin(r, NULL, &t));
    CK_OK(rep_txn_set_int(t, "c/r", "f", 1));
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);

    /* once closed, it opens again, with what was written */
    rep_replica_close(&r);
    opts.flags = REP_OPEN_NOSYNC;
    CK_OK(rep_replica_open(&again, link, &opts));
    rep_value_t *v = NULL;
    CK_OK(rep_replica_get(again, "c/r", "f", &v));
    ck_assert_int_eq(v->type, REP_INT);
    ck_assert_int_eq(v->u.i, 1);
    rep_value_free(&v);
    rep_replica_close(&again);
    rep_replica_close(&again); /* accepts NULL */

    tu_rmtree(base);
    free(base);
}
END_TEST

/* CREATE|EXCL refuses an existing replica and leaves it as it was; it creates a new one. */
START_TEST(test_create_excl_existing_eexist)
{
    char *base = tu_tmpdir_in(g_root);
    char dir[TU_PATH_MAX];
    rep_replica_t *r = NULL;
    rep_open_opts_t opts;
    rep_txn_t *t = NULL;
    uint8_t d0[REP_DIGEST_BYTES], d1[REP_DIGEST_BYTES];

    ck_assert_ptr_nonnull(base);
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC | REP_OPEN_EXCL;
    CK_OK(tu_replica_create(&r, base, "r", &opts, NULL)); /* empty directory: created */
    CK_OK(rep_txn_begin(r, NULL, &t));
    CK_OK(rep_txn_set_str(t, "c/r", "f", "kept"));
    CK_OK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);
    CK_OK(rep_replica_digest(r, d0));
    rep_replica_close(&r);

    CK_OK(tu_path(dir, base, "r"));
    opts.flags = REP_OPEN_NOSYNC | REP_OPEN_CREATE | REP_OPEN_EXCL;
    r = (rep_replica_t *)&opts;
    CK_RC(rep_replica_open(&r, dir, &opts), REP_EEXIST);
    ck_assert_ptr_null(r);

    opts.flags = REP_OPEN_NOSYNC | REP_OPEN_CREATE; /* without EXCL: opened as it is */
    CK_OK(rep_replica_open(&r, dir, &opts));
    CK_OK(rep_replica_digest(r, d1));
    ck_assert_mem_eq(d0, d1, REP_DIGEST_BYTES);
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(r, &info));
    ck_assert_uint_eq(info->seq, 1);
    rep_info_free(&info);
    rep_replica_close(&r);

    tu_rmtree(base);
    free(base);
}
END_TEST

/* ---- (8) damaged version vectors --------------------------------------------------------------- */

START_TEST(test_vv_corrupt_rejected)
{
    pair_t p;
    uint8_t *vv = NULL, *copy, *b;
    size_t vvn = 0, n;

    pair_open(&p);
    write_some(p.a, 0, 3);
    write_some(p.b, 10, 2);
    CK_OK(rep_replica_vv(p.b, &vv, &vvn));
    ck_assert_uint_gt(vvn, 0);
    copy = malloc(vvn);
    ck_assert_ptr_nonnull(copy);

    for (size_t k = 0; k < vvn; k++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, vv, vvn);
            copy[k] ^= (uint8_t)(1u << bit);
            b = (uint8_t *)&p;
            n = 7;
            int rc = rep_replica_export(p.a, copy, vvn, 0, &b, &n, NULL);
            ck_assert_msg(rc == REP_ECORRUPT || rc == REP_EVERSION,
                          "vv bit %d of byte %zu/%zu: export = %d (%s)", bit, k, vvn, rc,
                          rep_strerror(rc));
            ck_assert_ptr_null(b);
        }
    }
    for (size_t len = 1; len < vvn; len++) {
        uint8_t *exact = malloc(len);
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, vv, len);
        b = (uint8_t *)&p;
        int rc = rep_replica_export(p.a, exact, len, 0, &b, &n, NULL);
        ck_assert_msg(rc == REP_ECORRUPT, "vv cut to %zu/%zu bytes: export = %d (%s)", len, vvn,
                      rc, rep_strerror(rc));
        ck_assert_ptr_null(b);
        free(exact);
    }
    /* the undamaged vv works */
    CK_OK(rep_replica_export(p.a, vv, vvn, 0, &b, &n, NULL));
    rep_import_stats_t st;
    CK_OK(rep_replica_import(p.b, b, n, &st));
    ck_assert_uint_eq(st.applied, 3);
    rep_free(b);
    free(copy);
    rep_free(vv);
    pair_close(&p);
}
END_TEST

/* ---- (9) a finished transaction ------------------------------------------------------------------ */

START_TEST(test_txn_after_finish_done)
{
    pair_t p;
    rep_txn_t *t = NULL;
    uint64_t seq = 0;
    rep_value_t v = {.type = REP_INT, .u.i = 5};

    pair_open(&p);
    for (int how = 0; how < 2; how++) {
        CK_OK(rep_txn_begin(p.a, "staff", &t));
        CK_OK(rep_txn_set_int(t, "c/r", "f", how));
        if (how == 0) {
            CK_OK(rep_txn_commit(t, &seq));
            ck_assert_uint_eq(seq, 1);
        } else {
            rep_txn_abort(t);
        }
        CK_RC(rep_txn_set(t, "c/r", "f", &v), REP_EDONE);
        CK_RC(rep_txn_set_str(t, "c/r", "f", "x"), REP_EDONE);
        CK_RC(rep_txn_set_int(t, "c/r", "f", 1), REP_EDONE);
        CK_RC(rep_txn_set_bool(t, "c/r", "f", 1), REP_EDONE);
        CK_RC(rep_txn_set_double(t, "c/r", "f", 1.5), REP_EDONE);
        CK_RC(rep_txn_set_null(t, "c/r", "f"), REP_EDONE);
        CK_RC(rep_txn_set_bytes(t, "c/r", "f", "x", 1), REP_EDONE);
        CK_RC(rep_txn_del_field(t, "c/r", "f"), REP_EDONE);
        CK_RC(rep_txn_del_record(t, "c/r"), REP_EDONE);
        CK_RC(rep_txn_commit(t, NULL), REP_EDONE);
        rep_txn_abort(t); /* harmless */
        rep_txn_free(&t);
        ck_assert_ptr_null(t);
        rep_txn_free(&t); /* accepts NULL */
    }
    /* only the committed write is there, once */
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(p.a, &info));
    ck_assert_uint_eq(info->seq, 1);
    rep_info_free(&info);
    rep_value_t *got = NULL;
    CK_OK(rep_replica_get(p.a, "c/r", "f", &got));
    ck_assert_int_eq(got->type, REP_INT);
    ck_assert_int_eq(got->u.i, 0);
    rep_value_free(&got);
    pair_close(&p);
}
END_TEST

/* ---- (10) rep_strerror ------------------------------------------------------------------------ */

START_TEST(test_strerror_names_every_code)
{
    int codes[64];
    size_t n = 0;
    for (int rc = REP_ERROR_BASE; rc >= REP_ERROR_LAST; rc--)
        codes[n++] = rc;
    codes[n++] = -ENOMEM;
    codes[n++] = -EINVAL;
    codes[n++] = -EIO;
    ck_assert_uint_eq(n, (size_t)(REP_ERROR_BASE - REP_ERROR_LAST + 1 + 3));
    for (size_t k = 0; k < n; k++) {
        const char *s = rep_strerror(codes[k]);
        ck_assert_msg(s != NULL && s[0] != '\0', "rep_strerror(%d) is empty", codes[k]);
        for (size_t q = 0; q < k; q++)
            ck_assert_msg(strcmp(s, rep_strerror(codes[q])) != 0,
                          "rep_strerror(%d) == rep_strerror(%d) == \"%s\"", codes[k], codes[q], s);
    }
    /* an unknown code still gets a string */
    ck_assert_ptr_nonnull(rep_strerror(-31000));
    ck_assert_ptr_nonnull(rep_strerror(12345));
    ck_assert_ptr_nonnull(rep_version());
    ck_assert_str_eq(rep_version(), REP_VERSION_STRING);
}
END_TEST

/* ---- Map growth -------------------------------------------------------------------------------- */

#define BIG_VALUE (512u * 1024u)
#define BIG_PER_TXN 8
#define BIG_TXNS 8 /* 8 × 8 × 512 KiB = 32 MiB of values */

static void
big_value(uint64_t k, uint8_t *buf)
{
    tu_rng_t rng;
    tu_rng_seed(&rng, 0x61b0000 + k); /* random bytes: compression cannot shrink them */
    tu_rng_bytes(&rng, buf, BIG_VALUE);
}

static void
check_big_values(rep_replica_t *r, uint8_t *buf)
{
    for (int k = 0; k < BIG_TXNS * BIG_PER_TXN; k++) {
        char key[32];
        rep_value_t *v = NULL;
        snprintf(key, sizeof key, "scan/%d", k);
        CK_OK(rep_replica_get(r, key, "image", &v));
        big_value((uint64_t)k, buf);
        ck_assert_int_eq(v->type, REP_BYTES);
        ck_assert_uint_eq(v->u.s.len, BIG_VALUE);
        ck_assert_msg(memcmp(v->u.s.ptr, buf, BIG_VALUE) == 0, "%s.image differs", key);
        rep_value_free(&v);
    }
}

START_TEST(test_map_grows_on_commit)
{
    pair_t p;
    uint8_t *buf = malloc(BIG_VALUE);

    ck_assert_ptr_nonnull(buf);
    pair_open(&p);
    for (int tx = 0; tx < BIG_TXNS; tx++) {
        rep_txn_t *t = NULL;
        uint64_t seq = 0;
        CK_OK(rep_txn_begin(p.a, "scanner", &t));
        for (int k = 0; k < BIG_PER_TXN; k++) {
            char key[32];
            int idx = tx * BIG_PER_TXN + k;
            snprintf(key, sizeof key, "scan/%d", idx);
            big_value((uint64_t)idx, buf);
            CK_OK(rep_txn_set_bytes(t, key, "image", buf, BIG_VALUE));
        }
        int rc = rep_txn_commit(t, &seq);
        ck_assert_msg(rc == 0, "commit %d (after %d MiB of values) = %d (%s)", tx,
                      tx * BIG_PER_TXN / 2, rc, rep_strerror(rc));
        ck_assert_uint_eq(seq, (uint64_t)tx + 1);
        rep_txn_free(&t);
    }
    check_big_values(p.a, buf);

    /* the grown map is there after reopening */
    char dir[TU_PATH_MAX];
    rep_open_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = REP_OPEN_NOSYNC;
    CK_OK(tu_path(dir, p.dir, "a"));
    rep_replica_close(&p.a);
    CK_OK(rep_replica_open(&p.a, dir, &opts));
    check_big_values(p.a, buf);

    /* and an import of all of it into an empty replica grows that one's map too */
    size_t n = 0;
    uint8_t *batch = batch_for(p.a, p.b, &n);
    ck_assert_uint_gt(n, (size_t)BIG_TXNS * BIG_PER_TXN * BIG_VALUE);
    rep_import_stats_t st;
    int rc = rep_replica_import(p.b, batch, n, &st);
    ck_assert_msg(rc == 0, "import of %zu bytes = %d (%s)", n, rc, rep_strerror(rc));
    ck_assert_uint_eq(st.applied, BIG_TXNS);
    rep_free(batch);
    check_big_values(p.b, buf);
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    CK_OK(rep_replica_digest(p.a, da));
    CK_OK(rep_replica_digest(p.b, db));
    ck_assert_mem_eq(da, db, REP_DIGEST_BYTES);

    free(buf);
    pair_close(&p);
}
END_TEST

static Suite *
badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc;

    tc = tcase_create("batch");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batch_bitflips_rejected);
    tcase_add_test(tc, test_tampered_changes_rejected);
    tcase_add_test(tc, test_replayed_batch_is_a_noop);
    tcase_add_test(tc, test_change_by_a_stranger_rejected);
    tcase_add_test(tc, test_batch_truncations_rejected);
    tcase_add_test(tc, test_batch_trailing_bytes_rejected);
    tcase_add_test(tc, test_garbage_rejected);
    tcase_add_test(tc, test_foreign_office_batch_rejected);
    tcase_add_test(tc, test_foreign_office_vv_rejected);
    tcase_add_test(tc, test_vv_corrupt_rejected);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_names_over_limit_too_big);
    tcase_add_test(tc, test_too_many_ops_too_big);
    tcase_add_test(tc, test_malformed_names_invalid);
    tcase_add_test(tc, test_open_not_a_replica);
    tcase_add_test(tc, test_open_twice_busy);
    tcase_add_test(tc, test_create_excl_existing_eexist);
    tcase_add_test(tc, test_txn_after_finish_done);
    tcase_add_test(tc, test_strerror_names_every_code);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_map_grows_on_commit);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(badinput_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
