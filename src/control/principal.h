/*
 * Who a request is: what the access stage found its credential to be, copied
 * by value into the request (gyre_stage_ctx_t, then the call) so that a key
 * revoked or changed while the request is in flight changes nothing for it.
 * The limits stage reads its levels (key, team, agent, user) and the trace
 * records its ids (never a secret: `key_id` is the key's public id).
 */
#ifndef GYRE_CONTROL_PRINCIPAL_H
#define GYRE_CONTROL_PRINCIPAL_H

#include <stdint.h>

#define GYRE_PRINCIPAL_ID_MAX 64 /* key ids, team, agent and user names: longer ones are refused where they are set */

typedef enum gyre_budget_period {
    GYRE_BUDGET_NONE = 0,
    GYRE_BUDGET_DAY,
    GYRE_BUDGET_WEEK,
    GYRE_BUDGET_MONTH,
} gyre_budget_period_t;

/* The limits of one level (a key, a team, an agent, a user); 0 (or a negative budget) means none. */
typedef struct gyre_limit_set {
    uint32_t rpm;         /* requests per minute */
    uint32_t tpm;         /* tokens per minute (reserved from an estimate, settled from the usage) */
    uint32_t concurrency; /* requests in flight */
    double budget_usd;    /* spend per period; < 0: none */
    gyre_budget_period_t budget_period;
    int budget_soft; /* 1: the budget only alerts (50/80/100 %), it never refuses */
} gyre_limit_set_t;

typedef struct gyre_principal {
    int role;                             /* gyre_access_role_t */
    int managed;                          /* 1: a managed key (control/keys.h); 0: a config key, a token, or none */
    char key_id[GYRE_PRINCIPAL_ID_MAX];   /* "gk_..." (managed), "auth.keys[2]" (config), "" when open */
    char team[GYRE_PRINCIPAL_ID_MAX];     /* "" when none */
    char agent[GYRE_PRINCIPAL_ID_MAX];    /* the key's agent, else the request's x-gyre-agent, else "" */
    char user[GYRE_PRINCIPAL_ID_MAX];     /* the request's x-gyre-user or body `user`, else "" */
    gyre_limit_set_t key_limits;          /* the key's own (managed keys) */
    int restricted; /* 1: a managed key with route or model allow lists (gyre_keys_allows checks the target at the
                     * start of the route stage, once the model is resolved) */
} gyre_principal_t;

#endif
