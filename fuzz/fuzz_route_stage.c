/*
 * libFuzzer driver for the route stage (src/route/stage.c) on hostile request
 * bytes: the input is split at NUL bytes into an x-gyre-session value, a
 * Cache-Control value and a request body (parsed as JSON, the cache key's
 * source).  Checks: the plan always has the route's every target; affinity is
 * set exactly when the session is not empty, and never 0 then; a hit or a
 * store needs a key; a Cache-Control naming no-store (in any case) neither
 * reads nor keeps; the hit is an entry that was stored.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route/stage.h"

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

/* Whether `s` holds "no-store" in any case. */
static int says_no_store(const char *s, size_t n)
{
    for (size_t i = 0; s != NULL && i + 8 <= n; i++) {
        size_t k = 0;
        while (k < 8 && (s[i + k] >= 'A' && s[i + k] <= 'Z' ? s[i + k] + 32 : s[i + k]) == "no-store"[k])
            k++;
        if (k == 8)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gyre_config_t *c;
    static gyre_keypool_t pools[2];
    static gyre_target_state_t states[3];
    static gyre_target_state_t *route_states[1] = {states};
    static gyre_cache_t *caches[1];
    static uint64_t rng = 1;
    if (c == NULL) {
        static const char yaml[] = "providers:\n"
                                   "  - {name: a, kind: openai, base_url: 'http://h/v1'}\n"
                                   "  - {name: b, kind: openai, base_url: 'http://h/v1'}\n"
                                   "routes:\n"
                                   "  - {name: r, affinity: session, cache: true, targets: [{provider: a, model: m1},"
                                   " {provider: b, model: m2, weight: 3}], fallbacks: [{provider: b, model: m3}]}\n";
        gyre_config_errors_t errs = {0};
        c = gyre_config_parse("fuzz", yaml, sizeof(yaml) - 1, &errs);
        if (c == NULL)
            abort();
        for (size_t i = 0; i < 2; i++)
            gyre_keypool_init(&pools[i], &c->providers[i]);
        caches[0] = gyre_cache_create(1 << 20, 0);
        /* One stored answer, under the key of the request "{}", so that inputs can find it. */
        cJSON *empty = cJSON_CreateObject();
        gyre_buf_t key;
        gyre_buf_init(&key, 1 << 20);
        if (gyre_cache_key(empty, "r", &key) != 0 ||
            gyre_cache_put(caches[0], key.base, key.len, "a\tm1\n{}", 7, 0) != 0)
            abort();
        gyre_buf_dispose(&key);
        cJSON_Delete(empty);
    }
    /* A copy of exactly `size` bytes, so that a read past the end is caught. */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    const char *part[3];
    size_t len[3];
    split(in, size, part, len, 3);
    cJSON *pivot = part[2] != NULL ? cJSON_ParseWithLength(part[2], len[2]) : NULL;

    gyre_route_env_t env = {c, route_states, pools, caches, &rng, 1000};
    gyre_route_ask_t ask = {.session = part[0],
                            .session_len = len[0],
                            .cache_control = part[1],
                            .cache_control_len = len[1],
                            .pivot = pivot,
                            .chat = 1,
                            .stream = size != 0 && (data[0] & 1)};
    if (gyre_route_resolve(c, "r", 1, &ask.target) != 0)
        abort();
    gyre_candidate_t cands[3];
    gyre_route_decision_t d;
    gyre_route_stage(&env, &ask, cands, &d);
    if (d.ncands != 3 || gyre_route_plan_len(&ask.target) != 3)
        abort();
    if ((d.affinity != 0) != (len[0] != 0))
        abort();
    if ((d.hit || d.store != NULL) && !d.keyed)
        abort();
    if (says_no_store(part[1], len[1]) && (d.hit || d.store != NULL))
        abort();
    if (d.hit && !(d.hit_entry.len == 7 && memcmp(d.hit_entry.base, "a\tm1\n{}", 7) == 0))
        abort();
    gyre_route_decision_dispose(&d);
    cJSON_Delete(pivot);
    free(in);
    return 0;
}
