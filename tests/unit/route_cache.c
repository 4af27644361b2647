/*
 * src/route/cache.c: the cache key of a chat request (what makes two
 * requests the same question), hits and misses, expiry, least-recently-used
 * eviction under the byte bound, refusal of oversize values, the counters,
 * and four threads hammering one small cache.
 */
#include "route/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

#define LIT(s) s, sizeof(s) - 1
#define COST(klen, vlen) ((klen) + (vlen) + GYRE_CACHE_ENTRY_OVERHEAD)

/* --- the key -------------------------------------------------------------- */

/* The key of `body` for route "chat", in a buffer the caller disposes. */
static int key_of(const char *body, gyre_buf_t *key)
{
    gyre_buf_init(key, 1 << 20);
    cJSON *j = cJSON_Parse(body);
    int r = gyre_cache_key(j, "chat", key);
    cJSON_Delete(j);
    return r;
}

/* Asserts that two bodies get the same key (and that it is `want`, when given). */
static void check_same_key(const char *a, const char *b, const char *want)
{
    gyre_buf_t ka, kb;
    CHECK_INT(key_of(a, &ka), 0);
    CHECK_INT(key_of(b, &kb), 0);
    CHECK_STR(ka.base, kb.base);
    if (want != NULL)
        CHECK_STR(ka.base, want);
    gyre_buf_dispose(&ka);
    gyre_buf_dispose(&kb);
}

static void check_different_keys(const char *a, const char *b)
{
    gyre_buf_t ka, kb;
    CHECK_INT(key_of(a, &ka), 0);
    CHECK_INT(key_of(b, &kb), 0);
    CHECK(strcmp(ka.base, kb.base) != 0);
    gyre_buf_dispose(&ka);
    gyre_buf_dispose(&kb);
}

TEST(cache_key_is_the_route_then_the_request_with_keys_sorted_at_every_depth)
{
    gyre_buf_t k;
    CHECK_INT(
        key_of("{\"model\":\"chat\",\"temperature\":0.7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &k),
        0);
    CHECK_STR(k.base,
              "\"chat\"{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"chat\",\"temperature\":0.7}");
    gyre_buf_dispose(&k);
}

TEST(cache_key_ignores_key_order_and_whitespace)
{
    check_same_key("{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_p\":1}",
                   "{ \"top_p\" : 1,\n\t\"messages\" : [ { \"content\" : \"hi\" , \"role\" : \"user\" } ] ,"
                   " \"model\" : \"chat\" }",
                   "\"chat\"{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"chat\",\"top_p\":1}");
}

TEST(cache_key_ignores_stream_stream_options_user_metadata_store_and_service_tier)
{
    check_same_key("{\"model\":\"chat\",\"messages\":[]}",
                   "{\"model\":\"chat\",\"messages\":[],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                   "\"user\":\"u-42\",\"metadata\":{\"team\":\"a\"},\"store\":true,\"service_tier\":\"flex\"}",
                   "\"chat\"{\"messages\":[],\"model\":\"chat\"}");
}

TEST(cache_key_drops_ignored_names_only_at_the_top_level)
{
    check_same_key("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"user\":\"x\"}],\"stream\":false}",
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"user\":\"x\"}]}",
                   "\"chat\"{\"messages\":[{\"content\":\"hi\",\"role\":\"user\",\"user\":\"x\"}]}");
}

TEST(cache_key_keeps_n_and_parallel_tool_calls)
{
    check_same_key("{\"messages\":[],\"n\":2,\"parallel_tool_calls\":false}",
                   "{\"parallel_tool_calls\":false,\"n\":2,\"messages\":[]}",
                   "\"chat\"{\"messages\":[],\"n\":2,\"parallel_tool_calls\":false}");
    check_different_keys("{\"messages\":[],\"n\":2}", "{\"messages\":[],\"n\":1}");
    check_different_keys("{\"messages\":[],\"parallel_tool_calls\":false}", "{\"messages\":[]}");
}

TEST(cache_key_changes_with_a_sampling_parameter)
{
    check_different_keys("{\"messages\":[],\"temperature\":0.7}", "{\"messages\":[],\"temperature\":0.8}");
    check_different_keys("{\"messages\":[],\"seed\":1}", "{\"messages\":[]}");
}

TEST(cache_key_changes_with_the_tools)
{
    const char *none = "{\"messages\":[]}";
    const char *f = "{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    const char *g = "{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"g\"}}]}";
    const char *fg = "{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
                     "{\"type\":\"function\",\"function\":{\"name\":\"g\"}}]}";
    const char *gf = "{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"g\"}},"
                     "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    check_different_keys(none, f);
    check_different_keys(f, g);
    check_different_keys(fg, gf); /* arrays keep their order */
}

TEST(cache_key_changes_with_the_route)
{
    cJSON *j = cJSON_Parse("{\"messages\":[]}");
    gyre_buf_t a, b;
    gyre_buf_init(&a, 1024);
    gyre_buf_init(&b, 1024);
    CHECK_INT(gyre_cache_key(j, "chat", &a), 0);
    CHECK_INT(gyre_cache_key(j, "chat2", &b), 0);
    CHECK_STR(a.base, "\"chat\"{\"messages\":[]}");
    CHECK_STR(b.base, "\"chat2\"{\"messages\":[]}");
    gyre_buf_dispose(&a);
    gyre_buf_dispose(&b);
    cJSON_Delete(j);
}

TEST(cache_key_prints_numbers_one_way)
{
    check_same_key("{\"a\":1,\"b\":-0,\"c\":0.1,\"d\":1e300,\"e\":-2.5,\"f\":12345678901234}",
                   "{\"a\":1.0,\"b\":0,\"c\":1e-1,\"d\":1E+300,\"e\":-25e-1,\"f\":1.2345678901234e13}",
                   "\"chat\"{\"a\":1,\"b\":0,\"c\":0.1,\"d\":1e+300,\"e\":-2.5,\"f\":12345678901234}");
}

TEST(cache_key_re_escapes_strings_so_equal_strings_agree)
{
    check_same_key("{\"s\":\"\\u0041\\/\\n\"}", "{\"s\":\"A/\\n\"}", "\"chat\"{\"s\":\"A/\\n\"}");
}

TEST(cache_key_keeps_duplicate_names_in_their_written_order)
{
    check_same_key("{\"b\":1,\"a\":2,\"a\":1}", "{\"a\":2,\"a\":1,\"b\":1}", "\"chat\"{\"a\":2,\"a\":1,\"b\":1}");
    check_different_keys("{\"a\":2,\"a\":1}", "{\"a\":1,\"a\":2}");
}

TEST(cache_key_sorts_objects_larger_than_the_on_stack_array)
{
    char body[1024] = "{", want[1024] = "\"chat\"{";
    for (int i = 39; i >= 0; i--)
        snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s\"k%02d\":%d", i == 39 ? "" : ",", i, i);
    strcat(body, "}");
    for (int i = 0; i < 40; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\"k%02d\":%d", i == 0 ? "" : ",", i, i);
    strcat(want, "}");
    gyre_buf_t k;
    CHECK_INT(key_of(body, &k), 0);
    CHECK_STR(k.base, want);
    gyre_buf_dispose(&k);
}

/* {"a": followed by `depth` nested arrays: the innermost array is at depth `depth`. */
static int key_of_nested(int depth)
{
    char body[512] = "{\"a\":";
    for (int i = 0; i < depth; i++)
        strcat(body, "[");
    for (int i = 0; i < depth; i++)
        strcat(body, "]");
    strcat(body, "}");
    gyre_buf_t k;
    int r = key_of(body, &k);
    gyre_buf_dispose(&k);
    return r;
}

TEST(cache_key_of_a_request_nested_deeper_than_128_is_e2big)
{
    CHECK_INT(key_of_nested(128), 0);
    CHECK_INT(key_of_nested(129), -E2BIG);
}

TEST(cache_key_of_a_non_object_is_einval)
{
    cJSON *j = cJSON_Parse("[1]");
    gyre_buf_t k;
    gyre_buf_init(&k, 1024);
    CHECK_INT(gyre_cache_key(j, "chat", &k), -EINVAL);
    CHECK_INT(gyre_cache_key(NULL, "chat", &k), -EINVAL);
    CHECK_INT(k.len, 0);
    gyre_buf_dispose(&k);
    cJSON_Delete(j);
}

TEST(cache_key_past_the_buffer_bound_is_e2big_and_leaves_the_buffer_as_it_was)
{
    cJSON *j = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"a long enough question\"}]}");
    gyre_buf_t k;
    gyre_buf_init(&k, 32);
    gyre_buf_appends(&k, "kept");
    CHECK_INT(gyre_cache_key(j, "chat", &k), -E2BIG);
    CHECK_STR(k.base, "kept");
    gyre_buf_dispose(&k);
    cJSON_Delete(j);
}

/* --- get and put ---------------------------------------------------------- */

TEST(cache_get_after_put_is_a_hit_with_the_value_appended)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 60000);
    CHECK_INT(gyre_cache_put(c, LIT("key"), LIT("value"), 1000), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    gyre_buf_appends(&out, "> ");
    CHECK_INT(gyre_cache_get(c, LIT("key"), 1001, &out), 1);
    CHECK_STR(out.base, "> value");
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.hits, 1);
    CHECK_INT(s.misses, 0);
    CHECK_INT(s.entries, 1);
    CHECK_INT(s.bytes, COST(3, 5));
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

TEST(cache_get_of_another_key_is_a_miss_even_a_prefix_or_an_extension)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 60000);
    CHECK_INT(gyre_cache_put(c, LIT("ab"), LIT("v"), 0), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    CHECK_INT(gyre_cache_get(c, LIT("a"), 0, &out), 0);
    CHECK_INT(gyre_cache_get(c, LIT("abc"), 0, &out), 0);
    CHECK_INT(gyre_cache_get(c, LIT("ba"), 0, &out), 0);
    CHECK_INT(out.len, 0);
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.hits, 0);
    CHECK_INT(s.misses, 3);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

TEST(cache_put_of_a_stored_key_replaces_its_value)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 60000);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("old value"), 0), 0);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("new"), 0), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 0, &out), 1);
    CHECK_STR(out.base, "new");
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 1);
    CHECK_INT(s.bytes, COST(1, 3));
    CHECK_INT(s.evictions, 0);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

TEST(cache_get_into_a_buffer_too_small_is_e2big_and_keeps_the_entry)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 60000);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("0123456789"), 0), 0);
    gyre_buf_t small, big;
    gyre_buf_init(&small, 4);
    gyre_buf_init(&big, 64);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 0, &small), -E2BIG);
    CHECK_INT(small.len, 0);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 0, &big), 1);
    CHECK_STR(big.base, "0123456789");
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.hits, 1);
    CHECK_INT(s.misses, 0);
    gyre_buf_dispose(&small);
    gyre_buf_dispose(&big);
    gyre_cache_destroy(c);
}

TEST(cache_keeps_a_thousand_entries_apart_as_the_table_grows)
{
    gyre_cache_t *c = gyre_cache_create(1 << 24, 0);
    char k[32], v[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        CHECK_INT(gyre_cache_put(c, k, strlen(k), v, strlen(v), 0), 0);
    }
    gyre_buf_t out;
    gyre_buf_init(&out, 64);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        gyre_buf_reset(&out);
        CHECK_INT(gyre_cache_get(c, k, strlen(k), 0, &out), 1);
        CHECK_STR(out.base, v);
    }
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 1000);
    CHECK_INT(s.hits, 1000);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

/* --- expiry --------------------------------------------------------------- */

TEST(cache_entry_is_fresh_until_ttl_has_passed_then_a_miss_that_removes_it)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 500);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("v"), 1000), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 64);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 1499, &out), 1);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 1500, &out), 0);
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.hits, 1);
    CHECK_INT(s.misses, 1);
    CHECK_INT(s.expirations, 1);
    CHECK_INT(s.entries, 0);
    CHECK_INT(s.bytes, 0);
    /* Gone, not merely hidden: going back in time does not bring it back. */
    CHECK_INT(gyre_cache_get(c, LIT("k"), 1000, &out), 0);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

TEST(cache_a_get_does_not_extend_an_entrys_life)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 500);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("v"), 1000), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 64);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 1400, &out), 1);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 1500, &out), 0);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

TEST(cache_with_ttl_0_never_expires)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 0);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("v"), 0), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 64);
    CHECK_INT(gyre_cache_get(c, LIT("k"), UINT64_MAX, &out), 1);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

TEST(cache_a_now_before_the_store_is_not_an_age)
{
    gyre_cache_t *c = gyre_cache_create(1 << 20, 500);
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("v"), 1000), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 64);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 999, &out), 1);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

/* --- the byte bound ------------------------------------------------------- */

/* 1024 bytes hold six entries of a 2-byte key and a 100-byte value (166 each, 996 in all). */
#define BOUND 1024
static char value100[100];

static void put_k(gyre_cache_t *c, int i, uint64_t now)
{
    char k[3];
    snprintf(k, sizeof(k), "k%d", i);
    memset(value100, 'a' + i, sizeof(value100));
    CHECK_INT(gyre_cache_put(c, k, 2, value100, sizeof(value100), now), 0);
}

static int has_k(gyre_cache_t *c, int i, uint64_t now)
{
    char k[3];
    snprintf(k, sizeof(k), "k%d", i);
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    int r = gyre_cache_get(c, k, 2, now, &out);
    if (r == 1 && (out.len != 100 || out.base[0] != 'a' + i || out.base[99] != 'a' + i))
        r = -1;
    gyre_buf_dispose(&out);
    return r;
}

TEST(cache_evicts_the_least_recently_used_entry_to_stay_under_the_bound)
{
    gyre_cache_t *c = gyre_cache_create(BOUND, 60000);
    for (int i = 1; i <= 6; i++)
        put_k(c, i, 0);
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 6);
    CHECK_INT(s.bytes, 6 * COST(2, 100));
    CHECK_INT(s.evictions, 0);
    /* k1 was stored first but is read now: k2 becomes the least recently used. */
    CHECK_INT(has_k(c, 1, 0), 1);
    put_k(c, 7, 0);
    CHECK_INT(has_k(c, 2, 0), 0);
    /* The next to go is k3: reading k4..k7 and k1 does not touch it. */
    put_k(c, 8, 0);
    CHECK_INT(has_k(c, 3, 0), 0);
    for (int i = 4; i <= 8; i++)
        CHECK_INT(has_k(c, i, 0), 1);
    CHECK_INT(has_k(c, 1, 0), 1);
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 6);
    CHECK_INT(s.bytes, 6 * COST(2, 100));
    CHECK_INT(s.evictions, 2);
    CHECK_INT(s.expirations, 0);
    gyre_cache_destroy(c);
}

TEST(cache_a_bigger_value_evicts_as_many_old_entries_as_it_needs)
{
    gyre_cache_t *c = gyre_cache_create(BOUND, 60000);
    for (int i = 1; i <= 6; i++)
        put_k(c, i, 0);
    /* 996 + 2 + 128 + 64 = 1190: k1 (166) must go to reach 1024. */
    char big[128];
    memset(big, 'z', sizeof(big));
    CHECK_INT(gyre_cache_put(c, LIT("kz"), big, sizeof(big), 0), 0);
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 6);
    CHECK_INT(s.bytes, 5 * COST(2, 100) + COST(2, 128));
    CHECK_INT(s.evictions, 1);
    CHECK_INT(has_k(c, 1, 0), 0);
    CHECK_INT(has_k(c, 2, 0), 1);
    gyre_cache_destroy(c);
}

TEST(cache_an_expired_entry_dropped_to_make_room_counts_as_an_expiration)
{
    gyre_cache_t *c = gyre_cache_create(BOUND, 500);
    put_k(c, 1, 0);
    for (int i = 2; i <= 6; i++)
        put_k(c, i, 400);
    put_k(c, 7, 600); /* k1 (stored at 0) is both the oldest and expired */
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.expirations, 1);
    CHECK_INT(s.evictions, 0);
    CHECK_INT(s.entries, 6);
    gyre_cache_destroy(c);
}

TEST(cache_refuses_a_value_larger_than_an_eighth_of_the_bound)
{
    gyre_cache_t *c = gyre_cache_create(BOUND, 60000);
    char v[129];
    memset(v, 'v', sizeof(v));
    CHECK_INT(gyre_cache_put(c, LIT("k"), v, 129, 0), -E2BIG);
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 0);
    CHECK_INT(s.bytes, 0);
    CHECK_INT(gyre_cache_put(c, LIT("k"), v, 128, 0), 0);
    gyre_cache_stats(c, &s);
    CHECK_INT(s.entries, 1);
    CHECK_INT(s.bytes, COST(1, 128));
    gyre_cache_destroy(c);
}

TEST(cache_refuses_a_key_larger_than_an_eighth_of_the_bound)
{
    gyre_cache_t *c = gyre_cache_create(BOUND, 60000);
    char k[129];
    memset(k, 'k', sizeof(k));
    CHECK_INT(gyre_cache_put(c, k, 129, LIT("v"), 0), -E2BIG);
    CHECK_INT(gyre_cache_put(c, k, 128, LIT("v"), 0), 0);
    gyre_cache_destroy(c);
}

TEST(cache_refused_value_leaves_an_older_value_of_the_key_in_place)
{
    gyre_cache_t *c = gyre_cache_create(BOUND, 60000);
    char v[129];
    memset(v, 'v', sizeof(v));
    CHECK_INT(gyre_cache_put(c, LIT("k"), LIT("old"), 0), 0);
    CHECK_INT(gyre_cache_put(c, LIT("k"), v, sizeof(v), 0), -E2BIG);
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    CHECK_INT(gyre_cache_get(c, LIT("k"), 0, &out), 1);
    CHECK_STR(out.base, "old");
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}

/* --- threads -------------------------------------------------------------- */

#define THREADS 4
#define OPS 10000
#define KEYS 64

typedef struct worker {
    gyre_cache_t *c;
    unsigned seed;
    long gets, hits, wrong;
} worker_t;

/* Each key's value is its name repeated to a length of its own, so a torn or mixed-up copy shows. */
static size_t value_for(int key, char *v, size_t cap)
{
    size_t n = 10 + (size_t)key * 3 % 90;
    for (size_t i = 0; i < n && i < cap; i++)
        v[i] = (char)('A' + (key + (int)i) % 26);
    return n;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    char k[16], v[128];
    for (int i = 0; i < OPS; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        int key = (int)(w->seed >> 16) % KEYS;
        snprintf(k, sizeof(k), "key-%d", key);
        uint64_t now = (uint64_t)i; /* the TTL is shorter than the run: some gets find expired entries */
        if ((w->seed >> 8) % 3 == 0) {
            size_t n = value_for(key, v, sizeof(v));
            gyre_cache_put(w->c, k, strlen(k), v, n, now);
        } else {
            gyre_buf_reset(&out);
            int r = gyre_cache_get(w->c, k, strlen(k), now, &out);
            w->gets++;
            if (r == 1) {
                w->hits++;
                size_t n = value_for(key, v, sizeof(v));
                if (out.len != n || memcmp(out.base, v, n) != 0)
                    w->wrong++;
            }
        }
    }
    gyre_buf_dispose(&out);
    return NULL;
}

TEST(cache_four_threads_share_a_small_cache_without_losing_count_or_mixing_values)
{
    /* 2 KiB holds about a dozen of the 64 keys: eviction happens all the time. */
    gyre_cache_t *c = gyre_cache_create(2048, 2000);
    pthread_t t[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){c, (unsigned)(i + 1) * 2654435761u, 0, 0, 0};
        CHECK_INT(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    long gets = 0, hits = 0, wrong = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        gets += w[i].gets;
        hits += w[i].hits;
        wrong += w[i].wrong;
    }
    gyre_cache_stats_t s;
    gyre_cache_stats(c, &s);
    CHECK_INT(wrong, 0);
    CHECK_INT(s.hits, hits);
    CHECK_INT(s.hits + s.misses, gets);
    CHECK(s.hits > 0);
    CHECK(s.evictions > 0);
    CHECK(s.bytes <= 2048);
    /* The counters agree with what is actually there. */
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    size_t found = 0, bytes = 0;
    for (int key = 0; key < KEYS; key++) {
        char k[16];
        snprintf(k, sizeof(k), "key-%d", key);
        gyre_buf_reset(&out);
        if (gyre_cache_get(c, k, strlen(k), OPS - 1, &out) == 1) {
            found++;
            bytes += COST(strlen(k), out.len);
        }
    }
    gyre_cache_stats_t after;
    gyre_cache_stats(c, &after);
    CHECK_INT(after.entries, found);
    CHECK_INT(after.bytes, bytes);
    gyre_buf_dispose(&out);
    gyre_cache_destroy(c);
}
