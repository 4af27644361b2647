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
#include "common/json.h"

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

/* --- the reader: OpenAI SSE → events ------------------------------------- */

/* Choices past this are not read: a bit each in `started`. */
#define MAX_CHOICES 64

static int reader_emit(gyre_openai_reader_t *r, const gyre_event_t *ev)
{
    if (r->stopped)
        return -1;
    if (ev->type == GYRE_EVENT_START)
        r->named |= (ev->id.len != 0 ? 1u : 0u) | (ev->model.len != 0 ? 2u : 0u) | (ev->created != 0 ? 4u : 0u);
    if (r->sink->emit(r->sink->ctx, ev) != 0) {
        r->stopped = 1;
        return -1;
    }
    return 0;
}

static gyre_str_t str_of(const cJSON *s)
{
    if (!cJSON_IsString(s))
        return (gyre_str_t){"", 0};
    return (gyre_str_t){s->valuestring, strlen(s->valuestring)};
}

static int str_is(const cJSON *s, const char *lit)
{
    return cJSON_IsString(s) && strcmp(s->valuestring, lit) == 0;
}

/* An error chunk's ERROR event: its status from OpenAI's error type (what an SDK of another API maps it to). */
static int reader_error(gyre_openai_reader_t *r, const cJSON *error)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(error, "type");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");
    int status = str_is(type, "invalid_request_error")                                    ? 400
                 : str_is(type, "authentication_error")                                   ? 401
                 : str_is(type, "permission_error")                                       ? 403
                 : str_is(type, "rate_limit_error") || str_is(code, "rate_limit_exceeded") ? 429
                 : str_is(type, "overloaded_error")                                       ? 529
                                                                                          : 500;
    gyre_api_error_set(&r->error, status, "upstream_error", NULL, NULL, "%s",
                       cJSON_IsString(message) && message->valuestring[0] != '\0'
                           ? message->valuestring
                           : "the provider's stream ended with an error");
    gyre_event_t ev = {.type = GYRE_EVENT_ERROR, .error = &r->error};
    return reader_emit(r, &ev);
}

static int reader_tool_calls(gyre_openai_reader_t *r, int choice, const cJSON *calls)
{
    long long pos = 0;
    const cJSON *call;
    cJSON_ArrayForEach(call, calls)
    {
        /* Some OpenAI-compatible servers leave out `index`; the position in the array is then the best guess. */
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(call, "index");
        long long i = cJSON_IsNumber(index) ? json_ll(index) : pos;
        pos++;
        if (i < 0)
            continue;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        gyre_event_t ev = {.choice = choice,
                           .index = i > 1000000 ? 1000000 : (int)i, /* past any bound a consumer keeps */
                           .id = str_of(cJSON_GetObjectItemCaseSensitive(call, "id")),
                           .name = str_of(cJSON_GetObjectItemCaseSensitive(fn, "name")),
                           .text = str_of(cJSON_GetObjectItemCaseSensitive(fn, "arguments"))};
        if (ev.id.len != 0 || ev.name.len != 0)
            ev.type = GYRE_EVENT_TOOL_START;
        else if (ev.text.len != 0)
            ev.type = GYRE_EVENT_TOOL_ARGS;
        else
            continue;
        if (reader_emit(r, &ev) != 0)
            return -1;
    }
    return 0;
}

static int reader_usage(gyre_openai_reader_t *r, const cJSON *u)
{
    gyre_event_t ev = {.type = GYRE_EVENT_USAGE};
    gyre_usage_t *g = &ev.usage;
    g->input_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
    g->output_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
    g->total_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details");
    const cJSON *cw = cJSON_GetObjectItemCaseSensitive(u, "cache_creation_input_tokens");
    if (cJSON_IsObject(pd)) {
        g->details |= GYRE_USAGE_CACHED;
        g->cached_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(pd, "cached_tokens"));
    }
    if (cJSON_IsObject(cd)) {
        g->details |= GYRE_USAGE_REASONING;
        g->reasoning_tokens = json_ll(cJSON_GetObjectItemCaseSensitive(cd, "reasoning_tokens"));
    }
    if (cw != NULL) {
        g->details |= GYRE_USAGE_CACHE_WRITE;
        g->cache_write_tokens = json_ll(cw);
    }
    return reader_emit(r, &ev);
}

static int reader_chunk(gyre_openai_reader_t *r, const cJSON *j)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (error != NULL)
        return reader_error(r, error);
    gyre_str_t id = str_of(cJSON_GetObjectItemCaseSensitive(j, "id"));
    gyre_str_t model = str_of(cJSON_GetObjectItemCaseSensitive(j, "model"));
    long long created = json_ll(cJSON_GetObjectItemCaseSensitive(j, "created"));
    const cJSON *choice;
    cJSON_ArrayForEach(choice, cJSON_GetObjectItemCaseSensitive(j, "choices"))
    {
        /* With n > 1 each chunk carries the choices that moved, each with its own index; none counts as 0. */
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(choice, "index");
        long long c = index == NULL ? 0 : json_ll(index);
        if (c < 0 || c >= MAX_CHOICES)
            continue;
        if (!(r->started & (1ull << c))) {
            r->started |= 1ull << c;
            gyre_event_t ev = {.type = GYRE_EVENT_START, .choice = (int)c, .id = id, .model = model,
                               .created = created};
            if (reader_emit(r, &ev) != 0)
                return -1;
        }
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        gyre_str_t text = str_of(cJSON_GetObjectItemCaseSensitive(delta, "content"));
        if (text.len != 0) {
            gyre_event_t ev = {.type = GYRE_EVENT_TEXT, .choice = (int)c, .text = text};
            if (reader_emit(r, &ev) != 0)
                return -1;
        }
        if (reader_tool_calls(r, (int)c, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) != 0)
            return -1;
        const cJSON *finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (cJSON_IsString(finish)) {
            gyre_event_t ev = {.type = GYRE_EVENT_FINISH, .choice = (int)c, .finish_reason = finish->valuestring};
            if (reader_emit(r, &ev) != 0)
                return -1;
        }
    }
    /* A first chunk without choices (usage alone, say) still begins the answer; a later chunk that first names
     * the id, model or created the first START lacked says them in a repeated START (the accumulator keeps the
     * first it gets; encoders use a choice's first START only). */
    if (r->started == 0 || (id.len != 0 && !(r->named & 1)) || (model.len != 0 && !(r->named & 2)) ||
        (created != 0 && !(r->named & 4))) {
        r->started |= 1;
        gyre_event_t ev = {.type = GYRE_EVENT_START, .id = id, .model = model, .created = created};
        if (reader_emit(r, &ev) != 0)
            return -1;
    }
    /* Usage comes in a last chunk with no choices, or as null on every chunk before it. */
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(usage))
        return reader_usage(r, usage);
    return 0;
}

int gyre_openai_reader_data(gyre_openai_reader_t *r, const char *data, size_t len, const gyre_event_sink_t *sink)
{
    const gyre_event_sink_t *outer = r->sink;
    r->sink = sink;
    int rc = 0;
    if (r->stopped) {
        rc = -1;
    } else if (r->done) {
        rc = 0; /* after [DONE] nothing is the stream's */
    } else if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        r->done = 1;
        gyre_event_t ev = {.type = GYRE_EVENT_DONE};
        rc = reader_emit(r, &ev);
    } else {
        gyre_event_t chunk = {.type = GYRE_EVENT_CHUNK, .text = {data, len}};
        rc = reader_emit(r, &chunk);
        if (rc == 0) {
            /* The chunk's values live in the per-thread JSON arena until the event's last emit returns. */
            int scope = gyre_json_arena_enter();
            cJSON *j = cJSON_ParseWithLength(data, len);
            if (cJSON_IsObject(j)) {
                rc = reader_chunk(r, j);
            } else if (r->strict) {
                gyre_api_error_set(&r->error, 502, "upstream_error", "bad_upstream_response", NULL, "%s",
                                   "the provider's stream sent an event that is not JSON");
                r->stopped = r->bad = 1;
                rc = -EBADMSG;
            }
            cJSON_Delete(j);
            if (scope)
                gyre_json_arena_end();
        }
    }
    r->sink = outer;
    return rc;
}

static void reader_sse_cb(void *ctx, const char *event, size_t event_len, const char *data, size_t data_len)
{
    gyre_openai_reader_t *r = ctx;
    (void)event, (void)event_len;
    r->events++;
    if (!r->stopped)
        gyre_openai_reader_data(r, data, data_len, r->sink);
}

void gyre_openai_reader_init(gyre_openai_reader_t *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    gyre_sse_init(&r->sse, max, reader_sse_cb, r);
}

void gyre_openai_reader_dispose(gyre_openai_reader_t *r)
{
    gyre_sse_dispose(&r->sse);
}

int gyre_openai_reader_feed(gyre_openai_reader_t *r, const char *bytes, size_t len, const gyre_event_sink_t *sink)
{
    if (r->stopped)
        return -1;
    if (r->done)
        return 0; /* bytes after [DONE] do not matter, even ones past the bound */
    r->sink = sink;
    int rc = gyre_sse_feed(&r->sse, bytes, len);
    r->sink = NULL;
    if (r->done && !r->stopped)
        return 0;
    if (r->bad)
        return -EBADMSG;
    if (r->stopped)
        return -1;
    return rc;
}

/* --- the accumulator ------------------------------------------------------ */

void gyre_openai_accum_init(gyre_openai_accum_t *a, size_t max)
{
    memset(a, 0, sizeof(*a));
    gyre_openai_reader_init(&a->reader, max);
    gyre_buf_init(&a->id, max);
    gyre_buf_init(&a->model, max);
    gyre_buf_init(&a->content, max);
    gyre_buf_init(&a->finish_reason, max);
}

void gyre_openai_accum_dispose(gyre_openai_accum_t *a)
{
    gyre_openai_reader_dispose(&a->reader);
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

/*
 * Appends a piece of text to one of the accumulated strings.  Once anything
 * has hit the bound nothing more is appended anywhere: a completion with a
 * hole in the middle would be worse than one that visibly stops.
 */
static void accum_append(gyre_openai_accum_t *a, gyre_buf_t *b, gyre_str_t s)
{
    if (s.len == 0 || a->truncated)
        return;
    if (gyre_buf_append(b, s.p, s.len) != 0)
        a->truncated = 1;
}

/* Sets `b` from `s` unless it is already set: ids and names come from the first event that carries them. */
static void accum_first(gyre_openai_accum_t *a, gyre_buf_t *b, gyre_str_t s)
{
    if (b->len != 0 || s.len == 0)
        return;
    if (gyre_buf_append(b, s.p, s.len) != 0)
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

/* What one event adds to the accumulation. */
static int accum_apply(void *ctx, const gyre_event_t *ev)
{
    gyre_openai_accum_t *a = ctx;
    gyre_openai_tool_acc_t *t;
    if (ev->choice != 0)
        return 0; /* with n > 1 the others are not kept */
    switch (ev->type) {
    case GYRE_EVENT_START:
        accum_first(a, &a->id, ev->id);
        accum_first(a, &a->model, ev->model);
        if (a->created == 0)
            a->created = ev->created;
        break;
    case GYRE_EVENT_TEXT: accum_append(a, &a->content, ev->text); break;
    case GYRE_EVENT_TOOL_START:
    case GYRE_EVENT_TOOL_ARGS:
        if (ev->index < 0 || (t = accum_tool(a, (size_t)ev->index)) == NULL)
            break;
        accum_first(a, &t->id, ev->id);
        accum_first(a, &t->name, ev->name);
        accum_append(a, &t->arguments, ev->text);
        break;
    case GYRE_EVENT_FINISH:
        gyre_buf_reset(&a->finish_reason);
        if (ev->finish_reason != NULL && gyre_buf_appends(&a->finish_reason, ev->finish_reason) != 0)
            a->truncated = 1;
        break;
    case GYRE_EVENT_USAGE:
        a->has_usage = 1;
        a->prompt_tokens = ev->usage.input_tokens;
        a->completion_tokens = ev->usage.output_tokens;
        a->total_tokens = ev->usage.total_tokens;
        a->cached_tokens = ev->usage.cached_tokens;
        break;
    case GYRE_EVENT_ERROR: a->errored = 1; break;
    case GYRE_EVENT_DONE: a->done = 1; break;
    case GYRE_EVENT_CHUNK: break;
    }
    return 0;
}

int gyre_openai_accum_emit(void *ctx, const gyre_event_t *ev)
{
    gyre_openai_accum_t *a = ctx;
    if (ev->type != GYRE_EVENT_CHUNK)
        a->events++;
    return accum_apply(a, ev);
}

static const gyre_event_sink_t accum_own_sink_template = {accum_apply, NULL};

int gyre_openai_accum_feed(gyre_openai_accum_t *a, const char *bytes, size_t len)
{
    gyre_event_sink_t sink = accum_own_sink_template;
    sink.ctx = a;
    /* Each SSE event counts once, whatever it holds. */
    size_t before = a->reader.events;
    int r = gyre_openai_reader_feed(&a->reader, bytes, len, &sink);
    a->events += a->reader.events - before;
    if (r == -E2BIG)
        a->truncated = 1; /* an event was lost whole */
    return r == -E2BIG ? r : 0;
}

void gyre_openai_accum_event(gyre_openai_accum_t *a, const char *data, size_t len)
{
    gyre_event_sink_t sink = accum_own_sink_template;
    sink.ctx = a;
    a->events++;
    gyre_openai_reader_data(&a->reader, data, len, &sink);
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

/* --- the encoder: events → OpenAI chunks ----------------------------------- */

/* The chunk head holds an id and a model: past this the provider's values are not ones to repeat per chunk. */
#define ENCODER_HEAD_MAX (64 * 1024)

static int encoder_set_head(gyre_openai_encoder_t *e, const char *id, size_t id_len, const char *model,
                            size_t model_len, long long created)
{
    gyre_buf_reset(&e->head);
    int r = gyre_buf_appends(&e->head, "{\"id\":");
    r |= put_str(&e->head, id, id_len);
    r |= gyre_buf_appendf(&e->head, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":", created);
    r |= put_str(&e->head, model, model_len);
    return r != 0 ? -1 : 0;
}

void gyre_openai_encoder_init(gyre_openai_encoder_t *e, const char *id, const char *model, long long created,
                              int include_usage)
{
    memset(e, 0, sizeof(*e));
    gyre_buf_init(&e->head, ENCODER_HEAD_MAX);
    e->include_usage = include_usage;
    id = id != NULL ? id : "";
    model = model != NULL ? model : "";
    encoder_set_head(e, id, strlen(id), model, strlen(model), created);
}

void gyre_openai_encoder_dispose(gyre_openai_encoder_t *e)
{
    gyre_buf_dispose(&e->head);
}

/* "data: {head,"choices":[{"index":C,"delta":" */
static int encoder_open(const gyre_openai_encoder_t *e, gyre_buf_t *o, int choice)
{
    int r = gyre_buf_appends(o, "data: ");
    r |= gyre_buf_append(o, e->head.base, e->head.len);
    r |= gyre_buf_appendf(o, ",\"choices\":[{\"index\":%d,\"delta\":", choice);
    return r;
}

/* ...","finish_reason":...}]}\n\n" */
static int encoder_close(gyre_buf_t *o, const char *finish)
{
    if (finish == NULL)
        return gyre_buf_appends(o, ",\"finish_reason\":null}]}\n\n");
    int r = gyre_buf_appends(o, ",\"finish_reason\":");
    r |= put_str(o, finish, strlen(finish));
    r |= gyre_buf_appends(o, "}]}\n\n");
    return r;
}

/* OpenAI's usage object with the optional members the provider reported, in the order the dialects wrote them. */
static int encoder_usage(gyre_buf_t *o, const gyre_usage_t *u)
{
    int r = gyre_buf_appendf(o, "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld",
                             u->input_tokens, u->output_tokens, u->total_tokens);
    if (u->details & GYRE_USAGE_CACHED)
        r |= gyre_buf_appendf(o, ",\"prompt_tokens_details\":{\"cached_tokens\":%lld}", u->cached_tokens);
    if (u->details & GYRE_USAGE_REASONING)
        r |= gyre_buf_appendf(o, ",\"completion_tokens_details\":{\"reasoning_tokens\":%lld}", u->reasoning_tokens);
    if (u->details & GYRE_USAGE_CACHE_WRITE)
        r |= gyre_buf_appendf(o, ",\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld",
                              u->cache_write_tokens, u->cached_tokens);
    r |= gyre_buf_appends(o, "}");
    return r;
}

int gyre_openai_encode(gyre_openai_encoder_t *e, const gyre_event_t *ev, gyre_buf_t *out)
{
    size_t start = out->len;
    int r = 0;
    switch (ev->type) {
    case GYRE_EVENT_START:
        if (ev->choice >= 0 && ev->choice < 64) {
            if (e->started & (1ull << ev->choice))
                return 0; /* a repeated START only names what the first lacked */
            e->started |= 1ull << ev->choice;
        }
        if (!e->have_start) {
            e->have_start = 1;
            if (encoder_set_head(e, ev->id.p, ev->id.len, ev->model.p, ev->model.len, ev->created) != 0)
                return -1;
        }
        r |= encoder_open(e, out, ev->choice);
        r |= gyre_buf_appends(out, "{\"role\":\"assistant\",\"content\":\"\"}");
        r |= encoder_close(out, NULL);
        break;
    case GYRE_EVENT_TEXT:
        r |= encoder_open(e, out, ev->choice);
        r |= gyre_buf_appends(out, "{\"content\":");
        r |= put_str(out, ev->text.p, ev->text.len);
        r |= gyre_buf_appends(out, "}");
        r |= encoder_close(out, NULL);
        break;
    case GYRE_EVENT_TOOL_START:
        r |= encoder_open(e, out, ev->choice);
        r |= gyre_buf_appendf(out, "{\"tool_calls\":[{\"index\":%d,\"id\":", ev->index);
        r |= put_str(out, ev->id.p, ev->id.len);
        r |= gyre_buf_appends(out, ",\"type\":\"function\",\"function\":{\"name\":");
        r |= put_str(out, ev->name.p, ev->name.len);
        r |= gyre_buf_appends(out, ",\"arguments\":");
        r |= put_str(out, ev->text.p, ev->text.len);
        r |= gyre_buf_appends(out, "}}]}");
        r |= encoder_close(out, NULL);
        break;
    case GYRE_EVENT_TOOL_ARGS:
        r |= encoder_open(e, out, ev->choice);
        r |= gyre_buf_appendf(out, "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", ev->index);
        r |= put_str(out, ev->text.p, ev->text.len);
        r |= gyre_buf_appends(out, "}}]}");
        r |= encoder_close(out, NULL);
        break;
    case GYRE_EVENT_FINISH:
        r |= encoder_open(e, out, ev->choice);
        r |= gyre_buf_appends(out, "{}");
        r |= encoder_close(out, ev->finish_reason != NULL ? ev->finish_reason : "stop");
        break;
    case GYRE_EVENT_USAGE:
        if (!e->include_usage)
            return 0;
        r |= gyre_buf_appends(out, "data: ");
        r |= gyre_buf_append(out, e->head.base, e->head.len);
        r |= gyre_buf_appends(out, ",\"choices\":[],\"usage\":");
        r |= encoder_usage(out, &ev->usage);
        r |= gyre_buf_appends(out, "}\n\n");
        break;
    case GYRE_EVENT_DONE:
        r |= gyre_buf_appends(out, "data: [DONE]\n\n");
        if (r == 0)
            e->complete = 1;
        break;
    case GYRE_EVENT_ERROR:
    case GYRE_EVENT_CHUNK: return 0;
    }
    return r != 0 ? restore(out, start, -1) : 0;
}
