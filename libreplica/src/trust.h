/* trust.h — whom a replica trusts: the office's membership log and its keys (internal).
 *
 * Membership (DESIGN.md "Security") is a hash-chained log signed by the office's admins, not
 * a CRDT: it has one order, and an entry is valid only after the one before it. An entry is
 *   [1, office(bin 16), seq, prev(bin 32), type, epoch, device(bin 32), curve(bin 32),
 *    name, role, extra, signer(bin 32), sig(bin 64)]
 * type 1 (ADD, extra nil) enrolls device (its Ed25519 key, which names it) with curve (its
 * X25519 key, what ZeroMQ's CURVE sees), a name and a role: "admin", "member" or "relay".
 * A relay (a cloud node that stores and forwards sealed changes, DESIGN.md "Merging with the
 * cloud") is a member that never holds an office key: it is not given any when enrolled, a
 * REMOVE boxes none to it, and its changes and snapshots are refused, as it cannot seal.
 * type 2 (REMOVE) revokes device (curve, name, role repeat what it was), with extra
 *   [[[actor, inc, seq, hash(bin 32)]...], [[member(bin 32), box(bin 72)]...]]
 * the cutoffs: for each actor of the device (derived with inc), the last change of it the
 * admin accepts (seq and hash; seq 0 for none), and the office key of the new epoch (the
 * entry's epoch, one more than before) boxed to each remaining member (crypto_box, from the
 * signing admin's X25519 key to the member's: nonce(24) ‖ sealed key(48)), every one of them
 * but relays,
 * so the removed device can read nothing sealed from then on. Entry 1 is the genesis:
 * the founding admin adds itself (signer == device). Every later entry is signed by a device
 * that the entries before it made an admin. prev is the hash of the entry before (zeros for
 * entry 1); sig is Ed25519 over every byte before it; epoch is the office-key epoch in force
 * from this entry on. Entries travel unsealed, with changes, snapshots and provisioning, and
 * are checked by their signatures whoever carried them. A replica stores the log in its
 * `members` database (seq -> entry bytes), and only after checking each entry.
 *
 * Office keys: one random 32-byte key per epoch, in the `keys` database (epoch -> key). Changes
 * are sealed with its subkey REP_SUBKEY_CHANGE, snapshots with REP_SUBKEY_SNAPSHOT, and
 * discovery beacons are tagged with REP_SUBKEY_BEACON (crypto_kdf, context "replica_"), so no
 * key serves two kinds of thing.
 *
 * The author of a change is found from its (actor, incarnation): actor = H(device key ‖
 * incarnation) (keys.h), so the member whose key derives the actor wrote it.
 */
#ifndef REP_TRUST_H
#define REP_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "keys.h"
#include "store.h"

#define REP_ENTRY_VERSION 1
#define REP_ENTRY_ADD 1
#define REP_ENTRY_REMOVE 2
#define REP_MAX_CUTOFFS 64       /* actors (incarnations) of one device a REMOVE may cut */
#define REP_CUT_INCS 16          /* a removed device's incarnations cut at 0 when not listed */
#define REP_KEY_BOX_BYTES (REP_NONCE_BYTES + REP_KEY_BYTES + REP_MAC_BYTES)
#define REP_MAX_DEVICE_NAME 64
#define REP_MAX_ROLE 16
#define REP_SUBKEY_CHANGE 1
#define REP_SUBKEY_SNAPSHOT 2
#define REP_SUBKEY_BEACON 3      /* the tags of discovery beacons (beacon.h) */

/* A decoded entry: views into the bytes it was read from. */
typedef struct rep__entry {
    uint8_t office[REP_OFFICE_ID_BYTES];
    uint64_t seq;
    uint8_t prev[REP_HASH_BYTES];
    uint8_t type;
    uint32_t epoch;
    uint8_t device[REP_SIGN_PK_BYTES], curve[32], signer[REP_SIGN_PK_BYTES], sig[REP_SIG_BYTES];
    const char *name, *role;
    uint32_t namen, rolen;
    rep__bytes_t cuts, boxes;   /* a REMOVE's cutoffs and boxes, as msgpack arrays */
    size_t ncuts, nboxes;
    size_t signed_len;          /* the bytes the signature covers: [0, signed_len) */
} rep__entry_t;

/* Where a revoked device's history is cut: changes of actor after seq are refused. */
typedef struct rep__cutoff {
    uint64_t actor, seq;
    uint32_t inc;
    uint8_t hash[REP_HASH_BYTES]; /* of change seq (zeros when seq is 0) */
} rep__cutoff_t;

/* Decode an entry (bounds, names, role, type, a REMOVE's cutoffs and boxes) without checking
 * its signature. REP_ECORRUPT, REP_EVERSION. */
int rep__entry_decode(const uint8_t *p, size_t n, rep__entry_t *e);
/* A REMOVE's cutoff i, box i (REP_ENOTFOUND past the last). */
int rep__entry_cutoff(const rep__entry_t *e, size_t i, rep__cutoff_t *out);
int rep__entry_box(const rep__entry_t *e, size_t i, uint8_t pk[REP_SIGN_PK_BYTES],
                   uint8_t box[REP_KEY_BOX_BYTES]);

/* A member as the log leaves it. */
typedef struct rep__dev {
    uint8_t pk[REP_SIGN_PK_BYTES], curve[32];
    char name[REP_MAX_DEVICE_NAME + 1], role[REP_MAX_ROLE + 1];
    bool removed;               /* revoked: its changes after the cutoffs are refused */
    rep__cutoff_t *cuts;        /* the REMOVE's, then its first incarnations not listed, at 0 */
    size_t ncuts;
} rep__dev_t;

/* What a replica trusts, read from one transaction. */
typedef struct rep__trust {
    uint8_t office[REP_OFFICE_ID_BYTES];
    uint64_t count;                 /* entries in the log */
    uint8_t head[REP_HASH_BYTES];   /* hash of the last one */
    uint32_t epoch;                 /* the current epoch */
    rep__dev_t *devs;
    size_t ndevs;
    struct rep__epoch_key {
        uint32_t epoch;
        uint8_t change[REP_KEY_BYTES], snapshot[REP_KEY_BYTES], beacon[REP_KEY_BYTES];
    } *keys;
    size_t nkeys;
    struct rep__author {            /* authors found so far */
        uint64_t actor;
        uint32_t inc;
        size_t dev;
    } *authors;
    size_t nauthors, authors_cap;
    bool has_self;                  /* this device's keys, to open the boxes sent to it */
    uint8_t self_pk[REP_SIGN_PK_BYTES], self_csk[32];
    uint64_t removals;              /* REMOVE entries taken since loading */
    bool any_removed;               /* some device of the log was removed */
} rep__trust_t;

/* Read the log and the keys of t (office: the replica's). An empty log is fine (a replica of
 * format 1 has none; it trusts no one). -ENOMEM, REP_ECORRUPT. Release with rep__trust_clear. */
int rep__trust_load(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES], rep__trust_t *tr);
void rep__trust_clear(rep__trust_t *tr);

/* Take an entry someone sent. 1 when it extends the log (it is checked and, with t, stored),
 * 0 when the log has it already; REP_EFORK when the log has another entry at its seq;
 * REP_ESTATE when entries before it are missing; REP_EAUTH for a bad signature or a signer
 * that is not an admin; REP_EOFFICE; REP_ECORRUPT. tr is updated only on 1. Without t (an
 * in-memory log: tests), an entry at a seq the log has is taken as a duplicate unchecked. */
int rep__trust_accept(rep__trust_t *tr, rep__txn_t *t, const uint8_t *p, size_t n);

/* Take entries in order, as rep__trust_accept; stop at the first error. */
int rep__trust_accept_all(rep__trust_t *tr, rep__txn_t *t, const rep__bytes_t *e, size_t n);

/* Sign and store a new entry adding a device, signed by the admin (pk, sk). -EPERM when pk is
 * not an admin of the log; -EINVAL for a bad name or role; REP_EEXIST when the device, or a
 * device of that name, is a member already. With genesis (an empty log), the device adds itself as admin. */
int rep__trust_add(rep__trust_t *tr, rep__txn_t *t, const uint8_t pk[REP_SIGN_PK_BYTES],
                   const uint8_t sk[REP_SIGN_SK_BYTES], const uint8_t device[REP_SIGN_PK_BYTES],
                   const char *name, const char *role);

/* Store an office key for an epoch (and take it into tr). */
int rep__trust_put_key(rep__trust_t *tr, rep__txn_t *t, uint32_t epoch,
                       const uint8_t key[REP_KEY_BYTES]);

/* Append to b a msgpack array of the log's entries after seq `after` (each a bin). */
int rep__trust_pack_entries(rep__txn_t *t, uint64_t after, uint64_t count, rep__buf_t *b);
/* Append to b a msgpack array of [epoch, key(bin 32)] for every key (secret!). */
int rep__trust_pack_keys(rep__txn_t *t, rep__buf_t *b);

/* Sign and store a REMOVE of device (a member, not the admin pk itself) with cutoffs (each
 * actor of it the admin has, at what it has), and rotate the office key: a fresh key for
 * epoch tr->epoch + 1, boxed to every remaining member, stored here too. -EPERM when pk is
 * not an admin; REP_ENOTFOUND when device is not a member (or was removed); -EINVAL for the
 * admin itself. */
int rep__trust_remove(rep__trust_t *tr, rep__txn_t *t, const uint8_t pk[REP_SIGN_PK_BYTES],
                      const uint8_t sk[REP_SIGN_SK_BYTES], const uint8_t device[REP_SIGN_PK_BYTES],
                      const rep__cutoff_t *cuts, size_t ncuts);

/* For a change of actor (by author, whoever it is): 1 when it is past a cutoff of a revoked
 * device (to be refused: after seq, or at seq with another hash), else 0. */
int rep__trust_cut(const rep__dev_t *author, uint64_t actor, uint64_t seq,
                   const uint8_t hash[REP_HASH_BYTES]);
/* A dependency on (actor, seq), capped at the cutoff when actor belongs to a revoked device. */
uint64_t rep__trust_cap(const rep__trust_t *tr, uint64_t actor, uint64_t seq);

/* Is d (NULL: no) a relay? */
bool rep__dev_is_relay(const rep__dev_t *d);
/* Is this replica's own device a relay of the log (a replica without office keys)? */
bool rep__trust_relay(const rep__trust_t *tr);

/* The device with this Ed25519 key (removed or not), or NULL. */
const rep__dev_t *rep__trust_member(const rep__trust_t *tr, const uint8_t pk[REP_SIGN_PK_BYTES]);
/* The device that wrote as (actor, incarnation inc), removed or not, or NULL when no device
 * of the log derives it. */
const rep__dev_t *rep__trust_author(rep__trust_t *tr, uint64_t actor, uint32_t inc);
/* The incarnation (below REP_MAX_CUTOFFS) with which the device with key pk derives actor: 1
 * with it in *inc, or 0 when none does. */
int rep__trust_inc_of(const uint8_t pk[REP_SIGN_PK_BYTES], uint64_t actor, uint32_t *inc);
/* The subkey (REP_SUBKEY_*) of an epoch's key, or NULL when this replica lacks that key. */
const uint8_t *rep__trust_key(const rep__trust_t *tr, uint32_t epoch, int subkey);

/* ---- Provisioning ----
 * What a new device starts from (secret: it holds the office keys, and may hold the device's
 * own secret key), framed as change.h describes with magic "RPLP":
 *   [office(bin 16), office name, device pk(bin 32), device sk(bin 64) or nil,
 *    [entry(bin)...], [[epoch, key(bin 32)]...]]
 * The entries are the whole membership log, which enrolls the device. A relay's has no key;
 * every other device's has at least the current epoch's. */
typedef struct rep__provision {
    uint8_t office[REP_OFFICE_ID_BYTES];
    const char *office_name;    /* not NUL-terminated */
    uint32_t office_namen;
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES];
    bool has_sk;
    rep__bytes_t *entries;
    size_t nentries;
    struct rep__provision_key {
        uint32_t epoch;
        uint8_t key[REP_KEY_BYTES];
    } *keys;
    size_t nkeys;
} rep__provision_t;

/* The provisioning of device pk (sk: its secret key, or NULL) as t's replica knows the office:
 * its whole log and every key (none when the log makes pk a relay). *out malloc'd. */
int rep__provision_write(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES],
                         const char *office_name, const uint8_t pk[REP_SIGN_PK_BYTES],
                         const uint8_t sk[REP_SIGN_SK_BYTES], uint8_t **out, size_t *len);
/* Re-encode p (after setting its sk, say). */
int rep__provision_encode(const rep__provision_t *p, uint8_t **out, size_t *len);
/* Check and read a provisioning (views into [b, b+n)). REP_ECORRUPT, REP_EVERSION. Release
 * with rep__provision_clear() (also after an error). */
int rep__provision_decode(const uint8_t *b, size_t n, rep__provision_t *p);
void rep__provision_clear(rep__provision_t *p);
/* Store p's log and keys in t (an empty replica of p's office): each entry is checked as it
 * would be arriving; REP_EAUTH when the log does not enroll p's device. *name: the device's
 * name there (a view into tr). */
int rep__provision_apply(const rep__provision_t *p, rep__trust_t *tr, rep__txn_t *t,
                         const char **name);

#endif /* REP_TRUST_H */
