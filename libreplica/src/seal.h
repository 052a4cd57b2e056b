/* seal.h — sealed, signed envelopes: what changes and snapshots are wrapped in (internal).
 *
 * A sealed message is a msgpack array whose public header items are followed by three:
 *   ..., nonce(bin 24), sealed(bin), sig(bin 64)
 * sealed is XChaCha20-Poly1305 (random 192-bit nonce) under a subkey of the office key, with
 * office id ‖ every byte from the start of the message up to sealed (its header and nonce)
 * as associated data, so no header can be moved onto another body. What it seals is one flag
 * byte and the body: the body itself (flag 0), or its zstd frame (flag 1, when the body is
 * REP_SEAL_ZIP_MIN bytes or more and that is smaller; a length leak judged harmless here, as
 * nobody outside the office can place chosen text beside a secret in one message). sig is
 * the writer's Ed25519 signature of BLAKE2b-256(office id ‖ every byte before sig): over the
 * ciphertext, never the plaintext, which a relay could test guesses against. So anyone who
 * knows the writer's key can check a message, and only holders of the office key can read it.
 */
#ifndef REP_SEAL_H
#define REP_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "keys.h"

#define REP_SEAL_ZIP_MIN 512

/* Append nonce, sealed and sig to b, whose message began at b->p + start. */
int rep__seal_append(rep__buf_t *b, size_t start, const uint8_t office[REP_OFFICE_ID_BYTES],
                     const uint8_t *body, size_t n, const uint8_t key[REP_KEY_BYTES],
                     const uint8_t sk[REP_SIGN_SK_BYTES]);

/* A sealed message's views, set by rep__rd_sealed. */
typedef struct rep__sealed {
    const uint8_t *start;       /* the message's first byte */
    size_t hdr_len;             /* bytes from start up to sealed: the associated data */
    size_t signed_len;          /* bytes from start up to sig */
    const uint8_t *nonce, *ct, *sig;
    size_t ctn;
} rep__sealed_t;

/* Read the three items (the message began at start). REP_ECORRUPT. */
int rep__rd_sealed(rep__rd_t *r, const uint8_t *start, rep__sealed_t *s);
/* 0 when pk signed it, else REP_EAUTH. */
int rep__sealed_verify(const rep__sealed_t *s, const uint8_t office[REP_OFFICE_ID_BYTES],
                       const uint8_t pk[REP_SIGN_PK_BYTES]);
/* The body (*out malloc'd, secret: rep__wipe before free): REP_EAUTH when it does not open
 * with key for this office (or was altered); REP_ECORRUPT when what is sealed is malformed. */
int rep__sealed_open(const rep__sealed_t *s, const uint8_t office[REP_OFFICE_ID_BYTES],
                     const uint8_t key[REP_KEY_BYTES], uint8_t **out, size_t *n);

#endif /* REP_SEAL_H */
