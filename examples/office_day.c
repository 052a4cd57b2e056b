/*
 * office_day.c — embedding libreplica: two workstations of one office book an appointment,
 * edit the same patient at the same time while offline, exchange changes as bytes, and
 * converge, with the concurrent edit kept as a conflict rather than lost.
 *
 *   cc office_day.c $(pkg-config --cflags --libs libreplica) -o office_day
 *   ./office_day /tmp/office-demo        (the directory must not exist yet)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <replica.h>

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "%s: %s\n", #expr, rep_strerror(rc_));                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* One transaction: set one string field, as user. */
static void
put(rep_replica_t *r, const char *user, const char *key, const char *field, const char *value)
{
    rep_txn_t *t;
    CHECK(rep_txn_begin(r, user, &t));
    CHECK(rep_txn_set_str(t, key, field, value));
    CHECK(rep_txn_commit(t, NULL));
    rep_txn_free(&t);
}

/* Send what `to` lacks from `from`: to's version vector → from's export → to's import. */
static void
sync_into(rep_replica_t *to, rep_replica_t *from)
{
    uint8_t *vv, *batch;
    size_t vvlen, len;
    rep_import_stats_t st;
    CHECK(rep_replica_vv(to, &vv, &vvlen));
    CHECK(rep_replica_export(from, vv, vvlen, 0, &batch, &len, NULL));
    CHECK(rep_replica_import(to, batch, len, &st));
    printf("  %zu bytes, %llu changes applied\n", len, (unsigned long long)st.applied);
    rep_free(vv);
    rep_free(batch);
}

static void
print_digest(const char *who, const uint8_t d[REP_DIGEST_BYTES])
{
    printf("  %-10s ", who);
    for (size_t i = 0; i < REP_DIGEST_BYTES; i++)
        printf("%02x", d[i]);
    printf("\n");
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s NEW-DIRECTORY\n", argv[0]);
        return 2;
    }
    char desk_dir[4096], nurse_dir[4096];
    snprintf(desk_dir, sizeof desk_dir, "%s/front-desk", argv[1]);
    snprintf(nurse_dir, sizeof nurse_dir, "%s/nurse", argv[1]);
    rep_open_opts_t opts = {.flags = REP_OPEN_CREATE | REP_OPEN_EXCL,
                            .office_name = "Riverside Family Practice"};

    if (mkdir(argv[1], 0700) < 0) {
        perror(argv[1]);
        return 1;
    }
    rep_replica_t *desk, *nurse;
    opts.device_name = "front-desk";
    CHECK(rep_replica_open(&desk, desk_dir, &opts));
    /* the front desk (the office's first device, so its admin) enrolls the nurse's station */
    uint8_t *prov;
    size_t provn;
    CHECK(rep_replica_provision(desk, "nurse", "member", &prov, &provn));
    opts.device_name = NULL; /* the name the admin enrolled it with */
    opts.provision = prov;
    opts.provision_len = provn;
    CHECK(rep_replica_open(&nurse, nurse_dir, &opts));
    rep_free(prov); /* secret: the nurse's key and the office keys */

    put(desk, "maria", "patients/8812", "name", "Ada Lovelace");
    put(desk, "maria", "appts/2026-11-25-0900-8812", "status", "booked");
    printf("nurse receives the morning's bookings:\n");
    sync_into(nurse, desk);

    /* the link between them is down: both edit the same phone number */
    put(desk, "maria", "patients/8812", "phone", "555-0101");
    put(nurse, "jo", "patients/8812", "phone", "555-0199");
    printf("they swap changes both ways:\n");
    sync_into(nurse, desk);
    sync_into(desk, nurse);

    rep_value_t *v;
    CHECK(rep_replica_get(desk, "patients/8812", "phone", &v));
    printf("phone shown everywhere: %s\n", v->u.s.ptr);
    rep_value_free(&v);

    rep_conflicts_t *c;
    CHECK(rep_replica_conflicts(nurse, "patients/8812", &c));
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->items[i].n; j++) {
            const rep_sibling_t *s = &c->items[i].siblings[j];
            printf("  %s %s = %s (by %s)\n", s->winner ? "*" : " ", c->items[i].field,
                   s->value.u.s.ptr, s->user);
        }
    rep_conflicts_free(&c);

    uint8_t d1[REP_DIGEST_BYTES], d2[REP_DIGEST_BYTES];
    CHECK(rep_replica_digest(desk, d1));
    CHECK(rep_replica_digest(nurse, d2));
    printf("digests:\n");
    print_digest("front-desk", d1);
    print_digest("nurse", d2);
    rep_replica_close(&desk);
    rep_replica_close(&nurse);
    int same = memcmp(d1, d2, sizeof d1) == 0;
    printf("%s\n", same ? "converged" : "NOT converged");
    return same ? 0 : 1;
}
