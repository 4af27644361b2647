/* Loading and unloading a candidate where it is served (serve.h). */
#include "loop/serve.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "otlp/httpc.h"

static const gyre_provider_conf_t *find_provider(const gyre_config_t *c, const char *name)
{
    for (size_t i = 0; c != NULL && name != NULL && i < c->nproviders; i++)
        if (c->providers[i].name != NULL && strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

/* One exchange with the serving provider: `suffix` after its base_url (root: without a trailing "/v1"), body
 * NULL for a GET.  The answer's body goes to `answer`.  0 with *status, or a negative errno with err filled. */
static int exchange(const gyre_provider_conf_t *p, int root, const char *suffix, const char *body, int *status,
                    gyre_buf_t *answer, char *err, size_t errlen)
{
    char url[2048];
    size_t blen = strlen(p->base_url);
    while (blen > 0 && p->base_url[blen - 1] == '/')
        blen--;
    if (root && blen >= 3 && memcmp(p->base_url + blen - 3, "/v1", 3) == 0)
        blen -= 3;
    if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)blen, p->base_url, suffix) >= sizeof(url)) {
        snprintf(err, errlen, "provider '%s': its base_url is too long", p->name);
        return -EINVAL;
    }
    gyre_httpc_url_t u;
    if (gyre_httpc_parse_url(url, &u) != 0) {
        snprintf(err, errlen, "provider '%s': base_url is not an http(s) URL", p->name);
        return -EINVAL;
    }
    char msg[256] = "";
    SSL_CTX *ssl = NULL;
    if (u.https && (ssl = gyre_httpc_ssl_create(u.host, p->ca_file, msg, sizeof(msg))) == NULL) {
        snprintf(err, errlen, "provider '%s': %s", p->name, msg);
        return -EPROTO;
    }
    char auth[1024];
    gyre_httpc_header_t h[1];
    size_t nh = 0;
    if (p->nkeys > 0 && p->keys[0] != NULL && snprintf(auth, sizeof(auth), "Bearer %s", p->keys[0]) < (int)sizeof(auth))
        h[nh++] = (gyre_httpc_header_t){"Authorization", auth};
    int r = body != NULL ? gyre_httpc_post_read(&u, ssl, h, nh, "application/json", body, strlen(body),
                                                GYRE_SERVE_TIMEOUT_MS, status, answer, msg, sizeof(msg))
                         : gyre_httpc_get_read(&u, ssl, h, nh, GYRE_SERVE_TIMEOUT_MS, status, answer, msg, sizeof(msg));
    explicit_bzero(auth, sizeof(auth));
    if (ssl != NULL)
        SSL_CTX_free(ssl);
    if (r != 0)
        snprintf(err, errlen, "provider '%s': %s%s: %s", p->name, body != NULL ? "POST " : "GET ", suffix, msg);
    return r;
}

/* The server's refusal as an error: its status and the start of its answer (a vLLM error says why). */
static int refused(const gyre_provider_conf_t *p, const char *what, int status, const gyre_buf_t *answer, char *err,
                   size_t errlen)
{
    int n = answer->len < 200 ? (int)answer->len : 200;
    snprintf(err, errlen, "provider '%s': %s answered %d: %.*s", p->name, what, status, n,
             answer->base != NULL ? answer->base : "");
    return -EPROTO;
}

int gyre_serve_llamacpp_id(const char *answer, size_t len, const char *path, long *id)
{
    cJSON *list = cJSON_ParseWithLength(answer != NULL ? answer : "", len);
    int r = cJSON_IsArray(list) ? -ENOENT : -EPROTO;
    const cJSON *e, *arr = cJSON_IsArray(list) ? list : NULL;
    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(e, "path");
        const cJSON *ei = cJSON_GetObjectItemCaseSensitive(e, "id");
        /* An id is a small whole number (an index into the server's list). */
        if (cJSON_IsString(ep) && cJSON_IsNumber(ei) && ei->valuedouble >= 0 && ei->valuedouble <= 1e6 &&
            strcmp(ep->valuestring, path) == 0) {
            *id = (long)ei->valuedouble;
            r = 0;
            break;
        }
    }
    cJSON_Delete(list);
    return r;
}

/* llama.cpp: the id of the adapter loaded from `path` (GET /lora-adapters), or -ENOENT. */
static int llamacpp_find(const gyre_provider_conf_t *p, const char *path, long *id, char *err, size_t errlen)
{
    gyre_buf_t a;
    gyre_buf_init(&a, GYRE_SERVE_ANSWER_MAX);
    int status = 0, r = exchange(p, 1, "/lora-adapters", NULL, &status, &a, err, errlen);
    if (r == 0 && status != 200)
        r = refused(p, "GET /lora-adapters", status, &a, err, errlen);
    if (r == 0) {
        r = gyre_serve_llamacpp_id(a.base, a.len, path, id);
        if (r == -EPROTO)
            snprintf(err, errlen, "provider '%s': GET /lora-adapters did not answer a JSON array", p->name);
        else if (r == -ENOENT)
            snprintf(err, errlen,
                     "provider '%s': llama.cpp's server has no adapter loaded from '%.300s' (start it with --lora "
                     "PATH)",
                     p->name, path);
    }
    gyre_buf_dispose(&a);
    return r;
}

static int llamacpp_scale(const gyre_provider_conf_t *p, long id, double scale, char *err, size_t errlen)
{
    char body[96];
    snprintf(body, sizeof(body), "[{\"id\":%ld,\"scale\":%g}]", id, scale);
    gyre_buf_t a;
    gyre_buf_init(&a, GYRE_SERVE_ANSWER_MAX);
    int status = 0, r = exchange(p, 1, "/lora-adapters", body, &status, &a, err, errlen);
    if (r == 0 && status != 200)
        r = refused(p, "POST /lora-adapters", status, &a, err, errlen);
    gyre_buf_dispose(&a);
    return r;
}

static int vllm_call(const gyre_provider_conf_t *p, const char *what, const char *name, const char *path, char *err,
                     size_t errlen)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "lora_name", name);
    if (path != NULL)
        cJSON_AddStringToObject(o, "lora_path", path);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    gyre_buf_t a;
    gyre_buf_init(&a, GYRE_SERVE_ANSWER_MAX);
    int status = 0, r = body != NULL ? exchange(p, 0, what, body, &status, &a, err, errlen) : -ENOMEM;
    if (r == 0 && (status < 200 || status > 299))
        r = refused(p, what, status, &a, err, errlen);
    gyre_buf_dispose(&a);
    cJSON_free(body);
    return r;
}

int gyre_serve_load(const gyre_config_t *c, const gyre_serve_conf_t *conf, const char *artifact, const char *name,
                    char *target_model, size_t size, char *err, size_t errlen)
{
    if (conf->adapter == GYRE_ADAPTER_NONE) {
        if ((size_t)snprintf(target_model, size, "%s", artifact) >= size) {
            snprintf(err, errlen, "serve: the model name '%.100s...' is too long", artifact);
            return -ENAMETOOLONG;
        }
        return 0;
    }
    const gyre_provider_conf_t *p = find_provider(c, conf->provider);
    if (p == NULL) {
        snprintf(err, errlen, "serve.provider: no provider is named '%s'", conf->provider ? conf->provider : "");
        return -ENOENT;
    }
    if ((size_t)snprintf(target_model, size, "%s", name) >= size) {
        snprintf(err, errlen, "serve.name: '%.100s...' is too long", name);
        return -ENAMETOOLONG;
    }
    if (conf->adapter == GYRE_ADAPTER_VLLM)
        return vllm_call(p, "/load_lora_adapter", name, artifact, err, errlen);
    long id = 0;
    int r = llamacpp_find(p, artifact, &id, err, errlen);
    return r != 0 ? r : llamacpp_scale(p, id, 1.0, err, errlen);
}

int gyre_serve_unload(const gyre_config_t *c, const gyre_serve_conf_t *conf, const char *name, char *err, size_t errlen)
{
    if (conf->adapter == GYRE_ADAPTER_NONE)
        return 0;
    const gyre_provider_conf_t *p = find_provider(c, conf->provider);
    if (p == NULL) {
        snprintf(err, errlen, "serve.provider: no provider is named '%s'", conf->provider ? conf->provider : "");
        return -ENOENT;
    }
    if (conf->adapter == GYRE_ADAPTER_VLLM)
        return vllm_call(p, "/unload_lora_adapter", name, NULL, err, errlen);
    long id = 0;
    int r = llamacpp_find(p, name, &id, err, errlen);
    return r != 0 ? r : llamacpp_scale(p, id, 0.0, err, errlen);
}
