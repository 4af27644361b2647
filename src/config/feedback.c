/*
 * `feedback:` the metrics that feedback (POST /v1/feedback, `gyre feedback`)
 * may be given on (issue 14).  A value for a metric not declared here is
 * refused with a 400 naming `name`, so that a typo does not become a new
 * metric nobody reads.
 *
 *   feedback:
 *     metrics:
 *       - name: helpful            # [A-Za-z0-9._:-]+, unique
 *         type: boolean            # true/false (stored as 1/0)
 *       - name: rating
 *         type: number
 *         min: 1                   # the range, both ends included (optional; both or neither)
 *         max: 5
 *         optimize: max            # max (default: higher is better) or min
 *       - name: tone
 *         type: category
 *         categories: [calm, rude] # required for a category, at most 64
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "config/config_int.h"

/* Bounds on what a config declares: a metric list and a category list a person writes, not data. */
#define FEEDBACK_MAX_METRICS 256
#define FEEDBACK_MAX_CATEGORIES 64
#define FEEDBACK_MAX_NAME 64

/* A finite number; 0 (with an error naming the field) otherwise. */
static int get_number(parse_ctx_t *ctx, yaml_node_t *n, const char *field, double *out)
{
    const char *s = gyre_cfg_scalar(n);
    char *end = NULL;
    if (s == NULL || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || s[0] == '\0') {
        ERR(ctx, n, field, "must be a number");
        return 0;
    }
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v)) {
        ERR(ctx, n, field, "must be a number, got '%.64s'", s);
        return 0;
    }
    *out = v;
    return 1;
}

static void parse_metric(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n, size_t i)
{
    gyre_feedback_metric_conf_t *m = &c->feedback_metrics[i];
    char field[96], sub[128];
    yaml_node_t *min_node = NULL, *max_node = NULL, *cats_node = NULL;
    gyre_cfg_path_of(field, sizeof(field), "feedback.metrics[%zu]", i);
    m->line = gyre_cfg_line_of(n);
    m->higher_is_better = 1;
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, field))
        return;
    int have_type = 0, have_name = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        gyre_cfg_path_of(sub, sizeof(sub), "%s.%s", field, key);
        if (strcmp(key, "name") == 0) {
            char *s = NULL;
            have_name = 1;
            if (!gyre_cfg_get_string(ctx, v, sub, &s))
                continue;
            if (!gyre_cfg_valid_name(s) || strlen(s) > FEEDBACK_MAX_NAME)
                ERR(ctx, v, sub, "'%.64s' is not a metric name (1 to %d of A-Z a-z 0-9 . _ : -)", s,
                    FEEDBACK_MAX_NAME);
            else {
                free(m->name);
                m->name = gyre_strdup(s);
            }
            free(s);
        } else if (strcmp(key, "type") == 0) {
            static const char *const kinds[] = {"boolean", "number", "category", NULL};
            int k2 = gyre_cfg_get_choice(ctx, v, sub, kinds);
            if (k2 >= 0) {
                m->kind = (gyre_metric_kind_t)(k2 + 1);
                have_type = 1;
            }
        } else if (strcmp(key, "min") == 0) {
            min_node = v;
        } else if (strcmp(key, "max") == 0) {
            max_node = v;
        } else if (strcmp(key, "categories") == 0) {
            cats_node = v;
        } else if (strcmp(key, "optimize") == 0) {
            static const char *const dirs[] = {"max", "min", NULL};
            int d = gyre_cfg_get_choice(ctx, v, sub, dirs);
            if (d >= 0)
                m->higher_is_better = d == 0;
        } else {
            ERR(ctx, k, field, "unknown field '%s' (known: name, type, min, max, categories, optimize)", key);
        }
    }
    if (!have_name)
        ERR(ctx, n, field, "needs a 'name'");
    if (!have_type) {
        ERR(ctx, n, field, "needs a 'type' (boolean, number or category)");
        return;
    }
    gyre_cfg_path_of(sub, sizeof(sub), "%s.min", field);
    if (min_node != NULL && m->kind != GYRE_METRIC_NUMBER)
        ERR(ctx, min_node, sub, "applies to a number metric only");
    gyre_cfg_path_of(sub, sizeof(sub), "%s.max", field);
    if (max_node != NULL && m->kind != GYRE_METRIC_NUMBER)
        ERR(ctx, max_node, sub, "applies to a number metric only");
    if (m->kind == GYRE_METRIC_NUMBER && (min_node != NULL || max_node != NULL)) {
        double lo = 0, hi = 0;
        int ok = 1;
        if (min_node == NULL || max_node == NULL) {
            ERR(ctx, min_node != NULL ? min_node : max_node, field, "a range needs both 'min' and 'max'");
            ok = 0;
        }
        gyre_cfg_path_of(sub, sizeof(sub), "%s.min", field);
        if (ok && !get_number(ctx, min_node, sub, &lo))
            ok = 0;
        gyre_cfg_path_of(sub, sizeof(sub), "%s.max", field);
        if (ok && !get_number(ctx, max_node, sub, &hi))
            ok = 0;
        if (ok && lo >= hi) {
            ERR(ctx, max_node, sub, "must be greater than min (%g)", lo);
            ok = 0;
        }
        if (ok) {
            m->min = lo;
            m->max = hi;
        }
    }
    gyre_cfg_path_of(sub, sizeof(sub), "%s.categories", field);
    if (m->kind == GYRE_METRIC_CATEGORY) {
        if (cats_node == NULL) {
            ERR(ctx, n, field, "a category metric needs 'categories' (a list of its values)");
            return;
        }
        if (!gyre_cfg_want_type(ctx, cats_node, YAML_SEQUENCE_NODE, sub))
            return;
        size_t nc = (size_t)(cats_node->data.sequence.items.top - cats_node->data.sequence.items.start);
        if (nc == 0 || nc > FEEDBACK_MAX_CATEGORIES) {
            ERR(ctx, cats_node, sub, "must list 1 to %d values", FEEDBACK_MAX_CATEGORIES);
            return;
        }
        m->categories = gyre_calloc(nc, sizeof(*m->categories));
        for (size_t j = 0; j < nc; j++) {
            yaml_node_t *cv = yaml_document_get_node(ctx->doc, cats_node->data.sequence.items.start[j]);
            char cf[160], *s = NULL;
            gyre_cfg_path_of(cf, sizeof(cf), "%s[%zu]", sub, j);
            if (!gyre_cfg_get_string(ctx, cv, cf, &s))
                continue;
            int dup = 0;
            for (size_t q = 0; q < m->ncategories; q++)
                dup |= strcmp(m->categories[q], s) == 0;
            if (s[0] == '\0' || strlen(s) > FEEDBACK_MAX_NAME)
                ERR(ctx, cv, cf, "must be 1 to %d bytes", FEEDBACK_MAX_NAME);
            else if (dup)
                ERR(ctx, cv, cf, "'%.64s' is listed twice", s);
            else
                m->categories[m->ncategories++] = gyre_strdup(s);
            free(s);
        }
    } else if (cats_node != NULL) {
        ERR(ctx, cats_node, sub, "applies to a category metric only");
    }
}

void gyre_cfg_parse_feedback(parse_ctx_t *ctx, gyre_config_t *c, yaml_node_t *n)
{
    if (!gyre_cfg_want_type(ctx, n, YAML_MAPPING_NODE, "feedback"))
        return;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = GYRE_CFG_KEY(ctx, p), *v = GYRE_CFG_VALUE(ctx, p);
        const char *key = gyre_cfg_scalar(k) != NULL ? gyre_cfg_scalar(k) : "?";
        if (strcmp(key, "metrics") != 0) {
            ERR(ctx, k, "feedback", "unknown field '%s' (known: metrics)", key);
            continue;
        }
        if (!gyre_cfg_want_type(ctx, v, YAML_SEQUENCE_NODE, "feedback.metrics"))
            continue;
        size_t nm = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (nm > FEEDBACK_MAX_METRICS) {
            ERR(ctx, v, "feedback.metrics", "lists %zu metrics; at most %d", nm, FEEDBACK_MAX_METRICS);
            continue;
        }
        gyre_cfg_free_feedback(c);
        c->feedback_metrics = gyre_calloc(nm ? nm : 1, sizeof(*c->feedback_metrics));
        c->nfeedback_metrics = nm;
        for (size_t i = 0; i < nm; i++) {
            yaml_node_t *item = yaml_document_get_node(ctx->doc, v->data.sequence.items.start[i]);
            parse_metric(ctx, c, item, i);
            for (size_t j = 0; j < i && c->feedback_metrics[i].name != NULL; j++) {
                if (c->feedback_metrics[j].name != NULL &&
                    strcmp(c->feedback_metrics[j].name, c->feedback_metrics[i].name) == 0) {
                    char field[96];
                    gyre_cfg_path_of(field, sizeof(field), "feedback.metrics[%zu].name", i);
                    ERR(ctx, item, field, "'%s' is declared twice (first at line %d)", c->feedback_metrics[i].name,
                        c->feedback_metrics[j].line);
                }
            }
        }
    }
}

void gyre_cfg_free_feedback(gyre_config_t *c)
{
    for (size_t i = 0; i < c->nfeedback_metrics; i++) {
        free(c->feedback_metrics[i].name);
        for (size_t j = 0; j < c->feedback_metrics[i].ncategories; j++)
            free(c->feedback_metrics[i].categories[j]);
        free(c->feedback_metrics[i].categories);
    }
    free(c->feedback_metrics);
    c->feedback_metrics = NULL;
    c->nfeedback_metrics = 0;
}
