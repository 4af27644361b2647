/*
 * Access: who may do what on this gateway (`auth:` in the configuration).
 *
 * A request carries at most one credential, `Authorization: Bearer <k>` (the
 * OpenAI SDK's way) or else `x-api-key: <k>` (the Anthropic SDK's).  What it
 * is decides what it allows:
 *
 *   credential     model calls, /v1/..  /api, /metrics     POST /v1/traces    /api/admin, /api/admin/..   POST /v1/feedback
 *   client key     yes                  no (403)           yes                no (403)                    yes
 *   read_token     no (403)             yes                no (403)           no (403)                    yes
 *   admin_token    yes                  yes                yes                yes                         yes
 *   none, unknown  401                  401                401                401                         401
 *
 * Feedback is given by the application that made the call (its client key)
 * or by a person reviewing traces in a tool that reads them (the read token).
 *
 * /healthz is open to all.  Without `auth:` (only allowed on a loopback
 * listener) or with `auth: none`, everything is open.
 *
 * Keys and tokens are compared as SHA-256 digests with CRYPTO_memcmp, against
 * every configured one without stopping at a match, so neither a key's bytes
 * nor its length show in how long the answer takes.
 *
 * Everything here is a pure decision (no sockets, no h2o), unit-tested in
 * tests/unit/control_access.c; src/server/handlers.c applies it.
 */
#ifndef GYRE_CONTROL_ACCESS_H
#define GYRE_CONTROL_ACCESS_H

#include <stddef.h>

#include "config/config.h"

/* What a path needs. */
typedef enum gyre_access_need {
    GYRE_NEED_NOTHING = 0, /* /healthz */
    GYRE_NEED_CLIENT,      /* model calls, /v1/models, pass-through paths, anything else: a client key */
    GYRE_NEED_READ,        /* /api, /api, /api/..., /metrics: the read token */
    GYRE_NEED_INGEST,      /* /v1/traces (OTLP ingest): a client key */
    GYRE_NEED_ADMIN,       /* /api/admin, /api/admin/...: the admin token alone (changes what gyre does) */
    GYRE_NEED_FEEDBACK,    /* /v1/feedback: a client key or the read token */
} gyre_access_need_t;

/* What a credential is. */
typedef enum gyre_access_role {
    GYRE_ROLE_NONE = 0, /* not a credential of this gateway */
    GYRE_ROLE_CLIENT,
    GYRE_ROLE_READ,
    GYRE_ROLE_ADMIN,
} gyre_access_role_t;

typedef enum gyre_access_verdict {
    GYRE_ACCESS_ALLOW = 0,
    GYRE_ACCESS_NO_CREDENTIAL, /* 401: nothing was sent */
    GYRE_ACCESS_UNRECOGNISED,  /* 401: what was sent is no key or token of this gateway */
    GYRE_ACCESS_FORBIDDEN,     /* 403: a credential of this gateway that does not allow this path */
} gyre_access_verdict_t;

/* The digests of the configured keys and tokens; made once at start, read-only after (shared by workers). */
typedef struct gyre_access gyre_access_t;

gyre_access_t *gyre_access_create(const gyre_auth_conf_t *auth);
void gyre_access_destroy(gyre_access_t *a);

/* What the (normalised) path needs. */
gyre_access_need_t gyre_access_need_for(const char *path, size_t len);

/*
 * The credential a request carries, from its Authorization and x-api-key
 * values (NULL, 0 when absent).  A `Bearer` Authorization wins; else a
 * non-empty x-api-key.  Returns 1 with *cred set, 0 when there is none, or
 * -1 when Authorization is there but is not "Bearer <token>" and no
 * x-api-key is (the caller answers as for an unrecognised credential).
 */
int gyre_access_credential(const char *authorization, size_t alen, const char *x_api_key, size_t xlen,
                           const char **cred, size_t *clen);

/* What `cred` is; constant time in its bytes and length. */
gyre_access_role_t gyre_access_identify(const gyre_access_t *a, const char *cred, size_t len);
/* The same, and for a client key which of `auth.keys` it is (*index; constant time too). */
gyre_access_role_t gyre_access_identify_key(const gyre_access_t *a, const char *cred, size_t len, size_t *index);
/* The id, team and agent of config key `index` ("" team or agent when none).  0, or -1 past the last key. */
int gyre_access_key_meta(const gyre_access_t *a, size_t index, const char **id, const char **team,
                         const char **agent);

/*
 * The decision for one request: `need` from gyre_access_need_for, `found`
 * and the credential from gyre_access_credential.  Everything is allowed
 * when the gateway runs open (no `auth:`, or `auth: none`).
 */
gyre_access_verdict_t gyre_access_decide(const gyre_access_t *a, gyre_access_need_t need, int found, const char *cred,
                                         size_t len);

/* The decision for a credential already identified as `role` (a managed key is GYRE_ROLE_CLIENT). */
gyre_access_verdict_t gyre_access_decide_role(const gyre_access_t *a, gyre_access_need_t need, gyre_access_role_t role);

/* The client-facing message for a refusal: says what was missing or wrong, never the credential. */
const char *gyre_access_message(gyre_access_verdict_t v, gyre_access_need_t need);

/* Whether `path` (and the raw request path, query aside) may be passed through to a provider. */
typedef enum gyre_pass_verdict {
    GYRE_PASS_ALLOWED = 0,
    GYRE_PASS_NOT_LISTED, /* not under any `passthrough:` prefix */
    GYRE_PASS_NEVER,      /* an admin or organization path: never, listed or not */
} gyre_pass_verdict_t;

gyre_pass_verdict_t gyre_access_passthrough(const gyre_config_t *c, const char *path, size_t len);

/* Whether a listen host is loopback: 127.0.0.0/8, ::1 (and ::ffff:127.x), or "localhost". */
int gyre_access_host_is_loopback(const char *host);

/* Whether the configuration may listen where it says (`listen:`, or --listen as already applied). */
typedef enum gyre_exposure {
    GYRE_EXPOSURE_OK = 0,
    GYRE_EXPOSURE_OPEN,    /* `auth: none`: starts; `msg` is the one-line warning to print */
    GYRE_EXPOSURE_REFUSED, /* no `auth:` on a non-loopback address: `msg` says why and how to fix it */
} gyre_exposure_t;

gyre_exposure_t gyre_access_exposure(const gyre_config_t *c, char *msg, size_t size);

#endif
