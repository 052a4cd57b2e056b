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
    }
    return (size_t)(p - out);
}

int
rep__skey_parse(const uint8_t *p, size_t n, rep__skey_t *out)
{
    const uint8_t *end = p + n, *z1, *z2, *z3;
    if (!(z1 = memchr(p, 0, n)) || !(z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1))) ||
        !(z3 = memchr(z2 + 1, 0, (size_t)(end - z2 - 1))) || z3 + 2 != end)
        return REP_ECORRUPT;
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

void
rep__sibs_encode(rep__buf_t *b, const rep__sibs_t *s)
{
    uint8_t hdr[26];
    hdr[0] = (uint8_t)(s->n >> 8);
    hdr[1] = (uint8_t)s->n;
    rep__buf_add(b, hdr, 2);
    for (size_t i = 0; i < s->n; i++) {
        const rep__sib_t *x = &s->v[i];
        rep__put_be64(hdr, x->actor);
        rep__put_be64(hdr + 8, x->seq);
        rep__put_be64(hdr + 16, x->hlc);
        hdr[24] = x->deleted ? 1 : 0;
        hdr[25] = x->usern;
        rep__buf_add(b, hdr, 26);
        rep__buf_add(b, x->user, x->usern);
        uint8_t len[4];
        rep__put_be32(len, x->valn);
        rep__buf_add(b, len, 4);
        rep__buf_add(b, x->val, x->valn);
    }
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
