/*
 * gyre-mock's internal interface: a fake OpenAI-compatible provider for the
 * tests, the benchmarks and offline demos (docs/mock.md).
 *
 * The program is split the way a reader looks for things:
 *   http.c    connections (plain or TLS), a bounded HTTP/1.1 request reader,
 *             responses with a content-length or as SSE over chunked encoding
 *   state.c   the options (changeable at run time), the statistics and the
 *             fault schedule, shared by every connection thread
 *   openai.c  the deterministic answers: chat (streamed or not, tool calls),
 *             embeddings, models
 *   main.c    the command line, the acceptor, one thread per connection,
 *             routing, faults and shutdown
 *
 * It is deliberately simple (blocking sockets, one thread per connection):
 * a test peer, not a server to benchmark.
 */
#ifndef GYRE_MOCK_H
#define GYRE_MOCK_H

#include <cjson/cJSON.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

/* A request head larger than this is answered 431, a body larger 413. */
#define MOCK_MAX_HEAD (64 * 1024)
#define MOCK_MAX_BODY (16 * 1024 * 1024)
/* `created` in every answer: a fixed time keeps answers byte-for-byte stable. */
#define MOCK_CREATED 1700000000

/* ---- main.c ---- */

/*
 * Waits `ms` milliseconds, or less if the mock is stopping.  Returns 0 after
 * the full wait, -1 when cut short (the caller should give up the request).
 */
int mock_wait_ms(long ms);
/* Whether SIGTERM or SIGINT has been received. */
int mock_stopping(void);

/* ---- http.c ---- */

typedef struct mock_conn {
    int fd;
    SSL *ssl; /* NULL for plain TCP */
    char *in; /* bytes read and not yet used; owned, freed by mock_conn_dispose */
    size_t inlen, incap;
    int truncate; /* the current response is cut: half its body, or a stream without its end */
    int reset;    /* the connection ends with a TCP reset, without a TLS close_notify */
} mock_conn_t;

typedef struct mock_request {
    char method[16];
    char path[2048]; /* the request target, query included */
    cJSON *headers;  /* lower-case name -> value; repeated fields joined by ", " */
    char *body;      /* NUL-terminated for convenience; body_len excludes it */
    size_t body_len;
    int keep_alive;
} mock_request_t;

void mock_conn_dispose(mock_conn_t *c);
ssize_t mock_conn_read(mock_conn_t *c, char *buf, size_t n);
int mock_conn_write(mock_conn_t *c, const void *p, size_t n);

/*
 * Reads one request.  Returns 0 (then `r` must be disposed), -1 when the
 * connection ended or failed, or an HTTP status (400, 413, 414, 431) for
 * input that breaks the bounds or the syntax; after a status the connection
 * cannot be trusted to be in sync and is closed.
 */
int mock_http_read_request(mock_conn_t *c, mock_request_t *r);
void mock_request_dispose(mock_request_t *r);
const char *mock_request_header(const mock_request_t *r, const char *name);

/*
 * Responses.  Each returns 0 when the connection may serve another request,
 * -1 when it must be closed.  `r` may be NULL (no request could be read).
 * With c->truncate set, a response promises its whole length, sends half of
 * it and returns -1.  `extra_headers` is NULL or complete "name: value\r\n"
 * lines.
 */
int mock_http_respond(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers, const char *body,
                      size_t len);
int mock_http_respond_json(mock_conn_t *c, const mock_request_t *r, int status, const cJSON *json);
/* An OpenAI-shaped error: {"error":{"message","type","param","code"}}; param and code may be NULL. */
int mock_http_respond_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                            const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Server-sent events over chunked encoding; each event is one HTTP chunk, written at once. */
int mock_http_stream_start(mock_conn_t *c, const mock_request_t *r);
int mock_http_stream_event(mock_conn_t *c, const cJSON *json);
/* Sends `data: [DONE]` and the terminating chunk. */
int mock_http_stream_end(mock_conn_t *c);

/* ---- state.c ---- */

typedef struct mock_options {
    long latency_ms;       /* before every /v1 answer */
    double tokens_per_sec; /* paces streamed pieces; 0: as fast as possible */
    char fault[32];        /* one of mock_fault_kinds, or "" for none */
    double fault_rate;     /* the share of /v1 requests that get the fault */
} mock_options_t;

/* "429", "500", "503", "reset", "hang", "truncate", "slow-first-byte", then NULL. */
extern const char *const mock_fault_kinds[];

/* Returns NULL when `o` is acceptable, else what is wrong with it. */
const char *mock_options_check(const mock_options_t *o, const char **param);

void mock_state_init(const mock_options_t *o);
void mock_state_dispose(void);
mock_options_t mock_state_options(void);
/*
 * Applies a /_mock/config body: any of latency_ms, tokens_per_sec, fault
 * (a kind or null), fault_rate.  All or nothing: returns NULL when applied,
 * else the error (and *param the field) with the options unchanged.
 */
const char *mock_state_configure(const cJSON *json, const char **param);
cJSON *mock_state_options_json(void);
/* Counts a request (path, model, key) and remembers it as the last one. */
void mock_state_record(const mock_request_t *r, const cJSON *body);
cJSON *mock_state_stats_json(void);
/* Zeroes the statistics and the fault schedule. */
void mock_state_reset(void);
/* Whether the next /v1 request gets the configured fault (see docs/mock.md). */
int mock_state_fault_now(double rate);

/* ---- openai.c ---- */

/* `req` is the parsed body, a JSON object. */
int mock_openai_chat(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const mock_options_t *o);
int mock_openai_embeddings(mock_conn_t *c, const mock_request_t *r, const cJSON *req);
int mock_openai_models(mock_conn_t *c, const mock_request_t *r);

#endif
