/*
 * `gyre feedback`: gives feedback on a call or a session to a running gyre
 * over HTTP (POST /v1/feedback, loop/feedback.h):
 *
 *   gyre feedback --trace ID | --session ID --name N --value V [--comment C]
 *                 [--correction TEXT|@FILE] [--url URL] [--token env:NAME|file:PATH] [--json]
 *
 * The client is a small blocking HTTP/1.0 one (one request per connection,
 * the answer read to its end), bounded by a 30 s timeout on every step.
 * The credential is read from the environment or a file, never from the
 * command line (where ps and shell histories would show it).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "loop/feedback.h"

const char gyre_feedback_usage[] =
    "usage: gyre feedback (--trace ID | --session ID) --name METRIC --value V [--comment TEXT]\n"
    "                     [--correction TEXT|@FILE] [--url URL] [--token env:NAME|file:PATH] [--json]\n"
    "\n"
    "Gives feedback on a call (its x-gyre-trace-id) or on a session to a running gyre\n"
    "(POST /v1/feedback). The metric must be declared in gyre's config (feedback: metrics:).\n"
    "\n"
    "  --trace ID        the call's trace id (32 hex digits)\n"
    "  --session ID      a session instead (every call of it)\n"
    "  --name METRIC     the metric\n"
    "  --value V         true or false (boolean), a number, or a category's value\n"
    "  --comment TEXT    a note (at most 4096 bytes)\n"
    "  --correction TEXT the answer the model should have given; @FILE reads it from FILE\n"
    "  --url URL         gyre's address (default http://127.0.0.1:8080)\n"
    "  --token SPEC      a client key or the read_token: env:NAME or file:PATH (default\n"
    "                    env:GYRE_API_KEY, else env:GYRE_READ_TOKEN, else none)\n"
    "  --json            print gyre's answer as JSON\n"
    "  -h, --help        this text\n";

#define FEEDBACK_CLI_TIMEOUT_MS 30000
#define FEEDBACK_ANSWER_MAX ((size_t)8 << 20)
#define FEEDBACK_SPEC_MAX 8192

static const char cmd[] = "gyre feedback";

/* A secret from env:NAME or file:PATH (its last newlines dropped); NULL after saying why. */
static char *read_spec(const char *spec)
{
    if (strncmp(spec, "env:", 4) == 0) {
        const char *v = getenv(spec + 4);
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "%s: --token: environment variable %s is not set\n", cmd, spec + 4);
            return NULL;
        }
        return gyre_strdup(v);
    }
    if (strncmp(spec, "file:", 5) == 0) {
        gyre_buf_t b;
        gyre_buf_init(&b, FEEDBACK_SPEC_MAX);
        int r = gyre_buf_append_file(&b, spec + 5);
        if (r != 0 || b.len == 0) {
            fprintf(stderr, "%s: --token: cannot read %s: %s\n", cmd, spec + 5,
                    r == 0 ? "it is empty" : r == -E2BIG ? "it is too large" : strerror(-r));
            gyre_buf_dispose(&b);
            return NULL;
        }
        while (b.len > 0 && (b.base[b.len - 1] == '\n' || b.base[b.len - 1] == '\r'))
            b.base[--b.len] = '\0';
        char *s = gyre_strdup(b.base);
        explicit_bzero(b.base, b.len);
        gyre_buf_dispose(&b);
        return s;
    }
    fprintf(stderr, "%s: --token must be env:NAME or file:PATH (a secret on the command line would show in ps)\n",
            cmd);
    return NULL;
}

/* "http://HOST[:PORT][/...]" into host and port; 0, or -1. */
static int parse_url(const char *url, char *host, size_t hlen, char *port, size_t plen)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *end = h + strcspn(h, "/");
    const char *colon = memchr(h, ':', (size_t)(end - h));
    size_t n = (size_t)((colon != NULL ? colon : end) - h);
    if (n == 0 || n >= hlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    if (colon == NULL) {
        snprintf(port, plen, "80");
        return 0;
    }
    n = (size_t)(end - colon - 1);
    if (n == 0 || n >= plen)
        return -1;
    memcpy(port, colon + 1, n);
    port[n] = '\0';
    return 0;
}

/* POSTs body to /v1/feedback; 0 with *status and `answer` (the body) filled, or -1 after saying why. */
static int post(const char *host, const char *port, const char *token, const char *body, int *status,
                gyre_buf_t *answer)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(host, port, &hints, &res);
    if (r != 0) {
        fprintf(stderr, "%s: cannot resolve %s: %s\n", cmd, host, gai_strerror(r));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {FEEDBACK_CLI_TIMEOUT_MS / 1000, 0};
    /* On Linux the send timeout bounds connect(2) too. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "%s: cannot connect to %s:%s: %s\n", cmd, host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    gyre_buf_t req, in;
    gyre_buf_init(&req, GYRE_FEEDBACK_BODY_MAX + 4096);
    gyre_buf_init(&in, FEEDBACK_ANSWER_MAX);
    gyre_buf_appendf(&req, "POST /v1/feedback HTTP/1.0\r\nHost: %s:%s\r\n", host, port);
    if (token != NULL)
        gyre_buf_appendf(&req, "Authorization: Bearer %s\r\n", token);
    gyre_buf_appendf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", strlen(body));
    int rc = -1;
    if (gyre_buf_appends(&req, body) != 0) {
        fprintf(stderr, "%s: the feedback is larger than %zu bytes\n", cmd, (size_t)GYRE_FEEDBACK_BODY_MAX);
        goto out;
    }
    for (size_t off = 0; off < req.len;) {
        ssize_t n = write(fd, req.base + off, req.len - off);
        if (n <= 0) {
            fprintf(stderr, "%s: sending to %s:%s: %s\n", cmd, host, port,
                    n == 0 ? "connection closed" : strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0 || gyre_buf_append(&in, chunk, (size_t)n) != 0) {
            fprintf(stderr, "%s: reading the answer from %s:%s: %s\n", cmd, host, port,
                    n < 0 ? (errno == EAGAIN ? "timed out" : strerror(errno)) : "it is too large");
            goto out;
        }
    }
    const char *head_end = in.base != NULL ? strstr(in.base, "\r\n\r\n") : NULL;
    if (head_end == NULL || sscanf(in.base, "HTTP/%*d.%*d %d", status) != 1) {
        fprintf(stderr, "%s: %s:%s did not answer in HTTP\n", cmd, host, port);
        goto out;
    }
    gyre_buf_appends(answer, head_end + 4);
    rc = 0;
out:
    explicit_bzero(req.base, req.len);
    gyre_buf_dispose(&req);
    gyre_buf_dispose(&in);
    close(fd);
    return rc;
}

/* The value as JSON: true/false, a number as written, else a string (a category). */
static cJSON *value_json(const char *v)
{
    if (strcmp(v, "true") == 0)
        return cJSON_CreateTrue();
    if (strcmp(v, "false") == 0)
        return cJSON_CreateFalse();
    char *end = NULL;
    double d = strtod(v, &end);
    if (v[0] != '\0' && end != NULL && *end == '\0' && isfinite(d))
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(v);
}

int gyre_cmd_feedback(int argc, char **argv)
{
    const char *trace = NULL, *session = NULL, *name = NULL, *value = NULL, *comment = NULL, *correction = NULL;
    const char *url = "http://127.0.0.1:8080", *token_spec = NULL, *v;
    int json = 0, r;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(gyre_feedback_usage, stdout);
            return 0;
        }
#define OPT(flag, dst)                                                                                                 \
    if ((r = gyre_cli_opt(cmd, argc, argv, &i, flag, &v)) != 0) {                                                      \
        if (r < 0)                                                                                                     \
            return 2;                                                                                                  \
        dst = v;                                                                                                       \
        continue;                                                                                                      \
    }
        OPT("--trace", trace)
        OPT("--session", session)
        OPT("--name", name)
        OPT("--value", value)
        OPT("--comment", comment)
        OPT("--correction", correction)
        OPT("--url", url)
        OPT("--token", token_spec)
#undef OPT
        if (strcmp(arg, "--json") == 0) {
            json = 1;
            continue;
        }
        fprintf(stderr, "%s: unknown argument '%s'\n%s", cmd, arg, gyre_feedback_usage);
        return 2;
    }
    if ((trace == NULL) == (session == NULL)) {
        fprintf(stderr, "%s: pass --trace ID or --session ID (one of them)\n", cmd);
        return 2;
    }
    if (name == NULL || value == NULL) {
        fprintf(stderr, "%s: --name and --value are required\n", cmd);
        return 2;
    }
    char host[256], port[8];
    if (parse_url(url, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, "%s: --url must be http://HOST[:PORT], got '%s'\n", cmd, url);
        return 2;
    }
    char *token = NULL;
    if (token_spec != NULL) {
        if ((token = read_spec(token_spec)) == NULL)
            return 2;
    } else if ((v = getenv("GYRE_API_KEY")) != NULL && v[0] != '\0') {
        token = gyre_strdup(v);
    } else if ((v = getenv("GYRE_READ_TOKEN")) != NULL && v[0] != '\0') {
        token = gyre_strdup(v);
    }
    gyre_buf_t fix;
    gyre_buf_init(&fix, GYRE_FEEDBACK_CORRECTION_MAX);
    if (correction != NULL && correction[0] == '@') {
        int fr = gyre_buf_append_file(&fix, correction + 1);
        if (fr != 0) {
            fprintf(stderr, "%s: --correction: cannot read %s: %s\n", cmd, correction + 1,
                    fr == -E2BIG ? "it is larger than 1 MiB" : strerror(-fr));
            gyre_buf_dispose(&fix);
            free(token);
            return 2;
        }
        correction = fix.base != NULL ? fix.base : "";
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, trace != NULL ? "trace_id" : "session_id", trace != NULL ? trace : session);
    cJSON_AddStringToObject(body, "name", name);
    cJSON_AddItemToObject(body, "value", value_json(value));
    if (comment != NULL)
        cJSON_AddStringToObject(body, "comment", comment);
    if (correction != NULL)
        cJSON_AddStringToObject(body, "correction", correction);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    gyre_buf_dispose(&fix);

    int status = 0, rc = 1;
    gyre_buf_t answer;
    gyre_buf_init(&answer, FEEDBACK_ANSWER_MAX);
    if (text != NULL && post(host, port, token, text, &status, &answer) == 0) {
        cJSON *a = cJSON_Parse(answer.base != NULL ? answer.base : "");
        if (status == 201) {
            rc = 0;
            if (json) {
                printf("%s\n", answer.base != NULL ? answer.base : "");
            } else {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "trace_id");
                printf("feedback stored: %s=%s on %s %s\n", name, value, cJSON_IsString(t) ? "trace" : "session",
                       cJSON_IsString(t) ? t->valuestring : session);
            }
        } else {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
            if (json)
                printf("%s\n", answer.base != NULL ? answer.base : "");
            fprintf(stderr, "%s: %d: %s\n", cmd, status, cJSON_IsString(m) ? m->valuestring : "gyre refused it");
        }
        cJSON_Delete(a);
    }
    cJSON_free(text);
    gyre_buf_dispose(&answer);
    if (token != NULL) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return rc;
}
