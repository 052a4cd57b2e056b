/*
 * http.h — the front desk's web server: the page and the JSON API (api.h) over HTTP, in the
 * process that runs the node (`replica serve --http ADDR:PORT`), on libmicrohttpd's own
 * thread.
 *
 * What a request must pass before the API sees it (README.md, "The front desk: security"):
 *   - its Host header names the bound address and port (or localhost:PORT when bound to a
 *     loopback address; any IPv4 address:PORT when bound to 0.0.0.0), else 421: a page of
 *     another site whose name was made to resolve to this machine (DNS rebinding) is refused;
 *   - under /api/: the X-Frontdesk-Token header holds this server's random token (it is in the
 *     page at /, which another site's page cannot read), else 403; a POST whose Origin header
 *     is present and is not this server's is 403;
 *   - a body of at most FD_MAX_BODY bytes (413), on GET or POST only (405);
 *   - writes need a session cookie from POST /api/signin (401); with auth_read, reads too.
 */
#ifndef FRONTDESK_HTTP_H
#define FRONTDESK_HTTP_H

#include "replica.h"

#define FD_MAX_BODY (64u * 1024u)

typedef struct fd_http fd_http_t;

/** Options for fd_http_start(). */
typedef struct fd_http_opts {
    const char *bind; /**< "ADDR:PORT" (IPv4; PORT 0: any free port), or "PORT" for
                           127.0.0.1:PORT */
    int auth_read;    /**< 1: reading needs a signed-in user too */
    /** One line per event (started, refused requests); NULL for none. Called from the
        server's thread. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} fd_http_opts_t;

/**
 * Start serving the front desk of replica @p r. @p r (and @p node, if not NULL) must stay
 * open until fd_http_stop().
 * @param[out] out  the server, or NULL on failure
 * @return 0; -EINVAL for a malformed bind address; -EADDRINUSE (or another -errno) when it
 *         cannot listen; -ENOMEM.
 */
int fd_http_start(rep_replica_t *r, rep_node_t *node, const fd_http_opts_t *opts, fd_http_t **out);

/** The URL it serves, "http://ADDR:PORT/" (with the port bound). Valid until stop. */
const char *fd_http_url(const fd_http_t *h);

/** Stop serving (requests in progress finish), forget every session, set *@p hp to NULL.
    Accepts NULL. */
void fd_http_stop(fd_http_t **hp);

#endif /* FRONTDESK_HTTP_H */
