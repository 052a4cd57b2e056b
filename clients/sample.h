/*
 * sample.h — a realistic office day as sample data (`replica sample-office`): patients, a day
 * of appointments for three providers, phone messages with threads, refill requests and staff
 * with demo PINs, written through the public replica.h in the record conventions of
 * examples/frontdesk-records.md.
 *
 * Deterministic: the same date and patient count write the same records and values (a
 * fixed-seed generator; only the PIN hashes' salts are random), so running it twice rewrites
 * the same state. Nothing is read first: records of the same keys are written over.
 */
#ifndef REPLICA_CLIENT_SAMPLE_H
#define REPLICA_CLIENT_SAMPLE_H

#include <stddef.h>

#include "replica.h"

/** Largest patient count sample_office() takes. */
#define SAMPLE_MAX_PATIENTS 100000

/** What sample_office() wrote. */
typedef struct sample_stats {
    size_t patients;
    size_t appts;         /**< on the date */
    size_t appts_next;    /**< on the day after (so a sheet of the date must leave them out) */
    size_t cancelled;     /**< of appts */
    size_t msgs, msgs_open;
    size_t refills, refills_pending;
    size_t staff;
    size_t changes;       /**< commits made */
} sample_stats_t;

/** A demo account sample_office() writes: staff/<name> with the PIN's crypto_pwhash_str. */
typedef struct sample_staff {
    const char *name;
    const char *role;
    const char *pin;      /**< demo only: printed by `replica sample-office` */
} sample_staff_t;

/** The staff sample_office() writes, ending with a NULL name. */
extern const sample_staff_t sample_staff[];

/**
 * Write the sample office for @p date ("YYYY-MM-DD", checked by the caller) into @p r:
 * @p npatients patients (ids 10000, 10001, ...; 1 to SAMPLE_MAX_PATIENTS), at most 24
 * appointments per provider on @p date and a few on the day after, 6 messages (4 open), 5
 * refill requests (3 pending), and the staff of sample_staff. Patients go in changes of 2000;
 * each thread note is its own change, made by its author (the change's user), as the front
 * desk page would.
 *
 * @param[out] st  counts of what was written (may be NULL)
 * @return 0; -EINVAL for a bad count or date; -ENOMEM; a negative code of the replica's
 *         writes (what was committed before a failure stays).
 */
int
sample_office(rep_replica_t *r, const char *date, size_t npatients, sample_stats_t *st);

#endif
