/* sync.c — libFuzzer target: the sync engine's message handling (sync.h). Each input is a
 * stream of messages from one connected peer, [len(2, little-endian), bytes]... (fuzz.h,
 * FUZZ_MSG_HDR); a fresh engine on the process's replica (fuzz.h: the fuzzer's, of the seeds' office, whose
 * sync messages between two of its replicas are the seeds) hands each to
 * rep__sync_received() while its clock advances, then everything it wants to send is taken
 * and it is ticked past its timeouts, until it is quiet. Nothing may crash or leak, every
 * message taken goes to the peer that connected, and the replica stays usable. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "sync.h"

#define PEER 7u

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
drain(rep__sync_t *s)
{
    uint32_t peer;
    uint8_t *msg;
    size_t len;
    int rc;
    while ((rc = rep__sync_take(s, &peer, &msg, &len)) == 1) {
        if (peer != PEER) {
            fprintf(stderr, "sync: a message for peer %u, which never connected\n", peer);
            abort();
        }
        free(msg);
    }
    if (rc != 0)
        fuzz_die("rep__sync_take", rc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    rep_replica_t *r = fuzz_replica();
    rep__sync_opts_t o;
    rep__sync_opts_default(&o);
    o.max_msg = 64 * 1024; /* so that snapshots of a few KiB may come in parts */
    rep__sync_t *s;
    int rc = rep__sync_new(r, &o, &s);
    if (rc != 0)
        fuzz_die("rep__sync_new", rc);
    uint64_t now = 1000;
    if ((rc = rep__sync_connected(s, PEER, now)) != 0)
        fuzz_die("rep__sync_connected", rc);
    drain(s);
    size_t at = 0;
    while (at < n) {
        size_t len = d[at];
        if (at + 1 < n)
            len |= (size_t)d[at + 1] << 8;
        at += FUZZ_MSG_HDR < n - at ? FUZZ_MSG_HDR : n - at;
        if (len > n - at)
            len = n - at;
        now += 10;
        /* errors are failures of the replica (-ENOMEM, -EIO), not of the input: none here */
        if ((rc = rep__sync_received(s, PEER, d + at, len, now)) != 0)
            fuzz_die("rep__sync_received", rc);
        at += len;
        drain(s);
    }
    /* time passes: ACK timeouts, anti-entropy, delayed relays; then the peer goes away */
    for (int i = 0; i < 3; i++) {
        uint64_t next;
        now += o.ack_timeout_ms + o.anti_entropy_ms;
        if ((rc = rep__sync_tick(s, now, &next)) != 0)
            fuzz_die("rep__sync_tick", rc);
        drain(s);
    }
    rep__sync_disconnected(s, PEER);
    rep__sync_free(&s);
    fuzz_check_replica(r);
    return 0;
}
