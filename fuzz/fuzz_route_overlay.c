/*
 * libFuzzer driver for route overlays (src/config/overlay.c): the body of an
 * admin PUT /api/admin/routes/NAME, read by the file's route parser as a
 * route laid over a configuration.  Besides the sanitizers, it checks what
 * the reader promises:
 *   - the overlay is taken (0, no error) or refused (-EINVAL, at least one
 *     error, each starting with the overlay's name);
 *   - a route it takes is consistent (targets point at providers, weights
 *     add up) and replaced the route of its name in place;
 *   - the route written back as JSON reads as the same route (the JSON of
 *     the second reading is the JSON of the first).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/overlay.h"

static const char base_yaml[] = "providers:\n"
                                "  - {name: p, kind: openai, base_url: \"http://127.0.0.1:9/v1\", keys: [sk-fuzz-a]}\n"
                                "  - {name: q, kind: openai, base_url: \"http://127.0.0.1:9/v1\", keys: [sk-fuzz-b]}\n"
                                "routes:\n"
                                "  - name: chat\n"
                                "    targets: [{provider: p, model: a}]\n"
                                "  - name: embed\n"
                                "    targets: [{provider: q, model: e}]\n";

static gyre_config_t *base(void)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("fuzz.yaml", base_yaml, sizeof(base_yaml) - 1, &errs);
    gyre_config_errors_dispose(&errs);
    if (c == NULL)
        abort();
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    memcpy(json, data, size);
    json[size] = '\0';
    gyre_config_t *c = base();
    const char *names[] = {"chat"};
    const char *jsons[] = {json};
    gyre_config_errors_t errs = {0};
    int r = gyre_config_apply_routes(c, names, jsons, 1, &errs);
    if ((r == 0) != (errs.count == 0) || (r != 0 && r != -EINVAL))
        abort();
    for (size_t i = 0; i < errs.count; i++)
        if (strncmp(errs.items[i], "route overlay 'chat'", 20) != 0)
            abort();
    if (r == 0) {
        if (c->nroutes != 2 || strcmp(c->routes[0].name, "chat") != 0)
            abort();
        const gyre_route_conf_t *rt = &c->routes[0];
        unsigned total = 0;
        for (size_t i = 0; i < rt->ntargets; i++) {
            if (rt->targets[i].provider >= c->nproviders)
                abort();
            total += rt->targets[i].weight;
        }
        if (rt->ntargets == 0 || total != rt->total_weight || total == 0)
            abort();
        gyre_buf_t once, twice;
        gyre_buf_init(&once, 1 << 20);
        gyre_buf_init(&twice, 1 << 20);
        gyre_config_route_json(c, rt, &once);
        const char *again[] = {once.base};
        gyre_config_errors_t e2 = {0};
        if (gyre_config_apply_routes(c, names, again, 1, &e2) != 0)
            abort();
        gyre_config_route_json(c, &c->routes[0], &twice);
        if (once.len != twice.len || memcmp(once.base, twice.base, once.len) != 0)
            abort();
        gyre_config_errors_dispose(&e2);
        gyre_buf_dispose(&once);
        gyre_buf_dispose(&twice);
    }
    gyre_config_errors_dispose(&errs);
    gyre_config_free(c);
    free(json);
    return 0;
}
