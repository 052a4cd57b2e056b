/*
 * check_hlc.c — the hybrid logical clock: 48-bit milliseconds ‖ 16-bit counter.
 *
 * rep__hlc_next gives the clock value of a new local change: strictly above the last one used,
 * and the wall clock when that is ahead. rep__hlc_observe takes in a remote value, but never
 * past wall clock + max drift, so one device set a day ahead cannot drag the office along.
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hlc.h"
#include "testutil.h"

#define HOUR_MS (60ull * 60 * 1000)
#define DAY_MS  (24 * HOUR_MS)
#define T0      TU_CLOCK_EPOCH_MS /* a plausible "now" */
#define DRIFT   ((uint64_t)REP_DEFAULT_MAX_DRIFT_MS)

/* ---- The layout ---------------------------------------------------------------------------- */

START_TEST(an_hlc_is_milliseconds_then_a_16_bit_counter)
{
    uint64_t h = REP_HLC_MAKE(T0, 7);
    ck_assert_uint_eq(REP_HLC_MS(h), T0);
    ck_assert_uint_eq(h & 0xffff, 7);
    ck_assert_uint_eq(REP_HLC_MAKE(1, 0), 0x10000);
    ck_assert_uint_eq(REP_HLC_MAKE(REP_HLC_MAX_MS, 0xffff), UINT64_MAX);
    /* ordering by value is ordering by (ms, counter) */
    ck_assert_uint_lt(REP_HLC_MAKE(T0, 0xffff), REP_HLC_MAKE(T0 + 1, 0));
}
END_TEST

/* ---- rep__hlc_next -------------------------------------------------------------------------- */

START_TEST(next_follows_the_wall_clock_when_it_is_ahead)
{
    uint64_t h = rep__hlc_next(0, T0);
    ck_assert_uint_eq(h, REP_HLC_MAKE(T0, 0));
    h = rep__hlc_next(h, T0 + 250);
    ck_assert_uint_eq(h, REP_HLC_MAKE(T0 + 250, 0)); /* counter resets on a new ms */
}
END_TEST

START_TEST(next_counts_up_while_the_wall_clock_stands_still)
{
    uint64_t h = rep__hlc_next(0, T0);
    for (unsigned i = 1; i <= 1000; i++) {
        uint64_t n = rep__hlc_next(h, T0);
        if (n != h + 1 || REP_HLC_MS(n) != T0 || (n & 0xffff) != i)
            ck_abort_msg("call %u in the same ms: %#" PRIx64 " after %#" PRIx64, i, n, h);
        h = n;
    }
}
END_TEST

START_TEST(next_keeps_increasing_when_the_wall_clock_jumps_back_hours)
{
    uint64_t h = rep__hlc_next(0, T0);
    uint64_t first = h;
    /* the wall clock is set back three hours, then creeps forward */
    for (uint64_t wall = T0 - 3 * HOUR_MS, i = 0; i < 5000; i++, wall += 1) {
        uint64_t n = rep__hlc_next(h, wall);
        if (n <= h)
            ck_abort_msg("went from %#" PRIx64 " to %#" PRIx64 " at wall %" PRIu64, h, n, wall);
        h = n;
    }
    ck_assert_uint_eq(h, first + 5000);   /* it only counted: the wall clock was behind */
    ck_assert_uint_eq(REP_HLC_MS(h), T0); /* 5000 < 65536: still in the same ms */

    /* once the wall clock passes the clock again, it is followed */
    ck_assert_uint_eq(rep__hlc_next(h, T0 + 1), REP_HLC_MAKE(T0 + 1, 0));
}
END_TEST

START_TEST(next_carries_a_full_counter_into_the_milliseconds)
{
    uint64_t last = REP_HLC_MAKE(T0, 0xffff);
    uint64_t h = rep__hlc_next(last, T0);
    ck_assert_uint_gt(h, last);
    ck_assert_uint_eq(h, REP_HLC_MAKE(T0 + 1, 0));

    /* 70000 ticks in one wall ms run past one counter's worth */
    h = rep__hlc_next(0, T0);
    for (int i = 0; i < 70000; i++) {
        uint64_t n = rep__hlc_next(h, T0);
        if (n <= h)
            ck_abort_msg("tick %d did not increase", i);
        h = n;
    }
    ck_assert_uint_eq(REP_HLC_MS(h), T0 + 1);
    ck_assert_uint_eq(h & 0xffff, 70000 - 65536);
}
END_TEST

START_TEST(next_clamps_a_wall_clock_past_48_bits)
{
    uint64_t h = rep__hlc_next(0, UINT64_MAX);
    ck_assert_uint_eq(h, REP_HLC_MAKE(REP_HLC_MAX_MS, 0));
    ck_assert_uint_gt(rep__hlc_next(h, UINT64_MAX), h);
}
END_TEST

/* ---- rep__hlc_observe ----------------------------------------------------------------------- */

START_TEST(observe_adopts_a_remote_clock_within_the_drift)
{
    bool skewed = true;
    uint64_t last = REP_HLC_MAKE(T0, 3);
    uint64_t remote = REP_HLC_MAKE(T0 + 60 * 1000, 9); /* a minute ahead */
    ck_assert_uint_eq(rep__hlc_observe(last, remote, T0, DRIFT, &skewed), remote);
    ck_assert(!skewed);

    /* exactly at the bound still counts as within it */
    remote = REP_HLC_MAKE(T0 + DRIFT, 0xffff);
    ck_assert_uint_eq(rep__hlc_observe(last, remote, T0, DRIFT, &skewed), remote);
    ck_assert(!skewed);

    /* and the next local change comes after the adopted value */
    ck_assert_uint_gt(rep__hlc_next(remote, T0), remote);
}
END_TEST

START_TEST(observe_caps_a_clock_a_day_ahead_and_reports_it)
{
    bool skewed = false;
    uint64_t last = REP_HLC_MAKE(T0, 0);
    uint64_t remote = REP_HLC_MAKE(T0 + DAY_MS, 0);
    uint64_t h = rep__hlc_observe(last, remote, T0, DRIFT, &skewed);
    ck_assert(skewed);
    ck_assert_uint_eq(h, REP_HLC_MAKE(T0 + DRIFT, 0xffff)); /* only up to the bound */
    ck_assert_uint_lt(h, remote);

    /* one past the bound is already skewed */
    remote = REP_HLC_MAKE(T0 + DRIFT + 1, 0);
    ck_assert_uint_eq(rep__hlc_observe(last, remote, T0, DRIFT, &skewed),
                      REP_HLC_MAKE(T0 + DRIFT, 0xffff));
    ck_assert(skewed);

    /* a zero drift allows nothing past the wall clock's ms */
    h = rep__hlc_observe(last, REP_HLC_MAKE(T0 + 1, 0), T0, 0, &skewed);
    ck_assert(skewed);
    ck_assert_uint_eq(h, REP_HLC_MAKE(T0, 0xffff));
}
END_TEST

START_TEST(observe_never_goes_backwards_for_a_remote_clock_in_the_past)
{
    bool skewed = true;
    uint64_t last = REP_HLC_MAKE(T0 + 10, 5);
    ck_assert_uint_eq(rep__hlc_observe(last, REP_HLC_MAKE(T0 - DAY_MS, 0), T0, DRIFT, &skewed),
                      last);
    ck_assert(!skewed);
    ck_assert_uint_eq(rep__hlc_observe(last, 0, T0, DRIFT, &skewed), last);
    ck_assert_uint_eq(rep__hlc_observe(last, last, T0, DRIFT, &skewed), last);

    /* a last value already past the bound (adopted earlier) is kept, not pulled back */
    last = REP_HLC_MAKE(T0 + DRIFT + 1000, 0);
    ck_assert_uint_eq(rep__hlc_observe(last, REP_HLC_MAKE(T0 + DAY_MS, 0), T0, DRIFT, &skewed),
                      last);
    ck_assert(skewed);
}
END_TEST

START_TEST(observe_survives_a_drift_that_would_overflow)
{
    bool skewed = true;
    uint64_t remote = REP_HLC_MAKE(T0 + DAY_MS, 0);
    ck_assert_uint_eq(rep__hlc_observe(0, remote, T0, UINT64_MAX, &skewed), remote);
    ck_assert(!skewed);
    ck_assert_uint_eq(rep__hlc_observe(0, UINT64_MAX, T0, UINT64_MAX, &skewed), UINT64_MAX);
    ck_assert(!skewed);
}
END_TEST

/* ---- Property: random ticks and observations ------------------------------------------------ */

/*
 * One device's clock over a random run: its wall clock jumps by up to ±24 h now and then and
 * stands still or creeps forward otherwise; it makes local changes (next) and sees remote
 * values from devices skewed by up to ±24 h (observe). After every step the clock must not
 * have decreased (strictly increased for next), and must not exceed the larger of its old
 * value (+1 for next) and wall + max drift.
 */
START_TEST(clock_never_decreases_and_stays_within_the_drift_bound)
{
    uint64_t seed = tu_seed(0x41c0ffee) + (uint64_t)_i;
    tu_rng_t rng;
    tu_rng_seed(&rng, seed);

    uint64_t wall = T0 + tu_rng_below(&rng, DAY_MS);
    uint64_t drift = tu_rng_chance(&rng, 20) ? 0 : tu_rng_range(&rng, 1, 10 * 60 * 1000);
    uint64_t h = 0;
    unsigned skews = 0, nexts = 0;
    for (int step = 0; step < 20000; step++) {
        uint64_t r = tu_rng_below(&rng, 100);
        if (r < 2) { /* the wall clock is set to anything within a day of where it was */
            uint64_t j = tu_rng_below(&rng, DAY_MS);
            wall = tu_rng_chance(&rng, 50) ? wall + j : wall - j;
        } else if (r < 40) {
            wall += tu_rng_below(&rng, 3); /* stands still or creeps */
        }

        uint64_t bound = REP_HLC_MAKE(wall + drift, 0xffff);
        uint64_t n;
        if (tu_rng_chance(&rng, 50)) {
            n = rep__hlc_next(h, wall);
            nexts++;
            if (n <= h)
                ck_abort_msg("seed %#" PRIx64 " step %d: next %#" PRIx64 " <= %#" PRIx64, seed,
                             step, n, h);
            if (n > (h + 1 > bound ? h + 1 : bound))
                ck_abort_msg("seed %#" PRIx64 " step %d: next %#" PRIx64 " past the bound", seed,
                             step, n);
        } else {
            /* a remote device up to a day off, sometimes with a busy counter */
            uint64_t off = tu_rng_below(&rng, DAY_MS);
            uint64_t rms = tu_rng_chance(&rng, 50) ? wall + off : wall - off;
            uint64_t remote = REP_HLC_MAKE(rms, tu_rng_below(&rng, 0x10000));
            bool skewed;
            n = rep__hlc_observe(h, remote, wall, drift, &skewed);
            skews += skewed;
            if (skewed != (remote > bound))
                ck_abort_msg("seed %#" PRIx64 " step %d: skewed=%d for remote %#" PRIx64, seed,
                             step, (int)skewed, remote);
            if (n < h)
                ck_abort_msg("seed %#" PRIx64 " step %d: observe went back", seed, step);
            if (n > (h > bound ? h : bound))
                ck_abort_msg("seed %#" PRIx64 " step %d: observe %#" PRIx64 " past the bound", seed,
                             step, n);
            if (!skewed && n != (remote > h ? remote : h))
                ck_abort_msg("seed %#" PRIx64 " step %d: a remote within drift not adopted", seed,
                             step);
        }
        h = n;
    }
    ck_assert_uint_gt(nexts, 0);
    ck_assert_msg(drift == 0 || skews > 0, "seed %#" PRIx64 ": no skewed remote seen", seed);
}
END_TEST

static Suite *
hlc_suite(void)
{
    Suite *s = suite_create("hlc");
    TCase *tc = tcase_create("next");
    tcase_add_test(tc, an_hlc_is_milliseconds_then_a_16_bit_counter);
    tcase_add_test(tc, next_follows_the_wall_clock_when_it_is_ahead);
    tcase_add_test(tc, next_counts_up_while_the_wall_clock_stands_still);
    tcase_add_test(tc, next_keeps_increasing_when_the_wall_clock_jumps_back_hours);
    tcase_add_test(tc, next_carries_a_full_counter_into_the_milliseconds);
    tcase_add_test(tc, next_clamps_a_wall_clock_past_48_bits);
    suite_add_tcase(s, tc);

    tc = tcase_create("observe");
    tcase_add_test(tc, observe_adopts_a_remote_clock_within_the_drift);
    tcase_add_test(tc, observe_caps_a_clock_a_day_ahead_and_reports_it);
    tcase_add_test(tc, observe_never_goes_backwards_for_a_remote_clock_in_the_past);
    tcase_add_test(tc, observe_survives_a_drift_that_would_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("property");
    tcase_add_loop_test(tc, clock_never_decreases_and_stays_within_the_drift_bound, 0, 20);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(hlc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
