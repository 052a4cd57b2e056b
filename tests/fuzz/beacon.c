/* beacon.c — libFuzzer target: rep__beacon_open and rep__beacon_admit (beacon.h), a datagram
 * heard on the beacon port, and rep__beacon_endpoint. The first byte is a mode:
 *   0  the rest is a datagram, opened with a fixed office and epoch key (fuzz.h), and what opens
 *      goes through a guard that lives across inputs, as a node's does
 *   1  the rest fills a beacon's fields, which is encoded (tagged with the key) and must then
 *      open to exactly those fields: mutations reach what lies behind the tag
 *   2  the rest is a bound endpoint string
 * Needs no replica. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "beacon.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static rep__beacon_guard_t guard;

static void
keys(uint8_t office[REP_OFFICE_ID_BYTES], rep__beacon_key_t *k)
{
    memset(office, FUZZ_BEACON_OFFICE_BYTE, REP_OFFICE_ID_BYTES);
    k->epoch = FUZZ_BEACON_EPOCH;
    memset(k->key, FUZZ_BEACON_KEY_BYTE, sizeof k->key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    uint8_t office[REP_OFFICE_ID_BYTES];
    rep__beacon_key_t k;
    keys(office, &k);
    rep__beacon_t b, got;
    if (d[0] == 0) {
        if (rep__beacon_open(d + 1, n - 1, office, &k, 1, &b) == 0)
            (void)rep__beacon_admit(&guard, &b, b.family, b.addr, b.time_ms, REP_BEACON_WINDOW_MS);
    } else if (d[0] == 1) {
        uint8_t raw[sizeof b.device + 16 + 1 + 2 + 8 + 4] = {0};
        memcpy(raw, d + 1, n - 1 < sizeof raw ? n - 1 : sizeof raw);
        size_t at = 0;
        memset(&b, 0, sizeof b);
        memcpy(b.device, raw + at, sizeof b.device), at += sizeof b.device;
        memcpy(b.addr, raw + at, 16), at += 16;
        b.family = raw[at++];
        b.port = (uint16_t)(raw[at] << 8 | raw[at + 1]), at += 2;
        memcpy(&b.time_ms, raw + at, 8), at += 8;
        b.epoch = k.epoch;
        uint8_t p[REP_BEACON_BYTES];
        if (rep__beacon_encode(p, &b, office, k.key) == 0) {
            if (rep__beacon_open(p, sizeof p, office, &k, 1, &got) != 0 ||
                memcmp(&got.device, &b.device, sizeof b.device) != 0 ||
                memcmp(got.addr, b.addr, 16) != 0 || got.family != b.family ||
                got.port != b.port || got.time_ms != b.time_ms || got.epoch != b.epoch)
                abort(); /* an encoded beacon must open to what was encoded */
            (void)rep__beacon_admit(&guard, &got, got.family, got.addr, got.time_ms,
                                    REP_BEACON_WINDOW_MS);
        }
    } else if (d[0] == 2) {
        char *s = malloc(n);
        if (!s)
            return 0;
        memcpy(s, d + 1, n - 1);
        s[n - 1] = 0;
        char host[64];
        uint16_t port;
        (void)rep__beacon_endpoint(s, host, sizeof host, &port);
        free(s);
    }
    return 0;
}
