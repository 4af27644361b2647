#include "server/head.h"

#include "test.h"

#define LIT(s) s, sizeof(s) - 1
#define MAX 32768

static gyre_head_check_t check(const char *bytes, size_t len, size_t max)
{
    gyre_head_check_t c;
    gyre_head_check(bytes, len, max, &c);
    return c;
}

TEST(head_a_plain_request_is_ok_and_its_line_and_length_are_given)
{
    const char in[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    gyre_head_check_t c = check(LIT(in), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_OK);
    CHECK_INT(c.head_len, sizeof(in) - 1 - 2);
    CHECK_MEM(c.method, c.method_len, "POST");
    CHECK_MEM(c.path, c.path_len, "/v1/chat/completions");
    CHECK(c.reason == NULL);
}

TEST(head_identical_repeated_content_length_is_ok)
{
    const char in[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello";
    CHECK_INT(check(LIT(in), MAX).verdict, GYRE_HEAD_OK);
}

TEST(head_conflicting_content_lengths_are_bad_whichever_comes_first)
{
    const char a[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello";
    const char b[] = "POST / HTTP/1.1\r\nContent-Length: 50\r\nX: y\r\nCONTENT-LENGTH: 5\r\n\r\nhello";
    gyre_head_check_t c = check(LIT(a), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_BAD);
    CHECK_STR(c.reason, "the request has Content-Length headers with different values (RFC 9112 section 6.3)");
    CHECK_INT(check(LIT(b), MAX).verdict, GYRE_HEAD_BAD);
}

TEST(head_content_length_that_is_not_a_number_is_bad)
{
    const char *bad[] = {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: +5\r\n\r\n",
                         "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
                         "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
                         "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
                         "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gyre_head_check_t c = check(bad[i], strlen(bad[i]), MAX);
        CHECK_INT(c.verdict, GYRE_HEAD_BAD);
        CHECK_STR(c.reason, "a Content-Length header is not a decimal number");
    }
    /* Leading zeros are digits: the same number. */
    const char ok[] = "POST / HTTP/1.1\r\nContent-Length: 005\r\nContent-Length: 5\r\n\r\n";
    CHECK_INT(check(LIT(ok), MAX).verdict, GYRE_HEAD_OK);
}

TEST(head_content_length_with_transfer_encoding_is_served_then_closed)
{
    const char a[] = "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    const char b[] = "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n";
    gyre_head_check_t c = check(LIT(a), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_CLOSE);
    CHECK_STR(c.reason, "the request has both Content-Length and Transfer-Encoding (RFC 9112 section 6.1)");
    CHECK_INT(check(LIT(b), MAX).verdict, GYRE_HEAD_CLOSE);
    /* Transfer-Encoding alone is ordinary chunked framing. */
    const char te[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    CHECK_INT(check(LIT(te), MAX).verdict, GYRE_HEAD_OK);
}

TEST(head_transfer_encoding_in_http_1_0_is_served_then_closed)
{
    const char in[] = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    gyre_head_check_t c = check(LIT(in), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_CLOSE);
    CHECK_STR(c.reason, "an HTTP/1.0 request has Transfer-Encoding (RFC 9112 section 6.1)");
}

TEST(head_a_second_transfer_encoding_line_is_bad)
{
    const char in[] = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    gyre_head_check_t c = check(LIT(in), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_BAD);
    CHECK_STR(c.reason, "the request has more than one Transfer-Encoding header");
}

TEST(head_obs_fold_is_bad_with_a_space_or_a_tab)
{
    const char sp[] = "GET / HTTP/1.1\r\nX-Note: first\r\n second\r\nHost: x\r\n\r\n";
    const char tab[] = "GET / HTTP/1.1\r\nX-Note: first\r\n\tsecond\r\n\r\n";
    gyre_head_check_t c = check(LIT(sp), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_BAD);
    CHECK_STR(c.reason, "a header line starts with a space or a tab (obsolete line folding, RFC 9112 section 5.2); "
                        "send each header on one line");
    CHECK_INT(check(LIT(tab), MAX).verdict, GYRE_HEAD_BAD);
}

/* A head of `n` bytes exactly: a request line, one padding header, the empty line. */
static char *head_of(size_t n)
{
    const char start[] = "GET / HTTP/1.1\r\nX-Pad: ";
    char *s = malloc(n + 1);
    memcpy(s, start, sizeof(start) - 1);
    memset(s + sizeof(start) - 1, 'a', n - (sizeof(start) - 1) - 4);
    memcpy(s + n - 4, "\r\n\r\n", 5);
    return s;
}

TEST(head_at_the_limit_is_ok_and_one_byte_over_is_too_large)
{
    char *at = head_of(MAX), *over = head_of(MAX + 1);
    gyre_head_check_t c = check(at, MAX, MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_OK);
    CHECK_INT(c.head_len, MAX);
    c = check(over, MAX + 1, MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_TOO_LARGE);
    CHECK_INT(c.head_len, MAX + 1);
    free(at);
    free(over);
}

TEST(head_too_large_wins_over_a_framing_fault)
{
    char *big = head_of(MAX + 100);
    memcpy(big + 16, "Content-Length: 1\r\nContent-Length: 2\r\nX: ", 41);
    CHECK_INT(check(big, MAX + 100, MAX).verdict, GYRE_HEAD_TOO_LARGE);
    free(big);
}

TEST(head_incomplete_or_malformed_is_unparsed_and_only_the_head_is_read)
{
    const char part[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n";
    const char junk[] = "NOT HTTP\r\n\r\n";
    gyre_head_check_t c = check(LIT(part), MAX);
    CHECK_INT(c.verdict, GYRE_HEAD_UNPARSED);
    CHECK_INT(c.head_len, 0);
    CHECK(c.method == NULL && c.path == NULL);
    CHECK_INT(check(LIT(junk), MAX).verdict, GYRE_HEAD_UNPARSED);
    /* What follows the head (a body that looks like a second head with a conflict) is not read. */
    const char body[] = "POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n";
    CHECK_INT(check(LIT(body), MAX).verdict, GYRE_HEAD_OK);
}

TEST(head_with_more_headers_than_h2o_reads_is_unparsed)
{
    /* h2o answers such a head with its own 400 before any handler: the check never sees one in gyre. */
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= GYRE_HEAD_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "x%d: y\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    CHECK_INT(check(buf, n, MAX).verdict, GYRE_HEAD_UNPARSED);
}
