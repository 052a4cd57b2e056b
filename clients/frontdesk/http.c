/*
 * http.c — the front desk's web server (http.h): libmicrohttpd on its own thread, the checks
 * every request passes, the embedded page (assets.h), and the JSON API (api.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "api.h"
#include "assets.h"
#include "auth.h"
#include "http.h"

#define COOKIE_NAME  "fd_session"
#define TOKEN_HEADER "X-Frontdesk-Token"
#define TOKEN_MARK   "@FD_TOKEN@"

struct fd_http {
    struct MHD_Daemon *d;
    int fd; /* the listening socket (MHD_stop_daemon closes it) */
    fd_api_ctx_t api;
    fd_sessions_t *sessions;
    fd_status_memo_t memo;
    int auth_read;
    int any_ip;         /* bound to 0.0.0.0: any IPv4 literal is a right Host */
    char host[64];      /* "ADDR:PORT" as bound */
    char localhost[32]; /* "localhost:PORT" when bound to loopback, else "" */
    char port[8];
    char url[80];
    char token[FD_TOKEN_SIZE]; /* the page token, X-Frontdesk-Token */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
};

/* A request being received. */
typedef struct request {
    char *body;
    size_t len, cap;
    int too_big;
} request_t;

static void logf_(fd_http_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
logf_(fd_http_t *h, const char *fmt, ...)
{
    char line[300];
    va_list ap;
    if (h->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->log(h->log_ctx, line);
}

/* ---- answers ----------------------------------------------------------------------------------
 */

static void
common_headers(struct MHD_Response *resp, const char *type)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                            "form-action 'none'");
}

/* Queue @p body (taken, freed here) as JSON with @p status; @p cookie as api.h says. */
static enum MHD_Result
send_json(struct MHD_Connection *conn, unsigned status, json_t *body, const char *cookie)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    common_headers(resp, "application/json; charset=utf-8");
    if (cookie != NULL && strcmp(cookie, "-") == 0) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE,
                                COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    } else if (cookie != NULL && cookie[0] != '\0') {
        char c[FD_TOKEN_SIZE + 100];
        snprintf(c, sizeof c, COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d",
                 cookie, FD_SESSION_MAX_S);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, c);
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
send_error(fd_http_t *h, struct MHD_Connection *conn, unsigned status, const char *msg)
{
    logf_(h, "http: %u %s", status, msg);
    return send_json(conn, status, json_pack("{s:s}", "error", msg), NULL);
}

/* An asset; the page gets the token in place of its mark. */
static enum MHD_Result
send_asset(fd_http_t *h, struct MHD_Connection *conn, const fd_asset_t *a)
{
    struct MHD_Response *resp;
    const char *mark = strstr((const char *)a->data, TOKEN_MARK);

    if (mark != NULL) {
        size_t pre = (size_t)(mark - (const char *)a->data), tl = strlen(h->token);
        size_t n = a->len - strlen(TOKEN_MARK) + tl;
        char *page = malloc(n);
        if (page == NULL)
            return MHD_NO;
        memcpy(page, a->data, pre);
        memcpy(page + pre, h->token, tl);
        memcpy(page + pre + tl, mark + strlen(TOKEN_MARK), a->len - pre - strlen(TOKEN_MARK));
        resp = MHD_create_response_from_buffer(n, page, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL)
            free(page);
    } else {
        resp = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;
    common_headers(resp, a->type);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- checks -----------------------------------------------------------------------------------
 */

/* Is @p host (the Host header) this server's address? */
static int
host_ok(const fd_http_t *h, const char *host)
{
    if (host == NULL)
        return 0;
    if (strcasecmp(host, h->host) == 0 || (h->localhost[0] && strcasecmp(host, h->localhost) == 0))
        return 1;
    if (h->any_ip) { /* an IPv4 literal with our port: no name, so nothing to rebind */
        const char *colon = strrchr(host, ':');
        char ip[INET_ADDRSTRLEN];
        struct in_addr a;
        size_t n = colon ? (size_t)(colon - host) : 0;
        if (colon == NULL || n == 0 || n >= sizeof ip || strcmp(colon + 1, h->port) != 0)
            return 0;
        memcpy(ip, host, n);
        ip[n] = '\0';
        return inet_pton(AF_INET, ip, &a) == 1;
    }
    return 0;
}

static const char *
header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static const char *
query_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- the request handler ----------------------------------------------------------------------
 */

static enum MHD_Result
serve_api(fd_http_t *h, struct MHD_Connection *conn, const char *url, const char *method,
          const request_t *rq)
{
    const char *token = header(conn, TOKEN_HEADER);
    if (token == NULL || strlen(token) != strlen(h->token) ||
        sodium_memcmp(token, h->token, strlen(h->token)) != 0)
        return send_error(h, conn, 403, "missing or wrong " TOKEN_HEADER " (load the page at /)");
    if (strcmp(method, "POST") == 0) {
        const char *origin = header(conn, "Origin"), *host = header(conn, "Host");
        char want[80];
        snprintf(want, sizeof want, "http://%s", host ? host : "");
        if (origin != NULL && strcasecmp(origin, want) != 0)
            return send_error(h, conn, 403, "cross-origin request refused");
    }
    fd_request_t q = {.method = method,
                      .path = url + 4,
                      .arg = query_arg,
                      .arg_ctx = conn,
                      .body = rq->body ? rq->body : "",
                      .len = rq->len};
    char user[REP_MAX_USER + 1];
    const char *session = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE_NAME);
    if (session != NULL && fd_session_find(h->sessions, session, user) == 0) {
        q.user = user;
        q.session = session;
    } else if (session != NULL) {
        q.session = session; /* expired or unknown: signout clears it */
    }
    if (h->auth_read && q.user == NULL && strcmp(method, "GET") == 0 && strcmp(q.path, "/me") != 0)
        return send_error(h, conn, 401, "sign in to read (this server requires it)");
    fd_response_t out;
    memset(&out, 0, sizeof out);
    fd_api_handle(&h->api, &q, &out);
    if (out.status >= 400) {
        json_t *e = json_object_get(out.body, "error");
        logf_(h, "http: %s %.100s: %u %.150s", method, url, out.status,
              e ? json_string_value(e) : "");
    }
    return send_json(conn, out.status, out.body, out.cookie);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *data, size_t *size, void **state)
{
    fd_http_t *h = cls;
    request_t *rq = *state;
    (void)version;

    if (rq == NULL) { /* the headers: check what can be checked before any body */
        int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if ((rq = calloc(1, sizeof *rq)) == NULL)
            return MHD_NO;
        *state = rq;
        if (!host_ok(h, header(conn, "Host")))
            return send_error(h, conn, 421,
                              "wrong Host header: this server answers only to its "
                              "own address");
        if (!get && strcmp(method, "POST") != 0)
            return send_error(h, conn, 405, "method not allowed");
        const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > FD_MAX_BODY)
            return send_error(h, conn, 413, "request body too large (at most 64 KiB)");
        return MHD_YES;
    }
    if (*size != 0) { /* a piece of the body */
        if (rq->too_big || rq->len + *size > FD_MAX_BODY) {
            rq->too_big = 1;
        } else {
            if (rq->len + *size > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 1024;
                while (cap < rq->len + *size)
                    cap *= 2;
                char *p = realloc(rq->body, cap);
                if (p == NULL)
                    return MHD_NO;
                rq->body = p;
                rq->cap = cap;
            }
            memcpy(rq->body + rq->len, data, *size);
            rq->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return send_error(h, conn, 413, "request body too large (at most 64 KiB)");
    if (strncmp(url, "/api/", 5) == 0)
        return serve_api(h, conn, url, method, rq);
    if (strcmp(method, "POST") == 0)
        return send_error(h, conn, 405, "method not allowed");
    for (size_t i = 0; i < fd_nassets; i++) {
        if (strcmp(url, fd_assets[i].path) == 0 ||
            (strcmp(url, "/") == 0 && strcmp(fd_assets[i].path, "/index.html") == 0))
            return send_asset(h, conn, &fd_assets[i]);
    }
    if (strcmp(url, "/favicon.ico") == 0) { /* browsers ask; there is none */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    return send_error(h, conn, 404, "no such page");
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **state,
             enum MHD_RequestTerminationCode why)
{
    request_t *rq = *state;
    (void)cls;
    (void)conn;
    (void)why;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
        *state = NULL;
    }
}

/* ---- start and stop ---------------------------------------------------------------------------
 */

/* "ADDR:PORT" or "PORT" into @p sin. */
static int
parse_bind(const char *bind, struct sockaddr_in *sin)
{
    const char *colon = strrchr(bind, ':');
    const char *port = colon ? colon + 1 : bind;
    char ip[INET_ADDRSTRLEN] = "127.0.0.1";
    char *end = NULL;

    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    if (colon != NULL) {
        size_t n = (size_t)(colon - bind);
        if (n == 0 || n >= sizeof ip)
            return -EINVAL;
        memcpy(ip, bind, n);
        ip[n] = '\0';
        if (strcmp(ip, "localhost") == 0)
            strcpy(ip, "127.0.0.1");
    }
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (errno || end == port || *end != '\0' || p > 65535 || port[0] == '-' || port[0] == '+')
        return -EINVAL;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
        return -EINVAL;
    sin->sin_port = htons((uint16_t)p);
    return 0;
}

int
fd_http_start(rep_replica_t *r, rep_node_t *node, const fd_http_opts_t *opts, fd_http_t **out)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    fd_http_t *h;
    int rc, one = 1;
    char ip[INET_ADDRSTRLEN];

    *out = NULL;
    if (opts == NULL || opts->bind == NULL || (rc = parse_bind(opts->bind, &sin)) < 0)
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    if ((h = calloc(1, sizeof *h)) == NULL)
        return -ENOMEM;
    h->fd = -1;
    pthread_mutex_init(&h->memo.lock, NULL);
    if ((rc = fd_sessions_new(&h->sessions)) < 0)
        goto fail;
    h->api.r = r;
    h->api.node = node;
    h->api.sessions = h->sessions;
    h->api.memo = &h->memo;
    h->auth_read = opts->auth_read;
    h->log = opts->log;
    h->log_ctx = opts->log_ctx;
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(h->token, sizeof h->token, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if ((h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        rc = -errno;
        goto fail;
    }
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(h->fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(h->fd, 64) < 0 ||
        getsockname(h->fd, (struct sockaddr *)&sin, &slen) < 0) {
        rc = -errno;
        goto fail;
    }
    inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
    snprintf(h->port, sizeof h->port, "%u", (unsigned)ntohs(sin.sin_port));
    snprintf(h->host, sizeof h->host, "%s:%s", ip, h->port);
    if ((ntohl(sin.sin_addr.s_addr) >> 24) == 127)
        snprintf(h->localhost, sizeof h->localhost, "localhost:%s", h->port);
    h->any_ip = sin.sin_addr.s_addr == htonl(INADDR_ANY);
    snprintf(h->url, sizeof h->url, "http://%s/", h->host);
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, h,
        MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)32,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(128 * 1024), MHD_OPTION_END);
    if (h->d == NULL) {
        rc = -EIO;
        goto fail;
    }
    logf_(h, "front desk at %s", h->url);
    *out = h;
    return 0;
fail:
    if (h->fd >= 0)
        close(h->fd);
    pthread_mutex_destroy(&h->memo.lock);
    fd_sessions_free(&h->sessions);
    free(h);
    return rc;
}

const char *
fd_http_url(const fd_http_t *h)
{
    return h->url;
}

void
fd_http_stop(fd_http_t **hp)
{
    if (hp == NULL || *hp == NULL)
        return;
    fd_http_t *h = *hp;
    MHD_stop_daemon(h->d); /* closes the listening socket too */
    pthread_mutex_destroy(&h->memo.lock);
    fd_sessions_free(&h->sessions);
    sodium_memzero(h->token, sizeof h->token);
    free(h);
    *hp = NULL;
}
