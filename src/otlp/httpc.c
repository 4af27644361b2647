/* The exporter's blocking HTTP/1.1 client (see httpc.h). */
#include "otlp/httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/wire.h"

/* The head of an answer gyre reads, and how much of its body it drains before closing. */
#define HTTPC_HEAD_MAX 16384
#define HTTPC_BODY_DRAIN_MAX 65536

int gyre_httpc_parse_url(const char *url, gyre_httpc_url_t *u)
{
    memset(u, 0, sizeof(*u));
    h2o_url_t parsed;
    if (gyre_wire_url_problem(url, 1, &parsed) != NULL || parsed.host.len >= sizeof(u->host) ||
        parsed.path.len >= sizeof(u->path))
        return -EINVAL;
    u->https = parsed.scheme == &H2O_URL_SCHEME_HTTPS;
    memcpy(u->host, parsed.host.base, parsed.host.len);
    u->port = gyre_wire_url_port(&parsed);
    memcpy(u->path, parsed.path.base, parsed.path.len);
    return 0;
}

SSL_CTX *gyre_httpc_ssl_create(const char *host, const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
    if (ssl == NULL) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ssl) != 1)
        ERR_clear_error(); /* not fatal: ca_file may still provide the anchors */
    if (ca_file != NULL && SSL_CTX_load_verify_locations(ssl, ca_file, NULL) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "cannot load the trust anchors in %s", ca_file);
        SSL_CTX_free(ssl);
        return NULL;
    }
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 && X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
        snprintf(err, errlen, "cannot verify certificates for host %s", host);
        SSL_CTX_free(ssl);
        return NULL;
    }
    return ssl;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {fd, events, 0};
        int r = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_to(const gyre_httpc_url_t *u, int64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char serv[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(serv, sizeof(serv), "%u", u->port);
    int r = getaddrinfo(u->host, serv, &hints, &res);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(r));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1) {
            rc = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                rc = -errno;
                close(fd);
                continue;
            }
            if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0) {
                close(fd);
                if (rc == -ETIMEDOUT)
                    break;
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (soerr != 0) {
                rc = -soerr;
                close(fd);
                continue;
            }
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        freeaddrinfo(res);
        return fd;
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "cannot connect to %s:%u: %s", u->host, u->port, strerror(-rc));
    return rc;
}

/* One connection, plain or TLS, over a non-blocking socket. */
typedef struct conn {
    int fd;
    SSL *ssl;
    int64_t deadline;
} conn_t;

/* TLS wants to read or write before it can go on: wait for that, bounded. */
static int ssl_wait(conn_t *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(c->fd, POLLIN, c->deadline);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(c->fd, POLLOUT, c->deadline);
    return e == SSL_ERROR_ZERO_RETURN ? -ECONNRESET : -EPROTO;
}

static int conn_write(conn_t *c, const char *p, size_t n)
{
    while (n != 0) {
        ssize_t w;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
            if (r <= 0) {
                int rc = ssl_wait(c, r);
                if (rc != 0)
                    return rc;
                continue;
            }
            w = r;
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    return -errno;
                int rc = wait_fd(c->fd, POLLOUT, c->deadline);
                if (rc != 0)
                    return rc;
                continue;
            }
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads some bytes: their count, 0 at the end of the stream, or a negative errno. */
static ssize_t conn_read(conn_t *c, char *p, size_t n)
{
    for (;;) {
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, p, (int)n);
            if (r > 0)
                return r;
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0))
                return 0;
            int rc = ssl_wait(c, r);
            if (rc != 0)
                return rc;
        } else {
            ssize_t r = recv(c->fd, p, n, 0);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int rc = wait_fd(c->fd, POLLIN, c->deadline);
            if (rc != 0)
                return rc;
        }
    }
}

static int tls_start(conn_t *c, SSL_CTX *ctx, const char *host, char *err, size_t errlen)
{
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    struct in6_addr a6;
    struct in_addr a4;
    /* SNI carries names only, never an address. */
    if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
        SSL_set_tlsext_host_name(c->ssl, host);
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int rc = ssl_wait(c, r);
        if (rc != 0) {
            long v = SSL_get_verify_result(c->ssl);
            snprintf(err, errlen, "TLS handshake with %s failed%s%s", host, v != X509_V_OK ? ": " : "",
                     v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
            ERR_clear_error();
            return rc == -ETIMEDOUT ? rc : -EPROTO;
        }
    }
}

/* "HTTP/1.x NNN ..." at the start of `head`: the status, or -1. */
static int parse_status(const char *head, size_t len)
{
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
        return -1;
    int s = 0;
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return -1;
        s = s * 10 + (head[i] - '0');
    }
    return s;
}

int gyre_httpc_chunked_decode(const char *raw, size_t len, gyre_buf_t *out)
{
    size_t at = 0;
    for (;;) {
        /* The size line: hex digits, then optional extensions, then CRLF. */
        const char *eol = memmem(raw + at, len - at, "\r\n", 2);
        if (eol == NULL)
            return len - at > 1024 ? -EPROTO : 0; /* a size line longer than this is not HTTP's */
        size_t size = 0, digits = 0;
        const char *p = raw + at;
        for (; p < eol; p++, digits++) {
            int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                                            : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
            if (d < 0)
                break;
            if (digits >= 15) /* 2^60: no body gyre reads is that large */
                return -EPROTO;
            size = size * 16 + (size_t)d;
        }
        if (digits == 0 || (p < eol && *p != ';' && *p != ' ' && *p != '\t'))
            return -EPROTO;
        at = (size_t)(eol - raw) + 2;
        if (size == 0) {
            /* Trailers (ignored), then the empty line. */
            for (;;) {
                const char *e = memmem(raw + at, len - at, "\r\n", 2);
                if (e == NULL)
                    return len - at > 16384 ? -EPROTO : 0;
                if (e == raw + at)
                    return 1;
                at = (size_t)(e - raw) + 2;
            }
        }
        if (len - at < size + 2)
            return 0;
        if (raw[at + size] != '\r' || raw[at + size + 1] != '\n')
            return -EPROTO;
        if (gyre_buf_append(out, raw + at, size) != 0)
            return -EMSGSIZE;
        at += size + 2;
    }
}

/* Reads the body after the head into `out`, framed by Content-Length, chunked coding, or the connection's close:
 * bounded in bytes by out's maximum (-EMSGSIZE past it) and in time by the connection's deadline. */
static int read_body(conn_t *c, const char *have, size_t nhave, long long clen, int chunked, gyre_buf_t *out)
{
    if (clen >= 0 && (unsigned long long)clen > out->max)
        return -EMSGSIZE;
    gyre_buf_t raw;
    /* The chunked framing adds a size line per chunk: the raw bytes may exceed the body by that much. */
    gyre_buf_init(&raw, out->max + out->max / 4 + 4096);
    char tmp[16384];
    int rc = 0;
    if (gyre_buf_append(&raw, have, nhave) != 0) {
        rc = -EMSGSIZE;
        goto out;
    }
    for (;;) {
        if (clen >= 0 && raw.len >= (size_t)clen) {
            rc = clen == 0 ? 0 : gyre_buf_append(out, raw.base, (size_t)clen) != 0 ? -EMSGSIZE : 0;
            goto out;
        }
        if (chunked) {
            gyre_buf_reset(out);
            int d = gyre_httpc_chunked_decode(raw.base != NULL ? raw.base : "", raw.len, out);
            if (d != 0) {
                rc = d > 0 ? 0 : d;
                goto out;
            }
        }
        ssize_t r = conn_read(c, tmp, sizeof(tmp));
        if (r < 0) {
            rc = (int)r;
            goto out;
        }
        if (r == 0) {
            /* The end of the connection ends a body with no framing; with framing it is cut short. */
            if (clen < 0 && !chunked)
                rc = gyre_buf_append(out, raw.base != NULL ? raw.base : "", raw.len) != 0 ? -EMSGSIZE : 0;
            else
                rc = -ECONNRESET;
            goto out;
        }
        if (gyre_buf_append(&raw, tmp, (size_t)r) != 0) {
            rc = -EMSGSIZE;
            goto out;
        }
    }
out:
    gyre_buf_dispose(&raw);
    return rc;
}

/* One request.  A method other than GET sends Content-Length (0 without a body); content_type, when set, is sent. */
static int request(const gyre_httpc_url_t *u, SSL_CTX *ssl, const char *method, const gyre_httpc_header_t *headers,
                   size_t nheaders, const char *content_type, const char *body, size_t len, unsigned timeout_ms,
                   int *status, gyre_buf_t *answer, char *err, size_t errlen)
{
    conn_t c = {-1, NULL, now_ms() + timeout_ms};
    gyre_buf_t req;
    gyre_buf_init(&req, (size_t)1 << 20);
    int rc;
    *status = 0;
    err[0] = '\0';
    if (u->https && ssl == NULL) {
        snprintf(err, errlen, "https needs a TLS context");
        rc = -EINVAL;
        goto out;
    }
    if ((c.fd = connect_to(u, c.deadline, err, errlen)) < 0) {
        rc = c.fd;
        goto out;
    }
    if (u->https && (rc = tls_start(&c, ssl, u->host, err, errlen)) != 0)
        goto out;
    int v6 = strchr(u->host, ':') != NULL;
    int default_port = u->port == (u->https ? 443 : 80);
    gyre_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s%s%s", method, u->path, v6 ? "[" : "", u->host, v6 ? "]" : "");
    if (!default_port)
        gyre_buf_appendf(&req, ":%u", u->port);
    gyre_buf_appends(&req, "\r\nUser-Agent: gyre\r\nConnection: close\r\n");
    if (content_type != NULL)
        gyre_buf_appendf(&req, "Content-Type: %s\r\n", content_type);
    if (strcmp(method, "GET") != 0)
        gyre_buf_appendf(&req, "Content-Length: %zu\r\n", len);
    for (size_t i = 0; i < nheaders; i++)
        gyre_buf_appendf(&req, "%s: %s\r\n", headers[i].name, headers[i].value);
    gyre_buf_appends(&req, "\r\n");
    /* One check for the whole head: nothing is sent unless all of it is there. */
    if (gyre_buf_failed(&req) != 0) {
        snprintf(err, errlen, "the request head (the configured headers) is larger than 1 MiB");
        rc = -E2BIG;
        goto out;
    }
    if ((rc = conn_write(&c, req.base, req.len)) != 0 || (len != 0 && (rc = conn_write(&c, body, len)) != 0)) {
        snprintf(err, errlen, "sending to %s:%u: %s", u->host, u->port, strerror(-rc));
        goto out;
    }
    /* The status is all the exporter needs; the rest of the answer is read (bounded) so the server is not cut
     * off mid-answer, and so that a server that ignores Connection: close does not hold us until the deadline. */
    char head[HTTPC_HEAD_MAX + 1];
    size_t got = 0;
    const char *eoh = NULL;
    while (eoh == NULL) {
        ssize_t r = got < HTTPC_HEAD_MAX ? conn_read(&c, head + got, HTTPC_HEAD_MAX - got) : -EMSGSIZE;
        if (r <= 0) {
            rc = r == 0 ? -ECONNRESET : (int)r;
            snprintf(err, errlen, "reading the answer from %s:%u: %s", u->host, u->port,
                     r == 0 ? "the connection closed before an answer" : strerror(-rc));
            goto out;
        }
        got += (size_t)r;
        head[got] = '\0';
        eoh = memmem(head, got, "\r\n\r\n", 4);
    }
    if ((*status = parse_status(head, got)) < 0) {
        *status = 0;
        snprintf(err, errlen, "%s:%u answered something that is not HTTP/1.x", u->host, u->port);
        rc = -EPROTO;
        goto out;
    }
    size_t body_have = got - (size_t)(eoh + 4 - head);
    long long clen = -1;
    int chunked = 0;
    for (const char *line = strstr(head, "\r\n"); line != NULL && line < eoh; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, "content-length:", 15) == 0)
            clen = strtoll(h + 15, NULL, 10);
        else if (strncasecmp(h, "transfer-encoding:", 18) == 0 && strstr(h, "chunked") != NULL &&
                 strstr(h, "chunked") < strstr(h, "\r\n"))
            chunked = 1;
    }
    if (answer != NULL) {
        int bodyless = (*status >= 100 && *status < 200) || *status == 204 || *status == 304;
        rc = bodyless ? 0 : read_body(&c, eoh + 4, body_have, clen, chunked, answer);
        if (rc != 0)
            snprintf(err, errlen, "reading the answer's body from %s:%u: %s", u->host, u->port,
                     rc == -EMSGSIZE ? "larger than the bound" : rc == -EPROTO ? "bad chunked framing" : strerror(-rc));
        goto out;
    }
    int done = (clen >= 0 && body_have >= (size_t)clen) || (*status >= 100 && *status < 200) || *status == 204 ||
               *status == 304 || (chunked && body_have >= 5 && memcmp(eoh + 4 + body_have - 5, "0\r\n\r\n", 5) == 0);
    char tailbuf[5] = {0};
    for (size_t drained = body_have; !done && drained < HTTPC_BODY_DRAIN_MAX;) {
        ssize_t r = conn_read(&c, head, HTTPC_HEAD_MAX);
        if (r <= 0)
            break;
        drained += (size_t)r;
        if (clen >= 0 && drained >= (size_t)clen)
            break;
        if (chunked) {
            /* The last five bytes seen, across reads, to spot the final chunk. */
            if (r >= 5) {
                memcpy(tailbuf, head + r - 5, 5);
            } else {
                memmove(tailbuf, tailbuf + r, (size_t)(5 - r));
                memcpy(tailbuf + 5 - r, head, (size_t)r);
            }
            if (memcmp(tailbuf, "0\r\n\r\n", 5) == 0)
                break;
        }
    }
    rc = 0;
out:
    if (c.ssl != NULL) {
        SSL_free(c.ssl);
        ERR_clear_error();
    }
    if (c.fd >= 0)
        close(c.fd);
    /* The request head holds the header values: wipe it. */
    if (req.base != NULL)
        explicit_bzero(req.base, req.len);
    gyre_buf_dispose(&req);
    return rc;
}

int gyre_httpc_post(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers, size_t nheaders,
                    const char *content_type, const char *body, size_t len, unsigned timeout_ms, int *status,
                    char *err, size_t errlen)
{
    return request(u, ssl, "POST", headers, nheaders,
                   content_type != NULL ? content_type : "application/octet-stream", body, len, timeout_ms, status, NULL,
                   err, errlen);
}

int gyre_httpc_post_read(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers,
                         size_t nheaders, const char *content_type, const char *body, size_t len, unsigned timeout_ms,
                         int *status, gyre_buf_t *answer, char *err, size_t errlen)
{
    return request(u, ssl, "POST", headers, nheaders,
                   content_type != NULL ? content_type : "application/octet-stream", body, len, timeout_ms, status,
                   answer, err, errlen);
}

int gyre_httpc_get(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers, size_t nheaders,
                   unsigned timeout_ms, int *status, char *err, size_t errlen)
{
    return request(u, ssl, "GET", headers, nheaders, NULL, NULL, 0, timeout_ms, status, NULL, err, errlen);
}

int gyre_httpc_request(const gyre_httpc_url_t *u, SSL_CTX *ssl, const char *method,
                       const gyre_httpc_header_t *headers, size_t nheaders, const char *content_type, const char *body,
                       size_t len, unsigned timeout_ms, int *status, gyre_buf_t *answer, char *err, size_t errlen)
{
    /* The method goes into the request line as it is: only the two the callers need, so no byte of it can be a
     * separator. */
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        *status = 0;
        snprintf(err, errlen, "unsupported HTTP method");
        return -EINVAL;
    }
    return request(u, ssl, method, headers, nheaders, content_type, body, len, timeout_ms, status, answer, err,
                   errlen);
}

/* 64-bit FNV-1a over p[0, n), continuing from h. */
static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A form field's name, a filename or a part's content type, written between quotes or as a header value: printable
 * ASCII without the quote and the backslash (which would end or escape the quoted string), 1 to max bytes. */
static int form_token_ok(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

int gyre_httpc_multipart(const gyre_httpc_part_t *parts, size_t nparts, gyre_buf_t *out, char *content_type,
                         size_t ctlen, char *err, size_t errlen)
{
    for (size_t i = 0; i < nparts; i++) {
        const gyre_httpc_part_t *p = &parts[i];
        if (!form_token_ok(p->name, 100) || (p->filename != NULL && !form_token_ok(p->filename, 255)) ||
            (p->content_type != NULL && !form_token_ok(p->content_type, 100))) {
            snprintf(err, errlen, "form part %zu: its name, filename or content type is empty, too long, or has a "
                                  "byte other than printable ASCII without '\"' and '\\'", i + 1);
            return -EINVAL;
        }
    }
    /* The boundary must not occur in any part.  It is derived from the parts' bytes (so the same parts always give
     * the same body, which tests can hold to exact bytes), and each try hashes again: for data to hold every
     * candidate it would have to hold hashes of itself.  The bound on tries is what is decided when that fails. */
    char boundary[48];
    int found = 0;
    for (uint64_t attempt = 0; attempt < 64 && !found; attempt++) {
        uint64_t h = fnv1a(0xcbf29ce484222325ULL ^ attempt, (const char *)&attempt, sizeof(attempt));
        for (size_t i = 0; i < nparts; i++)
            h = fnv1a(h, parts[i].data != NULL ? parts[i].data : "", parts[i].len);
        uint64_t h2 = fnv1a(h ^ 0x9e3779b97f4a7c15ULL, "gyre", 4);
        snprintf(boundary, sizeof(boundary), "gyre-form-%016llx%016llx", (unsigned long long)h,
                 (unsigned long long)h2);
        found = 1;
        for (size_t i = 0; i < nparts && found; i++)
            if (parts[i].len != 0 && memmem(parts[i].data, parts[i].len, boundary, strlen(boundary)) != NULL)
                found = 0;
    }
    if (!found) {
        snprintf(err, errlen, "no multipart boundary could be found that the parts do not hold");
        return -EINVAL;
    }
    gyre_buf_mark_t m = gyre_buf_mark(out);
    for (size_t i = 0; i < nparts; i++) {
        const gyre_httpc_part_t *p = &parts[i];
        gyre_buf_appendf(out, "--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary, p->name);
        if (p->filename != NULL)
            gyre_buf_appendf(out, "; filename=\"%s\"", p->filename);
        gyre_buf_appends(out, "\r\n");
        if (p->content_type != NULL)
            gyre_buf_appendf(out, "Content-Type: %s\r\n", p->content_type);
        gyre_buf_appends(out, "\r\n");
        if (p->len != 0)
            gyre_buf_append(out, p->data, p->len);
        gyre_buf_appends(out, "\r\n");
    }
    gyre_buf_appendf(out, "--%s--\r\n", boundary);
    if (gyre_buf_failed(out) != 0) {
        gyre_buf_rollback(out, m);
        snprintf(err, errlen, "the form's body is larger than its bound (%zu bytes)", out->max);
        return -E2BIG;
    }
    snprintf(content_type, ctlen, "multipart/form-data; boundary=%s", boundary);
    return 0;
}

int gyre_httpc_get_read(const gyre_httpc_url_t *u, SSL_CTX *ssl, const gyre_httpc_header_t *headers, size_t nheaders,
                        unsigned timeout_ms, int *status, gyre_buf_t *answer, char *err, size_t errlen)
{
    return request(u, ssl, "GET", headers, nheaders, NULL, NULL, 0, timeout_ms, status, answer, err, errlen);
}
