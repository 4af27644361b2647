/*
 * gyre-mock: a fake provider that answers in OpenAI's, Azure OpenAI's,
 * Anthropic's, Gemini's and Bedrock's APIs, for the tests, the benchmarks
 * and offline demos (docs/mock.md).
 *
 * This file holds the process: the command line, the listening socket, one
 * thread per connection, the routing of a request to a dialect and an
 * answer, the faults staged in front of every provider answer (each in its
 * dialect's error shape), and a shutdown on SIGTERM/SIGINT that joins every
 * thread and frees everything, so a sanitizer build exits clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

/* Connections served at once; one more is accepted and closed at once. */
#define MAX_CONNS 1024
/* How long a refused request's remaining input is read and dropped before closing. */
#define LINGER_MS 2000
/* How long slow-first-byte waits at least. */
#define SLOW_FIRST_BYTE_MS 2000

static const char usage[] =
    "usage: gyre-mock --listen HOST:PORT [--latency-ms N] [--tokens-per-sec N]\n"
    "                 [--fault KIND] [--fault-rate P] [--aws-key AKID:SECRET]\n"
    "                 [--tls-cert FILE --tls-key FILE] [--ft-seconds S] [--ft-match J] [--lora PATH]...\n"
    "\n"
    "A fake provider with deterministic answers in the OpenAI, Azure OpenAI, Anthropic,\n"
    "Gemini and Bedrock APIs (docs/mock.md).\n"
    "  --listen HOST:PORT     where to listen (port 0: any free port)\n"
    "  --latency-ms N         wait N ms before each provider answer (default 0)\n"
    "  --tokens-per-sec N     pace streamed pieces (default 0: as fast as possible)\n"
    "  --fault KIND           429 | 500 | 503 | 529 | reset | hang | truncate | slow-first-byte |\n"
    "                         echo_headers | endless-error | endless-line | endless-head\n"
    "  --fault-rate P         the share of provider requests that get the fault (0..1, default 1)\n"
    "  --aws-key AKID:SECRET  the credentials Bedrock requests are signed with\n"
    "                         (default " MOCK_AWS_KEY_DEFAULT ")\n"
    "  --tls-cert, --tls-key  serve https with this PEM certificate chain and key\n"
    "  --ft-seconds S         how long a fine-tuning job runs (0..3600, default 2)\n"
    "  --ft-match J           a prompt this near a training prompt (word-set Jaccard) gets its answer (default 0.5)\n"
    "  --lora PATH            a llama.cpp adapter for /lora-adapters (a folder with train.jsonl)\n"
    "POST /_mock/config changes the options at run time; GET /_mock/stats counts requests.\n";

static atomic_int stopping;
static int wake_pipe[2] = {-1, -1}; /* written once on a signal, never read: readable means stop */
static SSL_CTX *ssl_ctx;

/* Connection threads, joined as they end and all of them at shutdown. */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    pthread_t thread;
    mock_conn_t *conn; /* owned by the slot; its fd is closed by the thread, under conns_lock */
    int used, done;
} slots[MAX_CONNS];

int mock_stopping(void)
{
    return atomic_load(&stopping);
}

/* Waits `ms`, or less: -1 when the mock stops, or when the client on `fd` (-1: none watched) closes. */
static int wait_ms(int fd, long ms)
{
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (mock_stopping())
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = (long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000L;
        if (left <= 0)
            return 0;
        /* The client sends nothing while it waits for an answer: its end becoming readable is its close (a
         * peek of 0 bytes), or bytes of a next request, which are left for the next read. */
        struct pollfd p[2] = {{wake_pipe[0], POLLIN, 0}, {fd, POLLIN | POLLRDHUP, 0}};
        if (poll(p, fd != -1 ? 2 : 1, (int)left) > 0 && fd != -1 && p[1].revents != 0) {
            char b;
            ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
                (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
                return -1;
            if (n > 0)
                fd = -1; /* a pipelined request: wait the rest out without watching */
        }
    }
}

int mock_wait_ms(long ms)
{
    return wait_ms(-1, ms);
}

int mock_conn_wait_ms(mock_conn_t *c, long ms)
{
    return wait_ms(c->fd, ms);
}

/* Writes `fill` (a piece of `len` bytes) over and over, as one HTTP chunk each when `chunked`, until the client
 * stops reading and closes or the mock stops: the endless faults. */
static int write_forever(mock_conn_t *c, const char *fill, size_t len, int chunked)
{
    while (!mock_stopping()) {
        if ((chunked ? mock_http_stream_chunk(c, fill, len) : mock_conn_write(c, fill, len)) != 0)
            return -1;
    }
    return -1;
}

/* ---- routing ---- */

/* Whether the request's path (its query aside) is `path`. */
static int path_is(const mock_request_t *r, const char *path)
{
    size_t n = strlen(path);
    return strncmp(r->path, path, n) == 0 && (r->path[n] == '\0' || r->path[n] == '?');
}

static int handle_control(mock_conn_t *c, const mock_request_t *r)
{
    cJSON *out = NULL;
    int ret;
    if (path_is(r, "/_mock/stats")) {
        out = mock_state_stats_json();
    } else if (path_is(r, "/_mock/reset")) {
        mock_state_reset();
        mock_hooks_reset();
        mock_finetune_reset();
        out = mock_state_stats_json();
    } else if (path_is(r, "/_mock/config")) {
        if (strcmp(r->method, "POST") == 0) {
            cJSON *json = cJSON_ParseWithLength(r->body, r->body_len);
            const char *param, *err = mock_state_configure(json, &param);
            if (err != NULL) {
                ret = mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", param, "%s",
                                              err);
                cJSON_Delete(json);
                return ret;
            }
            cJSON_Delete(json);
        }
        out = mock_state_options_json();
    } else {
        return mock_http_respond_error(c, r, 404, NULL, "invalid_request_error", "unknown_url", NULL,
                                       "Unknown path %s: the mock's own are /_mock/config, /_mock/stats and "
                                       "/_mock/reset.",
                                       r->path);
    }
    ret = mock_http_respond_json(c, r, 200, out);
    cJSON_Delete(out);
    return ret;
}

/* The request's path up to its query, percent-decoded segment by segment where the dialect asks. */
static size_t path_len(const mock_request_t *r)
{
    return strcspn(r->path, "?");
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes `n` bytes of `s` into `out` (bounded by `size`); returns -1 when it does not fit. */
static int percent_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (len + 1 >= size)
            return -1;
        if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 && (lo = hex_value(s[i + 2])) >= 0) {
            out[len++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[len++] = s[i];
        }
    }
    out[len] = '\0';
    return 0;
}

typedef enum endpoint {
    EP_OPENAI,         /* under /v1: chat, embeddings, models, or the echo */
    EP_ANTHROPIC,      /* POST /v1/messages */
    EP_GEMINI,         /* POST /v1beta/models/{model}:generateContent */
    EP_GEMINI_STREAM,  /* ... :streamGenerateContent */
    EP_BEDROCK,        /* POST /model/{modelId}/converse */
    EP_BEDROCK_STREAM, /* ... /converse-stream */
    EP_AZURE_CHAT,     /* POST /openai/deployments/{deployment}/chat/completions?api-version= */
    EP_AZURE_EMBED,    /* ... /embeddings */
    EP_NOT_FOUND,      /* a path the dialect does not serve: its 404, before any fault */
} endpoint_t;

typedef struct route {
    const mock_dialect_t *dialect; /* NULL: no dialect's path at all */
    endpoint_t endpoint;
    char model[512]; /* from the path (Gemini's model, Bedrock's modelId, Azure's deployment), decoded */
} route_t;

/* Whether the path (its query aside) is `prefix` + a segment + `suffix`; the segment is decoded into rt->model. */
static int path_segment(const mock_request_t *r, const char *prefix, const char *suffix, route_t *rt)
{
    size_t len = path_len(r), pn = strlen(prefix), sn = strlen(suffix);
    if (len <= pn + sn || strncmp(r->path, prefix, pn) != 0 || strncmp(r->path + len - sn, suffix, sn) != 0)
        return 0;
    const char *seg = r->path + pn;
    size_t seg_len = len - pn - sn;
    if (memchr(seg, '/', seg_len) != NULL)
        return 0;
    return percent_decode(seg, seg_len, rt->model, sizeof(rt->model)) == 0;
}

static void route_request(const mock_request_t *r, route_t *rt)
{
    memset(rt, 0, sizeof(*rt));
    int post = strcmp(r->method, "POST") == 0;
    rt->endpoint = EP_NOT_FOUND;
    if (path_is(r, "/v1/messages")) {
        rt->dialect = &mock_dialect_anthropic;
        if (post)
            rt->endpoint = EP_ANTHROPIC;
    } else if (strncmp(r->path, "/v1/", 4) == 0) {
        rt->dialect = &mock_dialect_openai;
        rt->endpoint = EP_OPENAI;
    } else if (strncmp(r->path, "/v1beta/", 8) == 0) {
        rt->dialect = &mock_dialect_gemini;
        if (post && path_segment(r, "/v1beta/models/", ":generateContent", rt))
            rt->endpoint = EP_GEMINI;
        else if (post && path_segment(r, "/v1beta/models/", ":streamGenerateContent", rt))
            rt->endpoint = EP_GEMINI_STREAM;
    } else if (strncmp(r->path, "/model/", 7) == 0) {
        rt->dialect = &mock_dialect_bedrock;
        if (post && path_segment(r, "/model/", "/converse", rt))
            rt->endpoint = EP_BEDROCK;
        else if (post && path_segment(r, "/model/", "/converse-stream", rt))
            rt->endpoint = EP_BEDROCK_STREAM;
    } else if (strncmp(r->path, "/openai/", 8) == 0) {
        rt->dialect = &mock_dialect_azure;
        char version[64];
        /* Azure answers a request without api-version as a path it does not know. */
        if (!post || mock_request_query(r, "api-version", version, sizeof(version)) <= 0)
            ;
        else if (path_segment(r, "/openai/deployments/", "/chat/completions", rt))
            rt->endpoint = EP_AZURE_CHAT;
        else if (path_segment(r, "/openai/deployments/", "/embeddings", rt))
            rt->endpoint = EP_AZURE_EMBED;
    }
    if (rt->endpoint == EP_NOT_FOUND)
        rt->model[0] = '\0';
}

/*
 * Stages the configured fault in the dialect's error shape.  Returns 1 when
 * the request goes on to its answer (truncate and slow-first-byte shape the
 * answer), else what the response functions return.
 */
static int stage_fault(mock_conn_t *c, const mock_request_t *r, const mock_dialect_t *d, mock_options_t *o)
{
    if (strcmp(o->fault, "reset") == 0) {
        /* A zero linger turns close() into an RST, before any byte of an answer. */
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        c->reset = 1;
        return -1;
    }
    if (strcmp(o->fault, "hang") == 0) {
        /* Answer nothing and keep the connection until the client leaves (or the mock stops). */
        char buf[4096];
        while (!mock_stopping() && mock_conn_read(c, buf, sizeof(buf)) > 0)
            ;
        return -1;
    }
    if (strcmp(o->fault, "slow-first-byte") == 0) {
        long ms = o->latency_ms > SLOW_FIRST_BYTE_MS ? o->latency_ms : SLOW_FIRST_BYTE_MS;
        o->latency_ms = 0;
        return mock_wait_ms(ms) == 0 ? 1 : -1;
    }
    if (strcmp(o->fault, "truncate") == 0) {
        c->truncate = 1;
        return 1;
    }
    if (strncmp(o->fault, "endless-", 8) == 0) {
        /* A broken or hostile provider that never stops: an error body, a stream line or a head without an end.
         * Each sends 16 KiB pieces as fast as the client reads them, so /_mock/stats' bytes_sent shows how much
         * the client took before it gave up. */
        static char fill[16384];
        memset(fill, 'x', sizeof(fill));
        if (strcmp(o->fault, "endless-head") == 0) {
            static const char head[] = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n";
            if (mock_conn_write(c, head, sizeof(head) - 1) != 0)
                return -1;
            memcpy(fill, "x-mock-fill: ", 13);
            memcpy(fill + sizeof(fill) - 2, "\r\n", 2);
            return write_forever(c, fill, sizeof(fill), 0);
        }
        if (strcmp(o->fault, "endless-error") == 0) {
            static const char head[] = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                                       "transfer-encoding: chunked\r\n\r\n";
            static const char start[] = "{\"error\":{\"type\":\"server_error\",\"message\":\"The server had an error "
                                        "while processing your request (gyre-mock fault endless-error) ";
            if (mock_conn_write(c, head, sizeof(head) - 1) != 0 ||
                mock_http_stream_chunk(c, start, sizeof(start) - 1) != 0)
                return -1;
            return write_forever(c, fill, sizeof(fill), 1);
        }
        static const char start[] = "data: {\"id\":\"chatcmpl-mock-endless\",\"object\":\"chat.completion.chunk\","
                                    "\"created\":1700000000,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
        if (mock_http_stream_start(c, r, "text/event-stream") != 0 ||
            mock_http_stream_chunk(c, start, sizeof(start) - 1) != 0)
            return -1;
        return write_forever(c, fill, sizeof(fill), 1);
    }
    if (mock_wait_ms(o->latency_ms) != 0)
        return -1;
    if (strcmp(o->fault, "echo_headers") == 0) {
        /* A provider that echoes the request head in its error, as some proxies and debug endpoints do: the
         * gateway must not pass the key it sent on to its client. */
        gyre_buf_t m;
        gyre_buf_init(&m, 16384);
        gyre_buf_appendf(&m, "bad request (gyre-mock fault echo_headers): %s %s", r->method, r->path);
        for (const cJSON *h = r->headers != NULL ? r->headers->child : NULL; h != NULL; h = h->next)
            gyre_buf_appendf(&m, "; %s: %s", h->string, cJSON_IsString(h) ? h->valuestring : "");
        int ret = d->error(c, r, 400, NULL, m.base != NULL ? m.base : "");
        gyre_buf_dispose(&m);
        return ret;
    }
    if (strcmp(o->fault, "429") == 0)
        return d->error(c, r, 429, "retry-after: 1\r\n", "Rate limit reached for requests (gyre-mock fault 429).");
    if (strcmp(o->fault, "503") == 0)
        return d->error(c, r, 503, NULL, "The server is overloaded (gyre-mock fault 503).");
    if (strcmp(o->fault, "529") == 0)
        return d->error(c, r, 529, NULL, "Overloaded (gyre-mock fault 529).");
    return d->error(c, r, 500, NULL, "The server had an error while processing your request (gyre-mock fault 500).");
}

static int handle_v1(mock_conn_t *c, const mock_request_t *r, const cJSON *body, const mock_options_t *o)
{
    int post = strcmp(r->method, "POST") == 0;
    if ((path_is(r, "/v1/chat/completions") || path_is(r, "/v1/embeddings") || path_is(r, "/v1/responses")) && post &&
        !cJSON_IsObject(body))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_json", NULL,
                                       "The body of the request is not a JSON object.");
    if (path_is(r, "/v1/chat/completions") && post)
        return mock_openai_chat(c, r, body, NULL, o);
    if (path_is(r, "/v1/embeddings") && post)
        return mock_openai_embeddings(c, r, body, NULL);
    if (path_is(r, "/v1/responses") && post)
        return mock_openai_responses(c, r, body, o);
    if (path_is(r, "/v1/models") && strcmp(r->method, "GET") == 0)
        return mock_openai_models(c, r);
    /* Anything else under /v1 is echoed, so that a gateway's passthrough can be checked. */
    cJSON *echo = cJSON_CreateObject();
    cJSON_AddStringToObject(echo, "object", "mock.echo");
    cJSON_AddStringToObject(echo, "method", r->method);
    cJSON_AddStringToObject(echo, "path", r->path);
    cJSON_AddNumberToObject(echo, "body_bytes", (double)r->body_len);
    int ret = mock_http_respond_json(c, r, 200, echo);
    cJSON_Delete(echo);
    return ret;
}

static int dispatch(mock_conn_t *c, const mock_request_t *r, const route_t *rt, const cJSON *body,
                    const mock_options_t *o)
{
    switch (rt->endpoint) {
    case EP_OPENAI: return handle_v1(c, r, body, o);
    case EP_ANTHROPIC: return mock_anthropic_messages(c, r, body, o);
    case EP_GEMINI:
    case EP_GEMINI_STREAM: return mock_gemini_generate(c, r, body, rt->model, rt->endpoint == EP_GEMINI_STREAM, o);
    case EP_BEDROCK:
    case EP_BEDROCK_STREAM: return mock_bedrock_converse(c, r, body, rt->model, rt->endpoint == EP_BEDROCK_STREAM, o);
    case EP_AZURE_CHAT:
    case EP_AZURE_EMBED:
        if (!cJSON_IsObject(body))
            return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_json", NULL,
                                           "The body of the request is not a JSON object.");
        return rt->endpoint == EP_AZURE_CHAT ? mock_openai_chat(c, r, body, rt->model, o)
                                             : mock_openai_embeddings(c, r, body, rt->model);
    case EP_NOT_FOUND: break;
    }
    return -1;
}

/* Returns 0 when the connection may serve another request, -1 to close it. */
static int answer(mock_conn_t *c, const mock_request_t *r);

static int handle(mock_conn_t *c, const mock_request_t *r)
{
    c->counted = 0;
    if (mock_hooks_match(r))
        return mock_hooks_handle(c, r);
    if (mock_finetune_match(r))
        return mock_finetune_handle(c, r);
    if (strncmp(r->path, "/_mock/", 7) == 0)
        return handle_control(c, r);
    c->counted = 1;
    mock_state_active(1);
    int ret = answer(c, r);
    mock_state_active(-1);
    return ret;
}

/* A provider request: its dialect's answer, or the fault staged for it. */
static int answer(mock_conn_t *c, const mock_request_t *r)
{
    route_t rt;
    route_request(r, &rt);
    cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    int from_body = rt.endpoint == EP_OPENAI || rt.endpoint == EP_ANTHROPIC;
    mock_state_record(r, from_body ? (cJSON_IsString(model) ? model->valuestring : NULL)
                                   : (rt.model[0] ? rt.model : NULL));
    mock_options_t o = mock_state_options();
    int ret;
    if (rt.dialect == NULL) {
        ret = mock_http_respond_error(c, r, 404, NULL, "invalid_request_error", "unknown_url", NULL,
                                      "Unknown path %s: the mock answers /v1/* (OpenAI, Anthropic), /v1beta/* "
                                      "(Gemini), /model/* (Bedrock), /openai/* (Azure) and /_mock/*.",
                                      r->path);
        goto out;
    }
    if (rt.endpoint == EP_NOT_FOUND) {
        char msg[sizeof(r->path) + 64];
        if (rt.dialect == &mock_dialect_azure)
            snprintf(msg, sizeof(msg), "Resource not found");
        else
            snprintf(msg, sizeof(msg), "Unknown path %s %s", r->method, r->path);
        ret = rt.dialect->error(c, r, 404, NULL, msg);
        goto out;
    }
    /* Bedrock authenticates before anything else, as AWS does: a bad signature is never throttled. */
    if ((rt.endpoint == EP_BEDROCK || rt.endpoint == EP_BEDROCK_STREAM) && !mock_bedrock_authenticate(c, r, &ret))
        goto out;
    if (o.fault[0] != '\0' && mock_state_fault_for(&o, r) && mock_state_fault_now(o.fault_rate) &&
        (ret = stage_fault(c, r, rt.dialect, &o)) != 1)
        goto out;
    if (mock_wait_ms(o.latency_ms) != 0) {
        ret = -1;
        goto out;
    }
    ret = dispatch(c, r, &rt, body, &o);
out:
    cJSON_Delete(body);
    return ret;
}

/* ---- connections ---- */

/*
 * After refusing a request whose rest may still be arriving, stop sending and
 * read what remains for a while (nginx's lingering close): closing a socket
 * with unread input sends a reset, which can destroy the refusal before the
 * client has read it.
 */
static void drain_before_close(int fd)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    shutdown(fd, SHUT_WR);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = LINGER_MS - ((long)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000L);
        struct pollfd fds[2] = {{fd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        if (left <= 0 || poll(fds, 2, (int)left) <= 0 || fds[1].revents != 0)
            return;
        char buf[16384];
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            return;
    }
}

static void *conn_main(void *arg)
{
    size_t slot = (size_t)arg;
    mock_conn_t *c = slots[slot].conn;
    int refused = 0;
    if (ssl_ctx != NULL) {
        c->ssl = SSL_new(ssl_ctx);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_accept(c->ssl) != 1) {
            ERR_clear_error();
            c->reset = 1; /* no session to close politely */
            goto done;
        }
    }
    while (!mock_stopping()) {
        mock_request_t r;
        int st = mock_http_read_request(c, &r);
        if (st != 0) {
            if (st > 0)
                mock_http_respond_error(c, NULL, st, NULL, "invalid_request_error", "bad_request", NULL,
                                        "The request could not be read (HTTP %d): see the mock's limits in "
                                        "docs/mock.md.",
                                        st);
            mock_request_dispose(&r);
            refused = st > 0;
            break;
        }
        int keep = r.keep_alive, ret = handle(c, &r);
        mock_request_dispose(&r);
        if (ret != 0 || !keep)
            break;
    }
done:
    if (c->ssl != NULL) {
        if (!c->reset)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (refused)
        drain_before_close(c->fd);
    pthread_mutex_lock(&conns_lock);
    close(c->fd);
    c->fd = -1;
    slots[slot].done = 1;
    pthread_mutex_unlock(&conns_lock);
    return NULL;
}

/* Joins the threads whose connections ended; with `all`, ends every connection first. */
static void reap(int all)
{
    for (size_t i = 0; i < MAX_CONNS; i++) {
        if (!slots[i].used)
            continue;
        pthread_mutex_lock(&conns_lock);
        int done = slots[i].done;
        if (!done && all && slots[i].conn->fd >= 0)
            shutdown(slots[i].conn->fd, SHUT_RDWR); /* a blocked read or write returns at once */
        pthread_mutex_unlock(&conns_lock);
        if (done || all) {
            pthread_join(slots[i].thread, NULL);
            mock_conn_dispose(slots[i].conn);
            free(slots[i].conn);
            slots[i].conn = NULL;
            slots[i].used = slots[i].done = 0;
        }
    }
}

static void start_conn(int fd)
{
    size_t slot = MAX_CONNS;
    for (size_t i = 0; i < MAX_CONNS && slot == MAX_CONNS; i++)
        if (!slots[i].used)
            slot = i;
    if (slot == MAX_CONNS) {
        close(fd); /* at the bound: refuse rather than grow */
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    slots[slot].conn = gyre_calloc(1, sizeof(mock_conn_t));
    slots[slot].conn->fd = fd;
    slots[slot].done = 0;
    /* Signals go to the main thread only, which waits for them in poll(). */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int err = pthread_create(&slots[slot].thread, NULL, conn_main, (void *)slot);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        close(fd);
        free(slots[slot].conn);
        slots[slot].conn = NULL;
        return;
    }
    slots[slot].used = 1;
}

/* ---- the process ---- */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, 1);
    ssize_t ignored = write(wake_pipe[1], "x", 1); /* the pipe only has to become readable */
    (void)ignored;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

typedef struct args {
    char host[256]; /* as written, brackets of an IPv6 address included */
    char port[8];
    const char *cert, *key;
    mock_options_t options;
} args_t;

/* Returns 0, 1 after --help, or -1 (the error has been printed). */
static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->options.fault_rate = 1;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (strncmp(opt, "--", 2) != 0) {
            fprintf(stderr, "gyre-mock: unexpected argument '%s'\n\n%s", opt, usage);
            return -1;
        }
        if (v == NULL) {
            fprintf(stderr, "gyre-mock: %s needs a value\n\n%s", opt, usage);
            return -1;
        }
        i++;
        long n;
        if (strcmp(opt, "--listen") == 0) {
            const char *colon = strrchr(v, ':');
            if (colon == NULL || colon == v || (size_t)(colon - v) >= sizeof(a->host) ||
                parse_long(colon + 1, 0, 65535, &n) != 0) {
                fprintf(stderr, "gyre-mock: --listen must be HOST:PORT (a port from 0 to 65535), got '%s'\n", v);
                return -1;
            }
            snprintf(a->host, sizeof(a->host), "%.*s", (int)(colon - v), v);
            snprintf(a->port, sizeof(a->port), "%ld", n);
        } else if (strcmp(opt, "--latency-ms") == 0) {
            if (parse_long(v, 0, LONG_MAX, &a->options.latency_ms) != 0)
                a->options.latency_ms = -1; /* reported by mock_options_check below */
        } else if (strcmp(opt, "--tokens-per-sec") == 0) {
            if (parse_double(v, &a->options.tokens_per_sec) != 0)
                a->options.tokens_per_sec = -1;
        } else if (strcmp(opt, "--fault") == 0) {
            snprintf(a->options.fault, sizeof(a->options.fault), "%s", strlen(v) < sizeof(a->options.fault) ? v : "?");
        } else if (strcmp(opt, "--fault-rate") == 0) {
            if (parse_double(v, &a->options.fault_rate) != 0)
                a->options.fault_rate = -1;
        } else if (strcmp(opt, "--aws-key") == 0) {
            if (mock_bedrock_set_key(v) != 0) {
                fprintf(stderr, "gyre-mock: --aws-key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY, got '%s'\n", v);
                return -1;
            }
        } else if (strcmp(opt, "--ft-seconds") == 0) {
            if (mock_finetune_set_seconds(v) != 0) {
                fprintf(stderr, "gyre-mock: --ft-seconds must be a number of seconds from 0 to 3600, got '%s'\n", v);
                return -1;
            }
        } else if (strcmp(opt, "--ft-match") == 0) {
            if (mock_finetune_set_match(v) != 0) {
                fprintf(stderr, "gyre-mock: --ft-match must be a Jaccard similarity above 0 and at most 1, got '%s'\n", v);
                return -1;
            }
        } else if (strcmp(opt, "--lora") == 0) {
            char why[1200];
            if (mock_finetune_add_lora(v, why, sizeof(why)) != 0) {
                fprintf(stderr, "gyre-mock: --lora %s: %s\n", v, why);
                return -1;
            }
        } else if (strcmp(opt, "--tls-cert") == 0) {
            a->cert = v;
        } else if (strcmp(opt, "--tls-key") == 0) {
            a->key = v;
        } else {
            fprintf(stderr, "gyre-mock: unknown option '%s'\n\n%s", opt, usage);
            return -1;
        }
    }
    const char *param, *err = mock_options_check(&a->options, &param);
    if (err != NULL) {
        char name[32];
        snprintf(name, sizeof(name), "%s", param);
        for (char *p = name; *p; p++)
            *p = *p == '_' ? '-' : *p;
        fprintf(stderr, "gyre-mock: --%s: %s\n", name, err);
        return -1;
    }
    if (a->host[0] == '\0') {
        fprintf(stderr, "gyre-mock: --listen HOST:PORT is required\n\n%s", usage);
        return -1;
    }
    if ((a->cert == NULL) != (a->key == NULL)) {
        fprintf(stderr, "gyre-mock: --tls-cert and --tls-key go together\n");
        return -1;
    }
    return 0;
}

/* Binds and listens; returns the socket and the port it got, or -1 (the error has been printed). */
static int listen_on(const args_t *a, int *port)
{
    char host[sizeof(a->host)];
    size_t len = strlen(a->host);
    if (a->host[0] == '[' && a->host[len - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)len - 2, a->host + 1);
    else
        snprintf(host, sizeof(host), "%s", a->host);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, a->port, &hints, &res), fd = -1, err = 0;
    if (rc != 0) {
        fprintf(stderr, "gyre-mock: cannot resolve '%s': %s\n", a->host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        int one = 1;
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "gyre-mock: cannot listen on %s:%s: %s\n", a->host, a->port, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static SSL_CTX *tls_context(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1)
        return ctx;
    char why[256];
    ERR_error_string_n(ERR_get_error(), why, sizeof(why));
    fprintf(stderr, "gyre-mock: cannot use --tls-cert %s / --tls-key %s: %s\n", cert, key, why);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

int main(int argc, char **argv)
{
    args_t a;
    int listen_fd = -1, port = 0, ret = 1;
    int parsed = parse_args(argc, argv, &a);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    if (a.cert != NULL && (ssl_ctx = tls_context(a.cert, a.key)) == NULL)
        goto out;
    if ((listen_fd = listen_on(&a, &port)) < 0)
        goto out;
    if (pipe2(wake_pipe, O_CLOEXEC) != 0) {
        perror("gyre-mock: pipe");
        goto out;
    }
    mock_state_init(&a.options);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* SSL_write uses write(), which MSG_NOSIGNAL cannot reach */
    fprintf(stderr, "gyre-mock listening on %s://%s:%d\n", ssl_ctx ? "https" : "http", a.host, port);

    while (!mock_stopping()) {
        struct pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        int n = poll(fds, 2, 1000);
        reap(0);
        if (n <= 0 || !(fds[0].revents & POLLIN))
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_conn(fd);
    }
    close(listen_fd);
    listen_fd = -1;
    reap(1);
    mock_state_dispose();
    mock_finetune_dispose();
    ret = 0;
out:
    if (listen_fd >= 0)
        close(listen_fd);
    for (int i = 0; i < 2; i++)
        if (wake_pipe[i] >= 0)
            close(wake_pipe[i]);
    SSL_CTX_free(ssl_ctx);
    return ret;
}
