/* Composing one upstream request (see compose.h). */
#include "proxy/compose.h"

#include <errno.h>
#include <string.h>

#include "common/wire.h"


int gyre_compose_drops_header(const char *name, size_t len, int translated)
{
    static const gyre_wire_name_t names[] = {
        GYRE_WIRE_NAME("connection"),
        GYRE_WIRE_NAME("keep-alive"),
        GYRE_WIRE_NAME("proxy-connection"),
        GYRE_WIRE_NAME("proxy-authorization"),
        GYRE_WIRE_NAME("te"),
        GYRE_WIRE_NAME("trailer"),
        GYRE_WIRE_NAME("transfer-encoding"),
        GYRE_WIRE_NAME("upgrade"),
        GYRE_WIRE_NAME("host"),
        GYRE_WIRE_NAME("content-length"),
        GYRE_WIRE_NAME("authorization"),
        GYRE_WIRE_NAME("x-api-key"),
        GYRE_WIRE_NAME("api-key"),
        GYRE_WIRE_NAME("cookie"),
        GYRE_WIRE_NAME("expect"),
        GYRE_WIRE_NAME("accept-encoding"),
        GYRE_WIRE_NAME("x-request-id"),
        GYRE_WIRE_NAME("http2-settings"),
        GYRE_WIRE_NAME("x-goog-api-key"),
        /* Where the client is, and what it was told about the path to gyre: a provider learns nothing of the
         * client's network from gyre, and cannot be fooled by a client claiming to be another address. */
        GYRE_WIRE_NAME("forwarded"),
        GYRE_WIRE_NAME("x-real-ip"),
    };
    /* A translated request is gyre's own: the client's content headers and its
     * dialect's version headers mean nothing to the other API. */
    static const gyre_wire_name_t dialect_own[] = {
        GYRE_WIRE_NAME("content-type"),   GYRE_WIRE_NAME("accept"),      GYRE_WIRE_NAME("anthropic-version"),
        GYRE_WIRE_NAME("anthropic-beta"), GYRE_WIRE_NAME("openai-beta"),
    };
    if (gyre_wire_name_in(names, sizeof(names) / sizeof(names[0]), name, len))
        return 1;
    if (translated && gyre_wire_name_in(dialect_own, sizeof(dialect_own) / sizeof(dialect_own[0]), name, len))
        return 1;
    /* X-Forwarded-For, -Host, -Proto, -Port, -Prefix...: the client's claims about where it is. */
    if (len >= 12 && h2o_lcstris(name, 12, H2O_STRLIT("x-forwarded-")))
        return 1;
    /* x-gyre-* headers steer gyre itself. */
    return len >= 7 && h2o_lcstris(name, 7, H2O_STRLIT("x-gyre-"));
}

/* Whether `lines` ("name: value\r\n" ...) sets header `name`. */
static int lines_have(const char *lines, size_t len, const char *name, size_t nlen)
{
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)((eol ? eol : end) - p));
        if (colon != NULL && (size_t)(colon - p) == nlen && h2o_lcstris(p, nlen, name, nlen))
            return 1;
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    return 0;
}

static void bad_model(const gyre_compose_t *in, int r, gyre_api_error_t *err)
{
    if (r == -EINVAL)
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                           "'model' cannot be sent to provider '%s' as a path segment: it is empty or has a "
                           "dot-segment ('.' or '..')",
                           in->provider->name);
    else
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                           "'model' is too long for a request path of provider '%s'", in->provider->name);
}

/* The provider dialect's path for a body as the client wrote it (Azure's deployment paths live there). */
static int native_path(const gyre_compose_t *in, const char *rest, size_t rest_len, const char *query,
                       size_t query_len, gyre_buf_t *path, gyre_api_error_t *err)
{
    const gyre_dialect_t *d = gyre_dialect_for(in->provider->kind);
    if (d->native_path == NULL) {
        gyre_api_error_set(err, 400, "invalid_request_error", "unsupported_endpoint", NULL,
                           "provider '%s' is of kind %s, which takes no request as the client wrote it",
                           in->provider->name, d->kind);
        return -1;
    }
    int r = d->native_path(in->provider, in->model.base, in->model.len, rest, rest_len, query, query_len, path);
    if (r == -E2BIG) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_path", NULL,
                           "the path for provider '%s' is too long", in->provider->name);
        return -1;
    }
    if (r != 0) {
        bad_model(in, r, err);
        return -1;
    }
    return 0;
}

/* The path of an OTHER call: the provider's base path, then the client's path after "/v1". */
static int other_path(const gyre_compose_t *in, gyre_buf_t *path, gyre_api_error_t *err)
{
    h2o_iovec_t cp = in->client_path;
    const char *problem = gyre_wire_target_problem(cp.base, cp.len, 1);
    if (problem == NULL && (cp.len < 4 || memcmp(cp.base, "/v1/", 4) != 0))
        problem = "is not under /v1/";
    if (problem != NULL) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_path", NULL, "the path %s", problem);
        return -1;
    }
    const char *rest = cp.base + 3;
    size_t rest_len = cp.len - 3;
    if (in->model.len != 0) {
        /* A call with a model: where the provider's dialect serves that path (Azure: under the deployment). */
        const char *q = memchr(rest, '?', rest_len);
        size_t plen = q != NULL ? (size_t)(q - rest) : rest_len;
        return native_path(in, rest, plen, q != NULL ? q + 1 : NULL, q != NULL ? rest_len - plen - 1 : 0, path, err);
    }
    if (gyre_buf_append(path, rest, rest_len) != 0) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_path", NULL, "the path is too long");
        return -1;
    }
    return 0;
}

/* The request target: base path, then the endpoint's path for this provider kind. */
static int compose_path(const gyre_compose_t *in, gyre_buf_t *body, gyre_buf_t *path, gyre_api_error_t *err)
{
    const gyre_provider_conf_t *p = in->provider;
    const char *base = p->base_path != NULL ? p->base_path : "";
    /* The base path is the operator's, from base_url: checked on its own so a bad one is named as such. */
    if (base[0] != '\0' && gyre_wire_target_problem(base, strlen(base), 0) != NULL) {
        gyre_api_error_set(err, 500, "server_error", "invalid_config", NULL, "the path of provider '%s''s base_url %s",
                           p->name, gyre_wire_target_problem(base, strlen(base), 0));
        return -1;
    }
    gyre_buf_appends(path, base);
    if (in->translated)
        return gyre_dialect_for(p->kind)->chat_request(in->chat, path, body, err);
    switch (in->endpoint) {
    case GYRE_COMPOSE_CHAT: return native_path(in, H2O_STRLIT("/chat/completions"), NULL, 0, path, err);
    case GYRE_COMPOSE_MESSAGES: return gyre_buf_appends(path, "/messages");
    case GYRE_COMPOSE_OTHER: return other_path(in, path, err);
    }
    return -1;
}

/* Each "name: value\r\n" line a dialect wrote: a token, a clean value, CRLF-terminated. */
static const char *dialect_lines_problem(const char *lines, size_t len)
{
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || eol == p || eol[-1] != '\r')
            return "is not a complete header line";
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || !gyre_wire_is_token(p, (size_t)(colon - p)))
            return "has a header name that is not a token";
        const char *v = colon + 1;
        while (v < eol - 1 && *v == ' ')
            v++;
        const char *problem = gyre_wire_header_value_problem(v, (size_t)(eol - 1 - v), GYRE_WIRE_HEADER_VALUE_MAX);
        if (problem != NULL)
            return problem;
        p = eol + 1;
    }
    return NULL;
}

static int put_uint(gyre_buf_t *b, size_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return gyre_buf_append(b, tmp + sizeof(tmp) - n, n);
}

/* The head: request line, host, the dialect's lines, gyre's request id, the length, then the client's headers
 * that make sense upstream, each checked. */
static int compose_head(const gyre_compose_t *in, const char *method, size_t mlen, const gyre_buf_t *path,
                        const gyre_buf_t *dh, size_t body_len, gyre_buf_t *b, gyre_api_error_t *err)
{
    const char *problem;
    if ((problem = gyre_wire_header_value_problem(in->request_id.base, in->request_id.len,
                                                  GYRE_WIRE_HEADER_VALUE_MAX)) != NULL) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_header", NULL,
                           "the request id cannot be sent to provider '%s': it %s", in->provider->name, problem);
        return -1;
    }
    size_t cap = mlen + path->len + in->host.len + dh->len + in->request_id.len + 96;
    for (size_t i = 0; i < in->nclient_headers; i++)
        cap += in->client_headers[i].name->len + in->client_headers[i].value.len + 4;
    int r = gyre_buf_reserve(b, cap < GYRE_COMPOSE_HEAD_MAX ? cap : GYRE_COMPOSE_HEAD_MAX);
    r |= gyre_buf_append(b, method, mlen);
    r |= gyre_buf_appends(b, " ");
    r |= gyre_buf_append(b, path->base, path->len);
    r |= gyre_buf_appends(b, " HTTP/1.1\r\nhost: ");
    r |= gyre_buf_append(b, in->host.base, in->host.len);
    r |= gyre_buf_appends(b, "\r\n");
    if (dh->len != 0)
        r |= gyre_buf_append(b, dh->base, dh->len);
    r |= gyre_buf_appends(b, "x-request-id: ");
    r |= gyre_buf_append(b, in->request_id.base, in->request_id.len);
    r |= gyre_buf_appends(b, "\r\n");
    if (in->has_body) {
        r |= gyre_buf_appends(b, "content-length: ");
        r |= put_uint(b, body_len);
        r |= gyre_buf_appends(b, "\r\n");
    }
    for (size_t i = 0; i < in->nclient_headers; i++) {
        const h2o_header_t *h = &in->client_headers[i];
        const char *name = h->orig_name != NULL ? h->orig_name : h->name->base;
        if (gyre_compose_drops_header(h->name->base, h->name->len, in->translated))
            continue;
        if (lines_have(dh->base, dh->len, h->name->base, h->name->len))
            continue; /* the dialect's own value wins */
        if (!gyre_wire_is_token(name, h->name->len)) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_header", NULL,
                               "a header name cannot be sent to provider '%s': it is not an HTTP token",
                               in->provider->name);
            return -1;
        }
        if ((problem = gyre_wire_header_value_problem(h->value.base, h->value.len, GYRE_WIRE_HEADER_VALUE_MAX)) !=
            NULL) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_header", NULL,
                               "header '%.*s' cannot be sent to provider '%s': its value %s", (int)h->name->len, name,
                               in->provider->name, problem);
            return -1;
        }
        r |= gyre_buf_append(b, name, h->name->len);
        r |= gyre_buf_appends(b, ": ");
        r |= gyre_buf_append(b, h->value.base, h->value.len);
        r |= gyre_buf_appends(b, "\r\n");
    }
    r |= gyre_buf_appends(b, "\r\n");
    /* A head over the bound is refused rather than sent: providers answer 431 to less.  The dialect's lines
     * count: gyre_compose_request's content-type line is checked here, by `dh`'s sticky error. */
    if (r != 0 || gyre_buf_failed(dh) || b->len > GYRE_COMPOSE_HEAD_MAX) {
        gyre_api_error_set(err, 400, "invalid_request_error", "request_headers_too_large", NULL,
                           "the request's headers for provider '%s' come to more than %d bytes", in->provider->name,
                           GYRE_COMPOSE_HEAD_MAX);
        return -1;
    }
    return 0;
}

int gyre_compose_request(const gyre_compose_t *in, gyre_buf_t *body, gyre_buf_t *head, gyre_api_error_t *err)
{
    const gyre_provider_conf_t *p = in->provider;
    const gyre_dialect_t *d = gyre_dialect_for(p->kind);
    gyre_buf_t path, dh;
    gyre_buf_init(&path, GYRE_WIRE_TARGET_MAX);
    gyre_buf_init(&dh, GYRE_COMPOSE_HEAD_MAX);
    gyre_buf_reset(head);
    int rc = -1;
    const char *method = "POST", *problem;
    size_t mlen = 4;
    if (in->endpoint == GYRE_COMPOSE_OTHER) {
        method = in->method.base;
        mlen = in->method.len;
    }
    if (!gyre_wire_is_token(method, mlen)) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_method", NULL,
                           "the method is not an HTTP token");
        goto out;
    }
    if (compose_path(in, body, &path, err) != 0)
        goto out;
    /* The one check of every piece written into the path (the base path, the endpoint's, a dialect's): a target
     * that lost a piece is refused, never sent somewhere else. */
    if (gyre_buf_failed(&path)) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_path", NULL,
                           "the request path for provider '%s' is longer than %d bytes", p->name,
                           GYRE_WIRE_TARGET_MAX);
        goto out;
    }
    /* Whatever wrote it, the target is checked once more as a whole: one request line, no way out of the path. */
    if ((problem = gyre_wire_target_problem(path.base, path.len, 0)) != NULL) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "model",
                           "the request path for provider '%s' %s", p->name, problem);
        goto out;
    }
    if ((problem = gyre_wire_header_value_problem(in->host.base, in->host.len, GYRE_WIRE_HEADER_VALUE_MAX)) != NULL ||
        in->host.len == 0) {
        gyre_api_error_set(err, 500, "server_error", "invalid_config", NULL, "the host of provider '%s' %s", p->name,
                           problem != NULL ? problem : "is empty");
        goto out;
    }
    /* A key goes into a header line as it is: one with a control byte would end the line and start another
     * (a dialect cannot tell), so it is refused here, never named. */
    if (in->key != NULL &&
        gyre_wire_header_value_problem(in->key, strlen(in->key), GYRE_WIRE_HEADER_VALUE_MAX) != NULL) {
        gyre_api_error_set(err, 500, "server_error", "invalid_key", NULL,
                           "a key of provider '%s' cannot be sent in a header: it has a control byte or is too long",
                           p->name);
        goto out;
    }
    if (d->auth_headers(in->chat, in->key, in->host.base, path.base, body->base, body->len, in->now, &dh) != 0) {
        gyre_api_error_set(err, 500, "server_error", "invalid_key", NULL,
                           "gyre could not write the authentication headers for provider '%s': its key is malformed "
                           "or has a byte a header cannot carry",
                           p->name);
        goto out;
    }
    if (in->translated && !lines_have(dh.base, dh.len, H2O_STRLIT("content-type")))
        gyre_buf_appends(&dh, "content-type: application/json\r\n");
    if ((problem = dialect_lines_problem(dh.base, dh.len)) != NULL) {
        /* Only a key can make a dialect's line bad: the message names the provider, never the line. */
        gyre_api_error_set(err, 500, "server_error", "invalid_key", NULL,
                           "a header gyre writes for provider '%s' %s (check its key)", p->name, problem);
        goto out;
    }
    rc = compose_head(in, method, mlen, &path, &dh, body->len, head, err);
out:
    if (rc != 0 && head->base != NULL) {
        /* Nothing half-built is left to send, and the key it may hold is gone. */
        explicit_bzero(head->base, head->len);
        gyre_buf_reset(head);
    }
    gyre_buf_dispose(&path);
    if (dh.base != NULL)
        explicit_bzero(dh.base, dh.len); /* a key was in there */
    gyre_buf_dispose(&dh);
    return rc;
}
