/* hlc.h — hybrid logical clock (internal, pure).
 *
 * An HLC is a uint64: the top 48 bits are milliseconds since the epoch, the low 16 a counter.
 * It never goes backwards: the next value is above both the last one used and the wall clock.
 * A remote value is adopted only up to wall clock + max drift, so one device with a clock
 * far in the future cannot drag the office's clocks along (its changes still apply).
 */
#ifndef REP_HLC_H
#define REP_HLC_H

#include <stdbool.h>
#include <stdint.h>

#define REP_HLC_MS(h)       ((h) >> 16)
#define REP_HLC_MAKE(ms, c) (((uint64_t)(ms) << 16) | (uint16_t)(c))
#define REP_HLC_MAX_MS      ((UINT64_C(1) << 48) - 1)
#define REP_DEFAULT_MAX_DRIFT_MS (5u * 60u * 1000u)

/* The clock value for a new local change, given the last value used and the wall clock. */
uint64_t rep__hlc_next(uint64_t last, uint64_t wall_ms);

/* The last value after seeing a remote clock value. Sets *skewed when remote was beyond
 * wall + max_drift (then only that bound is adopted). */
uint64_t rep__hlc_observe(uint64_t last, uint64_t remote, uint64_t wall_ms, uint64_t max_drift_ms,
                          bool *skewed);

#endif /* REP_HLC_H */
