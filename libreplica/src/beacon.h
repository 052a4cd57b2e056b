/* beacon.h — discovery beacons: what a node broadcasts on the office LAN so the office's other
 * nodes find it without --peer (internal; pure: no I/O, no clock of its own).
 *
 * A beacon is one UDP datagram of REP_BEACON_BYTES bytes, integers big-endian:
 *   0  magic "RPLD" (4)
 *   4  version (1)                1
 *   5  office tag (8)             the first 8 bytes of BLAKE2b-256("replica beacon" ‖ office id):
 *                                 tells other offices' beacons apart without trying keys, and
 *                                 does not broadcast the office id itself
 *   13 epoch (4)                  of the office key that tags it
 *   17 device (32)                the sender's Ed25519 public key (its device id)
 *   49 family (1)                 4 (IPv4: address in the first 4 bytes, the rest zero) or 6
 *   50 address (16)               the address the sender sent it from
 *   66 port (2)                   the TCP port the sender's node listens on
 *   68 time (8)                   the sender's wall clock, ms since the epoch, increasing
 *   76 tag (16)                   keyed BLAKE2b (keys.h rep__mac) of office id ‖ bytes 0..75,
 *                                 under the REP_SUBKEY_BEACON subkey of the epoch's office key
 *
 * What a receiver takes from it is only "device D's node listens on port P at the address
 * this datagram came from": the address is the datagram's source (which must equal the one
 * inside, so the beacon cannot be replayed from elsewhere), hence reachable from the receiver
 * by construction, whatever other interfaces the sender has; D's CURVE key comes from the
 * membership log, never from the beacon. A receiver ignores (and counts) beacons that are
 * malformed, of another office, tagged with a key it lacks or with a wrong tag, from a device
 * that is not a current member (or is itself), from another address than the one inside, too
 * far from its clock (REP_BEACON_WINDOW_MS), or not newer than the last one it took from that
 * device at that address.
 */
#ifndef REP_BEACON_H
#define REP_BEACON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define REP_BEACON_BYTES 92
#define REP_BEACON_VERSION 1
#define REP_BEACON_TAG_BYTES 8
#define REP_BEACON_WINDOW_MS (5 * 60 * 1000) /* as the HLC's default maximum drift */
#define REP_BEACON_SEEN_MAX 128             /* (device, address) pairs a guard remembers */

/* A beacon's content. */
typedef struct rep__beacon {
    uint32_t epoch;
    uint8_t device[REP_SIGN_PK_BYTES];
    uint8_t family;                 /* 4 or 6 */
    uint8_t addr[16];               /* IPv4 in addr[0..3], the rest zero */
    uint16_t port;
    uint64_t time_ms;
} rep__beacon_t;

/* The beacon subkey of one epoch (trust.h REP_SUBKEY_BEACON). */
typedef struct rep__beacon_key {
    uint32_t epoch;
    uint8_t key[REP_KEY_BYTES];
} rep__beacon_key_t;

/* Write b as a beacon of office, tagged with key (the subkey of b->epoch). -EINVAL for a family
 * other than 4 or 6, or port 0. */
int rep__beacon_encode(uint8_t out[REP_BEACON_BYTES], const rep__beacon_t *b,
                       const uint8_t office[REP_OFFICE_ID_BYTES], const uint8_t key[REP_KEY_BYTES]);

/* Read and authenticate a datagram as a beacon of office, with the key of its epoch among keys.
 * 0 with *out; REP_ECORRUPT (size, magic, family, address or port malformed); REP_EVERSION;
 * REP_EOFFICE (another office's tag); REP_EKEY (no key of its epoch here); REP_EAUTH (the tag
 * does not verify: forged, altered, or another office's with the same tag). *out is set only
 * on 0. */
int rep__beacon_open(const uint8_t *p, size_t n, const uint8_t office[REP_OFFICE_ID_BYTES],
                     const rep__beacon_key_t *keys, size_t nkeys, rep__beacon_t *out);

/* Replays and stale beacons: the newest time taken per (device, address). */
typedef struct rep__beacon_guard {
    struct rep__beacon_seen {
        uint8_t device[REP_SIGN_PK_BYTES];
        uint8_t family, addr[16];
        uint64_t time_ms;           /* the newest beacon taken */
        uint64_t at;                /* when (the caller's clock): the oldest is forgotten first */
    } seen[REP_BEACON_SEEN_MAX];
    size_t n;
} rep__beacon_guard_t;

/* Admit an opened beacon b that arrived from (family, src) at wall time now_ms: 0 when it is to
 * be taken (and it is remembered); -EADDRNOTAVAIL when src is not the address inside (replayed
 * from elsewhere, or rewritten by NAT); REP_EEXPIRED when its time is more than window_ms from
 * now_ms either way (stale, or a clock far off); REP_EEXIST when it is not newer than one taken
 * from that device at that address (replayed). Remembers at most REP_BEACON_SEEN_MAX pairs. */
int rep__beacon_admit(rep__beacon_guard_t *g, const rep__beacon_t *b, uint8_t family,
                      const uint8_t src[16], uint64_t now_ms, uint64_t window_ms);

/* ---- Where to send beacons ----
 * A network interface's IPv4 address, as getifaddrs() lists it (flags are IFF_*). */
typedef struct rep__iface {
    char name[16];
    unsigned index;
    unsigned flags;
    uint8_t addr[4], bcast[4];      /* bcast zero: none */
} rep__iface_t;

/* Which of ifs to send beacons on for a node bound to host ("0.0.0.0", "*" or "" for every
 * address, else an IPv4 address, or an interface name as ZeroMQ takes it): those up, running,
 * broadcast-capable, not loopback, with a broadcast address, and (unless bound to every
 * address) holding host or named host. Writes their indices to pick (room for n), returns how
 * many. */
size_t rep__beacon_pick(const rep__iface_t *ifs, size_t n, const char *host, size_t *pick);

/* Split a bound endpoint "tcp://HOST:PORT" (HOST may be [v6]) into host (at most size bytes
 * with the NUL, brackets removed) and port. -EINVAL for anything else (a port that is not
 * 1..65535). */
int rep__beacon_endpoint(const char *ep, char *host, size_t size, uint16_t *port);

#endif /* REP_BEACON_H */
