/* zip.h — compression of large frames (internal). The only module that sees zstd. */
#ifndef REP_ZIP_H
#define REP_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* The largest body a compressed frame may expand to: a bound on what untrusted bytes can make
 * us allocate. */
#define REP_ZIP_MAX_OUT ((size_t)1 << 30)

/* Append the zstd frame of [p, p+n) to out. 0, -ENOMEM, or -EIO. */
int rep__zip(rep__buf_t *out, const uint8_t *p, size_t n);

/* Expand one zstd frame [p, p+n): *out (malloc'd) and *outn. The frame must state its size,
 * at most REP_ZIP_MAX_OUT, and decompress to exactly that; REP_ECORRUPT otherwise. */
int rep__unzip(const uint8_t *p, size_t n, uint8_t **out, size_t *outn);

#endif /* REP_ZIP_H */
