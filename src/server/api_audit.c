/*
 * GET /api/audit (api.h): the audit log, newest first, a page at a time.
 *
 *   since, until   unix milliseconds or RFC 3339; since <= time < until
 *   action, actor  exact ("provider_key.create", "admin_token")
 *   limit          1 to 1000 (default 100)
 *   cursor         a page's next_cursor, for the page after it
 *
 * Reading needs the read token (the access stage): the audit log holds ids,
 * names and settings, never a secret (control/audit.h).  The page is read on
 * the worker: one indexed query under the state's lock, at most
 * GYRE_AUDIT_LIMIT_MAX rows, and audit reads are rare.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/time.h"
#include "control/audit.h"
#include "proxy/respond.h"
#include "server/api.h"

/* The largest page: 1000 entries whose before and after are each far below their 64 KiB bound in practice; a
 * page past it is refused with a 400 asking for a smaller limit. */
#define AUDIT_PAGE_MAX ((size_t)32 << 20)

enum { A_SINCE, A_UNTIL, A_ACTION, A_ACTOR, A_LIMIT, A_CURSOR, A_COUNT };
static const char *const names[A_COUNT] = {"since", "until", "action", "actor", "limit", "cursor"};
#define LIST "since, until, action, actor, limit, cursor"

static int whole(const char *v, unsigned long long max, unsigned long long *out)
{
    if (*v == '\0')
        return -1;
    unsigned long long n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || n > (max - (unsigned)(*p - '0')) / 10)
            return -1;
        n = n * 10 + (unsigned)(*p - '0');
    }
    *out = n;
    return 0;
}

static int set(void *ctx, int which, const char *v, gyre_api_error_t *err)
{
    gyre_audit_query_t *q = ctx;
    unsigned long long u;
    switch (which) {
    case A_SINCE:
    case A_UNTIL:
        if (gyre_time_parse(v, which == A_SINCE ? &q->since_us : &q->until_us) != 0) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", names[which],
                               "'%s' must be unix milliseconds or an RFC 3339 time such as 2026-12-01T10:00:00Z, got "
                               "'%.64s'",
                               names[which], v);
            return -1;
        }
        return 0;
    case A_ACTION: q->action = v; return 0;
    case A_ACTOR: q->actor = v; return 0;
    case A_LIMIT:
        if (whole(v, 1000000, &u) != 0 || u < 1 || u > GYRE_AUDIT_LIMIT_MAX) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "limit",
                               "'limit' must be a whole number from 1 to %d, got '%.64s'", GYRE_AUDIT_LIMIT_MAX, v);
            return -1;
        }
        q->limit = (unsigned)u;
        return 0;
    case A_CURSOR:
        if (whole(v, (unsigned long long)INT64_MAX, &u) != 0 || u == 0) {
            gyre_api_error_set(err, 400, "invalid_request_error", "invalid_value", "cursor",
                               "'cursor' must be a page's next_cursor, got '%.64s'", v);
            return -1;
        }
        q->cursor = (int64_t)u;
        return 0;
    }
    return 0;
}

int gyre_api_audit_handle(gyre_worker_t *w, h2o_req_t *req)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (!h2o_memis(req->path.base, plen, H2O_STRLIT("/api/audit")) &&
        !h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/api/audit")))
        return 0;
    gyre_api_error_t err;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s /api/audit is not allowed; use GET", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        gyre_respond_error(req, &err);
        return 1;
    }
    gyre_state_t *st = w->server->state;
    if (st == NULL) {
        gyre_api_error_set(&err, 404, "invalid_request_error", "state_not_configured", NULL,
                           "this gateway keeps no audit log: the config has neither a store (store: {sqlite: PATH}) "
                           "nor state: PATH");
        gyre_respond_error(req, &err);
        return 1;
    }
    gyre_audit_query_t q = {0};
    char *strings = h2o_mem_alloc_pool(&req->pool, GYRE_API_QUERY_MAX + 1);
    const char *qs = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : NULL;
    size_t qlen = qs != NULL ? req->path.len - req->query_at - 1 : 0;
    if (gyre_api_parse_params(qs, qlen, names, A_COUNT, LIST, set, &q, strings, &err) != 0) {
        gyre_respond_error(req, &err);
        return 1;
    }
    if (q.since_us != 0 && q.until_us != 0 && q.until_us <= q.since_us) {
        gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_value", "until",
                           "'until' must be later than 'since'");
        gyre_respond_error(req, &err);
        return 1;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, AUDIT_PAGE_MAX);
    char msg[512];
    int r = gyre_audit_query(st, &q, &b, msg, sizeof(msg));
    if (r == -E2BIG)
        gyre_api_error_set(&err, 400, "invalid_request_error", "page_too_large", "limit",
                           "the page is larger than %zu bytes: ask for fewer entries with 'limit'", AUDIT_PAGE_MAX);
    else if (r != 0)
        gyre_api_error_set(&err, 500, "server_error", "state_error", NULL, "%s", msg);
    if (r != 0)
        gyre_respond_error(req, &err);
    else
        gyre_respond_json(req, 200, b.base, b.len);
    gyre_buf_dispose(&b);
    return 1;
}
