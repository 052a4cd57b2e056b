/* provision.c — libFuzzer target: provisionings (trust.h; the bytes a new device is opened
 * with, from rep_replica_provision(), a WELCOME or a file). Each input is read as it is and with
 * its checksum refitted (fuzz.h):
 *  - rep__provision_decode; one that decodes is encoded again (rep__provision_encode), which
 *    must decode; rep_provision_info reads it;
 *  - rep__provision_apply, as rep_replica_open does with it: into an empty store (made once,
 *    under $TMPDIR) in a write transaction that is then aborted.
 * Also each input as a one-time code as typed (rep__code_canon), and as a sealed provisioning
 * file (rep_provision_unseal with a fixed code) — but only where it fails before the code's
 * key is derived: crypto_pwhash (Argon2id, interactive) takes about 0.1 s, far too slow to fuzz,
 * so what lies behind it (the [provisioning, data] array) is not fuzzed here. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static rep__store_t *empty;
static char *empty_dir;

static void
empty_cleanup(void)
{
    rep__store_close(&empty);
    if (empty_dir) {
        fuzz_rmrf(empty_dir);
        free(empty_dir);
        empty_dir = NULL;
    }
}

static int
apply_fn(rep__txn_t *t, void *ctx)
{
    const rep__provision_t *p = ctx;
    rep__trust_t tr;
    int rc = rep__trust_load(t, p->office, &tr);
    if (rc != 0)
        fuzz_die("rep__trust_load (empty store)", rc);
    const char *name = NULL;
    rc = rep__provision_apply(p, &tr, t, &name);
    if (rc == 0 && (!name || !rep__trust_member(&tr, p->pk)))
        fuzz_fail("provision: applied, but its device is not a member");
    rep__trust_clear(&tr);
    return -ECANCELED;
}

static void
one(const uint8_t *d, size_t n)
{
    rep__provision_t p;
    int rc = rep__provision_decode(d, n, &p);
    if (rc == 0) {
        uint8_t *again;
        size_t againn;
        if ((rc = rep__provision_encode(&p, &again, &againn)) != 0)
            fuzz_fail("provision: decodes, but does not encode: %s", rep_strerror(rc));
        rep__provision_t q;
        if ((rc = rep__provision_decode(again, againn, &q)) != 0)
            fuzz_fail("provision: encoded again, does not decode: %s", rep_strerror(rc));
        if (q.nentries != p.nentries || q.nkeys != p.nkeys || q.has_sk != p.has_sk)
            fuzz_fail("provision: encoded again, decodes to another");
        rep__provision_clear(&q);
        free(again);
        uint8_t office[REP_OFFICE_ID_BYTES];
        char *oname = NULL, *dname = NULL;
        if (rep_provision_info(d, n, office, &oname, &dname) == 0) {
            free(oname);
            free(dname);
        }
        if ((rc = rep__store_write(empty, apply_fn, &p)) != -ECANCELED)
            fuzz_die("rep__store_write", rc);
    }
    rep__provision_clear(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (!empty) {
        if (rep__keys_init() != 0)
            fuzz_die("rep__keys_init", -EIO);
        empty_dir = fuzz_mkdtemp("empty");
        atexit(empty_cleanup);
        int rc = rep__store_open(&empty, empty_dir, true, true);
        if (rc != 0)
            fuzz_die("rep__store_open", rc);
    }
    one(d, n);
    uint8_t *c = fuzz_refit(d, n);
    if (c)
        one(c, n);
    free(c);

    char *s = malloc(n + 1);
    if (!s)
        return 0;
    memcpy(s, d, n);
    s[n] = 0;
    char code[REP_CODE_SIZE];
    if (rep__code_canon(s, code) == 0 && strlen(code) != REP_CODE_SIZE - 1)
        fuzz_fail("provision: a code canonicalized to \"%s\"", code);
    free(s);
    /* a file that gets past its header would be opened with crypto_pwhash: not those */
    if (!(n >= 4 + 1 + REP_SALT_BYTES + REP_NONCE_BYTES + REP_MAC_BYTES &&
          memcmp(d, "RPLF", 4) == 0 && d[4] == 1)) {
        uint8_t *prov, *data;
        size_t provn, datan;
        if (rep_provision_unseal(d, n, "ABCD-EFGH-JKMN", &prov, &provn, &data, &datan) == 0)
            fuzz_fail("provision: a file unsealed without its key");
    }
    return 0;
}
