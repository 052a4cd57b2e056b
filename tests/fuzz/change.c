/* change.c — libFuzzer target: one change (change.h): rep__change_decode (its public header and
 * envelope), rep__change_verify (its author's signature) and rep__change_open (the sealed body:
 * user, ops, names, kinds, values), with the office's keys (fuzz.h). The first byte is the mode
 * (fuzz.h):
 *   FUZZ_RAW    the rest is a change's bytes as they travel: decoded; verified when its
 *               (actor, inc) is a member's; opened when the replica has its epoch's key
 *   FUZZ_BODY   the rest is a plaintext body [user, ops...]: sealed as a change of the peer
 *               (rep__seal_append), which must decode and verify, and open unless the body is
 *               malformed (never REP_EAUTH)
 *   FUZZ_PLAIN  the rest is the sealed plaintext (flag byte, then the body or its zstd frame)
 * A change that opens is walked, sealed again with rep__change_seal, and must decode and open
 * to as many ops. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
walk(const rep__change_t *c)
{
    volatile size_t sum = c->usern;
    for (size_t i = 0; i < c->nops; i++) {
        const rep__op_t *op = &c->ops[i];
        if (op->colln)
            sum += (uint8_t)op->coll[op->colln - 1];
        if (op->recn)
            sum += (uint8_t)op->rec[op->recn - 1];
        if (op->fieldn)
            sum += (uint8_t)op->field[op->fieldn - 1];
        if (op->valn)
            sum += op->val[op->valn - 1];
    }
    for (size_t i = 0; i < c->ndeps; i++)
        sum += c->deps[i].seq;
    (void)sum;
}

/* Seal c again (as the peer) and open that. */
static void
reseal(const rep__change_t *c, const uint8_t *key)
{
    fuzz_office_t *o = &fuzz_o;
    rep__buf_t b;
    rep__buf_init(&b);
    int rc = rep__change_seal(&b, c, o->r->office, key, o->peer_sk);
    if (rc != 0)
        fuzz_fail("change: an opened change does not seal again: %s", rep_strerror(rc));
    rep__change_t again;
    if ((rc = rep__change_decode(b.p, b.len, &again)) != 0)
        fuzz_fail("change: a sealed change does not decode: %s", rep_strerror(rc));
    if ((rc = rep__change_open(&again, o->r->office, key)) != 0)
        fuzz_fail("change: a sealed change does not open: %s", rep_strerror(rc));
    if (again.nops != c->nops || again.usern != c->usern || again.ndeps != c->ndeps ||
        again.seq != c->seq || again.actor != c->actor)
        fuzz_fail("change: sealed again, it opens to another change");
    rep__change_clear(&again);
    rep__buf_free(&b);
}

static void
one(const uint8_t *p, size_t n, bool ours)
{
    fuzz_office_t *o = &fuzz_o;
    rep__change_t c;
    int rc = rep__change_decode(p, n, &c);
    if (rc != 0) {
        if (ours)
            fuzz_fail("change: a change sealed here does not decode: %s", rep_strerror(rc));
        return; /* c is left clear on failure */
    }
    const rep__dev_t *author = rep__trust_author(&o->tr, c.actor, c.inc);
    if (author && (rc = rep__change_verify(&c, o->r->office, author->pk)) != 0 && ours)
        fuzz_fail("change: a change signed here does not verify: %s", rep_strerror(rc));
    const uint8_t *key = rep__trust_key(&o->tr, c.epoch, REP_SUBKEY_CHANGE);
    if (key) {
        rc = rep__change_open(&c, o->r->office, key);
        if (rc == REP_EAUTH && ours)
            fuzz_fail("change: a change sealed here does not open");
        if (rc == 0) {
            walk(&c);
            if (rep__change_open(&c, o->r->office, key) != 0) /* opened already: 0 */
                fuzz_fail("change: opening twice fails");
            reseal(&c, key);
            rep__change_close(&c);
        }
    }
    rep__change_clear(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    fuzz_office_t *o = fuzz_office();
    int mode = fuzz_mode(&d, &n);
    if (mode < 0 || (mode == FUZZ_PLAIN && n == 0)) /* nothing sealed is no change */
        return 0;
    if (mode == FUZZ_RAW) {
        one(d, n, false);
        return 0;
    }
    /* a header of the peer's, then the input sealed */
    rep__buf_t b;
    rep__buf_init(&b);
    msgpack_packer pk;
    rep__packer_init(&pk, &b);
    msgpack_pack_array(&pk, 11);
    msgpack_pack_uint8(&pk, REP_CHANGE_VERSION);
    msgpack_pack_uint32(&pk, o->tr.epoch);
    msgpack_pack_uint64(&pk, o->peer_actor);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1700000000000ull << 16);
    uint8_t prev[REP_HASH_BYTES] = {0};
    msgpack_pack_bin(&pk, sizeof prev);
    msgpack_pack_bin_body(&pk, prev, sizeof prev);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, o->peer_actor ^ 1);
    msgpack_pack_uint64(&pk, 3);
    fuzz_seal(&b, 0, mode, d, n, rep__trust_key(&o->tr, o->tr.epoch, REP_SUBKEY_CHANGE));
    one(b.p, b.len, true);
    rep__buf_free(&b);
    return 0;
}
