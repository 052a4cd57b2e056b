/* snapshot.h — catch-up by state (internal; DESIGN.md "Catch-up by state").
 *
 * A replica far behind (or empty) is better sent the sender's state than every change it
 * lacks: W1's 200,000 writes leave 80,000 values, and a snapshot carries only those, with
 * their causal metadata (dots, clocks, users), plus the sender's version vector with each
 * actor's chain head. Merging one needs no history (crdt.h, rep__state_merge), and leaves the
 * receiver's log without the changes it covers: the base database records up to where, so a
 * resent change there is a duplicate rather than a fork, an export that needs such changes
 * says REP_ESTATE, and history is reported partial.
 *
 * Frame: magic "RPLS", version, flags, body, checksum (change.h); the body is sealed:
 *   [office(bin 16), office name, sender actor, sender incarnation, epoch, [entry(bin)...],
 *    nonce, sealed, sig]
 * where the entries are the sender's whole membership log (trust.h: a receiver takes them
 * first, so it knows the sender), and nonce, sealed and sig the envelope of seal.h: signed by
 * the sender, sealed with the snapshot subkey of the epoch's office key, around
 *   [sender's clock (hlc), [[actor, seq, head(bin 32)]...], [key(bin), value(bin), ...]]
 * with the state's entries in key order, as stored (crdt.h describes both). A snapshot
 * carries other devices' writes on the sender's word: only an enrolled member's is taken.
 */
#ifndef REP_SNAPSHOT_H
#define REP_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
#include "keys.h"
#include "seal.h"
#include "store.h"

typedef struct rep__snapshot {
    /* set by rep__snapshot_decode: views into the frame */
    uint8_t office[REP_OFFICE_ID_BYTES];
    const char *office_name;    /* not NUL-terminated */
    uint32_t office_namen;
    uint64_t sender;
    uint32_t inc, epoch;
    rep__bytes_t *members;      /* membership entries */
    size_t nmembers;
    rep__sealed_t env;
    /* set by rep__snapshot_open: views into the opened body */
    uint8_t *owned;             /* the opened body (secret) */
    size_t ownedn;
    rep_vv_entry_t *vv;         /* sorted by actor */
    uint8_t (*heads)[REP_HASH_BYTES]; /* heads[i]: hash of vv[i]'s latest change */
    size_t nvv;
    rep__slice_t *keys, *vals;  /* n entries, strictly increasing keys */
    size_t n;
    uint64_t max_hlc;           /* the highest clock: the sender's, or one in the entries */
} rep__snapshot_t;

/* Does [p, p+n) start like a snapshot frame (it may still fail to decode)? */
bool rep__snapshot_is(const uint8_t *p, size_t n);

/* Encode the state and version vector visible in t as a snapshot frame (*out malloc'd), sealed
 * with the current epoch's key and signed by this device (sender, inc). REP_EKEY without it. */
int rep__snapshot_write(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES],
                        const char *office_name, uint64_t sender, uint32_t inc, uint8_t **out,
                        size_t *len);

/* Check a snapshot's checksum and framing and read its public part. REP_ECORRUPT,
 * REP_EVERSION, -ENOMEM. Release with rep__snapshot_clear() (also after an error). */
int rep__snapshot_decode(const uint8_t *p, size_t n, rep__snapshot_t *out);
/* Open the sealed body (after checking the sender's signature: rep__sealed_verify on env)
 * with the snapshot subkey of its epoch, and check key order and every entry as
 * rep__state_check() does against the snapshot's own vv. REP_EAUTH, REP_ECORRUPT, -ENOMEM. */
int rep__snapshot_open(rep__snapshot_t *s, const uint8_t key[REP_KEY_BYTES]);
void rep__snapshot_clear(rep__snapshot_t *s);

/* Merge s into the state of a's transaction, for the replica whose own actor is self. First
 * the chains: where both sides know an actor's change at the lower of their two seqs, its hash
 * must be the one the other side has; and s must not know changes of self this replica does
 * not. A mismatch is a fork: each forked actor is noted (rep_info_t.forked) and counted in
 * a->stats.forks, and nothing else changes. Otherwise every entry is merged, the vv becomes
 * the pointwise maximum (with s's heads where s is ahead), base records where s was ahead,
 * the clock observes s's, and pending changes now deliverable are applied. */
int rep__snapshot_merge(rep__applier_t *a, const rep__snapshot_t *s, uint64_t self);

#endif /* REP_SNAPSHOT_H */
