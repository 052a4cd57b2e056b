/* snapshot.c — libFuzzer target: a snapshot frame (snapshot.h; a catch-up DATA payload, a
 * WELCOME's content): rep__snapshot_decode (frame, public part, membership entries), the
 * sender's signature (rep__sealed_verify) and rep__snapshot_open (the sealed body: clock, vv
 * with heads, the state's entries, each checked as rep__state_check does), with the office's
 * keys (fuzz.h). The first byte is the mode (fuzz.h):
 *   FUZZ_RAW    the rest is a snapshot frame, decoded as it is and with its checksum refitted
 *   FUZZ_BODY   the rest is a plaintext body [hlc, vv, entries]: sealed by the peer into a
 *               frame of its own, which must decode and verify, and open unless the body is
 *               malformed (never REP_EAUTH)
 *   FUZZ_PLAIN  the rest is the sealed plaintext (flag byte, then the body or its zstd frame)
 * A snapshot that opens must have strictly increasing keys and a vv sorted by actor. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "fuzz.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
one(const uint8_t *d, size_t n, bool ours)
{
    fuzz_office_t *o = &fuzz_o;
    rep__snapshot_t s;
    if (rep__snapshot_is(d, n) != (n >= 4 && memcmp(d, "RPLS", 4) == 0))
        fuzz_fail("snapshot: rep__snapshot_is");
    int rc = rep__snapshot_decode(d, n, &s);
    if (rc != 0) {
        if (ours)
            fuzz_fail("snapshot: a snapshot sealed here does not decode: %s", rep_strerror(rc));
        return;
    }
    for (size_t i = 0; i < s.nmembers; i++) {
        rep__entry_t e;
        (void)rep__entry_decode(s.members[i].p, s.members[i].n, &e);
    }
    const rep__dev_t *sender = rep__trust_author(&o->tr, s.sender, s.inc);
    if (sender && (rc = rep__sealed_verify(&s.env, s.office, sender->pk)) != 0 && ours)
        fuzz_fail("snapshot: a snapshot signed here does not verify");
    const uint8_t *key = rep__trust_key(&o->tr, s.epoch, REP_SUBKEY_SNAPSHOT);
    if (key) {
        rc = rep__snapshot_open(&s, key);
        if (rc == REP_EAUTH && ours)
            fuzz_fail("snapshot: a snapshot sealed here does not open");
        if (rc == 0) {
            for (size_t i = 1; i < s.n; i++) {
                size_t a = s.keys[i - 1].n, b = s.keys[i].n;
                int c = memcmp(s.keys[i - 1].p, s.keys[i].p, a < b ? a : b);
                if (c > 0 || (c == 0 && a >= b))
                    fuzz_fail("snapshot: opened keys out of order at %zu", i);
            }
            for (size_t i = 1; i < s.nvv; i++)
                if (s.vv[i - 1].actor >= s.vv[i].actor)
                    fuzz_fail("snapshot: opened vv out of order at %zu", i);
        }
    }
    rep__snapshot_clear(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    fuzz_office_t *o = fuzz_office();
    int mode = fuzz_mode(&d, &n);
    if (mode < 0 || (mode == FUZZ_PLAIN && n == 0))
        return 0;
    if (mode == FUZZ_RAW) {
        one(d, n, false);
        uint8_t *c = fuzz_refit(d, n);
        if (c)
            one(c, n, false);
        free(c);
        return 0;
    }
    /* the frame of snapshot.h, from the peer, without membership entries */
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
    fuzz_seal(&b, start, mode, d, n, rep__trust_key(&o->tr, o->tr.epoch, REP_SUBKEY_SNAPSHOT));
    uint8_t *f;
    size_t fn;
    int rc = rep__frame_end(&b, false, &f, &fn);
    if (rc != 0)
        fuzz_die("rep__frame_end", rc);
    one(f, fn, true);
    free(f);
    return 0;
}
