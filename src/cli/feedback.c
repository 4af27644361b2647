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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char cmd[] = "gyre feedback";

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
    gyre_cli_target_t target = {.cmd = cmd, .timeout_ms = FEEDBACK_CLI_TIMEOUT_MS};
    if (gyre_cli_parse_url(url, &target) != 0) {
        fprintf(stderr, "%s: --url must be http://HOST[:PORT], got '%s'\n", cmd, url);
        return 2;
    }
    char *token = NULL;
    if (token_spec != NULL) {
        if ((token = gyre_cli_read_secret(cmd, "--token", token_spec)) == NULL)
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
    target.token = token;
    if (text != NULL && strlen(text) > GYRE_FEEDBACK_BODY_MAX)
        fprintf(stderr, "%s: the feedback is larger than %zu bytes\n", cmd, (size_t)GYRE_FEEDBACK_BODY_MAX);
    else if (text != NULL &&
             gyre_cli_http(&target, "POST", "/v1/feedback", text, FEEDBACK_ANSWER_MAX, &status, &answer) == 0) {
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
