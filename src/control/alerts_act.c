/* The alert engine's actions, notices and events (see alerts.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "control/alerts_int.h"

void gyre_alerts_refs_alloc(gyre_alerts_t *a)
{
    const gyre_config_t *c = a->config;
    a->target_refs = gyre_calloc(c->nroutes + 1, sizeof(*a->target_refs));
    for (size_t i = 0; i < c->nroutes; i++)
        a->target_refs[i] = gyre_calloc(c->routes[i].ntargets + c->routes[i].nfallbacks + 1, sizeof(unsigned));
    a->key_refs = gyre_calloc(c->nproviders + 1, sizeof(*a->key_refs));
    for (size_t i = 0; i < c->nproviders; i++)
        a->key_refs[i] = gyre_calloc(c->providers[i].nkeys + 1, sizeof(unsigned));
    a->provider_refs = gyre_calloc(c->nproviders + 1, sizeof(unsigned));
}

void gyre_alerts_refs_free(gyre_alerts_t *a)
{
    for (size_t i = 0; i < a->config->nroutes; i++)
        free(a->target_refs[i]);
    for (size_t i = 0; i < a->config->nproviders; i++)
        free(a->key_refs[i]);
    free(a->target_refs);
    free(a->key_refs);
    free(a->provider_refs);
}

/* ---- Actions --------------------------------------------------------------------------------------------- */

typedef struct said {
    char *p;
    size_t len, cap;
} said_t;

static void say(said_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(said_t *s, const char *fmt, ...)
{
    if (s->len + 3 >= s->cap)
        return;
    if (s->len != 0) {
        memcpy(s->p + s->len, "; ", 2);
        s->len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len = s->len + (size_t)n < s->cap ? s->len + (size_t)n : s->cap - 1;
}

static int find_provider(const gyre_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->nproviders; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void record_applied(aset_t *s, int kind, size_t i, size_t j)
{
    if (s->napplied < MAX_APPLIED)
        s->applied[s->napplied++] = (applied_t){kind, i, j};
}

static int set_target(gyre_alerts_t *a, size_t ri, size_t ti, int out)
{
    unsigned *ref = &a->target_refs[ri][ti];
    if (out) {
        if (*ref == 0) {
            int rc = gyre_overrides_set_target_out(a->overrides, ri, ti, 1);
            if (rc != 0)
                return rc;
        }
        ++*ref;
    } else if (*ref > 0 && --*ref == 0) {
        gyre_overrides_set_target_out(a->overrides, ri, ti, 0);
    }
    return 0;
}

static int set_key(gyre_alerts_t *a, size_t pi, size_t ki, int out)
{
    unsigned *ref = &a->key_refs[pi][ki];
    if (out) {
        if (*ref == 0) {
            int rc = gyre_overrides_set_key_out(a->overrides, pi, ki, 1);
            if (rc != 0)
                return rc;
        }
        ++*ref;
    } else if (*ref > 0 && --*ref == 0) {
        gyre_overrides_set_key_out(a->overrides, pi, ki, 0);
    }
    return 0;
}

static int set_open(gyre_alerts_t *a, size_t pi, int open)
{
    unsigned *ref = &a->provider_refs[pi];
    if (open) {
        if (*ref == 0) {
            int rc = gyre_overrides_set_provider_open(a->overrides, pi, 1);
            if (rc != 0)
                return rc;
        }
        ++*ref;
    } else if (*ref > 0 && --*ref == 0) {
        gyre_overrides_set_provider_open(a->overrides, pi, 0);
    }
    return 0;
}

static const gyre_target_conf_t *target_at(const gyre_route_conf_t *r, size_t ti)
{
    return ti < r->ntargets ? &r->targets[ti] : &r->fallbacks[ti - r->ntargets];
}

static void act_failover(gyre_alerts_t *a, aset_t *s, said_t *out)
{
    const gyre_config_t *c = a->config;
    const char *route = s->labels.v[L_ROUTE], *prov = s->labels.v[L_PROVIDER];
    int pi = find_provider(c, prov);
    if (pi < 0 || a->overrides == NULL) {
        say(out, "gyre could not fail over: %s", pi < 0 ? "the alert names no provider of the configuration"
                                                         : "no routing overrides in this process");
        return;
    }
    int any = 0;
    for (size_t ri = 0; ri < c->nroutes; ri++) {
        const gyre_route_conf_t *r = &c->routes[ri];
        if (strcmp(r->name, route) != 0)
            continue;
        for (size_t ti = 0; ti < r->ntargets + r->nfallbacks; ti++) {
            const gyre_target_conf_t *t = target_at(r, ti);
            if (t->provider != (size_t)pi)
                continue;
            any = 1;
            int rc = set_target(a, ri, ti, 1);
            if (rc == 0) {
                record_applied(s, GYRE_ACTION_FAILOVER, ri, ti);
                say(out, "gyre took route %s's target %s/%s out of rotation", r->name, prov, t->model);
            } else {
                say(out, "gyre could not take route %s's target %s/%s out of rotation: %s", r->name, prov, t->model,
                    rc == -EBUSY ? "it is the route's last usable target" : "no such target");
            }
        }
    }
    if (!any)
        say(out, "gyre could not fail over: route '%s' has no target on provider %s", route, prov);
}

static void act_rotate(gyre_alerts_t *a, aset_t *s, said_t *out)
{
    const gyre_config_t *c = a->config;
    const char *prov = s->labels.v[L_PROVIDER], *key = s->labels.v[L_KEY];
    int pi = find_provider(c, prov);
    if (pi < 0 || a->overrides == NULL) {
        say(out, "gyre could not rotate key %s: %s", key,
            pi < 0 ? "the alert names no provider of the configuration" : "no routing overrides in this process");
        return;
    }
    const gyre_provider_conf_t *p = &c->providers[pi];
    for (size_t ki = 0; ki < p->nkeys; ki++) {
        if (strcmp(p->key_ids[ki], key) != 0)
            continue;
        int rc = set_key(a, (size_t)pi, ki, 1);
        if (rc != 0) {
            say(out, "gyre could not move provider %s's traffic off key %s: %s", prov, key,
                rc == -EBUSY ? "it is the provider's last usable key" : "no such key");
            return;
        }
        record_applied(s, GYRE_ACTION_ROTATE_KEY, (size_t)pi, ki);
        char others[512];
        size_t n = 0;
        others[0] = '\0';
        for (size_t k = 0; k < p->nkeys; k++)
            if (k != ki && !gyre_overrides_key_out(a->overrides, (size_t)pi, k) && n + 80 < sizeof(others))
                n += (size_t)snprintf(others + n, sizeof(others) - n, "%s%s", n ? ", " : "", p->key_ids[k]);
        say(out, "gyre moved provider %s's traffic off key %s to %s", prov, key, others);
        return;
    }
    say(out, "gyre could not rotate key %s: provider %s has no key of that id", key, prov);
}

static void act_open(gyre_alerts_t *a, aset_t *s, said_t *out)
{
    const char *prov = s->labels.v[L_PROVIDER];
    int pi = find_provider(a->config, prov);
    if (pi < 0 || a->overrides == NULL) {
        say(out, "gyre could not open provider %s's circuit: %s", prov,
            pi < 0 ? "the alert names no provider of the configuration" : "no routing overrides in this process");
        return;
    }
    set_open(a, (size_t)pi, 1);
    record_applied(s, GYRE_ACTION_OPEN_CIRCUIT, (size_t)pi, 0);
    say(out, "gyre opened provider %s's circuit", prov);
}

/* Undoes what the set's actions changed, saying so. */
static void undo(gyre_alerts_t *a, aset_t *s, said_t *out)
{
    const gyre_config_t *c = a->config;
    for (size_t k = 0; k < s->napplied; k++) {
        applied_t *ap = &s->applied[k];
        switch (ap->kind) {
        case GYRE_ACTION_FAILOVER: {
            const gyre_route_conf_t *r = &c->routes[ap->i];
            const gyre_target_conf_t *t = target_at(r, ap->j);
            set_target(a, ap->i, ap->j, 0);
            say(out, "gyre put route %s's target %s/%s back into rotation", r->name, c->providers[t->provider].name,
                t->model);
            break;
        }
        case GYRE_ACTION_ROTATE_KEY:
            set_key(a, ap->i, ap->j, 0);
            say(out, "gyre put key %s back into provider %s's rotation", c->providers[ap->i].key_ids[ap->j],
                c->providers[ap->i].name);
            break;
        case GYRE_ACTION_OPEN_CIRCUIT:
            set_open(a, ap->i, 0);
            say(out, "gyre closed provider %s's circuit", c->providers[ap->i].name);
            break;
        }
    }
    s->napplied = 0;
}

void gyre_alerts_labels_json(const labels_t *lb, char *out, size_t size)
{
    size_t n = 0;
    out[n++] = '{';
    for (int l = 0; l < NLABELS; l++) {
        if (lb->v[l][0] == '\0')
            continue;
        n += (size_t)snprintf(out + n, size - n, "%s\"%s\":\"%s\"", n > 1 ? "," : "", gyre_alerts_label_names[l], lb->v[l]);
        if (n >= size - 2)
            break;
    }
    snprintf(out + n, size - n, "}");
}

static void format_value(char *buf, size_t size, gyre_alert_signal_t sig, double v)
{
    if (isnan(v))
        snprintf(buf, size, "no calls");
    else if (sig == GYRE_SIG_ERROR_RATE || sig == GYRE_SIG_RATE_LIMITED_RATE)
        snprintf(buf, size, "%.4g%%", v * 100);
    else if (sig <= GYRE_SIG_TTFT_P95)
        snprintf(buf, size, "%.6gms", v);
    else if (sig == GYRE_SIG_COST_PER_HOUR)
        snprintf(buf, size, "$%.6g", v);
    else
        snprintf(buf, size, "%.6g", v);
}

static void notify_all(gyre_alerts_t *a, arule_t *r, aset_t *s, int resolved, int64_t now_us, said_t *out)
{
    const gyre_alert_rule_conf_t *rc = r->conf;
    gyre_notice_t n;
    memset(&n, 0, sizeof(n));
    n.alertname = rc->name;
    n.severity = rc->severity;
    n.resolved = resolved;
    n.fingerprint = s->fingerprint;
    n.labels[n.nlabels++] = (gyre_notice_pair_t){"alertname", rc->name};
    n.labels[n.nlabels++] = (gyre_notice_pair_t){"severity", rc->severity};
    for (int l = 0; l < NLABELS; l++)
        if (s->labels.v[l][0] != '\0')
            n.labels[n.nlabels++] = (gyre_notice_pair_t){gyre_alerts_label_names[l], s->labels.v[l]};
    char summary[320], value[64];
    format_value(value, sizeof(value), rc->signal, s->value);
    snprintf(summary, sizeof(summary), "%s %s: %s is %s (%s)", rc->name, resolved ? "resolved" : "firing",
             gyre_alert_signal_name(rc->signal), value, rc->condition);
    /* The actions annotation is what the built-in actions said so far (they run before the notifiers). */
    char actions[1024];
    snprintf(actions, sizeof(actions), "%.*s", (int)out->len, out->p);
    n.annotations[n.nannotations++] = (gyre_notice_pair_t){"summary", summary};
    n.annotations[n.nannotations++] = (gyre_notice_pair_t){"description", rc->condition};
    n.annotations[n.nannotations++] = (gyre_notice_pair_t){"actions", actions[0] ? actions : "none"};
    n.starts_us = s->fsm.fired_at_us;
    n.ends_us = resolved ? now_us : 0;
    for (size_t i = 0; i < rc->nactions; i++) {
        if (rc->actions[i].kind != GYRE_ACTION_NOTIFY)
            continue;
        const char *name = rc->actions[i].name;
        int rc2 = a->hooks.send != NULL ? a->hooks.send(a->hooks.send_data, name, &n) : -ENOSYS;
        if (rc2 == 0)
            say(out, "notified %s", name);
        else
            say(out, "could not notify %s: %s", name,
                rc2 == -ENOENT    ? "no such notifier"
                : rc2 == -ENOBUFS ? "its queue is full"
                : rc2 == -ENOSYS  ? "notifiers are not running"
                                  : "refused");
    }
}

static void add_event(gyre_alerts_t *a, arule_t *r, aset_t *s, gyre_alert_state_t st, int64_t now_us,
                      const said_t *acts)
{
    gyre_alert_event_t *e = &a->events[a->event_next];
    memset(e, 0, sizeof(*e));
    e->at_us = now_us;
    snprintf(e->rule, sizeof(e->rule), "%s", r->conf->name);
    snprintf(e->severity, sizeof(e->severity), "%s", r->conf->severity);
    snprintf(e->state, sizeof(e->state), "%s", gyre_alert_state_name(st));
    memcpy(e->fingerprint, s->fingerprint, sizeof(e->fingerprint));
    gyre_alerts_labels_json(&s->labels, e->labels, sizeof(e->labels));
    snprintf(e->condition, sizeof(e->condition), "%s", r->conf->condition);
    e->value = s->value;
    snprintf(e->actions, sizeof(e->actions), "%.*s", (int)acts->len, acts->p);
    a->event_next = (a->event_next + 1) % GYRE_ALERTS_EVENTS_KEPT;
    if (a->nevents < GYRE_ALERTS_EVENTS_KEPT)
        a->nevents++;
    if ((unsigned)st < 4)
        r->transitions[st]++;
    if (a->hooks.event != NULL)
        a->hooks.event(a->hooks.event_data, e);
}

void gyre_alerts_transition(gyre_alerts_t *a, arule_t *r, aset_t *s, gyre_alert_state_t st, int64_t now_us)
{
    char buf[1024];
    said_t out = {buf, 0, sizeof(buf)};
    buf[0] = '\0';
    const gyre_alert_rule_conf_t *rc = r->conf;
    char lj[sizeof(((gyre_alert_event_t *)0)->labels)], value[64];
    if (st == GYRE_ALERT_FIRING || st == GYRE_ALERT_RESOLVED) {
        if (st == GYRE_ALERT_FIRING) {
            for (size_t i = 0; i < rc->nactions; i++) {
                switch (rc->actions[i].kind) {
                case GYRE_ACTION_FAILOVER: act_failover(a, s, &out); break;
                case GYRE_ACTION_ROTATE_KEY: act_rotate(a, s, &out); break;
                case GYRE_ACTION_OPEN_CIRCUIT: act_open(a, s, &out); break;
                default: break;
                }
            }
        } else {
            undo(a, s, &out);
        }
        gyre_alerts_labels_json(&s->labels, lj, sizeof(lj));
        format_value(value, sizeof(value), rc->signal, s->value);
        for (size_t i = 0; i < rc->nactions; i++)
            if (rc->actions[i].kind == GYRE_ACTION_LOG) {
                gyre_logf("gyre: alert %s %s: %s is %s (%s) %s%s%.*s\n", rc->name, gyre_alert_state_name(st),
                          gyre_alert_signal_name(rc->signal), value, rc->condition, lj, out.len ? "; " : "",
                          (int)out.len, out.p);
                say(&out, "logged");
                break;
            }
        notify_all(a, r, s, st == GYRE_ALERT_RESOLVED, now_us, &out);
    }
    add_event(a, r, s, st, now_us, &out);
}

void gyre_alerts_reapply(gyre_alerts_t *a, arule_t *r, aset_t *s)
{
    char buf[512];
    said_t out = {buf, 0, sizeof(buf)};
    for (size_t j = 0; j < r->conf->nactions; j++) {
        switch (r->conf->actions[j].kind) {
        case GYRE_ACTION_FAILOVER: act_failover(a, s, &out); break;
        case GYRE_ACTION_ROTATE_KEY: act_rotate(a, s, &out); break;
        case GYRE_ACTION_OPEN_CIRCUIT: act_open(a, s, &out); break;
        default: break;
        }
    }
}
