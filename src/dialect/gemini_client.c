/*
 * Gemini's generateContent as a client dialect (see client.h), so that
 * @google/genai users can point at gyre:
 *
 *   POST /v1beta/models/{model}:generateContent
 *   POST /v1beta/models/{model}:streamGenerateContent?alt=sse
 *
 * The model and whether to stream are in the path, not the body (from_path).
 * A request (contents with parts text / inlineData / functionCall /
 * functionResponse, systemInstruction, tools.functionDeclarations,
 * toolConfig, generationConfig) becomes the pivot, an OpenAI chat request;
 * the pivot's chat.completion becomes a GenerateContentResponse, and the
 * stream's events the SSE stream of GenerateContentResponse chunks that the
 * API sends with alt=sse.  Errors are Google's {"error":{"code","message",
 * "status"}}.  Every provider kind is served by translation (the provider
 * dialect of a `gemini` provider turns the pivot back into generateContent).
 *
 * Requests are read with cJSON: they are bounded by the body limit already.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "dialect/client.h"

/* A member's string, or NULL when it is absent or not a string. */
static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define BAD(err, param, ...)                                                                                           \
    gyre_api_error_set((err), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__)

/* The text, function calls and arguments of one streamed answer are each at most this large: a bound far above
 * any model's output that keeps a runaway stream from growing the encoder without end. */
#define GEMINI_ANSWER_MAX ((size_t)256 << 20)

/* ---- the path ------------------------------------------------------------------------------------------------ */

/* "/v1beta/models/{model}:generateContent" or ":streamGenerateContent" (also under /v1/): 1 and the model's bytes
 * and whether it streams, or 0 when the path is not this API's. */
static int path_parts(const char *path, size_t len, const char **model, size_t *mlen, int *stream)
{
    static const char *const prefixes[] = {"/v1beta/models/", "/v1/models/"};
    size_t skip = 0;
    for (size_t i = 0; i < 2 && skip == 0; i++) {
        size_t n = strlen(prefixes[i]);
        if (len > n && memcmp(path, prefixes[i], n) == 0)
            skip = n;
    }
    if (skip == 0)
        return 0;
    const char *colon = NULL;
    for (size_t i = len; i > skip; i--)
        if (path[i - 1] == ':') {
            colon = path + i - 1;
            break;
        }
    if (colon == NULL || colon == path + skip)
        return 0;
    size_t mn = (size_t)(path + len - colon - 1);
    if (mn == 15 && memcmp(colon + 1, "generateContent", 15) == 0)
        *stream = 0;
    else if (mn == 21 && memcmp(colon + 1, "streamGenerateContent", 21) == 0)
        *stream = 1;
    else
        return 0;
    *model = path + skip;
    *mlen = (size_t)(colon - path - skip);
    return 1;
}

/* The path's model and streaming go into the pivot, as an OpenAI client would have written them. */
static int gemini_from_path(const char *path, size_t len, gyre_client_request_t *out, gyre_api_error_t *err)
{
    const char *model;
    size_t mlen;
    int stream;
    if (!path_parts(path, len, &model, &mlen, &stream))
        return 0;
    if (out == NULL)
        return 1;
    /* A NUL (a decoded %00) would end the name early; the rest of the wire rule is the server's check_model. */
    if (memchr(model, '\0', mlen) != NULL || mlen > 4096) {
        BAD(err, "model", "the model in the path must be 1 to 256 bytes of printable ASCII (0x21-0x7E)");
        return -1;
    }
    char name[4097];
    memcpy(name, model, mlen);
    name[mlen] = '\0';
    cJSON_DeleteItemFromObjectCaseSensitive(out->pivot, "model");
    cJSON *m = cJSON_AddStringToObject(out->pivot, "model", name);
    if (m == NULL) {
        BAD(err, "model", "the model in the path could not be read");
        return -1;
    }
    out->model = m->valuestring;
    out->stream = stream;
    out->include_usage = 1; /* every chunk of Gemini's stream may carry usageMetadata; the last always does */
    if (stream) {
        cJSON_AddTrueToObject(out->pivot, "stream");
        cJSON_AddTrueToObject(cJSON_AddObjectToObject(out->pivot, "stream_options"), "include_usage");
    }
    return 1;
}

/* ---- requests ------------------------------------------------------------------------------------------------ */

/* OpenAPI's upper-case type names ("OBJECT", what the SDK's Type enum writes) as JSON Schema's. */
static void schema_lower(cJSON *s, int depth)
{
    if (depth > 64 || s == NULL)
        return;
    cJSON *c;
    cJSON_ArrayForEach(c, s)
    {
        if (c->string != NULL && strcmp(c->string, "type") == 0 && cJSON_IsString(c)) {
            for (char *p = c->valuestring; *p != '\0'; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        } else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            schema_lower(c, depth + 1);
        }
    }
}

static cJSON *schema_copy(const cJSON *s)
{
    cJSON *c = cJSON_Duplicate(s, 1);
    schema_lower(c, 0);
    return c;
}

static int add_text(gyre_buf_t *b, const char *text)
{
    return gyre_buf_appends(b, text);
}

/* A user (or system) content's parts as chat content: a string when it is text only, else content parts. */
static cJSON *user_content(const cJSON *parts, const char *where, gyre_api_error_t *err)
{
    int only_text = 1;
    const cJSON *p;
    cJSON_ArrayForEach(p, parts) if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "text"))) only_text = 0;
    if (only_text) {
        gyre_buf_t b;
        gyre_buf_init(&b, (size_t)1 << 30);
        cJSON_ArrayForEach(p, parts) add_text(&b, cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
        cJSON *s = gyre_buf_failed(&b) ? NULL : cJSON_CreateString(b.base != NULL ? b.base : "");
        gyre_buf_dispose(&b);
        return s;
    }
    cJSON *arr = cJSON_CreateArray();
    int i = 0;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        const cJSON *blob = cJSON_GetObjectItemCaseSensitive(p, "inlineData");
        cJSON *part = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, part);
        if (cJSON_IsString(text)) {
            cJSON_AddStringToObject(part, "type", "text");
            cJSON_AddStringToObject(part, "text", text->valuestring);
        } else if (cJSON_IsObject(blob)) {
            const char *mime = json_str(blob, "mimeType"), *data = json_str(blob, "data");
            if (mime == NULL || data == NULL || strpbrk(mime, ";,") != NULL) {
                BAD(err, where, "%s.parts[%d].inlineData must have a mimeType and base64 data", where, i);
                cJSON_Delete(arr);
                return NULL;
            }
            gyre_buf_t url;
            gyre_buf_init(&url, (size_t)1 << 30);
            gyre_buf_appendf(&url, "data:%s;base64,", mime);
            gyre_buf_appends(&url, data);
            cJSON_AddStringToObject(part, "type", "image_url");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(part, "image_url"), "url",
                                    gyre_buf_failed(&url) ? "" : url.base);
            gyre_buf_dispose(&url);
        } else {
            BAD(err, where, "%s.parts[%d] must be text or inlineData here (fileData and others are not served)", where,
                i);
            cJSON_Delete(arr);
            return NULL;
        }
        i++;
    }
    return arr;
}

/* Function calls of model turns get ids (Gemini's own when it gave one), and each functionResponse the id of the
 * earliest unanswered call of its name. */
typedef struct call_ids {
    cJSON *pending; /* [{"id","name"}] of calls not yet answered */
    int next;
} call_ids_t;

static const char *call_id_new(call_ids_t *ids, const char *name, const char *given, char *buf, size_t size)
{
    if (given == NULL) {
        snprintf(buf, size, "call_%d", ids->next++);
        given = buf;
    }
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", given);
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddItemToArray(ids->pending, e);
    return given;
}

static void call_id_answer(call_ids_t *ids, const char *name, const char *given, char *buf, size_t size)
{
    int i = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, ids->pending)
    {
        if (strcmp(json_str(e, "name"), name) == 0 && (given == NULL || strcmp(json_str(e, "id"), given) == 0)) {
            snprintf(buf, size, "%s", json_str(e, "id"));
            cJSON_DeleteItemFromArray(ids->pending, i);
            return;
        }
        i++;
    }
    snprintf(buf, size, "%s", given != NULL ? given : name);
}

static int model_turn(cJSON *messages, const cJSON *parts, call_ids_t *ids, const char *where, gyre_api_error_t *err)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToArray(messages, m);
    cJSON_AddStringToObject(m, "role", "assistant");
    gyre_buf_t text;
    gyre_buf_init(&text, (size_t)1 << 30);
    cJSON *calls = NULL;
    const cJSON *p;
    int i = 0;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        const cJSON *fc = cJSON_GetObjectItemCaseSensitive(p, "functionCall");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "thought"))) {
            /* A model's thought summary is not part of its answer. */
        } else if (cJSON_IsString(t)) {
            add_text(&text, t->valuestring);
        } else if (cJSON_IsObject(fc) && json_str(fc, "name") != NULL) {
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(fc, "args");
            char idbuf[32];
            const char *id = call_id_new(ids, json_str(fc, "name"), json_str(fc, "id"), idbuf, sizeof(idbuf));
            if (calls == NULL)
                calls = cJSON_AddArrayToObject(m, "tool_calls");
            cJSON *c = cJSON_CreateObject();
            cJSON_AddItemToArray(calls, c);
            cJSON_AddStringToObject(c, "id", id);
            cJSON_AddStringToObject(c, "type", "function");
            cJSON *f = cJSON_AddObjectToObject(c, "function");
            cJSON_AddStringToObject(f, "name", json_str(fc, "name"));
            char *a = cJSON_IsObject(args) ? cJSON_PrintUnformatted(args) : NULL;
            cJSON_AddStringToObject(f, "arguments", a != NULL ? a : "{}");
            cJSON_free(a);
        } else {
            BAD(err, where, "%s.parts[%d] of a model turn must be text or a functionCall with a name", where, i);
            gyre_buf_dispose(&text);
            return -1;
        }
        i++;
    }
    if (text.len > 0 || calls == NULL)
        cJSON_AddStringToObject(m, "content", text.base != NULL ? text.base : "");
    else
        cJSON_AddNullToObject(m, "content");
    gyre_buf_dispose(&text);
    return 0;
}

static int user_turn(cJSON *messages, const cJSON *parts, call_ids_t *ids, const char *where, gyre_api_error_t *err)
{
    /* functionResponse parts become tool messages, in order, before the rest of the turn. */
    cJSON *rest = cJSON_CreateArray();
    const cJSON *p;
    int i = 0;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(p, "functionResponse");
        if (cJSON_IsObject(fr)) {
            const char *name = json_str(fr, "name");
            if (name == NULL) {
                BAD(err, where, "%s.parts[%d].functionResponse must have a name", where, i);
                cJSON_Delete(rest);
                return -1;
            }
            char id[160];
            call_id_answer(ids, name, json_str(fr, "id"), id, sizeof(id));
            const cJSON *resp = cJSON_GetObjectItemCaseSensitive(fr, "response");
            char *content = resp != NULL ? cJSON_PrintUnformatted(resp) : NULL;
            cJSON *m = cJSON_CreateObject();
            cJSON_AddItemToArray(messages, m);
            cJSON_AddStringToObject(m, "role", "tool");
            cJSON_AddStringToObject(m, "tool_call_id", id);
            cJSON_AddStringToObject(m, "content", content != NULL ? content : "{}");
            cJSON_free(content);
        } else {
            cJSON_AddItemToArray(rest, cJSON_Duplicate(p, 1));
        }
        i++;
    }
    int r = 0;
    if (cJSON_GetArraySize(rest) > 0) {
        cJSON *content = user_content(rest, where, err);
        if (content == NULL) {
            r = -1;
        } else {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddItemToArray(messages, m);
            cJSON_AddStringToObject(m, "role", "user");
            cJSON_AddItemToObject(m, "content", content);
        }
    }
    cJSON_Delete(rest);
    return r;
}

static int read_contents(const cJSON *req, cJSON *pivot, gyre_api_error_t *err)
{
    cJSON *messages = cJSON_AddArrayToObject(pivot, "messages");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(req, "systemInstruction");
    if (sys != NULL) {
        const cJSON *parts = cJSON_IsString(sys) ? NULL : cJSON_GetObjectItemCaseSensitive(sys, "parts");
        if (!cJSON_IsString(sys) && !cJSON_IsArray(parts)) {
            BAD(err, "systemInstruction", "systemInstruction must be a content with parts");
            return -1;
        }
        cJSON *content =
            cJSON_IsString(sys) ? cJSON_CreateString(sys->valuestring) : user_content(parts, "systemInstruction", err);
        if (content == NULL)
            return -1;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(messages, m);
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddItemToObject(m, "content", content);
    }
    const cJSON *contents = cJSON_GetObjectItemCaseSensitive(req, "contents");
    if (!cJSON_IsArray(contents) || cJSON_GetArraySize(contents) == 0) {
        BAD(err, "contents", "contents must be a non-empty array of contents");
        return -1;
    }
    call_ids_t ids = {cJSON_CreateArray(), 0};
    const cJSON *c;
    int i = 0, r = 0;
    cJSON_ArrayForEach(c, contents)
    {
        char where[32];
        snprintf(where, sizeof(where), "contents[%d]", i++);
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(c, "parts");
        const char *role = json_str(c, "role");
        if (!cJSON_IsArray(parts)) {
            BAD(err, where, "%s.parts must be an array", where);
            r = -1;
        } else if (role != NULL && strcmp(role, "model") != 0 && strcmp(role, "user") != 0 &&
                   strcmp(role, "function") != 0) {
            BAD(err, where, "%s.role must be user or model", where);
            r = -1;
        } else if (cJSON_GetArraySize(parts) == 0) {
            /* Gemini refuses it too; a turn of no part would leave the pivot without a message (fuzz_gemini_client,
             * CI). */
            BAD(err, where, "%s.parts must not be empty", where);
            r = -1;
        } else if (role != NULL && strcmp(role, "model") == 0) {
            r = model_turn(messages, parts, &ids, where, err);
        } else {
            r = user_turn(messages, parts, &ids, where, err);
        }
        if (r != 0)
            break;
    }
    cJSON_Delete(ids.pending);
    return r;
}

static int read_tools(const cJSON *req, cJSON *pivot, gyre_api_error_t *err)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (tools == NULL)
        return 0;
    if (!cJSON_IsArray(tools)) {
        BAD(err, "tools", "tools must be an array");
        return -1;
    }
    cJSON *out = NULL;
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *decls = cJSON_GetObjectItemCaseSensitive(t, "functionDeclarations");
        if (!cJSON_IsArray(decls)) {
            BAD(err, "tools", "tools[%d] must have functionDeclarations (Google's hosted tools are not served)", i);
            return -1;
        }
        const cJSON *d;
        int j = 0;
        cJSON_ArrayForEach(d, decls)
        {
            const char *name = json_str(d, "name");
            if (name == NULL) {
                BAD(err, "tools", "tools[%d].functionDeclarations[%d].name must be a string", i, j);
                return -1;
            }
            if (out == NULL)
                out = cJSON_AddArrayToObject(pivot, "tools");
            cJSON *tool = cJSON_CreateObject();
            cJSON_AddItemToArray(out, tool);
            cJSON_AddStringToObject(tool, "type", "function");
            cJSON *f = cJSON_AddObjectToObject(tool, "function");
            cJSON_AddStringToObject(f, "name", name);
            if (json_str(d, "description") != NULL)
                cJSON_AddStringToObject(f, "description", json_str(d, "description"));
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(d, "parameters");
            if (params == NULL)
                params = cJSON_GetObjectItemCaseSensitive(d, "parametersJsonSchema");
            if (cJSON_IsObject(params))
                cJSON_AddItemToObject(f, "parameters", schema_copy(params));
            j++;
        }
        i++;
    }
    const cJSON *fcc =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "toolConfig"), "functionCallingConfig");
    const char *mode = json_str(fcc, "mode");
    if (mode == NULL || strcmp(mode, "AUTO") == 0 || strcmp(mode, "MODE_UNSPECIFIED") == 0)
        return 0;
    if (strcmp(mode, "NONE") == 0) {
        cJSON_AddStringToObject(pivot, "tool_choice", "none");
    } else if (strcmp(mode, "ANY") == 0 || strcmp(mode, "VALIDATED") == 0) {
        const cJSON *allowed = cJSON_GetObjectItemCaseSensitive(fcc, "allowedFunctionNames");
        if (cJSON_GetArraySize(allowed) == 1 && cJSON_IsString(cJSON_GetArrayItem(allowed, 0))) {
            cJSON *tc = cJSON_AddObjectToObject(pivot, "tool_choice");
            cJSON_AddStringToObject(tc, "type", "function");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(tc, "function"), "name",
                                    cJSON_GetArrayItem(allowed, 0)->valuestring);
        } else {
            cJSON_AddStringToObject(pivot, "tool_choice", "required");
        }
    } else {
        BAD(err, "toolConfig.functionCallingConfig.mode",
            "toolConfig.functionCallingConfig.mode must be AUTO, ANY "
            "or NONE");
        return -1;
    }
    return 0;
}

static int read_generation(const cJSON *req, cJSON *pivot, gyre_api_error_t *err)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(req, "generationConfig");
    if (g == NULL)
        return 0;
    if (!cJSON_IsObject(g)) {
        BAD(err, "generationConfig", "generationConfig must be an object");
        return -1;
    }
    static const char *const numbers[][2] = {{"temperature", "temperature"},
                                             {"topP", "top_p"},
                                             {"maxOutputTokens", "max_tokens"},
                                             {"presencePenalty", "presence_penalty"},
                                             {"frequencyPenalty", "frequency_penalty"},
                                             {"seed", "seed"}};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(g, numbers[i][0]);
        if (v == NULL)
            continue;
        if (!cJSON_IsNumber(v)) {
            char param[64];
            snprintf(param, sizeof(param), "generationConfig.%s", numbers[i][0]);
            BAD(err, param, "%s must be a number", param);
            return -1;
        }
        cJSON_AddNumberToObject(pivot, numbers[i][1], v->valuedouble);
    }
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(g, "stopSequences");
    if (stop != NULL) {
        const cJSON *s;
        int ok = cJSON_IsArray(stop);
        cJSON_ArrayForEach(s, stop) ok &= cJSON_IsString(s);
        if (!ok) {
            BAD(err, "generationConfig.stopSequences", "generationConfig.stopSequences must be an array of strings");
            return -1;
        }
        cJSON_AddItemToObject(pivot, "stop", cJSON_Duplicate(stop, 1));
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(g, "candidateCount");
    if (n != NULL && (!cJSON_IsNumber(n) || n->valuedouble != 1)) {
        BAD(err, "generationConfig.candidateCount", "generationConfig.candidateCount must be 1 on this gateway");
        return -1;
    }
    const char *mime = json_str(g, "responseMimeType");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(g, "responseSchema");
    if (schema == NULL)
        schema = cJSON_GetObjectItemCaseSensitive(g, "responseJsonSchema");
    if (mime != NULL && strcmp(mime, "application/json") == 0) {
        cJSON *rf = cJSON_AddObjectToObject(pivot, "response_format");
        if (cJSON_IsObject(schema)) {
            cJSON_AddStringToObject(rf, "type", "json_schema");
            cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
            cJSON_AddStringToObject(js, "name", "response");
            cJSON_AddItemToObject(js, "schema", schema_copy(schema));
        } else {
            cJSON_AddStringToObject(rf, "type", "json_object");
        }
    } else if (mime != NULL && strcmp(mime, "text/plain") != 0) {
        BAD(err, "generationConfig.responseMimeType",
            "generationConfig.responseMimeType must be text/plain or "
            "application/json");
        return -1;
    }
    return 0;
}

static int gemini_client_parse(const char *body, size_t len, gyre_client_request_t *out, gyre_api_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *req = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        BAD(err, NULL, "the body must be a JSON object (a GenerateContentRequest)");
        return -1;
    }
    cJSON *pivot = cJSON_CreateObject();
    int r = read_contents(req, pivot, err);
    if (r == 0)
        r = read_tools(req, pivot, err);
    if (r == 0)
        r = read_generation(req, pivot, err);
    cJSON_Delete(req);
    if (r != 0) {
        cJSON_Delete(pivot);
        return -1;
    }
    out->pivot = pivot; /* the model and stream come from the path (gemini_from_path) */
    return 0;
}

/* ---- answers ------------------------------------------------------------------------------------------------- */

static const char *finish_name(const char *reason)
{
    if (reason == NULL || strcmp(reason, "stop") == 0 || strcmp(reason, "tool_calls") == 0)
        return "STOP";
    if (strcmp(reason, "length") == 0)
        return "MAX_TOKENS";
    if (strcmp(reason, "content_filter") == 0)
        return "SAFETY";
    return "OTHER";
}

/* A function call's part: its arguments (JSON text) as an object; anything but an object becomes {}. */
static void append_call_part(gyre_buf_t *out, const char *name, size_t nlen, const char *args, size_t alen)
{
    cJSON *a = cJSON_ParseWithLength(args, alen);
    char *text = cJSON_IsObject(a) ? cJSON_PrintUnformatted(a) : NULL;
    gyre_buf_appends(out, "{\"functionCall\":{\"name\":");
    gyre_buf_append_json_string(out, name, nlen);
    gyre_buf_appends(out, ",\"args\":");
    gyre_buf_appends(out, text != NULL ? text : "{}");
    gyre_buf_appends(out, "}}");
    cJSON_free(text);
    cJSON_Delete(a);
}

static void append_usage(gyre_buf_t *out, const gyre_usage_t *u)
{
    gyre_buf_appendf(out,
                     ",\"usageMetadata\":{\"promptTokenCount\":%lld,\"candidatesTokenCount\":%lld,"
                     "\"totalTokenCount\":%lld",
                     u->input_tokens, u->output_tokens, u->total_tokens);
    if (u->cached_tokens > 0)
        gyre_buf_appendf(out, ",\"cachedContentTokenCount\":%lld", u->cached_tokens);
    if (u->reasoning_tokens > 0)
        gyre_buf_appendf(out, ",\"thoughtsTokenCount\":%lld", u->reasoning_tokens);
    gyre_buf_appends(out, "}");
}

static void append_tail(gyre_buf_t *out, const char *model, size_t mlen, const char *id, size_t ilen)
{
    gyre_buf_appends(out, ",\"modelVersion\":");
    gyre_buf_append_json_string(out, model, mlen);
    gyre_buf_appends(out, ",\"responseId\":");
    gyre_buf_append_json_string(out, id, ilen);
    gyre_buf_appends(out, "}");
}

static int gemini_client_response(const gyre_client_call_t *call, const char *completion, size_t len, gyre_buf_t *out,
                                  gyre_api_error_t *err)
{
    cJSON *c = cJSON_ParseWithLength(completion, len);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    if (!cJSON_IsObject(msg)) {
        cJSON_Delete(c);
        gyre_api_error_set(err, 502, "upstream_error", "bad_response", NULL, "the provider's answer has no message");
        return -1;
    }
    gyre_buf_mark_t mark = gyre_buf_mark(out);
    gyre_buf_appends(out, "{\"candidates\":[{\"content\":{\"parts\":[");
    const char *text = json_str(msg, "content");
    int n = 0;
    if (text != NULL && (*text != '\0' || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")))) {
        gyre_buf_appends(out, "{\"text\":");
        gyre_buf_append_json_string(out, text, strlen(text));
        gyre_buf_appends(out, "}");
        n++;
    }
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"))
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char *name = json_str(f, "name"), *args = json_str(f, "arguments");
        if (name == NULL)
            continue;
        if (n++ > 0)
            gyre_buf_appends(out, ",");
        append_call_part(out, name, strlen(name), args != NULL ? args : "{}", args != NULL ? strlen(args) : 2);
    }
    gyre_buf_appendf(out, "],\"role\":\"model\"},\"finishReason\":\"%s\",\"index\":0}]",
                     finish_name(json_str(choice, "finish_reason")));
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(c, "usage");
    if (cJSON_IsObject(u)) {
        gyre_usage_t usage = {0};
        usage.input_tokens = gyre_json_count(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
        usage.output_tokens = gyre_json_count(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
        usage.total_tokens = gyre_json_count(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
        usage.cached_tokens = gyre_json_count(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens"));
        append_usage(out, &usage);
    }
    const char *model = json_str(c, "model");
    if (model == NULL)
        model = call != NULL && call->model != NULL ? call->model : "";
    const char *id = json_str(c, "id");
    if (id == NULL)
        id = call != NULL && call->id != NULL ? call->id : "";
    append_tail(out, model, strlen(model), id, strlen(id));
    cJSON_Delete(c);
    if (gyre_buf_failed(out)) {
        gyre_buf_rollback(out, mark);
        gyre_api_error_set(err, 502, "upstream_error", "response_too_large", NULL, "the answer is too large");
        return -1;
    }
    return 0;
}

/* ---- errors -------------------------------------------------------------------------------------------------- */

/* google.rpc.Code's name for an HTTP status, as the API's errors carry it. */
static const char *status_name(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 405: return "UNIMPLEMENTED";
    case 409: return "ABORTED";
    case 413: return "INVALID_ARGUMENT";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

static int gemini_error_body(const gyre_api_error_t *err, gyre_buf_t *out)
{
    gyre_buf_mark_t mark = gyre_buf_mark(out);
    gyre_buf_appendf(out, "{\"error\":{\"code\":%d,\"message\":", err->status);
    gyre_buf_append_json_string(out, err->message, strlen(err->message));
    gyre_buf_appendf(out, ",\"status\":\"%s\"}}", status_name(err->status));
    if (gyre_buf_failed(out)) {
        gyre_buf_rollback(out, mark);
        return -1;
    }
    return 0;
}

static int gemini_error_event(const gyre_api_error_t *err, gyre_buf_t *out)
{
    gyre_buf_mark_t mark = gyre_buf_mark(out);
    gyre_buf_appends(out, "data: ");
    gemini_error_body(err, out);
    gyre_buf_appends(out, "\r\n\r\n");
    if (gyre_buf_failed(out)) {
        gyre_buf_rollback(out, mark);
        return -1;
    }
    return 0;
}

/* ---- streams ------------------------------------------------------------------------------------------------- */

typedef struct gemini_encoder {
    gyre_buf_t head; /* the id, then the model: what ends every chunk */
    size_t id_len;
    int started, ended, complete;
    const char *finish;
    gyre_usage_t usage;
    int have_usage, include_usage;
    gyre_buf_t call_name, call_args; /* the function call being streamed (Gemini sends calls whole) */
    int in_call;
    gyre_buf_t calls; /* the parts of the calls finished so far, comma-separated */
} gemini_encoder_t;

static void gemini_encoder_init(void *p, const gyre_client_call_t *call)
{
    gemini_encoder_t *e = p;
    memset(e, 0, sizeof(*e));
    gyre_buf_init(&e->head, 64 << 10);
    gyre_buf_init(&e->call_name, 64 << 10);
    gyre_buf_init(&e->call_args, GEMINI_ANSWER_MAX);
    gyre_buf_init(&e->calls, GEMINI_ANSWER_MAX);
    const char *id = call->id != NULL ? call->id : "";
    gyre_buf_appends(&e->head, id);
    e->id_len = e->head.len;
    if (call->model != NULL)
        gyre_buf_appends(&e->head, call->model);
    e->include_usage = call->include_usage;
}

static void gemini_encoder_dispose(void *p)
{
    gemini_encoder_t *e = p;
    gyre_buf_dispose(&e->head);
    gyre_buf_dispose(&e->call_name);
    gyre_buf_dispose(&e->call_args);
    gyre_buf_dispose(&e->calls);
}

static int gemini_encoder_complete(const void *p)
{
    return ((const gemini_encoder_t *)p)->complete;
}

static void close_call(gemini_encoder_t *e)
{
    if (!e->in_call)
        return;
    if (e->calls.len > 0)
        gyre_buf_appends(&e->calls, ",");
    append_call_part(&e->calls, e->call_name.base != NULL ? e->call_name.base : "", e->call_name.len,
                     e->call_args.base != NULL ? e->call_args.base : "", e->call_args.len);
    e->in_call = 0;
}

/* One chunk: `parts` (JSON, without brackets), the finish reason and usage when it is the last. */
static int write_chunk(gemini_encoder_t *e, const char *parts, size_t plen, int last, gyre_buf_t *out)
{
    gyre_buf_mark_t mark = gyre_buf_mark(out);
    gyre_buf_appends(out, "data: {\"candidates\":[{\"content\":{\"parts\":[");
    gyre_buf_append(out, parts, plen);
    gyre_buf_appends(out, "],\"role\":\"model\"}");
    if (last)
        gyre_buf_appendf(out, ",\"finishReason\":\"%s\"", finish_name(e->finish));
    gyre_buf_appends(out, ",\"index\":0}]");
    if (last && e->have_usage && e->include_usage)
        append_usage(out, &e->usage);
    const char *h = e->head.base != NULL ? e->head.base : "";
    append_tail(out, h + e->id_len, e->head.len - e->id_len, h, e->id_len);
    gyre_buf_appends(out, "\r\n\r\n");
    if (gyre_buf_failed(out)) {
        gyre_buf_rollback(out, mark);
        return -1;
    }
    return 0;
}

static int gemini_encode(void *p, const gyre_event_t *ev, gyre_buf_t *out)
{
    gemini_encoder_t *e = p;
    if (e->ended)
        return 0;
    if (ev->type == GYRE_EVENT_ERROR) {
        e->ended = 1;
        return ev->error != NULL ? gemini_error_event(ev->error, out) : 0;
    }
    if (ev->type != GYRE_EVENT_USAGE && ev->type != GYRE_EVENT_DONE && ev->choice != 0)
        return 0; /* one candidate: the API's candidateCount is 1 here */
    switch (ev->type) {
    case GYRE_EVENT_START:
        if (!e->started) {
            e->started = 1;
            /* The provider's id and model, when it named them, are the answer's. */
            gyre_buf_t h;
            gyre_buf_init(&h, 64 << 10);
            if (ev->id.len > 0)
                gyre_buf_append(&h, ev->id.p, ev->id.len);
            else
                gyre_buf_append(&h, e->head.base, e->id_len);
            size_t id_len = h.len;
            if (ev->model.len > 0)
                gyre_buf_append(&h, ev->model.p, ev->model.len);
            else
                gyre_buf_append(&h, e->head.base + e->id_len, e->head.len - e->id_len);
            if (!gyre_buf_failed(&h)) {
                gyre_buf_dispose(&e->head);
                e->head = h;
                e->id_len = id_len;
            } else {
                gyre_buf_dispose(&h);
            }
        }
        return 0;
    case GYRE_EVENT_TEXT: {
        gyre_buf_t part;
        gyre_buf_init(&part, GEMINI_ANSWER_MAX);
        gyre_buf_appends(&part, "{\"text\":");
        gyre_buf_append_json_string(&part, ev->text.p, ev->text.len);
        gyre_buf_appends(&part, "}");
        int r = gyre_buf_failed(&part) ? -1 : write_chunk(e, part.base, part.len, 0, out);
        gyre_buf_dispose(&part);
        return r;
    }
    case GYRE_EVENT_TOOL_START:
        close_call(e);
        gyre_buf_reset(&e->call_name);
        gyre_buf_reset(&e->call_args);
        gyre_buf_append(&e->call_name, ev->name.p, ev->name.len);
        gyre_buf_append(&e->call_args, ev->text.p, ev->text.len);
        e->in_call = 1;
        return gyre_buf_failed(&e->call_name) || gyre_buf_failed(&e->call_args) ? -1 : 0;
    case GYRE_EVENT_TOOL_ARGS:
        if (e->in_call)
            gyre_buf_append(&e->call_args, ev->text.p, ev->text.len);
        return gyre_buf_failed(&e->call_args) ? -1 : 0;
    case GYRE_EVENT_FINISH:
        close_call(e);
        e->finish = ev->finish_reason != NULL && strcmp(ev->finish_reason, "length") == 0           ? "length"
                    : ev->finish_reason != NULL && strcmp(ev->finish_reason, "content_filter") == 0 ? "content_filter"
                                                                                                    : "stop";
        return gyre_buf_failed(&e->calls) ? -1 : 0;
    case GYRE_EVENT_USAGE:
        e->usage = ev->usage;
        e->have_usage = 1;
        return 0;
    case GYRE_EVENT_DONE: {
        /* Gemini's last chunk: the function calls (whole), the finish reason and the usage together. */
        close_call(e);
        if (gyre_buf_failed(&e->calls))
            return -1;
        const char *parts = e->calls.len > 0 ? e->calls.base : "{\"text\":\"\"}";
        if (write_chunk(e, parts, e->calls.len > 0 ? e->calls.len : strlen(parts), 1, out) != 0)
            return -1;
        e->ended = e->complete = 1;
        return 0;
    }
    default: return 0;
    }
}

/* A stream is relayed only when translated (no kind is native), so what ends it is never read from a provider;
 * a chunk with a finishReason is the last, as the API sends it. */
static int gemini_stream_ends(const char *event, size_t event_len, const char *data, size_t data_len)
{
    (void)event, (void)event_len;
    return (data_len >= 9 && memcmp(data, "{\"error\":", 9) == 0) ||
           gyre_json_find_member(data, data_len, "finishReason", &(size_t){0}, &(size_t){0}) == 0;
}

const gyre_client_dialect_t gyre_client_gemini = {
    .name = "gemini",
    .path = "/v1beta/models/{model}:generateContent",
    .from_path = gemini_from_path,
    .native = 0,
    .served = GYRE_KINDS_ALL,
    .parse = gemini_client_parse,
    .response = gemini_client_response,
    .encoder_size = sizeof(gemini_encoder_t),
    .encoder_init = gemini_encoder_init,
    .encode = gemini_encode,
    .encoder_dispose = gemini_encoder_dispose,
    .encoder_complete = gemini_encoder_complete,
    .error_body = gemini_error_body,
    .error_event = gemini_error_event,
    .stream_ends = gemini_stream_ends,
    .request_id_header = NULL,
};
