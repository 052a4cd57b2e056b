/* invite.h — invitation tokens for enrolling a workstation (internal, pure).
 *
 * An admin's node issues a token; the new workstation's `replica join TOKEN` uses it once.
 * The token carries what the new device needs to reach the office and nothing more:
 *   [1, office(bin 16), server curve pk(bin 32), secret(bin 32), expires (ms since epoch),
 *    [endpoint...]]
 * as msgpack, followed by the first 4 bytes of its BLAKE2b-256 (to catch a mistyped token),
 * in URL-safe base64 on one line. The secret seeds a one-time CURVE key pair
 * (rep__invite_keypair): the node's ZAP handler admits that key, for the join exchange only,
 * while the invitation is neither used nor expired. A forged token's key is simply unknown
 * to the node. The secret is a bearer credential: whoever holds the token before it is used
 * or expires can enroll a device — keep its TTL short.
 */
#ifndef REP_INVITE_H
#define REP_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "replica.h"

#define REP_INVITE_SECRET_BYTES 32
#define REP_INVITE_MAX_ENDPOINTS 16
#define REP_INVITE_MAX_ENDPOINT 256

typedef struct rep__invite {
    uint8_t office[REP_OFFICE_ID_BYTES];
    uint8_t server_pk[32];                 /* the inviting node's CURVE public key */
    uint8_t secret[REP_INVITE_SECRET_BYTES];
    uint64_t expires_ms;
    char **endpoints;                      /* where the inviting node listens */
    size_t nendpoints;
} rep__invite_t;

/* The token of in (malloc'd string). -ENOMEM, -EINVAL (too many or too long endpoints). */
int rep__invite_encode(const rep__invite_t *in, char **token);
/* Read a token (surrounding whitespace allowed). REP_ECORRUPT for anything malformed,
 * REP_EVERSION for a newer token format. Release with rep__invite_clear(). */
int rep__invite_decode(const char *token, rep__invite_t *out);
void rep__invite_clear(rep__invite_t *in);

/* The one-time CURVE key pair of an invitation's secret. */
void rep__invite_keypair(const uint8_t secret[REP_INVITE_SECRET_BYTES], uint8_t pk[32],
                         uint8_t sk[32]);

#endif /* REP_INVITE_H */
