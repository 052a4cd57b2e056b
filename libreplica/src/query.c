/* query.c — reads: values, records, lists, conflicts, history, digest, info. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "change.h"
#include "common.h"
#include "facade.h"
#include "trust.h"
#include "keys.h"

/* ---- Reads ---- */
static void
entries_release(rep_entry_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((void *)items[i].user);
        rep__value_release(&items[i].value);
    }
    free(items);
}

static void
record_release(rep_record_t *rec)
{
    for (size_t i = 0; i < rec->nfields; i++) {
        free((void *)rec->fields[i].name);
        rep__value_release(&rec->fields[i].value);
        entries_release(rec->fields[i].items, rec->fields[i].nitems);
    }
    free(rec->fields);
    free((void *)rec->key);
    memset(rec, 0, sizeof *rec);
}

/* A register field is in conflict when it keeps more than one sibling and shows a value
 * (concurrent deletes alone are not news); the record's existence when a delete was
 * concurrent with an update (concurrent updates each leave a live sibling there: not news). */
static bool
is_conflict(const rep__skey_t *sk, const rep__sibs_t *s)
{
    size_t dead = 0;
    for (size_t i = 0; i < s->n; i++)
        dead += s->v[i].deleted;
    if (s->n < 2 || dead == s->n)
        return false;
    return sk->fieldn > 0 || dead > 0;
}

static bool
same_name(const rep__skey_t *a, const rep__skey_t *b)
{
    return a->colln == b->colln && a->recn == b->recn && a->fieldn == b->fieldn &&
           memcmp(a->coll, b->coll, a->colln) == 0 && memcmp(a->rec, b->rec, a->recn) == 0 &&
           memcmp(a->field, b->field, a->fieldn) == 0;
}

/* Append a set member or log entry to f. */
static int
field_add_item(rep_field_t *f, uint64_t actor, uint64_t seq, uint64_t hlc, const char *user,
               size_t usern, const uint8_t *val, size_t valn)
{
    if ((f->nitems & (f->nitems - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        rep_entry_t *v = realloc(f->items, (f->nitems ? f->nitems * 2 : 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        f->items = v;
    }
    rep_entry_t *e = &f->items[f->nitems];
    memset(e, 0, sizeof *e);
    e->actor = actor;
    e->seq = seq;
    e->hlc = hlc;
    if (!(e->user = rep__strndup(user, usern)))
        return -ENOMEM;
    f->nitems++;
    return rep__value_copy(val, valn, &e->value);
}

static int
set_member(void *ctx, const uint8_t *val, size_t valn, const rep__dot_t *last)
{
    return field_add_item(ctx, last->actor, last->seq, 0, "", 0, val, valn);
}

static int
log_entry(rep_field_t *f, const rep__skey_t *sk, const rep__slice_t *v)
{
    if (v->n < 1 || v->n < 1u + v->p[0])
        return REP_ECORRUPT;
    return field_add_item(f, rep__get_be64(sk->id + 8), rep__get_be64(sk->id + 16),
                          rep__get_be64(sk->id), (const char *)v->p + 1, v->p[0],
                          v->p + 1 + v->p[0], v->n - 1 - v->p[0]);
}

/* Fill f (its name and kind set) from its first state entry; *keep 0 when it shows nothing. */
static int
field_fill(rep_field_t *f, const rep__skey_t *sk, const rep__slice_t *v, rep__sibs_t *sibs,
           bool *keep)
{
    *keep = true;
    f->siblings = 1;
    switch (sk->kind) {
    case REP_KIND_REGISTER: {
        REP_TRY(rep__sibs_decode(sibs, v->p, v->n));
        int w = rep__reg_winner(sibs);
        f->siblings = (unsigned)sibs->n;
        if (w < 0) {
            *keep = false;
            return 0;
        }
        return rep__value_copy(sibs->v[w].val, sibs->v[w].valn, &f->value);
    }
    case REP_KIND_COUNTER:
        f->value.type = REP_INT;
        return rep__ctr_sum(v->p, v->n, &f->value.u.i);
    case REP_KIND_SET:
        return rep__set_each(v->p, v->n, set_member, f);
    case REP_KIND_LOG:
        return log_entry(f, sk, v);
    }
    return REP_ECORRUPT;
}

/* A cursor over state entries, read one record at a time. */
typedef struct rec_reader {
    rep__cur_t *cur;
    rep__slice_t k, v;
    int rc;              /* of the last cursor step: 0 or REP_ENOTFOUND */
    rep__sibs_t sibs;
} rec_reader_t;

/* Read the record whose entries start at the cursor into rec; *visible says whether it
 * exists (rec is empty otherwise). Leaves the cursor on the first entry past the record. */
static int
read_record(rec_reader_t *rr, rep_record_t *rec, bool *visible)
{
    memset(rec, 0, sizeof *rec);
    *visible = false;
    rep__skey_t first, last = {0};
    REP_TRY(rep__skey_parse(rr->k.p, rr->k.n, &first));
    size_t cap = 0;
    bool exists = false;
    int rc = 0;
    for (; rr->rc == 0; rr->rc = rep__cur_next(rr->cur, &rr->k, &rr->v)) {
        rep__skey_t sk;
        if ((rc = rep__skey_parse(rr->k.p, rr->k.n, &sk)) < 0)
            break;
        if (sk.colln != first.colln || sk.recn != first.recn ||
            memcmp(sk.coll, first.coll, sk.colln) || memcmp(sk.rec, first.rec, sk.recn))
            break;
        if (sk.fieldn == 0) {
            if ((rc = rep__sibs_decode(&rr->sibs, rr->v.p, rr->v.n)) < 0)
                break;
            exists = rep__reg_winner(&rr->sibs) >= 0;
            rec->delete_conflict = is_conflict(&sk, &rr->sibs);
            continue;
        }
        bool named = rec->nfields > 0 && same_name(&sk, &last);
        rep_field_t *prev = rec->nfields ? &rec->fields[rec->nfields - 1] : NULL;
        if (named && prev->kind == sk.kind) { /* the next entry of the same log */
            if ((rc = log_entry(prev, &sk, &rr->v)) < 0)
                break;
            continue;
        }
        if (rec->nfields == cap) {
            cap = cap ? cap * 2 : 8;
            rep_field_t *f = realloc(rec->fields, cap * sizeof *f);
            if (!f) {
                rc = -ENOMEM;
                break;
            }
            rec->fields = f;
            prev = rec->nfields ? &rec->fields[rec->nfields - 1] : NULL;
        }
        rep_field_t *f = &rec->fields[rec->nfields];
        memset(f, 0, sizeof *f);
        f->kind = (rep_kind_t)sk.kind;
        if (!(f->name = rep__strndup(sk.field, sk.fieldn))) {
            rc = -ENOMEM;
            break;
        }
        rec->nfields++;
        bool keep;
        if ((rc = field_fill(f, &sk, &rr->v, &rr->sibs, &keep)) < 0)
            break;
        if (!keep) { /* a register with only deletes left */
            rec->nfields--;
            free((void *)f->name);
            continue;
        }
        if (named)
            prev->kind_clash = f->kind_clash = 1;
        last = sk;
    }
    if (rc == 0 && rr->rc != 0 && rr->rc != REP_ENOTFOUND)
        rc = rr->rc;
    if (rc == 0 && exists) {
        if (!(rec->key = rep__record_key_str(&first)))
            rc = -ENOMEM;
        else
            *visible = true;
    }
    if (rc < 0 || !*visible)
        record_release(rec);
    return rc;
}

typedef struct list_ctx {
    rep__skey_t k;       /* collection and record prefix */
    bool one_record;     /* exact record (get_record) rather than a prefix */
    size_t limit;
    rep_list_t *out;
} list_ctx_t;

static int
list_fn(rep__txn_t *t, void *arg)
{
    list_ctx_t *lc = arg;
    uint8_t prefix[REP_STATE_KEY_MAX];
    /* "coll\0" + record prefix; with one_record the full "coll\0rec\0" */
    size_t pn = rep__skey_make(prefix, &lc->k, false);
    if (!lc->one_record)
        pn--; /* drop the record's terminator: a prefix of record ids */
    rec_reader_t rr = {0};
    size_t cap = 0;
    int rc = rep__cur_open(t, REP_DB_STATE, &rr.cur);
    if (rc < 0)
        return rc;
    rr.rc = rep__cur_seek(rr.cur, prefix, pn, &rr.k, &rr.v);
    while (rr.rc == 0 && rr.k.n >= pn && memcmp(rr.k.p, prefix, pn) == 0) {
        if (lc->limit && lc->out->n >= lc->limit)
            break;
        rep_record_t rec;
        bool visible;
        if ((rc = read_record(&rr, &rec, &visible)) < 0)
            break;
        if (!visible)
            continue;
        if (lc->out->n == cap) {
            cap = cap ? cap * 2 : 16;
            rep_record_t *v = realloc(lc->out->records, cap * sizeof *v);
            if (!v) {
                record_release(&rec);
                rc = -ENOMEM;
                break;
            }
            lc->out->records = v;
        }
        lc->out->records[lc->out->n++] = rec;
    }
    if (rc == 0 && rr.rc != 0 && rr.rc != REP_ENOTFOUND)
        rc = rr.rc;
    rep__cur_close(&rr.cur);
    rep__sibs_free(&rr.sibs);
    return rc;
}

static int
list_run(rep_replica_t *r, list_ctx_t *lc, rep_list_t **out)
{
    lc->out = calloc(1, sizeof *lc->out);
    if (!lc->out)
        return -ENOMEM;
    int rc = rep__store_read(r->st, list_fn, lc);
    if (rc < 0) {
        rep_list_free(&lc->out);
        return rc;
    }
    *out = lc->out;
    return 0;
}

int
rep_replica_get_record(rep_replica_t *r, const char *key, rep_record_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    list_ctx_t lc = {.one_record = true, .limit = 1};
    REP_TRY(rep__key_split(key, &lc.k));
    rep_list_t *l;
    REP_TRY(list_run(r, &lc, &l));
    if (l->n == 0) {
        rep_list_free(&l);
        return REP_ENOTFOUND;
    }
    rep_record_t *rec = malloc(sizeof *rec);
    if (!rec) {
        rep_list_free(&l);
        return -ENOMEM;
    }
    *rec = l->records[0];
    l->n = 0;
    rep_list_free(&l);
    *out = rec;
    return 0;
}

int
rep_replica_get(rep_replica_t *r, const char *key, const char *field, rep_value_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || !field)
        return -EINVAL;
    REP_TRY(rep__name_check(field, strlen(field), REP_MAX_FIELD, false));
    rep_record_t *rec;
    REP_TRY(rep_replica_get_record(r, key, &rec));
    /* fields of one name sort by kind: the register comes first, then the counter */
    rep_field_t *f = NULL;
    for (size_t i = 0; i < rec->nfields && !f; i++)
        if (strcmp(rec->fields[i].name, field) == 0)
            f = &rec->fields[i];
    int rc = !f ? REP_ENOTFOUND
             : f->kind == REP_KIND_REGISTER || f->kind == REP_KIND_COUNTER ? 0 : REP_EKIND;
    if (rc == 0 && !(*out = malloc(sizeof **out)))
        rc = -ENOMEM;
    if (rc == 0) {
        **out = f->value; /* moved out of the record */
        f->value.type = REP_NULL;
    }
    rep_record_free(&rec);
    return rc;
}

void
rep_record_free(rep_record_t **recp)
{
    if (!recp || !*recp)
        return;
    record_release(*recp);
    free(*recp);
    *recp = NULL;
}

int
rep_replica_list(rep_replica_t *r, const char *coll, const char *prefix, size_t limit,
                 rep_list_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r || !coll)
        return -EINVAL;
    list_ctx_t lc = {.limit = limit};
    lc.k.coll = coll;
    lc.k.colln = strlen(coll);
    lc.k.rec = prefix ? prefix : "";
    lc.k.recn = strlen(lc.k.rec);
    REP_TRY(rep__name_check(coll, lc.k.colln, REP_MAX_COLLECTION, false));
    if (memchr(coll, '/', lc.k.colln))
        return -EINVAL;
    REP_TRY(rep__name_check(lc.k.rec, lc.k.recn, REP_MAX_RECORD, true));
    return list_run(r, &lc, out);
}

void
rep_list_free(rep_list_t **lp)
{
    if (!lp || !*lp)
        return;
    for (size_t i = 0; i < (*lp)->n; i++)
        record_release(&(*lp)->records[i]);
    free((*lp)->records);
    free(*lp);
    *lp = NULL;
}

/* ---- Conflicts ---- */
static void
conflict_release(rep_conflict_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free((void *)c->siblings[i].user);
        rep__value_release(&c->siblings[i].value);
    }
    free(c->siblings);
    free((void *)c->key);
    free((void *)c->field);
}

/* Fill c for the field sk: with s, its register siblings; with NULL, none (a clash only). */
static int
conflict_fill(rep_conflict_t *c, const rep__skey_t *sk, const rep__sibs_t *s)
{
    memset(c, 0, sizeof *c);
    c->kind = (rep_kind_t)sk->kind;
    c->key = rep__record_key_str(sk);
    c->field = rep__strndup(sk->field, sk->fieldn);
    if (!c->key || !c->field)
        return -ENOMEM;
    if (!s)
        return 0;
    if (!(c->siblings = calloc(s->n, sizeof *c->siblings)))
        return -ENOMEM;
    int w = rep__reg_winner(s);
    for (size_t i = 0; i < s->n; i++) {
        const rep__sib_t *x = &s->v[i];
        rep_sibling_t *o = &c->siblings[i];
        c->n++;
        o->actor = x->actor;
        o->seq = x->seq;
        o->hlc = x->hlc;
        o->deleted = x->deleted;
        o->winner = (int)i == w;
        if (!(o->user = rep__strndup(x->user, x->usern)))
            return -ENOMEM;
        if (!x->deleted && sk->fieldn > 0)
            REP_TRY(rep__value_copy(x->val, x->valn, &o->value));
    }
    return 0;
}

typedef struct conflicts_ctx {
    const rep__skey_t *k;    /* one record, or NULL */
    rep_conflicts_t *out;    /* NULL: only count */
    uint64_t count;
    size_t cap;
} conflicts_ctx_t;

/* List (or count) a conflict on field sk; *item is where it went, or NULL when counting. */
static int
conflict_add(conflicts_ctx_t *cc, const rep__skey_t *sk, const rep__sibs_t *s,
             rep_conflict_t **item)
{
    *item = NULL;
    cc->count++;
    if (!cc->out)
        return 0;
    if (cc->out->n == cc->cap) {
        size_t cap = cc->cap ? cc->cap * 2 : 8;
        rep_conflict_t *items = realloc(cc->out->items, cap * sizeof *items);
        if (!items)
            return -ENOMEM;
        cc->out->items = items;
        cc->cap = cap;
    }
    *item = &cc->out->items[cc->out->n++];
    return conflict_fill(*item, sk, s);
}

/* One field met while walking the state, remembered until the next. */
typedef struct walk_field {
    rep__skey_t k;
    rep__sibs_t sibs;        /* a register's siblings */
    rep_conflict_t *item;    /* where it was listed, if it was (and not only counted) */
    bool listed;
} walk_field_t;

/*
 * Walk the state of the visible records: a register with concurrent siblings, an existence
 * register with a delete concurrent with an update, and every field of a name that shows two
 * kinds are conflicts (exactly what rep_replica_get_record() flags).
 */
static int
conflicts_fn(rep__txn_t *t, void *arg)
{
    conflicts_ctx_t *cc = arg;
    uint8_t prefix[REP_STATE_KEY_MAX];
    size_t pn = cc->k ? rep__skey_make(prefix, cc->k, false) : 0;
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &cur));
    walk_field_t w[2] = {{.listed = false}, {.listed = false}}, *prev = &w[0], *f = &w[1];
    rep__skey_t rec = {0}, last = {0};
    bool in_record = false, visible = false, have_prev = false;
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, pn ? prefix : NULL, pn, &k, &v); rc == 0;
         rc = rep__cur_next(cur, &k, &v)) {
        if (k.n < pn || memcmp(k.p, prefix, pn) != 0)
            break;
        rep__skey_t sk;
        if ((rc = rep__skey_parse(k.p, k.n, &sk)) < 0)
            break;
        if (!in_record || sk.colln != rec.colln || sk.recn != rec.recn ||
            memcmp(sk.coll, rec.coll, sk.colln) || memcmp(sk.rec, rec.rec, sk.recn)) {
            rec = sk; /* a new record: its existence register, if any, comes first */
            in_record = true;
            visible = have_prev = false;
        } else if (same_name(&sk, &last) && sk.kind == last.kind) {
            continue; /* the next entry of the same log */
        }
        last = sk;
        f->k = sk;
        f->item = NULL;
        f->listed = false;
        bool shown = true, conflict = false;
        if (sk.kind == REP_KIND_REGISTER) {
            if ((rc = rep__sibs_decode(&f->sibs, v.p, v.n)) < 0)
                break;
            shown = rep__reg_winner(&f->sibs) >= 0;
            conflict = is_conflict(&sk, &f->sibs);
        }
        if (sk.fieldn == 0)
            visible = shown;
        if (!visible || !shown)
            continue; /* shows nothing: neither a conflict nor one side of a clash */
        bool clash = have_prev && sk.fieldn > 0 && same_name(&sk, &prev->k);
        if (clash && !prev->listed) {
            bool reg = prev->k.kind == REP_KIND_REGISTER;
            if ((rc = conflict_add(cc, &prev->k, reg ? &prev->sibs : NULL, &prev->item)) < 0)
                break;
            prev->listed = true;
        }
        if (clash && prev->item)
            prev->item->kind_clash = 1;
        if (conflict || clash) {
            bool reg = sk.kind == REP_KIND_REGISTER;
            if ((rc = conflict_add(cc, &sk, reg ? &f->sibs : NULL, &f->item)) < 0)
                break;
            f->listed = true;
            if (f->item)
                f->item->kind_clash = clash;
        }
        if (sk.fieldn > 0) { /* remember it for a clash with the next field */
            walk_field_t *x = prev;
            prev = f;
            f = x;
            have_prev = true;
        }
    }
    rep__cur_close(&cur);
    rep__sibs_free(&w[0].sibs);
    rep__sibs_free(&w[1].sibs);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

int
rep_replica_conflicts(rep_replica_t *r, const char *key, rep_conflicts_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    rep__skey_t k;
    conflicts_ctx_t cc = {.k = NULL};
    if (key) {
        REP_TRY(rep__key_split(key, &k));
        cc.k = &k;
    }
    if (!(cc.out = calloc(1, sizeof *cc.out)))
        return -ENOMEM;
    int rc = rep__store_read(r->st, conflicts_fn, &cc);
    if (rc < 0) {
        rep_conflicts_free(&cc.out);
        return rc;
    }
    *out = cc.out;
    return 0;
}

void
rep_conflicts_free(rep_conflicts_t **cp)
{
    if (!cp || !*cp)
        return;
    for (size_t i = 0; i < (*cp)->n; i++)
        conflict_release(&(*cp)->items[i]);
    free((*cp)->items);
    free(*cp);
    *cp = NULL;
}

/* ---- History ---- */
int
rep__op_export(rep_op_t *o, const rep__op_t *op)
{
    memset(o, 0, sizeof *o);
    o->type = (rep_op_type_t)op->type;
    o->kind = (rep_kind_t)op->kind;
    if (!(o->field = rep__strndup(op->field, op->fieldn)))
        return -ENOMEM;
    if (op->valn && op->fieldn > 0) /* the existence register's value is not news */
        REP_TRY(rep__value_copy(op->val, op->valn, &o->value));
    return 0;
}

void
rep__ops_release(rep_op_t *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((void *)ops[i].field);
        rep__value_release(&ops[i].value);
    }
    free(ops);
}

static void
change_info_release(rep_change_info_t *ci)
{
    rep__ops_release(ci->ops, ci->nops);
    free((void *)ci->user);
}

/* The ops of change c that touch record k. */
static int
change_info_fill(rep_change_info_t *ci, const rep__change_t *c, const rep__skey_t *k)
{
    memset(ci, 0, sizeof *ci);
    ci->actor = c->actor;
    ci->seq = c->seq;
    ci->hlc = c->hlc;
    if (!(ci->user = rep__strndup(c->user, c->usern)) ||
        !(ci->ops = calloc(c->nops, sizeof *ci->ops)))
        return -ENOMEM;
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        if (op->colln != k->colln || op->recn != k->recn || memcmp(op->coll, k->coll, k->colln) ||
            memcmp(op->rec, k->rec, k->recn))
            continue;
        REP_TRY(rep__op_export(&ci->ops[ci->nops++], op));
    }
    return 0;
}

typedef struct history_ctx {
    rep__skey_t k;
    rep_history_t *out;
} history_ctx_t;

static int
history_fn(rep__txn_t *t, void *arg)
{
    history_ctx_t *hc = arg;
    uint8_t key[REP_STATE_KEY_MAX];
    size_t kn = rep__skey_make(key, &hc->k, false);
    uint64_t based;
    REP_TRY(rep__txn_count(t, REP_DB_BASE, &based));
    hc->out->partial = based > 0;
    uint8_t office[REP_OFFICE_ID_BYTES];
    rep__trust_t tr;
    REP_TRY(rep__meta_get_fixed(t, REP_META_OFFICE, office, sizeof office));
    REP_TRY(rep__trust_load(t, office, &tr));
    rep__cur_t *cur;
    int rc = rep__cur_open(t, REP_DB_HIST, &cur);
    if (rc < 0) {
        rep__trust_clear(&tr);
        return rc;
    }
    rep__slice_t k, v;
    size_t cap = 0;
    rc = rep__cur_seek(cur, key, kn, &k, &v);
    if (rc == 0 && (k.n != kn || memcmp(k.p, key, kn) != 0))
        rc = REP_ENOTFOUND;
    for (; rc == 0; rc = rep__cur_next_dup(cur, &k, &v)) {
        rep__slice_t bytes;
        rep__change_t c;
        if (v.n != 16 || (rc = rep__txn_get(t, REP_DB_LOG, v.p, 16, &bytes)) < 0)
            break;
        if ((rc = rep__change_decode(bytes.p, bytes.n, &c)) < 0)
            break;
        const uint8_t *ck = rep__trust_key(&tr, c.epoch, REP_SUBKEY_CHANGE);
        if ((rc = ck ? rep__change_open(&c, office, ck) : REP_EKEY) < 0) {
            rep__change_clear(&c);
            break;
        }
        if (hc->out->n == cap) {
            cap = cap ? cap * 2 : 8;
            rep_change_info_t *ch = realloc(hc->out->changes, cap * sizeof *ch);
            if (!ch) {
                rep__change_clear(&c);
                rc = -ENOMEM;
                break;
            }
            hc->out->changes = ch;
        }
        rc = change_info_fill(&hc->out->changes[hc->out->n++], &c, &hc->k);
        rep__change_clear(&c);
        if (rc < 0)
            break;
    }
    rep__cur_close(&cur);
    rep__trust_clear(&tr);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

static int
cmp_change_info(const void *pa, const void *pb)
{
    const rep_change_info_t *a = pa, *b = pb;
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    if (a->actor != b->actor)
        return a->actor < b->actor ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

int
rep_replica_history(rep_replica_t *r, const char *key, rep_history_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    history_ctx_t hc;
    REP_TRY(rep__key_split(key, &hc.k));
    if (!(hc.out = calloc(1, sizeof *hc.out)))
        return -ENOMEM;
    int rc = rep__store_read(r->st, history_fn, &hc);
    if (rc < 0) {
        rep_history_free(&hc.out);
        return rc;
    }
    if (hc.out->n > 1)
        qsort(hc.out->changes, hc.out->n, sizeof *hc.out->changes, cmp_change_info);
    *out = hc.out;
    return 0;
}

void
rep_history_free(rep_history_t **hp)
{
    if (!hp || !*hp)
        return;
    for (size_t i = 0; i < (*hp)->n; i++)
        change_info_release(&(*hp)->changes[i]);
    free((*hp)->changes);
    free(*hp);
    *hp = NULL;
}

/* ---- Digest and info ---- */
static int
digest_fn(rep__txn_t *t, void *arg)
{
    uint8_t *out = arg;
    rep__hasher_t h;
    rep__hasher_init(&h);
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &cur));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(cur, &k, &v)) {
        uint8_t len[8];
        rep__put_be32(len, (uint32_t)k.n);
        rep__put_be32(len + 4, (uint32_t)v.n);
        rep__hasher_add(&h, len, sizeof len);
        rep__hasher_add(&h, k.p, k.n);
        rep__hasher_add(&h, v.p, v.n);
    }
    rep__cur_close(&cur);
    rep__hasher_final(&h, out);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

int
rep_replica_digest(rep_replica_t *r, uint8_t out[REP_DIGEST_BYTES])
{
    if (!r || !out)
        return -EINVAL;
    return rep__store_read(r->st, digest_fn, out);
}

typedef struct info_ctx {
    rep_replica_t *r;
    rep_info_t *out;
} info_ctx_t;

static int
count_records(rep__txn_t *t, uint64_t *records)
{
    rep__cur_t *cur;
    REP_TRY(rep__cur_open(t, REP_DB_STATE, &cur));
    rep__sibs_t s = {0};
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(cur, NULL, 0, &k, &v); rc == 0; rc = rep__cur_next(cur, &k, &v)) {
        rep__skey_t sk;
        if ((rc = rep__skey_parse(k.p, k.n, &sk)) < 0)
            break;
        if (sk.fieldn != 0)
            continue;
        if ((rc = rep__sibs_decode(&s, v.p, v.n)) < 0)
            break;
        if (rep__reg_winner(&s) >= 0)
            (*records)++;
    }
    rep__cur_close(&cur);
    rep__sibs_free(&s);
    return rc == REP_ENOTFOUND ? 0 : rc;
}

/* The devices recorded in db (REP_DB_SKEW: actor → ms ahead; REP_DB_FORKS: actor → seq). */
static int
actors_noted(rep__txn_t *t, int db, rep_vv_entry_t **out, size_t *n)
{
    uint64_t count;
    REP_TRY(rep__txn_count(t, db, &count));
    if (count == 0)
        return 0;
    if (!(*out = calloc(count, sizeof **out)))
        return -ENOMEM;
    rep__cur_t *c;
    REP_TRY(rep__cur_open(t, db, &c));
    rep__slice_t k, v;
    int rc;
    for (rc = rep__cur_seek(c, NULL, 0, &k, &v); rc == 0 && *n < count;
         rc = rep__cur_next(c, &k, &v)) {
        if (k.n != 8 || v.n != 8) {
            rc = REP_ECORRUPT;
            break;
        }
        (*out)[*n].actor = rep__get_be64(k.p);
        (*out)[(*n)++].seq = rep__get_be64(v.p);
    }
    rep__cur_close(&c);
    return rc == REP_ENOTFOUND || rc == 0 ? 0 : rc;
}

static int
info_fn(rep__txn_t *t, void *arg)
{
    info_ctx_t *ic = arg;
    rep_info_t *o = ic->out;
    conflicts_ctx_t cc = {.k = NULL};
    REP_TRY(rep__own_get(t, &o->seq, NULL));
    REP_TRY(rep__meta_get_u64(t, REP_META_HLC, &o->hlc));
    REP_TRY(rep__txn_count(t, REP_DB_LOG, &o->changes));
    REP_TRY(rep__txn_count(t, REP_DB_PENDING, &o->pending));
    REP_TRY(count_records(t, &o->records));
    REP_TRY(conflicts_fn(t, &cc));
    o->conflicts = cc.count;
    REP_TRY(rep__vv_all(t, &o->vv, &o->nvv));
    REP_TRY(actors_noted(t, REP_DB_SKEW, &o->skewed, &o->nskewed));
    REP_TRY(rep__txn_count(t, REP_DB_MEMBERS, &o->members));
    rep__trust_t tr;
    REP_TRY(rep__trust_load(t, ic->r->office, &tr));
    o->relay = rep__trust_relay(&tr);
    rep__trust_clear(&tr);
    int rc = rep__meta_get_u64(t, REP_META_REFUSED, &o->refused);
    if (rc < 0 && rc != REP_ENOTFOUND)
        return rc;
    return actors_noted(t, REP_DB_FORKS, &o->forked, &o->nforked);
}

int
rep_replica_info(rep_replica_t *r, rep_info_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    rep_info_t *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    memcpy(o->office_id, r->office, sizeof o->office_id);
    o->office_name = strdup(r->office_name);
    o->device_name = strdup(r->device_name);
    o->actor = r->actor;
    o->incarnation = r->incarnation;
    info_ctx_t ic = {r, o};
    int rc = !o->office_name || !o->device_name ? -ENOMEM : rep__store_read(r->st, info_fn, &ic);
    if (rc < 0) {
        rep_info_free(&o);
        return rc;
    }
    *out = o;
    return 0;
}

void
rep_info_free(rep_info_t **ip)
{
    if (!ip || !*ip)
        return;
    free((void *)(*ip)->office_name);
    free((void *)(*ip)->device_name);
    free((*ip)->vv);
    free((*ip)->skewed);
    free((*ip)->forked);
    free(*ip);
    *ip = NULL;
}

