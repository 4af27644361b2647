/*
 * The admin API's provider keys (admin.h, control/provider_keys.h):
 *
 *   GET    /api/admin/providers                  every provider and its keys' ids, never a key
 *   POST   /api/admin/providers/{name}/keys      {"key":"...","weight":1} -> {"id":"name#a1",...}
 *   DELETE /api/admin/providers/{name}/keys/{id} a key added here (the '#' of an id is sent as %23)
 *
 * A change is saved (sealed with the master key), audited, and put in force
 * by a live reload (server/live.h): 201 or 200 when it is in force at once.
 * When this gyre cannot reload live, or the reload is refused, the change is
 * saved all the same and takes effect at the next start: the answer is then
 * 202 with "in_force": false and a message saying so.  Not an error status,
 * because the change was made and recorded: a client that retried an error
 * would add the key twice.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/wire.h"
#include "control/provider_keys.h"
#include "proxy/respond.h"
#include "server/admin.h"
#include "server/live.h"

/* The most an answer lists: every provider with its keys (the configuration's and GYRE_PROVIDER_KEYS_MAX). */
#define LIST_MAX ((size_t)4 << 20)

static void fail(gyre_admin_req_t *a, int status, const char *code, const char *param, const char *msg)
{
    gyre_admin_error(a->req, status, code, param, "%s", msg);
}

/* The configuration the worker serves with now. */
static const gyre_config_t *in_force(gyre_admin_req_t *a)
{
    return a->worker->super.config;
}

static int key_in_force(const gyre_provider_conf_t *p, const char *id)
{
    for (size_t i = 0; i < p->nkeys; i++)
        if (strcmp(p->key_ids[i], id) == 0)
            return 1;
    return 0;
}

void gyre_admin_providers_list(gyre_admin_req_t *a)
{
    const gyre_config_t *c = in_force(a);
    gyre_state_t *st = a->worker->server->state;
    gyre_provider_key_info_t *stored = NULL;
    size_t nstored = 0;
    char err[512];
    if (st != NULL && gyre_provider_keys_list(st, &stored, &nstored, err, sizeof(err)) != 0) {
        fail(a, 500, "state_error", NULL, err);
        return;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, LIST_MAX);
    gyre_buf_appends(&b, "{\"providers\":[");
    for (size_t i = 0; i < c->nproviders; i++) {
        const gyre_provider_conf_t *p = &c->providers[i];
        gyre_buf_appends(&b, i ? ",{\"name\":" : "{\"name\":");
        gyre_buf_append_json_string(&b, p->name, strlen(p->name));
        gyre_buf_appends(&b, ",\"keys\":[");
        size_t n = 0;
        /* The keys in force: the file's, then those added here. */
        for (size_t k = 0; k < p->nkeys; k++) {
            int api = 0;
            for (size_t s = 0; s < nstored && !api; s++)
                api = strcmp(stored[s].id, p->key_ids[k]) == 0;
            /* An id of the "#a" form that is no longer stored was deleted and is in force until a reload. */
            const char *hash = strrchr(p->key_ids[k], '#');
            api |= hash != NULL && hash[1] == 'a';
            gyre_buf_appends(&b, n++ ? ",{\"id\":" : "{\"id\":");
            gyre_buf_append_json_string(&b, p->key_ids[k], strlen(p->key_ids[k]));
            gyre_buf_appendf(&b, ",\"source\":\"%s\",\"weight\":%u,\"in_force\":true}", api ? "api" : "config",
                             p->key_weights[k]);
        }
        /* Stored, not yet in force (added while this gyre could not reload). */
        for (size_t s = 0; s < nstored; s++) {
            if (strcmp(stored[s].provider, p->name) != 0 || key_in_force(p, stored[s].id))
                continue;
            gyre_buf_appends(&b, n++ ? ",{\"id\":" : "{\"id\":");
            gyre_buf_append_json_string(&b, stored[s].id, strlen(stored[s].id));
            gyre_buf_appendf(&b, ",\"source\":\"api\",\"weight\":%u,\"in_force\":false}", stored[s].weight);
        }
        gyre_buf_appends(&b, "]}");
    }
    gyre_buf_appends(&b, "]}");
    free(stored);
    if (gyre_buf_failed(&b))
        fail(a, 500, "response_too_large", NULL, "the provider list is larger than its bound");
    else
        gyre_admin_respond_json(a, 200, b.base, b.len);
    gyre_buf_dispose(&b);
}

/* The provider the path names, in the configuration in force; answers 404 and returns NULL when there is none. */
static const gyre_provider_conf_t *path_provider(gyre_admin_req_t *a)
{
    const gyre_provider_conf_t *p = gyre_config_find_provider(in_force(a), a->id, a->idlen);
    if (p == NULL) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 404, "invalid_request_error", "provider_not_found", NULL,
                           "no provider '%.*s' in the configuration", (int)(a->idlen < 64 ? a->idlen : 64), a->id);
        gyre_respond_error(a->req, &err);
    }
    return p;
}

/*
 * Puts a saved change in force and answers: `done` (201 or 200) with the change's JSON and "in_force": true, or
 * 202 with "in_force": false and why, when the reload could not happen.
 */
static void reload_and_answer(gyre_admin_req_t *a, const char *what, int done, const char *fields,
                              const char *not_in_force)
{
    char err[1024];
    int r = gyre_live_reload(a->worker->server, a->actor, what, err, sizeof(err));
    gyre_buf_t b;
    gyre_buf_init(&b, 16384);
    gyre_buf_appendf(&b, "{%s,\"in_force\":%s", fields, r == 0 ? "true" : "false");
    if (r != 0) {
        char msg[1536];
        snprintf(msg, sizeof(msg), "%s: %s", not_in_force,
                 r == -ENOTSUP ? "this gyre cannot reload its configuration live; restart it" : err);
        gyre_buf_appends(&b, ",\"message\":");
        gyre_buf_append_json_string(&b, msg, strlen(msg));
    }
    gyre_buf_appends(&b, "}");
    gyre_admin_respond_json(a, r == 0 ? done : 202, b.base, b.len);
    gyre_buf_dispose(&b);
}

void gyre_admin_providers_add_key(gyre_admin_req_t *a)
{
    gyre_state_t *st = a->worker->server->state;
    if (st == NULL) {
        gyre_admin_respond_no_state(a);
        return;
    }
    const gyre_provider_conf_t *p = path_provider(a);
    if (p == NULL)
        return;
    h2o_iovec_t body = a->req->entity;
    cJSON *j = NULL;
    if (body.len == 0 || !gyre_json_valid(body.base, body.len) ||
        !cJSON_IsObject(j = cJSON_ParseWithLength(body.base, body.len))) {
        cJSON_Delete(j);
        fail(a, 400, "invalid_json", NULL, "the body must be a JSON object: {\"key\": \"...\", \"weight\": 1}");
        return;
    }
    const cJSON *key = NULL;
    unsigned weight = 1;
    for (const cJSON *m = j->child; m != NULL; m = m->next) {
        if (strcmp(m->string, "key") == 0) {
            key = m;
        } else if (strcmp(m->string, "weight") == 0) {
            if (!cJSON_IsNumber(m) || m->valuedouble < 0 || m->valuedouble > GYRE_PROVIDER_KEY_WEIGHT_MAX ||
                m->valuedouble != (double)(unsigned)m->valuedouble) {
                cJSON_Delete(j);
                fail(a, 400, "invalid_value", "weight", "'weight' must be a whole number from 0 to 1000000");
                return;
            }
            weight = (unsigned)m->valuedouble;
        } else {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown field '%.64s' (known: key, weight)", m->string);
            cJSON_Delete(j);
            fail(a, 400, "unknown_parameter", NULL, msg);
            return;
        }
    }
    if (!cJSON_IsString(key) || key->valuestring == NULL) {
        cJSON_Delete(j);
        fail(a, 400, "invalid_value", "key", "'key' is required: the provider's API key, as a string");
        return;
    }
    char id[96], err[1024];
    size_t keylen = strlen(key->valuestring);
    int r = gyre_provider_keys_add(st, in_force(a), a->actor, p->name, key->valuestring, keylen, weight, id,
                                   sizeof(id), err, sizeof(err));
    /* The body's copy of the key is wiped before its memory is reused; h2o's copy goes with the request's pool. */
    explicit_bzero(key->valuestring, keylen);
    cJSON_Delete(j);
    if (r == -ENOKEY) {
        fail(a, 409, "master_key_not_configured", NULL, err);
        return;
    }
    if (r == -EINVAL && strncmp(err, "'key'", 5) == 0) {
        fail(a, 400, "invalid_value", "key", err);
        return;
    }
    if (r == -ENOSPC) {
        fail(a, 409, "too_many_keys", NULL, err);
        return;
    }
    if (r != 0) {
        fail(a, 500, "state_error", NULL, err);
        return;
    }
    char fields[256];
    snprintf(fields, sizeof(fields), "\"id\":\"%s\",\"provider\":\"%s\",\"weight\":%u", id, p->name, weight);
    reload_and_answer(a, "provider_key.create", 201, fields, "saved; not in force until the next restart");
}

/* Percent-decodes an id from the path ("mock%23a1"); -1 when malformed, too long, or holding a byte no key id has
 * (ids are a provider's name, [A-Za-z0-9._:-], then '#' and more of the same: nothing JSON must escape). */
static int decode_id(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3)
                return -1;
            int h = gyre_wire_hex_digit((unsigned char)s[i + 1]), l = gyre_wire_hex_digit((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h << 4 | l;
            i += 2;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c != 0 && strchr("._:-#", c) != NULL)) ||
            o + 1 >= size)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

void gyre_admin_providers_remove_key(gyre_admin_req_t *a)
{
    gyre_state_t *st = a->worker->server->state;
    if (st == NULL) {
        gyre_admin_respond_no_state(a);
        return;
    }
    const gyre_provider_conf_t *p = path_provider(a);
    if (p == NULL)
        return;
    char id[96], err[1024];
    if (decode_id(a->sub, a->sublen, id, sizeof(id)) != 0) {
        fail(a, 404, "provider_key_not_found", NULL,
             "no such key: a key id is a provider's name, '#' (sent as %23) and a number, at most 95 bytes");
        return;
    }
    int was_in_force = key_in_force(p, id);
    int r = gyre_provider_keys_remove(st, a->actor, p->name, id, err, sizeof(err));
    if (r == -ENOENT) {
        const char *hash = strrchr(id, '#');
        if (was_in_force && hash != NULL && hash[1] == 'a') {
            snprintf(err, sizeof(err), "key '%s' of provider '%s' was deleted already; it stays in use until the next "
                     "restart", id, p->name);
            fail(a, 404, "provider_key_not_found", NULL, err);
        } else if (was_in_force) {
            snprintf(err, sizeof(err),
                     "key '%s' of provider '%s' is declared in the configuration file: remove it there (and reload)",
                     id, p->name);
            fail(a, 409, "key_in_config_file", NULL, err);
        } else {
            fail(a, 404, "provider_key_not_found", NULL, err);
        }
        return;
    }
    if (r != 0) {
        fail(a, 500, "state_error", NULL, err);
        return;
    }
    char fields[256];
    snprintf(fields, sizeof(fields), "\"id\":\"%s\",\"provider\":\"%s\",\"deleted\":true", id, p->name);
    /* "in_force" of a deletion says whether it took effect: the key is out of use.  A key that was saved but never
     * put in force is out of use already. */
    if (!was_in_force) {
        char body[320];
        int n = snprintf(body, sizeof(body), "{%s,\"in_force\":true}", fields);
        gyre_admin_respond_json(a, 200, body, (size_t)n);
        return;
    }
    reload_and_answer(a, "provider_key.delete", 200, fields,
                      "deleted; the key stays in use until the next restart");
}
