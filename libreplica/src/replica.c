/* replica.c — the public facade: open and close a replica, shared helpers, errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "codec.h"
#include "common.h"
#include "facade.h"
#include "hlc.h"
#include "keys.h"
#include "trust.h"

/* ---- Small helpers ---- */
uint64_t
rep__wall_ms(const rep_replica_t *r)
{
    return r->clock_ms ? r->clock_ms(r->clock_ctx) : rep__clock_ms(CLOCK_REALTIME);
}

char *
rep__strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

const char *
rep__device_name(const char *given, char host[REP_HOST_NAME_MAX])
{
    if (given)
        return given;
    if (gethostname(host, REP_HOST_NAME_MAX - 1) < 0)
        strcpy(host, "workstation");
    host[REP_HOST_NAME_MAX - 1] = 0;
    return host;
}

static int
meta_get_str(rep__txn_t *t, const char *key, char **out)
{
    rep__slice_t v;
    REP_TRY(rep__txn_get(t, REP_DB_META, key, strlen(key), &v));
    *out = rep__strndup((const char *)v.p, v.n);
    return *out ? 0 : -ENOMEM;
}

static int
meta_put(rep__txn_t *t, const char *key, const void *v, size_t n)
{
    return rep__txn_put(t, REP_DB_META, key, strlen(key), v, n);
}

/* Copy a stored canonical value out into *out (strings NUL-terminated, caller frees ptr). */
int
rep__value_copy(const uint8_t *p, size_t n, rep_value_t *out)
{
    REP_TRY(rep__value_decode(p, n, out));
    if (out->type == REP_STRING || out->type == REP_BYTES) {
        char *s = rep__strndup(out->u.s.ptr, out->u.s.len);
        if (!s)
            return -ENOMEM;
        out->u.s.ptr = s;
    }
    return 0;
}

void
rep__value_release(rep_value_t *v)
{
    if (v->type == REP_STRING || v->type == REP_BYTES)
        free((void *)v->u.s.ptr);
    memset(v, 0, sizeof *v);
}

char *
rep__record_key_str(const rep__skey_t *k)
{
    char *s = malloc(k->colln + k->recn + 2);
    if (s)
        sprintf(s, "%.*s/%.*s", (int)k->colln, k->coll, (int)k->recn, k->rec);
    return s;
}

/* ---- Open and close ---- */
typedef struct init_ctx {
    const rep_open_opts_t *opts;
    const rep__provision_t *prov;   /* decoded opts->provision, or NULL */
} init_ctx_t;

/* A new office: this device is its founding admin, with the key of epoch 1. */
static int
found_office(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES], const uint8_t pk[REP_SIGN_PK_BYTES],
             const uint8_t sk[REP_SIGN_SK_BYTES], const char *device_name)
{
    rep__trust_t tr;
    uint8_t key[REP_KEY_BYTES];
    memset(&tr, 0, sizeof tr);
    memcpy(tr.office, office, sizeof tr.office);
    rep__random(key, sizeof key);
    int rc = rep__trust_add(&tr, t, pk, sk, pk, device_name, "admin");
    if (rc == 0)
        rc = rep__trust_put_key(&tr, t, 1, key);
    rep__wipe(key, sizeof key);
    rep__trust_clear(&tr);
    return rc;
}

static int
init_fn(rep__txn_t *t, void *arg)
{
    init_ctx_t *ic = arg;
    const rep_open_opts_t *o = ic->opts;
    rep__slice_t v;
    int rc = rep__txn_get(t, REP_DB_META, REP_META_FORMAT, strlen(REP_META_FORMAT), &v);
    if (rc == 0)
        return o && (o->flags & REP_OPEN_EXCL) ? REP_EEXIST : 0; /* a replica already */
    if (rc != REP_ENOTFOUND)
        return rc;

    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES], office[REP_OFFICE_ID_BYTES], u32[4];
    char host[REP_HOST_NAME_MAX];
    const char *office_name = o && o->office_name ? o->office_name : "office";
    const char *device_name = rep__device_name(o ? o->device_name : NULL, host);
    rep__trust_t tr;
    memset(&tr, 0, sizeof tr);
    const rep__provision_t *p = ic->prov;
    if (p) { /* a device of an existing office */
        memcpy(office, p->office, sizeof office);
        memcpy(pk, p->pk, sizeof pk);
        memcpy(sk, p->sk, sizeof sk);
        memcpy(tr.office, office, sizeof office);
        rc = rep__provision_apply(p, &tr, t, &device_name);
        bool want_relay = o->flags & REP_OPEN_RELAY;
        if (rc == 0 && rep__dev_is_relay(rep__trust_member(&tr, pk)) != want_relay)
            rc = REP_EROLE;
        office_name = NULL;
        if (rc == 0)
            rc = meta_put(t, REP_META_OFFICE_NAME, p->office_name, p->office_namen);
    } else { /* a new office */
        rep__sign_keypair(pk, sk);
        rep__random(office, sizeof office);
        rc = found_office(t, office, pk, sk, device_name);
    }
    rep__put_be32(u32, REP_STORE_FORMAT);
    if (rc == 0)
        rc = meta_put(t, REP_META_FORMAT, u32, 4);
    if (rc == 0)
        rc = meta_put(t, REP_META_OFFICE, office, sizeof office);
    if (rc == 0 && office_name)
        rc = meta_put(t, REP_META_OFFICE_NAME, office_name, strlen(office_name));
    if (rc == 0)
        rc = meta_put(t, REP_META_DEVICE_NAME, device_name, strlen(device_name));
    if (rc == 0)
        rc = meta_put(t, REP_META_SIGN_PK, pk, sizeof pk);
    if (rc == 0)
        rc = meta_put(t, REP_META_SIGN_SK, sk, sizeof sk);
    rep__put_be32(u32, 0);
    if (rc == 0)
        rc = meta_put(t, REP_META_INCARNATION, u32, 4);
    if (rc == 0)
        rc = rep__meta_put_u64(t, REP_META_ACTOR, rep__actor_derive(pk, 0));
    if (rc == 0)
        rc = rep__meta_put_u64(t, REP_META_HLC, 0);
    rep__wipe(sk, sizeof sk);
    rep__trust_clear(&tr);
    return rc;
}

static int
load_fn(rep__txn_t *t, void *arg)
{
    rep_replica_t *r = arg;
    uint8_t u32[4];
    int rc = rep__meta_get_fixed(t, REP_META_FORMAT, u32, 4);
    if (rc == REP_ENOTFOUND)
        return REP_ENOTREPLICA;
    REP_TRY(rc);
    if (rep__get_be32(u32) != REP_STORE_FORMAT)
        return REP_EVERSION; /* newer, or format 1 (changes not sealed), which is retired */
    REP_TRY(rep__meta_get_fixed(t, REP_META_OFFICE, r->office, sizeof r->office));
    free(r->office_name);
    free(r->device_name);
    r->office_name = r->device_name = NULL;
    REP_TRY(meta_get_str(t, REP_META_OFFICE_NAME, &r->office_name));
    REP_TRY(meta_get_str(t, REP_META_DEVICE_NAME, &r->device_name));
    REP_TRY(rep__meta_get_fixed(t, REP_META_INCARNATION, u32, 4));
    r->incarnation = rep__get_be32(u32);
    return rep__meta_get_u64(t, REP_META_ACTOR, &r->actor);
}

/*
 * File identity: a replica's meta records the device and inode of its data file and a random
 * nonce, which the directory also holds in a small file beside it (IDENTITY_FILE). A data file
 * that was copied or restored from a backup no longer matches: before it writes anything it
 * takes a new incarnation, and so a new actor id, so it never reuses an (actor, seq) of the
 * replica it was copied from (DESIGN.md "Changes and causality").
 */
#define IDENTITY_FILE "replica.id"
#define REP_IDENTITY_NONCE 16
#define IDENTITY_BYTES (16 + REP_IDENTITY_NONCE)

typedef struct identity_ctx {
    const char *dir;
    uint8_t now[IDENTITY_BYTES];  /* the data file's device, inode, and the directory's nonce */
    bool have_nonce;
    uint8_t was[IDENTITY_BYTES];  /* what meta records */
    bool known;                   /* meta records one */
} identity_ctx_t;

static int
identity_meta(rep__txn_t *t, identity_ctx_t *ic)
{
    int rc = rep__meta_get_fixed(t, REP_META_FILE_ID, ic->was, sizeof ic->was);
    ic->known = rc == 0;
    return rc == REP_ENOTFOUND ? 0 : rc;
}

static bool
identity_same(const identity_ctx_t *ic)
{
    return ic->known && ic->have_nonce && memcmp(ic->was, ic->now, sizeof ic->now) == 0;
}

static int
identity_peek_fn(rep__txn_t *t, void *arg)
{
    return identity_meta(t, arg);
}

/* Read where the data file is now and the nonce the directory holds. */
static int
identity_read(identity_ctx_t *ic)
{
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/data.mdb", ic->dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (stat(path, &st) < 0)
        return -errno;
    rep__put_be64(ic->now, (uint64_t)st.st_dev);
    rep__put_be64(ic->now + 8, (uint64_t)st.st_ino);
    snprintf(path, sizeof path, "%s/" IDENTITY_FILE, ic->dir);
    FILE *f = fopen(path, "rb");
    ic->have_nonce = f && fread(ic->now + 16, 1, REP_IDENTITY_NONCE, f) == REP_IDENTITY_NONCE;
    if (f)
        fclose(f);
    return 0;
}

/* Write the directory's nonce durably (a new file renamed over the old one). */
static int
identity_write_nonce(const char *dir, const uint8_t nonce[REP_IDENTITY_NONCE])
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/" IDENTITY_FILE, dir);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, nonce, REP_IDENTITY_NONCE) == REP_IDENTITY_NONCE && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* In the write transaction (so concurrent openers agree): if the data file is not where and
 * what meta says, record its new identity and, for a copy, take a new incarnation. */
static int
identity_fn(rep__txn_t *t, void *arg)
{
    identity_ctx_t *ic = arg;
    uint8_t pk[REP_SIGN_PK_BYTES], u32[4];
    REP_TRY(identity_read(ic));
    REP_TRY(identity_meta(t, ic));
    if (identity_same(ic))
        return 0; /* another process settled it meanwhile */
    if (ic->known) { /* a copy or a restore: a new incarnation before the first write */
        REP_TRY(rep__meta_get_fixed(t, REP_META_INCARNATION, u32, 4));
        REP_TRY(rep__meta_get_fixed(t, REP_META_SIGN_PK, pk, sizeof pk));
        uint32_t inc = rep__get_be32(u32) + 1;
        rep__put_be32(u32, inc);
        REP_TRY(meta_put(t, REP_META_INCARNATION, u32, 4));
        REP_TRY(rep__meta_put_u64(t, REP_META_ACTOR, rep__actor_derive(pk, inc)));
        static const uint8_t none[REP_HASH_BYTES];
        REP_TRY(rep__own_put(t, 0, none)); /* the new actor's chain starts */
    }
    rep__random(ic->now + 16, REP_IDENTITY_NONCE);
    REP_TRY(identity_write_nonce(ic->dir, ic->now + 16));
    return meta_put(t, REP_META_FILE_ID, ic->now, sizeof ic->now);
}

/* Check the data file's identity (identity_fn), writing only when it changed. */
static int
identity_check(rep_replica_t *r, const char *dir)
{
    identity_ctx_t ic = {.dir = dir};
    REP_TRY(identity_read(&ic));
    REP_TRY(rep__store_read(r->st, identity_peek_fn, &ic));
    if (identity_same(&ic))
        return 0;
    REP_TRY(rep__store_write(r->st, identity_fn, &ic));
    return rep__store_read(r->st, load_fn, r); /* the actor may be new */
}

static int
check_name_opt(const char *s)
{
    return s ? rep__name_check(s, strlen(s), REP_MAX_USER, false) : 0;
}

/* Remove what a failed rep_replica_open(CREATE) made in dir: the LMDB files (and dir). */
static void
unmake(const char *dir, bool made_dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", IDENTITY_FILE};
    char path[4096];
    for (size_t i = 0; i < REP_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    if (made_dir)
        rmdir(dir);
}

int
rep_replica_open(rep_replica_t **out, const char *dir, const rep_open_opts_t *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || !*dir)
        return -EINVAL;
    bool create = opts && (opts->flags & REP_OPEN_CREATE);
    if (opts) {
        if (opts->max_drift_ms > 24ull * 3600 * 1000)
            return -EINVAL;
        REP_TRY(check_name_opt(opts->office_name));
        REP_TRY(check_name_opt(opts->device_name));
    }
    REP_TRY(rep__keys_init());
    rep__provision_t prov;
    bool provisioned = create && opts->provision;
    if (provisioned) { /* checked before anything is made */
        int rc = rep__provision_decode(opts->provision, opts->provision_len, &prov);
        if (rc == 0 && !prov.has_sk)
            rc = REP_EKEY; /* the device's own key is not in it */
        if (rc < 0) {
            rep__provision_clear(&prov);
            return rc;
        }
    }
    rep_replica_t *r = calloc(1, sizeof *r);
    if (!r) {
        if (provisioned)
            rep__provision_clear(&prov);
        return -ENOMEM;
    }
    if (opts) {
        r->clock_ms = opts->clock_ms;
        r->clock_ctx = opts->clock_ctx;
        r->max_drift_ms = opts->max_drift_ms;
    }
    if (!r->max_drift_ms)
        r->max_drift_ms = REP_DEFAULT_MAX_DRIFT_MS;
    struct stat st;
    char data[4096];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    bool had_dir = stat(dir, &st) == 0, had_data = stat(data, &st) == 0;
    int rc = rep__store_open(&r->st, dir, create, opts && (opts->flags & REP_OPEN_NOSYNC));
    if (rc < 0)
        goto fail;
    if (create) {
        init_ctx_t ic = {opts, provisioned ? &prov : NULL};
        if ((rc = rep__store_write(r->st, init_fn, &ic)) < 0) {
            rep__store_close(&r->st); /* a replica that never was: leave nothing behind */
            if (!had_data)
                unmake(dir, !had_dir);
            goto fail;
        }
    }
    if ((rc = rep__store_read(r->st, load_fn, r)) < 0 || (rc = identity_check(r, dir)) < 0)
        goto fail;
    if (!(r->dir = strdup(dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    *out = r;
    rc = 0;
fail:
    if (provisioned)
        rep__provision_clear(&prov);
    if (rc < 0)
        rep_replica_close(&r);
    return rc;
}

void
rep_replica_close(rep_replica_t **rp)
{
    rep_replica_t *r = rp ? *rp : NULL;
    if (!r)
        return;
    rep__store_close(&r->st);
    free(r->dir);
    free(r->office_name);
    free(r->device_name);
    free(r);
    *rp = NULL;
}

void
rep_value_free(rep_value_t **vp)
{
    if (!vp || !*vp)
        return;
    rep__value_release(*vp);
    free(*vp);
    *vp = NULL;
}

int
rep_value_equal(const rep_value_t *a, const rep_value_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case REP_NULL:
        return 1;
    case REP_BOOL:
        return !a->u.b == !b->u.b;
    case REP_INT:
        return a->u.i == b->u.i;
    case REP_DOUBLE:
        return memcmp(&a->u.d, &b->u.d, sizeof a->u.d) == 0;
    case REP_STRING:
    case REP_BYTES:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    }
    return 0;
}

void
rep_free(void *p)
{
    free(p);
}

/* ---- Misc ---- */
const char *
rep_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case REP_ENOTFOUND: return "not found";
    case REP_ECORRUPT: return "corrupted or malformed data (checksum or decoding failed)";
    case REP_EVERSION: return "written by a newer version of libreplica";
    case REP_ENOTREPLICA: return "not a replica directory";
    case REP_EOFFICE: return "belongs to another office";
    case REP_EBUSY: return "replica already open in this process";
    case REP_ETOOBIG: return "name, value or transaction over the documented limit";
    case REP_EEXIST: return "already exists";
    case REP_EFORK: return "a device's history forked (same change number, different content)";
    case REP_EKIND: return "field used with another kind than its own";
    case REP_EDONE: return "transaction already committed or aborted";
    case REP_ESTATE: return "the changes asked for are here only as state: a snapshot is needed";
    case REP_EEXPIRED: return "the invitation has expired";
    case REP_EREFUSED: return "the office's node refused the invitation";
    case REP_EAUTH: return "signature or seal did not verify (forged, tampered, or not a member)";
    case REP_EKEY: return "this replica lacks the office key needed (not enrolled for that epoch)";
    case REP_EROLE: return "not for this device's role (a relay cannot write or hold state; "
                           "a relay's enrollment and a workstation's are not interchangeable)";
    }
    if (rc < 0 && rc > REP_ERROR_BASE)
        return strerror(-rc);
    return "unknown error";
}

const char *
rep_version(void)
{
    return REP_VERSION_STRING;
}
