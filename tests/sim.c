/*
 * sim.c — a deterministic simulation of an office network of replicas.
 *
 *   tests/sim [--seeds N] [--from S] [--replicas-max K] [--steps N] [--mode M] [--revoke P]
 *             [--relay P] [-v]
 *
 * Each seed builds an office of 3..K replicas (real LMDB directories, opened with
 * REP_OPEN_NOSYNC: this tests merge logic, not disks), each on its own fake wall clock (most a
 * second or two apart, some a whole day ahead or behind), and runs a few hundred random steps:
 * transactions of every kind of write, and a simulated network that carries the library's own
 * exchange bytes (rep_replica_vv -> rep_replica_catchup, or now and then rep_replica_export
 * falling back to catchup on REP_ESTATE -> rep_replica_import, the same code a node runs) with
 * reordering, duplication, loss, stale version vectors, partial batches, single changes
 * delivered before their dependencies, pulls driven by rep_replica_missing, anti-entropy rounds
 * and partitions that heal. Catch-up by state runs through all of it: catchup answers with a
 * snapshot when that is smaller or when its log lacks changes the peer needs (it caught up by
 * state itself), and a node also sends a whole rep_replica_snapshot() to a peer at random (or
 * one it took long ago), like the reference model's merge_state; snapshots meet the same
 * loss, duplication, reordering and partitions as batches, so old ones arrive after newer
 * changes. After a final full anti-entropy it asserts:
 *
 *   - every replica has every change, nothing pending or missing, and all digests are equal;
 *   - every record, field, conflict, counter, set, log and history is exactly what an oracle
 *     kept by this program says (below), on every replica, and in the middle of the run for
 *     whatever changes a replica holds by then (replicas holding the same changes have equal
 *     digests at any time), however they came: as changes or as state;
 *   - a history lists exactly the changes that reached the replica's log (as changes, not as
 *     state), and says partial once, and only once, a snapshot brought it changes;
 *   - rep_replica_export says REP_ESTATE exactly when the answering log lacks a change the
 *     asker needs, and rep_replica_catchup then answers with a snapshot; a snapshot merge
 *     advances the version vector to the pointwise maximum, releases what pending it can,
 *     and never reports a fork;
 *   - no replica's clock runs more than max drift beyond its own wall clock (a device a day
 *     ahead does not drag the office along), and every replica that holds a change of a device
 *     whose clock is far ahead of its own in its log names that device in rep_info_t.skewed;
 *   - a change's clock is above the clocks of the changes its writer had seen, as changes or
 *     as state (each capped at the writer's wall clock + max drift);
 *   - a field name keeps its kind: a write of a kind the field lacks while it has another is
 *     refused with REP_EKIND (nothing written); two replicas that start one name with two
 *     kinds at once both keep their field, flagged as a clash, and both stay writable.
 *
 * Two modes, chosen per seed (from a hash of the seed, so either replays alone; --mode forces
 * one). The direct mode is the message layer above: the simulation itself calls export,
 * catchup, snapshot and import. The engine mode (about 60% of seeds) runs the real sync engine
 * (libreplica/src/sync.h), the code a node runs, with no layer of the simulation's own: each
 * replica owns a rep__sync_t with small options chosen by the seed (max_msg small enough that
 * batches split; relay delay, anti-entropy period and ack timeout in virtual ms), the engines
 * are joined in a full mesh or a partial topology (a random tree plus some links) that only
 * relays can cross, a local commit is followed by rep__sync_changed (or, as when a thin client
 * in another process wrote it, the node tells its engine at its next tick; now and then a
 * burst of commits on one node gives its engine more than max_msg to push), virtual time passes
 * and each engine is ticked when its next_ms comes (and after what it was told, as a node's
 * loop comes around, and now and then for no reason), and what rep__sync_take gives travels
 * the links with the same loss, duplication and reordering (and, rarely, truncation: counted,
 * and each must be counted bad by its receiver) to rep__sync_received. A partition is
 * rep__sync_disconnected on both sides (what is on the wire is lost) and healing
 * rep__sync_connected; a restart frees the engine and starts a fresh one (messages on the wire
 * to and from it may be lost or still come). Out-of-order single changes come as a DATA of one
 * change from a connected peer, or as a bundle imported from a USB stick when none is; whole
 * snapshots sent unasked are USB bundles too, imported directly, after which the engine is
 * told rep__sync_changed. The simulation follows what each import brought (as changes or as
 * state) from the DATA it delivers (a snapshot over max_msg comes in parts, applied with the
 * last). Every message is checked on its way: only to a connected peer, well-formed, within
 * max_msg, in parts only for a snapshot; every tick's next_ms is in the future, within an anti-entropy period
 * while a peer is connected and never without one. At the end partitions heal and the
 * network runs with ticks, without faults, until every replica holds every change (bounded,
 * else the seed fails), then for two more anti-entropy periods and two in which no DATA may
 * move, and no peer may be left behind (each engine's figures for its peers are exact: bytes
 * sent and received, too); no message was counted bad but the truncated ones; and
 * the DATA bytes sent are reported against one copy of each change to each peer. Then the same
 * final checks as the direct mode.
 *
 * Revocation (about 20% of seeds, from a hash of the seed like the mode; --revoke P forces a
 * share): at a step between 20% and 75% of the run, node 0 (the admin that enrolled the others)
 * revokes another node k (in engine mode one without which the others' links stay connected),
 * after checking that k may not revoke node 0 (-EPERM). The cutoff is node 0's vv of k then; the
 * REMOVE entry and the new epoch's key travel with batches and snapshots. From then on the
 * simulation predicts every import from the bytes (a batch's entries and each change's actor,
 * seq and epoch; a snapshot's sender having taken the revocation or not, and its vv): the changes
 * refused as revoked (rep_import_stats_t.revoked), REP_EKEY where the new epoch's key is lacking
 * (always at k), REP_ESTATE for a snapshot holding k past the cutoff where the revocation is
 * known, and whether the REMOVE is taken; an engine may count bad only a DATA so predicted (or
 * truncated). A replica that takes it holding k's changes past the cutoff rebuilds (rebuilt):
 * the simulation computes what it then holds (its log's changes applied causally from nothing,
 * dependencies on k capped at the cutoff), its log holds exactly that and its history is whole
 * again (partial once a later snapshot brings changes). A node that took it refuses k's
 * connections (ZAP); k, once it took it itself, cannot commit (REP_EKEY) and leaves the run.
 * The final checks exclude k: every other replica holds every change but k's past the cutoff,
 * took the REMOVE, and agrees with the oracle.
 *
 * A relay (about 30% of engine-mode seeds, from another hash of the seed; --relay P forces a
 * share): one more node, enrolled by node 0 with role "relay" (REP_OPEN_RELAY), that holds no
 * office key. The workstations are in two groups (node 0 in the first), each joined within as the
 * topology above says, and no link between the groups: every workstation is linked to the relay,
 * and the relay alone carries changes from one group to the other (store and forward: it checks,
 * stores sealed and passes on; USB bundles still cross now and then, but never at the end: the last
 * line of figures says in how many seeds changes had yet to cross when the end began, and how
 * many). Every workstation reaches the relay because a relay takes changes only from a log
 * (rep__export_for_relay passes over what came by state), so a workstation's changes that reached
 * the relay's neighbours only as state would never cross. Each engine is told which peers are
 * relays (rep__sync_relay, after rep__sync_connected, both sides, restarts too); faults, partitions
 * and restarts hit the relay and its links as any other. The relay never commits: a write there, or
 * a snapshot, must be refused (REP_EROLE); it never sends a snapshot; a snapshot on a USB stick to
 * it is refused (REP_EKEY, nothing taken); no DATA to or from it is a snapshot or a part of one
 * (checked as each leaves its engine). It holds no state, so the oracle's checks and the digest
 * comparisons leave it out; instead, whenever it is checked: rep_info_t.relay, no records, no
 * conflicts, the digest it had holding nothing, everything its vv has in its log (none came as
 * state), no record readable. At the end it holds every change the others must (k's past the cutoff
 * dropped: a revocation reaching it rebuilds its log, predicted as for any replica), nothing
 * pending, took the REMOVE; and each engine counted bad exactly the messages truncated to it (and,
 * for a workstation, those the revocation explains). In a seed that also revokes, k is never the
 * relay, and node 0 revokes only once the relay holds k's changes up to the cutoff (they cross only
 * from its log; else the revocation waits for a later step).
 *
 * The oracle records every committed change: its writer, seq, hlc, user, causal context (the
 * writer's version vector just before the commit) and its writes. From those alone it derives
 * the state of any set of changes (DESIGN.md "Merge rules"): a register holds the writes to it
 * not covered by the context of a later write to it or delete of its record; a set element is
 * present while one of its adds is not covered by a later add, remove or record delete of it
 * (add wins); a counter is the sum of every increment; a log is every append in (hlc, actor,
 * seq, position) order; a record is visible while one of its writes is not covered by a delete.
 *
 * Determinism: the simulation's own choices come from a splitmix64 stream seeded by the seed,
 * and libsodium's random bytes (device keys, hence actor ids; office id; nonces) are replaced
 * by another stream seeded by it, so a seed replays exactly. A failure prints one line with
 * the seed and the command that replays it with a step trace (-v).
 *
 * The seed count defaults to $SIM_SEEDS, else 1000; the first seed to $REPLICA_TEST_SEED,
 * else 0. The last line is "N passed, M failed"; the exit status is 1 on any failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "change.h"
#include "codec.h"
#include "facade.h"
#include "replica.h"
#include "snapshot.h"
#include "sync.h"
#include "trust.h"
#include "testutil.h"

#define SIM_MAX_WS      7                  /* workstations */
#define SIM_MAX_NODES   (SIM_MAX_WS + 1)   /* and a relay */
#define SIM_MIN_NODES   3
#define SIM_HOUR_MS     (3600ull * 1000)
#define SIM_DAY_MS      (24 * SIM_HOUR_MS)
#define SIM_DRIFT_MS    (5 * 60 * 1000ull) /* the library's default max drift */
#define SIM_LINK_MAX    48                 /* messages queued per link; more are lost */
#define SIM_MAX_RAW     12                 /* writes per transaction, deliberate ones included */

/* ---- Options ------------------------------------------------------------------------------ */
static bool g_verbose;
static int g_replicas_max = SIM_MAX_WS;
static unsigned g_steps; /* 0: chosen per seed */
static int g_mode;       /* 0: chosen per seed; 1: direct; 2: engine */
static int g_revoke_pct = -1; /* % of seeds that revoke a node (-1: 20) */
static int g_relay_pct = -1;  /* % of engine-mode seeds with a relay (-1: 30) */
static char g_replay[96]; /* the options a replay needs besides the seed */
static volatile sig_atomic_t g_crash_seed_valid;
static uint64_t g_crash_seed;

/* ---- Values ------------------------------------------------------------------------------- */
typedef struct sval {
    rep_type_t type;
    int b;
    int64_t i;
    double d;
    uint8_t len;
    char s[24]; /* REP_STRING (also NUL-terminated) or REP_BYTES */
} sval_t;

static rep_value_t
sval_rep(const sval_t *v)
{
    rep_value_t r;
    memset(&r, 0, sizeof r);
    r.type = v->type;
    switch (v->type) {
    case REP_BOOL: r.u.b = v->b; break;
    case REP_INT: r.u.i = v->i; break;
    case REP_DOUBLE: r.u.d = v->d; break;
    case REP_STRING:
    case REP_BYTES:
        r.u.s.ptr = v->s;
        r.u.s.len = v->len;
        break;
    default: break;
    }
    return r;
}

static void
sval_str(sval_t *v, const char *s, size_t n)
{
    v->type = REP_STRING;
    v->len = (uint8_t)n;
    memcpy(v->s, s, n);
    v->s[n] = 0;
}

static double
bits_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* A random value of any type, edge cases likely. */
static void
sval_random(tu_rng_t *g, sval_t *v)
{
    static const int64_t ints[] = {0, 1, -1, 127, 128, -32, -33, 255, 65536, INT64_MAX, INT64_MIN};
    static const char *const strs[] = {"", "a", "é", "日本語", "555-0100", "Ünïcödé ✓"};
    memset(v, 0, sizeof *v);
    switch (tu_rng_below(g, 6)) {
    case 0: v->type = REP_NULL; break;
    case 1:
        v->type = REP_BOOL;
        v->b = (int)tu_rng_below(g, 2);
        break;
    case 2:
        v->type = REP_INT;
        v->i = tu_rng_chance(g, 50) ? ints[tu_rng_below(g, sizeof ints / sizeof *ints)]
                                    : (int64_t)tu_rng_next(g);
        break;
    case 3: {
        /* 0, -0, NaN (canonical), +-inf, a subnormal, a large one, or something ordinary */
        static const uint64_t bits[] = {0, 0x8000000000000000ull, 0x7ff8000000000000ull,
                                        0x7ff0000000000000ull, 0xfff0000000000000ull, 1,
                                        0x7fefffffffffffffull};
        v->type = REP_DOUBLE;
        v->d = tu_rng_chance(g, 40) ? bits_double(bits[tu_rng_below(g, sizeof bits / sizeof *bits)])
                                    : (tu_rng_double(g) - 0.5) * 1e6;
        break;
    }
    case 4: {
        uint64_t x = tu_rng_below(g, 9);
        if (x < 6) {
            sval_str(v, strs[x], strlen(strs[x]));
        } else if (x == 6) {
            sval_str(v, "a\0b", 3); /* a string may hold NUL */
        } else {
            char buf[16];
            size_t n = (size_t)tu_rng_range(g, 1, 12);
            for (size_t k = 0; k < n; k++)
                buf[k] = (char)('a' + tu_rng_below(g, 26));
            sval_str(v, buf, n);
        }
        break;
    }
    default:
        v->type = REP_BYTES;
        v->len = (uint8_t)tu_rng_below(g, 17);
        tu_rng_bytes(g, v->s, v->len);
        break;
    }
}

/* The small universe of set members, so adds and removes meet often. */
#define NELEM 6
static sval_t
elem_value(int e)
{
    sval_t v;
    memset(&v, 0, sizeof v);
    switch (e) {
    case 0: v.type = REP_INT; v.i = 1; break;
    case 1: v.type = REP_INT; v.i = -7; break;
    case 2: sval_str(&v, "a", 1); break;
    case 3: sval_str(&v, "é", strlen("é")); break;
    case 4: v.type = REP_BYTES; v.len = 2; v.s[0] = 0; v.s[1] = 1; break;
    default: v.type = REP_BOOL; v.b = 1; break;
    }
    return v;
}

/* ---- The key space ------------------------------------------------------------------------- */
/* "st" records are never deleted (so every counter and log in them stays visible); "mx" records
 * are deleted and revived; "cl/1" is where two replicas start one field name with two kinds. */
static const struct {
    const char *key, *coll, *id;
    bool deletable;
} k_recs[] = {
    {"st/1", "st", "1", false},     {"st/two", "st", "two", false},
    {"st/ü/3", "st", "ü/3", false}, {"mx/1", "mx", "1", true},
    {"mx/x/y", "mx", "x/y", true},  {"cl/1", "cl", "1", false},
};
#define NREC        6
#define NREC_RANDOM 5
#define REC_CLASH   5

static const char *const k_colls[] = {"st", "mx", "cl"};
#define NCOLL 3

/* Field names, each bound to one kind, but for "f" (kind 0 here), the name that replicas
 * start with different kinds at once. */
static const char *const k_fnames[] = {"r0", "r1", "c0", "s0", "l0", "f"};
static const rep_kind_t k_fkind[] = {REP_KIND_REGISTER, REP_KIND_REGISTER, REP_KIND_COUNTER,
                                     REP_KIND_SET, REP_KIND_LOG, 0};
#define NFNAME    6
#define F_R0      0
#define F_R1      1
#define F_C0      2
#define F_S0      3
#define F_L0      4
#define FLD_CLASH 5
#define NKIND     5 /* kinds are 1..4 */

static const char *
kind_name(int k)
{
    switch (k) {
    case REP_KIND_REGISTER: return "register";
    case REP_KIND_COUNTER: return "counter";
    case REP_KIND_SET: return "set";
    case REP_KIND_LOG: return "log";
    }
    return "kind?";
}

/* ---- The oracle: every committed change --------------------------------------------------- */
enum { O_SET = 1, O_DEL, O_CLEAR, O_INCR, O_ADD, O_REMOVE, O_APPEND };
enum { EX_NONE = 0, EX_LIVE = 1, EX_DEL = 2 };

/* A write: as the simulation makes it (raw, in call order) or as it ends up in a change. */
typedef struct op {
    uint8_t type, rec, fname, elem;
    uint32_t pos;  /* call order in its transaction */
    int64_t delta; /* O_INCR */
    sval_t val;    /* O_SET, O_APPEND */
} op_t;

typedef struct och {
    int node;
    uint64_t seq, hlc;
    uint64_t ctx[SIM_MAX_NODES]; /* the writer's vv just before: ctx[k] = seq of node k covered */
    char user[16];
    uint8_t exists[NREC]; /* what it wrote to the record's existence register */
    uint8_t clear[NREC];  /* a record delete */
    uint8_t regw[NREC];   /* bit f: it set or deleted register field f */
    op_t *ops;            /* kept writes, as the transaction folds them */
    size_t nops;
} och_t;

static bool
covers(const och_t *c, const och_t *w)
{
    return c->ctx[w->node] >= w->seq;
}

/* ---- The network --------------------------------------------------------------------------- */
/* M_SNAP: a snapshot, whether a catchup answer or one sent unasked (rep_replica_snapshot).
 * M_ENGINE: a sync engine's message (engine mode), of type etype (REP_SYNC_*). */
enum { M_HELLO = 1, M_BATCH = 2, M_SNAP = 3, M_ENGINE = 4 };

typedef struct msg {
    uint8_t type;
    uint8_t etype;  /* M_ENGINE: REP_SYNC_HELLO .. REP_SYNC_HAVE */
    bool esnap;     /* M_ENGINE: a DATA whose payload is a snapshot */
    bool epart;     /* M_ENGINE: a DATA that is one of several parts of its payload ... */
    bool elast;     /* ... the last one */
    bool vknows;    /* a snapshot: its sender had taken the revocation when it was made */
    bool more;      /* a batch the sender cut short: the receiver asks again */
    bool copy;      /* bytes is a malloc'd copy (free()), not the library's (rep_free()) */
    uint8_t *bytes;
    size_t len;
    uint64_t view[SIM_MAX_NODES]; /* the sender's vv when it was made (HELLO: what the bytes
                                     say; SNAP: what the snapshot holds) */
} msg_t;

static const char *
msg_name(const msg_t *m)
{
    static const char *const eng[] = {"?", "HELLO", "DATA", "ACK", "HAVE"};
    if (m->type == M_ENGINE)
        return m->etype <= REP_SYNC_HAVE ? (m->esnap ? "DATA(snapshot)" : eng[m->etype]) : "?";
    return m->type == M_HELLO ? "HELLO" : m->type == M_BATCH ? "BATCH" : "SNAPSHOT";
}

/* Is this a snapshot frame rather than a batch? (snapshot.h: magic "RPLS"; the public API
 * does not say, and the simulation needs to know to follow what a replica's log holds.) */
static bool
is_snapshot(const uint8_t *p, size_t n)
{
    return n >= 4 && memcmp(p, "RPLS", 4) == 0;
}

typedef struct link {
    msg_t *q;
    size_t n, cap;
} link_t;

/* ---- The simulation ------------------------------------------------------------------------ */
typedef struct node {
    rep_replica_t *r;
    tu_clock_t clock;
    int64_t skew_ms;
    uint64_t actor;
    char name[12];
    uint8_t *peer_vv[SIM_MAX_NODES]; /* the last vv each peer sent us (malloc'd copy) */
    size_t peer_vvn[SIM_MAX_NODES];
    uint64_t peer_view[SIM_MAX_NODES][SIM_MAX_NODES]; /* ... and what it says */
    uint8_t *old_vv; /* our own vv some time ago (malloc'd copy) */
    size_t old_vvn;
    uint64_t old_view[SIM_MAX_NODES];
    uint8_t *old_snap; /* a snapshot of ours some time ago (library bytes) */
    size_t old_snapn;
    uint64_t old_snap_view[SIM_MAX_NODES];
    bool old_snap_knows; /* ... made once it had taken the revocation */
    /* What our log holds (changes that came as changes, not as state): inlog[k][q - 1] for
     * change q of node k. based: a snapshot brought us changes (history is partial). */
    uint8_t *inlog[SIM_MAX_NODES];
    size_t inlogcap[SIM_MAX_NODES];
    bool based;
    int group;       /* side of a partition */
    /* revocation: it took the REMOVE entry (knows); the revoked node, once it took it, is out
     * of the run (dead); a node that took it refuses the revoked one's connections (zap) */
    bool knows, dead, zap;
    bool rebuilt;    /* it rebuilt (its own later changes may then wait: rev_predict) */
    och_t *chs;      /* oracle: our committed changes, chs[k].seq == k + 1 */
    size_t nchs, capchs;
    /* engine mode */
    rep__sync_t *sync; /* this node's engine (a restart makes a new one) */
    bool econn[SIM_MAX_NODES]; /* its engine was told peer k is connected */
    uint64_t enext;    /* the engine's next_ms at its last tick */
    bool dirty;        /* it was told something since: tick it at the next step */
    bool unseen;       /* a commit its engine was not told of yet (another process wrote) */
    uint64_t esent[SIM_MAX_NODES], erecv[SIM_MAX_NODES]; /* bytes its engine sent to peer k
                                                            and got from it (while connected) */
    bool part_snap[SIM_MAX_NODES]; /* the payload its engine sends peer k in parts: a snapshot? */
    uint64_t part_view[SIM_MAX_NODES][SIM_MAX_NODES]; /* ... holding what (our vv then) */
    bool part_knows[SIM_MAX_NODES];                   /* ... made knowing the revocation */
    /* bad messages its engines counted: of engines freed by restarts; and those the
     * simulation explains: truncated, refused for the revocation */
    uint64_t ebad_gone, ecut_in, erev_in;
} node_t;

typedef struct sim_stats {
    uint64_t seeds, nodes, commits, ops, ekind, sent, delivered, lost, dups, pending, checks,
        far_skew;
    /* catch-up by state: snapshots sent (unasked, or as catchup's answer), merged (brought
     * changes), merged into a replica holding changes the snapshot lacks, merged into one
     * with pending changes, stale (brought nothing), exports answered REP_ESTATE, seeds with
     * 3 merges or more */
    uint64_t snap_sent, snap_asked, snap_merged, snap_concurrent, snap_pending, snap_stale,
        estate, seeds_snapped;
    /* engine mode: seeds, messages taken by type, DATA bytes (of snapshots), what one copy
     * of each change to each peer costs (batches of one change), messages the simulation
     * truncated and those the engines counted bad, out-of-order DATAs injected, USB bundles,
     * engine restarts, ticks, time to converge at the end (virtual ms), the worst seed's
     * DATA bytes / needed (per mille), DATAs of changes over half max_msg, DATAs that are
     * parts of a larger payload (a snapshot over max_msg) */
    uint64_t eseeds, emsgs[REP_SYNC_HAVE + 1], edata_bytes, esnaps, esnap_bytes, eneeded,
        ecorrupt, ebad, einject, ebundles, erestarts, eticks, econverge_ms, eratio_max, ehalf,
        eparts;
    /* revocation: seeds that revoked, rebuilds, changes refused as revoked (direct imports),
     * whole imports refused because of it (REP_EKEY, REP_ESTATE; engines' bad DATA too) */
    uint64_t rev_seeds, rev_rebuilds, rev_cut, rev_refused, rev_ebad;
    /* relay: seeds with one, DATAs (and bytes) its engine took and sent, snapshots it refused
     * (USB bundles: REP_EKEY), writes and snapshots it refused (REP_EROLE), its rebuilds (a
     * revocation dropped changes from its log) */
    uint64_t relay_seeds, relay_in, relay_in_bytes, relay_out, relay_out_bytes, relay_ekey,
        relay_erole, relay_rebuilds;
    /* ... and changes that had yet to cross from one group to the other when the end began
     * (then only the relay carries them), and seeds with some */
    uint64_t relay_cross, relay_cross_seeds;
} sim_stats_t;

typedef struct sim {
    uint64_t seed;
    tu_rng_t rng;
    int n;
    node_t node[SIM_MAX_NODES];
    link_t link[SIM_MAX_NODES][SIM_MAX_NODES];
    uint64_t t0, now;
    uint64_t drift_opt, drift; /* opts.max_drift_ms and what it means */
    unsigned snap_pct;         /* % of steps that send a snapshot unasked (0: only catchup's) */
    int partition_left;        /* steps until the partition heals; 0: none */
    int step;
    char base[TU_PATH_MAX];
    uint8_t office[REP_OFFICE_ID_BYTES];
    int clash_a, clash_b, clash_ka, clash_kb;
    /* engine mode */
    bool engine;
    rep__sync_opts_t eopts;
    bool mesh;                              /* full mesh, else a partial topology */
    bool linked[SIM_MAX_NODES][SIM_MAX_NODES]; /* the topology: engines of i and j peer */
    uint64_t inject_id;                     /* ids of injected DATAs (no engine's) */
    /* revocation: node 0 revokes node rev_k at step rev_step (0: never); rev_cut is node 0's
     * vv of it then, rev_mseq the REMOVE entry's seq, rev_epoch the new office-key epoch */
    tu_rng_t rev_rng;
    int rev_k, rev_step, rev_pct;
    bool rev_done;
    uint64_t rev_cut, rev_mseq;
    uint32_t rev_epoch;
    /* relay (engine mode): node relay (the last one; -1: none), enrolled by node 0 with role
     * relay; its digest when it held nothing (it holds no state, ever) */
    int relay;
    uint8_t relay_digest[REP_DIGEST_BYTES];
    int side[SIM_MAX_NODES]; /* the group of each workstation (0 without a relay) */
    bool failed;
    char why[1024];
    sim_stats_t st;
} sim_t;

static void sim_trace(const sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sim_trace(const sim_t *s, const char *fmt, ...)
{
    if (!g_verbose)
        return;
    va_list ap;
    if (s->step >= 0)
        printf("[seed %" PRIu64 " step %d +%" PRIu64 "ms] ", s->seed, s->step, s->now - s->t0);
    else
        printf("[seed %" PRIu64 " end +%" PRIu64 "ms] ", s->seed, s->now - s->t0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void
sim_fail(sim_t *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->step > 0)
        snprintf(s->why, sizeof s->why, "step %d: %s", s->step, msg);
    else
        snprintf(s->why, sizeof s->why, "%s: %s", s->step == 0 ? "start" : "end", msg);
    sim_trace(s, "FAIL: %s", msg);
}

/* A library call that must succeed; on failure the seed fails and the caller bails out. */
#define SIM_OK(s, expr)                                                                            \
    sim_ok_((s), (expr), #expr, __LINE__)

static bool
sim_ok_(sim_t *s, int rc, const char *what, int line)
{
    if (rc == 0)
        return true;
    sim_fail(s, "sim.c:%d: %s = %d (%s)", line, what, rc, rep_strerror(rc));
    return false;
}

static int
actor_node(const sim_t *s, uint64_t actor)
{
    for (int k = 0; k < s->n; k++)
        if (s->node[k].actor == actor)
            return k;
    return -1;
}

/* Is node i the relay (it holds no state and writes nothing)? */
static bool
is_relay(const sim_t *s, int i)
{
    return i == s->relay;
}

/* The workstations: nodes 0 .. ws_count() - 1 (the relay, if any, comes after them). */
static int
ws_count(const sim_t *s)
{
    return s->relay >= 0 ? s->relay : s->n;
}

static bool
partitioned(const sim_t *s, int a, int b)
{
    return s->partition_left > 0 && s->node[a].group != s->node[b].group;
}

static void
set_clocks(sim_t *s)
{
    for (int i = 0; i < s->n; i++)
        tu_clock_set(&s->node[i].clock, (uint64_t)((int64_t)s->now + s->node[i].skew_ms));
}

/* The version vector of node i as per-node seqs, from rep_replica_info (kept in *infop if not
 * NULL, else freed). */
static bool rev_out(const sim_t *s, int i);

static bool
node_view(sim_t *s, int i, uint64_t view[SIM_MAX_NODES], rep_info_t **infop)
{
    rep_info_t *info;
    if (!SIM_OK(s, rep_replica_info(s->node[i].r, &info)))
        return false;
    memset(view, 0, SIM_MAX_NODES * sizeof *view);
    bool ok = true;
    for (size_t k = 0; k < info->nvv; k++) {
        int nd = actor_node(s, info->vv[k].actor);
        if (nd < 0) {
            sim_fail(s, "%s: vv names actor %016" PRIx64 ", which no replica has", s->node[i].name,
                     info->vv[k].actor);
            ok = false;
        } else if (info->vv[k].seq > s->node[nd].nchs) {
            sim_fail(s, "%s: vv has %s up to %" PRIu64 ", but %s made %zu changes",
                     s->node[i].name, s->node[nd].name, info->vv[k].seq, s->node[nd].name,
                     s->node[nd].nchs);
            ok = false;
        } else {
            view[nd] = info->vv[k].seq;
        }
    }
    if (ok && !rev_out(s, i) &&
        (info->seq != s->node[i].nchs || view[i] > info->seq ||
         (view[i] < info->seq && info->pending < info->seq - view[i]))) {
        /* its own chain: what it made; its vv holds all of it, but after a rebuild, when its
         * later changes wait in pending for state to come again */
        sim_fail(s, "%s: info.seq %" PRIu64 ", its vv entry %" PRIu64 ", it made %zu",
                 s->node[i].name, info->seq, view[i], s->node[i].nchs);
        ok = false;
    }
    if (infop && ok)
        *infop = info;
    else
        rep_info_free(&info);
    return ok;
}

/* ---- What a replica's log holds ------------------------------------------------------------ */
/* Node i's log got node k's changes lo+1..hi (as changes: committed, or imported in a batch, or
 * released from pending). */
static bool
mark_log(sim_t *s, int i, int k, uint64_t lo, uint64_t hi)
{
    node_t *nd = &s->node[i];
    if (hi <= lo)
        return true;
    if (hi > nd->inlogcap[k]) {
        size_t cap = nd->inlogcap[k] ? nd->inlogcap[k] : 64;
        while (cap < hi)
            cap *= 2;
        uint8_t *p = realloc(nd->inlog[k], cap);
        if (!p) {
            sim_fail(s, "out of memory");
            return false;
        }
        memset(p + nd->inlogcap[k], 0, cap - nd->inlogcap[k]);
        nd->inlog[k] = p;
        nd->inlogcap[k] = cap;
    }
    memset(nd->inlog[k] + lo, 1, hi - lo);
    return true;
}

static bool
in_log(const node_t *nd, int k, uint64_t q)
{
    return q >= 1 && q <= nd->inlogcap[k] && nd->inlog[k][q - 1];
}

/* Does node i's log lack a change of its vv have that a replica whose vv is want needs? */
static bool
log_lacks(const sim_t *s, int i, const uint64_t have[SIM_MAX_NODES],
          const uint64_t want[SIM_MAX_NODES])
{
    for (int k = 0; k < s->n; k++)
        for (uint64_t q = want[k] + 1; q <= have[k]; q++)
            if (!in_log(&s->node[i], k, q))
                return true;
    return false;
}

/* ---- Revocation ------------------------------------------------------------------------------ */
static bool node_vv(sim_t *s, int i, uint64_t view[SIM_MAX_NODES], bool *pending);
/* Node i is the revoked one, after the revocation: out of convergence and the oracle's checks. */
static bool
rev_out(const sim_t *s, int i)
{
    return s->rev_done && i == s->rev_k;
}

/* Node i is the revoked one and took its own revocation: the simulation leaves it alone. */
static bool
rev_dead(const sim_t *s, int i)
{
    return rev_out(s, i) && s->node[i].dead;
}

/* The changes of node k every other replica must end with. */
static uint64_t
expect_seq(const sim_t *s, int k)
{
    return rev_out(s, k) ? s->rev_cut : s->node[k].nchs;
}

/* Does a node that took the revocation refuse the connection of a and b (ZAP)? */
static bool
rev_zapped(const sim_t *s, int a, int b)
{
    if (!s->rev_done || (a != s->rev_k && b != s->rev_k))
        return false;
    return s->node[a].zap || s->node[b].zap || s->node[s->rev_k].dead;
}

/* The length of node i's membership log (its vv's actor 0). */
static bool
node_members(sim_t *s, int i, uint64_t *m)
{
    size_t ne = 0;
    rep_vv_entry_t *e = NULL;
    *m = 0;
    if (!SIM_OK(s, rep__replica_vv(s->node[i].r, &e, &ne)))
        return false;
    for (size_t k = 0; k < ne; k++)
        if (e[k].actor == 0)
            *m = e[k].seq;
    free(e);
    return true;
}

/* What an import at node to must do, as far as the revocation goes: its return code (REP_EKEY
 * for what is sealed with the new epoch's key when to will not have it; REP_ESTATE for a
 * snapshot holding the revoked node's changes past the cutoff where the revocation is known),
 * the changes it refuses as revoked, and whether it takes the REMOVE entry. */
typedef struct rpred {
    int rc;
    uint64_t revoked;
    bool learns;
} rpred_t;

static bool
entries_remove(const sim_t *s, const rep__bytes_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rep__entry_t en;
        if (rep__entry_decode(e[i].p, e[i].n, &en) == 0 && en.seq == s->rev_mseq)
            return true;
    }
    return false;
}

/* Node i took the revocation while it held changes of the revoked node past the cutoff: it
 * rebuilds its state from its log without them, forgetting what came by state. R is what it
 * then holds: its log's changes applied in causal order from nothing (dependencies on the
 * revoked node capped at the cutoff); its log holds exactly those (the rest wait in pending),
 * and its history is whole again. */
static uint64_t
rev_R(const sim_t *s, int i, uint64_t R[SIM_MAX_NODES])
{
    const node_t *nd = &s->node[i];
    memset(R, 0, SIM_MAX_NODES * sizeof *R);
    for (bool progress = true; progress;) {
        progress = false;
        for (int x = 0; x < s->n; x++)
            for (;;) {
                uint64_t q = R[x] + 1;
                if (!in_log(nd, x, q) || (x == s->rev_k && q > s->rev_cut))
                    break;
                const och_t *c = &s->node[x].chs[q - 1];
                bool ready = true;
                for (int y = 0; y < s->n && ready; y++) {
                    uint64_t d = c->ctx[y];
                    if (y == s->rev_k && d > s->rev_cut)
                        d = s->rev_cut;
                    ready = y == x || R[y] >= d;
                }
                if (!ready)
                    break;
                R[x] = q;
                progress = true;
            }
    }
    uint64_t logged = 0, held = 0; /* the log's changes that wait in pending now */
    for (int x = 0; x < s->n; x++) {
        for (uint64_t q = 1; q <= nd->inlogcap[x]; q++)
            logged += in_log(nd, x, q) && !(x == s->rev_k && q > s->rev_cut);
        held += R[x];
    }
    return logged - held;
}

static uint64_t
rev_rebuild(sim_t *s, int i, uint64_t R[SIM_MAX_NODES])
{
    node_t *nd = &s->node[i];
    uint64_t waiting = rev_R(s, i, R);
    for (int x = 0; x < SIM_MAX_NODES; x++)
        if (nd->inlog[x])
            memset(nd->inlog[x], 0, nd->inlogcap[x]);
    for (int x = 0; x < s->n; x++)
        mark_log(s, i, x, 0, R[x]);
    nd->based = false;
    nd->rebuilt = true;
    s->st.rev_rebuilds++;
    s->st.relay_rebuilds += is_relay(s, i);
    char buf[160] = "";
    for (int x = 0; x < s->n; x++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " %" PRIu64, R[x]);
    sim_trace(s, "%s rebuilds its state from its log: holds%s", nd->name, buf);
    return waiting;
}

/* Which replicas a rebuild left with their own changes pending (rev_predict), for a
 * failure's message. */
static const char *
rev_bug_note(sim_t *s, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < s->n; i++) {
        uint64_t v[SIM_MAX_NODES];
        if (!s->node[i].rebuilt || rev_out(s, i) || !node_vv(s, i, v, NULL) ||
            v[i] >= s->node[i].nchs)
            continue;
        snprintf(buf + strlen(buf), n - strlen(buf), "%s %s holds %" PRIu64 " of its own %zu",
                 buf[0] ? "," : " (after a rebuild", s->node[i].name, v[i],
                 s->node[i].nchs);
    }
    if (buf[0])
        snprintf(buf + strlen(buf), n - strlen(buf), ")");
    return buf;
}

/* A batch (bytes), or a snapshot (snap) made by a sender that had taken the revocation (sknows)
 * holding view: a snapshot carries its sender's whole membership log and is sealed with its
 * epoch's key.
 *
 * A relay refuses every snapshot (REP_EKEY: it has no key) and takes changes of any epoch
 * sealed, as they came.
 *
 * A rebuild (apply.c rebuild_state) forgets what came by state, and the replica's own changes
 * made after such state depend on it: they wait in pending and its vv of its own actor drops
 * below what it made, until the office sends that state again. Its own chain goes on (the
 * library keeps it apart from the vv: rep_info_t.seq, new commits wait behind the others), and
 * a snapshot holding its own later changes merges as any other.
 */
static void
rev_predict(const sim_t *s, int to, const uint8_t *p, size_t n, bool snap, bool sknows,
            const uint64_t *view, rpred_t *pr)
{
    memset(pr, 0, sizeof *pr);
    if (snap && is_relay(s, to)) { /* it has no key to open one: refused whole, nothing taken */
        pr->rc = REP_EKEY;
        return;
    }
    if (!s->rev_done)
        return;
    bool knows = s->node[to].knows;
    if (snap) {
        bool after = knows || sknows;
        if (sknows && !(after && to != s->rev_k))
            pr->rc = REP_EKEY;
        else if (after && view[s->rev_k] > s->rev_cut)
            pr->rc = REP_ESTATE;
        pr->learns = pr->rc == 0 && !knows && sknows;
        return;
    }
    rep__batch_t b;
    if (rep__batch_decode(p, n, &b) != 0)
        return; /* (not the simulation's to judge here) */
    bool learns = !knows && entries_remove(s, b.entries, b.nentries), after = knows || learns;
    bool key = after && to != s->rev_k;
    uint64_t kactor = s->node[s->rev_k].actor;
    for (size_t i = 0; i < b.n; i++) {
        rep__change_t c;
        if (rep__change_decode(b.changes[i].p, b.changes[i].n, &c) != 0)
            continue;
        if (after && c.actor == kactor && c.seq > s->rev_cut)
            pr->revoked++;
        else if (c.epoch == s->rev_epoch && !key && !is_relay(s, to))
            pr->rc = REP_EKEY; /* (a relay opens none: it stores them sealed) */
        rep__change_clear(&c);
    }
    rep__batch_clear(&b);
    pr->learns = pr->rc == 0 && learns;
    if (pr->rc)
        pr->revoked = 0;
}


/* ---- Expected state of a set of changes (a view) ------------------------------------------- */
typedef struct sib {
    const och_t *c;
    const op_t *op; /* NULL for the existence register */
} sib_t;

typedef struct oview {
    uint64_t v[SIM_MAX_NODES];
    const och_t **ch; /* every change in the view */
    size_t n;
} oview_t;

static bool
oview_make(sim_t *s, const uint64_t v[SIM_MAX_NODES], oview_t *ov)
{
    memcpy(ov->v, v, sizeof ov->v);
    size_t total = 0;
    for (int k = 0; k < s->n; k++)
        total += v[k];
    ov->n = 0;
    ov->ch = calloc(total ? total : 1, sizeof *ov->ch);
    if (!ov->ch) {
        sim_fail(s, "out of memory");
        return false;
    }
    for (int k = 0; k < s->n; k++)
        for (uint64_t q = 0; q < v[k]; q++)
            ov->ch[ov->n++] = &s->node[k].chs[q];
    return true;
}

static const op_t *
reg_op(const och_t *c, int r, int f)
{
    for (size_t i = 0; i < c->nops; i++) {
        const op_t *o = &c->ops[i];
        if (o->rec == r && o->fname == f && (o->type == O_SET || o->type == O_DEL))
            return o;
    }
    return NULL;
}

/* Does c write set element e of (r, f) (an add or a remove)? */
static bool
set_touches(const och_t *c, int r, int f, int e)
{
    for (size_t i = 0; i < c->nops; i++) {
        const op_t *o = &c->ops[i];
        if (o->rec == r && o->fname == f && o->elem == e && (o->type == O_ADD || o->type == O_REMOVE))
            return true;
    }
    return false;
}

/* The siblings of register (r, f) — or of r's existence register when f < 0 — in the view. */
static size_t
reg_alive(const oview_t *ov, int r, int f, sib_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < ov->n; i++) {
        const och_t *w = ov->ch[i];
        const op_t *op = NULL;
        if (f < 0 ? w->exists[r] == EX_NONE : !(op = reg_op(w, r, f)))
            continue;
        bool gone = false;
        for (size_t j = 0; j < ov->n && !gone; j++) {
            const och_t *c = ov->ch[j];
            if (c == w || !covers(c, w))
                continue;
            gone = c->clear[r] || (f < 0 ? c->exists[r] != EX_NONE : (c->regw[r] >> f) & 1);
        }
        if (!gone)
            out[n++] = (sib_t){w, op};
    }
    return n;
}

static bool
sib_live(const sib_t *x, int r)
{
    return x->op ? x->op->type == O_SET : x->c->exists[r] == EX_LIVE;
}

/* Index of the visible sibling (live, highest (hlc, actor)), or -1. */
static int
reg_winner(const sim_t *s, const sib_t *v, size_t n, int r)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!sib_live(&v[i], r))
            continue;
        if (best < 0 || v[i].c->hlc > v[best].c->hlc ||
            (v[i].c->hlc == v[best].c->hlc &&
             s->node[v[i].c->node].actor > s->node[v[best].c->node].actor))
            best = (int)i;
    }
    return best;
}

/* Is the add of e by change a still a dot of the element in the view? */
static bool
set_dot_alive(const oview_t *ov, int r, int f, int e, const och_t *a)
{
    for (size_t j = 0; j < ov->n; j++) {
        const och_t *c = ov->ch[j];
        if (c != a && covers(c, a) && (c->clear[r] || set_touches(c, r, f, e)))
            return false;
    }
    return true;
}

static int
cmp_log(const sim_t *s, const sib_t *a, const sib_t *b)
{
    if (a->c->hlc != b->c->hlc)
        return a->c->hlc < b->c->hlc ? -1 : 1;
    uint64_t aa = s->node[a->c->node].actor, ba = s->node[b->c->node].actor;
    if (aa != ba)
        return aa < ba ? -1 : 1;
    if (a->c->seq != b->c->seq)
        return a->c->seq < b->c->seq ? -1 : 1;
    return (a->op->pos > b->op->pos) - (a->op->pos < b->op->pos);
}

/* One field (name f, kind k) of a record as the view says it is. */
typedef struct xf {
    bool present;
    sib_t *alive; /* register siblings */
    size_t nalive;
    int winner;
    uint64_t sum; /* counter */
    bool member[NELEM]; /* set */
    size_t nmem;
    sib_t *log; /* log entries in order */
    size_t nlog;
} xf_t;

static void
xf_clear(xf_t *x)
{
    free(x->alive);
    free(x->log);
    memset(x, 0, sizeof *x);
}

static bool
xf_compute(sim_t *s, const oview_t *ov, int r, int f, int k, xf_t *x)
{
    memset(x, 0, sizeof *x);
    x->winner = -1;
    switch (k) {
    case REP_KIND_REGISTER:
        if (!(x->alive = calloc(ov->n ? ov->n : 1, sizeof *x->alive)))
            goto oom;
        x->nalive = reg_alive(ov, r, f, x->alive);
        x->winner = reg_winner(s, x->alive, x->nalive, r);
        x->present = x->winner >= 0;
        break;
    case REP_KIND_COUNTER:
        for (size_t i = 0; i < ov->n; i++)
            for (size_t j = 0; j < ov->ch[i]->nops; j++) {
                const op_t *o = &ov->ch[i]->ops[j];
                if (o->type == O_INCR && o->rec == r && o->fname == f) {
                    x->sum += (uint64_t)o->delta; /* wraps, like the library */
                    x->present = true;
                }
            }
        break;
    case REP_KIND_SET:
        for (size_t i = 0; i < ov->n; i++)
            for (size_t j = 0; j < ov->ch[i]->nops; j++) {
                const op_t *o = &ov->ch[i]->ops[j];
                if (o->type == O_ADD && o->rec == r && o->fname == f && !x->member[o->elem] &&
                    set_dot_alive(ov, r, f, o->elem, ov->ch[i])) {
                    x->member[o->elem] = true;
                    x->nmem++;
                }
            }
        x->present = x->nmem > 0;
        break;
    case REP_KIND_LOG: {
        size_t cap = 0;
        for (size_t i = 0; i < ov->n; i++)
            for (size_t j = 0; j < ov->ch[i]->nops; j++) {
                const op_t *o = &ov->ch[i]->ops[j];
                if (o->type != O_APPEND || o->rec != r || o->fname != f)
                    continue;
                if (x->nlog == cap) {
                    cap = cap ? cap * 2 : 8;
                    sib_t *l = realloc(x->log, cap * sizeof *l);
                    if (!l)
                        goto oom;
                    x->log = l;
                }
                sib_t e = {ov->ch[i], o};
                size_t at = x->nlog++; /* insertion sort: logs are short */
                while (at > 0 && cmp_log(s, &x->log[at - 1], &e) > 0) {
                    x->log[at] = x->log[at - 1];
                    at--;
                }
                x->log[at] = e;
            }
        x->present = x->nlog > 0;
        break;
    }
    }
    return true;
oom:
    sim_fail(s, "out of memory");
    xf_clear(x);
    return false;
}

/* ---- Transactions -------------------------------------------------------------------------- */
static void
describe_op(const op_t *o, char *buf, size_t n)
{
    char v[64];
    rep_value_t rv;
    const char *key = k_recs[o->rec].key, *f = k_fnames[o->fname];
    switch (o->type) {
    case O_SET:
        rv = sval_rep(&o->val);
        snprintf(buf, n, "set %s.%s=%s", key, f, tu_value_fmt(&rv, v, sizeof v));
        break;
    case O_DEL: snprintf(buf, n, "del %s.%s", key, f); break;
    case O_CLEAR: snprintf(buf, n, "delete %s", key); break;
    case O_INCR: snprintf(buf, n, "incr %s.%s %+" PRId64, key, f, o->delta); break;
    case O_ADD:
    case O_REMOVE: {
        sval_t e = elem_value(o->elem);
        rv = sval_rep(&e);
        snprintf(buf, n, "%s %s.%s %s", o->type == O_ADD ? "add" : "remove", key, f,
                 tu_value_fmt(&rv, v, sizeof v));
        break;
    }
    case O_APPEND:
        rv = sval_rep(&o->val);
        snprintf(buf, n, "append %s.%s %s", key, f, tu_value_fmt(&rv, v, sizeof v));
        break;
    default: snprintf(buf, n, "op?%d", o->type); break;
    }
}

/* Buffer one write through the public API (kind given by the op type). */
static int
api_op(rep_txn_t *t, const op_t *o, bool convenience)
{
    const char *key = k_recs[o->rec].key, *f = k_fnames[o->fname];
    rep_value_t v = sval_rep(&o->val);
    sval_t e;
    switch (o->type) {
    case O_SET:
        if (convenience) {
            switch (o->val.type) {
            case REP_NULL: return rep_txn_set_null(t, key, f);
            case REP_BOOL: return rep_txn_set_bool(t, key, f, o->val.b);
            case REP_INT: return rep_txn_set_int(t, key, f, o->val.i);
            case REP_DOUBLE: return rep_txn_set_double(t, key, f, o->val.d);
            case REP_BYTES: return rep_txn_set_bytes(t, key, f, o->val.s, o->val.len);
            case REP_STRING:
                if (strlen(o->val.s) == o->val.len)
                    return rep_txn_set_str(t, key, f, o->val.s);
                break;
            }
        }
        return rep_txn_set(t, key, f, &v);
    case O_DEL: return rep_txn_del_field(t, key, f);
    case O_CLEAR: return rep_txn_del_record(t, key);
    case O_INCR: return rep_txn_incr(t, key, f, o->delta);
    case O_ADD:
    case O_REMOVE:
        e = elem_value(o->elem);
        v = sval_rep(&e);
        return o->type == O_ADD ? rep_txn_add(t, key, f, &v) : rep_txn_remove(t, key, f, &v);
    case O_APPEND: return rep_txn_append(t, key, f, &v);
    }
    return -EINVAL;
}

/*
 * Fold a transaction's writes (in call order) into the change it makes, as replica.h says:
 * a record delete drops the record's earlier writes in it; a register keeps its last write;
 * a set member its last add or remove; every increment and append counts. The existence
 * register is written live when a field of the record is written (anything but a field
 * delete), deleted when the record was only deleted.
 */
static bool
fold_ops(const op_t *raw, size_t n, och_t *c)
{
    int last_clear[NREC];
    bool written[NREC] = {false};
    if (!(c->ops = calloc(n ? n : 1, sizeof *c->ops)))
        return false;
    for (int r = 0; r < NREC; r++)
        last_clear[r] = -1;
    for (size_t i = 0; i < n; i++)
        if (raw[i].type == O_CLEAR)
            last_clear[raw[i].rec] = (int)i;
    for (size_t i = 0; i < n; i++) {
        const op_t *o = &raw[i];
        if (o->type == O_CLEAR || (int)i < last_clear[o->rec])
            continue;
        bool keep = true, reg = o->type == O_SET || o->type == O_DEL;
        bool member = o->type == O_ADD || o->type == O_REMOVE;
        for (size_t j = i + 1; j < n && keep; j++) {
            const op_t *p = &raw[j];
            if (p->rec != o->rec || p->fname != o->fname)
                continue;
            if (reg && (p->type == O_SET || p->type == O_DEL))
                keep = false;
            if (member && (p->type == O_ADD || p->type == O_REMOVE) && p->elem == o->elem)
                keep = false;
        }
        if (!reg || (keep && o->type == O_SET))
            written[o->rec] = true;
        if (!keep)
            continue;
        c->ops[c->nops] = *o;
        c->ops[c->nops++].pos = (uint32_t)i;
        if (reg)
            c->regw[o->rec] |= (uint8_t)(1u << o->fname);
    }
    for (int r = 0; r < NREC; r++) {
        c->clear[r] = last_clear[r] >= 0;
        c->exists[r] = written[r] ? EX_LIVE : c->clear[r] ? EX_DEL : EX_NONE;
    }
    return true;
}

static const char *const k_users[] = {NULL, "", "alice", "bob", "dr. Øst"};

/* Send node i's changes to a peer as a real node would push them: against the last vv that
 * peer sent us (stale), possibly cut short. */
static void net_push(sim_t *s, int from, int to);
static bool check_node(sim_t *s, int i);
static void relay_refuses(sim_t *s);
static void eng_committed(sim_t *s, int i, const uint8_t *vv, size_t vvn);
static void eng_bundle(sim_t *s, int from, int to, uint8_t *bytes, size_t len, bool copy,
                       const uint64_t *view, bool vknows);
static void eng_inject(sim_t *s, int from, int to, const uint8_t *vv, size_t vvn,
                       const uint64_t *want);
static void eng_deliver(sim_t *s, int from, int to, const msg_t *m, size_t len);
static void eng_disconnect(sim_t *s, int a, int b);
static void eng_heal(sim_t *s);
static void eng_tick(sim_t *s, int i);
static void eng_time(sim_t *s, bool extra);
static void eng_restarted(sim_t *s, int i);
static uint64_t eng_bad(sim_t *s, int i);
static void eng_final(sim_t *s);
static bool net_step(sim_t *s, bool faults);

/*
 * Run one transaction of writes raw[0..n) on node i. bad is the index of a write of the wrong
 * kind (or -1): it must be refused with REP_EKIND, either by its call (then the rest commits)
 * or by the commit (then nothing is written).
 */
static void
do_txn(sim_t *s, int i, const op_t *raw, size_t n, int bad, const char *user)
{
    node_t *nd = &s->node[i];
    rep_txn_t *t = NULL;
    rep_info_t *info = NULL;
    op_t kept[SIM_MAX_RAW];
    size_t nkept = 0, prevvn = 0;
    bool refused_at_call = false;
    char d[160];
    uint8_t *prevv = NULL; /* engine mode: the vv before the commit */

    if (!SIM_OK(s, rep_txn_begin(nd->r, user, &t)))
        return;
    for (size_t k = 0; k < n; k++) {
        int rc = api_op(t, &raw[k], tu_rng_chance(&s->rng, 50));
        describe_op(&raw[k], d, sizeof d);
        if (rc == REP_EKIND && (int)k == bad) {
            refused_at_call = true;
            sim_trace(s, "%s: %s refused: %s (as it must be)", nd->name, d, rep_strerror(rc));
            continue;
        }
        if (rc != 0) {
            sim_fail(s, "%s: %s = %d (%s)%s", nd->name, d, rc, rep_strerror(rc),
                     (int)k == bad ? "; want REP_EKIND" : "");
            goto out;
        }
        kept[nkept++] = raw[k];
    }
    uint64_t view[SIM_MAX_NODES];
    if (!node_view(s, i, view, NULL))
        goto out;
    if (s->engine && !SIM_OK(s, rep_replica_vv(nd->r, &prevv, &prevvn)))
        goto out;
    uint64_t seq = 0;
    int rc = rep_txn_commit(t, &seq);
    if (bad >= 0 && !refused_at_call) {
        if (rc != REP_EKIND) {
            describe_op(&raw[bad], d, sizeof d);
            sim_fail(s, "%s: a transaction with \"%s\" (a field of another kind) committed: "
                        "rc %d (%s), seq %" PRIu64 "; want REP_EKIND",
                     nd->name, d, rc, rep_strerror(rc), seq);
            goto out;
        }
        s->st.ekind++;
        uint64_t after[SIM_MAX_NODES];
        if (!node_view(s, i, after, NULL))
            goto out;
        if (seq != 0 || after[i] != view[i])
            sim_fail(s, "%s: commit refused with REP_EKIND but wrote seq %" PRIu64, nd->name,
                     after[i]);
        else
            sim_trace(s, "%s: commit refused: %s (as it must be)", nd->name, rep_strerror(rc));
        goto out;
    }
    if (refused_at_call)
        s->st.ekind++;
    if (rc == REP_EKIND) {
        sim_fail(s, "%s: commit refused with REP_EKIND, but no write names a field that has "
                    "another kind only there",
                 nd->name);
        goto out;
    }
    if (!SIM_OK(s, rc))
        goto out;
    if (nkept == 0) {
        uint64_t after[SIM_MAX_NODES];
        if (seq != 0)
            sim_fail(s, "%s: an empty transaction made change %" PRIu64, nd->name, seq);
        else if (node_view(s, i, after, NULL) && after[i] != view[i])
            sim_fail(s, "%s: an empty transaction moved seq to %" PRIu64, nd->name, after[i]);
        goto out;
    }
    if (seq != nd->nchs + 1) {
        sim_fail(s, "%s: commit gave seq %" PRIu64 ", want %zu", nd->name, seq, nd->nchs + 1);
        goto out;
    }
    if (!SIM_OK(s, rep_replica_info(nd->r, &info)))
        goto out;
    if (info->seq != seq) {
        sim_fail(s, "%s: after commit info.seq %" PRIu64 ", want %" PRIu64, nd->name, info->seq, seq);
        goto out;
    }
    if (nd->nchs == nd->capchs) {
        size_t cap = nd->capchs ? nd->capchs * 2 : 32;
        och_t *v = realloc(nd->chs, cap * sizeof *v);
        if (!v) {
            sim_fail(s, "out of memory");
            goto out;
        }
        nd->chs = v;
        nd->capchs = cap;
    }
    och_t *c = &nd->chs[nd->nchs];
    memset(c, 0, sizeof *c);
    c->node = i;
    c->seq = seq;
    c->hlc = info->hlc; /* the clock value the commit used */
    {
        /* a change's clock is above every clock it has seen: those of the changes it saw,
         * however they came (as state too), capped at the writer's wall clock + max drift
         * (at its lowest: at the start) */
        uint64_t cap = (((uint64_t)((int64_t)s->t0 + nd->skew_ms) + s->drift) << 16) | 0xffff;
        for (int k = 0; k < s->n && !s->failed; k++)
            for (uint64_t q = 1; q <= view[k] && !s->failed; q++) {
                const och_t *p = &s->node[k].chs[q - 1];
                uint64_t seen = p->hlc < cap ? p->hlc : cap;
                if (c->hlc <= seen)
                    sim_fail(s, "%s: change %" PRIu64 " has clock %" PRIu64 ".%u, not above %s:%" PRIu64
                                "'s %" PRIu64 ".%u, which it saw (%s)",
                             nd->name, seq, c->hlc >> 16, (unsigned)(c->hlc & 0xffff),
                             s->node[k].name, q, p->hlc >> 16, (unsigned)(p->hlc & 0xffff),
                             in_log(nd, k, q) ? "as a change" : "as state");
            }
        if (s->failed)
            goto out;
    }
    memcpy(c->ctx, view, sizeof c->ctx);
    c->ctx[i] = seq - 1; /* its own earlier changes: a writer's own chain is in its context (its
                          * vv may lag behind it after a rebuild: they wait in pending) */
    snprintf(c->user, sizeof c->user, "%s", user ? user : "");
    if (!fold_ops(kept, nkept, c)) {
        sim_fail(s, "out of memory");
        goto out;
    }
    nd->nchs++;
    if (!mark_log(s, i, i, seq - 1, seq))
        goto out;
    s->st.commits++;
    s->st.ops += nkept;
    if (g_verbose) {
        char line[1024];
        size_t off = 0;
        for (size_t k = 0; k < nkept && off < sizeof line; k++) {
            describe_op(&kept[k], d, sizeof d);
            off += (size_t)snprintf(line + off, sizeof line - off, "%s%s", k ? "; " : "", d);
        }
        sim_trace(s, "%s commit seq %" PRIu64 " hlc %" PRIu64 ".%u user \"%s\": %s", nd->name, seq,
                  c->hlc >> 16, (unsigned)(c->hlc & 0xffff), c->user, line);
    }
    if (s->engine)
        eng_committed(s, i, prevv, prevvn); /* the engine pushes it */
out:
    rep_free(prevv);
    rep_info_free(&info);
    rep_txn_free(&t);
}

/* A random write to a random record of the random part. */
static void
random_op(sim_t *s, op_t *o, int rec)
{
    tu_rng_t *g = &s->rng;
    memset(o, 0, sizeof *o);
    o->rec = (uint8_t)rec;
    uint64_t x = tu_rng_below(g, 100);
    if (x < 28 || (x < 40 && !k_recs[rec].deletable)) {
        o->type = O_SET;
        o->fname = (uint8_t)(tu_rng_chance(g, 50) ? F_R0 : F_R1);
        sval_random(g, &o->val);
    } else if (x < 35) {
        o->type = O_DEL;
        o->fname = (uint8_t)(tu_rng_chance(g, 50) ? F_R0 : F_R1);
    } else if (x < 40) {
        o->type = O_CLEAR;
    } else if (x < 54) {
        static const int64_t big[] = {INT64_MAX, INT64_MIN, 1000000007};
        o->type = O_INCR;
        o->fname = F_C0;
        o->delta = tu_rng_chance(g, 5) ? big[tu_rng_below(g, 3)]
                                       : (int64_t)tu_rng_range(g, 1, 5) * (tu_rng_chance(g, 40) ? -1 : 1);
    } else if (x < 80) {
        o->type = x < 69 ? O_ADD : O_REMOVE;
        o->fname = F_S0;
        o->elem = (uint8_t)tu_rng_below(g, NELEM);
    } else {
        o->type = O_APPEND;
        o->fname = F_L0;
        sval_random(g, &o->val);
    }
}

/*
 * Pick a write of the wrong kind for node i: either one the same transaction contradicts
 * (an increment then a set of one field) or one the replica's state contradicts (a field it
 * holds with another kind). Returns the number of writes appended to raw (0: none found).
 */
static size_t
wrong_kind_ops(sim_t *s, int i, op_t *raw, size_t n)
{
    tu_rng_t *g = &s->rng;
    int rec = (int)tu_rng_below(g, NREC_RANDOM);
    for (size_t k = 0; k < n; k++)
        if (raw[k].type == O_CLEAR && raw[k].rec == rec)
            return 0; /* keep it simple: the record is not deleted in this transaction */
    op_t *o = &raw[n];
    memset(o, 0, sizeof *o);
    o->rec = (uint8_t)rec;
    if (tu_rng_chance(g, 40)) {
        /* within the transaction: incr c0, then set c0 */
        o->type = O_INCR;
        o->fname = F_C0;
        o->delta = 1;
        o[1] = o[0];
        o[1].type = O_SET;
        sval_random(g, &o[1].val);
        return 2;
    }
    uint64_t v[SIM_MAX_NODES];
    oview_t ov;
    if (!node_view(s, i, v, NULL) || !oview_make(s, v, &ov))
        return 0;
    size_t added = 0;
    int pick = (int)tu_rng_below(g, 3);
    xf_t x;
    for (int tries = 0; tries < 3 && !added && !s->failed; tries++, pick = (pick + 1) % 3) {
        static const int fname[] = {F_C0, F_L0, F_R0};
        static const int kind[] = {REP_KIND_COUNTER, REP_KIND_LOG, REP_KIND_REGISTER};
        if (!xf_compute(s, &ov, rec, fname[pick], kind[pick], &x))
            break;
        bool held = kind[pick] == REP_KIND_REGISTER ? x.nalive > 0 : x.present;
        xf_clear(&x);
        if (!held)
            continue;
        o->fname = (uint8_t)fname[pick];
        switch (kind[pick]) {
        case REP_KIND_COUNTER: /* a set on a counter */
            o->type = O_SET;
            sval_random(g, &o->val);
            break;
        case REP_KIND_LOG: /* an increment of a log */
            o->type = O_INCR;
            o->delta = 3;
            break;
        default: /* an append to a register */
            o->type = O_APPEND;
            sval_random(g, &o->val);
            break;
        }
        added = 1;
    }
    free(ov.ch);
    return added;
}

/* ---- The kind clash on cl/1.f ----------------------------------------------------------------- */
/* One write of kind k to the clash field; live: one that makes the field show (set, add). */
static op_t
clash_op(sim_t *s, int k, bool live)
{
    op_t o;
    memset(&o, 0, sizeof o);
    o.rec = REC_CLASH;
    o.fname = FLD_CLASH;
    switch (k) {
    case REP_KIND_REGISTER:
        o.type = !live && tu_rng_chance(&s->rng, 20) ? O_DEL : O_SET;
        sval_random(&s->rng, &o.val);
        break;
    case REP_KIND_COUNTER:
        o.type = O_INCR;
        o.delta = (int64_t)tu_rng_range(&s->rng, 1, 9);
        break;
    case REP_KIND_SET:
        o.type = !live && tu_rng_chance(&s->rng, 30) ? O_REMOVE : O_ADD;
        o.elem = (uint8_t)tu_rng_below(&s->rng, NELEM);
        break;
    default:
        o.type = O_APPEND;
        sval_random(&s->rng, &o.val);
        break;
    }
    if (o.type != O_SET && o.type != O_APPEND)
        memset(&o.val, 0, sizeof o.val);
    return o;
}

static int
other_kind(sim_t *s, int a, int b)
{
    int k;
    do
        k = (int)tu_rng_range(&s->rng, 1, 4);
    while (k == a || k == b);
    return k;
}

/* Must node i refuse a write of kind k to cl/1.f? Yes when the field exists there with another
 * kind only (replica.h, rep_txn_incr). Returns false when the seed failed. */
static bool
clash_refused(sim_t *s, int i, int k, bool *refused)
{
    uint64_t v[SIM_MAX_NODES];
    oview_t ov;
    bool ex[NKIND] = {false}, other = false, ok = true;
    if (!node_view(s, i, v, NULL) || !oview_make(s, v, &ov))
        return false;
    for (int kk = 1; kk < NKIND && ok; kk++) {
        xf_t x;
        if (!(ok = xf_compute(s, &ov, REC_CLASH, FLD_CLASH, kk, &x)))
            break;
        ex[kk] = kk == REP_KIND_REGISTER ? x.nalive > 0 : x.present; /* its state exists */
        other |= kk != k && ex[kk];
        xf_clear(&x);
    }
    free(ov.ch);
    *refused = other && !ex[k];
    return ok;
}

/* Node i writes cl/1.f with kind k, alone in a transaction; refused says what must happen. */
static void
clash_write(sim_t *s, int i, int k, bool live, bool must_refuse, const char *user)
{
    bool refused;
    if (!clash_refused(s, i, k, &refused))
        return;
    if (refused != must_refuse) {
        sim_fail(s, "simulation: %s writing a %s to cl/1.f: expected refusal %d, oracle says %d",
                 s->node[i].name, kind_name(k), must_refuse, refused);
        return;
    }
    op_t o = clash_op(s, k, live);
    do_txn(s, i, &o, 1, refused ? 0 : -1, user);
}

/* Two replicas start field "f" of cl/1 at once with two kinds; the writer of the first then
 * tries another kind on it, which must be refused. */
static void
clash_start(sim_t *s)
{
    tu_rng_t *g = &s->rng;
    s->clash_a = (int)tu_rng_below(g, (uint64_t)ws_count(s));
    s->clash_b = (int)tu_rng_below(g, (uint64_t)ws_count(s) - 1);
    s->clash_b += s->clash_b >= s->clash_a;
    s->clash_ka = (int)tu_rng_range(g, 1, 4);
    s->clash_kb = other_kind(s, s->clash_ka, s->clash_ka);
    sim_trace(s, "kind clash: %s starts cl/1.f as a %s, %s as a %s", s->node[s->clash_a].name,
              kind_name(s->clash_ka), s->node[s->clash_b].name, kind_name(s->clash_kb));
    clash_write(s, s->clash_a, s->clash_ka, true, false, "alice");
    if (!s->failed)
        clash_write(s, s->clash_a, other_kind(s, s->clash_ka, s->clash_ka), true, true, "alice");
    if (!s->failed)
        clash_write(s, s->clash_b, s->clash_kb, true, false, "bob");
}

/* A random transaction on node i. */
static void
random_txn_at(sim_t *s, int i)
{
    tu_rng_t *g = &s->rng;
    if (rev_dead(s, i))
        return; /* (it can write nothing now: rev_took checked) */
    if (is_relay(s, i)) {
        relay_refuses(s);
        return;
    }
    op_t raw[SIM_MAX_RAW];
    size_t n = 0;
    int bad = -1;
    const char *user = k_users[tu_rng_below(g, sizeof k_users / sizeof *k_users)];
    if (!tu_rng_chance(g, 2)) { /* else: an empty transaction */
        size_t want = (size_t)tu_rng_range(g, 1, 4);
        int rec = (int)tu_rng_below(g, NREC_RANDOM);
        for (size_t k = 0; k < want; k++) {
            if (tu_rng_chance(g, 40)) /* often the same record: in-transaction folding */
                rec = (int)tu_rng_below(g, NREC_RANDOM);
            random_op(s, &raw[n++], rec);
        }
        if (tu_rng_chance(g, 5)) {
            /* the clashing name: either kind may still be written where it exists; a kind
             * that does not exist there while another does is refused */
            int k = tu_rng_chance(g, 80) ? (tu_rng_chance(g, 50) ? s->clash_ka : s->clash_kb)
                                         : other_kind(s, s->clash_ka, s->clash_kb);
            bool refused;
            if (!clash_refused(s, i, k, &refused))
                return;
            raw[n++] = clash_op(s, k, false);
            if (refused)
                bad = (int)n - 1;
        } else if (tu_rng_chance(g, 5)) {
            size_t added = wrong_kind_ops(s, i, raw, n);
            if (added) {
                n += added;
                bad = (int)n - 1;
            }
        }
    }
    if (s->failed)
        return;
    do_txn(s, i, raw, n, bad, user);
    if (s->failed)
        return;
    /* push the news to a peer or two, as a node does after a local write (the engine pushes
     * its own) */
    if (n > 0 && !s->engine && tu_rng_chance(g, 60)) {
        int pushes = (int)tu_rng_range(g, 1, 2);
        for (int p = 0; p < pushes && !s->failed; p++) {
            int to = (int)tu_rng_below(g, (uint64_t)s->n - 1);
            to = to >= i ? to + 1 : to;
            if (!rev_dead(s, to))
                net_push(s, i, to);
        }
    }
}

static void
random_txn(sim_t *s)
{
    random_txn_at(s, (int)tu_rng_below(&s->rng, (uint64_t)ws_count(s)));
}

/* ---- The network --------------------------------------------------------------------------- */
static void
msg_free(msg_t *m)
{
    if (m->copy)
        free(m->bytes);
    else
        rep_free(m->bytes);
    m->bytes = NULL;
}

/* Queue message m (whose bytes it owns) on link from->to. */
static void
net_queue(sim_t *s, int from, int to, msg_t m)
{
    s->st.sent++;
    if (partitioned(s, from, to)) {
        sim_trace(s, "%s -> %s %s lost (partition)", s->node[from].name, s->node[to].name,
                  msg_name(&m));
        msg_free(&m);
        s->st.lost++;
        return;
    }
    link_t *l = &s->link[from][to];
    if (l->n == SIM_LINK_MAX) { /* the link is saturated: the oldest is lost */
        msg_free(&l->q[0]);
        memmove(l->q, l->q + 1, (l->n - 1) * sizeof *l->q);
        l->n--;
        s->st.lost++;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        msg_t *q = realloc(l->q, cap * sizeof *q);
        if (!q) {
            msg_free(&m);
            sim_fail(s, "out of memory");
            return;
        }
        l->q = q;
        l->cap = cap;
    }
    l->q[l->n++] = m;
}

/* Queue a message (bytes from the library, or a malloc'd copy when copy) on link from->to;
 * view is the sender's vv as the message was made. */
static void
net_send(sim_t *s, int from, int to, uint8_t type, uint8_t *bytes, size_t len, bool more,
         bool copy, const uint64_t *view, bool vknows)
{
    msg_t m = {.type = type, .more = more, .copy = copy, .bytes = bytes, .len = len,
               .vknows = vknows};
    if (view)
        memcpy(m.view, view, sizeof m.view);
    net_queue(s, from, to, m);
}

static size_t
pick_max_bytes(sim_t *s)
{
    uint64_t x = tu_rng_below(&s->rng, 100);
    if (x < 60)
        return 0;
    if (x < 85)
        return (size_t)tu_rng_range(&s->rng, 64, 1500);
    return 1; /* one change per batch */
}

/*
 * What node from answers to vv (bytes, or NULL for everything), which says want: mostly
 * rep_replica_catchup, as the sync engine calls it; sometimes (always with force_export, when
 * single changes are wanted) rep_replica_export, which must say REP_ESTATE exactly when from's
 * log lacks a change they need, and is then answered by catchup, which must send a snapshot.
 * On success *out is the answer (rep_free), *snap says it is a snapshot and have is from's vv.
 */
static bool
answer_bytes(sim_t *s, int from, const uint8_t *vv, size_t vvn, const uint64_t *want,
             size_t max_bytes, bool force_export, uint8_t **out, size_t *outn, bool *more,
             bool *snap, uint64_t have[SIM_MAX_NODES])
{
    static const uint64_t none[SIM_MAX_NODES];
    node_t *nd = &s->node[from];
    uint8_t *b = NULL;
    size_t bn = 0;
    int m = 0, rc;
    *out = NULL;
    if (!node_view(s, from, have, NULL))
        return false;
    bool lacks = log_lacks(s, from, have, want ? want : none);
    if (force_export || tu_rng_chance(&s->rng, 25)) {
        rc = rep_replica_export(nd->r, vv, vvn, max_bytes, &b, &bn, &m);
        if (rc == 0 && (is_snapshot(b, bn) || (lacks && (!max_bytes || !m)))) {
            sim_fail(s, "%s: export answered %s of %zu bytes%s, but its log lacks %s", nd->name,
                     is_snapshot(b, bn) ? "a snapshot" : "a batch", bn, m ? " (more)" : "",
                     lacks ? "changes they need (want REP_ESTATE)" : "nothing (want changes)");
            rep_free(b);
            return false;
        }
        if (rc != REP_ESTATE) {
            if (!SIM_OK(s, rc))
                return false;
            *out = b;
            *outn = bn;
            *more = m != 0;
            *snap = false;
            return true;
        }
        if (!lacks) {
            sim_fail(s, "%s: export says REP_ESTATE, but its log holds every change they need",
                     nd->name);
            return false;
        }
        s->st.estate++;
        sim_trace(s, "%s: export says %s: catchup instead", nd->name, rep_strerror(rc));
        rep_free(b);
        b = NULL;
    }
    if (!SIM_OK(s, rep_replica_catchup(nd->r, vv, vvn, max_bytes, &b, &bn, &m)))
        return false;
    *snap = is_snapshot(b, bn);
    if (*snap && is_relay(s, from)) {
        sim_fail(s, "%s: catchup answered a snapshot of %zu bytes; a relay has no state", nd->name,
                 bn);
        rep_free(b);
        return false;
    }
    if ((lacks && !*snap) || (*snap && (m || (!lacks && max_bytes && bn > max_bytes)))) {
        sim_fail(s, "%s: catchup answered %s of %zu bytes (max %zu, more %d); its log %s",
                 nd->name, *snap ? "a snapshot" : "a batch", bn, max_bytes, m,
                 lacks ? "lacks changes they need (want a snapshot)"
                       : "holds them (want changes, or a snapshot within max_bytes, not cut)");
        rep_free(b);
        return false;
    }
    *out = b;
    *outn = bn;
    *more = m != 0;
    return true;
}

/* from answers vv (bytes, or NULL for everything; want: what they say) for to. */
static void
net_answer(sim_t *s, int from, int to, const uint8_t *vv, size_t vvn, const uint64_t *want,
           size_t max_bytes, bool force_export)
{
    uint8_t *b = NULL;
    size_t bn = 0;
    bool more = false, snap = false;
    uint64_t have[SIM_MAX_NODES];
    if (!answer_bytes(s, from, vv, vvn, want, max_bytes, force_export, &b, &bn, &more, &snap,
                      have))
        return;
    sim_trace(s, "%s -> %s %s %zu bytes%s (max %zu)", s->node[from].name, s->node[to].name,
              snap ? "SNAPSHOT" : "BATCH", bn, more ? ", more" : "", max_bytes);
    if (snap) {
        s->st.snap_sent++;
        s->st.snap_asked++;
    }
    net_send(s, from, to, snap ? M_SNAP : M_BATCH, b, bn, more, false, have,
             s->node[from].knows);
}

static void
net_push(sim_t *s, int from, int to)
{
    node_t *nd = &s->node[from];
    if (rev_dead(s, from) || rev_dead(s, to))
        return;
    net_answer(s, from, to, nd->peer_vv[to], nd->peer_vvn[to], nd->peer_view[to],
               pick_max_bytes(s), false);
}

static void
net_hello(sim_t *s, int from, int to)
{
    uint8_t *vv = NULL;
    size_t vvn = 0;
    uint64_t view[SIM_MAX_NODES];
    if (rev_dead(s, from) || rev_dead(s, to))
        return;
    if (!SIM_OK(s, rep_replica_vv(s->node[from].r, &vv, &vvn)) || !node_view(s, from, view, NULL)) {
        rep_free(vv);
        return;
    }
    sim_trace(s, "%s -> %s HELLO", s->node[from].name, s->node[to].name);
    net_send(s, from, to, M_HELLO, vv, vvn, false, false, view, false);
}

/* Node from sends its whole state to a peer, unasked (the model's merge_state); old: the
 * snapshot it took some time ago, if any. */
static void
net_snapshot(sim_t *s, int from, int to, bool old)
{
    node_t *nd = &s->node[from];
    uint8_t *b = NULL;
    size_t bn = 0;
    uint64_t view[SIM_MAX_NODES];
    bool knows = old ? nd->old_snap_knows : nd->knows;
    if (rev_dead(s, from) || rev_dead(s, to))
        return;
    if (is_relay(s, from)) { /* (it has no state to send) */
        relay_refuses(s);
        return;
    }
    if (old) {
        if (!nd->old_snap)
            return;
        if (!(b = malloc(nd->old_snapn))) {
            sim_fail(s, "out of memory");
            return;
        }
        memcpy(b, nd->old_snap, nd->old_snapn);
        bn = nd->old_snapn;
        memcpy(view, nd->old_snap_view, sizeof view);
    } else if (!SIM_OK(s, rep_replica_snapshot(nd->r, &b, &bn)) || !node_view(s, from, view, NULL)) {
        rep_free(b);
        return;
    }
    if (!old && !is_snapshot(b, bn)) { /* (an old one was checked when it was taken) */
        sim_fail(s, "%s: rep_replica_snapshot gave %zu bytes that are no snapshot", nd->name, bn);
        rep_free(b);
        return;
    }
    sim_trace(s, "%s -> %s SNAPSHOT %zu bytes%s", nd->name, s->node[to].name, bn,
              old ? " (an old one)" : "");
    s->st.snap_sent++;
    if (s->engine)
        eng_bundle(s, from, to, b, bn, old, view, knows);
    else
        net_send(s, from, to, M_SNAP, b, bn, false, old, view, knows);
}

/* Node i keeps a snapshot of its state now, to send (stale) later. */
static void
keep_old_snapshot(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    uint8_t *b = NULL;
    size_t bn = 0;
    if (is_relay(s, i))
        return; /* (it cannot make one: relay_refuses) */
    if (!SIM_OK(s, rep_replica_snapshot(nd->r, &b, &bn)) ||
        !node_view(s, i, nd->old_snap_view, NULL)) {
        rep_free(b);
        return;
    }
    if (!is_snapshot(b, bn)) {
        sim_fail(s, "%s: rep_replica_snapshot gave %zu bytes that are no snapshot", nd->name, bn);
        rep_free(b);
        return;
    }
    rep_free(nd->old_snap);
    nd->old_snap = b;
    nd->old_snapn = bn;
    nd->old_snap_knows = nd->knows;
}

static bool
copy_bytes(sim_t *s, uint8_t **dst, size_t *dstn, const uint8_t *p, size_t n)
{
    free(*dst);
    *dst = NULL;
    *dstn = 0;
    if (!(*dst = malloc(n ? n : 1))) {
        sim_fail(s, "out of memory");
        return false;
    }
    memcpy(*dst, p, n);
    *dstn = n;
    return true;
}

/*
 * Node i lacks the dependencies of changes it holds in pending: rep_replica_missing says which;
 * ask (HELLO) the replica that wrote the first one, which surely has them, or anyone.
 */
static void
net_pull(sim_t *s, int i)
{
    rep_vv_entry_t *miss = NULL;
    size_t nmiss = 0;
    rep_info_t *info = NULL;
    uint64_t view[SIM_MAX_NODES];
    if (rev_dead(s, i))
        return;
    if (!SIM_OK(s, rep_replica_missing(s->node[i].r, &miss, &nmiss)) || !node_view(s, i, view, &info))
        goto out;
    if ((info->pending > 0) != (nmiss > 0)) {
        sim_fail(s, "%s: %" PRIu64 " changes pending but rep_replica_missing lists %zu actors",
                 s->node[i].name, info->pending, nmiss);
        goto out;
    }
    for (size_t k = 0; k < nmiss; k++) {
        int nd = actor_node(s, miss[k].actor);
        if (nd < 0 || miss[k].seq <= view[nd] || miss[k].seq > s->node[nd].nchs ||
            (k > 0 && miss[k - 1].actor >= miss[k].actor)) {
            sim_fail(s, "%s: rep_replica_missing lists actor %016" PRIx64 " up to %" PRIu64
                        " (its node %d, have %" PRIu64 ", made %zu; order %s)",
                     s->node[i].name, miss[k].actor, miss[k].seq, nd, nd >= 0 ? view[nd] : 0,
                     nd >= 0 ? s->node[nd].nchs : 0,
                     k > 0 && miss[k - 1].actor >= miss[k].actor ? "wrong" : "ok");
            goto out;
        }
    }
    if (nmiss == 0 || s->engine) /* (the engine asks for them itself) */
        goto out;
    int to = actor_node(s, miss[tu_rng_below(&s->rng, nmiss)].actor);
    if (to == i || tu_rng_chance(&s->rng, 25)) {
        to = (int)tu_rng_below(&s->rng, (uint64_t)s->n - 1);
        to = to >= i ? to + 1 : to;
    }
    sim_trace(s, "%s: %" PRIu64 " pending, %zu actors missing: pull from %s", s->node[i].name,
              info->pending, nmiss, s->node[to].name);
    net_hello(s, i, to);
out:
    rep_info_free(&info);
    rep_free(miss);
}

/* Node i took the REMOVE entry. Another node refuses the revoked one's connections from then on
 * (ZAP); the revoked node itself can write nothing more (its commits fail with REP_EKEY: it has
 * no key of the current epoch) and leaves the run. */
static void
rev_took(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    int k = s->rev_k;
    nd->knows = true;
    sim_trace(s, "%s takes the revocation of %s", nd->name, s->node[k].name);
    if (i != k) {
        nd->zap = true;
        if (s->engine && nd->econn[k])
            eng_disconnect(s, i, k);
        return;
    }
    nd->dead = true;
    for (int j = 0; j < s->n && s->engine; j++)
        if (j != k && nd->econn[j])
            eng_disconnect(s, k, j);
    rep_txn_t *t = NULL;
    uint64_t seq = 0;
    if (!SIM_OK(s, rep_txn_begin(nd->r, NULL, &t)))
        return;
    int rc = rep_txn_set_int(t, k_recs[0].key, k_fnames[F_R0], 1);
    if (rc == 0)
        rc = rep_txn_commit(t, &seq);
    rep_txn_free(&t);
    if (rc != REP_EKEY)
        sim_fail(s, "%s, revoked, took its revocation, yet a commit there gives %d (%s), seq %" PRIu64
                    "; want REP_EKEY",
                 nd->name, rc, rep_strerror(rc), seq);
}

/*
 * Node to imports bytes from node from: a batch, or a snapshot (snap_view: its sender's vv then).
 * Checks what the import says against what the vv did, and follows what to's log now holds.
 * *was_pending is how many changes were pending before.
 */
static bool
node_import(sim_t *s, int to, int from, const uint8_t *bytes, size_t len,
            const uint64_t *snap_view, bool sknows, rep_import_stats_t *st, uint64_t *grew,
            uint64_t *was_pending)
{
    node_t *nd = &s->node[to];
    rep_info_t *info = NULL;
    uint64_t before[SIM_MAX_NODES], after[SIM_MAX_NODES], R[SIM_MAX_NODES], pending, m0 = 0,
        m1 = 0;
    const uint64_t *base = before;
    rpred_t pr;
    *grew = 0;
    memset(st, 0, sizeof *st);
    if (!node_view(s, to, before, &info))
        return false;
    *was_pending = info->pending;
    rep_info_free(&info);
    rev_predict(s, to, bytes, len, snap_view != NULL, sknows, snap_view, &pr);
    if ((s->rev_done || pr.rc) && !node_members(s, to, &m0))
        return false;
    int rc = rep_replica_import(nd->r, bytes, len, st);
    if (rc != pr.rc) {
        sim_fail(s, "%s: import of a %s from %s gives %d (%s); want %d (%s)%s", nd->name,
                 snap_view ? "snapshot" : "batch", s->node[from].name, rc, rep_strerror(rc),
                 pr.rc, pr.rc ? rep_strerror(pr.rc) : "0",
                 s->rev_done ? " (after the revocation)" : "");
        return false;
    }
    if (rc != 0) { /* refused whole, as the revocation (or the relay's role) says it must be */
        bool relay = is_relay(s, to) && snap_view;
        if (relay)
            s->st.relay_ekey++;
        else
            s->st.rev_refused++;
        sim_trace(s, "%s: import of a %s from %s refused: %s (%s)", nd->name,
                  snap_view ? "snapshot" : "batch", s->node[from].name, rep_strerror(rc),
                  relay ? "a relay takes no state" : "the revocation");
        memset(st, 0, sizeof *st);
        if (!node_view(s, to, after, NULL) || !node_members(s, to, &m1))
            return false;
        if (pr.learns && m1 == s->rev_mseq) { /* (REP_EFORK: it took the REMOVE, rebuilt) */
            rev_took(s, to);
            if (before[s->rev_k] > s->rev_cut) {
                rev_rebuild(s, to, R);
                base = R;
            }
        } else if (m1 != m0) {
            sim_fail(s, "%s: a refused import took membership entries", nd->name);
        }
        if (memcmp(after, base, sizeof after) != 0)
            sim_fail(s, "%s: a refused import changed its vv (or a rebuild did not leave what "
                        "its log holds)",
                     nd->name);
        return !s->failed;
    }
    if (!node_view(s, to, after, &info))
        return false;
    pending = info->pending;
    rep_info_free(&info);
    if (st->revoked != pr.revoked || (!s->rev_done && st->rebuilt)) {
        sim_fail(s, "%s: import from %s says %" PRIu64 " changes revoked, rebuilt %" PRIu64
                    "; want %" PRIu64 " revoked%s",
                 nd->name, s->node[from].name, st->revoked, st->rebuilt, pr.revoked,
                 s->rev_done ? "" : ", no rebuild (no revocation)");
        return false;
    }
    s->st.rev_cut += st->revoked;
    if (s->rev_done) {
        if (!node_members(s, to, &m1))
            return false;
        bool took = m0 < s->rev_mseq && m1 >= s->rev_mseq;
        if (took != pr.learns || m1 > s->rev_mseq) {
            sim_fail(s, "%s: import from %s took its membership log from %" PRIu64 " to %" PRIu64
                        " entries; the REMOVE is entry %" PRIu64 " and %s",
                     nd->name, s->node[from].name, m0, m1, s->rev_mseq,
                     pr.learns ? "it carried it" : "it did not carry it (or it had it)");
            return false;
        }
        if (took) {
            rev_took(s, to);
            if (to == s->rev_k || s->failed)
                return !s->failed; /* out of the run */
            bool rebuild = before[s->rev_k] > s->rev_cut;
            if ((st->rebuilt != 0) != rebuild) {
                sim_fail(s, "%s: took the revocation of %s holding %" PRIu64 " of its changes "
                            "(cutoff %" PRIu64 "), and rebuilt %" PRIu64,
                         nd->name, s->node[s->rev_k].name, before[s->rev_k], s->rev_cut,
                         st->rebuilt);
                return false;
            }
            if (rebuild) {
                *was_pending += rev_rebuild(s, to, R); /* (its log's changes wait now) */
                base = R;
            }
        } else if (st->rebuilt) {
            sim_fail(s, "%s: import from %s rebuilt, but brought no revocation", nd->name,
                     s->node[from].name);
            return false;
        }
        if (to != s->rev_k && nd->knows && after[s->rev_k] > s->rev_cut) {
            sim_fail(s, "%s: took the revocation of %s (cutoff %" PRIu64 "), yet holds %" PRIu64
                        " of its changes",
                     nd->name, s->node[s->rev_k].name, s->rev_cut, after[s->rev_k]);
            return false;
        }
    }
    for (int k = 0; k < s->n; k++) {
        if (after[k] < base[k]) {
            sim_fail(s, "%s: import from %s took its vv of %s down from %" PRIu64 " to %" PRIu64,
                     nd->name, s->node[from].name, s->node[k].name, base[k], after[k]);
            return false;
        }
        *grew += after[k] - base[k];
    }
    if (st->forks != 0) {
        sim_fail(s, "%s: import from %s reports %" PRIu64 " forks; no replica forked", nd->name,
                 s->node[from].name, st->forks);
        return false;
    }
    if (!snap_view) {
        /* each change of the batch is applied, a duplicate, parked or a fork; applied also
         * counts the pending ones it released */
        if (st->applied != *grew || st->pending != pending || st->entries != 0 ||
            st->applied + st->duplicates + st->forks > st->changes + *was_pending) {
            sim_fail(s, "%s: import from %s says %" PRIu64 " changes, %" PRIu64 " applied, %" PRIu64
                        " duplicates, %" PRIu64 " pending, %" PRIu64 " entries; its vv grew by %" PRIu64
                        " and %" PRIu64 " are pending",
                     nd->name, s->node[from].name, st->changes, st->applied, st->duplicates,
                     st->pending, st->entries, *grew, pending);
            return false;
        }
        for (int k = 0; k < s->n; k++)
            if (!mark_log(s, to, k, base[k], after[k]))
                return false;
        return true;
    }
    /* a snapshot: the vv becomes the pointwise maximum of the two, then pending changes it
     * makes deliverable are applied (as changes); those it covers are dropped */
    uint64_t released = 0, state = 0, held = 0;
    for (int k = 0; k < s->n; k++) {
        uint64_t top = base[k] > snap_view[k] ? base[k] : snap_view[k];
        if (after[k] < top) {
            sim_fail(s, "%s: after merging a snapshot from %s that has %s up to %" PRIu64
                        ", its vv has %" PRIu64 " (had %" PRIu64 ")",
                     nd->name, s->node[from].name, s->node[k].name, snap_view[k], after[k],
                     base[k]);
            return false;
        }
        released += after[k] - top;
        state += top - base[k];
        held += base[k] > snap_view[k];
    }
    uint64_t sent = 0;
    for (int k = 0; k < s->n; k++)
        sent += snap_view[k];
    if (st->changes != 0 || st->applied != released || st->pending != pending ||
        (st->entries == 0) != (sent == 0)) {
        sim_fail(s, "%s: snapshot import from %s says %" PRIu64 " changes, %" PRIu64 " entries, %" PRIu64
                    " applied, %" PRIu64 " pending; it brought %" PRIu64 " changes as state (of %" PRIu64
                    "), released %" PRIu64 " from pending, and %" PRIu64 " are pending",
                 nd->name, s->node[from].name, st->changes, st->entries, st->applied, st->pending,
                 state, sent, released, pending);
        return false;
    }
    for (int k = 0; k < s->n; k++) {
        uint64_t top = base[k] > snap_view[k] ? base[k] : snap_view[k];
        if (!mark_log(s, to, k, top, after[k]))
            return false;
    }
    if (state > 0) {
        nd->based = true;
        s->st.snap_merged++;
        s->st.snap_concurrent += held > 0;
        s->st.snap_pending += *was_pending > 0;
    } else {
        s->st.snap_stale++;
    }
    return true;
}

/* ---- The sync engine (engine mode) ---------------------------------------------------------- */
/* Each node's engine knows node k as peer ENG_PEER(k). */
#define ENG_PEER(k)     (100u + (uint32_t)(k))
#define ENG_STORM       200000                  /* deliveries at one instant that mean a storm */
#define ENG_CONVERGE_MS ((uint64_t)1800 * 1000) /* the end: converge within this (virtual) */
#define ENG_RATIO_SANE  20                      /* DATA bytes / one copy per peer: not insane */
#define ENG_CARRY_PCT   60                      /* % of steps in which a busy link carries some */

static int
eng_peer_node(const sim_t *s, uint32_t peer)
{
    return peer >= ENG_PEER(0) && peer < ENG_PEER(s->n) ? (int)(peer - ENG_PEER(0)) : -1;
}

/* Node i's vv as per-node seqs, as node_view() gives it but cheaper (rep_replica_info also
 * counts records and conflicts), and with pending whether changes wait for dependencies
 * (rep_replica_missing lists some exactly when some wait). */
static bool
node_vv(sim_t *s, int i, uint64_t view[SIM_MAX_NODES], bool *pending)
{
    uint8_t *b = NULL, office[REP_OFFICE_ID_BYTES];
    size_t bn = 0, ne = 0;
    rep_vv_entry_t *e = NULL;
    if (!SIM_OK(s, rep_replica_vv(s->node[i].r, &b, &bn)))
        return false;
    int rc = rep__vv_decode(b, bn, office, &e, &ne);
    rep_free(b);
    if (!SIM_OK(s, rc))
        return false;
    memset(view, 0, SIM_MAX_NODES * sizeof *view);
    bool ok = memcmp(office, s->office, sizeof office) == 0;
    if (!ok)
        sim_fail(s, "%s: its vv names another office", s->node[i].name);
    for (size_t k = 0; k < ne && ok; k++) {
        if (e[k].actor == 0)
            continue; /* the length of its membership log */
        int nd = actor_node(s, e[k].actor);
        if (nd < 0 || e[k].seq > s->node[nd].nchs) {
            sim_fail(s, "%s: vv has actor %016" PRIx64 " up to %" PRIu64 ", which %s",
                     s->node[i].name, e[k].actor, e[k].seq,
                     nd < 0 ? "no replica has" : "its replica never made");
            ok = false;
        } else {
            view[nd] = e[k].seq;
        }
    }
    free(e);
    if (ok && pending) {
        rep_vv_entry_t *miss = NULL;
        size_t nmiss = 0;
        if (!SIM_OK(s, rep_replica_missing(s->node[i].r, &miss, &nmiss)))
            return false;
        rep_free(miss);
        *pending = nmiss > 0;
    }
    return ok;
}

/* An engine's message: [version, type, ...]; a DATA's id, part (bytes [off, off + npart) of
 * a payload of total bytes). */
static bool
eng_parse(const uint8_t *p, size_t n, uint64_t *type, uint64_t *id, const uint8_t **part,
          uint32_t *npart, uint64_t *off, uint64_t *total)
{
    rep__rd_t r;
    uint32_t items;
    uint64_t version;
    rep__rd_init(&r, p, n);
    *id = *off = *total = 0;
    *part = NULL;
    *npart = 0;
    if (rep__rd_array(&r, &items) != 0 || rep__rd_uint(&r, &version) != 0 ||
        rep__rd_uint(&r, type) != 0 || version != REP_SYNC_VERSION || *type < REP_SYNC_HELLO ||
        *type > REP_SYNC_HAVE)
        return false;
    if (*type == REP_SYNC_DATA &&
        (items != 6 || rep__rd_uint(&r, id) != 0 || rep__rd_bin(&r, part, npart) != 0 ||
         rep__rd_uint(&r, off) != 0 || rep__rd_uint(&r, total) != 0 || rep__rd_left(&r) != 0 ||
         *off + *npart > *total))
        return false;
    return true;
}

/* Put on the wire what node i's engine wants sent, checking each message: to a connected
 * peer, well-formed, within max_msg, in parts only for a snapshot. A snapshot carries the
 * sender's vv when its first part is taken (the engine made it in the call just made, after
 * any import of that call); its other parts carry the same. */
static void
eng_collect(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    uint64_t view[SIM_MAX_NODES];
    bool have_view = false;
    uint32_t peer;
    uint8_t *p;
    size_t n;
    while (!s->failed && rep__sync_take(nd->sync, &peer, &p, &n) == 1) {
        int j = eng_peer_node(s, peer);
        uint64_t type, id, off, total;
        const uint8_t *pl;
        uint32_t npl;
        if (j < 0 || j == i || !nd->econn[j]) {
            sim_fail(s, "%s: its engine sends a message to peer %u, %s", nd->name, peer,
                     j < 0 || j == i ? "which is none" : "which it was not told is connected");
            free(p);
            return;
        }
        if (!eng_parse(p, n, &type, &id, &pl, &npl, &off, &total)) {
            sim_fail(s, "%s: its engine sends %s a malformed message of %zu bytes", nd->name,
                     s->node[j].name, n);
            free(p);
            return;
        }
        msg_t m = {.type = M_ENGINE, .etype = (uint8_t)type, .copy = true, .bytes = p, .len = n};
        s->st.emsgs[type]++;
        nd->esent[j] += n;
        if (n > s->eopts.max_msg) {
            sim_fail(s, "%s -> %s: a message of %zu bytes; max_msg is %zu", nd->name,
                     s->node[j].name, n, s->eopts.max_msg);
            free(p);
            return;
        }
        if (type == REP_SYNC_DATA) {
            m.epart = npl < total;
            m.elast = off + npl == total;
            s->st.edata_bytes += n;
            if (off == 0) { /* a payload starts: a snapshot, or a batch */
                m.esnap = is_snapshot(pl, npl);
                if (m.esnap) {
                    s->st.esnaps++;
                    s->st.snap_sent++;
                    s->st.snap_asked++;
                    if (!have_view && !(have_view = node_vv(s, i, view, NULL))) {
                        free(p);
                        return;
                    }
                    memcpy(m.view, view, sizeof m.view);
                    m.vknows = nd->knows;
                }
                nd->part_snap[j] = m.esnap;
                nd->part_knows[j] = m.vknows;
                memcpy(nd->part_view[j], m.view, sizeof m.view);
            } else { /* the next part of the payload begun before */
                m.esnap = nd->part_snap[j];
                m.vknows = nd->part_knows[j];
                memcpy(m.view, nd->part_view[j], sizeof m.view);
            }
            s->st.esnap_bytes += m.esnap ? n : 0;
            s->st.eparts += m.epart;
            if ((is_relay(s, i) || is_relay(s, j)) && (m.esnap || m.epart)) {
                sim_fail(s, "%s -> %s: a DATA that is %s; a relay %s no snapshot", nd->name,
                         s->node[j].name, m.esnap ? "a snapshot" : "a part of a payload",
                         is_relay(s, j) ? "takes" : "has");
                free(p);
                return;
            }
            if (is_relay(s, j)) {
                s->st.relay_in++;
                s->st.relay_in_bytes += n;
            } else if (is_relay(s, i)) {
                s->st.relay_out++;
                s->st.relay_out_bytes += n;
            }
            if (m.epart && !m.esnap) {
                sim_fail(s, "%s -> %s: a batch of changes in parts (%u bytes at %" PRIu64
                            " of %" PRIu64 "); max_msg is %zu",
                         nd->name, s->node[j].name, npl, off, total, s->eopts.max_msg);
                free(p);
                return;
            }
            s->st.ehalf += !m.esnap && n > s->eopts.max_msg / 2;
            sim_trace(s, "%s -> %s %s id %" PRIu64 ", %zu bytes (at %" PRIu64 " of %" PRIu64 ")",
                      nd->name, s->node[j].name, msg_name(&m), id, n, off, total);
        } else {
            sim_trace(s, "%s -> %s %s", nd->name, s->node[j].name, msg_name(&m));
        }
        net_queue(s, i, j, m);
    }
}

/* Tick node i's engine now; next_ms must be in the future, within an anti-entropy period
 * while a peer is connected, and never without one. */
static void
eng_tick(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    uint64_t next = 0;
    if (!SIM_OK(s, rep__sync_tick(nd->sync, s->now, &next)))
        return;
    s->st.eticks++;
    nd->dirty = false;
    bool any = false;
    for (int k = 0; k < s->n; k++)
        any |= nd->econn[k];
    if (any ? next <= s->now || next > s->now + s->eopts.anti_entropy_ms : next != UINT64_MAX) {
        sim_fail(s, "%s: tick at %" PRIu64 " sets next_ms %" PRIu64 " (%s a connected peer, "
                    "anti-entropy %" PRIu64 " ms)",
                 nd->name, s->now, next, any ? "with" : "without", s->eopts.anti_entropy_ms);
        return;
    }
    nd->enext = next;
    eng_collect(s, i);
}

/* Node i's vv may have grown (a local commit, an import from a bundle): tell its engine. */
static void
eng_changed(sim_t *s, int i)
{
    if (!SIM_OK(s, rep__sync_changed(s->node[i].sync, s->now)))
        return;
    s->node[i].dirty = true;
    eng_collect(s, i);
}

/* Node i committed a change after having vv (bytes): count what one copy of it to each peer
 * costs (a batch of that one change), and tell the engine; or, as when a thin client in
 * another process wrote it, let the node notice it at its next tick. */
static void
eng_committed(sim_t *s, int i, const uint8_t *vv, size_t vvn)
{
    uint8_t *b = NULL;
    size_t bn = 0;
    if (!SIM_OK(s, rep_replica_export(s->node[i].r, vv, vvn, 0, &b, &bn, NULL)))
        return;
    rep_free(b);
    s->st.eneeded += bn * (uint64_t)(s->n - 1);
    if (tu_rng_chance(&s->rng, 25)) {
        sim_trace(s, "%s: written by another process: its node notices later", s->node[i].name);
        s->node[i].unseen = true;
    } else {
        eng_changed(s, i);
    }
}

/* What is on the wire from a to b is lost. */
static void
link_clear(sim_t *s, int a, int b)
{
    link_t *l = &s->link[a][b];
    for (size_t k = 0; k < l->n; k++)
        msg_free(&l->q[k]);
    s->st.lost += l->n;
    l->n = 0;
}

/* Node i's engine is told peer k connected, and whether it is a relay (as a node does, from
 * its device list: a relay is sent changes only). */
static bool
eng_peer_up(sim_t *s, int i, int k)
{
    if (!SIM_OK(s, rep__sync_connected(s->node[i].sync, ENG_PEER(k), s->now)))
        return false;
    rep__sync_relay(s->node[i].sync, ENG_PEER(k), is_relay(s, k));
    return true;
}

static void
eng_connect(sim_t *s, int a, int b)
{
    int ends[2] = {a, b};
    if (rev_zapped(s, a, b))
        return; /* refused by ZAP */
    for (int e = 0; e < 2 && !s->failed; e++) {
        node_t *nd = &s->node[ends[e]];
        int other = ends[1 - e];
        nd->econn[other] = true;
        nd->dirty = true;
        if (eng_peer_up(s, ends[e], other))
            eng_collect(s, ends[e]);
    }
}

static void
eng_disconnect(sim_t *s, int a, int b)
{
    if (!s->node[a].econn[b] && !s->node[b].econn[a])
        return; /* (refused by ZAP already) */
    s->node[a].econn[b] = s->node[b].econn[a] = false;
    rep__sync_disconnected(s->node[a].sync, ENG_PEER(b));
    rep__sync_disconnected(s->node[b].sync, ENG_PEER(a));
    s->node[a].dirty = s->node[b].dirty = true;
    link_clear(s, a, b);
    link_clear(s, b, a);
}

/* The partition heals: the engines across it connect again. */
static void
eng_heal(sim_t *s)
{
    for (int a = 0; a < s->n && !s->failed; a++)
        for (int b = a + 1; b < s->n && !s->failed; b++)
            if (s->linked[a][b] && s->node[a].group != s->node[b].group)
                eng_connect(s, a, b);
}

/* Node to's replica took a DATA from from (before/after: its vv; pb/pa: whether changes were
 * pending): follow what its log holds, as node_import does. A truncated one must change
 * nothing. */
static void
eng_follow(sim_t *s, int to, int from, const msg_t *m, bool cut, const uint64_t *before,
           const uint64_t *after, bool pb, bool pa)
{
    node_t *nd = &s->node[to];
    uint64_t grew = 0;
    for (int k = 0; k < s->n; k++) {
        if (after[k] < before[k]) { /* (before: after a rebuild, what it held then) */
            sim_fail(s, "%s: a DATA from %s took its vv of %s from %" PRIu64 " down to %" PRIu64,
                     nd->name, s->node[from].name, s->node[k].name, before[k], after[k]);
            return;
        }
        grew += after[k] - before[k];
    }
    if (cut) {
        if (grew || pa != pb)
            sim_fail(s, "%s: a truncated DATA from %s changed its vv (by %" PRIu64
                        ") or pending (%d -> %d)",
                     nd->name, s->node[from].name, grew, pb, pa);
        return;
    }
    s->st.pending += pa;
    if (!m->esnap) {
        for (int k = 0; k < s->n; k++)
            if (!mark_log(s, to, k, before[k], after[k]))
                return;
        sim_trace(s, "%s <- %s DATA: vv grew by %" PRIu64 "%s", nd->name, s->node[from].name,
                  grew, pa ? ", changes wait for dependencies" : "");
        return;
    }
    if (m->epart && (!m->elast || grew == 0))
        return; /* a part: only the last applies the payload, if the others came before it */
    /* a snapshot: the vv becomes the pointwise maximum, then pending changes it makes
     * deliverable are applied (as changes) */
    uint64_t released = 0, state = 0, held = 0;
    for (int k = 0; k < s->n; k++) {
        uint64_t top = before[k] > m->view[k] ? before[k] : m->view[k];
        if (after[k] < top) {
            sim_fail(s, "%s: after merging a snapshot DATA from %s that has %s up to %" PRIu64
                        ", its vv has %" PRIu64 " (had %" PRIu64 ")",
                     nd->name, s->node[from].name, s->node[k].name, m->view[k], after[k],
                     before[k]);
            return;
        }
        released += after[k] - top;
        state += top - before[k];
        held += before[k] > m->view[k];
    }
    for (int k = 0; k < s->n; k++) {
        uint64_t top = before[k] > m->view[k] ? before[k] : m->view[k];
        if (!mark_log(s, to, k, top, after[k]))
            return;
    }
    sim_trace(s, "%s <- %s DATA(snapshot): %" PRIu64 " changes as state, %" PRIu64
                 " released from pending%s%s",
              nd->name, s->node[from].name, state, released, pb ? " (some were)" : "",
              pa ? ", changes wait for dependencies" : "");
    if (state > 0) {
        nd->based = true;
        s->st.snap_merged++;
        s->st.snap_concurrent += held > 0;
        s->st.snap_pending += pb > 0;
        if (tu_rng_chance(&s->rng, 10))
            check_node(s, to); /* right after state came in */
    } else {
        s->st.snap_stale++;
    }
}

/* What node i's engine counted bad of peer k's messages. */
static uint64_t
eng_peer_bad(sim_t *s, int i, int k)
{
    rep__sync_peer_info_t info;
    return s->node[i].sync && rep__sync_peer(s->node[i].sync, ENG_PEER(k), &info) == 0 ? info.bad
                                                                                         : 0;
}

/* Hand message m (its first len bytes: fewer when the simulation truncated it) from from to
 * node to's engine. */
static void
eng_deliver(sim_t *s, int from, int to, const msg_t *m, size_t len)
{
    node_t *nd = &s->node[to];
    bool data = m->etype == REP_SYNC_DATA, cut = len < m->len, pb = false, pa = false;
    uint64_t before[SIM_MAX_NODES], after[SIM_MAX_NODES];
    if (cut) {
        sim_trace(s, "%s -> %s %s truncated to %zu of %zu bytes", s->node[from].name, nd->name,
                  msg_name(m), len, m->len);
        s->st.ecorrupt += nd->econn[from]; /* (a peer not connected is not listened to) */
        nd->ecut_in += nd->econn[from];
    }
    if (nd->econn[from])
        nd->erecv[from] += len;
    if (data && !node_vv(s, to, before, &pb))
        return;
    /* what the revocation says of it: a whole batch, or a snapshot's last part */
    rpred_t pr = {0, 0, false};
    uint64_t m0 = 0, m1 = 0, bad0 = eng_peer_bad(s, to, from);
    if (data && s->rev_done) {
        uint64_t type, id, off, total;
        const uint8_t *pl;
        uint32_t npl;
        if (!node_members(s, to, &m0))
            return;
        if (cut)
            ;
        else if (m->esnap)
            rev_predict(s, to, NULL, 0, true, m->vknows, m->view, &pr);
        else if (eng_parse(m->bytes, m->len, &type, &id, &pl, &npl, &off, &total))
            rev_predict(s, to, pl, npl, false, false, NULL, &pr);
    }
    if (!SIM_OK(s, rep__sync_received(nd->sync, ENG_PEER(from), m->bytes, len, s->now)))
        return;
    nd->dirty = true;
    uint64_t bad = eng_peer_bad(s, to, from) - bad0;
    if (bad && !cut) {
        if (!pr.rc) {
            sim_fail(s, "%s's engine counted a %s from %s bad (%" PRIu64 "); nothing explains it",
                     nd->name, msg_name(m), s->node[from].name, bad);
            return;
        }
        s->st.rev_refused += bad;
        s->st.rev_ebad += bad;
        nd->erev_in += bad;
        sim_trace(s, "%s's engine refused a %s from %s: %s (the revocation)", nd->name,
                  msg_name(m), s->node[from].name, rep_strerror(pr.rc));
    }
    if (data) {
        uint64_t R[SIM_MAX_NODES];
        const uint64_t *base = before;
        if (!node_vv(s, to, after, &pa))
            return;
        if (s->rev_done) {
            if (!node_members(s, to, &m1))
                return;
            bool took = m0 < s->rev_mseq && m1 >= s->rev_mseq;
            if ((took && (!pr.learns || cut)) || m1 > s->rev_mseq) {
                sim_fail(s, "%s: a %s from %s took its membership log from %" PRIu64 " to %" PRIu64
                            " entries; the REMOVE is entry %" PRIu64 ", and it %s",
                         nd->name, msg_name(m), s->node[from].name, m0, m1, s->rev_mseq,
                         cut ? "was truncated" : "did not carry it");
                return;
            }
            if (took) {
                rev_took(s, to);
                if (to == s->rev_k || s->failed)
                    return; /* out of the run */
                if (before[s->rev_k] > s->rev_cut) {
                    rev_rebuild(s, to, R);
                    base = R;
                }
            }
            if (to != s->rev_k && nd->knows && after[s->rev_k] > s->rev_cut) {
                sim_fail(s, "%s: took the revocation of %s (cutoff %" PRIu64 "), yet holds %" PRIu64
                            " of its changes",
                         nd->name, s->node[s->rev_k].name, s->rev_cut, after[s->rev_k]);
                return;
            }
        }
        if (bad && !cut) { /* refused whole */
            if (memcmp(base, after, sizeof after) != 0)
                sim_fail(s, "%s: a refused DATA changed its vv (or a rebuild did not leave what "
                            "its log holds)",
                         nd->name);
        } else {
            eng_follow(s, to, from, m, cut, base, after, pb, pa);
        }
    }
    if (!s->failed)
        eng_collect(s, to);
}

/* One change out of causal order (net_out_of_order), vv and want being the third node's: as
 * a DATA of from's, when to's engine is connected to from (a DATA no engine made, which may
 * overtake what is on the wire), else as a bundle on a USB stick. */
static void
eng_inject(sim_t *s, int from, int to, const uint8_t *vv, size_t vvn, const uint64_t *want)
{
    uint8_t *b = NULL;
    size_t bn = 0;
    bool more = false, snap = false;
    uint64_t have[SIM_MAX_NODES];
    if (!answer_bytes(s, from, vv, vvn, want, 1, true, &b, &bn, &more, &snap, have))
        return;
    if (snap) {
        s->st.snap_sent++;
        s->st.snap_asked++;
    }
    if (!s->node[to].econn[from] || (snap && is_relay(s, to))) {
        /* (no engine sends a relay a snapshot: one on a USB stick it refuses, REP_EKEY) */
        rep_import_stats_t st;
        uint64_t grew, was_pending;
        s->st.ebundles++;
        sim_trace(s, "%s -> %s a bundle of %zu bytes (%s) on a USB stick", s->node[from].name,
                  s->node[to].name, bn, snap ? "a snapshot" : "changes");
        if (node_import(s, to, from, b, bn, snap ? have : NULL, s->node[from].knows, &st, &grew,
                        &was_pending) &&
            !rev_dead(s, to)) {
            s->st.pending += st.pending > 0;
            eng_changed(s, to);
        }
        rep_free(b);
        return;
    }
    rep__buf_t buf;
    msgpack_packer pk;
    rep__buf_init(&buf);
    rep__packer_init(&pk, &buf);
    msgpack_pack_array(&pk, 6); /* [version, 2, id, part, offset, total]: the whole payload */
    msgpack_pack_uint8(&pk, REP_SYNC_VERSION);
    msgpack_pack_uint8(&pk, REP_SYNC_DATA);
    msgpack_pack_uint64(&pk, ++s->inject_id);
    msgpack_pack_bin(&pk, bn);
    msgpack_pack_bin_body(&pk, b, bn);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, bn);
    rep_free(b);
    if (buf.err) {
        rep__buf_free(&buf);
        sim_fail(s, "out of memory");
        return;
    }
    msg_t m = {.type = M_ENGINE, .etype = REP_SYNC_DATA, .esnap = snap, .copy = true,
               .vknows = s->node[from].knows};
    m.bytes = rep__buf_take(&buf, &m.len);
    rep__buf_free(&buf);
    memcpy(m.view, have, sizeof m.view);
    s->st.einject++;
    sim_trace(s, "%s -> %s DATA id %" PRIu64 " of %zu bytes made by the simulation (%s)",
              s->node[from].name, s->node[to].name, s->inject_id, m.len,
              snap ? "a snapshot" : "one change");
    if (tu_rng_chance(&s->rng, 70)) { /* it overtakes what is on the wire */
        eng_deliver(s, from, to, &m, m.len);
        msg_free(&m);
    } else {
        net_queue(s, from, to, m);
    }
}

/* A whole snapshot of from's (net_snapshot: bytes, owned; copy: malloc'd) reaches to on a USB
 * stick: imported there, then its engine is told. */
static void
eng_bundle(sim_t *s, int from, int to, uint8_t *bytes, size_t len, bool copy,
           const uint64_t *view, bool vknows)
{
    msg_t m = {.type = M_SNAP, .copy = copy, .bytes = bytes, .len = len};
    rep_import_stats_t st;
    uint64_t grew, was_pending;
    s->st.ebundles++;
    if (node_import(s, to, from, bytes, len, view, vknows, &st, &grew, &was_pending) &&
        !rev_dead(s, to)) {
        sim_trace(s, "%s <- %s SNAPSHOT on a USB stick: %" PRIu64 " entries, vv grew by %" PRIu64
                     ", %" PRIu64 " released from pending, %" PRIu64 " pending",
                  s->node[to].name, s->node[from].name, st.entries, grew, st.applied, st.pending);
        s->st.pending += st.pending > 0;
        if (grew > st.applied && tu_rng_chance(&s->rng, 10))
            check_node(s, to);
        if (!s->failed)
            eng_changed(s, to);
    }
    msg_free(&m);
}

/* Ticks as time passes: an engine whose next_ms has come, one that was told something since
 * its last tick (a node's loop comes around), and now and then one for no reason. A node
 * first tells its engine of commits made by other processes (and now and then when there
 * were none: the vv "may have grown"). */
static void
eng_time(sim_t *s, bool extra)
{
    for (int i = 0; i < s->n && !s->failed; i++) {
        node_t *nd = &s->node[i];
        if (nd->unseen || (extra && tu_rng_chance(&s->rng, 2))) {
            nd->unseen = false;
            eng_changed(s, i);
        }
        if (s->failed)
            return;
        if (nd->dirty || s->now >= nd->enext || (extra && tu_rng_chance(&s->rng, 3)))
            eng_tick(s, i);
    }
}

/* Engine mode: options, topology, an engine per node, every link connected. */
static void
eng_open(sim_t *s)
{
    tu_rng_t *g = &s->rng;
    rep__sync_opts_t *o = &s->eopts;
    rep__sync_opts_default(o);
    uint64_t x = tu_rng_below(g, 100);
    /* (the engine takes no less than 4096; a snapshot here is 2-4 KB, so larger catch-ups go as
     * snapshots, and own changes, which go as changes, split in bursts) */
    o->max_msg = x < 50   ? 4096
                 : x < 75 ? (size_t)tu_rng_range(g, 4097, 8192)
                 : x < 92 ? (size_t)tu_rng_range(g, 8193, 32768)
                          : (size_t)1 << 20;
    o->relay_delay_ms = tu_rng_chance(g, 10) ? 0 : tu_rng_range(g, 20, 800);
    /* (a step of the simulation is 200 ms on average, and a message waits a step or two) */
    o->anti_entropy_ms = tu_rng_range(g, 500, 5000);
    o->ack_timeout_ms = tu_rng_range(g, 1000, 8000);
    s->inject_id = 1ull << 40;
    s->mesh = tu_rng_chance(g, 50);
    /* with a relay: the workstations in two groups (node 0 in the first), each a mesh or a
     * random tree and some more links, that reach each other only through the relay, which
     * every workstation reaches (a relay takes changes only from a log: a workstation that
     * reached it only through others, who may hold its changes as state, might never get
     * them to the far group) */
    int *grp = s->side, w = ws_count(s);
    if (s->relay >= 0) {
        int one = (int)tu_rng_range(g, 1, (uint64_t)w - 1);
        for (int k = 1; k < w; k++)
            grp[k] = k == one ? 1 : (int)tu_rng_below(g, 2);
        for (int k = 0; k < w; k++)
            s->linked[k][s->relay] = s->linked[s->relay][k] = true;
    }
    for (int k = 1; k < w; k++) { /* a random tree (in each group), and some more links */
        int cand[SIM_MAX_NODES], nc = 0;
        for (int p = 0; p < k; p++)
            if (grp[p] == grp[k])
                cand[nc++] = p;
        if (nc == 0)
            continue; /* (the first of the second group) */
        int p = s->relay >= 0 ? cand[tu_rng_below(g, (uint64_t)nc)]
                              : (int)tu_rng_below(g, (uint64_t)k);
        s->linked[k][p] = s->linked[p][k] = true;
    }
    char topo[256] = "";
    for (int a = 0; a < s->n; a++)
        for (int b = a + 1; b < s->n; b++) {
            if (a < w && b < w && grp[a] == grp[b] && (s->mesh || tu_rng_chance(g, 25)))
                s->linked[a][b] = s->linked[b][a] = true;
            if (s->linked[a][b])
                snprintf(topo + strlen(topo), sizeof topo - strlen(topo), " %d-%d", a, b);
        }
    sim_trace(s, "engine mode: max_msg %zu, relay delay %" PRIu64 " ms, anti-entropy %" PRIu64
                 " ms, ack timeout %" PRIu64 " ms; %s%s:%s",
              o->max_msg, o->relay_delay_ms, o->anti_entropy_ms, o->ack_timeout_ms,
              s->relay >= 0 ? "two groups joined by the relay, each " : "",
              s->mesh ? "a full mesh" : "links", topo);
    for (int i = 0; i < s->n; i++)
        if (!SIM_OK(s, rep__sync_new(s->node[i].r, o, &s->node[i].sync)))
            return;
    for (int a = 0; a < s->n && !s->failed; a++)
        for (int b = a + 1; b < s->n && !s->failed; b++)
            if (s->linked[a][b])
                eng_connect(s, a, b);
}

/* Node i restarted (node_reopen closed its engine before its replica): a fresh engine,
 * connected to the peers it reaches; what was on the wire to and from it may be lost, and a
 * peer may or may not have noticed the connection drop. */
static void
eng_restarted(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    if (!SIM_OK(s, rep__sync_new(nd->r, &s->eopts, &nd->sync)))
        return;
    nd->dirty = true;
    memset(nd->esent, 0, sizeof nd->esent);
    memset(nd->erecv, 0, sizeof nd->erecv);
    for (int k = 0; k < s->n && !s->failed; k++) {
        if (k == i)
            continue;
        if (tu_rng_chance(&s->rng, 50))
            link_clear(s, k, i);
        if (tu_rng_chance(&s->rng, 50))
            link_clear(s, i, k);
        if (!nd->econn[k])
            continue;
        if (tu_rng_chance(&s->rng, 50)) {
            rep__sync_disconnected(s->node[k].sync, ENG_PEER(i));
            if (eng_peer_up(s, k, i))
                eng_collect(s, k);
            s->node[k].dirty = true;
        }
        if (eng_peer_up(s, i, k))
            eng_collect(s, i);
    }
}

/* Bad messages the engines counted: those of engines freed by restarts, and of the live ones. */
static uint64_t
eng_bad(sim_t *s, int i)
{
    uint64_t bad = 0;
    for (int k = 0; k < s->n; k++) {
        rep__sync_peer_info_t info;
        if (k != i && s->node[i].sync && rep__sync_peer(s->node[i].sync, ENG_PEER(k), &info) == 0)
            bad += info.bad;
    }
    return bad;
}

/* Does every replica hold every change, nothing pending? */
static bool
eng_converged(sim_t *s, bool *all, char *why, size_t whyn)
{
    *all = true;
    why[0] = 0;
    for (int i = 0; i < s->n; i++) {
        uint64_t v[SIM_MAX_NODES];
        rep_info_t *info = NULL;
        if (rev_out(s, i))
            continue;
        if (!node_view(s, i, v, &info))
            return false;
        bool has = info->pending == 0 && (!s->rev_done || s->node[i].knows);
        for (int k = 0; k < s->n; k++)
            has &= v[k] == expect_seq(s, k);
        if (!has) {
            size_t off = strlen(why);
            snprintf(why + off, whyn - off, " %s has", s->node[i].name);
            for (int k = 0; k < s->n; k++) {
                off = strlen(why);
                snprintf(why + off, whyn - off, " %" PRIu64 "/%" PRIu64, v[k], expect_seq(s, k));
            }
            off = strlen(why);
            snprintf(why + off, whyn - off, " (%" PRIu64 " pending%s);", info->pending,
                     s->rev_done && !s->node[i].knows ? ", revocation not taken" : "");
        }
        *all &= has;
        rep_info_free(&info);
    }
    return true;
}

/* Deliver all that is on the wire (no faults) and tick the engines told something, until
 * nothing more comes at this instant. */
static bool
eng_flush(sim_t *s)
{
    for (uint64_t k = 0; !s->failed;) {
        bool any = false;
        while (!s->failed && net_step(s, false)) {
            any = true;
            if (++k > ENG_STORM) {
                char note[256];
                sim_fail(s, "engines: still sending after %d deliveries at one instant (a storm)%s",
                         ENG_STORM, rev_bug_note(s, note, sizeof note));
                return false;
            }
        }
        for (int i = 0; i < s->n && !s->failed; i++)
            if (s->node[i].dirty) {
                any = true;
                eng_tick(s, i);
            }
        if (!any)
            break;
    }
    return !s->failed;
}

/*
 * The end, engine mode: the partition heals, then the network runs without faults, time
 * passing from one next_ms to the next, until every replica holds every change (within
 * ENG_CONVERGE_MS); then two anti-entropy periods and an ack timeout more (stale knowledge of
 * peers is replaced by HELLOs), then two periods in which no DATA may be sent; every peer is
 * then known to lack nothing. No message was counted bad but those the simulation truncated.
 */
static void
eng_final(sim_t *s)
{
    const rep__sync_opts_t *o = &s->eopts;
    if (s->partition_left > 0) {
        s->partition_left = 0;
        sim_trace(s, "partition heals");
        eng_heal(s);
    }
    uint64_t start = s->now, quiet_from = 0, quiet_to = 0, data0 = 0;
    bool conv = false, quiet = false;
    char why[512];
    for (int i = 0; i < ws_count(s) && s->relay >= 0; i++) {
        uint64_t v[SIM_MAX_NODES];
        if (rev_out(s, i))
            continue;
        if (!node_vv(s, i, v, NULL))
            return;
        for (int k = 0; k < ws_count(s); k++)
            if (s->side[k] != s->side[i] && v[k] < expect_seq(s, k))
                s->st.relay_cross += expect_seq(s, k) - v[k];
    }
    s->st.relay_cross_seeds = s->st.relay_cross > 0;
    while (!s->failed) {
        if (!eng_flush(s))
            return;
        if (!conv) {
            if (!eng_converged(s, &conv, why, sizeof why))
                return;
            if (conv) {
                s->st.econverge_ms += s->now - start;
                quiet_from = s->now + 2 * o->anti_entropy_ms + o->ack_timeout_ms;
                quiet_to = quiet_from + 2 * o->anti_entropy_ms;
                sim_trace(s, "engines converged after %" PRIu64 " ms", s->now - start);
            } else if (s->now - start > ENG_CONVERGE_MS) {
                char note[256];
                sim_fail(s, "engines did not converge within %" PRIu64 " virtual s of healing:%s%s",
                         ENG_CONVERGE_MS / 1000, why, rev_bug_note(s, note, sizeof note));
                return;
            }
        }
        if (conv && s->now >= quiet_from && !quiet) {
            quiet = true;
            data0 = s->st.emsgs[REP_SYNC_DATA];
        }
        if (conv && s->now >= quiet_to)
            break;
        uint64_t next = UINT64_MAX;
        for (int i = 0; i < s->n; i++)
            if (s->node[i].enext < next)
                next = s->node[i].enext;
        if (next == UINT64_MAX) {
            sim_fail(s, "engines: no engine wants a tick, and no peer is connected");
            return;
        }
        s->now = next > s->now ? next : s->now + 1;
        set_clocks(s);
        eng_time(s, false);
    }
    if (s->failed)
        return;
    uint64_t late = s->st.emsgs[REP_SYNC_DATA] - data0;
    if (late) {
        sim_fail(s, "engines: %" PRIu64 " DATA sent in the two anti-entropy periods after they "
                    "had converged and exchanged HELLOs",
                 late);
        return;
    }
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->n; k++) {
            rep__sync_peer_info_t info;
            if (!s->linked[i][k] || rev_out(s, i) || rev_out(s, k))
                continue;
            if (!SIM_OK(s, rep__sync_peer(s->node[i].sync, ENG_PEER(k), &info)))
                return;
            if (!info.connected || info.behind != 0 || info.actor != s->node[k].actor ||
                info.sent_bytes != s->node[i].esent[k] ||
                info.received_bytes != s->node[i].erecv[k]) {
                sim_fail(s, "%s's engine says peer %s is: connected %d, actor %016" PRIx64
                            ", %" PRIu64 " changes behind, %" PRIu64 " bytes sent, %" PRIu64
                            " received (want 1, %016" PRIx64 ", 0, %" PRIu64 ", %" PRIu64 ")",
                         s->node[i].name, s->node[k].name, info.connected, info.actor,
                         info.behind, info.sent_bytes, info.received_bytes, s->node[k].actor,
                         s->node[i].esent[k], s->node[i].erecv[k]);
                return;
            }
        }
    for (int i = 0; i < s->n && !s->failed; i++) {
        node_t *nd = &s->node[i];
        uint64_t bad = eng_bad(s, i);
        s->st.ebad += bad;
        if (bad + nd->ebad_gone != nd->ecut_in + nd->erev_in)
            sim_fail(s, "%s's engines counted %" PRIu64 " messages bad; the simulation truncated "
                        "%" PRIu64 " to it and the revocation explains %" PRIu64 "%s",
                     nd->name, bad + nd->ebad_gone, nd->ecut_in, nd->erev_in,
                     is_relay(s, i) ? " (a relay is sent nothing it refuses)" : "");
    }
    if (s->failed)
        return;
    if (s->st.ebad != s->st.ecorrupt + s->st.rev_ebad) {
        sim_fail(s, "engines counted %" PRIu64 " messages bad; the simulation truncated %" PRIu64
                    " and the revocation explains %" PRIu64,
                 s->st.ebad, s->st.ecorrupt, s->st.rev_ebad);
        return;
    }
    if (s->st.eneeded && s->st.edata_bytes > ENG_RATIO_SANE * s->st.eneeded)
        sim_fail(s, "engines sent %" PRIu64 " DATA bytes; one copy of each change to each peer "
                    "is %" PRIu64 " (more than %dx)",
                 s->st.edata_bytes, s->st.eneeded, ENG_RATIO_SANE);
}

/* Deliver message idx of link from->to; keep it queued (a duplicate on the way) if dup. */
static void
net_deliver(sim_t *s, int from, int to, size_t idx, bool dup, bool cut)
{
    link_t *l = &s->link[from][to];
    msg_t m = l->q[idx];
    if (!dup) {
        memmove(l->q + idx, l->q + idx + 1, (l->n - idx - 1) * sizeof *l->q);
        l->n--;
    } else {
        s->st.dups++;
    }
    s->st.delivered++;
    node_t *nd = &s->node[to];
    if (rev_dead(s, to)) { /* the revoked node left the run */
        sim_trace(s, "%s -> %s %s dropped (revoked)", s->node[from].name, nd->name, msg_name(&m));
    } else if (m.type == M_ENGINE) {
        eng_deliver(s, from, to, &m, cut ? (size_t)tu_rng_below(&s->rng, m.len) : m.len);
    } else if (m.type == M_HELLO) {
        if (copy_bytes(s, &nd->peer_vv[from], &nd->peer_vvn[from], m.bytes, m.len)) {
            memcpy(nd->peer_view[from], m.view, sizeof m.view);
            net_answer(s, to, from, m.bytes, m.len, m.view, pick_max_bytes(s), false);
        }
    } else {
        rep_import_stats_t st;
        uint64_t grew, was_pending;
        bool snap = m.type == M_SNAP;
        if (!node_import(s, to, from, m.bytes, m.len, snap ? m.view : NULL, m.vknows, &st, &grew,
                         &was_pending) ||
            rev_dead(s, to))
            goto out;
        if (snap)
            sim_trace(s, "%s <- %s SNAPSHOT%s: %" PRIu64 " entries, vv grew by %" PRIu64
                         ", %" PRIu64 " released from pending (%" PRIu64 " were), %" PRIu64
                         " pending",
                      nd->name, s->node[from].name, dup ? " (duplicated)" : "", st.entries, grew,
                      st.applied, was_pending, st.pending);
        else
            sim_trace(s, "%s <- %s BATCH%s: %" PRIu64 " changes, %" PRIu64 " applied, %" PRIu64
                         " duplicates, %" PRIu64 " pending, %" PRIu64 " skewed, %" PRIu64
                         " revoked%s",
                      nd->name, s->node[from].name, dup ? " (duplicated)" : "", st.changes,
                      st.applied, st.duplicates, st.pending, st.skewed, st.revoked,
                      st.rebuilt ? ", rebuilt" : "");
        if (st.pending > 0)
            s->st.pending++;
        if (snap && grew > st.applied && tu_rng_chance(&s->rng, 10))
            check_node(s, to); /* right after state came in */
        if (m.more)
            net_hello(s, to, from); /* the rest, please */
        if (st.pending > 0 && !s->failed && tu_rng_chance(&s->rng, 60))
            net_pull(s, to);
    }
out:
    if (!dup)
        msg_free(&m);
}

static void net_step_link(sim_t *s, int from, int to, bool faults);

/* Deliver (or lose, or duplicate) one message of a random non-empty link, maybe not the
 * oldest. Returns false when nothing is in flight. */
static bool
net_step(sim_t *s, bool faults)
{
    int cand[SIM_MAX_NODES * SIM_MAX_NODES][2], nc = 0;
    for (int a = 0; a < s->n; a++)
        for (int b = 0; b < s->n; b++)
            if (s->link[a][b].n) {
                cand[nc][0] = a;
                cand[nc++][1] = b;
            }
    if (nc == 0)
        return false;
    int k = (int)tu_rng_below(&s->rng, (uint64_t)nc);
    net_step_link(s, cand[k][0], cand[k][1], faults);
    return true;
}

/* The engines' network carries messages as time passes: each busy link, more often than not,
 * a message or a few. */
static void
eng_carry(sim_t *s)
{
    int n2 = s->n * s->n, start = (int)tu_rng_below(&s->rng, (uint64_t)n2);
    for (int k = 0; k < n2 && !s->failed; k++) {
        int from = (start + k) % n2 / s->n, to = (start + k) % n2 % s->n;
        if (!s->link[from][to].n || !tu_rng_chance(&s->rng, ENG_CARRY_PCT))
            continue;
        for (int c = (int)tu_rng_range(&s->rng, 1, 3); c > 0 && s->link[from][to].n && !s->failed;
             c--)
            net_step_link(s, from, to, true);
    }
}

/* Deliver (or lose, or duplicate) one message of link from->to (not empty), maybe not the
 * oldest. */
static void
net_step_link(sim_t *s, int from, int to, bool faults)
{
    link_t *l = &s->link[from][to];
    size_t idx = tu_rng_chance(&s->rng, 30) ? (size_t)tu_rng_below(&s->rng, l->n) : 0;
    if (partitioned(s, from, to) || (faults && tu_rng_chance(&s->rng, 6))) {
        sim_trace(s, "%s -> %s %s lost", s->node[from].name, s->node[to].name,
                  msg_name(&l->q[idx]));
        msg_free(&l->q[idx]);
        memmove(l->q + idx, l->q + idx + 1, (l->n - idx - 1) * sizeof *l->q);
        l->n--;
        s->st.lost++;
        return;
    }
    bool dup = faults && tu_rng_chance(&s->rng, 10);
    net_deliver(s, from, to, idx, dup, s->engine && faults && tu_rng_chance(&s->rng, 1));
}

static bool
vv_le(const uint64_t *a, const uint64_t *b, int n)
{
    for (int k = 0; k < n; k++)
        if (a[k] > b[k])
            return false;
    return true;
}

/* A random node other than not, preferring one whose vv is not within *within (has something
 * that vv lacks); -1 picks any. */
static int
pick_ahead(sim_t *s, uint64_t v[][SIM_MAX_NODES], int not, int within)
{
    int cand[SIM_MAX_NODES], nc = 0;
    for (int k = 0; k < s->n; k++)
        if (k != not && (within < 0 || !vv_le(v[k], v[within], s->n)))
            cand[nc++] = k;
    if (nc == 0)
        for (int k = 0; k < s->n; k++)
            if (k != not)
                cand[nc++] = k;
    return cand[tu_rng_below(&s->rng, (uint64_t)nc)];
}

/*
 * One change, out of causal order for its receiver: node from exports the first change a
 * third node lacks (one change only: max_bytes 1) and it goes to node to. When the third node
 * is ahead of to, that change's dependencies are missing there: it waits in pending, and the
 * receiver asks for what rep_replica_missing names.
 */
static void
net_out_of_order(sim_t *s)
{
    tu_rng_t *g = &s->rng;
    uint64_t v[SIM_MAX_NODES][SIM_MAX_NODES];
    for (int k = 0; k < s->n; k++)
        if (rev_dead(s, k))
            memset(v[k], 0, sizeof v[k]);
        else if (!node_view(s, k, v[k], NULL))
            return;
    int to = (int)tu_rng_below(g, (uint64_t)s->n);
    int third = pick_ahead(s, v, to, to);
    int from = pick_ahead(s, v, -1, third);
    if (from == to || rev_dead(s, to) || rev_dead(s, third) || rev_dead(s, from))
        return;
    uint8_t *vv = NULL;
    size_t vvn = 0;
    const uint64_t *want = v[third];
    if (tu_rng_chance(g, 20) && s->node[third].old_vv) {
        vvn = s->node[third].old_vvn; /* an old one */
        want = s->node[third].old_view;
        if (!(vv = malloc(vvn))) {
            sim_fail(s, "out of memory");
            return;
        }
        memcpy(vv, s->node[third].old_vv, vvn);
    } else {
        uint8_t *lib = NULL;
        if (!SIM_OK(s, rep_replica_vv(s->node[third].r, &lib, &vvn)))
            return;
        vv = malloc(vvn ? vvn : 1);
        if (vv)
            memcpy(vv, lib, vvn);
        rep_free(lib);
        if (!vv) {
            sim_fail(s, "out of memory");
            return;
        }
    }
    sim_trace(s, "out of order: %s's first change that %s lacks -> %s", s->node[from].name,
              s->node[third].name, s->node[to].name);
    if (s->engine) {
        eng_inject(s, from, to, vv, vvn, want);
        free(vv);
        return;
    }
    net_answer(s, from, to, vv, vvn, want, 1, true); /* changes; a snapshot if it must */
    free(vv);
    link_t *l = &s->link[from][to];
    if (!s->failed && l->n > 0 && tu_rng_chance(g, 70))
        net_deliver(s, from, to, l->n - 1, false, false); /* it overtakes what is queued */
}

static void
net_anti_entropy(sim_t *s)
{
    sim_trace(s, "anti-entropy round");
    for (int a = 0; a < s->n && !s->failed; a++)
        for (int b = 0; b < s->n && !s->failed; b++)
            if (a != b && !partitioned(s, a, b) && tu_rng_chance(&s->rng, 35))
                net_hello(s, a, b);
}

static void
partition_start(sim_t *s)
{
    tu_rng_t *g = &s->rng;
    int one = (int)tu_rng_range(g, 1, (uint64_t)s->n - 1);
    char side[2][64] = {"", ""};
    for (int i = 0; i < s->n; i++)
        s->node[i].group = i == one ? 1 : i == 0 ? 0 : (int)tu_rng_below(g, 2);
    for (int i = 0; i < s->n; i++)
        snprintf(side[s->node[i].group] + strlen(side[s->node[i].group]),
                 sizeof side[0] - strlen(side[s->node[i].group]), " %s", s->node[i].name);
    s->partition_left = (int)tu_rng_range(g, 5, 40);
    sim_trace(s, "partition {%s } | {%s } for %d steps", side[0], side[1], s->partition_left);
    for (int a = 0; a < s->n && s->engine; a++) /* the engines across it are disconnected */
        for (int b = a + 1; b < s->n; b++)
            if (s->linked[a][b] && s->node[a].group != s->node[b].group)
                eng_disconnect(s, a, b);
}

/* ---- Checking one replica against the oracle ------------------------------------------------ */
static int
fname_index(const char *name)
{
    for (int f = 0; f < NFNAME; f++)
        if (strcmp(name, k_fnames[f]) == 0)
            return f;
    return -1;
}

static bool
value_is(const rep_value_t *got, const sval_t *want)
{
    rep_value_t w = sval_rep(want);
    return tu_value_eq(got, &w);
}

/* Compare a listed sibling set with the oracle's: same dots, flags, clocks, users, values. */
static bool
check_siblings(sim_t *s, const char *who, const char *what, const rep_sibling_t *got, size_t n,
               const sib_t *want, size_t nwant, int winner, int r)
{
    for (size_t j = 0; j < nwant; j++) {
        size_t i;
        for (i = 0; i < n; i++)
            if (s->node[want[j].c->node].actor == got[i].actor && want[j].c->seq == got[i].seq)
                break;
        if (i == n) {
            char b[64] = "a delete";
            rep_value_t wv;
            if (sib_live(&want[j], r) && want[j].op) {
                wv = sval_rep(&want[j].op->val);
                tu_value_fmt(&wv, b, sizeof b);
            } else if (sib_live(&want[j], r)) {
                snprintf(b, sizeof b, "an update");
            }
            sim_fail(s, "%s: %s: %s written by %s:%" PRIu64 " is silently gone: not among the %zu "
                        "siblings listed, and no write that saw it superseded it",
                     who, what, b, s->node[want[j].c->node].name, want[j].c->seq, n);
            return false;
        }
    }
    if (n != nwant) {
        sim_fail(s, "%s: %s lists %zu siblings, want %zu", who, what, n, nwant);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const rep_sibling_t *g = &got[i];
        size_t j;
        for (j = 0; j < nwant; j++)
            if (s->node[want[j].c->node].actor == g->actor && want[j].c->seq == g->seq)
                break;
        if (j == nwant) {
            int nd = actor_node(s, g->actor);
            sim_fail(s, "%s: %s lists sibling %s:%" PRIu64 ", which the oracle says is superseded "
                        "or was never written",
                     who, what, nd >= 0 ? s->node[nd].name : "?", g->seq);
            return false;
        }
        const sib_t *x = &want[j];
        bool live = sib_live(x, r);
        if (g->deleted != !live || g->hlc != x->c->hlc || strcmp(g->user ? g->user : "", x->c->user) ||
            g->winner != ((int)j == winner) || (i > 0 && (got[i - 1].actor > g->actor ||
                                                          (got[i - 1].actor == g->actor &&
                                                           got[i - 1].seq >= g->seq))) ||
            (x->op && live && !value_is(&g->value, &x->op->val))) {
            char a[64], b[64];
            rep_value_t wv = x->op ? sval_rep(&x->op->val) : (rep_value_t){.type = REP_NULL};
            tu_value_fmt(&g->value, a, sizeof a);
            tu_value_fmt(&wv, b, sizeof b);
            sim_fail(s, "%s: %s sibling %s:%" PRIu64 " is {deleted %d, hlc %" PRIu64
                        ", user \"%s\", winner %d, value %s}, want {%d, %" PRIu64
                        ", \"%s\", %d, %s} (siblings in (actor, seq) order)",
                     who, what, s->node[x->c->node].name, g->seq, g->deleted, g->hlc,
                     g->user ? g->user : "(null)", g->winner, a, !live, x->c->hlc, x->c->user,
                     (int)j == winner, b);
            return false;
        }
    }
    return true;
}

typedef struct xrec {
    bool visible, delete_conflict;
    sib_t *ex; /* existence siblings */
    size_t nex;
    int exwin;
    xf_t f[NFNAME][NKIND];
    int nkinds[NFNAME]; /* present kinds per name */
} xrec_t;

static void
xrec_clear(xrec_t *x)
{
    free(x->ex);
    for (int f = 0; f < NFNAME; f++)
        for (int k = 0; k < NKIND; k++)
            xf_clear(&x->f[f][k]);
    memset(x, 0, sizeof *x);
}

static bool
kind_used(int f, int k)
{
    return k_fkind[f] ? (int)k_fkind[f] == k : k >= 1;
}

static bool
xrec_compute(sim_t *s, const oview_t *ov, int r, xrec_t *x)
{
    memset(x, 0, sizeof *x);
    if (!(x->ex = calloc(ov->n ? ov->n : 1, sizeof *x->ex))) {
        sim_fail(s, "out of memory");
        return false;
    }
    x->nex = reg_alive(ov, r, -1, x->ex);
    x->exwin = reg_winner(s, x->ex, x->nex, r);
    x->visible = x->exwin >= 0;
    size_t dead = 0;
    for (size_t i = 0; i < x->nex; i++)
        dead += !sib_live(&x->ex[i], r);
    x->delete_conflict = dead > 0 && dead < x->nex;
    for (int f = 0; f < NFNAME; f++)
        for (int k = 1; k < NKIND; k++) {
            if (!kind_used(f, k))
                continue;
            if (!xf_compute(s, ov, r, f, k, &x->f[f][k]))
                return false;
            x->nkinds[f] += x->f[f][k].present;
        }
    return true;
}

static bool
check_field(sim_t *s, const char *who, int r, const rep_field_t *fl, const xrec_t *x)
{
    int f = fname_index(fl->name);
    int k = (int)fl->kind;
    char what[128];
    snprintf(what, sizeof what, "%s field %s (%s)", k_recs[r].key, fl->name, kind_name(k));
    if (f < 0 || k < 1 || k >= NKIND || !kind_used(f, k) || !x->f[f][k].present) {
        sim_fail(s, "%s: %s is listed but was never written or is gone", who, what);
        return false;
    }
    const xf_t *e = &x->f[f][k];
    if (fl->kind_clash != (x->nkinds[f] >= 2)) {
        sim_fail(s, "%s: %s has kind_clash %d, want %d", who, what, fl->kind_clash,
                 x->nkinds[f] >= 2);
        return false;
    }
    char a[64], b[64];
    switch (k) {
    case REP_KIND_REGISTER: {
        const sval_t *w = &e->alive[e->winner].op->val;
        if (!value_is(&fl->value, w) || fl->siblings != e->nalive) {
            rep_value_t wv = sval_rep(w);
            tu_value_fmt(&fl->value, a, sizeof a);
            tu_value_fmt(&wv, b, sizeof b);
            sim_fail(s, "%s: %s is %s with %u siblings, want %s (by %s:%" PRIu64 ") with %zu", who,
                     what, a, fl->siblings, b, s->node[e->alive[e->winner].c->node].name,
                     e->alive[e->winner].c->seq, e->nalive);
            return false;
        }
        break;
    }
    case REP_KIND_COUNTER:
        if (fl->value.type != REP_INT || (uint64_t)fl->value.u.i != e->sum) {
            tu_value_fmt(&fl->value, a, sizeof a);
            sim_fail(s, "%s: counter %s is %s, want %" PRId64 " (the sum of every increment)",
                     who, what, a, (int64_t)e->sum);
            return false;
        }
        break;
    case REP_KIND_SET: {
        bool seen[NELEM] = {false};
        if (fl->nitems != e->nmem) {
            sim_fail(s, "%s: set %s has %zu members, want %zu (add wins)", who, what, fl->nitems,
                     e->nmem);
            return false;
        }
        for (size_t i = 0; i < fl->nitems; i++) {
            const rep_entry_t *it = &fl->items[i];
            int el;
            for (el = 0; el < NELEM; el++) {
                sval_t ev = elem_value(el);
                if (value_is(&it->value, &ev))
                    break;
            }
            tu_value_fmt(&it->value, a, sizeof a);
            if (el == NELEM || !e->member[el] || seen[el]) {
                sim_fail(s, "%s: set %s lists %s, which %s", who, what, a,
                         el == NELEM ? "was never added" : seen[el] ? "it lists twice"
                                                                     : "was removed (no add survives)");
                return false;
            }
            seen[el] = true;
        }
        break;
    }
    case REP_KIND_LOG:
        if (fl->nitems != e->nlog) {
            sim_fail(s, "%s: log %s has %zu entries, want %zu (every append exactly once)", who,
                     what, fl->nitems, e->nlog);
            return false;
        }
        for (size_t i = 0; i < fl->nitems; i++) {
            const rep_entry_t *it = &fl->items[i];
            const sib_t *w = &e->log[i];
            if (it->actor != s->node[w->c->node].actor || it->seq != w->c->seq ||
                it->hlc != w->c->hlc || !value_is(&it->value, &w->op->val) ||
                strcmp(it->user ? it->user : "", w->c->user) != 0) {
                rep_value_t wv = sval_rep(&w->op->val);
                int nd = actor_node(s, it->actor);
                tu_value_fmt(&it->value, a, sizeof a);
                tu_value_fmt(&wv, b, sizeof b);
                sim_fail(s, "%s: log %s entry %zu is %s:%" PRIu64 " hlc %" PRIu64 " %s \"%s\", "
                            "want %s:%" PRIu64 " hlc %" PRIu64 " %s \"%s\" "
                            "(order: hlc, actor, seq, position)",
                         who, what, i, nd >= 0 ? s->node[nd].name : "?", it->seq, it->hlc, a,
                         it->user ? it->user : "(null)", s->node[w->c->node].name, w->c->seq,
                         w->c->hlc, b, w->c->user);
                return false;
            }
        }
        break;
    }
    return true;
}

/* The set members' dots: each listed member's (actor, seq) is one of its surviving adds. */
static bool
check_set_dots(sim_t *s, const char *who, const oview_t *ov, int r, const rep_field_t *fl)
{
    int f = fname_index(fl->name);
    for (size_t i = 0; i < fl->nitems; i++) {
        const rep_entry_t *it = &fl->items[i];
        int el, nd = actor_node(s, it->actor);
        for (el = 0; el < NELEM; el++) {
            sval_t ev = elem_value(el);
            if (value_is(&it->value, &ev))
                break;
        }
        const och_t *a = nd >= 0 && it->seq >= 1 && it->seq <= ov->v[nd] ? &s->node[nd].chs[it->seq - 1]
                                                                         : NULL;
        bool ok = a && el < NELEM && set_touches(a, r, f, el) && set_dot_alive(ov, r, f, el, a);
        for (size_t j = 0; ok && j < a->nops; j++)
            if (a->ops[j].rec == r && a->ops[j].fname == f && a->ops[j].elem == el)
                ok = a->ops[j].type == O_ADD;
        if (!ok) {
            char v[64];
            tu_value_fmt(&it->value, v, sizeof v);
            sim_fail(s, "%s: %s set %s member %s names add %s:%" PRIu64
                        ", which is not a surviving add of it",
                     who, k_recs[r].key, fl->name, v, nd >= 0 ? s->node[nd].name : "?", it->seq);
            return false;
        }
    }
    return true;
}

/* One conflict the oracle expects rep_replica_conflicts() to list for a record. */
typedef struct xconf {
    int f; /* -1: the record's existence (field "") */
    int kind;
    bool clash;
    const sib_t *sibs;
    size_t n;
    int winner;
    bool seen;
} xconf_t;

/*
 * The conflicts listed for record r, when it is visible (a deleted record lists none): a
 * register that keeps more than one sibling and shows a value, the existence register holding
 * a delete and an update, and each shown field of a name shown with two kinds.
 */
static bool
check_conflicts(sim_t *s, int i, int r, const xrec_t *x)
{
    const char *who = s->node[i].name;
    rep_conflicts_t *cs = NULL;
    xconf_t want[1 + NFNAME * NKIND];
    size_t nw = 0;
    bool ok = false;
    if (x->delete_conflict)
        want[nw++] = (xconf_t){-1, REP_KIND_REGISTER, false, x->ex, x->nex, x->exwin, false};
    for (int f = 0; f < NFNAME; f++)
        for (int k = 1; k < NKIND; k++) {
            const xf_t *e = &x->f[f][k];
            if (!kind_used(f, k))
                continue;
            bool clash = x->nkinds[f] >= 2 && e->present;
            if (k == REP_KIND_REGISTER && e->present && (e->nalive >= 2 || clash))
                want[nw++] = (xconf_t){f, k, clash, e->alive, e->nalive, e->winner, false};
            else if (clash)
                want[nw++] = (xconf_t){f, k, true, NULL, 0, -1, false};
        }
    if (!x->visible)
        nw = 0;
    if (!SIM_OK(s, rep_replica_conflicts(s->node[i].r, k_recs[r].key, &cs)))
        return false;
    if (cs->n != nw) {
        char got[256] = "", exp[256] = "";
        for (size_t c = 0; c < cs->n; c++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " \"%s\"(%s, %zu siblings%s)",
                     cs->items[c].field ? cs->items[c].field : "(null)",
                     kind_name((int)cs->items[c].kind), cs->items[c].n,
                     cs->items[c].kind_clash ? ", clash" : "");
        for (size_t w = 0; w < nw; w++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " \"%s\"(%s, %zu siblings%s)",
                     want[w].f < 0 ? "" : k_fnames[want[w].f], kind_name(want[w].kind), want[w].n,
                     want[w].clash ? ", clash" : "");
        sim_fail(s, "%s: %s has %zu conflicts listed:%s; want %zu:%s%s", who, k_recs[r].key, cs->n,
                 got, nw, exp, x->visible ? "" : " (the record is deleted)");
        goto out;
    }
    for (size_t c = 0; c < cs->n; c++) {
        const rep_conflict_t *it = &cs->items[c];
        int f = it->field && it->field[0] ? fname_index(it->field) : -1;
        size_t w;
        for (w = 0; w < nw; w++)
            if (want[w].f == f && want[w].kind == (int)it->kind && !want[w].seen)
                break;
        if (!it->key || strcmp(it->key, k_recs[r].key) != 0 || (it->field && it->field[0] && f < 0) ||
            w == nw) {
            sim_fail(s, "%s: conflicts of %s list %s field \"%s\" (%s), which is no conflict", who,
                     k_recs[r].key, it->key ? it->key : "(null)", it->field ? it->field : "(null)",
                     kind_name((int)it->kind));
            goto out;
        }
        xconf_t *x2 = &want[w];
        x2->seen = true;
        char what[128];
        snprintf(what, sizeof what, "conflict %s field \"%s\" (%s)", k_recs[r].key, it->field,
                 kind_name((int)it->kind));
        if (it->kind_clash != x2->clash) {
            sim_fail(s, "%s: %s has kind_clash %d, want %d", who, what, it->kind_clash, x2->clash);
            goto out;
        }
        if (c > 0 && strcmp(cs->items[c - 1].field, it->field) > 0) {
            sim_fail(s, "%s: conflicts of %s are not in field order", who, k_recs[r].key);
            goto out;
        }
        if (!check_siblings(s, who, what, it->siblings, it->n, x2->sibs, x2->n, x2->winner, r))
            goto out;
    }
    ok = true;
out:
    rep_conflicts_free(&cs);
    return ok;
}

static int
cmp_hist(const sim_t *s, const och_t *a, const och_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    uint64_t aa = s->node[a->node].actor, ba = s->node[b->node].actor;
    if (aa != ba)
        return aa < ba ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/*
 * rep_replica_history: the changes that touched the record, in (hlc, actor, seq) order — those
 * the replica's log holds. A replica that got changes as state (a snapshot) lacks them there:
 * its history lists the others exactly, and says partial; one that never did lists them all
 * and does not.
 */
static bool
check_history(sim_t *s, int i, const oview_t *ov, int r)
{
    const char *who = s->node[i].name;
    rep_history_t *h = NULL;
    const och_t **want = calloc(ov->n ? ov->n : 1, sizeof *want);
    size_t nw = 0, left_out = 0;
    bool ok = false;
    if (!want) {
        sim_fail(s, "out of memory");
        return false;
    }
    for (size_t k = 0; k < ov->n; k++) {
        const och_t *c = ov->ch[k];
        bool touches = c->exists[r] != EX_NONE || c->clear[r];
        for (size_t j = 0; j < c->nops && !touches; j++)
            touches = c->ops[j].rec == r;
        if (!touches)
            continue;
        if (!in_log(&s->node[i], c->node, c->seq)) {
            left_out++;
            continue;
        }
        size_t at = nw++;
        while (at > 0 && cmp_hist(s, want[at - 1], c) > 0) {
            want[at] = want[at - 1];
            at--;
        }
        want[at] = c;
    }
    if (left_out && !s->node[i].based) {
        sim_fail(s, "simulation: %s never merged a snapshot, yet its log lacks %zu changes",
                 who, left_out);
        goto out;
    }
    if (!SIM_OK(s, rep_replica_history(s->node[i].r, k_recs[r].key, &h)))
        goto out;
    if (h->partial != (int)s->node[i].based) {
        sim_fail(s, "%s: history of %s says partial %d, want %d (%s)", who, k_recs[r].key,
                 h->partial, (int)s->node[i].based,
                 s->node[i].based ? "a snapshot brought it changes" : "it never got changes as state");
        goto out;
    }
    if (h->n != nw) {
        sim_fail(s, "%s: history of %s has %zu changes, want %zu (the %s%zu its log holds)", who,
                 k_recs[r].key, h->n, nw, left_out ? "partial history: " : "", nw);
        goto out;
    }
    for (size_t k = 0; k < nw; k++) {
        const rep_change_info_t *g = &h->changes[k];
        const och_t *w = want[k];
        if (g->actor != s->node[w->node].actor || g->seq != w->seq || g->hlc != w->hlc ||
            strcmp(g->user ? g->user : "", w->user) != 0 || g->nops == 0) {
            int nd = actor_node(s, g->actor);
            sim_fail(s, "%s: history of %s, change %zu is %s:%" PRIu64 " hlc %" PRIu64
                        " user \"%s\" (%zu ops), want %s:%" PRIu64 " hlc %" PRIu64 " user \"%s\"",
                     who, k_recs[r].key, k, nd >= 0 ? s->node[nd].name : "?", g->seq, g->hlc,
                     g->user ? g->user : "(null)", g->nops, s->node[w->node].name, w->seq, w->hlc,
                     w->user);
            goto out;
        }
    }
    ok = true;
out:
    rep_history_free(&h);
    free(want);
    return ok;
}

/* rep_replica_get of every field name: a register's winner, else a counter's total; a set or a
 * log alone is REP_EKIND; nothing (or a deleted record) REP_ENOTFOUND. */
static bool
check_gets(sim_t *s, int i, int r, const xrec_t *x)
{
    for (int f = 0; f < NFNAME; f++) {
        const xf_t *reg = kind_used(f, REP_KIND_REGISTER) ? &x->f[f][REP_KIND_REGISTER] : NULL;
        const xf_t *ctr = kind_used(f, REP_KIND_COUNTER) ? &x->f[f][REP_KIND_COUNTER] : NULL;
        bool other = (kind_used(f, REP_KIND_SET) && x->f[f][REP_KIND_SET].present) ||
                     (kind_used(f, REP_KIND_LOG) && x->f[f][REP_KIND_LOG].present);
        rep_value_t *v = NULL;
        int rc = rep_replica_get(s->node[i].r, k_recs[r].key, k_fnames[f], &v);
        int want_rc = REP_ENOTFOUND;
        rep_value_t want = {.type = REP_NULL};
        if (!x->visible)
            ;
        else if (reg && reg->present)
            want_rc = 0, want = sval_rep(&reg->alive[reg->winner].op->val);
        else if (ctr && ctr->present)
            want_rc = 0, want = (rep_value_t){.type = REP_INT, .u.i = (int64_t)ctr->sum};
        else if (other)
            want_rc = REP_EKIND;
        bool ok = rc == want_rc && (rc != 0 || tu_value_eq(v, &want));
        if (!ok) {
            char a[64] = "-", b[64] = "-";
            if (rc == 0)
                tu_value_fmt(v, a, sizeof a);
            if (want_rc == 0)
                tu_value_fmt(&want, b, sizeof b);
            sim_fail(s, "%s: get %s.%s = %d (%s) %s, want %d (%s) %s", s->node[i].name,
                     k_recs[r].key, k_fnames[f], rc, rep_strerror(rc), a, want_rc,
                     rep_strerror(want_rc), b);
        }
        rep_value_free(&v);
        if (!ok)
            return false;
    }
    return true;
}

static bool
check_record(sim_t *s, int i, const oview_t *ov, int r, bool *visible)
{
    const char *who = s->node[i].name;
    xrec_t x;
    rep_record_t *rec = NULL;
    bool ok = false;
    if (!xrec_compute(s, ov, r, &x))
        goto out;
    *visible = x.visible;
    if (!check_conflicts(s, i, r, &x)) /* first: it names a lost or stale sibling exactly */
        goto out;
    int rc = rep_replica_get_record(s->node[i].r, k_recs[r].key, &rec);
    if (!x.visible) {
        if (rc != REP_ENOTFOUND) {
            sim_fail(s, "%s: get_record %s = %d (%s), want REP_ENOTFOUND: every write to it is "
                        "covered by a delete",
                     who, k_recs[r].key, rc, rep_strerror(rc));
            goto out;
        }
    } else {
        if (rc != 0) {
            sim_fail(s, "%s: get_record %s = %d (%s), want the record: a write to it (%s:%" PRIu64
                        ") is covered by no delete",
                     who, k_recs[r].key, rc, rep_strerror(rc), s->node[x.ex[x.exwin].c->node].name,
                     x.ex[x.exwin].c->seq);
            goto out;
        }
        if (!rec->key || strcmp(rec->key, k_recs[r].key) != 0 ||
            rec->delete_conflict != x.delete_conflict) {
            sim_fail(s, "%s: record %s has key \"%s\", delete_conflict %d; want %d", who,
                     k_recs[r].key, rec->key ? rec->key : "(null)", rec->delete_conflict,
                     x.delete_conflict);
            goto out;
        }
        size_t nwant = 0;
        for (int f = 0; f < NFNAME; f++)
            nwant += (size_t)x.nkinds[f];
        for (size_t k = 0; k < rec->nfields; k++) {
            const rep_field_t *fl = &rec->fields[k];
            if (!check_field(s, who, r, fl, &x))
                goto out;
            if (fl->kind == REP_KIND_SET && !check_set_dots(s, who, ov, r, fl))
                goto out;
            if (k > 0) {
                int c = strcmp(rec->fields[k - 1].name, fl->name);
                if (c > 0 || (c == 0 && rec->fields[k - 1].kind >= fl->kind)) {
                    sim_fail(s, "%s: fields of %s are not in (name, kind) order", who, k_recs[r].key);
                    goto out;
                }
            }
        }
        if (rec->nfields != nwant) {
            sim_fail(s, "%s: record %s has %zu fields, want %zu", who, k_recs[r].key, rec->nfields,
                     nwant);
            goto out;
        }
    }
    ok = check_gets(s, i, r, &x) && check_history(s, i, ov, r);
out:
    rep_record_free(&rec);
    xrec_clear(&x);
    return ok;
}

/* rep_replica_list of each collection: its visible records, in record id byte order. */
static bool
check_lists(sim_t *s, int i, const bool visible[NREC])
{
    for (int c = 0; c < NCOLL; c++) {
        const char *want[NREC];
        size_t nw = 0;
        for (int r = 0; r < NREC; r++) {
            if (!visible[r] || strcmp(k_recs[r].coll, k_colls[c]) != 0)
                continue;
            size_t at = nw++;
            while (at > 0 && strcmp(want[at - 1], k_recs[r].id) > 0) {
                want[at] = want[at - 1];
                at--;
            }
            want[at] = k_recs[r].id;
        }
        rep_list_t *l = NULL;
        if (!SIM_OK(s, rep_replica_list(s->node[i].r, k_colls[c], NULL, 0, &l)))
            return false;
        bool ok = l->n == nw;
        for (size_t k = 0; ok && k < nw; k++) {
            const char *key = l->records[k].key;
            size_t cl = strlen(k_colls[c]);
            ok = key && strncmp(key, k_colls[c], cl) == 0 && key[cl] == '/' &&
                 strcmp(key + cl + 1, want[k]) == 0;
        }
        if (!ok)
            sim_fail(s, "%s: list %s has %zu records (first \"%s\"), want %zu (first \"%s\")",
                     s->node[i].name, k_colls[c], l->n, l->n ? l->records[0].key : "",
                     nw, nw ? want[0] : "");
        rep_list_free(&l);
        if (!ok)
            return false;
    }
    return true;
}

/* The relay holds no state, whatever changes it holds: no record, no conflict, the digest of
 * nothing; everything its vv has came as changes (its log); it cannot write nor make a
 * snapshot (REP_EROLE). */
static bool
check_relay(sim_t *s)
{
    int i = s->relay;
    node_t *nd = &s->node[i];
    rep_info_t *info = NULL;
    rep_vv_entry_t *miss = NULL;
    rep_record_t *rec = NULL;
    size_t nmiss = 0;
    uint64_t v[SIM_MAX_NODES];
    uint8_t d[REP_DIGEST_BYTES];
    bool ok = false;
    s->st.checks++;
    if (!node_view(s, i, v, &info) || !SIM_OK(s, rep_replica_missing(nd->r, &miss, &nmiss)) ||
        !SIM_OK(s, rep_replica_digest(nd->r, d)))
        goto out;
    if (!info->relay || info->records != 0 || info->conflicts != 0 || info->seq != 0 ||
        (info->pending > 0) != (nmiss > 0) || nd->based) {
        sim_fail(s, "%s: info says relay %d, %" PRIu64 " records, %" PRIu64 " conflicts, seq "
                    "%" PRIu64 ", %" PRIu64 " pending (%zu actors missing)%s; a relay holds no "
                    "state",
                 nd->name, info->relay, info->records, info->conflicts, info->seq, info->pending,
                 nmiss, nd->based ? ", and it took a snapshot" : "");
        goto out;
    }
    if (memcmp(d, s->relay_digest, sizeof d) != 0) {
        sim_fail(s, "%s: its digest is no longer that of nothing", nd->name);
        goto out;
    }
    for (int k = 0; k < s->n; k++)
        for (uint64_t q = 1; q <= v[k]; q++)
            if (!in_log(nd, k, q)) {
                sim_fail(s, "%s holds %s:%" PRIu64 ", which came as state", nd->name,
                         s->node[k].name, q);
                goto out;
            }
    int rc = rep_replica_get_record(nd->r, k_recs[tu_rng_below(&s->rng, NREC)].key, &rec);
    if (rc != REP_ENOTFOUND) {
        sim_fail(s, "%s: reading a record gives %d (%s); want REP_ENOTFOUND", nd->name, rc,
                 rep_strerror(rc));
        goto out;
    }
    ok = true;
out:
    rep_record_free(&rec);
    rep_free(miss);
    rep_info_free(&info);
    return ok;
}

/* The relay is asked to write, or to make a snapshot: REP_EROLE, nothing written. */
static void
relay_refuses(sim_t *s)
{
    node_t *nd = &s->node[s->relay];
    rep_txn_t *t = NULL;
    uint8_t *b = NULL;
    size_t bn = 0;
    uint64_t seq = 0;
    if (!SIM_OK(s, rep_txn_begin(nd->r, "relay", &t)))
        return;
    int rc = rep_txn_set_int(t, k_recs[0].key, k_fnames[F_R0], 1);
    if (rc == 0)
        rc = rep_txn_commit(t, &seq);
    rep_txn_free(&t);
    int rs = rep_replica_snapshot(nd->r, &b, &bn);
    rep_free(b);
    if (rc != REP_EROLE || seq != 0 || rs != REP_EROLE)
        sim_fail(s, "%s: a commit gives %d (%s), seq %" PRIu64 ", a snapshot %d (%s); want "
                    "REP_EROLE",
                 nd->name, rc, rep_strerror(rc), seq, rs, rep_strerror(rs));
    else
        s->st.relay_erole += 2;
    sim_trace(s, "%s: a write and a snapshot refused: %s", nd->name, rep_strerror(rc));
}

/* Check replica i against the oracle for the changes it holds (the relay: that it holds no
 * state). */
static bool
check_node(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    if (is_relay(s, i))
        return check_relay(s);
    rep_info_t *info = NULL;
    rep_conflicts_t *all = NULL;
    rep_vv_entry_t *miss = NULL;
    size_t nmiss = 0;
    uint64_t v[SIM_MAX_NODES];
    oview_t ov = {{0}, NULL, 0};
    bool visible[NREC], ok = false;
    s->st.checks++;
    if (!node_view(s, i, v, &info) || !oview_make(s, v, &ov))
        goto out;
    if (s->rev_done && i != s->rev_k && nd->knows && v[s->rev_k] > s->rev_cut) {
        sim_fail(s, "%s: took the revocation of %s (cutoff %" PRIu64 "), yet holds %" PRIu64
                    " of its changes",
                 nd->name, s->node[s->rev_k].name, s->rev_cut, v[s->rev_k]);
        goto out;
    }
    uint64_t wall = tu_clock_ms(&nd->clock), hlc_ms = info->hlc >> 16;
    if (hlc_ms > wall + s->drift + 1) {
        sim_fail(s, "%s: its clock (hlc) is %" PRIu64 " ms ahead of its own wall clock; max drift "
                    "is %" PRIu64 " ms (a far-off device dragged it)",
                 nd->name, hlc_ms - wall, s->drift);
        goto out;
    }
    if (!SIM_OK(s, rep_replica_missing(nd->r, &miss, &nmiss)))
        goto out;
    if ((info->pending > 0) != (nmiss > 0)) {
        sim_fail(s, "%s: %" PRIu64 " pending but %zu actors missing", nd->name, info->pending, nmiss);
        goto out;
    }
    size_t nvisible = 0;
    for (int r = 0; r < NREC; r++) {
        if (!check_record(s, i, &ov, r, &visible[r]))
            goto out;
        nvisible += visible[r];
    }
    if (!check_lists(s, i, visible) || !SIM_OK(s, rep_replica_conflicts(nd->r, NULL, &all)))
        goto out;
    if (info->records != nvisible || info->conflicts != all->n) {
        sim_fail(s, "%s: info says %" PRIu64 " records, %" PRIu64 " conflicts; want %zu, %zu",
                 nd->name, info->records, info->conflicts, nvisible, all->n);
        goto out;
    }
    ok = true;
out:
    free(ov.ch);
    rep_free(miss);
    rep_conflicts_free(&all);
    rep_info_free(&info);
    return ok;
}

/* Replicas holding the same changes have the same digest (invariant 1); check one against the
 * oracle. */
static void
mid_check(sim_t *s)
{
    uint64_t v[SIM_MAX_NODES][SIM_MAX_NODES];
    uint8_t d[SIM_MAX_NODES][REP_DIGEST_BYTES];
    for (int i = 0; i < s->n; i++)
        if (!rev_dead(s, i) &&
            (!node_view(s, i, v[i], NULL) || !SIM_OK(s, rep_replica_digest(s->node[i].r, d[i]))))
            return;
    for (int i = 0; i < s->n; i++)
        for (int j = i + 1; j < s->n; j++)
            if (!rev_dead(s, i) && !rev_dead(s, j) && !is_relay(s, i) && !is_relay(s, j) &&
                memcmp(v[i], v[j], sizeof v[i]) == 0 && memcmp(d[i], d[j], sizeof d[i]) != 0) {
                /* the oracle may say which of them is wrong, and where */
                if (check_node(s, i) && check_node(s, j))
                    sim_fail(s, "%s and %s hold the same changes but their digests differ",
                             s->node[i].name, s->node[j].name);
                return;
            }
    int i = (int)tu_rng_below(&s->rng, (uint64_t)s->n);
    if (rev_dead(s, i))
        return;
    sim_trace(s, "check %s against the oracle", s->node[i].name);
    check_node(s, i);
}

/* ---- Nodes ------------------------------------------------------------------------------------ */
static void
node_opts(sim_t *s, int i, rep_open_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->flags = REP_OPEN_NOSYNC | (is_relay(s, i) ? REP_OPEN_RELAY : 0);
    o->office_name = "sim office";
    o->device_name = s->node[i].name;
    o->max_drift_ms = s->drift_opt;
    tu_clock_use(&s->node[i].clock, o);
}

static void
node_reopen(sim_t *s, int i)
{
    node_t *nd = &s->node[i];
    rep_open_opts_t o;
    rep_info_t *info = NULL;
    uint64_t seq = nd->nchs;
    sim_trace(s, "%s: close and reopen", nd->name);
    if (s->engine) { /* the node stops: its engine goes first (the replica outlives it) */
        uint64_t bad = eng_bad(s, i);
        s->st.ebad += bad;
        nd->ebad_gone += bad;
        rep__sync_free(&nd->sync);
        s->st.erestarts++;
    }
    rep_replica_close(&nd->r);
    node_opts(s, i, &o);
    if (!SIM_OK(s, tu_replica_reopen(&nd->r, s->base, nd->name, &o)) ||
        !SIM_OK(s, rep_replica_info(nd->r, &info)))
        return;
    if (info->actor != nd->actor || info->seq != seq)
        sim_fail(s, "%s: reopened with actor %016" PRIx64 " seq %" PRIu64 ", was %016" PRIx64
                    " seq %" PRIu64,
                 nd->name, info->actor, info->seq, nd->actor, seq);
    rep_info_free(&info);
    if (s->engine && !s->failed)
        eng_restarted(s, i); /* and the node starts a fresh engine */
}

/* ---- The end of a run -------------------------------------------------------------------------- */
static void
final_sync(sim_t *s)
{
    if (s->engine) {
        eng_final(s);
        return;
    }
    s->partition_left = 0;
    /* what is in flight arrives (no more faults), with whatever it sets off */
    for (int k = 0; k < 20000 && !s->failed && net_step(s, false); k++)
        ;
    for (int a = 0; a < s->n; a++)
        for (int b = 0; b < s->n; b++) {
            for (size_t k = 0; k < s->link[a][b].n; k++)
                msg_free(&s->link[a][b].q[k]);
            s->link[a][b].n = 0;
        }
    /* then everyone exchanges with everyone until nothing moves (changes, or state where a
     * log lacks them) */
    uint64_t moved = 1;
    int pass;
    for (pass = 0; pass < 2 * s->n + 2 && moved && !s->failed; pass++) {
        moved = 0;
        for (int to = 0; to < s->n && !s->failed; to++)
            for (int from = 0; from < s->n && !s->failed; from++) {
                if (from == to || rev_out(s, from) || rev_out(s, to))
                    continue; /* (the revoked node is out: it cannot read the office now) */
                uint8_t *vv = NULL, *b = NULL;
                size_t vvn = 0, bn = 0;
                bool more = false, snap = false;
                uint64_t want[SIM_MAX_NODES], have[SIM_MAX_NODES], grew, was_pending;
                rep_import_stats_t st;
                if (SIM_OK(s, rep_replica_vv(s->node[to].r, &vv, &vvn)) &&
                    node_view(s, to, want, NULL) &&
                    answer_bytes(s, from, vv, vvn, want, 0, false, &b, &bn, &more, &snap, have) &&
                    node_import(s, to, from, b, bn, snap ? have : NULL, s->node[from].knows, &st,
                                &grew, &was_pending))
                    moved += grew + st.rebuilt; /* (a rebuild moves: it lowers the vv) */
                s->st.snap_sent += snap && b;
                s->st.snap_asked += snap && b;
                rep_free(vv);
                rep_free(b);
            }
    }
    if (moved && !s->failed)
        sim_fail(s, "anti-entropy still moves changes after %d full rounds", pass);
    sim_trace(s, "final anti-entropy: %d rounds", pass);
}

/* Everyone names a device whose clock is far ahead of its own, when it got one of its changes
 * as a change (a snapshot carries no change, and may carry none of that device's values);
 * no one names one behind it. */
static void
check_skew(sim_t *s)
{
    uint64_t dur = s->now - s->t0;
    for (int j = 0; j < s->n && !s->failed; j++) {
        rep_info_t *info = NULL;
        if (rev_out(s, j) || is_relay(s, j))
            continue; /* (a relay applies nothing: what it notes of clocks is not checked) */
        if (!SIM_OK(s, rep_replica_info(s->node[j].r, &info)))
            return;
        for (size_t e = 0; e < info->nskewed && !s->failed; e++) {
            int k = actor_node(s, info->skewed[e].actor);
            if (k < 0 || k == j || (e > 0 && info->skewed[e - 1].actor >= info->skewed[e].actor))
                sim_fail(s, "%s: skewed lists actor %016" PRIx64 " (%s)", s->node[j].name,
                         info->skewed[e].actor, k < 0 ? "unknown" : k == j ? "itself" : "out of order");
        }
        for (int k = 0; k < s->n && !s->failed; k++) {
            if (k == j)
                continue;
            int64_t ahead = s->node[k].skew_ms - s->node[j].skew_ms;
            const rep_vv_entry_t *e = NULL;
            for (size_t x = 0; x < info->nskewed; x++)
                if (info->skewed[x].actor == s->node[k].actor)
                    e = &info->skewed[x];
            /* a change's hlc is within [its writer's wall, wall + drift + 1 ms] when written and
             * reaches j up to dur later: how far ahead j sees it follows */
            int64_t lo = ahead - (int64_t)dur, hi = ahead + (int64_t)s->drift + 1;
            bool logged = false;
            for (uint64_t q = 1; q <= s->node[k].nchs && !logged; q++)
                logged = in_log(&s->node[j], k, q);
            if (lo > (int64_t)s->drift && logged && !e)
                sim_fail(s, "%s does not report %s as skewed, whose clock is %+" PRId64
                            " ms off its own (max drift %" PRIu64 " ms)",
                         s->node[j].name, s->node[k].name, ahead, s->drift);
            else if (e && (ahead < 0 || (int64_t)e->seq <= (int64_t)s->drift ||
                           (int64_t)e->seq < lo || (int64_t)e->seq > hi))
                sim_fail(s, "%s reports %s as %" PRIu64 " ms ahead; its clock is %+" PRId64
                            " ms off, max drift %" PRIu64 " ms, the run lasted %" PRIu64 " ms",
                         s->node[j].name, s->node[k].name, e->seq, ahead, s->drift, dur);
        }
        rep_info_free(&info);
    }
}

/* Sets list their members in one order on every replica (logs are checked exactly). */
static void
check_same_order(sim_t *s)
{
    for (int r = 0; r < NREC && !s->failed; r++) {
        rep_record_t *first = NULL;
        if (rep_replica_get_record(s->node[0].r, k_recs[r].key, &first) != 0)
            continue;
        for (int i = 1; i < s->n && !s->failed; i++) {
            rep_record_t *rec = NULL;
            if (rev_out(s, i) || is_relay(s, i))
                continue;
            if (!SIM_OK(s, rep_replica_get_record(s->node[i].r, k_recs[r].key, &rec)))
                break;
            bool same = rec->nfields == first->nfields;
            for (size_t f = 0; same && f < rec->nfields; f++) {
                const rep_field_t *a = &first->fields[f], *b = &rec->fields[f];
                same = strcmp(a->name, b->name) == 0 && a->kind == b->kind && a->nitems == b->nitems;
                for (size_t k = 0; same && k < a->nitems; k++)
                    same = tu_value_eq(&a->items[k].value, &b->items[k].value);
            }
            if (!same)
                sim_fail(s, "%s and %s list the fields or members of %s in another order",
                         s->node[0].name, s->node[i].name, k_recs[r].key);
            rep_record_free(&rec);
        }
        rep_record_free(&first);
    }
}

static void
final_checks(sim_t *s)
{
    uint8_t d0[REP_DIGEST_BYTES], d[REP_DIGEST_BYTES];
    for (int i = 0; i < s->n && !s->failed; i++) {
        uint64_t v[SIM_MAX_NODES], m = 0;
        rep_info_t *info = NULL;
        if (rev_out(s, i))
            continue; /* (node 0 never is) */
        if (!node_view(s, i, v, &info))
            return;
        bool all = info->pending == 0;
        for (int k = 0; k < s->n; k++)
            all &= v[k] == expect_seq(s, k);
        if (s->rev_done && (!node_members(s, i, &m) || m != s->rev_mseq || !s->node[i].knows)) {
            rep_info_free(&info);
            sim_fail(s, "%s has %" PRIu64 " membership entries; the REMOVE is entry %" PRIu64,
                     s->node[i].name, m, s->rev_mseq);
            return;
        }
        if (!all) {
            char have[256] = "";
            for (int k = 0; k < s->n; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have),
                         " %s:%" PRIu64 "/%" PRIu64, s->node[k].name, v[k], expect_seq(s, k));
            char note[256];
            sim_fail(s, "%s did not converge: has%s; %" PRIu64 " pending%s", s->node[i].name, have,
                     info->pending, rev_bug_note(s, note, sizeof note));
        }
        rep_info_free(&info);
        if (s->failed)
            return;
        if (is_relay(s, i)) {
            /* it holds every change in its log (the others' state is checked below) */
            for (int k = 0; k < s->n; k++)
                for (uint64_t q = 1; q <= expect_seq(s, k); q++)
                    if (!in_log(&s->node[i], k, q)) {
                        sim_fail(s, "%s's log lacks %s:%" PRIu64, s->node[i].name,
                                 s->node[k].name, q);
                        return;
                    }
            continue;
        }
        if (!SIM_OK(s, rep_replica_digest(s->node[i].r, i ? d : d0)))
            return;
        if (i && memcmp(d, d0, sizeof d) != 0) {
            char a[2 * REP_DIGEST_BYTES + 1], b[2 * REP_DIGEST_BYTES + 1];
            sim_fail(s, "digests differ after convergence: %s %s, %s %s", s->node[0].name,
                     tu_hex(d0, sizeof d0, a), s->node[i].name, tu_hex(d, sizeof d, b));
            return;
        }
    }
    for (int i = 0; i < s->n && !s->failed; i++)
        if (!rev_out(s, i))
            check_node(s, i);
    if (s->failed)
        return;
    check_same_order(s);
    check_skew(s);
    if (s->failed)
        return;
    /* a kind the clashing name does not have is refused (the random part may have started
     * more kinds on it where no other was known yet) */
    int i = (int)tu_rng_below(&s->rng, (uint64_t)ws_count(s)), cand[NKIND], nc = 0;
    if (rev_out(s, i))
        i = (i + 1) % ws_count(s);
    for (int k = 1; k < NKIND && !s->failed; k++) {
        bool refused;
        if (clash_refused(s, i, k, &refused) && refused)
            cand[nc++] = k;
    }
    if (nc > 0 && !s->failed)
        clash_write(s, i, cand[tu_rng_below(&s->rng, (uint64_t)nc)], false, true, NULL);
}

/* ---- One seed --------------------------------------------------------------------------------- */
static void
sim_free(sim_t *s)
{
    for (int i = 0; i < s->n; i++) {
        node_t *nd = &s->node[i];
        rep__sync_free(&nd->sync);
        rep_replica_close(&nd->r);
        for (int k = 0; k < SIM_MAX_NODES; k++)
            free(nd->peer_vv[k]);
        free(nd->old_vv);
        rep_free(nd->old_snap);
        for (int k = 0; k < SIM_MAX_NODES; k++)
            free(nd->inlog[k]);
        for (size_t c = 0; c < nd->nchs; c++)
            free(nd->chs[c].ops);
        free(nd->chs);
        for (int k = 0; k < SIM_MAX_NODES; k++) {
            link_t *l = &s->link[i][k];
            for (size_t m = 0; m < l->n; m++)
                msg_free(&l->q[m]);
            free(l->q);
        }
    }
}

/* Node 0 (the admin) enrolls node i as a relay: role "relay", opened with REP_OPEN_RELAY. */
static bool
relay_create(sim_t *s, int i, const rep_open_opts_t *opts)
{
    node_t *nd = &s->node[i];
    char dir[TU_PATH_MAX];
    uint8_t *prov = NULL;
    size_t provn = 0;
    rep_open_opts_t o = *opts;
    if (!SIM_OK(s, tu_path(dir, s->base, nd->name)) || !SIM_OK(s, mkdir(dir, 0700) ? -errno : 0) ||
        !SIM_OK(s, rep_replica_provision(s->node[0].r, nd->name, "relay", &prov, &provn)))
        return false;
    o.flags |= REP_OPEN_CREATE;
    o.provision = prov;
    o.provision_len = provn;
    int rc = rep_replica_open(&nd->r, dir, &o);
    rep_free(prov);
    return SIM_OK(s, rc);
}

static bool
sim_open(sim_t *s)
{
    tu_rng_t *g = &s->rng;
    if (mkdir(s->base, 0700) != 0) {
        sim_fail(s, "mkdir %s: %s", s->base, strerror(errno));
        return false;
    }
    for (int i = 0; i < s->n; i++) {
        node_t *nd = &s->node[i];
        uint64_t x = tu_rng_below(g, 100);
        if (is_relay(s, i))
            snprintf(nd->name, sizeof nd->name, "relay");
        else
            snprintf(nd->name, sizeof nd->name, "n%u", (unsigned)i % 100);
        nd->skew_ms = (int64_t)tu_rng_below(g, 2001);
        if (x < 9)
            nd->skew_ms += (int64_t)SIM_DAY_MS; /* a workstation a day ahead */
        else if (x < 15)
            nd->skew_ms -= (int64_t)SIM_DAY_MS; /* and one a day behind */
        if (nd->skew_ms > (int64_t)SIM_HOUR_MS)
            s->st.far_skew++;
    }
    set_clocks(s);
    for (int i = 0; i < s->n; i++) {
        node_t *nd = &s->node[i];
        rep_open_opts_t o;
        rep_info_t *info = NULL;
        node_opts(s, i, &o);
        if (is_relay(s, i) ? !relay_create(s, i, &o)
                           : !SIM_OK(s, tu_replica_create(&nd->r, s->base, nd->name, &o,
                                                          i ? s->node[0].r : NULL)))
            return false;
        if (!SIM_OK(s, rep_replica_info(nd->r, &info)))
            return false;
        nd->actor = info->actor;
        if (i == 0)
            memcpy(s->office, info->office_id, sizeof s->office);
        sim_trace(s, "%s: actor %016" PRIx64 ", clock %+" PRId64 " ms", nd->name, nd->actor,
                  nd->skew_ms);
        rep_info_free(&info);
        if (actor_node(s, nd->actor) != i) {
            sim_fail(s, "%s has the actor id of %s", nd->name,
                     s->node[actor_node(s, nd->actor)].name);
            return false;
        }
    }
    for (int i = 1; i < s->n; i++) /* every replica knows every member (node 0 enrolled them) */
        if (!SIM_OK(s, tu_members_share(s->node[0].r, s->node[i].r)))
            return false;
    if (s->relay >= 0 && !SIM_OK(s, rep_replica_digest(s->node[s->relay].r, s->relay_digest)))
        return false; /* (what it holds, as state: nothing, for good) */
    return true;
}

/* Would the office's engines still reach each other without node k (partial topology)? */
static bool
connected_without(const sim_t *s, int k)
{
    bool seen[SIM_MAX_NODES] = {false};
    int stack[SIM_MAX_NODES], n = 0, reached = 1;
    int start = k == 0 ? 1 : 0;
    seen[start] = true;
    stack[n++] = start;
    while (n > 0) {
        int a = stack[--n];
        for (int b = 0; b < s->n; b++)
            if (b != k && !seen[b] && s->linked[a][b]) {
                seen[b] = true;
                stack[n++] = b;
                reached++;
            }
    }
    return reached == s->n - 1;
}

/*
 * Node 0 (the admin) revokes another node: its changes past what node 0 has of it now (the
 * cutoff) are refused everywhere the REMOVE entry arrives, and the office key rotates to a
 * new epoch boxed to the others. The revoked node is chosen so that the others' engines still
 * reach each other (the node is gone: links through it are refused by ZAP). Never the relay;
 * with one, a node whose changes up to the cutoff the relay holds: it alone brings them to
 * the far group, and only from its log (else the revocation waits for a later step; none
 * when none comes).
 */
static void
sim_revoke(sim_t *s)
{
    int cand[SIM_MAX_NODES], nc = 0;
    uint64_t v0[SIM_MAX_NODES], vr[SIM_MAX_NODES];
    if (s->relay >= 0 && (!node_vv(s, 0, v0, NULL) || !node_vv(s, s->relay, vr, NULL)))
        return;
    for (int k = 1; k < ws_count(s); k++)
        if ((!s->engine || connected_without(s, k)) && (s->relay < 0 || vr[k] >= v0[k]))
            cand[nc++] = k;
    if (nc == 0 && s->relay >= 0) {
        sim_trace(s, "the revocation waits: the relay lacks changes node 0 has of each");
        s->rev_step++;
        return;
    }
    if (nc == 0) {
        sim_fail(s, "simulation: no node to revoke keeps the topology connected");
        return;
    }
    int k = cand[tu_rng_below(&s->rev_rng, (uint64_t)nc)];
    node_t *z = &s->node[0];
    uint64_t v[SIM_MAX_NODES], m0 = 0, m1 = 0, kept = 0;
    char id[REP_DEVICE_ID_SIZE];
    uint8_t *b = NULL;
    size_t bn = 0;
    if (!node_view(s, 0, v, NULL) || !node_members(s, 0, &m0))
        return;
    int rc = rep_replica_revoke(s->node[k].r, z->name, id, &kept);
    if (rc != -EPERM) {
        sim_fail(s, "%s (a member) revoking %s gives %d (%s); want -EPERM", s->node[k].name,
                 z->name, rc, rep_strerror(rc));
        return;
    }
    if (!SIM_OK(s, rep_replica_revoke(z->r, s->node[k].name, id, &kept)) ||
        !node_members(s, 0, &m1))
        return;
    s->rev_k = k;
    s->rev_cut = v[k];
    s->rev_mseq = m1;
    s->rev_done = true;
    s->st.rev_seeds = 1;
    if (kept != v[k] || m1 != m0 + 1) {
        sim_fail(s, "%s revoked %s: kept %" PRIu64 " (its vv has %" PRIu64 "), membership log %" PRIu64
                    " -> %" PRIu64 " entries",
                 z->name, s->node[k].name, kept, v[k], m0, m1);
        return;
    }
    /* what waited in its pending for k's late changes applies now (dependencies on them are
     * capped at the cutoff): into its log */
    uint64_t after[SIM_MAX_NODES];
    if (!node_view(s, 0, after, NULL))
        return;
    for (int x = 0; x < s->n; x++)
        if (after[x] > v[x] && !mark_log(s, 0, x, v[x], after[x]))
            return;
    /* the new epoch: what node 0 seals with now */
    rep__snapshot_t snap;
    if (!SIM_OK(s, rep_replica_snapshot(z->r, &b, &bn)))
        return;
    rc = rep__snapshot_decode(b, bn, &snap);
    if (rc == 0) {
        s->rev_epoch = snap.epoch;
        rep__snapshot_clear(&snap);
    }
    rep_free(b);
    if (!SIM_OK(s, rc))
        return;
    sim_trace(s, "%s revokes %s: cutoff %" PRIu64 " of its %zu changes, REMOVE is membership "
                 "entry %" PRIu64 ", new epoch %u",
              z->name, s->node[k].name, s->rev_cut, s->node[k].nchs, s->rev_mseq, s->rev_epoch);
    rev_took(s, 0);
    if (s->engine && !s->failed)
        eng_changed(s, 0); /* its node tells the office */
}

static void
sim_steps(sim_t *s)
{
    tu_rng_t *g = &s->rng;
    /* (engine mode: a few less, for the bursts) */
    int steps = g_steps ? (int)g_steps : (int)tu_rng_range(g, 150, s->engine ? 580 : 650);
    if (s->rev_pct)
        s->rev_step = steps * s->rev_pct / 100 > 0 ? steps * s->rev_pct / 100 : 1;
    for (s->step = 1; s->step <= steps && !s->failed; s->step++) {
        if (s->step == s->rev_step)
            sim_revoke(s);
        s->now += tu_rng_below(g, 400);
        if (tu_rng_chance(g, 3))
            s->now += tu_rng_range(g, 60000, 900000); /* a quiet spell */
        set_clocks(s);
        if (s->partition_left > 0) {
            if (--s->partition_left == 0) {
                sim_trace(s, "partition heals");
                if (s->engine)
                    eng_heal(s); /* the engines connect: HELLOs */
                else
                    net_anti_entropy(s); /* on reconnect */
                continue;
            }
        } else if (tu_rng_chance(g, 3)) {
            partition_start(s);
        }
        if (s->engine) {
            /* time passes for the engines; the network carries a few messages */
            eng_time(s, true);
            eng_carry(s);
        }
        uint64_t x = tu_rng_below(g, 100);
        int a = (int)tu_rng_below(g, (uint64_t)s->n), b = (int)tu_rng_below(g, (uint64_t)s->n - 1);
        b += b >= a;
        if (x < 32) {
            if (s->engine && tu_rng_chance(g, 2)) {
                /* a burst (a thin client imports a pile of records): the engine gets more
                 * than max_msg of its own changes to push at once, and splits them */
                int k = (int)tu_rng_range(g, 8, 30);
                sim_trace(s, "%s: a burst of %d transactions", s->node[a].name, k);
                for (; k > 0 && !s->failed; k--)
                    random_txn_at(s, a);
            } else {
                random_txn(s);
            }
        } else if (x < 62) {
            for (int k = (int)tu_rng_range(g, 1, 4); k > 0 && net_step(s, true); k--)
                ;
        } else if (x < 67) {
            if (s->engine)
                eng_tick(s, a); /* a tick for no reason */
            else
                net_push(s, a, b);
        } else if (x < 73) {
            net_out_of_order(s);
        } else if (x < 75) {
            net_pull(s, a);
        } else if (x < 78) {
            if (s->engine)
                for (int i = 0; i < s->n && !s->failed; i++)
                    eng_tick(s, i);
            else
                net_anti_entropy(s);
        } else if (x < 79) {
            if (!rev_dead(s, a))
                node_reopen(s, a);
        } else if (rev_dead(s, a)) {
            ; /* (it left the run) */
        } else if (x < 82) {
            uint8_t *vv = NULL;
            size_t vvn = 0;
            if (SIM_OK(s, rep_replica_vv(s->node[a].r, &vv, &vvn)) &&
                node_view(s, a, s->node[a].old_view, NULL))
                copy_bytes(s, &s->node[a].old_vv, &s->node[a].old_vvn, vv, vvn);
            rep_free(vv);
            if (!s->failed && tu_rng_chance(g, 50))
                keep_old_snapshot(s, a); /* to arrive after newer changes, later */
        } else if (x < 85) {
            mid_check(s);
        } else if (x < 85 + s->snap_pct) {
            /* the model's merge_state: now and then one taken long ago */
            net_snapshot(s, a, b, tu_rng_chance(g, 25));
        } else {
            net_step(s, true);
        }
    }
}

/* Engine mode or direct mode for a seed: from a hash of it (not from the seed's stream, so
 * a direct seed runs exactly as before the engine mode existed), or as --mode says. */
static bool
seed_engine(uint64_t seed)
{
    if (g_mode)
        return g_mode == 2;
    tu_rng_t h;
    tu_rng_seed(&h, seed ^ 0xe9e9e9e9e9e9e9e9ull);
    return tu_rng_below(&h, 100) < 60;
}

/* A relay in an engine-mode seed: from another hash of it (--relay forces a share). */
static bool
seed_relay(uint64_t seed)
{
    tu_rng_t h;
    tu_rng_seed(&h, seed ^ 0x4e1a4e1a4e1a4e1aull);
    return seed_engine(seed) && (int)tu_rng_below(&h, 100) < (g_relay_pct >= 0 ? g_relay_pct : 30);
}

static bool
run_seed(uint64_t seed, const char *root, sim_stats_t *total, char *why, size_t whyn)
{
    sim_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, whyn, "out of memory");
        return false;
    }
    s->seed = seed;
    s->relay = -1;
    tu_rng_seed(&s->rng, seed);
    tu_sodium_reseed(seed ^ 0x5eed5eed5eed5eedull);
    tu_rng_t *g = &s->rng;
    s->n = (int)tu_rng_range(g, SIM_MIN_NODES, (uint64_t)g_replicas_max);
    s->t0 = s->now = TU_CLOCK_EPOCH_MS + tu_rng_below(g, 400 * SIM_DAY_MS);
    uint64_t x = tu_rng_below(g, 100);
    s->drift_opt = x < 70 ? 0 : x < 85 ? 60 * 1000 : 2 * SIM_HOUR_MS;
    s->drift = s->drift_opt ? s->drift_opt : SIM_DRIFT_MS;
    /* some seeds send no snapshot unasked: state moves only where catchup finds it smaller
     * (a replica far behind), and from there on where a log lacks changes */
    x = tu_rng_below(g, 100);
    s->snap_pct = x < 25 ? 0 : x < 60 ? 1 : 4;
    snprintf(s->base, sizeof s->base, "%s/s%" PRIu64, root, seed);
    s->engine = seed_engine(seed);
    if (seed_relay(seed)) { /* one more node: the relay, last */
        s->relay = s->n++;
        s->st.relay_seeds = 1;
    }
    /* revocation: from a hash of the seed, like the mode (the seed's stream is untouched) */
    s->rev_k = -1;
    tu_rng_seed(&s->rev_rng, seed ^ 0x7e7e0c0c7e7e0c0cull);
    if (g_revoke_pct >= 0 ? (int)tu_rng_below(&s->rev_rng, 100) < g_revoke_pct
                          : tu_rng_below(&s->rev_rng, 100) < 20)
        s->rev_pct = (int)tu_rng_range(&s->rev_rng, 20, 75);
    sim_trace(s, "%d replicas, max drift %" PRIu64 " ms, %u%% of steps send a snapshot; %s "
                 "mode%s%s",
              s->n, s->drift, s->snap_pct, s->engine ? "engine" : "direct",
              s->relay >= 0 ? "; one is a relay" : "", s->rev_pct ? "; a revocation" : "");

    if (sim_open(s)) {
        if (s->engine)
            eng_open(s);
        if (!s->failed)
            clash_start(s);
        if (!s->failed)
            sim_steps(s);
        if (!s->failed) {
            s->step = -1;
            final_sync(s);
        }
        if (!s->failed)
            final_checks(s);
    }
    bool ok = !s->failed;
    if (!ok)
        snprintf(why, whyn, "%s", s->why);
    s->st.seeds = 1;
    s->st.nodes = (uint64_t)s->n;

    total->seeds += s->st.seeds;
    total->nodes += s->st.nodes;
    total->commits += s->st.commits;
    total->ops += s->st.ops;
    total->ekind += s->st.ekind;
    total->sent += s->st.sent;
    total->delivered += s->st.delivered;
    total->lost += s->st.lost;
    total->dups += s->st.dups;
    total->pending += s->st.pending;
    total->checks += s->st.checks;
    total->far_skew += s->st.far_skew;
    total->snap_sent += s->st.snap_sent;
    total->snap_asked += s->st.snap_asked;
    total->snap_merged += s->st.snap_merged;
    total->snap_concurrent += s->st.snap_concurrent;
    total->snap_pending += s->st.snap_pending;
    total->snap_stale += s->st.snap_stale;
    total->estate += s->st.estate;
    total->seeds_snapped += s->st.snap_merged >= 3;
    total->rev_seeds += s->st.rev_seeds;
    total->rev_rebuilds += s->st.rev_rebuilds;
    total->rev_cut += s->st.rev_cut;
    total->rev_refused += s->st.rev_refused;
    total->relay_seeds += s->st.relay_seeds;
    total->relay_in += s->st.relay_in;
    total->relay_in_bytes += s->st.relay_in_bytes;
    total->relay_out += s->st.relay_out;
    total->relay_out_bytes += s->st.relay_out_bytes;
    total->relay_ekey += s->st.relay_ekey;
    total->relay_erole += s->st.relay_erole;
    total->relay_rebuilds += s->st.relay_rebuilds;
    total->relay_cross += s->st.relay_cross;
    total->relay_cross_seeds += s->st.relay_cross_seeds;
    if (s->engine) {
        total->eseeds++;
        for (int k = 0; k <= REP_SYNC_HAVE; k++)
            total->emsgs[k] += s->st.emsgs[k];
        total->edata_bytes += s->st.edata_bytes;
        total->esnaps += s->st.esnaps;
        total->esnap_bytes += s->st.esnap_bytes;
        total->eneeded += s->st.eneeded;
        total->ecorrupt += s->st.ecorrupt;
        total->ebad += s->st.ebad;
        total->einject += s->st.einject;
        total->ebundles += s->st.ebundles;
        total->erestarts += s->st.erestarts;
        total->eticks += s->st.eticks;
        total->econverge_ms += s->st.econverge_ms;
        total->ehalf += s->st.ehalf;
        total->eparts += s->st.eparts;
        uint64_t ratio = s->st.eneeded ? 1000 * s->st.edata_bytes / s->st.eneeded : 0;
        if (ratio > total->eratio_max)
            total->eratio_max = ratio;
    }
    sim_free(s);
    tu_rmtree(s->base);
    free(s);
    return ok;
}

/* ---- main ----------------------------------------------------------------------------------------- */
static void
on_crash(int sig)
{
    char buf[256];
    if (g_crash_seed_valid) {
        int n = snprintf(buf, sizeof buf,
                         "sim: seed %" PRIu64 " crashed (signal %d); replay: tests/sim --seeds 1 "
                         "--from %" PRIu64 "%s -v\n",
                         g_crash_seed, sig, g_crash_seed, g_replay);
        if (n > 0 && write(STDOUT_FILENO, buf, (size_t)n) < 0)
            n = 0;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: sim [--seeds N] [--from S] [--replicas-max K] [--steps N] [--mode M]\n"
               "           [--revoke P] [--relay P] [-v]\n"
               "  --seeds N         run N seeds (default $SIM_SEEDS, else 1000)\n"
               "  --from S          first seed (default $REPLICA_TEST_SEED, else 0)\n"
               "  --replicas-max K  3..%d replicas per seed (default %d)\n"
               "  --steps N         steps per seed (default 150..650, 150..580 in engine\n"
               "                    mode, chosen by the seed)\n"
               "  --mode M          engine or direct (default: chosen by the seed, engine in\n"
               "                    about 60%%: the real sync engine; direct: the simulation's\n"
               "                    own exchange calls)\n"
               "  --revoke P        P%% of seeds revoke a node mid-run (default 20)\n"
               "  --relay P         P%% of engine-mode seeds have a relay (default 30)\n"
               "  -v                print every step\n",
            SIM_MAX_WS, SIM_MAX_WS);
}

static bool
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || *s == '-')
        return false;
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    uint64_t seeds = 1000, from = tu_seed(0), v;
    const char *env = getenv("SIM_SEEDS");
    if (env && *env && !parse_u64(env, &seeds)) {
        fprintf(stderr, "sim: bad SIM_SEEDS=%s\n", env);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            g_verbose = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--seeds") == 0 && parse_u64(val, &seeds)) {
            i++;
        } else if (strcmp(a, "--from") == 0 && parse_u64(val, &from)) {
            i++;
        } else if (strcmp(a, "--replicas-max") == 0 && parse_u64(val, &v) && v >= SIM_MIN_NODES &&
                   v <= SIM_MAX_WS) {
            g_replicas_max = (int)v;
            i++;
        } else if (strcmp(a, "--steps") == 0 && parse_u64(val, &v) && v > 0 && v < 1000000) {
            g_steps = (unsigned)v;
            i++;
        } else if (strcmp(a, "--revoke") == 0 && parse_u64(val, &v) && v <= 100) {
            g_revoke_pct = (int)v;
            i++;
        } else if (strcmp(a, "--relay") == 0 && parse_u64(val, &v) && v <= 100) {
            g_relay_pct = (int)v;
            i++;
        } else if (strcmp(a, "--mode") == 0 && val &&
                   (strcmp(val, "engine") == 0 || strcmp(val, "direct") == 0)) {
            g_mode = strcmp(val, "engine") == 0 ? 2 : 1;
            i++;
        } else {
            fprintf(stderr, "sim: bad argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    snprintf(g_replay, sizeof g_replay, "%s%s", g_mode ? " --mode " : "",
             g_mode == 2 ? "engine" : g_mode == 1 ? "direct" : "");
    if (g_replicas_max != SIM_MAX_WS)
        snprintf(g_replay + strlen(g_replay), sizeof g_replay - strlen(g_replay),
                 " --replicas-max %d", g_replicas_max);
    if (g_steps)
        snprintf(g_replay + strlen(g_replay), sizeof g_replay - strlen(g_replay), " --steps %u",
                 g_steps);
    if (g_revoke_pct >= 0)
        snprintf(g_replay + strlen(g_replay), sizeof g_replay - strlen(g_replay), " --revoke %d",
                 g_revoke_pct);
    if (g_relay_pct >= 0)
        snprintf(g_replay + strlen(g_replay), sizeof g_replay - strlen(g_replay), " --relay %d",
                 g_relay_pct);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* before sodium_init: device keys and nonces come from the seed, so a seed replays */
    if (tu_sodium_deterministic(0) != 0) {
        fprintf(stderr, "sim: cannot set up libsodium\n");
        return 2;
    }
    signal(SIGABRT, on_crash);
#if !defined(__SANITIZE_ADDRESS__)
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
#endif
    char *root = tu_tmpdir();
    if (!root) {
        fprintf(stderr, "sim: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sim_stats_t total;
    memset(&total, 0, sizeof total);
    uint64_t passed = 0, failed = 0;
    for (uint64_t k = 0; k < seeds; k++) {
        uint64_t seed = from + k;
        char why[1024];
        g_crash_seed = seed;
        g_crash_seed_valid = 1;
        if (run_seed(seed, root, &total, why, sizeof why)) {
            passed++;
        } else {
            failed++;
            printf("sim: seed %" PRIu64 " failed (%s mode): %s; replay: tests/sim --seeds 1 "
                   "--from %" PRIu64 "%s -v\n",
                   seed,
                   seed_relay(seed)    ? "engine, relay"
                   : seed_engine(seed) ? "engine"
                                       : "direct",
                   why, seed, g_replay);
        }
    }
    g_crash_seed_valid = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    tu_rmtree(root);
    free(root);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (seeds > 0)
        printf("sim: seeds %" PRIu64 "..%" PRIu64 " in %.1f s: %.1f replicas, %.0f changes "
               "(%.0f writes), %.0f messages (%.0f%% lost, %.0f%% duplicated), %" PRIu64
               " kind refusals, %" PRIu64 " imports left changes pending, %" PRIu64
               " replicas a day ahead, %" PRIu64 " oracle checks\n",
               from, from + seeds - 1, secs, (double)total.nodes / (double)seeds,
               (double)total.commits / (double)seeds, (double)total.ops / (double)seeds,
               (double)total.sent / (double)seeds,
               total.sent ? 100.0 * (double)total.lost / (double)total.sent : 0.0,
               total.delivered ? 100.0 * (double)total.dups / (double)total.delivered : 0.0,
               total.ekind, total.pending, total.far_skew, total.checks);
    if (seeds > 0)
        printf("sim: state catch-ups: %.1f snapshots sent (%.1f as catchup's answer), %.1f merged "
               "(%.1f into a replica with changes the snapshot lacked, %.1f with changes "
               "pending), %.1f stale (brought nothing); %.1f exports said REP_ESTATE; %.0f%% of "
               "seeds merged 3 or more\n",
               (double)total.snap_sent / (double)seeds, (double)total.snap_asked / (double)seeds,
               (double)total.snap_merged / (double)seeds,
               (double)total.snap_concurrent / (double)seeds,
               (double)total.snap_pending / (double)seeds,
               (double)total.snap_stale / (double)seeds, (double)total.estate / (double)seeds,
               100.0 * (double)total.seeds_snapped / (double)seeds);
    if (seeds > 0)
        printf("sim: revocations in %" PRIu64 " seeds: %" PRIu64 " rebuilds, %" PRIu64
               " changes refused as revoked (direct imports), %" PRIu64
               " imports refused whole for it (REP_EKEY, REP_ESTATE)\n",
               total.rev_seeds, total.rev_rebuilds, total.rev_cut, total.rev_refused);
    if (total.eseeds > 0) {
        double es = (double)total.eseeds;
        printf("sim: engine mode in %" PRIu64 " of %" PRIu64 " seeds; per seed %.0f HELLO, %.0f "
               "DATA (%.1f snapshots, %.1f parts of snapshots over max_msg, %.1f batches over half "
               "max_msg), %.0f ACK, %.0f HAVE, %.0f ticks; %.0f DATA bytes (%.0f of snapshots) = "
               "%.2fx one copy of each change to each peer (worst seed %.2fx); "
               "%.1f out-of-order DATAs, %.1f USB bundles, %.1f restarts; %" PRIu64
               " messages truncated, %" PRIu64 " counted bad; converged %.1f s after healing\n",
               total.eseeds, seeds, (double)total.emsgs[REP_SYNC_HELLO] / es,
               (double)total.emsgs[REP_SYNC_DATA] / es, (double)total.esnaps / es,
               (double)total.eparts / es, (double)total.ehalf / es,
               (double)total.emsgs[REP_SYNC_ACK] / es, (double)total.emsgs[REP_SYNC_HAVE] / es,
               (double)total.eticks / es, (double)total.edata_bytes / es,
               (double)total.esnap_bytes / es,
               total.eneeded ? (double)total.edata_bytes / (double)total.eneeded : 0.0,
               (double)total.eratio_max / 1000.0, (double)total.einject / es,
               (double)total.ebundles / es, (double)total.erestarts / es, total.ecorrupt,
               total.ebad, (double)total.econverge_ms / es / 1000.0);
    }
    if (total.relay_seeds > 0) {
        double rs = (double)total.relay_seeds;
        printf("sim: a relay in %" PRIu64 " seeds; per seed it took %.0f DATA (%.0f bytes) and "
               "sent %.0f (%.0f bytes), all batches; %.1f snapshots refused (REP_EKEY), %.1f "
               "writes and snapshots refused (REP_EROLE); %" PRIu64 " rebuilds (a revocation); "
               "in %" PRIu64 " seeds %.1f changes had yet to cross between the groups at the "
               "end (only through it)\n",
               total.relay_seeds, (double)total.relay_in / rs, (double)total.relay_in_bytes / rs,
               (double)total.relay_out / rs, (double)total.relay_out_bytes / rs,
               (double)total.relay_ekey / rs, (double)total.relay_erole / rs,
               total.relay_rebuilds, total.relay_cross_seeds,
               total.relay_cross_seeds ? (double)total.relay_cross / (double)total.relay_cross_seeds
                                       : 0.0);
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed ? 1 : 0;
}
