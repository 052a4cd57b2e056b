/* members.h — the office's enrolled devices (internal).
 *
 * A device is a record of the reserved collection "_devices", replicated like any record, so
 * every replica has the office's device list. Its record id is the hex of the device's Ed25519
 * public key; its fields are registers name, role ("admin", "member"), sign_pk (bytes 32),
 * curve_pk (bytes 32: the X25519 key ZeroMQ's CURVE uses, derived from the Ed25519 key) and
 * the set endpoints (where its node listens, "tcp://IP:PORT"). The ZAP handler admits exactly
 * the curve keys listed here. Until membership becomes a log signed by the office's admins
 * (DESIGN.md "Security"), any enrolled device could edit it: the office trusts its devices.
 */
#ifndef REP_MEMBERS_H
#define REP_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

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

/* Every enrolled device (records with a well-formed sign_pk and curve_pk; others are
 * skipped), in id order. Free with rep__members_free(). */
int rep__members_list(rep_replica_t *r, rep__member_t **out, size_t *n);
void rep__members_free(rep__member_t **mp, size_t n);

/* Write a device's record (name, role, keys) and add endpoints to its set, in one change. */
int rep__member_write(rep_replica_t *r, const char *name, const char *role,
                      const uint8_t sign_pk[REP_SIGN_PK_BYTES],
                      const uint8_t curve_pk[REP_CURVE_BYTES], const char *const *endpoints,
                      size_t nendpoints);

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
