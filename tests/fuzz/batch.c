/* batch.c — libFuzzer target: rep__batch_decode (change.h), a batch frame (a bundle file's
 * bytes, a DATA payload). Each input is decoded as it is and with its checksum refitted
 * (fuzz.h); every change of a batch that decodes is decoded too, as an import would. */
#include <stdint.h>
#include <stdlib.h>

#include "change.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
one(const uint8_t *d, size_t n)
{
    rep__batch_t b;
    if (rep__batch_decode(d, n, &b) != 0)
        return;
    for (size_t i = 0; i < b.n; i++) {
        rep__change_t c;
        if (rep__change_decode(b.changes[i].p, b.changes[i].n, &c) == 0)
            rep__change_clear(&c);
    }
    rep__batch_clear(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    one(d, n);
    uint8_t *c = fuzz_refit(d, n);
    if (c)
        one(c, n);
    free(c);
    return 0;
}
