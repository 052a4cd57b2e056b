/* enroll.h — enrollment by invitation, on the inviting node's side (internal).
 *
 * The node's hooks (node.h) for `replica invite` and `replica join` (join.c is the other
 * side; invite.h has the token and the messages):
 *   control "invite" [ttl ms as decimal]   an admin device's node makes an invitation: a
 *            random secret, its one-time CURVE key pair, an expiry; the reply is the token
 *   admit    the one-time key of an invitation neither used nor expired is admitted, under the
 *            user id "invite-N", for the join exchange only (the node gives its messages to
 *            the hooks, never to the sync engine)
 *   message  JOIN from such a connection: the device's CURVE key must be that of its Ed25519
 *            identity; the invitation is then used up, the device is written into _devices
 *            (role member) and the answer is WELCOME with a snapshot of the office's state,
 *            its new record included; anything else is answered REFUSED with the reason
 * Invitations live in the node's memory: a node restart forgets them (invite again).
 */
#ifndef REP_ENROLL_H
#define REP_ENROLL_H

#include "node.h"
#include "replica.h"

#define REP_INVITE_MAX_OPEN 64 /* invitations neither used nor expired, at most */

typedef struct rep__enroll rep__enroll_t;

/* State for the node serving r that listens at listen (NULL: it cannot invite). */
int rep__enroll_new(rep_replica_t *r, const char *listen, rep__enroll_t **out);
void rep__enroll_free(rep__enroll_t **ep);
/* The node hooks, with e as their context. */
void rep__enroll_hooks(rep__enroll_t *e, rep__node_hooks_t *h);

#endif /* REP_ENROLL_H */
