/*
 * The corpus (corpus.h), its first half: one stored call read back as an
 * example in OpenAI's chat shape (gyre_corpus_example_from_row); the scan,
 * the scores and fetch are corpus.c's.  This is the one place that reads a
 * stored call's bodies for
 * the loop: the client's request in its own API (OpenAI chat, Anthropic
 * Messages, the Responses API, told apart by the trace's endpoint) and
 * gyre's answer, which the proxy stores as an OpenAI chat.completion
 * whatever the client spoke (trace.h; a stream's reassembled into one);
 * an Anthropic message or a Response as the answer is read too, so a trace
 * written by another path (OTLP ingest) still reads.
 *
 * Output is written as JSON text straight into the caller's scratch buffer
 * (no tree is built), member order fixed, so the same row gives the same
 * bytes: the dataset's content hash depends on it.  Every string is passed
 * through gyre_buf_append_json_string, which replaces ill-formed UTF-8, so
 * what leaves here is always valid JSON whatever the stored bytes were.
 *
 * Bounds: a body is parsed by cJSON (its nesting limit, 1000, bounds the
 * recursion); the output is bounded by the scratch buffer's maximum (an
 * example past it is -E2BIG and skipped by the scan); the task text of one
 * example is cut at CORPUS_TEXT_MAX bytes (featurising and MinHash read
 * the start of a conversation; a 64 MiB prompt must not cost 64 MiB more).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "loop/corpus.h"

/* The most bytes of task, answer and last-user text an example carries (each): past it the text is cut. */
#define CORPUS_TEXT_MAX (256u << 10)
/* The scratch an example is built in by the scan and by fetch: a stored body is at most 64 MiB (the store's
 * bound) and its conversion a little larger. */
#define CORPUS_SCRATCH_MAX ((size_t)160 << 20)

typedef enum corpus_dialect { D_OPENAI, D_ANTHROPIC, D_RESPONSES } corpus_dialect_t;

/* What one conversion builds: the messages array, the tools array, the answer, and the texts. */
typedef struct conv {
    gyre_buf_t *msgs, *tools, *answer; /* from the thread's pool (buf_take) */
    gyre_buf_t *task, *answer_text, *last_user;
    size_t nmsgs, ntools;
    int has_answer;
    int has_user; /* a user message was read: last_user holds its text */
    int r; /* sticky: the first append that failed (-E2BIG) */
} conv_t;

/*
 * Each thread's working buffers, reused from one example to the next: a
 * conversion uses a dozen, and making them anew per row cost more than the
 * conversion itself (a malloc and a doubling chain each; 1M rows is the
 * target).  Taken and given back in stack order; a buffer that grew past
 * CORPUS_POOL_KEEP is freed when given back, so one huge example does not
 * pin its memory; the pool is freed when its thread exits (a pthread key's
 * destructor).  Past CORPUS_POOL_N at once, buffers come from the heap.
 */
#define CORPUS_POOL_N 24
#define CORPUS_POOL_KEEP ((size_t)1 << 20)

typedef struct buf_pool {
    gyre_buf_t bufs[CORPUS_POOL_N];
    size_t used;
} buf_pool_t;

static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_free_cb(void *p)
{
    buf_pool_t *pool = p;
    for (size_t i = 0; i < CORPUS_POOL_N; i++)
        gyre_buf_dispose(&pool->bufs[i]);
    free(pool);
}

static void pool_key_init(void)
{
    pthread_key_create(&pool_key, pool_free_cb);
}

static gyre_buf_t *buf_take(size_t max)
{
    pthread_once(&pool_once, pool_key_init);
    buf_pool_t *pool = pthread_getspecific(pool_key);
    if (pool == NULL) {
        pool = gyre_calloc(1, sizeof(*pool));
        pthread_setspecific(pool_key, pool);
    }
    gyre_buf_t *b;
    if (pool->used < CORPUS_POOL_N) {
        b = &pool->bufs[pool->used++];
        gyre_buf_reset(b);
    } else {
        b = gyre_calloc(1, sizeof(*b));
    }
    b->max = max;
    return b;
}

static void buf_give(gyre_buf_t *b)
{
    buf_pool_t *pool = pthread_getspecific(pool_key);
    if (pool != NULL && pool->used > 0 && b == &pool->bufs[pool->used - 1]) {
        if (b->cap > CORPUS_POOL_KEEP) {
            gyre_buf_dispose(b);
            memset(b, 0, sizeof(*b));
        }
        pool->used--;
        return;
    }
    gyre_buf_dispose(b);
    free(b);
}

static void conv_init(conv_t *c, size_t max)
{
    memset(c, 0, sizeof(*c));
    c->msgs = buf_take(max);
    c->tools = buf_take(max);
    c->answer = buf_take(max);
    c->task = buf_take(CORPUS_TEXT_MAX);
    c->answer_text = buf_take(CORPUS_TEXT_MAX);
    c->last_user = buf_take(CORPUS_TEXT_MAX);
}

static void conv_dispose(conv_t *c)
{
    buf_give(c->last_user);
    buf_give(c->answer_text);
    buf_give(c->task);
    buf_give(c->answer);
    buf_give(c->tools);
    buf_give(c->msgs);
}

static void put(conv_t *c, gyre_buf_t *b, const char *s, size_t n)
{
    if (c->r == 0)
        c->r = gyre_buf_append(b, s, n);
}

static void puts_(conv_t *c, gyre_buf_t *b, const char *s)
{
    put(c, b, s, strlen(s));
}

static void put_str(conv_t *c, gyre_buf_t *b, const char *s, size_t n)
{
    if (c->r == 0)
        c->r = gyre_buf_append_json_string(b, s, n);
}

/* A number as the shortest text that reads back as the same double (integers as integers). */
static void put_number(conv_t *c, gyre_buf_t *b, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        puts_(c, b, "null");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(tmp, sizeof(tmp), "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
    }
    puts_(c, b, tmp);
}

/*
 * A cJSON value as compact JSON text, written here rather than by
 * cJSON_Print: cJSON copies a string's bytes as they are, so ill-formed
 * UTF-8 in a stored body would leave here as JSON no strict parser reads;
 * every string goes through gyre_buf_append_json_string instead.  The
 * recursion is bounded by cJSON's nesting limit (1000) on what it parsed.
 */
static void put_json(conv_t *c, gyre_buf_t *b, const cJSON *v)
{
    const cJSON *e;
    size_t i = 0;
    if (v == NULL || cJSON_IsNull(v)) {
        puts_(c, b, "null");
    } else if (cJSON_IsFalse(v)) {
        puts_(c, b, "false");
    } else if (cJSON_IsTrue(v)) {
        puts_(c, b, "true");
    } else if (cJSON_IsNumber(v)) {
        put_number(c, b, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        put_str(c, b, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsArray(v)) {
        puts_(c, b, "[");
        cJSON_ArrayForEach(e, v)
        {
            if (i++)
                puts_(c, b, ",");
            put_json(c, b, e);
        }
        puts_(c, b, "]");
    } else if (cJSON_IsObject(v)) {
        puts_(c, b, "{");
        cJSON_ArrayForEach(e, v)
        {
            if (i++)
                puts_(c, b, ",");
            put_str(c, b, e->string != NULL ? e->string : "", e->string != NULL ? strlen(e->string) : 0);
            puts_(c, b, ":");
            put_json(c, b, e);
        }
        puts_(c, b, "}");
    } else {
        puts_(c, b, "null"); /* cJSON_Raw and cJSON_Invalid: never made by the parser */
    }
}

/* A cJSON value as a JSON string holding its compact text (a tool call's arguments from an object). */
static void put_json_as_string(conv_t *c, gyre_buf_t *b, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        put_str(c, b, v->valuestring, strlen(v->valuestring));
        return;
    }
    conv_t inner = {.r = 0};
    gyre_buf_t *text = buf_take(b->max);
    if (v == NULL)
        gyre_buf_appends(text, "{}");
    else
        put_json(&inner, text, v);
    if (inner.r != 0 && c->r == 0)
        c->r = inner.r;
    put_str(c, b, text->base != NULL ? text->base : "", text->len);
    buf_give(text);
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Appends text with its runs of whitespace collapsed to one space, a word at a time (a bounded text: what
 * passes its bound is cut). */
static void put_collapsed(gyre_buf_t *b, const char *s, size_t n)
{
    int need_space = 0; /* whitespace came before the next word */
    size_t i = 0;
    /* The collapsed text is never longer than n (a space is written only for whitespace read), so when n more
     * bytes fit both the bound and the allocation it is written in place, without an append per word (which
     * was a tenth of the scan's time); otherwise word by word below, where the bound cuts it. */
    if (b->base != NULL && b->failed == 0 && n < b->max - b->len && b->len + n + 1 <= b->cap) {
        char *o = b->base + b->len;
        while (i < n) {
            while (i < n && is_space(s[i])) {
                i++;
                need_space = 1;
            }
            size_t start = i;
            while (i < n && !is_space(s[i]))
                i++;
            if (i == start)
                break;
            if (need_space && o > b->base && o[-1] != ' ' && o[-1] != '\n')
                *o++ = ' ';
            memcpy(o, s + start, i - start);
            o += i - start;
            need_space = 0;
        }
        b->len = (size_t)(o - b->base);
        b->base[b->len] = '\0';
        return;
    }
    while (i < n) {
        while (i < n && is_space(s[i])) {
            i++;
            need_space = 1;
        }
        size_t start = i;
        while (i < n && !is_space(s[i]))
            i++;
        if (i == start)
            break;
        if (need_space && b->len > 0 && b->base[b->len - 1] != ' ' && b->base[b->len - 1] != '\n' &&
            gyre_buf_append(b, " ", 1) != 0)
            return;
        if (gyre_buf_append(b, s + start, i - start) != 0) {
            gyre_buf_append_upto(b, s + start, i - start);
            return;
        }
        need_space = 0;
    }
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/*
 * The text of a content value: a string, or the text parts of an array
 * (OpenAI "text", Anthropic "text", Responses "input_text"/"output_text"),
 * joined by newlines.  *only_text says whether every part was text (so the
 * content can be written as one string).
 */
static void content_text(const cJSON *content, gyre_buf_t *out, int *only_text)
{
    *only_text = 1;
    if (cJSON_IsString(content)) {
        gyre_buf_appends(out, content->valuestring);
        return;
    }
    if (!cJSON_IsArray(content)) {
        if (content != NULL && !cJSON_IsNull(content))
            *only_text = 0;
        return;
    }
    size_t n = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const char *type = jstr(part, "type");
        const char *text = jstr(part, "text");
        if (cJSON_IsString(part)) {
            text = part->valuestring;
        } else if (type == NULL || text == NULL ||
                   (strcmp(type, "text") != 0 && strcmp(type, "input_text") != 0 && strcmp(type, "output_text") != 0)) {
            *only_text = 0;
            continue;
        }
        if (n++)
            gyre_buf_append(out, "\n", 1);
        gyre_buf_appends(out, text);
    }
}

/* ---- Messages in OpenAI's chat shape. ---- */

/* A tool call gathered for an assistant message. */
typedef struct tool_call {
    const char *id, *name;
    const cJSON *args; /* a string (OpenAI, Responses) or an object (Anthropic's input) */
} tool_call_t;

#define MAX_TOOL_CALLS 256 /* per message: more are dropped (no real answer has that many) */

/* Writes one message: role, content (a string, the raw parts when not all text, or null), tool_calls,
 * tool_call_id, name; and its task line.  `text` is the content's text. */
static void emit_message(conv_t *c, const char *role, const char *text, size_t text_len, const cJSON *raw_parts,
                         const tool_call_t *calls, size_t ncalls, const char *tool_call_id, const char *name)
{
    gyre_buf_t *b = c->msgs;
    puts_(c, b, c->nmsgs++ ? ",{\"role\":" : "{\"role\":");
    put_str(c, b, role, strlen(role));
    puts_(c, b, ",\"content\":");
    if (raw_parts != NULL)
        put_json(c, b, raw_parts);
    else if (text == NULL || (text_len == 0 && ncalls > 0))
        puts_(c, b, "null");
    else
        put_str(c, b, text, text_len);
    if (name != NULL) {
        puts_(c, b, ",\"name\":");
        put_str(c, b, name, strlen(name));
    }
    if (ncalls > 0) {
        puts_(c, b, ",\"tool_calls\":[");
        for (size_t i = 0; i < ncalls; i++) {
            puts_(c, b, i ? ",{\"id\":" : "{\"id\":");
            put_str(c, b, calls[i].id != NULL ? calls[i].id : "", calls[i].id != NULL ? strlen(calls[i].id) : 0);
            puts_(c, b, ",\"type\":\"function\",\"function\":{\"name\":");
            put_str(c, b, calls[i].name, strlen(calls[i].name));
            puts_(c, b, ",\"arguments\":");
            put_json_as_string(c, b, calls[i].args);
            puts_(c, b, "}}");
        }
        puts_(c, b, "]");
    }
    if (tool_call_id != NULL) {
        puts_(c, b, ",\"tool_call_id\":");
        put_str(c, b, tool_call_id, strlen(tool_call_id));
    }
    puts_(c, b, "}");

    /* The task line: the text, then each call as name(arguments), written straight into the task text. */
    if (c->task->len > 0)
        gyre_buf_append(c->task, "\n", 1);
    gyre_buf_appendf(c->task, "%s: ", role);
    if (text != NULL)
        put_collapsed(c->task, text, text_len);
    for (size_t i = 0; i < ncalls; i++) {
        conv_t inner = {.r = 0};
        gyre_buf_t *args = buf_take(CORPUS_TEXT_MAX);
        if (cJSON_IsString(calls[i].args))
            gyre_buf_appends(args, calls[i].args->valuestring);
        else if (calls[i].args != NULL)
            put_json(&inner, args, calls[i].args);
        if (c->task->len > 0 && c->task->base[c->task->len - 1] != ' ')
            gyre_buf_append(c->task, " ", 1);
        gyre_buf_appendf(c->task, "%s(", calls[i].name);
        put_collapsed(c->task, args->base != NULL ? args->base : "", args->len);
        gyre_buf_append(c->task, ")", 1);
        buf_give(args);
    }
    if (strcmp(role, "user") == 0) {
        c->has_user = 1;
        gyre_buf_reset(c->last_user);
        if (text != NULL)
            gyre_buf_append_upto(c->last_user, text, text_len);
    }
}

/* A message whose content is a content value (string or parts). */
static void emit_content_message(conv_t *c, const char *role, const cJSON *content, const tool_call_t *calls,
                                 size_t ncalls, const char *tool_call_id, const char *name, int keep_parts)
{
    int only_text;
    gyre_buf_t *text = buf_take(CORPUS_SCRATCH_MAX);
    content_text(content, text, &only_text);
    int none = content == NULL || cJSON_IsNull(content);
    emit_message(c, role, none ? NULL : (text->base != NULL ? text->base : ""), text->len,
                 keep_parts && !only_text ? content : NULL, calls, ncalls, tool_call_id, name);
    buf_give(text);
}

/* One function tool in OpenAI's shape. */
static void emit_tool(conv_t *c, const char *name, const char *description, const cJSON *parameters)
{
    gyre_buf_t *b = c->tools;
    puts_(c, b, c->ntools++ ? ",{\"type\":\"function\",\"function\":{\"name\":" : "{\"type\":\"function\",\"function\":{\"name\":");
    put_str(c, b, name, strlen(name));
    if (description != NULL) {
        puts_(c, b, ",\"description\":");
        put_str(c, b, description, strlen(description));
    }
    if (parameters != NULL && cJSON_IsObject(parameters)) {
        puts_(c, b, ",\"parameters\":");
        put_json(c, b, parameters);
    }
    puts_(c, b, "}}");
}

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -EINVAL;
}

/* ---- The request, per dialect. ---- */

static int openai_request(conv_t *c, const cJSON *req, char *err, size_t errlen)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages"), *m;
    if (!cJSON_IsArray(msgs))
        return bad(err, errlen, "request: no messages array");
    cJSON_ArrayForEach(m, msgs)
    {
        const char *role = jstr(m, "role");
        if (role == NULL)
            return bad(err, errlen, "request: a message without a role");
        if (strcmp(role, "developer") == 0)
            role = "system";
        if (strcmp(role, "system") != 0 && strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
            strcmp(role, "tool") != 0)
            continue; /* the legacy "function" role and unknown ones carry nothing the loop reads */
        tool_call_t calls[MAX_TOOL_CALLS];
        size_t n = 0;
        const cJSON *tc, *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        cJSON_ArrayForEach(tc, (cJSON_IsArray(tcs) ? tcs : NULL))
        {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            const char *name = jstr(fn, "name");
            if (name == NULL || n == MAX_TOOL_CALLS)
                continue;
            calls[n++] = (tool_call_t){jstr(tc, "id"), name, cJSON_GetObjectItemCaseSensitive(fn, "arguments")};
        }
        emit_content_message(c, role, cJSON_GetObjectItemCaseSensitive(m, "content"), calls, n,
                             strcmp(role, "tool") == 0 ? jstr(m, "tool_call_id") : NULL, jstr(m, "name"), 1);
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools"), *t;
    cJSON_ArrayForEach(t, (cJSON_IsArray(tools) ? tools : NULL))
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const char *name = jstr(fn, "name");
        if (name != NULL)
            emit_tool(c, name, jstr(fn, "description"), cJSON_GetObjectItemCaseSensitive(fn, "parameters"));
    }
    return 0;
}

/* Anthropic blocks of one message: text (joined), tool_use calls, tool_result blocks. */
static void anthropic_message(conv_t *c, const char *role, const cJSON *content)
{
    if (cJSON_IsString(content)) {
        emit_message(c, role, content->valuestring, strlen(content->valuestring), NULL, NULL, 0, NULL, NULL);
        return;
    }
    if (!cJSON_IsArray(content))
        return;
    tool_call_t calls[MAX_TOOL_CALLS];
    size_t n = 0, ntext = 0;
    const cJSON *blk;
    gyre_buf_t *text = buf_take(CORPUS_SCRATCH_MAX);
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = jstr(blk, "type");
        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0 && jstr(blk, "text") != NULL) {
            if (ntext++)
                gyre_buf_append(text, "\n", 1);
            gyre_buf_appends(text, jstr(blk, "text"));
        } else if (strcmp(type, "tool_use") == 0 && jstr(blk, "name") != NULL && n < MAX_TOOL_CALLS) {
            calls[n++] = (tool_call_t){jstr(blk, "id"), jstr(blk, "name"), cJSON_GetObjectItemCaseSensitive(blk, "input")};
        } else if (strcmp(type, "tool_result") == 0) {
            /* A tool's result is its own message in OpenAI's shape, before the user's words (Anthropic puts
             * tool_result blocks first in a user turn). */
            emit_content_message(c, "tool", cJSON_GetObjectItemCaseSensitive(blk, "content"), NULL, 0,
                                 jstr(blk, "tool_use_id") != NULL ? jstr(blk, "tool_use_id") : "", NULL, 0);
        }
    }
    if (ntext > 0 || n > 0)
        emit_message(c, role, ntext > 0 ? (text->base != NULL ? text->base : "") : NULL, text->len, NULL, calls, n, NULL,
                     NULL);
    buf_give(text);
}

static int anthropic_request(conv_t *c, const cJSON *req, char *err, size_t errlen)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages"), *m;
    if (!cJSON_IsArray(msgs))
        return bad(err, errlen, "request: no messages array");
    const cJSON *system = cJSON_GetObjectItemCaseSensitive(req, "system");
    if (system != NULL && !cJSON_IsNull(system))
        emit_content_message(c, "system", system, NULL, 0, NULL, NULL, 0);
    cJSON_ArrayForEach(m, msgs)
    {
        const char *role = jstr(m, "role");
        if (role == NULL)
            return bad(err, errlen, "request: a message without a role");
        if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
            continue;
        anthropic_message(c, role, cJSON_GetObjectItemCaseSensitive(m, "content"));
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools"), *t;
    cJSON_ArrayForEach(t, (cJSON_IsArray(tools) ? tools : NULL))
    {
        const char *name = jstr(t, "name");
        if (name != NULL)
            emit_tool(c, name, jstr(t, "description"), cJSON_GetObjectItemCaseSensitive(t, "input_schema"));
    }
    return 0;
}

/* Responses items: messages, function calls (consecutive ones are one assistant message), their outputs. */
static void responses_items(conv_t *c, const cJSON *items, int answer)
{
    tool_call_t calls[MAX_TOOL_CALLS];
    size_t n = 0;
    size_t ntext = 0;
    const cJSON *it;
    gyre_buf_t *text = buf_take(CORPUS_SCRATCH_MAX);
    cJSON_ArrayForEach(it, items)
    {
        const char *type = jstr(it, "type");
        const char *role = jstr(it, "role");
        if (type != NULL && strcmp(type, "function_call") == 0) {
            if (jstr(it, "name") != NULL && n < MAX_TOOL_CALLS)
                calls[n++] = (tool_call_t){jstr(it, "call_id"), jstr(it, "name"),
                                           cJSON_GetObjectItemCaseSensitive(it, "arguments")};
            continue;
        }
        if (answer) {
            /* An answer's output: its messages' text and its calls make one assistant message. */
            if (type != NULL && strcmp(type, "message") == 0) {
                int only;
                if (ntext++)
                    gyre_buf_append(text, "\n", 1);
                content_text(cJSON_GetObjectItemCaseSensitive(it, "content"), text, &only);
            }
            continue;
        }
        if (n > 0) {
            emit_message(c, "assistant", NULL, 0, NULL, calls, n, NULL, NULL);
            n = 0;
        }
        if (type != NULL && strcmp(type, "function_call_output") == 0) {
            emit_content_message(c, "tool", cJSON_GetObjectItemCaseSensitive(it, "output"), NULL, 0,
                                 jstr(it, "call_id") != NULL ? jstr(it, "call_id") : "", NULL, 0);
        } else if (role != NULL && (type == NULL || strcmp(type, "message") == 0)) {
            if (strcmp(role, "developer") == 0)
                role = "system";
            if (strcmp(role, "system") == 0 || strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0)
                emit_content_message(c, role, cJSON_GetObjectItemCaseSensitive(it, "content"), NULL, 0, NULL, NULL, 0);
        }
    }
    if (answer)
        emit_message(c, "assistant", ntext > 0 ? (text->base != NULL ? text->base : "") : NULL, text->len, NULL, calls, n,
                     NULL, NULL);
    else if (n > 0)
        emit_message(c, "assistant", NULL, 0, NULL, calls, n, NULL, NULL);
    buf_give(text);
}

static int responses_request(conv_t *c, const cJSON *req, char *err, size_t errlen)
{
    const char *instructions = jstr(req, "instructions");
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
    if (!cJSON_IsString(input) && !cJSON_IsArray(input))
        return bad(err, errlen, "request: no input");
    if (instructions != NULL)
        emit_message(c, "system", instructions, strlen(instructions), NULL, NULL, 0, NULL, NULL);
    if (cJSON_IsString(input))
        emit_message(c, "user", input->valuestring, strlen(input->valuestring), NULL, NULL, 0, NULL, NULL);
    else
        responses_items(c, input, 0);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools"), *t;
    cJSON_ArrayForEach(t, (cJSON_IsArray(tools) ? tools : NULL))
    {
        const char *type = jstr(t, "type"), *name = jstr(t, "name");
        if (type != NULL && strcmp(type, "function") == 0 && name != NULL)
            emit_tool(c, name, jstr(t, "description"), cJSON_GetObjectItemCaseSensitive(t, "parameters"));
    }
    return 0;
}

/* ---- The answer. ---- */

/*
 * The answer as one assistant message, written into c->answer by the same
 * emitter the messages use (its task line goes to answer_text instead).
 * 0 with has_answer 0 when the body is no answer (an error, or not JSON).
 */
static void read_answer(conv_t *c, const char *resp, size_t len)
{
    cJSON *a = cJSON_ParseWithLength(resp, len);
    if (a == NULL)
        return;
    /* The emitter writes into msgs and task: swap the answer's buffers in for the duration (an answer is an
     * assistant message, so last_user is not touched). */
    gyre_buf_t *msgs = c->msgs, *task = c->task;
    size_t nmsgs = c->nmsgs;
    c->msgs = c->answer;
    c->task = c->answer_text;
    c->nmsgs = 0;

    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(a, "choices");
    const char *type = jstr(a, "type"), *object = jstr(a, "object");
    if (cJSON_IsArray(choices) && cJSON_GetArraySize(choices) > 0) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "message");
        if (cJSON_IsObject(m)) {
            tool_call_t calls[MAX_TOOL_CALLS];
            size_t n = 0;
            const cJSON *tc, *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
            cJSON_ArrayForEach(tc, (cJSON_IsArray(tcs) ? tcs : NULL))
            {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
                if (jstr(fn, "name") != NULL && n < MAX_TOOL_CALLS)
                    calls[n++] = (tool_call_t){jstr(tc, "id"), jstr(fn, "name"),
                                               cJSON_GetObjectItemCaseSensitive(fn, "arguments")};
            }
            emit_content_message(c, "assistant", cJSON_GetObjectItemCaseSensitive(m, "content"), calls, n, NULL, NULL,
                                 0);
        }
    } else if (type != NULL && strcmp(type, "message") == 0) {
        anthropic_message(c, "assistant", cJSON_GetObjectItemCaseSensitive(a, "content"));
    } else if (object != NULL && strcmp(object, "response") == 0 &&
               cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(a, "output"))) {
        responses_items(c, cJSON_GetObjectItemCaseSensitive(a, "output"), 1);
    }
    c->has_answer = c->nmsgs == 1;

    c->answer = c->msgs;
    c->answer_text = c->task;
    c->msgs = msgs;
    c->task = task;
    c->nmsgs = nmsgs;
    cJSON_Delete(a);
}

/* The answer's text without the "assistant: " its task line starts with. */
static const char *answer_text_of(const conv_t *c, size_t *len)
{
    static const char prefix[] = "assistant: ";
    const char *p = c->answer_text->base != NULL ? c->answer_text->base : "";
    size_t n = c->answer_text->len;
    if (n >= sizeof(prefix) - 1 && memcmp(p, prefix, sizeof(prefix) - 1) == 0) {
        p += sizeof(prefix) - 1;
        n -= sizeof(prefix) - 1;
    }
    *len = n;
    return p;
}

/* ---- The example. ---- */

/* Copies bytes into scratch with a NUL; returns the offset, or (size_t)-1 when scratch is full. */
static size_t keep(gyre_buf_t *scratch, const char *p, size_t n, int *r)
{
    size_t off = scratch->len;
    if (*r == 0)
        *r = gyre_buf_append(scratch, p != NULL ? p : "", n);
    if (*r == 0)
        *r = gyre_buf_append(scratch, "", 1);
    return off;
}

#define NOPE ((size_t)-1)

int gyre_corpus_example_from_row(const gyre_store_row_t *row, const char *req, size_t req_len, const char *resp,
                                 size_t resp_len, gyre_buf_t *scratch, gyre_example_t *out, char *err, size_t errlen)
{
    corpus_dialect_t d;
    const gyre_tstr_t *ep = &row->endpoint;
    memset(out, 0, sizeof(*out));
    if (ep->len == 20 && memcmp(ep->p, "/v1/chat/completions", 20) == 0)
        d = D_OPENAI;
    else if (ep->len == 12 && memcmp(ep->p, "/v1/messages", 12) == 0)
        d = D_ANTHROPIC;
    else if (ep->len == 13 && memcmp(ep->p, "/v1/responses", 13) == 0)
        d = D_RESPONSES;
    else {
        snprintf(err, errlen, "endpoint %.*s: not a chat call the loop reads", (int)(ep->len < 64 ? ep->len : 64),
                 ep->p != NULL ? ep->p : "");
        return -EINVAL;
    }
    if (req == NULL || req_len == 0)
        return bad(err, errlen, "request: not kept");
    /* The parsed bodies live only inside this call: their nodes come from the thread's JSON arena
     * (common/json.h) rather than a malloc each, and are gone before it returns. */
    int arena = gyre_json_arena_enter();
    cJSON *rq = cJSON_ParseWithLength(req, req_len);
    if (rq == NULL || !cJSON_IsObject(rq)) {
        cJSON_Delete(rq);
        if (arena)
            gyre_json_arena_end();
        return bad(err, errlen, "request: not a JSON object");
    }
    conv_t c;
    conv_init(&c, scratch->max);
    int r = d == D_OPENAI      ? openai_request(&c, rq, err, errlen)
            : d == D_ANTHROPIC ? anthropic_request(&c, rq, err, errlen)
                               : responses_request(&c, rq, err, errlen);
    cJSON_Delete(rq);
    if (r == 0 && c.nmsgs == 0)
        r = bad(err, errlen, "request: no message the loop reads");
    if (r == 0 && resp != NULL && resp_len > 0 && row->status >= 200 && row->status < 300)
        read_answer(&c, resp, resp_len);
    if (arena)
        gyre_json_arena_end();
    if (r == 0 && c.r != 0) {
        snprintf(err, errlen, "the example is larger than its buffer (%zu bytes)", scratch->max);
        r = -E2BIG;
    }
    if (r != 0) {
        conv_dispose(&c);
        return r;
    }

    /* Everything into scratch first, pointers after: scratch may move while it grows. */
    int kr = 0;
    size_t o_msgs, o_tools = NOPE, o_ans = NOPE, o_task, o_atext, o_last = NOPE;
    size_t o_s[10];
    const gyre_tstr_t *strs[10] = {&row->session, &row->agent,  &row->route,     &row->provider, &row->model,
                                   &row->user,    &row->team,   &row->endpoint,  &row->tags_json, &row->meta_json};
    for (int i = 0; i < 10; i++)
        o_s[i] = keep(scratch, strs[i]->p, strs[i]->len, &kr);
    if (kr == 0)
        kr = gyre_buf_append(scratch, "[", 1);
    o_msgs = scratch->len - 1;
    if (kr == 0 && c.msgs->len)
        kr = gyre_buf_append(scratch, c.msgs->base, c.msgs->len);
    if (kr == 0)
        kr = gyre_buf_append(scratch, "]", 2); /* the bracket and the NUL */
    if (c.ntools > 0) {
        if (kr == 0)
            kr = gyre_buf_append(scratch, "[", 1);
        o_tools = scratch->len - 1;
        if (kr == 0)
            kr = gyre_buf_append(scratch, c.tools->base, c.tools->len);
        if (kr == 0)
            kr = gyre_buf_append(scratch, "]", 2);
    }
    if (c.has_answer)
        o_ans = keep(scratch, c.answer->base, c.answer->len, &kr);
    o_task = keep(scratch, c.task->base, c.task->len, &kr);
    size_t alen = 0;
    const char *atext = answer_text_of(&c, &alen);
    o_atext = keep(scratch, c.has_answer ? atext : "", c.has_answer ? alen : 0, &kr);
    if (c.has_user)
        o_last = keep(scratch, c.last_user->base, c.last_user->len, &kr);
    conv_dispose(&c);
    if (kr != 0) {
        snprintf(err, errlen, "the example is larger than its buffer (%zu bytes)", scratch->max);
        return -E2BIG;
    }

    const char *base = scratch->base;
    snprintf(out->trace_id, sizeof(out->trace_id), "%.*s", (int)(row->trace_id.len < 32 ? row->trace_id.len : 32),
             row->trace_id.p != NULL ? row->trace_id.p : "");
    const char **fields[10] = {&out->session, &out->agent, &out->route, &out->provider, &out->model,
                               &out->user,    &out->team,  &out->endpoint, &out->tags_json, &out->meta_json};
    for (int i = 0; i < 10; i++)
        *fields[i] = base + o_s[i];
    out->started_us = row->started_us;
    out->latency_us = row->latency_us;
    out->status = row->status;
    out->stream = row->stream;
    out->cost_usd = row->cost_usd;
    out->prompt_tokens = row->prompt_tokens;
    out->completion_tokens = row->completion_tokens;
    out->messages_json = base + o_msgs;
    out->tools_json = o_tools != NOPE ? base + o_tools : NULL;
    out->answer_json = o_ans != NOPE ? base + o_ans : NULL;
    out->task_text = base + o_task;
    out->answer_text = base + o_atext;
    out->last_user_text = o_last != NOPE ? base + o_last : NULL;
    out->cluster = row->cluster;
    return 0;
}

