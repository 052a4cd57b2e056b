/* feed.c — the change feed: the changes of the log after a cursor, in causal order
 * (rep_replica_changes(); replica.h documents the contract).
 *
 * The cursor is what has been handed out, as a version vector: per actor, the highest seq.
 * Its bytes, URL-safe base64 without padding:
 *   version(1) = 1 ‖ office(first 4 bytes) ‖ { actor(8, BE) ‖ seq(LEB128) }... ‖ check(4)
 * with the actors strictly increasing, every seq > 0, and check the first 4 bytes of the
 * BLAKE2b-256 of everything before it (a cursor cut short or mistyped is refused, never
 * taken for an earlier one). The empty vector is the beginning.
 *
 * The walk: per actor, a queue of its log entries after the cursor (the log is keyed actor ‖
 * seq, so each queue is a cursor seek); each step takes the head that is smallest in (hlc,
 * actor, seq) among those whose dependencies are all handed out or not in the log, which is
 * causal even when a clock ran ahead; with a limit, what is handed out is a prefix of each
 * queue, so the next cursor is exact. A gap in an actor's log (changes this replica holds
 * only as state: caught up from a snapshot) is skipped and reported as partial; once an actor's
 * queue is empty, its cursor moves up to its base (the seq up to which it came by state), so
 * that gap is reported once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "change.h"
#include "common.h"
#include "facade.h"
#include "keys.h"
#include "trust.h"

#define CURSOR_VERSION 1
#define CURSOR_OFFICE 4
#define CURSOR_CHECK 4
#define CURSOR_MAX_ACTORS 65536 /* far above any office's (devices × incarnations) */

/* ---- The cursor ---- */

static void
cursor_check(uint8_t out[CURSOR_CHECK], const uint8_t *p, size_t n)
{
    uint8_t h[REP_HASH_BYTES];
    rep__hash(h, p, n);
    memcpy(out, h, CURSOR_CHECK);
}

/* Encode vv (sorted by actor; seq-0 entries left out) as a cursor string (malloc'd). */
static int
cursor_encode(const uint8_t office[REP_OFFICE_ID_BYTES], const rep_vv_entry_t *vv, size_t n,
              char **out)
{
    *out = NULL;
    uint8_t *b = malloc(1 + CURSOR_OFFICE + n * (8 + 10) + CURSOR_CHECK);
    if (!b)
        return -ENOMEM;
    size_t len = 0;
    b[len++] = CURSOR_VERSION;
    memcpy(b + len, office, CURSOR_OFFICE);
    len += CURSOR_OFFICE;
    for (size_t i = 0; i < n; i++) {
        if (vv[i].seq == 0)
            continue;
        rep__put_be64(b + len, vv[i].actor);
        len += 8;
        for (uint64_t s = vv[i].seq; ; s >>= 7) {
            b[len++] = (uint8_t)((s & 0x7f) | (s >= 0x80 ? 0x80 : 0));
            if (s < 0x80)
                break;
        }
    }
    cursor_check(b + len, b, len);
    len += CURSOR_CHECK;
    *out = rep__base64(b, len);
    free(b);
    return *out ? 0 : -ENOMEM;
}

/* Decode a cursor into *vv (malloc'd, sorted by actor; NULL and 0 for the beginning). */
static int
cursor_decode(const char *s, const uint8_t office[REP_OFFICE_ID_BYTES], rep_vv_entry_t **vv,
              size_t *n)
{
    *vv = NULL;
    *n = 0;
    if (!s || !*s || strcmp(s, "0") == 0)
        return 0;
    if (strlen(s) > 4 * (1 + CURSOR_OFFICE + CURSOR_MAX_ACTORS * 18 + CURSOR_CHECK) / 3 + 4)
        return -EINVAL;
    uint8_t *b;
    size_t len;
    int rc = rep__unbase64(s, &b, &len);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0)
        return -EINVAL;
    uint8_t check[CURSOR_CHECK];
    if (len < 1 + CURSOR_OFFICE + CURSOR_CHECK) {
        free(b);
        return -EINVAL;
    }
    len -= CURSOR_CHECK;
    cursor_check(check, b, len);
    if (memcmp(check, b + len, CURSOR_CHECK) != 0)
        rc = -EINVAL;
    else if (b[0] != CURSOR_VERSION)
        rc = b[0] > CURSOR_VERSION ? REP_EVERSION : -EINVAL;
    else if (memcmp(b + 1, office, CURSOR_OFFICE) != 0)
        rc = REP_EOFFICE;
    size_t cap = (len - 1 - CURSOR_OFFICE) / 9; /* an entry takes 9 bytes at least */
    rep_vv_entry_t *v = rc == 0 && cap ? calloc(cap, sizeof *v) : NULL;
    if (rc == 0 && cap && !v)
        rc = -ENOMEM;
    size_t i = 1 + CURSOR_OFFICE, k = 0;
    while (rc == 0 && i < len) {
        if (len - i < 9) {
            rc = -EINVAL;
            break;
        }
        uint64_t actor = rep__get_be64(b + i), seq = 0;
        i += 8;
        unsigned shift = 0;
        bool end = false;
        while (i < len && !end) {
            uint8_t x = b[i++];
            if (shift > 63 || (shift == 63 && (x & 0x7e) != 0)) {
                rc = -EINVAL; /* more than 64 bits */
                break;
            }
            seq |= (uint64_t)(x & 0x7f) << shift;
            shift += 7;
            end = (x & 0x80) == 0;
        }
        if (rc == 0 && (!end || seq == 0 || actor == 0 || (k && v[k - 1].actor >= actor)))
            rc = -EINVAL; /* cut short, not canonical, or not in actor order */
        if (rc == 0)
            v[k++] = (rep_vv_entry_t){actor, seq};
    }
    free(b);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *vv = v;
    *n = k;
    return 0;
}

/* ---- The walk ---- */

/* One actor's queue: its next log entry after what has been handed out. */
typedef struct queue {
    uint64_t actor;
    uint64_t done;      /* handed out (or skipped) up to here: the next cursor's entry */
    uint64_t base;      /* came by state up to here (rep__base_get) */
    bool has_head;
    rep__change_t head; /* decoded header, borrowing the map (the read txn is open) */
} queue_t;

typedef struct feed_ctx {
    rep_replica_t *r;
    const rep_vv_entry_t *since;
    size_t nsince;
    size_t limit;
    unsigned flags;
    rep__trust_t trust;
    queue_t *q;
    size_t nq;
    rep__cur_t *log;
    rep_feed_t *out;
    size_t cap;
} feed_ctx_t;

/* Load q's next log entry after q->done into q->head (or note there is none). */
static int
queue_next(feed_ctx_t *fc, queue_t *q)
{
    if (q->has_head) {
        rep__change_clear(&q->head);
        q->has_head = false;
    }
    if (q->done == UINT64_MAX)
        return 0;
    uint8_t k[16];
    rep__put_be64(k, q->actor);
    rep__put_be64(k + 8, q->done + 1);
    rep__slice_t key, val;
    int rc = rep__cur_seek(fc->log, k, sizeof k, &key, &val);
    if (rc == REP_ENOTFOUND || (rc == 0 && (key.n != 16 || memcmp(key.p, k, 8) != 0))) {
        if (q->base > q->done) { /* the rest came by state */
            q->done = q->base;
            fc->out->partial = 1;
        }
        return 0;
    }
    REP_TRY(rc);
    REP_TRY(rep__change_decode(val.p, val.n, &q->head));
    q->has_head = true;
    if (q->head.actor != q->actor || q->head.seq != rep__get_be64(key.p + 8))
        return REP_ECORRUPT;
    return 0;
}

static queue_t *
queue_of(feed_ctx_t *fc, uint64_t actor)
{
    size_t lo = 0, hi = fc->nq;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fc->q[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < fc->nq && fc->q[lo].actor == actor ? &fc->q[lo] : NULL;
}

/* Every dependency of q's head handed out, or not in the log (came by state, or cut by a
 * revocation): no queue holds it still. */
static bool
ready(feed_ctx_t *fc, const queue_t *q)
{
    for (size_t d = 0; d < q->head.ndeps; d++) {
        const queue_t *o = queue_of(fc, q->head.deps[d].actor);
        if (o && o->has_head && o->head.seq <= q->head.deps[d].seq)
            return false;
    }
    return true;
}

static bool
before(const rep__change_t *a, const rep__change_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc;
    if (a->actor != b->actor)
        return a->actor < b->actor;
    return a->seq < b->seq;
}

/* The next head to hand out: the smallest ready one, or (should the log not be causal) the
 * smallest. NULL when every queue is empty. */
static queue_t *
pick(feed_ctx_t *fc)
{
    queue_t *best = NULL, *any = NULL;
    for (size_t i = 0; i < fc->nq; i++) {
        queue_t *q = &fc->q[i];
        if (q->has_head && (!any || before(&q->head, &any->head)))
            any = q;
    }
    if (!any || ready(fc, any)) /* the usual case: clocks follow causality */
        return any;
    for (size_t i = 0; i < fc->nq; i++) {
        queue_t *q = &fc->q[i];
        if (q->has_head && (!best || before(&q->head, &best->head)) && ready(fc, q))
            best = q;
    }
    return best ? best : any;
}

static void
record_release(rep_feed_record_t *rec)
{
    rep__ops_release(rec->ops, rec->nops);
    free((void *)rec->key);
}

static void
change_release(rep_feed_change_t *ch)
{
    for (size_t i = 0; i < ch->nrecords; i++)
        record_release(&ch->records[i]);
    free(ch->records);
    free((void *)ch->user);
    free((void *)ch->device_name);
}

static bool
same_record(const rep__op_t *a, const rep__op_t *b)
{
    return a->colln == b->colln && a->recn == b->recn && memcmp(a->coll, b->coll, a->colln) == 0 &&
           memcmp(a->rec, b->rec, a->recn) == 0;
}

/* Fill ch from the opened change c: its records (those not skipped) and their ops. first[j]
 * is the op that opened record j (scratch of c->nops). */
static int
change_fill(feed_ctx_t *fc, rep_feed_change_t *ch, const rep__change_t *c, size_t *first)
{
    memset(ch, 0, sizeof *ch);
    ch->actor = c->actor;
    ch->seq = c->seq;
    ch->hlc = c->hlc;
    const rep__dev_t *dev = rep__trust_author(&fc->trust, c->actor, c->inc);
    if (dev)
        rep__hex(ch->device_id, dev->pk, sizeof dev->pk);
    if (!(ch->user = rep__strndup(c->user, c->usern)) ||
        !(ch->device_name = rep__strndup(dev ? dev->name : "", dev ? strlen(dev->name) : 0)))
        return -ENOMEM;
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        if (op->colln && op->coll[0] == '_' && !(fc->flags & REP_FEED_INTERNAL))
            continue;
        size_t j = 0;
        while (j < ch->nrecords && !same_record(&c->ops[first[j]], op))
            j++;
        if (j == ch->nrecords) {
            if (!ch->records && !(ch->records = calloc(c->nops, sizeof *ch->records)))
                return -ENOMEM;
            rep_feed_record_t *rec = &ch->records[ch->nrecords++];
            first[j] = i;
            rep__skey_t k = {.coll = op->coll, .colln = op->colln, .rec = op->rec, .recn = op->recn};
            if (!(rec->key = rep__record_key_str(&k)))
                return -ENOMEM;
        }
        rep_feed_record_t *rec = &ch->records[j];
        if ((rec->nops & (rec->nops - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
            rep_op_t *v = realloc(rec->ops, (rec->nops ? rec->nops * 2 : 1) * sizeof *v);
            if (!v)
                return -ENOMEM;
            rec->ops = v;
        }
        REP_TRY(rep__op_export(&rec->ops[rec->nops++], op));
    }
    if (ch->nrecords && ch->nrecords < c->nops) { /* give back what was sized for every op */
        rep_feed_record_t *v = realloc(ch->records, ch->nrecords * sizeof *v);
        if (v)
            ch->records = v;
    }
    return 0;
}

/* Open q's head and append it to the feed unless it touches only skipped records. */
static int
emit(feed_ctx_t *fc, queue_t *q)
{
    rep__change_t *c = &q->head;
    const uint8_t *key = rep__trust_key(&fc->trust, c->epoch, REP_SUBKEY_CHANGE);
    REP_TRY(key ? rep__change_open(c, fc->r->office, key) : REP_EKEY);
    rep_feed_t *f = fc->out;
    if (f->n == fc->cap) {
        size_t cap = fc->cap ? fc->cap * 2 : 16;
        rep_feed_change_t *v = realloc(f->changes, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        f->changes = v;
        fc->cap = cap;
    }
    rep_feed_change_t *ch = &f->changes[f->n];
    size_t *first = malloc((c->nops ? c->nops : 1) * sizeof *first);
    int rc = first ? change_fill(fc, ch, c, first) : -ENOMEM;
    if (!first)
        memset(ch, 0, sizeof *ch);
    free(first);
    rep__change_close(c);
    if (rc == 0 && ch->nrecords > 0) {
        f->n++;
        return 0;
    }
    change_release(ch);
    return rc;
}

/* Would q's head be handed out (not only skipped records)? Opens it to see. */
static int
counts(feed_ctx_t *fc, queue_t *q, bool *yes)
{
    *yes = true;
    if (fc->flags & REP_FEED_INTERNAL)
        return 0;
    rep__change_t *c = &q->head;
    const uint8_t *key = rep__trust_key(&fc->trust, c->epoch, REP_SUBKEY_CHANGE);
    REP_TRY(key ? rep__change_open(c, fc->r->office, key) : REP_EKEY);
    *yes = false;
    for (size_t i = 0; i < c->nops && !*yes; i++)
        *yes = !(c->ops[i].colln && c->ops[i].coll[0] == '_');
    rep__change_close(c);
    return 0;
}

static int
feed_walk(feed_ctx_t *fc, rep__txn_t *t)
{
    rep_vv_entry_t *ours;
    size_t n;
    REP_TRY(rep__vv_all(t, &ours, &n));
    /* a queue per actor of the vv or of the cursor (the cursor's stay as they are) */
    int rc = 0;
    fc->q = calloc(n + fc->nsince + 1, sizeof *fc->q);
    if (!fc->q)
        rc = -ENOMEM;
    size_t i = 0, j = 0;
    while (rc == 0 && (i < n || j < fc->nsince)) {
        queue_t *q = &fc->q[fc->nq++];
        if (j == fc->nsince || (i < n && ours[i].actor < fc->since[j].actor)) {
            q->actor = ours[i++].actor;
        } else {
            q->actor = fc->since[j].actor;
            q->done = fc->since[j++].seq;
            if (i < n && ours[i].actor == q->actor)
                i++;
        }
    }
    free(ours);
    for (i = 0; i < fc->nq && rc == 0; i++) {
        rc = rep__base_get(t, fc->q[i].actor, &fc->q[i].base);
        if (rc == 0)
            rc = queue_next(fc, &fc->q[i]);
    }
    /* every step hands out or skips one log entry: bounded by the log's size */
    queue_t *q;
    while (rc == 0 && (q = pick(fc)) != NULL) {
        if (fc->limit && fc->out->n == fc->limit) {
            bool yes;
            if ((rc = counts(fc, q, &yes)) < 0)
                break;
            if (yes) {
                fc->out->more = 1;
                break;
            }
        }
        if (q->head.seq > q->done + 1 && q->base > q->done)
            fc->out->partial = 1; /* a gap: those came by state */
        if ((rc = emit(fc, q)) < 0)
            break;
        q->done = q->head.seq;
        rc = queue_next(fc, q);
    }
    return rc;
}

static int
feed_fn(rep__txn_t *t, void *arg)
{
    feed_ctx_t *fc = arg;
    REP_TRY(rep__trust_load(t, fc->r->office, &fc->trust));
    int rc = rep__trust_relay(&fc->trust) ? REP_EROLE /* it cannot read what it carries */
                                          : rep__cur_open(t, REP_DB_LOG, &fc->log);
    if (rc == 0)
        rc = feed_walk(fc, t);
    rep__cur_close(&fc->log);
    rep__trust_clear(&fc->trust);
    if (rc == 0) {
        /* the next cursor: the queues' done, which covers the cursor given */
        rep_vv_entry_t *vv = fc->nq ? malloc(fc->nq * sizeof *vv) : NULL;
        if (fc->nq && !vv)
            rc = -ENOMEM;
        for (size_t i = 0; i < fc->nq && rc == 0; i++)
            vv[i] = (rep_vv_entry_t){fc->q[i].actor, fc->q[i].done};
        if (rc == 0)
            rc = cursor_encode(fc->r->office, vv, fc->nq, &fc->out->cursor);
        free(vv);
    }
    for (size_t i = 0; i < fc->nq; i++)
        if (fc->q[i].has_head)
            rep__change_clear(&fc->q[i].head);
    free(fc->q);
    fc->q = NULL;
    fc->nq = 0;
    return rc;
}

int
rep_replica_changes(rep_replica_t *r, const char *since, size_t limit, unsigned flags,
                    rep_feed_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || (flags & ~REP_FEED_INTERNAL))
        return -EINVAL;
    feed_ctx_t fc;
    memset(&fc, 0, sizeof fc);
    fc.r = r;
    fc.limit = limit;
    fc.flags = flags;
    rep_vv_entry_t *vv;
    REP_TRY(cursor_decode(since, r->office, &vv, &fc.nsince));
    fc.since = vv;
    int rc = (fc.out = calloc(1, sizeof *fc.out)) ? 0 : -ENOMEM;
    if (rc == 0)
        rc = rep__store_read(r->st, feed_fn, &fc);
    free(vv);
    if (rc < 0) {
        rep_feed_free(&fc.out);
        return rc;
    }
    *out = fc.out;
    return 0;
}

void
rep_feed_free(rep_feed_t **fp)
{
    if (!fp || !*fp)
        return;
    for (size_t i = 0; i < (*fp)->n; i++)
        change_release(&(*fp)->changes[i]);
    free((*fp)->changes);
    free((*fp)->cursor);
    free(*fp);
    *fp = NULL;
}
