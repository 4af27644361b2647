/*
 * The Google Gemini API as a provider kind (generativelanguage v1beta:
 * models/{model}:generateContent and :streamGenerateContent?alt=sse).
 *
 * Out: an OpenAI chat request becomes a GenerateContentRequest.  Messages
 * become `contents` (roles "user" and "model"; consecutive messages of one
 * role share a content, since Gemini pairs a turn's function calls with the
 * next turn's function responses), system and developer messages become
 * `systemInstruction`, tools become function declarations, and the sampling
 * settings `generationConfig`.
 *
 * Back: a GenerateContentResponse becomes a chat.completion, one choice per
 * candidate; an alt=sse stream, whose events are whole
 * GenerateContentResponses and which has no terminal marker, becomes OpenAI
 * chunks, finished (usage chunk, [DONE], `complete`) as soon as every
 * candidate has a finishReason.
 *
 * Gemini gives function calls no ids that OpenAI clients could echo back,
 * so answers get deterministic ones ("call_" + the completion id's suffix +
 * a counter), and a tool message's function name is looked up from the
 * assistant tool call it answers.
 */
#include "dialect/dialect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/wire.h"
#include "common/sse.h"

/* One stream event (a whole GenerateContentResponse) may be this large. */
#define GEMINI_EVENT_MAX ((size_t)4 << 20)
/* Gemini's candidateCount goes up to 8; a stream tracks each candidate in a bit. */
#define GEMINI_MAX_CANDIDATES 8

#define get(obj, key) cJSON_GetObjectItemCaseSensitive((obj), (key))

/* --- shared ----------------------------------------------------------------- */

/* The members named `keys` of `o` in one walk, the first of each name as get() finds it; NULL where absent.  A
 * stream reads a few members of every event: one walk each instead of one per name. */
static void get_members(const cJSON *o, const char *const *keys, const cJSON **out, size_t n)
{
    size_t left = n;
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    for (const cJSON *m = o != NULL ? o->child : NULL; m != NULL && m->string != NULL && left != 0; m = m->next)
        for (size_t i = 0; i < n; i++)
            if (out[i] == NULL && strcmp(m->string, keys[i]) == 0) {
                out[i] = m;
                left--;
                break;
            }
}

/* A token count from the answer, as an integer; anything odd (negative, NaN, absurd) reads as 0 or is capped. */
static long long count_of(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0))
        return 0;
    if (v->valuedouble > 1e15)
        return 1000000000000000LL;
    return (long long)v->valuedouble;
}

typedef struct gemini_usage {
    int seen;
    long long prompt, candidates, thoughts, total, cached;
} gemini_usage_t;

static void usage_read(gemini_usage_t *u, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return;
    static const char *const keys[] = {"promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
                                       "cachedContentTokenCount", "totalTokenCount"};
    const cJSON *v[5];
    get_members(meta, keys, v, 5);
    u->seen = 1;
    u->prompt = count_of(v[0]);
    u->candidates = count_of(v[1]);
    u->thoughts = count_of(v[2]);
    u->cached = count_of(v[3]);
    /* totalTokenCount also counts tool-use prompt tokens; derive it only when it is missing. */
    u->total = v[4] != NULL ? count_of(v[4]) : u->prompt + u->candidates + u->thoughts;
}

/* Appends OpenAI's usage object: thinking tokens count as completion tokens, as OpenAI counts reasoning. */
static int usage_append(gyre_buf_t *out, const gemini_usage_t *u)
{
    return gyre_buf_appendf(out,
                            "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                            "\"prompt_tokens_details\":{\"cached_tokens\":%lld},"
                            "\"completion_tokens_details\":{\"reasoning_tokens\":%lld}}",
                            u->prompt, u->candidates + u->thoughts, u->total, u->cached, u->thoughts);
}

/* OpenAI's finish_reason for a candidate's finishReason (NULL while it has none). */
static const char *finish_reason_of(const char *reason, int has_tool_calls)
{
    static const char *const filtered[] = {"SAFETY", "RECITATION",  "BLOCKLIST", "PROHIBITED_CONTENT",
                                           "SPII",   "IMAGE_SAFETY"};
    if (reason == NULL)
        return NULL;
    if (strcmp(reason, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < sizeof(filtered) / sizeof(filtered[0]); i++)
        if (strcmp(reason, filtered[i]) == 0)
            return "content_filter";
    /* STOP ends a turn with function calls too; other reasons (OTHER, MALFORMED_FUNCTION_CALL) end it as well. */
    return has_tool_calls && strcmp(reason, "STOP") == 0 ? "tool_calls" : "stop";
}

/* The part of "chatcmpl-XYZ" that tool-call ids are made from. */
static const char *id_suffix(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return "gyre";
    const char *dash = strrchr(id, '-');
    return dash != NULL && dash[1] != '\0' ? dash + 1 : id;
}

static int append_json_str(gyre_buf_t *out, const char *s)
{
    return gyre_buf_append_json_string(out, s, strlen(s));
}

/* A function call's args as the compact JSON string OpenAI's `arguments` holds ("{}" when absent). */
static int append_arguments(gyre_buf_t *out, const cJSON *args)
{
    if (args == NULL)
        return append_json_str(out, "{}");
    char *text = cJSON_PrintUnformatted(args);
    if (text == NULL)
        return -ENOMEM;
    int r = append_json_str(out, text);
    cJSON_free(text);
    return r;
}

/*
 * The canonical status names Google APIs put in error.status, so that an
 * error's `code` can point at a string that outlives the parsed answer.
 */
static const char *status_name(const char *s)
{
    static const char *const names[] = {
        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",   "NOT_FOUND",
        "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
        "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",         "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return names[i];
    return "UNKNOWN";
}

/* Fills `err` from a Google error object {"code","message","status"}. */
static void error_from_json(const cJSON *e, gyre_api_error_t *err)
{
    const cJSON *code = get(e, "code"), *message = get(e, "message"), *status = get(e, "status");
    int http = 502;
    if (cJSON_IsNumber(code) && code->valuedouble >= 400 && code->valuedouble <= 599)
        http = (int)code->valuedouble;
    gyre_api_error_set(err, http, "upstream_error", status_name(cJSON_IsString(status) ? status->valuestring : NULL),
                       NULL, "%s", cJSON_IsString(message) ? message->valuestring : "Gemini sent an error");
}

/* --- requests ------------------------------------------------------------- */

#define BAD_REQUEST(err, code, param, ...)                                                                             \
    gyre_api_error_set((err), 400, "invalid_request_error", (code), (param), __VA_ARGS__)

/*
 * JSON-schema keywords Gemini's Schema rejects.  They are removed from
 * schema objects only: the names under "properties" are the caller's field
 * names, so a property called "strict" survives.
 */
static void schema_strip(cJSON *schema)
{
    static const char *const rejected[] = {"additionalProperties", "$schema", "strict"};
    if (!cJSON_IsObject(schema))
        return;
    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(schema, rejected[i]);
    for (cJSON *m = schema->child; m != NULL; m = m->next) {
        int named = strcmp(m->string, "properties") == 0 || strcmp(m->string, "$defs") == 0 ||
                    strcmp(m->string, "definitions") == 0 || strcmp(m->string, "patternProperties") == 0;
        if (cJSON_IsObject(m) && named) {
            for (cJSON *p = m->child; p != NULL; p = p->next)
                schema_strip(p);
        } else if (cJSON_IsObject(m)) {
            schema_strip(m);
        } else if (cJSON_IsArray(m)) {
            for (cJSON *e = m->child; e != NULL; e = e->next)
                schema_strip(e);
        }
    }
}

static void add_text_part(cJSON *parts, const char *text)
{
    if (text[0] == '\0')
        return; /* Gemini rejects empty text parts */
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", text);
    cJSON_AddItemToArray(parts, p);
}

static void add_blob_part(cJSON *parts, const char *kind, const char *mime, size_t mime_len, const char *key,
                          const char *value)
{
    cJSON *p = cJSON_CreateObject(), *blob = cJSON_AddObjectToObject(p, kind);
    char *m = gyre_strndup(mime, mime_len);
    cJSON_AddStringToObject(blob, "mimeType", m);
    free(m);
    cJSON_AddStringToObject(blob, key, value);
    cJSON_AddItemToArray(parts, p);
}

/* The media type Gemini is told for a file URL, from the extension of its path. */
static const char *mime_from_url(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {"png", "image/png"},   {"jpg", "image/jpeg"},  {"jpeg", "image/jpeg"}, {"gif", "image/gif"},
        {"webp", "image/webp"}, {"heic", "image/heic"}, {"heif", "image/heif"}, {"pdf", "application/pdf"},
        {"mp3", "audio/mpeg"},  {"wav", "audio/wav"},   {"mp4", "video/mp4"},
    };
    size_t end = strcspn(url, "?#");
    const char *dot = NULL;
    for (size_t i = 0; i < end; i++) {
        if (url[i] == '.')
            dot = url + i;
        else if (url[i] == '/')
            dot = NULL;
    }
    if (dot != NULL) {
        size_t n = (size_t)(url + end - dot - 1);
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strlen(types[i].ext) == n && strncasecmp(dot + 1, types[i].ext, n) == 0)
                return types[i].mime;
    }
    return "image/jpeg";
}

/* A data: URL (which must be base64) → inlineData; an http(s) URL → fileData. */
static int add_url_part(cJSON *parts, const char *url, const char *param, gyre_api_error_t *err)
{
    if (strncmp(url, "data:", 5) == 0) {
        const char *mime = url + 5, *comma = strchr(mime, ',');
        size_t mime_len = comma != NULL ? strcspn(mime, ";,") : 0;
        const char *b64 = comma != NULL && (size_t)(comma - mime) >= 7 ? comma - 7 : NULL;
        if (comma == NULL || mime_len == 0 || b64 == NULL || strncmp(b64, ";base64", 7) != 0) {
            BAD_REQUEST(err, "invalid_value", param,
                        "'%s' must be a base64 data URL with a media type (data:image/png;base64,...)", param);
            return -1;
        }
        add_blob_part(parts, "inlineData", mime, mime_len, "data", comma + 1);
        return 0;
    }
    if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
        const char *mime = mime_from_url(url);
        add_blob_part(parts, "fileData", mime, strlen(mime), "fileUri", url);
        return 0;
    }
    BAD_REQUEST(err, "invalid_value", param, "'%s' must be an http(s) URL or a data URL", param);
    return -1;
}

enum { PARTS_TEXT = 0, PARTS_MEDIA = 1 };

/* A message's content (a string or an array of parts) → Gemini parts. */
static int add_content_parts(cJSON *parts, const cJSON *content, int allow, int msg, gyre_api_error_t *err)
{
    char param[128];
    if (content == NULL || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content)) {
        add_text_part(parts, content->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(content)) {
        snprintf(param, sizeof(param), "messages[%d].content", msg);
        BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string, an array of content parts or null", param);
        return -1;
    }
    int j = 0;
    for (const cJSON *p = content->child; p != NULL; p = p->next, j++) {
        const cJSON *type = get(p, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (strcmp(t, "text") == 0 || strcmp(t, "refusal") == 0) {
            const cJSON *text = get(p, t);
            if (!cJSON_IsString(text)) {
                snprintf(param, sizeof(param), "messages[%d].content[%d].%s", msg, j, t);
                BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
                return -1;
            }
            add_text_part(parts, text->valuestring);
        } else if (allow == PARTS_MEDIA && strcmp(t, "image_url") == 0) {
            const cJSON *iu = get(p, "image_url");
            const cJSON *url = cJSON_IsObject(iu) ? get(iu, "url") : iu;
            snprintf(param, sizeof(param), "messages[%d].content[%d].image_url.url", msg, j);
            if (!cJSON_IsString(url)) {
                BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
                return -1;
            }
            if (add_url_part(parts, url->valuestring, param, err) != 0)
                return -1;
        } else if (allow == PARTS_MEDIA && strcmp(t, "input_audio") == 0) {
            const cJSON *audio = get(p, "input_audio");
            const cJSON *data = get(audio, "data"), *format = get(audio, "format");
            const char *mime =
                cJSON_IsString(format) && strcmp(format->valuestring, "mp3") == 0 ? "audio/mpeg" : "audio/wav";
            if (!cJSON_IsString(data)) {
                snprintf(param, sizeof(param), "messages[%d].content[%d].input_audio.data", msg, j);
                BAD_REQUEST(err, "invalid_type", param, "'%s' must be a base64 string", param);
                return -1;
            }
            add_blob_part(parts, "inlineData", mime, strlen(mime), "data", data->valuestring);
        } else if (allow == PARTS_MEDIA && strcmp(t, "file") == 0) {
            const cJSON *data = get(get(p, "file"), "file_data");
            snprintf(param, sizeof(param), "messages[%d].content[%d].file.file_data", msg, j);
            if (!cJSON_IsString(data)) {
                BAD_REQUEST(err, "unsupported_value", param, "'%s' must be given: Gemini takes files inline", param);
                return -1;
            }
            if (add_url_part(parts, data->valuestring, param, err) != 0)
                return -1;
        } else {
            snprintf(param, sizeof(param), "messages[%d].content[%d].type", msg, j);
            BAD_REQUEST(err, "unsupported_value", param, "content part type '%s' cannot be sent to Gemini here", t);
            return -1;
        }
    }
    return 0;
}

/* The function name of the assistant tool call with id `id`, in the messages before `upto`. */
static const char *tool_call_name(const cJSON *messages, const cJSON *upto, const char *id)
{
    const char *name = NULL;
    for (const cJSON *m = messages->child; m != NULL && m != upto; m = m->next) {
        const cJSON *calls = get(m, "tool_calls");
        if (!cJSON_IsArray(calls))
            continue;
        for (const cJSON *c = calls->child; c != NULL; c = c->next) {
            const cJSON *cid = get(c, "id"), *fname = get(get(c, "function"), "name");
            if (cJSON_IsString(cid) && cJSON_IsString(fname) && strcmp(cid->valuestring, id) == 0)
                name = fname->valuestring;
        }
    }
    return name;
}

/* An assistant message's tool_calls → functionCall parts with the arguments parsed. */
static int add_function_calls(cJSON *parts, const cJSON *calls, int msg, gyre_api_error_t *err)
{
    char param[128];
    if (calls == NULL || cJSON_IsNull(calls))
        return 0;
    if (!cJSON_IsArray(calls)) {
        snprintf(param, sizeof(param), "messages[%d].tool_calls", msg);
        BAD_REQUEST(err, "invalid_type", param, "'%s' must be an array", param);
        return -1;
    }
    int j = 0;
    for (const cJSON *c = calls->child; c != NULL; c = c->next, j++) {
        const cJSON *fn = get(c, "function");
        const cJSON *name = get(fn, "name"), *arguments = get(fn, "arguments");
        if (!cJSON_IsString(name)) {
            snprintf(param, sizeof(param), "messages[%d].tool_calls[%d].function.name", msg, j);
            BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
            return -1;
        }
        cJSON *args = NULL;
        if (cJSON_IsString(arguments) && arguments->valuestring[strspn(arguments->valuestring, " \t\r\n")] != '\0')
            args = cJSON_Parse(arguments->valuestring);
        else if (arguments == NULL || cJSON_IsString(arguments))
            args = cJSON_CreateObject();
        if (!cJSON_IsObject(args)) {
            cJSON_Delete(args);
            snprintf(param, sizeof(param), "messages[%d].tool_calls[%d].function.arguments", msg, j);
            BAD_REQUEST(err, "invalid_value", param, "'%s' must be a JSON object in a string", param);
            return -1;
        }
        cJSON *p = cJSON_CreateObject(), *call = cJSON_AddObjectToObject(p, "functionCall");
        cJSON_AddStringToObject(call, "name", name->valuestring);
        cJSON_AddItemToObject(call, "args", args);
        cJSON_AddItemToArray(parts, p);
    }
    return 0;
}

/* A tool (or legacy function) message → a functionResponse part: its result is the JSON object it holds, else its text. */
static int add_function_response(cJSON *parts, const cJSON *messages, const cJSON *m, int msg, gyre_api_error_t *err)
{
    char param[128];
    const char *name;
    const cJSON *role = get(m, "role");
    if (strcmp(role->valuestring, "function") == 0) {
        const cJSON *n = get(m, "name");
        snprintf(param, sizeof(param), "messages[%d].name", msg);
        if (!cJSON_IsString(n)) {
            BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
            return -1;
        }
        name = n->valuestring;
    } else {
        const cJSON *id = get(m, "tool_call_id");
        snprintf(param, sizeof(param), "messages[%d].tool_call_id", msg);
        if (!cJSON_IsString(id)) {
            BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
            return -1;
        }
        name = tool_call_name(messages, m, id->valuestring);
        if (name == NULL) {
            BAD_REQUEST(
                err, "invalid_value", param,
                "'%s' is '%s', which no earlier assistant tool call has as its id (Gemini needs the function's name)",
                param, id->valuestring);
            return -1;
        }
    }

    /* The text of the content: a string, or its text parts joined. */
    const cJSON *content = get(m, "content");
    cJSON *result = NULL;
    if (cJSON_IsString(content)) {
        result = cJSON_Parse(content->valuestring);
        if (!cJSON_IsObject(result)) {
            cJSON_Delete(result);
            result = cJSON_CreateString(content->valuestring);
        }
    } else if (cJSON_IsArray(content)) {
        gyre_buf_t text;
        gyre_buf_init(&text, GEMINI_EVENT_MAX);
        for (const cJSON *p = content->child; p != NULL; p = p->next) {
            const cJSON *t = get(p, "text");
            if (cJSON_IsString(t) && gyre_buf_appends(&text, t->valuestring) != 0) {
                gyre_buf_dispose(&text);
                snprintf(param, sizeof(param), "messages[%d].content", msg);
                BAD_REQUEST(err, "invalid_value", param, "'%s' is longer than %zu bytes", param, GEMINI_EVENT_MAX);
                return -1;
            }
        }
        result = cJSON_Parse(text.base != NULL ? text.base : "");
        if (!cJSON_IsObject(result)) {
            cJSON_Delete(result);
            result = cJSON_CreateString(text.base != NULL ? text.base : "");
        }
        gyre_buf_dispose(&text);
    } else {
        result = cJSON_CreateString("");
    }
    cJSON *p = cJSON_CreateObject(), *fr = cJSON_AddObjectToObject(p, "functionResponse");
    cJSON_AddStringToObject(fr, "name", name);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(fr, "response"), "result", result);
    cJSON_AddItemToArray(parts, p);
    return 0;
}

/* Moves `parts` into the last content when it has the same role, else into a new one. */
static void add_to_contents(cJSON *contents, const char *role, cJSON *parts)
{
    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return;
    }
    cJSON *last = cJSON_GetArrayItem(contents, cJSON_GetArraySize(contents) - 1);
    const cJSON *last_role = get(last, "role");
    if (last != NULL && cJSON_IsString(last_role) && strcmp(last_role->valuestring, role) == 0) {
        cJSON *into = get(last, "parts");
        while (parts->child != NULL)
            cJSON_AddItemToArray(into, cJSON_DetachItemViaPointer(parts, parts->child));
        cJSON_Delete(parts);
        return;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "role", role);
    cJSON_AddItemToObject(c, "parts", parts);
    cJSON_AddItemToArray(contents, c);
}

static int build_contents(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    char param[128];
    const cJSON *messages = get(req, "messages");
    if (!cJSON_IsArray(messages)) {
        BAD_REQUEST(err, "invalid_type", "messages", "'messages' must be an array");
        return -1;
    }
    cJSON *contents = cJSON_AddArrayToObject(out, "contents");
    cJSON *system = NULL;
    int i = 0;
    for (const cJSON *m = messages->child; m != NULL; m = m->next, i++) {
        const cJSON *role = get(m, "role");
        if (!cJSON_IsString(role)) {
            snprintf(param, sizeof(param), "messages[%d].role", i);
            BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
            return -1;
        }
        const char *r = role->valuestring;
        const cJSON *content = get(m, "content");
        cJSON *parts = cJSON_CreateArray();
        int rc;
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0) {
            /* Gemini has one system instruction; every system message adds to it, in order. */
            if (system == NULL)
                system = cJSON_AddArrayToObject(cJSON_AddObjectToObject(out, "systemInstruction"), "parts");
            rc = add_content_parts(parts, content, PARTS_TEXT, i, err);
            while (rc == 0 && parts->child != NULL)
                cJSON_AddItemToArray(system, cJSON_DetachItemViaPointer(parts, parts->child));
            cJSON_Delete(parts);
        } else if (strcmp(r, "user") == 0) {
            rc = add_content_parts(parts, content, PARTS_MEDIA, i, err);
            add_to_contents(contents, "user", parts);
        } else if (strcmp(r, "assistant") == 0) {
            rc = add_content_parts(parts, content, PARTS_TEXT, i, err);
            if (rc == 0)
                rc = add_function_calls(parts, get(m, "tool_calls"), i, err);
            add_to_contents(contents, "model", parts);
        } else if (strcmp(r, "tool") == 0 || strcmp(r, "function") == 0) {
            rc = add_function_response(parts, messages, m, i, err);
            add_to_contents(contents, "user", parts);
        } else {
            cJSON_Delete(parts);
            snprintf(param, sizeof(param), "messages[%d].role", i);
            BAD_REQUEST(err, "invalid_value", param,
                        "'%s' is '%s', not one of system, developer, user, assistant, tool", param, r);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* An object schema without properties: Gemini rejects it as a function's parameters, so it is left out. */
static int schema_is_empty_object(const cJSON *schema)
{
    const cJSON *type = get(schema, "type"), *props = get(schema, "properties");
    return cJSON_IsString(type) && strcmp(type->valuestring, "object") == 0 &&
           (props == NULL || (cJSON_IsObject(props) && props->child == NULL));
}

static int build_tools(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    char param[128];
    const cJSON *tools = get(req, "tools");
    if (tools == NULL || cJSON_IsNull(tools))
        return 0;
    if (!cJSON_IsArray(tools)) {
        BAD_REQUEST(err, "invalid_type", "tools", "'tools' must be an array");
        return -1;
    }
    if (tools->child == NULL)
        return 0;
    cJSON *tool = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "tools"), tool);
    cJSON *decls = cJSON_AddArrayToObject(tool, "functionDeclarations");
    int i = 0;
    for (const cJSON *t = tools->child; t != NULL; t = t->next, i++) {
        const cJSON *type = get(t, "type"), *fn = get(t, "function");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0) {
            snprintf(param, sizeof(param), "tools[%d].type", i);
            BAD_REQUEST(err, "unsupported_value", param, "'%s' must be 'function': Gemini is sent function tools only",
                        param);
            return -1;
        }
        const cJSON *name = get(fn, "name"), *description = get(fn, "description"), *params = get(fn, "parameters");
        if (!cJSON_IsString(name)) {
            snprintf(param, sizeof(param), "tools[%d].function.name", i);
            BAD_REQUEST(err, "invalid_type", param, "'%s' must be a string", param);
            return -1;
        }
        cJSON *decl = cJSON_CreateObject();
        cJSON_AddItemToArray(decls, decl);
        cJSON_AddStringToObject(decl, "name", name->valuestring);
        if (cJSON_IsString(description))
            cJSON_AddStringToObject(decl, "description", description->valuestring);
        if (cJSON_IsObject(params)) {
            cJSON *schema = cJSON_Duplicate(params, 1);
            schema_strip(schema);
            if (schema_is_empty_object(schema))
                cJSON_Delete(schema);
            else
                cJSON_AddItemToObject(decl, "parameters", schema);
        }
    }
    return 0;
}

static int build_tool_config(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    const cJSON *choice = get(req, "tool_choice");
    const char *mode = NULL;
    const cJSON *only = NULL;
    if (choice == NULL || cJSON_IsNull(choice))
        return 0;
    if (cJSON_IsString(choice) && strcmp(choice->valuestring, "auto") == 0)
        mode = "AUTO";
    else if (cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0)
        mode = "NONE";
    else if (cJSON_IsString(choice) && strcmp(choice->valuestring, "required") == 0)
        mode = "ANY";
    else if (cJSON_IsObject(choice) && cJSON_IsString(get(choice, "type")) &&
             strcmp(get(choice, "type")->valuestring, "function") == 0 &&
             cJSON_IsString(only = get(get(choice, "function"), "name")))
        mode = "ANY";
    if (mode == NULL) {
        BAD_REQUEST(err, "unsupported_value", "tool_choice",
                    "'tool_choice' must be \"auto\", \"none\", \"required\" or "
                    "{\"type\":\"function\",\"function\":{\"name\":...}} for Gemini");
        return -1;
    }
    cJSON *fcc = cJSON_AddObjectToObject(cJSON_AddObjectToObject(out, "toolConfig"), "functionCallingConfig");
    cJSON_AddStringToObject(fcc, "mode", mode);
    if (only != NULL)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(fcc, "allowedFunctionNames"),
                             cJSON_CreateString(only->valuestring));
    return 0;
}

/* Returns the member when it is a number, NULL when absent or null, and fails for anything else. */
static int number_member(const cJSON *req, const char *key, const cJSON **v, gyre_api_error_t *err)
{
    *v = get(req, key);
    if (*v == NULL || cJSON_IsNull(*v)) {
        *v = NULL;
        return 0;
    }
    if (!cJSON_IsNumber(*v)) {
        BAD_REQUEST(err, "invalid_type", key, "'%s' must be a number", key);
        return -1;
    }
    return 0;
}

static int build_generation_config(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    cJSON *gc = cJSON_CreateObject();
    const cJSON *v;
    int rc = -1;

    if (number_member(req, "temperature", &v, err) != 0)
        goto out;
    if (v != NULL)
        cJSON_AddNumberToObject(gc, "temperature", v->valuedouble);
    if (number_member(req, "top_p", &v, err) != 0)
        goto out;
    if (v != NULL)
        cJSON_AddNumberToObject(gc, "topP", v->valuedouble);
    if (number_member(req, "max_completion_tokens", &v, err) != 0)
        goto out;
    if (v == NULL && number_member(req, "max_tokens", &v, err) != 0)
        goto out;
    if (v != NULL)
        cJSON_AddNumberToObject(gc, "maxOutputTokens", v->valuedouble);
    if (number_member(req, "n", &v, err) != 0)
        goto out;
    if (v != NULL) {
        if (!(v->valuedouble >= 1 && v->valuedouble <= GEMINI_MAX_CANDIDATES)) {
            BAD_REQUEST(err, "unsupported_value", "n", "'n' must be from 1 to %d for Gemini", GEMINI_MAX_CANDIDATES);
            goto out;
        }
        cJSON_AddNumberToObject(gc, "candidateCount", v->valuedouble);
    }
    if (number_member(req, "seed", &v, err) != 0)
        goto out;
    if (v != NULL)
        cJSON_AddNumberToObject(gc, "seed", v->valuedouble);

    const cJSON *stop = get(req, "stop");
    if (cJSON_IsString(stop)) {
        cJSON_AddItemToArray(cJSON_AddArrayToObject(gc, "stopSequences"), cJSON_CreateString(stop->valuestring));
    } else if (cJSON_IsArray(stop)) {
        for (const cJSON *s = stop->child; s != NULL; s = s->next)
            if (!cJSON_IsString(s)) {
                BAD_REQUEST(err, "invalid_type", "stop", "'stop' must be a string or an array of strings");
                goto out;
            }
        if (stop->child != NULL)
            cJSON_AddItemToObject(gc, "stopSequences", cJSON_Duplicate(stop, 1));
    } else if (stop != NULL && !cJSON_IsNull(stop)) {
        BAD_REQUEST(err, "invalid_type", "stop", "'stop' must be a string or an array of strings");
        goto out;
    }

    const cJSON *format = get(req, "response_format");
    if (format != NULL && !cJSON_IsNull(format)) {
        const cJSON *type = get(format, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (strcmp(t, "json_object") == 0 || strcmp(t, "json_schema") == 0) {
            cJSON_AddStringToObject(gc, "responseMimeType", "application/json");
            const cJSON *schema = get(get(format, "json_schema"), "schema");
            if (strcmp(t, "json_schema") == 0 && cJSON_IsObject(schema)) {
                cJSON *s = cJSON_Duplicate(schema, 1);
                schema_strip(s);
                cJSON_AddItemToObject(gc, "responseSchema", s);
            }
        } else if (strcmp(t, "text") != 0) {
            BAD_REQUEST(err, "unsupported_value", "response_format.type",
                        "'response_format.type' must be text, json_object or json_schema");
            goto out;
        }
    }
    rc = 0;
out:
    if (rc == 0 && gc->child != NULL)
        cJSON_AddItemToObject(out, "generationConfig", gc);
    else
        cJSON_Delete(gc);
    return rc;
}

/* "/models/" + the model (a leading "models/" dropped, anything but unreserved bytes %-encoded) + the method. */
static int build_path(const gyre_chat_call_t *call, gyre_buf_t *path)
{
    const char *model = call->model != NULL ? call->model : "";
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    int r = gyre_buf_appends(path, "/models/");
    if (r == 0)
        r = gyre_wire_append_segment(path, model, strlen(model));
    if (r == 0)
        r = gyre_buf_appends(path, call->stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    return r;
}

static int gemini_chat_request(const gyre_chat_call_t *call, gyre_buf_t *path, gyre_buf_t *body, gyre_api_error_t *err)
{
    cJSON *out = cJSON_CreateObject();
    char *text = NULL;
    int rc = -1;
    if (build_contents(call->req, out, err) != 0 || build_tools(call->req, out, err) != 0 ||
        build_tool_config(call->req, out, err) != 0 || build_generation_config(call->req, out, err) != 0)
        goto out;
    if ((text = cJSON_PrintUnformatted(out)) == NULL) {
        gyre_api_error_set(err, 500, "server_error", NULL, NULL, "could not write the Gemini request");
        goto out;
    }
    if (gyre_buf_appends(body, text) != 0) {
        gyre_api_error_set(err, 413, "invalid_request_error", "request_too_large", NULL,
                           "the request for Gemini is larger than %zu bytes", body->max);
        goto out;
    }
    int pr = build_path(call, path);
    if (pr != 0) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                           pr == -EINVAL ? "'model' cannot be sent to provider '%s' as a path segment: it is empty or "
                                           "has a dot-segment ('.' or '..')"
                                         : "'model' is too long for a request path of provider '%s'",
                           call->provider != NULL ? call->provider->name : "gemini");
        goto out;
    }
    rc = 0;
out:
    cJSON_free(text);
    cJSON_Delete(out);
    return rc;
}

static int gemini_auth_headers(const gyre_chat_call_t *call, const char *key, const char *host, const char *path,
                               const char *body, size_t body_len, long long now, gyre_buf_t *headers)
{
    (void)call, (void)host, (void)path, (void)body, (void)body_len, (void)now;
    int r = 0;
    if (key != NULL) {
        if (strpbrk(key, "\r\n") != NULL)
            return -EINVAL; /* it would end the header early */
        r |= gyre_buf_appendf(headers, "x-goog-api-key: %s\r\n", key);
    }
    r |= gyre_buf_appends(headers, "content-type: application/json\r\n");
    return r != 0 ? -1 : 0;
}

/* --- answers -------------------------------------------------------------- */

/* A candidate's index: its "index" when in range, else its position. */
static int candidate_index(const cJSON *cand, int position)
{
    const cJSON *index = get(cand, "index");
    if (cJSON_IsNumber(index) && index->valuedouble >= 0 && index->valuedouble < GEMINI_MAX_CANDIDATES)
        return (int)index->valuedouble;
    return position;
}

/* The id a function call gets: "call_" + the completion id's suffix + a counter. */
static void tool_call_id(char *buf, size_t size, const char *completion_id, size_t seq)
{
    snprintf(buf, size, "call_%.64s_%zu", id_suffix(completion_id), seq);
}

/* A candidate's text parts joined (thoughts left out) into `text`; returns how many function calls it has. */
static size_t candidate_read(const cJSON *parts, gyre_buf_t *text, int *r)
{
    size_t ncalls = 0;
    static const char *const keys[] = {"text", "thought", "functionCall"};
    for (const cJSON *p = cJSON_IsArray(parts) ? parts->child : NULL; p != NULL; p = p->next) {
        const cJSON *v[3];
        get_members(p, keys, v, 3);
        if (cJSON_IsString(v[0]) && !cJSON_IsTrue(v[1]))
            *r |= gyre_buf_appends(text, v[0]->valuestring);
        if (cJSON_IsObject(v[2]))
            ncalls++;
    }
    return ncalls;
}

/*
 * Appends one function call as an OpenAI tool call
 * ({"index" (in stream deltas; -1 leaves it out),"id","type","function":{"name","arguments"}}).
 */
static int append_tool_call(gyre_buf_t *out, long long index, const char *id, const cJSON *fc)
{
    const cJSON *name = get(fc, "name");
    int r = index >= 0 ? gyre_buf_appendf(out, "{\"index\":%lld,\"id\":", index) : gyre_buf_appends(out, "{\"id\":");
    r |= append_json_str(out, id);
    r |= gyre_buf_appends(out, ",\"type\":\"function\",\"function\":{\"name\":");
    r |= append_json_str(out, cJSON_IsString(name) ? name->valuestring : "");
    r |= gyre_buf_appends(out, ",\"arguments\":");
    r |= append_arguments(out, get(fc, "args"));
    r |= gyre_buf_appends(out, "}}");
    return r;
}

/* Appends one choice of a chat.completion; `seq` numbers the tool calls across choices. */
static int append_choice(const gyre_chat_call_t *call, const cJSON *cand, int index, size_t *seq, gyre_buf_t *out)
{
    const cJSON *parts = get(get(cand, "content"), "parts"), *reason = get(cand, "finishReason");
    gyre_buf_t text;
    int r = 0;
    gyre_buf_init(&text, out->max);
    size_t ncalls = candidate_read(parts, &text, &r);

    r |= gyre_buf_appendf(out, "{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":", index);
    if (text.len > 0)
        r |= gyre_buf_append_json_string(out, text.base, text.len);
    else
        r |= gyre_buf_appends(out, ncalls > 0 ? "null" : "\"\"");
    gyre_buf_dispose(&text);
    if (ncalls > 0) {
        r |= gyre_buf_appends(out, ",\"tool_calls\":[");
        size_t k = 0;
        for (const cJSON *p = parts->child; p != NULL; p = p->next) {
            const cJSON *fc = get(p, "functionCall");
            if (!cJSON_IsObject(fc))
                continue;
            char id[96];
            tool_call_id(id, sizeof(id), call->id, (*seq)++);
            if (k++ > 0)
                r |= gyre_buf_appends(out, ",");
            r |= append_tool_call(out, -1, id, fc);
        }
        r |= gyre_buf_appends(out, "]");
    }
    /* A candidate without a finishReason in a whole answer ended normally. */
    const char *finish = finish_reason_of(cJSON_IsString(reason) ? reason->valuestring : "STOP", ncalls > 0);
    r |= gyre_buf_appendf(out, "},\"finish_reason\":\"%s\"}", finish);
    return r;
}

/* The completion's head: {"id","object","created","model"; the model is the answer's modelVersion when it has one. */
static int append_head(gyre_buf_t *out, const char *object, const char *id, long long created, const char *model)
{
    int r = gyre_buf_appends(out, "{\"id\":");
    r |= append_json_str(out, id != NULL ? id : "");
    r |= gyre_buf_appendf(out, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, created);
    r |= append_json_str(out, model != NULL ? model : "");
    return r;
}

static const char *model_of(const cJSON *answer, const char *fallback)
{
    const cJSON *version = get(answer, "modelVersion");
    return cJSON_IsString(version) && version->valuestring[0] != '\0' ? version->valuestring : fallback;
}

static int gemini_chat_response(const gyre_chat_call_t *call, const char *body, size_t len, gyre_buf_t *out,
                                gyre_api_error_t *err)
{
    cJSON *answer = cJSON_ParseWithLength(body, len);
    size_t start = out->len, seq = 0;
    int r = 0, rc = -1;
    if (!cJSON_IsObject(answer)) {
        gyre_api_error_set(err, 502, "upstream_error", NULL, NULL, "Gemini's answer is not a JSON object");
        goto out;
    }
    if (cJSON_IsObject(get(answer, "error"))) {
        error_from_json(get(answer, "error"), err);
        goto out;
    }
    r |= append_head(out, "chat.completion", call->id, call->created, model_of(answer, call->model));
    r |= gyre_buf_appends(out, ",\"choices\":[");
    const cJSON *cands = get(answer, "candidates");
    int n = 0;
    for (const cJSON *c = cJSON_IsArray(cands) ? cands->child : NULL; c != NULL; c = c->next, n++) {
        if (n > 0)
            r |= gyre_buf_appends(out, ",");
        r |= append_choice(call, c, candidate_index(c, n), &seq, out);
    }
    if (n == 0) {
        /* No candidate at all: the prompt itself was blocked (promptFeedback.blockReason), or nothing came. */
        const cJSON *block = get(get(answer, "promptFeedback"), "blockReason");
        r |= gyre_buf_appendf(out,
                              "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
                              "\"finish_reason\":\"%s\"}",
                              cJSON_IsString(block) ? "content_filter" : "stop");
    }
    r |= gyre_buf_appends(out, "]");
    gemini_usage_t usage = {0};
    usage_read(&usage, get(answer, "usageMetadata"));
    if (usage.seen) {
        r |= gyre_buf_appends(out, ",\"usage\":");
        r |= usage_append(out, &usage);
    }
    r |= gyre_buf_appends(out, "}");
    if (r != 0) {
        gyre_api_error_set(err, 502, "upstream_error", NULL, NULL, "Gemini's answer is larger than %zu bytes",
                           out->max);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
    }
    cJSON_Delete(answer);
    return rc;
}

static void gemini_error_message(const char *body, size_t len, gyre_buf_t *out)
{
    cJSON *answer = cJSON_ParseWithLength(body, len);
    /* A stream's error can come as an array of one response ([{"error":...}]) without alt=sse. */
    const cJSON *top = cJSON_IsArray(answer) ? answer->child : answer;
    const cJSON *message = get(get(top, "error"), "message");
    if (cJSON_IsObject(top) && cJSON_IsString(message))
        gyre_buf_append_upto(out, message->valuestring, strlen(message->valuestring)); /* cut to what out holds */
    else
        gyre_buf_append_upto(out, body, len);
    cJSON_Delete(answer);
}

/* --- streams -------------------------------------------------------------- */

typedef struct gemini_stream {
    gyre_dialect_stream_t super;
    gyre_sse_parser_t sse;
    char *id, *model; /* owned; the model becomes the first event's modelVersion when it has one */
    long long created;
    int events;                           /* events read so far */
    unsigned started;                     /* a bit per candidate: its START was sent */
    unsigned finished;                    /* a bit per candidate: its FINISH was sent */
    size_t ntools[GEMINI_MAX_CANDIDATES]; /* tool calls sent per candidate: OpenAI's per-choice index */
    size_t seq;                           /* tool-call ids, across candidates */
    gemini_usage_t usage;
    gyre_buf_t text;                /* a candidate's text parts joined, reused from event to event */
    const gyre_event_sink_t *sink; /* while feeding */
    int failed;
    gyre_api_error_t error; /* why, once failed */
} gemini_stream_t;

static void stream_fail(gemini_stream_t *s, const char *why)
{
    s->failed = 1;
    gyre_api_error_set(&s->error, 502, "upstream_error", NULL, NULL, "%s", why);
}

static int emit(gemini_stream_t *s, gyre_event_t *ev)
{
    return s->sink->emit(s->sink->ctx, ev);
}

static int event_start(gemini_stream_t *s, int index)
{
    if (s->started & (1u << index))
        return 0;
    s->started |= 1u << index;
    gyre_event_t ev = {.type = GYRE_EVENT_START,
                       .choice = index,
                       .id = {s->id, strlen(s->id)},
                       .model = {s->model, strlen(s->model)},
                       .created = s->created};
    return emit(s, &ev);
}

static int event_finish(gemini_stream_t *s, int index, const char *finish)
{
    if (s->finished & (1u << index))
        return 0;
    s->finished |= 1u << index;
    gyre_event_t ev = {.type = GYRE_EVENT_FINISH, .choice = index, .finish_reason = finish};
    return emit(s, &ev);
}

/* One candidate of an event: its text as one TEXT, each function call as a whole TOOL_START. */
static int stream_candidate(gemini_stream_t *s, const cJSON *cand, int index)
{
    static const char *const keys[] = {"content", "finishReason"};
    const cJSON *v[2];
    get_members(cand, keys, v, 2);
    const cJSON *parts = get(v[0], "parts"), *reason = v[1];
    int r = event_start(s, index);
    gyre_buf_reset(&s->text);
    size_t ncalls = candidate_read(parts, &s->text, &r);
    if (r == 0 && s->text.len > 0) {
        gyre_event_t ev = {.type = GYRE_EVENT_TEXT, .choice = index, .text = {s->text.base, s->text.len}};
        r |= emit(s, &ev);
    }
    for (const cJSON *p = ncalls > 0 ? parts->child : NULL; p != NULL && r == 0; p = p->next) {
        const cJSON *fc = get(p, "functionCall");
        if (!cJSON_IsObject(fc))
            continue;
        char id[96];
        tool_call_id(id, sizeof(id), s->id, s->seq++);
        const cJSON *name = get(fc, "name"), *args = get(fc, "args");
        char *text = args != NULL ? cJSON_PrintUnformatted(args) : NULL;
        if (args != NULL && text == NULL)
            return -1;
        gyre_event_t ev = {.type = GYRE_EVENT_TOOL_START,
                           .choice = index,
                           .index = (int)s->ntools[index]++,
                           .id = {id, strlen(id)},
                           .name = cJSON_IsString(name) ? (gyre_str_t){name->valuestring, strlen(name->valuestring)}
                                                        : (gyre_str_t){"", 0},
                           .text = text != NULL ? (gyre_str_t){text, strlen(text)} : (gyre_str_t){"{}", 2}};
        r |= emit(s, &ev);
        cJSON_free(text);
    }
    if (r == 0 && cJSON_IsString(reason) && reason->valuestring[0] != '\0' &&
        strcmp(reason->valuestring, "FINISH_REASON_UNSPECIFIED") != 0)
        r |= event_finish(s, index, finish_reason_of(reason->valuestring, s->ntools[index] > 0));
    return r;
}

/* Every candidate that started has finished: the stream is over, as far as the client is concerned. */
static int stream_end(gemini_stream_t *s)
{
    const gemini_usage_t *u = &s->usage;
    gyre_event_t ev = {.type = GYRE_EVENT_USAGE,
                       .usage = {.input_tokens = u->prompt,
                                 .output_tokens = u->candidates + u->thoughts,
                                 .total_tokens = u->total,
                                 .cached_tokens = u->cached,
                                 .reasoning_tokens = u->thoughts,
                                 .details = GYRE_USAGE_CACHED | GYRE_USAGE_REASONING}};
    int r = emit(s, &ev);
    gyre_event_t done = {.type = GYRE_EVENT_DONE};
    if (r == 0)
        r = emit(s, &done);
    s->super.complete = r == 0;
    return r;
}

static void stream_event(gemini_stream_t *s, const cJSON *ev)
{
    static const char *const keys[] = {"candidates", "error", "usageMetadata", "promptFeedback"};
    const cJSON *v[4];
    get_members(ev, keys, v, 4);
    const cJSON *cands = v[0];
    int r = 0;
    if (cJSON_IsObject(v[1])) {
        s->failed = 1;
        error_from_json(v[1], &s->error);
        return;
    }
    /* The candidates are checked before any is read: a failed event sends nothing of itself. */
    int n = 0;
    for (const cJSON *c = cJSON_IsArray(cands) ? cands->child : NULL; c != NULL; c = c->next, n++) {
        const cJSON *index = get(c, "index");
        if (index != NULL &&
            !(cJSON_IsNumber(index) && index->valuedouble >= 0 && index->valuedouble < GEMINI_MAX_CANDIDATES)) {
            stream_fail(s, "Gemini's stream has a candidate index outside 0 to 7");
            return;
        }
        if (n >= GEMINI_MAX_CANDIDATES) {
            stream_fail(s, "Gemini's stream has more than 8 candidates");
            return;
        }
    }
    if (s->events++ == 0) {
        const char *model = model_of(ev, NULL);
        if (model != NULL) {
            free(s->model);
            s->model = gyre_strdup(model);
        }
    }
    usage_read(&s->usage, v[2]);
    n = 0;
    for (const cJSON *c = cJSON_IsArray(cands) ? cands->child : NULL; c != NULL && r == 0; c = c->next, n++)
        r |= stream_candidate(s, c, candidate_index(c, n));
    if (r == 0 && n == 0 && cJSON_IsString(get(v[3], "blockReason"))) {
        r |= event_start(s, 0);
        if (r == 0)
            r |= event_finish(s, 0, "content_filter");
    }
    if (r == 0 && s->finished != 0 && (s->started & ~s->finished) == 0)
        r |= stream_end(s);
    if (r != 0)
        stream_fail(s, "the translated Gemini stream outgrew its buffer");
}

static void on_sse_event_cb(void *ctx, const char *event, size_t event_len, const char *data, size_t data_len)
{
    gemini_stream_t *s = ctx;
    (void)event, (void)event_len;
    if (s->failed || s->super.complete)
        return;
    /* The event's values live in the per-thread JSON arena until its last emit returns. */
    int scope = gyre_json_arena_enter();
    cJSON *ev = cJSON_ParseWithLength(data, data_len);
    if (!cJSON_IsObject(ev))
        stream_fail(s, "Gemini's stream has an event that is not a JSON object");
    else
        stream_event(s, ev);
    cJSON_Delete(ev);
    if (scope)
        gyre_json_arena_end();
}

static gyre_dialect_stream_t *gemini_stream_create(const gyre_chat_call_t *call)
{
    gemini_stream_t *s = gyre_calloc(1, sizeof(*s));
    gyre_sse_init(&s->sse, GEMINI_EVENT_MAX, on_sse_event_cb, s);
    gyre_buf_init(&s->text, GEMINI_EVENT_MAX);
    s->id = gyre_strdup(call->id != NULL ? call->id : "");
    s->model = gyre_strdup(call->model != NULL ? call->model : "");
    s->created = call->created;
    return &s->super;
}

static int gemini_stream_feed(gyre_dialect_stream_t *base, const char *bytes, size_t len,
                              const gyre_event_sink_t *sink, gyre_api_error_t *err)
{
    gemini_stream_t *s = (gemini_stream_t *)base;
    if (!s->failed && !s->super.complete) {
        s->sink = sink;
        if (gyre_sse_feed(&s->sse, bytes, len) != 0 && !s->failed)
            stream_fail(s, "Gemini's stream has an event larger than 4 MiB");
        s->sink = NULL;
    }
    if (s->failed) {
        *err = s->error;
        return -1;
    }
    return 0;
}

static void gemini_stream_destroy(gyre_dialect_stream_t *base)
{
    gemini_stream_t *s = (gemini_stream_t *)base;
    if (s == NULL)
        return;
    gyre_sse_dispose(&s->sse);
    gyre_buf_dispose(&s->text);
    free(s->id);
    free(s->model);
    free(s);
}

const gyre_dialect_t gyre_dialect_gemini = {
    .kind = "gemini",
    .speaks_openai = 0,
    .chat_request = gemini_chat_request,
    .auth_headers = gemini_auth_headers,
    .chat_response = gemini_chat_response,
    .error_message = gemini_error_message,
    .stream_create = gemini_stream_create,
    .stream_feed = gemini_stream_feed,
    .stream_destroy = gemini_stream_destroy,
};
