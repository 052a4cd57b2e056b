/* import.c — libFuzzer target: rep_replica_import() (replica.h) into the fuzzer's replica
 * (fuzz.h: one per process, REP_OPEN_NOSYNC, of the seeds' office), which keeps what earlier
 * inputs brought. The first byte is the mode (fuzz.h; this target has a fourth):
 *   FUZZ_RAW    the rest is imported as it is and with its checksum refitted (batches and
 *               snapshots alike, as a bundle file or a DATA payload would be)
 *   FUZZ_BODY   the rest is the body [user, ops...] of the peer's next change: sealed and
 *               signed by the peer (seq and prev following what the replica has of it), put
 *               in a batch and imported, so the ops reach the appliers and the CRDTs
 *   FUZZ_PLAIN  the same, the rest being the sealed plaintext (flag byte, then the body)
 *   MODE_SNAP   the rest is the body [hlc, vv, entries] of a snapshot sealed by the peer and
 *               imported: the state's entries reach rep__state_check and the merge
 * An import returns 0 or an error, never crashes, and leaves a replica whose digest and vv
 * are still computable. */
#include <stdint.h>
#include <stdlib.h>

#include "change.h"
#include "common.h"
#include "fuzz.h"
#include "hlc.h"

#define MODE_SNAP 3

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

/* What the replica has of the peer: its seq and the hash of its latest change. */
typedef struct chain {
    uint64_t seq;
    uint8_t head[REP_HASH_BYTES];
} chain_t;

static int
chain_fn(rep__txn_t *t, void *ctx)
{
    chain_t *c = ctx;
    uint8_t k[8];
    rep__slice_t v;
    rep__put_be64(k, fuzz_o.peer_actor);
    memset(c, 0, sizeof *c);
    int rc = rep__txn_get(t, REP_DB_VV, k, sizeof k, &v);
    if (rc == REP_ENOTFOUND)
        return 0;
    if (rc == 0 && v.n == 8 + REP_HASH_BYTES) {
        c->seq = rep__get_be64(v.p);
        memcpy(c->head, v.p + 8, REP_HASH_BYTES);
    }
    return rc;
}

static void
import(rep_replica_t *r, const uint8_t *p, size_t n)
{
    rep_import_stats_t st;
    int rc = rep_replica_import(r, p, n, &st);
    if (rc == -ENOMEM || rc == -EIO)
        fuzz_die("rep_replica_import", rc);
}

static void
peer_change(fuzz_office_t *o, int mode, const uint8_t *d, size_t n)
{
    chain_t ch;
    int rc = rep__store_read(o->r->st, chain_fn, &ch);
    if (rc != 0)
        fuzz_die("reading the vv", rc);
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 11);
    msgpack_pack_uint8(&pk, REP_CHANGE_VERSION);
    msgpack_pack_uint32(&pk, o->tr.epoch);
    msgpack_pack_uint64(&pk, o->peer_actor);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_uint64(&pk, ch.seq + 1);
    msgpack_pack_uint64(&pk, REP_HLC_MAKE(1700000000000ull + ch.seq, 0));
    msgpack_pack_bin(&pk, REP_HASH_BYTES);
    msgpack_pack_bin_body(&pk, ch.head, REP_HASH_BYTES);
    msgpack_pack_array(&pk, 0);
    fuzz_seal(&b, 0, mode, d, n, rep__trust_key(&o->tr, o->tr.epoch, REP_SUBKEY_CHANGE));
    rep__batch_writer_t w;
    rep__batch_begin(&w, o->r->office, o->r->office_name, o->peer_actor);
    rep__batch_add(&w, b.p, b.len);
    rep__buf_free(&b);
    uint8_t *out;
    size_t len;
    if ((rc = rep__batch_end(&w, NULL, &out, &len)) != 0)
        fuzz_die("rep__batch_end", rc);
    import(o->r, out, len);
    free(out);
}

static void
peer_snapshot(fuzz_office_t *o, const uint8_t *d, size_t n)
{
    rep__buf_t b;
    rep__buf_init(&b);
    rep__frame_begin(&b, "RPLS");
    size_t start = b.len;
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_bin(&pk, REP_OFFICE_ID_BYTES);
    msgpack_pack_bin_body(&pk, o->r->office, REP_OFFICE_ID_BYTES);
    size_t namen = strlen(o->r->office_name);
    msgpack_pack_str(&pk, namen);
    msgpack_pack_str_body(&pk, o->r->office_name, namen);
    msgpack_pack_uint64(&pk, o->peer_actor);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_uint32(&pk, o->tr.epoch);
    msgpack_pack_array(&pk, 0);
    fuzz_seal(&b, start, FUZZ_BODY, d, n, rep__trust_key(&o->tr, o->tr.epoch, REP_SUBKEY_SNAPSHOT));
    uint8_t *out;
    size_t len;
    int rc = rep__frame_end(&b, false, &out, &len);
    if (rc != 0)
        fuzz_die("rep__frame_end", rc);
    import(o->r, out, len);
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    fuzz_office_t *o = fuzz_office();
    if (n == 0)
        return 0;
    int mode = d[0] % 4;
    d++;
    n--;
    if (mode == FUZZ_RAW) {
        import(o->r, d, n);
        uint8_t *c = fuzz_refit(d, n);
        if (c) {
            import(o->r, c, n);
            free(c);
        }
        uint8_t office[REP_OFFICE_ID_BYTES];
        char *name = NULL;
        if (rep_batch_office(d, n, office, &name) == 0)
            rep_free(name);
    } else if (mode == MODE_SNAP) {
        peer_snapshot(o, d, n);
    } else if (n > 0) {
        peer_change(o, mode, d, n);
    }
    fuzz_check_replica(o->r);
    return 0;
}
