/*
 * replica.h — libreplica, a durable CRDT replica of an office's shared record.
 *
 * This header is the manual. Everything the library offers is declared and documented here;
 * nothing else is installed. It includes no dependency header.
 *
 * Data model: office → collection → record → field.
 *   - A record key is "collection/record": the collection is the part before the first '/',
 *     the record id is the rest (it may itself contain '/').
 *   - Field names are non-empty UTF-8 strings. The empty name is reserved for the hidden record
 *     existence register (DESIGN.md "_exists"); conflicts on it are reported with field "".
 *   - Values are typed: null, bool, int64, double, string (UTF-8), bytes.
 *
 * Limits (exceeding one gives REP_ETOOBIG, a malformed name gives -EINVAL):
 *   collection  1..REP_MAX_COLLECTION bytes, valid UTF-8, no '/' and no NUL
 *   record id   1..REP_MAX_RECORD bytes, valid UTF-8, no NUL
 *   field       1..REP_MAX_FIELD bytes, valid UTF-8, no NUL
 *   user        0..REP_MAX_USER bytes, valid UTF-8, no NUL
 *   value       strings and bytes up to REP_MAX_VALUE bytes
 *   ops         up to REP_MAX_OPS writes in one transaction
 *
 * Errors: every function that can fail returns 0 on success or a negative code: -errno for
 * system failures (-ENOMEM, -EINVAL for a malformed argument, -EIO, ...) or one of the REP_E*
 * codes below. rep_strerror() names any of them. There is no hidden error state.
 *
 * Ownership: input strings are borrowed for the duration of the call. Results are returned
 * through out-parameters and belong to the caller, who releases each with the _free function
 * its documentation names; the _free functions accept NULL, and those taking a pointer to
 * the caller's pointer set it to NULL.
 * Values are copied out of the store, so no result refers to mapped memory.
 *
 * Threads: a rep_replica_t may be used from any number of threads at once. A rep_txn_t belongs
 * to one thread at a time. Many processes may open the same replica directory at once; each
 * process must open a given directory only once (a second open returns REP_EBUSY).
 */
#ifndef REPLICA_H
#define REPLICA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(REP_BUILDING) && defined(__GNUC__)
#define REP_EXPORT __attribute__((visibility("default")))
#else
#define REP_EXPORT
#endif

#if defined(__GNUC__)
#define REP_WUR __attribute__((warn_unused_result))
#else
#define REP_WUR
#endif

/** Version of this header; rep_version() gives the library's. */
#define REP_VERSION_STRING "0.1.0"

/* ---- Error codes: a reserved negative range, clear of -errno values ---------------------- */
#define REP_ERROR_BASE   (-32000)
#define REP_ENOTFOUND    (-32000) /**< no such record, field or entry */
#define REP_ECORRUPT     (-32001) /**< bytes failed their checksum or do not decode */
#define REP_EVERSION     (-32002) /**< a newer format than this library understands */
#define REP_ENOTREPLICA  (-32003) /**< the directory is not a replica */
#define REP_EOFFICE      (-32004) /**< the bytes belong to another office */
#define REP_EBUSY        (-32005) /**< this directory is already open in this process */
#define REP_ETOOBIG      (-32006) /**< a name, value or transaction is over a documented limit */
#define REP_EEXIST       (-32007) /**< creating something that already exists */
#define REP_EFORK        (-32008) /**< a device's history forked: same (actor, seq), other data */
#define REP_EKIND        (-32009) /**< a field is used with a kind other than its own */
#define REP_EDONE        (-32010) /**< the transaction was already committed or aborted */
#define REP_ESTATE       (-32011) /**< the changes asked for are held here only as state (this
                                       replica caught up by a snapshot): send a snapshot */
#define REP_EEXPIRED     (-32012) /**< the invitation has expired */
#define REP_EREFUSED     (-32013) /**< the office's node refused the invitation (already used,
                                       expired, or not issued by it) */
#define REP_EAUTH        (-32014) /**< a signature or seal did not verify: forged, tampered, or
                                       written by a device that is not (or no longer) a member */
#define REP_EKEY         (-32015) /**< this replica lacks the office key these bytes are sealed
                                       with (it is not enrolled, or not for that epoch) */
#define REP_EROLE        (-32016) /**< a provisioning or invitation is for a relay and the
                                       caller did not ask for one (REP_OPEN_RELAY), or the
                                       other way round; or a relay was asked to write */
#define REP_ERROR_LAST   (-32016)

/* ---- Limits --------------------------------------------------------------------------------- */
#define REP_MAX_COLLECTION 64
#define REP_MAX_RECORD     128
#define REP_MAX_FIELD      64
#define REP_MAX_USER       64
#define REP_MAX_VALUE      (1u << 20)
#define REP_MAX_OPS        100000

/** Size of an office id, a digest. */
#define REP_OFFICE_ID_BYTES 16
#define REP_DIGEST_BYTES    32
/** Size of a device id: the hex of its Ed25519 public key, with the terminating NUL. */
#define REP_DEVICE_ID_SIZE  65

/* ---- Values ----------------------------------------------------------------------------------- */
typedef enum rep_type {
    REP_NULL = 0,
    REP_BOOL = 1,
    REP_INT = 2,
    REP_DOUBLE = 3,
    REP_STRING = 4,
    REP_BYTES = 5
} rep_type_t;

/**
 * A typed value. As an input it is built by the caller (see the rep_txn_set_* helpers) and
 * borrowed. As an output it is owned by the object that contains it, or, when a function
 * returns a rep_value_t **, by the caller, released with rep_value_free().
 * For REP_STRING, s.ptr is NUL-terminated (the terminator is not counted in s.len); a string
 * may itself contain NUL bytes, so s.len is its length.
 */
typedef struct rep_value {
    rep_type_t type;
    union {
        int b;      /**< REP_BOOL: 0 or 1 */
        int64_t i;  /**< REP_INT */
        double d;   /**< REP_DOUBLE */
        struct {
            const char *ptr;
            size_t len;
        } s;        /**< REP_STRING, REP_BYTES */
    } u;
} rep_value_t;

/**
 * Field kinds (DESIGN.md "Merge rules"). A field is keyed by (name, kind): a name has one kind
 * for its life (writing another kind to it is REP_EKIND), and two replicas that concurrently
 * start a field of one name with two kinds get two fields, both kept and reported as a clash
 * (each may still be written; delete the one that is not wanted, if it is a register or set).
 *   register  multi-value register: concurrent values are all kept; the winner is shown
 *   counter   PN-counter of int64: the sum of every increment made anywhere (wraps on overflow)
 *   set       add-wins observed-remove set of values
 *   log       append-only list, in the same order everywhere: (hlc, actor, seq, position)
 * A record delete removes the register values and set members it had seen. Counters and
 * logs are never reset: they are hidden with a deleted record and reappear, whole, when the
 * record is written again (by an update concurrent with the delete, or a later one).
 */
typedef enum rep_kind {
    REP_KIND_REGISTER = 1,
    REP_KIND_COUNTER = 2,
    REP_KIND_SET = 3,
    REP_KIND_LOG = 4
} rep_kind_t;

/* ---- Opening a replica ------------------------------------------------------------------------ */
typedef struct rep_replica rep_replica_t;

/** Flags for rep_open_opts_t.flags. */
#define REP_OPEN_CREATE  0x1u /**< create the replica (and the directory) if it does not exist */
#define REP_OPEN_NOSYNC  0x2u /**< commits are not flushed to disk: tests and benchmarks only */
#define REP_OPEN_EXCL    0x4u /**< with REP_OPEN_CREATE: fail with REP_EEXIST if it is a replica */
#define REP_OPEN_RELAY   0x8u /**< with a provisioning: this device is to be a relay (a cloud
                                   node enrolled with role "relay", that holds no office key and
                                   stores and forwards sealed changes it cannot read). Without
                                   it a relay's provisioning is refused, and with it any other
                                   (REP_EROLE), so neither is made by mistake */

/**
 * Options for rep_replica_open(). Zero-initialize, then set what you need; a NULL pointer
 * means all defaults.
 */
typedef struct rep_open_opts {
    unsigned flags;              /**< REP_OPEN_* */
    const char *office_name;     /**< with REP_OPEN_CREATE: the office's name (default "office") */
    const char *device_name;     /**< with REP_OPEN_CREATE: this workstation's name (default: host name) */
    const uint8_t *provision;    /**< with REP_OPEN_CREATE: a new device of an existing office,
                                      from rep_replica_provision()'s bytes (its identity, the
                                      membership log and the office keys); NULL founds a new
                                      office, with this device as its first admin */
    size_t provision_len;
    /** Wall clock in ms since the epoch; NULL uses the system clock. For tests. */
    uint64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    uint64_t max_drift_ms;       /**< how far ahead of the wall clock a remote HLC is adopted;
                                      0 means the default, 5 minutes; at most one day */
} rep_open_opts_t;

/**
 * Open the replica stored in directory @p dir.
 *
 * With REP_OPEN_CREATE, a missing or empty directory becomes a new replica (its parent must
 * exist): a device key pair is generated and the actor id is derived from it and incarnation 0
 * (DESIGN.md). An existing replica is opened as it is, unless REP_OPEN_EXCL is also given.
 * Without REP_OPEN_CREATE, a directory that does not hold a replica is an error. When making
 * a new replica fails, nothing the call made is left behind (the files, and the directory if
 * it made it), so it can simply be run again.
 *
 * @param[out] out   the open replica, or NULL on failure; close with rep_replica_close()
 * @param[in]  dir   the replica directory
 * @param[in]  opts  options, or NULL for defaults
 * @return 0; REP_ENOTREPLICA when @p dir holds something that is not a replica (or does not
 *         exist and REP_OPEN_CREATE is not given); REP_EVERSION for a newer format;
 *         REP_EBUSY if this process already has @p dir open; REP_ECORRUPT for damaged metadata;
 *         REP_EEXIST with REP_OPEN_EXCL when @p dir is a replica already; with a
 *         provisioning: REP_EAUTH when its membership log does not enroll the device, REP_EKEY
 *         when it lacks the device's key or the office key, REP_EROLE for a relay's without
 *         REP_OPEN_RELAY (or the other way round); -EINVAL for a malformed name or an
 *         out-of-range option; -errno for system failures.
 */
REP_EXPORT REP_WUR int
rep_replica_open(rep_replica_t **out, const char *dir, const rep_open_opts_t *opts);

/** Close a replica and set *@p rp to NULL. Accepts NULL. No transaction may be open on it. */
REP_EXPORT void
rep_replica_close(rep_replica_t **rp);

/* ---- Writing: transactions -------------------------------------------------------------------- */
typedef struct rep_txn rep_txn_t;

/**
 * Begin a transaction. Writes are buffered in memory until rep_txn_commit(); nothing is read
 * or locked until then, so a transaction never blocks readers or other writers.
 *
 * @param[in]  r     an open replica
 * @param[in]  user  who makes the change (audit trail), or NULL for none; copied
 * @param[out] out   the transaction, or NULL on failure
 * @return 0; -EINVAL for a malformed user name; REP_ETOOBIG; -ENOMEM.
 */
REP_EXPORT REP_WUR int
rep_txn_begin(rep_replica_t *r, const char *user, rep_txn_t **out);

/**
 * Set a register field of a record to @p value. Creates the record if needed. A later write to
 * the same field in the same transaction replaces this one. A refused call buffers nothing and
 * leaves the transaction usable.
 * @return 0; -EINVAL for a malformed key, field or value (e.g. a string that is not UTF-8);
 *         REP_ETOOBIG; REP_EDONE after commit or abort; -ENOMEM.
 */
REP_EXPORT REP_WUR int
rep_txn_set(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value);

/** Convenience forms of rep_txn_set(); same returns. @p s is NUL-terminated UTF-8. */
REP_EXPORT REP_WUR int rep_txn_set_str(rep_txn_t *t, const char *key, const char *field, const char *s);
REP_EXPORT REP_WUR int rep_txn_set_int(rep_txn_t *t, const char *key, const char *field, int64_t i);
REP_EXPORT REP_WUR int rep_txn_set_bool(rep_txn_t *t, const char *key, const char *field, int b);
REP_EXPORT REP_WUR int rep_txn_set_double(rep_txn_t *t, const char *key, const char *field, double d);
REP_EXPORT REP_WUR int rep_txn_set_null(rep_txn_t *t, const char *key, const char *field);
REP_EXPORT REP_WUR int rep_txn_set_bytes(rep_txn_t *t, const char *key, const char *field,
                                         const void *p, size_t n);

/**
 * Add @p delta (may be negative) to a counter field.
 * @return as rep_txn_set(); REP_EKIND (at commit) when the field exists with another kind
 *         only, or when this transaction writes it with two kinds.
 */
REP_EXPORT REP_WUR int
rep_txn_incr(rep_txn_t *t, const char *key, const char *field, int64_t delta);

/**
 * Add @p value to a set field. Adding a member twice is harmless.
 * @return as rep_txn_incr().
 */
REP_EXPORT REP_WUR int
rep_txn_add(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value);

/**
 * Remove @p value from a set field: the adds of it this replica has seen are removed; an add
 * made concurrently elsewhere wins. Within one transaction the last add or remove of a member
 * counts.
 * @return as rep_txn_incr().
 */
REP_EXPORT REP_WUR int
rep_txn_remove(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value);

/**
 * Append @p value as a new entry of a log field. Entries are never removed; every replica
 * shows them in one order. Several appends in one transaction keep their call order.
 * @return as rep_txn_incr().
 */
REP_EXPORT REP_WUR int
rep_txn_append(rep_txn_t *t, const char *key, const char *field, const rep_value_t *value);

/**
 * Delete one register field of a record (a tombstone that supersedes the values this replica
 * has seen).
 * @return as rep_txn_set().
 */
REP_EXPORT REP_WUR int
rep_txn_del_field(rep_txn_t *t, const char *key, const char *field);

/**
 * Delete a whole record. Earlier writes to it in this transaction are dropped; later writes in
 * this transaction recreate it (with the fields they write, and the record's counters and logs,
 * which a delete never resets). An update made concurrently elsewhere wins over the delete:
 * the record stays and the conflict is reported.
 * @return as rep_txn_set().
 */
REP_EXPORT REP_WUR int
rep_txn_del_record(rep_txn_t *t, const char *key);

/**
 * Commit: the buffered writes become one change, applied and made durable in one LMDB write
 * transaction (log, state and version vector together). When this returns 0 the change
 * survives a crash or power loss (unless REP_OPEN_NOSYNC). An empty transaction commits
 * nothing and returns 0. The transaction is finished either way; free it with rep_txn_free().
 * A full map is grown and the commit retried; it never fails for that.
 * @param[out] seq  if not NULL, the sequence number of the change (0 when empty)
 * @return 0; REP_EDONE if already finished; REP_EKIND when a write names a field that has
 *         another kind (nothing is written); REP_EROLE on a relay, which cannot write;
 *         REP_EKEY when this device was revoked (it lacks the current office key); -errno
 *         on system failure (nothing is written).
 */
REP_EXPORT REP_WUR int
rep_txn_commit(rep_txn_t *t, uint64_t *seq);

/** Abort: drop the buffered writes. The transaction is finished. */
REP_EXPORT void
rep_txn_abort(rep_txn_t *t);

/** Free a transaction (aborting it if still open) and set *@p tp to NULL. Accepts NULL. */
REP_EXPORT void
rep_txn_free(rep_txn_t **tp);

/* ---- Reading ------------------------------------------------------------------------------------ */

/**
 * Read the value of one field: a register's winner, a counter's total (REP_INT). If fields of
 * several kinds share the name, the register is read, else the counter.
 * @param[out] out  on success a value the caller owns; release with rep_value_free()
 * @return 0; REP_ENOTFOUND when the record is deleted or the field has no live value;
 *         REP_EKIND for a set or log (read those with rep_replica_get_record());
 *         -EINVAL for a malformed key; another negative code on failure.
 */
REP_EXPORT REP_WUR int
rep_replica_get(rep_replica_t *r, const char *key, const char *field, rep_value_t **out);

/** Free a value returned by rep_replica_get() and set *@p vp to NULL. Accepts NULL. */
REP_EXPORT void
rep_value_free(rep_value_t **vp);

/**
 * Are @p a and @p b the same value: the same type and the same content (doubles bit for bit,
 * as they are stored; strings and bytes byte for byte)? 1 or 0; NULL is equal only to NULL.
 */
REP_EXPORT int
rep_value_equal(const rep_value_t *a, const rep_value_t *b);

/** A member of a set or an entry of a log. */
typedef struct rep_entry {
    uint64_t actor, seq; /**< the change that added it (for a set: its latest add seen) */
    uint64_t hlc;        /**< log: its clock; set: 0 */
    const char *user;    /**< log: who appended it ("" if unknown); set: "" */
    rep_value_t value;
} rep_entry_t;

/** One visible field of a record. */
typedef struct rep_field {
    const char *name;
    rep_kind_t kind;
    rep_value_t value;   /**< register: the winner; counter: the total (REP_INT); else REP_NULL */
    unsigned siblings;   /**< register: number of values kept, deletes included: more than 1 is
                              a conflict (see rep_replica_conflicts()); other kinds: 1 */
    size_t nitems;
    rep_entry_t *items;  /**< set: members in the order of their canonical encoding (the same
                              on every replica); log: entries in log order */
    int kind_clash;      /**< 1 when the record has a field of this name of another kind too */
} rep_field_t;

/** A visible record: its fields in (name, kind) order. */
typedef struct rep_record {
    const char *key;        /**< "collection/record" */
    size_t nfields;
    rep_field_t *fields;
    int delete_conflict;    /**< 1 when a delete of the record was concurrent with an update */
} rep_record_t;

/**
 * Read a whole record.
 * @param[out] out  the record (caller owns; rep_record_free())
 * @return 0; REP_ENOTFOUND when it does not exist or is deleted; -EINVAL for a malformed key.
 */
REP_EXPORT REP_WUR int
rep_replica_get_record(rep_replica_t *r, const char *key, rep_record_t **out);

/** Free a record and set *@p recp to NULL. Accepts NULL. */
REP_EXPORT void
rep_record_free(rep_record_t **recp);

/** A list of records in key order. */
typedef struct rep_list {
    size_t n;
    rep_record_t *records;
} rep_list_t;

/**
 * List the visible records of a collection in key order (byte order of the record id).
 * @param[in]  coll    the collection
 * @param[in]  prefix  only records whose id starts with it, or NULL for all
 * @param[in]  limit   at most this many records, or 0 for all
 * @param[out] out     the list (caller owns; rep_list_free()); empty when nothing matches
 * @return 0; -EINVAL for a malformed collection.
 */
REP_EXPORT REP_WUR int
rep_replica_list(rep_replica_t *r, const char *coll, const char *prefix, size_t limit,
                 rep_list_t **out);

/** Free a list and set *@p lp to NULL. Accepts NULL. */
REP_EXPORT void
rep_list_free(rep_list_t **lp);

/** One value kept for a field: a sibling of a multi-value register. */
typedef struct rep_sibling {
    uint64_t actor;      /**< the device incarnation that wrote it */
    uint64_t seq;        /**< that device's change number: (actor, seq) is the dot */
    uint64_t hlc;        /**< hybrid logical clock: ms since the epoch << 16 | counter */
    const char *user;    /**< who wrote it ("" if unknown) */
    int deleted;         /**< 1 for a delete; value is then REP_NULL */
    int winner;          /**< 1 for the sibling rep_replica_get() shows */
    rep_value_t value;
} rep_sibling_t;

/**
 * A conflict, in a visible record: a register holding more than one sibling and showing a value
 * (concurrent writes, none of them lost), a record deleted concurrently with an update (field
 * ""), or a kind clash (the same field name started with two kinds concurrently: each of the
 * fields is listed, with kind_clash set). These are the fields rep_replica_get_record() flags.
 */
typedef struct rep_conflict {
    const char *key;     /**< "collection/record" */
    const char *field;   /**< the field, or "" for the record's existence (delete vs update) */
    rep_kind_t kind;
    int kind_clash;      /**< 1 when another field of this name has another kind */
    size_t n;
    rep_sibling_t *siblings; /**< a register's siblings in (actor, seq) order; none for a
                                  counter, set or log in a clash */
} rep_conflict_t;

typedef struct rep_conflicts {
    size_t n;
    rep_conflict_t *items;   /**< in key, field order */
} rep_conflicts_t;

/**
 * List the fields with concurrent values.
 * @param[in]  key  "collection/record" to look at one record, or NULL for the whole replica
 * @param[out] out  the conflicts (caller owns; rep_conflicts_free()); empty when there are none
 * @return 0; -EINVAL for a malformed key.
 */
REP_EXPORT REP_WUR int
rep_replica_conflicts(rep_replica_t *r, const char *key, rep_conflicts_t **out);

/** Free conflicts and set *@p cp to NULL. Accepts NULL. */
REP_EXPORT void
rep_conflicts_free(rep_conflicts_t **cp);

/**
 * What one change did to a record. Every change that writes a record also writes its existence
 * register, field "": REP_OP_SET on "" (value REP_NULL here) means the record was written,
 * REP_OP_DEL on "" that it was deleted. A record delete is REP_OP_CLEAR (every value the writer
 * had seen removed) followed by REP_OP_DEL on "".
 */
typedef enum rep_op_type {
    REP_OP_SET = 1,     /**< set a field's value */
    REP_OP_DEL = 2,     /**< delete a field ("" : the record) */
    REP_OP_CLEAR = 3,   /**< remove the values the writer had seen from every field of the record */
    REP_OP_INCR = 4,    /**< add value (REP_INT) to a counter */
    REP_OP_ADD = 5,     /**< add value to a set */
    REP_OP_REMOVE = 6,  /**< remove value from a set */
    REP_OP_APPEND = 7   /**< append value to a log */
} rep_op_type_t;

typedef struct rep_op {
    rep_op_type_t type;
    const char *field;   /**< "" is the record's existence */
    rep_kind_t kind;
    rep_value_t value;   /**< for REP_OP_SET, _INCR, _ADD, _REMOVE, _APPEND */
} rep_op_t;

typedef struct rep_change_info {
    uint64_t actor, seq, hlc;
    const char *user;
    size_t nops;
    rep_op_t *ops;       /**< the change's operations on this record only */
} rep_change_info_t;

typedef struct rep_history {
    size_t n;
    rep_change_info_t *changes; /**< in (hlc, actor, seq) order */
    int partial;                /**< 1 when this replica caught up by state (a snapshot), so
                                     changes before that may be missing from this list */
} rep_history_t;

/**
 * The changes that touched a record, oldest first.
 * @param[out] out  the history (caller owns; rep_history_free()); empty for an unknown record
 * @return 0; -EINVAL for a malformed key.
 */
REP_EXPORT REP_WUR int
rep_replica_history(rep_replica_t *r, const char *key, rep_history_t **out);

/** Free a history and set *@p hp to NULL. Accepts NULL. */
REP_EXPORT void
rep_history_free(rep_history_t **hp);

/* ---- The change feed: the changes after a cursor, for a connector ------------------------- */

/** One record a change touched, with the change's operations on it. */
typedef struct rep_feed_record {
    const char *key;     /**< "collection/record" */
    size_t nops;
    rep_op_t *ops;       /**< in the change's order; as in rep_change_info_t (field "" is the
                              record's existence: REP_OP_SET on it, value REP_NULL, means the
                              record was written, REP_OP_DEL that it was deleted) */
} rep_feed_record_t;

/** One change of the feed. */
typedef struct rep_feed_change {
    uint64_t actor, seq, hlc;    /**< which device incarnation, its change number, its clock */
    const char *user;            /**< who made it ("" if unknown) */
    char device_id[REP_DEVICE_ID_SIZE]; /**< the writing device (rep_device_t.id) */
    const char *device_name;     /**< its name, as enrolled */
    size_t nrecords;
    rep_feed_record_t *records;  /**< in the order the change first touches them */
} rep_feed_change_t;

/** What rep_replica_changes() found. */
typedef struct rep_feed {
    size_t n;
    rep_feed_change_t *changes;  /**< causal order: a change comes after every change it had
                                      seen; concurrent ones in (hlc, actor, seq) order */
    char *cursor;                /**< the cursor after them: pass it as `since` next time */
    int more;                    /**< 1 when the limit stopped the call with changes left */
    int partial;                 /**< 1 when changes after `since` were skipped because this
                                      replica holds them only as state (it caught up from a
                                      snapshot): their effect is in the records, not in the feed */
} rep_feed_t;

/** Flags for rep_replica_changes(). */
#define REP_FEED_INTERNAL 0x1u   /**< also records of collections starting with '_' (the
                                      library's own, like "_devices"; skipped by default) */

/**
 * The change feed: the changes this replica holds that come after @p since, for a connector
 * that pushes the office's edits somewhere else (a cloud EMR) and resumes where it stopped.
 *
 * The cursor is an opaque printable string (URL-safe base64, no spaces) of what has been
 * handed out: per device incarnation (actor), the highest change number. "The changes after
 * it" are those of the log it does not cover, so a change that reaches this replica late
 * (from a workstation that was offline) still comes, whatever its clock. Changes come in
 * causal order; with a limit, the changes given are, per actor, the first ones not given yet,
 * so the returned cursor is exact: the next call gives each change once, none skipped. A
 * cursor names its office (REP_EOFFICE for another's) and is valid on any replica of it.
 *
 * Not in the feed: changes held here only as state (this replica caught up from a snapshot:
 * they are skipped and @c partial is set); pending changes, until their dependencies arrive;
 * membership (enrollments and revocations are not changes); records of collections starting
 * with '_' unless REP_FEED_INTERNAL; changes of a revoked device after its cutoff (refused
 * everywhere). A late change of a revoked device that was handed out before the revocation
 * arrived is dropped by the rebuild it causes, and the feed does not announce that.
 *
 * @param[in]  since  a cursor from an earlier call, or NULL, "" or "0" for the beginning
 * @param[in]  limit  at most this many changes (those that touch only skipped records do not
 *                    count), or 0 for all
 * @param[in]  flags  REP_FEED_* or 0
 * @param[out] out    the changes and the next cursor (caller owns; rep_feed_free())
 * @return 0; -EINVAL for a malformed cursor (mistyped, cut short) or argument; REP_EOFFICE for
 *         a cursor of another office; REP_EVERSION for a newer cursor; REP_EROLE on a relay
 *         (it cannot read the changes it carries); -ENOMEM; another negative code on
 *         failure. Safe from any thread; reads one consistent snapshot.
 */
REP_EXPORT REP_WUR int
rep_replica_changes(rep_replica_t *r, const char *since, size_t limit, unsigned flags,
                    rep_feed_t **out);

/** Free a feed and set *@p fp to NULL. Accepts NULL. */
REP_EXPORT void
rep_feed_free(rep_feed_t **fp);

/**
 * Hash of the replicated state (every field's siblings with dots, clocks, users and values, in
 * key order; not the local change log or bookkeeping). Two replicas have equal digests iff they
 * hold the same replicated state.
 * @param[out] out  REP_DIGEST_BYTES bytes
 */
REP_EXPORT REP_WUR int
rep_replica_digest(rep_replica_t *r, uint8_t out[REP_DIGEST_BYTES]);

/** One entry of a version vector: this replica has every change of @p actor up to @p seq. */
typedef struct rep_vv_entry {
    uint64_t actor;
    uint64_t seq;
} rep_vv_entry_t;

/** What a replica is and holds. */
typedef struct rep_info {
    uint8_t office_id[REP_OFFICE_ID_BYTES];
    const char *office_name;
    const char *device_name;
    uint64_t actor;          /**< this replica's current actor id */
    uint32_t incarnation;    /**< 0 for a new replica; a new one (and a new actor) is taken when
                                  the replica's file turns out to be a copy or a restore */
    uint64_t seq;            /**< number of the last local change */
    uint64_t hlc;            /**< last clock value used or adopted */
    uint64_t changes;        /**< changes in the log */
    uint64_t pending;        /**< changes waiting for their dependencies */
    uint64_t records;        /**< visible records */
    uint64_t conflicts;      /**< conflicts as rep_replica_conflicts() lists them */
    size_t nvv;
    rep_vv_entry_t *vv;      /**< in actor order */
    size_t nskewed;
    rep_vv_entry_t *skewed;  /**< devices (actors) seen writing with a clock beyond this one's
                                  wall clock + max drift; seq is how far ahead, in ms, at most */
    size_t nforked;
    rep_vv_entry_t *forked;  /**< devices (actors) whose history forked: a change of theirs was
                                  refused because another with its (actor, seq) was here, or
                                  its hash chain did not continue; seq is the highest refused */
    uint64_t members;        /**< entries in the office's membership log */
    uint64_t refused;        /**< imports refused whole as forged, tampered, malformed, of
                                  another office, or sealed with a key this replica lacks
                                  (REP_EAUTH, REP_ECORRUPT, REP_EOFFICE, REP_EKEY, REP_EVERSION):
                                  hostile or damaged input seen, nothing of it applied */
    int relay;               /**< 1 for a relay: a member without office keys, whose log holds
                                  the office's changes sealed (it cannot read them, has no
                                  state, and cannot write); 0 for a workstation */
} rep_info_t;

/** Describe a replica. @param[out] out caller owns; rep_info_free(). */
REP_EXPORT REP_WUR int
rep_replica_info(rep_replica_t *r, rep_info_t **out);

/** Free an info and set *@p ip to NULL. Accepts NULL. */
REP_EXPORT void
rep_info_free(rep_info_t **ip);

/**
 * What this replica waits for: changes that arrived before their dependencies sit in pending,
 * and these are the changes still missing. For each actor listed, every change after this
 * replica's version-vector entry for it, up to and including seq, is wanted.
 * @param[out] out  the list in actor order (caller owns; rep_free()); NULL when nothing waits
 * @param[out] n    its length
 */
REP_EXPORT REP_WUR int
rep_replica_missing(rep_replica_t *r, rep_vv_entry_t **out, size_t *n);

/* ---- Exchange: changes as bytes ------------------------------------------------------------- */

/**
 * Encode this replica's version vector (what it has) for another replica to answer with
 * rep_replica_export(). The bytes are checksummed and carry the office id.
 * @param[out] out  the bytes (caller owns; rep_free())
 * @param[out] len  their length
 */
REP_EXPORT REP_WUR int
rep_replica_vv(rep_replica_t *r, uint8_t **out, size_t *len);

/**
 * Encode the changes another replica lacks, in this replica's causal order, as a batch.
 *
 * @param[in]  vv     the other replica's rep_replica_vv() bytes, or NULL for everything
 * @param[in]  vvlen  their length (0 with NULL)
 * @param[in]  max_bytes  stop adding changes once the batch would exceed this many bytes (at
 *                        least one change is always included); 0 for no bound
 * @param[out] out        the batch (caller owns; rep_free()); it holds no change when the
 *                        other side lacks nothing
 * @param[out] len        its length
 * @param[out] more       if not NULL, set to 1 when changes were left out for the size bound
 * @return 0; REP_ECORRUPT for damaged vv bytes; REP_EOFFICE for another office's vv;
 *         REP_ESTATE when this replica has some of those changes only as state (it caught up
 *         by a snapshot): rep_replica_catchup() answers with a snapshot then.
 */
REP_EXPORT REP_WUR int
rep_replica_export(rep_replica_t *r, const uint8_t *vv, size_t vvlen, size_t max_bytes,
                   uint8_t **out, size_t *len, int *more);

/**
 * Encode this replica's whole state as a snapshot (DESIGN.md "Catch-up by state"): every
 * field's current entries with their causal metadata (dots, clocks, users), and the version
 * vector with each device's chain head — not the changes that made them, so superseded values
 * are not sent. rep_replica_import() merges a snapshot into any replica of the office, empty
 * or not, by the same rules as changes; the result equals having applied the changes.
 * The receiver's log does not get those changes: its history of them is partial
 * (rep_history_t.partial), and it answers peers that need them with snapshots too.
 * @param[out] out  the snapshot (caller owns; rep_free())
 * @param[out] len  its length
 */
REP_EXPORT REP_WUR int
rep_replica_snapshot(rep_replica_t *r, uint8_t **out, size_t *len);

/**
 * What another replica needs, whichever way is smaller: the changes it lacks (as
 * rep_replica_export()), or a snapshot (as rep_replica_snapshot()) when this replica's log no
 * longer holds some of those changes, or when the changes would take more bytes than the
 * state (a replica far behind or empty). A snapshot is one frame and is not split by
 * max_bytes: when it exceeds max_bytes and the log has the changes, changes are sent instead.
 * Parameters and returns as rep_replica_export() (more is always 0 for a snapshot).
 */
REP_EXPORT REP_WUR int
rep_replica_catchup(rep_replica_t *r, const uint8_t *vv, size_t vvlen, size_t max_bytes,
                    uint8_t **out, size_t *len, int *more);

/** What an import did. */
typedef struct rep_import_stats {
    uint64_t changes;     /**< changes in the batch */
    uint64_t applied;     /**< newly applied (including earlier pending ones released by them) */
    uint64_t duplicates;  /**< already here: counted no-ops */
    uint64_t pending;     /**< changes waiting for missing dependencies after the import (all of
                               them, not only this batch's) */
    uint64_t forks;       /**< rejected: same (actor, seq) as a change here with other content,
                               or a hash chain that does not continue the actor's (also kept
                               in rep_info_t.forked) */
    uint64_t skewed;      /**< carried a clock beyond wall clock + max drift (applied, not adopted) */
    uint64_t entries;     /**< a snapshot: the state entries it carried (changes is then 0) */
    uint64_t members;     /**< entries of the office's membership log newly taken */
    uint64_t revoked;     /**< refused: written by a revoked device after its cutoff (a counted
                               no-op, like a duplicate; the rest of the batch applies) */
    uint64_t rebuilt;     /**< 1 when a revocation it brought made this replica rebuild its
                               state from its log, without the revoked device's late changes
                               (what it had caught up by state comes again from the office) */
} rep_import_stats_t;

/**
 * Apply a batch made by rep_replica_export() (the bytes of a bundle file are the same), or
 * merge a snapshot made by rep_replica_snapshot() or rep_replica_catchup().
 *
 * The whole batch is verified first (checksum, office, the membership entries it carries,
 * each change's author, signature and seal, every change decodes); a corrupted, truncated,
 * forged or tampered batch is rejected whole, the replica is unchanged, and the refusal is
 * counted (rep_info_t.refused). A change of a device this replica does not know as a member
 * is refused as forged (REP_EAUTH): a batch carries the membership entries its receiver lacks,
 * as far as the vv it was made for says. Then every change is applied
 * in one durable write transaction: a crash leaves the replica either before or after the
 * whole import. Changes already here are counted no-ops; changes whose dependencies are
 * missing wait, durably, and are applied when those arrive.
 *
 * A snapshot is verified whole the same way (every entry's form, names and values, and every
 * dot covered by its version vector), then merged in one durable transaction. It is refused
 * whole, with REP_EFORK, when it contradicts a device's hash chain known here (the forked
 * devices are noted as rep_info_t.forked says) or claims changes of this replica's own device
 * that it has not made.
 *
 * @param[out] stats  if not NULL, what happened
 * @return 0; REP_ECORRUPT; REP_EVERSION; REP_EOFFICE for another office's batch; REP_EAUTH
 *         for a forged or altered one (or a device not enrolled here); REP_EKEY when it is
 *         sealed with an office key this replica lacks; REP_EFORK for a refused snapshot or a
 *         membership log that forked; REP_ESTATE when its membership entries do not continue
 *         this replica's log; -errno.
 */
REP_EXPORT REP_WUR int
rep_replica_import(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats);

/** What rep_replica_import_progress() is doing when it reports. */
typedef enum rep_import_phase {
    REP_IMPORT_VERIFYING = 1, /**< checking every signature and seal: done of total changes
                                   (a snapshot: 0 of 1, then 1 of 1) */
    REP_IMPORT_APPLYING = 2   /**< applying, in the one transaction: done of total changes
                                   (a snapshot: 0 of its entries, then all of them) */
} rep_import_phase_t;

/** A progress report: called from the importing thread, inside the import's transaction, so
    it must not call the library on the same replica; keep it short (print a line). */
typedef void (*rep_import_progress_fn)(void *ctx, rep_import_phase_t phase, uint64_t done,
                                       uint64_t total);

/**
 * rep_replica_import() with progress reports, for a large bundle: @p fn is called when each
 * phase starts (done 0), every 4096 changes applied, and when each phase ends (done ==
 * total). Should the transaction have to start again (the map grew), the phases are reported
 * again from 0. Nothing is applied unless every change verifies, as with rep_replica_import().
 * @param[in] fn   the reporter, or NULL for none (then this is rep_replica_import())
 * @param[in] ctx  passed to fn
 * @return as rep_replica_import().
 */
REP_EXPORT REP_WUR int
rep_replica_import_progress(rep_replica_t *r, const uint8_t *batch, size_t len,
                            rep_import_progress_fn fn, void *ctx, rep_import_stats_t *stats);

/**
 * Check a batch or snapshot as rep_replica_import() would before applying it, and apply
 * nothing: its framing, the membership entries it carries, each change's author and signature
 * (one per run of an actor's hash chain) and seal, or the snapshot's sender, signature and
 * seal, and everything sealed inside. For a bundle from a USB stick, say, or to measure what
 * verification costs.
 *
 * @param[out] stats  if not NULL: changes (or entries of a snapshot), and members (entries of
 *                    the membership log it would add); the rest 0
 * @return 0; the codes of rep_replica_import() for what it would refuse (REP_EAUTH,
 *         REP_EKEY, REP_ECORRUPT, REP_EOFFICE, REP_EVERSION, REP_EFORK, REP_ESTATE); -ENOMEM.
 *         Forks against this replica's own log are found only by importing.
 */
REP_EXPORT REP_WUR int
rep_replica_verify(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats);

/**
 * Read which office a batch belongs to, without applying it (e.g. to create a replica of that
 * office from a bundle). Verifies the checksum.
 * @param[out] office_id    REP_OFFICE_ID_BYTES bytes
 * @param[out] office_name  if not NULL, the office's name (caller owns; rep_free())
 * @return 0; REP_ECORRUPT; REP_EVERSION; -ENOMEM.
 */
REP_EXPORT REP_WUR int
rep_batch_office(const uint8_t *batch, size_t len, uint8_t office_id[REP_OFFICE_ID_BYTES],
                 char **office_name);

/** Free bytes returned by the library. Accepts NULL. */
REP_EXPORT void
rep_free(void *p);

/* ---- Devices: the office's enrolled workstations ------------------------------------------- */

/**
 * An enrolled device. Membership is the office's membership log (DESIGN.md "Security"): entries
 * signed by its admins, which every replica checks and holds. A node admits connections only
 * from the CURVE keys of members, and takes only changes their devices signed. Where a device's
 * node listens is not a matter of trust: each device writes its own endpoints into the record
 * "_devices/<id>" (rep_replica_announce()), replicated like any record.
 */
typedef struct rep_device {
    char id[REP_DEVICE_ID_SIZE]; /**< hex of the device's Ed25519 public key (its identity) */
    const char *name;            /**< the workstation's name, as the admin enrolled it */
    const char *role;            /**< "admin", "member" or "relay" (a cloud node without the
                                      office key: REP_OPEN_RELAY) */
    uint8_t curve_pk[32];        /**< its CURVE (X25519) public key, derived from the identity */
    size_t nendpoints;
    const char **endpoints;      /**< where its node listens, "tcp://IP:PORT", in byte order */
    int self;                    /**< 1 for this replica's own device */
} rep_device_t;

typedef struct rep_devices {
    size_t n;
    rep_device_t *items;         /**< in id order */
} rep_devices_t;

/**
 * List the office's members, as this replica's membership log has them.
 * @param[out] out  the list (caller owns; rep_devices_free())
 * @return 0; -ENOMEM; another negative code on failure.
 */
REP_EXPORT REP_WUR int
rep_replica_devices(rep_replica_t *r, rep_devices_t **out);

/** Free a device list and set *@p dp to NULL. Accepts NULL. */
REP_EXPORT void
rep_devices_free(rep_devices_t **dp);

/**
 * Enroll a new device in the office: this replica (an admin's) signs a membership entry that
 * adds a fresh identity named @p device_name with @p role, and hands out what the device
 * starts from: the office's id and name, the new identity's secret key, the membership log and
 * every office key. Open the new replica with it (rep_open_opts_t.provision), then import a
 * snapshot or export to give it the data. The entry reaches the rest of the office as any
 * change does.
 *
 * The bytes are secret: whoever holds them can read the office's data and write as the new
 * device. Carry them only over a channel you trust, or sealed (the CLI's `invite --file`).
 *
 * @param[in]  device_name  the new device's name (1..64 bytes of UTF-8)
 * @param[in]  role         "admin" or "member"
 * @param[out] out, len     the provisioning bytes (caller frees with rep_free())
 * @return 0; -EPERM when this device is not an admin; -EINVAL for a bad name or role;
 *         REP_EEXIST when a member has that name already; another negative code on failure
 *         (nothing is written).
 */
REP_EXPORT REP_WUR int
rep_replica_provision(rep_replica_t *r, const char *device_name, const char *role,
                      uint8_t **out, size_t *len);

/** Size of a one-time code, "XXXX-XXXX-XXXX", with the terminating NUL. */
#define REP_CODE_SIZE 15

/**
 * Seal a provisioning (from rep_replica_provision()) and data for the new device (a snapshot
 * or export, or nothing) into one file's bytes, for a USB stick: XChaCha20-Poly1305 under a key
 * derived (crypto_pwhash, Argon2id) from a fresh one-time code, which is written to @p code.
 * Give the code to the person setting up the device by another way than the file.
 *
 * @param[out] code      the one-time code, "XXXX-XXXX-XXXX" (60 bits)
 * @param[out] out, len  the file's bytes (caller frees with rep_free())
 * @return 0; -EINVAL; -ENOMEM.
 */
REP_EXPORT REP_WUR int
rep_provision_seal(const uint8_t *prov, size_t provn, const uint8_t *data, size_t datan,
                   char code[REP_CODE_SIZE], uint8_t **out, size_t *len);

/**
 * Open a file rep_provision_seal() made, with its code (case, spaces and dashes do not
 * matter). Then open the new replica with the provisioning and import the data.
 *
 * @param[out] prov, provn  the provisioning (secret; caller frees with rep_free())
 * @param[out] data, datan  the data (caller frees with rep_free(); datan 0 when none)
 * @return 0; REP_EAUTH for a wrong code or an altered file; -EINVAL for a code that is not
 *         one; REP_ECORRUPT for what is not such a file; REP_EVERSION.
 */
REP_EXPORT REP_WUR int
rep_provision_unseal(const uint8_t *file, size_t n, const char *code, uint8_t **prov,
                     size_t *provn, uint8_t **data, size_t *datan);

/**
 * What a provisioning is for: its office and the name the device was enrolled with.
 * @param[out] office_id    REP_OFFICE_ID_BYTES, or NULL
 * @param[out] office_name  malloc'd, or NULL not to ask
 * @param[out] device_name  malloc'd, or NULL not to ask
 * @return 0; REP_ECORRUPT; REP_EAUTH when its membership log does not enroll its device.
 */
REP_EXPORT REP_WUR int
rep_provision_info(const uint8_t *prov, size_t n, uint8_t office_id[REP_OFFICE_ID_BYTES],
                   char **office_name, char **device_name);

/**
 * Revoke a device (a lost or stolen workstation): this replica (an admin's) signs a REMOVE
 * entry of the membership log with the device's cutoff — for each of its actors, the last
 * change of it this replica has — and rotates the office key: a new epoch whose key is boxed
 * (crypto_box) to every remaining member. Everywhere the entry arrives, the device is refused
 * by ZAP, its changes past the cutoff are refused even when relayed by others or imported from
 * a file (counted in rep_import_stats_t.revoked), a replica that had applied some rebuilds its
 * state from its log without them (and catches up again on what it had only as state), and
 * nothing new is sealed with a key the device has.
 *
 * @param[in]  device  the device's name or id (rep_device_t.id)
 * @param[out] id      if not NULL, the revoked device's id
 * @param[out] kept    if not NULL, how many of its changes stay (up to the cutoff)
 * @return 0; -EPERM when this device is not an admin; REP_ENOTFOUND when no member has that
 *         name or id; -EINVAL for this device itself; another negative code on failure
 *         (nothing is written).
 */
REP_EXPORT REP_WUR int
rep_replica_revoke(rep_replica_t *r, const char *device, char id[REP_DEVICE_ID_SIZE],
                   uint64_t *kept);

/**
 * Tell the office where this device's node listens: adds @p endpoints to the set of its
 * record "_devices/<id>", in one change. Nothing is written when the record has them all (so
 * calling it at every start is cheap).
 *
 * @param[in]  endpoints   where this device's node listens ("tcp://IP:PORT")
 * @param[in]  nendpoints  how many (0 writes nothing)
 * @param[out] written     if not NULL, 1 when a change was written, 0 when nothing was needed
 * @return 0; -EINVAL for a malformed endpoint; -EPERM when this device is not a member;
 *         another negative code on failure (nothing is written).
 */
REP_EXPORT REP_WUR int
rep_replica_announce(rep_replica_t *r, const char *const *endpoints, size_t nendpoints,
                     int *written);

/* ---- The node: gossip with the office's other workstations over ZeroMQ ---------------------- */

/**
 * A node keeps a replica in sync with the other enrolled devices' nodes. It is a background
 * thread that owns every ZeroMQ socket; the functions below talk to it over an inproc pipe.
 *
 * Transport: a ROUTER bound to the listen endpoint and a DEALER dialing each peer endpoint,
 * all CURVE-encrypted with this device's key pair (derived from its identity). A ZAP handler
 * admits only the CURVE keys of devices enrolled in this office (rep_replica_devices()), so a
 * stranger with a valid key pair, or a node of another office, cannot connect. A peer
 * endpoint is dialed with the server key of the device whose record lists it; an endpoint no
 * enrolled device lists yet is retried when the device list changes. Traffic is routed per
 * device, whichever connection is up: two connections between the same two devices carry one
 * stream. The protocol is the sync engine's (libreplica/src/sync.h).
 *
 * Files in the replica directory while a node runs (the directory's permissions are the
 * access control: whoever may write the directory may ask the node):
 *   node.notify  a unix datagram socket: every commit, and every import that brought
 *                something, on this directory and from any process pokes it (best effort,
 *                never blocking or failing the write), so a local write or a bundle reaches
 *                the connected peers at once
 *   node.ipc     the control socket (ZeroMQ REP over ipc://): rep_node_status_at() asks it
 * One node per directory: a second rep_node_start() on a directory served by a running node
 * fails with REP_EBUSY.
 */
typedef struct rep_node rep_node_t;

/** Flags for rep_node_opts_t.flags. */
#define REP_NODE_NO_AUTODIAL 0x1u /**< dial only opts.peers, not every enrolled device's endpoints */
/** Discovery on the LAN: send UDP broadcast beacons (every beacon_ms, to beacon_port) on the
    interfaces the node listens on — every up, broadcast-capable, non-loopback IPv4 interface
    when it listens on every address (0.0.0.0 or *), else the one holding the listen address —
    and dial the node of every enrolled device whose beacon it hears, at the address the
    beacon came from (so never an address of the sender that this node cannot reach). A
    beacon carries the office's tag, the device id, the listen port and the time, tagged with
    the office key; beacons of other offices, forged, stale or replayed ones, and those of
    devices that are not (or no longer) members are ignored and counted (rep_node_status_t).
    The device's CURVE key is the membership log's, never the beacon's. Static peers work
    alongside. A node that cannot bind the beacon port runs without discovery (and logs why).
    IPv4 only. */
#define REP_NODE_DISCOVERY 0x2u

/** The UDP port of discovery beacons when rep_node_opts_t.beacon_port is 0. */
#define REP_BEACON_PORT 47300

/** Options for rep_node_start(). Zero-initialize, then set what you need. */
typedef struct rep_node_opts {
    const char *listen;          /**< "tcp://IP:PORT" to bind, or NULL to only dial */
    const char *const *peers;    /**< endpoints to dial, "tcp://HOST:PORT" (the device whose
                                      record lists it), or "DEVICE=tcp://HOST:PORT" with a
                                      device's name or id: how an office reaches its relay,
                                      which lists no endpoint (it cannot write) */
    size_t npeers;
    unsigned flags;              /**< REP_NODE_* */
    /** Called from the node's thread with one line (no newline) per event: a peer up or
        down, a refused connection, an unresolvable peer, ... NULL for none. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    size_t max_msg;              /**< largest ZeroMQ message accepted (0: 4 MiB, at least
                                      64 KiB); batches are made to fit under it */
    uint64_t anti_entropy_ms;    /**< a HELLO to every peer this often (0: 2000) */
    unsigned beacon_port;        /**< with REP_NODE_DISCOVERY: UDP port of beacons, sent and
                                      heard (0: REP_BEACON_PORT); the office's nodes must agree */
    uint64_t beacon_ms;          /**< with REP_NODE_DISCOVERY: a beacon this often, +-25% (0:
                                      1500) */
} rep_node_opts_t;

/**
 * Start a node serving replica @p r, which must stay open until rep_node_stop().
 * @param[out] out  the node, or NULL on failure; stop with rep_node_stop()
 * @return 0; -EINVAL for a malformed endpoint or option; REP_EBUSY when a node already serves
 *         this directory; -EADDRINUSE when the listen endpoint is taken; -ENAMETOOLONG when the
 *         directory's path is too long for a socket file; another negative code on failure.
 */
REP_EXPORT REP_WUR int
rep_node_start(rep_replica_t *r, const rep_node_opts_t *opts, rep_node_t **out);

/** Stop a node: close its sockets (pending messages are dropped), join its thread, remove its
    socket files, and set *@p np to NULL. Accepts NULL. */
REP_EXPORT void
rep_node_stop(rep_node_t **np);

/** What a node knows of one peer device (or of a peer endpoint not yet resolved to one). */
typedef struct rep_peer_status {
    const char *endpoint;        /**< the endpoint dialed, or "" for a device that only dialed us */
    char device_id[REP_DEVICE_ID_SIZE]; /**< "" while the endpoint is not resolved */
    const char *device_name;     /**< "" when unknown */
    int connected;               /**< 1 while some connection to it is up */
    uint64_t last_seen_ms;       /**< wall clock (ms since the epoch) of its last message; 0: never */
    uint64_t behind;             /**< changes of ours it is known to lack */
    uint64_t sent_bytes, received_bytes;
    uint64_t refused;            /**< messages of it refused (malformed, another office, ...) */
    int discovered;              /**< 1 when @p endpoint was learned from its beacon */
} rep_peer_status_t;

/** What discovery did (REP_NODE_DISCOVERY): beacons sent, taken, and ignored by reason. */
typedef struct rep_discovery_status {
    int on;                      /**< 1 while the node sends and hears beacons */
    unsigned port;               /**< their UDP port */
    uint64_t sent;               /**< beacons sent (one per interface per round) */
    uint64_t taken;              /**< beacons of the office's members taken */
    uint64_t other_office;       /**< ignored: another office's */
    uint64_t malformed;          /**< ignored: not a beacon, or a newer version */
    uint64_t forged;             /**< ignored: the tag did not verify (forged or altered) */
    uint64_t no_key;             /**< ignored: tagged with an office key this replica lacks */
    uint64_t strangers;          /**< ignored: a device not (or no longer) a member */
    uint64_t misaddressed;       /**< ignored: sent from another address than it names */
    uint64_t stale;              /**< ignored: its time too far from ours (5 min) */
    uint64_t replayed;           /**< ignored: not newer than one taken from that address */
} rep_discovery_status_t;

/** A node's state. */
typedef struct rep_node_status {
    const char *listen;          /**< the listen endpoint, or "" */
    char device_id[REP_DEVICE_ID_SIZE]; /**< this device */
    uint64_t refused_connections; /**< connections refused by the ZAP handler (not enrolled) */
    uint64_t bad_frames;         /**< messages dropped before the sync engine (bad framing) */
    size_t npeers;
    rep_peer_status_t *peers;    /**< by device id, unresolved endpoints last */
    rep_discovery_status_t discovery;
} rep_node_status_t;

/**
 * The state of a node of this process.
 * @param[out] out  caller owns; rep_node_status_free()
 * @return 0; -ENOMEM; -EIO if the node's thread failed. Safe from any thread.
 */
REP_EXPORT REP_WUR int
rep_node_status(rep_node_t *n, rep_node_status_t **out);

/**
 * The state of the node serving directory @p dir, in any process, asked through its control
 * socket (dir/node.ipc; never over TCP). Waits at most about 2 s.
 * @param[out] out  caller owns; rep_node_status_free()
 * @return 0; -ECONNREFUSED when no node runs on @p dir; -ETIMEDOUT when it does not answer;
 *         REP_ECORRUPT for a malformed answer; -ENAMETOOLONG; -ENOMEM.
 */
REP_EXPORT REP_WUR int
rep_node_status_at(const char *dir, rep_node_status_t **out);

/* ---- Enrollment by invitation -------------------------------------------------------------- */

/**
 * Ask the node serving @p dir (in any process, through dir/node.ipc) for an invitation that
 * enrolls one new workstation: a one-line token carrying the office's id and name, the node's
 * listen endpoint and CURVE public key, a one-time secret and an expiry. Only an admin
 * device's node invites, and only one listening on a specific address. The invitation lives
 * in the node's memory until it is used or expires (a node restart forgets it).
 *
 * The token is a bearer credential until it is used or expires: whoever holds it can enroll a
 * device. Hand it over as you would a door key, and keep the TTL short.
 *
 * @param[in]  ttl_ms  how long the invitation is valid (at most 7 days)
 * @param[in]  role    "member" (NULL too): a workstation, given the office keys and state;
 *                     "relay": a cloud node, given the membership log and no key, that joins
 *                     with REP_OPEN_RELAY and then stores and forwards sealed changes
 * @param[out] token   the token (caller owns; rep_free())
 * @param[out] error   if not NULL, on -EIO: the node's reason (caller owns; rep_free())
 * @return 0; -ECONNREFUSED when no node runs on @p dir; -EIO when the node refused (not an
 *         admin: "operation not permitted"; listening on every address: "cannot assign
 *         requested address"; too many open invitations), with the reason in *error;
 *         -ETIMEDOUT; -EINVAL.
 */
REP_EXPORT REP_WUR int
rep_node_invite_at(const char *dir, uint64_t ttl_ms, const char *role, char **token,
                   char **error);

/**
 * Make a new replica in @p dir and enroll it in the office an invitation token names: dial the
 * inviting node with the invitation's one-time key (CURVE), send this device's keys, and
 * receive the office's device list and state (a snapshot). The new device is in every
 * replica's device list once that reaches them. On any failure nothing is left in @p dir
 * (a directory the call created is removed), so it can simply be run again.
 *
 * @param[in]  dir         a directory without a replica (it is created if missing)
 * @param[in]  token       the token rep_node_invite_at() gave (surrounding spaces allowed)
 * @param[in]  opts        NULL, or options for the new replica (device_name, clock; and
 *                         REP_OPEN_RELAY in flags to join as a relay, which the token must
 *                         be for; other flags and office_name are ignored: the token decides)
 * @param[in]  timeout_ms  how long to wait for the node (0: 15 s)
 * @param[out] out         the open replica (rep_replica_close())
 * @param[out] reason      if not NULL, on REP_EREFUSED the node's reason when it gave one
 *                         (caller owns; rep_free())
 * @return 0; REP_ECORRUPT for a malformed or mistyped token; REP_EVERSION for a newer token;
 *         REP_EROLE when the token enrolls a relay and REP_OPEN_RELAY is not given, or the
 *         other way round (the invitation is not used); REP_EEXPIRED; REP_EREFUSED; REP_EEXIST when @p dir holds a replica; -ETIMEDOUT when
 *         no node answered; -EPROTO when the node's key is not the token's; -errno.
 */
REP_EXPORT REP_WUR int
rep_replica_join(const char *dir, const char *token, const rep_open_opts_t *opts,
                 uint64_t timeout_ms, rep_replica_t **out, char **reason);

/** Free a node status and set *@p sp to NULL. Accepts NULL. */
REP_EXPORT void
rep_node_status_free(rep_node_status_t **sp);

/* ---- Misc ---------------------------------------------------------------------------------------- */

/** A static English description of @p rc (any code this library returns, or -errno). */
REP_EXPORT const char *
rep_strerror(int rc);

/** The library's version string, e.g. "0.1.0". Static. */
REP_EXPORT const char *
rep_version(void);

#ifdef __cplusplus
}
#endif
#endif /* REPLICA_H */
