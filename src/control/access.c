/* Who may do what (see access.h). */
#include "control/access.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"

#define DIGEST_LEN 32

typedef struct digest {
    unsigned char md[DIGEST_LEN];
} digest_t;

struct gyre_access {
    gyre_auth_mode_t mode;
    digest_t *keys;
    gyre_auth_key_meta_t *meta; /* each key's id, team and agent (copies) */
    size_t nkeys;
    digest_t admin, read;
    int has_admin, has_read;
    /* SHA-256, fetched from OpenSSL's provider once: EVP_sha256() makes EVP_Digest fetch it again on every call,
     * which was 200 of the check's 550 ns per request (bench/access).  A fetched EVP_MD is immutable and
     * reference-counted, so every worker thread may use it at once.  NULL when the fetch failed: EVP_sha256(). */
    EVP_MD *sha256;
};

static void digest_of(const gyre_access_t *a, const char *s, size_t len, digest_t *out)
{
    unsigned int n = 0;
    /* EVP_Digest cannot fail for SHA-256 short of memory; should it, the all-zero digest matches nothing that a
     * real key hashes to. */
    if (EVP_Digest(s, len, out->md, &n, a->sha256 != NULL ? a->sha256 : EVP_sha256(), NULL) != 1 ||
        n != DIGEST_LEN)
        memset(out->md, 0, DIGEST_LEN);
}

gyre_access_t *gyre_access_create(const gyre_auth_conf_t *auth)
{
    gyre_access_t *a = gyre_calloc(1, sizeof(*a));
    a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    a->mode = auth->mode;
    a->keys = gyre_calloc(auth->nkeys ? auth->nkeys : 1, sizeof(*a->keys));
    a->nkeys = auth->nkeys;
    a->meta = gyre_calloc(auth->nkeys ? auth->nkeys : 1, sizeof(*a->meta));
    for (size_t i = 0; i < auth->nkeys; i++) {
        digest_of(a, auth->keys[i], strlen(auth->keys[i]), &a->keys[i]);
        char id[48];
        snprintf(id, sizeof(id), "auth.keys[%zu]", i);
        const gyre_auth_key_meta_t *m = auth->key_meta != NULL ? &auth->key_meta[i] : NULL;
        a->meta[i].id = gyre_strdup(m != NULL && m->id != NULL ? m->id : id);
        a->meta[i].team = gyre_strdup(m != NULL && m->team != NULL ? m->team : "");
        a->meta[i].agent = gyre_strdup(m != NULL && m->agent != NULL ? m->agent : "");
    }
    if ((a->has_admin = auth->admin_token != NULL))
        digest_of(a, auth->admin_token, strlen(auth->admin_token), &a->admin);
    if ((a->has_read = auth->read_token != NULL))
        digest_of(a, auth->read_token, strlen(auth->read_token), &a->read);
    return a;
}

void gyre_access_destroy(gyre_access_t *a)
{
    if (a == NULL)
        return;
    EVP_MD_free(a->sha256);
    for (size_t i = 0; i < a->nkeys; i++) {
        free(a->meta[i].id);
        free(a->meta[i].team);
        free(a->meta[i].agent);
    }
    free(a->meta);
    free(a->keys);
    free(a);
}

static int is(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

gyre_access_need_t gyre_access_need_for(const char *path, size_t len)
{
    if (is(path, len, "/healthz"))
        return GYRE_NEED_NOTHING;
    /* Before /api/: the admin API is under it, and needs more than reading does. */
    if (is(path, len, "/api/admin") || (len >= 11 && memcmp(path, "/api/admin/", 11) == 0))
        return GYRE_NEED_ADMIN;
    if (is(path, len, "/metrics") || is(path, len, "/api") || (len > 5 && memcmp(path, "/api/", 5) == 0))
        return GYRE_NEED_READ;
    if (is(path, len, "/v1/traces"))
        return GYRE_NEED_INGEST;
    if (is(path, len, "/v1/feedback"))
        return GYRE_NEED_FEEDBACK;
    return GYRE_NEED_CLIENT;
}

int gyre_access_credential(const char *authorization, size_t alen, const char *x_api_key, size_t xlen,
                           const char **cred, size_t *clen)
{
    if (authorization != NULL && alen > 7 && strncasecmp(authorization, "bearer ", 7) == 0) {
        const char *p = authorization + 7, *end = authorization + alen;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > p) {
            *cred = p;
            *clen = (size_t)(end - p);
            return 1;
        }
    }
    if (x_api_key != NULL && xlen != 0) {
        *cred = x_api_key;
        *clen = xlen;
        return 1;
    }
    return authorization != NULL && alen != 0 ? -1 : 0;
}

gyre_access_role_t gyre_access_identify(const gyre_access_t *a, const char *cred, size_t len)
{
    size_t index;
    return gyre_access_identify_key(a, cred, len, &index);
}

gyre_access_role_t gyre_access_identify_key(const gyre_access_t *a, const char *cred, size_t len, size_t *index)
{
    digest_t d;
    digest_of(a, cred, len, &d);
    /* Every comparison runs, whatever matched before it: the time taken depends on how many keys there are,
     * never on which one (if any) the credential is.  The index is picked with a mask, not a branch. */
    int client = 0, admin = 0, read = 0;
    size_t at = 0;
    for (size_t i = 0; i < a->nkeys; i++) {
        int eq = CRYPTO_memcmp(d.md, a->keys[i].md, DIGEST_LEN) == 0;
        size_t mask = (size_t)0 - (size_t)eq;
        at = (at & ~mask) | (i & mask);
        client |= eq;
    }
    *index = at;
    admin = a->has_admin & (CRYPTO_memcmp(d.md, a->admin.md, DIGEST_LEN) == 0);
    read = a->has_read & (CRYPTO_memcmp(d.md, a->read.md, DIGEST_LEN) == 0);
    return admin ? GYRE_ROLE_ADMIN : read ? GYRE_ROLE_READ : client ? GYRE_ROLE_CLIENT : GYRE_ROLE_NONE;
}

gyre_access_verdict_t gyre_access_decide(const gyre_access_t *a, gyre_access_need_t need, int found, const char *cred,
                                         size_t len)
{
    if (a->mode != GYRE_AUTH_KEYS || need == GYRE_NEED_NOTHING)
        return GYRE_ACCESS_ALLOW;
    if (found == 0)
        return GYRE_ACCESS_NO_CREDENTIAL;
    if (found < 0)
        return GYRE_ACCESS_UNRECOGNISED;
    return gyre_access_decide_role(a, need, gyre_access_identify(a, cred, len));
}

gyre_access_verdict_t gyre_access_decide_role(const gyre_access_t *a, gyre_access_need_t need, gyre_access_role_t role)
{
    if (a->mode != GYRE_AUTH_KEYS || need == GYRE_NEED_NOTHING)
        return GYRE_ACCESS_ALLOW;
    switch (role) {
    case GYRE_ROLE_NONE: return GYRE_ACCESS_UNRECOGNISED;
    case GYRE_ROLE_ADMIN: return GYRE_ACCESS_ALLOW;
    case GYRE_ROLE_READ:
        return need == GYRE_NEED_READ || need == GYRE_NEED_FEEDBACK ? GYRE_ACCESS_ALLOW : GYRE_ACCESS_FORBIDDEN;
    case GYRE_ROLE_CLIENT:
        return need == GYRE_NEED_READ || need == GYRE_NEED_ADMIN ? GYRE_ACCESS_FORBIDDEN : GYRE_ACCESS_ALLOW;
    }
    return GYRE_ACCESS_UNRECOGNISED;
}

int gyre_access_key_meta(const gyre_access_t *a, size_t index, const char **id, const char **team,
                         const char **agent)
{
    if (index >= a->nkeys)
        return -1;
    *id = a->meta[index].id;
    *team = a->meta[index].team;
    *agent = a->meta[index].agent;
    return 0;
}

const char *gyre_access_message(gyre_access_verdict_t v, gyre_access_need_t need)
{
    switch (v) {
    case GYRE_ACCESS_ALLOW: return "";
    case GYRE_ACCESS_NO_CREDENTIAL:
        return need == GYRE_NEED_READ     ? "no token was sent: this path needs the read_token or the admin_token of "
                                            "this gateway, as 'Authorization: Bearer TOKEN'"
               : need == GYRE_NEED_INGEST ? "no API key was sent: POST /v1/traces needs a client key or the "
                                            "admin_token of this gateway, as 'Authorization: Bearer KEY'"
               : need == GYRE_NEED_ADMIN ? "no token was sent: the admin API needs the admin_token of this gateway, "
                                           "as 'Authorization: Bearer TOKEN'"
               : need == GYRE_NEED_FEEDBACK ? "no key was sent: POST /v1/feedback needs a client key, the read_token "
                                              "or the admin_token of this gateway, as 'Authorization: Bearer KEY'"
                                          : "no API key was sent: send a key of this gateway as 'Authorization: "
                                            "Bearer KEY' or 'x-api-key: KEY'";
    case GYRE_ACCESS_UNRECOGNISED:
        return need == GYRE_NEED_READ || need == GYRE_NEED_ADMIN ? "the token sent is not recognised by this gateway"
                                      : "the API key sent is not recognised by this gateway";
    case GYRE_ACCESS_FORBIDDEN:
        return need == GYRE_NEED_ADMIN    ? "the admin API needs the admin_token: neither a client key nor the "
                                            "read_token gives access to it"
               : need == GYRE_NEED_READ   ? "a client key does not give access to this path: it needs the read_token "
                                            "or the admin_token"
               : need == GYRE_NEED_INGEST ? "the read_token does not allow POST /v1/traces: it needs a client key or "
                                            "the admin_token"
                                          : "the read_token does not allow model calls: use a client key";
    }
    return "access denied";
}

/* Whether `path` is `prefix` or continues it with a new segment. */
static int under(const char *path, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(path, prefix, n) == 0 && (len == n || path[n] == '/');
}

gyre_pass_verdict_t gyre_access_passthrough(const gyre_config_t *c, const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path);
    if (gyre_config_path_never_passed(path, len))
        return GYRE_PASS_NEVER;
    for (size_t i = 0; i < c->npassthrough; i++)
        if (under(path, len, c->passthrough[i]))
            return GYRE_PASS_ALLOWED;
    return GYRE_PASS_NOT_LISTED;
}

int gyre_access_host_is_loopback(const char *host)
{
    unsigned char addr[16];
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return memcmp(addr, v6_loopback, 16) == 0 || (memcmp(addr, v4_mapped, 12) == 0 && addr[12] == 127);
    }
    return 0;
}

gyre_exposure_t gyre_access_exposure(const gyre_config_t *c, char *msg, size_t size)
{
    const char *h = c->listen_host;
    int v6 = strchr(h, ':') != NULL;
    char where[300];
    snprintf(where, sizeof(where), "%s%.256s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "", (unsigned)c->listen_port);
    if (c->auth.mode == GYRE_AUTH_NONE) {
        snprintf(msg, size,
                 "auth: none: the gateway is open: anyone who reaches %s may call every model with the provider keys "
                 "and read /api and /metrics",
                 where);
        return GYRE_EXPOSURE_OPEN;
    }
    if (c->auth.mode == GYRE_AUTH_UNSET && !gyre_access_host_is_loopback(h)) {
        snprintf(msg, size,
                 "%s is not a loopback address and the configuration has no auth: section, so anyone who reaches it "
                 "could spend the provider keys and read every stored prompt; add auth: {keys: [env:GYRE_CLIENT_KEY]} "
                 "(clients then send that key as their API key), or write auth: none to run open on purpose",
                 where);
        return GYRE_EXPOSURE_REFUSED;
    }
    if (size != 0)
        msg[0] = '\0';
    return GYRE_EXPOSURE_OK;
}
