/* snapshot.c — catch-up by state. See snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "common.h"
#include "crdt.h"
#include "hlc.h"
#include "seal.h"
#include "trust.h"

static const char snapshot_magic[4] = {'R', 'P', 'L', 'S'};

bool
rep__snapshot_is(const uint8_t *p, size_t n)
{
    return p && n >= 4 && memcmp(p, snapshot_magic, 4) == 0;
}

/* ---- Writing ---- */
static int
write_vv(rep__txn_t *t, msgpack_packer *pk)
{
    uint64_t count;
    REP_TRY(rep__txn_count(t, REP_DB_VV, &count));
    msgpack_pack_array(pk, (size_t)count);
    rep__cur_t *c;
    REP_TRY(rep__cur_open(t, REP_DB_VV, &c));
    rep__slice_t k, v;
    int rc;
    uint64_t i = 0;
    for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0 && i < count;
         rc = rep__cur_next(c, &k, &v), i++) {
        if (k.n != 8 || v.n != 8 + REP_HASH_BYTES) {
            rc = REP_ECORRUPT;
            break;
        }
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, rep__get_be64(k.p));
        msgpack_pack_uint64(pk, rep__get_be64(v.p));
        msgpack_pack_bin(pk, REP_HASH_BYTES);
        msgpack_pack_bin_body(pk, v.p + 8, REP_HASH_BYTES);
    }
    rep__cur_close(&c);
    if (rc == REP_ENOTFOUND)
        rc = 0;
    return rc == 0 && i != count ? REP_ECORRUPT : rc;
}

static int
write_entries(rep__txn_t *t, msgpack_packer *pk)
{
    uint64_t count;
    REP_TRY(rep__txn_count(t, REP_DB_STATE, &count));
    msgpack_pack_array(pk, (size_t)(2 * count));
    rep__cur_t *c;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &c));
    rep__slice_t k, v;
    int rc;
    uint64_t i = 0;
    for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0 && i < count;
         rc = rep__cur_next(c, &k, &v), i++) {
        msgpack_pack_bin(pk, k.n);
        msgpack_pack_bin_body(pk, k.p, k.n);
        msgpack_pack_bin(pk, v.n);
        msgpack_pack_bin_body(pk, v.p, v.n);
    }
    rep__cur_close(&c);
    if (rc == REP_ENOTFOUND)
        rc = 0;
    return rc == 0 && i != count ? REP_ECORRUPT : rc;
}

int
rep__snapshot_write(rep__txn_t *t, const uint8_t office[REP_OFFICE_ID_BYTES],
                    const char *office_name, uint64_t sender, uint32_t inc, uint8_t **out,
                    size_t *len)
{
    *out = NULL;
    *len = 0;
    rep__trust_t tr;
    REP_TRY(rep__trust_load(t, office, &tr));
    const uint8_t *key = rep__trust_key(&tr, tr.epoch, REP_SUBKEY_SNAPSHOT);
    uint8_t sk[REP_SIGN_SK_BYTES];
    int rc = key ? rep__meta_get_fixed(t, REP_META_SIGN_SK, sk, sizeof sk) : REP_EKEY;
    rep__buf_t body, b;
    rep__buf_init(&body);
    rep__buf_init(&b);
    msgpack_packer pk;
    /* the sealed body: [clock, vv with heads, entries] */
    uint64_t hlc = 0, seen = 0; /* the clock it sends: the highest of its own and all it holds */
    if (rc == 0 && (rc = rep__meta_get_u64(t, REP_META_HLC, &hlc)) == REP_ENOTFOUND)
        rc = 0;
    if (rc == 0 && (rc = rep__meta_get_u64(t, REP_META_SEEN, &seen)) == REP_ENOTFOUND)
        rc = 0;
    if (seen > hlc)
        hlc = seen;
    rep__packer_init(&pk, &body);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, hlc);
    if (rc == 0)
        rc = write_vv(t, &pk);
    if (rc == 0)
        rc = write_entries(t, &pk);
    /* the frame: [office, name, sender, inc, epoch, membership, nonce, sealed, sig] */
    rep__frame_begin(&b, snapshot_magic);
    size_t start = b.len;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
    msgpack_pack_bin_body(&pk, office, REP_OFFICE_ID_BYTES);
    size_t namen = strlen(office_name);
    msgpack_pack_str(&pk, namen);
    msgpack_pack_str_body(&pk, office_name, namen);
    msgpack_pack_uint64(&pk, sender);
    msgpack_pack_uint32(&pk, inc);
    msgpack_pack_uint32(&pk, tr.epoch);
    if (rc == 0)
        rc = rep__trust_pack_entries(t, 0, tr.count, &b);
    if (rc == 0 && (rc = body.err) == 0)
        rc = rep__seal_append(&b, start, office, body.p, body.len, key, sk);
    rep__wipe(sk, sizeof sk);
    if (body.p)
        rep__wipe(body.p, body.len);
    rep__buf_free(&body);
    rep__trust_clear(&tr);
    if (rc < 0) {
        rep__buf_free(&b);
        return rc;
    }
    return rep__frame_end(&b, false, out, len);
}

/* ---- Reading ---- */
static int
read_vv(rep__rd_t *r, rep__snapshot_t *s)
{
    uint32_t n;
    REP_TRY(rep__rd_array(r, &n));
    if (n == 0)
        return 0;
    if (!(s->vv = calloc(n, sizeof *s->vv)) || !(s->heads = calloc(n, sizeof *s->heads)))
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t three;
        REP_TRY(rep__rd_array(r, &three));
        if (three != 3)
            return REP_ECORRUPT;
        REP_TRY(rep__rd_uint(r, &s->vv[i].actor));
        REP_TRY(rep__rd_uint(r, &s->vv[i].seq));
        REP_TRY(rep__rd_fixed(r, s->heads[i], REP_HASH_BYTES));
        if (s->vv[i].actor == 0 || s->vv[i].seq == 0 ||
            (i > 0 && s->vv[i].actor <= s->vv[i - 1].actor))
            return REP_ECORRUPT;
        s->nvv++;
    }
    return 0;
}

/* LMDB's default order: bytes, then the shorter first. */
static int
key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int
read_entries(rep__rd_t *r, rep__snapshot_t *s)
{
    uint32_t n;
    REP_TRY(rep__rd_array(r, &n));
    if (n % 2)
        return REP_ECORRUPT;
    n /= 2;
    if (n == 0)
        return 0;
    if (!(s->keys = calloc(n, sizeof *s->keys)) || !(s->vals = calloc(n, sizeof *s->vals)))
        return -ENOMEM;
    rep__vv_t vv = {s->vv, s->nvv};
    rep__sibs_t scratch = {NULL, 0, 0};
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const uint8_t *k, *v;
        uint32_t kn, vn;
        if ((rc = rep__rd_bin(r, &k, &kn)) < 0 || (rc = rep__rd_bin(r, &v, &vn)) < 0)
            break;
        if (kn > REP_STATE_KEY_MAX ||
            (i > 0 && key_cmp(s->keys[i - 1].p, s->keys[i - 1].n, k, kn) >= 0)) {
            rc = REP_ECORRUPT;
            break;
        }
        if ((rc = rep__state_check(k, kn, v, vn, &vv, &scratch, &s->max_hlc)) < 0)
            break;
        s->keys[i] = (rep__slice_t){k, kn};
        s->vals[i] = (rep__slice_t){v, vn};
        s->n++;
    }
    rep__sibs_free(&scratch);
    return rc;
}

int
rep__snapshot_decode(const uint8_t *p, size_t n, rep__snapshot_t *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *body;
    size_t bodyn;
    uint8_t *owned; /* stays NULL: the frame is not compressed (its sealed body may be) */
    REP_TRY(rep__frame_open(p, n, snapshot_magic, 0, &body, &bodyn, &owned));
    rep__rd_t r;
    rep__rd_init(&r, body, bodyn);
    uint32_t nine;
    uint64_t inc = 0, epoch = 0;
    int rc = rep__rd_array(&r, &nine);
    if (rc == 0 && nine != 9)
        rc = REP_ECORRUPT;
    if (rc == 0)
        rc = rep__rd_fixed(&r, out->office, REP_OFFICE_ID_BYTES);
    if (rc == 0)
        rc = rep__rd_name(&r, &out->office_name, &out->office_namen, REP_MAX_USER, false);
    if (rc == 0)
        rc = rep__rd_uint(&r, &out->sender);
    if (rc == 0 && (rc = rep__rd_uint(&r, &inc)) == 0 && inc > UINT32_MAX)
        rc = REP_ECORRUPT;
    if (rc == 0 && (rc = rep__rd_uint(&r, &epoch)) == 0 && (epoch == 0 || epoch > UINT32_MAX))
        rc = REP_ECORRUPT;
    out->inc = (uint32_t)inc;
    out->epoch = (uint32_t)epoch;
    if (rc == 0)
        rc = rep__rd_bins(&r, &out->members, &out->nmembers);
    if (rc == 0)
        rc = rep__rd_sealed(&r, body, &out->env);
    if (rc == 0 && rep__rd_left(&r) != 0)
        rc = REP_ECORRUPT;
    if (rc < 0)
        rep__snapshot_clear(out);
    return rc;
}

int
rep__snapshot_open(rep__snapshot_t *s, const uint8_t key[REP_KEY_BYTES])
{
    REP_TRY(rep__sealed_open(&s->env, s->office, key, &s->owned, &s->ownedn));
    rep__rd_t r;
    rep__rd_init(&r, s->owned, s->ownedn);
    uint32_t three;
    int rc = rep__rd_array(&r, &three);
    if (rc == 0 && three != 3)
        rc = REP_ECORRUPT;
    if (rc == 0)
        rc = rep__rd_uint(&r, &s->max_hlc); /* the sender's clock: above all it has seen */
    if (rc == 0)
        rc = read_vv(&r, s);
    if (rc == 0)
        rc = read_entries(&r, s);
    if (rc == 0 && rep__rd_left(&r) != 0)
        rc = REP_ECORRUPT;
    return rc;
}

void
rep__snapshot_clear(rep__snapshot_t *s)
{
    if (s->owned)
        rep__wipe(s->owned, s->ownedn);
    free(s->owned);
    free(s->members);
    free(s->vv);
    free(s->heads);
    free(s->keys);
    free(s->vals);
    memset(s, 0, sizeof *s);
}

/* ---- Merging ---- */

/* Where both sides know a change of an actor (at the lower of the two seqs), its hash must be
 * the same; and nobody knows our own changes better than we do. Notes every fork. */
static int
check_chains(rep__applier_t *a, const rep__snapshot_t *s, const rep__vv_t *ours, uint64_t self)
{
    for (size_t i = 0; i < s->nvv; i++) {
        uint64_t actor = s->vv[i].actor, theirs = s->vv[i].seq, mine = rep__vv_seq(ours, actor);
        uint8_t hash[REP_HASH_BYTES];
        bool known = false;
        if (actor == self) /* our own chain, which may be ahead of our vv (apply.h, rep__own_get) */
            REP_TRY(rep__own_get(a->t, &mine, hash));
        if (mine == theirs) {
            if (actor != self)
                REP_TRY(rep__vv_get(a->t, actor, &mine, hash));
            known = true;
        } else if (mine > theirs) {
            uint8_t k[16];
            rep__slice_t bytes;
            rep__put_be64(k, actor);
            rep__put_be64(k + 8, theirs);
            int rc = rep__txn_get(a->t, REP_DB_LOG, k, sizeof k, &bytes);
            if (rc == REP_ENOTFOUND && actor == self) /* waiting since a rebuild */
                rc = rep__txn_get(a->t, REP_DB_PENDING, k, sizeof k, &bytes);
            if (rc < 0 && rc != REP_ENOTFOUND)
                return rc;
            if ((known = rc == 0))
                rep__hash(hash, bytes.p, bytes.n);
        }
        if ((known && memcmp(hash, s->heads[i], REP_HASH_BYTES) != 0) ||
            (actor == self && theirs > mine))
            REP_TRY(rep__apply_fork(a, actor, theirs));
    }
    return 0;
}

/* The writes a merge makes, gathered while reading (a write would move the cursor) and made
 * after: keys and values are copied into one buffer, so they are offsets into it. */
typedef struct edit {
    size_t k, kn, v, vn; /* vn 0: delete the key */
} edit_t;

typedef struct edits {
    edit_t *e;
    size_t n, cap;
    rep__buf_t bytes;
} edits_t;

static int
edit_add(edits_t *ed, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    if (ed->n == ed->cap) {
        size_t cap = ed->cap ? ed->cap * 2 : 64;
        edit_t *e = realloc(ed->e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        ed->e = e;
        ed->cap = cap;
    }
    edit_t *x = &ed->e[ed->n++];
    x->k = ed->bytes.len;
    x->kn = kn;
    rep__buf_add(&ed->bytes, k, kn);
    x->v = ed->bytes.len;
    x->vn = vn;
    rep__buf_add(&ed->bytes, v, vn);
    return ed->bytes.err;
}

typedef struct merger {
    const rep__vv_t *ours, *theirs;
    rep__sibs_t sa, sb;
    rep__buf_t out;
    edits_t ed;
} merger_t;

/* Merge one key (either side may be absent) and record the write it needs, if any. */
static int
merge_key(merger_t *m, const rep__slice_t *k, const rep__slice_t *mine, const rep__slice_t *theirs)
{
    const uint8_t *a = mine ? mine->p : NULL, *b = theirs ? theirs->p : NULL;
    size_t an = mine ? mine->n : 0, bn = theirs ? theirs->n : 0;
    rep__skey_t sk;
    REP_TRY(rep__skey_parse(k->p, k->n, &sk));
    REP_TRY(rep__state_merge(sk.kind, a, an, m->ours, b, bn, m->theirs, &m->sa, &m->sb, &m->out));
    if (m->out.len == an && (an == 0 || memcmp(m->out.p, a, an) == 0))
        return 0; /* unchanged */
    return edit_add(&m->ed, k->p, k->n, m->out.p, m->out.len);
}

/* Walk our state and the snapshot's entries together, in key order. */
static int
merge_all(rep__txn_t *t, merger_t *m, const rep__snapshot_t *s)
{
    rep__cur_t *c;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &c));
    rep__slice_t k, v;
    int have = rep__cur_seek(c, NULL, 0, &k, &v), rc = 0;
    size_t i = 0;
    while (rc == 0 && (have == 0 || i < s->n)) {
        int cmp = have != 0 ? 1 : i == s->n ? -1
                                : key_cmp(k.p, k.n, s->keys[i].p, s->keys[i].n);
        if (cmp < 0)
            rc = merge_key(m, &k, &v, NULL);
        else if (cmp > 0)
            rc = merge_key(m, &s->keys[i], NULL, &s->vals[i]);
        else
            rc = merge_key(m, &k, &v, &s->vals[i]);
        if (rc == 0 && cmp >= 0)
            i++;
        if (rc == 0 && cmp <= 0)
            have = rep__cur_next(c, &k, &v);
    }
    rep__cur_close(&c);
    if (rc == 0 && have != 0 && have != REP_ENOTFOUND)
        rc = have;
    return rc;
}

static int
apply_edits(rep__txn_t *t, const edits_t *ed)
{
    for (size_t i = 0; i < ed->n; i++) {
        const edit_t *e = &ed->e[i];
        const uint8_t *k = ed->bytes.p + e->k;
        if (e->vn)
            REP_TRY(rep__txn_put(t, REP_DB_STATE, k, e->kn, ed->bytes.p + e->v, e->vn));
        else
            REP_TRY(rep__txn_del(t, REP_DB_STATE, k, e->kn, NULL, 0));
    }
    return 0;
}

/* Where s is ahead of us: its seq and head in our vv, and the log's gap in base. */
static int
advance_vv(rep__txn_t *t, const rep__snapshot_t *s, const rep__vv_t *ours)
{
    for (size_t i = 0; i < s->nvv; i++) {
        if (s->vv[i].seq <= rep__vv_seq(ours, s->vv[i].actor))
            continue;
        uint8_t k[8], v[8 + REP_HASH_BYTES];
        rep__put_be64(k, s->vv[i].actor);
        rep__put_be64(v, s->vv[i].seq);
        memcpy(v + 8, s->heads[i], REP_HASH_BYTES);
        REP_TRY(rep__txn_put(t, REP_DB_VV, k, sizeof k, v, sizeof v));
        REP_TRY(rep__txn_put(t, REP_DB_BASE, k, sizeof k, v, 8));
    }
    return 0;
}

int
rep__snapshot_merge(rep__applier_t *a, const rep__snapshot_t *s, uint64_t self)
{
    rep_vv_entry_t *mine;
    size_t nmine;
    REP_TRY(rep__vv_all(a->t, &mine, &nmine));
    rep__vv_t ours = {mine, nmine}, theirs = {s->vv, s->nvv};
    uint64_t forks = a->stats.forks, count;
    int rc = check_chains(a, s, &ours, self);
    if (rc < 0 || a->stats.forks != forks) {
        free(mine);
        return rc;
    }
    if ((rc = rep__txn_count(a->t, REP_DB_STATE, &count)) == 0 && count == 0 && nmine == 0) {
        /* nothing here, nothing seen: the snapshot's entries, in key order, are the state */
        for (size_t i = 0; i < s->n && rc == 0; i++)
            rc = rep__txn_append(a->t, REP_DB_STATE, s->keys[i].p, s->keys[i].n, s->vals[i].p,
                                 s->vals[i].n);
    } else if (rc == 0) {
        merger_t m;
        memset(&m, 0, sizeof m);
        m.ours = &ours;
        m.theirs = &theirs;
        rep__buf_init(&m.out);
        rep__buf_init(&m.ed.bytes);
        rc = merge_all(a->t, &m, s);
        if (rc == 0)
            rc = apply_edits(a->t, &m.ed);
        rep__sibs_free(&m.sa);
        rep__sibs_free(&m.sb);
        rep__buf_free(&m.out);
        rep__buf_free(&m.ed.bytes);
        free(m.ed.e);
    }
    if (rc == 0)
        rc = advance_vv(a->t, s, &ours);
    free(mine);
    REP_TRY(rc);
    bool skewed;
    a->hlc = rep__hlc_observe(a->hlc, s->max_hlc, a->wall_ms, a->max_drift_ms, &skewed);
    if (s->max_hlc > a->seen)
        a->seen = s->max_hlc;
    a->stats.entries += s->n;
    return rep__apply_pending(a);
}
