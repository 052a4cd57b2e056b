/* keys.h — cryptography for the replica (internal). The only module that sees libsodium.
 *
 * Now: hashing (BLAKE2b-256: change hashes, chain heads, checksums, the digest), random
 * bytes, and the device's Ed25519 identity from which the actor id is derived. Sealing and
 * signing changes come with the office keys in a later version.
 */
#ifndef REP_KEYS_H
#define REP_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define REP_HASH_BYTES 32
#define REP_SIGN_PK_BYTES 32
#define REP_SIGN_SK_BYTES 64

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
