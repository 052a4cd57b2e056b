/* facade.h — what the public facade's files share (internal): the replica handle and small
 * helpers for copying values out of the store. The facade is split by concern:
 * replica.c (open, close, errors), txn.c (writing), query.c (reading), exchange.c (batches).
 */
#ifndef REP_FACADE_H
#define REP_FACADE_H

#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "crdt.h"
#include "replica.h"
#include "store.h"

struct rep_replica {
    rep__store_t *st;
    char *dir;                   /* the replica directory (for the node's socket files) */
    uint8_t office[REP_OFFICE_ID_BYTES];
    char *office_name, *device_name;
    uint64_t actor;
    uint32_t incarnation;
    uint64_t (*clock_ms)(void *);
    void *clock_ctx;
    uint64_t max_drift_ms;
};

/* A device's name: given, or else this machine's host name (written to host). */
#define REP_HOST_NAME_MAX 256
const char *rep__device_name(const char *given, char host[REP_HOST_NAME_MAX]);
/* The wall clock in ms (the injected one, if any). */
uint64_t rep__wall_ms(const rep_replica_t *r);
/* A NUL-terminated copy of n bytes, or NULL when out of memory. */
char *rep__strndup(const char *s, size_t n);
/* Copy a stored canonical value out into *out (strings and bytes malloc'd, NUL-terminated);
 * release with rep__value_release(). */
int rep__value_copy(const uint8_t *p, size_t n, rep_value_t *out);
void rep__value_release(rep_value_t *v);
/* rep_replica_import() without telling a node serving the directory: for the node's own sync
 * engine, which knows what it imported. */
int rep__replica_import(rep_replica_t *r, const uint8_t *batch, size_t len,
                        rep_import_stats_t *stats);
/* What an answer to a version vector may be: changes (rep_replica_export), state
 * (rep_replica_snapshot), whichever serves the other side better (rep_replica_catchup), or,
 * for a relay, which cannot take a snapshot, the changes it lacks that this replica's log
 * holds, passing over those held here only as state (and what depends on them) instead of
 * refusing with REP_ESTATE. */
typedef enum rep__answer {
    REP__ANSWER_CHANGES,
    REP__ANSWER_STATE,
    REP__ANSWER_BEST,
    REP__ANSWER_RELAY
} rep__answer_t;
/* rep_replica_vv() decoded (*vv malloc'd, sorted by actor, actor 0 the membership log's
 * length), and the answer of that kind to such a vv: for the sync engine, whose messages
 * carry bare vvs (change.h rep__vv_pack). */
int rep__replica_vv(rep_replica_t *r, rep_vv_entry_t **vv, size_t *n);
int rep__replica_answer(rep_replica_t *r, const rep_vv_entry_t *vv, size_t n, size_t max_bytes,
                        rep__answer_t kind, uint8_t **out, size_t *len);
/* An op of an opened change as the public API shows it (rep_replica_history, the change
 * feed): field and value copied (the existence register's value left out). Release with
 * rep__ops_release, also after an error. */
int rep__op_export(rep_op_t *o, const rep__op_t *op);
void rep__ops_release(rep_op_t *ops, size_t n);
/* "collection/record" of a state key, malloc'd. */
char *rep__record_key_str(const rep__skey_t *k);

#endif /* REP_FACADE_H */
