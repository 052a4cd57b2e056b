/*
 * check_sync.c — the sync engine (libreplica/src/sync.h) driving real replicas.
 *
 * Several replicas of one office (real LMDB directories) each get an engine; the engines are
 * joined by an in-memory network written here: a FIFO queue per directed link, messages taken
 * with rep__sync_take() and handed to the other end with rep__sync_received(), and a virtual
 * clock the test advances, calling rep__sync_tick(). The network can drop, duplicate and
 * reorder messages (seeded). Every message is inspected on its way: nothing may be sent to a
 * peer that is not connected, and no message is over max_msg bytes (a snapshot that is bigger
 * goes in parts).
 * Every tick checks next_ms (in the future while a peer is connected; UINT64_MAX without one).
 *
 * What is checked: a full mesh converges sending each change to each peer about once; a
 * line relays after relay_delay_ms; loss, duplication and reordering heal; a late empty
 * replica catches up by snapshot; changes waiting for dependencies are asked for if they
 * still wait after the relay delay, and come; hostile messages (malformed vvs, the vvs of a
 * device whose HELLO named another office, other protocol versions) are counted in info.bad
 * and change nothing; disconnects drop what was queued; DATA messages respect max_msg.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "change.h"
#include "checkutil.h"
#include "codec.h"
#include "common.h"
#include "replica.h"
#include "sync.h"

/* ---- The network ------------------------------------------------------------------------- */

#define MAXN 5
#define PEER(i) (7000u + (uint32_t)(i)) /* the id replica i has at the other engines */

typedef struct msg {
    uint8_t *p;
    size_t n;
} msg_t;

typedef struct link {
    msg_t *m; /* [head, n) waits */
    size_t head, n, cap;
} link_t;

typedef struct net {
    char *dir;
    int n;
    rep_replica_t *r[MAXN];
    tu_clock_t clk[MAXN];
    rep__sync_t *s[MAXN];
    rep__sync_opts_t opts;
    uint8_t office[REP_OFFICE_ID_BYTES];
    bool up[MAXN][MAXN];  /* i and j are connected */
    link_t q[MAXN][MAXN]; /* messages on the way from i to j */
    bool hold[MAXN][MAXN]; /* what is on the way from i to j waits there */
    uint64_t now;         /* the engines' clock, ms */
    tu_rng_t rng;
    unsigned drop, dup, reorder; /* percent of messages */
    /* traffic, counted as messages leave an engine (before loss) */
    uint64_t msgs, by_type[5], data_msgs, data_payload, data_changes, snapshots, data_members;
    uint64_t snapshots_to[MAXN];
    uint64_t delivered;
} net_t;

static void
net_clock(net_t *t, uint64_t now)
{
    t->now = now;
    for (int i = 0; i < t->n; i++)
        tu_clock_set(&t->clk[i], TU_CLOCK_EPOCH_MS + now + (uint64_t)i * 3);
}

/* Add replica t->n (of the office, or a new office for the first) and its engine. */
static int
net_add(net_t *t)
{
    int i = t->n++;
    ck_assert_int_lt(i, MAXN);
    rep_open_opts_t o;
    memset(&o, 0, sizeof o);
    o.flags = REP_OPEN_NOSYNC;
    o.device_name = "ws";
    tu_clock_set(&t->clk[i], TU_CLOCK_EPOCH_MS + t->now + (uint64_t)i * 3);
    tu_clock_use(&t->clk[i], &o);
    char sub[16];
    snprintf(sub, sizeof sub, "r%d", i);
    CK_OK(tu_replica_create(&t->r[i], t->dir, sub, &o, i == 0 ? NULL : t->r[0]));
    if (i == 0) {
        rep_info_t *info = NULL;
        CK_OK(rep_replica_info(t->r[0], &info));
        memcpy(t->office, info->office_id, REP_OFFICE_ID_BYTES);
        rep_info_free(&info);
    }
    CK_OK(rep__sync_new(t->r[i], &t->opts, &t->s[i]));
    return i;
}

/* Short timers so that healing takes few virtual seconds; max_msg as given (0: default). */
static void
net_open(net_t *t, int n, uint64_t t0, size_t max_msg, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->dir = tu_tmpdir_in(g_root);
    ck_assert_ptr_nonnull(t->dir);
    rep__sync_opts_default(&t->opts);
    t->opts.anti_entropy_ms = 500;
    t->opts.ack_timeout_ms = 1000;
    t->opts.relay_delay_ms = 100;
    if (max_msg)
        t->opts.max_msg = max_msg;
    tu_rng_seed(&t->rng, seed);
    t->now = t0;
    for (int i = 0; i < n; i++)
        net_add(t);
    for (int i = 1; i < n; i++) /* every replica knows every member */
        CK_OK(tu_members_share(t->r[0], t->r[i]));
    for (int i = 0; i < n; i++)
        CK_OK(rep__sync_changed(t->s[i], t->now));
}

static void
link_clear(link_t *l)
{
    for (size_t k = l->head; k < l->n; k++)
        free(l->m[k].p);
    l->head = l->n = 0;
}

static void
net_close(net_t *t)
{
    for (int i = 0; i < t->n; i++) {
        for (int j = 0; j < t->n; j++) {
            link_clear(&t->q[i][j]);
            free(t->q[i][j].m);
        }
        rep__sync_free(&t->s[i]);
        ck_assert_ptr_null(t->s[i]);
        rep_replica_close(&t->r[i]);
    }
    tu_rmtree(t->dir);
    free(t->dir);
}

static void
link_push(link_t *l, uint8_t *p, size_t n)
{
    if (l->n == l->cap) {
        if (l->head > 0) {
            memmove(l->m, l->m + l->head, (l->n - l->head) * sizeof *l->m);
            l->n -= l->head;
            l->head = 0;
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 16;
            l->m = realloc(l->m, l->cap * sizeof *l->m);
            ck_assert_ptr_nonnull(l->m);
        }
    }
    l->m[l->n++] = (msg_t){p, n};
}

static void
net_connect(net_t *t, int i, int j)
{
    ck_assert(!t->up[i][j]);
    t->up[i][j] = t->up[j][i] = true;
    CK_OK(rep__sync_connected(t->s[i], PEER(j), t->now));
    CK_OK(rep__sync_connected(t->s[j], PEER(i), t->now));
}

/* The link goes down: both engines are told, and what was on the wire is lost. */
static void
net_disconnect(net_t *t, int i, int j)
{
    ck_assert(t->up[i][j]);
    t->up[i][j] = t->up[j][i] = false;
    rep__sync_disconnected(t->s[i], PEER(j));
    rep__sync_disconnected(t->s[j], PEER(i));
    link_clear(&t->q[i][j]);
    link_clear(&t->q[j][i]);
}

static void
net_mesh(net_t *t)
{
    for (int i = 0; i < t->n; i++)
        for (int j = i + 1; j < t->n; j++)
            net_connect(t, i, j);
}

/* A message as the engine frames it: [version, type, ...]; DATA's id, part, offset, total;
 * HELLO's want. */
typedef struct parsed {
    uint64_t version, type, id, offset, total;
    const uint8_t *payload;
    uint32_t npayload;
    bool want;
} parsed_t;

static int
parse(const uint8_t *p, size_t n, parsed_t *m)
{
    rep__rd_t r;
    uint32_t items;
    memset(m, 0, sizeof *m);
    rep__rd_init(&r, p, n);
    REP_TRY(rep__rd_array(&r, &items));
    REP_TRY(rep__rd_uint(&r, &m->version));
    REP_TRY(rep__rd_uint(&r, &m->type));
    if (m->type == REP_SYNC_DATA) {
        REP_TRY(rep__rd_uint(&r, &m->id));
        REP_TRY(rep__rd_bin(&r, &m->payload, &m->npayload));
        REP_TRY(rep__rd_uint(&r, &m->offset));
        REP_TRY(rep__rd_uint(&r, &m->total));
    } else if (m->type == REP_SYNC_HELLO) {
        uint8_t office[REP_OFFICE_ID_BYTES];
        uint64_t actor;
        REP_TRY(rep__rd_fixed(&r, office, sizeof office));
        REP_TRY(rep__rd_uint(&r, &actor));
        REP_TRY(rep__rd_bool(&r, &m->want));
    }
    return 0;
}

static bool
is_snapshot(const uint8_t *p, size_t n)
{
    return n >= 4 && memcmp(p, "RPLS", 4) == 0;
}

/* Check and count one message from i to j. */
static void
account(net_t *t, int i, int j, const uint8_t *p, size_t n)
{
    parsed_t m;
    CK_OK(parse(p, n, &m));
    ck_assert_uint_eq(m.version, REP_SYNC_VERSION);
    ck_assert(m.type >= REP_SYNC_HELLO && m.type <= REP_SYNC_HAVE);
    t->msgs++;
    t->by_type[m.type]++;
    if (m.type != REP_SYNC_DATA)
        return;
    t->data_msgs++;
    t->data_payload += m.npayload;
    ck_assert_msg(n <= t->opts.max_msg, "DATA %d->%d is %zu bytes, max_msg %zu", i, j, n,
                  t->opts.max_msg);
    if (m.offset > 0)
        return; /* a later part of a payload in parts */
    if (is_snapshot(m.payload, m.npayload)) {
        t->snapshots++;
        t->snapshots_to[j]++;
        return;
    }
    ck_assert_msg(m.total == m.npayload, "a batch of changes %d->%d in parts", i, j);
    rep__batch_t b;
    CK_OK(rep__batch_decode(m.payload, m.npayload, &b));
    ck_assert_msg(b.n > 0 || b.nentries > 0, "an empty DATA %d->%d", i, j);
    if (b.n == 0)
        t->data_members++; /* membership entries only: a new device's, say */
    t->data_changes += b.n;
    rep__batch_clear(&b);
}

/* Move what the engines want sent onto the wire, through the faults. */
static void
net_collect(net_t *t)
{
    for (int i = 0; i < t->n; i++) {
        uint32_t peer;
        uint8_t *p;
        size_t n;
        while (rep__sync_take(t->s[i], &peer, &p, &n) == 1) {
            ck_assert_msg(peer >= PEER(0) && peer < PEER(t->n), "peer id %u", peer);
            int j = (int)(peer - PEER(0));
            ck_assert_msg(t->up[i][j], "engine %d sent to %d, which is not connected", i, j);
            account(t, i, j, p, n);
            if (t->drop && tu_rng_chance(&t->rng, t->drop)) {
                free(p);
                continue;
            }
            link_t *l = &t->q[i][j];
            if (t->dup && tu_rng_chance(&t->rng, t->dup)) {
                uint8_t *c = malloc(n);
                ck_assert_ptr_nonnull(c);
                memcpy(c, p, n);
                link_push(l, c, n);
            }
            link_push(l, p, n);
            if (t->reorder && tu_rng_chance(&t->rng, t->reorder) && l->n - l->head > 1) {
                size_t k = l->head + tu_rng_below(&t->rng, l->n - l->head);
                msg_t x = l->m[k];
                l->m[k] = l->m[l->n - 1];
                l->m[l->n - 1] = x;
            }
        }
    }
}

/* Deliver the first message of a random busy link; false when none waits. */
static bool
net_deliver_one(net_t *t)
{
    int busy[MAXN * MAXN], nb = 0;
    for (int i = 0; i < t->n; i++)
        for (int j = 0; j < t->n; j++)
            if (t->q[i][j].n > t->q[i][j].head && !t->hold[i][j])
                busy[nb++] = i * MAXN + j;
    if (nb == 0)
        return false;
    int k = busy[tu_rng_below(&t->rng, (uint64_t)nb)];
    int i = k / MAXN, j = k % MAXN;
    link_t *l = &t->q[i][j];
    msg_t m = l->m[l->head++];
    CK_OK(rep__sync_received(t->s[j], PEER(i), m.p, m.n, t->now));
    free(m.p);
    t->delivered++;
    return true;
}

/* Deliver until nothing is on the wire or wanted sent, at the current time; the number of
 * deliveries must stay below max_steps (no message storm without time passing). */
static uint64_t
net_run(net_t *t, uint64_t max_steps)
{
    uint64_t steps = 0;
    for (;;) {
        net_collect(t);
        if (!net_deliver_one(t))
            return steps;
        ck_assert_msg(++steps < max_steps, "no quiet after %" PRIu64 " deliveries at %" PRIu64,
                      steps, t->now);
    }
}

/* Tick every engine at the current time; check next_ms; return the soonest. */
static uint64_t
net_tick(net_t *t)
{
    uint64_t soonest = UINT64_MAX;
    for (int i = 0; i < t->n; i++) {
        uint64_t next = 0;
        CK_OK(rep__sync_tick(t->s[i], t->now, &next));
        bool any = false;
        for (int j = 0; j < t->n; j++)
            any |= t->up[i][j];
        if (!any) {
            ck_assert_msg(next == UINT64_MAX, "engine %d has no peer, next_ms %" PRIu64, i, next);
            continue;
        }
        ck_assert_msg(next > t->now && next <= t->now + t->opts.anti_entropy_ms,
                      "engine %d: next_ms %" PRIu64 " at %" PRIu64, i, next, t->now);
        if (next < soonest)
            soonest = next;
    }
    return soonest;
}

static void
digest(net_t *t, int i, uint8_t d[REP_DIGEST_BYTES])
{
    CK_OK(rep_replica_digest(t->r[i], d));
}

static bool
same(net_t *t, int a, int b)
{
    uint8_t da[REP_DIGEST_BYTES], db[REP_DIGEST_BYTES];
    digest(t, a, da);
    digest(t, b, db);
    return memcmp(da, db, sizeof da) == 0;
}

static bool
all_same(net_t *t)
{
    for (int i = 1; i < t->n; i++)
        if (!same(t, 0, i))
            return false;
    return true;
}

/* Run, and let time pass tick by tick (to the soonest next_ms), until every replica has the
 * same state; at most max_ticks ticks. Returns the ticks taken. */
static int
net_settle(net_t *t, int max_ticks)
{
    for (int k = 0;; k++) {
        net_run(t, 20000);
        if (all_same(t))
            return k;
        ck_assert_msg(k < max_ticks, "not converged after %d ticks (t=%" PRIu64 ")", k, t->now);
        uint64_t next = net_tick(t);
        net_run(t, 20000);
        if (next != UINT64_MAX)
            net_clock(t, next);
    }
}

static rep__sync_peer_info_t
peer_info(net_t *t, int i, int j)
{
    rep__sync_peer_info_t info;
    CK_OK(rep__sync_peer(t->s[i], PEER(j), &info));
    return info;
}

static void
assert_no_bad(net_t *t)
{
    for (int i = 0; i < t->n; i++)
        for (int j = 0; j < t->n; j++) {
            rep__sync_peer_info_t info;
            if (i == j || rep__sync_peer(t->s[i], PEER(j), &info) == REP_ENOTFOUND)
                continue;
            ck_assert_msg(info.bad == 0, "engine %d refused %" PRIu64 " messages of %d", i,
                          info.bad, j);
        }
}

/* ---- Writes ------------------------------------------------------------------------------ */

static const char *const KEYS[] = {"pat/1", "pat/2", "pat/3", "appt/a", "appt/b"};

/* One transaction of 1..3 random writes of every kind on replica i, then tell its engine. */
static void
write_mix(net_t *t, int i)
{
    tu_rng_t *g = &t->rng;
    rep_txn_t *x = NULL;
    CK_OK(rep_txn_begin(t->r[i], "dr", &x));
    int ops = 1 + (int)tu_rng_below(g, 3);
    for (int k = 0; k < ops; k++) {
        const char *key = KEYS[tu_rng_below(g, REP_ARRAY_LEN(KEYS))];
        char s[48];
        snprintf(s, sizeof s, "v%d-%" PRIu64, i, tu_rng_below(g, 1000));
        rep_value_t v = {.type = REP_STRING, .u.s = {s, strlen(s)}};
        rep_value_t tag = {.type = REP_STRING, .u.s = {s, 2}};
        switch (tu_rng_below(g, 11)) {
        case 0: CK_OK(rep_txn_set_str(x, key, "name", s)); break;
        case 1: CK_OK(rep_txn_set_int(x, key, "age", (int64_t)tu_rng_below(g, 100))); break;
        case 2: CK_OK(rep_txn_incr(x, key, "visits", (int64_t)tu_rng_below(g, 5) - 1)); break;
        case 3: CK_OK(rep_txn_add(x, key, "tags", &tag)); break;
        case 4: CK_OK(rep_txn_remove(x, key, "tags", &tag)); break;
        case 5: CK_OK(rep_txn_append(x, key, "notes", &v)); break;
        case 6: CK_OK(rep_txn_set_bool(x, key, "flag", (int)tu_rng_below(g, 2))); break;
        case 7: CK_OK(rep_txn_set_double(x, key, "w", tu_rng_double(g))); break;
        case 8: CK_OK(rep_txn_set_bytes(x, key, "photo", s, strlen(s))); break;
        case 9: CK_OK(rep_txn_del_field(x, key, "name")); break;
        default:
            if (tu_rng_chance(g, 30))
                CK_OK(rep_txn_del_record(x, key));
            else
                CK_OK(rep_txn_set(x, key, "phone", &v));
            break;
        }
    }
    CK_OK(rep_txn_commit(x, NULL));
    rep_txn_free(&x);
    CK_OK(rep__sync_changed(t->s[i], t->now));
}

/* One register write on r (not telling any engine). */
static void
write_reg(rep_replica_t *r, const char *key, const char *field, const char *s)
{
    rep_txn_t *x = NULL;
    CK_OK(rep_txn_begin(r, NULL, &x));
    CK_OK(rep_txn_set_str(x, key, field, s));
    CK_OK(rep_txn_commit(x, NULL));
    rep_txn_free(&x);
}

static uint64_t
pending_of(net_t *t, int i)
{
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(t->r[i], &info));
    uint64_t p = info->pending;
    rep_info_free(&info);
    return p;
}

/* Bytes of a batch of replica i's changes since vv (what one copy to one peer costs). */
static size_t
export_len(net_t *t, int i, const uint8_t *vv, size_t vvn)
{
    uint8_t *b = NULL;
    size_t n = 0;
    CK_OK(rep_replica_export(t->r[i], vv, vvn, 0, &b, &n, NULL));
    rep_free(b);
    return n;
}

/* ---- 1. Full mesh -------------------------------------------------------------------------- */

START_TEST(test_mesh_converges_once_per_peer)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed01));
    net_mesh(&t);
    net_run(&t, 100);
    ck_assert_uint_eq(t.data_msgs, 0); /* nothing to send yet: HELLOs only */
    ck_assert_uint_eq(t.by_type[REP_SYNC_HELLO], 6);
    ck_assert(all_same(&t));

    uint64_t ideal_bytes = 0, ideal_changes = 0;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < t.n; i++) {
            if (round % 2 && i != round % 3)
                continue; /* odd rounds: one writer */
            for (int c = 0; c < 3; c++) {
                /* one copy of this change to each peer, as its own batch */
                uint8_t *vv;
                size_t vvn;
                CK_OK(rep_replica_vv(t.r[i], &vv, &vvn));
                write_mix(&t, i);
                ideal_bytes += (uint64_t)(t.n - 1) * export_len(&t, i, vv, vvn);
                ideal_changes += (uint64_t)(t.n - 1);
                rep_free(vv);
            }
        }
        net_run(&t, 2000); /* prompt delivery: no time passes */
        ck_assert_msg(all_same(&t), "round %d did not converge without time passing", round);
        /* then time passes: nothing is left to relay */
        net_clock(&t, t.now + t.opts.relay_delay_ms + 1);
        net_tick(&t);
        net_run(&t, 2000);
    }
    assert_no_bad(&t);
    fprintf(stderr, "mesh: %" PRIu64 " change copies (one per peer: %" PRIu64 "), %" PRIu64
            " DATA payload bytes (one copy per peer, one batch each: %" PRIu64 ")\n",
            t.data_changes, ideal_changes, t.data_payload, ideal_bytes);
    ck_assert_uint_eq(t.snapshots, 0);
    /* delivery is prompt, so no change is sent twice: not relayed (its author's copy comes
     * first and HAVE says so), not echoed back to its author */
    ck_assert_msg(t.data_changes == ideal_changes,
                  "%" PRIu64 " changes sent, one per peer is %" PRIu64, t.data_changes,
                  ideal_changes);
    ck_assert_msg(t.data_payload * 2 <= ideal_bytes * 3,
                  "%" PRIu64 " DATA payload bytes, one copy per peer is %" PRIu64, t.data_payload,
                  ideal_bytes);

    /* Quiet afterwards: anti-entropy rounds find nothing to send. */
    uint64_t data_before = t.data_msgs;
    for (int k = 0; k < 8; k++) {
        net_clock(&t, net_tick(&t));
        net_run(&t, 100);
    }
    ck_assert_uint_eq(t.data_msgs, data_before);
    ck_assert_uint_gt(t.by_type[REP_SYNC_HELLO], 6);
    ck_assert(all_same(&t));
    assert_no_bad(&t);

    rep__sync_peer_info_t info = peer_info(&t, 0, 1);
    ck_assert_int_eq(info.connected, 1);
    ck_assert_uint_ne(info.actor, 0);
    ck_assert_uint_eq(info.behind, 0);
    ck_assert_uint_gt(info.sent_bytes, 0);
    ck_assert_uint_gt(info.received_bytes, 0);
    ck_assert_uint_gt(info.last_seen_ms, TU_CLOCK_EPOCH_MS);
    net_close(&t);
}
END_TEST

/* How long replica i waits before relaying other devices' changes: relay_delay_ms plus its
 * fixed share (sync.h), actor % (relay_delay_ms + 1). */
static uint64_t
relay_of(net_t *t, int i)
{
    rep_info_t *info = NULL;
    CK_OK(rep_replica_info(t->r[i], &info));
    uint64_t d = t->opts.relay_delay_ms + info->actor % (t->opts.relay_delay_ms + 1);
    rep_info_free(&info);
    return d;
}

/* ---- 2. Line A-B-C: relayed after relay_delay_ms -------------------------------------------- */

START_TEST(test_line_relays_after_delay)
{
    net_t t;
    /* the engines' clock starts at 0, as a monotonic clock may */
    net_open(&t, 3, 0, 0, tu_seed(0x5eed02));
    net_connect(&t, 0, 1);
    net_connect(&t, 1, 2);
    net_run(&t, 100);

    for (int dir = 0; dir < 2; dir++) {
        int from = dir ? 2 : 0, to = dir ? 0 : 2;
        write_reg(t.r[from], "pat/1", dir ? "c" : "a", "x");
        CK_OK(rep__sync_changed(t.s[from], t.now));
        net_run(&t, 100);
        ck_assert(same(&t, from, 1));
        ck_assert_msg(!same(&t, from, to), "relayed before relay_delay_ms");
        uint64_t t0 = t.now, next = 0, delay = relay_of(&t, 1);
        ck_assert_uint_ge(delay, t.opts.relay_delay_ms);
        ck_assert_uint_le(delay, 2 * t.opts.relay_delay_ms);
        CK_OK(rep__sync_tick(t.s[1], t.now, &next));
        ck_assert_uint_eq(next, t0 + delay); /* B wants a tick for the relay */

        net_clock(&t, t0 + delay - 1);
        net_tick(&t);
        net_run(&t, 100);
        ck_assert_msg(!same(&t, from, to), "relayed before relay_delay_ms");

        net_clock(&t, t0 + delay);
        net_tick(&t);
        net_run(&t, 100);
        ck_assert_msg(same(&t, from, to), "not relayed at its relay delay");
        net_clock(&t, t.now + 1);
    }
    assert_no_bad(&t);
    ck_assert_int_eq(rep__sync_peer(t.s[0], PEER(2), &(rep__sync_peer_info_t){0}), REP_ENOTFOUND);
    net_close(&t);
}
END_TEST

/* ---- 3. Loss, duplication, reordering ----------------------------------------------------- */

static void
faulty_run(unsigned drop, unsigned dup, unsigned reorder, uint64_t seed)
{
    net_t t;
    net_open(&t, 4, TU_CLOCK_EPOCH_MS, 0, seed);
    t.drop = drop;
    t.dup = dup;
    t.reorder = reorder;
    net_mesh(&t);
    for (int round = 0; round < 12; round++) {
        for (int w = 0; w < 4; w++)
            write_mix(&t, (int)tu_rng_below(&t.rng, (uint64_t)t.n));
        /* deliver a part, let some time pass */
        net_collect(&t);
        for (int k = 0; k < 15 && net_deliver_one(&t); k++)
            net_collect(&t);
        net_clock(&t, t.now + tu_rng_range(&t.rng, 1, 300));
        net_tick(&t);
    }
    int ticks = net_settle(&t, 200);
    ck_assert(all_same(&t));
    for (int i = 0; i < t.n; i++)
        ck_assert_uint_eq(pending_of(&t, i), 0);
    assert_no_bad(&t);
    fprintf(stderr, "faults drop %u%% dup %u%% reorder %u%%: %d ticks, %" PRIu64
            " messages, %" PRIu64 " DATA\n", drop, dup, reorder, ticks, t.msgs, t.data_msgs);
    net_close(&t);
}

START_TEST(test_loss_heals)
{
    faulty_run(30, 0, 0, tu_seed(0x5eed03) + (uint64_t)_i);
}
END_TEST

START_TEST(test_dup_reorder_converges)
{
    faulty_run(0, 30, 50, tu_seed(0x5eed04) + (uint64_t)_i);
}
END_TEST

START_TEST(test_all_faults_converge)
{
    faulty_run(20, 20, 30, tu_seed(0x5eed05) + (uint64_t)_i);
}
END_TEST

/* ---- 4. Late joiner, pending changes ------------------------------------------------------- */

/* A newcomer gets each present author's changes from that author, as changes, and the
 * changes of an author that is away from one relayer only, as a snapshot when that is
 * smaller: in a mesh the first relay's HAVE stops the other relayers. */
START_TEST(test_late_joiner_gets_snapshot)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed06));
    net_mesh(&t);
    /* many overwrites: the log grows, the state does not */
    for (int k = 0; k < 60; k++)
        write_mix(&t, k % 3);
    for (int k = 0; k < 200; k++) /* replica 2 overwrites one field: its changes outweigh the state */
        write_reg(t.r[2], "pat/1", "name", k % 2 ? "Ann" : "Bea");
    CK_OK(rep__sync_changed(t.s[2], t.now));
    net_settle(&t, 50);
    net_disconnect(&t, 2, 0); /* replica 2 is away when the newcomer arrives */
    net_disconnect(&t, 2, 1);

    int d = net_add(&t);
    net_clock(&t, t.now + 1);
    net_connect(&t, d, 0);
    net_connect(&t, d, 1);
    uint64_t data_before = t.data_msgs, members_before = t.data_members;
    net_settle(&t, 50);
    ck_assert(same(&t, d, 0) && same(&t, d, 2));
    data_before += t.data_members - members_before; /* the newcomer's entry passed on: not counted */
    /* 0's and 1's own changes from each, then replica 2's from one of them, as a snapshot */
    ck_assert_msg(t.snapshots_to[d] == 1 && t.data_msgs - data_before == 3,
                  "the new replica got %" PRIu64 " snapshots in %" PRIu64 " DATA; expected one "
                  "snapshot from one relayer after each author's own changes",
                  t.snapshots_to[d], t.data_msgs - data_before);
    rep_history_t *h = NULL;
    CK_OK(rep_replica_history(t.r[d], "pat/1", &h));
    ck_assert_int_eq(h->partial, 1); /* it caught up by state */
    rep_history_free(&h);
    assert_no_bad(&t);

    /* and it keeps up afterwards, with replica 2 back */
    net_connect(&t, 2, 0);
    net_connect(&t, 2, 1);
    write_mix(&t, 0);
    write_mix(&t, d);
    write_mix(&t, 2);
    net_settle(&t, 10);
    ck_assert(all_same(&t));
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

START_TEST(test_pending_asks_sender)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed07));
    enum { A, B, C };
    net_connect(&t, A, B);
    net_connect(&t, A, C);
    net_run(&t, 100);
    /* B's changes reach A, which has not relayed them to C yet */
    for (int k = 0; k < 3; k++)
        write_mix(&t, B);
    net_run(&t, 100);
    ck_assert(same(&t, A, B));
    ck_assert(!same(&t, A, C));
    /* A's own change depends on them and goes to C at once: it has to wait there. C does not
     * ask at once (in a mesh what it waits for is usually on its way from its author) */
    write_reg(t.r[A], "pat/9", "after", "b");
    uint64_t hellos = t.by_type[REP_SYNC_HELLO];
    CK_OK(rep__sync_changed(t.s[A], t.now));
    net_run(&t, 100);
    ck_assert_uint_eq(t.by_type[REP_SYNC_HELLO], hellos);
    ck_assert_uint_gt(pending_of(&t, C), 0);
    /* it asks A once they still wait after its relay delay (only C's engine is ticked, so
     * that A's own relay does not come first) */
    uint64_t t0 = t.now, delay = relay_of(&t, C), next = 0;
    CK_OK(rep__sync_tick(t.s[C], t.now, &next));
    ck_assert_uint_eq(next, t0 + delay);
    net_clock(&t, t0 + delay - 1);
    CK_OK(rep__sync_tick(t.s[C], t.now, &next));
    net_collect(&t);
    ck_assert_uint_eq(t.by_type[REP_SYNC_HELLO], hellos);
    net_clock(&t, t0 + delay);
    CK_OK(rep__sync_tick(t.s[C], t.now, &next));
    net_collect(&t);
    ck_assert_uint_eq(t.q[C][A].n - t.q[C][A].head, 1);
    parsed_t m;
    msg_t *hm = &t.q[C][A].m[t.q[C][A].head];
    CK_OK(parse(hm->p, hm->n, &m));
    ck_assert_uint_eq(m.type, REP_SYNC_HELLO);
    ck_assert(m.want);
    net_run(&t, 100); /* no more time passes: the answer to C's HELLO is not a delayed relay */
    ck_assert_msg(same(&t, A, C), "C did not get the missing changes");
    ck_assert_uint_eq(pending_of(&t, C), 0);
    rep_value_t *v = NULL;
    CK_OK(rep_replica_get(t.r[C], "pat/9", "after", &v));
    rep_value_free(&v);
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

/* A slow peer's round trip lengthens the relay delay by twice as much: another device's
 * changes take that long to reach it even from their author. */
START_TEST(test_relay_waits_for_slow_peer)
{
    net_t t;
    net_open(&t, 3, 0, 0, tu_seed(0x5eed0d));
    enum { A, B, C };
    net_connect(&t, A, B);
    net_connect(&t, B, C);
    net_run(&t, 100);
    /* B's own change goes to A and C; their ACKs come back 40 ms later */
    write_mix(&t, B);
    net_collect(&t);
    net_clock(&t, t.now + 40);
    net_run(&t, 100);
    ck_assert(same(&t, B, C));
    /* A's change reaches B, which relays it to C after its delay plus twice 40 ms */
    write_reg(t.r[A], "pat/1", "a", "x");
    CK_OK(rep__sync_changed(t.s[A], t.now));
    net_run(&t, 100);
    uint64_t t0 = t.now, delay = relay_of(&t, B) + 2 * 40, next = 0;
    ck_assert_uint_lt(t0 + delay, t.opts.anti_entropy_ms); /* no HELLO comes in between */
    CK_OK(rep__sync_tick(t.s[B], t.now, &next));
    ck_assert_uint_eq(next, t0 + delay);
    net_clock(&t, t0 + delay - 1);
    net_tick(&t);
    net_run(&t, 100);
    ck_assert_msg(!same(&t, A, C), "relayed to a slow peer before its delay");
    net_clock(&t, t0 + delay);
    net_tick(&t);
    net_run(&t, 100);
    ck_assert_msg(same(&t, A, C), "not relayed at its delay");
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

/* A relay after the delay carries the changes of the devices that stopped reaching the peer,
 * not those of an author whose own copy is on its way: A-B, B-C, B-D, C-D; D gets A's
 * changes only through B, and C's from C. */
START_TEST(test_relay_carries_stalled_only)
{
    net_t t;
    net_open(&t, 4, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed0e));
    enum { A, B, C, D };
    net_connect(&t, A, B);
    net_connect(&t, B, C);
    net_connect(&t, B, D);
    net_connect(&t, C, D);
    net_run(&t, 100);
    write_mix(&t, A); /* B has it; D lacks it from now on */
    net_run(&t, 100);
    uint64_t t0 = t.now;
    t.hold[C][D] = true; /* C's own copy to D is slow */
    write_mix(&t, C);
    net_run(&t, 100); /* B has C's change (and C lacks A's, relayed to it at B's delay) */
    ck_assert_uint_gt(t.q[C][D].n - t.q[C][D].head, 0);
    /* B's relay to D: A's change only */
    uint64_t delay = relay_of(&t, B), next = 0;
    CK_OK(rep__sync_tick(t.s[B], t.now, &next));
    ck_assert_uint_eq(next, t0 + delay);
    net_clock(&t, t0 + delay);
    CK_OK(rep__sync_tick(t.s[B], t.now, &next));
    link_t *l = &t.q[B][D];
    size_t before = l->n;
    net_collect(&t);
    rep_info_t *ia = NULL;
    CK_OK(rep_replica_info(t.r[A], &ia));
    int datas = 0;
    for (size_t k = before; k < l->n; k++) {
        parsed_t m;
        CK_OK(parse(l->m[k].p, l->m[k].n, &m));
        if (m.type != REP_SYNC_DATA)
            continue;
        datas++;
        rep__batch_t b;
        CK_OK(rep__batch_decode(m.payload, m.npayload, &b));
        ck_assert_uint_gt(b.n, 0);
        for (size_t c = 0; c < b.n; c++) {
            rep__change_t ch;
            CK_OK(rep__change_decode(b.changes[c].p, b.changes[c].n, &ch));
            ck_assert_msg(ch.actor == ia->actor, "the relay carries a change of C's, on its way");
            rep__change_clear(&ch);
        }
        rep__batch_clear(&b);
    }
    rep_info_free(&ia);
    ck_assert_int_eq(datas, 1);
    t.hold[C][D] = false;
    net_settle(&t, 20);
    ck_assert(all_same(&t));
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

/* A DATA whose changes wait at the peer for dependencies stalls the sender's stream to it (the
 * ACK shows no progress); once the peer has applied them (its HAVE says so), the stream goes
 * on at once, without waiting for a HELLO. */
START_TEST(test_stall_lifts_when_applied)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed0f));
    enum { X, Y, P };
    net_mesh(&t);
    net_run(&t, 100);
    t.hold[Y][P] = true; /* Y's copy to P is slow */
    write_mix(&t, Y);
    net_run(&t, 100);
    write_mix(&t, X); /* depends on Y's: waits at P; P's ACK shows no progress */
    net_run(&t, 100);
    ck_assert_uint_gt(pending_of(&t, P), 0);
    uint64_t data = t.data_msgs;
    write_mix(&t, X); /* not sent to P (stalled), only to Y */
    net_run(&t, 100);
    ck_assert_uint_eq(t.data_msgs, data + 1);
    t.hold[Y][P] = false; /* Y's change comes; P applies both; X hears of it and goes on */
    net_run(&t, 100);
    ck_assert_msg(same(&t, X, P), "X's stream to P waited for a HELLO");
    ck_assert_uint_eq(pending_of(&t, P), 0);
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

/* ---- 5. Hostile input -------------------------------------------------------------------- */

/* Feed msg to engine i as from peer j: it must be refused (bad + 1), change nothing, and
 * return 0. */
static void
refused(net_t *t, int i, int j, const uint8_t *p, size_t n, const char *what)
{
    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    digest(t, i, before);
    uint64_t bad = peer_info(t, i, j).bad;
    int rc = rep__sync_received(t->s[i], PEER(j), p, n, t->now);
    ck_assert_msg(rc == 0, "%s: %d (%s)", what, rc, rep_strerror(rc));
    ck_assert_msg(peer_info(t, i, j).bad == bad + 1, "%s: bad %" PRIu64 " -> %" PRIu64, what, bad,
                  peer_info(t, i, j).bad);
    digest(t, i, after);
    ck_assert_msg(memcmp(before, after, sizeof before) == 0, "%s changed the replica", what);
}

/* [version, type, ...items as packed by the caller] */
static void
pack_head(rep__buf_t *b, msgpack_packer *pk, uint32_t items, uint64_t version, uint64_t type)
{
    rep__buf_init(b);
    rep__packer_init(pk, b);
    msgpack_pack_array(pk, items);
    msgpack_pack_uint64(pk, version);
    msgpack_pack_uint64(pk, type);
}

static void
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

/* The vv of rep_replica_vv() bytes, bare, as a sync message carries it. */
static void
pack_bare_vv(msgpack_packer *pk, const uint8_t *vv, size_t n)
{
    uint8_t office[REP_OFFICE_ID_BYTES];
    rep_vv_entry_t *e;
    size_t ne;
    CK_OK(rep__vv_decode(vv, n, office, &e, &ne));
    rep__vv_pack(pk, e, ne);
    free(e);
}

/* A HELLO of this office with a vv the caller packs next. */
static void
pack_hello_head(rep__buf_t *b, msgpack_packer *pk, uint64_t version, const uint8_t *office)
{
    pack_head(b, pk, 6, version, REP_SYNC_HELLO);
    pack_bin(pk, office, REP_OFFICE_ID_BYTES);
    msgpack_pack_uint64(pk, 12345);
    msgpack_pack_false(pk);
}

static uint8_t *
done(rep__buf_t *b, size_t *n)
{
    ck_assert_int_eq(b->err, 0);
    return rep__buf_take(b, n);
}

/* A whole DATA: [version, 2, id, payload, 0, n]. */
static uint8_t *
data_msg(uint64_t id, const uint8_t *payload, size_t n, size_t *len)
{
    rep__buf_t b;
    msgpack_packer pk;
    pack_head(&b, &pk, 6, REP_SYNC_VERSION, REP_SYNC_DATA);
    msgpack_pack_uint64(&pk, id);
    pack_bin(&pk, payload, n);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, n);
    return done(&b, len);
}

/* The next message engine i wants to send (must be there). */
static uint8_t *
take(net_t *t, int i, size_t *n, uint32_t *peer)
{
    uint8_t *p = NULL;
    uint32_t pr;
    ck_assert_int_eq(rep__sync_take(t->s[i], &pr, &p, n), 1);
    if (peer)
        *peer = pr;
    return p;
}

START_TEST(test_hostile_input)
{
    net_t t;
    net_open(&t, 2, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed08));
    enum { A, B };
    net_mesh(&t);
    for (int k = 0; k < 5; k++)
        write_mix(&t, k % 2);
    net_settle(&t, 10);

    /* another office: a replica, its vv, a batch and its engine's HELLO */
    rep_replica_t *x = NULL;
    CK_OK(tu_replica_create(&x, t.dir, "other", &(rep_open_opts_t){.flags = REP_OPEN_NOSYNC},
                            NULL));
    write_reg(x, "pat/1", "name", "intruder");
    uint8_t *xvv, *xbatch;
    size_t xvvn, xbatchn;
    CK_OK(rep_replica_vv(x, &xvv, &xvvn));
    CK_OK(rep_replica_export(x, NULL, 0, 0, &xbatch, &xbatchn, NULL));
    rep__sync_t *xs = NULL;
    CK_OK(rep__sync_new(x, NULL, &xs));
    CK_OK(rep__sync_connected(xs, PEER(B), t.now));
    uint8_t *xhello, *p;
    size_t xhellon, n;
    uint32_t peer;
    ck_assert_int_eq(rep__sync_take(xs, &peer, &xhello, &xhellon), 1);

    /* real messages of B, to damage: a HELLO and a DATA */
    CK_OK(rep__sync_connected(t.s[B], PEER(A), t.now)); /* reconnect: B queues a HELLO */
    uint8_t *hello = take(&t, B, &n, &peer);
    size_t hellon = n;
    ck_assert_uint_eq(peer, PEER(A));
    uint8_t *avv;
    size_t avvn;
    CK_OK(rep_replica_vv(t.r[A], &avv, &avvn));
    write_reg(t.r[B], "pat/2", "name", "good");
    uint8_t *batch;
    size_t batchn;
    CK_OK(rep_replica_export(t.r[B], avv, avvn, 0, &batch, &batchn, NULL));
    rep__buf_t b;
    msgpack_packer pk;
    size_t datan;
    uint8_t *data = data_msg(424242, batch, batchn, &datan);

    /* garbage */
    tu_rng_t g;
    tu_rng_seed(&g, 99);
    for (int k = 0; k < 20; k++) {
        uint8_t junk[300];
        size_t jn = (size_t)tu_rng_below(&g, sizeof junk) + 1;
        tu_rng_bytes(&g, junk, jn);
        if (k % 3 == 0)
            junk[0] = 0x95; /* an array of 5: looks like a message */
        refused(&t, A, B, junk, jn, "garbage");
    }
    refused(&t, A, B, (const uint8_t *)"", 0, "empty message");
    /* every truncation of a HELLO and of a DATA */
    for (size_t k = 0; k < hellon; k++)
        refused(&t, A, B, hello, k, "truncated HELLO");
    for (size_t k = 0; k < datan; k += 1 + k / 8)
        refused(&t, A, B, data, k, "truncated DATA");
    /* a trailing byte */
    uint8_t *longer = malloc(datan + 1);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, hello, hellon);
    longer[hellon] = 0xc0;
    refused(&t, A, B, longer, hellon + 1, "HELLO with a trailing byte");
    /* another office. Its HELLO is refused, and the vvs of that device after it: a bare vv
     * names no office, the HELLO before it does (and the node's CURVE and ZAP let only this
     * office's devices in). A HELLO of ours makes them welcome again. */
    refused(&t, A, B, xhello, xhellon, "HELLO of another office");
    pack_head(&b, &pk, 3, REP_SYNC_VERSION, REP_SYNC_HAVE);
    pack_bare_vv(&pk, xvv, xvvn);
    uint8_t *xhave = done(&b, &n);
    size_t xhaven = n;
    refused(&t, A, B, xhave, xhaven, "HAVE after a HELLO of another office");
    pack_head(&b, &pk, 4, REP_SYNC_VERSION, REP_SYNC_ACK);
    msgpack_pack_uint64(&pk, 1);
    pack_bare_vv(&pk, xvv, xvvn);
    p = done(&b, &n);
    refused(&t, A, B, p, n, "ACK after a HELLO of another office");
    free(p);
    uint64_t bad0 = peer_info(&t, A, B).bad;
    CK_OK(rep__sync_received(t.s[A], PEER(B), hello, hellon, t.now));
    pack_head(&b, &pk, 3, REP_SYNC_VERSION, REP_SYNC_HAVE);
    uint8_t *bvv;
    size_t bvvn;
    CK_OK(rep_replica_vv(t.r[B], &bvv, &bvvn));
    pack_bare_vv(&pk, bvv, bvvn);
    rep_free(bvv);
    p = done(&b, &n);
    CK_OK(rep__sync_received(t.s[A], PEER(B), p, n, t.now));
    ck_assert_uint_eq(peer_info(&t, A, B).bad, bad0); /* both taken */
    free(p);
    free(xhave);
    /* vvs that are not: unsorted, a duplicate actor, a seq of 0, actor 0 (the membership
     * log) not first, an entry that is not a pair, a seq that is not a number, and the
     * framed vv of version 1 */
    static const uint64_t badvv[][5] = {
        /* n, actor, seq, actor, seq */
        {2, 9, 1, 5, 1}, {2, 5, 1, 5, 2}, {1, 5, 0, 0, 0}, {2, 3, 1, 0, 2},
    };
    for (size_t k = 0; k < REP_ARRAY_LEN(badvv) + 3; k++) {
        for (int type = REP_SYNC_HELLO; type <= REP_SYNC_HAVE; type += 3) { /* HELLO, HAVE */
            if (type == REP_SYNC_HELLO)
                pack_hello_head(&b, &pk, REP_SYNC_VERSION, t.office);
            else
                pack_head(&b, &pk, 3, REP_SYNC_VERSION, REP_SYNC_HAVE);
            if (k < REP_ARRAY_LEN(badvv)) {
                msgpack_pack_array(&pk, badvv[k][0]);
                for (uint64_t e = 0; e < badvv[k][0]; e++) {
                    msgpack_pack_array(&pk, 2);
                    msgpack_pack_uint64(&pk, badvv[k][1 + 2 * e]);
                    msgpack_pack_uint64(&pk, badvv[k][2 + 2 * e]);
                }
            } else if (k == REP_ARRAY_LEN(badvv)) {
                msgpack_pack_array(&pk, 1);
                msgpack_pack_array(&pk, 1);
                msgpack_pack_uint64(&pk, 5);
            } else if (k == REP_ARRAY_LEN(badvv) + 1) {
                msgpack_pack_array(&pk, 1);
                msgpack_pack_array(&pk, 2);
                msgpack_pack_uint64(&pk, 5);
                msgpack_pack_str(&pk, 1);
                msgpack_pack_str_body(&pk, "1", 1);
            } else {
                pack_bin(&pk, avv, avvn);
            }
            p = done(&b, &n);
            refused(&t, A, B, p, n, type == REP_SYNC_HELLO ? "HELLO with a malformed vv"
                                                           : "HAVE with a malformed vv");
            free(p);
        }
    }
    p = data_msg(1, xbatch, xbatchn, &n);
    refused(&t, A, B, p, n, "DATA of another office");
    free(p);
    /* a DATA whose payload is damaged (the checksum catches it) */
    uint8_t *bad_batch = malloc(batchn);
    ck_assert_ptr_nonnull(bad_batch);
    for (int w = 0; w < 2; w++) {
        memcpy(bad_batch, batch, batchn);
        bad_batch[w ? batchn - 1 : batchn - 40] ^= w ? 0x01 : 0x10;
        p = data_msg(2, bad_batch, batchn, &n);
        refused(&t, A, B, p, n, w ? "DATA with a corrupted checksum" : "DATA with a corrupted payload");
        free(p);
    }
    free(bad_batch);
    /* parts that cannot be: past the total, a total over the bound, an empty part */
    static const uint64_t shapes[][2] = {{0, 10}, {5, 20}, {0, (1ull << 30) + 1}};
    for (size_t k = 0; k < REP_ARRAY_LEN(shapes); k++) {
        pack_head(&b, &pk, 6, REP_SYNC_VERSION, REP_SYNC_DATA);
        msgpack_pack_uint64(&pk, 3);
        pack_bin(&pk, batch, k == 0 ? 0 : 16);
        msgpack_pack_uint64(&pk, shapes[k][0]);
        msgpack_pack_uint64(&pk, shapes[k][1]);
        p = done(&b, &n);
        refused(&t, A, B, p, n, "an impossible part");
        free(p);
    }
    /* versions (1: framed vvs; 3: a later one) and types */
    for (uint64_t v = 0; v < 4; v++) {
        if (v == REP_SYNC_VERSION)
            continue;
        pack_hello_head(&b, &pk, v, t.office);
        pack_bare_vv(&pk, avv, avvn);
        p = done(&b, &n);
        refused(&t, A, B, p, n, "another version");
        ck_assert_uint_eq(peer_info(&t, A, B).version, v);
        free(p);
    }
    static const uint64_t types[] = {0, 5, 9, 255, 1ull << 40};
    for (size_t k = 0; k < REP_ARRAY_LEN(types); k++) {
        pack_head(&b, &pk, 3, REP_SYNC_VERSION, types[k]);
        pack_bare_vv(&pk, avv, avvn);
        p = done(&b, &n);
        refused(&t, A, B, p, n, "unknown type");
        free(p);
    }
    /* right type, wrong shape */
    pack_head(&b, &pk, 3, REP_SYNC_VERSION, REP_SYNC_ACK);
    pack_bare_vv(&pk, avv, avvn);
    p = done(&b, &n);
    refused(&t, A, B, p, n, "ACK without id");
    free(p);
    pack_head(&b, &pk, 6, REP_SYNC_VERSION, REP_SYNC_DATA);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "id", 2);
    pack_bin(&pk, batch, batchn);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, batchn);
    p = done(&b, &n);
    refused(&t, A, B, p, n, "DATA with a string id");
    free(p);
    pack_head(&b, &pk, 4, REP_SYNC_VERSION, REP_SYNC_DATA);
    msgpack_pack_uint64(&pk, 4);
    pack_bin(&pk, batch, batchn);
    p = done(&b, &n);
    refused(&t, A, B, p, n, "DATA without offset and total (an older shape)");
    free(p);
    pack_head(&b, &pk, 3, REP_SYNC_VERSION, REP_SYNC_HAVE);
    msgpack_pack_array(&pk, 3); /* says three entries, has none */
    p = done(&b, &n);
    refused(&t, A, B, p, n, "HAVE with a short vv");
    free(p);
    rep__buf_init(&b);
    rep__packer_init(&pk, &b);
    msgpack_pack_uint64(&pk, 1);
    p = done(&b, &n);
    refused(&t, A, B, p, n, "not an array");
    free(p);

    /* A message from an id that never connected is dropped: no peer, nothing sent back. */
    net_run(&t, 1000); /* deliver the answers to the refused DATAs */
    ck_assert_int_eq(rep__sync_received(t.s[A], 4242, hello, hellon, t.now), 0);
    ck_assert_int_eq(rep__sync_received(t.s[A], 4242, data, datan, t.now), 0);
    ck_assert_int_eq(rep__sync_peer(t.s[A], 4242, &(rep__sync_peer_info_t){0}), REP_ENOTFOUND);
    ck_assert_int_eq(rep__sync_take(t.s[A], &peer, &p, &n), 0);
    ck_assert(!same(&t, A, B)); /* B's last write did not come in that way */

    /* A still works: the good DATA is taken, and a later exchange converges. */
    uint64_t bad = peer_info(&t, A, B).bad;
    ck_assert_uint_gt(bad, 60);
    CK_OK(rep__sync_received(t.s[A], PEER(B), data, datan, t.now));
    ck_assert(same(&t, A, B));
    CK_OK(rep__sync_received(t.s[A], PEER(B), hello, hellon, t.now));
    write_mix(&t, A);
    write_mix(&t, B);
    net_settle(&t, 20);
    ck_assert_uint_eq(peer_info(&t, A, B).bad, bad);
    ck_assert_uint_eq(peer_info(&t, B, A).bad, 0);

    free(longer);
    free(data);
    free(hello);
    rep_free(batch);
    rep_free(avv);
    free(xhello);
    rep_free(xvv);
    rep_free(xbatch);
    rep__sync_free(&xs);
    rep_replica_close(&x);
    net_close(&t);
}
END_TEST

/* ---- 6. Disconnect and reconnect --------------------------------------------------------- */

START_TEST(test_disconnect_reconnect)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed09));
    enum { A, B, C };
    net_mesh(&t);
    net_run(&t, 100);

    /* A's DATA to B is on the wire when the link goes: it is lost with it */
    write_mix(&t, A);
    net_collect(&t);
    ck_assert_uint_gt(t.q[A][B].n - t.q[A][B].head, 0);
    net_disconnect(&t, A, B);
    ck_assert_int_eq(peer_info(&t, A, B).connected, 0);
    /* A's next DATA to B is queued in the engine when the link goes: never taken */
    write_mix(&t, C);
    net_run(&t, 100);
    net_connect(&t, A, B);
    net_run(&t, 100);
    uint64_t sent = peer_info(&t, A, B).sent_bytes;
    write_mix(&t, A);
    ck_assert_uint_gt(peer_info(&t, A, B).sent_bytes, sent); /* a DATA for B waits in A */
    net_disconnect(&t, A, B);
    net_collect(&t); /* asserts that nothing is taken for a disconnected peer */

    /* writes go on; B hears of A's changes through C, relayed */
    for (int k = 0; k < 6; k++) {
        write_mix(&t, k % 3);
        net_run(&t, 500);
        net_clock(&t, t.now + 40);
        net_tick(&t);
    }
    net_settle(&t, 50);
    /* messages of a disconnected peer are not taken in */
    uint8_t *p;
    size_t n;
    uint32_t peer;
    CK_OK(rep__sync_connected(t.s[C], PEER(A), t.now)); /* C queues a HELLO for A */
    p = take(&t, C, &n, &peer);
    uint64_t seen = peer_info(&t, B, A).received_bytes;
    ck_assert_int_eq(rep__sync_received(t.s[B], PEER(A), p, n, t.now), 0);
    ck_assert_uint_eq(peer_info(&t, B, A).received_bytes, seen);
    ck_assert_uint_eq(peer_info(&t, B, A).bad, 0);
    free(p);
    ck_assert_int_eq(rep__sync_take(t.s[B], &peer, &p, &n), 0);

    /* B alone: it writes; its engine has no peer (next_ms UINT64_MAX, checked by net_tick) */
    net_disconnect(&t, B, C);
    for (int k = 0; k < 4; k++) {
        write_mix(&t, B);
        write_mix(&t, A);
        net_run(&t, 500);
        net_clock(&t, t.now + 300);
        net_tick(&t);
    }
    net_run(&t, 500);
    ck_assert(!same(&t, A, B));
    uint64_t next = 0;
    CK_OK(rep__sync_tick(t.s[B], t.now, &next));
    ck_assert_uint_eq(next, UINT64_MAX);

    net_connect(&t, A, B);
    net_connect(&t, C, B);
    net_settle(&t, 50);
    ck_assert(all_same(&t));
    assert_no_bad(&t);
    ck_assert_int_eq(peer_info(&t, B, A).connected, 1);
    net_close(&t);
}
END_TEST

/* ---- 7. next_ms -------------------------------------------------------------------------- */

START_TEST(test_next_ms)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed0a));
    enum { A, B, C };
    uint64_t next = 0;
    CK_OK(rep__sync_tick(t.s[A], t.now, &next));
    ck_assert_uint_eq(next, UINT64_MAX); /* no peer */
    CK_OK(rep__sync_tick(t.s[A], t.now, NULL));

    net_connect(&t, A, B);
    CK_OK(rep__sync_tick(t.s[A], t.now, &next));
    ck_assert_uint_eq(next, t.now + t.opts.anti_entropy_ms); /* HELLO just sent */
    net_connect(&t, B, C);
    net_run(&t, 100);

    /* B: C lacks A's change, to be relayed in relay_delay_ms */
    write_mix(&t, A);
    net_run(&t, 100);
    CK_OK(rep__sync_tick(t.s[B], t.now, &next));
    ck_assert_uint_eq(next, t.now + relay_of(&t, B));

    /* C goes away and comes back later; until its HELLO arrives B has nothing due */
    net_disconnect(&t, B, C);
    net_clock(&t, t.now + 3 * relay_of(&t, B));
    net_tick(&t);
    net_connect(&t, B, C);
    CK_OK(rep__sync_tick(t.s[B], t.now, &next));
    ck_assert_msg(next > t.now, "next_ms %" PRIu64 " is in the past (now %" PRIu64 ")", next,
                  t.now);
    net_settle(&t, 20);

    /* a DATA in flight: the ACK timeout is the next thing */
    write_mix(&t, A);
    net_collect(&t);
    CK_OK(rep__sync_tick(t.s[A], t.now, &next));
    ck_assert_uint_le(next, t.now + t.opts.ack_timeout_ms);
    ck_assert_uint_gt(next, t.now);
    /* lose everything on the wire: the DATA is sent again after the ACK timeout */
    link_clear(&t.q[A][B]);
    uint64_t data = t.data_msgs;
    for (int k = 0; k < 20 && !same(&t, A, B); k++) {
        net_clock(&t, net_tick(&t));
        net_run(&t, 100);
    }
    ck_assert(same(&t, A, B));
    ck_assert_uint_gt(t.data_msgs, data);

    net_disconnect(&t, A, B);
    CK_OK(rep__sync_tick(t.s[A], t.now, &next));
    ck_assert_uint_eq(next, UINT64_MAX);
    net_close(&t);
}
END_TEST

/* Write n records pat/0 ... pat/(n-1) on r, each with notes of len random letters (seeded),
 * one change each. */
static void
write_notes(rep_replica_t *r, int n, size_t len, uint64_t seed)
{
    tu_rng_t g;
    tu_rng_seed(&g, seed);
    char *val = malloc(len + 1);
    ck_assert_ptr_nonnull(val);
    for (int k = 0; k < n; k++) {
        char key[32];
        snprintf(key, sizeof key, "pat/%d", k);
        for (size_t c = 0; c < len; c++)
            val[c] = (char)('a' + tu_rng_below(&g, 26));
        val[len] = '\0';
        write_reg(r, key, "notes", val);
    }
    free(val);
}

/* ---- max_msg ----------------------------------------------------------------------------- */

START_TEST(test_max_msg_bounds_data)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 4096, tu_seed(0x5eed0b));
    enum { A, B, C };
    net_connect(&t, A, B);
    net_run(&t, 100);
    /* 150 changes of ~400 bytes each, told to the engine at once */
    write_notes(t.r[A], 150, 400, 7);
    CK_OK(rep__sync_changed(t.s[A], t.now));
    net_run(&t, 1000); /* account() checks every DATA of changes against max_msg */
    ck_assert(same(&t, A, B));
    ck_assert_uint_ge(t.data_msgs, 150 * 400 / 4096);
    ck_assert_uint_eq(t.data_changes, 150);

    /* C catches up from B; then D, empty, from a replica whose log lacks the changes (it took
     * a snapshot): the snapshot, bigger than max_msg, goes in parts */
    int d = net_add(&t);
    uint8_t *snap;
    size_t snapn;
    CK_OK(rep_replica_snapshot(t.r[B], &snap, &snapn));
    rep_import_stats_t st;
    CK_OK(rep_replica_import(t.r[C], snap, snapn, &st));
    ck_assert_uint_gt(st.entries, 0);
    CK_OK(rep__sync_changed(t.s[C], t.now)); /* as the node does after another process wrote */
    rep_free(snap);
    ck_assert(same(&t, B, C));
    ck_assert_uint_gt(snapn, t.opts.max_msg);
    uint64_t data = t.data_msgs;
    net_connect(&t, C, d);
    net_settle(&t, 20);
    ck_assert(same(&t, A, d));
    ck_assert_uint_eq(t.snapshots_to[d], 1);
    ck_assert_uint_ge(t.data_msgs - data, snapn / t.opts.max_msg + 1); /* in parts */
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

/* A snapshot in parts survives lost parts, a reconnect in the middle and a peer that sends
 * parts that do not follow: it is sent again from the start, and nothing half-made applies. */
START_TEST(test_parts_heal)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 4096, tu_seed(0x5eed0c) + (uint64_t)_i);
    enum { A, B, C };
    write_notes(t.r[A], 120, 300, 11);
    /* B takes A's state as a snapshot, so it can answer C only with one */
    uint8_t *snap;
    size_t snapn;
    CK_OK(rep_replica_snapshot(t.r[A], &snap, &snapn));
    CK_OK(rep_replica_import(t.r[B], snap, snapn, NULL));
    rep_free(snap);
    ck_assert_uint_gt(snapn, 3 * t.opts.max_msg);
    CK_OK(rep__sync_changed(t.s[B], t.now));
    t.drop = 15; /* parts and ACKs get lost */
    net_connect(&t, B, C);
    for (int k = 0; k < 6; k++) { /* deliver a little, then cut the link mid-transfer */
        net_collect(&t);
        for (int m = 0; m < 3 && net_deliver_one(&t); m++)
            net_collect(&t);
    }
    net_disconnect(&t, B, C);
    ck_assert(!same(&t, B, C));
    net_connect(&t, B, C);
    int ticks = net_settle(&t, 400);
    ck_assert_msg(same(&t, B, C), "not converged after %d ticks", ticks);
    assert_no_bad(&t);
    net_close(&t);
}
END_TEST

/* ---- A forked device ------------------------------------------------------------------ */

/* Copy file name of directory from into directory to (made if missing), in place. */
static void
copy_file(const char *from, const char *to, const char *name)
{
    char a[TU_PATH_MAX], b[TU_PATH_MAX];
    CK_OK(tu_path(a, from, name));
    CK_OK(tu_path(b, to, name));
    mkdir(to, 0700);
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    ck_assert_msg(in && out, "copy %s -> %s", a, b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* Close replica i and its engine (no link may be up), run fn(dir) on its directory, reopen. */
static void
net_reopen(net_t *t, int i, void (*fn)(net_t *, const char *))
{
    for (int j = 0; j < t->n; j++)
        ck_assert(!t->up[i][j]);
    rep__sync_free(&t->s[i]);
    rep_replica_close(&t->r[i]);
    char sub[16], dir[TU_PATH_MAX];
    snprintf(sub, sizeof sub, "r%d", i);
    CK_OK(tu_path(dir, t->dir, sub));
    if (fn)
        fn(t, dir);
    rep_open_opts_t o = {.flags = REP_OPEN_NOSYNC};
    tu_clock_use(&t->clk[i], &o);
    CK_OK(tu_replica_reopen(&t->r[i], t->dir, sub, &o));
    CK_OK(rep__sync_new(t->r[i], &t->opts, &t->s[i]));
}

static void
backup(net_t *t, const char *dir)
{
    char to[TU_PATH_MAX];
    CK_OK(tu_path(to, t->dir, "backup"));
    copy_file(dir, to, "data.mdb");
    copy_file(dir, to, "replica.id");
}

static void
restore(net_t *t, const char *dir)
{
    char from[TU_PATH_MAX];
    CK_OK(tu_path(from, t->dir, "backup"));
    copy_file(from, dir, "data.mdb");
    copy_file(from, dir, "replica.id");
}

static void
write_n(net_t *t, int i, int from, int to)
{
    for (int k = from; k < to; k++) {
        char v[16];
        snprintf(v, sizeof v, "%d", k);
        write_reg(t->r[i], "pat/1", "n", v);
    }
    CK_OK(rep__sync_changed(t->s[i], t->now));
}

/* A device restored in place from a backup (undetectably) writes seq 3-5 again. B, which had
 * the original 3-4, refuses the fork (pushed by A, or relayed by E, which had only 1-2 and took
 * the forked chain) and reports it. The engines must not send the refused changes again after
 * every ACK (a storm with no time passing), only when anti-entropy retries. */
START_TEST(test_fork_makes_no_storm)
{
    net_t t;
    net_open(&t, 3, TU_CLOCK_EPOCH_MS, 0, tu_seed(0x5eed0c));
    enum { A, B, E };
    net_connect(&t, A, B);
    net_connect(&t, A, E);
    write_n(&t, A, 0, 2);
    net_run(&t, 100);
    net_disconnect(&t, A, B);
    net_disconnect(&t, A, E);
    net_reopen(&t, A, backup);
    write_n(&t, A, 2, 4);
    net_connect(&t, A, B);
    net_run(&t, 100);
    ck_assert(same(&t, A, B));
    net_disconnect(&t, A, B);
    net_reopen(&t, A, restore);
    write_n(&t, A, 100, 103); /* seq 3, 4, 5 again, other content */

    uint8_t before[REP_DIGEST_BYTES], after[REP_DIGEST_BYTES];
    digest(&t, B, before);
    uint64_t data = t.data_msgs;
    net_connect(&t, A, B);
    net_run(&t, 100);
    rep_info_t *ib = NULL;
    CK_OK(rep_replica_info(t.r[B], &ib));
    ck_assert_uint_eq(ib->nforked, 1);
    rep_info_free(&ib);
    net_connect(&t, A, E);
    net_run(&t, 100);
    ck_assert(same(&t, A, E)); /* E continues the forked chain */
    net_connect(&t, E, B);
    net_run(&t, 100);
    /* E holds the refused relay: no tick is wanted for it (next_ms is not in the past) */
    net_clock(&t, t.now + t.opts.relay_delay_ms + 1);
    net_tick(&t);
    /* retried at most once per anti-entropy period by each side of each link */
    for (int k = 0; k < 10; k++) {
        net_clock(&t, t.now + t.opts.anti_entropy_ms);
        net_tick(&t);
        net_run(&t, 100);
    }
    ck_assert_msg(t.data_msgs - data <= 6 + 4 * 10, "%" PRIu64 " DATA for one forked change",
                  t.data_msgs - data);
    digest(&t, B, after);
    ck_assert_mem_eq(before, after, sizeof before);
    ck_assert(same(&t, A, E));
    net_close(&t);
}
END_TEST

/* ---- Suite ------------------------------------------------------------------------------- */

static Suite *
sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc;

    tc = tcase_create("topology");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mesh_converges_once_per_peer);
    tcase_add_test(tc, test_line_relays_after_delay);
    tcase_add_test(tc, test_late_joiner_gets_snapshot);
    tcase_add_test(tc, test_pending_asks_sender);
    tcase_add_test(tc, test_relay_waits_for_slow_peer);
    tcase_add_test(tc, test_relay_carries_stalled_only);
    tcase_add_test(tc, test_stall_lifts_when_applied);
    tcase_add_test(tc, test_max_msg_bounds_data);
    tcase_add_loop_test(tc, test_parts_heal, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("faults");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_loss_heals, 0, 3);
    tcase_add_loop_test(tc, test_dup_reorder_converges, 0, 3);
    tcase_add_loop_test(tc, test_all_faults_converge, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("edges");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hostile_input);
    tcase_add_test(tc, test_disconnect_reconnect);
    tcase_add_test(tc, test_next_ms);
    tcase_add_test(tc, test_fork_makes_no_storm);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    /* Device keys, hence actor ids, hence each device's relay delay, from a seed: which relayer
     * serves a newcomer first (test_late_joiner_gets_snapshot) is then the same every run. */
    uint64_t seed = tu_seed(0x5eed5eed);
    printf("check_sync: seed %#llx (REPLICA_TEST_SEED)\n", (unsigned long long)seed);
    if (tu_sodium_deterministic(seed) != 0)
        return 1;
    SRunner *sr = srunner_create(sync_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
