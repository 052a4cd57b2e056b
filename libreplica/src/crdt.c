/* crdt.c — register merge rules and state layout. See crdt.h. */
#include "crdt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- Names and keys ---- */
int
rep__name_check(const char *s, size_t n, size_t max, bool allow_empty)
{
    if (n == 0)
        return allow_empty ? 0 : -EINVAL;
    if (n > max)
        return REP_ETOOBIG;
    if (memchr(s, '\0', n) || !rep__utf8_valid(s, n))
        return -EINVAL;
    return 0;
}

int
rep__key_split(const char *key, rep__skey_t *out)
{
    memset(out, 0, sizeof *out);
    if (!key)
        return -EINVAL;
    const char *slash = strchr(key, '/');
    if (!slash)
        return -EINVAL;
    out->coll = key;
    out->colln = (size_t)(slash - key);
    out->rec = slash + 1;
    out->recn = strlen(out->rec);
    out->kind = REP_KIND_REGISTER;
    REP_TRY(rep__name_check(out->coll, out->colln, REP_MAX_COLLECTION, false));
    return rep__name_check(out->rec, out->recn, REP_MAX_RECORD, false);
}

size_t
rep__skey_make(uint8_t *out, const rep__skey_t *k, bool with_field)
{
    uint8_t *p = out;
    memcpy(p, k->coll, k->colln);
    p += k->colln;
    *p++ = 0;
    memcpy(p, k->rec, k->recn);
    p += k->recn;
    *p++ = 0;
    if (with_field) {
        memcpy(p, k->field, k->fieldn);
        p += k->fieldn;
        *p++ = 0;
        *p++ = k->kind;
        if (k->id) {
            memcpy(p, k->id, REP_LOG_ID_BYTES);
            p += REP_LOG_ID_BYTES;
        }
    }
    return (size_t)(p - out);
}

void
rep__log_id(uint8_t out[REP_LOG_ID_BYTES], uint64_t hlc, uint64_t actor, uint64_t seq,
            uint32_t pos)
{
    rep__put_be64(out, hlc);
    rep__put_be64(out + 8, actor);
    rep__put_be64(out + 16, seq);
    rep__put_be32(out + 24, pos);
}

int
rep__skey_parse(const uint8_t *p, size_t n, rep__skey_t *out)
{
    const uint8_t *end = p + n, *z1, *z2, *z3;
    if (!(z1 = memchr(p, 0, n)) || !(z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1))) ||
        !(z3 = memchr(z2 + 1, 0, (size_t)(end - z2 - 1))) || z3 + 2 > end)
        return REP_ECORRUPT;
    size_t idn = (size_t)(end - (z3 + 2));
    if (idn != (z3[1] == REP_KIND_LOG ? REP_LOG_ID_BYTES : 0))
        return REP_ECORRUPT;
    out->id = idn ? z3 + 2 : NULL;
    out->coll = (const char *)p;
    out->colln = (size_t)(z1 - p);
    out->rec = (const char *)z1 + 1;
    out->recn = (size_t)(z2 - z1 - 1);
    out->field = (const char *)z2 + 1;
    out->fieldn = (size_t)(z3 - z2 - 1);
    out->kind = z3[1];
    return 0;
}

/* ---- Sibling lists ---- */
static int
dot_cmp(const rep__sib_t *a, uint64_t actor, uint64_t seq)
{
    if (a->actor != actor)
        return a->actor < actor ? -1 : 1;
    if (a->seq != seq)
        return a->seq < seq ? -1 : 1;
    return 0;
}

void
rep__sibs_free(rep__sibs_t *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int
sibs_reserve(rep__sibs_t *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    if (n > REP_MAX_SIBLINGS)
        return REP_ETOOBIG;
    size_t cap = s->cap ? s->cap * 2 : 4;
    while (cap < n)
        cap *= 2;
    rep__sib_t *v = realloc(s->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->v = v;
    s->cap = cap;
    return 0;
}

int
rep__sibs_decode(rep__sibs_t *s, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    s->n = 0;
    if (n < 2)
        return REP_ECORRUPT;
    size_t count = (size_t)p[0] << 8 | p[1];
    p += 2;
    /* every sibling takes at least 30 bytes: check before allocating for the count */
    if (count > REP_MAX_SIBLINGS || count > (size_t)(end - p) / 30)
        return REP_ECORRUPT;
    REP_TRY(sibs_reserve(s, count));
    for (size_t i = 0; i < count; i++) {
        rep__sib_t *x = &s->v[i];
        if (end - p < 26)
            return REP_ECORRUPT;
        x->actor = rep__get_be64(p);
        x->seq = rep__get_be64(p + 8);
        x->hlc = rep__get_be64(p + 16);
        if (p[24] > 1)
            return REP_ECORRUPT;
        x->deleted = p[24];
        x->usern = p[25];
        p += 26;
        if ((size_t)(end - p) < x->usern + 4u)
            return REP_ECORRUPT;
        x->user = (const char *)p;
        p += x->usern;
        x->valn = rep__get_be32(p);
        p += 4;
        if ((size_t)(end - p) < x->valn)
            return REP_ECORRUPT;
        x->val = p;
        p += x->valn;
        /* canonical: strictly increasing dots */
        if (i > 0 && dot_cmp(&s->v[i - 1], x->actor, x->seq) >= 0)
            return REP_ECORRUPT;
    }
    if (p != end)
        return REP_ECORRUPT;
    s->n = count;
    return 0;
}

/* A sibling's stored form: its size, and writing it at p (returns the end). */
static size_t
sib_size(const rep__sib_t *x)
{
    return 26 + x->usern + 4 + x->valn;
}

static uint8_t *
sib_put(uint8_t *p, const rep__sib_t *x)
{
    rep__put_be64(p, x->actor);
    rep__put_be64(p + 8, x->seq);
    rep__put_be64(p + 16, x->hlc);
    p[24] = x->deleted ? 1 : 0;
    p[25] = x->usern;
    p += 26;
    if (x->usern)
        memcpy(p, x->user, x->usern);
    p += x->usern;
    rep__put_be32(p, x->valn);
    p += 4;
    if (x->valn)
        memcpy(p, x->val, x->valn);
    return p + x->valn;
}

/* Append one sibling's stored form (errors are sticky in b). */
static void
sib_encode(rep__buf_t *b, const rep__sib_t *x)
{
    size_t n = sib_size(x);
    if (rep__buf_reserve(b, n) < 0)
        return;
    sib_put(b->p + b->len, x);
    b->len += n;
}

void
rep__sibs_encode(rep__buf_t *b, const rep__sibs_t *s)
{
    size_t n = 2;
    for (size_t i = 0; i < s->n; i++)
        n += sib_size(&s->v[i]);
    if (rep__buf_reserve(b, n) < 0)
        return;
    uint8_t *p = b->p + b->len;
    p[0] = (uint8_t)(s->n >> 8);
    p[1] = (uint8_t)s->n;
    p += 2;
    for (size_t i = 0; i < s->n; i++)
        p = sib_put(p, &s->v[i]);
    b->len += n;
}

/* ---- Merge ---- */
bool
rep__ctx_covers(const rep__ctx_t *c, uint64_t actor, uint64_t seq)
{
    if (actor == c->actor)
        return seq < c->seq;
    size_t lo = 0, hi = c->ndeps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->deps[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->ndeps && c->deps[lo].actor == actor && c->deps[lo].seq >= seq;
}

int
rep__reg_apply(rep__sibs_t *s, const rep__ctx_t *ctx, const rep__sib_t *add)
{
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rep__sib_t *x = &s->v[i];
        if (rep__ctx_covers(ctx, x->actor, x->seq))
            continue;
        if (add && dot_cmp(x, add->actor, add->seq) == 0)
            continue; /* the same change writing the field again replaces its own sibling */
        s->v[w++] = *x;
    }
    s->n = w;
    if (!add)
        return 0;
    REP_TRY(sibs_reserve(s, s->n + 1));
    size_t at = 0;
    while (at < s->n && dot_cmp(&s->v[at], add->actor, add->seq) < 0)
        at++;
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof *s->v);
    s->v[at] = *add;
    s->n++;
    return 0;
}

int
rep__reg_winner(const rep__sibs_t *s)
{
    int best = -1;
    for (size_t i = 0; i < s->n; i++) {
        const rep__sib_t *x = &s->v[i];
        if (x->deleted)
            continue;
        if (best < 0 || x->hlc > s->v[best].hlc ||
            (x->hlc == s->v[best].hlc && x->actor > s->v[best].actor))
            best = (int)i;
    }
    return best;
}

/* ---- Counters ---- */
/* Check stored counter totals: count(2) then strictly increasing actors. */
static int
ctr_check(const uint8_t *p, size_t n, size_t *count)
{
    if (n < 2 || (n - 2) % 16 != 0 || (*count = (size_t)p[0] << 8 | p[1]) != (n - 2) / 16)
        return REP_ECORRUPT;
    for (size_t i = 1; i < *count; i++)
        if (rep__get_be64(p + 2 + 16 * i) <= rep__get_be64(p + 2 + 16 * (i - 1)))
            return REP_ECORRUPT;
    return 0;
}

int
rep__ctr_add(const uint8_t *p, size_t n, uint64_t actor, int64_t delta, rep__buf_t *out)
{
    static const uint8_t none[2] = {0, 0};
    size_t count = 0;
    if (n == 0) {
        p = none;
        n = sizeof none;
    }
    REP_TRY(ctr_check(p, n, &count));
    const uint8_t *e = p + 2;
    size_t at = 0;
    while (at < count && rep__get_be64(e + 16 * at) < actor)
        at++;
    bool found = at < count && rep__get_be64(e + 16 * at) == actor;
    size_t total = count + !found;
    if (total > 0xffff)
        return REP_ETOOBIG;
    uint8_t hdr[2] = {(uint8_t)(total >> 8), (uint8_t)total}, ent[16];
    rep__buf_add(out, hdr, 2);
    rep__buf_add(out, e, 16 * at);
    uint64_t sum = found ? rep__get_be64(e + 16 * at + 8) : 0;
    rep__put_be64(ent, actor);
    rep__put_be64(ent + 8, sum + (uint64_t)delta);
    rep__buf_add(out, ent, 16);
    size_t rest = at + found;
    rep__buf_add(out, e + 16 * rest, 16 * (count - rest));
    return out->err;
}

int
rep__ctr_sum(const uint8_t *p, size_t n, int64_t *sum)
{
    size_t count;
    REP_TRY(ctr_check(p, n, &count));
    uint64_t s = 0;
    for (size_t i = 0; i < count; i++)
        s += rep__get_be64(p + 2 + 16 * i + 8);
    *sum = (int64_t)s;
    return 0;
}

/* ---- Sets ---- */
static int
elem_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* One stored element. */
typedef struct set_elem {
    const uint8_t *raw;      /* the element's whole stored form, rawn bytes */
    size_t rawn;
    const uint8_t *val;
    uint32_t valn;
    uint16_t ndots;
    const uint8_t *dots;
} set_elem_t;

/* A reader over a stored set that checks its canonical form as it goes. */
typedef struct set_rd {
    const uint8_t *p, *end;
    uint32_t left;
    const uint8_t *prev;     /* the previous element's value: elements strictly increase */
    size_t prevn;
} set_rd_t;

/* Start reading [p, p+n); n 0 is the empty set (never stored, but a new field starts so). */
static int
set_rd_open(set_rd_t *r, const uint8_t *p, size_t n)
{
    memset(r, 0, sizeof *r);
    if (n == 0)
        return 0;
    if (n < 4 || (r->left = rep__get_be32(p)) == 0)
        return REP_ECORRUPT; /* an empty set is not stored */
    r->p = p + 4;
    r->end = p + n;
    return 0;
}

/* The next element: 1 with *e, 0 at the end (after checking nothing trails), or an error. */
static int
set_rd_next(set_rd_t *r, set_elem_t *e)
{
    if (r->left == 0)
        return r->p == r->end ? 0 : REP_ECORRUPT;
    const uint8_t *p = r->p, *end = r->end;
    if (end - p < 4)
        return REP_ECORRUPT;
    e->raw = p;
    e->valn = rep__get_be32(p);
    p += 4;
    if ((size_t)(end - p) < (size_t)e->valn + 2)
        return REP_ECORRUPT;
    e->val = p;
    p += e->valn;
    e->ndots = (uint16_t)(p[0] << 8 | p[1]);
    p += 2;
    if ((size_t)(end - p) < 16u * e->ndots || e->ndots == 0)
        return REP_ECORRUPT;
    e->dots = p;
    for (size_t i = 1; i < e->ndots; i++) { /* strictly increasing dots */
        const uint8_t *a = p + 16 * (i - 1), *b = p + 16 * i;
        uint64_t aa = rep__get_be64(a), ba = rep__get_be64(b);
        if (aa > ba || (aa == ba && rep__get_be64(a + 8) >= rep__get_be64(b + 8)))
            return REP_ECORRUPT;
    }
    if (r->prev && elem_cmp(r->prev, r->prevn, e->val, e->valn) >= 0)
        return REP_ECORRUPT;
    r->prev = e->val;
    r->prevn = e->valn;
    r->p = p + 16u * e->ndots;
    e->rawn = (size_t)(r->p - e->raw);
    r->left--;
    return 1;
}

/* Write element e into out keeping the dots ctx does not cover, plus dot (in order); counts
 * the element in *count when anything is left. */
/* Start writing an element into out: its value, and room for its dot count. Returns where
 * the count goes; the dots follow, then elem_end(). */
static size_t
elem_begin(rep__buf_t *out, const uint8_t *val, size_t valn)
{
    uint8_t hdr[4];
    rep__put_be32(hdr, (uint32_t)valn);
    rep__buf_add(out, hdr, 4);
    rep__buf_add(out, val, valn);
    size_t ndots_at = out->len;
    rep__buf_add(out, hdr, 2); /* patched by elem_end */
    return ndots_at;
}

/* Finish the element begun at start with kept dots: an element without dots is taken back
 * out; one with dots is counted in *count. */
static int
elem_end(rep__buf_t *out, size_t start, size_t ndots_at, size_t kept, uint32_t *count)
{
    REP_TRY(out->err);
    if (kept == 0) {
        out->len = start;
        return 0;
    }
    if (kept > 0xffff)
        return REP_ETOOBIG;
    out->p[ndots_at] = (uint8_t)(kept >> 8);
    out->p[ndots_at + 1] = (uint8_t)kept;
    (*count)++;
    return 0;
}

static int
elem_write(rep__buf_t *out, const uint8_t *val, size_t valn, const uint8_t *dots, size_t ndots,
           const rep__ctx_t *ctx, const rep__dot_t *dot, uint32_t *count)
{
    size_t start = out->len, kept = 0, ndots_at = elem_begin(out, val, valn);
    uint8_t d[16];
    bool added = dot == NULL;
    for (size_t i = 0; i <= ndots; i++) {
        uint64_t actor = i < ndots ? rep__get_be64(dots + 16 * i) : UINT64_MAX;
        uint64_t seq = i < ndots ? rep__get_be64(dots + 16 * i + 8) : UINT64_MAX;
        if (!added && (dot->actor < actor || (dot->actor == actor && dot->seq <= seq))) {
            rep__put_be64(d, dot->actor);
            rep__put_be64(d + 8, dot->seq);
            rep__buf_add(out, d, 16);
            kept++;
            added = true;
            if (dot->actor == actor && dot->seq == seq)
                continue; /* the same add again */
        }
        if (i == ndots || rep__ctx_covers(ctx, actor, seq))
            continue;
        rep__buf_add(out, dots + 16 * i, 16);
        kept++;
    }
    return elem_end(out, start, ndots_at, kept, count);
}

int
rep__set_apply(const uint8_t *p, size_t n, const rep__ctx_t *ctx, const uint8_t *elem,
               size_t elemn, const rep__dot_t *dot, rep__buf_t *out)
{
    set_rd_t r;
    REP_TRY(set_rd_open(&r, p, n));
    uint32_t count = 0;
    out->len = 0;
    rep__buf_add(out, "\0\0\0\0", 4); /* count, patched below */
    bool done = elem == NULL; /* the element is written (or, for a clear, there is none) */
    set_elem_t e;
    int more;
    while ((more = set_rd_next(&r, &e)) > 0) {
        int c = done ? 1 : elem_cmp(elem, elemn, e.val, e.valn);
        if (c < 0) { /* the element is new: it goes before this one */
            done = true;
            if (dot)
                REP_TRY(elem_write(out, elem, elemn, NULL, 0, ctx, dot, &count));
        }
        if (c == 0 || elem == NULL) {
            done = true;
            REP_TRY(elem_write(out, e.val, e.valn, e.dots, e.ndots, ctx, c == 0 ? dot : NULL,
                               &count));
        } else {
            rep__buf_add(out, e.raw, e.rawn); /* untouched */
            count++;
        }
    }
    REP_TRY(more);
    if (!done && dot)
        REP_TRY(elem_write(out, elem, elemn, NULL, 0, ctx, dot, &count));
    REP_TRY(out->err);
    if (count == 0) {
        out->len = 0;
        return 0;
    }
    rep__put_be32(out->p, count);
    return 0;
}

int
rep__set_each(const uint8_t *p, size_t n, rep__set_fn fn, void *ctx)
{
    set_rd_t r;
    if (n == 0)
        return REP_ECORRUPT;
    REP_TRY(set_rd_open(&r, p, n));
    set_elem_t e;
    int more;
    while ((more = set_rd_next(&r, &e)) > 0) {
        const uint8_t *d = e.dots + 16u * (e.ndots - 1u);
        rep__dot_t last = {rep__get_be64(d), rep__get_be64(d + 8)};
        int rc = fn(ctx, e.val, e.valn, &last);
        if (rc)
            return rc;
    }
    return more;
}

/* ---- Catch-up by state ---- */
uint64_t
rep__vv_seq(const rep__vv_t *vv, uint64_t actor)
{
    size_t lo = 0, hi = vv->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vv->v[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < vv->n && vv->v[lo].actor == actor ? vv->v[lo].seq : 0;
}

static bool
vv_covers(const rep__vv_t *vv, uint64_t actor, uint64_t seq)
{
    return rep__vv_seq(vv, actor) >= seq;
}

/* A dot from a snapshot: real (no zero actor or seq) and covered by the snapshot's vv. */
static bool
dot_ok(const rep__vv_t *vv, uint64_t actor, uint64_t seq)
{
    return actor != 0 && seq != 0 && vv_covers(vv, actor, seq);
}

static bool
value_ok(const uint8_t *p, size_t n)
{
    rep_value_t v;
    return rep__value_decode(p, n, &v) == 0;
}

static int
check_register(const uint8_t *v, size_t vn, const rep__vv_t *vv, rep__sibs_t *s,
               uint64_t *max_hlc)
{
    REP_TRY(rep__sibs_decode(s, v, vn));
    if (s->n == 0)
        return REP_ECORRUPT; /* an empty register is not stored */
    for (size_t i = 0; i < s->n; i++) {
        const rep__sib_t *x = &s->v[i];
        if (!dot_ok(vv, x->actor, x->seq) || rep__name_check(x->user, x->usern, REP_MAX_USER, true) ||
            (x->deleted ? x->valn != 0 : !value_ok(x->val, x->valn)))
            return REP_ECORRUPT;
        if (x->hlc > *max_hlc)
            *max_hlc = x->hlc;
    }
    return 0;
}

static int
check_set(const uint8_t *v, size_t vn, const rep__vv_t *vv)
{
    set_rd_t r;
    if (vn == 0)
        return REP_ECORRUPT;
    REP_TRY(set_rd_open(&r, v, vn));
    set_elem_t e;
    int more;
    while ((more = set_rd_next(&r, &e)) > 0) {
        if (!value_ok(e.val, e.valn))
            return REP_ECORRUPT;
        for (size_t i = 0; i < e.ndots; i++)
            if (!dot_ok(vv, rep__get_be64(e.dots + 16 * i), rep__get_be64(e.dots + 16 * i + 8)))
                return REP_ECORRUPT;
    }
    return more;
}

static int
check_counter(const uint8_t *v, size_t vn, const rep__vv_t *vv)
{
    size_t count;
    REP_TRY(ctr_check(v, vn, &count));
    if (count == 0)
        return REP_ECORRUPT;
    for (size_t i = 0; i < count; i++)
        if (!dot_ok(vv, rep__get_be64(v + 2 + 16 * i), 1))
            return REP_ECORRUPT;
    return 0;
}

static int
check_log_entry(const rep__skey_t *k, const uint8_t *v, size_t vn, const rep__vv_t *vv,
                uint64_t *max_hlc)
{
    uint64_t hlc = rep__get_be64(k->id);
    if (!dot_ok(vv, rep__get_be64(k->id + 8), rep__get_be64(k->id + 16)) || vn < 1 ||
        vn - 1 < v[0] || rep__name_check((const char *)v + 1, v[0], REP_MAX_USER, true) ||
        !value_ok(v + 1 + v[0], vn - 1 - v[0]))
        return REP_ECORRUPT;
    if (hlc > *max_hlc)
        *max_hlc = hlc;
    return 0;
}

int
rep__state_check(const uint8_t *k, size_t kn, const uint8_t *v, size_t vn, const rep__vv_t *vv,
                 rep__sibs_t *scratch, uint64_t *max_hlc)
{
    rep__skey_t sk;
    REP_TRY(rep__skey_parse(k, kn, &sk));
    if (rep__name_check(sk.coll, sk.colln, REP_MAX_COLLECTION, false) ||
        memchr(sk.coll, '/', sk.colln) || rep__name_check(sk.rec, sk.recn, REP_MAX_RECORD, false) ||
        rep__name_check(sk.field, sk.fieldn, REP_MAX_FIELD, sk.kind == REP_KIND_REGISTER))
        return REP_ECORRUPT;
    switch (sk.kind) {
    case REP_KIND_REGISTER:
        return check_register(v, vn, vv, scratch, max_hlc);
    case REP_KIND_COUNTER:
        return check_counter(v, vn, vv);
    case REP_KIND_SET:
        return check_set(v, vn, vv);
    case REP_KIND_LOG:
        return check_log_entry(&sk, v, vn, vv, max_hlc);
    }
    return REP_ECORRUPT;
}

/* Does one side keep a dot the other side lacks? Only if the other side has not seen it. */
static bool
keep_one_sided(const rep__vv_t *other, uint64_t actor, uint64_t seq)
{
    return !vv_covers(other, actor, seq);
}

static int
merge_register(const uint8_t *a, size_t an, const rep__vv_t *va, const uint8_t *b, size_t bn,
               const rep__vv_t *vb, rep__sibs_t *sa, rep__sibs_t *sb, rep__buf_t *out)
{
    sa->n = sb->n = 0;
    if (an)
        REP_TRY(rep__sibs_decode(sa, a, an));
    if (bn)
        REP_TRY(rep__sibs_decode(sb, b, bn));
    /* both lists are in dot order: merge them, writing each kept sibling */
    size_t kept = 0;
    rep__buf_add(out, "\0\0", 2); /* count, patched below */
    for (size_t i = 0, j = 0; i < sa->n || j < sb->n;) {
        int c = i == sa->n ? 1 : j == sb->n ? -1 : dot_cmp(&sa->v[i], sb->v[j].actor, sb->v[j].seq);
        const rep__sib_t *x;
        if (c == 0) {
            x = &sa->v[i++];
            j++;
        } else if (c < 0) {
            x = &sa->v[i++];
            if (!keep_one_sided(vb, x->actor, x->seq))
                continue;
        } else {
            x = &sb->v[j++];
            if (!keep_one_sided(va, x->actor, x->seq))
                continue;
        }
        sib_encode(out, x);
        kept++;
    }
    REP_TRY(out->err);
    if (kept == 0) {
        out->len = 0;
        return 0;
    }
    out->p[0] = (uint8_t)(kept >> 8);
    out->p[1] = (uint8_t)kept;
    return 0;
}

/* Keep the dots of one element (from a side whose dots are filtered by the other vv, or
 * both sides' lists merged). */
static int
merge_elem(rep__buf_t *out, const set_elem_t *x, const rep__vv_t *vx, const set_elem_t *y,
           const rep__vv_t *vy, uint32_t *count)
{
    const set_elem_t *e = x ? x : y;
    size_t start = out->len, kept = 0, ndots_at = elem_begin(out, e->val, e->valn);
    size_t nx = x ? x->ndots : 0, ny = y ? y->ndots : 0;
    for (size_t i = 0, j = 0; i < nx || j < ny;) {
        const uint8_t *dx = i < nx ? x->dots + 16 * i : NULL, *dy = j < ny ? y->dots + 16 * j : NULL;
        int c = !dx ? 1 : !dy ? -1 : memcmp(dx, dy, 16); /* big-endian: memcmp is dot order */
        const uint8_t *d;
        if (c == 0) {
            d = dx;
            i++;
            j++;
        } else if (c < 0) {
            d = dx;
            i++;
            if (!keep_one_sided(vy, rep__get_be64(d), rep__get_be64(d + 8)))
                continue;
        } else {
            d = dy;
            j++;
            if (!keep_one_sided(vx, rep__get_be64(d), rep__get_be64(d + 8)))
                continue;
        }
        rep__buf_add(out, d, 16);
        kept++;
    }
    return elem_end(out, start, ndots_at, kept, count);
}

static int
merge_set(const uint8_t *a, size_t an, const rep__vv_t *va, const uint8_t *b, size_t bn,
          const rep__vv_t *vb, rep__buf_t *out)
{
    set_rd_t ra, rb;
    REP_TRY(set_rd_open(&ra, a, an));
    REP_TRY(set_rd_open(&rb, b, bn));
    uint32_t count = 0;
    rep__buf_add(out, "\0\0\0\0", 4); /* count, patched below */
    set_elem_t ea, eb;
    int ma, mb;
    REP_TRY(ma = set_rd_next(&ra, &ea));
    REP_TRY(mb = set_rd_next(&rb, &eb));
    while (ma > 0 || mb > 0) {
        int c = !ma ? 1 : !mb ? -1 : elem_cmp(ea.val, ea.valn, eb.val, eb.valn);
        REP_TRY(merge_elem(out, c <= 0 ? &ea : NULL, va, c >= 0 ? &eb : NULL, vb, &count));
        if (c <= 0)
            REP_TRY(ma = set_rd_next(&ra, &ea));
        if (c >= 0)
            REP_TRY(mb = set_rd_next(&rb, &eb));
    }
    REP_TRY(out->err);
    if (count == 0) {
        out->len = 0;
        return 0;
    }
    rep__put_be32(out->p, count);
    return 0;
}

static int
merge_counter(const uint8_t *a, size_t an, const rep__vv_t *va, const uint8_t *b, size_t bn,
              const rep__vv_t *vb, rep__buf_t *out)
{
    static const uint8_t none[2] = {0, 0};
    size_t na = 0, nb = 0;
    if (!an) {
        a = none;
        an = sizeof none;
    }
    if (!bn) {
        b = none;
        bn = sizeof none;
    }
    REP_TRY(ctr_check(a, an, &na));
    REP_TRY(ctr_check(b, bn, &nb));
    rep__buf_add(out, "\0\0", 2); /* count, patched below */
    size_t kept = 0;
    for (size_t i = 0, j = 0; i < na || j < nb;) {
        const uint8_t *x = i < na ? a + 2 + 16 * i : NULL, *y = j < nb ? b + 2 + 16 * j : NULL;
        uint64_t ax = x ? rep__get_be64(x) : UINT64_MAX, ay = y ? rep__get_be64(y) : UINT64_MAX;
        uint64_t actor = ax < ay ? ax : ay;
        if (x && ax == actor)
            i++;
        else
            x = NULL;
        if (y && ay == actor)
            j++;
        else
            y = NULL;
        /* the total of the side that has seen more of this actor's changes */
        const uint8_t *keep = rep__vv_seq(va, actor) >= rep__vv_seq(vb, actor) ? x : y;
        if (keep) {
            rep__buf_add(out, keep, 16);
            kept++;
        }
    }
    REP_TRY(out->err);
    if (kept == 0) {
        out->len = 0;
        return 0;
    }
    out->p[0] = (uint8_t)(kept >> 8);
    out->p[1] = (uint8_t)kept;
    return 0;
}

int
rep__state_merge(uint8_t kind, const uint8_t *a, size_t an, const rep__vv_t *va, const uint8_t *b,
                 size_t bn, const rep__vv_t *vb, rep__sibs_t *sa, rep__sibs_t *sb, rep__buf_t *out)
{
    out->len = 0;
    switch (kind) {
    case REP_KIND_REGISTER:
        return merge_register(a, an, va, b, bn, vb, sa, sb, out);
    case REP_KIND_COUNTER:
        return merge_counter(a, an, va, b, bn, vb, out);
    case REP_KIND_SET:
        return merge_set(a, an, va, b, bn, vb, out);
    case REP_KIND_LOG: /* an entry is only ever added: either side's is the same entry */
        rep__buf_add(out, an ? a : b, an ? an : bn);
        return out->err;
    }
    return REP_ECORRUPT;
}
