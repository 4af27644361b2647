/*
 * src/common/utf8.c, the JSON string encoder built on it (common/buf.c) and
 * the strict JSON check (common/json.c): whatever bytes a client or provider
 * sent, what gyre puts into JSON is well-formed UTF-8, with one U+FFFD per
 * maximal ill-formed subpart, as a browser's TextDecoder reads it.
 */
#include "common/utf8.h"

#include <errno.h>

#include "common/json.h"
#include "test.h"

#define LIT(s) s, sizeof(s) - 1

/* The JSON string literal gyre writes for the given bytes. */
static const char *json_of(gyre_buf_t *b, const char *s, size_t n)
{
    gyre_buf_reset(b);
    CHECK_INT(gyre_buf_append_json_string(b, s, n), 0);
    return b->base;
}

TEST(utf8_accepts_well_formed_sequences_of_each_length_and_the_edges_of_table_3_7)
{
    CHECK(gyre_utf8_valid(LIT("a\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf")));
    CHECK(gyre_utf8_valid(LIT("\xf0\x90\x80\x80\xf3\xbf\xbf\xbf\xf4\x8f\xbf\xbf")));
    CHECK(gyre_utf8_valid(LIT("")));
}

TEST(utf8_rejects_overlongs_surrogates_past_10ffff_truncations_and_lone_continuations)
{
    CHECK(!gyre_utf8_valid(LIT("\xc0\xaf")));         /* overlong '/' */
    CHECK(!gyre_utf8_valid(LIT("\xe0\x80\xaf")));     /* overlong, three bytes */
    CHECK(!gyre_utf8_valid(LIT("\xf0\x80\x80\xaf"))); /* overlong, four bytes */
    CHECK(!gyre_utf8_valid(LIT("\xed\xa0\x80")));     /* U+D800 */
    CHECK(!gyre_utf8_valid(LIT("\xed\xbf\xbf")));     /* U+DFFF */
    CHECK(!gyre_utf8_valid(LIT("\xf4\x90\x80\x80"))); /* U+110000 */
    CHECK(!gyre_utf8_valid(LIT("\xf5\x80\x80\x80")));
    CHECK(!gyre_utf8_valid(LIT("\xe2\x82"))); /* truncated */
    CHECK(!gyre_utf8_valid(LIT("\x80")));     /* lone continuation */
    CHECK(!gyre_utf8_valid(LIT("\xff\xfe")));
}

TEST(utf8_next_reports_the_maximal_subpart_of_an_ill_formed_sequence)
{
    size_t bad = 99;
    CHECK_INT(gyre_utf8_next(LIT("\xe2\x82\xac"), &bad), 3);
    CHECK_INT(gyre_utf8_next(LIT("\xe2\x82"), &bad), 0);
    CHECK_INT(bad, 2); /* a truncated sequence is one subpart */
    CHECK_INT(gyre_utf8_next(LIT("\xe2\x82x"), &bad), 0);
    CHECK_INT(bad, 2);
    CHECK_INT(gyre_utf8_next(LIT("\xed\xa0\x80"), &bad), 0);
    CHECK_INT(bad, 1); /* A0 cannot follow ED: the lead alone */
    CHECK_INT(gyre_utf8_next(LIT("\xc0\xaf"), &bad), 0);
    CHECK_INT(bad, 1);
    CHECK_INT(gyre_utf8_next(LIT("\xf4\x8f\xbf"), &bad), 0);
    CHECK_INT(bad, 3);
}

TEST(json_string_replaces_each_ill_formed_subpart_with_one_u_fffd_and_keeps_well_formed_text)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    CHECK_STR(json_of(&b, LIT("a\xff\xfe"
                              "b")),
              "\"a\xef\xbf\xbd\xef\xbf\xbd"
              "b\"");
    CHECK_STR(json_of(&b, LIT("\xc0\xaf")), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK_STR(json_of(&b, LIT("\xed\xa0\x80")), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK_STR(json_of(&b, LIT("x\xe2\x82")), "\"x\xef\xbf\xbd\"");
    CHECK_STR(json_of(&b, LIT("\xe2\x82\xac \xf0\x9f\x98\x80 caf\xc3\xa9")),
              "\"\xe2\x82\xac \xf0\x9f\x98\x80 caf\xc3\xa9\"");
    CHECK_STR(json_of(&b, LIT("q\"\\\n\x01")), "\"q\\\"\\\\\\n\\u0001\"");
    gyre_buf_dispose(&b);
}

TEST(json_bytes_keeps_every_byte_so_distinct_inputs_stay_distinct)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 64);
    CHECK_INT(gyre_buf_append_json_bytes(&b, LIT("\xff\"")), 0);
    CHECK_STR(b.base, "\"\xff\\\"\"");
    gyre_buf_dispose(&b);
}

TEST(buf_append_utf8_replaces_ill_formed_sequences_and_is_all_or_nothing_at_the_bound)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 8);
    CHECK_INT(gyre_buf_append_utf8(&b, LIT("[\"\xff\"]")), 0);
    CHECK_STR(b.base, "[\"\xef\xbf\xbd\"]");
    CHECK_INT(gyre_buf_append_utf8(&b, LIT("\xff")), -E2BIG);
    CHECK_STR(b.base, "[\"\xef\xbf\xbd\"]");
    gyre_buf_dispose(&b);
}

TEST(json_valid_accepts_rfc_8259_texts)
{
    CHECK(gyre_json_valid(LIT(" {\"a\":[1,-0.5e+3,true,false,null,\"\\u00e9\\n\"],\"b\":{}} \n")));
    CHECK(gyre_json_valid(LIT("[]")));
    CHECK(gyre_json_valid(LIT("\"caf\xc3\xa9\"")));
    CHECK(gyre_json_valid(LIT("0")));
}

TEST(json_valid_rejects_what_cjson_takes_but_a_strict_parser_does_not)
{
    CHECK(!gyre_json_valid(LIT("{\"a\":\"\xff\xfe\"}")));     /* ill-formed UTF-8 */
    CHECK(!gyre_json_valid(LIT("{\"a\":\"\xed\xa0\x80\"}"))); /* a surrogate */
    CHECK(!gyre_json_valid(LIT("{\"a\":\"line\nbreak\"}")));  /* a raw control byte in a string */
    CHECK(!gyre_json_valid(LIT("\x01{}")));                   /* not whitespace */
    CHECK(!gyre_json_valid(LIT("[01]")));
    CHECK(!gyre_json_valid(LIT("[1.]")));
    CHECK(!gyre_json_valid(LIT("[+1]")));
    CHECK(!gyre_json_valid(LIT("{\"a\":1,}")));
    CHECK(!gyre_json_valid(LIT("[1,]")));
    CHECK(!gyre_json_valid(LIT("{\"a\" 1}")));
    CHECK(!gyre_json_valid(LIT("{\"a\":1}{}")));
    CHECK(!gyre_json_valid(LIT("[\"\\x\"]")));
    CHECK(!gyre_json_valid(LIT("[\"\\u12\"]")));
    CHECK(!gyre_json_valid(LIT("{\"a\":1")));
    CHECK(!gyre_json_valid(LIT("")));
    CHECK(!gyre_json_valid(LIT("tru")));
}

TEST(json_valid_refuses_nesting_past_its_depth_instead_of_recursing)
{
    static char deep[2 * (GYRE_JSON_VALID_DEPTH + 1)];
    memset(deep, '[', GYRE_JSON_VALID_DEPTH + 1);
    memset(deep + GYRE_JSON_VALID_DEPTH + 1, ']', GYRE_JSON_VALID_DEPTH + 1);
    CHECK(!gyre_json_valid(deep, sizeof(deep)));
    CHECK(gyre_json_valid(deep + 1, sizeof(deep) - 2));
}
