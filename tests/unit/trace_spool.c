/*
 * src/trace/spool.c: every field of a trace survives the spool exactly;
 * records come back in order; a torn or corrupt tail is cut off at open
 * and every whole record before it is kept; the bound refuses and counts.
 */
#include "trace/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

static char path[64];

static const char *tmp_path(void)
{
    snprintf(path, sizeof(path), "/tmp/gyre-spool-test-%d", (int)getpid());
    unlink(path);
    return path;
}

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static gyre_spool_t *open_ok(const char *p)
{
    gyre_spool_t *s = NULL;
    char err[256];
    CHECK_INT(gyre_spool_open(p, 0, &s, err, sizeof(err)), 0);
    return s;
}

/* A trace with every field set to something other than its zero. */
static void full_trace(gyre_trace_t *t, int n)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->trace_id, sizeof(t->trace_id), "%032x", n);
    strcpy(t->span_id, "00f067aa0ba902b7");
    strcpy(t->parent_span_id, "b7ad6b7169203331");
    t->request_id = TS("req-1");
    t->started_us = 1700000000123456;
    t->ended_us = 1700000000987654;
    t->ttft_us = -1;
    t->endpoint = TS("/v1/chat/completions");
    t->route = TS("chat");
    t->provider = TS("openai");
    t->model = TS("gpt-4o");
    t->status = 200;
    t->stream = 1;
    t->cache_hit = 1;
    t->finish_reason = TS("stop");
    t->prompt_tokens = 12;
    t->completion_tokens = 34;
    t->cached_tokens = -1;
    t->reasoning_tokens = 5;
    t->cost_usd = 0.000125;
    t->nattempts = 2;
    t->attempts[0] = (gyre_trace_attempt_t){TS("anthropic"), TS("claude"), TS("anthropic#0"), 0, 17, 2500,
                                            TS("connect refused")};
    t->attempts[1] = (gyre_trace_attempt_t){TS("openai"), TS("gpt-4o"), TS("openai#1"), 200, 2600, 90000, TS("")};
    t->session = TS("s-9");
    t->agent = TS("planner");
    t->user = TS("u\0x"); /* a NUL inside a string: lengths, not terminators */
    t->ntags = 2;
    t->tags[0] = TS("a");
    t->tags[1] = TS("b");
    t->nmeta = 1;
    t->meta[0].key = TS("team");
    t->meta[0].value = TS("infra");
    t->request_body = TS("{\"model\":\"chat\"}");
    t->response_body = TS("{\"choices\":[]}");
}

static int tstr_eq(gyre_tstr_t a, gyre_tstr_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void check_same(const gyre_trace_t *a, const gyre_trace_t *b)
{
    CHECK_STR(a->trace_id, b->trace_id);
    CHECK_STR(a->span_id, b->span_id);
    CHECK_STR(a->parent_span_id, b->parent_span_id);
    CHECK(tstr_eq(a->request_id, b->request_id));
    CHECK_INT(a->started_us, b->started_us);
    CHECK_INT(a->ended_us, b->ended_us);
    CHECK_INT(a->ttft_us, b->ttft_us);
    CHECK(tstr_eq(a->endpoint, b->endpoint));
    CHECK(tstr_eq(a->route, b->route));
    CHECK(tstr_eq(a->provider, b->provider));
    CHECK(tstr_eq(a->model, b->model));
    CHECK_INT(a->status, b->status);
    CHECK_INT(a->stream, b->stream);
    CHECK_INT(a->cache_hit, b->cache_hit);
    CHECK(tstr_eq(a->finish_reason, b->finish_reason));
    CHECK_INT(a->prompt_tokens, b->prompt_tokens);
    CHECK_INT(a->completion_tokens, b->completion_tokens);
    CHECK_INT(a->cached_tokens, b->cached_tokens);
    CHECK_INT(a->reasoning_tokens, b->reasoning_tokens);
    CHECK(memcmp(&a->cost_usd, &b->cost_usd, sizeof(double)) == 0);
    CHECK_INT(a->nattempts, b->nattempts);
    for (size_t i = 0; i < a->nattempts && i < b->nattempts; i++) {
        CHECK(tstr_eq(a->attempts[i].provider, b->attempts[i].provider));
        CHECK(tstr_eq(a->attempts[i].model, b->attempts[i].model));
        CHECK(tstr_eq(a->attempts[i].key_id, b->attempts[i].key_id));
        CHECK_INT(a->attempts[i].status, b->attempts[i].status);
        CHECK_INT(a->attempts[i].started_us, b->attempts[i].started_us);
        CHECK_INT(a->attempts[i].latency_us, b->attempts[i].latency_us);
        CHECK(tstr_eq(a->attempts[i].error, b->attempts[i].error));
    }
    CHECK(tstr_eq(a->session, b->session));
    CHECK(tstr_eq(a->agent, b->agent));
    CHECK(tstr_eq(a->user, b->user));
    CHECK_INT(a->ntags, b->ntags);
    for (size_t i = 0; i < a->ntags && i < b->ntags; i++)
        CHECK(tstr_eq(a->tags[i], b->tags[i]));
    CHECK_INT(a->nmeta, b->nmeta);
    for (size_t i = 0; i < a->nmeta && i < b->nmeta; i++) {
        CHECK(tstr_eq(a->meta[i].key, b->meta[i].key));
        CHECK(tstr_eq(a->meta[i].value, b->meta[i].value));
    }
    CHECK(tstr_eq(a->request_body, b->request_body));
    CHECK(tstr_eq(a->response_body, b->response_body));
}

static long long record_size(const gyre_trace_t *t)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_spool_encode(t, &b);
    long long n = (long long)b.len;
    gyre_buf_dispose(&b);
    return n;
}

TEST(trace_spool_new_file_holds_only_the_header)
{
    const char *p = tmp_path();
    gyre_spool_t *s = open_ok(p);
    CHECK_INT(file_size(p), GYRE_SPOOL_HEADER_SIZE);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_round_trips_every_field_of_a_trace_across_a_reopen)
{
    const char *p = tmp_path();
    gyre_trace_t a, b;
    full_trace(&a, 1);
    full_trace(&b, 2);
    b.cost_usd = NAN; /* unknown cost stays unknown */
    b.nattempts = 0;
    b.ntags = 0;
    b.nmeta = 0;
    b.parent_span_id[0] = '\0';
    gyre_spool_t *s = open_ok(p);
    CHECK_INT(gyre_spool_append(s, &a), 0);
    CHECK_INT(gyre_spool_append(s, &b), 0);
    CHECK_INT(file_size(p), GYRE_SPOOL_HEADER_SIZE + record_size(&a) + record_size(&b));
    gyre_spool_close(s);

    s = open_ok(p);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.recovered, 2);
    CHECK_INT(st.records, 2);
    CHECK_INT(st.truncated_bytes, 0);
    gyre_trace_t *out[4];
    CHECK_INT(gyre_spool_read(s, out, 4), 2);
    check_same(out[0], &a);
    check_same(out[1], &b);
    CHECK(isnan(out[1]->cost_usd));
    free(out[0]);
    free(out[1]);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_read_without_ack_reads_the_same_records_again)
{
    const char *p = tmp_path();
    gyre_trace_t t;
    gyre_spool_t *s = open_ok(p);
    for (int i = 0; i < 3; i++) {
        full_trace(&t, i);
        CHECK_INT(gyre_spool_append(s, &t), 0);
    }
    gyre_trace_t *out[2];
    CHECK_INT(gyre_spool_read(s, out, 2), 2);
    CHECK_STR(out[0]->trace_id, "00000000000000000000000000000000");
    free(out[0]);
    free(out[1]);
    CHECK_INT(gyre_spool_read(s, out, 2), 2);
    CHECK_STR(out[0]->trace_id, "00000000000000000000000000000000");
    free(out[0]);
    free(out[1]);
    CHECK_INT(gyre_spool_ack(s), 0);
    CHECK_INT(gyre_spool_read(s, out, 2), 1);
    CHECK_STR(out[0]->trace_id, "00000000000000000000000000000002");
    free(out[0]);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_ack_of_the_last_record_truncates_the_file_to_its_header)
{
    const char *p = tmp_path();
    gyre_trace_t t;
    full_trace(&t, 7);
    gyre_spool_t *s = open_ok(p);
    CHECK_INT(gyre_spool_append(s, &t), 0);
    gyre_trace_t *out[2];
    CHECK_INT(gyre_spool_read(s, out, 2), 1);
    free(out[0]);
    CHECK_INT(gyre_spool_ack(s), 0);
    CHECK_INT(file_size(p), GYRE_SPOOL_HEADER_SIZE);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.records, 0);
    CHECK_INT(st.bytes, 0);
    CHECK_INT(gyre_spool_read(s, out, 2), 0);
    gyre_spool_close(s);
    unlink(p);
}

/* Writes three records and returns the file size after the first and the second. */
static void three_records(const char *p, long long *after1, long long *after2)
{
    gyre_trace_t t;
    gyre_spool_t *s = open_ok(p);
    for (int i = 0; i < 3; i++) {
        full_trace(&t, i);
        CHECK_INT(gyre_spool_append(s, &t), 0);
        if (i == 0)
            *after1 = file_size(p);
        if (i == 1)
            *after2 = file_size(p);
    }
    gyre_spool_close(s);
}

TEST(trace_spool_torn_tail_is_cut_and_every_whole_record_before_it_replays)
{
    const char *p = tmp_path();
    long long after1, after2;
    three_records(p, &after1, &after2);
    CHECK_INT(truncate(p, file_size(p) - 5), 0); /* the third record cut mid-payload, as by a crash */
    gyre_spool_t *s = open_ok(p);
    CHECK_INT(file_size(p), after2);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.recovered, 2);
    CHECK_INT(st.truncated_bytes, after2 - after1 - 5);
    gyre_trace_t *out[4];
    CHECK_INT(gyre_spool_read(s, out, 4), 2);
    CHECK_STR(out[0]->trace_id, "00000000000000000000000000000000");
    CHECK_STR(out[1]->trace_id, "00000000000000000000000000000001");
    free(out[0]);
    free(out[1]);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_torn_record_header_is_cut)
{
    const char *p = tmp_path();
    long long after1, after2;
    three_records(p, &after1, &after2);
    CHECK_INT(truncate(p, after2 + 3), 0);
    gyre_spool_t *s = open_ok(p);
    CHECK_INT(file_size(p), after2);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.recovered, 2);
    CHECK_INT(st.truncated_bytes, 3);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_crc_mismatch_cuts_the_file_at_the_corrupt_record)
{
    const char *p = tmp_path();
    long long after1, after2;
    three_records(p, &after1, &after2);
    int fd = open(p, O_RDWR);
    char c;
    CHECK_INT(pread(fd, &c, 1, after1 + 20), 1);
    c ^= 0x40;
    CHECK_INT(pwrite(fd, &c, 1, after1 + 20), 1); /* inside the second record's payload */
    close(fd);
    gyre_spool_t *s = open_ok(p);
    CHECK_INT(file_size(p), after1);
    gyre_trace_t *out[4];
    CHECK_INT(gyre_spool_read(s, out, 4), 1);
    CHECK_STR(out[0]->trace_id, "00000000000000000000000000000000");
    free(out[0]);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_refuses_a_file_that_is_not_a_spool_and_leaves_it_alone)
{
    const char *p = tmp_path();
    FILE *f = fopen(p, "w");
    fputs("hello, world\n", f);
    fclose(f);
    gyre_spool_t *s = NULL;
    char err[256];
    CHECK_INT(gyre_spool_open(p, 0, &s, err, sizeof(err)), -EINVAL);
    CHECK(s == NULL);
    CHECK(strstr(err, "not a gyre spool") != NULL);
    CHECK_INT(file_size(p), 13);
    unlink(p);
}

TEST(trace_spool_second_open_of_the_same_file_is_busy)
{
    const char *p = tmp_path();
    gyre_spool_t *s = open_ok(p), *s2 = NULL;
    char err[256];
    CHECK_INT(gyre_spool_open(p, 0, &s2, err, sizeof(err)), -EBUSY);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_append_past_the_bound_is_refused_and_counted)
{
    const char *p = tmp_path();
    gyre_trace_t t;
    full_trace(&t, 1);
    long long one = record_size(&t);
    gyre_spool_t *s = NULL;
    char err[256];
    CHECK_INT(gyre_spool_open(p, (uint64_t)(GYRE_SPOOL_HEADER_SIZE + one + one / 2), &s, err, sizeof(err)), 0);
    CHECK_INT(gyre_spool_append(s, &t), 0);
    CHECK_INT(gyre_spool_append(s, &t), -ENOSPC);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.dropped, 1);
    CHECK_INT(st.records, 1);
    CHECK_INT(file_size(p), GYRE_SPOOL_HEADER_SIZE + one);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_decode_rejects_a_payload_with_bytes_left_over)
{
    gyre_trace_t t, view;
    full_trace(&t, 1);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_spool_encode(&t, &b), 0);
    const char *payload = b.base + GYRE_SPOOL_RECORD_HEADER_SIZE;
    size_t plen = b.len - GYRE_SPOOL_RECORD_HEADER_SIZE;
    CHECK_INT(gyre_spool_decode(payload, plen, &view), 0);
    gyre_buf_append(&b, "x", 1);
    CHECK_INT(gyre_spool_decode(payload, plen + 1, &view), -EINVAL);
    CHECK_INT(gyre_spool_decode(payload, plen - 1, &view), -EINVAL);
    gyre_buf_dispose(&b);
}

/* A format-1 record (before otel_trace_id): the format-2 one of a trace without it, less that empty id. */
static void v1_record(const gyre_trace_t *t, gyre_buf_t *out)
{
    gyre_buf_t rec;
    gyre_buf_init(&rec, 1 << 20);
    CHECK_INT(gyre_spool_encode(t, &rec), 0);
    const uint8_t *payload = (const uint8_t *)rec.base + GYRE_SPOOL_RECORD_HEADER_SIZE;
    size_t plen = rec.len - GYRE_SPOOL_RECORD_HEADER_SIZE, at = 4 + 32; /* after trace_id's length and bytes */
    CHECK(payload[at] == 0 && payload[at + 1] == 0 && payload[at + 2] == 0 && payload[at + 3] == 0);
    uint8_t hdr[GYRE_SPOOL_RECORD_HEADER_SIZE] = {0};
    uint32_t len = (uint32_t)(plen - 4);
    for (int i = 0; i < 4; i++)
        hdr[i] = (uint8_t)(len >> (8 * i));
    uint32_t crc = (uint32_t)crc32(crc32(crc32(0, hdr, 4), payload, (uInt)at), payload + at + 4, (uInt)(plen - at - 4));
    for (int i = 0; i < 4; i++)
        hdr[4 + i] = (uint8_t)(crc >> (8 * i));
    gyre_buf_append(out, hdr, sizeof(hdr));
    gyre_buf_append(out, payload, at);
    gyre_buf_append(out, payload + at + 4, plen - at - 4);
    gyre_buf_dispose(&rec);
}

TEST(trace_spool_an_older_gyres_format_1_spool_is_upgraded_and_every_record_kept)
{
    const char *p = tmp_path();
    gyre_trace_t a, b;
    full_trace(&a, 1);
    full_trace(&b, 2);
    gyre_buf_t file;
    gyre_buf_init(&file, 1 << 20);
    gyre_buf_append(&file, "GYRESPL1", 8);
    v1_record(&a, &file);
    v1_record(&b, &file);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    CHECK_INT(fwrite(file.base, 1, file.len, f), file.len);
    fclose(f);
    gyre_buf_dispose(&file);

    gyre_spool_t *s = open_ok(p);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.records, 2);
    gyre_trace_t *out[4];
    CHECK_INT(gyre_spool_read(s, out, 4), 2);
    /* A format-1 trace belongs to its own W3C trace. */
    memcpy(a.otel_trace_id, a.trace_id, sizeof(a.otel_trace_id));
    memcpy(b.otel_trace_id, b.trace_id, sizeof(b.otel_trace_id));
    check_same(out[0], &a);
    check_same(out[1], &b);
    free(out[0]);
    free(out[1]);
    gyre_spool_close(s);
    /* The file is format 2 now, the upgrade's scratch file gone, and it opens again as it is. */
    char magic[8] = {0};
    f = fopen(p, "rb");
    CHECK(f != NULL && fread(magic, 1, 8, f) == 8);
    fclose(f);
    CHECK_MEM(magic, 8, "GYRESPL2");
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%s.upgrade", p);
    CHECK_INT(access(tmp, F_OK), -1);
    s = open_ok(p);
    gyre_spool_stats(s, &st);
    CHECK_INT(st.recovered, 2);
    gyre_spool_close(s);
    unlink(p);
}

TEST(trace_spool_an_empty_format_1_spool_opens_as_an_empty_format_2_one)
{
    const char *p = tmp_path();
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL && fwrite("GYRESPL1", 1, 8, f) == 8);
    fclose(f);
    gyre_spool_t *s = open_ok(p);
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    CHECK_INT(st.records, 0);
    gyre_spool_close(s);
    CHECK_INT(file_size(p), GYRE_SPOOL_HEADER_SIZE);
    unlink(p);
}

/* The gateway key's id and team follow the bodies: a record written before them (it ends after the bodies) still
 * reads, with both empty, and one written now reads them back. */
TEST(trace_spool_a_record_without_the_key_id_and_team_reads_with_them_empty)
{
    gyre_trace_t t, back;
    memset(&t, 0, sizeof(t));
    strcpy(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    t.model = (gyre_tstr_t){(char *)"gpt-4o", 6};
    t.response_body = (gyre_tstr_t){(char *)"{}", 2};
    t.client_key_id = (gyre_tstr_t){(char *)"gk_abcdefghij23", 15};
    t.team = (gyre_tstr_t){(char *)"search", 6};
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_spool_encode_payload(&t, &b), 0);
    CHECK_INT(gyre_spool_decode(b.base, b.len, &back), 0);
    CHECK_MEM(back.client_key_id.p, back.client_key_id.len, "gk_abcdefghij23");
    CHECK_MEM(back.team.p, back.team.len, "search");
    /* Without cost_saved_usd (8 bytes, after the team), as the version before it wrote the record. */
    CHECK_INT(gyre_spool_decode(b.base, b.len - 8, &back), 0);
    CHECK_MEM(back.team.p, back.team.len, "search");
    /* The same record as the earlier format wrote it: without the two trailing strings (4-byte length + bytes each). */
    size_t old_len = b.len - 8 - (4 + 15) - (4 + 6);
    CHECK_INT(gyre_spool_decode(b.base, old_len, &back), 0);
    CHECK_INT((int)back.client_key_id.len, 0);
    CHECK_INT((int)back.team.len, 0);
    CHECK_MEM(back.response_body.p, back.response_body.len, "{}");
    /* Cut inside the new strings: a torn record, refused. */
    CHECK_INT(gyre_spool_decode(b.base, old_len + 2, &back), -EINVAL);
    gyre_buf_dispose(&b);
}
