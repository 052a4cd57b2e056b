/* batch.c — libFuzzer target: rep__batch_decode (change.h), a batch frame (a bundle file's
 * bytes, a DATA payload). Each input is decoded as it is and with its checksum refitted
 * (fuzz.h). Of a batch that decodes, every change is decoded, verified against its author
 * and opened with the office's keys (fuzz.h), as an import would, and its membership entries
 * are decoded and taken, in order, into a trust of the office that knows nothing yet
 * (rep__trust_accept without a store). */
#include <stdint.h>
#include <stdlib.h>

#include "change.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
one(const uint8_t *d, size_t n)
{
    fuzz_office_t *o = &fuzz_o;
    rep__batch_t b;
    if (rep__batch_decode(d, n, &b) != 0)
        return;
    for (size_t i = 0; i < b.n; i++) {
        rep__change_t c;
        if (rep__change_decode(b.changes[i].p, b.changes[i].n, &c) != 0)
            continue;
        const rep__dev_t *author = rep__trust_author(&o->tr, c.actor, c.inc);
        if (author)
            (void)rep__change_verify(&c, b.office, author->pk);
        const uint8_t *key = rep__trust_key(&o->tr, c.epoch, REP_SUBKEY_CHANGE);
        if (key)
            (void)rep__change_open(&c, b.office, key);
        rep__change_clear(&c);
    }
    rep__trust_t tr;
    memset(&tr, 0, sizeof tr);
    memcpy(tr.office, o->r->office, sizeof tr.office);
    for (size_t i = 0; i < b.nentries; i++) {
        rep__entry_t e;
        (void)rep__entry_decode(b.entries[i].p, b.entries[i].n, &e);
        (void)rep__trust_accept(&tr, NULL, b.entries[i].p, b.entries[i].n);
    }
    rep__trust_clear(&tr);
    rep__batch_clear(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    fuzz_office();
    one(d, n);
    uint8_t *c = fuzz_refit(d, n);
    if (c)
        one(c, n);
    free(c);
    return 0;
}
