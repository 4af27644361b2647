/*
 * Client dialects: the table of the APIs gyre answers, mirroring the table
 * of provider dialects (dialect.h).
 *
 * A client dialect reads its requests into the pivot (an OpenAI chat
 * request), and writes answers back in its own shape: a whole answer from
 * the pivot's chat.completion, a stream from structured events
 * (dialect/event.h), errors in its error shape.  A provider kind that
 * speaks the client's API natively (`native`) gets the client's body as it
 * was written, and its answer is relayed as it came.  Adding a client API
 * is adding a file and a line in gyre_client_dialects[].
 */
#ifndef GYRE_DIALECT_CLIENT_H
#define GYRE_DIALECT_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/buf.h"
#include "config/config.h"
#include "dialect/event.h"
#include "dialect/openai.h"

/* A provider kind's bit in `native` and `served`. */
#define GYRE_KIND_BIT(kind) (1u << (kind))
#define GYRE_KINDS_OPENAI (GYRE_KIND_BIT(GYRE_PROVIDER_OPENAI) | GYRE_KIND_BIT(GYRE_PROVIDER_AZURE))
#define GYRE_KINDS_ALL                                                                                                 \
    (GYRE_KINDS_OPENAI | GYRE_KIND_BIT(GYRE_PROVIDER_ANTHROPIC) | GYRE_KIND_BIT(GYRE_PROVIDER_GEMINI) |              \
     GYRE_KIND_BIT(GYRE_PROVIDER_BEDROCK))

/* A client request, read and checked. */
typedef struct gyre_client_request {
    cJSON *pivot;       /* the OpenAI chat request it amounts to (owned; the caller deletes it) */
    const char *model;  /* the model the client named (owned by pivot) */
    int stream;
    int include_usage;  /* the client wants usage in its stream (always, for APIs whose events carry it) */
    int has_stream_options; /* the body has an OpenAI stream_options object (gyre asks for usage by a splice) */
    /* The client's own body, kept for a native provider: where its model value is (quotes included), so the
     * route's model can be spliced in; 0, 0 when not located. */
    size_t model_start, model_end;
} gyre_client_request_t;

/* What an encoder is told about the call when it is created. */
typedef struct gyre_client_call {
    const char *model;  /* the model to name when the provider named none (the client's) */
    const char *id;     /* an id gyre made for this answer ("resp_...", "msg_..."), NUL-terminated */
    long long created;  /* unix seconds */
    int include_usage;  /* the client asked for usage: a USAGE event is encoded only then */
    const cJSON *request; /* the client's request as parsed (echoed by some APIs: Responses' instructions, tools);
                           * may be NULL, and is valid only during encoder_init: copy what is needed later */
} gyre_client_call_t;

typedef struct gyre_client_dialect {
    const char *name;   /* "openai", "anthropic", "responses" */
    const char *path;   /* the endpoint: "/v1/chat/completions", "/v1/messages", "/v1/responses" */
    /* For an API whose path carries part of the request (Gemini's model and streaming): NULL for the others,
     * which are served at `path` exactly.  Returns 1 when `path` is this API's (and, when `req` is not NULL,
     * writes what the path says into the parsed request: its pivot's model, stream), 0 when it is not, -1 with a
     * 400 in `err` when it is but what it says is not valid. */
    int (*from_path)(const char *path, size_t len, gyre_client_request_t *req, gyre_api_error_t *err);
    /* Provider kinds (GYRE_KIND_BIT) that speak this API natively. */
    unsigned native;
    /* Provider kinds that can serve it at all: the native ones, and those the pivot reaches through their
     * provider dialect.  Planning skips a target of any other kind (gyre_client_dialect_serves). */
    unsigned served;
    /* The body → the pivot.  Returns 0, or -1 with a 400 in `err` naming the field. */
    int (*parse)(const char *body, size_t len, gyre_client_request_t *out, gyre_api_error_t *err);
    /* A whole answer: the pivot's chat.completion → this API's answer.  Returns 0, or -1 with a 502 in `err`. */
    int (*response)(const gyre_client_call_t *call, const char *completion, size_t len, gyre_buf_t *out,
                    gyre_api_error_t *err);
    /* A stream: events → this API's stream bytes.  The encoder lives in `encoder_size` bytes the caller gives it
     * (the request's pool): nothing is allocated per event.  `encode` appends whole events of this API to `out`
     * or, when `out` cannot take them, leaves `out` as it was and returns -1 (the stream cannot go on).  An
     * ERROR event is written as this API's error event; after it the encoder writes nothing more.
     * `encoder_dispose` (NULL when there is nothing to free) releases what an encoder grew while encoding. */
    size_t encoder_size;
    void (*encoder_init)(void *enc, const gyre_client_call_t *call);
    int (*encode)(void *enc, const gyre_event_t *ev, gyre_buf_t *out);
    void (*encoder_dispose)(void *enc);
    /* Whether the stream written so far ended as this API says (its last event). */
    int (*encoder_complete)(const void *enc);
    /* Errors in this API's shape: a whole body, and an event that ends a stream. */
    int (*error_body)(const gyre_api_error_t *err, gyre_buf_t *out);
    int (*error_event)(const gyre_api_error_t *err, gyre_buf_t *out);
    /* A native pass-through stream, relayed as it came: whether this SSE event (its `event:` name, "" when none,
     * and its data) ends it as this API says (OpenAI's [DONE] or error chunk, Anthropic's message_stop or error
     * event, ...).  A stream cut before such an event is an interrupted one. */
    int (*stream_ends)(const char *event, size_t event_len, const char *data, size_t data_len);
    /* A native answer in this API (a whole body, or the data of the stream event that ends it) as the
     * chat.completion it amounts to, for the trace's tokens and response; NULL when the provider dialect reads
     * native answers itself (chat completions, Anthropic's messages).  0, or -1 when it cannot be read. */
    int (*native_completion)(const char *answer, size_t len, gyre_buf_t *out);
    /* A response header this API's SDKs read the request's id from ("request-id"), or NULL. */
    const char *request_id_header;
} gyre_client_dialect_t;

extern const gyre_client_dialect_t gyre_client_openai;    /* POST /v1/chat/completions */
extern const gyre_client_dialect_t gyre_client_anthropic; /* POST /v1/messages */
extern const gyre_client_dialect_t gyre_client_responses; /* POST /v1/responses (dialect/responses.c) */
extern const gyre_client_dialect_t gyre_client_gemini;    /* POST /v1beta/models/{model}:generateContent */

/* The table, NULL-terminated, in the order gyre_client_dialect_for_path() looks. */
extern const gyre_client_dialect_t *const gyre_client_dialects[];

/* The client dialect serving `path` (its `path` exactly, or as its from_path says), or NULL. */
const gyre_client_dialect_t *gyre_client_dialect_for_path(const char *path, size_t len);

/*
 * Whether a provider of `kind` can serve a call in `client`'s API to
 * `endpoint`: a chat call (GYRE_OPENAI_CHAT, whatever the client's API)
 * when `served` has the kind; any other OpenAI path (embeddings,
 * /v1/completions, passed through as it is) only when the kind speaks
 * OpenAI.  Planning skips the targets that cannot (a request the kind
 * cannot express is no failure of the target's).
 */
int gyre_client_dialect_serves(const gyre_client_dialect_t *client, gyre_openai_endpoint_t endpoint,
                               gyre_provider_kind_t kind);

/*
 * A stored chat.completion (the response cache's) replayed as this API's
 * stream: the chunk stream gyre_openai_completion_to_sse() writes, as it is
 * for the pivot's own API, else read into events and encoded.  Returns 0,
 * or -1 when the completion cannot be replayed or `out` is full.
 */
int gyre_client_dialect_replay(const gyre_client_dialect_t *client, const char *completion, size_t len,
                               int include_usage, gyre_buf_t *out);

#endif
