/* floor_lmdb.c — see floor_lmdb.h. */
#include "floor_lmdb.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workload.h"

static int
lmdb_fail(const char *what, int rc)
{
    fprintf(stderr, "bench floor: %s: %s\n", what, mdb_strerror(rc));
    return -1;
}

static int
key_of(char *buf, size_t n, uint32_t rec, uint32_t fld)
{
    return snprintf(buf, n, "rec:%05u/f%u", (unsigned)rec, (unsigned)fld);
}

static int
put_all(MDB_env *env, const char *state, uint32_t R, double *secs)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;
    double t0 = w_now();
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
        return lmdb_fail("mdb_txn_begin", rc);
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi))) {
        mdb_txn_abort(txn);
        return lmdb_fail("mdb_dbi_open", rc);
    }
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t f = 0; f < W_F; f++) {
            char kb[32];
            MDB_val k = {(size_t)key_of(kb, sizeof kb, r, f), kb};
            MDB_val v = {W_VLEN, (void *)w_state_at((char *)state, r, f)};
            if ((rc = mdb_put(txn, dbi, &k, &v, 0))) {
                mdb_txn_abort(txn);
                return lmdb_fail("mdb_put", rc);
            }
        }
    if ((rc = mdb_txn_commit(txn)))
        return lmdb_fail("mdb_txn_commit", rc);
    *secs = w_now() - t0;
    return 0;
}

static int
hash_all(MDB_env *env, uint32_t R, char hex[65])
{
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;
    char *got = w_state_new(R);
    if (!got)
        return -1;
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) {
        free(got);
        return lmdb_fail("mdb_txn_begin", rc);
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi))) {
        mdb_txn_abort(txn);
        free(got);
        return lmdb_fail("mdb_dbi_open", rc);
    }
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t f = 0; f < W_F; f++) {
            char kb[32];
            MDB_val k = {(size_t)key_of(kb, sizeof kb, r, f), kb}, v;
            if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == W_VLEN)
                memcpy(w_state_at(got, r, f), v.mv_data, W_VLEN);
        }
    mdb_txn_abort(txn);
    w_state_hash(got, R, hex);
    free(got);
    return 0;
}

double
floor_lmdb_final(const char *dir, const char *state, uint32_t R, int nosync, char hex[65])
{
    size_t n = strlen(dir) + sizeof "/floor-lmdb/lock.mdb";
    char *env_dir = malloc(n), *path = malloc(n);
    MDB_env *env = NULL;
    double secs = -1;
    int rc;
    if (!env_dir || !path)
        goto out;
    snprintf(env_dir, n, "%s/floor-lmdb", dir);
    if (mkdir(env_dir, 0700) != 0) {
        perror("bench floor: mkdir");
        goto out;
    }
    if ((rc = mdb_env_create(&env))) {
        lmdb_fail("mdb_env_create", rc);
        env = NULL;
        goto rm;
    }
    if ((rc = mdb_env_set_mapsize(env, (size_t)1 << 30)) ||
        (rc = mdb_env_open(env, env_dir, nosync ? MDB_NOSYNC : 0, 0600))) {
        lmdb_fail("mdb_env_open", rc);
        goto rm;
    }
    double t;
    if (put_all(env, state, R, &t) == 0 && (!hex || hash_all(env, R, hex) == 0))
        secs = t;
rm:
    if (env)
        mdb_env_close(env);
    snprintf(path, n, "%s/data.mdb", env_dir);
    remove(path);
    snprintf(path, n, "%s/lock.mdb", env_dir);
    remove(path);
    rmdir(env_dir);
out:
    free(env_dir);
    free(path);
    return secs;
}
