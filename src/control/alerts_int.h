/*
 * What control/alerts.c (samples, windows, states) and control/alerts_act.c
 * (actions, notices, events) share: the engine's internal types.  Nothing
 * outside those two files includes it.
 */
#ifndef GYRE_CONTROL_ALERTS_INT_H
#define GYRE_CONTROL_ALERTS_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "control/alerts.h"

/* ---- Labels ---------------------------------------------------------------------------------------------- */

enum { L_ROUTE, L_PROVIDER, L_KEY, L_AGENT, NLABELS };
extern const char *const gyre_alerts_label_names[NLABELS];
extern const unsigned gyre_alerts_label_bits[NLABELS];

typedef struct labels {
    char v[NLABELS][GYRE_ALERTS_LABEL_MAX];
} labels_t;

/* ---- Per-worker samples ---------------------------------------------------------------------------------- */

/* What a label set has seen since the start: only its worker writes it (relaxed stores), the evaluator reads. */
typedef struct counters {
    uint64_t attempts, errors, limited, requests, tokens, cost_nusd;
    uint64_t lat[GYRE_ALERTS_HIST_BUCKETS], ttft[GYRE_ALERTS_HIST_BUCKETS];
} counters_t;

typedef struct wseries {
    labels_t labels; /* written before `used` is published, never after */
    counters_t c;
} wseries_t;

#define INDEX_SLOTS (GYRE_ALERTS_MAX_SERIES * 2) /* open addressing, at most half full */

typedef struct wtable {
    wseries_t s[GYRE_ALERTS_MAX_SERIES];
    size_t used;                 /* published with release; series [0, used) are readable */
    uint16_t index[INDEX_SLOTS]; /* worker-private: series number + 1, 0 for empty */
    uint64_t hashes[GYRE_ALERTS_MAX_SERIES];
    uint64_t folded; /* samples counted under "other" (relaxed) */
} wtable_t;

#define ADD(field, d) __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (d), __ATOMIC_RELAXED)

/* ---- Rules and their label sets -------------------------------------------------------------------------- */

typedef struct bucket {
    uint64_t attempts, errors, limited, requests, tokens, cost_nusd;
    uint32_t hist[GYRE_ALERTS_HIST_BUCKETS]; /* latency or TTFT, whichever the signal reads */
} bucket_t;

/* What an action changed, to be undone when the alert resolves. */
typedef struct applied {
    int kind; /* GYRE_ACTION_* */
    size_t i, j;
} applied_t;
#define MAX_APPLIED 32

typedef struct aset {
    labels_t labels;
    char fingerprint[17];
    bucket_t slots[GYRE_ALERTS_SLOTS];
    int64_t slot_at; /* the slot number (now / slot width) the newest slot holds */
    gyre_alert_fsm_t fsm;
    double value;
    applied_t applied[MAX_APPLIED];
    size_t napplied;
} aset_t;

typedef struct arule {
    const gyre_alert_rule_conf_t *conf;
    int64_t slot_us;
    size_t nslots;
    aset_t **sets;
    size_t nsets;
    int16_t **set_of; /* [worker][series]: the set its samples go to; -1 not yet known */
    uint64_t transitions[4];
} arule_t;

struct gyre_alerts {
    pthread_mutex_t mu; /* the evaluator's state: rules, sets, events (never taken by a worker) */
    const gyre_config_t *config;
    gyre_overrides_t *overrides;
    gyre_alerts_hooks_t hooks;
    unsigned nworkers;
    wtable_t **workers;
    counters_t **prev; /* [worker][series]: what the evaluator read last */
    arule_t *rules;
    size_t nrules;
    /* Overrides shared by several alerts: set on the first, cleared on the last. */
    unsigned **target_refs, **key_refs, *provider_refs;
    gyre_alert_event_t events[GYRE_ALERTS_EVENTS_KEPT];
    size_t nevents, event_next;
    pthread_t thread;
    int running, stop;
    pthread_cond_t cv;
};

/* ---- alerts_act.c ---- */

void gyre_alerts_refs_alloc(gyre_alerts_t *a);
void gyre_alerts_refs_free(gyre_alerts_t *a);
/* A set's state changed: the actions (firing), their undoing (resolved), the log line, the notices, the event. */
void gyre_alerts_transition(gyre_alerts_t *a, arule_t *r, aset_t *s, gyre_alert_state_t st, int64_t now_us);
/* Applies a firing set's built-in actions again (after a reconfiguration), saying nothing to anyone. */
void gyre_alerts_reapply(gyre_alerts_t *a, arule_t *r, aset_t *s);
/* The labels that are set, as a JSON object: {"provider":"p","key":"p#0"}. */
void gyre_alerts_labels_json(const labels_t *lb, char *out, size_t size);

#endif
