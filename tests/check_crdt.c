/*
 * check_crdt.c — merge rules and state layout (crdt.h): record keys, state keys, sibling
 * lists, causal contexts, the multi-value register, counters and sets.
 *
 * The register rules under test (DESIGN.md "Merge rules, precisely"): a write removes the
 * siblings its change's causal context covers and adds its own; concurrent writes both stay;
 * the visible value is the live sibling with the highest (hlc, actor); a deleted sibling loses
 * to any live one. Counters keep one total per actor; a set element is present while it holds
 * a dot, an add removes the element's dots its context covers and adds its own, a remove
 * only removes (add wins), a clear (record delete) removes covered dots of every element.
 * The property tests replay random causal histories over three writers on many simulated
 * replicas and check they end byte-identical (registers; sets, against a reference).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "common.h"
#include "crdt.h"
#include "hlc.h"
#include "replica.h"
#include "checkutil.h"

/* For hot loops: a passing ck_assert costs a write to Check's pipe, a plain if does not. */
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* ---- Helpers ------------------------------------------------------------------------------ */

/* Canonical msgpack for the small ints 0..127: a positive fixint is its own byte. Filled by
 * main() before the tests run. */
static uint8_t small_ints[128];

static void
small_ints_init(void)
{
    for (unsigned i = 0; i < 128; i++)
        small_ints[i] = (uint8_t)i;
}

/* A live sibling holding the int v (0..127), written by user "ann". */
static rep__sib_t
live(uint64_t actor, uint64_t seq, uint64_t hlc, unsigned v)
{
    rep__sib_t s = {actor, seq, hlc, false, 3, "ann", 1, &small_ints[v & 127]};
    return s;
}

/* A deleted sibling (a field delete: no value). */
static rep__sib_t
deleted(uint64_t actor, uint64_t seq, uint64_t hlc)
{
    rep__sib_t s = {actor, seq, hlc, true, 3, "bob", 0, NULL};
    return s;
}

/* The context of change (actor, seq) that had seen deps (sorted, own actor excluded). */
static rep__ctx_t
ctx_of(uint64_t actor, uint64_t seq, const rep_vv_entry_t *deps, size_t ndeps)
{
    rep__ctx_t c = {actor, seq, deps, ndeps};
    return c;
}

/* Apply one write of change (actor, seq) with no deps: a write concurrent with everything
 * of other actors. */
static void
write_alone(rep__sibs_t *s, const rep__sib_t *add)
{
    rep__ctx_t c = ctx_of(add->actor, add->seq, NULL, 0);
    CK_OK(rep__reg_apply(s, &c, add));
}

/* The stored bytes of a sibling list (caller frees). */
static uint8_t *
sibs_bytes(const rep__sibs_t *s, size_t *n)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep__sibs_encode(&b, s);
    ck_assert_int_eq(b.err, 0);
    return rep__buf_take(&b, n);
}

static void
assert_same_bytes(const rep__sibs_t *a, const rep__sibs_t *b)
{
    size_t an, bn;
    uint8_t *ap = sibs_bytes(a, &an), *bp = sibs_bytes(b, &bn);
    ck_assert_msg(an == bn && memcmp(ap, bp, an) == 0, "sibling lists differ (%zu vs %zu bytes)",
                  an, bn);
    free(ap);
    free(bp);
}

/* The value (small int) of the visible sibling, or -1 when the field is absent. */
static int
visible(const rep__sibs_t *s)
{
    int w = rep__reg_winner(s);
    return w < 0 ? -1 : s->v[w].val[0];
}

/* ---- rep__key_split ------------------------------------------------------------------------ */

START_TEST(key_split_separates_collection_and_record)
{
    rep__skey_t k;
    CK_OK(rep__key_split("patients/8812", &k));
    ck_assert_uint_eq(k.colln, 8);
    ck_assert_mem_eq(k.coll, "patients", 8);
    ck_assert_uint_eq(k.recn, 4);
    ck_assert_mem_eq(k.rec, "8812", 4);
    ck_assert_int_eq(k.kind, REP_KIND_REGISTER);

    CK_OK(rep__key_split("p/\xc3\xa9t\xc3\xa9", &k)); /* UTF-8 record id */
    ck_assert_uint_eq(k.recn, 5);
}
END_TEST

START_TEST(key_split_allows_slashes_inside_the_record_id)
{
    rep__skey_t k;
    CK_OK(rep__key_split("notes/2024/01/15", &k));
    ck_assert_uint_eq(k.colln, 5);
    ck_assert_mem_eq(k.coll, "notes", 5);
    ck_assert_uint_eq(k.recn, 10);
    ck_assert_mem_eq(k.rec, "2024/01/15", 10);

    CK_OK(rep__key_split("a//", &k)); /* the record id is "/" */
    ck_assert_uint_eq(k.recn, 1);
    ck_assert_mem_eq(k.rec, "/", 1);
}
END_TEST

START_TEST(key_split_rejects_a_key_without_both_parts)
{
    rep__skey_t k;
    CK_RC(rep__key_split("patients", &k), -EINVAL); /* no '/' */
    CK_RC(rep__key_split("", &k), -EINVAL);
    CK_RC(rep__key_split("/8812", &k), -EINVAL);     /* empty collection */
    CK_RC(rep__key_split("patients/", &k), -EINVAL); /* empty record id */
    CK_RC(rep__key_split("/", &k), -EINVAL);
    CK_RC(rep__key_split(NULL, &k), -EINVAL);
}
END_TEST

START_TEST(key_split_limits_the_lengths)
{
    char key[REP_MAX_COLLECTION + REP_MAX_RECORD + 8];
    rep__skey_t k;

    /* collection of exactly the limit, then one more */
    memset(key, 'c', REP_MAX_COLLECTION);
    strcpy(key + REP_MAX_COLLECTION, "/r");
    CK_OK(rep__key_split(key, &k));
    memset(key, 'c', REP_MAX_COLLECTION + 1);
    strcpy(key + REP_MAX_COLLECTION + 1, "/r");
    CK_RC(rep__key_split(key, &k), REP_ETOOBIG);

    /* record id of exactly the limit, then one more */
    strcpy(key, "c/");
    memset(key + 2, 'r', REP_MAX_RECORD);
    key[2 + REP_MAX_RECORD] = '\0';
    CK_OK(rep__key_split(key, &k));
    ck_assert_uint_eq(k.recn, REP_MAX_RECORD);
    memset(key + 2, 'r', REP_MAX_RECORD + 1);
    key[2 + REP_MAX_RECORD + 1] = '\0';
    CK_RC(rep__key_split(key, &k), REP_ETOOBIG);
}
END_TEST

START_TEST(key_split_rejects_invalid_utf8)
{
    rep__skey_t k;
    CK_RC(rep__key_split("pat\xc0\x80/1", &k), -EINVAL);         /* overlong in the collection */
    CK_RC(rep__key_split("patients/\xed\xa0\x80", &k), -EINVAL); /* surrogate in the record */
    CK_RC(rep__key_split("patients/88\xe2\x82", &k), -EINVAL);   /* truncated sequence */
    CK_RC(rep__key_split("\xff/1", &k), -EINVAL);
}
END_TEST

START_TEST(name_check_applies_the_field_rules)
{
    CK_OK(rep__name_check("phone", 5, REP_MAX_FIELD, false));
    CK_RC(rep__name_check("", 0, REP_MAX_FIELD, false), -EINVAL);
    CK_OK(rep__name_check("", 0, REP_MAX_FIELD, true)); /* the existence register's name */
    CK_RC(rep__name_check("a\0b", 3, REP_MAX_FIELD, false), -EINVAL);
    CK_RC(rep__name_check("\xc3", 1, REP_MAX_FIELD, false), -EINVAL);
    char big[REP_MAX_FIELD + 1];
    memset(big, 'f', sizeof big);
    CK_OK(rep__name_check(big, REP_MAX_FIELD, REP_MAX_FIELD, false));
    CK_RC(rep__name_check(big, REP_MAX_FIELD + 1, REP_MAX_FIELD, false), REP_ETOOBIG);
}
END_TEST

/* ---- State keys ---------------------------------------------------------------------------- */

START_TEST(state_key_round_trips_through_parse)
{
    rep__skey_t k;
    CK_OK(rep__key_split("patients/8812", &k));
    k.field = "phone";
    k.fieldn = 5;
    k.kind = REP_KIND_REGISTER;
    uint8_t buf[REP_STATE_KEY_MAX];
    size_t n = rep__skey_make(buf, &k, true);
    static const uint8_t want[] = "patients\08812\0phone\0\x01"; /* \0: a NUL byte */
    ck_assert_uint_eq(n, sizeof want - 1);
    ck_assert_mem_eq(buf, want, n);

    rep__skey_t back;
    CK_OK(rep__skey_parse(buf, n, &back));
    ck_assert_uint_eq(back.colln, 8);
    ck_assert_mem_eq(back.coll, "patients", 8);
    ck_assert_uint_eq(back.recn, 4);
    ck_assert_mem_eq(back.rec, "8812", 4);
    ck_assert_uint_eq(back.fieldn, 5);
    ck_assert_mem_eq(back.field, "phone", 5);
    ck_assert_int_eq(back.kind, REP_KIND_REGISTER);

    /* the record prefix is a prefix of every field key of the record */
    uint8_t pre[REP_STATE_KEY_MAX];
    size_t pn = rep__skey_make(pre, &k, false);
    ck_assert_uint_eq(pn, 8 + 1 + 4 + 1);
    ck_assert_mem_eq(pre, buf, pn);

    /* the existence register: empty field name */
    k.field = "";
    k.fieldn = 0;
    n = rep__skey_make(buf, &k, true);
    CK_OK(rep__skey_parse(buf, n, &back));
    ck_assert_uint_eq(back.fieldn, 0);
    ck_assert_uint_eq(n, pn + 2);
}
END_TEST

START_TEST(state_key_of_maximum_size_fits)
{
    char coll[REP_MAX_COLLECTION], rec[REP_MAX_RECORD], field[REP_MAX_FIELD];
    memset(coll, 'c', sizeof coll);
    memset(rec, 'r', sizeof rec);
    memset(field, 'f', sizeof field);
    uint8_t id[REP_LOG_ID_BYTES];
    rep__log_id(id, UINT64_MAX, 7, 9, 3);
    rep__skey_t k = {coll, rec, field, sizeof coll, sizeof rec, sizeof field, REP_KIND_LOG, id};
    uint8_t buf[REP_STATE_KEY_MAX];
    size_t n = rep__skey_make(buf, &k, true);
    ck_assert_uint_eq(n, REP_STATE_KEY_MAX); /* a log entry's key is the longest kind */
    ck_assert_uint_le(n, 511);                /* LMDB's key limit */
    rep__skey_t back;
    CK_OK(rep__skey_parse(buf, n, &back));
    ck_assert_int_eq(back.kind, REP_KIND_LOG);
    ck_assert_uint_eq(back.recn, REP_MAX_RECORD);
    ck_assert_mem_eq(back.id, id, REP_LOG_ID_BYTES);
    /* a log key without its entry id, or another kind with one, is not a state key */
    CK_RC(rep__skey_parse(buf, n - REP_LOG_ID_BYTES, &back), REP_ECORRUPT);
    buf[n - REP_LOG_ID_BYTES - 1] = REP_KIND_SET;
    CK_RC(rep__skey_parse(buf, n, &back), REP_ECORRUPT);
}
END_TEST

START_TEST(state_key_parse_rejects_what_is_not_a_state_key)
{
    /* (in these literals \0 is a NUL byte: no name starts with an octal digit) */
    /* clang-format off */
#define LIT(s) {s, sizeof s - 1}
    /* clang-format on */
    static const struct {
        const char *b;
        size_t n;
    } bad[] = {
        LIT(""),
        LIT("patients"),                        /* no separators */
        LIT("patients\08812"),                  /* one */
        LIT("patients\08812\0phone"),           /* two */
        LIT("patients\08812\0phone\0"),         /* no kind byte */
        LIT("patients\08812\0phone\0\x01\x01"), /* a byte past the kind */
        LIT("a\0b\0c\0\x01\0"),                 /* a fourth separator */
    };
#undef LIT
    for (size_t i = 0; i < REP_ARRAY_LEN(bad); i++) {
        rep__skey_t k;
        ck_assert_msg(rep__skey_parse((const uint8_t *)bad[i].b, bad[i].n, &k) == REP_ECORRUPT,
                      "case %zu accepted", i);
    }
}
END_TEST

static int
key_cmp(const void *a, const void *b)
{
    /* LMDB's default order: memcmp, then the shorter first */
    const uint8_t *const *x = a, *const *y = b;
    size_t xn = (*x)[0], yn = (*y)[0];
    int c = memcmp(*x + 1, *y + 1, xn < yn ? xn : yn);
    return c ? c : (xn > yn) - (xn < yn);
}

/*
 * Every state key of one record sorts into one contiguous run that starts with the
 * existence key (field ""), whatever bytes the names use: record ids that are prefixes of
 * each other, hold '/', or start with low or high bytes.
 */
START_TEST(state_keys_of_a_record_are_contiguous_and_existence_comes_first)
{
    static const char *colls[] = {"c", "c2", "cc", "c\x01"};
    static const char *recs[] = {"a", "a/b", "ab", "a\x01", "\x01", "\xc3\xa9", "a ", "b"};
    static const char *fields[] = {"", "\x01", "a", "phone", "phone2", "zz", "\xf0\x9f\x98\x80"};
    enum { NC = 4, NR = 8, NF = 7, N = NC * NR * NF };
    uint8_t *keys[N]; /* each: length byte, then the key */
    size_t nk = 0;
    for (size_t c = 0; c < NC; c++)
        for (size_t r = 0; r < NR; r++)
            for (size_t f = 0; f < NF; f++) {
                rep__skey_t k = {.coll = colls[c],
                                 .colln = strlen(colls[c]),
                                 .rec = recs[r],
                                 .recn = strlen(recs[r]),
                                 .field = fields[f],
                                 .fieldn = strlen(fields[f]),
                                 .kind = (uint8_t)(1 + (c + r + f) % 3)}; /* a log key needs an id */
                uint8_t *p = malloc(1 + REP_STATE_KEY_MAX);
                ck_assert_ptr_nonnull(p);
                p[0] = (uint8_t)rep__skey_make(p + 1, &k, true);
                keys[nk++] = p;
            }
    qsort(keys, nk, sizeof keys[0], key_cmp);

    for (size_t c = 0; c < NC; c++)
        for (size_t r = 0; r < NR; r++) {
            rep__skey_t k = {colls[c], recs[r], NULL, strlen(colls[c]), strlen(recs[r]), 0, 0, NULL};
            uint8_t pre[REP_STATE_KEY_MAX];
            size_t pn = rep__skey_make(pre, &k, false);
            size_t first = SIZE_MAX, last = 0, count = 0;
            for (size_t i = 0; i < nk; i++) {
                rep__skey_t pk;
                CK_OK(rep__skey_parse(keys[i] + 1, keys[i][0], &pk));
                bool mine = pk.colln == k.colln && pk.recn == k.recn &&
                            memcmp(pk.coll, k.coll, k.colln) == 0 &&
                            memcmp(pk.rec, k.rec, k.recn) == 0;
                bool prefixed = keys[i][0] >= pn && memcmp(keys[i] + 1, pre, pn) == 0;
                /* a prefix scan finds exactly the record's keys */
                ck_assert_msg(mine == prefixed, "record %zu/%zu: prefix scan is wrong", c, r);
                if (mine) {
                    if (first == SIZE_MAX)
                        first = i;
                    last = i;
                    count++;
                }
            }
            ck_assert_uint_eq(count, NF);
            ck_assert_msg(last - first + 1 == NF, "record %zu/%zu is not contiguous", c, r);
            rep__skey_t fk;
            CK_OK(rep__skey_parse(keys[first] + 1, keys[first][0], &fk));
            ck_assert_msg(fk.fieldn == 0, "record %zu/%zu: existence key is not first", c, r);
        }
    for (size_t i = 0; i < nk; i++)
        free(keys[i]);
}
END_TEST

/* ---- Sibling lists ------------------------------------------------------------------------- */

START_TEST(sibling_list_round_trips_in_its_documented_layout)
{
    char user64[REP_MAX_USER];
    memset(user64, 'u', sizeof user64);
    static const uint8_t hello[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
    rep__sib_t in[3] = {
        {1, 1, REP_HLC_MAKE(TU_CLOCK_EPOCH_MS, 1), false, 3, "ann", sizeof hello, hello},
        {2, 7, REP_HLC_MAKE(TU_CLOCK_EPOCH_MS, 2), true, 0, "", 0, NULL},
        {0xfedcba9876543210ull, 2, UINT64_MAX, false, sizeof user64, user64, 1, &small_ints[5]},
    };
    rep__sibs_t s = {in, 3, 3};
    size_t n;
    uint8_t *b = sibs_bytes(&s, &n);
    ck_assert_uint_eq(n, 2 + (26 + 3 + 4 + 6) + (26 + 0 + 4 + 0) + (26 + 64 + 4 + 1));

    /* count(2) actor(8) seq(8) hlc(8) flags(1) userlen(1) user vallen(4) value, big-endian */
    ck_assert_uint_eq(b[0], 0);
    ck_assert_uint_eq(b[1], 3);
    ck_assert_uint_eq(rep__get_be64(b + 2), 1);
    ck_assert_uint_eq(rep__get_be64(b + 10), 1);
    ck_assert_uint_eq(rep__get_be64(b + 18), REP_HLC_MAKE(TU_CLOCK_EPOCH_MS, 1));
    ck_assert_uint_eq(b[26], 0);
    ck_assert_uint_eq(b[27], 3);
    ck_assert_mem_eq(b + 28, "ann", 3);
    ck_assert_uint_eq(rep__get_be32(b + 31), 6);
    ck_assert_mem_eq(b + 35, hello, 6);
    ck_assert_uint_eq(b[41 + 24], 1); /* second sibling: deleted */

    rep__sibs_t out = {0};
    CK_OK(rep__sibs_decode(&out, b, n));
    ck_assert_uint_eq(out.n, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(out.v[i].actor, in[i].actor);
        ck_assert_uint_eq(out.v[i].seq, in[i].seq);
        ck_assert_uint_eq(out.v[i].hlc, in[i].hlc);
        ck_assert_int_eq(out.v[i].deleted, in[i].deleted);
        ck_assert_uint_eq(out.v[i].usern, in[i].usern);
        ck_assert_mem_eq(out.v[i].user, in[i].user, in[i].usern);
        ck_assert_uint_eq(out.v[i].valn, in[i].valn);
        if (in[i].valn)
            ck_assert_mem_eq(out.v[i].val, in[i].val, in[i].valn);
        /* views into the decoded bytes */
        ck_assert(out.v[i].user >= (const char *)b && out.v[i].user <= (const char *)b + n);
    }
    assert_same_bytes(&s, &out); /* decode → encode gives the same bytes */

    free(b);
    rep__sibs_free(&out);
    ck_assert_ptr_null(out.v);
}
END_TEST

START_TEST(empty_sibling_list_round_trips)
{
    rep__sibs_t s = {0};
    size_t n;
    uint8_t *b = sibs_bytes(&s, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(b[0] | b[1], 0);
    rep__sibs_t out = {0};
    CK_OK(rep__sibs_decode(&out, b, n));
    ck_assert_uint_eq(out.n, 0);
    free(b);
    rep__sibs_free(&out);
}
END_TEST

START_TEST(sibling_list_decode_rejects_every_truncation_and_trailing_bytes)
{
    rep__sibs_t s = {0};
    rep__sib_t a = live(1, 1, 10, 7), d = deleted(2, 3, 11), c = live(3, 1, 12, 9);
    write_alone(&s, &a);
    write_alone(&s, &d);
    write_alone(&s, &c);
    size_t n;
    uint8_t *b = sibs_bytes(&s, &n);

    rep__sibs_t out = {0};
    for (size_t k = 0; k < n; k++) {
        int rc = rep__sibs_decode(&out, b, k);
        if (rc != REP_ECORRUPT)
            ck_abort_msg("a prefix of %zu/%zu bytes gave %d", k, n, rc);
        ck_assert_uint_eq(out.n, 0); /* nothing half-decoded is left behind */
    }

    uint8_t *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    CK_RC(rep__sibs_decode(&out, longer, n + 1), REP_ECORRUPT);

    CK_OK(rep__sibs_decode(&out, b, n)); /* and the whole is still fine */
    ck_assert_uint_eq(out.n, 3);
    free(longer);
    free(b);
    rep__sibs_free(&out);
    rep__sibs_free(&s);
}
END_TEST

START_TEST(sibling_list_decode_rejects_lengths_past_the_end)
{
    rep__sibs_t out = {0};
    uint8_t b[2 + 26 + 4 + 4] = {0};

    /* count 2, bytes for one sibling */
    rep__sib_t one = live(1, 1, 1, 1);
    rep__sibs_t s = {&one, 1, 1};
    size_t n;
    uint8_t *enc = sibs_bytes(&s, &n);
    enc[1] = 2;
    CK_RC(rep__sibs_decode(&out, enc, n), REP_ECORRUPT);
    free(enc);

    /* a user length past the end */
    b[1] = 1;
    b[2 + 25] = 200;
    CK_RC(rep__sibs_decode(&out, b, sizeof b), REP_ECORRUPT);

    /* a value length of 4 GiB */
    b[2 + 25] = 0;
    memset(b + 2 + 26, 0xff, 4);
    CK_RC(rep__sibs_decode(&out, b, 2 + 26 + 4), REP_ECORRUPT);
    rep__sibs_free(&out);
}
END_TEST

START_TEST(sibling_list_decode_rejects_a_huge_count_as_corrupt)
{
    /* two bytes claiming 65535 siblings: damaged bytes, not a caller over a limit */
    static const uint8_t b[] = {0xff, 0xff};
    rep__sibs_t out = {0};
    CK_RC(rep__sibs_decode(&out, b, sizeof b), REP_ECORRUPT);
    static const uint8_t b2[] = {0x10, 0x01, 0x00}; /* 4097, past REP_MAX_SIBLINGS */
    CK_RC(rep__sibs_decode(&out, b2, sizeof b2), REP_ECORRUPT);
    rep__sibs_free(&out);
}
END_TEST

START_TEST(sibling_list_decode_survives_random_garbage)
{
    tu_rng_t rng;
    uint64_t seed = tu_seed(0x5eed5);
    tu_rng_seed(&rng, seed);
    uint8_t b[120];
    rep__sibs_t out = {0};
    for (int i = 0; i < 20000; i++) {
        size_t n = tu_rng_below(&rng, sizeof b);
        tu_rng_bytes(&rng, b, n);
        if (n >= 2 && tu_rng_chance(&rng, 80)) { /* mostly plausible counts */
            b[0] = 0;
            b[1] = (uint8_t)tu_rng_below(&rng, 4);
        }
        int rc = rep__sibs_decode(&out, b, n);
        if (rc != 0 && rc != REP_ECORRUPT && rc != REP_ETOOBIG)
            ck_abort_msg("seed %#" PRIx64 " case %d: %d", seed, i, rc);
        if (rc == 0) { /* then every view stays inside the input */
            for (size_t j = 0; j < out.n; j++)
                if (out.v[j].user + out.v[j].usern > (const char *)b + n ||
                    out.v[j].val + out.v[j].valn > b + n)
                    ck_abort_msg("seed %#" PRIx64 " case %d: view past the end", seed, i);
        } else if (out.n != 0) {
            ck_abort_msg("seed %#" PRIx64 " case %d: failed with %zu siblings", seed, i, out.n);
        }
    }
    rep__sibs_free(&out);
}
END_TEST

/* ---- Causal contexts ----------------------------------------------------------------------- */

START_TEST(ctx_covers_own_earlier_changes_and_the_deps)
{
    static const rep_vv_entry_t deps[] = {{2, 4}, {9, 1}, {0xffffffffffffff00ull, 3}};
    rep__ctx_t c = ctx_of(5, 3, deps, 3);

    /* its own actor: every earlier seq, not itself, nothing later */
    ck_assert(rep__ctx_covers(&c, 5, 1));
    ck_assert(rep__ctx_covers(&c, 5, 2));
    ck_assert(!rep__ctx_covers(&c, 5, 3));
    ck_assert(!rep__ctx_covers(&c, 5, 4));

    /* the deps: up to and including each seq */
    ck_assert(rep__ctx_covers(&c, 2, 1));
    ck_assert(rep__ctx_covers(&c, 2, 4));
    ck_assert(!rep__ctx_covers(&c, 2, 5));
    ck_assert(rep__ctx_covers(&c, 9, 1));
    ck_assert(!rep__ctx_covers(&c, 9, 2));
    ck_assert(rep__ctx_covers(&c, 0xffffffffffffff00ull, 3));
    ck_assert(!rep__ctx_covers(&c, 0xffffffffffffff00ull, 4));

    /* actors it never saw: before, between and after the deps */
    ck_assert(!rep__ctx_covers(&c, 1, 1));
    ck_assert(!rep__ctx_covers(&c, 7, 1));
    ck_assert(!rep__ctx_covers(&c, UINT64_MAX, 1));

    /* a first change with no deps covers nothing of anyone */
    rep__ctx_t first = ctx_of(5, 1, NULL, 0);
    ck_assert(!rep__ctx_covers(&first, 5, 1));
    ck_assert(!rep__ctx_covers(&first, 2, 1));
}
END_TEST

/* ---- The register ------------------------------------------------------------------------- */

START_TEST(a_write_that_saw_the_previous_value_supersedes_it)
{
    rep__sibs_t s = {0};
    rep__sib_t a1 = live(1, 1, 100, 10);
    write_alone(&s, &a1);

    /* B wrote after seeing A:1 — even with an older clock (a skewed device) */
    static const rep_vv_entry_t saw_a1[] = {{1, 1}};
    rep__ctx_t c = ctx_of(2, 1, saw_a1, 1);
    rep__sib_t b1 = live(2, 1, 50, 20);
    CK_OK(rep__reg_apply(&s, &c, &b1));
    ck_assert_uint_eq(s.n, 1);
    ck_assert_uint_eq(s.v[0].actor, 2);
    ck_assert_int_eq(visible(&s), 20);

    /* A's own next write supersedes A's previous one with no deps at all */
    rep__sibs_t t = {0};
    write_alone(&t, &a1);
    rep__sib_t a2 = live(1, 2, 101, 11);
    write_alone(&t, &a2);
    ck_assert_uint_eq(t.n, 1);
    ck_assert_uint_eq(t.v[0].seq, 2);
    rep__sibs_free(&s);
    rep__sibs_free(&t);
}
END_TEST

START_TEST(concurrent_writes_both_stay_and_the_winner_is_independent_of_order)
{
    static const struct {
        uint64_t ha, hb; /* hlc of A (actor 1) and of B (actor 2) */
        int want;        /* visible value: A writes 10, B writes 20 */
    } cases[] = {
        {100, 200, 20}, /* higher hlc wins */
        {300, 200, 10},
        {200, 200, 20}, /* a tie goes to the higher actor */
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(cases); i++) {
        rep__sib_t a = live(1, 1, cases[i].ha, 10), b = live(2, 1, cases[i].hb, 20);
        rep__sibs_t ab = {0}, ba = {0};
        write_alone(&ab, &a);
        write_alone(&ab, &b);
        write_alone(&ba, &b);
        write_alone(&ba, &a);
        ck_assert_uint_eq(ab.n, 2); /* both kept: a conflict */
        ck_assert_int_eq(visible(&ab), cases[i].want);
        ck_assert_int_eq(visible(&ba), cases[i].want);
        assert_same_bytes(&ab, &ba);
        ck_assert_uint_lt(ab.v[0].actor, ab.v[1].actor); /* stored in dot order */
        rep__sibs_free(&ab);
        rep__sibs_free(&ba);
    }
}
END_TEST

START_TEST(a_delete_concurrent_with_an_update_loses_to_it)
{
    rep__sib_t upd = live(1, 1, 100, 42);
    rep__sib_t del = deleted(2, 1, 900); /* a later clock does not help a delete */
    rep__sibs_t x = {0}, y = {0};
    write_alone(&x, &upd);
    write_alone(&x, &del);
    write_alone(&y, &del);
    ck_assert_int_eq(visible(&y), -1); /* only a deleted sibling: the field is absent */
    write_alone(&y, &upd);

    ck_assert_uint_eq(x.n, 2); /* the pair stays, to be reported */
    ck_assert_int_eq(visible(&x), 42);
    assert_same_bytes(&x, &y);

    /* a later write that saw both resolves the conflict */
    static const rep_vv_entry_t saw[] = {{1, 1}, {2, 1}};
    rep__ctx_t c = ctx_of(3, 1, saw, 2);
    rep__sib_t fix = deleted(3, 1, 1000);
    CK_OK(rep__reg_apply(&x, &c, &fix));
    ck_assert_uint_eq(x.n, 1);
    ck_assert_int_eq(visible(&x), -1);
    rep__sibs_free(&x);
    rep__sibs_free(&y);
}
END_TEST

START_TEST(a_clear_removes_only_the_covered_siblings)
{
    rep__sibs_t s = {0};
    rep__sib_t a1 = live(1, 1, 10, 1), b1 = live(2, 1, 11, 2), c2 = deleted(3, 2, 12);
    write_alone(&s, &a1);
    write_alone(&s, &b1);
    write_alone(&s, &c2);
    ck_assert_uint_eq(s.n, 3);

    /* D deletes the record having seen A:1 and C:1 (not C:2, nothing of B) */
    static const rep_vv_entry_t saw[] = {{1, 1}, {3, 1}};
    rep__ctx_t c = ctx_of(4, 1, saw, 2);
    CK_OK(rep__reg_apply(&s, &c, NULL));
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(s.v[0].actor, 2);
    ck_assert_uint_eq(s.v[1].actor, 3);
    ck_assert_int_eq(visible(&s), 2);

    /* a clear that covers nothing changes nothing */
    rep__ctx_t none = ctx_of(4, 1, NULL, 0);
    CK_OK(rep__reg_apply(&s, &none, NULL));
    ck_assert_uint_eq(s.n, 2);

    /* a clear that covers everything empties the field */
    static const rep_vv_entry_t all[] = {{2, 1}, {3, 2}};
    rep__ctx_t c2ctx = ctx_of(4, 2, all, 2);
    CK_OK(rep__reg_apply(&s, &c2ctx, NULL));
    ck_assert_uint_eq(s.n, 0);
    ck_assert_int_eq(rep__reg_winner(&s), -1);
    rep__sibs_free(&s);
}
END_TEST

START_TEST(applying_the_same_write_twice_is_idempotent)
{
    rep__sibs_t s = {0};
    rep__sib_t a = live(1, 1, 10, 1), b = live(2, 1, 20, 2);
    write_alone(&s, &a);
    write_alone(&s, &b);
    size_t n1;
    uint8_t *once = sibs_bytes(&s, &n1);

    write_alone(&s, &b); /* the same dot replaces itself */
    write_alone(&s, &a);
    size_t n2;
    uint8_t *twice = sibs_bytes(&s, &n2);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(once, twice, n1);

    /* the same change writing the field again: its newer value replaces its sibling */
    rep__sib_t b_again = live(2, 1, 20, 3);
    write_alone(&s, &b_again);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_int_eq(visible(&s), 3);
    free(once);
    free(twice);
    rep__sibs_free(&s);
}
END_TEST

START_TEST(siblings_are_kept_in_dot_order)
{
    rep__sibs_t s = {0};
    static const uint64_t actors[] = {7, 3, 0xffffffffffffffffull, 1, 5};
    for (size_t i = 0; i < REP_ARRAY_LEN(actors); i++) {
        rep__sib_t x = live(actors[i], 4, 10 + i, (unsigned)i);
        write_alone(&s, &x);
    }
    ck_assert_uint_eq(s.n, 5);
    for (size_t i = 1; i < s.n; i++)
        ck_assert_uint_lt(s.v[i - 1].actor, s.v[i].actor);
    ck_assert_int_eq(visible(&s), 4); /* hlc 14 */
    rep__sibs_free(&s);
}
END_TEST

START_TEST(winner_is_none_when_every_sibling_is_deleted)
{
    rep__sibs_t s = {0};
    ck_assert_int_eq(rep__reg_winner(&s), -1);
    rep__sib_t d1 = deleted(1, 1, 10), d2 = deleted(2, 1, 20);
    write_alone(&s, &d1);
    write_alone(&s, &d2);
    ck_assert_int_eq(rep__reg_winner(&s), -1);
    rep__sib_t l = live(3, 1, 1, 9);
    write_alone(&s, &l);
    ck_assert_int_eq(visible(&s), 9);
    rep__sibs_free(&s);
}
END_TEST

START_TEST(siblings_past_the_limit_are_too_big)
{
    rep__sibs_t s = {0};
    for (uint64_t a = 1; a <= REP_MAX_SIBLINGS; a++) {
        rep__sib_t x = live(a, 1, a, 1);
        rep__ctx_t c = ctx_of(a, 1, NULL, 0);
        int rc = rep__reg_apply(&s, &c, &x);
        if (rc != 0)
            ck_abort_msg("sibling %" PRIu64 ": %d", a, rc);
    }
    ck_assert_uint_eq(s.n, REP_MAX_SIBLINGS);
    rep__sib_t one_more = live(REP_MAX_SIBLINGS + 1, 1, 1, 1);
    rep__ctx_t c = ctx_of(REP_MAX_SIBLINGS + 1, 1, NULL, 0);
    CK_RC(rep__reg_apply(&s, &c, &one_more), REP_ETOOBIG);

    /* the full list still encodes and decodes */
    size_t n;
    uint8_t *b = sibs_bytes(&s, &n);
    rep__sibs_t out = {0};
    CK_OK(rep__sibs_decode(&out, b, n));
    ck_assert_uint_eq(out.n, REP_MAX_SIBLINGS);
    free(b);
    rep__sibs_free(&out);
    rep__sibs_free(&s);
}
END_TEST

/* ---- Property: random causal histories converge ------------------------------------------- */

/*
 * Three writers edit one register, as in shared/model/crdt_model.py: each change's context is
 * its writer's version vector when it wrote; writers receive each other's changes in random
 * causal orders along the way. Then several fresh replicas receive every change in a random
 * order with duplicates (held back until deliverable, as apply.c does), and the writers catch
 * up. Every replica must end with a byte-identical sibling list, equal to what the dot-list
 * form of the rule (remove exactly the siblings the writer held) gives.
 */
#define NW      3   /* writers */
#define NREP    4   /* extra replicas */
#define MAXCH   120 /* changes per history */
#define MAXSEEN 16

typedef struct chg {
    int w; /* writer index */
    uint64_t actor, seq, hlc;
    rep_vv_entry_t deps[NW];
    size_t ndeps;
    int op; /* 0 set, 1 delete the field, 2 clear (record delete) */
    unsigned val;
    struct {
        uint64_t actor, seq;
    } seen[MAXSEEN]; /* the dots its writer held */
    size_t nseen;
} chg_t;

typedef struct sim {
    rep__sibs_t sibs;
    uint64_t vv[NW];
    int pending[4 * MAXCH]; /* change indexes waiting for their deps */
    size_t npending;
    /* the dot-list form of the rule, for comparison */
    struct {
        uint64_t actor, seq;
    } ref[MAXSEEN * 4];
    size_t nref;
} sim_t;

static uint64_t g_seed; /* of the running history, for failure messages */

typedef struct history {
    uint64_t actors[NW];
    chg_t ch[MAXCH];
    size_t n;
    int by_dot[NW][MAXCH + 1]; /* writer, seq → index in ch */
} history_t;

static bool
deliverable(const sim_t *r, const history_t *h, const chg_t *c)
{
    if (r->vv[c->w] + 1 != c->seq)
        return false;
    for (size_t d = 0; d < c->ndeps; d++)
        for (int w = 0; w < NW; w++)
            if (h->actors[w] == c->deps[d].actor && r->vv[w] < c->deps[d].seq)
                return false;
    return true;
}

static void
sim_apply(sim_t *r, const history_t *h, const chg_t *c)
{
    rep__ctx_t ctx = ctx_of(c->actor, c->seq, c->deps, c->ndeps);
    rep__sib_t add =
        c->op == 1 ? deleted(c->actor, c->seq, c->hlc) : live(c->actor, c->seq, c->hlc, c->val);
    int rc = rep__reg_apply(&r->sibs, &ctx, c->op == 2 ? NULL : &add);
    REQUIRE(rc == 0, "rep__reg_apply: %d", rc);
    r->vv[c->w] = c->seq;

    /* the reference: drop the dots the writer held, add our own */
    size_t k = 0;
    for (size_t i = 0; i < r->nref; i++) {
        bool held = false;
        for (size_t j = 0; j < c->nseen; j++)
            held |= c->seen[j].actor == r->ref[i].actor && c->seen[j].seq == r->ref[i].seq;
        if (!held)
            r->ref[k++] = r->ref[i];
    }
    r->nref = k;
    if (c->op != 2) {
        REQUIRE(r->nref < REP_ARRAY_LEN(r->ref), "reference overflow");
        r->ref[r->nref].actor = c->actor;
        r->ref[r->nref].seq = c->seq;
        r->nref++;
    }
    (void)h;

    /* after every step, the context rule has kept exactly the dots the dot-list rule keeps */
    REQUIRE(r->nref == r->sibs.n,
            "seed %" PRIu64 ", after %" PRIx64 ":%" PRIu64 ": %zu siblings, reference %zu", g_seed,
            c->actor, c->seq, r->sibs.n, r->nref);
    for (size_t i = 0; i < r->nref; i++) {
        bool found = false;
        for (size_t j = 0; j < r->sibs.n; j++)
            found |= r->sibs.v[j].actor == r->ref[i].actor && r->sibs.v[j].seq == r->ref[i].seq;
        REQUIRE(found,
                "seed %" PRIu64 ", after %" PRIx64 ":%" PRIu64 ": sibling %" PRIx64 ":%" PRIu64
                " missing",
                g_seed, c->actor, c->seq, r->ref[i].actor, r->ref[i].seq);
    }
}

/* Queue change i at r and apply whatever has become deliverable; duplicates are dropped
 * by the version vector, as apply.c does. */
static void
sim_receive(sim_t *r, const history_t *h, int i)
{
    REQUIRE(r->npending < REP_ARRAY_LEN(r->pending), "pending overflow");
    r->pending[r->npending++] = i;
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t p = 0; p < r->npending; p++) {
            const chg_t *c = &h->ch[r->pending[p]];
            bool dup = r->vv[c->w] >= c->seq;
            if (!dup && !deliverable(r, h, c))
                continue;
            if (!dup)
                sim_apply(r, h, c);
            r->pending[p] = r->pending[--r->npending];
            progress = true;
            break;
        }
    }
}

static int
dep_cmp(const void *a, const void *b)
{
    const rep_vv_entry_t *x = a, *y = b;
    return (x->actor > y->actor) - (x->actor < y->actor);
}

/* Writer w makes a change from what it holds now. */
static void
sim_write(sim_t *r, history_t *h, int w, uint64_t hlc, tu_rng_t *rng)
{
    REQUIRE(h->n < MAXCH, "history overflow");
    chg_t *c = &h->ch[h->n];
    memset(c, 0, sizeof *c);
    c->w = w;
    c->actor = h->actors[w];
    c->seq = r->vv[w] + 1;
    c->hlc = hlc;
    for (int o = 0; o < NW; o++)
        if (o != w && r->vv[o] > 0) {
            c->deps[c->ndeps].actor = h->actors[o];
            c->deps[c->ndeps].seq = r->vv[o];
            c->ndeps++;
        }
    qsort(c->deps, c->ndeps, sizeof c->deps[0], dep_cmp);
    uint64_t x = tu_rng_below(rng, 100);
    c->op = x < 70 ? 0 : x < 90 ? 1 : 2;
    c->val = (unsigned)tu_rng_below(rng, 128);
    REQUIRE(r->sibs.n <= MAXSEEN, "%zu siblings", r->sibs.n);
    for (size_t i = 0; i < r->sibs.n; i++) {
        c->seen[i].actor = r->sibs.v[i].actor;
        c->seen[i].seq = r->sibs.v[i].seq;
    }
    c->nseen = r->sibs.n;
    h->by_dot[w][c->seq] = (int)h->n;
    h->n++;
    sim_apply(r, h, c);
}

START_TEST(replicas_converge_for_any_causal_delivery_order)
{
    uint64_t seed = tu_seed(0xc0ffee) * 1000 + (uint64_t)_i;
    g_seed = seed;
    tu_rng_t rng;
    tu_rng_seed(&rng, seed);

    history_t *h = calloc(1, sizeof *h);
    sim_t *w = calloc(NW, sizeof *w), *r = calloc(NREP, sizeof *r);
    ck_assert(h && w && r);
    for (int i = 0; i < NW; i++) /* random ids: actor order is not writer order */
        h->actors[i] = tu_rng_next(&rng) | 1;
    uint64_t clock[NW], last[NW] = {0};
    for (int i = 0; i < NW; i++)
        clock[i] = 1000 + tu_rng_below(&rng, 40); /* skewed, and close enough to tie */

    /* the writers' history, with gossip along the way: mostly the next few changes of
     * another writer (so writes often see recent ones), sometimes any old one (early
     * arrivals and duplicates) */
    while (h->n < MAXCH) {
        int i = (int)tu_rng_below(&rng, NW);
        clock[i] += tu_rng_below(&rng, 3);
        uint64_t x = tu_rng_below(&rng, 100);
        int got[5], ngot = 0;
        if (x < 50) {
            last[i] = last[i] + 1 > clock[i] ? last[i] + 1 : clock[i];
            sim_write(&w[i], h, i, last[i], &rng);
        } else if (x < 90) {
            int o = (int)tu_rng_below(&rng, NW);
            for (uint64_t q = w[i].vv[o] + 1, k = tu_rng_range(&rng, 1, 5);
                 k > 0 && q <= w[o].vv[o]; q++, k--)
                got[ngot++] = h->by_dot[o][q];
        } else if (h->n > 0) {
            got[ngot++] = (int)tu_rng_below(&rng, h->n);
        }
        for (int g = 0; g < ngot; g++) {
            sim_receive(&w[i], h, got[g]);
            if (h->ch[got[g]].hlc > last[i])
                last[i] = h->ch[got[g]].hlc;
        }
    }

    /* every replica gets every change 1-3 times, in its own random order */
    for (int k = 0; k < NREP + NW; k++) {
        sim_t *x = k < NREP ? &r[k] : &w[k - NREP];
        int order[3 * MAXCH];
        size_t n = 0;
        for (size_t c = 0; c < h->n; c++)
            for (uint64_t d = tu_rng_range(&rng, 1, 3); d > 0; d--)
                order[n++] = (int)c;
        for (size_t j = n; j > 1; j--) {
            size_t s = tu_rng_below(&rng, j);
            int t = order[j - 1];
            order[j - 1] = order[s];
            order[s] = t;
        }
        for (size_t j = 0; j < n; j++)
            sim_receive(x, h, order[j]);
        ck_assert_msg(x->npending == 0, "seed %" PRIu64 ": replica %d stuck", seed, k);
    }

    size_t n0;
    uint8_t *b0 = sibs_bytes(&r[0].sibs, &n0);
    for (int k = 0; k < NREP + NW; k++) {
        sim_t *x = k < NREP ? &r[k] : &w[k - NREP];
        size_t n;
        uint8_t *b = sibs_bytes(&x->sibs, &n);
        ck_assert_msg(n == n0 && memcmp(b, b0, n) == 0, "seed %" PRIu64 ": replica %d differs",
                      seed, k);
        free(b);
        for (int i = 0; i < NW; i++)
            ck_assert_uint_eq(x->vv[i], w[i].vv[i]);
    }
    free(b0);
    for (int k = 0; k < NREP; k++)
        rep__sibs_free(&r[k].sibs);
    for (int k = 0; k < NW; k++)
        rep__sibs_free(&w[k].sibs);
    free(r);
    free(w);
    free(h);
}
END_TEST

/* ---- Counters ------------------------------------------------------------------------------ */

/* The stored totals after adding each (actor, delta) in turn to an empty counter (caller frees). */
typedef struct ctr_step {
    uint64_t actor;
    int64_t delta;
} ctr_step_t;

static uint8_t *
ctr_after(const ctr_step_t *steps, size_t n, size_t *len)
{
    uint8_t *p = NULL;
    size_t pn = 0;
    for (size_t i = 0; i < n; i++) {
        rep__buf_t b;
        rep__buf_init(&b);
        CK_OK(rep__ctr_add(p, pn, steps[i].actor, steps[i].delta, &b));
        free(p);
        p = rep__buf_take(&b, &pn);
    }
    *len = pn;
    return p;
}

START_TEST(ctr_add_keeps_one_total_per_actor_in_actor_order)
{
    static const ctr_step_t steps[] = {{50, 5},  {7, 1},  {0xff00000000000000ull, -3},
                                       {50, 10}, {7, -4}, {9, 0}};
    size_t n;
    uint8_t *p = ctr_after(steps, REP_ARRAY_LEN(steps), &n);
    /* count(2), then actor(8) total(8) in actor order: 7 → -3, 9 → 0, 50 → 15, ff.. → -3 */
    ck_assert_uint_eq(n, 2 + 4 * 16);
    ck_assert_uint_eq(p[0], 0);
    ck_assert_uint_eq(p[1], 4);
    static const struct {
        uint64_t actor;
        int64_t total;
    } want[] = {{7, -3}, {9, 0}, {50, 15}, {0xff00000000000000ull, -3}};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(rep__get_be64(p + 2 + 16 * i), want[i].actor);
        ck_assert_int_eq((int64_t)rep__get_be64(p + 2 + 16 * i + 8), want[i].total);
    }
    int64_t sum = 99;
    CK_OK(rep__ctr_sum(p, n, &sum));
    ck_assert_int_eq(sum, 9);
    free(p);
}
END_TEST

START_TEST(ctr_is_the_same_for_any_order_of_the_same_increments)
{
    tu_rng_t rng;
    tu_rng_seed(&rng, tu_seed(0xc7));
    ctr_step_t steps[40];
    for (size_t i = 0; i < 40; i++) {
        steps[i].actor = 1 + tu_rng_below(&rng, 5) * 0x1111111111111111ull;
        steps[i].delta = (int64_t)tu_rng_next(&rng); /* large: sums wrap */
    }
    size_t n0;
    uint8_t *p0 = ctr_after(steps, 40, &n0);
    for (int round = 0; round < 20; round++) {
        for (size_t j = 40; j > 1; j--) {
            size_t s = tu_rng_below(&rng, j);
            ctr_step_t t = steps[j - 1];
            steps[j - 1] = steps[s];
            steps[s] = t;
        }
        size_t n;
        uint8_t *p = ctr_after(steps, 40, &n);
        ck_assert_uint_eq(n, n0);
        ck_assert_mem_eq(p, p0, n);
        free(p);
    }
    free(p0);
}
END_TEST

START_TEST(ctr_totals_and_sum_wrap)
{
    static const ctr_step_t steps[] = {{1, INT64_MAX}, {1, 1}, {2, INT64_MIN}, {2, -1}};
    size_t n;
    uint8_t *p = ctr_after(steps, 4, &n);
    ck_assert_int_eq((int64_t)rep__get_be64(p + 2 + 8), INT64_MIN);  /* actor 1 */
    ck_assert_int_eq((int64_t)rep__get_be64(p + 18 + 8), INT64_MAX); /* actor 2 */
    int64_t sum;
    CK_OK(rep__ctr_sum(p, n, &sum));
    ck_assert_int_eq(sum, -1);
    free(p);
}
END_TEST

START_TEST(ctr_rejects_malformed_totals)
{
    static const ctr_step_t steps[] = {{1, 5}, {2, 6}};
    size_t n;
    uint8_t *p = ctr_after(steps, 2, &n);
    ck_assert_uint_eq(n, 34);
    uint8_t buf[40];
    int64_t sum;
    rep__buf_t b;
    rep__buf_init(&b);
    for (size_t cut = 1; cut < n; cut++) { /* every truncation (0 is "none yet" for add) */
        CK_RC(rep__ctr_sum(p, cut, &sum), REP_ECORRUPT);
        CK_RC(rep__ctr_add(p, cut, 3, 1, &b), REP_ECORRUPT);
    }
    memcpy(buf, p, n); /* a trailing byte */
    buf[n] = 0;
    CK_RC(rep__ctr_sum(buf, n + 1, &sum), REP_ECORRUPT);
    CK_RC(rep__ctr_add(buf, n + 1, 3, 1, &b), REP_ECORRUPT);
    memcpy(buf, p, n); /* a count that disagrees with the length */
    buf[1] = 3;
    CK_RC(rep__ctr_sum(buf, n, &sum), REP_ECORRUPT);
    CK_RC(rep__ctr_add(buf, n, 3, 1, &b), REP_ECORRUPT);
    buf[1] = 1;
    CK_RC(rep__ctr_sum(buf, n, &sum), REP_ECORRUPT);
    buf[0] = 1, buf[1] = 2;
    CK_RC(rep__ctr_sum(buf, n, &sum), REP_ECORRUPT);
    rep__buf_free(&b);
    free(p);
}
END_TEST

START_TEST(ctr_rejects_actors_out_of_order_or_twice)
{
    /* crdt.h: totals are stored "in actor order", one form per state (the digest hashes it) */
    uint8_t p[2 + 32] = {0, 2};
    rep__put_be64(p + 2, 9);
    rep__put_be64(p + 10, 1);
    rep__put_be64(p + 18, 2);
    rep__put_be64(p + 26, 1);
    int64_t sum;
    rep__buf_t b;
    rep__buf_init(&b);
    CK_RC(rep__ctr_sum(p, sizeof p, &sum), REP_ECORRUPT);
    CK_RC(rep__ctr_add(p, sizeof p, 5, 1, &b), REP_ECORRUPT);
    rep__put_be64(p + 18, 9); /* actor 9 twice */
    CK_RC(rep__ctr_sum(p, sizeof p, &sum), REP_ECORRUPT);
    CK_RC(rep__ctr_add(p, sizeof p, 5, 1, &b), REP_ECORRUPT);
    rep__buf_free(&b);
}
END_TEST

/* ---- Sets --------------------------------------------------------------------------------------
 */

/* A stored set being worked on. */
typedef struct set {
    uint8_t *p;
    size_t n;
} set_t;

static void
set_free(set_t *s)
{
    free(s->p);
    s->p = NULL;
    s->n = 0;
}

/* Apply one op to s: elem (value bytes) or NULL for a clear; dot NULL for a remove. */
static int
set_op(set_t *s, const rep__ctx_t *ctx, const uint8_t *elem, size_t elemn, const rep__dot_t *dot)
{
    rep__buf_t b;
    rep__buf_init(&b);
    int rc = rep__set_apply(s->p, s->n, ctx, elem, elemn, dot, &b);
    if (rc == 0) {
        free(s->p);
        s->p = rep__buf_take(&b, &s->n);
    } else {
        rep__buf_free(&b);
    }
    return rc;
}

/* Add small int v by change (actor, seq) that had seen deps. */
static void
set_add_int(set_t *s, unsigned v, uint64_t actor, uint64_t seq, const rep_vv_entry_t *deps,
            size_t ndeps)
{
    rep__ctx_t c = ctx_of(actor, seq, deps, ndeps);
    rep__dot_t d = {actor, seq};
    CK_OK(set_op(s, &c, &small_ints[v], 1, &d));
}

static void
set_remove_int(set_t *s, unsigned v, uint64_t actor, uint64_t seq, const rep_vv_entry_t *deps,
               size_t ndeps)
{
    rep__ctx_t c = ctx_of(actor, seq, deps, ndeps);
    CK_OK(set_op(s, &c, &small_ints[v], 1, NULL));
}

/* What rep__set_each reports. */
typedef struct seen_elems {
    size_t n;
    uint8_t val[64][8];
    size_t valn[64];
    rep__dot_t last[64];
    size_t stop_after; /* 0: never stop */
} seen_elems_t;

static int
collect(void *ctx, const uint8_t *val, size_t valn, const rep__dot_t *last)
{
    seen_elems_t *s = ctx;
    ck_assert_uint_lt(s->n, 64);
    ck_assert_uint_le(valn, 8);
    memcpy(s->val[s->n], val, valn);
    s->valn[s->n] = valn;
    s->last[s->n] = *last;
    s->n++;
    return s->stop_after && s->n == s->stop_after ? 42 : 0;
}

/* The small-int members of s, in order, into out; returns their count. */
static size_t
set_members(const set_t *s, int *out, rep__dot_t *last)
{
    if (s->n == 0)
        return 0;
    seen_elems_t seen;
    memset(&seen, 0, sizeof seen);
    CK_OK(rep__set_each(s->p, s->n, collect, &seen));
    for (size_t i = 0; i < seen.n; i++) {
        ck_assert_uint_eq(seen.valn[i], 1);
        out[i] = seen.val[i][0];
        if (last)
            last[i] = seen.last[i];
    }
    return seen.n;
}

START_TEST(set_add_stores_the_documented_layout)
{
    set_t s = {0};
    set_add_int(&s, 5, 0x0102030405060708ull, 3, NULL, 0);
    /* count(4) vallen(4) value ndots(2) actor(8) seq(8) */
    static const uint8_t want[] = {0, 0, 0, 1, 0, 0, 0, 1, 5, 0, 1, 1, 2, 3,
                                   4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 3};
    ck_assert_uint_eq(s.n, sizeof want);
    ck_assert_mem_eq(s.p, want, sizeof want);
    int m[4];
    rep__dot_t last[4];
    ck_assert_uint_eq(set_members(&s, m, last), 1);
    ck_assert_int_eq(m[0], 5);
    ck_assert_uint_eq(last[0].actor, 0x0102030405060708ull);
    ck_assert_uint_eq(last[0].seq, 3);
    set_free(&s);
}
END_TEST

START_TEST(set_remove_drops_only_the_adds_its_context_covers)
{
    set_t s = {0};
    set_add_int(&s, 5, 1, 1, NULL, 0); /* A:1 adds 5 */
    set_add_int(&s, 7, 2, 1, NULL, 0); /* B:1 adds 7 */
    /* C:1 removes 5 without having seen A:1: concurrent, the add wins */
    set_remove_int(&s, 5, 3, 1, NULL, 0);
    int m[4];
    ck_assert_uint_eq(set_members(&s, m, NULL), 2);
    /* C:2 removes 5 after seeing A:1 */
    static const rep_vv_entry_t saw_a1[] = {{1, 1}};
    set_remove_int(&s, 5, 3, 2, saw_a1, 1);
    ck_assert_uint_eq(set_members(&s, m, NULL), 1);
    ck_assert_int_eq(m[0], 7);
    /* removing something absent changes nothing */
    uint8_t *before = malloc(s.n);
    memcpy(before, s.p, s.n);
    size_t beforen = s.n;
    set_remove_int(&s, 9, 3, 3, saw_a1, 1);
    ck_assert_uint_eq(s.n, beforen);
    ck_assert_mem_eq(s.p, before, beforen);
    free(before);
    /* and removing the last member leaves an empty set: no bytes at all */
    static const rep_vv_entry_t saw_a1_b1[] = {{1, 1}, {2, 1}};
    set_remove_int(&s, 7, 3, 4, saw_a1_b1, 2);
    ck_assert_uint_eq(s.n, 0);
    set_free(&s);
}
END_TEST

START_TEST(set_clear_drops_every_covered_dot_of_every_element)
{
    set_t s = {0};
    set_add_int(&s, 5, 1, 1, NULL, 0); /* A:1 */
    set_add_int(&s, 7, 2, 1, NULL, 0); /* B:1 */
    set_add_int(&s, 9, 1, 2, NULL, 0); /* A:2 */
    set_add_int(&s, 7, 1, 3, NULL, 0); /* A:3 re-adds 7 (own earlier dots: none for 7) */
    /* a record delete by C that had seen A:2 and B:1, not A:3 */
    static const rep_vv_entry_t deps[] = {{1, 2}, {2, 1}};
    rep__ctx_t c = ctx_of(3, 1, deps, 2);
    CK_OK(set_op(&s, &c, NULL, 0, NULL));
    int m[4];
    rep__dot_t last[4];
    ck_assert_uint_eq(set_members(&s, m, last), 1);
    ck_assert_int_eq(m[0], 7);
    ck_assert_uint_eq(last[0].actor, 1);
    ck_assert_uint_eq(last[0].seq, 3);
    /* a clear covering everything leaves nothing */
    static const rep_vv_entry_t all[] = {{1, 3}, {2, 1}};
    c = ctx_of(3, 2, all, 2);
    CK_OK(set_op(&s, &c, NULL, 0, NULL));
    ck_assert_uint_eq(s.n, 0);
    /* and a clear of an empty set stays empty */
    CK_OK(set_op(&s, &c, NULL, 0, NULL));
    ck_assert_uint_eq(s.n, 0);
    set_free(&s);
}
END_TEST

START_TEST(set_readd_supersedes_covered_dots_and_keeps_concurrent_ones)
{
    set_t s = {0};
    set_add_int(&s, 5, 1, 1, NULL, 0); /* A:1 */
    set_add_int(&s, 5, 2, 1, NULL, 0); /* B:1, concurrently */
    /* C:1 re-adds 5 having seen A:1 only: A:1's dot goes, B:1's stays, C:1's is added */
    static const rep_vv_entry_t saw_a1[] = {{1, 1}};
    set_add_int(&s, 5, 3, 1, saw_a1, 1);
    /* one element with two dots, in dot order: B:1, C:1 */
    ck_assert_uint_eq(s.n, 4 + 4 + 1 + 2 + 2 * 16);
    ck_assert_uint_eq(rep__get_be32(s.p), 1);
    ck_assert_uint_eq(s.p[9] << 8 | s.p[10], 2);
    ck_assert_uint_eq(rep__get_be64(s.p + 11), 2);
    ck_assert_uint_eq(rep__get_be64(s.p + 19), 1);
    ck_assert_uint_eq(rep__get_be64(s.p + 27), 3);
    ck_assert_uint_eq(rep__get_be64(s.p + 35), 1);
    /* the same add applied again changes nothing */
    uint8_t *before = malloc(s.n);
    size_t beforen = s.n;
    memcpy(before, s.p, s.n);
    set_add_int(&s, 5, 3, 1, saw_a1, 1);
    ck_assert_uint_eq(s.n, beforen);
    ck_assert_mem_eq(s.p, before, beforen);
    free(before);
    /* the latest dot reported is the highest (actor, seq) */
    int m[2];
    rep__dot_t last[2];
    ck_assert_uint_eq(set_members(&s, m, last), 1);
    ck_assert_uint_eq(last[0].actor, 3);
    set_free(&s);
}
END_TEST

/* Canonical msgpack of a short string (fixstr). */
static size_t
fixstr(uint8_t *out, const char *s)
{
    size_t n = strlen(s);
    out[0] = (uint8_t)(0xa0 | n);
    memcpy(out + 1, s, n);
    return n + 1;
}

START_TEST(set_elements_are_kept_in_canonical_order)
{
    static const char *const words[] = {"b", "ab", "a", "abc", "", "ba", "c"};
    const size_t nw = REP_ARRAY_LEN(words);
    tu_rng_t rng;
    tu_rng_seed(&rng, tu_seed(0x5e7));
    uint8_t *first = NULL;
    size_t firstn = 0;
    for (int round = 0; round < 10; round++) {
        size_t order[REP_ARRAY_LEN(words)];
        for (size_t i = 0; i < nw; i++)
            order[i] = i;
        for (size_t j = nw; j > 1; j--) {
            size_t s = tu_rng_below(&rng, j), t = order[j - 1];
            order[j - 1] = order[s];
            order[s] = t;
        }
        set_t s = {0};
        for (size_t i = 0; i < nw; i++) {
            uint8_t v[8];
            size_t vn = fixstr(v, words[order[i]]);
            rep__ctx_t c = ctx_of(1, i + 1, NULL, 0);
            rep__dot_t d = {1, i + 1};
            CK_OK(set_op(&s, &c, v, vn, &d));
        }
        /* elements by their bytes (then length): the same bytes whatever the order of adds,
         * except for the dots, so compare the element sequence */
        seen_elems_t seen;
        memset(&seen, 0, sizeof seen);
        CK_OK(rep__set_each(s.p, s.n, collect, &seen));
        ck_assert_uint_eq(seen.n, nw);
        for (size_t i = 1; i < seen.n; i++) {
            size_t an = seen.valn[i - 1], bn = seen.valn[i];
            int c = memcmp(seen.val[i - 1], seen.val[i], an < bn ? an : bn);
            ck_assert_msg(c < 0 || (c == 0 && an < bn), "elements %zu and %zu out of order", i - 1,
                          i);
        }
        if (!first) {
            first = malloc(seen.n * 8);
            for (size_t i = 0; i < seen.n; i++)
                memcpy(first + 8 * i, seen.val[i], 8);
            firstn = seen.n;
        } else {
            for (size_t i = 0; i < firstn; i++)
                ck_assert_mem_eq(first + 8 * i, seen.val[i], seen.valn[i]);
        }
        set_free(&s);
    }
    free(first);
}
END_TEST

START_TEST(set_each_stops_when_the_callback_says_so)
{
    set_t s = {0};
    for (unsigned v = 1; v <= 5; v++)
        set_add_int(&s, v, 1, v, NULL, 0);
    seen_elems_t seen;
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 2;
    CK_RC(rep__set_each(s.p, s.n, collect, &seen), 42);
    ck_assert_uint_eq(seen.n, 2);
    set_free(&s);
}
END_TEST

/* A valid stored set of two elements (5: A:1, B:2; 7: A:2), for damaging. */
static set_t
two_elements(void)
{
    set_t s = {0};
    set_add_int(&s, 5, 1, 1, NULL, 0);
    set_add_int(&s, 5, 2, 2, NULL, 0);
    set_add_int(&s, 7, 1, 2, NULL, 0);
    ck_assert_uint_eq(s.n, 4 + (4 + 1 + 2 + 32) + (4 + 1 + 2 + 16));
    return s;
}

static int
count_only(void *ctx, const uint8_t *val, size_t valn, const rep__dot_t *last)
{
    (void)val, (void)valn, (void)last;
    (*(size_t *)ctx)++;
    return 0;
}

/* Both readers must refuse p[0, n). */
static void
expect_corrupt_set(const char *what, const uint8_t *p, size_t n)
{
    size_t calls = 0;
    int rc = rep__set_each(p, n, count_only, &calls);
    ck_assert_msg(rc == REP_ECORRUPT, "%s: rep__set_each gave %d", what, rc);
    rep__buf_t b;
    rep__buf_init(&b);
    rep__ctx_t c = ctx_of(9, 1, NULL, 0);
    rep__dot_t d = {9, 1};
    rc = rep__set_apply(p, n, &c, &small_ints[6], 1, &d, &b);
    ck_assert_msg(rc == REP_ECORRUPT, "%s: rep__set_apply (add) gave %d", what, rc);
    rc = rep__set_apply(p, n, &c, NULL, 0, NULL, &b);
    ck_assert_msg(rc == REP_ECORRUPT, "%s: rep__set_apply (clear) gave %d", what, rc);
    rep__buf_free(&b);
}

START_TEST(set_rejects_malformed_bytes)
{
    set_t s = two_elements();
    uint8_t buf[128];
    char what[64];
    for (size_t cut = 1; cut < s.n; cut++) {
        snprintf(what, sizeof what, "cut to %zu bytes", cut);
        expect_corrupt_set(what, s.p, cut);
    }
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    expect_corrupt_set("a trailing byte", buf, s.n + 1);

    memcpy(buf, s.p, s.n);
    rep__put_be32(buf, 3);
    expect_corrupt_set("a count past the elements", buf, s.n);
    rep__put_be32(buf, 0xffffffffu);
    expect_corrupt_set("a huge count", buf, s.n);
    rep__put_be32(buf, 1);
    expect_corrupt_set("a count short of the elements", buf, s.n);

    memcpy(buf, s.p, s.n);
    rep__put_be32(buf + 4, 0xfffffff0u);
    expect_corrupt_set("a value length past the end", buf, s.n);

    memcpy(buf, s.p, s.n);
    buf[9] = 0xff; /* ndots of the first element */
    expect_corrupt_set("dots past the end", buf, s.n);

    /* an element without dots is never stored: a set keeps only present elements */
    uint8_t nodots[4 + 4 + 1 + 2] = {0, 0, 0, 1, 0, 0, 0, 1, 5, 0, 0};
    expect_corrupt_set("an element without dots", nodots, sizeof nodots);
    set_free(&s);
}
END_TEST

START_TEST(set_rejects_elements_or_dots_out_of_order)
{
    /* crdt.h: elements "in value order", dots "in order": one stored form per state */
    set_t s = two_elements();
    uint8_t buf[128];
    /* swap the two elements: 7 before 5 */
    size_t e1 = 4 + 1 + 2 + 32, e2 = s.n - 4 - e1; /* the two elements' sizes */
    memcpy(buf, s.p, 4);
    memcpy(buf + 4, s.p + 4 + e1, e2);
    memcpy(buf + 4 + e2, s.p + 4, e1);
    expect_corrupt_set("elements out of order", buf, s.n);
    /* the same element twice */
    memcpy(buf, s.p, s.n);
    buf[4 + e1 + 4] = 5;
    expect_corrupt_set("an element twice", buf, s.n);
    /* the dots of 5 (A:1, B:2) swapped */
    memcpy(buf, s.p, s.n);
    memcpy(buf + 11, s.p + 27, 16);
    memcpy(buf + 27, s.p + 11, 16);
    expect_corrupt_set("dots out of order", buf, s.n);
    /* one dot twice */
    memcpy(buf, s.p, s.n);
    memcpy(buf + 27, s.p + 11, 16);
    expect_corrupt_set("a dot twice", buf, s.n);
    set_free(&s);
}
END_TEST

/* ---- Property: sets under random causal histories ----------------------------------------------
 */

/*
 * Three writers add and remove small ints (and now and then clear the set, as a record delete
 * does), each change with its writer's version vector as context, gossiping as they go. Then
 * fresh replicas receive every change 1-3 times in random orders, held back until deliverable.
 * Every replica must end with the same bytes, and those bytes must be the reference: an
 * element holds exactly the dots of its adds that no later op on it (add, remove, or clear)
 * had seen, in dot order, and is present iff it holds one (add wins).
 */
#define SW      3  /* writers */
#define SREP    3  /* extra replicas */
#define SMAXCH  90 /* changes */
#define SELEMS  6  /* element values 0..5 */
#define SMAXOPS 3

typedef struct sop {
    int kind; /* 0 add, 1 remove, 2 clear */
    unsigned elem;
} sop_t;

typedef struct schg {
    int w;
    uint64_t actor, seq;
    rep_vv_entry_t deps[SW];
    size_t ndeps;
    sop_t ops[SMAXOPS];
    size_t nops;
} schg_t;

typedef struct shist {
    uint64_t actors[SW];
    schg_t ch[SMAXCH];
    size_t n;
    int by_dot[SW][SMAXCH + 1];
} shist_t;

typedef struct ssim {
    set_t set;
    uint64_t vv[SW];
    int pending[4 * SMAXCH];
    size_t npending;
} ssim_t;

static uint64_t g_set_seed;

static bool
schg_covers(const schg_t *c, uint64_t actor, uint64_t seq)
{
    rep__ctx_t x = ctx_of(c->actor, c->seq, c->deps, c->ndeps);
    return rep__ctx_covers(&x, actor, seq);
}

static void
ssim_apply(ssim_t *r, const shist_t *h, const schg_t *c)
{
    (void)h;
    rep__ctx_t ctx = ctx_of(c->actor, c->seq, c->deps, c->ndeps);
    rep__dot_t dot = {c->actor, c->seq};
    for (size_t i = 0; i < c->nops; i++) {
        const sop_t *op = &c->ops[i];
        int rc = op->kind == 2
                     ? set_op(&r->set, &ctx, NULL, 0, NULL)
                     : set_op(&r->set, &ctx, &small_ints[op->elem], 1, op->kind == 0 ? &dot : NULL);
        REQUIRE(rc == 0, "seed %" PRIu64 ": rep__set_apply: %d", g_set_seed, rc);
    }
    r->vv[c->w] = c->seq;
}

static bool
sdeliverable(const ssim_t *r, const shist_t *h, const schg_t *c)
{
    if (r->vv[c->w] + 1 != c->seq)
        return false;
    for (size_t d = 0; d < c->ndeps; d++)
        for (int w = 0; w < SW; w++)
            if (h->actors[w] == c->deps[d].actor && r->vv[w] < c->deps[d].seq)
                return false;
    return true;
}

static void
ssim_receive(ssim_t *r, const shist_t *h, int i)
{
    REQUIRE(r->npending < REP_ARRAY_LEN(r->pending), "pending overflow");
    r->pending[r->npending++] = i;
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t p = 0; p < r->npending; p++) {
            const schg_t *c = &h->ch[r->pending[p]];
            bool dup = r->vv[c->w] >= c->seq;
            if (!dup && !sdeliverable(r, h, c))
                continue;
            if (!dup)
                ssim_apply(r, h, c);
            r->pending[p] = r->pending[--r->npending];
            progress = true;
            break;
        }
    }
}

static void
ssim_write(ssim_t *r, shist_t *h, int w, tu_rng_t *rng)
{
    REQUIRE(h->n < SMAXCH, "history overflow");
    schg_t *c = &h->ch[h->n];
    memset(c, 0, sizeof *c);
    c->w = w;
    c->actor = h->actors[w];
    c->seq = r->vv[w] + 1;
    for (int o = 0; o < SW; o++)
        if (o != w && r->vv[o] > 0) {
            c->deps[c->ndeps].actor = h->actors[o];
            c->deps[c->ndeps].seq = r->vv[o];
            c->ndeps++;
        }
    qsort(c->deps, c->ndeps, sizeof c->deps[0], dep_cmp);
    /* ops on distinct elements (a transaction keeps one op per member) */
    c->nops = (size_t)tu_rng_range(rng, 1, SMAXOPS);
    bool used[SELEMS] = {false};
    for (size_t i = 0; i < c->nops; i++) {
        uint64_t x = tu_rng_below(rng, 100);
        c->ops[i].kind = x < 60 ? 0 : x < 95 ? 1 : 2;
        if (c->ops[i].kind == 2) { /* a clear comes first and alone (a record delete) */
            c->ops[0] = c->ops[i];
            c->nops = 1;
            break;
        }
        unsigned e;
        do
            e = (unsigned)tu_rng_below(rng, SELEMS);
        while (used[e]);
        used[e] = true;
        c->ops[i].elem = e;
    }
    h->by_dot[w][c->seq] = (int)h->n;
    h->n++;
    ssim_apply(r, h, c);
}

/* The reference bytes of the whole history's set (caller frees; NULL and 0 when empty). */
static uint8_t *
sref_bytes(const shist_t *h, size_t *n, bool present[SELEMS])
{
    rep__buf_t b;
    rep__buf_init(&b);
    uint32_t count = 0;
    rep__buf_add(&b, "\0\0\0\0", 4);
    for (unsigned e = 0; e < SELEMS; e++) { /* small ints: byte order is value order */
        rep__dot_t dots[SMAXCH];
        size_t nd = 0;
        for (size_t i = 0; i < h->n; i++) {
            const schg_t *a = &h->ch[i];
            bool adds = false;
            for (size_t k = 0; k < a->nops; k++)
                adds |= a->ops[k].kind == 0 && a->ops[k].elem == e;
            if (!adds)
                continue;
            bool gone = false;
            for (size_t j = 0; j < h->n && !gone; j++) {
                const schg_t *x = &h->ch[j];
                bool touches = false;
                for (size_t k = 0; k < x->nops; k++)
                    touches |= x->ops[k].kind == 2 || x->ops[k].elem == e;
                gone = touches && schg_covers(x, a->actor, a->seq);
            }
            if (!gone)
                dots[nd++] = (rep__dot_t){a->actor, a->seq};
        }
        present[e] = nd > 0;
        if (!nd)
            continue;
        for (size_t i = 1; i < nd; i++) /* dot order */
            for (size_t j = i;
                 j > 0 && (dots[j - 1].actor > dots[j].actor ||
                           (dots[j - 1].actor == dots[j].actor && dots[j - 1].seq > dots[j].seq));
                 j--) {
                rep__dot_t t = dots[j];
                dots[j] = dots[j - 1];
                dots[j - 1] = t;
            }
        uint8_t hdr[16];
        rep__put_be32(hdr, 1);
        rep__buf_add(&b, hdr, 4);
        rep__buf_add(&b, &small_ints[e], 1);
        hdr[0] = (uint8_t)(nd >> 8);
        hdr[1] = (uint8_t)nd;
        rep__buf_add(&b, hdr, 2);
        for (size_t i = 0; i < nd; i++) {
            rep__put_be64(hdr, dots[i].actor);
            rep__put_be64(hdr + 8, dots[i].seq);
            rep__buf_add(&b, hdr, 16);
        }
        count++;
    }
    ck_assert_int_eq(b.err, 0);
    if (count == 0) {
        rep__buf_free(&b);
        *n = 0;
        return NULL;
    }
    rep__put_be32(b.p, count);
    return rep__buf_take(&b, n);
}

START_TEST(sets_converge_to_add_wins_for_any_causal_delivery_order)
{
    uint64_t seed = tu_seed(0x5e75) * 1000 + (uint64_t)_i;
    g_set_seed = seed;
    tu_rng_t rng;
    tu_rng_seed(&rng, seed);
    shist_t *h = calloc(1, sizeof *h);
    ssim_t *w = calloc(SW, sizeof *w), *r = calloc(SREP, sizeof *r);
    ck_assert(h && w && r);
    for (int i = 0; i < SW; i++)
        h->actors[i] = tu_rng_next(&rng) | 1;

    while (h->n < SMAXCH) {
        int i = (int)tu_rng_below(&rng, SW);
        uint64_t x = tu_rng_below(&rng, 100);
        int got[5], ngot = 0;
        if (x < 50) {
            ssim_write(&w[i], h, i, &rng);
        } else if (x < 90) {
            int o = (int)tu_rng_below(&rng, SW);
            for (uint64_t q = w[i].vv[o] + 1, k = tu_rng_range(&rng, 1, 5);
                 k > 0 && q <= w[o].vv[o]; q++, k--)
                got[ngot++] = h->by_dot[o][q];
        } else if (h->n > 0) {
            got[ngot++] = (int)tu_rng_below(&rng, h->n);
        }
        for (int g = 0; g < ngot; g++)
            ssim_receive(&w[i], h, got[g]);
    }

    for (int k = 0; k < SREP + SW; k++) {
        ssim_t *x = k < SREP ? &r[k] : &w[k - SREP];
        int order[3 * SMAXCH];
        size_t n = 0;
        for (size_t c = 0; c < h->n; c++)
            for (uint64_t d = tu_rng_range(&rng, 1, 3); d > 0; d--)
                order[n++] = (int)c;
        for (size_t j = n; j > 1; j--) {
            size_t s = tu_rng_below(&rng, j);
            int t = order[j - 1];
            order[j - 1] = order[s];
            order[s] = t;
        }
        for (size_t j = 0; j < n; j++)
            ssim_receive(x, h, order[j]);
        ck_assert_msg(x->npending == 0, "seed %" PRIu64 ": replica %d stuck", seed, k);
    }

    bool present[SELEMS];
    size_t refn;
    uint8_t *ref = sref_bytes(h, &refn, present);
    for (int k = 0; k < SREP + SW; k++) {
        ssim_t *x = k < SREP ? &r[k] : &w[k - SREP];
        ck_assert_msg(x->set.n == refn && (refn == 0 || memcmp(x->set.p, ref, refn) == 0),
                      "seed %" PRIu64 ": replica %d's set (%zu bytes) is not the reference "
                      "(%zu bytes)",
                      seed, k, x->set.n, refn);
        int m[SELEMS];
        size_t nm = set_members(&x->set, m, NULL);
        size_t want = 0;
        for (unsigned e = 0; e < SELEMS; e++)
            want += present[e];
        ck_assert_uint_eq(nm, want);
        for (size_t i = 0; i < nm; i++)
            ck_assert(present[m[i]]);
    }
    free(ref);
    for (int k = 0; k < SREP; k++)
        set_free(&r[k].set);
    for (int k = 0; k < SW; k++)
        set_free(&w[k].set);
    free(r);
    free(w);
    free(h);
}
END_TEST

static Suite *
crdt_suite(void)
{
    Suite *s = suite_create("crdt");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, key_split_separates_collection_and_record);
    tcase_add_test(tc, key_split_allows_slashes_inside_the_record_id);
    tcase_add_test(tc, key_split_rejects_a_key_without_both_parts);
    tcase_add_test(tc, key_split_limits_the_lengths);
    tcase_add_test(tc, key_split_rejects_invalid_utf8);
    tcase_add_test(tc, name_check_applies_the_field_rules);
    tcase_add_test(tc, state_key_round_trips_through_parse);
    tcase_add_test(tc, state_key_of_maximum_size_fits);
    tcase_add_test(tc, state_key_parse_rejects_what_is_not_a_state_key);
    tcase_add_test(tc, state_keys_of_a_record_are_contiguous_and_existence_comes_first);
    suite_add_tcase(s, tc);

    tc = tcase_create("siblings");
    tcase_add_test(tc, sibling_list_round_trips_in_its_documented_layout);
    tcase_add_test(tc, empty_sibling_list_round_trips);
    tcase_add_test(tc, sibling_list_decode_rejects_every_truncation_and_trailing_bytes);
    tcase_add_test(tc, sibling_list_decode_rejects_lengths_past_the_end);
    tcase_add_test(tc, sibling_list_decode_rejects_a_huge_count_as_corrupt);
    tcase_add_test(tc, sibling_list_decode_survives_random_garbage);
    suite_add_tcase(s, tc);

    tc = tcase_create("register");
    tcase_add_test(tc, ctx_covers_own_earlier_changes_and_the_deps);
    tcase_add_test(tc, a_write_that_saw_the_previous_value_supersedes_it);
    tcase_add_test(tc, concurrent_writes_both_stay_and_the_winner_is_independent_of_order);
    tcase_add_test(tc, a_delete_concurrent_with_an_update_loses_to_it);
    tcase_add_test(tc, a_clear_removes_only_the_covered_siblings);
    tcase_add_test(tc, applying_the_same_write_twice_is_idempotent);
    tcase_add_test(tc, siblings_are_kept_in_dot_order);
    tcase_add_test(tc, winner_is_none_when_every_sibling_is_deleted);
    tcase_add_test(tc, siblings_past_the_limit_are_too_big);
    suite_add_tcase(s, tc);

    tc = tcase_create("counter");
    tcase_add_test(tc, ctr_add_keeps_one_total_per_actor_in_actor_order);
    tcase_add_test(tc, ctr_is_the_same_for_any_order_of_the_same_increments);
    tcase_add_test(tc, ctr_totals_and_sum_wrap);
    tcase_add_test(tc, ctr_rejects_malformed_totals);
    tcase_add_test(tc, ctr_rejects_actors_out_of_order_or_twice);
    suite_add_tcase(s, tc);

    tc = tcase_create("set");
    tcase_add_test(tc, set_add_stores_the_documented_layout);
    tcase_add_test(tc, set_remove_drops_only_the_adds_its_context_covers);
    tcase_add_test(tc, set_clear_drops_every_covered_dot_of_every_element);
    tcase_add_test(tc, set_readd_supersedes_covered_dots_and_keeps_concurrent_ones);
    tcase_add_test(tc, set_elements_are_kept_in_canonical_order);
    tcase_add_test(tc, set_each_stops_when_the_callback_says_so);
    tcase_add_test(tc, set_rejects_malformed_bytes);
    tcase_add_test(tc, set_rejects_elements_or_dots_out_of_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("property");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, replicas_converge_for_any_causal_delivery_order, 0, 200);
    tcase_add_loop_test(tc, sets_converge_to_add_wins_for_any_causal_delivery_order, 0, 100);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    small_ints_init();
    SRunner *sr = srunner_create(crdt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
