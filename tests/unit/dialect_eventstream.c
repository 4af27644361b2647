/*
 * src/dialect/eventstream.c: AWS's binary event-stream framing.  The two
 * literal frames below were built with Python's zlib.crc32 and read back by
 * botocore's own event-stream parser, so the encoder and decoder are
 * checked against bytes gyre did not make.
 */
#include "dialect/eventstream.h"

#include <errno.h>
#include <string.h>

#include <zlib.h>
#include "test.h"

/* :event-type messageStop, :message-type event, payload {"stopReason":"end_turn"}. */
static const char stop_frame[] =
    "\x00\x00\x00\x59\x00\x00\x00\x30\x76\xf8\x42\x7f\x0b\x3a\x65\x76\x65\x6e\x74\x2d\x74\x79\x70\x65\x07\x00\x0b"
    "\x6d\x65\x73\x73\x61\x67\x65\x53\x74\x6f\x70\x0d\x3a\x6d\x65\x73\x73\x61\x67\x65\x2d\x74\x79\x70\x65\x07\x00"
    "\x05\x65\x76\x65\x6e\x74\x7b\x22\x73\x74\x6f\x70\x52\x65\x61\x73\x6f\x6e\x22\x3a\x22\x65\x6e\x64\x5f\x74\x75"
    "\x72\x6e\x22\x7d\x46\xf7\x49\xbc";
#define STOP_FRAME_LEN 89

/* One header of each type 0 to 6, 8 and 9, then :event-type ping (type 7); payload {}. */
static const char typed_frame[] =
    "\x00\x00\x00\x6c\x00\x00\x00\x5a\xb2\x5e\xfd\xcf\x01\x74\x00\x01\x66\x01\x01\x62\x02\x7f\x01\x73\x03\x01\x02"
    "\x01\x69\x04\x00\x00\x00\x05\x01\x6c\x05\x00\x00\x00\x00\x00\x00\x00\x09\x01\x79\x06\x00\x03\x01\x02\x03\x01"
    "\x64\x08\x00\x00\x00\x00\x00\x00\x00\x00\x01\x75\x09\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"
    "\x0e\x0f\x0b\x3a\x65\x76\x65\x6e\x74\x2d\x74\x79\x70\x65\x07\x00\x04\x70\x69\x6e\x67\x7b\x7d\x32\x3d\xca\x1e";
#define TYPED_FRAME_LEN 108

/* What the callback saw: "message-type|event-type|exception-type|content-type|payload\n" per message. */
typedef struct seen {
    gyre_buf_t log;
    int calls;
    int stop_after; /* return -ECANCELED from this call on (0: never) */
} seen_t;

static void log_str(gyre_buf_t *b, gyre_eventstream_str_t s)
{
    if (s.p != NULL)
        gyre_buf_append(b, s.p, s.len);
    else
        gyre_buf_appends(b, "-");
    gyre_buf_appends(b, "|");
}

static int on_msg(void *ctx, const gyre_eventstream_msg_t *m)
{
    seen_t *s = ctx;
    s->calls++;
    log_str(&s->log, m->message_type);
    log_str(&s->log, m->event_type);
    log_str(&s->log, m->exception_type);
    log_str(&s->log, m->content_type);
    gyre_buf_append(&s->log, m->payload, m->payload_len);
    gyre_buf_appends(&s->log, "\n");
    return s->stop_after != 0 && s->calls >= s->stop_after ? -ECANCELED : 0;
}

static void seen_init(seen_t *s)
{
    gyre_buf_init(&s->log, 1 << 20);
    s->calls = 0;
    s->stop_after = 0;
}

/* Three messages back to back, built with the encoder. */
static void three_messages(gyre_buf_t *out)
{
    gyre_eventstream_header_t start[] = {
        {":event-type", "messageStart"}, {":content-type", "application/json"}, {":message-type", "event"}};
    gyre_eventstream_header_t exc[] = {{":exception-type", "throttlingException"}, {":message-type", "exception"}};
    CHECK_INT(gyre_eventstream_encode(start, 3, "{\"role\":\"assistant\"}", 20, out), 0);
    CHECK_INT(gyre_eventstream_encode(NULL, 0, "", 0, out), 0);
    CHECK_INT(gyre_eventstream_encode(exc, 2, "{\"message\":\"slow down\"}", 23, out), 0);
}

#define THREE_LOG                                                                                                      \
    "event|messageStart|-|application/json|{\"role\":\"assistant\"}\n"                                                 \
    "-|-|-|-|\n"                                                                                                       \
    "exception|-|throttlingException|-|{\"message\":\"slow down\"}\n"

TEST(eventstream_encode_writes_the_bytes_aws_parsers_read)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    gyre_eventstream_header_t h[] = {{":event-type", "messageStop"}, {":message-type", "event"}};
    CHECK_INT(gyre_eventstream_encode(h, 2, "{\"stopReason\":\"end_turn\"}", 25, &out), 0);
    CHECK_INT(out.len, STOP_FRAME_LEN);
    CHECK(memcmp(out.base, stop_frame, STOP_FRAME_LEN) == 0);
    gyre_buf_dispose(&out);
}

TEST(eventstream_decode_reads_the_headers_and_payload_of_a_frame)
{
    gyre_eventstream_msg_t m;
    CHECK_INT(gyre_eventstream_decode(stop_frame, STOP_FRAME_LEN, &m), 0);
    CHECK_MEM(m.message_type.p, m.message_type.len, "event");
    CHECK_MEM(m.event_type.p, m.event_type.len, "messageStop");
    CHECK(m.exception_type.p == NULL);
    CHECK(m.content_type.p == NULL);
    CHECK_MEM(m.payload, m.payload_len, "{\"stopReason\":\"end_turn\"}");
    CHECK_INT(m.headers_len, 48);
    CHECK(m.headers == (const uint8_t *)stop_frame + 12);
}

TEST(eventstream_decode_skips_headers_of_every_value_type)
{
    gyre_eventstream_msg_t m;
    CHECK_INT(gyre_eventstream_decode(typed_frame, TYPED_FRAME_LEN, &m), 0);
    CHECK_MEM(m.event_type.p, m.event_type.len, "ping");
    CHECK(m.message_type.p == NULL);
    CHECK_MEM(m.payload, m.payload_len, "{}");
}

TEST(eventstream_decode_refuses_an_unknown_value_type)
{
    /* A lone header "x" of type 10, CRCs made right so that only the type is wrong. */
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_eventstream_encode_raw("\x01x\x0a", 3, "", 0, &out), 0);
    gyre_eventstream_msg_t m;
    CHECK_INT(gyre_eventstream_decode(out.base, out.len, &m), -EBADMSG);
    gyre_buf_dispose(&out);
}

TEST(eventstream_decode_refuses_a_string_header_running_past_its_section)
{
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_eventstream_encode_raw("\x01x\x07\x00\x05"
                                          "abc",
                                          8, "{}", 2, &out),
              0);
    gyre_eventstream_msg_t m;
    CHECK_INT(gyre_eventstream_decode(out.base, out.len, &m), -EBADMSG);
    gyre_buf_dispose(&out);
}

TEST(eventstream_feed_whole_calls_back_once_per_message_in_order)
{
    gyre_buf_t in;
    gyre_buf_init(&in, 4096);
    three_messages(&in);
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    CHECK_INT(gyre_eventstream_feed(&d, in.base, in.len, on_msg, &s), 0);
    CHECK_STR(s.log.base, THREE_LOG);
    CHECK_INT(gyre_eventstream_pending(&d), 0);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&in);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_split_at_every_byte_boundary_gives_the_same_messages)
{
    gyre_buf_t in;
    gyre_buf_init(&in, 4096);
    three_messages(&in);
    for (size_t cut = 0; cut <= in.len; cut++) {
        seen_t s;
        seen_init(&s);
        gyre_eventstream_decoder_t d;
        gyre_eventstream_init(&d, 1024);
        CHECK_INT(gyre_eventstream_feed(&d, in.base, cut, on_msg, &s), 0);
        CHECK_INT(gyre_eventstream_feed(&d, in.base + cut, in.len - cut, on_msg, &s), 0);
        CHECK_STR(s.log.base, THREE_LOG);
        CHECK_INT(gyre_eventstream_pending(&d), 0);
        gyre_eventstream_dispose(&d);
        gyre_buf_dispose(&s.log);
    }
    gyre_buf_dispose(&in);
}

TEST(eventstream_feed_one_byte_at_a_time_gives_the_same_messages)
{
    gyre_buf_t in;
    gyre_buf_init(&in, 4096);
    three_messages(&in);
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    for (size_t i = 0; i < in.len; i++)
        CHECK_INT(gyre_eventstream_feed(&d, in.base + i, 1, on_msg, &s), 0);
    CHECK_STR(s.log.base, THREE_LOG);
    CHECK_INT(gyre_eventstream_pending(&d), 0);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&in);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_reports_a_cut_message_as_pending)
{
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    CHECK_INT(gyre_eventstream_feed(&d, stop_frame, STOP_FRAME_LEN - 1, on_msg, &s), 0);
    CHECK_INT(s.calls, 0);
    CHECK_INT(gyre_eventstream_pending(&d), 1);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_refuses_a_bad_message_crc_and_stays_failed)
{
    char bad[STOP_FRAME_LEN];
    memcpy(bad, stop_frame, STOP_FRAME_LEN);
    bad[STOP_FRAME_LEN - 1] ^= 1;
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    CHECK_INT(gyre_eventstream_feed(&d, bad, STOP_FRAME_LEN, on_msg, &s), -EBADMSG);
    CHECK_INT(gyre_eventstream_feed(&d, stop_frame, STOP_FRAME_LEN, on_msg, &s), -EBADMSG);
    CHECK_INT(s.calls, 0);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_refuses_a_bad_payload_byte)
{
    char bad[STOP_FRAME_LEN];
    memcpy(bad, stop_frame, STOP_FRAME_LEN);
    bad[70] ^= 0x20;
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    /* In pieces too: the check is on the reassembled message. */
    CHECK_INT(gyre_eventstream_feed(&d, bad, 40, on_msg, &s), 0);
    CHECK_INT(gyre_eventstream_feed(&d, bad + 40, STOP_FRAME_LEN - 40, on_msg, &s), -EBADMSG);
    CHECK_INT(s.calls, 0);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_refuses_a_bad_prelude_crc_before_waiting_for_the_message)
{
    char bad[12];
    memcpy(bad, stop_frame, 12);
    bad[11] ^= 1;
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    CHECK_INT(gyre_eventstream_feed(&d, bad, 12, on_msg, &s), -EBADMSG);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_refuses_lengths_that_do_not_add_up)
{
    /* Total 16 with a header section of 1 byte: there is no room for it. */
    unsigned char p[12] = {0, 0, 0, 16, 0, 0, 0, 1};
    uint32_t crc = (uint32_t)crc32(0, p, 8);
    p[8] = (unsigned char)(crc >> 24), p[9] = (unsigned char)(crc >> 16), p[10] = (unsigned char)(crc >> 8),
    p[11] = (unsigned char)crc;
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    CHECK_INT(gyre_eventstream_feed(&d, p, sizeof(p), on_msg, &s), -EBADMSG);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_refuses_a_message_over_the_maximum_from_its_prelude)
{
    seen_t s;
    seen_init(&s);
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, STOP_FRAME_LEN - 1);
    CHECK_INT(gyre_eventstream_feed(&d, stop_frame, 12, on_msg, &s), -E2BIG);
    gyre_eventstream_dispose(&d);
    gyre_eventstream_init(&d, STOP_FRAME_LEN);
    CHECK_INT(gyre_eventstream_feed(&d, stop_frame, STOP_FRAME_LEN, on_msg, &s), 0);
    CHECK_INT(s.calls, 1);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_feed_stops_at_a_callbacks_error_and_returns_it)
{
    gyre_buf_t in;
    gyre_buf_init(&in, 4096);
    three_messages(&in);
    seen_t s;
    seen_init(&s);
    s.stop_after = 1;
    gyre_eventstream_decoder_t d;
    gyre_eventstream_init(&d, 1024);
    CHECK_INT(gyre_eventstream_feed(&d, in.base, in.len, on_msg, &s), -ECANCELED);
    CHECK_INT(s.calls, 1);
    gyre_eventstream_dispose(&d);
    gyre_buf_dispose(&in);
    gyre_buf_dispose(&s.log);
}

TEST(eventstream_encode_refuses_a_full_buffer_and_leaves_it_as_it_was)
{
    gyre_buf_t out;
    gyre_buf_init(&out, STOP_FRAME_LEN + 2);
    gyre_buf_appends(&out, "ab");
    gyre_eventstream_header_t h[] = {{":event-type", "messageStop"}, {":message-type", "event"}};
    CHECK_INT(gyre_eventstream_encode(h, 2, "{\"stopReason\":\"end_turn\"}!", 26, &out), -E2BIG);
    CHECK_INT(out.len, 2);
    CHECK_STR(out.base, "ab");
    CHECK_INT(gyre_eventstream_encode(h, 2, "{\"stopReason\":\"end_turn\"}", 25, &out), 0);
    CHECK_INT(out.len, STOP_FRAME_LEN + 2);
    gyre_buf_dispose(&out);
}

TEST(eventstream_encode_raw_of_a_decoded_message_gives_the_same_bytes)
{
    gyre_eventstream_msg_t m;
    CHECK_INT(gyre_eventstream_decode(typed_frame, TYPED_FRAME_LEN, &m), 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 4096);
    CHECK_INT(gyre_eventstream_encode_raw(m.headers, m.headers_len, m.payload, m.payload_len, &out), 0);
    CHECK_INT(out.len, TYPED_FRAME_LEN);
    CHECK(memcmp(out.base, typed_frame, TYPED_FRAME_LEN) == 0);
    gyre_buf_dispose(&out);
}
