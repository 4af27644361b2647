#include "proxy/sse.h"

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

static char *events_of(const char *const *pieces)
{
    static gyre_buf_t out;
    gyre_buf_init(&out, 1 << 20);
    gyre_sse_parser_t p;
    gyre_sse_init(&p, 1 << 16, record, &out);
    for (; *pieces != NULL; pieces++)
        CHECK_INT(gyre_sse_feed(&p, *pieces, strlen(*pieces)), 0);
    gyre_sse_dispose(&p);
    return out.base ? out.base : "";
}

TEST(sse_dispatches_each_event_at_its_blank_line)
{
    const char *in[] = {"data: {\"a\":1}\n\ndata: [DONE]\n\n", NULL};
    CHECK_STR(events_of(in), "|{\"a\":1};|[DONE];");
}

TEST(sse_joins_data_lines_and_reads_event_names)
{
    const char *in[] = {"event: message_start\ndata: one\ndata:two\n\n", NULL};
    CHECK_STR(events_of(in), "message_start|one\ntwo;");
}

TEST(sse_ignores_comments_ids_and_events_without_data)
{
    const char *in[] = {": keep-alive\n\nid: 7\nretry: 10\n\nevent: ping\n\ndata: x\n\n", NULL};
    CHECK_STR(events_of(in), "|x;");
}

TEST(sse_accepts_crlf_lf_and_cr_line_ends)
{
    const char *in[] = {"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\n", NULL};
    CHECK_STR(events_of(in), "|a;|b;|c;|d;");
}

TEST(sse_crlf_split_between_pieces_is_one_line_end)
{
    const char *in[] = {"data: a\r", "\n\r", "\n", NULL};
    CHECK_STR(events_of(in), "|a;");
}

TEST(sse_gives_the_same_events_fed_byte_by_byte)
{
    const char whole[] = "event: e\r\ndata: {\"x\": \"y\"}\r\n\r\n: c\ndata: 2\n\n";
    char bytes[sizeof(whole)][2];
    const char *pieces[sizeof(whole)];
    for (size_t i = 0; i < sizeof(whole) - 1; i++) {
        bytes[i][0] = whole[i];
        bytes[i][1] = '\0';
        pieces[i] = bytes[i];
    }
    pieces[sizeof(whole) - 1] = NULL;
    CHECK_STR(events_of(pieces), "e|{\"x\": \"y\"};|2;");
}

TEST(sse_an_event_past_the_bound_is_e2big)
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
