/*
 * AWS's binary event-stream framing (application/vnd.amazon.eventstream),
 * in which Bedrock's ConverseStream sends its events.
 *
 * A message is: total length (4 bytes, big-endian, the whole message),
 * headers length (4), a CRC-32 of those 8 bytes (4), the headers, the
 * payload, and a CRC-32 of everything before it (4).  A header is a name
 * (1-byte length, then the bytes), a value type (1 byte) and the value,
 * whose size depends on the type (strings and byte arrays carry a 2-byte
 * length).  The CRC is IEEE 802.3's, as zlib's crc32().
 *
 * The decoder is incremental: fed the body in pieces of any size, it calls
 * back once per complete message, whose pointers are valid during the call
 * only.  It buffers at most one message, bounded by `max_message`.
 */
#ifndef GYRE_DIALECT_EVENTSTREAM_H
#define GYRE_DIALECT_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define GYRE_EVENTSTREAM_PRELUDE 12 /* the two lengths and their CRC */
#define GYRE_EVENTSTREAM_MIN 16     /* a prelude and the message CRC: no headers, no payload */

/* The value types of a header. */
enum {
    GYRE_EVENTSTREAM_TRUE = 0,
    GYRE_EVENTSTREAM_FALSE = 1,
    GYRE_EVENTSTREAM_BYTE = 2,
    GYRE_EVENTSTREAM_SHORT = 3,
    GYRE_EVENTSTREAM_INT = 4,
    GYRE_EVENTSTREAM_LONG = 5,
    GYRE_EVENTSTREAM_BYTES = 6,
    GYRE_EVENTSTREAM_STRING = 7,
    GYRE_EVENTSTREAM_TIMESTAMP = 8,
    GYRE_EVENTSTREAM_UUID = 9,
};

/* A string header's value; p is NULL when the message has no such header. */
typedef struct gyre_eventstream_str {
    const char *p;
    size_t len;
} gyre_eventstream_str_t;

/* One decoded message.  Everything points into the decoder's input or buffer. */
typedef struct gyre_eventstream_msg {
    gyre_eventstream_str_t message_type;   /* ":message-type": "event", "exception" or "error" */
    gyre_eventstream_str_t event_type;     /* ":event-type" */
    gyre_eventstream_str_t exception_type; /* ":exception-type" */
    gyre_eventstream_str_t content_type;   /* ":content-type" */
    gyre_eventstream_str_t error_code;     /* ":error-code" (message-type "error") */
    gyre_eventstream_str_t error_message;  /* ":error-message" */
    const uint8_t *headers;                /* the whole header section, as sent */
    size_t headers_len;
    const uint8_t *payload;
    size_t payload_len;
} gyre_eventstream_msg_t;

/* Called once per message; a non-zero return (a negative errno) stops the feed, which returns it. */
typedef int (*gyre_eventstream_cb)(void *ctx, const gyre_eventstream_msg_t *m);

typedef struct gyre_eventstream_decoder {
    gyre_buf_t buf;     /* a message that arrived in pieces, until it is whole */
    size_t max_message; /* the largest total length accepted */
    size_t want;        /* the buffered message's total length, once its prelude is in */
    int error;          /* sticky: once a feed failed, every later one fails the same way */
} gyre_eventstream_decoder_t;

void gyre_eventstream_init(gyre_eventstream_decoder_t *d, size_t max_message);
void gyre_eventstream_dispose(gyre_eventstream_decoder_t *d);
/*
 * Feeds bytes.  Returns 0; -EBADMSG for a CRC that does not match, lengths
 * that do not add up or a header that runs past its section; -E2BIG for a
 * message longer than max_message; or what the callback returned.
 */
int gyre_eventstream_feed(gyre_eventstream_decoder_t *d, const void *bytes, size_t len, gyre_eventstream_cb cb,
                          void *ctx);
/* Whether a message is partly buffered (a stream that ends now was cut). */
int gyre_eventstream_pending(const gyre_eventstream_decoder_t *d);

/* Decodes exactly one whole message of `len` bytes (lengths and both CRCs checked). */
int gyre_eventstream_decode(const void *bytes, size_t len, gyre_eventstream_msg_t *out);

/* A string header to encode. */
typedef struct gyre_eventstream_header {
    const char *name;
    const char *value;
} gyre_eventstream_header_t;

/*
 * Appends one message with string headers (names up to 255 bytes, values
 * up to 65535) and the payload.  Returns 0, -EINVAL for a name or value too
 * long, or -E2BIG when `out` is full (then `out` is as it was).
 */
int gyre_eventstream_encode(const gyre_eventstream_header_t *headers, size_t nheaders, const void *payload,
                            size_t payload_len, gyre_buf_t *out);
/* The same with a header section already encoded (a decoded message's, to send it again). */
int gyre_eventstream_encode_raw(const void *headers, size_t headers_len, const void *payload, size_t payload_len,
                                gyre_buf_t *out);


#endif
