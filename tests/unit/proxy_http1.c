#include "proxy/http1.h"

#include <errno.h>
#include <stdint.h>

#include "test.h"

#define LIT(s) s, sizeof(s) - 1

TEST(http1_parses_status_headers_and_content_length)
{
    gyre_http1_response_t r;
    const char in[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"ok\":true}\n";
    CHECK_INT(gyre_http1_parse_response(LIT(in), &r), (long long)(sizeof(in) - 1 - 12));
    CHECK_INT(r.minor_version, 1);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.reason, r.reason_len, "OK");
    CHECK_INT(r.num_headers, 2);
    CHECK_MEM(r.headers[0].name, r.headers[0].name_len, "Content-Type");
    CHECK_MEM(r.headers[0].value, r.headers[0].value_len, "application/json");
    CHECK_INT(r.content_length, 12);
    CHECK_INT(r.chunked, 0);
    CHECK_INT(r.keep_alive, 1);
}

TEST(http1_incomplete_head_asks_for_more_at_every_split)
{
    const char in[] = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n\r\n";
    gyre_http1_response_t r;
    for (size_t n = 0; n < sizeof(in) - 1; n++)
        CHECK_INT(gyre_http1_parse_response(in, n, &r), -EAGAIN);
    CHECK_INT(gyre_http1_parse_response(LIT(in), &r), (long long)(sizeof(in) - 1));
    CHECK_INT(r.status, 429);
    CHECK_MEM(r.headers[0].value, r.headers[0].value_len, "1");
}

TEST(http1_accepts_bare_lf_and_an_empty_reason)
{
    gyre_http1_response_t r;
    const char in[] = "HTTP/1.0 204\nX-A:  spaced  \n\n";
    CHECK_INT(gyre_http1_parse_response(LIT(in), &r), (long long)(sizeof(in) - 1));
    CHECK_INT(r.status, 204);
    CHECK_INT(r.reason_len, 0);
    CHECK_INT(r.keep_alive, 0); /* HTTP/1.0 without keep-alive */
    CHECK_MEM(r.headers[0].value, r.headers[0].value_len, "spaced");
}

TEST(http1_reads_chunked_and_connection_close)
{
    gyre_http1_response_t r;
    const char in[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nConnection: close\r\n\r\n";
    CHECK(gyre_http1_parse_response(LIT(in), &r) > 0);
    CHECK_INT(r.chunked, 1);
    CHECK_INT(r.keep_alive, 0);
    CHECK_INT(r.content_length, SIZE_MAX);
}

TEST(http1_refuses_conflicting_content_lengths)
{
    gyre_http1_response_t r;
    const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
    CHECK_INT(gyre_http1_parse_response(LIT(in), &r), -EBADMSG);
    const char same[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
    CHECK(gyre_http1_parse_response(LIT(same), &r) > 0);
}

TEST(http1_refuses_malformed_heads)
{
    gyre_http1_response_t r;
    CHECK_INT(gyre_http1_parse_response(LIT("HTTP/2.0 200 OK\r\n\r\n"), &r), -EBADMSG);
    CHECK_INT(gyre_http1_parse_response(LIT("HTTP/1.1 2x0 OK\r\n\r\n"), &r), -EBADMSG);
    CHECK_INT(gyre_http1_parse_response(LIT("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"), &r), -EBADMSG);
    CHECK_INT(gyre_http1_parse_response(LIT("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n"), &r), -EBADMSG);
    CHECK_INT(gyre_http1_parse_response(LIT("HTTP/1.1 200 OK\r\n folded\r\n\r\n"), &r), -EBADMSG);
    CHECK_INT(gyre_http1_parse_response(LIT("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"), &r), -EBADMSG);
    CHECK_INT(gyre_http1_parse_response(LIT("garbage that is long enough\n"), &r), -EBADMSG);
}

TEST(http1_refuses_too_many_headers)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= GYRE_HTTP1_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "h%d: v\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    gyre_http1_response_t r;
    CHECK_INT(gyre_http1_parse_response(buf, n, &r), -E2BIG);
}

TEST(http1_a_head_without_its_end_asks_for_more_below_the_bound_and_is_e2big_at_it)
{
    /* A provider that sends header lines for ever: the caller's buffer never has to grow past the bound. */
    static char buf[GYRE_HTTP1_MAX_HEAD + 1];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nx-fill: ");
    memset(buf + n, 'x', sizeof(buf) - n);
    gyre_http1_response_t r;
    CHECK_INT(gyre_http1_parse_response(buf, GYRE_HTTP1_MAX_HEAD - 1, &r), -EAGAIN);
    CHECK_INT(gyre_http1_parse_response(buf, GYRE_HTTP1_MAX_HEAD, &r), -E2BIG);
    CHECK_INT(gyre_http1_parse_response(buf, sizeof(buf), &r), -E2BIG);
}

TEST(http1_chunked_decodes_in_place_with_extensions_and_trailers)
{
    char in[] = "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n";
    gyre_http1_chunked_t d = {0};
    size_t len = sizeof(in) - 1, used = 0;
    CHECK_INT(gyre_http1_decode_chunked(&d, in, &len, &used), 1);
    CHECK_MEM(in, len, "hello, world");
    CHECK_INT(used, sizeof(in) - 1);
}

TEST(http1_chunked_gives_the_same_bytes_fed_one_at_a_time)
{
    const char src[] = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
    gyre_http1_chunked_t d = {0};
    char out[64];
    size_t outlen = 0;
    int r = 0;
    for (size_t i = 0; i < sizeof(src) - 1; i++) {
        char b = src[i];
        size_t len = 1, used = 0;
        r = gyre_http1_decode_chunked(&d, &b, &len, &used);
        CHECK_INT(used, 1);
        memcpy(out + outlen, &b, len);
        outlen += len;
    }
    CHECK_INT(r, 1);
    CHECK_MEM(out, outlen, "abc0123456789");
}

TEST(http1_chunked_leaves_a_partial_size_line_to_the_caller)
{
    char in[] = "4\r\nabcd\r\n1";
    gyre_http1_chunked_t d = {0};
    size_t len = sizeof(in) - 1, used = 0;
    CHECK_INT(gyre_http1_decode_chunked(&d, in, &len, &used), 0);
    CHECK_MEM(in, len, "abcd");
    CHECK_INT(used, sizeof(in) - 1); /* the digit is consumed into the decoder's state */
}

TEST(http1_chunked_refuses_bad_sizes_and_missing_crlf)
{
    gyre_http1_chunked_t d = {0};
    char a[] = "zz\r\n";
    size_t len = sizeof(a) - 1, used;
    CHECK_INT(gyre_http1_decode_chunked(&d, a, &len, &used), -EBADMSG);
    gyre_http1_chunked_t d2 = {0};
    char b[] = "2\r\nabX";
    len = sizeof(b) - 1;
    CHECK_INT(gyre_http1_decode_chunked(&d2, b, &len, &used), -EBADMSG);
    gyre_http1_chunked_t d3 = {0};
    char c[] = "1234567890abcdef0\r\n";
    len = sizeof(c) - 1;
    CHECK_INT(gyre_http1_decode_chunked(&d3, c, &len, &used), -EBADMSG);
}
