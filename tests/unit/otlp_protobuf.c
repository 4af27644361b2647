/* src/otlp/protobuf.c: the wire-format reader yields each field and refuses what is truncated or invalid. */
#include "otlp/protobuf.h"

#include <string.h>

#include "test.h"

TEST(otlp_protobuf_reads_each_wire_type)
{
    /* 1: varint 300; 2: "hi"; 3: fixed64 1; 4: fixed32 2. */
    static const uint8_t m[] = {0x08, 0xac, 0x02, 0x12, 0x02, 'h', 'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0};
    gyre_pb_t r = gyre_pb_init(m, sizeof(m));
    gyre_pb_field_t f;
    CHECK_INT(gyre_pb_next(&r, &f), 1);
    CHECK_INT(f.number, 1);
    CHECK_INT(f.wire, GYRE_PB_VARINT);
    CHECK_INT(f.u, 300);
    CHECK_INT(gyre_pb_next(&r, &f), 1);
    CHECK_INT(f.number, 2);
    CHECK_INT(f.wire, GYRE_PB_LEN);
    CHECK_MEM(f.data, f.len, "hi");
    CHECK_INT(gyre_pb_next(&r, &f), 1);
    CHECK_INT(f.wire, GYRE_PB_I64);
    CHECK_INT(f.u, 1);
    CHECK_INT(gyre_pb_next(&r, &f), 1);
    CHECK_INT(f.wire, GYRE_PB_I32);
    CHECK_INT(f.u, 2);
    CHECK_INT(gyre_pb_next(&r, &f), 0);
}

TEST(otlp_protobuf_refuses_truncated_and_invalid_fields)
{
    static const uint8_t len_past_end[] = {0x12, 0x05, 'h'};
    static const uint8_t varint_cut[] = {0x08, 0xff};
    static const uint8_t fixed_cut[] = {0x19, 1, 2, 3};
    static const uint8_t group[] = {0x0b};
    static const uint8_t field_zero[] = {0x00, 0x01};
    static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{len_past_end, sizeof(len_past_end)}, {varint_cut, sizeof(varint_cut)}, {fixed_cut, sizeof(fixed_cut)},
               {group, sizeof(group)},               {field_zero, sizeof(field_zero)}, {long_varint, sizeof(long_varint)}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gyre_pb_t r = gyre_pb_init(bad[i].p, bad[i].n);
        gyre_pb_field_t f;
        CHECK_INT(gyre_pb_next(&r, &f), -1);
    }
}

TEST(otlp_protobuf_double_is_the_bits_of_an_i64_field)
{
    CHECK(gyre_pb_double(0x3ff8000000000000ULL) == 1.5);
}
