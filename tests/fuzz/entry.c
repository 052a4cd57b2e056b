/* entry.c — libFuzzer target: membership entries (trust.h) as they arrive with batches,
 * snapshots and provisionings. Each input is a stream of entries, [len(2, little-endian),
 * bytes]... (fuzz.h, FUZZ_MSG_HDR). Each is decoded (rep__entry_decode), then the stream is
 * taken in order by rep__trust_accept twice:
 *  - into a trust of the office that knows nothing yet, without a store (a genesis first);
 *  - into the fuzzer's replica (fuzz.h): in a write transaction on its store, with its log
 *    loaded (rep__trust_load), which compares entries it has, refuses forks, checks signers
 *    and stores what extends it, and is then aborted, so every input meets the same log.
 * An accepted entry (1) adds one to the log's length and makes its device a member. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "trust.h"

#define MAX_ENTRIES 64

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

typedef struct stream {
    rep__bytes_t e[MAX_ENTRIES];
    size_t n;
} stream_t;

static void
take(rep__trust_t *tr, rep__txn_t *t, const stream_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        uint64_t count = tr->count;
        int rc = rep__trust_accept(tr, t, s->e[i].p, s->e[i].n);
        if (rc == 1) {
            rep__entry_t e;
            if (rep__entry_decode(s->e[i].p, s->e[i].n, &e) != 0)
                fuzz_fail("entry: accepted, but does not decode");
            if (tr->count != count + 1 || !rep__trust_member(tr, e.device))
                fuzz_fail("entry: accepted, but the log did not grow by it");
        } else if (rc != 0 && tr->count != count) {
            fuzz_fail("entry: refused (%s), but the log changed", rep_strerror(rc));
        }
    }
}

static int
store_fn(rep__txn_t *t, void *ctx)
{
    rep__trust_t tr;
    int rc = rep__trust_load(t, fuzz_o.r->office, &tr);
    if (rc != 0)
        fuzz_die("rep__trust_load", rc);
    take(&tr, t, ctx);
    rep__trust_clear(&tr);
    return -ECANCELED; /* aborted: the next input meets the same log */
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    fuzz_office_t *o = fuzz_office();
    stream_t s;
    s.n = 0;
    size_t at = 0;
    while (at < n && s.n < MAX_ENTRIES) {
        size_t len = d[at];
        if (at + 1 < n)
            len |= (size_t)d[at + 1] << 8;
        at += FUZZ_MSG_HDR < n - at ? FUZZ_MSG_HDR : n - at;
        if (len > n - at)
            len = n - at;
        s.e[s.n].p = d + at;
        s.e[s.n++].n = len;
        at += len;
    }
    for (size_t i = 0; i < s.n; i++) {
        rep__entry_t e;
        (void)rep__entry_decode(s.e[i].p, s.e[i].n, &e);
    }
    rep__trust_t tr;
    memset(&tr, 0, sizeof tr);
    memcpy(tr.office, o->r->office, sizeof tr.office);
    take(&tr, NULL, &s);
    rep__trust_clear(&tr);
    int rc = rep__store_write(o->r->st, store_fn, &s);
    if (rc != -ECANCELED)
        fuzz_die("rep__store_write", rc);
    return 0;
}
