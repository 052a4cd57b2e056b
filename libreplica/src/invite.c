/* invite.c — invitation tokens. See invite.h. */
#include "invite.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "codec.h"
#include "common.h"
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
    if (in->nendpoints > REP_INVITE_MAX_ENDPOINTS)
        return -EINVAL;
    for (size_t i = 0; i < in->nendpoints; i++)
        if (strlen(in->endpoints[i]) > REP_INVITE_MAX_ENDPOINT)
            return -EINVAL;
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, INVITE_VERSION);
    pack_bin(&pk, in->office, sizeof in->office);
    pack_bin(&pk, in->server_pk, sizeof in->server_pk);
    pack_bin(&pk, in->secret, sizeof in->secret);
    msgpack_pack_uint64(&pk, in->expires_ms);
    msgpack_pack_array(&pk, in->nendpoints);
    for (size_t i = 0; i < in->nendpoints; i++) {
        size_t n = strlen(in->endpoints[i]);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, in->endpoints[i], n);
    }
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
rd_fixed(rep__rd_t *r, uint8_t *out, size_t n)
{
    const uint8_t *p;
    uint32_t len;
    REP_TRY(rep__rd_bin(r, &p, &len));
    if (len != n)
        return REP_ECORRUPT;
    memcpy(out, p, n);
    return 0;
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
    if (items != 6)
        return REP_ECORRUPT;
    REP_TRY(rd_fixed(&r, out->office, sizeof out->office));
    REP_TRY(rd_fixed(&r, out->server_pk, sizeof out->server_pk));
    REP_TRY(rd_fixed(&r, out->secret, sizeof out->secret));
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
