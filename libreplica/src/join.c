/* join.c — a new workstation joins its office with an invitation token (rep_replica_join).
 *
 * The token (invite.h) names the office and where its inviting node listens. We make this
 * device's identity, dial the node over CURVE with the invitation's one-time key pair, send
 * JOIN with our public keys, and receive WELCOME — the membership log with the entry the
 * node's admin signed for us, the office keys, and the office's state — or REFUSED. Only
 * then is the replica created, from that provisioning and our secret key, which never left
 * this process. A node that does not know the one-time key (used, expired, never issued)
 * refuses the handshake itself. On any failure nothing is left behind, so the command can
 * simply be run again.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common.h"
#include "facade.h"
#include "invite.h"
#include "keys.h"
#include "members.h"
#include "trust.h"

#define JOIN_MON "inproc://replica-join-monitor"

static uint64_t
now_ms(const rep_open_opts_t *o)
{
    return o && o->clock_ms ? o->clock_ms(o->clock_ctx) : rep__clock_ms(CLOCK_REALTIME);
}

static uint64_t
mono_ms(void)
{
    return rep__clock_ms(CLOCK_MONOTONIC);
}

/* Read one monitor event: its number, or -1. */
static int
monitor_event(void *mon)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, mon, ZMQ_DONTWAIT) < 0 || zmq_msg_size(&m) < 2) {
        zmq_msg_close(&m);
        return -1;
    }
    uint16_t ev;
    memcpy(&ev, zmq_msg_data(&m), sizeof ev);
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    if (more) { /* the endpoint frame */
        zmq_msg_init(&m);
        zmq_msg_recv(&m, mon, ZMQ_DONTWAIT);
        zmq_msg_close(&m);
    }
    return ev;
}

typedef struct exchange {
    void *ctx, *sock, *mon;
} exchange_t;

static void
exchange_close(exchange_t *x)
{
    if (x->mon)
        zmq_close(x->mon);
    if (x->sock)
        zmq_close(x->sock);
    if (x->ctx)
        zmq_ctx_term(x->ctx);
    memset(x, 0, sizeof *x);
}

static int
zerr(void)
{
    return errno ? -errno : -EIO;
}

/* Dial the invitation's endpoints with its one-time key pair. */
static int
exchange_open(exchange_t *x, const rep__invite_t *inv)
{
    uint8_t pk[32], sk[32];
    int zero = 0, one = 1, ivl = 5000;
    int64_t unlimited = -1; /* a WELCOME carries the office's state; the server is authenticated */
    memset(x, 0, sizeof *x);
    if (!(x->ctx = zmq_ctx_new()) || !(x->sock = zmq_socket(x->ctx, ZMQ_DEALER)))
        return zerr();
    rep__invite_keypair(inv->secret, pk, sk);
    int rc = zmq_setsockopt(x->sock, ZMQ_CURVE_SERVERKEY, inv->server_pk, 32) < 0 ||
                     zmq_setsockopt(x->sock, ZMQ_CURVE_PUBLICKEY, pk, 32) < 0 ||
                     zmq_setsockopt(x->sock, ZMQ_CURVE_SECRETKEY, sk, 32) < 0 ||
                     zmq_setsockopt(x->sock, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
                     zmq_setsockopt(x->sock, ZMQ_IMMEDIATE, &one, sizeof one) < 0 ||
                     zmq_setsockopt(x->sock, ZMQ_HANDSHAKE_IVL, &ivl, sizeof ivl) < 0 ||
                     zmq_setsockopt(x->sock, ZMQ_MAXMSGSIZE, &unlimited, sizeof unlimited) < 0
                 ? zerr()
                 : 0;
    rep__wipe(sk, sizeof sk);
    REP_TRY(rc);
    if (zmq_socket_monitor(x->sock, JOIN_MON,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) <
            0 ||
        !(x->mon = zmq_socket(x->ctx, ZMQ_PAIR)) || zmq_connect(x->mon, JOIN_MON) < 0)
        return zerr();
    for (size_t i = 0; i < inv->nendpoints; i++)
        if (zmq_connect(x->sock, inv->endpoints[i]) < 0)
            return -EINVAL; /* a malformed endpoint in a well-formed token */
    return 0;
}

/* Send JOIN and wait for the answer (malloc'd in *reply), or for a refusal of the handshake. */
static int
exchange_run(exchange_t *x, const uint8_t *join, size_t joinn, uint64_t timeout_ms,
             uint8_t **reply, size_t *replyn)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    bool sent = false;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        zmq_pollitem_t it[2] = {{x->sock, 0, sent ? ZMQ_POLLIN : ZMQ_POLLOUT, 0},
                                {x->mon, 0, ZMQ_POLLIN, 0}};
        long wait = (long)(deadline - now);
        if (zmq_poll(it, 2, wait) < 0) {
            if (errno == EINTR)
                continue;
            return zerr();
        }
        if (it[1].revents & ZMQ_POLLIN) {
            int ev = monitor_event(x->mon);
            if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
                return REP_EREFUSED;
            if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
                return -EPROTO;
        }
        if (!sent && (it[0].revents & ZMQ_POLLOUT)) {
            if (zmq_send(x->sock, join, joinn, ZMQ_DONTWAIT) < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                return zerr();
            }
            sent = true;
        } else if (sent && (it[0].revents & ZMQ_POLLIN)) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, x->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                continue;
            }
            *replyn = zmq_msg_size(&m);
            *reply = malloc(*replyn ? *replyn : 1);
            if (*reply)
                memcpy(*reply, zmq_msg_data(&m), *replyn);
            zmq_msg_close(&m);
            return *reply ? 0 : -ENOMEM;
        }
    }
}


/* Ask the node the invitation names to enroll device (pk) named name: its provisioning, with
 * sk put in (*prov malloc'd, secret), and the office's state (*snap malloc'd). */
static int
join_office(const rep__invite_t *inv, const char *name, const uint8_t pk[REP_SIGN_PK_BYTES],
            const uint8_t sk[REP_SIGN_SK_BYTES], uint64_t timeout_ms, uint8_t **prov,
            size_t *provn, uint8_t **snap, size_t *snapn, char **reason)
{
    uint8_t curve_pk[REP_CURVE_BYTES], *join = NULL, *reply = NULL;
    size_t joinn, replyn = 0;
    REP_TRY(rep__sign_to_curve(pk, NULL, curve_pk, NULL));
    REP_TRY(rep__join_encode(name, pk, curve_pk, &join, &joinn));
    exchange_t x;
    int rc = exchange_open(&x, inv);
    if (rc == 0)
        rc = exchange_run(&x, join, joinn, timeout_ms, &reply, &replyn);
    exchange_close(&x);
    free(join);
    REP_TRY(rc);
    rep__welcome_t w;
    rc = rep__join_reply_decode(reply, replyn, &w, reason);
    if (rc == 1) {
        rep__provision_t p;
        rc = rep__provision_decode(w.provision, w.provisionn, &p);
        if (rc == 0 && (memcmp(p.office, inv->office, sizeof p.office) != 0 ||
                        memcmp(p.pk, pk, sizeof p.pk) != 0))
            rc = REP_ECORRUPT; /* not what we asked for */
        if (rc == 0) {
            memcpy(p.sk, sk, sizeof p.sk);
            p.has_sk = true;
            rc = rep__provision_encode(&p, prov, provn);
        }
        rep__provision_clear(&p);
        if (rc == 0 && !(*snap = malloc(w.snapn ? w.snapn : 1)))
            rc = -ENOMEM;
        if (rc == 0) {
            memcpy(*snap, w.snap, w.snapn);
            *snapn = w.snapn;
        }
    } else if (rc == 0) {
        rc = REP_EREFUSED;
    }
    if (reply)
        rep__wipe(reply, replyn);
    free(reply);
    return rc;
}

/* Remove what rep_replica_open(CREATE) made in dir (and dir, if it made it). */
static void
unmake(const char *dir, bool made_dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "replica.id"};
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (path) {
        for (size_t i = 0; i < REP_ARRAY_LEN(files); i++) {
            snprintf(path, n, "%s/%s", dir, files[i]);
            unlink(path);
        }
        free(path);
    }
    if (made_dir)
        rmdir(dir);
}

int
rep_replica_join(const char *dir, const char *token, const rep_open_opts_t *opts,
                 uint64_t timeout_ms, rep_replica_t **out, char **reason)
{
    if (reason)
        *reason = NULL;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || !*dir || !token)
        return -EINVAL;
    REP_TRY(rep__keys_init());
    rep__invite_t inv;
    REP_TRY(rep__invite_decode(token, &inv));
    int rc = 0;
    if (inv.relay != (opts && (opts->flags & REP_OPEN_RELAY)))
        rc = REP_EROLE; /* checked before the invitation is used up */
    else if (now_ms(opts) >= inv.expires_ms)
        rc = REP_EEXPIRED;
    struct stat st;
    if (rc == 0 && stat(dir, &st) == 0) { /* an existing replica stays as it is */
        char path[4096];
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &st) == 0)
            rc = REP_EEXIST;
    }
    bool made_dir = stat(dir, &st) != 0;
    char host[REP_HOST_NAME_MAX];
    const char *name = rep__device_name(opts ? opts->device_name : NULL, host);
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES], *prov = NULL, *snap = NULL;
    size_t provn = 0, snapn = 0;
    rep__sign_keypair(pk, sk);
    char *why = NULL;
    if (rc == 0)
        rc = join_office(&inv, name, pk, sk, timeout_ms ? timeout_ms : 15000, &prov, &provn,
                         &snap, &snapn, &why);
    rep__wipe(sk, sizeof sk);
    if (reason)
        *reason = why;
    else
        free(why);
    rep_open_opts_t o = opts ? *opts : (rep_open_opts_t){0};
    o.flags |= REP_OPEN_CREATE | REP_OPEN_EXCL;
    o.provision = prov;
    o.provision_len = provn;
    rep_replica_t *r = NULL;
    if (rc == 0 && (rc = rep_replica_open(&r, dir, &o)) == 0 && snapn &&
        (rc = rep_replica_import(r, snap, snapn, NULL)) < 0) { /* a relay gets no state */
        rep_replica_close(&r);
        unmake(dir, made_dir);
    } else if (rc < 0 && rc != REP_EEXIST) {
        unmake(dir, made_dir);
    }
    if (prov)
        rep__wipe(prov, provn);
    free(prov);
    free(snap);
    rep__invite_clear(&inv);
    if (rc == 0)
        *out = r;
    return rc;
}
