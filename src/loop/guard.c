/*
 * In-line guardrails (guard.h): the routes' checks compiled per worker, run in order, counted per worker, and
 * marked on the trace.  Nothing here allocates on the request path but the trace's marks (in the request's pool)
 * and what a check itself parses (heuristic.h).
 */
#include "loop/guard.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "trace/record.h"

/* The counters of one guardrail, on one worker. */
enum { C_PASS = 0, C_FAIL, C_DENY, C_RETRY, C_FLAG, C_COUNT };

struct gyre_guard {
    const gyre_config_t *config; /* the generation's (it outlives the guard) */
    unsigned nworkers;
    size_t nscorers;
    gyre_heuristic_t **checks; /* [worker * nscorers + scorer]; NULL for a scorer no guardrail runs */
    size_t *slot_base;         /* per route: its first guardrail's slot */
    unsigned *has;             /* per route, [ri * 2 + on_request]: GYRE_GUARD_ANY | GYRE_GUARD_NEEDS_* */
    size_t nslots;
    uint64_t *counts; /* [(worker * nslots + slot) * C_COUNT + counter] */
};

gyre_guard_t *gyre_guard_create(const gyre_config_t *c, unsigned nworkers, char *err, size_t errlen)
{
    gyre_guard_t *g = gyre_calloc(1, sizeof(*g));
    g->config = c;
    g->nworkers = nworkers ? nworkers : 1;
    g->nscorers = c->nscorers;
    g->slot_base = gyre_calloc(c->nroutes + 1, sizeof(*g->slot_base));
    g->has = gyre_calloc(c->nroutes * 2 + 1, sizeof(*g->has));
    int *used = gyre_calloc(c->nscorers + 1, sizeof(*used));
    for (size_t ri = 0; ri < c->nroutes; ri++) {
        const gyre_route_conf_t *r = &c->routes[ri];
        g->slot_base[ri] = g->nslots;
        g->nslots += r->nguardrails;
        for (size_t i = 0; i < r->nguardrails; i++) {
            const gyre_guardrail_conf_t *gr = &r->guardrails[i];
            used[gr->scorer] = 1;
            unsigned *h = &g->has[ri * 2 + (gr->on_request ? 1 : 0)];
            *h |= GYRE_GUARD_ANY;
            if (c->scorers[gr->scorer].kind == GYRE_SCORER_TOOL_ARGS)
                *h |= GYRE_GUARD_NEEDS_TOOLS;
        }
    }
    g->checks = gyre_calloc((size_t)g->nworkers * (c->nscorers ? c->nscorers : 1), sizeof(*g->checks));
    for (unsigned w = 0; w < g->nworkers; w++)
        for (size_t s = 0; s < c->nscorers; s++) {
            if (!used[s])
                continue;
            char why[256];
            gyre_heuristic_t *h = gyre_heuristic_compile(&c->scorers[s], why, sizeof(why));
            if (h == NULL) {
                snprintf(err, errlen, "scorer '%s': %s", c->scorers[s].name, why);
                free(used);
                gyre_guard_destroy(g);
                return NULL;
            }
            g->checks[w * c->nscorers + s] = h;
        }
    free(used);
    g->counts = gyre_calloc((size_t)g->nworkers * (g->nslots ? g->nslots : 1) * C_COUNT, sizeof(*g->counts));
    return g;
}

void gyre_guard_destroy(gyre_guard_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; g->checks != NULL && i < (size_t)g->nworkers * g->nscorers; i++)
        gyre_heuristic_free(g->checks[i]);
    free(g->checks);
    free(g->slot_base);
    free(g->has);
    free(g->counts);
    free(g);
}

/* The route's index in the guard's config, or -1 (NULL, or a route of another generation). */
static long route_index(const gyre_guard_t *g, const gyre_route_conf_t *r)
{
    if (g == NULL || r == NULL || g->config->nroutes == 0 || r < g->config->routes ||
        r >= g->config->routes + g->config->nroutes)
        return -1;
    return (long)(r - g->config->routes);
}

unsigned gyre_guard_has(const gyre_guard_t *g, const gyre_route_conf_t *r, int on_request)
{
    long ri = route_index(g, r);
    return ri < 0 ? 0 : g->has[ri * 2 + (on_request ? 1 : 0)];
}

/* One writer per counter (its worker): a relaxed load and store, no lock prefix. */
static void bump(uint64_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void mark(gyre_trace_t *t, h2o_mem_pool_t *pool, const char *name, const char *action, const char *reason)
{
    if (t == NULL || pool == NULL)
        return;
    char tag[160];
    int n = snprintf(tag, sizeof(tag), "guardrail:%s:%s", name, action);
    if (t->ntags < GYRE_TRACE_MAX_TAGS && n > 0 && (size_t)n < sizeof(tag))
        t->tags[t->ntags++] = gyre_tstr_dup(pool, tag, (size_t)n);
    char key[160];
    n = snprintf(key, sizeof(key), "guardrail.%s", name);
    if (t->nmeta < GYRE_TRACE_MAX_META && n > 0 && (size_t)n < sizeof(key)) {
        t->meta[t->nmeta].key = gyre_tstr_dup(pool, key, (size_t)n);
        t->meta[t->nmeta].value = gyre_tstr_dup(pool, reason, strlen(reason));
        t->nmeta++;
    }
}

void gyre_guard_run(gyre_guard_t *g, unsigned worker, const gyre_route_conf_t *r, int on_request, int stream,
                    const gyre_check_input_t *in, gyre_trace_t *t, h2o_mem_pool_t *pool, gyre_guard_outcome_t *out)
{
    static const char *const action_names[] = {"", "deny", "retry", "flag"};
    out->action = 0;
    out->check = NULL;
    out->reason[0] = '\0';
    long ri = route_index(g, r);
    if (ri < 0)
        return;
    if (worker >= g->nworkers)
        worker = 0; /* never: a worker's number is below the count it was made for */
    for (size_t i = 0; i < r->nguardrails; i++) {
        const gyre_guardrail_conf_t *gr = &r->guardrails[i];
        if ((gr->on_request != 0) != (on_request != 0))
            continue;
        const gyre_heuristic_t *h = g->checks[worker * g->nscorers + gr->scorer];
        uint64_t *cnt = &g->counts[((size_t)worker * g->nslots + g->slot_base[ri] + i) * C_COUNT];
        gyre_check_result_t res;
        gyre_heuristic_run(h, in, &res);
        if (res.pass) {
            bump(&cnt[C_PASS]);
            continue;
        }
        bump(&cnt[C_FAIL]);
        gyre_guard_action_t act = stream ? GYRE_GUARD_FLAG : gr->action;
        bump(&cnt[act == GYRE_GUARD_DENY ? C_DENY : act == GYRE_GUARD_RETRY ? C_RETRY : C_FLAG]);
        const char *name = g->config->scorers[gr->scorer].name;
        mark(t, pool, name, action_names[act], res.reason);
        if (act == GYRE_GUARD_FLAG)
            continue;
        out->action = act;
        out->check = name;
        memcpy(out->reason, res.reason, sizeof(out->reason));
        return;
    }
}

void gyre_guard_render(const gyre_guard_t *g, gyre_buf_t *out)
{
    if (g == NULL || g->nslots == 0)
        return;
    static const char *const results[] = {"pass", "fail"};
    static const char *const actions[] = {"deny", "retry", "flag"};
    for (int family = 0; family < 2; family++) {
        if (family == 0)
            gyre_buf_appends(out, "# HELP gyre_guardrail_checks_total In-line guardrail checks run, by result.\n"
                                  "# TYPE gyre_guardrail_checks_total counter\n");
        else
            gyre_buf_appends(out, "# HELP gyre_guardrail_actions_total Actions taken on failed guardrail checks.\n"
                                  "# TYPE gyre_guardrail_actions_total counter\n");
        for (size_t ri = 0; ri < g->config->nroutes; ri++) {
            const gyre_route_conf_t *r = &g->config->routes[ri];
            for (size_t i = 0; i < r->nguardrails; i++) {
                const gyre_guardrail_conf_t *gr = &r->guardrails[i];
                size_t slot = g->slot_base[ri] + i;
                int first = family == 0 ? C_PASS : C_DENY, n = family == 0 ? 2 : 3;
                for (int k = 0; k < n; k++) {
                    uint64_t sum = 0;
                    for (unsigned w = 0; w < g->nworkers; w++)
                        sum += __atomic_load_n(&g->counts[((size_t)w * g->nslots + slot) * C_COUNT + first + k],
                                               __ATOMIC_RELAXED);
                    gyre_buf_appendf(out, "%s{route=\"%s\",check=\"%s\",on=\"%s\",%s=\"%s\"} %llu\n",
                                     family == 0 ? "gyre_guardrail_checks_total" : "gyre_guardrail_actions_total",
                                     r->name, g->config->scorers[gr->scorer].name,
                                     gr->on_request ? "request" : "response", family == 0 ? "result" : "action",
                                     family == 0 ? results[k] : actions[k], (unsigned long long)sum);
                }
            }
        }
    }
}

/* ---- The answer's text, read straight out of a chat.completion ---- */

/* A scanner over bytes that may be anything (a provider's answer passed through): every step is bounded by n. */
static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is '"': the index after the closing quote, or SIZE_MAX. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        const char *q = memchr(s + i, '"', n - i);
        if (q == NULL)
            return SIZE_MAX;
        size_t at = (size_t)(q - s), bs = 0;
        while (at - bs > i - 1 && s[at - bs - 1] == '\\')
            bs++;
        i = at;
        if (bs % 2 == 0)
            return at + 1;
    }
    return SIZE_MAX;
}

/* The index after the value at i, or SIZE_MAX: strings skipped whole, brackets counted (up to 1024 deep). */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    unsigned depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            if ((i = skip_string(s, n, i)) == SIZE_MAX)
                return SIZE_MAX;
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            if (++depth > 1024)
                return SIZE_MAX;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* a scalar ended by its container */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            return i; /* a scalar's end */
        }
        i++;
    }
    return depth == 0 ? i : SIZE_MAX;
}

/* The value of member `key` of the object at i (s[i] must be '{'), or SIZE_MAX. */
static size_t find_member(const char *s, size_t n, size_t i, const char *key)
{
    size_t klen = strlen(key);
    if (i >= n || s[i] != '{')
        return SIZE_MAX;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t end = skip_string(s, n, i);
        if (end == SIZE_MAX)
            return SIZE_MAX;
        int match = end - i - 2 == klen && memcmp(s + i + 1, key, klen) == 0;
        i = skip_ws(s, n, end);
        if (i >= n || s[i] != ':')
            return SIZE_MAX;
        i = skip_ws(s, n, i + 1);
        if (match)
            return i;
        if ((i = skip_value(s, n, i)) == SIZE_MAX)
            return SIZE_MAX;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
        else
            return SIZE_MAX;
    }
    return SIZE_MAX;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The JSON string s[a..b) (quotes excluded), decoded into the pool; a bad escape or a lone surrogate is U+FFFD. */
static const char *unescape(const char *s, size_t a, size_t b, h2o_mem_pool_t *pool, size_t *len)
{
    /* An escape of 2 bytes may write 3 (U+FFFD for a bad one): twice the input holds any output. */
    char *out = h2o_mem_alloc_pool(pool, (b - a) * 2 + 1), *o = out;
    for (size_t i = a; i < b;) {
        const char *bs = memchr(s + i, '\\', b - i);
        size_t run = bs != NULL ? (size_t)(bs - s) - i : b - i;
        memcpy(o, s + i, run);
        o += run;
        i += run;
        if (i >= b)
            break;
        if (i + 1 >= b)
            break; /* a trailing backslash: cannot happen in a string skip_string ended */
        char e = s[i + 1];
        i += 2;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *f = memchr(from, e, sizeof(from) - 1);
        if (f != NULL) {
            *o++ = to[f - from];
            continue;
        }
        unsigned cp = 0xFFFD, lo;
        if (e == 'u' && i + 4 <= b && hex4(s + i, &cp) == 0) {
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= b && s[i] == '\\' && s[i + 1] == 'u' && hex4(s + i + 2, &lo) == 0 &&
                lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD;
            }
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (cp >> 18));
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

int gyre_guard_answer_text(const char *json, size_t len, h2o_mem_pool_t *pool, const char **text, size_t *tlen)
{
    size_t i = skip_ws(json, len, 0);
    size_t v = find_member(json, len, i, "choices");
    if (v == SIZE_MAX || v >= len || json[v] != '[')
        return -1;
    size_t first = skip_ws(json, len, v + 1);
    size_t msg = find_member(json, len, first, "message");
    size_t c = msg != SIZE_MAX ? find_member(json, len, msg, "content") : SIZE_MAX;
    /* A member whose value is cut off ("content": and the end) is no answer (fuzz_heuristic's CI run read past it). */
    if (c == SIZE_MAX || c >= len)
        return -1;
    if (json[c] != '"') {
        *text = ""; /* null (a tool call), or not a string: no text */
        *tlen = 0;
        return 0;
    }
    size_t end = skip_string(json, len, c);
    if (end == SIZE_MAX)
        return -1;
    if (memchr(json + c + 1, '\\', end - 1 - (c + 1)) == NULL) {
        *text = json + c + 1; /* nothing escaped: the bytes as they are, no copy */
        *tlen = end - 1 - (c + 1);
        return 0;
    }
    *text = unescape(json, c + 1, end - 1, pool, tlen);
    return 0;
}
