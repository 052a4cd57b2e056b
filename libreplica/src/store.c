/* store.c — LMDB environment, transactions with map growth. See store.h. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

#define INITIAL_MAP_SIZE ((size_t)32 << 20)
#define MAX_MAP_SIZE     ((size_t)1 << 40)

static const struct {
    const char *name;
    unsigned flags;
} db_spec[REP_DB__COUNT] = {
    [REP_DB_META] = {"meta", 0},
    [REP_DB_LOG] = {"log", 0},
    [REP_DB_STATE] = {"state", 0},
    [REP_DB_VV] = {"vv", 0},
    [REP_DB_PENDING] = {"pending", 0},
    [REP_DB_HIST] = {"hist", MDB_DUPSORT | MDB_DUPFIXED},
    [REP_DB_SKEW] = {"skew", 0},
    [REP_DB_FORKS] = {"forks", 0},
    [REP_DB_BASE] = {"base", 0},
    [REP_DB_MEMBERS] = {"members", 0},
    [REP_DB_KEYS] = {"keys", 0},
};

struct rep__store {
    MDB_env *env;
    MDB_dbi dbi[REP_DB__COUNT];
    /* Read and write transactions hold it shared; changing the map size needs it exclusive,
     * since LMDB allows that only while this process has no transaction. */
    pthread_rwlock_t resize;
    dev_t dev;
    ino_t ino;
    struct rep__store *next_open;
};

struct rep__txn {
    rep__store_t *s;
    MDB_txn *txn;
};

struct rep__cur {
    MDB_cursor *c;
};

/* Directories this process has open: LMDB forbids opening one environment twice. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static rep__store_t *open_list;

/* Map an LMDB or system code to ours. */
static int
err(int rc)
{
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: return REP_ENOTFOUND;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
    case MDB_INCOMPATIBLE:
    case MDB_KEYEXIST: return REP_ECORRUPT;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return REP_ENOTREPLICA;
    case MDB_MAP_FULL: return -ENOSPC; /* only seen outside the grow-and-retry path */
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_DBS_FULL: return -EAGAIN;
    case MDB_MAP_RESIZED: return -EAGAIN;
    default: return rc > 0 ? -rc : -EIO;
    }
}

/* 1 if dir holds nothing at all. */
static int
dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* Decide whether dir may be opened as a replica (or made one). */
static int
check_dir(const char *dir, bool create, struct stat *st)
{
    if (stat(dir, st) < 0) {
        if (errno != ENOENT)
            return -errno;
        if (!create)
            return REP_ENOTREPLICA;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return -errno;
        if (stat(dir, st) < 0)
            return -errno;
    }
    if (!S_ISDIR(st->st_mode))
        return REP_ENOTREPLICA;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    struct stat dst;
    if (stat(path, &dst) == 0)
        return S_ISREG(dst.st_mode) ? 0 : REP_ENOTREPLICA;
    if (!create)
        return REP_ENOTREPLICA;
    int empty = dir_is_empty(dir);
    if (empty < 0)
        return empty;
    return empty ? 0 : REP_ENOTREPLICA;
}

static int
register_open(rep__store_t *s)
{
    int rc = 0;
    pthread_mutex_lock(&open_lock);
    for (rep__store_t *o = open_list; o; o = o->next_open)
        if (o->dev == s->dev && o->ino == s->ino)
            rc = REP_EBUSY;
    if (rc == 0) {
        s->next_open = open_list;
        open_list = s;
    }
    pthread_mutex_unlock(&open_lock);
    return rc;
}

static void
unregister_open(rep__store_t *s)
{
    pthread_mutex_lock(&open_lock);
    for (rep__store_t **pp = &open_list; *pp; pp = &(*pp)->next_open)
        if (*pp == s) {
            *pp = s->next_open;
            break;
        }
    pthread_mutex_unlock(&open_lock);
}

/* Is more than half of the map in use (up to the last page ever used)? */
static bool
half_full(rep__store_t *s, const MDB_envinfo *info)
{
    MDB_stat st;
    if (mdb_env_stat(s->env, &st) != 0)
        return false;
    return ((size_t)info->me_last_pgno + 1) * st.ms_psize > info->me_mapsize / 2;
}

enum { MAP_ADOPT, MAP_GROW, MAP_ROOM };

/* Adopt a map size changed by another process (MAP_ADOPT), or double ours (MAP_GROW; MAP_ROOM:
 * only when it is more than half full). Takes the lock exclusively. */
static int
set_map_size(rep__store_t *s, int how)
{
    int rc = 0;
    pthread_rwlock_wrlock(&s->resize);
    if (how != MAP_ADOPT) {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        size_t size = info.me_mapsize;
        if (how == MAP_ROOM && (size >= MAX_MAP_SIZE || !half_full(s, &info)))
            rc = 0; /* room enough (or another thread made it meanwhile) */
        else if (size >= MAX_MAP_SIZE)
            rc = -ENOSPC;
        else
            rc = err(mdb_env_set_mapsize(s->env, size * 2));
    } else {
        rc = err(mdb_env_set_mapsize(s->env, 0));
    }
    pthread_rwlock_unlock(&s->resize);
    return rc;
}

/* Begin a transaction holding the resize lock shared; adopts a resized map. */
static int
txn_begin(rep__store_t *s, unsigned flags, MDB_txn **out)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        pthread_rwlock_rdlock(&s->resize);
        int rc = mdb_txn_begin(s->env, NULL, flags, out);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&s->resize);
        if (rc != MDB_MAP_RESIZED)
            return err(rc);
        REP_TRY(set_map_size(s, MAP_ADOPT));
    }
    return -EAGAIN;
}

static void
txn_end(rep__store_t *s, MDB_txn *txn, bool commit, int *rc)
{
    if (commit) {
        int c = mdb_txn_commit(txn);
        *rc = c == MDB_MAP_FULL ? MDB_MAP_FULL : err(c);
    } else {
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&s->resize);
}

int
rep__store_open(rep__store_t **out, const char *dir, bool create, bool nosync)
{
    *out = NULL;
    struct stat st;
    REP_TRY(check_dir(dir, create, &st));

    rep__store_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    pthread_rwlock_init(&s->resize, NULL);
    int rc = register_open(s);
    if (rc < 0)
        goto fail_registered;

    rc = err(mdb_env_create(&s->env));
    if (rc < 0)
        goto fail_env;
    mdb_env_set_maxdbs(s->env, REP_DB__COUNT + 2);
    mdb_env_set_maxreaders(s->env, 256);
    mdb_env_set_mapsize(s->env, INITIAL_MAP_SIZE);
    /* MDB_WRITEMAP: a write transaction's dirty pages live in the map, not on the heap (a bulk
     * import's RssAnon 67 -> 40 MiB, a little faster); every process opening a replica goes
     * through this library, so all use the same flag, as LMDB requires. */
    unsigned flags = MDB_NOTLS | MDB_WRITEMAP | (nosync ? MDB_NOSYNC : 0);
    rc = err(mdb_env_open(s->env, dir, flags, 0600));
    if (rc < 0)
        goto fail_open;
    int dead;
    mdb_reader_check(s->env, &dead); /* clear reader slots of crashed processes */

    /* Named databases are created in one write transaction (retried if the map is full). */
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        rc = txn_begin(s, 0, &txn);
        if (rc < 0)
            goto fail_open;
        int r = 0;
        for (int i = 0; i < REP_DB__COUNT && r == 0; i++)
            r = mdb_dbi_open(txn, db_spec[i].name, db_spec[i].flags | MDB_CREATE, &s->dbi[i]);
        if (r == 0) {
            txn_end(s, txn, true, &rc);
            if (rc != MDB_MAP_FULL)
                break;
        } else {
            txn_end(s, txn, false, &rc);
            rc = r == MDB_MAP_FULL ? MDB_MAP_FULL : err(r);
            if (rc != MDB_MAP_FULL)
                break;
        }
        if (attempt > 8 || (rc = set_map_size(s, MAP_GROW)) < 0)
            break;
    }
    if (rc < 0)
        goto fail_open;
    *out = s;
    return 0;

fail_open:
    mdb_env_close(s->env);
fail_env:
    unregister_open(s);
fail_registered:
    pthread_rwlock_destroy(&s->resize);
    free(s);
    return rc;
}

void
rep__store_close(rep__store_t **sp)
{
    rep__store_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    mdb_env_close(s->env);
    unregister_open(s);
    pthread_rwlock_destroy(&s->resize);
    free(s);
    *sp = NULL;
}

int
rep__store_read(rep__store_t *s, rep__txn_fn fn, void *ctx)
{
    rep__txn_t t = {s, NULL};
    REP_TRY(txn_begin(s, MDB_RDONLY, &t.txn));
    int rc = fn(&t, ctx);
    int unused = 0;
    txn_end(s, t.txn, false, &unused);
    return rc;
}

int
rep__store_write(rep__store_t *s, rep__txn_fn fn, void *ctx)
{
    /* A transaction that fills the map is aborted and runs again whole once the map has grown:
     * for a bulk import, all its work twice. So the map is doubled beforehand while more than
     * half of it is in use (a sparse file: the room costs address space, not disk). */
    MDB_envinfo info;
    pthread_rwlock_rdlock(&s->resize); /* another thread may be remapping it */
    mdb_env_info(s->env, &info);
    bool room = !half_full(s, &info);
    pthread_rwlock_unlock(&s->resize);
    if (!room)
        REP_TRY(set_map_size(s, MAP_ROOM));
    for (;;) {
        rep__txn_t t = {s, NULL};
        REP_TRY(txn_begin(s, 0, &t.txn));
        int rc = fn(&t, ctx);
        if (rc == 0)
            txn_end(s, t.txn, true, &rc);
        else
            txn_end(s, t.txn, false, &(int){0});
        if (rc != MDB_MAP_FULL)
            return rc;
        REP_TRY(set_map_size(s, MAP_GROW));
    }
}

/* Inside a transaction MDB_MAP_FULL is passed through as is, so rep__store_write sees it. */
static int
werr(int rc)
{
    return rc == MDB_MAP_FULL ? MDB_MAP_FULL : err(rc);
}

int
rep__txn_get(rep__txn_t *t, int db, const void *k, size_t kn, rep__slice_t *v)
{
    MDB_val key = {kn, (void *)k}, val;
    int rc = mdb_get(t->txn, t->s->dbi[db], &key, &val);
    if (rc)
        return err(rc);
    v->p = val.mv_data;
    v->n = val.mv_size;
    return 0;
}

int
rep__txn_put(rep__txn_t *t, int db, const void *k, size_t kn, const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    return werr(mdb_put(t->txn, t->s->dbi[db], &key, &val, 0));
}

int
rep__txn_append(rep__txn_t *t, int db, const void *k, size_t kn, const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    return werr(mdb_put(t->txn, t->s->dbi[db], &key, &val, MDB_APPEND));
}

int
rep__txn_del(rep__txn_t *t, int db, const void *k, size_t kn, const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    return werr(mdb_del(t->txn, t->s->dbi[db], &key, v ? &val : NULL));
}

int
rep__txn_count(rep__txn_t *t, int db, uint64_t *n)
{
    MDB_stat st;
    REP_TRY(err(mdb_stat(t->txn, t->s->dbi[db], &st)));
    *n = st.ms_entries;
    return 0;
}

int
rep__txn_empty(rep__txn_t *t, int db)
{
    return err(mdb_drop(t->txn, t->s->dbi[db], 0));
}

int
rep__txn_bytes(rep__txn_t *t, int db, uint64_t *n)
{
    MDB_stat st;
    REP_TRY(err(mdb_stat(t->txn, t->s->dbi[db], &st)));
    *n = (uint64_t)(st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
    return 0;
}

int
rep__cur_open(rep__txn_t *t, int db, rep__cur_t **out)
{
    *out = NULL;
    rep__cur_t *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = err(mdb_cursor_open(t->txn, t->s->dbi[db], &c->c));
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void
rep__cur_close(rep__cur_t **cp)
{
    if (!cp || !*cp)
        return;
    mdb_cursor_close((*cp)->c);
    free(*cp);
    *cp = NULL;
}

static int
cur_get(rep__cur_t *c, MDB_val *key, MDB_val *val, MDB_cursor_op op, rep__slice_t *k,
        rep__slice_t *v)
{
    REP_TRY(err(mdb_cursor_get(c->c, key, val, op)));
    if (k) {
        k->p = key->mv_data;
        k->n = key->mv_size;
    }
    if (v) {
        v->p = val->mv_data;
        v->n = val->mv_size;
    }
    return 0;
}

int
rep__cur_seek(rep__cur_t *c, const void *k, size_t kn, rep__slice_t *key, rep__slice_t *val)
{
    MDB_val mk = {kn, (void *)k}, mv = {0, NULL};
    return cur_get(c, &mk, &mv, k ? MDB_SET_RANGE : MDB_FIRST, key, val);
}

int
rep__cur_next(rep__cur_t *c, rep__slice_t *key, rep__slice_t *val)
{
    MDB_val mk, mv;
    return cur_get(c, &mk, &mv, MDB_NEXT, key, val);
}

int
rep__cur_next_dup(rep__cur_t *c, rep__slice_t *key, rep__slice_t *val)
{
    MDB_val mk, mv;
    return cur_get(c, &mk, &mv, MDB_NEXT_DUP, key, val);
}

int
rep__cur_del(rep__cur_t *c)
{
    return werr(mdb_cursor_del(c->c, 0));
}

int
rep__cur_get(rep__cur_t *c, const void *k, size_t kn, rep__slice_t *v)
{
    MDB_val mk = {kn, (void *)k}, mv = {0, NULL};
    return cur_get(c, &mk, &mv, MDB_SET_KEY, NULL, v);
}

int
rep__cur_put(rep__cur_t *c, const void *k, size_t kn, const void *v, size_t vn, bool current)
{
    MDB_val mk = {kn, (void *)k}, mv = {vn, (void *)v};
    return werr(mdb_cursor_put(c->c, &mk, &mv, current ? MDB_CURRENT : 0));
}

int
rep__cur_put_dups(rep__cur_t *c, const void *k, size_t kn, const void *v, size_t size, size_t n)
{
    if (n == 0)
        return 0;
    MDB_val mk = {kn, (void *)k}, mv[2] = {{size, (void *)v}, {n, NULL}};
    return werr(mdb_cursor_put(c->c, &mk, mv, MDB_MULTIPLE));
}
