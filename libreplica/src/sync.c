/* sync.c — the sync engine. See sync.h. */
#include "sync.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "codec.h"
#include "common.h"
#include "crdt.h"
#include "facade.h"

#define DATA_OVERHEAD 64 /* a DATA message's bytes besides its payload, at most */

typedef struct peer {
    uint32_t id;
    bool connected;
    bool relay;                  /* a relay: it can take changes only, never a snapshot */
    bool has_known;              /* a HELLO told us what it has */
    rep_vv_entry_t *known;       /* what it is known to have, sorted by actor */
    size_t nknown;
    bool inflight;               /* a DATA awaits its ACK */
    bool progressed;             /* its known vv grew since that DATA was sent */
    bool stalled;                /* the ACK showed no progress: the DATA was refused or waits;
                                    send again only when its HELLO asks or ours is due, or once
                                    it has more of what the DATA carried (what waited could
                                    be applied) */
    rep_vv_entry_t *sent;        /* the actors the last DATA carried, and what it had of each */
    size_t nsent;
    bool foreign;                /* its HELLO named another office: its vvs mean nothing here
                                    until a HELLO of ours */
    bool pend;                   /* its DATA left changes waiting for dependencies ... */
    uint64_t pend_at;            /* ... then: ask it for them if they still wait later */
    uint64_t inflight_id, inflight_at, next_id;
    bool lacking;                /* it lacks other devices' changes ... */
    uint64_t lacking_since;      /* ... without progress since then: */
    rep_vv_entry_t *lack_vv;     /* our vv then, and */
    uint64_t *lack_known;        /* what it had of each of those actors then (a relay waits
                                    until some device's changes it lacks have stopped reaching
                                    it for the delay: a peer that is being sent them, even
                                    late, needs no second copy) */
    size_t nlack;
    bool asked;                  /* its HELLO wants all it lacks now: relay without the delay */
    uint8_t *part_src;           /* a payload over max_msg being sent to it in parts ... */
    size_t part_n, part_off;     /* ... its size, and how much of it is sent */
    rep__buf_t in;               /* a payload arriving from it in parts ... */
    uint64_t in_total, in_id;    /* ... its size, and the id of its last part */
    uint64_t last_hello;         /* when we last sent it a HELLO */
    uint64_t rtt;                /* its last round trip (DATA to ACK), ms; 0 on a new
                                    connection */
    rep__sync_peer_info_t info;
} peer_t;

typedef struct outmsg {
    uint32_t peer;
    uint8_t *p;
    size_t n;
} outmsg_t;

struct rep__sync {
    rep_replica_t *r;
    rep__sync_opts_t o;
    rep_vv_entry_t *ours;        /* our vv as last read */
    size_t nours;
    peer_t *peers;
    size_t npeers;
    outmsg_t *out;               /* queued messages: [out_head, nout) */
    size_t out_head, nout, out_cap;
    uint64_t members;            /* membership entries imports took */
    uint64_t pending;            /* changes waiting for dependencies, after the last import */
};

void
rep__sync_opts_default(rep__sync_opts_t *o)
{
    o->max_msg = (size_t)1 << 20;
    o->anti_entropy_ms = 2000;
    o->ack_timeout_ms = 5000;
    o->relay_delay_ms = 200;
}

/* ---- Our version vector ---- */
static int
read_ours(rep__sync_t *s)
{
    rep_vv_entry_t *vv;
    size_t n;
    REP_TRY(rep__replica_vv(s->r, &vv, &n));
    free(s->ours);
    s->ours = vv;
    s->nours = n;
    return 0;
}

int
rep__sync_new(rep_replica_t *r, const rep__sync_opts_t *opts, rep__sync_t **out)
{
    *out = NULL;
    if (!r)
        return -EINVAL;
    rep__sync_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->r = r;
    if (opts)
        s->o = *opts;
    else
        rep__sync_opts_default(&s->o);
    if (s->o.max_msg < 4096)
        s->o.max_msg = 4096;
    int rc = read_ours(s);
    if (rc < 0) {
        rep__sync_free(&s);
        return rc;
    }
    *out = s;
    return 0;
}

void
rep__sync_free(rep__sync_t **sp)
{
    if (!sp || !*sp)
        return;
    rep__sync_t *s = *sp;
    for (size_t i = 0; i < s->npeers; i++) {
        free(s->peers[i].known);
        free(s->peers[i].lack_vv);
        free(s->peers[i].lack_known);
        free(s->peers[i].sent);
        free(s->peers[i].part_src);
        rep__buf_free(&s->peers[i].in);
    }
    for (size_t i = s->out_head; i < s->nout; i++)
        free(s->out[i].p);
    free(s->peers);
    free(s->out);
    free(s->ours);
    free(s);
    *sp = NULL;
}

static peer_t *
find_peer(rep__sync_t *s, uint32_t id)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i].id == id)
            return &s->peers[i];
    return NULL;
}

/* ---- Sending ---- */
static int
queue(rep__sync_t *s, peer_t *p, rep__buf_t *b)
{
    REP_TRY(b->err);
    if (s->nout == s->out_cap) {
        if (s->out_head > 0) { /* reuse the taken slots first */
            memmove(s->out, s->out + s->out_head, (s->nout - s->out_head) * sizeof *s->out);
            s->nout -= s->out_head;
            s->out_head = 0;
        }
        if (s->nout == s->out_cap) {
            size_t cap = s->out_cap ? s->out_cap * 2 : 16;
            outmsg_t *o = realloc(s->out, cap * sizeof *o);
            if (!o)
                return -ENOMEM;
            s->out = o;
            s->out_cap = cap;
        }
    }
    size_t n;
    uint8_t *m = rep__buf_take(b, &n);
    s->out[s->nout++] = (outmsg_t){p->id, m, n};
    p->info.sent_bytes += n;
    return 0;
}

static void
msg_begin(rep__buf_t *b, msgpack_packer *pk, size_t items, int type)
{
    rep__buf_init(b);
    rep__packer_init(pk, b);
    msgpack_pack_array(pk, items);
    msgpack_pack_uint8(pk, REP_SYNC_VERSION);
    msgpack_pack_uint8(pk, (uint8_t)type);
}

static void
pack_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

/* HELLO, ACK or HAVE, ending with our vv, bare (sync.h). */
static int
send_vv_msg(rep__sync_t *s, peer_t *p, int type, uint64_t id, bool want)
{
    rep__buf_t b;
    msgpack_packer pk;
    if (type == REP_SYNC_HELLO) {
        msg_begin(&b, &pk, 6, type);
        msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
        msgpack_pack_bin_body(&pk, s->r->office, REP_OFFICE_ID_BYTES);
        msgpack_pack_uint64(&pk, s->r->actor);
        if (want)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
    } else if (type == REP_SYNC_ACK) {
        msg_begin(&b, &pk, 4, type);
        msgpack_pack_uint64(&pk, id);
    } else {
        msg_begin(&b, &pk, 3, type);
    }
    rep__vv_pack(&pk, s->ours, s->nours);
    int rc = queue(s, p, &b);
    rep__buf_free(&b);
    return rc;
}

/* A HELLO; with want, the peer is to send all we lack at once (we wait for some of it). */
static int
send_hello(rep__sync_t *s, peer_t *p, uint64_t now, bool want)
{
    p->last_hello = now;
    return send_vv_msg(s, p, REP_SYNC_HELLO, 0, want);
}

/* How long other devices' changes wait before we relay them to p: relay_delay_ms plus up to
 * as much again, fixed per device, so that in a mesh one node relays first and the HAVE of the
 * peer that got them stops the others; plus twice p's last round trip (a DATA's to its ACK),
 * as long as another device's changes may take to reach a slow peer that is taking them (they
 * wait for the DATA in flight to be acknowledged, then go in the next), at most
 * ack_timeout_ms. */
static uint64_t
relay_delay(const rep__sync_t *s, const peer_t *p)
{
    uint64_t slow = 2 * p->rtt < s->o.ack_timeout_ms ? 2 * p->rtt : s->o.ack_timeout_ms;
    return s->o.relay_delay_ms + s->r->actor % (s->o.relay_delay_ms + 1) + slow;
}

/* Does the peer lack changes of ours: of our own actor (*own), of other devices (*others)? */
static void
lacks(const rep__sync_t *s, const peer_t *p, bool *own, bool *others, uint64_t *behind)
{
    rep__vv_t known = {p->known, p->nknown};
    *own = *others = false;
    *behind = 0;
    for (size_t i = 0; i < s->nours; i++) {
        uint64_t have = rep__vv_seq(&known, s->ours[i].actor);
        if (have >= s->ours[i].seq)
            continue;
        if (s->ours[i].actor == 0) { /* membership entries: rare, small, and needed first */
            *own = true;
            continue;
        }
        *behind += s->ours[i].seq - have;
        if (s->ours[i].actor == s->r->actor)
            *own = true;
        else
            *others = true;
    }
}

/* Drop what is half sent to p or half received from it (a part lost on the way, a
 * reconnect): a payload is then sent again whole, from its first part. */
static void
parts_reset(peer_t *p)
{
    free(p->part_src);
    p->part_src = NULL;
    p->part_n = p->part_off = 0;
    p->in.len = 0;
    p->in_total = 0;
}

/* Send p the next part of the payload in p->part_src (all of it when it fits):
 * DATA [1, 2, id, bytes, offset, total]. */
static int
send_part(rep__sync_t *s, peer_t *p, uint64_t now)
{
    size_t max = s->o.max_msg - DATA_OVERHEAD, off = p->part_off;
    size_t n = p->part_n - off < max ? p->part_n - off : max;
    rep__buf_t b;
    msgpack_packer pk;
    msg_begin(&b, &pk, 6, REP_SYNC_DATA);
    msgpack_pack_uint64(&pk, ++p->next_id);
    pack_bin(&pk, p->part_src + off, n);
    msgpack_pack_uint64(&pk, off);
    msgpack_pack_uint64(&pk, p->part_n);
    int rc = queue(s, p, &b);
    rep__buf_free(&b);
    REP_TRY(rc);
    p->part_off += n;
    if (p->part_off == p->part_n) { /* the last (or only) part is on its way */
        free(p->part_src);
        p->part_src = NULL;
    }
    p->inflight = true;
    p->progressed = false;
    p->inflight_id = p->next_id;
    p->inflight_at = now;
    return 0;
}

/* Had p received no more of actor since lack_mark(), when it lacked some of its changes? */
static bool
lack_stalled(const peer_t *p, uint64_t actor)
{
    size_t lo = 0, hi = p->nlack; /* lack_vv is sorted by actor */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->lack_vv[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->nlack || p->lack_vv[lo].actor != actor || p->lack_known[lo] >= p->lack_vv[lo].seq)
        return false;
    rep__vv_t known = {p->known, p->nknown};
    return rep__vv_seq(&known, actor) <= p->lack_known[lo];
}

/* What a DATA carries: our own changes (and membership entries), those and the changes of
 * the devices that have stopped reaching the peer (a relay after the delay), or all it lacks
 * (asked for). */
typedef enum send_what { SEND_OWN, SEND_STALLED, SEND_ALL } send_what_t;

/* Send p its next DATA. For SEND_OWN and SEND_STALLED, the vv we answer claims it has the
 * changes we have of every other device: those reach it from their authors. */
static int
send_data(rep__sync_t *s, peer_t *p, send_what_t what, uint64_t now)
{
    rep_vv_entry_t *vv = p->known;
    size_t nvv = p->nknown;
    rep_vv_entry_t *raised = NULL;
    bool only_own = what == SEND_OWN;
    if (what != SEND_ALL) {
        /* ours with our own actor at what the peer has, and the membership log too (actor
         * 0: its entries go with every change, so that the peer knows who wrote them) */
        rep__vv_t known = {p->known, p->nknown};
        if (s->nours && !(raised = malloc(s->nours * sizeof *raised)))
            return -ENOMEM;
        nvv = 0;
        for (size_t i = 0; i < s->nours; i++) {
            uint64_t a = s->ours[i].actor;
            raised[nvv] = s->ours[i];
            if (a == s->r->actor || a == 0 || (what == SEND_STALLED && lack_stalled(p, a)))
                raised[nvv].seq = rep__vv_seq(&known, a);
            if (raised[nvv].seq > 0)
                nvv++;
        }
        vv = raised;
    }
    uint8_t *payload = NULL;
    size_t n, max = s->o.max_msg - DATA_OVERHEAD;
    /* what it carries: the actors of ours above vv, from what the peer has of each */
    rep__vv_t from = {vv, nvv};
    int rc = 0;
    p->nsent = 0;
    if (s->nours) {
        rep_vv_entry_t *v = realloc(p->sent, s->nours * sizeof *v);
        if (v)
            p->sent = v;
        else
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < s->nours && rc == 0; i++) {
        uint64_t had = rep__vv_seq(&from, s->ours[i].actor);
        if (had < s->ours[i].seq)
            p->sent[p->nsent++] = (rep_vv_entry_t){s->ours[i].actor, had};
    }
    /* our own changes go as changes (several peers send theirs to one newcomer at once: a
     * snapshot from each would repeat the same state); the rest, whichever is smaller; to a
     * relay, changes only, the ones our log holds */
    rep__answer_t kind = p->relay ? REP__ANSWER_RELAY
                         : only_own ? REP__ANSWER_CHANGES
                                    : REP__ANSWER_BEST;
    if (rc == 0)
        rc = rep__replica_answer(s->r, vv, nvv, max, kind, &payload, &n);
    if (rc == REP_ESTATE && kind == REP__ANSWER_CHANGES)
        rc = rep__replica_answer(s->r, vv, nvv, max, REP__ANSWER_BEST, &payload, &n);
    free(raised);
    REP_TRY(rc);
    p->asked = false;
    p->part_src = payload; /* sent in parts when over max (only a snapshot can be) */
    p->part_n = n;
    p->part_off = 0;
    return send_part(s, p, now);
}

static int learn(peer_t *p, const rep_vv_entry_t *vv, size_t n, bool replace);

/* Remember what p lacks now (our vv, and what it has of each actor in it). */
static int
lack_mark(rep__sync_t *s, peer_t *p)
{
    if (s->nours > p->nlack) {
        rep_vv_entry_t *v = realloc(p->lack_vv, s->nours * sizeof *v);
        if (!v)
            return -ENOMEM;
        p->lack_vv = v;
        uint64_t *k = realloc(p->lack_known, s->nours * sizeof *k);
        if (!k)
            return -ENOMEM;
        p->lack_known = k;
    }
    rep__vv_t known = {p->known, p->nknown};
    for (size_t i = 0; i < s->nours; i++) {
        p->lack_vv[i] = s->ours[i];
        p->lack_known[i] = rep__vv_seq(&known, s->ours[i].actor);
    }
    p->nlack = s->nours;
    return 0;
}

/* Since lack_mark(), has p received more of every other device whose changes it lacked then
 * (so they are reaching it, from their author or a relay)? */
static bool
lack_progressed(const rep__sync_t *s, const peer_t *p)
{
    rep__vv_t known = {p->known, p->nknown};
    for (size_t i = 0; i < p->nlack; i++) {
        uint64_t a = p->lack_vv[i].actor;
        if (a != s->r->actor && a != p->info.actor && p->lack_known[i] < p->lack_vv[i].seq &&
            rep__vv_seq(&known, a) <= p->lack_known[i])
            return false;
    }
    return true;
}

/* Send each idle peer what it lacks, as the rules in sync.h say. */
static int
pump(rep__sync_t *s, uint64_t now)
{
    for (size_t i = 0; i < s->npeers; i++) {
        peer_t *p = &s->peers[i];
        if (!p->connected || !p->has_known)
            continue;
        /* it has every change of its own device that we have (no message of its says so) */
        rep__vv_t ours = {s->ours, s->nours};
        rep_vv_entry_t self = {p->info.actor, rep__vv_seq(&ours, p->info.actor)};
        if (self.seq > 0)
            REP_TRY(learn(p, &self, 1, false));
        bool own, others;
        lacks(s, p, &own, &others, &p->info.behind);
        if (!own && !others)
            p->asked = false;
        if (!others)
            p->lacking = false;
        else if (!p->lacking || lack_progressed(s, p)) {
            /* it lacks changes of others; those it lacked before (if any) are arriving */
            p->lacking = true;
            p->lacking_since = now;
            REP_TRY(lack_mark(s, p));
        }
        if (p->inflight)
            continue;
        if (p->part_src) { /* the rest of a payload in parts comes first */
            REP_TRY(send_part(s, p, now));
            continue;
        }
        if (p->stalled)
            continue;
        bool relay = others && (p->asked || now - p->lacking_since >= relay_delay(s, p));
        if (own || relay)
            REP_TRY(send_data(s, p, !relay ? SEND_OWN : p->asked ? SEND_ALL : SEND_STALLED, now));
    }
    return 0;
}

/* ---- Receiving ---- */

/* Raise (or with replace, set) what p is known to have to vv; note whether it grew. */
static int
learn(peer_t *p, const rep_vv_entry_t *vv, size_t n, bool replace)
{
    if (replace || !p->has_known) {
        p->progressed = true;
        rep_vv_entry_t *k = NULL;
        if (n && !(k = malloc(n * sizeof *k)))
            return -ENOMEM;
        if (n)
            memcpy(k, vv, n * sizeof *k);
        free(p->known);
        p->known = k;
        p->nknown = n;
        p->has_known = true;
        return 0;
    }
    /* pointwise maximum of two sorted lists */
    rep_vv_entry_t *m = malloc((p->nknown + n) * sizeof *m + 1);
    if (!m)
        return -ENOMEM;
    size_t i = 0, j = 0, k = 0;
    while (i < p->nknown || j < n) {
        if (j == n || (i < p->nknown && p->known[i].actor < vv[j].actor)) {
            m[k++] = p->known[i++];
        } else if (i == p->nknown || vv[j].actor < p->known[i].actor) {
            p->progressed |= vv[j].seq > 0;
            m[k++] = vv[j++];
        } else {
            m[k] = p->known[i++];
            if (vv[j].seq > m[k].seq) {
                m[k].seq = vv[j].seq;
                p->progressed = true;
            }
            j++;
            k++;
        }
    }
    free(p->known);
    p->known = m;
    p->nknown = k;
    return 0;
}

/* Is vv exactly what p is known to have? */
static bool
vv_same(const peer_t *p, const rep_vv_entry_t *vv, size_t n)
{
    if (!p->has_known || n != p->nknown)
        return false;
    for (size_t i = 0; i < n; i++)
        if (vv[i].actor != p->known[i].actor || vv[i].seq != p->known[i].seq)
            return false;
    return true;
}

/* Has p more of an actor the last DATA carried than it had when that was sent? */
static bool
sent_progressed(const peer_t *p)
{
    rep__vv_t known = {p->known, p->nknown};
    for (size_t i = 0; i < p->nsent; i++)
        if (rep__vv_seq(&known, p->sent[i].actor) > p->sent[i].seq)
            return true;
    return false;
}

static int
on_data(rep__sync_t *s, peer_t *p, uint64_t id, const uint8_t *payload, size_t n, uint64_t now)
{
    rep_import_stats_t st;
    memset(&st, 0, sizeof st);
    int rc = rep__replica_import(s->r, payload, n, &st);
    if (rc == REP_ECORRUPT || rc == REP_EVERSION || rc == REP_EOFFICE || rc == REP_EFORK ||
        rc == REP_EAUTH || rc == REP_EKEY || rc == REP_ESTATE) {
        p->info.bad++; /* refused whole: acknowledge, so the window moves on */
        memset(&st, 0, sizeof st);
        st.pending = s->pending;
        rc = 0;
    }
    REP_TRY(rc);
    s->members += st.members;
    s->pending = st.pending;
    bool grew = st.applied > 0 || st.entries > 0 || st.members > 0;
    if (grew)
        REP_TRY(read_ours(s));
    REP_TRY(send_vv_msg(s, p, REP_SYNC_ACK, id, false));
    if (grew)
        for (size_t i = 0; i < s->npeers; i++)
            if (s->peers[i].connected && &s->peers[i] != p)
                REP_TRY(send_vv_msg(s, &s->peers[i], REP_SYNC_HAVE, 0, false));
    /* changes wait for dependencies: usually on their way from their authors; if they still
     * wait after the relay delay, ask this sender for them (tick) */
    if (st.pending > 0 && !p->pend) {
        p->pend = true;
        p->pend_at = now;
    }
    return 0;
}

/* A part of a payload: keep it until the payload is whole, then apply it. A part that does not
 * continue the payload being assembled (one was lost, or the sender started over) drops it
 * and is not acknowledged: the sender's ACK timeout sends the payload again from the start. */
static int
on_part(rep__sync_t *s, peer_t *p, uint64_t id, const uint8_t *part, size_t n, uint64_t off,
        uint64_t total, uint64_t now)
{
    if (off == 0 && n == total) /* the usual case: a whole payload */
        return on_data(s, p, id, part, n, now);
    if (off == 0) {
        p->in.len = 0;
        p->in_total = total;
    } else if (off != p->in.len || total != p->in_total || id != p->in_id + 1) {
        /* not the next part of this payload (a part's id follows the one before) */
        p->in.len = 0;
        p->in_total = 0;
        return 0;
    }
    REP_TRY(rep__buf_reserve(&p->in, n));
    rep__buf_add(&p->in, part, n);
    p->in_id = id;
    if (p->in.len < total) /* more to come: acknowledge this part */
        return send_vv_msg(s, p, REP_SYNC_ACK, id, false);
    int rc = on_data(s, p, id, p->in.p, p->in.len, now);
    rep__buf_free(&p->in);
    p->in_total = 0;
    return rc;
}

/* Decode and act on one message; REP_ECORRUPT / REP_EOFFICE / REP_EVERSION for a bad one. */
static int
dispatch(rep__sync_t *s, peer_t *p, const uint8_t *msg, size_t len, uint64_t now)
{
    rep__rd_t r;
    rep__rd_init(&r, msg, len);
    uint32_t items;
    uint64_t version, type, id = 0;
    REP_TRY(rep__rd_array(&r, &items));
    REP_TRY(rep__rd_uint(&r, &version));
    if (version != REP_SYNC_VERSION) {
        p->info.version = version; /* another protocol: said plainly in the node's log */
        return REP_EVERSION;
    }
    REP_TRY(rep__rd_uint(&r, &type));
    static const uint32_t shape[] = {[REP_SYNC_HELLO] = 6, [REP_SYNC_DATA] = 6, [REP_SYNC_ACK] = 4,
                                     [REP_SYNC_HAVE] = 3};
    if (type == 0 || type >= REP_ARRAY_LEN(shape) || items != shape[type])
        return REP_ECORRUPT;
    if (type == REP_SYNC_DATA) {
        const uint8_t *part;
        uint32_t n;
        uint64_t off, total;
        REP_TRY(rep__rd_uint(&r, &id));
        REP_TRY(rep__rd_bin(&r, &part, &n));
        REP_TRY(rep__rd_uint(&r, &off));
        REP_TRY(rep__rd_uint(&r, &total));
        if (rep__rd_left(&r) || total > REP_SYNC_MAX_PAYLOAD || off > total || n > total - off ||
            (n == 0 && total > 0))
            return REP_ECORRUPT;
        return on_part(s, p, id, part, n, off, total, now);
    }
    uint64_t actor = 0;
    bool want = false;
    if (type == REP_SYNC_HELLO) {
        uint8_t office[REP_OFFICE_ID_BYTES];
        REP_TRY(rep__rd_fixed(&r, office, REP_OFFICE_ID_BYTES));
        if (memcmp(office, s->r->office, sizeof office) != 0) {
            /* another office's device: nothing more is sent to it, and its vvs are refused,
             * until a HELLO of this office */
            p->foreign = true;
            p->has_known = false;
            return REP_EOFFICE;
        }
        REP_TRY(rep__rd_uint(&r, &actor));
        REP_TRY(rep__rd_bool(&r, &want));
    } else {
        if (p->foreign) /* a vv of the office its HELLO named, not ours */
            return REP_EOFFICE;
        if (type == REP_SYNC_ACK)
            REP_TRY(rep__rd_uint(&r, &id));
    }
    rep_vv_entry_t *vv;
    size_t nvv;
    REP_TRY(rep__rd_vv(&r, &vv, &nvv));
    /* a relay that our DATA left waiting for changes we hold only as state (passed over: we
     * cannot send them) asks for them at once; a HELLO of a relay that has no more than we knew
     * is no progress and does not undo a stall, or that DATA and HELLO would go back and forth
     * at once until the changes came from elsewhere (anti-entropy tries again once a period) */
    bool same = p->relay && vv_same(p, vv, nvv), progressed = p->progressed;
    int rc = rep__rd_left(&r) ? REP_ECORRUPT : learn(p, vv, nvv, type == REP_SYNC_HELLO);
    free(vv);
    REP_TRY(rc);
    if (type == REP_SYNC_HELLO) {
        p->info.actor = actor;
        p->asked = want;
        if (same)
            p->progressed = progressed;
        else
            p->stalled = false;
        p->foreign = false;
    }
    if (type == REP_SYNC_ACK && p->inflight && id == p->inflight_id) {
        p->inflight = false;
        /* its round trip as it is now (at most the ACK timeout, like the delay it adds) */
        uint64_t rtt = now > p->inflight_at ? now - p->inflight_at : 0;
        p->rtt = rtt < s->o.ack_timeout_ms ? rtt : s->o.ack_timeout_ms;
        /* sending the same again would meet the same fate (a part's ACK is progress) */
        p->stalled = !p->progressed && !p->part_src;
    } else if (p->stalled && sent_progressed(p)) {
        p->stalled = false; /* what it held back could be applied: try again */
    }
    return 0;
}

int
rep__sync_received(rep__sync_t *s, uint32_t peer, const uint8_t *msg, size_t len, uint64_t now_ms)
{
    peer_t *p = find_peer(s, peer);
    if (!p || !p->connected)
        return 0; /* a message from no known connection: dropped */
    p->info.last_seen_ms = now_ms;
    p->info.received_bytes += len;
    int rc = dispatch(s, p, msg, len, now_ms);
    if (rc == REP_ECORRUPT || rc == REP_EOFFICE || rc == REP_EVERSION) {
        p->info.bad++;
        return 0;
    }
    REP_TRY(rc);
    return pump(s, now_ms);
}

/* ---- Peers, time, output ---- */
int
rep__sync_connected(rep__sync_t *s, uint32_t peer, uint64_t now_ms)
{
    peer_t *p = find_peer(s, peer);
    if (!p) {
        peer_t *v = realloc(s->peers, (s->npeers + 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->peers = v;
        p = &s->peers[s->npeers++];
        memset(p, 0, sizeof *p);
        p->id = peer;
    }
    p->connected = true;
    p->info.connected = 1;
    p->inflight = false;
    parts_reset(p);
    p->has_known = false; /* until its HELLO says */
    p->lacking = p->asked = p->stalled = p->foreign = p->pend = false;
    p->rtt = 0;
    return send_hello(s, p, now_ms, false);
}

void
rep__sync_relay(rep__sync_t *s, uint32_t peer, bool relay)
{
    peer_t *p = find_peer(s, peer);
    if (p)
        p->relay = relay;
}

void
rep__sync_disconnected(rep__sync_t *s, uint32_t peer)
{
    peer_t *p = find_peer(s, peer);
    if (!p)
        return;
    p->connected = false;
    p->info.connected = 0;
    p->inflight = false;
    p->pend = false;
    parts_reset(p);
    /* drop what was queued for it: a reconnect starts over with HELLOs */
    size_t w = s->out_head;
    for (size_t i = s->out_head; i < s->nout; i++) {
        if (s->out[i].peer == peer)
            free(s->out[i].p);
        else
            s->out[w++] = s->out[i];
    }
    s->nout = w;
}

int
rep__sync_changed(rep__sync_t *s, uint64_t now_ms)
{
    REP_TRY(read_ours(s));
    return pump(s, now_ms);
}

static void
soonest(uint64_t *next, uint64_t t)
{
    if (t < *next)
        *next = t;
}

int
rep__sync_tick(rep__sync_t *s, uint64_t now_ms, uint64_t *next_ms)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < s->npeers; i++) {
        peer_t *p = &s->peers[i];
        if (!p->connected)
            continue;
        if (p->inflight && now_ms - p->inflight_at >= s->o.ack_timeout_ms) {
            p->inflight = false; /* lost on the way (or its ACK was): send again from known */
            free(p->part_src);   /* and a payload in parts, again from its start */
            p->part_src = NULL;
        }
        if (p->pend && s->pending == 0) {
            p->pend = false; /* what waited came */
        } else if (p->pend && now_ms - p->pend_at >= relay_delay(s, p)) {
            p->pend = false; /* still waiting: ask its sender for all we lack */
            REP_TRY(send_hello(s, p, now_ms, true));
        }
        if (now_ms - p->last_hello >= s->o.anti_entropy_ms) {
            p->stalled = false; /* try again, once per period */
            REP_TRY(send_hello(s, p, now_ms, false));
        }
    }
    REP_TRY(pump(s, now_ms));
    for (size_t i = 0; i < s->npeers; i++) {
        peer_t *p = &s->peers[i];
        if (!p->connected)
            continue;
        soonest(&next, p->last_hello + s->o.anti_entropy_ms);
        if (p->pend)
            soonest(&next, p->pend_at + relay_delay(s, p));
        if (p->inflight)
            soonest(&next, p->inflight_at + s->o.ack_timeout_ms);
        else if (p->lacking && !p->stalled)
            soonest(&next, p->lacking_since + relay_delay(s, p));
    }
    if (next_ms)
        *next_ms = next;
    return 0;
}

int
rep__sync_take(rep__sync_t *s, uint32_t *peer, uint8_t **msg, size_t *len)
{
    if (s->out_head == s->nout) {
        s->out_head = s->nout = 0;
        return 0;
    }
    outmsg_t *o = &s->out[s->out_head++];
    *peer = o->peer;
    *msg = o->p;
    *len = o->n;
    return 1;
}

int
rep__sync_peer(rep__sync_t *s, uint32_t peer, rep__sync_peer_info_t *out)
{
    peer_t *p = find_peer(s, peer);
    if (!p)
        return REP_ENOTFOUND;
    *out = p->info;
    return 0;
}

uint64_t
rep__sync_members_taken(const rep__sync_t *s)
{
    return s->members;
}
