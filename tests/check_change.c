/*
 * check_change.c — changes, batches and version vectors as bytes (change.h, seal.h).
 *
 * A change is the msgpack array
 *     [2, epoch, actor, inc, seq, hlc, prev(bin 32), deps[[actor, seq]...],
 *      nonce(bin 24), sealed(bin), sig(bin 64)]
 * whose sealed item holds a flag byte and the body [user, ops[...]] (zstd-compressed when
 * large), under XChaCha20-Poly1305 with office id ‖ header as associated data, and whose sig
 * is the author's Ed25519 signature of BLAKE2b(office id ‖ every byte before it).
 *     op = [type, collection, record, field, kind, value]
 * A batch or a version vector is framed as magic ‖ version ‖ flags ‖ body ‖ checksum.
 *
 * These tests build changes both with rep__change_seal and by hand: the header is written
 * field by field and the body sealed with rep__seal_append (or with a hand-written sealer that
 * follows seal.h), so a test can break one thing at a time. Header damage must fail
 * rep__change_decode; body damage must pass decode and verify, and fail rep__change_open.
 * Every bit of a sealed change is tampered with, and keys, offices, signers and headers are
 * swapped, to check that nothing altered passes decode, verify and open together.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
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
#include "zip.h"

static const uint8_t office[REP_OFFICE_ID_BYTES] = {0x0f, 0xf1, 0xce, 1, 2,  3,  4,  5,
                                                    6,    7,    8,    9, 10, 11, 12, 13};
#define ACTOR       UINT64_C(0x1111222233334444)
#define SENDER      UINT64_C(0x5555666677778888)
#define OFFICE_NAME "Main St Clinic"

/* The author's identity and the change subkey, made once in main() (the forked tests inherit
 * them); a second identity and key for the wrong-key tests. */
static uint8_t g_pk[REP_SIGN_PK_BYTES], g_sk[REP_SIGN_SK_BYTES], g_key[REP_KEY_BYTES];
static uint8_t g_pk2[REP_SIGN_PK_BYTES], g_sk2[REP_SIGN_SK_BYTES], g_key2[REP_KEY_BYTES];

/* ---- Building changes ---------------------------------------------------------------------- */

/* Canonical value bytes, kept for the whole test. */
typedef struct valbuf {
    uint8_t b[64];
    size_t n;
} valbuf_t;

static void
val_str(valbuf_t *v, const char *s)
{
    rep_value_t x = {.type = REP_STRING};
    x.u.s.ptr = s;
    x.u.s.len = strlen(s);
    rep__buf_t b;
    rep__buf_init(&b);
    CK_OK(rep__value_encode(&b, &x));
    ck_assert_uint_le(b.len, sizeof v->b);
    memcpy(v->b, b.p, b.len);
    v->n = b.len;
    rep__buf_free(&b);
}

static void
val_int(valbuf_t *v, int64_t i)
{
    rep_value_t x = {.type = REP_INT};
    x.u.i = i;
    rep__buf_t b;
    rep__buf_init(&b);
    CK_OK(rep__value_encode(&b, &x));
    memcpy(v->b, b.p, b.len);
    v->n = b.len;
    rep__buf_free(&b);
}

/* An op on a register; val is the canonical value of a SET (NULL otherwise). */
static rep__op_t
op_of(uint8_t type, const char *coll, const char *rec, const char *field, const uint8_t *val,
      size_t valn)
{
    rep__op_t op = {.type = type,
                    .kind = REP_KIND_REGISTER,
                    .coll = coll,
                    .rec = rec,
                    .field = field,
                    .val = val,
                    .valn = (uint32_t)valn};
    op.colln = (uint32_t)strlen(coll);
    op.recn = (uint32_t)strlen(rec);
    op.fieldn = (uint32_t)strlen(field);
    return op;
}

/* A change with one op of every register type, deps on two other actors, and a user. */
typedef struct sample {
    valbuf_t phone, age;
    rep_vv_entry_t deps[2];
    rep__op_t ops[4];
    rep__change_t c;
} sample_t;

static void
sample_init(sample_t *s)
{
    memset(s, 0, sizeof *s);
    val_str(&s->phone, "555-0101");
    val_int(&s->age, 41);
    s->deps[0] = (rep_vv_entry_t){3, 9};
    s->deps[1] = (rep_vv_entry_t){UINT64_C(0x9999000000000001), 2};
    s->ops[0] = op_of(REP_OP_SET, "patients", "8812", "phone", s->phone.b, s->phone.n);
    s->ops[1] = op_of(REP_OP_SET, "patients", "8812", "age", s->age.b, s->age.n);
    s->ops[2] = op_of(REP_OP_DEL, "patients", "8812", "fax", NULL, 0);
    s->ops[3] = op_of(REP_OP_CLEAR, "notes", "2024/01/15", "", NULL, 0);
    s->c.epoch = 3;
    s->c.inc = 2;
    s->c.actor = ACTOR;
    s->c.seq = 7;
    s->c.hlc = UINT64_C(0x018cc251f4000003);
    for (int i = 0; i < REP_HASH_BYTES; i++)
        s->c.prev[i] = (uint8_t)(0xa0 + i);
    s->c.deps = s->deps;
    s->c.ndeps = 2;
    s->c.user = "dr.ann";
    s->c.usern = 6;
    s->c.ops = s->ops;
    s->c.nops = 4;
}

/* Seal c for office with key, signed with sk (caller frees). */
static uint8_t *
seal_with(const rep__change_t *c, const uint8_t off[REP_OFFICE_ID_BYTES], const uint8_t *key,
          const uint8_t *sk, size_t *n)
{
    rep__buf_t b;
    rep__buf_init(&b);
    CK_OK(rep__change_seal(&b, c, off, key, sk));
    return rep__buf_take(&b, n);
}

/* Seal c with the test's office, key and author (caller frees). */
static uint8_t *
encode(const rep__change_t *c, size_t *n)
{
    return seal_with(c, office, g_key, g_sk, n);
}

/* Decode, verify and open p: all three must succeed. */
static void
decode_open(const uint8_t *p, size_t n, rep__change_t *c)
{
    CK_OK(rep__change_decode(p, n, c));
    CK_OK(rep__change_verify(c, office, g_pk));
    CK_OK(rep__change_open(c, office, g_key));
}

/* The number of bytes of a msgpack bin header for n bytes (msgpack-c: bin8/16/32). */
static size_t
bin_hdr(size_t n)
{
    return n < 256 ? 2 : n < 65536 ? 3 : 5;
}

/*
 * A change written by hand, field by field, so a test can break one thing: in the header the
 * outer count, the version, epoch, actor, inc, seq, prev's length, deps; in the envelope the
 * lengths of nonce, sealed and sig, or the flag byte; in the body its count, the user, or one
 * op (its element count, type, kind, value).
 */
typedef struct raw_op {
    uint64_t type, kind;
    const char *coll, *rec, *field;
    const uint8_t *val; /* NULL: nil */
    size_t valn;
    unsigned nelems; /* 6, or fewer to leave elements off the end */
} raw_op_t;

typedef enum env_mode {
    ENV_SEAL, /* rep__seal_append */
    ENV_HAND, /* hand_seal(): seal.h written out, with the flag byte of raw.flag */
    ENV_JUNK, /* nonce, sealed and sig of the given lengths, zeros: for decode only */
} env_mode_t;

typedef struct raw {
    /* the header */
    unsigned count; /* outer array: 11 */
    uint64_t version, epoch, actor, inc, seq, hlc;
    size_t prevn; /* 32 */
    const rep_vv_entry_t *deps;
    size_t ndeps;
    /* the envelope */
    env_mode_t env;
    unsigned flag;            /* ENV_HAND: 0 body as is, 1 its zstd frame, else junk */
    size_t noncen, ctn, sign; /* ENV_JUNK */
    size_t trailing;          /* bytes (nil) after the change */
    /* the body */
    unsigned body_count; /* 2 */
    const char *user;
    size_t usern;
    const raw_op_t *ops;
    size_t nops;
    bool body_trailing; /* a nil after the body's array */
} raw_t;

static void
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

/* The body [user, ops[...]] of r, as its fields say. */
static void
raw_body(const raw_t *r, rep__buf_t *b)
{
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, r->body_count);
    pack_str(&pk, r->user, r->usern);
    msgpack_pack_array(&pk, r->nops);
    for (size_t i = 0; i < r->nops; i++) {
        const raw_op_t *op = &r->ops[i];
        msgpack_pack_array(&pk, op->nelems);
        msgpack_pack_uint64(&pk, op->type);
        pack_str(&pk, op->coll, strlen(op->coll));
        pack_str(&pk, op->rec, strlen(op->rec));
        pack_str(&pk, op->field, strlen(op->field));
        msgpack_pack_uint64(&pk, op->kind);
        if (op->nelems >= 6) {
            if (op->val)
                rep__buf_add(b, op->val, op->valn);
            else
                msgpack_pack_nil(&pk);
        }
    }
    if (r->body_trailing)
        msgpack_pack_nil(&pk);
    ck_assert_int_eq(b->err, 0);
}

/* The header of r, up to (not including) the nonce. */
static void
raw_header(const raw_t *r, rep__buf_t *b)
{
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    uint8_t prev[64] = {0};
    msgpack_pack_array(&pk, r->count);
    msgpack_pack_uint64(&pk, r->version);
    msgpack_pack_uint64(&pk, r->epoch);
    msgpack_pack_uint64(&pk, r->actor);
    msgpack_pack_uint64(&pk, r->inc);
    msgpack_pack_uint64(&pk, r->seq);
    msgpack_pack_uint64(&pk, r->hlc);
    pack_bin(&pk, prev, r->prevn);
    msgpack_pack_array(&pk, r->ndeps);
    for (size_t i = 0; i < r->ndeps; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, r->deps[i].actor);
        msgpack_pack_uint64(&pk, r->deps[i].seq);
    }
}

/* seal.h, written out: append nonce, sealed (flag byte ‖ plain, under key with office id ‖
 * the message so far as associated data) and sig (sk's signature of BLAKE2b(office id ‖
 * everything before it)) to the message b holds from its start. */
static void
hand_seal(rep__buf_t *b, uint8_t flag, const uint8_t *plain, size_t plainn, const uint8_t *key,
          const uint8_t *sk)
{
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    uint8_t nonce[REP_NONCE_BYTES];
    rep__random(nonce, sizeof nonce);
    pack_bin(&pk, nonce, sizeof nonce);

    rep__buf_t ad, m;
    rep__buf_init(&ad);
    rep__buf_init(&m);
    rep__buf_add(&ad, office, REP_OFFICE_ID_BYTES);
    rep__buf_add(&ad, b->p, b->len);
    rep__buf_add(&m, &flag, 1);
    rep__buf_add(&m, plain, plainn);
    ck_assert_int_eq(ad.err | m.err, 0);
    uint8_t *ct = malloc(m.len + REP_MAC_BYTES);
    rep__aead_seal(ct, m.p, m.len, ad.p, ad.len, nonce, key);
    pack_bin(&pk, ct, m.len + REP_MAC_BYTES);
    free(ct);
    rep__buf_free(&ad);
    rep__buf_free(&m);

    rep__hasher_t h;
    uint8_t d[REP_HASH_BYTES], sig[REP_SIG_BYTES];
    rep__hasher_init(&h);
    rep__hasher_add(&h, office, REP_OFFICE_ID_BYTES);
    rep__hasher_add(&h, b->p, b->len);
    rep__hasher_final(&h, d);
    rep__sign(sig, d, sizeof d, sk);
    pack_bin(&pk, sig, sizeof sig);
    ck_assert_int_eq(b->err, 0);
}

static uint8_t *
raw_encode(const raw_t *r, size_t *n)
{
    rep__buf_t b, body;
    rep__buf_init(&b);
    rep__buf_init(&body);
    raw_header(r, &b);
    raw_body(r, &body);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    if (r->env == ENV_SEAL) {
        CK_OK(rep__seal_append(&b, 0, office, body.p, body.len, g_key, g_sk));
    } else if (r->env == ENV_HAND) {
        rep__buf_t plain;
        rep__buf_init(&plain);
        if (r->flag == 1)
            CK_OK(rep__zip(&plain, body.p, body.len));
        else
            rep__buf_add(&plain, body.p, body.len);
        hand_seal(&b, (uint8_t)r->flag, plain.p, plain.len, g_key, g_sk);
        rep__buf_free(&plain);
    } else {
        uint8_t *zeros = calloc(1, r->ctn + r->noncen + r->sign + 1);
        pack_bin(&pk, zeros, r->noncen);
        pack_bin(&pk, zeros, r->ctn);
        pack_bin(&pk, zeros, r->sign);
        free(zeros);
    }
    for (size_t i = 0; i < r->trailing; i++)
        msgpack_pack_nil(&pk);
    rep__buf_free(&body);
    ck_assert_int_eq(b.err, 0);
    return rep__buf_take(&b, n);
}

/* A valid hand-made change with one op; tests change one field of it. */
static const uint8_t five[] = {0x05};

static raw_op_t
raw_set(void)
{
    raw_op_t op = {REP_OP_SET, REP_KIND_REGISTER, "patients", "8812", "phone", five, 1, 6};
    return op;
}

static raw_t
raw_change(const raw_op_t *op)
{
    raw_t r = {.count = 11,
               .version = REP_CHANGE_VERSION,
               .epoch = 1,
               .actor = ACTOR,
               .inc = 0,
               .seq = 1,
               .hlc = 1000,
               .prevn = REP_HASH_BYTES,
               .env = ENV_SEAL,
               .body_count = 2,
               .user = "ann",
               .usern = 3,
               .ops = op,
               .nops = 1};
    return r;
}

/* Decode the hand-made change and expect rc from rep__change_decode (header damage). */
static void
expect_decode(const char *what, const raw_t *r, int want)
{
    size_t n;
    uint8_t *p = raw_encode(r, &n);
    rep__change_t c;
    int rc = rep__change_decode(p, n, &c);
    ck_assert_msg(rc == want, "%s: decode gave %d (%s), want %d (%s)", what, rc, rep_strerror(rc),
                  want, rep_strerror(want));
    if (rc == 0) {
        ck_assert_uint_eq(c.nops, 0); /* only the header: the body stays sealed */
        rep__change_clear(&c);
    } else {
        ck_assert_ptr_null(c.deps); /* nothing is left allocated after a failure */
    }
    free(p);
}

/* Decode, verify and open the hand-made change: the header is fine and the seal and the
 * signature hold, so rep__change_open decides (body damage). */
static void
expect_raw(const char *what, const raw_t *r, int want)
{
    size_t n;
    uint8_t *p = raw_encode(r, &n);
    rep__change_t c;
    int rc = rep__change_decode(p, n, &c);
    ck_assert_msg(rc == 0, "%s: decode gave %d (%s)", what, rc, rep_strerror(rc));
    rc = rep__change_verify(&c, office, g_pk);
    ck_assert_msg(rc == 0, "%s: verify gave %d (%s)", what, rc, rep_strerror(rc));
    rc = rep__change_open(&c, office, g_key);
    ck_assert_msg(rc == want, "%s: open gave %d (%s), want %d (%s)", what, rc, rep_strerror(rc),
                  want, rep_strerror(want));
    if (rc != 0) { /* a failed open leaves nothing behind, and the header intact */
        ck_assert_uint_eq(c.nops, 0);
        ck_assert_ptr_null(c.ops);
        ck_assert_ptr_null(c.plain);
        ck_assert_uint_eq(c.seq, r->seq);
    }
    rep__change_clear(&c);
    free(p);
}

/* ---- Changes ------------------------------------------------------------------------------- */

START_TEST(change_round_trips_with_every_field)
{
    sample_t s;
    sample_init(&s);
    size_t n;
    uint8_t *p = encode(&s.c, &n);

    rep__change_t c;
    CK_OK(rep__change_decode(p, n, &c));
    /* the header is public: readable before (and without) the key */
    ck_assert_uint_eq(c.epoch, 3);
    ck_assert_uint_eq(c.inc, 2);
    ck_assert_uint_eq(c.actor, ACTOR);
    ck_assert_uint_eq(c.seq, 7);
    ck_assert_uint_eq(c.hlc, s.c.hlc);
    ck_assert_mem_eq(c.prev, s.c.prev, REP_HASH_BYTES);
    ck_assert_uint_eq(c.ndeps, 2);
    ck_assert_uint_eq(c.deps[0].actor, 3);
    ck_assert_uint_eq(c.deps[0].seq, 9);
    ck_assert_uint_eq(c.deps[1].actor, s.deps[1].actor);
    ck_assert_uint_eq(c.deps[1].seq, 2);
    ck_assert_uint_eq(c.nops, 0);
    ck_assert_ptr_null(c.ops);
    ck_assert_ptr_null(c.user);
    CK_OK(rep__change_verify(&c, office, g_pk));
    CK_OK(rep__change_open(&c, office, g_key));

    ck_assert_uint_eq(c.usern, 6);
    ck_assert_mem_eq(c.user, "dr.ann", 6);
    ck_assert_uint_eq(c.nops, 4);
    for (size_t i = 0; i < 4; i++) {
        const rep__op_t *a = &c.ops[i], *b = &s.ops[i];
        ck_assert_uint_eq(a->type, b->type);
        ck_assert_uint_eq(a->kind, REP_KIND_REGISTER);
        ck_assert_uint_eq(a->colln, b->colln);
        ck_assert_mem_eq(a->coll, b->coll, b->colln);
        ck_assert_uint_eq(a->recn, b->recn);
        ck_assert_mem_eq(a->rec, b->rec, b->recn);
        ck_assert_uint_eq(a->fieldn, b->fieldn);
        ck_assert_mem_eq(a->field, b->field, b->fieldn);
        ck_assert_uint_eq(a->valn, b->valn);
        if (b->valn)
            ck_assert_mem_eq(a->val, b->val, b->valn);
        else
            ck_assert_ptr_null(a->val);
    }
    /* strings and values are views into the opened body, never into the sealed bytes */
    ck_assert_ptr_nonnull(c.plain);
    ck_assert(c.user >= (const char *)c.plain && c.user < (const char *)c.plain + c.plainn);
    ck_assert(c.ops[0].val > c.plain && c.ops[0].val < c.plain + c.plainn);
    ck_assert(memmem(p, n, "555-0101", 8) == NULL); /* nothing of the body shows */
    ck_assert(memmem(p, n, "patients", 8) == NULL);
    ck_assert(memmem(p, n, "dr.ann", 6) == NULL);

    /* the decoder keeps the bytes and their hash: the change's identity */
    ck_assert_ptr_eq(c.bytes, p);
    ck_assert_uint_eq(c.len, n);
    uint8_t h[REP_HASH_BYTES];
    rep__hash(h, p, n);
    ck_assert_mem_eq(c.hash, h, REP_HASH_BYTES);

    /* opening twice is a no-op; closing forgets the body but keeps the header */
    const uint8_t *plain = c.plain;
    CK_OK(rep__change_open(&c, office, g_key));
    ck_assert_ptr_eq(c.plain, plain);
    rep__change_close(&c);
    ck_assert_uint_eq(c.nops, 0);
    ck_assert_ptr_null(c.plain);
    ck_assert_ptr_null(c.user);
    ck_assert_uint_eq(c.seq, 7);
    ck_assert_uint_eq(c.ndeps, 2);
    CK_OK(rep__change_open(&c, office, g_key));
    ck_assert_uint_eq(c.nops, 4);

    /* sealing the decoded change again gives the same header and the same body, under a
     * fresh nonce (so other bytes) */
    size_t n2;
    uint8_t *p2 = encode(&c, &n2);
    ck_assert_uint_eq(n2, n);
    rep__change_t d;
    decode_open(p2, n2, &d);
    ck_assert_uint_eq(d.env.hdr_len, c.env.hdr_len);
    size_t hdr = c.env.hdr_len - bin_hdr(REP_NONCE_BYTES) - REP_NONCE_BYTES;
    ck_assert_mem_eq(p2, p, hdr);
    ck_assert(memcmp(d.env.nonce, c.env.nonce, REP_NONCE_BYTES) != 0);
    ck_assert_uint_eq(d.plainn, c.plainn);
    ck_assert_mem_eq(d.plain, c.plain, c.plainn);
    ck_assert(memcmp(d.hash, c.hash, REP_HASH_BYTES) != 0);

    rep__change_clear(&d);
    rep__change_clear(&c);
    ck_assert_ptr_null(c.ops);
    ck_assert_ptr_null(c.deps);
    ck_assert_ptr_null(c.plain);
    free(p2);
    free(p);
}
END_TEST

START_TEST(change_bytes_follow_the_documented_layout)
{
    /* rep__change_seal and a hand-written encoder of the format in change.h and seal.h agree:
     * the same header, and the same body under the seal */
    valbuf_t v;
    val_str(&v, "555-0101");
    static const rep_vv_entry_t deps[] = {{3, 9}, {5, 1}};
    raw_op_t rops[3] = {
        {REP_OP_SET, REP_KIND_REGISTER, "patients", "8812", "phone", v.b, v.n, 6},
        {REP_OP_DEL, REP_KIND_REGISTER, "patients", "8812", "fax", NULL, 0, 6},
        {REP_OP_CLEAR, REP_KIND_REGISTER, "patients", "77", "", NULL, 0, 6},
    };
    raw_t r = raw_change(rops);
    r.epoch = 4, r.inc = 70000, r.seq = 2, r.hlc = 99, r.deps = deps, r.ndeps = 2, r.nops = 3;
    rep__buf_t rhdr, rbody;
    rep__buf_init(&rhdr);
    rep__buf_init(&rbody);
    raw_header(&r, &rhdr);
    raw_body(&r, &rbody);

    rep__op_t ops[3] = {op_of(REP_OP_SET, "patients", "8812", "phone", v.b, v.n),
                        op_of(REP_OP_DEL, "patients", "8812", "fax", NULL, 0),
                        op_of(REP_OP_CLEAR, "patients", "77", "", NULL, 0)};
    rep__change_t c = {.epoch = 4,
                       .inc = 70000,
                       .actor = ACTOR,
                       .seq = 2,
                       .hlc = 99,
                       .deps = (rep_vv_entry_t *)deps,
                       .ndeps = 2,
                       .user = "ann",
                       .usern = 3,
                       .ops = ops,
                       .nops = 3};
    size_t n;
    uint8_t *p = encode(&c, &n);
    ck_assert_uint_eq(p[0], 0x9b); /* an array of 11 */
    ck_assert_uint_eq(p[1], REP_CHANGE_VERSION);
    ck_assert_uint_eq(p[1], 0x02);
    ck_assert_uint_gt(n, rhdr.len);
    ck_assert_mem_eq(p, rhdr.p, rhdr.len);

    /* then nonce(bin 24), sealed(bin: flag 0 ‖ body, + 16-byte tag), sig(bin 64) */
    size_t at = rhdr.len;
    ck_assert_uint_eq(p[at], 0xc4);
    ck_assert_uint_eq(p[at + 1], REP_NONCE_BYTES);
    const uint8_t *nonce = p + at + 2;
    at += 2 + REP_NONCE_BYTES;
    size_t hdr_len = at;
    size_t ctn = 1 + rbody.len + REP_MAC_BYTES;
    ck_assert_uint_lt(ctn, 256);
    ck_assert_uint_eq(p[at], 0xc4);
    ck_assert_uint_eq(p[at + 1], ctn);
    const uint8_t *ct = p + at + 2;
    at += 2 + ctn;
    size_t signed_len = at;
    ck_assert_uint_eq(p[at], 0xc4);
    ck_assert_uint_eq(p[at + 1], REP_SIG_BYTES);
    const uint8_t *sig = p + at + 2;
    at += 2 + REP_SIG_BYTES;
    ck_assert_uint_eq(at, n);

    /* the seal: XChaCha20-Poly1305 with office id ‖ header ‖ nonce as associated data */
    rep__buf_t ad;
    rep__buf_init(&ad);
    rep__buf_add(&ad, office, REP_OFFICE_ID_BYTES);
    rep__buf_add(&ad, p, hdr_len);
    uint8_t *m = malloc(ctn);
    CK_OK(rep__aead_open(m, ct, ctn, ad.p, ad.len, nonce, g_key));
    ck_assert_uint_eq(m[0], 0); /* not compressed */
    ck_assert_mem_eq(m + 1, rbody.p, rbody.len);
    free(m);
    rep__buf_free(&ad);

    /* the signature: Ed25519 of BLAKE2b-256(office id ‖ every byte before sig) */
    rep__hasher_t h;
    uint8_t d[REP_HASH_BYTES];
    rep__hasher_init(&h);
    rep__hasher_add(&h, office, REP_OFFICE_ID_BYTES);
    rep__hasher_add(&h, p, signed_len);
    rep__hasher_final(&h, d);
    CK_OK(rep__verify(sig, d, sizeof d, g_pk));

    /* and the decoder's views say the same */
    rep__change_t dc;
    CK_OK(rep__change_decode(p, n, &dc));
    ck_assert_uint_eq(dc.env.hdr_len, hdr_len);
    ck_assert_uint_eq(dc.env.signed_len, signed_len);
    ck_assert_ptr_eq(dc.env.start, p);
    ck_assert_ptr_eq(dc.env.nonce, nonce);
    ck_assert_ptr_eq(dc.env.ct, ct);
    ck_assert_uint_eq(dc.env.ctn, ctn);
    ck_assert_ptr_eq(dc.env.sig, sig);
    rep__change_clear(&dc);

    /* a change sealed by hand_seal (seal.h written out) opens with the library */
    r.env = ENV_HAND;
    r.flag = 0;
    expect_raw("sealed by hand", &r, 0);
    r.flag = 1;
    expect_raw("sealed by hand, compressed", &r, 0); /* any size may be compressed */
    rep__buf_free(&rhdr);
    rep__buf_free(&rbody);
    free(p);
}
END_TEST

START_TEST(change_round_trips_values_of_every_type)
{
    rep_value_t vals[6] = {{.type = REP_NULL},   {.type = REP_BOOL},   {.type = REP_INT},
                           {.type = REP_DOUBLE}, {.type = REP_STRING}, {.type = REP_BYTES}};
    vals[1].u.b = 1;
    vals[2].u.i = INT64_MIN;
    vals[3].u.d = -0.0;
    vals[4].u.s.ptr = "\xc3\xa9t\xc3\xa9";
    vals[4].u.s.len = 5;
    vals[5].u.s.ptr = "\x00\xff";
    vals[5].u.s.len = 2;
    rep__buf_t vb[6];
    rep__op_t ops[6];
    static const char *fields[] = {"n", "b", "i", "d", "s", "x"};
    for (int i = 0; i < 6; i++) {
        rep__buf_init(&vb[i]);
        CK_OK(rep__value_encode(&vb[i], &vals[i]));
        ops[i] = op_of(REP_OP_SET, "c", "r", fields[i], vb[i].p, vb[i].len);
    }
    rep__change_t c = {
        .epoch = 1, .actor = 1, .seq = 1, .hlc = 1, .user = "", .ops = ops, .nops = 6};
    size_t n;
    uint8_t *p = encode(&c, &n);
    rep__change_t d;
    decode_open(p, n, &d);
    ck_assert_uint_eq(d.ndeps, 0);
    ck_assert_ptr_null(d.deps);
    ck_assert_uint_eq(d.usern, 0);
    for (int i = 0; i < 6; i++) {
        rep_value_t back;
        CK_OK(rep__value_decode(d.ops[i].val, d.ops[i].valn, &back));
        ck_assert(tu_value_eq(&back, &vals[i]));
        rep__buf_free(&vb[i]);
    }
    rep__change_clear(&d);
    free(p);
}
END_TEST

START_TEST(change_decode_rejects_other_versions)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    expect_decode("version 2", &r, 0);
    r.version = REP_CHANGE_VERSION + 1;
    expect_decode("version 3", &r, REP_EVERSION);
    r.version = 200;
    expect_decode("version 200", &r, REP_EVERSION);
    r.count = 12; /* a newer version may have more fields: still a version error */
    expect_decode("version 200 with 12 fields", &r, REP_EVERSION);
    r.count = 8; /* or fewer */
    expect_decode("version 200 with 8 fields", &r, REP_EVERSION);
    r.count = 11;
    r.version = 1; /* the unsealed changes of format 1 */
    expect_decode("version 1", &r, REP_ECORRUPT);
    r.version = 0;
    expect_decode("version 0", &r, REP_ECORRUPT);
}
END_TEST

START_TEST(change_decode_rejects_zero_or_out_of_range_header_fields)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    r.actor = 0;
    expect_decode("actor 0", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.seq = 0;
    expect_decode("seq 0", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.epoch = 0;
    expect_decode("epoch 0", &r, REP_ECORRUPT);
    r.epoch = UINT32_MAX;
    expect_decode("epoch 2^32-1", &r, 0);
    r.epoch = (uint64_t)UINT32_MAX + 1;
    expect_decode("epoch 2^32", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.inc = UINT32_MAX;
    expect_decode("inc 2^32-1", &r, 0);
    r.inc = (uint64_t)UINT32_MAX + 1;
    expect_decode("inc 2^32", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.seq = UINT64_MAX, r.hlc = UINT64_MAX, r.actor = UINT64_MAX;
    expect_decode("the largest seq, hlc and actor", &r, 0);
}
END_TEST

START_TEST(change_decode_rejects_bad_deps)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    static const rep_vv_entry_t unsorted[] = {{9, 1}, {3, 1}};
    static const rep_vv_entry_t dup[] = {{3, 1}, {3, 2}};
    static const rep_vv_entry_t own[] = {{3, 1}, {ACTOR, 1}};
    static const rep_vv_entry_t zero_seq[] = {{3, 0}};
    static const rep_vv_entry_t zero_actor[] = {{0, 1}};
    static const rep_vv_entry_t zero_actor_first[] = {{0, 1}, {3, 1}};
    static const rep_vv_entry_t good[] = {{3, 1}, {9, 4}};

    r.deps = good, r.ndeps = 2;
    expect_raw("sorted deps", &r, 0);
    r.deps = unsorted, r.ndeps = 2;
    expect_decode("unsorted deps", &r, REP_ECORRUPT);
    r.deps = dup, r.ndeps = 2;
    expect_decode("an actor twice", &r, REP_ECORRUPT);
    r.deps = own, r.ndeps = 2;
    expect_decode("own actor in deps", &r, REP_ECORRUPT);
    r.deps = zero_seq, r.ndeps = 1;
    expect_decode("a dep with seq 0", &r, REP_ECORRUPT);
    r.deps = zero_actor, r.ndeps = 1;
    expect_decode("a dep on actor 0", &r, REP_ECORRUPT); /* the membership log: vv frames only */
    r.deps = zero_actor_first, r.ndeps = 2;
    expect_decode("a dep on actor 0, first", &r, REP_ECORRUPT);
}
END_TEST

START_TEST(change_decode_rejects_a_malformed_envelope)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    r.env = ENV_JUNK;
    r.noncen = REP_NONCE_BYTES, r.ctn = 40, r.sign = REP_SIG_BYTES;
    expect_decode("a well-formed envelope of zeros", &r, 0); /* decode reads only the framing */
    r.noncen = REP_NONCE_BYTES - 1;
    expect_decode("a 23-byte nonce", &r, REP_ECORRUPT);
    r.noncen = REP_NONCE_BYTES + 1;
    expect_decode("a 25-byte nonce", &r, REP_ECORRUPT);
    r.noncen = 12;
    expect_decode("a 12-byte (IETF ChaCha) nonce", &r, REP_ECORRUPT);
    r.noncen = REP_NONCE_BYTES;
    r.sign = REP_SIG_BYTES - 1;
    expect_decode("a 63-byte sig", &r, REP_ECORRUPT);
    r.sign = REP_SIG_BYTES + 1;
    expect_decode("a 65-byte sig", &r, REP_ECORRUPT);
    r.sign = 0;
    expect_decode("an empty sig", &r, REP_ECORRUPT);
    r.sign = REP_SIG_BYTES;
    r.ctn = REP_MAC_BYTES;
    expect_decode("a sealed item of only a tag", &r, REP_ECORRUPT);
    r.ctn = 0;
    expect_decode("an empty sealed item", &r, REP_ECORRUPT);
    r.ctn = REP_MAC_BYTES + 1;
    expect_decode("a tag and a flag byte", &r, 0);

    /* the zeros decode, but neither verify nor open */
    r.ctn = 40;
    size_t n;
    uint8_t *p = raw_encode(&r, &n);
    rep__change_t c;
    CK_OK(rep__change_decode(p, n, &c));
    CK_RC(rep__change_verify(&c, office, g_pk), REP_EAUTH);
    CK_RC(rep__change_open(&c, office, g_key), REP_EAUTH);
    ck_assert_ptr_null(c.plain);
    rep__change_clear(&c);
    free(p);
}
END_TEST

START_TEST(change_open_checks_the_flag_byte)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    r.env = ENV_HAND;
    r.flag = 0;
    expect_raw("flag 0", &r, 0);
    r.flag = 1;
    expect_raw("flag 1, a zstd frame", &r, 0);
    r.flag = 2;
    expect_raw("flag 2", &r, REP_ECORRUPT);
    r.flag = 0x81;
    expect_raw("flag 0x81", &r, REP_ECORRUPT);

    /* flag 1 with what is not a zstd frame */
    rep__buf_t b;
    rep__buf_init(&b);
    raw_header(&r, &b);
    static const uint8_t notzstd[] = {0x92, 0xa0, 0x90};
    hand_seal(&b, 1, notzstd, sizeof notzstd, g_key, g_sk);
    rep__change_t c;
    CK_OK(rep__change_decode(b.p, b.len, &c));
    CK_OK(rep__change_verify(&c, office, g_pk));
    CK_RC(rep__change_open(&c, office, g_key), REP_ECORRUPT);
    rep__change_clear(&c);
    rep__buf_free(&b);
}
END_TEST

START_TEST(change_open_checks_the_body)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    r.body_count = 1;
    expect_raw("a body of 1 item", &r, REP_ECORRUPT);
    r.body_count = 3;
    expect_raw("a body of 3 items", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.body_trailing = true;
    expect_raw("a byte after the body", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.nops = 0;
    expect_raw("no ops", &r, REP_ECORRUPT);

    /* a body that is not an array at all, or is empty */
    static const uint8_t nil[] = {0xc0};
    for (size_t k = 0; k < 2; k++) {
        rep__buf_t b;
        rep__buf_init(&b);
        raw_header(&r, &b);
        CK_OK(rep__seal_append(&b, 0, office, nil, k, g_key, g_sk));
        rep__change_t c;
        CK_OK(rep__change_decode(b.p, b.len, &c));
        CK_OK(rep__change_verify(&c, office, g_pk));
        CK_RC(rep__change_open(&c, office, g_key), REP_ECORRUPT);
        rep__change_clear(&c);
        rep__buf_free(&b);
    }
}
END_TEST

START_TEST(change_decode_checks_each_op_against_its_type)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    expect_raw("a SET with a value", &r, 0);

    op.nelems = 5;
    expect_raw("a SET without a value", &r, REP_ECORRUPT);

    op = raw_set();
    static const uint8_t nil[] = {0xc0};
    op.val = nil;
    expect_raw("a SET of null", &r, 0); /* null is a value */
    static const uint8_t long5[] = {0xcc, 0x05};
    op.val = long5, op.valn = 2;
    expect_raw("a SET of a non-canonical value", &r, REP_ECORRUPT);

    op = raw_set();
    op.type = REP_OP_DEL;
    expect_raw("a DEL with a value", &r, REP_ECORRUPT);
    op.val = NULL;
    expect_raw("a DEL with nil", &r, 0);

    op = raw_set();
    op.type = REP_OP_CLEAR;
    op.val = NULL;
    expect_raw("a CLEAR with a field name", &r, REP_ECORRUPT);
    op.field = "";
    expect_raw("a CLEAR of the record", &r, 0);
    op.val = five;
    expect_raw("a CLEAR with a value", &r, REP_ECORRUPT);

    op = raw_set();
    op.field = "";
    expect_raw("a SET of the existence register", &r, 0);

    /* 4 is INCR, which needs a counter; 8..255 are op types of a newer version */
    static const uint64_t bad_types[] = {0, 4, 256, UINT64_MAX};
    for (size_t i = 0; i < REP_ARRAY_LEN(bad_types); i++) {
        op = raw_set();
        op.type = bad_types[i];
        char what[64];
        snprintf(what, sizeof what, "op type %" PRIu64, bad_types[i]);
        expect_raw(what, &r, REP_ECORRUPT);
    }
    op = raw_set();
    op.type = 255;
    expect_raw("op type 255", &r, REP_EVERSION);
    op.type = 8;
    expect_raw("op type 8", &r, REP_EVERSION);

    op = raw_set();
    op.nelems = 7;
    expect_raw("an op of 7 elements", &r, REP_ECORRUPT);
}
END_TEST

START_TEST(change_decode_checks_kinds)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    op.kind = REP_KIND_COUNTER; /* each op type writes one kind: SET writes registers */
    expect_raw("a SET of a counter", &r, REP_ECORRUPT);
    op.kind = REP_KIND_SET;
    expect_raw("a SET of a set", &r, REP_ECORRUPT);
    op.kind = REP_KIND_LOG;
    expect_raw("a SET of a log", &r, REP_ECORRUPT);
    op.kind = 9;
    expect_raw("kind 9", &r, REP_ECORRUPT);
    op.kind = 0;
    expect_raw("kind 0", &r, REP_ECORRUPT); /* not a kind at all */
}
END_TEST

START_TEST(change_decode_checks_names)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    char big[REP_MAX_RECORD + 2];

    op.coll = "pat/ients";
    expect_raw("a collection containing '/'", &r, REP_ECORRUPT);
    op = raw_set();
    op.rec = "2024/01/15";
    expect_raw("a record id containing '/'", &r, 0);
    op = raw_set();
    op.coll = "";
    expect_raw("an empty collection", &r, REP_ECORRUPT);
    op = raw_set();
    op.rec = "";
    expect_raw("an empty record id", &r, REP_ECORRUPT);
    op = raw_set();
    op.field = "f\xc0\x80";
    expect_raw("a field that is not UTF-8", &r, REP_ECORRUPT);

    memset(big, 'r', sizeof big);
    big[REP_MAX_RECORD] = '\0';
    op = raw_set();
    op.rec = big;
    expect_raw("a record id of the maximum length", &r, 0);
    big[REP_MAX_RECORD] = 'r';
    big[REP_MAX_RECORD + 1] = '\0';
    expect_raw("a record id one over", &r, REP_ECORRUPT);
    big[REP_MAX_FIELD + 1] = '\0';
    op = raw_set();
    op.field = big;
    expect_raw("a field one over", &r, REP_ECORRUPT);
    big[REP_MAX_COLLECTION + 1] = '\0';
    op = raw_set();
    op.coll = big;
    expect_raw("a collection one over", &r, REP_ECORRUPT);

    op = raw_set();
    r.user = big, r.usern = REP_MAX_USER + 1;
    expect_raw("a user one over", &r, REP_ECORRUPT);
    r.user = big, r.usern = REP_MAX_USER;
    expect_raw("a user of the maximum length", &r, 0);
    r.user = "a\0b", r.usern = 3;
    expect_raw("a user with NUL", &r, REP_ECORRUPT);
}
END_TEST

START_TEST(change_decode_rejects_a_malformed_frame)
{
    raw_op_t op = raw_set();
    raw_t r = raw_change(&op);
    r.count = 10;
    expect_decode("10 fields", &r, REP_ECORRUPT);
    r.count = 12;
    expect_decode("12 fields", &r, REP_ECORRUPT);
    r.count = 8; /* the field count of format 1 */
    expect_decode("8 fields", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.prevn = 31;
    expect_decode("a 31-byte prev", &r, REP_ECORRUPT);
    r.prevn = 33;
    expect_decode("a 33-byte prev", &r, REP_ECORRUPT);
    r = raw_change(&op);
    r.trailing = 1;
    expect_decode("a byte after the change", &r, REP_ECORRUPT);

    rep__change_t c;
    static const uint8_t not_array[] = {0x01};
    CK_RC(rep__change_decode(not_array, 1, &c), REP_ECORRUPT);
    CK_RC(rep__change_decode(not_array, 0, &c), REP_ECORRUPT);
}
END_TEST

START_TEST(change_decode_rejects_every_truncation_and_trailing_bytes)
{
    sample_t s;
    sample_init(&s);
    size_t n;
    uint8_t *p = encode(&s.c, &n);
    rep__change_t c;
    for (size_t k = 0; k < n; k++) {
        uint8_t *q = malloc(k ? k : 1); /* exactly k bytes, so a read past them is seen */
        memcpy(q, p, k);
        int rc = rep__change_decode(q, k, &c);
        free(q);
        if (rc != REP_ECORRUPT)
            ck_abort_msg("a prefix of %zu/%zu bytes gave %d", k, n, rc);
    }
    uint8_t *more = malloc(n + 1);
    memcpy(more, p, n);
    more[n] = 0xc0;
    CK_RC(rep__change_decode(more, n + 1, &c), REP_ECORRUPT);
    free(more);
    free(p);
}
END_TEST

START_TEST(change_hash_is_the_hash_of_its_bytes)
{
    sample_t s;
    sample_init(&s);
    size_t n;
    uint8_t *p = encode(&s.c, &n);
    rep__change_t a, b;
    CK_OK(rep__change_decode(p, n, &a));
    uint8_t want[REP_HASH_BYTES];
    rep__hash(want, p, n);
    ck_assert_mem_eq(a.hash, want, REP_HASH_BYTES);

    /* one field different: another hash */
    s.c.hlc++;
    size_t n2;
    uint8_t *p2 = encode(&s.c, &n2);
    CK_OK(rep__change_decode(p2, n2, &b));
    ck_assert(memcmp(a.hash, b.hash, REP_HASH_BYTES) != 0);
    rep__change_clear(&a);
    rep__change_clear(&b);
    free(p);
    free(p2);
}
END_TEST

/* ---- Tampering, keys, offices, signers ----------------------------------------------------- */

/* A change with one SET of a value of n bytes: text that compresses well, or random bytes
 * that do not. */
typedef struct big_change {
    rep__buf_t val;
    rep__op_t op;
    rep__change_t c;
} big_change_t;

static void
big_init(big_change_t *b, size_t n, bool random)
{
    static const char text[] = "the patient called about moving the appointment; ";
    memset(b, 0, sizeof *b);
    char *s = malloc(n ? n : 1);
    rep_value_t v = {.type = random ? REP_BYTES : REP_STRING};
    if (random)
        rep__random(s, n);
    else
        for (size_t i = 0; i < n; i++)
            s[i] = text[i % (sizeof text - 1)];
    v.u.s.ptr = s;
    v.u.s.len = n;
    rep__buf_init(&b->val);
    CK_OK(rep__value_encode(&b->val, &v));
    free(s);
    b->op = op_of(REP_OP_SET, "notes", "8812", "text", b->val.p, b->val.len);
    b->c = (rep__change_t){.epoch = 1,
                           .actor = ACTOR,
                           .seq = 5,
                           .hlc = 12345,
                           .user = "ann",
                           .usern = 3,
                           .ops = &b->op,
                           .nops = 1};
}

static void
big_free(big_change_t *b)
{
    rep__buf_free(&b->val);
}

/* The flag byte under c's seal (opened by hand with key). */
static int
sealed_flag(const rep__change_t *c, const uint8_t *key)
{
    rep__buf_t ad;
    rep__buf_init(&ad);
    rep__buf_add(&ad, office, REP_OFFICE_ID_BYTES);
    rep__buf_add(&ad, c->env.start, c->env.hdr_len);
    uint8_t *m = malloc(c->env.ctn);
    CK_OK(rep__aead_open(m, c->env.ct, c->env.ctn, ad.p, ad.len, c->env.nonce, key));
    int flag = m[0];
    free(m);
    rep__buf_free(&ad);
    return flag;
}

/* Flip each bit of a sealed change in turn: decode, verify with the author's key, or open
 * must refuse it. Which one is as seal.h says: a header, nonce or ciphertext bit that still
 * decodes fails both verify and open (the header and nonce are the seal's associated data);
 * a signature bit fails verify (the seal does not cover it). Variant 0: the sample change;
 * 1: a compressed body. */
START_TEST(change_tampered_anywhere_is_rejected)
{
    sample_t s;
    big_change_t big;
    const rep__change_t *src;
    if (_i == 0) {
        sample_init(&s);
        src = &s.c;
    } else {
        big_init(&big, 2000, false);
        src = &big.c;
    }
    size_t n;
    uint8_t *p = encode(src, &n);
    rep__change_t c0;
    decode_open(p, n, &c0);
    if (_i == 1)
        ck_assert_int_eq(sealed_flag(&c0, g_key), 1);
    const size_t signed_len = c0.env.signed_len;
    const size_t ctn = c0.env.ctn;
    uint8_t *plain0 = malloc(c0.plainn);
    memcpy(plain0, c0.plain, c0.plainn);
    const size_t plainn0 = c0.plainn;
    rep__change_clear(&c0);

    size_t by_decode = 0, by_verify = 0, by_open = 0;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            rep__change_t c;
            int drc = rep__change_decode(p, n, &c);
            if (drc != 0) {
                if (drc != REP_ECORRUPT && drc != REP_EVERSION)
                    ck_abort_msg("byte %zu bit %d: decode gave %d", i, bit, drc);
                by_decode++;
            } else {
                int vrc = rep__change_verify(&c, office, g_pk);
                int orc = rep__change_open(&c, office, g_key);
                if (vrc == 0 && orc == 0)
                    ck_abort_msg("byte %zu/%zu bit %d flipped: decode, verify and open all pass", i,
                                 n, bit);
                if (vrc != REP_EAUTH)
                    ck_abort_msg("byte %zu bit %d: verify gave %d", i, bit, vrc);
                if (i < signed_len && orc != REP_EAUTH)
                    ck_abort_msg("byte %zu bit %d (sealed or associated): open gave %d", i, bit,
                                 orc);
                if (i >= signed_len &&
                    (orc != 0 || c.plainn != plainn0 || memcmp(c.plain, plain0, plainn0) != 0))
                    ck_abort_msg("byte %zu bit %d (signature): open gave %d", i, bit, orc);
                by_verify++;
                by_open += orc != 0;
                rep__change_clear(&c);
            }
            p[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* every bit of the nonce and the ciphertext reached open, of the signature verify */
    ck_assert_uint_ge(by_open, 8 * (REP_NONCE_BYTES + ctn));
    ck_assert_uint_ge(by_verify, 8 * (REP_NONCE_BYTES + ctn + REP_SIG_BYTES));
    ck_assert_uint_eq(by_decode + by_verify, 8 * n);
    rep__change_t c;
    decode_open(p, n, &c); /* untouched, it is fine */
    rep__change_clear(&c);
    free(plain0);
    free(p);
    if (_i == 1)
        big_free(&big);
}
END_TEST

START_TEST(change_needs_the_right_key_office_and_signer)
{
    sample_t s;
    sample_init(&s);
    uint8_t other[REP_OFFICE_ID_BYTES];
    memcpy(other, office, sizeof other);
    other[15] ^= 1;
    size_t n;
    uint8_t *p = encode(&s.c, &n);
    rep__change_t c;
    CK_OK(rep__change_decode(p, n, &c));
    CK_RC(rep__change_open(&c, office, g_key2), REP_EAUTH); /* wrong key */
    ck_assert_uint_eq(c.nops, 0);
    ck_assert_ptr_null(c.plain);
    CK_RC(rep__change_open(&c, other, g_key), REP_EAUTH); /* wrong office: other AD */
    CK_RC(rep__change_verify(&c, other, g_pk), REP_EAUTH);
    CK_RC(rep__change_verify(&c, office, g_pk2), REP_EAUTH); /* another device's key */
    CK_OK(rep__change_verify(&c, office, g_pk));
    CK_OK(rep__change_open(&c, office, g_key));
    ck_assert_uint_eq(c.nops, 4);
    rep__change_clear(&c);
    free(p);

    /* signed by another device: the author's key does not verify it (the seal is the office's
     * and still opens) */
    p = seal_with(&s.c, office, g_key, g_sk2, &n);
    CK_OK(rep__change_decode(p, n, &c));
    CK_RC(rep__change_verify(&c, office, g_pk), REP_EAUTH);
    CK_OK(rep__change_verify(&c, office, g_pk2));
    CK_OK(rep__change_open(&c, office, g_key));
    rep__change_clear(&c);
    free(p);

    /* sealed for another office: neither verifies nor opens as ours */
    p = seal_with(&s.c, other, g_key, g_sk, &n);
    CK_OK(rep__change_decode(p, n, &c));
    CK_RC(rep__change_verify(&c, office, g_pk), REP_EAUTH);
    CK_RC(rep__change_open(&c, office, g_key), REP_EAUTH);
    CK_OK(rep__change_verify(&c, other, g_pk));
    CK_OK(rep__change_open(&c, other, g_key));
    rep__change_clear(&c);
    free(p);

    /* sealed with another key: the signature (over the ciphertext) holds, the seal does not
     * open with ours */
    p = seal_with(&s.c, office, g_key2, g_sk, &n);
    CK_OK(rep__change_decode(p, n, &c));
    CK_OK(rep__change_verify(&c, office, g_pk));
    CK_RC(rep__change_open(&c, office, g_key), REP_EAUTH);
    CK_OK(rep__change_open(&c, office, g_key2));
    rep__change_clear(&c);
    free(p);
}
END_TEST

START_TEST(change_header_swapped_onto_another_body_does_not_open)
{
    sample_t a, b;
    sample_init(&a);
    sample_init(&b);
    b.c.seq = 8;
    b.c.hlc++;
    b.c.user = "dr.bob";
    b.c.nops = 2;
    size_t na, nb;
    uint8_t *pa = encode(&a.c, &na), *pb = encode(&b.c, &nb);
    rep__change_t ca, cb, c;
    CK_OK(rep__change_decode(pa, na, &ca));
    CK_OK(rep__change_decode(pb, nb, &cb));
    const size_t nonce_item = bin_hdr(REP_NONCE_BYTES) + REP_NONCE_BYTES;
    const size_t ha = ca.env.hdr_len - nonce_item, hb = cb.env.hdr_len - nonce_item;

    for (int with_nonce = 0; with_nonce <= 1; with_nonce++) {
        /* a's header (and nonce) on b's sealed body and signature */
        size_t from_a = with_nonce ? ca.env.hdr_len : ha, from_b = with_nonce ? cb.env.hdr_len : hb;
        rep__buf_t x;
        rep__buf_init(&x);
        rep__buf_add(&x, pa, from_a);
        rep__buf_add(&x, pb + from_b, nb - from_b);
        CK_OK(rep__change_decode(x.p, x.len, &c));
        ck_assert_uint_eq(c.seq, 7); /* it reads as a */
        CK_RC(rep__change_verify(&c, office, g_pk), REP_EAUTH);
        CK_RC(rep__change_open(&c, office, g_key), REP_EAUTH);
        rep__change_clear(&c);
        rep__buf_free(&x);
    }

    /* even with a valid signature over the swapped bytes (as a device holding a signing key
     * could make), it does not open: the seal binds the header to the body by itself */
    rep__buf_t x;
    rep__buf_init(&x);
    rep__buf_add(&x, pa, ha);
    rep__buf_add(&x, pb + hb, cb.env.signed_len - hb);
    rep__hasher_t h;
    uint8_t d[REP_HASH_BYTES], sig[REP_SIG_BYTES];
    rep__hasher_init(&h);
    rep__hasher_add(&h, office, REP_OFFICE_ID_BYTES);
    rep__hasher_add(&h, x.p, x.len);
    rep__hasher_final(&h, d);
    rep__sign(sig, d, sizeof d, g_sk);
    msgpack_packer pk;
    rep__packer_init(&pk, &x);
    pack_bin(&pk, sig, sizeof sig);
    CK_OK(rep__change_decode(x.p, x.len, &c));
    CK_OK(rep__change_verify(&c, office, g_pk));
    CK_RC(rep__change_open(&c, office, g_key), REP_EAUTH);
    rep__change_clear(&c);
    rep__buf_free(&x);

    rep__change_clear(&ca);
    rep__change_clear(&cb);
    free(pa);
    free(pb);
}
END_TEST

START_TEST(change_large_bodies_are_compressed_under_the_seal)
{
    big_change_t b;
    big_init(&b, 4000, false);
    size_t n;
    uint8_t *p = encode(&b.c, &n);
    rep__change_t c;
    decode_open(p, n, &c);
    ck_assert_uint_ge(c.plainn, 4000);
    ck_assert_int_eq(sealed_flag(&c, g_key), 1);
    ck_assert_uint_lt(c.env.ctn, c.plainn); /* sealed, it is smaller than the body */
    ck_assert_uint_lt(n, c.plainn);         /* and so is the whole change */
    ck_assert_uint_eq(c.nops, 1);
    ck_assert_uint_eq(c.ops[0].valn, b.val.len);
    ck_assert_mem_eq(c.ops[0].val, b.val.p, b.val.len);
    rep__change_clear(&c);
    free(p);
    big_free(&b);

    /* random bytes do not compress: kept as they are (flag 0) */
    big_init(&b, 4000, true);
    p = encode(&b.c, &n);
    decode_open(p, n, &c);
    ck_assert_int_eq(sealed_flag(&c, g_key), 0);
    ck_assert_uint_eq(c.env.ctn, 1 + c.plainn + REP_MAC_BYTES);
    ck_assert_mem_eq(c.ops[0].val, b.val.p, b.val.len);
    rep__change_clear(&c);
    free(p);
    big_free(&b);

    /* the threshold: under REP_SEAL_ZIP_MIN bytes of body, never compressed; from it, when
     * that is smaller */
    bool under = false, at = false;
    for (size_t len = 400; len < 560; len++) {
        big_init(&b, len, false);
        p = encode(&b.c, &n);
        decode_open(p, n, &c);
        int flag = sealed_flag(&c, g_key);
        if (c.plainn < REP_SEAL_ZIP_MIN) {
            ck_assert_msg(flag == 0, "a body of %zu bytes was compressed", c.plainn);
            ck_assert_uint_eq(c.env.ctn, 1 + c.plainn + REP_MAC_BYTES);
            under |= c.plainn == REP_SEAL_ZIP_MIN - 1;
        } else {
            ck_assert_msg(flag == 1, "a body of %zu bytes was not compressed", c.plainn);
            ck_assert_uint_lt(c.env.ctn, c.plainn);
            at |= c.plainn == REP_SEAL_ZIP_MIN;
        }
        ck_assert_mem_eq(c.ops[0].val, b.val.p, b.val.len);
        rep__change_clear(&c);
        free(p);
        big_free(&b);
    }
    ck_assert(under && at);
}
END_TEST

/* ---- Counter, set and log ops ------------------------------------------------------------------
 */

/* An op of the kind its type writes: INCR counter, ADD/REMOVE set, APPEND log. */
static rep__op_t
kind_op(uint8_t type, const char *field, const valbuf_t *v)
{
    rep__op_t op = op_of(type, "patients", "8812", field, v->b, v->n);
    op.kind = type == REP_OP_INCR     ? REP_KIND_COUNTER
              : type == REP_OP_APPEND ? REP_KIND_LOG
                                      : REP_KIND_SET;
    return op;
}

START_TEST(change_round_trips_incr_add_remove_and_append_with_their_values)
{
    valbuf_t delta, neg, member, num, entry;
    val_int(&delta, 5);
    val_int(&neg, INT64_MIN);
    val_str(&member, "latex");
    val_int(&num, 300);
    val_str(&entry, "called back, left a message");
    rep__op_t ops[] = {
        kind_op(REP_OP_INCR, "visits", &delta),    kind_op(REP_OP_INCR, "visits", &neg),
        kind_op(REP_OP_ADD, "allergies", &member), kind_op(REP_OP_REMOVE, "codes", &num),
        kind_op(REP_OP_APPEND, "notes", &entry),   kind_op(REP_OP_APPEND, "notes", &entry),
    };
    const size_t nops = REP_ARRAY_LEN(ops);
    rep__change_t c = {.epoch = 1,
                       .actor = ACTOR,
                       .seq = 3,
                       .hlc = 77,
                       .user = "ann",
                       .usern = 3,
                       .ops = ops,
                       .nops = nops};
    size_t n;
    uint8_t *p = encode(&c, &n);
    rep__change_t d;
    decode_open(p, n, &d);
    ck_assert_uint_eq(d.nops, nops);
    for (size_t i = 0; i < nops; i++) {
        ck_assert_uint_eq(d.ops[i].type, ops[i].type);
        ck_assert_uint_eq(d.ops[i].kind, ops[i].kind);
        ck_assert_uint_eq(d.ops[i].fieldn, ops[i].fieldn);
        ck_assert_mem_eq(d.ops[i].field, ops[i].field, ops[i].fieldn);
        ck_assert_msg(d.ops[i].valn == ops[i].valn, "op %zu: value of %u bytes, want %u", i,
                      d.ops[i].valn, ops[i].valn);
        ck_assert_mem_eq(d.ops[i].val, ops[i].val, ops[i].valn);
    }
    rep_value_t v;
    CK_OK(rep__value_decode(d.ops[1].val, d.ops[1].valn, &v));
    ck_assert_int_eq(v.type, REP_INT);
    ck_assert_int_eq(v.u.i, INT64_MIN);
    /* and the decoded change seals again to the same header and body */
    size_t n2;
    uint8_t *p2 = encode(&d, &n2);
    ck_assert_uint_eq(n2, n);
    rep__change_t e;
    decode_open(p2, n2, &e);
    ck_assert_uint_eq(e.env.hdr_len, d.env.hdr_len);
    ck_assert_mem_eq(p2, p, d.env.hdr_len - bin_hdr(REP_NONCE_BYTES) - REP_NONCE_BYTES);
    ck_assert_uint_eq(e.plainn, d.plainn);
    ck_assert_mem_eq(e.plain, d.plain, d.plainn);
    rep__change_clear(&e);
    rep__change_clear(&d);
    free(p2);
    free(p);
}
END_TEST

START_TEST(change_bytes_of_incr_add_remove_and_append_follow_the_layout)
{
    valbuf_t delta, member, entry;
    val_int(&delta, -3);
    val_str(&member, "latex");
    val_str(&entry, "note");
    raw_op_t rops[4] = {
        {REP_OP_INCR, REP_KIND_COUNTER, "patients", "8812", "visits", delta.b, delta.n, 6},
        {REP_OP_ADD, REP_KIND_SET, "patients", "8812", "allergies", member.b, member.n, 6},
        {REP_OP_REMOVE, REP_KIND_SET, "patients", "8812", "allergies", member.b, member.n, 6},
        {REP_OP_APPEND, REP_KIND_LOG, "patients", "8812", "notes", entry.b, entry.n, 6},
    };
    raw_t r = raw_change(rops);
    r.seq = 2, r.hlc = 99, r.nops = 4;
    rep__op_t ops[4] = {
        kind_op(REP_OP_INCR, "visits", &delta), kind_op(REP_OP_ADD, "allergies", &member),
        kind_op(REP_OP_REMOVE, "allergies", &member), kind_op(REP_OP_APPEND, "notes", &entry)};
    rep__change_t c = {.epoch = 1,
                       .actor = ACTOR,
                       .seq = 2,
                       .hlc = 99,
                       .user = "ann",
                       .usern = 3,
                       .ops = ops,
                       .nops = 4};
    size_t n;
    uint8_t *p = encode(&c, &n);
    /* the same header, and the same body under the seal */
    rep__buf_t rhdr, rbody;
    rep__buf_init(&rhdr);
    rep__buf_init(&rbody);
    raw_header(&r, &rhdr);
    raw_body(&r, &rbody);
    ck_assert_mem_eq(p, rhdr.p, rhdr.len);
    rep__change_t d;
    decode_open(p, n, &d);
    ck_assert_uint_eq(d.env.hdr_len, rhdr.len + bin_hdr(REP_NONCE_BYTES) + REP_NONCE_BYTES);
    ck_assert_uint_eq(d.plainn, rbody.len);
    ck_assert_mem_eq(d.plain, rbody.p, rbody.len);
    rep__change_clear(&d);
    rep__buf_free(&rhdr);
    rep__buf_free(&rbody);
    free(p);
}
END_TEST

START_TEST(change_decode_checks_incr)
{
    valbuf_t one, str;
    val_int(&one, 1);
    val_str(&str, "1");
    raw_op_t op = {REP_OP_INCR, REP_KIND_COUNTER, "patients", "8812", "visits", one.b, one.n, 6};
    raw_t r = raw_change(&op);
    expect_raw("an INCR of an int", &r, 0);
    static const uint8_t min64[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    op.val = min64, op.valn = sizeof min64;
    expect_raw("an INCR of INT64_MIN", &r, 0);
    static const uint8_t over[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}; /* 2^63: not an int64 */
    op.val = over, op.valn = sizeof over;
    expect_raw("an INCR past INT64_MAX", &r, REP_ECORRUPT);
    static const uint8_t long1[] = {0xd0, 0x01};
    op.val = long1, op.valn = sizeof long1;
    expect_raw("an INCR of a non-canonical int", &r, REP_ECORRUPT);
    op.val = str.b, op.valn = str.n;
    expect_raw("an INCR of a string", &r, REP_ECORRUPT);
    static const uint8_t dbl[] = {0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    op.val = dbl, op.valn = sizeof dbl;
    expect_raw("an INCR of a double", &r, REP_ECORRUPT);
    static const uint8_t yes[] = {0xc3};
    op.val = yes, op.valn = 1;
    expect_raw("an INCR of a bool", &r, REP_ECORRUPT);
    op.val = NULL, op.valn = 0;
    expect_raw("an INCR of nil", &r, REP_ECORRUPT);
    op.val = one.b, op.valn = one.n;
    op.nelems = 5;
    expect_raw("an INCR without a value", &r, REP_ECORRUPT);
    op.nelems = 6;
    static const uint64_t other_kinds[] = {REP_KIND_REGISTER, REP_KIND_SET, REP_KIND_LOG, 0, 9};
    for (size_t i = 0; i < REP_ARRAY_LEN(other_kinds); i++) {
        op.kind = other_kinds[i];
        char what[48];
        snprintf(what, sizeof what, "an INCR of kind %" PRIu64, other_kinds[i]);
        expect_raw(what, &r, REP_ECORRUPT);
    }
    op.kind = REP_KIND_COUNTER;
    op.field = "";
    expect_raw("an INCR of the existence field", &r, REP_ECORRUPT);
}
END_TEST

START_TEST(change_decode_checks_add_and_remove)
{
    valbuf_t member;
    val_str(&member, "latex");
    static const uint8_t types[] = {REP_OP_ADD, REP_OP_REMOVE};
    for (size_t t = 0; t < 2; t++) {
        const char *name = types[t] == REP_OP_ADD ? "ADD" : "REMOVE";
        char what[64];
        raw_op_t op = {types[t],    REP_KIND_SET, "patients", "8812",
                       "allergies", member.b,     member.n,   6};
        raw_t r = raw_change(&op);
        snprintf(what, sizeof what, "an %s of a string", name);
        expect_raw(what, &r, 0);
        op.val = five, op.valn = 1;
        snprintf(what, sizeof what, "an %s of an int", name);
        expect_raw(what, &r, 0);
        op.val = NULL, op.valn = 0; /* nil is the value null: a member like any other */
        snprintf(what, sizeof what, "an %s of null", name);
        expect_raw(what, &r, 0);
        static const uint8_t long5[] = {0xcc, 0x05};
        op.val = long5, op.valn = 2;
        snprintf(what, sizeof what, "an %s of a non-canonical value", name);
        expect_raw(what, &r, REP_ECORRUPT);
        op.val = member.b, op.valn = member.n;
        op.nelems = 5;
        snprintf(what, sizeof what, "an %s without a value", name);
        expect_raw(what, &r, REP_ECORRUPT);
        op.nelems = 6;
        static const uint64_t other_kinds[] = {REP_KIND_REGISTER, REP_KIND_COUNTER, REP_KIND_LOG, 0,
                                               9};
        for (size_t i = 0; i < REP_ARRAY_LEN(other_kinds); i++) {
            op.kind = other_kinds[i];
            snprintf(what, sizeof what, "an %s of kind %" PRIu64, name, other_kinds[i]);
            expect_raw(what, &r, REP_ECORRUPT);
        }
        op.kind = REP_KIND_SET;
        op.field = "";
        snprintf(what, sizeof what, "an %s of the existence field", name);
        expect_raw(what, &r, REP_ECORRUPT);
    }
}
END_TEST

START_TEST(change_decode_checks_append)
{
    valbuf_t entry;
    val_str(&entry, "note");
    raw_op_t op = {REP_OP_APPEND, REP_KIND_LOG, "patients", "8812", "notes", entry.b, entry.n, 6};
    raw_t r = raw_change(&op);
    expect_raw("an APPEND of a string", &r, 0);
    op.val = NULL, op.valn = 0;
    expect_raw("an APPEND of null", &r, 0);
    op.val = entry.b, op.valn = entry.n;
    op.nelems = 5;
    expect_raw("an APPEND without a value", &r, REP_ECORRUPT);
    op.nelems = 6;
    static const uint64_t other_kinds[] = {REP_KIND_REGISTER, REP_KIND_COUNTER, REP_KIND_SET, 0, 9};
    for (size_t i = 0; i < REP_ARRAY_LEN(other_kinds); i++) {
        op.kind = other_kinds[i];
        char what[48];
        snprintf(what, sizeof what, "an APPEND of kind %" PRIu64, other_kinds[i]);
        expect_raw(what, &r, REP_ECORRUPT);
    }
    op.kind = REP_KIND_LOG;
    op.field = "";
    expect_raw("an APPEND of the existence field", &r, REP_ECORRUPT);
    /* and the register ops stay registers-only: a DEL or a CLEAR of a log is corrupt */
    op = (raw_op_t){REP_OP_DEL, REP_KIND_LOG, "patients", "8812", "notes", NULL, 0, 6};
    expect_raw("a DEL of a log", &r, REP_ECORRUPT);
    op = (raw_op_t){REP_OP_CLEAR, REP_KIND_SET, "patients", "8812", "", NULL, 0, 6};
    expect_raw("a CLEAR of a set", &r, REP_ECORRUPT);
}
END_TEST

/* ---- Batches -------------------------------------------------------------------------------- */

/* n distinct encoded changes, some large. */
typedef struct changes {
    uint8_t *p[40];
    size_t n[40];
    size_t count;
} changes_t;

static void
changes_make(changes_t *cs, size_t count)
{
    ck_assert_uint_le(count, REP_ARRAY_LEN(cs->p));
    cs->count = count;
    char *big = malloc(70000 + 1);
    memset(big, 'z', 70000);
    big[70000] = '\0';
    for (size_t i = 0; i < count; i++) {
        size_t len = i == 3 ? 70000 : i == 5 ? 300 : i % 7; /* bin32, bin16 and bin8 frames */
        rep_value_t v = {.type = REP_STRING};
        v.u.s.ptr = big;
        v.u.s.len = len;
        rep__buf_t vb;
        rep__buf_init(&vb);
        CK_OK(rep__value_encode(&vb, &v));
        rep__op_t op = op_of(REP_OP_SET, "c", "r", "f", vb.p, vb.len);
        rep__change_t c = {.epoch = 1,
                           .actor = ACTOR,
                           .seq = i + 1,
                           .hlc = 1000 + i,
                           .user = "u",
                           .usern = 1,
                           .ops = &op,
                           .nops = 1};
        cs->p[i] = encode(&c, &cs->n[i]);
        rep__buf_free(&vb);
    }
    free(big);
}

static void
changes_free(changes_t *cs)
{
    for (size_t i = 0; i < cs->count; i++)
        free(cs->p[i]);
}

/* A batch of the first count changes and the membership entries of entries (a packed array,
 * or NULL for none). */
static uint8_t *
batch_with(const changes_t *cs, size_t count, const rep__buf_t *entries, size_t *n)
{
    rep__batch_writer_t w;
    rep__batch_begin(&w, office, OFFICE_NAME, SENDER);
    for (size_t i = 0; i < count; i++)
        rep__batch_add(&w, cs->p[i], cs->n[i]);
    uint8_t *out;
    CK_OK(rep__batch_end(&w, entries, &out, n));
    return out;
}

static uint8_t *
batch_of(const changes_t *cs, size_t count, size_t *n)
{
    return batch_with(cs, count, NULL, n);
}

/* A packed array of count entries (bins of distinct bytes, as rep__trust_pack_entries writes;
 * a batch does not look inside them). */
static void
entries_make(rep__buf_t *b, size_t count, size_t each)
{
    rep__buf_init(b);
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    msgpack_pack_array(&pk, count);
    uint8_t *e = malloc(each ? each : 1);
    for (size_t i = 0; i < count; i++) {
        memset(e, (int)('a' + i), each);
        pack_bin(&pk, e, each);
    }
    free(e);
    ck_assert_int_eq(b->err, 0);
}

static const size_t batch_counts[] = {0, 1, 2, 17, 40};

START_TEST(batch_round_trips_its_changes)
{
    size_t count = batch_counts[_i];
    changes_t cs;
    changes_make(&cs, count);
    size_t n;
    uint8_t *p = batch_of(&cs, count, &n);
    ck_assert_mem_eq(p, "RPLB", 4);

    rep__batch_t b;
    CK_OK(rep__batch_decode(p, n, &b));
    ck_assert_mem_eq(b.office, office, REP_OFFICE_ID_BYTES);
    ck_assert_uint_eq(b.office_namen, strlen(OFFICE_NAME));
    ck_assert_mem_eq(b.office_name, OFFICE_NAME, strlen(OFFICE_NAME));
    ck_assert_uint_eq(b.sender, SENDER);
    ck_assert_uint_eq(b.n, count);
    for (size_t i = 0; i < count; i++) {
        ck_assert_uint_eq(b.changes[i].n, cs.n[i]);
        ck_assert_mem_eq(b.changes[i].p, cs.p[i], cs.n[i]);
        /* views into the batch, or into its decompressed body */
        const uint8_t *in = b.owned ? b.owned : p, *in_end = b.owned ? NULL : p + n;
        ck_assert(b.changes[i].p > in && (!in_end || b.changes[i].p + b.changes[i].n <= in_end));
        ck_assert_int_eq(b.owned != NULL, (p[5] & REP_FRAME_ZSTD) != 0);
        rep__change_t c;
        decode_open(b.changes[i].p, b.changes[i].n, &c);
        ck_assert_uint_eq(c.seq, i + 1);
        rep__change_clear(&c);
    }
    ck_assert_uint_eq(b.nentries, 0);
    ck_assert_ptr_null(b.entries);
    rep__batch_clear(&b);
    ck_assert_ptr_null(b.changes);
    free(p);
    changes_free(&cs);
}
END_TEST

START_TEST(batch_carries_membership_entries)
{
    changes_t cs;
    changes_make(&cs, 2);
    for (size_t count = 0; count <= 2; count++) { /* with and without changes */
        rep__buf_t entries;
        entries_make(&entries, 3, count == 2 ? 300 : 40); /* bin8 and bin16 entries */
        size_t n;
        uint8_t *p = batch_with(&cs, count, &entries, &n);
        rep__batch_t b;
        CK_OK(rep__batch_decode(p, n, &b));
        ck_assert_uint_eq(b.n, count);
        for (size_t i = 0; i < count; i++)
            ck_assert_mem_eq(b.changes[i].p, cs.p[i], cs.n[i]);
        ck_assert_uint_eq(b.nentries, 3);
        for (size_t i = 0; i < 3; i++) {
            size_t each = count == 2 ? 300 : 40;
            ck_assert_uint_eq(b.entries[i].n, each);
            for (size_t k = 0; k < each; k++)
                ck_assert_uint_eq(b.entries[i].p[k], 'a' + i);
            ck_assert(b.entries[i].p > p && b.entries[i].p + each <= p + n);
        }
        rep__batch_clear(&b);
        ck_assert_ptr_null(b.entries);
        ck_assert_uint_eq(b.nentries, 0);
        free(p);
        rep__buf_free(&entries);
    }

    /* an empty array of entries is the same batch as none */
    rep__buf_t empty;
    entries_make(&empty, 0, 0);
    size_t n1, n2;
    uint8_t *p1 = batch_with(&cs, 2, &empty, &n1), *p2 = batch_of(&cs, 2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(p1, p2, n1);
    free(p1);
    free(p2);
    rep__buf_free(&empty);

    /* many entries make a large body that is compressed like any other */
    rep__buf_t many;
    entries_make(&many, 20, 1000);
    size_t n;
    uint8_t *p = batch_with(&cs, 2, &many, &n);
    ck_assert_int_eq(p[5], REP_FRAME_ZSTD);
    ck_assert_uint_lt(n, many.len);
    rep__batch_t b;
    CK_OK(rep__batch_decode(p, n, &b));
    ck_assert_ptr_nonnull(b.owned);
    ck_assert_uint_eq(b.nentries, 20);
    ck_assert_uint_eq(b.entries[19].n, 1000);
    ck_assert_uint_eq(b.entries[19].p[999], 'a' + 19);
    rep__batch_clear(&b);
    free(p);
    rep__buf_free(&many);
    changes_free(&cs);
}
END_TEST

START_TEST(batch_with_any_flipped_bit_is_corrupt)
{
    changes_t cs;
    changes_make(&cs, 3); /* small changes only: under 1000 bytes of batch */
    rep__buf_t entries;
    entries_make(&entries, 2, 20);
    size_t n;
    uint8_t *p = batch_with(&cs, 3, &entries, &n);
    rep__buf_free(&entries);
    ck_assert_uint_lt(n, 1000);
    rep__batch_t b;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            int rc = rep__batch_decode(p, n, &b);
            p[i] ^= (uint8_t)(1u << bit);
            if (rc != REP_ECORRUPT)
                ck_abort_msg("bit %d of byte %zu/%zu flipped: %d", bit, i, n, rc);
        }
    CK_OK(rep__batch_decode(p, n, &b)); /* untouched, it is fine */
    rep__batch_clear(&b);
    free(p);
    changes_free(&cs);
}
END_TEST

START_TEST(batch_truncated_anywhere_is_corrupt)
{
    changes_t cs;
    changes_make(&cs, 3); /* small: each prefix is hashed whole */
    size_t n;
    uint8_t *p = batch_of(&cs, 3, &n);
    rep__batch_t b;
    for (size_t k = 0; k < n; k++) {
        int rc = rep__batch_decode(p, k, &b);
        if (rc != REP_ECORRUPT)
            ck_abort_msg("a prefix of %zu/%zu bytes gave %d", k, n, rc);
    }
    CK_RC(rep__batch_decode(NULL, 0, &b), REP_ECORRUPT);
    free(p);
    changes_free(&cs);
}
END_TEST

/* A frame around body with a correct checksum, so the body's own checks are reached. */
static uint8_t *
frame(const char magic[4], uint8_t version, uint8_t flags, const uint8_t *body, size_t bodyn,
      size_t *n)
{
    *n = 6 + bodyn + REP_HASH_BYTES;
    uint8_t *p = malloc(*n);
    memcpy(p, magic, 4);
    p[4] = version;
    p[5] = flags;
    if (bodyn)
        memcpy(p + 6, body, bodyn);
    rep__hash(p + 6 + bodyn, p, 6 + bodyn);
    return p;
}

/* A large batch is compressed (flagged, smaller) and round trips; a compressed body that
 * claims to expand past the limit is refused before anything is allocated for it. */
START_TEST(batch_large_bodies_are_compressed)
{
    changes_t cs;
    changes_make(&cs, 40);
    size_t n;
    uint8_t *p = batch_of(&cs, 40, &n);
    size_t raw = 6 + REP_HASH_BYTES;
    for (size_t i = 0; i < 40; i++)
        raw += cs.n[i];
    ck_assert_uint_ge(raw, REP_FRAME_ZIP_MIN);
    ck_assert_int_eq(p[5], REP_FRAME_ZSTD);
    ck_assert_uint_lt(n, raw);
    rep__batch_t b;
    CK_OK(rep__batch_decode(p, n, &b));
    ck_assert_uint_eq(b.n, 40);
    for (size_t i = 0; i < 40; i++)
        ck_assert_mem_eq(b.changes[i].p, cs.p[i], cs.n[i]);
    rep__batch_clear(&b);
    free(p);
    changes_free(&cs);
}
END_TEST

START_TEST(batch_zip_bomb_is_refused)
{
    /* a zstd frame header (single segment, 8-byte content size) declaring 2^40 bytes */
    static const uint8_t bomb[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe4, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
    size_t fn;
    uint8_t *f = frame("RPLB", REP_FRAME_VERSION, REP_FRAME_ZSTD, bomb, sizeof bomb, &fn);
    rep__batch_t b;
    CK_RC(rep__batch_decode(f, fn, &b), REP_ECORRUPT);
    free(f);
}
END_TEST

START_TEST(batch_frame_header_is_checked_after_the_checksum)
{
    changes_t cs;
    changes_make(&cs, 1);
    size_t n;
    uint8_t *p = batch_of(&cs, 1, &n);
    const uint8_t *body = p + 6;
    size_t bodyn = n - 6 - REP_HASH_BYTES;
    rep__batch_t b;

    size_t fn;
    uint8_t *f = frame("RPLB", REP_FRAME_VERSION, 0, body, bodyn, &fn);
    ck_assert_uint_eq(fn, n);
    ck_assert_mem_eq(f, p, n); /* the frame is exactly as change.h describes */
    free(f);

    f = frame("RPLB", REP_FRAME_VERSION + 1, 0, body, bodyn, &fn);
    CK_RC(rep__batch_decode(f, fn, &b), REP_EVERSION);
    free(f);
    f = frame("RPLB", REP_FRAME_VERSION, 2, body, bodyn, &fn); /* a flag of a newer version */
    CK_RC(rep__batch_decode(f, fn, &b), REP_EVERSION);
    free(f);
    f = frame("RPLB", REP_FRAME_VERSION, REP_FRAME_ZSTD, body, bodyn, &fn); /* says zstd, is not */
    CK_RC(rep__batch_decode(f, fn, &b), REP_ECORRUPT);
    free(f);
    f = frame("RPLB", 1, 0, body, bodyn, &fn); /* the unsealed batches of format 1 */
    CK_RC(rep__batch_decode(f, fn, &b), REP_ECORRUPT);
    free(f);
    f = frame("RPLB", 0, 0, body, bodyn, &fn);
    CK_RC(rep__batch_decode(f, fn, &b), REP_ECORRUPT);
    free(f);
    f = frame("RPLV", REP_FRAME_VERSION, 0, body, bodyn, &fn); /* a vv frame is not a batch */
    CK_RC(rep__batch_decode(f, fn, &b), REP_ECORRUPT);
    free(f);
    free(p);
    changes_free(&cs);
}
END_TEST

/* What a hand-written batch body has as its last item: no item (the 4-item body of format 1),
 * an array of that many bin entries, an array holding a str, or nil. */
#define ENTRIES_NONE      (-1)
#define ENTRIES_STR       (-2)
#define ENTRIES_NOT_ARRAY (-3)

/* A batch body written by hand: [office(bin officen), name, sender, [changes...], entries]
 * with nchanges declared; each change is packed as bin, or as str when as_str. */
static uint8_t *
batch_body_e(size_t officen, const char *name, size_t nchanges, size_t present, bool as_str,
             int entries, size_t *n)
{
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, entries == ENTRIES_NONE ? 4 : 5);
    msgpack_pack_bin(&pk, officen);
    msgpack_pack_bin_body(&pk, office, officen);
    msgpack_pack_str(&pk, strlen(name));
    msgpack_pack_str_body(&pk, name, strlen(name));
    msgpack_pack_uint64(&pk, SENDER);
    if (nchanges == UINT32_MAX) { /* array32 header of 4 Gi */
        static const uint8_t hdr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
        rep__buf_add(&b, hdr, sizeof hdr);
    } else {
        msgpack_pack_array(&pk, nchanges);
    }
    for (size_t i = 0; i < present; i++) {
        if (as_str) {
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "x", 1);
        } else {
            msgpack_pack_bin(&pk, 1);
            msgpack_pack_bin_body(&pk, "x", 1);
        }
    }
    if (entries == ENTRIES_STR) {
        msgpack_pack_array(&pk, 1);
        pack_str(&pk, "e", 1);
    } else if (entries == ENTRIES_NOT_ARRAY) {
        msgpack_pack_nil(&pk);
    } else if (entries >= 0) {
        msgpack_pack_array(&pk, (size_t)entries);
        for (int i = 0; i < entries; i++)
            pack_bin(&pk, "e", 1);
    }
    ck_assert_int_eq(b.err, 0);
    return rep__buf_take(&b, n);
}

static uint8_t *
batch_body(size_t officen, const char *name, size_t nchanges, size_t present, bool as_str,
           size_t *n)
{
    return batch_body_e(officen, name, nchanges, present, as_str, 0, n);
}

/* Frame body with a good checksum and decode it: the body's own checks decide. */
static int
decode_body(const uint8_t *body, size_t bodyn)
{
    size_t fn;
    uint8_t *f = frame("RPLB", REP_FRAME_VERSION, 0, body, bodyn, &fn);
    rep__batch_t b;
    int rc = rep__batch_decode(f, fn, &b);
    if (rc == 0)
        rep__batch_clear(&b);
    free(f);
    return rc;
}

START_TEST(batch_body_is_checked_even_with_a_good_checksum)
{
    size_t n;
    uint8_t *body;

    body = batch_body(REP_OFFICE_ID_BYTES, OFFICE_NAME, 2, 2, false, &n);
    CK_OK(decode_body(body, n)); /* the well-formed one */

    /* a byte after the body */
    uint8_t *more = malloc(n + 1);
    memcpy(more, body, n);
    more[n] = 0xc0;
    CK_RC(decode_body(more, n + 1), REP_ECORRUPT);
    free(more);
    free(body);

    /* a count of 4 Gi changes in a few bytes: rejected before anything is allocated */
    body = batch_body(REP_OFFICE_ID_BYTES, OFFICE_NAME, UINT32_MAX, 0, false, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);

    /* three changes declared, two present (and each a byte: the count fits the bytes) */
    body = batch_body(REP_OFFICE_ID_BYTES, OFFICE_NAME, 3, 2, false, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);

    /* a change that is not bin */
    body = batch_body(REP_OFFICE_ID_BYTES, OFFICE_NAME, 1, 1, true, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);

    /* an office id of 15 bytes */
    body = batch_body(15, OFFICE_NAME, 0, 0, false, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);

    /* an empty office name, and one that is not UTF-8 */
    body = batch_body(REP_OFFICE_ID_BYTES, "", 0, 0, false, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);
    body = batch_body(REP_OFFICE_ID_BYTES, "Clinic \xc0\x80", 0, 0, false, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);

    /* the entries: an array of bins, present even when empty */
    body = batch_body_e(REP_OFFICE_ID_BYTES, OFFICE_NAME, 1, 1, false, 3, &n);
    CK_OK(decode_body(body, n));
    free(body);
    body = batch_body_e(REP_OFFICE_ID_BYTES, OFFICE_NAME, 1, 1, false, ENTRIES_NONE, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT); /* the 4-item body of format 1 */
    free(body);
    body = batch_body_e(REP_OFFICE_ID_BYTES, OFFICE_NAME, 1, 1, false, ENTRIES_STR, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);
    body = batch_body_e(REP_OFFICE_ID_BYTES, OFFICE_NAME, 1, 1, false, ENTRIES_NOT_ARRAY, &n);
    CK_RC(decode_body(body, n), REP_ECORRUPT);
    free(body);
}
END_TEST

/* Change sizes at the msgpack bin header boundaries (bin8, bin16, bin32). */
static const size_t next_sizes[] = {0, 1, 100, 255, 256, 1000, 65535, 65536, 100000};

START_TEST(batch_size_with_bounds_the_final_size)
{
    size_t want_n = next_sizes[_i];
    uint8_t *next = calloc(1, want_n ? want_n : 1);
    changes_t cs;
    changes_make(&cs, 2);
    rep__buf_t entries;
    entries_make(&entries, 3, 40);
    for (size_t before = 0; before <= 2; before++) { /* into an empty and a fuller batch */
        rep__batch_writer_t w;
        rep__batch_begin(&w, office, OFFICE_NAME, SENDER);
        for (size_t i = 0; i < before; i++)
            rep__batch_add(&w, cs.p[i], cs.n[i]);
        /* the entries are not counted: the writer adds theirs (exchange.c), and without
         * any, the empty array is one byte */
        size_t predicted = rep__batch_size_with(&w, want_n) + (before == 1 ? entries.len : 1);
        rep__batch_add(&w, next, want_n);
        uint8_t *out;
        size_t n;
        CK_OK(rep__batch_end(&w, before == 1 ? &entries : NULL, &out, &n));
        /* exact before compression; a compressed batch is only ever smaller */
        ck_assert_msg((out[5] & REP_FRAME_ZSTD) ? n < predicted : n == predicted,
                      "a change of %zu bytes after %zu: predicted %zu, got %zu", want_n, before,
                      predicted, n);
        free(out);
    }
    changes_free(&cs);
    rep__buf_free(&entries);
    free(next);
}
END_TEST

/* ---- Version vectors ------------------------------------------------------------------------ */

START_TEST(vv_round_trips)
{
    static const rep_vv_entry_t vv[] = {
        {1, 1}, {3, 70000}, {UINT64_C(0x8000000000000000), 2}, {UINT64_MAX, UINT64_MAX}};
    for (size_t count = 0; count <= REP_ARRAY_LEN(vv); count++) {
        uint8_t *p;
        size_t n;
        CK_OK(rep__vv_encode(office, vv, count, &p, &n));
        ck_assert_mem_eq(p, "RPLV", 4);
        uint8_t got_office[REP_OFFICE_ID_BYTES];
        rep_vv_entry_t *got;
        size_t ngot;
        CK_OK(rep__vv_decode(p, n, got_office, &got, &ngot));
        ck_assert_mem_eq(got_office, office, REP_OFFICE_ID_BYTES);
        ck_assert_uint_eq(ngot, count);
        for (size_t i = 0; i < count; i++) {
            ck_assert_uint_eq(got[i].actor, vv[i].actor);
            ck_assert_uint_eq(got[i].seq, vv[i].seq);
        }
        free(got);
        free(p);
    }
}
END_TEST

START_TEST(vv_may_lead_with_the_membership_log_length)
{
    /* actor 0, first, is the length of the sender's membership log */
    static const rep_vv_entry_t vv[] = {{0, 3}, {7, 1}, {9, 12}};
    for (size_t count = 1; count <= REP_ARRAY_LEN(vv); count++) {
        uint8_t *p;
        size_t n;
        CK_OK(rep__vv_encode(office, vv, count, &p, &n));
        uint8_t o[REP_OFFICE_ID_BYTES];
        rep_vv_entry_t *got;
        size_t ngot;
        CK_OK(rep__vv_decode(p, n, o, &got, &ngot));
        ck_assert_uint_eq(ngot, count);
        ck_assert_uint_eq(got[0].actor, 0);
        ck_assert_uint_eq(got[0].seq, 3);
        for (size_t i = 1; i < count; i++) {
            ck_assert_uint_eq(got[i].actor, vv[i].actor);
            ck_assert_uint_eq(got[i].seq, vv[i].seq);
        }
        free(got);
        free(p);
    }
}
END_TEST

START_TEST(vv_with_any_flipped_bit_or_truncation_is_corrupt)
{
    static const rep_vv_entry_t vv[] = {{1, 5}, {2, 9}};
    uint8_t *p;
    size_t n;
    CK_OK(rep__vv_encode(office, vv, 2, &p, &n));
    uint8_t o[REP_OFFICE_ID_BYTES];
    rep_vv_entry_t *got = (rep_vv_entry_t *)1;
    size_t ngot = 99;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            int rc = rep__vv_decode(p, n, o, &got, &ngot);
            p[i] ^= (uint8_t)(1u << bit);
            if (rc != REP_ECORRUPT || got != NULL || ngot != 0)
                ck_abort_msg("bit %d of byte %zu flipped: %d", bit, i, rc);
        }
    for (size_t k = 0; k < n; k++) {
        int rc = rep__vv_decode(p, k, o, &got, &ngot);
        if (rc != REP_ECORRUPT)
            ck_abort_msg("a prefix of %zu/%zu bytes gave %d", k, n, rc);
    }
    free(p);
}
END_TEST

START_TEST(vv_decode_rejects_unsorted_duplicate_and_zero_entries)
{
    static const rep_vv_entry_t unsorted[] = {{2, 1}, {1, 1}};
    static const rep_vv_entry_t dup[] = {{2, 1}, {2, 3}};
    static const rep_vv_entry_t zero_seq[] = {{2, 0}};
    static const rep_vv_entry_t zero_members[] = {{0, 0}, {2, 1}};
    static const rep_vv_entry_t members_twice[] = {{0, 1}, {0, 2}};
    static const struct {
        const char *what;
        const rep_vv_entry_t *vv;
        size_t n;
    } cases[] = {{"unsorted", unsorted, 2},
                 {"duplicate actor", dup, 2},
                 {"zero seq", zero_seq, 1},
                 {"a membership log of length 0", zero_members, 2},
                 {"the membership log twice", members_twice, 2}};
    for (size_t i = 0; i < REP_ARRAY_LEN(cases); i++) {
        uint8_t *p;
        size_t n;
        CK_OK(rep__vv_encode(office, cases[i].vv, cases[i].n, &p, &n)); /* checksum is good */
        uint8_t o[REP_OFFICE_ID_BYTES];
        rep_vv_entry_t *got;
        size_t ngot;
        int rc = rep__vv_decode(p, n, o, &got, &ngot);
        ck_assert_msg(rc == REP_ECORRUPT, "%s: %d", cases[i].what, rc);
        ck_assert_ptr_null(got);
        free(p);
    }

    /* a batch is not a vv */
    changes_t cs;
    changes_make(&cs, 1);
    size_t n;
    uint8_t *p = batch_of(&cs, 1, &n);
    uint8_t o[REP_OFFICE_ID_BYTES];
    rep_vv_entry_t *got;
    size_t ngot;
    CK_RC(rep__vv_decode(p, n, o, &got, &ngot), REP_ECORRUPT);
    free(p);
    changes_free(&cs);
}
END_TEST

static Suite *
change_suite(void)
{
    Suite *s = suite_create("change");
    TCase *tc = tcase_create("change");
    tcase_add_test(tc, change_round_trips_with_every_field);
    tcase_add_test(tc, change_bytes_follow_the_documented_layout);
    tcase_add_test(tc, change_round_trips_values_of_every_type);
    tcase_add_test(tc, change_decode_rejects_other_versions);
    tcase_add_test(tc, change_decode_rejects_zero_or_out_of_range_header_fields);
    tcase_add_test(tc, change_decode_rejects_bad_deps);
    tcase_add_test(tc, change_decode_rejects_a_malformed_envelope);
    tcase_add_test(tc, change_open_checks_the_flag_byte);
    tcase_add_test(tc, change_open_checks_the_body);
    tcase_add_test(tc, change_decode_checks_each_op_against_its_type);
    tcase_add_test(tc, change_decode_checks_kinds);
    tcase_add_test(tc, change_decode_checks_names);
    tcase_add_test(tc, change_decode_rejects_a_malformed_frame);
    tcase_add_test(tc, change_decode_rejects_every_truncation_and_trailing_bytes);
    tcase_add_test(tc, change_hash_is_the_hash_of_its_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("seal");
    tcase_set_timeout(tc, 60); /* every bit of two changes, verified: slow under valgrind */
    tcase_add_loop_test(tc, change_tampered_anywhere_is_rejected, 0, 2);
    tcase_add_test(tc, change_needs_the_right_key_office_and_signer);
    tcase_add_test(tc, change_header_swapped_onto_another_body_does_not_open);
    tcase_add_test(tc, change_large_bodies_are_compressed_under_the_seal);
    suite_add_tcase(s, tc);

    tc = tcase_create("kinds");
    tcase_add_test(tc, change_round_trips_incr_add_remove_and_append_with_their_values);
    tcase_add_test(tc, change_bytes_of_incr_add_remove_and_append_follow_the_layout);
    tcase_add_test(tc, change_decode_checks_incr);
    tcase_add_test(tc, change_decode_checks_add_and_remove);
    tcase_add_test(tc, change_decode_checks_append);
    suite_add_tcase(s, tc);

    tc = tcase_create("batch");
    tcase_add_loop_test(tc, batch_round_trips_its_changes, 0, (int)REP_ARRAY_LEN(batch_counts));
    tcase_add_test(tc, batch_carries_membership_entries);
    tcase_add_test(tc, batch_with_any_flipped_bit_is_corrupt);
    tcase_add_test(tc, batch_truncated_anywhere_is_corrupt);
    tcase_add_test(tc, batch_frame_header_is_checked_after_the_checksum);
    tcase_add_test(tc, batch_large_bodies_are_compressed);
    tcase_add_test(tc, batch_zip_bomb_is_refused);
    tcase_add_test(tc, batch_body_is_checked_even_with_a_good_checksum);
    tcase_add_loop_test(tc, batch_size_with_bounds_the_final_size, 0,
                        (int)REP_ARRAY_LEN(next_sizes));
    suite_add_tcase(s, tc);

    tc = tcase_create("vv");
    tcase_add_test(tc, vv_round_trips);
    tcase_add_test(tc, vv_may_lead_with_the_membership_log_length);
    tcase_add_test(tc, vv_with_any_flipped_bit_or_truncation_is_corrupt);
    tcase_add_test(tc, vv_decode_rejects_unsorted_duplicate_and_zero_entries);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (rep__keys_init() < 0)
        return 1;
    rep__sign_keypair(g_pk, g_sk);
    rep__sign_keypair(g_pk2, g_sk2);
    rep__random(g_key, sizeof g_key);
    rep__random(g_key2, sizeof g_key2);
    SRunner *sr = srunner_create(change_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
