/* change.c — libFuzzer target: rep__change_decode (change.h), one change's bytes.
 * A change that decodes is walked (every op's names and value read) and encoded again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    rep__change_t c;
    if (rep__change_decode(d, n, &c) != 0)
        return 0; /* c is left clear on failure */
    volatile size_t sum = c.usern;
    for (size_t i = 0; i < c.nops; i++) {
        const rep__op_t *op = &c.ops[i];
        if (op->colln)
            sum += (uint8_t)op->coll[op->colln - 1];
        if (op->recn)
            sum += (uint8_t)op->rec[op->recn - 1];
        if (op->fieldn)
            sum += (uint8_t)op->field[op->fieldn - 1];
        if (op->valn)
            sum += op->val[op->valn - 1];
    }
    for (size_t i = 0; i < c.ndeps; i++)
        sum += c.deps[i].seq;
    rep__buf_t b;
    rep__buf_init(&b);
    (void)rep__change_encode(&b, &c);
    rep__buf_free(&b);
    rep__change_clear(&c);
    return 0;
}
