/*
 * auth.c — staff PINs and sign-in sessions (auth.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"

typedef struct session {
    char token[FD_TOKEN_SIZE]; /* "" for a free slot */
    char name[REP_MAX_USER + 1];
    time_t opened, used;
} session_t;

typedef struct tries {
    char name[REP_MAX_USER + 1]; /* "" for a free slot */
    unsigned wrong;              /* wrong PINs in a row */
    time_t last, until;          /* the last wrong PIN; no try before until */
} tries_t;

struct fd_sessions {
    pthread_mutex_t lock;
    session_t slots[FD_MAX_SESSIONS];
    tries_t tries[FD_MAX_SESSIONS];
};

static time_t
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

int
fd_sessions_new(fd_sessions_t **out)
{
    fd_sessions_t *s;

    *out = NULL;
    if (sodium_init() < 0)
        return -EIO;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void
fd_sessions_free(fd_sessions_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    pthread_mutex_destroy(&(*sp)->lock);
    sodium_memzero(*sp, sizeof **sp);
    free(*sp);
    *sp = NULL;
}

static int
expired(const session_t *e, time_t now)
{
    return now - e->used > FD_SESSION_IDLE_S || now - e->opened > FD_SESSION_MAX_S;
}

int
fd_session_open(fd_sessions_t *s, const char *name, char token[FD_TOKEN_SIZE])
{
    unsigned char raw[32];
    session_t *slot = NULL;
    time_t now = now_s();

    if (strlen(name) > REP_MAX_USER)
        return -EINVAL;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, FD_TOKEN_SIZE, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < FD_MAX_SESSIONS; i++) { /* a free or expired slot, else the oldest */
        session_t *e = &s->slots[i];
        if (e->token[0] == '\0' || expired(e, now)) {
            slot = e;
            break;
        }
        if (slot == NULL || e->opened < slot->opened)
            slot = e;
    }
    memcpy(slot->token, token, FD_TOKEN_SIZE);
    strcpy(slot->name, name);
    slot->opened = slot->used = now;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* The slot holding @p token, or NULL; with the lock held. */
static session_t *
lookup(fd_sessions_t *s, const char *token)
{
    if (strlen(token) != FD_TOKEN_SIZE - 1)
        return NULL;
    for (size_t i = 0; i < FD_MAX_SESSIONS; i++) {
        session_t *e = &s->slots[i];
        if (e->token[0] != '\0' && sodium_memcmp(e->token, token, FD_TOKEN_SIZE - 1) == 0)
            return e;
    }
    return NULL;
}

int
fd_session_find(fd_sessions_t *s, const char *token, char name[REP_MAX_USER + 1])
{
    int rc = REP_ENOTFOUND;
    time_t now = now_s();

    pthread_mutex_lock(&s->lock);
    session_t *e = lookup(s, token);
    if (e != NULL && expired(e, now)) {
        sodium_memzero(e, sizeof *e);
    } else if (e != NULL) {
        e->used = now;
        strcpy(name, e->name);
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void
fd_session_close(fd_sessions_t *s, const char *token)
{
    pthread_mutex_lock(&s->lock);
    session_t *e = lookup(s, token);
    if (e != NULL)
        sodium_memzero(e, sizeof *e);
    pthread_mutex_unlock(&s->lock);
}

/* The tries slot of @p name, or NULL (with @p make: a free or the oldest slot, reset). */
static tries_t *
tries_of(fd_sessions_t *s, const char *name, int make)
{
    tries_t *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < FD_MAX_SESSIONS; i++) {
        tries_t *e = &s->tries[i];
        if (e->name[0] == '\0') {
            if (free_slot == NULL)
                free_slot = e;
        } else if (strcmp(e->name, name) == 0) {
            return e;
        } else if (oldest == NULL || e->last < oldest->last) {
            oldest = e;
        }
    }
    tries_t *slot = free_slot != NULL ? free_slot : oldest;
    if (!make || strlen(name) > REP_MAX_USER)
        return NULL;
    memset(slot, 0, sizeof *slot);
    strcpy(slot->name, name);
    return slot;
}

unsigned
fd_pin_wait(fd_sessions_t *s, const char *name)
{
    time_t now = now_s();
    unsigned wait = 0;
    pthread_mutex_lock(&s->lock);
    tries_t *e = tries_of(s, name, 0);
    if (e != NULL && e->until > now)
        wait = (unsigned)(e->until - now);
    pthread_mutex_unlock(&s->lock);
    return wait;
}

void
fd_pin_result(fd_sessions_t *s, const char *name, int right)
{
    time_t now = now_s();
    pthread_mutex_lock(&s->lock);
    tries_t *e = tries_of(s, name, !right);
    if (e != NULL && right) {
        memset(e, 0, sizeof *e);
    } else if (e != NULL) {
        e->last = now;
        if (++e->wrong >= FD_PIN_TRIES) {
            unsigned shift = e->wrong - FD_PIN_TRIES;
            time_t lock = shift >= 5 ? 15 * 60 : (time_t)FD_PIN_LOCK_S << shift;
            e->until = now + (lock > 15 * 60 ? 15 * 60 : lock);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* A staff name: a record id of 1..REP_MAX_USER bytes without '/' or control characters
 * (the library checks it is UTF-8). */
static int
name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > REP_MAX_USER)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == '/')
            return 0;
    }
    return 1;
}

/* A hash of a random PIN nobody knows: verified for an unknown name, so that takes as long as
 * a wrong PIN does. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
make_dummy(void)
{
    unsigned char pin[16];
    randombytes_buf(pin, sizeof pin);
    if (crypto_pwhash_str(dummy_hash, (const char *)pin, sizeof pin,
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy_hash[0] = '\0';
}

int
fd_staff_verify(rep_replica_t *r, const char *name, const char *pin)
{
    char key[REP_MAX_USER + 8], hash[crypto_pwhash_STRBYTES];
    rep_value_t *v = NULL;
    int rc;

    if (!name_ok(name))
        return -EINVAL;
    snprintf(key, sizeof key, "staff/%s", name);
    rc = rep_replica_get(r, key, "pin", &v);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    if (rc == REP_ENOTFOUND || v->type != REP_STRING || v->u.s.len >= sizeof hash) {
        rep_value_free(&v);
        pthread_once(&dummy_once, make_dummy);
        if (dummy_hash[0] != '\0' && crypto_pwhash_str_verify(dummy_hash, pin, strlen(pin)) == 0)
            return -EACCES; /* (cannot happen: nobody knows that PIN) */
        return -EACCES;
    }
    memcpy(hash, v->u.s.ptr, v->u.s.len);
    hash[v->u.s.len] = '\0';
    rep_value_free(&v);
    return crypto_pwhash_str_verify(hash, pin, strlen(pin)) == 0 ? 0 : -EACCES;
}

int
fd_staff_set(rep_replica_t *r, const char *user, const char *name, const char *pin,
             const char *role)
{
    char key[REP_MAX_USER + 8], hash[crypto_pwhash_STRBYTES];
    size_t n = strlen(pin);
    rep_txn_t *t = NULL;
    int rc;

    if (!name_ok(name) || n < FD_MIN_PIN || n > FD_MAX_PIN)
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    if (crypto_pwhash_str(hash, pin, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return -ENOMEM;
    snprintf(key, sizeof key, "staff/%s", name);
    if ((rc = rep_txn_begin(r, user, &t)) < 0)
        return rc;
    if ((rc = rep_txn_set_str(t, key, "pin", hash)) == 0 && role != NULL)
        rc = rep_txn_set_str(t, key, "role", role);
    if (rc == 0)
        rc = rep_txn_commit(t, NULL);
    rep_txn_free(&t);
    sodium_memzero(hash, sizeof hash);
    return rc;
}
