/*
 * The small HTTP/1.0 client the commands that talk to a running gyre share
 * (`gyre providers`, `gyre feedback`): plain http to gyre's own listener,
 * one request per connection, the answer read to its end within a byte
 * bound and a time bound (the socket's send and receive timeouts, which on
 * Linux bound connect(2) too).  Secrets come from env:NAME or file:PATH,
 * never from the command line, where ps and the shell's history would show
 * them.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"

/* A secret file is short: a token or a key. */
#define SECRET_MAX_BYTES 8192

char *gyre_cli_read_secret(const char *cmd, const char *what, const char *spec)
{
    if (strncmp(spec, "env:", 4) == 0) {
        const char *v = getenv(spec + 4);
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "%s: %s: environment variable %s is not set\n", cmd, what, spec + 4);
            return NULL;
        }
        return gyre_strdup(v);
    }
    if (strncmp(spec, "file:", 5) == 0) {
        gyre_buf_t b;
        gyre_buf_init(&b, SECRET_MAX_BYTES);
        int r = gyre_buf_append_file(&b, spec + 5);
        if (r != 0 || b.len == 0) {
            fprintf(stderr, "%s: %s: cannot read %s: %s\n", cmd, what, spec + 5,
                    r == 0 ? "it is empty" : r == -E2BIG ? "it is too large" : strerror(-r));
            gyre_buf_dispose(&b);
            return NULL;
        }
        while (b.len > 0 && (b.base[b.len - 1] == '\n' || b.base[b.len - 1] == '\r'))
            b.base[--b.len] = '\0';
        char *s = gyre_strdup(b.base);
        explicit_bzero(b.base, b.len);
        gyre_buf_dispose(&b);
        return s;
    }
    fprintf(stderr,
            "%s: %s must be env:NAME or file:PATH (a secret on the command line would show in ps and the shell's "
            "history)\n",
            cmd, what);
    return NULL;
}

int gyre_cli_parse_url(const char *url, gyre_cli_target_t *t)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *end = h + strcspn(h, "/");
    const char *colon = memchr(h, ':', (size_t)(end - h));
    size_t hlen = (size_t)((colon != NULL ? colon : end) - h);
    if (hlen == 0 || hlen >= sizeof(t->host))
        return -1;
    memcpy(t->host, h, hlen);
    t->host[hlen] = '\0';
    size_t plen = colon != NULL ? (size_t)(end - colon - 1) : 2;
    if (plen == 0 || plen >= sizeof(t->port))
        return -1;
    if (colon != NULL) {
        memcpy(t->port, colon + 1, plen);
        t->port[plen] = '\0';
    } else {
        snprintf(t->port, sizeof(t->port), "80");
    }
    return 0;
}

int gyre_cli_http(const gyre_cli_target_t *t, const char *method, const char *path, const char *body,
                  size_t answer_max, int *status, gyre_buf_t *answer)
{
    *status = 0;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(t->host, t->port, &hints, &res);
    if (r != 0) {
        fprintf(stderr, "%s: cannot resolve %s: %s\n", t->cmd, t->host, gai_strerror(r));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {t->timeout_ms / 1000, (t->timeout_ms % 1000) * 1000};
    /* On Linux the send timeout bounds connect(2) too. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "%s: cannot connect to %s:%s: %s\n", t->cmd, t->host, t->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    size_t blen = body != NULL ? strlen(body) : 0;
    gyre_buf_t req, in;
    gyre_buf_init(&req, blen + 4096 + (t->token != NULL ? strlen(t->token) : 0));
    gyre_buf_init(&in, answer_max);
    gyre_buf_appendf(&req, "%s %s HTTP/1.0\r\nHost: %s:%s\r\n", method, path, t->host, t->port);
    if (t->token != NULL)
        gyre_buf_appendf(&req, "Authorization: Bearer %s\r\n", t->token);
    if (body != NULL)
        gyre_buf_appendf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    gyre_buf_appends(&req, "\r\n");
    if (body != NULL)
        gyre_buf_append(&req, body, blen);
    int rc = -1;
    for (size_t off = 0; off < req.len;) {
        ssize_t n = write(fd, req.base + off, req.len - off);
        if (n <= 0) {
            fprintf(stderr, "%s: sending to %s:%s: %s\n", t->cmd, t->host, t->port,
                    n == 0 ? "connection closed" : strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0 || gyre_buf_append(&in, chunk, (size_t)n) != 0) {
            fprintf(stderr, "%s: reading the answer from %s:%s: %s\n", t->cmd, t->host, t->port,
                    n < 0 ? (errno == EAGAIN ? "timed out" : strerror(errno)) : "it is too large");
            goto out;
        }
    }
    const char *head_end = in.base != NULL ? strstr(in.base, "\r\n\r\n") : NULL;
    if (head_end == NULL || sscanf(in.base, "HTTP/%*d.%*d %d", status) != 1) {
        fprintf(stderr, "%s: %s:%s did not answer in HTTP\n", t->cmd, t->host, t->port);
        goto out;
    }
    gyre_buf_appends(answer, head_end + 4);
    rc = 0;
out:
    explicit_bzero(req.base, req.len);
    gyre_buf_dispose(&req);
    gyre_buf_dispose(&in);
    close(fd);
    return rc;
}
