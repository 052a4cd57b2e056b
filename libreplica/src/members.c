/* members.c — the office's enrolled devices. See members.h. */
#include "members.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "common.h"
#include "facade.h"
#include "trust.h"

/* ---- This device ---- */
typedef struct self_keys {
    uint8_t pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES];
} self_keys_t;

static int
self_keys_fn(rep__txn_t *t, void *arg)
{
    self_keys_t *k = arg;
    REP_TRY(rep__meta_get_fixed(t, REP_META_SIGN_PK, k->pk, sizeof k->pk));
    return rep__meta_get_fixed(t, REP_META_SIGN_SK, k->sk, sizeof k->sk);
}

int
rep__device_keys(rep_replica_t *r, uint8_t sign_pk[REP_SIGN_PK_BYTES],
                 uint8_t curve_pk[REP_CURVE_BYTES], uint8_t curve_sk[REP_CURVE_BYTES])
{
    self_keys_t k;
    int rc = rep__store_read(r->st, self_keys_fn, &k);
    if (rc == 0) {
        if (sign_pk)
            memcpy(sign_pk, k.pk, sizeof k.pk);
        rc = rep__sign_to_curve(k.pk, curve_sk ? k.sk : NULL, curve_pk, curve_sk);
    }
    rep__wipe(&k, sizeof k);
    return rc;
}

/* ---- Reading the list ---- */
static int
trust_fn(rep__txn_t *t, void *arg)
{
    rep__trust_t *tr = arg;
    uint8_t office[REP_OFFICE_ID_BYTES];
    REP_TRY(rep__meta_get_fixed(t, REP_META_OFFICE, office, sizeof office));
    return rep__trust_load(t, office, tr);
}

/* The endpoints of a device's record (none when it has no record). */
static int
endpoints_of(rep_replica_t *r, const char *id, rep__member_t *m)
{
    char key[sizeof REP_DEVICES + REP_DEVICE_ID_CHARS + 1];
    snprintf(key, sizeof key, REP_DEVICES "/%s", id);
    rep_record_t *rec;
    int rc = rep_replica_get_record(r, key, &rec);
    if (rc == REP_ENOTFOUND)
        return 0;
    REP_TRY(rc);
    const rep_field_t *eps = NULL;
    for (size_t i = 0; i < rec->nfields; i++)
        if (rec->fields[i].kind == REP_KIND_SET && strcmp(rec->fields[i].name, "endpoints") == 0)
            eps = &rec->fields[i];
    size_t n = eps ? eps->nitems : 0;
    if (n && !(m->endpoints = calloc(n, sizeof *m->endpoints)))
        rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const rep_value_t *v = &eps->items[i].value;
        if (v->type != REP_STRING || rep__endpoint_check(v->u.s.ptr) < 0)
            continue;
        if (!(m->endpoints[m->nendpoints] = strdup(v->u.s.ptr)))
            rc = -ENOMEM;
        else
            m->nendpoints++;
    }
    rep_record_free(&rec);
    return rc;
}

static void
member_clear(rep__member_t *m)
{
    free(m->name);
    free(m->role);
    for (size_t i = 0; i < m->nendpoints; i++)
        free(m->endpoints[i]);
    free(m->endpoints);
}

static int
cmp_member(const void *a, const void *b)
{
    return strcmp(((const rep__member_t *)a)->id, ((const rep__member_t *)b)->id);
}

int
rep__members_list(rep_replica_t *r, rep__member_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    rep__trust_t tr;
    REP_TRY(rep__store_read(r->st, trust_fn, &tr));
    rep__member_t *m = tr.ndevs ? calloc(tr.ndevs, sizeof *m) : NULL;
    int rc = tr.ndevs && !m ? -ENOMEM : 0;
    size_t k = 0;
    for (size_t i = 0; i < tr.ndevs && rc == 0; i++) {
        const rep__dev_t *d = &tr.devs[i];
        if (d->removed)
            continue; /* revoked: no longer a member */
        rep__hex(m[k].id, d->pk, sizeof d->pk);
        memcpy(m[k].sign_pk, d->pk, sizeof d->pk);
        memcpy(m[k].curve_pk, d->curve, sizeof d->curve);
        if (!(m[k].name = strdup(d->name)) || !(m[k].role = strdup(d->role)))
            rc = -ENOMEM;
        else
            rc = endpoints_of(r, m[k].id, &m[k]);
        k++;
    }
    rep__trust_clear(&tr);
    if (rc < 0) {
        rep__members_free(&m, k);
        return rc;
    }
    qsort(m, k, sizeof *m, cmp_member);
    *out = m;
    *n = k;
    return 0;
}

int
rep__members_beacon_keys(rep_replica_t *r, uint32_t *epoch, rep__beacon_key_t **keys, size_t *n)
{
    *keys = NULL;
    *n = 0;
    rep__trust_t tr;
    REP_TRY(rep__store_read(r->st, trust_fn, &tr));
    int rc = 0;
    *epoch = tr.epoch;
    if (tr.nkeys && !(*keys = calloc(tr.nkeys, sizeof **keys)))
        rc = -ENOMEM;
    for (size_t i = 0; i < tr.nkeys && rc == 0; i++) {
        (*keys)[i].epoch = tr.keys[i].epoch;
        memcpy((*keys)[i].key, rep__trust_key(&tr, tr.keys[i].epoch, REP_SUBKEY_BEACON),
               REP_KEY_BYTES);
        (*n)++;
    }
    rep__trust_clear(&tr);
    return rc;
}

void
rep__members_free(rep__member_t **mp, size_t n)
{
    if (!mp || !*mp)
        return;
    for (size_t i = 0; i < n; i++)
        member_clear(&(*mp)[i]);
    free(*mp);
    *mp = NULL;
}

int
rep__member_role(rep_replica_t *r, char **role)
{
    if (role)
        *role = NULL;
    uint8_t pk[REP_SIGN_PK_BYTES];
    REP_TRY(rep__device_keys(r, pk, NULL, NULL));
    rep__trust_t tr;
    REP_TRY(rep__store_read(r->st, trust_fn, &tr));
    const rep__dev_t *me = rep__trust_member(&tr, pk);
    int rc = !me || me->removed ? 0 : !role || (*role = strdup(me->role)) ? 1 : -ENOMEM;
    rep__trust_clear(&tr);
    return rc;
}

/* ---- The public face: rep_replica_devices, rep_replica_announce ---- */

/* "tcp://HOST:PORT": printable, no spaces, bounded. */
int
rep__endpoint_check(const char *ep)
{
    size_t n = ep ? strlen(ep) : 0;
    if (n <= 6 || n > REP_MAX_ENDPOINT || strncmp(ep, "tcp://", 6) != 0 || !strchr(ep + 6, ':'))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ep[i] <= ' ' || (unsigned char)ep[i] >= 0x7f)
            return -EINVAL;
    return 0;
}

int
rep_replica_devices(rep_replica_t *r, rep_devices_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    uint8_t self[REP_SIGN_PK_BYTES];
    REP_TRY(rep__device_keys(r, self, NULL, NULL));
    rep__member_t *m;
    size_t n;
    REP_TRY(rep__members_list(r, &m, &n));
    /* one allocation for the list, then each device's strings: freed by rep_devices_free */
    rep_devices_t *d = calloc(1, sizeof *d);
    int rc = -ENOMEM;
    if (!d || (n && !(d->items = calloc(n, sizeof *d->items))))
        goto done;
    for (size_t i = 0; i < n; i++, d->n++) {
        rep_device_t *v = &d->items[i];
        memcpy(v->id, m[i].id, sizeof v->id);
        memcpy(v->curve_pk, m[i].curve_pk, sizeof v->curve_pk);
        v->self = memcmp(m[i].sign_pk, self, sizeof self) == 0;
        v->name = m[i].name;
        v->role = m[i].role;
        v->endpoints = (const char **)m[i].endpoints;
        v->nendpoints = m[i].nendpoints;
        m[i].name = m[i].role = NULL; /* moved */
        m[i].endpoints = NULL;
        m[i].nendpoints = 0;
    }
    *out = d;
    d = NULL;
    rc = 0;
done:
    rep__members_free(&m, n);
    rep_devices_free(&d);
    return rc;
}

void
rep_devices_free(rep_devices_t **dp)
{
    if (!dp || !*dp)
        return;
    rep_devices_t *d = *dp;
    for (size_t i = 0; i < d->n; i++) {
        rep_device_t *v = &d->items[i];
        free((char *)v->name);
        free((char *)v->role);
        for (size_t j = 0; j < v->nendpoints; j++)
            free((char *)v->endpoints[j]);
        free(v->endpoints);
    }
    free(d->items);
    free(d);
    *dp = NULL;
}

int
rep_replica_announce(rep_replica_t *r, const char *const *endpoints, size_t nendpoints,
                     int *written)
{
    if (written)
        *written = 0;
    if (!r || (nendpoints && !endpoints))
        return -EINVAL;
    for (size_t i = 0; i < nendpoints; i++)
        REP_TRY(rep__endpoint_check(endpoints[i]));
    uint8_t pk[REP_SIGN_PK_BYTES];
    REP_TRY(rep__device_keys(r, pk, NULL, NULL));
    int member = rep__member_role(r, NULL);
    REP_TRY(member);
    if (!member)
        return -EPERM;
    rep__member_t me = {0};
    rep__hex(me.id, pk, sizeof pk);
    int rc = endpoints_of(r, me.id, &me);
    bool needed = false;
    for (size_t i = 0; i < nendpoints && rc == 0 && !needed; i++) {
        bool found = false;
        for (size_t j = 0; j < me.nendpoints && !found; j++)
            found = strcmp(me.endpoints[j], endpoints[i]) == 0;
        needed = !found;
    }
    member_clear(&me);
    if (rc < 0 || !needed)
        return rc;
    char key[sizeof REP_DEVICES + REP_DEVICE_ID_CHARS + 1];
    snprintf(key, sizeof key, REP_DEVICES "/%s", me.id);
    rep_txn_t *t;
    REP_TRY(rep_txn_begin(r, "", &t));
    for (size_t i = 0; i < nendpoints && rc == 0; i++) {
        rep_value_t ep = {.type = REP_STRING, .u.s = {endpoints[i], strlen(endpoints[i])}};
        rc = rep_txn_add(t, key, "endpoints", &ep);
    }
    if (rc == 0)
        rc = rep_txn_commit(t, NULL);
    rep_txn_free(&t);
    if (rc == 0 && written)
        *written = 1;
    return rc;
}
