/*
 * The Anthropic Messages API, both ways.
 *
 * As a provider kind (gyre_dialect_anthropic in dialect.h): OpenAI chat
 * requests become Messages requests and Anthropic's answers and event
 * streams become OpenAI's.
 *
 * As a client dialect (gyre's own POST /v1/messages): a Messages request
 * becomes an OpenAI chat request for providers of other kinds, and their
 * OpenAI-shaped answers and chunk streams become Anthropic's message
 * objects and events.  Errors go back in Anthropic's error shape.
 */
#ifndef GYRE_DIALECT_ANTHROPIC_H
#define GYRE_DIALECT_ANTHROPIC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/buf.h"
#include "dialect/openai.h"

#define GYRE_ANTHROPIC_VERSION "2023-06-01"

/*
 * Checks a /v1/messages request body (model, max_tokens, messages with
 * roles user/assistant, content as a string or blocks).  Returns the parsed
 * body (the caller deletes it), or NULL with a 400 in `err` naming the field.
 */
cJSON *gyre_anthropic_parse_request(const char *body, size_t len, gyre_api_error_t *err);

/*
 * A Messages request → the equivalent OpenAI chat request (system blocks
 * become a system message, tool_use/tool_result blocks become tool_calls and
 * tool messages, image blocks become image_url parts, tools and tool_choice,
 * stop_sequences → stop, stream).  Returns a new object, or NULL with `err`.
 */
cJSON *gyre_anthropic_request_to_openai(const cJSON *messages_req, gyre_api_error_t *err);

/* An OpenAI chat.completion → an Anthropic message object ("msg_..." from the completion's id). */
int gyre_anthropic_response_from_openai(const char *openai, size_t len, gyre_buf_t *out, gyre_api_error_t *err);

/*
 * The stream side of /v1/messages is gyre_client_anthropic (dialect/client.h):
 * structured events → message_start, content_block_start/delta/stop
 * (text_delta, input_json_delta for tool calls), message_delta with
 * stop_reason and usage, message_stop; an ERROR event becomes an Anthropic
 * `error` event.
 */

/* {"type":"error","error":{"type":...,"message":...}} with Anthropic's type for err->status
 * (400 invalid_request_error, 401 authentication_error, 403 permission_error,
 * 404 not_found_error, 413 request_too_large, 429 rate_limit_error,
 * 529 overloaded_error, other 4xx invalid_request_error, anything else api_error). */
int gyre_anthropic_error_to_json(const gyre_api_error_t *err, gyre_buf_t *out);
/* The same as an SSE `error` event. */
int gyre_anthropic_error_event(const gyre_api_error_t *err, gyre_buf_t *out);

#endif
