/*
 * The OpenAI dialect: reading and checking client requests, and the error
 * shape that every gyre error uses ({"error":{"message","type","param","code"}}),
 * since that is what OpenAI SDKs turn into their error classes.
 */
#ifndef GYRE_DIALECT_OPENAI_H
#define GYRE_DIALECT_OPENAI_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum gyre_openai_endpoint {
    GYRE_OPENAI_CHAT = 1,   /* POST /v1/chat/completions */
    GYRE_OPENAI_EMBEDDINGS, /* POST /v1/embeddings */
    GYRE_OPENAI_OTHER,      /* any other /v1 path with a JSON body: only `model` is read */
} gyre_openai_endpoint_t;

typedef struct gyre_api_error {
    int status;       /* HTTP status */
    const char *type; /* "invalid_request_error", "upstream_error", ... */
    const char *code; /* machine-readable reason, or NULL */
    char param[128];  /* the offending field ("messages[1].role"), or "" */
    char message[768];
} gyre_api_error_t;

typedef struct gyre_openai_request {
    cJSON *json;        /* the parsed body; owned */
    const char *model;  /* the body's model (owned by json), or NULL */
    size_t model_start; /* the model value's bytes in the body... */
    size_t model_end;   /* ...or 0, 0 when they could not be located */
    int stream;
    int include_usage;
    int has_stream_options; /* the body has a stream_options object */
} gyre_openai_request_t;

/*
 * Parses and checks a request body.  Returns 0, or -1 with `err` filled (a
 * 400 naming the field, or where the JSON broke).  For GYRE_OPENAI_OTHER a
 * body that is not JSON is not an error: out->json stays NULL.
 */
int gyre_openai_parse_request(gyre_openai_endpoint_t ep, const char *body, size_t len, gyre_openai_request_t *out,
                              gyre_api_error_t *err);
void gyre_openai_request_dispose(gyre_openai_request_t *r);

/* Fills `err`; the message is printf-formatted. */
void gyre_api_error_set(gyre_api_error_t *err, int status, const char *type, const char *code, const char *param,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Appends the error as OpenAI's JSON shape. */
int gyre_api_error_to_json(const gyre_api_error_t *err, gyre_buf_t *out);

/*
 * Writes `body` with its model value replaced by `model` into `out`: a
 * splice when the value's bytes were located, a re-serialisation otherwise.
 */
int gyre_openai_rewrite_model(const gyre_openai_request_t *r, const char *body, size_t len, const char *model,
                              size_t model_len, gyre_buf_t *out);

#endif
