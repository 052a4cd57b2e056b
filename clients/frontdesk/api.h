/*
 * api.h — the front desk's JSON API: the routes of README.md ("The front desk: JSON API")
 * over the library's public API, on the local replica only.
 *
 * The HTTP layer (http.c) has already checked the Host header, the page token, the origin
 * and the body's size, and found the signed-in user; this module parses the body, reads and
 * writes the replica, and says what to answer. It never needs another machine to answer.
 *
 * Record conventions (examples/frontdesk-records.md): patients/<id>, appts/<date>-<time>-<id>,
 * msgs/<id>, refills/<id>, staff/<name>.
 */
#ifndef FRONTDESK_API_H
#define FRONTDESK_API_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "replica.h"

/** What GET /api/status remembers between calls (see get_status in api.c); zeroed, with its
    mutex initialized, by the owner. */
typedef struct fd_status_memo {
    pthread_mutex_t lock;
    int synced;          /**< 1 once a connected peer lacked nothing of this replica's */
    uint64_t synced_seq; /**< this device's change count then: those are elsewhere too */
} fd_status_memo_t;

/** What the API works on; borrowed for the server's life. */
typedef struct fd_api_ctx {
    rep_replica_t *r;
    rep_node_t *node; /**< the node of this process, or NULL (status then says so) */
    fd_sessions_t *sessions;
    fd_status_memo_t *memo;
} fd_api_ctx_t;

/** One request, as the HTTP layer hands it over (all borrowed for the call). */
typedef struct fd_request {
    const char *method; /**< "GET" or "POST" */
    const char *path;   /**< the path after "/api", e.g. "/today" */
    /** The value of query parameter @p name, or NULL. */
    const char *(*arg)(void *ctx, const char *name);
    void *arg_ctx;
    const char *body; /**< POST: the body (not NUL-terminated), may be empty */
    size_t len;
    const char *user;    /**< the signed-in staff name, or NULL */
    const char *session; /**< the session token of the request's cookie, or NULL */
} fd_request_t;

/** The answer. */
typedef struct fd_response {
    unsigned status; /**< HTTP status */
    json_t *body;    /**< a JSON object, owned (json_decref()) */
    /** Set-Cookie: a new session's token (signin), "-" to clear the cookie (signout), or "" */
    char cookie[FD_TOKEN_SIZE];
} fd_response_t;

/**
 * Answer @p q into @p out (which the caller zero-initializes). Every outcome is an answer: a
 * 2xx with the result, or a 4xx/5xx whose body is {"error": "what went wrong"}. Writes need
 * @p q->user (401 without). Safe from any thread.
 */
void fd_api_handle(const fd_api_ctx_t *c, const fd_request_t *q, fd_response_t *out);

/** A JSON error body {"error": msg} with @p status, into @p out. */
void fd_api_error(fd_response_t *out, unsigned status, const char *msg);

#endif /* FRONTDESK_API_H */
