/* join.c — libFuzzer target: the join exchange's messages (invite.h): each input is read as
 * a JOIN (rep__join_decode, what a node reads from a joining device) and as a WELCOME or
 * REFUSED (rep__join_reply_decode, what the joining device reads). A WELCOME's parts are read
 * as the joining device then does: its provisioning (rep__provision_decode,
 * rep_provision_info) and its snapshot (rep__snapshot_decode, and rep__snapshot_open with the
 * office's snapshot key, fuzz.h). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "invite.h"
#include "snapshot.h"
#include "trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    fuzz_office_t *o = fuzz_office();
    char *device = NULL;
    uint8_t sign_pk[32], curve_pk[32];
    if (rep__join_decode(d, n, &device, sign_pk, curve_pk) == 0) {
        uint8_t *out;
        size_t len;
        if (rep__join_encode(device, sign_pk, curve_pk, &out, &len) == 0)
            free(out);
    }
    free(device);

    rep__welcome_t w;
    char *reason = NULL;
    int rc = rep__join_reply_decode(d, n, &w, &reason);
    if (rc == 1) {
        rep__provision_t p;
        if (rep__provision_decode(w.provision, w.provisionn, &p) == 0) {
            char *oname = NULL, *dname = NULL;
            if (rep_provision_info(w.provision, w.provisionn, NULL, &oname, &dname) == 0) {
                free(oname);
                free(dname);
            }
        }
        rep__provision_clear(&p);
        rep__snapshot_t s;
        if (rep__snapshot_decode(w.snap, w.snapn, &s) == 0) {
            const uint8_t *key = rep__trust_key(&o->tr, s.epoch, REP_SUBKEY_SNAPSHOT);
            if (key)
                (void)rep__snapshot_open(&s, key);
            rep__snapshot_clear(&s);
        }
        uint8_t *out;
        size_t len;
        if (rep__join_reply_encode(&w, NULL, &out, &len) == 0)
            free(out);
    } else if (rc == 0) {
        uint8_t *out;
        size_t len;
        if (rep__join_reply_encode(NULL, reason, &out, &len) == 0)
            free(out);
    }
    free(reason);
    return 0;
}
