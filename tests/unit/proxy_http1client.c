/*
 * The upstream HTTP/1 client against a real socket on loopback: a thread
 * plays the provider (accepts once, reads the request head, writes a canned
 * answer, closes), the client runs on an h2o loop in the test, and each test
 * checks what the callbacks saw.  Errors are checked by pointer, as the
 * proxy tells them apart.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/http1client.h"
#include "test.h"

typedef struct provider {
    int fd;
    const char *answer; /* NULL: close without a word */
    pthread_t thread;
} provider_t;

static void *provider_main(void *arg)
{
    provider_t *p = arg;
    int c = accept(p->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    /* The request head, then the answer. */
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            break;
    }
    if (p->answer != NULL && write(c, p->answer, strlen(p->answer)) < 0)
        perror("write");
    close(c);
    return NULL;
}

/* Listens on a free loopback port; returns it.  `answer` NULL: the provider closes without answering. */
static unsigned start_provider(provider_t *p, const char *answer)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(p->fd, (struct sockaddr *)&a, sizeof(a));
    listen(p->fd, 1);
    getsockname(p->fd, (struct sockaddr *)&a, &len);
    p->answer = answer;
    pthread_create(&p->thread, NULL, provider_main, p);
    return ntohs(a.sin_port);
}

/* A port nothing listens on: bound, never listened to, then closed. */
static unsigned closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* What the callbacks saw. */
typedef struct seen {
    int status;
    char body[256];
    size_t body_len;
    int ended;
    const char *end_err;
    int keep_alive; /* the client's verdict at the end */
    int failed;
    gyre_http1client_phase_t phase;
    const char *err;
} seen_t;

static void on_head(gyre_http1client_t *c, const gyre_http1_response_t *res)
{
    ((seen_t *)c->data)->status = res->status;
}

static int on_body(gyre_http1client_t *c, const char *bytes, size_t len)
{
    seen_t *s = c->data;
    if (s->body_len + len < sizeof(s->body)) {
        memcpy(s->body + s->body_len, bytes, len);
        s->body_len += len;
    }
    return 0;
}

static void on_body_end(gyre_http1client_t *c, const char *err)
{
    seen_t *s = c->data;
    s->ended = 1;
    s->end_err = err;
    s->keep_alive = c->keep_alive;
}

static void on_body_read(gyre_http1client_t *c)
{
    (void)c;
}

static void on_error(gyre_http1client_t *c, gyre_http1client_phase_t phase, const char *err)
{
    seen_t *s = c->data;
    s->failed = 1;
    s->phase = phase;
    s->err = err;
}

static void on_resend(gyre_http1client_t *c)
{
    (void)c;
}

static const gyre_http1client_callbacks_t callbacks = {on_head, on_body, on_body_end, on_body_read, on_error, on_resend};

/* Kept reachable for the leak checker: the loop lives until the test's process ends. */
static h2o_loop_t *loop;
static gyre_upstream_t up;
static gyre_provider_conf_t conf;

/* One GET to 127.0.0.1:port, run until the answer ended or failed (at most 5 s). */
static void call(unsigned port, seen_t *s)
{
    loop = h2o_evloop_create();
    conf = (gyre_provider_conf_t){.name = "p", .host = "127.0.0.1", .port = port, .timeout_ms = 5000};
    gyre_upstream_init(&up, &conf, loop, NULL, NULL);
    static const char req[] = "GET /v1/x HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    static h2o_iovec_t bufs[1];
    bufs[0] = h2o_iovec_init(req, sizeof(req) - 1);
    gyre_http1client_t c;
    gyre_http1client_init(&c, &callbacks, s);
    gyre_http1client_start(&c, &up, bufs, 1, 0);
    for (int i = 0; i < 50 && !s->ended && !s->failed; i++)
        h2o_evloop_run(loop, 100);
    gyre_http1client_close(&c, 0);
}

TEST(http1client_reads_a_head_and_a_content_length_body_and_keeps_the_connection)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.failed, 0);
    CHECK_INT(s.status, 200);
    CHECK_MEM(s.body, s.body_len, "hello");
    CHECK_INT(s.ended, 1);
    CHECK(s.end_err == NULL);
    CHECK_INT(s.keep_alive, 1);
}

TEST(http1client_reads_a_body_without_length_until_close_and_does_not_keep_the_connection)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"), &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.status, 200);
    CHECK_MEM(s.body, s.body_len, "until close");
    CHECK_INT(s.ended, 1);
    CHECK(s.end_err == NULL);
    CHECK_INT(s.keep_alive, 0);
}

TEST(http1client_skips_a_1xx_answer_and_decodes_a_chunked_body)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
         &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.status, 201);
    CHECK_MEM(s.body, s.body_len, "hello world");
    CHECK_INT(s.ended, 1);
    CHECK(s.end_err == NULL);
}

TEST(http1client_reports_a_body_cut_short_with_its_error_constant)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"), &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.status, 200);
    CHECK_MEM(s.body, s.body_len, "hello");
    CHECK_INT(s.ended, 1);
    CHECK(s.end_err == gyre_http1client_error_closed_mid_body);
}

TEST(http1client_reports_a_broken_chunked_body_with_its_error_constant)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"), &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.ended, 1);
    CHECK(s.end_err == gyre_http1client_error_invalid_chunked);
}

TEST(http1client_reports_an_invalid_head_as_a_head_error)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, "SMTP ready\r\n\r\n"), &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.failed, 1);
    CHECK_INT(s.phase, GYRE_HTTP1CLIENT_HEAD);
    CHECK(s.err == gyre_http1client_error_invalid_head);
    CHECK_INT(s.ended, 0);
}

TEST(http1client_reports_a_close_before_any_head_as_a_head_error)
{
    provider_t p;
    seen_t s = {0};
    call(start_provider(&p, NULL), &s);
    pthread_join(p.thread, NULL);
    CHECK_INT(s.failed, 1);
    CHECK_INT(s.phase, GYRE_HTTP1CLIENT_HEAD);
    CHECK(s.err == gyre_http1client_error_closed_before_head);
}

TEST(http1client_reports_a_refused_connection_with_h2os_constant)
{
    seen_t s = {0};
    call(closed_port(), &s);
    CHECK_INT(s.failed, 1);
    CHECK_INT(s.phase, GYRE_HTTP1CLIENT_CONNECT);
    CHECK(s.err == h2o_socket_error_conn_fail);
}
