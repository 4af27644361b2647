/*
 * gyre-mock's Gemini API: POST /v1beta/models/{model}:generateContent and
 * :streamGenerateContent (server-sent events with ?alt=sse, else one JSON
 * array), with Google's error shape.  The key comes as x-goog-api-key or
 * ?key= (state.c records either).
 *
 * The request is read into the shared conversation (answer.c):
 * systemInstruction is a message, a "model" content is the assistant's,
 * and each functionResponse part is a tool message of its own, so the
 * answer is the one every other dialect gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* ---- errors ---- */

/* google.rpc.Code's name for an HTTP status, as Gemini's errors carry it. */
static const char *status_name(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 429: return "RESOURCE_EXHAUSTED";
    case 503:
    case 529: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return "INTERNAL";
    }
}

/* {"error":{"code":N,"message":...,"status":...}} */
static int gemini_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                        const char *message)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "status", status_name(status));
    int ret = mock_http_respond_json_with(c, r, status, extra_headers, root);
    cJSON_Delete(root);
    return ret;
}

const mock_dialect_t mock_dialect_gemini = {"gemini", gemini_error};

/* ---- the request ---- */

/*
 * A functionResponse's text: its response's "output", "result" or "content"
 * when that is a string (the keys Google's documentation and SDKs use),
 * else the response as compact JSON.
 */
static char *function_response_text(const cJSON *fr)
{
    const cJSON *resp = member(fr, "response");
    static const char *const keys[] = {"output", "result", "content"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *v = member(resp, keys[i]);
        if (cJSON_IsString(v))
            return gyre_strdup(v->valuestring);
    }
    return resp != NULL ? cJSON_PrintUnformatted(resp) : gyre_strdup("");
}

static void read_content(const cJSON *content, mock_convo_t *cv)
{
    const cJSON *role = member(content, "role"), *parts = member(content, "parts"), *p;
    if (cJSON_IsString(role) && strcmp(role->valuestring, "model") == 0) {
        mock_convo_add(cv, MOCK_ROLE_ASSISTANT, mock_join_texts(parts, "text"));
        return;
    }
    cJSON *pending = cJSON_CreateArray();
    size_t added = 0;
    cJSON_ArrayForEach(p, (cJSON_IsArray(parts) ? parts : NULL))
    {
        const cJSON *fr = member(p, "functionResponse");
        if (fr == NULL) {
            cJSON_AddItemToArray(pending, cJSON_Duplicate(p, 1));
            continue;
        }
        if (cJSON_GetArraySize(pending) > 0) {
            mock_convo_add(cv, MOCK_ROLE_USER, mock_join_texts(pending, "text"));
            cJSON_Delete(pending);
            pending = cJSON_CreateArray();
            added++;
        }
        mock_convo_add(cv, MOCK_ROLE_TOOL, function_response_text(fr));
        added++;
    }
    if (cJSON_GetArraySize(pending) > 0 || added == 0)
        mock_convo_add(cv, MOCK_ROLE_USER, mock_join_texts(pending, "text"));
    cJSON_Delete(pending);
}

static void read_convo(const cJSON *req, mock_convo_t *cv)
{
    const cJSON *system = member(req, "systemInstruction"), *c, *t, *f;
    if (cJSON_IsObject(system))
        mock_convo_add(cv, MOCK_ROLE_SYSTEM, mock_join_texts(member(system, "parts"), "text"));
    cJSON_ArrayForEach(c, member(req, "contents"))
    {
        read_content(c, cv);
    }
    cJSON_ArrayForEach(t, (cJSON_IsArray(member(req, "tools")) ? member(req, "tools") : NULL))
    {
        cJSON_ArrayForEach(
            f, (cJSON_IsArray(member(t, "functionDeclarations")) ? member(t, "functionDeclarations") : NULL))
        {
            const cJSON *name = member(f, "name"), *schema = member(f, "parameters");
            if (schema == NULL)
                schema = member(f, "parametersJsonSchema");
            mock_convo_add_tool(cv, cJSON_IsString(name) ? name->valuestring : "tool", schema);
        }
    }
    const cJSON *fcc = member(member(req, "toolConfig"), "functionCallingConfig");
    const cJSON *mode = member(fcc, "mode"), *allowed = cJSON_GetArrayItem(member(fcc, "allowedFunctionNames"), 0);
    if (cJSON_IsString(mode) && strcmp(mode->valuestring, "NONE") == 0) {
        cv->tool_choice = MOCK_TOOLS_NONE;
    } else if (cJSON_IsString(allowed)) {
        cv->tool_choice = MOCK_TOOLS_NAMED;
        cv->tool_name = gyre_strdup(allowed->valuestring);
    }
    const cJSON *gen = member(req, "generationConfig"), *max = member(gen, "maxOutputTokens");
    if (cJSON_IsNumber(max) && max->valuedouble >= 1 && max->valuedouble < 1e9)
        cv->max_tokens = (long)max->valuedouble;
    mock_convo_add_stop(cv, member(gen, "stopSequences"));
}

/* Checks what Gemini requires; returns NULL, or the message of the 400. */
static const char *check_request(const cJSON *req)
{
    const cJSON *contents = member(req, "contents"), *c;
    if (!cJSON_IsArray(contents) || cJSON_GetArraySize(contents) == 0)
        return "* GenerateContentRequest.contents: contents is not specified";
    cJSON_ArrayForEach(c, contents)
    {
        const cJSON *role = member(c, "role");
        if (role != NULL && !(cJSON_IsString(role) &&
                              (strcmp(role->valuestring, "user") == 0 || strcmp(role->valuestring, "model") == 0 ||
                               strcmp(role->valuestring, "function") == 0)))
            return "Please use a valid role: user, model.";
        if (!cJSON_IsArray(member(c, "parts")))
            return "* GenerateContentRequest.contents: contents.parts must not be empty.";
    }
    return NULL;
}

/* ---- the answer ---- */

typedef struct reply {
    mock_answer_t a;
    char id[32]; /* responseId: mock-xxxxxxxx */
    const char *model;
} reply_t;

/*
 * One GenerateContentResponse: a candidate with `part` (taken), and with
 * `final` the finishReason and usageMetadata that end an answer.
 */
static cJSON *response_json(const reply_t *rp, cJSON *part, int final)
{
    cJSON *root = cJSON_CreateObject(), *cand = cJSON_CreateObject();
    cJSON *content = cJSON_AddObjectToObject(cand, "content");
    cJSON_AddStringToObject(content, "role", "model");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(content, "parts"), part);
    if (final)
        cJSON_AddStringToObject(cand, "finishReason", rp->a.finish == MOCK_FINISH_LENGTH ? "MAX_TOKENS" : "STOP");
    cJSON_AddNumberToObject(cand, "index", 0);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "candidates"), cand);
    if (final) {
        cJSON *u = cJSON_AddObjectToObject(root, "usageMetadata");
        cJSON_AddNumberToObject(u, "promptTokenCount", (double)rp->a.prompt_tokens);
        cJSON_AddNumberToObject(u, "candidatesTokenCount", (double)rp->a.completion_tokens);
        cJSON_AddNumberToObject(u, "totalTokenCount", (double)(rp->a.prompt_tokens + rp->a.completion_tokens));
    }
    cJSON_AddStringToObject(root, "modelVersion", rp->model);
    cJSON_AddStringToObject(root, "responseId", rp->id);
    return root;
}

static cJSON *text_part(const char *text, size_t len)
{
    char *s = gyre_strndup(text, len);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", s);
    free(s);
    return p;
}

static cJSON *call_part(const reply_t *rp)
{
    cJSON *p = cJSON_CreateObject(), *fc = cJSON_AddObjectToObject(p, "functionCall");
    cJSON_AddStringToObject(fc, "name", rp->a.tool_name);
    cJSON_AddItemToObject(fc, "args", cJSON_Parse(rp->a.tool_args));
    return p;
}

/*
 * The answer as the stream's responses, in order: a text answer one per
 * word piece (one empty piece for an empty text), a call one response; the
 * last one carries the finish.  Each is handed to `emit`; stops at the
 * first that fails.
 */
typedef int (*emit_cb)(mock_conn_t *c, cJSON *response, void *ctx);

static int each_response(mock_conn_t *c, const reply_t *rp, long pace_ms, emit_cb emit, void *ctx)
{
    if (rp->a.text == NULL)
        return c->truncate ? -1 : emit(c, response_json(rp, call_part(rp), 1), ctx);
    const char *p = rp->a.text;
    int sent = 0;
    do {
        if (c->truncate && sent == 2)
            return -1; /* cut: two pieces, never the one with the finish */
        if (mock_wait_ms(pace_ms) != 0)
            return -1;
        size_t n = mock_piece_len(p);
        int final = p[n] == '\0' && !c->truncate;
        if (emit(c, response_json(rp, text_part(p, n), final), ctx) != 0)
            return -1;
        p += n;
        sent++;
    } while (*p != '\0');
    return c->truncate ? -1 : 0;
}

static int emit_sse(mock_conn_t *c, cJSON *response, void *ctx)
{
    (void)ctx;
    char *text = cJSON_PrintUnformatted(response);
    cJSON_Delete(response);
    gyre_buf_t b;
    gyre_buf_init(&b, strlen(text) + 16);
    gyre_buf_appendf(&b, "data: %s\r\n\r\n", text);
    int ret = mock_http_stream_chunk(c, b.base, b.len);
    gyre_buf_dispose(&b);
    free(text);
    return ret;
}

static int emit_array(mock_conn_t *c, cJSON *response, void *ctx)
{
    (void)c;
    cJSON_AddItemToArray(ctx, response);
    return 0;
}

int mock_gemini_generate(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model, int stream,
                         const mock_options_t *o)
{
    if (!cJSON_IsObject(req))
        return gemini_error(c, r, 400, NULL, "Invalid JSON payload received: the body is not a JSON object.");
    const char *err = check_request(req);
    if (err != NULL)
        return gemini_error(c, r, 400, NULL, err);
    mock_convo_t cv;
    mock_convo_init(&cv);
    read_convo(req, &cv);
    cv.model = model;
    reply_t rp;
    mock_answer_make(&cv, r->body, r->body_len, &rp.a);
    mock_convo_dispose(&cv);
    snprintf(rp.id, sizeof(rp.id), "mock-%08x", rp.a.hash);
    rp.model = model;
    char alt[16];
    int ret;
    if (stream && mock_request_query(r, "alt", alt, sizeof(alt)) >= 0 && strcmp(alt, "sse") == 0) {
        ret = mock_http_stream_start(c, r, "text/event-stream");
        if (ret == 0)
            ret = each_response(c, &rp, mock_pace_ms(o), emit_sse, NULL);
        if (ret == 0)
            ret = mock_http_stream_finish(c);
    } else if (stream) {
        /* Without alt=sse Gemini streams one JSON array of the same responses; here it comes whole. */
        cJSON *all = cJSON_CreateArray();
        int truncate = c->truncate;
        c->truncate = 0;
        each_response(c, &rp, 0, emit_array, all);
        c->truncate = truncate;
        ret = mock_http_respond_json(c, r, 200, all);
        cJSON_Delete(all);
    } else {
        cJSON *part = rp.a.text != NULL ? text_part(rp.a.text, strlen(rp.a.text)) : call_part(&rp);
        cJSON *resp = response_json(&rp, part, 1);
        ret = mock_http_respond_json(c, r, 200, resp);
        cJSON_Delete(resp);
    }
    mock_answer_dispose(&rp.a);
    return ret;
}
