/*
 * httpsink.c — a small HTTP endpoint for tests/connector.sh: the cloud EMR's stand-in.
 *
 *   httpsink --port-file FILE --out FILE --log FILE [--fail-file FILE] [--seconds N]
 *
 * Listens on 127.0.0.1, on a port the kernel picks (written to --port-file once listening).
 * Every POST's body is appended to --out and answered 200, unless --fail-file exists at that
 * moment: then the body is dropped and the answer is 500 (the EMR is down). Each request adds a
 * line "METHOD PATH BYTES STATUS CONTENT-TYPE" to --log. Other methods get 405. Exits on SIGTERM or SIGINT,
 * or after --seconds (default 120), so a test that forgets it does not leave it running.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_BODY (64u << 20)

typedef struct sink {
    const char *out, *log, *fail_file;
} sink_t;

typedef struct request {
    char *body;
    size_t len, cap;
    int too_big;
} request_t;

static int
append(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "ab");
    if (!f)
        return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *data, size_t *size, void **state)
{
    sink_t *s = cls;
    request_t *rq = *state;
    (void)version;
    if (!rq) { /* first call: headers only */
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *state = rq;
        return MHD_YES;
    }
    if (*size) { /* a piece of the body */
        if (rq->len + *size > MAX_BODY) {
            rq->too_big = 1;
        } else {
            if (rq->len + *size > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 4096;
                while (cap < rq->len + *size)
                    cap *= 2;
                char *b = realloc(rq->body, cap);
                if (!b)
                    return MHD_NO;
                rq->body = b;
                rq->cap = cap;
            }
            memcpy(rq->body + rq->len, data, *size);
            rq->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    unsigned status;
    if (strcmp(method, "POST") != 0)
        status = 405;
    else if (rq->too_big)
        status = 413;
    else if (s->fail_file && access(s->fail_file, F_OK) == 0)
        status = 500;
    else
        status = append(s->out, rq->body ? rq->body : "", rq->len) == 0 ? 200 : 500;
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    char line[512];
    int n = snprintf(line, sizeof line, "%s %.200s %zu %u %.100s\n", method, url, rq->len, status,
                     type ? type : "-");
    if (n > 0)
        (void)append(s->log, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    return answer(conn, status, status == 200 ? "ok\n" : "refused\n");
}

static void
on_done(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode tc)
{
    (void)cls;
    (void)conn;
    (void)tc;
    request_t *rq = *state;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *state = NULL;
}

static int
usage(void)
{
    fprintf(stderr, "usage: httpsink --port-file FILE --out FILE --log FILE [--fail-file FILE] "
                    "[--seconds N]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    sink_t s = {0};
    const char *port_file = NULL;
    long seconds = 120;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            s.out = argv[i + 1];
        else if (strcmp(argv[i], "--log") == 0)
            s.log = argv[i + 1];
        else if (strcmp(argv[i], "--fail-file") == 0)
            s.fail_file = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtol(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (!port_file || !s.out || !s.log || argc % 2 == 0 || seconds <= 0)
        return usage();

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before MHD's thread starts: it inherits it */

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, &s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_done,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "httpsink: cannot listen on 127.0.0.1\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        fprintf(stderr, "httpsink: no port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    char tmp[4096], num[16];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    int n = snprintf(num, sizeof num, "%u\n", (unsigned)info->port);
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(num, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0 ||
        rename(tmp, port_file) != 0) {
        fprintf(stderr, "httpsink: %s: %s\n", port_file, strerror(errno));
        MHD_stop_daemon(d);
        return 1;
    }
    struct timespec limit = {seconds, 0};
    int sig = sigtimedwait(&sigs, NULL, &limit);
    MHD_stop_daemon(d);
    return sig < 0 && errno == EAGAIN ? 3 : 0; /* 3: nobody stopped it in time */
}
