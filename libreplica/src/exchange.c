/* exchange.c — changes as bytes: version vectors, export in causal order, atomic import. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "change.h"
#include "common.h"
#include "facade.h"
#include "node.h"
#include "snapshot.h"
#include "trust.h"

/* ---- Exchange ---- */
typedef struct vv_ctx {
    rep_vv_entry_t *vv;
    size_t n;
} vv_ctx_t;

/* The vv with the membership log's length as actor 0, first (change.h). */
static int
vv_fn(rep__txn_t *t, void *arg)
{
    vv_ctx_t *vc = arg;
    uint64_t members;
    REP_TRY(rep__txn_count(t, REP_DB_MEMBERS, &members));
    REP_TRY(rep__vv_all(t, &vc->vv, &vc->n));
    if (members == 0)
        return 0;
    rep_vv_entry_t *v = realloc(vc->vv, (vc->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    memmove(v + 1, v, vc->n * sizeof *v);
    v[0] = (rep_vv_entry_t){0, members};
    vc->vv = v;
    vc->n++;
    return 0;
}

int
rep_replica_vv(rep_replica_t *r, uint8_t **out, size_t *len)
{
    if (!out || !len)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (!r)
        return -EINVAL;
    rep_vv_entry_t *vv;
    size_t n;
    REP_TRY(rep__replica_vv(r, &vv, &n));
    int rc = rep__vv_encode(r->office, vv, n, out, len);
    free(vv);
    return rc;
}

int
rep__replica_vv(rep_replica_t *r, rep_vv_entry_t **vv, size_t *n)
{
    vv_ctx_t vc = {NULL, 0};
    int rc = rep__store_read(r->st, vv_fn, &vc);
    if (rc < 0) {
        free(vc.vv);
        vc.vv = NULL;
        vc.n = 0;
    }
    *vv = vc.vv;
    *n = vc.n;
    return rc;
}

typedef struct export_ctx {
    rep_replica_t *r;
    const rep_vv_entry_t *theirs;
    size_t ntheirs;
    size_t max_bytes;
    rep__batch_writer_t w;
    rep__buf_t entries;  /* membership entries they lack, packed */
    rep__trust_t trust;  /* the membership, loaded in the same transaction before export_fn
                            (catchup_fn): a revoked device's cutoffs cap dependencies */
    bool partial;        /* for a relay: pass over an actor whose changes the log lacks (they
                            came by state), rather than refuse the whole answer */
    int more;
} export_ctx_t;

/*
 * Emit what the other side lacks in causal order: `sent` starts as their version vector
 * (restricted to our actors); repeatedly take, for each actor, its next change if every
 * dependency is covered by sent. Our own log was applied causally, so this always drains.
 */
static int
export_fn(rep__txn_t *t, void *arg)
{
    export_ctx_t *ec = arg;
    rep__vv_t theirs = {ec->theirs, ec->ntheirs};
    rep_vv_entry_t *ours = NULL, *sent = NULL;
    size_t n = 0;
    /* first the membership entries they lack: they go in whatever the size */
    ec->entries.len = 0;
    REP_TRY(rep__trust_pack_entries(t, rep__vv_seq(&theirs, 0), ec->trust.count, &ec->entries));
    REP_TRY(rep__vv_all(t, &ours, &n));
    int rc = 0;
    bool *gap = NULL;
    if (n && (!(sent = calloc(n, sizeof *sent)) || !(gap = calloc(n, sizeof *gap))))
        rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sent[i].actor = ours[i].actor;
        sent[i].seq = rep__vv_seq(&theirs, ours[i].actor);
    }
    bool progress = true, full = false;
    while (rc == 0 && progress && !full) {
        progress = false;
        for (size_t i = 0; i < n && rc == 0 && !full; i++) {
            while (!gap[i] && sent[i].seq < ours[i].seq) {
                uint8_t k[16];
                rep__put_be64(k, ours[i].actor);
                rep__put_be64(k + 8, sent[i].seq + 1);
                rep__slice_t bytes;
                rep__change_t c;
                if ((rc = rep__txn_get(t, REP_DB_LOG, k, sizeof k, &bytes)) == REP_ENOTFOUND &&
                    ec->partial) {
                    gap[i] = true; /* and what depends on it waits */
                    rc = 0;
                    break;
                }
                if (rc < 0 || (rc = rep__change_decode(bytes.p, bytes.n, &c)) < 0)
                    break;
                bool ready = true;
                rep__vv_t sv = {sent, n};
                for (size_t d = 0; d < c.ndeps && ready; d++)
                    ready = rep__vv_seq(&sv, c.deps[d].actor) >=
                            rep__trust_cap(&ec->trust, c.deps[d].actor, c.deps[d].seq);
                rep__change_clear(&c);
                if (!ready)
                    break;
                if (ec->max_bytes && ec->w.count > 0 &&
                    rep__batch_size_with(&ec->w, bytes.n) + ec->entries.len > ec->max_bytes) {
                    full = true;
                    ec->more = 1;
                    break;
                }
                rep__batch_add(&ec->w, bytes.p, bytes.n);
                sent[i].seq++;
                progress = true;
            }
        }
    }
    if (rc == REP_ENOTFOUND)
        rc = REP_ESTATE; /* the vv has it, the log not: it came by state (base) */
    free(ours);
    free(sent);
    free(gap);
    return rc;
}

/* Decode the other side's vv bytes (NULL: an empty vv) and check their office. */
static int
their_vv(rep_replica_t *r, const uint8_t *vv, size_t vvlen, rep_vv_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!vv && !vvlen)
        return 0;
    uint8_t office[REP_OFFICE_ID_BYTES];
    REP_TRY(rep__vv_decode(vv, vvlen, office, out, n));
    if (memcmp(office, r->office, sizeof office) != 0) {
        free(*out);
        *out = NULL;
        return REP_EOFFICE;
    }
    return 0;
}

/* Would a snapshot serve the other side better than changes? *lacks when our log does not
 * hold some change they need (they came by state); otherwise *need is the bytes of those
 * changes, counted until they pass *state, the bytes of the state (estimated from its pages,
 * assumed three quarters full; a snapshot is smaller still, as it is compressed, like each
 * change). */
static int
prefer_state(rep__txn_t *t, const rep__vv_t *theirs, bool *lacks, uint64_t *need,
             uint64_t *state)
{
    *lacks = false;
    *need = 0;
    REP_TRY(rep__txn_bytes(t, REP_DB_STATE, state));
    *state = *state / 4 * 3;
    bool more = false;
    rep_vv_entry_t *ours;
    size_t n;
    REP_TRY(rep__vv_all(t, &ours, &n));
    rep__cur_t *c = NULL;
    int rc = rep__cur_open(t, REP_DB_LOG, &c);
    /* Look for a change the log lacks even once the changes are known to be bigger than the
     * state: `smaller` alone gives way to changes when the snapshot exceeds max_bytes, and
     * those would run into the gap (catchup itself saying REP_ESTATE, or a batch cut short
     * before it, so the asker never catches up). */
    for (size_t i = 0; i < n && rc == 0 && !*lacks; i++) {
        uint64_t have = rep__vv_seq(theirs, ours[i].actor), base;
        if (have >= ours[i].seq)
            continue;
        if ((rc = rep__base_get(t, ours[i].actor, &base)) < 0)
            break;
        if (have < base) {
            *lacks = true;
            break;
        }
        uint8_t k[16];
        rep__put_be64(k, ours[i].actor);
        rep__put_be64(k + 8, have + 1);
        rep__slice_t key, val;
        for (rc = rep__cur_seek(c, k, sizeof k, &key, &val);
             rc == 0 && key.n == 16 && memcmp(key.p, k, 8) == 0 && !more;
             rc = rep__cur_next(c, &key, &val))
            more = (*need += val.n) > *state;
        if (rc == REP_ENOTFOUND)
            rc = 0;
    }
    rep__cur_close(&c);
    free(ours);
    return rc;
}

typedef struct catchup_ctx {
    export_ctx_t ec;
    rep__answer_t kind;
    uint8_t *snap;       /* the snapshot, when it is the answer */
    size_t snapn;
} catchup_ctx_t;

static int
catchup_fn(rep__txn_t *t, void *arg)
{
    catchup_ctx_t *cc = arg;
    rep_replica_t *r = cc->ec.r;
    rep__vv_t theirs = {cc->ec.theirs, cc->ec.ntheirs};
    bool lacks = cc->kind == REP__ANSWER_STATE;
    uint64_t need = 0, state = 0;
    REP_TRY(rep__trust_load(t, r->office, &cc->ec.trust));
    bool relay = rep__trust_relay(&cc->ec.trust);
    if (relay && cc->kind == REP__ANSWER_STATE)
        return REP_EROLE; /* it has no state, nor the key to seal one */
    if (cc->kind == REP__ANSWER_BEST && !relay)
        REP_TRY(prefer_state(t, &theirs, &lacks, &need, &state));
    /* changes of more than an eighth of the state's pages may well be bigger than its
     * snapshot: make it, and see */
    if (lacks || need > state / 8) {
        REP_TRY(rep__snapshot_write(t, r->office, r->office_name, r->actor, r->incarnation,
                                    &cc->snap, &cc->snapn));
        if (lacks || (cc->snapn < need && (!cc->ec.max_bytes || cc->snapn <= cc->ec.max_bytes)))
            return 0;
        free(cc->snap); /* bigger than the changes, or than one message, and they are here */
        cc->snap = NULL;
    }
    return export_fn(t, &cc->ec);
}

/* The answer to a decoded vv (theirs, sorted by actor). */
static int
answer_vv(rep_replica_t *r, const rep_vv_entry_t *theirs, size_t ntheirs, size_t max_bytes,
          rep__answer_t kind, uint8_t **out, size_t *len, int *more)
{
    catchup_ctx_t cc;
    memset(&cc, 0, sizeof cc);
    cc.ec.r = r;
    cc.ec.max_bytes = max_bytes;
    cc.ec.partial = kind == REP__ANSWER_RELAY;
    cc.kind = kind == REP__ANSWER_RELAY ? REP__ANSWER_CHANGES : kind;
    rep__buf_init(&cc.ec.entries);
    cc.ec.theirs = theirs;
    cc.ec.ntheirs = ntheirs;
    rep__batch_begin(&cc.ec.w, r->office, r->office_name, r->actor);
    int rc = rep__store_read(r->st, catchup_fn, &cc);
    rep__trust_clear(&cc.ec.trust);
    if (rc < 0 || cc.snap) {
        rep__buf_free(&cc.ec.w.buf);
        rep__buf_free(&cc.ec.entries);
        *out = cc.snap;
        *len = cc.snapn;
        return rc;
    }
    rc = rep__batch_end(&cc.ec.w, &cc.ec.entries, out, len);
    rep__buf_free(&cc.ec.entries);
    REP_TRY(rc);
    if (more)
        *more = cc.ec.more;
    return 0;
}

static int
answer(rep_replica_t *r, const uint8_t *vv, size_t vvlen, size_t max_bytes, rep__answer_t kind,
       uint8_t **out, size_t *len, int *more)
{
    if (!out || !len)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (more)
        *more = 0;
    if (!r)
        return -EINVAL;
    rep_vv_entry_t *theirs;
    size_t ntheirs;
    REP_TRY(their_vv(r, vv, vvlen, &theirs, &ntheirs));
    int rc = answer_vv(r, theirs, ntheirs, max_bytes, kind, out, len, more);
    free(theirs);
    return rc;
}

int
rep__replica_answer(rep_replica_t *r, const rep_vv_entry_t *vv, size_t n, size_t max_bytes,
                    rep__answer_t kind, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    return answer_vv(r, vv, n, max_bytes, kind, out, len, NULL);
}

int
rep_replica_export(rep_replica_t *r, const uint8_t *vv, size_t vvlen, size_t max_bytes,
                   uint8_t **out, size_t *len, int *more)
{
    return answer(r, vv, vvlen, max_bytes, REP__ANSWER_CHANGES, out, len, more);
}

int
rep_replica_snapshot(rep_replica_t *r, uint8_t **out, size_t *len)
{
    return answer(r, NULL, 0, 0, REP__ANSWER_STATE, out, len, NULL);
}

int
rep_replica_catchup(rep_replica_t *r, const uint8_t *vv, size_t vvlen, size_t max_bytes,
                    uint8_t **out, size_t *len, int *more)
{
    return answer(r, vv, vvlen, max_bytes, REP__ANSWER_BEST, out, len, more);
}

/* Progress reports of an import (rep_replica_import_progress): fn may be NULL. */
typedef struct progress {
    rep_import_progress_fn fn;
    void *ctx;
} progress_t;

static void
report(const progress_t *p, rep_import_phase_t phase, uint64_t done, uint64_t total)
{
    if (p && p->fn)
        p->fn(p->ctx, phase, done, total);
}

#define REPORT_EVERY 4096 /* changes applied between two reports */

typedef struct import_ctx {
    rep_replica_t *r;
    const rep__batch_t *b;
    rep__change_t *changes;
    size_t n;
    rep_import_stats_t stats;
    const progress_t *progress;
} import_ctx_t;

static int
pending_fn(rep__txn_t *t, void *arg)
{
    return rep__txn_count(t, REP_DB_PENDING, arg);
}

static int
cmp_actor_seq_desc(const void *pa, const void *pb)
{
    const rep__change_t *a = *(rep__change_t *const *)pa, *b = *(rep__change_t *const *)pb;
    if (a->actor != b->actor)
        return a->actor < b->actor ? 1 : -1;
    return a->seq < b->seq ? 1 : a->seq > b->seq ? -1 : 0;
}

/*
 * Check that members wrote every change and nobody altered one, then open them. Signatures are
 * amortized over each actor's hash chain: going down an actor's changes by seq, a change whose
 * hash is the prev of the next one (already vouched for) is vouched for by it; only the others
 * (the newest of each run) have their signature checked: one per actor and batch, usually.
 * A change of a revoked device past its cutoff is marked cut (and neither checked nor opened,
 * nor vouching for the one before it).
 */
static int
authenticate(rep__trust_t *tr, const uint8_t office[REP_OFFICE_ID_BYTES], rep__change_t *cs,
             size_t n)
{
    bool relay = rep__trust_relay(tr);
    rep__change_t **order = n ? malloc(n * sizeof *order) : NULL;
    if (n && !order)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = &cs[i];
    if (n)
        qsort(order, n, sizeof *order, cmp_actor_seq_desc);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rep__change_t *c = order[i], *next = i ? order[i - 1] : NULL;
        const rep__dev_t *author = rep__trust_author(tr, c->actor, c->inc);
        if (!author || rep__dev_is_relay(author)) { /* a relay has no key to seal with */
            rc = REP_EAUTH;
            break;
        }
        if ((c->cut = rep__trust_cut(author, c->actor, c->seq, c->hash)))
            continue;
        bool vouched = next && !next->cut && next->actor == c->actor &&
                       next->seq == c->seq + 1 && memcmp(next->prev, c->hash, REP_HASH_BYTES) == 0;
        if (!vouched)
            rc = rep__change_verify(c, office, author->pk);
        const uint8_t *key = rep__trust_key(tr, c->epoch, REP_SUBKEY_CHANGE);
        if (rc == 0 && !relay) /* a relay stores them sealed, as they came */
            rc = key ? rep__change_open(c, office, key) : REP_EKEY;
    }
    free(order);
    return rc;
}

/* Start an import: the membership entries the bytes carry first (whoever sent them: they are
 * checked by their signatures), then what a revocation among them undoes here. Call
 * rep__applier_end() whatever it returns. */
static int
begin_import(rep__applier_t *a, rep__txn_t *t, rep_replica_t *r, const rep__bytes_t *entries,
             size_t n)
{
    int rc = rep__applier_begin(a, t, rep__wall_ms(r), r->max_drift_ms);
    uint64_t members = a->trust.count;
    if (rc == 0)
        rc = rep__trust_accept_all(&a->trust, t, entries, n);
    a->stats.members = a->trust.count - members;
    if (rc == 0 && a->trust.removals)
        rc = rep__apply_revocations(a);
    return rc;
}

static int
import_fn(rep__txn_t *t, void *arg)
{
    import_ctx_t *ic = arg;
    rep__applier_t a;
    int rc = begin_import(&a, t, ic->r, ic->b->entries, ic->b->nentries);
    if (rc == 0)
        report(ic->progress, REP_IMPORT_VERIFYING, 0, ic->n);
    if (rc == 0)
        rc = authenticate(&a.trust, a.office, ic->changes, ic->n);
    if (rc == 0)
        report(ic->progress, REP_IMPORT_VERIFYING, ic->n, ic->n);
    a.defer = true; /* the ops are written in key order by the flush, while the changes are open */
    for (size_t i = 0; i < ic->n && rc == 0; i++) {
        if (i % REPORT_EVERY == 0)
            report(ic->progress, REP_IMPORT_APPLYING, i, ic->n);
        if (ic->changes[i].cut)
            a.stats.revoked++;
        else
            rc = rep__apply_change(&a, &ic->changes[i]);
    }
    if (rc == 0)
        rc = rep__applier_flush(&a);
    if (rc == 0)
        report(ic->progress, REP_IMPORT_APPLYING, ic->n, ic->n);
    if (rc == 0)
        rc = rep__apply_pending(&a);
    if (rc == 0)
        rc = rep__txn_count(t, REP_DB_PENDING, &a.stats.pending);
    ic->stats = a.stats;
    /* a retry (the map grew) starts from sealed bodies again */
    for (size_t i = 0; i < ic->n; i++)
        rep__change_close(&ic->changes[i]);
    return rep__applier_end(&a, rc);
}

typedef struct snap_import_ctx {
    rep_replica_t *r;
    rep__snapshot_t *s;
    rep_import_stats_t stats;
    const progress_t *progress;
} snap_import_ctx_t;

/* The sender must be a member, its signature good, and the body open with the epoch's key. */
static int
snap_open(rep__trust_t *tr, const uint8_t office[REP_OFFICE_ID_BYTES], rep__snapshot_t *s)
{
    const rep__dev_t *sender = rep__trust_author(tr, s->sender, s->inc);
    if (!sender || rep__dev_is_relay(sender))
        return REP_EAUTH;
    REP_TRY(rep__sealed_verify(&s->env, office, sender->pk));
    if (s->owned)
        return 0; /* opened in an earlier try of this transaction */
    const uint8_t *key = rep__trust_key(tr, s->epoch, REP_SUBKEY_SNAPSHOT);
    return key ? rep__snapshot_open(s, key) : REP_EKEY;
}

static int
snap_import_fn(rep__txn_t *t, void *arg)
{
    snap_import_ctx_t *sc = arg;
    rep__applier_t a;
    int rc = begin_import(&a, t, sc->r, sc->s->members, sc->s->nmembers);
    if (rc == 0)
        report(sc->progress, REP_IMPORT_VERIFYING, 0, 1);
    if (rc == 0)
        rc = snap_open(&a.trust, a.office, sc->s);
    if (rc == 0)
        report(sc->progress, REP_IMPORT_VERIFYING, 1, 1);
    for (size_t i = 0; i < sc->s->nvv && rc == 0; i++) /* made before a revocation it knows */
        if (rep__trust_cap(&a.trust, sc->s->vv[i].actor, sc->s->vv[i].seq) < sc->s->vv[i].seq)
            rc = REP_ESTATE;
    if (rc == 0) {
        report(sc->progress, REP_IMPORT_APPLYING, 0, sc->s->n);
        rc = rep__snapshot_merge(&a, sc->s, sc->r->actor);
    }
    if (rc == 0)
        report(sc->progress, REP_IMPORT_APPLYING, sc->s->n, sc->s->n);
    if (rc == 0)
        rc = rep__txn_count(t, REP_DB_PENDING, &a.stats.pending);
    sc->stats = a.stats;
    return rep__applier_end(&a, rc);
}

static int
import_snapshot(rep_replica_t *r, const uint8_t *p, size_t len, rep_import_stats_t *stats,
                const progress_t *progress)
{
    rep__snapshot_t s;
    REP_TRY(rep__snapshot_decode(p, len, &s));
    snap_import_ctx_t sc = {r, &s, {0}, progress};
    /* the sealed body is opened in the transaction, once the membership it brings is taken */
    int rc = memcmp(s.office, r->office, sizeof s.office) != 0 ? REP_EOFFICE
                                                               : rep__store_write(r->st, snap_import_fn, &sc);
    rep__snapshot_clear(&s);
    if (rc == 0 && stats)
        *stats = sc.stats;
    return rc == 0 && sc.stats.forks ? REP_EFORK : rc;
}

static int
import_any(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats,
           const progress_t *progress)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (rep__snapshot_is(batch, len))
        return import_snapshot(r, batch, len, stats, progress);
    rep__batch_t b;
    REP_TRY(rep__batch_decode(batch, len, &b));
    import_ctx_t ic = {r, &b, NULL, 0, {0}, progress};
    int rc = 0;
    if (memcmp(b.office, r->office, sizeof b.office) != 0)
        rc = REP_EOFFICE;
    else if (b.n && !(ic.changes = calloc(b.n, sizeof *ic.changes)))
        rc = -ENOMEM;
    /* check the framing of everything before touching the store */
    for (size_t i = 0; i < b.n && rc == 0; i++, ic.n++)
        rc = rep__change_decode(b.changes[i].p, b.changes[i].n, &ic.changes[i]);
    if (rc == 0 && (ic.n || b.nentries))
        rc = rep__store_write(r->st, import_fn, &ic);
    else if (rc == 0) /* nothing to apply: only say what still waits */
        rc = rep__store_read(r->st, pending_fn, &ic.stats.pending);
    for (size_t i = 0; i < ic.n; i++)
        rep__change_clear(&ic.changes[i]);
    free(ic.changes);
    if (rc == 0 && stats) {
        *stats = ic.stats;
        stats->changes = b.n;
    }
    rep__batch_clear(&b);
    return rc;
}

/* ---- Checking without applying ---- */
typedef struct verify_ctx {
    rep_replica_t *r;
    const uint8_t *p;
    size_t n;
    rep_import_stats_t st;
} verify_ctx_t;

static int
verify_snapshot(verify_ctx_t *vc, rep__trust_t *tr)
{
    rep__snapshot_t s;
    int rc = rep__snapshot_decode(vc->p, vc->n, &s);
    if (rc == 0 && memcmp(s.office, vc->r->office, sizeof s.office) != 0)
        rc = REP_EOFFICE;
    if (rc == 0)
        rc = rep__trust_accept_all(tr, NULL, s.members, s.nmembers);
    if (rc == 0)
        rc = snap_open(tr, vc->r->office, &s);
    vc->st.entries = s.n;
    rep__snapshot_clear(&s);
    return rc;
}

static int
verify_batch(verify_ctx_t *vc, rep__trust_t *tr)
{
    rep__batch_t b;
    REP_TRY(rep__batch_decode(vc->p, vc->n, &b));
    rep__change_t *cs = b.n ? calloc(b.n, sizeof *cs) : NULL;
    size_t n = 0;
    int rc = b.n && !cs ? -ENOMEM : 0;
    if (rc == 0 && memcmp(b.office, vc->r->office, sizeof b.office) != 0)
        rc = REP_EOFFICE;
    for (; n < b.n && rc == 0; n++)
        rc = rep__change_decode(b.changes[n].p, b.changes[n].n, &cs[n]);
    if (rc == 0)
        rc = rep__trust_accept_all(tr, NULL, b.entries, b.nentries);
    if (rc == 0)
        rc = authenticate(tr, vc->r->office, cs, n);
    vc->st.changes = b.n;
    for (size_t i = 0; i < n; i++)
        rep__change_clear(&cs[i]);
    free(cs);
    rep__batch_clear(&b);
    return rc;
}

static int
verify_fn(rep__txn_t *t, void *arg)
{
    verify_ctx_t *vc = arg;
    rep__trust_t tr;
    REP_TRY(rep__trust_load(t, vc->r->office, &tr));
    uint64_t members = tr.count;
    int rc = rep__snapshot_is(vc->p, vc->n) ? verify_snapshot(vc, &tr) : verify_batch(vc, &tr);
    vc->st.members = tr.count - members;
    rep__trust_clear(&tr);
    return rc;
}

int
rep_replica_verify(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!r || (!batch && len))
        return -EINVAL;
    verify_ctx_t vc = {r, batch, len, {0}};
    int rc = rep__store_read(r->st, verify_fn, &vc);
    if (rc == 0 && stats)
        *stats = vc.st;
    return rc;
}

static int
refused_fn(rep__txn_t *t, void *arg)
{
    (void)arg;
    uint64_t n = 0;
    int rc = rep__meta_get_u64(t, REP_META_REFUSED, &n);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    return rep__meta_put_u64(t, REP_META_REFUSED, n + 1);
}

/* Count an import refused as hostile or damaged input (rep_info_t.refused). */
static int
count_refused(rep_replica_t *r, int rc)
{
    if (rc == REP_EAUTH || rc == REP_ECORRUPT || rc == REP_EOFFICE || rc == REP_EKEY ||
        rc == REP_EVERSION)
        (void)rep__store_write(r->st, refused_fn, NULL); /* best effort: rc is what matters */
    return rc;
}

static int
import_counted(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats,
               const progress_t *progress)
{
    if (!r) {
        if (stats)
            memset(stats, 0, sizeof *stats);
        return -EINVAL;
    }
    return count_refused(r, import_any(r, batch, len, stats, progress));
}

int
rep__replica_import(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats)
{
    return import_counted(r, batch, len, stats, NULL);
}

int
rep_replica_import(rep_replica_t *r, const uint8_t *batch, size_t len, rep_import_stats_t *stats)
{
    return rep_replica_import_progress(r, batch, len, NULL, NULL, stats);
}

int
rep_replica_import_progress(rep_replica_t *r, const uint8_t *batch, size_t len,
                            rep_import_progress_fn fn, void *ctx, rep_import_stats_t *stats)
{
    rep_import_stats_t st;
    progress_t p = {fn, ctx};
    int rc = import_counted(r, batch, len, &st, &p);
    if (rc == 0 && (st.applied || st.entries || st.members))
        rep__node_poke(r); /* a node serving this directory passes it on at once */
    if (stats)
        *stats = st;
    return rc;
}

int
rep_batch_office(const uint8_t *batch, size_t len, uint8_t office_id[REP_OFFICE_ID_BYTES],
                 char **office_name)
{
    if (office_name)
        *office_name = NULL;
    if (!office_id)
        return -EINVAL;
    if (rep__snapshot_is(batch, len)) {
        rep__snapshot_t s;
        REP_TRY(rep__snapshot_decode(batch, len, &s));
        memcpy(office_id, s.office, REP_OFFICE_ID_BYTES);
        int rc = 0;
        if (office_name && !(*office_name = rep__strndup(s.office_name, s.office_namen)))
            rc = -ENOMEM;
        rep__snapshot_clear(&s);
        return rc;
    }
    rep__batch_t b;
    REP_TRY(rep__batch_decode(batch, len, &b));
    memcpy(office_id, b.office, REP_OFFICE_ID_BYTES);
    int rc = 0;
    if (office_name && !(*office_name = rep__strndup(b.office_name, b.office_namen)))
        rc = -ENOMEM;
    rep__batch_clear(&b);
    return rc;
}



/* For each actor a waiting change needs, the highest seq it needs. */
typedef struct missing_ctx {
    rep_replica_t *r;
    rep_vv_entry_t *v;
    size_t n, cap;
    rep__trust_t trust;
} missing_ctx_t;

static int
missing_need(rep__txn_t *t, missing_ctx_t *mc, uint64_t actor, uint64_t seq)
{
    uint64_t have;
    REP_TRY(rep__vv_get(t, actor, &have, NULL));
    if (seq <= have)
        return 0;
    size_t i = 0;
    while (i < mc->n && mc->v[i].actor < actor)
        i++;
    if (i < mc->n && mc->v[i].actor == actor) {
        if (mc->v[i].seq < seq)
            mc->v[i].seq = seq;
        return 0;
    }
    if (mc->n == mc->cap) {
        size_t cap = mc->cap ? mc->cap * 2 : 8;
        rep_vv_entry_t *v = realloc(mc->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        mc->v = v;
        mc->cap = cap;
    }
    memmove(&mc->v[i + 1], &mc->v[i], (mc->n - i) * sizeof *mc->v);
    mc->v[i] = (rep_vv_entry_t){actor, seq};
    mc->n++;
    return 0;
}

static int
missing_fn(rep__txn_t *t, void *arg)
{
    missing_ctx_t *mc = arg;
    rep__cur_t *cur;
    rep__trust_clear(&mc->trust);
    REP_TRY(rep__trust_load(t, mc->r->office, &mc->trust));
    REP_TRY(rep__cur_open(t, REP_DB_PENDING, &cur));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(cur, &k, &v)) {
        rep__change_t c;
        if ((rc = rep__change_decode(v.p, v.n, &c)) < 0)
            break;
        rc = missing_need(t, mc, c.actor, c.seq - 1); /* its own predecessors */
        for (size_t i = 0; i < c.ndeps && rc == 0; i++)
            rc = missing_need(t, mc, c.deps[i].actor,
                              rep__trust_cap(&mc->trust, c.deps[i].actor, c.deps[i].seq));
        rep__change_clear(&c);
        if (rc < 0)
            break;
    }
    rep__cur_close(&cur);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

int
rep_replica_missing(rep_replica_t *r, rep_vv_entry_t **out, size_t *n)
{
    if (!out || !n)
        return -EINVAL;
    *out = NULL;
    *n = 0;
    if (!r)
        return -EINVAL;
    missing_ctx_t mc;
    memset(&mc, 0, sizeof mc);
    mc.r = r;
    int rc = rep__store_read(r->st, missing_fn, &mc);
    rep__trust_clear(&mc.trust);
    if (rc < 0) {
        free(mc.v);
        return rc;
    }
    *out = mc.v;
    *n = mc.n;
    return 0;
}
