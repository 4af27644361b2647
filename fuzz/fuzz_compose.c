/*
 * libFuzzer driver for the upstream request composer (src/proxy/compose.c):
 * hostile model names, deployments, client paths and queries, api-versions,
 * base paths, header names and values and keys, for every provider kind and
 * endpoint, translated or passed through.  Besides the sanitizers, it checks
 * what issue 10 asks of every attempt: exactly one well-formed request.
 *   - picohttpparser (h2o's, as linked) reads the head back and consumes
 *     exactly all of it, as HTTP/1.1;
 *   - the method is the one intended;
 *   - the target starts with the provider's base path, has no space or
 *     control byte, and no segment that is "." or ".." once percent-decoded;
 *   - every header name is a token and every value free of control bytes;
 *     there is one host; content-length is there exactly when a body is sent
 *     and equals the body's length; no X-Forwarded-* or Forwarded goes out;
 *   - a refusal has a status and a message, and leaves the head empty.
 * Any violation traps.
 *
 * Input: a byte of kind/endpoint flags, a byte of other flags, then fields
 * separated by NUL: model, client path, api-version, base path, a header
 * value, a header name, a key.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/phr.h"
#include "common/wire.h"
#include "proxy/compose.h"

#define CHECK(c)                                                                                                       \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

#define NFIELDS 7

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Independently of common/wire.c: no path segment of the target is "." or ".." once percent-decoded. */
static void check_target(const char *t, size_t len, const char *base)
{
    CHECK(len > 0 && t[0] == '/');
    CHECK(strncmp(t, base, strlen(base)) == 0);
    for (size_t i = 0; i < len; i++)
        CHECK((unsigned char)t[i] > 0x20 && (unsigned char)t[i] != 0x7f && t[i] != '#');
    const char *q = memchr(t, '?', len);
    size_t plen = q != NULL ? (size_t)(q - t) : len;
    for (size_t start = 1; start <= plen;) {
        size_t end = start;
        while (end < plen && t[end] != '/')
            end++;
        char dec[8];
        size_t n = 0;
        for (size_t i = start; i < end && n < sizeof(dec); i++) {
            if (t[i] == '%' && i + 2 < end && hexval(t[i + 1]) >= 0 && hexval(t[i + 2]) >= 0) {
                dec[n++] = (char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
                i += 2;
            } else {
                dec[n++] = t[i];
            }
        }
        CHECK(!(n == 1 && dec[0] == '.') && !(n == 2 && dec[0] == '.' && dec[1] == '.'));
        start = end + 1;
    }
}

static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int lc_is(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != b[i])
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 16384)
        return 0;
    uint8_t sel = data[0], flags = data[1];
    /* The fields, NUL-separated, each a NUL-terminated copy. */
    char *copy = malloc(size - 2 + 1);
    memcpy(copy, data + 2, size - 2);
    copy[size - 2] = '\0';
    const char *field[NFIELDS];
    size_t flen[NFIELDS];
    char *p = copy, *end = copy + (size - 2);
    for (int i = 0; i < NFIELDS; i++) {
        field[i] = p;
        flen[i] = strlen(p);
        p = p + flen[i] < end ? p + flen[i] + 1 : end;
    }

    static const gyre_provider_kind_t kinds[] = {GYRE_PROVIDER_OPENAI, GYRE_PROVIDER_AZURE, GYRE_PROVIDER_ANTHROPIC,
                                                 GYRE_PROVIDER_GEMINI, GYRE_PROVIDER_BEDROCK};
    static const char *const methods[] = {"GET", "POST", "DELETE", "BAD METHOD"};
    gyre_provider_conf_t prov;
    memset(&prov, 0, sizeof(prov));
    prov.name = "p";
    prov.kind = kinds[sel % 5];
    prov.host = "up.example";
    prov.base_path = (flags & 1) ? (char *)field[3] : "/v1";
    prov.api_version = (flags & 2) ? (char *)field[2] : NULL;
    gyre_compose_endpoint_t ep = (gyre_compose_endpoint_t)((sel / 5) % 3);
    int speaks_openai = prov.kind == GYRE_PROVIDER_OPENAI || prov.kind == GYRE_PROVIDER_AZURE;
    /* What the proxy would do: other paths go to OpenAI speakers only; Messages to Anthropic only; a chat to
     * another dialect is translated. */
    if (ep == GYRE_COMPOSE_OTHER && !speaks_openai)
        ep = GYRE_COMPOSE_CHAT;
    if (ep == GYRE_COMPOSE_MESSAGES && prov.kind != GYRE_PROVIDER_ANTHROPIC)
        ep = GYRE_COMPOSE_CHAT;
    int translated = ep == GYRE_COMPOSE_CHAT && (!speaks_openai || (sel & 0x80));

    h2o_iovec_t n_fuzz = {(char *)field[5], flen[5]}, n_a = {H2O_STRLIT("x-forwarded-for")},
                n_b = {H2O_STRLIT("forwarded")}, n_c = {H2O_STRLIT("x-custom")};
    h2o_header_t hs[4] = {
        {&n_a, NULL, {H2O_STRLIT("10.0.0.1")}},
        {&n_b, NULL, {H2O_STRLIT("for=10.0.0.1")}},
        {&n_c, NULL, {(char *)field[4], flen[4]}},
        {&n_fuzz, NULL, {H2O_STRLIT("v")}},
    };
    cJSON *req = cJSON_Parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    gyre_chat_call_t chat = {.req = translated ? req : NULL,
                             .model = field[0],
                             .provider = &prov,
                             .stream = (flags & 4) != 0,
                             .id = "chatcmpl-x",
                             .created = 1};
    const char *key = (flags & 8) ? field[6] : prov.kind == GYRE_PROVIDER_BEDROCK ? "AKID:secret" : "sk-key";
    gyre_compose_t in = {
        .provider = &prov,
        .host = h2o_iovec_init(H2O_STRLIT("up.example:8080")),
        .endpoint = ep,
        .translated = translated,
        .method = h2o_iovec_init(methods[(flags >> 4) & 3], strlen(methods[(flags >> 4) & 3])),
        .model = h2o_iovec_init(field[0], flen[0]),
        .client_path = h2o_iovec_init(field[1], flen[1]),
        .chat = &chat,
        .key = key,
        .now = 1440938160,
        .request_id = h2o_iovec_init(H2O_STRLIT("rid")),
        .client_headers = hs,
        .nclient_headers = (flags & 0x40) ? 4 : 3,
        .has_body = translated || ep != GYRE_COMPOSE_OTHER || (flags & 0x80),
    };
    gyre_buf_t body, head;
    gyre_buf_init(&body, 1 << 20);
    gyre_buf_init(&head, 1 << 20);
    if (!translated)
        gyre_buf_appends(&body, "{\"model\":\"m\"}");
    gyre_api_error_t err;
    memset(&err, 0, sizeof(err));
    if (gyre_compose_request(&in, &body, &head, &err) != 0) {
        CHECK(err.status == 400 || err.status == 500);
        CHECK(err.message[0] != '\0');
        CHECK(head.len == 0);
        /* A refusal never repeats a key it could not send. */
        if (key[0] != '\0' && strlen(key) >= 8)
            CHECK(strstr(err.message, key) == NULL);
    } else {
        const char *method, *path;
        size_t mlen, plen, nh = 64;
        int minor;
        struct phr_header h[64];
        int r = phr_parse_request(head.base, head.len, &method, &mlen, &path, &plen, &minor, h, &nh, 0);
        CHECK(r > 0 && (size_t)r == head.len);
        CHECK(minor == 1);
        const char *want = ep == GYRE_COMPOSE_OTHER ? methods[(flags >> 4) & 3] : "POST";
        CHECK(mlen == strlen(want) && memcmp(method, want, mlen) == 0);
        check_target(path, plen, prov.base_path);
        if (!translated && ep == GYRE_COMPOSE_CHAT && prov.kind == GYRE_PROVIDER_AZURE) {
            size_t bl = strlen(prov.base_path);
            CHECK(plen > bl + 20 && memcmp(path + bl, "/openai/deployments/", 20) == 0);
        }
        int hosts = 0, lengths = 0;
        for (size_t i = 0; i < nh; i++) {
            CHECK(h[i].name != NULL && h[i].name_len > 0);
            for (size_t k = 0; k < h[i].name_len; k++)
                CHECK(is_tchar((unsigned char)h[i].name[k]));
            for (size_t k = 0; k < h[i].value_len; k++)
                CHECK(((unsigned char)h[i].value[k] >= 0x20 || h[i].value[k] == '\t') &&
                      (unsigned char)h[i].value[k] != 0x7f);
            CHECK(h[i].value_len <= GYRE_WIRE_HEADER_VALUE_MAX);
            CHECK(!lc_is(h[i].name, h[i].name_len, "forwarded"));
            CHECK(!(h[i].name_len >= 12 && lc_is(h[i].name, 12, "x-forwarded-")));
            if (lc_is(h[i].name, h[i].name_len, "host"))
                hosts++;
            if (lc_is(h[i].name, h[i].name_len, "content-length")) {
                lengths++;
                size_t v = 0;
                for (size_t k = 0; k < h[i].value_len; k++) {
                    CHECK(h[i].value[k] >= '0' && h[i].value[k] <= '9');
                    v = v * 10 + (size_t)(h[i].value[k] - '0');
                }
                CHECK(v == body.len);
            }
        }
        CHECK(hosts == 1);
        CHECK(lengths == (in.has_body ? 1 : 0));
        CHECK(head.len <= GYRE_COMPOSE_HEAD_MAX);
    }
    cJSON_Delete(req);
    gyre_buf_dispose(&body);
    gyre_buf_dispose(&head);
    free(copy);
    return 0;
}
