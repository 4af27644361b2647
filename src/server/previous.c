/* previous_response_id answered from gyre's own trace store (see previous.h). */
#include "server/previous.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/json.h"
#include "dialect/responses.h"
#include "server/api.h"
#include "proxy/respond.h"
#include "trace/writer.h"

#define GYRE_ID_PREFIX "resp_gyre_"
#define GYRE_ID_PREFIX_LEN 10
/* One trace as the API renders it: the bodies (each bounded by the store's capture limit) and the rest. */
#define TRACE_READ_MAX ((size_t)160 << 20)

void gyre_previous_answer_id(h2o_req_t *req, gyre_call_t *call)
{
    char *id = h2o_mem_alloc_pool(&req->pool, GYRE_ID_PREFIX_LEN + 33);
    memcpy(id, GYRE_ID_PREFIX, GYRE_ID_PREFIX_LEN);
    memcpy(id + GYRE_ID_PREFIX_LEN, call->trace->trace_id, 33);
    call->answer_id = id;
}

/* Whether `id` is one gyre gave ("resp_gyre_" and 32 lowercase hex digits); its trace id into `tid`. */
static int gyre_id(const char *id, char tid[33])
{
    if (strlen(id) != GYRE_ID_PREFIX_LEN + 32 || memcmp(id, GYRE_ID_PREFIX, GYRE_ID_PREFIX_LEN) != 0)
        return 0;
    for (size_t i = 0; i < 32; i++) {
        char ch = id[GYRE_ID_PREFIX_LEN + i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    memcpy(tid, id + GYRE_ID_PREFIX_LEN, 32);
    tid[32] = '\0';
    return 1;
}

static gyre_previous_t refuse(gyre_api_error_t *err, const char *id, const char *why)
{
    gyre_api_error_set(err, 400, "invalid_request_error", "previous_response_not_found", "previous_response_id",
                       "previous response '%.64s' cannot be continued: %s", id, why);
    return GYRE_PREVIOUS_ERROR;
}

/*
 * Whether trace `tid` may still be on its way to the store: the writer holds traces it has not written, or the
 * call began recently (a trace id starts with its start time, 12 hex digits of unix milliseconds) and may not
 * have been handed to the writer yet (that happens when the request is disposed, which can follow the
 * client's next request by a moment).
 */
static int may_be_pending(gyre_worker_t *w, const char *tid)
{
    gyre_writer_stats_t st;
    gyre_writer_stats(w->server->writer, &st);
    if (st.queued != 0 || st.index_lag_bytes != 0)
        return 1;
    uint64_t started_ms = 0;
    for (int i = 0; i < 12; i++)
        started_ms = started_ms << 4 | (uint64_t)(tid[i] <= '9' ? tid[i] - '0' : tid[i] - 'a' + 10);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    return started_ms <= now_ms + 60000 && now_ms - started_ms < GYRE_PREVIOUS_RECENT_MS;
}

/*
 * Reads trace `tid` into `out`.  A trace not stored yet is waited for while it may be on its way, at most
 * GYRE_PREVIOUS_WAIT_MS: a client continues a conversation as soon as it has the answer, and the writer stores
 * that answer's trace a few ms later.  The wait blocks this worker's loop; it happens only for an id in gyre's
 * form whose trace is not stored, so its cost is bounded per such request.
 */
static int read_trace(gyre_worker_t *w, const char *tid, gyre_buf_t *out, char *msg, size_t msglen)
{
    int r;
    for (int waited = 0;; waited += GYRE_PREVIOUS_POLL_MS) {
        gyre_buf_reset(out);
        r = gyre_api_read_trace(w->server->config, tid, out, msg, msglen);
        if (r != -ENOENT || waited >= GYRE_PREVIOUS_WAIT_MS || !may_be_pending(w, tid))
            return r;
        struct timespec ts = {0, GYRE_PREVIOUS_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* A body as the trace JSON has it: a JSON value (printed back) or a string (its text). NULL when not captured. */
static char *body_text(const cJSON *trace, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(trace, key);
    if (cJSON_IsString(v))
        return strdup(v->valuestring);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    /* Printed by cJSON (the JSON arena's memory while it is open), copied to the heap for one free(). */
    char *printed = cJSON_PrintUnformatted(v);
    char *text = printed != NULL ? strdup(printed) : NULL;
    cJSON_free(printed);
    return text;
}

/* One earlier turn's messages, and the id of the turn before it (into `prev`). */
static cJSON *read_turn(gyre_worker_t *w, const char *id, char prev[GYRE_RESPONSES_ID_MAX + 1], gyre_api_error_t *err)
{
    char tid[33], msg[512] = "";
    if (!gyre_id(id, tid)) {
        refuse(err, id, "it is not a response gyre gave, and the conversation goes on with gyre's");
        return NULL;
    }
    if (w->server->writer == NULL) {
        refuse(err, id, "this gateway does not store traces (store: {traces: true})");
        return NULL;
    }
    gyre_buf_t out;
    gyre_buf_init(&out, TRACE_READ_MAX);
    int r = read_trace(w, tid, &out, msg, sizeof(msg));
    if (r != 0) {
        refuse(err, id, r == -ENOENT    ? "gyre keeps no such response (its trace is not in the store)"
                        : r == -ENOTSUP ? "this gateway keeps no traces (the config has no store)"
                                        : "the trace store could not be read");
        gyre_buf_dispose(&out);
        return NULL;
    }
    cJSON *trace = cJSON_ParseWithLength(out.base, out.len);
    gyre_buf_dispose(&out);
    char *request = body_text(trace, "request_body"), *answer = body_text(trace, "response_body");
    cJSON *turn = NULL;
    cJSON *req = request != NULL ? cJSON_Parse(request) : NULL;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(trace, "status");
    int ok = cJSON_IsNumber(st) && st->valuedouble == 200;
    if (request == NULL || answer == NULL) {
        refuse(err, id, "its trace does not keep the bodies (the route does not capture them)");
    } else if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(req, "store"))) {
        refuse(err, id, "it was created with store: false");
    } else if (!ok) {
        refuse(err, id, "it did not succeed");
    } else {
        turn = gyre_responses_turn_messages(request, strlen(request), answer, strlen(answer), prev, err);
    }
    cJSON_Delete(req);
    free(request);
    free(answer);
    cJSON_Delete(trace);
    return turn;
}

gyre_previous_t gyre_previous_resolve(gyre_worker_t *w, h2o_req_t *req, gyre_call_t *call, cJSON *pivot,
                                      gyre_api_error_t *err)
{
    size_t start, end;
    const h2o_iovec_t *body = &req->entity;
    if (gyre_json_find_member(body->base, body->len, "previous_response_id", &start, &end) != 0)
        return GYRE_PREVIOUS_NONE;
    cJSON *v = cJSON_ParseWithLength(body->base + start, end - start);
    if (!cJSON_IsString(v)) {
        cJSON_Delete(v);
        return GYRE_PREVIOUS_NONE; /* null (the dialect refused every other type) */
    }
    char id[GYRE_RESPONSES_ID_MAX + 1], first[GYRE_RESPONSES_ID_MAX + 1], tid[33];
    snprintf(id, sizeof(id), "%s", v->valuestring);
    memcpy(first, id, sizeof(first));
    cJSON_Delete(v);
    if (!gyre_id(id, tid))
        return GYRE_PREVIOUS_NATIVE;
    /* The chain back, newest turn first; each turn's messages go before those of the turns after it. */
    cJSON *history = cJSON_CreateArray();
    gyre_previous_t result = GYRE_PREVIOUS_FOUND;
    for (int depth = 0; id[0] != '\0'; depth++) {
        if (depth == GYRE_PREVIOUS_DEPTH_MAX) {
            result = refuse(err, id, "the conversation is longer than gyre follows back (256 turns)");
            break;
        }
        char prev[GYRE_RESPONSES_ID_MAX + 1];
        cJSON *turn = read_turn(w, id, prev, err);
        if (turn == NULL) {
            result = GYRE_PREVIOUS_ERROR;
            break;
        }
        while (cJSON_GetArraySize(history) > 0)
            cJSON_AddItemToArray(turn, cJSON_DetachItemFromArray(history, 0));
        cJSON_Delete(history);
        history = turn;
        memcpy(id, prev, sizeof(id));
    }
    if (result == GYRE_PREVIOUS_FOUND) {
        char *text = cJSON_PrintUnformatted(history);
        if (text == NULL || strlen(text) > GYRE_PREVIOUS_HISTORY_MAX) {
            result = refuse(err, first, "the conversation so far is larger than gyre carries (64 MiB)");
        } else {
            call->history = h2o_strdup(&req->pool, text, strlen(text));
            gyre_responses_prepend_history(pivot, history);
            history = NULL;
        }
        cJSON_free(text);
    }
    cJSON_Delete(history);
    return result;
}

int gyre_previous_retrieve(gyre_worker_t *w, h2o_req_t *req)
{
    static const char prefix[] = "/v1/responses/";
    h2o_iovec_t path = req->path_normalized;
    size_t n = sizeof(prefix) - 1;
    char id[GYRE_RESPONSES_ID_MAX + 1], tid[33];
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) || path.len <= n ||
        memcmp(path.base, prefix, n) != 0 || path.len - n > GYRE_RESPONSES_ID_MAX)
        return 0;
    memcpy(id, path.base + n, path.len - n);
    id[path.len - n] = '\0';
    if (!gyre_id(id, tid))
        return 0; /* OpenAI's, or a sub-path (input_items): OpenAI's store answers it */
    gyre_api_error_t err;
    gyre_buf_t out, answer;
    gyre_buf_init(&out, TRACE_READ_MAX);
    gyre_buf_init(&answer, GYRE_RESPONSES_ANSWER_MAX);
    char msg[512] = "";
    cJSON *trace = NULL, *request = NULL;
    char *req_text = NULL, *ans_text = NULL;
    int r = w->server->writer != NULL ? read_trace(w, tid, &out, msg, sizeof(msg)) : -ENOENT;
    if (r == 0) {
        trace = cJSON_ParseWithLength(out.base, out.len);
        req_text = body_text(trace, "request_body");
        ans_text = body_text(trace, "response_body");
        request = req_text != NULL ? cJSON_Parse(req_text) : NULL;
    }
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(trace, "status");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(trace, "model");
    int found = cJSON_IsObject(request) && ans_text != NULL && !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(request, "store")) &&
                cJSON_IsNumber(status) && status->valuedouble == 200;
    if (found) {
        /* created_at: the call's start, which the trace id begins with (ms). */
        long long started_ms = 0;
        for (int i = 0; i < 12; i++)
            started_ms = started_ms << 4 | (tid[i] <= '9' ? tid[i] - '0' : tid[i] - 'a' + 10);
        gyre_client_call_t cc = {.model = cJSON_IsString(model) ? model->valuestring : NULL, .id = id,
                                 .created = started_ms / 1000, .include_usage = 1, .request = request};
        found = gyre_client_responses.response(&cc, ans_text, strlen(ans_text), &answer, &err) == 0;
    }
    if (found) {
        gyre_respond_json(req, 200, answer.base, answer.len);
    } else {
        /* Missing, uncaptured, store: false or failed: OpenAI's answer for a response it does not hold. */
        gyre_api_error_set(&err, 404, "invalid_request_error", NULL, NULL, "No response found with id '%s'.", id);
        gyre_respond_error(req, &err);
    }
    cJSON_Delete(request);
    cJSON_Delete(trace);
    free(req_text);
    free(ans_text);
    gyre_buf_dispose(&out);
    gyre_buf_dispose(&answer);
    return 1;
}
