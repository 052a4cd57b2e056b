/*
 * check_beacon.c — discovery beacons (beacon.h): what a node broadcasts, and what a receiver
 * takes from what it hears.
 *
 * A good beacon opens to exactly what was sent. Refused: another office's (its tag, or its
 * key), any flipped bit, a wrong key, an epoch whose key the receiver lacks, a truncated or
 * padded datagram, a newer version; the guard then refuses a beacon from another address
 * than the one inside, a stale one (or from a clock far ahead), and a replay, per device and
 * address. With real replicas: the beacon subkey of each epoch is the same on every member,
 * and a revoked device, which lacks the new epoch's key, cannot tag a beacon of it. The
 * choice of interfaces: every up, running, broadcast-capable, non-loopback one when listening
 * on every address; only the one holding the address (or named) otherwise.
 */
#include <check.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beacon.h"
#include "checkutil.h"
#include "common.h"
#include "facade.h"
#include "members.h"

#define NOW TU_CLOCK_EPOCH_MS

typedef struct fixture {
    uint8_t office[REP_OFFICE_ID_BYTES];
    rep__beacon_key_t keys[2]; /* epochs 1 and 2 */
    rep__beacon_t b;
} fixture_t;

static void
fixture(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < REP_OFFICE_ID_BYTES; i++)
        f->office[i] = (uint8_t)(0x10 + i);
    f->keys[0].epoch = 1;
    f->keys[1].epoch = 2;
    memset(f->keys[0].key, 0xa1, REP_KEY_BYTES);
    memset(f->keys[1].key, 0xb2, REP_KEY_BYTES);
    f->b.epoch = 2;
    for (int i = 0; i < REP_SIGN_PK_BYTES; i++)
        f->b.device[i] = (uint8_t)(0x70 + i);
    f->b.family = 4;
    memcpy(f->b.addr, (uint8_t[]){10, 1, 0, 2}, 4);
    f->b.port = 7701;
    f->b.time_ms = NOW;
}

static void
encode(const fixture_t *f, uint8_t out[REP_BEACON_BYTES])
{
    CK_OK(rep__beacon_encode(out, &f->b, f->office, f->keys[f->b.epoch - 1].key));
}

START_TEST(a_good_beacon_opens_to_what_was_sent)
{
    fixture_t f;
    fixture(&f);
    uint8_t p[REP_BEACON_BYTES];
    encode(&f, p);
    ck_assert_mem_eq(p, "RPLD\x01", 5);
    rep__beacon_t got;
    CK_OK(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got));
    ck_assert_uint_eq(got.epoch, 2);
    ck_assert_mem_eq(got.device, f.b.device, sizeof got.device);
    ck_assert_uint_eq(got.family, 4);
    ck_assert_mem_eq(got.addr, f.b.addr, 16);
    ck_assert_uint_eq(got.port, 7701);
    ck_assert_uint_eq(got.time_ms, NOW);

    /* an older epoch whose key the receiver holds opens too (a member that missed a rotation
     * must still be found, to receive it) */
    f.b.epoch = 1;
    encode(&f, p);
    CK_OK(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got));
    ck_assert_uint_eq(got.epoch, 1);

    /* IPv6 addresses have room */
    f.b.family = 6;
    memset(f.b.addr, 0xfe, 16);
    encode(&f, p);
    CK_OK(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got));
    ck_assert_mem_eq(got.addr, f.b.addr, 16);
}
END_TEST

START_TEST(encode_refuses_what_no_one_could_dial)
{
    fixture_t f;
    fixture(&f);
    uint8_t p[REP_BEACON_BYTES];
    f.b.port = 0;
    CK_RC(rep__beacon_encode(p, &f.b, f.office, f.keys[1].key), -EINVAL);
    fixture(&f);
    f.b.family = 5;
    CK_RC(rep__beacon_encode(p, &f.b, f.office, f.keys[1].key), -EINVAL);
    fixture(&f);
    memset(f.b.addr, 0, 16);
    CK_RC(rep__beacon_encode(p, &f.b, f.office, f.keys[1].key), -EINVAL);
    fixture(&f);
    f.b.addr[9] = 1; /* IPv4 with bytes past the fourth */
    CK_RC(rep__beacon_encode(p, &f.b, f.office, f.keys[1].key), -EINVAL);
}
END_TEST

START_TEST(another_office_is_refused)
{
    fixture_t f, g;
    fixture(&f);
    fixture(&g);
    g.office[0] ^= 1;
    uint8_t p[REP_BEACON_BYTES];
    encode(&g, p);
    rep__beacon_t got;
    CK_RC(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got), REP_EOFFICE);

    /* another office whose tag collides with ours (forged here: the tag bytes copied) still
     * fails, its MAC covering the whole office id */
    uint8_t mine[REP_BEACON_BYTES];
    encode(&f, mine);
    memcpy(p + 5, mine + 5, REP_BEACON_TAG_BYTES);
    CK_RC(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got), REP_EAUTH);
}
END_TEST

START_TEST(every_flipped_bit_is_refused)
{
    fixture_t f;
    fixture(&f);
    uint8_t p[REP_BEACON_BYTES];
    encode(&f, p);
    rep__beacon_t got;
    for (size_t bit = 0; bit < 8 * sizeof p; bit++) {
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got);
        ck_assert_msg(rc < 0, "bit %zu flipped: accepted", bit);
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CK_OK(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got));
}
END_TEST

START_TEST(wrong_key_or_epoch_is_refused)
{
    fixture_t f;
    fixture(&f);
    uint8_t p[REP_BEACON_BYTES];
    rep__beacon_t got;
    /* tagged with another key than its epoch's */
    CK_OK(rep__beacon_encode(p, &f.b, f.office, f.keys[0].key));
    CK_RC(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got), REP_EAUTH);
    /* an epoch the receiver holds no key of (it was revoked, or is behind) */
    encode(&f, p);
    CK_RC(rep__beacon_open(p, sizeof p, f.office, f.keys, 1, &got), REP_EKEY);
    CK_RC(rep__beacon_open(p, sizeof p, f.office, NULL, 0, &got), REP_EKEY);
    /* the epoch rewritten to one whose key the receiver holds */
    p[5 + REP_BEACON_TAG_BYTES + 3] = 1;
    CK_RC(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got), REP_EAUTH);
}
END_TEST

START_TEST(malformed_datagrams_are_refused)
{
    fixture_t f;
    fixture(&f);
    uint8_t p[REP_BEACON_BYTES + 1];
    encode(&f, p);
    rep__beacon_t got;
    for (size_t n = 0; n < REP_BEACON_BYTES; n++)
        ck_assert_int_lt(rep__beacon_open(p, n, f.office, f.keys, 2, &got), 0);
    p[REP_BEACON_BYTES] = 0;
    CK_RC(rep__beacon_open(p, sizeof p, f.office, f.keys, 2, &got), REP_ECORRUPT);
    p[4] = 2;
    CK_RC(rep__beacon_open(p, REP_BEACON_BYTES, f.office, f.keys, 2, &got), REP_EVERSION);
    p[4] = 0;
    CK_RC(rep__beacon_open(p, REP_BEACON_BYTES, f.office, f.keys, 2, &got), REP_ECORRUPT);
    memcpy(p, "RPLB", 4); /* a bundle's magic */
    CK_RC(rep__beacon_open(p, REP_BEACON_BYTES, f.office, f.keys, 2, &got), REP_ECORRUPT);
}
END_TEST

START_TEST(the_guard_refuses_stale_replayed_and_misaddressed_beacons)
{
    fixture_t f;
    fixture(&f);
    rep__beacon_guard_t *g = calloc(1, sizeof *g);
    ck_assert_ptr_nonnull(g);
    const uint64_t W = REP_BEACON_WINDOW_MS;
    uint8_t src[16] = {10, 1, 0, 2}, other[16] = {10, 1, 0, 66};

    /* from another address than the one inside: replayed from elsewhere */
    CK_RC(rep__beacon_admit(g, &f.b, 4, other, NOW, W), -EADDRNOTAVAIL);
    CK_RC(rep__beacon_admit(g, &f.b, 6, src, NOW, W), -EADDRNOTAVAIL);
    /* stale, or from a clock far ahead */
    CK_RC(rep__beacon_admit(g, &f.b, 4, src, NOW + W + 1, W), REP_EEXPIRED);
    CK_RC(rep__beacon_admit(g, &f.b, 4, src, NOW - W - 1, W), REP_EEXPIRED);
    ck_assert_uint_eq(g->n, 0);
    /* within the window, either way: taken once */
    CK_OK(rep__beacon_admit(g, &f.b, 4, src, NOW + W, W));
    CK_RC(rep__beacon_admit(g, &f.b, 4, src, NOW + W, W), REP_EEXIST);
    /* an older one is a replay too; a newer one is taken */
    f.b.time_ms = NOW - 1;
    CK_RC(rep__beacon_admit(g, &f.b, 4, src, NOW, W), REP_EEXIST);
    f.b.time_ms = NOW + 1500;
    CK_OK(rep__beacon_admit(g, &f.b, 4, src, NOW + 1500, W));
    /* the same device at another address of its own (a second interface) counts apart */
    fixture_t h;
    fixture(&h);
    memcpy(h.b.addr, other, 4);
    CK_OK(rep__beacon_admit(g, &h.b, 4, other, NOW, W));
    ck_assert_uint_eq(g->n, 2);

    /* full: the pair heard least recently is forgotten, the others still refuse replays */
    for (unsigned i = 0; i < REP_BEACON_SEEN_MAX + 10; i++) {
        fixture(&h);
        h.b.device[0] = (uint8_t)i;
        h.b.device[1] = (uint8_t)(i >> 8);
        h.b.device[2] = 0xee;
        h.b.time_ms = NOW + 2000 + i;
        CK_OK(rep__beacon_admit(g, &h.b, 4, src, NOW + 2000 + i, W));
    }
    ck_assert_uint_eq(g->n, REP_BEACON_SEEN_MAX);
    CK_RC(rep__beacon_admit(g, &h.b, 4, src, NOW + 3000, W), REP_EEXIST);
    free(g);
}
END_TEST

/* ---- With real replicas: keys of each epoch, a revoked device ---- */
START_TEST(members_share_the_key_and_a_revoked_device_cannot_tag_the_new_epoch)
{
    rep_replica_t *a = NULL, *m = NULL, *x = NULL;
    rep_open_opts_t o = {.flags = REP_OPEN_NOSYNC, .device_name = "admin"};
    CK_OK(tu_replica_create(&a, g_root, "a", &o, NULL));
    CK_OK(tu_replica_create(&m, g_root, "m", &o, a));
    CK_OK(tu_replica_create(&x, g_root, "x", &o, a));
    CK_OK(tu_members_share(a, m));
    CK_OK(tu_members_share(a, x));

    uint32_t ea, em, ex;
    rep__beacon_key_t *ka, *km, *kx;
    size_t na, nm, nx;
    CK_OK(rep__members_beacon_keys(a, &ea, &ka, &na));
    CK_OK(rep__members_beacon_keys(m, &em, &km, &nm));
    ck_assert_uint_eq(ea, em);
    ck_assert_uint_eq(na, 1);
    ck_assert_uint_eq(nm, 1);
    ck_assert_mem_eq(ka[0].key, km[0].key, REP_KEY_BYTES);

    /* m's beacon opens at a */
    rep__beacon_t b = {.epoch = em, .family = 4, .addr = {10, 1, 0, 3}, .port = 7702,
                       .time_ms = NOW};
    uint8_t pk[REP_SIGN_PK_BYTES], p[REP_BEACON_BYTES];
    CK_OK(rep__device_keys(m, pk, NULL, NULL));
    memcpy(b.device, pk, sizeof pk);
    CK_OK(rep__beacon_encode(p, &b, m->office, km[0].key));
    rep__beacon_t got;
    CK_OK(rep__beacon_open(p, sizeof p, a->office, ka, na, &got));
    free(ka);
    free(km);

    /* x is revoked: the key rotates to a new epoch that m receives and x never does */
    CK_OK(rep_replica_revoke(a, "x", NULL, NULL));
    CK_OK(tu_members_share(a, m));
    CK_OK(tu_members_share(a, x)); /* even given the log, x cannot open its box */
    CK_OK(rep__members_beacon_keys(a, &ea, &ka, &na));
    CK_OK(rep__members_beacon_keys(m, &em, &km, &nm));
    CK_OK(rep__members_beacon_keys(x, &ex, &kx, &nx));
    ck_assert_uint_eq(ea, 2);
    ck_assert_uint_eq(em, 2);
    ck_assert_uint_eq(na, 2);
    ck_assert_uint_eq(nm, 2);
    ck_assert_uint_eq(nx, 1);
    for (size_t i = 0; i < nx; i++)
        ck_assert_uint_ne(kx[i].epoch, 2);
    /* x tags a beacon claiming epoch 2 with the only key it has: refused */
    CK_OK(rep__device_keys(x, pk, NULL, NULL));
    memcpy(b.device, pk, sizeof pk);
    b.epoch = 2;
    CK_OK(rep__beacon_encode(p, &b, x->office, kx[0].key));
    CK_RC(rep__beacon_open(p, sizeof p, a->office, ka, na, &got), REP_EAUTH);
    /* m's beacon of the new epoch opens at a; x, holding no key of epoch 2, cannot read it as
     * one of its office's */
    CK_OK(rep__device_keys(m, pk, NULL, NULL));
    memcpy(b.device, pk, sizeof pk);
    size_t k2 = km[0].epoch == 2 ? 0 : 1;
    CK_OK(rep__beacon_encode(p, &b, m->office, km[k2].key));
    CK_OK(rep__beacon_open(p, sizeof p, a->office, ka, na, &got));
    CK_RC(rep__beacon_open(p, sizeof p, x->office, kx, nx, &got), REP_EKEY);
    free(ka);
    free(km);
    free(kx);
    rep_replica_close(&a);
    rep_replica_close(&m);
    rep_replica_close(&x);
}
END_TEST

/* ---- Which interfaces ---- */
static const rep__iface_t ifs[] = {
    {"lo", 1, IFF_UP | IFF_RUNNING | IFF_LOOPBACK, {127, 0, 0, 1}, {0}},
    {"eth0", 2, IFF_UP | IFF_RUNNING | IFF_BROADCAST, {10, 1, 0, 2}, {10, 1, 0, 255}},
    {"docker0", 3, IFF_UP | IFF_BROADCAST, {172, 17, 0, 1}, {172, 17, 255, 255}}, /* no carrier */
    {"tun0", 4, IFF_UP | IFF_RUNNING | IFF_POINTOPOINT, {10, 8, 0, 5}, {0}},      /* a VPN */
    {"eth1", 5, IFF_BROADCAST, {192, 168, 7, 2}, {192, 168, 7, 255}},              /* down */
    {"eth2", 6, IFF_UP | IFF_RUNNING | IFF_BROADCAST, {192, 168, 9, 4}, {192, 168, 9, 255}},
    {"eth2", 6, IFF_UP | IFF_RUNNING | IFF_BROADCAST, {192, 168, 9, 5}, {0}}, /* no broadcast */
};

START_TEST(beacons_go_where_the_node_listens)
{
    size_t pick[REP_ARRAY_LEN(ifs)], n = REP_ARRAY_LEN(ifs);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "0.0.0.0", pick), 2);
    ck_assert_str_eq(ifs[pick[0]].name, "eth0");
    ck_assert_str_eq(ifs[pick[1]].name, "eth2");
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "*", pick), 2);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "", pick), 2);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "10.1.0.2", pick), 1);
    ck_assert_uint_eq(pick[0], 1);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "192.168.9.4", pick), 1);
    ck_assert_uint_eq(pick[0], 5);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "eth2", pick), 1);
    /* listening where no beacon can go: loopback, a VPN, an interface down, not here */
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "127.0.0.1", pick), 0);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "10.8.0.5", pick), 0);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "192.168.7.2", pick), 0);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "172.17.0.1", pick), 0);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "10.1.0.22", pick), 0);
    ck_assert_uint_eq(rep__beacon_pick(ifs, n, "10.1.0.2.5", pick), 0);
}
END_TEST

START_TEST(bound_endpoints_are_split)
{
    char host[64];
    uint16_t port;
    CK_OK(rep__beacon_endpoint("tcp://0.0.0.0:7701", host, sizeof host, &port));
    ck_assert_str_eq(host, "0.0.0.0");
    ck_assert_uint_eq(port, 7701);
    CK_OK(rep__beacon_endpoint("tcp://[::]:65535", host, sizeof host, &port));
    ck_assert_str_eq(host, "::");
    ck_assert_uint_eq(port, 65535);
    const char *bad[] = {"tcp://1.2.3.4:0", "tcp://1.2.3.4:65536", "tcp://1.2.3.4:", "tcp://:5",
                         "udp://1.2.3.4:5", "tcp://1.2.3.4:5x", "tcp://[::1:5", NULL};
    for (int i = 0; bad[i]; i++)
        CK_RC(rep__beacon_endpoint(bad[i], host, sizeof host, &port), -EINVAL);
    CK_RC(rep__beacon_endpoint("tcp://a-very-long-interface-name:5", host, 8, &port), -EINVAL);
}
END_TEST

static Suite *
beacon_suite(void)
{
    Suite *s = suite_create("beacon");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, a_good_beacon_opens_to_what_was_sent);
    tcase_add_test(tc, encode_refuses_what_no_one_could_dial);
    tcase_add_test(tc, another_office_is_refused);
    tcase_add_test(tc, every_flipped_bit_is_refused);
    tcase_add_test(tc, wrong_key_or_epoch_is_refused);
    tcase_add_test(tc, malformed_datagrams_are_refused);
    tcase_add_test(tc, the_guard_refuses_stale_replayed_and_misaddressed_beacons);
    tcase_add_test(tc, members_share_the_key_and_a_revoked_device_cannot_tag_the_new_epoch);
    tcase_add_test(tc, beacons_go_where_the_node_listens);
    tcase_add_test(tc, bound_endpoints_are_split);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(beacon_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
