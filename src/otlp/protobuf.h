/*
 * A minimal protobuf wire-format reader, enough for OTLP's messages: it
 * walks the fields of one message, never copies, and never reads past the
 * bytes it was given.  A message is a gyre_pb_t over [p, end); each
 * gyre_pb_next() yields one field (number, wire type, and its varint,
 * fixed value or length-delimited bytes).  An embedded message is read by
 * making a new reader over the field's bytes.
 */
#ifndef GYRE_OTLP_PROTOBUF_H
#define GYRE_OTLP_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

enum {
    GYRE_PB_VARINT = 0,
    GYRE_PB_I64 = 1,
    GYRE_PB_LEN = 2,
    GYRE_PB_I32 = 5,
};

typedef struct gyre_pb {
    const uint8_t *p, *end;
} gyre_pb_t;

typedef struct gyre_pb_field {
    uint32_t number;
    int wire;          /* GYRE_PB_* */
    uint64_t u;        /* VARINT, I64, I32 */
    const uint8_t *data; /* LEN: the bytes */
    size_t len;
} gyre_pb_field_t;

static inline gyre_pb_t gyre_pb_init(const void *p, size_t len)
{
    return (gyre_pb_t){(const uint8_t *)p, (const uint8_t *)p + len};
}

/* The next field: 1, 0 at the end of the message, -1 when the bytes are malformed (truncated, a bad tag or wire type). */
int gyre_pb_next(gyre_pb_t *r, gyre_pb_field_t *f);

/* The double whose bits an I64 field holds. */
double gyre_pb_double(uint64_t bits);

#endif
