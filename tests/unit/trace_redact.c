/*
 * src/trace/redact.c and gyre_trace_redact(): each kind with its exact
 * before and after, the look-alikes that must stay, the Luhn and issuer
 * checks, JSON that stays valid, the policy bits, and a trace's texts.
 */
#include "trace/redact.h"

#include <cjson/cJSON.h>
#include <h2o.h>
#include <stdlib.h>
#include <string.h>

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
    CHECK_INT(gyre_redact_kind_from_name("email"), GYRE_REDACT_EMAIL);
    CHECK_INT(gyre_redact_kind_from_name("phone"), GYRE_REDACT_PHONE);
    CHECK_INT(gyre_redact_kind_from_name("card"), GYRE_REDACT_CARD);
    CHECK_INT(gyre_redact_kind_from_name("api_key"), GYRE_REDACT_API_KEY);
    CHECK_INT(gyre_redact_kind_from_name("ssn"), 0);
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
