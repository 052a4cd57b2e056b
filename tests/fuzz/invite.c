/* invite.c — libFuzzer target: rep__invite_decode (invite.h), an invitation token as typed by
 * a user. An input starting with a 0 byte is a token's content instead: the rest gets its check
 * bytes (the first 4 of its BLAKE2b-256) and is base64-encoded, so mutations reach the msgpack
 * reader; any other input is the token string itself (whitespace, bad base64, bad check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "invite.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
one(const char *token)
{
    rep__invite_t in;
    if (rep__invite_decode(token, &in) != 0)
        return; /* cleared on failure */
    char *again;
    if (rep__invite_encode(&in, &again) == 0)
        free(again);
    rep__invite_clear(&in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char *token = NULL;
    if (n > 0 && d[0] == 0) {
        uint8_t *p = malloc(n - 1 + 4);
        if (!p)
            return 0;
        memcpy(p, d + 1, n - 1);
        uint8_t sum[REP_HASH_BYTES];
        rep__hash(sum, p, n - 1);
        memcpy(p + n - 1, sum, 4);
        token = rep__base64(p, n - 1 + 4);
        free(p);
    } else if ((token = malloc(n + 1))) {
        memcpy(token, d, n);
        token[n] = 0;
    }
    if (token)
        one(token);
    free(token);
    return 0;
}
