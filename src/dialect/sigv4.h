/*
 * AWS Signature Version 4, for the Bedrock dialect.
 *
 * A request is signed by hashing its canonical form (method, URI, query,
 * the signed headers, the body's SHA-256), signing that with a key derived
 * from the secret, the date, the region and the service, and sending the
 * result in an `authorization` header beside the headers it covers.  gyre
 * builds every request it signs, so the signer covers a fixed set of
 * headers rather than taking arbitrary ones: host, x-amz-date,
 * x-amz-content-sha256, x-amz-security-token (with temporary credentials)
 * and content-type (when given).
 *
 * The path is the one sent on the wire, already percent-encoded; AWS's
 * canonical URI for services other than S3 encodes each segment once more,
 * so a model id's ':' that travels as %3A is signed as %253A.
 */
#ifndef GYRE_DIALECT_SIGV4_H
#define GYRE_DIALECT_SIGV4_H

#include <stddef.h>

#include "common/buf.h"

typedef struct gyre_sigv4_creds {
    const char *access_key_id, *secret_access_key, *session_token; /* session_token may be NULL */
} gyre_sigv4_creds_t;

/*
 * Parses "AKID:SECRET" or "AKID:SECRET:TOKEN" into creds, whose pointers
 * point into a copy of `key` made in `scratch` (strlen(key) + 1 bytes).
 * Returns 0, or -EINVAL for an empty part or a key without ':'.
 */
int gyre_sigv4_parse_key(const char *key, char *scratch, gyre_sigv4_creds_t *out);

/* One request to sign.  Everything is borrowed. */
typedef struct gyre_sigv4_request {
    const char *method;       /* "POST" */
    const char *host;         /* as in the Host header: with ":port" when the port is not the scheme's */
    const char *path;         /* as sent, query included ("/model/m%3A0/converse?a=b") */
    const char *content_type; /* signed when non-NULL */
    const char *body;
    size_t body_len;
    long long now; /* unix seconds */
    /* Leave x-amz-content-sha256 out of the signed (and appended) headers,
     * as AWS's own test suite does; Bedrock requests always sign it. */
    int without_content_sha256;
} gyre_sigv4_request_t;

/*
 * Appends "x-amz-date: ...\r\n", "x-amz-content-sha256: ...\r\n",
 * "x-amz-security-token: ...\r\n" (with a session token) and
 * "authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=...\r\n" to `headers`.  The caller sends host and content-type
 * itself, with the values signed.  Returns 0, -EINVAL for a missing part,
 * or -E2BIG when `headers` is full (then it is as it was).
 */
int gyre_sigv4_sign(const gyre_sigv4_creds_t *creds, const char *region, const char *service, const char *method,
                    const char *host, const char *path, const char *content_type, const char *body, size_t body_len,
                    long long now, gyre_buf_t *headers);
/* The same for a request described by a struct. */
int gyre_sigv4_sign_request(const gyre_sigv4_creds_t *creds, const char *region, const char *service,
                            const gyre_sigv4_request_t *req, gyre_buf_t *headers);

/*
 * The canonical request the signature covers (AWS's "creq"), appended to
 * `out`; `session_token` is the credentials' (NULL: none).  For tests and
 * for explaining a SignatureDoesNotMatch.
 */
int gyre_sigv4_canonical_request(const gyre_sigv4_request_t *req, const char *session_token, gyre_buf_t *out);

#endif
