/* members.h — the office's enrolled devices (internal).
 *
 * Who is a member, with which keys, name and role, is the membership log (trust.h). Where a
 * member's node listens is its record of the reserved collection "_devices", named by the hex
 * of its Ed25519 key, whose set "endpoints" ("tcp://IP:PORT") it writes itself. This module
 * joins the two for the node (ZAP allowlist, whom to dial) and the public API.
 */
#ifndef REP_MEMBERS_H
#define REP_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "beacon.h"
#include "keys.h"
#include "replica.h"

#define REP_DEVICES "_devices"
#define REP_DEVICE_ID_CHARS (2 * REP_SIGN_PK_BYTES)
#define REP_CURVE_BYTES 32

typedef struct rep__member {
    char id[REP_DEVICE_ID_CHARS + 1];   /* hex of sign_pk */
    char *name, *role;
    uint8_t sign_pk[REP_SIGN_PK_BYTES], curve_pk[REP_CURVE_BYTES];
    char **endpoints;
    size_t nendpoints;
} rep__member_t;

/* Every member, in id order, with its endpoints. Free with rep__members_free(). */
int rep__members_list(rep_replica_t *r, rep__member_t **out, size_t *n);
void rep__members_free(rep__member_t **mp, size_t n);

/* Enroll device pk (sign and store its membership entry, as this replica's admin) and hand
 * out its provisioning (trust.h), with sk in it when not NULL. -EPERM when this device is not
 * an admin; REP_EEXIST when pk is a member already; -EINVAL for a bad name or role. */
int rep__member_admit(rep_replica_t *r, const uint8_t pk[REP_SIGN_PK_BYTES], const uint8_t *sk,
                      const char *name, const char *role, uint8_t **out, size_t *len);

/* The office's current key epoch, and the beacon subkey (REP_SUBKEY_BEACON) of every epoch
 * whose key this replica holds: *keys malloc'd (NULL when none), secret: rep__wipe it before
 * free. */
int rep__members_beacon_keys(rep_replica_t *r, uint32_t *epoch, rep__beacon_key_t **keys,
                             size_t *n);

/* This device's Ed25519 public key and its CURVE (X25519) key pair. */
int rep__device_keys(rep_replica_t *r, uint8_t sign_pk[REP_SIGN_PK_BYTES],
                     uint8_t curve_pk[REP_CURVE_BYTES], uint8_t curve_sk[REP_CURVE_BYTES]);

/* Is this device in its office's list? 1 with its role in *role (malloc'd; NULL to not ask),
 * 0 when it is not, or a negative code. */
int rep__member_role(rep_replica_t *r, char **role);

/* 0 for an endpoint a device may list: "tcp://HOST:PORT", printable ASCII without spaces,
 * at most REP_MAX_ENDPOINT bytes; -EINVAL otherwise. */
#define REP_MAX_ENDPOINT 256
int rep__endpoint_check(const char *ep);

#endif /* REP_MEMBERS_H */
