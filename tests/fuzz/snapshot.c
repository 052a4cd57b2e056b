/* snapshot.c — libFuzzer target: rep__snapshot_decode (snapshot.h), a snapshot frame (a
 * catch-up DATA payload, a WELCOME's content). Decoded as it is and with its checksum refitted
 * (fuzz.h); a snapshot that decodes must have strictly increasing keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
one(const uint8_t *d, size_t n)
{
    rep__snapshot_t s;
    (void)rep__snapshot_is(d, n);
    if (rep__snapshot_decode(d, n, &s) != 0)
        return;
    for (size_t i = 1; i < s.n; i++) {
        size_t a = s.keys[i - 1].n, b = s.keys[i].n;
        int c = memcmp(s.keys[i - 1].p, s.keys[i].p, a < b ? a : b);
        if (c > 0 || (c == 0 && a >= b)) {
            fprintf(stderr, "snapshot: decoded keys out of order at %zu\n", i);
            abort();
        }
    }
    rep__snapshot_clear(&s);
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
