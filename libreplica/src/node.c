/* node.c — the node: the sync engine over ZeroMQ. See node.h and replica.h "The node". */
#include "node.h"
#include "enroll.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "beacon.h"
#include "common.h"
#include "facade.h"
#include "keys.h"
#include "members.h"
#include "sync.h"
#include "trust.h"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93 /* a draft option in libzmq 4.3 headers; the library has it */
#endif

#define DEFAULT_MAX_MSG ((size_t)4 << 20)
#define MIN_MAX_MSG ((size_t)64 << 10)
#define MSG_MARGIN ((size_t)16 << 10) /* engine batches stay this far under ZMQ_MAXMSGSIZE */
#define HWM 64                        /* the engine's one-DATA window is the flow control */
#define VV_CHECK_MS 1000              /* the safety net: look at the vv this often */
#define RELOAD_MIN_MS 500             /* device list reloads at most this often */
#define REFUSED_LOG_MS 10000          /* one log line per refused key this often */
#define RETRY_REFUSED_MS 2000         /* a dial whose handshake was refused is retried after */
#define STATUS_VERSION 2
#define BEACON_MS 1500                /* a beacon round this often (+-25%) by default */
#define DISC_EXPIRE_MIN_MS 15000      /* a discovered endpoint not heard this long, and down, */
#define DISC_EXPIRE_ROUNDS 10         /* (or this many rounds) is forgotten */
#define DISC_LOG_MS 60000             /* a log line per ignored device (or send error) this often */
#define MAX_IFACES 64

/* ---- The node's state (the thread's own) ---- */
typedef struct dev {
    char id[REP_DEVICE_ID_SIZE];
    char *name;
    uint8_t curve_pk[REP_CURVE_BYTES];
    bool enrolled;                /* in the device list as last read */
    bool relay;                   /* its role: sent changes only */
    bool up;                      /* the engine was told it is connected */
    uint8_t rid[256];             /* ROUTER route: the connection its last message came on */
    size_t nrid;
    uint64_t rid_seen;            /* when (monotonic ms) */
    uint64_t bad_logged;          /* refused messages counted when last logged */
    uint64_t version_logged;      /* the other sync protocol version it was last logged with */
} device_t;

typedef struct dial {
    char *endpoint;
    void *sock, *mon;             /* DEALER and its monitor's PAIR; NULL while unresolved */
    int dev;                      /* index in devs, -1 while unresolved */
    bool up;                      /* handshake succeeded, not disconnected since */
    bool told_unresolved, told_refused;
    bool is_static;               /* an opts.peers entry */
    char *device;                 /* a peer given as DEVICE=ENDPOINT: the device's name or id
                                     (a relay lists no endpoint of its own); else NULL */
    uint64_t refused_at;          /* its handshake was refused then (monotonic ms): ZeroMQ does
                                     not redial after that, so it is closed and redialled
                                     RETRY_REFUSED_MS later (the peer may learn of this device
                                     meanwhile); 0 otherwise */
    int listed_dev;               /* the device whose _devices record lists it, or -1 */
    int disc_dev;                 /* the device whose beacon came from it, or -1 */
    uint64_t heard;               /* when that beacon was last taken (monotonic ms) */
} dial_t;

typedef struct refusal {
    uint8_t key[8];
    uint64_t at;
} refusal_t;

typedef struct node_state {
    rep_replica_t *r;
    rep_node_opts_t o;            /* strings below are the node's copies */
    char *listen;
    rep__node_hooks_t hooks;
    rep_node_t *front;
    void *ctx, *pipe, *router, *zap, *ctl;
    int notify_fd;
    char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char ctl_endpoint[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    uint8_t sign_pk[REP_SIGN_PK_BYTES], curve_pk[REP_CURVE_BYTES];
    char self_id[REP_DEVICE_ID_SIZE];
    char **own_endpoints;         /* this device's endpoints (never dialed) */
    size_t nown;
    rep__sync_t *sync;
    device_t *devs;
    size_t ndevs;
    dial_t *dials;
    size_t ndials;
    unsigned mon_seq;
    uint8_t *vv;                  /* the vv bytes last seen */
    size_t nvv;
    uint64_t next_vv_check, last_reload;
    uint64_t members_taken;        /* rep__sync_members_taken when the list was last read */
    uint64_t refused_connections, bad_frames;
    refusal_t refusals[16];
    unsigned nrefusal;
    bool stop;
    /* discovery (REP_NODE_DISCOVERY; beacon.h) */
    int disc_fd;                  /* the UDP socket, -1 while off */
    uint16_t listen_port;         /* the bound port announced (0: nothing to announce) */
    char listen_host[64];         /* the bound address, or an interface name */
    uint64_t next_beacon, last_beacon_ms, send_logged;
    uint32_t epoch;               /* the office key's current epoch */
    rep__beacon_key_t *bkeys;     /* the beacon subkey of every epoch held (secret) */
    size_t nbkeys;
    rep__beacon_guard_t *guard;
    rep_discovery_status_t disc;
    refusal_t disc_logged[16];    /* devices whose ignored beacons were logged lately */
    unsigned ndisc_logged;
} node_state_t;

struct rep_node {
    rep__enroll_t *enroll;        /* the hooks' state: invitations */
    void *ctx;
    void *pipe;                   /* the API's end; calls on it are serialized by lock */
    pthread_mutex_t lock;
    pthread_t thread;
    node_state_t *st;
};

static uint64_t
mono_ms(void)
{
    return rep__clock_ms(CLOCK_MONOTONIC);
}

static uint64_t
wall_ms(void)
{
    return rep__clock_ms(CLOCK_REALTIME);
}

static void nlog(node_state_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
nlog(node_state_t *n, const char *fmt, ...)
{
    if (!n->o.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    n->o.log(n->o.log_ctx, line);
}

static int
zerr(void)
{
    return errno ? -errno : -EIO;
}

/* "name (id8)" of a device, into buf. */
static const char *
dev_label(const device_t *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s (%.8s)", d->name && *d->name ? d->name : "?", d->id);
    return buf;
}

/* ---- Sockets ---- */
static int
setopt_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v) < 0 ? zerr() : 0;
}

/* The options every TCP socket of the node gets. */
static int
tcp_opts(node_state_t *n, void *s)
{
    int64_t max = (int64_t)n->o.max_msg;
    if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max) < 0)
        return zerr();
    REP_TRY(setopt_int(s, ZMQ_LINGER, 0));
    REP_TRY(setopt_int(s, ZMQ_SNDHWM, HWM));
    REP_TRY(setopt_int(s, ZMQ_RCVHWM, HWM));
    REP_TRY(setopt_int(s, ZMQ_HANDSHAKE_IVL, 5000));
    REP_TRY(setopt_int(s, ZMQ_HEARTBEAT_IVL, 1000));
    REP_TRY(setopt_int(s, ZMQ_HEARTBEAT_TIMEOUT, 5000));
    REP_TRY(setopt_int(s, ZMQ_HEARTBEAT_TTL, 6000));
    REP_TRY(setopt_int(s, ZMQ_RECONNECT_IVL, 100));
    return setopt_int(s, ZMQ_RECONNECT_IVL_MAX, 2000);
}

/* This device's CURVE keys on s (as server, or as client of server_pk). */
static int
curve_opts(node_state_t *n, void *s, const uint8_t *server_pk)
{
    uint8_t pk[REP_CURVE_BYTES], sk[REP_CURVE_BYTES];
    int rc = rep__device_keys(n->r, NULL, pk, sk);
    if (rc == 0 && (zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pk, sizeof pk) < 0 ||
                    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sk, sizeof sk) < 0))
        rc = zerr();
    rep__wipe(sk, sizeof sk);
    if (rc == 0 && server_pk &&
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pk, REP_CURVE_BYTES) < 0)
        rc = zerr();
    if (rc == 0 && !server_pk)
        rc = setopt_int(s, ZMQ_CURVE_SERVER, 1);
    return rc;
}

static void
close_sock(void **sp)
{
    if (*sp) {
        int zero = 0;
        zmq_setsockopt(*sp, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(*sp);
        *sp = NULL;
    }
}

/* Receive one whole message into frames (at most max; *nframes = how many it had). Frames
 * beyond max are received and dropped. 0, or a negative code (nothing to receive). */
static int
recv_frames(void *s, zmq_msg_t *frames, size_t max, size_t *nframes)
{
    size_t k = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, k ? 0 : ZMQ_DONTWAIT) < 0) {
            int rc = zerr();
            zmq_msg_close(&m);
            for (size_t i = 0; i < k && i < max; i++)
                zmq_msg_close(&frames[i]);
            return rc;
        }
        more = zmq_msg_more(&m);
        if (k < max)
            frames[k] = m;
        else
            zmq_msg_close(&m);
        k++;
    }
    *nframes = k;
    return 0;
}

static void
close_frames(zmq_msg_t *frames, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++)
        zmq_msg_close(&frames[i]);
}

/* ---- Devices and dials ---- */
static int
dev_find(const node_state_t *n, const char *id)
{
    for (size_t i = 0; i < n->ndevs; i++)
        if (strcmp(n->devs[i].id, id) == 0)
            return (int)i;
    return -1;
}

static uint32_t
dev_peer(size_t i)
{
    return (uint32_t)i + 1;
}

static uint64_t
route_timeout(const node_state_t *n)
{
    return 3 * n->o.anti_entropy_ms + 1000;
}

/* Tell the engine when a device comes up or goes down. */
static int
dev_update(node_state_t *n, size_t i, uint64_t now)
{
    device_t *d = &n->devs[i];
    const char *via = NULL;
    for (size_t k = 0; k < n->ndials && !via; k++)
        if (n->dials[k].dev == (int)i && n->dials[k].up)
            via = n->dials[k].endpoint;
    if (d->nrid && now - d->rid_seen > route_timeout(n))
        d->nrid = 0; /* silent too long on the ROUTER */
    if (!via && d->nrid)
        via = "an incoming connection";
    bool alive = d->enrolled && via;
    char label[128];
    if (alive && !d->up) {
        d->up = true;
        nlog(n, "peer %s up via %s", dev_label(d, label, sizeof label), via);
        int rc = rep__sync_connected(n->sync, dev_peer(i), now);
        rep__sync_relay(n->sync, dev_peer(i), d->relay);
        return rc;
    }
    if (!alive && d->up) {
        d->up = false;
        nlog(n, "peer %s down", dev_label(d, label, sizeof label));
        rep__sync_disconnected(n->sync, dev_peer(i));
    }
    return 0;
}

static void
dial_close(dial_t *dl)
{
    close_sock(&dl->sock);
    close_sock(&dl->mon);
    dl->up = false;
    dl->dev = -1;
}

/* Open the DEALER of dial k to device i (whose key is known). */
static int
dial_open(node_state_t *n, size_t k, size_t i)
{
    dial_t *dl = &n->dials[k];
    device_t *d = &n->devs[i];
    char mon[96];
    snprintf(mon, sizeof mon, "inproc://rep-node-mon-%p-%u", (void *)n, n->mon_seq++);
    int rc = 0;
    if (!(dl->sock = zmq_socket(n->ctx, ZMQ_DEALER)))
        return zerr();
    if ((rc = tcp_opts(n, dl->sock)) < 0 || (rc = setopt_int(dl->sock, ZMQ_IMMEDIATE, 1)) < 0 ||
        (rc = curve_opts(n, dl->sock, d->curve_pk)) < 0)
        goto fail;
    if (zmq_socket_monitor(dl->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0 ||
        !(dl->mon = zmq_socket(n->ctx, ZMQ_PAIR)) || zmq_connect(dl->mon, mon) < 0 ||
        zmq_connect(dl->sock, dl->endpoint) < 0) {
        rc = zerr();
        goto fail;
    }
    dl->dev = (int)i;
    dl->up = false;
    char label[128];
    nlog(n, "dialing %s: %s", dl->endpoint, dev_label(d, label, sizeof label));
    return 0;
fail:
    dial_close(dl);
    return rc;
}

static bool
is_own_endpoint(const node_state_t *n, const char *ep)
{
    if (n->listen && strcmp(n->listen, ep) == 0)
        return true;
    for (size_t i = 0; i < n->nown; i++)
        if (strcmp(n->own_endpoints[i], ep) == 0)
            return true;
    return false;
}

/* A peer "DEVICE=ENDPOINT": the length of DEVICE (a name or an id: no '=' nor spaces, at most
 * REP_MAX_DEVICE_NAME bytes); 0 for a plain endpoint. */
static size_t
peer_device_len(const char *spec)
{
    const char *eq = strchr(spec, '=');
    const char *tcp = strstr(spec, "tcp://");
    return eq && (!tcp || eq < tcp) ? (size_t)(eq - spec) : 0;
}

int
rep__peer_check(const char *spec)
{
    size_t dn = spec ? peer_device_len(spec) : 0;
    if (spec && dn == 0 && spec[0] == '=')
        return -EINVAL;
    if (dn > REP_MAX_DEVICE_NAME)
        return -EINVAL;
    for (size_t i = 0; i < dn; i++)
        if ((unsigned char)spec[i] <= ' ' || (unsigned char)spec[i] == 0x7f)
            return -EINVAL;
    return rep__endpoint_check(spec ? spec + (dn ? dn + 1 : 0) : NULL);
}

/* The dial of endpoint ep, added (unresolved) if there is none: its index in *k. */
static int
dial_get(node_state_t *n, const char *ep, size_t *k)
{
    for (*k = 0; *k < n->ndials; (*k)++)
        if (strcmp(n->dials[*k].endpoint, ep) == 0)
            return 0;
    dial_t *v = realloc(n->dials, (n->ndials + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    n->dials = v;
    dial_t *dl = &n->dials[n->ndials];
    memset(dl, 0, sizeof *dl);
    dl->dev = dl->listed_dev = dl->disc_dev = -1;
    if (!(dl->endpoint = strdup(ep)))
        return -ENOMEM;
    *k = n->ndials++;
    return 0;
}

static int
dial_add(node_state_t *n, const char *ep)
{
    size_t k;
    return dial_get(n, ep, &k);
}

/* An endpoint on every address (host 0.0.0.0, or a star): where a node listens, never where
 * another can dial it (a record may list one, written by an older version). */
static bool
is_wildcard(const char *ep)
{
    char host[64];
    uint16_t port;
    return rep__beacon_endpoint(ep, host, sizeof host, &port) == 0 &&
           (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 || strcmp(host, "::") == 0);
}

/* Open or close dial k as whom it reaches demands: the device whose beacon came from it (the
 * freshest word), else the one whose record lists it; never this device's own endpoints. */
static int
dial_resolve(node_state_t *n, size_t k, uint64_t now)
{
    dial_t *dl = &n->dials[k];
    bool own = is_own_endpoint(n, dl->endpoint);
    int want = dl->disc_dev >= 0 && n->devs[dl->disc_dev].enrolled ? dl->disc_dev
                                                                   : dl->listed_dev;
    if (own)
        want = -1;
    if (dl->dev >= 0 && dl->dev != want) {
        nlog(n, "%s is no longer an enrolled device's endpoint: hanging up", dl->endpoint);
        int was = dl->dev;
        dial_close(dl);
        REP_TRY(dev_update(n, (size_t)was, now));
    }
    if (want >= 0 && dl->dev < 0) {
        dl->told_unresolved = false;
        int rc = dial_open(n, k, (size_t)want);
        if (rc < 0)
            nlog(n, "cannot dial %s: %s", dl->endpoint, rep_strerror(rc));
    } else if (want < 0 && !dl->told_unresolved && !own) {
        dl->told_unresolved = true;
        nlog(n, "peer %s is no enrolled device's endpoint yet: retrying when the device "
                "list changes", dl->endpoint);
    }
    return 0;
}

/* Read the office's current epoch and the beacon subkeys again (a rotation changes them). */
static int
disc_keys(node_state_t *n)
{
    rep__beacon_key_t *k;
    size_t nk;
    uint32_t epoch;
    REP_TRY(rep__members_beacon_keys(n->r, &epoch, &k, &nk));
    if (n->bkeys)
        rep__wipe(n->bkeys, n->nbkeys * sizeof *n->bkeys);
    free(n->bkeys);
    n->bkeys = k;
    n->nbkeys = nk;
    n->epoch = epoch;
    return 0;
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Read the device list again: who ZAP admits, whom the dials reach. */
static int
members_reload(node_state_t *n, uint64_t now)
{
    rep__member_t *m;
    size_t nm;
    n->last_reload = now;
    REP_TRY(rep__members_list(n->r, &m, &nm));
    int rc = 0;
    for (size_t i = 0; i < n->ndevs; i++)
        n->devs[i].enrolled = false;
    for (size_t j = 0; j < nm && rc == 0; j++) {
        if (memcmp(m[j].sign_pk, n->sign_pk, sizeof n->sign_pk) == 0) { /* this device */
            strv_free(n->own_endpoints, n->nown);
            n->own_endpoints = m[j].endpoints;
            n->nown = m[j].nendpoints;
            m[j].endpoints = NULL;
            m[j].nendpoints = 0;
            continue;
        }
        int i = dev_find(n, m[j].id);
        if (i < 0) {
            device_t *v = realloc(n->devs, (n->ndevs + 1) * sizeof *v);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            n->devs = v;
            i = (int)n->ndevs++;
            memset(&v[i], 0, sizeof v[i]);
            memcpy(v[i].id, m[j].id, sizeof v[i].id);
            memcpy(v[i].curve_pk, m[j].curve_pk, sizeof v[i].curve_pk);
        }
        device_t *d = &n->devs[i];
        d->enrolled = true;
        d->relay = strcmp(m[j].role, "relay") == 0;
        free(d->name);
        d->name = m[j].name;
        m[j].name = NULL;
        if (memcmp(d->curve_pk, m[j].curve_pk, sizeof d->curve_pk) != 0) {
            memcpy(d->curve_pk, m[j].curve_pk, sizeof d->curve_pk); /* a new key: redial */
            for (size_t k = 0; k < n->ndials; k++)
                if (n->dials[k].dev == i)
                    dial_close(&n->dials[k]);
        }
        if (!(n->o.flags & REP_NODE_NO_AUTODIAL))
            for (size_t e = 0; e < m[j].nendpoints && rc == 0; e++)
                if (rep__endpoint_check(m[j].endpoints[e]) == 0 && !is_wildcard(m[j].endpoints[e]))
                    rc = dial_add(n, m[j].endpoints[e]);
    }
    /* resolve each dial to the device listing its endpoint (or whose beacon came from it) */
    for (size_t k = 0; k < n->ndials && rc == 0; k++) {
        dial_t *dl = &n->dials[k];
        int want = -1;
        for (size_t i = 0; dl->device && i < n->ndevs && want < 0; i++) /* named: by name or id */
            if (n->devs[i].enrolled && (strcmp(dl->device, n->devs[i].id) == 0 ||
                                        (n->devs[i].name && strcmp(dl->device, n->devs[i].name) == 0)))
                want = (int)i;
        for (size_t j = 0; !dl->device && j < nm && want < 0; j++)
            for (size_t e = 0; e < m[j].nendpoints && want < 0; e++)
                if (strcmp(m[j].endpoints[e], dl->endpoint) == 0)
                    want = dev_find(n, m[j].id);
        dl->listed_dev = want;
        rc = dial_resolve(n, k, now);
    }
    rep__members_free(&m, nm);
    if (rc == 0 && n->disc_fd >= 0)
        rc = disc_keys(n);
    for (size_t i = 0; i < n->ndevs && rc == 0; i++)
        rc = dev_update(n, i, now);
    return rc;
}

/* Has the vv changed since last seen? Then tell the engine and reload the device list. */
static int
vv_check(node_state_t *n, uint64_t now, bool force_reload)
{
    uint8_t *vv;
    size_t nvv;
    n->next_vv_check = now + VV_CHECK_MS;
    REP_TRY(rep_replica_vv(n->r, &vv, &nvv));
    bool same = n->vv && nvv == n->nvv && memcmp(vv, n->vv, nvv) == 0;
    free(n->vv);
    n->vv = vv;
    n->nvv = nvv;
    if (!same)
        REP_TRY(rep__sync_changed(n->sync, now));
    for (size_t k = 0; k < n->ndials; k++)
        if (n->dials[k].refused_at && now - n->dials[k].refused_at >= RETRY_REFUSED_MS) {
            n->dials[k].refused_at = 0;
            REP_TRY(dial_resolve(n, k, now));
        }
    if (!same || force_reload)
        return members_reload(n, now);
    return 0;
}

/* ---- Discovery: beacons sent and heard (beacon.h) ---- */

/* Open the UDP socket on the beacon port. Discovery is best effort: when it cannot start, the
 * node runs without it (static peers and the office's records still work) and says why. */
static void
disc_open(node_state_t *n, uint64_t now)
{
    unsigned port = n->o.beacon_port ? n->o.beacon_port : REP_BEACON_PORT;
    n->disc.port = port;
    if (n->router) {
        char ep[256];
        size_t sz = sizeof ep;
        if (zmq_getsockopt(n->router, ZMQ_LAST_ENDPOINT, ep, &sz) < 0 ||
            rep__beacon_endpoint(ep, n->listen_host, sizeof n->listen_host, &n->listen_port) < 0)
            nlog(n, "discovery: cannot tell where %s is bound: sending no beacons", n->listen);
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        !(n->guard = calloc(1, sizeof *n->guard))) {
        nlog(n, "discovery off: cannot use UDP port %u: %s", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    n->disc_fd = fd;
    n->disc.on = 1;
    n->next_beacon = now;
    if (disc_keys(n) < 0)
        nlog(n, "discovery: cannot read the office keys: sending no beacons yet");
    nlog(n, "discovery on: beacons on UDP port %u%s", port,
         n->listen_port ? "" : " heard (none sent: not listening)");
}

/* This host's IPv4 interfaces (at most max). */
static size_t
ifaces_list(rep__iface_t *out, size_t max)
{
    struct ifaddrs *all;
    if (getifaddrs(&all) < 0)
        return 0;
    size_t k = 0;
    for (struct ifaddrs *i = all; i && k < max; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_name)
            continue;
        rep__iface_t *f = &out[k];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", i->ifa_name);
        char *label = strchr(f->name, ':'); /* "eth0:1", an address label */
        if (label)
            *label = 0;
        f->index = if_nametoindex(f->name);
        f->flags = i->ifa_flags;
        memcpy(f->addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        if ((i->ifa_flags & IFF_BROADCAST) && i->ifa_broadaddr &&
            i->ifa_broadaddr->sa_family == AF_INET)
            memcpy(f->bcast, &((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr, 4);
        if (f->index)
            k++;
    }
    freeifaddrs(all);
    return k;
}

/* Send b to f's broadcast address, leaving by f with f's address as its source. */
static int
beacon_send(node_state_t *n, const rep__iface_t *f, const uint8_t b[REP_BEACON_BYTES])
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->disc.port)};
    memcpy(&to.sin_addr, f->bcast, 4);
    union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } c;
    memset(&c, 0, sizeof c);
    struct iovec iov = {(void *)b, REP_BEACON_BYTES};
    struct msghdr m = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = IPPROTO_IP;
    h->cmsg_type = IP_PKTINFO;
    h->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo pi = {.ipi_ifindex = (int)f->index};
    memcpy(&pi.ipi_spec_dst, f->addr, 4);
    memcpy(CMSG_DATA(h), &pi, sizeof pi);
    return sendmsg(n->disc_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == REP_BEACON_BYTES ? 0 : -errno;
}

static uint64_t
disc_expire_ms(const node_state_t *n)
{
    uint64_t e = DISC_EXPIRE_ROUNDS * n->o.beacon_ms;
    return e > DISC_EXPIRE_MIN_MS ? e : DISC_EXPIRE_MIN_MS;
}

/* Forget discovered endpoints whose device has not beaconed from them for a while and that
 * are down (a workstation moved, or left): nothing else lists them. */
static int
disc_expire(node_state_t *n, uint64_t now)
{
    for (size_t k = 0; k < n->ndials;) {
        dial_t *dl = &n->dials[k];
        if (dl->disc_dev < 0 || now - dl->heard <= disc_expire_ms(n) || dl->up) {
            k++;
            continue;
        }
        dl->disc_dev = -1;
        if (dl->listed_dev >= 0 || dl->is_static) { /* still dialed, for its other reason */
            REP_TRY(dial_resolve(n, k, now));
            k++;
            continue;
        }
        nlog(n, "forgetting %s: no beacon from it for %llu s", dl->endpoint,
             (unsigned long long)((now - dl->heard) / 1000));
        int was = dl->dev;
        dial_close(dl);
        free(dl->endpoint);
        free(dl->device);
        memmove(dl, dl + 1, (n->ndials - k - 1) * sizeof *dl);
        n->ndials--;
        if (was >= 0)
            REP_TRY(dev_update(n, (size_t)was, now));
    }
    return 0;
}

/* A round: a beacon on each interface the node listens on, then expiry. */
static int
disc_round(node_state_t *n, uint64_t now)
{
    uint32_t r;
    rep__random(&r, sizeof r);
    uint64_t ms = n->o.beacon_ms;
    n->next_beacon = now + ms - ms / 4 + (ms / 2 ? r % (ms / 2) : 0);
    const uint8_t *key = NULL;
    for (size_t i = 0; i < n->nbkeys && !key; i++)
        if (n->bkeys[i].epoch == n->epoch)
            key = n->bkeys[i].key;
    if (n->listen_port && key) {
        rep__iface_t ifs[MAX_IFACES];
        size_t nif = ifaces_list(ifs, MAX_IFACES), pick[MAX_IFACES];
        size_t np = rep__beacon_pick(ifs, nif, n->listen_host, pick);
        uint64_t t = wall_ms();
        n->last_beacon_ms = t = t > n->last_beacon_ms ? t : n->last_beacon_ms + 1;
        for (size_t j = 0; j < np; j++) {
            const rep__iface_t *f = &ifs[pick[j]];
            rep__beacon_t b = {.epoch = n->epoch, .family = 4, .port = n->listen_port,
                               .time_ms = t};
            memcpy(b.device, n->sign_pk, sizeof b.device);
            memcpy(b.addr, f->addr, 4);
            uint8_t p[REP_BEACON_BYTES];
            int rc = rep__beacon_encode(p, &b, n->r->office, key);
            if (rc == 0)
                rc = beacon_send(n, f, p);
            if (rc == 0) {
                n->disc.sent++;
            } else if (!n->send_logged || now - n->send_logged >= DISC_LOG_MS) {
                n->send_logged = now;
                nlog(n, "discovery: cannot send a beacon on %s: %s", f->name, rep_strerror(rc));
            }
        }
    }
    return disc_expire(n, now);
}

/* May a line about the ignored beacons of this device be logged (at most one per
 * DISC_LOG_MS for each of the last few devices)? */
static bool
disc_log_ok(node_state_t *n, const uint8_t device[REP_SIGN_PK_BYTES], uint64_t now)
{
    for (unsigned i = 0; i < REP_ARRAY_LEN(n->disc_logged); i++) {
        refusal_t *f = &n->disc_logged[i];
        if (memcmp(f->key, device, sizeof f->key) == 0 && f->at && now - f->at < DISC_LOG_MS)
            return false;
    }
    refusal_t *f = &n->disc_logged[n->ndisc_logged++ % REP_ARRAY_LEN(n->disc_logged)];
    memcpy(f->key, device, sizeof f->key);
    f->at = now;
    return true;
}

/* One datagram heard on the beacon port, from (src, 4 bytes). */
static int
disc_take(node_state_t *n, const uint8_t *p, size_t len, const uint8_t src[4], uint64_t now)
{
    rep__beacon_t b;
    int rc = rep__beacon_open(p, len, n->r->office, n->bkeys, n->nbkeys, &b);
    switch (rc) {
    case 0: break;
    case REP_EOFFICE: n->disc.other_office++; return 0;
    case REP_EKEY: n->disc.no_key++; return 0;
    case REP_EAUTH: n->disc.forged++; return 0;
    default: n->disc.malformed++; return 0;
    }
    if (memcmp(b.device, n->sign_pk, sizeof n->sign_pk) == 0)
        return 0; /* our own, heard back */
    char id[REP_DEVICE_ID_SIZE], ip[INET_ADDRSTRLEN] = "?", label[128];
    rep__hex(id, b.device, sizeof b.device);
    inet_ntop(AF_INET, src, ip, sizeof ip);
    int i = dev_find(n, id);
    if ((i < 0 || !n->devs[i].enrolled) && now - n->last_reload >= RELOAD_MIN_MS) {
        REP_TRY(members_reload(n, now)); /* enrolled a moment ago? */
        i = dev_find(n, id);
    }
    if (i < 0 || !n->devs[i].enrolled) {
        n->disc.strangers++;
        if (disc_log_ok(n, b.device, now))
            nlog(n, "ignoring the beacons of device %.8s from %s: not a member of this office "
                    "(revoked, or not yet known here)", id, ip);
        return 0;
    }
    device_t *d = &n->devs[i];
    uint8_t from[16] = {0};
    memcpy(from, src, 4);
    uint64_t wall = wall_ms();
    rc = rep__beacon_admit(n->guard, &b, 4, from, wall, REP_BEACON_WINDOW_MS);
    if (rc < 0) {
        if (rc == REP_EEXPIRED)
            n->disc.stale++;
        else if (rc == REP_EEXIST)
            n->disc.replayed++;
        else
            n->disc.misaddressed++;
        if (rc != REP_EEXIST && disc_log_ok(n, b.device, now)) {
            if (rc == REP_EEXPIRED)
                nlog(n, "ignoring the beacons of %s from %s: its clock is %lld s off ours",
                     dev_label(d, label, sizeof label), ip,
                     (long long)((int64_t)(b.time_ms - wall) / 1000));
            else
                nlog(n, "ignoring a beacon of %s from %s: it names another address",
                     dev_label(d, label, sizeof label), ip);
        }
        return 0;
    }
    n->disc.taken++;
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://%s:%u", ip, (unsigned)b.port);
    size_t k;
    REP_TRY(dial_get(n, ep, &k));
    dial_t *dl = &n->dials[k];
    dl->heard = now;
    if (dl->disc_dev != i) {
        dl->disc_dev = i;
        nlog(n, "discovered %s at %s", dev_label(d, label, sizeof label), ep);
    }
    return dial_resolve(n, k, now);
}

static int
on_beacon(node_state_t *n, uint64_t now)
{
    for (int burst = 0; burst < 64; burst++) {
        uint8_t buf[512];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t k = recvfrom(n->disc_fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from,
                             &fl);
        if (k < 0)
            break;
        if (fl < sizeof from || from.sin_family != AF_INET)
            continue;
        REP_TRY(disc_take(n, buf, (size_t)k, (const uint8_t *)&from.sin_addr, now));
    }
    return 0;
}

/* ---- Sending what the engine wants sent ---- */
static int
send_dev(node_state_t *n, size_t i, const uint8_t *msg, size_t len)
{
    device_t *d = &n->devs[i];
    for (size_t k = 0; k < n->ndials; k++) {
        dial_t *dl = &n->dials[k];
        if (dl->dev == (int)i && dl->up && zmq_send(dl->sock, msg, len, ZMQ_DONTWAIT) == (int)len)
            return 0;
    }
    if (d->nrid) {
        if (zmq_send(n->router, d->rid, d->nrid, ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)d->nrid)
            return zmq_send(n->router, msg, len, ZMQ_DONTWAIT) == (int)len ? 0 : zerr();
        if (errno == EHOSTUNREACH)
            d->nrid = 0; /* that connection is gone */
    }
    return -EAGAIN; /* dropped: the engine's timeouts and anti-entropy recover */
}

static int
flush(node_state_t *n, uint64_t now)
{
    uint32_t peer;
    uint8_t *msg;
    size_t len;
    while (rep__sync_take(n->sync, &peer, &msg, &len) == 1) {
        if (peer >= 1 && peer <= n->ndevs)
            (void)send_dev(n, peer - 1, msg, len);
        free(msg);
    }
    for (size_t i = 0; i < n->ndevs; i++)
        REP_TRY(dev_update(n, i, now));
    return 0;
}

/* A message from device i for the engine. */
static int
to_engine(node_state_t *n, size_t i, const zmq_msg_t *m, uint64_t now)
{
    device_t *d = &n->devs[i];
    REP_TRY(dev_update(n, i, now));
    if (!d->up)
        return 0;
    REP_TRY(rep__sync_received(n->sync, dev_peer(i), zmq_msg_data((zmq_msg_t *)m),
                               zmq_msg_size((zmq_msg_t *)m), now));
    uint64_t members = rep__sync_members_taken(n->sync);
    if (members != n->members_taken) { /* enrolled or revoked: whom ZAP admits, at once */
        n->members_taken = members;
        REP_TRY(members_reload(n, now));
        d = &n->devs[i]; /* the list may have grown */
    }
    rep__sync_peer_info_t info;
    if (rep__sync_peer(n->sync, dev_peer(i), &info) != 0)
        return 0;
    if (info.version && info.version != d->version_logged) {
        char label[128];
        nlog(n, "%s speaks sync protocol version %llu, this node version %d: its messages are "
             "refused until both run the same libreplica",
             dev_label(d, label, sizeof label), (unsigned long long)info.version,
             REP_SYNC_VERSION);
        d->version_logged = info.version;
    }
    if (info.bad > d->bad_logged) {
        char label[128];
        nlog(n, "refused %llu malformed or foreign message(s) from %s",
             (unsigned long long)(info.bad - d->bad_logged), dev_label(d, label, sizeof label));
        d->bad_logged = info.bad;
    }
    return 0;
}

static bool
is_device_id(const char *s)
{
    if (strlen(s) != REP_DEVICE_ID_CHARS)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static int
on_router(node_state_t *n, uint64_t now)
{
    zmq_msg_t f[2];
    size_t k;
    if (recv_frames(n->router, f, 2, &k) < 0)
        return 0;
    int rc = 0;
    const char *user = k == 2 ? zmq_msg_gets(&f[1], "User-Id") : NULL;
    int i = user && is_device_id(user) ? dev_find(n, user) : -1;
    if (k != 2 || zmq_msg_size(&f[0]) > sizeof n->devs[0].rid || !user) {
        n->bad_frames++;
    } else if (i >= 0 && n->devs[i].enrolled) {
        device_t *d = &n->devs[i];
        d->nrid = zmq_msg_size(&f[0]);
        memcpy(d->rid, zmq_msg_data(&f[0]), d->nrid);
        d->rid_seen = now;
        rc = to_engine(n, (size_t)i, &f[1], now);
    } else if (!is_device_id(user) && n->hooks.message) {
        rep__node_conn_t c = {zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), user};
        n->hooks.message(n->hooks.ctx, n->front, &c, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]));
    } else {
        n->bad_frames++; /* a device no longer enrolled */
    }
    close_frames(f, k, 2);
    return rc;
}

static int
on_dealer(node_state_t *n, size_t k, uint64_t now)
{
    zmq_msg_t f[1];
    size_t nf;
    if (recv_frames(n->dials[k].sock, f, 1, &nf) < 0)
        return 0;
    int rc = 0, i = n->dials[k].dev;
    if (nf != 1 || i < 0 || !n->devs[i].enrolled)
        n->bad_frames++;
    else
        rc = to_engine(n, (size_t)i, &f[0], now);
    close_frames(f, nf, 1);
    return rc;
}

static int
on_monitor(node_state_t *n, size_t k, uint64_t now)
{
    dial_t *dl = &n->dials[k];
    zmq_msg_t f[2];
    size_t nf;
    if (recv_frames(dl->mon, f, 2, &nf) < 0)
        return 0;
    uint16_t ev = 0;
    if (nf >= 1 && zmq_msg_size(&f[0]) >= 2)
        memcpy(&ev, zmq_msg_data(&f[0]), 2);
    close_frames(f, nf, 2);
    if (dl->dev < 0)
        return 0;
    if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        dl->up = true;
        dl->told_refused = false;
    } else if (ev == ZMQ_EVENT_DISCONNECTED) {
        dl->up = false;
    } else {
        if (!dl->told_refused) {
            dl->told_refused = true;
            nlog(n, "%s refused this device (%s): it is not enrolled there yet, or the key "
                    "that endpoint's device has here is not the one it uses: retrying",
                 dl->endpoint,
                 ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "authentication" : "handshake");
        }
        int was = dl->dev;
        dial_close(dl); /* vv_check resolves it again, and opens it */
        dl->refused_at = now ? now : 1;
        return dev_update(n, (size_t)was, now);
    }
    return dev_update(n, (size_t)dl->dev, now);
}

/* ---- ZAP: only enrolled devices ---- */
static void
log_refusal(node_state_t *n, const uint8_t key[32], const char *address, uint64_t now)
{
    for (unsigned i = 0; i < REP_ARRAY_LEN(n->refusals); i++) {
        refusal_t *f = &n->refusals[i];
        if (memcmp(f->key, key, sizeof f->key) == 0 && f->at && now - f->at < REFUSED_LOG_MS)
            return;
    }
    refusal_t *f = &n->refusals[n->nrefusal++ % REP_ARRAY_LEN(n->refusals)];
    memcpy(f->key, key, sizeof f->key);
    f->at = now;
    char hex[17];
    rep__hex(hex, key, 8);
    nlog(n, "refused a connection from %s: CURVE key %s... is not an enrolled device of this "
            "office", address, hex);
}

static int
zap_lookup(node_state_t *n, const uint8_t key[32])
{
    for (size_t i = 0; i < n->ndevs; i++)
        if (n->devs[i].enrolled && memcmp(n->devs[i].curve_pk, key, 32) == 0)
            return (int)i;
    return -1;
}

static int
on_zap(node_state_t *n, uint64_t now)
{
    zmq_msg_t f[8];
    size_t k;
    if (recv_frames(n->zap, f, 8, &k) < 0)
        return 0;
    if (k < 2) { /* not a ZAP request: REP cannot answer it sensibly */
        close_frames(f, k, 8);
        zmq_send(n->zap, "", 0, 0);
        return 0;
    }
    const char *status = "400", *text = "not enrolled in this office";
    char user[REP_NODE_USER_MAX] = "";
    char address[64] = "?";
    if (k == 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&f[6]) == 32) {
        const uint8_t *key = zmq_msg_data(&f[6]);
        snprintf(address, sizeof address, "%.*s", (int)zmq_msg_size(&f[3]),
                 (const char *)zmq_msg_data(&f[3]));
        int i = zap_lookup(n, key);
        if (i < 0 && now - n->last_reload >= RELOAD_MIN_MS) {
            REP_TRY(members_reload(n, now)); /* enrolled a moment ago? */
            i = zap_lookup(n, key);
        } else if (i < 0) {
            /* reloaded less than RELOAD_MIN_MS ago: still look again if the replica changed
             * since (a device just enrolled by invitation dials at once); a vv read is cheap,
             * so a stranger cannot make us reread the list more often than the office writes */
            REP_TRY(vv_check(n, now, false));
            i = zap_lookup(n, key);
        }
        if (i >= 0) {
            status = "200";
            text = "OK";
            snprintf(user, sizeof user, "%s", n->devs[i].id);
        } else if (n->hooks.admit && n->hooks.admit(n->hooks.ctx, key, address, user) == 1 &&
                   !is_device_id(user)) {
            status = "200";
            text = "OK";
        } else {
            user[0] = 0;
            n->refused_connections++;
            log_refusal(n, key, address, now);
        }
    }
    zmq_send(n->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(n->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
    zmq_send(n->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(n->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(n->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(n->zap, "", 0, 0);
    close_frames(f, k, 8);
    return 0;
}

/* ---- Status ---- */
static void
pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s ? s : "", n);
}

/* [2, listen, device id, refused connections, bad frames,
 *  [[endpoint, device id, name, connected, last seen (wall ms), behind, sent, received,
 *    refused, discovered]...],
 *  [discovery on, port, sent, taken, other office, malformed, forged, no key, strangers,
 *   misaddressed, stale, replayed]]
 * (version 1 had neither discovered nor the discovery array) */
static int
status_encode(node_state_t *n, uint64_t now, uint8_t **out, size_t *len)
{
    uint64_t wall = wall_ms();
    size_t count = 0;
    for (size_t i = 0; i < n->ndevs; i++)
        count++;
    for (size_t k = 0; k < n->ndials; k++)
        if (n->dials[k].dev < 0 && !is_own_endpoint(n, n->dials[k].endpoint))
            count++;
    rep__buf_t b;
    msgpack_packer pk;
    rep__buf_init(&b);
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, STATUS_VERSION);
    pack_str(&pk, n->listen);
    pack_str(&pk, n->self_id);
    msgpack_pack_uint64(&pk, n->refused_connections);
    msgpack_pack_uint64(&pk, n->bad_frames);
    msgpack_pack_array(&pk, count);
    for (size_t i = 0; i < n->ndevs; i++) {
        const device_t *d = &n->devs[i];
        const dial_t *via = NULL; /* a dial of it that is up, else the last one */
        for (size_t k = 0; k < n->ndials; k++)
            if (n->dials[k].dev == (int)i && (!via || !via->up))
                via = &n->dials[k];
        const char *ep = via ? via->endpoint : "";
        rep__sync_peer_info_t info = {0};
        (void)rep__sync_peer(n->sync, dev_peer(i), &info);
        uint64_t seen = info.last_seen_ms && info.last_seen_ms <= now
                            ? wall - (now - info.last_seen_ms) : 0;
        msgpack_pack_array(&pk, 10);
        pack_str(&pk, ep);
        pack_str(&pk, d->id);
        pack_str(&pk, d->name);
        msgpack_pack_uint8(&pk, d->up ? 1 : 0);
        msgpack_pack_uint64(&pk, seen);
        msgpack_pack_uint64(&pk, info.behind);
        msgpack_pack_uint64(&pk, info.sent_bytes);
        msgpack_pack_uint64(&pk, info.received_bytes);
        msgpack_pack_uint64(&pk, info.bad);
        msgpack_pack_uint8(&pk, via && via->disc_dev == (int)i ? 1 : 0);
    }
    for (size_t k = 0; k < n->ndials; k++) {
        if (n->dials[k].dev >= 0 || is_own_endpoint(n, n->dials[k].endpoint))
            continue;
        msgpack_pack_array(&pk, 10);
        pack_str(&pk, n->dials[k].endpoint);
        pack_str(&pk, "");
        pack_str(&pk, "");
        for (int j = 0; j < 7; j++)
            msgpack_pack_uint8(&pk, 0);
    }
    const rep_discovery_status_t *ds = &n->disc;
    uint64_t dv[] = {ds->sent,      ds->taken,    ds->other_office, ds->malformed,
                     ds->forged,    ds->no_key,   ds->strangers,    ds->misaddressed,
                     ds->stale,     ds->replayed};
    msgpack_pack_array(&pk, 2 + REP_ARRAY_LEN(dv));
    msgpack_pack_uint8(&pk, ds->on ? 1 : 0);
    msgpack_pack_uint32(&pk, ds->port);
    for (size_t j = 0; j < REP_ARRAY_LEN(dv); j++)
        msgpack_pack_uint64(&pk, dv[j]);
    REP_TRY(b.err);
    *out = rep__buf_take(&b, len);
    return *out ? 0 : -ENOMEM;
}

static int
rd_strdup(rep__rd_t *r, char **out)
{
    const char *s;
    uint32_t n;
    REP_TRY(rep__rd_str(r, &s, &n));
    return (*out = rep__strndup(s, n)) ? 0 : -ENOMEM;
}

static int
rd_id(rep__rd_t *r, char id[REP_DEVICE_ID_SIZE])
{
    const char *s;
    uint32_t n;
    REP_TRY(rep__rd_str(r, &s, &n));
    if (n >= REP_DEVICE_ID_SIZE)
        return REP_ECORRUPT;
    memcpy(id, s, n);
    id[n] = 0;
    return 0;
}

static int
status_decode(const uint8_t *p, size_t len, rep_node_status_t **out)
{
    *out = NULL;
    rep_node_status_t *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    rep__rd_t r;
    rep__rd_init(&r, p, len);
    uint32_t items = 0, npeers = 0;
    uint64_t version = 0, connected = 0;
    int rc = rep__rd_array(&r, &items);
    if (rc == 0 && items != 6 && items != 7)
        rc = REP_ECORRUPT;
    if (rc == 0)
        rc = rep__rd_uint(&r, &version);
    if (rc == 0 && (version < 1 || version > STATUS_VERSION))
        rc = REP_EVERSION;
    if (rc == 0 && items != (version == 1 ? 6 : 7))
        rc = REP_ECORRUPT;
    uint32_t peer_items = version == 1 ? 9 : 10;
    if (rc == 0)
        rc = rd_strdup(&r, (char **)&st->listen);
    if (rc == 0)
        rc = rd_id(&r, st->device_id);
    if (rc == 0)
        rc = rep__rd_uint(&r, &st->refused_connections);
    if (rc == 0)
        rc = rep__rd_uint(&r, &st->bad_frames);
    if (rc == 0)
        rc = rep__rd_array(&r, &npeers);
    if (rc == 0 && npeers && !(st->peers = calloc(npeers, sizeof *st->peers)))
        rc = -ENOMEM;
    for (uint32_t i = 0; i < npeers && rc == 0; i++, st->npeers++) {
        rep_peer_status_t *ps = &st->peers[i];
        rc = rep__rd_array(&r, &items);
        if (rc == 0 && items != peer_items)
            rc = REP_ECORRUPT;
        if (rc == 0)
            rc = rd_strdup(&r, (char **)&ps->endpoint);
        if (rc == 0)
            rc = rd_id(&r, ps->device_id);
        if (rc == 0)
            rc = rd_strdup(&r, (char **)&ps->device_name);
        if (rc == 0)
            rc = rep__rd_uint(&r, &connected);
        ps->connected = connected != 0;
        uint64_t *nums[] = {&ps->last_seen_ms, &ps->behind, &ps->sent_bytes,
                            &ps->received_bytes, &ps->refused};
        for (size_t j = 0; j < REP_ARRAY_LEN(nums) && rc == 0; j++)
            rc = rep__rd_uint(&r, nums[j]);
        uint64_t disc = 0;
        if (rc == 0 && peer_items == 10)
            rc = rep__rd_uint(&r, &disc);
        ps->discovered = disc != 0;
    }
    if (rc == 0 && version >= 2) {
        rep_discovery_status_t *ds = &st->discovery;
        uint64_t on = 0, port = 0;
        uint64_t *dv[] = {&ds->sent,   &ds->taken,  &ds->other_office, &ds->malformed,
                          &ds->forged, &ds->no_key, &ds->strangers,    &ds->misaddressed,
                          &ds->stale,  &ds->replayed};
        rc = rep__rd_array(&r, &items);
        if (rc == 0 && items != 2 + REP_ARRAY_LEN(dv))
            rc = REP_ECORRUPT;
        if (rc == 0)
            rc = rep__rd_uint(&r, &on);
        if (rc == 0)
            rc = rep__rd_uint(&r, &port);
        if (rc == 0 && port > 65535)
            rc = REP_ECORRUPT;
        for (size_t j = 0; j < REP_ARRAY_LEN(dv) && rc == 0; j++)
            rc = rep__rd_uint(&r, dv[j]);
        ds->on = on != 0;
        ds->port = (unsigned)port;
    }
    if (rc == 0 && rep__rd_left(&r))
        rc = REP_ECORRUPT;
    if (rc < 0) {
        rep_node_status_free(&st);
        return rc;
    }
    *out = st;
    return 0;
}

void
rep_node_status_free(rep_node_status_t **sp)
{
    if (!sp || !*sp)
        return;
    rep_node_status_t *st = *sp;
    for (size_t i = 0; i < st->npeers; i++) {
        free((char *)st->peers[i].endpoint);
        free((char *)st->peers[i].device_name);
    }
    free(st->peers);
    free((char *)st->listen);
    free(st);
    *sp = NULL;
}

/* ---- Control socket and pipe ---- */
static int
on_control(node_state_t *n, uint64_t now)
{
    zmq_msg_t f[9];
    size_t k;
    if (recv_frames(n->ctl, f, 9, &k) < 0)
        return 0;
    char verb[32] = "";
    if (zmq_msg_size(&f[0]) < sizeof verb)
        memcpy(verb, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]));
    uint8_t *body = NULL;
    size_t nbody = 0;
    int rc;
    if (k > 9) {
        rc = -E2BIG;
    } else if (strcmp(verb, "status") == 0) {
        rc = status_encode(n, now, &body, &nbody);
    } else if (n->hooks.control) {
        const uint8_t *args[8];
        size_t argn[8];
        for (size_t i = 1; i < k; i++) {
            args[i - 1] = zmq_msg_data(&f[i]);
            argn[i - 1] = zmq_msg_size(&f[i]);
        }
        rep__buf_t b;
        rep__buf_init(&b);
        rc = n->hooks.control(n->hooks.ctx, n->front, verb, args, argn, k - 1, &b);
        if (rc == 0 && (rc = b.err) == 0)
            body = rep__buf_take(&b, &nbody);
        rep__buf_free(&b);
    } else {
        rc = -EOPNOTSUPP;
    }
    close_frames(f, k, 9);
    if (rc == 0) {
        zmq_send(n->ctl, "ok", 2, ZMQ_SNDMORE);
        zmq_send(n->ctl, body ? (void *)body : "", nbody, 0);
    } else {
        const char *e = rc == -EOPNOTSUPP ? "unknown request" : rep_strerror(rc);
        zmq_send(n->ctl, "error", 5, ZMQ_SNDMORE);
        zmq_send(n->ctl, e, strlen(e), 0);
    }
    free(body);
    return 0;
}

/* From the API: "stop", or "status" (answered with the encoded status, or an empty frame). */
static void
on_pipe(node_state_t *n, uint64_t now)
{
    zmq_msg_t f[1];
    size_t k;
    if (recv_frames(n->pipe, f, 1, &k) < 0)
        return;
    bool status = zmq_msg_size(&f[0]) == 6 && memcmp(zmq_msg_data(&f[0]), "status", 6) == 0;
    close_frames(f, k, 1);
    if (!status) {
        n->stop = true;
        return;
    }
    uint8_t *body = NULL;
    size_t nbody = 0;
    if (status_encode(n, now, &body, &nbody) < 0)
        nbody = 0;
    zmq_send(n->pipe, body ? (void *)body : "", nbody, 0);
    free(body);
}

static void
on_notify(node_state_t *n, uint64_t now)
{
    char buf[16];
    while (recv(n->notify_fd, buf, sizeof buf, MSG_DONTWAIT) >= 0)
        ; /* many commits, one look at the vv */
    int rc = rep__sync_changed(n->sync, now);
    if (rc < 0)
        nlog(n, "reading the replica failed: %s", rep_strerror(rc));
    if (n->next_vv_check > now + 100) /* soon: the device list may have changed (earlier, */
        n->next_vv_check = now + 100; /* never later: steady commits must not starve it) */
}

/* ---- The thread ---- */
static int
setup(node_state_t *n)
{
    uint64_t now = mono_ms();
    REP_TRY(rep__device_keys(n->r, n->sign_pk, n->curve_pk, NULL));
    rep__hex(n->self_id, n->sign_pk, sizeof n->sign_pk);
    rep__sync_opts_t so;
    rep__sync_opts_default(&so);
    so.max_msg = n->o.max_msg - MSG_MARGIN;
    so.anti_entropy_ms = n->o.anti_entropy_ms;
    REP_TRY(rep__sync_new(n->r, &so, &n->sync));

    /* the notify socket: bound first, so a second node on this directory stops here */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, n->notify_path, sizeof a.sun_path);
    if ((n->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (bind(n->notify_fd, (struct sockaddr *)&a, sizeof a) < 0)
        return errno == EADDRINUSE ? REP_EBUSY : -errno;

    /* ZAP before the ROUTER, so no connection is ever admitted without it */
    if (!(n->zap = zmq_socket(n->ctx, ZMQ_REP)) || setopt_int(n->zap, ZMQ_LINGER, 0) < 0 ||
        zmq_bind(n->zap, "inproc://zeromq.zap.01") < 0)
        return zerr();
    int64_t ctl_max = 65536;
    if (!(n->ctl = zmq_socket(n->ctx, ZMQ_REP)) || setopt_int(n->ctl, ZMQ_LINGER, 0) < 0 ||
        zmq_setsockopt(n->ctl, ZMQ_MAXMSGSIZE, &ctl_max, sizeof ctl_max) < 0 ||
        zmq_bind(n->ctl, n->ctl_endpoint) < 0)
        return zerr();
    if (n->listen) {
        char domain[2 * REP_OFFICE_ID_BYTES + 1];
        rep__hex(domain, n->r->office, sizeof n->r->office);
        if (!(n->router = zmq_socket(n->ctx, ZMQ_ROUTER)))
            return zerr();
        REP_TRY(tcp_opts(n, n->router));
        REP_TRY(setopt_int(n->router, ZMQ_ROUTER_MANDATORY, 1));
        REP_TRY(curve_opts(n, n->router, NULL));
        if (zmq_setsockopt(n->router, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0)
            return zerr();
        REP_TRY(setopt_int(n->router, ZMQ_ZAP_ENFORCE_DOMAIN, 1));
        if (zmq_bind(n->router, n->listen) < 0)
            return zerr();
    }
    for (size_t i = 0; i < n->o.npeers; i++) {
        const char *spec = n->o.peers[i];
        size_t k, dn = peer_device_len(spec);
        REP_TRY(dial_get(n, dn ? spec + dn + 1 : spec, &k));
        n->dials[k].is_static = true;
        if (dn && !n->dials[k].device && !(n->dials[k].device = rep__strndup(spec, dn)))
            return -ENOMEM;
    }
    char label[64];
    snprintf(label, sizeof label, "%.8s", n->self_id);
    nlog(n, "node of device %s (%s) %s%s", n->r->device_name ? n->r->device_name : "?", label,
         n->listen ? "listening on " : "not listening", n->listen ? n->listen : "");
    if (n->o.flags & REP_NODE_DISCOVERY)
        disc_open(n, now);
    n->last_reload = now;
    return vv_check(n, now, true);
}

static void
teardown(node_state_t *n)
{
    for (size_t k = 0; k < n->ndials; k++) {
        dial_close(&n->dials[k]);
        free(n->dials[k].endpoint);
        free(n->dials[k].device);
    }
    free(n->dials);
    n->dials = NULL;
    n->ndials = 0;
    close_sock(&n->router);
    close_sock(&n->zap);
    if (n->ctl) {
        close_sock(&n->ctl);
        unlink(n->ctl_endpoint + strlen("ipc://"));
    }
    if (n->notify_fd >= 0) {
        close(n->notify_fd);
        unlink(n->notify_path);
        n->notify_fd = -1;
    }
    if (n->disc_fd >= 0) {
        close(n->disc_fd);
        n->disc_fd = -1;
        n->disc.on = 0;
    }
}

static int
loop(node_state_t *n)
{
    while (!n->stop) {
        uint64_t now = mono_ms(), next = UINT64_MAX;
        if (n->disc_fd >= 0 && now >= n->next_beacon)
            REP_TRY(disc_round(n, now));
        REP_TRY(rep__sync_tick(n->sync, now, &next));
        REP_TRY(flush(n, now));
        if (n->next_vv_check < next)
            next = n->next_vv_check;
        if (n->disc_fd >= 0 && n->next_beacon < next)
            next = n->next_beacon;
        for (size_t i = 0; i < n->ndevs; i++) /* a silent ROUTER route expires */
            if (n->devs[i].nrid && n->devs[i].rid_seen + route_timeout(n) < next)
                next = n->devs[i].rid_seen + route_timeout(n) + 1;
        long timeout = next <= now ? 0 : next - now > 1000 ? 1000 : (long)(next - now);

        size_t cap = 6 + n->ndials * 2;
        zmq_pollitem_t items[cap];
        size_t ni = 0;
        items[ni++] = (zmq_pollitem_t){n->pipe, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){n->zap, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){n->ctl, 0, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){NULL, n->notify_fd, ZMQ_POLLIN, 0};
        items[ni++] = (zmq_pollitem_t){n->router, 0, n->router ? ZMQ_POLLIN : 0, 0};
        if (!n->router)
            items[ni - 1] = (zmq_pollitem_t){NULL, -1, 0, 0};
        items[ni++] = (zmq_pollitem_t){NULL, n->disc_fd, n->disc_fd >= 0 ? ZMQ_POLLIN : 0, 0};
        size_t first_dial = ni;
        for (size_t k = 0; k < n->ndials; k++) {
            dial_t *dl = &n->dials[k];
            items[ni++] = (zmq_pollitem_t){dl->sock, -1, dl->sock ? ZMQ_POLLIN : 0, 0};
            items[ni++] = (zmq_pollitem_t){dl->mon, -1, dl->mon ? ZMQ_POLLIN : 0, 0};
        }
        size_t ndials = n->ndials; /* handlers may add dials: poll only these */
        if (zmq_poll(items, (int)ni, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return zerr();
        }
        now = mono_ms();
        if (items[0].revents & ZMQ_POLLIN)
            on_pipe(n, now);
        if (items[1].revents & ZMQ_POLLIN)
            REP_TRY(on_zap(n, now));
        if (items[2].revents & ZMQ_POLLIN)
            REP_TRY(on_control(n, now));
        if (items[3].revents & ZMQ_POLLIN)
            on_notify(n, now);
        if ((items[5].revents & ZMQ_POLLIN) && n->disc_fd >= 0)
            REP_TRY(on_beacon(n, now));
        for (int burst = 0; burst < 64 && (items[4].revents & ZMQ_POLLIN); burst++) {
            uint32_t ev;
            size_t sz = sizeof ev;
            REP_TRY(on_router(n, now));
            REP_TRY(flush(n, now));
            if (zmq_getsockopt(n->router, ZMQ_EVENTS, &ev, &sz) < 0 || !(ev & ZMQ_POLLIN))
                break;
        }
        for (size_t k = 0; k < ndials; k++) {
            size_t it = first_dial + 2 * k;
            if ((items[it + 1].revents & ZMQ_POLLIN) && n->dials[k].mon)
                REP_TRY(on_monitor(n, k, now));
            for (int burst = 0; burst < 64 && (items[it].revents & ZMQ_POLLIN) &&
                                n->dials[k].sock;
                 burst++) {
                uint32_t ev;
                size_t sz = sizeof ev;
                REP_TRY(on_dealer(n, k, now));
                REP_TRY(flush(n, now));
                if (!n->dials[k].sock ||
                    zmq_getsockopt(n->dials[k].sock, ZMQ_EVENTS, &ev, &sz) < 0 ||
                    !(ev & ZMQ_POLLIN))
                    break;
            }
        }
        if (now >= n->next_vv_check) {
            int rc = vv_check(n, now, false);
            if (rc < 0)
                nlog(n, "reading the replica failed: %s", rep_strerror(rc));
        }
        REP_TRY(flush(n, now));
    }
    return 0;
}

static void *
node_main(void *arg)
{
    node_state_t *n = arg;
    int rc = -EIO;
    if ((n->pipe = zmq_socket(n->ctx, ZMQ_PAIR))) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://rep-node-%p", (void *)n->front);
        if (zmq_connect(n->pipe, ep) < 0)
            close_sock(&n->pipe);
    }
    if (n->pipe) {
        rc = setup(n);
        zmq_send(n->pipe, &rc, sizeof rc, 0);
        if (rc == 0) {
            rc = loop(n);
            if (rc < 0) {
                nlog(n, "node failed: %s", rep_strerror(rc));
                teardown(n);
                /* wait for the API's stop, answering status requests with nothing */
                while (!n->stop) {
                    zmq_msg_t f[1];
                    size_t k;
                    zmq_pollitem_t it = {n->pipe, 0, ZMQ_POLLIN, 0};
                    if (zmq_poll(&it, 1, -1) < 0 && errno != EINTR)
                        break;
                    if (recv_frames(n->pipe, f, 1, &k) < 0)
                        continue;
                    n->stop = !(zmq_msg_size(&f[0]) == 6);
                    close_frames(f, k, 1);
                    if (!n->stop)
                        zmq_send(n->pipe, "", 0, 0);
                }
            }
        }
    }
    teardown(n);
    close_sock(&n->pipe);
    return NULL;
}

static void
state_free(node_state_t *n)
{
    if (!n)
        return;
    rep__sync_free(&n->sync);
    for (size_t i = 0; i < n->ndevs; i++)
        free(n->devs[i].name);
    free(n->devs);
    strv_free(n->own_endpoints, n->nown);
    for (size_t i = 0; i < n->o.npeers; i++)
        free((char *)n->o.peers[i]);
    free((void *)n->o.peers);
    free(n->listen);
    free(n->vv);
    if (n->bkeys)
        rep__wipe(n->bkeys, n->nbkeys * sizeof *n->bkeys);
    free(n->bkeys);
    free(n->guard);
    free(n);
}

/* dir/name into a socket path; -ENAMETOOLONG when it does not fit. */
static int
dir_path(char *out, size_t size, const char *dir, const char *name)
{
    int k = snprintf(out, size, "%s/%s", dir, name);
    return k < 0 || (size_t)k >= size ? -ENAMETOOLONG : 0;
}

/* 1 when a node serves dir (its notify socket answers), else 0. */
static int
node_running(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int up = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return up;
}

int
rep__node_start(rep_replica_t *r, const rep_node_opts_t *opts, const rep__node_hooks_t *hooks,
                rep_node_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || !opts || (opts->npeers && !opts->peers) ||
        (opts->listen && rep__endpoint_check(opts->listen) < 0))
        return -EINVAL;
    for (size_t i = 0; i < opts->npeers; i++)
        REP_TRY(rep__peer_check(opts->peers[i]));
    if (opts->max_msg && (opts->max_msg < MIN_MAX_MSG || opts->max_msg > ((size_t)1 << 30)))
        return -EINVAL;
    if (opts->beacon_port > 65535 || opts->beacon_ms > 3600 * 1000)
        return -EINVAL;

    rep_node_t *nd = calloc(1, sizeof *nd);
    node_state_t *n = calloc(1, sizeof *n);
    int rc = -ENOMEM;
    if (!nd || !n)
        goto fail;
    n->notify_fd = -1;
    n->disc_fd = -1;
    n->r = r;
    n->front = nd;
    n->o = *opts;
    n->o.peers = NULL;
    n->o.npeers = 0;
    if (!n->o.max_msg)
        n->o.max_msg = DEFAULT_MAX_MSG;
    if (!n->o.anti_entropy_ms)
        n->o.anti_entropy_ms = 2000;
    if (!n->o.beacon_ms)
        n->o.beacon_ms = BEACON_MS;
    if (hooks)
        n->hooks = *hooks;
    if ((opts->listen && !(n->listen = strdup(opts->listen))) ||
        (opts->npeers && !(n->o.peers = calloc(opts->npeers, sizeof *n->o.peers))))
        goto fail;
    for (; n->o.npeers < opts->npeers; n->o.npeers++)
        if (!(((char **)n->o.peers)[n->o.npeers] = strdup(opts->peers[n->o.npeers])))
            goto fail;
    n->o.listen = n->listen;
    char ctl[sizeof n->notify_path];
    if ((rc = dir_path(n->notify_path, sizeof n->notify_path, r->dir, REP_NODE_NOTIFY)) < 0 ||
        (rc = dir_path(ctl, sizeof ctl, r->dir, REP_NODE_CONTROL)) < 0)
        goto fail;
    snprintf(n->ctl_endpoint, sizeof n->ctl_endpoint, "ipc://%s", ctl);
    if (node_running(n->notify_path)) {
        rc = REP_EBUSY;
        goto fail;
    }
    unlink(n->notify_path); /* left by a node that was killed */

    if (!(nd->ctx = zmq_ctx_new()) || !(nd->pipe = zmq_socket(nd->ctx, ZMQ_PAIR))) {
        rc = zerr();
        goto fail;
    }
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://rep-node-%p", (void *)nd);
    if (zmq_bind(nd->pipe, ep) < 0) {
        rc = zerr();
        goto fail;
    }
    n->ctx = nd->ctx;
    nd->st = n;
    pthread_mutex_init(&nd->lock, NULL);
    if ((rc = -pthread_create(&nd->thread, NULL, node_main, n)) < 0) {
        pthread_mutex_destroy(&nd->lock);
        nd->st = NULL;
        goto fail;
    }
    int started = -EIO;
    if (zmq_recv(nd->pipe, &started, sizeof started, 0) != sizeof started)
        started = -EIO;
    if (started < 0) {
        rep_node_stop(&nd);
        return started;
    }
    *out = nd;
    return 0;
fail:
    if (nd) {
        close_sock(&nd->pipe);
        if (nd->ctx)
            zmq_ctx_term(nd->ctx);
        free(nd);
    }
    state_free(n);
    return rc;
}

int
rep_node_start(rep_replica_t *r, const rep_node_opts_t *opts, rep_node_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || !opts)
        return -EINVAL;
    rep__enroll_t *e;
    REP_TRY(rep__enroll_new(r, opts->listen, &e));
    rep__node_hooks_t h;
    rep__enroll_hooks(e, &h);
    int rc = rep__node_start(r, opts, &h, out);
    if (rc < 0)
        rep__enroll_free(&e);
    else
        (*out)->enroll = e;
    return rc;
}

void
rep_node_stop(rep_node_t **np)
{
    rep_node_t *nd = np ? *np : NULL;
    if (!nd)
        return;
    pthread_mutex_lock(&nd->lock);
    zmq_send(nd->pipe, "stop", 4, 0);
    pthread_mutex_unlock(&nd->lock);
    pthread_join(nd->thread, NULL);
    close_sock(&nd->pipe);
    zmq_ctx_term(nd->ctx);
    pthread_mutex_destroy(&nd->lock);
    state_free(nd->st);
    rep__enroll_free(&nd->enroll);
    free(nd);
    *np = NULL;
}

int
rep_node_status(rep_node_t *nd, rep_node_status_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!nd)
        return -EINVAL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    pthread_mutex_lock(&nd->lock);
    int rc = zmq_send(nd->pipe, "status", 6, 0) == 6 && zmq_msg_recv(&m, nd->pipe, 0) >= 0
                 ? 0 : -EIO;
    pthread_mutex_unlock(&nd->lock);
    if (rc == 0)
        rc = zmq_msg_size(&m) ? status_decode(zmq_msg_data(&m), zmq_msg_size(&m), out) : -EIO;
    zmq_msg_close(&m);
    return rc;
}

/* Ask the node serving dir: verb with arg (if not NULL); the reply's body (malloc'd,
 * NUL-terminated, *bodyn bytes before the NUL). A refusal ["error", text] is -EIO, with the
 * text as the body. */
static int
control_call(const char *dir, const char *verb, const char *arg, char **body, size_t *bodyn)
{
    *body = NULL;
    *bodyn = 0;
    char notify[sizeof(((struct sockaddr_un *)0)->sun_path)], ctl[sizeof notify], ep[sizeof ctl + 8];
    REP_TRY(dir_path(notify, sizeof notify, dir, REP_NODE_NOTIFY));
    REP_TRY(dir_path(ctl, sizeof ctl, dir, REP_NODE_CONTROL));
    if (!node_running(notify))
        return -ECONNREFUSED;
    snprintf(ep, sizeof ep, "ipc://%s", ctl);
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    int rc = -EIO;
    zmq_msg_t f[2];
    size_t k = 0;
    if (!s)
        goto done;
    if ((rc = setopt_int(s, ZMQ_LINGER, 0)) < 0 || (rc = setopt_int(s, ZMQ_RCVTIMEO, 2000)) < 0 ||
        (rc = setopt_int(s, ZMQ_SNDTIMEO, 2000)) < 0)
        goto done;
    if (zmq_connect(s, ep) < 0 ||
        zmq_send(s, verb, strlen(verb), arg ? ZMQ_SNDMORE : 0) != (int)strlen(verb) ||
        (arg && zmq_send(s, arg, strlen(arg), 0) != (int)strlen(arg))) {
        rc = errno == EAGAIN ? -ETIMEDOUT : zerr();
        goto done;
    }
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 2000) <= 0) {
        rc = -ETIMEDOUT;
        goto done;
    }
    if ((rc = recv_frames(s, f, 2, &k)) < 0)
        goto done;
    rc = REP_ECORRUPT;
    if (k == 2) {
        size_t n = zmq_msg_size(&f[1]);
        bool ok = zmq_msg_size(&f[0]) == 2 && memcmp(zmq_msg_data(&f[0]), "ok", 2) == 0;
        if ((*body = malloc(n + 1))) {
            memcpy(*body, zmq_msg_data(&f[1]), n);
            (*body)[n] = 0;
            *bodyn = n;
        }
        rc = !*body ? -ENOMEM : ok ? 0 : -EIO;
    }
    close_frames(f, k, 2);
done:
    close_sock(&s);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

int
rep_node_status_at(const char *dir, rep_node_status_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir)
        return -EINVAL;
    char *body;
    size_t n;
    int rc = control_call(dir, "status", NULL, &body, &n);
    if (rc == 0)
        rc = status_decode((const uint8_t *)body, n, out);
    free(body);
    return rc;
}

int
rep_node_invite_at(const char *dir, uint64_t ttl_ms, const char *role, char **token,
                   char **error)
{
    if (error)
        *error = NULL;
    if (!token)
        return -EINVAL;
    *token = NULL;
    bool relay = role && strcmp(role, "relay") == 0;
    if (!dir || ttl_ms == 0 || (role && !relay && strcmp(role, "member") != 0))
        return -EINVAL;
    char arg[24], *body;
    size_t n;
    snprintf(arg, sizeof arg, "%llu%s", (unsigned long long)ttl_ms, relay ? " relay" : "");
    int rc = control_call(dir, "invite", arg, &body, &n);
    if (rc == 0)
        *token = body;
    else if (rc == -EIO && error)
        *error = body;
    else
        free(body);
    return rc;
}

int
rep__node_reply(rep_node_t *nd, const rep__node_conn_t *c, const uint8_t *msg, size_t len)
{
    node_state_t *n = nd->st;
    if (!n->router || zmq_send(n->router, c->rid, c->nrid, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(n->router, msg, len, ZMQ_DONTWAIT) < 0)
        return zerr();
    return 0;
}

void
rep__node_poke(const rep_replica_t *r)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!r->dir || dir_path(a.sun_path, sizeof a.sun_path, r->dir, REP_NODE_NOTIFY) < 0)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)sendto(fd, "c", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, sizeof a);
    close(fd);
}
