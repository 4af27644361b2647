/* The admin API's table and dispatch (admin.h). */
#include "server/admin.h"

#include <string.h>

#include "proxy/respond.h"

/* The endpoints; a new one is a function in its own file and a line here. */
static const gyre_admin_endpoint_t endpoints[] = {
    {"GET", "/api/admin/routes", 0, NULL, gyre_admin_routes_list},
    {"PUT", "/api/admin/routes", 1, NULL, gyre_admin_route_put},
    {"PATCH", "/api/admin/routes", 1, NULL, gyre_admin_route_patch},
    {"DELETE", "/api/admin/routes", 1, "override", gyre_admin_route_override_delete},
    {NULL, NULL, 0, NULL, NULL},
};

static int has_prefix(const char *s, size_t len, const char *p, size_t plen)
{
    return len >= plen && memcmp(s, p, plen) == 0;
}

int gyre_admin_handle(gyre_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t path = h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    if (!h2o_memis(path.base, path.len, H2O_STRLIT("/api/admin")) &&
        !has_prefix(path.base, path.len, H2O_STRLIT("/api/admin/")))
        return 0;
    int path_known = 0;
    for (const gyre_admin_endpoint_t *e = endpoints; e->prefix != NULL; e++) {
        size_t plen = strlen(e->prefix);
        const char *id = "";
        size_t idlen = 0;
        if (!e->with_id) {
            if (!h2o_memis(path.base, path.len, e->prefix, plen))
                continue;
        } else {
            if (!has_prefix(path.base, path.len, e->prefix, plen) || path.len <= plen + 1 || path.base[plen] != '/')
                continue;
            id = path.base + plen + 1;
            const char *end = memchr(id, '/', path.base + path.len - id);
            size_t slen = e->suffix != NULL ? strlen(e->suffix) : 0;
            if (e->suffix == NULL ? end != NULL
                                  : end == NULL || !h2o_memis(end + 1, path.base + path.len - end - 1, e->suffix, slen))
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
        gyre_admin_req_t a = {.worker = w, .req = req, .id = id, .idlen = idlen, .actor = "admin_token"};
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
