/*
 * floor_lmdb.h — the LMDB floor of a merge: W1's final (record, field) values put straight into
 * a fresh LMDB database in one write transaction, committed durably (the least work any merge
 * that ends with that state on disk must do). Used by bench/floor and, in the same run, by
 * bench/merge for its floor_ratio.
 */
#ifndef REPLICA_BENCH_FLOOR_LMDB_H
#define REPLICA_BENCH_FLOOR_LMDB_H

#include <stdint.h>

/**
 * Put the R*8 values of @p state ((record, field) order, 24 bytes each) under the keys
 * "rec:NNNNN/fN" into a fresh environment made under @p dir, in one write transaction, and
 * commit it (durably unless @p nosync: MDB_NOSYNC). The time runs from mdb_txn_begin() to the
 * return of mdb_txn_commit(); opening the environment is not timed. Then reads every value
 * back (untimed) and writes the state hash to @p hex (NULL: skip), and removes the environment.
 * @return the seconds, or a negative number on failure (a message is printed).
 */
double floor_lmdb_final(const char *dir, const char *state, uint32_t R, int nosync, char hex[65]);

#endif /* REPLICA_BENCH_FLOOR_LMDB_H */
