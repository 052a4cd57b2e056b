/*
 * sample.c — the sample office day (see sample.h).
 *
 * Patients come from a fixed-seed generator (the same patients whatever the date); the day's
 * appointments from one seeded by the date. Changes are made as the office would make them:
 * maria at the front desk registers patients and books, jo the nurse checks patients in, each
 * note of a message thread is its author's own change.
 */
/* POSIX functions come from -D_GNU_SOURCE on the command line (configure.ac). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "sample.h"

#define PATIENTS_PER_CHANGE 2000
#define FIRST_ID            10000
#define NSLOTS              24

const sample_staff_t sample_staff[] = {
    {"maria", "front desk", "1111"},
    {"jo", "nurse", "2222"},
    {"dr-osei", "doctor", "3333"},
    {"dr-lindqvist", "doctor", "4444"},
    {"np-ramirez", "nurse practitioner", "5555"},
    {NULL, NULL, NULL},
};

static const char *const first_names[] = {
    "Ada",    "Grace",  "Alan",    "Maria", "José",  "Zoë",     "Liam",   "Olivia", "Noah",
    "Emma",   "Mateo",  "Sofia",   "Wei",   "Mei",   "Arjun",   "Priya",  "Kwame",  "Amara",
    "Yusuf",  "Fatima", "Ivan",    "Olga",  "Sean",  "Siobhán", "Lars",   "Ingrid", "Hiroshi",
    "Yuki",   "Diego",  "Lucía",   "Omar",  "Leila", "Thomas",  "Anna",   "James",  "Mary",
    "Robert", "Linda",  "Michael", "Susan", "David", "Karen",   "Daniel", "Nancy",  "Paul",
    "Ruth",   "Minh",   "Thu",     "Kofi",  "Abena", "Pedro",   "Ana",    "Chloé",  "Élodie",
};
static const char *const last_names[] = {
    "Lovelace", "Hopper",    "Turing",  "Garcia",  "Martínez", "Nguyễn",    "Smith",    "Johnson",
    "Williams", "Brown",     "Jones",   "Miller",  "Davis",    "Rodriguez", "Wilson",   "Anderson",
    "Taylor",   "Thomas",    "Moore",   "Jackson", "Martin",   "Lee",       "Thompson", "White",
    "Harris",   "Clark",     "Lewis",   "Walker",  "Hall",     "Young",     "O'Brien",  "Murphy",
    "Kowalski", "Novak",     "Ivanova", "Chen",    "Wang",     "Kim",       "Park",     "Singh",
    "Patel",    "Mensah",    "Okafor",  "Haddad",  "Cohen",    "Schmidt",   "Müller",   "Rossi",
    "Bianchi",  "Lindqvist", "Berg",    "Tanaka",  "Sato",     "Silva",     "Santos",   "Dubois",
};
static const char *const allergens[] = {
    "penicillin", "latex",     "sulfa drugs",     "codeine",   "aspirin",
    "peanuts",    "shellfish", "iodine contrast", "ibuprofen", "eggs",
};
static const char *const providers[] = {"Dr. Osei", "Dr. Lindqvist", "NP Ramirez"};
static const char *const reasons[] = {
    "Annual physical",    "Flu shot",           "Blood pressure follow-up",
    "Diabetes check",     "Cough and fever",    "Knee pain",
    "Medication review",  "Lab results",        "Well-child visit",
    "Back pain",          "Skin rash",          "Ear infection",
    "Prenatal visit",     "Sports physical",    "Headaches",
    "Post-surgery check", "Asthma follow-up",   "Travel vaccines",
    "Anxiety follow-up",  "Cholesterol review",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The day's slots: 08:00 to 11:40 and 13:00 to 16:40, every 20 minutes. */
static int
slot_time(size_t i)
{
    size_t m = (i < NSLOTS / 2 ? 8 * 60 : 13 * 60) + (i % (NSLOTS / 2)) * 20;

    return (int)((m / 60) * 100 + m % 60);
}

/* ---- A seeded generator (splitmix64) ------------------------------------------------------- */

static uint64_t
next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (the bias of a modulo is of no account here). */
static size_t
below(uint64_t *s, size_t n)
{
    return (size_t)(next(s) % n);
}

/* ---- Writing --------------------------------------------------------------------------------- */

typedef struct writer {
    rep_replica_t *r;
    rep_txn_t *t;
    sample_stats_t *st;
} writer_t;

static int
begin(writer_t *w, const char *user)
{
    return rep_txn_begin(w->r, user, &w->t);
}

static int
commit(writer_t *w)
{
    int rc = rep_txn_commit(w->t, NULL);

    rep_txn_free(&w->t);
    if (rc == 0)
        w->st->changes++;
    return rc;
}

static int
str_value(const char *s, rep_value_t *v)
{
    v->type = REP_STRING;
    v->u.s.ptr = s;
    v->u.s.len = strlen(s);
    return 0;
}

static void
patient_key(char *buf, size_t n, size_t i)
{
    snprintf(buf, n, "patients/%zu", (size_t)FIRST_ID + i);
}

/* Patient @p i's name, date of birth and phone, and how many allergies (0-2) it has, with
 * its own generator (so any part of the sample can name patient i), left in *rng for them. */
static size_t
patient_of(size_t i, char name[128], char dob[16], char phone[16], uint64_t *rng)
{
    size_t nall;

    *rng = 0x5eed0ff1ceull ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
    snprintf(name, 128, "%s %s", first_names[below(rng, N_OF(first_names))],
             last_names[below(rng, N_OF(last_names))]);
    snprintf(dob, 16, "%04zu-%02zu-%02zu", 1935 + below(rng, 89), 1 + below(rng, 12),
             1 + below(rng, 28));
    snprintf(phone, 16, "555-%04zu", below(rng, 10000));
    /* about one patient in three has an allergy, one in ten two */
    nall = below(rng, 10);
    return nall < 7 ? 0 : nall < 9 ? 1 : 2;
}

static int
patients(writer_t *w, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        char key[64], name[128], dob[16], phone[16];
        uint64_t rng;
        size_t nall;

        if (i % PATIENTS_PER_CHANGE == 0 && (rc = begin(w, "maria")) < 0)
            break;
        patient_key(key, sizeof key, i);
        nall = patient_of(i, name, dob, phone, &rng);
        if ((rc = rep_txn_set_str(w->t, key, "name", name)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "dob", dob)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "phone", phone)) < 0)
            break;
        for (size_t k = 0; k < nall && rc == 0; k++) {
            rep_value_t v;

            str_value(allergens[below(&rng, N_OF(allergens))], &v);
            rc = rep_txn_add(w->t, key, "allergies", &v);
        }
        if (rc < 0)
            break;
        w->st->patients++;
        if ((i + 1) % PATIENTS_PER_CHANGE == 0 || i + 1 == n)
            rc = commit(w);
    }
    rep_txn_free(&w->t);
    return rc;
}

/* One appointment, booked. */
static int
book(writer_t *w, const char *date, int hhmm, size_t patient, const char *provider,
     const char *reason, char *key, size_t keyn)
{
    char id[32];
    int rc;

    snprintf(id, sizeof id, "%zu", (size_t)FIRST_ID + patient);
    snprintf(key, keyn, "appts/%s-%04d-%s", date, hhmm, id);
    if ((rc = rep_txn_set_str(w->t, key, "patient", id)) < 0 ||
        (rc = rep_txn_set_str(w->t, key, "provider", provider)) < 0 ||
        (rc = rep_txn_set_str(w->t, key, "reason", reason)) < 0 ||
        (rc = rep_txn_set_str(w->t, key, "status", "booked")) < 0)
        return rc;
    return 0;
}

/* The day after @p date, into @p out. */
static int
day_after(const char *date, char out[16])
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (sscanf(date, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_mday += 1;
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    if (mktime(&tm) == (time_t)-1 || strftime(out, 16, "%Y-%m-%d", &tm) != 10)
        return -EINVAL;
    return 0;
}

/*
 * The day: bookings (maria), then check-ins and visits done (jo), then cancellations (maria).
 * Statuses follow the time of day as if it were about 11:00: slots before 10:00 are done,
 * those before 11:00 arrived, about one in twelve of the later ones cancelled. @p order is a
 * shuffle of the patients, taken in order: a patient has one appointment a day.
 */
static int
appointments(writer_t *w, const char *date, const size_t *order, size_t n)
{
    /* at most NSLOTS * 3 appointments on the day and 4 the day after */
    int status[NSLOTS * N_OF(providers)];
    char keys[NSLOTS * N_OF(providers)][96], next_day[16];
    uint64_t rng = 0xa7705;
    size_t k = 0, na = 0;
    int rc;

    for (const char *p = date; *p; p++)
        rng = rng * 31 + (unsigned char)*p;
    if ((rc = day_after(date, next_day)) < 0)
        return rc;
    if ((rc = begin(w, "maria")) < 0)
        return rc;
    for (size_t slot = 0; slot < NSLOTS && k < n; slot++) {
        for (size_t p = 0; p < N_OF(providers) && k < n; p++) {
            int hhmm = slot_time(slot);

            if (below(&rng, 4) == 0) /* about a quarter of the slots are free */
                continue;
            rc = book(w, date, hhmm, order[k++], providers[p], reasons[below(&rng, N_OF(reasons))],
                      keys[na], sizeof keys[na]);
            if (rc < 0)
                goto out;
            status[na] = hhmm < 1000 ? 2 : hhmm < 1100 ? 1 : below(&rng, 12) == 0 ? 3 : 0;
            na++;
        }
    }
    for (size_t i = 0; i < 4; i++) {
        static const int next_times[4] = {900, 920, 1000, 1040};
        char key[96];

        /* the patients after the day's, or again from the first when the day took them all */
        rc = book(w, next_day, next_times[i], order[(k + i) % n], providers[i % 2],
                  reasons[below(&rng, N_OF(reasons))], key, sizeof key);
        if (rc < 0)
            goto out;
        w->st->appts_next++;
    }
    if ((rc = commit(w)) < 0)
        goto out;
    w->st->appts = na;
    /* jo checks patients in; the visits before 10:00 are done */
    if ((rc = begin(w, "jo")) < 0)
        goto out;
    for (size_t i = 0; i < na; i++) {
        if (status[i] == 1 || status[i] == 2) {
            rc = rep_txn_set_str(w->t, keys[i], "status", status[i] == 1 ? "arrived" : "done");
            if (rc < 0)
                goto out;
        }
    }
    if ((rc = commit(w)) < 0)
        goto out;
    /* patients call to cancel */
    if ((rc = begin(w, "maria")) < 0)
        goto out;
    for (size_t i = 0; i < na; i++) {
        if (status[i] == 3) {
            if ((rc = rep_txn_set_str(w->t, keys[i], "status", "cancelled")) < 0)
                goto out;
            w->st->cancelled++;
        }
    }
    rc = commit(w);
out:
    rep_txn_free(&w->t);
    return rc;
}

/* A message: who called at what time about whom, its notes (author, text), open or closed. */
typedef struct msg_tpl {
    const char *hhmm;
    size_t patient;     /* index into the day's patients; (size_t)-1: none */
    const char *caller; /* NULL: the patient */
    const char *subject;
    int closed;
    struct {
        const char *user, *text;
    } notes[3];
} msg_tpl_t;

#define NO_PATIENT ((size_t)-1)

/* clang-format off */
static const msg_tpl_t msg_tpls[] = {
    {"0812", 0, "Daughter (Ann)", "Blood test results: asks for a call back", 0,
     {{"maria", "Daughter called: wants the blood test results explained. Best number "
                "555-0148 after 2 pm."},
      {"jo", "Results are in the chart; Dr. Osei to call after clinic."},
      {NULL, NULL}}},
    {"0840", 1, "City Pharmacy", "Metformin dose on the new prescription", 0,
     {{"maria", "Pharmacist asks: 500 mg once or twice daily? The fax is unclear."},
      {NULL, NULL},
      {NULL, NULL}}},
    {"0905", 2, NULL, "Reschedule Thursday's appointment", 0,
     {{"maria", "Wants a morning slot next week instead."},
      {"maria", "Offered Tuesday 09:20; will call back to confirm."},
      {NULL, NULL}}},
    {"0931", 3, NULL, "Dizzy since starting lisinopril", 0,
     {{"maria", "Dizzy since starting lisinopril two days ago. No fall, no chest pain."},
      {"jo", "Nurse advice: sit or lie down when dizzy, drink fluids; BP check today."},
      {"dr-osei", "Hold the next dose; seen at 14:00."}}},
    {"0755", NO_PATIENT, "St. Mary's Hospital, records", "Discharge summary faxed", 1,
     {{"jo", "Received and filed; flagged for Dr. Lindqvist."}, {NULL, NULL}, {NULL, NULL}}},
    {"0820", 4, NULL, "Asks whether the flu shot clinic is on Saturday", 1,
     {{"maria", "Yes, 9 to 12, no appointment needed. Told the patient."},
      {NULL, NULL},
      {NULL, NULL}}},
};
/* clang-format on */

static int
messages(writer_t *w, const char *date, const size_t *order, size_t n)
{
    int rc = 0;

    for (size_t m = 0; m < N_OF(msg_tpls) && rc == 0; m++) {
        const msg_tpl_t *tp = &msg_tpls[m];
        char key[96], pid[32], caller[128], dob[16], phone[16];
        uint64_t rng;

        snprintf(key, sizeof key, "msgs/%s-%s-%zu", date, tp->hhmm, m + 1);
        pid[0] = '\0';
        if (tp->caller != NULL)
            snprintf(caller, sizeof caller, "%s", tp->caller);
        else
            snprintf(caller, sizeof caller, "the patient");
        if (tp->patient != NO_PATIENT) {
            size_t i = order[tp->patient % n];

            snprintf(pid, sizeof pid, "%zu", (size_t)FIRST_ID + i);
            if (tp->caller == NULL)
                (void)patient_of(i, caller, dob, phone, &rng); /* the patient calls */
        }
        for (size_t k = 0; k < N_OF(tp->notes) && tp->notes[k].user != NULL && rc == 0; k++) {
            rep_value_t v;

            if ((rc = begin(w, tp->notes[k].user)) < 0)
                break;
            if (k == 0 && ((rc = rep_txn_set_str(w->t, key, "patient", pid)) < 0 ||
                           (rc = rep_txn_set_str(w->t, key, "caller", caller)) < 0 ||
                           (rc = rep_txn_set_str(w->t, key, "subject", tp->subject)) < 0 ||
                           (rc = rep_txn_set_str(w->t, key, "status", "open")) < 0))
                break;
            str_value(tp->notes[k].text, &v);
            if ((rc = rep_txn_append(w->t, key, "thread", &v)) < 0)
                break;
            if (tp->closed && (k + 1 == N_OF(tp->notes) || tp->notes[k + 1].user == NULL) &&
                (rc = rep_txn_set_str(w->t, key, "status", "closed")) < 0)
                break;
            rc = commit(w);
        }
        if (rc == 0) {
            w->st->msgs++;
            w->st->msgs_open += !tp->closed;
        }
    }
    rep_txn_free(&w->t);
    return rc;
}

static const struct {
    size_t patient;
    const char *slug, *medication, *requested_by, *status, *decided_by;
} refill_tpls[] = {
    {3, "lisinopril", "Lisinopril 10 mg, 30 tablets", "the patient, by phone", "pending", NULL},
    {1, "metformin", "Metformin 500 mg, 60 tablets", "City Pharmacy", "pending", NULL},
    {5, "atorvastatin", "Atorvastatin 20 mg, 90 tablets", "the patient's daughter, by phone",
     "pending", NULL},
    {6, "levothyroxine", "Levothyroxine 50 mcg, 90 tablets", "City Pharmacy", "approved",
     "dr-osei"},
    {7, "zolpidem", "Zolpidem 10 mg, 30 tablets", "the patient, by phone", "denied",
     "dr-lindqvist"},
};

static int
refill_requests(writer_t *w, const char *date, const size_t *order, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    if ((rc = begin(w, "maria")) < 0)
        return rc;
    for (size_t i = 0; i < N_OF(refill_tpls); i++) {
        char key[128], pid[32];

        snprintf(pid, sizeof pid, "%zu", (size_t)FIRST_ID + order[refill_tpls[i].patient % n]);
        snprintf(key, sizeof key, "refills/%s-%s-%s", date, pid, refill_tpls[i].slug);
        if ((rc = rep_txn_set_str(w->t, key, "patient", pid)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "medication", refill_tpls[i].medication)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "requested_by", refill_tpls[i].requested_by)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "status", "pending")) < 0)
            goto out;
        w->st->refills++;
    }
    if ((rc = commit(w)) < 0)
        goto out;
    /* the doctors decide two of them, each signed in as themselves */
    for (size_t i = 0; i < N_OF(refill_tpls); i++) {
        char key[128], pid[32];

        if (refill_tpls[i].decided_by == NULL) {
            w->st->refills_pending++;
            continue;
        }
        snprintf(pid, sizeof pid, "%zu", (size_t)FIRST_ID + order[refill_tpls[i].patient % n]);
        snprintf(key, sizeof key, "refills/%s-%s-%s", date, pid, refill_tpls[i].slug);
        if ((rc = begin(w, refill_tpls[i].decided_by)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "status", refill_tpls[i].status)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "decided_by", refill_tpls[i].decided_by)) < 0 ||
            (rc = commit(w)) < 0)
            goto out;
    }
out:
    rep_txn_free(&w->t);
    return rc;
}

static int
staff(writer_t *w)
{
    int rc;

    if (sodium_init() < 0)
        return -ENOSYS;
    if ((rc = begin(w, "maria")) < 0)
        return rc;
    for (const sample_staff_t *s = sample_staff; s->name != NULL; s++) {
        char key[96], hash[crypto_pwhash_STRBYTES];

        snprintf(key, sizeof key, "staff/%s", s->name);
        if (crypto_pwhash_str(hash, s->pin, strlen(s->pin), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
            rc = -ENOMEM;
            goto out;
        }
        if ((rc = rep_txn_set_str(w->t, key, "pin", hash)) < 0 ||
            (rc = rep_txn_set_str(w->t, key, "role", s->role)) < 0)
            goto out;
        w->st->staff++;
    }
    rc = commit(w);
out:
    rep_txn_free(&w->t);
    return rc;
}

int
sample_office(rep_replica_t *r, const char *date, size_t npatients, sample_stats_t *st)
{
    sample_stats_t dummy;
    writer_t w = {.r = r};
    size_t *order = NULL;
    uint64_t rng = 0x0dde5;
    int rc;

    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);
    w.st = st;
    if (date == NULL || strlen(date) != 10 || npatients == 0 || npatients > SAMPLE_MAX_PATIENTS)
        return -EINVAL;
    /* the day's patients: a shuffle (Fisher-Yates) of all of them, taken in order */
    order = malloc(npatients * sizeof *order);
    if (order == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < npatients; i++)
        order[i] = i;
    for (const char *p = date; *p; p++)
        rng = rng * 31 + (unsigned char)*p;
    for (size_t i = npatients - 1; i > 0; i--) {
        size_t j = below(&rng, i + 1), tmp = order[i];

        order[i] = order[j];
        order[j] = tmp;
    }
    if ((rc = staff(&w)) < 0 || (rc = patients(&w, npatients)) < 0 ||
        (rc = appointments(&w, date, order, npatients)) < 0 ||
        (rc = messages(&w, date, order, npatients)) < 0 ||
        (rc = refill_requests(&w, date, order, npatients)) < 0)
        goto out;
out:
    free(order);
    return rc;
}
