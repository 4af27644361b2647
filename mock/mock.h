/*
 * gyre-mock's internal interface: a fake provider that answers in every API
 * gyre speaks upstream (OpenAI, Azure OpenAI, Anthropic, Gemini, Bedrock),
 * for the tests, the benchmarks and offline demos (docs/mock.md).
 *
 * The program is split the way a reader looks for things:
 *   http.c       connections (plain or TLS), a bounded HTTP/1.1 request
 *                reader, responses with a content-length or streamed over
 *                chunked encoding
 *   state.c      the options (changeable at run time), the statistics and
 *                the fault schedule, shared by every connection thread
 *   answer.c     the one deterministic answer every dialect gives: a
 *                conversation (as each dialect reads it from its request)
 *                becomes a reply text or a tool call, with its usage
 *   openai.c     OpenAI's and Azure OpenAI's shapes: chat (streamed or not),
 *                embeddings, models
 *   responses.c  OpenAI's Responses API (streamed or not)
 *   anthropic.c  Anthropic's Messages API
 *   gemini.c     Gemini's generateContent and streamGenerateContent
 *   bedrock.c    Bedrock's Converse and ConverseStream, with SigV4
 *                verification and the binary event stream
 *   hooks.c      the receiver of gyre's notifiers: webhooks recorded, PagerDuty's
 *                Events API v2
 *   main.c       the command line, the acceptor, one thread per connection,
 *                routing to a dialect, faults and shutdown
 *
 * It is deliberately simple (blocking sockets, one thread per connection):
 * a test peer, not a server to benchmark.
 */
#ifndef GYRE_MOCK_H
#define GYRE_MOCK_H

#include <cjson/cJSON.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A request head larger than this is answered 431, a body larger 413. */
#define MOCK_MAX_HEAD (64 * 1024)
#define MOCK_MAX_BODY (16 * 1024 * 1024)
/* `created` in every answer: a fixed time keeps answers byte-for-byte stable. */
#define MOCK_CREATED 1700000000
/* The Bedrock credentials accepted unless --aws-key says otherwise. */
#define MOCK_AWS_KEY_DEFAULT "AKIDGYREMOCK:gyre-mock-secret"

/* ---- main.c ---- */

/*
 * Waits `ms` milliseconds, or less if the mock is stopping.  Returns 0 after
 * the full wait, -1 when cut short (the caller should give up the request).
 */
int mock_wait_ms(long ms);
/*
 * The same, and cut short as well when the client of `c` closes its end (a
 * gateway that gave up on an answer): a paced stream then stops at once, so
 * /_mock/stats shows the request ended (`active`) without waiting for a write
 * to fail.
 */
struct mock_conn;
int mock_conn_wait_ms(struct mock_conn *c, long ms);
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
    int counted;  /* the bytes written answer a provider request: /_mock/stats counts them (bytes_sent) */
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
 * The value of query parameter `name` in the request target, percent-decoded
 * into `out` (at most `size` - 1 bytes, NUL-terminated).  Returns its
 * length, or -1 when the target has no such parameter.
 */
int mock_request_query(const mock_request_t *r, const char *name, char *out, size_t size);

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
/* The same with extra header lines. */
int mock_http_respond_json_with(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                                const cJSON *json);
/* An OpenAI-shaped error: {"error":{"message","type","param","code"}}; param and code may be NULL. */
int mock_http_respond_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                            const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/*
 * A streamed answer over chunked encoding, for every dialect: the head with
 * `content_type`, then chunks, each written at once (one event, or one
 * binary frame, per chunk), then the terminating chunk.
 */
int mock_http_stream_start(mock_conn_t *c, const mock_request_t *r, const char *content_type);
int mock_http_stream_chunk(mock_conn_t *c, const void *data, size_t len);
int mock_http_stream_finish(mock_conn_t *c);
/* OpenAI's SSE: `data: {json}\n\n` as one chunk; the end sends `data: [DONE]` and the terminating chunk. */
int mock_http_stream_event(mock_conn_t *c, const cJSON *json);
int mock_http_stream_end(mock_conn_t *c);

/* ---- state.c ---- */

typedef struct mock_options {
    long latency_ms;       /* before every provider answer */
    double tokens_per_sec; /* paces streamed pieces; 0: as fast as possible */
    char fault[32];        /* one of mock_fault_kinds, or "" for none */
    double fault_rate;     /* the share of provider requests that get the fault */
    char fault_key[256];   /* only requests carrying this provider key get the fault; "" for every request */
} mock_options_t;

/* "429", "500", "503", "529", "reset", "hang", "truncate", "slow-first-byte", "endless-error", "endless-line",
 * "endless-head", then NULL. */
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
/*
 * Counts a request (its path, `model` when not NULL, and the key it carried:
 * a bearer token, api-key, x-api-key, x-goog-api-key, ?key= or a SigV4
 * access key id) and remembers it as the last one.
 */
void mock_state_record(const mock_request_t *r, const char *model);
cJSON *mock_state_stats_json(void);
/* Counts `n` bytes written in answer to provider requests (stats: bytes_sent). */
void mock_state_add_sent(size_t n);
/* A provider request starts (+1) or ends (-1) being answered (stats: active). */
void mock_state_active(int delta);
/* Zeroes the statistics and the fault schedule. */
void mock_state_reset(void);
/* Whether the fault setting is for request r: no fault_key, or r carries that key. */
int mock_state_fault_for(const mock_options_t *o, const mock_request_t *r);
/* Whether the next provider request gets the configured fault (see docs/mock.md). */
int mock_state_fault_now(double rate);

/* ---- hooks.c: the notifiers' receiver (POST /_mock/hooks/{name}, POST /v2/enqueue) ---- */

/* Whether the request is for hooks.c (a path under /_mock/hooks, or PagerDuty's /v2/enqueue). */
int mock_hooks_match(const mock_request_t *r);
int mock_hooks_handle(mock_conn_t *c, const mock_request_t *r);
/* Forgets every recorded body, count and staged failure. */
void mock_hooks_reset(void);

/* ---- finetune.c: the fine-tuning APIs (OpenAI, Together) and adapter serving (vLLM, llama.cpp) ---- */

/* Whether the request is for finetune.c (docs/mock.md, "Fine-tuning and adapters"). */
int mock_finetune_match(const mock_request_t *r);
int mock_finetune_handle(mock_conn_t *c, const mock_request_t *r);
/*
 * The answer of fine-tuned model (or loaded adapter) `model` to a
 * conversation whose last user message is `prompt` (NULL: none): its
 * training answer, a refusal for its faults, or NULL when the base answer
 * stands (or `model` is not a fine-tuned one).  Freed by the caller.
 */
char *mock_finetune_reply(const char *model, const char *prompt);
/* Appends the fine-tuned models and loaded adapters to GET /v1/models' data. */
void mock_finetune_models_json(cJSON *data);
/* --ft-seconds: how long a job runs (0 to 3600 s); returns -1 when `v` is not such a number. */
int mock_finetune_set_seconds(const char *v);
/* --lora PATH: a llama.cpp adapter (a folder with train.jsonl, or a JSONL file); returns -1 with err. */
int mock_finetune_add_lora(const char *path, char *err, size_t errlen);
/* Forgets every file, job, model and loaded adapter (/_mock/reset); --lora adapters go back to scale 0. */
void mock_finetune_reset(void);
/* Frees everything at exit. */
void mock_finetune_dispose(void);

/* ---- answer.c ---- */

typedef enum mock_role { MOCK_ROLE_SYSTEM, MOCK_ROLE_USER, MOCK_ROLE_ASSISTANT, MOCK_ROLE_TOOL } mock_role_t;

typedef enum mock_tool_choice {
    MOCK_TOOLS_AUTO,  /* call the first tool (auto, any, required: the mock always calls one) */
    MOCK_TOOLS_NONE,  /* answer in text */
    MOCK_TOOLS_NAMED, /* call the tool named in tool_name (the first one when no tool has that name) */
} mock_tool_choice_t;

typedef struct mock_message {
    mock_role_t role;
    char *text; /* owned */
} mock_message_t;

/*
 * A conversation as every dialect reads it from its request, in the shape of
 * OpenAI's messages: a system prompt is a message, and each tool result is
 * a message of its own, so that the same conversation counts the same in
 * every dialect.  Owns everything in it.
 */
typedef struct mock_convo {
    mock_message_t *msgs;
    size_t n, cap;
    cJSON *tools; /* [{"name":..., "schema":{...}}] */
    mock_tool_choice_t tool_choice;
    char *tool_name;
    long max_tokens; /* 0: no limit */
    cJSON *stop;     /* an array of stop strings */
    /* The model asked for (not owned; NULL: unknown): a fine-tuned one answers its own way (finetune.c). */
    const char *model;
} mock_convo_t;

void mock_convo_init(mock_convo_t *cv);
void mock_convo_dispose(mock_convo_t *cv);
/* Appends a message; takes `text` (NULL is an empty text). */
void mock_convo_add(mock_convo_t *cv, mock_role_t role, char *text);
/* Appends a tool: `schema` is copied (NULL: an empty object schema). */
void mock_convo_add_tool(mock_convo_t *cv, const char *name, const cJSON *schema);
/* Appends a stop sequence (a string item, or each string of an array). */
void mock_convo_add_stop(mock_convo_t *cv, const cJSON *stop);

typedef enum mock_finish {
    MOCK_FINISH_STOP,          /* the reply is whole */
    MOCK_FINISH_LENGTH,        /* cut at the request's token limit */
    MOCK_FINISH_STOP_SEQUENCE, /* cut before one of the request's stop sequences */
    MOCK_FINISH_TOOL,          /* a tool call */
} mock_finish_t;

typedef struct mock_answer {
    char *text;         /* the reply (a continuation's rest); NULL for a tool call (owned) */
    char *tool_name;    /* the tool called (owned) */
    char *tool_args;    /* its arguments, compact JSON (owned) */
    char *stop_seq;     /* the stop sequence met, with MOCK_FINISH_STOP_SEQUENCE (owned) */
    uint32_t hash;      /* FNV-1a of the request body: the seed of every id */
    uint32_t call_hash; /* FNV-1a of "call" continued from `hash`: the seed of a tool call's id */
    mock_finish_t finish;
    long prompt_tokens, completion_tokens;
} mock_answer_t;

/* The answer to `cv` (docs/mock.md, "Determinism rules"), seeded by the request body's bytes. */
void mock_answer_make(const mock_convo_t *cv, const char *body, size_t len, mock_answer_t *a);
void mock_answer_dispose(mock_answer_t *a);
/* A judge's verdict (response_format json_schema "gyre_verdict") in place of a's text: docs/mock.md. */
void mock_answer_verdict(const mock_convo_t *cv, mock_answer_t *a);

uint32_t mock_fnv1a(const char *s, size_t n, uint32_t h);
#define MOCK_FNV_OFFSET 2166136261u
size_t mock_count_words(const char *s);
/* The length of the stream piece at `s`: a word and the whitespace after it (leading whitespace included). */
size_t mock_piece_len(const char *s);
/* The `key` strings of an array's objects (or the string itself) joined by one space; freed by the caller. */
char *mock_join_texts(const cJSON *content, const char *key);
/* The wait before each streamed piece, from tokens_per_sec. */
long mock_pace_ms(const mock_options_t *o);

/* ---- the dialects ---- */

/*
 * Each dialect answers its paths and states errors in its own shape; main.c
 * stages faults through `error` so that a fault looks like the provider's.
 * `error` is given the HTTP status and a message; `extra_headers` as in
 * mock_http_respond.
 */
typedef struct mock_dialect {
    const char *name;
    int (*error)(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers, const char *message);
} mock_dialect_t;

extern const mock_dialect_t mock_dialect_openai;
extern const mock_dialect_t mock_dialect_azure;
extern const mock_dialect_t mock_dialect_anthropic;
extern const mock_dialect_t mock_dialect_gemini;
extern const mock_dialect_t mock_dialect_bedrock;

/* openai.c: `req` is the parsed body, a JSON object; `model` overrides its model (Azure's deployment) when not NULL. */
int mock_openai_chat(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model,
                     const mock_options_t *o);
int mock_openai_embeddings(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model);
int mock_openai_models(mock_conn_t *c, const mock_request_t *r);
/* responses.c: POST /v1/responses, OpenAI's Responses API.  `req` is the parsed body, a JSON object. */
int mock_openai_responses(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const mock_options_t *o);

/* anthropic.c: POST /v1/messages.  `req` is the parsed body (any JSON, or NULL). */
int mock_anthropic_messages(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const mock_options_t *o);

/* gemini.c: `model` is from the path; `stream` for :streamGenerateContent. */
int mock_gemini_generate(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model, int stream,
                         const mock_options_t *o);

/* bedrock.c */
/* The credentials SigV4 requests must be signed with, "AKID:SECRET"; returns -1 when malformed. */
int mock_bedrock_set_key(const char *akid_secret);
/*
 * Checks a request's authentication (SigV4, or a Bedrock API key as a
 * bearer token).  Returns 1 when it may go on; else it has answered and
 * *ret is what the response returned.
 */
int mock_bedrock_authenticate(mock_conn_t *c, const mock_request_t *r, int *ret);
int mock_bedrock_converse(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model, int stream,
                          const mock_options_t *o);
/* The CRC-32 (IEEE 802.3, as zlib computes it) of `n` bytes, continued from `crc` (0 to start). */
uint32_t mock_crc32(uint32_t crc, const void *p, size_t n);

#endif
