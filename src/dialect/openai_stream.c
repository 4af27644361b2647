/*
 * OpenAI chat streams, taken apart and put together (see openai_stream.h).
 *
 * Both directions write their JSON by hand into bounded buffers, in one fixed
 * member order, so that what the accumulator produces and what the replay
 * produces are exact inverses of each other (the round trip the tests check)
 * and so that a cached completion replays the same bytes every time.
 */
#include "dialect/openai_stream.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/*
 * Tool calls are kept by their `index`, which comes from the upstream: an
 * index past this bound is dropped (and the accumulation marked truncated)
 * rather than growing the array to whatever number a provider sent.
 */
#define MAX_TOOL_CALLS 128

/* A JSON number as a long long; NaN, infinities and out-of-range values read as 0, not as undefined behaviour. */
static long long json_ll(const cJSON *n)
{
    if (!cJSON_IsNumber(n))
        return 0;
    double d = n->valuedouble;
    if (!(d >= -9.2e18 && d <= 9.2e18))
        return 0;
    return (long long)d;
}

/* --- the accumulator ------------------------------------------------------ */

static void sse_event_cb(void *ctx, const char *event, size_t event_len, const char *data, size_t data_len)
{
    (void)event;
    (void)event_len;
    gyre_openai_accum_event(ctx, data, data_len);
}

void gyre_openai_accum_init(gyre_openai_accum_t *a, size_t max)
{
    memset(a, 0, sizeof(*a));
    gyre_sse_init(&a->sse, max, sse_event_cb, a);
    gyre_buf_init(&a->id, max);
    gyre_buf_init(&a->model, max);
    gyre_buf_init(&a->content, max);
    gyre_buf_init(&a->finish_reason, max);
}

void gyre_openai_accum_dispose(gyre_openai_accum_t *a)
{
    gyre_sse_dispose(&a->sse);
    gyre_buf_dispose(&a->id);
    gyre_buf_dispose(&a->model);
    gyre_buf_dispose(&a->content);
    gyre_buf_dispose(&a->finish_reason);
    for (size_t i = 0; i < a->ntools; i++) {
        gyre_buf_dispose(&a->tools[i].id);
        gyre_buf_dispose(&a->tools[i].name);
        gyre_buf_dispose(&a->tools[i].arguments);
    }
    free(a->tools);
    a->tools = NULL;
    a->ntools = 0;
}

int gyre_openai_accum_feed(gyre_openai_accum_t *a, const char *bytes, size_t len)
{
    int r = gyre_sse_feed(&a->sse, bytes, len);
    if (r != 0)
        a->truncated = 1; /* an event was lost whole */
    return r;
}

/*
 * Appends a piece of text to one of the accumulated strings.  Once anything
 * has hit the bound nothing more is appended anywhere: a completion with a
 * hole in the middle would be worse than one that visibly stops.
 */
static void accum_append(gyre_openai_accum_t *a, gyre_buf_t *b, const cJSON *s)
{
    if (!cJSON_IsString(s) || a->truncated)
        return;
    if (gyre_buf_append(b, s->valuestring, strlen(s->valuestring)) != 0)
        a->truncated = 1;
}

/* Sets `b` from `s` unless it is already set: ids and names come from the first chunk that carries them. */
static void accum_first(gyre_openai_accum_t *a, gyre_buf_t *b, const cJSON *s)
{
    if (b->len != 0 || !cJSON_IsString(s) || s->valuestring[0] == '\0')
        return;
    if (gyre_buf_append(b, s->valuestring, strlen(s->valuestring)) != 0)
        a->truncated = 1;
}

static gyre_openai_tool_acc_t *accum_tool(gyre_openai_accum_t *a, size_t index)
{
    if (index >= MAX_TOOL_CALLS) {
        a->truncated = 1;
        return NULL;
    }
    if (index >= a->ntools) {
        a->tools = gyre_realloc(a->tools, (index + 1) * sizeof(*a->tools));
        size_t max = a->content.max; /* the bound given to init */
        for (size_t i = a->ntools; i <= index; i++) {
            gyre_buf_init(&a->tools[i].id, max);
            gyre_buf_init(&a->tools[i].name, max);
            gyre_buf_init(&a->tools[i].arguments, max);
        }
        a->ntools = index + 1;
    }
    return &a->tools[index];
}

static void accum_tool_calls(gyre_openai_accum_t *a, const cJSON *calls)
{
    size_t pos = 0;
    const cJSON *call;
    cJSON_ArrayForEach(call, calls)
    {
        /* Some OpenAI-compatible servers leave out `index`; the position in the array is then the best guess. */
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(call, "index");
        long long i = cJSON_IsNumber(index) ? json_ll(index) : (long long)pos;
        pos++;
        if (i < 0)
            continue;
        gyre_openai_tool_acc_t *t = accum_tool(a, (size_t)i);
        if (t == NULL)
            continue;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        accum_first(a, &t->id, cJSON_GetObjectItemCaseSensitive(call, "id"));
        accum_first(a, &t->name, cJSON_GetObjectItemCaseSensitive(fn, "name"));
        accum_append(a, &t->arguments, cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
    }
}

static void accum_usage(gyre_openai_accum_t *a, const cJSON *u)
{
    a->has_usage = 1;
    a->prompt_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
    a->completion_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
    a->total_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    a->cached_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(details, "cached_tokens"));
}

/*
 * The choice with index 0.  With n > 1 each chunk carries the choices that
 * moved, each with its own index, so the first element of the array is not
 * necessarily choice 0; a choice without an index counts as 0.
 */
static const cJSON *first_choice(const cJSON *choices)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, choices)
    {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(c, "index");
        if (index == NULL || json_ll(index) == 0)
            return c;
    }
    return NULL;
}

void gyre_openai_accum_event(gyre_openai_accum_t *a, const char *data, size_t len)
{
    a->events++;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        a->done = 1;
        return;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j))
        goto out; /* not a chunk: keep-alive junk or a broken line is not ours to judge */
    if (cJSON_GetObjectItemCaseSensitive(j, "error") != NULL) {
        a->errored = 1;
        goto out;
    }
    accum_first(a, &a->id, cJSON_GetObjectItemCaseSensitive(j, "id"));
    accum_first(a, &a->model, cJSON_GetObjectItemCaseSensitive(j, "model"));
    if (a->created == 0)
        a->created = json_ll(cJSON_GetObjectItemCaseSensitive(j, "created"));
    const cJSON *choice = first_choice(cJSON_GetObjectItemCaseSensitive(j, "choices"));
    if (choice != NULL) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        accum_append(a, &a->content, cJSON_GetObjectItemCaseSensitive(delta, "content"));
        accum_tool_calls(a, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"));
        const cJSON *finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (cJSON_IsString(finish)) {
            gyre_buf_reset(&a->finish_reason);
            if (gyre_buf_appends(&a->finish_reason, finish->valuestring) != 0)
                a->truncated = 1;
        }
    }
    /* Usage comes in a last chunk with no choices, or as null on every chunk before it. */
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(usage))
        accum_usage(a, usage);
out:
    cJSON_Delete(j);
}

/* --- writing JSON --------------------------------------------------------- */

static int put_str(gyre_buf_t *o, const char *s, size_t n)
{
    return gyre_buf_append_json_string(o, s, n);
}

static int put_str_or_null(gyre_buf_t *o, const char *s, size_t n)
{
    return s == NULL ? gyre_buf_append(o, "null", 4) : put_str(o, s, n);
}

static const char *buf_str(const gyre_buf_t *b)
{
    return b->base != NULL ? b->base : "";
}

static int put_usage(gyre_buf_t *o, long long prompt, long long completion, long long total, long long cached)
{
    int r = gyre_buf_appendf(o, "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld", prompt,
                             completion, total);
    /* Only when there is something to say: providers without prompt caching never send the member. */
    if (r == 0 && cached != 0)
        r = gyre_buf_appendf(o, ",\"prompt_tokens_details\":{\"cached_tokens\":%lld}", cached);
    if (r == 0)
        r = gyre_buf_append(o, "}", 1);
    return r;
}

/* Undoes a half-written answer: a function that fails leaves `out` as it found it. */
static int restore(gyre_buf_t *o, size_t start, int r)
{
    o->len = start;
    if (o->base != NULL)
        o->base[start] = '\0';
    return r;
}

int gyre_openai_accum_completion(const gyre_openai_accum_t *a, gyre_buf_t *out)
{
    size_t start = out->len;
    int r = 0;
#define PUT(expr)                                                                                                      \
    do {                                                                                                               \
        if ((r = (expr)) != 0)                                                                                         \
            return restore(out, start, r);                                                                             \
    } while (0)
    PUT(gyre_buf_appends(out, "{\"id\":"));
    PUT(put_str(out, buf_str(&a->id), a->id.len));
    PUT(gyre_buf_appendf(out, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":", a->created));
    PUT(put_str(out, buf_str(&a->model), a->model.len));
    PUT(gyre_buf_appends(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"));
    PUT(put_str_or_null(out, a->content.len != 0 ? a->content.base : NULL, a->content.len));
    int any = 0;
    for (size_t i = 0; i < a->ntools; i++) {
        const gyre_openai_tool_acc_t *t = &a->tools[i];
        /* A gap in the upstream's indexes leaves an empty slot: it was never a call. */
        if (t->id.len == 0 && t->name.len == 0 && t->arguments.len == 0)
            continue;
        PUT(gyre_buf_appends(out, any ? ",{\"id\":" : ",\"tool_calls\":[{\"id\":"));
        PUT(put_str(out, buf_str(&t->id), t->id.len));
        PUT(gyre_buf_appends(out, ",\"type\":\"function\",\"function\":{\"name\":"));
        PUT(put_str(out, buf_str(&t->name), t->name.len));
        PUT(gyre_buf_appends(out, ",\"arguments\":"));
        PUT(put_str(out, buf_str(&t->arguments), t->arguments.len));
        PUT(gyre_buf_appends(out, "}}"));
        any = 1;
    }
    if (any)
        PUT(gyre_buf_appends(out, "]"));
    PUT(gyre_buf_appends(out, "},\"finish_reason\":"));
    PUT(put_str_or_null(out, a->finish_reason.len != 0 ? a->finish_reason.base : NULL, a->finish_reason.len));
    PUT(gyre_buf_appends(out, "}]"));
    if (a->has_usage) {
        PUT(gyre_buf_appends(out, ",\"usage\":"));
        PUT(put_usage(out, a->prompt_tokens, a->completion_tokens, a->total_tokens, a->cached_tokens));
    }
    PUT(gyre_buf_appends(out, "}"));
#undef PUT
    return 0;
}

/* --- the replay ----------------------------------------------------------- */

/* The parts of a chat.completion that a replay needs, borrowed from its parsed JSON. */
typedef struct replay {
    const char *id, *model;
    long long created;
} replay_t;

static const char *json_str(const cJSON *s)
{
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* Writes `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[` */
static int chunk_head(gyre_buf_t *o, const replay_t *rp)
{
    int r;
    if ((r = gyre_buf_appends(o, "data: {\"id\":")) != 0 || (r = put_str(o, rp->id, strlen(rp->id))) != 0 ||
        (r = gyre_buf_appendf(o, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":", rp->created)) !=
            0 ||
        (r = put_str(o, rp->model, strlen(rp->model))) != 0 || (r = gyre_buf_appends(o, ",\"choices\":[")) != 0)
        return r;
    return 0;
}

/* Writes a chunk whose only choice has `delta` (already JSON) and `finish` (already JSON). */
static int chunk_with_delta(gyre_buf_t *o, const replay_t *rp, const char *delta_head)
{
    int r;
    if ((r = chunk_head(o, rp)) != 0)
        return r;
    return gyre_buf_appendf(o, "{\"index\":0,\"delta\":%s", delta_head);
}

static int chunk_tail(gyre_buf_t *o, const char *finish)
{
    int r;
    if ((r = gyre_buf_appends(o, ",\"finish_reason\":")) != 0)
        return r;
    if ((r = put_str_or_null(o, finish, finish ? strlen(finish) : 0)) != 0)
        return r;
    return gyre_buf_appends(o, "}]}\n\n");
}

int gyre_openai_completion_to_sse(const char *completion, size_t len, int include_usage, gyre_buf_t *out)
{
    size_t start = out->len;
    int r = 0;
    cJSON *j = cJSON_ParseWithLength(completion, len);
    const cJSON *object = cJSON_GetObjectItemCaseSensitive(j, "object");
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(choice, "message");
    if (!cJSON_IsObject(j) || json_str(object) == NULL || strcmp(object->valuestring, "chat.completion") != 0 ||
        !cJSON_IsObject(message)) {
        cJSON_Delete(j);
        return -1;
    }
    replay_t rp = {json_str(cJSON_GetObjectItemCaseSensitive(j, "id")),
                   json_str(cJSON_GetObjectItemCaseSensitive(j, "model")),
                   json_ll(cJSON_GetObjectItemCaseSensitive(j, "created"))};
    if (rp.id == NULL)
        rp.id = "";
    if (rp.model == NULL)
        rp.model = "";
    const char *content = json_str(cJSON_GetObjectItemCaseSensitive(message, "content"));
    if (content != NULL && content[0] == '\0')
        content = NULL;
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(message, "tool_calls");
    int ncalls = cJSON_IsArray(calls) ? cJSON_GetArraySize(calls) : 0;
    const char *finish = json_str(cJSON_GetObjectItemCaseSensitive(choice, "finish_reason"));
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");

#define PUT(expr)                                                                                                      \
    do {                                                                                                               \
        if ((r = (expr)) != 0)                                                                                         \
            goto fail;                                                                                                 \
    } while (0)
    /* The role chunk: content "" as OpenAI sends it, null when the answer is tool calls only. */
    PUT(chunk_with_delta(out, &rp,
                         content == NULL && ncalls > 0 ? "{\"role\":\"assistant\",\"content\":null}"
                                                       : "{\"role\":\"assistant\",\"content\":\"\"}"));
    PUT(chunk_tail(out, NULL));
    if (content != NULL) {
        PUT(chunk_with_delta(out, &rp, "{\"content\":"));
        PUT(put_str(out, content, strlen(content)));
        PUT(gyre_buf_appends(out, "}"));
        PUT(chunk_tail(out, NULL));
    }
    int i = 0;
    const cJSON *call, *call_list = ncalls > 0 ? calls : NULL;
    cJSON_ArrayForEach(call, call_list)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const char *id = json_str(cJSON_GetObjectItemCaseSensitive(call, "id"));
        const char *name = json_str(cJSON_GetObjectItemCaseSensitive(fn, "name"));
        const char *args = json_str(cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
        id = id ? id : "";
        name = name ? name : "";
        args = args ? args : "";
        PUT(chunk_with_delta(out, &rp, "{\"tool_calls\":["));
        PUT(gyre_buf_appendf(out, "{\"index\":%d,\"id\":", i));
        PUT(put_str(out, id, strlen(id)));
        PUT(gyre_buf_appends(out, ",\"type\":\"function\",\"function\":{\"name\":"));
        PUT(put_str(out, name, strlen(name)));
        PUT(gyre_buf_appends(out, ",\"arguments\":"));
        PUT(put_str(out, args, strlen(args)));
        PUT(gyre_buf_appends(out, "}}]}"));
        PUT(chunk_tail(out, NULL));
        i++;
    }
    PUT(chunk_with_delta(out, &rp, "{}"));
    PUT(chunk_tail(out, finish));
    if (include_usage && cJSON_IsObject(usage)) {
        const cJSON *details = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
        PUT(chunk_head(out, &rp));
        PUT(gyre_buf_appends(out, "],\"usage\":"));
        PUT(put_usage(out, json_ll(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens")),
                      json_ll(cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens")),
                      json_ll(cJSON_GetObjectItemCaseSensitive(usage, "total_tokens")),
                      json_ll(cJSON_GetObjectItemCaseSensitive(details, "cached_tokens"))));
        PUT(gyre_buf_appends(out, "}\n\n"));
    }
    PUT(gyre_buf_appends(out, "data: [DONE]\n\n"));
#undef PUT
    cJSON_Delete(j);
    return 0;
fail:
    cJSON_Delete(j);
    return restore(out, start, r);
}
