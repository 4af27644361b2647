/* The stats rollup: histograms, batch grouping and the /api/stats answer (see rollup.h). */
#include "store/rollup.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/alloc.h"

#define HIST_GAMMA ((1.0 + GYRE_HIST_ALPHA) / (1.0 - GYRE_HIST_ALPHA))
/* How far past the value a dense window grows at once, so a spread of values does not realloc for each. */
#define HIST_WINDOW_MARGIN 32

/* ---- The histogram. ---- */

int gyre_hist_index(int64_t v_us)
{
    if (v_us <= 0)
        return 0;
    double i = ceil(log((double)v_us) / log(HIST_GAMMA));
    if (i < 0)
        i = 0;
    if (i > GYRE_HIST_BUCKETS - 2)
        return GYRE_HIST_BUCKETS - 1;
    return 1 + (int)i;
}

double gyre_hist_value_us(int index)
{
    if (index <= 0)
        return 0;
    return 2.0 * pow(HIST_GAMMA, index - 1) / (HIST_GAMMA + 1.0);
}

static int clamp_index(int i)
{
    return i < 0 ? 0 : i > GYRE_HIST_BUCKETS ? GYRE_HIST_BUCKETS : i;
}

void gyre_hist_add(gyre_hist_t *h, int index, uint64_t count)
{
    if (index < 0)
        index = 0;
    if (index >= GYRE_HIST_BUCKETS)
        index = GYRE_HIST_BUCKETS - 1;
    if (h->c == NULL) {
        h->lo = clamp_index(index - HIST_WINDOW_MARGIN);
        h->hi = clamp_index(index + HIST_WINDOW_MARGIN + 1);
        h->c = gyre_calloc((size_t)(h->hi - h->lo), sizeof(*h->c));
    } else if (index < h->lo || index >= h->hi) {
        int lo = index < h->lo ? clamp_index(index - HIST_WINDOW_MARGIN) : h->lo;
        int hi = index >= h->hi ? clamp_index(index + HIST_WINDOW_MARGIN + 1) : h->hi;
        uint64_t *c = gyre_calloc((size_t)(hi - lo), sizeof(*c));
        memcpy(c + (h->lo - lo), h->c, (size_t)(h->hi - h->lo) * sizeof(*c));
        free(h->c);
        h->c = c;
        h->lo = lo;
        h->hi = hi;
    }
    h->c[index - h->lo] += count;
    h->n += count;
}

void gyre_hist_dispose(gyre_hist_t *h)
{
    free(h->c);
    memset(h, 0, sizeof(*h));
}

static int put_uvarint(gyre_buf_t *out, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            tmp[n] |= 0x80;
        n++;
    } while (v != 0);
    return gyre_buf_append(out, tmp, n);
}

/* Reads the stored form one bucket at a time. */
typedef struct hist_reader {
    const unsigned char *p, *end;
    int first;
    int index; /* the current bucket, valid when has */
    uint64_t count;
    int has;
} hist_reader_t;

static int get_uvarint(hist_reader_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return -1;
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Advances to the next bucket: 0 (has says whether there was one), or -1 when the bytes are malformed. */
static int hist_next(hist_reader_t *r)
{
    uint64_t delta, count;
    if (r->p == r->end) {
        r->has = 0;
        return 0;
    }
    if (get_uvarint(r, &delta) != 0 || get_uvarint(r, &count) != 0 || count == 0 || (!r->first && delta == 0) ||
        delta >= GYRE_HIST_BUCKETS)
        return -1;
    int64_t index = r->first ? (int64_t)delta : (int64_t)r->index + (int64_t)delta;
    if (index >= GYRE_HIST_BUCKETS)
        return -1;
    r->first = 0;
    r->index = (int)index;
    r->count = count;
    r->has = 1;
    return 0;
}

static void hist_reader_init(hist_reader_t *r, const void *p, size_t len)
{
    r->p = p;
    r->end = r->p + (p != NULL ? len : 0);
    r->first = 1;
    r->index = 0;
    r->count = 0;
    r->has = 0;
}

/* Appends one bucket of the stored form after `*prev` (-1 before the first). */
static int put_bucket(gyre_buf_t *out, int *prev, int index, uint64_t count)
{
    int r = put_uvarint(out, (uint64_t)(*prev < 0 ? index : index - *prev));
    if (r == 0)
        r = put_uvarint(out, count);
    *prev = index;
    return r;
}

int gyre_hist_add_encoded(gyre_hist_t *h, const void *p, size_t len)
{
    hist_reader_t r;
    hist_reader_init(&r, p, len);
    for (;;) {
        if (hist_next(&r) != 0)
            return -EINVAL;
        if (!r.has)
            return 0;
        gyre_hist_add(h, r.index, r.count);
    }
}

int gyre_hist_encode(const gyre_hist_t *h, gyre_buf_t *out)
{
    int prev = -1, r = 0;
    for (int i = 0; h->c != NULL && i < h->hi - h->lo && r == 0; i++)
        if (h->c[i] != 0)
            r = put_bucket(out, &prev, h->lo + i, h->c[i]);
    return r;
}

int gyre_hist_merge_encoded(const void *a, size_t alen, const void *b, size_t blen, gyre_buf_t *out)
{
    hist_reader_t ra, rb;
    int prev = -1, r = 0;
    hist_reader_init(&ra, a, alen);
    hist_reader_init(&rb, b, blen);
    if (hist_next(&ra) != 0 || hist_next(&rb) != 0)
        return -EINVAL;
    while (r == 0 && (ra.has || rb.has)) {
        if (ra.has && rb.has && ra.index == rb.index) {
            r = put_bucket(out, &prev, ra.index, ra.count + rb.count);
            if (hist_next(&ra) != 0 || hist_next(&rb) != 0)
                return -EINVAL;
        } else if (ra.has && (!rb.has || ra.index < rb.index)) {
            r = put_bucket(out, &prev, ra.index, ra.count);
            if (hist_next(&ra) != 0)
                return -EINVAL;
        } else {
            r = put_bucket(out, &prev, rb.index, rb.count);
            if (hist_next(&rb) != 0)
                return -EINVAL;
        }
    }
    return r;
}

double gyre_hist_percentile_us(const gyre_hist_t *h, int permille)
{
    if (h->n == 0)
        return NAN;
    /* Nearest rank: the k-th smallest value, k = ceil(p * n), in integers so that 0.95 * 20 is exactly 19. */
    uint64_t k = ((uint64_t)permille * h->n + 999) / 1000, seen = 0;
    if (k < 1)
        k = 1;
    for (int i = 0; i < h->hi - h->lo; i++) {
        seen += h->c[i];
        if (seen >= k)
            return gyre_hist_value_us(h->lo + i);
    }
    return gyre_hist_value_us(h->hi - 1);
}

/* ---- Batch grouping. ---- */

void gyre_rollup_in_from_trace(gyre_rollup_in_t *in, const gyre_trace_t *t)
{
    in->started_us = t->started_us;
    in->latency_us = t->ended_us - t->started_us;
    in->ttft_us = t->ttft_us;
    in->status = t->status;
    in->route = t->route;
    in->provider = t->provider;
    in->model = t->model;
    in->agent = t->agent;
    in->user = t->user;
    in->prompt_tokens = t->prompt_tokens;
    in->completion_tokens = t->completion_tokens;
    in->cached_tokens = t->cached_tokens;
    in->reasoning_tokens = t->reasoning_tokens;
    in->cost_usd = t->cost_usd;
    in->cost_saved_usd = t->cost_saved_usd;
}

static int64_t floor_to(int64_t t, int64_t span)
{
    int64_t q = t / span;
    if (t % span != 0 && t < 0)
        q--;
    return q * span;
}

static int status_class(int status)
{
    return status < 0 ? 0 : status / 100;
}

typedef struct rollup_entry {
    int64_t span_us, start_us;
    int cls;
    const gyre_rollup_in_t *in;
} rollup_entry_t;

static int tstr_cmp(const gyre_tstr_t *a, const gyre_tstr_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int entry_key_cmp(const rollup_entry_t *x, const rollup_entry_t *y)
{
    int c;
    if (x->span_us != y->span_us)
        return x->span_us < y->span_us ? -1 : 1;
    if (x->start_us != y->start_us)
        return x->start_us < y->start_us ? -1 : 1;
    if ((c = tstr_cmp(&x->in->route, &y->in->route)) != 0 || (c = tstr_cmp(&x->in->provider, &y->in->provider)) != 0 ||
        (c = tstr_cmp(&x->in->model, &y->in->model)) != 0 || (c = tstr_cmp(&x->in->agent, &y->in->agent)) != 0 ||
        (c = tstr_cmp(&x->in->user, &y->in->user)) != 0)
        return c;
    return x->cls - y->cls;
}

static int entry_cmp_cb(const void *a, const void *b)
{
    return entry_key_cmp(a, b);
}

static int int_cmp_cb(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

/* The stored form of a sorted list of bucket indexes. */
static int encode_sorted(const int *idx, size_t n, gyre_buf_t *out)
{
    int prev = -1, r = 0;
    for (size_t i = 0; i < n && r == 0;) {
        size_t j = i;
        while (j < n && idx[j] == idx[i])
            j++;
        r = put_bucket(out, &prev, idx[i], j - i);
        i = j;
    }
    return r;
}

int gyre_rollup_batch(const gyre_rollup_in_t *in, size_t n, gyre_rollup_group_cb cb, void *arg)
{
    static const int64_t spans[] = {GYRE_ROLLUP_MINUTE_US, GYRE_ROLLUP_HOUR_US};
    const size_t nspans = sizeof(spans) / sizeof(spans[0]);
    if (n == 0)
        return 0;
    rollup_entry_t *e = gyre_malloc(n * nspans * sizeof(*e));
    int *lat = gyre_malloc(n * sizeof(*lat)), *ttft = gyre_malloc(n * sizeof(*ttft));
    gyre_buf_t lat_buf, ttft_buf;
    /* A group's histograms hold at most n buckets of two varints each. */
    gyre_buf_init(&lat_buf, n * 20 + 16);
    gyre_buf_init(&ttft_buf, n * 20 + 16);
    size_t ne = 0;
    for (size_t s = 0; s < nspans; s++)
        for (size_t i = 0; i < n; i++)
            e[ne++] =
                (rollup_entry_t){spans[s], floor_to(in[i].started_us, spans[s]), status_class(in[i].status), &in[i]};
    qsort(e, ne, sizeof(*e), entry_cmp_cb);

    int r = 0;
    for (size_t i = 0; i < ne && r == 0;) {
        const gyre_rollup_in_t *first = e[i].in;
        gyre_rollup_group_t g = {
            .span_us = e[i].span_us,
            .start_us = e[i].start_us,
            .route = first->route,
            .provider = first->provider,
            .model = first->model,
            .agent = first->agent,
            .user = first->user,
            .status_class = e[i].cls,
        };
        size_t nlat = 0, nttft = 0, j = i;
        for (; j < ne && entry_key_cmp(&e[i], &e[j]) == 0; j++) {
            const gyre_rollup_in_t *t = e[j].in;
            g.requests++;
            g.prompt_tokens += t->prompt_tokens > 0 ? t->prompt_tokens : 0;
            g.completion_tokens += t->completion_tokens > 0 ? t->completion_tokens : 0;
            g.cached_tokens += t->cached_tokens > 0 ? t->cached_tokens : 0;
            g.reasoning_tokens += t->reasoning_tokens > 0 ? t->reasoning_tokens : 0;
            if (isfinite(t->cost_usd)) {
                g.cost_usd += t->cost_usd;
                g.cost_n++;
            }
            if (isfinite(t->cost_saved_usd))
                g.cost_saved_usd += t->cost_saved_usd;
            lat[nlat++] = gyre_hist_index(t->latency_us);
            if (t->ttft_us >= 0)
                ttft[nttft++] = gyre_hist_index(t->ttft_us);
        }
        g.ttft_n = (int64_t)nttft;
        qsort(lat, nlat, sizeof(*lat), int_cmp_cb);
        qsort(ttft, nttft, sizeof(*ttft), int_cmp_cb);
        gyre_buf_reset(&lat_buf);
        gyre_buf_reset(&ttft_buf);
        encode_sorted(lat, nlat, &lat_buf);
        encode_sorted(ttft, nttft, &ttft_buf);
        g.lat_hist = lat_buf.base;
        g.lat_len = lat_buf.len;
        g.ttft_hist = ttft_buf.base;
        g.ttft_len = ttft_buf.len;
        r = cb(arg, &g);
        i = j;
    }
    gyre_buf_dispose(&lat_buf);
    gyre_buf_dispose(&ttft_buf);
    free(lat);
    free(ttft);
    free(e);
    return r;
}

/* ---- The range. ---- */

int gyre_stats_range_resolve(const gyre_stats_query_t *q, int64_t now_us, gyre_stats_range_t *out, char *err,
                             size_t errlen)
{
    out->to_us = q->to_us != 0 ? q->to_us : now_us;
    out->from_us = q->from_us != 0 ? q->from_us : out->to_us - GYRE_STATS_DEFAULT_RANGE_US;
    out->bucket_us = q->bucket_us;
    if (out->to_us <= out->from_us) {
        gyre_errf(err, errlen, "to: must be later than from");
        return -EINVAL;
    }
    if (q->bucket_us < 0 || q->bucket_us % GYRE_ROLLUP_MINUTE_US != 0) {
        gyre_errf(err, errlen, "bucket: must be a whole number of minutes");
        return -EINVAL;
    }
    if (q->bucket_us > 0) {
        int64_t first = floor_to(out->from_us, q->bucket_us);
        int64_t count = (out->to_us - first + q->bucket_us - 1) / q->bucket_us;
        if (count > GYRE_STATS_BUCKETS_MAX) {
            gyre_errf(err, errlen,
                    "bucket: %" PRId64 " buckets over this range, more than %d; use a larger bucket or a shorter range",
                    count, GYRE_STATS_BUCKETS_MAX);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- The answer. ---- */

typedef struct stats_acc {
    int64_t requests, errors, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_n, ttft_n;
    double cost_usd;
    gyre_hist_t lat, ttft;
    double cost_saved_usd;
} stats_acc_t;

#define STATS_DIMS 7

typedef struct stats_group {
    uint64_t hash;
    char *key; /* the grouped dimensions, each as a 4-byte length and its bytes */
    size_t keylen;
    gyre_tstr_t dims[STATS_DIMS]; /* into key; empty for the dimensions not grouped */
    stats_acc_t acc;
} stats_group_t;

struct gyre_stats_answer {
    gyre_stats_range_t range;
    unsigned group_by;
    stats_acc_t total;
    stats_group_t **slots; /* open addressing, a power of two */
    size_t nslots, ngroups;
    stats_acc_t **buckets; /* lazily allocated, by bucket number from first_bucket_us */
    size_t nbuckets;
    int64_t first_bucket_us;
    gyre_buf_t key;
};

static const unsigned dim_bits[STATS_DIMS] = {GYRE_STATS_BY_ROUTE, GYRE_STATS_BY_PROVIDER, GYRE_STATS_BY_MODEL,
                                              GYRE_STATS_BY_AGENT, GYRE_STATS_BY_USER,  GYRE_STATS_BY_KEY,
                                              GYRE_STATS_BY_TEAM};
static const char *const dim_names[STATS_DIMS] = {"route", "provider", "model", "agent", "user", "key", "team"};

gyre_stats_answer_t *gyre_stats_answer_create(const gyre_stats_range_t *range, unsigned group_by)
{
    gyre_stats_answer_t *a = gyre_calloc(1, sizeof(*a));
    a->range = *range;
    a->group_by = group_by;
    if (group_by != 0) {
        a->nslots = 64;
        a->slots = gyre_calloc(a->nslots, sizeof(*a->slots));
    }
    if (range->bucket_us > 0) {
        a->first_bucket_us = floor_to(range->from_us, range->bucket_us);
        a->nbuckets = (size_t)((range->to_us - a->first_bucket_us + range->bucket_us - 1) / range->bucket_us);
        a->buckets = gyre_calloc(a->nbuckets ? a->nbuckets : 1, sizeof(*a->buckets));
    }
    gyre_buf_init(&a->key, 1u << 20);
    return a;
}

static void acc_dispose(stats_acc_t *acc)
{
    gyre_hist_dispose(&acc->lat);
    gyre_hist_dispose(&acc->ttft);
}

void gyre_stats_answer_destroy(gyre_stats_answer_t *a)
{
    if (a == NULL)
        return;
    acc_dispose(&a->total);
    for (size_t i = 0; i < a->nslots; i++) {
        if (a->slots[i] != NULL) {
            acc_dispose(&a->slots[i]->acc);
            free(a->slots[i]->key);
            free(a->slots[i]);
        }
    }
    free(a->slots);
    for (size_t i = 0; i < a->nbuckets; i++) {
        if (a->buckets[i] != NULL) {
            acc_dispose(a->buckets[i]);
            free(a->buckets[i]);
        }
    }
    free(a->buckets);
    gyre_buf_dispose(&a->key);
    free(a);
}

static int acc_add(stats_acc_t *acc, const gyre_stats_part_t *p)
{
    acc->requests += p->requests;
    if (p->status_class >= 4)
        acc->errors += p->requests;
    acc->prompt_tokens += p->prompt_tokens;
    acc->completion_tokens += p->completion_tokens;
    acc->cached_tokens += p->cached_tokens;
    acc->reasoning_tokens += p->reasoning_tokens;
    acc->cost_usd += p->cost_usd;
    acc->cost_n += p->cost_n;
    acc->cost_saved_usd += isfinite(p->cost_saved_usd) ? p->cost_saved_usd : 0;
    if (p->lat_hist != NULL) {
        acc->ttft_n += p->ttft_n;
        if (gyre_hist_add_encoded(&acc->lat, p->lat_hist, p->lat_len) != 0 ||
            gyre_hist_add_encoded(&acc->ttft, p->ttft_hist, p->ttft_len) != 0)
            return -EINVAL;
    } else {
        gyre_hist_add(&acc->lat, gyre_hist_index(p->latency_us), 1);
        if (p->ttft_us >= 0) {
            acc->ttft_n++;
            gyre_hist_add(&acc->ttft, gyre_hist_index(p->ttft_us), 1);
        }
    }
    return 0;
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static void slots_grow(gyre_stats_answer_t *a)
{
    size_t n = a->nslots * 2;
    stats_group_t **slots = gyre_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < a->nslots; i++) {
        stats_group_t *g = a->slots[i];
        if (g == NULL)
            continue;
        size_t j = (size_t)g->hash & (n - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (n - 1);
        slots[j] = g;
    }
    free(a->slots);
    a->slots = slots;
    a->nslots = n;
}

static stats_group_t *group_of(gyre_stats_answer_t *a, const gyre_stats_part_t *p, char *err, size_t errlen)
{
    const gyre_tstr_t *dims[STATS_DIMS] = {&p->route, &p->provider, &p->model, &p->agent,
                                           &p->user,  &p->key_id,   &p->team};
    gyre_buf_reset(&a->key);
    for (int d = 0; d < STATS_DIMS; d++) {
        if (!(a->group_by & dim_bits[d]))
            continue;
        uint32_t len = (uint32_t)dims[d]->len;
        gyre_buf_append(&a->key, &len, sizeof(len));
        gyre_buf_append(&a->key, dims[d]->p, dims[d]->len);
    }
    uint64_t h = fnv1a(a->key.base, a->key.len);
    size_t i = (size_t)h & (a->nslots - 1);
    for (; a->slots[i] != NULL; i = (i + 1) & (a->nslots - 1)) {
        stats_group_t *g = a->slots[i];
        if (g->hash == h && g->keylen == a->key.len && memcmp(g->key, a->key.base, a->key.len) == 0)
            return g;
    }
    if (a->ngroups >= GYRE_STATS_GROUPS_MAX) {
        gyre_errf(err, errlen, "group_by: more than %d groups; filter or group by fewer dimensions",
                GYRE_STATS_GROUPS_MAX);
        return NULL;
    }
    stats_group_t *g = gyre_calloc(1, sizeof(*g));
    g->hash = h;
    g->keylen = a->key.len;
    g->key = gyre_malloc(a->key.len + 1);
    memcpy(g->key, a->key.base, a->key.len);
    size_t off = 0;
    for (int d = 0; d < STATS_DIMS; d++) {
        if (!(a->group_by & dim_bits[d]))
            continue;
        uint32_t len;
        memcpy(&len, g->key + off, sizeof(len));
        g->dims[d] = (gyre_tstr_t){g->key + off + sizeof(len), len};
        off += sizeof(len) + len;
    }
    a->slots[i] = g;
    if (++a->ngroups * 2 > a->nslots)
        slots_grow(a);
    return g;
}

int gyre_stats_answer_add(gyre_stats_answer_t *a, const gyre_stats_part_t *p, char *err, size_t errlen)
{
    if (acc_add(&a->total, p) != 0)
        goto corrupt;
    if (a->group_by != 0) {
        stats_group_t *g = group_of(a, p, err, errlen);
        if (g == NULL)
            return -E2BIG;
        if (acc_add(&g->acc, p) != 0)
            goto corrupt;
    }
    if (a->nbuckets > 0) {
        int64_t b = (p->t_us - a->first_bucket_us) / a->range.bucket_us;
        if (p->t_us >= a->first_bucket_us && b < (int64_t)a->nbuckets) {
            if (a->buckets[b] == NULL)
                a->buckets[b] = gyre_calloc(1, sizeof(*a->buckets[b]));
            if (acc_add(a->buckets[b], p) != 0)
                goto corrupt;
        }
    }
    return 0;
corrupt:
    gyre_errf(err, errlen, "store: a stored stats histogram is corrupt");
    return -EINVAL;
}

/* The shortest text that reads back as the same double (null when not finite). */
static int put_double(gyre_buf_t *out, double v)
{
    char tmp[40];
    if (!isfinite(v))
        return gyre_buf_appends(out, "null");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return gyre_buf_appends(out, tmp);
}

/* A percentile block in milliseconds, to the microsecond. */
static int put_percentiles(gyre_buf_t *out, const gyre_hist_t *h)
{
    static const int permille[] = {500, 950, 990};
    static const char *const names[] = {"{\"p50\":", ",\"p95\":", ",\"p99\":"};
    int r = 0;
    for (int i = 0; i < 3; i++) {
        r |= gyre_buf_appends(out, names[i]);
        r |= put_double(out, round(gyre_hist_percentile_us(h, permille[i])) / 1000.0);
    }
    r |= gyre_buf_appends(out, "}");
    return r;
}

/* The STATS fields, without braces. */
static int put_acc(gyre_buf_t *out, const stats_acc_t *acc)
{
    int r = gyre_buf_appendf(out, "\"requests\":%" PRId64 ",\"errors\":%" PRId64 ",\"error_rate\":", acc->requests,
                             acc->errors);
    r |= put_double(out, acc->requests ? round((double)acc->errors / (double)acc->requests * 1e6) / 1e6 : 0.0);
    r |= gyre_buf_appends(out, ",\"latency_ms\":");
    r |= acc->requests ? put_percentiles(out, &acc->lat) : gyre_buf_appends(out, "null");
    r |= gyre_buf_appends(out, ",\"ttft_ms\":");
    r |= acc->ttft_n ? put_percentiles(out, &acc->ttft) : gyre_buf_appends(out, "null");
    r |= gyre_buf_appendf(out,
                          ",\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64 ",\"cached_tokens\":%" PRId64
                          ",\"reasoning_tokens\":%" PRId64 ",\"cost_usd\":",
                          acc->prompt_tokens, acc->completion_tokens, acc->cached_tokens, acc->reasoning_tokens);
    /* To the nano-dollar: sums taken in a different order (rollup rows or traces) then print the same. */
    r |= acc->cost_n ? put_double(out, round(acc->cost_usd * 1e9) / 1e9) : gyre_buf_appends(out, "null");
    /* What cache hits saved (they cost 0 above): a sum of the known amounts, 0 when there were none. */
    r |= gyre_buf_appends(out, ",\"cost_saved_usd\":");
    r |= put_double(out, round(acc->cost_saved_usd * 1e9) / 1e9);
    return r;
}

static int group_order_cb(const void *x, const void *y)
{
    const stats_group_t *a = *(stats_group_t *const *)x, *b = *(stats_group_t *const *)y;
    if (a->acc.requests != b->acc.requests)
        return a->acc.requests > b->acc.requests ? -1 : 1;
    /* Ties read in the order of their keys, dimension by dimension. */
    for (int d = 0; d < STATS_DIMS; d++) {
        int c = tstr_cmp(&a->dims[d], &b->dims[d]);
        if (c != 0)
            return c;
    }
    return 0;
}

int gyre_stats_answer_json(gyre_stats_answer_t *a, gyre_buf_t *out)
{
    size_t start = out->len;
    int r = gyre_buf_appendf(out, "{\"from_us\":%" PRId64 ",\"to_us\":%" PRId64 ",\"bucket_us\":", a->range.from_us,
                             a->range.to_us);
    r |= a->range.bucket_us > 0 ? gyre_buf_appendf(out, "%" PRId64, a->range.bucket_us) : gyre_buf_appends(out, "null");
    r |= gyre_buf_appends(out, ",\"total\":{");
    r |= put_acc(out, &a->total);
    r |= gyre_buf_appends(out, "},\"groups\":[");
    if (a->ngroups > 0) {
        stats_group_t **order = gyre_malloc(a->ngroups * sizeof(*order));
        size_t n = 0;
        for (size_t i = 0; i < a->nslots; i++)
            if (a->slots[i] != NULL)
                order[n++] = a->slots[i];
        qsort(order, n, sizeof(*order), group_order_cb);
        for (size_t i = 0; i < n && r == 0; i++) {
            r |= gyre_buf_appends(out, i ? ",{\"key\":{" : "{\"key\":{");
            int k = 0;
            for (int d = 0; d < STATS_DIMS; d++) {
                if (!(a->group_by & dim_bits[d]))
                    continue;
                r |= gyre_buf_appendf(out, "%s\"%s\":", k++ ? "," : "", dim_names[d]);
                r |= gyre_buf_append_json_string(out, order[i]->dims[d].p ? order[i]->dims[d].p : "",
                                                 order[i]->dims[d].len);
            }
            r |= gyre_buf_appends(out, "},");
            r |= put_acc(out, &order[i]->acc);
            r |= gyre_buf_appends(out, "}");
        }
        free(order);
    }
    r |= gyre_buf_appends(out, "],\"buckets\":[");
    for (size_t i = 0, k = 0; i < a->nbuckets && r == 0; i++) {
        if (a->buckets[i] == NULL)
            continue;
        r |= gyre_buf_appendf(out, "%s{\"start_us\":%" PRId64 ",", k++ ? "," : "",
                              a->first_bucket_us + (int64_t)i * a->range.bucket_us);
        r |= put_acc(out, a->buckets[i]);
        r |= gyre_buf_appends(out, "}");
    }
    r |= gyre_buf_appends(out, "]}");
    if (r != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
        return -E2BIG;
    }
    return 0;
}
