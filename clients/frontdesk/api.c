/*
 * api.c — the front desk's JSON API (api.h). One function per route; the route table is at
 * the end. Reads go through rep_replica_get_record / rep_replica_list / rep_replica_conflicts,
 * writes through one transaction each, carrying the signed-in staff name as the change's user.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api.h"

#define MAX_TEXT      2000 /* a name, reason, note ... in bytes */
#define MAX_RESULTS   50   /* patients a search returns at most */
#define MAX_ALLERGIES 100

/* One request being answered. */
typedef struct call {
    const fd_api_ctx_t *c;
    const fd_request_t *q;
    fd_response_t *out;
    json_t *body; /* the parsed POST body (an object), or NULL for a GET */
} call_t;

/* ---- answers ----------------------------------------------------------------------------------
 */

void
fd_api_error(fd_response_t *out, unsigned status, const char *msg)
{
    json_decref(out->body);
    out->status = status;
    out->body = json_pack("{s:s}", "error", msg);
}

/* The answering helpers return 0, so that a handler can `return answer(...)`. */
static int
fail(call_t *k, unsigned status, const char *msg)
{
    fd_api_error(k->out, status, msg);
    return 0;
}

static int
answer(call_t *k, unsigned status, json_t *body)
{
    json_decref(k->out->body);
    k->out->status = status;
    k->out->body = body;
    if (body == NULL)
        fd_api_error(k->out, 500, "out of memory");
    return 0;
}

/* Answer a library failure: a refused argument is the request's fault, the rest the server's. */
static int
answer_rc(call_t *k, int rc, const char *what)
{
    char msg[256];
    unsigned status = rc == -EINVAL || rc == REP_ETOOBIG ? 400
                      : rc == REP_ENOTFOUND              ? 404
                      : rc == REP_EKIND                  ? 409
                                                         : 500;
    snprintf(msg, sizeof msg, "%s: %s", what, rep_strerror(rc));
    return fail(k, status, msg);
}

/* ---- reading records --------------------------------------------------------------------------
 */

static const rep_field_t *
field_of(const rep_record_t *rec, const char *name, rep_kind_t kind)
{
    for (size_t i = 0; rec != NULL && i < rec->nfields; i++) {
        if (rec->fields[i].kind == kind && strcmp(rec->fields[i].name, name) == 0)
            return &rec->fields[i];
    }
    return NULL;
}

/* A register's winning string, or "" (absent, deleted, or not a string). */
static const char *
str_of(const rep_record_t *rec, const char *name)
{
    const rep_field_t *f = field_of(rec, name, REP_KIND_REGISTER);
    return f != NULL && f->value.type == REP_STRING ? f->value.u.s.ptr : "";
}

/* The record id of a key ("coll/id" -> "id"). */
static const char *
id_of(const char *key)
{
    const char *slash = strchr(key, '/');
    return slash ? slash + 1 : key;
}

static json_t *
json_time_ms(uint64_t ms)
{
    return json_integer((json_int_t)ms);
}

/* A value as JSON: strings as strings, bytes as hex, the rest as JSON scalars. */
static json_t *
json_value(const rep_value_t *v)
{
    switch (v->type) {
    case REP_NULL:
        return json_null();
    case REP_BOOL:
        return json_boolean(v->u.b);
    case REP_INT:
        return json_integer((json_int_t)v->u.i);
    case REP_DOUBLE:
        return json_real(v->u.d);
    case REP_STRING:
        return json_stringn(v->u.s.ptr, v->u.s.len);
    case REP_BYTES: {
        char *hex = malloc(2 * v->u.s.len + 1);
        if (hex == NULL)
            return NULL;
        sodium_bin2hex(hex, 2 * v->u.s.len + 1, (const unsigned char *)v->u.s.ptr, v->u.s.len);
        json_t *j = json_string(hex);
        free(hex);
        return j;
    }
    }
    return json_null();
}

/* The name of patient @p id, or "" when there is none. */
static json_t *
patient_name(rep_replica_t *r, const char *id)
{
    char key[REP_MAX_RECORD + 16];
    rep_record_t *rec = NULL;
    json_t *j;

    if (id[0] == '\0' || strlen(id) > REP_MAX_RECORD)
        return json_string("");
    snprintf(key, sizeof key, "patients/%s", id);
    if (rep_replica_get_record(r, key, &rec) < 0)
        return json_string("");
    j = json_string(str_of(rec, "name"));
    rep_record_free(&rec);
    return j;
}

static int
has_conflict(const rep_record_t *rec)
{
    if (rec->delete_conflict)
        return 1;
    for (size_t i = 0; i < rec->nfields; i++) {
        if (rec->fields[i].siblings > 1 || rec->fields[i].kind_clash)
            return 1;
    }
    return 0;
}

/* ---- checking input ---------------------------------------------------------------------------
 */

/* A short id: 1..32 of [A-Za-z0-9_-]. */
static int
id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    }
    return 1;
}

static int
digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

/* YYYY-MM-DD, month 01..12, day 01..31. */
static int
date_ok(const char *s)
{
    if (strlen(s) != 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2))
        return 0;
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* HHMM, 0000..2359. */
static int
time_ok(const char *s)
{
    if (strlen(s) != 4 || !digits(s, 4))
        return 0;
    return (s[0] - '0') * 10 + (s[1] - '0') < 24 && (s[2] - '0') * 10 + (s[3] - '0') < 60;
}

/* An appointment's record id: <date>-<time>-<patient id>. */
static int
appt_id_ok(const char *s)
{
    char date[11];
    if (strlen(s) < 17 || s[10] != '-' || s[15] != '-')
        return 0;
    memcpy(date, s, 10);
    date[10] = '\0';
    char time[5] = {s[11], s[12], s[13], s[14], '\0'};
    return date_ok(date) && time_ok(time) && id_ok(s + 16);
}

/*
 * The string member @p name of the body: NULL with an answer given when it is missing and
 * @p required, or not a string, or longer than @p max bytes, or holds a control character
 * other than a newline or tab. Missing and not required: NULL, no answer.
 */
static const char *
body_str(call_t *k, const char *name, int required, size_t max, int *bad)
{
    json_t *v = k->body ? json_object_get(k->body, name) : NULL;
    char msg[160];

    if (v == NULL || json_is_null(v)) {
        if (required) {
            snprintf(msg, sizeof msg, "\"%s\" is required", name);
            fd_api_error(k->out, 400, msg);
            *bad = 1;
        }
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) > max) {
        snprintf(msg, sizeof msg, "\"%s\" must be a string of at most %zu bytes", name, max);
        fd_api_error(k->out, 400, msg);
        *bad = 1;
        return NULL;
    }
    const char *s = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
            snprintf(msg, sizeof msg, "\"%s\" holds a control character", name);
            fd_api_error(k->out, 400, msg);
            *bad = 1;
            return NULL;
        }
    }
    if (required && s[0] == '\0') {
        snprintf(msg, sizeof msg, "\"%s\" must not be empty", name);
        fd_api_error(k->out, 400, msg);
        *bad = 1;
        return NULL;
    }
    return s;
}

/* A fresh record id: 8 characters of base32 (a-z, 2-7), 40 random bits. */
static void
new_id(char id[9])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char raw[8];
    randombytes_buf(raw, sizeof raw);
    for (size_t i = 0; i < 8; i++)
        id[i] = alphabet[raw[i] & 31];
    id[8] = '\0';
}

static int
need_user(call_t *k)
{
    if (k->q->user != NULL)
        return 1;
    fd_api_error(k->out, 401, "sign in to make changes");
    return 0;
}

/* Begin a transaction as the signed-in user; answers on failure. */
static rep_txn_t *
begin(call_t *k)
{
    rep_txn_t *t = NULL;
    int rc = rep_txn_begin(k->c->r, k->q->user, &t);
    if (rc < 0)
        answer_rc(k, rc, "begin");
    return t;
}

/* Commit @p t (freeing it); answers on failure. @return 1 when committed. */
static int
commit(call_t *k, rep_txn_t *t, int rc)
{
    if (rc == 0)
        rc = rep_txn_commit(t, NULL);
    rep_txn_free(&t);
    if (rc < 0) {
        answer_rc(k, rc, "write");
        return 0;
    }
    return 1;
}

/* Read record @p coll/@p id into *rec; answers 400 for a malformed id, 404 when it does not
 * exist. */
static int
load(call_t *k, const char *coll, const char *id, rep_record_t **rec, const char *what)
{
    char key[REP_MAX_RECORD + 16], msg[160];
    if (!id_ok(id)) {
        snprintf(msg, sizeof msg, "a %s id is 1..32 of A-Z a-z 0-9 _ -", what);
        fd_api_error(k->out, 400, msg);
        return 0;
    }
    snprintf(key, sizeof key, "%s/%s", coll, id);
    int rc = rep_replica_get_record(k->c->r, key, rec);
    if (rc == REP_ENOTFOUND) {
        snprintf(msg, sizeof msg, "no such %s: %.64s", what, id);
        fd_api_error(k->out, 404, msg);
        return 0;
    }
    if (rc < 0) {
        answer_rc(k, rc, what);
        return 0;
    }
    return 1;
}

/* ---- appointments -----------------------------------------------------------------------------
 */

static json_t *
json_appt(rep_replica_t *r, const rep_record_t *rec)
{
    const char *id = id_of(rec->key);
    json_t *j = json_object();
    char date[11] = "", time[5] = "";

    if (strlen(id) >= 15) {
        memcpy(date, id, 10);
        memcpy(time, id + 11, 4);
    }
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "date", json_string(date));
    json_object_set_new(j, "time", json_string(time));
    json_object_set_new(j, "patient", json_string(str_of(rec, "patient")));
    json_object_set_new(j, "patient_name", patient_name(r, str_of(rec, "patient")));
    json_object_set_new(j, "provider", json_string(str_of(rec, "provider")));
    json_object_set_new(j, "reason", json_string(str_of(rec, "reason")));
    json_object_set_new(j, "status", json_string(str_of(rec, "status")));
    json_object_set_new(j, "conflict", json_boolean(has_conflict(rec)));
    return j;
}

/* Today's date on this workstation's clock, YYYY-MM-DD. */
static void
today(char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* GET /today?date=YYYY-MM-DD: the schedule of a day (default today), in time order. */
static int
get_today(call_t *k, const char *unused)
{
    const char *date = k->q->arg(k->q->arg_ctx, "date");
    char d[11], prefix[12];
    rep_list_t *l = NULL;

    (void)unused;
    if (date == NULL || date[0] == '\0') {
        today(d);
        date = d;
    }
    if (!date_ok(date))
        return fail(k, 400, "date must be YYYY-MM-DD");
    snprintf(prefix, sizeof prefix, "%s-", date);
    int rc = rep_replica_list(k->c->r, "appts", prefix, 0, &l);
    if (rc < 0)
        return answer_rc(k, rc, "appts");
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, json_appt(k->c->r, &l->records[i]));
    rep_list_free(&l);
    answer(k, 200, json_pack("{s:s,s:o}", "date", date, "appts", arr));
    return 0;
}

/* POST /appts {date, time, patient, provider, reason}: book (status booked). */
static int
post_appt(call_t *k, const char *unused)
{
    int bad = 0;
    const char *date = body_str(k, "date", 1, 10, &bad);
    const char *time = bad ? NULL : body_str(k, "time", 1, 4, &bad);
    const char *patient = bad ? NULL : body_str(k, "patient", 1, 32, &bad);
    const char *provider = bad ? NULL : body_str(k, "provider", 0, MAX_TEXT, &bad);
    const char *reason = bad ? NULL : body_str(k, "reason", 0, MAX_TEXT, &bad);
    rep_record_t *rec = NULL;
    char key[64];

    (void)unused;
    if (bad)
        return 0;
    if (!date_ok(date) || !time_ok(time) || !id_ok(patient))
        return fail(k, 400, "date must be YYYY-MM-DD, time HHMM, patient an id");
    if (!load(k, "patients", patient, &rec, "patient"))
        return 0;
    rep_record_free(&rec);
    snprintf(key, sizeof key, "appts/%s-%s-%s", date, time, patient);
    if (rep_replica_get_record(k->c->r, key, &rec) == 0) {
        int taken = strcmp(str_of(rec, "status"), "cancelled") != 0;
        rep_record_free(&rec);
        if (taken)
            return fail(k, 409, "this patient is already booked at that time");
    }
    rep_txn_t *t = begin(k);
    if (t == NULL)
        return 0;
    int rc = rep_txn_set_str(t, key, "patient", patient);
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "provider", provider ? provider : "");
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "reason", reason ? reason : "");
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "status", "booked");
    if (!commit(k, t, rc))
        return 0;
    if (rep_replica_get_record(k->c->r, key, &rec) < 0)
        return fail(k, 500, "booked, but could not read it back");
    answer(k, 201, json_pack("{s:o}", "appt", json_appt(k->c->r, rec)));
    rep_record_free(&rec);
    return 0;
}

/* POST /appts/<id>/<action>: set the status (checkin: arrived, cancel: cancelled, done). */
static int
appt_status(call_t *k, const char *id, const char *status)
{
    rep_record_t *rec = NULL;
    char key[REP_MAX_RECORD + 16];

    if (!appt_id_ok(id))
        return fail(k, 400, "an appointment id is <date>-<time>-<patient>");
    if (!load(k, "appts", id, &rec, "appointment"))
        return 0;
    rep_record_free(&rec);
    snprintf(key, sizeof key, "appts/%s", id);
    rep_txn_t *t = begin(k);
    if (t == NULL || !commit(k, t, rep_txn_set_str(t, key, "status", status)))
        return 0;
    if (rep_replica_get_record(k->c->r, key, &rec) < 0)
        return fail(k, 500, "written, but could not read it back");
    answer(k, 200, json_pack("{s:o}", "appt", json_appt(k->c->r, rec)));
    rep_record_free(&rec);
    return 0;
}

static int
post_checkin(call_t *k, const char *id)
{
    return appt_status(k, id, "arrived");
}

static int
post_cancel(call_t *k, const char *id)
{
    return appt_status(k, id, "cancelled");
}

static int
post_done(call_t *k, const char *id)
{
    return appt_status(k, id, "done");
}

/* ---- patients -----------------------------------------------------------------------------------
 */

static json_t *
json_patient(const rep_record_t *rec)
{
    json_t *all = json_array();
    const rep_field_t *f = field_of(rec, "allergies", REP_KIND_SET);
    for (size_t i = 0; f != NULL && i < f->nitems; i++)
        json_array_append_new(all, json_value(&f->items[i].value));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:b}", "id", id_of(rec->key), "name",
                     str_of(rec, "name"), "dob", str_of(rec, "dob"), "phone", str_of(rec, "phone"),
                     "allergies", all, "conflict", has_conflict(rec));
}

/* ASCII case-insensitive substring search (names are matched letter by letter; letters
 * beyond ASCII must match exactly). */
static int
contains_ci(const char *hay, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return 1;
    for (const char *h = hay; *h != '\0'; h++) {
        size_t i = 0;
        while (i < nlen && h[i] != '\0' &&
               tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == nlen)
            return 1;
    }
    return 0;
}

static double
elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* GET /patients?q=TEXT | ?dob=YYYY-MM-DD: at most MAX_RESULTS patients whose name holds TEXT
 * (case-insensitive) or whose date of birth is (or starts with) DOB, in id order. */
static int
get_patients(call_t *k, const char *unused)
{
    const char *q = k->q->arg(k->q->arg_ctx, "q"), *dob = k->q->arg(k->q->arg_ctx, "dob");
    struct timespec t0;
    rep_list_t *l = NULL;
    size_t qlen = q ? strlen(q) : 0, dlen = dob ? strlen(dob) : 0, total = 0;

    (void)unused;
    if (qlen > 200 || dlen > 10)
        return fail(k, 400, "q is at most 200 bytes, dob YYYY-MM-DD");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = rep_replica_list(k->c->r, "patients", NULL, 0, &l);
    if (rc < 0)
        return answer_rc(k, rc, "patients");
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++) {
        const rep_record_t *rec = &l->records[i];
        if (q != NULL && !contains_ci(str_of(rec, "name"), q, qlen))
            continue;
        if (dob != NULL && strncmp(str_of(rec, "dob"), dob, dlen) != 0)
            continue;
        if (++total <= MAX_RESULTS)
            json_array_append_new(arr, json_patient(rec));
    }
    size_t scanned = l->n;
    rep_list_free(&l);
    answer(k, 200,
           json_pack("{s:o,s:I,s:I,s:f}", "patients", arr, "total", (json_int_t)total, "scanned",
                     (json_int_t)scanned, "took_ms", elapsed_ms(&t0)));
    return 0;
}

static int
get_patient(call_t *k, const char *id)
{
    rep_record_t *rec = NULL;
    if (!load(k, "patients", id, &rec, "patient"))
        return 0;
    answer(k, 200, json_pack("{s:o}", "patient", json_patient(rec)));
    rep_record_free(&rec);
    return 0;
}

/* Write the patient fields the body gives into @p t; allergies (an array of strings) replace
 * the set: members not in it are removed, new ones added. */
static int
patient_fields(call_t *k, rep_txn_t *t, const char *key, const rep_record_t *old, int create)
{
    static const char *const names[] = {"name", "dob", "phone"};
    int bad = 0, rc = 0;

    for (size_t i = 0; i < 3 && rc == 0; i++) {
        const char *v = body_str(k, names[i], create && i == 0, 200, &bad);
        if (bad)
            return -1;
        if (v != NULL && i == 0 && v[0] == '\0') {
            fd_api_error(k->out, 400, "\"name\" must not be empty");
            return -1;
        }
        if (v != NULL && i == 1 && v[0] != '\0' && !date_ok(v)) {
            fd_api_error(k->out, 400, "dob must be YYYY-MM-DD");
            return -1;
        }
        if (v != NULL)
            rc = rep_txn_set_str(t, key, names[i], v);
    }
    json_t *all = json_object_get(k->body, "allergies");
    if (rc == 0 && all != NULL) {
        size_t i;
        json_t *a;
        if (!json_is_array(all) || json_array_size(all) > MAX_ALLERGIES) {
            fd_api_error(k->out, 400, "allergies must be an array of at most 100 strings");
            return -1;
        }
        json_array_foreach(all, i, a)
        {
            if (!json_is_string(a) || json_string_length(a) == 0 || json_string_length(a) > 200) {
                fd_api_error(k->out, 400, "each allergy is a string of 1..200 bytes");
                return -1;
            }
        }
        const rep_field_t *f = field_of(old, "allergies", REP_KIND_SET);
        for (size_t m = 0; f != NULL && m < f->nitems && rc == 0; m++) {
            const rep_value_t *v = &f->items[m].value;
            int keep = 0;
            json_array_foreach(all, i, a)
            {
                if (v->type == REP_STRING && v->u.s.len == json_string_length(a) &&
                    memcmp(v->u.s.ptr, json_string_value(a), v->u.s.len) == 0)
                    keep = 1;
            }
            if (!keep)
                rc = rep_txn_remove(t, key, "allergies", v);
        }
        json_array_foreach(all, i, a)
        {
            rep_value_t v = {.type = REP_STRING};
            v.u.s.ptr = json_string_value(a);
            v.u.s.len = json_string_length(a);
            if (rc == 0)
                rc = rep_txn_add(t, key, "allergies", &v);
        }
    }
    return rc;
}

static int
save_patient(call_t *k, const char *id, int create)
{
    char key[64];
    rep_record_t *old = NULL;

    if (!create && !load(k, "patients", id, &old, "patient"))
        return 0;
    snprintf(key, sizeof key, "patients/%s", id);
    rep_txn_t *t = begin(k);
    if (t == NULL) {
        rep_record_free(&old);
        return 0;
    }
    int rc = patient_fields(k, t, key, old, create);
    rep_record_free(&old);
    if (rc < 0 && k->out->status != 0) { /* the body was refused: the answer is given */
        rep_txn_free(&t);
        return 0;
    }
    if (!commit(k, t, rc))
        return 0;
    if (rep_replica_get_record(k->c->r, key, &old) < 0)
        return fail(k, 500, "saved, but could not read it back");
    answer(k, create ? 201 : 200, json_pack("{s:o}", "patient", json_patient(old)));
    rep_record_free(&old);
    return 0;
}

/* POST /patients {name, dob, phone, allergies}: a new patient with a fresh id. */
static int
post_patient(call_t *k, const char *unused)
{
    char id[9];
    (void)unused;
    new_id(id);
    return save_patient(k, id, 1);
}

/* POST /patients/<id> {name?, dob?, phone?, allergies?}: edit what is given. */
static int
edit_patient(call_t *k, const char *id)
{
    if (!id_ok(id))
        return fail(k, 400, "a patient id is 1..32 of A-Z a-z 0-9 _ -");
    return save_patient(k, id, 0);
}

/* ---- messages -----------------------------------------------------------------------------------
 */

static json_t *
json_msg(rep_replica_t *r, const rep_record_t *rec)
{
    json_t *thread = json_array();
    const rep_field_t *f = field_of(rec, "thread", REP_KIND_LOG);
    for (size_t i = 0; f != NULL && i < f->nitems; i++) {
        const rep_entry_t *e = &f->items[i];
        json_array_append_new(thread,
                              json_pack("{s:o,s:s,s:o}", "text", json_value(&e->value), "user",
                                        e->user, "time", json_time_ms(e->hlc >> 16)));
    }
    return json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:o,s:b}", "id", id_of(rec->key), "patient",
                     str_of(rec, "patient"), "patient_name",
                     patient_name(r, str_of(rec, "patient")), "caller", str_of(rec, "caller"),
                     "subject", str_of(rec, "subject"), "status", str_of(rec, "status"), "thread",
                     thread, "conflict", has_conflict(rec));
}

/* GET /messages?status=open|closed|all (default open). */
static int
get_messages(call_t *k, const char *unused)
{
    const char *want = k->q->arg(k->q->arg_ctx, "status");
    rep_list_t *l = NULL;

    (void)unused;
    if (want == NULL || want[0] == '\0')
        want = "open";
    if (strcmp(want, "open") != 0 && strcmp(want, "closed") != 0 && strcmp(want, "all") != 0)
        return fail(k, 400, "status is open, closed or all");
    int rc = rep_replica_list(k->c->r, "msgs", NULL, 0, &l);
    if (rc < 0)
        return answer_rc(k, rc, "msgs");
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(want, "all") == 0 || strcmp(str_of(&l->records[i], "status"), want) == 0)
            json_array_append_new(arr, json_msg(k->c->r, &l->records[i]));
    }
    rep_list_free(&l);
    answer(k, 200, json_pack("{s:o}", "messages", arr));
    return 0;
}

static int
answer_record(call_t *k, unsigned status, const char *key, const char *name,
              json_t *(*fn)(rep_replica_t *, const rep_record_t *))
{
    rep_record_t *rec = NULL;
    if (rep_replica_get_record(k->c->r, key, &rec) < 0)
        return fail(k, 500, "written, but could not read it back");
    answer(k, status, json_pack("{s:o}", name, fn(k->c->r, rec)));
    rep_record_free(&rec);
    return 0;
}

static int
append_note(rep_txn_t *t, const char *key, const char *note)
{
    rep_value_t v = {.type = REP_STRING};
    v.u.s.ptr = note;
    v.u.s.len = strlen(note);
    return rep_txn_append(t, key, "thread", &v);
}

/* POST /messages {caller, subject, patient?, note?}: take a call (a new open thread). */
static int
post_message(call_t *k, const char *unused)
{
    int bad = 0;
    const char *caller = body_str(k, "caller", 1, 200, &bad);
    const char *subject = bad ? NULL : body_str(k, "subject", 1, 200, &bad);
    const char *patient = bad ? NULL : body_str(k, "patient", 0, 32, &bad);
    const char *note = bad ? NULL : body_str(k, "note", 0, MAX_TEXT, &bad);
    char id[9], key[32];

    (void)unused;
    if (bad)
        return 0;
    if (patient != NULL && patient[0] != '\0' && !id_ok(patient))
        return fail(k, 400, "a patient id is 1..32 of A-Z a-z 0-9 _ -");
    new_id(id);
    snprintf(key, sizeof key, "msgs/%s", id);
    rep_txn_t *t = begin(k);
    if (t == NULL)
        return 0;
    int rc = rep_txn_set_str(t, key, "caller", caller);
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "subject", subject);
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "patient", patient ? patient : "");
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "status", "open");
    if (rc == 0 && note != NULL && note[0] != '\0')
        rc = append_note(t, key, note);
    if (commit(k, t, rc))
        answer_record(k, 201, key, "message", json_msg);
    return 0;
}

/* Append a note to thread id (required unless close), and close it when close is set. */
static int
thread_write(call_t *k, const char *id, bool close)
{
    int bad = 0;
    const char *note = body_str(k, "note", !close, MAX_TEXT, &bad);
    rep_record_t *rec = NULL;
    char key[64];

    if (bad)
        return 0;
    if (!load(k, "msgs", id, &rec, "message"))
        return 0;
    rep_record_free(&rec);
    snprintf(key, sizeof key, "msgs/%s", id);
    rep_txn_t *t = begin(k);
    if (t == NULL)
        return 0;
    int rc = note != NULL && note[0] != '\0' ? append_note(t, key, note) : 0;
    if (rc == 0 && close)
        rc = rep_txn_set_str(t, key, "status", "closed");
    if (commit(k, t, rc))
        answer_record(k, 200, key, "message", json_msg);
    return 0;
}

/* POST /messages/<id>/notes {note}: append to the thread. */
static int
post_note(call_t *k, const char *id)
{
    return thread_write(k, id, false);
}

/* POST /messages/<id>/close {note?}: close the thread (with a last note). */
static int
post_close(call_t *k, const char *id)
{
    return thread_write(k, id, true);
}

/* ---- refills ------------------------------------------------------------------------------------
 */

static json_t *
json_refill(rep_replica_t *r, const rep_record_t *rec)
{
    return json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:b}", "id", id_of(rec->key), "patient",
                     str_of(rec, "patient"), "patient_name",
                     patient_name(r, str_of(rec, "patient")), "medication",
                     str_of(rec, "medication"), "requested_by", str_of(rec, "requested_by"),
                     "status", str_of(rec, "status"), "decided_by", str_of(rec, "decided_by"),
                     "conflict", has_conflict(rec));
}

/* GET /refills?status=pending|approved|denied|all (default pending). */
static int
get_refills(call_t *k, const char *unused)
{
    const char *want = k->q->arg(k->q->arg_ctx, "status");
    rep_list_t *l = NULL;

    (void)unused;
    if (want == NULL || want[0] == '\0')
        want = "pending";
    if (strcmp(want, "pending") != 0 && strcmp(want, "approved") != 0 &&
        strcmp(want, "denied") != 0 && strcmp(want, "all") != 0)
        return fail(k, 400, "status is pending, approved, denied or all");
    int rc = rep_replica_list(k->c->r, "refills", NULL, 0, &l);
    if (rc < 0)
        return answer_rc(k, rc, "refills");
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(want, "all") == 0 || strcmp(str_of(&l->records[i], "status"), want) == 0)
            json_array_append_new(arr, json_refill(k->c->r, &l->records[i]));
    }
    rep_list_free(&l);
    answer(k, 200, json_pack("{s:o}", "refills", arr));
    return 0;
}

/* POST /refills {patient, medication, requested_by}: queue a request (pending). */
static int
post_refill(call_t *k, const char *unused)
{
    int bad = 0;
    const char *patient = body_str(k, "patient", 1, 32, &bad);
    const char *med = bad ? NULL : body_str(k, "medication", 1, 200, &bad);
    const char *by = bad ? NULL : body_str(k, "requested_by", 0, 200, &bad);
    rep_record_t *rec = NULL;
    char id[9], key[32];

    (void)unused;
    if (bad)
        return 0;
    if (!id_ok(patient))
        return fail(k, 400, "a patient id is 1..32 of A-Z a-z 0-9 _ -");
    if (!load(k, "patients", patient, &rec, "patient"))
        return 0;
    rep_record_free(&rec);
    new_id(id);
    snprintf(key, sizeof key, "refills/%s", id);
    rep_txn_t *t = begin(k);
    if (t == NULL)
        return 0;
    int rc = rep_txn_set_str(t, key, "patient", patient);
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "medication", med);
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "requested_by", by ? by : "");
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "status", "pending");
    if (commit(k, t, rc))
        answer_record(k, 201, key, "refill", json_refill);
    return 0;
}

/* POST /refills/<id>/decide {decision: approved|denied}: decided_by is the signed-in user. */
static int
post_decide(call_t *k, const char *id)
{
    int bad = 0;
    const char *d = body_str(k, "decision", 1, 16, &bad);
    rep_record_t *rec = NULL;
    char key[64], msg[200];

    if (bad)
        return 0;
    if (strcmp(d, "approved") != 0 && strcmp(d, "denied") != 0)
        return fail(k, 400, "decision is approved or denied");
    if (!load(k, "refills", id, &rec, "refill"))
        return 0;
    if (strcmp(str_of(rec, "status"), "pending") != 0) {
        snprintf(msg, sizeof msg, "already %.20s by %.64s", str_of(rec, "status"),
                 str_of(rec, "decided_by"));
        rep_record_free(&rec);
        return fail(k, 409, msg);
    }
    rep_record_free(&rec);
    snprintf(key, sizeof key, "refills/%s", id);
    rep_txn_t *t = begin(k);
    if (t == NULL)
        return 0;
    int rc = rep_txn_set_str(t, key, "status", d);
    if (rc == 0)
        rc = rep_txn_set_str(t, key, "decided_by", k->q->user);
    if (commit(k, t, rc))
        answer_record(k, 200, key, "refill", json_refill);
    return 0;
}

/* ---- review: concurrent values ------------------------------------------------------------------
 */

static json_t *
json_dot(uint64_t actor, uint64_t seq)
{
    char s[48];
    snprintf(s, sizeof s, "%016" PRIx64 ":%" PRIu64, actor, seq);
    return json_string(s);
}

/* GET /review: every field with concurrent values outside the library's own collections;
 * each value with who wrote it and when (ms since the epoch). */
static int
get_review(call_t *k, const char *unused)
{
    rep_conflicts_t *cs = NULL;
    (void)unused;
    int rc = rep_replica_conflicts(k->c->r, NULL, &cs);
    if (rc < 0)
        return answer_rc(k, rc, "conflicts");
    json_t *arr = json_array();
    for (size_t i = 0; i < cs->n; i++) {
        const rep_conflict_t *c = &cs->items[i];
        if (c->key[0] == '_')
            continue;
        /* a PIN's hash is not shown to whoever can read the page */
        int secret = strncmp(c->key, "staff/", 6) == 0 && strcmp(c->field, "pin") == 0;
        json_t *sibs = json_array();
        for (size_t j = 0; j < c->n; j++) {
            const rep_sibling_t *s = &c->siblings[j];
            json_t *v = secret && !s->deleted ? json_string("(a PIN)") : json_value(&s->value);
            json_array_append_new(sibs, json_pack("{s:o,s:s,s:o,s:b,s:b,s:o}", "dot",
                                                  json_dot(s->actor, s->seq), "user", s->user,
                                                  "time", json_time_ms(s->hlc >> 16), "deleted",
                                                  s->deleted, "winner", s->winner, "value", v));
        }
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:b,s:o}", "key", c->key, "field",
                                             c->field, "register", c->kind == REP_KIND_REGISTER,
                                             "kind_clash", c->kind_clash, "values", sibs));
    }
    rep_conflicts_free(&cs);
    answer(k, 200, json_pack("{s:o}", "conflicts", arr));
    return 0;
}

/* What a record held, replayed from its history: a register's last value, a set's members. */
typedef struct held {
    const char *field;
    rep_kind_t kind;
    const rep_value_t *value; /* NULL: none (a register deleted, a member removed) */
} held_t;

/* The entry of (@p field, @p kind[, @p member]) in @p h, added if missing; NULL without room. */
static held_t *
held_at(held_t *h, size_t *n, size_t cap, const char *field, rep_kind_t kind,
        const rep_value_t *member)
{
    for (size_t i = 0; i < *n; i++) {
        if (h[i].kind == kind && strcmp(h[i].field, field) == 0 &&
            (kind != REP_KIND_SET || (h[i].value && rep_value_equal(h[i].value, member))))
            return &h[i];
    }
    if (*n == cap)
        return NULL;
    h[*n] = (held_t){field, kind, NULL};
    return &h[(*n)++];
}

static int
is_dot_of(const rep_conflict_t *c, uint64_t actor, uint64_t seq)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->siblings[i].deleted && c->siblings[i].actor == actor && c->siblings[i].seq == seq)
            return 1;
    }
    return 0;
}

/*
 * Keep a record that was deleted while it was updated (conflict @p c on field ""): the delete
 * removed every value its writer had seen, and the concurrent update kept only what it wrote.
 * Replay the record's history without the concurrent delete(s), and write back each register
 * value and set member that replay holds and the record lacks now; at least one write, which
 * also writes the record's existence, superseding the delete. Counters and logs are never
 * lost by a delete. A history cut short by a snapshot restores what it has.
 */
static int
keep_record(call_t *k, rep_txn_t *t, const char *key, const rep_conflict_t *c)
{
    enum { MAX_HELD = 512 };
    held_t *held = calloc(MAX_HELD, sizeof *held);
    rep_history_t *h = NULL;
    rep_record_t *rec = NULL;
    size_t n = 0, written = 0;
    int rc;

    if (held == NULL)
        return -ENOMEM;
    if ((rc = rep_replica_history(k->c->r, key, &h)) < 0 ||
        (rc = rep_replica_get_record(k->c->r, key, &rec)) < 0)
        goto out;
    for (size_t i = 0; i < h->n; i++) {
        const rep_change_info_t *ch = &h->changes[i];
        if (is_dot_of(c, ch->actor, ch->seq))
            continue;
        for (size_t j = 0; j < ch->nops; j++) {
            const rep_op_t *op = &ch->ops[j];
            held_t *e = NULL;
            if (op->type == REP_OP_CLEAR) { /* an earlier delete: nothing before it is kept */
                n = 0;
            } else if ((op->type == REP_OP_SET || op->type == REP_OP_DEL) && op->field[0] != '\0' &&
                       op->kind == REP_KIND_REGISTER) {
                if ((e = held_at(held, &n, MAX_HELD, op->field, REP_KIND_REGISTER, NULL)) != NULL)
                    e->value = op->type == REP_OP_SET ? &op->value : NULL;
            } else if (op->type == REP_OP_ADD || op->type == REP_OP_REMOVE) {
                e = held_at(held, &n, MAX_HELD, op->field, REP_KIND_SET, &op->value);
                if (e != NULL && e->value == NULL && op->type == REP_OP_ADD)
                    e->value = &op->value;
                else if (e != NULL && op->type == REP_OP_REMOVE)
                    e->kind = 0; /* removed: matches nothing any more */
            }
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const held_t *e = &held[i];
        const rep_field_t *f = e->value ? field_of(rec, e->field, e->kind) : NULL;
        if (e->value == NULL || e->kind == 0)
            continue;
        if (e->kind == REP_KIND_REGISTER && f == NULL) {
            rc = rep_txn_set(t, key, e->field, e->value);
            written++;
        } else if (e->kind == REP_KIND_SET) {
            int has = 0;
            for (size_t m = 0; f != NULL && m < f->nitems && !has; m++)
                has = rep_value_equal(&f->items[m].value, e->value);
            if (!has) {
                rc = rep_txn_add(t, key, e->field, e->value);
                written++;
            }
        }
    }
    for (size_t i = 0; rc == 0 && written == 0 && i < rec->nfields; i++) {
        const rep_field_t *f = &rec->fields[i]; /* nothing lost: write a value again */
        if (f->kind == REP_KIND_REGISTER && !f->kind_clash) {
            rc = rep_txn_set(t, key, f->name, &f->value);
            written++;
        }
    }
    if (rc == 0 && written == 0)
        rc = REP_ENOTFOUND;
out:
    /* the transaction copied what it was given, so the history may go now */
    rep_record_free(&rec);
    rep_history_free(&h);
    free(held);
    return rc;
}

/* POST /review/pick {key, field, dot}: keep the value written by that change: a normal write
 * of it (or a delete, for a delete picked) that supersedes every value of the field. For field
 * "" (a record deleted while it was updated), picking the delete deletes the record, picking
 * an update keeps it whole (keep_record). */
static int
post_pick(call_t *k, const char *unused)
{
    int bad = 0;
    const char *key = body_str(k, "key", 1, REP_MAX_COLLECTION + REP_MAX_RECORD + 1, &bad);
    const char *field = bad ? NULL : body_str(k, "field", 0, REP_MAX_FIELD, &bad);
    const char *dot = bad ? NULL : body_str(k, "dot", 1, 48, &bad);
    rep_conflicts_t *cs = NULL;
    const rep_sibling_t *pick = NULL;
    const rep_conflict_t *in = NULL;
    char want[48];

    (void)unused;
    if (bad)
        return 0;
    if (field == NULL)
        field = "";
    if (key[0] == '_' || strchr(key, '/') == NULL)
        return fail(k, 400, "key is COLL/REC of the office's data");
    int rc = rep_replica_conflicts(k->c->r, key, &cs);
    if (rc < 0)
        return answer_rc(k, rc, "conflicts");
    for (size_t i = 0; pick == NULL && i < cs->n; i++) {
        const rep_conflict_t *c = &cs->items[i];
        if (strcmp(c->field, field) != 0 || c->kind != REP_KIND_REGISTER)
            continue;
        for (size_t j = 0; pick == NULL && j < c->n; j++) {
            snprintf(want, sizeof want, "%016" PRIx64 ":%" PRIu64, c->siblings[j].actor,
                     c->siblings[j].seq);
            if (strcmp(want, dot) == 0) {
                pick = &c->siblings[j];
                in = c;
            }
        }
    }
    if (pick == NULL) {
        rep_conflicts_free(&cs);
        return fail(k, 409,
                    "that value is no longer among the field's values "
                    "(someone resolved it already?)");
    }
    rep_txn_t *t = begin(k);
    if (t == NULL) {
        rep_conflicts_free(&cs);
        return 0;
    }
    if (field[0] == '\0')
        rc = pick->deleted ? rep_txn_del_record(t, key) : keep_record(k, t, key, in);
    else
        rc = pick->deleted ? rep_txn_del_field(t, key, field)
                           : rep_txn_set(t, key, field, &pick->value);
    rep_conflicts_free(&cs);
    if (commit(k, t, rc))
        answer(k, 200, json_pack("{s:s,s:s}", "key", key, "field", field));
    return 0;
}

/* ---- status ------------------------------------------------------------------------------------
 */

/*
 * GET /status: this workstation, the office's other workstations as the node knows them
 * (connected, last heard from), and "unsynced": how many changes held here no other
 * workstation is known to have ("saved only here").
 *
 * The node knows, per connected peer, how many of the changes this replica holds that peer
 * lacks ("behind"); it stops updating that count when the peer goes away. So:
 *   - with peers connected, a change is on another machine when some connected peer has it:
 *     the count is the smallest "behind" among them; and when that is 0, every change made
 *     here so far is elsewhere, which is remembered (this device's change count, seq, then);
 *   - with none connected, it is the changes made here since that moment (all of them when
 *     no peer has been caught up since the server started).
 * It errs towards "only here": the second counts only this device's own changes, the first
 * all those held here (a change relayed from a third workstation is on its author too). The
 * node's count may lag a commit by the moment it takes to notice it.
 */
static int
get_status(call_t *k, const char *unused)
{
    rep_info_t *in = NULL;
    rep_node_status_t *ns = NULL;
    json_t *peers = json_array();
    uint64_t least = UINT64_MAX, unsynced;
    size_t connected = 0;

    (void)unused;
    int rc = rep_replica_info(k->c->r, &in); /* before the node's status: see above */
    if (rc < 0) {
        json_decref(peers);
        return answer_rc(k, rc, "info");
    }
    if (k->c->node != NULL && rep_node_status(k->c->node, &ns) == 0) {
        for (size_t i = 0; i < ns->npeers; i++) {
            const rep_peer_status_t *p = &ns->peers[i];
            if (p->connected && p->device_id[0] != '\0' && p->last_seen_ms > 0) {
                connected++;
                if (p->behind < least)
                    least = p->behind;
            }
            json_array_append_new(
                peers, json_pack("{s:s,s:s,s:b,s:o,s:I}", "name",
                                 p->device_name[0] ? p->device_name : p->endpoint, "device_id",
                                 p->device_id, "connected", p->connected, "last_seen",
                                 p->last_seen_ms ? json_time_ms(p->last_seen_ms) : json_null(),
                                 "behind", (json_int_t)p->behind));
        }
    }
    pthread_mutex_lock(&k->c->memo->lock);
    if (connected > 0 && least == 0) {
        k->c->memo->synced = 1;
        k->c->memo->synced_seq = in->seq;
    }
    if (connected > 0)
        unsynced = least;
    else if (k->c->memo->synced && in->seq >= k->c->memo->synced_seq)
        unsynced = in->seq - k->c->memo->synced_seq;
    else
        unsynced = in->seq;
    pthread_mutex_unlock(&k->c->memo->lock);
    answer(k, 200,
           json_pack("{s:s,s:s,s:b,s:o,s:I,s:I,s:I,s:I,s:o}", "device", in->device_name, "office",
                     in->office_name, "node", ns != NULL, "peers", peers, "connected",
                     (json_int_t)connected, "unsynced", (json_int_t)unsynced, "local_changes",
                     (json_int_t)in->seq, "conflicts", (json_int_t)in->conflicts, "user",
                     k->q->user ? json_string(k->q->user) : json_null()));
    rep_node_status_free(&ns);
    rep_info_free(&in);
    return 0;
}

/* ---- sign-in ------------------------------------------------------------------------------------
 */

/* GET /me: who is signed in with this request's session. */
static int
get_me(call_t *k, const char *unused)
{
    (void)unused;
    answer(k, 200, json_pack("{s:o}", "user", k->q->user ? json_string(k->q->user) : json_null()));
    return 0;
}

/* POST /signin {name, pin}: a session cookie when the PIN matches staff/<name>'s. */
static int
post_signin(call_t *k, const char *unused)
{
    int bad = 0;
    const char *name = body_str(k, "name", 1, REP_MAX_USER, &bad);
    const char *pin = bad ? NULL : body_str(k, "pin", 1, FD_MAX_PIN, &bad);

    (void)unused;
    if (bad)
        return 0;
    unsigned wait = fd_pin_wait(k->c->sessions, name);
    if (wait > 0) {
        char msg[120];
        snprintf(msg, sizeof msg, "too many wrong PINs for this name: try again in %u s", wait);
        return fail(k, 429, msg);
    }
    int rc = fd_staff_verify(k->c->r, name, pin);
    if (rc == -EACCES || rc == -EINVAL) {
        fd_pin_result(k->c->sessions, name, 0);
        return fail(k, 401, "wrong name or PIN");
    }
    if (rc < 0)
        return answer_rc(k, rc, "staff");
    fd_pin_result(k->c->sessions, name, 1);
    if (k->q->session != NULL)
        fd_session_close(k->c->sessions, k->q->session);
    if (fd_session_open(k->c->sessions, name, k->out->cookie) < 0)
        return fail(k, 400, "name too long");
    answer(k, 200, json_pack("{s:s}", "user", name));
    return 0;
}

/* POST /signout: end this request's session. */
static int
post_signout(call_t *k, const char *unused)
{
    (void)unused;
    if (k->q->session != NULL)
        fd_session_close(k->c->sessions, k->q->session);
    strcpy(k->out->cookie, "-");
    answer(k, 200, json_pack("{s:n}", "user"));
    return 0;
}

/* ---- routing ------------------------------------------------------------------------------------
 */

typedef struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment, handed to the handler */
    int (*fn)(call_t *k, const char *seg);
    int write; /* needs a signed-in user */
} route_t;

static const route_t routes[] = {
    {"GET", "/today", get_today, 0},
    {"POST", "/appts", post_appt, 1},
    {"POST", "/appts/*/checkin", post_checkin, 1},
    {"POST", "/appts/*/cancel", post_cancel, 1},
    {"POST", "/appts/*/done", post_done, 1},
    {"GET", "/patients", get_patients, 0},
    {"POST", "/patients", post_patient, 1},
    {"GET", "/patients/*", get_patient, 0},
    {"POST", "/patients/*", edit_patient, 1},
    {"GET", "/messages", get_messages, 0},
    {"POST", "/messages", post_message, 1},
    {"POST", "/messages/*/notes", post_note, 1},
    {"POST", "/messages/*/close", post_close, 1},
    {"GET", "/refills", get_refills, 0},
    {"POST", "/refills", post_refill, 1},
    {"POST", "/refills/*/decide", post_decide, 1},
    {"GET", "/review", get_review, 0},
    {"POST", "/review/pick", post_pick, 1},
    {"GET", "/status", get_status, 0},
    {"GET", "/me", get_me, 0},
    {"POST", "/signin", post_signin, 0},
    {"POST", "/signout", post_signout, 0},
};

/* Does @p path match @p pattern? The segment '*' stands for goes to seg (at most 128 bytes). */
static int
match(const char *pattern, const char *path, char *seg, size_t segn)
{
    seg[0] = '\0';
    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= segn)
                return 0;
            memcpy(seg, path, n);
            seg[n] = '\0';
            path += n;
            pattern++;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

void
fd_api_handle(const fd_api_ctx_t *c, const fd_request_t *q, fd_response_t *out)
{
    call_t k = {c, q, out, NULL};
    char seg[REP_MAX_RECORD + 1];
    const route_t *found = NULL;
    int other_method = 0;

    for (size_t i = 0; found == NULL && i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, q->path, seg, sizeof seg))
            continue;
        if (strcmp(routes[i].method, q->method) == 0)
            found = &routes[i];
        else
            other_method = 1;
    }
    if (found == NULL) {
        if (other_method)
            fd_api_error(out, 405, "method not allowed on this route");
        else
            fd_api_error(out, 404, "no such route");
        return;
    }
    if (found->write && !need_user(&k))
        return;
    if (strcmp(q->method, "POST") == 0) {
        json_error_t err;
        if (q->len == 0) {
            k.body = json_object();
        } else {
            k.body = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &err);
            if (k.body == NULL || !json_is_object(k.body)) {
                char msg[240];
                if (k.body == NULL)
                    snprintf(msg, sizeof msg, "bad JSON: %s (at byte %d)", err.text, err.position);
                else
                    snprintf(msg, sizeof msg, "the body must be a JSON object");
                json_decref(k.body);
                fd_api_error(out, 400, msg);
                return;
            }
        }
    }
    found->fn(&k, seg);
    json_decref(k.body);
    if (out->body == NULL)
        fd_api_error(out, 500, "no answer");
}
