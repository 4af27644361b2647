/*
 * gyre-mock: a fake LLM provider for tests, benchmarks and offline demos.
 *
 * It speaks OpenAI's chat completions (streaming and not, tools included),
 * embeddings and /v1/models, answers deterministically for a given request
 * (so tests can assert exact values; the rules are in docs/mock.md), and
 * stages the failures a gateway must survive: 429 with Retry-After, 500, 503,
 * a TCP reset, a hang, a stream cut mid-way, a slow first byte.
 *
 * Deliberately simple: blocking sockets and one thread per connection. It is
 * a test peer, not a server to benchmark (the benchmark's upstream is nginx).
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (16 * 1024 * 1024)
#define MAX_CONNS 1024
#define CREATED 1700000000

static const char usage[] =
    "usage: gyre-mock --listen HOST:PORT [--latency-ms N] [--tokens-per-sec N]\n"
    "                 [--fault KIND] [--fault-rate P] [--tls-cert FILE --tls-key FILE]\n"
    "\n"
    "A fake OpenAI-compatible provider with deterministic answers (docs/mock.md).\n"
    "  --latency-ms N       wait N ms before each answer\n"
    "  --tokens-per-sec N   pace streamed chunks (0: as fast as possible)\n"
    "  --fault KIND         429 | 500 | 503 | reset | hang | truncate | slow-first-byte\n"
    "  --fault-rate P       the share of /v1 requests that get the fault (0..1, default 1)\n"
    "  --tls-cert, --tls-key  serve https\n"
    "POST /_mock/config changes these at run time; GET /_mock/stats counts requests.\n";

/* ---- options and statistics, shared by all connection threads ---- */

typedef struct options {
    long latency_ms;
    double tokens_per_sec;
    char fault[32]; /* "" for none */
    double fault_rate;
} options_t;

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static options_t opts = {0, 0, "", 1.0};
static unsigned long long fault_counter; /* /v1 requests seen, for the fault rate */
static cJSON *stats;                     /* {"requests":N,"paths":{},"models":{},"keys":{},"last_request":{}} */

static const char *const fault_kinds[] = {"429", "500", "503", "reset", "hang", "truncate", "slow-first-byte"};

static int valid_fault(const char *k)
{
    for (size_t i = 0; i < sizeof(fault_kinds) / sizeof(fault_kinds[0]); i++)
        if (strcmp(k, fault_kinds[i]) == 0)
            return 1;
    return 0;
}

static void stats_reset(void)
{
    cJSON_Delete(stats);
    stats = cJSON_CreateObject();
    cJSON_AddNumberToObject(stats, "requests", 0);
    cJSON_AddObjectToObject(stats, "paths");
    cJSON_AddObjectToObject(stats, "models");
    cJSON_AddObjectToObject(stats, "keys");
    cJSON_AddNullToObject(stats, "last_request");
}

static void count(cJSON *obj, const char *key)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (n == NULL)
        cJSON_AddNumberToObject(obj, key, 1);
    else
        cJSON_SetNumberValue(n, n->valuedouble + 1);
}

/* ---- connections ---- */

typedef struct conn {
    int fd;
    SSL *ssl;
    char *in; /* bytes read and not yet used */
    size_t inlen, incap;
} conn_t;

static SSL_CTX *ssl_ctx;
static int listen_fd = -1;
static int wake_pipe[2];
static volatile sig_atomic_t stopping;
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    pthread_t thread;
    conn_t *conn;
    int used, done;
} threads[MAX_CONNS];

static ssize_t conn_read(conn_t *c, char *buf, size_t n)
{
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, buf, (int)n);
        return r > 0 ? r : -1;
    }
    ssize_t r;
    while ((r = read(c->fd, buf, n)) < 0 && errno == EINTR)
        ;
    return r > 0 ? r : -1;
}

static int conn_write(conn_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, s, (int)n);
            w = r > 0 ? r : -1;
        } else {
            while ((w = send(c->fd, s, n, MSG_NOSIGNAL)) < 0 && errno == EINTR)
                ;
        }
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stopping)
        ;
}

/* ---- requests ---- */

typedef struct request {
    char method[16];
    char path[2048];
    cJSON *headers; /* lower-case name -> value */
    char *body;
    size_t body_len;
    int keep_alive;
} request_t;

static const char *header(const request_t *r, const char *name)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(r->headers, name);
    return cJSON_IsString(h) ? h->valuestring : NULL;
}

/* Reads until `need` bytes are buffered; returns -1 when the peer closed. */
static int fill(conn_t *c, size_t need)
{
    while (c->inlen < need) {
        if (c->incap < need) {
            c->incap = need + 4096;
            c->in = gyre_realloc(c->in, c->incap);
        }
        ssize_t r = conn_read(c, c->in + c->inlen, c->incap - c->inlen);
        if (r <= 0)
            return -1;
        c->inlen += (size_t)r;
    }
    return 0;
}

static void consume(conn_t *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

/* Returns 0, -1 when the connection ended, or an HTTP status for bad input. */
static int read_request(conn_t *c, request_t *r)
{
    memset(r, 0, sizeof(*r));
    char *end;
    for (;;) {
        end = c->inlen ? memmem(c->in, c->inlen, "\r\n\r\n", 4) : NULL;
        if (end != NULL)
            break;
        if (c->inlen >= MAX_HEAD)
            return 431;
        if (fill(c, c->inlen + 1) != 0)
            return -1;
    }
    size_t head_len = (size_t)(end - c->in) + 4;
    char *head = gyre_strndup(c->in, head_len - 4);
    consume(c, head_len);
    int status = 0;
    char *line = head, *next = strstr(line, "\r\n");
    if (next)
        *next = '\0';
    char version[16] = "";
    if (sscanf(line, "%15s %2047s %15s", r->method, r->path, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
        status = 400;
        goto out;
    }
    r->keep_alive = strcmp(version, "HTTP/1.1") == 0;
    r->headers = cJSON_CreateObject();
    while (next != NULL) {
        line = next + 2;
        next = strstr(line, "\r\n");
        if (next)
            *next = '\0';
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        for (char *p = line; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        cJSON_DeleteItemFromObjectCaseSensitive(r->headers, line);
        cJSON_AddStringToObject(r->headers, line, v);
    }
    const char *conn_h = header(r, "connection");
    if (conn_h != NULL && strcasecmp(conn_h, "close") == 0)
        r->keep_alive = 0;
    const char *cl = header(r, "content-length"), *te = header(r, "transfer-encoding");
    if (te != NULL && strcasestr(te, "chunked") != NULL) {
        gyre_buf_t body;
        gyre_buf_init(&body, MAX_BODY);
        for (;;) {
            char *crlf;
            while ((crlf = c->inlen ? memmem(c->in, c->inlen, "\r\n", 2) : NULL) == NULL)
                if (c->inlen > 64 || fill(c, c->inlen + 1) != 0) {
                    status = c->inlen > 64 ? 400 : -1;
                    gyre_buf_dispose(&body);
                    goto out;
                }
            size_t size = strtoul(c->in, NULL, 16);
            consume(c, (size_t)(crlf - c->in) + 2);
            if (size == 0) {
                fill(c, 2);
                consume(c, c->inlen >= 2 ? 2 : c->inlen);
                break;
            }
            if (size > MAX_BODY || fill(c, size + 2) != 0 || gyre_buf_append(&body, c->in, size) != 0) {
                status = 413;
                gyre_buf_dispose(&body);
                goto out;
            }
            consume(c, size + 2);
        }
        r->body = body.base ? body.base : gyre_strdup("");
        r->body_len = body.len;
    } else {
        size_t n = cl ? strtoul(cl, NULL, 10) : 0;
        if (n > MAX_BODY) {
            status = 413;
            goto out;
        }
        if (fill(c, n) != 0) {
            status = -1;
            goto out;
        }
        r->body = gyre_strndup(c->in, n);
        r->body_len = n;
        consume(c, n);
    }
out:
    free(head);
    return status;
}

static void request_dispose(request_t *r)
{
    cJSON_Delete(r->headers);
    free(r->body);
}

/* ---- responses ---- */

static int send_response(conn_t *c, const request_t *r, int status, const char *ctype, const char *extra_headers,
                         const char *body, size_t len)
{
    gyre_buf_t b;
    gyre_buf_init(&b, MAX_BODY + MAX_HEAD);
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 413 ? "Payload Too Large"
                         : status == 429 ? "Too Many Requests"
                         : status == 500 ? "Internal Server Error"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    gyre_buf_appendf(&b, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n", status, reason, ctype, len);
    const char *rid = r ? header(r, "x-request-id") : NULL;
    if (rid != NULL)
        gyre_buf_appendf(&b, "x-request-id: %s\r\n", rid);
    if (extra_headers != NULL)
        gyre_buf_appends(&b, extra_headers);
    gyre_buf_appends(&b, r != NULL && r->keep_alive ? "\r\n" : "connection: close\r\n\r\n");
    gyre_buf_append(&b, body, len);
    int ret = conn_write(c, b.base, b.len);
    gyre_buf_dispose(&b);
    return ret;
}

static int send_json(conn_t *c, const request_t *r, int status, cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    int ret = send_response(c, r, status, "application/json", NULL, text, strlen(text));
    free(text);
    return ret;
}

static int send_error(conn_t *c, const request_t *r, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    int ret = send_json(c, r, status, root);
    cJSON_Delete(root);
    return ret;
}

/* Chunked transfer for streams: each SSE event is its own chunk, flushed. */
static int send_chunk(conn_t *c, const char *data, size_t len)
{
    char size[32];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    if (conn_write(c, size, (size_t)n) != 0 || conn_write(c, data, len) != 0 || conn_write(c, "\r\n", 2) != 0)
        return -1;
    return 0;
}

static int send_event(conn_t *c, cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    gyre_buf_t b;
    gyre_buf_init(&b, MAX_BODY);
    gyre_buf_appendf(&b, "data: %s\n\n", text);
    int ret = send_chunk(c, b.base, b.len);
    gyre_buf_dispose(&b);
    free(text);
    return ret;
}

/* ---- deterministic content ---- */

static uint32_t fnv1a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    int in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

/* The text of a message's content: a string, or its text parts joined. */
static char *content_text(const cJSON *content)
{
    if (cJSON_IsString(content))
        return gyre_strdup(content->valuestring);
    gyre_buf_t b;
    gyre_buf_init(&b, MAX_BODY);
    if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, content)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) {
                if (b.len)
                    gyre_buf_appends(&b, " ");
                gyre_buf_appends(&b, t->valuestring);
            }
        }
    }
    return b.base ? b.base : gyre_strdup("");
}

static long prompt_tokens(const cJSON *messages)
{
    long n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages)
    {
        char *t = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
        n += (long)count_words(t) + 4;
        free(t);
    }
    return n;
}

/* A value that fits a JSON schema: every required property (all of them when
 * none is required), the first enum value, and fixed values per type. */
static cJSON *value_for_schema(const cJSON *schema, int depth)
{
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    if (cJSON_IsArray(en) && cJSON_GetArraySize(en) > 0)
        return cJSON_Duplicate(cJSON_GetArrayItem(en, 0), 1);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "object";
    if (cJSON_IsArray(type) && cJSON_IsString(cJSON_GetArrayItem(type, 0)))
        t = cJSON_GetArrayItem(type, 0)->valuestring;
    if (strcmp(t, "string") == 0)
        return cJSON_CreateString("mock");
    if (strcmp(t, "integer") == 0)
        return cJSON_CreateNumber(1);
    if (strcmp(t, "number") == 0)
        return cJSON_CreateNumber(1.5);
    if (strcmp(t, "boolean") == 0)
        return cJSON_CreateTrue();
    if (strcmp(t, "null") == 0)
        return cJSON_CreateNull();
    if (strcmp(t, "array") == 0) {
        cJSON *a = cJSON_CreateArray();
        if (depth < 8)
            cJSON_AddItemToArray(a, value_for_schema(cJSON_GetObjectItemCaseSensitive(schema, "items"), depth + 1));
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    if (depth >= 8 || !cJSON_IsObject(props))
        return o;
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        int want = !cJSON_IsArray(req) || cJSON_GetArraySize(req) == 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, req) if (cJSON_IsString(r) && strcmp(r->valuestring, p->string) == 0) want = 1;
        if (want)
            cJSON_AddItemToObject(o, p->string, value_for_schema(p, depth + 1));
    }
    return o;
}

typedef struct answer {
    char *text;          /* NULL for a tool call */
    char *tool_name;     /* the function called */
    char *tool_args;     /* its arguments, as a JSON string */
    char id[32];         /* "chatcmpl-mock-xxxxxxxx" */
    char call_id[32];    /* "call_mock_xxxxxxxx" */
    const char *finish;  /* stop | length | tool_calls */
    long prompt_tokens, completion_tokens;
} answer_t;

static void answer_dispose(answer_t *a)
{
    free(a->text);
    free(a->tool_name);
    free(a->tool_args);
}

static void make_answer(const cJSON *req, const char *body, size_t body_len, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    uint32_t h = fnv1a(body, body_len, 2166136261u);
    snprintf(a->id, sizeof(a->id), "chatcmpl-mock-%08x", h);
    snprintf(a->call_id, sizeof(a->call_id), "call_mock_%08x", fnv1a("call", 4, h));
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    a->prompt_tokens = prompt_tokens(messages);
    const cJSON *last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(last, "role");
    int after_tool = cJSON_IsString(role) && strcmp(role->valuestring, "tool") == 0;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    int tools_off = cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0;
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0 && !after_tool && !tools_off) {
        const cJSON *tool = cJSON_GetArrayItem(tools, 0);
        const cJSON *named = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(choice, "function"), "name");
        const cJSON *t;
        cJSON_ArrayForEach(t, tools)
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
            if (cJSON_IsString(named) && cJSON_IsString(n) && strcmp(n->valuestring, named->valuestring) == 0)
                tool = t;
        }
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        cJSON *args = value_for_schema(cJSON_GetObjectItemCaseSensitive(fn, "parameters"), 0);
        a->tool_name = gyre_strdup(cJSON_IsString(name) ? name->valuestring : "tool");
        a->tool_args = cJSON_PrintUnformatted(args);
        cJSON_Delete(args);
        a->finish = "tool_calls";
        a->completion_tokens = (long)count_words(a->tool_args) + 4;
        return;
    }
    char *said = content_text(cJSON_GetObjectItemCaseSensitive(last, "content"));
    if (strlen(said) > 64)
        said[64] = '\0';
    gyre_buf_t b;
    gyre_buf_init(&b, 4096);
    gyre_buf_appendf(&b, "%s%s", after_tool ? "Mock reply to tool result: " : "Mock reply to: ", said);
    free(said);
    a->text = b.base;
    a->finish = "stop";
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens");
    if (!cJSON_IsNumber(mt))
        mt = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    size_t words = count_words(a->text);
    if (cJSON_IsNumber(mt) && mt->valuedouble >= 1 && (size_t)mt->valuedouble < words) {
        /* Cut after the Nth word. */
        size_t keep = (size_t)mt->valuedouble, seen = 0;
        char *p = a->text;
        int in = 0;
        for (; *p; p++) {
            int sp = *p == ' ';
            if (sp && in && ++seen == keep)
                break;
            in = !sp;
        }
        *p = '\0';
        a->finish = "length";
        words = keep;
    }
    a->completion_tokens = (long)words;
}

static cJSON *usage_json(const answer_t *a)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)a->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(a->prompt_tokens + a->completion_tokens));
    return u;
}

static cJSON *tool_call_json(const answer_t *a, const char *args, int with_head)
{
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddNumberToObject(tc, "index", 0);
    if (with_head) {
        cJSON_AddStringToObject(tc, "id", a->call_id);
        cJSON_AddStringToObject(tc, "type", "function");
    }
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");
    if (with_head)
        cJSON_AddStringToObject(fn, "name", a->tool_name);
    cJSON_AddStringToObject(fn, "arguments", args);
    return tc;
}

static cJSON *chunk_json(const answer_t *a, const char *model, cJSON *delta, const char *finish)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", CREATED);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (delta != NULL) {
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", 0);
        cJSON_AddItemToObject(ch, "delta", delta);
        cJSON_AddNullToObject(ch, "logprobs");
        if (finish)
            cJSON_AddStringToObject(ch, "finish_reason", finish);
        else
            cJSON_AddNullToObject(ch, "finish_reason");
        cJSON_AddItemToArray(choices, ch);
    }
    return o;
}

static int stream_answer(conn_t *c, const request_t *r, const answer_t *a, const char *model, int include_usage,
                         double tps, int truncate)
{
    static const char head[] = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                               "transfer-encoding: chunked\r\n";
    gyre_buf_t h;
    gyre_buf_init(&h, MAX_HEAD);
    gyre_buf_appends(&h, head);
    const char *rid = header(r, "x-request-id");
    if (rid)
        gyre_buf_appendf(&h, "x-request-id: %s\r\n", rid);
    gyre_buf_appends(&h, r->keep_alive ? "\r\n" : "connection: close\r\n\r\n");
    int ret = conn_write(c, h.base, h.len);
    gyre_buf_dispose(&h);
    if (ret != 0)
        return -1;
    long pace = tps > 0 ? (long)(1000.0 / tps) : 0;
    int sent = 0;
    /* The role, then the content word by word (or the tool call in pieces). */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "role", "assistant");
    if (a->text)
        cJSON_AddStringToObject(d, "content", "");
    else
        cJSON_AddNullToObject(d, "content");
    cJSON *ev = chunk_json(a, model, d, NULL);
    ret = send_event(c, ev);
    cJSON_Delete(ev);
    if (a->text != NULL) {
        const char *p = a->text;
        while (*p && ret == 0) {
            const char *q = strchr(p, ' ');
            size_t n = q ? (size_t)(q - p) + 1 : strlen(p);
            char *word = gyre_strndup(p, n);
            d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "content", word);
            free(word);
            ev = chunk_json(a, model, d, NULL);
            sleep_ms(pace);
            ret = send_event(c, ev);
            cJSON_Delete(ev);
            p += n;
            if (truncate && ++sent == 2)
                return -1; /* cut: no terminating chunk, no [DONE] */
        }
    } else {
        size_t len = strlen(a->tool_args), third = len / 3 + 1;
        for (size_t off = 0; off <= len && ret == 0; off += third) {
            char *piece = gyre_strndup(a->tool_args + off, off + third <= len ? third : len - off);
            d = cJSON_CreateObject();
            cJSON *calls = cJSON_AddArrayToObject(d, "tool_calls");
            if (off == 0) {
                cJSON_AddItemToArray(calls, tool_call_json(a, "", 1));
                ev = chunk_json(a, model, d, NULL);
                ret = send_event(c, ev);
                cJSON_Delete(ev);
                d = cJSON_CreateObject();
                calls = cJSON_AddArrayToObject(d, "tool_calls");
            }
            cJSON_AddItemToArray(calls, tool_call_json(a, piece, 0));
            free(piece);
            ev = chunk_json(a, model, d, NULL);
            sleep_ms(pace);
            if (ret == 0)
                ret = send_event(c, ev);
            cJSON_Delete(ev);
            if (truncate)
                return -1;
            if (off + third > len)
                break;
        }
    }
    if (ret != 0)
        return -1;
    ev = chunk_json(a, model, cJSON_CreateObject(), a->finish);
    ret = send_event(c, ev);
    cJSON_Delete(ev);
    if (ret == 0 && include_usage) {
        ev = chunk_json(a, model, NULL, NULL);
        cJSON_AddItemToObject(ev, "usage", usage_json(a));
        ret = send_event(c, ev);
        cJSON_Delete(ev);
    }
    if (ret == 0)
        ret = send_chunk(c, "data: [DONE]\n\n", 14);
    if (ret == 0)
        ret = conn_write(c, "0\r\n\r\n", 5);
    return ret;
}

static int handle_chat(conn_t *c, const request_t *r, const cJSON *req, options_t o, int truncate)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsString(model))
        return send_error(c, r, 400, "invalid_request_error", "missing_required_parameter", "model",
                          "you must provide a model parameter");
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0)
        return send_error(c, r, 400, "invalid_request_error", "missing_required_parameter", "messages",
                          "'messages' must be a non-empty array");
    answer_t a;
    make_answer(req, r->body, r->body_len, &a);
    int ret;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"))) {
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
        int include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
        ret = stream_answer(c, r, &a, model->valuestring, include_usage, o.tokens_per_sec, truncate);
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "id", a.id);
        cJSON_AddStringToObject(root, "object", "chat.completion");
        cJSON_AddNumberToObject(root, "created", CREATED);
        cJSON_AddStringToObject(root, "model", model->valuestring);
        cJSON *choice = cJSON_CreateObject();
        cJSON_AddNumberToObject(choice, "index", 0);
        cJSON *msg = cJSON_AddObjectToObject(choice, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        if (a.text) {
            cJSON_AddStringToObject(msg, "content", a.text);
        } else {
            cJSON_AddNullToObject(msg, "content");
            cJSON *calls = cJSON_AddArrayToObject(msg, "tool_calls");
            cJSON *tc = tool_call_json(&a, a.tool_args, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(tc, "index");
            cJSON_AddItemToArray(calls, tc);
        }
        cJSON_AddNullToObject(msg, "refusal");
        cJSON_AddNullToObject(choice, "logprobs");
        cJSON_AddStringToObject(choice, "finish_reason", a.finish);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
        cJSON_AddItemToObject(root, "usage", usage_json(&a));
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        size_t len = strlen(text);
        if (truncate) {
            /* Promise the whole body, send half, close. */
            gyre_buf_t b;
            gyre_buf_init(&b, MAX_BODY);
            gyre_buf_appendf(&b, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n\r\n",
                             len);
            gyre_buf_append(&b, text, len / 2);
            conn_write(c, b.base, b.len);
            gyre_buf_dispose(&b);
            ret = -1;
        } else {
            ret = send_response(c, r, 200, "application/json", NULL, text, len);
        }
        free(text);
    }
    answer_dispose(&a);
    return ret;
}

static char *base64_encode(const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = gyre_malloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int handle_embeddings(conn_t *c, const request_t *r, const cJSON *req)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(req, "dimensions");
    if (!cJSON_IsString(model) || input == NULL)
        return send_error(c, r, 400, "invalid_request_error", "missing_required_parameter",
                          cJSON_IsString(model) ? "input" : "model", "missing required parameter");
    int n = cJSON_IsNumber(dims) && dims->valuedouble >= 1 && dims->valuedouble <= 4096 ? (int)dims->valuedouble : 8;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(req, "encoding_format");
    int base64 = cJSON_IsString(fmt) && strcmp(fmt->valuestring, "base64") == 0;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    long tokens = 0;
    int count_inputs = cJSON_IsArray(input) ? cJSON_GetArraySize(input) : 1;
    for (int i = 0; i < count_inputs; i++) {
        const cJSON *item = cJSON_IsArray(input) ? cJSON_GetArrayItem(input, i) : input;
        char *text = cJSON_IsString(item) ? gyre_strdup(item->valuestring) : cJSON_PrintUnformatted(item);
        tokens += (long)count_words(text);
        double v[4096], norm = 0;
        for (int k = 0; k < n; k++) {
            uint32_t h = fnv1a(text, strlen(text), 2166136261u ^ (uint32_t)k * 2654435761u);
            v[k] = ((double)(h % 20001) - 10000.0) / 10000.0;
            norm += v[k] * v[k];
        }
        norm = sqrt(norm) > 0 ? sqrt(norm) : 1;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", i);
        if (base64) {
            /* OpenAI's base64 form: little-endian float32s (what SDKs ask for by default). */
            unsigned char raw[4096 * 4];
            for (int k = 0; k < n; k++) {
                float f = (float)(round(v[k] / norm * 1e6) / 1e6);
                memcpy(raw + 4 * k, &f, 4);
            }
            char *b64 = base64_encode(raw, (size_t)n * 4);
            cJSON_AddStringToObject(e, "embedding", b64);
            free(b64);
        } else {
            cJSON *vec = cJSON_AddArrayToObject(e, "embedding");
            for (int k = 0; k < n; k++)
                cJSON_AddItemToArray(vec, cJSON_CreateNumber(round(v[k] / norm * 1e6) / 1e6));
        }
        cJSON_AddItemToArray(data, e);
        free(text);
    }
    cJSON_AddStringToObject(root, "model", model->valuestring);
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)tokens);
    int ret = send_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}

static int handle_models(conn_t *c, const request_t *r)
{
    static const char *const ids[] = {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "mock-1"};
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", ids[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", CREATED);
        cJSON_AddStringToObject(m, "owned_by", "gyre-mock");
        cJSON_AddItemToArray(data, m);
    }
    int ret = send_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}

static cJSON *options_json(const options_t *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "latency_ms", (double)o->latency_ms);
    cJSON_AddNumberToObject(j, "tokens_per_sec", o->tokens_per_sec);
    if (o->fault[0])
        cJSON_AddStringToObject(j, "fault", o->fault);
    else
        cJSON_AddNullToObject(j, "fault");
    cJSON_AddNumberToObject(j, "fault_rate", o->fault_rate);
    return j;
}

static int handle_mock_config(conn_t *c, const request_t *r)
{
    if (strcmp(r->method, "POST") == 0) {
        cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            return send_error(c, r, 400, "invalid_request_error", "invalid_json", NULL, "expected a JSON object");
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "fault");
        if (cJSON_IsString(f) && !valid_fault(f->valuestring)) {
            int ret = send_error(c, r, 400, "invalid_request_error", "invalid_value", "fault", "unknown fault '%s'",
                                 f->valuestring);
            cJSON_Delete(j);
            return ret;
        }
        pthread_mutex_lock(&state_lock);
        const cJSON *v;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "latency_ms")))
            opts.latency_ms = (long)v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "tokens_per_sec")))
            opts.tokens_per_sec = v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "fault_rate")))
            opts.fault_rate = v->valuedouble;
        if (cJSON_IsString(f))
            snprintf(opts.fault, sizeof(opts.fault), "%s", f->valuestring);
        else if (cJSON_IsNull(f))
            opts.fault[0] = '\0';
        pthread_mutex_unlock(&state_lock);
        cJSON_Delete(j);
    }
    pthread_mutex_lock(&state_lock);
    cJSON *j = options_json(&opts);
    pthread_mutex_unlock(&state_lock);
    int ret = send_json(c, r, 200, j);
    cJSON_Delete(j);
    return ret;
}

/* Counts the request and remembers it, for /_mock/stats. */
static void record(const request_t *r, const cJSON *body)
{
    pthread_mutex_lock(&state_lock);
    cJSON *n = cJSON_GetObjectItemCaseSensitive(stats, "requests");
    cJSON_SetNumberValue(n, n->valuedouble + 1);
    char path[2048];
    snprintf(path, sizeof(path), "%s", r->path);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    count(cJSON_GetObjectItemCaseSensitive(stats, "paths"), path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (cJSON_IsString(model))
        count(cJSON_GetObjectItemCaseSensitive(stats, "models"), model->valuestring);
    const char *auth = header(r, "authorization");
    const char *key = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
    if (key == NULL)
        key = header(r, "api-key");
    if (key == NULL)
        key = header(r, "x-api-key");
    if (key != NULL)
        count(cJSON_GetObjectItemCaseSensitive(stats, "keys"), key);
    cJSON *last = cJSON_CreateObject();
    cJSON_AddStringToObject(last, "method", r->method);
    cJSON_AddStringToObject(last, "path", r->path);
    cJSON_AddItemToObject(last, "headers", cJSON_Duplicate(r->headers, 1));
    char *body_copy = gyre_strndup(r->body, r->body_len);
    cJSON_AddStringToObject(last, "body", body_copy);
    free(body_copy);
    cJSON_ReplaceItemInObjectCaseSensitive(stats, "last_request", last);
    pthread_mutex_unlock(&state_lock);
}

/* Whether this /v1 request gets the fault: exactly `rate` of them, spread evenly. */
static int fault_now(double rate)
{
    pthread_mutex_lock(&state_lock);
    unsigned long long n = fault_counter++;
    pthread_mutex_unlock(&state_lock);
    if (rate >= 1)
        return 1;
    if (rate <= 0)
        return 0;
    return floor((double)(n + 1) * rate) > floor((double)n * rate);
}

/* Returns 0 to keep the connection, -1 to close it. */
static int handle(conn_t *c, request_t *r)
{
    if (strncmp(r->path, "/_mock/", 7) == 0) {
        if (strcmp(r->path, "/_mock/stats") == 0) {
            pthread_mutex_lock(&state_lock);
            cJSON *copy = cJSON_Duplicate(stats, 1);
            pthread_mutex_unlock(&state_lock);
            int ret = send_json(c, r, 200, copy);
            cJSON_Delete(copy);
            return ret;
        }
        if (strcmp(r->path, "/_mock/reset") == 0) {
            pthread_mutex_lock(&state_lock);
            stats_reset();
            fault_counter = 0;
            pthread_mutex_unlock(&state_lock);
            return send_response(c, r, 200, "application/json", NULL, "{}", 2);
        }
        if (strcmp(r->path, "/_mock/config") == 0)
            return handle_mock_config(c, r);
        return send_error(c, r, 404, "invalid_request_error", "unknown_url", NULL, "unknown path %s", r->path);
    }
    cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
    record(r, body);
    pthread_mutex_lock(&state_lock);
    options_t o = opts;
    pthread_mutex_unlock(&state_lock);
    int ret = 0, truncate = 0;
    if (strncmp(r->path, "/v1/", 4) == 0 && o.fault[0] && fault_now(o.fault_rate)) {
        if (strcmp(o.fault, "reset") == 0) {
            struct linger l = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
            ret = -1;
            goto out;
        }
        if (strcmp(o.fault, "hang") == 0) {
            /* Keep the connection open, answer nothing, until the peer leaves. */
            char buf[256];
            while (!stopping && conn_read(c, buf, sizeof(buf)) > 0)
                ;
            ret = -1;
            goto out;
        }
        if (strcmp(o.fault, "slow-first-byte") == 0) {
            sleep_ms(o.latency_ms > 2000 ? o.latency_ms : 2000);
            o.latency_ms = 0;
        } else if (strcmp(o.fault, "truncate") == 0) {
            truncate = 1;
        } else {
            int status = atoi(o.fault);
            sleep_ms(o.latency_ms);
            if (status == 429)
                ret = send_response(c, r, 429, "application/json", "retry-after: 1\r\n",
                                    "{\"error\":{\"message\":\"Rate limit reached (gyre-mock fault)\",\"type\":\"requests\","
                                    "\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
                                    strlen("{\"error\":{\"message\":\"Rate limit reached (gyre-mock fault)\",\"type\":"
                                           "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}"));
            else
                ret = send_error(c, r, status, "server_error", NULL, NULL, "gyre-mock fault %d", status);
            goto out;
        }
    }
    sleep_ms(o.latency_ms);
    if (strcmp(r->path, "/v1/chat/completions") == 0 && strcmp(r->method, "POST") == 0) {
        if (!cJSON_IsObject(body))
            ret = send_error(c, r, 400, "invalid_request_error", "invalid_json", NULL, "the body is not a JSON object");
        else
            ret = handle_chat(c, r, body, o, truncate);
    } else if (strcmp(r->path, "/v1/embeddings") == 0 && strcmp(r->method, "POST") == 0) {
        ret = cJSON_IsObject(body) ? handle_embeddings(c, r, body)
                                   : send_error(c, r, 400, "invalid_request_error", "invalid_json", NULL,
                                                "the body is not a JSON object");
    } else if (strcmp(r->path, "/v1/models") == 0) {
        ret = handle_models(c, r);
    } else if (strncmp(r->path, "/v1/", 4) == 0) {
        cJSON *echo = cJSON_CreateObject();
        cJSON_AddStringToObject(echo, "object", "mock.echo");
        cJSON_AddStringToObject(echo, "method", r->method);
        cJSON_AddStringToObject(echo, "path", r->path);
        cJSON_AddNumberToObject(echo, "body_bytes", (double)r->body_len);
        ret = send_json(c, r, 200, echo);
        cJSON_Delete(echo);
    } else {
        ret = send_error(c, r, 404, "invalid_request_error", "unknown_url", NULL, "unknown path %s", r->path);
    }
out:
    cJSON_Delete(body);
    return ret;
}

static void *conn_main(void *arg)
{
    size_t slot = (size_t)arg;
    conn_t *c = threads[slot].conn;
    if (ssl_ctx != NULL) {
        c->ssl = SSL_new(ssl_ctx);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_accept(c->ssl) != 1)
            goto done;
    }
    for (;;) {
        request_t r;
        int st = read_request(c, &r);
        if (st != 0) {
            if (st > 0)
                send_error(c, NULL, st, "invalid_request_error", "bad_request", NULL, "could not read the request (%d)",
                           st);
            request_dispose(&r);
            break;
        }
        int keep = r.keep_alive;
        int ret = handle(c, &r);
        request_dispose(&r);
        if (ret != 0 || !keep || stopping)
            break;
    }
done:
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    pthread_mutex_lock(&conns_lock);
    close(c->fd);
    c->fd = -1;
    threads[slot].done = 1;
    pthread_mutex_unlock(&conns_lock);
    return NULL;
}

/* Joins the threads of connections that have ended, freeing their slots. */
static void reap(int all)
{
    for (size_t i = 0; i < MAX_CONNS; i++) {
        pthread_mutex_lock(&conns_lock);
        int used = threads[i].used, done = threads[i].done;
        if (used && !done && all && threads[i].conn->fd >= 0)
            shutdown(threads[i].conn->fd, SHUT_RDWR);
        pthread_mutex_unlock(&conns_lock);
        if (used && (done || all)) {
            pthread_join(threads[i].thread, NULL);
            free(threads[i].conn->in);
            free(threads[i].conn);
            threads[i].used = threads[i].done = 0;
        }
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    if (write(wake_pipe[1], "x", 1) < 0) {
        /* nothing to do: the flag is set */
    }
}

static int parse_args(int argc, char **argv, char **host, int *port, const char **cert, const char **key)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "gyre-mock: %s needs a value\n\n%s", a, usage);
            return -1;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            const char *colon = strrchr(v, ':');
            if (colon == NULL || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535) {
                fprintf(stderr, "gyre-mock: --listen must be HOST:PORT, got '%s'\n", v);
                return -1;
            }
            *host = gyre_strndup(v, (size_t)(colon - v));
            *port = atoi(colon + 1);
        } else if (strcmp(a, "--latency-ms") == 0) {
            opts.latency_ms = atol(v);
        } else if (strcmp(a, "--tokens-per-sec") == 0) {
            opts.tokens_per_sec = atof(v);
        } else if (strcmp(a, "--fault") == 0) {
            if (!valid_fault(v)) {
                fprintf(stderr, "gyre-mock: unknown fault '%s' (429, 500, 503, reset, hang, truncate, slow-first-byte)\n",
                        v);
                return -1;
            }
            snprintf(opts.fault, sizeof(opts.fault), "%s", v);
        } else if (strcmp(a, "--fault-rate") == 0) {
            opts.fault_rate = atof(v);
            if (opts.fault_rate < 0 || opts.fault_rate > 1) {
                fprintf(stderr, "gyre-mock: --fault-rate must be between 0 and 1, got '%s'\n", v);
                return -1;
            }
        } else if (strcmp(a, "--tls-cert") == 0) {
            *cert = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            *key = v;
        } else {
            fprintf(stderr, "gyre-mock: unknown option '%s'\n\n%s", a, usage);
            return -1;
        }
    }
    if (*host == NULL) {
        fprintf(stderr, "gyre-mock: --listen HOST:PORT is required\n\n%s", usage);
        return -1;
    }
    if ((*cert == NULL) != (*key == NULL)) {
        fprintf(stderr, "gyre-mock: --tls-cert and --tls-key go together\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char *host = NULL;
    int port = 0;
    const char *cert = NULL, *key = NULL;
    if (parse_args(argc, argv, &host, &port, &cert, &key) != 0) {
        free(host);
        return 2;
    }
    if (cert != NULL) {
        ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ssl_ctx, key, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "gyre-mock: cannot load %s / %s\n", cert, key);
            return 1;
        }
    }
    stats_reset();
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "gyre-mock: --listen needs an IPv4 address, got '%s'\n", host);
        return 2;
    }
    int one = 1;
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(listen_fd, 512) != 0) {
        fprintf(stderr, "gyre-mock: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
        return 1;
    }
    if (pipe(wake_pipe) != 0)
        return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "gyre-mock listening on %s://%s:%d\n", ssl_ctx ? "https" : "http", host, port);

    while (!stopping) {
        struct pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR)
            break;
        reap(0);
        if (!(fds[0].revents & POLLIN))
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        size_t slot = MAX_CONNS;
        for (size_t i = 0; i < MAX_CONNS && slot == MAX_CONNS; i++)
            if (!threads[i].used)
                slot = i;
        if (slot == MAX_CONNS) {
            close(fd); /* at the bound: refuse rather than grow */
            continue;
        }
        threads[slot].conn = gyre_calloc(1, sizeof(conn_t));
        threads[slot].conn->fd = fd;
        threads[slot].used = 1;
        threads[slot].done = 0;
        pthread_create(&threads[slot].thread, NULL, conn_main, (void *)slot);
    }
    close(listen_fd);
    reap(1);
    pthread_mutex_lock(&state_lock);
    cJSON_Delete(stats);
    pthread_mutex_unlock(&state_lock);
    if (ssl_ctx)
        SSL_CTX_free(ssl_ctx);
    free(host);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    return 0;
}
