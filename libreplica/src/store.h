/* store.h — the replica's LMDB environment (internal). The only module that sees LMDB.
 *
 * One environment per replica directory, with named databases:
 *   meta     format, office, device keys, actor, seq, clock, chain head
 *   log      change bytes, keyed by actor(8, big-endian) ‖ seq(8)
 *   state    materialized fields, keyed as crdt.h describes
 *   vv       actor(8) → seq(8) ‖ hash of that actor's latest change(32)
 *   pending  changes waiting for their dependencies, keyed like log
 *   hist     record key → dots of the changes that touched it (sorted duplicates)
 *   skew     actor(8) → how far ahead of our wall clock its clock was, at most (ms, 8)
 *   forks    actor(8) → the highest seq of a change of it refused as a fork (8)
 *   base     actor(8) → seq(8): this replica caught up by state up to seq, so its log may
 *            lack that actor's changes up to there (history is partial)
 *   members  seq(8) -> an entry of the office's membership log (trust.h)
 *   keys     epoch(4) -> the office key of that epoch (32; secret)
 *
 * Transactions run a callback: rep__store_write() begins a write transaction, calls fn, and
 * commits. When the map is full it aborts, grows the map and calls fn again, so fn must get
 * everything it writes from the transaction and its context (no side effects outside them
 * until it has returned 0). A map grown by another process is adopted when a transaction
 * begins. Readers never block writers (MVCC); MDB_NOTLS lets any thread use any read txn.
 */
#ifndef REP_STORE_H
#define REP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rep__db {
    REP_DB_META,
    REP_DB_LOG,
    REP_DB_STATE,
    REP_DB_VV,
    REP_DB_PENDING,
    REP_DB_HIST,
    REP_DB_SKEW,
    REP_DB_FORKS,
    REP_DB_BASE,
    REP_DB_MEMBERS,
    REP_DB_KEYS,
    REP_DB__COUNT
};

typedef struct rep__store rep__store_t;
typedef struct rep__txn rep__txn_t;
typedef struct rep__cur rep__cur_t;

/* A borrowed view of bytes in the map: valid until the transaction ends or the next write
 * to that database in it. */
typedef struct rep__slice {
    const uint8_t *p;
    size_t n;
} rep__slice_t;

/* Open (and with create, make) the environment in dir. REP_ENOTREPLICA when dir is not a
 * replica directory (or is missing without create, or is non-empty foreign content);
 * REP_EBUSY when this process has it open already; -errno otherwise. */
int rep__store_open(rep__store_t **out, const char *dir, bool create, bool nosync);
void rep__store_close(rep__store_t **sp);

/* Run fn in a read / write transaction. fn returns 0 to commit (write) or a negative code,
 * which is returned after the transaction is aborted. */
typedef int (*rep__txn_fn)(rep__txn_t *t, void *ctx);
int rep__store_read(rep__store_t *s, rep__txn_fn fn, void *ctx);
int rep__store_write(rep__store_t *s, rep__txn_fn fn, void *ctx);

/* Point reads and writes. get: 0, REP_ENOTFOUND. */
int rep__txn_get(rep__txn_t *t, int db, const void *k, size_t kn, rep__slice_t *v);
int rep__txn_put(rep__txn_t *t, int db, const void *k, size_t kn, const void *v, size_t vn);
/* Put a key greater than every key in db (MDB_APPEND: no search); REP_ECORRUPT otherwise. */
int rep__txn_append(rep__txn_t *t, int db, const void *k, size_t kn, const void *v, size_t vn);
/* Delete a key (with v: only that duplicate). REP_ENOTFOUND when absent. */
int rep__txn_del(rep__txn_t *t, int db, const void *k, size_t kn, const void *v, size_t vn);
/* Delete every entry of a database. */
int rep__txn_empty(rep__txn_t *t, int db);
/* Number of entries in a database; bytes of its leaf and overflow pages. */
int rep__txn_count(rep__txn_t *t, int db, uint64_t *n);
int rep__txn_bytes(rep__txn_t *t, int db, uint64_t *n);

/* Cursors: seek to the first key >= k (k NULL: the first key), then step. Each returns 0 with
 * the entry, or REP_ENOTFOUND at the end. A cursor is closed before its transaction ends. */
int rep__cur_open(rep__txn_t *t, int db, rep__cur_t **out);
void rep__cur_close(rep__cur_t **cp);
int rep__cur_seek(rep__cur_t *c, const void *k, size_t kn, rep__slice_t *key, rep__slice_t *val);
int rep__cur_next(rep__cur_t *c, rep__slice_t *key, rep__slice_t *val);
/* Next duplicate of the current key only (sorted-duplicate databases). */
int rep__cur_next_dup(rep__cur_t *c, rep__slice_t *key, rep__slice_t *val);
/* Delete the entry under the cursor. */
int rep__cur_del(rep__cur_t *c);

/* Read-modify-write through one cursor, which LMDB keeps valid across every write of the
 * transaction. rep__cur_get positions c on key k exactly: 0 with its value, or REP_ENOTFOUND.
 * rep__cur_put writes k -> v; with current true, c must be on k (rep__cur_get of k returned 0
 * and nothing moved c since), and the value there is replaced without searching the tree
 * again. Without it, the search starts from c's page when k falls on it. */
int rep__cur_get(rep__cur_t *c, const void *k, size_t kn, rep__slice_t *v);
int rep__cur_put(rep__cur_t *c, const void *k, size_t kn, const void *v, size_t vn, bool current);
/* Put n values of size bytes each, contiguous at v, as duplicates of k in a database of sorted
 * fixed-size duplicates (hist), with one search for k (the search starts from c's page when k
 * falls on it). A value already there stays as it is. */
int rep__cur_put_dups(rep__cur_t *c, const void *k, size_t kn, const void *v, size_t size, size_t n);

#endif /* REP_STORE_H */
