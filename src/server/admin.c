/* The admin API's table and dispatch (admin.h). */
#include "server/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proxy/respond.h"
#include "server/admin_limits.h"

/* The endpoints; a new one is a function in its own file and a line here. */
static const gyre_admin_endpoint_t endpoints[] = {
    {"POST", "/api/admin/reload", 0, NULL, gyre_admin_reload},
    {"GET", "/api/admin/routes", 0, NULL, gyre_admin_routes_list},
    {"PUT", "/api/admin/routes", 1, NULL, gyre_admin_route_put},
    {"PATCH", "/api/admin/routes", 1, NULL, gyre_admin_route_patch},
    {"DELETE", "/api/admin/routes", 1, "override", gyre_admin_route_override_delete},
    {"GET", "/api/admin/providers", 0, NULL, gyre_admin_providers_list},
    {"POST", "/api/admin/providers", 1, "keys", gyre_admin_providers_add_key},
    {"DELETE", "/api/admin/providers", 1, "keys/", gyre_admin_providers_remove_key},
    {"POST", "/api/admin/keys", 0, NULL, gyre_admin_keys_create},
    {"GET", "/api/admin/keys", 0, NULL, gyre_admin_keys_list},
    {"GET", "/api/admin/keys", 1, NULL, gyre_admin_keys_show},
    {"DELETE", "/api/admin/keys", 1, NULL, gyre_admin_keys_revoke},
    {"POST", "/api/admin/keys", 1, "rotate", gyre_admin_keys_rotate},
    {"GET", "/api/admin/limits", 0, NULL, gyre_admin_limits_list},
    {"PUT", "/api/admin/limits/keys", 1, NULL, gyre_admin_limits_put_key},
    {"PUT", "/api/admin/limits/teams", 1, NULL, gyre_admin_limits_put_team},
    {"PUT", "/api/admin/limits/agents", 1, NULL, gyre_admin_limits_put_agent},
    {"PUT", "/api/admin/limits/users", 1, NULL, gyre_admin_limits_put_user},
    {"DELETE", "/api/admin/limits/keys", 1, NULL, gyre_admin_limits_delete_key},
    {"DELETE", "/api/admin/limits/teams", 1, NULL, gyre_admin_limits_delete_team},
    {"DELETE", "/api/admin/limits/agents", 1, NULL, gyre_admin_limits_delete_agent},
    {"DELETE", "/api/admin/limits/users", 1, NULL, gyre_admin_limits_delete_user},
    {NULL, NULL, 0, NULL, NULL},
};

static int has_prefix(const char *s, size_t len, const char *p, size_t plen)
{
    return len >= plen && memcmp(s, p, plen) == 0;
}

static int is_admin_path(const char *p, size_t len)
{
    return h2o_memis(p, len, H2O_STRLIT("/api/admin")) || has_prefix(p, len, H2O_STRLIT("/api/admin/"));
}

void gyre_admin_respond_json(gyre_admin_req_t *a, int status, const char *json, size_t len)
{
    gyre_respond_json(a->req, status, json, len);
}

void gyre_admin_error(h2o_req_t *req, int status, const char *code, const char *param, const char *fmt, ...)
{
    gyre_api_error_t err;
    char msg[sizeof(err.message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gyre_api_error_set(&err, status, status >= 500 ? "server_error" : "invalid_request_error", code, param, "%s", msg);
    gyre_respond_error(req, &err);
}

void gyre_admin_respond_no_state(gyre_admin_req_t *a)
{
    gyre_api_error_t err;
    gyre_api_error_set(&err, 404, "invalid_request_error", "state_not_configured", NULL,
                       "this gateway keeps no control-plane state: the config has neither a store (store: {sqlite: "
                       "PATH}) nor state: PATH");
    gyre_respond_error(a->req, &err);
}

/*
 * Whether the path after an endpoint's id, `rest` (NULL when the path ends at the id), is what the endpoint's
 * suffix asks for; sets *sub to the last segment for a suffix that ends in '/'.
 */
static int suffix_matches(const char *suffix, const char *rest, size_t rlen, const char **sub, size_t *sublen)
{
    if (suffix == NULL)
        return rest == NULL;
    if (rest == NULL)
        return 0;
    size_t slen = strlen(suffix);
    if (suffix[slen - 1] != '/')
        return h2o_memis(rest, rlen, suffix, slen);
    size_t fixed = slen; /* "keys/" */
    if (rlen <= fixed || memcmp(rest, suffix, fixed) != 0 || memchr(rest + fixed, '/', rlen - fixed) != NULL)
        return 0;
    *sub = rest + fixed;
    *sublen = rlen - fixed;
    return 1;
}

int gyre_admin_handle(gyre_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t path = h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    int raw = is_admin_path(path.base, path.len),
        norm = is_admin_path(req->path_normalized.base, req->path_normalized.len);
    if (!raw && !norm)
        return 0;
    /* The access stage judged the normalised path, the table below reads the path as sent: they must agree, or a
     * dot segment could take a read token's request into the admin API ("/api/admin/../traces" is not admin when
     * normalised) or an admin path out of it. */
    if (raw != norm) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 400, "invalid_request_error", "invalid_path", NULL,
                           "an admin API path must be written plainly, without dot segments or escaped slashes");
        gyre_respond_error(req, &err);
        return 1;
    }
    int path_known = 0;
    for (const gyre_admin_endpoint_t *e = endpoints; e->prefix != NULL; e++) {
        size_t plen = strlen(e->prefix);
        const char *id = "", *sub = "";
        size_t idlen = 0, sublen = 0;
        if (!e->with_id) {
            if (!h2o_memis(path.base, path.len, e->prefix, plen))
                continue;
        } else {
            if (!has_prefix(path.base, path.len, e->prefix, plen) || path.len <= plen + 1 || path.base[plen] != '/')
                continue;
            id = path.base + plen + 1;
            const char *end = memchr(id, '/', path.base + path.len - id);
            if (!suffix_matches(e->suffix, end != NULL ? end + 1 : NULL,
                                end != NULL ? (size_t)(path.base + path.len - end - 1) : 0, &sub, &sublen))
                continue;
            idlen = (end != NULL ? end : path.base + path.len) - id;
            if (idlen == 0)
                continue;
        }
        path_known = 1;
        if (!h2o_memis(req->method.base, req->method.len, e->method, strlen(e->method)))
            continue;
        if (req->entity.len > GYRE_ADMIN_MAX_BODY) {
            gyre_api_error_t err;
            gyre_api_error_set(&err, 413, "invalid_request_error", "request_too_large", NULL,
                               "an admin request body is at most %zu bytes", GYRE_ADMIN_MAX_BODY);
            gyre_respond_error(req, &err);
            return 1;
        }
        gyre_admin_req_t a = {.worker = w,
                              .req = req,
                              .id = id,
                              .idlen = idlen,
                              .sub = sub,
                              .sublen = sublen,
                              /* Without `auth:` (or with `auth: none`) nobody showed a token. */
                              .actor = w->super.config->auth.mode == GYRE_AUTH_KEYS ? "admin_token" : "anonymous"};
        e->fn(&a);
        return 1;
    }
    gyre_api_error_t err;
    if (path_known)
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s is not allowed on %.*s", (int)(req->method.len < 32 ? req->method.len : 32),
                           req->method.base, (int)(path.len < 256 ? path.len : 256), path.base);
    else
        gyre_api_error_set(&err, 404, "invalid_request_error", "unknown_url", NULL, "unknown admin path %.*s",
                           (int)(path.len < 256 ? path.len : 256), path.base);
    gyre_respond_error(req, &err);
    return 1;
}
