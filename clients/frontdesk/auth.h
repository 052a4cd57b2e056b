/*
 * auth.h — the front desk's staff: PINs (stored hashed in the replicated "staff" collection)
 * and sign-in sessions (in this process's memory only).
 *
 * A PIN attributes work to a person: it is short and typed on shared workstations, so it is
 * not strong authentication. The workstation's OS session is the real gate (README.md,
 * "The front desk").
 *
 * Sessions: a signed-in member of staff gets a random token (32 bytes, URL-safe base64),
 * kept in memory with the name; it expires FD_SESSION_IDLE_S after its last use or
 * FD_SESSION_MAX_S after sign-in, whichever comes first, and is forgotten when the server
 * stops. At most FD_MAX_SESSIONS live at once (the oldest is dropped for a new one).
 * fd_sessions_t is safe from any thread (a mutex).
 */
#ifndef FRONTDESK_AUTH_H
#define FRONTDESK_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "replica.h"

#define FD_SESSION_IDLE_S (60 * 60)      /* an hour without a request */
#define FD_SESSION_MAX_S  (12 * 60 * 60) /* a long shift */
#define FD_MAX_SESSIONS   64
/* A session token as text (43 base64url characters) with its NUL. */
#define FD_TOKEN_SIZE     44
#define FD_MIN_PIN        4
#define FD_MAX_PIN        64

typedef struct fd_sessions fd_sessions_t;

/** Make an empty session table. @return 0; -ENOMEM. */
int fd_sessions_new(fd_sessions_t **out);

/** Free the table (its tokens are wiped) and set *@p sp to NULL. Accepts NULL. */
void fd_sessions_free(fd_sessions_t **sp);

/**
 * Open a session for @p name and write its token to @p token.
 * @return 0; -EINVAL for a name longer than REP_MAX_USER.
 */
int fd_session_open(fd_sessions_t *s, const char *name, char token[FD_TOKEN_SIZE]);

/**
 * The name signed in with @p token, copied to @p name (REP_MAX_USER + 1 bytes); the session's
 * idle clock restarts.
 * @return 0; REP_ENOTFOUND for an unknown or expired token (an expired one is dropped).
 */
int fd_session_find(fd_sessions_t *s, const char *token, char name[REP_MAX_USER + 1]);

/** End the session of @p token, if any. */
void fd_session_close(fd_sessions_t *s, const char *token);

/*
 * Wrong PINs: after FD_PIN_TRIES wrong PINs for one name in a row, that name may not try again
 * for FD_PIN_LOCK_S seconds (doubling with each further wrong PIN, up to 15 minutes), on this
 * server; a right PIN clears the count. Names are remembered in a table of FD_MAX_SESSIONS
 * entries (the oldest is forgotten for a new one).
 */
#define FD_PIN_TRIES  5
#define FD_PIN_LOCK_S 30

/** Seconds before @p name may try a PIN again; 0: now. */
unsigned fd_pin_wait(fd_sessions_t *s, const char *name);

/** Count a wrong (@p right 0) or right (1) PIN for @p name. */
void fd_pin_result(fd_sessions_t *s, const char *name, int right);

/**
 * Check @p pin against the hash in staff/<name>'s "pin" field (crypto_pwhash_str_verify).
 * Takes about as long for an unknown name as for a wrong PIN.
 * @return 0 when it matches; -EACCES for an unknown name, a record without a PIN or a wrong
 *         PIN; -EINVAL for a malformed name; another negative code when the replica fails.
 */
int fd_staff_verify(rep_replica_t *r, const char *name, const char *pin);

/**
 * Add or update staff/<name>: its "pin" (hashed with crypto_pwhash_str, Argon2id, interactive
 * limits) and, when @p role is not NULL, its "role"; one change written as @p user.
 * @return 0; -EINVAL for a name that is not a record id (1..REP_MAX_USER bytes, no '/'), or
 *         a PIN outside FD_MIN_PIN..FD_MAX_PIN bytes; -ENOMEM; a code of rep_txn_commit().
 */
int fd_staff_set(rep_replica_t *r, const char *user, const char *name, const char *pin,
                 const char *role);

#endif /* FRONTDESK_AUTH_H */
