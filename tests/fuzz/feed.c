/* feed.c — libFuzzer target: rep_replica_changes() (replica.h), the change feed, with a cursor
 * from the input: the cursor decoder (feed.c) and the walk after it. The fuzzer's replica
 * (fuzz.h) gets a few changes of its own first, one of them in a '_' collection. The first
 * byte is the limit (0 to 7), the rest (up to a NUL) the cursor. A call returns 0, -EINVAL,
 * REP_EOFFICE or REP_EVERSION, never crashes; on 0 it gives at most limit changes and a cursor
 * that is taken again and after which a full call lists nothing twice. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void
write_some(rep_replica_t *r)
{
    static const char *const keys[] = {"patients/1", "appts/0900", "_devices/x", "patients/2"};
    for (size_t i = 0; i < 6; i++) {
        rep_txn_t *t;
        int rc = rep_txn_begin(r, "fuzz", &t);
        if (rc == 0)
            rc = rep_txn_set_str(t, keys[i % 4], "f", "v");
        if (rc == 0 && i % 3 == 0)
            rc = rep_txn_incr(t, keys[(i + 1) % 4], "n", 1);
        if (rc == 0)
            rc = rep_txn_commit(t, NULL);
        rep_txn_free(&t);
        if (rc != 0)
            fuzz_die("writing the fuzzer's changes", rc);
    }
}

static void
check(rep_replica_t *r, const char *cursor, size_t limit)
{
    rep_feed_t *f, *g;
    int rc = rep_replica_changes(r, cursor, limit, 0, &f);
    if (rc == -ENOMEM)
        fuzz_die("rep_replica_changes", rc);
    if (rc != 0) {
        if (rc != -EINVAL && rc != REP_EOFFICE && rc != REP_EVERSION)
            fuzz_fail("rep_replica_changes: unexpected %d (%s)", rc, rep_strerror(rc));
        if (f)
            fuzz_fail("rep_replica_changes: a result with %d", rc);
        return;
    }
    if (!f->cursor || (limit && f->n > limit))
        fuzz_fail("rep_replica_changes: no cursor, or %zu changes over the limit %zu", f->n, limit);
    if ((rc = rep_replica_changes(r, f->cursor, 0, 0, &g)) != 0)
        fuzz_fail("rep_replica_changes: its own cursor refused: %d", rc);
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = 0; j < f->n; j++)
            if (g->changes[i].actor == f->changes[j].actor && g->changes[i].seq == f->changes[j].seq)
                fuzz_fail("rep_replica_changes: change %zu listed again after the cursor", j);
    rep_feed_free(&g);
    rep_feed_free(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static int written;
    fuzz_office_t *o = fuzz_office();
    if (!written) {
        write_some(o->r);
        written = 1;
    }
    if (n == 0)
        return 0;
    size_t len = n - 1;
    const uint8_t *nul = memchr(d + 1, 0, len);
    if (nul)
        len = (size_t)(nul - (d + 1));
    char *s = malloc(len + 1);
    if (!s)
        return 0;
    memcpy(s, d + 1, len);
    s[len] = '\0';
    check(o->r, s, d[0] % 8);
    free(s);
    return 0;
}
