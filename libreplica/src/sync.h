/* sync.h — the sync engine: what to say to which peer and when, with no I/O (internal).
 *
 * The node (ZeroMQ sockets, node.c) and tests/sim (a simulated lossy network) both drive this
 * same code, so what the simulator proves holds for the real network. The caller tells the
 * engine what happened — a peer connected or went away, a message arrived, this replica
 * committed changes, time passed — then takes the messages it wants sent. The engine only
 * reads and writes the replica through the library (vv, catchup, import).
 *
 * Messages are msgpack arrays [version, type, ...] (version REP_SYNC_VERSION; any other is
 * refused, counted, and shown in the peer's info.version):
 *   HELLO [2, 1, office(bin 16), actor, want, vv]  what I have; with want: send me all I lack
 *                                                  at once (I wait for some of it)
 *   DATA  [2, 2, id, part(bin), offset, total]     a batch of changes or a snapshot: bytes
 *                                                  [offset, offset + len) of a payload of
 *                                                  total bytes (usually all of it)
 *   ACK   [2, 3, id, vv]                           DATA id is applied; now I have vv
 *   HAVE  [2, 4, vv]                               what I have changed (told to every peer)
 * where vv is a bare version vector, [[actor, seq]...] sorted by actor (change.h
 * rep__vv_pack: the entries of rep_replica_vv() without its frame and office, which the
 * channel makes redundant: CURVE authenticates every byte, ZAP admits only this office's
 * devices, and the HELLO names the office); its actor 0 is the length of the membership
 * log (entries a peer lacks go with the next DATA, at once, like our own changes). A HELLO
 * of another office is refused, and so are that peer's ACKs and HAVEs until a HELLO of this
 * office: their vv means nothing here. A payload is what rep_replica_catchup() or
 * rep_replica_export() make (sealed, signed changes; or a snapshot). Version 1 sent framed
 * vvs.
 *
 * Batches of changes are made to fit in max_msg; a snapshot may not (it is one frame: the
 * state of a large office, or the only answer when the log lacks changes), so it goes in
 * parts, each a DATA of its own, acknowledged before the next is sent; the receiver assembles
 * them (at most REP_SYNC_MAX_PAYLOAD) and applies the whole. A lost part, a timeout or a
 * reconnect start the payload over.
 *
 * Per peer the engine keeps what the peer is known to have: its vv, replaced by a HELLO,
 * raised by ACK and HAVE, and taken to include every change of the peer's own device that we
 * have (nobody needs its own changes back). It sends at most one DATA at a time: the next is
 * made from the vv the ACK brings, so nothing is sent twice and a slow peer slows only its own
 * stream (the window is the flow control). An ACK that shows no progress (the DATA was refused
 * or waits for dependencies) holds the window until the peer's next HELLO or ours, or until
 * the peer has more of what that DATA carried (what waited was applied), so a DATA that
 * cannot apply is retried once per anti-entropy period, not in a loop.
 *
 * A peer that lacks this replica's own changes gets them at once, as changes. Changes of other
 * devices are relayed only once a peer has lacked them, and received no more of some device
 * among them, for the relay delay: relay_delay_ms, plus a delay of up to as much again fixed
 * per device, plus twice the peer's last round trip (DATA to ACK, at most ack_timeout_ms: a
 * slow peer takes every stream slowly). In a full mesh their author sends them itself, and
 * the HAVE of the peer that got them stops the others; a steady stream that keeps arriving,
 * even late, is not relayed. Such a relay carries the changes of the devices that stopped
 * reaching the peer (besides our own), as changes or as a snapshot, whichever is smaller; a
 * HELLO that wants them gets all the peer lacks, at once. A DATA not acknowledged within
 * ack_timeout_ms is taken as lost and sent again. Every peer is sent a HELLO every
 * anti_entropy_ms, so any loss heals. When an import leaves changes waiting for
 * dependencies, those are usually on their way from their author: if some still wait after
 * the relay delay, the sender is sent a HELLO that wants them.
 */
#ifndef REP_SYNC_H
#define REP_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replica.h"

#define REP_SYNC_VERSION 2
#define REP_SYNC_MAX_PAYLOAD ((uint64_t)1 << 30) /* a payload in parts: at most 1 GiB */

enum rep__sync_msg { REP_SYNC_HELLO = 1, REP_SYNC_DATA = 2, REP_SYNC_ACK = 3, REP_SYNC_HAVE = 4 };

typedef struct rep__sync_opts {
    size_t max_msg;            /* every message fits in this many bytes (a larger snapshot goes
                                  in parts) */
    uint64_t anti_entropy_ms;  /* HELLO to every peer this often */
    uint64_t ack_timeout_ms;   /* a DATA not acknowledged this long is taken as lost */
    uint64_t relay_delay_ms;   /* other devices' changes wait this long before being relayed */
} rep__sync_opts_t;

/* Defaults: 1 MiB, 2 s, 5 s, 200 ms. */
void rep__sync_opts_default(rep__sync_opts_t *o);

/* What the engine knows of a peer (for status). */
typedef struct rep__sync_peer_info {
    int connected;
    uint64_t actor;            /* from its HELLO; 0 until then */
    uint64_t last_seen_ms;     /* when a message of it last arrived; 0: never */
    uint64_t behind;           /* changes of ours it is known to lack */
    uint64_t sent_bytes, received_bytes;
    uint64_t bad;              /* messages of it refused (malformed, another office, ...) */
    uint64_t version;          /* the protocol version of its last message of another version
                                  (refused); 0: none */
} rep__sync_peer_info_t;

typedef struct rep__sync rep__sync_t;

/* An engine for replica r, which must outlive it. -ENOMEM, -EINVAL. */
int rep__sync_new(rep_replica_t *r, const rep__sync_opts_t *opts, rep__sync_t **out);
void rep__sync_free(rep__sync_t **sp);

/* A peer (any id the caller chooses, below 2^32) connected: a HELLO is queued for it. A peer
 * id seen for the first time is added. */
int rep__sync_connected(rep__sync_t *s, uint32_t peer, uint64_t now_ms);
/* peer (connected, or seen before) is a relay, or not: it is sent changes only, those this
 * replica's log holds (a relay cannot take a snapshot). */
void rep__sync_relay(rep__sync_t *s, uint32_t peer, bool relay);
/* The connection to peer is gone: nothing is sent to it until it connects again. */
void rep__sync_disconnected(rep__sync_t *s, uint32_t peer);

/* A message from peer arrived. A malformed or foreign message is counted (info.bad) and
 * dropped, and 0 is returned; only failures of this replica (-ENOMEM, -EIO, ...) are errors. */
int rep__sync_received(rep__sync_t *s, uint32_t peer, const uint8_t *msg, size_t len,
                       uint64_t now_ms);

/* This replica's version vector may have grown (a local commit, here or in another process). */
int rep__sync_changed(rep__sync_t *s, uint64_t now_ms);

/* Let time pass: timeouts, anti-entropy, delayed relays. *next_ms is set to the time the
 * engine next wants a tick (the caller may tick earlier). */
int rep__sync_tick(rep__sync_t *s, uint64_t now_ms, uint64_t *next_ms);

/* Take the next message to send: 1 with *peer, *msg (malloc'd: free()) and *len; 0 when
 * there is none. */
int rep__sync_take(rep__sync_t *s, uint32_t *peer, uint8_t **msg, size_t *len);

/* What the engine knows of peer: 0, or REP_ENOTFOUND for an id never seen. */
int rep__sync_peer(rep__sync_t *s, uint32_t peer, rep__sync_peer_info_t *out);
/* How many membership entries the engine's imports have taken so far: when it grows, who may
 * connect has changed (a device enrolled or revoked). */
uint64_t rep__sync_members_taken(const rep__sync_t *s);

#endif /* REP_SYNC_H */
