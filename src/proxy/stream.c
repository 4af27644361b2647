/*
 * The stream pipeline.  A relayed stream (the client speaks the provider's
 * API) goes to the client as it came, watched for its proper end.  Any
 * other is read once into structured events (dialect/event.h) by the
 * provider's dialect, and each event goes through one sink: resume surgery
 * (a continuation's START dropped, the whitespace the prefill lost trimmed
 * off its first text), the accumulator (the trace, the cache, the next
 * resume), and the client dialect's encoder, which appends the client's
 * bytes to one reused buffer, sent once per read.  When both ends speak
 * OpenAI the provider's chunks go out as they came (CHUNK events), and the
 * encoder is used only where gyre must say something itself.
 */
#include <errno.h>

#include "proxy/proxy_int.h"

/* A stream line or event past SSE_EVENT_MAX: the attempt ends, whatever the stream's mode.  The parser would
 * refuse every later byte of the line anyway, so reading on is only work; the connection is closed (fail). */
void gyre_proxy_sse_too_large(gyre_proxy_t *self)
{
    gyre_api_error_t err;
    self->sse_failed = 1;
    gyre_api_error_set(&err, 502, "upstream_error", "stream_event_too_large", NULL,
                       "provider '%s' sent a stream line or event longer than %d bytes; gyre stopped reading it",
                       self->prov->name, SSE_EVENT_MAX);
    gyre_proxy_drop_conn(self, 0);
    gyre_proxy_fail(self, GYRE_OUTCOME_CUT, &err);
}

/* RELAY: watching a pass-through stream for its proper end, as the client's API defines it. */
void gyre_proxy_on_relay_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    gyre_proxy_t *self = ctx;
    self->relay_saw_event = 1;
    if (self->relay_acc)
        gyre_openai_accum_event(&self->acc, data, dlen);
    else if (self->dialect->speaks_openai && self->call->client->native_completion == NULL && dlen > 9 &&
             memmem(data, dlen, "\"usage\":{", 9) != NULL)
        gyre_trace_read_completion(self->call->trace, &self->req->pool, data, dlen); /* the usage chunk */
    if (self->call->client->stream_ends(event, elen, data, dlen)) {
        self->sse_done = 1;
        /* A native stream in another API ends with its whole answer (Responses' response.completed): the trace's. */
        if (self->call->client->native_completion != NULL && self->call->endpoint == GYRE_OPENAI_CHAT)
            gyre_proxy_keep_native_answer(self, data, dlen);
    }
}

/* A chunk of a stream whose usage gyre asked for carries "usage":null, which the client did not ask for.
 * Quotes inside JSON strings are escaped, so the unescaped bytes can only be the member itself. */
static void strip_null_usage(gyre_buf_t *s)
{
    static const char m[] = ",\"usage\":null";
    char *p = memmem(s->base, s->len, m, sizeof(m) - 1);
    if (p == NULL)
        return;
    size_t at = (size_t)(p - s->base), n = sizeof(m) - 1;
    memmove(p, p + n, s->len - at - n);
    s->len -= n;
}

/* Both ends speak OpenAI: the provider's chunk goes to the client as it came, less the usage gyre asked for. */
static int relay_chunk(gyre_proxy_t *self, const char *data, size_t len)
{
    gyre_buf_t *s = &self->scratch;
    size_t start = s->len;
    if (!self->call->include_usage && memmem(data, len, "\"choices\":[]", 12) != NULL &&
        memmem(data, len, "\"usage\":", 8) != NULL)
        return 0; /* the usage chunk the client did not ask for: the accumulator has it */
    int r = gyre_buf_appends(s, "data: ");
    r |= gyre_buf_append(s, data, len);
    if (r == 0 && self->usage_asked) {
        gyre_buf_t chunk = {s->base + start + 6, len, len, len, 0};
        strip_null_usage(&chunk);
        s->len = start + 6 + chunk.len;
    }
    r |= gyre_buf_appends(s, "\n\n");
    return r != 0 ? -1 : 0;
}

/* The sink every event of a STREAM attempt goes through, in order (see the file's comment). */
static int on_stream_event(void *ctx, const gyre_event_t *ev)
{
    gyre_proxy_t *self = ctx;
    gyre_event_t trimmed;
    if (self->resuming) {
        /* A continuation's events become the first answer's: the client had its START, and its own chunks
         * are not the client's (they would name another answer). */
        if (ev->type == GYRE_EVENT_START || ev->type == GYRE_EVENT_CHUNK)
            return 0;
        if (ev->type == GYRE_EVENT_TEXT && self->resume_ws.len != 0) {
            /* The client has the whitespace the prefill lost; a continuation that starts with it again would
             * double it. */
            size_t k = 0;
            while (k < ev->text.len && k < self->resume_ws.len && ev->text.p[k] == self->resume_ws.base[k])
                k++;
            gyre_buf_reset(&self->resume_ws);
            if (k == ev->text.len)
                return 0;
            trimmed = *ev;
            trimmed.text.p += k;
            trimmed.text.len -= k;
            ev = &trimmed;
        }
    }
    if (ev->type == GYRE_EVENT_CHUNK)
        return self->relay_chunks ? relay_chunk(self, ev->text.p, ev->text.len) : 0;
    /* The accumulator sees what the client sees, and the usage the client did not ask for. */
    gyre_openai_accum_emit(&self->acc, ev);
    if (self->relay_chunks && !self->resuming && ev->type != GYRE_EVENT_DONE)
        return 0; /* said by the chunk it came from */
    return self->call->client->encode(self->enc, ev, &self->scratch);
}

/* RELAY of a stream the trace reads decoded: its events go to the accumulator only. */
static int on_trace_event(void *ctx, const gyre_event_t *ev)
{
    gyre_proxy_t *self = ctx;
    return gyre_openai_accum_emit(&self->acc, ev);
}

/* Restarts an SSE parser (made with the proxy, so always initialised): each attempt's stream starts clean. */
void gyre_proxy_restart_sse(gyre_sse_parser_t *p, gyre_sse_event_cb cb, void *ctx)
{
    gyre_sse_dispose(p);
    gyre_sse_init(p, SSE_EVENT_MAX, cb, ctx);
}

/* The accumulator lives across attempts: a resumed stream continues what the first one started. */
void gyre_proxy_ensure_accum(gyre_proxy_t *self)
{
    if (!self->acc_inited) {
        self->acc_inited = 1;
        gyre_openai_accum_init(&self->acc, ACCUM_MAX);
    }
}

/* The client's encoder, in the request's pool: made once, it lives across attempts (a resumed stream goes on
 * in the same encoder).  Its defaults are what the answer so far said, else gyre's own id. */
static void ensure_encoder(gyre_proxy_t *self)
{
    const gyre_client_dialect_t *client = self->call->client;
    if (self->enc != NULL && !(self->relay_chunks && self->resuming))
        return;
    if (self->enc == NULL)
        self->enc = h2o_mem_alloc_pool(&self->req->pool, client->encoder_size);
    else if (client->encoder_dispose != NULL)
        client->encoder_dispose(self->enc); /* it said nothing yet: the relayed chunks did */
    /* An API that echoes its request in its answer (Responses) reads it again here, for encoder_init only. */
    const gyre_call_t *call = self->call;
    cJSON *request = client != &gyre_client_openai ? cJSON_ParseWithLength(call->body.base, call->body.len) : NULL;
    gyre_client_call_t cc = {
        .model = self->acc.model.len != 0 ? self->acc.model.base : NULL,
        .id = call->answer_id != NULL ? call->answer_id : self->acc.id.len != 0 ? self->acc.id.base : self->chat_id,
        .created = self->acc.created != 0 ? self->acc.created : self->created,
        .include_usage = call->include_usage,
        .request = request,
    };
    client->encoder_init(self->enc, &cc);
    cJSON_Delete(request);
}

void gyre_proxy_start_stream_mode(gyre_proxy_t *self)
{
    self->mode = MODE_STREAM;
    gyre_proxy_ensure_accum(self);
    /* Both ends speak OpenAI (a pass-through that needs its events for the cache or a resume): the chunks are
     * relayed, read by a lenient reader as the relay's watcher reads them. */
    int relay = self->passthrough && self->dialect->speaks_openai;
    if (relay) {
        gyre_openai_reader_dispose(&self->oreader); /* made with the proxy; each attempt's chunks start clean */
        gyre_openai_reader_init(&self->oreader, SSE_EVENT_MAX);
    } else {
        self->dstream = self->dialect->stream_create(&self->chat);
    }
    /* Once a stream's chunks were relayed, a continuation of it is encoded onto them. */
    self->relay_chunks = relay || (self->relay_chunks && self->resuming);
    ensure_encoder(self);
}

/* Whether the stream that reached the client has ended as its protocol says. */
int gyre_proxy_stream_complete(gyre_proxy_t *self)
{
    if (self->mode == MODE_RELAY)
        return self->sse_done;
    return self->enc != NULL && self->call->client->encoder_complete(self->enc);
}

void gyre_proxy_stream_bytes(gyre_proxy_t *self, const char *bytes, size_t len)
{
    gyre_event_sink_t sink = {on_stream_event, self};
    gyre_api_error_t err;
    int r;
    gyre_buf_reset(&self->scratch);
    if (self->dstream != NULL) {
        r = self->dialect->stream_feed(self->dstream, bytes, len, &sink, &err);
    } else {
        r = gyre_openai_reader_feed(&self->oreader, bytes, len, &sink);
        if (r == -E2BIG) {
            gyre_proxy_push_out(self, self->scratch.base, self->scratch.len);
            gyre_proxy_sse_too_large(self);
            return;
        }
        if (r != 0)
            gyre_api_error_set(&err, 502, "upstream_error", "bad_upstream_response", NULL,
                               "the stream of provider '%s' outgrew gyre's buffer", self->prov->name);
    }
    /* What the read made goes out at once, whole events only, before any error event. */
    gyre_proxy_push_out(self, self->scratch.base, self->scratch.len);
    if (r != 0) {
        if (err.status == 429 || err.status == 529)
            self->status = err.status;
        gyre_proxy_drop_conn(self, 0);
        gyre_proxy_fail(self, self->sent_body ? GYRE_OUTCOME_CUT : GYRE_OUTCOME_STATUS, &err);
    }
}

/* RELAY of a stream the trace reads decoded (the client speaks the provider's API, which is not OpenAI's): the
 * client gets the provider's bytes as they are.  A decoding error only ends the decoding. */
void gyre_proxy_decode_for_trace(gyre_proxy_t *self, const char *bytes, size_t len)
{
    gyre_event_sink_t sink = {on_trace_event, self};
    gyre_api_error_t err;
    if (self->dialect->stream_feed(self->dstream, bytes, len, &sink, &err) != 0)
        self->relay_decode = 0;
}
