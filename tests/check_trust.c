/*
 * check_trust.c — whom a replica trusts (trust.h), sealed envelopes (seal.h), and enrolling
 * devices with provisionings, in memory and sealed in a file under a one-time code.
 *
 * The membership log is checked against a real LMDB store (rep__store_*): entries are built
 * both by rep__trust_add and by hand (entry_make() writes trust.h's format and signs it), so a
 * test can make exactly the entry an attacker or a confused peer would send: signed by a
 * member that is not an admin, with a bad signature, forking the log, leaving a gap, or of
 * another office. The provisioning tests use whole replicas through the public API; each
 * crypto_pwhash (Argon2id, interactive) costs a fraction of a second, so they are few.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "change.h"
#include "checkutil.h"
#include "codec.h"
#include "common.h"
#include "keys.h"
#include "replica.h"
#include "seal.h"
#include "store.h"
#include "trust.h"

static const char kdf_ctx[8] = {'r', 'e', 'p', 'l', 'i', 'c', 'a', '_'};

/* ---- A store and the transactions the tests run in it -------------------------------------- */

static rep__store_t *
store_new(const char *sub)
{
    char path[TU_PATH_MAX];
    ck_assert_int_eq(tu_path(path, g_root, sub), 0);
    rep__store_t *s;
    CK_OK(rep__store_open(&s, path, true, true));
    return s;
}

typedef struct op_ctx {
    rep__trust_t *tr;
    const uint8_t *p, *pk, *sk, *device, *key;
    size_t n;
    const char *name, *role;
    uint32_t epoch;
    uint64_t seq;
    rep__buf_t *out;
    const uint8_t *office;
    int rc;
} op_ctx_t;

static int
accept_fn(rep__txn_t *t, void *arg)
{
    op_ctx_t *c = arg;
    c->rc = rep__trust_accept(c->tr, t, c->p, c->n);
    return c->rc < 0 ? c->rc : 0;
}

/* rep__trust_accept in a write transaction (committed unless it failed): its result. */
static int
accept_in(rep__store_t *s, rep__trust_t *tr, const rep__buf_t *e)
{
    op_ctx_t c = {.tr = tr, .p = e->p, .n = e->len};
    int rc = rep__store_write(s, accept_fn, &c);
    ck_assert_int_eq(rc < 0 ? rc : 0, c.rc < 0 ? c.rc : 0);
    return c.rc;
}

static int
add_fn(rep__txn_t *t, void *arg)
{
    op_ctx_t *c = arg;
    return c->rc = rep__trust_add(c->tr, t, c->pk, c->sk, c->device, c->name, c->role);
}

static int
add_in(rep__store_t *s, rep__trust_t *tr, const uint8_t *pk, const uint8_t *sk,
       const uint8_t *device, const char *name, const char *role)
{
    op_ctx_t c = {.tr = tr, .pk = pk, .sk = sk, .device = device, .name = name, .role = role};
    return rep__store_write(s, add_fn, &c);
}

static int
key_fn(rep__txn_t *t, void *arg)
{
    op_ctx_t *c = arg;
    return rep__trust_put_key(c->tr, t, c->epoch, c->key);
}

static int
load_fn(rep__txn_t *t, void *arg)
{
    op_ctx_t *c = arg;
    return rep__trust_load(t, c->office, c->tr);
}

/* A fresh rep__trust_t read back from the store. */
static void
load(rep__store_t *s, const uint8_t office[REP_OFFICE_ID_BYTES], rep__trust_t *tr)
{
    op_ctx_t c = {.tr = tr, .office = office};
    CK_OK(rep__store_read(s, load_fn, &c));
}

static int
get_fn(rep__txn_t *t, void *arg)
{
    op_ctx_t *c = arg;
    uint8_t k[8];
    rep__slice_t v;
    rep__put_be64(k, c->seq);
    REP_TRY(rep__txn_get(t, REP_DB_MEMBERS, k, sizeof k, &v));
    rep__buf_add(c->out, v.p, v.n);
    return c->out->err;
}

/* The stored entry seq (appended to out). */
static void
stored_entry(rep__store_t *s, uint64_t seq, rep__buf_t *out)
{
    op_ctx_t c = {.seq = seq, .out = out};
    CK_OK(rep__store_read(s, get_fn, &c));
}

static int
pack_fn(rep__txn_t *t, void *arg)
{
    op_ctx_t *c = arg;
    return rep__trust_pack_entries(t, c->seq, c->tr->count, c->out);
}

/* ---- Entries by hand ------------------------------------------------------------------------ */

static void
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

/* An entry as trust.h describes it, field by field. */
typedef struct ent {
    unsigned count;   /* 12 */
    uint64_t version; /* 1 */
    const uint8_t *office;
    uint64_t seq;
    uint8_t prev[REP_HASH_BYTES];
    uint64_t type, epoch;
    const uint8_t *device;
    const char *name, *role;
    const uint8_t *signer; /* the signer field */
    const uint8_t *sk;     /* who really signs */
} ent_t;

static void
entry_make(const ent_t *e, rep__buf_t *b)
{
    rep__buf_init(b);
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    uint8_t curve[32];
    CK_OK(rep__sign_to_curve(e->device, NULL, curve, NULL));
    msgpack_pack_array(&pk, e->count);
    msgpack_pack_uint64(&pk, e->version);
    pack_bin(&pk, e->office, REP_OFFICE_ID_BYTES);
    msgpack_pack_uint64(&pk, e->seq);
    pack_bin(&pk, e->prev, REP_HASH_BYTES);
    msgpack_pack_uint64(&pk, e->type);
    msgpack_pack_uint64(&pk, e->epoch);
    pack_bin(&pk, e->device, REP_SIGN_PK_BYTES);
    pack_bin(&pk, curve, sizeof curve);
    msgpack_pack_str(&pk, strlen(e->name));
    msgpack_pack_str_body(&pk, e->name, strlen(e->name));
    msgpack_pack_str(&pk, strlen(e->role));
    msgpack_pack_str_body(&pk, e->role, strlen(e->role));
    msgpack_pack_nil(&pk); /* extra: nil for an ADD */
    pack_bin(&pk, e->signer, REP_SIGN_PK_BYTES);
    uint8_t sig[REP_SIG_BYTES];
    rep__sign(sig, b->p, b->len, e->sk);
    pack_bin(&pk, sig, sizeof sig);
    ck_assert_int_eq(b->err, 0);
}

/* An office with a store, its log [admin A (genesis), member M], and a key of epoch 1. */
typedef struct world {
    rep__store_t *s;
    rep__trust_t tr;
    uint8_t office[REP_OFFICE_ID_BYTES];
    uint8_t a_pk[REP_SIGN_PK_BYTES], a_sk[REP_SIGN_SK_BYTES];
    uint8_t m_pk[REP_SIGN_PK_BYTES], m_sk[REP_SIGN_SK_BYTES];
    uint8_t key[REP_KEY_BYTES];
} world_t;

static void
world_init(world_t *w, const char *sub)
{
    memset(w, 0, sizeof *w);
    w->s = store_new(sub);
    rep__random(w->office, sizeof w->office);
    memcpy(w->tr.office, w->office, sizeof w->office);
    rep__sign_keypair(w->a_pk, w->a_sk);
    rep__sign_keypair(w->m_pk, w->m_sk);
    CK_OK(add_in(w->s, &w->tr, w->a_pk, w->a_sk, w->a_pk, "front-desk", "admin"));
    CK_OK(add_in(w->s, &w->tr, w->a_pk, w->a_sk, w->m_pk, "exam-1", "member"));
    rep__random(w->key, sizeof w->key);
    op_ctx_t c = {.tr = &w->tr, .epoch = 1, .key = w->key};
    CK_OK(rep__store_write(w->s, key_fn, &c));
}

static void
world_free(world_t *w)
{
    rep__trust_clear(&w->tr);
    rep__store_close(&w->s);
}

/* The next entry of w's log: adds device as name/role, signed (and claimed) by signer. */
static ent_t
ent_next(const world_t *w, const uint8_t *device, const char *name, const char *role,
         const uint8_t *signer, const uint8_t *sk)
{
    ent_t e = {.count = 13,
               .version = REP_ENTRY_VERSION,
               .office = w->office,
               .seq = w->tr.count + 1,
               .type = REP_ENTRY_ADD,
               .epoch = w->tr.epoch,
               .device = device,
               .name = name,
               .role = role,
               .signer = signer,
               .sk = sk};
    memcpy(e.prev, w->tr.head, sizeof e.prev);
    return e;
}

/* accept_in must refuse e with want and leave the log (stored and in memory) as it was. */
static void
expect_refused(world_t *w, const char *what, const ent_t *e, int want)
{
    rep__buf_t b;
    entry_make(e, &b);
    uint64_t count = w->tr.count;
    uint8_t head[REP_HASH_BYTES];
    memcpy(head, w->tr.head, sizeof head);
    int rc = accept_in(w->s, &w->tr, &b);
    ck_assert_msg(rc == want, "%s: accept gave %d (%s), want %d (%s)", what, rc, rep_strerror(rc),
                  want, rep_strerror(want));
    ck_assert_uint_eq(w->tr.count, count);
    ck_assert_mem_eq(w->tr.head, head, sizeof head);
    rep__trust_t back;
    load(w->s, w->office, &back);
    ck_assert_uint_eq(back.count, count);
    ck_assert_mem_eq(back.head, head, sizeof head);
    rep__trust_clear(&back);
    rep__buf_free(&b);
}

/* ---- The membership log --------------------------------------------------------------------- */

START_TEST(trust_genesis_is_a_self_signed_admin)
{
    world_t w;
    world_init(&w, "a");
    rep__buf_t e1;
    rep__buf_init(&e1);
    stored_entry(w.s, 1, &e1);
    rep__entry_t e;
    CK_OK(rep__entry_decode(e1.p, e1.len, &e));
    ck_assert_mem_eq(e.office, w.office, REP_OFFICE_ID_BYTES);
    ck_assert_uint_eq(e.seq, 1);
    static const uint8_t zeros[REP_HASH_BYTES];
    ck_assert_mem_eq(e.prev, zeros, REP_HASH_BYTES);
    ck_assert_uint_eq(e.type, REP_ENTRY_ADD);
    ck_assert_uint_eq(e.epoch, 1);
    ck_assert_mem_eq(e.device, w.a_pk, REP_SIGN_PK_BYTES);
    ck_assert_mem_eq(e.signer, w.a_pk, REP_SIGN_PK_BYTES); /* self-signed */
    ck_assert_uint_eq(e.rolen, 5);
    ck_assert_mem_eq(e.role, "admin", 5);
    ck_assert_uint_eq(e.namen, 10);
    ck_assert_mem_eq(e.name, "front-desk", 10);
    uint8_t curve[32];
    CK_OK(rep__sign_to_curve(w.a_pk, NULL, curve, NULL));
    ck_assert_mem_eq(e.curve, curve, 32);
    CK_OK(rep__verify(e.sig, e1.p, e.signed_len, w.a_pk)); /* over every byte before sig */
    ck_assert_uint_eq(e.signed_len, e1.len - 2 - REP_SIG_BYTES);

    /* the entry is exactly trust.h's format (Ed25519 is deterministic: the same bytes) */
    ent_t h = {.count = 13,
               .version = 1,
               .office = w.office,
               .seq = 1,
               .type = REP_ENTRY_ADD,
               .epoch = 1,
               .device = w.a_pk,
               .name = "front-desk",
               .role = "admin",
               .signer = w.a_pk,
               .sk = w.a_sk};
    rep__buf_t hb;
    entry_make(&h, &hb);
    ck_assert_uint_eq(hb.len, e1.len);
    ck_assert_mem_eq(hb.p, e1.p, e1.len);

    /* the log as loaded: two devices, their roles; the head is the last entry's hash */
    rep__trust_t tr;
    load(w.s, w.office, &tr);
    ck_assert_uint_eq(tr.count, 2);
    ck_assert_uint_eq(tr.epoch, 1);
    ck_assert_uint_eq(tr.ndevs, 2);
    ck_assert_str_eq(tr.devs[0].role, "admin");
    ck_assert_str_eq(tr.devs[0].name, "front-desk");
    ck_assert_str_eq(tr.devs[1].role, "member");
    ck_assert_str_eq(tr.devs[1].name, "exam-1");
    ck_assert_ptr_eq(rep__trust_member(&tr, w.m_pk), &tr.devs[1]);
    rep__buf_t e2;
    rep__buf_init(&e2);
    stored_entry(w.s, 2, &e2);
    uint8_t head[REP_HASH_BYTES];
    rep__hash(head, e2.p, e2.len);
    ck_assert_mem_eq(tr.head, head, REP_HASH_BYTES);
    ck_assert_mem_eq(w.tr.head, head, REP_HASH_BYTES);
    CK_OK(rep__entry_decode(e2.p, e2.len, &e));
    rep__hash(head, e1.p, e1.len);
    ck_assert_mem_eq(e.prev, head, REP_HASH_BYTES); /* chained */
    ck_assert_mem_eq(e.signer, w.a_pk, REP_SIGN_PK_BYTES);
    rep__trust_clear(&tr);
    rep__buf_free(&e1);
    rep__buf_free(&e2);
    rep__buf_free(&hb);
    world_free(&w);
}
END_TEST

START_TEST(trust_genesis_must_be_a_self_signed_admin)
{
    rep__store_t *s = store_new("g");
    uint8_t office[REP_OFFICE_ID_BYTES], pk[REP_SIGN_PK_BYTES], sk[REP_SIGN_SK_BYTES];
    uint8_t pk2[REP_SIGN_PK_BYTES], sk2[REP_SIGN_SK_BYTES];
    rep__random(office, sizeof office);
    rep__sign_keypair(pk, sk);
    rep__sign_keypair(pk2, sk2);
    rep__trust_t tr;
    memset(&tr, 0, sizeof tr);
    memcpy(tr.office, office, sizeof office);
    ent_t g = {.count = 13,
               .version = 1,
               .office = office,
               .seq = 1,
               .type = REP_ENTRY_ADD,
               .epoch = 1,
               .device = pk,
               .name = "founder",
               .role = "member",
               .signer = pk,
               .sk = sk};
    rep__buf_t b;
    entry_make(&g, &b); /* a founder that is not an admin */
    CK_RC(accept_in(s, &tr, &b), REP_EAUTH);
    rep__buf_free(&b);
    g.role = "admin", g.signer = pk2, g.sk = sk2; /* signed by another device */
    entry_make(&g, &b);
    CK_RC(accept_in(s, &tr, &b), REP_EAUTH);
    rep__buf_free(&b);
    g.signer = pk, g.sk = sk2; /* claims the founder, signed by another */
    entry_make(&g, &b);
    CK_RC(accept_in(s, &tr, &b), REP_EAUTH);
    rep__buf_free(&b);
    g.sk = sk, g.prev[0] = 1; /* a genesis that follows something */
    entry_make(&g, &b);
    CK_RC(accept_in(s, &tr, &b), REP_EFORK);
    rep__buf_free(&b);
    g.prev[0] = 0, g.seq = 2; /* not the first */
    entry_make(&g, &b);
    CK_RC(accept_in(s, &tr, &b), REP_ESTATE);
    rep__buf_free(&b);
    ck_assert_uint_eq(tr.count, 0);
    /* rep__trust_add founds only with the device itself */
    CK_RC(add_in(s, &tr, pk2, sk2, pk, "founder", "admin"), -EPERM);
    g.seq = 1; /* and the right one is taken */
    entry_make(&g, &b);
    CK_RC(accept_in(s, &tr, &b), 1);
    ck_assert_uint_eq(tr.count, 1);
    rep__buf_free(&b);
    rep__trust_clear(&tr);
    rep__store_close(&s);
}
END_TEST

START_TEST(trust_entry_signed_by_a_non_admin_is_refused)
{
    world_t w;
    world_init(&w, "a");
    uint8_t x_pk[REP_SIGN_PK_BYTES], x_sk[REP_SIGN_SK_BYTES];
    uint8_t s_pk[REP_SIGN_PK_BYTES], s_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(x_pk, x_sk);
    rep__sign_keypair(s_pk, s_sk);

    ent_t e = ent_next(&w, x_pk, "exam-2", "member", w.m_pk, w.m_sk);
    expect_refused(&w, "signed by a member", &e, REP_EAUTH);
    e = ent_next(&w, x_pk, "exam-2", "admin", w.m_pk, w.m_sk);
    expect_refused(&w, "a member making an admin", &e, REP_EAUTH);
    e = ent_next(&w, x_pk, "exam-2", "member", s_pk, s_sk);
    expect_refused(&w, "signed by a stranger", &e, REP_EAUTH);
    e = ent_next(&w, s_pk, "stranger", "admin", s_pk, s_sk);
    expect_refused(&w, "a stranger adding itself", &e, REP_EAUTH);
    CK_RC(add_in(w.s, &w.tr, w.m_pk, w.m_sk, x_pk, "exam-2", "member"), -EPERM);
    CK_RC(add_in(w.s, &w.tr, s_pk, s_sk, x_pk, "exam-2", "member"), -EPERM);
    ck_assert_uint_eq(w.tr.count, 2);

    /* an admin made by an admin may sign */
    CK_OK(add_in(w.s, &w.tr, w.a_pk, w.a_sk, x_pk, "office-mgr", "admin"));
    e = ent_next(&w, s_pk, "exam-3", "member", x_pk, x_sk);
    rep__buf_t b;
    entry_make(&e, &b);
    CK_RC(accept_in(w.s, &w.tr, &b), 1);
    ck_assert_uint_eq(w.tr.count, 4);
    rep__buf_free(&b);
    /* bad names and roles are refused before anything is signed */
    uint8_t y_pk[REP_SIGN_PK_BYTES], y_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(y_pk, y_sk);
    CK_RC(add_in(w.s, &w.tr, w.a_pk, w.a_sk, y_pk, "exam-4", "root"), -EINVAL);
    CK_RC(add_in(w.s, &w.tr, w.a_pk, w.a_sk, y_pk, "", "member"), -EINVAL);
    CK_RC(add_in(w.s, &w.tr, w.a_pk, w.a_sk, w.m_pk, "again", "member"), REP_EEXIST);
    ck_assert_uint_eq(w.tr.count, 4);
    world_free(&w);
}
END_TEST

START_TEST(trust_entry_with_a_bad_signature_is_refused)
{
    world_t w;
    world_init(&w, "a");
    uint8_t x_pk[REP_SIGN_PK_BYTES], x_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(x_pk, x_sk);
    ent_t e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
    rep__buf_t good;
    entry_make(&e, &good);

    /* the admin's name on it, signed by the member */
    e.sk = w.m_sk;
    expect_refused(&w, "signed by another than its signer", &e, REP_EAUTH);

    /* any bit flipped anywhere: refused, the log untouched */
    rep__entry_t d;
    CK_OK(rep__entry_decode(good.p, good.len, &d));
    size_t by_sig = 0;
    for (size_t i = 0; i < good.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            good.p[i] ^= (uint8_t)(1u << bit);
            int rc = accept_in(w.s, &w.tr, &good);
            good.p[i] ^= (uint8_t)(1u << bit);
            if (rc >= 0)
                ck_abort_msg("byte %zu/%zu bit %d flipped: accepted (%d)", i, good.len, bit, rc);
            by_sig += rc == REP_EAUTH;
        }
    ck_assert_uint_ge(by_sig, 8 * REP_SIG_BYTES); /* every bit of the signature, at least */
    ck_assert_uint_eq(w.tr.count, 2);
    rep__trust_t back;
    load(w.s, w.office, &back);
    ck_assert_uint_eq(back.count, 2);
    rep__trust_clear(&back);

    CK_RC(accept_in(w.s, &w.tr, &good), 1); /* untouched, it is taken */
    ck_assert_uint_eq(w.tr.count, 3);
    rep__buf_free(&good);
    world_free(&w);
}
END_TEST

START_TEST(trust_forked_entry_is_refused)
{
    world_t w;
    world_init(&w, "a");
    uint8_t x_pk[REP_SIGN_PK_BYTES], x_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(x_pk, x_sk);

    /* another entry 2, validly signed by the admin, after the same entry 1 */
    rep__buf_t e1;
    rep__buf_init(&e1);
    stored_entry(w.s, 1, &e1);
    ent_t e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
    e.seq = 2;
    rep__hash(e.prev, e1.p, e1.len);
    expect_refused(&w, "another entry 2", &e, REP_EFORK);
    /* the same entry 2 but for one byte of its name: another entry */
    e.device = w.m_pk;
    e.name = "exam-I";
    expect_refused(&w, "entry 2 renamed", &e, REP_EFORK);
    /* an entry 3 that does not follow the head */
    e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
    rep__hash(e.prev, e1.p, e1.len);
    expect_refused(&w, "entry 3 after entry 1", &e, REP_EFORK);
    rep__buf_free(&e1);
    world_free(&w);
}
END_TEST

START_TEST(trust_gap_foreign_office_and_duplicates)
{
    world_t w;
    world_init(&w, "a");
    uint8_t x_pk[REP_SIGN_PK_BYTES], x_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(x_pk, x_sk);

    ent_t e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
    e.seq = 4;
    expect_refused(&w, "entry 4 after 2", &e, REP_ESTATE);
    e.seq = UINT64_MAX;
    expect_refused(&w, "entry 2^64-1", &e, REP_ESTATE);

    uint8_t other[REP_OFFICE_ID_BYTES];
    memcpy(other, w.office, sizeof other);
    other[0] ^= 0x80;
    e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
    e.office = other;
    expect_refused(&w, "another office's next entry", &e, REP_EOFFICE);
    e.seq = 1;
    expect_refused(&w, "another office's genesis", &e, REP_EOFFICE);
    e.seq = 9;
    expect_refused(&w, "another office's entry 9", &e, REP_EOFFICE);

    /* the entries the log has: 0, and nothing changes; with or without a transaction */
    for (uint64_t seq = 1; seq <= 2; seq++) {
        rep__buf_t b;
        rep__buf_init(&b);
        stored_entry(w.s, seq, &b);
        CK_RC(accept_in(w.s, &w.tr, &b), 0);
        CK_RC(rep__trust_accept(&w.tr, NULL, b.p, b.len), 0);
        rep__buf_free(&b);
    }
    ck_assert_uint_eq(w.tr.count, 2);
    ck_assert_uint_eq(w.tr.ndevs, 2);

    /* a device added a second time (a new entry, validly signed) */
    e = ent_next(&w, w.m_pk, "exam-1b", "admin", w.a_pk, w.a_sk);
    expect_refused(&w, "a member added again", &e, REP_ECORRUPT);
    /* an epoch going back */
    rep__buf_t b;
    e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
    e.epoch = 3;
    entry_make(&e, &b);
    CK_RC(accept_in(w.s, &w.tr, &b), 1);
    ck_assert_uint_eq(w.tr.epoch, 3);
    rep__buf_free(&b);
    uint8_t y_pk[REP_SIGN_PK_BYTES], y_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(y_pk, y_sk);
    e = ent_next(&w, y_pk, "exam-3", "member", w.a_pk, w.a_sk);
    e.epoch = 2;
    expect_refused(&w, "an epoch going back", &e, REP_ECORRUPT);

    /* accept_all stops at the first error */
    rep__buf_t es[2];
    e = ent_next(&w, y_pk, "exam-3", "member", w.a_pk, w.a_sk);
    entry_make(&e, &es[0]);
    e.seq = 6;
    entry_make(&e, &es[1]);
    rep__bytes_t v[2] = {{es[0].p, es[0].len}, {es[1].p, es[1].len}};
    CK_RC(rep__trust_accept_all(&w.tr, NULL, v, 2), REP_ESTATE);
    ck_assert_uint_eq(w.tr.count, 4); /* the first was taken (in memory: no transaction) */
    rep__buf_free(&es[0]);
    rep__buf_free(&es[1]);
    world_free(&w);
}
END_TEST

START_TEST(trust_entry_decode_checks_every_field)
{
    world_t w;
    world_init(&w, "a");
    uint8_t x_pk[REP_SIGN_PK_BYTES], x_sk[REP_SIGN_SK_BYTES];
    rep__sign_keypair(x_pk, x_sk);
    static const struct {
        const char *what;
        int field; /* which to change */
        uint64_t v;
        const char *s;
        int want;
    } cases[] = {
        {"version 2", 0, 2, NULL, REP_EVERSION},
        {"version 0", 0, 0, NULL, REP_ECORRUPT},
        {"11 fields", 1, 11, NULL, REP_ECORRUPT},
        {"14 fields", 1, 14, NULL, REP_ECORRUPT},
        {"type 2 with a nil extra", 2, 2, NULL, REP_ECORRUPT},
        {"type 3", 2, 3, NULL, REP_EVERSION},
        {"type 0", 2, 0, NULL, REP_ECORRUPT},
        {"type 256", 2, 256, NULL, REP_ECORRUPT},
        {"seq 0", 3, 0, NULL, REP_ECORRUPT},
        {"epoch 0", 4, 0, NULL, REP_ECORRUPT},
        {"epoch 2^32", 4, UINT64_C(1) << 32, NULL, REP_ECORRUPT},
        {"role root", 5, 0, "root", REP_ECORRUPT},
        {"role Admin", 5, 0, "Admin", REP_ECORRUPT},
        {"an empty name", 6, 0, "", REP_ECORRUPT},
        {"a name not UTF-8", 6, 0, "a\xc0\x80", REP_ECORRUPT},
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(cases); i++) {
        ent_t e = ent_next(&w, x_pk, "exam-2", "member", w.a_pk, w.a_sk);
        switch (cases[i].field) {
        case 0:
            e.version = cases[i].v;
            break;
        case 1:
            e.count = (unsigned)cases[i].v;
            break;
        case 2:
            e.type = cases[i].v;
            break;
        case 3:
            e.seq = cases[i].v;
            break;
        case 4:
            e.epoch = cases[i].v;
            break;
        case 5:
            e.role = cases[i].s;
            break;
        case 6:
            e.name = cases[i].s;
            break;
        }
        rep__buf_t b;
        entry_make(&e, &b);
        rep__entry_t d;
        int rc = rep__entry_decode(b.p, b.len, &d);
        ck_assert_msg(rc == cases[i].want, "%s: decode gave %d, want %d", cases[i].what, rc,
                      cases[i].want);
        rep__buf_free(&b);
        expect_refused(&w, cases[i].what, &e, cases[i].want); /* and accept says the same */
    }
    /* a name of the maximum length, one over; a byte after the entry; every truncation */
    char big[REP_MAX_DEVICE_NAME + 2];
    memset(big, 'n', sizeof big);
    big[REP_MAX_DEVICE_NAME + 1] = 0;
    ent_t e = ent_next(&w, x_pk, big, "member", w.a_pk, w.a_sk);
    expect_refused(&w, "a name one over", &e, REP_ECORRUPT);
    big[REP_MAX_DEVICE_NAME] = 0;
    rep__buf_t b;
    entry_make(&e, &b);
    rep__entry_t d;
    CK_OK(rep__entry_decode(b.p, b.len, &d));
    ck_assert_uint_eq(d.namen, REP_MAX_DEVICE_NAME);
    for (size_t k = 0; k < b.len; k++)
        ck_assert_msg(rep__entry_decode(b.p, k, &d) == REP_ECORRUPT, "a prefix of %zu", k);
    rep__buf_add(&b, (const uint8_t[]){0xc0}, 1);
    CK_RC(rep__entry_decode(b.p, b.len, &d), REP_ECORRUPT);
    rep__buf_free(&b);
    world_free(&w);
}
END_TEST

START_TEST(trust_keys_authors_and_packed_entries)
{
    world_t w;
    world_init(&w, "a");

    /* subkeys of the epoch's key: crypto_kdf with context "replica_", one per purpose */
    const uint8_t *ckp = rep__trust_key(&w.tr, 1, REP_SUBKEY_CHANGE);
    const uint8_t *skp = rep__trust_key(&w.tr, 1, REP_SUBKEY_SNAPSHOT);
    ck_assert_ptr_nonnull(ckp);
    ck_assert_ptr_nonnull(skp);
    uint8_t ck[REP_KEY_BYTES], sk[REP_KEY_BYTES]; /* copies: w.tr's keys move as it grows */
    memcpy(ck, ckp, sizeof ck);
    memcpy(sk, skp, sizeof sk);
    uint8_t want[REP_KEY_BYTES];
    rep__kdf(want, REP_SUBKEY_CHANGE, kdf_ctx, w.key);
    ck_assert_mem_eq(ck, want, REP_KEY_BYTES);
    rep__kdf(want, REP_SUBKEY_SNAPSHOT, kdf_ctx, w.key);
    ck_assert_mem_eq(sk, want, REP_KEY_BYTES);
    ck_assert(memcmp(ck, sk, REP_KEY_BYTES) != 0);
    ck_assert(memcmp(ck, w.key, REP_KEY_BYTES) != 0); /* the office key itself seals nothing */
    ck_assert_ptr_null(rep__trust_key(&w.tr, 2, REP_SUBKEY_CHANGE));

    /* a second epoch; both are loaded back */
    uint8_t key2[REP_KEY_BYTES];
    rep__random(key2, sizeof key2);
    op_ctx_t c = {.tr = &w.tr, .epoch = 2, .key = key2};
    CK_OK(rep__store_write(w.s, key_fn, &c));
    rep__trust_t back;
    load(w.s, w.office, &back);
    ck_assert_uint_eq(back.nkeys, 2);
    ck_assert_mem_eq(rep__trust_key(&back, 1, REP_SUBKEY_CHANGE), ck, REP_KEY_BYTES);
    rep__kdf(want, REP_SUBKEY_CHANGE, kdf_ctx, key2);
    ck_assert_mem_eq(rep__trust_key(&back, 2, REP_SUBKEY_CHANGE), want, REP_KEY_BYTES);

    /* authors: the member whose key derives (actor, incarnation) */
    uint64_t actor = rep__actor_derive(w.m_pk, 3);
    const rep__dev_t *a = rep__trust_author(&back, actor, 3);
    ck_assert_ptr_nonnull(a);
    ck_assert_mem_eq(a->pk, w.m_pk, REP_SIGN_PK_BYTES);
    ck_assert_ptr_eq(rep__trust_author(&back, actor, 3), a); /* remembered */
    ck_assert_ptr_null(rep__trust_author(&back, actor, 4));  /* another incarnation */
    ck_assert_ptr_null(rep__trust_author(&back, actor ^ 1, 3));
    a = rep__trust_author(&back, rep__actor_derive(w.a_pk, 0), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->role, "admin");
    rep__trust_clear(&back);

    /* packed entries after 0 and after 1 rebuild the log elsewhere, entry by entry */
    for (uint64_t after = 0; after <= 2; after++) {
        rep__buf_t packed;
        rep__buf_init(&packed);
        op_ctx_t pc = {.tr = &w.tr, .seq = after, .out = &packed};
        CK_OK(rep__store_read(w.s, pack_fn, &pc));
        rep__rd_t r;
        rep__rd_init(&r, packed.p, packed.len);
        rep__bytes_t *es;
        size_t n;
        CK_OK(rep__rd_bins(&r, &es, &n));
        ck_assert_uint_eq(n, 2 - after);
        ck_assert_uint_eq(rep__rd_left(&r), 0);
        rep__trust_t other;
        memset(&other, 0, sizeof other);
        memcpy(other.office, w.office, sizeof w.office);
        int rc = rep__trust_accept_all(&other, NULL, es, n);
        if (after == 0) {
            CK_OK(rc);
            ck_assert_uint_eq(other.count, 2);
            ck_assert_mem_eq(other.head, w.tr.head, REP_HASH_BYTES);
        } else if (after == 1) {
            CK_RC(rc, REP_ESTATE); /* entry 2 without entry 1 */
        }
        rep__trust_clear(&other);
        free(es);
        rep__buf_free(&packed);
    }
    world_free(&w);
}
END_TEST

/* ---- Sealed envelopes (seal.c) --------------------------------------------------------------- */

/* A message ["note", 7, nonce, sealed, sig] starting at b->p + start. */
static size_t
env_header(rep__buf_t *b)
{
    size_t start = b->len;
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "note", 4);
    msgpack_pack_uint8(&pk, 7);
    return start;
}

/* Read the message back: its header, then the envelope. */
static void
env_read(const uint8_t *p, size_t n, rep__sealed_t *s)
{
    rep__rd_t r;
    rep__rd_init(&r, p, n);
    uint32_t five;
    const char *str;
    uint32_t strn;
    uint64_t seven;
    CK_OK(rep__rd_array(&r, &five));
    CK_OK(rep__rd_str(&r, &str, &strn));
    CK_OK(rep__rd_uint(&r, &seven));
    CK_OK(rep__rd_sealed(&r, p, s));
    ck_assert_uint_eq(rep__rd_left(&r), 0);
}

START_TEST(seal_round_trips_bodies_of_any_size)
{
    uint8_t office[REP_OFFICE_ID_BYTES], key[REP_KEY_BYTES], pk[REP_SIGN_PK_BYTES],
        sk[REP_SIGN_SK_BYTES];
    rep__random(office, sizeof office);
    rep__random(key, sizeof key);
    rep__sign_keypair(pk, sk);
    static const size_t sizes[] = {0, 1, 100, REP_SEAL_ZIP_MIN - 1, REP_SEAL_ZIP_MIN, 100000};
    for (size_t i = 0; i < REP_ARRAY_LEN(sizes); i++) {
        size_t n = sizes[i];
        uint8_t *body = malloc(n ? n : 1);
        for (size_t k = 0; k < n; k++)
            body[k] = (uint8_t)("abcabcabd"[k % 9]);
        rep__buf_t b;
        rep__buf_init(&b);
        rep__buf_add(&b, "prefix", 6); /* the message need not start the buffer */
        size_t start = env_header(&b);
        CK_OK(rep__seal_append(&b, start, office, body, n, key, sk));
        rep__sealed_t s;
        env_read(b.p + start, b.len - start, &s);
        ck_assert_ptr_eq(s.start, b.p + start);
        CK_OK(rep__sealed_verify(&s, office, pk));
        uint8_t *out;
        size_t outn;
        CK_OK(rep__sealed_open(&s, office, key, &out, &outn));
        ck_assert_uint_eq(outn, n);
        if (n)
            ck_assert_mem_eq(out, body, n);
        if (n >= REP_SEAL_ZIP_MIN)
            ck_assert_uint_lt(s.ctn, n); /* compressed under the seal */
        else
            ck_assert_uint_eq(s.ctn, 1 + n + REP_MAC_BYTES);
        rep__wipe(out, outn);
        free(out);

        /* wrong key, office or signer */
        uint8_t other[REP_KEY_BYTES];
        memcpy(other, key, sizeof other);
        other[31] ^= 1;
        out = (uint8_t *)1;
        CK_RC(rep__sealed_open(&s, office, other, &out, &outn), REP_EAUTH);
        ck_assert_ptr_null(out);
        ck_assert_uint_eq(outn, 0);
        office[0] ^= 1;
        CK_RC(rep__sealed_open(&s, office, key, &out, &outn), REP_EAUTH);
        CK_RC(rep__sealed_verify(&s, office, pk), REP_EAUTH);
        office[0] ^= 1;
        uint8_t pk2[REP_SIGN_PK_BYTES], sk2[REP_SIGN_SK_BYTES];
        rep__sign_keypair(pk2, sk2);
        CK_RC(rep__sealed_verify(&s, office, pk2), REP_EAUTH);
        /* the prefix before the message is covered by nothing */
        b.p[0] ^= 0xff;
        CK_OK(rep__sealed_verify(&s, office, pk));
        CK_OK(rep__sealed_open(&s, office, key, &out, &outn));
        free(out);
        /* its header is covered by both */
        b.p[start + 2] ^= 0x20; /* "note" -> "Note" */
        CK_RC(rep__sealed_verify(&s, office, pk), REP_EAUTH);
        CK_RC(rep__sealed_open(&s, office, key, &out, &outn), REP_EAUTH);
        rep__buf_free(&b);
        free(body);
    }
}
END_TEST

START_TEST(seal_reads_only_well_formed_envelopes)
{
    /* nonce, sealed and sig of the right kinds and lengths */
    static const struct {
        size_t nonce, ct, sig;
        int want;
    } cases[] = {
        {24, 17, 64, 0},
        {23, 17, 64, REP_ECORRUPT},
        {25, 17, 64, REP_ECORRUPT},
        {24, 16, 64, REP_ECORRUPT},
        {24, 17, 63, REP_ECORRUPT},
        {24, 17, 65, REP_ECORRUPT},
    };
    uint8_t zeros[128] = {0};
    for (size_t i = 0; i < REP_ARRAY_LEN(cases); i++) {
        rep__buf_t b;
        rep__buf_init(&b);
        msgpack_packer pk;
        rep__packer_init(&pk, &b);
        pack_bin(&pk, zeros, cases[i].nonce);
        pack_bin(&pk, zeros, cases[i].ct);
        pack_bin(&pk, zeros, cases[i].sig);
        rep__rd_t r;
        rep__rd_init(&r, b.p, b.len);
        rep__sealed_t s;
        ck_assert_int_eq(rep__rd_sealed(&r, b.p, &s), cases[i].want);
        rep__rd_init(&r, b.p, b.len - 1); /* and short of a byte */
        CK_RC(rep__rd_sealed(&r, b.p, &s), REP_ECORRUPT);
        rep__buf_free(&b);
    }
    /* a str where a bin belongs */
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_str(&pk, 24);
    msgpack_pack_str_body(&pk, zeros, 24);
    pack_bin(&pk, zeros, 17);
    pack_bin(&pk, zeros, 64);
    rep__rd_t r;
    rep__rd_init(&r, b.p, b.len);
    rep__sealed_t s;
    CK_RC(rep__rd_sealed(&r, b.p, &s), REP_ECORRUPT);
    rep__buf_free(&b);
}
END_TEST

/* ---- One-time codes ------------------------------------------------------------------------ */

START_TEST(code_canon_accepts_any_case_spaces_and_dashes)
{
    char c[REP_CODE_SIZE];
    CK_OK(rep__code_canon("ABCD-EFGH-JKMN", c));
    ck_assert_str_eq(c, "ABCD-EFGH-JKMN");
    CK_OK(rep__code_canon("abcd efgh jkmn", c));
    ck_assert_str_eq(c, "ABCD-EFGH-JKMN");
    CK_OK(rep__code_canon("  aBcDeFgHjKmN  ", c));
    ck_assert_str_eq(c, "ABCD-EFGH-JKMN");
    CK_OK(rep__code_canon("a-b-c-d-e-f-g-h-2-3-4-9", c));
    ck_assert_str_eq(c, "ABCD-EFGH-2349");
    static const char *bad[] = {
        "",
        "ABCD-EFGH-JKM",   /* 11 */
        "ABCD-EFGH-JKMNP", /* 13 */
        "ABCD-EFGH-JKM0",
        "ABCD-EFGH-JKM1", /* zero and one are not in the alphabet */
        "ABCD-EFGH-JKMI",
        "ABCD-EFGH-JKMO", /* nor I and O */
        "ABCD_EFGH_JKMN",
        "ABCD-EFGH-JKM\xc3\xa9",
        "ABCD\tEFGH\tJKMN",
        "------------",
    };
    for (size_t i = 0; i < REP_ARRAY_LEN(bad); i++)
        ck_assert_msg(rep__code_canon(bad[i], c) == -EINVAL, "\"%s\" was taken", bad[i]);

    /* new codes are canonical, of the alphabet, and differ */
    char prev[REP_CODE_SIZE] = "";
    for (int i = 0; i < 200; i++) {
        char code[REP_CODE_SIZE];
        rep__code_new(code);
        ck_assert_uint_eq(strlen(code), REP_CODE_SIZE - 1);
        ck_assert(code[4] == '-' && code[9] == '-');
        CK_OK(rep__code_canon(code, c));
        ck_assert_str_eq(c, code);
        ck_assert_str_ne(code, prev);
        memcpy(prev, code, sizeof prev);
    }
}
END_TEST

/* ---- Provisioning, with replicas --------------------------------------------------------------
 */

static rep_open_opts_t
opts_of(const char *office_name, const char *device_name)
{
    rep_open_opts_t o;
    memset(&o, 0, sizeof o);
    o.flags = REP_OPEN_NOSYNC;
    o.office_name = office_name;
    o.device_name = device_name;
    return o;
}

/* The device of list d named name (asserted present). */
static const rep_device_t *
device_named(const rep_devices_t *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->items[i].name, name) == 0)
            return &d->items[i];
    ck_abort_msg("no device %s", name);
    return NULL;
}

START_TEST(provision_by_a_member_is_refused)
{
    rep_open_opts_t o = opts_of("Main St Clinic", "front-desk");
    rep_replica_t *a, *b;
    CK_OK(tu_replica_create(&a, g_root, "a", &o, NULL));
    o.device_name = NULL;
    CK_OK(tu_replica_create(&b, g_root, "exam-1", &o, a)); /* a member */
    uint8_t *prov = (uint8_t *)1;
    size_t provn = 99;
    CK_RC(rep_replica_provision(b, "exam-2", "member", &prov, &provn), -EPERM);
    ck_assert_ptr_null(prov);
    ck_assert_uint_eq(provn, 0);
    CK_RC(rep_replica_provision(b, "exam-2", "admin", &prov, &provn), -EPERM);
    CK_RC(rep_replica_provision(a, "exam-2", "root", &prov, &provn), -EINVAL);
    CK_RC(rep_replica_provision(a, "", "member", &prov, &provn), -EINVAL);
    CK_RC(rep_replica_provision(a, NULL, "member", &prov, &provn), -EINVAL);
    CK_RC(rep_replica_provision(a, "exam-2", "member", NULL, &provn), -EINVAL);
    /* nothing was written: still two devices, on both */
    rep_devices_t *d;
    CK_OK(rep_replica_devices(a, &d));
    ck_assert_uint_eq(d->n, 2);
    rep_devices_free(&d);
    CK_OK(rep_replica_devices(b, &d));
    ck_assert_uint_eq(d->n, 2);
    ck_assert_str_eq(device_named(d, "exam-1")->role, "member");
    ck_assert_int_eq(device_named(d, "exam-1")->self, 1);
    ck_assert_str_eq(device_named(d, "front-desk")->role, "admin");
    ck_assert_int_eq(device_named(d, "front-desk")->self, 0);
    rep_devices_free(&d);
    rep_replica_close(&b);
    rep_replica_close(&a);
}
END_TEST

START_TEST(provision_opens_a_replica_that_lists_both_devices)
{
    rep_open_opts_t o = opts_of("Main St Clinic", "front-desk");
    rep_replica_t *a;
    CK_OK(tu_replica_create(&a, g_root, "a", &o, NULL));
    rep_devices_t *d;
    CK_OK(rep_replica_devices(a, &d)); /* the founder alone, an admin */
    ck_assert_uint_eq(d->n, 1);
    ck_assert_str_eq(d->items[0].name, "front-desk");
    ck_assert_str_eq(d->items[0].role, "admin");
    ck_assert_int_eq(d->items[0].self, 1);
    char a_id[REP_DEVICE_ID_SIZE];
    memcpy(a_id, d->items[0].id, sizeof a_id);
    rep_devices_free(&d);

    uint8_t *prov;
    size_t provn;
    CK_OK(rep_replica_provision(a, "exam-2", "member", &prov, &provn));
    rep_info_t *ai;
    CK_OK(rep_replica_info(a, &ai));
    uint8_t office[REP_OFFICE_ID_BYTES];
    char *office_name, *device_name;
    CK_OK(rep_provision_info(prov, provn, office, &office_name, &device_name));
    ck_assert_mem_eq(office, ai->office_id, REP_OFFICE_ID_BYTES);
    ck_assert_str_eq(office_name, "Main St Clinic");
    ck_assert_str_eq(device_name, "exam-2");
    free(office_name);
    free(device_name);
    CK_OK(rep_provision_info(prov, provn, NULL, NULL, NULL));

    /* the new replica: the office's, named as enrolled (not as the options say), a member */
    rep_replica_t *c;
    char dir[TU_PATH_MAX];
    ck_assert_int_eq(tu_path(dir, g_root, "c"), 0);
    rep_open_opts_t oc = opts_of(NULL, "ignored");
    oc.flags |= REP_OPEN_CREATE;
    oc.provision = prov;
    oc.provision_len = provn;
    CK_OK(rep_replica_open(&c, dir, &oc));
    rep_info_t *ci;
    CK_OK(rep_replica_info(c, &ci));
    ck_assert_mem_eq(ci->office_id, ai->office_id, REP_OFFICE_ID_BYTES);
    ck_assert_str_eq(ci->office_name, "Main St Clinic");
    ck_assert_str_eq(ci->device_name, "exam-2");
    rep_info_free(&ci);
    rep_info_free(&ai);

    for (int side = 0; side < 2; side++) {
        CK_OK(rep_replica_devices(side ? c : a, &d));
        ck_assert_uint_eq(d->n, 2);
        ck_assert(strcmp(d->items[0].id, d->items[1].id) < 0); /* in id order */
        const rep_device_t *fd = device_named(d, "front-desk"), *ex = device_named(d, "exam-2");
        ck_assert_str_eq(fd->role, "admin");
        ck_assert_str_eq(ex->role, "member");
        ck_assert_str_eq(fd->id, a_id);
        ck_assert_int_eq(fd->self, side == 0);
        ck_assert_int_eq(ex->self, side == 1);
        /* the id is the hex of the Ed25519 key, the CURVE key derived from it */
        uint8_t pk[REP_SIGN_PK_BYTES], curve[32];
        CK_OK(tu_unhex(ex->id, pk, sizeof pk));
        CK_OK(rep__sign_to_curve(pk, NULL, curve, NULL));
        ck_assert_mem_eq(ex->curve_pk, curve, 32);
        rep_devices_free(&d);
    }
    /* the new member may not enroll others */
    uint8_t *p2;
    size_t p2n;
    CK_RC(rep_replica_provision(c, "exam-3", "member", &p2, &p2n), -EPERM);
    rep_replica_close(&c);
    rep_free(prov);
    rep_replica_close(&a);
}
END_TEST

START_TEST(provision_that_does_not_enroll_its_device_is_refused)
{
    rep_open_opts_t o = opts_of("Main St Clinic", "front-desk");
    rep_replica_t *a;
    CK_OK(tu_replica_create(&a, g_root, "a", &o, NULL));
    uint8_t *prov;
    size_t provn;
    CK_OK(rep_replica_provision(a, "exam-2", "member", &prov, &provn));

    /* the same provisioning for another identity */
    rep__provision_t p;
    CK_OK(rep__provision_decode(prov, provn, &p));
    ck_assert(p.has_sk);
    ck_assert_uint_eq(p.nentries, 2);
    ck_assert_uint_eq(p.nkeys, 1);
    ck_assert_uint_eq(p.keys[0].epoch, 1);
    rep__sign_keypair(p.pk, p.sk);
    uint8_t *bad;
    size_t badn;
    CK_OK(rep__provision_encode(&p, &bad, &badn));
    CK_RC(rep_provision_info(bad, badn, NULL, NULL, NULL), REP_EAUTH);
    char dir[TU_PATH_MAX];
    ck_assert_int_eq(tu_path(dir, g_root, "c"), 0);
    rep_open_opts_t oc = opts_of(NULL, NULL);
    oc.flags |= REP_OPEN_CREATE;
    oc.provision = bad;
    oc.provision_len = badn;
    rep_replica_t *c;
    CK_RC(rep_replica_open(&c, dir, &oc), REP_EAUTH);
    ck_assert_ptr_null(c);
    free(bad);

    /* one whose log was tampered with: its entries are checked as they would be arriving */
    rep__provision_clear(&p);
    CK_OK(rep__provision_decode(prov, provn, &p));
    uint8_t *e2 = malloc(p.entries[1].n);
    memcpy(e2, p.entries[1].p, p.entries[1].n);
    e2[p.entries[1].n - 1] ^= 1; /* the admin's signature of entry 2 */
    p.entries[1].p = e2;
    CK_OK(rep__provision_encode(&p, &bad, &badn));
    ck_assert_uint_eq(badn, provn);
    ck_assert_int_eq(tu_path(dir, g_root, "d"), 0);
    oc.provision = bad;
    oc.provision_len = badn;
    CK_RC(rep_replica_open(&c, dir, &oc), REP_EAUTH);
    free(bad);
    free(e2);

    /* or that is not a provisioning at all */
    rep__provision_clear(&p);
    CK_RC(rep_provision_info(prov, provn - 1, NULL, NULL, NULL), REP_ECORRUPT);
    prov[provn / 2] ^= 1; /* the frame's checksum catches it */
    CK_RC(rep_provision_info(prov, provn, NULL, NULL, NULL), REP_ECORRUPT);
    CK_RC(rep__provision_decode(prov, provn, &p), REP_ECORRUPT);
    rep__provision_clear(&p);
    rep_free(prov);
    rep_replica_close(&a);
}
END_TEST

START_TEST(provision_file_round_trips_under_its_code)
{
    rep_open_opts_t o = opts_of("Main St Clinic", "front-desk");
    rep_replica_t *a;
    CK_OK(tu_replica_create(&a, g_root, "a", &o, NULL));
    uint8_t *prov;
    size_t provn;
    CK_OK(rep_replica_provision(a, "exam-2", "member", &prov, &provn));
    static const char data[] = "a snapshot, say";
    char code[REP_CODE_SIZE];
    uint8_t *file;
    size_t filen;
    CK_OK(rep_provision_seal(prov, provn, (const uint8_t *)data, sizeof data, code, &file, &filen));
    ck_assert_uint_eq(strlen(code), REP_CODE_SIZE - 1);
    char canon[REP_CODE_SIZE];
    CK_OK(rep__code_canon(code, canon));
    ck_assert_str_eq(canon, code);
    ck_assert_mem_eq(file, "RPLF", 4);
    ck_assert_uint_eq(file[4], 1);
    ck_assert(memmem(file, filen, prov + 8, 16) == NULL); /* nothing of it shows */

    /* typed in lower case, spaces for dashes */
    char typed[REP_CODE_SIZE + 2];
    snprintf(typed, sizeof typed, " %s ", code);
    for (char *q = typed; *q; q++)
        *q = *q == '-' ? ' ' : (char)((*q >= 'A' && *q <= 'Z') ? *q - 'A' + 'a' : *q);
    uint8_t *p2, *d2;
    size_t p2n, d2n;
    CK_OK(rep_provision_unseal(file, filen, typed, &p2, &p2n, &d2, &d2n));
    ck_assert_uint_eq(p2n, provn);
    ck_assert_mem_eq(p2, prov, provn);
    ck_assert_uint_eq(d2n, sizeof data);
    ck_assert_mem_eq(d2, data, sizeof data);
    rep_free(p2);
    rep_free(d2);

    /* a wrong code (well-formed): REP_EAUTH, nothing handed out */
    char wrong[REP_CODE_SIZE];
    memcpy(wrong, code, sizeof wrong);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    p2 = d2 = (uint8_t *)1;
    CK_RC(rep_provision_unseal(file, filen, wrong, &p2, &p2n, &d2, &d2n), REP_EAUTH);
    ck_assert_ptr_null(p2);
    ck_assert_ptr_null(d2);
    ck_assert_uint_eq(p2n + d2n, 0);

    /* a code that is not one: -EINVAL, before any key is derived */
    static const char *malformed[] = {"", "ABCD-EFGH", "ABCD-EFGH-JKMN-PQRS", "ABCD-EFGH-JKM0",
                                      "abcd-efgh-jkm!"};
    for (size_t i = 0; i < REP_ARRAY_LEN(malformed); i++)
        ck_assert_int_eq(rep_provision_unseal(file, filen, malformed[i], &p2, &p2n, &d2, &d2n),
                         -EINVAL);
    CK_RC(rep_provision_unseal(file, filen, NULL, &p2, &p2n, &d2, &d2n), -EINVAL);

    /* a tampered file: REP_EAUTH (the ciphertext); what is not such a file: no key derived */
    file[filen - 1] ^= 1;
    CK_RC(rep_provision_unseal(file, filen, code, &p2, &p2n, &d2, &d2n), REP_EAUTH);
    file[filen - 1] ^= 1;
    CK_RC(rep_provision_unseal(file, 40, code, &p2, &p2n, &d2, &d2n), REP_ECORRUPT);
    file[0] = 'X';
    CK_RC(rep_provision_unseal(file, filen, code, &p2, &p2n, &d2, &d2n), REP_ECORRUPT);
    file[0] = 'R';
    file[4] = 2;
    CK_RC(rep_provision_unseal(file, filen, code, &p2, &p2n, &d2, &d2n), REP_EVERSION);
    file[4] = 1;
    rep_free(file);

    /* without data; and each seal has its own code */
    char code2[REP_CODE_SIZE];
    CK_OK(rep_provision_seal(prov, provn, NULL, 0, code2, &file, &filen));
    ck_assert_str_ne(code2, code);
    CK_OK(rep_provision_unseal(file, filen, code2, &p2, &p2n, &d2, &d2n));
    ck_assert_uint_eq(d2n, 0);
    ck_assert_mem_eq(p2, prov, provn);
    /* and the replica opens from what came out of the file */
    char dir[TU_PATH_MAX];
    ck_assert_int_eq(tu_path(dir, g_root, "c"), 0);
    rep_open_opts_t oc = opts_of(NULL, NULL);
    oc.flags |= REP_OPEN_CREATE;
    oc.provision = p2;
    oc.provision_len = p2n;
    rep_replica_t *c;
    CK_OK(rep_replica_open(&c, dir, &oc));
    rep_devices_t *d;
    CK_OK(rep_replica_devices(c, &d));
    ck_assert_uint_eq(d->n, 2);
    ck_assert_int_eq(device_named(d, "exam-2")->self, 1);
    rep_devices_free(&d);
    rep_replica_close(&c);
    rep_free(p2);
    rep_free(d2);
    rep_free(file);
    CK_RC(rep_provision_seal(NULL, 0, NULL, 0, code2, &file, &filen), -EINVAL);
    rep_free(prov);
    rep_replica_close(&a);
}
END_TEST

static Suite *
trust_suite(void)
{
    Suite *s = suite_create("trust");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, trust_genesis_is_a_self_signed_admin);
    tcase_add_test(tc, trust_genesis_must_be_a_self_signed_admin);
    tcase_add_test(tc, trust_entry_signed_by_a_non_admin_is_refused);
    tcase_add_test(tc, trust_entry_with_a_bad_signature_is_refused);
    tcase_add_test(tc, trust_forked_entry_is_refused);
    tcase_add_test(tc, trust_gap_foreign_office_and_duplicates);
    tcase_add_test(tc, trust_entry_decode_checks_every_field);
    tcase_add_test(tc, trust_keys_authors_and_packed_entries);
    suite_add_tcase(s, tc);

    tc = tcase_create("seal");
    tcase_add_test(tc, seal_round_trips_bodies_of_any_size);
    tcase_add_test(tc, seal_reads_only_well_formed_envelopes);
    tcase_add_test(tc, code_canon_accepts_any_case_spaces_and_dashes);
    suite_add_tcase(s, tc);

    tc = tcase_create("provision");
    tcase_add_checked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 120); /* a few Argon2id derivations: slow under valgrind */
    tcase_add_test(tc, provision_by_a_member_is_refused);
    tcase_add_test(tc, provision_opens_a_replica_that_lists_both_devices);
    tcase_add_test(tc, provision_that_does_not_enroll_its_device_is_refused);
    tcase_add_test(tc, provision_file_round_trips_under_its_code);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (rep__keys_init() < 0)
        return 1;
    SRunner *sr = srunner_create(trust_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
