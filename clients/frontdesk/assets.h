/*
 * assets.h — the front desk's page, embedded in the binary: index.html, app.css and app.js
 * of clients/frontdesk/, turned into the C array fd_assets by mkassets.sh at build time
 * (assets.c is generated; edit the files themselves).
 */
#ifndef FRONTDESK_ASSETS_H
#define FRONTDESK_ASSETS_H

#include <stddef.h>

typedef struct fd_asset {
    const char *path;          /* "/index.html" */
    const char *type;          /* its Content-Type */
    const unsigned char *data; /* NUL-terminated (not counted in len) */
    size_t len;
} fd_asset_t;

extern const fd_asset_t fd_assets[];
extern const size_t fd_nassets;

#endif /* FRONTDESK_ASSETS_H */
