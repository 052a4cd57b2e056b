/*
 * daysheet.c — the printable day sheet (see daysheet.h for what is on it).
 *
 * One pass: the day's appointments (one rep_replica_list() by key prefix, one record read per
 * patient), then the msgs and refills collections, filtered here. Everything goes out through
 * esc(), which HTML-escapes; the markup itself is fixed text.
 */
/* POSIX functions come from -D_GNU_SOURCE on the command line (configure.ac). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daysheet.h"

#if defined(__GNUC__)
#define DS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DS_PRINTF(f, a)
#endif

#define DEFAULT_NOTES 3

/* What one sheet is being written with. */
typedef struct sheet {
    rep_replica_t *r;
    FILE *f;
    const char *date;
    size_t notes;
    int marked; /* a field with concurrent values was shown: add the footnote */
} sheet_t;

/* ---- Dates ----------------------------------------------------------------------------------- */

static int
digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

static int
num(const char *s, size_t n)
{
    int v = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int
daysheet_check_date(const char *date)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, leap;

    if (date == NULL || strlen(date) != 10 || date[4] != '-' || date[7] != '-' ||
        !digits(date, 4) || !digits(date + 5, 2) || !digits(date + 8, 2))
        return -EINVAL;
    y = num(date, 4);
    m = num(date + 5, 2);
    d = num(date + 8, 2);
    if (y < 1900 || m < 1 || m > 12 || d < 1)
        return -EINVAL;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return -EINVAL;
    return 0;
}

int
daysheet_today(char out[DAYSHEET_DATE_SIZE])
{
    time_t now = time(NULL);
    struct tm tm;

    if (now == (time_t)-1)
        return -errno;
    if (localtime_r(&now, &tm) == NULL)
        return -EOVERFLOW;
    if (strftime(out, DAYSHEET_DATE_SIZE, "%Y-%m-%d", &tm) != 10)
        return -EOVERFLOW;
    return 0;
}

/* "Wednesday 25 November 2026" for a checked date (C locale names). */
static void
long_date(const char *date, char *buf, size_t n)
{
    char wday[16], month[16];
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    tm.tm_year = num(date, 4) - 1900;
    tm.tm_mon = num(date + 5, 2) - 1;
    tm.tm_mday = num(date + 8, 2);
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    if (mktime(&tm) == (time_t)-1 || strftime(wday, sizeof wday, "%A", &tm) == 0 ||
        strftime(month, sizeof month, "%B", &tm) == 0)
        snprintf(buf, n, "%s", date);
    else
        snprintf(buf, n, "%s %d %s %d", wday, tm.tm_mday, month, tm.tm_year + 1900);
}

/* Local "HH:MM" of a hybrid logical clock value, with its date before it when it is not the
 * sheet's day. */
static void
note_time(const sheet_t *s, uint64_t hlc, char *buf, size_t n)
{
    time_t t = (time_t)((hlc >> 16) / 1000);
    struct tm tm;
    char day[DAYSHEET_DATE_SIZE];

    if (localtime_r(&t, &tm) == NULL || strftime(day, sizeof day, "%Y-%m-%d", &tm) != 10) {
        snprintf(buf, n, "?");
        return;
    }
    if (strcmp(day, s->date) == 0)
        strftime(buf, n, "%H:%M", &tm);
    else
        strftime(buf, n, "%Y-%m-%d %H:%M", &tm);
}

/* ---- Output ---------------------------------------------------------------------------------- */

static void out(sheet_t *s, const char *fmt, ...) DS_PRINTF(2, 3);

/* Fixed markup (never a value). */
static void
out(sheet_t *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(s->f, fmt, ap);
    va_end(ap);
}

/*
 * Write @p n bytes of text escaped for HTML (element content and quoted attributes alike):
 * & < > " ' as entities; C0 controls but tab and newline, DEL, NUL and C1 controls (U+0080 to
 * U+009F) as U+FFFD. Other bytes pass as they are (the library's strings are UTF-8).
 */
static void
esc_n(sheet_t *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];

        switch (ch) {
        case '&':
            fputs("&amp;", s->f);
            continue;
        case '<':
            fputs("&lt;", s->f);
            continue;
        case '>':
            fputs("&gt;", s->f);
            continue;
        case '"':
            fputs("&quot;", s->f);
            continue;
        case '\'':
            fputs("&#39;", s->f);
            continue;
        default:
            break;
        }
        if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f) {
            fputs("\xef\xbf\xbd", s->f);
        } else if (ch == 0xc2 && i + 1 < n && (unsigned char)p[i + 1] >= 0x80 &&
                   (unsigned char)p[i + 1] <= 0x9f) {
            fputs("\xef\xbf\xbd", s->f);
            i++;
        } else {
            putc(ch, s->f);
        }
    }
}

static void
esc(sheet_t *s, const char *str)
{
    if (str != NULL)
        esc_n(s, str, strlen(str));
}

/* A value as text: strings as they are, numbers in decimal, bytes by their size. */
static void
esc_value(sheet_t *s, const rep_value_t *v)
{
    switch (v->type) {
    case REP_STRING:
        esc_n(s, v->u.s.ptr, v->u.s.len);
        break;
    case REP_INT:
        out(s, "%" PRId64, v->u.i);
        break;
    case REP_DOUBLE:
        out(s, "%g", v->u.d);
        break;
    case REP_BOOL:
        out(s, "%s", v->u.b ? "yes" : "no");
        break;
    case REP_BYTES:
        out(s, "(%zu bytes)", v->u.s.len);
        break;
    case REP_NULL:
    default:
        break;
    }
}

/* ---- Fields ---------------------------------------------------------------------------------- */

/* The register named @p name of @p rec with a live value, or NULL. */
static const rep_field_t *
reg(const rep_record_t *rec, const char *name)
{
    if (rec == NULL)
        return NULL;
    for (size_t i = 0; i < rec->nfields; i++) {
        const rep_field_t *fl = &rec->fields[i];

        if (fl->kind == REP_KIND_REGISTER && strcmp(fl->name, name) == 0)
            return fl->value.type == REP_NULL ? NULL : fl;
    }
    return NULL;
}

/* The field named @p name of kind @p kind, or NULL. */
static const rep_field_t *
field_of(const rep_record_t *rec, const char *name, rep_kind_t kind)
{
    if (rec == NULL)
        return NULL;
    for (size_t i = 0; i < rec->nfields; i++) {
        if (rec->fields[i].kind == kind && strcmp(rec->fields[i].name, name) == 0)
            return &rec->fields[i];
    }
    return NULL;
}

/* Does register @p name hold the string @p want? */
static int
reg_is(const rep_record_t *rec, const char *name, const char *want)
{
    const rep_field_t *fl = reg(rec, name);

    return fl != NULL && fl->value.type == REP_STRING && fl->value.u.s.len == strlen(want) &&
           memcmp(fl->value.u.s.ptr, want, fl->value.u.s.len) == 0;
}

/* The mark of a register that holds concurrent values (nothing otherwise). */
static void
mark(sheet_t *s, const rep_field_t *fl)
{
    if (fl != NULL && fl->siblings > 1) {
        out(s, "<sup class=\"mark\" title=\"written differently on two workstations at once\">"
               "&#8224;</sup>");
        s->marked = 1;
    }
}

/* A register's value, escaped and marked; @p dflt (fixed markup) when it has none. */
static void
put_reg(sheet_t *s, const rep_record_t *rec, const char *name, const char *dflt)
{
    const rep_field_t *fl = reg(rec, name);

    if (fl == NULL) {
        out(s, "%s", dflt);
        return;
    }
    esc_value(s, &fl->value);
    mark(s, fl);
}

/*
 * Read patients/<id> where <id> is the text of @p v. *out is the caller's (rep_record_free),
 * NULL when there is no such patient (or the id cannot name one). Returns 0 or a read error.
 */
static int
get_patient(sheet_t *s, const rep_value_t *v, rep_record_t **out)
{
    char key[256];
    int rc, n;

    *out = NULL;
    if (v->type == REP_STRING) {
        if (v->u.s.len == 0 || v->u.s.len > 128 || memchr(v->u.s.ptr, '\0', v->u.s.len))
            return 0;
        n = snprintf(key, sizeof key, "patients/%s", v->u.s.ptr);
    } else if (v->type == REP_INT) {
        n = snprintf(key, sizeof key, "patients/%" PRId64, v->u.i);
    } else {
        return 0;
    }
    if (n < 0 || (size_t)n >= sizeof key)
        return 0;
    rc = rep_replica_get_record(s->r, key, out);
    if (rc == REP_ENOTFOUND || rc == -EINVAL || rc == REP_ETOOBIG) /* no such id, or none */
        return 0;
    return rc;
}

/* The patient id a record's `patient` register holds, or NULL (none, or empty). */
static const rep_value_t *
patient_id(const rep_record_t *rec)
{
    const rep_field_t *fl = reg(rec, "patient");

    if (fl == NULL || (fl->value.type == REP_STRING && fl->value.u.s.len == 0))
        return NULL;
    return &fl->value;
}

/* The patient's name (or "patient ID, no record"), and with @p details the date of birth,
 * phone and allergies. @p id may be NULL (no patient). */
static void
put_patient(sheet_t *s, const rep_value_t *id, const rep_record_t *p, int details)
{
    const rep_field_t *allergies = field_of(p, "allergies", REP_KIND_SET);

    if (p == NULL) {
        if (id == NULL) {
            out(s, "<span class=\"dim\">&mdash;</span>");
        } else {
            out(s, "<span class=\"dim\">patient ");
            esc_value(s, id);
            out(s, " (no patient record)</span>");
        }
        return;
    }
    out(s, "<span class=\"name\">");
    put_reg(s, p, "name", "(no name)");
    out(s, "</span>");
    if (!details)
        return;
    if (allergies != NULL && allergies->nitems > 0) {
        out(s, "<div class=\"allergy\">Allergies: ");
        for (size_t i = 0; i < allergies->nitems; i++) {
            if (i > 0)
                out(s, ", ");
            esc_value(s, &allergies->items[i].value);
        }
        out(s, "</div>");
    }
}

/* ---- The page -------------------------------------------------------------------------------- */

static const char css[] =
    "*{box-sizing:border-box}\n"
    "body{font:14px/1.35 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "color:#111;margin:1.5em auto;max-width:72em;padding:0 1em}\n"
    "header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.3em 1.5em;"
    "border-bottom:2px solid #111;padding-bottom:.4em}\n"
    "h1{font-size:1.5em;margin:0}\n"
    ".day{font-size:1.25em;font-weight:600}\n"
    ".made{color:#444;font-size:.9em;flex-basis:100%}\n"
    "button{font:inherit;padding:.3em 1.2em;margin-left:auto;cursor:pointer}\n"
    "h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #999}\n"
    "h2 .count{font-weight:normal;color:#444;font-size:.85em;margin-left:.6em}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{border:1px solid #bbb;padding:.25em .4em;text-align:left;vertical-align:top}\n"
    "th{background:#eee;font-weight:600}\n"
    "td.time{white-space:nowrap;font-variant-numeric:tabular-nums;font-weight:600}\n"
    "td.box{width:2.2em}\n"
    ".name{font-weight:600}\n"
    ".allergy{color:#a00;font-weight:600;font-size:.9em}\n"
    ".dim{color:#666}\n"
    "tr.cancelled td{color:#777;text-decoration:line-through}\n"
    "tr.cancelled td.status{text-decoration:none}\n"
    ".status{white-space:nowrap}\n"
    ".notes{margin:0;padding-left:1.1em}\n"
    ".notes li{white-space:pre-wrap}\n"
    ".who{color:#444;font-size:.9em}\n"
    ".empty{color:#444;font-style:italic}\n"
    ".mark{color:#a00}\n"
    "footer{margin-top:2em;border-top:1px solid #999;color:#444;font-size:.85em}\n"
    "@media print{\n"
    "  @page{margin:12mm}\n"
    "  body{margin:0;max-width:none;padding:0;font-size:10pt}\n"
    "  .noprint{display:none}\n"
    "  thead{display:table-header-group}\n"
    "  tr{break-inside:avoid}\n"
    "  h2{break-after:avoid}\n"
    "  th{background:none}\n"
    "  a{color:inherit;text-decoration:none}\n"
    "}\n";

static void
head(sheet_t *s, const daysheet_opts_t *o, time_t now)
{
    char day[128], made[32];
    struct tm tm;

    long_date(s->date, day, sizeof day);
    if (localtime_r(&now, &tm) == NULL || strftime(made, sizeof made, "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(made, sizeof made, "?");
    out(s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>Day sheet %s",
        s->date);
    if (o->office != NULL) {
        out(s, " &mdash; ");
        esc(s, o->office);
    }
    out(s, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n", css);
    out(s, "<h1>");
    esc(s, o->office != NULL ? o->office : "Day sheet");
    out(s, "</h1>\n<div class=\"day\">Day sheet for %s</div>\n", day);
    out(s, "<button type=\"button\" class=\"noprint\" onclick=\"window.print()\">Print</button>\n");
    out(s, "<div class=\"made\">Made %s (local time)", made);
    if (o->device != NULL) {
        out(s, " on workstation ");
        esc(s, o->device);
    }
    out(s, " from the office&#39;s shared record: what was entered after that is not on it."
           "</div>\n</header>\n");
}

/* A section listing the records of coll that keep() takes: lists coll, and writes the
 * heading (with their count) and the table's head, or `empty` and the section's end when
 * there are none. 1 with *l to write the rows from (then section_end), 0 when the section is
 * written, or a negative code. */
static int
section_begin(sheet_t *s, const char *coll, bool (*keep)(const rep_record_t *), const char *id,
              const char *title, const char *empty, const char *thead, rep_list_t **l)
{
    size_t n = 0;
    int rc = rep_replica_list(s->r, coll, NULL, 0, l);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < (*l)->n; i++)
        n += keep(&(*l)->records[i]);
    out(s, "<section id=\"%s\">\n<h2>%s<span class=\"count\">%zu</span></h2>\n", id, title, n);
    if (n == 0) {
        out(s, "<p class=\"empty\">%s</p>\n</section>\n", empty);
        rep_list_free(l);
        return 0;
    }
    out(s, "<table>\n<thead><tr>%s</tr></thead>\n<tbody>\n", thead);
    return 1;
}

/* End what section_begin began, after its rows (rc: how writing them went). */
static int
section_end(sheet_t *s, rep_list_t **l, int rc)
{
    rep_list_free(l);
    if (rc < 0)
        return rc;
    out(s, "</tbody>\n</table>\n</section>\n");
    return 0;
}

/* The schedule: the day's appointments in key (time) order. */
static int
schedule(sheet_t *s)
{
    char prefix[DAYSHEET_DATE_SIZE + 1];
    rep_list_t *l = NULL;
    size_t booked = 0, cancelled = 0;
    int rc;

    snprintf(prefix, sizeof prefix, "%s-", s->date);
    rc = rep_replica_list(s->r, "appts", prefix, 0, &l);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < l->n; i++) {
        if (reg_is(&l->records[i], "status", "cancelled"))
            cancelled++;
        else
            booked++;
    }
    out(s, "<section id=\"schedule\">\n<h2>Schedule<span class=\"count\">%zu appointment%s", booked,
        booked == 1 ? "" : "s");
    if (cancelled > 0)
        out(s, ", and %zu cancelled", cancelled);
    out(s, "</span></h2>\n");
    if (l->n == 0) {
        out(s, "<p class=\"empty\">No appointments on this day.</p>\n</section>\n");
        rep_list_free(&l);
        return 0;
    }
    out(s, "<table>\n<thead><tr><th>Time</th><th>Patient</th><th>Date of birth</th>"
           "<th>Phone</th><th>Provider</th><th>Reason</th><th>Status</th>"
           "<th title=\"to tick on paper\">Here</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < l->n; i++) {
        const rep_record_t *a = &l->records[i];
        const char *rest = strchr(a->key, '/');
        const rep_value_t *id = patient_id(a);
        rep_value_t from_key = {.type = REP_STRING};
        rep_record_t *p = NULL;

        /* the key is appts/<date>-<HHMM>-<id>: rest is "<HHMM>-<id>" */
        rest = rest != NULL ? rest + 1 + DAYSHEET_DATE_SIZE : "";
        if (id == NULL && strlen(rest) > 5 && rest[4] == '-') {
            from_key.u.s.ptr = rest + 5;
            from_key.u.s.len = strlen(rest + 5);
            id = &from_key;
        }
        if (id != NULL && (rc = get_patient(s, id, &p)) < 0)
            break;
        out(s, "<tr%s><td class=\"time\">",
            reg_is(a, "status", "cancelled") ? " class=\"cancelled\"" : "");
        if (strlen(rest) >= 5 && digits(rest, 4) && rest[4] == '-' && num(rest, 2) < 24 &&
            num(rest + 2, 2) < 60)
            out(s, "%.2s:%.2s", rest, rest + 2);
        else
            esc(s, rest);
        out(s, "</td><td>");
        put_patient(s, id, p, 1);
        out(s, "</td><td>");
        put_reg(s, p, "dob", "");
        out(s, "</td><td>");
        put_reg(s, p, "phone", "");
        out(s, "</td><td>");
        put_reg(s, a, "provider", "");
        out(s, "</td><td>");
        put_reg(s, a, "reason", "");
        out(s, "</td><td class=\"status\">");
        put_reg(s, a, "status", "");
        out(s, "</td><td class=\"box\"></td></tr>\n");
        rep_record_free(&p);
    }
    return section_end(s, &l, rc);
}

/* Open messages: status not "closed". */
static bool
msg_open(const rep_record_t *m)
{
    return !reg_is(m, "status", "closed");
}

static int
messages(sheet_t *s)
{
    rep_list_t *l = NULL;
    int rc = section_begin(s, "msgs", msg_open, "messages", "Open messages",
                           "No open messages.",
                           "<th>Taken</th><th>Caller</th><th>Patient</th><th>Subject</th>"
                           "<th>Latest notes</th>",
                           &l);
    if (rc <= 0)
        return rc;
    rc = 0;
    for (size_t i = 0; i < l->n; i++) {
        const rep_record_t *m = &l->records[i];
        const rep_value_t *id = patient_id(m);
        const rep_field_t *th = field_of(m, "thread", REP_KIND_LOG);
        rep_record_t *p = NULL;
        char when[32];

        if (!msg_open(m))
            continue;
        if (id != NULL && (rc = get_patient(s, id, &p)) < 0)
            break;
        out(s, "<tr><td class=\"time\">");
        if (th != NULL && th->nitems > 0) {
            note_time(s, th->items[0].hlc, when, sizeof when);
            out(s, "%s", when);
        }
        out(s, "</td><td>");
        put_reg(s, m, "caller", "");
        out(s, "</td><td>");
        put_patient(s, id, p, 0);
        if (p != NULL && reg(p, "phone") != NULL) {
            out(s, "<div class=\"who\">");
            put_reg(s, p, "phone", "");
            out(s, "</div>");
        }
        out(s, "</td><td>");
        put_reg(s, m, "subject", "");
        out(s, "</td><td>");
        if (th != NULL && th->nitems > 0) {
            size_t first = th->nitems > s->notes ? th->nitems - s->notes : 0;

            if (first > 0)
                out(s, "<div class=\"who\">(%zu earlier note%s)</div>", first,
                    first == 1 ? "" : "s");
            out(s, "<ul class=\"notes\">");
            for (size_t k = first; k < th->nitems; k++) {
                const rep_entry_t *e = &th->items[k];

                note_time(s, e->hlc, when, sizeof when);
                out(s, "<li><span class=\"who\">%s ", when);
                esc(s, e->user != NULL && e->user[0] != '\0' ? e->user : "(unknown)");
                out(s, ":</span> ");
                esc_value(s, &e->value);
                out(s, "</li>");
            }
            out(s, "</ul>");
        }
        out(s, "</td></tr>\n");
        rep_record_free(&p);
    }
    return section_end(s, &l, rc);
}

/* Pending refills: status neither "approved" nor "denied". */
static bool
refill_pending(const rep_record_t *q)
{
    return !reg_is(q, "status", "approved") && !reg_is(q, "status", "denied");
}

static int
refills(sheet_t *s)
{
    rep_list_t *l = NULL;
    int rc = section_begin(s, "refills", refill_pending, "refills", "Pending refills",
                           "No pending refill requests.",
                           "<th>Patient</th><th>Date of birth</th><th>Medication</th>"
                           "<th>Requested by</th><th>Status</th>",
                           &l);
    if (rc <= 0)
        return rc;
    rc = 0;
    for (size_t i = 0; i < l->n; i++) {
        const rep_record_t *q = &l->records[i];
        const rep_value_t *id = patient_id(q);
        rep_record_t *p = NULL;

        if (!refill_pending(q))
            continue;
        if (id != NULL && (rc = get_patient(s, id, &p)) < 0)
            break;
        out(s, "<tr><td>");
        put_patient(s, id, p, 1);
        out(s, "</td><td>");
        put_reg(s, p, "dob", "");
        out(s, "</td><td>");
        put_reg(s, q, "medication", "");
        out(s, "</td><td>");
        put_reg(s, q, "requested_by", "");
        out(s, "</td><td class=\"status\">");
        put_reg(s, q, "status", "pending");
        out(s, "</td></tr>\n");
        rep_record_free(&p);
    }
    return section_end(s, &l, rc);
}

int
daysheet_write(rep_replica_t *r, const char *date, const daysheet_opts_t *opts, FILE *f)
{
    daysheet_opts_t dflt;
    sheet_t s;
    time_t now;
    int rc;

    if (daysheet_check_date(date) < 0)
        return -EINVAL;
    if (opts == NULL) {
        memset(&dflt, 0, sizeof dflt);
        opts = &dflt;
    }
    now = opts->now != 0 ? opts->now : time(NULL);
    memset(&s, 0, sizeof s);
    s.r = r;
    s.f = f;
    s.date = date;
    s.notes = opts->notes != 0 ? opts->notes : DEFAULT_NOTES;
    head(&s, opts, now);
    if ((rc = schedule(&s)) < 0 || (rc = messages(&s)) < 0 || (rc = refills(&s)) < 0)
        return rc;
    out(&s, "<footer>\n");
    if (s.marked)
        out(&s, "<p><span class=\"mark\">&#8224;</span> This value was written differently on "
                "two workstations at the same time; the one shown is the one the office "
                "currently keeps. Settle it on the front desk page (Review).</p>\n");
    out(&s, "<p>Printed from the office&#39;s shared record (libreplica). A day sheet for "
            "working on paper: tick arrivals, note calls, and enter them when the system is "
            "back.</p>\n</footer>\n</body>\n</html>\n");
    if (fflush(f) != 0 || ferror(f))
        return -EIO;
    return 0;
}

int
daysheet_render(rep_replica_t *r, const char *date, const daysheet_opts_t *opts, char **out,
                size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f;
    int rc;

    *out = NULL;
    *len = 0;
    f = open_memstream(&buf, &n);
    if (f == NULL)
        return -ENOMEM;
    rc = daysheet_write(r, date, opts, f);
    if (fclose(f) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}
