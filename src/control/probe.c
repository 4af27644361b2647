/* Active health probes per provider (see probe.h). */
#include "control/probe.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "otlp/httpc.h"

typedef struct entry {
    char *name;
    gyre_provider_kind_t kind;
    char url[1400];
    char *key; /* the first key (a secret: wiped before it is freed); NULL when the provider has none */
    char *api_version;
    char *ca_file;
    int tls_verify;
    uint64_t interval_ms, timeout_ms;
    unsigned unhealthy_after;
    /* State, kept across reloads for the same name. */
    uint64_t due_ms;
    unsigned fails;    /* consecutive */
    int healthy;       /* 1 until unhealthy_after failures in a row */
    int last_status;   /* the last failure's HTTP status, or 0 */
    char last_err[64]; /* the last failure's error ("Connection refused"), when it had no status */
    uint64_t ok, failed;
} entry_t;

struct gyre_probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, has_thread;
    pthread_t thread;
    entry_t *e;
    size_t n;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void entry_free(entry_t *e)
{
    if (e->key != NULL) {
        explicit_bzero(e->key, strlen(e->key));
        free(e->key);
    }
    free(e->name);
    free(e->api_version);
    free(e->ca_file);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* The entries for `c`'s providers with a check; the state of one of the same name in `old` carried over. */
static int build(const gyre_config_t *c, const entry_t *old, size_t nold, entry_t **out, size_t *nout)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nproviders; i++)
        n += c->providers[i].hc_enabled != 0;
    entry_t *e = calloc(n ? n : 1, sizeof(*e));
    if (e == NULL)
        return -1;
    uint64_t now = now_ms();
    size_t j = 0;
    for (size_t i = 0; i < c->nproviders; i++) {
        const gyre_provider_conf_t *p = &c->providers[i];
        if (!p->hc_enabled)
            continue;
        entry_t *x = &e[j++];
        x->name = strdup(p->name);
        x->kind = p->kind;
        size_t bl = strlen(p->base_url);
        while (bl > 0 && p->base_url[bl - 1] == '/')
            bl--;
        snprintf(x->url, sizeof(x->url), "%.*s%s", (int)bl, p->base_url, p->hc_path != NULL ? p->hc_path : "/models");
        x->key = p->nkeys != 0 ? strdup(p->keys[0]) : NULL;
        x->api_version = dup_or_null(p->api_version);
        x->ca_file = dup_or_null(p->ca_file);
        x->tls_verify = p->tls_verify;
        x->interval_ms = p->hc_interval_ms;
        x->timeout_ms = p->hc_timeout_ms;
        x->unhealthy_after = p->hc_unhealthy_after ? p->hc_unhealthy_after : 1;
        x->healthy = 1;
        x->due_ms = now;
        for (size_t k = 0; k < nold; k++)
            if (strcmp(old[k].name, p->name) == 0) {
                x->fails = old[k].fails;
                x->healthy = old[k].healthy;
                x->last_status = old[k].last_status;
                memcpy(x->last_err, old[k].last_err, sizeof(x->last_err));
                x->ok = old[k].ok;
                x->failed = old[k].failed;
                x->due_ms = old[k].due_ms < now + x->interval_ms ? old[k].due_ms : now + x->interval_ms;
            }
        if (x->name == NULL || (p->nkeys != 0 && x->key == NULL)) {
            for (size_t k = 0; k < j; k++)
                entry_free(&e[k]);
            free(e);
            return -1;
        }
    }
    *out = e;
    *nout = n;
    return 0;
}

/* One probe, outside the lock: 1 healthy, 0 failing (status or err filled). */
static int probe_once(const entry_t *x, int *status, char *err, size_t errlen)
{
    gyre_httpc_url_t u;
    *status = 0;
    if (gyre_httpc_parse_url(x->url, &u) != 0) {
        snprintf(err, errlen, "bad URL");
        return 0;
    }
    SSL_CTX *ssl = NULL;
    char terr[256];
    if (u.https) {
        if ((ssl = gyre_httpc_ssl_create(u.host, x->ca_file, terr, sizeof(terr))) == NULL) {
            snprintf(err, errlen, "TLS setup failed");
            return 0;
        }
        if (!x->tls_verify)
            SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    }
    /* The key as the provider's kind sends it; bedrock (SigV4) gets none: reachability only. */
    char bearer[8200];
    gyre_httpc_header_t h[2];
    size_t nh = 0;
    if (x->key != NULL) {
        switch (x->kind) {
        case GYRE_PROVIDER_OPENAI:
            snprintf(bearer, sizeof(bearer), "Bearer %s", x->key);
            h[nh++] = (gyre_httpc_header_t){"Authorization", bearer};
            break;
        case GYRE_PROVIDER_ANTHROPIC:
            h[nh++] = (gyre_httpc_header_t){"x-api-key", x->key};
            h[nh++] = (gyre_httpc_header_t){"anthropic-version", x->api_version ? x->api_version : "2023-06-01"};
            break;
        case GYRE_PROVIDER_AZURE: h[nh++] = (gyre_httpc_header_t){"api-key", x->key}; break;
        case GYRE_PROVIDER_GEMINI: h[nh++] = (gyre_httpc_header_t){"x-goog-api-key", x->key}; break;
        default: break;
        }
    }
    char herr[256];
    int rc = gyre_httpc_get(&u, ssl, h, nh, (unsigned)x->timeout_ms, status, herr, sizeof(herr));
    explicit_bzero(bearer, sizeof(bearer));
    if (ssl != NULL)
        SSL_CTX_free(ssl);
    if (rc != 0) {
        *status = 0;
        snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
        return 0;
    }
    if (x->kind == GYRE_PROVIDER_BEDROCK || (*status >= 200 && *status < 300))
        return 1;
    return 0;
}

static void *prober_main(void *arg)
{
    gyre_probe_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        uint64_t now = now_ms(), next = now + 1000;
        entry_t *due = NULL;
        for (size_t i = 0; i < p->n; i++) {
            if (p->e[i].due_ms <= now && due == NULL)
                due = &p->e[i];
            else if (p->e[i].due_ms < next)
                next = p->e[i].due_ms;
        }
        if (due == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = next > now ? next - now : 1;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        /* A copy to probe with, the lock let go across the call (a reload may replace the entries meanwhile). */
        entry_t x = *due;
        x.name = strdup(due->name);
        x.key = dup_or_null(due->key);
        x.api_version = dup_or_null(due->api_version);
        x.ca_file = dup_or_null(due->ca_file);
        due->due_ms = now + due->interval_ms;
        pthread_mutex_unlock(&p->mu);
        int status;
        char err[64] = "";
        int ok = x.name != NULL && probe_once(&x, &status, err, sizeof(err));
        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; x.name != NULL && i < p->n; i++) {
            entry_t *e = &p->e[i];
            if (strcmp(e->name, x.name) != 0)
                continue;
            if (ok) {
                e->ok++;
                e->fails = 0;
                if (!e->healthy)
                    gyre_logf("gyre: provider '%s': health check passes again: healthy\n", e->name);
                e->healthy = 1;
            } else {
                e->failed++;
                e->fails++;
                e->last_status = status;
                snprintf(e->last_err, sizeof(e->last_err), "%s", err);
                if (e->healthy && e->fails >= e->unhealthy_after) {
                    e->healthy = 0;
                    gyre_logf("gyre: provider '%s': health check failed %u times in a row: unhealthy\n", e->name,
                              e->fails);
                }
            }
        }
        entry_free(&x);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

gyre_probe_t *gyre_probe_create(const gyre_config_t *c)
{
    gyre_probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (build(c, NULL, 0, &p->e, &p->n) != 0) {
        gyre_probe_destroy(p);
        return NULL;
    }
    /* Every signal blocked in the thread: SIGTERM, SIGINT and SIGHUP are the main thread's (sigwait). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, prober_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        gyre_probe_destroy(p);
        return NULL;
    }
    p->has_thread = 1;
    return p;
}

void gyre_probe_reconfigure(gyre_probe_t *p, const gyre_config_t *next)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    entry_t *e;
    size_t n;
    if (build(next, p->e, p->n, &e, &n) == 0) {
        for (size_t i = 0; i < p->n; i++)
            entry_free(&p->e[i]);
        free(p->e);
        p->e = e;
        p->n = n;
        pthread_cond_signal(&p->cv);
    } else {
        gyre_logf("gyre: health checks: out of memory taking the new configuration; the old checks go on\n");
    }
    pthread_mutex_unlock(&p->mu);
}

void gyre_probe_destroy(gyre_probe_t *p)
{
    if (p == NULL)
        return;
    if (p->has_thread) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n; i++)
        entry_free(&p->e[i]);
    free(p->e);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int gyre_probe_unhealthy(gyre_probe_t *p, const char *provider, char *why, size_t len)
{
    int bad = 0;
    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++) {
        const entry_t *e = &p->e[i];
        if (strcmp(e->name, provider) != 0 || e->healthy)
            continue;
        bad = 1;
        char what[80];
        if (e->last_status != 0)
            snprintf(what, sizeof(what), "%d", e->last_status);
        else
            snprintf(what, sizeof(what), "%s", e->last_err);
        snprintf(why, len, "health check failing (%u in a row: %s)", e->fails, what);
    }
    pthread_mutex_unlock(&p->mu);
    return bad;
}

int gyre_probe_render_metrics(gyre_probe_t *p, gyre_buf_t *b)
{
    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    if (p->n != 0) {
        /* Provider names are validated (letters, digits, '-', '_', '.', ':'): nothing to escape in a label. */
        gyre_buf_appends(b, "# HELP gyre_provider_healthy Whether the provider's active health check passes (1) or "
                            "has failed unhealthy_after times in a row (0).\n# TYPE gyre_provider_healthy gauge\n");
        for (size_t i = 0; i < p->n; i++)
            gyre_buf_appendf(b, "gyre_provider_healthy{provider=\"%s\"} %d\n", p->e[i].name, p->e[i].healthy);
        gyre_buf_appends(b, "# HELP gyre_provider_health_checks_total Active health checks sent, by result.\n"
                            "# TYPE gyre_provider_health_checks_total counter\n");
        for (size_t i = 0; i < p->n; i++)
            gyre_buf_appendf(b,
                             "gyre_provider_health_checks_total{provider=\"%s\",result=\"ok\"} %llu\n"
                             "gyre_provider_health_checks_total{provider=\"%s\",result=\"fail\"} %llu\n",
                             p->e[i].name, (unsigned long long)p->e[i].ok, p->e[i].name,
                             (unsigned long long)p->e[i].failed);
    }
    pthread_mutex_unlock(&p->mu);
    return gyre_buf_failed(b) ? -1 : 0;
}
