/*
 * workload.h — the shared benchmark workloads of ../shared/WORKLOADS.md, written for this
 * project: the splitmix64 stream, W1's and W2's writes, the canonical state hash, and the
 * helpers both bench programs use (timing, medians, temporary directories, output lines).
 *
 * The stream: splitmix64 seeded as stated; a 24-byte value takes 3 draws, draw x giving the 8
 * characters ALPHA[(x >> 8*i) & 63], i = 0..7. W1 (seed 42) sets every field f0..f7 of every
 * record rec 0 .. R-1 in record-major order, then makes `updates` updates: record = next % R,
 * field = next % 8, then the value (3 draws), in that order. W2's base is W1's initial sets;
 * its updates come from fresh generators seeded 1 (replica A) and 2 (replica B).
 *
 * State hash: SHA-256 over the R*8 24-byte winning values in (record, field) order, a missing
 * field counting as 24 '?'. For the full W1 stream (R = 10,000, 120,000 updates) it is
 * W_W1_STATE_SHA256 on every implementation.
 */
#ifndef REPLICA_BENCH_WORKLOAD_H
#define REPLICA_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#define W_F               8  /* fields per record: f0 .. f7 */
#define W_VLEN            24 /* bytes per value */
#define W_R               10000
#define W1_UPDATES        120000
#define W2_UPDATES        100000
#define W_PER_TXN         100 /* writes per transaction (one change) */
#define W_SEED_W1         42
#define W_SEED_W2_A       1
#define W_SEED_W2_B       2
#define W_W1_STATE_SHA256 "04836e5c402629045751127159d25f7c83edd76c0ebe5341061a1e70ce5eb8ea"

/* ---- The stream ------------------------------------------------------------------------------ */

typedef struct w_rng {
    uint64_t s;
} w_rng_t;

uint64_t w_next(w_rng_t *g);

/** One value: 3 draws, 24 characters of ALPHA (not NUL-terminated). */
void w_value(w_rng_t *g, char out[W_VLEN]);

/** One write of the stream. */
typedef struct w_op {
    uint32_t rec;
    uint32_t fld;
    char val[W_VLEN];
} w_op_t;

/**
 * W1's stream, one write at a time: write i (0-based) of R*8 initial sets followed by updates.
 * Call with i = 0, 1, 2, ... in order on a generator seeded W_SEED_W1.
 */
void w_w1_op(w_rng_t *g, uint32_t R, size_t i, w_op_t *op);

/** One update (record, field, value) drawn from @p g. */
void w_update_op(w_rng_t *g, uint32_t R, w_op_t *op);

/* ---- State ----------------------------------------------------------------------------------- */

/** R*8 values in (record, field) order; starts as all '?' (missing). malloc'ed; NULL on ENOMEM. */
char *w_state_new(uint32_t R);

static inline char *
w_state_at(char *state, uint32_t rec, uint32_t fld)
{
    return state + ((size_t)rec * W_F + fld) * W_VLEN;
}

/** The state after the first @p n writes of W1's stream (what any replica must end with). */
char *w_w1_expected(uint32_t R, size_t n);

/** SHA-256 of a state, as 64 lowercase hex digits + NUL. */
void w_state_hash(const char *state, uint32_t R, char hex[65]);

/* ---- Record keys as libreplica sees them ----------------------------------------------------- */

#define W_COLL "w1"

/** "w1/rec:NNNNN" (the record) and "fN" (the field). */
void w_key(char *buf, size_t n, uint32_t rec);
void w_field(char *buf, size_t n, uint32_t fld);

/* ---- Measuring ------------------------------------------------------------------------------- */

/** CLOCK_MONOTONIC in seconds. */
double w_now(void);

/** CPU time of this process (user + system, CLOCK_PROCESS_CPUTIME_ID) in seconds. */
double w_cpu_now(void);

/** Median of @p n values (n >= 1); @p xs is not reordered. */
double w_median(const double *xs, int n);

/** A fresh directory "libreplica-bench-XXXXXX" under $TMPDIR (or /tmp); caller frees. */
char *w_tmpdir(void);

/** Remove a directory tree; 0 or -1. */
int w_rmtree(const char *dir);

/** A RESULT line: RESULT <TAB> who <TAB> workload <TAB> figure <TAB> value <TAB> unit <TAB> note.
 */
void w_result(const char *who, const char *workload, const char *figure, double value,
              const char *unit, const char *note);

/** A CHECK line; returns @p ok. */
int w_check(const char *who, const char *what, int ok, const char *detail);

/** When set, w_result() and w_check() print nothing (--json prints only the JSON object). */
extern int w_quiet;

#endif /* REPLICA_BENCH_WORKLOAD_H */
