/* provision.c — enrolling a new device (its membership entry, and what it starts from: the
 * provisioning of trust.h, in memory or sealed in a file under a one-time code), and revoking
 * one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"
#include "common.h"
#include "facade.h"
#include "keys.h"
#include "members.h"
#include "node.h"
#include "trust.h"

/* ---- Enrolling devices ---- */
typedef struct provision_ctx {
    rep_replica_t *r;
    const uint8_t *pk;        /* the new device's key */
    const uint8_t *sk;        /* and its secret key, to hand out; NULL when it keeps it */
    const char *name, *role;
    uint8_t *out;
    size_t len;
} provision_ctx_t;

static int
provision_fn(rep__txn_t *t, void *arg)
{
    provision_ctx_t *pc = arg;
    rep_replica_t *r = pc->r;
    free(pc->out); /* from an earlier try */
    pc->out = NULL;
    rep__trust_t tr;
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES];
    REP_TRY(rep__trust_load(t, r->office, &tr));
    int rc = rep__meta_get_fixed(t, REP_META_SIGN_PK, pk, sizeof pk);
    if (rc == 0)
        rc = rep__meta_get_fixed(t, REP_META_SIGN_SK, sk, sizeof sk);
    if (rc == 0)
        rc = rep__trust_add(&tr, t, pk, sk, pc->pk, pc->name, pc->role);
    rep__wipe(sk, sizeof sk);
    rep__trust_clear(&tr);
    if (rc == 0)
        rc = rep__provision_write(t, r->office, r->office_name, pc->pk, pc->sk, &pc->out, &pc->len);
    return rc;
}

int
rep__member_admit(rep_replica_t *r, const uint8_t pk[REP_SIGN_PK_BYTES],
                  const uint8_t *sk, const char *name, const char *role, uint8_t **out,
                  size_t *len)
{
    provision_ctx_t pc = {r, pk, sk, name, role, NULL, 0};
    int rc = rep__store_write(r->st, provision_fn, &pc);
    if (rc < 0) {
        free(pc.out);
        return rc;
    }
    rep__node_poke(r); /* a node serving this directory tells the office at once */
    *out = pc.out;
    *len = pc.len;
    return 0;
}

int
rep_replica_provision(rep_replica_t *r, const char *device_name, const char *role,
                      uint8_t **out, size_t *len)
{
    if (!out || !len)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (!r || !device_name || !role)
        return -EINVAL;
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(pk, sk);
    int rc = rep__member_admit(r, pk, sk, device_name, role, out, len);
    rep__wipe(sk, sizeof sk);
    return rc;
}

/* ---- Sealed in a file ----
 * magic "RPLF", version 1, salt(16), nonce(24), then XChaCha20-Poly1305 under the Argon2id
 * (crypto_pwhash, interactive limits) key of the one-time code, with the 45 bytes before it
 * as associated data, of [provisioning(bin), data(bin)]. */
static const char file_magic[4] = {'R', 'P', 'L', 'F'};
#define FILE_HDR (4 + 1 + REP_SALT_BYTES + REP_NONCE_BYTES)

int
rep_provision_seal(const uint8_t *prov, size_t provn, const uint8_t *data, size_t datan,
                   char code[REP_CODE_SIZE], uint8_t **out, size_t *len)
{
    if (!out || !len || !code || !prov || (datan && !data))
        return -EINVAL;
    *out = NULL;
    *len = 0;
    REP_TRY(rep__keys_init());
    rep__buf_t plain, b;
    rep__buf_init(&plain);
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &plain);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin(&pk, provn);
    msgpack_pack_bin_body(&pk, prov, provn);
    msgpack_pack_bin(&pk, datan);
    msgpack_pack_bin_body(&pk, data, datan);
    rep__code_new(code);
    uint8_t key[REP_KEY_BYTES], hdr[FILE_HDR];
    memcpy(hdr, file_magic, 4);
    hdr[4] = 1;
    rep__random(hdr + 5, REP_SALT_BYTES + REP_NONCE_BYTES);
    int rc = plain.err;
    if (rc == 0)
        rc = rep__pw_key(key, code, hdr + 5);
    if (rc == 0 && (rc = rep__buf_reserve(&b, FILE_HDR + plain.len + REP_MAC_BYTES)) == 0) {
        rep__buf_add(&b, hdr, sizeof hdr);
        rep__aead_seal(b.p + b.len, plain.p, plain.len, hdr, sizeof hdr,
                       hdr + 5 + REP_SALT_BYTES, key);
        b.len += plain.len + REP_MAC_BYTES;
        *out = rep__buf_take(&b, len);
    }
    rep__wipe(key, sizeof key);
    if (plain.p)
        rep__wipe(plain.p, plain.len);
    rep__buf_free(&plain);
    rep__buf_free(&b);
    return rc;
}

static int
copy_out(const uint8_t *p, size_t n, uint8_t **out, size_t *outn)
{
    if (!(*out = malloc(n ? n : 1)))
        return -ENOMEM;
    memcpy(*out, p, n);
    *outn = n;
    return 0;
}

int
rep_provision_unseal(const uint8_t *file, size_t n, const char *code, uint8_t **prov,
                     size_t *provn, uint8_t **data, size_t *datan)
{
    if (!prov || !provn || !data || !datan)
        return -EINVAL;
    *prov = *data = NULL;
    *provn = *datan = 0;
    if (!file || !code)
        return -EINVAL;
    REP_TRY(rep__keys_init());
    if (n < FILE_HDR + REP_MAC_BYTES || memcmp(file, file_magic, 4) != 0)
        return REP_ECORRUPT;
    if (file[4] != 1)
        return REP_EVERSION;
    char canon[REP_CODE_SIZE];
    REP_TRY(rep__code_canon(code, canon));
    uint8_t key[REP_KEY_BYTES];
    size_t pn = n - FILE_HDR - REP_MAC_BYTES;
    uint8_t *plain = malloc(pn ? pn : 1);
    if (!plain)
        return -ENOMEM;
    int rc = rep__pw_key(key, canon, file + 5);
    if (rc == 0)
        rc = rep__aead_open(plain, file + FILE_HDR, n - FILE_HDR, file, FILE_HDR,
                            file + 5 + REP_SALT_BYTES, key);
    rep__wipe(key, sizeof key);
    rep__rd_t r;
    rep__rd_init(&r, plain, pn);
    uint32_t two, a, b;
    const uint8_t *pp, *dp;
    if (rc == 0 && (rep__rd_array(&r, &two) < 0 || two != 2 || rep__rd_bin(&r, &pp, &a) < 0 ||
                    rep__rd_bin(&r, &dp, &b) < 0 || rep__rd_left(&r) != 0))
        rc = REP_ECORRUPT;
    if (rc == 0 && (rc = copy_out(pp, a, prov, provn)) == 0 && (rc = copy_out(dp, b, data, datan)) < 0) {
        rep__wipe(*prov, *provn);
        free(*prov);
        *prov = NULL;
        *provn = 0;
    }
    rep__wipe(plain, pn);
    free(plain);
    return rc;
}

int
rep_provision_info(const uint8_t *prov, size_t n, uint8_t office_id[REP_OFFICE_ID_BYTES],
                   char **office_name, char **device_name)
{
    if (office_name)
        *office_name = NULL;
    if (device_name)
        *device_name = NULL;
    if (!prov)
        return -EINVAL;
    rep__provision_t p;
    int rc = rep__provision_decode(prov, n, &p);
    const char *name = NULL;
    uint32_t namen = 0;
    for (size_t i = 0; i < p.nentries && rc == 0 && !name; i++) {
        rep__entry_t e;
        if ((rc = rep__entry_decode(p.entries[i].p, p.entries[i].n, &e)) == 0 &&
            memcmp(e.device, p.pk, sizeof p.pk) == 0) {
            name = e.name;
            namen = e.namen;
        }
    }
    if (rc == 0 && !name)
        rc = REP_EAUTH; /* the log does not enroll the device */
    if (rc == 0 && office_id)
        memcpy(office_id, p.office, REP_OFFICE_ID_BYTES);
    if (rc == 0 && office_name && !(*office_name = rep__strndup(p.office_name, p.office_namen)))
        rc = -ENOMEM;
    if (rc == 0 && device_name && !(*device_name = rep__strndup(name, namen)))
        rc = -ENOMEM;
    rep__provision_clear(&p);
    if (rc < 0 && office_name) {
        free(*office_name);
        *office_name = NULL;
    }
    return rc;
}

/* ---- Revoking ---- */
typedef struct revoke_ctx {
    rep_replica_t *r;
    const char *device;       /* a name or an id */
    char id[2 * REP_SIGN_PK_BYTES + 1];
    uint64_t cut;             /* changes of it kept */
} revoke_ctx_t;

/* The member named or identified by s, or NULL. */
static const rep__dev_t *
find_member(const rep__trust_t *tr, const char *s)
{
    for (size_t i = 0; i < tr->ndevs; i++) {
        char id[2 * REP_SIGN_PK_BYTES + 1];
        rep__hex(id, tr->devs[i].pk, REP_SIGN_PK_BYTES);
        if (!tr->devs[i].removed && (strcmp(tr->devs[i].name, s) == 0 || strcmp(id, s) == 0))
            return &tr->devs[i];
    }
    return NULL;
}

/* The cutoffs: every actor of d in t's vv, at what t has of it. */
static int
cutoffs_of(rep__txn_t *t, const rep__dev_t *d, rep__cutoff_t **out, size_t *n, uint64_t *kept)
{
    rep_vv_entry_t *vv;
    size_t nvv;
    REP_TRY(rep__vv_all(t, &vv, &nvv));
    *out = nvv ? calloc(nvv, sizeof **out) : NULL;
    *n = 0;
    *kept = 0;
    int rc = nvv && !*out ? -ENOMEM : 0;
    for (size_t i = 0; i < nvv && rc == 0; i++) {
        uint32_t inc;
        if (!rep__trust_inc_of(d->pk, vv[i].actor, &inc))
            continue;
        rep__cutoff_t *c = &(*out)[(*n)++];
        c->actor = vv[i].actor;
        c->inc = inc;
        rc = rep__vv_get(t, vv[i].actor, &c->seq, c->hash);
        *kept += c->seq;
    }
    free(vv);
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int
revoke_fn(rep__txn_t *t, void *arg)
{
    revoke_ctx_t *rc_ = arg;
    rep__trust_t tr;
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES];
    REP_TRY(rep__trust_load(t, rc_->r->office, &tr));
    const rep__dev_t *d = find_member(&tr, rc_->device);
    rep__cutoff_t *cuts = NULL;
    size_t n = 0;
    int rc = d ? 0 : REP_ENOTFOUND;
    if (rc == 0)
        rc = rep__meta_get_fixed(t, REP_META_SIGN_PK, pk, sizeof pk);
    if (rc == 0)
        rc = rep__meta_get_fixed(t, REP_META_SIGN_SK, sk, sizeof sk);
    if (rc == 0)
        rc = cutoffs_of(t, d, &cuts, &n, &rc_->cut);
    if (rc == 0) {
        rep__hex(rc_->id, d->pk, REP_SIGN_PK_BYTES);
        rc = rep__trust_remove(&tr, t, pk, sk, d->pk, cuts, n);
    }
    rep__wipe(sk, sizeof sk);
    free(cuts);
    rep__trust_clear(&tr);
    if (rc == 0) { /* its late changes that wait here in pending go, as anywhere else, and
                    * what waited for them applies (dependencies on them are capped now) */
        rep__applier_t a;
        rc = rep__applier_begin(&a, t, rep__wall_ms(rc_->r), rc_->r->max_drift_ms);
        if (rc == 0)
            rc = rep__apply_revocations(&a);
        if (rc == 0)
            rc = rep__apply_pending(&a);
        rc = rep__applier_end(&a, rc);
    }
    return rc;
}

int
rep_replica_revoke(rep_replica_t *r, const char *device, char id[REP_DEVICE_ID_SIZE],
                   uint64_t *kept)
{
    if (!r || !device || !*device)
        return -EINVAL;
    revoke_ctx_t rc_ = {r, device, {0}, 0};
    REP_TRY(rep__store_write(r->st, revoke_fn, &rc_));
    rep__node_poke(r); /* a node serving this directory tells the office, and hangs up on it */
    if (id)
        memcpy(id, rc_.id, REP_DEVICE_ID_SIZE);
    if (kept)
        *kept = rc_.cut;
    return 0;
}
