/*
 * The store's conformance suite (store_conformance.c): the table of cases
 * every backend runs, each a function of the DSN of a fresh, empty store.
 * Adding a case: a line here and its function.  Adding a backend: a
 * gyre_store_backend_t and one GYRE_STORE_BACKEND line.
 */
#ifndef GYRE_TESTS_STORE_CONFORMANCE_H
#define GYRE_TESTS_STORE_CONFORMANCE_H

#include "store/store.h"
#include "test.h"

/* The table: every case, by name. */
#define GYRE_STORE_CASES(X)                                                                                          \
    X(reopening_keeps_its_traces_and_runs_no_migration_twice) \
    X(reads_back_every_field_exactly) \
    X(unknown_cost_tokens_ttft_and_bodies_read_back_as_null_and_no_otel_trace_is_its_own) \
    X(get_trace_of_an_unknown_id_is_enoent_and_appends_nothing) \
    X(large_body_round_trips_through_zstd) \
    X(a_failing_batch_writes_nothing) \
    X(writing_a_stored_trace_again_is_a_no_op_so_spool_replay_is_safe) \
    X(query_filters_each_field_newest_first) \
    X(free_text_finds_words_of_the_prompt_or_the_answer_not_json_keys) \
    X(free_text_matches_calls_with_all_its_words_in_any_order_and_place) \
    X(free_text_folds_case_and_accents_and_splits_at_unicode_punctuation) \
    X(pages_through_250_traces_by_100_without_duplicates_or_gaps) \
    X(a_cursor_it_did_not_make_is_einval) \
    X(summaries_leave_the_bodies_out) \
    X(session_reads_back_oldest_first_with_bodies) \
    X(an_answer_past_the_buffer_max_is_e2big_and_leaves_the_buffer) \
    X(query_filters_by_otel_trace_id) \
    X(a_body_with_ill_formed_utf8_reads_back_as_a_json_string_with_u_fffd) \
    X(stats_totals_groups_and_hour_buckets_of_a_known_set) \
    X(stats_filters_and_groups_by_each_dimension) \
    X(stats_edges_that_no_whole_minute_covers_are_read_from_the_traces) \
    X(stats_an_empty_range_has_zero_requests_and_null_percentiles) \
    X(stats_cost_is_null_when_no_call_had_a_known_cost_and_ttft_null_without_streams) \
    X(stats_a_replayed_trace_is_not_counted_twice) \
    X(stats_too_many_buckets_is_einval_naming_bucket) \
    X(stats_the_rollup_equals_a_full_scan_of_random_traces) \
    X(insert_batch_commits_the_mark_with_its_items_and_a_replay_is_a_no_op) \
    X(bodies_kept_in_the_log_are_read_through_the_body_reader) \
    X(the_text_an_indexer_gives_is_what_free_text_finds) \
    X(drop_segments_removes_older_segments_traces_and_keeps_the_rollup) \
    X(reset_empties_the_index_its_text_rollup_and_mark) \
    X(info_counts_the_traces_their_range_the_mark_and_the_bytes) \
    X(traces_filter_by_the_gateway_key_and_its_team) \
    X(stats_group_by_key_and_team_sums_the_cost_exactly) \
    X(scores_and_feedback_read_back_oldest_first_with_the_sessions_feedback) \
    X(scan_scores_reads_a_range_by_trace_start_and_filters_by_name) \
    X(the_newest_clustering_run_is_shown_on_traces_and_filters_them) \
    X(a_trace_shows_its_feedback_and_its_scores_apart) \
    X(scan_bodies_streams_matching_traces_oldest_first_with_raw_bodies_and_cluster) \
    X(retention_takes_a_traces_scores_and_cluster_and_a_reset_keeps_them) \

#define GYRE_STORE_CASE_DECLARE(name) void gyre_store_case_##name(const char *dsn);
GYRE_STORE_CASES(GYRE_STORE_CASE_DECLARE)

/* How a backend makes the DSN of a fresh, empty store for one case, and removes it after. */
typedef struct gyre_store_backend {
    const char *name;
    void (*fresh)(char *dsn, size_t len);
    void (*cleanup)(const char *dsn);
} gyre_store_backend_t;

/* Opens the case's store for writing (NULL, after saying why on stderr, when it cannot). */
gyre_store_t *gyre_store_case_open(const char *dsn);
/* Runs one case against a fresh store of backend `b`. */
void gyre_store_case_run(const gyre_store_backend_t *b, void (*fn)(const char *dsn));

/*
 * One (backend, case) pair as the unit test store_conformance_<backend>_<case>, run in its own process.  A
 * backend registers the whole table with two lines:
 *   static const gyre_store_backend_t *const sqlite_case_backend = &sqlite_backend;
 *   #define SQLITE_CASE(name) GYRE_STORE_CASE_TEST(sqlite, name)
 *   GYRE_STORE_CASES(SQLITE_CASE)
 */
#define GYRE_STORE_CASE_TEST(backend, name)                                                                          \
    static void store_conformance_##backend##_##name(void)                                                          \
    {                                                                                                                \
        gyre_store_case_run(backend##_case_backend, gyre_store_case_##name);                                        \
    }                                                                                                                \
    __attribute__((constructor)) static void register_store_conformance_##backend##_##name(void)                    \
    {                                                                                                                \
        gyre_test_register("store_conformance_" #backend "_" #name, store_conformance_##backend##_##name);         \
    }
/* Helpers the suite and the backends' own tests share (store_conformance.c). */
/* A minimal trace: id n (as 32 hex digits), started at `us`. */
void gyre_store_case_mini(gyre_trace_t *t, int n, int64_t us);
int gyre_store_case_write1(gyre_store_t *s, const gyre_trace_t *t);
/* The ids of a page, "<n>,<n>,..." (the trace ids read back as numbers), and its next_cursor. */
void gyre_store_case_page_ids(const char *json, char *ids, size_t idslen, char *cursor, size_t curlen);
int gyre_store_case_query(gyre_store_t *s, const gyre_trace_query_t *q, char *ids, size_t idslen);

#endif
