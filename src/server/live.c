/*
 * Live changes (live.h, docs/live.md): a new generation of the configuration
 * is built, checked, published and announced to the workers; the old one is
 * let go as its requests end.
 */
#include "server/live.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "config/overlay.h"
#include "control/access.h"
#include "control/alerts.h"
#include "control/audit.h"
#include "control/limits.h"
#include "control/notify.h"
#include "control/probe.h"
#include "loop/cluster.h"
#include "control/provider_keys.h"
#include "control/state.h"
#include "proxy/gen.h"
#include "route/override.h"
#include "trace/record.h"

/* Route overlays kept at most: each is a route (at most an admin body, 64 KiB). */
#define MAX_OVERLAYS 1024
/* The price table's file is read whole, at most this much (as at start). */
#define MAX_PRICES_BYTES (64 << 20)

/* One change at a time, from whichever thread asks (the main thread's SIGHUP, a worker's admin call). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
/* The server's reference to the generation in force is swapped, and a starting worker takes its own, under this
 * lock: a worker must not read the pointer and then find the generation freed before it counted itself. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
/* What /metrics shows (atomics). */
static uint64_t stat_ok, stat_error, stat_generation;
/* The file's own `listen:` and `workers:` as gyre first read them (the command line may override both, so the
 * configuration in force does not say what the file said): a new reading that differs needs a restart. */
static char fixed_listen[300];
static unsigned fixed_workers;

typedef struct live_message {
    h2o_multithread_message_t super;
    gyre_gen_t *gen; /* a reference, handed to the worker */
} live_message_t;

/*
 * Steps that complete a configuration read from its file before it is checked, in order; each returns 0, or a
 * negative errno with `err` saying what is wrong (no secret).  Provider keys added through the admin API
 * (control/provider_keys.h, gyre_provider_keys_apply) are one: its line goes in this table.
 */
typedef int (*complete_fn)(gyre_state_t *st, gyre_config_t *c, char *err, size_t errlen);
static int provider_keys(gyre_state_t *st, gyre_config_t *c, char *err, size_t errlen)
{
    char why[1024];
    if (st == NULL || gyre_provider_keys_apply(st, c, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "provider keys: %s", why);
    return -EINVAL;
}
static const complete_fn complete_steps[] = {
    provider_keys,
    NULL,
};

static SSL_CTX *create_upstream_ssl(const gyre_provider_conf_t *p, char *err, size_t errlen)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    if (p->tls_verify) {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_set_default_verify_paths(ssl) != 1) {
            /* Not fatal: a ca_file may still provide the anchors. */
            ERR_clear_error();
        }
        if (p->ca_file != NULL && SSL_CTX_load_verify_locations(ssl, p->ca_file, NULL) != 1) {
            snprintf(err, errlen, "provider '%s': cannot load ca_file %s", p->name, p->ca_file);
            SSL_CTX_free(ssl);
            return NULL;
        }
        /* The provider's name is checked by OpenSSL during chain verification.
         * h2o 2.2.5 checks it only when the handshake leaves no pending output,
         * which a TLS 1.3 handshake usually does, so its check cannot be relied
         * on (docs/decisions.md).  A provider has one host, and so does its
         * context. */
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, p->host) != 1 && X509_VERIFY_PARAM_set1_host(param, p->host, 0) != 1) {
            snprintf(err, errlen, "provider '%s': cannot verify certificates for host %s", p->name, p->host);
            SSL_CTX_free(ssl);
            return NULL;
        }
    } else {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    }
    return ssl;
}

/* What is made from a checked configuration (owned by the generation from here on).  NULL with `err`. */
static gyre_gen_t *build_gen(gyre_server_t *s, gyre_config_t *c, char *err, size_t errlen)
{
    gyre_gen_t *g = gyre_gen_create(c, s->nworkers);
    if (c->prices_file != NULL) {
        gyre_buf_t text;
        gyre_buf_init(&text, MAX_PRICES_BYTES);
        char why[256];
        int r = gyre_buf_append_file(&text, c->prices_file);
        if (r != 0)
            snprintf(why, sizeof(why), "cannot read it: %s", strerror(-r));
        else
            g->prices = gyre_prices_parse(text.base ? text.base : "", text.len, why, sizeof(why));
        gyre_buf_dispose(&text);
        if (g->prices == NULL) {
            snprintf(err, errlen, "prices %s: %s", c->prices_file, why);
            gyre_gen_release(g);
            return NULL;
        }
    } else {
        g->prices = gyre_prices_builtin();
    }
    g->access = gyre_access_create(&c->auth);
    g->caches = gyre_calloc(c->nroutes ? c->nroutes : 1, sizeof(*g->caches));
    for (size_t i = 0; i < c->nroutes; i++)
        if (c->routes[i].cache)
            g->caches[i] = gyre_cache_create(c->routes[i].cache_max_bytes, c->routes[i].cache_ttl_ms);
    g->upstream_ssl = gyre_calloc(c->nproviders ? c->nproviders : 1, sizeof(*g->upstream_ssl));
    for (size_t i = 0; i < c->nproviders; i++)
        if (c->providers[i].is_https && (g->upstream_ssl[i] = create_upstream_ssl(&c->providers[i], err, errlen)) == NULL) {
            gyre_gen_release(g);
            return NULL;
        }
    g->overrides = gyre_overrides_create(c);
    return g;
}

static int str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static void add_problem(gyre_buf_t *out, const char *source, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_problem(gyre_buf_t *out, const char *source, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gyre_buf_appendf(out, "%s%s: %s: ", out->len ? "\n" : "", source, field);
    gyre_buf_vappendf(out, fmt, ap);
    va_end(ap);
}

/*
 * What the new configuration `c` changes that only a restart can: the listener and the workers (made once), the
 * store, the trace log and the state database (opened once, by one process), the OTLP exporter and the access
 * log (made once), and
 * the bounds the connection layer and h2o read at start.  Each is named; values are shown where they are no
 * secret.  Returns how many.
 */
static int needs_restart(const gyre_server_t *s, const gyre_config_t *c, gyre_buf_t *out)
{
    const gyre_config_t *o = s->config;
    const char *src = c->source;
    size_t before = out->len;
    char listen[300];
    snprintf(listen, sizeof(listen), "%s:%u", c->listen_host, c->listen_port);
    if (strcmp(listen, fixed_listen) != 0)
        add_problem(out, src, "listen", "changing it needs a restart (was %s, now %s)", fixed_listen, listen);
    if (c->workers != fixed_workers)
        add_problem(out, src, "workers", "changing it needs a restart (was %u, now %u)", fixed_workers, c->workers);
    if (str_differs(c->store_dsn, o->store_dsn) || str_differs(c->store_sqlite, o->store_sqlite))
        add_problem(out, src, "store", "changing the store needs a restart (was %s, now %s)",
                    o->store_dsn ? o->store_dsn : "none", c->store_dsn ? c->store_dsn : "none");
    if (str_differs(c->store_log, o->store_log))
        add_problem(out, src, "store.log", "changing it needs a restart");
    if (c->traces != o->traces)
        add_problem(out, src, "store.traces", "changing it needs a restart");
    if (c->store_fsync_ms != o->store_fsync_ms)
        add_problem(out, src, "store.fsync_ms", "changing it needs a restart");
    if (c->store_retention_us != o->store_retention_us)
        add_problem(out, src, "store.retention", "changing it needs a restart");
    if (c->store_max_bytes != o->store_max_bytes)
        add_problem(out, src, "store.max_bytes", "changing it needs a restart");
    if (c->store_segment_bytes != o->store_segment_bytes)
        add_problem(out, src, "store.segment_bytes", "changing it needs a restart");
    if (str_differs(c->state_path, o->state_path))
        add_problem(out, src, "state", "changing it needs a restart");
    int otlp = str_differs(c->otlp.endpoint, o->otlp.endpoint) || str_differs(c->otlp.ca_file, o->otlp.ca_file) ||
               str_differs(c->otlp.service_name, o->otlp.service_name) || c->otlp.timeout_ms != o->otlp.timeout_ms ||
               c->otlp.batch_max != o->otlp.batch_max || c->otlp.interval_ms != o->otlp.interval_ms ||
               c->otlp.queue_max != o->otlp.queue_max || c->otlp.nheaders != o->otlp.nheaders;
    for (size_t i = 0; !otlp && i < c->otlp.nheaders; i++)
        otlp = strcmp(c->otlp.header_names[i], o->otlp.header_names[i]) != 0 ||
               strcmp(c->otlp.header_values[i], o->otlp.header_values[i]) != 0;
    if (otlp)
        add_problem(out, src, "otlp", "changing it needs a restart");
    /* The access log's writer is made once, at start (trace/access_log.h). */
    if (str_differs(c->access_log, o->access_log) || c->access_log_buffer_bytes != o->access_log_buffer_bytes ||
        c->access_log_flush_ms != o->access_log_flush_ms)
        add_problem(out, src, "access_log", "changing it needs a restart");
    static const struct {
        const char *field;
        size_t off;
        int size;
    } nums[] = {
        {"max_body_bytes", offsetof(gyre_config_t, max_body_bytes), sizeof(size_t)},
        {"max_header_bytes", offsetof(gyre_config_t, max_header_bytes), sizeof(size_t)},
        {"max_connections", offsetof(gyre_config_t, max_connections), sizeof(size_t)},
        {"linger_ms", offsetof(gyre_config_t, linger_ms), sizeof(uint64_t)},
        {"linger_bytes", offsetof(gyre_config_t, linger_bytes), sizeof(uint64_t)},
        {"shutdown_grace_ms", offsetof(gyre_config_t, shutdown_grace_ms), sizeof(uint64_t)},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        unsigned long long a, b;
        if (nums[i].size == sizeof(size_t) && sizeof(size_t) != sizeof(uint64_t)) {
            a = *(const size_t *)((const char *)o + nums[i].off);
            b = *(const size_t *)((const char *)c + nums[i].off);
        } else {
            a = *(const uint64_t *)((const char *)o + nums[i].off);
            b = *(const uint64_t *)((const char *)c + nums[i].off);
        }
        if (a != b)
            add_problem(out, src, nums[i].field, "changing it needs a restart (was %llu, now %llu)", a, b);
    }
    return out->len != before;
}

/* The route overlays kept in the state (names and JSON, malloc'd), in name order.  0, or -EIO with `err`. */
static int read_overlays(gyre_server_t *s, char ***names, char ***jsons, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *jsons = NULL;
    *n = 0;
    if (s->state == NULL)
        return 0;
    sqlite3 *db = gyre_state_lock(s->state);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "SELECT name, route FROM route_overlays ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "state %s: cannot read the route overlays: %s", gyre_state_path(s->state),
                 sqlite3_errmsg(db));
        gyre_state_unlock(s->state);
        return -EIO;
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < MAX_OVERLAYS) {
        *names = gyre_realloc(*names, (*n + 1) * sizeof(**names));
        *jsons = gyre_realloc(*jsons, (*n + 1) * sizeof(**jsons));
        (*names)[*n] = gyre_strdup((const char *)sqlite3_column_text(st, 0));
        (*jsons)[*n] = gyre_strdup((const char *)sqlite3_column_text(st, 1));
        (*n)++;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        snprintf(err, errlen, "state %s: cannot read the route overlays: %s", gyre_state_path(s->state),
                 sqlite3_errmsg(db));
        rc = -EIO;
    }
    sqlite3_finalize(st);
    gyre_state_unlock(s->state);
    return rc;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* Keeps (or, json NULL, removes) the overlay of route `name`.  0, or -EIO with `err`. */
static int write_overlay(gyre_server_t *s, const char *name, const char *json, char *err, size_t errlen)
{
    sqlite3 *db = gyre_state_lock(s->state);
    sqlite3_stmt *st = NULL;
    const char *sql = json != NULL ? "INSERT INTO route_overlays (name, route, updated_us) VALUES (?1, ?2, ?3) "
                                     "ON CONFLICT(name) DO UPDATE SET route = ?2, updated_us = ?3"
                                   : "DELETE FROM route_overlays WHERE name = ?1";
    int rc = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = -EIO;
    } else {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (json != NULL) {
            sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, gyre_trace_now_us());
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = -EIO;
    }
    if (rc != 0)
        snprintf(err, errlen, "state %s: cannot keep the route change: %s", gyre_state_path(s->state),
                 sqlite3_errmsg(db));
    sqlite3_finalize(st);
    gyre_state_unlock(s->state);
    return rc;
}

/* Reads the file and the overlays into a checked configuration, or NULL with every problem in `out`. */
static gyre_config_t *read_config(gyre_server_t *s, char **names, char **jsons, size_t n, gyre_buf_t *out)
{
    const char *path = strcmp(s->config->source, "<embedded default>") == 0 ? NULL : s->config->source;
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_load_with_routes(path, (const char *const *)names, (const char *const *)jsons, n,
                                                    &errs);
    for (size_t i = 0; i < errs.count; i++)
        gyre_buf_appendf(out, "%s%s", out->len ? "\n" : "", errs.items[i]);
    gyre_config_errors_dispose(&errs);
    if (c == NULL)
        return NULL;
    char why[1024];
    for (size_t i = 0; complete_steps[i] != NULL; i++)
        if (complete_steps[i](s->state, c, why, sizeof(why)) != 0)
            gyre_buf_appendf(out, "%s%s", out->len ? "\n" : "", why);
    /* The command line's --listen and --workers stay in force (what the file says of them is checked against
     * the file's first reading, in needs_restart). */
    if (fixed_listen[0] != '\0') {
        needs_restart(s, c, out);
        free(c->listen_host);
        c->listen_host = gyre_strdup(s->config->listen_host);
        c->listen_port = s->config->listen_port;
        c->workers = s->config->workers;
        /* A new `auth:` must not leave an address off loopback open (as at start). */
        if (gyre_access_exposure(c, why, sizeof(why)) == GYRE_EXPOSURE_REFUSED)
            gyre_buf_appendf(out, "%s%s: auth: %s", out->len ? "\n" : "", c->source, why);
    }
    if (out->len != 0) {
        gyre_config_free(c);
        return NULL;
    }
    return c;
}

static void on_live_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gyre_worker_t *w = H2O_STRUCT_FROM_MEMBER(gyre_worker_t, live_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        live_message_t *m = H2O_STRUCT_FROM_MEMBER(live_message_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        /* Messages come in the order they were sent; one older than what this worker already runs (it read the
         * newest at its start) changes nothing. */
        if (m->gen->number > w->super.gen->gen->number) {
            gyre_wgen_t *next = gyre_wgen_create(m->gen, w->super.id, w->super.ctx.loop,
                                                 &w->super.ctx.receivers.hostinfo_getaddr);
            /* An open breaker stays open across a reload that did not change its provider. */
            gyre_wgen_inherit(next, w->super.gen, h2o_now(w->super.ctx.loop));
            gyre_ctx_use_gen(&w->super, next);
        }
        gyre_gen_release(m->gen);
        free(m);
    }
}

void gyre_live_worker_init(gyre_worker_t *w)
{
    gyre_server_t *s = w->server;
    /* Taken and registered under the lock: a generation published after this reaches the worker by message, one
     * published before is the one it takes. */
    pthread_mutex_lock(&gen_lock);
    gyre_gen_t *g = s->gen;
    gyre_gen_retain(g);
    h2o_multithread_register_receiver(w->super.ctx.queue, &w->live_receiver, on_live_message);
    w->live_ready = 1;
    pthread_mutex_unlock(&gen_lock);
    gyre_ctx_use_gen(&w->super, gyre_wgen_create(g, w->super.id, w->super.ctx.loop,
                                                 &w->super.ctx.receivers.hostinfo_getaddr));
    gyre_gen_release(g);
}

/*
 * The one place where a new generation is announced, before the old one is let go, on the thread that made the
 * change (the workers keep running).  The server's own view first; then each feature configured per
 * configuration is told (its gyre_X_reconfigure(x, next) takes what it needs of the new configuration and, from
 * when it returns, uses the new generation's objects: g->overrides for the alert engine).
 */
static void announce(gyre_server_t *s, gyre_gen_t *g)
{
    s->prices = g->prices;
    s->caches = g->caches;
    s->access = g->access;
    s->upstream_ssl = g->upstream_ssl;
    s->overrides = g->overrides;
    if (s->alerts != NULL)
        gyre_alerts_reconfigure(s->alerts, g->config, g->overrides);
    if (s->notify != NULL)
        gyre_notify_reconfigure(s->notify, g->config);
    if (s->limits != NULL)
        gyre_limits_reconfigure(s->limits, g->config);
    if (s->probe != NULL)
        gyre_probe_reconfigure(s->probe, g->config);
    if (s->clusters != NULL)
        gyre_cluster_sched_reconfigure(s->clusters, g->config);
}

/* Puts `g` in force: the server's reference, then one message (and reference) per worker. */
static void publish(gyre_server_t *s, gyre_gen_t *g)
{
    g->number = __atomic_add_fetch(&stat_generation, 1, __ATOMIC_RELAXED);
    announce(s, g);
    pthread_mutex_lock(&gen_lock);
    gyre_gen_t *old = s->gen;
    s->gen = g;
    for (unsigned i = 0; s->workers != NULL && i < s->nworkers; i++) {
        gyre_worker_t *w = &s->workers[i];
        /* A worker that has not registered its receiver yet takes the new generation itself when it does; one
         * that has is messaged (the lock orders the two). */
        if (!w->live_ready)
            continue;
        live_message_t *m = gyre_calloc(1, sizeof(*m));
        gyre_gen_retain(g);
        m->gen = g;
        h2o_multithread_send_message(&w->live_receiver, &m->super);
    }
    pthread_mutex_unlock(&gen_lock);
    gyre_gen_release(old);
}

static void audit(gyre_server_t *s, const char *actor, const char *action, const char *object, const char *before,
                  const char *after)
{
    if (s->state == NULL)
        return;
    gyre_audit_entry_t e = {.actor = actor, .action = action, .object = object, .before = before, .after = after};
    char err[512];
    if (gyre_audit_record(s->state, &e, err, sizeof(err)) != 0)
        gyre_logf("gyre: the audit log did not take %s on %s: %s\n", action, object, err);
}

/* The route `name` of `c` as JSON (malloc'd), or NULL when `c` has no such route. */
static char *route_json_of(const gyre_config_t *c, const char *name)
{
    const gyre_route_conf_t *r = gyre_config_find_route(c, name, strlen(name));
    if (r == NULL)
        return NULL;
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    gyre_config_route_json(c, r, &b);
    char *out = gyre_buf_failed(&b) ? NULL : gyre_strdup(b.base);
    gyre_buf_dispose(&b);
    return out;
}

/*
 * The change itself, under the lock: the overlays from the state with route `name`'s set to `json` (or removed,
 * `remove`), read with the file into a new configuration; checked; kept; published.
 */
static int change(gyre_server_t *s, const char *actor, const char *action, const char *name, const char *json,
                  int remove, char *err, size_t errlen)
{
    char **names = NULL, **jsons = NULL;
    size_t n = 0;
    gyre_buf_t problems;
    gyre_buf_init(&problems, errlen > 1 ? errlen - 1 : 1);
    int rc = read_overlays(s, &names, &jsons, &n, err, errlen);
    if (rc != 0)
        goto out;
    if (name != NULL) {
        size_t i = 0;
        while (i < n && strcmp(names[i], name) != 0)
            i++;
        if (remove && i == n) {
            snprintf(err, errlen, "route '%s' has no change made through the admin API", name);
            rc = -ENOENT;
            goto out;
        }
        if (remove) {
            free(names[i]);
            free(jsons[i]);
            memmove(names + i, names + i + 1, (n - i - 1) * sizeof(*names));
            memmove(jsons + i, jsons + i + 1, (n - i - 1) * sizeof(*jsons));
            n--;
        } else if (i < n) {
            free(jsons[i]);
            jsons[i] = gyre_strdup(json);
        } else if (n == MAX_OVERLAYS) {
            snprintf(err, errlen, "at most %d routes can be changed through the admin API", MAX_OVERLAYS);
            rc = -EINVAL;
            goto out;
        } else {
            names = gyre_realloc(names, (n + 1) * sizeof(*names));
            jsons = gyre_realloc(jsons, (n + 1) * sizeof(*jsons));
            names[n] = gyre_strdup(name);
            jsons[n] = gyre_strdup(json);
            n++;
        }
    }
    gyre_config_t *c = read_config(s, names, jsons, n, &problems);
    gyre_gen_t *g = NULL;
    if (c != NULL) {
        char why[1024];
        if ((g = build_gen(s, c, why, sizeof(why))) == NULL)
            gyre_buf_appendf(&problems, "%s%s", problems.len ? "\n" : "", why);
    }
    if (g == NULL) {
        snprintf(err, errlen, "%s", problems.base != NULL ? problems.base : "the configuration cannot be read");
        rc = -EINVAL;
        goto out;
    }
    if (name != NULL && (rc = write_overlay(s, name, remove ? NULL : json, err, errlen)) != 0) {
        gyre_gen_release(g);
        goto out;
    }
    const gyre_gen_t *prev = s->gen;
    char *before = name != NULL ? route_json_of(prev->config, name) : NULL;
    char *after = name != NULL ? route_json_of(g->config, name) : NULL;
    uint64_t prev_number = prev->number;
    publish(s, g);
    char object[160];
    if (name == NULL && strcmp(action, "config.reload") == 0) {
        char b[64], a[64];
        snprintf(b, sizeof(b), "{\"generation\":%llu}", (unsigned long long)prev_number);
        snprintf(a, sizeof(a), "{\"generation\":%llu}", (unsigned long long)g->number);
        audit(s, actor, action, s->config->source, b, a);
    } else if (name != NULL) {
        snprintf(object, sizeof(object), "route:%s", name);
        audit(s, actor, action, object, before, after);
    }
    gyre_logf("gyre: configuration generation %llu in force (%s by %s%s%s): %zu route%s, %zu provider%s\n",
              (unsigned long long)g->number, action, actor, name != NULL ? ", route " : "", name != NULL ? name : "",
              g->config->nroutes, g->config->nroutes == 1 ? "" : "s", g->config->nproviders,
              g->config->nproviders == 1 ? "" : "s");
    free(before);
    free(after);
out:
    gyre_buf_dispose(&problems);
    free_list(names, n);
    free_list(jsons, n);
    if (rc == -EINVAL || rc == -EIO)
        __atomic_add_fetch(&stat_error, 1, __ATOMIC_RELAXED);
    else if (rc == 0)
        __atomic_add_fetch(&stat_ok, 1, __ATOMIC_RELAXED);
    return rc;
}

/* Logs a refused change, each problem on its own line as check-config prints them. */
static void log_refused(const char *actor, const char *action, const char *err)
{
    const char *p = err;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        gyre_logf("gyre: %.*s\n", (int)len, p);
        p += len + (nl != NULL);
    }
    gyre_logf("gyre: %s by %s refused; the configuration in force (generation %llu) keeps serving\n", action, actor,
              (unsigned long long)__atomic_load_n(&stat_generation, __ATOMIC_RELAXED));
}

int gyre_live_reload(gyre_server_t *s, const char *actor, const char *what, char *err, size_t errlen)
{
    pthread_mutex_lock(&live_lock);
    int rc = change(s, actor, what, NULL, NULL, 0, err, errlen);
    pthread_mutex_unlock(&live_lock);
    if (rc != 0)
        log_refused(actor, what, err);
    return rc;
}

int gyre_live_set_route(gyre_server_t *s, const char *actor, const char *action, const char *name,
                        const char *route_json, char *err, size_t errlen)
{
    if (s->state == NULL) {
        snprintf(err, errlen, "route changes are kept in the control-plane state, and none is configured (state: "
                              "PATH, or a store: with an sqlite file)");
        return -ENOTSUP;
    }
    pthread_mutex_lock(&live_lock);
    int rc = change(s, actor, action, name, route_json, route_json == NULL, err, errlen);
    pthread_mutex_unlock(&live_lock);
    if (rc != 0 && rc != -ENOENT)
        log_refused(actor, action, err);
    return rc;
}

int gyre_live_route_overridden(gyre_server_t *s, const char *name)
{
    if (s->state == NULL)
        return 0;
    sqlite3 *db = gyre_state_lock(s->state);
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM route_overlays WHERE name = ?1", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    gyre_state_unlock(s->state);
    return found;
}

int gyre_live_start(gyre_server_t *s, char *err, size_t errlen)
{
    if (s->state != NULL &&
        gyre_state_exec(s->state,
                        "CREATE TABLE IF NOT EXISTS route_overlays (name TEXT PRIMARY KEY, route TEXT NOT NULL, "
                        "updated_us INTEGER NOT NULL)",
                        err, errlen) != 0)
        return -1;
    char **names = NULL, **jsons = NULL;
    size_t n = 0;
    if (read_overlays(s, &names, &jsons, &n, err, errlen) != 0)
        return -1;
    gyre_buf_t problems;
    gyre_buf_init(&problems, 64 * 1024);
    /* The file as gyre reads it now is the one checked at start; with the overlays it is what goes in force.  An
     * overlay the file no longer admits (a provider renamed) is logged and left out, not a reason to stay down:
     * DELETE /api/admin/routes/NAME/override or a fixed PUT clears it. */
    gyre_config_t *c = read_config(s, names, jsons, n, &problems);
    if (c == NULL && n != 0) {
        for (const char *p = problems.base; p != NULL && *p != '\0';) {
            const char *nl = strchr(p, '\n');
            size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
            gyre_logf("gyre: %.*s\n", (int)len, p);
            p += len + (nl != NULL);
        }
        gyre_logf("gyre: the routes changed through the admin API are left out until fixed (above)\n");
        gyre_buf_reset(&problems);
        c = read_config(s, NULL, NULL, 0, &problems);
    }
    free_list(names, n);
    free_list(jsons, n);
    if (c == NULL) {
        /* The file was checked a moment ago (cli/serve.c): what is wrong now is what only this reading finds
         * (the provider keys kept in the state), or the file changed since. */
        snprintf(err, errlen, "%s", problems.base != NULL ? problems.base : "the configuration cannot be read");
        gyre_buf_dispose(&problems);
        return -1;
    }
    gyre_buf_dispose(&problems);
    /* What the file itself says of the listener and the workers, for the next readings (needs_restart). */
    snprintf(fixed_listen, sizeof(fixed_listen), "%s:%u", c->listen_host, c->listen_port);
    fixed_workers = c->workers;
    free(c->listen_host);
    c->listen_host = gyre_strdup(s->config->listen_host);
    c->listen_port = s->config->listen_port;
    c->workers = s->config->workers;
    gyre_gen_t *g = build_gen(s, c, err, errlen);
    if (g == NULL)
        return -1;
    publish(s, g);
    return 0;
}

void gyre_live_stats(gyre_live_stats_t *st)
{
    st->ok = __atomic_load_n(&stat_ok, __ATOMIC_RELAXED);
    st->error = __atomic_load_n(&stat_error, __ATOMIC_RELAXED);
    st->generation = __atomic_load_n(&stat_generation, __ATOMIC_RELAXED);
}

char *gyre_live_route_json(gyre_server_t *s, const char *name)
{
    pthread_mutex_lock(&live_lock); /* s->gen stays while the lock is held */
    char *out = route_json_of(s->gen->config, name);
    pthread_mutex_unlock(&live_lock);
    return out;
}

int gyre_live_routes_json(gyre_server_t *s, gyre_buf_t *out)
{
    pthread_mutex_lock(&live_lock);
    const gyre_config_t *c = s->gen->config;
    gyre_buf_appendf(out, "{\"generation\":%llu,\"routes\":[", (unsigned long long)s->gen->number);
    for (size_t i = 0; i < c->nroutes; i++) {
        if (i != 0)
            gyre_buf_appends(out, ",");
        gyre_config_route_json(c, &c->routes[i], out);
        /* The route's object, closed by route_json, reopened for where it came from. */
        if (out->len != 0 && out->base[out->len - 1] == '}')
            out->len--;
        gyre_buf_appendf(out, ",\"overridden\":%s}", gyre_live_route_overridden(s, c->routes[i].name) ? "true" : "false");
    }
    gyre_buf_appends(out, "]}");
    pthread_mutex_unlock(&live_lock);
    return gyre_buf_failed(out) ? -E2BIG : 0;
}
