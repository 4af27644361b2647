/*
 * The response cache (see cache.h): a chained hash table for finding an
 * entry and a doubly linked list in recency order for choosing which to
 * drop, both under one mutex.
 *
 * Why one mutex and not shards or a lock-free table: a cache lookup happens
 * once per cacheable request, next to a model call that takes hundreds of
 * milliseconds, and what the lock covers is a bucket walk, a memcmp and four
 * pointer writes.  Everything that costs more is done outside it: hashing
 * the key, allocating and filling a new entry before a put, and freeing the
 * entries a put or a get displaced after it.  Two things do happen under the
 * lock:
 *   - a hit copies its value into the caller's buffer (which may grow it).
 *     Copying outside would need a reference count on every entry and a
 *     second trip through the lock (or an atomic) to drop it; values are
 *     bounded to max_bytes/8, and a memcpy of even a long completion is
 *     microseconds, so the simpler rule wins.  A caller that wants no
 *     allocation at all under the lock passes a buffer already big enough.
 *   - a put that doubles the table allocates the new bucket array.  That is
 *     amortised over the entries that made it necessary, and happens only
 *     while the cache is still filling up.
 *
 * Buckets are chosen by SipHash-2-4 with a key drawn at creation: cache keys
 * are client-written requests, and a hash a client can predict is a hash a
 * client can pile into one bucket.  A hit also compares the full key, so two
 * requests never share an answer by hash collision.
 */
#include "route/cache.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/alloc.h"

typedef struct cache_entry {
    struct cache_entry *hnext;       /* the bucket's chain; also the list of entries to free */
    struct cache_entry *prev, *next; /* recency: prev is more recent */
    uint64_t hash;
    uint64_t stored_ms;
    size_t klen, vlen;
    char data[]; /* the key's bytes, then the value's */
} cache_entry_t;

/* An entry's header and its share of the bucket array (the table is grown at one entry per bucket). */
_Static_assert(sizeof(cache_entry_t) + sizeof(cache_entry_t *) <= GYRE_CACHE_ENTRY_OVERHEAD,
               "GYRE_CACHE_ENTRY_OVERHEAD must cover an entry's header");

#define INITIAL_BUCKETS 64

struct gyre_cache {
    pthread_mutex_t lock;
    cache_entry_t **buckets;
    size_t nbuckets;            /* a power of two */
    cache_entry_t *head, *tail; /* most and least recently used */
    size_t max_bytes;
    uint64_t ttl_ms;
    uint64_t k0, k1; /* the SipHash key */
    gyre_cache_stats_t stats;
};

/* --- SipHash-2-4 (Aumasson and Bernstein, 2012) ---------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                                       \
    do {                                                                                                               \
        v0 += v1;                                                                                                      \
        v1 = ROTL(v1, 13);                                                                                             \
        v1 ^= v0;                                                                                                      \
        v0 = ROTL(v0, 32);                                                                                             \
        v2 += v3;                                                                                                      \
        v3 = ROTL(v3, 16);                                                                                             \
        v3 ^= v2;                                                                                                      \
        v0 += v3;                                                                                                      \
        v3 = ROTL(v3, 21);                                                                                             \
        v3 ^= v0;                                                                                                      \
        v2 += v1;                                                                                                      \
        v1 = ROTL(v1, 17);                                                                                             \
        v1 ^= v2;                                                                                                      \
        v2 = ROTL(v2, 32);                                                                                             \
    } while (0)

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash24(uint64_t k0, uint64_t k1, const char *msg, size_t len)
{
    const unsigned char *p = (const unsigned char *)msg;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* --- the table ------------------------------------------------------------ */

static size_t entry_cost(size_t klen, size_t vlen)
{
    return klen + vlen + GYRE_CACHE_ENTRY_OVERHEAD;
}

gyre_cache_t *gyre_cache_create(size_t max_bytes, uint64_t ttl_ms)
{
    gyre_cache_t *c = gyre_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->nbuckets = INITIAL_BUCKETS;
    c->buckets = gyre_calloc(c->nbuckets, sizeof(*c->buckets));
    c->max_bytes = max_bytes;
    c->ttl_ms = ttl_ms;
    uint64_t k[2];
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        /* No entropy this early is unlikely; a key from the clock and the heap still differs per run. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        k[1] = (uint64_t)(uintptr_t)c * 0xbf58476d1ce4e5b9ULL;
    }
    c->k0 = k[0];
    c->k1 = k[1];
    return c;
}

static void free_list(cache_entry_t *e)
{
    while (e != NULL) {
        cache_entry_t *next = e->hnext;
        free(e);
        e = next;
    }
}

void gyre_cache_destroy(gyre_cache_t *c)
{
    if (c == NULL)
        return;
    cache_entry_t *e = c->head;
    while (e != NULL) {
        cache_entry_t *next = e->next;
        free(e);
        e = next;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int is_expired(const gyre_cache_t *c, const cache_entry_t *e, uint64_t now_ms)
{
    /* Workers read the clock separately: a `now` a little before the store is not an age. */
    return c->ttl_ms != 0 && now_ms >= e->stored_ms && now_ms - e->stored_ms >= c->ttl_ms;
}

static cache_entry_t **find_slot(gyre_cache_t *c, uint64_t hash, const char *key, size_t klen)
{
    cache_entry_t **slot = &c->buckets[hash & (c->nbuckets - 1)];
    for (; *slot != NULL; slot = &(*slot)->hnext) {
        cache_entry_t *e = *slot;
        if (e->hash == hash && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return slot;
    }
    return slot;
}

static void lru_unlink(gyre_cache_t *c, cache_entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(gyre_cache_t *c, cache_entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

/* Takes `e` out of the table and the list; the caller frees it once the lock is released. */
static void remove_entry(gyre_cache_t *c, cache_entry_t *e, cache_entry_t **garbage)
{
    cache_entry_t **slot = find_slot(c, e->hash, e->data, e->klen);
    *slot = e->hnext;
    lru_unlink(c, e);
    c->stats.entries--;
    c->stats.bytes -= entry_cost(e->klen, e->vlen);
    e->hnext = *garbage;
    *garbage = e;
}

static void grow(gyre_cache_t *c)
{
    size_t n = c->nbuckets * 2;
    cache_entry_t **b = gyre_calloc(n, sizeof(*b));
    for (size_t i = 0; i < c->nbuckets; i++) {
        cache_entry_t *e = c->buckets[i];
        while (e != NULL) {
            cache_entry_t *next = e->hnext;
            cache_entry_t **slot = &b[e->hash & (n - 1)];
            e->hnext = *slot;
            *slot = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

int gyre_cache_get(gyre_cache_t *c, const char *key, size_t klen, uint64_t now_ms, gyre_buf_t *out)
{
    uint64_t hash = siphash24(c->k0, c->k1, key, klen);
    cache_entry_t *garbage = NULL;
    int r;
    pthread_mutex_lock(&c->lock);
    cache_entry_t *e = *find_slot(c, hash, key, klen);
    if (e == NULL) {
        c->stats.misses++;
        r = 0;
    } else if (is_expired(c, e, now_ms)) {
        remove_entry(c, e, &garbage);
        c->stats.expirations++;
        c->stats.misses++;
        r = 0;
    } else if (gyre_buf_append(out, e->data + e->klen, e->vlen) != 0) {
        r = -E2BIG;
    } else {
        lru_unlink(c, e);
        lru_push_front(c, e);
        c->stats.hits++;
        r = 1;
    }
    pthread_mutex_unlock(&c->lock);
    free_list(garbage);
    return r;
}

int gyre_cache_put(gyre_cache_t *c, const char *key, size_t klen, const char *value, size_t vlen, uint64_t now_ms)
{
    size_t limit = c->max_bytes / 8;
    if (vlen > limit || klen > limit || entry_cost(klen, vlen) > c->max_bytes)
        return -E2BIG;
    cache_entry_t *e = gyre_malloc(sizeof(*e) + klen + vlen);
    e->hash = siphash24(c->k0, c->k1, key, klen);
    e->stored_ms = now_ms;
    e->klen = klen;
    e->vlen = vlen;
    e->prev = e->next = NULL;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, value, vlen);

    cache_entry_t *garbage = NULL;
    pthread_mutex_lock(&c->lock);
    cache_entry_t **slot = find_slot(c, e->hash, key, klen);
    if (*slot != NULL) {
        remove_entry(c, *slot, &garbage);
        slot = find_slot(c, e->hash, key, klen);
    }
    e->hnext = *slot;
    *slot = e;
    lru_push_front(c, e);
    c->stats.entries++;
    c->stats.bytes += entry_cost(klen, vlen);
    /* The new entry fits on its own (checked above), so this stops before reaching it. */
    while (c->stats.bytes > c->max_bytes && c->tail != e) {
        cache_entry_t *victim = c->tail;
        if (is_expired(c, victim, now_ms))
            c->stats.expirations++;
        else
            c->stats.evictions++;
        remove_entry(c, victim, &garbage);
    }
    if (c->stats.entries > c->nbuckets)
        grow(c);
    pthread_mutex_unlock(&c->lock);
    free_list(garbage);
    return 0;
}

void gyre_cache_stats(gyre_cache_t *c, gyre_cache_stats_t *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

/* --- the key -------------------------------------------------------------- */

/* Top-level members of a chat request that change how the answer is delivered or billed, not what it says. */
static const char *const ignored_members[] = {"stream", "stream_options", "user", "metadata", "store", "service_tier"};

static int is_ignored(const char *name)
{
    for (size_t i = 0; i < sizeof(ignored_members) / sizeof(ignored_members[0]); i++)
        if (strcmp(name, ignored_members[i]) == 0)
            return 1;
    return 0;
}

/*
 * One spelling per double: integers up to 2^53 as integers (so 1, 1.0 and
 * 1e0 agree, and -0 is 0), anything else in the shortest %g form that reads
 * back as the same double.
 */
static int canon_number(gyre_buf_t *b, double d)
{
    char s[40];
    if (d == 0) {
        return gyre_buf_append(b, "0", 1);
    } else if (fabs(d) <= 9007199254740992.0 && d == floor(d)) {
        snprintf(s, sizeof(s), "%lld", (long long)d);
    } else if (!isfinite(d)) {
        snprintf(s, sizeof(s), "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(s, sizeof(s), "%.*g", prec, d);
            if (strtod(s, NULL) == d)
                break;
        }
    }
    return gyre_buf_appends(b, s);
}

typedef struct member {
    const cJSON *item;
    size_t pos; /* ties (duplicate names) keep the order they were written in */
} member_t;

static int member_cmp(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    int r = strcmp(x->item->string, y->item->string);
    if (r != 0)
        return r;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * The serialisation recurses once per level; cJSON lets a parse nest 1000
 * deep, more than a worker's stack should be asked to carry for a cache key.
 * A request nested deeper than this is simply not cached.
 */
#define MAX_DEPTH 128

static int canon(gyre_buf_t *b, const cJSON *v, unsigned depth);

static int canon_object(gyre_buf_t *b, const cJSON *v, unsigned depth)
{
    /* Most objects in a request are small; only a large one costs an allocation. */
    member_t small[16], *m = small;
    int top = depth == 0;
    size_t n = 0, count = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) count++;
    if (count > sizeof(small) / sizeof(small[0]))
        m = gyre_malloc(count * sizeof(*m));
    cJSON_ArrayForEach(it, v)
    {
        if (it->string == NULL || (top && is_ignored(it->string)))
            continue;
        m[n].item = it;
        m[n].pos = n;
        n++;
    }
    qsort(m, n, sizeof(*m), member_cmp);
    int r = gyre_buf_append(b, "{", 1);
    for (size_t i = 0; i < n && r == 0; i++) {
        if (i != 0 && (r = gyre_buf_append(b, ",", 1)) != 0)
            break;
        if ((r = gyre_buf_append_json_bytes(b, m[i].item->string, strlen(m[i].item->string))) != 0 ||
            (r = gyre_buf_append(b, ":", 1)) != 0)
            break;
        r = canon(b, m[i].item, depth + 1);
    }
    if (r == 0)
        r = gyre_buf_append(b, "}", 1);
    if (m != small)
        free(m);
    return r;
}

static int canon(gyre_buf_t *b, const cJSON *v, unsigned depth)
{
    if (depth > MAX_DEPTH)
        return -E2BIG;
    if (cJSON_IsObject(v))
        return canon_object(b, v, depth);
    if (cJSON_IsArray(v)) {
        int r = gyre_buf_append(b, "[", 1);
        const cJSON *it;
        int first = 1;
        cJSON_ArrayForEach(it, v)
        {
            if (r == 0 && !first)
                r = gyre_buf_append(b, ",", 1);
            if (r == 0)
                r = canon(b, it, depth + 1);
            first = 0;
        }
        return r == 0 ? gyre_buf_append(b, "]", 1) : r;
    }
    if (cJSON_IsString(v))
        return gyre_buf_append_json_bytes(b, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsNumber(v))
        return canon_number(b, v->valuedouble);
    if (cJSON_IsTrue(v))
        return gyre_buf_append(b, "true", 4);
    if (cJSON_IsFalse(v))
        return gyre_buf_append(b, "false", 5);
    if (cJSON_IsRaw(v) && v->valuestring != NULL)
        return gyre_buf_appends(b, v->valuestring); /* never from a parse; written as given */
    return gyre_buf_append(b, "null", 4);
}

int gyre_cache_key(const cJSON *req, const char *route, gyre_buf_t *key)
{
    if (!cJSON_IsObject(req))
        return -EINVAL;
    gyre_buf_mark_t start = gyre_buf_mark(key);
    if (route == NULL)
        route = "";
    int r = gyre_buf_append_json_bytes(key, route, strlen(route));
    if (r == 0)
        r = canon(key, req, 0);
    if (r != 0)
        gyre_buf_rollback(key, start); /* no key at all rather than part of one; the caller has r */
    return r;
}
