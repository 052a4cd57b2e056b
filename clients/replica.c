/*
 * replica.c — the `replica` command: look at and edit a replica directory from a shell.
 *
 * A thin client. Everything goes through the public header replica.h; JSON output goes through
 * jansson. Each run opens the replica, does one thing and closes it. Output for people is
 * aligned text; --json gives the shapes documented in README.md ("The `replica` command").
 *
 * Exit status: 0 on success; 1 when the operation failed (no such record, damaged file, I/O);
 * 2 for a usage error (unknown command or option, malformed argument). Every failure prints
 * exactly one line "replica: <what went wrong>" on stderr.
 *
 * Nothing here is global and mutable: the parsed command line travels in a cli_t.
 */
/* POSIX functions come from -D_GNU_SOURCE on the command line (configure.ac). */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "replica.h"
#include "frontdesk/auth.h"
#include "frontdesk/http.h"

#include "daysheet.h"
#include "sample.h"

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
    STYLE_WORD, /* in "field=value" lists: also quoted when it holds spaces, '"' or '=' */
    STYLE_ITEM  /* a member of a "[a, b]" list: also quoted when it holds ',', '[' or ']' */
} style_t;

static int
needs_quotes(const char *s, size_t n, style_t style)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= ' ' || ch == '"' || ch == '\\' || ch == '=' || ch == 0x7f)
            return 1;
        if (style == STYLE_ITEM && (ch == ',' || ch == '[' || ch == ']'))
            return 1;
    }
    return 0;
}

static void
sb_text(sbuf_t *b, const char *s, size_t n, style_t style)
{
    int quote = style != STYLE_CELL && needs_quotes(s, n, style);

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

/* The kind called @p name (n bytes), or 0. */
static rep_kind_t
kind_by_name(const char *name, size_t n)
{
    static const rep_kind_t kinds[] = {REP_KIND_REGISTER, REP_KIND_COUNTER, REP_KIND_SET,
                                       REP_KIND_LOG};

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *k = kind_name(kinds[i]);

        if (strlen(k) == n && memcmp(k, name, n) == 0)
            return kinds[i];
    }
    return (rep_kind_t)0;
}

/* How a field is named in a table: "name"; "name (kind)" for a counter, set or log, and for
 * every field of a kind clash. Returns a string the caller frees, or NULL (out of memory). */
static char *
field_label(const rep_field_t *f)
{
    sbuf_t b = {0};

    sb_puts(&b, or_empty(f->name));
    if (f->kind != REP_KIND_REGISTER || f->kind_clash) {
        sb_puts(&b, " (");
        sb_puts(&b, kind_name(f->kind));
        sb_puts(&b, ")");
    }
    return sb_take(&b);
}

/* "name:kind", the JSON key of a field in a kind clash (and what `get KEY NAME:KIND` reads). */
static char *
field_kind_key(const char *name, rep_kind_t kind)
{
    sbuf_t b = {0};

    sb_puts(&b, or_empty(name));
    sb_puts(&b, ":");
    sb_puts(&b, kind_name(kind));
    return sb_take(&b);
}

/*
 * A field's value in one cell: a register's winner, a counter's total, a set's members as
 * "[a, b]" ("[a,b]" in STYLE_WORD, where a space would split the pair), a log's size as
 * "(2 entries)". Returns a string the caller frees, or NULL (out of memory).
 */
static char *
field_summary(const rep_field_t *f, style_t style)
{
    sbuf_t b = {0};
    char num[48];

    switch (f->kind) {
    case REP_KIND_SET:
        sb_puts(&b, "[");
        for (size_t i = 0; i < f->nitems; i++) {
            char *m = value_str(&f->items[i].value, STYLE_ITEM);

            if (m == NULL) {
                free(sb_take(&b));
                return NULL;
            }
            if (i > 0)
                sb_puts(&b, style == STYLE_WORD ? "," : ", ");
            sb_puts(&b, m);
            free(m);
        }
        sb_puts(&b, "]");
        return sb_take(&b);
    case REP_KIND_LOG:
        snprintf(num, sizeof num, "(%zu entr%s)", f->nitems, f->nitems == 1 ? "y" : "ies");
        sb_puts(&b, num);
        return sb_take(&b);
    default:
        return value_str(&f->value, style);
    }
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

/* A log entry: {"time":..,"hlc":..,"actor":..,"seq":..,"user":..,"value":..} */
static json_t *
json_entry(const rep_entry_t *e)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= jset(o, "time", json_time(e->hlc));
    bad |= jset(o, "hlc", json_u64(e->hlc));
    bad |= jset(o, "actor", json_hex64(e->actor));
    bad |= jset(o, "seq", json_u64(e->seq));
    bad |= jset(o, "user", json_str(e->user));
    bad |= jset(o, "value", json_value(&e->value));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A field's value: a register's winner, a counter's total, a set's members as an array of
 * values, a log's entries as an array of json_entry() objects. */
static json_t *
json_field_value(const rep_field_t *f)
{
    json_t *a;
    int bad = 0;

    if (f->kind != REP_KIND_SET && f->kind != REP_KIND_LOG)
        return json_value(&f->value);
    a = json_array();
    for (size_t i = 0; i < f->nitems; i++) {
        const rep_entry_t *e = &f->items[i];

        bad |= jpush(a, f->kind == REP_KIND_SET ? json_value(&e->value) : json_entry(e));
    }
    if (bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* {"kind":..,"value":..,"conflict":..,"siblings":..,"kind_clash":..} */
static json_t *
json_field(const rep_field_t *f)
{
    json_t *jf = json_object();
    int bad = 0;

    bad |= jset(jf, "kind", json_string(kind_name(f->kind)));
    bad |= jset(jf, "value", json_field_value(f));
    bad |= jset(jf, "conflict", json_boolean(f->siblings > 1 || f->kind_clash));
    bad |= jset(jf, "siblings", json_integer(f->siblings));
    bad |= jset(jf, "kind_clash", json_boolean(f->kind_clash));
    if (bad) {
        json_decref(jf);
        return NULL;
    }
    return jf;
}

/*
 * The key of field @p i in a record's "fields" object: its name; for a field in a kind clash
 * (one name, two kinds, started concurrently on two devices) "name:kind", so neither hides the
 * other and the key says which is which. Should that key be some other field's name (a field
 * literally called "phone:counter"), "#2", "#3", ... is appended: no field is ever dropped.
 * Returns a string the caller frees, or NULL (out of memory).
 */
static char *
json_field_key(const rep_record_t *rec, size_t i, json_t *fields)
{
    const rep_field_t *f = &rec->fields[i];
    char *base, *key;
    int taken;

    if (!f->kind_clash)
        return strdup(or_empty(f->name));
    base = field_kind_key(f->name, f->kind);
    if (base == NULL)
        return NULL;
    key = strdup(base);
    for (unsigned n = 2; key != NULL; n++) {
        sbuf_t b = {0};
        char num[16];

        taken = json_object_get(fields, key) != NULL;
        for (size_t j = 0; j < rec->nfields && !taken; j++)
            taken = !rec->fields[j].kind_clash && strcmp(or_empty(rec->fields[j].name), key) == 0;
        if (!taken)
            break;
        free(key);
        snprintf(num, sizeof num, "#%u", n);
        sb_puts(&b, base);
        sb_puts(&b, num);
        key = sb_take(&b);
    }
    free(base);
    return key;
}

/* {"key":..,"fields":{json_field_key():<json_field>},"delete_conflict":..} */
static json_t *
json_record(const rep_record_t *rec)
{
    json_t *o = json_object();
    json_t *fields = json_object();
    int bad = 0;

    for (size_t i = 0; i < rec->nfields && !bad; i++) {
        char *key = json_field_key(rec, i, fields);

        if (key == NULL) {
            bad = 1;
            break;
        }
        bad |= jset(fields, key, json_field(&rec->fields[i]));
        free(key);
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
 * sees the old file or the whole new one; a new file gets @p mode. Returns 0 or -errno;
 * PATH.tmp is removed on failure.
 */
static int
write_file_atomic_mode(const char *path, const uint8_t *p, size_t n, mode_t mode)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    int fd, rc = 0;

    if (tmp == NULL)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
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

static int
write_file_atomic(const char *path, const uint8_t *p, size_t n)
{
    return write_file_atomic_mode(path, p, n, 0644);
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
    OPT_VERSION = 1u << 10,
    OPT_CHANGES = 1u << 11,
    OPT_STATE = 1u << 12,
    OPT_LISTEN = 1u << 13,
    OPT_PEER = 1u << 14,
    OPT_TTL = 1u << 15,
    OPT_FILE = 1u << 16,
    OPT_ROLE = 1u << 17,
    OPT_CODE = 1u << 18,
    OPT_CHECK = 1u << 19,
    OPT_RELAY = 1u << 20,
    OPT_PEERS_ONLY = 1u << 21,
    OPT_CURSOR = 1u << 22,
    OPT_LIMIT = 1u << 23,
    OPT_NO_DISCOVERY = 1u << 24,
    OPT_BEACON_PORT = 1u << 25,
    OPT_DATE = 1u << 26,
    OPT_PATIENTS = 1u << 27,
    OPT_HTTP = 1u << 28,
    OPT_HTTP_AUTH_READ = 1u << 29
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
    {"version", '\0', OPT_VERSION, 0}, {"changes", '\0', OPT_CHANGES, 0},
    {"state", '\0', OPT_STATE, 0},
    {"listen", '\0', OPT_LISTEN, 1},  {"peer", '\0', OPT_PEER, 1},
    {"ttl", '\0', OPT_TTL, 1},        {"file", '\0', OPT_FILE, 1},
    {"role", '\0', OPT_ROLE, 1},      {"code", '\0', OPT_CODE, 1},
    {"check", '\0', OPT_CHECK, 0},    {"relay", '\0', OPT_RELAY, 0},
    {"peers-only", '\0', OPT_PEERS_ONLY, 0},
    {"since", '\0', OPT_CURSOR, 1},    {"limit", '\0', OPT_LIMIT, 1},
    {"no-discovery", '\0', OPT_NO_DISCOVERY, 0}, {"beacon-port", '\0', OPT_BEACON_PORT, 1},
    {"date", '\0', OPT_DATE, 1},      {"patients", '\0', OPT_PATIENTS, 1},
    {"http", '\0', OPT_HTTP, 1},      {"http-auth-read", '\0', OPT_HTTP_AUTH_READ, 0},
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
    const char *listen;
    const char *ttl;
    const char *file;
    const char *role;
    const char *code;
    const char *cursor; /* changes --since */
    const char *limit;  /* changes --limit */
    const char **peers; /* every --peer, in order */
    int npeers;
    const char *beacon_port;
    const char *date;     /* daysheet, sample-office --date */
    const char *patients; /* sample-office --patients */
    const char *http;   /* serve --http ADDR:PORT */
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
    case OPT_LISTEN:
        c->listen = val;
        break;
    case OPT_TTL:
        c->ttl = val;
        break;
    case OPT_FILE:
        c->file = val;
        break;
    case OPT_ROLE:
        c->role = val;
        break;
    case OPT_CODE:
        c->code = val;
        break;
    case OPT_PEER:
        c->peers[c->npeers++] = val;
        break;
    case OPT_CURSOR:
        c->cursor = val;
        break;
    case OPT_LIMIT:
        c->limit = val;
        break;
    case OPT_BEACON_PORT:
        c->beacon_port = val;
        break;
    case OPT_DATE:
        c->date = val;
        break;
    case OPT_PATIENTS:
        c->patients = val;
        break;
    case OPT_HTTP:
        c->http = val;
        break;
    default:
        break;
    }
    c->seen |= bit;
}

/*
 * Split argv into options and positional arguments. Options may appear anywhere; "--" ends
 * them. A '-' followed by a digit is a negative number, not an option (no option is a digit),
 * so `incr KEY FIELD -2` works. c->pos is allocated here and freed by the caller.
 */
static int
cli_parse(cli_t *c, int argc, char **argv)
{
    int only_pos = 0;

    c->pos = calloc((size_t)argc + 1, sizeof *c->pos);
    c->peers = calloc((size_t)argc + 1, sizeof *c->peers);
    if (c->pos == NULL || c->peers == NULL)
        return fail(CLI_FAIL, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const option_def_t *o;
        const char *val = NULL;

        if (only_pos || a[0] != '-' || a[1] == '\0' || (a[1] >= '0' && a[1] <= '9')) {
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

/*
 * The kinds other than @p want that visible fields named @p field of record @p key have, as
 * "a counter" or "a set and a log", in @p buf ("" when none); returns 1 when a field of that
 * name has kind @p want too (a kind clash), else 0.
 */
static int
other_kinds(rep_replica_t *r, const char *key, const char *field, rep_kind_t want, char *buf,
            size_t n)
{
    rep_record_t *rec = NULL;
    int has_want = 0;
    size_t len = 0;

    buf[0] = '\0';
    if (rep_replica_get_record(r, key, &rec) < 0)
        return 0;
    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i];

        if (strcmp(or_empty(f->name), field) != 0)
            continue;
        if (f->kind == want) {
            has_want = 1;
        } else if (len < n) {
            int w = snprintf(buf + len, n - len, "%sa %s", len ? " and " : "", kind_name(f->kind));

            if (w > 0)
                len += (size_t)w;
        }
    }
    rep_record_free(&rec);
    return has_want;
}

/* A write of kind @p want to @p field was refused with REP_EKIND: say what the field is. */
static int
report_kind(rep_replica_t *r, const char *key, const char *field, rep_kind_t want)
{
    char have[64];

    other_kinds(r, key, field, want, have, sizeof have);
    if (have[0] != '\0')
        return fail(CLI_FAIL, "%.120s '%.120s' is %s, not a %s (%s); nothing was written", key,
                    field, have, kind_name(want), rep_strerror(REP_EKIND));
    return fail(CLI_FAIL, "%.120s '%.120s' is not a %s: %s; nothing was written", key, field,
                kind_name(want), rep_strerror(REP_EKIND));
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
 * Split @p head, the FIELD[:TYPE] part of argument @p arg (its first @p n bytes), into a field
 * name (*field, which the caller frees) and a type (*type, *tlen; "string" when no ':' is
 * given). The type is what follows the last ':'. An unknown type is a usage error.
 */
static int
typed_field(const char *arg, size_t n, char **field, const char **type, size_t *tlen)
{
    static const char *const types[] = {"string", "str", "int", "bool", "double", "null", "bytes"};
    const char *colon = NULL;
    size_t flen = n;
    int known = 0;

    *type = "string";
    *tlen = 6;
    for (size_t i = 0; i < n; i++) {
        if (arg[i] == ':')
            colon = arg + i;
    }
    if (colon != NULL) {
        flen = (size_t)(colon - arg);
        *type = colon + 1;
        *tlen = n - flen - 1;
    }
    if (flen == 0)
        return fail(CLI_USAGE, "'%.120s': missing field name", arg);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        known |= type_is(*type, *tlen, types[i]);
    if (!known)
        return fail(CLI_USAGE,
                    "'%.120s': unknown type '%.*s' (use string, int, bool, double, null or bytes; "
                    "a field name holding ':' needs :string)",
                    arg, (int)*tlen, *type);
    *field = strndup(arg, flen);
    if (*field == NULL)
        return fail(CLI_FAIL, "out of memory");
    return CLI_OK;
}

/*
 * Parse the text @p val as a value of @p type (a known type other than null) into *v; decoded
 * bytes go to *buf (the caller frees it), a string points into @p val. @p arg is the argument
 * named in an error message.
 */
static int
typed_value(const char *arg, const char *type, size_t tlen, const char *val, rep_value_t *v,
            uint8_t **buf)
{
    int rc;

    if (type_is(type, tlen, "string") || type_is(type, tlen, "str")) {
        v->type = REP_STRING;
        v->u.s.ptr = val;
        v->u.s.len = strlen(val);
    } else if (type_is(type, tlen, "int")) {
        v->type = REP_INT;
        rc = parse_int64(val, &v->u.i);
        if (rc == -ERANGE)
            return fail(CLI_USAGE, "'%.120s': integer out of range", arg);
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': '%.120s' is not an integer", arg, val);
    } else if (type_is(type, tlen, "bool")) {
        v->type = REP_BOOL;
        if (strcmp(val, "true") == 0)
            v->u.b = 1;
        else if (strcmp(val, "false") == 0)
            v->u.b = 0;
        else
            return fail(CLI_USAGE, "'%.120s': a bool is true or false", arg);
    } else if (type_is(type, tlen, "double")) {
        v->type = REP_DOUBLE;
        rc = parse_double(val, &v->u.d);
        if (rc == -ERANGE)
            return fail(CLI_USAGE, "'%.120s': not a finite number", arg);
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': '%.120s' is not a number", arg, val);
    } else {
        size_t n;

        rc = hex_decode(val, buf, &n);
        if (rc == -ENOMEM)
            return fail(CLI_FAIL, "out of memory");
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': bytes are written as an even number of hex digits",
                        arg);
        v->type = REP_BYTES;
        v->u.s.ptr = (const char *)*buf;
        v->u.s.len = n;
    }
    return CLI_OK;
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
    const char *val = eq ? eq + 1 : NULL;
    const char *type;
    size_t tlen;
    int ret;

    if (head == 0)
        return fail(CLI_USAGE, "'%.120s': missing field name (expected FIELD=VALUE)", arg);
    if ((ret = typed_field(arg, head, &a->field, &type, &tlen)) != CLI_OK)
        return ret;
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
    return typed_value(arg, type, tlen, val, &a->value, &a->buf);
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

/* A commit of a write to @p key failed with @p rc ("not saved" / "not deleted": @p what). */
static int
commit_failed(const char *key, const char *what, int rc)
{
    if (rc == REP_EKEY)
        return fail(CLI_FAIL, "%.120s: %s: this device lacks the office's current key: it was "
                              "revoked from the office (see `replica devices` on another "
                              "workstation), and can no longer write",
                    key, what);
    return fail(arg_code(rc), "%.120s: %s: %.120s", key, what, rep_strerror(rc));
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
        if (rc == REP_EKIND) {
            ret = report_kind(r, key, as[i].field, REP_KIND_REGISTER);
            goto out_txn;
        }
        if (rc < 0) {
            ret = fail(arg_code(rc), "%.120s '%.120s': %.120s", key, as[i].field, rep_strerror(rc));
            goto out_txn;
        }
    }
    rc = rep_txn_commit(t, &seq);
    if (rc == REP_EKIND) {
        /* Name the field: the first one that has another kind and is no register here. */
        for (size_t i = 0; i < n; i++) {
            char have[64];

            if (!other_kinds(r, key, as[i].field, REP_KIND_REGISTER, have, sizeof have) &&
                have[0] != '\0') {
                ret = report_kind(r, key, as[i].field, REP_KIND_REGISTER);
                goto out_txn;
            }
        }
    }
    if (rc < 0) {
        ret = commit_failed(key, "not saved", rc);
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

/* ---- incr, add, rm, append ------------------------------------------------------------------- */

/* The visible field (@p name, @p kind) of @p rec, or NULL. */
static const rep_field_t *
find_field(const rep_record_t *rec, const char *name, rep_kind_t kind)
{
    for (size_t i = 0; i < rec->nfields; i++) {
        if (rec->fields[i].kind == kind && strcmp(or_empty(rec->fields[i].name), name) == 0)
            return &rec->fields[i];
    }
    return NULL;
}

static const char *
type_name(rep_type_t type)
{
    switch (type) {
    case REP_NULL:
        return "null";
    case REP_BOOL:
        return "bool";
    case REP_INT:
        return "int";
    case REP_DOUBLE:
        return "double";
    case REP_STRING:
        return "string";
    case REP_BYTES:
        return "bytes";
    default:
        return "unknown";
    }
}

/* Commit @p t; on REP_EKIND name the field's kinds. Returns CLI_OK or the exit status. */
static int
commit_write(rep_replica_t *r, rep_txn_t *t, const char *key, const char *field, rep_kind_t kind)
{
    int rc = rep_txn_commit(t, NULL);

    if (rc == REP_EKIND)
        return report_kind(r, key, field, kind);
    if (rc < 0)
        return commit_failed(key, "not saved", rc);
    return CLI_OK;
}

/* incr COLL/REC FIELD [N]: add N (default 1; may be negative) to a counter. */
static int
cmd_incr(cli_t *c)
{
    const char *key = c->pos[1];
    const char *field = c->pos[2];
    const rep_field_t *f;
    rep_record_t *rec = NULL;
    rep_replica_t *r = NULL;
    rep_txn_t *t = NULL;
    int64_t delta = 1;
    int ret, rc;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    if (c->npos > 3) {
        rc = parse_int64(c->pos[3], &delta);
        if (rc == -ERANGE)
            return fail(CLI_USAGE, "'%.120s': integer out of range", c->pos[3]);
        if (rc < 0)
            return fail(CLI_USAGE, "'%.120s': the amount is an integer, e.g. 5 or -2", c->pos[3]);
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    if ((ret = begin_txn(c, r, &t)) != CLI_OK)
        goto out_close;
    rc = rep_txn_incr(t, key, field, delta);
    if (rc == REP_EKIND) {
        ret = report_kind(r, key, field, REP_KIND_COUNTER);
        goto out_txn;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s '%.120s': %.120s", key, field, rep_strerror(rc));
        goto out_txn;
    }
    if ((ret = commit_write(r, t, key, field, REP_KIND_COUNTER)) != CLI_OK)
        goto out_txn;
    printf("saved %s (", key);
    put_safe(field);
    printf(" %+" PRId64, delta);
    /* The total as this replica sees it now (increments made elsewhere count once they arrive). */
    if (rep_replica_get_record(r, key, &rec) == 0 &&
        (f = find_field(rec, field, REP_KIND_COUNTER)) != NULL && f->value.type == REP_INT)
        printf(", total %" PRId64, f->value.u.i);
    printf(")\n");
    rep_record_free(&rec);

out_txn:
    rep_txn_free(&t);
out_close:
    rep_replica_close(&r);
    return ret;
}

/*
 * rm checks first, as del does: removing what is not there is refused rather than written.
 * Returns CLI_OK when @p field is a set of @p key holding every one of @p vals.
 */
static int
check_members(rep_replica_t *r, const char *key, const char *field, const rep_value_t *vals,
              size_t n)
{
    rep_record_t *rec = NULL;
    const rep_field_t *f;
    char have[64];
    int ret = CLI_OK, rc;

    rc = rep_replica_get_record(r, key, &rec);
    if (rc == REP_ENOTFOUND)
        return fail(CLI_FAIL, "%.120s: no such record", key);
    if (rc < 0)
        return fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
    f = find_field(rec, field, REP_KIND_SET);
    if (f == NULL) {
        other_kinds(r, key, field, REP_KIND_SET, have, sizeof have);
        if (have[0] != '\0')
            ret = report_kind(r, key, field, REP_KIND_SET);
        else
            ret = fail(CLI_FAIL, "%.120s: no field '%.120s'", key, field);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        char *s;

        while (j < f->nitems && !rep_value_equal(&f->items[j].value, &vals[i]))
            j++;
        if (j < f->nitems)
            continue;
        s = value_str(&vals[i], STYLE_CELL);
        /* The same text as another type is the likely slip: say how to name that type. */
        for (j = 0; s != NULL && j < f->nitems; j++) {
            char *m = value_str(&f->items[j].value, STYLE_CELL);
            int same = m != NULL && strcmp(m, s) == 0;

            free(m);
            if (same)
                break;
        }
        if (s != NULL && j < f->nitems)
            ret = fail(CLI_FAIL,
                       "%.120s '%.120s' has no %s member '%.120s' (it has a%s %s one: write "
                       "%.120s:%s); nothing was written",
                       key, field, type_name(vals[i].type), s,
                       f->items[j].value.type == REP_INT ? "n" : "",
                       type_name(f->items[j].value.type), field, type_name(f->items[j].value.type));
        else
            ret = fail(CLI_FAIL, "%.120s '%.120s' has no %s member '%.120s'; nothing was written",
                       key, field, type_name(vals[i].type), s ? s : "?");
        free(s);
        goto out;
    }
out:
    rep_record_free(&rec);
    return ret;
}

/*
 * add|rm|append COLL/REC FIELD[:TYPE] VALUE...: add members to a set, remove them, or append
 * entries to a log, all in one change. VALUE is text unless FIELD carries a type, as in put
 * (FIELD:int 3, FIELD:null with no VALUE).
 */
static int
write_values(cli_t *c, rep_op_type_t op)
{
    const char *key = c->pos[1];
    const char *farg = c->pos[2];
    rep_kind_t kind = op == REP_OP_APPEND ? REP_KIND_LOG : REP_KIND_SET;
    size_t n = (size_t)c->npos - 3;
    rep_value_t *vals = NULL;
    uint8_t **bufs = NULL;
    char *field = NULL;
    const char *type;
    size_t tlen;
    rep_replica_t *r = NULL;
    rep_txn_t *t = NULL;
    int ret, rc;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    if (strchr(farg, '=') != NULL)
        return fail(CLI_USAGE, "'%.120s': the value is its own argument: %.120s %.120s FIELD VALUE",
                    farg, c->pos[0], key);
    if ((ret = typed_field(farg, strlen(farg), &field, &type, &tlen)) != CLI_OK)
        goto out_args;
    if (type_is(type, tlen, "null")) {
        if (n > 0) {
            ret = fail(CLI_USAGE, "'%.120s': a null takes no value", farg);
            goto out_args;
        }
        n = 1;
    } else if (n == 0) {
        ret = fail(CLI_USAGE, "%.120s: missing VALUE (usage: replica %.120s COLL/REC FIELD VALUE)",
                   c->pos[0], c->pos[0]);
        goto out_args;
    }
    vals = calloc(n, sizeof *vals);
    bufs = calloc(n, sizeof *bufs);
    if (vals == NULL || bufs == NULL) {
        ret = fail(CLI_FAIL, "out of memory");
        goto out_args;
    }
    for (size_t i = 0; i < n; i++) {
        if (type_is(type, tlen, "null"))
            vals[i].type = REP_NULL;
        else if ((ret = typed_value(c->pos[3 + i], type, tlen, c->pos[3 + i], &vals[i],
                                    &bufs[i])) != CLI_OK)
            goto out_args;
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        goto out_args;
    if (op == REP_OP_REMOVE && (ret = check_members(r, key, field, vals, n)) != CLI_OK)
        goto out_close;
    if ((ret = begin_txn(c, r, &t)) != CLI_OK)
        goto out_close;
    for (size_t i = 0; i < n; i++) {
        if (op == REP_OP_ADD)
            rc = rep_txn_add(t, key, field, &vals[i]);
        else if (op == REP_OP_REMOVE)
            rc = rep_txn_remove(t, key, field, &vals[i]);
        else
            rc = rep_txn_append(t, key, field, &vals[i]);
        if (rc == REP_EKIND) {
            ret = report_kind(r, key, field, kind);
            goto out_txn;
        }
        if (rc < 0) {
            ret = fail(arg_code(rc), "%.120s '%.120s': %.120s", key, field, rep_strerror(rc));
            goto out_txn;
        }
    }
    if ((ret = commit_write(r, t, key, field, kind)) != CLI_OK)
        goto out_txn;
    if (op == REP_OP_ADD)
        printf("saved %s (added %zu member%s to ", key, n, n == 1 ? "" : "s");
    else if (op == REP_OP_REMOVE)
        printf("saved %s (removed %zu member%s from ", key, n, n == 1 ? "" : "s");
    else
        printf("saved %s (appended %zu entr%s to ", key, n, n == 1 ? "y" : "ies");
    put_safe(field);
    printf(")\n");

out_txn:
    rep_txn_free(&t);
out_close:
    rep_replica_close(&r);
out_args:
    for (size_t i = 0; bufs != NULL && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(vals);
    free(field);
    return ret;
}

static int
cmd_add(cli_t *c)
{
    return write_values(c, REP_OP_ADD);
}

static int
cmd_rm(cli_t *c)
{
    return write_values(c, REP_OP_REMOVE);
}

static int
cmd_append(cli_t *c)
{
    return write_values(c, REP_OP_APPEND);
}

/* ---- get ------------------------------------------------------------------------------------- */

/*
 * The field @p name of @p rec that `get KEY NAME` shows: the field of that name (when a kind
 * clash gives it several kinds: the register, else the counter, else the set, else the log,
 * as rep_replica_get() chooses); failing that, "name:kind" picks one kind of a clash. NULL
 * when there is none.
 */
static const rep_field_t *
pick_field(const rep_record_t *rec, const char *name)
{
    static const rep_kind_t order[] = {REP_KIND_REGISTER, REP_KIND_COUNTER, REP_KIND_SET,
                                       REP_KIND_LOG};
    const char *colon = strrchr(name, ':');
    const rep_field_t *f = NULL;
    rep_kind_t kind;
    char *base;

    for (size_t i = 0; i < sizeof order / sizeof order[0] && f == NULL; i++)
        f = find_field(rec, name, order[i]);
    if (f != NULL || colon == NULL)
        return f;
    kind = kind_by_name(colon + 1, strlen(colon + 1));
    if (kind == 0 || (base = strndup(name, (size_t)(colon - name))) == NULL)
        return NULL;
    f = find_field(rec, base, kind);
    free(base);
    return f;
}

/* A set's members or a log's entries, one per line (text escaped so each stays one line):
 *   penicillin
 *   2026-11-26T01:26:11.672Z  alice  called, left a message */
static int
print_items(const rep_field_t *f, const char *indent)
{
    size_t uw = 0;

    for (size_t i = 0; f->kind == REP_KIND_LOG && i < f->nitems; i++) {
        size_t w = text_width(user_name(f->items[i].user));

        if (w > uw && w <= MAX_PAD)
            uw = w;
    }
    for (size_t i = 0; i < f->nitems; i++) {
        const rep_entry_t *e = &f->items[i];
        char *s = value_str(&e->value, STYLE_CELL);
        char when[48];

        if (s == NULL)
            return -ENOMEM;
        fputs(indent, stdout);
        if (f->kind == REP_KIND_LOG) {
            format_time(e->hlc, when, sizeof when);
            printf("%s  ", when);
            print_padded(user_name(e->user), uw);
            fputs("  ", stdout);
        }
        puts(s); /* value_str() escaped it */
        free(s);
    }
    return 0;
}

static int
get_field(const cli_t *c, rep_replica_t *r, const char *key, const char *name)
{
    rep_record_t *rec = NULL;
    const rep_field_t *f;
    int ret, rc;

    rc = rep_replica_get_record(r, key, &rec);
    if (rc == REP_ENOTFOUND)
        return fail(CLI_FAIL, "%.120s: no such record", key);
    if (rc < 0)
        return fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
    f = pick_field(rec, name);
    if (f == NULL) {
        ret = fail(CLI_FAIL, "%.120s: no field '%.120s'", key, name);
        goto out;
    }
    if (c->json) {
        json_t *o = json_object();
        int bad = 0;

        bad |= jset(o, "key", json_string(key));
        bad |= jset(o, "field", json_str(f->name));
        bad |= jset(o, "kind", json_string(kind_name(f->kind)));
        bad |= jset(o, "value", json_field_value(f));
        bad |= jset(o, "conflict", json_boolean(f->siblings > 1 || f->kind_clash));
        bad |= jset(o, "kind_clash", json_boolean(f->kind_clash));
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
        goto out;
    }
    if (f->kind == REP_KIND_SET || f->kind == REP_KIND_LOG)
        rc = print_items(f, "");
    else
        rc = print_raw_value(&f->value);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "out of memory");
        goto out;
    }
    if (f->siblings > 1)
        note("%.120s '%.120s' has %u conflicting values, see `replica conflicts %.120s`", key, name,
             f->siblings, key);
    if (f->kind_clash)
        note("%.120s '%.120s' was started as different kinds on different devices; this is the "
             "%s (read each as %.120s:KIND), see `replica conflicts %.120s`",
             key, or_empty(f->name), kind_name(f->kind), or_empty(f->name), key);
    ret = CLI_OK;
out:
    rep_record_free(&rec);
    return ret;
}

/*
 *   patients/8812
 *     allergies (set)  = [latex, penicillin]
 *     calls (log)      = (2 entries)
 *         2026-11-26T01:26:11.672Z  alice  called, left a message
 *         2026-11-26T01:27:00.000Z  bob    called back
 *     name             = Ada
 *     phone            = 555-0199   (conflict: 2 values, see `replica conflicts`)
 *     visits (counter) = 3
 */
static int
print_record(const rep_record_t *rec)
{
    char **labels;
    size_t width = 0;
    int ret = 0;

    put_safe(or_empty(rec->key));
    putchar('\n');
    labels = calloc(rec->nfields + 1, sizeof *labels);
    if (labels == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < rec->nfields; i++) {
        size_t w;

        labels[i] = field_label(&rec->fields[i]);
        if (labels[i] == NULL) {
            ret = -ENOMEM;
            goto out;
        }
        w = text_width(labels[i]);
        if (w > width && w <= MAX_PAD)
            width = w;
    }
    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i];
        char *s = field_summary(f, STYLE_CELL);

        if (s == NULL) {
            ret = -ENOMEM;
            goto out;
        }
        fputs("  ", stdout);
        print_padded(labels[i], width);
        fputs(" = ", stdout);
        fputs(s, stdout); /* value_str() escaped it */
        if (f->siblings > 1)
            printf("   (conflict: %u values, see `replica conflicts`)", f->siblings);
        if (f->kind_clash)
            printf("   (kind clash, see `replica conflicts`)");
        putchar('\n');
        free(s);
        if (f->kind == REP_KIND_LOG && print_items(f, "      ") < 0) {
            ret = -ENOMEM;
            goto out;
        }
    }
    if (rec->nfields == 0)
        printf("  (no fields)\n");
    if (rec->delete_conflict)
        printf("  (conflict: deleted on one device while changed on another, see `replica "
               "conflicts`)\n");
out:
    for (size_t i = 0; i < rec->nfields; i++)
        free(labels[i]);
    free(labels);
    return ret;
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

/* One record per line: key, then field=value pairs; a set shows as [a,b], a log as
 * "(N entries)", the fields of a kind clash as name:kind=value. */
static int
print_list_line(const rep_record_t *rec, size_t width)
{
    print_padded(or_empty(rec->key), width);
    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i];
        char *s = field_summary(f, STYLE_WORD);

        if (s == NULL)
            return -ENOMEM;
        fputs("  ", stdout);
        put_safe(or_empty(f->name));
        if (f->kind_clash)
            printf(":%s", kind_name(f->kind));
        printf("=%s", s);
        if (f->siblings > 1)
            fputs(" (conflict)", stdout);
        if (f->kind_clash)
            fputs(" (kind clash)", stdout);
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
    rep_record_t *rec = NULL;
    char have[64];
    int ret, rc, is_register = 0;

    if ((ret = check_key(key)) != CLI_OK)
        return ret;
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    /* Say so when there is nothing to delete, rather than writing a pointless tombstone. */
    rc = rep_replica_get_record(r, key, &rec);
    if (rc == 0 && field != NULL)
        is_register = find_field(rec, field, REP_KIND_REGISTER) != NULL;
    rep_record_free(&rec);
    if (rc == REP_ENOTFOUND) {
        ret = fail(CLI_FAIL, "%.120s: no such record", key);
        goto out_close;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
        goto out_close;
    }
    if (field != NULL && !is_register) {
        /* Only a register can be deleted; counters, sets and logs go with their record. */
        other_kinds(r, key, field, REP_KIND_REGISTER, have, sizeof have);
        if (have[0] != '\0')
            ret = report_kind(r, key, field, REP_KIND_REGISTER);
        else
            ret = fail(CLI_FAIL, "%.120s: no field '%.120s'", key, field);
        goto out_close;
    }
    if ((ret = begin_txn(c, r, &t)) != CLI_OK)
        goto out_close;
    if (field != NULL)
        rc = rep_txn_del_field(t, key, field);
    else
        rc = rep_txn_del_record(t, key);
    if (rc == REP_EKIND && field != NULL) {
        ret = report_kind(r, key, field, REP_KIND_REGISTER);
        goto out_txn;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", key, rep_strerror(rc));
        goto out_txn;
    }
    rc = rep_txn_commit(t, NULL);
    if (rc == REP_EKIND && field != NULL) {
        ret = report_kind(r, key, field, REP_KIND_REGISTER);
        goto out_txn;
    }
    if (rc < 0) {
        ret = rc == REP_EKEY ? commit_failed(key, "not deleted", rc)
                             : fail(CLI_FAIL, "%.120s: not deleted: %.120s", key, rep_strerror(rc));
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
    case REP_OP_INCR:
        return "incr";
    case REP_OP_ADD:
        return "add";
    case REP_OP_REMOVE:
        return "remove";
    case REP_OP_APPEND:
        return "append";
    default:
        return "unknown";
    }
}

static int
op_has_value(rep_op_type_t type)
{
    return type == REP_OP_SET || type == REP_OP_INCR || type == REP_OP_ADD ||
           type == REP_OP_REMOVE || type == REP_OP_APPEND;
}

/* The ops of a change on one record, as history --json and changes --json show them; NULL
 * when out of memory. */
static json_t *
json_ops(const rep_op_t *v, size_t n)
{
    json_t *ops = json_array();
    int bad = ops == NULL;

    for (size_t j = 0; j < n && !bad; j++) {
        const rep_op_t *op = &v[j];
        json_t *jo = json_object();

        bad |= jset(jo, "op", json_string(op_name(op->type)));
        bad |= jset(jo, "field", json_str(op->field));
        bad |= jset(jo, "kind", json_string(kind_name(op->kind)));
        if (op_has_value(op->type))
            bad |= jset(jo, "value", json_value(&op->value));
        bad |= jpush(ops, jo);
    }
    if (bad) {
        json_decref(ops);
        return NULL;
    }
    return ops;
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
        json_t *ops = json_ops(ch->ops, ch->nops);
        bad |= jset(jc, "actor", json_hex64(ch->actor));
        bad |= jset(jc, "seq", json_u64(ch->seq));
        bad |= jset(jc, "hlc", json_u64(ch->hlc));
        bad |= jset(jc, "time", json_time(ch->hlc));
        bad |= jset(jc, "user", json_str(ch->user));
        bad |= jset(jc, "ops", ops);
        bad |= jpush(changes, jc);
    }
    bad |= jset(o, "key", json_string(key));
    bad |= jset(o, "partial", json_boolean(h->partial));
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
    case REP_OP_INCR:
        printf("incr ");
        put_safe(field);
        if (op->value.type == REP_INT)
            printf(" %+" PRId64, op->value.u.i);
        break;
    case REP_OP_ADD:
    case REP_OP_REMOVE:
    case REP_OP_APPEND:
        s = value_str(&op->value, STYLE_CELL);
        if (s == NULL)
            return -ENOMEM;
        printf("%s ", op->type == REP_OP_ADD ? "add" : op->type == REP_OP_REMOVE ? "rm" : "append");
        put_safe(field);
        printf(": %s", s);
        free(s);
        break;
    default:
        printf("(unknown operation %d on ", (int)op->type);
        put_safe(field[0] ? field : "the record");
        putchar(')');
        break;
    }
    /* The new kinds' own ops say their kind; a set, del or clear on one would be news. */
    if (op->kind != REP_KIND_REGISTER && !(op_has_value(op->type) && op->type != REP_OP_SET))
        printf("   (%s)", kind_name(op->kind));
    putchar('\n');
    return 0;
}

/*
 *   2024-05-01T14:03:22.123Z  device 1a2b3c4d5e6f7081  #1  alice
 *       set name = Ada
 *
 * A replica that caught up from a snapshot got state, not the changes that made it: a line
 * says so first, where the older changes would be.
 */
static int
print_history(const char *key, const rep_history_t *h)
{
    int seqw = 1;

    if (h->partial)
        printf("(history before %s is not here: this replica caught up from a snapshot)\n",
               h->n == 0 ? "now" : "the changes below");
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
        bad |= jset(jc, "kind_clash", json_boolean(cf->kind_clash));
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
print_conflict(rep_replica_t *r, const rep_conflicts_t *cs, size_t i)
{
    const rep_conflict_t *cf = &cs->items[i];
    int is_record = or_empty(cf->field)[0] == '\0';
    char **cells;
    size_t vw = 0, uw = 0;
    int ret = 0;

    put_safe(or_empty(cf->key));
    if (is_record) {
        printf("  (record): deleted on one device, changed on another\n");
    } else if (cf->kind_clash) {
        /* patients/8812  phone (counter): kind clash, also a register
         *     = 2 */
        const char *sep = ", also";
        rep_record_t *rec = NULL;
        const rep_field_t *f;

        fputs("  ", stdout);
        put_safe(cf->field);
        printf(" (%s): kind clash", kind_name(cf->kind));
        for (size_t j = 0; j < cs->n; j++) {
            const rep_conflict_t *o = &cs->items[j];

            if (j != i && o->kind_clash && o->kind != cf->kind &&
                strcmp(or_empty(o->key), or_empty(cf->key)) == 0 &&
                strcmp(or_empty(o->field), or_empty(cf->field)) == 0) {
                printf("%s a %s", sep, kind_name(o->kind));
                sep = " and";
            }
        }
        putchar('\n');
        /* A register of a clash may come with its siblings; show any other field's value. */
        if (cf->n == 0 && rep_replica_get_record(r, or_empty(cf->key), &rec) == 0 &&
            (f = find_field(rec, or_empty(cf->field), cf->kind)) != NULL) {
            char *sum = field_summary(f, STYLE_CELL);

            if (sum == NULL)
                ret = -ENOMEM;
            else
                printf("    = %s\n", sum);
            free(sum);
        }
        rep_record_free(&rec);
        if (ret < 0)
            return ret;
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
    size_t nsib = 0, nclash = 0;
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
        if (print_conflict(r, cs, i) < 0)
            ret = fail(CLI_FAIL, "out of memory");
        if (cs->items[i].n > 0)
            nsib++;
        if (cs->items[i].kind_clash)
            nclash++;
    }
    if (nsib > 0 && ret == CLI_OK)
        printf("(* is the value shown; the others are kept until someone edits the field)\n");
    if (nclash > 0 && ret == CLI_OK)
        printf("(a kind clash: two devices started one field as different kinds at once; both\n"
               " fields are kept: `replica get KEY NAME:KIND` reads each)\n");
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

/* {"<actor hex>": n, ...} of a list of (actor, n) pairs; NULL if memory ran out. */
static json_t *
json_actor_map(const rep_vv_entry_t *e, size_t n)
{
    json_t *o = json_object();
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        char hex[17];

        snprintf(hex, sizeof hex, "%016" PRIx64, e[i].actor);
        bad |= jset(o, hex, json_u64(e[i].seq));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *
json_status(const rep_info_t *in, const rep_vv_entry_t *missing, size_t nmissing)
{
    char office[2 * REP_OFFICE_ID_BYTES + 1];
    json_t *o = json_object();
    int bad = 0;

    format_office(in->office_id, office);
    bad |= jset(o, "office_id", json_string(office));
    bad |= jset(o, "office_name", json_str(in->office_name));
    bad |= jset(o, "device_name", json_str(in->device_name));
    bad |= jset(o, "role", json_string(in->relay ? "relay" : "workstation"));
    bad |= jset(o, "actor", json_hex64(in->actor));
    bad |= jset(o, "incarnation", json_integer(in->incarnation));
    bad |= jset(o, "seq", json_u64(in->seq));
    bad |= jset(o, "hlc", json_u64(in->hlc));
    bad |= jset(o, "time", json_time(in->hlc));
    bad |= jset(o, "changes", json_u64(in->changes));
    bad |= jset(o, "pending", json_u64(in->pending));
    bad |= jset(o, "records", json_u64(in->records));
    bad |= jset(o, "conflicts", json_u64(in->conflicts));
    bad |= jset(o, "members", json_u64(in->members));
    bad |= jset(o, "refused", json_u64(in->refused));
    bad |= jset(o, "vv", json_actor_map(in->vv, in->nvv));
    bad |= jset(o, "skewed", json_actor_map(in->skewed, in->nskewed));
    bad |= jset(o, "forked", json_actor_map(in->forked, in->nforked));
    bad |= jset(o, "waiting_for", json_actor_map(missing, nmissing));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A duration for people: "850 ms", "42 s", "3 min 20 s", "2 h 5 min", "3 d 4 h". */
static void
format_duration(uint64_t ms, char *buf, size_t n)
{
    uint64_t s = ms / 1000;

    if (ms < 1000)
        snprintf(buf, n, "%" PRIu64 " ms", ms);
    else if (s < 60)
        snprintf(buf, n, "%" PRIu64 " s", s);
    else if (s < 3600)
        snprintf(buf, n, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%" PRIu64 " h %" PRIu64 " min", s / 3600, s / 60 % 60);
    else
        snprintf(buf, n, "%" PRIu64 " d %" PRIu64 " h", s / 86400, s / 3600 % 24);
}

static void
print_status(const char *dir, const rep_info_t *in, const rep_vv_entry_t *missing, size_t nmissing)
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
    if (in->relay)
        printf("role         relay: stores and forwards the office's sealed changes, cannot read "
               "them, holds no state\n");
    printf("actor        %016" PRIx64 "  (incarnation %" PRIu32 ")\n", in->actor, in->incarnation);
    printf("seq          %" PRIu64 "\n", in->seq);
    printf("clock        %s\n", when);
    printf("changes      %" PRIu64 "\n", in->changes);
    printf("pending      %" PRIu64 "\n", in->pending);
    printf("records      %" PRIu64 "\n", in->records);
    printf("conflicts    %" PRIu64 "\n", in->conflicts);
    printf("members      %" PRIu64 " entr%s in the membership log (enrollments, revocations)\n",
           in->members, in->members == 1 ? "y" : "ies");
    printf("refused      %" PRIu64 " import(s) refused whole: forged, altered, damaged, of "
           "another office or sealed with a key this replica lacks\n",
           in->refused);
    for (size_t i = 0; i < in->nvv; i++)
        printf("%-12s %016" PRIx64 "  %" PRIu64 "\n", i == 0 ? "vv" : "", in->vv[i].actor,
               in->vv[i].seq);
    if (in->nvv == 0)
        printf("vv           (nothing yet)\n");
    for (size_t i = 0; i < in->nskewed; i++) {
        char ahead[64];

        format_duration(in->skewed[i].seq, ahead, sizeof ahead);
        printf("%-12s %016" PRIx64 "  clock up to %s ahead of this one's\n", i == 0 ? "skewed" : "",
               in->skewed[i].actor, ahead);
    }
    for (size_t i = 0; i < in->nforked; i++)
        printf("%-12s %016" PRIx64 "  history forked: change %" PRIu64 " refused (restored from "
               "a backup?)\n",
               i == 0 ? "forked" : "", in->forked[i].actor, in->forked[i].seq);
    for (size_t i = 0; i < nmissing; i++)
        printf("%-12s %016" PRIx64 "  up to seq %" PRIu64 "\n", i == 0 ? "waiting for" : "",
               missing[i].actor, missing[i].seq);
}

static json_t *json_node_status(const rep_node_status_t *ns);
static void print_node_status(const char *dir);

static int
cmd_status(cli_t *c)
{
    rep_replica_t *r = NULL;
    rep_info_t *in = NULL;
    rep_vv_entry_t *missing = NULL;
    size_t nmissing = 0;
    int ret, rc;

    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_info(r, &in);
    if (rc >= 0)
        rc = rep_replica_missing(r, &missing, &nmissing);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    } else if (c->json) {
        json_t *o = json_status(in, missing, nmissing);
        rep_node_status_t *ns = NULL;

        if (o != NULL && jset(o, "node", rep_node_status_at(c->dir, &ns) == 0
                                             ? json_node_status(ns) : json_null()) != 0) {
            json_decref(o);
            o = NULL;
        }
        rep_node_status_free(&ns);
        ret = json_emit(o);
    } else {
        print_status(c->dir, in, missing, nmissing);
        print_node_status(c->dir);
        ret = CLI_OK;
    }
    rep_free(missing);
    rep_info_free(&in);
    rep_replica_close(&r);
    return ret;
}

/* ---- init ------------------------------------------------------------------------------------ */

/*
 * Is this bundle a snapshot (the whole state, from rep_replica_snapshot() or
 * rep_replica_catchup()) rather than a batch of changes? A snapshot frame starts with "RPLS", a
 * batch with "RPLB" (README.md "Formats"); replica.h has no call that says which, and the
 * library verifies the rest.
 */
static int
is_snapshot(const uint8_t *p, size_t n)
{
    return n >= 4 && memcmp(p, "RPLS", 4) == 0;
}

static void
print_import_stats(const char *file, int snapshot, const rep_import_stats_t *st)
{
    if (snapshot)
        printf("imported %s: snapshot of %" PRIu64 " entries: merged, %" PRIu64
               " applied from pending, %" PRIu64 " pending\n",
               file, st->entries, st->applied, st->pending);
    else
        printf("imported %s: %" PRIu64 " changes: %" PRIu64 " applied, %" PRIu64
               " duplicates, %" PRIu64 " pending, %" PRIu64 " forks\n",
               file, st->changes, st->applied, st->duplicates, st->pending, st->forks);
    if (st->members > 0)
        printf("  %" PRIu64 " new membership entr%s: devices enrolled or revoked (see `replica "
               "devices`)\n",
               st->members, st->members == 1 ? "y" : "ies");
    if (st->revoked > 0)
        printf("  %" PRIu64 " change(s) of a revoked device refused: written after its "
               "revocation; not applied\n",
               st->revoked);
    if (st->rebuilt > 0)
        printf("  this replica rebuilt its state without a revoked device's late changes (what "
               "it had by a snapshot comes again with the next sync)\n");
}

/* The import of @p file (a snapshot or not) failed with @p rc: one line, exit status 1. */
static int
import_failed(const char *file, int snapshot, int rc)
{
    if (rc == REP_EFORK && snapshot)
        return fail(CLI_FAIL,
                    "%.120s: refused: a device's history forked (the snapshot contradicts what "
                    "this replica has of it; see `replica status`); nothing was imported",
                    file);
    if (rc == REP_EAUTH)
        return fail(CLI_FAIL,
                    "%.120s: rejected: not signed by a member of this office, or altered; "
                    "nothing was imported",
                    file);
    if (rc == REP_EKEY)
        return fail(CLI_FAIL,
                    "%.120s: rejected: sealed with an office key this replica does not hold "
                    "(is it enrolled in this office?); nothing was imported",
                    file);
    if (rc == REP_EOFFICE)
        return fail(CLI_FAIL, "%.120s: rejected: it belongs to another office; nothing was "
                              "imported", file);
    return fail(CLI_FAIL, "%.120s: %.120s; nothing was imported", file, rep_strerror(rc));
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

/* Forget secret bytes the library returned, then free them. */
static void
free_secret(uint8_t *p, size_t n)
{
    if (p == NULL)
        return;
    explicit_bzero(p, n);
    rep_free(p);
}

/*
 * Remove what rep_replica_open(REP_OPEN_CREATE | REP_OPEN_EXCL) made in @p dir: it was missing
 * or empty before, so every file in it is the replica's. @p dir itself goes if it was made.
 */
static void
unmake_replica(const char *dir, int made_dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    if (made_dir)
        rmdir(dir);
}

/* This device's role ("admin" or "member") as the membership log has it, or "?". */
static void
self_role(rep_replica_t *r, char *buf, size_t n)
{
    rep_devices_t *d = NULL;

    snprintf(buf, n, "?");
    if (rep_replica_devices(r, &d) < 0)
        return;
    for (size_t i = 0; i < d->n; i++) {
        if (d->items[i].self)
            snprintf(buf, n, "%s", or_empty(d->items[i].role));
    }
    rep_devices_free(&d);
}

/*
 * Open a provisioning file (from `invite --file`) with its one-time code, before anything is
 * created. On success *prov and *data are the caller's (free_secret()).
 */
static int
open_provision_file(const cli_t *c, uint8_t **prov, size_t *provn, uint8_t **data, size_t *datan)
{
    uint8_t *file = NULL, office[REP_OFFICE_ID_BYTES];
    char *device_name = NULL;
    size_t n = 0;
    int ret = CLI_OK, rc;

    *prov = *data = NULL;
    *provn = *datan = 0;
    rc = read_file(c->from, &file, &n);
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", c->from, strerror(-rc));
    rc = rep_provision_unseal(file, n, c->code, prov, provn, data, datan);
    if (rc == -EINVAL) {
        ret = fail(CLI_USAGE, "--code %.40s: not a one-time code (it looks like XXXX-XXXX-XXXX)",
                   c->code);
    } else if (rc == REP_EAUTH) {
        ret = fail(CLI_FAIL, "%.120s: wrong code or damaged file; nothing was created", c->from);
    } else if (rc == REP_ECORRUPT && rep_batch_office(file, n, office, NULL) == 0) {
        ret = fail(CLI_FAIL,
                   "%.120s: a bundle from `export`, not a provisioning file: only enrolled "
                   "replicas import bundles; on an admin workstation run `replica invite "
                   "--file FILE --device NAME`; nothing was created",
                   c->from);
    } else if (rc == REP_ECORRUPT) {
        ret = fail(CLI_FAIL, "%.120s: not a provisioning file (make one with `replica invite "
                             "--file` on an admin workstation); nothing was created", c->from);
    } else if (rc == REP_EVERSION) {
        ret = fail(CLI_FAIL, "%.120s: made by a newer version of replica: update it; nothing "
                             "was created", c->from);
    } else if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s; nothing was created", c->from, rep_strerror(rc));
    }
    free(file);
    if (ret != CLI_OK)
        return ret;
    rc = rep_provision_info(*prov, *provn, NULL, NULL, &device_name);
    if (rc < 0)
        ret = fail(CLI_FAIL, "%.120s: %.120s; nothing was created", c->from, rep_strerror(rc));
    else if (c->device != NULL && strcmp(c->device, device_name) != 0)
        ret = fail(CLI_FAIL,
                   "%.120s: this file enrolls the device '%.64s', not '%.64s'; nothing was "
                   "created (drop --device, or ask an admin for a file for '%.64s')",
                   c->from, device_name, c->device, c->device);
    rep_free(device_name);
    if (ret != CLI_OK) {
        free_secret(*prov, *provn);
        free_secret(*data, *datan);
        *prov = *data = NULL;
        *provn = *datan = 0;
    }
    return ret;
}

/*
 * init: found a new office (this device its first admin), or, with --from FILE --code CODE,
 * make the replica of a device an admin enrolled with `invite --file`. Nothing is left behind
 * when it fails.
 */
static int
cmd_init(cli_t *c)
{
    rep_open_opts_t opts;
    rep_replica_t *r = NULL;
    rep_info_t *in = NULL;
    rep_import_stats_t st;
    char office_hex[2 * REP_OFFICE_ID_BYTES + 1], role[16];
    uint8_t *prov = NULL, *data = NULL;
    size_t provn = 0, datan = 0;
    struct stat sb;
    int ret, rc, made_dir;

    memset(&opts, 0, sizeof opts);
    memset(&st, 0, sizeof st);
    if (c->from != NULL && c->code == NULL)
        return fail(CLI_USAGE, "init --from %.120s needs --code CODE: the one-time code that "
                               "came with the file (separately)", c->from);
    if (c->from == NULL && c->code != NULL)
        return fail(CLI_USAGE, "init: --code goes with --from FILE");
    if (c->from != NULL && c->office != NULL)
        return fail(CLI_USAGE, "init --from: the office is the file's; drop --office");
    if (c->from != NULL &&
        (ret = open_provision_file(c, &prov, &provn, &data, &datan)) != CLI_OK)
        return ret;
    opts.flags = REP_OPEN_CREATE | REP_OPEN_EXCL; /* never touch an existing replica */
    if ((c->seen & OPT_RELAY) && (prov == NULL || c->listen != NULL)) {
        free_secret(prov, provn);
        free_secret(data, datan);
        return fail(CLI_USAGE, prov == NULL ? "init --relay goes with --from FILE (an admin's "
                                              "`invite --file F --device NAME --relay`)"
                                            : "init --relay: a relay lists no endpoint; give "
                                              "--listen to `serve --relay`");
    }
    if (c->seen & OPT_RELAY)
        opts.flags |= REP_OPEN_RELAY;
    if (prov != NULL) {
        opts.provision = prov;
        opts.provision_len = provn;
    } else {
        opts.office_name = c->office;
        opts.device_name = c->device;
    }
    made_dir = stat(c->dir, &sb) != 0;
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
    if (rc == REP_EROLE) {
        ret = fail(CLI_USAGE, (c->seen & OPT_RELAY)
                                  ? "%.120s enrolls a workstation, not a relay: drop --relay"
                                  : "%.120s enrolls a relay (a node without the office key): "
                                    "add --relay on the relay host",
                   c->from);
        goto out;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "%.120s: %.120s", c->dir, rep_strerror(rc));
        goto out;
    }
    if (datan > 0) {
        rc = rep_replica_import(r, data, datan, &st);
        if (rc < 0) {
            ret = fail(CLI_FAIL, "%.120s: importing the office's data from %.120s failed: "
                                 "%.120s; nothing was created",
                       c->dir, c->from, rep_strerror(rc));
            goto out_unmake;
        }
    }
    /* where this device's node listens, in its record of the office's device list */
    if (c->listen != NULL) {
        rc = rep_replica_announce(r, &c->listen, 1, NULL);
        if (rc < 0) {
            ret = fail(arg_code(rc), "%.120s: %.120s; nothing was created", c->listen,
                       rep_strerror(rc));
            goto out_unmake;
        }
    }
    rc = rep_replica_info(r, &in);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s; nothing was created", c->dir, rep_strerror(rc));
        goto out_unmake;
    }
    self_role(r, role, sizeof role);
    format_office(in->office_id, office_hex);
    printf("created replica in %s\n", c->dir);
    printf("  office  %s  (", office_hex);
    put_safe(or_empty(in->office_name));
    printf(")\n  device  ");
    put_safe(or_empty(in->device_name));
    putchar('\n');
    printf("  actor   %016" PRIx64 "\n", in->actor);
    printf("  role    %s\n", role);
    if (prov != NULL) {
        if (datan > 0) {
            print_import_stats(c->from, is_snapshot(data, datan), &st);
            warn_import_stats(c->from, &st);
        }
        fflush(stdout); /* the note after the lines above, on a terminal or a pipe */
        note("delete %.120s now: it holds this workstation's secret key", c->from);
    }
    rep_info_free(&in);
    rep_replica_close(&r);
    ret = CLI_OK;
    goto out;

out_unmake:
    rep_replica_close(&r);
    unmake_replica(c->dir, made_dir);
out:
    free_secret(prov, provn);
    free_secret(data, datan);
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

/*
 * export: what the other side needs (VVFILE's replica, or an empty one), as
 * rep_replica_catchup() decides: the changes it lacks, or a snapshot of the whole state when
 * that is smaller or this replica holds some of those changes only as state. --changes
 * forces changes (rep_replica_export), --state a snapshot (rep_replica_snapshot; it does not
 * depend on what the other side has, so it takes no --since-file).
 */
static int
cmd_export(cli_t *c)
{
    int changes = (c->seen & OPT_CHANGES) != 0, state = (c->seen & OPT_STATE) != 0;
    rep_replica_t *r = NULL;
    uint8_t *vv = NULL, *out = NULL;
    size_t vvlen = 0, len = 0;
    int ret, rc;

    if ((ret = need_output(c)) != CLI_OK)
        return ret;
    if (changes && state)
        return fail(CLI_USAGE, "export: --changes and --state exclude each other (without "
                               "either, export writes whichever is smaller)");
    if (state && c->since_file != NULL)
        return fail(CLI_USAGE, "export: --state writes the whole state whatever VVFILE holds; "
                               "drop --since-file (or --state)");
    if (c->since_file != NULL) {
        rc = read_file(c->since_file, &vv, &vvlen);
        if (rc < 0)
            return fail(CLI_FAIL, "%.120s: %.120s", c->since_file, strerror(-rc));
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        goto out;
    if (state)
        rc = rep_replica_snapshot(r, &out, &len);
    else if (changes)
        rc = rep_replica_export(r, vv, vvlen, 0, &out, &len, NULL);
    else
        rc = rep_replica_catchup(r, vv, vvlen, 0, &out, &len, NULL);
    if (rc == REP_ESTATE && changes) {
        ret = fail(CLI_FAIL,
                   "%.120s: --changes: this replica holds some of the changes %.120s lacks only "
                   "as state (it caught up from a snapshot); drop --changes to export a snapshot",
                   c->dir, c->since_file ? c->since_file : "an empty replica");
        goto out_close;
    }
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
    fprintf(stderr, "exported %zu bytes to %s: %s\n", len, c->output,
            is_snapshot(out, len) ? "a snapshot of the whole state" : "changes");
    ret = CLI_OK;

out_close:
    rep_free(out);
    rep_replica_close(&r);
out:
    free(vv);
    return ret;
}

/*
 * import --check: verify a bundle as import would (framing, office, membership entries,
 * signatures, seals) and apply nothing. A refusal is reported as import's, but "it would be
 * refused"; a bundle that passes prints one line "FILE: OK: ...".
 */
static int
check_bundle(const cli_t *c, rep_replica_t *r, const char *file, const uint8_t *buf, size_t len,
             int snapshot)
{
    rep_import_stats_t st;
    int rc = rep_replica_verify(r, buf, len, &st);

    if (rc == REP_EAUTH)
        return fail(CLI_FAIL, "%.120s: check failed: not signed by a member of this office, or "
                              "altered; import would refuse it", file);
    if (rc == REP_EKEY)
        return fail(CLI_FAIL, "%.120s: check failed: sealed with an office key this replica does "
                              "not hold (is it enrolled in this office, or was it revoked?); "
                              "import would refuse it", file);
    if (rc == REP_EOFFICE)
        return fail(CLI_FAIL, "%.120s: check failed: it belongs to another office; import would "
                              "refuse it", file);
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: check failed: %.120s; import would refuse it", file,
                    rep_strerror(rc));
    if (c->json) {
        json_t *o = json_object();
        int bad = 0;

        bad |= jset(o, "file", json_string(file));
        bad |= jset(o, "ok", json_true());
        bad |= jset(o, "snapshot", json_boolean(snapshot));
        bad |= jset(o, "changes", json_u64(st.changes));
        bad |= jset(o, "entries", json_u64(st.entries));
        bad |= jset(o, "members", json_u64(st.members));
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        return json_emit(o);
    }
    if (snapshot)
        printf("%s: OK: a snapshot of %" PRIu64 " entries", file, st.entries);
    else
        printf("%s: OK: %" PRIu64 " change(s)", file, st.changes);
    printf(", %" PRIu64 " new membership entr%s; signed and sealed by members of this office; "
           "nothing was imported\n",
           st.members, st.members == 1 ? "y" : "ies");
    return CLI_OK;
}

/* Bundles from this size on get progress lines on stderr (without --json). */
#define IMPORT_PROGRESS_BYTES (1u << 20)

/* One progress line of a large import: "replica: import: ...". */
static void progress(const char *fmt, ...) CLI_PRINTF(1, 2);

static void
progress(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline("import: ", fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static double
seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* What a large import reports as it goes (rep_replica_import_progress). */
typedef struct import_progress {
    const char *file;
    int snapshot;
    struct timespec t0, last;
} import_progress_t;

static void
on_import_progress(void *ctx, rep_import_phase_t phase, uint64_t done, uint64_t total)
{
    import_progress_t *ip = ctx;

    if (phase == REP_IMPORT_VERIFYING && done == 0) {
        if (ip->snapshot)
            progress("verifying the snapshot's signature and seal");
        else
            progress("verifying %" PRIu64 " changes: every signature and seal", total);
    } else if (phase == REP_IMPORT_APPLYING && done == 0) {
        if (ip->snapshot)
            progress("verified in %.1f s; merging %" PRIu64 " entries in one transaction",
                     seconds_since(&ip->t0), total);
        else
            progress("verified in %.1f s; applying %" PRIu64 " changes in one transaction",
                     seconds_since(&ip->t0), total);
    } else if (phase == REP_IMPORT_APPLYING && done < total && seconds_since(&ip->last) >= 1) {
        progress("applied %" PRIu64 " of %" PRIu64 " changes", done, total);
    } else {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ip->last);
}

/*
 * import: read the bundle, then one library call verifies all of it (checksum, office,
 * membership entries, every signature and seal) and applies it in one transaction; a bundle
 * of IMPORT_PROGRESS_BYTES or more says so on stderr as it goes (reading, verifying,
 * applying, done with counts), except with --json, where stderr carries only warnings and
 * the error. A failure is still the last line on stderr.
 */
static int
cmd_import(cli_t *c)
{
    const char *file = c->pos[1];
    rep_replica_t *r = NULL;
    rep_import_stats_t st;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat sb;
    struct timespec t0;
    int ret, rc, snapshot, loud;

    memset(&st, 0, sizeof st);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    loud = !c->json && stat(file, &sb) == 0 && S_ISREG(sb.st_mode) &&
           sb.st_size >= (off_t)IMPORT_PROGRESS_BYTES;
    if (loud)
        progress("reading %.120s (%.1f MiB)", file, (double)sb.st_size / (1 << 20));
    rc = read_file(file, &buf, &len);
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", file, strerror(-rc));
    snapshot = is_snapshot(buf, len);
    if ((ret = open_replica(c, &r)) != CLI_OK)
        goto out;
    if (c->seen & OPT_CHECK) {
        if (loud)
            progress("checking %.120s: every signature and seal", file);
        ret = check_bundle(c, r, file, buf, len, snapshot);
        goto out_close;
    }
    import_progress_t ip = {file, snapshot, t0, t0};
    rc = rep_replica_import_progress(r, buf, len, loud ? on_import_progress : NULL, &ip, &st);
    if (rc < 0) {
        ret = import_failed(file, snapshot, rc);
        goto out_close;
    }
    if (loud && snapshot)
        progress("done in %.1f s: a snapshot of %" PRIu64 " entries merged, %" PRIu64
                 " new membership entries", seconds_since(&t0), st.entries, st.members);
    else if (loud)
        progress("done in %.1f s: %" PRIu64 " changes: %" PRIu64 " applied, %" PRIu64
                 " duplicates, %" PRIu64 " pending; %" PRIu64 " new membership entries",
                 seconds_since(&t0), st.changes, st.applied, st.duplicates, st.pending,
                 st.members);
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
        bad |= jset(o, "snapshot", json_boolean(snapshot));
        bad |= jset(o, "entries", json_u64(st.entries));
        bad |= jset(o, "members", json_u64(st.members));
        bad |= jset(o, "revoked", json_u64(st.revoked));
        bad |= jset(o, "rebuilt", json_boolean(st.rebuilt != 0));
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
    } else {
        print_import_stats(file, snapshot, &st);
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

/* ---- changes: the change feed ---------------------------------------------------------------- */

/* Changes a page of the feed asks the library for: memory stays bounded whatever the feed. */
#define FEED_PAGE 256

/* One JSON line per (change, record): the change's who and when, the record, its ops. */
static int
emit_feed_json(const rep_feed_change_t *ch)
{
    for (size_t i = 0; i < ch->nrecords; i++) {
        const rep_feed_record_t *rec = &ch->records[i];
        const char *slash = strchr(rec->key, '/');
        json_t *o = json_object(), *ops = json_ops(rec->ops, rec->nops);
        char *coll = slash ? strndup(rec->key, (size_t)(slash - rec->key)) : NULL;
        int bad = coll == NULL, rc;
        bad |= jset(o, "key", json_string(rec->key));
        bad |= jset(o, "collection", json_string(coll ? coll : ""));
        bad |= jset(o, "record", json_string(slash ? slash + 1 : ""));
        bad |= jset(o, "actor", json_hex64(ch->actor));
        bad |= jset(o, "seq", json_u64(ch->seq));
        bad |= jset(o, "hlc", json_u64(ch->hlc));
        bad |= jset(o, "time", json_time(ch->hlc));
        bad |= jset(o, "user", json_str(ch->user));
        bad |= jset(o, "device", json_string(ch->device_id));
        bad |= jset(o, "device_name", json_str(ch->device_name));
        bad |= jset(o, "ops", ops);
        free(coll);
        if (bad) {
            json_decref(o);
            return fail(CLI_FAIL, "out of memory building the JSON output");
        }
        rc = json_dumpf(o, stdout, JSON_COMPACT);
        json_decref(o);
        if (rc != 0 || putchar('\n') == EOF)
            return fail(CLI_FAIL, "writing the JSON output failed");
    }
    return CLI_OK;
}

/*
 *   2026-11-26T01:26:11.735Z  nurse (actor 1bb24da7c0ffee00)  #2  bob
 *     patients/8812
 *       set phone = 555-0199
 */
static int
print_feed_change(const rep_feed_change_t *ch)
{
    char when[48];

    format_time(ch->hlc, when, sizeof when);
    printf("%s  ", when);
    put_safe(ch->device_name[0] ? ch->device_name : "(unknown device)");
    printf(" (actor %016" PRIx64 ")  #%" PRIu64 "  ", ch->actor, ch->seq);
    put_safe(user_name(ch->user));
    putchar('\n');
    for (size_t i = 0; i < ch->nrecords; i++) {
        const rep_feed_record_t *rec = &ch->records[i];

        fputs("  ", stdout);
        put_safe(rec->key);
        putchar('\n');
        for (size_t j = 0; j < rec->nops; j++) {
            const rep_op_t *op = &rec->ops[j];

            if (op->type == REP_OP_SET && or_empty(op->field)[0] == '\0' && rec->nops > 1)
                continue; /* every field write also marks the record present */
            fputs("  ", stdout);
            if (print_op(op) < 0)
                return fail(CLI_FAIL, "out of memory");
        }
    }
    return CLI_OK;
}

static int
feed_failed(const cli_t *c, int rc)
{
    if (rc == -EINVAL)
        return fail(CLI_USAGE, "--since %.60s: not a cursor of `replica changes` (cut short or "
                               "mistyped? give the whole cursor a previous run printed, or "
                               "none to start from the beginning)", c->cursor);
    if (rc == REP_EOFFICE)
        return fail(CLI_FAIL, "--since: this cursor is of another office's replica (is --dir "
                              "the right replica?)");
    if (rc == REP_EVERSION)
        return fail(CLI_FAIL, "--since: this cursor is of a newer version of replica: update it");
    return fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
}

/*
 * changes: the change feed after --since, in pages of FEED_PAGE, each printed as it comes,
 * then the cursor that follows them all: a JSON line {"cursor", "changes", "more", "partial"}
 * with --json, else "cursor CURSOR". Up to --limit changes (0 or none: all).
 */
static int
cmd_changes(cli_t *c)
{
    rep_replica_t *r = NULL;
    rep_feed_t *f = NULL;
    char *cursor = NULL, *end;
    unsigned long long limit = 0;
    uint64_t given = 0;
    int ret, rc, more = 0, partial = 0;

    if (c->limit != NULL) {
        errno = 0;
        limit = strtoull(c->limit, &end, 10);
        if (c->limit[0] < '0' || c->limit[0] > '9' || *end != '\0' || errno != 0 ||
            limit > SIZE_MAX)
            return fail(CLI_USAGE, "--limit %.60s: give a number of changes (0: all)", c->limit);
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    if (c->cursor != NULL && (cursor = strdup(c->cursor)) == NULL) {
        ret = fail(CLI_FAIL, "out of memory");
        goto out;
    }
    ret = CLI_OK;
    for (;;) { /* each page hands out at least one change, or ends the loop */
        size_t page = FEED_PAGE;

        if (limit && limit - given < page)
            page = (size_t)(limit - given);
        rc = rep_replica_changes(r, cursor, page, 0, &f);
        if (rc < 0) {
            ret = feed_failed(c, rc);
            goto out;
        }
        for (size_t i = 0; i < f->n && ret == CLI_OK; i++)
            ret = c->json ? emit_feed_json(&f->changes[i]) : print_feed_change(&f->changes[i]);
        if (ret != CLI_OK)
            goto out;
        given += f->n;
        partial |= f->partial;
        more = f->more;
        free(cursor);
        if ((cursor = strdup(f->cursor)) == NULL) {
            ret = fail(CLI_FAIL, "out of memory");
            goto out;
        }
        rep_feed_free(&f);
        if (!more || (limit && given >= limit))
            break;
    }
    if (partial)
        note("some changes after the cursor are held by this replica only as state (it caught "
             "up from a snapshot): their effect is in the records, not in the feed");
    if (c->json) {
        json_t *o = json_object();
        int bad = 0;

        bad |= jset(o, "cursor", json_string(cursor));
        bad |= jset(o, "changes", json_u64(given));
        bad |= jset(o, "more", json_boolean(more));
        bad |= jset(o, "partial", json_boolean(partial));
        if (bad || json_dumpf(o, stdout, JSON_COMPACT) != 0)
            ret = fail(CLI_FAIL, "writing the JSON output failed");
        else
            putchar('\n');
        json_decref(o);
    } else {
        if (given == 0)
            printf("no changes after this cursor\n");
        printf("cursor %s\n", cursor);
    }
out:
    rep_feed_free(&f);
    free(cursor);
    rep_replica_close(&r);
    return ret;
}

/* ---- the network: the node's status, devices, serve ------------------------------------------ */

static json_t *
json_node_status(const rep_node_status_t *ns)
{
    json_t *o = json_object(), *peers = json_array();
    int bad = peers == NULL;

    bad |= jset(o, "listen", json_str(ns->listen));
    bad |= jset(o, "device_id", json_string(ns->device_id));
    bad |= jset(o, "refused_connections", json_u64(ns->refused_connections));
    bad |= jset(o, "bad_frames", json_u64(ns->bad_frames));
    for (size_t i = 0; i < ns->npeers && !bad; i++) {
        const rep_peer_status_t *p = &ns->peers[i];
        json_t *e = json_object();

        bad |= jset(e, "endpoint", json_str(p->endpoint));
        bad |= jset(e, "device_id", json_str(p->device_id));
        bad |= jset(e, "device_name", json_str(p->device_name));
        bad |= jset(e, "connected", json_boolean(p->connected));
        bad |= jset(e, "last_seen_ms", json_u64(p->last_seen_ms));
        bad |= jset(e, "behind", json_u64(p->behind));
        bad |= jset(e, "sent_bytes", json_u64(p->sent_bytes));
        bad |= jset(e, "received_bytes", json_u64(p->received_bytes));
        bad |= jset(e, "refused", json_u64(p->refused));
        bad |= jset(e, "discovered", json_boolean(p->discovered));
        bad |= jpush(peers, e);
    }
    bad |= jset(o, "peers", peers);
    if (!bad) {
        const rep_discovery_status_t *d = &ns->discovery;
        json_t *disc = json_object(), *ign = json_object();

        bad |= jset(disc, "on", json_boolean(d->on));
        bad |= jset(disc, "port", json_u64(d->port));
        bad |= jset(disc, "sent", json_u64(d->sent));
        bad |= jset(disc, "taken", json_u64(d->taken));
        bad |= jset(ign, "other_office", json_u64(d->other_office));
        bad |= jset(ign, "malformed", json_u64(d->malformed));
        bad |= jset(ign, "forged", json_u64(d->forged));
        bad |= jset(ign, "no_key", json_u64(d->no_key));
        bad |= jset(ign, "strangers", json_u64(d->strangers));
        bad |= jset(ign, "misaddressed", json_u64(d->misaddressed));
        bad |= jset(ign, "stale", json_u64(d->stale));
        bad |= jset(ign, "replayed", json_u64(d->replayed));
        bad |= jset(disc, "ignored", ign);
        bad |= jset(o, "discovery", disc);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The node part of `status`: asked of the node serving the directory, if one runs. */
static void
print_node_status(const char *dir)
{
    rep_node_status_t *ns = NULL;
    int rc = rep_node_status_at(dir, &ns);
    struct timespec now;

    if (rc == -ECONNREFUSED) {
        printf("node         no node running\n");
        return;
    }
    if (rc < 0) {
        printf("node         not answering: %s\n", rep_strerror(rc));
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    printf("node         %s%s  (device %.16s)\n", *ns->listen ? "listening on " : "not listening",
           ns->listen, ns->device_id);
    if (ns->refused_connections || ns->bad_frames)
        printf("node refused %" PRIu64 " connection(s) of devices not enrolled, %" PRIu64
               " malformed message(s)\n",
               ns->refused_connections, ns->bad_frames);
    for (size_t i = 0; i < ns->npeers; i++) {
        const rep_peer_status_t *p = &ns->peers[i];
        uint64_t wall = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
        char seen[64] = "never";

        if (p->last_seen_ms) {
            format_duration(wall > p->last_seen_ms ? wall - p->last_seen_ms : 0, seen,
                            sizeof seen);
            strcat(seen, " ago");
        }
        printf("%-12s ", i == 0 ? "peers" : "");
        put_safe(*p->device_name ? p->device_name : "?");
        printf(" (%.16s)  %s%s  %s  last seen %s  behind %" PRIu64 "  sent %" PRIu64
               " B  received %" PRIu64 " B  refused %" PRIu64 "\n",
               *p->device_id ? p->device_id : "unresolved", *p->endpoint ? p->endpoint : "inbound",
               p->discovered ? " (discovered)" : "", p->connected ? "connected" : "not connected",
               seen, p->behind, p->sent_bytes, p->received_bytes, p->refused);
    }
    if (ns->npeers == 0)
        printf("peers        (none)\n");
    if (ns->discovery.on) {
        const rep_discovery_status_t *d = &ns->discovery;
        uint64_t ignored = d->other_office + d->malformed + d->forged + d->no_key +
                           d->strangers + d->misaddressed + d->stale + d->replayed;

        printf("discovery    UDP port %u: %" PRIu64 " beacon(s) sent, %" PRIu64
               " taken, %" PRIu64 " ignored",
               d->port, d->sent, d->taken, ignored);
        if (ignored)
            printf(" (other office %" PRIu64 ", malformed %" PRIu64 ", forged %" PRIu64
                   ", no key %" PRIu64 ", not a member %" PRIu64 ", misaddressed %" PRIu64
                   ", stale %" PRIu64 ", replayed %" PRIu64 ")",
                   d->other_office, d->malformed, d->forged, d->no_key, d->strangers,
                   d->misaddressed, d->stale, d->replayed);
        printf("\n");
    } else {
        printf("discovery    off\n");
    }
    rep_node_status_free(&ns);
}

static int
cmd_devices(cli_t *c)
{
    rep_replica_t *r = NULL;
    rep_devices_t *d = NULL;
    int ret, rc;

    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_devices(r, &d);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
        goto out;
    }
    if (c->json) {
        json_t *o = json_object(), *arr = json_array();
        int bad = arr == NULL;

        for (size_t i = 0; i < d->n && !bad; i++) {
            const rep_device_t *v = &d->items[i];
            json_t *e = json_object(), *eps = json_array();

            bad |= eps == NULL;
            for (size_t j = 0; j < v->nendpoints && !bad; j++)
                bad |= jpush(eps, json_str(v->endpoints[j]));
            bad |= jset(e, "id", json_string(v->id));
            bad |= jset(e, "name", json_str(v->name));
            bad |= jset(e, "role", json_str(v->role));
            bad |= jset(e, "self", json_boolean(v->self));
            bad |= jset(e, "endpoints", eps);
            bad |= jpush(arr, e);
        }
        bad |= jset(o, "devices", arr);
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
        goto out;
    }
    for (size_t i = 0; i < d->n; i++) {
        const rep_device_t *v = &d->items[i];

        printf("%.16s  %-6s  ", v->id, v->role);
        put_safe(*v->name ? v->name : "?");
        for (size_t j = 0; j < v->nendpoints; j++)
            printf("%s%s", j == 0 ? "  " : " ", v->endpoints[j]);
        printf("%s\n", v->self ? "  (this device)" : "");
    }
    if (d->n == 0)
        printf("(no device is enrolled)\n");
    ret = CLI_OK;
out:
    rep_devices_free(&d);
    rep_replica_close(&r);
    return ret;
}

/* ---- revoke --------------------------------------------------------------------------------- */

/* Is @p s a prefix of a device id: 8 to 64 lowercase hex digits? */
static int
id_prefix(const char *s)
{
    size_t n = strlen(s);

    return n >= 8 && n < REP_DEVICE_ID_SIZE && strspn(s, hexdigits) == n;
}

/*
 * The enrolled device @p arg names: by name, by id, or by a unique prefix of its id (at least
 * 8 hex digits, as `devices` shows 16). Sets *match (NULL when none) and returns CLI_OK, or
 * reports an ambiguous prefix.
 */
static int
find_device(const rep_devices_t *d, const char *arg, const rep_device_t **match)
{
    size_t nprefix = 0;
    const rep_device_t *prefix = NULL;

    *match = NULL;
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(or_empty(d->items[i].name), arg) == 0 || strcmp(d->items[i].id, arg) == 0) {
            *match = &d->items[i];
            return CLI_OK;
        }
    }
    if (!id_prefix(arg))
        return CLI_OK;
    for (size_t i = 0; i < d->n; i++) {
        if (strncmp(d->items[i].id, arg, strlen(arg)) == 0) {
            prefix = &d->items[i];
            nprefix++;
        }
    }
    if (nprefix > 1)
        return fail(CLI_USAGE, "'%.64s' is the start of %zu devices' ids: give more of it (see "
                               "`replica devices --json`); nothing was revoked", arg, nprefix);
    *match = prefix;
    return CLI_OK;
}

/*
 * revoke DEVICE: remove a device from the office (a lost or stolen workstation). This replica
 * (an admin's) signs the membership entry with the device's cutoff and rotates the office key;
 * a node serving the directory is poked by the library and passes it on.
 */
static int
cmd_revoke(cli_t *c)
{
    const char *arg = c->pos[1];
    rep_replica_t *r = NULL;
    rep_devices_t *d = NULL;
    rep_node_status_t *ns = NULL;
    const rep_device_t *m = NULL;
    char id[REP_DEVICE_ID_SIZE], *name = NULL;
    uint64_t kept = 0;
    size_t remaining = 0;
    int ret, rc, node;

    if (arg[0] == '\0')
        return fail(CLI_USAGE, "revoke: give a device's name or id (see `replica devices`)");
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = rep_replica_devices(r, &d);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
        goto out;
    }
    if ((ret = find_device(d, arg, &m)) != CLI_OK)
        goto out;
    if (m != NULL && m->self) {
        ret = fail(CLI_FAIL, "'%.64s' is this device: a device cannot revoke itself (revoke it "
                             "on another admin's workstation); nothing was revoked", arg);
        goto out;
    }
    name = strdup(m != NULL ? or_empty(m->name) : arg);
    if (name == NULL) {
        ret = fail(CLI_FAIL, "out of memory");
        goto out;
    }
    remaining = d->n > 0 ? d->n - 1 : 0;
    rc = rep_replica_revoke(r, m != NULL ? m->id : arg, id, &kept);
    if (rc == -EPERM) {
        ret = fail(CLI_FAIL, "%.120s: only an admin can revoke devices, and this one is not an "
                             "admin; nothing was revoked", c->dir);
        goto out;
    }
    if (rc == REP_ENOTFOUND) {
        ret = fail(CLI_FAIL, "no device of this office is named '%.64s' or has that id (see "
                             "`replica devices`); nothing was revoked", arg);
        goto out;
    }
    if (rc == -EINVAL && m == NULL) {
        ret = fail(CLI_USAGE, "revoke %.64s: %.120s", arg, rep_strerror(rc));
        goto out;
    }
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s; nothing was revoked", c->dir, rep_strerror(rc));
        goto out;
    }
    node = rep_node_status_at(c->dir, &ns) == 0;
    rep_node_status_free(&ns);
    if (c->json) {
        json_t *o = json_object();
        int bad = 0;

        bad |= jset(o, "id", json_string(id));
        bad |= jset(o, "name", json_str(name));
        bad |= jset(o, "kept", json_u64(kept));
        bad |= jset(o, "node", json_boolean(node));
        if (bad) {
            json_decref(o);
            o = NULL;
        }
        ret = json_emit(o);
        goto out;
    }
    printf("revoked ");
    put_safe(name);
    printf("  (device %s)\n", id);
    printf("  kept        %" PRIu64 " change(s) of it: those this replica had (the cutoff); any "
           "later one is refused everywhere\n",
           kept);
    printf("  office key  rotated to a new epoch, sealed to the %zu remaining device(s): it can "
           "read nothing written from now on\n",
           remaining);
    if (node)
        printf("  the others  learn of it with the next sync: the node serving this directory "
               "passes it on now\n");
    else
        printf("  the others  learn of it with the next sync: start `replica serve` here, or "
               "carry a bundle (`replica export`)\n");
    ret = CLI_OK;
out:
    free(name);
    rep_devices_free(&d);
    rep_replica_close(&r);
    return ret;
}

/* ---- invite / join ----------------------------------------------------------------------- */

/* "90s", "15m", "2h", "1d" (a bare number is seconds): milliseconds, or 0 when malformed. */
static uint64_t
parse_duration(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || end == s || n == 0 || *s == '-')
        return 0;
    uint64_t unit = 1000;
    if (*end == 'm')
        unit = 60 * 1000;
    else if (*end == 'h')
        unit = 3600 * 1000;
    else if (*end == 'd')
        unit = 24ull * 3600 * 1000;
    else if (*end != 's' && *end != '\0')
        return 0;
    if (*end && end[1])
        return 0;
    return n > UINT64_MAX / unit ? 0 : n * unit;
}

/* Write all of @p p to @p fd, then flush it to disk. Returns 0 or -errno. */
static int
write_all_sync(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return fsync(fd) != 0 ? -errno : 0;
}

/*
 * invite --file F --device NAME [--role member|admin]: enroll a new workstation by a file
 * (a USB stick) rather than over the network. This replica (an admin's) signs the membership
 * entry; F holds the new device's provisioning and a snapshot of the office's data, sealed
 * under a fresh one-time code, which is printed. F is created new (mode 0600) before anything
 * is enrolled, and never overwrites a file.
 */
static int
cmd_invite_file(cli_t *c)
{
    const char *role = c->seen & OPT_RELAY ? "relay" : c->role ? c->role : "member";
    rep_replica_t *r = NULL;
    rep_devices_t *devs = NULL;
    uint8_t *prov = NULL, *snap = NULL, *sealed = NULL;
    size_t provn = 0, snapn = 0, sealedn = 0;
    char code[REP_CODE_SIZE];
    int ret, rc, fd = -1;

    if (c->ttl != NULL)
        return fail(CLI_USAGE, "invite --file: a file has no --ttl (its one-time code guards "
                               "it); drop --ttl");
    if (c->file[0] == '\0')
        return fail(CLI_USAGE, "invite: --file needs a file name");
    if (c->device == NULL || c->device[0] == '\0')
        return fail(CLI_USAGE, "invite --file %.120s needs --device NAME: the new workstation's "
                               "name", c->file);
    if ((c->seen & OPT_RELAY) && c->role != NULL)
        return fail(CLI_USAGE, "invite: --relay and --role exclude each other");
    if (strcmp(role, "member") != 0 && strcmp(role, "admin") != 0 && strcmp(role, "relay") != 0)
        return fail(CLI_USAGE, "--role %.40s: a role is member or admin (or use --relay)", role);
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    /* names label devices in every list and log line: one device per name */
    rc = rep_replica_devices(r, &devs);
    for (size_t i = 0; rc == 0 && i < devs->n; i++) {
        if (devs->items[i].name != NULL && strcmp(devs->items[i].name, c->device) == 0)
            rc = REP_EEXIST;
    }
    rep_devices_free(&devs);
    if (rc == REP_EEXIST) {
        ret = fail(CLI_FAIL, "a device named '%.64s' is enrolled already; nothing was "
                             "enrolled (pick another name)", c->device);
        goto out;
    }
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
        goto out;
    }
    fd = open(c->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s%s; nothing was enrolled", c->file, strerror(errno),
                   errno == EEXIST ? " (it is never overwritten: remove it or pick another name)"
                                   : "");
        goto out;
    }
    rc = rep_replica_provision(r, c->device, role, &prov, &provn);
    if (rc < 0) {
        if (rc == -EPERM)
            ret = fail(CLI_FAIL, "%.120s: only an admin device enrolls workstations, and this "
                                 "one is not an admin; nothing was enrolled", c->dir);
        else if (rc == REP_EEXIST)
            ret = fail(CLI_FAIL, "a device named '%.64s' is enrolled already; nothing was "
                                 "enrolled", c->device);
        else
            ret = fail(arg_code(rc), "--device %.64s: %.120s; nothing was enrolled", c->device,
                       rep_strerror(rc));
        goto out_unlink;
    }
    rc = strcmp(role, "relay") == 0 ? 0 /* no state: it could not read it */
                                    : rep_replica_snapshot(r, &snap, &snapn);
    if (rc == 0)
        rc = rep_provision_seal(prov, provn, snap, snapn, code, &sealed, &sealedn);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s (the device '%.64s' was enrolled, but has no "
                             "file: enroll it again under another name)",
                   c->dir, rep_strerror(rc), c->device);
        goto out_unlink;
    }
    rc = write_all_sync(fd, sealed, sealedn);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    fd = -1;
    if (rc == 0)
        rc = sync_parent_dir(c->file);
    if (rc < 0) {
        ret = fail(CLI_FAIL, "%.120s: %.120s (the device '%.64s' was enrolled, but has no "
                             "file: enroll it again under another name)",
                   c->file, strerror(-rc), c->device);
        goto out_unlink;
    }
    fprintf(stderr,
            "wrote %s: it enrolls the %s '%s' as %s in this office.\n"
            "Carry the file to it, and give the one-time code below separately (by phone or in\n"
            "person, never with the file). On the new %s run:\n"
            "  replica --dir DIR init --from FILE --code CODE%s\n"
            "then delete the file.\n",
            c->file, strcmp(role, "relay") == 0 ? "relay" : "workstation", c->device, role,
            strcmp(role, "relay") == 0 ? "relay host" : "workstation",
            strcmp(role, "relay") == 0 ? " --relay" : "");
    printf("%s\n", code);
    ret = CLI_OK;
    goto out;

out_unlink:
    if (fd >= 0)
        close(fd);
    unlink(c->file);
out:
    free_secret(prov, provn);
    rep_free(snap);
    rep_free(sealed);
    explicit_bzero(code, sizeof code);
    rep_replica_close(&r);
    return ret;
}

static int
cmd_invite(cli_t *c)
{
    if (c->file != NULL)
        return cmd_invite_file(c);
    if (c->device != NULL || c->role != NULL)
        return fail(CLI_USAGE, "invite: --device and --role go with --file (a network "
                               "invitation is named by `join --device` on the new workstation)");
    uint64_t ttl = c->ttl ? parse_duration(c->ttl) : 15 * 60 * 1000;
    if (ttl == 0 || ttl > 7ull * 24 * 3600 * 1000)
        return fail(CLI_USAGE, "--ttl %.40s: give a duration up to 7d, like 90s, 15m, 2h or 1d",
                    c->ttl);
    char *token = NULL, *why = NULL;
    int relay = (c->seen & OPT_RELAY) != 0;
    int rc = rep_node_invite_at(c->dir, ttl, relay ? "relay" : "member", &token, &why);
    if (rc == -ECONNREFUSED)
        return fail(CLI_FAIL, "%.120s: no node is running here: start `replica serve --listen "
                              "tcp://IP:PORT` on this directory first (it answers the new "
                              "workstation)", c->dir);
    if (rc == -EIO) {
        int ret = fail(CLI_FAIL, "%.120s: the node refused: %.200s%s", c->dir, why ? why : "?",
                       why && strstr(why, "not permitted") ? " (only an admin device invites)"
                       : why && strstr(why, "assign") ? " (it listens on every address: serve "
                                                         "--listen on the address workstations "
                                                         "dial)"
                                                       : "");
        rep_free(why);
        return ret;
    }
    if (rc < 0)
        return fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    if (relay)
        fprintf(stderr, "an invitation for one relay (a cloud node that stores and forwards the\n"
                        "office's sealed changes without the office key), valid %.40s; on the\n"
                        "relay host run:\n"
                        "  replica --dir DIR join TOKEN --relay --device NAME\n"
                        "  replica --dir DIR serve --relay --listen tcp://0.0.0.0:PORT\n",
                c->ttl ? c->ttl : "15m");
    else
        fprintf(stderr, "an invitation for one workstation, valid %.40s; on the new workstation "
                        "run:\n"
                        "  replica --dir DIR join TOKEN --device NAME\n",
                c->ttl ? c->ttl : "15m");
    printf("%s\n", token);
    rep_free(token);
    return CLI_OK;
}

static int
cmd_join(cli_t *c)
{
    rep_open_opts_t opts;
    rep_replica_t *r = NULL;
    rep_info_t *in = NULL;
    char *why = NULL;
    memset(&opts, 0, sizeof opts);
    opts.device_name = c->device;
    if (c->seen & OPT_RELAY)
        opts.flags |= REP_OPEN_RELAY;
    int rc = rep_replica_join(c->dir, c->pos[1], &opts, 0, &r, &why);
    switch (rc) {
    case 0: break;
    case REP_EROLE:
        return fail(CLI_USAGE, (c->seen & OPT_RELAY)
                                   ? "this invitation enrolls a workstation, not a relay: drop "
                                     "--relay, or ask for `replica invite --relay`"
                                   : "this invitation enrolls a relay (a node without the office "
                                     "key): join with --relay on the relay host");
    case REP_ECORRUPT:
        return fail(CLI_USAGE, "this is not an invitation token (mistyped or cut short?)");
    case REP_EVERSION:
        return fail(CLI_FAIL, "this invitation is of a newer version of replica: update it");
    case REP_EEXPIRED:
        return fail(CLI_FAIL, "this invitation has expired: ask for a new one "
                              "(replica invite on an admin workstation)");
    case REP_EREFUSED: {
        int ret = fail(CLI_FAIL, "the office's node refused this invitation: %.200s",
                       why ? why : "it was already used, has expired, or was not issued by it");
        rep_free(why);
        return ret;
    }
    case REP_EEXIST:
        return fail(CLI_FAIL, "%.120s: there is a replica here already; join into a new "
                              "directory", c->dir);
    case -ETIMEDOUT:
        return fail(CLI_FAIL, "no node of the office answered (is `replica serve` running on "
                              "the inviting workstation, and reachable from here?)");
    case -EPROTO:
        return fail(CLI_FAIL, "the node that answered is not the one that issued this invitation");
    default:
        return fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc));
    }
    rc = rep_replica_info(r, &in);
    if (rc == 0 && in->relay)
        printf("joined office %s as the relay %s (no office key: it cannot read what it "
               "carries); start it with replica --dir %s serve --relay --listen "
               "tcp://0.0.0.0:PORT\n",
               in->office_name, in->device_name, c->dir);
    else if (rc == 0)
        printf("joined office %s as %s (%" PRIu64 " records); start it with "
               "replica --dir %s serve --listen tcp://IP:PORT\n",
               in->office_name, in->device_name, in->records, c->dir);
    rep_info_free(&in);
    rep_replica_close(&r);
    return rc < 0 ? fail(CLI_FAIL, "%.120s: %.120s", c->dir, rep_strerror(rc)) : CLI_OK;
}

/* ---- The front desk: day sheet, sample office ---------------------------------------------- */

/* The date of --date (checked), or today's in local time, into @p buf; *date points at it. */
static int
sheet_date(const cli_t *c, char buf[DAYSHEET_DATE_SIZE], const char **date)
{
    int rc;

    if (c->date != NULL) {
        if (daysheet_check_date(c->date) < 0)
            return fail(CLI_USAGE, "%.40s: --date %.40s: give a date as YYYY-MM-DD, e.g. 2026-11-25",
                        c->pos[0], c->date);
        *date = c->date;
        return CLI_OK;
    }
    if ((rc = daysheet_today(buf)) < 0)
        return fail(CLI_FAIL, "%.40s: today's date: %.120s", c->pos[0], strerror(-rc));
    *date = buf;
    return CLI_OK;
}

/*
 * The day sheet of @p date as one HTML page in *page (the caller's: free()), with the office's
 * and this device's names. REP_EROLE for a relay (it holds no office data).
 */
static int
render_sheet(rep_replica_t *r, const char *date, char **page, size_t *len)
{
    rep_info_t *in = NULL;
    daysheet_opts_t o;
    int rc;

    *page = NULL;
    if ((rc = rep_replica_info(r, &in)) < 0)
        return rc;
    if (in->relay) {
        rep_info_free(&in);
        return REP_EROLE;
    }
    memset(&o, 0, sizeof o);
    o.office = in->office_name;
    o.device = in->device_name;
    rc = daysheet_render(r, date, &o, page, len);
    rep_info_free(&in);
    return rc;
}

/* daysheet: the printable day sheet, to -o FILE (atomically, mode 0600) or stdout. */
static int
cmd_daysheet(cli_t *c)
{
    char today[DAYSHEET_DATE_SIZE];
    const char *date = NULL;
    rep_replica_t *r = NULL;
    char *page = NULL;
    size_t len = 0;
    int ret, rc;

    if ((ret = sheet_date(c, today, &date)) != CLI_OK)
        return ret;
    if (c->output != NULL && c->output[0] == '\0')
        return fail(CLI_USAGE, "daysheet: -o needs a file name (or - for stdout)");
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = render_sheet(r, date, &page, &len);
    rep_replica_close(&r);
    if (rc == REP_EROLE)
        return fail(CLI_FAIL, "daysheet: %.120s is a relay's replica: it holds no office data",
                    c->dir);
    if (rc < 0)
        return fail(CLI_FAIL, "daysheet: %.120s: %.120s", c->dir, rep_strerror(rc));
    if (c->output == NULL || strcmp(c->output, "-") == 0) {
        fwrite(page, 1, len, stdout);
        ret = CLI_OK;
    } else if ((rc = write_file_atomic_mode(c->output, (const uint8_t *)page, len, 0600)) < 0) {
        ret = fail(CLI_FAIL, "daysheet: %.200s: %.120s (no day sheet was written)", c->output,
                   strerror(-rc));
    } else {
        fprintf(stderr, "wrote the day sheet for %s to %s\n", date, c->output);
        ret = CLI_OK;
    }
    free(page);
    return ret;
}

/* sample-office: a realistic office day as sample data (clients/sample.h). */
static int
cmd_sample_office(cli_t *c)
{
    char today[DAYSHEET_DATE_SIZE];
    const char *date = NULL;
    rep_replica_t *r = NULL;
    sample_stats_t st;
    unsigned long n = 200;
    struct timespec t0, t1;
    int ret, rc;

    if ((ret = sheet_date(c, today, &date)) != CLI_OK)
        return ret;
    if (c->patients != NULL) {
        char *end = NULL;

        errno = 0;
        n = strtoul(c->patients, &end, 10);
        if (errno || end == c->patients || *end || c->patients[0] == '-' || n == 0 ||
            n > SAMPLE_MAX_PATIENTS)
            return fail(CLI_USAGE, "sample-office: --patients %.40s: give a count, 1 to %d",
                        c->patients, SAMPLE_MAX_PATIENTS);
    }
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = sample_office(r, date, (size_t)n, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rep_replica_close(&r);
    if (rc < 0)
        return fail(CLI_FAIL, "sample-office: %.120s: %.120s (%zu change(s) were made)", c->dir,
                    rc == REP_EROLE ? "a relay cannot write" : rep_strerror(rc), st.changes);
    printf("sample office for %s: %zu patients, %zu appointments (%zu cancelled) and %zu the "
           "day after, %zu messages (%zu open), %zu refill requests (%zu pending), %zu staff; "
           "%zu changes in %.2f s\n",
           date, st.patients, st.appts, st.cancelled, st.appts_next, st.msgs, st.msgs_open,
           st.refills, st.refills_pending, st.staff, st.changes,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("staff PINs (a demo's, not for real use):");
    for (const sample_staff_t *s = sample_staff; s->name != NULL; s++)
        printf(" %s %s%s", s->name, s->pin, s[1].name != NULL ? "," : "\n");
    return CLI_OK;
}

/* One line per node event on stderr, with the time. */
static void
serve_log(void *ctx, const char *line)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    fprintf(stderr, "replica: serve: %s.%03ld %s\n", when, ts.tv_nsec / 1000000, line);
}

/* How often serve refreshes DIR/daysheet-today.html, in seconds. */
#define DAYSHEET_EVERY_S 300

/* REPLICA_DAYSHEET_SECONDS (tests: a shorter interval), else DAYSHEET_EVERY_S; 0 if malformed. */
static long
daysheet_every(void)
{
    const char *env = getenv("REPLICA_DAYSHEET_SECONDS");
    char *end = NULL;
    long v;

    if (env == NULL || env[0] == '\0')
        return DAYSHEET_EVERY_S;
    errno = 0;
    v = strtol(env, &end, 10);
    if (errno || *end || end == env || v < 1 || v > 86400)
        return 0;
    return v;
}

/*
 * Write today's day sheet to @p path atomically (PATH.tmp written, flushed, renamed over it).
 * A failure is logged, never fatal; *@p failing remembers it so that the next success is
 * logged too (and the first success always is), as is one @p asked for (SIGUSR1).
 */
static void
serve_daysheet(rep_replica_t *r, const char *path, long every, int asked, int *failing)
{
    char date[DAYSHEET_DATE_SIZE], line[600];
    char *page = NULL;
    size_t len = 0;
    int rc;

    rc = daysheet_today(date);
    if (rc == 0)
        rc = render_sheet(r, date, &page, &len);
    if (rc == 0)
        rc = write_file_atomic_mode(path, (const uint8_t *)page, len, 0600);
    free(page);
    if (rc < 0) {
        snprintf(line, sizeof line,
                 "day sheet: could not write %.300s: %.120s (still serving; trying again in "
                 "%ld s)",
                 path, rc <= REP_ERROR_BASE ? rep_strerror(rc) : strerror(-rc), every);
        serve_log(NULL, line);
        *failing = 1;
    } else if (asked) {
        snprintf(line, sizeof line, "day sheet for %s written to %.300s (asked by SIGUSR1)", date,
                 path);
        serve_log(NULL, line);
        *failing = 0;
    } else if (*failing) {
        snprintf(line, sizeof line, "day sheet for %s written to %.300s (refreshed every %ld s)",
                 date, path, every);
        serve_log(NULL, line);
        *failing = 0;
    }
}

/*
 * Wait for SIGINT or SIGTERM (blocked in @p sigs) and return it; meanwhile, unless @p relay,
 * write DIR/daysheet-today.html at once and then every daysheet_every() seconds, so that a
 * recent sheet is on disk even if the program later will not start, and at once on SIGUSR1
 * (blocked in @p sigs too).
 */
static int
serve_wait(const cli_t *c, rep_replica_t *r, const sigset_t *sigs, int relay, long every)
{
    struct timespec now, due = {0, 0};
    int failing = 1; /* so that the first sheet written is logged */
    int asked = 0;
    char *path = NULL;

    if (!relay && asprintf(&path, "%s/daysheet-today.html", c->dir) < 0)
        path = NULL;
    for (;;) {
        struct timespec wait = {3600, 0};
        int sig;

        if (path != NULL) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > due.tv_sec ||
                (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec)) {
                serve_daysheet(r, path, every, asked, &failing);
                asked = 0;
                clock_gettime(CLOCK_MONOTONIC, &now);
                due = now;
                due.tv_sec += every;
            }
            wait.tv_sec = due.tv_sec - now.tv_sec;
            wait.tv_nsec = due.tv_nsec - now.tv_nsec;
            if (wait.tv_nsec < 0) {
                wait.tv_nsec += 1000000000L;
                wait.tv_sec--;
            }
        }
        sig = sigtimedwait(sigs, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            free(path);
            return sig;
        }
        if (sig == SIGUSR1) {
            due.tv_sec = 0; /* now */
            due.tv_nsec = 0;
            asked = 1;
        }
        /* -1: the time is up (EAGAIN) or a signal interrupted the wait (EINTR) */
    }
}

/*
 * serve: run a node in the foreground until SIGINT or SIGTERM. The signals are blocked before
 * the node's thread starts (it inherits the mask) and taken with sigtimedwait(), which also
 * times the day sheet's refreshes (serve_wait), so no handler runs anywhere and the stop is
 * an ordinary call.
 */
static int
cmd_serve(cli_t *c)
{
    rep_replica_t *r = NULL;
    rep_node_t *node = NULL;
    fd_http_t *http = NULL;
    rep_node_opts_t opts;
    sigset_t sigs;
    int ret, rc, sig = 0, written = 0;
    int discovery = !(c->seen & OPT_NO_DISCOVERY), wildcard;
    unsigned long beacon_port = 0;
    long every = daysheet_every();
    char *end = NULL;

    if (c->listen == NULL && c->npeers == 0 && !discovery && c->http == NULL)
        return fail(CLI_USAGE, "serve: give --listen tcp://IP:PORT, --peer tcp://IP:PORT, or both");
    if ((c->seen & OPT_PEERS_ONLY) && c->npeers == 0)
        return fail(CLI_USAGE, "serve --peers-only: give the --peer endpoints to dial");
    if ((c->seen & OPT_HTTP_AUTH_READ) && c->http == NULL)
        return fail(CLI_USAGE, "serve --http-auth-read: give --http ADDR:PORT too");
    if (c->beacon_port != NULL) {
        errno = 0;
        beacon_port = strtoul(c->beacon_port, &end, 10);
        if (errno || *end || end == c->beacon_port || beacon_port == 0 || beacon_port > 65535 ||
            !discovery)
            return fail(CLI_USAGE, "serve: --beacon-port %.40s: give a UDP port, 1 to 65535%s",
                        c->beacon_port, discovery ? "" : " (and drop --no-discovery)");
    }
    if (every == 0)
        return fail(CLI_USAGE, "serve: REPLICA_DAYSHEET_SECONDS=%.40s: give seconds, 1 to 86400",
                    getenv("REPLICA_DAYSHEET_SECONDS"));
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rep_info_t *in = NULL;
    rc = rep_replica_info(r, &in);
    int relay = rc == 0 && in->relay;
    rep_info_free(&in);
    if (rc == 0 && relay != ((c->seen & OPT_RELAY) != 0)) {
        ret = fail(CLI_USAGE, relay ? "serve: %.120s is a relay (no office key): serve it with "
                                      "--relay"
                                    : "serve --relay: %.120s is a workstation's replica, not a "
                                      "relay's (drop --relay)",
                   c->dir);
        goto out;
    }
    if (rc == 0 && relay && c->http != NULL) {
        ret = fail(CLI_USAGE, "serve --http: %.120s is a relay, which cannot read the office's "
                              "data: serve the front desk on a workstation", c->dir);
        goto out;
    }
    if (relay || (c->seen & OPT_PEERS_ONLY))
        discovery = 0; /* beacons are tagged with the office key, which a relay lacks; a site
                          that reaches the office through a relay dials only it */
    /* this device's record lists where it listens, so the office's nodes can dial it; not an
     * endpoint on every address, which names no address another node could dial (they find
     * this one by its beacons, or by --peer); a relay writes nothing: the office dials it as
     * --peer NAME=tcp://HOST:PORT */
    wildcard = c->listen != NULL && (strncmp(c->listen, "tcp://0.0.0.0:", 14) == 0 ||
                                     strncmp(c->listen, "tcp://*:", 8) == 0);
    if (rc == 0 && !relay && c->listen && !wildcard)
        rc = rep_replica_announce(r, &c->listen, 1, &written);
    if (rc == -EPERM) {
        ret = fail(CLI_FAIL, "serve: %.120s: this device is not a member of the office", c->dir);
        goto out;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "serve: %.120s: %.120s", c->listen ? c->listen : c->dir,
                   rep_strerror(rc));
        goto out;
    }
    if (written && c->listen)
        note("serve: %s now lists %s in the office's device list", c->dir, c->listen);
    if (relay)
        note("serve: a relay: it stores and forwards the office's sealed changes and cannot "
             "read them; workstations reach it with --peer NAME=%s",
             c->listen && !wildcard ? c->listen : "tcp://HOST:PORT");
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1); /* write the day sheet now */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    memset(&opts, 0, sizeof opts);
    opts.listen = c->listen;
    opts.peers = c->peers;
    opts.npeers = (size_t)c->npeers;
    if (c->seen & OPT_PEERS_ONLY)
        opts.flags |= REP_NODE_NO_AUTODIAL;
    opts.log = serve_log;
    if (discovery)
        opts.flags |= REP_NODE_DISCOVERY;
    opts.beacon_port = (unsigned)beacon_port;
    rc = rep_node_start(r, &opts, &node);
    if (rc == REP_EBUSY) {
        ret = fail(CLI_FAIL, "serve: %.120s: a node already serves this directory", c->dir);
        goto out;
    }
    if (rc < 0) {
        ret = fail(arg_code(rc), "serve: %.120s: %.120s", c->listen ? c->listen : c->dir,
                   rep_strerror(rc));
        goto out;
    }
    if (c->http != NULL) { /* the front desk: clients/frontdesk/http.h */
        fd_http_opts_t ho = {.bind = c->http, .auth_read = (c->seen & OPT_HTTP_AUTH_READ) != 0,
                             .log = serve_log};
        rc = fd_http_start(r, node, &ho, &http);
        if (rc < 0) {
            rep_node_stop(&node);
            ret = fail(rc == -EINVAL ? CLI_USAGE : CLI_FAIL, "serve --http %.80s: %.120s", c->http,
                       rc == -EINVAL ? "give ADDR:PORT, e.g. 127.0.0.1:8080" : strerror(-rc));
            goto out;
        }
    }
    sig = serve_wait(c, r, &sigs, relay, every);
    fd_http_stop(&http);
    rep_node_stop(&node);
    fprintf(stderr, "replica: serve: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ret = CLI_OK;
out:
    rep_replica_close(&r);
    return ret;
}

/*
 * staff add NAME: add a member of staff of the front desk (or give them a new PIN), the PIN
 * read from the first line of standard input, so it is in no command line or shell history.
 */
static int
cmd_staff(cli_t *c)
{
    rep_replica_t *r = NULL;
    char pin[FD_MAX_PIN + 3];
    int ret, rc;

    if (strcmp(c->pos[1], "add") != 0)
        return fail(CLI_USAGE, "staff: unknown subcommand '%.40s' (usage: replica staff add NAME "
                               "[--role ROLE], the PIN on standard input)", c->pos[1]);
    struct termios tio, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tio) == 0;
    if (tty) { /* typed: not echoed */
        fprintf(stderr, "PIN for %.64s: ", c->pos[2]);
        quiet = tio;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(pin, sizeof pin, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
        fputc('\n', stderr);
    }
    if (got == NULL)
        return fail(CLI_USAGE, "staff add: give the PIN on standard input");
    pin[strcspn(pin, "\r\n")] = '\0';
    if (strlen(pin) < FD_MIN_PIN || strlen(pin) > FD_MAX_PIN)
        return fail(CLI_USAGE, "staff add: a PIN is %d to %d characters", FD_MIN_PIN, FD_MAX_PIN);
    if ((ret = open_replica(c, &r)) != CLI_OK)
        return ret;
    rc = fd_staff_set(r, c->user, c->pos[2], pin, c->role);
    explicit_bzero(pin, sizeof pin);
    rep_replica_close(&r);
    if (rc == -EINVAL)
        return fail(CLI_USAGE, "staff add: '%.64s': a name is 1 to 64 bytes, without '/'",
                    c->pos[2]);
    if (rc < 0)
        return fail(CLI_FAIL, "staff add: %.120s", rep_strerror(rc));
    printf("staff/%s: PIN set%s%s\n", c->pos[2], c->role ? ", role " : "", c->role ? c->role : "");
    return CLI_OK;
}

/* ---- help and main --------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: replica [--dir DIR] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Keeps the office's shared record on this workstation. DIR is the replica directory\n"
    "(default: $REPLICA_DIR, else ./replica-data).\n"
    "\n"
    "commands:\n"
    "  init [--office NAME] [--device NAME] [--listen tcp://IP:PORT]\n"
    "                                          create a replica of a new office, this device\n"
    "                                          its admin (listening there with `serve`)\n"
    "  init --from FILE --code CODE [--device NAME] [--listen tcp://IP:PORT] [--relay]\n"
    "                                          create the replica of a workstation an admin\n"
    "                                          enrolled with `invite --file` (CODE: the\n"
    "                                          one-time code that came with FILE)\n"
    "  put COLL/REC FIELD=VALUE... [--user NAME]\n"
    "                                          set fields of a record, in one change\n"
    "  incr COLL/REC FIELD [N] [--user NAME]   add N (default 1, may be negative) to a counter\n"
    "  add COLL/REC FIELD[:TYPE] VALUE... [--user NAME]\n"
    "                                          add members to a set\n"
    "  rm COLL/REC FIELD[:TYPE] VALUE... [--user NAME]\n"
    "                                          remove members from a set\n"
    "  append COLL/REC FIELD[:TYPE] TEXT... [--user NAME]\n"
    "                                          append entries to a log\n"
    "  get COLL/REC [FIELD] [--json]           show a record, or one field's value\n"
    "  ls COLL [--prefix P] [--json]           list a collection's records\n"
    "  del COLL/REC [FIELD] [--user NAME]      delete a register field, or the whole record\n"
    "  history COLL/REC [--json]               who changed a record, when, and what\n"
    "  conflicts [COLL/REC] [--json]           values written at once on different devices\n"
    "  digest [--json]                         hash of the shared state: equal when in sync\n"
    "  status [--json]                         what this replica is and holds, and its node\n"
    "  devices [--json]                        the office's enrolled devices\n"
    "  invite [--ttl 15m] [--relay]            (admin, node serving) print a one-time token\n"
    "                                          that enrolls one new workstation (--relay: a\n"
    "                                          relay, a cloud node without the office key)\n"
    "  invite --file FILE --device NAME [--role member|admin | --relay]\n"
    "                                          (admin) enroll workstation NAME: write FILE\n"
    "                                          (its keys and the office's data, sealed) and\n"
    "                                          print the one-time code that opens it\n"
    "  join TOKEN [--device NAME] [--relay]    make a replica here, enrolled in the token's\n"
    "                                          office through its inviting node (--relay: as\n"
    "                                          the relay the token enrolls)\n"
    "  revoke DEVICE [--json]                  (admin) remove a lost or stolen workstation\n"
    "                                          (its name, or id: `devices`) from the office:\n"
    "                                          its later changes are refused, the office key\n"
    "                                          rotates; the others learn of it with the next sync\n"
    "  serve [--listen tcp://IP:PORT] [--peer [DEVICE=]tcp://IP:PORT]... [--no-discovery]\n"
    "        [--beacon-port N] [--peers-only] [--relay]\n"
    "                                          run a node: sync with the office's other nodes\n"
    "                                          until SIGINT or SIGTERM (events on stderr);\n"
    "                                          it finds them on the LAN by UDP broadcast\n"
    "                                          beacons (port N, default 47300) unless\n"
    "                                          --no-discovery; IP 0.0.0.0: every interface;\n"
    "                                          DEVICE= names a relay (it lists no endpoint);\n"
    "                                          --peers-only: dial no endpoint but the --peer ones;\n"
    "                                          --relay serves a relay's replica: it stores and\n"
    "                                          forwards sealed changes it cannot read;\n"
    "                                          a workstation's node writes the day sheet to\n"
    "                                          DIR/daysheet-today.html at start, every 5\n"
    "                                          minutes (REPLICA_DAYSHEET_SECONDS) and on SIGUSR1\n"
    "  export [--since-file VVFILE] [--changes] -o FILE\n"
    "                                          write a bundle of what VVFILE's replica (else an\n"
    "                                          empty one) lacks: its changes, or a snapshot of\n"
    "                                          the whole state when smaller (--changes: changes)\n"
    "  export --state -o FILE                  write a snapshot of the whole state\n"
    "  import FILE [--json]                    apply a bundle (changes or a snapshot) made\n"
    "                                          by an enrolled replica of this office\n"
    "  import --check FILE [--json]            verify a bundle as import would; apply nothing\n"
    "  vv -o FILE                              write what this replica has (for --since-file)\n"
    "  changes [--since CURSOR] [--limit N] [--json]\n"
    "                                          the change feed: changes after CURSOR (else\n"
    "                                          all), oldest first, then the next cursor; --json:\n"
    "                                          one JSON line per record a change touched\n"
    "  daysheet [--date YYYY-MM-DD] [-o FILE]  the day's printable sheet, one HTML page that\n"
    "                                          needs no server: schedule with patient names,\n"
    "                                          open messages, pending refills (default: today,\n"
    "                                          to stdout)\n"
    "  sample-office [--date YYYY-MM-DD] [--patients N]\n"
    "                                          write a sample office day: N patients (default\n"
    "                                          200), appointments for three providers, messages,\n"
    "                                          refills, staff with demo PINs\n"
    "  serve ... --http ADDR:PORT [--http-auth-read]\n"
    "                                          also serve the front desk's page and JSON API\n"
    "                                          (ADDR 127.0.0.1 unless given; --http-auth-read:\n"
    "                                          reading needs a signed-in user too)\n"
    "  staff add NAME [--role ROLE]            add a member of staff of the front desk, or\n"
    "                                          set their PIN (read from standard input)\n"
    "  help                                    show this text\n"
    "\n"
    "values for put:\n"
    "  FIELD=text  FIELD:int=3  FIELD:bool=true|false  FIELD:double=2.5  FIELD:null\n"
    "  FIELD:bytes=HEX  FIELD:string=text (needed when the field name holds ':')\n"
    "\n"
    "values for add, rm, append: the same types, each value its own argument:\n"
    "  FIELD text  FIELD:int 3  FIELD:bool true  FIELD:double 2.5  FIELD:null  FIELD:bytes HEX\n"
    "\n"
    "options:\n"
    "  --dir DIR       the replica directory\n"
    "  --user NAME     who makes the change, for the audit trail (default: $REPLICA_USER)\n"
    "  --json          machine-readable output\n"
    "  --version       print the version\n"
    "  --              what follows is not an option (-2 and the like are never options)\n"
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
    {"init", cmd_init, OPT_OFFICE | OPT_DEVICE | OPT_FROM | OPT_CODE | OPT_LISTEN | OPT_RELAY, 0, 0,
     "init [--office NAME] [--device NAME] [--listen tcp://IP:PORT] | init --from FILE "
     "--code CODE [--device NAME] [--listen tcp://IP:PORT] [--relay]"},
    {"put", cmd_put, OPT_USER, 2, -1, "put COLL/REC FIELD=VALUE... [--user NAME]"},
    {"incr", cmd_incr, OPT_USER, 2, 3, "incr COLL/REC FIELD [N] [--user NAME]"},
    {"add", cmd_add, OPT_USER, 2, -1, "add COLL/REC FIELD[:TYPE] VALUE... [--user NAME]"},
    {"rm", cmd_rm, OPT_USER, 2, -1, "rm COLL/REC FIELD[:TYPE] VALUE... [--user NAME]"},
    {"append", cmd_append, OPT_USER, 2, -1, "append COLL/REC FIELD[:TYPE] TEXT... [--user NAME]"},
    {"get", cmd_get, OPT_JSON, 1, 2, "get COLL/REC [FIELD] [--json]"},
    {"ls", cmd_ls, OPT_JSON | OPT_PREFIX, 1, 1, "ls COLL [--prefix P] [--json]"},
    {"del", cmd_del, OPT_USER, 1, 2, "del COLL/REC [FIELD] [--user NAME]"},
    {"history", cmd_history, OPT_JSON, 1, 1, "history COLL/REC [--json]"},
    {"conflicts", cmd_conflicts, OPT_JSON, 0, 1, "conflicts [COLL/REC] [--json]"},
    {"digest", cmd_digest, OPT_JSON, 0, 0, "digest [--json]"},
    {"status", cmd_status, OPT_JSON, 0, 0, "status [--json]"},
    {"devices", cmd_devices, OPT_JSON, 0, 0, "devices [--json]"},
    {"invite", cmd_invite, OPT_TTL | OPT_FILE | OPT_DEVICE | OPT_ROLE | OPT_RELAY, 0, 0,
     "invite [--ttl 15m] [--relay] | invite --file FILE --device NAME [--role member|admin | "
     "--relay]"},
    {"join", cmd_join, OPT_DEVICE | OPT_RELAY, 1, 1, "join TOKEN [--device NAME] [--relay]"},
    {"revoke", cmd_revoke, OPT_JSON, 1, 1, "revoke DEVICE [--json]"},
    {"serve", cmd_serve,
     OPT_LISTEN | OPT_PEER | OPT_RELAY | OPT_PEERS_ONLY | OPT_NO_DISCOVERY | OPT_BEACON_PORT |
         OPT_HTTP | OPT_HTTP_AUTH_READ,
     0, 0,
     "serve [--listen tcp://IP:PORT] [--peer [DEVICE=]tcp://IP:PORT]... [--no-discovery] "
     "[--beacon-port N] [--peers-only] [--relay] [--http ADDR:PORT [--http-auth-read]]"},
    {"staff", cmd_staff, OPT_ROLE | OPT_USER, 2, 2, "staff add NAME [--role ROLE] [--user NAME] "
     "(the PIN on standard input)"},
    {"export", cmd_export, OPT_SINCE | OPT_OUTPUT | OPT_CHANGES | OPT_STATE, 0, 0,
     "export [--since-file VVFILE] [--changes] -o FILE | export --state -o FILE"},
    {"import", cmd_import, OPT_JSON | OPT_CHECK, 1, 1, "import FILE [--check] [--json]"},
    {"vv", cmd_vv, OPT_OUTPUT, 0, 0, "vv -o FILE"},
    {"changes", cmd_changes, OPT_CURSOR | OPT_LIMIT | OPT_JSON, 0, 0,
     "changes [--since CURSOR] [--limit N] [--json]"},
    {"daysheet", cmd_daysheet, OPT_DATE | OPT_OUTPUT, 0, 0, "daysheet [--date YYYY-MM-DD] [-o FILE]"},
    {"sample-office", cmd_sample_office, OPT_DATE | OPT_PATIENTS, 0, 0,
     "sample-office [--date YYYY-MM-DD] [--patients N]"},
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
    free(c.peers);
    return ret;
}
