/*
 * daysheet.h — the front desk's printable day sheet: one self-contained HTML page (inline CSS,
 * no external resource, no script but an optional Print button) with a day's schedule, the
 * open phone messages and the pending refill requests, read from a replica.
 *
 * Pure: it reads the replica through the public replica.h and writes to a FILE* (or a buffer);
 * it opens, renames and logs nothing. `replica daysheet` and `replica serve` (which refreshes
 * DIR/daysheet-today.html) call it. The records it reads follow examples/frontdesk-records.md:
 *
 *   appts/<date>-<HHMM>-<patient id>  patient, provider, reason, status
 *   patients/<id>                     name, dob, phone, allergies (a set)
 *   msgs/<id>                         patient, caller, subject, thread (a log), status
 *   refills/<id>                      patient, medication, requested_by, status
 *
 * What is on the sheet:
 *   - the schedule: every appointment whose key starts with "<date>-", in key order (time
 *     order), with the patient's name, date of birth, phone and allergies; cancelled ones are
 *     listed too, struck through (a patient may call about the slot), and not counted;
 *   - open messages: every msgs record whose status is not "closed" (an absent status is
 *     open), whatever its day, with caller, patient, subject and the last thread notes (who,
 *     when);
 *   - pending refills: every refills record whose status is neither "approved" nor "denied"
 *     (so "pending", absent, or any other word).
 * Every value is HTML-escaped (& < > " '), control characters become U+FFFD; a field that
 * holds concurrent values shows its winner with a mark and a footnote.
 */
#ifndef REPLICA_CLIENT_DAYSHEET_H
#define REPLICA_CLIENT_DAYSHEET_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "replica.h"

/** Size of a date "YYYY-MM-DD" with its NUL. */
#define DAYSHEET_DATE_SIZE 11

/** Options for daysheet_write(). Zero-initialize, then set what you need. */
typedef struct daysheet_opts {
    const char *office; /**< the office's name, for the title; NULL: none */
    const char *device; /**< this workstation's name, said in the footer; NULL: none */
    time_t now;         /**< when the sheet is made (local time is shown); 0: time(NULL) */
    size_t notes;       /**< thread notes shown per message (the last ones); 0: 3 */
} daysheet_opts_t;

/**
 * Check a date "YYYY-MM-DD": four-digit year 1900-9999, a month and a day that exist.
 * @return 0, or -EINVAL.
 */
int
daysheet_check_date(const char *date);

/**
 * Today's date in local time, as "YYYY-MM-DD", into @p out.
 * @return 0, or -errno when the clock or the time zone cannot be read.
 */
int
daysheet_today(char out[DAYSHEET_DATE_SIZE]);

/**
 * Write the day sheet of @p date for replica @p r to @p f.
 *
 * @param[in] r     an open replica (read only; safe while a node serves it from another thread)
 * @param[in] date  "YYYY-MM-DD" (checked: -EINVAL otherwise)
 * @param[in] opts  options, or NULL for defaults
 * @param[in] f     where the page goes
 * @return 0; -EINVAL for a bad date; a negative code of the replica's reads; -EIO when writing
 *         to @p f failed. On failure part of a page may have been written: write to a
 *         temporary file or a buffer, and keep it only on 0.
 */
int
daysheet_write(rep_replica_t *r, const char *date, const daysheet_opts_t *opts, FILE *f);

/**
 * daysheet_write() into memory.
 * @param[out] out  on success the page (NUL-terminated), the caller's: free(); else NULL
 * @param[out] len  its length
 * @return as daysheet_write(); -ENOMEM.
 */
int
daysheet_render(rep_replica_t *r, const char *date, const daysheet_opts_t *opts, char **out,
                size_t *len);

#endif
