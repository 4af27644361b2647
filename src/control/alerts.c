/* The alert engine: samples, windows and states (see alerts.h); the actions are alerts_act.c's. */
#include "control/alerts.h"
#include "control/alerts_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "route/keys.h" /* gyre_hash64 */

/* ---- Labels ---------------------------------------------------------------------------------------------- */

const char *const gyre_alerts_label_names[NLABELS] = {"route", "provider", "key", "agent"};
const unsigned gyre_alerts_label_bits[NLABELS] = {GYRE_ALERT_BY_ROUTE, GYRE_ALERT_BY_PROVIDER, GYRE_ALERT_BY_KEY,
                                                  GYRE_ALERT_BY_AGENT};

/* Copies at most GYRE_ALERTS_LABEL_MAX - 1 bytes; anything but printable ASCII, '"' and '\' becomes '?', so a
 * label needs no escaping in JSON or in Prometheus' text format. */
static void label_set(char *dst, const char *p, size_t n)
{
    if (n > GYRE_ALERTS_LABEL_MAX - 1)
        n = GYRE_ALERTS_LABEL_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        dst[i] = ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' ? '?' : (char)ch;
    }
    dst[n] = '\0';
}

/* ---- Histogram ------------------------------------------------------------------------------------------- */

size_t gyre_alerts_hist_bucket(double ms)
{
    if (!(ms > 1))
        return 0;
    /* Bucket i holds (2^((i-1)/4), 2^(i/4)]: the smallest i with 2^(i/4) >= ms. */
    double i = ceil(4 * log2(ms) - 1e-9);
    return i >= GYRE_ALERTS_HIST_BUCKETS - 1 ? GYRE_ALERTS_HIST_BUCKETS - 1 : (size_t)i;
}

double gyre_alerts_hist_upper(size_t bucket)
{
    return exp2((double)bucket / 4);
}

double gyre_alerts_hist_quantile(const uint32_t *hist, double q)
{
    uint64_t n = 0;
    for (size_t i = 0; i < GYRE_ALERTS_HIST_BUCKETS; i++)
        n += hist[i];
    if (n == 0)
        return NAN;
    /* The rank of the quantile among n values, 1-based: ceil(q * n). */
    uint64_t rank = (uint64_t)ceil(q * (double)n - 1e-9);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < GYRE_ALERTS_HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank)
            return gyre_alerts_hist_upper(i);
    }
    return gyre_alerts_hist_upper(GYRE_ALERTS_HIST_BUCKETS - 1);
}

/* ---- State machine --------------------------------------------------------------------------------------- */

const char *gyre_alert_state_name(gyre_alert_state_t s)
{
    switch (s) {
    case GYRE_ALERT_INACTIVE: return "inactive";
    case GYRE_ALERT_PENDING: return "pending";
    case GYRE_ALERT_FIRING: return "firing";
    case GYRE_ALERT_RESOLVED: return "resolved";
    }
    return "?";
}

int gyre_alert_fsm_step(gyre_alert_fsm_t *f, const gyre_alert_rule_conf_t *r, int cond, int64_t now_us)
{
    switch (f->state) {
    case GYRE_ALERT_INACTIVE:
    case GYRE_ALERT_RESOLVED:
        if (!cond)
            return -1;
        f->true_since_us = now_us;
        f->false_since_us = 0;
        if (r->for_us > 0) {
            f->state = GYRE_ALERT_PENDING;
            return GYRE_ALERT_PENDING;
        }
        f->state = GYRE_ALERT_FIRING;
        f->fired_at_us = now_us;
        return GYRE_ALERT_FIRING;
    case GYRE_ALERT_PENDING:
        if (!cond) {
            f->state = GYRE_ALERT_INACTIVE;
            return GYRE_ALERT_INACTIVE;
        }
        if (now_us - f->true_since_us < r->for_us)
            return -1;
        f->state = GYRE_ALERT_FIRING;
        f->fired_at_us = now_us;
        return GYRE_ALERT_FIRING;
    case GYRE_ALERT_FIRING:
        if (cond) {
            f->false_since_us = 0;
            return -1;
        }
        if (f->false_since_us == 0)
            f->false_since_us = now_us;
        /* Hysteresis: false for resolve_for; and a firing alert lasts min_firing, so a flapping signal does not
         * page again and again. */
        if (now_us - f->false_since_us < r->resolve_for_us || now_us - f->fired_at_us < r->min_firing_us)
            return -1;
        f->state = GYRE_ALERT_RESOLVED;
        return GYRE_ALERT_RESOLVED;
    }
    return -1;
}

static void rules_build(gyre_alerts_t *a)
{
    const gyre_config_t *c = a->config;
    a->nrules = c->nalerts;
    a->rules = gyre_calloc(c->nalerts + 1, sizeof(*a->rules));
    for (size_t i = 0; i < c->nalerts; i++) {
        arule_t *r = &a->rules[i];
        r->conf = &c->alerts[i];
        int64_t w = r->conf->window_us;
        int64_t slot = 1000000;
        while (w / slot > GYRE_ALERTS_SLOTS)
            slot += 1000000;
        r->slot_us = slot;
        r->nslots = (size_t)((w + slot - 1) / slot);
        r->sets = gyre_calloc(GYRE_ALERTS_MAX_SETS, sizeof(*r->sets));
        r->set_of = gyre_calloc(a->nworkers, sizeof(*r->set_of));
        for (unsigned k = 0; k < a->nworkers; k++) {
            r->set_of[k] = gyre_calloc(GYRE_ALERTS_MAX_SERIES, sizeof(int16_t));
            for (size_t s = 0; s < GYRE_ALERTS_MAX_SERIES; s++)
                r->set_of[k][s] = -1;
        }
    }
}

static void rules_free(gyre_alerts_t *a)
{
    for (size_t i = 0; i < a->nrules; i++) {
        arule_t *r = &a->rules[i];
        for (size_t s = 0; s < r->nsets; s++)
            free(r->sets[s]);
        free(r->sets);
        for (unsigned k = 0; k < a->nworkers; k++)
            free(r->set_of[k]);
        free(r->set_of);
    }
    free(a->rules);
    a->rules = NULL;
    a->nrules = 0;
}

gyre_alerts_t *gyre_alerts_create(const gyre_config_t *c, gyre_overrides_t *o, unsigned nworkers,
                                  const gyre_alerts_hooks_t *hooks)
{
    gyre_alerts_t *a = gyre_calloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->config = c;
    a->overrides = o;
    if (hooks != NULL)
        a->hooks = *hooks;
    a->nworkers = nworkers ? nworkers : 1;
    a->workers = gyre_calloc(a->nworkers, sizeof(*a->workers));
    a->prev = gyre_calloc(a->nworkers, sizeof(*a->prev));
    for (unsigned k = 0; k < a->nworkers; k++) {
        wtable_t *t = gyre_calloc(1, sizeof(*t));
        /* Series 0 is "other": where label sets past the bound are counted. */
        for (int l = 0; l < NLABELS; l++)
            strcpy(t->s[0].labels.v[l], "other");
        t->used = 1;
        a->workers[k] = t;
        a->prev[k] = gyre_calloc(GYRE_ALERTS_MAX_SERIES, sizeof(counters_t));
    }
    gyre_alerts_refs_alloc(a);
    rules_build(a);
    return a;
}

/* ---- Observing (on the workers) -------------------------------------------------------------------------- */

static uint64_t tuple_hash(const gyre_tstr_t *v)
{
    uint64_t h = 0x51ed27;
    for (int l = 0; l < NLABELS; l++)
        h = gyre_hash64(v[l].p ? v[l].p : "", v[l].len, h + (uint64_t)l);
    return h;
}

/* Whether a stored label is what label_set would make of (p, n), without making it. */
static int label_eq(const char *stored, const char *p, size_t n)
{
    if (n > GYRE_ALERTS_LABEL_MAX - 1)
        n = GYRE_ALERTS_LABEL_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char want = ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' ? '?' : (char)ch;
        if (stored[i] != want)
            return 0;
    }
    return stored[n] == '\0';
}

static int tuple_equal(const labels_t *lb, const gyre_tstr_t *v)
{
    for (int l = 0; l < NLABELS; l++)
        if (!label_eq(lb->v[l], v[l].p ? v[l].p : "", v[l].len))
            return 0;
    return 1;
}

/* The worker's series for a label tuple, made on first sight; "other" (0) past the bound. */
static wseries_t *series_for(wtable_t *t, const gyre_tstr_t *v)
{
    uint64_t h = tuple_hash(v);
    size_t i = (size_t)(h % INDEX_SLOTS);
    for (;;) {
        uint16_t s = t->index[i];
        if (s == 0)
            break;
        if (t->hashes[s - 1] == h && tuple_equal(&t->s[s - 1].labels, v))
            return &t->s[s - 1];
        i = (i + 1) % INDEX_SLOTS;
    }
    size_t n = t->used;
    if (n >= GYRE_ALERTS_MAX_SERIES) {
        ADD(t->folded, 1);
        return &t->s[0];
    }
    wseries_t *s = &t->s[n];
    for (int l = 0; l < NLABELS; l++)
        label_set(s->labels.v[l], v[l].p ? v[l].p : "", v[l].len);
    t->hashes[n] = h;
    t->index[i] = (uint16_t)(n + 1);
    __atomic_store_n(&t->used, n + 1, __ATOMIC_RELEASE);
    return s;
}

static int is_error(int status)
{
    return status == 0 || status == 429 || status >= 500;
}

void gyre_alerts_observe(gyre_alerts_t *a, unsigned worker, const gyre_trace_t *t)
{
    if (a == NULL || worker >= a->nworkers || __atomic_load_n(&a->nrules, __ATOMIC_RELAXED) == 0)
        return;
    wtable_t *tab = a->workers[worker];
    gyre_tstr_t v[NLABELS] = {t->route, t->provider, {NULL, 0}, t->agent};
    size_t n = t->nattempts;
    wseries_t *s = NULL;
    for (size_t i = 0; i < n; i++) {
        const gyre_trace_attempt_t *at = &t->attempts[i];
        v[L_PROVIDER] = at->provider;
        v[L_KEY] = at->key_id;
        s = series_for(tab, v);
        ADD(s->c.attempts, 1);
        if (is_error(at->status))
            ADD(s->c.errors, 1);
        if (at->status == 429)
            ADD(s->c.limited, 1);
    }
    /* The request's own figures: on its last attempt's series, or its own when it made none (a cache hit, a
     * request refused before any attempt), which then counts as one call with the client's status. */
    if (n == 0) {
        v[L_PROVIDER] = t->provider;
        v[L_KEY] = (gyre_tstr_t){NULL, 0};
        s = series_for(tab, v);
        ADD(s->c.attempts, 1);
        if (is_error(t->status))
            ADD(s->c.errors, 1);
        if (t->status == 429)
            ADD(s->c.limited, 1);
    }
    ADD(s->c.requests, 1);
    double ms = (double)(t->ended_us - t->started_us) / 1000.0;
    ADD(s->c.lat[gyre_alerts_hist_bucket(ms)], 1);
    if (t->ttft_us >= 0)
        ADD(s->c.ttft[gyre_alerts_hist_bucket((double)t->ttft_us / 1000.0)], 1);
    int64_t tokens = (t->prompt_tokens > 0 ? t->prompt_tokens : 0) + (t->completion_tokens > 0 ? t->completion_tokens : 0);
    if (tokens > 0)
        ADD(s->c.tokens, (uint64_t)tokens);
    if (t->cost_usd > 0 && isfinite(t->cost_usd))
        ADD(s->c.cost_nusd, (uint64_t)llround(t->cost_usd * 1e9));
}

/* ---- Evaluating ------------------------------------------------------------------------------------------ */

static int signal_is_global(gyre_alert_signal_t s)
{
    return s == GYRE_SIG_INFLIGHT || s == GYRE_SIG_QUEUE_DEPTH || s == GYRE_SIG_TRACE_LOG_LAG ||
           s == GYRE_SIG_TRACE_SPOOL_BYTES;
}

static int uses_ttft(gyre_alert_signal_t s)
{
    return s == GYRE_SIG_TTFT_P95;
}

static void fingerprint_of(const char *rule, const labels_t *lb, char out[17])
{
    uint64_t h = gyre_hash64(rule, strlen(rule), 0x616c657274ULL);
    for (int l = 0; l < NLABELS; l++)
        h = gyre_hash64(lb->v[l], strlen(lb->v[l]), h ^ (uint64_t)(l + 1));
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The rule's set for a projected label tuple, made on first sight; the last set is "other". */
static int16_t set_for(arule_t *r, const labels_t *src)
{
    labels_t lb;
    memset(&lb, 0, sizeof(lb));
    for (int l = 0; l < NLABELS; l++)
        if (r->conf->by & gyre_alerts_label_bits[l])
            strcpy(lb.v[l], src->v[l]);
    for (size_t i = 0; i < r->nsets; i++)
        if (memcmp(&r->sets[i]->labels, &lb, sizeof(lb)) == 0)
            return (int16_t)i;
    if (r->nsets >= GYRE_ALERTS_MAX_SETS - 1) {
        for (int l = 0; l < NLABELS; l++)
            if (r->conf->by & gyre_alerts_label_bits[l]) {
                memset(lb.v[l], 0, sizeof(lb.v[l])); /* whole labels are compared with memcmp */
                strcpy(lb.v[l], "other");
            }
        for (size_t i = 0; i < r->nsets; i++)
            if (memcmp(&r->sets[i]->labels, &lb, sizeof(lb)) == 0)
                return (int16_t)i;
        /* Cannot happen ("other" is made at the last place and then found), but must never overflow. */
        if (r->nsets >= GYRE_ALERTS_MAX_SETS)
            return (int16_t)(r->nsets - 1);
    }
    aset_t *s = gyre_calloc(1, sizeof(*s));
    s->labels = lb;
    s->slot_at = -1;
    s->value = NAN;
    fingerprint_of(r->conf->name, &lb, s->fingerprint);
    r->sets[r->nsets] = s;
    return (int16_t)r->nsets++;
}

/* Moves a set's ring to slot number `at`, clearing the slots it passes. */
static void slots_advance(arule_t *r, aset_t *s, int64_t at)
{
    if (s->slot_at < 0 || at - s->slot_at >= (int64_t)r->nslots) {
        memset(s->slots, 0, sizeof(s->slots));
    } else {
        for (int64_t k = s->slot_at + 1; k <= at; k++)
            memset(&s->slots[k % (int64_t)r->nslots], 0, sizeof(bucket_t));
    }
    if (at > s->slot_at)
        s->slot_at = at;
}

static void bucket_add(bucket_t *b, const counters_t *now, const counters_t *was, int ttft)
{
    b->attempts += now->attempts - was->attempts;
    b->errors += now->errors - was->errors;
    b->limited += now->limited - was->limited;
    b->requests += now->requests - was->requests;
    b->tokens += now->tokens - was->tokens;
    b->cost_nusd += now->cost_nusd - was->cost_nusd;
    const uint64_t *h = ttft ? now->ttft : now->lat, *p = ttft ? was->ttft : was->lat;
    for (size_t i = 0; i < GYRE_ALERTS_HIST_BUCKETS; i++)
        b->hist[i] += (uint32_t)(h[i] - p[i]);
}

static double window_value(const arule_t *r, const aset_t *s)
{
    bucket_t w;
    memset(&w, 0, sizeof(w));
    for (size_t k = 0; k < r->nslots; k++) {
        const bucket_t *b = &s->slots[k];
        w.attempts += b->attempts;
        w.errors += b->errors;
        w.limited += b->limited;
        w.requests += b->requests;
        w.tokens += b->tokens;
        w.cost_nusd += b->cost_nusd;
        for (size_t i = 0; i < GYRE_ALERTS_HIST_BUCKETS; i++)
            w.hist[i] += b->hist[i];
    }
    double secs = (double)r->conf->window_us / 1e6;
    switch (r->conf->signal) {
    case GYRE_SIG_P50_LATENCY: return gyre_alerts_hist_quantile(w.hist, 0.50);
    case GYRE_SIG_P95_LATENCY:
    case GYRE_SIG_TTFT_P95: return gyre_alerts_hist_quantile(w.hist, 0.95);
    case GYRE_SIG_P99_LATENCY: return gyre_alerts_hist_quantile(w.hist, 0.99);
    case GYRE_SIG_ERROR_RATE: return w.attempts ? (double)w.errors / (double)w.attempts : NAN;
    case GYRE_SIG_RATE_LIMITED_RATE: return w.attempts ? (double)w.limited / (double)w.attempts : NAN;
    case GYRE_SIG_REQUEST_RATE: return (double)w.requests / secs;
    case GYRE_SIG_TOKENS_PER_MINUTE: return (double)w.tokens * 60.0 / secs;
    case GYRE_SIG_COST_PER_HOUR: return (double)w.cost_nusd / 1e9 * 3600.0 / secs;
    default: return NAN;
    }
}

static int compare(gyre_alert_op_t op, double v, double t)
{
    if (isnan(v))
        return 0; /* no calls in the window: nothing to say */
    switch (op) {
    case GYRE_ALERT_GT: return v > t;
    case GYRE_ALERT_GE: return v >= t;
    case GYRE_ALERT_LT: return v < t;
    case GYRE_ALERT_LE: return v <= t;
    }
    return 0;
}

static double gauge(gyre_alerts_t *a, gyre_alert_signal_t s)
{
    return a->hooks.gauge != NULL ? a->hooks.gauge(a->hooks.gauge_data, s) : 0;
}

void gyre_alerts_tick(gyre_alerts_t *a, int64_t now_us)
{
    pthread_mutex_lock(&a->mu);
    /* 1. What each worker's series gained since the last tick goes into each rule's current slot. */
    for (size_t ri = 0; ri < a->nrules; ri++) {
        arule_t *r = &a->rules[ri];
        int64_t at = now_us / r->slot_us;
        for (size_t k = 0; k < r->nsets; k++)
            slots_advance(r, r->sets[k], at);
    }
    for (unsigned w = 0; w < a->nworkers; w++) {
        wtable_t *t = a->workers[w];
        size_t used = __atomic_load_n(&t->used, __ATOMIC_ACQUIRE);
        for (size_t si = 0; si < used; si++) {
            const uint64_t *src = (const uint64_t *)&t->s[si].c;
            counters_t now;
            uint64_t *dst = (uint64_t *)&now;
            for (size_t f = 0; f < sizeof(counters_t) / sizeof(uint64_t); f++)
                dst[f] = __atomic_load_n(&src[f], __ATOMIC_RELAXED);
            counters_t *was = &a->prev[w][si];
            if (now.attempts == was->attempts && now.requests == was->requests)
                continue; /* nothing new: every field moves with one of these two */
            for (size_t ri = 0; ri < a->nrules; ri++) {
                arule_t *r = &a->rules[ri];
                if (signal_is_global(r->conf->signal))
                    continue;
                int16_t k = r->set_of[w][si];
                if (k < 0) {
                    k = set_for(r, &t->s[si].labels);
                    r->set_of[w][si] = k;
                    slots_advance(r, r->sets[k], now_us / r->slot_us);
                }
                aset_t *s = r->sets[k];
                bucket_add(&s->slots[s->slot_at % (int64_t)r->nslots], &now, was, uses_ttft(r->conf->signal));
            }
            *was = now;
        }
    }
    /* 2. Each rule's sets: their value, their state. */
    for (size_t ri = 0; ri < a->nrules; ri++) {
        arule_t *r = &a->rules[ri];
        if (signal_is_global(r->conf->signal) && r->nsets == 0) {
            labels_t none;
            memset(&none, 0, sizeof(none));
            set_for(r, &none);
        }
        for (size_t k = 0; k < r->nsets; k++) {
            aset_t *s = r->sets[k];
            s->value = signal_is_global(r->conf->signal) ? gauge(a, r->conf->signal) : window_value(r, s);
            int st = gyre_alert_fsm_step(&s->fsm, r->conf, compare(r->conf->op, s->value, r->conf->threshold), now_us);
            if (st >= 0)
                gyre_alerts_transition(a, r, s, (gyre_alert_state_t)st, now_us);
        }
    }
    pthread_mutex_unlock(&a->mu);
}

/* ---- The evaluator thread -------------------------------------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *evaluator_main(void *arg)
{
    gyre_alerts_t *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        /* The next whole second of the wall clock; the wait ends early only to stop. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        until.tv_nsec = 0;
        while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &until) != ETIMEDOUT)
            ;
        if (a->stop)
            break;
        pthread_mutex_unlock(&a->mu);
        gyre_alerts_tick(a, now_us());
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int gyre_alerts_start(gyre_alerts_t *a)
{
    int rc = pthread_create(&a->thread, NULL, evaluator_main, a);
    if (rc != 0)
        return -rc;
    a->running = 1;
    return 0;
}

void gyre_alerts_destroy(gyre_alerts_t *a)
{
    if (a == NULL)
        return;
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    rules_free(a);
    gyre_alerts_refs_free(a);
    for (unsigned k = 0; k < a->nworkers; k++) {
        free(a->workers[k]);
        free(a->prev[k]);
    }
    free(a->workers);
    free(a->prev);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

/* ---- Reconfiguring --------------------------------------------------------------------------------------- */

typedef struct carried {
    const char *rule; /* points into the old config, which the caller keeps until we return */
    labels_t labels;
    gyre_alert_fsm_t fsm;
} carried_t;

int gyre_alerts_reconfigure(gyre_alerts_t *a, const gyre_config_t *next, gyre_overrides_t *next_overrides)
{
    pthread_mutex_lock(&a->mu);
    size_t n = 0, cap = 16;
    carried_t *keep = gyre_calloc(cap, sizeof(*keep));
    for (size_t ri = 0; ri < a->nrules; ri++)
        for (size_t k = 0; k < a->rules[ri].nsets; k++) {
            aset_t *s = a->rules[ri].sets[k];
            if (s->fsm.state != GYRE_ALERT_FIRING && s->fsm.state != GYRE_ALERT_PENDING)
                continue;
            if (n == cap)
                keep = gyre_realloc(keep, (cap *= 2) * sizeof(*keep));
            keep[n++] = (carried_t){a->rules[ri].conf->name, s->labels, s->fsm};
        }
    rules_free(a);
    gyre_alerts_refs_free(a);
    a->config = next;
    a->overrides = next_overrides;
    gyre_alerts_refs_alloc(a);
    rules_build(a);
    for (size_t i = 0; i < n; i++) {
        for (size_t ri = 0; ri < a->nrules; ri++) {
            arule_t *r = &a->rules[ri];
            if (strcmp(r->conf->name, keep[i].rule) != 0)
                continue;
            aset_t *s = r->sets[set_for(r, &keep[i].labels)];
            s->fsm = keep[i].fsm;
            if (s->fsm.state != GYRE_ALERT_FIRING)
                break;
            /* Applied again on the new table, by name; nothing is notified (nothing changed for the receiver). */
            gyre_alerts_reapply(a, r, s);
            break;
        }
    }
    free(keep);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* ---- Rendering ------------------------------------------------------------------------------------------- */

static void event_json(gyre_buf_t *b, const gyre_alert_event_t *e)
{
    gyre_buf_appendf(b, "{\"at_us\":%lld,\"rule\":", (long long)e->at_us);
    gyre_buf_append_json_string(b, e->rule, strlen(e->rule));
    gyre_buf_appendf(b, ",\"state\":\"%s\",\"severity\":", e->state);
    gyre_buf_append_json_string(b, e->severity, strlen(e->severity));
    gyre_buf_appendf(b, ",\"fingerprint\":\"%s\",\"labels\":%s,\"condition\":", e->fingerprint, e->labels);
    gyre_buf_append_json_string(b, e->condition, strlen(e->condition));
    if (isnan(e->value))
        gyre_buf_appends(b, ",\"value\":null");
    else
        gyre_buf_appendf(b, ",\"value\":%.17g", e->value);
    gyre_buf_appends(b, ",\"actions\":");
    gyre_buf_append_json_string(b, e->actions, strlen(e->actions));
    gyre_buf_appends(b, "}");
}

int gyre_alerts_render_json(gyre_alerts_t *a, gyre_buf_t *b)
{
    pthread_mutex_lock(&a->mu);
    gyre_buf_appends(b, "{\"alerts\":[");
    int first = 1;
    for (size_t ri = 0; ri < a->nrules; ri++) {
        arule_t *r = &a->rules[ri];
        for (size_t k = 0; k < r->nsets; k++) {
            aset_t *s = r->sets[k];
            if (s->fsm.state != GYRE_ALERT_FIRING && s->fsm.state != GYRE_ALERT_PENDING)
                continue;
            char lj[sizeof(((gyre_alert_event_t *)0)->labels)];
            gyre_alerts_labels_json(&s->labels, lj, sizeof(lj));
            gyre_buf_appendf(b, "%s{\"rule\":", first ? "" : ",");
            gyre_buf_append_json_string(b, r->conf->name, strlen(r->conf->name));
            gyre_buf_appendf(b, ",\"state\":\"%s\",\"severity\":", gyre_alert_state_name(s->fsm.state));
            gyre_buf_append_json_string(b, r->conf->severity, strlen(r->conf->severity));
            gyre_buf_appendf(b, ",\"fingerprint\":\"%s\",\"labels\":%s,\"since_us\":%lld", s->fingerprint, lj,
                             (long long)(s->fsm.state == GYRE_ALERT_FIRING ? s->fsm.fired_at_us
                                                                           : s->fsm.true_since_us));
            if (isnan(s->value))
                gyre_buf_appends(b, ",\"value\":null}");
            else
                gyre_buf_appendf(b, ",\"value\":%.17g}", s->value);
            first = 0;
        }
    }
    gyre_buf_appends(b, "],\"events\":[");
    for (size_t i = 0; i < a->nevents; i++) {
        size_t at = (a->event_next + GYRE_ALERTS_EVENTS_KEPT - 1 - i) % GYRE_ALERTS_EVENTS_KEPT;
        if (i)
            gyre_buf_appends(b, ",");
        event_json(b, &a->events[at]);
    }
    gyre_buf_appends(b, "]}");
    pthread_mutex_unlock(&a->mu);
    return gyre_buf_failed(b) ? -E2BIG : 0;
}

int gyre_alerts_render_metrics(gyre_alerts_t *a, gyre_buf_t *b)
{
    pthread_mutex_lock(&a->mu);
    gyre_buf_appends(b, "# HELP gyre_alert_transitions_total Alert state changes, by rule and the state entered.\n"
                        "# TYPE gyre_alert_transitions_total counter\n");
    for (size_t ri = 0; ri < a->nrules; ri++)
        for (int st = 0; st < 4; st++)
            gyre_buf_appendf(b, "gyre_alert_transitions_total{rule=\"%s\",state=\"%s\"} %llu\n",
                             a->rules[ri].conf->name, gyre_alert_state_name((gyre_alert_state_t)st),
                             (unsigned long long)a->rules[ri].transitions[st]);
    gyre_buf_appends(b, "# HELP gyre_alerts_firing Label sets firing now, by rule.\n"
                        "# TYPE gyre_alerts_firing gauge\n");
    for (size_t ri = 0; ri < a->nrules; ri++) {
        unsigned n = 0;
        for (size_t k = 0; k < a->rules[ri].nsets; k++)
            n += a->rules[ri].sets[k]->fsm.state == GYRE_ALERT_FIRING;
        gyre_buf_appendf(b, "gyre_alerts_firing{rule=\"%s\"} %u\n", a->rules[ri].conf->name, n);
    }
    uint64_t folded = 0;
    for (unsigned w = 0; w < a->nworkers; w++)
        folded += __atomic_load_n(&a->workers[w]->folded, __ATOMIC_RELAXED);
    gyre_buf_appendf(b,
                     "# HELP gyre_alert_series_folded_total Samples counted under the label set \"other\" because a "
                     "worker's alert table was full.\n"
                     "# TYPE gyre_alert_series_folded_total counter\n"
                     "gyre_alert_series_folded_total %llu\n",
                     (unsigned long long)folded);
    pthread_mutex_unlock(&a->mu);
    return gyre_buf_failed(b) ? -E2BIG : 0;
}
