/*
 * libFuzzer driver for the configuration reader (src/config/config.c) on
 * arbitrary YAML.  Besides the sanitizers, it checks what the reader
 * promises:
 *   - it returns a config or at least one error, never both or neither;
 *   - each error starts with the source name;
 *   - no error reveals the value of a key: the text is read twice, with
 *     GYRE_FUZZ_KEY (which the seeds use as env:GYRE_FUZZ_KEY) set to two
 *     different secrets, and the errors must be the same both times.  (A
 *     search for one known secret would teach it to the fuzzer, which
 *     hooks strstr, and it would then write the secret into some field
 *     that errors rightly quote.)
 *   - a config it returns is consistent: targets point at providers, route
 *     weights add up, every key has an id, base paths have no trailing '/'.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static void check_config(const gyre_config_t *c)
{
    /* A config without a `store:` section has no store (and stores no traces); one with it has its DSN. */
    if (c->listen_host == NULL || c->listen_port == 0 || (c->traces && c->store_dsn == NULL))
        abort();
    for (size_t i = 0; i < c->nproviders; i++) {
        const gyre_provider_conf_t *p = &c->providers[i];
        if (p->name == NULL || p->host == NULL || p->port == 0 || p->base_path == NULL ||
            p->kind != GYRE_PROVIDER_OPENAI)
            abort();
        size_t bl = strlen(p->base_path);
        if (bl > 0 && p->base_path[bl - 1] == '/')
            abort();
        for (size_t k = 0; k < p->nkeys; k++)
            if (p->keys[k] == NULL || p->keys[k][0] == '\0' || p->key_ids[k] == NULL)
                abort();
        if (gyre_config_find_provider(c, p->name, strlen(p->name)) == NULL)
            abort();
    }
    for (size_t i = 0; i < c->nroutes; i++) {
        const gyre_route_conf_t *r = &c->routes[i];
        unsigned sum = 0;
        if (r->name == NULL || r->ntargets == 0)
            abort();
        for (size_t t = 0; t < r->ntargets; t++) {
            if (r->targets[t].provider >= c->nproviders || r->targets[t].model == NULL)
                abort();
            sum += r->targets[t].weight;
        }
        if (sum == 0 || sum != r->total_weight)
            abort();
        if (gyre_config_find_route(c, r->name, strlen(r->name)) != r)
            abort();
    }
}

static gyre_config_t *parse_with_key(const char *text, size_t size, const char *secret, gyre_config_errors_t *errs)
{
    setenv("GYRE_FUZZ_KEY", secret, 1);
    gyre_config_t *c = gyre_config_parse("fuzz.yaml", text, size, errs);
    if ((c == NULL) == (errs->count == 0))
        abort();
    for (size_t i = 0; i < errs->count; i++)
        if (strncmp(errs->items[i], "fuzz.yaml", 9) != 0)
            abort();
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes, so that reading past the text is caught. */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    gyre_config_errors_t e1 = {0}, e2 = {0};
    gyre_config_t *c1 = parse_with_key(text, size, "sk-first-secret-AAAA", &e1);
    gyre_config_t *c2 = parse_with_key(text, size, "sk-other-secret-BBBB", &e2);
    if ((c1 == NULL) != (c2 == NULL) || e1.count != e2.count)
        abort();
    for (size_t i = 0; i < e1.count; i++)
        if (strcmp(e1.items[i], e2.items[i]) != 0)
            abort();
    if (c1 != NULL)
        check_config(c1);
    gyre_config_free(c1);
    gyre_config_free(c2);
    gyre_config_errors_dispose(&e1);
    gyre_config_errors_dispose(&e2);
    free(text);
    return 0;
}
