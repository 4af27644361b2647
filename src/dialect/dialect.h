/*
 * Provider dialects: the table of functions each provider API implements.
 *
 * gyre's pivot is OpenAI's chat completions shape.  A client request in
 * another shape (Anthropic's /v1/messages) is first turned into it; a
 * provider that speaks another API gets it translated on the way out, and
 * its answer translated back.  So each provider kind is one file that turns
 * an OpenAI chat request into its own request, and its answers (whole
 * bodies, error bodies, streams) back into OpenAI's.  Adding a provider is
 * adding a file and a line in gyre_dialect_for().
 *
 * Errors follow the layer's convention: 0 or -1 with `err` filled (status,
 * type, message naming what was wrong, never a key).
 */
#ifndef GYRE_DIALECT_H
#define GYRE_DIALECT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "dialect/event.h"
#include "dialect/openai.h"

/* One chat call as a dialect sees it.  Everything is borrowed. */
typedef struct gyre_chat_call {
    const cJSON *req; /* the OpenAI chat.completions request (the client's, or translated into that shape) */
    const char *model; /* the provider's model (the route target's), NUL-terminated */
    const gyre_provider_conf_t *provider;
    int stream;        /* the client asked for a stream */
    int include_usage; /* ... with stream_options.include_usage: true */
    const char *id;    /* "chatcmpl-..." for answers gyre builds itself */
    long long created; /* unix seconds for answers gyre builds itself */
} gyre_chat_call_t;

/* A provider stream being read into events; each dialect's state
 * "inherits" from this by putting it first. */
typedef struct gyre_dialect_stream {
    int complete; /* the provider's stream ended as its protocol says (message_stop, ...) */
} gyre_dialect_stream_t;

typedef struct gyre_dialect {
    const char *kind; /* "openai", "anthropic", ... as in the config */
    /* Its answers are OpenAI's own (openai, azure): they pass through as they are. */
    int speaks_openai;
    /*
     * Builds the request for a chat call: `path` gets the path to append to
     * the provider's base path (leading '/', query included), `body` the
     * JSON to send.  Returns -1 with a 400 in `err` for a request the
     * provider's API cannot express.
     */
    int (*chat_request)(const gyre_chat_call_t *call, gyre_buf_t *path, gyre_buf_t *body, gyre_api_error_t *err);
    /*
     * Authentication and dialect headers for one attempt, appended to
     * `headers` as complete "name: value\r\n" lines.  `key` is the secret
     * (NULL when the provider has none); `host`, `path` and `body` are what
     * will be sent (SigV4 signs them); `now` is unix seconds.
     */
    int (*auth_headers)(const gyre_chat_call_t *call, const char *key, const char *host, const char *path,
                        const char *body, size_t body_len, long long now, gyre_buf_t *headers);
    /*
     * The path, after the provider's base path, of a body passed as the
     * client wrote it (kinds that speak OpenAI; NULL for the others): `rest`
     * is the OpenAI path after "/v1" ("/chat/completions", "/embeddings", ...),
     * `query` the client's query (checked already; length 0: none), `model`
     * the target's model (a call without one never comes here: its path
     * goes as it came).  OpenAI's is the path itself; Azure's is the model's
     * deployment.  Returns 0, -EINVAL
     * when the model cannot be a path segment, -E2BIG when `path` is full.
     */
    int (*native_path)(const gyre_provider_conf_t *p, const char *model, size_t model_len, const char *rest,
                       size_t rest_len, const char *query, size_t query_len, gyre_buf_t *path);
    /* A whole 2xx answer to a non-streaming call → an OpenAI chat.completion JSON object in `out`. */
    int (*chat_response)(const gyre_chat_call_t *call, const char *body, size_t len, gyre_buf_t *out,
                         gyre_api_error_t *err);
    /* The message of a provider's error body (any status >= 400), for the
     * OpenAI-shaped error gyre relays; the body itself when it has no
     * recognisable message. */
    void (*error_message)(const char *body, size_t len, gyre_buf_t *out);
    /*
     * Streaming: the provider's body bytes, in pieces as they arrive, are
     * read once into structured events (dialect/event.h) sent to `sink`: a
     * START (the call's id and created, the provider's model or the call's),
     * TEXT and tool-call events, FINISH, USAGE (always, when the provider
     * reported any: the client's encoder decides whether it shows), and DONE
     * at the provider's proper end.  Nothing is allocated per read or per
     * event (the JSON of an event is parsed in the per-thread arena).
     * Returns 0, or -1 with `err` filled when the provider sent an error
     * event or bytes that cannot be read, or when the sink stopped (then
     * `err` says the translated stream could not go on); the caller ends the
     * client's stream with an error event.  `complete` is set once the
     * provider's stream ended properly.  The openai and azure dialects read
     * OpenAI chunks (gyre_openai_reader_t) and send each one's data as a
     * CHUNK event first.
     */
    gyre_dialect_stream_t *(*stream_create)(const gyre_chat_call_t *call);
    int (*stream_feed)(gyre_dialect_stream_t *s, const char *bytes, size_t len, const gyre_event_sink_t *sink,
                       gyre_api_error_t *err);
    void (*stream_destroy)(gyre_dialect_stream_t *s);
} gyre_dialect_t;

/* The dialect of a provider kind; never NULL for a kind the config accepts. */
const gyre_dialect_t *gyre_dialect_for(gyre_provider_kind_t kind);

extern const gyre_dialect_t gyre_dialect_openai;
extern const gyre_dialect_t gyre_dialect_azure;
extern const gyre_dialect_t gyre_dialect_anthropic;
extern const gyre_dialect_t gyre_dialect_gemini;
extern const gyre_dialect_t gyre_dialect_bedrock;

/* OpenAI's finish_reason for the usual provider stop reasons; shared by the dialects. */
const char *gyre_dialect_finish_reason(const char *provider_reason);

#endif
