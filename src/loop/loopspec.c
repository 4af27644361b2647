/*
 * The loop spec's reader (loopspec.h says the format).  Each section is
 * checked here, once, so that the parts of the loop (train, serve, gate,
 * deploy) receive values they need not check again: names that must be
 * names, ramps that increase to 100, durations that are durations.
 */
#include "loop/loopspec.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "loop/yamlspec.h"

/* A name (route, provider, backend, scorer, adapter): what a route, a URL path or a file name may hold. */
static int name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == '/' || c == ':'))
            return 0;
    }
    return 1;
}

static int get_name(gyre_ys_t *c, const yaml_node_t *n, const char *field, char **out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_ys_scalar(n);
    if (!name_ok(s, 200)) {
        gyre_ys_err(c, n, field, "'%s' is not a name (letters, digits, '-', '_', '.', '/', ':'; 1 to 200)", s);
        return 0;
    }
    free(*out);
    *out = gyre_strdup(s);
    return 1;
}

static int get_text(gyre_ys_t *c, const yaml_node_t *n, const char *field, size_t max, char **out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_ys_scalar(n);
    if (s[0] == '\0' || strlen(s) > max) {
        gyre_ys_err(c, n, field, "expected 1 to %zu characters", max);
        return 0;
    }
    free(*out);
    *out = gyre_strdup(s);
    return 1;
}

static int get_duration_ms(gyre_ys_t *c, const yaml_node_t *n, const char *field, uint64_t *out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_ys_scalar(n);
    /* Milliseconds too ("500ms"): the tests hold a canary step for a second or two. */
    size_t len = strlen(s);
    if (len > 2 && strcmp(s + len - 2, "ms") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (s[0] >= '0' && s[0] <= '9' && end == s + len - 2 && errno == 0 && v > 0 && v <= 1000000000ULL) {
            *out = v;
            return 1;
        }
    } else {
        int64_t us = gyre_ys_duration_us(s);
        if (us > 0) {
            *out = (uint64_t)us / 1000;
            return 1;
        }
    }
    gyre_ys_err(c, n, field, "expected a duration (500ms, 90s, 15m, 24h, 7d), found '%s'", s);
    return 0;
}

static unsigned get_u(gyre_ys_t *c, const yaml_node_t *n, const char *field, unsigned min, unsigned max)
{
    uint64_t v = 0;
    return gyre_ys_uint(c, n, field, min, max, &v) ? (unsigned)v : 0;
}

static void parse_train(gyre_ys_t *c, gyre_train_conf_t *t, yaml_node_t *n)
{
    static const char *const backends[] = {"openai", "together", "command", NULL};
    static const char *const methods[] = {"sft", "dpo", NULL};
    static const char *const types[] = {"lora", "full", NULL};
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "train"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        char field[64];
        snprintf(field, sizeof(field), "train.%s", key != NULL ? key : "?");
        if (key == NULL)
            gyre_ys_unknown(c, k, "train", "");
        else if (strcmp(key, "backend") == 0) {
            int i = gyre_ys_choice(c, v, field, backends);
            if (i >= 0)
                t->backend = gyre_strdup(backends[i]);
        } else if (strcmp(key, "provider") == 0)
            get_name(c, v, field, &t->provider);
        else if (strcmp(key, "base_model") == 0 || strcmp(key, "model") == 0)
            get_name(c, v, field, &t->base_model);
        else if (strcmp(key, "method") == 0) {
            int i = gyre_ys_choice(c, v, field, methods);
            if (i >= 0)
                t->method = gyre_strdup(methods[i]);
        } else if (strcmp(key, "training_type") == 0) {
            int i = gyre_ys_choice(c, v, field, types);
            if (i >= 0)
                t->training_type = gyre_strdup(types[i]);
        } else if (strcmp(key, "epochs") == 0)
            t->epochs = get_u(c, v, field, 1, 100);
        else if (strcmp(key, "learning_rate") == 0)
            gyre_ys_double(c, v, field, 0, 1, 0, &t->learning_rate);
        else if (strcmp(key, "batch_size") == 0)
            t->batch_size = get_u(c, v, field, 1, 4096);
        else if (strcmp(key, "lora_rank") == 0)
            t->lora_rank = get_u(c, v, field, 1, 1024);
        else if (strcmp(key, "suffix") == 0)
            get_name(c, v, field, &t->suffix);
        else if (strcmp(key, "command") == 0)
            get_text(c, v, field, 8192, &t->command);
        else if (strcmp(key, "timeout") == 0)
            get_duration_ms(c, v, field, &t->timeout_ms);
        else if (strcmp(key, "poll") == 0)
            get_duration_ms(c, v, field, &t->poll_ms);
        else
            gyre_ys_unknown(c, k, "train",
                            "backend, provider, base_model, method, training_type, epochs, learning_rate, "
                            "batch_size, lora_rank, suffix, command, timeout, poll");
    }
    if (c->failed)
        return;
    if (t->backend == NULL)
        gyre_ys_err(c, n, "train.backend", "missing (openai, together or command)");
    else if (strcmp(t->backend, "command") == 0 && t->command == NULL)
        gyre_ys_err(c, n, "train.command", "missing: the command backend runs it");
    else if (strcmp(t->backend, "command") != 0 && (t->provider == NULL || t->base_model == NULL))
        gyre_ys_err(c, n, t->provider == NULL ? "train.provider" : "train.base_model",
                    "missing: the %s backend needs the provider that trains and the base model", t->backend);
}

static void parse_serve(gyre_ys_t *c, gyre_serve_conf_t *s, yaml_node_t *n)
{
    static const char *const adapters[] = {"none", "vllm", "llamacpp", NULL};
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "serve"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "provider") == 0)
            get_name(c, v, "serve.provider", &s->provider);
        else if (key != NULL && strcmp(key, "adapter") == 0) {
            int i = gyre_ys_choice(c, v, "serve.adapter", adapters);
            if (i >= 0)
                s->adapter = (gyre_adapter_kind_t)i;
        } else if (key != NULL && strcmp(key, "name") == 0)
            get_name(c, v, "serve.name", &s->name);
        else
            gyre_ys_unknown(c, k, "serve", "provider, adapter, name");
    }
}

static void parse_rule(gyre_ys_t *c, gyre_gate_rule_t *r, yaml_node_t *n)
{
    r->line = (int)n->start_mark.line + 1;
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "gate.rules[]"))
        return;
    int have_drop = 0, have_inc = 0;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "metric") == 0) {
            if (!gyre_ys_want(c, v, YAML_SCALAR_NODE, "gate.rules[].metric"))
                return;
            const char *m = gyre_ys_scalar(v);
            if (strcmp(m, "cost") == 0)
                r->kind = GYRE_GATE_COST;
            else if (strcmp(m, "latency_p95") == 0)
                r->kind = GYRE_GATE_LATENCY_P95;
            else if (strcmp(m, "error_rate") == 0)
                r->kind = GYRE_GATE_ERROR_RATE;
            else if (get_name(c, v, "gate.rules[].metric", &r->scorer))
                r->kind = GYRE_GATE_SCORER;
        } else if (key != NULL && strcmp(key, "max_drop") == 0)
            have_drop = gyre_ys_double(c, v, "gate.rules[].max_drop", 0, 1, 0, &r->max_drop);
        else if (key != NULL && strcmp(key, "max_increase") == 0)
            have_inc = gyre_ys_double(c, v, "gate.rules[].max_increase", 0, 1000, 0, &r->max_increase);
        else if (key != NULL && strcmp(key, "cluster_max_drop") == 0) {
            if (gyre_ys_double(c, v, "gate.rules[].cluster_max_drop", 0, 1, 0, &r->max_drop)) {
                r->kind = GYRE_GATE_CLUSTER;
                have_drop = 1;
            }
        } else
            gyre_ys_unknown(c, k, "gate.rules[]", "metric, max_drop, max_increase, cluster_max_drop");
    }
    if (c->failed)
        return;
    if (r->kind == 0)
        gyre_ys_err(c, n, "gate.rules[]", "needs `metric` (a scorer, cost, latency_p95, error_rate) or "
                                          "`cluster_max_drop`");
    else if ((r->kind == GYRE_GATE_SCORER || r->kind == GYRE_GATE_CLUSTER) && have_inc)
        gyre_ys_err(c, n, "gate.rules[].max_increase", "a scorer's rule takes max_drop (higher is better)");
    else if (r->kind != GYRE_GATE_SCORER && r->kind != GYRE_GATE_CLUSTER && have_drop)
        gyre_ys_err(c, n, "gate.rules[].max_drop", "cost, latency_p95 and error_rate take max_increase");
}

static void parse_gate(gyre_ys_t *c, gyre_gate_conf_t *g, yaml_node_t *n)
{
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "gate"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "scorers") == 0) {
            if (gyre_ys_list(c, v, "gate.scorers", &g->scorers, &g->nscorers) && g->nscorers > GYRE_LOOP_MAX_SCORERS)
                gyre_ys_err(c, v, "gate.scorers", "more than %d scorers", GYRE_LOOP_MAX_SCORERS);
        } else if (key != NULL && strcmp(key, "rules") == 0) {
            if (!gyre_ys_want(c, v, YAML_SEQUENCE_NODE, "gate.rules"))
                continue;
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (cnt > GYRE_LOOP_MAX_RULES) {
                gyre_ys_err(c, v, "gate.rules", "more than %d rules", GYRE_LOOP_MAX_RULES);
                continue;
            }
            g->rules = gyre_calloc(cnt ? cnt : 1, sizeof(*g->rules));
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
                parse_rule(c, &g->rules[g->nrules++], yaml_document_get_node(c->doc, *it));
        } else if (key != NULL && strcmp(key, "confidence") == 0)
            gyre_ys_double(c, v, "gate.confidence", 0.5, 1, 1, &g->confidence);
        else if (key != NULL && strcmp(key, "resamples") == 0)
            g->resamples = get_u(c, v, "gate.resamples", 100, 100000);
        else if (key != NULL && strcmp(key, "limit") == 0)
            g->limit = get_u(c, v, "gate.limit", 1, 100000);
        else if (key != NULL && strcmp(key, "concurrency") == 0)
            g->concurrency = get_u(c, v, "gate.concurrency", 1, 64);
        else if (key != NULL && strcmp(key, "seed") == 0)
            gyre_ys_uint(c, v, "gate.seed", 0, UINT64_MAX, &g->seed);
        else
            gyre_ys_unknown(c, k, "gate", "scorers, rules, confidence, resamples, limit, concurrency, seed");
    }
    /* A rule on a scorer needs that scorer run. */
    for (size_t i = 0; i < g->nrules && !c->failed; i++) {
        if (g->rules[i].kind != GYRE_GATE_SCORER)
            continue;
        size_t j = 0;
        while (j < g->nscorers && strcmp(g->scorers[j], g->rules[i].scorer) != 0)
            j++;
        if (j == g->nscorers)
            gyre_ys_err(c, n, "gate.rules[].metric", "'%s' is not one of gate.scorers", g->rules[i].scorer);
    }
}

static void parse_deploy(gyre_ys_t *c, gyre_deploy_conf_t *d, yaml_node_t *n)
{
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "deploy"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "ramp") == 0) {
            if (!gyre_ys_want(c, v, YAML_SEQUENCE_NODE, "deploy.ramp"))
                continue;
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (cnt == 0 || cnt > GYRE_LOOP_MAX_RAMP) {
                gyre_ys_err(c, v, "deploy.ramp", "expected 1 to %d steps", GYRE_LOOP_MAX_RAMP);
                continue;
            }
            d->nramp = 0;
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *s = yaml_document_get_node(c->doc, *it);
                unsigned p = get_u(c, s, "deploy.ramp", 1, 100);
                if (c->failed)
                    break;
                if (d->nramp > 0 && p <= d->ramp[d->nramp - 1]) {
                    gyre_ys_err(c, s, "deploy.ramp", "steps must increase (%u after %u)", p, d->ramp[d->nramp - 1]);
                    break;
                }
                d->ramp[d->nramp++] = p;
            }
            if (!c->failed && d->ramp[d->nramp - 1] != 100)
                gyre_ys_err(c, v, "deploy.ramp", "the last step must be 100");
        } else if (key != NULL && strcmp(key, "min_requests") == 0)
            d->min_requests = get_u(c, v, "deploy.min_requests", 1, 10000000);
        else if (key != NULL && strcmp(key, "step_time") == 0)
            get_duration_ms(c, v, "deploy.step_time", &d->step_time_ms);
        else if (key != NULL && strcmp(key, "metrics") == 0) {
            if (gyre_ys_list(c, v, "deploy.metrics", &d->metrics, &d->nmetrics) && d->nmetrics > GYRE_LOOP_MAX_SCORERS)
                gyre_ys_err(c, v, "deploy.metrics", "more than %d metrics", GYRE_LOOP_MAX_SCORERS);
        } else if (key != NULL && strcmp(key, "max_drop") == 0)
            gyre_ys_double(c, v, "deploy.max_drop", 0, 1, 0, &d->max_drop);
        else if (key != NULL && strcmp(key, "alpha") == 0)
            gyre_ys_double(c, v, "deploy.alpha", 0.0001, 0.5, 0, &d->alpha);
        else if (key != NULL && strcmp(key, "rollback_on_alert") == 0)
            gyre_ys_bool(c, v, "deploy.rollback_on_alert", &d->rollback_on_alert);
        else
            gyre_ys_unknown(c, k, "deploy", "ramp, min_requests, step_time, metrics, max_drop, alpha, rollback_on_alert");
    }
}

static void parse_small(gyre_ys_t *c, yaml_node_t *n, const char *section, const char *key_name, uint64_t *ms,
                        const char *key2, uint64_t *count)
{
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, section))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        char field[64];
        snprintf(field, sizeof(field), "%s.%s", section, key != NULL ? key : "?");
        if (key != NULL && strcmp(key, key_name) == 0)
            get_duration_ms(c, v, field, ms);
        else if (key != NULL && key2 != NULL && strcmp(key, key2) == 0)
            gyre_ys_uint(c, v, field, 1, UINT32_MAX, count);
        else
            gyre_ys_unknown(c, k, section, key2 != NULL ? "every, new_traces" : "window");
    }
}

/* `curate:` relative to the spec's folder. */
static char *resolve_path(const char *spec_path, const char *rel)
{
    if (rel[0] == '/' || spec_path == NULL)
        return gyre_strdup(rel);
    const char *slash = strrchr(spec_path, '/');
    if (slash == NULL)
        return gyre_strdup(rel);
    size_t dl = (size_t)(slash - spec_path);
    char *out = gyre_malloc(dl + 1 + strlen(rel) + 1);
    memcpy(out, spec_path, dl);
    out[dl] = '/';
    strcpy(out + dl + 1, rel);
    return out;
}

static void parse_root(gyre_ys_t *c, gyre_loop_spec_t *s, yaml_node_t *root)
{
    int have_train = 0;
    for (PAIRS(root)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key == NULL)
            gyre_ys_unknown(c, k, "(top level)", "");
        else if (strcmp(key, "name") == 0)
            get_name(c, v, "name", &s->name);
        else if (strcmp(key, "route") == 0)
            get_name(c, v, "route", &s->route);
        else if (strcmp(key, "curate") == 0) {
            char *rel = NULL;
            if (get_text(c, v, "curate", 4096, &rel)) {
                free(s->curate_path);
                s->curate_path = resolve_path(s->path, rel);
            }
            free(rel);
        } else if (strcmp(key, "dataset") == 0)
            get_name(c, v, "dataset", &s->dataset);
        else if (strcmp(key, "train") == 0) {
            have_train = 1;
            parse_train(c, &s->train, v);
        } else if (strcmp(key, "serve") == 0)
            parse_serve(c, &s->serve, v);
        else if (strcmp(key, "gate") == 0)
            parse_gate(c, &s->gate, v);
        else if (strcmp(key, "deploy") == 0)
            parse_deploy(c, &s->deploy, v);
        else if (strcmp(key, "watch") == 0)
            parse_small(c, v, "watch", "window", &s->watch_window_ms, NULL, NULL);
        else if (strcmp(key, "schedule") == 0)
            parse_small(c, v, "schedule", "every", &s->every_ms, "new_traces", &s->new_traces);
        else
            gyre_ys_unknown(c, k, "(top level)",
                            "name, route, curate, dataset, train, serve, gate, deploy, watch, schedule");
    }
    if (c->failed)
        return;
    if (s->route == NULL)
        gyre_ys_err(c, root, "route", "missing: the route whose model the loop improves");
    else if ((s->curate_path == NULL) == (s->dataset == NULL))
        gyre_ys_err(c, root, s->dataset != NULL ? "dataset" : "curate",
                    "give exactly one of `curate:` (a curation spec) and `dataset:` (a dataset's id)");
    else if (!have_train)
        gyre_ys_err(c, root, "train", "missing: how the candidate is trained");
}

static void set_defaults(gyre_loop_spec_t *s)
{
    if (s->name == NULL && s->route != NULL)
        s->name = gyre_strdup(s->route);
    gyre_train_conf_t *t = &s->train;
    if (t->method == NULL)
        t->method = gyre_strdup("sft");
    if (t->training_type == NULL)
        t->training_type = gyre_strdup("lora");
    if (t->timeout_ms == 0)
        t->timeout_ms = 24ull * 3600 * 1000;
    if (t->poll_ms == 0)
        t->poll_ms = 10000;
    if (s->serve.provider == NULL && t->provider != NULL)
        s->serve.provider = gyre_strdup(t->provider);
    gyre_gate_conf_t *g = &s->gate;
    if (g->confidence == 0)
        g->confidence = 0.95;
    if (g->resamples == 0)
        g->resamples = 2000;
    if (g->limit == 0)
        g->limit = 500;
    if (g->concurrency == 0)
        g->concurrency = 4;
    if (g->seed == 0)
        g->seed = 1;
    gyre_deploy_conf_t *d = &s->deploy;
    if (d->nramp == 0) {
        d->ramp[0] = 5;
        d->ramp[1] = 25;
        d->ramp[2] = 100;
        d->nramp = 3;
    }
    if (d->min_requests == 0)
        d->min_requests = 50;
    if (d->step_time_ms == 0)
        d->step_time_ms = 10 * 60 * 1000;
    if (d->max_drop == 0)
        d->max_drop = 0.02;
    if (d->alpha == 0)
        d->alpha = 0.05;
    if (s->watch_window_ms == 0)
        s->watch_window_ms = 3600 * 1000;
}

gyre_loop_spec_t *gyre_loop_spec_parse(const char *text, size_t len, const char *path, char *err, size_t errlen)
{
    const char *source = path != NULL ? path : "(loop spec)";
    if (len > GYRE_LOOP_SPEC_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %d bytes", source, GYRE_LOOP_SPEC_MAX_BYTES);
        return NULL;
    }
    gyre_loop_spec_t *s = gyre_calloc(1, sizeof(*s));
    s->deploy.rollback_on_alert = 1;
    s->path = path != NULL ? gyre_strdup(path) : NULL;
    s->text = gyre_malloc(len + 1);
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%d: invalid YAML: %s", source, (int)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        gyre_loop_spec_free(s);
        return NULL;
    }
    gyre_ys_t c = {source, &doc, 0, err, errlen, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        gyre_ys_err(&c, NULL, "(top level)", "the spec is empty: it needs at least `route`, `curate` or "
                                             "`dataset`, and `train`");
    else if (gyre_ys_want(&c, root, YAML_MAPPING_NODE, "(top level)"))
        parse_root(&c, s, root);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (c.failed) {
        gyre_loop_spec_free(s);
        return NULL;
    }
    set_defaults(s);
    return s;
}

gyre_loop_spec_t *gyre_loop_spec_load(const char *path, char *err, size_t errlen)
{
    gyre_buf_t b;
    if (gyre_ys_read_file(path, GYRE_LOOP_SPEC_MAX_BYTES, &b, err, errlen) != 0) {
        gyre_buf_dispose(&b);
        return NULL;
    }
    gyre_loop_spec_t *s = gyre_loop_spec_parse(b.base != NULL ? b.base : "", b.len, path, err, errlen);
    gyre_buf_dispose(&b);
    return s;
}

void gyre_loop_spec_free(gyre_loop_spec_t *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->route);
    free(s->curate_path);
    free(s->dataset);
    gyre_train_conf_t *t = &s->train;
    free(t->backend);
    free(t->provider);
    free(t->base_model);
    free(t->method);
    free(t->training_type);
    free(t->suffix);
    free(t->command);
    free(s->serve.provider);
    free(s->serve.name);
    gyre_ys_free_list(s->gate.scorers, s->gate.nscorers);
    for (size_t i = 0; i < s->gate.nrules; i++)
        free(s->gate.rules[i].scorer);
    free(s->gate.rules);
    gyre_ys_free_list(s->deploy.metrics, s->deploy.nmetrics);
    free(s->path);
    free(s->text);
    free(s);
}
