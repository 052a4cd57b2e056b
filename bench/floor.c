/*
 * floor.c — bench/floor: what the libraries under libreplica can do on their own with W1's
 * data, on this machine, the floor a merge cannot beat (../shared/WORKLOADS.md "Figures that
 * bound it").
 *
 *   bench/floor [--reps N] [--smoke]
 *
 * lmdb       W1's 80,000 final (record, field) values put into a fresh LMDB database in one
 *            write transaction, committed durably (the same code bench/merge divides its merge
 *            time by: floor_lmdb.c), and with MDB_NOSYNC for reference; read back and hashed.
 * msgpack-c  W1's 200,000 writes as [record str, field str, hlc uint, replica uint, value bin]
 *            tuples: packed into one buffer, unpacked one by one (msgpack_unpack_next), every
 *            field compared with the stream.
 * libsodium  reference only (libreplica's changes are not sealed or signed yet): opening
 *            (decrypt + verify) an XChaCha20-Poly1305 message of 1 KiB and of 8 KiB (about one
 *            100-write change), and verifying an Ed25519 signature of a 1 KiB message.
 *
 * Each figure is the median of --reps repetitions (default 5). Exit status 1 when a check fails.
 */
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floor_lmdb.h"
#include "workload.h"

#define MAX_REPS 100

static int g_failed = 0;

static void
check(const char *who, const char *what, int ok, const char *detail)
{
    if (!w_check(who, what, ok, detail))
        g_failed = 1;
}

/* ---- msgpack-c ------------------------------------------------------------------------------- */

#define MP_ACTOR 0x8F3AC2D1E4B5A697ull /* a 64-bit actor id, as libreplica's */
#define MP_INNER 10                    /* passes per repetition: one pass takes a few ms */

typedef struct mp_ctx {
    const w_op_t *ops;
    size_t n;
    char (*rec)[16]; /* "rec:NNNNN" by record */
    msgpack_sbuffer sb;
} mp_ctx_t;

static const char *const FIELD_NAMES[W_F] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"};

static uint64_t
mp_hlc(size_t i)
{
    return ((uint64_t)1764000000000 + i) << 16; /* ms since the epoch << 16, as an HLC */
}

/* Pack every op as a tuple into the (reused) buffer. */
static double
mp_pack(mp_ctx_t *m)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&m->sb);
    msgpack_packer_init(&pk, &m->sb, msgpack_sbuffer_write);
    double t0 = w_now();
    for (size_t i = 0; i < m->n; i++) {
        const w_op_t *o = &m->ops[i];
        msgpack_pack_array(&pk, 5);
        msgpack_pack_str_with_body(&pk, m->rec[o->rec], 9);
        msgpack_pack_str_with_body(&pk, FIELD_NAMES[o->fld], 2);
        msgpack_pack_uint64(&pk, mp_hlc(i));
        msgpack_pack_uint64(&pk, MP_ACTOR);
        msgpack_pack_bin_with_body(&pk, o->val, W_VLEN);
    }
    return w_now() - t0;
}

/* Unpack the tuples one by one (msgpack_unpack_next: a zone per object) and compare each. */
static double
mp_unpack(mp_ctx_t *m, int *ok)
{
    msgpack_unpacked u;
    size_t off = 0, i = 0;
    msgpack_unpacked_init(&u);
    double t0 = w_now();
    while (msgpack_unpack_next(&u, m->sb.data, m->sb.size, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *o = &u.data;
        if (i >= m->n || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 5) {
            *ok = 0;
            break;
        }
        const msgpack_object *e = o->via.array.ptr;
        const w_op_t *op = &m->ops[i];
        if (e[0].type != MSGPACK_OBJECT_STR || e[0].via.str.size != 9 ||
            memcmp(e[0].via.str.ptr, m->rec[op->rec], 9) || e[1].type != MSGPACK_OBJECT_STR ||
            e[1].via.str.size != 2 || memcmp(e[1].via.str.ptr, FIELD_NAMES[op->fld], 2) ||
            e[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[2].via.u64 != mp_hlc(i) ||
            e[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[3].via.u64 != MP_ACTOR ||
            e[4].type != MSGPACK_OBJECT_BIN || e[4].via.bin.size != W_VLEN ||
            memcmp(e[4].via.bin.ptr, op->val, W_VLEN))
            *ok = 0;
        i++;
    }
    double t = w_now() - t0;
    if (i != m->n || off != m->sb.size)
        *ok = 0;
    msgpack_unpacked_destroy(&u);
    return t;
}

/* ---- libsodium (reference) ------------------------------------------------------------------- */

/* Run @p fn until at least @p min_s seconds have passed; returns calls per second. */
static double
rate(int (*fn)(void *), void *ctx, double min_s, int *ok)
{
    size_t calls = 0;
    double t0 = w_now(), t;
    do {
        for (int k = 0; k < 64; k++)
            if (fn(ctx) != 0)
                *ok = 0;
        calls += 64;
    } while ((t = w_now() - t0) < min_s);
    return (double)calls / t;
}

typedef struct aead_ctx {
    unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    unsigned char ad[16];
    unsigned char *msg, *ct, *out;
    size_t len;
    unsigned long long ctlen;
} aead_ctx_t;

static int
aead_open(void *p)
{
    aead_ctx_t *a = p;
    unsigned long long mlen;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(a->out, &mlen, NULL, a->ct, a->ctlen, a->ad,
                                                      sizeof a->ad, a->nonce, a->key);
}

typedef struct sig_ctx {
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sig[crypto_sign_BYTES];
    unsigned char msg[1024];
} sig_ctx_t;

static int
sig_verify(void *p)
{
    sig_ctx_t *s = p;
    return crypto_sign_verify_detached(s->sig, s->msg, sizeof s->msg, s->pk);
}

/* Open rate of an AEAD message of @p len bytes (encrypted once, opened many times). */
static double
aead_open_rate(size_t len, double min_s, int *ok)
{
    aead_ctx_t a;
    a.len = len;
    a.msg = malloc(len);
    a.ct = malloc(len + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    a.out = malloc(len);
    if (!a.msg || !a.ct || !a.out)
        abort();
    randombytes_buf(a.key, sizeof a.key);
    randombytes_buf(a.nonce, sizeof a.nonce);
    randombytes_buf(a.ad, sizeof a.ad);
    randombytes_buf(a.msg, len);
    crypto_aead_xchacha20poly1305_ietf_encrypt(a.ct, &a.ctlen, a.msg, len, a.ad, sizeof a.ad, NULL,
                                               a.nonce, a.key);
    double r = rate(aead_open, &a, min_s, ok);
    if (memcmp(a.out, a.msg, len))
        *ok = 0;
    free(a.msg);
    free(a.ct);
    free(a.out);
    return r;
}

static double
verify_rate(double min_s, int *ok)
{
    sig_ctx_t s;
    crypto_sign_keypair(s.pk, s.sk);
    randombytes_buf(s.msg, sizeof s.msg);
    crypto_sign_detached(s.sig, NULL, s.msg, sizeof s.msg, s.sk);
    return rate(sig_verify, &s, min_s, ok);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench/floor [--reps N] [--smoke]\n"
               "  --reps N   repetitions (default 5); medians are reported\n"
               "  --smoke    tiny sizes (well under a second), for the test suite\n");
}

int
main(int argc, char **argv)
{
    int reps = 5, smoke = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1 || reps > MAX_REPS) {
                fprintf(stderr, "bench/floor: --reps must be 1..%d\n", MAX_REPS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--smoke") || !strcmp(argv[i], "--quick")) {
            smoke = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench/floor: sodium_init failed\n");
        return 1;
    }
    uint32_t R = smoke ? 200 : W_R;
    size_t n = (size_t)R * W_F + (smoke ? 3000 : W1_UPDATES);
    double min_s = smoke ? 0.01 : 0.2;
    if (smoke)
        reps = 1;

    /* the stream and its final state */
    w_op_t *ops = malloc(sizeof *ops * n);
    char *state = w_state_new(R), hex[65], fhex[65], note[160], fig[96];
    if (!ops || !state)
        return 1;
    w_rng_t g = {W_SEED_W1};
    for (size_t i = 0; i < n; i++) {
        w_w1_op(&g, R, i, &ops[i]);
        memcpy(w_state_at(state, ops[i].rec, ops[i].fld), ops[i].val, W_VLEN);
    }
    w_state_hash(state, R, hex);
    if (!smoke)
        check("lmdb", "W1 stream state hash == WORKLOADS.md", !strcmp(hex, W_W1_STATE_SHA256), hex);

    /* lmdb */
    char *tmp = w_tmpdir();
    if (!tmp) {
        perror("bench/floor: mkdtemp");
        return 1;
    }
    double t_sync[MAX_REPS], t_nosync[MAX_REPS];
    int lmdb_ok = 1;
    for (int i = 0; i < reps; i++) {
        if ((t_sync[i] = floor_lmdb_final(tmp, state, R, 0, fhex)) < 0)
            return 1;
        lmdb_ok &= !strcmp(fhex, hex);
        if ((t_nosync[i] = floor_lmdb_final(tmp, state, R, 1, fhex)) < 0)
            return 1;
        lmdb_ok &= !strcmp(fhex, hex);
    }
    w_rmtree(tmp);
    free(tmp);
    check("lmdb", "W1 final state read back == expected", lmdb_ok, fhex);
    double ts = w_median(t_sync, reps), tn = w_median(t_nosync, reps);
    size_t nv = (size_t)R * W_F;
    snprintf(fig, sizeof fig, "final-state %zu puts, 1 txn, sync", nv);
    snprintf(note, sizeof note, "t=%.1f ms incl. commit (bench/merge's floor)", ts * 1e3);
    w_result("lmdb", "W1", fig, (double)nv / ts, "puts/s", note);
    snprintf(fig, sizeof fig, "final-state %zu puts, 1 txn, nosync", nv);
    snprintf(note, sizeof note, "t=%.1f ms incl. commit", tn * 1e3);
    w_result("lmdb", "W1", fig, (double)nv / tn, "puts/s", note);

    /* msgpack-c */
    mp_ctx_t m = {ops, n, malloc(sizeof *m.rec * R), {0}};
    if (!m.rec)
        return 1;
    for (uint32_t r = 0; r < R; r++)
        snprintf(m.rec[r], sizeof m.rec[r], "rec:%05u", (unsigned)r);
    msgpack_sbuffer_init(&m.sb);
    double pk[MAX_REPS], up[MAX_REPS], both[MAX_REPS];
    int mp_ok = 1;
    (void)mp_pack(&m); /* the buffer grows once, untimed */
    for (int i = 0; i < reps; i++) {
        pk[i] = up[i] = 0;
        for (int k = 0; k < MP_INNER; k++) {
            pk[i] += mp_pack(&m) / MP_INNER;
            up[i] += mp_unpack(&m, &mp_ok) / MP_INNER;
        }
        both[i] = pk[i] + up[i];
    }
    size_t mp_bytes = m.sb.size;
    msgpack_sbuffer_destroy(&m.sb);
    free(m.rec);
    snprintf(note, sizeof note, "%zu tuples equal", n);
    check("msgpack-c", "W1 op stream round-trips", mp_ok, note);
    double tp = w_median(pk, reps), tu = w_median(up, reps), tb = w_median(both, reps);
    snprintf(note, sizeof note, "%zu bytes total", mp_bytes);
    w_result("msgpack-c", "W1", "encoded bytes per op", (double)mp_bytes / (double)n, "B/op", note);
    snprintf(fig, sizeof fig, "pack %zu op tuples", n);
    snprintf(note, sizeof note, "t=%.1f ms", tp * 1e3);
    w_result("msgpack-c", "W1", fig, (double)n / tp, "ops/s", note);
    snprintf(fig, sizeof fig, "unpack %zu op tuples (unpack_next)", n);
    snprintf(note, sizeof note, "t=%.1f ms, zone per object, every field checked", tu * 1e3);
    w_result("msgpack-c", "W1", fig, (double)n / tu, "ops/s", note);
    snprintf(fig, sizeof fig, "pack+unpack %zu op tuples", n);
    snprintf(note, sizeof note, "t=%.1f ms", tb * 1e3);
    w_result("msgpack-c", "W1", fig, (double)n / tb, "ops/s", note);

    /* libsodium, reference */
    double o1[MAX_REPS], o8[MAX_REPS], vf[MAX_REPS];
    int na_ok = 1;
    for (int i = 0; i < reps; i++) {
        o1[i] = aead_open_rate(1024, min_s, &na_ok);
        o8[i] = aead_open_rate(8192, min_s, &na_ok);
        vf[i] = verify_rate(min_s, &na_ok);
    }
    check("libsodium", "every open and verify succeeded", na_ok, "");
    double r1 = w_median(o1, reps), r8 = w_median(o8, reps), rv = w_median(vf, reps);
    const char *ref = "reference: changes are not sealed yet";
    snprintf(note, sizeof note, "%.0f MB/s plaintext; %s", r1 * 1024 / 1e6, ref);
    w_result("libsodium", "crypto", "aead xchacha20poly1305 open 1KiB", r1, "msgs/s", note);
    snprintf(note, sizeof note, "%.0f MB/s plaintext; %s", r8 * 8192 / 1e6, ref);
    w_result("libsodium", "crypto", "aead xchacha20poly1305 open 8KiB", r8, "msgs/s", note);
    w_result("libsodium", "crypto", "ed25519 verify (1KiB msg)", rv, "verifies/s",
             "reference: changes are not signed yet");

    printf("\nbench/floor: %s, %d rep(s), medians\n", smoke ? "SMOKE sizes" : "W1", reps);
    printf("lmdb       %zu final values, 1 txn, durable  %6.1f ms  (%.0f puts/s; nosync %.1f ms)\n",
           nv, ts * 1e3, (double)nv / ts, tn * 1e3);
    printf("msgpack-c  %zu op tuples, %.1f B each: pack %.1f ms, unpack %.1f ms (%.0f ops/s "
           "both)\n",
           n, (double)mp_bytes / (double)n, tp * 1e3, tu * 1e3, (double)n / tb);
    printf("libsodium  (reference) open 1 KiB %.0f/s, 8 KiB %.0f/s; ed25519 verify %.0f/s\n", r1,
           r8, rv);
    printf("%s\n", g_failed ? "FAILED: see the CHECK lines" : "all checks passed");
    free(ops);
    free(state);
    return g_failed ? 1 : 0;
}
