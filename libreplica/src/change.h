/* change.h — changes, batches and version vectors as bytes (internal, pure).
 *
 * A change is what one local transaction made (DESIGN.md "Changes and causality"). It is
 * sealed and signed (DESIGN.md "Security"); its bytes, as stored in the log and relayed, are
 * the msgpack array
 *   [2, epoch, actor, inc, seq, hlc, prev(bin 32), deps[[actor, seq]...], nonce(bin 24),
 *    sealed(bin), sig(bin 64)]
 * The header (everything before sealed) is public, so that a replica or relay without the
 * office key can order, chain and forward changes: it tells which device (actor, and inc, the
 * incarnation its actor id is derived with) wrote how many changes when, under which key
 * epoch, having seen what (deps) — nothing of the records, fields, values or user.
 *  - deps is the writer's version vector when it wrote, sorted by actor, without its own
 *    actor (its own previous change is implied by seq).
 *  - prev is the hash of the actor's previous change (zeros for seq 1): a per-actor hash
 *    chain that exposes forks and lets one signature vouch for a run of changes.
 *  - nonce, sealed and sig make the envelope of seal.h: the body [user, ops[...]] sealed
 *    with the change subkey of the epoch's office key (trust.h) and signed by the author.
 *   op = [type, collection, record, field, kind, value]
 * with (type: kind, value): SET, DEL (register; value, nil), CLEAR (register, field "": a
 * record delete; nil), INCR (counter; int delta), ADD, REMOVE (set; the member), APPEND (log;
 * the entry). Field "" is the record's existence register. An unknown type is REP_EVERSION.
 * A change's hash is BLAKE2b-256 of its bytes (signature included).
 *
 * A batch (also the content of a bundle file) and an encoded version vector are framed as
 *   magic(4: "RPLB" / "RPLV") version(1) flags(1) body(msgpack) checksum(32)
 * where the checksum is BLAKE2b-256 of everything before it, so any flipped bit or
 * truncation is caught before anything is parsed. Bodies:
 *   batch: [office(bin 16), office name, sender actor, [change(bin)...], [entry(bin)...]]
 *   vv:    [office(bin 16), [[actor, seq]...]]
 * where a batch's entries are those of the membership log (trust.h) its receiver may lack,
 * and a vv's actor 0 (first when present) is the length of the sender's membership log.
 * flags: REP_FRAME_ZSTD (batches only) when the body is one zstd frame, used for bodies of
 * REP_FRAME_ZIP_MIN bytes or more when it makes them smaller; other bits are reserved and
 * are REP_EVERSION here.
 */
#ifndef REP_CHANGE_H
#define REP_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "keys.h"
#include "replica.h"
#include "seal.h"

#define REP_CHANGE_VERSION 2
#define REP_FRAME_VERSION 2
#define REP_FRAME_ZSTD 0x01
#define REP_FRAME_ZIP_MIN 4096
#define REP_FRAME_HDR 6

typedef struct rep__op {
    uint8_t type;               /* rep_op_type_t */
    uint8_t kind;               /* rep_kind_t */
    const char *coll, *rec, *field;
    uint32_t colln, recn, fieldn;
    const uint8_t *val;         /* canonical msgpack, SET only */
    uint32_t valn;
} rep__op_t;

typedef struct rep__change {
    /* the header */
    uint32_t epoch, inc;
    uint64_t actor, seq, hlc;
    uint8_t prev[REP_HASH_BYTES];
    rep_vv_entry_t *deps;
    size_t ndeps;
    /* the body: set by rep__change_open (nops 0 until then) */
    const char *user;
    uint32_t usern;
    rep__op_t *ops;
    size_t nops;
    /* set by rep__change_decode: the bytes it was read from, their hash, and views of them */
    const uint8_t *bytes;
    size_t len;
    uint8_t hash[REP_HASH_BYTES];
    rep__sealed_t env;
    uint8_t *plain;             /* the opened body (owned) */
    size_t plainn;
    bool cut;                   /* set by the importer: past its revoked author's cutoff */
} rep__change_t;

/* Append the sealed, signed bytes of c (header and body fields; its bytes, hash and views are
 * ignored) for office, with the change subkey of c->epoch and the author's secret key. */
int rep__change_seal(rep__buf_t *b, const rep__change_t *c, const uint8_t office[REP_OFFICE_ID_BYTES],
                     const uint8_t key[REP_KEY_BYTES], const uint8_t sk[REP_SIGN_SK_BYTES]);
/* Decode a change's header and check its framing (REP_ECORRUPT; a newer version is
 * REP_EVERSION); the body stays sealed. out borrows from p and owns its deps (and, once
 * opened, its body): release with rep__change_clear(). */
int rep__change_decode(const uint8_t *p, size_t n, rep__change_t *out);
/* Check the author's signature: 0 or REP_EAUTH. */
int rep__change_verify(const rep__change_t *c, const uint8_t office[REP_OFFICE_ID_BYTES],
                       const uint8_t pk[REP_SIGN_PK_BYTES]);
/* Open the body with the change subkey of c's epoch: REP_EAUTH when it does not open (wrong
 * key, office or tampered bytes); REP_ECORRUPT when what it holds is malformed (every name,
 * kind, op and value is checked); REP_EVERSION for an op of a newer version. */
int rep__change_open(rep__change_t *c, const uint8_t office[REP_OFFICE_ID_BYTES],
                     const uint8_t key[REP_KEY_BYTES]);
/* Forget the opened body (the header stays). */
void rep__change_close(rep__change_t *c);
void rep__change_clear(rep__change_t *c);

/* A verified batch: views of each change's bytes inside the batch. */
typedef struct rep__batch {
    uint8_t *owned;            /* the decompressed body the views below point into, if any */
    uint8_t office[REP_OFFICE_ID_BYTES];
    const char *office_name;   /* not NUL-terminated */
    uint32_t office_namen;
    uint64_t sender;
    size_t n;
    rep__bytes_t *changes, *entries;
    size_t nentries;
} rep__batch_t;

/* Frame a batch of changes. begin writes the header; add appends one change's bytes; end
 * patches the count and appends the checksum. */
typedef struct rep__batch_writer {
    rep__buf_t buf;
    size_t count_at;
    uint32_t count;
} rep__batch_writer_t;
void rep__batch_begin(rep__batch_writer_t *w, const uint8_t office[REP_OFFICE_ID_BYTES],
                      const char *office_name, uint64_t sender);
void rep__batch_add(rep__batch_writer_t *w, const uint8_t *p, size_t n);
/* Size the batch has once the next change of n bytes is added and it is ended without
 * membership entries (add what they take), before compression (which only makes it smaller). */
size_t rep__batch_size_with(const rep__batch_writer_t *w, size_t n);
/* entries: a packed msgpack array of membership entries (rep__trust_pack_entries), or NULL
 * for none. */
int rep__batch_end(rep__batch_writer_t *w, const rep__buf_t *entries, uint8_t **out, size_t *len);

/* Verify the frame and read the body; out->changes is malloc'd (rep__batch_clear()).
 * REP_ECORRUPT, REP_EVERSION. */
int rep__batch_decode(const uint8_t *p, size_t n, rep__batch_t *out);
void rep__batch_clear(rep__batch_t *b);

/* Frames (batches, version vectors, snapshots): begin writes magic, version and flags 0; end
 * compresses the body (with zip, when REP_FRAME_ZIP_MIN bytes or more and it gets smaller),
 * appends the checksum and hands the bytes out (b is reset, also on error). open checks magic,
 * checksum and version (flags outside allowed are REP_EVERSION) and expands a compressed body:
 * the body is [*body, *body + *bodyn), inside p or in *owned (malloc'd, NULL when not). */
void rep__frame_begin(rep__buf_t *b, const char magic[4]);
int rep__frame_end(rep__buf_t *b, bool zip, uint8_t **out, size_t *len);
int rep__frame_open(const uint8_t *p, size_t n, const char magic[4], unsigned allowed,
                    const uint8_t **body, size_t *bodyn, uint8_t **owned);

/* A reader shared by the frame bodies: a name checked as rep__name_check() does
 * (REP_ECORRUPT when it fails). */
int rep__rd_name(rep__rd_t *r, const char **s, uint32_t *n, size_t max, bool allow_empty);
/* An array of bins: *out malloc'd views (NULL when empty). */
int rep__rd_bins(rep__rd_t *r, rep__bytes_t **out, size_t *n);

/* Version vectors as bytes. */
int rep__vv_encode(const uint8_t office[REP_OFFICE_ID_BYTES], const rep_vv_entry_t *vv, size_t n,
                   uint8_t **out, size_t *len);
/* *vv is malloc'd (free()), sorted by actor; duplicate actors are REP_ECORRUPT. */
int rep__vv_decode(const uint8_t *p, size_t n, uint8_t office[REP_OFFICE_ID_BYTES],
                   rep_vv_entry_t **vv, size_t *nvv);
/* A bare vv: the entries alone, [[actor, seq]...] as in the framed body, with no frame and no
 * office (for the sync engine's messages, whose channel and HELLO already vouch for both).
 * rd checks what rep__vv_decode checks: sorted, no duplicate, no seq 0, actor 0 first only;
 * REP_ECORRUPT. *vv is malloc'd (NULL when empty). */
void rep__vv_pack(msgpack_packer *pk, const rep_vv_entry_t *vv, size_t n);
int rep__rd_vv(rep__rd_t *r, rep_vv_entry_t **vv, size_t *nvv);

#endif /* REP_CHANGE_H */
