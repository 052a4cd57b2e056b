/* join.c — libFuzzer target: the join exchange's messages (invite.h): each input is read as
 * a JOIN (rep__join_decode, what a node reads from a joining device) and as a WELCOME or
 * REFUSED (rep__join_reply_decode, what the joining device reads); a WELCOME's snapshot is
 * decoded as the joining device then does. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "invite.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char *device = NULL;
    uint8_t sign_pk[32], curve_pk[32];
    if (rep__join_decode(d, n, &device, sign_pk, curve_pk) == 0) {
        uint8_t *out;
        size_t len;
        if (rep__join_encode(device, sign_pk, curve_pk, &out, &len) == 0)
            free(out);
    }
    free(device);

    const uint8_t *snap = NULL;
    size_t snapn = 0;
    char *reason = NULL;
    int rc = rep__join_reply_decode(d, n, &snap, &snapn, &reason);
    if (rc == 1) {
        rep__snapshot_t s;
        if (rep__snapshot_decode(snap, snapn, &s) == 0)
            rep__snapshot_clear(&s);
    }
    free(reason);
    return 0;
}
