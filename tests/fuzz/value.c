/* value.c — libFuzzer target: rep__value_decode (codec.h), one canonical msgpack value.
 * A value that decodes must be canonical: encoding it again gives back exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    rep_value_t v;
    if (rep__value_decode(d, n, &v) != 0)
        return 0;
    rep__buf_t b;
    rep__buf_init(&b);
    int rc = rep__value_encode(&b, &v);
    if (rc == 0 && b.err == 0 && (b.len != n || memcmp(b.p, d, n) != 0)) {
        fprintf(stderr, "value: decoded, but not canonical (re-encoded in %zu bytes, not %zu)\n",
                b.len, n);
        abort();
    }
    rep__buf_free(&b);
    return 0;
}
