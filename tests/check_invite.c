/*
 * check_invite.c — invitation tokens: what `replica invite` prints and `replica join` reads.
 *
 * A token round-trips exactly; a mistyped, truncated or altered one is refused (a checksum
 * covers it), as are newer formats and impossible contents; whitespace around it (a copied
 * line) is harmless. The one-time CURVE key pair comes from the secret alone: the inviting
 * node and the joining device compute the same one, and different secrets give different keys.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "common.h"
#include "invite.h"
#include "keys.h"
#include "testutil.h"

static char *eps[] = {"tcp://127.0.0.1:7701", "tcp://192.168.1.20:7701"};

static void
sample(rep__invite_t *in)
{
    memset(in, 0, sizeof *in);
    for (int i = 0; i < 16; i++)
        in->office[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 32; i++) {
        in->server_pk[i] = (uint8_t)(0x40 + i);
        in->secret[i] = (uint8_t)(0x90 + i);
    }
    in->office_name = "Maple Street Clinic";
    in->expires_ms = TU_CLOCK_EPOCH_MS + 15 * 60 * 1000;
    in->endpoints = eps;
    in->nendpoints = 2;
}

START_TEST(a_token_round_trips)
{
    rep__invite_t in, out;
    sample(&in);
    char *tok;
    ck_assert_int_eq(rep__invite_encode(&in, &tok), 0);
    ck_assert_ptr_null(strpbrk(tok, " \n+/=")); /* one URL-safe word */
    ck_assert_int_eq(rep__invite_decode(tok, &out), 0);
    ck_assert_mem_eq(out.office, in.office, sizeof in.office);
    ck_assert_str_eq(out.office_name, in.office_name);
    ck_assert_mem_eq(out.server_pk, in.server_pk, sizeof in.server_pk);
    ck_assert_mem_eq(out.secret, in.secret, sizeof in.secret);
    ck_assert_uint_eq(out.expires_ms, in.expires_ms);
    ck_assert_uint_eq(out.nendpoints, 2);
    ck_assert_str_eq(out.endpoints[0], eps[0]);
    ck_assert_str_eq(out.endpoints[1], eps[1]);
    rep__invite_clear(&out);

    /* a copied line with spaces and a newline around it */
    size_t n = strlen(tok) + 8;
    char *padded = malloc(n);
    snprintf(padded, n, "  %s \n", tok);
    ck_assert_int_eq(rep__invite_decode(padded, &out), 0);
    ck_assert_mem_eq(out.secret, in.secret, sizeof in.secret);
    rep__invite_clear(&out);
    free(padded);
    free(tok);
}
END_TEST

START_TEST(every_single_character_change_is_refused)
{
    rep__invite_t in, out;
    sample(&in);
    char *tok;
    ck_assert_int_eq(rep__invite_encode(&in, &tok), 0);
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char save = tok[i];
        tok[i] = save == 'A' ? 'B' : 'A';
        int rc = rep__invite_decode(tok, &out);
        ck_assert_msg(rc == REP_ECORRUPT, "change at %zu: rc %d", i, rc);
        tok[i] = save;
    }
    for (size_t cut = 0; cut < n; cut++) { /* every truncation */
        char save = tok[cut];
        tok[cut] = 0;
        ck_assert_int_eq(rep__invite_decode(tok, &out), REP_ECORRUPT);
        tok[cut] = save;
    }
    ck_assert_int_eq(rep__invite_decode("not a token", &out), REP_ECORRUPT);
    ck_assert_int_eq(rep__invite_decode("", &out), REP_ECORRUPT);
    ck_assert_int_eq(rep__invite_decode(NULL, &out), -EINVAL);
    free(tok);
}
END_TEST

/* Encode a body with a valid checksum, as a token. */
static char *
token_of(rep__buf_t *b)
{
    uint8_t sum[REP_HASH_BYTES];
    rep__hash(sum, b->p, b->len);
    rep__buf_add(b, sum, 4);
    return rep__base64(b->p, b->len);
}

START_TEST(newer_formats_and_impossible_contents_are_refused)
{
    rep__invite_t out;
    uint8_t z[32] = {0};
    for (int c = 0; c < 5; c++) {
        rep__buf_t b;
        rep__buf_init(&b);
        msgpack_packer pk;
        rep__packer_init(&pk, &b);
        msgpack_pack_array(&pk, 7);
        msgpack_pack_uint8(&pk, c == 0 ? 2 : 1);        /* 0: a newer version */
        msgpack_pack_bin(&pk, c == 1 ? 15 : 16);        /* 1: a short office id */
        msgpack_pack_bin_body(&pk, z, c == 1 ? 15 : 16);
        msgpack_pack_str(&pk, c == 4 ? 0 : 6);           /* 4: no office name */
        msgpack_pack_str_body(&pk, "clinic", c == 4 ? 0 : 6);
        msgpack_pack_bin(&pk, 32);
        msgpack_pack_bin_body(&pk, z, 32);
        msgpack_pack_bin(&pk, 32);
        msgpack_pack_bin_body(&pk, z, 32);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_array(&pk, c == 2 ? 0 : 1);         /* 2: nowhere to go */
        if (c != 2) {
            msgpack_pack_str(&pk, c == 3 ? 300 : 5);     /* 3: an endpoint over the limit */
            for (int i = 0; i < (c == 3 ? 300 : 5); i++)
                msgpack_pack_str_body(&pk, "x", 1);
        }
        char *tok = token_of(&b);
        int rc = rep__invite_decode(tok, &out);
        ck_assert_int_eq(rc, c == 0 ? REP_EVERSION : REP_ECORRUPT);
        free(tok);
        rep__buf_free(&b);
    }
}
END_TEST

START_TEST(encode_refuses_what_decode_would)
{
    rep__invite_t in;
    sample(&in);
    char *many[REP_INVITE_MAX_ENDPOINTS + 1], longep[REP_INVITE_MAX_ENDPOINT + 2], *tok;
    for (size_t i = 0; i <= REP_INVITE_MAX_ENDPOINTS; i++)
        many[i] = eps[0];
    in.endpoints = many;
    in.nendpoints = REP_INVITE_MAX_ENDPOINTS + 1;
    ck_assert_int_eq(rep__invite_encode(&in, &tok), -EINVAL);
    memset(longep, 'x', sizeof longep - 1);
    longep[sizeof longep - 1] = 0;
    many[0] = longep;
    in.nendpoints = 1;
    ck_assert_int_eq(rep__invite_encode(&in, &tok), -EINVAL);
    sample(&in);
    in.office_name = "";
    ck_assert_int_eq(rep__invite_encode(&in, &tok), -EINVAL);
}
END_TEST

START_TEST(the_one_time_key_pair_comes_from_the_secret)
{
    uint8_t s1[32], s2[32], pk1[32], sk1[32], pk1b[32], sk1b[32], pk2[32], sk2[32];
    memset(s1, 7, sizeof s1);
    memcpy(s2, s1, sizeof s2);
    s2[31] ^= 1;
    rep__invite_keypair(s1, pk1, sk1);
    rep__invite_keypair(s1, pk1b, sk1b);
    rep__invite_keypair(s2, pk2, sk2);
    ck_assert_mem_eq(pk1, pk1b, 32);
    ck_assert_mem_eq(sk1, sk1b, 32);
    ck_assert(memcmp(pk1, pk2, 32) != 0);
    ck_assert(memcmp(pk1, s1, 32) != 0 && memcmp(sk1, s1, 32) != 0);
}
END_TEST

START_TEST(join_messages_round_trip_and_refuse_junk)
{
    uint8_t sign[32], curve[32], s2[32], c2[32], *m;
    size_t n;
    char *dev, *reason;
    memset(sign, 1, sizeof sign);
    memset(curve, 2, sizeof curve);
    ck_assert_int_eq(rep__join_encode("front desk", sign, curve, &m, &n), 0);
    ck_assert_int_eq(rep__join_decode(m, n, &dev, s2, c2), 0);
    ck_assert_str_eq(dev, "front desk");
    ck_assert_mem_eq(s2, sign, 32);
    ck_assert_mem_eq(c2, curve, 32);
    free(dev);
    for (size_t cut = 0; cut < n; cut++)
        ck_assert_int_eq(rep__join_decode(m, cut, &dev, s2, c2), REP_ECORRUPT);
    rep__welcome_t w;
    ck_assert_int_eq(rep__join_reply_decode(m, n, &w, &reason), REP_ECORRUPT);
    free(m);

    rep__welcome_t in = {(const uint8_t *)"RPLP..", (const uint8_t *)"RPLS....", 6, 8};
    ck_assert_int_eq(rep__join_reply_encode(&in, NULL, &m, &n), 0);
    ck_assert_int_eq(rep__join_reply_decode(m, n, &w, &reason), 1);
    ck_assert_uint_eq(w.provisionn, 6);
    ck_assert_mem_eq(w.provision, "RPLP..", 6);
    ck_assert_uint_eq(w.snapn, 8);
    ck_assert_mem_eq(w.snap, "RPLS....", 8);
    ck_assert_int_eq(rep__join_decode(m, n, &dev, s2, c2), REP_ECORRUPT);
    for (size_t cut = 0; cut < n; cut++)
        ck_assert_int_eq(rep__join_reply_decode(m, cut, &w, &reason), REP_ECORRUPT);
    free(m);
    ck_assert_int_eq(rep__join_reply_encode(NULL, "invitation already used", &m, &n), 0);
    ck_assert_int_eq(rep__join_reply_decode(m, n, &w, &reason), 0);
    ck_assert_str_eq(reason, "invitation already used");
    free(reason);
    free(m);
    ck_assert_int_eq(rep__join_reply_decode((const uint8_t *)"\x93\x01\x09\xc0", 4, &w, &reason),
                     REP_ECORRUPT);
}
END_TEST

static Suite *
invite_suite(void)
{
    Suite *s = suite_create("invite");
    TCase *tc = tcase_create("token");
    tcase_add_test(tc, a_token_round_trips);
    tcase_add_test(tc, every_single_character_change_is_refused);
    tcase_add_test(tc, newer_formats_and_impossible_contents_are_refused);
    tcase_add_test(tc, encode_refuses_what_decode_would);
    tcase_add_test(tc, the_one_time_key_pair_comes_from_the_secret);
    tcase_add_test(tc, join_messages_round_trip_and_refuse_junk);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (rep__keys_init() < 0)
        return 1;
    SRunner *sr = srunner_create(invite_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
