/* invite.h — invitation tokens for enrolling a workstation (internal, pure).
 *
 * An admin's node issues a token; the new workstation's `replica join TOKEN` uses it once.
 * The token carries what the new device needs to reach the office and nothing more:
 *   [1, office(bin 16), office name, server curve pk(bin 32), secret(bin 32),
 *    expires (ms since epoch), [endpoint...], relay(bool)]
 * as msgpack, followed by the first 4 bytes of its BLAKE2b-256 (to catch a mistyped token),
 * in URL-safe base64 on one line. The secret seeds a one-time CURVE key pair
 * (rep__invite_keypair): the node's ZAP handler admits that key, for the join exchange only,
 * while the invitation is neither used nor expired. A forged token's key is simply unknown
 * to the node. The secret is a bearer credential: whoever holds the token before it is used
 * or expires can enroll a device — keep its TTL short. relay: the device it enrolls is a relay
 * (trust.h), given no office key; the joining side checks that it asked for one.
 */
#ifndef REP_INVITE_H
#define REP_INVITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replica.h"

#define REP_INVITE_SECRET_BYTES 32
#define REP_INVITE_MAX_ENDPOINTS 16
#define REP_INVITE_MAX_ENDPOINT 256

typedef struct rep__invite {
    uint8_t office[REP_OFFICE_ID_BYTES];
    char *office_name;
    uint8_t server_pk[32];                 /* the inviting node's CURVE public key */
    uint8_t secret[REP_INVITE_SECRET_BYTES];
    uint64_t expires_ms;
    char **endpoints;                      /* where the inviting node listens */
    size_t nendpoints;
    bool relay;                            /* enrolls a relay (role "relay", no key) */
} rep__invite_t;

/* The token of in (malloc'd string). -ENOMEM, -EINVAL (a bad office name, too many or too
 * long endpoints). */
int rep__invite_encode(const rep__invite_t *in, char **token);
/* Read a token (surrounding whitespace allowed). REP_ECORRUPT for anything malformed,
 * REP_EVERSION for a newer token format. Release with rep__invite_clear(). */
int rep__invite_decode(const char *token, rep__invite_t *out);
void rep__invite_clear(rep__invite_t *in);

/* The one-time CURVE key pair of an invitation's secret. */
void rep__invite_keypair(const uint8_t secret[REP_INVITE_SECRET_BYTES], uint8_t pk[32],
                         uint8_t sk[32]);

/* ---- The join exchange (node messages, after the sync engine's types) ----
 *   JOIN    [1, 5, device name, sign pk(bin 32), curve pk(bin 32)]  joining device -> node
 *   WELCOME [1, 6, provisioning(bin), snapshot(bin)]  enrolled: the membership log with the
 *                                      device's entry and the office keys (trust.h, without
 *                                      the device's secret key, which never left it), and the
 *                                      office's state
 *   REFUSED [1, 7, reason]             not enrolled, and why
 * The node checks that the curve key is the one of the Ed25519 key (members.h). */
enum { REP_JOIN_MSG = 5, REP_WELCOME_MSG = 6, REP_REFUSED_MSG = 7 };

int rep__join_encode(const char *device, const uint8_t sign_pk[32], const uint8_t curve_pk[32],
                     uint8_t **out, size_t *len);
/* *device is malloc'd. REP_ECORRUPT for anything malformed (the name is checked as a user
 * name is). */
int rep__join_decode(const uint8_t *p, size_t n, char **device, uint8_t sign_pk[32],
                     uint8_t curve_pk[32]);
typedef struct rep__welcome {
    const uint8_t *provision, *snap;
    size_t provisionn, snapn;
} rep__welcome_t;
/* A WELCOME (reason NULL) or a REFUSED (w NULL). */
int rep__join_reply_encode(const rep__welcome_t *w, const char *reason, uint8_t **out, size_t *len);
/* 1 for a WELCOME (w: views into p), 0 for a REFUSED (*reason malloc'd), REP_ECORRUPT. */
int rep__join_reply_decode(const uint8_t *p, size_t n, rep__welcome_t *w, char **reason);

#endif /* REP_INVITE_H */
