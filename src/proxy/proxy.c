/*
 * The proxy's entry and the call's lifetime (see proxy.h, proxy_int.h): the
 * call starts here, the client's socket is watched for its close (which
 * cancels everything done for it), and when h2o disposes the request its
 * trace is finished and everything the call held is let go.
 */
#include "proxy/proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>

#include "proxy/proxy_int.h"

/* h2o's HTTP/1 connection reads nothing from its client until the answer is
 * written, so gyre watches the client's socket itself for its close (see
 * on_watch_start); an answer quicker than this never pays for the watch. */
#define CLIENT_WATCH_AFTER_MS 50
/* Once the client sent bytes of its own (a pipelined request, a TLS alert)
 * the socket stays readable: the watch then polls for the close this often. */
#define CLIENT_POLL_MS 1000

static void on_held_read(h2o_socket_t *sock, const char *err);

/* This worker's proxies that hold their client's socket (a worker is one thread). */
static h2o_linklist_t *held_list(void)
{
    static __thread h2o_linklist_t anchor;
    if (anchor.next == NULL)
        h2o_linklist_init_anchor(&anchor);
    return &anchor;
}

/* Lets go of the client's socket.  Within the loop iteration in which h2o starts reading it again for the next
 * request (it does so right after disposing this one), the stop and the start cancel out: no system call. */
static void release_hold(gyre_proxy_t *self)
{
    if (self->held == NULL)
        return;
    h2o_linklist_unlink(&self->held_link);
    if (self->held->_cb.read == on_held_read) {
        h2o_socket_read_stop(self->held);
        h2o_socket_dont_read(self->held, 0);
    }
    self->held = NULL;
}

static void stop_client_watch(gyre_proxy_t *self)
{
    release_hold(self);
    gyre_timer_stop(&self->client_timer);
    if (self->client_watch != NULL) {
        h2o_socket_close(self->client_watch); /* its own descriptor, a duplicate: the client's stays h2o's */
        self->client_watch = NULL;
    }
}

/*
 * The client went away before its answer was complete: everything done for
 * it stops at once.  The current attempt's connection is closed (never
 * pooled: the provider is mid-answer), no timer is left to start another
 * attempt, a backoff or a fallback, and the trace (written when h2o disposes
 * the request) says 499 with the attempt that was cut.
 */
static void cancel_for_client(gyre_proxy_t *self)
{
    if (self->client_gone)
        return;
    self->client_gone = 1;
    if (self->tattempt != NULL && self->tattempt->error.len == 0)
        self->tattempt->error = gyre_tstr_dup(&self->req->pool, H2O_STRLIT("the client closed the request before its answer"));
    gyre_proxy_drop_conn(self, 0);
    gyre_proxy_end_attempt(self);
    gyre_timer_stop(&self->backoff_timer);
    gyre_timer_stop(&self->deadline_timer);
    stop_client_watch(self);
}

/* The watch saw the client's close.  The last thing its callers do: the answer may dispose the request. */
static void client_left(gyre_proxy_t *self)
{
    stop_client_watch(self);
    if (self->client_gone || self->answered)
        return;
    cancel_for_client(self);
    h2o_req_t *req = self->req;
    if (!self->response_started) {
        /* h2o holds the request until it has an answer to write: a last one, which the client will not read,
         * makes it close the connection and dispose the request. */
        self->answered = 1;
        h2o_send_error_generic(req, 499, "Client Closed Request", "", H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
    } else if (self->sending.bytes_inflight == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR); /* may dispose the request, and `self`, at once */
    }
    /* else the send in flight ends it: gyre_proxy_on_proceed, or its failure (on_stop) */
}

/* Whether the client's end of the connection is closed (or failed), without reading what it may have sent. */
static int client_closed(h2o_socket_t *watch)
{
    struct pollfd p = {h2o_socket_get_fd(watch), POLLRDHUP, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void on_client_poll(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, client_timer, t);
    if (client_closed(self->client_watch)) {
        client_left(self);
        return;
    }
    gyre_timer_start(&self->worker->timers, &self->client_timer, CLIENT_POLL_MS, on_client_poll);
}

static void on_client_event(h2o_socket_t *watch, const char *err)
{
    gyre_proxy_t *self = watch->data;
    if (err != NULL || client_closed(watch)) {
        client_left(self);
        return;
    }
    /* Bytes from the client while its answer is pending (a pipelined request, or a TLS record ahead of the
     * close): they are h2o's to read, for the next request, and the socket stays readable until then, so the
     * watch turns to polling for the close. */
    h2o_socket_read_stop(watch);
    gyre_timer_start(&self->worker->timers, &self->client_timer, CLIENT_POLL_MS, on_client_poll);
}

/*
 * h2o 2.2's HTTP/1 connection stops reading its socket once a request is
 * read, and notices the client's close only when a write fails: before the
 * first byte of the answer, never.  So the proxy watches a duplicate of the
 * client's descriptor with h2o's DONT_READ flag, which reports readiness and
 * reads nothing (the client's bytes stay h2o's); since the client's own
 * socket is held from the start (hold_client), the watch is needed only once
 * the client has sent bytes that end the hold.  HTTP/2 needs none of this:
 * h2o reads that connection throughout and disposes a request whose stream or
 * connection closes (on_dispose).
 */
static void start_watch(gyre_proxy_t *self)
{
    h2o_req_t *req = self->req;
    if (self->answered || self->client_gone || req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd = sock != NULL ? fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0)
        return; /* out of descriptors: the close is then noticed at the first write, as h2o does by itself */
    self->client_watch = h2o_evloop_socket_create(self->worker->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    self->client_watch->data = self;
    h2o_socket_read_start(self->client_watch, on_client_event);
}

static void on_watch_start(gyre_timer_t *t)
{
    gyre_proxy_t *self = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, client_timer, t);
    if (self->held == NULL) /* the held socket reports the close itself */
        start_watch(self);
}

/* The held socket is readable: the client closed, or sent bytes while its answer is pending (nothing was read). */
static void on_held_read(h2o_socket_t *sock, const char *err)
{
    gyre_proxy_t *self = NULL;
    for (h2o_linklist_t *l = held_list()->next; l != held_list(); l = l->next) {
        gyre_proxy_t *p = H2O_STRUCT_FROM_MEMBER(gyre_proxy_t, held_link, l);
        if (p->held == sock) {
            self = p;
            break;
        }
    }
    if (self == NULL) {
        /* No proxy holds it (cannot happen): leave it to h2o, as h2o left it (not reading). */
        h2o_socket_read_stop(sock);
        h2o_socket_dont_read(sock, 0);
        return;
    }
    int closed = err != NULL || client_closed(sock);
    release_hold(self);
    if (closed) {
        client_left(self);
        return;
    }
    /* Bytes (a pipelined request, a TLS record ahead of a close) are h2o's, for the next request, and stay in the
     * kernel, unread: the socket would stay readable, so the hold ends and the duplicate watch, which polls once
     * the socket is readable, takes over (now, if its time has come). */
    if (!gyre_timer_is_active(&self->client_timer) && self->client_watch == NULL)
        start_watch(self);
}

/*
 * h2o's HTTP/1 server stops reading the client's socket once a request is in
 * and starts again once its answer is written: two epoll_ctl calls per
 * proxied request (the answer comes in a later loop iteration), which nginx's
 * edge-triggered loop does not make.  Reading on from the start of the call,
 * in the same iteration as h2o's stop, cancels both out (h2o's evloop applies
 * a socket's changes once per iteration), and the close is seen as it
 * happens, with no duplicate descriptor.  The socket is polled with h2o's
 * DONT_READ flag: readiness is reported and nothing is read, because h2o's
 * request (its path, headers and body) points into the socket's input
 * buffer, which a read could move.  Whatever the client sends ends the hold
 * (on_held_read).  docs/decisions.md has the figures.
 */
static void hold_client(gyre_proxy_t *self)
{
    h2o_req_t *req = self->req;
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || h2o_socket_is_reading(sock))
        return;
    self->held = sock;
    h2o_linklist_insert(held_list(), &self->held_link);
    h2o_socket_dont_read(sock, 1);
    h2o_socket_read_start(sock, on_held_read);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    gyre_proxy_t *self = (void *)generator;
    (void)req;
    /* The client went away mid-answer (h2o's write failed): stop the provider's work too. */
    cancel_for_client(self);
}

/* The request is over: its trace gets the outcome and goes to the writer. */
static void finish_trace(gyre_proxy_t *self)
{
    gyre_trace_t *t = self->call->trace;
    h2o_req_t *req = self->req;
    h2o_mem_pool_t *pool = &req->pool;
    const gyre_call_t *call = self->call;
    t->ended_us = gyre_trace_now_us();
    /* 499: the client closed the request before its answer (nginx's convention). */
    t->status = self->client_gone && !self->upstream_done ? 499 : req->res.status;
    t->stream = call->stream;
    if (call->route_name != NULL)
        t->route = gyre_tstr_dup(pool, call->route_name, strlen(call->route_name));
    if (self->prov != NULL)
        t->provider = gyre_tstr_dup(pool, self->prov->name, strlen(self->prov->name));
    if (self->cand != NULL)
        t->model = gyre_tstr_dup(pool, self->cand->model, self->cand->model_len);
    if (call->capture && (call->endpoint == GYRE_OPENAI_CHAT || call->endpoint == GYRE_OPENAI_EMBEDDINGS))
        t->request_body = (gyre_tstr_t){call->body.base, call->body.len};
    if (self->acc_inited && self->acc.events != 0) {
        gyre_buf_t c;
        gyre_buf_init(&c, ACCUM_MAX * 2);
        if (gyre_openai_accum_completion(&self->acc, &c) == 0) {
            if (call->capture)
                t->response_body = gyre_tstr_dup(pool, c.base, c.len);
            gyre_trace_read_completion(t, pool, c.base, c.len);
        }
        gyre_buf_dispose(&c);
    } else if (self->trace_response.base != NULL) {
        t->response_body = (gyre_tstr_t){self->trace_response.base, self->trace_response.len};
        gyre_trace_read_completion(t, pool, self->trace_response.base, self->trace_response.len);
    } else if (!call->capture) {
        /* no bodies */
    } else if (self->have_last_status && self->last_body.len != 0) {
        t->response_body = gyre_tstr_dup(pool, self->last_body.base, self->last_body.len);
    } else if (self->last_err.message[0] != '\0') {
        gyre_buf_t e;
        gyre_buf_init(&e, 4096);
        gyre_api_error_to_json(&self->last_err, &e);
        t->response_body = gyre_tstr_dup(pool, e.base, e.len);
        gyre_buf_dispose(&e);
    }
    gyre_ctx_trace_done(self->worker, t, pool, call->route, self->prov);
}

static void on_dispose(void *p)
{
    gyre_proxy_t *self = p;
    /* Disposed before gyre answered: the client's connection or stream closed (HTTP/2, or an HTTP/1 connection
     * h2o closed), which cancels what is left as the client leaving does. */
    if (!self->answered && !self->upstream_done)
        cancel_for_client(self);
    stop_client_watch(self);
    gyre_proxy_drop_conn(self, 0);
    gyre_proxy_end_attempt(self);
    finish_trace(self);
    gyre_timer_stop(&self->backoff_timer);
    gyre_timer_stop(&self->deadline_timer);
    gyre_sse_dispose(&self->sse);
    if (self->acc_inited)
        gyre_openai_accum_dispose(&self->acc);
    gyre_openai_reader_dispose(&self->oreader);
    if (self->enc != NULL && self->call->client->encoder_dispose != NULL)
        self->call->client->encoder_dispose(self->enc);
    if (self->pivot != NULL)
        cJSON_Delete(self->pivot);
    gyre_buf_dispose(&self->uphead);
    gyre_buf_dispose(&self->upbody);
    gyre_buf_dispose(&self->body);
    gyre_buf_dispose(&self->last_body);
    gyre_buf_dispose(&self->scratch);
    gyre_buf_dispose(&self->resume_ws);
    h2o_buffer_dispose(&self->recv);
    h2o_doublebuffer_dispose(&self->sending);
    gyre_ctx_request_done(self->worker);
    gyre_wgen_release(self->gen); /* the last request of a replaced configuration frees its state */
}

/*
 * Planning's last word: a target whose provider kind cannot serve the call (embeddings on anthropic,
 * /v1/completions on gemini: gyre_client_dialect_serves) leaves the plan before it is walked.  Tried, it would
 * fail with a 400 of gyre's own, which ends the walk and masks what the targets before it answered (a 5xx an
 * SDK retries).  A plan where no target can serve the call is kept whole: its first attempt says why (400
 * unsupported_endpoint).
 */
static void drop_unserved_targets(gyre_call_t *call, const gyre_config_t *config)
{
    size_t n = 0;
    for (size_t i = 0; i < call->ncands; i++)
        if (gyre_client_dialect_serves(call->client, call->endpoint, config->providers[call->cands[i].provider].kind))
            call->cands[n++] = call->cands[i];
    if (n != 0)
        call->ncands = n;
}

void gyre_proxy_start(gyre_ctx_t *w, h2o_req_t *req, gyre_call_t *call)
{
    gyre_proxy_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);
    memset(self, 0, sizeof(*self));
    /* The parsers are made with the proxy (neither allocates until it reads), so dispose needs no flag. */
    gyre_sse_init(&self->sse, SSE_EVENT_MAX, gyre_proxy_on_relay_sse_event, self);
    gyre_openai_reader_init(&self->oreader, SSE_EVENT_MAX);
    self->super.proceed = gyre_proxy_on_proceed;
    self->super.stop = on_stop;
    self->req = req;
    self->worker = w;
    self->gen = w->gen;
    gyre_wgen_retain(self->gen);
    self->call = call;
    call->proxied = 1;
    /* The body is read again at the end, for the trace, when h2o may have let go of its buffer. */
    if (call->body.len != 0 && call->capture)
        call->body = h2o_strdup(&req->pool, call->body.base, call->body.len);
    self->key_index = -1;
    gyre_http1client_init(&self->client, &gyre_proxy_client_callbacks, self);
    self->created = (long long)time(NULL);
    /* The id of answers gyre builds itself (translated ones): "chatcmpl-gyre-" and 16 hex digits. */
    memcpy(self->chat_id, "chatcmpl-gyre-", 14);
    gyre_wire_hex_u64(self->chat_id + 14, gyre_rand_next(&w->rng), 16);
    gyre_buf_init(&self->uphead, 1024 * 1024);
    gyre_buf_init(&self->upbody, 6 * (size_t)req->entity.len + 4 * 1024 * 1024);
    gyre_buf_init(&self->body, BUFFER_MAX);
    gyre_buf_init(&self->last_body, ERROR_BODY_MAX);
    gyre_buf_init(&self->scratch, SSE_EVENT_MAX * 2);
    gyre_buf_init(&self->resume_ws, 4096);
    h2o_buffer_init(&self->recv, &h2o_socket_buffer_prototype);
    h2o_doublebuffer_init(&self->sending, &h2o_socket_buffer_prototype);
    self->own_headers = req->res.headers.size;
    __atomic_store_n(&w->inflight, w->inflight + 1, __ATOMIC_RELAXED); /* /metrics reads it from another thread */
    if (call->route != NULL && call->route->deadline_ms != 0)
        gyre_timer_start(&w->timers, &self->deadline_timer, call->route->deadline_ms, gyre_proxy_on_deadline);
    hold_client(self);
    gyre_timer_start(&w->timers, &self->client_timer, CLIENT_WATCH_AFTER_MS, on_watch_start);
    drop_unserved_targets(call, self->gen->gen->config);
    /* The walk reads the plan as it stands now: whatever trims it (targets that cannot serve the call) goes
     * before this line. */
    gyre_route_walk_init(&self->walk, call->route, call->cands, call->ncands, self->gen->keypools, 0);
    gyre_proxy_start_attempt(self);
}
