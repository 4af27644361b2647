/* The notifiers' bodies (see notify_body.h): pure functions of the notices. */
#include "control/notify_body.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/utf8.h"

/* What a body may grow to: 16 notices at most (GYRE_NOTICE_MAX_PAIRS pairs each of bounded strings) per
 * digest body is far below it; past it the text is cut, which a body never reaches. */
#define TEXT_MAX ((size_t)4 << 20)

/* ---- strings ---- */

/* s cut to at most `max` bytes at a character boundary, ill-formed UTF-8 replaced by U+FFFD; caller frees.
 * NULL becomes "". */
static char *clean(const char *s, size_t max)
{
    gyre_buf_t b;
    gyre_buf_init(&b, max + 4);
    size_t n = s != NULL ? strlen(s) : 0;
    for (size_t i = 0; i < n;) {
        size_t bad = 0, len = gyre_utf8_next(s + i, n - i, &bad);
        const char *p = len != 0 ? s + i : GYRE_UTF8_REPLACEMENT;
        size_t plen = len != 0 ? len : 3;
        if (b.len + plen > max)
            break;
        gyre_buf_append(&b, p, plen);
        i += len != 0 ? len : bad;
    }
    char *out = gyre_strndup(b.base != NULL ? b.base : "", b.len);
    gyre_buf_dispose(&b);
    return out;
}

static void add_clean(cJSON *obj, const char *key, const char *s, size_t max)
{
    char *c = clean(s, max);
    cJSON_AddStringToObject(obj, key, c);
    free(c);
}

static char *print(cJSON *root)
{
    char *p = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *out = gyre_strdup(p != NULL ? p : "{}");
    cJSON_free(p);
    return out;
}

/* ---- labels and annotations, as Alertmanager holds them: maps with sorted keys ---- */

typedef struct kv {
    char *name, *value;
} kv_t;

typedef struct kvs {
    kv_t items[GYRE_NOTICE_MAX_PAIRS + 2];
    size_t n;
} kvs_t;

static int kv_cmp_cb(const void *a, const void *b)
{
    return strcmp(((const kv_t *)a)->name, ((const kv_t *)b)->name);
}

/* Adds name=value unless the name is empty or already there (the first one wins). */
static void kvs_add(kvs_t *m, const char *name, const char *value)
{
    if (name == NULL || value == NULL || m->n == sizeof(m->items) / sizeof(m->items[0]))
        return;
    char *cn = clean(name, GYRE_NOTIFY_NAME_MAX);
    if (cn[0] == '\0') {
        free(cn);
        return;
    }
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].name, cn) == 0) {
            free(cn);
            return;
        }
    m->items[m->n].name = cn;
    m->items[m->n].value = clean(value, GYRE_NOTIFY_VALUE_MAX);
    m->n++;
}

static void kvs_dispose(kvs_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].name);
        free(m->items[i].value);
    }
    m->n = 0;
}

/* An alert's labels: alertname, severity, then the notice's own (sorted by name). */
static void labels_of(const gyre_notice_t *v, kvs_t *m)
{
    m->n = 0;
    kvs_add(m, "alertname", v->alertname != NULL ? v->alertname : "");
    if (v->severity != NULL)
        kvs_add(m, "severity", v->severity);
    for (size_t i = 0; i < v->nlabels && i < GYRE_NOTICE_MAX_PAIRS; i++)
        kvs_add(m, v->labels[i].name, v->labels[i].value);
    qsort(m->items, m->n, sizeof(m->items[0]), kv_cmp_cb);
}

static void annotations_of(const gyre_notice_t *v, kvs_t *m)
{
    m->n = 0;
    for (size_t i = 0; i < v->nannotations && i < GYRE_NOTICE_MAX_PAIRS; i++)
        kvs_add(m, v->annotations[i].name, v->annotations[i].value);
    qsort(m->items, m->n, sizeof(m->items[0]), kv_cmp_cb);
}

static const char *kvs_get(const kvs_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].name, name) == 0)
            return m->items[i].value;
    return NULL;
}

static cJSON *kvs_json(const kvs_t *m)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < m->n; i++)
        cJSON_AddStringToObject(o, m->items[i].name, m->items[i].value);
    return o;
}

/* The pairs every one of `n` maps has with the same value (Alertmanager's commonLabels, commonAnnotations). */
static cJSON *common_json(const kvs_t *maps, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; n > 0 && i < maps[0].n; i++) {
        int all = 1;
        for (size_t j = 1; j < n && all; j++) {
            const char *w = kvs_get(&maps[j], maps[0].items[i].name);
            all = w != NULL && strcmp(w, maps[0].items[i].value) == 0;
        }
        if (all)
            cJSON_AddStringToObject(o, maps[0].items[i].name, maps[0].items[i].value);
    }
    return o;
}

/* ---- time and fingerprints ---- */

void gyre_notify_rfc3339(int64_t us, char out[40])
{
    if (us <= 0) {
        strcpy(out, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(us / 1000000);
    int frac = (int)(us % 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t len = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac != 0) {
        char f[8];
        snprintf(f, sizeof(f), "%06d", frac);
        size_t fl = 6;
        while (fl > 0 && f[fl - 1] == '0')
            fl--;
        out[len++] = '.';
        memcpy(out + len, f, fl);
        len += fl;
    }
    out[len++] = 'Z';
    out[len] = '\0';
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* a separator no UTF-8 string holds */
    h *= 0x100000001b3ULL;
    return h;
}

void gyre_notify_fingerprint(const gyre_notice_t *v, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (v->fingerprint != NULL && v->fingerprint[0] != '\0') {
        /* The caller's own when it fits and is plain; else a hash of it, so two long ones never collide by a
         * common prefix (it is PagerDuty's dedup key). */
        size_t len = strlen(v->fingerprint);
        int plain = len <= 16;
        for (size_t i = 0; plain && i < len; i++) {
            unsigned char c = (unsigned char)v->fingerprint[i];
            plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\';
        }
        if (plain) {
            memcpy(out, v->fingerprint, len + 1);
            return;
        }
        h = fnv(h, v->fingerprint);
    } else {
        kvs_t m;
        labels_of(v, &m);
        for (size_t i = 0; i < m.n; i++)
            h = fnv(fnv(h, m.items[i].name), m.items[i].value);
        kvs_dispose(&m);
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

/* ---- webhook: Alertmanager's payload, version 4 ---- */

/* Go's %q of a label value, as Alertmanager writes groupKey: backslash and double quote escaped. */
static void append_quoted(gyre_buf_t *b, const char *s)
{
    gyre_buf_appends(b, "\"");
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            gyre_buf_appendf(b, "\\%c", *p);
        else if (*p == '\n')
            gyre_buf_appends(b, "\\n");
        else if ((unsigned char)*p < 0x20)
            gyre_buf_appendf(b, "\\x%02x", (unsigned char)*p);
        else
            gyre_buf_append(b, p, 1);
    }
    gyre_buf_appends(b, "\"");
}

char *gyre_notify_body_webhook(const gyre_notify_body_ctx_t *x, const gyre_notice_t *const *v, size_t n,
                               size_t truncated)
{
    kvs_t *labels = gyre_calloc(n ? n : 1, sizeof(*labels));
    kvs_t *annos = gyre_calloc(n ? n : 1, sizeof(*annos));
    int firing = 0;
    for (size_t i = 0; i < n; i++) {
        labels_of(v[i], &labels[i]);
        annotations_of(v[i], &annos[i]);
        firing |= !v[i]->resolved;
    }
    char *ext = clean(x->external_url, GYRE_NOTIFY_VALUE_MAX);
    cJSON *root = cJSON_CreateObject();
    add_clean(root, "receiver", x->receiver, GYRE_NOTIFY_NAME_MAX);
    cJSON_AddStringToObject(root, "status", firing ? "firing" : "resolved");
    cJSON *alerts = cJSON_AddArrayToObject(root, "alerts");
    for (size_t i = 0; i < n; i++) {
        cJSON *a = cJSON_CreateObject();
        char t[40], fp[17];
        cJSON_AddStringToObject(a, "status", v[i]->resolved ? "resolved" : "firing");
        cJSON_AddItemToObject(a, "labels", kvs_json(&labels[i]));
        cJSON_AddItemToObject(a, "annotations", kvs_json(&annos[i]));
        gyre_notify_rfc3339(v[i]->starts_us, t);
        cJSON_AddStringToObject(a, "startsAt", t);
        /* Alertmanager sends Go's zero time while an alert fires. */
        gyre_notify_rfc3339(v[i]->resolved ? (v[i]->ends_us > 0 ? v[i]->ends_us : v[i]->starts_us) : 0, t);
        cJSON_AddStringToObject(a, "endsAt", t);
        gyre_buf_t g;
        gyre_buf_init(&g, GYRE_NOTIFY_VALUE_MAX * 2);
        if (ext[0] != '\0')
            gyre_buf_appendf(&g, "%s/api/alerts", ext);
        cJSON_AddStringToObject(a, "generatorURL", gyre_buf_failed(&g) == 0 && g.base != NULL ? g.base : "");
        gyre_buf_dispose(&g);
        gyre_notify_fingerprint(v[i], fp);
        cJSON_AddStringToObject(a, "fingerprint", fp);
        cJSON_AddItemToArray(alerts, a);
    }
    /* gyre groups a notifier's notices by rule: a body of one rule's alerts is grouped by alertname; a digest
     * that spans several rules has no group label, as an Alertmanager route with group_by: [] would send. */
    const char *name0 = n > 0 ? kvs_get(&labels[0], "alertname") : NULL;
    int same = name0 != NULL;
    for (size_t i = 1; i < n && same; i++) {
        const char *w = kvs_get(&labels[i], "alertname");
        same = w != NULL && strcmp(w, name0) == 0;
    }
    cJSON *group = cJSON_AddObjectToObject(root, "groupLabels");
    if (same)
        cJSON_AddStringToObject(group, "alertname", name0);
    cJSON_AddItemToObject(root, "commonLabels", common_json(labels, n));
    cJSON_AddItemToObject(root, "commonAnnotations", common_json(annos, n));
    cJSON_AddStringToObject(root, "externalURL", ext);
    cJSON_AddStringToObject(root, "version", "4");
    gyre_buf_t gk;
    gyre_buf_init(&gk, GYRE_NOTIFY_VALUE_MAX * 2);
    gyre_buf_appends(&gk, "{}:{");
    if (same) {
        gyre_buf_appends(&gk, "alertname=");
        append_quoted(&gk, name0);
    }
    gyre_buf_appends(&gk, "}");
    cJSON_AddStringToObject(root, "groupKey", gyre_buf_failed(&gk) == 0 ? gk.base : "{}:{}");
    gyre_buf_dispose(&gk);
    cJSON_AddNumberToObject(root, "truncatedAlerts", (double)truncated);
    for (size_t i = 0; i < n; i++) {
        kvs_dispose(&labels[i]);
        kvs_dispose(&annos[i]);
    }
    free(labels);
    free(annos);
    free(ext);
    return print(root);
}

/* ---- text for people: Slack, Teams, the log ---- */

/* Slack's mrkdwn gives &, < and > meaning (<!channel>, <url|text>): its documentation asks for them escaped. */
static void append_slack(gyre_buf_t *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '&')
            gyre_buf_appends(b, "&amp;");
        else if (*p == '<')
            gyre_buf_appends(b, "&lt;");
        else if (*p == '>')
            gyre_buf_appends(b, "&gt;");
        else
            gyre_buf_append(b, p, 1);
    }
}

static const char *state_word(const gyre_notice_t *v)
{
    return v->resolved ? "RESOLVED" : "FIRING";
}

/* "[FIRING] name (severity)" */
static void append_title(gyre_buf_t *b, const gyre_notice_t *v, int slack)
{
    char *name = clean(v->alertname, GYRE_NOTIFY_NAME_MAX);
    char *sev = v->severity != NULL ? clean(v->severity, GYRE_NOTIFY_NAME_MAX) : NULL;
    gyre_buf_appendf(b, "%s[%s] ", slack ? "*" : "", state_word(v));
    if (slack)
        append_slack(b, name);
    else
        gyre_buf_appends(b, name);
    if (slack)
        gyre_buf_appends(b, "*");
    if (sev != NULL && sev[0] != '\0') {
        gyre_buf_appends(b, " (");
        if (slack)
            append_slack(b, sev);
        else
            gyre_buf_appends(b, sev);
        gyre_buf_appends(b, ")");
    }
    free(name);
    free(sev);
}

/* The notice's own labels (alertname and severity are in the title), sorted. */
static void own_labels(const gyre_notice_t *v, kvs_t *m)
{
    m->n = 0;
    for (size_t i = 0; i < v->nlabels && i < GYRE_NOTICE_MAX_PAIRS; i++)
        if (v->labels[i].name == NULL ||
            (strcmp(v->labels[i].name, "alertname") != 0 && strcmp(v->labels[i].name, "severity") != 0))
            kvs_add(m, v->labels[i].name, v->labels[i].value);
    qsort(m->items, m->n, sizeof(m->items[0]), kv_cmp_cb);
}

/* Annotations for people: summary first, then description, then the rest by name. */
static void annotations_for_people(const gyre_notice_t *v, kvs_t *m)
{
    annotations_of(v, m);
    static const char *const first[] = {"description", "summary"};
    for (size_t f = 0; f < 2; f++)
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->items[i].name, first[f]) == 0) {
                kv_t t = m->items[i];
                memmove(&m->items[1], &m->items[0], i * sizeof(kv_t));
                m->items[0] = t;
                break;
            }
}

static void digest_counts(const gyre_notice_t *const *v, size_t n, size_t *firing, size_t *resolved)
{
    *firing = *resolved = 0;
    for (size_t i = 0; i < n; i++)
        (*(v[i]->resolved ? resolved : firing))++;
}

char *gyre_notify_body_slack(const gyre_notify_body_ctx_t *x, const gyre_notice_t *const *v, size_t n,
                             size_t truncated)
{
    (void)x;
    gyre_buf_t b;
    gyre_buf_init(&b, TEXT_MAX);
    if (n > 1 || truncated > 0) {
        size_t f, r;
        digest_counts(v, n, &f, &r);
        if (truncated > 0)
            gyre_buf_appendf(&b, "*gyre: %zu of %zu alerts (%zu firing, %zu resolved)*\n\n", n, n + truncated, f, r);
        else
            gyre_buf_appendf(&b, "*gyre: %zu alerts (%zu firing, %zu resolved)*\n\n", n, f, r);
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            gyre_buf_appends(&b, "\n\n");
        append_title(&b, v[i], 1);
        kvs_t m;
        own_labels(v[i], &m);
        for (size_t j = 0; j < m.n; j++) {
            gyre_buf_appends(&b, j == 0 ? "\n" : ", ");
            append_slack(&b, m.items[j].name);
            gyre_buf_appends(&b, "=");
            append_slack(&b, m.items[j].value);
        }
        kvs_dispose(&m);
        annotations_for_people(v[i], &m);
        for (size_t j = 0; j < m.n; j++) {
            gyre_buf_appends(&b, "\n");
            append_slack(&b, m.items[j].name);
            gyre_buf_appends(&b, ": ");
            append_slack(&b, m.items[j].value);
        }
        kvs_dispose(&m);
    }
    if (truncated > 0)
        gyre_buf_appendf(&b, "\n\n... and %zu more", truncated);
    cJSON *root = cJSON_CreateObject();
    /* The text was cleaned piece by piece, and cutting at TEXT_MAX may split a character: clean it whole. */
    add_clean(root, "text", b.base != NULL ? b.base : "", TEXT_MAX);
    gyre_buf_dispose(&b);
    return print(root);
}

static cJSON *text_block(const char *text, int bold)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "TextBlock");
    cJSON_AddStringToObject(t, "text", text);
    if (bold)
        cJSON_AddStringToObject(t, "weight", "Bolder");
    cJSON_AddBoolToObject(t, "wrap", 1);
    return t;
}

char *gyre_notify_body_teams(const gyre_notify_body_ctx_t *x, const gyre_notice_t *const *v, size_t n,
                             size_t truncated)
{
    (void)x;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "type", "message");
    cJSON *atts = cJSON_AddArrayToObject(root, "attachments");
    cJSON *att = cJSON_CreateObject();
    cJSON_AddItemToArray(atts, att);
    cJSON_AddStringToObject(att, "contentType", "application/vnd.microsoft.card.adaptive");
    cJSON_AddNullToObject(att, "contentUrl");
    cJSON *card = cJSON_AddObjectToObject(att, "content");
    cJSON_AddStringToObject(card, "$schema", "http://adaptivecards.io/schemas/adaptive-card.json");
    cJSON_AddStringToObject(card, "type", "AdaptiveCard");
    cJSON_AddStringToObject(card, "version", "1.2");
    cJSON *body = cJSON_AddArrayToObject(card, "body");
    gyre_buf_t b;
    gyre_buf_init(&b, TEXT_MAX);
    if (n > 1 || truncated > 0) {
        size_t f, r;
        digest_counts(v, n, &f, &r);
        if (truncated > 0)
            gyre_buf_appendf(&b, "gyre: %zu of %zu alerts (%zu firing, %zu resolved)", n, n + truncated, f, r);
        else
            gyre_buf_appendf(&b, "gyre: %zu alerts (%zu firing, %zu resolved)", n, f, r);
        cJSON_AddItemToArray(body, text_block(b.base, 1));
    }
    for (size_t i = 0; i < n; i++) {
        gyre_buf_reset(&b);
        append_title(&b, v[i], 0);
        cJSON_AddItemToArray(body, text_block(b.base != NULL ? b.base : "", 1));
        cJSON *facts_set = cJSON_CreateObject();
        cJSON_AddStringToObject(facts_set, "type", "FactSet");
        cJSON *facts = cJSON_AddArrayToObject(facts_set, "facts");
        kvs_t m;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0)
                own_labels(v[i], &m);
            else
                annotations_for_people(v[i], &m);
            for (size_t j = 0; j < m.n; j++) {
                cJSON *f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "title", m.items[j].name);
                cJSON_AddStringToObject(f, "value", m.items[j].value);
                cJSON_AddItemToArray(facts, f);
            }
            kvs_dispose(&m);
        }
        cJSON_AddItemToArray(body, facts_set);
    }
    if (truncated > 0) {
        gyre_buf_reset(&b);
        gyre_buf_appendf(&b, "... and %zu more", truncated);
        cJSON_AddItemToArray(body, text_block(b.base, 0));
    }
    gyre_buf_dispose(&b);
    return print(root);
}

/* ---- PagerDuty Events API v2 ---- */

/* Its four severities; anything else is sent as "error" (PagerDuty refuses an event with another). */
static const char *pd_severity(const char *s)
{
    static const char *const known[] = {"critical", "error", "warning", "info"};
    for (size_t i = 0; s != NULL && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(s, known[i]) == 0)
            return known[i];
    return "error";
}

char *gyre_notify_body_pagerduty(const gyre_notify_body_ctx_t *x, const char *routing_key, const gyre_notice_t *v)
{
    char fp[17];
    gyre_notify_fingerprint(v, fp);
    cJSON *root = cJSON_CreateObject();
    add_clean(root, "routing_key", routing_key, GYRE_NOTIFY_PD_DEDUP_MAX);
    cJSON_AddStringToObject(root, "event_action", v->resolved ? "resolve" : "trigger");
    /* The fingerprint is stable per rule and label set: the resolve finds the incident its trigger opened. */
    cJSON_AddStringToObject(root, "dedup_key", fp);
    if (!v->resolved) {
        kvs_t labels, annos;
        own_labels(v, &labels);
        annotations_of(v, &annos);
        gyre_buf_t s;
        gyre_buf_init(&s, TEXT_MAX);
        const char *summary = kvs_get(&annos, "summary");
        char *name = clean(v->alertname, GYRE_NOTIFY_NAME_MAX);
        gyre_buf_appends(&s, name);
        if (summary != NULL) {
            gyre_buf_appendf(&s, ": %s", summary);
        } else {
            for (size_t i = 0; i < labels.n; i++)
                gyre_buf_appendf(&s, "%s%s=%s", i == 0 ? ": " : ", ", labels.items[i].name, labels.items[i].value);
        }
        free(name);
        cJSON *payload = cJSON_AddObjectToObject(root, "payload");
        add_clean(payload, "summary", s.base != NULL ? s.base : "", GYRE_NOTIFY_PD_SUMMARY_MAX);
        gyre_buf_dispose(&s);
        add_clean(payload, "source", x->source != NULL ? x->source : "gyre", GYRE_NOTIFY_NAME_MAX);
        cJSON_AddStringToObject(payload, "severity", pd_severity(v->severity));
        char t[40];
        gyre_notify_rfc3339(v->starts_us, t);
        if (v->starts_us > 0)
            cJSON_AddStringToObject(payload, "timestamp", t);
        add_clean(payload, "class", v->alertname, GYRE_NOTIFY_NAME_MAX);
        cJSON *details = cJSON_AddObjectToObject(payload, "custom_details");
        cJSON_AddItemToObject(details, "labels", kvs_json(&labels));
        cJSON_AddItemToObject(details, "annotations", kvs_json(&annos));
        kvs_dispose(&labels);
        kvs_dispose(&annos);
        cJSON_AddStringToObject(root, "client", "gyre");
        char *ext = clean(x->external_url, GYRE_NOTIFY_VALUE_MAX);
        if (ext[0] != '\0')
            cJSON_AddStringToObject(root, "client_url", ext);
        free(ext);
    }
    return print(root);
}

/* ---- log ---- */

char *gyre_notify_body_log(const gyre_notify_body_ctx_t *x, const gyre_notice_t *v)
{
    gyre_buf_t b;
    gyre_buf_init(&b, TEXT_MAX);
    char *recv = clean(x->receiver, GYRE_NOTIFY_NAME_MAX);
    gyre_buf_appendf(&b, "notifier %s: ", recv);
    free(recv);
    append_title(&b, v, 0);
    kvs_t m;
    own_labels(v, &m);
    for (size_t j = 0; j < m.n; j++)
        gyre_buf_appendf(&b, " %s=%s", m.items[j].name, m.items[j].value);
    kvs_dispose(&m);
    annotations_for_people(v, &m);
    for (size_t j = 0; j < m.n; j++)
        gyre_buf_appendf(&b, " %s=\"%s\"", m.items[j].name, m.items[j].value);
    kvs_dispose(&m);
    char *out = gyre_strndup(b.base != NULL ? b.base : "", b.len);
    gyre_buf_dispose(&b);
    return out;
}
