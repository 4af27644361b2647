/*
 * `datasets:` where curated datasets are kept (src/loop/dataset.h): a
 * directory, made when the first dataset is written.  Without it, datasets go
 * beside the store: "<store sqlite path>.datasets".
 *
 *   datasets: /var/lib/gyre/datasets
 */
#include <string.h>

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
