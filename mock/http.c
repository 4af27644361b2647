/*
 * gyre-mock's HTTP/1.1: connections over plain TCP or TLS, a request reader
 * with a bound on every part (head 64 KiB, body 16 MiB, target 2 KiB), and
 * the ways an answer goes out: a body with a content-length, an OpenAI error,
 * or a stream over chunked encoding (server-sent events, or Bedrock's
 * binary frames), one chunk per event.
 *
 * Sockets are blocking and each connection has its own thread (main.c), so
 * the reader simply reads until it has what it needs.
 */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

#define MAX_TARGET (sizeof(((mock_request_t *)0)->path) - 1)
#define MAX_METHOD (sizeof(((mock_request_t *)0)->method) - 1)
/* A chunk-size line (size and extensions) longer than this is refused. */
#define MAX_CHUNK_LINE 1024

void mock_conn_dispose(mock_conn_t *c)
{
    free(c->in);
    c->in = NULL;
    c->inlen = c->incap = 0;
}

ssize_t mock_conn_read(mock_conn_t *c, char *buf, size_t n)
{
    if (n > INT_MAX)
        n = INT_MAX;
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, buf, (int)n);
        if (r <= 0) {
            ERR_clear_error();
            return -1;
        }
        return r;
    }
    ssize_t r;
    while ((r = recv(c->fd, buf, n, 0)) < 0 && errno == EINTR)
        ;
    return r > 0 ? r : -1;
}

int mock_conn_write(mock_conn_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        size_t part = n > INT_MAX ? INT_MAX : n;
        ssize_t w;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, s, (int)part);
            if (r <= 0)
                ERR_clear_error();
            w = r > 0 ? r : -1;
        } else {
            while ((w = send(c->fd, s, part, MSG_NOSIGNAL)) < 0 && errno == EINTR)
                ;
        }
        if (w <= 0)
            return -1;
        if (c->counted)
            mock_state_add_sent((size_t)w);
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Reads until at least `need` bytes are buffered.  The callers bound `need`
 * (a head, a body, a chunk), so the buffer never outgrows a request.
 */
static int fill(mock_conn_t *c, size_t need)
{
    while (c->inlen < need) {
        if (c->incap < need) {
            c->incap = need + 16384;
            c->in = gyre_realloc(c->in, c->incap);
        }
        ssize_t n = mock_conn_read(c, c->in + c->inlen, c->incap - c->inlen);
        if (n < 0)
            return -1;
        c->inlen += (size_t)n;
    }
    return 0;
}

static void consume(mock_conn_t *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

/* Finds the end of the head ("\r\n\r\n"); returns 0 and its length with it, -1, or 431. */
static int read_head(mock_conn_t *c, size_t *head_len)
{
    size_t from = 0;
    for (;;) {
        /* Empty lines before a request line are ignored (RFC 9112, 2.2). */
        while (c->inlen >= 2 && c->in[0] == '\r' && c->in[1] == '\n')
            consume(c, 2);
        if (c->inlen >= 4) {
            const char *end = memmem(c->in + from, c->inlen - from, "\r\n\r\n", 4);
            if (end != NULL) {
                *head_len = (size_t)(end - c->in) + 4;
                return *head_len > MOCK_MAX_HEAD ? 431 : 0;
            }
            from = c->inlen - 3;
        }
        if (c->inlen >= MOCK_MAX_HEAD)
            return 431;
        if (fill(c, c->inlen + 1) != 0)
            return -1;
    }
}

/* Finds the next "\r\n" within `max` bytes; returns 0 and the line's length, -1, or 400. */
static int read_line(mock_conn_t *c, size_t max, size_t *len)
{
    for (;;) {
        const char *crlf = c->inlen ? memmem(c->in, c->inlen, "\r\n", 2) : NULL;
        if (crlf != NULL) {
            *len = (size_t)(crlf - c->in);
            return *len > max ? 400 : 0;
        }
        if (c->inlen > max)
            return 400;
        if (fill(c, c->inlen + 1) != 0)
            return -1;
    }
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A chunked body into `body` (bounded by its maximum); returns 0, -1, 400 or 413. */
static int read_chunked(mock_conn_t *c, gyre_buf_t *body)
{
    for (;;) {
        size_t len, size = 0, i = 0;
        int st = read_line(c, MAX_CHUNK_LINE, &len);
        if (st != 0)
            return st;
        for (; i < len && hex_digit(c->in[i]) >= 0; i++) {
            size = size * 16 + (size_t)hex_digit(c->in[i]);
            if (size > MOCK_MAX_BODY)
                return 413;
        }
        if (i == 0 || (i < len && c->in[i] != ';' && c->in[i] != ' ' && c->in[i] != '\t'))
            return 400;
        consume(c, len + 2);
        if (size == 0)
            break;
        if (body->len + size > body->max)
            return 413;
        if (fill(c, size + 2) != 0)
            return -1;
        if (c->in[size] != '\r' || c->in[size + 1] != '\n')
            return 400;
        gyre_buf_append(body, c->in, size);
        consume(c, size + 2);
    }
    /* Trailer fields, ignored, up to the empty line; bounded like a head. */
    for (size_t total = 0;;) {
        size_t len;
        int st = read_line(c, MOCK_MAX_HEAD, &len);
        if (st != 0)
            return st;
        consume(c, len + 2);
        if (len == 0)
            return 0;
        if ((total += len + 2) > MOCK_MAX_HEAD)
            return 400;
    }
}

/* Whether a comma-separated header value lists `token` (case-insensitive). */
static int has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p != NULL && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

/* The request line and the header fields of `head` (NUL-terminated, no final CRLF CRLF). */
static int parse_head(char *head, mock_request_t *r)
{
    char *line = head, *next = strstr(line, "\r\n");
    if (next != NULL)
        *next = '\0';
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || strpbrk(line, "\r\n") != NULL)
        return 400;
    if ((size_t)(sp1 - line) > MAX_METHOD)
        return 400;
    if ((size_t)(sp2 - sp1 - 1) > MAX_TARGET)
        return 414;
    memcpy(r->method, line, (size_t)(sp1 - line));
    memcpy(r->path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
        r->keep_alive = 1;
    else if (strcmp(sp2 + 1, "HTTP/1.0") != 0)
        return 400;
    r->headers = cJSON_CreateObject();
    while (next != NULL) {
        line = next + 2;
        if ((next = strstr(line, "\r\n")) != NULL)
            *next = '\0';
        /* A bare CR or LF would let a value inject lines into the echoed x-request-id. */
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || strpbrk(line, "\r\n") != NULL)
            return 400;
        *colon = '\0';
        for (char *p = line; *p; p++) {
            if (*p == ' ' || *p == '\t')
                return 400;
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        }
        char *v = colon + 1, *e = v + strlen(v);
        while (*v == ' ' || *v == '\t')
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        /* Repeated fields are one list (RFC 9110, 5.3); content-length must agree with itself. */
        cJSON *old = cJSON_GetObjectItemCaseSensitive(r->headers, line);
        if (old == NULL) {
            cJSON_AddStringToObject(r->headers, line, v);
        } else if (strcmp(line, "content-length") == 0) {
            if (strcmp(old->valuestring, v) != 0)
                return 400;
        } else {
            gyre_buf_t joined;
            gyre_buf_init(&joined, MOCK_MAX_HEAD * 2);
            gyre_buf_appendf(&joined, "%s, %s", old->valuestring, v);
            cJSON_ReplaceItemInObjectCaseSensitive(r->headers, line, cJSON_CreateString(joined.base));
            gyre_buf_dispose(&joined);
        }
    }
    const char *conn = mock_request_header(r, "connection");
    if (conn != NULL)
        r->keep_alive = r->keep_alive ? !has_token(conn, "close") : has_token(conn, "keep-alive");
    return 0;
}

int mock_http_read_request(mock_conn_t *c, mock_request_t *r)
{
    memset(r, 0, sizeof(*r));
    size_t head_len;
    int st = read_head(c, &head_len);
    if (st != 0)
        return st;
    char *head = gyre_strndup(c->in, head_len - 4);
    int has_nul = memchr(c->in, '\0', head_len) != NULL;
    consume(c, head_len);
    if (has_nul || (st = parse_head(head, r)) != 0) {
        st = st ? st : 400;
        goto out;
    }
    const char *te = mock_request_header(r, "transfer-encoding"), *cl = mock_request_header(r, "content-length");
    int chunked = te != NULL;
    size_t length = 0;
    if (te != NULL && strcasecmp(te, "chunked") != 0) {
        st = 400; /* only chunked is implemented; anything else cannot be framed */
        goto out;
    }
    if (!chunked && cl != NULL) {
        size_t digits = strspn(cl, "0123456789");
        if (digits == 0 || cl[digits] != '\0') {
            st = 400;
            goto out;
        }
        if (digits > 9 || (length = strtoul(cl, NULL, 10)) > MOCK_MAX_BODY) {
            st = 413;
            goto out;
        }
    }
    /* A client that waits for "100 Continue" gets it once the head is accepted (always, so tests can count on it). */
    const char *expect = mock_request_header(r, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && (chunked || length > 0)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (mock_conn_write(c, cont, sizeof(cont) - 1) != 0) {
            st = -1;
            goto out;
        }
    }
    if (chunked) {
        gyre_buf_t body;
        gyre_buf_init(&body, MOCK_MAX_BODY);
        if ((st = read_chunked(c, &body)) != 0) {
            gyre_buf_dispose(&body);
            goto out;
        }
        r->body = body.base != NULL ? body.base : gyre_strdup("");
        r->body_len = body.len;
    } else {
        if (fill(c, length) != 0) {
            st = -1;
            goto out;
        }
        r->body = gyre_malloc(length + 1);
        memcpy(r->body, c->in, length);
        r->body[length] = '\0';
        r->body_len = length;
        consume(c, length);
    }
out:
    free(head);
    return st;
}

void mock_request_dispose(mock_request_t *r)
{
    cJSON_Delete(r->headers);
    free(r->body);
    r->headers = NULL;
    r->body = NULL;
}

const char *mock_request_header(const mock_request_t *r, const char *name)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(r->headers, name);
    return cJSON_IsString(h) ? h->valuestring : NULL;
}

int mock_request_query(const mock_request_t *r, const char *name, char *out, size_t size)
{
    const char *q = strchr(r->path, '?');
    size_t n = strlen(name);
    for (const char *p = q; p != NULL; p = strchr(p, '&')) {
        p++;
        if (strncmp(p, name, n) != 0 || (p[n] != '=' && p[n] != '&' && p[n] != '\0'))
            continue;
        const char *v = p[n] == '=' ? p + n + 1 : p + n;
        size_t len = 0;
        for (; *v != '\0' && *v != '&' && len + 1 < size; v++) {
            int hi, lo;
            if (*v == '%' && (hi = hex_digit(v[1])) >= 0 && (lo = hex_digit(v[2])) >= 0) {
                out[len++] = (char)(hi * 16 + lo);
                v += 2;
            } else {
                out[len++] = *v == '+' ? ' ' : *v;
            }
        }
        out[len] = '\0';
        return (int)len;
    }
    return -1;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 529: return "Site Overloaded"; /* not registered; Anthropic's "overloaded" */
    default: return "Status";
    }
}

/* The head of every answer: status, type, the echoed x-request-id, and connection: close when due. */
static void append_head(gyre_buf_t *b, const mock_request_t *r, int status, const char *ctype)
{
    gyre_buf_appendf(b, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n", status, reason(status), ctype);
    const char *rid = r != NULL ? mock_request_header(r, "x-request-id") : NULL;
    if (rid != NULL)
        gyre_buf_appendf(b, "x-request-id: %s\r\n", rid);
    if (r == NULL || !r->keep_alive)
        gyre_buf_appends(b, "connection: close\r\n");
}

int mock_http_respond(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers, const char *body,
                      size_t len)
{
    /* The head is at most the echoed x-request-id (under 64 KiB) and a few fixed lines. */
    gyre_buf_t b;
    gyre_buf_init(&b, len + 2 * MOCK_MAX_HEAD);
    append_head(&b, r, status, "application/json");
    gyre_buf_appendf(&b, "content-length: %zu\r\n", len);
    if (extra_headers != NULL)
        gyre_buf_appends(&b, extra_headers);
    gyre_buf_appends(&b, "\r\n");
    gyre_buf_append(&b, body, c->truncate ? len / 2 : len);
    int ret = mock_conn_write(c, b.base, b.len);
    gyre_buf_dispose(&b);
    return ret != 0 || c->truncate ? -1 : 0;
}

int mock_http_respond_json_with(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                                const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    int ret = mock_http_respond(c, r, status, extra_headers, text, strlen(text));
    free(text);
    return ret;
}

int mock_http_respond_json(mock_conn_t *c, const mock_request_t *r, int status, const cJSON *json)
{
    return mock_http_respond_json_with(c, r, status, NULL, json);
}

int mock_http_respond_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                            const char *type, const char *code, const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddItemToObject(e, "param", param != NULL ? cJSON_CreateString(param) : cJSON_CreateNull());
    cJSON_AddItemToObject(e, "code", code != NULL ? cJSON_CreateString(code) : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(root);
    int ret = mock_http_respond(c, r, status, extra_headers, text, strlen(text));
    free(text);
    cJSON_Delete(root);
    return ret;
}

int mock_http_stream_start(mock_conn_t *c, const mock_request_t *r, const char *content_type)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 2 * MOCK_MAX_HEAD);
    append_head(&b, r, 200, content_type);
    gyre_buf_appends(&b, "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n");
    int ret = mock_conn_write(c, b.base, b.len);
    gyre_buf_dispose(&b);
    return ret;
}

/* One HTTP chunk, written with one call so that TCP_NODELAY sends it at once. */
int mock_http_stream_chunk(mock_conn_t *c, const void *data, size_t len)
{
    if (len == 0)
        return 0; /* an empty chunk would end the body */
    gyre_buf_t b;
    gyre_buf_init(&b, len + 32);
    gyre_buf_appendf(&b, "%zx\r\n", len);
    gyre_buf_append(&b, data, len);
    gyre_buf_appends(&b, "\r\n");
    int ret = mock_conn_write(c, b.base, b.len);
    gyre_buf_dispose(&b);
    return ret;
}

int mock_http_stream_finish(mock_conn_t *c)
{
    return mock_conn_write(c, "0\r\n\r\n", 5);
}

int mock_http_stream_event(mock_conn_t *c, const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    gyre_buf_t b;
    gyre_buf_init(&b, strlen(text) + 16);
    gyre_buf_appendf(&b, "data: %s\n\n", text);
    int ret = mock_http_stream_chunk(c, b.base, b.len);
    gyre_buf_dispose(&b);
    free(text);
    return ret;
}

int mock_http_stream_end(mock_conn_t *c)
{
    static const char done[] = "data: [DONE]\n\n";
    if (mock_http_stream_chunk(c, done, sizeof(done) - 1) != 0)
        return -1;
    return mock_http_stream_finish(c);
}
