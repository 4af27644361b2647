/*
 * The notifiers' sender (see notify.h): one thread that turns queued notices
 * into bodies (control/notify_body.c) and posts them with the blocking client
 * of otlp/httpc.h, retrying with backoff.
 *
 * Who waits on what.  gyre_notify_send copies the notice and appends it to a
 * list under the mutex; nothing else happens on the caller's thread.  The
 * sender takes the mutex to move notices into digests and bodies (bounded
 * work: a body is at most GYRE_NOTIFY_DIGEST_MAX notices of bounded strings)
 * and releases it for every POST, so a receiver that hangs holds the sender,
 * for at most the notifier's timeout, and never a caller.
 *
 * One sender for every notifier: posts go one at a time.  A receiver that
 * times out delays the others by its timeout (5 s by default), which is
 * acceptable for alerts (a handful a minute) and keeps the sender simple;
 * bodies waiting for a retry do not block the others, as each carries the
 * time it is due.
 *
 * Secrets.  A notifier's URL, routing key and header values are copied from
 * the config and wiped when freed; log lines name the notifier, its kind and
 * its url_shown (scheme://host, or the env: spec), never the URL, and the
 * client's error text (which names the host) is not logged either.
 */
#include "control/notify.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/rand.h"
#include "control/notify_body.h"
#include "otlp/httpc.h"

/* Names ever configured, removed ones included (their objects live until destroy, see reconfigure). */
#define NOTIFIERS_EVER_MAX 256

static const char *const kind_names[] = {"", "webhook", "slack", "teams", "pagerduty", "log"};

/* A notifier's settings, immutable once made; the sender holds a reference while it posts with them. */
typedef struct nconf {
    gyre_notifier_kind_t kind;
    char *url, *url_shown, *routing_key;
    gyre_httpc_url_t parsed;
    SSL_CTX *ssl; /* https only; NULL when it could not be made (every post then fails, logged once) */
    gyre_httpc_header_t *headers;
    size_t nheaders;
    unsigned timeout_ms, retries;
    uint64_t digest_ms;
    unsigned refs;
} nconf_t;

typedef struct item {
    struct item *next;
    struct notifier *nf;
    gyre_notice_t notice; /* its strings point into `mem` */
    char *mem;
} item_t;

typedef struct delivery {
    struct delivery *next;
    struct notifier *nf;
    char *body;
    size_t held;       /* notices it stands for in the bound */
    unsigned attempts; /* tries made */
    int64_t due_ms;
} delivery_t;

typedef struct notifier {
    char *name;
    nconf_t *conf;
    int active; /* in the configuration in force */
    item_t *digest, **digest_tail;
    size_t ndigest, digest_truncated;
    int64_t digest_due_ms;
    uint64_t sent, failed, dropped, retried; /* atomics: read by /metrics without the mutex */
} notifier_t;

struct gyre_notify {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int has_thread;
    int stopping;
    int64_t deadline_ms;
    notifier_t **nfs; /* every name ever configured; `active` says which are in force, in config order */
    size_t nnfs;
    item_t *queue, **queue_tail;
    delivery_t *deliveries;
    size_t held, queue_max;
    uint64_t backoff_base_ms, backoff_max_ms;
    uint64_t rand;
    char external_url[300];
    char source[256];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void bump(uint64_t *p)
{
    __atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ---- settings ---- */

static nconf_t *conf_make(const gyre_notifier_conf_t *c)
{
    nconf_t *k = gyre_calloc(1, sizeof(*k));
    k->kind = c->kind;
    k->url = c->url != NULL ? gyre_strdup(c->url) : NULL;
    k->url_shown = gyre_strdup(c->url_shown != NULL ? c->url_shown : "");
    k->routing_key = c->routing_key != NULL ? gyre_strdup(c->routing_key) : NULL;
    k->timeout_ms = (unsigned)(c->timeout_ms != 0 ? c->timeout_ms : GYRE_NOTIFIER_DEFAULT_TIMEOUT_MS);
    k->retries = c->retries;
    k->digest_ms = c->digest_ms;
    k->nheaders = c->nheaders;
    k->headers = gyre_calloc(c->nheaders ? c->nheaders : 1, sizeof(*k->headers));
    for (size_t i = 0; i < c->nheaders; i++) {
        k->headers[i].name = gyre_strdup(c->header_names[i]);
        k->headers[i].value = gyre_strdup(c->header_values[i]);
    }
    if (k->url != NULL && gyre_httpc_parse_url(k->url, &k->parsed) != 0) {
        gyre_logf("gyre: notifier %s (%s, %s): the url cannot be used; its notices will fail", c->name,
                  kind_names[k->kind], k->url_shown);
    } else if (k->url != NULL && k->parsed.https) {
        char err[256];
        k->ssl = gyre_httpc_ssl_create(k->parsed.host, c->ca_file, err, sizeof(err));
        if (k->ssl == NULL)
            gyre_logf("gyre: notifier %s (%s, %s): no TLS context: %s", c->name, kind_names[k->kind], k->url_shown,
                      err);
    }
    return k;
}

static void conf_free(nconf_t *k)
{
    wipe_free(k->url);
    wipe_free(k->routing_key);
    free(k->url_shown);
    for (size_t i = 0; i < k->nheaders; i++) {
        free((char *)k->headers[i].name);
        wipe_free((char *)k->headers[i].value);
    }
    free(k->headers);
    explicit_bzero(&k->parsed, sizeof(k->parsed));
    if (k->ssl != NULL)
        SSL_CTX_free(k->ssl);
    free(k);
}

/* Drops a reference (under the mutex); the last one frees. */
static void conf_release(nconf_t *k)
{
    if (--k->refs == 0)
        conf_free(k);
}

/* ---- notices ---- */

/* The length of s cut to `max` bytes without splitting a UTF-8 sequence. */
static size_t cut_len(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Deep-copies `v` into one allocation, every string cut to its bound. */
static item_t *item_make(notifier_t *nf, const gyre_notice_t *v)
{
    const char *src[4 + 4 * GYRE_NOTICE_MAX_PAIRS];
    size_t lens[4 + 4 * GYRE_NOTICE_MAX_PAIRS];
    size_t ns = 0, total = 0;
    size_t nl = v->nlabels < GYRE_NOTICE_MAX_PAIRS ? v->nlabels : GYRE_NOTICE_MAX_PAIRS;
    size_t na = v->nannotations < GYRE_NOTICE_MAX_PAIRS ? v->nannotations : GYRE_NOTICE_MAX_PAIRS;
#define TAKE(s, max) (src[ns] = (s), lens[ns] = (s) != NULL ? cut_len((s), (max)) : 0, total += lens[ns] + 1, ns++)
    TAKE(v->alertname, GYRE_NOTIFY_NAME_MAX);
    TAKE(v->severity, GYRE_NOTIFY_NAME_MAX);
    TAKE(v->fingerprint, GYRE_NOTIFY_PD_DEDUP_MAX);
    for (size_t i = 0; i < nl; i++) {
        TAKE(v->labels[i].name, GYRE_NOTIFY_NAME_MAX);
        TAKE(v->labels[i].value, GYRE_NOTIFY_VALUE_MAX);
    }
    for (size_t i = 0; i < na; i++) {
        TAKE(v->annotations[i].name, GYRE_NOTIFY_NAME_MAX);
        TAKE(v->annotations[i].value, GYRE_NOTIFY_VALUE_MAX);
    }
#undef TAKE
    item_t *it = gyre_calloc(1, sizeof(*it));
    it->nf = nf;
    it->mem = gyre_malloc(total ? total : 1);
    const char *dst[4 + 4 * GYRE_NOTICE_MAX_PAIRS];
    char *p = it->mem;
    for (size_t i = 0; i < ns; i++) {
        if (src[i] == NULL) {
            dst[i] = NULL;
            continue;
        }
        memcpy(p, src[i], lens[i]);
        p[lens[i]] = '\0';
        dst[i] = p;
        p += lens[i] + 1;
    }
    gyre_notice_t *c = &it->notice;
    c->alertname = dst[0];
    c->severity = dst[1];
    c->fingerprint = dst[2];
    c->resolved = v->resolved;
    c->starts_us = v->starts_us;
    c->ends_us = v->ends_us;
    size_t k = 3;
    for (size_t i = 0; i < nl; i++, k += 2)
        c->labels[i] = (gyre_notice_pair_t){dst[k], dst[k + 1]};
    c->nlabels = nl;
    for (size_t i = 0; i < na; i++, k += 2)
        c->annotations[i] = (gyre_notice_pair_t){dst[k], dst[k + 1]};
    c->nannotations = na;
    return it;
}

static void item_free(item_t *it)
{
    free(it->mem);
    free(it);
}

/* ---- the sender ---- */

static notifier_t *find(gyre_notify_t *n, const char *name)
{
    for (size_t i = 0; i < n->nnfs; i++)
        if (strcmp(n->nfs[i]->name, name) == 0)
            return n->nfs[i];
    return NULL;
}

static gyre_notify_body_ctx_t body_ctx(gyre_notify_t *n, notifier_t *nf)
{
    return (gyre_notify_body_ctx_t){nf->name, n->external_url, n->source};
}

static void add_delivery(gyre_notify_t *n, notifier_t *nf, char *body, size_t held)
{
    delivery_t *d = gyre_calloc(1, sizeof(*d));
    d->nf = nf;
    d->body = body;
    d->held = held;
    d->due_ms = now_ms();
    d->next = n->deliveries;
    n->deliveries = d;
}

/* A digest's notices become one body (under the mutex). */
static void flush_digest(gyre_notify_t *n, notifier_t *nf)
{
    const gyre_notice_t *v[GYRE_NOTIFY_DIGEST_MAX];
    size_t k = 0;
    for (item_t *it = nf->digest; it != NULL && k < GYRE_NOTIFY_DIGEST_MAX; it = it->next)
        v[k++] = &it->notice;
    gyre_notify_body_ctx_t x = body_ctx(n, nf);
    char *body = NULL;
    switch (nf->conf->kind) {
    case GYRE_NOTIFIER_SLACK: body = gyre_notify_body_slack(&x, v, k, nf->digest_truncated); break;
    case GYRE_NOTIFIER_TEAMS: body = gyre_notify_body_teams(&x, v, k, nf->digest_truncated); break;
    default: body = gyre_notify_body_webhook(&x, v, k, nf->digest_truncated); break;
    }
    add_delivery(n, nf, body, nf->ndigest);
    while (nf->digest != NULL) {
        item_t *it = nf->digest;
        nf->digest = it->next;
        item_free(it);
    }
    nf->digest_tail = &nf->digest;
    nf->ndigest = nf->digest_truncated = 0;
}

/* A queued notice goes to its digest, a body of its own, or the log (under the mutex). */
static void take(gyre_notify_t *n, item_t *it, int64_t now)
{
    notifier_t *nf = it->nf;
    if (!nf->active) {
        bump(&nf->dropped);
        n->held--;
        item_free(it);
        return;
    }
    gyre_notify_body_ctx_t x = body_ctx(n, nf);
    nconf_t *k = nf->conf;
    if (k->kind == GYRE_NOTIFIER_LOG) {
        /* Written by post(), outside the mutex, like every line the sender logs. */
        add_delivery(n, nf, gyre_notify_body_log(&x, &it->notice), 1);
        item_free(it);
        return;
    }
    if (k->digest_ms != 0 && k->kind != GYRE_NOTIFIER_PAGERDUTY) {
        if (nf->ndigest == GYRE_NOTIFY_DIGEST_MAX) {
            /* Left out of the body, and said so in it (truncatedAlerts): counted there, not dropped. */
            nf->digest_truncated++;
            n->held--;
            item_free(it);
            return;
        }
        if (nf->ndigest == 0)
            nf->digest_due_ms = now + (int64_t)k->digest_ms;
        it->next = NULL;
        *nf->digest_tail = it;
        nf->digest_tail = &it->next;
        nf->ndigest++;
        return;
    }
    const gyre_notice_t *v = &it->notice;
    char *body;
    switch (k->kind) {
    case GYRE_NOTIFIER_PAGERDUTY: body = gyre_notify_body_pagerduty(&x, k->routing_key, v); break;
    case GYRE_NOTIFIER_SLACK: body = gyre_notify_body_slack(&x, &v, 1, 0); break;
    case GYRE_NOTIFIER_TEAMS: body = gyre_notify_body_teams(&x, &v, 1, 0); break;
    default: body = gyre_notify_body_webhook(&x, &v, 1, 0); break;
    }
    add_delivery(n, nf, body, 1);
    item_free(it);
}

static uint64_t backoff_ms(gyre_notify_t *n, unsigned attempt)
{
    uint64_t d = n->backoff_base_ms;
    for (unsigned i = 1; i < attempt && d < n->backoff_max_ms; i++)
        d *= 2;
    if (d > n->backoff_max_ms)
        d = n->backoff_max_ms;
    /* Between half and all of it. */
    return d / 2 + (d / 2 != 0 ? gyre_rand_next(&n->rand) % (d / 2 + 1) : 0);
}

static void delivery_done(gyre_notify_t *n, delivery_t *d)
{
    n->held -= d->held;
    free(d->body);
    free(d);
}

/* Posts one body (the mutex released) and decides what comes next (the mutex held again).  What it logs is
 * written with the mutex released too: a slow stderr never holds gyre_notify_send's callers. */
static void post(gyre_notify_t *n, delivery_t *d)
{
    notifier_t *nf = d->nf;
    nconf_t *k = nf->conf;
    k->refs++;
    unsigned timeout = k->timeout_ms;
    if (n->stopping) {
        int64_t left = n->deadline_ms - now_ms();
        timeout = left < 1 ? 1 : (left < (int64_t)timeout ? (unsigned)left : timeout);
    }
    pthread_mutex_unlock(&n->mu);
    int status = 0, rc;
    char err[512];
    if (k->kind == GYRE_NOTIFIER_LOG) {
        gyre_logf("gyre: %s", d->body);
        rc = 0;
        status = 200;
    } else if (k->url == NULL || (k->parsed.https && k->ssl == NULL) || k->parsed.host[0] == '\0') {
        rc = -EINVAL;
    } else {
        rc = gyre_httpc_post(&k->parsed, k->ssl, k->headers, k->nheaders, "application/json", d->body,
                             strlen(d->body), timeout, &status, err, sizeof(err));
    }
    explicit_bzero(err, sizeof(err));
    char line[512];
    line[0] = '\0';
    pthread_mutex_lock(&n->mu);
    d->attempts++;
    const char *kind = kind_names[k->kind];
    const char *why = rc == -EINVAL ? "the url cannot be used" : strerror(-rc);
    if (rc == 0 && status >= 200 && status < 300) {
        bump(&nf->sent);
        delivery_done(n, d);
    } else if (rc == 0 && status >= 400 && status < 500 && status != 429) {
        /* The receiver refused this body: the same body again would be refused again. */
        snprintf(line, sizeof(line), "notifier %s (%s, %s) refused a notification with HTTP %d; not retried",
                 nf->name, kind, k->url_shown, status);
        bump(&nf->failed);
        delivery_done(n, d);
    } else if (!nf->active) {
        /* Removed by a reload while this try was on its way: no retry for a notifier that is gone. */
        for (size_t i = 0; i < d->held; i++)
            bump(&nf->dropped);
        delivery_done(n, d);
    } else if (d->attempts <= k->retries && !(n->stopping && now_ms() >= n->deadline_ms)) {
        uint64_t wait = backoff_ms(n, d->attempts);
        if (rc == 0)
            snprintf(line, sizeof(line), "notifier %s (%s, %s) answered HTTP %d; retry %u of %u in %llu ms",
                     nf->name, kind, k->url_shown, status, d->attempts, k->retries, (unsigned long long)wait);
        else
            snprintf(line, sizeof(line), "notifier %s (%s, %s): %s; retry %u of %u in %llu ms", nf->name, kind,
                     k->url_shown, why, d->attempts, k->retries, (unsigned long long)wait);
        bump(&nf->retried);
        d->due_ms = now_ms() + (int64_t)wait;
        d->next = n->deliveries;
        n->deliveries = d;
    } else {
        if (rc == 0)
            snprintf(line, sizeof(line), "notifier %s (%s, %s) answered HTTP %d; giving up after %u tries",
                     nf->name, kind, k->url_shown, status, d->attempts);
        else
            snprintf(line, sizeof(line), "notifier %s (%s, %s): %s; giving up after %u tries", nf->name, kind,
                     k->url_shown, why, d->attempts);
        bump(&nf->failed);
        delivery_done(n, d);
    }
    conf_release(k);
    if (line[0] != '\0') {
        pthread_mutex_unlock(&n->mu);
        gyre_logf("gyre: %s", line);
        pthread_mutex_lock(&n->mu);
    }
}

static void *sender_main(void *arg)
{
    gyre_notify_t *n = arg;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        int64_t now = now_ms();
        while (n->queue != NULL) {
            item_t *it = n->queue;
            n->queue = it->next;
            if (n->queue == NULL)
                n->queue_tail = &n->queue;
            take(n, it, now);
        }
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < n->nnfs; i++) {
            notifier_t *nf = n->nfs[i];
            if (nf->ndigest == 0)
                continue;
            if (n->stopping || now >= nf->digest_due_ms)
                flush_digest(n, nf);
            else if (nf->digest_due_ms < next)
                next = nf->digest_due_ms;
        }
        if (n->stopping && (n->deliveries == NULL || now >= n->deadline_ms))
            break;
        delivery_t **best = NULL;
        for (delivery_t **dp = &n->deliveries; *dp != NULL; dp = &(*dp)->next)
            if (best == NULL || (*dp)->due_ms <= (*best)->due_ms)
                best = dp;
        if (best != NULL && (*best)->due_ms <= now) {
            delivery_t *d = *best;
            *best = d->next;
            post(n, d);
            continue;
        }
        if (best != NULL && (*best)->due_ms < next)
            next = (*best)->due_ms;
        if (n->stopping && n->deadline_ms < next)
            next = n->deadline_ms;
        if (n->queue != NULL)
            continue;
        if (next == INT64_MAX) {
            pthread_cond_wait(&n->cv, &n->mu);
        } else {
            /* The condition variable waits on CLOCK_MONOTONIC (set at create), as `next` is. */
            struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000};
            pthread_cond_timedwait(&n->cv, &n->mu, &ts);
        }
    }
    /* Stopping, and the grace spent: what is left is dropped, and said. */
    size_t left = 0;
    while (n->deliveries != NULL) {
        delivery_t *d = n->deliveries;
        n->deliveries = d->next;
        for (size_t i = 0; i < d->held; i++)
            bump(&d->nf->dropped);
        left += d->held;
        delivery_done(n, d);
    }
    if (left != 0)
        gyre_logf("gyre: %zu notifications were not sent before shutdown", left);
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* ---- the handle ---- */

/* Makes `c`'s notifiers the ones in force (under the mutex, or before the thread starts). */
static int apply(gyre_notify_t *n, const gyre_config_t *c)
{
    size_t fresh = 0;
    for (size_t i = 0; i < c->nnotifiers; i++)
        fresh += find(n, c->notifiers[i].name) == NULL;
    if (n->nnfs + fresh > NOTIFIERS_EVER_MAX)
        return -E2BIG;
    notifier_t **order = gyre_calloc(n->nnfs + fresh + 1, sizeof(*order));
    size_t k = 0;
    for (size_t i = 0; i < n->nnfs; i++)
        n->nfs[i]->active = 0;
    for (size_t i = 0; i < c->nnotifiers; i++) {
        const gyre_notifier_conf_t *cf = &c->notifiers[i];
        notifier_t *nf = find(n, cf->name);
        if (nf == NULL) {
            nf = gyre_calloc(1, sizeof(*nf));
            nf->name = gyre_strdup(cf->name);
            nf->digest_tail = &nf->digest;
        } else {
            conf_release(nf->conf);
        }
        nf->conf = conf_make(cf);
        nf->conf->refs = 1;
        nf->active = 1;
        order[k++] = nf;
    }
    /* Removed notifiers keep their objects (a body may be on its way with them) after the active ones. */
    for (size_t i = 0; i < n->nnfs; i++)
        if (!n->nfs[i]->active)
            order[k++] = n->nfs[i];
    free(n->nfs);
    n->nfs = order;
    n->nnfs = k;
    /* What a removed notifier held is dropped now. */
    for (size_t i = 0; i < n->nnfs; i++) {
        notifier_t *nf = n->nfs[i];
        if (nf->active)
            continue;
        while (nf->digest != NULL) {
            item_t *it = nf->digest;
            nf->digest = it->next;
            bump(&nf->dropped);
            n->held--;
            item_free(it);
        }
        nf->digest_tail = &nf->digest;
        nf->ndigest = nf->digest_truncated = 0;
    }
    for (delivery_t **dp = &n->deliveries; *dp != NULL;) {
        delivery_t *d = *dp;
        if (d->nf->active) {
            dp = &d->next;
            continue;
        }
        *dp = d->next;
        for (size_t i = 0; i < d->held; i++)
            bump(&d->nf->dropped);
        delivery_done(n, d);
    }
    return 0;
}

gyre_notify_t *gyre_notify_create(const gyre_config_t *c)
{
    return gyre_notify_create_with(c, NULL);
}

gyre_notify_t *gyre_notify_create_with(const gyre_config_t *c, const gyre_notify_options_t *o)
{
    gyre_notify_t *n = gyre_calloc(1, sizeof(*n));
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    n->queue_tail = &n->queue;
    n->queue_max = o != NULL && o->queue_max != 0 ? o->queue_max : GYRE_NOTIFY_QUEUE_MAX;
    n->backoff_base_ms = o != NULL && o->backoff_base_ms != 0 ? o->backoff_base_ms : GYRE_NOTIFY_BACKOFF_BASE_MS;
    n->backoff_max_ms = o != NULL && o->backoff_max_ms != 0 ? o->backoff_max_ms : GYRE_NOTIFY_BACKOFF_MAX_MS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n->rand = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ULL;
    int v6 = strchr(c->listen_host != NULL ? c->listen_host : "", ':') != NULL;
    snprintf(n->external_url, sizeof(n->external_url), "http://%s%.255s%s:%u", v6 ? "[" : "",
             c->listen_host != NULL ? c->listen_host : "127.0.0.1", v6 ? "]" : "", c->listen_port);
    if (gethostname(n->source, sizeof(n->source) - 1) != 0 || n->source[0] == '\0')
        snprintf(n->source, sizeof(n->source), "gyre");
    apply(n, c); /* at most 64 notifiers in a config: within NOTIFIERS_EVER_MAX */
    /* The thread starts with every signal blocked: signals are the main thread's (it sigwaits for SIGTERM and
     * SIGHUP), as the trace writer's threads do. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&n->thread, NULL, sender_main, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        n->has_thread = 1;
    else
        gyre_logf("gyre: cannot start the notifiers' sender thread: notifications will be dropped");
    return n;
}

void gyre_notify_destroy(gyre_notify_t *n, uint64_t grace_ms)
{
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    n->deadline_ms = now_ms() + (int64_t)grace_ms;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (n->has_thread)
        pthread_join(n->thread, NULL);
    while (n->queue != NULL) {
        item_t *it = n->queue;
        n->queue = it->next;
        item_free(it);
    }
    for (size_t i = 0; i < n->nnfs; i++) {
        notifier_t *nf = n->nfs[i];
        while (nf->digest != NULL) {
            item_t *it = nf->digest;
            nf->digest = it->next;
            item_free(it);
        }
        conf_release(nf->conf);
        free(nf->name);
        free(nf);
    }
    free(n->nfs);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

int gyre_notify_send(gyre_notify_t *n, const char *notifier, const gyre_notice_t *notice)
{
    if (n == NULL || notifier == NULL || notice == NULL)
        return -ENOENT;
    pthread_mutex_lock(&n->mu);
    notifier_t *nf = find(n, notifier);
    if (nf == NULL || !nf->active) {
        pthread_mutex_unlock(&n->mu);
        return -ENOENT;
    }
    if (n->held >= n->queue_max || n->stopping || !n->has_thread) {
        bump(&nf->dropped);
        pthread_mutex_unlock(&n->mu);
        return -ENOBUFS;
    }
    n->held++;
    pthread_mutex_unlock(&n->mu);
    /* The copy is made outside the mutex: its slot is already counted. */
    item_t *it = item_make(nf, notice);
    pthread_mutex_lock(&n->mu);
    *n->queue_tail = it;
    n->queue_tail = &it->next;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

int gyre_notify_exists(const gyre_config_t *c, const char *name)
{
    return c != NULL && name != NULL && gyre_config_find_notifier(c, name) != NULL;
}

int gyre_notify_reconfigure(gyre_notify_t *n, const gyre_config_t *next)
{
    pthread_mutex_lock(&n->mu);
    int r = apply(n, next);
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return r;
}

size_t gyre_notify_stats(gyre_notify_t *n, gyre_notify_stat_t *out, size_t max)
{
    if (n == NULL)
        return 0;
    pthread_mutex_lock(&n->mu);
    size_t k = 0;
    for (size_t i = 0; i < n->nnfs; i++) {
        notifier_t *nf = n->nfs[i];
        if (!nf->active)
            continue;
        if (k < max)
            out[k] = (gyre_notify_stat_t){nf->name,
                                          kind_names[nf->conf->kind],
                                          __atomic_load_n(&nf->sent, __ATOMIC_RELAXED),
                                          __atomic_load_n(&nf->failed, __ATOMIC_RELAXED),
                                          __atomic_load_n(&nf->dropped, __ATOMIC_RELAXED),
                                          __atomic_load_n(&nf->retried, __ATOMIC_RELAXED)};
        k++;
    }
    pthread_mutex_unlock(&n->mu);
    return k;
}

size_t gyre_notify_held(gyre_notify_t *n)
{
    if (n == NULL)
        return 0;
    pthread_mutex_lock(&n->mu);
    size_t h = n->held;
    pthread_mutex_unlock(&n->mu);
    return h;
}
