/* seal.c — sealed, signed envelopes. See seal.h. */
#include "seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "zip.h"

/* What the signature covers: BLAKE2b-256 of the office id and the signed bytes. */
static void
sig_digest(uint8_t out[REP_HASH_BYTES], const uint8_t office[REP_OFFICE_ID_BYTES],
           const uint8_t *p, size_t n)
{
    rep__hasher_t h;
    rep__hasher_init(&h);
    rep__hasher_add(&h, office, REP_OFFICE_ID_BYTES);
    rep__hasher_add(&h, p, n);
    rep__hasher_final(&h, out);
}

/* The associated data: the office id and the header. */
static int
seal_ad(rep__buf_t *ad, const uint8_t office[REP_OFFICE_ID_BYTES], const uint8_t *hdr, size_t n)
{
    rep__buf_add(ad, office, REP_OFFICE_ID_BYTES);
    rep__buf_add(ad, hdr, n);
    return ad->err;
}

/* The flag byte and the body, compressed when that pays. */
static int
plaintext(rep__buf_t *plain, const uint8_t *body, size_t n)
{
    if (n >= REP_SEAL_ZIP_MIN) {
        rep__buf_add(plain, (const uint8_t[]){1}, 1);
        if (rep__zip(plain, body, n) == 0 && plain->err == 0 && plain->len < n + 1)
            return 0;
        plain->len = 0; /* not smaller (or no memory to try): as it is */
        plain->err = 0;
    }
    rep__buf_add(plain, (const uint8_t[]){0}, 1);
    rep__buf_add(plain, body, n);
    return plain->err;
}

int
rep__seal_append(rep__buf_t *b, size_t start, const uint8_t office[REP_OFFICE_ID_BYTES],
                 const uint8_t *body, size_t n, const uint8_t key[REP_KEY_BYTES],
                 const uint8_t sk[REP_SIGN_SK_BYTES])
{
    rep__buf_t plain, ad;
    rep__buf_init(&plain);
    rep__buf_init(&ad);
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    uint8_t nonce[REP_NONCE_BYTES];
    rep__random(nonce, sizeof nonce);
    msgpack_pack_bin(&pk, sizeof nonce);
    msgpack_pack_bin_body(&pk, nonce, sizeof nonce);
    int rc = plaintext(&plain, body, n);
    if (rc == 0 && (rc = b->err) == 0 && (rc = seal_ad(&ad, office, b->p + start, b->len - start)) == 0) {
        size_t cn = plain.len + REP_MAC_BYTES;
        msgpack_pack_bin(&pk, cn);
        if ((rc = rep__buf_reserve(b, cn)) == 0) {
            rep__aead_seal(b->p + b->len, plain.p, plain.len, ad.p, ad.len, nonce, key);
            b->len += cn;
            uint8_t d[REP_HASH_BYTES], sig[REP_SIG_BYTES];
            sig_digest(d, office, b->p + start, b->len - start);
            rep__sign(sig, d, sizeof d, sk);
            msgpack_pack_bin(&pk, sizeof sig);
            msgpack_pack_bin_body(&pk, sig, sizeof sig);
            rc = b->err;
        }
    }
    rep__buf_free(&ad);
    if (plain.p)
        rep__wipe(plain.p, plain.len);
    rep__buf_free(&plain);
    return rc;
}

int
rep__rd_sealed(rep__rd_t *r, const uint8_t *start, rep__sealed_t *s)
{
    uint32_t nn, cn, sn;
    s->start = start;
    REP_TRY(rep__rd_bin(r, &s->nonce, &nn));
    s->hdr_len = (size_t)(r->p - start);
    REP_TRY(rep__rd_bin(r, &s->ct, &cn));
    s->signed_len = (size_t)(r->p - start);
    REP_TRY(rep__rd_bin(r, &s->sig, &sn));
    s->ctn = cn;
    return nn == REP_NONCE_BYTES && sn == REP_SIG_BYTES && cn > REP_MAC_BYTES ? 0 : REP_ECORRUPT;
}

int
rep__sealed_verify(const rep__sealed_t *s, const uint8_t office[REP_OFFICE_ID_BYTES],
                   const uint8_t pk[REP_SIGN_PK_BYTES])
{
    uint8_t d[REP_HASH_BYTES];
    sig_digest(d, office, s->start, s->signed_len);
    return rep__verify(s->sig, d, sizeof d, pk);
}

int
rep__sealed_open(const rep__sealed_t *s, const uint8_t office[REP_OFFICE_ID_BYTES],
                 const uint8_t key[REP_KEY_BYTES], uint8_t **out, size_t *outn)
{
    *out = NULL;
    *outn = 0;
    size_t n = s->ctn - REP_MAC_BYTES;
    uint8_t *plain = malloc(n);
    if (!plain)
        return -ENOMEM;
    rep__buf_t ad;
    rep__buf_init(&ad);
    int rc = seal_ad(&ad, office, s->start, s->hdr_len);
    if (rc == 0)
        rc = rep__aead_open(plain, s->ct, s->ctn, ad.p, ad.len, s->nonce, key);
    rep__buf_free(&ad);
    if (rc == 0 && plain[0] > 1)
        rc = REP_ECORRUPT;
    if (rc == 0 && plain[0] == 1) { /* zstd */
        rc = rep__unzip(plain + 1, n - 1, out, outn);
    } else if (rc == 0) {
        memmove(plain, plain + 1, n - 1);
        *out = plain;
        *outn = n - 1;
        return 0;
    }
    rep__wipe(plain, n);
    free(plain);
    return rc;
}
