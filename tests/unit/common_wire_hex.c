/*
 * src/common/wire.h gyre_wire_hex_u64 and gyre_wire_percent_byte: the ids gyre makes of random numbers (request,
 * chat, trace and span ids) and the percent escapes of paths and AWS's canonical URI, each written in one place.
 */
#include "common/wire.h"

#include "test.h"

TEST(wire_hex_u64_writes_the_low_digits_most_significant_first_and_a_nul)
{
    char out[17];
    memset(out, 'x', sizeof(out));
    gyre_wire_hex_u64(out, UINT64_C(0x0123456789abcdef), 16);
    CHECK_STR(out, "0123456789abcdef");
    memset(out, 'x', sizeof(out));
    gyre_wire_hex_u64(out, UINT64_C(0xfedcba9876543210), 4); /* the low 16 bits only */
    CHECK_STR(out, "3210");
    gyre_wire_hex_u64(out, UINT64_C(0x00000a0b0c0d), 12); /* leading zeros kept: a fixed width */
    CHECK_STR(out, "00000a0b0c0d");
}

TEST(wire_percent_byte_writes_a_percent_and_two_upper_case_digits)
{
    char esc[4] = {0};
    gyre_wire_percent_byte(esc, '/');
    CHECK_STR(esc, "%2F");
    gyre_wire_percent_byte(esc, 0xff);
    CHECK_STR(esc, "%FF");
    gyre_wire_percent_byte(esc, 0x00);
    CHECK_STR(esc, "%00");
}
