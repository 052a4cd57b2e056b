/* crdt.h — the merge rules and the state's layout (internal, pure: no I/O).
 *
 * State keys: collection \0 record \0 field \0 kind(1 byte). Names hold no NUL, so a record's
 * fields are contiguous and sort by name; the record's existence register has the empty
 * field name and so comes first.
 *
 * A register field's state value is its list of siblings in (actor, seq) order:
 *   count(2) then per sibling: actor(8) seq(8) hlc(8) flags(1) userlen(1) user vallen(4) value
 * (big-endian; flags bit 0 = deleted; value = the canonical msgpack bytes). This form is
 * canonical, so the digest can hash it as stored.
 *
 * Rules (DESIGN.md, "Merge rules"): a write removes the siblings its change's causal context
 * covers and adds its own; concurrent ones stay. The visible value is the live sibling with
 * the highest (hlc, actor); a field whose siblings are all deleted is absent.
 */
#ifndef REP_CRDT_H
#define REP_CRDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "replica.h"

#define REP_MAX_SIBLINGS 4096
#define REP_STATE_KEY_MAX (REP_MAX_COLLECTION + REP_MAX_RECORD + REP_MAX_FIELD + 4)

/* A parsed or to-be-built state key (views, not NUL-terminated). */
typedef struct rep__skey {
    const char *coll, *rec, *field;
    size_t colln, recn, fieldn;
    uint8_t kind;
} rep__skey_t;

/* Split "collection/record" and check both parts: -EINVAL (malformed), REP_ETOOBIG. */
int rep__key_split(const char *key, rep__skey_t *out);
/* Check a field name (1..REP_MAX_FIELD bytes of UTF-8 without NUL, or "" when allow_empty). */
int rep__name_check(const char *s, size_t n, size_t max, bool allow_empty);
/* Build a state key into out (REP_STATE_KEY_MAX bytes); returns its length. With field NULL,
 * the record prefix "coll\0rec\0" only. */
size_t rep__skey_make(uint8_t *out, const rep__skey_t *k, bool with_field);
/* Parse a state key: REP_ECORRUPT if it is not one. */
int rep__skey_parse(const uint8_t *p, size_t n, rep__skey_t *out);

/* One sibling; user and val borrow from the decoded bytes or the writer. */
typedef struct rep__sib {
    uint64_t actor, seq, hlc;
    bool deleted;
    uint8_t usern;
    const char *user;
    uint32_t valn;
    const uint8_t *val;
} rep__sib_t;

/* A growable sibling list. */
typedef struct rep__sibs {
    rep__sib_t *v;
    size_t n, cap;
} rep__sibs_t;

void rep__sibs_free(rep__sibs_t *s);
/* Decode a stored sibling list (replacing s's content). REP_ECORRUPT, -ENOMEM. */
int rep__sibs_decode(rep__sibs_t *s, const uint8_t *p, size_t n);
/* Append the stored form of s. */
void rep__sibs_encode(rep__buf_t *b, const rep__sibs_t *s);

/* A change's causal context: everything its writer had seen when it wrote. */
typedef struct rep__ctx {
    uint64_t actor, seq;             /* the change's dot */
    const rep_vv_entry_t *deps;      /* sorted by actor, own actor excluded */
    size_t ndeps;
} rep__ctx_t;

/* Does the context cover (has its writer seen) the dot (actor, seq)? */
bool rep__ctx_covers(const rep__ctx_t *c, uint64_t actor, uint64_t seq);

/* Apply a register write: remove the siblings ctx covers, then add (or replace the sibling
 * with the same dot by) add; with add NULL only remove (a record delete's clear).
 * Returns 0, -ENOMEM, or REP_ETOOBIG past REP_MAX_SIBLINGS. */
int rep__reg_apply(rep__sibs_t *s, const rep__ctx_t *ctx, const rep__sib_t *add);

/* Index of the visible sibling, or -1 when none is live. */
int rep__reg_winner(const rep__sibs_t *s);

#endif /* REP_CRDT_H */
