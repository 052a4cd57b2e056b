/* common.h — small helpers shared by every module of libreplica (internal). */
#ifndef REP_COMMON_H
#define REP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "replica.h"

#define REP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fixed-width big-endian integers: keys sort in numeric order under LMDB's memcmp. Written
 * out byte by byte so that the compiler turns each into one load or store and a byte swap. */
static inline void
rep__put_be64(uint8_t *p, uint64_t v)
{
    p[0] = (uint8_t)(v >> 56);
    p[1] = (uint8_t)(v >> 48);
    p[2] = (uint8_t)(v >> 40);
    p[3] = (uint8_t)(v >> 32);
    p[4] = (uint8_t)(v >> 24);
    p[5] = (uint8_t)(v >> 16);
    p[6] = (uint8_t)(v >> 8);
    p[7] = (uint8_t)v;
}

static inline uint64_t
rep__get_be64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | p[7];
}

static inline void
rep__put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t
rep__get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A clock in ms: CLOCK_REALTIME (ms since the epoch) or CLOCK_MONOTONIC (for timeouts). */
static inline uint64_t
rep__clock_ms(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Propagate a negative status. */
#define REP_TRY(expr)                                                                              \
    do {                                                                                           \
        int rep__rc = (expr);                                                                      \
        if (rep__rc < 0)                                                                           \
            return rep__rc;                                                                        \
    } while (0)

#endif /* REP_COMMON_H */
