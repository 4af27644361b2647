/* The price table: parsing, the built-in copy, lookups and cost (see prices.h). */
#include "config/prices.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"

/*
 * data/prices.json, embedded by the assembler (the compiler runs from the
 * repository root), with a NUL after it.  The Makefile makes this object
 * depend on the JSON file, which the compiler's own dependency list cannot
 * know about.
 */
__asm__(".section .rodata\n"
        ".global gyre_prices_json\n"
        "gyre_prices_json:\n"
        ".incbin \"data/prices.json\"\n"
        ".global gyre_prices_json_end\n"
        "gyre_prices_json_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char gyre_prices_json[];
extern const char gyre_prices_json_end[];

typedef struct price_entry {
    char *name;
    size_t len;
    gyre_price_t price;
} price_entry_t;

struct gyre_prices {
    char *version;
    price_entry_t *entries; /* sorted by name (bytes, then length) for binary search */
    size_t n;
};

static int compare_names(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int compare_entries(const void *a, const void *b)
{
    const price_entry_t *x = a, *y = b;
    return compare_names(x->name, x->len, y->name, y->len);
}

/* A price member: a finite number >= 0.  Returns 0 and sets *out, or -1 with `err` set. */
static int read_price(const cJSON *v, const char *model, const char *field, double *out, char *err, size_t errlen)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
        gyre_errf(err, errlen, "models.%s.%s: must be a number >= 0 (USD per 1M tokens)", model, field);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int read_model(const cJSON *m, price_entry_t *e, char *err, size_t errlen)
{
    const char *name = m->string;
    if (!cJSON_IsObject(m)) {
        gyre_errf(err, errlen, "models.%s: must be an object with \"input\" and \"output\"", name);
        return -1;
    }
    e->price = (gyre_price_t){-1, -1, -1, -1};
    int have_input = 0, have_output = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, m)
    {
        double *slot;
        if (strcmp(f->string, "input") == 0) {
            slot = &e->price.input;
            have_input = 1;
        } else if (strcmp(f->string, "output") == 0) {
            slot = &e->price.output;
            have_output = 1;
        } else if (strcmp(f->string, "cached_input") == 0) {
            slot = &e->price.cached_input;
        } else if (strcmp(f->string, "cache_write") == 0) {
            slot = &e->price.cache_write;
        } else {
            gyre_errf(err, errlen, "models.%s: unknown field \"%s\" (known: input, output, cached_input, cache_write)",
                    name, f->string);
            return -1;
        }
        if (read_price(f, name, f->string, slot, err, errlen) != 0)
            return -1;
    }
    if (!have_input || !have_output) {
        gyre_errf(err, errlen, "models.%s.%s: missing", name, have_input ? "output" : "input");
        return -1;
    }
    return 0;
}

gyre_prices_t *gyre_prices_parse(const char *json, size_t len, char *err, size_t errlen)
{
    gyre_prices_t *p = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        size_t off = end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        unsigned line, col;
        gyre_json_position(json, len, off, &line, &col);
        gyre_errf(err, errlen, "not valid JSON: parsing stopped at line %u, column %u", line, col);
        return NULL;
    }
    size_t off = (size_t)(end - json);
    while (off < len && (json[off] == ' ' || json[off] == '\n' || json[off] == '\r' || json[off] == '\t'))
        off++;
    if (off < len && json[off] != '\0') {
        unsigned line, col;
        gyre_json_position(json, len, off, &line, &col);
        gyre_errf(err, errlen, "not valid JSON: unexpected data after the table at line %u, column %u", line, col);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        gyre_errf(err, errlen, "the price table must be a JSON object with \"models\"");
        goto out;
    }
    const cJSON *version = NULL, *models = NULL, *f;
    cJSON_ArrayForEach(f, root)
    {
        if (strcmp(f->string, "version") == 0 || strcmp(f->string, "source") == 0) {
            if (!cJSON_IsString(f)) {
                gyre_errf(err, errlen, "%s: must be a string", f->string);
                goto out;
            }
            if (f->string[0] == 'v')
                version = f;
        } else if (strcmp(f->string, "models") == 0) {
            models = f;
        } else {
            gyre_errf(err, errlen, "unknown field \"%s\" (known: version, source, models)", f->string);
            goto out;
        }
    }
    if (!cJSON_IsObject(models)) {
        gyre_errf(err, errlen, "models: %s", models == NULL ? "missing" : "must be an object of model names");
        goto out;
    }
    p = gyre_calloc(1, sizeof(*p));
    p->version = gyre_strdup(version != NULL ? version->valuestring : "");
    size_t n = (size_t)cJSON_GetArraySize(models);
    p->entries = gyre_calloc(n > 0 ? n : 1, sizeof(*p->entries));
    const cJSON *m;
    cJSON_ArrayForEach(m, models)
    {
        if (m->string[0] == '\0') {
            gyre_errf(err, errlen, "models: a model name is empty");
            goto fail;
        }
        price_entry_t *e = &p->entries[p->n];
        if (read_model(m, e, err, errlen) != 0)
            goto fail;
        e->len = strlen(m->string);
        e->name = gyre_strndup(m->string, e->len);
        p->n++;
    }
    qsort(p->entries, p->n, sizeof(*p->entries), compare_entries);
    for (size_t i = 1; i < p->n; i++)
        if (compare_entries(&p->entries[i - 1], &p->entries[i]) == 0) {
            gyre_errf(err, errlen, "models.%s: listed twice", p->entries[i].name);
            goto fail;
        }
    goto out;
fail:
    gyre_prices_free(p);
    p = NULL;
out:
    cJSON_Delete(root);
    return p;
}

gyre_prices_t *gyre_prices_builtin(void)
{
    size_t len = (size_t)((uintptr_t)gyre_prices_json_end - (uintptr_t)gyre_prices_json);
    char err[256];
    gyre_prices_t *p = gyre_prices_parse(gyre_prices_json, len, err, sizeof(err));
    if (p == NULL) {
        gyre_logf("gyre: the built-in data/prices.json is broken: %s\n", err);
        abort();
    }
    return p;
}

gyre_prices_t *gyre_prices_create(const char *const *models, const gyre_price_t *prices, size_t n)
{
    gyre_prices_t *p = gyre_calloc(1, sizeof(*p));
    p->version = gyre_strdup("");
    p->entries = gyre_calloc(n > 0 ? n : 1, sizeof(*p->entries));
    for (size_t i = 0; i < n; i++) {
        p->entries[i].len = strlen(models[i]);
        p->entries[i].name = gyre_strndup(models[i], p->entries[i].len);
        p->entries[i].price = prices[i];
    }
    p->n = n;
    qsort(p->entries, p->n, sizeof(*p->entries), compare_entries);
    return p;
}

void gyre_prices_free(gyre_prices_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->entries[i].name);
    free(p->entries);
    free(p->version);
    free(p);
}

const char *gyre_prices_version(const gyre_prices_t *p)
{
    return p->version;
}

size_t gyre_prices_count(const gyre_prices_t *p)
{
    return p->n;
}

static const gyre_price_t *find_exact(const gyre_prices_t *p, const char *s, size_t n)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_names(s, n, p->entries[mid].name, p->entries[mid].len);
        if (c == 0)
            return &p->entries[mid].price;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Exact, else the longest key that `s` continues with '-', '@' or ':'. */
static const gyre_price_t *find_prefixed(const gyre_prices_t *p, const char *s, size_t n)
{
    const gyre_price_t *r = find_exact(p, s, n);
    for (size_t k = n; r == NULL && k-- > 1;)
        if (s[k] == '-' || s[k] == '@' || s[k] == ':')
            r = find_exact(p, s, k);
    return r;
}

/*
 * The length of a Bedrock cross-region prefix ("us", "eu", "apac", "global",
 * "us-gov") before the first '.', or 0: a short run of lowercase letters and
 * '-' followed by a "vendor.model" rest.  "gpt-4.1" has a digit before its
 * dot, so it is never mistaken for one.
 */
static size_t region_len(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && k <= 8 && ((s[k] >= 'a' && s[k] <= 'z') || s[k] == '-'))
        k++;
    if (k == 0 || k > 8 || k >= n || s[k] != '.' || memchr(s + k + 1, '.', n - k - 1) == NULL)
        return 0;
    return k;
}

static const gyre_price_t *find_regional(const gyre_prices_t *p, const char *s, size_t n)
{
    const gyre_price_t *r = find_prefixed(p, s, n);
    size_t k;
    if (r == NULL && (k = region_len(s, n)) > 0)
        r = find_prefixed(p, s + k + 1, n - k - 1);
    return r;
}

const gyre_price_t *gyre_prices_find(const gyre_prices_t *p, const char *model, size_t len)
{
    if (p == NULL || model == NULL || len == 0)
        return NULL;
    const gyre_price_t *r = find_regional(p, model, len);
    const char *slash = memchr(model, '/', len);
    if (r == NULL && slash != NULL && slash + 1 < model + len)
        r = find_regional(p, slash + 1, len - (size_t)(slash + 1 - model));
    return r;
}

/* The length of the name a found price is listed under (every price lives in an entry). */
static size_t key_len(const gyre_price_t *pr)
{
    return ((const price_entry_t *)(const void *)((const char *)pr - offsetof(price_entry_t, price)))->len;
}

const gyre_price_t *gyre_prices_lookup(const gyre_prices_t *provider, const gyre_prices_t *table, const char *model,
                                       size_t len)
{
    const gyre_price_t *o = gyre_prices_find(provider, model, len), *t = gyre_prices_find(table, model, len);
    if (o == NULL || t == NULL)
        return o != NULL ? o : t;
    /* Both know it: the more specific name wins, the provider's on a tie, so that an override of "gpt-4o"
     * does not price "gpt-4o-mini", which the table lists by its own name. */
    return key_len(t) > key_len(o) ? t : o;
}

double gyre_prices_cost(const gyre_price_t *pr, long long prompt_tokens, long long cached_tokens,
                        long long completion_tokens)
{
    if (pr == NULL)
        return -1;
    if (prompt_tokens < 0)
        prompt_tokens = 0;
    if (completion_tokens < 0)
        completion_tokens = 0;
    if (cached_tokens < 0)
        cached_tokens = 0;
    if (cached_tokens > prompt_tokens)
        cached_tokens = prompt_tokens;
    double cached_price = pr->cached_input >= 0 ? pr->cached_input : pr->input;
    /* One division at the end: with prices that are exact in binary the
     * result is the correctly rounded decimal. */
    return ((double)(prompt_tokens - cached_tokens) * pr->input + (double)cached_tokens * cached_price +
            (double)completion_tokens * pr->output) /
           1e6;
}
