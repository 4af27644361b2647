/* OpenAI request parsing, checking and error shapes (see openai.h). */
#include "dialect/openai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

void gyre_api_error_set(gyre_api_error_t *err, int status, const char *type, const char *code, const char *param,
                        const char *fmt, ...)
{
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof(err->param), "%s", param != NULL ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

int gyre_api_error_to_json(const gyre_api_error_t *err, gyre_buf_t *out)
{
    int r = 0;
    r |= gyre_buf_appends(out, "{\"error\":{\"message\":");
    r |= gyre_buf_append_json_string(out, err->message, strlen(err->message));
    r |= gyre_buf_appends(out, ",\"type\":");
    r |= gyre_buf_append_json_string(out, err->type, strlen(err->type));
    r |= gyre_buf_appends(out, ",\"param\":");
    if (err->param[0] != '\0')
        r |= gyre_buf_append_json_string(out, err->param, strlen(err->param));
    else
        r |= gyre_buf_appends(out, "null");
    r |= gyre_buf_appends(out, ",\"code\":");
    if (err->code != NULL)
        r |= gyre_buf_append_json_string(out, err->code, strlen(err->code));
    else
        r |= gyre_buf_appends(out, "null");
    r |= gyre_buf_appends(out, "}}");
    return r;
}

#define BAD(err, param, ...)                                                                                           \
    gyre_api_error_set((err), 400, "invalid_request_error", "invalid_type", (param), __VA_ARGS__)


/* A whole number that fits in 64 bits.  The range is checked before the cast:
 * converting a double outside long long's range (1e300) is undefined. */
static int is_integer(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(long long)d;
}

/* Optional top-level fields whose type gyre checks before any upstream sees them. */
typedef enum {
    T_NUMBER,
    T_INTEGER,
    T_BOOL,
    T_STRING,
    T_ARRAY,
    T_OBJECT,
    T_STRING_OR_ARRAY,
    T_STRING_OR_OBJECT
} ftype_t;

static const struct {
    const char *name;
    ftype_t type;
} chat_fields[] = {
    {"temperature", T_NUMBER},
    {"top_p", T_NUMBER},
    {"n", T_INTEGER},
    {"max_tokens", T_INTEGER},
    {"max_completion_tokens", T_INTEGER},
    {"presence_penalty", T_NUMBER},
    {"frequency_penalty", T_NUMBER},
    {"seed", T_INTEGER},
    {"stream", T_BOOL},
    {"stream_options", T_OBJECT},
    {"logprobs", T_BOOL},
    {"top_logprobs", T_INTEGER},
    {"parallel_tool_calls", T_BOOL},
    {"user", T_STRING},
    {"stop", T_STRING_OR_ARRAY},
    {"tools", T_ARRAY},
    {"tool_choice", T_STRING_OR_OBJECT},
    {"response_format", T_OBJECT},
    {"metadata", T_OBJECT},
    {"logit_bias", T_OBJECT},
};

static const char *ftype_name(ftype_t t)
{
    switch (t) {
    case T_NUMBER: return "a number";
    case T_INTEGER: return "an integer";
    case T_BOOL: return "a boolean";
    case T_STRING: return "a string";
    case T_ARRAY: return "an array";
    case T_OBJECT: return "an object";
    case T_STRING_OR_ARRAY: return "a string or an array";
    case T_STRING_OR_OBJECT: return "a string or an object";
    }
    return "?";
}

static int type_ok(const cJSON *v, ftype_t t)
{
    if (cJSON_IsNull(v))
        return 1; /* OpenAI treats null as "not given" for optional fields */
    switch (t) {
    case T_NUMBER: return cJSON_IsNumber(v);
    case T_INTEGER: return is_integer(v);
    case T_BOOL: return cJSON_IsBool(v);
    case T_STRING: return cJSON_IsString(v);
    case T_ARRAY: return cJSON_IsArray(v);
    case T_OBJECT: return cJSON_IsObject(v);
    case T_STRING_OR_ARRAY: return cJSON_IsString(v) || cJSON_IsArray(v);
    case T_STRING_OR_OBJECT: return cJSON_IsString(v) || cJSON_IsObject(v);
    }
    return 0;
}

static int check_messages(const cJSON *messages, gyre_api_error_t *err)
{
    char param[64];
    if (messages == NULL) {
        gyre_api_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "messages",
                           "missing required parameter 'messages'");
        return -1;
    }
    if (!cJSON_IsArray(messages)) {
        BAD(err, "messages", "'messages' must be an array, got %s", gyre_json_type_name(messages));
        return -1;
    }
    if (cJSON_GetArraySize(messages) == 0) {
        gyre_api_error_set(err, 400, "invalid_request_error", "empty_array", "messages",
                           "'messages' must contain at least one message");
        return -1;
    }
    int i = 0;
    for (const cJSON *m = messages->child; m != NULL; m = m->next, i++) {
        if (!cJSON_IsObject(m)) {
            snprintf(param, sizeof(param), "messages[%d]", i);
            BAD(err, param, "'%s' must be an object, got %s", param, gyre_json_type_name(m));
            return -1;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (role == NULL) {
            snprintf(param, sizeof(param), "messages[%d].role", i);
            gyre_api_error_set(err, 400, "invalid_request_error", "missing_required_parameter", param,
                               "missing required parameter '%s'", param);
            return -1;
        }
        if (!cJSON_IsString(role)) {
            snprintf(param, sizeof(param), "messages[%d].role", i);
            BAD(err, param, "'%s' must be a string, got %s", param, gyre_json_type_name(role));
            return -1;
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (content != NULL && !cJSON_IsString(content) && !cJSON_IsArray(content) && !cJSON_IsNull(content)) {
            snprintf(param, sizeof(param), "messages[%d].content", i);
            BAD(err, param, "'%s' must be a string, an array of content parts or null, got %s", param,
                gyre_json_type_name(content));
            return -1;
        }
    }
    return 0;
}

static int check_embeddings(const cJSON *json, gyre_api_error_t *err)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(json, "input");
    if (input == NULL) {
        gyre_api_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "input",
                           "missing required parameter 'input'");
        return -1;
    }
    if (!cJSON_IsString(input) && !cJSON_IsArray(input)) {
        BAD(err, "input", "'input' must be a string or an array, got %s", gyre_json_type_name(input));
        return -1;
    }
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(json, "dimensions");
    if (dims != NULL && !is_integer(dims)) {
        BAD(err, "dimensions", "'dimensions' must be an integer, got %s", gyre_json_type_name(dims));
        return -1;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(json, "encoding_format");
    if (fmt != NULL && !cJSON_IsString(fmt)) {
        BAD(err, "encoding_format", "'encoding_format' must be a string, got %s", gyre_json_type_name(fmt));
        return -1;
    }
    return 0;
}

int gyre_openai_parse_request(gyre_openai_endpoint_t ep, const char *body, size_t len, gyre_openai_request_t *out,
                              gyre_api_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *end = NULL;
    out->json = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (out->json == NULL) {
        if (ep == GYRE_OPENAI_OTHER)
            return 0; /* multipart uploads and the like pass through untouched */
        size_t off = end != NULL && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        unsigned line, col;
        gyre_json_position(body, len, off, &line, &col);
        if (len == 0)
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                               "the request body is empty; expected a JSON object");
        else
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                               "the request body is not valid JSON: parsing stopped at line %u, column %u (byte %zu)",
                               line, col, off);
        return -1;
    }
    /* Anything after the value other than whitespace is an error too. */
    if (end != NULL && ep != GYRE_OPENAI_OTHER) {
        size_t off = (size_t)(end - body);
        while (off < len && (body[off] == ' ' || body[off] == '\n' || body[off] == '\r' || body[off] == '\t'))
            off++;
        if (off < len) {
            unsigned line, col;
            gyre_json_position(body, len, off, &line, &col);
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                               "the request body is not valid JSON: unexpected data after the value at line %u, "
                               "column %u (byte %zu)",
                               line, col, off);
            goto fail;
        }
    }
    if (!cJSON_IsObject(out->json)) {
        if (ep == GYRE_OPENAI_OTHER) {
            cJSON_Delete(out->json);
            out->json = NULL;
            return 0;
        }
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                           "the request body must be a JSON object, got %s", gyre_json_type_name(out->json));
        goto fail;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(out->json, "model");
    /* gyre routes on the first "model" and rewrites one member, but most
     * providers' parsers keep the last: a second one (perhaps spelled with
     * escapes) would run a model gyre never resolved. */
    for (const cJSON *v = model != NULL ? model->next : NULL; v != NULL; v = v->next) {
        if (strcmp(v->string, "model") == 0) {
            gyre_api_error_set(err, 400, "invalid_request_error", "duplicate_parameter", "model",
                               "'model' must appear only once in the request body");
            goto fail;
        }
    }
    if (model == NULL || cJSON_IsNull(model)) {
        if (ep == GYRE_OPENAI_OTHER)
            return 0;
        gyre_api_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "model",
                           "missing required parameter 'model'");
        goto fail;
    }
    if (!cJSON_IsString(model)) {
        BAD(err, "model", "'model' must be a string, got %s", gyre_json_type_name(model));
        goto fail;
    }
    if (model->valuestring[0] == '\0') {
        gyre_api_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "model",
                           "'model' must not be empty");
        goto fail;
    }
    out->model = model->valuestring;
    if (gyre_json_find_member(body, len, "model", &out->model_start, &out->model_end) != 0)
        out->model_start = out->model_end = 0;

    if (ep == GYRE_OPENAI_CHAT) {
        if (check_messages(cJSON_GetObjectItemCaseSensitive(out->json, "messages"), err) != 0)
            goto fail;
        /* One pass over the members, each looked up in the table (rather
         * than one search of the object per known field). */
        for (const cJSON *v = out->json->child; v != NULL; v = v->next) {
            for (size_t i = 0; i < sizeof(chat_fields) / sizeof(chat_fields[0]); i++) {
                if (v->string[0] != chat_fields[i].name[0] || strcmp(v->string, chat_fields[i].name) != 0)
                    continue;
                if (!type_ok(v, chat_fields[i].type)) {
                    BAD(err, chat_fields[i].name, "'%s' must be %s, got %s", chat_fields[i].name,
                        ftype_name(chat_fields[i].type), gyre_json_type_name(v));
                    goto fail;
                }
                break;
            }
        }
        out->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out->json, "stream"));
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(out->json, "stream_options");
        if (cJSON_IsObject(so)) {
            out->has_stream_options = 1;
            const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
            if (iu != NULL && !cJSON_IsBool(iu) && !cJSON_IsNull(iu)) {
                BAD(err, "stream_options.include_usage", "'stream_options.include_usage' must be a boolean, got %s",
                    gyre_json_type_name(iu));
                goto fail;
            }
            out->include_usage = cJSON_IsTrue(iu);
        }
    } else if (ep == GYRE_OPENAI_EMBEDDINGS) {
        if (check_embeddings(out->json, err) != 0)
            goto fail;
    }
    return 0;
fail:
    gyre_openai_request_dispose(out);
    return -1;
}

void gyre_openai_request_dispose(gyre_openai_request_t *r)
{
    cJSON_Delete(r->json);
    r->json = NULL;
    r->model = NULL;
}

int gyre_openai_rewrite_model(const gyre_openai_request_t *r, const char *body, size_t len, const char *model,
                              size_t model_len, gyre_buf_t *out)
{
    int ret = 0;
    if (r->model_end != 0) {
        ret |= gyre_buf_append(out, body, r->model_start);
        ret |= gyre_buf_append_json_string(out, model, model_len);
        ret |= gyre_buf_append(out, body + r->model_end, len - r->model_end);
        return ret;
    }
    /* The member was spelled with escapes: let cJSON write the whole body. */
    cJSON *copy = cJSON_Duplicate(r->json, 1);
    char *m = strndup(model, model_len);
    cJSON_ReplaceItemInObjectCaseSensitive(copy, "model", cJSON_CreateString(m));
    char *text = cJSON_PrintUnformatted(copy);
    ret = gyre_buf_appends(out, text);
    cJSON_free(text); /* cJSON's allocator, which may be gyre's arena */
    free(m);
    cJSON_Delete(copy);
    return ret;
}
