/* apply.h — applying changes to the store inside one write transaction (internal).
 *
 * One path for every change, local or remote: check it against the version vector
 * (duplicate, fork, missing dependencies), apply its ops to the state by the rules of
 * crdt.h, and record it in log, vv and hist. A change whose dependencies are missing waits
 * in pending and is applied by rep__apply_pending() once they are here (DESIGN.md
 * invariant 2). The caller runs all of this in one rep__store_write() callback.
 */
#ifndef REP_APPLY_H
#define REP_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "crdt.h"
#include "store.h"
#include "trust.h"

/* Meta keys (REP_DB_META). */
#define REP_META_FORMAT      "format"      /* u32 BE: REP_STORE_FORMAT */
#define REP_META_OFFICE      "office"      /* 16 bytes */
#define REP_META_OFFICE_NAME "office_name"
#define REP_META_DEVICE_NAME "device_name"
#define REP_META_SIGN_PK     "sign_pk"     /* 32 bytes */
#define REP_META_SIGN_SK     "sign_sk"     /* 64 bytes */
#define REP_META_INCARNATION "incarnation" /* u32 BE */
#define REP_META_ACTOR       "actor"       /* u64 BE */
#define REP_META_HLC         "hlc"         /* u64 BE: last clock value used or adopted */
#define REP_META_FILE_ID     "file_id"     /* dev(8) ino(8) nonce(16) of the data file */
#define REP_META_REFUSED     "refused"     /* u64 BE: imports refused whole (rep_info_t) */
#define REP_META_OWN         "own"         /* seq(8) ‖ hash(32) of this actor's last change */
#define REP_META_SEEN        "seen"        /* u64 BE: the highest clock of a change held */
#define REP_STORE_FORMAT     2   /* 1: changes unsealed, no membership log */

typedef struct rep__queued rep__queued_t; /* one op waiting for rep__applier_flush (apply.c) */

typedef struct rep__applier {
    rep__txn_t *t;
    uint8_t office[REP_OFFICE_ID_BYTES];
    rep__trust_t trust;         /* the membership and keys, as of rep__applier_begin */
    uint64_t wall_ms, max_drift_ms;
    uint64_t hlc;               /* last clock value, written back by rep__applier_end() */
    uint64_t seen;              /* the highest clock of any change held, adopted or not (a
                                   snapshot passes it on: its receiver saw those changes) */
    bool local;                 /* applying this replica's own new change: no clock to adopt */
    bool relay;                 /* this replica is a relay (no office key): changes are checked,
                                   stored and passed on, never opened or applied to state */
    rep_import_stats_t stats;
    rep__cur_t *state;          /* on REP_DB_STATE: each field is read and written through it */
    rep__sibs_t sibs;           /* scratch */
    rep__buf_t buf;             /* scratch */
    /* Deferred writes: with defer set, rep__apply_change records an applied change in log and
     * vv at once but only queues its ops (state) and its hist entries, which
     * rep__applier_flush() writes grouped by record, in key order. The queue points into the
     * changes: the caller keeps them (and their opened bodies) until the flush. */
    bool defer;
    rep__queued_t *q;
    size_t nq, capq;
} rep__applier_t;

/* Start applying in transaction t (reads the office, its membership and keys, and the clock). */
int rep__applier_begin(rep__applier_t *a, rep__txn_t *t, uint64_t wall_ms, uint64_t max_drift_ms);
/* Write what is queued (a->defer), then the clock, and release scratch memory. Call it on
 * every path after begin; with rc < 0 it only releases (and drops the queue). Returns rc, or an
 * error of its own. */
int rep__applier_end(rep__applier_t *a, int rc);

/* Apply the ops queued by rep__apply_change under a->defer, grouped by record in state-key
 * order, and put their hist entries; the queue is then empty. Within a record the ops keep the
 * order in which their changes were applied (a record delete touches only its own record's
 * fields, and every other op only its own field, so records are independent and the state
 * ends as if each change had been applied at once). Every path of this module that reads the
 * state or hist (pending changes, a rebuild) flushes first; a caller that reads them itself
 * flushes before it does. A change queued must stay alive, opened, until then. */
int rep__applier_flush(rep__applier_t *a);

/* Apply (or count as duplicate, park as pending, reject as fork) one decoded, opened change
 * whose author has been checked; the
 * outcome is counted in a->stats. Returns 0, or a negative code that must abort the txn. */
int rep__apply_change(rep__applier_t *a, const rep__change_t *c);
/* Apply every pending change whose dependencies are now here, until none is. */
int rep__apply_pending(rep__applier_t *a);

/* After revocations were taken (a->trust.removals): drop a revoked device's changes past its
 * cutoffs from pending and the log, and when this replica had some, rebuild the state from the
 * log (a->stats.rebuilt), forgetting what came by state. */
int rep__apply_revocations(rep__applier_t *a);

/* Refuse a change of actor as a fork: count it and note it (rep_info_t.forked). */
int rep__apply_fork(rep__applier_t *a, uint64_t actor, uint64_t seq);
/* Up to which seq this replica has an actor's changes only as state (0: none). */
int rep__base_get(rep__txn_t *t, uint64_t actor, uint64_t *seq);

/* This replica's own chain: the seq and hash of its actor's last change (0 and zeros before
 * the first). Kept apart from the vv, which a rebuild after a revocation may lower while own
 * changes wait in pending for state that has to come again: seqs are never reused. */
int rep__own_get(rep__txn_t *t, uint64_t *seq, uint8_t head[REP_HASH_BYTES]);
int rep__own_put(rep__txn_t *t, uint64_t seq, const uint8_t head[REP_HASH_BYTES]);

/* The version-vector entry of an actor: *seq 0 and a zero head when unknown. */
int rep__vv_get(rep__txn_t *t, uint64_t actor, uint64_t *seq, uint8_t head[REP_HASH_BYTES]);
/* The whole version vector, sorted by actor (malloc'd). */
int rep__vv_all(rep__txn_t *t, rep_vv_entry_t **out, size_t *n);

/* Meta helpers. */
int rep__meta_get_u64(rep__txn_t *t, const char *key, uint64_t *v);
int rep__meta_put_u64(rep__txn_t *t, const char *key, uint64_t v);
/* A meta value of exactly n bytes: 0, REP_ENOTFOUND, REP_ECORRUPT (another size). */
int rep__meta_get_fixed(rep__txn_t *t, const char *key, void *out, size_t n);

#endif /* REP_APPLY_H */
