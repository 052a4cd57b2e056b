/* crdt.h — the merge rules and the state's layout (internal, pure: no I/O).
 *
 * State keys: collection \0 record \0 field \0 kind(1 byte) [entry id]. Names hold no NUL, so
 * a record's fields are contiguous and sort by (name, kind); the record's existence register
 * has the empty field name and so comes first. Only log entries have an entry id, one key
 * each: hlc(8) actor(8) seq(8) position(4), so a log's keys sort in its one total order.
 *
 * State values (big-endian; every form is canonical, so the digest hashes them as stored):
 *   register  its siblings in (actor, seq) order: count(2), then per sibling
 *             actor(8) seq(8) hlc(8) flags(1: bit 0 deleted) userlen(1) user vallen(4) value
 *   counter   per-actor totals in actor order: count(2), then actor(8) total(8, two's compl.)
 *   set       elements in value order (bytes, then length): count(4), then per element
 *             vallen(4) value ndots(2) dots(actor(8) seq(8), in order)
 *   log entry userlen(1) user value
 * where a value is its canonical msgpack bytes.
 *
 * Rules (DESIGN.md, "Merge rules"): a register write removes the siblings its change's causal
 * context covers and adds its own; concurrent ones stay. The visible value is the live sibling
 * with the highest (hlc, actor); a field whose siblings are all deleted is absent. A counter
 * adds each change's delta to its actor's total. A set element is present while it has a dot:
 * an add removes the dots of that element its context covers and adds its own, a remove only
 * removes (so a concurrent add wins), a record delete removes covered dots of every element.
 * Log entries are only ever added.
 */
#ifndef REP_CRDT_H
#define REP_CRDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "replica.h"

#define REP_MAX_SIBLINGS 4096
#define REP_LOG_ID_BYTES 28
#define REP_STATE_KEY_MAX (REP_MAX_COLLECTION + REP_MAX_RECORD + REP_MAX_FIELD + 4 + REP_LOG_ID_BYTES)

/* A parsed or to-be-built state key (views, not NUL-terminated). */
typedef struct rep__skey {
    const char *coll, *rec, *field;
    size_t colln, recn, fieldn;
    uint8_t kind;
    const uint8_t *id;          /* log entries: REP_LOG_ID_BYTES, else NULL */
} rep__skey_t;

/* Split "collection/record" and check both parts: -EINVAL (malformed), REP_ETOOBIG. */
int rep__key_split(const char *key, rep__skey_t *out);
/* Check a field name (1..REP_MAX_FIELD bytes of UTF-8 without NUL, or "" when allow_empty). */
int rep__name_check(const char *s, size_t n, size_t max, bool allow_empty);
/* Build a state key into out (REP_STATE_KEY_MAX bytes); returns its length. Without
 * with_field, the record prefix "coll\0rec\0" only; with it, the field and kind, and the
 * entry id when k->id is set. */
size_t rep__skey_make(uint8_t *out, const rep__skey_t *k, bool with_field);
/* A log entry's id: hlc, actor, seq, position. */
void rep__log_id(uint8_t out[REP_LOG_ID_BYTES], uint64_t hlc, uint64_t actor, uint64_t seq,
                 uint32_t pos);
/* Parse a state key (a log entry's sets id): REP_ECORRUPT if it is not one. */
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

/* Counters: write the stored totals [p, p+n) (n 0: none yet) with delta added to actor's into
 * out; read the sum. REP_ECORRUPT for malformed bytes. Arithmetic wraps. */
int rep__ctr_add(const uint8_t *p, size_t n, uint64_t actor, int64_t delta, rep__buf_t *out);
int rep__ctr_sum(const uint8_t *p, size_t n, int64_t *sum);

/* Sets: rewrite the stored set [p, p+n) (n 0: empty) into out. With elem set, only that
 * element changes: its dots covered by ctx are removed, then dot (if not NULL: an add) is
 * added. With elem NULL (a record delete) every element loses its covered dots. Elements left
 * without dots are dropped; out->len 0 means the set is empty. REP_ECORRUPT, -ENOMEM. */
typedef struct rep__dot {
    uint64_t actor, seq;
} rep__dot_t;
int rep__set_apply(const uint8_t *p, size_t n, const rep__ctx_t *ctx, const uint8_t *elem,
                   size_t elemn, const rep__dot_t *dot, rep__buf_t *out);
/* Walk a stored set: calls fn for each element (its value bytes and its latest dot) in order;
 * fn returns 0 to go on. REP_ECORRUPT for malformed bytes. */
typedef int (*rep__set_fn)(void *ctx, const uint8_t *val, size_t valn, const rep__dot_t *last);
int rep__set_each(const uint8_t *p, size_t n, rep__set_fn fn, void *ctx);

/* ---- Catch-up by state (DESIGN.md) ---- */

/* A version vector to look dots up in: entries sorted by actor. */
typedef struct rep__vv {
    const rep_vv_entry_t *v;
    size_t n;
} rep__vv_t;

/* The vv's seq for actor (0 when absent). */
uint64_t rep__vv_seq(const rep__vv_t *vv, uint64_t actor);

/* Check a state entry read from untrusted bytes (a snapshot): the key parses and its names
 * are valid, the value is its kind's canonical stored form with canonical values and valid
 * user names, and every dot in it (sibling, set dot, counter actor, log entry) is one vv
 * covers. *max_hlc is raised to the highest clock in it. 0 or REP_ECORRUPT (-ENOMEM). */
int rep__state_check(const uint8_t *k, size_t kn, const uint8_t *v, size_t vn, const rep__vv_t *vv,
                     rep__sibs_t *scratch, uint64_t *max_hlc);

/* Merge one entry of two replicas' states whose version vectors are va and vb; either value
 * may be absent (length 0). A dot on both sides stays; a dot on one side only stays if the
 * other side's vv does not cover it (if it does, that side saw it and superseded it).
 * Counters take, per actor, the total of the side whose vv covers more of that actor (a's on
 * a tie). A log entry is only ever added. Writes the merged stored form into out (replacing
 * its content; out->len 0 means nothing is left: no entry). sa and sb are scratch. */
int rep__state_merge(uint8_t kind, const uint8_t *a, size_t an, const rep__vv_t *va, const uint8_t *b,
                     size_t bn, const rep__vv_t *vb, rep__sibs_t *sa, rep__sibs_t *sb, rep__buf_t *out);

#endif /* REP_CRDT_H */
