/*
 * src/common/sse.c: server-sent events as providers send them, in whatever
 * pieces the network delivers, within a bound.
 */
#include "common/sse.h"

#include <errno.h>
#include <string.h>

#include "test.h"

/* Events recorded as "event|data;" for exact comparison. */
static void record(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    gyre_buf_t *b = ctx;
    gyre_buf_append(b, event, elen);
    gyre_buf_append(b, "|", 1);
    gyre_buf_append(b, data, dlen);
    gyre_buf_append(b, ";", 1);
}

/* Feeds `len` bytes of `in` cut at the given offsets (ascending, ended by 0). */
static char *events_cut(const char *in, size_t len, const size_t *cuts)
{
    static gyre_buf_t out; /* what the previous call returned is freed here */
    gyre_buf_dispose(&out);
    gyre_buf_init(&out, 1 << 20);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 1 << 16, record, &out);
    size_t pos = 0;
    for (; *cuts != 0; cuts++) {
        CHECK_INT(gyre_sse_feed(&p, in + pos, *cuts - pos), 0);
        pos = *cuts;
    }
    CHECK_INT(gyre_sse_feed(&p, in + pos, len - pos), 0);
    gyre_sse_dispose(&p);
    return out.base ? out.base : "";
}

/* Feeds a NULL-ended list of pieces; returns the events seen. */
static char *events_of(const char *const *pieces)
{
    static gyre_buf_t out; /* what the previous call returned is freed here */
    gyre_buf_dispose(&out);
    gyre_buf_init(&out, 1 << 20);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 1 << 16, record, &out);
    for (; *pieces != NULL; pieces++)
        CHECK_INT(gyre_sse_feed(&p, *pieces, strlen(*pieces)), 0);
    gyre_sse_dispose(&p);
    return out.base ? out.base : "";
}

static char *events_whole(const char *in)
{
    const char *pieces[] = {in, NULL};
    return events_of(pieces);
}

/* A provider's stream: every line-end style, a comment, an event name, a
 * two-line data field. */
static const char transcript[] = ": keep-alive\r\n\r\n"
                                 "data: {\"id\":\"c1\",\"choices\":[]}\r\n\r\n"
                                 "event: delta\ndata: one\ndata: two\n\n"
                                 "data: cr\r\r"
                                 "data: [DONE]\n\n";
static const char transcript_events[] = "|{\"id\":\"c1\",\"choices\":[]};delta|one\ntwo;|cr;|[DONE];";

TEST(sse_dispatches_each_event_at_its_blank_line)
{
    CHECK_STR(events_whole("data: {\"a\":1}\n\ndata: [DONE]\n\n"), "|{\"a\":1};|[DONE];");
}

TEST(sse_an_event_without_its_blank_line_is_not_dispatched_yet)
{
    CHECK_STR(events_whole("data: one\n\ndata: two\n"), "|one;");
}

TEST(sse_transcript_gives_its_events_fed_whole)
{
    CHECK_STR(events_whole(transcript), transcript_events);
}

TEST(sse_transcript_gives_the_same_events_cut_anywhere_in_two)
{
    for (size_t at = 1; at < sizeof(transcript) - 1; at++) {
        size_t cuts[] = {at, 0};
        CHECK_STR(events_cut(transcript, sizeof(transcript) - 1, cuts), transcript_events);
    }
}

TEST(sse_transcript_gives_the_same_events_cut_anywhere_in_three)
{
    for (size_t a = 1; a < sizeof(transcript) - 1; a++)
        for (size_t b = a + 1; b < sizeof(transcript) - 1; b++) {
            size_t cuts[] = {a, b, 0};
            CHECK_STR(events_cut(transcript, sizeof(transcript) - 1, cuts), transcript_events);
        }
}

TEST(sse_transcript_gives_the_same_events_fed_byte_by_byte)
{
    size_t cuts[sizeof(transcript)];
    for (size_t i = 1; i < sizeof(transcript) - 1; i++)
        cuts[i - 1] = i;
    cuts[sizeof(transcript) - 2] = 0;
    CHECK_STR(events_cut(transcript, sizeof(transcript) - 1, cuts), transcript_events);
}

TEST(sse_accepts_crlf_lf_and_cr_line_ends)
{
    CHECK_STR(events_whole("data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\n"), "|a;|b;|c;|d;");
}

TEST(sse_cr_at_the_end_of_a_piece_and_lf_at_the_start_of_the_next_are_one_line_end)
{
    /* Were the LF a line end of its own, the first event would end early as "a". */
    const char *in[] = {"data: a\r", "\ndata: b\r", "\n\r", "\n", NULL};
    CHECK_STR(events_of(in), "|a\nb;");
}

TEST(sse_cr_at_the_end_of_a_piece_then_cr_is_two_line_ends)
{
    const char *in[] = {"data: a\r", "\rdata: b\n\n", NULL};
    CHECK_STR(events_of(in), "|a;|b;");
}

TEST(sse_an_empty_piece_between_cr_and_lf_keeps_them_one_line_end)
{
    const char *in[] = {"data: a\r", "", "\ndata: b\r\n\r\n", NULL};
    CHECK_STR(events_of(in), "|a\nb;");
}

TEST(sse_joins_the_data_lines_of_one_event_with_newlines)
{
    CHECK_STR(events_whole("data: {\ndata:   \"a\": 1\ndata: }\n\n"), "|{\n  \"a\": 1\n};");
}

TEST(sse_ignores_comment_lines)
{
    CHECK_STR(events_whole(": ping\ndata: x\n:data: y\n\n"), "|x;");
}

TEST(sse_reads_the_event_name_and_forgets_it_after_dispatch)
{
    CHECK_STR(events_whole("event: message_start\ndata: one\n\ndata: two\n\n"), "message_start|one;|two;");
}

TEST(sse_ignores_id_retry_unknown_fields_and_events_without_data)
{
    CHECK_STR(events_whole("id: 7\nretry: 10\nfoo: bar\n\nevent: ping\n\ndata: x\n\n"), "|x;");
}

TEST(sse_a_data_line_without_a_colon_is_an_empty_data_line)
{
    CHECK_STR(events_whole("data\ndata: x\n\n"), "|\nx;");
}

TEST(sse_only_one_space_after_the_colon_is_dropped)
{
    CHECK_STR(events_whole("data:x\n\ndata:  y\n\n"), "|x;| y;");
}

TEST(sse_an_event_exactly_at_the_bound_is_accepted)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 16, record, &out);
    CHECK_INT(gyre_sse_feed(&p, "data: 0123456789abcdef\n\n", 24), 0);
    CHECK_STR(out.base, "|0123456789abcdef;");
    gyre_sse_dispose(&p);
    gyre_buf_dispose(&out);
}

TEST(sse_event_data_past_the_bound_is_e2big)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 16, record, &out);
    CHECK_INT(gyre_sse_feed(&p, "data: 0123456789\ndata: abcdef\n\n", 31), -E2BIG);
    CHECK(out.base == NULL);
    gyre_sse_dispose(&p);
    gyre_buf_dispose(&out);
}

TEST(sse_a_line_split_across_pieces_past_the_bound_is_e2big)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 16, record, &out);
    CHECK_INT(gyre_sse_feed(&p, "data: 0123456789", 16), 0);
    CHECK_INT(gyre_sse_feed(&p, "abcdef\n\n", 8), -E2BIG);
    gyre_sse_dispose(&p);
    gyre_buf_dispose(&out);
}

TEST(sse_a_line_that_never_ends_is_e2big_once_past_the_bound_and_on_every_piece_after)
{
    /* What the relay sees from a provider that sends bytes without a line end: each piece is refused at once
     * once the line is past the bound, and the parser holds no more than the bound. */
    gyre_buf_t out;
    gyre_buf_init(&out, 1024);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 16, record, &out);
    CHECK_INT(gyre_sse_feed(&p, "data: 0123456789", 16), 0);
    CHECK_INT(gyre_sse_feed(&p, "a", 1), -E2BIG);
    CHECK_INT(gyre_sse_feed(&p, "bcdef", 5), -E2BIG);
    CHECK(p.line.len <= 16);
    CHECK(out.base == NULL);
    gyre_sse_dispose(&p);
    gyre_buf_dispose(&out);
}
