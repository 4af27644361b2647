/*
 * src/trace/redact.c and gyre_trace_redact(): each kind with its exact
 * before and after, the look-alikes that must stay, the Luhn and issuer
 * checks, JSON that stays valid, the policy bits, and a trace's texts; and
 * the pre-filtered scanner against the byte-by-byte one it replaced
 * (redact_reference.h) on generated texts.
 */
#include "trace/redact.h"

#include <cjson/cJSON.h>
#include <h2o.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact_reference.h"
#include "test.h"
#include "trace/record.h"

/* `in` redacted with `kinds`, in a static buffer (each test is its own process). */
static const char *redacted(unsigned kinds, const char *in)
{
    static char out[8192];
    size_t n = gyre_redact(kinds, in, strlen(in), out, sizeof(out) - 1, NULL);
    out[n] = '\0';
    return out;
}

#define CHECK_REDACTS(in, out) CHECK_STR(redacted(GYRE_REDACT_ALL, (in)), (out))
#define CHECK_KEEPS(in) CHECK_STR(redacted(GYRE_REDACT_ALL, (in)), (in))

/* --- e-mail -------------------------------------------------------------- */

TEST(redact_email_addresses_become_the_email_token)
{
    CHECK_REDACTS("write to jane.doe+news@example.co.uk today", "write to [email] today");
    CHECK_REDACTS("a@b.cc", "[email]");
    CHECK_REDACTS("<ops@mail.example.com>, (x_y@corp.io)", "<[email]>, ([email])");
    CHECK_REDACTS("wait ...bob@example.com", "wait ...[email]");
}

TEST(redact_email_ends_before_a_trailing_dot_or_a_dash)
{
    CHECK_REDACTS("mail me at bob@example.com.", "mail me at [email].");
    CHECK_REDACTS("bob@example.com.123 stays", "[email].123 stays");
}

TEST(redact_email_needs_a_domain_with_a_top_level_of_letters)
{
    CHECK_KEEPS("root@localhost");
    CHECK_KEEPS("user@10.0.0.1");
    CHECK_KEEPS("npm i @scope/pkg and @mention");
    CHECK_KEEPS("x@-bad.com");
}

/* --- phone numbers ------------------------------------------------------- */

TEST(redact_international_phone_numbers_in_their_usual_spellings)
{
    CHECK_REDACTS("call +1 415-555-2671 now", "call [phone] now");
    CHECK_REDACTS("+44 20 7946 0958", "[phone]");
    CHECK_REDACTS("+44 (0)20 7946 0958", "[phone]");
    CHECK_REDACTS("+1 (415) 555-2671", "[phone]");
    CHECK_REDACTS("+33 1 23 45 67 89", "[phone]");
    CHECK_REDACTS("tel:+4915123456789", "tel:[phone]");
}

TEST(redact_phone_does_not_run_on_into_the_next_number)
{
    CHECK_REDACTS("+1 415-555-2671 4111 1111 1111 1111", "[phone] [card]");
    CHECK_REDACTS("+44 20 7946 0958 12345", "[phone] 12345");
}

TEST(redact_national_phone_numbers_with_separators)
{
    CHECK_REDACTS("415-555-2671", "[phone]");
    CHECK_REDACTS("415.555.2671 or 415 555 2671", "[phone] or [phone]");
    CHECK_REDACTS("1-800-555-0199", "[phone]");
    CHECK_REDACTS("(415) 555-2671", "[phone]");
    CHECK_REDACTS("020 7946 0958", "[phone]");
    CHECK_REDACTS("06 12 34 56 78", "[phone]");
    CHECK_REDACTS("030/12345678", "[phone]");
    CHECK_REDACTS("0044 20 7946 0958", "[phone]");
}

/*
 * A number of JSON's grammar is never a phone: a phone needs separators a
 * number cannot hold (one '.' at most, '-' only first or after an exponent),
 * or a leading zero and a digit, which the grammar forbids.  fuzz_redact's
 * CI run reported "0001011920702.11" (cJSON accepts leading zeros; JSON
 * does not), so the fuzzer's JSON check now holds numbers to the grammar.
 */
TEST(redact_phone_never_matches_a_json_number)
{
    CHECK_STR(redacted(GYRE_REDACT_PHONE | GYRE_REDACT_API_KEY,
                       "{\"a\":12025550143,\"b\":4155552671.5,\"c\":-1011920702.11e-12,\"d\":[0.4155552671,90]}"),
              "{\"a\":12025550143,\"b\":4155552671.5,\"c\":-1011920702.11e-12,\"d\":[0.4155552671,90]}");
    CHECK_STR(redacted(GYRE_REDACT_PHONE, "{\"k\":0001011920702.11}"), "{\"k\":[phone]}");
}

TEST(redact_phone_leaves_plain_numbers_dates_times_and_versions)
{
    CHECK_KEEPS("id 4155552671 and 1700000000000");
    CHECK_KEEPS("2024-01-15T10:30:00.000Z");
    CHECK_KEEPS("01.02.2024 12:30");
    CHECK_KEEPS("03-15-2024");
    CHECK_KEEPS("version 1.2.3, ip 192.168.100.200");
    CHECK_KEEPS("1 234 567 890 euros");
    CHECK_KEEPS("part 415-555-2671-12");
    CHECK_KEEPS("12 345 678 units, 0.25 0.5 0.75");
    CHECK_KEEPS("+1234567890123456 is too long for E.164");
    CHECK_KEEPS("2+3 = 5 and x+12345678");
}

/* --- card numbers -------------------------------------------------------- */

TEST(redact_card_numbers_passing_luhn_with_or_without_separators)
{
    CHECK_REDACTS("card 4111111111111111 exp 12/29", "card [card] exp 12/29");
    CHECK_REDACTS("4111 1111 1111 1111", "[card]");
    CHECK_REDACTS("5555-5555-5555-4444", "[card]");
    CHECK_REDACTS("amex 3782 822463 10005", "amex [card]");
    CHECK_REDACTS("6011000990139424", "[card]");
    CHECK_REDACTS("2223003122003222", "[card]");
}

TEST(redact_card_needs_luhn_an_issuer_prefix_and_its_own_digits)
{
    CHECK_KEEPS("4111111111111112"); /* fails Luhn */
    CHECK_KEEPS("1234567812345670"); /* passes Luhn, no network starts with 1 */
    CHECK_KEEPS("9111111111111111");
    CHECK_KEEPS("41111111111111111111111"); /* a longer number */
    CHECK_KEEPS("x4111111111111111 4111111111111111y");
    CHECK_KEEPS("123e4567-e89b-12d3-a456-426614174000");
    CHECK_KEEPS("sha 4111111111111111abc0 d41d8cd98f00b204e9800998ecf8427e");
    CHECK_KEEPS("0.4111111111111111");
}

TEST(redact_card_mixed_separators_are_not_one_number)
{
    CHECK_KEEPS("4111 1111-1111 1111");
}

/* --- API keys ------------------------------------------------------------ */

TEST(redact_api_keys_with_known_prefixes)
{
    CHECK_REDACTS("key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z end", "key [api_key] end");
    CHECK_REDACTS("sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf9EdCbA-_Q", "[api_key]");
    CHECK_REDACTS("AKIAIOSFODNN7EXAMPLE", "[api_key]");
    CHECK_REDACTS("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[api_key]");
    CHECK_REDACTS("xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "[api_key]");
    CHECK_REDACTS("AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "[api_key]");
    CHECK_REDACTS("{\"key\":\"hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567\"}", "{\"key\":\"[api_key]\"}");
}

TEST(redact_bearer_tokens_keep_the_word_bearer)
{
    CHECK_REDACTS("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_Abc123",
                  "Authorization: Bearer [api_key]");
    CHECK_REDACTS("bearer  Zm9vYmFyYmF6cXV4MTIzNDU2", "bearer  [api_key]");
}

TEST(redact_api_key_look_alikes_stay)
{
    CHECK_KEEPS("sk-this-is-a-very-long-hyphenated-phrase");
    CHECK_KEEPS("sk-short1");
    CHECK_KEEPS("task-Abc123Def456Ghi789Jkl0"); /* "sk-" inside a word */
    CHECK_KEEPS("AKIAIOSFODNN7EXAMPLE1");       /* 17 after the prefix: not an access key id */
    CHECK_KEEPS("the Bearer of bad news");
    CHECK_KEEPS("bearer tokens-are-described-in-rfc");
    CHECK_KEEPS("uuid 9b2f6c1e-0d4a-4e8b-a1c3-5f7e9d2b4a60 sha256 "
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* --- JSON ---------------------------------------------------------------- */

static int valid_json(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    cJSON_Delete(j);
    return j != NULL;
}

TEST(redact_json_strings_are_redacted_and_the_document_stays_valid)
{
    const char *in = "{\"messages\":[{\"role\":\"user\",\"content\":\"I am bob@example.com, +1 415 555 2671, "
                     "card 4111 1111 1111 1111, key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t\"}]}";
    const char *out = redacted(GYRE_REDACT_ALL, in);
    CHECK_STR(out, "{\"messages\":[{\"role\":\"user\",\"content\":\"I am [email], [phone], card [card], key "
                   "[api_key]\"}]}");
    CHECK(valid_json(out));
}

TEST(redact_json_numbers_outside_strings_are_left_alone)
{
    /* A bare 16-digit number that passes Luhn is a JSON number: replacing it would break the document. */
    CHECK_KEEPS("{\"seed\":4111111111111111,\"n\":[5555555555554444]}");
    CHECK_REDACTS("{\"seed\":\"4111111111111111\"}", "{\"seed\":\"[card]\"}");
}

TEST(redact_json_escapes_are_separators_and_never_cut)
{
    /* "\n" before the address stays whole; "\u0040" is not read as '@'. */
    CHECK_REDACTS("{\"c\":\"line\\nbob@example.com\\tok\"}", "{\"c\":\"line\\n[email]\\tok\"}");
    CHECK_KEEPS("{\"c\":\"bob\\u0040example.com\"}");
    CHECK_REDACTS("{\"c\":\"\\\"bob@example.com\\\"\"}", "{\"c\":\"\\\"[email]\\\"\"}");
    CHECK(valid_json(redacted(GYRE_REDACT_ALL, "{\"c\":\"\\\\nbob@example.com\"}")));
}

TEST(redact_text_that_is_not_json_is_redacted_everywhere)
{
    CHECK_REDACTS("upstream said: 4111111111111111 declined", "upstream said: [card] declined");
}

/* --- policy, bound, counts ----------------------------------------------- */

TEST(redact_only_the_kinds_asked_for)
{
    const char *in = "bob@example.com 4111111111111111 +1 415 555 2671 sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t";
    CHECK_STR(redacted(GYRE_REDACT_EMAIL | GYRE_REDACT_CARD, in),
              "[email] [card] +1 415 555 2671 sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t");
    CHECK_STR(redacted(GYRE_REDACT_PHONE | GYRE_REDACT_API_KEY, in),
              "bob@example.com 4111111111111111 [phone] [api_key]");
    CHECK_STR(redacted(0, in), in);
}

TEST(redact_kind_names_are_those_of_the_config)
{
    CHECK_INT(gyre_config_redact_kind("email"), GYRE_REDACT_EMAIL);
    CHECK_INT(gyre_config_redact_kind("phone"), GYRE_REDACT_PHONE);
    CHECK_INT(gyre_config_redact_kind("card"), GYRE_REDACT_CARD);
    CHECK_INT(gyre_config_redact_kind("api_key"), GYRE_REDACT_API_KEY);
    CHECK_INT(gyre_config_redact_kind("ssn"), 0);
    CHECK_STR(gyre_redact_token(GYRE_REDACT_API_KEY), "[api_key]");
}

TEST(redact_output_fits_the_bound_even_when_every_address_is_the_shortest)
{
    /* "a@b.cc" is the one match shorter than its token: 100 of them grow the text by 100 bytes. */
    char in[7 * 100], out[1000];
    for (int i = 0; i < 100; i++)
        memcpy(in + 7 * i, "a@b.cc ", 7);
    size_t count;
    size_t n = gyre_redact(GYRE_REDACT_ALL, in, 699, out, sizeof(out), &count);
    CHECK_INT(count, 100);
    CHECK_INT(n, 100 * 8 - 1);
    CHECK(n <= gyre_redact_bound(699));
    CHECK_INT(gyre_redact_bound(600), 701);
}

TEST(redact_truncates_at_the_capacity_it_is_given)
{
    char out[8];
    size_t n = gyre_redact(GYRE_REDACT_ALL, "hello bob@example.com", 21, out, sizeof(out), NULL);
    CHECK_INT(n, 8);
    CHECK_MEM(out, n, "hello [e");
}

TEST(redact_scan_reports_each_match_with_its_offsets_and_kind)
{
    const char *in = "x bob@example.com y 4111111111111111";
    gyre_redact_scan_t s;
    gyre_redact_match_t m;
    gyre_redact_scan_init(&s, GYRE_REDACT_ALL, in, strlen(in));
    CHECK_INT(gyre_redact_scan_next(&s, &m), 1);
    CHECK_INT(m.start, 2);
    CHECK_INT(m.end, 17);
    CHECK_INT(m.kind, GYRE_REDACT_EMAIL);
    CHECK_INT(gyre_redact_scan_next(&s, &m), 1);
    CHECK_INT(m.start, 20);
    CHECK_INT(m.end, 36);
    CHECK_INT(m.kind, GYRE_REDACT_CARD);
    CHECK_INT(gyre_redact_scan_next(&s, &m), 0);
}

/* --- a trace ------------------------------------------------------------- */

static gyre_tstr_t tstr(const char *s)
{
    return (gyre_tstr_t){(char *)s, strlen(s)};
}

TEST(redact_trace_replaces_bodies_errors_and_metadata_values_in_the_pool)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    static const char request[] = "{\"content\":\"mail bob@example.com\"}";
    t.request_body = tstr(request);
    t.response_body = tstr("{\"content\":\"nothing here\"}");
    t.nattempts = 1;
    t.attempts[0].error = tstr("401: invalid key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t");
    t.nmeta = 2;
    t.meta[0].key = tstr("contact");
    t.meta[0].value = tstr("+44 20 7946 0958");
    t.meta[1].key = tstr("ticket");
    t.meta[1].value = tstr("T-1234");
    gyre_trace_redact(&t, &pool, GYRE_REDACT_ALL);
    CHECK_MEM(t.request_body.p, t.request_body.len, "{\"content\":\"mail [email]\"}");
    CHECK_INT(t.request_body.p[t.request_body.len], '\0');
    CHECK_STR(request, "{\"content\":\"mail bob@example.com\"}"); /* a copy: the original is untouched */
    CHECK_MEM(t.response_body.p, t.response_body.len, "{\"content\":\"nothing here\"}");
    CHECK_MEM(t.attempts[0].error.p, t.attempts[0].error.len, "401: invalid key [api_key]");
    CHECK_MEM(t.meta[0].key.p, t.meta[0].key.len, "contact");
    CHECK_MEM(t.meta[0].value.p, t.meta[0].value.len, "[phone]");
    CHECK_MEM(t.meta[1].value.p, t.meta[1].value.len, "T-1234");
    h2o_mem_clear_pool(&pool);
}

TEST(redact_trace_without_a_match_keeps_the_same_bytes)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    static const char body[] = "{\"content\":\"hello\"}";
    t.request_body = tstr(body);
    gyre_trace_redact(&t, &pool, GYRE_REDACT_ALL);
    CHECK(t.request_body.p == body);
    t.request_body = tstr("{\"content\":\"bob@example.com\"}");
    gyre_trace_redact(&t, &pool, 0);
    CHECK_MEM(t.request_body.p, t.request_body.len, "{\"content\":\"bob@example.com\"}");
    h2o_mem_clear_pool(&pool);
}

/* --- the pre-filter changes no result -------------------------------------- */

TEST(redact_bearer_glued_to_a_failed_key_stays_as_the_byte_by_byte_scan_left_it)
{
    /* "sk-" and a body too short for a key: the scan skips the rest of that body, "Bearer" included. */
    CHECK_KEEPS("sk-a-Bearer Ab3dEf6hIj9kLm2nOp5qRs");
    CHECK_KEEPS("\\nsk-a-Bearer Ab3dEf6hIj9kLm2nOp5qRs");
    CHECK_REDACTS("x-a-Bearer Ab3dEf6hIj9kLm2nOp5qRs", "x-a-Bearer [api_key]");
    CHECK_REDACTS("sk-415-555-2671-Bearer Ab3dEf6hIj9kLm2nOp5qRs", "sk-[phone]-Bearer Ab3dEf6hIj9kLm2nOp5qRs");
}

TEST(redact_github_fine_grained_tokens_are_recognised)
{
    CHECK_REDACTS("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH", "[api_key]");
    CHECK_REDACTS("token=github_pat_11ABCDEFG0123456789_abcdefgh;", "token=[api_key];");
    CHECK_KEEPS("github_pat_");
}

TEST(redact_matches_across_the_pre_filters_64_byte_windows)
{
    /* Each PII item at every offset around a window's end, after an escape or not. */
    static const char *const items[] = {"bob@example.com",
                                        "4111 1111 1111 1111",
                                        "+44 20 7946 0958",
                                        "415-555-2671",
                                        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
                                        "Bearer Zm9vYmFyYmF6cXV4MTIzNDU2",
                                        "AKIAIOSFODNN7EXAMPLE"};
    static const char *const tokens[] = {"[email]",   "[card]",           "[phone]",  "[phone]",
                                         "[api_key]", "Bearer [api_key]", "[api_key]"};
    for (size_t k = 0; k < sizeof(items) / sizeof(items[0]); k++)
        for (size_t pad = 40; pad < 140; pad++)
            for (int esc = 0; esc < 2; esc++) {
                char in[512], want[512];
                memset(in, 'a', pad);
                in[pad - 1] = ' ';
                int n = snprintf(in + pad, sizeof(in) - pad, "%s%s tail", esc ? "\\n" : "", items[k]);
                memcpy(want, in, pad);
                snprintf(want + pad, sizeof(want) - pad, "%s%s tail", esc ? "\\n" : "", tokens[k]);
                CHECK_STR(redacted(GYRE_REDACT_ALL, in), want);
                (void)n;
            }
}

/* xorshift64*: the same texts on every run. */
static uint64_t rng(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

/*
 * A text of fragments: prose, JSON punctuation, escapes, digits and
 * separators, key prefixes and bodies, addresses, cards and phones, mixed
 * so that they touch each other and the window ends.
 */
static size_t generate(uint64_t *state, char *out, size_t cap)
{
    static const char *const frags[] = {" ",
                                        " ",
                                        " ",
                                        "the ",
                                        "quick ",
                                        "brown ",
                                        "be ",
                                        "bearer ",
                                        "Bearer ",
                                        "Bearer  ",
                                        "-",
                                        "_",
                                        ".",
                                        ",",
                                        "/",
                                        "(",
                                        ")",
                                        "+",
                                        ":",
                                        ";",
                                        "\"",
                                        "\"",
                                        "{",
                                        "}",
                                        "[",
                                        "]",
                                        "\\n",
                                        "\\\"",
                                        "\\\\",
                                        "\\u0040",
                                        "\\u00e9",
                                        "\\u12",
                                        "\\",
                                        "\\x",
                                        "@",
                                        "@",
                                        "bob",
                                        "jane.doe",
                                        "x_y",
                                        "...",
                                        "example",
                                        ".com",
                                        ".co.uk",
                                        "localhost",
                                        "mail-",
                                        "sk-",
                                        "sk_live_",
                                        "rk_test_",
                                        "ghp_",
                                        "github_pat_",
                                        "xoxb-",
                                        "xai-",
                                        "pplx-",
                                        "r8_",
                                        "hf_",
                                        "gsk_",
                                        "glpat-",
                                        "npm_",
                                        "AIza",
                                        "AKIA",
                                        "ASIA",
                                        "IOSFODNN7EXAMPLE",
                                        "proj-",
                                        "Ab3dEf6hIj9kLm2nOp5qRs8t",
                                        "abcdefghijklmnopqrst",
                                        "ABCDEFGHIJKLMNOP",
                                        "0123456789",
                                        "Zm9vYmFyYmF6cXV4MTIzNDU2",
                                        "eyJhbGciOiJIUzI1NiJ9.",
                                        "4111",
                                        "1111",
                                        "4111111111111111",
                                        "5555555555554444",
                                        "378282246310005",
                                        "6011000990139424",
                                        "2223003122003222",
                                        "4111 1111 1111 1111",
                                        "5555-5555-5555-4444",
                                        "415",
                                        "555",
                                        "2671",
                                        "415-555-2671",
                                        "(415) 555-2671",
                                        "+1 ",
                                        "+44 (0)20 7946 0958",
                                        "020 7946 0958",
                                        "06 12 34 56 78",
                                        "030/12345678",
                                        "0044 20 7946 0958",
                                        "1-800-555-0199",
                                        "2024-01-15",
                                        "1.2.3",
                                        "0.25",
                                        "1,234",
                                        "3.14159",
                                        "1700000000000",
                                        "0",
                                        "1",
                                        "2",
                                        "7",
                                        "9",
                                        "12",
                                        "00",
                                        "(0)",
                                        "123",
                                        "4567",
                                        "-12",
                                        "x",
                                        "é",
                                        "\t",
                                        "\n",
                                        "%",
                                        "="};
    size_t n = 0, nfrags = sizeof(frags) / sizeof(frags[0]);
    size_t want = (size_t)(rng(state) % (cap > 300 ? 300 : cap));
    if (rng(state) % 3 == 0 && n < cap)
        out[n++] = rng(state) % 2 ? '{' : '[';
    while (n < want) {
        uint64_t r = rng(state);
        if (r % 16 == 0) {
            out[n++] = (char)(unsigned char)(rng(state) % 256); /* any byte, NUL included */
            continue;
        }
        if (r % 16 == 1) {
            out[n++] = (char)('0' + rng(state) % 10);
            continue;
        }
        const char *f = frags[(r >> 8) % nfrags];
        size_t l = strlen(f);
        if (n + l > cap)
            break;
        memcpy(out + n, f, l);
        n += l;
    }
    return n;
}

/* Both scanners' matches on one text, compared one by one. */
static int same_matches(unsigned kinds, const char *in, size_t len)
{
    gyre_redact_scan_t s;
    ref_scan_t r;
    gyre_redact_match_t a, b;
    gyre_redact_scan_init(&s, kinds, in, len);
    ref_scan_init(&r, kinds, in, len);
    for (;;) {
        int x = gyre_redact_scan_next(&s, &a), y = ref_scan_next(&r, &b);
        if (x != y)
            return 0;
        if (!x)
            return 1;
        if (a.start != b.start || a.end != b.end || a.kind != b.kind)
            return 0;
    }
}

TEST(redact_pre_filter_finds_what_the_byte_by_byte_scan_finds_on_generated_texts)
{
    static const unsigned kinds[] = {GYRE_REDACT_ALL,
                                     GYRE_REDACT_EMAIL,
                                     GYRE_REDACT_PHONE,
                                     GYRE_REDACT_CARD,
                                     GYRE_REDACT_API_KEY,
                                     GYRE_REDACT_CARD | GYRE_REDACT_PHONE,
                                     GYRE_REDACT_EMAIL | GYRE_REDACT_API_KEY};
    uint64_t state = 0x9e3779b97f4a7c15ull;
    int texts = 0, with_matches = 0, disagreements = 0;
    for (int i = 0; i < 6000; i++) {
        char in[400];
        size_t len = generate(&state, in, sizeof(in));
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            char x[600], y[600];
            size_t cx, cy;
            size_t nx = gyre_redact(kinds[k], in, len, x, sizeof(x), &cx);
            size_t ny = redact_reference(kinds[k], in, len, y, sizeof(y), &cy);
            if (nx != ny || cx != cy || memcmp(x, y, nx) != 0 || !same_matches(kinds[k], in, len)) {
                if (disagreements++ < 3)
                    fprintf(stderr, "  disagree (kinds %u): %.*s\n", kinds[k], (int)len, in);
            }
            if (k == 0 && cx > 0)
                with_matches++;
        }
        texts++;
    }
    CHECK_INT(disagreements, 0);
    CHECK_INT(texts, 6000);
    CHECK(with_matches > 1000); /* the generator does make PII, not only look-alikes */
}

TEST(redact_pre_filter_agrees_on_long_texts_that_span_many_windows)
{
    uint64_t state = 42;
    int disagreements = 0;
    for (int i = 0; i < 200; i++) {
        static char in[8192], x[10000], y[10000];
        size_t len = 0;
        while (len + 400 < sizeof(in))
            len += generate(&state, in + len, 400);
        size_t cx, cy;
        size_t nx = gyre_redact(GYRE_REDACT_ALL, in, len, x, sizeof(x), &cx);
        size_t ny = redact_reference(GYRE_REDACT_ALL, in, len, y, sizeof(y), &cy);
        if (nx != ny || cx != cy || memcmp(x, y, nx) != 0 || !same_matches(GYRE_REDACT_ALL, in, len))
            disagreements++;
    }
    CHECK_INT(disagreements, 0);
}
