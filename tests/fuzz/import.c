/* import.c — libFuzzer target: rep_replica_import() (replica.h) of arbitrary bytes into a real
 * replica (fuzz.h: one per process, REP_OPEN_NOSYNC, office FUZZ_OFFICE), as a bundle file or
 * a DATA payload would be. Each input is imported as it is and with its checksum refitted
 * (batch and snapshot frames alike). An import returns 0 or an error, never crashes, and
 * leaves a replica whose digest and vv are still computable. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    rep_replica_t *r = fuzz_replica();
    rep_import_stats_t st;
    (void)rep_replica_import(r, d, n, &st);
    uint8_t *c = fuzz_refit(d, n);
    if (c) {
        (void)rep_replica_import(r, c, n, &st);
        free(c);
    }
    uint8_t office[REP_OFFICE_ID_BYTES];
    char *name = NULL;
    if (rep_batch_office(d, n, office, &name) == 0)
        rep_free(name);
    fuzz_check_replica(r);
    return 0;
}
