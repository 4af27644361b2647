/*
 * The conformance suite's cases of the loop's store (issue 14; run for
 * every backend by store_conformance.c): scores and feedback appended and
 * read back in order, a range's scores, clustering runs (the newest one is
 * the one traces show and filter by), the corpus scan with its raw bodies,
 * and retention taking a trace's scores and cluster with it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_conformance.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

#define mini gyre_store_case_mini
#define write1 gyre_store_case_write1
#define query gyre_store_case_query

/* "name=value/label/source/version/comment/correction/created;" per score, NaN and NULL as "-". */
static int score_line_cb(void *ctx, const gyre_score_t *sc)
{
    gyre_buf_t *b = ctx;
    char v[32];
    if (isnan(sc->value))
        snprintf(v, sizeof(v), "-");
    else
        snprintf(v, sizeof(v), "%g", sc->value);
    gyre_buf_appendf(b, "%s%s%s%s=%s/%s/%d/%s/%s/%s/%lld;", sc->trace_id[0] ? "" : "[s:",
                     sc->trace_id[0] ? "" : sc->session, sc->trace_id[0] ? "" : "]", sc->name, v, sc->label ? sc->label : "-", sc->source, sc->version,
                     sc->comment ? sc->comment : "-", sc->correction ? sc->correction : "-",
                     (long long)sc->created_us);
    (void)sc->trace_started_us;
    return 0;
}

static int score_ids_cb(void *ctx, const gyre_score_t *sc)
{
    gyre_buf_t *b = ctx;
    gyre_buf_appendf(b, "%u:%s,", sc->trace_id[0] ? (unsigned)strtoul(sc->trace_id, NULL, 16) : 0u, sc->name);
    return 0;
}

static void two_traces(gyre_store_t *s)
{
    gyre_trace_t a, b;
    mini(&a, 1, 1000);
    a.session = TS("sess");
    mini(&b, 2, 2000);
    b.session = TS("sess");
    CHECK_INT(write1(s, &a), 0);
    CHECK_INT(write1(s, &b), 0);
}

void gyre_store_case_scores_and_feedback_read_back_oldest_first_with_the_sessions_feedback(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    two_traces(s);
    const char *t1 = "00000000000000000000000000000001", *t2 = "00000000000000000000000000000002";
    gyre_score_t sc[] = {
        {t1, "sess", "helpful", GYRE_SCORE_HUMAN, "", 1, NULL, "good", "Say hi.", 30, 1000},
        {t1, "sess", "json", GYRE_SCORE_HEURISTIC, "v1", 0, NULL, NULL, NULL, 10, 1000},
        {t2, "sess", "json", GYRE_SCORE_HEURISTIC, "v1", 1, NULL, NULL, NULL, 10, 2000},
        {"", "sess", "tone", GYRE_SCORE_HUMAN, "", NAN, "rude", NULL, NULL, 20, 0},
        {t1, "sess", "json", GYRE_SCORE_HEURISTIC, "v2", 1, NULL, NULL, NULL, 30, 1000},
    };
    char err[256] = "";
    CHECK_INT(gyre_store_write_scores(s, sc, 5, err, sizeof(err)), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    CHECK_INT(gyre_store_trace_scores(s, t1, score_line_cb, &b, err, sizeof(err)), 0);
    /* By time; two at the same instant in the order they were written. */
    CHECK_STR(b.base, "json=0/-/2/v1/-/-/10;[s:sess]tone=-/rude/1//-/-/20;helpful=1/-/1//good/Say hi./30;"
                      "json=1/-/2/v2/-/-/30;");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_trace_scores(s, "00000000000000000000000000000009", score_line_cb, &b, err, sizeof(err)), 0);
    CHECK_INT(b.len, 0);
    /* A score without a name is refused, and the batch with it writes nothing. */
    gyre_score_t bad[] = {{t2, "", "ok", GYRE_SCORE_JUDGE, "j1", 1, NULL, NULL, NULL, 40, 2000},
                          {t2, "", "", GYRE_SCORE_JUDGE, "j1", 1, NULL, NULL, NULL, 40, 2000}};
    CHECK_INT(gyre_store_write_scores(s, bad, 2, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "store: a score without a name");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_trace_scores(s, t2, score_line_cb, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "json=1/-/2/v1/-/-/10;[s:sess]tone=-/rude/1//-/-/20;");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_scan_scores_reads_a_range_by_trace_start_and_filters_by_name(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    two_traces(s);
    const char *t1 = "00000000000000000000000000000001", *t2 = "00000000000000000000000000000002";
    gyre_score_t sc[] = {
        {t2, "sess", "a", GYRE_SCORE_HEURISTIC, "v1", 1, NULL, NULL, NULL, 5, 2000},
        {t1, "sess", "b", GYRE_SCORE_HEURISTIC, "v1", 1, NULL, NULL, NULL, 6, 1000},
        {t1, "sess", "a", GYRE_SCORE_HEURISTIC, "v1", 1, NULL, NULL, NULL, 7, 1000},
        {"", "sess", "a", GYRE_SCORE_HUMAN, "", 1, NULL, NULL, NULL, 8, 0},
        {"", "other", "a", GYRE_SCORE_HUMAN, "", 1, NULL, NULL, NULL, 9, 0},
    };
    char err[256] = "";
    CHECK_INT(gyre_store_write_scores(s, sc, 5, err, sizeof(err)), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    CHECK_INT(gyre_store_scan_scores(s, 0, 0, NULL, score_ids_cb, &b, err, sizeof(err)), 0);
    /* A session's feedback first (its session has a trace in range; "other" has none), then by trace start. */
    CHECK_STR(b.base, "0:a,1:b,1:a,2:a,");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_scan_scores(s, 1500, 3000, "a", score_ids_cb, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "0:a,2:a,");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_scan_scores(s, 3000, 0, NULL, score_ids_cb, &b, err, sizeof(err)), 0);
    CHECK_INT(b.len, 0);
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_the_newest_clustering_run_is_shown_on_traces_and_filters_them(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t;
    for (int i = 1; i <= 4; i++) {
        mini(&t, i, i * 1000);
        CHECK_INT(write1(s, &t), 0);
    }
    char err[256] = "", ids[256];
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_cluster_run(s, &b, err, sizeof(err)), -ENOENT);
    CHECK_STR(err, "no clustering run is stored");
    gyre_cluster_assign_t first[] = {{"00000000000000000000000000000001", 0},
                                     {"00000000000000000000000000000002", 0},
                                     {"00000000000000000000000000000003", 1}};
    CHECK_INT(gyre_store_put_cluster_run(s, "run-a", 100, "{\"run\":\"a\"}", 11, first, 3, err, sizeof(err)), 0);
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 0}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "2,1");
    gyre_cluster_assign_t second[] = {{"00000000000000000000000000000002", 5},
                                      {"00000000000000000000000000000004", 5}};
    CHECK_INT(gyre_store_put_cluster_run(s, "run-b", 200, "{\"run\":\"b\"}", 11, second, 2, err, sizeof(err)), 0);
    /* An older run stored later keeps its JSON but does not replace what traces show. */
    CHECK_INT(gyre_store_put_cluster_run(s, "run-old", 50, "{\"run\":\"old\"}", 13, first, 3, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_put_cluster_run(s, "run-b", 300, "{}", 2, second, 2, err, sizeof(err)), -EEXIST);
    CHECK_STR(err, "store: clustering run run-b is stored already");
    CHECK_INT(gyre_store_get_cluster_run(s, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "{\"run\":\"b\"}");
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 0}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 5}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "4,2");
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 5, .from_us = 3000}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "4");
    int32_t c = 7;
    char run[64];
    CHECK_INT(gyre_store_trace_cluster(s, "00000000000000000000000000000004", &c, run, sizeof(run), err, sizeof(err)),
              0);
    CHECK_INT(c, 5);
    CHECK_STR(run, "run-b");
    CHECK_INT(gyre_store_trace_cluster(s, "00000000000000000000000000000001", &c, run, sizeof(run), err, sizeof(err)),
              -ENOENT);
    CHECK_INT(c, -1);
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_get_trace(s, "00000000000000000000000000000004", &b, err, sizeof(err)), 0);
    CHECK(strstr(b.base, ",\"response_body\":null,\"feedback\":[],\"scores\":[],\"cluster\":{\"id\":5,\"run\":\"run-b\"}}") != NULL);
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

void gyre_store_case_a_trace_shows_its_feedback_and_its_scores_apart(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    two_traces(s);
    const char *t1 = "00000000000000000000000000000001";
    gyre_score_t sc[] = {
        {t1, "sess", "helpful", GYRE_SCORE_HUMAN, "", 0, NULL, "too \"short\"", "Hello there.", 30, 1000},
        {t1, "sess", "json", GYRE_SCORE_HEURISTIC, "v1", 1, NULL, NULL, NULL, 10, 1000},
        {"", "sess", "tone", GYRE_SCORE_HUMAN, "", NAN, "rude", NULL, NULL, 20, 0},
        {t1, "sess", "correct", GYRE_SCORE_JUDGE, "j2", 0.75, NULL, "mostly", NULL, 40, 1000},
    };
    char err[256] = "";
    CHECK_INT(gyre_store_write_scores(s, sc, 4, err, sizeof(err)), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_store_get_trace(s, t1, &b, err, sizeof(err)), 0);
    const char *loop = strstr(b.base, ",\"feedback\":");
    CHECK(loop != NULL);
    CHECK_STR(loop != NULL ? loop : "",
              ",\"feedback\":[{\"name\":\"tone\",\"value\":null,\"label\":\"rude\",\"comment\":null,\"correction\":null,"
              "\"session\":true,\"created_us\":20},"
              "{\"name\":\"helpful\",\"value\":0,\"label\":null,\"comment\":\"too \\\"short\\\"\","
              "\"correction\":\"Hello there.\",\"session\":false,\"created_us\":30}],"
              "\"scores\":[{\"name\":\"json\",\"source\":\"heuristic\",\"version\":\"v1\",\"value\":1,\"label\":null,"
              "\"comment\":null},"
              "{\"name\":\"correct\",\"source\":\"judge\",\"version\":\"j2\",\"value\":0.75,\"label\":null,"
              "\"comment\":\"mostly\"}],\"cluster\":null}");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}

typedef struct scan_seen {
    gyre_buf_t out;
} scan_seen_t;

static int scan_row_cb(void *ctx, const gyre_store_row_t *row)
{
    scan_seen_t *c = ctx;
    gyre_buf_appendf(&c->out, "%u|%.*s|%.*s|%d;", (unsigned)strtoul(row->trace_id.p, NULL, 16),
                     row->request_body.p ? (int)row->request_body.len : 1,
                     row->request_body.p ? (const char *)row->request_body.p : "-",
                     row->response_body.p ? (int)row->response_body.len : 1,
                     row->response_body.p ? (const char *)row->response_body.p : "-", row->cluster);
    return 0;
}

static int log_read_cb(void *ctx, const gyre_store_body_ref_t *ref, gyre_buf_t *req, int *has_req, gyre_buf_t *resp,
                       int *has_resp, char *err, size_t errlen)
{
    (void)ctx;
    if (ref->segment == 9) {
        snprintf(err, errlen, "trace log: segment 9 is gone");
        return -ENOENT;
    }
    gyre_buf_appendf(req, "log-req-%llu", (unsigned long long)ref->offset);
    *has_req = 1;
    *has_resp = 0;
    (void)resp;
    return 0;
}

void gyre_store_case_scan_bodies_streams_matching_traces_oldest_first_with_raw_bodies_and_cluster(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t[5];
    gyre_store_item_t items[5];
    for (int i = 0; i < 5; i++) {
        mini(&t[i], i + 1, (5 - i) * 1000); /* written newest first */
        t[i].request_body = TS("{\"q\":1}");
        t[i].response_body = TS("{\"a\":2}");
        t[i].agent = i == 1 ? TS("other") : TS("bot");
        /* Two rows hold their bodies (segment 0); two are in the log; one's segment is gone. */
        uint64_t seg = i < 2 ? 0 : (i == 4 ? 9 : 3);
        items[i] = (gyre_store_item_t){&t[i], {seg, (uint64_t)i * 100, seg ? 10 : 0}, {NULL, 0}};
    }
    char err[256] = "";
    CHECK_INT(gyre_store_insert_batch(s, items, 5, NULL, err, sizeof(err)), 0);
    gyre_cluster_assign_t as[] = {{"00000000000000000000000000000003", 2}};
    CHECK_INT(gyre_store_put_cluster_run(s, "r", 1, "{}", 2, as, 1, err, sizeof(err)), 0);
    gyre_store_set_body_reader(s, log_read_cb, NULL);
    scan_seen_t c;
    gyre_buf_init(&c.out, 1 << 16);
    CHECK_INT(gyre_store_scan_bodies(s, &(gyre_trace_query_t){.agent = "bot", .limit = 1}, scan_row_cb, &c, err,
                                     sizeof(err)),
              0);
    CHECK_STR(c.out.base, "5|-|-|-1;4|log-req-300|-|-1;3|log-req-200|-|2;1|{\"q\":1}|{\"a\":2}|-1;");
    gyre_buf_reset(&c.out);
    CHECK_INT(gyre_store_scan_bodies(s, &(gyre_trace_query_t){.from_us = 2000, .to_us = 4000}, scan_row_cb, &c, err,
                                     sizeof(err)),
              0);
    CHECK_STR(c.out.base, "4|log-req-300|-|-1;3|log-req-200|-|2;");
    gyre_buf_dispose(&c.out);
    gyre_store_close(s);
}

void gyre_store_case_retention_takes_a_traces_scores_and_cluster_and_a_reset_keeps_them(const char *dsn)
{
    gyre_store_t *s = gyre_store_case_open(dsn);
    gyre_trace_t t[3];
    gyre_store_item_t items[3];
    for (int i = 0; i < 3; i++) {
        mini(&t[i], i + 1, (i + 1) * 1000);
        items[i] = (gyre_store_item_t){&t[i], {(uint64_t)i + 1, 0, 10}, {NULL, 0}};
    }
    char err[256] = "";
    CHECK_INT(gyre_store_insert_batch(s, items, 3, NULL, err, sizeof(err)), 0);
    gyre_score_t sc[3];
    gyre_cluster_assign_t as[3];
    for (int i = 0; i < 3; i++) {
        sc[i] = (gyre_score_t){t[i].trace_id, "", "q", GYRE_SCORE_HEURISTIC, "v", 1, NULL, NULL, NULL, 1,
                               t[i].started_us};
        as[i] = (gyre_cluster_assign_t){t[i].trace_id, 1};
    }
    CHECK_INT(gyre_store_write_scores(s, sc, 3, err, sizeof(err)), 0);
    CHECK_INT(gyre_store_put_cluster_run(s, "r", 1, "{}", 2, as, 3, err, sizeof(err)), 0);
    /* Segment 1 dropped; trace 2 deleted one by one. */
    CHECK_INT(gyre_store_drop_segments(s, 2, err, sizeof(err)), 0);
    const gyre_trace_t *del[] = {&t[1]};
    CHECK_INT(gyre_store_delete_traces(s, del, 1, err, sizeof(err)), 0);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    CHECK_INT(gyre_store_scan_scores(s, 0, 0, NULL, score_ids_cb, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "3:q,");
    char ids[64];
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 1}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "3");
    int32_t c;
    char run[64];
    CHECK_INT(gyre_store_trace_cluster(s, t[0].trace_id, &c, run, sizeof(run), err, sizeof(err)), -ENOENT);
    CHECK_INT(gyre_store_trace_cluster(s, t[1].trace_id, &c, run, sizeof(run), err, sizeof(err)), -ENOENT);
    /* A reset (a reindex) empties the index but keeps the scores and the clusterings, which the trace log does
     * not hold: the trace read back from the log has its score and its cluster again. */
    CHECK_INT(gyre_store_reset(s, err, sizeof(err)), 0);
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_scan_scores(s, 0, 0, NULL, score_ids_cb, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "3:q,");
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 1}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "");
    CHECK_INT(gyre_store_insert_batch(s, &items[2], 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(query(s, &(gyre_trace_query_t){.has_cluster = 1, .cluster = 1}, ids, sizeof(ids)), 0);
    CHECK_STR(ids, "3");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_store_get_cluster_run(s, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "{}");
    gyre_buf_dispose(&b);
    gyre_store_close(s);
}
