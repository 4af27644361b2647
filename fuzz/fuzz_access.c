/*
 * libFuzzer driver for the access decision (src/control/access.c) on hostile
 * request bytes: the input is split at NUL bytes into an Authorization value,
 * an x-api-key value and a path.  Checks: a credential found lies inside the
 * header it came from and is not empty; only a configured key is allowed to
 * call models; a path is never both allowed to pass and an admin path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/access.h"

#define KEY "sk-fuzz-client-key-0123456789"

static void split(const char *in, size_t size, const char **part, size_t *len, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nul = at < size ? memchr(in + at, '\0', size - at) : NULL;
        part[i] = at < size ? in + at : NULL;
        len[i] = part[i] == NULL ? 0 : nul != NULL ? (size_t)(nul - (in + at)) : size - at;
        at += len[i] + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gyre_access_t *access;
    static gyre_config_t config;
    static char *prefixes[] = {"/v1/completions", "/v1/images", "/v1/files"};
    if (access == NULL) {
        static char key[] = KEY;
        static char *keys[] = {key};
        gyre_auth_conf_t auth = {GYRE_AUTH_KEYS, keys, 1, NULL, NULL, NULL};
        access = gyre_access_create(&auth);
        config.passthrough = prefixes;
        config.npassthrough = sizeof(prefixes) / sizeof(prefixes[0]);
    }
    /* A copy of exactly `size` bytes, so that a read past the end is caught. */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    const char *part[3];
    size_t len[3];
    split(in, size, part, len, 3);

    const char *cred = NULL;
    size_t clen = 0;
    int found = gyre_access_credential(part[0], len[0], part[1], len[1], &cred, &clen);
    if (found == 1) {
        int in_authz = part[0] != NULL && cred >= part[0] && cred + clen <= part[0] + len[0];
        int in_xkey = part[1] != NULL && cred >= part[1] && cred + clen <= part[1] + len[1];
        if (clen == 0 || !(in_authz || in_xkey))
            abort();
    }
    gyre_access_need_t need = gyre_access_need_for(part[2] ? part[2] : "", len[2]);
    gyre_access_verdict_t v = gyre_access_decide(access, need, found, cred, clen);
    if (need == GYRE_NEED_CLIENT && v == GYRE_ACCESS_ALLOW &&
        !(clen == sizeof(KEY) - 1 && memcmp(cred, KEY, clen) == 0))
        abort();
    /* No admin token is configured: nothing may open the admin API. */
    if (need == GYRE_NEED_ADMIN && v == GYRE_ACCESS_ALLOW)
        abort();
    if (part[2] != NULL) {
        gyre_pass_verdict_t p = gyre_access_passthrough(&config, part[2], len[2]);
        const char *q = memchr(part[2], '?', len[2]);
        size_t plen = q != NULL ? (size_t)(q - part[2]) : len[2];
        if ((p == GYRE_PASS_NEVER) != (gyre_config_path_never_passed(part[2], plen) != 0))
            abort();
    }
    free(in);
    return 0;
}
