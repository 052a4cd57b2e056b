/* enroll.c — enrollment by invitation, on the inviting node's side. See enroll.h. */
#include "enroll.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "facade.h"
#include "invite.h"
#include "keys.h"
#include "members.h"

typedef struct slot {
    uint64_t id;            /* its connection's user id is "invite-ID" */
    uint8_t pk[32];         /* the invitation's one-time CURVE key */
    uint64_t expires_ms;
    bool used;
    bool relay;             /* it enrolls a relay */
} slot_t;

struct rep__enroll {
    rep_replica_t *r;
    char *listen;
    slot_t *v;
    size_t n;
    uint64_t last_id;
};

int
rep__enroll_new(rep_replica_t *r, const char *listen, rep__enroll_t **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out || (listen && !((*out)->listen = strdup(listen)))) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    (*out)->r = r;
    return 0;
}

void
rep__enroll_free(rep__enroll_t **ep)
{
    if (!ep || !*ep)
        return;
    free((*ep)->v);
    free((*ep)->listen);
    free(*ep);
    *ep = NULL;
}

static bool
open_slot(const rep__enroll_t *e, size_t i, uint64_t now)
{
    return !e->v[i].used && now < e->v[i].expires_ms;
}

/* ---- invite ---- */

/* Is this device an admin of its office? */
static int
is_admin(rep_replica_t *r)
{
    char *role;
    int rc = rep__member_role(r, &role);
    if (rc == 1)
        rc = strcmp(role, "admin") == 0;
    free(role);
    return rc;
}

/* A listen endpoint on every address (tcp://STAR:P or tcp://0.0.0.0:P) names no address a new
 * workstation could dial. */
static bool
wildcard(const char *ep)
{
    return strncmp(ep, "tcp://*:", 8) == 0 || strncmp(ep, "tcp://0.0.0.0:", 14) == 0;
}

static int
make_invite(rep__enroll_t *e, uint64_t ttl_ms, bool relay, char **token)
{
    uint64_t now = rep__wall_ms(e->r);
    if (!e->listen || wildcard(e->listen))
        return -EADDRNOTAVAIL;
    int admin = is_admin(e->r);
    REP_TRY(admin);
    if (!admin)
        return -EPERM;
    size_t w = 0; /* forget used and expired invitations */
    for (size_t i = 0; i < e->n; i++)
        if (open_slot(e, i, now))
            e->v[w++] = e->v[i];
    e->n = w;
    if (e->n >= REP_INVITE_MAX_OPEN)
        return -EAGAIN;
    slot_t *v = realloc(e->v, (e->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    e->v = v;

    rep__invite_t inv;
    memset(&inv, 0, sizeof inv);
    uint8_t sk[32];
    memcpy(inv.office, e->r->office, sizeof inv.office);
    inv.office_name = e->r->office_name;
    inv.expires_ms = now + ttl_ms;
    inv.relay = relay;
    inv.endpoints = &e->listen;
    inv.nendpoints = 1;
    REP_TRY(rep__device_keys(e->r, NULL, inv.server_pk, NULL));
    rep__random(inv.secret, sizeof inv.secret);
    slot_t *s = &e->v[e->n];
    rep__invite_keypair(inv.secret, s->pk, sk);
    rep__wipe(sk, sizeof sk);
    s->id = e->last_id + 1;
    s->expires_ms = inv.expires_ms;
    s->used = false;
    s->relay = relay;
    int rc = rep__invite_encode(&inv, token);
    rep__wipe(inv.secret, sizeof inv.secret);
    if (rc == 0) {
        e->n++;
        e->last_id++;
    }
    return rc;
}

static int
on_control(void *ctx, rep_node_t *n, const char *verb, const uint8_t *const *args,
           const size_t *argn, size_t nargs, rep__buf_t *reply)
{
    (void)n;
    rep__enroll_t *e = ctx;
    if (strcmp(verb, "invite") != 0)
        return -EOPNOTSUPP;
    char num[24]; /* "TTL" or "TTL relay" */
    if (nargs != 1 || argn[0] == 0 || argn[0] >= sizeof num)
        return -EINVAL;
    memcpy(num, args[0], argn[0]);
    num[argn[0]] = 0;
    char *end;
    unsigned long long ttl = strtoull(num, &end, 10);
    bool relay = strcmp(end, " relay") == 0;
    if ((*end && !relay) || ttl == 0 || ttl > 7ull * 24 * 3600 * 1000)
        return -EINVAL;
    char *token;
    REP_TRY(make_invite(e, ttl, relay, &token));
    rep__buf_add(reply, token, strlen(token));
    free(token);
    return reply->err;
}

/* ---- admit and join ---- */
static int
on_admit(void *ctx, const uint8_t key[32], const char *address, char *user_id)
{
    (void)address;
    rep__enroll_t *e = ctx;
    uint64_t now = rep__wall_ms(e->r);
    for (size_t i = 0; i < e->n; i++)
        if (open_slot(e, i, now) && rep__memcmp_ct(e->v[i].pk, key, 32) == 0) {
            snprintf(user_id, REP_NODE_USER_MAX, "invite-%llu", (unsigned long long)e->v[i].id);
            return 1;
        }
    return 0;
}

/* Enroll the device a JOIN describes, for invitation i; the WELCOME, or why not. */
static int
welcome(rep__enroll_t *e, size_t i, const uint8_t *msg, size_t len, uint8_t **prov,
        size_t *provn, uint8_t **snap, size_t *snapn, const char **why)
{
    char *device = NULL;
    uint8_t sign_pk[32], curve_pk[32], derived[32];
    *why = "malformed request";
    int rc = rep__join_decode(msg, len, &device, sign_pk, curve_pk);
    if (rc == REP_ECORRUPT)
        return 0;
    REP_TRY(rc);
    if (!open_slot(e, i, rep__wall_ms(e->r))) {
        *why = e->v[i].used ? "the invitation was already used" : "the invitation has expired";
    } else if (rep__sign_to_curve(sign_pk, NULL, derived, NULL) < 0 ||
               memcmp(derived, curve_pk, sizeof derived) != 0) {
        *why = "the device's keys do not belong together";
    } else {
        e->v[i].used = true; /* used up, whatever happens next */
        *why = NULL;
        rc = rep__member_admit(e->r, sign_pk, NULL, device, e->v[i].relay ? "relay" : "member",
                               prov, provn);
        if (rc == REP_EEXIST)
            *why = "the device is a member already";
        else if (rc == 0 && !e->v[i].relay) /* a relay gets changes once it syncs */
            rc = rep_replica_snapshot(e->r, snap, snapn);
    }
    free(device);
    return rc;
}

static void
on_message(void *ctx, rep_node_t *n, const rep__node_conn_t *c, const uint8_t *msg, size_t len)
{
    rep__enroll_t *e = ctx;
    unsigned long long id;
    char extra;
    size_t i = 0;
    if (sscanf(c->user_id, "invite-%llu%c", &id, &extra) != 1)
        return; /* not a connection of ours */
    while (i < e->n && e->v[i].id != id)
        i++;
    if (i == e->n)
        return; /* an invitation forgotten since (used or expired, then pruned) */
    uint8_t *prov = NULL, *snap = NULL, *reply = NULL;
    size_t provn = 0, snapn = 0, replyn;
    const char *why;
    int rc = welcome(e, i, msg, len, &prov, &provn, &snap, &snapn, &why);
    if (rc < 0 && !why)
        why = rep_strerror(rc);
    rep__welcome_t w = {prov, snap, provn, snapn};
    if (rep__join_reply_encode(&w, why, &reply, &replyn) == 0)
        rep__node_reply(n, c, reply, replyn);
    if (reply)
        rep__wipe(reply, replyn); /* it held the office keys */
    free(reply);
    if (prov)
        rep__wipe(prov, provn);
    free(prov);
    free(snap);
}

void
rep__enroll_hooks(rep__enroll_t *e, rep__node_hooks_t *h)
{
    h->ctx = e;
    h->admit = on_admit;
    h->message = on_message;
    h->control = on_control;
}
