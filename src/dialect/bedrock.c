/*
 * The AWS Bedrock Converse API as a provider kind (gyre_dialect_bedrock in
 * dialect.h).
 *
 * An OpenAI chat request becomes a Converse request: POST
 * /model/{modelId}/converse (or /converse-stream), with messages whose
 * content is a list of blocks ({text}, {image}, {toolUse}, {toolResult}),
 * the system prompt apart, inferenceConfig for the sampling settings and
 * toolConfig for the tools.  Requests are signed with SigV4 (service
 * "bedrock") when the key is "AKID:SECRET[:TOKEN]", or carry a Bedrock API
 * key as a bearer token.
 *
 * Answers come back as one JSON object, or for a stream as AWS's binary
 * event stream (eventstream.h), whose events (messageStart,
 * contentBlockStart/Delta/Stop, messageStop, metadata) become OpenAI chunks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/wire.h"
#include "dialect/dialect.h"
#include "dialect/eventstream.h"
#include "dialect/sigv4.h"

/* The largest event-stream message a stream accepts: Bedrock's events are deltas of a few hundred bytes. */
#define BEDROCK_EVENT_MAX ((size_t)1 << 20)
/* Tool-use blocks one answer may open; more is an answer gyre refuses rather than tracks without bound. */
#define BEDROCK_MAX_TOOL_BLOCKS 1024

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

#define BAD(err, param, ...)                                                                                           \
    gyre_api_error_set((err), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__)

/* --- requests ------------------------------------------------------------- */

static void add_text_block(cJSON *blocks, const char *text)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "text", text);
    cJSON_AddItemToArray(blocks, b);
}

/* "data:image/png;base64,..." → an image block; anything else is refused. */
static int add_image_block(cJSON *blocks, const cJSON *part, const char *param, gyre_api_error_t *err)
{
    static const struct {
        const char *mime, *format;
    } formats[] = {{"image/png", "png"},
                   {"image/jpeg", "jpeg"},
                   {"image/jpg", "jpeg"},
                   {"image/gif", "gif"},
                   {"image/webp", "webp"}};
    const cJSON *iu = get(part, "image_url");
    const cJSON *url = cJSON_IsString(iu) ? iu : get(iu, "url");
    if (!cJSON_IsString(url) || strncmp(url->valuestring, "data:", 5) != 0) {
        BAD(err, param, "bedrock accepts images as base64 data URLs only");
        return -1;
    }
    const char *mime = url->valuestring + 5, *b64 = strstr(mime, ";base64,");
    if (b64 == NULL) {
        BAD(err, param, "bedrock accepts images as base64 data URLs only");
        return -1;
    }
    const char *format = NULL;
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]) && format == NULL; i++)
        if ((size_t)(b64 - mime) == strlen(formats[i].mime) && strncmp(mime, formats[i].mime, b64 - mime) == 0)
            format = formats[i].format;
    if (format == NULL) {
        BAD(err, param, "bedrock accepts png, jpeg, gif and webp images only, not '%.*s'",
            (int)(b64 - mime < 64 ? b64 - mime : 64), mime);
        return -1;
    }
    /* A blob in Converse's JSON is base64 already: the data URL's text goes through as it is. */
    cJSON *img = cJSON_CreateObject();
    cJSON_AddStringToObject(img, "format", format);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(img, "source"), "bytes", b64 + 8);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "image", img);
    cJSON_AddItemToArray(blocks, b);
    return 0;
}

/*
 * A message's content (a string, null, or parts) as blocks.  Empty text is
 * left out: Converse refuses blank text blocks.  Images only where `images`.
 */
static int add_content(cJSON *blocks, const cJSON *content, int images, int msg, gyre_api_error_t *err)
{
    char param[96];
    if (content == NULL || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content)) {
        if (content->valuestring[0] != '\0')
            add_text_block(blocks, content->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(content)) {
        snprintf(param, sizeof(param), "messages[%d].content", msg);
        BAD(err, param, "%s must be a string or an array of content parts", param);
        return -1;
    }
    int j = 0;
    for (const cJSON *part = content->child; part != NULL; part = part->next, j++) {
        const cJSON *type = get(part, "type");
        snprintf(param, sizeof(param), "messages[%d].content[%d]", msg, j);
        if (!cJSON_IsString(type)) {
            BAD(err, param, "%s has no type", param);
            return -1;
        }
        if (strcmp(type->valuestring, "text") == 0) {
            const cJSON *text = get(part, "text");
            if (!cJSON_IsString(text)) {
                BAD(err, param, "%s.text must be a string", param);
                return -1;
            }
            if (text->valuestring[0] != '\0')
                add_text_block(blocks, text->valuestring);
        } else if (images && strcmp(type->valuestring, "image_url") == 0) {
            snprintf(param, sizeof(param), "messages[%d].content[%d].image_url.url", msg, j);
            if (add_image_block(blocks, part, param, err) != 0)
                return -1;
        } else if (strcmp(type->valuestring, "refusal") == 0) {
            /* An assistant's earlier refusal carries no content for the model. */
        } else {
            BAD(err, param, "bedrock does not accept content parts of type '%s' here", type->valuestring);
            return -1;
        }
    }
    return 0;
}

static int add_tool_uses(cJSON *blocks, const cJSON *calls, int msg, gyre_api_error_t *err)
{
    char param[96];
    int j = 0;
    for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c != NULL; c = c->next, j++) {
        const cJSON *id = get(c, "id"), *fn = get(c, "function");
        const cJSON *name = get(fn, "name"), *args = get(fn, "arguments");
        snprintf(param, sizeof(param), "messages[%d].tool_calls[%d]", msg, j);
        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            BAD(err, param, "%s needs an id and a function name", param);
            return -1;
        }
        cJSON *input;
        if (args == NULL || cJSON_IsNull(args) || (cJSON_IsString(args) && args->valuestring[0] == '\0'))
            input = cJSON_CreateObject();
        else if (cJSON_IsString(args))
            input = cJSON_Parse(args->valuestring);
        else
            input = NULL;
        if (input == NULL) {
            BAD(err, param, "%s.function.arguments is not valid JSON", param);
            return -1;
        }
        cJSON *use = cJSON_CreateObject();
        cJSON_AddStringToObject(use, "toolUseId", id->valuestring);
        cJSON_AddStringToObject(use, "name", name->valuestring);
        cJSON_AddItemToObject(use, "input", input);
        cJSON *b = cJSON_CreateObject();
        cJSON_AddItemToObject(b, "toolUse", use);
        cJSON_AddItemToArray(blocks, b);
    }
    return 0;
}

static int add_tool_result(cJSON *blocks, const cJSON *m, int msg, gyre_api_error_t *err)
{
    char param[96];
    const cJSON *id = get(m, "tool_call_id");
    if (!cJSON_IsString(id)) {
        snprintf(param, sizeof(param), "messages[%d].tool_call_id", msg);
        BAD(err, param, "%s must be a string", param);
        return -1;
    }
    cJSON *content = cJSON_CreateArray();
    if (add_content(content, get(m, "content"), 0, msg, err) != 0) {
        cJSON_Delete(content);
        return -1;
    }
    /* A tool result needs content; an empty one is said as an empty text. */
    if (cJSON_GetArraySize(content) == 0) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "text", "");
        cJSON_AddItemToArray(content, t);
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "toolUseId", id->valuestring);
    cJSON_AddItemToObject(res, "content", content);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "toolResult", res);
    cJSON_AddItemToArray(blocks, b);
    return 0;
}

/*
 * messages → Converse's messages and system.  Converse wants the roles to
 * alternate, so consecutive messages of one role (tool results above all,
 * which all become user messages) are merged into one.
 */
static int build_messages(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    const cJSON *messages = get(req, "messages");
    cJSON *list = cJSON_AddArrayToObject(out, "messages"), *system = cJSON_CreateArray();
    cJSON *last = NULL; /* the content array of the last message added */
    const char *last_role = NULL;
    char param[96];
    int i = 0;
    for (const cJSON *m = cJSON_IsArray(messages) ? messages->child : NULL; m != NULL; m = m->next, i++) {
        const cJSON *role = get(m, "role");
        snprintf(param, sizeof(param), "messages[%d].role", i);
        if (!cJSON_IsString(role)) {
            BAD(err, param, "%s must be a string", param);
            goto fail;
        }
        const char *r = role->valuestring, *as;
        cJSON *blocks = cJSON_CreateArray();
        int rc;
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0) {
            rc = add_content(system, get(m, "content"), 0, i, err);
            cJSON_Delete(blocks);
            if (rc != 0)
                goto fail;
            continue;
        } else if (strcmp(r, "user") == 0) {
            as = "user";
            rc = add_content(blocks, get(m, "content"), 1, i, err);
        } else if (strcmp(r, "assistant") == 0) {
            as = "assistant";
            rc = add_content(blocks, get(m, "content"), 0, i, err);
            if (rc == 0)
                rc = add_tool_uses(blocks, get(m, "tool_calls"), i, err);
        } else if (strcmp(r, "tool") == 0) {
            as = "user";
            rc = add_tool_result(blocks, m, i, err);
        } else {
            BAD(err, param, "bedrock does not accept messages with role '%s'", r);
            rc = -1;
        }
        if (rc != 0) {
            cJSON_Delete(blocks);
            goto fail;
        }
        if (cJSON_GetArraySize(blocks) == 0) {
            cJSON_Delete(blocks);
            continue;
        }
        if (last != NULL && strcmp(last_role, as) == 0) {
            while (blocks->child != NULL)
                cJSON_AddItemToArray(last, cJSON_DetachItemViaPointer(blocks, blocks->child));
            cJSON_Delete(blocks);
        } else {
            cJSON *msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "role", as);
            cJSON_AddItemToObject(msg, "content", blocks);
            cJSON_AddItemToArray(list, msg);
            last = blocks;
            last_role = as;
        }
    }
    if (cJSON_GetArraySize(system) > 0)
        cJSON_AddItemToObject(out, "system", system);
    else
        cJSON_Delete(system);
    return 0;
fail:
    cJSON_Delete(system);
    return -1;
}

/* A number member, or an error when it is there and not a number. */
static int number_of(const cJSON *req, const char *key, const cJSON **v, gyre_api_error_t *err)
{
    *v = get(req, key);
    if (*v == NULL || cJSON_IsNull(*v)) {
        *v = NULL;
        return 0;
    }
    if (!cJSON_IsNumber(*v)) {
        BAD(err, key, "%s must be a number", key);
        return -1;
    }
    return 0;
}

static int build_inference_config(const gyre_chat_call_t *call, cJSON *out, gyre_api_error_t *err)
{
    const cJSON *req = call->req, *max, *temp, *top_p, *stop = get(req, "stop");
    if (number_of(req, "max_completion_tokens", &max, err) != 0)
        return -1;
    if (max == NULL && number_of(req, "max_tokens", &max, err) != 0)
        return -1;
    if (number_of(req, "temperature", &temp, err) != 0 || number_of(req, "top_p", &top_p, err) != 0)
        return -1;
    cJSON *ic = cJSON_CreateObject();
    if (max != NULL)
        cJSON_AddNumberToObject(ic, "maxTokens", max->valuedouble);
    else if (call->provider != NULL && call->provider->max_tokens > 0)
        cJSON_AddNumberToObject(ic, "maxTokens", call->provider->max_tokens);
    if (temp != NULL)
        cJSON_AddNumberToObject(ic, "temperature", temp->valuedouble);
    if (top_p != NULL)
        cJSON_AddNumberToObject(ic, "topP", top_p->valuedouble);
    if (cJSON_IsString(stop)) {
        cJSON_AddItemToArray(cJSON_AddArrayToObject(ic, "stopSequences"), cJSON_CreateString(stop->valuestring));
    } else if (cJSON_IsArray(stop)) {
        cJSON *seqs = cJSON_AddArrayToObject(ic, "stopSequences");
        for (const cJSON *s = stop->child; s != NULL; s = s->next) {
            if (!cJSON_IsString(s)) {
                cJSON_Delete(ic);
                BAD(err, "stop", "stop must be a string or an array of strings");
                return -1;
            }
            cJSON_AddItemToArray(seqs, cJSON_CreateString(s->valuestring));
        }
    } else if (stop != NULL && !cJSON_IsNull(stop)) {
        cJSON_Delete(ic);
        BAD(err, "stop", "stop must be a string or an array of strings");
        return -1;
    }
    if (ic->child != NULL)
        cJSON_AddItemToObject(out, "inferenceConfig", ic);
    else
        cJSON_Delete(ic);
    return 0;
}

/*
 * tools → toolConfig.tools (toolSpec with the parameters as inputSchema.json)
 * and tool_choice → toolConfig.toolChoice.  Converse has no "none": the
 * tools stay (earlier tool blocks need them declared) and the choice is
 * left to the model.
 */
static int build_tool_config(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    const cJSON *tools = get(req, "tools"), *choice = get(req, "tool_choice");
    char param[64];
    if (!cJSON_IsArray(tools) || tools->child == NULL)
        return 0;
    cJSON *tc = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(tc, "tools");
    int i = 0;
    for (const cJSON *t = tools->child; t != NULL; t = t->next, i++) {
        const cJSON *fn = get(t, "function"), *name = get(fn, "name"), *desc = get(fn, "description");
        const cJSON *params = get(fn, "parameters");
        snprintf(param, sizeof(param), "tools[%d].function.name", i);
        if (!cJSON_IsString(name)) {
            cJSON_Delete(tc);
            BAD(err, param, "%s must be a string", param);
            return -1;
        }
        cJSON *spec = cJSON_CreateObject();
        cJSON_AddStringToObject(spec, "name", name->valuestring);
        if (cJSON_IsString(desc) && desc->valuestring[0] != '\0')
            cJSON_AddStringToObject(spec, "description", desc->valuestring);
        cJSON *schema = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : NULL;
        if (schema == NULL) {
            schema = cJSON_CreateObject();
            cJSON_AddStringToObject(schema, "type", "object");
            cJSON_AddObjectToObject(schema, "properties");
        }
        cJSON_AddItemToObject(cJSON_AddObjectToObject(spec, "inputSchema"), "json", schema);
        cJSON *tool = cJSON_CreateObject();
        cJSON_AddItemToObject(tool, "toolSpec", spec);
        cJSON_AddItemToArray(list, tool);
    }
    if (cJSON_IsString(choice)) {
        if (strcmp(choice->valuestring, "auto") == 0)
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(tc, "toolChoice"), "auto");
        else if (strcmp(choice->valuestring, "required") == 0)
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(tc, "toolChoice"), "any");
        else if (strcmp(choice->valuestring, "none") != 0) {
            cJSON_Delete(tc);
            BAD(err, "tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or a named function");
            return -1;
        }
    } else if (cJSON_IsObject(choice)) {
        const cJSON *name = get(get(choice, "function"), "name");
        if (!cJSON_IsString(name)) {
            cJSON_Delete(tc);
            BAD(err, "tool_choice.function.name", "tool_choice.function.name must be a string");
            return -1;
        }
        cJSON *named = cJSON_AddObjectToObject(cJSON_AddObjectToObject(tc, "toolChoice"), "tool");
        cJSON_AddStringToObject(named, "name", name->valuestring);
    }
    cJSON_AddItemToObject(out, "toolConfig", tc);
    return 0;
}

static int bedrock_chat_request(const gyre_chat_call_t *call, gyre_buf_t *path, gyre_buf_t *body, gyre_api_error_t *err)
{
    cJSON *out = cJSON_CreateObject();
    char *text = NULL;
    int rc = -1;
    if (build_messages(call->req, out, err) != 0 || build_inference_config(call, out, err) != 0 ||
        build_tool_config(call->req, out, err) != 0)
        goto out;
    if ((text = cJSON_PrintUnformatted(out)) == NULL) {
        gyre_api_error_set(err, 500, "server_error", NULL, NULL, "could not write the Bedrock request");
        goto out;
    }
    if (gyre_buf_appends(body, text) != 0) {
        gyre_api_error_set(err, 413, "invalid_request_error", "request_too_large", NULL,
                           "the request for Bedrock is larger than %zu bytes", body->max);
        goto out;
    }
    /* The model id travels as one segment: an ARN's ':' and '/' encoded once here, and once more in SigV4's
     * canonical URI (sigv4.h). */
    const char *model = call->model != NULL ? call->model : "";
    int pr = gyre_buf_appends(path, "/model/");
    if (pr == 0)
        pr = gyre_wire_append_segment(path, model, strlen(model));
    if (pr == 0)
        pr = gyre_buf_appends(path, call->stream ? "/converse-stream" : "/converse");
    if (pr != 0) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                           pr == -EINVAL ? "'model' cannot be sent to provider '%s' as a path segment: it is empty or "
                                           "has a dot-segment ('.' or '..')"
                                         : "'model' is too long for a request path of provider '%s'",
                           call->provider != NULL ? call->provider->name : "bedrock");
        goto out;
    }
    rc = 0;
out:
    cJSON_free(text);
    cJSON_Delete(out);
    return rc;
}

/* --- authentication -------------------------------------------------------- */

/* The signing region: the provider's `region`, else REGION of bedrock-runtime.REGION.amazonaws.com, else us-east-1. */
static void region_of(const gyre_provider_conf_t *p, const char *host, char *out, size_t size)
{
    static const char prefix[] = "bedrock-runtime.";
    if (p != NULL && p->region != NULL && p->region[0] != '\0') {
        snprintf(out, size, "%s", p->region);
        return;
    }
    if (host != NULL) {
        const char *h = strncmp(host, prefix, sizeof(prefix) - 1) == 0 ? host + sizeof(prefix) - 1 : NULL;
        /* bedrock-runtime-fips.REGION... names the region the same way. */
        if (h == NULL && strncmp(host, "bedrock-runtime-fips.", 21) == 0)
            h = host + 21;
        const char *dot = h != NULL ? strchr(h, '.') : NULL;
        if (dot != NULL && dot > h && (size_t)(dot - h) < size && strncmp(dot, ".amazonaws.com", 14) == 0) {
            memcpy(out, h, dot - h);
            out[dot - h] = '\0';
            return;
        }
    }
    snprintf(out, size, "us-east-1");
}

/* Whether the path is a stream's: the accept header differs. */
static int path_is_stream(const char *path)
{
    const char *q = path != NULL ? strchr(path, '?') : NULL;
    size_t len = path == NULL ? 0 : q != NULL ? (size_t)(q - path) : strlen(path);
    static const char tail[] = "/converse-stream";
    return len >= sizeof(tail) - 1 && memcmp(path + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1) == 0;
}

static int bedrock_auth_headers(const gyre_chat_call_t *call, const char *key, const char *host, const char *path,
                                const char *body, size_t body_len, long long now, gyre_buf_t *headers)
{
    size_t start = headers->len;
    int r = 0;
    r |= gyre_buf_appends(headers, "content-type: application/json\r\n");
    r |= gyre_buf_appendf(headers, "accept: %s\r\n",
                          path_is_stream(path) ? "application/vnd.amazon.eventstream" : "application/json");
    if (key != NULL && strpbrk(key, "\r\n") != NULL) {
        r = -EINVAL; /* it would end the header early */
    } else if (key != NULL && strchr(key, ':') != NULL) {
        size_t klen = strlen(key);
        char *scratch = gyre_malloc(klen + 1), region[64];
        gyre_sigv4_creds_t creds;
        r |= gyre_sigv4_parse_key(key, scratch, &creds);
        region_of(call->provider, host, region, sizeof(region));
        if (r == 0)
            r = gyre_sigv4_sign(&creds, region, "bedrock", "POST", host, path, "application/json", body, body_len, now,
                                headers);
        memset(scratch, 0, klen + 1);
        free(scratch);
    } else if (key != NULL) {
        r |= gyre_buf_appendf(headers, "authorization: Bearer %s\r\n", key);
    }
    if (r != 0) {
        headers->len = start;
        if (headers->base != NULL)
            headers->base[start] = '\0';
        return -1;
    }
    return 0;
}

/* --- answers --------------------------------------------------------------- */

/* A token count as an integer; anything odd reads as 0 or is capped. */
static long long count_of(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0))
        return 0;
    if (v->valuedouble > 1e15)
        return 1000000000000000LL;
    return (long long)v->valuedouble;
}

/*
 * Converse's usage → OpenAI's.  inputTokens leaves out the tokens read from
 * and written to the prompt cache, while OpenAI's prompt_tokens counts
 * every prompt token (cached_tokens being a part of it), so they are added.
 */
static int append_usage(gyre_buf_t *out, const cJSON *usage)
{
    long long in = count_of(get(usage, "inputTokens")), outp = count_of(get(usage, "outputTokens"));
    long long read = count_of(get(usage, "cacheReadInputTokens")),
              write = count_of(get(usage, "cacheWriteInputTokens"));
    long long total =
        get(usage, "totalTokens") != NULL ? count_of(get(usage, "totalTokens")) : in + read + write + outp;
    return gyre_buf_appendf(out,
                            "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                            "\"prompt_tokens_details\":{\"cached_tokens\":%lld}}",
                            in + read + write, outp, total, read);
}

/* OpenAI's finish_reason for Converse's stopReason. */
static const char *finish_reason_of(const char *reason)
{
    static const struct {
        const char *from, *to;
    } map[] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"max_tokens", "length"},
        {"model_context_window_exceeded", "length"},
        {"tool_use", "tool_calls"},
        {"guardrail_intervened", "content_filter"},
        {"content_filtered", "content_filter"},
    };
    for (size_t i = 0; reason != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(reason, map[i].from) == 0)
            return map[i].to;
    /* malformed_model_output, malformed_tool_use and reasons yet to come end the turn all the same. */
    return "stop";
}

static int append_str(gyre_buf_t *out, const char *s)
{
    return gyre_buf_append_json_string(out, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* {"id","object","created","model" */
static int append_head(gyre_buf_t *out, const char *object, const char *id, long long created, const char *model)
{
    int r = gyre_buf_appends(out, "{\"id\":");
    r |= append_str(out, id);
    r |= gyre_buf_appendf(out, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, created);
    r |= append_str(out, model);
    return r;
}

/* A toolUse block as an OpenAI tool call; its input as the compact JSON text `arguments` holds. */
static int append_tool_call(gyre_buf_t *out, const cJSON *use)
{
    const cJSON *id = get(use, "toolUseId"), *name = get(use, "name"), *input = get(use, "input");
    char *args = input != NULL ? cJSON_PrintUnformatted(input) : NULL;
    int r = gyre_buf_appends(out, "{\"id\":");
    r |= append_str(out, cJSON_IsString(id) ? id->valuestring : "");
    r |= gyre_buf_appends(out, ",\"type\":\"function\",\"function\":{\"name\":");
    r |= append_str(out, cJSON_IsString(name) ? name->valuestring : "");
    r |= gyre_buf_appends(out, ",\"arguments\":");
    r |= append_str(out, args != NULL ? args : "{}");
    r |= gyre_buf_appends(out, "}}");
    cJSON_free(args);
    return r;
}

static int bedrock_chat_response(const gyre_chat_call_t *call, const char *body, size_t len, gyre_buf_t *out,
                                 gyre_api_error_t *err)
{
    cJSON *answer = cJSON_ParseWithLength(body, len);
    size_t start = out->len;
    int r = 0, rc = -1;
    const cJSON *content = get(get(get(answer, "output"), "message"), "content");
    if (!cJSON_IsObject(answer) || !cJSON_IsArray(content)) {
        gyre_api_error_set(err, 502, "upstream_error", NULL, NULL,
                           "Bedrock's answer is not a Converse response (no output.message.content)");
        goto out;
    }
    gyre_buf_t text;
    gyre_buf_init(&text, out->max);
    size_t ncalls = 0;
    for (const cJSON *b = content->child; b != NULL; b = b->next) {
        const cJSON *t = get(b, "text");
        if (cJSON_IsString(t))
            r |= gyre_buf_appends(&text, t->valuestring);
        if (cJSON_IsObject(get(b, "toolUse")))
            ncalls++;
    }
    r |= append_head(out, "chat.completion", call->id, call->created, call->model);
    r |= gyre_buf_appends(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (text.len > 0 || ncalls == 0)
        r |= gyre_buf_append_json_string(out, text.base != NULL ? text.base : "", text.len);
    else
        r |= gyre_buf_appends(out, "null");
    gyre_buf_dispose(&text);
    if (ncalls > 0) {
        size_t k = 0;
        r |= gyre_buf_appends(out, ",\"tool_calls\":[");
        for (const cJSON *b = content->child; b != NULL; b = b->next) {
            if (!cJSON_IsObject(get(b, "toolUse")))
                continue;
            if (k++ > 0)
                r |= gyre_buf_appends(out, ",");
            r |= append_tool_call(out, get(b, "toolUse"));
        }
        r |= gyre_buf_appends(out, "]");
    }
    const cJSON *reason = get(answer, "stopReason");
    r |= gyre_buf_appendf(out, "},\"finish_reason\":\"%s\"}]",
                          finish_reason_of(cJSON_IsString(reason) ? reason->valuestring : NULL));
    if (cJSON_IsObject(get(answer, "usage"))) {
        r |= gyre_buf_appends(out, ",\"usage\":");
        r |= append_usage(out, get(answer, "usage"));
    }
    r |= gyre_buf_appends(out, "}");
    if (r != 0) {
        gyre_api_error_set(err, 502, "upstream_error", NULL, NULL, "Bedrock's answer is larger than %zu bytes",
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

/* AWS's error bodies say {"message":...}; some services and proxies capitalise it. */
static void bedrock_error_message(const char *body, size_t len, gyre_buf_t *out)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *m = get(j, "message");
    if (!cJSON_IsString(m))
        m = get(j, "Message");
    if (cJSON_IsString(m))
        gyre_buf_append_upto(out, m->valuestring, strlen(m->valuestring)); /* cut to what out holds */
    else
        gyre_buf_append_upto(out, body, len);
    cJSON_Delete(j);
}

/* --- streams --------------------------------------------------------------- */

typedef struct bedrock_stream {
    gyre_dialect_stream_t super;
    gyre_eventstream_decoder_t decoder;
    char *id, *model; /* owned copies */
    long long created;
    int started;  /* START was sent */
    int finished; /* FINISH was sent */
    /* contentBlockIndex of each tool-use block, in order: a block's place here is its OpenAI tool-call index. */
    long long *tool_blocks;
    size_t ntools;
    const gyre_event_sink_t *sink; /* while feeding */
    gyre_api_error_t error; /* why the stream failed: every feed after the first failure reports it again */
} bedrock_stream_t;

/* Fills the stream's error; -EPROTO tells the feed that the error is already said. */
static int fail(bedrock_stream_t *s, const char *message)
{
    gyre_api_error_set(&s->error, 502, "upstream_error", NULL, NULL, "%s", message);
    return -EPROTO;
}

/* Sends one event: 0, or -ENOSPC when its consumer cannot take it. */
static int emit(bedrock_stream_t *s, const gyre_event_t *ev)
{
    return s->sink->emit(s->sink->ctx, ev) != 0 ? -ENOSPC : 0;
}

static gyre_str_t str_of(const cJSON *v)
{
    return cJSON_IsString(v) ? (gyre_str_t){v->valuestring, strlen(v->valuestring)} : (gyre_str_t){"", 0};
}

static int event_start(bedrock_stream_t *s)
{
    if (s->started)
        return 0;
    s->started = 1;
    gyre_event_t ev = {.type = GYRE_EVENT_START,
                       .id = {s->id, strlen(s->id)},
                       .model = {s->model, strlen(s->model)},
                       .created = s->created};
    return emit(s, &ev);
}

static long long tool_index_of(const bedrock_stream_t *s, long long block)
{
    for (size_t i = s->ntools; i > 0; i--)
        if (s->tool_blocks[i - 1] == block)
            return (long long)(i - 1);
    return -1;
}

static long long block_index(const cJSON *ev)
{
    const cJSON *i = get(ev, "contentBlockIndex");
    return cJSON_IsNumber(i) ? (long long)i->valuedouble : 0;
}

static int on_block_start(bedrock_stream_t *s, const cJSON *ev)
{
    const cJSON *use = get(get(ev, "start"), "toolUse");
    if (!cJSON_IsObject(use))
        return 0;
    if (s->ntools == BEDROCK_MAX_TOOL_BLOCKS)
        return fail(s, "Bedrock's answer opened more tool calls than gyre follows (1024)");
    s->tool_blocks = gyre_realloc(s->tool_blocks, (s->ntools + 1) * sizeof(s->tool_blocks[0]));
    s->tool_blocks[s->ntools] = block_index(ev);
    int r = event_start(s);
    if (r != 0)
        return r;
    gyre_event_t tool = {.type = GYRE_EVENT_TOOL_START,
                         .index = (int)s->ntools++,
                         .id = str_of(get(use, "toolUseId")),
                         .name = str_of(get(use, "name")),
                         .text = {"", 0}};
    return emit(s, &tool);
}

static int on_block_delta(bedrock_stream_t *s, const cJSON *ev)
{
    const cJSON *delta = get(ev, "delta"), *text = get(delta, "text");
    const cJSON *input = get(get(delta, "toolUse"), "input");
    if (cJSON_IsString(text) && text->valuestring[0] != '\0') {
        int r = event_start(s);
        gyre_event_t t = {.type = GYRE_EVENT_TEXT, .text = str_of(text)};
        return r != 0 ? r : emit(s, &t);
    }
    if (cJSON_IsString(input) && input->valuestring[0] != '\0') {
        long long k = tool_index_of(s, block_index(ev));
        if (k < 0)
            return fail(s, "Bedrock sent tool input for a content block that is not a tool call");
        gyre_event_t args = {.type = GYRE_EVENT_TOOL_ARGS, .index = (int)k, .text = str_of(input)};
        return emit(s, &args);
    }
    /* reasoningContent and citation deltas have no place in a chat answer. */
    return 0;
}

static int on_message_stop(bedrock_stream_t *s, const cJSON *ev)
{
    if (s->finished)
        return 0;
    s->finished = 1;
    const cJSON *reason = get(ev, "stopReason");
    int r = event_start(s);
    gyre_event_t fin = {.type = GYRE_EVENT_FINISH,
                        .finish_reason = finish_reason_of(cJSON_IsString(reason) ? reason->valuestring : NULL)};
    return r != 0 ? r : emit(s, &fin);
}

/*
 * Converse's usage → the event's.  inputTokens leaves out the tokens read
 * from and written to the prompt cache, while OpenAI's prompt_tokens counts
 * every prompt token (cached_tokens being a part of it), so they are added.
 */
static int on_metadata(bedrock_stream_t *s, const cJSON *ev)
{
    const cJSON *usage = get(ev, "usage");
    long long in = count_of(get(usage, "inputTokens")), outp = count_of(get(usage, "outputTokens"));
    long long read = count_of(get(usage, "cacheReadInputTokens")),
              write = count_of(get(usage, "cacheWriteInputTokens"));
    long long total =
        get(usage, "totalTokens") != NULL ? count_of(get(usage, "totalTokens")) : in + read + write + outp;
    gyre_event_t u = {.type = GYRE_EVENT_USAGE,
                      .usage = {.input_tokens = in + read + write,
                                .output_tokens = outp,
                                .total_tokens = total,
                                .cached_tokens = read,
                                .cache_write_tokens = write,
                                .details = GYRE_USAGE_CACHED}};
    gyre_event_t done = {.type = GYRE_EVENT_DONE};
    int r = emit(s, &u);
    if (r == 0)
        r = emit(s, &done);
    s->super.complete = 1;
    return r;
}

/* An exception event's status, as the Converse API gives it to each exception. */
static int exception_status(const char *type, size_t len)
{
    static const struct {
        const char *name;
        int status;
    } map[] = {
        {"throttlingException", 429},     {"serviceUnavailableException", 503}, {"modelStreamErrorException", 500},
        {"internalServerException", 500}, {"validationException", 400},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (len == strlen(map[i].name) && memcmp(type, map[i].name, len) == 0)
            return map[i].status;
    return 502;
}

static int on_exception(bedrock_stream_t *s, const gyre_eventstream_msg_t *m)
{
    const char *type = m->exception_type.p != NULL ? m->exception_type.p : "";
    size_t tlen = m->exception_type.p != NULL ? m->exception_type.len : 0;
    cJSON *j = cJSON_ParseWithLength((const char *)m->payload, m->payload_len);
    const cJSON *msg = get(j, "message");
    if (!cJSON_IsString(msg))
        msg = get(j, "Message");
    gyre_api_error_set(&s->error, exception_status(type, tlen), "upstream_error", NULL, NULL, "Bedrock: %.*s: %s",
                       (int)(tlen < 64 ? tlen : 64), type, cJSON_IsString(msg) ? msg->valuestring : "no message");
    cJSON_Delete(j);
    return -EPROTO;
}

static int on_message(void *ctx, const gyre_eventstream_msg_t *m)
{
    bedrock_stream_t *s = ctx;
    /* After the stream's end (metadata) nothing more is the client's: a second metadata event would add a
     * second [DONE]. */
    if (s->super.complete)
        return 0;
    if (m->message_type.p != NULL && m->message_type.len == 9 && memcmp(m->message_type.p, "exception", 9) == 0)
        return on_exception(s, m);
    if (m->message_type.p != NULL && m->message_type.len == 5 && memcmp(m->message_type.p, "error", 5) == 0) {
        gyre_api_error_set(&s->error, 502, "upstream_error", NULL, NULL, "Bedrock: %.*s: %.*s",
                           (int)(m->error_code.len < 64 ? m->error_code.len : 64),
                           m->error_code.p != NULL ? m->error_code.p : "",
                           (int)(m->error_message.len < 512 ? m->error_message.len : 512),
                           m->error_message.p != NULL ? m->error_message.p : "");
        return -EPROTO;
    }
    if (m->event_type.p == NULL)
        return 0;
    static const char *const names[] = {"messageStart", "contentBlockStart", "contentBlockDelta", "messageStop",
                                        "metadata"};
    size_t which = sizeof(names) / sizeof(names[0]);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (m->event_type.len == strlen(names[i]) && memcmp(m->event_type.p, names[i], m->event_type.len) == 0)
            which = i;
    if (which == sizeof(names) / sizeof(names[0]))
        return 0; /* contentBlockStop, and events yet to come */
    /* The event's values live in the per-thread JSON arena until its last emit returns. */
    int scope = gyre_json_arena_enter();
    cJSON *ev = cJSON_ParseWithLength((const char *)m->payload, m->payload_len);
    int r;
    if (!cJSON_IsObject(ev)) {
        gyre_api_error_set(&s->error, 502, "upstream_error", NULL, NULL,
                           "Bedrock sent a %s event whose payload is not a JSON object", names[which]);
        r = -EPROTO;
    } else {
        switch (which) {
        case 0: r = event_start(s); break;
        case 1: r = on_block_start(s, ev); break;
        case 2: r = on_block_delta(s, ev); break;
        case 3: r = on_message_stop(s, ev); break;
        default: r = on_metadata(s, ev); break;
        }
        if (r != 0 && r != -EPROTO)
            r = fail(s, "the translated Bedrock stream does not fit the output buffer");
    }
    cJSON_Delete(ev);
    if (scope)
        gyre_json_arena_end();
    return r;
}

static gyre_dialect_stream_t *bedrock_stream_create(const gyre_chat_call_t *call)
{
    bedrock_stream_t *s = gyre_calloc(1, sizeof(*s));
    gyre_eventstream_init(&s->decoder, BEDROCK_EVENT_MAX);
    s->id = gyre_strdup(call->id != NULL ? call->id : "");
    s->model = gyre_strdup(call->model != NULL ? call->model : "");
    s->created = call->created;
    return &s->super;
}

static int bedrock_stream_feed(gyre_dialect_stream_t *super, const char *bytes, size_t len,
                               const gyre_event_sink_t *sink, gyre_api_error_t *err)
{
    bedrock_stream_t *s = (bedrock_stream_t *)super;
    s->sink = sink;
    int r = gyre_eventstream_feed(&s->decoder, bytes, len, on_message, s);
    s->sink = NULL;
    if (r == 0)
        return 0;
    if (r == -EBADMSG)
        gyre_api_error_set(&s->error, 502, "upstream_error", NULL, NULL,
                           "Bedrock's event stream is corrupt (a CRC or a length does not match)");
    else if (r == -E2BIG)
        gyre_api_error_set(&s->error, 502, "upstream_error", NULL, NULL, "Bedrock sent an event larger than %zu bytes",
                           BEDROCK_EVENT_MAX);
    /* -EPROTO: a callback said why. */
    *err = s->error;
    return -1;
}

static void bedrock_stream_destroy(gyre_dialect_stream_t *super)
{
    bedrock_stream_t *s = (bedrock_stream_t *)super;
    if (s == NULL)
        return;
    gyre_eventstream_dispose(&s->decoder);
    free(s->tool_blocks);
    free(s->id);
    free(s->model);
    free(s);
}

const gyre_dialect_t gyre_dialect_bedrock = {
    .kind = "bedrock",
    .chat_request = bedrock_chat_request,
    .auth_headers = bedrock_auth_headers,
    .chat_response = bedrock_chat_response,
    .error_message = bedrock_error_message,
    .stream_create = bedrock_stream_create,
    .stream_feed = bedrock_stream_feed,
    .stream_destroy = bedrock_stream_destroy,
};
