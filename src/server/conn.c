/* Client connections: accepting, the cap, the fd limit, lingering close, head checks (see conn.h). */
#include "server/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "metrics/metrics.h"
#include "proxy/respond.h"
#include "server/head.h"
#include "server/server.h"

_Static_assert(GYRE_PAUSE_REASONS == GYRE_METRICS_ACCEPT_PAUSE_REASONS, "the reasons /metrics names");

/* Connections taken per wake-up of the listener, so that one worker's burst does not starve its open connections. */
#define ACCEPT_BURST 64
/* What one wake-up of a lingering close reads at most before it lets the loop serve others (level-triggered
 * polling calls it again for the rest). */
#define LINGER_READ_BURST (256 * 1024)

/* ---- slots: the shared count of open connections ---- */

static void on_conn_close(void *data);
static void on_accept(h2o_socket_t *listener, const char *err);

/* Takes one of max_connections slots; 0 when all are taken. */
static int take_slot(gyre_server_t *s)
{
    size_t n = __atomic_load_n(&s->connections_open, __ATOMIC_SEQ_CST);
    do {
        if (n >= s->config->max_connections)
            return 0;
    } while (!__atomic_compare_exchange_n(&s->connections_open, &n, n + 1, 1, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return 1;
}

static void resume_accepting(gyre_worker_t *w, gyre_accept_pause_reason_t reason)
{
    w->conn.paused &= ~(1u << reason);
    if (w->conn.paused == 0 && w->listener != NULL && !w->super.shutting_down)
        h2o_socket_read_start(w->listener, on_accept);
}

/* Gives a slot back, and wakes the workers that stopped accepting for want of one (this one directly, the others
 * by a message to their loop). */
static void release_slot(gyre_worker_t *w)
{
    gyre_server_t *s = w->server;
    __atomic_sub_fetch(&s->connections_open, 1, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < s->nworkers; i++) {
        gyre_worker_t *o = &s->workers[i];
        if (!__atomic_load_n(&o->conn.waiting_for_slot, __ATOMIC_SEQ_CST) ||
            !__atomic_exchange_n(&o->conn.waiting_for_slot, 0, __ATOMIC_SEQ_CST))
            continue;
        if (o == w) {
            resume_accepting(w, GYRE_PAUSE_MAX_CONNECTIONS);
        } else {
            /* One message per wake-up: the flag was taken by this thread alone, and the receiver frees it. */
            h2o_multithread_message_t *m = h2o_mem_alloc(sizeof(*m));
            memset(m, 0, sizeof(*m));
            h2o_multithread_send_message(&o->conn.slot_receiver, m);
        }
    }
}

static void on_slot_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gyre_worker_t *w = H2O_STRUCT_FROM_MEMBER(gyre_worker_t, conn.slot_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    if (w->conn.paused & (1u << GYRE_PAUSE_MAX_CONNECTIONS))
        resume_accepting(w, GYRE_PAUSE_MAX_CONNECTIONS);
}

/* ---- accepting ---- */

static void pause_accepting(gyre_worker_t *w, gyre_accept_pause_reason_t reason)
{
    h2o_socket_read_stop(w->listener);
    w->conn.paused |= 1u << reason;
    __atomic_store_n(&w->conn.pauses[reason], w->conn.pauses[reason] + 1, __ATOMIC_RELAXED);
    if (reason == GYRE_PAUSE_MAX_CONNECTIONS) {
        __atomic_store_n(&w->conn.waiting_for_slot, 1, __ATOMIC_SEQ_CST);
        /* A slot freed between take_slot and the store above found no one waiting: look again. */
        if (__atomic_load_n(&w->server->connections_open, __ATOMIC_SEQ_CST) < w->server->config->max_connections &&
            __atomic_exchange_n(&w->conn.waiting_for_slot, 0, __ATOMIC_SEQ_CST))
            resume_accepting(w, reason);
    } else if (!h2o_timeout_is_linked(&w->conn.pause_entry)) {
        h2o_timeout_link(w->super.ctx.loop, &w->conn.pause_timeout, &w->conn.pause_entry);
    }
}

static void on_pause_over(h2o_timeout_entry_t *entry)
{
    gyre_worker_t *w = H2O_STRUCT_FROM_MEMBER(gyre_worker_t, conn.pause_entry, entry);
    w->conn.paused &= ~((1u << GYRE_PAUSE_FD_LIMIT) | (1u << GYRE_PAUSE_NO_MEMORY));
    resume_accepting(w, GYRE_PAUSE_FD_LIMIT);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    gyre_worker_t *w = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        if (!take_slot(w->server)) {
            /* The decision at the cap: stop taking connections; those that arrive wait in the backlog until a
             * connection closes on any worker. */
            pause_accepting(w, GYRE_PAUSE_MAX_CONNECTIONS);
            return;
        }
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            int e = errno;
            release_slot(w);
            if (e == EMFILE || e == ENFILE) {
                /* The connection stays queued and a retry now fails the same way: stop for a moment. */
                pause_accepting(w, GYRE_PAUSE_FD_LIMIT);
                return;
            }
            if (e == ENOBUFS || e == ENOMEM) {
                pause_accepting(w, GYRE_PAUSE_NO_MEMORY);
                return;
            }
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue; /* that connection is gone; the next may be fine */
            return;       /* EAGAIN: nothing queued (another worker's burst, or a client that left) */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        h2o_socket_t *sock = h2o_evloop_socket_create(w->super.ctx.loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
        /* Gives the slot back when h2o closes the connection (or hands it to a lingering close, which does). */
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = w;
        h2o_accept(&w->accept_ctx, sock);
    }
}

void gyre_conn_worker_start(gyre_worker_t *w)
{
    const gyre_config_t *c = w->server->config;
    h2o_multithread_register_receiver(w->super.ctx.queue, &w->conn.slot_receiver, on_slot_message);
    h2o_timeout_init(w->super.ctx.loop, &w->conn.pause_timeout, GYRE_CONN_ACCEPT_PAUSE_MS);
    w->conn.pause_entry.cb = on_pause_over;
    h2o_timeout_init(w->super.ctx.loop, &w->conn.linger_timeout, c->linger_ms);
    h2o_timeout_init(w->super.ctx.loop, &w->conn.linger_idle_timeout,
                     c->linger_ms < GYRE_CONN_LINGER_IDLE_MS ? c->linger_ms : GYRE_CONN_LINGER_IDLE_MS);
    h2o_linklist_init_anchor(&w->conn.lingering);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
}

void gyre_conn_worker_stop(gyre_worker_t *w)
{
    h2o_timeout_unlink(&w->conn.pause_entry);
    __atomic_store_n(&w->conn.waiting_for_slot, 0, __ATOMIC_SEQ_CST);
    if (w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
}

uint64_t gyre_conn_open(gyre_server_t *s)
{
    return __atomic_load_n(&s->connections_open, __ATOMIC_RELAXED);
}

/* ---- lingering close ---- */

typedef struct lingering_close {
    gyre_worker_t *w;
    int fd;             /* the duplicate, made while h2o still held the connection */
    h2o_socket_t *sock; /* on `fd` once h2o has closed its own descriptor */
    uint64_t bytes;     /* drained so far */
    h2o_timeout_entry_t total, idle;
    h2o_linklist_t link; /* in w->conn.lingering */
} linger_t;

static void on_conn_close(void *data)
{
    release_slot(data);
}

static void linger_end(linger_t *l)
{
    gyre_worker_t *w = l->w;
    h2o_timeout_unlink(&l->total);
    h2o_timeout_unlink(&l->idle);
    h2o_linklist_unlink(&l->link);
    /* The connection ends here; bytes the client sends from now on are answered with a reset, as at any close. */
    h2o_socket_close(l->sock);
    free(l);
    release_slot(w);
}

/* The time bounds: linger_ms in all, or GYRE_CONN_LINGER_IDLE_MS without a byte.  The client has had its
 * answer all along; a client still sending then gets a reset. */
static void on_linger_total(h2o_timeout_entry_t *entry)
{
    linger_end(H2O_STRUCT_FROM_MEMBER(linger_t, total, entry));
}

static void on_linger_idle(h2o_timeout_entry_t *entry)
{
    linger_end(H2O_STRUCT_FROM_MEMBER(linger_t, idle, entry));
}

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    linger_t *l = sock->data;
    char buf[16384];
    (void)err; /* the socket does not read for us (H2O_SOCKET_FLAG_DONT_READ): errors come from read() below */
    for (size_t burst = 0; burst < LINGER_READ_BURST;) {
        ssize_t n = read(l->fd, buf, sizeof(buf));
        if (n > 0) {
            l->bytes += (uint64_t)n;
            burst += (size_t)n;
            /* The byte bound: a client that sends more than linger_bytes after its answer is cut (it gets a
             * reset); draining on would spend gyre's CPU for a client that does not read. */
            if (l->bytes >= l->w->server->config->linger_bytes) {
                linger_end(l);
                return;
            }
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* The client finished sending (0) or the connection failed: nothing is left to protect. */
        linger_end(l);
        return;
    }
    h2o_timeout_unlink(&l->idle);
    h2o_timeout_link(l->w->super.ctx.loop, &l->w->conn.linger_idle_timeout, &l->idle);
}

/* h2o has closed its descriptor (and taken it out of its poller): the duplicate carries the connection on. */
static void on_conn_close_linger(void *data)
{
    linger_t *l = data;
    gyre_worker_t *w = l->w;
    /* The answer is in the kernel's send buffer (h2o closes once its write completed): the FIN goes after it, so
     * the client sees the whole answer and then the end, while what it still sends is read and dropped. */
    shutdown(l->fd, SHUT_WR);
    l->sock = h2o_evloop_socket_create(w->super.ctx.loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    l->total.cb = on_linger_total;
    l->idle.cb = on_linger_idle;
    h2o_timeout_link(w->super.ctx.loop, &w->conn.linger_timeout, &l->total);
    h2o_timeout_link(w->super.ctx.loop, &w->conn.linger_idle_timeout, &l->idle);
    h2o_linklist_insert(&w->conn.lingering, &l->link);
    h2o_socket_read_start(l->sock, on_linger_read);
}

/*
 * The socket under an HTTP/1 request, or NULL.  h2o's public get_socket callback gives it; that h2o made the
 * socket's data its connection is checked, as HTTP/1 does (h2o_http1_accept), so that a layout h2o does not have
 * in 2.2.5 is never trusted (docs/decisions.md).
 */
static h2o_socket_t *http1_socket(h2o_req_t *req)
{
    if (req->version < 0x100 || req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->data != (void *)req->conn || sock->ssl != NULL)
        return NULL;
    return sock;
}

void gyre_conn_linger(h2o_req_t *req)
{
    h2o_socket_t *sock = http1_socket(req);
    if (sock == NULL || sock->on_close.cb != on_conn_close)
        return; /* not accepted by gyre, or lingering already */
    gyre_worker_t *w = sock->on_close.data;
    const gyre_config_t *c = w->server->config;
    if (c->linger_ms == 0 || c->linger_bytes == 0)
        return;
    int fd = h2o_socket_get_fd(sock);
    /* At the fd limit there is no duplicate: the connection then closes at once, as it did without lingering. */
    int dup = fd == -1 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup == -1)
        return;
    linger_t *l = h2o_mem_alloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    l->w = w;
    l->fd = dup;
    /* The slot stays taken until the lingering close ends: the descriptor is still in use. */
    sock->on_close.cb = on_conn_close_linger;
    sock->on_close.data = l;
}

/* ---- the head checks ---- */

int gyre_conn_check_head(gyre_worker_t *w, h2o_req_t *req)
{
    static int warned;
    h2o_socket_t *sock = http1_socket(req);
    if (sock == NULL)
        return 0;
    /* h2o leaves the request's head at the start of the socket's input until the answer is sent (it decodes a
     * chunked body in place after it); the request line is compared to make sure these are its bytes. */
    gyre_head_check_t c;
    gyre_head_check(sock->input->bytes, sock->input->size, w->server->config->max_header_bytes, &c);
    if (c.verdict == GYRE_HEAD_UNPARSED ||
        !h2o_memis(c.method, c.method_len, req->input.method.base, req->input.method.len) ||
        !h2o_memis(c.path, c.path_len, req->input.path.base, req->input.path.len)) {
        if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
            gyre_logf("gyre: the HTTP/1 head checks cannot find the request's head in h2o's input buffer (a "
                      "different h2o?); they are skipped (docs/decisions.md)\n");
        return 0;
    }
    if (c.verdict == GYRE_HEAD_OK)
        return 0;
    req->http1_is_persistent = 0;
    gyre_conn_linger(req);
    if (c.verdict == GYRE_HEAD_CLOSE)
        return 0; /* served as chunked; the connection closes after the answer (RFC 9112 section 6.1) */
    gyre_api_error_t err;
    if (c.verdict == GYRE_HEAD_TOO_LARGE)
        gyre_api_error_set(&err, 431, "invalid_request_error", "request_header_fields_too_large", NULL,
                           "the request head is %zu bytes, over this gateway's limit of %zu bytes (max_header_bytes)",
                           c.head_len, w->server->config->max_header_bytes);
    else
        gyre_api_error_set(&err, 400, "invalid_request_error", "bad_request", NULL, "%s", c.reason);
    gyre_respond_error(req, &err);
    return 1;
}
