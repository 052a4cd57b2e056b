/* fuzz.h — what the libFuzzer targets of tests/fuzz/ share (and tests/fuzz/seeds, which writes
 * their seed corpus).
 *
 * Frames (batches, version vectors, snapshots) end with a BLAKE2b-256 checksum of the bytes
 * before it, so a mutated input almost never gets past the check. Frame targets therefore
 * decode each input twice: as it is, and as fuzz_refit() makes it (the same bytes with the
 * checksum recomputed), which lets the fuzzer reach the body parsers.
 *
 * Targets that need a replica (import, sync) open one, once per process, in a mkdtemp()
 * directory under $TMPDIR, of the office FUZZ_OFFICE, the office the seeds are made in: an
 * input that is a mutated seed then gets past the office check. The directory is removed at
 * exit. Such targets keep state from one input to the next (what earlier inputs imported),
 * as a real replica does; a crash is replayed with the same corpus order, or alone.
 */
#ifndef REP_FUZZ_H
#define REP_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "replica.h"

/* The office of every seed and of the targets' replicas. */
static const uint8_t FUZZ_OFFICE[REP_OFFICE_ID_BYTES] = "fuzz-office-0001";

/* A fuzzed message stream (sync): messages as [len(2, little-endian), bytes...]; the last
 * one takes what remains when its length says more. */
#define FUZZ_MSG_HDR 2

/* fuzz_die: a setup failure (not a finding). */
#define fuzz_die(what, rc)                                                                   \
    do {                                                                                     \
        fprintf(stderr, "fuzz setup: %s: %s\n", (what), rep_strerror(rc));                  \
        abort();                                                                             \
    } while (0)

/* A malloc'd copy of [d, d+n) with its last REP_HASH_BYTES recomputed as a frame's checksum;
 * NULL when n is too short for a frame (or no memory). */
static inline uint8_t *
fuzz_refit(const uint8_t *d, size_t n)
{
    if (n < 6 + REP_HASH_BYTES)
        return NULL;
    uint8_t *c = malloc(n);
    if (!c)
        return NULL;
    memcpy(c, d, n);
    rep__hash(c + n - REP_HASH_BYTES, c, n - REP_HASH_BYTES);
    return c;
}

static char *fuzz_dir;
static rep_replica_t *fuzz_r;

static inline void
fuzz_cleanup(void)
{
    rep_replica_close(&fuzz_r);
    if (fuzz_dir) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
        free(fuzz_dir);
        fuzz_dir = NULL;
    }
}

/* The process's replica (REP_OPEN_NOSYNC, office FUZZ_OFFICE), made on first use. */
static inline rep_replica_t *
fuzz_replica(void)
{
    if (fuzz_r)
        return fuzz_r;
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz-replica-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(path))
        fuzz_die("mkdtemp", -1);
    if (!(fuzz_dir = strdup(path)))
        fuzz_die("strdup", -1);
    atexit(fuzz_cleanup);
    rep_open_opts_t o = {0};
    o.flags = REP_OPEN_CREATE | REP_OPEN_NOSYNC;
    o.office_name = "fuzz office";
    o.device_name = "fuzzer";
    o.office_id = FUZZ_OFFICE;
    int rc = rep_replica_open(&fuzz_r, fuzz_dir, &o);
    if (rc != 0)
        fuzz_die("rep_replica_open", rc);
    return fuzz_r;
}

/* The replica must stay usable whatever it was fed: its digest and vv are computable. */
static inline void
fuzz_check_replica(rep_replica_t *r)
{
    uint8_t digest[REP_DIGEST_BYTES];
    int rc = rep_replica_digest(r, digest);
    if (rc != 0)
        fuzz_die("rep_replica_digest after the input", rc);
    uint8_t *vv;
    size_t vvn;
    rc = rep_replica_vv(r, &vv, &vvn);
    if (rc != 0)
        fuzz_die("rep_replica_vv after the input", rc);
    rep_free(vv);
}

#endif /* REP_FUZZ_H */
