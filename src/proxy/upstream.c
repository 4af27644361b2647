/* Per-worker connections to providers (see upstream.h). */
#include "proxy/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

const char gyre_upstream_error_connect_timeout[] = "connection timeout";
const char gyre_upstream_error_socket_create[] = "socket create error";

/* Idle connections are closed after this long: shorter than the idle limits
 * of common servers (uvicorn 5 s, nginx 75 s), so gyre rarely writes into a
 * connection the provider is about to close. */
#define UPSTREAM_IDLE_MS 2000
/* At most this many idle connections per provider and worker are kept. */
#define UPSTREAM_MAX_IDLE 512

struct gyre_upconnect {
    gyre_upstream_t *up;
    gyre_upconnect_cb cb;
    void *data;
    h2o_hostinfo_getaddr_req_t *getaddr;
    h2o_socket_t *sock;
    h2o_timeout_entry_t timeout;
};

void gyre_upstream_init(gyre_upstream_t *up, const gyre_provider_conf_t *conf, h2o_loop_t *loop,
                        h2o_multithread_receiver_t *getaddr_receiver, SSL_CTX *ssl_ctx)
{
    memset(up, 0, sizeof(*up));
    up->conf = conf;
    up->loop = loop;
    up->getaddr_receiver = getaddr_receiver;
    up->ssl_ctx = ssl_ctx;
    h2o_linklist_init_anchor(&up->idle);
    h2o_timeout_init(loop, &up->io_timeout, conf->timeout_ms);
    h2o_timeout_init(loop, &up->idle_timeout, UPSTREAM_IDLE_MS);
    h2o_timeout_init(loop, &up->zero_timeout, 0);
    struct sockaddr_in *sin = (void *)&up->addr;
    struct sockaddr_in6 *sin6 = (void *)&up->addr;
    if (inet_pton(AF_INET, conf->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(conf->port);
        up->addrlen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, conf->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(conf->port);
        up->addrlen = sizeof(*sin6);
    }
    /* The Host header names the port only when it is not the scheme's default. */
    char host[300];
    int default_port = conf->port == (conf->is_https ? 443 : 80);
    int v6 = strchr(conf->host, ':') != NULL;
    if (default_port)
        snprintf(host, sizeof(host), "%s%s%s", v6 ? "[" : "", conf->host, v6 ? "]" : "");
    else
        snprintf(host, sizeof(host), "%s%s%s:%u", v6 ? "[" : "", conf->host, v6 ? "]" : "", conf->port);
    up->host_header = h2o_strdup(NULL, host, SIZE_MAX);
}

static void upconn_free(gyre_upconn_t *conn)
{
    if (h2o_linklist_is_linked(&conn->link)) {
        h2o_linklist_unlink(&conn->link);
        conn->up->nidle--;
    }
    if (h2o_timeout_is_linked(&conn->idle_entry))
        h2o_timeout_unlink(&conn->idle_entry);
    free(conn);
}

void gyre_upconn_close(gyre_upconn_t *conn)
{
    h2o_socket_close(conn->sock);
    upconn_free(conn);
}

int gyre_upstream_dispose(gyre_upstream_t *up)
{
    while (!h2o_linklist_is_empty(&up->idle))
        gyre_upconn_close(H2O_STRUCT_FROM_MEMBER(gyre_upconn_t, link, up->idle.next));
    /* Every request that used the pool is gone, and with it every entry in its timeouts; one still linked would
     * be a bug, and disposing its timeout would then abort: the pool is then left as it is (the caller keeps it). */
    h2o_timeout_t *timeouts[] = {&up->io_timeout, &up->idle_timeout, &up->zero_timeout};
    for (size_t i = 0; i < 3; i++)
        if (!h2o_linklist_is_empty(&timeouts[i]->_entries))
            return -EBUSY;
    for (size_t i = 0; i < 3; i++)
        h2o_timeout_dispose(up->loop, timeouts[i]);
    free(up->host_header.base);
    up->host_header = h2o_iovec_init(NULL, 0);
    return 0;
}

/* A pooled connection that becomes readable was closed by the provider (or
 * sent bytes nobody asked for): either way it cannot be reused. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    gyre_upconn_close(sock->data);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    gyre_upconn_close(H2O_STRUCT_FROM_MEMBER(gyre_upconn_t, idle_entry, entry));
}

gyre_upconn_t *gyre_upstream_take_idle(gyre_upstream_t *up)
{
    if (h2o_linklist_is_empty(&up->idle))
        return NULL;
    gyre_upconn_t *conn = H2O_STRUCT_FROM_MEMBER(gyre_upconn_t, link, up->idle.next);
    h2o_linklist_unlink(&conn->link);
    up->nidle--;
    h2o_timeout_unlink(&conn->idle_entry);
    return conn;
}

void gyre_upstream_release(gyre_upconn_t *conn)
{
    gyre_upstream_t *up = conn->up;
    if (up->nidle >= UPSTREAM_MAX_IDLE || conn->sock->input->size != 0) {
        gyre_upconn_close(conn);
        return;
    }
    conn->sock->data = conn;
    /* Reading stays on: the socket is still polled, so reuse costs no
     * system call, and a close by the provider is seen at once. */
    h2o_socket_read_start(conn->sock, on_idle_read);
    h2o_linklist_insert(up->idle.next, &conn->link); /* most recent first */
    up->nidle++;
    conn->idle_entry.cb = on_idle_timeout;
    h2o_timeout_link(up->loop, &up->idle_timeout, &conn->idle_entry);
}

static void connect_done(gyre_upconnect_t *c, const char *err)
{
    gyre_upconn_t *conn = NULL;
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    if (err == NULL) {
        conn = gyre_calloc(1, sizeof(*conn));
        conn->sock = c->sock;
        conn->up = c->up;
    } else if (c->sock != NULL) {
        h2o_socket_close(c->sock);
    }
    c->sock = NULL;
    gyre_upconnect_cb cb = c->cb;
    void *data = c->data;
    free(c);
    cb(conn, err, data);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    connect_done(sock->data, err);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    gyre_upconnect_t *c = sock->data;
    if (err != NULL) {
        connect_done(c, err);
        return;
    }
    if (c->up->ssl_ctx != NULL) {
        h2o_socket_ssl_handshake(sock, c->up->ssl_ctx, c->up->conf->host, on_handshake);
        return;
    }
    connect_done(c, NULL);
}

static void on_socket_create_error(h2o_timeout_entry_t *entry)
{
    connect_done(H2O_STRUCT_FROM_MEMBER(gyre_upconnect_t, timeout, entry), gyre_upstream_error_socket_create);
}

static void start_connect(gyre_upconnect_t *c, struct sockaddr *addr, socklen_t len)
{
    if ((c->sock = h2o_socket_connect(c->up->loop, addr, len, on_connect)) == NULL) {
        /* Reported from the loop, not from here: the caller may still be
         * inside gyre_upstream_connect, which promises a later callback. */
        h2o_timeout_unlink(&c->timeout);
        c->timeout.cb = on_socket_create_error;
        h2o_timeout_link(c->up->loop, &c->up->zero_timeout, &c->timeout);
        return;
    }
    c->sock->data = c;
}

static void on_getaddr(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res, void *data)
{
    gyre_upconnect_t *c = data;
    (void)req;
    c->getaddr = NULL;
    if (errstr != NULL) {
        connect_done(c, errstr);
        return;
    }
    struct addrinfo *selected = h2o_hostinfo_select_one(res);
    start_connect(c, selected->ai_addr, selected->ai_addrlen);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    gyre_upconnect_t *c = H2O_STRUCT_FROM_MEMBER(gyre_upconnect_t, timeout, entry);
    if (c->getaddr != NULL) {
        h2o_hostinfo_getaddr_cancel(c->getaddr);
        c->getaddr = NULL;
    }
    connect_done(c, gyre_upstream_error_connect_timeout);
}

gyre_upconnect_t *gyre_upstream_connect(gyre_upstream_t *up, gyre_upconnect_cb cb, void *data)
{
    gyre_upconnect_t *c = gyre_calloc(1, sizeof(*c));
    c->up = up;
    c->cb = cb;
    c->data = data;
    c->timeout.cb = on_connect_timeout;
    h2o_timeout_link(up->loop, &up->io_timeout, &c->timeout);
    if (up->addrlen != 0) {
        struct sockaddr_storage addr = up->addr;
        start_connect(c, (struct sockaddr *)&addr, up->addrlen);
    } else {
        char serv[8];
        snprintf(serv, sizeof(serv), "%u", up->conf->port);
        c->getaddr = h2o_hostinfo_getaddr(up->getaddr_receiver, h2o_iovec_init(up->conf->host, strlen(up->conf->host)),
                                          h2o_iovec_init(serv, strlen(serv)), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
                                          AI_ADDRCONFIG | AI_NUMERICSERV, on_getaddr, c);
    }
    return c;
}

void gyre_upconnect_cancel(gyre_upconnect_t *c)
{
    if (c->getaddr != NULL)
        h2o_hostinfo_getaddr_cancel(c->getaddr);
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    if (h2o_timeout_is_linked(&c->timeout))
        h2o_timeout_unlink(&c->timeout);
    free(c);
}
