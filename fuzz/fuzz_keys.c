/*
 * libFuzzer driver for managed gateway keys (src/control/keys.c) on hostile
 * bytes: the input, split at its first NUL, is a credential (as the access
 * stage hands it over, from Authorization or x-api-key) and an "expires" or
 * "grace" value (as the admin API's JSON gives it).  Checks: only the two keys
 * made at start authenticate; what is not of a managed key's form is never
 * looked up; a found id is one of theirs; the time parsers never read past
 * the string or answer a time before the epoch for a duration.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gyre_state_t *st;
    static gyre_keys_t *k;
    static char key1[GYRE_KEYS_KEY_SIZE], key2[GYRE_KEYS_KEY_SIZE];
    static gyre_key_row_t r1, r2;
    if (k == NULL) {
        char err[256];
        if (gyre_state_open(":memory:", &st, err, sizeof(err)) != 0 || gyre_keys_open(st, 1, &k, err, sizeof(err)) != 0)
            abort();
        gyre_key_spec_t a = {.name = "a", .team = "t", .budget_usd = -1};
        gyre_key_spec_t b = {.name = "b", .models = "chat", .budget_usd = -1, .expires_us = 1};
        if (gyre_keys_create(k, &a, key1, &r1, err, sizeof(err)) != 0 ||
            gyre_keys_create(k, &b, key2, &r2, err, sizeof(err)) != 0)
            abort();
    }
    /* A copy of exactly `size` bytes, so that a read past the end is caught. */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    const char *nul = memchr(in, '\0', size);
    size_t clen = nul != NULL ? (size_t)(nul - in) : size;

    gyre_principal_t p;
    memset(&p, 0, sizeof(p));
    gyre_key_verdict_t v = gyre_keys_authenticate(k, 0, in, clen, 1000, &p);
    if (!gyre_keys_is_managed_form(in, clen) && v != GYRE_KEY_NOT_MANAGED)
        abort();
    int is1 = clen == GYRE_KEYS_KEY_LEN && memcmp(in, key1, clen) == 0;
    int is2 = clen == GYRE_KEYS_KEY_LEN && memcmp(in, key2, clen) == 0;
    if ((v == GYRE_KEY_VALID) != is1 || (v == GYRE_KEY_EXPIRED) != is2)
        abort();
    if (v != GYRE_KEY_UNKNOWN && v != GYRE_KEY_NOT_MANAGED && strcmp(p.key_id, r1.id) != 0 &&
        strcmp(p.key_id, r2.id) != 0)
        abort();

    if (nul != NULL) {
        /* The second part as the NUL-terminated string JSON would give. */
        size_t rest = size - clen - 1;
        char *s = malloc(rest + 1);
        memcpy(s, nul + 1, rest);
        s[rest] = '\0';
        int64_t t = 0, g = 0;
        if (gyre_keys_parse_expires(s, 1000000, &t) == 0 && s[0] >= '0' && s[0] <= '9' && strchr(s, 'T') == NULL &&
            strchr(s, '-') == NULL && t < 1000000)
            abort();
        if (gyre_keys_parse_grace(s, &g) == 0 && (g < 0 || g > GYRE_KEYS_GRACE_MAX_US))
            abort();
        free(s);
    }
    free(in);
    return 0;
}
