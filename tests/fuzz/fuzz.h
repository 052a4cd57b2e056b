/* fuzz.h — what the libFuzzer targets of tests/fuzz/ share (and tests/fuzz/seeds, which writes
 * their seed corpus).
 *
 * Frames (batches, version vectors, snapshots, provisionings) end with a BLAKE2b-256 checksum
 * of the bytes before it, so a mutated input almost never gets past the check. Frame targets
 * therefore decode each input twice: as it is, and as fuzz_refit() makes it (the same bytes
 * with the checksum recomputed), which lets the fuzzer reach the body parsers.
 *
 * Changes and snapshots are sealed and signed (seal.h), and only members' changes of the
 * replica's own office are taken, so the targets work in one real office, the seeds' office:
 * tests/fuzz/seeds DIR founds it (device "front-desk", an admin), enrolls "nurse", "peer",
 * "fuzzer" and then "laptop", and writes two provisionings (rep_replica_provision(), which
 * hold the device's secret key and every office key) next to the corpus:
 *   DIR/fuzzer.prov  the device "fuzzer": every target's replica (fuzz_office())
 *   DIR/peer.prov    the device "peer": whose key the targets seal and sign what they make
 * run.sh exports FUZZ_OFFICE_DIR=DIR. Without it (an input replayed by hand), a target founds
 * an office of its own in a temporary directory: it still runs, but the seeds (and a crash
 * input made from them) are of another office, so keep FUZZ_OFFICE_DIR for replays (run.sh
 * leaves the two files in tests/fuzz/NAME-office/ when a target fails).
 *
 * So that the fuzzer reaches what is behind a seal, targets of sealed things take a mode byte
 * first (fuzz_mode()): FUZZ_RAW, the bytes as they travel; FUZZ_BODY, a plaintext body that
 * the target seals (rep__seal_append, as peer) into a message of its own, which must then
 * decode, verify and open; FUZZ_PLAIN, the sealed plaintext itself (its flag byte, then the
 * body or its zstd frame), sealed by fuzz_seal_plain() as seal.h describes.
 *
 * The replica (REP_OPEN_NOSYNC) is made on first use in a mkdtemp() directory under $TMPDIR,
 * removed at exit. Targets that write to it (import, sync) keep state from one input to the
 * next, as a real replica does; a crash is replayed with the same corpus order, or alone.
 */
#ifndef REP_FUZZ_H
#define REP_FUZZ_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "facade.h"
#include "keys.h"
#include "replica.h"
#include "seal.h"
#include "store.h"
#include "trust.h"

/* A fuzzed message stream (sync, entry): [len(2, little-endian), bytes...]; the last one
 * takes what remains when its length says more. */
#define FUZZ_MSG_HDR 2

/* The files tests/fuzz/seeds writes next to the corpus (the directory FUZZ_OFFICE_DIR). */
#define FUZZ_PROVISION_FILE "fuzzer.prov"
#define FUZZ_PEER_FILE "peer.prov"

/* The beacon target's office and epoch key (beacon.c; seeds.c makes its seeds with them):
 * fixed bytes, no replica. */
#define FUZZ_BEACON_OFFICE_BYTE 0x42
#define FUZZ_BEACON_KEY_BYTE 0x24
#define FUZZ_BEACON_EPOCH 3

/* Mode bytes (first byte of an input of a target of sealed things). */
enum { FUZZ_RAW = 0, FUZZ_BODY = 1, FUZZ_PLAIN = 2, FUZZ_MODES = 3 };

/* fuzz_die: a setup failure (not a finding). */
#define fuzz_die(what, rc)                                                                   \
    do {                                                                                     \
        fprintf(stderr, "fuzz setup: %s: %s\n", (what), rep_strerror(rc));                  \
        abort();                                                                             \
    } while (0)

/* A finding: a broken invariant. */
#define fuzz_fail(...)                                                                       \
    do {                                                                                     \
        fprintf(stderr, "fuzz: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                 \
        abort();                                                                             \
    } while (0)

/* A malloc'd copy of [d, d+n) with its last REP_HASH_BYTES recomputed as a frame's checksum;
 * NULL when n is too short for a frame (or no memory). */
static inline uint8_t *
fuzz_refit(const uint8_t *d, size_t n)
{
    if (n < 6 + REP_HASH_BYTES)
        return NULL;
    uint8_t *c = malloc(n);
    if (!c)
        return NULL;
    memcpy(c, d, n);
    rep__hash(c + n - REP_HASH_BYTES, c, n - REP_HASH_BYTES);
    return c;
}

/* The mode of an input (and the rest of it): its first byte modulo FUZZ_MODES; -1 when empty. */
static inline int
fuzz_mode(const uint8_t **d, size_t *n)
{
    if (*n == 0)
        return -1;
    int m = (*d)[0] % FUZZ_MODES;
    (*d)++;
    (*n)--;
    return m;
}

/* ---- Temporary directories ---- */
static inline char *
fuzz_mkdtemp(const char *what)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    if (!mkdtemp(path))
        fuzz_die("mkdtemp", -errno);
    char *s = strdup(path);
    if (!s)
        fuzz_die("strdup", -ENOMEM);
    return s;
}

static inline void
fuzz_rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

static inline int
fuzz_read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    rep__buf_t b;
    rep__buf_init(&b);
    uint8_t chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rep__buf_add(&b, chunk, got);
    int rc = ferror(f) ? -EIO : b.err;
    fclose(f);
    if (rc < 0) {
        rep__buf_free(&b);
        return rc;
    }
    *out = rep__buf_take(&b, len);
    return 0;
}

/* ---- The office ---- */
typedef struct fuzz_office {
    rep_replica_t *r;           /* the device "fuzzer" */
    char *dir;                  /* its directory */
    rep__trust_t tr;            /* what it trusted when opened: the log and the office keys */
    uint8_t peer_pk[REP_SIGN_PK_BYTES], peer_sk[REP_SIGN_SK_BYTES];
    uint64_t peer_actor;        /* the device "peer", incarnation 0 */
} fuzz_office_t;

static fuzz_office_t fuzz_o;

static inline void
fuzz_cleanup(void)
{
    rep_replica_close(&fuzz_o.r);
    rep__trust_clear(&fuzz_o.tr);
    if (fuzz_o.dir) {
        fuzz_rmrf(fuzz_o.dir);
        free(fuzz_o.dir);
        fuzz_o.dir = NULL;
    }
}

static inline int
fuzz_load_trust(rep__txn_t *t, void *ctx)
{
    rep_replica_t *r = ctx;
    return rep__trust_load(t, r->office, &fuzz_o.tr);
}

/* Set fuzz_o up from the provisionings of the devices "fuzzer" (opened, in a temporary
 * directory) and "peer" (its key only). */
static inline void
fuzz_office_open(const uint8_t *prov, size_t provn, const uint8_t *peer, size_t peern)
{
    rep__provision_t p;
    int rc = rep__provision_decode(peer, peern, &p);
    if (rc != 0 || !p.has_sk)
        fuzz_die("the peer's provisioning", rc ? rc : REP_ECORRUPT);
    memcpy(fuzz_o.peer_pk, p.pk, sizeof p.pk);
    memcpy(fuzz_o.peer_sk, p.sk, sizeof p.sk);
    fuzz_o.peer_actor = rep__actor_derive(p.pk, 0);
    rep__provision_clear(&p);
    fuzz_o.dir = fuzz_mkdtemp("replica");
    atexit(fuzz_cleanup);
    rep_open_opts_t o = {0};
    o.flags = REP_OPEN_CREATE | REP_OPEN_NOSYNC;
    o.provision = prov;
    o.provision_len = provn;
    if ((rc = rep_replica_open(&fuzz_o.r, fuzz_o.dir, &o)) != 0)
        fuzz_die("rep_replica_open (provisioned)", rc);
    if ((rc = rep__store_read(fuzz_o.r->st, fuzz_load_trust, fuzz_o.r)) != 0)
        fuzz_die("rep__trust_load", rc);
    if (!rep__trust_author(&fuzz_o.tr, fuzz_o.peer_actor, 0) ||
        !rep__trust_key(&fuzz_o.tr, fuzz_o.tr.epoch, REP_SUBKEY_CHANGE))
        fuzz_die("the fuzzer's replica does not know the peer, or lacks the key", REP_EAUTH);
}

/* Found an office in a temporary directory and provision "peer" and "fuzzer" from it. */
static inline void
fuzz_office_found(uint8_t **prov, size_t *provn, uint8_t **peer, size_t *peern)
{
    char *dir = fuzz_mkdtemp("admin");
    rep_open_opts_t o = {0};
    o.flags = REP_OPEN_CREATE | REP_OPEN_NOSYNC;
    o.office_name = "fuzz office";
    o.device_name = "front-desk";
    rep_replica_t *a;
    int rc = rep_replica_open(&a, dir, &o);
    if (rc != 0)
        fuzz_die("rep_replica_open (admin)", rc);
    if ((rc = rep_replica_provision(a, "peer", "member", peer, peern)) != 0 ||
        (rc = rep_replica_provision(a, "fuzzer", "member", prov, provn)) != 0)
        fuzz_die("rep_replica_provision", rc);
    rep_replica_close(&a);
    fuzz_rmrf(dir);
    free(dir);
}

/* The office's replica and keys, set up on first use from $FUZZ_OFFICE_DIR (see above). */
static inline fuzz_office_t *
fuzz_office(void)
{
    if (fuzz_o.r)
        return &fuzz_o;
    uint8_t *prov, *peer;
    size_t provn, peern;
    const char *dir = getenv("FUZZ_OFFICE_DIR");
    if (dir && *dir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, FUZZ_PROVISION_FILE);
        int rc = fuzz_read_file(path, &prov, &provn);
        if (rc != 0)
            fuzz_die(path, rc);
        snprintf(path, sizeof path, "%s/%s", dir, FUZZ_PEER_FILE);
        if ((rc = fuzz_read_file(path, &peer, &peern)) != 0)
            fuzz_die(path, rc);
    } else {
        fprintf(stderr, "fuzz: FUZZ_OFFICE_DIR is not set: a new office of this process's own "
                        "(inputs of the seeds' office will not get past its checks)\n");
        fuzz_office_found(&prov, &provn, &peer, &peern);
    }
    fuzz_office_open(prov, provn, peer, peern);
    rep__wipe(prov, provn);
    rep__wipe(peer, peern);
    free(prov);
    free(peer);
    return &fuzz_o;
}

static inline rep_replica_t *
fuzz_replica(void)
{
    return fuzz_office()->r;
}

/* Seal plain (the flag byte and the body, as they are) as seal.h does: nonce, sealed, sig after
 * the message that began at b->p + start, signed by the peer. */
static inline void
fuzz_seal_plain(rep__buf_t *b, size_t start, const uint8_t *plain, size_t n,
                const uint8_t key[REP_KEY_BYTES])
{
    const uint8_t *office = fuzz_o.r->office;
    msgpack_packer pk;
    rep__packer_init(&pk, b);
    uint8_t nonce[REP_NONCE_BYTES];
    rep__random(nonce, sizeof nonce);
    msgpack_pack_bin(&pk, sizeof nonce);
    msgpack_pack_bin_body(&pk, nonce, sizeof nonce);
    rep__buf_t ad;
    rep__buf_init(&ad);
    rep__buf_add(&ad, office, REP_OFFICE_ID_BYTES);
    rep__buf_add(&ad, b->p + start, b->len - start);
    msgpack_pack_bin(&pk, n + REP_MAC_BYTES);
    if (ad.err || rep__buf_reserve(b, n + REP_MAC_BYTES) != 0)
        fuzz_die("fuzz_seal_plain", -ENOMEM);
    rep__aead_seal(b->p + b->len, plain, n, ad.p, ad.len, nonce, key);
    b->len += n + REP_MAC_BYTES;
    rep__buf_free(&ad);
    rep__hasher_t h;
    uint8_t d[REP_HASH_BYTES], sig[REP_SIG_BYTES];
    rep__hasher_init(&h);
    rep__hasher_add(&h, office, REP_OFFICE_ID_BYTES);
    rep__hasher_add(&h, b->p + start, b->len - start);
    rep__hasher_final(&h, d);
    rep__sign(sig, d, sizeof d, fuzz_o.peer_sk);
    msgpack_pack_bin(&pk, sizeof sig);
    msgpack_pack_bin_body(&pk, sig, sizeof sig);
    if (b->err)
        fuzz_die("fuzz_seal_plain", b->err);
}

/* Seal [d, d+n) in mode (FUZZ_BODY: as a body; FUZZ_PLAIN: as the plaintext itself). */
static inline void
fuzz_seal(rep__buf_t *b, size_t start, int mode, const uint8_t *d, size_t n,
          const uint8_t key[REP_KEY_BYTES])
{
    if (mode == FUZZ_PLAIN) {
        fuzz_seal_plain(b, start, d, n, key);
        return;
    }
    int rc = rep__seal_append(b, start, fuzz_o.r->office, d, n, key, fuzz_o.peer_sk);
    if (rc != 0)
        fuzz_die("rep__seal_append", rc);
}

/* The replica must stay usable whatever it was fed: its digest and vv are computable. */
static inline void
fuzz_check_replica(rep_replica_t *r)
{
    uint8_t digest[REP_DIGEST_BYTES];
    int rc = rep_replica_digest(r, digest);
    if (rc != 0)
        fuzz_die("rep_replica_digest after the input", rc);
    uint8_t *vv;
    size_t vvn;
    rc = rep_replica_vv(r, &vv, &vvn);
    if (rc != 0)
        fuzz_die("rep_replica_vv after the input", rc);
    rep_free(vv);
}

#endif /* REP_FUZZ_H */
