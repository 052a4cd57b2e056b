/*
 * replica.c — the `replica` command: look at and edit a replica directory from a shell.
 *
 * A thin client. Everything goes through the public header replica.h; JSON output goes through
 * jansson. Each run opens the replica, does one thing and closes it. Output for people is
 * aligned text; --json gives the shapes documented in docs/cli.md.
 *
 * Exit status: 0 on success; 1 when the operation failed (no such record, damaged file, I/O);
 * 2 for a usage error (unknown command or option, malformed argument). Every failure prints
 * exactly one line "replica: <what went wrong>" on stderr.
 *
 * Nothing here is global and mutable: the parsed command line travels in a cli_t.
 */
/* POSIX functions come from -D_GNU_SOURCE on the command line (configure.ac). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "replica.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

#define DEFAULT_DIR "./replica-data"

/* Widest column we pad to; longer cells simply push the rest of the line right. */
#define MAX_PAD 32

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* ---- Errors ---------------------------------------------------------------------------------- */

static void vline(const char *prefix, const char *fmt, va_list ap) CLI_PRINTF(2, 0);
static int fail(int code, const char *fmt, ...) CLI_PRINTF(2, 3);
static void warn(const char *fmt, ...) CLI_PRINTF(1, 2);
static void note(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Print one line on stderr, control characters (C0, DEL, C1) replaced so it stays one line. */
static void
vline(const char *prefix, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof msg, fmt, ap);
    for (unsigned char *p = (unsigned char *)msg; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            p[0] = p[1] = '?';
    }
    fprintf(stderr, "replica: %s%s\n", prefix, msg);
}

/* Report a failure; returns @p code so callers can write `return fail(...)`. */
static int
fail(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline("", fmt, ap);
    va_end(ap);
    return code;
}

static void
warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline("warning: ", fmt, ap);
    va_end(ap);
}

/* Exit status for a library code returned about something the user typed. */
static int
arg_code(int rc)
{
    return (rc == -EINVAL || rc == REP_ETOOBIG) ? CLI_USAGE : CLI_FAIL;
}

static void
note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline("note: ", fmt, ap);
    va_end(ap);
}

/* ---- A growable string ----------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    int oom;
} sbuf_t;

static void
sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_puts(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Hand over the string (the caller frees it), or NULL if memory ran out. */
static char *
sb_take(sbuf_t *b)
{
    char *p = b->p;

    if (b->oom) {
        free(p);
        p = NULL;
    } else if (p == NULL) {
        p = calloc(1, 1);
    }
    memset(b, 0, sizeof *b);
    return p;
}

/* ---- Formatting ------------------------------------------------------------------------------ */

static const char hexdigits[] = "0123456789abcdef";

static void
sb_hex(sbuf_t *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char two[2] = {hexdigits[p[i] >> 4], hexdigits[p[i] & 15]};
        sb_add(b, two, 2);
    }
}

static int
hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode hex digits (an optional "0x" prefix is skipped). *out is the caller's (free());
 * returns 0, -EINVAL for bad digits or an odd count, -ENOMEM.
 */
static int
hex_decode(const char *s, uint8_t **out, size_t *n)
{
    size_t len;
    uint8_t *p;

    *out = NULL;
    *n = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    len = strlen(s);
    if (len % 2 != 0)
        return -EINVAL;
    p = malloc(len / 2 + 1);
    if (p == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(p);
            return -EINVAL;
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = p;
    *n = len / 2;
    return 0;
}

/* The shortest "%g" form that reads back as @p d, always with a '.' or exponent. */
static void
format_double(double d, char *buf, size_t n)
{
    if (isnan(d)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, n, d < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strpbrk(buf, ".e") == NULL && strlen(buf) + 3 <= n)
        strcat(buf, ".0");
}

/* ISO-8601 UTC time of a hybrid logical clock value (its top 48 bits are ms since the epoch). */
static void
format_time(uint64_t hlc, char *buf, size_t n)
{
    uint64_t ms = hlc >> 16;
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    size_t len;

    if (gmtime_r(&s, &tm) == NULL || (len = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(buf, n, "?");
        return;
    }
    snprintf(buf + len, n - len, ".%03uZ", (unsigned)(ms % 1000));
}

static void
format_office(const uint8_t id[REP_OFFICE_ID_BYTES], char out[2 * REP_OFFICE_ID_BYTES + 1])
{
    for (size_t i = 0; i < REP_OFFICE_ID_BYTES; i++) {
        out[2 * i] = hexdigits[id[i] >> 4];
        out[2 * i + 1] = hexdigits[id[i] & 15];
    }
    out[2 * REP_OFFICE_ID_BYTES] = '\0';
}

/* How a value is shown to people. */
typedef enum style {
    STYLE_CELL, /* in a table: control characters escaped */
    STYLE_WORD  /* in "field=value" lists: also quoted when it holds spaces, '"' or '=' */
} style_t;

static int
needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= ' ' || ch == '"' || ch == '\\' || ch == '=' || ch == 0x7f)
            return 1;
    }
    return 0;
}

static void
sb_text(sbuf_t *b, const char *s, size_t n, style_t style)
{
    int quote = style == STYLE_WORD && needs_quotes(s, n);

    if (quote)
        sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];

        if (ch == '\n') {
            sb_add(b, "\\n", 2);
        } else if (ch == '\t') {
            sb_add(b, "\\t", 2);
        } else if (ch == '\r') {
            sb_add(b, "\\r", 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            sb_add(b, esc, 4);
        } else if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)s[i + 1]);
            sb_add(b, esc, 6);
            i++;
        } else if (quote && (ch == '"' || ch == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sb_add(b, esc, 2);
        } else {
            sb_add(b, s + i, 1);
        }
    }
    if (quote)
        sb_add(b, "\"", 1);
}

/*
 * A value as people read it: strings as text, null as "(null)", bytes as 0x + hex, doubles in
 * their shortest exact form. Returns a string the caller frees, or NULL if memory ran out.
 */
static char *
value_str(const rep_value_t *v, style_t style)
{
    sbuf_t b = {0};
    char num[64];

    switch (v->type) {
    case REP_NULL:
        sb_puts(&b, "(null)");
        break;
    case REP_BOOL:
        sb_puts(&b, v->u.b ? "true" : "false");
        break;
    case REP_INT:
        snprintf(num, sizeof num, "%" PRId64, v->u.i);
        sb_puts(&b, num);
        break;
    case REP_DOUBLE:
        format_double(v->u.d, num, sizeof num);
        sb_puts(&b, num);
        break;
    case REP_STRING:
        sb_text(&b, v->u.s.ptr ? v->u.s.ptr : "", v->u.s.ptr ? v->u.s.len : 0, style);
        break;
    case REP_BYTES:
        sb_puts(&b, "0x");
        sb_hex(&b, (const uint8_t *)v->u.s.ptr, v->u.s.ptr ? v->u.s.len : 0);
        break;
    default:
        sb_puts(&b, "(unknown type)");
        break;
    }
    return sb_take(&b);
}

/* Print a value for scripts: a string exactly as stored, anything else as value_str(). */
static int
print_raw_value(const rep_value_t *v)
{
    char *s;

    if (v->type == REP_STRING) {
        if (v->u.s.ptr != NULL)
            fwrite(v->u.s.ptr, 1, v->u.s.len, stdout);
        putchar('\n');
        return 0;
    }
    s = value_str(v, STYLE_CELL);
    if (s == NULL)
        return -ENOMEM;
    printf("%s\n", s);
    free(s);
    return 0;
}

/*
 * Text that came from the replica (names, users, values) is shown with its control characters
 * escaped (C0, DEL and the C1 range U+0080..U+009F), so it can neither break the layout nor
 * drive the terminal. Writes @p s escaped to @p f (or only measures when @p f is NULL) and
 * returns its display width in UTF-8 code points (good enough for a table).
 */
static size_t
safe_text(FILE *f, const char *s)
{
    size_t w = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        unsigned char next = (unsigned char)s[i + 1];
        char esc[8];

        if (ch == '\n' || ch == '\t' || ch == '\r') {
            snprintf(esc, sizeof esc, "\\%c", ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r');
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
        } else if (ch == 0xc2 && next >= 0x80 && next <= 0x9f) {
            snprintf(esc, sizeof esc, "\\u%04x", next);
            i++;
        } else {
            if (f != NULL)
                putc(ch, f);
            if ((ch & 0xc0) != 0x80)
                w++;
            continue;
        }
        if (f != NULL)
            fputs(esc, f);
        w += strlen(esc);
    }
    return w;
}

static size_t
text_width(const char *s)
{
    return safe_text(NULL, s);
}

static void
put_safe(const char *s)
{
    safe_text(stdout, s);
}

/* Print @p s (escaped) left-aligned in a column @p width wide. */
static void
print_padded(const char *s, size_t width)
{
    size_t w = safe_text(stdout, s);

    for (; w < width; w++)
        putchar(' ');
}

static const char *
kind_name(rep_kind_t kind)
{
    switch (kind) {
    case REP_KIND_REGISTER:
        return "register";
    case REP_KIND_COUNTER:
        return "counter";
    case REP_KIND_SET:
        return "set";
    case REP_KIND_LOG:
        return "log";
    default:
        return "unknown";
    }
}

static const char *
or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static const char *
user_name(const char *s)
{
    return (s != NULL && s[0] != '\0') ? s : "(unknown)";
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/*
 * Builders return a new reference or NULL when memory ran out. json_object_set_new() and
 * json_array_append_new() fail cleanly on a NULL value, so a failure is collected and checked
 * once at the end of each builder.
 */
static int
jset(json_t *obj, const char *key, json_t *val)
{
    return json_object_set_new(obj, key, val) == 0 ? 0 : 1;
}

static int
jpush(json_t *arr, json_t *val)
{
    return json_array_append_new(arr, val) == 0 ? 0 : 1;
}

static json_t *
json_u64(uint64_t v)
{
    char num[32];

    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    snprintf(num, sizeof num, "%" PRIu64, v);
    return json_string(num);
}

static json_t *
json_hex64(uint64_t v)
{
    char hex[17];

    snprintf(hex, sizeof hex, "%016" PRIx64, v);
    return json_string(hex);
}

static json_t *
json_time(uint64_t hlc)
{
    char buf[48];

    format_time(hlc, buf, sizeof buf);
    return json_string(buf);
}

static json_t *
json_str(const char *s)
{
    return json_string(or_empty(s));
}

static json_t *
json_bytes(const void *p, size_t n)
{
    sbuf_t b = {0};
    char *hex;
    json_t *o;

    sb_hex(&b, p, n);
    hex = sb_take(&b);
    if (hex == NULL)
        return NULL;
    o = json_object();
    if (jset(o, "bytes", json_string(hex)) != 0) {
        json_decref(o);
        o = NULL;
    }
    free(hex);
    return o;
}

/* null, true/false, integer, real, string; bytes as {"bytes": hex}; a non-finite double
 * (which JSON cannot hold) as {"double": "nan"|"inf"|"-inf"}. */
static json_t *
json_value(const rep_value_t *v)
{
    char num[16];
    json_t *o;

    switch (v->type) {
    case REP_NULL:
        return json_null();
    case REP_BOOL:
        return json_boolean(v->u.b);
    case REP_INT:
        return json_integer((json_int_t)v->u.i);
    case REP_DOUBLE:
        if (isfinite(v->u.d))
            return json_real(v->u.d);
        format_double(v->u.d, num, sizeof num);
        o = json_object();
        if (jset(o, "double", json_string(num)) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    case REP_STRING:
        if (v->u.s.ptr == NULL)
            return json_string("");
        o = json_stringn(v->u.s.ptr, v->u.s.len);
        /* The library keeps strings UTF-8; should one not be, show its bytes, never fail. */
        return o != NULL ? o : json_bytes(v->u.s.ptr, v->u.s.len);
    case REP_BYTES:
        return json_bytes(v->u.s.ptr, v->u.s.ptr ? v->u.s.len : 0);
    default:
        return json_null();
    }
}

/* {"kind":..,"value":..,"conflict":..,"siblings":..} */
static json_t *
json_field(const rep_field_t *f)
{
    json_t *jf = json_object();
    int bad = 0;

    bad |= jset(jf, "kind", json_string(kind_name(f->kind)));
    bad |= jset(jf, "value", json_value(&f->value));
    bad |= jset(jf, "conflict", json_boolean(f->siblings > 1));
    bad |= jset(jf, "siblings", json_integer(f->siblings));
    if (bad) {
        json_decref(jf);
        return NULL;
    }
    return jf;
}

/*
 * {"key":..,"fields":{name:<json_field>},"delete_conflict":..}
 * A field is keyed by (name, kind): should one name come with two kinds (written concurrently
 * by two devices), the later one is keyed "name:kind" so neither hides the other.
 */
static json_t *
json_record(const rep_record_t *rec)
{
    json_t *o = json_object();
    json_t *fields = json_object();
    int bad = 0;

    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i];
        const char *name = or_empty(f->name);
        sbuf_t b = {0};
        char *alt = NULL;

        if (json_object_get(fields, name) != NULL) {
            sb_puts(&b, name);
            sb_puts(&b, ":");
            sb_puts(&b, kind_name(f->kind));
            alt = sb_take(&b);
            if (alt == NULL) {
                bad = 1;
                break;
            }
            name = alt;
        }
        bad |= jset(fields, name, json_field(f));
        free(alt);
    }
    bad |= jset(o, "key", json_str(rec->key));
    bad |= jset(o, "fields", fields);
    bad |= jset(o, "delete_conflict", json_boolean(rec->delete_conflict));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Print a document on stdout and release it. A NULL document means memory ran out. */
static int
json_emit(json_t *doc)
{
    int rc;

    if (doc == NULL)
        return fail(CLI_FAIL, "out of memory building the JSON output");
    rc = json_dumpf(doc, stdout, JSON_INDENT(2));
    json_decref(doc);
    if (rc != 0)
        return fail(CLI_FAIL, "writing the JSON output failed");
    putchar('\n');
    return CLI_OK;
}

/* ---- Files ----------------------------------------------------------------------------------- */

/* Read a whole file. *out is the caller's (free()). Returns 0 or -errno. */
static int
read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;

    *out = NULL;
    *len = 0;
    f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    for (;;) {
        size_t got;

        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *p;

            if (ncap < cap) {
                rc = -EFBIG;
                goto fail_read;
            }
            p = realloc(buf, ncap);
            if (p == NULL) {
                rc = -ENOMEM;
                goto fail_read;
            }
            buf = p;
            cap = ncap;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                rc = errno ? -errno : -EIO;
                goto fail_read;
            }
            break;
        }
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;

fail_read:
    free(buf);
    fclose(f);
    return rc;
}

/* Flush a directory so a rename in it is durable. */
static int
sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0;

    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return -ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
    } else {
        if (fsync(fd) != 0 && errno != EINVAL)
            rc = -errno;
        close(fd);
    }
    free(dir);
    return rc;
}

/*
 * Write a file atomically: PATH.tmp is written and flushed, then renamed over PATH, so a reader
 * sees the old file or the whole new one. Returns 0 or -errno; PATH.tmp is removed on failure.
 */
static int
write_file_atomic(const char *path, const uint8_t *p, size_t n)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    int fd, rc = 0;

    if (tmp == NULL)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out_free;
    }
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out_close;
        }
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        goto out_close;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto out_unlink;
    }
    rc = sync_parent_dir(path);
    goto out_free;

out_close:
    close(fd);
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    return rc;
}

/* ---- The command line ------------------------------------------------------------------------ */

enum {
    OPT_DIR = 1u << 0,
    OPT_USER = 1u << 1,
    OPT_JSON = 1u << 2,
    OPT_PREFIX = 1u << 3,
    OPT_OFFICE = 1u << 4,
    OPT_DEVICE = 1u << 5,
    OPT_FROM = 1u << 6,
    OPT_SINCE = 1u << 7,
    OPT_OUTPUT = 1u << 8,
    OPT_HELP = 1u << 9,
    OPT_VERSION = 1u << 10
};

/* Options every command takes. */
#define OPT_GLOBAL (OPT_DIR | OPT_HELP | OPT_VERSION)

typedef struct option_def {
    const char *name; /* long name, without "--" */
    char short_name;  /* '\0' for none */
    unsigned bit;
    int has_arg;
} option_def_t;

static const option_def_t option_defs[] = {
    {"dir", '\0', OPT_DIR, 1},         {"user", '\0', OPT_USER, 1},
    {"json", '\0', OPT_JSON, 0},       {"prefix", '\0', OPT_PREFIX, 1},
    {"office", '\0', OPT_OFFICE, 1},   {"device", '\0', OPT_DEVICE, 1},
    {"from", '\0', OPT_FROM, 1},       {"since-file", '\0', OPT_SINCE, 1},
    {"output", 'o', OPT_OUTPUT, 1},    {"help", 'h', OPT_HELP, 0},
    {"version", '\0', OPT_VERSION, 0},
};

#define N_OPTION_DEFS (sizeof option_defs / sizeof option_defs[0])

/* The parsed command line. Strings point into argv. */
typedef struct cli {
    const char *dir;
    const char *user;
    const char *prefix;
    const char *office;
    const char *device;
    const char *from;
    const char *since_file;
    const char *output;
    int json;
    unsigned seen; /* OPT_* bits given */
    int npos;
    char **pos; /* positional arguments; pos[0] is the command */
} cli_t;

typedef struct command {
    const char *name;
    int (*run)(cli_t *c);
    unsigned opts; /* OPT_* bits it takes besides OPT_GLOBAL */
    int min_args;  /* positional arguments after the command name */
    int max_args;  /* -1: any number */
    const char *usage;
} command_t;

static const option_def_t *
find_long(const char *name, size_t n)
{
    for (size_t i = 0; i < N_OPTION_DEFS; i++) {
        if (strlen(option_defs[i].name) == n && memcmp(option_defs[i].name, name, n) == 0)
            return &option_defs[i];
    }
    return NULL;
}

static const option_def_t *
find_short(char ch)
{
    for (size_t i = 0; i < N_OPTION_DEFS; i++) {
        if (option_defs[i].short_name != '\0' && option_defs[i].short_name == ch)
            return &option_defs[i];
    }
    return NULL;
}

static void
cli_store(cli_t *c, unsigned bit, const char *val)
{
    switch (bit) {
    case OPT_DIR:
        c->dir = val;
        break;
    case OPT_USER:
        c->user = val;
        break;
    case OPT_JSON:
        c->json = 1;
        break;
    case OPT_PREFIX:
        c->prefix = val;
        break;
    case OPT_OFFICE:
        c->office = val;
        break;
    case OPT_DEVICE:
        c->device = val;
        break;
    case OPT_FROM:
        c->from = val;
        break;
    case OPT_SINCE:
        c->since_file = val;
        break;
    case OPT_OUTPUT:
        c->output = val;
        break;
    default:
        break;
    }
    c->seen |= bit;
}

/*
 * Split argv into options and positional arguments. Options may appear anywhere; "--" ends
 * them. c->pos is allocated here and freed by the caller.
 */
static int
cli_parse(cli_t *c, int argc, char **argv)
{
    int only_pos = 0;

    c->pos = calloc((size_t)argc + 1, sizeof *c->pos);
    if (c->pos == NULL)
        return fail(CLI_FAIL, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const option_def_t *o;
        const char *val = NULL;

        if (only_pos || a[0] != '-' || a[1] == '\0') {
            c->pos[c->npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);

            o = find_long(a + 2, n);
            if (o == NULL)
                return fail(CLI_USAGE, "unknown option '%.*s' (see replica --help)",
                            (int)(n < 120 ? n + 2 : 122), a);
            if (eq != NULL) {
                if (!o->has_arg)
                    return fail(CLI_USAGE, "option --%.120s takes no value", o->name);
                val = eq + 1;
            }
        } else {
            o = find_short(a[1]);
            if (o == NULL || (a[2] != '\0' && !o->has_arg))
                return fail(CLI_USAGE, "unknown option '%.120s' (see replica --help)", a);
            if (a[2] != '\0')
                val = a + 2;
        }
        if (o->has_arg && val == NULL) {
            if (i + 1 >= argc)
                return fail(CLI_USAGE, "option --%.120s needs a value", o->name);
            val = argv[++i];
        }
        cli_store(c, o->bit, val);
    }
    return CLI_OK;
}

/* "collection/record": a non-empty collection, a '/', a non-empty record id. */
static int
check_key(const char *key)
{
    const char *slash = strchr(key, '/');

    if (slash == NULL || slash == key || slash[1] == '\0')
        return fail(CLI_USAGE, "'%.120s': a record key is COLLECTION/RECORD, e.g. patients/8812",
                    key);
    return CLI_OK;
}

static int
open_replica(const cli_t *c, rep_replica_t **r)
{
    int rc = rep_replica_open(r, c->dir, NULL);

    if (rc == REP_ENOTREPLICA)
        return fail(CLI_FAIL, "%.120s: %.120s (create one with `replica --dir %.120s init`)",
                    c->dir, rep_strerror(rc), c->dir);
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    return CLI_OK;
}

/* A missing field or record: say which. */
static int
report_missing(rep_replica_t *r, const char *key, const char *field)
{
    rep_record_t *rec = NULL;
    int rc = rep_replica_get_record(r, key, &rec);

    rep_record_free(&rec);
    if (field != NULL && rc == 0)
        return fail(CLI_FAIL, "%.120s: no field '%.120s'", key, field);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return fail(CLI_FAIL, "%.120s: %.120s", key, rep_strerror(rc));
    return fail(CLI_FAIL, "%.120s: no such record", key);
}

/* ---- put ------------------------------------------------------------------------------------- */

/* One FIELD[:TYPE]=VALUE argument, parsed. */
typedef struct assign {
    char *field;       /* owned */
    rep_value_t value; /* a string points into argv; bytes into buf */
    uint8_t *buf;      /* owned: decoded bytes */
} assign_t;

static int
type_is(const char *t, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(t, name, n) == 0;
}

/* A number starts with a sign, a digit or '.': strtoll()/strtod() would skip white space. */
static int
starts_number(const char *s)
{
    return s[0] == '-' || s[0] == '+' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9');
}

static int
parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!starts_number(s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = (int64_t)v;
    return 0;
}

static int
parse_double(const char *s, double *out)
{
    char *end;
    double d;

    if (!starts_number(s))
        return -EINVAL;
    errno = 0;
    d = strtod(s, &end);
    if (*end != '\0')
        return -EINVAL;
    if (!isfinite(d))
        return -ERANGE;
    *out = d;
    return 0;
}

/*
 * Parse FIELD=text, FIELD:TYPE=VALUE or FIELD:null. The type is what follows the last ':'
 * before the first '='. On failure a->field may be set; the caller frees it.
 */
static int
assign_parse(const char *arg, assign_t *a)
{
    const char *eq = strchr(arg, '=');
    size_t head = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *colon = NULL;
    const char *type = "string";
    size_t flen = head, tlen = 6;
    const char *val = eq ? eq + 1 : NULL;
    int rc;

    for (size_t i = 0; i < head; i++) {
        if (arg[i] == ':')
            colon = arg + i;
    }
    if (colon != NULL) {
        flen = (size_t)(colon - arg);
        type = colon + 1;
        tlen = head - flen - 1;
    }
    if (flen == 0)
        return fail(CLI_USAGE, "'%.120s': missing field name (expected FIELD=VALUE)", arg);
    a->field = strndup(arg, flen);
    if (a->field == NULL)
        return fail(CLI_FAIL, "out of memory");

    if (type_is(type, tlen, "null")) {
        if (val != NULL && val[0] != '\0')
            return fail(CLI_USAGE, "'%.120s': a null takes no value (write %.120s:null)", arg,
                        a->field);
        a->value.type = REP_NULL;
        return CLI_OK;
    }
    if (val == NULL)
        return fail(CLI_USAGE, "'%.120s': expected FIELD=VALUE, FIELD:TYPE=VALUE or FIELD:null",
                    arg);
    if (type_is(type, tlen, "string") || type_is(type, tlen, "str")) {
        a->value.type = REP_STRING;
        a->value.u.s.ptr = val;
        a->value.u.s.len = strlen(val);
    } else if (type_is(type, tlen, "int")) {
        a->value.type = REP_INT;
        rc = parse_int64(val, &a->value.u.i);
        if (rc == -ERANGE)
            return fail(CLI_USAGE, "'%.120s': integer out of range", arg);
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': '%.120s' is not an integer", arg, val);
    } else if (type_is(type, tlen, "bool")) {
        a->value.type = REP_BOOL;
        if (strcmp(val, "true") == 0)
            a->value.u.b = 1;
        else if (strcmp(val, "false") == 0)
            a->value.u.b = 0;
        else
            return fail(CLI_USAGE, "'%.120s': a bool is true or false", arg);
    } else if (type_is(type, tlen, "double")) {
        a->value.type = REP_DOUBLE;
        rc = parse_double(val, &a->value.u.d);
        if (rc == -ERANGE)
            return fail(CLI_USAGE, "'%.120s': not a finite number", arg);
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': '%.120s' is not a number", arg, val);
    } else if (type_is(type, tlen, "bytes")) {
        size_t n;

        rc = hex_decode(val, &a->buf, &n);
        if (rc == -ENOMEM)
            return fail(CLI_FAIL, "out of memory");
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': bytes are written as an even number of hex digits",
                        arg);
        a->value.type = REP_BYTES;
        a->value.u.s.ptr = (const char *)a->buf;
        a->value.u.s.len = n;
    } else {
        return fail(CLI_USAGE,
                    "'%.120s': unknown type '%.*s' (use string, int, bool, double, null or bytes)",
                    arg, (int)tlen, type);
    }
    return CLI_OK;
}

static int
begin_txn(const cli_t *c, rep_replica_t *r, rep_txn_t **t)
{
    int rc = rep_txn_begin(r, c->user, t);

    if (rc < 0 && c->user != NULL && (rc == -EINVAL || rc == REP_ETOOBIG))
        return fail(CLI_USAGE, "--user '%.120s': %.120s", c->user, rep_strerror(rc));
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    return CLI_OK;
}

static int
cmd_put(cli_t *c)
{
    const char *key = c->pos[1];
    size_t n = (size_t)c->npos - 2;
    assign_t *as;
    rep_replica_t *r = NULL;
    rep_txn_t *t = NULL;
    uint64_t seq = 0;
    int ret, rc;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    as = calloc(n, sizeof *as);
    if (as == NULL)
        return fail(CLI_FAIL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((ret = assign_parse(c->pos[i + 2], &as[i])) != CLI_OK)
            goto out_assign;
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        goto out_assign;
    if ((ret = begin_txn(c, r, &t)) != CLI_OK)
        goto out_close;
    for (size_t i = 0; i < n; i++) {
        rc = rep_txn_set(t, key, as[i].field, &as[i].value);
        if (rc < 0) {
            ret = fail(arg_code(rc), "%.120s '%.120s': %.120s", key, as[i].field, rep_strerror(rc));
            goto out_txn;
        }
    }
    rc = rep_txn_commit(t, &seq);
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: not saved: %.120s", key, rep_strerror(rc));
        goto out_txn;
    }
    printf("saved %s (%zu field%s)\n", key, n, n == 1 ? "" : "s");
    ret = CLI_OK;

out_txn:
    rep_txn_free(&t);
out_close:
    rep_replica_close(&r);
out_assign:
    for (size_t i = 0; i < n; i++) {
        free(as[i].field);
        free(as[i].buf);
    }
    free(as);
    return ret;
}

/* ---- get ------------------------------------------------------------------------------------- */

static size_t
field_siblings(const rep_conflicts_t *cs, const char *field)
{
    for (size_t i = 0; i < cs->n; i++) {
        if (strcmp(or_empty(cs->items[i].field), field) == 0)
            return cs->items[i].n;
    }
    return 0;
}

static int
get_field(const cli_t *c, rep_replica_t *r, const char *key, const char *field)
{
    rep_value_t *v = NULL;
    rep_conflicts_t *cs = NULL;
    size_t nsib;
    int ret, rc;

    rc = rep_replica_get(r, key, field, &v);
    if (rc == REP_ENOTFOUND)
        return report_missing(r, key, field);
    if (rc < 0)
        return fail(arg_code(rc), "%.120s '%.120s': %.120s", key, field, rep_strerror(rc));
    rc = rep_replica_conflicts(r, key, &cs);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", key, rep_strerror(rc));
        goto out;
    }
    nsib = field_siblings(cs, field);
    if (c->json) {
        json_t *o = json_object();
        int bad = 0;

        bad |= jset(o, "key", json_string(key));
        bad |= jset(o, "field", json_string(field));
        bad |= jset(o, "value", json_value(v));
        bad |= jset(o, "conflict", json_boolean(nsib > 1));
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
        goto out;
    }
    if (print_raw_value(v) < 0) {
        ret = fail(CLI_FAIL, "out of memory");
        goto out;
    }
    if (nsib > 1)
        note("%.120s '%.120s' has %zu conflicting values, see `replica conflicts %.120s`", key,
             field, nsib, key);
    ret = CLI_OK;
out:
    rep_conflicts_free(&cs);
    rep_value_free(&v);
    return ret;
}

/*
 *   patients/8812
 *     name  = Ada
 *     phone = 555-0199   (conflict: 2 values, see `replica conflicts`)
 */
static int
print_record(const rep_record_t *rec)
{
    size_t width = 0;

    put_safe(or_empty(rec->key));
    putchar('\n');
    for (size_t i = 0; i < rec->nfields; i++) {
        size_t w = text_width(or_empty(rec->fields[i].name));

        if (w > width && w <= MAX_PAD)
            width = w;
    }
    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i];
        char *s = value_str(&f->value, STYLE_CELL);

        if (s == NULL)
            return -ENOMEM;
        fputs("  ", stdout);
        print_padded(or_empty(f->name), width);
        printf(" = %s", s);
        if (f->kind != REP_KIND_REGISTER)
            printf("   (%s)", kind_name(f->kind));
        if (f->siblings > 1)
            printf("   (conflict: %u values, see `replica conflicts`)", f->siblings);
        putchar('\n');
        free(s);
    }
    if (rec->nfields == 0)
        printf("  (no fields)\n");
    if (rec->delete_conflict)
        printf("  (conflict: deleted on one device while changed on another, see `replica "
               "conflicts`)\n");
    return 0;
}

static int
get_record(const cli_t *c, rep_replica_t *r, const char *key)
{
    rep_record_t *rec = NULL;
    int ret, rc;

    rc = rep_replica_get_record(r, key, &rec);
    if (rc == REP_ENOTFOUND)
        return fail(CLI_FAIL, "%.120s: no such record", key);
    if (rc < 0)
        return fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
    if (c->json)
        ret = json_emit(json_record(rec));
    else if (print_record(rec) < 0)
        ret = fail(CLI_FAIL, "out of memory");
    else
        ret = CLI_OK;
    rep_record_free(&rec);
    return ret;
}

static int
cmd_get(cli_t *c)
{
    const char *key = c->pos[1];
    rep_replica_t *r = NULL;
    int ret;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    if (c->npos > 2)
        ret = get_field(c, r, key, c->pos[2]);
    else
        ret = get_record(c, r, key);
    rep_replica_close(&r);
    return ret;
}

/* ---- ls -------------------------------------------------------------------------------------- */

/* One record per line: key, then field=value pairs. */
static int
print_list_line(const rep_record_t *rec, size_t width)
{
    print_padded(or_empty(rec->key), width);
    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i];
        char *s = value_str(&f->value, STYLE_WORD);

        if (s == NULL)
            return -ENOMEM;
        fputs("  ", stdout);
        put_safe(or_empty(f->name));
        printf("=%s", s);
        if (f->siblings > 1)
            fputs(" (conflict)", stdout);
        free(s);
    }
    if (rec->delete_conflict)
        fputs("  (delete conflict)", stdout);
    putchar('\n');
    return 0;
}

static int
cmd_ls(cli_t *c)
{
    const char *coll = c->pos[1];
    rep_replica_t *r = NULL;
    rep_list_t *l = NULL;
    size_t width = 0;
    int ret, rc;

    if (coll[0] == '\0' || strchr(coll, '/') != NULL)
        return fail(CLI_USAGE, "'%.120s': a collection name is not empty and has no '/'", coll);
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_list(r, coll, c->prefix, 0, &l);
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", coll, rep_strerror(rc));
        goto out;
    }
    if (c->json) {
        json_t *o = json_object();
        json_t *recs = json_array();
        int bad = 0;

        for (size_t i = 0; i < l->n; i++)
            bad |= jpush(recs, json_record(&l->records[i]));
        bad |= jset(o, "collection", json_string(coll));
        if (c->prefix != NULL)
            bad |= jset(o, "prefix", json_string(c->prefix));
        bad |= jset(o, "records", recs);
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
        goto out;
    }
    if (l->n == 0) {
        if (c->prefix != NULL)
            printf("no records in %s starting with '%s'\n", coll, c->prefix);
        else
            printf("no records in %s\n", coll);
    }
    for (size_t i = 0; i < l->n; i++) {
        size_t w = text_width(or_empty(l->records[i].key));

        if (w > width && w <= MAX_PAD)
            width = w;
    }
    ret = CLI_OK;
    for (size_t i = 0; i < l->n && ret == CLI_OK; i++) {
        if (print_list_line(&l->records[i], width) < 0)
            ret = fail(CLI_FAIL, "out of memory");
    }
out:
    rep_list_free(&l);
    rep_replica_close(&r);
    return ret;
}

/* ---- del ------------------------------------------------------------------------------------- */

static int
cmd_del(cli_t *c)
{
    const char *key = c->pos[1];
    const char *field = c->npos > 2 ? c->pos[2] : NULL;
    rep_replica_t *r = NULL;
    rep_txn_t *t = NULL;
    rep_value_t *v = NULL;
    rep_record_t *rec = NULL;
    int ret, rc;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    /* Say so when there is nothing to delete, rather than writing a pointless tombstone. */
    if (field != NULL)
        rc = rep_replica_get(r, key, field, &v);
    else
        rc = rep_replica_get_record(r, key, &rec);
    rep_value_free(&v);
    rep_record_free(&rec);
    if (rc == REP_ENOTFOUND) {
        ret = report_missing(r, key, field);
        goto out_close;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
        goto out_close;
    }
    if ((ret = begin_txn(c, r, &t)) != CLI_OK)
        goto out_close;
    if (field != NULL)
        rc = rep_txn_del_field(t, key, field);
    else
        rc = rep_txn_del_record(t, key);
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
        goto out_txn;
    }
    rc = rep_txn_commit(t, NULL);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: not deleted: %.120s", key, rep_strerror(rc));
        goto out_txn;
    }
    if (field != NULL)
        printf("deleted %s '%s'\n", key, field);
    else
        printf("deleted %s\n", key);
    ret = CLI_OK;

out_txn:
    rep_txn_free(&t);
out_close:
    rep_replica_close(&r);
    return ret;
}

/* ---- history --------------------------------------------------------------------------------- */

static const char *
op_name(rep_op_type_t type)
{
    switch (type) {
    case REP_OP_SET:
        return "set";
    case REP_OP_DEL:
        return "del";
    case REP_OP_CLEAR:
        return "clear";
    default:
        return "unknown";
    }
}

static json_t *
json_history(const char *key, const rep_history_t *h)
{
    json_t *o = json_object();
    json_t *changes = json_array();
    int bad = 0;

    for (size_t i = 0; i < h->n; i++) {
        const rep_change_info_t *ch = &h->changes[i];
        json_t *jc = json_object();
        json_t *ops = json_array();

        for (size_t j = 0; j < ch->nops; j++) {
            const rep_op_t *op = &ch->ops[j];
            json_t *jo = json_object();

            bad |= jset(jo, "op", json_string(op_name(op->type)));
            bad |= jset(jo, "field", json_str(op->field));
            bad |= jset(jo, "kind", json_string(kind_name(op->kind)));
            if (op->type == REP_OP_SET)
                bad |= jset(jo, "value", json_value(&op->value));
            bad |= jpush(ops, jo);
        }
        bad |= jset(jc, "actor", json_hex64(ch->actor));
        bad |= jset(jc, "seq", json_u64(ch->seq));
        bad |= jset(jc, "hlc", json_u64(ch->hlc));
        bad |= jset(jc, "time", json_time(ch->hlc));
        bad |= jset(jc, "user", json_str(ch->user));
        bad |= jset(jc, "ops", ops);
        bad |= jpush(changes, jc);
    }
    bad |= jset(o, "key", json_string(key));
    bad |= jset(o, "changes", changes);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int
print_op(const rep_op_t *op)
{
    const char *field = or_empty(op->field);
    char *s;

    fputs("    ", stdout);
    switch (op->type) {
    case REP_OP_SET:
        s = value_str(&op->value, STYLE_CELL);
        if (s == NULL)
            return -ENOMEM;
        if (field[0] == '\0') {
            printf("kept the record");
        } else {
            printf("set ");
            put_safe(field);
            printf(" = %s", s);
        }
        free(s);
        break;
    case REP_OP_DEL:
        if (field[0] == '\0')
            printf("deleted the record");
        else {
            printf("deleted ");
            put_safe(field);
        }
        break;
    case REP_OP_CLEAR:
        if (field[0] == '\0')
            printf("cleared every field");
        else {
            printf("cleared ");
            put_safe(field);
        }
        break;
    default:
        printf("(unknown operation %d on ", (int)op->type);
        put_safe(field[0] ? field : "the record");
        putchar(')');
        break;
    }
    if (op->kind != REP_KIND_REGISTER)
        printf("   (%s)", kind_name(op->kind));
    putchar('\n');
    return 0;
}

/*
 *   2024-05-01T14:03:22.123Z  device 1a2b3c4d5e6f7081  #1  alice
 *       set name = Ada
 */
static int
print_history(const char *key, const rep_history_t *h)
{
    int seqw = 1;

    if (h->n == 0) {
        printf("no changes recorded for %s\n", key);
        return 0;
    }
    for (size_t i = 0; i < h->n; i++) {
        char num[32];
        int w = snprintf(num, sizeof num, "%" PRIu64, h->changes[i].seq);

        if (w > seqw)
            seqw = w;
    }
    for (size_t i = 0; i < h->n; i++) {
        const rep_change_info_t *ch = &h->changes[i];
        char when[48];

        format_time(ch->hlc, when, sizeof when);
        printf("%s  device %016" PRIx64 "  #%-*" PRIu64 "  ", when, ch->actor, seqw, ch->seq);
        put_safe(user_name(ch->user));
        putchar('\n');
        for (size_t j = 0; j < ch->nops; j++) {
            const rep_op_t *op = &ch->ops[j];

            /* Every field write also marks the record present: say so only if that is all. */
            if (op->type == REP_OP_SET && or_empty(op->field)[0] == '\0' && ch->nops > 1)
                continue;
            if (print_op(op) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static int
cmd_history(cli_t *c)
{
    const char *key = c->pos[1];
    rep_replica_t *r = NULL;
    rep_history_t *h = NULL;
    int ret, rc;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_history(r, key, &h);
    if (rc < 0)
        ret = fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
    else if (c->json)
        ret = json_emit(json_history(key, h));
    else if (print_history(key, h) < 0)
        ret = fail(CLI_FAIL, "out of memory");
    else
        ret = CLI_OK;
    rep_history_free(&h);
    rep_replica_close(&r);
    return ret;
}

/* ---- conflicts ------------------------------------------------------------------------------- */

static json_t *
json_conflicts(const rep_conflicts_t *cs)
{
    json_t *o = json_object();
    json_t *items = json_array();
    int bad = 0;

    for (size_t i = 0; i < cs->n; i++) {
        const rep_conflict_t *cf = &cs->items[i];
        json_t *jc = json_object();
        json_t *sibs = json_array();

        for (size_t j = 0; j < cf->n; j++) {
            const rep_sibling_t *s = &cf->siblings[j];
            json_t *js = json_object();

            bad |= jset(js, "actor", json_hex64(s->actor));
            bad |= jset(js, "seq", json_u64(s->seq));
            bad |= jset(js, "hlc", json_u64(s->hlc));
            bad |= jset(js, "time", json_time(s->hlc));
            bad |= jset(js, "user", json_str(s->user));
            bad |= jset(js, "deleted", json_boolean(s->deleted));
            bad |= jset(js, "winner", json_boolean(s->winner));
            bad |= jset(js, "value", s->deleted ? json_null() : json_value(&s->value));
            bad |= jpush(sibs, js);
        }
        bad |= jset(jc, "key", json_str(cf->key));
        bad |= jset(jc, "field", json_str(cf->field));
        bad |= jset(jc, "kind", json_string(kind_name(cf->kind)));
        bad |= jset(jc, "siblings", sibs);
        bad |= jpush(items, jc);
    }
    bad |= jset(o, "conflicts", items);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 *   patients/8812  phone
 *     * 555-0199  alice  device 1a2b3c4d5e6f7081  2024-05-01T14:03:22.123Z
 *       555-0100  bob    device 0f0e0d0c0b0a0908  2024-05-01T14:03:25.004Z
 */
static int
print_conflict(const rep_conflict_t *cf)
{
    int is_record = or_empty(cf->field)[0] == '\0';
    char **cells;
    size_t vw = 0, uw = 0;
    int ret = 0;

    put_safe(or_empty(cf->key));
    if (is_record) {
        printf("  (record): deleted on one device, changed on another\n");
    } else {
        fputs("  ", stdout);
        put_safe(cf->field);
        putchar('\n');
    }
    cells = calloc(cf->n + 1, sizeof *cells);
    if (cells == NULL)
        return -ENOMEM;
    for (size_t j = 0; j < cf->n; j++) {
        const rep_sibling_t *s = &cf->siblings[j];
        size_t w;

        if (s->deleted)
            cells[j] = strdup("(deleted)");
        else if (is_record)
            cells[j] = strdup("(changed)");
        else
            cells[j] = value_str(&s->value, STYLE_CELL);
        if (cells[j] == NULL) {
            ret = -ENOMEM;
            goto out;
        }
        w = text_width(cells[j]);
        if (w > vw && w <= MAX_PAD)
            vw = w;
        w = text_width(user_name(s->user));
        if (w > uw && w <= MAX_PAD)
            uw = w;
    }
    for (size_t j = 0; j < cf->n; j++) {
        const rep_sibling_t *s = &cf->siblings[j];
        char when[48];

        format_time(s->hlc, when, sizeof when);
        fputs(s->winner ? "  * " : "    ", stdout);
        print_padded(cells[j], vw);
        fputs("  ", stdout);
        print_padded(user_name(s->user), uw);
        printf("  device %016" PRIx64 "  %s\n", s->actor, when);
    }
out:
    for (size_t j = 0; j < cf->n; j++)
        free(cells[j]);
    free(cells);
    return ret;
}

static int
cmd_conflicts(cli_t *c)
{
    const char *key = c->npos > 1 ? c->pos[1] : NULL;
    rep_replica_t *r = NULL;
    rep_conflicts_t *cs = NULL;
    int ret, rc;

    if (key != NULL && (ret = check_key(key)) != CLI_OK)
        return ret;
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_conflicts(r, key, &cs);
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", key ? key : c->dir, rep_strerror(rc));
        goto out;
    }
    if (c->json) {
        ret = json_emit(json_conflicts(cs));
        goto out;
    }
    ret = CLI_OK;
    if (cs->n == 0)
        printf("no conflicts%s%s\n", key ? " in " : "", key ? key : "");
    for (size_t i = 0; i < cs->n && ret == CLI_OK; i++) {
        if (print_conflict(&cs->items[i]) < 0)
            ret = fail(CLI_FAIL, "out of memory");
    }
    if (cs->n > 0 && ret == CLI_OK)
        printf("(* is the value shown; the others are kept until someone edits the field)\n");
out:
    rep_conflicts_free(&cs);
    rep_replica_close(&r);
    return ret;
}

/* ---- digest, status -------------------------------------------------------------------------- */

static int
cmd_digest(cli_t *c)
{
    rep_replica_t *r = NULL;
    uint8_t d[REP_DIGEST_BYTES];
    sbuf_t b = {0};
    char *hex;
    int ret, rc;

    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_digest(r, d);
    rep_replica_close(&r);
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    sb_hex(&b, d, sizeof d);
    hex = sb_take(&b);
    if (hex == NULL)
        return fail(CLI_FAIL, "out of memory");
    if (c->json) {
        json_t *o = json_object();

        if (jset(o, "digest", json_string(hex)) != 0) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
    } else {
        printf("%s\n", hex);
        ret = CLI_OK;
    }
    free(hex);
    return ret;
}

static json_t *
json_status(const rep_info_t *in)
{
    char office[2 * REP_OFFICE_ID_BYTES + 1];
    json_t *o = json_object();
    json_t *vv = json_object();
    int bad = 0;

    format_office(in->office_id, office);
    for (size_t i = 0; i < in->nvv; i++) {
        char hex[17];

        snprintf(hex, sizeof hex, "%016" PRIx64, in->vv[i].actor);
        bad |= jset(vv, hex, json_u64(in->vv[i].seq));
    }
    bad |= jset(o, "office_id", json_string(office));
    bad |= jset(o, "office_name", json_str(in->office_name));
    bad |= jset(o, "device_name", json_str(in->device_name));
    bad |= jset(o, "actor", json_hex64(in->actor));
    bad |= jset(o, "incarnation", json_integer(in->incarnation));
    bad |= jset(o, "seq", json_u64(in->seq));
    bad |= jset(o, "hlc", json_u64(in->hlc));
    bad |= jset(o, "time", json_time(in->hlc));
    bad |= jset(o, "changes", json_u64(in->changes));
    bad |= jset(o, "pending", json_u64(in->pending));
    bad |= jset(o, "records", json_u64(in->records));
    bad |= jset(o, "conflicts", json_u64(in->conflicts));
    bad |= jset(o, "vv", vv);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void
print_status(const char *dir, const rep_info_t *in)
{
    char office[2 * REP_OFFICE_ID_BYTES + 1];
    char when[48];

    format_office(in->office_id, office);
    format_time(in->hlc, when, sizeof when);
    printf("directory    %s\n", dir);
    printf("office       %s  (", office);
    put_safe(or_empty(in->office_name));
    printf(")\ndevice       ");
    put_safe(or_empty(in->device_name));
    putchar('\n');
    printf("actor        %016" PRIx64 "  (incarnation %" PRIu32 ")\n", in->actor, in->incarnation);
    printf("seq          %" PRIu64 "\n", in->seq);
    printf("clock        %s\n", when);
    printf("changes      %" PRIu64 "\n", in->changes);
    printf("pending      %" PRIu64 "\n", in->pending);
    printf("records      %" PRIu64 "\n", in->records);
    printf("conflicts    %" PRIu64 "\n", in->conflicts);
    for (size_t i = 0; i < in->nvv; i++)
        printf("%-12s %016" PRIx64 "  %" PRIu64 "\n", i == 0 ? "vv" : "", in->vv[i].actor,
               in->vv[i].seq);
    if (in->nvv == 0)
        printf("vv           (nothing yet)\n");
}

static int
cmd_status(cli_t *c)
{
    rep_replica_t *r = NULL;
    rep_info_t *in = NULL;
    int ret, rc;

    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_info(r, &in);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    } else if (c->json) {
        ret = json_emit(json_status(in));
    } else {
        print_status(c->dir, in);
        ret = CLI_OK;
    }
    rep_info_free(&in);
    rep_replica_close(&r);
    return ret;
}

/* ---- init ------------------------------------------------------------------------------------ */

static void
print_import_stats(const char *file, const rep_import_stats_t *st)
{
    printf("imported %s: %" PRIu64 " changes: %" PRIu64 " applied, %" PRIu64 " duplicates, %" PRIu64
           " pending, %" PRIu64 " forks\n",
           file, st->changes, st->applied, st->duplicates, st->pending, st->forks);
}

static void
warn_import_stats(const char *file, const rep_import_stats_t *st)
{
    if (st->forks > 0)
        warn("%.120s: %" PRIu64 " change(s) rejected: a device's history forked (same change "
             "number, different content); tell whoever looks after the workstations",
             file, st->forks);
    if (st->skewed > 0)
        warn("%.120s: %" PRIu64 " change(s) carry a clock far ahead of this workstation's; check "
             "the clocks",
             file, st->skewed);
}

static int
cmd_init(cli_t *c)
{
    rep_open_opts_t opts;
    rep_replica_t *r = NULL;
    rep_info_t *in = NULL;
    rep_import_stats_t st;
    uint8_t office[REP_OFFICE_ID_BYTES];
    char office_hex[2 * REP_OFFICE_ID_BYTES + 1];
    uint8_t *bundle = NULL;
    char *office_name = NULL;
    size_t blen = 0;
    int ret, rc;

    memset(&opts, 0, sizeof opts);
    memset(&st, 0, sizeof st);
    if (c->from != NULL) {
        rc = read_file(c->from, &bundle, &blen);
        if (rc < 0)
            return fail(CLI_FAIL, "%.120s: %.120s", c->from, strerror(-rc));
        rc = rep_batch_office(bundle, blen, office, &office_name);
        if (rc < 0) {
            ret = fail(CLI_FAIL, "%.120s: %.120s", c->from, rep_strerror(rc));
            goto out;
        }
        opts.office_id = office;
    }
    opts.flags = REP_OPEN_CREATE | REP_OPEN_EXCL; /* never touch an existing replica */
    opts.office_name = c->office ? c->office : office_name;
    opts.device_name = c->device;
    rc = rep_replica_open(&r, c->dir, &opts);
    if (rc == REP_EEXIST) {
        ret = fail(CLI_FAIL, "%.120s: %.120s (it is a replica; nothing was changed)", c->dir,
                   rep_strerror(rc));
        goto out;
    }
    if (rc == REP_ENOTREPLICA) {
        ret = fail(CLI_FAIL, "%.120s: %.120s (it holds other files; use an empty or new directory)",
                   c->dir, rep_strerror(rc));
        goto out;
    }
    if (rc == -ENOENT) {
        ret = fail(CLI_FAIL, "%.120s: %.120s (its parent directory must exist)", c->dir,
                   rep_strerror(rc));
        goto out;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", c->dir, rep_strerror(rc));
        goto out;
    }
    if (bundle != NULL) {
        rc = rep_replica_import(r, bundle, blen, &st);
        if (rc < 0) {
            ret = fail(CLI_FAIL,
                       "%.120s: created, but importing %.120s failed: %.120s (retry with "
                       "`replica import %.120s`)",
                       c->dir, c->from, rep_strerror(rc), c->from);
            goto out_close;
        }
    }
    rc = rep_replica_info(r, &in);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: created, but: %.120s", c->dir, rep_strerror(rc));
        goto out_close;
    }
    format_office(in->office_id, office_hex);
    printf("created replica in %s\n", c->dir);
    printf("  office  %s  (", office_hex);
    put_safe(or_empty(in->office_name));
    printf(")\n  device  ");
    put_safe(or_empty(in->device_name));
    putchar('\n');
    printf("  actor   %016" PRIx64 "\n", in->actor);
    if (bundle != NULL) {
        print_import_stats(c->from, &st);
        warn_import_stats(c->from, &st);
    }
    ret = CLI_OK;

    rep_info_free(&in);
out_close:
    rep_replica_close(&r);
out:
    free(bundle);
    rep_free(office_name);
    return ret;
}

/* ---- exchange: export, import, vv ------------------------------------------------------------ */

static int
need_output(const cli_t *c)
{
    if (c->output == NULL || c->output[0] == '\0')
        return fail(CLI_USAGE, "%.120s: missing -o FILE", c->pos[0]);
    return CLI_OK;
}

static int
cmd_export(cli_t *c)
{
    rep_replica_t *r = NULL;
    uint8_t *vv = NULL, *out = NULL;
    size_t vvlen = 0, len = 0;
    int ret, rc;

    if ((ret = need_output(c)) != CLI_OK)
        return ret;
    if (c->since_file != NULL) {
        rc = read_file(c->since_file, &vv, &vvlen);
        if (rc < 0)
            return fail(CLI_FAIL, "%.120s: %.120s", c->since_file, strerror(-rc));
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        goto out;
    rc = rep_replica_export(r, vv, vvlen, 0, &out, &len, NULL);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->since_file ? c->since_file : c->dir,
                   rep_strerror(rc));
        goto out_close;
    }
    rc = write_file_atomic(c->output, out, len);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->output, strerror(-rc));
        goto out_close;
    }
    fprintf(stderr, "exported %zu bytes to %s\n", len, c->output);
    ret = CLI_OK;

out_close:
    rep_free(out);
    rep_replica_close(&r);
out:
    free(vv);
    return ret;
}

static int
cmd_import(cli_t *c)
{
    const char *file = c->pos[1];
    rep_replica_t *r = NULL;
    rep_import_stats_t st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret, rc;

    memset(&st, 0, sizeof st);
    rc = read_file(file, &buf, &len);
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", file, strerror(-rc));
    if ((ret = open_replica(c, &r)) != CLI_OK)
        goto out;
    rc = rep_replica_import(r, buf, len, &st);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s; nothing was imported", file, rep_strerror(rc));
        goto out_close;
    }
    if (c->json) {
        json_t *o = json_object();
        int bad = 0;

        bad |= jset(o, "file", json_string(file));
        bad |= jset(o, "changes", json_u64(st.changes));
        bad |= jset(o, "applied", json_u64(st.applied));
        bad |= jset(o, "duplicates", json_u64(st.duplicates));
        bad |= jset(o, "pending", json_u64(st.pending));
        bad |= jset(o, "forks", json_u64(st.forks));
        bad |= jset(o, "skewed", json_u64(st.skewed));
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
    } else {
        print_import_stats(file, &st);
        ret = CLI_OK;
    }
    warn_import_stats(file, &st);

out_close:
    rep_replica_close(&r);
out:
    free(buf);
    return ret;
}

static int
cmd_vv(cli_t *c)
{
    rep_replica_t *r = NULL;
    uint8_t *vv = NULL;
    size_t len = 0;
    int ret, rc;

    if ((ret = need_output(c)) != CLI_OK)
        return ret;
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_vv(r, &vv, &len);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
        goto out;
    }
    rc = write_file_atomic(c->output, vv, len);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->output, strerror(-rc));
        goto out;
    }
    fprintf(stderr, "wrote version vector (%zu bytes) to %s\n", len, c->output);
    ret = CLI_OK;
out:
    rep_free(vv);
    rep_replica_close(&r);
    return ret;
}

/* ---- help and main --------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: replica [--dir DIR] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Keeps the office's shared record on this workstation. DIR is the replica directory\n"
    "(default: $REPLICA_DIR, else ./replica-data).\n"
    "\n"
    "commands:\n"
    "  init [--office NAME] [--device NAME]    create a replica of a new office\n"
    "  init --from BUNDLE [--device NAME] [--office NAME]\n"
    "                                          join the office a bundle file belongs to\n"
    "  put COLL/REC FIELD=VALUE... [--user NAME]\n"
    "                                          set fields of a record, in one change\n"
    "  get COLL/REC [FIELD] [--json]           show a record, or one field's value\n"
    "  ls COLL [--prefix P] [--json]           list a collection's records\n"
    "  del COLL/REC [FIELD] [--user NAME]      delete a field, or the whole record\n"
    "  history COLL/REC [--json]               who changed a record, when, and what\n"
    "  conflicts [COLL/REC] [--json]           values written at once on different devices\n"
    "  digest [--json]                         hash of the shared state: equal when in sync\n"
    "  status [--json]                         what this replica is and holds\n"
    "  export [--since-file VVFILE] -o FILE    write a bundle: all changes, or what VVFILE lacks\n"
    "  import FILE [--json]                    apply a bundle\n"
    "  vv -o FILE                              write what this replica has (for --since-file)\n"
    "  help                                    show this text\n"
    "\n"
    "values for put:\n"
    "  FIELD=text  FIELD:int=3  FIELD:bool=true|false  FIELD:double=2.5  FIELD:null\n"
    "  FIELD:bytes=HEX  FIELD:string=text (needed when the field name holds ':')\n"
    "\n"
    "options:\n"
    "  --dir DIR       the replica directory\n"
    "  --user NAME     who makes the change, for the audit trail (default: $REPLICA_USER)\n"
    "  --json          machine-readable output\n"
    "  --version       print the version\n"
    "  --              what follows is not an option\n"
    "\n"
    "exit status: 0 done, 1 failed, 2 usage error.\n";

static int
cmd_help(cli_t *c)
{
    (void)c;
    fputs(usage_text, stdout);
    return CLI_OK;
}

static const command_t commands[] = {
    {"init", cmd_init, OPT_OFFICE | OPT_DEVICE | OPT_FROM, 0, 0,
     "init [--office NAME] [--device NAME] | init --from BUNDLE [--device NAME] [--office NAME]"},
    {"put", cmd_put, OPT_USER, 2, -1, "put COLL/REC FIELD=VALUE... [--user NAME]"},
    {"get", cmd_get, OPT_JSON, 1, 2, "get COLL/REC [FIELD] [--json]"},
    {"ls", cmd_ls, OPT_JSON | OPT_PREFIX, 1, 1, "ls COLL [--prefix P] [--json]"},
    {"del", cmd_del, OPT_USER, 1, 2, "del COLL/REC [FIELD] [--user NAME]"},
    {"history", cmd_history, OPT_JSON, 1, 1, "history COLL/REC [--json]"},
    {"conflicts", cmd_conflicts, OPT_JSON, 0, 1, "conflicts [COLL/REC] [--json]"},
    {"digest", cmd_digest, OPT_JSON, 0, 0, "digest [--json]"},
    {"status", cmd_status, OPT_JSON, 0, 0, "status [--json]"},
    {"export", cmd_export, OPT_SINCE | OPT_OUTPUT, 0, 0, "export [--since-file VVFILE] -o FILE"},
    {"import", cmd_import, OPT_JSON, 1, 1, "import FILE [--json]"},
    {"vv", cmd_vv, OPT_OUTPUT, 0, 0, "vv -o FILE"},
    {"help", cmd_help, 0, 0, -1, "help"},
};

static const command_t *
find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

/* Check the options and argument count against what the command takes. */
static int
check_usage(const cli_t *c, const command_t *cmd)
{
    unsigned extra = c->seen & ~(cmd->opts | OPT_GLOBAL);
    int nargs = c->npos - 1;

    for (size_t i = 0; extra != 0 && i < N_OPTION_DEFS; i++) {
        if (extra & option_defs[i].bit)
            return fail(CLI_USAGE,
                        "option --%.120s does not apply to '%.120s' (usage: replica %.120s)",
                        option_defs[i].name, cmd->name, cmd->usage);
    }
    if (nargs < cmd->min_args)
        return fail(CLI_USAGE, "%.120s: missing argument (usage: replica %.120s)", cmd->name,
                    cmd->usage);
    if (cmd->max_args >= 0 && nargs > cmd->max_args)
        return fail(CLI_USAGE, "%.120s: unexpected argument '%.120s' (usage: replica %.120s)",
                    cmd->name, c->pos[1 + cmd->max_args], cmd->usage);
    return CLI_OK;
}

int
main(int argc, char **argv)
{
    cli_t c;
    const command_t *cmd;
    const char *env;
    int ret;

    memset(&c, 0, sizeof c);
    if ((ret = cli_parse(&c, argc, argv)) != CLI_OK)
        goto out;
    if (c.seen & OPT_VERSION) {
        printf("replica %s (libreplica %s)\n", REP_VERSION_STRING, rep_version());
        goto out;
    }
    if ((c.seen & OPT_HELP) || (c.npos > 0 && strcmp(c.pos[0], "help") == 0)) {
        ret = cmd_help(&c);
        goto out;
    }
    if (c.npos == 0) {
        ret = fail(CLI_USAGE, "no command given (see replica --help)");
        goto out;
    }
    cmd = find_command(c.pos[0]);
    if (cmd == NULL) {
        ret = fail(CLI_USAGE, "unknown command '%.120s' (see replica --help)", c.pos[0]);
        goto out;
    }
    if ((ret = check_usage(&c, cmd)) != CLI_OK)
        goto out;
    if (c.dir == NULL) {
        env = getenv("REPLICA_DIR");
        c.dir = (env != NULL && env[0] != '\0') ? env : DEFAULT_DIR;
    }
    if (c.dir[0] == '\0') {
        ret = fail(CLI_USAGE, "--dir needs a directory name");
        goto out;
    }
    if (c.user == NULL) {
        env = getenv("REPLICA_USER");
        if (env != NULL && env[0] != '\0')
            c.user = env;
    }
    ret = cmd->run(&c);
out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (ret == CLI_OK)
            ret = fail(CLI_FAIL, "writing the output: %.120s", strerror(errno));
    }
    free(c.pos);
    return ret;
}
