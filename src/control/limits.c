/*
 * Limits and budgets, the part every backend shares (see limits.h): the
 * config's rules resolved per request, the clock, soft budgets' notices, the
 * refusal counters and the metrics.  The counters themselves are the
 * backend's (limits_local.c).
 *
 * Rules live in an immutable snapshot that workers read through one atomic
 * pointer; a live change (gyre_limits_reconfigure) publishes a new snapshot
 * and keeps the old ones until gyre_limits_destroy, since a worker may still be
 * reading one (a reload is rare: each keeps a few KiB per rule).  The
 * backend's counters are keyed by (level, id), so they outlive the change.
 */
#include "control/limits.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/json.h"
#include <cjson/cJSON.h>

typedef struct rule {
    char id[GYRE_PRINCIPAL_ID_MAX];
    gyre_limit_set_t set;
    const char *notify; /* into the snapshot's strings */
} rule_t;

typedef struct snapshot {
    rule_t *rules[GYRE_LIMIT_LEVELS]; /* sorted by id, "*" left out */
    size_t nrules[GYRE_LIMIT_LEVELS];
    rule_t star[GYRE_LIMIT_LEVELS];
    int has_star[GYRE_LIMIT_LEVELS];
    int64_t ttl_us;
    unsigned default_max_tokens;
    int has_budgets;
    char **strings; /* the notifier names the rules point to */
    size_t nstrings;
    struct snapshot *retired; /* the snapshot this one replaced */
} snapshot_t;

struct gyre_limits {
    const gyre_limits_backend_t *backend;
    void *state;
    snapshot_t *_Atomic snap;
    pthread_mutex_t reconfigure_mu;
    int64_t (*clock)(void *arg);
    void *clock_arg;
    gyre_limits_notify_fn notify;
    void *notify_arg;
    _Atomic uint64_t refusals[GYRE_LIMIT_LEVELS][GYRE_LIMIT_KINDS];
    /* Rules the admin API set, applied over every config's (under reconfigure_mu). */
    struct overlay {
        int level;
        rule_t rule;
        int removed;
        char *notify;
    } *overlay;
    size_t noverlay;
};

static const char *const level_names[GYRE_LIMIT_LEVELS] = {"key", "team", "agent", "user"};
static const char *const kind_names[GYRE_LIMIT_KINDS] = {"rpm", "tpm", "concurrency", "budget"};

const char *gyre_limit_level_name(gyre_limit_level_t level)
{
    return level < GYRE_LIMIT_LEVELS ? level_names[level] : "?";
}

const char *gyre_limit_kind_name(gyre_limit_kind_t kind)
{
    return kind < GYRE_LIMIT_KINDS ? kind_names[kind] : "?";
}

static int64_t real_clock(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t gyre_limits_period_start(int64_t now_us, gyre_budget_period_t period, int64_t *next_us)
{
    const int64_t day = 86400LL * 1000000;
    int64_t days = now_us >= 0 ? now_us / day : (now_us - day + 1) / day;
    int64_t start, next;
    if (period == GYRE_BUDGET_WEEK) {
        /* 1970-01-01 was a Thursday: Monday is 3 days before it. */
        int64_t weekday = ((days + 3) % 7 + 7) % 7;
        start = (days - weekday) * day;
        next = start + 7 * day;
    } else if (period == GYRE_BUDGET_MONTH) {
        time_t t = (time_t)(now_us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        start = (int64_t)timegm(&tm) * 1000000;
        tm.tm_mon += 1;
        next = (int64_t)timegm(&tm) * 1000000;
    } else {
        start = days * day;
        next = start + day;
    }
    if (next_us != NULL)
        *next_us = next;
    return start;
}

static int set_has_any(const gyre_limit_set_t *s)
{
    return s->rpm != 0 || s->tpm != 0 || s->concurrency != 0 ||
           (s->budget_usd >= 0 && s->budget_period != GYRE_BUDGET_NONE);
}

static int rule_cmp(const void *a, const void *b)
{
    return strcmp(((const rule_t *)a)->id, ((const rule_t *)b)->id);
}

static const char *keep_string(snapshot_t *s, const char *v)
{
    if (v == NULL)
        return NULL;
    s->strings = gyre_realloc(s->strings, (s->nstrings + 1) * sizeof(*s->strings));
    return s->strings[s->nstrings++] = gyre_strdup(v);
}

static snapshot_t *snapshot_make(const gyre_limits_conf_t *c)
{
    snapshot_t *s = gyre_calloc(1, sizeof(*s));
    s->ttl_us = (int64_t)(c->reservation_ttl_ms != 0 ? c->reservation_ttl_ms : GYRE_DEFAULT_RESERVATION_TTL_MS) * 1000;
    s->default_max_tokens = c->default_max_tokens != 0 ? c->default_max_tokens : GYRE_DEFAULT_MAX_TOKENS;
    const char *section_notify = keep_string(s, c->notify);
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++) {
        s->rules[l] = gyre_calloc(c->nrules[l] + 1, sizeof(rule_t));
        for (size_t i = 0; i < c->nrules[l]; i++) {
            const gyre_limit_conf_t *r = &c->rules[l][i];
            rule_t x;
            memset(&x, 0, sizeof(x));
            strncpy(x.id, r->id, sizeof(x.id) - 1);
            x.set = (gyre_limit_set_t){.rpm = r->rpm,
                                       .tpm = r->tpm,
                                       .concurrency = r->concurrency,
                                       .budget_usd = r->budget_period != 0 ? r->budget_usd : -1,
                                       .budget_period = (gyre_budget_period_t)r->budget_period,
                                       .budget_soft = r->soft};
            x.notify = r->notify != NULL ? keep_string(s, r->notify) : section_notify;
            s->has_budgets |= x.set.budget_usd >= 0;
            if (strcmp(r->id, "*") == 0) {
                s->star[l] = x;
                s->has_star[l] = 1;
            } else {
                s->rules[l][s->nrules[l]++] = x;
            }
        }
        qsort(s->rules[l], s->nrules[l], sizeof(rule_t), rule_cmp);
    }
    return s;
}

static void snapshot_free(snapshot_t *s)
{
    while (s != NULL) {
        snapshot_t *next = s->retired;
        for (int l = 0; l < GYRE_LIMIT_LEVELS; l++)
            free(s->rules[l]);
        for (size_t i = 0; i < s->nstrings; i++)
            free(s->strings[i]);
        free(s->strings);
        free(s);
        s = next;
    }
}

/* One rule of the admin API's into a snapshot not yet published: replaced, added (kept sorted) or removed. */
static void snapshot_put(snapshot_t *s, const struct overlay *o)
{
    int l = o->level;
    rule_t r = o->rule;
    r.notify = o->notify != NULL ? keep_string(s, o->notify) : NULL;
    s->has_budgets |= !o->removed && r.set.budget_usd >= 0;
    if (strcmp(r.id, "*") == 0) {
        s->star[l] = r;
        s->has_star[l] = !o->removed;
        return;
    }
    size_t i = 0;
    while (i < s->nrules[l] && strcmp(s->rules[l][i].id, r.id) < 0)
        i++;
    int found = i < s->nrules[l] && strcmp(s->rules[l][i].id, r.id) == 0;
    if (o->removed) {
        if (found) {
            memmove(&s->rules[l][i], &s->rules[l][i + 1], (s->nrules[l] - i - 1) * sizeof(rule_t));
            s->nrules[l]--;
        }
        return;
    }
    if (!found) {
        s->rules[l] = gyre_realloc(s->rules[l], (s->nrules[l] + 1) * sizeof(rule_t));
        memmove(&s->rules[l][i + 1], &s->rules[l][i], (s->nrules[l] - i) * sizeof(rule_t));
        s->nrules[l]++;
    }
    s->rules[l][i] = r;
}

gyre_limits_t *gyre_limits_create(const gyre_config_t *config)
{
    if (!config->limits.present)
        return NULL;
    gyre_limits_t *l = gyre_calloc(1, sizeof(*l));
    l->backend = &gyre_limits_local;
    l->state = l->backend->create();
    atomic_store(&l->snap, snapshot_make(&config->limits));
    pthread_mutex_init(&l->reconfigure_mu, NULL);
    l->clock = real_clock;
    return l;
}

void gyre_limits_destroy(gyre_limits_t *l)
{
    if (l == NULL)
        return;
    l->backend->destroy(l->state);
    snapshot_free(atomic_load(&l->snap));
    for (size_t i = 0; i < l->noverlay; i++)
        free(l->overlay[i].notify);
    free(l->overlay);
    pthread_mutex_destroy(&l->reconfigure_mu);
    free(l);
}

void gyre_limits_reconfigure(gyre_limits_t *l, const gyre_config_t *next)
{
    if (l == NULL)
        return;
    /* A config without `limits:` leaves no rule: every request passes, and the counters wait for rules to come
     * back (a limits object is made at start only when the first config has the section). */
    gyre_limits_conf_t none = {0};
    snapshot_t *fresh = snapshot_make(next->limits.present ? &next->limits : &none);
    pthread_mutex_lock(&l->reconfigure_mu);
    for (size_t i = 0; i < l->noverlay; i++)
        snapshot_put(fresh, &l->overlay[i]);
    fresh->retired = atomic_load(&l->snap);
    atomic_store(&l->snap, fresh);
    pthread_mutex_unlock(&l->reconfigure_mu);
}

void gyre_limits_set_clock(gyre_limits_t *l, int64_t (*now_us)(void *arg), void *arg)
{
    l->clock = now_us != NULL ? now_us : real_clock;
    l->clock_arg = arg;
}

void gyre_limits_set_notify(gyre_limits_t *l, gyre_limits_notify_fn fn, void *arg)
{
    l->notify = fn;
    l->notify_arg = arg;
}

int64_t gyre_limits_now(const gyre_limits_t *l)
{
    return l->clock(l->clock_arg);
}

uint64_t gyre_limits_default_max_tokens(const gyre_limits_t *l)
{
    return atomic_load(&l->snap)->default_max_tokens;
}

int gyre_limits_has_budgets(const gyre_limits_t *l)
{
    return atomic_load(&l->snap)->has_budgets;
}

static const rule_t *find_rule(const snapshot_t *s, int level, const char *id)
{
    rule_t key;
    size_t n = strlen(id);
    if (n >= sizeof(key.id))
        return NULL;
    memcpy(key.id, id, n + 1);
    const rule_t *r = bsearch(&key, s->rules[level], s->nrules[level], sizeof(rule_t), rule_cmp);
    if (r != NULL)
        return r;
    return s->has_star[level] ? &s->star[level] : NULL;
}

/* Which limits apply at each level: a managed key's own, else the config's rule for the id, else its level's
 * "*"; a level without an id (no team, no agent, no user) does not apply. */
static void resolve(const snapshot_t *s, const gyre_limit_ask_t *ask, gyre_limit_level_ask_t out[GYRE_LIMIT_LEVELS])
{
    for (int l = 0; l < GYRE_LIMIT_LEVELS; l++) {
        memset(&out[l], 0, sizeof(out[l]));
        const char *id = ask->ids[l];
        if (l == GYRE_LIMIT_KEY && id == NULL)
            id = "";
        if (id == NULL || (id[0] == '\0' && l != GYRE_LIMIT_KEY))
            continue;
        if (l == GYRE_LIMIT_KEY && ask->key_limits != NULL && set_has_any(ask->key_limits)) {
            out[l].id = id;
            out[l].set = *ask->key_limits;
            continue;
        }
        const rule_t *r = find_rule(s, l, id);
        if (r == NULL)
            continue;
        out[l].id = id;
        out[l].set = r->set;
        out[l].explicit_id = r != &s->star[l];
        out[l].notify = r->notify;
    }
}

int gyre_limits_reserve(gyre_limits_t *l, const gyre_limit_ask_t *ask, gyre_limit_hold_t *hold,
                        gyre_limit_refusal_t *why, gyre_limit_status_t *status)
{
    const snapshot_t *s = atomic_load_explicit(&l->snap, memory_order_acquire);
    gyre_limit_level_ask_t lv[GYRE_LIMIT_LEVELS];
    resolve(s, ask, lv);
    int rc = l->backend->reserve(l->state, lv, ask->tokens, ask->cost_nusd, s->ttl_us, l->clock(l->clock_arg), hold,
                                 why, status);
    if (rc != 0)
        atomic_fetch_add_explicit(&l->refusals[why->level][why->kind], 1, memory_order_relaxed);
    return rc;
}

static const char *display_id(const char *id)
{
    return id[0] != '\0' ? id : "(anonymous)";
}

static const char *period_name(gyre_budget_period_t p)
{
    return p == GYRE_BUDGET_DAY ? "day" : p == GYRE_BUDGET_WEEK ? "week" : p == GYRE_BUDGET_MONTH ? "month" : "period";
}

/* One notice per threshold crossed: "budget" alerts, labelled by level and id, fingerprinted per period. */
static void send_notices(gyre_limits_t *l, gyre_limit_level_t level, const gyre_limit_level_ask_t *lv,
                         unsigned crossed, int64_t now_us)
{
    if (l->notify == NULL || lv->notify == NULL)
        return;
    gyre_limit_usage_t u;
    if (l->backend->usage(l->state, level, lv->id, &lv->set, 0x7fffffff, now_us, &u) != 0)
        return;
    static const unsigned pct[3] = {50, 80, 100};
    for (int i = 0; i < 3; i++) {
        if (!(crossed & (1u << i)))
            continue;
        char fp[160], pcts[8], summary[320], spent[32], budget[32], start[32];
        snprintf(pcts, sizeof(pcts), "%u", pct[i]);
        snprintf(fp, sizeof(fp), "budget:%s:%s:%u:%lld", level_names[level], display_id(lv->id), pct[i],
                 (long long)u.period_start_us);
        snprintf(spent, sizeof(spent), "%.6f", (double)u.spent_nusd / GYRE_NUSD_PER_USD);
        snprintf(budget, sizeof(budget), "%.2f", lv->set.budget_usd);
        snprintf(start, sizeof(start), "%lld", (long long)u.period_start_us);
        snprintf(summary, sizeof(summary), "%s %s has spent $%.2f of its $%.2f %s budget (%u %%)%s",
                 level_names[level], display_id(lv->id), (double)u.spent_nusd / GYRE_NUSD_PER_USD, lv->set.budget_usd,
                 lv->set.budget_period == GYRE_BUDGET_DAY     ? "daily"
                 : lv->set.budget_period == GYRE_BUDGET_WEEK  ? "weekly"
                                                              : "monthly",
                 (unsigned)(lv->set.budget_usd > 0 ? (double)u.spent_nusd * 100 / ((double)lv->set.budget_usd * GYRE_NUSD_PER_USD) + 1e-9 : 100),
                 pct[i] < 100       ? ""
                 : lv->set.budget_soft ? "; the budget is soft: requests go on"
                                       : "; requests that would spend more are refused until the period ends");
        gyre_notice_t n;
        memset(&n, 0, sizeof(n));
        n.alertname = "budget";
        n.severity = pct[i] >= 100 ? "critical" : "warning";
        n.fingerprint = fp;
        n.labels[n.nlabels++] = (gyre_notice_pair_t){"level", level_names[level]};
        n.labels[n.nlabels++] = (gyre_notice_pair_t){"id", display_id(lv->id)};
        n.labels[n.nlabels++] = (gyre_notice_pair_t){"threshold_pct", pcts};
        n.labels[n.nlabels++] = (gyre_notice_pair_t){"period", period_name(lv->set.budget_period)};
        n.annotations[n.nannotations++] = (gyre_notice_pair_t){"summary", summary};
        n.annotations[n.nannotations++] = (gyre_notice_pair_t){"spent_usd", spent};
        n.annotations[n.nannotations++] = (gyre_notice_pair_t){"budget_usd", budget};
        n.annotations[n.nannotations++] = (gyre_notice_pair_t){"period_start_us", start};
        n.starts_us = now_us;
        l->notify(l->notify_arg, lv->notify, &n);
    }
}

void gyre_limits_settle(gyre_limits_t *l, const gyre_limit_ask_t *ask, gyre_limit_hold_t *hold, uint64_t tokens,
                        int64_t cost_nusd)
{
    if (l == NULL || !hold->active)
        return;
    const snapshot_t *s = atomic_load_explicit(&l->snap, memory_order_acquire);
    gyre_limit_level_ask_t lv[GYRE_LIMIT_LEVELS];
    resolve(s, ask, lv);
    unsigned crossed[GYRE_LIMIT_LEVELS];
    int64_t now = l->clock(l->clock_arg);
    l->backend->settle(l->state, hold, tokens, cost_nusd, lv, s->ttl_us, now, crossed);
    for (int i = 0; i < GYRE_LIMIT_LEVELS; i++)
        if (crossed[i] != 0 && lv[i].id != NULL)
            send_notices(l, (gyre_limit_level_t)i, &lv[i], crossed[i], now);
}

int gyre_limits_usage(gyre_limits_t *l, gyre_limit_level_t level, const char *id, gyre_limit_usage_t *out)
{
    const snapshot_t *s = atomic_load_explicit(&l->snap, memory_order_acquire);
    gyre_limit_ask_t ask;
    memset(&ask, 0, sizeof(ask));
    ask.ids[level] = id;
    gyre_limit_level_ask_t lv[GYRE_LIMIT_LEVELS];
    resolve(s, &ask, lv);
    return l->backend->usage(l->state, level, id, lv[level].id != NULL ? &lv[level].set : NULL, s->ttl_us,
                             l->clock(l->clock_arg), out);
}

static int64_t ceil_seconds(int64_t us)
{
    return us <= 0 ? 0 : (us + 999999) / 1000000;
}

void gyre_limits_describe(const gyre_limit_refusal_t *why, char *out, size_t len)
{
    const char *level = gyre_limit_level_name(why->level), *id = display_id(why->id);
    long long secs = (long long)ceil_seconds(why->retry_us);
    switch (why->kind) {
    case GYRE_LIMIT_RPM:
        snprintf(out, len, "rate limit of %llu requests per minute for %s %s reached; resets in %lld s",
                 (unsigned long long)why->limit, level, id, secs);
        break;
    case GYRE_LIMIT_TPM:
        if (why->too_large)
            snprintf(out, len,
                     "this request alone is over the rate limit of %llu tokens per minute for %s %s (its estimate "
                     "is its max_tokens plus its body's bytes / 4); ask for fewer max_tokens",
                     (unsigned long long)why->limit, level, id);
        else
            snprintf(out, len, "rate limit of %llu tokens per minute for %s %s reached; resets in %lld s",
                     (unsigned long long)why->limit, level, id, secs);
        break;
    case GYRE_LIMIT_CONCURRENCY:
        snprintf(out, len, "concurrency limit of %llu requests in flight for %s %s reached; retry when one ends",
                 (unsigned long long)why->limit, level, id);
        break;
    default:
        snprintf(out, len, "budget of $%.2f per %s (UTC) for %s %s %s; resets in %lld s", why->budget_usd,
                 period_name(why->period), level, id,
                 why->too_large ? "is smaller than this request's estimated cost" : "reached", secs);
        break;
    }
}

size_t gyre_limits_format_reset(int64_t us, char *out, size_t len)
{
    int n;
    if (us <= 0) {
        n = snprintf(out, len, "0s");
    } else if (us < 1000000) {
        n = snprintf(out, len, "%lldms", (long long)((us + 999) / 1000));
    } else {
        /* As Go's time.Duration prints (what OpenAI sends): "1s", "8.64s", "6m0s", "1h2m3s", milliseconds kept. */
        long long ms = (long long)((us + 999) / 1000);
        long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
        char sec[16];
        if (frac == 0)
            snprintf(sec, sizeof(sec), "%llds", s);
        else {
            snprintf(sec, sizeof(sec), "%lld.%03lld", s, frac);
            size_t k = strlen(sec);
            while (sec[k - 1] == '0')
                sec[--k] = '\0';
            sec[k++] = 's';
            sec[k] = '\0';
        }
        if (h != 0)
            n = snprintf(out, len, "%lldh%lldm%s", h, m, sec);
        else if (m != 0)
            n = snprintf(out, len, "%lldm%s", m, sec);
        else
            n = snprintf(out, len, "%s", sec);
    }
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

void gyre_limits_render_metrics(gyre_limits_t *l, gyre_buf_t *out)
{
    gyre_buf_appendf(out, "# HELP gyre_limit_refusals_total Requests refused by a limit, by level (key, team, agent, "
                          "user) and limit (rpm, tpm, concurrency, budget).\n"
                          "# TYPE gyre_limit_refusals_total counter\n");
    for (int lv = 0; lv < GYRE_LIMIT_LEVELS; lv++)
        for (int k = 0; k < GYRE_LIMIT_KINDS; k++)
            gyre_buf_appendf(out, "gyre_limit_refusals_total{level=\"%s\",limit=\"%s\"} %llu\n", level_names[lv],
                             kind_names[k],
                             l != NULL ? (unsigned long long)atomic_load_explicit(&l->refusals[lv][k],
                                                                                  memory_order_relaxed)
                                       : 0ULL);
    gyre_buf_appendf(out, "# HELP gyre_budget_spent_usd Spend settled in the current budget period (UTC), per level and "
                          "id the config names with a budget.\n"
                          "# TYPE gyre_budget_spent_usd gauge\n");
    if (l != NULL) {
        const snapshot_t *s = atomic_load_explicit(&l->snap, memory_order_acquire);
        int64_t now = l->clock(l->clock_arg);
        for (int lv = 0; lv < GYRE_LIMIT_LEVELS; lv++)
            for (size_t i = 0; i < s->nrules[lv]; i++) {
                const rule_t *r = &s->rules[lv][i];
                if (r->set.budget_usd < 0)
                    continue;
                gyre_limit_usage_t u;
                int64_t spent = l->backend->usage(l->state, (gyre_limit_level_t)lv, r->id, &r->set, s->ttl_us, now,
                                                  &u) == 0
                                    ? u.spent_nusd
                                    : 0;
                gyre_buf_appendf(out, "gyre_budget_spent_usd{level=\"%s\",id=\"%s\"} %.9f\n", level_names[lv], r->id,
                                 (double)spent / GYRE_NUSD_PER_USD);
            }
    }
    gyre_buf_appendf(out, "# HELP gyre_limit_queue_depth Requests waiting on a limit. Always 0: gyre has no queue, a "
                          "request over a limit is refused at once with 429.\n"
                          "# TYPE gyre_limit_queue_depth gauge\n"
                          "gyre_limit_queue_depth 0\n");
}

static cJSON *set_json(const gyre_limit_set_t *set, const char *notify)
{
    cJSON *o = cJSON_CreateObject();
    if (set->rpm != 0)
        cJSON_AddNumberToObject(o, "rpm", set->rpm);
    if (set->tpm != 0)
        cJSON_AddNumberToObject(o, "tpm", set->tpm);
    if (set->concurrency != 0)
        cJSON_AddNumberToObject(o, "concurrency", set->concurrency);
    if (set->budget_usd >= 0 && set->budget_period != GYRE_BUDGET_NONE) {
        cJSON_AddNumberToObject(o, "budget_usd", set->budget_usd);
        cJSON_AddStringToObject(o, "budget_period", period_name(set->budget_period));
        cJSON_AddBoolToObject(o, "soft", set->budget_soft);
    }
    if (notify != NULL)
        cJSON_AddStringToObject(o, "notify", notify);
    return o;
}

static char *print_rule(const rule_t *r)
{
    if (r == NULL)
        return NULL;
    cJSON *o = set_json(&r->set, r->notify);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int valid_id(const char *s)
{
    if (strcmp(s, "*") == 0)
        return 1;
    size_t n = strlen(s);
    if (n == 0 || n >= GYRE_PRINCIPAL_ID_MAX)
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._:@-[]", *p) != NULL))
            return 0;
    return 1;
}

int gyre_limits_set_rule(gyre_limits_t *l, gyre_limit_level_t level, const char *id, const gyre_limit_set_t *set,
                         const char *notify, char **before, char **after)
{
    *before = *after = NULL;
    if (level >= GYRE_LIMIT_LEVELS || !valid_id(id) || (notify != NULL && strlen(notify) > 128))
        return -EINVAL;
    pthread_mutex_lock(&l->reconfigure_mu);
    snapshot_t *old = atomic_load(&l->snap);
    const rule_t *was = NULL;
    if (strcmp(id, "*") == 0) {
        was = old->has_star[level] ? &old->star[level] : NULL;
    } else {
        rule_t key;
        memset(&key, 0, sizeof(key));
        memcpy(key.id, id, strlen(id) + 1);
        was = bsearch(&key, old->rules[level], old->nrules[level], sizeof(rule_t), rule_cmp);
    }
    *before = print_rule(was);
    struct overlay o;
    memset(&o, 0, sizeof(o));
    o.level = (int)level;
    memcpy(o.rule.id, id, strlen(id) + 1);
    o.removed = set == NULL;
    if (set != NULL)
        o.rule.set = *set;
    o.notify = notify != NULL ? gyre_strdup(notify) : NULL;
    /* The overlay keeps one entry per (level, id): the last change. */
    size_t i = 0;
    while (i < l->noverlay && !(l->overlay[i].level == o.level && strcmp(l->overlay[i].rule.id, id) == 0))
        i++;
    if (i == l->noverlay) {
        l->overlay = gyre_realloc(l->overlay, (l->noverlay + 1) * sizeof(*l->overlay));
        l->noverlay++;
    } else {
        free(l->overlay[i].notify);
    }
    l->overlay[i] = o;
    /* A copy of the snapshot in force with the change, published whole. */
    snapshot_t *fresh = gyre_calloc(1, sizeof(*fresh));
    *fresh = *old;
    fresh->strings = NULL;
    fresh->nstrings = 0;
    for (int lv = 0; lv < GYRE_LIMIT_LEVELS; lv++) {
        fresh->rules[lv] = gyre_calloc(old->nrules[lv] + 1, sizeof(rule_t));
        memcpy(fresh->rules[lv], old->rules[lv], old->nrules[lv] * sizeof(rule_t));
        for (size_t k = 0; k < fresh->nrules[lv]; k++)
            fresh->rules[lv][k].notify = keep_string(fresh, old->rules[lv][k].notify);
        if (fresh->has_star[lv])
            fresh->star[lv].notify = keep_string(fresh, old->star[lv].notify);
    }
    snapshot_put(fresh, &o);
    fresh->retired = old;
    atomic_store(&l->snap, fresh);
    o.rule.notify = o.notify;
    *after = set != NULL ? print_rule(&o.rule) : NULL;
    pthread_mutex_unlock(&l->reconfigure_mu);
    return 0;
}

static void add_rule_json(gyre_limits_t *l, const snapshot_t *s, int level, const rule_t *r, int64_t now, cJSON *arr)
{
    cJSON *o = set_json(&r->set, r->notify);
    cJSON_AddStringToObject(o, "id", r->id);
    gyre_limit_usage_t u;
    if (strcmp(r->id, "*") != 0 &&
        l->backend->usage(l->state, (gyre_limit_level_t)level, r->id, &r->set, s->ttl_us, now, &u) == 0) {
        cJSON *j = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(j, "requests_in_window", (double)u.requests_in_window);
        cJSON_AddNumberToObject(j, "tokens_in_window", (double)u.tokens_in_window);
        cJSON_AddNumberToObject(j, "inflight", u.inflight);
        cJSON_AddNumberToObject(j, "reserved_usd", (double)u.reserved_nusd / GYRE_NUSD_PER_USD);
        cJSON_AddNumberToObject(j, "spent_usd", (double)u.spent_nusd / GYRE_NUSD_PER_USD);
    }
    cJSON_AddItemToArray(arr, o);
}

char *gyre_limits_to_json(gyre_limits_t *l)
{
    static const char *const plural[GYRE_LIMIT_LEVELS] = {"keys", "teams", "agents", "users"};
    const snapshot_t *s = atomic_load_explicit(&l->snap, memory_order_acquire);
    int64_t now = l->clock(l->clock_arg);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "reservation_ttl_ms", (double)(s->ttl_us / 1000));
    cJSON_AddNumberToObject(root, "default_max_tokens", s->default_max_tokens);
    cJSON_AddNumberToObject(root, "queue_depth", 0);
    for (int lv = 0; lv < GYRE_LIMIT_LEVELS; lv++) {
        cJSON *arr = cJSON_AddArrayToObject(root, plural[lv]);
        for (size_t i = 0; i < s->nrules[lv]; i++)
            add_rule_json(l, s, lv, &s->rules[lv][i], now, arr);
        if (s->has_star[lv])
            add_rule_json(l, s, lv, &s->star[lv], now, arr);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}
