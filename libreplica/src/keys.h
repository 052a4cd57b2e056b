/* keys.h — cryptography for the replica (internal). The only module that sees libsodium.
 *
 * Hashing (BLAKE2b-256: change hashes, chain heads, checksums, the digest; keyed BLAKE2b:
 * the tags of discovery beacons), random bytes,
 * the device's Ed25519 identity (from which the actor id is derived) and its signatures,
 * subkeys of an office key (crypto_kdf), and authenticated encryption of changes and
 * snapshots (XChaCha20-Poly1305 IETF, 192-bit random nonces).
 */
#ifndef REP_KEYS_H
#define REP_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "replica.h"

#define REP_HASH_BYTES 32
#define REP_SIGN_PK_BYTES 32
#define REP_SIGN_SK_BYTES 64
#define REP_SIG_BYTES 64
#define REP_KEY_BYTES 32      /* an office key, or a subkey of it */
#define REP_NONCE_BYTES 24
#define REP_MAC_BYTES 16

/* Initialize libsodium (idempotent, thread-safe). 0 or -EIO. */
int rep__keys_init(void);

void rep__hash(uint8_t out[REP_HASH_BYTES], const void *p, size_t n);

/* Incremental hash (opaque state large enough for BLAKE2b). */
typedef struct rep__hasher {
    _Alignas(64) uint8_t state[384];
} rep__hasher_t;
void rep__hasher_init(rep__hasher_t *h);
void rep__hasher_add(rep__hasher_t *h, const void *p, size_t n);
void rep__hasher_final(rep__hasher_t *h, uint8_t out[REP_HASH_BYTES]);

void rep__random(void *p, size_t n);

/* A new Ed25519 identity. */
void rep__sign_keypair(uint8_t pk[REP_SIGN_PK_BYTES], uint8_t sk[REP_SIGN_SK_BYTES]);

/* actor = first 8 bytes (big-endian) of H(device public key ‖ incarnation as 4 bytes BE);
 * never 0. */
uint64_t rep__actor_derive(const uint8_t pk[REP_SIGN_PK_BYTES], uint32_t incarnation);

/* The X25519 (CURVE) keys of an Ed25519 identity; either side may be NULL. REP_ECORRUPT for
 * a public key that is not a valid point. */
int rep__sign_to_curve(const uint8_t pk[REP_SIGN_PK_BYTES], const uint8_t sk[REP_SIGN_SK_BYTES],
                       uint8_t cpk[32], uint8_t csk[32]);

/* Detached Ed25519 signature of m; verify: 0 when sig is pk's over m, REP_EAUTH otherwise. */
void rep__sign(uint8_t sig[REP_SIG_BYTES], const void *m, size_t n,
               const uint8_t sk[REP_SIGN_SK_BYTES]);
int rep__verify(const uint8_t sig[REP_SIG_BYTES], const void *m, size_t n,
                const uint8_t pk[REP_SIGN_PK_BYTES]);

/* A keyed BLAKE2b tag (crypto_generichash with a 32-byte key) of m, REP_MAC_BYTES long. Check
 * a tag with rep__memcmp_ct. */
void rep__mac(uint8_t out[REP_MAC_BYTES], const void *m, size_t n,
              const uint8_t key[REP_KEY_BYTES]);

/* Subkey id of key for context ctx (exactly 8 characters), crypto_kdf_derive_from_key. */
void rep__kdf(uint8_t out[REP_KEY_BYTES], uint64_t id, const char ctx[8],
              const uint8_t key[REP_KEY_BYTES]);

/* XChaCha20-Poly1305: seal writes n + REP_MAC_BYTES bytes to c (c may be m); open writes
 * n - REP_MAC_BYTES bytes to m and returns 0, or REP_EAUTH when c, ad, nonce or key do not
 * match what was sealed (m is then zeroed). */
void rep__aead_seal(uint8_t *c, const uint8_t *m, size_t n, const uint8_t *ad, size_t adn,
                    const uint8_t nonce[REP_NONCE_BYTES], const uint8_t key[REP_KEY_BYTES]);
int rep__aead_open(uint8_t *m, const uint8_t *c, size_t n, const uint8_t *ad, size_t adn,
                   const uint8_t nonce[REP_NONCE_BYTES], const uint8_t key[REP_KEY_BYTES]);

/* crypto_box (X25519 + XSalsa20-Poly1305) of a 32-byte key from one X25519 key pair to
 * another: out is nonce(24) ‖ sealed key(48). open: 0, or REP_EAUTH. */
void rep__box_key(uint8_t out[24 + 32 + 16], const uint8_t key[32], const uint8_t to_pk[32],
                  const uint8_t from_sk[32]);
int rep__unbox_key(uint8_t key[32], const uint8_t in[24 + 32 + 16], const uint8_t from_pk[32],
                   const uint8_t to_sk[32]);

/* One-time codes for provisioning files: 12 characters of an unambiguous 32-letter alphabet
 * (60 bits) in groups of four, "XXXX-XXXX-XXXX". new makes one; canon checks one as typed
 * (case, spaces and dashes do not matter) and writes its canonical form: -EINVAL otherwise. */
#define REP_SALT_BYTES 16
void rep__code_new(char code[REP_CODE_SIZE]);
int rep__code_canon(const char *typed, char code[REP_CODE_SIZE]);
/* The key of a code (crypto_pwhash, Argon2id, interactive limits): 0, or -ENOMEM when the
 * memory it needs is not there. */
int rep__pw_key(uint8_t key[REP_KEY_BYTES], const char *code, const uint8_t salt[REP_SALT_BYTES]);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void rep__hex(char *out, const uint8_t *p, size_t n);

/* A CURVE (X25519) key pair derived from a 32-byte secret seed (crypto_box_seed_keypair). */
void rep__curve_seed_keypair(const uint8_t seed[32], uint8_t pk[32], uint8_t sk[32]);

/* URL-safe base64 without padding: encode (malloc'd string, NULL when out of memory); decode
 * a whole string (*out malloc'd): REP_ECORRUPT for anything else (spaces included). */
char *rep__base64(const uint8_t *p, size_t n);
int rep__unbase64(const char *s, uint8_t **out, size_t *n);

/* Zero secret bytes (not optimized away). */
void rep__wipe(void *p, size_t n);

/* Compare secrets or hashes in constant time: 0 when equal. */
int rep__memcmp_ct(const void *a, const void *b, size_t n);

#endif /* REP_KEYS_H */
