/*
 * frontdesk_load.c — fill a replica with N synthetic patients (patients/<id>: name, dob,
 * phone, allergies) in one change, for bench/frontdesk-search.sh.
 *
 *   bench/frontdesk_load DIR N
 *
 * DIR must hold a replica (`replica init`). Names are drawn from fixed lists with a fixed
 * seed, so every run writes the same names; ids are p00000.. in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"

static const char *const first[] = {"Ana",  "Ben",   "Carla", "Dev",  "Elif", "Farah", "Goran",
                                    "Hana", "Ivan",  "Jun",   "Kofi", "Lena", "Mateo", "Nia",
                                    "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara"};
static const char *const last[] = {"Ruiz",    "Okafor", "Nguyen", "Schmidt", "Haddad", "Kowalski",
                                   "Tanaka",  "Silva",  "Mensah", "Larsen",  "Petrov", "Moreau",
                                   "Costa",   "Yilmaz", "Novak",  "Singh",   "Walsh",  "Ibrahim",
                                   "Fischer", "Lopez",  "Berg",   "Dubois",  "Rossi",  "Sato"};

int
main(int argc, char **argv)
{
    rep_replica_t *r = NULL;
    rep_txn_t *t = NULL;
    unsigned long n;
    unsigned seed = 42;
    int rc;

    if (argc != 3 || (n = strtoul(argv[2], NULL, 10)) == 0 || n > 20000) {
        fprintf(stderr, "usage: frontdesk_load DIR N (1..20000)\n");
        return 2;
    }
    if ((rc = rep_replica_open(&r, argv[1], NULL)) < 0 || (rc = rep_txn_begin(r, "bench", &t)) < 0)
        goto out;
    for (unsigned long i = 0; i < n && rc == 0; i++) {
        char key[32], name[64], dob[16], phone[16];
        seed = seed * 1103515245u + 12345u;
        snprintf(key, sizeof key, "patients/p%05lu", i);
        snprintf(name, sizeof name, "%s %s", first[(seed >> 8) % 20], last[(seed >> 16) % 24]);
        snprintf(dob, sizeof dob, "%04u-%02u-%02u", 1930 + (seed >> 4) % 90, 1 + (seed >> 12) % 12,
                 1 + (seed >> 20) % 28);
        snprintf(phone, sizeof phone, "555-%04lu", i % 10000);
        rep_value_t pen = {.type = REP_STRING, .u.s = {"penicillin", 10}};
        if ((rc = rep_txn_set_str(t, key, "name", name)) == 0 &&
            (rc = rep_txn_set_str(t, key, "dob", dob)) == 0)
            rc = rep_txn_set_str(t, key, "phone", phone);
        if (rc == 0 && i % 7 == 0)
            rc = rep_txn_add(t, key, "allergies", &pen);
    }
    if (rc == 0)
        rc = rep_txn_commit(t, NULL);
out:
    rep_txn_free(&t);
    rep_replica_close(&r);
    if (rc < 0) {
        fprintf(stderr, "frontdesk_load: %s: %s\n", argv[1], rep_strerror(rc));
        return 1;
    }
    printf("%lu patients written to %s\n", n, argv[1]);
    return 0;
}
