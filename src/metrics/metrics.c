/* Prometheus metrics: per-worker series tables and the text exposition (see metrics.h). */
#include "metrics/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define NLABELS 4
#define NBUCKETS 14
#define NTOKENS 4

_Static_assert(GYRE_METRICS_LABEL_MAX <= 255, "a label's length is kept in a byte");

/* Duration buckets, 5 ms to 2 min: LLM calls are long, and a stream's time to first token is not. */
static const int64_t bucket_us[NBUCKETS] = {5000,    10000,   25000,   50000,    100000,   250000,   500000,
                                            1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 120000000};
static const char *const bucket_le[NBUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                                "1",     "2.5",  "5",     "10",   "30",  "60",   "120"};
static const char *const token_types[NTOKENS] = {"prompt", "completion", "cached", "reasoning"};

/* What a series counts.  Every table uses the same series type; each family reads the values it names. */
enum {
    V_REQUESTS,
    V_CACHE_HITS,
    V_TOKENS,                    /* NTOKENS values, in token_types' order */
    V_COST = V_TOKENS + NTOKENS, /* a double's bits: USD of the calls whose cost was known */
    V_COSTED,                    /* how many calls had a known cost */
    V_ATTEMPTS,
    V_RETRIES,      /* attempts followed by another try of the same target */
    V_FALLBACKS,    /* attempts followed by a move to another target */
    V_DURATION_SUM, /* microseconds */
    V_DURATION,     /* NBUCKETS + 1 buckets, not cumulative; the last is past 120 s */
    V_TTFT_SUM = V_DURATION + NBUCKETS + 1,
    V_TTFT,
    NV = V_TTFT + NBUCKETS + 1
};

enum { T_CALLS, T_ATTEMPTS, T_AGENTS, NTABLES };

static const char *const table_names[NTABLES] = {"calls", "attempts", "agents"};
static const char *const label_names[NTABLES][NLABELS] = {
    {"route", "provider", "model", "status"},
    {"route", "provider", "model", "status"},
    {"agent", "status_class", NULL, NULL},
};
static const int table_nlabels[NTABLES] = {4, 4, 2};
/* The label that becomes "other" when a table is nearly full. */
static const int fold_label[NTABLES] = {2, 2, 0};

typedef struct series_key {
    uint8_t len[NLABELS];
    char v[NLABELS][GYRE_METRICS_LABEL_MAX];
} series_key_t;

typedef struct series {
    series_key_t key; /* never changes once the series is published */
    uint64_t v[NV];   /* written by the owning worker only */
} series_t;

typedef struct table {
    series_t *series; /* cap of them, allocated once */
    size_t cap;
    size_t reserve;  /* the last slots, kept for folded label sets */
    size_t n;        /* published series: release store by the owner, acquire load by readers */
    uint32_t *index; /* series number + 1, or 0: the owner's alone */
    size_t mask;
    uint64_t folded;
} table_t;

struct gyre_metrics {
    table_t tables[NTABLES];
};

/* One writer per value: a relaxed load and store make the update whole for readers, without a locked add. */
static inline void bump(uint64_t *p, uint64_t d)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

static inline uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static inline void bump_double(uint64_t *p, double d)
{
    double v = bits_to_double(__atomic_load_n(p, __ATOMIC_RELAXED)) + d;
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    __atomic_store_n(p, b, __ATOMIC_RELAXED);
}

static void table_init(table_t *t, size_t cap)
{
    t->cap = cap;
    t->reserve = cap / 16 > 2 ? cap / 16 : 2;
    t->series = gyre_calloc(cap, sizeof(*t->series));
    size_t slots = 1;
    while (slots < 2 * cap)
        slots <<= 1;
    t->index = gyre_calloc(slots, sizeof(*t->index));
    t->mask = slots - 1;
}

gyre_metrics_t *gyre_metrics_create(size_t capacity)
{
    if (capacity == 0)
        capacity = GYRE_METRICS_DEFAULT_CAPACITY;
    if (capacity < 8)
        capacity = 8;
    gyre_metrics_t *m = gyre_calloc(1, sizeof(*m));
    for (int i = 0; i < NTABLES; i++)
        table_init(&m->tables[i], capacity);
    return m;
}

void gyre_metrics_destroy(gyre_metrics_t *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < NTABLES; i++) {
        free(m->tables[i].series);
        free(m->tables[i].index);
    }
    free(m);
}

/* ---- label sets ---- */

/* The length of the well-formed UTF-8 character at p (n bytes left), or 0 when it is not one. */
static size_t utf8_char_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether all 8 bytes of `w` are printable ASCII (no byte >= 0x80, < 0x20 or 0x7F): kept as they are. */
static inline int word_is_plain(uint64_t w)
{
    uint64_t below_space = (w - ONES * 0x20) & ~w & HIGHS;
    uint64_t del = w ^ (ONES * 0x7F);
    del = (del - ONES) & ~del & HIGHS;
    return ((w & HIGHS) | below_space | del) == 0;
}

static inline int byte_is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7F;
}

/* Sets label i to the first GYRE_METRICS_LABEL_MAX bytes' worth of whole characters of `src` (see metrics.h). */
static void key_set(series_key_t *k, int i, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    char *dst = k->v[i];
    size_t max = len < GYRE_METRICS_LABEL_MAX ? len : GYRE_METRICS_LABEL_MAX, o = 0;
    /* Names are nearly always printable ASCII: copy those a word at a time, and check the rest byte by byte. */
    while (o + 8 <= max) {
        uint64_t w;
        memcpy(&w, s + o, 8);
        if (!word_is_plain(w))
            break;
        memcpy(dst + o, &w, 8);
        o += 8;
    }
    while (o < max && byte_is_plain(s[o])) {
        dst[o] = (char)s[o];
        o++;
    }
    for (size_t j = o; j < len;) {
        size_t cl = utf8_char_len(s + j, len - j);
        if (cl == 0 || (cl == 1 && ((s[j] < 0x20 && s[j] != '\t' && s[j] != '\n') || s[j] == 0x7F))) {
            if (o + 1 > GYRE_METRICS_LABEL_MAX)
                break;
            dst[o++] = '?';
            j++;
            continue;
        }
        if (o + cl > GYRE_METRICS_LABEL_MAX)
            break;
        memcpy(dst + o, s + j, cl);
        o += cl;
        j += cl;
    }
    k->len[i] = (uint8_t)o;
}

static void key_set_tstr(series_key_t *k, int i, gyre_tstr_t s)
{
    key_set(k, i, s.p, s.p != NULL ? s.len : 0);
}

/* An HTTP status as its decimal text ("0" when none came). */
static void key_set_status(series_key_t *k, int i, int status)
{
    /* By hand: snprintf would be most of the cost of counting a call. */
    char text[12], *p = text + sizeof(text);
    unsigned v = status < 0 ? 0 : (unsigned)status;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    key_set(k, i, p, (size_t)(text + sizeof(text) - p));
}

static void key_set_status_class(series_key_t *k, int i, int status)
{
    char text[4] = {(char)('0' + status / 100), 'x', 'x', '\0'};
    if (status >= 100 && status < 600)
        key_set(k, i, text, 3);
    else
        key_set(k, i, "other", 5);
}

/* A word-at-a-time multiply-xorshift hash: the index is the worker's alone, so it needs speed, not secrecy. */
static inline uint64_t hash_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    return h ^ (h >> 32);
}

static uint64_t key_hash(const series_key_t *k)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < NLABELS; i++) {
        const char *p = k->v[i];
        size_t n = k->len[i];
        h = hash_mix(h, n);
        for (; n >= 8; p += 8, n -= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            h = hash_mix(h, w);
        }
        if (n != 0) {
            uint64_t w = 0;
            memcpy(&w, p, n);
            h = hash_mix(h, w);
        }
    }
    return h ^ (h >> 29);
}

static int key_eq(const series_key_t *a, const series_key_t *b)
{
    for (int i = 0; i < NLABELS; i++)
        if (a->len[i] != b->len[i] || memcmp(a->v[i], b->v[i], a->len[i]) != 0)
            return 0;
    return 1;
}

/* The series of `k`; a new one is made when the table holds fewer than `limit`, else NULL. */
static series_t *table_get(table_t *t, const series_key_t *k, size_t limit)
{
    size_t i = key_hash(k) & t->mask;
    for (; t->index[i] != 0; i = (i + 1) & t->mask) {
        series_t *s = &t->series[t->index[i] - 1];
        if (key_eq(&s->key, k))
            return s;
    }
    size_t n = t->n; /* only this thread writes it */
    if (n >= limit)
        return NULL;
    series_t *s = &t->series[n];
    for (int j = 0; j < NLABELS; j++) {
        s->key.len[j] = k->len[j];
        memcpy(s->key.v[j], k->v[j], k->len[j]);
    }
    t->index[i] = (uint32_t)(n + 1);
    __atomic_store_n(&t->n, n + 1, __ATOMIC_RELEASE);
    return s;
}

/* The series `k` is counted in: its own, or a folded one when the table is nearly full (metrics.h). */
static series_t *table_find(table_t *t, int table, series_key_t *k)
{
    series_t *s = table_get(t, k, t->cap - t->reserve);
    if (s != NULL)
        return s;
    bump(&t->folded, 1);
    key_set(k, fold_label[table], "other", 5);
    if ((s = table_get(t, k, t->cap - 1)) != NULL)
        return s;
    /* The last slot is kept for this one, so it is always there. */
    for (int i = 0; i < table_nlabels[table]; i++)
        key_set(k, i, "other", 5);
    return table_get(t, k, t->cap);
}

/* ---- observing ---- */

static void observe_histogram(series_t *s, int first, int sum, int64_t us)
{
    if (us < 0)
        us = 0;
    int b = 0;
    while (b < NBUCKETS && us > bucket_us[b])
        b++;
    bump(&s->v[first + b], 1);
    bump(&s->v[sum], (uint64_t)us);
}

static void observe_usage(series_t *s, const gyre_trace_t *t)
{
    const int64_t tokens[NTOKENS] = {t->prompt_tokens, t->completion_tokens, t->cached_tokens, t->reasoning_tokens};
    for (int i = 0; i < NTOKENS; i++)
        if (tokens[i] > 0)
            bump(&s->v[V_TOKENS + i], (uint64_t)tokens[i]);
    /* Unknown costs (NaN) are left out, not counted as 0. */
    if (isfinite(t->cost_usd) && t->cost_usd >= 0) {
        bump_double(&s->v[V_COST], t->cost_usd);
        bump(&s->v[V_COSTED], 1);
    }
}

static int tstr_eq(gyre_tstr_t a, gyre_tstr_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

void gyre_metrics_observe(gyre_metrics_t *m, const gyre_trace_t *t)
{
    series_key_t k;
    memset(k.len, 0, sizeof(k.len));
    key_set_tstr(&k, 0, t->route);
    key_set_tstr(&k, 1, t->provider);
    key_set_tstr(&k, 2, t->model);
    key_set_status(&k, 3, t->status);
    series_t *s = table_find(&m->tables[T_CALLS], T_CALLS, &k);
    bump(&s->v[V_REQUESTS], 1);
    if (t->cache_hit)
        bump(&s->v[V_CACHE_HITS], 1);
    observe_usage(s, t);
    observe_histogram(s, V_DURATION, V_DURATION_SUM, t->ended_us - t->started_us);
    if (t->ttft_us >= 0)
        observe_histogram(s, V_TTFT, V_TTFT_SUM, t->ttft_us);

    /* An attempt followed by another is a retry when the next one tries the same target (another key, or
     * the same key after a backoff) and a fallback when it moves on. */
    size_t na = t->nattempts < GYRE_TRACE_MAX_ATTEMPTS ? t->nattempts : GYRE_TRACE_MAX_ATTEMPTS;
    for (size_t i = 0; i < na; i++) {
        const gyre_trace_attempt_t *a = &t->attempts[i];
        key_set_tstr(&k, 0, t->route);
        key_set_tstr(&k, 1, a->provider);
        key_set_tstr(&k, 2, a->model);
        key_set_status(&k, 3, a->status);
        s = table_find(&m->tables[T_ATTEMPTS], T_ATTEMPTS, &k);
        bump(&s->v[V_ATTEMPTS], 1);
        if (i + 1 < na) {
            const gyre_trace_attempt_t *next = &t->attempts[i + 1];
            int same = tstr_eq(a->provider, next->provider) && tstr_eq(a->model, next->model);
            bump(&s->v[same ? V_RETRIES : V_FALLBACKS], 1);
        }
    }

    /* Calls that name no agent are in the families above only. */
    if (t->agent.len != 0) {
        memset(k.len, 0, sizeof(k.len));
        key_set_tstr(&k, 0, t->agent);
        key_set_status_class(&k, 1, t->status);
        s = table_find(&m->tables[T_AGENTS], T_AGENTS, &k);
        bump(&s->v[V_REQUESTS], 1);
        observe_usage(s, t);
    }
}

/* ---- rendering ---- */

enum { K_COUNTER, K_COST, K_TOKENS, K_HISTOGRAM };
enum { F_ALL, F_ERRORS, F_ROUTED };

typedef struct family {
    const char *name, *help;
    int kind;
    int table;
    unsigned labels; /* bit i: the key's label i is one of this family's labels */
    int value;       /* V_*: the counter, the first token type, or the first bucket */
    int filter;      /* which series count */
    int present;     /* V_* that must be non-zero for a group to be written, or -1 */
} family_t;

static const family_t families[] = {
    {"gyre_requests_total", "Calls answered, by route, final provider and model, and HTTP status.", K_COUNTER, T_CALLS,
     0xF, V_REQUESTS, F_ALL, -1},
    {"gyre_request_errors_total", "Calls answered with an HTTP status of 400 or more (499: the client went away).",
     K_COUNTER, T_CALLS, 0xF, V_REQUESTS, F_ERRORS, -1},
    {"gyre_upstream_attempts_total", "Attempts made upstream, by provider, model and the status it answered (0: none).",
     K_COUNTER, T_ATTEMPTS, 0xE, V_ATTEMPTS, F_ALL, -1},
    {"gyre_fallbacks_total", "Attempts after which the call moved to another target, by the target it left.", K_COUNTER,
     T_ATTEMPTS, 0x7, V_FALLBACKS, F_ALL, -1},
    {"gyre_retries_total", "Attempts after which the same target was tried again.", K_COUNTER, T_ATTEMPTS, 0x7,
     V_RETRIES, F_ALL, -1},
    {"gyre_request_duration_seconds", "Time from a call's arrival to the end of its answer.", K_HISTOGRAM, T_CALLS, 0x7,
     V_DURATION, F_ALL, -1},
    {"gyre_time_to_first_token_seconds", "Time from a streamed call's arrival to its first token.", K_HISTOGRAM,
     T_CALLS, 0x7, V_TTFT, F_ALL, -1},
    {"gyre_tokens_total", "Tokens the providers reported (cached is part of prompt, reasoning part of completion).",
     K_TOKENS, T_CALLS, 0x7, V_TOKENS, F_ALL, -1},
    {"gyre_cost_usd_total", "Cost in US dollars of the calls whose cost is known from the price table.", K_COST,
     T_CALLS, 0x7, V_COST, F_ALL, V_COSTED},
    {"gyre_cache_hits_total", "Calls answered from the route's cache.", K_COUNTER, T_CALLS, 0x1, V_CACHE_HITS, F_ROUTED,
     -1},
    {"gyre_agent_requests_total", "Calls that named their agent (x-gyre-agent), by agent and status class.", K_COUNTER,
     T_AGENTS, 0x3, V_REQUESTS, F_ALL, -1},
    {"gyre_agent_tokens_total", "Tokens of the calls that named their agent.", K_TOKENS, T_AGENTS, 0x1, V_TOKENS, F_ALL,
     -1},
    {"gyre_agent_cost_usd_total", "Known cost in US dollars of the calls that named their agent.", K_COST, T_AGENTS,
     0x1, V_COST, F_ALL, V_COSTED},
};

#define NFAMILIES (sizeof(families) / sizeof(families[0]))

typedef struct render {
    gyre_buf_t *out;
    int err;
} render_t;

static void put(render_t *r, const char *p, size_t n)
{
    if (r->err == 0 && n != 0)
        r->err = gyre_buf_append(r->out, p, n);
}

static void puts_(render_t *r, const char *s)
{
    put(r, s, strlen(s));
}

static void putf(render_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(render_t *r, const char *fmt, ...)
{
    if (r->err != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    r->err = gyre_buf_vappendf(r->out, fmt, ap);
    va_end(ap);
}

/* A label value in the exposition format: backslash, double quote and newline escaped. */
static void put_escaped(render_t *r, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
        if (esc == NULL)
            continue;
        put(r, s + from, i - from);
        put(r, esc, 2);
        from = i + 1;
    }
    put(r, s + from, n - from);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as `v`. */
static void put_double(render_t *r, double v)
{
    char text[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, v);
        if (strtod(text, NULL) == v)
            break;
    }
    puts_(r, text);
}

/* `{route="chat",...,extra="value"}`: the family's labels from `s`, then an extra one when given. */
static void put_labels(render_t *r, const family_t *f, const series_t *s, const char *extra, const char *value)
{
    const char *sep = "{";
    for (int i = 0; i < NLABELS; i++) {
        if (!(f->labels & (1u << i)))
            continue;
        putf(r, "%s%s=\"", sep, label_names[f->table][i]);
        put_escaped(r, s->key.v[i], s->key.len[i]);
        puts_(r, "\"");
        sep = ",";
    }
    if (extra != NULL) {
        putf(r, "%s%s=\"", sep, extra);
        put_escaped(r, value, strlen(value));
        puts_(r, "\"");
        sep = ",";
    }
    if (sep[0] == ',')
        puts_(r, "}");
}

static void put_head(render_t *r, const char *name, const char *help, const char *type)
{
    putf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int label_cmp(const series_t *a, const series_t *b, unsigned labels)
{
    for (int i = 0; i < NLABELS; i++) {
        if (!(labels & (1u << i)))
            continue;
        size_t n = a->key.len[i] < b->key.len[i] ? a->key.len[i] : b->key.len[i];
        int c = memcmp(a->key.v[i], b->key.v[i], n);
        if (c == 0)
            c = (int)a->key.len[i] - (int)b->key.len[i];
        if (c != 0)
            return c;
    }
    return 0;
}

static int series_cmp_cb(const void *a, const void *b, void *labels)
{
    return label_cmp(*(const series_t *const *)a, *(const series_t *const *)b, *(const unsigned *)labels);
}

static int status_of(const series_t *s)
{
    int v = 0;
    for (size_t i = 0; i < s->key.len[3]; i++) {
        if (s->key.v[3][i] < '0' || s->key.v[3][i] > '9')
            return 0; /* "other" */
        v = v * 10 + (s->key.v[3][i] - '0');
    }
    return v;
}

static int series_counts(const family_t *f, const series_t *s)
{
    switch (f->filter) {
    case F_ERRORS: return status_of(s) >= 400;
    case F_ROUTED: return s->key.len[0] != 0;
    default: return 1;
    }
}

static uint64_t group_sum(const series_t *const *g, size_t n, int v)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += load(&g[i]->v[v]);
    return sum;
}

static double group_sum_double(const series_t *const *g, size_t n, int v)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += bits_to_double(load(&g[i]->v[v]));
    return sum;
}

static void put_group(render_t *r, const family_t *f, const series_t *const *g, size_t n)
{
    if (f->present >= 0 && group_sum(g, n, f->present) == 0)
        return;
    switch (f->kind) {
    case K_COUNTER:
        puts_(r, f->name);
        put_labels(r, f, g[0], NULL, NULL);
        putf(r, " %" PRIu64 "\n", group_sum(g, n, f->value));
        break;
    case K_COST:
        puts_(r, f->name);
        put_labels(r, f, g[0], NULL, NULL);
        puts_(r, " ");
        put_double(r, group_sum_double(g, n, f->value));
        puts_(r, "\n");
        break;
    case K_TOKENS:
        for (int i = 0; i < NTOKENS; i++) {
            puts_(r, f->name);
            put_labels(r, f, g[0], "type", token_types[i]);
            putf(r, " %" PRIu64 "\n", group_sum(g, n, f->value + i));
        }
        break;
    case K_HISTOGRAM: {
        uint64_t buckets[NBUCKETS + 1], count = 0;
        for (int b = 0; b <= NBUCKETS; b++)
            count += buckets[b] = group_sum(g, n, f->value + b);
        if (count == 0)
            return; /* e.g. no stream went this way: no time to first token */
        uint64_t cumulative = 0;
        for (int b = 0; b <= NBUCKETS; b++) {
            cumulative += buckets[b];
            putf(r, "%s_bucket", f->name);
            put_labels(r, f, g[0], "le", b < NBUCKETS ? bucket_le[b] : "+Inf");
            putf(r, " %" PRIu64 "\n", cumulative);
        }
        /* The sum sits just before the buckets in the series. */
        putf(r, "%s_sum", f->name);
        put_labels(r, f, g[0], NULL, NULL);
        puts_(r, " ");
        put_double(r, (double)group_sum(g, n, f->value - 1) / 1e6);
        putf(r, "\n%s_count", f->name);
        put_labels(r, f, g[0], NULL, NULL);
        putf(r, " %" PRIu64 "\n", count);
        break;
    }
    }
}

/* Every published series of `table` over the workers, that the family counts, sorted by its labels. */
static size_t collect(gyre_metrics_t *const *workers, size_t nworkers, const family_t *f, const series_t ***out)
{
    size_t total = 0;
    size_t *counts = gyre_calloc(nworkers ? nworkers : 1, sizeof(*counts));
    for (size_t w = 0; w < nworkers; w++)
        total += counts[w] = __atomic_load_n(&workers[w]->tables[f->table].n, __ATOMIC_ACQUIRE);
    const series_t **all = gyre_calloc(total ? total : 1, sizeof(*all));
    size_t n = 0;
    for (size_t w = 0; w < nworkers; w++)
        for (size_t i = 0; i < counts[w]; i++)
            if (series_counts(f, &workers[w]->tables[f->table].series[i]))
                all[n++] = &workers[w]->tables[f->table].series[i];
    free(counts);
    unsigned labels = f->labels;
    qsort_r(all, n, sizeof(*all), series_cmp_cb, &labels);
    *out = all;
    return n;
}

static void put_family(render_t *r, gyre_metrics_t *const *workers, size_t nworkers, const family_t *f)
{
    put_head(r, f->name, f->help, f->kind == K_HISTOGRAM ? "histogram" : "counter");
    const series_t **all;
    size_t n = collect(workers, nworkers, f, &all);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && label_cmp(all[i], all[j], f->labels) == 0; j++)
            ;
        put_group(r, f, all + i, j - i);
    }
    free(all);
}

static void put_gauge(render_t *r, const char *name, const char *help, uint64_t v)
{
    put_head(r, name, help, "gauge");
    putf(r, "%s %" PRIu64 "\n", name, v);
}

static void put_counter(render_t *r, const char *name, const char *help, uint64_t v)
{
    put_head(r, name, help, "counter");
    putf(r, "%s %" PRIu64 "\n", name, v);
}

int gyre_metrics_render(gyre_metrics_t *const *workers, size_t n, const gyre_metrics_process_t *p, gyre_buf_t *out)
{
    render_t r = {out, 0};
    for (size_t i = 0; i < NFAMILIES; i++)
        put_family(&r, workers, n, &families[i]);

    put_gauge(&r, "gyre_requests_in_flight", "Proxied calls not yet finished.", p->inflight);
    put_head(&r, "gyre_config_reloads_total",
             "New configurations (SIGHUP, admin route changes) put in force (ok) or refused with their errors (error).",
             "counter");
    putf(&r, "gyre_config_reloads_total{result=\"ok\"} %" PRIu64 "\n", p->config_reloads_ok);
    putf(&r, "gyre_config_reloads_total{result=\"error\"} %" PRIu64 "\n", p->config_reloads_error);
    put_gauge(&r, "gyre_config_generation", "The configuration in force: 1 at start, one more per change.",
              p->config_generation);
    put_gauge(&r, "gyre_queue_depth", "Requests waiting on a limit (rpm, tpm, concurrency) before they may go on.",
              p->queue_depth);
    put_gauge(&r, "gyre_connections_open", "Client connections held, lingering closes included.", p->connections_open);
    put_gauge(&r, "gyre_connections_max", "The most client connections gyre holds (max_connections).",
              p->connections_max);
    static const char *const pause_reasons[GYRE_METRICS_ACCEPT_PAUSE_REASONS] = {"max_connections", "fd_limit",
                                                                                 "no_memory"};
    put_head(&r, "gyre_accept_pauses_total",
             "Times a worker stopped accepting connections: every max_connections slot taken, or accept() out of "
             "file descriptors (fd_limit) or kernel memory (no_memory).",
             "counter");
    for (int i = 0; i < GYRE_METRICS_ACCEPT_PAUSE_REASONS; i++)
        putf(&r, "gyre_accept_pauses_total{reason=\"%s\"} %" PRIu64 "\n", pause_reasons[i], p->accept_pauses[i]);
    put_head(&r, "gyre_metrics_folded_total",
             "Calls counted under model=\"other\" or agent=\"other\" because a series table was full.", "counter");
    for (int t = 0; t < NTABLES; t++) {
        uint64_t folded = 0;
        for (size_t w = 0; w < n; w++)
            folded += load(&workers[w]->tables[t].folded);
        putf(&r, "gyre_metrics_folded_total{table=\"%s\"} %" PRIu64 "\n", table_names[t], folded);
    }

    if (p->writer != NULL) {
        const gyre_writer_stats_t *st = p->writer;
        put_gauge(&r, "gyre_trace_queue_depth", "Traces waiting in the workers' queues for the writer.", st->queued);
        put_gauge(&r, "gyre_trace_log_segments", "Segments in the trace log.", st->log_segments);
        put_gauge(&r, "gyre_trace_log_bytes", "Bytes of the trace log on disk.", st->log_bytes);
        put_gauge(&r, "gyre_trace_index_lag_bytes", "Bytes of the trace log the index has not taken yet.",
                  st->index_lag_bytes);
        put_gauge(&r, "gyre_trace_index_lag_seconds", "How old the oldest trace not yet indexed is (0: caught up).",
                  st->index_lag_ms / 1000);
        put_gauge(&r, "gyre_trace_index_corrupt", "1 when the store reported corruption: the next start rebuilds it.",
                  (uint64_t)st->index_corrupt);
        put_gauge(&r, "gyre_trace_log_writable", "0 while the trace log refuses appends (its bound, or the disk).",
                  st->last_log_errno == 0);
        put_counter(&r, "gyre_traces_logged_total", "Traces appended to the trace log.", st->logged);
        put_counter(&r, "gyre_traces_written_total", "Traces the index (the store) took from the log.", st->written);
        put_counter(&r, "gyre_traces_dropped_total", "Traces lost, every reason together.", st->dropped);
        put_head(&r, "gyre_traces_refused_total", "Traces lost, by reason: the log's size bound, the disk, the overflow list.",
                 "counter");
        putf(&r, "gyre_traces_refused_total{reason=\"bound\"} %" PRIu64 "\n", st->dropped_bound);
        putf(&r, "gyre_traces_refused_total{reason=\"disk\"} %" PRIu64 "\n", st->dropped_disk);
        putf(&r, "gyre_traces_refused_total{reason=\"overflow\"} %" PRIu64 "\n", st->dropped_overflow);
        put_counter(&r, "gyre_trace_log_damaged_bytes_total", "Bytes of the trace log skipped as corrupt by a reader.",
                    st->damaged_bytes);
        put_counter(&r, "gyre_trace_log_segments_retired_total", "Segments dropped by retention.", st->segments_retired);
        put_counter(&r, "gyre_trace_store_errors_total", "Batch writes the store failed.", st->store_errors);
    }
    if (p->otlp != NULL) {
        const gyre_metrics_otlp_t *st = p->otlp;
        put_gauge(&r, "gyre_otlp_queue_depth", "Spans waiting to be exported to the OTLP collector.", st->queued);
        put_counter(&r, "gyre_otlp_spans_exported_total", "Spans the OTLP collector took.", st->exported);
        put_counter(&r, "gyre_otlp_spans_dropped_total",
                    "Spans lost: queue full, retries exhausted, refused by the collector, or cut at shutdown.",
                    st->dropped);
        put_counter(&r, "gyre_otlp_export_failures_total", "POSTs to the OTLP collector that got no 2xx (each retry).",
                    st->failed_posts);
    }
    if (p->access_log != NULL) {
        const gyre_access_log_stats_t *st = p->access_log;
        put_counter(&r, "gyre_access_log_lines_total", "Access log lines put in a worker's buffer to be written.",
                    st->lines);
        put_counter(&r, "gyre_access_log_dropped_total",
                    "Access log lines dropped because a worker's buffer (access_log.buffer_bytes) was full.",
                    st->dropped);
        put_counter(&r, "gyre_access_log_write_errors_total", "Writes of the access log that failed.",
                    st->write_errors);
    }

    if (p->nnotifiers > 0) {
        put_head(&r, "gyre_notifications_total",
                 "Notifications by notifier and result: sent (2xx), failed (refused or retries spent), dropped (queue "
                 "full, removed, shutdown), retried (each try after a failed one).",
                 "counter");
        static const char *const results[] = {"sent", "failed", "dropped", "retried"};
        for (size_t i = 0; i < p->nnotifiers; i++) {
            const gyre_metrics_notifier_t *nf = &p->notifiers[i];
            const uint64_t v[] = {nf->sent, nf->failed, nf->dropped, nf->retried};
            for (int k = 0; k < 4; k++) {
                puts_(&r, "gyre_notifications_total{notifier=\"");
                put_escaped(&r, nf->name, strlen(nf->name));
                puts_(&r, "\",kind=\"");
                put_escaped(&r, nf->kind, strlen(nf->kind));
                putf(&r, "\",result=\"%s\"} %" PRIu64 "\n", results[k], v[k]);
            }
        }
    }

    put_head(&r, "gyre_build_info", "The running gyre's version (the value is always 1).", "gauge");
    puts_(&r, "gyre_build_info{version=\"");
    put_escaped(&r, p->version, strlen(p->version));
    puts_(&r, "\"} 1\n");
    put_head(&r, "gyre_start_time_seconds", "When the process started, in unix seconds.", "gauge");
    puts_(&r, "gyre_start_time_seconds ");
    put_double(&r, (double)p->start_time_us / 1e6);
    puts_(&r, "\n");
    return r.err != 0 ? -E2BIG : 0;
}
