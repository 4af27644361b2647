/*
 * `datasets:` where curated datasets are kept (and `loops:`, below) (src/loop/dataset.h): a
 * directory, made when the first dataset is written.  Without it, datasets go
 * beside the store: "<store sqlite path>.datasets".
 *
 *   datasets: /var/lib/gyre/datasets
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#include "config/config_int.h"

void gyre_cfg_parse_datasets(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    char *s = NULL;
    if (!gyre_cfg_get_string(ctx, n, "datasets", &s))
        return;
    if (s[0] == '\0') {
        ERR(ctx, n, "datasets", "is empty (a directory's path)");
        free(s);
        return;
    }
    free(c->datasets_dir);
    c->datasets_dir = s;
}

/*
 * `loops:` the loop specs `gyre serve` runs on their schedule (src/loop/looprun.h): file paths, read when a
 * schedule is checked (a spec's errors are logged then; `gyre loop run --spec` checks one at once).
 *
 *   loops: [/etc/gyre/support-loop.yaml]
 */
void gyre_cfg_parse_loops(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    yaml_node_item_t one = 0, *start = &one, *end = &one + 1;
    if (n->type == YAML_SEQUENCE_NODE) {
        start = n->data.sequence.items.start;
        end = n->data.sequence.items.top;
    } else if (!gyre_cfg_want_type(ctx, n, YAML_SCALAR_NODE, "loops"))
        return;
    if (end - start > 64) {
        ERR(ctx, n, "loops", "at most 64 loop specs");
        return;
    }
    for (yaml_node_item_t *it = start; it < end; it++) {
        yaml_node_t *v = it == &one ? n : yaml_document_get_node(ctx->doc, *it);
        char *s = NULL;
        if (!gyre_cfg_get_string(ctx, v, "loops[]", &s))
            return;
        if (s[0] == '\0') {
            ERR(ctx, v, "loops[]", "is empty (a loop spec's path)");
            free(s);
            return;
        }
        c->loop_specs = gyre_realloc(c->loop_specs, sizeof(*c->loop_specs) * (c->nloop_specs + 1));
        c->loop_specs[c->nloop_specs++] = s;
    }
}
