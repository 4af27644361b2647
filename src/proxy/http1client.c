/* The upstream HTTP/1 client (see http1client.h). */
#include "proxy/http1client.h"

#include <errno.h>
#include <string.h>

const char gyre_http1client_error_io_timeout[] = "I/O timeout";
const char gyre_http1client_error_closed_before_head[] = "the connection closed before a response";
const char gyre_http1client_error_invalid_head[] = "the response is not valid HTTP/1.1";
const char gyre_http1client_error_head_too_large[] = "the response head is too large";
const char gyre_http1client_error_too_many_headers[] = "the response head has too many headers";
const char gyre_http1client_error_invalid_chunked[] = "invalid chunked encoding";
const char gyre_http1client_error_closed_mid_body[] = "the connection closed mid-response";

static void on_read(h2o_socket_t *sock, const char *err);

static void on_io_timeout(h2o_timeout_entry_t *entry)
{
    gyre_http1client_t *c = H2O_STRUCT_FROM_MEMBER(gyre_http1client_t, io_entry, entry);
    c->cb->on_error(c, c->head_done ? GYRE_HTTP1CLIENT_BODY : GYRE_HTTP1CLIENT_HEAD, gyre_http1client_error_io_timeout);
}

void gyre_http1client_init(gyre_http1client_t *c, const gyre_http1client_callbacks_t *cb, void *data)
{
    memset(c, 0, sizeof(*c));
    c->cb = cb;
    c->data = data;
    c->io_entry.cb = on_io_timeout;
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    /* Reading starts with the write, and a connection that fails a write
     * fails its reads too: the read path handles it. */
    (void)sock;
    (void)err;
}

static void send_request(gyre_http1client_t *c)
{
    h2o_socket_t *sock = c->conn->sock;
    sock->data = c;
    c->conn->requests++;
    h2o_socket_write(sock, (h2o_iovec_t *)c->bufs, c->nbufs, on_write_done);
    h2o_socket_read_start(sock, on_read);
    h2o_timeout_link(c->up->loop, &c->up->io_timeout, &c->io_entry);
}

static void on_connected(gyre_upconn_t *conn, const char *err, void *data)
{
    gyre_http1client_t *c = data;
    c->connecting = NULL;
    if (err != NULL) {
        c->cb->on_error(c, GYRE_HTTP1CLIENT_CONNECT, err);
        return;
    }
    c->conn = conn;
    send_request(c);
}

void gyre_http1client_start(gyre_http1client_t *c, gyre_upstream_t *up, const h2o_iovec_t *bufs, size_t nbufs,
                            int head_only)
{
    c->up = up;
    c->bufs = bufs;
    c->nbufs = nbufs;
    c->head_only = head_only;
    c->head_done = 0;
    c->head_scanned = 0;
    c->chunk = (gyre_http1_chunked_t){0};
    if ((c->conn = gyre_upstream_take_idle(up)) != NULL) {
        c->reused = 1;
        send_request(c);
    } else {
        c->reused = 0;
        c->connecting = gyre_upstream_connect(up, on_connected, c);
    }
}

void gyre_http1client_close(gyre_http1client_t *c, int reusable)
{
    if (h2o_timeout_is_linked(&c->io_entry))
        h2o_timeout_unlink(&c->io_entry);
    if (c->connecting != NULL) {
        gyre_upconnect_cancel(c->connecting);
        c->connecting = NULL;
    }
    if (c->conn != NULL) {
        h2o_socket_read_stop(c->conn->sock);
        if (reusable)
            gyre_upstream_release(c->conn);
        else
            gyre_upconn_close(c->conn);
        c->conn = NULL;
    }
}

void gyre_http1client_pause(gyre_http1client_t *c)
{
    if (c->conn == NULL)
        return;
    h2o_socket_read_stop(c->conn->sock);
    if (h2o_timeout_is_linked(&c->io_entry))
        h2o_timeout_unlink(&c->io_entry);
}

void gyre_http1client_resume(gyre_http1client_t *c)
{
    if (c->conn == NULL || h2o_socket_is_reading(c->conn->sock))
        return;
    h2o_socket_read_start(c->conn->sock, on_read);
    h2o_timeout_link(c->up->loop, &c->up->io_timeout, &c->io_entry);
}

/* Reads the head; returns 1 when the body follows in this read, 0 when the read is over (more bytes needed, or a
 * callback took over). */
static int read_head(gyre_http1client_t *c, h2o_buffer_t **input, const char *err)
{
    if (err != NULL) {
        if (c->reused && (*input)->size == 0) {
            /* A pooled connection the provider had just closed: it never
             * saw the request, so one more try on a new connection is safe. */
            h2o_socket_read_stop(c->conn->sock);
            gyre_upconn_close(c->conn);
            c->conn = NULL;
            c->reused = 0;
            c->cb->on_resend(c);
            c->connecting = gyre_upstream_connect(c->up, on_connected, c);
            return 0;
        }
        c->cb->on_error(c, GYRE_HTTP1CLIENT_HEAD, gyre_http1client_error_closed_before_head);
        return 0;
    }
    gyre_http1_response_t res;
    for (;;) {
        /* Only a new line end can complete the head: bytes without one are not parsed again, so a head that
         * arrives a byte at a time costs its length, not its length squared.  At GYRE_HTTP1_MAX_HEAD the
         * parser refuses it (below). */
        size_t size = (*input)->size;
        int may_end = size >= GYRE_HTTP1_MAX_HEAD ||
                      memchr((*input)->bytes + c->head_scanned, '\n', size - c->head_scanned) != NULL;
        c->head_scanned = size;
        ssize_t n = may_end ? gyre_http1_parse_response((*input)->bytes, size, &res) : -EAGAIN;
        if (n == -EAGAIN) {
            h2o_timeout_link(c->up->loop, &c->up->io_timeout, &c->io_entry);
            return 0;
        }
        if (n == -E2BIG) {
            /* A head past the parser's bounds: the provider is broken or hostile. */
            c->cb->on_error(c, GYRE_HTTP1CLIENT_HEAD,
                            size >= GYRE_HTTP1_MAX_HEAD ? gyre_http1client_error_head_too_large
                                                        : gyre_http1client_error_too_many_headers);
            return 0;
        }
        if (n < 0) {
            c->cb->on_error(c, GYRE_HTTP1CLIENT_HEAD, gyre_http1client_error_invalid_head);
            return 0;
        }
        if (res.status >= 100 && res.status < 200) {
            h2o_buffer_consume(input, (size_t)n);
            c->head_scanned = 0;
            continue;
        }
        c->head_done = 1;
        c->keep_alive = res.keep_alive;
        c->chunked = res.chunked;
        int no_body = c->head_only || res.status == 204 || res.status == 304;
        c->body_left = no_body ? 0 : res.chunked ? SIZE_MAX : res.content_length;
        if (c->body_left == SIZE_MAX && !res.chunked)
            c->keep_alive = 0;
        c->cb->on_head(c, &res);
        h2o_buffer_consume(input, (size_t)n);
        break;
    }
    if (c->body_left == 0 && !c->chunked) {
        c->cb->on_body_end(c, NULL);
        return 0;
    }
    return 1;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    gyre_http1client_t *c = sock->data;
    h2o_buffer_t **input = &sock->input;
    h2o_timeout_unlink(&c->io_entry);

    if (!c->head_done && !read_head(c, input, err))
        return;

    if ((*input)->size != 0) {
        if (c->chunked) {
            size_t len = (*input)->size, used = 0;
            int r = gyre_http1_decode_chunked(&c->chunk, (*input)->bytes, &len, &used);
            if (c->cb->on_body(c, (*input)->bytes, len) != 0)
                return;
            h2o_buffer_consume(input, used);
            if (r < 0) {
                c->cb->on_body_end(c, gyre_http1client_error_invalid_chunked);
                return;
            }
            if (r == 1) {
                if ((*input)->size != 0)
                    c->keep_alive = 0;
                c->cb->on_body_end(c, NULL);
                return;
            }
        } else {
            size_t take = (*input)->size;
            if (c->body_left != SIZE_MAX && take > c->body_left) {
                take = c->body_left;
                c->keep_alive = 0;
            }
            if (c->cb->on_body(c, (*input)->bytes, take) != 0)
                return;
            h2o_buffer_consume(input, (*input)->size);
            if (c->body_left != SIZE_MAX) {
                c->body_left -= take;
                if (c->body_left == 0) {
                    c->cb->on_body_end(c, NULL);
                    return;
                }
            }
        }
    }
    if (err != NULL) {
        c->cb->on_body_end(c, c->body_left == SIZE_MAX && !c->chunked ? NULL : gyre_http1client_error_closed_mid_body);
        return;
    }
    h2o_timeout_link(c->up->loop, &c->up->io_timeout, &c->io_entry);
    c->cb->on_body_read(c);
}
