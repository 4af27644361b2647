/*
 * The curation spec's reader (spec.h says the format).  It reads YAML with
 * libyaml's document API, as src/config does, with the getters the loop's
 * specs share (loop/yamlspec.h; the config's are internal to config/): the first error found is returned as
 * "FILE:LINE: FIELD: message", and the spec is resolved into absolute times
 * and compiled predicates, then written back as its canonical JSON.
 */
#include "loop/spec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/time.h"
#include "config/redact_kinds.h"
#include "loop/yamlspec.h"

static int str_cmp_cb(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted and without repeats: the order a list was written in means nothing, so the canonical form drops it. */
static void sort_unique(char **v, size_t *n)
{
    if (*n == 0)
        return;
    qsort(v, *n, sizeof(*v), str_cmp_cb);
    size_t k = 1;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(v[i], v[k - 1]) == 0)
            free(v[i]);
        else
            v[k++] = v[i];
    }
    *n = k;
}

/* A time: RFC 3339 or unix milliseconds, or a duration before now. */
static int get_time(gyre_ys_t *c, const yaml_node_t *n, const char *field, int64_t *out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    int64_t d = gyre_ys_duration_us(gyre_ys_scalar(n));
    if (d >= 0) {
        *out = c->now_us - d;
        return 1;
    }
    if (gyre_time_parse(gyre_ys_scalar(n), out) != 0) {
        gyre_ys_err(c, n, field,
                 "expected a time (2026-12-01T00:00:00Z, unix milliseconds) or a duration before now "
                 "(90s, 15m, 24h, 7d, 2w), found '%s'",
                 gyre_ys_scalar(n));
        return 0;
    }
    return 1;
}

static gyre_predicate_t *get_predicate(gyre_ys_t *c, const yaml_node_t *n, const char *field, int one_name)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return NULL;
    char perr[256];
    gyre_predicate_t *p = gyre_predicate_parse(gyre_ys_scalar(n), perr, sizeof(perr));
    if (p == NULL) {
        gyre_ys_err(c, n, field, "%s", perr);
        return NULL;
    }
    if (one_name && !gyre_predicate_is_name(p)) {
        gyre_ys_err(c, n, field, "expected one score's name (judge.NAME, feedback.NAME, ...), found '%s'", gyre_ys_scalar(n));
        gyre_predicate_free(p);
        return NULL;
    }
    return p;
}

static void parse_source(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "source"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (c->failed)
            return;
        if (key != NULL && (strcmp(key, "since") == 0 || strcmp(key, "from") == 0)) {
            get_time(c, v, strcmp(key, "since") == 0 ? "source.since" : "source.from", &s->from_us);
        } else if (key != NULL && (strcmp(key, "until") == 0 || strcmp(key, "to") == 0)) {
            get_time(c, v, strcmp(key, "until") == 0 ? "source.until" : "source.to", &s->to_us);
        } else if (key != NULL && strcmp(key, "routes") == 0) {
            gyre_ys_list(c, v, "source.routes", &s->routes, &s->nroutes);
        } else if (key != NULL && strcmp(key, "agents") == 0) {
            gyre_ys_list(c, v, "source.agents", &s->agents, &s->nagents);
        } else if (key != NULL && strcmp(key, "tags") == 0) {
            gyre_ys_list(c, v, "source.tags", &s->tags, &s->ntags);
        } else if (key != NULL && strcmp(key, "metadata") == 0) {
            if (!gyre_ys_want(c, v, YAML_MAPPING_NODE, "source.metadata"))
                return;
            yaml_node_t *m = v;
            if (m->data.mapping.pairs.top - m->data.mapping.pairs.start > GYRE_YS_MAX_LIST) {
                gyre_ys_err(c, m, "source.metadata", "more than %d entries", GYRE_YS_MAX_LIST);
                return;
            }
            for (yaml_node_pair_t *mp = m->data.mapping.pairs.start; mp < m->data.mapping.pairs.top; mp++) {
                yaml_node_t *mk = yaml_document_get_node(c->doc, mp->key),
                            *mv = yaml_document_get_node(c->doc, mp->value);
                if (!gyre_ys_want(c, mk, YAML_SCALAR_NODE, "source.metadata") ||
                    !gyre_ys_want(c, mv, YAML_SCALAR_NODE, "source.metadata"))
                    return;
                s->metadata = gyre_realloc(s->metadata, sizeof(*s->metadata) * (s->nmetadata + 1));
                s->metadata[s->nmetadata++] = (gyre_curate_kv_t){gyre_strdup(gyre_ys_scalar(mk)), gyre_strdup(gyre_ys_scalar(mv))};
            }
        } else if (key != NULL && strcmp(key, "clusters") == 0) {
            char **ids = NULL;
            size_t nids = 0;
            if (gyre_ys_list(c, v, "source.clusters", &ids, &nids) && nids == 0)
                gyre_ys_err(c, v, "source.clusters", "an empty list would select nothing");
            if (!c->failed) {
                free(s->clusters);
                s->nclusters = 0;
                s->clusters = gyre_calloc(nids > 0 ? nids : 1, sizeof(*s->clusters));
                for (size_t i = 0; i < nids && !c->failed; i++) {
                    char *end;
                    errno = 0;
                    long id = strtol(ids[i], &end, 10);
                    if (!isdigit((unsigned char)ids[i][0]) || *end != '\0' || errno != 0 || id > INT32_MAX)
                        gyre_ys_err(c, v, "source.clusters", "expected cluster ids (whole numbers), found '%s'", ids[i]);
                    else
                        s->clusters[s->nclusters++] = (int32_t)id;
                }
            }
            for (size_t i = 0; i < nids; i++)
                free(ids[i]);
            free(ids);
        } else {
            gyre_ys_unknown(c, k, "source", "since, from, until, to, routes, agents, tags, metadata, clusters");
        }
    }
    if (!c->failed && s->from_us != 0 && s->to_us != 0 && s->from_us >= s->to_us)
        gyre_ys_err(c, n, "source", "the range is empty: since/from must come before until/to");
}

static void parse_clusters(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    if (n->type == YAML_SCALAR_NODE) {
        static const char *const modes[] = {"auto", "stored", NULL};
        int m = gyre_ys_choice(c, n, "clusters", modes);
        if (m >= 0)
            s->clustering = (gyre_curate_clusters_t)m;
        return;
    }
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "clusters"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        uint64_t kv;
        if (key != NULL && strcmp(key, "k") == 0) {
            if (gyre_ys_uint(c, v, "clusters.k", 1, 10000, &kv))
                s->k = (unsigned)kv;
        } else if (key != NULL && strcmp(key, "mode") == 0) {
            static const char *const modes[] = {"auto", "stored", NULL};
            int m = gyre_ys_choice(c, v, "clusters.mode", modes);
            if (m >= 0)
                s->clustering = (gyre_curate_clusters_t)m;
        } else {
            gyre_ys_unknown(c, k, "clusters", "mode, k");
        }
    }
    if (!c->failed && s->clustering == GYRE_CURATE_CLUSTERS_STORED && s->k != 0)
        gyre_ys_err(c, n, "clusters.k", "k is for clusters made in-process (mode: auto), not a stored run");
}

static void parse_dedup(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    if (n->type == YAML_SCALAR_NODE) {
        int b = gyre_ys_bool_of(gyre_ys_scalar(n));
        if (b < 0)
            gyre_ys_err(c, n, "dedup", "expected off, on or a mapping (threshold, on, keep), found '%s'", gyre_ys_scalar(n));
        else
            s->dedup = b;
        return;
    }
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "dedup"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "threshold") == 0) {
            /* Below 0.05 every text would join every other: not a dedup any more. */
            gyre_ys_double(c, v, "dedup.threshold", 0.05, 1, 0, &s->dedup_threshold);
        } else if (key != NULL && strcmp(key, "on") == 0) {
            static const char *const ons[] = {"task", "task+answer", NULL};
            int m = gyre_ys_choice(c, v, "dedup.on", ons);
            if (m >= 0)
                s->dedup_on = (gyre_curate_dedup_on_t)m;
        } else if (key != NULL && strcmp(key, "keep") == 0) {
            gyre_predicate_t *p = get_predicate(c, v, "dedup.keep", 1);
            if (p != NULL) {
                gyre_predicate_free(s->dedup_keep_ref);
                free(s->dedup_keep);
                s->dedup_keep_ref = p;
                gyre_buf_t b;
                gyre_buf_init(&b, 4096);
                gyre_predicate_canonical(p, &b);
                s->dedup_keep = gyre_strdup(b.base != NULL ? b.base : "");
                gyre_buf_dispose(&b);
            }
        } else {
            gyre_ys_unknown(c, k, "dedup", "threshold, on, keep");
        }
    }
}

static void parse_selection(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    if (n->type == YAML_SCALAR_NODE) {
        if (strcmp(gyre_ys_scalar(n), "all") != 0)
            gyre_ys_err(c, n, "selection", "expected all, {longest_n: N} or {judge: PREDICATE}, found '%s'", gyre_ys_scalar(n));
        s->selection = GYRE_CURATE_SELECT_ALL;
        return;
    }
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "selection"))
        return;
    if (n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1) {
        gyre_ys_err(c, n, "selection", "expected one of longest_n or judge");
        return;
    }
    yaml_node_pair_t *pair = n->data.mapping.pairs.start;
    yaml_node_t *k = KEY(c), *v = VALUE(c);
    const char *key = gyre_ys_scalar(k);
    if (key != NULL && strcmp(key, "longest_n") == 0) {
        if (gyre_ys_uint(c, v, "selection.longest_n", 1, UINT32_MAX, &s->longest_n))
            s->selection = GYRE_CURATE_SELECT_LONGEST_N;
    } else if (key != NULL && strcmp(key, "judge") == 0) {
        s->judge = get_predicate(c, v, "selection.judge", 0);
        if (s->judge != NULL)
            s->selection = GYRE_CURATE_SELECT_JUDGE;
    } else {
        gyre_ys_unknown(c, k, "selection", "longest_n, judge");
    }
}

static void parse_balance(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "balance"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "cap") == 0)
            gyre_ys_uint(c, v, "balance.cap", 1, UINT32_MAX, &s->cap);
        else if (key != NULL && strcmp(key, "floor") == 0)
            gyre_ys_uint(c, v, "balance.floor", 1, UINT32_MAX, &s->floor);
        else
            gyre_ys_unknown(c, k, "balance", "cap, floor");
    }
    if (!c->failed && s->cap != 0 && s->floor > s->cap)
        gyre_ys_err(c, n, "balance.floor", "the floor (%llu) is above the cap (%llu)", (unsigned long long)s->floor,
                 (unsigned long long)s->cap);
}

static void parse_preference(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    if (!gyre_ys_want(c, n, YAML_MAPPING_NODE, "preference"))
        return;
    for (PAIRS(n)) {
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key != NULL && strcmp(key, "score") == 0) {
            gyre_predicate_t *p = get_predicate(c, v, "preference.score", 1);
            if (p != NULL) {
                gyre_predicate_free(s->contrast_ref);
                free(s->contrast_score);
                s->contrast_ref = p;
                gyre_buf_t b;
                gyre_buf_init(&b, 4096);
                gyre_predicate_canonical(p, &b);
                s->contrast_score = gyre_strdup(b.base != NULL ? b.base : "");
                gyre_buf_dispose(&b);
            }
        } else if (key != NULL && strcmp(key, "margin") == 0) {
            gyre_ys_double(c, v, "preference.margin", 0, 1e12, 0, &s->contrast_margin);
        } else {
            gyre_ys_unknown(c, k, "preference", "score, margin");
        }
    }
    if (!c->failed && s->contrast_ref == NULL)
        gyre_ys_err(c, n, "preference.score", "required: the score whose contrast makes a pair");
}

static void parse_redaction(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    const char *v = gyre_ys_scalar(n);
    if (v != NULL && (strcmp(v, "all") == 0 || gyre_ys_bool_of(v) == 1)) {
        s->redaction = GYRE_REDACT_ALL;
        return;
    }
    if (v != NULL && (strcmp(v, "none") == 0 || gyre_ys_bool_of(v) == 0)) {
        s->redaction = 0;
        return;
    }
    char **kinds = NULL;
    size_t nkinds = 0;
    unsigned bits = 0;
    if (gyre_ys_list(c, n, "redaction", &kinds, &nkinds)) {
        for (size_t i = 0; i < nkinds && !c->failed; i++) {
            unsigned k = gyre_config_redact_kind(kinds[i]);
            if (k == 0)
                gyre_ys_err(c, n, "redaction", "unknown kind '%s' (known: email, phone, card, api_key; or all, none)",
                         kinds[i]);
            bits |= k;
        }
    }
    for (size_t i = 0; i < nkinds; i++)
        free(kinds[i]);
    free(kinds);
    s->redaction = bits;
}

static void parse_formats(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *n)
{
    char **names = NULL;
    size_t nnames = 0;
    unsigned bits = 0;
    if (gyre_ys_list(c, n, "formats", &names, &nnames)) {
        for (size_t i = 0; i < nnames && !c->failed; i++) {
            if (strcmp(names[i], "openai") == 0)
                bits |= GYRE_CURATE_FORMAT_OPENAI;
            else if (strcmp(names[i], "preference") == 0)
                bits |= GYRE_CURATE_FORMAT_PREFERENCE;
            else
                gyre_ys_err(c, n, "formats", "unknown format '%s' (known: openai, preference)", names[i]);
        }
        if (!c->failed && bits == 0)
            gyre_ys_err(c, n, "formats", "at least one format (openai, preference)");
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    s->formats = bits;
}

static void parse_root(gyre_ys_t *c, gyre_curate_spec_t *s, yaml_node_t *root)
{
    for (PAIRS(root)) {
        if (c->failed)
            return;
        yaml_node_t *k = KEY(c), *v = VALUE(c);
        const char *key = gyre_ys_scalar(k);
        if (key == NULL) {
            gyre_ys_unknown(c, k, "(top level)", "");
        } else if (strcmp(key, "source") == 0) {
            parse_source(c, s, v);
        } else if (strcmp(key, "clusters") == 0) {
            parse_clusters(c, s, v);
        } else if (strcmp(key, "unit") == 0) {
            static const char *const units[] = {"trace", "session", NULL};
            int u = gyre_ys_choice(c, v, "unit", units);
            if (u >= 0)
                s->unit = (gyre_curate_unit_t)u;
        } else if (strcmp(key, "filter") == 0) {
            gyre_predicate_free(s->filter);
            s->filter = get_predicate(c, v, "filter", 0);
        } else if (strcmp(key, "corrections") == 0) {
            if (v->type == YAML_MAPPING_NODE) {
                for (yaml_node_pair_t *cp = v->data.mapping.pairs.start; cp < v->data.mapping.pairs.top; cp++) {
                    yaml_node_t *ck = yaml_document_get_node(c->doc, cp->key);
                    if (gyre_ys_scalar(ck) != NULL && strcmp(gyre_ys_scalar(ck), "use") == 0)
                        gyre_ys_bool(c, yaml_document_get_node(c->doc, cp->value), "corrections.use", &s->use_corrections);
                    else
                        gyre_ys_unknown(c, ck, "corrections", "use");
                }
            } else {
                gyre_ys_bool(c, v, "corrections", &s->use_corrections);
            }
        } else if (strcmp(key, "dedup") == 0) {
            parse_dedup(c, s, v);
        } else if (strcmp(key, "selection") == 0) {
            parse_selection(c, s, v);
        } else if (strcmp(key, "balance") == 0) {
            parse_balance(c, s, v);
        } else if (strcmp(key, "target_size") == 0) {
            gyre_ys_uint(c, v, "target_size", 1, UINT32_MAX, &s->target_size);
        } else if (strcmp(key, "preference") == 0) {
            parse_preference(c, s, v);
        } else if (strcmp(key, "redaction") == 0) {
            parse_redaction(c, s, v);
        } else if (strcmp(key, "heldout") == 0) {
            yaml_node_t *f = v;
            if (v->type == YAML_MAPPING_NODE) {
                f = NULL;
                for (yaml_node_pair_t *hp = v->data.mapping.pairs.start; hp < v->data.mapping.pairs.top; hp++) {
                    yaml_node_t *hk = yaml_document_get_node(c->doc, hp->key);
                    if (gyre_ys_scalar(hk) != NULL && strcmp(gyre_ys_scalar(hk), "fraction") == 0)
                        f = yaml_document_get_node(c->doc, hp->value);
                    else
                        gyre_ys_unknown(c, hk, "heldout", "fraction");
                }
                if (f == NULL && !c->failed)
                    gyre_ys_err(c, v, "heldout.fraction", "required");
            }
            if (f != NULL)
                gyre_ys_double(c, f, v == f ? "heldout" : "heldout.fraction", 0, 1, 1, &s->heldout);
        } else if (strcmp(key, "seed") == 0) {
            gyre_ys_uint(c, v, "seed", 0, UINT64_MAX, &s->seed);
        } else if (strcmp(key, "formats") == 0) {
            parse_formats(c, s, v);
        } else {
            gyre_ys_unknown(c, k, "(top level)",
                        "source, clusters, unit, filter, corrections, dedup, selection, balance, target_size, "
                        "preference, redaction, heldout, seed, formats");
        }
    }
}

/* ---- The canonical text. ---- */

static void json_list(gyre_buf_t *b, const char *name, char **v, size_t n)
{
    gyre_buf_appendf(b, "\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            gyre_buf_append(b, ",", 1);
        gyre_buf_append_json_string(b, v[i], strlen(v[i]));
    }
    gyre_buf_append(b, "]", 1);
}

static void json_num(gyre_buf_t *b, double v)
{
    gyre_buf_appendf(b, "%.17g", v == 0 ? 0.0 : v);
}

static void json_predicate(gyre_buf_t *b, const gyre_predicate_t *p)
{
    if (p == NULL) {
        gyre_buf_appends(b, "null");
        return;
    }
    gyre_buf_t t;
    gyre_buf_init(&t, GYRE_PREDICATE_MAX_LEN * 4);
    gyre_predicate_canonical(p, &t);
    gyre_buf_append_json_string(b, t.base != NULL ? t.base : "", t.len);
    gyre_buf_dispose(&t);
}

static int kv_cmp_cb(const void *a, const void *b)
{
    const gyre_curate_kv_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->value, y->value);
}

static int i32_cmp_cb(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void canonicalise(gyre_curate_spec_t *s)
{
    sort_unique(s->routes, &s->nroutes);
    sort_unique(s->agents, &s->nagents);
    sort_unique(s->tags, &s->ntags);
    if (s->nmetadata > 0)
        qsort(s->metadata, s->nmetadata, sizeof(*s->metadata), kv_cmp_cb);
    if (s->nclusters > 0) {
        qsort(s->clusters, s->nclusters, sizeof(*s->clusters), i32_cmp_cb);
        size_t k = 1;
        for (size_t i = 1; i < s->nclusters; i++)
            if (s->clusters[i] != s->clusters[k - 1])
                s->clusters[k++] = s->clusters[i];
        s->nclusters = k;
    }

    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_CURATE_SPEC_MAX_BYTES * 8);
    gyre_buf_appends(&b, "{\"source\":{\"from_us\":");
    if (s->from_us != 0)
        gyre_buf_appendf(&b, "%lld", (long long)s->from_us);
    else
        gyre_buf_appends(&b, "null");
    gyre_buf_appends(&b, ",\"to_us\":");
    if (s->to_us != 0)
        gyre_buf_appendf(&b, "%lld", (long long)s->to_us);
    else
        gyre_buf_appends(&b, "null");
    gyre_buf_append(&b, ",", 1);
    json_list(&b, "routes", s->routes, s->nroutes);
    gyre_buf_append(&b, ",", 1);
    json_list(&b, "agents", s->agents, s->nagents);
    gyre_buf_append(&b, ",", 1);
    json_list(&b, "tags", s->tags, s->ntags);
    gyre_buf_appends(&b, ",\"metadata\":[");
    for (size_t i = 0; i < s->nmetadata; i++) {
        gyre_buf_appends(&b, i ? ",[" : "[");
        gyre_buf_append_json_string(&b, s->metadata[i].key, strlen(s->metadata[i].key));
        gyre_buf_append(&b, ",", 1);
        gyre_buf_append_json_string(&b, s->metadata[i].value, strlen(s->metadata[i].value));
        gyre_buf_append(&b, "]", 1);
    }
    gyre_buf_appends(&b, "],\"clusters\":");
    if (s->clusters == NULL) {
        gyre_buf_appends(&b, "null");
    } else {
        gyre_buf_append(&b, "[", 1);
        for (size_t i = 0; i < s->nclusters; i++)
            gyre_buf_appendf(&b, "%s%d", i ? "," : "", (int)s->clusters[i]);
        gyre_buf_append(&b, "]", 1);
    }
    gyre_buf_appendf(&b, "},\"clusters\":{\"mode\":\"%s\",\"k\":%u}",
                     s->clustering == GYRE_CURATE_CLUSTERS_STORED ? "stored" : "auto", s->k);
    gyre_buf_appendf(&b, ",\"unit\":\"%s\",\"filter\":", s->unit == GYRE_CURATE_UNIT_SESSION ? "session" : "trace");
    json_predicate(&b, s->filter);
    gyre_buf_appendf(&b, ",\"corrections\":%s,\"dedup\":", s->use_corrections ? "true" : "false");
    if (!s->dedup) {
        gyre_buf_appends(&b, "null");
    } else {
        gyre_buf_appends(&b, "{\"threshold\":");
        json_num(&b, s->dedup_threshold);
        gyre_buf_appendf(
            &b, ",\"on\":\"%s\",\"keep\":", s->dedup_on == GYRE_CURATE_DEDUP_TASK_ANSWER ? "task+answer" : "task");
        json_predicate(&b, s->dedup_keep_ref);
        gyre_buf_append(&b, "}", 1);
    }
    gyre_buf_appends(&b, ",\"selection\":");
    switch (s->selection) {
    case GYRE_CURATE_SELECT_ALL: gyre_buf_appends(&b, "\"all\""); break;
    case GYRE_CURATE_SELECT_LONGEST_N:
        gyre_buf_appendf(&b, "{\"longest_n\":%llu}", (unsigned long long)s->longest_n);
        break;
    case GYRE_CURATE_SELECT_JUDGE:
        gyre_buf_appends(&b, "{\"judge\":");
        json_predicate(&b, s->judge);
        gyre_buf_append(&b, "}", 1);
        break;
    }
    gyre_buf_appendf(&b, ",\"balance\":{\"cap\":%llu,\"floor\":%llu},\"target_size\":%llu,\"preference\":",
                     (unsigned long long)s->cap, (unsigned long long)s->floor, (unsigned long long)s->target_size);
    if (s->contrast_ref == NULL) {
        gyre_buf_appends(&b, "null");
    } else {
        gyre_buf_appends(&b, "{\"score\":");
        json_predicate(&b, s->contrast_ref);
        gyre_buf_appends(&b, ",\"margin\":");
        json_num(&b, s->contrast_margin);
        gyre_buf_append(&b, "}", 1);
    }
    gyre_buf_appends(&b, ",\"redaction\":[");
    static const char *const kinds[] = {"email", "phone", "card", "api_key"};
    int first = 1;
    for (unsigned i = 0; i < 4; i++)
        if (s->redaction & gyre_config_redact_kind(kinds[i])) {
            gyre_buf_appendf(&b, "%s\"%s\"", first ? "" : ",", kinds[i]);
            first = 0;
        }
    gyre_buf_appends(&b, "],\"heldout\":");
    json_num(&b, s->heldout);
    gyre_buf_appendf(&b, ",\"seed\":%llu,\"formats\":[", (unsigned long long)s->seed);
    first = 1;
    if (s->formats & GYRE_CURATE_FORMAT_OPENAI) {
        gyre_buf_appends(&b, "\"openai\"");
        first = 0;
    }
    if (s->formats & GYRE_CURATE_FORMAT_PREFERENCE)
        gyre_buf_appends(&b, first ? "\"preference\"" : ",\"preference\"");
    gyre_buf_appends(&b, "]}");
    s->canonical = gyre_strdup(b.base);
    s->canonical_len = b.len;
    gyre_buf_dispose(&b);
}

gyre_curate_spec_t *gyre_curate_spec_parse(const char *yaml, size_t len, const char *source, int64_t now_us, char *err,
                                           size_t errlen)
{
    if (len > GYRE_CURATE_SPEC_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %d bytes", source, GYRE_CURATE_SPEC_MAX_BYTES);
        return NULL;
    }
    gyre_curate_spec_t *s = gyre_calloc(1, sizeof(*s));
    s->dedup = 1;
    s->dedup_threshold = 0.8;
    s->contrast_margin = 0.2;
    s->redaction = GYRE_REDACT_ALL;
    s->seed = 1;
    s->formats = GYRE_CURATE_FORMAT_OPENAI;

    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%d: invalid YAML: %s%s%s", source, (int)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        gyre_curate_spec_free(s);
        return NULL;
    }
    gyre_ys_t c = {source, &doc, now_us, err, errlen, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    /* An empty file is the spec of every default (every stored trace, deduplicated, as OpenAI JSONL). */
    if (root != NULL && !(root->type == YAML_SCALAR_NODE && gyre_ys_scalar(root)[0] == '\0') &&
        gyre_ys_want(&c, root, YAML_MAPPING_NODE, "(top level)"))
        parse_root(&c, s, root);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (c.failed) {
        gyre_curate_spec_free(s);
        return NULL;
    }
    canonicalise(s);
    return s;
}

gyre_curate_spec_t *gyre_curate_spec_load(const char *path, int64_t now_us, char *err, size_t errlen)
{
    gyre_buf_t b;
    if (gyre_ys_read_file(path, GYRE_CURATE_SPEC_MAX_BYTES, &b, err, errlen) != 0) {
        gyre_buf_dispose(&b);
        return NULL;
    }
    gyre_curate_spec_t *s = gyre_curate_spec_parse(b.base != NULL ? b.base : "", b.len, path, now_us, err, errlen);
    gyre_buf_dispose(&b);
    return s;
}

void gyre_curate_spec_free(gyre_curate_spec_t *s)
{
    if (s == NULL)
        return;
    gyre_ys_free_list(s->routes, s->nroutes);
    gyre_ys_free_list(s->agents, s->nagents);
    gyre_ys_free_list(s->tags, s->ntags);
    for (size_t i = 0; i < s->nmetadata; i++) {
        free(s->metadata[i].key);
        free(s->metadata[i].value);
    }
    free(s->metadata);
    free(s->clusters);
    gyre_predicate_free(s->filter);
    free(s->dedup_keep);
    gyre_predicate_free(s->dedup_keep_ref);
    gyre_predicate_free(s->judge);
    free(s->contrast_score);
    gyre_predicate_free(s->contrast_ref);
    free(s->canonical);
    free(s);
}
