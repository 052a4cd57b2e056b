/* seeds.c — writes the seed corpus of the fuzz targets from real encodings.
 *
 *   tests/fuzz/seeds DIR    makes DIR/<target>/ for each target of tests/fuzz/ and fills it,
 *                           and writes DIR/fuzzer.prov and DIR/peer.prov (fuzz.h: FUZZ_OFFICE_DIR)
 *
 * It founds an office (device "front-desk", admin) and enrolls "nurse" (a second replica),
 * "peer" and "fuzzer" (whose provisionings the targets use, fuzz.h) and then "laptop" (so that
 * what the office sends carries an entry the fuzzer's replica lacks). The two replicas are
 * written to with every kind of field and operation; the seeds are their changes (as they
 * travel, and their opened bodies for the targets' FUZZ_BODY and FUZZ_PLAIN modes), batches
 * (small, and one large enough to be zstd compressed), version vectors, snapshots (and their
 * bodies), membership entries, provisionings, values, an invitation token, the join messages,
 * and the sync messages their two engines exchange. They are made afresh on each run, so they
 * follow the formats as they are now; each goes through the real path once here (the imports
 * into a replica set up as the targets' is, fuzz.h), so a seed that no longer decodes fails
 * this program instead of quietly giving the fuzzer nothing. Exit status 0, or 1 with a
 * message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "change.h"
#include "codec.h"
#include "fuzz.h"
#include "beacon.h"
#include "invite.h"
#include "snapshot.h"
#include "sync.h"
#include "trust.h"
#include "zip.h"

static const char *root;
static int failed;

#define TRY(call)                                                                            \
    do {                                                                                     \
        int rc_ = (call);                                                                    \
        if (rc_ < 0) {                                                                       \
            fprintf(stderr, "seeds: %s: %s\n", #call, rep_strerror(rc_));                   \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static void
put(const char *target, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        failed = 1;
    }
}

/* A mode byte (fuzz.h), then the bytes (after an optional flag byte: flag < 0 for none). */
static void
put_mode(const char *target, const char *name, int mode, int flag, const void *p, size_t n)
{
    uint8_t *c = malloc(n + 2);
    if (!c)
        exit(1);
    size_t at = 0;
    c[at++] = (uint8_t)mode;
    if (flag >= 0)
        c[at++] = (uint8_t)flag;
    memcpy(c + at, p, n);
    put(target, name, c, n + at);
    free(c);
}

/* The replica in dir: a new office (prov NULL) or a device provisioned with prov. */
static rep_replica_t *
open_replica(const char *dir, const char *device, const uint8_t *prov, size_t provn)
{
    rep_open_opts_t o = {0};
    o.flags = REP_OPEN_CREATE | REP_OPEN_NOSYNC;
    o.office_name = "fuzz office";
    o.device_name = device;
    o.provision = prov;
    o.provision_len = provn;
    rep_replica_t *r;
    TRY(rep_replica_open(&r, dir, &o));
    return r;
}

static void
put_file(const char *name, const uint8_t *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", root, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Import a seed into the replica set up as the targets' is: it must be taken. */
static void
check_import(const uint8_t *p, size_t n)
{
    rep_import_stats_t st;
    TRY(rep_replica_import(fuzz_o.r, p, n, &st));
}

/* A change as it travels: raw, and opened, its body in the other modes (change, import). */
static void
seed_change(const char *name, const uint8_t *p, size_t n)
{
    rep__change_t c;
    TRY(rep__change_decode(p, n, &c));
    const rep__dev_t *author = rep__trust_author(&fuzz_o.tr, c.actor, c.inc);
    if (!author) {
        fprintf(stderr, "seeds: %s: its author is not a member\n", name);
        exit(1);
    }
    TRY(rep__change_verify(&c, fuzz_o.r->office, author->pk));
    TRY(rep__change_open(&c, fuzz_o.r->office, rep__trust_key(&fuzz_o.tr, c.epoch, REP_SUBKEY_CHANGE)));
    char nm[64];
    put_mode("change", name, FUZZ_RAW, -1, p, n);
    snprintf(nm, sizeof nm, "%s-body", name);
    put_mode("change", nm, FUZZ_BODY, -1, c.plain, c.plainn);
    put_mode("import", nm, FUZZ_BODY, -1, c.plain, c.plainn);
    snprintf(nm, sizeof nm, "%s-plain", name);
    put_mode("change", nm, FUZZ_PLAIN, 0, c.plain, c.plainn);
    put_mode("import", nm, FUZZ_PLAIN, 0, c.plain, c.plainn);
    rep__change_clear(&c);
}

/* A snapshot: raw (snapshot, import, checked), its body (snapshot, import's mode 3), and its
 * plaintext, zstd-compressed when zip. */
static void
seed_snapshot(const char *name, const uint8_t *p, size_t n, bool zip)
{
    char nm[64];
    put_mode("snapshot", name, FUZZ_RAW, -1, p, n);
    snprintf(nm, sizeof nm, "%s-snapshot", name);
    put_mode("import", nm, FUZZ_RAW, -1, p, n);
    check_import(p, n);
    rep__snapshot_t s;
    TRY(rep__snapshot_decode(p, n, &s));
    TRY(rep__snapshot_open(&s, rep__trust_key(&fuzz_o.tr, s.epoch, REP_SUBKEY_SNAPSHOT)));
    snprintf(nm, sizeof nm, "%s-body", name);
    put_mode("snapshot", nm, FUZZ_BODY, -1, s.owned, s.ownedn);
    snprintf(nm, sizeof nm, "%s-snapshot-body", name);
    put_mode("import", nm, 3, -1, s.owned, s.ownedn);
    rep__buf_t b;
    rep__buf_init(&b);
    if (zip)
        TRY(rep__zip(&b, s.owned, s.ownedn));
    else
        rep__buf_add(&b, s.owned, s.ownedn);
    TRY(b.err);
    snprintf(nm, sizeof nm, "%s-plain", name);
    put_mode("snapshot", nm, FUZZ_PLAIN, zip, b.p, b.len);
    rep__buf_free(&b);
    rep__snapshot_clear(&s);
}

/* Entry streams (fuzz.h, FUZZ_MSG_HDR) of entries [from, to) of a batch. */
static void
seed_entries(const char *name, const rep__batch_t *bt, size_t from, size_t to)
{
    rep__buf_t b;
    rep__buf_init(&b);
    for (size_t i = from; i < to && i < bt->nentries; i++) {
        size_t n = bt->entries[i].n;
        uint8_t hdr[FUZZ_MSG_HDR] = {(uint8_t)n, (uint8_t)(n >> 8)};
        rep__buf_add(&b, hdr, sizeof hdr);
        rep__buf_add(&b, bt->entries[i].p, n);
    }
    TRY(b.err);
    put("entry", name, b.p, b.len);
    rep__buf_free(&b);
}

/* A day of writes of every kind: registers of every type, a counter, a set, a log, deletes. */
static void
write_some(rep_replica_t *r, int from, int count)
{
    for (int i = from; i < from + count; i++) {
        rep_txn_t *t;
        char key[64], note[96];
        snprintf(key, sizeof key, "patients/p%03d", i % 7);
        snprintf(note, sizeof note, "visit %d: blood pressure checked, follow-up in %d weeks",
                 i, i % 5);
        TRY(rep_txn_begin(r, i % 2 ? "nurse" : "doctor", &t));
        TRY(rep_txn_set_str(t, key, "name", note + 6));
        TRY(rep_txn_set_int(t, key, "age", 20 + i));
        TRY(rep_txn_set_double(t, key, "weight", 60.5 + i / 4.0));
        TRY(rep_txn_set_bool(t, key, "insured", i % 3 == 0));
        if (i % 4 == 0)
            TRY(rep_txn_set_null(t, key, "phone"));
        TRY(rep_txn_set_bytes(t, key, "photo", (const uint8_t *)"\x89PNG\r\n", 6));
        TRY(rep_txn_incr(t, key, "visits", i % 3 ? 1 : -1));
        rep_value_t tag = {.type = REP_STRING, .u.s = {"allergy", 7}};
        TRY(rep_txn_add(t, key, "tags", &tag));
        if (i % 5 == 4)
            TRY(rep_txn_remove(t, key, "tags", &tag));
        rep_value_t entry = {.type = REP_STRING, .u.s = {note, strlen(note)}};
        TRY(rep_txn_append(t, key, "notes", &entry));
        if (i % 6 == 5)
            TRY(rep_txn_del_field(t, key, "phone"));
        if (i % 11 == 10) {
            snprintf(key, sizeof key, "rooms/r%d", i);
            TRY(rep_txn_set_int(t, key, "beds", 2));
            TRY(rep_txn_del_record(t, key));
        }
        TRY(rep_txn_commit(t, NULL));
        rep_txn_free(&t);
    }
}

static void
seed_values(void)
{
    static const uint8_t bin[] = {0, 1, 2, 0xff};
    rep_value_t vs[] = {
        {.type = REP_NULL},
        {.type = REP_BOOL, .u.b = 1},
        {.type = REP_INT, .u.i = 0},
        {.type = REP_INT, .u.i = -33},
        {.type = REP_INT, .u.i = 300},
        {.type = REP_INT, .u.i = INT64_MIN},
        {.type = REP_INT, .u.i = INT64_MAX},
        {.type = REP_DOUBLE, .u.d = 36.6},
        {.type = REP_STRING, .u.s = {"", 0}},
        {.type = REP_STRING, .u.s = {"Zo\xc3\xab", 4}},
        {.type = REP_STRING, .u.s = {"a string longer than thirty-one bytes, so str8", 46}},
        {.type = REP_BYTES, .u.s = {(const char *)bin, sizeof bin}},
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        rep__buf_t b;
        rep__buf_init(&b);
        TRY(rep__value_encode(&b, &vs[i]));
        char name[32];
        snprintf(name, sizeof name, "value-%zu", i);
        put("value", name, b.p, b.len);
        rep__buf_free(&b);
    }
}

static void
seed_invite(void)
{
    char *eps[] = {"tcp://192.168.1.10:7400", "tcp://frontdesk.local:7400"};
    rep__invite_t in = {.office_name = "fuzz office", .expires_ms = 1700000000000ull,
                        .endpoints = eps, .nendpoints = 2};
    memcpy(in.office, fuzz_o.r->office, sizeof in.office);
    memset(in.server_pk, 0x5a, sizeof in.server_pk);
    memset(in.secret, 0x17, sizeof in.secret);
    char *token;
    TRY(rep__invite_encode(&in, &token));
    put("invite", "token", token, strlen(token));
    /* the content, for the 0-prefixed form (invite.c): without its 4 check bytes */
    uint8_t *p;
    size_t n;
    TRY(rep__unbase64(token, &p, &n));
    uint8_t *c = malloc(n - 4 + 1);
    if (!c)
        exit(1);
    c[0] = 0;
    memcpy(c + 1, p, n - 4);
    put("invite", "content", c, n - 4 + 1);
    free(c);
    free(p);
    free(token);
}

/* A beacon as heard (mode 0), its fields (mode 1), bound endpoints (mode 2): beacon.c. */
static void
seed_beacon(void)
{
    uint8_t office[REP_OFFICE_ID_BYTES], key[REP_KEY_BYTES];
    memset(office, FUZZ_BEACON_OFFICE_BYTE, sizeof office);
    memset(key, FUZZ_BEACON_KEY_BYTE, sizeof key);
    rep__beacon_t b = {.epoch = FUZZ_BEACON_EPOCH, .family = 4, .addr = {10, 0, 0, 2},
                       .port = 7400, .time_ms = 1700000000000ull};
    memset(b.device, 0x33, sizeof b.device);
    uint8_t p[1 + REP_BEACON_BYTES];
    p[0] = 0;
    TRY(rep__beacon_encode(p + 1, &b, office, key));
    put("beacon", "heard", p, sizeof p);
    uint8_t f[1 + 32 + 16 + 1 + 2 + 8] = {1};
    memcpy(f + 1, b.device, 32);
    memcpy(f + 33, b.addr, 16);
    f[49] = 4;
    f[50] = 7400 >> 8;
    f[51] = 7400 & 0xff;
    memcpy(f + 52, &b.time_ms, 8);
    put("beacon", "fields", f, sizeof f);
    put("beacon", "endpoint", "\002tcp://0.0.0.0:7400", 19);
    put("beacon", "endpoint6", "\002tcp://[fe80::1]:7400", 21);
}

static void
seed_join(const uint8_t *prov, size_t provn, const uint8_t *snap, size_t snapn)
{
    uint8_t sign_pk[32], curve_pk[32], *m;
    size_t n;
    memset(sign_pk, 0x11, sizeof sign_pk);
    memset(curve_pk, 0x22, sizeof curve_pk);
    TRY(rep__join_encode("reception-2", sign_pk, curve_pk, &m, &n));
    put("join", "join", m, n);
    free(m);
    rep__welcome_t w = {.provision = prov, .provisionn = provn, .snap = snap, .snapn = snapn};
    TRY(rep__join_reply_encode(&w, NULL, &m, &n));
    put("join", "welcome", m, n);
    free(m);
    TRY(rep__join_reply_encode(NULL, "the invitation has expired", &m, &n));
    put("join", "refused", m, n);
    free(m);
}

/* Provisionings: with the device's secret key (as made), without (as in a WELCOME). *nosk is
 * the latter (malloc'd). */
static void
seed_provision(const char *name, const uint8_t *prov, size_t provn, uint8_t **nosk, size_t *nosken)
{
    char nm[64];
    put("provision", name, prov, provn);
    rep__provision_t p;
    TRY(rep__provision_decode(prov, provn, &p));
    p.has_sk = false;
    TRY(rep__provision_encode(&p, nosk, nosken));
    rep__provision_clear(&p);
    snprintf(nm, sizeof nm, "%s-nosk", name);
    put("provision", nm, *nosk, *nosken);
}

/* The messages two engines exchange, as streams (sync.c's input format) and one by one. */
typedef struct stream {
    rep__buf_t b;
    int count;
} stream_t;

static void
record(stream_t *st, const char *who, const uint8_t *m, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, "%s-msg-%02d", who, st->count++);
    uint8_t hdr[FUZZ_MSG_HDR] = {(uint8_t)n, (uint8_t)(n >> 8)};
    if (n <= 0xffff) {
        rep__buf_t one;
        rep__buf_init(&one);
        rep__buf_add(&one, hdr, sizeof hdr);
        rep__buf_add(&one, m, n);
        put("sync", name, one.p, one.len);
        rep__buf_free(&one);
        rep__buf_add(&st->b, hdr, sizeof hdr);
        rep__buf_add(&st->b, m, n);
    }
}

/* Deliver what from has for to; returns how many messages moved. */
static int
carry(rep__sync_t *from, rep__sync_t *to, uint32_t from_id, stream_t *st, const char *who,
      uint64_t now)
{
    uint32_t peer;
    uint8_t *m;
    size_t n;
    int moved = 0, rc;
    while ((rc = rep__sync_take(from, &peer, &m, &n)) == 1) {
        record(st, who, m, n);
        TRY(rep__sync_received(to, from_id, m, n, now));
        free(m);
        moved++;
    }
    TRY(rc);
    return moved;
}

static void
seed_sync(rep_replica_t *a, rep_replica_t *b)
{
    rep__sync_opts_t o;
    rep__sync_opts_default(&o);
    o.max_msg = 1024; /* a snapshot of a goes in parts */
    o.relay_delay_ms = 0;
    rep__sync_t *sa, *sb;
    TRY(rep__sync_new(a, &o, &sa));
    TRY(rep__sync_new(b, &o, &sb));
    stream_t ab = {0}, ba = {0};
    rep__buf_init(&ab.b);
    rep__buf_init(&ba.b);
    uint64_t now = 1000, next;
    TRY(rep__sync_connected(sa, 2, now)); /* b is peer 2 at a, a is peer 1 at b */
    TRY(rep__sync_connected(sb, 1, now));
    for (int round = 0; round < 40; round++) {
        now += 50;
        int moved = carry(sa, sb, 1, &ab, "a2b", now) + carry(sb, sa, 2, &ba, "b2a", now);
        if (round == 10) {
            write_some(b, 100, 3);
            TRY(rep__sync_changed(sb, now));
        }
        if (!moved && round > 12)
            break;
        TRY(rep__sync_tick(sa, now, &next));
        TRY(rep__sync_tick(sb, now, &next));
    }
    put("sync", "a2b-stream", ab.b.p, ab.b.len);
    put("sync", "b2a-stream", ba.b.p, ba.b.len);
    rep__buf_free(&ab.b);
    rep__buf_free(&ba.b);
    rep__sync_free(&sa);
    rep__sync_free(&sb);
}

/* One sync message [version, type, (office, actor, want,) (id,) vv] of b's, vv bare. */
static void
craft(stream_t *st, const char *who, int type, const uint8_t *office, uint64_t actor,
      const rep_vv_entry_t *vv, size_t nvv)
{
    rep__buf_t m;
    msgpack_packer pk;
    rep__buf_init(&m);
    rep__packer_init(&pk, &m);
    msgpack_pack_array(&pk, type == REP_SYNC_HELLO ? 6 : type == REP_SYNC_ACK ? 4 : 3);
    msgpack_pack_uint8(&pk, REP_SYNC_VERSION);
    msgpack_pack_uint8(&pk, (uint8_t)type);
    if (type == REP_SYNC_HELLO) {
        msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
        msgpack_pack_bin_body(&pk, office, REP_OFFICE_ID_BYTES);
        msgpack_pack_uint64(&pk, actor);
        msgpack_pack_false(&pk);
    } else if (type == REP_SYNC_ACK) {
        msgpack_pack_uint64(&pk, 1);
    }
    rep__vv_pack(&pk, vv, nvv);
    TRY(m.err);
    record(st, who, m.p, m.len);
    rep__buf_free(&m);
}

/* A peer whose HELLO names another office, then its HAVE and ACK (refused: a bare vv means
 * something only in the office its HELLO named), then a HELLO of this office and a HAVE. */
static void
seed_sync_foreign(rep_replica_t *b)
{
    uint8_t *vvb, office[REP_OFFICE_ID_BYTES], other[REP_OFFICE_ID_BYTES];
    size_t vvn, nvv;
    rep_vv_entry_t *vv;
    TRY(rep_replica_vv(b, &vvb, &vvn));
    TRY(rep__vv_decode(vvb, vvn, office, &vv, &nvv));
    rep_free(vvb);
    memcpy(other, office, sizeof other);
    other[0] ^= 0xff;
    stream_t st = {0};
    rep__buf_init(&st.b);
    craft(&st, "foreign", REP_SYNC_HELLO, other, 77, vv, nvv);
    craft(&st, "foreign", REP_SYNC_HAVE, NULL, 0, vv, nvv);
    craft(&st, "foreign", REP_SYNC_ACK, NULL, 0, vv, nvv);
    craft(&st, "foreign", REP_SYNC_HELLO, office, 77, vv, nvv);
    craft(&st, "foreign", REP_SYNC_HAVE, NULL, 0, vv, nvv);
    put("sync", "foreign-stream", st.b.p, st.b.len);
    rep__buf_free(&st.b);
    free(vv);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0777) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    char tmpl[4096], da[4200], db[4200];
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/fuzz-seeds-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        perror(tmpl);
        return 1;
    }
    snprintf(da, sizeof da, "%s/a", tmpl);
    snprintf(db, sizeof db, "%s/b", tmpl);

    /* the office: a founds it, then enrolls b, the peer, the fuzzer, and a laptop */
    rep_replica_t *a = open_replica(da, "front-desk", NULL, 0);
    uint8_t *prov, *peer, *fprov, *lprov, *nosk, *peer_nosk;
    size_t provn, peern, fprovn, lprovn, noskn, peer_noskn;
    TRY(rep_replica_provision(a, "nurse", "member", &prov, &provn));
    rep_replica_t *b = open_replica(db, "nurse", prov, provn);
    rep_free(prov);
    TRY(rep_replica_provision(a, "peer", "member", &peer, &peern));
    TRY(rep_replica_provision(a, "fuzzer", "member", &fprov, &fprovn));
    put_file(FUZZ_PEER_FILE, peer, peern);
    put_file(FUZZ_PROVISION_FILE, fprov, fprovn);
    fuzz_office_open(fprov, fprovn, peer, peern); /* the targets' replica, to check seeds */
    TRY(rep_replica_provision(a, "laptop", "admin", &lprov, &lprovn));
    seed_provision("fuzzer", fprov, fprovn, &nosk, &noskn);
    seed_provision("peer", peer, peern, &peer_nosk, &peer_noskn);
    uint8_t *lnosk;
    size_t lnoskn;
    seed_provision("laptop", lprov, lprovn, &lnosk, &lnoskn);
    free(lnosk);
    put("provision", "code", "abcd efgh-JKMN", 14);

    seed_values();
    seed_invite();
    seed_beacon();

    /* a: a few changes (small seeds), then enough for a compressed batch */
    write_some(a, 0, 4);
    uint8_t *p, *vv;
    size_t n, vvn;
    int more;
    TRY(rep_replica_export(a, NULL, 0, 0, &p, &n, &more));
    put("batch", "small", p, n);
    put_mode("import", "small-batch", FUZZ_RAW, -1, p, n);
    check_import(p, n);
    rep__batch_t bt;
    TRY(rep__batch_decode(p, n, &bt));
    for (size_t i = 0; i < bt.n; i++) {
        char name[32];
        snprintf(name, sizeof name, "change-%zu", i);
        seed_change(name, bt.changes[i].p, bt.changes[i].n);
    }
    /* the whole log, its genesis, the entry the fuzzer's replica lacks, one by one */
    if (bt.nentries != 5) {
        fprintf(stderr, "seeds: the batch carries %zu entries, not 5\n", bt.nentries);
        return 1;
    }
    seed_entries("log", &bt, 0, 5);
    seed_entries("laptop", &bt, 4, 5);
    seed_entries("peer-fuzzer-laptop", &bt, 2, 5);
    for (size_t i = 0; i < bt.nentries; i++) {
        char name[32];
        snprintf(name, sizeof name, "entry-%zu", i + 1);
        seed_entries(name, &bt, i, i + 1);
    }
    rep__batch_clear(&bt);
    rep_free(p);
    TRY(rep_replica_snapshot(a, &p, &n));
    seed_snapshot("small", p, n, false);
    seed_join(nosk, noskn, p, n);
    rep_free(p);

    /* b has changes of its own, and a's first ones */
    write_some(b, 50, 2);
    TRY(rep_replica_vv(b, &vv, &vvn));
    put("vv", "b", vv, vvn);
    write_some(a, 4, 40);
    TRY(rep_replica_export(a, vv, vvn, 0, &p, &n, &more));
    put("batch", "large", p, n); /* zstd-compressed: REP_FRAME_ZIP_MIN bytes or more */
    put_mode("import", "large-batch", FUZZ_RAW, -1, p, n);
    check_import(p, n);
    rep_free(p);
    TRY(rep_replica_export(a, vv, vvn, 600, &p, &n, &more));
    put("batch", "bounded", p, n);
    put_mode("import", "bounded-batch", FUZZ_RAW, -1, p, n);
    check_import(p, n);
    rep_free(p);
    rep_free(vv);
    TRY(rep_replica_export(b, NULL, 0, 0, &p, &n, &more));
    put("batch", "nurse", p, n);
    put_mode("import", "nurse-batch", FUZZ_RAW, -1, p, n);
    check_import(p, n);
    rep_free(p);
    TRY(rep_replica_snapshot(a, &p, &n));
    seed_snapshot("large", p, n, true);
    rep_free(p);
    TRY(rep_replica_vv(a, &vv, &vvn));
    put("vv", "a", vv, vvn);
    rep_free(vv);
    rep_vv_entry_t none[1];
    TRY(rep__vv_encode(fuzz_o.r->office, none, 0, &vv, &vvn));
    put("vv", "empty", vv, vvn);
    free(vv);

    seed_sync(a, b);
    seed_sync_foreign(b);

    /* last (it rotates the office key): the laptop revoked, a REMOVE entry with its cutoffs and
     * key boxes, alone and after the log; and a batch that brings it to the fuzzer's replica */
    TRY(rep_replica_revoke(a, "laptop", NULL, NULL));
    write_some(a, 40, 2);
    TRY(rep_replica_export(a, NULL, 0, 0, &p, &n, &more));
    TRY(rep__batch_decode(p, n, &bt));
    seed_entries("log-with-remove", &bt, 0, bt.nentries);
    seed_entries("remove", &bt, bt.nentries - 1, bt.nentries);
    rep__batch_clear(&bt);
    put_mode("import", "remove-batch", FUZZ_RAW, -1, p, n);
    check_import(p, n);
    rep_free(p);

    /* feed: the limit byte, then cursors of this office (whole feed, one change, the start) */
    for (size_t limit = 0; limit < 2; limit++) {
        rep_feed_t *f;
        TRY(rep_replica_changes(a, NULL, limit, 0, &f));
        char name[32];
        snprintf(name, sizeof name, "cursor-%zu", limit);
        put_mode("feed", name, (int)(limit ? 3 : 0), -1, f->cursor, strlen(f->cursor));
        rep_feed_free(&f);
    }
    put_mode("feed", "start", 1, -1, "0", 1);

    rep_free(peer);
    rep_free(fprov);
    rep_free(lprov);
    free(nosk);
    free(peer_nosk);
    rep_replica_close(&a);
    rep_replica_close(&b);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "seeds: could not remove %s\n", tmpl);
    return failed;
}
