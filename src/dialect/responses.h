/*
 * The OpenAI Responses API as a client dialect (POST /v1/responses): its
 * requests become the pivot (an OpenAI chat request), chat completions and
 * structured stream events become Response objects and Responses stream
 * events.  The table entry is gyre_client_responses (dialect/client.h);
 * what the table does not carry is here.
 *
 * A request an `openai` provider can serve but the pivot cannot express
 * (hosted tools, item references, background mode) fails to parse with
 * err->code == gyre_responses_native_only: the caller may still pass it
 * through as it is to a provider that speaks the API natively.
 */
#ifndef GYRE_DIALECT_RESPONSES_H
#define GYRE_DIALECT_RESPONSES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/buf.h"
#include "dialect/client.h"

/* The error code (compared by pointer) of a request only a native provider can serve. */
extern const char gyre_responses_native_only[];

/* The longest `previous_response_id` gyre reads; OpenAI's ids are about 50 bytes. */
#define GYRE_RESPONSES_ID_MAX 128

/* Parses and checks a Responses request (the table's `parse`). */
int gyre_responses_parse(const char *body, size_t len, gyre_client_request_t *out, gyre_api_error_t *err);

/*
 * One earlier turn, for previous_response_id: its request body (a Responses
 * request) and its answer (a chat.completion, or a Response object) become
 * the messages that turn added to the conversation: its input (not its
 * instructions, which OpenAI does not carry over either) and the answer as
 * an assistant message.  `prev` gets the earlier request's own
 * previous_response_id ("" when none), so the caller can follow the chain.
 * Returns a JSON array (the caller deletes it), or NULL with `err`.
 */
cJSON *gyre_responses_turn_messages(const char *request, size_t rlen, const char *answer, size_t alen,
                                    char prev[GYRE_RESPONSES_ID_MAX + 1], gyre_api_error_t *err);

/* Puts `history` (taken) at the start of the pivot's messages, after its instructions (leading system messages). */
void gyre_responses_prepend_history(cJSON *pivot, cJSON *history);

/*
 * The encoder keeps the answer so far (each item is repeated whole when it
 * is done, and the output again in response.completed): those buffers are
 * malloc'd, bounded by GYRE_RESPONSES_ANSWER_MAX, and freed here.
 */
#define GYRE_RESPONSES_ANSWER_MAX ((size_t)256 << 20)
void gyre_responses_encoder_dispose(void *enc);

/*
 * A Response object, or the data of the stream event that ends a native stream (response.completed /
 * .incomplete / .failed, whose `response` it reads), as the chat.completion it amounts to: the message text,
 * the function calls as tool_calls, the usage in chat's names.  For the trace of a native call.
 */
int gyre_responses_to_completion(const char *answer, size_t len, gyre_buf_t *out);

/* An error event with the stream's next sequence number, and response.failed after it: the stream's end. */
int gyre_responses_encode_error(void *enc, const gyre_api_error_t *err, gyre_buf_t *out);

#endif
