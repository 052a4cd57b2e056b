/* vv.c — libFuzzer target: rep__vv_decode (change.h), a version-vector frame (a HELLO's or
 * an ACK's vv, an export request). Decoded as it is and with its checksum refitted (fuzz.h);
 * a vv that decodes must be sorted by actor without duplicates (an actor 0, the length of the
 * sender's membership log, only first), and encode again. */
#include <stdint.h>
#include <stdlib.h>

#include "change.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
one(const uint8_t *d, size_t n)
{
    uint8_t office[REP_OFFICE_ID_BYTES];
    rep_vv_entry_t *vv;
    size_t nvv;
    if (rep__vv_decode(d, n, office, &vv, &nvv) != 0)
        return;
    for (size_t i = 1; i < nvv; i++)
        if (vv[i - 1].actor >= vv[i].actor) {
            fprintf(stderr, "vv: decoded entries out of order at %zu\n", i);
            abort();
        }
    uint8_t *out;
    size_t len;
    if (rep__vv_encode(office, vv, nvv, &out, &len) == 0)
        free(out);
    free(vv);
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
