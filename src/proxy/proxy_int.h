/*
 * The proxy's private half, shared by its files (the public half is proxy.h).
 *
 * One gyre_proxy_t per client request, in its pool.  An attempt goes
 * through: pick the next usable target and key → build the provider's
 * request → connect (or take a pooled connection) → read the head → read
 * the body in one of three modes:
 *
 *   RELAY   bytes go to the client as they come (a stream in the client's
 *           own dialect, and pass-through endpoints), watched for a proper end;
 *   BUFFER  the whole body is read first (non-streaming answers, and every
 *           error answer): a cut or failed answer can still fall back, and a
 *           translated one is translated whole;
 *   STREAM  a stream read into structured events by the provider's dialect
 *           and written in the client's by its encoder (or, when both
 *           speak OpenAI, relayed chunk by chunk with its events read for
 *           the cache and a resume); on a resumed attempt, stitched onto
 *           the first.
 *
 * Nothing reaches the client until an answer is known to be good (a stream:
 * its first event), which is what makes fallback invisible to it.
 *
 * The work is split by seam, one file each:
 *   proxy.c    the call's lifetime: start, the client leaving, the trace, dispose
 *   attempt.c  attempts down the plan: the connection, timers, failures and the next step
 *   request.c  the provider's request for the current attempt
 *   reply.c    the provider's answer as the upstream client reports it: head, body in the attempt's mode
 *   stream.c   the stream pipeline: SSE events, translation, resume surgery, accumulators
 *   relay.c    the answer to the client: headers, the send loop, whole and buffered answers
 */
#ifndef GYRE_PROXY_INT_H
#define GYRE_PROXY_INT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sse.h"
#include "common/timer.h"
#include "common/wire.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "dialect/openai.h"
#include "dialect/openai_stream.h"
#include "dialect/responses.h"
#include "proxy/compose.h"
#include "proxy/http1.h"
#include "proxy/http1client.h"
#include "proxy/proxy.h"
#include "proxy/respond.h"
#include "proxy/upstream.h"
#include "route/keys.h"
#include "route/next.h"
#include "trace/record.h"

/* Body bytes buffered for a slow client before gyre stops reading from the
 * provider (TCP then slows the provider down): the relay's memory bound. */
#define RELAY_HIGH_WATER (1024 * 1024)
/* An SSE line or event from a provider longer than this ends the attempt: a
 * 502 when no byte has reached the client (the route may fall back), else an
 * SSE error event and the end of the stream; the connection is closed.  Real
 * events are a few KB (a whole Gemini function call is one event); a line
 * that never ends would otherwise be read for ever. */
#define SSE_EVENT_MAX (1024 * 1024)
/* The most a translation may hold: the largest max_response_bytes allowed. */
#define BUFFER_MAX (1024 * 1024 * 1024)
/* An error answer (status 300 or more) longer than this ends the attempt with
 * a 502 naming the provider, and the connection is closed: no provider's real
 * error comes near it, and one whose body never ends would otherwise be read
 * for ever. */
#define ERROR_BODY_MAX (1024 * 1024)
/* What a stream accumulates for a resume or the cache. */
#define ACCUM_MAX (8 * 1024 * 1024)

typedef enum body_mode { MODE_RELAY = 0, MODE_BUFFER, MODE_STREAM } body_mode_t;

typedef struct gyre_proxy {
    h2o_generator_t super;
    h2o_req_t *req;
    gyre_ctx_t *worker; /* the worker's context (context.h) */
    gyre_wgen_t *gen;   /* the configuration the request began with, held until it is disposed (proxy/gen.h) */
    gyre_call_t *call;
    char chat_id[48]; /* "chatcmpl-..." for answers gyre translates */
    long long created;
    /* The walk down the plan: where it stands, as route/next.c decides it. */
    gyre_route_walk_t walk;
    unsigned attempts;     /* requests written to providers, all targets together */
    gyre_timer_t deadline_timer, backoff_timer, attempt_timer, first_byte_timer;
    /* The answer until its first byte goes to the client: the provider's timeout_ms in all (the idle bound,
     * the client's io_entry, alone would let a provider that trickles a byte at a time hold the attempt for ever). */
    gyre_timer_t answer_timer;
    /* The client's socket, watched for its close while the answer is pending (HTTP/1 only; NULL otherwise). */
    h2o_socket_t *client_watch;
    gyre_timer_t client_timer;
    /* The client's own socket (HTTP/1), left polled for reads while the call is in flight (see hold_client in
     * proxy.c), and this proxy's place in the worker's list of such sockets; NULL when not held. */
    h2o_socket_t *held;
    h2o_linklist_t held_link;
    int answered;        /* gyre gave h2o its final answer (an error, or a whole body) */
    /* The last failure, answered when nothing is left to try. */
    gyre_api_error_t last_err;
    int have_last_status; /* the last failure was a provider's error answer, kept in last_* below */
    int last_status;
    gyre_buf_t last_body;
    const gyre_provider_conf_t *last_provider;
    int last_passthrough;
    /* The current attempt. */
    const gyre_candidate_t *cand;
    const gyre_provider_conf_t *prov;
    const gyre_dialect_t *dialect;
    gyre_upstream_t *up;
    gyre_keypool_t *kp;
    int key_index;          /* -1: none taken */
    int relay_saw_event;    /* RELAY: a stream event (not just a comment) has come */
    int attempt_live;       /* counted in the target's in-flight figure */
    int passthrough;        /* the provider speaks the client's dialect and the body went as the client wrote it */
    cJSON *pivot;           /* the OpenAI-shaped request for a translated attempt */
    gyre_chat_call_t chat;  /* what the dialect was told */
    uint64_t attempt_started_ms;
    gyre_http1client_t client; /* the request to the provider and its answer (http1client.h) */
    gyre_buf_t uphead, upbody;
    h2o_iovec_t reqbufs[2];
    int status;
    uint64_t retry_after_ms;
    body_mode_t mode;
    gyre_buf_t body; /* BUFFER: the answer so far */
    gyre_dialect_stream_t *dstream;
    /* The relay to the client. */
    int response_started;
    int sent_body; /* any body byte handed to the client */
    h2o_buffer_t *recv;
    h2o_doublebuffer_t sending;
    int upstream_done;
    int had_body_error;
    int client_gone;
    int is_sse;
    int sse_done;
    int sse_failed;
    gyre_sse_parser_t sse; /* RELAY: watches for the stream's proper end (made with the proxy, restarted per attempt) */
    /* STREAM: the events, the accumulator they feed, and the client's encoder (in the pool, across attempts). */
    int acc_inited; /* a stream began accumulating (read as that: a resume, the cache and the trace ask it) */
    gyre_openai_accum_t acc;
    void *enc; /* NULL until a stream needs it, then made and initialised at once (ensure_encoder) */
    gyre_openai_reader_t oreader; /* both ends speak OpenAI: the relayed chunks, read (made with the proxy) */
    int relay_chunks;             /* ...and they go to the client as they came (CHUNK events) */
    uint64_t unavailable_retry_s; /* every target is resting: Retry-After for gyre's 503 */
    size_t own_headers;    /* res.headers[0 .. own_headers) are gyre's own (x-request-id) */
    h2o_iovec_t whole;     /* a whole answer, sent in one piece (deliver_whole) */
    h2o_headers_t err_headers; /* the last error answer's headers, relayed with it */
    int resuming;        /* this attempt continues a cut stream */
    gyre_buf_t resume_ws; /* whitespace trimmed off the end of the prefill, not yet seen again */
    gyre_trace_attempt_t *tattempt; /* the current attempt's line in the trace, or NULL */
    int fail_at_address;            /* the failure being recorded was the provider's socket: the trace names where */
    int relay_acc;        /* RELAY of a chat stream: the accumulator reads its events for the trace */
    int relay_decode;     /* RELAY of an Anthropic stream: its events are also decoded into OpenAI chunks for the
                           * trace (tokens, finish reason, the reassembled answer) */
    int usage_asked;      /* gyre added stream_options.include_usage to a pass-through stream for the trace:
                           * the usage chunk and the chunks' "usage":null are kept from the client */
    h2o_iovec_t trace_response; /* a whole answer as the trace keeps it (OpenAI's shape when translated) */
    gyre_buf_t scratch;
} gyre_proxy_t;

static inline uint64_t gyre_proxy_now_ms(gyre_proxy_t *self)
{
    return h2o_now(self->worker->ctx.loop);
}

static inline const gyre_config_t *gyre_proxy_config(gyre_proxy_t *self)
{
    return self->gen->gen->config;
}

/* attempt.c: attempts down the plan: the connection, timers, failures and the next step. */
void gyre_proxy_drop_conn(gyre_proxy_t *self, int reusable);
void gyre_proxy_end_attempt(gyre_proxy_t *self);
void gyre_proxy_record_outcome(gyre_proxy_t *self, int ok, int rate_limited);
void gyre_proxy_attempt_failed(gyre_proxy_t *self, gyre_route_outcome_kind_t fc, const gyre_api_error_t *err);
void gyre_proxy_stream_failed(gyre_proxy_t *self, gyre_route_outcome_kind_t fc, const gyre_api_error_t *err);
void gyre_proxy_fail(gyre_proxy_t *self, gyre_route_outcome_kind_t fc, const gyre_api_error_t *err);
void gyre_proxy_fail_upstream(gyre_proxy_t *self, gyre_http1client_phase_t phase, const char *errstr);
void gyre_proxy_on_deadline(gyre_timer_t *t);
void gyre_proxy_start_attempt(gyre_proxy_t *self);

/* The answer failed a guardrail whose action is retry (guard.c): the attempt counts as failed, and the route's
 * next target is tried; none left: `err` is the answer. */
void gyre_proxy_answer_rejected(gyre_proxy_t *self, const gyre_api_error_t *err);

/* guard.c: guardrails on the answer.  The first two return 1 when they answered (deny) or moved on (retry). */
int gyre_proxy_guard_wants(gyre_proxy_t *self);
int gyre_proxy_guard_answer(gyre_proxy_t *self, const char *openai, size_t len);
int gyre_proxy_guard_passthrough(gyre_proxy_t *self);
void gyre_proxy_guard_stream_end(gyre_proxy_t *self);

/* request.c: the provider's request for the current attempt. */
int gyre_proxy_build_request(gyre_proxy_t *self, const char *key, gyre_api_error_t *err);

/* reply.c: the provider's answer as the upstream client reports it: head, body in the attempt's mode. */
extern const gyre_http1client_callbacks_t gyre_proxy_client_callbacks;

/* stream.c: the stream pipeline: SSE events, translation, resume surgery, accumulators. */
void gyre_proxy_sse_too_large(gyre_proxy_t *self);
void gyre_proxy_on_relay_sse_event(void *ctx, const char *event, size_t elen, const char *data, size_t dlen);
void gyre_proxy_restart_sse(gyre_sse_parser_t *p, gyre_sse_event_cb cb, void *ctx);
void gyre_proxy_ensure_accum(gyre_proxy_t *self);
void gyre_proxy_start_stream_mode(gyre_proxy_t *self);
int gyre_proxy_stream_complete(gyre_proxy_t *self);
void gyre_proxy_stream_bytes(gyre_proxy_t *self, const char *bytes, size_t len);
void gyre_proxy_decode_for_trace(gyre_proxy_t *self, const char *bytes, size_t len);

/* relay.c: the answer to the client: headers, the send loop, whole and buffered answers. */
void gyre_proxy_add_gyre_headers(gyre_proxy_t *self);
void gyre_proxy_log_error(gyre_proxy_t *self, const gyre_api_error_t *err);
void gyre_proxy_respond_error(gyre_proxy_t *self, const gyre_api_error_t *err);
void gyre_proxy_do_send(gyre_proxy_t *self);
void gyre_proxy_push_out(gyre_proxy_t *self, const char *bytes, size_t len);
void gyre_proxy_start_client_response(gyre_proxy_t *self);
void gyre_proxy_on_proceed(h2o_generator_t *generator, h2o_req_t *req);
void gyre_proxy_finish_client_stream(gyre_proxy_t *self, const gyre_api_error_t *err);
void gyre_proxy_store_in_cache(gyre_proxy_t *self, const char *completion, size_t len);
void gyre_proxy_deliver_whole(gyre_proxy_t *self, const char *body, size_t len, const char *content_type);
void gyre_proxy_deliver_buffered(gyre_proxy_t *self);
void gyre_proxy_keep_native_answer(gyre_proxy_t *self, const char *p, size_t len);

#endif
