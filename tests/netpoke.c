/* netpoke — a hostile or curious client of a node, for tests/net.sh.
 *
 *   netpoke --dir D --server-dir S --to tcp://IP:PORT auth
 *       connect with D's device keys (CURVE) to the node of S's device listening at the
 *       endpoint; exit 0 when the handshake succeeds, 3 when the node refuses it, 4 when
 *       nothing is decided within 5 s
 *   netpoke ... garbage
 *       connect as auth does, then send malformed messages: random bytes, bad versions and
 *       types, extra frames, a HELLO of another office, a DATA of garbage, and last a frame
 *       over the node's ZMQ_MAXMSGSIZE; exit 0 when all were sent
 *
 * D's keys are its replica's (any device, enrolled or not); S's public key is read from S's
 * replica (which its node may be serving: replicas open in many processes at once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "codec.h"
#include "keys.h"
#include "members.h"
#include "replica.h"

static int
keys_of(const char *dir, uint8_t pk[32], uint8_t sk[32])
{
    rep_replica_t *r;
    int rc = rep_replica_open(&r, dir, NULL);
    if (rc < 0) {
        fprintf(stderr, "netpoke: %s: %s\n", dir, rep_strerror(rc));
        return rc;
    }
    rc = rep__device_keys(r, NULL, pk, sk);
    rep_replica_close(&r);
    return rc;
}

/* Wait for the handshake's outcome on the monitor: 0 success, 3 refused, 4 undecided. */
static int
handshake(void *mon)
{
    zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < 50; i++) {
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        uint16_t ev = 0;
        if (zmq_msg_recv(&m, mon, 0) >= 2)
            memcpy(&ev, zmq_msg_data(&m), 2);
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        while (more) {
            zmq_msg_init(&m);
            zmq_msg_recv(&m, mon, 0);
            more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            return 0;
        if (ev & (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
            return 3;
    }
    return 4;
}

static void
send_one(void *s, const void *p, size_t n, int more)
{
    zmq_send(s, p, n, more ? ZMQ_SNDMORE : 0);
}

/* A msgpack message [1, type, ...] built with the library's packer. */
static void
send_packed(void *s, int items, int version, int type, const uint8_t *bin, size_t nbin)
{
    rep__buf_t b;
    msgpack_packer pk;
    rep__buf_init(&b);
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, (size_t)items);
    msgpack_pack_uint8(&pk, (uint8_t)version);
    msgpack_pack_uint8(&pk, (uint8_t)type);
    for (int i = 2; i < items; i++) {
        msgpack_pack_bin(&pk, nbin);
        msgpack_pack_bin_body(&pk, bin, nbin);
    }
    send_one(s, b.p, b.len, 0);
    rep__buf_free(&b);
}

static void
garbage(void *s)
{
    uint8_t junk[4096];
    rep__random(junk, sizeof junk);
    for (size_t n = 1; n <= sizeof junk; n *= 4)
        send_one(s, junk, n, 0);
    send_one(s, "", 0, 0);
    send_one(s, junk, 10, 1); /* three frames where one is expected */
    send_one(s, junk, 10, 1);
    send_one(s, junk, 10, 0);
    send_packed(s, 3, 99, 1, junk, 16);        /* a future version */
    send_packed(s, 3, 1, 77, junk, 16);        /* an unknown type */
    send_packed(s, 5, 1, 1, junk, 16);         /* a HELLO of another office, garbage vv */
    send_packed(s, 4, 1, 2, junk, 64);         /* a DATA whose id and payload are garbage */
    send_packed(s, 3, 1, 4, junk, sizeof junk); /* a HAVE with a garbage vv */
    size_t big = (size_t)5 << 20;               /* over the node's 4 MiB: it drops us */
    uint8_t *p = calloc(1, big);
    if (p) {
        send_one(s, p, big, 0);
        free(p);
    }
}

int
main(int argc, char **argv)
{
    const char *dir = NULL, *sdir = NULL, *to = NULL, *mode = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--server-dir") == 0 && i + 1 < argc)
            sdir = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else
            mode = argv[i];
    }
    if (!dir || !sdir || !to || !mode ||
        (strcmp(mode, "auth") != 0 && strcmp(mode, "garbage") != 0)) {
        fprintf(stderr, "usage: netpoke --dir D --server-dir S --to tcp://IP:PORT auth|garbage\n");
        return 2;
    }
    uint8_t pk[32], sk[32], spk[32];
    if (keys_of(dir, pk, sk) < 0 || keys_of(sdir, spk, NULL) < 0)
        return 1;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER), *mon = zmq_socket(ctx, ZMQ_PAIR);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pk, 32);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sk, 32);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, spk, 32);
    zmq_socket_monitor(s, "inproc://netpoke-mon", ZMQ_EVENT_ALL);
    zmq_connect(mon, "inproc://netpoke-mon");
    zmq_connect(s, to);
    int rc = handshake(mon);
    printf("%s\n", rc == 0 ? "admitted" : rc == 3 ? "refused" : "undecided");
    if (rc == 0 && strcmp(mode, "garbage") == 0) {
        garbage(s);
        usleep(500 * 1000); /* let it go out before linger 0 drops it */
    }
    zmq_close(s);
    zmq_close(mon);
    zmq_ctx_term(ctx);
    return rc;
}
