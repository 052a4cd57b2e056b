/* beacon.c — discovery beacons. See beacon.h. */
#include "beacon.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const uint8_t magic[4] = {'R', 'P', 'L', 'D'};

enum {
    OFF_VERSION = 4,
    OFF_TAG = 5,
    OFF_EPOCH = OFF_TAG + REP_BEACON_TAG_BYTES,
    OFF_DEVICE = OFF_EPOCH + 4,
    OFF_FAMILY = OFF_DEVICE + REP_SIGN_PK_BYTES,
    OFF_ADDR = OFF_FAMILY + 1,
    OFF_PORT = OFF_ADDR + 16,
    OFF_TIME = OFF_PORT + 2,
    OFF_MAC = OFF_TIME + 8,
};
_Static_assert(OFF_MAC + REP_MAC_BYTES == REP_BEACON_BYTES, "beacon layout");

static void
office_tag(uint8_t out[REP_BEACON_TAG_BYTES], const uint8_t office[REP_OFFICE_ID_BYTES])
{
    static const char label[] = "replica beacon";
    uint8_t h[REP_HASH_BYTES];
    rep__hasher_t s;
    rep__hasher_init(&s);
    rep__hasher_add(&s, label, sizeof label - 1);
    rep__hasher_add(&s, office, REP_OFFICE_ID_BYTES);
    rep__hasher_final(&s, h);
    memcpy(out, h, REP_BEACON_TAG_BYTES);
}

/* The tag of bytes [0, OFF_MAC) of p. */
static void
beacon_mac(uint8_t out[REP_MAC_BYTES], const uint8_t *p, const uint8_t office[REP_OFFICE_ID_BYTES],
           const uint8_t key[REP_KEY_BYTES])
{
    uint8_t m[REP_OFFICE_ID_BYTES + OFF_MAC];
    memcpy(m, office, REP_OFFICE_ID_BYTES);
    memcpy(m + REP_OFFICE_ID_BYTES, p, OFF_MAC);
    rep__mac(out, m, sizeof m, key);
}

static bool
addr_ok(uint8_t family, const uint8_t addr[16])
{
    static const uint8_t zero[16];
    if (family == 4)
        return memcmp(addr + 4, zero, 12) == 0 && memcmp(addr, zero, 4) != 0;
    return family == 6 && memcmp(addr, zero, 16) != 0;
}

int
rep__beacon_encode(uint8_t out[REP_BEACON_BYTES], const rep__beacon_t *b,
                   const uint8_t office[REP_OFFICE_ID_BYTES], const uint8_t key[REP_KEY_BYTES])
{
    if (!addr_ok(b->family, b->addr) || b->port == 0)
        return -EINVAL;
    memcpy(out, magic, sizeof magic);
    out[OFF_VERSION] = REP_BEACON_VERSION;
    office_tag(out + OFF_TAG, office);
    rep__put_be32(out + OFF_EPOCH, b->epoch);
    memcpy(out + OFF_DEVICE, b->device, REP_SIGN_PK_BYTES);
    out[OFF_FAMILY] = b->family;
    memcpy(out + OFF_ADDR, b->addr, 16);
    out[OFF_PORT] = (uint8_t)(b->port >> 8);
    out[OFF_PORT + 1] = (uint8_t)b->port;
    rep__put_be64(out + OFF_TIME, b->time_ms);
    beacon_mac(out + OFF_MAC, out, office, key);
    return 0;
}

int
rep__beacon_open(const uint8_t *p, size_t n, const uint8_t office[REP_OFFICE_ID_BYTES],
                 const rep__beacon_key_t *keys, size_t nkeys, rep__beacon_t *out)
{
    if (n < OFF_TAG || memcmp(p, magic, sizeof magic) != 0)
        return REP_ECORRUPT;
    if (p[OFF_VERSION] != REP_BEACON_VERSION)
        return p[OFF_VERSION] > REP_BEACON_VERSION ? REP_EVERSION : REP_ECORRUPT;
    if (n != REP_BEACON_BYTES)
        return REP_ECORRUPT;
    uint8_t tag[REP_BEACON_TAG_BYTES];
    office_tag(tag, office);
    if (memcmp(tag, p + OFF_TAG, sizeof tag) != 0)
        return REP_EOFFICE;
    rep__beacon_t b;
    b.epoch = rep__get_be32(p + OFF_EPOCH);
    memcpy(b.device, p + OFF_DEVICE, sizeof b.device);
    b.family = p[OFF_FAMILY];
    memcpy(b.addr, p + OFF_ADDR, sizeof b.addr);
    b.port = (uint16_t)(p[OFF_PORT] << 8 | p[OFF_PORT + 1]);
    b.time_ms = rep__get_be64(p + OFF_TIME);
    const uint8_t *key = NULL;
    for (size_t i = 0; i < nkeys && !key; i++)
        if (keys[i].epoch == b.epoch)
            key = keys[i].key;
    if (!key)
        return REP_EKEY;
    uint8_t mac[REP_MAC_BYTES];
    beacon_mac(mac, p, office, key);
    if (rep__memcmp_ct(mac, p + OFF_MAC, sizeof mac) != 0)
        return REP_EAUTH;
    if (!addr_ok(b.family, b.addr) || b.port == 0)
        return REP_ECORRUPT; /* tagged by a member, yet malformed */
    *out = b;
    return 0;
}

int
rep__beacon_admit(rep__beacon_guard_t *g, const rep__beacon_t *b, uint8_t family,
                  const uint8_t src[16], uint64_t now_ms, uint64_t window_ms)
{
    if (family != b->family || memcmp(src, b->addr, 16) != 0)
        return -EADDRNOTAVAIL;
    uint64_t off = b->time_ms > now_ms ? b->time_ms - now_ms : now_ms - b->time_ms;
    if (off > window_ms)
        return REP_EEXPIRED;
    struct rep__beacon_seen *s = NULL;
    for (size_t i = 0; i < g->n && !s; i++)
        if (g->seen[i].family == family && memcmp(g->seen[i].addr, src, 16) == 0 &&
            memcmp(g->seen[i].device, b->device, sizeof b->device) == 0)
            s = &g->seen[i];
    if (s && b->time_ms <= s->time_ms)
        return REP_EEXIST;
    if (!s && g->n < REP_BEACON_SEEN_MAX) {
        s = &g->seen[g->n++];
    } else if (!s) { /* full: forget the pair heard least recently */
        s = &g->seen[0];
        for (size_t i = 1; i < g->n; i++)
            if (g->seen[i].at < s->at)
                s = &g->seen[i];
    }
    memcpy(s->device, b->device, sizeof s->device);
    s->family = family;
    memcpy(s->addr, src, 16);
    s->time_ms = b->time_ms;
    s->at = now_ms;
    return 0;
}

/* ---- Where to send ---- */
static bool
parse_ipv4(const char *s, uint8_t out[4])
{
    unsigned a[4];
    char tail;
    if (sscanf(s, "%3u.%3u.%3u.%3u%c", &a[0], &a[1], &a[2], &a[3], &tail) != 4)
        return false;
    for (int i = 0; i < 4; i++) {
        if (a[i] > 255)
            return false;
        out[i] = (uint8_t)a[i];
    }
    return true;
}

size_t
rep__beacon_pick(const rep__iface_t *ifs, size_t n, const char *host, size_t *pick)
{
    static const uint8_t zero[4];
    bool every = !host || !*host || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
                 strcmp(host, "::") == 0;
    uint8_t want[4];
    bool literal = !every && parse_ipv4(host, want);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const rep__iface_t *f = &ifs[i];
        unsigned need = IFF_UP | IFF_RUNNING | IFF_BROADCAST;
        if ((f->flags & need) != need || (f->flags & IFF_LOOPBACK) ||
            memcmp(f->bcast, zero, 4) == 0 || memcmp(f->addr, zero, 4) == 0)
            continue;
        if (!every && (literal ? memcmp(f->addr, want, 4) != 0 : strcmp(f->name, host) != 0))
            continue;
        pick[k++] = i;
    }
    return k;
}

int
rep__beacon_endpoint(const char *ep, char *host, size_t size, uint16_t *port)
{
    if (!ep || strncmp(ep, "tcp://", 6) != 0)
        return -EINVAL;
    const char *h = ep + 6, *colon = strrchr(h, ':');
    if (!colon || colon == h)
        return -EINVAL;
    size_t hn = (size_t)(colon - h);
    if (h[0] == '[') { /* [v6] */
        if (hn < 2 || h[hn - 1] != ']')
            return -EINVAL;
        h++;
        hn -= 2;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p == 0 || p > 65535 || hn + 1 > size)
        return -EINVAL;
    memcpy(host, h, hn);
    host[hn] = 0;
    *port = (uint16_t)p;
    return 0;
}
