/* zip.c — zstd wrappers. See zip.h. */
#include "zip.h"

#include <errno.h>
#include <stdlib.h>
#include <zstd.h>

#include "common.h"

#define LEVEL 3 /* zstd's default: most of the gain at a fraction of the time of higher levels */

int
rep__zip(rep__buf_t *out, const uint8_t *p, size_t n)
{
    size_t bound = ZSTD_compressBound(n);
    REP_TRY(rep__buf_reserve(out, bound));
    size_t z = ZSTD_compress(out->p + out->len, bound, p, n, LEVEL);
    if (ZSTD_isError(z))
        return -EIO;
    out->len += z;
    return 0;
}

int
rep__unzip(const uint8_t *p, size_t n, uint8_t **out, size_t *outn)
{
    *out = NULL;
    *outn = 0;
    unsigned long long size = ZSTD_getFrameContentSize(p, n);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > REP_ZIP_MAX_OUT || ZSTD_findFrameCompressedSize(p, n) != n)
        return REP_ECORRUPT;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return -ENOMEM;
    size_t got = ZSTD_decompress(buf, size, p, n);
    if (ZSTD_isError(got) || got != size) {
        free(buf);
        return REP_ECORRUPT;
    }
    *out = buf;
    *outn = size;
    return 0;
}
