/*
 * gyre-mock's Amazon Bedrock Runtime: POST /model/{modelId}/converse and
 * /model/{modelId}/converse-stream, with AWS's authentication and error
 * shapes.
 *
 * Authentication is checked the way AWS checks it: a Signature Version 4
 * Authorization is recomputed here from the request as received (its
 * method, path, query, the headers it says it signed and the body's hash)
 * with the credentials of --aws-key, so a signer that gets any part wrong
 * is refused as AWS would refuse it.  This verifier is written apart from
 * gyre's own signer (src/dialect/sigv4.c) on purpose: a mistake in one is
 * caught by the other.  A Bedrock API key, sent as a bearer token, is
 * accepted too.
 *
 * ConverseStream answers in AWS's binary event stream
 * (application/vnd.amazon.eventstream): each event a frame of a prelude
 * (total length, headers length, the prelude's CRC-32), headers (name,
 * type 7 = string, value), a JSON payload and the frame's CRC-32; each
 * frame is one HTTP chunk.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

/* How far x-amz-date may be from the mock's clock, as AWS allows. */
#define MAX_SKEW_SECONDS (15 * 60)
/* SignedHeaders listed at most; more is refused as malformed. */
#define MAX_SIGNED_HEADERS 64

static char aws_akid[128] = "AKIDGYREMOCK";
static char aws_secret[256] = "gyre-mock-secret";

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

int mock_bedrock_set_key(const char *akid_secret)
{
    const char *colon = strchr(akid_secret, ':');
    if (colon == NULL || colon == akid_secret || colon[1] == '\0' ||
        (size_t)(colon - akid_secret) >= sizeof(aws_akid) || strlen(colon + 1) >= sizeof(aws_secret) ||
        strchr(colon + 1, ':') != NULL)
        return -1;
    snprintf(aws_akid, sizeof(aws_akid), "%.*s", (int)(colon - akid_secret), akid_secret);
    snprintf(aws_secret, sizeof(aws_secret), "%s", colon + 1);
    return 0;
}

/* ---- errors ---- */

/* AWS's error name for a status the mock stages or answers. */
static const char *error_name(int status)
{
    switch (status) {
    case 400: return "ValidationException";
    case 403: return "AccessDeniedException";
    case 404: return "UnknownOperationException";
    case 429: return "ThrottlingException";
    case 503:
    case 529: return "ServiceUnavailableException";
    default: return "InternalServerException";
    }
}

/* {"message":...} with x-amzn-errortype naming the exception, as AWS's JSON protocols answer. */
static int respond_named_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                               const char *name, const char *message)
{
    char headers[256];
    snprintf(headers, sizeof(headers), "x-amzn-errortype: %s\r\n%s", name, extra_headers ? extra_headers : "");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "message", message);
    int ret = mock_http_respond_json_with(c, r, status, headers, root);
    cJSON_Delete(root);
    return ret;
}

static int bedrock_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                         const char *message)
{
    return respond_named_error(c, r, status, extra_headers, error_name(status), message);
}

const mock_dialect_t mock_dialect_bedrock = {"bedrock", bedrock_error};

/* ---- Signature Version 4 ---- */

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static void hmac(const unsigned char *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len);
}

/* RFC 3986 encoding as SigV4 defines it: unreserved characters stay, every other byte is %XX (upper case). */
static void uri_encode(gyre_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~')
            gyre_buf_append(b, s + i, 1);
        else
            gyre_buf_appendf(b, "%%%02X", ch);
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes of `s` (a query name or value) and encodes them again the SigV4 way. */
static void reencode(gyre_buf_t *b, const char *s, size_t n)
{
    char *raw = gyre_malloc(n + 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            raw[len++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            raw[len++] = s[i];
        }
    }
    uri_encode(b, raw, len);
    free(raw);
}

/* Orders "name=value" strings by name, then by value (a name's own '=' is encoded, so the first one splits). */
static int compare_params(const void *pa, const void *pb)
{
    const char *a = *(char *const *)pa, *b = *(char *const *)pb;
    size_t na = strcspn(a, "="), nb = strcspn(b, "=");
    int c = strncmp(a, b, na < nb ? na : nb);
    if (c != 0 || na != nb)
        return c != 0 ? c : (na < nb ? -1 : 1);
    return strcmp(a + na, b + nb);
}

/* The canonical query: each parameter's name and value encoded again, sorted by name (then value). */
static void canonical_query(gyre_buf_t *b, const char *query)
{
    size_t n = 0, cap = 0;
    char **params = NULL;
    for (const char *p = query; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t name_len = eq != NULL ? (size_t)(eq - p) : len;
            gyre_buf_t one;
            gyre_buf_init(&one, 3 * len + 2);
            reencode(&one, p, name_len);
            gyre_buf_appends(&one, "=");
            if (eq != NULL)
                reencode(&one, eq + 1, len - name_len - 1);
            if (n == cap)
                params = gyre_realloc(params, (cap = cap ? cap * 2 : 8) * sizeof(*params));
            params[n++] = one.base;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (n > 1)
        qsort(params, n, sizeof(*params), compare_params);
    for (size_t i = 0; i < n; i++) {
        gyre_buf_appendf(b, "%s%s", i ? "&" : "", params[i]);
        free(params[i]);
    }
    free(params);
}

/* A header value as SigV4 signs it: trimmed, runs of spaces as one. */
static void canonical_value(gyre_buf_t *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int space = 0;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            gyre_buf_appends(b, " ");
        space = 0;
        gyre_buf_append(b, v, 1);
    }
}

typedef struct sigv4_auth {
    char akid[128], date[16], region[64], service[64];
    char signed_headers[1024];
    char signature[65];
} sigv4_auth_t;

/* Copies the value of `name=` (up to ',' or the end) from an Authorization header; returns -1 when absent or too long.
 */
static int auth_param(const char *auth, const char *name, char *out, size_t size)
{
    const char *p = strstr(auth, name);
    if (p == NULL)
        return -1;
    p += strlen(name);
    size_t len = strcspn(p, ", ");
    if (len == 0 || len >= size)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

/* "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex" */
static int parse_authorization(const char *auth, sigv4_auth_t *a)
{
    char cred[512];
    if (strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0 || auth_param(auth, "Credential=", cred, sizeof(cred)) != 0 ||
        auth_param(auth, "SignedHeaders=", a->signed_headers, sizeof(a->signed_headers)) != 0 ||
        auth_param(auth, "Signature=", a->signature, sizeof(a->signature)) != 0)
        return -1;
    char *parts[5], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(cred, "/", &save); t != NULL && n < 5; t = strtok_r(NULL, "/", &save))
        parts[n++] = t;
    if (n != 5 || strcmp(parts[4], "aws4_request") != 0 || strlen(parts[0]) >= sizeof(a->akid) ||
        strlen(parts[1]) != 8 || strlen(parts[2]) >= sizeof(a->region) || strlen(parts[3]) >= sizeof(a->service))
        return -1;
    snprintf(a->akid, sizeof(a->akid), "%s", parts[0]);
    snprintf(a->date, sizeof(a->date), "%s", parts[1]);
    snprintf(a->region, sizeof(a->region), "%s", parts[2]);
    snprintf(a->service, sizeof(a->service), "%s", parts[3]);
    return 0;
}

/* x-amz-date (YYYYMMDD'T'HHMMSS'Z') as unix seconds; -1 when malformed. */
static long long parse_amz_date(const char *s)
{
    struct tm tm = {0};
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return -1;
    tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
    tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
    tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
    tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
    tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
    return (long long)timegm(&tm);
}

/*
 * The signature of `r` under the mock's secret: the canonical request
 * (method, the path's segments encoded again, the canonical query, the
 * signed headers' canonical values, their names, the payload's hash), the
 * string to sign (algorithm, x-amz-date, scope, the canonical request's
 * hash) and the HMAC chain of the signing key.  Returns 0, or -1 when a
 * signed header is missing (then it cannot match).
 */
static int compute_signature(const mock_request_t *r, const sigv4_auth_t *a, const char *amz_date,
                             const char *payload_hash, char out[65])
{
    gyre_buf_t cr;
    gyre_buf_init(&cr, 4 * MOCK_MAX_HEAD + 4 * sizeof(r->path));
    gyre_buf_appendf(&cr, "%s\n", r->method);
    size_t path_len = strcspn(r->path, "?");
    /* The received path is already encoded once; AWS (for every service but S3) encodes each segment again. */
    for (size_t i = 0; i < path_len;) {
        size_t seg = strcspn(r->path + i, "/?");
        if (seg > path_len - i)
            seg = path_len - i;
        uri_encode(&cr, r->path + i, seg);
        i += seg;
        if (i < path_len && r->path[i] == '/') {
            gyre_buf_appends(&cr, "/");
            i++;
        }
    }
    if (path_len == 0)
        gyre_buf_appends(&cr, "/");
    gyre_buf_appends(&cr, "\n");
    canonical_query(&cr, r->path[path_len] == '?' ? r->path + path_len + 1 : NULL);
    gyre_buf_appends(&cr, "\n");
    char names[sizeof(a->signed_headers)];
    snprintf(names, sizeof(names), "%s", a->signed_headers);
    int missing = 0, count = 0;
    char *save = NULL;
    for (char *h = strtok_r(names, ";", &save); h != NULL; h = strtok_r(NULL, ";", &save)) {
        const char *v = mock_request_header(r, h);
        missing |= v == NULL || ++count > MAX_SIGNED_HEADERS;
        gyre_buf_appendf(&cr, "%s:", h);
        canonical_value(&cr, v != NULL ? v : "");
        gyre_buf_appends(&cr, "\n");
    }
    gyre_buf_appendf(&cr, "\n%s\n%s", a->signed_headers, payload_hash);

    char cr_hash[65];
    sha256_hex(cr.base, cr.len, cr_hash);
    gyre_buf_dispose(&cr);
    char sts[512];
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, a->date, a->region,
             a->service, cr_hash);
    char k_secret[sizeof(aws_secret) + 4];
    snprintf(k_secret, sizeof(k_secret), "AWS4%s", aws_secret);
    unsigned char k_date[32], k_region[32], k_service[32], k_signing[32], sig[32];
    hmac((const unsigned char *)k_secret, strlen(k_secret), a->date, k_date);
    hmac(k_date, 32, a->region, k_region);
    hmac(k_region, 32, a->service, k_service);
    hmac(k_service, 32, "aws4_request", k_signing);
    hmac(k_signing, 32, sts, sig);
    hex(sig, 32, out);
    return missing ? -1 : 0;
}

/* Whether `list` (a;b;c) names `name`. */
static int lists(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p != NULL; p = strchr(p, ';'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ';' || p[n] == '\0'))
            return 1;
    return 0;
}

static const char signature_mismatch[] =
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details.";

int mock_bedrock_authenticate(mock_conn_t *c, const mock_request_t *r, int *ret)
{
    const char *auth = mock_request_header(r, "authorization");
    if (auth == NULL) {
        *ret =
            respond_named_error(c, r, 403, NULL, "MissingAuthenticationTokenException", "Missing Authentication Token");
        return 0;
    }
    if (strncasecmp(auth, "Bearer ", 7) == 0) {
        if (strncmp(auth + 7, "bedrock-api-key-", 16) == 0)
            return 1;
        *ret = respond_named_error(c, r, 403, NULL, "UnrecognizedClientException",
                                   "The security token included in the request is invalid.");
        return 0;
    }
    sigv4_auth_t a;
    if (parse_authorization(auth, &a) != 0) {
        *ret = respond_named_error(c, r, 403, NULL, "IncompleteSignatureException",
                                   "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                                   "parameters, with a Credential of AKID/DATE/REGION/SERVICE/aws4_request.");
        return 0;
    }
    if (strcmp(a.akid, aws_akid) != 0) {
        *ret = respond_named_error(c, r, 403, NULL, "UnrecognizedClientException",
                                   "The security token included in the request is invalid.");
        return 0;
    }
    const char *amz_date = mock_request_header(r, "x-amz-date");
    long long t = amz_date != NULL ? parse_amz_date(amz_date) : -1;
    if (t < 0) {
        *ret = respond_named_error(c, r, 403, NULL, "IncompleteSignatureException",
                                   "Authorization header requires existence of a valid 'X-Amz-Date' header.");
        return 0;
    }
    long long now = (long long)time(NULL);
    if (t > now + MAX_SKEW_SECONDS || t < now - MAX_SKEW_SECONDS) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Signature expired: %s is more than 15 minutes from the server's time.", amz_date);
        *ret = respond_named_error(c, r, 400, NULL, "InvalidSignatureException", msg);
        return 0;
    }
    if (strncmp(amz_date, a.date, 8) != 0 || strcmp(a.service, "bedrock") != 0 || !lists(a.signed_headers, "host")) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s",
                 strncmp(amz_date, a.date, 8) != 0 ? "Date in Credential scope does not match YYYYMMDD from X-Amz-Date."
                 : strcmp(a.service, "bedrock") != 0 ? "Credential should be scoped to correct service: 'bedrock'."
                                                     : "'Host' must be a 'SignedHeader' in the AWS Authorization.");
        *ret = respond_named_error(c, r, 403, NULL, "InvalidSignatureException", msg);
        return 0;
    }
    char payload_hash[65];
    sha256_hex(r->body, r->body_len, payload_hash);
    const char *declared = mock_request_header(r, "x-amz-content-sha256");
    if (declared != NULL && strcmp(declared, payload_hash) != 0) {
        *ret = respond_named_error(c, r, 400, NULL, "XAmzContentSHA256Mismatch",
                                   "The provided 'x-amz-content-sha256' header does not match what was computed.");
        return 0;
    }
    char expected[65];
    if (compute_signature(r, &a, amz_date, payload_hash, expected) != 0 ||
        CRYPTO_memcmp(expected, a.signature, 64) != 0 || strlen(a.signature) != 64) {
        *ret = respond_named_error(c, r, 403, NULL, "InvalidSignatureException", signature_mismatch);
        return 0;
    }
    return 1;
}

/* ---- the request ---- */

/* A toolResult's text: its text blocks and its json blocks (compact) joined by one space. */
static char *tool_result_text(const cJSON *tr)
{
    gyre_buf_t b;
    gyre_buf_init(&b, MOCK_MAX_BODY);
    const cJSON *block;
    cJSON_ArrayForEach(block, (cJSON_IsArray(member(tr, "content")) ? member(tr, "content") : NULL))
    {
        const cJSON *text = member(block, "text"), *json = member(block, "json");
        char *s = cJSON_IsString(text) ? gyre_strdup(text->valuestring)
                  : json != NULL       ? cJSON_PrintUnformatted(json)
                                       : NULL;
        if (s == NULL)
            continue;
        if (b.len != 0)
            gyre_buf_appends(&b, " ");
        gyre_buf_appends(&b, s);
        free(s);
    }
    return b.base != NULL ? b.base : gyre_strdup("");
}

static void read_message(const cJSON *m, mock_convo_t *cv)
{
    const cJSON *content = member(m, "content"), *b;
    if (strcmp(member(m, "role")->valuestring, "assistant") == 0) {
        mock_convo_add(cv, MOCK_ROLE_ASSISTANT, mock_join_texts(content, "text"));
        return;
    }
    /* A user message's toolResult blocks are tool messages of their own; the blocks between them one user message. */
    cJSON *pending = cJSON_CreateArray();
    size_t added = 0;
    cJSON_ArrayForEach(b, content)
    {
        const cJSON *tr = member(b, "toolResult");
        if (tr == NULL) {
            cJSON_AddItemToArray(pending, cJSON_Duplicate(b, 1));
            continue;
        }
        if (cJSON_GetArraySize(pending) > 0) {
            mock_convo_add(cv, MOCK_ROLE_USER, mock_join_texts(pending, "text"));
            cJSON_Delete(pending);
            pending = cJSON_CreateArray();
            added++;
        }
        mock_convo_add(cv, MOCK_ROLE_TOOL, tool_result_text(tr));
        added++;
    }
    if (cJSON_GetArraySize(pending) > 0 || added == 0)
        mock_convo_add(cv, MOCK_ROLE_USER, mock_join_texts(pending, "text"));
    cJSON_Delete(pending);
}

static void read_convo(const cJSON *req, mock_convo_t *cv)
{
    const cJSON *system = member(req, "system"), *m, *t;
    if (cJSON_IsArray(system) && cJSON_GetArraySize(system) > 0)
        mock_convo_add(cv, MOCK_ROLE_SYSTEM, mock_join_texts(system, "text"));
    cJSON_ArrayForEach(m, member(req, "messages"))
    {
        read_message(m, cv);
    }
    const cJSON *tc = member(req, "toolConfig"), *tools = member(tc, "tools");
    cJSON_ArrayForEach(t, (cJSON_IsArray(tools) ? tools : NULL))
    {
        const cJSON *spec = member(t, "toolSpec"), *name = member(spec, "name");
        if (spec != NULL)
            mock_convo_add_tool(cv, cJSON_IsString(name) ? name->valuestring : "tool",
                                member(member(spec, "inputSchema"), "json"));
    }
    const cJSON *named = member(member(member(tc, "toolChoice"), "tool"), "name");
    if (cJSON_IsString(named)) {
        cv->tool_choice = MOCK_TOOLS_NAMED;
        cv->tool_name = gyre_strdup(named->valuestring);
    }
    const cJSON *inf = member(req, "inferenceConfig"), *max = member(inf, "maxTokens");
    if (cJSON_IsNumber(max) && max->valuedouble >= 1 && max->valuedouble < 1e9)
        cv->max_tokens = (long)max->valuedouble;
    mock_convo_add_stop(cv, member(inf, "stopSequences"));
}

/* Checks what Converse requires; returns NULL, or the message of the 400. */
static const char *check_request(const cJSON *req, char *why, size_t size)
{
    const cJSON *messages = member(req, "messages"), *m;
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0)
        return "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be "
               "null and must contain at least one message";
    int i = 0;
    cJSON_ArrayForEach(m, messages)
    {
        const cJSON *role = member(m, "role");
        i++;
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0)) {
            snprintf(why, size,
                     "1 validation error detected: Value at 'messages.%d.member.role' failed to satisfy constraint: "
                     "Member must satisfy enum value set: [user, assistant]",
                     i);
            return why;
        }
        if (!cJSON_IsArray(member(m, "content"))) {
            snprintf(why, size,
                     "1 validation error detected: Value at 'messages.%d.member.content' failed to satisfy "
                     "constraint: Member must not be null",
                     i);
            return why;
        }
    }
    return NULL;
}

/* ---- the answer ---- */

typedef struct reply {
    mock_answer_t a;
    char tool_id[40]; /* tooluse_mock_xxxxxxxx */
} reply_t;

static const char *stop_reason(const mock_answer_t *a)
{
    switch (a->finish) {
    case MOCK_FINISH_LENGTH: return "max_tokens";
    case MOCK_FINISH_TOOL: return "tool_use";
    case MOCK_FINISH_STOP_SEQUENCE: return "stop_sequence";
    default: return "end_turn";
    }
}

static cJSON *usage_json(const mock_answer_t *a)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "inputTokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "outputTokens", (double)a->completion_tokens);
    cJSON_AddNumberToObject(u, "totalTokens", (double)(a->prompt_tokens + a->completion_tokens));
    return u;
}

static cJSON *metrics_json(void)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "latencyMs", 0);
    return m;
}

static int respond_converse(mock_conn_t *c, const mock_request_t *r, const reply_t *rp)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *msg = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "output"), "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON *block = cJSON_CreateObject();
    if (rp->a.text != NULL) {
        cJSON_AddStringToObject(block, "text", rp->a.text);
    } else {
        cJSON *tu = cJSON_AddObjectToObject(block, "toolUse");
        cJSON_AddStringToObject(tu, "toolUseId", rp->tool_id);
        cJSON_AddStringToObject(tu, "name", rp->a.tool_name);
        cJSON_AddItemToObject(tu, "input", cJSON_Parse(rp->a.tool_args));
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(msg, "content"), block);
    cJSON_AddStringToObject(root, "stopReason", stop_reason(&rp->a));
    cJSON_AddItemToObject(root, "usage", usage_json(&rp->a));
    cJSON_AddItemToObject(root, "metrics", metrics_json());
    int ret = mock_http_respond_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}

/* ---- the event stream ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* The table of the reflected polynomial 0xEDB88320, one entry per byte value. */
static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t mock_crc32(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_table_init);
    const unsigned char *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ s[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* One string header: name length (1 byte), name, type 7, value length (2 bytes, big-endian), value. */
static void put_header(gyre_buf_t *b, const char *name, const char *value)
{
    unsigned char n = (unsigned char)strlen(name), t = 7, len[2];
    size_t vlen = strlen(value);
    len[0] = (unsigned char)(vlen >> 8);
    len[1] = (unsigned char)vlen;
    gyre_buf_append(b, &n, 1);
    gyre_buf_append(b, name, n);
    gyre_buf_append(b, &t, 1);
    gyre_buf_append(b, len, 2);
    gyre_buf_append(b, value, vlen);
}

/*
 * Sends one frame as one chunk.  `kind` is "event" (with :event-type
 * `type`) or "exception" (with :exception-type `type`); takes `payload`.
 */
static int send_frame(mock_conn_t *c, const char *kind, const char *type, cJSON *payload)
{
    char *json = cJSON_PrintUnformatted(payload);
    cJSON_Delete(payload);
    gyre_buf_t headers, frame;
    gyre_buf_init(&headers, 1024);
    put_header(&headers, strcmp(kind, "event") == 0 ? ":event-type" : ":exception-type", type);
    put_header(&headers, ":content-type", "application/json");
    put_header(&headers, ":message-type", kind);
    size_t plen = strlen(json), total = 12 + headers.len + plen + 4;
    unsigned char prelude[12], crc[4];
    put_u32(prelude, (uint32_t)total);
    put_u32(prelude + 4, (uint32_t)headers.len);
    put_u32(prelude + 8, mock_crc32(0, prelude, 8));
    gyre_buf_init(&frame, total);
    gyre_buf_append(&frame, prelude, 12);
    gyre_buf_append(&frame, headers.base, headers.len);
    gyre_buf_append(&frame, json, plen);
    put_u32(crc, mock_crc32(0, frame.base, frame.len));
    gyre_buf_append(&frame, crc, 4);
    int ret = mock_http_stream_chunk(c, frame.base, frame.len);
    gyre_buf_dispose(&frame);
    gyre_buf_dispose(&headers);
    free(json);
    return ret;
}

static cJSON *indexed(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "contentBlockIndex", 0);
    return o;
}

/* contentBlockDelta with {"text": piece} or {"toolUse": {"input": piece}}. */
static int send_delta(mock_conn_t *c, int tool, const char *piece)
{
    cJSON *ev = indexed(), *d = cJSON_AddObjectToObject(ev, "delta");
    if (tool)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "toolUse"), "input", piece);
    else
        cJSON_AddStringToObject(d, "text", piece);
    return send_frame(c, "event", "contentBlockDelta", ev);
}

/*
 * messageStart, contentBlockStart (a tool use only), a contentBlockDelta per
 * piece, contentBlockStop, messageStop, metadata.  With c->truncate the
 * stream fails as Bedrock's do mid-way: after two text pieces (or the first
 * piece of the input) comes a throttlingException frame, and the connection
 * is closed.
 */
static int stream_converse(mock_conn_t *c, const mock_request_t *r, const reply_t *rp, long pace_ms)
{
    const mock_answer_t *a = &rp->a;
    if (mock_http_stream_start(c, r, "application/vnd.amazon.eventstream") != 0)
        return -1;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "role", "assistant");
    if (send_frame(c, "event", "messageStart", ev) != 0)
        return -1;
    if (a->text != NULL) {
        int sent = 0;
        for (const char *p = a->text; *p != '\0' && !(c->truncate && sent == 2); sent++) {
            if (mock_wait_ms(pace_ms) != 0)
                return -1;
            size_t n = mock_piece_len(p);
            char *piece = gyre_strndup(p, n);
            int ret = send_delta(c, 0, piece);
            free(piece);
            p += n;
            if (ret != 0)
                return -1;
        }
    } else {
        ev = indexed();
        cJSON *tu = cJSON_AddObjectToObject(cJSON_AddObjectToObject(ev, "start"), "toolUse");
        cJSON_AddStringToObject(tu, "toolUseId", rp->tool_id);
        cJSON_AddStringToObject(tu, "name", a->tool_name);
        if (send_frame(c, "event", "contentBlockStart", ev) != 0)
            return -1;
        size_t len = strlen(a->tool_args), third = (len + 2) / 3;
        for (size_t off = 0; off < len && !(c->truncate && off > 0); off += third) {
            if (mock_wait_ms(pace_ms) != 0)
                return -1;
            char *piece = gyre_strndup(a->tool_args + off, off + third <= len ? third : len - off);
            int ret = send_delta(c, 1, piece);
            free(piece);
            if (ret != 0)
                return -1;
        }
    }
    if (c->truncate) {
        ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "message",
                                "Too many requests, please wait before trying again. (gyre-mock fault "
                                "truncate)");
        if (send_frame(c, "exception", "throttlingException", ev) == 0)
            mock_http_stream_finish(c);
        return -1;
    }
    if (send_frame(c, "event", "contentBlockStop", indexed()) != 0)
        return -1;
    ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "stopReason", stop_reason(a));
    if (send_frame(c, "event", "messageStop", ev) != 0)
        return -1;
    ev = cJSON_CreateObject();
    cJSON_AddItemToObject(ev, "usage", usage_json(a));
    cJSON_AddItemToObject(ev, "metrics", metrics_json());
    if (send_frame(c, "event", "metadata", ev) != 0)
        return -1;
    return mock_http_stream_finish(c);
}

int mock_bedrock_converse(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model, int stream,
                          const mock_options_t *o)
{
    (void)model; /* Converse answers carry no model; the path's is counted in the statistics */
    if (!cJSON_IsObject(req))
        return respond_named_error(c, r, 400, NULL, "ValidationException",
                                   "Malformed input request: the body is not a JSON object.");
    char why[256];
    const char *err = check_request(req, why, sizeof(why));
    if (err != NULL)
        return respond_named_error(c, r, 400, NULL, "ValidationException", err);
    mock_convo_t cv;
    mock_convo_init(&cv);
    read_convo(req, &cv);
    cv.model = model;
    reply_t rp;
    mock_answer_make(&cv, r->body, r->body_len, &rp.a);
    mock_convo_dispose(&cv);
    snprintf(rp.tool_id, sizeof(rp.tool_id), "tooluse_mock_%08x", rp.a.call_hash);
    int ret = stream ? stream_converse(c, r, &rp, mock_pace_ms(o)) : respond_converse(c, r, &rp);
    mock_answer_dispose(&rp.a);
    return ret;
}
