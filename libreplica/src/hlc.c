/* hlc.c — hybrid logical clock. See hlc.h. */
#include "hlc.h"

uint64_t
rep__hlc_next(uint64_t last, uint64_t wall_ms)
{
    if (wall_ms > REP_HLC_MAX_MS)
        wall_ms = REP_HLC_MAX_MS;
    uint64_t wall = REP_HLC_MAKE(wall_ms, 0);
    if (wall > last)
        return wall;
    /* The counter carries into the milliseconds on overflow: still strictly increasing.
     * At the very top of the range it stays put rather than wrap (year 10889). */
    return last == UINT64_MAX ? last : last + 1;
}

uint64_t
rep__hlc_observe(uint64_t last, uint64_t remote, uint64_t wall_ms, uint64_t max_drift_ms,
                 bool *skewed)
{
    uint64_t cap_ms = wall_ms + max_drift_ms;
    if (cap_ms > REP_HLC_MAX_MS || cap_ms < wall_ms)
        cap_ms = REP_HLC_MAX_MS;
    uint64_t cap = REP_HLC_MAKE(cap_ms, 0xffff);
    *skewed = remote > cap;
    if (remote > cap)
        remote = cap;
    return remote > last ? remote : last;
}
