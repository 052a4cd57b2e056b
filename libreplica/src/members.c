/* members.c — the office's enrolled devices. See members.h. */
#include "members.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "common.h"
#include "facade.h"

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
static const rep_field_t *
field_of(const rep_record_t *rec, const char *name, rep_kind_t kind)
{
    for (size_t i = 0; i < rec->nfields; i++)
        if (rec->fields[i].kind == kind && strcmp(rec->fields[i].name, name) == 0)
            return &rec->fields[i];
    return NULL;
}

static int
copy_bytes_field(const rep_record_t *rec, const char *name, uint8_t *out, size_t n)
{
    const rep_field_t *f = field_of(rec, name, REP_KIND_REGISTER);
    if (!f || f->value.type != REP_BYTES || f->value.u.s.len != n)
        return -1;
    memcpy(out, f->value.u.s.ptr, n);
    return 0;
}

static char *
copy_string_field(const rep_record_t *rec, const char *name)
{
    const rep_field_t *f = field_of(rec, name, REP_KIND_REGISTER);
    return strdup(f && f->value.type == REP_STRING ? f->value.u.s.ptr : "");
}

/* Fill m from rec: 1 when it is a well-formed device, 0 to skip it, or -ENOMEM. */
static int
member_from(rep__member_t *m, const rep_record_t *rec)
{
    memset(m, 0, sizeof *m);
    const char *id = strchr(rec->key, '/') + 1;
    char hex[REP_DEVICE_ID_CHARS + 1];
    if (copy_bytes_field(rec, "sign_pk", m->sign_pk, sizeof m->sign_pk) < 0 ||
        copy_bytes_field(rec, "curve_pk", m->curve_pk, sizeof m->curve_pk) < 0)
        return 0;
    rep__hex(hex, m->sign_pk, sizeof m->sign_pk);
    if (strcmp(hex, id) != 0)
        return 0; /* the record must be named after its key */
    memcpy(m->id, hex, sizeof m->id);
    const rep_field_t *eps = field_of(rec, "endpoints", REP_KIND_SET);
    size_t n = eps ? eps->nitems : 0;
    if (!(m->name = copy_string_field(rec, "name")) || !(m->role = copy_string_field(rec, "role")) ||
        (n && !(m->endpoints = calloc(n, sizeof *m->endpoints))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const rep_value_t *v = &eps->items[i].value;
        if (v->type != REP_STRING)
            continue;
        if (!(m->endpoints[m->nendpoints] = strdup(v->u.s.ptr)))
            return -ENOMEM;
        m->nendpoints++;
    }
    return 1;
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

int
rep__members_list(rep_replica_t *r, rep__member_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    rep_list_t *l;
    REP_TRY(rep_replica_list(r, REP_DEVICES, NULL, 0, &l));
    rep__member_t *m = l->n ? calloc(l->n, sizeof *m) : NULL;
    int rc = l->n && !m ? -ENOMEM : 0;
    size_t k = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        rc = member_from(&m[k], &l->records[i]);
        if (rc <= 0)
            member_clear(&m[k]);
        else
            k++;
        rc = rc < 0 ? rc : 0;
    }
    rep_list_free(&l);
    if (rc < 0) {
        rep__members_free(&m, k);
        return rc;
    }
    *out = m;
    *n = k;
    return 0;
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

/* ---- Writing ---- */
int
rep__member_write(rep_replica_t *r, const char *name, const char *role,
                  const uint8_t sign_pk[REP_SIGN_PK_BYTES],
                  const uint8_t curve_pk[REP_CURVE_BYTES], const char *const *endpoints,
                  size_t nendpoints)
{
    char key[sizeof REP_DEVICES + REP_DEVICE_ID_CHARS + 1];
    memcpy(key, REP_DEVICES "/", sizeof REP_DEVICES);
    rep__hex(key + sizeof REP_DEVICES, sign_pk, REP_SIGN_PK_BYTES);
    rep_value_t vname = {.type = REP_STRING, .u.s = {name, strlen(name)}};
    rep_value_t vrole = {.type = REP_STRING, .u.s = {role, strlen(role)}};
    rep_value_t vsign = {.type = REP_BYTES, .u.s = {(const char *)sign_pk, REP_SIGN_PK_BYTES}};
    rep_value_t vcurve = {.type = REP_BYTES, .u.s = {(const char *)curve_pk, REP_CURVE_BYTES}};
    rep_txn_t *t;
    REP_TRY(rep_txn_begin(r, "", &t));
    int rc = rep_txn_set(t, key, "name", &vname);
    if (rc == 0)
        rc = rep_txn_set(t, key, "role", &vrole);
    if (rc == 0)
        rc = rep_txn_set(t, key, "sign_pk", &vsign);
    if (rc == 0)
        rc = rep_txn_set(t, key, "curve_pk", &vcurve);
    for (size_t i = 0; i < nendpoints && rc == 0; i++) {
        rep_value_t ep = {.type = REP_STRING, .u.s = {endpoints[i], strlen(endpoints[i])}};
        rc = rep_txn_add(t, key, "endpoints", &ep);
    }
    if (rc == 0)
        rc = rep_txn_commit(t, NULL);
    rep_txn_free(&t);
    return rc;
}

int
rep__member_role(rep_replica_t *r, char **role)
{
    if (role)
        *role = NULL;
    uint8_t pk[REP_SIGN_PK_BYTES];
    REP_TRY(rep__device_keys(r, pk, NULL, NULL));
    rep__member_t *m;
    size_t n;
    REP_TRY(rep__members_list(r, &m, &n));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (memcmp(m[i].sign_pk, pk, sizeof pk) == 0)
            rc = !role || (*role = strdup(m[i].role)) ? 1 : -ENOMEM;
    rep__members_free(&m, n);
    return rc;
}

/* ---- The public face: rep_replica_devices, rep_replica_enroll ---- */

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
rep_replica_enroll(rep_replica_t *r, const char *role, const char *const *endpoints,
                   size_t nendpoints, int *written)
{
    if (written)
        *written = 0;
    if (!r || (role && strcmp(role, "admin") != 0 && strcmp(role, "member") != 0) ||
        (nendpoints && !endpoints))
        return -EINVAL;
    for (size_t i = 0; i < nendpoints; i++)
        REP_TRY(rep__endpoint_check(endpoints[i]));
    uint8_t pk[REP_SIGN_PK_BYTES], cpk[REP_CURVE_BYTES];
    REP_TRY(rep__device_keys(r, pk, cpk, NULL));
    rep__member_t *m;
    size_t n;
    REP_TRY(rep__members_list(r, &m, &n));
    const rep__member_t *me = NULL;
    for (size_t i = 0; i < n; i++)
        if (memcmp(m[i].sign_pk, pk, sizeof pk) == 0)
            me = &m[i];
    const char *name = r->device_name ? r->device_name : "";
    const char *want_role = role ? role : me && *me->role ? me->role : "member";
    bool needed = !me || strcmp(me->name, name) != 0 || strcmp(me->role, want_role) != 0 ||
                  memcmp(me->curve_pk, cpk, sizeof cpk) != 0;
    for (size_t i = 0; i < nendpoints && !needed; i++) {
        bool found = false;
        for (size_t j = 0; j < me->nendpoints && !found; j++)
            found = strcmp(me->endpoints[j], endpoints[i]) == 0;
        needed = !found;
    }
    int rc = 0;
    if (needed) {
        char *keep = strdup(want_role); /* want_role may point into m */
        rc = keep ? rep__member_write(r, name, keep, pk, cpk, endpoints, nendpoints) : -ENOMEM;
        free(keep);
        if (rc == 0 && written)
            *written = 1;
    }
    rep__members_free(&m, n);
    return rc;
}
