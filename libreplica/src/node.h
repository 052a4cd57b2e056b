/* node.h — the node: the sync engine over ZeroMQ (internal). The only module that sees ZeroMQ.
 *
 * rep_node_start() (replica.h) starts a thread that owns every socket of the node:
 *   ROUTER   bound to the listen endpoint, CURVE server with this device's key pair
 *   DEALER   one per peer endpoint, CURVE client; the server key is that of the enrolled
 *            device whose record lists the endpoint, or, for a peer given as
 *            DEVICE=ENDPOINT, of the device of that name or id (a relay, which writes no
 *            record); an unresolved endpoint waits
 *   ZAP      REP on inproc://zeromq.zap.01: admits the CURVE keys of enrolled devices, with
 *            the device id (hex of its Ed25519 key) as ZMQ User-Id; asks hooks.admit about
 *            any other key
 *   control  REP on ipc://DIR/node.ipc: requests are multipart [verb, args...], replies
 *            ["ok", body...] or ["error", text]. Verbs: "status" (body: the status as msgpack,
 *            see status_encode in node.c); others go to hooks.control.
 *   notify   a unix datagram socket DIR/node.notify, poked by rep__node_poke() after every
 *            commit in any process: the node then tells the engine its vv may have grown
 *   pipe     PAIR on inproc, to the API (stop, status)
 *   beacon   with REP_NODE_DISCOVERY, a UDP socket bound to the beacon port on every address:
 *            each round (beacon_ms +-25%) a beacon (beacon.h) to the broadcast address of
 *            each interface the ROUTER listens on (rep__beacon_pick), sent from that
 *            interface's address (IP_PKTINFO); a beacon heard from an enrolled device adds a
 *            dial to tcp://SOURCE:PORT resolved to that device (a beacon outranks a record
 *            listing the endpoint), forgotten when no beacon came from it for a while and it
 *            is down
 * plus a monitor PAIR per DEALER (handshake succeeded / disconnected: peer up and down).
 *
 * One sync-engine peer per device, whatever connections it has: its id is its index in the
 * node's device table + 1. Messages to a device go over a DEALER to it that is up, else over
 * the ROUTER to the connection its last message came from (ZMQ_ROUTER_MANDATORY: a gone
 * connection errors, and is forgotten). A device is up while one of its DEALERs is, or while
 * it sent on the ROUTER within a few anti-entropy periods.
 *
 * Hooks (for enrollment by invitation, added on top of this): a connection whose key
 * hooks.admit admitted carries hooks' own user id (never 64 hex digits, which name devices);
 * its messages go to hooks.message, never to the engine, and rep__node_reply() answers
 * them. All hooks run on the node's thread.
 */
#ifndef REP_NODE_H
#define REP_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "replica.h"

#define REP_NODE_NOTIFY "node.notify"
#define REP_NODE_CONTROL "node.ipc"
#define REP_NODE_USER_MAX 128       /* a ZAP User-Id, with its NUL */

typedef struct rep__node_conn {
    const uint8_t *rid;             /* the ROUTER routing id of the connection */
    size_t nrid;
    const char *user_id;            /* as hooks.admit set it */
} rep__node_conn_t;

typedef struct rep__node_hooks {
    void *ctx;
    /* A CURVE key that is no enrolled device's: 1 to admit it under user_id (at most
     * REP_NODE_USER_MAX bytes with the NUL), 0 to refuse. NULL: refuse. */
    int (*admit)(void *ctx, const uint8_t key[32], const char *address, char *user_id);
    /* A message from a connection admitted by hooks.admit. */
    void (*message)(void *ctx, rep_node_t *n, const rep__node_conn_t *c, const uint8_t *msg,
                    size_t len);
    /* A control request with a verb the node does not know: append the reply's frames after
     * "ok" to *reply (one frame) and return 0, or return a negative code (the reply is
     * ["error", rep_strerror(code)]). args are the request's frames after the verb. */
    int (*control)(void *ctx, rep_node_t *n, const char *verb, const uint8_t *const *args,
                   const size_t *argn, size_t nargs, rep__buf_t *reply);
} rep__node_hooks_t;

/* rep_node_start() with hooks (copied; NULL for none). */
int rep__node_start(rep_replica_t *r, const rep_node_opts_t *opts, const rep__node_hooks_t *hooks,
                    rep_node_t **out);

/* From hooks.message only (the node's thread): send msg to that connection. */
/* A peer of rep_node_opts_t: "tcp://HOST:PORT" or "DEVICE=tcp://HOST:PORT". -EINVAL. */
int rep__peer_check(const char *spec);
int rep__node_reply(rep_node_t *n, const rep__node_conn_t *c, const uint8_t *msg, size_t len);

/* Tell the node serving r's directory, if any, that r committed. Best effort: never blocks,
 * never fails, costs a socket and a datagram. */
void rep__node_poke(const rep_replica_t *r);

#endif /* REP_NODE_H */
