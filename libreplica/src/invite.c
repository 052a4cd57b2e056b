/* invite.c — invitation tokens. See invite.h. */
#include "invite.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "codec.h"
#include "common.h"
#include "crdt.h"
#include "facade.h"
#include "keys.h"

#define INVITE_VERSION 1
#define CHECK_BYTES 4

static void
pack_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

int
rep__invite_encode(const rep__invite_t *in, char **token)
{
    *token = NULL;
    if (in->nendpoints > REP_INVITE_MAX_ENDPOINTS || !in->office_name ||
        rep__name_check(in->office_name, strlen(in->office_name), REP_MAX_USER, false) != 0)
        return -EINVAL;
    for (size_t i = 0; i < in->nendpoints; i++)
        if (strlen(in->endpoints[i]) > REP_INVITE_MAX_ENDPOINT)
            return -EINVAL;
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint8(&pk, INVITE_VERSION);
    pack_bin(&pk, in->office, sizeof in->office);
    size_t namen = strlen(in->office_name);
    msgpack_pack_str(&pk, namen);
    msgpack_pack_str_body(&pk, in->office_name, namen);
    pack_bin(&pk, in->server_pk, sizeof in->server_pk);
    pack_bin(&pk, in->secret, sizeof in->secret);
    msgpack_pack_uint64(&pk, in->expires_ms);
    msgpack_pack_array(&pk, in->nendpoints);
    for (size_t i = 0; i < in->nendpoints; i++) {
        size_t n = strlen(in->endpoints[i]);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, in->endpoints[i], n);
    }
    if (in->relay)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    uint8_t sum[REP_HASH_BYTES];
    if (b.err == 0) {
        rep__hash(sum, b.p, b.len);
        rep__buf_add(&b, sum, CHECK_BYTES);
    }
    int rc = b.err;
    if (rc == 0 && !(*token = rep__base64(b.p, b.len)))
        rc = -ENOMEM;
    rep__wipe(b.p, b.len); /* it held the secret */
    rep__buf_free(&b);
    return rc;
}

static int
decode(const uint8_t *p, size_t n, rep__invite_t *out)
{
    uint8_t sum[REP_HASH_BYTES];
    if (n <= CHECK_BYTES)
        return REP_ECORRUPT;
    n -= CHECK_BYTES;
    rep__hash(sum, p, n);
    if (memcmp(sum, p + n, CHECK_BYTES) != 0)
        return REP_ECORRUPT;
    rep__rd_t r;
    rep__rd_init(&r, p, n);
    uint32_t items, neps;
    uint64_t version;
    REP_TRY(rep__rd_array(&r, &items));
    REP_TRY(rep__rd_uint(&r, &version));
    if (version != INVITE_VERSION)
        return version > INVITE_VERSION ? REP_EVERSION : REP_ECORRUPT;
    if (items != 8)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_fixed(&r, out->office, sizeof out->office));
    const char *name;
    uint32_t namen;
    REP_TRY(rep__rd_name(&r, &name, &namen, REP_MAX_USER, false));
    if (!(out->office_name = rep__strndup(name, namen)))
        return -ENOMEM;
    REP_TRY(rep__rd_fixed(&r, out->server_pk, sizeof out->server_pk));
    REP_TRY(rep__rd_fixed(&r, out->secret, sizeof out->secret));
    REP_TRY(rep__rd_uint(&r, &out->expires_ms));
    REP_TRY(rep__rd_array(&r, &neps));
    if (neps == 0 || neps > REP_INVITE_MAX_ENDPOINTS)
        return REP_ECORRUPT;
    if (!(out->endpoints = calloc(neps, sizeof *out->endpoints)))
        return -ENOMEM;
    for (uint32_t i = 0; i < neps; i++) {
        const char *s;
        uint32_t len;
        REP_TRY(rep__rd_str(&r, &s, &len));
        if (len == 0 || len > REP_INVITE_MAX_ENDPOINT || memchr(s, 0, len))
            return REP_ECORRUPT;
        if (!(out->endpoints[i] = malloc(len + 1)))
            return -ENOMEM;
        memcpy(out->endpoints[i], s, len);
        out->endpoints[i][len] = 0;
        out->nendpoints++;
    }
    REP_TRY(rep__rd_bool(&r, &out->relay));
    return rep__rd_left(&r) ? REP_ECORRUPT : 0;
}

int
rep__invite_decode(const char *token, rep__invite_t *out)
{
    memset(out, 0, sizeof *out);
    if (!token)
        return -EINVAL;
    while (isspace((unsigned char)*token))
        token++;
    size_t len = strlen(token);
    while (len && isspace((unsigned char)token[len - 1]))
        len--;
    char *t = malloc(len + 1);
    if (!t)
        return -ENOMEM;
    memcpy(t, token, len);
    t[len] = 0;
    uint8_t *p;
    size_t n;
    int rc = rep__unbase64(t, &p, &n);
    free(t);
    if (rc == 0) {
        rc = decode(p, n, out);
        rep__wipe(p, n);
        free(p);
    }
    if (rc < 0)
        rep__invite_clear(out);
    return rc;
}

void
rep__invite_clear(rep__invite_t *in)
{
    free(in->office_name);
    for (size_t i = 0; i < in->nendpoints; i++)
        free(in->endpoints[i]);
    free(in->endpoints);
    rep__wipe(in, sizeof *in);
}

void
rep__invite_keypair(const uint8_t secret[REP_INVITE_SECRET_BYTES], uint8_t pk[32], uint8_t sk[32])
{
    uint8_t seed[REP_HASH_BYTES];
    /* a key pair of its own, so the secret itself never goes into a key */
    rep__hash(seed, secret, REP_INVITE_SECRET_BYTES);
    rep__curve_seed_keypair(seed, pk, sk);
    rep__wipe(seed, sizeof seed);
}

/* ---- The join exchange ---- */
static void
msg_head(rep__buf_t *b, msgpack_packer *pk, size_t items, int type)
{
    rep__buf_init(b);
    rep__packer_init(pk, b);
    msgpack_pack_array(pk, items);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_uint8(pk, (uint8_t)type);
}

static int
msg_done(rep__buf_t *b, uint8_t **out, size_t *len)
{
    int rc = b->err;
    if (rc == 0)
        *out = rep__buf_take(b, len);
    rep__buf_free(b);
    return rc;
}

int
rep__join_encode(const char *device, const uint8_t sign_pk[32], const uint8_t curve_pk[32],
                 uint8_t **out, size_t *len)
{
    rep__buf_t b;
    msgpack_packer pk;
    msg_head(&b, &pk, 5, REP_JOIN_MSG);
    size_t n = strlen(device);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, device, n);
    pack_bin(&pk, sign_pk, 32);
    pack_bin(&pk, curve_pk, 32);
    return msg_done(&b, out, len);
}

/* Read [1, type, ...] of items items; REP_ECORRUPT when it is not that. */
static int
msg_open(rep__rd_t *r, const uint8_t *p, size_t n, uint32_t items, uint64_t *type)
{
    uint32_t count;
    uint64_t version;
    rep__rd_init(r, p, n);
    REP_TRY(rep__rd_array(r, &count));
    REP_TRY(rep__rd_uint(r, &version));
    REP_TRY(rep__rd_uint(r, type));
    return version == 1 && (!items || count == items) ? 0 : REP_ECORRUPT;
}

int
rep__join_decode(const uint8_t *p, size_t n, char **device, uint8_t sign_pk[32],
                 uint8_t curve_pk[32])
{
    *device = NULL;
    rep__rd_t r;
    uint64_t type;
    const char *name;
    uint32_t namen;
    REP_TRY(msg_open(&r, p, n, 5, &type));
    if (type != REP_JOIN_MSG)
        return REP_ECORRUPT;
    REP_TRY(rep__rd_name(&r, &name, &namen, REP_MAX_USER, false));
    REP_TRY(rep__rd_fixed(&r, sign_pk, 32));
    REP_TRY(rep__rd_fixed(&r, curve_pk, 32));
    if (rep__rd_left(&r))
        return REP_ECORRUPT;
    return (*device = rep__strndup(name, namen)) ? 0 : -ENOMEM;
}

int
rep__join_reply_encode(const rep__welcome_t *w, const char *reason, uint8_t **out, size_t *len)
{
    rep__buf_t b;
    msgpack_packer pk;
    msg_head(&b, &pk, reason ? 3 : 4, reason ? REP_REFUSED_MSG : REP_WELCOME_MSG);
    if (reason) {
        size_t n = strlen(reason);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, reason, n);
    } else {
        pack_bin(&pk, w->provision, w->provisionn);
        pack_bin(&pk, w->snap, w->snapn);
    }
    int rc = msg_done(&b, out, len);
    if (rc < 0 && b.p)
        rep__wipe(b.p, b.len);
    return rc;
}

int
rep__join_reply_decode(const uint8_t *p, size_t n, rep__welcome_t *w, char **reason)
{
    *reason = NULL;
    memset(w, 0, sizeof *w);
    rep__rd_t r;
    uint64_t type;
    REP_TRY(msg_open(&r, p, n, 0, &type));
    if (type == REP_WELCOME_MSG) {
        uint32_t a, b;
        REP_TRY(rep__rd_bin(&r, &w->provision, &a));
        REP_TRY(rep__rd_bin(&r, &w->snap, &b));
        w->provisionn = a;
        w->snapn = b;
        return rep__rd_left(&r) ? REP_ECORRUPT : 1;
    }
    const char *s;
    uint32_t len;
    if (type != REP_REFUSED_MSG || rep__rd_str(&r, &s, &len) < 0 || rep__rd_left(&r) ||
        !rep__utf8_valid(s, len) || memchr(s, 0, len))
        return REP_ECORRUPT;
    return (*reason = rep__strndup(s, len)) ? 0 : -ENOMEM;
}
