/* AWS Signature Version 4 with OpenSSL's SHA-256 and HMAC (see sigv4.h). */
#include "dialect/sigv4.h"

#include <errno.h>
#include <h2o/string_.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/wire.h"

#define SHA256_LEN 32
#define SHA256_HEX (2 * SHA256_LEN + 1)
/* gyre's own requests carry a query of a few parameters at most; more is refused, not sorted on the heap. */
#define MAX_QUERY_PARAMS 32

int gyre_sigv4_parse_key(const char *key, char *scratch, gyre_sigv4_creds_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(key);
    memcpy(scratch, key, len + 1);
    char *secret = strchr(scratch, ':');
    if (secret == NULL)
        return -EINVAL;
    *secret++ = '\0';
    /* A session token is base64 and never holds ':', so a third part starts at the next one. */
    char *token = strchr(secret, ':');
    if (token != NULL)
        *token++ = '\0';
    if (scratch[0] == '\0' || secret[0] == '\0' || (token != NULL && token[0] == '\0'))
        return -EINVAL;
    out->access_key_id = scratch;
    out->secret_access_key = secret;
    out->session_token = token;
    return 0;
}

static int sha256_hex(const void *p, size_t n, char out[SHA256_HEX])
{
    unsigned char md[SHA256_LEN];
    unsigned int mdlen = 0;
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SHA256_LEN)
        return -EINVAL;
    h2o_hex_encode(out, md, SHA256_LEN);
    return 0;
}

static int hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char out[SHA256_LEN])
{
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &len) == NULL || len != SHA256_LEN)
        return -EINVAL;
    return 0;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

/* AWS's URI encoding of the wire path: every byte but the unreserved ones and '/' as %XX (upper case). */
static int append_canonical_uri(gyre_buf_t *out, const char *path, size_t len)
{
    if (len == 0)
        return gyre_buf_append(out, "/", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (is_unreserved(c) || c == '/') {
            if (gyre_buf_append(out, &path[i], 1) != 0)
                return -E2BIG;
        } else {
            char esc[3];
            gyre_wire_percent_byte(esc, c);
            if (gyre_buf_append(out, esc, 3) != 0)
                return -E2BIG;
        }
    }
    return 0;
}

typedef struct span {
    const char *p;
    size_t len;  /* the whole "k=v" */
    size_t klen; /* the key's part */
} span_t;

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->p, y->p, n);
    if (c != 0 || x->klen != y->klen)
        return c != 0 ? c : (x->klen < y->klen ? -1 : 1);
    /* Equal keys sort by value. */
    const char *xv = x->p + x->klen, *yv = y->p + y->klen;
    size_t xl = x->len - x->klen, yl = y->len - y->klen;
    n = xl < yl ? xl : yl;
    c = memcmp(xv, yv, n);
    return c != 0 ? c : (xl < yl ? -1 : xl > yl);
}

/*
 * The query as sent (already encoded, as gyre writes it), its parameters
 * sorted by key and then value, each as "k=v" ("k=" for a bare key).
 */
static int append_canonical_query(gyre_buf_t *out, const char *q, size_t len)
{
    span_t params[MAX_QUERY_PARAMS];
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : len;
        if (end > i) {
            if (n == MAX_QUERY_PARAMS)
                return -EINVAL;
            const char *eq = memchr(q + i, '=', end - i);
            params[n].p = q + i;
            params[n].len = end - i;
            params[n].klen = eq != NULL ? (size_t)(eq - (q + i)) : end - i;
            n++;
        }
        i = end + 1;
    }
    qsort(params, n, sizeof(params[0]), span_cmp);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            r |= gyre_buf_append(out, "&", 1);
        r |= gyre_buf_append(out, params[i].p, params[i].len);
        if (params[i].klen == params[i].len)
            r |= gyre_buf_append(out, "=", 1);
    }
    return r != 0 ? -E2BIG : 0;
}

static void format_dates(long long now, char amz_date[17], char date[9])
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
}

static const char *signed_headers(const gyre_sigv4_request_t *req, const char *session_token)
{
    /* In the order AWS requires: names sorted. */
    static const char *const names[2][2][2] = {
        {{"host;x-amz-content-sha256;x-amz-date", "host;x-amz-content-sha256;x-amz-date;x-amz-security-token"},
         {"content-type;host;x-amz-content-sha256;x-amz-date",
          "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token"}},
        {{"host;x-amz-date", "host;x-amz-date;x-amz-security-token"},
         {"content-type;host;x-amz-date", "content-type;host;x-amz-date;x-amz-security-token"}},
    };
    return names[req->without_content_sha256 != 0][req->content_type != NULL][session_token != NULL];
}

/* The canonical request, with the date and body hash already worked out. */
static int canonical(const gyre_sigv4_request_t *req, const char *session_token, const char *amz_date,
                     const char *body_hash, gyre_buf_t *out)
{
    if (req->method == NULL || req->host == NULL || req->path == NULL)
        return -EINVAL;
    size_t plen = strlen(req->path);
    const char *q = memchr(req->path, '?', plen);
    size_t ulen = q != NULL ? (size_t)(q - req->path) : plen;
    int r = 0;
    r |= gyre_buf_appendf(out, "%s\n", req->method);
    r |= append_canonical_uri(out, req->path, ulen);
    r |= gyre_buf_append(out, "\n", 1);
    if (q != NULL) {
        int qr = append_canonical_query(out, q + 1, plen - ulen - 1);
        if (qr == -EINVAL)
            return qr;
        r |= qr;
    }
    r |= gyre_buf_append(out, "\n", 1);
    if (req->content_type != NULL)
        r |= gyre_buf_appendf(out, "content-type:%s\n", req->content_type);
    r |= gyre_buf_appendf(out, "host:%s\n", req->host);
    if (!req->without_content_sha256)
        r |= gyre_buf_appendf(out, "x-amz-content-sha256:%s\n", body_hash);
    r |= gyre_buf_appendf(out, "x-amz-date:%s\n", amz_date);
    if (session_token != NULL)
        r |= gyre_buf_appendf(out, "x-amz-security-token:%s\n", session_token);
    r |= gyre_buf_appendf(out, "\n%s\n%s", signed_headers(req, session_token), body_hash);
    return r != 0 ? -E2BIG : 0;
}

int gyre_sigv4_canonical_request(const gyre_sigv4_request_t *req, const char *session_token, gyre_buf_t *out)
{
    char amz_date[17], date[9], body_hash[SHA256_HEX];
    format_dates(req->now, amz_date, date);
    if (sha256_hex(req->body != NULL ? req->body : "", req->body != NULL ? req->body_len : 0, body_hash) != 0)
        return -EINVAL;
    size_t start = out->len;
    int r = canonical(req, session_token, amz_date, body_hash, out);
    if (r != 0)
        out->len = start;
    return r;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
static int signing_key(const char *secret, const char *date, const char *region, const char *service,
                       unsigned char key[SHA256_LEN])
{
    char first[256];
    size_t slen = strlen(secret);
    if (slen > sizeof(first) - 5)
        return -EINVAL;
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret, slen);
    int r = hmac(first, 4 + slen, date, strlen(date), key);
    OPENSSL_cleanse(first, sizeof(first));
    r |= hmac(key, SHA256_LEN, region, strlen(region), key);
    r |= hmac(key, SHA256_LEN, service, strlen(service), key);
    r |= hmac(key, SHA256_LEN, "aws4_request", 12, key);
    return r != 0 ? -EINVAL : 0;
}

int gyre_sigv4_sign_request(const gyre_sigv4_creds_t *creds, const char *region, const char *service,
                            const gyre_sigv4_request_t *req, gyre_buf_t *headers)
{
    if (creds->access_key_id == NULL || creds->secret_access_key == NULL || region == NULL || service == NULL)
        return -EINVAL;
    char amz_date[17], date[9], body_hash[SHA256_HEX], creq_hash[SHA256_HEX], sig[SHA256_HEX];
    unsigned char key[SHA256_LEN], mac[SHA256_LEN];
    format_dates(req->now, amz_date, date);
    if (sha256_hex(req->body != NULL ? req->body : "", req->body != NULL ? req->body_len : 0, body_hash) != 0)
        return -EINVAL;

    gyre_buf_t creq, sts;
    gyre_buf_init(&creq, 16384 + 3 * strlen(req->path != NULL ? req->path : ""));
    gyre_buf_init(&sts, 4096);
    int r = canonical(req, creds->session_token, amz_date, body_hash, &creq);
    if (r != 0)
        goto out;
    if ((r = sha256_hex(creq.base, creq.len, creq_hash)) != 0)
        goto out;
    if (gyre_buf_appendf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date, region, service,
                         creq_hash) != 0) {
        r = -EINVAL;
        goto out;
    }
    if ((r = signing_key(creds->secret_access_key, date, region, service, key)) != 0)
        goto out;
    if ((r = hmac(key, SHA256_LEN, sts.base, sts.len, mac)) != 0)
        goto out;
    h2o_hex_encode(sig, mac, SHA256_LEN);

    size_t start = headers->len;
    int a = 0;
    a |= gyre_buf_appendf(headers, "x-amz-date: %s\r\n", amz_date);
    if (!req->without_content_sha256)
        a |= gyre_buf_appendf(headers, "x-amz-content-sha256: %s\r\n", body_hash);
    if (creds->session_token != NULL)
        a |= gyre_buf_appendf(headers, "x-amz-security-token: %s\r\n", creds->session_token);
    a |= gyre_buf_appendf(headers,
                          "authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                          "Signature=%s\r\n",
                          creds->access_key_id, date, region, service, signed_headers(req, creds->session_token), sig);
    if (a != 0) {
        headers->len = start;
        if (headers->base != NULL)
            headers->base[start] = '\0';
        r = -E2BIG;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    gyre_buf_dispose(&creq);
    gyre_buf_dispose(&sts);
    return r;
}

int gyre_sigv4_sign(const gyre_sigv4_creds_t *creds, const char *region, const char *service, const char *method,
                    const char *host, const char *path, const char *content_type, const char *body, size_t body_len,
                    long long now, gyre_buf_t *headers)
{
    gyre_sigv4_request_t req = {
        .method = method,
        .host = host,
        .path = path,
        .content_type = content_type,
        .body = body,
        .body_len = body_len,
        .now = now,
    };
    return gyre_sigv4_sign_request(creds, region, service, &req, headers);
}
