/* keys.c — libsodium wrappers. See keys.h. */
#include "keys.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

_Static_assert(sizeof(((rep__hasher_t *)0)->state) >= sizeof(crypto_generichash_state),
               "hasher state too small");
_Static_assert(REP_SIGN_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "pk size");
_Static_assert(REP_SIGN_SK_BYTES == crypto_sign_SECRETKEYBYTES, "sk size");
_Static_assert(REP_SIG_BYTES == crypto_sign_BYTES, "signature size");
_Static_assert(REP_KEY_BYTES == crypto_kdf_KEYBYTES &&
                   REP_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "key size");
_Static_assert(REP_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(REP_MAC_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "mac size");

int
rep__keys_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

void
rep__hash(uint8_t out[REP_HASH_BYTES], const void *p, size_t n)
{
    crypto_generichash(out, REP_HASH_BYTES, p, n, NULL, 0);
}

void
rep__hasher_init(rep__hasher_t *h)
{
    crypto_generichash_init((crypto_generichash_state *)h->state, NULL, 0, REP_HASH_BYTES);
}

void
rep__hasher_add(rep__hasher_t *h, const void *p, size_t n)
{
    crypto_generichash_update((crypto_generichash_state *)h->state, p, n);
}

void
rep__hasher_final(rep__hasher_t *h, uint8_t out[REP_HASH_BYTES])
{
    crypto_generichash_final((crypto_generichash_state *)h->state, out, REP_HASH_BYTES);
}

void
rep__random(void *p, size_t n)
{
    randombytes_buf(p, n);
}

void
rep__sign_keypair(uint8_t pk[REP_SIGN_PK_BYTES], uint8_t sk[REP_SIGN_SK_BYTES])
{
    crypto_sign_keypair(pk, sk);
}

uint64_t
rep__actor_derive(const uint8_t pk[REP_SIGN_PK_BYTES], uint32_t incarnation)
{
    uint8_t in[REP_SIGN_PK_BYTES + 4], h[REP_HASH_BYTES];
    memcpy(in, pk, REP_SIGN_PK_BYTES);
    rep__put_be32(in + REP_SIGN_PK_BYTES, incarnation);
    rep__hash(h, in, sizeof in);
    uint64_t actor = rep__get_be64(h);
    return actor ? actor : 1;
}

int
rep__memcmp_ct(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n);
}

int
rep__sign_to_curve(const uint8_t pk[REP_SIGN_PK_BYTES], const uint8_t sk[REP_SIGN_SK_BYTES],
                   uint8_t cpk[32], uint8_t csk[32])
{
    if (pk && cpk && crypto_sign_ed25519_pk_to_curve25519(cpk, pk) != 0)
        return REP_ECORRUPT;
    if (sk && csk && crypto_sign_ed25519_sk_to_curve25519(csk, sk) != 0)
        return REP_ECORRUPT;
    return 0;
}

void
rep__hex(char *out, const uint8_t *p, size_t n)
{
    sodium_bin2hex(out, 2 * n + 1, p, n);
}

void
rep__wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

void
rep__curve_seed_keypair(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[32])
{
    crypto_box_seed_keypair(pk, sk, seed);
}

char *
rep__base64(const uint8_t *p, size_t n)
{
    size_t len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(len);
    if (s)
        sodium_bin2base64(s, len, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

int
rep__unbase64(const char *s, uint8_t **out, size_t *n)
{
    size_t len = strlen(s), cap = len / 4 * 3 + 3;
    *out = malloc(cap);
    if (!*out)
        return -ENOMEM;
    if (sodium_base642bin(*out, cap, s, len, NULL, n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(*out);
        *out = NULL;
        return REP_ECORRUPT;
    }
    return 0;
}

void
rep__sign(uint8_t sig[REP_SIG_BYTES], const void *m, size_t n, const uint8_t sk[REP_SIGN_SK_BYTES])
{
    crypto_sign_detached(sig, NULL, m, n, sk);
}

int
rep__verify(const uint8_t sig[REP_SIG_BYTES], const void *m, size_t n,
            const uint8_t pk[REP_SIGN_PK_BYTES])
{
    return crypto_sign_verify_detached(sig, m, n, pk) == 0 ? 0 : REP_EAUTH;
}

void
rep__mac(uint8_t out[REP_MAC_BYTES], const void *m, size_t n, const uint8_t key[REP_KEY_BYTES])
{
    crypto_generichash(out, REP_MAC_BYTES, m, n, key, REP_KEY_BYTES);
}

void
rep__kdf(uint8_t out[REP_KEY_BYTES], uint64_t id, const char ctx[8], const uint8_t key[REP_KEY_BYTES])
{
    crypto_kdf_derive_from_key(out, REP_KEY_BYTES, id, ctx, key);
}

void
rep__aead_seal(uint8_t *c, const uint8_t *m, size_t n, const uint8_t *ad, size_t adn,
               const uint8_t nonce[REP_NONCE_BYTES], const uint8_t key[REP_KEY_BYTES])
{
    crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, n, ad, adn, NULL, nonce, key);
}

int
rep__aead_open(uint8_t *m, const uint8_t *c, size_t n, const uint8_t *ad, size_t adn,
               const uint8_t nonce[REP_NONCE_BYTES], const uint8_t key[REP_KEY_BYTES])
{
    if (n < REP_MAC_BYTES)
        return REP_EAUTH;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, n, ad, adn, nonce, key) != 0) {
        rep__wipe(m, n - REP_MAC_BYTES);
        return REP_EAUTH;
    }
    return 0;
}

static const char code_alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no I, O, 0, 1 */

void
rep__code_new(char code[REP_CODE_SIZE])
{
    char *p = code;
    for (int i = 0; i < 12; i++) {
        if (i && i % 4 == 0)
            *p++ = '-';
        *p++ = code_alpha[randombytes_uniform(32)];
    }
    *p = 0;
}

int
rep__code_canon(const char *typed, char code[REP_CODE_SIZE])
{
    int n = 0;
    char *p = code;
    for (const char *s = typed; *s; s++) {
        if (*s == '-' || *s == ' ')
            continue;
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        if (!strchr(code_alpha, ch) || n == 12)
            return -EINVAL;
        if (n && n % 4 == 0)
            *p++ = '-';
        *p++ = ch;
        n++;
    }
    *p = 0;
    return n == 12 ? 0 : -EINVAL;
}

int
rep__pw_key(uint8_t key[REP_KEY_BYTES], const char *code, const uint8_t salt[REP_SALT_BYTES])
{
    _Static_assert(REP_SALT_BYTES == crypto_pwhash_SALTBYTES, "salt size");
    return crypto_pwhash(key, REP_KEY_BYTES, code, strlen(code), salt,
                         crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                         crypto_pwhash_ALG_ARGON2ID13) == 0
               ? 0
               : -ENOMEM;
}

void
rep__box_key(uint8_t out[24 + 32 + 16], const uint8_t key[32], const uint8_t to_pk[32],
             const uint8_t from_sk[32])
{
    _Static_assert(crypto_box_NONCEBYTES == 24 && crypto_box_MACBYTES == 16, "box sizes");
    randombytes_buf(out, crypto_box_NONCEBYTES);
    if (crypto_box_easy(out + 24, key, 32, out, to_pk, from_sk) != 0)
        memset(out, 0, 24 + 32 + 16); /* a key that is not a point: a box nobody opens */
}

int
rep__unbox_key(uint8_t key[32], const uint8_t in[24 + 32 + 16], const uint8_t from_pk[32],
               const uint8_t to_sk[32])
{
    return crypto_box_open_easy(key, in + 24, 32 + 16, in, from_pk, to_sk) == 0 ? 0 : REP_EAUTH;
}
