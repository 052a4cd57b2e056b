/* trust.c — the membership log and the office keys. See trust.h. */
#include "trust.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "change.h"
#include "crdt.h"

static const char kdf_ctx[8] = {'r', 'e', 'p', 'l', 'i', 'c', 'a', '_'};

/* ---- Entries ---- */
static bool
role_valid(const char *s, size_t n)
{
    return (n == 5 && memcmp(s, "admin", 5) == 0) || (n == 6 && memcmp(s, "member", 6) == 0);
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
    if (count != 12)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_fixed(&r, e->office, sizeof e->office));
    REP_TRY(rep__rd_uint(&r, &e->seq));
    REP_TRY(rep__rd_fixed(&r, e->prev, sizeof e->prev));
    REP_TRY(rep__rd_uint(&r, &type));
    REP_TRY(rep__rd_uint(&r, &epoch));
    if (type != REP_ENTRY_ADD)
        return type > REP_ENTRY_ADD && type < 256 ? REP_EVERSION : REP_ECORRUPT;
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
    REP_TRY(rep__rd_fixed(&r, e->signer, sizeof e->signer));
    e->signed_len = n - rep__rd_left(&r);
    REP_TRY(rep__rd_fixed(&r, e->sig, sizeof e->sig));
    return rep__rd_left(&r) == 0 ? 0 : REP_ECORRUPT;
}

/* ---- Loading ---- */
void
rep__trust_clear(rep__trust_t *tr)
{
    free(tr->devs);
    if (tr->keys)
        rep__wipe(tr->keys, tr->nkeys * sizeof *tr->keys);
    free(tr->keys);
    free(tr->authors);
    memset(tr, 0, sizeof *tr);
}

const rep__dev_t *
rep__trust_member(const rep__trust_t *tr, const uint8_t pk[REP_SIGN_PK_BYTES])
{
    for (size_t i = 0; i < tr->ndevs; i++)
        if (memcmp(tr->devs[i].pk, pk, REP_SIGN_PK_BYTES) == 0)
            return &tr->devs[i];
    return NULL;
}

/* Fold a checked entry into tr. */
static int
fold(rep__trust_t *tr, const rep__entry_t *e, const uint8_t *p, size_t n)
{
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
    return 0;
}

int
rep__trust_load(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES], rep__trust_t *tr)
{
    memset(tr, 0, sizeof *tr);
    memcpy(tr->office, office, sizeof tr->office);
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
    if (rc == REP_ENOTFOUND)
        return 0;
    rep__trust_clear(tr);
    return rc;
}

/* ---- Growing the log ---- */

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
    if (rep__trust_member(tr, e->device))
        return REP_ECORRUPT;
    if (e->seq == 1) /* the genesis: the founding admin adds itself */
        return memcmp(e->signer, e->device, sizeof e->signer) == 0 &&
                       e->rolen == 5 && memcmp(e->role, "admin", 5) == 0
                   ? 0
                   : REP_EAUTH;
    const rep__dev_t *s = rep__trust_member(tr, e->signer);
    return s && strcmp(s->role, "admin") == 0 ? 0 : REP_EAUTH;
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

static void
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
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
    for (size_t i = 0; i < tr->ndevs; i++) /* staff tell devices apart by name */
        if (strcmp(tr->devs[i].name, name) == 0)
            return REP_EEXIST;
    const rep__dev_t *s = rep__trust_member(tr, pk);
    if (tr->count > 0 ? !s || strcmp(s->role, "admin") != 0 : memcmp(pk, device, REP_SIGN_PK_BYTES) != 0)
        return -EPERM;
    uint8_t curve[32];
    REP_TRY(rep__sign_to_curve(device, NULL, curve, NULL));
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk_;
    rep__packer_init(&pk_, &b);
    msgpack_pack_array(&pk_, 12);
    msgpack_pack_uint8(&pk_, REP_ENTRY_VERSION);
    pack_bin(&pk_, tr->office, sizeof tr->office);
    msgpack_pack_uint64(&pk_, tr->count + 1);
    pack_bin(&pk_, tr->head, sizeof tr->head);
    msgpack_pack_uint8(&pk_, REP_ENTRY_ADD);
    msgpack_pack_uint32(&pk_, tr->epoch ? tr->epoch : 1);
    pack_bin(&pk_, device, REP_SIGN_PK_BYTES);
    pack_bin(&pk_, curve, sizeof curve);
    msgpack_pack_str(&pk_, namen);
    msgpack_pack_str_body(&pk_, name, namen);
    msgpack_pack_str(&pk_, rolen);
    msgpack_pack_str_body(&pk_, role, rolen);
    pack_bin(&pk_, pk, REP_SIGN_PK_BYTES);
    uint8_t sig[REP_SIG_BYTES];
    if (b.err == 0)
        rep__sign(sig, b.p, b.len, sk);
    pack_bin(&pk_, sig, sizeof sig);
    int rc = b.err;
    if (rc == 0) /* through the same path as an entry that arrives */
        rc = rep__trust_accept(tr, t, b.p, b.len);
    rep__buf_free(&b);
    return rc < 0 ? rc : 0;
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

const uint8_t *
rep__trust_key(const rep__trust_t *tr, uint32_t epoch, int subkey)
{
    for (size_t i = 0; i < tr->nkeys; i++)
        if (tr->keys[i].epoch == epoch)
            return subkey == REP_SUBKEY_CHANGE ? tr->keys[i].change : tr->keys[i].snapshot;
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
    int rc = rep__txn_count(t, REP_DB_MEMBERS, &count);
    if (rc == 0)
        rc = rep__trust_pack_entries(t, 0, count, &b);
    if (rc == 0)
        rc = rep__trust_pack_keys(t, &b);
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
        return REP_ECORRUPT; /* a member has at least the key it was enrolled under */
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
    for (size_t i = 0; i < p->nkeys; i++)
        REP_TRY(rep__trust_put_key(tr, t, p->keys[i].epoch, p->keys[i].key));
    if (!rep__trust_key(tr, tr->epoch, REP_SUBKEY_CHANGE))
        return REP_EKEY;
    *name = me->name;
    return 0;
}
