/* trust.c — the membership log and the office keys. See trust.h. */
#include "trust.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "apply.h"
#include "change.h"
#include "crdt.h"

static const char kdf_ctx[8] = {'r', 'e', 'p', 'l', 'i', 'c', 'a', '_'};

static void
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

/* ---- Entries ---- */
static bool
role_valid(const char *s, size_t n)
{
    return (n == 5 && memcmp(s, "admin", 5) == 0) || (n == 6 && memcmp(s, "member", 6) == 0) ||
           (n == 5 && memcmp(s, "relay", 5) == 0);
}

/* A REMOVE's [[[actor, inc, seq, hash]...], [[device, box]...]]: checked, and kept as views
 * (rep__entry_cutoff and rep__entry_box read them again). */
static int
rd_removal(rep__rd_t *r, rep__entry_t *e)
{
    uint32_t two, n, four;
    REP_TRY(rep__rd_array(r, &two));
    if (two != 2)
        return REP_ECORRUPT;
    const uint8_t *cuts = r->p;
    REP_TRY(rep__rd_array(r, &n));
    if (n > REP_MAX_CUTOFFS)
        return REP_ECORRUPT;
    e->ncuts = n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t actor, inc, seq;
        uint8_t hash[REP_HASH_BYTES];
        REP_TRY(rep__rd_array(r, &four));
        if (four != 4)
            return REP_ECORRUPT;
        REP_TRY(rep__rd_uint(r, &actor));
        REP_TRY(rep__rd_uint(r, &inc));
        REP_TRY(rep__rd_uint(r, &seq));
        REP_TRY(rep__rd_fixed(r, hash, sizeof hash));
        if (actor == 0 || inc > UINT32_MAX || rep__actor_derive(e->device, (uint32_t)inc) != actor)
            return REP_ECORRUPT; /* not an actor of the device removed */
    }
    e->cuts = (rep__bytes_t){cuts, (size_t)(r->p - cuts)};
    const uint8_t *boxes = r->p;
    REP_TRY(rep__rd_array(r, &n));
    e->nboxes = n;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t pk[REP_SIGN_PK_BYTES], box[REP_KEY_BOX_BYTES];
        REP_TRY(rep__rd_array(r, &two));
        if (two != 2)
            return REP_ECORRUPT;
        REP_TRY(rep__rd_fixed(r, pk, sizeof pk));
        REP_TRY(rep__rd_fixed(r, box, sizeof box));
    }
    e->boxes = (rep__bytes_t){boxes, (size_t)(r->p - boxes)};
    return 0;
}

int
rep__entry_cutoff(const rep__entry_t *e, size_t i, rep__cutoff_t *out)
{
    rep__rd_t r;
    uint32_t n, four;
    uint64_t inc;
    rep__rd_init(&r, e->cuts.p, e->cuts.n);
    REP_TRY(rep__rd_array(&r, &n));
    for (size_t k = 0; k <= i && k < n; k++) {
        REP_TRY(rep__rd_array(&r, &four));
        REP_TRY(rep__rd_uint(&r, &out->actor));
        REP_TRY(rep__rd_uint(&r, &inc));
        REP_TRY(rep__rd_uint(&r, &out->seq));
        REP_TRY(rep__rd_fixed(&r, out->hash, sizeof out->hash));
        out->inc = (uint32_t)inc;
    }
    return i < n ? 0 : REP_ENOTFOUND;
}

int
rep__entry_box(const rep__entry_t *e, size_t i, uint8_t pk[REP_SIGN_PK_BYTES],
               uint8_t box[REP_KEY_BOX_BYTES])
{
    rep__rd_t r;
    uint32_t n, two;
    rep__rd_init(&r, e->boxes.p, e->boxes.n);
    REP_TRY(rep__rd_array(&r, &n));
    for (size_t k = 0; k <= i && k < n; k++) {
        REP_TRY(rep__rd_array(&r, &two));
        REP_TRY(rep__rd_fixed(&r, pk, REP_SIGN_PK_BYTES));
        REP_TRY(rep__rd_fixed(&r, box, REP_KEY_BOX_BYTES));
    }
    return i < n ? 0 : REP_ENOTFOUND;
}

int
rep__entry_decode(const uint8_t *p, size_t n, rep__entry_t *e)
{
    memset(e, 0, sizeof *e);
    rep__rd_t r;
    rep__rd_init(&r, p, n);
    uint32_t count;
    uint64_t version, type, epoch;
    REP_TRY(rep__rd_array(&r, &count));
    REP_TRY(rep__rd_uint(&r, &version));
    if (version != REP_ENTRY_VERSION)
        return version > REP_ENTRY_VERSION ? REP_EVERSION : REP_ECORRUPT;
    if (count != 13)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_fixed(&r, e->office, sizeof e->office));
    REP_TRY(rep__rd_uint(&r, &e->seq));
    REP_TRY(rep__rd_fixed(&r, e->prev, sizeof e->prev));
    REP_TRY(rep__rd_uint(&r, &type));
    REP_TRY(rep__rd_uint(&r, &epoch));
    if (type != REP_ENTRY_ADD && type != REP_ENTRY_REMOVE)
        return type > REP_ENTRY_REMOVE && type < 256 ? REP_EVERSION : REP_ECORRUPT;
    if (e->seq == 0 || epoch == 0 || epoch > UINT32_MAX)
        return REP_ECORRUPT;
    e->type = (uint8_t)type;
    e->epoch = (uint32_t)epoch;
    REP_TRY(rep__rd_fixed(&r, e->device, sizeof e->device));
    REP_TRY(rep__rd_fixed(&r, e->curve, sizeof e->curve));
    REP_TRY(rep__rd_str(&r, &e->name, &e->namen));
    REP_TRY(rep__rd_str(&r, &e->role, &e->rolen));
    if (rep__name_check(e->name, e->namen, REP_MAX_DEVICE_NAME, false) != 0 ||
        !role_valid(e->role, e->rolen))
        return REP_ECORRUPT;
    if (e->type == REP_ENTRY_ADD)
        REP_TRY(rep__rd_nil(&r));
    else
        REP_TRY(rd_removal(&r, e));
    REP_TRY(rep__rd_fixed(&r, e->signer, sizeof e->signer));
    e->signed_len = n - rep__rd_left(&r);
    REP_TRY(rep__rd_fixed(&r, e->sig, sizeof e->sig));
    return rep__rd_left(&r) == 0 ? 0 : REP_ECORRUPT;
}

/* ---- Loading ---- */
void
rep__trust_clear(rep__trust_t *tr)
{
    for (size_t i = 0; i < tr->ndevs; i++)
        free(tr->devs[i].cuts);
    free(tr->devs);
    if (tr->keys)
        rep__wipe(tr->keys, tr->nkeys * sizeof *tr->keys);
    free(tr->keys);
    free(tr->authors);
    rep__wipe(tr, sizeof *tr);
}

const rep__dev_t *
rep__trust_member(const rep__trust_t *tr, const uint8_t pk[REP_SIGN_PK_BYTES])
{
    for (size_t i = 0; i < tr->ndevs; i++)
        if (memcmp(tr->devs[i].pk, pk, REP_SIGN_PK_BYTES) == 0)
            return &tr->devs[i];
    return NULL;
}

/* Fold a checked REMOVE into tr: the device's cutoffs. */
static int
fold_remove(rep__trust_t *tr, const rep__entry_t *e)
{
    rep__dev_t *d = (rep__dev_t *)rep__trust_member(tr, e->device);
    if (!d || d->removed)
        return REP_ECORRUPT;
    /* the listed cutoffs, then the device's first incarnations that are not listed, at 0:
     * nothing of them stays (what a dependency on them is capped at) */
    if (!(d->cuts = calloc(e->ncuts + REP_CUT_INCS, sizeof *d->cuts)))
        return -ENOMEM;
    for (size_t i = 0; i < e->ncuts; i++)
        REP_TRY(rep__entry_cutoff(e, i, &d->cuts[i]));
    d->ncuts = e->ncuts;
    for (uint32_t inc = 0; inc < REP_CUT_INCS; inc++) {
        uint64_t actor = rep__actor_derive(d->pk, inc);
        bool listed = false;
        for (size_t i = 0; i < e->ncuts; i++)
            listed |= d->cuts[i].actor == actor;
        if (!listed)
            d->cuts[d->ncuts++] = (rep__cutoff_t){.actor = actor, .inc = inc};
    }
    d->removed = true;
    tr->any_removed = true;
    tr->removals++;
    return 0;
}

/* Fold a checked entry into tr. */
static int
fold(rep__trust_t *tr, const rep__entry_t *e, const uint8_t *p, size_t n)
{
    if (e->type == REP_ENTRY_REMOVE) {
        REP_TRY(fold_remove(tr, e));
        tr->count = e->seq;
        tr->epoch = e->epoch;
        rep__hash(tr->head, p, n);
        return 0;
    }
    if (rep__trust_member(tr, e->device))
        return REP_ECORRUPT; /* added twice: rep__trust_accept refuses it */
    rep__dev_t *d = realloc(tr->devs, (tr->ndevs + 1) * sizeof *d);
    if (!d)
        return -ENOMEM;
    tr->devs = d;
    d = &d[tr->ndevs++];
    memset(d, 0, sizeof *d);
    memcpy(d->pk, e->device, sizeof d->pk);
    memcpy(d->curve, e->curve, sizeof d->curve);
    memcpy(d->name, e->name, e->namen);
    memcpy(d->role, e->role, e->rolen);
    tr->count = e->seq;
    tr->epoch = e->epoch;
    rep__hash(tr->head, p, n);
    return 0;
}

static int
take_key(rep__trust_t *tr, uint32_t epoch, const uint8_t key[REP_KEY_BYTES])
{
    for (size_t i = 0; i < tr->nkeys; i++)
        if (tr->keys[i].epoch == epoch)
            return 0;
    struct rep__epoch_key *k = realloc(tr->keys, (tr->nkeys + 1) * sizeof *k);
    if (!k)
        return -ENOMEM;
    tr->keys = k;
    k = &k[tr->nkeys++];
    k->epoch = epoch;
    rep__kdf(k->change, REP_SUBKEY_CHANGE, kdf_ctx, key);
    rep__kdf(k->snapshot, REP_SUBKEY_SNAPSHOT, kdf_ctx, key);
    rep__kdf(k->beacon, REP_SUBKEY_BEACON, kdf_ctx, key);
    return 0;
}

/* This device's keys, when t's replica has them. */
static int
load_self(rep__txn_t *t, rep__trust_t *tr)
{
    rep__slice_t pk, sk;
    int rc = rep__txn_get(t, REP_DB_META, REP_META_SIGN_PK, strlen(REP_META_SIGN_PK), &pk);
    if (rc == 0)
        rc = rep__txn_get(t, REP_DB_META, REP_META_SIGN_SK, strlen(REP_META_SIGN_SK), &sk);
    if (rc == REP_ENOTFOUND)
        return 0;
    REP_TRY(rc);
    if (pk.n != REP_SIGN_PK_BYTES || sk.n != REP_SIGN_SK_BYTES)
        return REP_ECORRUPT;
    memcpy(tr->self_pk, pk.p, pk.n);
    REP_TRY(rep__sign_to_curve(NULL, sk.p, NULL, tr->self_csk));
    tr->has_self = true;
    return 0;
}

int
rep__trust_load(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES], rep__trust_t *tr)
{
    memset(tr, 0, sizeof *tr);
    memcpy(tr->office, office, sizeof tr->office);
    int lrc = load_self(t, tr);
    if (lrc < 0)
        return lrc;
    rep__cur_t *c;
    REP_TRY(rep__cur_open(t, REP_DB_MEMBERS, &c));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(c, &k, &v)) {
        rep__entry_t e;
        if ((rc = rep__entry_decode(v.p, v.n, &e)) < 0)
            break;
        if (k.n != 8 || rep__get_be64(k.p) != e.seq || e.seq != tr->count + 1) {
            rc = REP_ECORRUPT;
            break;
        }
        if ((rc = fold(tr, &e, v.p, v.n)) < 0)
            break;
    }
    rep__cur_close(&c);
    if (rc == REP_ENOTFOUND && (rc = rep__cur_open(t, REP_DB_KEYS, &c)) == 0) {
        for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(c, &k, &v)) {
            if (k.n != 4 || v.n != REP_KEY_BYTES) {
                rc = REP_ECORRUPT;
                break;
            }
            if ((rc = take_key(tr, rep__get_be32(k.p), v.p)) < 0)
                break;
        }
        rep__cur_close(&c);
    }
    if (rc == REP_ENOTFOUND) {
        tr->removals = 0; /* counts those taken from now on */
        return 0;
    }
    rep__trust_clear(tr);
    return rc;
}

/* ---- Growing the log ---- */

static bool
is_admin(const rep__trust_t *tr, const uint8_t pk[REP_SIGN_PK_BYTES])
{
    const rep__dev_t *d = rep__trust_member(tr, pk);
    return d && !d->removed && strcmp(d->role, "admin") == 0;
}

bool
rep__dev_is_relay(const rep__dev_t *d)
{
    return d && strcmp(d->role, "relay") == 0;
}

bool
rep__trust_relay(const rep__trust_t *tr)
{
    return tr->has_self && rep__dev_is_relay(rep__trust_member(tr, tr->self_pk));
}

/* Does m get the office key of a new epoch when device is removed? Every remaining member
 * but a relay, which never holds an office key. */
static bool
keyed(const rep__dev_t *m, const uint8_t device[REP_SIGN_PK_BYTES])
{
    return !m->removed && !rep__dev_is_relay(m) && memcmp(m->pk, device, REP_SIGN_PK_BYTES) != 0;
}

/* The members a REMOVE of device boxes the new key to. */
static size_t
remaining(const rep__trust_t *tr, const uint8_t device[REP_SIGN_PK_BYTES])
{
    size_t n = 0;
    for (size_t i = 0; i < tr->ndevs; i++)
        n += keyed(&tr->devs[i], device);
    return n;
}

/* A REMOVE: by an admin other than the device, of a member, to the next epoch, with a box
 * for each remaining member exactly. */
static int
check_remove(const rep__trust_t *tr, const rep__entry_t *e)
{
    const rep__dev_t *d = rep__trust_member(tr, e->device);
    if (!d || d->removed || e->epoch != tr->epoch + 1 ||
        memcmp(e->signer, e->device, REP_SIGN_PK_BYTES) == 0)
        return REP_ECORRUPT;
    if (!is_admin(tr, e->signer))
        return REP_EAUTH;
    if (e->nboxes != remaining(tr, e->device))
        return REP_ECORRUPT;
    for (size_t i = 0; i < e->nboxes; i++) {
        uint8_t pk[REP_SIGN_PK_BYTES], box[REP_KEY_BOX_BYTES], other[REP_SIGN_PK_BYTES];
        REP_TRY(rep__entry_box(e, i, pk, box));
        const rep__dev_t *m = rep__trust_member(tr, pk);
        if (!m || !keyed(m, e->device))
            return REP_ECORRUPT;
        for (size_t j = 0; j < i; j++) /* each once */
            if (rep__entry_box(e, j, other, box) == 0 && memcmp(other, pk, sizeof pk) == 0)
                return REP_ECORRUPT;
    }
    return 0;
}

/* Check e (decoded from [p, p+n)) as the next entry of tr. */
static int
check_next(const rep__trust_t *tr, const rep__entry_t *e)
{
    if (memcmp(e->office, tr->office, sizeof e->office) != 0)
        return REP_EOFFICE;
    if (e->epoch < tr->epoch)
        return REP_ECORRUPT;
    if (memcmp(e->prev, tr->head, sizeof e->prev) != 0)
        return REP_EFORK;
    if (e->type == REP_ENTRY_REMOVE)
        return check_remove(tr, e);
    if (rep__trust_member(tr, e->device))
        return REP_ECORRUPT;
    if (e->seq == 1) /* the genesis: the founding admin adds itself */
        return memcmp(e->signer, e->device, sizeof e->signer) == 0 &&
                       e->rolen == 5 && memcmp(e->role, "admin", 5) == 0
                   ? 0
                   : REP_EAUTH;
    return is_admin(tr, e->signer) ? 0 : REP_EAUTH;
}

static int
store_entry(rep__trust_t *tr, rep__txn_t *t, const rep__entry_t *e, const uint8_t *p, size_t n)
{
    uint8_t k[8];
    rep__put_be64(k, e->seq);
    if (t)
        REP_TRY(rep__txn_put(t, REP_DB_MEMBERS, k, sizeof k, p, n));
    return fold(tr, e, p, n);
}

/* The new epoch's key, if the REMOVE boxed one to this device (stored with t). */
static int
take_boxed_key(rep__trust_t *tr, rep__txn_t *t, const rep__entry_t *e)
{
    if (!tr->has_self)
        return 0;
    for (size_t i = 0; i < e->nboxes; i++) {
        uint8_t pk[REP_SIGN_PK_BYTES], box[REP_KEY_BOX_BYTES], key[REP_KEY_BYTES];
        REP_TRY(rep__entry_box(e, i, pk, box));
        if (memcmp(pk, tr->self_pk, sizeof pk) != 0)
            continue;
        const rep__dev_t *signer = rep__trust_member(tr, e->signer);
        int rc = rep__unbox_key(key, box, signer->curve, tr->self_csk);
        if (rc == 0) /* without a transaction (checking only): in memory */
            rc = t ? rep__trust_put_key(tr, t, e->epoch, key) : take_key(tr, e->epoch, key);
        rep__wipe(key, sizeof key);
        return rc; /* REP_EAUTH: a box this device cannot open is a bad entry */
    }
    return 0;
}

int
rep__trust_accept(rep__trust_t *tr, rep__txn_t *t, const uint8_t *p, size_t n)
{
    rep__entry_t e;
    REP_TRY(rep__entry_decode(p, n, &e));
    if (memcmp(e.office, tr->office, sizeof e.office) != 0)
        return REP_EOFFICE;
    if (e.seq > tr->count + 1)
        return REP_ESTATE;
    if (e.seq <= tr->count) { /* have it? */
        if (!t)
            return 0;
        uint8_t k[8], mine[REP_HASH_BYTES], theirs[REP_HASH_BYTES];
        rep__slice_t v;
        rep__put_be64(k, e.seq);
        REP_TRY(rep__txn_get(t, REP_DB_MEMBERS, k, sizeof k, &v));
        rep__hash(mine, v.p, v.n);
        rep__hash(theirs, p, n);
        return memcmp(mine, theirs, sizeof mine) == 0 ? 0 : REP_EFORK;
    }
    REP_TRY(check_next(tr, &e));
    REP_TRY(rep__verify(e.sig, p, e.signed_len, e.signer));
    REP_TRY(store_entry(tr, t, &e, p, n));
    if (e.type == REP_ENTRY_REMOVE)
        REP_TRY(take_boxed_key(tr, t, &e));
    return 1;
}

int
rep__trust_accept_all(rep__trust_t *tr, rep__txn_t *t, const rep__bytes_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = rep__trust_accept(tr, t, e[i].p, e[i].n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Start the next entry: everything up to and including name. */
static void
entry_head(const rep__trust_t *tr, rep__buf_t *b, msgpack_packer *pk, int type, uint32_t epoch,
           const uint8_t device[REP_SIGN_PK_BYTES], const uint8_t curve[32], const char *name)
{
    rep__buf_init(b);
    rep__packer_init(pk, b);
    msgpack_pack_array(pk, 13);
    msgpack_pack_uint8(pk, REP_ENTRY_VERSION);
    pack_bin(pk, tr->office, sizeof tr->office);
    msgpack_pack_uint64(pk, tr->count + 1);
    pack_bin(pk, tr->head, sizeof tr->head);
    msgpack_pack_uint8(pk, (uint8_t)type);
    msgpack_pack_uint32(pk, epoch);
    pack_bin(pk, device, REP_SIGN_PK_BYTES);
    pack_bin(pk, curve, 32);
    size_t namen = strlen(name);
    msgpack_pack_str(pk, namen);
    msgpack_pack_str_body(pk, name, namen);
}

/* Finish an entry (signer, signature) and take it as any entry that arrives. */
static int
sign_and_take(rep__trust_t *tr, rep__txn_t *t, rep__buf_t *b, const uint8_t pk[REP_SIGN_PK_BYTES],
              const uint8_t sk[REP_SIGN_SK_BYTES])
{
    msgpack_packer pk_;
    rep__packer_init(&pk_, b);
    pack_bin(&pk_, pk, REP_SIGN_PK_BYTES);
    uint8_t sig[REP_SIG_BYTES];
    if (b->err == 0)
        rep__sign(sig, b->p, b->len, sk);
    pack_bin(&pk_, sig, sizeof sig);
    int rc = b->err;
    if (rc == 0)
        rc = rep__trust_accept(tr, t, b->p, b->len);
    rep__buf_free(b);
    return rc < 0 ? rc : 0;
}

int
rep__trust_add(rep__trust_t *tr, rep__txn_t *t, const uint8_t pk[REP_SIGN_PK_BYTES],
               const uint8_t sk[REP_SIGN_SK_BYTES], const uint8_t device[REP_SIGN_PK_BYTES],
               const char *name, const char *role)
{
    size_t namen = name ? strlen(name) : 0, rolen = role ? strlen(role) : 0;
    if (rep__name_check(name, namen, REP_MAX_DEVICE_NAME, false) != 0 || !role_valid(role, rolen))
        return -EINVAL;
    if (rep__trust_member(tr, device))
        return REP_EEXIST;
    for (size_t i = 0; i < tr->ndevs; i++) /* staff tell members apart by name */
        if (!tr->devs[i].removed && strcmp(tr->devs[i].name, name) == 0)
            return REP_EEXIST;
    if (tr->count > 0 ? !is_admin(tr, pk) : memcmp(pk, device, REP_SIGN_PK_BYTES) != 0)
        return -EPERM;
    uint8_t curve[32];
    REP_TRY(rep__sign_to_curve(device, NULL, curve, NULL));
    rep__buf_t b;
    msgpack_packer pk_;
    entry_head(tr, &b, &pk_, REP_ENTRY_ADD, tr->epoch ? tr->epoch : 1, device, curve, name);
    msgpack_pack_str(&pk_, rolen);
    msgpack_pack_str_body(&pk_, role, rolen);
    msgpack_pack_nil(&pk_);
    return sign_and_take(tr, t, &b, pk, sk);
}

int
rep__trust_remove(rep__trust_t *tr, rep__txn_t *t, const uint8_t pk[REP_SIGN_PK_BYTES],
                  const uint8_t sk[REP_SIGN_SK_BYTES], const uint8_t device[REP_SIGN_PK_BYTES],
                  const rep__cutoff_t *cuts, size_t ncuts)
{
    const rep__dev_t *d = rep__trust_member(tr, device);
    if (!is_admin(tr, pk))
        return -EPERM;
    if (!d || d->removed)
        return REP_ENOTFOUND;
    if (memcmp(pk, device, REP_SIGN_PK_BYTES) == 0 || ncuts > REP_MAX_CUTOFFS)
        return -EINVAL;
    uint8_t key[REP_KEY_BYTES], csk[32];
    rep__random(key, sizeof key);
    REP_TRY(rep__sign_to_curve(NULL, sk, NULL, csk));
    rep__buf_t b;
    msgpack_packer pk_;
    entry_head(tr, &b, &pk_, REP_ENTRY_REMOVE, tr->epoch + 1, device, d->curve, d->name);
    size_t rolen = strlen(d->role);
    msgpack_pack_str(&pk_, rolen);
    msgpack_pack_str_body(&pk_, d->role, rolen);
    msgpack_pack_array(&pk_, 2);
    msgpack_pack_array(&pk_, ncuts);
    for (size_t i = 0; i < ncuts; i++) {
        msgpack_pack_array(&pk_, 4);
        msgpack_pack_uint64(&pk_, cuts[i].actor);
        msgpack_pack_uint32(&pk_, cuts[i].inc);
        msgpack_pack_uint64(&pk_, cuts[i].seq);
        pack_bin(&pk_, cuts[i].hash, REP_HASH_BYTES);
    }
    msgpack_pack_array(&pk_, remaining(tr, device));
    for (size_t i = 0; i < tr->ndevs; i++) {
        const rep__dev_t *m = &tr->devs[i];
        if (!keyed(m, device))
            continue;
        uint8_t box[REP_KEY_BOX_BYTES];
        rep__box_key(box, key, m->curve, csk);
        msgpack_pack_array(&pk_, 2);
        pack_bin(&pk_, m->pk, REP_SIGN_PK_BYTES);
        pack_bin(&pk_, box, sizeof box);
    }
    uint32_t epoch = tr->epoch + 1;
    int rc = sign_and_take(tr, t, &b, pk, sk);
    if (rc == 0) /* boxed to this device too when it is in the log; stored either way */
        rc = rep__trust_put_key(tr, t, epoch, key);
    rep__wipe(key, sizeof key);
    rep__wipe(csk, sizeof csk);
    return rc;
}

int
rep__trust_cut(const rep__dev_t *author, uint64_t actor, uint64_t seq,
               const uint8_t hash[REP_HASH_BYTES])
{
    if (!author || !author->removed)
        return 0;
    for (size_t i = 0; i < author->ncuts; i++)
        if (author->cuts[i].actor == actor)
            return seq > author->cuts[i].seq ||
                   (seq == author->cuts[i].seq &&
                    memcmp(hash, author->cuts[i].hash, REP_HASH_BYTES) != 0);
    return 1; /* an actor of it the admin had nothing of */
}

uint64_t
rep__trust_cap(const rep__trust_t *tr, uint64_t actor, uint64_t seq)
{
    if (!tr->any_removed)
        return seq;
    for (size_t d = 0; d < tr->ndevs; d++) {
        const rep__dev_t *dev = &tr->devs[d];
        for (size_t i = 0; dev->removed && i < dev->ncuts; i++)
            if (dev->cuts[i].actor == actor)
                return seq < dev->cuts[i].seq ? seq : dev->cuts[i].seq;
    }
    return seq;
}

int
rep__trust_put_key(rep__trust_t *tr, rep__txn_t *t, uint32_t epoch, const uint8_t key[REP_KEY_BYTES])
{
    uint8_t k[4];
    rep__put_be32(k, epoch);
    REP_TRY(rep__txn_put(t, REP_DB_KEYS, k, sizeof k, key, REP_KEY_BYTES));
    return take_key(tr, epoch, key);
}

/* ---- Sending ---- */
int
rep__trust_pack_entries(rep__txn_t *t, uint64_t after, uint64_t count, rep__buf_t *b)
{
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, after < count ? count - after : 0);
    for (uint64_t s = after + 1; s <= count; s++) {
        uint8_t k[8];
        rep__slice_t v;
        rep__put_be64(k, s);
        REP_TRY(rep__txn_get(t, REP_DB_MEMBERS, k, sizeof k, &v));
        pack_bin(&pk, v.p, v.n);
    }
    return b->err;
}

int
rep__trust_pack_keys(rep__txn_t *t, rep__buf_t *b)
{
    uint64_t n;
    REP_TRY(rep__txn_count(t, REP_DB_KEYS, &n));
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, n);
    rep__cur_t *c;
    REP_TRY(rep__cur_open(t, REP_DB_KEYS, &c));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(c, &k, &v)) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint32(&pk, rep__get_be32(k.p));
        pack_bin(&pk, v.p, v.n);
    }
    rep__cur_close(&c);
    return rc == REP_ENOTFOUND ? b->err : rc;
}

/* ---- Looking up ---- */
const rep__dev_t *
rep__trust_author(rep__trust_t *tr, uint64_t actor, uint32_t inc)
{
    for (size_t i = 0; i < tr->nauthors; i++)
        if (tr->authors[i].actor == actor && tr->authors[i].inc == inc)
            return &tr->devs[tr->authors[i].dev];
    for (size_t d = 0; d < tr->ndevs; d++) {
        if (rep__actor_derive(tr->devs[d].pk, inc) != actor)
            continue;
        if (tr->nauthors == tr->authors_cap) { /* remember it; if that fails, look again later */
            size_t cap = tr->authors_cap ? tr->authors_cap * 2 : 8;
            struct rep__author *a = realloc(tr->authors, cap * sizeof *a);
            if (!a)
                return &tr->devs[d];
            tr->authors = a;
            tr->authors_cap = cap;
        }
        tr->authors[tr->nauthors++] = (struct rep__author){actor, inc, d};
        return &tr->devs[d];
    }
    return NULL;
}

int
rep__trust_inc_of(const uint8_t pk[REP_SIGN_PK_BYTES], uint64_t actor, uint32_t *inc)
{
    for (uint32_t i = 0; i < REP_MAX_CUTOFFS; i++)
        if (rep__actor_derive(pk, i) == actor) {
            *inc = i;
            return 1;
        }
    return 0;
}

const uint8_t *
rep__trust_key(const rep__trust_t *tr, uint32_t epoch, int subkey)
{
    for (size_t i = 0; i < tr->nkeys; i++)
        if (tr->keys[i].epoch == epoch)
            return subkey == REP_SUBKEY_CHANGE     ? tr->keys[i].change
                   : subkey == REP_SUBKEY_SNAPSHOT ? tr->keys[i].snapshot
                                                   : tr->keys[i].beacon;
    return NULL;
}

/* ---- Provisioning ---- */
static const char provision_magic[4] = {'R', 'P', 'L', 'P'};

static void
provision_head(rep__buf_t *b, const uint8_t office[REP_OFFICE_ID_BYTES], const char *name,
               size_t namen, const uint8_t pk[REP_SIGN_PK_BYTES], const uint8_t *sk)
{
    rep__frame_begin(b, provision_magic);
    msgpack_packer pk_;
    rep__packer_init(&pk_, b);
    msgpack_pack_array(&pk_, 6);
    pack_bin(&pk_, office, REP_OFFICE_ID_BYTES);
    msgpack_pack_str(&pk_, namen);
    msgpack_pack_str_body(&pk_, name, namen);
    pack_bin(&pk_, pk, REP_SIGN_PK_BYTES);
    if (sk)
        pack_bin(&pk_, sk, REP_SIGN_SK_BYTES);
    else
        msgpack_pack_nil(&pk_);
}

/* Frame end, wiping the secret copy the buffer held. */
static int
provision_end(rep__buf_t *b, int rc, uint8_t **out, size_t *len)
{
    if (rc < 0) {
        if (b->p)
            rep__wipe(b->p, b->len);
        rep__buf_free(b);
        return rc;
    }
    return rep__frame_end(b, false, out, len);
}

int
rep__provision_write(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES],
                     const char *office_name, const uint8_t pk[REP_SIGN_PK_BYTES],
                     const uint8_t sk[REP_SIGN_SK_BYTES], uint8_t **out, size_t *len)
{
    rep__buf_t b;
    uint64_t count;
    rep__buf_init(&b);
    provision_head(&b, office, office_name, strlen(office_name), pk, sk);
    rep__trust_t tr;
    int rc = rep__trust_load(t, office, &tr);
    bool relay = rc == 0 && rep__dev_is_relay(rep__trust_member(&tr, pk));
    rep__trust_clear(&tr);
    if (rc == 0)
        rc = rep__txn_count(t, REP_DB_MEMBERS, &count);
    if (rc == 0)
        rc = rep__trust_pack_entries(t, 0, count, &b);
    if (rc == 0 && relay) {
        msgpack_packer mp;
        rep__packer_init(&mp, &b);
        msgpack_pack_array(&mp, 0); /* a relay carries changes blind */
    } else if (rc == 0) {
        rc = rep__trust_pack_keys(t, &b);
    }
    return provision_end(&b, rc, out, len);
}

int
rep__provision_encode(const rep__provision_t *p, uint8_t **out, size_t *len)
{
    rep__buf_t b;
    rep__buf_init(&b);
    provision_head(&b, p->office, p->office_name, p->office_namen, p->pk, p->has_sk ? p->sk : NULL);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, p->nentries);
    for (size_t i = 0; i < p->nentries; i++)
        pack_bin(&pk, p->entries[i].p, p->entries[i].n);
    msgpack_pack_array(&pk, p->nkeys);
    for (size_t i = 0; i < p->nkeys; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint32(&pk, p->keys[i].epoch);
        pack_bin(&pk, p->keys[i].key, REP_KEY_BYTES);
    }
    return provision_end(&b, b.err, out, len);
}

void
rep__provision_clear(rep__provision_t *p)
{
    free(p->entries);
    if (p->keys)
        rep__wipe(p->keys, p->nkeys * sizeof *p->keys);
    free(p->keys);
    rep__wipe(p, sizeof *p);
}

static int
provision_keys(rep__rd_t *r, rep__provision_t *p)
{
    uint32_t n;
    REP_TRY(rep__rd_array(r, &n));
    if (n == 0)
        return 0; /* a relay (rep__provision_apply checks the role) */
    if (!(p->keys = calloc(n, sizeof *p->keys)))
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t two;
        uint64_t epoch;
        REP_TRY(rep__rd_array(r, &two));
        if (two != 2)
            return REP_ECORRUPT;
        REP_TRY(rep__rd_uint(r, &epoch));
        if (epoch == 0 || epoch > UINT32_MAX || (i > 0 && epoch <= p->keys[i - 1].epoch))
            return REP_ECORRUPT;
        p->keys[i].epoch = (uint32_t)epoch;
        REP_TRY(rep__rd_fixed(r, p->keys[i].key, REP_KEY_BYTES));
        p->nkeys++;
    }
    return 0;
}

int
rep__provision_decode(const uint8_t *b, size_t n, rep__provision_t *p)
{
    memset(p, 0, sizeof *p);
    const uint8_t *body;
    size_t bodyn;
    uint8_t *owned; /* stays NULL: never compressed */
    REP_TRY(rep__frame_open(b, n, provision_magic, 0, &body, &bodyn, &owned));
    rep__rd_t r;
    rep__rd_init(&r, body, bodyn);
    uint32_t six;
    int rc = rep__rd_array(&r, &six);
    if (rc == 0 && six != 6)
        rc = REP_ECORRUPT;
    if (rc == 0)
        rc = rep__rd_fixed(&r, p->office, REP_OFFICE_ID_BYTES);
    if (rc == 0)
        rc = rep__rd_name(&r, &p->office_name, &p->office_namen, REP_MAX_USER, false);
    if (rc == 0)
        rc = rep__rd_fixed(&r, p->pk, REP_SIGN_PK_BYTES);
    if (rc == 0 && rep__rd_is_nil(&r) == 1)
        rc = rep__rd_nil(&r);
    else if (rc == 0 && (rc = rep__rd_fixed(&r, p->sk, REP_SIGN_SK_BYTES)) == 0)
        p->has_sk = true;
    if (rc == 0)
        rc = rep__rd_bins(&r, &p->entries, &p->nentries);
    if (rc == 0 && p->nentries == 0)
        rc = REP_ECORRUPT;
    if (rc == 0)
        rc = provision_keys(&r, p);
    if (rc == 0 && rep__rd_left(&r) != 0)
        rc = REP_ECORRUPT;
    return rc;
}

int
rep__provision_apply(const rep__provision_t *p, rep__trust_t *tr, rep__txn_t *t, const char **name)
{
    REP_TRY(rep__trust_accept_all(tr, t, p->entries, p->nentries));
    const rep__dev_t *me = rep__trust_member(tr, p->pk);
    if (!me)
        return REP_EAUTH;
    *name = me->name;
    if (rep__dev_is_relay(me)) /* keys in a relay's provisioning: not one an admin made */
        return p->nkeys ? REP_ECORRUPT : 0;
    for (size_t i = 0; i < p->nkeys; i++)
        REP_TRY(rep__trust_put_key(tr, t, p->keys[i].epoch, p->keys[i].key));
    if (!rep__trust_key(tr, tr->epoch, REP_SUBKEY_CHANGE))
        return REP_EKEY; /* (a member has at least the key it was enrolled under) */
    return 0;
}
