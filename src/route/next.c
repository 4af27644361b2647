/* The walk down a plan: the next step after an attempt, and its failure accounting (see next.h). */
#include "route/next.h"

void gyre_route_walk_init(gyre_route_walk_t *w, const gyre_route_conf_t *route, const gyre_candidate_t *cands,
                          size_t ncands, const gyre_keypool_t *keypools, uint64_t deadline_at_ms)
{
    *w = (gyre_route_walk_t){.route = route,
                             .cands = cands,
                             .ncands = ncands,
                             .keypools = keypools,
                             .last_key = -1,
                             .deadline_at_ms = deadline_at_ms};
}

static int usable(const gyre_route_walk_t *w, size_t i, uint64_t now_ms)
{
    return gyre_keypool_available(&w->keypools[w->cands[i].provider], now_ms);
}

/* The first candidate at or after `from` with a usable key, or w->ncands. */
static size_t next_usable(const gyre_route_walk_t *w, size_t from, uint64_t now_ms)
{
    while (from < w->ncands && !usable(w, from, now_ms))
        from++;
    return from;
}

/* Whether the route moves on after this kind of failure. */
static int falls_back_on(const gyre_route_conf_t *r, gyre_route_outcome_kind_t kind, int status)
{
    if (r == NULL)
        return 0;
    switch (kind) {
    case GYRE_OUTCOME_CONNECT:
    case GYRE_OUTCOME_CUT: return (r->fallback_on & GYRE_FALLBACK_CONNECT) != 0;
    case GYRE_OUTCOME_TIMEOUT: return (r->fallback_on & GYRE_FALLBACK_TIMEOUT) != 0;
    case GYRE_OUTCOME_STATUS:
        for (size_t i = 0; i < r->nfallback_statuses; i++)
            if (r->fallback_statuses[i] == status)
                return 1;
        return 0;
    case GYRE_OUTCOME_OK:
    case GYRE_OUTCOME_UNAVAILABLE:
    case GYRE_OUTCOME_UNSERVABLE: break;
    }
    return 0;
}

/* Full jitter: a uniform wait in [0, min(max, base * 2^n)].  Draws from *rng only when that ceiling is not 0. */
static uint64_t backoff_ms(const gyre_route_conf_t *r, unsigned n, uint64_t *rng)
{
    uint64_t ceiling = r->backoff_ms;
    if (ceiling == 0)
        return 0; /* doubling 0 stays 0: no loop, no draw */
    for (unsigned i = 0; i < n && ceiling < r->backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > r->backoff_max_ms)
        ceiling = r->backoff_max_ms;
    return ceiling == 0 ? 0 : gyre_rand_next(rng) % (ceiling + 1);
}

static gyre_route_step_t give_up(const gyre_route_outcome_t *o)
{
    return (gyre_route_step_t){.kind = GYRE_STEP_GIVE_UP, .final = GYRE_FINAL_LAST_FAILURE, .end_stream = o->sent};
}

/*
 * Moving on after a failure the route falls back on: the same candidate
 * again (after a backoff) while it has tries left, else the next usable one
 * at once.  `kind` is RETRY's counterpart for a move to another candidate
 * (TRY, or RESUME for a cut stream, which resumes on a retry too).
 */
static gyre_route_step_t move_on(const gyre_route_walk_t *w, const gyre_route_outcome_t *o, uint64_t now_ms,
                                 uint64_t *rng, int resume)
{
    const gyre_route_conf_t *r = w->route;
    if (w->deadline_passed)
        return give_up(o);
    if (r != NULL && w->tries_on_cur <= r->retries && w->cur < w->ncands) {
        const gyre_keypool_t *kp = &w->keypools[w->cands[w->cur].provider];
        uint64_t wait = backoff_ms(r, w->tries_on_cur - 1, rng);
        int later_usable = next_usable(w, w->cur + 1, now_ms) < w->ncands;
        /* Another key of this candidate can take it now (a 429's Retry-After binds only its own key); else the
         * retry waits for the first key to come back, unless another candidate can take the call at once or
         * the wait is longer than the route allows (its deadline, else backoff_max_ms). */
        int retry = 1;
        if (!gyre_keypool_available(kp, now_ms)) {
            uint64_t at = gyre_keypool_next_usable_ms(kp, now_ms);
            if (at > now_ms && at - now_ms > wait)
                wait = at - now_ms;
            retry = !later_usable;
        } else if (!o->sent && o->kind == GYRE_OUTCOME_STATUS && (o->status == 429 || o->status == 529)) {
            wait = 0; /* the rate limit was that key's: another is free now */
        }
        uint64_t limit = r->backoff_max_ms;
        if (w->deadline_at_ms != 0)
            limit = w->deadline_at_ms > now_ms ? w->deadline_at_ms - now_ms : 0;
        if (retry && wait <= limit)
            return (gyre_route_step_t){
                .kind = resume ? GYRE_STEP_RESUME : GYRE_STEP_RETRY, .cand = w->cur, .wait_ms = wait};
    }
    /* On down the plan, skipping candidates with no usable key. */
    size_t i = next_usable(w, w->cur + 1, now_ms);
    if (i >= w->ncands)
        return give_up(o);
    return (gyre_route_step_t){.kind = resume ? GYRE_STEP_RESUME : GYRE_STEP_TRY, .cand = i, .wait_ms = 0};
}

gyre_route_step_t gyre_route_next(const gyre_route_walk_t *w, const gyre_route_outcome_t *o, uint64_t now_ms,
                                  uint64_t *rng)
{
    const gyre_route_conf_t *r = w->route;
    switch (o->kind) {
    case GYRE_OUTCOME_UNAVAILABLE: {
        /* Not an attempt, so not a failure the policy weighs: the plan simply goes on to whoever can take it. */
        size_t i = next_usable(w, w->cur + 1, now_ms);
        if (i < w->ncands)
            return (gyre_route_step_t){.kind = GYRE_STEP_TRY, .cand = i, .wait_ms = 0};
        gyre_route_step_t s = give_up(o);
        s.final = GYRE_FINAL_UNAVAILABLE;
        /* The soonest any candidate of the plan can be tried again, in whole seconds (at least 1). */
        uint64_t soonest = 0;
        for (size_t j = 0; j < w->ncands; j++) {
            uint64_t at = gyre_keypool_next_usable_ms(&w->keypools[w->cands[j].provider], now_ms);
            if (at > now_ms && (soonest == 0 || at < soonest))
                soonest = at;
        }
        s.retry_after_s = soonest > now_ms ? (soonest - now_ms + 999) / 1000 : 1;
        return s;
    }
    case GYRE_OUTCOME_UNSERVABLE:
        /* This candidate's API cannot take the call; another one's may.  Its turn says whether it is usable. */
        if (o->status == 400 && w->cur + 1 < w->ncands)
            return (gyre_route_step_t){.kind = GYRE_STEP_TRY, .cand = w->cur + 1, .wait_ms = 0};
        return give_up(o);
    case GYRE_OUTCOME_OK: return give_up(o); /* a good answer ends the walk: there is nothing after it to try */
    case GYRE_OUTCOME_CONNECT:
    case GYRE_OUTCOME_TIMEOUT:
    case GYRE_OUTCOME_STATUS:
    case GYRE_OUTCOME_CUT: break;
    }
    if (o->sent) {
        /* The client has part of the answer: only a resume keeps the call going, and a failure after the head
         * (whatever its kind) is the stream being cut. */
        gyre_route_outcome_kind_t k = o->kind == GYRE_OUTCOME_STATUS ? GYRE_OUTCOME_CUT : o->kind;
        if (r != NULL && r->midstream_resume && o->resumable && falls_back_on(r, k, 0))
            return move_on(w, o, now_ms, rng, 1);
        return give_up(o);
    }
    if (!falls_back_on(r, o->kind, o->status))
        return give_up(o);
    return move_on(w, o, now_ms, rng, 0);
}

void gyre_route_walk_apply(gyre_route_walk_t *w, const gyre_route_step_t *step)
{
    if (step->kind == GYRE_STEP_GIVE_UP || step->cand == w->cur)
        return;
    w->cur = step->cand;
    w->tries_on_cur = 0;
}

int gyre_route_take_key(gyre_route_walk_t *w, gyre_keypool_t *kp, uint64_t now_ms, uint64_t affinity)
{
    int exclude = w->tries_on_cur > 0 && w->last_key_cur == w->cur ? w->last_key : -1;
    int key = gyre_keypool_pick(kp, now_ms, affinity, exclude);
    if (key >= 0) {
        w->last_key = key;
        w->last_key_cur = w->cur;
    }
    return key;
}

void gyre_route_record(gyre_keypool_t *kp, int key, const gyre_route_outcome_t *o, uint64_t now_ms)
{
    if (key < 0)
        return;
    if (o->kind == GYRE_OUTCOME_OK) {
        gyre_keypool_record(kp, key, 1, now_ms);
        return;
    }
    if (!o->sent && o->kind == GYRE_OUTCOME_STATUS && (o->status == 429 || o->status == 529)) {
        gyre_keypool_cooldown(kp, key, now_ms + (o->retry_after_ms ? o->retry_after_ms : GYRE_KEYS_DEFAULT_COOLDOWN_MS),
                              now_ms);
        return;
    }
    /* A 4xx other than 429 is the client's error: the provider answered, and its breaker hears a success. */
    gyre_keypool_record(kp, key, !o->sent && o->kind == GYRE_OUTCOME_STATUS && o->status < 500, now_ms);
}
