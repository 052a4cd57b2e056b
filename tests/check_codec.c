/*
 * check_codec.c — the codec module: growable buffers, canonical values, the bounded reader.
 *
 * Values are stored, hashed and compared as bytes, so each value must have exactly one
 * encoding: the one msgpack-c's own packer produces (shortest integer and str/bin headers,
 * doubles as float64, one NaN). These tests encode every type at every msgpack width boundary,
 * compare the bytes with msgpack_pack_*, decode them back, and check that the decoder rejects
 * every other form, every truncation, and every declared length that runs past the end.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "codec.h"
#include "common.h"
#include "replica.h"
#include "checkutil.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

/* A value of type t holding n bytes of content (ASCII for strings), malloc'd into *mem. */
static rep_value_t
blob_value(rep_type_t t, size_t n, char **mem)
{
    char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = t == REP_STRING ? (char)('a' + i % 26) : (char)(i * 7 + 3);
    *mem = p;
    rep_value_t v = {.type = t};
    v.u.s.ptr = p;
    v.u.s.len = n;
    return v;
}

/* What msgpack-c's own packer writes for v: the reference for canonical bytes. */
static void
msgpack_reference(const rep_value_t *v, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    switch (v->type) {
    case REP_NULL:
        msgpack_pack_nil(&pk);
        break;
    case REP_BOOL:
        if (v->u.b)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
        break;
    case REP_INT:
        msgpack_pack_int64(&pk, v->u.i);
        break;
    case REP_DOUBLE:
        msgpack_pack_double(&pk, v->u.d);
        break;
    case REP_STRING:
        msgpack_pack_str(&pk, v->u.s.len);
        msgpack_pack_str_body(&pk, v->u.s.ptr, v->u.s.len);
        break;
    case REP_BYTES:
        msgpack_pack_bin(&pk, v->u.s.len);
        msgpack_pack_bin_body(&pk, v->u.s.ptr, v->u.s.len);
        break;
    }
}

/*
 * The round trip every value must make: encode to the same bytes as msgpack-c, with the
 * expected first byte and length; decode back to an equal value that consumed everything;
 * and every proper prefix of the encoding is rejected without being consumed.
 */
static void
check_round_trip(const rep_value_t *v, uint8_t want_tag, size_t want_len)
{
    char fmt[64];
    rep__buf_t b;
    rep__buf_init(&b);
    CK_OK(rep__value_encode(&b, v));
    tu_value_fmt(v, fmt, sizeof fmt);

    ck_assert_msg(b.len == want_len, "%s: %zu bytes, want %zu", fmt, b.len, want_len);
    ck_assert_msg(b.p[0] == want_tag, "%s: tag 0x%02x, want 0x%02x", fmt, b.p[0], want_tag);

    msgpack_sbuffer ref;
    msgpack_reference(v, &ref);
    ck_assert_msg(ref.size == b.len && memcmp(ref.data, b.p, b.len) == 0,
                  "%s: not msgpack-c's encoding", fmt);
    msgpack_sbuffer_destroy(&ref);

    rep_value_t back;
    CK_OK(rep__value_decode(b.p, b.len, &back));
    ck_assert_msg(tu_value_eq(v, &back), "%s: decoded to another value", fmt);
    if (v->type == REP_STRING || v->type == REP_BYTES) /* borrows from the input */
        ck_assert_ptr_eq(back.u.s.ptr, b.p + (b.len - v->u.s.len));

    /* (checked with plain ifs: a passing ck_assert costs a write to Check's pipe) */
    for (size_t k = 0; k < b.len; k++) {
        int rc = rep__value_decode(b.p, k, &back);
        if (rc != REP_ECORRUPT)
            ck_abort_msg("%s: prefix of %zu/%zu bytes gave %d", fmt, k, b.len, rc);
        rep__rd_t r;
        const uint8_t *vp;
        size_t vn;
        rep__rd_init(&r, b.p, k);
        rc = rep__rd_value(&r, &vp, &vn);
        if (rc != REP_ECORRUPT || r.p != b.p) /* rejected, nothing consumed */
            ck_abort_msg("%s: rep__rd_value on a prefix of %zu bytes gave %d", fmt, k, rc);
    }
    rep__buf_free(&b);
}

/* Decoding these exact bytes must fail with REP_ECORRUPT. */
static void
check_rejected(const char *what, const uint8_t *p, size_t n)
{
    rep_value_t v;
    int rc = rep__value_decode(p, n, &v);
    ck_assert_msg(rc == REP_ECORRUPT, "%s: decode gave %d, want REP_ECORRUPT", what, rc);
    rep__rd_t r;
    const uint8_t *vp;
    size_t vn;
    rep__rd_init(&r, p, n);
    rc = rep__rd_value(&r, &vp, &vn);
    /* trailing bytes are the whole-buffer decoder's business: rd_value reads one value */
    if (rc == 0)
        ck_assert_msg(vn < n, "%s: rep__rd_value accepted it", what);
    else
        ck_assert_msg(rc == REP_ECORRUPT && r.p == p, "%s: rep__rd_value gave %d", what, rc);
}

#define REJECT(what, ...)                                                                          \
    do {                                                                                           \
        static const uint8_t bytes_[] = {__VA_ARGS__};                                             \
        check_rejected(what, bytes_, sizeof bytes_);                                               \
    } while (0)

/* ---- rep__buf ----------------------------------------------------------------------------- */

START_TEST(buf_starts_empty_and_grows_by_doubling)
{
    rep__buf_t b;
    rep__buf_init(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);

    CK_OK(rep__buf_reserve(&b, 1));
    ck_assert_uint_eq(b.cap, 256); /* first allocation */

    uint8_t chunk[100];
    for (int i = 0; i < 30; i++) { /* 3000 bytes: grows 256 → 512 → 1024 → 2048 → 4096 */
        memset(chunk, i, sizeof chunk);
        rep__buf_add(&b, chunk, sizeof chunk);
    }
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.len, 3000);
    ck_assert_uint_eq(b.cap, 4096);
    for (size_t i = 0; i < b.len; i++)
        ck_assert_uint_eq(b.p[i], i / 100); /* content survives every realloc */

    size_t cap = b.cap;
    CK_OK(rep__buf_reserve(&b, cap - b.len)); /* fits: no growth */
    ck_assert_uint_eq(b.cap, cap);
    rep__buf_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(buf_add_of_nothing_allocates_nothing)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep__buf_add(&b, NULL, 0);
    ck_assert_ptr_null(b.p);
    ck_assert_int_eq(b.err, 0);

    size_t n = 99;
    uint8_t *p = rep__buf_take(&b, &n); /* empty: NULL and 0 */
    ck_assert_ptr_null(p);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(buf_take_hands_over_the_bytes_and_resets)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep__buf_add(&b, "hello", 5);
    size_t n;
    uint8_t *p = rep__buf_take(&b, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(p, "hello", 5);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    free(p);

    rep__buf_add(&b, "x", 1); /* usable again after take */
    ck_assert_uint_eq(b.len, 1);
    rep__buf_free(&b);
}
END_TEST

START_TEST(buf_errors_are_sticky)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep__buf_add(&b, "ab", 2);
    CK_RC(rep__buf_reserve(&b, SIZE_MAX - 1), -ENOMEM); /* cannot double that far */
    ck_assert_int_eq(b.err, -ENOMEM);

    rep__buf_add(&b, "cd", 2); /* ignored after the failure */
    ck_assert_uint_eq(b.len, 2);
    CK_RC(rep__buf_reserve(&b, 1), -ENOMEM);
    ck_assert_mem_eq(b.p, "ab", 2); /* what was there is intact */

    msgpack_packer pk; /* the packer sees the error too */
    rep__packer_init(&pk, &b);
    ck_assert_int_ne(msgpack_pack_int64(&pk, 1), 0);
    rep__buf_free(&b);
}
END_TEST

START_TEST(packer_writes_into_the_buffer)
{
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "hi", 2);
    static const uint8_t want[] = {0x92, 0x01, 0xa2, 'h', 'i'};
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.p, want, sizeof want);
    rep__buf_free(&b);
}
END_TEST

/* ---- Canonical values: round trips ------------------------------------------------------- */

START_TEST(null_and_bools_round_trip)
{
    rep_value_t nul = {.type = REP_NULL}, f = {.type = REP_BOOL}, t = {.type = REP_BOOL};
    t.u.b = 1;
    check_round_trip(&nul, 0xc0, 1);
    check_round_trip(&f, 0xc2, 1);
    check_round_trip(&t, 0xc3, 1);
}
END_TEST

/* Every integer width boundary of msgpack, with the tag and length msgpack-c picks. */
static const struct {
    int64_t i;
    uint8_t tag;
    size_t len;
} int_cases[] = {
    {0, 0x00, 1},
    {127, 0x7f, 1},
    {128, 0xcc, 2},
    {255, 0xcc, 2},
    {256, 0xcd, 3},
    {65535, 0xcd, 3},
    {65536, 0xce, 5},
    {INT64_C(4294967295), 0xce, 5},
    {INT64_C(4294967296), 0xcf, 9},
    {INT64_MAX, 0xcf, 9},
    {-1, 0xff, 1},
    {-32, 0xe0, 1},
    {-33, 0xd0, 2},
    {-128, 0xd0, 2},
    {-129, 0xd1, 3},
    {-32768, 0xd1, 3},
    {-32769, 0xd2, 5},
    {INT32_MIN, 0xd2, 5},
    {(int64_t)INT32_MIN - 1, 0xd3, 9},
    {INT64_MIN, 0xd3, 9},
};

START_TEST(int_round_trips_at_every_width_boundary)
{
    rep_value_t v = {.type = REP_INT};
    v.u.i = int_cases[_i].i;
    check_round_trip(&v, int_cases[_i].tag, int_cases[_i].len);
}
END_TEST

static const double double_cases[] = {
    0.0, 1.0, -2.5, 1e300, -1e-300, 5e-324 /* subnormal */, 1.7976931348623157e308};

START_TEST(double_round_trips_as_float64)
{
    rep_value_t v = {.type = REP_DOUBLE};
    v.u.d = double_cases[_i];
    check_round_trip(&v, 0xcb, 9);
}
END_TEST

START_TEST(negative_zero_and_infinities_round_trip)
{
    rep_value_t v = {.type = REP_DOUBLE};
    v.u.d = -0.0;
    check_round_trip(&v, 0xcb, 9); /* tu_value_eq compares bits: -0.0 stays -0.0 */
    v.u.d = INFINITY;
    check_round_trip(&v, 0xcb, 9);
    v.u.d = -INFINITY;
    check_round_trip(&v, 0xcb, 9);

    rep__buf_t b;
    rep__buf_init(&b);
    v.u.d = -0.0;
    CK_OK(rep__value_encode(&b, &v));
    static const uint8_t negzero[] = {0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_mem_eq(b.p, negzero, sizeof negzero);
    rep__buf_free(&b);
}
END_TEST

START_TEST(every_nan_encodes_as_the_one_canonical_nan)
{
    static const uint8_t canon[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const uint64_t nans[] = {
        0x7ff8000000000000ull, /* the canonical quiet NaN */
        0xfff8000000000000ull, /* negative */
        0x7ff0000000000001ull, /* signalling, payload 1 */
        0x7fffffffffffffffull, /* all payload bits */
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(nans); i++) {
        rep_value_t v = {.type = REP_DOUBLE};
        memcpy(&v.u.d, &nans[i], sizeof v.u.d);
        ck_assert(isnan(v.u.d));
        rep__buf_t b;
        rep__buf_init(&b);
        CK_OK(rep__value_encode(&b, &v));
        ck_assert_uint_eq(b.len, sizeof canon);
        ck_assert_mem_eq(b.p, canon, sizeof canon);

        rep_value_t back;
        CK_OK(rep__value_decode(b.p, b.len, &back));
        ck_assert_int_eq(back.type, REP_DOUBLE);
        ck_assert(isnan(back.u.d));
        rep__buf_free(&b);
    }
    /* and the canonical NaN is what msgpack-c writes for NAN */
    rep_value_t v = {.type = REP_DOUBLE};
    v.u.d = NAN;
    check_round_trip(&v, 0xcb, 9);
}
END_TEST

/* Lengths at every str/bin header boundary, with the header size msgpack-c picks. */
static const struct {
    size_t n;
    uint8_t str_tag, bin_tag;
    size_t str_hdr, bin_hdr;
} blob_cases[] = {
    {0, 0xa0, 0xc4, 1, 2},     {31, 0xbf, 0xc4, 1, 2},  {32, 0xd9, 0xc4, 2, 2},
    {255, 0xd9, 0xc4, 2, 2},   {256, 0xda, 0xc5, 3, 3}, {65535, 0xda, 0xc5, 3, 3},
    {65536, 0xdb, 0xc6, 5, 5},
};

START_TEST(string_round_trips_at_every_header_boundary)
{
    char *mem;
    rep_value_t v = blob_value(REP_STRING, blob_cases[_i].n, &mem);
    check_round_trip(&v, blob_cases[_i].str_tag, blob_cases[_i].str_hdr + blob_cases[_i].n);
    free(mem);
}
END_TEST

START_TEST(bytes_round_trip_at_every_header_boundary)
{
    char *mem;
    rep_value_t v = blob_value(REP_BYTES, blob_cases[_i].n, &mem);
    check_round_trip(&v, blob_cases[_i].bin_tag, blob_cases[_i].bin_hdr + blob_cases[_i].n);
    free(mem);
}
END_TEST

START_TEST(strings_keep_utf8_and_nul_bytes)
{
    static const char s[] = "Zo\xc3\xab \xe2\x82\xac\x00 \xf0\x9f\x98\x80"; /* ë € NUL 😀 */
    rep_value_t v = {.type = REP_STRING};
    v.u.s.ptr = s;
    v.u.s.len = sizeof s - 1;
    check_round_trip(&v, (uint8_t)(0xa0 | (sizeof s - 1)), 1 + sizeof s - 1);
}
END_TEST

START_TEST(values_up_to_the_limit_round_trip_and_past_it_are_too_big)
{
    char *mem;
    rep_value_t v = blob_value(REP_BYTES, REP_MAX_VALUE, &mem);
    check_round_trip(&v, 0xc6, 5 + REP_MAX_VALUE);
    free(mem);

    v = blob_value(REP_STRING, (size_t)REP_MAX_VALUE + 1, &mem);
    rep__buf_t b;
    rep__buf_init(&b);
    CK_RC(rep__value_encode(&b, &v), REP_ETOOBIG);
    CK_RC(rep__value_check(&v), REP_ETOOBIG);
    ck_assert_uint_eq(b.len, 0);

    /* the same over-limit string as bytes on the wire: the decoder refuses it too */
    msgpack_sbuffer ref;
    msgpack_reference(&v, &ref);
    check_rejected("str32 over REP_MAX_VALUE", (const uint8_t *)ref.data, ref.size);
    msgpack_sbuffer_destroy(&ref);
    free(mem);
}
END_TEST

START_TEST(encode_rejects_malformed_values_and_writes_nothing)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep_value_t v = {.type = REP_BOOL};
    v.u.b = 2;
    CK_RC(rep__value_encode(&b, &v), -EINVAL);

    v.type = (rep_type_t)42;
    CK_RC(rep__value_encode(&b, &v), -EINVAL);

    v.type = REP_STRING;
    v.u.s.ptr = "\xc0\x80";
    v.u.s.len = 2;
    CK_RC(rep__value_encode(&b, &v), -EINVAL); /* not UTF-8 */

    v.type = REP_BYTES; /* the same bytes are fine as bytes */
    CK_OK(rep__value_check(&v));

    v.u.s.ptr = NULL;
    v.u.s.len = 3;
    CK_RC(rep__value_encode(&b, &v), -EINVAL); /* length without a pointer */
    CK_RC(rep__value_encode(&b, NULL), -EINVAL);
    ck_assert_uint_eq(b.len, 0);

    v.u.s.len = 0; /* empty with NULL is the empty value */
    CK_OK(rep__value_encode(&b, &v));
    ck_assert_uint_eq(b.len, 2);
    rep__buf_free(&b);
}
END_TEST

/* ---- Canonical values: the decoder accepts only the canonical form ----------------------- */

START_TEST(decode_rejects_longer_integer_forms)
{
    REJECT("5 as uint8", 0xcc, 0x05);
    REJECT("5 as uint16", 0xcd, 0x00, 0x05);
    REJECT("5 as uint32", 0xce, 0x00, 0x00, 0x00, 0x05);
    REJECT("5 as uint64", 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05);
    REJECT("5 as int8", 0xd0, 0x05);
    REJECT("200 as uint16", 0xcd, 0x00, 0xc8);
    REJECT("200 as int16", 0xd1, 0x00, 0xc8);
    REJECT("-1 as int8", 0xd0, 0xff);
    REJECT("-1 as int64", 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    REJECT("-100 as int16", 0xd1, 0xff, 0x9c);
    REJECT("65536 as uint64", 0xcf, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
    REJECT("2^31 as int64", 0xd3, 0, 0, 0, 0, 0x80, 0, 0, 0);
    REJECT("100 as int64 (positive in a signed form)", 0xd3, 0, 0, 0, 0, 0, 0, 0, 100);
    REJECT("uint64 above INT64_MAX", 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0);
    REJECT("UINT64_MAX", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
}
END_TEST

START_TEST(decode_rejects_longer_string_and_bin_headers)
{
    REJECT("str8 header for 3 bytes", 0xd9, 0x03, 'a', 'b', 'c');
    REJECT("str8 header for 0 bytes", 0xd9, 0x00);
    REJECT("str16 header for 3 bytes", 0xda, 0x00, 0x03, 'a', 'b', 'c');
    REJECT("str32 header for 3 bytes", 0xdb, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c');
    REJECT("bin16 header for 3 bytes", 0xc5, 0x00, 0x03, 1, 2, 3);
    REJECT("bin32 header for 3 bytes", 0xc6, 0x00, 0x00, 0x00, 0x03, 1, 2, 3);

    /* str16 for 40 bytes (str8 is canonical) */
    uint8_t s16[3 + 40] = {0xda, 0x00, 40};
    memset(s16 + 3, 'x', 40);
    check_rejected("str16 header for 40 bytes", s16, sizeof s16);
    /* bin32 for 300 bytes (bin16 is canonical) */
    uint8_t b32[5 + 300] = {0xc6, 0x00, 0x00, 0x01, 0x2c};
    check_rejected("bin32 header for 300 bytes", b32, sizeof b32);
}
END_TEST

START_TEST(decode_rejects_float32_and_noncanonical_nans)
{
    REJECT("float32 1.0", 0xca, 0x3f, 0x80, 0x00, 0x00);
    REJECT("float32 NaN", 0xca, 0x7f, 0xc0, 0x00, 0x00);
    REJECT("negative NaN", 0xcb, 0xff, 0xf8, 0, 0, 0, 0, 0, 0);
    REJECT("NaN with payload", 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0x01);
    REJECT("signalling NaN", 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0x01);
    REJECT("all-ones NaN", 0xcb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

    static const uint8_t canon[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    rep_value_t v;
    CK_OK(rep__value_decode(canon, sizeof canon, &v));
    ck_assert(isnan(v.u.d));
}
END_TEST

START_TEST(decode_rejects_trailing_bytes)
{
    REJECT("int then nil", 0x01, 0xc0);
    REJECT("nil then nil", 0xc0, 0xc0);
    REJECT("string then a byte", 0xa1, 'a', 0x00);
    REJECT("double then a byte", 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x00);

    /* the bounded reader reads the first value and leaves the rest */
    static const uint8_t two[] = {0x01, 0xc0};
    rep__rd_t r;
    const uint8_t *p;
    size_t n;
    rep__rd_init(&r, two, sizeof two);
    CK_OK(rep__rd_value(&r, &p, &n));
    ck_assert_ptr_eq(p, two);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(rep__rd_left(&r), 1);
}
END_TEST

START_TEST(decode_rejects_invalid_utf8_in_strings)
{
    REJECT("overlong NUL", 0xa2, 0xc0, 0x80);
    REJECT("overlong '/'", 0xa2, 0xc0, 0xaf);
    REJECT("overlong 3-byte", 0xa3, 0xe0, 0x80, 0x80);
    REJECT("overlong 4-byte", 0xa4, 0xf0, 0x80, 0x80, 0x80);
    REJECT("high surrogate", 0xa3, 0xed, 0xa0, 0x80);
    REJECT("low surrogate", 0xa3, 0xed, 0xbf, 0xbf);
    REJECT("past U+10FFFF", 0xa4, 0xf4, 0x90, 0x80, 0x80);
    REJECT("truncated 2-byte sequence", 0xa1, 0xc3);
    REJECT("truncated 3-byte sequence", 0xa2, 0xe2, 0x82);
    REJECT("truncated 4-byte sequence", 0xa3, 0xf0, 0x9f, 0x98);
    REJECT("truncated sequence then ASCII", 0xa2, 0xe2, 'a');
    REJECT("lone continuation byte", 0xa1, 0x80);
    REJECT("0xff", 0xa1, 0xff);
    REJECT("5-byte lead", 0xa5, 0xf8, 0x88, 0x80, 0x80, 0x80);

    static const uint8_t bin[] = {0xc4, 0x02, 0xc0, 0x80}; /* bytes may hold anything */
    rep_value_t v;
    CK_OK(rep__value_decode(bin, sizeof bin, &v));
    ck_assert_int_eq(v.type, REP_BYTES);
}
END_TEST

START_TEST(decode_rejects_types_that_are_not_values)
{
    check_rejected("empty input", (const uint8_t *)"", 0);
    REJECT("never-used tag 0xc1", 0xc1);
    REJECT("fixarray", 0x91, 0x01);
    REJECT("fixmap", 0x81, 0x01, 0x02);
    REJECT("array16", 0xdc, 0x00, 0x00);
    REJECT("map16", 0xde, 0x00, 0x00);
    REJECT("fixext1", 0xd4, 0x01, 0x00);
    REJECT("ext8", 0xc7, 0x01, 0x01, 0x00);
    REJECT("timestamp ext", 0xd6, 0xff, 0, 0, 0, 0);
}
END_TEST

/* ---- UTF-8 ------------------------------------------------------------------------------- */

START_TEST(utf8_valid_accepts_well_formed_text)
{
    static const struct {
        const char *s;
        size_t n;
    } ok[] = {
        {"", 0},
        {"patients", 8},
        {"a\0b", 3},             /* NUL is allowed here (names check it separately) */
        {"\xc2\x80", 2},         /* U+0080, smallest 2-byte */
        {"\xc3\xa9", 2},         /* é */
        {"\xdf\xbf", 2},         /* U+07FF */
        {"\xe0\xa0\x80", 3},     /* U+0800, smallest 3-byte */
        {"\xe2\x82\xac", 3},     /* € */
        {"\xed\x9f\xbf", 3},     /* U+D7FF, just below the surrogates */
        {"\xee\x80\x80", 3},     /* U+E000, just above them */
        {"\xef\xbf\xbf", 3},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4}, /* U+10000, smallest 4-byte */
        {"\xf0\x9f\x98\x80", 4}, /* 😀 */
        {"\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF, the last code point */
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(ok); i++)
        ck_assert_msg(rep__utf8_valid(ok[i].s, ok[i].n), "case %zu rejected", i);
}
END_TEST

START_TEST(utf8_valid_rejects_malformed_text)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\x80", 1}, /* continuation without a lead */
        {"\xbf", 1},
        {"\xc0\x80", 2},         /* overlong NUL */
        {"\xc1\xbf", 2},         /* overlong U+007F */
        {"\xe0\x9f\xbf", 3},     /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", 4}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 3},     /* U+D800 */
        {"\xed\xbf\xbf", 3},     /* U+DFFF */
        {"\xf4\x90\x80\x80", 4}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4},
        {"\xf8\x88\x80\x80\x80", 5}, /* 5-byte form */
        {"\xfe", 1},
        {"\xff", 1},
        {"\xc3", 1}, /* truncated at the end */
        {"\xe2\x82", 2},
        {"\xf0\x9f\x98", 3},
        {"\xc3\x28", 2}, /* continuation is not 10xxxxxx */
        {"\xe2\x28\xa1", 3},
        {"ok\xe2\x82", 4}, /* valid text, then a truncated sequence */
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(bad); i++)
        ck_assert_msg(!rep__utf8_valid(bad[i].s, bad[i].n), "case %zu accepted", i);

    /* a length that cuts a valid sequence makes it invalid */
    ck_assert(!rep__utf8_valid("\xe2\x82\xac", 2));
    ck_assert(rep__utf8_valid("\xe2\x82\xac", 3));
}
END_TEST

/* ---- The bounded reader ------------------------------------------------------------------ */

START_TEST(rd_array_rejects_a_count_larger_than_the_bytes_left)
{
    rep__rd_t r;
    uint32_t n = 12345;

    /* "5 bytes ask for 96 GiB": 4 Gi elements, nothing after the header */
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    rep__rd_init(&r, huge, sizeof huge);
    CK_RC(rep__rd_array(&r, &n), REP_ECORRUPT);
    ck_assert_ptr_eq(r.p, huge);
    ck_assert_uint_eq(n, 12345); /* untouched */

    static const uint8_t two_of_one[] = {0xdc, 0x00, 0x02, 0x01};
    rep__rd_init(&r, two_of_one, sizeof two_of_one);
    CK_RC(rep__rd_array(&r, &n), REP_ECORRUPT);
    ck_assert_ptr_eq(r.p, two_of_one);

    static const uint8_t fix3_of_2[] = {0x93, 0x01, 0x02};
    rep__rd_init(&r, fix3_of_2, sizeof fix3_of_2);
    CK_RC(rep__rd_array(&r, &n), REP_ECORRUPT);

    static const uint8_t arr32_of_1[] = {0xdd, 0x00, 0x00, 0x00, 0x02, 0xc0};
    rep__rd_init(&r, arr32_of_1, sizeof arr32_of_1);
    CK_RC(rep__rd_array(&r, &n), REP_ECORRUPT);
}
END_TEST

START_TEST(rd_array_reads_counts_that_fit)
{
    rep__rd_t r;
    uint32_t n;

    static const uint8_t two[] = {0xdc, 0x00, 0x02, 0x01, 0x02};
    rep__rd_init(&r, two, sizeof two);
    CK_OK(rep__rd_array(&r, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_eq(r.p, two + 3); /* header consumed, elements left to read */

    static const uint8_t empty[] = {0x90};
    rep__rd_init(&r, empty, sizeof empty);
    CK_OK(rep__rd_array(&r, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(rep__rd_left(&r), 0);

    static const uint8_t fix15[16] = {0x9f};
    rep__rd_init(&r, fix15, sizeof fix15);
    CK_OK(rep__rd_array(&r, &n));
    ck_assert_uint_eq(n, 15);

    static const uint8_t a32[] = {0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0};
    rep__rd_init(&r, a32, sizeof a32);
    CK_OK(rep__rd_array(&r, &n));
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(rd_array_rejects_truncated_headers_and_other_types)
{
    static const struct {
        uint8_t b[4];
        size_t n;
    } cases[] = {
        {{0xdc}, 1},                   /* array16 without its count */
        {{0xdc, 0x00}, 2},             /* half a count */
        {{0xdd}, 1},                   /* array32 without its count */
        {{0xdd, 0x00, 0x00, 0x00}, 4}, /* three quarters of one */
        {{0x80}, 1},                   /* a map */
        {{0xc0}, 1},                   /* nil */
        {{0}, 0},                      /* nothing */
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(cases); i++) {
        rep__rd_t r;
        uint32_t n;
        rep__rd_init(&r, cases[i].b, cases[i].n);
        ck_assert_msg(rep__rd_array(&r, &n) == REP_ECORRUPT, "case %zu accepted", i);
        ck_assert_ptr_eq(r.p, cases[i].b);
    }
}
END_TEST

START_TEST(rd_str_and_bin_reject_lengths_past_the_end)
{
    static const struct {
        const char *what;
        uint8_t b[8];
        size_t n;
        int is_bin;
    } cases[] = {
        {"fixstr 5 of 2", {0xa5, 'a', 'b'}, 3, 0},
        {"str8 16 of 3", {0xd9, 0x10, 'a', 'b', 'c'}, 5, 0},
        {"str16 65535 of 2", {0xda, 0xff, 0xff, 'a', 'b'}, 5, 0},
        {"str32 4 Gi of 0", {0xdb, 0xff, 0xff, 0xff, 0xff}, 5, 0},
        {"str8 header cut", {0xd9}, 1, 0},
        {"str16 header cut", {0xda, 0x00}, 2, 0},
        {"str32 header cut", {0xdb, 0x00, 0x00, 0x00}, 4, 0},
        {"bin8 5 of 2", {0xc4, 0x05, 1, 2}, 4, 1},
        {"bin16 256 of 1", {0xc5, 0x01, 0x00, 1}, 4, 1},
        {"bin32 4 Gi of 0", {0xc6, 0xff, 0xff, 0xff, 0xff}, 5, 1},
        {"bin8 header cut", {0xc4}, 1, 1},
        {"bin for str", {0xc4, 0x01, 'a'}, 3, 0},
        {"str for bin", {0xa1, 'a'}, 2, 1},
        {"int for str", {0x01}, 1, 0},
        {"empty", {0}, 0, 0},
        {"empty bin", {0}, 0, 1},
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(cases); i++) {
        rep__rd_t r;
        uint32_t n;
        int rc;
        rep__rd_init(&r, cases[i].b, cases[i].n);
        if (cases[i].is_bin) {
            const uint8_t *p;
            rc = rep__rd_bin(&r, &p, &n);
        } else {
            const char *s;
            rc = rep__rd_str(&r, &s, &n);
        }
        ck_assert_msg(rc == REP_ECORRUPT, "%s: %d", cases[i].what, rc);
        ck_assert_msg(r.p == cases[i].b, "%s: consumed on failure", cases[i].what);
    }
}
END_TEST

START_TEST(rd_str_and_bin_read_what_fits)
{
    static const uint8_t in[] = {0xa2, 'h', 'i', 0xd9, 0x01, 'x', 0xc4, 0x03, 1, 2, 3, 0xc0};
    rep__rd_t r;
    const char *s;
    const uint8_t *p;
    uint32_t n;
    rep__rd_init(&r, in, sizeof in);
    CK_OK(rep__rd_str(&r, &s, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(s, "hi", 2);
    CK_OK(rep__rd_str(&r, &s, &n)); /* schema strings may use any header */
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_eq(s, (const char *)in + 5);
    CK_OK(rep__rd_bin(&r, &p, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_ptr_eq(p, in + 8);
    ck_assert_int_eq(rep__rd_is_nil(&r), 1);
    ck_assert_uint_eq(rep__rd_left(&r), 1); /* is_nil does not consume */
    CK_OK(rep__rd_nil(&r));
    ck_assert_uint_eq(rep__rd_left(&r), 0);
    ck_assert_int_eq(rep__rd_is_nil(&r), 0);
    CK_RC(rep__rd_nil(&r), REP_ECORRUPT);
}
END_TEST

START_TEST(rd_uint_reads_unsigned_forms_and_rejects_the_rest)
{
    static const struct {
        uint8_t b[9];
        size_t n;
        uint64_t v;
    } ok[] = {
        {{0x00}, 1, 0},
        {{0x7f}, 1, 127},
        {{0xcc, 0xff}, 2, 255},
        {{0xcd, 0x12, 0x34}, 3, 0x1234},
        {{0xce, 0xde, 0xad, 0xbe, 0xef}, 5, 0xdeadbeef},
        {{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, UINT64_MAX},
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(ok); i++) {
        rep__rd_t r;
        uint64_t v;
        rep__rd_init(&r, ok[i].b, ok[i].n);
        CK_OK(rep__rd_uint(&r, &v));
        ck_assert_uint_eq(v, ok[i].v);
        ck_assert_uint_eq(rep__rd_left(&r), 0);
        for (size_t k = 0; k < ok[i].n; k++) { /* every truncation */
            rep__rd_init(&r, ok[i].b, k);
            CK_RC(rep__rd_uint(&r, &v), REP_ECORRUPT);
            ck_assert_ptr_eq(r.p, ok[i].b);
        }
    }
    static const uint8_t neg[] = {0xff}, i8[] = {0xd0, 0x01}, nil[] = {0xc0};
    rep__rd_t r;
    uint64_t v;
    rep__rd_init(&r, neg, 1);
    CK_RC(rep__rd_uint(&r, &v), REP_ECORRUPT);
    rep__rd_init(&r, i8, 2);
    CK_RC(rep__rd_uint(&r, &v), REP_ECORRUPT);
    rep__rd_init(&r, nil, 1);
    CK_RC(rep__rd_uint(&r, &v), REP_ECORRUPT);
}
END_TEST

START_TEST(rd_value_steps_over_one_value_at_a_time)
{
    /* a stream of one value of each type */
    rep__buf_t b;
    rep__buf_init(&b);
    rep_value_t vals[6] = {{.type = REP_NULL},   {.type = REP_BOOL},   {.type = REP_INT},
                           {.type = REP_DOUBLE}, {.type = REP_STRING}, {.type = REP_BYTES}};
    vals[1].u.b = 1;
    vals[2].u.i = -40000;
    vals[3].u.d = 0.5;
    vals[4].u.s.ptr = "phone";
    vals[4].u.s.len = 5;
    vals[5].u.s.ptr = "\x00\x01";
    vals[5].u.s.len = 2;
    size_t at[7];
    for (int i = 0; i < 6; i++) {
        at[i] = b.len;
        CK_OK(rep__value_encode(&b, &vals[i]));
    }
    at[6] = b.len;

    rep__rd_t r;
    rep__rd_init(&r, b.p, b.len);
    for (int i = 0; i < 6; i++) {
        const uint8_t *p;
        size_t n;
        CK_OK(rep__rd_value(&r, &p, &n));
        ck_assert_ptr_eq(p, b.p + at[i]);
        ck_assert_uint_eq(n, at[i + 1] - at[i]);
        rep_value_t back;
        CK_OK(rep__value_decode(p, n, &back));
        ck_assert(tu_value_eq(&back, &vals[i]));
    }
    ck_assert_uint_eq(rep__rd_left(&r), 0);
    rep__buf_free(&b);
}
END_TEST

/* ---- Suite ------------------------------------------------------------------------------- */

static Suite *
codec_suite(void)
{
    Suite *s = suite_create("codec");

    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, buf_starts_empty_and_grows_by_doubling);
    tcase_add_test(tc, buf_add_of_nothing_allocates_nothing);
    tcase_add_test(tc, buf_take_hands_over_the_bytes_and_resets);
    tcase_add_test(tc, buf_errors_are_sticky);
    tcase_add_test(tc, packer_writes_into_the_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, null_and_bools_round_trip);
    tcase_add_loop_test(tc, int_round_trips_at_every_width_boundary, 0,
                        (int)REP_ARRAY_LEN(int_cases));
    tcase_add_loop_test(tc, double_round_trips_as_float64, 0, (int)REP_ARRAY_LEN(double_cases));
    tcase_add_test(tc, negative_zero_and_infinities_round_trip);
    tcase_add_test(tc, every_nan_encodes_as_the_one_canonical_nan);
    tcase_add_loop_test(tc, string_round_trips_at_every_header_boundary, 0,
                        (int)REP_ARRAY_LEN(blob_cases));
    tcase_add_loop_test(tc, bytes_round_trip_at_every_header_boundary, 0,
                        (int)REP_ARRAY_LEN(blob_cases));
    tcase_add_test(tc, strings_keep_utf8_and_nul_bytes);
    tcase_add_test(tc, values_up_to_the_limit_round_trip_and_past_it_are_too_big);
    tcase_add_test(tc, encode_rejects_malformed_values_and_writes_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("canonical");
    tcase_add_test(tc, decode_rejects_longer_integer_forms);
    tcase_add_test(tc, decode_rejects_longer_string_and_bin_headers);
    tcase_add_test(tc, decode_rejects_float32_and_noncanonical_nans);
    tcase_add_test(tc, decode_rejects_trailing_bytes);
    tcase_add_test(tc, decode_rejects_invalid_utf8_in_strings);
    tcase_add_test(tc, decode_rejects_types_that_are_not_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("utf8");
    tcase_add_test(tc, utf8_valid_accepts_well_formed_text);
    tcase_add_test(tc, utf8_valid_rejects_malformed_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_add_test(tc, rd_array_rejects_a_count_larger_than_the_bytes_left);
    tcase_add_test(tc, rd_array_reads_counts_that_fit);
    tcase_add_test(tc, rd_array_rejects_truncated_headers_and_other_types);
    tcase_add_test(tc, rd_str_and_bin_reject_lengths_past_the_end);
    tcase_add_test(tc, rd_str_and_bin_read_what_fits);
    tcase_add_test(tc, rd_uint_reads_unsigned_forms_and_rejects_the_rest);
    tcase_add_test(tc, rd_value_steps_over_one_value_at_a_time);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
