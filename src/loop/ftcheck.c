/*
 * The fine-tuning format validator (ftcheck.h).  The rules, and where each
 * comes from:
 *
 * OpenAI's supervised fine-tuning guide (developers.openai.com/docs/guides/
 * supervised-fine-tuning, "Build your dataset") and the OpenAI Cookbook's
 * "Data preparation and analysis for chat model fine-tuning"
 * (cookbook.openai.com/examples/chat_finetuning_data_prep, its format checks
 * data_type, missing_messages_list, message_missing_key,
 * message_unrecognized_key, unrecognized_role, missing_content,
 * example_missing_assistant_message):
 *   - each line is one JSON object; `messages` is a non-empty array;
 *   - a message's role is system, user, assistant or tool (the legacy
 *     `function` role and `function_call` are refused: they were replaced by
 *     tools and tool_calls, and the chat format's tool examples use those);
 *   - a message has no keys but role, content, name, tool_calls,
 *     tool_call_id and weight;
 *   - system, user and tool messages have content (a string, or an array of
 *     content parts: text, and for user image_url); an assistant message has
 *     content or tool_calls;
 *   - each example has an assistant message to learn from (`weight` 0 or 1,
 *     only on assistant messages: 0 leaves that message out of training, so
 *     an example whose every assistant message has weight 0 teaches nothing);
 *   - tool_calls: {id, type: "function", function: {name, arguments}}, the
 *     arguments a string holding JSON (the chat completions API's shape); a
 *     tool message's tool_call_id answers a call made earlier in the example;
 *   - `tools` is an array of {type: "function", function: {name,
 *     description, parameters}}, names of 1-64 letters, digits, '_' or '-'
 *     (the function-calling guide's rule); `parallel_tool_calls` a boolean;
 *   - at least 10 examples in a file (the guide: "The minimum number of
 *     examples you can provide for fine-tuning is 10").
 * The token limit: an example longer than the model's training context is
 * truncated or refused; gpt-4o-mini-2024-07-18 and gpt-4o-2024-08-06 train on
 * examples of up to 65,536 tokens (the fine-tuning models table, "Training
 * example context length: 65,536"), the default here.  Tokens are estimated
 * without a tokenizer, as the Cookbook's rule of thumb has it (about 4
 * characters of English per token): the bytes of every string the model
 * reads (contents, names, tool calls' names and arguments, the tools' JSON)
 * divided by 4 and rounded up, plus the Cookbook's num_tokens_from_messages
 * framing (3 per message, 3 for the reply).  For English that is within
 * about 10% of cl100k/o200k counts; for other scripts it undercounts, which
 * is why the bound is a warning of scale, not an exact tokenizer.
 *
 * OpenAI's preference (DPO) guide (developers.openai.com/api/docs/guides/
 * direct-preference-optimization, "Data format"):
 *   - each line {"input": {"messages": [...], "tools": [...],
 *     "parallel_tool_calls": bool}, "preferred_output": [assistant message],
 *     "non_preferred_output": [assistant message]};
 *   - "DPO is currently only supported for text inputs and outputs": each
 *     output is exactly one assistant message with text content and no tool
 *     calls; the input's messages follow the chat rules, but need no
 *     assistant message (the outputs are what is learned);
 *   - the two outputs differ (a pair of equal outputs has no preference).
 */
#include "loop/ftcheck.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* The report's bound: GYRE_FTCHECK_REPORT_MAX errors of at most about 300 bytes. */
#define REPORT_BYTES ((size_t)GYRE_FTCHECK_REPORT_MAX * 320)
/* The tool calls one example may make that are remembered for matching tool messages (more are an error). */
#define CALLS_MAX 1024

typedef struct line_ctx {
    gyre_ftcheck_t *c;
    size_t lineno;
    int errors;
    size_t text;     /* bytes of text the model reads */
    size_t messages; /* messages counted in the estimate */
    /* The ids of the tool calls made so far in this example, and whether each was answered. */
    const char *calls[CALLS_MAX];
    char answered[CALLS_MAX];
    size_t ncalls;
    int calls_over; /* more calls than CALLS_MAX were made (reported once) */
} line_ctx_t;

static void fail(line_ctx_t *l, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(line_ctx_t *l, const char *field, const char *fmt, ...)
{
    l->errors++;
    l->c->errors++;
    if (l->c->errors > GYRE_FTCHECK_REPORT_MAX)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char line[512];
    snprintf(line, sizeof(line), "%zu: %s%s%s", l->lineno, field, field[0] ? ": " : "", msg);
    /* Field names and values come from the file: a control byte in one (a decoded "\n" in a key) is shown as
     * '?', so that each error stays one line of the report and cannot drive a terminal. */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    gyre_buf_appendf(&l->c->report, "%s\n", line);
}

void gyre_ftcheck_init(gyre_ftcheck_t *c, gyre_ft_format_t format, size_t max_tokens, size_t min_examples)
{
    memset(c, 0, sizeof(*c));
    c->format = format;
    c->max_tokens = max_tokens ? max_tokens : GYRE_FTCHECK_MAX_TOKENS;
    c->min_examples = min_examples ? min_examples : GYRE_FTCHECK_MIN_EXAMPLES;
    gyre_buf_init(&c->report, REPORT_BYTES);
}

void gyre_ftcheck_dispose(gyre_ftcheck_t *c)
{
    gyre_buf_dispose(&c->report);
}

size_t gyre_ftcheck_estimate_tokens(size_t text_bytes, size_t messages)
{
    return (text_bytes + 3) / 4 + 3 * messages + 3;
}

static const char *type_name(const cJSON *v)
{
    if (v == NULL)
        return "missing";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    return "an object";
}

/* Whether the content is usable text: a non-empty string, or parts of which at least one is text (or, for a
 * user, an image); each part is checked.  Adds the text's bytes. */
static int check_content(line_ctx_t *l, const cJSON *content, const char *field, int images)
{
    if (cJSON_IsString(content)) {
        l->text += strlen(content->valuestring);
        return 1;
    }
    if (!cJSON_IsArray(content)) {
        fail(l, field, "must be a string or an array of content parts, not %s", type_name(content));
        return 0;
    }
    int i = 0, ok = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        char f[256];
        snprintf(f, sizeof(f), "%.120s[%d]", field, i++);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        if (!cJSON_IsString(type)) {
            fail(l, f, "a content part needs a type (text%s)", images ? " or image_url" : "");
        } else if (strcmp(type->valuestring, "text") == 0) {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(text)) {
                fail(l, f, "a text part's text must be a string, not %s", type_name(text));
            } else {
                l->text += strlen(text->valuestring);
                ok = 1;
            }
        } else if (images && strcmp(type->valuestring, "image_url") == 0) {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(part, "image_url");
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(u, "url")))
                fail(l, f, "an image_url part needs image_url.url, a string");
            else
                ok = 1;
        } else {
            fail(l, f, "content part type '%.40s' is not one of text%s", type->valuestring,
                 images ? ", image_url" : "");
        }
    }
    if (i == 0)
        fail(l, field, "is an empty array");
    return ok;
}

static void check_tool_call(line_ctx_t *l, const cJSON *tc, const char *field)
{
    if (!cJSON_IsObject(tc)) {
        fail(l, field, "a tool call must be an object, not %s", type_name(tc));
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    char f[256];
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0') {
        snprintf(f, sizeof(f), "%.120s.id", field);
        fail(l, f, "a tool call needs an id, a non-empty string (tool messages answer it by tool_call_id)");
    } else if (l->ncalls < CALLS_MAX) {
        /* An id may come back once its call was answered (some clients number calls per turn), never while
         * that call waits: a tool message could not say which it answers. */
        for (size_t k = 0; k < l->ncalls; k++)
            if (!l->answered[k] && strcmp(l->calls[k], id->valuestring) == 0) {
                snprintf(f, sizeof(f), "%.120s.id", field);
                fail(l, f, "'%.64s' is the id of an earlier tool call not answered yet", id->valuestring);
            }
        l->answered[l->ncalls] = 0;
        l->calls[l->ncalls++] = id->valuestring;
    } else if (!l->calls_over) {
        l->calls_over = 1;
        snprintf(f, sizeof(f), "%.120s.id", field);
        fail(l, f, "more than %d tool calls in one example: the rest are not matched to their answers", CALLS_MAX);
    }
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0) {
        snprintf(f, sizeof(f), "%.120s.type", field);
        fail(l, f, "must be \"function\"");
    }
    if (!cJSON_IsObject(fn)) {
        snprintf(f, sizeof(f), "%.120s.function", field);
        fail(l, f, "must be an object with name and arguments, not %s", type_name(fn));
        return;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
        snprintf(f, sizeof(f), "%.120s.function.name", field);
        fail(l, f, "must be a non-empty string");
    } else {
        l->text += strlen(name->valuestring);
    }
    snprintf(f, sizeof(f), "%.120s.function.arguments", field);
    if (!cJSON_IsString(args)) {
        fail(l, f, "must be a string holding JSON, not %s", type_name(args));
    } else {
        cJSON *parsed = cJSON_Parse(args->valuestring);
        if (parsed == NULL)
            fail(l, f, "is not valid JSON");
        cJSON_Delete(parsed);
        l->text += strlen(args->valuestring);
    }
}

/* A message of the chat format; returns 1 when it is an assistant message that trains (weight absent or 1). */
static int check_message(line_ctx_t *l, const cJSON *m, const char *field)
{
    char f[256];
    if (!cJSON_IsObject(m)) {
        fail(l, field, "a message must be an object, not %s", type_name(m));
        return 0;
    }
    l->messages++;
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(f, sizeof(f), "%.120s.role", field);
    if (!cJSON_IsString(role)) {
        fail(l, f, "is %s; a message needs a role (system, user, assistant, tool)", type_name(role));
        return 0;
    }
    const char *r = role->valuestring;
    int system = strcmp(r, "system") == 0, user = strcmp(r, "user") == 0, assistant = strcmp(r, "assistant") == 0,
        tool = strcmp(r, "tool") == 0;
    if (strcmp(r, "function") == 0) {
        fail(l, f, "the legacy 'function' role is not taken; write the call as tool_calls and the result as a "
                   "'tool' message");
        return 0;
    }
    if (!system && !user && !assistant && !tool) {
        fail(l, f, "'%.40s' is not a role of the chat format (system, user, assistant, tool)", r);
        return 0;
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, m)
    {
        static const char *const known[] = {"role", "content", "name", "tool_calls", "tool_call_id", "weight"};
        int ok = 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= strcmp(k->string, known[i]) == 0;
        if (!ok) {
            snprintf(f, sizeof(f), "%.120s.%.40s", field, k->string);
            fail(l, f, strcmp(k->string, "function_call") == 0 ? "the legacy function_call is not taken; use tool_calls"
                                                                : "is not a field of a message (role, content, name, "
                                                                  "tool_calls, tool_call_id, weight)");
        }
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *weight = cJSON_GetObjectItemCaseSensitive(m, "weight");
    if (name != NULL) {
        snprintf(f, sizeof(f), "%.120s.name", field);
        if (!cJSON_IsString(name))
            fail(l, f, "must be a string, not %s", type_name(name));
        else
            l->text += strlen(name->valuestring);
    }
    int trains = 0;
    if (weight != NULL) {
        snprintf(f, sizeof(f), "%.120s.weight", field);
        if (!assistant)
            fail(l, f, "only assistant messages have a weight");
        else if (!cJSON_IsNumber(weight) || (weight->valuedouble != 0 && weight->valuedouble != 1))
            fail(l, f, "must be 0 or 1");
    }
    snprintf(f, sizeof(f), "%.120s.content", field);
    if (assistant) {
        int has_calls = 0;
        if (tcs != NULL) {
            char tf[256];
            snprintf(tf, sizeof(tf), "%.120s.tool_calls", field);
            if (!cJSON_IsArray(tcs) || cJSON_GetArraySize(tcs) == 0) {
                fail(l, tf, "must be a non-empty array of tool calls");
            } else {
                int i = 0;
                const cJSON *tc;
                cJSON_ArrayForEach(tc, tcs)
                {
                    char cf[256];
                    snprintf(cf, sizeof(cf), "%.120s[%d]", tf, i++);
                    check_tool_call(l, tc, cf);
                }
                has_calls = 1;
            }
        }
        if (content != NULL && !cJSON_IsNull(content))
            check_content(l, content, f, 0);
        else if (!has_calls)
            fail(l, f, "an assistant message needs content or tool_calls");
        trains = weight == NULL || (cJSON_IsNumber(weight) && weight->valuedouble == 1);
    } else {
        if (content == NULL || cJSON_IsNull(content))
            fail(l, f, "a %s message needs content", r);
        else
            check_content(l, content, f, user);
        if (tcs != NULL) {
            snprintf(f, sizeof(f), "%.120s.tool_calls", field);
            fail(l, f, "only assistant messages make tool calls");
        }
    }
    const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
    snprintf(f, sizeof(f), "%.120s.tool_call_id", field);
    if (tool) {
        if (!cJSON_IsString(tcid) || tcid->valuestring[0] == '\0') {
            fail(l, f, "a tool message needs the tool_call_id of the call it answers");
        } else {
            size_t k2 = l->ncalls, seen = 0;
            for (size_t k = 0; k < l->ncalls; k++)
                if (strcmp(l->calls[k], tcid->valuestring) == 0) {
                    seen = 1;
                    if (!l->answered[k])
                        k2 = k;
                }
            if (k2 < l->ncalls)
                l->answered[k2] = 1;
            else if (seen)
                fail(l, f, "'%.64s' was answered already", tcid->valuestring);
            else
                fail(l, f, "'%.64s' answers no tool call made earlier in this example", tcid->valuestring);
        }
    } else if (tcid != NULL) {
        fail(l, f, "only tool messages have a tool_call_id");
    }
    return trains;
}

/* Letters, digits, '_' and '-', 1 to 64 of them: a function name OpenAI's tools accept. */
static int function_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

static void check_tools(line_ctx_t *l, const cJSON *tools, const char *field)
{
    if (!cJSON_IsArray(tools)) {
        fail(l, field, "must be an array of function definitions, not %s", type_name(tools));
        return;
    }
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        char f[256];
        snprintf(f, sizeof(f), "%.120s[%d]", field, i++);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (!cJSON_IsObject(t)) {
            fail(l, f, "a tool must be an object, not %s", type_name(t));
            continue;
        }
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0) {
            char tf[256];
            snprintf(tf, sizeof(tf), "%.120s.type", f);
            fail(l, tf, "must be \"function\"");
        }
        char ff[256];
        snprintf(ff, sizeof(ff), "%.120s.function", f);
        if (!cJSON_IsObject(fn)) {
            fail(l, ff, "must be an object with a name, not %s", type_name(fn));
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(fn, "description");
        char nf[256];
        snprintf(nf, sizeof(nf), "%.120s.name", ff);
        if (!cJSON_IsString(name) || !function_name_ok(name->valuestring))
            fail(l, nf, "must be 1 to 64 letters, digits, '_' or '-'");
        snprintf(nf, sizeof(nf), "%.120s.parameters", ff);
        if (params != NULL && !cJSON_IsObject(params))
            fail(l, nf, "must be a JSON Schema object, not %s", type_name(params));
        snprintf(nf, sizeof(nf), "%.120s.description", ff);
        if (desc != NULL && !cJSON_IsString(desc))
            fail(l, nf, "must be a string, not %s", type_name(desc));
    }
    char *s = cJSON_PrintUnformatted(tools);
    if (s != NULL)
        l->text += strlen(s);
    cJSON_free(s);
}

/* messages, tools and parallel_tool_calls of an object (the line, or a preference line's input); returns the
 * number of assistant messages that train. */
static int check_chat(line_ctx_t *l, const cJSON *o, const char *prefix)
{
    char f[256];
    snprintf(f, sizeof(f), "%.120smessages", prefix);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
    int trains = 0;
    if (msgs == NULL) {
        fail(l, f, "is missing; an example needs a messages array");
    } else if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        fail(l, f, "must be a non-empty array of messages, not %s", cJSON_IsArray(msgs) ? "an empty array"
                                                                                        : type_name(msgs));
    } else {
        int i = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            char mf[256];
            snprintf(mf, sizeof(mf), "%.120s[%d]", f, i++);
            trains += check_message(l, m, mf);
        }
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(o, "tools");
    if (tools != NULL) {
        snprintf(f, sizeof(f), "%.120stools", prefix);
        check_tools(l, tools, f);
    }
    const cJSON *ptc = cJSON_GetObjectItemCaseSensitive(o, "parallel_tool_calls");
    if (ptc != NULL && !cJSON_IsBool(ptc)) {
        snprintf(f, sizeof(f), "%.120sparallel_tool_calls", prefix);
        fail(l, f, "must be a boolean, not %s", type_name(ptc));
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, o)
    {
        if (strcmp(k->string, "messages") != 0 && strcmp(k->string, "tools") != 0 &&
            strcmp(k->string, "parallel_tool_calls") != 0) {
            snprintf(f, sizeof(f), "%.120s%.40s", prefix, k->string);
            fail(l, f, strcmp(k->string, "functions") == 0 ? "the legacy functions list is not taken; use tools"
                                                           : "is not a field of a chat example (messages, tools, "
                                                             "parallel_tool_calls)");
        }
    }
    return trains;
}

/* A preference output: one assistant message with text and no tool calls. */
static void check_output(line_ctx_t *l, const cJSON *out, const char *field, const char **text)
{
    *text = NULL;
    if (out == NULL) {
        fail(l, field, "is missing; a preference example needs both outputs");
        return;
    }
    if (!cJSON_IsArray(out) || cJSON_GetArraySize(out) != 1) {
        fail(l, field, "must be an array of exactly one assistant message");
        return;
    }
    const cJSON *m = cJSON_GetArrayItem(out, 0);
    char f[256];
    snprintf(f, sizeof(f), "%.120s[0]", field);
    int before = l->errors;
    check_message(l, m, f);
    if (l->errors != before)
        return;
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    char cf[256];
    snprintf(cf, sizeof(cf), "%.120s.role", f);
    if (strcmp(role->valuestring, "assistant") != 0) {
        fail(l, cf, "an output must be an assistant message, not '%.40s'", role->valuestring);
        return;
    }
    snprintf(cf, sizeof(cf), "%.120s.tool_calls", f);
    if (cJSON_GetObjectItemCaseSensitive(m, "tool_calls") != NULL) {
        fail(l, cf, "preference outputs are text only (OpenAI's DPO takes text inputs and outputs)");
        return;
    }
    snprintf(cf, sizeof(cf), "%.120s.content", f);
    if (!cJSON_IsString(content) || content->valuestring[0] == '\0') {
        fail(l, cf, "must be non-empty text");
        return;
    }
    *text = content->valuestring;
}

int gyre_ftcheck_line(gyre_ftcheck_t *c, const char *line, size_t len)
{
    line_ctx_t *l = gyre_calloc(1, sizeof(*l));
    l->c = c;
    l->lineno = ++c->lines;
    if (len > GYRE_FTCHECK_LINE_MAX) {
        fail(l, "", "the line is %zu bytes, over the %zu-byte bound", len, GYRE_FTCHECK_LINE_MAX);
        goto out;
    }
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len) {
        fail(l, "", "the line is empty; each line must be one JSON object");
        goto out;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (o == NULL) {
        fail(l, "", "not valid JSON (at byte %zu)", end != NULL && end >= line ? (size_t)(end - line) + 1 : (size_t)1);
        goto out;
    }
    if (!cJSON_IsObject(o)) {
        fail(l, "", "must be a JSON object, not %s", type_name(o));
    } else if (c->format == GYRE_FT_OPENAI) {
        if (check_chat(l, o, "") == 0 && l->errors == 0)
            fail(l, "messages", "no assistant message to learn from (every example needs one, with weight 1 or "
                                "none)");
    } else {
        const cJSON *input = cJSON_GetObjectItemCaseSensitive(o, "input");
        if (!cJSON_IsObject(input))
            fail(l, "input", "must be an object with messages, not %s", type_name(input));
        else
            check_chat(l, input, "input.");
        const char *p, *n;
        size_t before = l->text;
        check_output(l, cJSON_GetObjectItemCaseSensitive(o, "preferred_output"), "preferred_output", &p);
        size_t ptext = l->text - before;
        check_output(l, cJSON_GetObjectItemCaseSensitive(o, "non_preferred_output"), "non_preferred_output", &n);
        size_t ntext = l->text - before - ptext;
        /* The estimate is the input and the longer output: each output is trained with the input once. */
        l->text -= ptext < ntext ? ptext : ntext;
        l->messages--;
        if (p != NULL && n != NULL && strcmp(p, n) == 0)
            fail(l, "non_preferred_output[0].content", "is the same text as preferred_output: no preference to learn");
        const cJSON *k;
        cJSON_ArrayForEach(k, o)
        {
            if (strcmp(k->string, "input") != 0 && strcmp(k->string, "preferred_output") != 0 &&
                strcmp(k->string, "non_preferred_output") != 0) {
                char f[256];
                snprintf(f, sizeof(f), "%.40s", k->string);
                fail(l, f, "is not a field of a preference example (input, preferred_output, non_preferred_output)");
            }
        }
    }
    if (l->errors == 0) {
        size_t tokens = gyre_ftcheck_estimate_tokens(l->text, l->messages);
        if (tokens > c->max_tokens) {
            fail(l, "", "about %zu tokens (bytes of text / 4, plus 3 per message), over the %zu-token limit of a "
                        "training example",
                 tokens, c->max_tokens);
        } else {
            c->examples++;
            c->total_tokens += tokens;
            if (tokens > c->max_example_tokens)
                c->max_example_tokens = tokens;
        }
    }
    cJSON_Delete(o);
out:;
    int e = l->errors;
    free(l);
    return e;
}

size_t gyre_ftcheck_finish(gyre_ftcheck_t *c)
{
    if (c->lines < c->min_examples) {
        c->errors++;
        if (c->errors <= GYRE_FTCHECK_REPORT_MAX)
            gyre_buf_appendf(&c->report, "%zu: file: %zu example%s; a training file needs at least %zu\n", c->lines,
                             c->lines, c->lines == 1 ? "" : "s", c->min_examples);
    }
    return c->errors;
}

long gyre_ftcheck_file(gyre_ftcheck_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    /* One buffer of the line bound: a longer line is read on to its end, 64 KiB at a time, and reported, never
     * held.  The time bound is the file's size: one pass, each line parsed once. */
    char *line = gyre_malloc(GYRE_FTCHECK_LINE_MAX + 2);
    while (fgets(line, (int)GYRE_FTCHECK_LINE_MAX + 2, f) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        } else if (len > GYRE_FTCHECK_LINE_MAX) {
            size_t total = len;
            char skip[65536];
            while (fgets(skip, sizeof(skip), f) != NULL) {
                size_t k = strlen(skip);
                total += k;
                if (k > 0 && skip[k - 1] == '\n')
                    break;
            }
            len = total; /* over the bound: gyre_ftcheck_line reports it without reading it */
        }
        gyre_ftcheck_line(c, line, len);
    }
    int bad = ferror(f);
    free(line);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "reading %s failed", path);
        return -1;
    }
    return (long)gyre_ftcheck_finish(c);
}
