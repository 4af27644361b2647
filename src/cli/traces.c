/*
 * `gyre traces [filters]`, `gyre traces show ID`, `gyre sessions show ID`:
 * the trace store read from a terminal.  The commands open the
 * SQLite store directly, as `gyre serve` names it, and read it through the
 * store's interface (store.h); WAL mode lets them read while gyre writes.
 * With --json they print the store's JSON as it is, for scripts; without,
 * a table that fits 120 columns, or one trace laid out field by field.
 *
 * Also here: the helpers the trace-reading commands share (cli.h).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/time.h"
#include "config/config.h"
#include "store/store.h"

/* The bounds on what one read may hold: the query API's (src/server/api.c). */
#define CLI_PAGE_MAX ((size_t)32 << 20)
#define CLI_TRACE_MAX ((size_t)160 << 20)
#define CLI_SESSION_MAX ((size_t)256 << 20)
/* A short id is looked up among this many of the newest traces (the store has no prefix index). */
#define CLI_PREFIX_SCAN 10000
#define CLI_PREFIX_MIN 6
/* How many hex digits of a trace id the table shows: its last ones, since an id starts with its time in
 * milliseconds (the calls of one minute share the first eight) and ends with random bits. */
#define CLI_SHORT_ID 8

const char gyre_traces_usage[] = "usage: gyre traces [FILTERS] [--limit N] [--cursor C] [--wide] [--json]\n"
                                 "       gyre traces show ID [--json]\n"
                                 "\n"
                                 "Lists stored traces, newest first: time (UTC), trace id, route,\n"
                                 "provider/model, status, latency and time to first token in ms, tokens in\n"
                                 "and out, cost in USD, session and agent.  Unknown values show as '-'.\n"
                                 "When there are more, the last line is the command for the next page.\n"
                                 "`show` prints one trace: its fields, each attempt, tokens and cost,\n"
                                 "metadata and tags, then the request and response bodies (JSON indented).\n"
                                 "ID is the x-gyre-trace-id, or its first 6 or more digits (looked up\n"
                                 "among the newest 10000 traces).\n"
                                 "\n"
                                 "Filters (they combine):\n"
                                 "  --since DURATION      started in the last DURATION: 30s, 15m, 1h, 24h, 7d, 2w\n"
                                 "  --from TIME           started at or after TIME: RFC 3339\n"
                                 "                        (2026-12-01T10:00:00Z) or unix seconds\n"
                                 "  --to TIME             started before TIME\n"
                                 "  --route NAME  --provider NAME  --model NAME\n"
                                 "  --agent NAME  --session ID  --user ID  --tag TAG\n"
                                 "  --key ID  --team NAME  the gateway key (gk_..., or a config key's id) and its team\n"
                                 "  --cluster ID          in this cluster of the newest clustering (gyre clusters)\n"
                                 "  --status N            exactly this HTTP status\n"
                                 "  --errors              status 400 or more\n"
                                 "  --min-latency-ms N    at least N ms\n"
                                 "  --text WORDS          every one of the words, in any order, in the prompt or the answer\n"
                                 "  --otel-trace-id ID    the calls of one W3C trace (the caller's traceparent)\n"
                                 "\n"
                                 "  --limit N             traces per page, 1 to 1000 (default 50)\n"
                                 "  --cursor C            the page after the one that printed C\n"
                                 "  --wide                full trace ids and uncut columns (wider than 120)\n"
                                 "  --json                the store's page JSON: {\"data\":[...],\"next_cursor\":...}\n"
                                 "  --db PATH             the SQLite trace store to read\n"
                                 "  --config FILE         read the store's path from FILE (store: {sqlite: PATH});\n"
                                 "                        without --db or --config: the embedded default, ./gyre.db\n"
                                 "  -h, --help            this text\n"
                                 "\n"
                                 "Exit status: 0, 1 when the store cannot be read or the trace is not\n"
                                 "found, 2 for a wrong command line.\n";

const char gyre_sessions_usage[] = "usage: gyre sessions show ID [--json] [--db PATH | --config FILE]\n"
                                   "\n"
                                   "Prints a session's trajectory: its calls (x-gyre-session: ID) oldest\n"
                                   "first, one line each, then the totals: calls, errors, tokens, cost and\n"
                                   "the time from the first call's start to the last one's end.  --json\n"
                                   "prints the store's JSON: {\"session\":ID,\"traces\":[...]} (at most 1000).\n"
                                   "--db and --config name the store as for `gyre traces`.\n";

/* ---- Shared helpers (cli.h). ---- */

int gyre_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", cmd, name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int gyre_cli_store_open(const char *cmd, const char *config_path, const char *db_path, gyre_store_t **out)
{
    gyre_config_t *c = NULL;
    const char *dsn = db_path;
    int rc = 1;
    *out = NULL;
    if (dsn == NULL) {
        gyre_config_errors_t errs = {0};
        c = config_path != NULL ? gyre_config_load_unresolved(config_path, &errs) : gyre_config_default(&errs);
        if (c == NULL) {
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "%s\n", errs.items[i]);
            fprintf(stderr, "%s: %zu error%s in the configuration\n", cmd, errs.count, errs.count == 1 ? "" : "s");
            gyre_config_errors_dispose(&errs);
            return 1;
        }
        if (c->store_dsn == NULL) {
            fprintf(stderr, "%s: %s configures no store (store: {sqlite: PATH}); pass --db PATH\n", cmd, c->source);
            goto out;
        }
        dsn = c->store_dsn;
    }
    /* A SQLite store is a file: the store's open creates a missing one, and a reader must not leave an empty
     * database behind a typo. */
    const char *path = strncmp(dsn, "sqlite:", 7) == 0 ? dsn + 7 : strstr(dsn, "://") == NULL ? dsn : NULL;
    struct stat st;
    if (path != NULL && strcmp(path, ":memory:") != 0 && stat(path, &st) != 0) {
        if (errno == ENOENT)
            fprintf(stderr, "%s: no trace store at %s: start gyre with store: {sqlite: %s}, or pass --db PATH\n", cmd,
                    path, path);
        else
            fprintf(stderr, "%s: cannot read the trace store %s: %s\n", cmd, path, strerror(errno));
        goto out;
    }
    if (path != NULL && strcmp(path, ":memory:") != 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s is a directory, not a trace store\n", cmd, path);
        goto out;
    }
    char err[512] = "";
    if (gyre_store_open(dsn, 0, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto out;
    }
    rc = 0;
out:
    gyre_config_free(c);
    return rc;
}

int gyre_cli_parse_duration(const char *s, int64_t *us)
{
    /* About 100 years: far past any trace, and its microseconds fit in 63 bits with room. */
    const int64_t max = (int64_t)100 * 366 * 86400 * 1000000;
    int64_t total = 0;
    if (*s == '\0')
        return -1;
    while (*s) {
        int64_t v = 0, unit;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            v = v * 10 + (*s - '0');
            if (v > 1000000000)
                return -1;
        }
        if (s == start)
            return -1;
        switch (*s++) {
        case 's': unit = 1000000; break;
        case 'm': unit = (int64_t)60 * 1000000; break;
        case 'h': unit = (int64_t)3600 * 1000000; break;
        case 'd': unit = (int64_t)86400 * 1000000; break;
        case 'w': unit = (int64_t)7 * 86400 * 1000000; break;
        default: return -1;
        }
        if (v > max / unit || total > max - v * unit)
            return -1;
        total += v * unit;
    }
    if (total <= 0)
        return -1;
    *us = total;
    return 0;
}

int gyre_cli_parse_time(const char *s, int64_t *us)
{
    const char *p = s;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 100000000000LL) /* past the year 5000 */
            return -1;
    }
    if (p != s && *p == '\0') {
        *us = v * 1000000;
        return 0;
    }
    /* Not all digits: RFC 3339, read as the query API reads it (its digits-only form is milliseconds, excluded above). */
    return gyre_time_parse(s, us);
}

int64_t gyre_cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gyre_cli_format_time(int64_t us, char *buf, size_t len)
{
    time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, len, "%" PRId64, us);
}

/* Display width of UTF-8 text: its code points (continuation bytes count nothing). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* The byte length of the first `w` code points of s. */
static size_t text_prefix(const char *s, size_t w)
{
    size_t i = 0, seen = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (seen == w)
                break;
            seen++;
        }
    }
    return i;
}

void gyre_cli_table_init(gyre_cli_table_t *t, size_t ncols, const char *const *headers, const char *align,
                         const char *shrink)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->headers = headers;
    t->align = align;
    t->shrink = shrink;
}

void gyre_cli_table_add(gyre_cli_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = gyre_realloc(t->cells, t->cap * t->ncols * sizeof(char *));
    }
    for (size_t c = 0; c < t->ncols; c++) {
        /* Cells are one line each: a newline or tab in a client's value would break the columns, and
         * another control byte could drive the terminal. */
        char *v = gyre_strdup(cells[c] != NULL ? cells[c] : "-");
        for (unsigned char *p = (unsigned char *)v; *p; p++) {
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
            else if (*p < 0x20 || *p == 0x7f)
                *p = '?';
        }
        t->cells[t->nrows * t->ncols + c] = v;
    }
    t->nrows++;
}

static void print_cell(FILE *out, const char *s, size_t width, char align, int last)
{
    size_t w = text_width(s);
    if (w > width) {
        fwrite(s, 1, text_prefix(s, width - 1), out);
        fputc('~', out);
        return;
    }
    if (align == 'r')
        fprintf(out, "%*s", (int)(width - w), "");
    fputs(s, out);
    if (align != 'r' && !last)
        fprintf(out, "%*s", (int)(width - w), "");
}

void gyre_cli_table_print(const gyre_cli_table_t *t, FILE *out, size_t max_width)
{
    size_t *width = gyre_calloc(t->ncols, sizeof(size_t));
    size_t total = 0;
    for (size_t c = 0; c < t->ncols; c++) {
        width[c] = text_width(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
        total += width[c] + (c ? 2 : 0);
    }
    /* Cut the widest shrinkable column one at a time, never below its header or 6, until the table fits. */
    while (max_width != 0 && total > max_width) {
        size_t best = t->ncols;
        for (size_t c = 0; c < t->ncols; c++) {
            size_t floor = text_width(t->headers[c]) > 6 ? text_width(t->headers[c]) : 6;
            if (t->shrink[c] && width[c] > floor && (best == t->ncols || width[c] > width[best]))
                best = c;
        }
        if (best == t->ncols)
            break;
        width[best]--;
        total--;
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            if (c)
                fputs("  ", out);
            print_cell(out, r == 0 ? t->headers[c] : t->cells[(r - 1) * t->ncols + c], width[c], t->align[c],
                       c + 1 == t->ncols);
        }
        fputc('\n', out);
    }
    free(width);
}

void gyre_cli_table_dispose(gyre_cli_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* ---- Reading the store's JSON. ---- */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* A number member; 0 when it is null or absent. */
static int jnum(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

static const char *or_dash(const char *s)
{
    return s[0] != '\0' ? s : "-";
}

/* A number member as `fmt` prints it after dividing by `scale`; "-" when it is null or absent. */
static void fmt_number(char *buf, size_t len, const cJSON *o, const char *key, const char *fmt, double scale)
{
    double v;
    if (jnum(o, key, &v))
        snprintf(buf, len, fmt, v / scale);
    else
        snprintf(buf, len, "-");
}

/* Milliseconds, one decimal, of a microseconds member. */
static void fmt_ms(char *buf, size_t len, const cJSON *o, const char *key)
{
    fmt_number(buf, len, o, key, "%.1f", 1000.0);
}

static void fmt_int(char *buf, size_t len, const cJSON *o, const char *key)
{
    fmt_number(buf, len, o, key, "%.0f", 1.0);
}

/* Cost in USD with 6 decimals (a millionth of a dollar is the smallest price step). */
static void fmt_cost(char *buf, size_t len, const cJSON *o, const char *key)
{
    fmt_number(buf, len, o, key, "%.6f", 1.0);
}

static void fmt_started(char *buf, size_t len, const cJSON *t)
{
    double v = 0;
    jnum(t, "started_us", &v);
    gyre_cli_format_time((int64_t)v, buf, len);
}

/* The time with its microseconds, for one trace's own page: "2026-12-01 10:00:00.123456". */
static void fmt_time_us(char *buf, size_t len, const cJSON *o, const char *key)
{
    double v = 0;
    char secs[32];
    jnum(o, key, &v);
    int64_t us = (int64_t)v;
    gyre_cli_format_time(us, secs, sizeof(secs));
    snprintf(buf, len, "%s.%06d", secs, (int)(((us % 1000000) + 1000000) % 1000000));
}

/*
 * Client-supplied text (a session id, a tag, a metadata value) reaches the
 * terminal: a control byte in it could move the cursor or rewrite the
 * screen, so each becomes '?'.  Bodies keep theirs: they print as JSON,
 * whose printer escapes them, or through print_body, which sanitises.
 */
static void sanitize_strings(cJSON *v)
{
    for (cJSON *c = v->child; c != NULL; c = c->next) {
        if (c->string != NULL && (strcmp(c->string, "request_body") == 0 || strcmp(c->string, "response_body") == 0))
            continue;
        if (cJSON_IsString(c)) {
            for (unsigned char *p = (unsigned char *)c->valuestring; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                    *p = '?';
        }
        if (c->string != NULL)
            for (unsigned char *p = (unsigned char *)c->string; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                    *p = '?';
        sanitize_strings(c);
    }
}

/* Parses the store's answer; a parse failure means the store and this tool disagree, which is worth saying. */
static cJSON *parse_answer(const char *cmd, const gyre_buf_t *b)
{
    cJSON *root = cJSON_ParseWithLength(b->base, b->len);
    if (root == NULL)
        fprintf(stderr, "%s: the store's answer is not JSON (%zu bytes)\n", cmd, b->len);
    else
        sanitize_strings(root);
    return root;
}

/* ---- The trace table (gyre traces, gyre sessions show). ---- */

enum {
    COL_TIME,
    COL_TRACE,
    COL_ROUTE,
    COL_TARGET,
    COL_STATUS,
    COL_LAT,
    COL_TTFT,
    COL_IN,
    COL_OUT,
    COL_COST,
    COL_WHO,
    NCOLS
};

static const char *const trace_headers[NCOLS] = {"TIME (UTC)", "TRACE",    "ROUTE",        "PROVIDER/MODEL",
                                                 "STATUS",     "LAT_MS",   "TTFT_MS",      "IN",
                                                 "OUT",        "COST_USD", "SESSION/AGENT"};
static const char trace_align[NCOLS + 1] = "lllllrrrrrl";
static const char trace_shrink[NCOLS] = {0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1};

static void add_trace_row(gyre_cli_table_t *tab, const cJSON *t, int wide)
{
    char time[32], id[40], target[512], status[16], lat[32], ttft[32], in[32], out[32], cost[48], who[512];
    double st = 0;
    fmt_started(time, sizeof(time), t);
    const char *tid = jstr(t, "trace_id");
    size_t tlen = strlen(tid);
    snprintf(id, sizeof(id), "%.32s", wide || tlen <= CLI_SHORT_ID ? tid : tid + tlen - CLI_SHORT_ID);
    const char *provider = jstr(t, "provider"), *model = jstr(t, "model");
    if (provider[0] == '\0' && model[0] == '\0')
        snprintf(target, sizeof(target), "-");
    else
        snprintf(target, sizeof(target), "%s/%s", or_dash(provider), or_dash(model));
    if (jnum(t, "status", &st))
        snprintf(status, sizeof(status), "%.0f", st);
    else
        snprintf(status, sizeof(status), "-");
    fmt_ms(lat, sizeof(lat), t, "latency_us");
    fmt_ms(ttft, sizeof(ttft), t, "ttft_us");
    fmt_int(in, sizeof(in), t, "prompt_tokens");
    fmt_int(out, sizeof(out), t, "completion_tokens");
    fmt_cost(cost, sizeof(cost), t, "cost_usd");
    const char *session = jstr(t, "session"), *agent = jstr(t, "agent");
    if (session[0] != '\0' && agent[0] != '\0')
        snprintf(who, sizeof(who), "%s/%s", session, agent);
    else if (session[0] != '\0')
        snprintf(who, sizeof(who), "%s", session);
    else if (agent[0] != '\0')
        snprintf(who, sizeof(who), "-/%s", agent);
    else
        snprintf(who, sizeof(who), "-");
    const char *cells[NCOLS] = {time, id, or_dash(jstr(t, "route")), target, status, lat, ttft, in, out, cost, who};
    gyre_cli_table_add(tab, cells);
}

/* Prints `a` so that a POSIX shell reads it back as one word. */
static void print_shell_word(FILE *out, const char *a)
{
    int plain = a[0] != '\0';
    for (const char *p = a; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,@%+", *p) != NULL;
    if (plain) {
        fputs(a, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = a; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

/* ---- gyre traces show ---- */

static int is_hex(const char *s, size_t *n)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    *n = i;
    return 1;
}

/*
 * Finds the one trace among the newest CLI_PREFIX_SCAN whose id ends with
 * `prefix` (the short id the table prints) or starts with it.  Returns 0 with the full id in `id` (33 bytes), 1 after printing
 * why on stderr (none, several, or the store failed).
 */
static int resolve_prefix(const char *cmd, gyre_store_t *s, const char *prefix, char *id)
{
    gyre_trace_query_t q = {0};
    gyre_buf_t page;
    char err[512] = "", cursor[80] = "";
    size_t plen = strlen(prefix), matches = 0, scanned = 0;
    int rc = 1;
    gyre_buf_init(&page, CLI_PAGE_MAX);
    q.limit = 1000;
    while (scanned < CLI_PREFIX_SCAN) {
        gyre_buf_reset(&page);
        q.cursor = cursor[0] ? cursor : NULL;
        if (gyre_store_query_traces(s, &q, &page, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s: %s\n", cmd, err);
            goto out;
        }
        cJSON *root = parse_answer(cmd, &page);
        if (root == NULL)
            goto out;
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "data"))
        {
            const char *tid = jstr(t, "trace_id");
            scanned++;
            size_t tlen = strlen(tid);
            int ends = tlen >= plen && memcmp(tid + tlen - plen, prefix, plen) == 0;
            if ((ends || strncmp(tid, prefix, plen) == 0) && matches++ == 0)
                snprintf(id, 33, "%s", tid);
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_cursor");
        if (cJSON_IsString(next))
            snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
        cJSON_Delete(root);
        if (!cJSON_IsString(next))
            break;
    }
    if (matches == 1)
        rc = 0;
    else if (matches == 0)
        fprintf(stderr, "%s: trace %s: not found\n", cmd, prefix);
    else
        fprintf(stderr, "%s: trace %s: ambiguous, %zu traces match it; give more digits\n", cmd, prefix, matches);
out:
    gyre_buf_dispose(&page);
    return rc;
}

/*
 * A number as the body most likely wrote it: whole numbers in full (cJSON's
 * printer turns 16-digit ids into exponents), others in the fewest digits
 * that read back the same.
 */
static const char *number_text(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "null");
        return buf;
    }
    if (v == floor(v) && fabs(v) < 1e17) {
        snprintf(buf, len, "%.0f", v);
        return buf;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* Appends v as JSON indented two spaces a level, each line after the first starting with `base` spaces. */
static void json_pretty(gyre_buf_t *b, const cJSON *v, int depth, int base)
{
    int open = cJSON_IsArray(v) || cJSON_IsObject(v);
    if (!open || v->child == NULL) {
        if (open) {
            gyre_buf_appends(b, cJSON_IsArray(v) ? "[]" : "{}");
            return;
        }
        if (cJSON_IsNumber(v)) {
            char num[40];
            gyre_buf_appends(b, number_text(v->valuedouble, num, sizeof(num)));
            return;
        }
        char *s = cJSON_PrintUnformatted(v);
        gyre_buf_appends(b, s != NULL ? s : "null");
        free(s);
        return;
    }
    gyre_buf_appends(b, cJSON_IsArray(v) ? "[\n" : "{\n");
    for (const cJSON *c = v->child; c != NULL; c = c->next) {
        gyre_buf_appendf(b, "%*s", base + 2 * (depth + 1), "");
        if (cJSON_IsObject(v)) {
            gyre_buf_append_json_string(b, c->string, strlen(c->string));
            gyre_buf_appends(b, ": ");
        }
        json_pretty(b, c, depth + 1, base);
        gyre_buf_appends(b, c->next != NULL ? ",\n" : "\n");
    }
    gyre_buf_appendf(b, "%*s%s", base + 2 * depth, "", cJSON_IsArray(v) ? "]" : "}");
}

static void print_body(FILE *out, const char *title, const cJSON *body)
{
    fprintf(out, "\n%s:\n", title);
    if (body == NULL || cJSON_IsNull(body)) {
        fputs("  - (not captured)\n", out);
        return;
    }
    if (cJSON_IsString(body)) {
        /* Not JSON: the text as it came, each line indented. */
        fputs("  ", out);
        for (const char *p = body->valuestring; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            fputc((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : ch, out);
            if (ch == '\n' && p[1] != '\0')
                fputs("  ", out);
        }
        fputc('\n', out);
        return;
    }
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)1 << 30);
    gyre_buf_appends(&b, "  ");
    json_pretty(&b, body, 0, 2);
    /* One check for every append of json_pretty: a body is printed whole or said to be too large. */
    if (gyre_buf_failed(&b) == 0)
        fwrite(b.base, 1, b.len, out);
    else
        fputs("  - (too large to print indented; gyre traces show --json prints it)", out);
    fputc('\n', out);
    gyre_buf_dispose(&b);
}

/* A score's value as the table shows it: its label (a category), else the number, else '-'. */
static void fmt_score_value(char *buf, size_t len, const cJSON *x)
{
    double v;
    const char *label = jstr(x, "label");
    if (label[0] != '\0')
        snprintf(buf, len, "%s", label);
    else if (jnum(x, "value", &v))
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "-");
}

/* The loop's members of a trace (issue 14): its feedback, its scores and its cluster. */
static void print_loop(FILE *out, const cJSON *t)
{
    static const char *const fhdr[] = {"NAME", "VALUE", "BY", "CREATED (UTC)", "COMMENT", "CORRECTION"};
    static const char *const shdr[] = {"NAME", "SOURCE", "VERSION", "VALUE", "COMMENT"};
    gyre_cli_table_t tab;
    const cJSON *x;
    int n = 0;
    gyre_cli_table_init(&tab, 6, fhdr, "llllll", (const char[]){0, 0, 0, 0, 1, 1});
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(t, "feedback"))
    {
        char value[64], created[48];
        fmt_score_value(value, sizeof(value), x);
        fmt_time_us(created, sizeof(created), x, "created_us");
        const char *cells[] = {or_dash(jstr(x, "name")), value,
                               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "session")) ? "session" : "trace",
                               created, or_dash(jstr(x, "comment")), or_dash(jstr(x, "correction"))};
        gyre_cli_table_add(&tab, cells);
        n++;
    }
    fprintf(out, "\nfeedback (%d):\n", n);
    if (n)
        gyre_cli_table_print(&tab, out, 0);
    gyre_cli_table_dispose(&tab);
    n = 0;
    gyre_cli_table_init(&tab, 5, shdr, "lllll", (const char[]){0, 0, 0, 0, 1});
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(t, "scores"))
    {
        char value[64];
        fmt_score_value(value, sizeof(value), x);
        const char *cells[] = {or_dash(jstr(x, "name")), or_dash(jstr(x, "source")), or_dash(jstr(x, "version")),
                               value, or_dash(jstr(x, "comment"))};
        gyre_cli_table_add(&tab, cells);
        n++;
    }
    fprintf(out, "\nscores (%d):\n", n);
    if (n)
        gyre_cli_table_print(&tab, out, 0);
    gyre_cli_table_dispose(&tab);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "cluster");
    double id;
    if (cJSON_IsObject(c) && jnum(c, "id", &id))
        fprintf(out, "\ncluster        %.0f (clustering run %s)\n", id, or_dash(jstr(c, "run")));
    else
        fputs("\ncluster        -\n", out);
}

static void print_trace(FILE *out, const cJSON *t)
{
    char time[48], end[48], lat[32], ttft[32], buf[4][48];
    double v = 0;
    fmt_time_us(time, sizeof(time), t, "started_us");
    fmt_time_us(end, sizeof(end), t, "ended_us");
    fmt_ms(lat, sizeof(lat), t, "latency_us");
    fmt_ms(ttft, sizeof(ttft), t, "ttft_us");

    fprintf(out, "trace          %s\n", jstr(t, "trace_id"));
    const char *otel = jstr(t, "otel_trace_id");
    if (otel[0] != '\0')
        fprintf(out, "otel trace     %s\n", otel);
    fprintf(out, "span           %s (parent %s)\n", or_dash(jstr(t, "span_id")), or_dash(jstr(t, "parent_span_id")));
    fprintf(out, "request id     %s\n", or_dash(jstr(t, "request_id")));
    fprintf(out, "started        %s UTC\n", time);
    fprintf(out, "ended          %s UTC\n", end);
    fprintf(out, "endpoint       %s%s\n", or_dash(jstr(t, "endpoint")),
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "stream")) ? " (stream)" : "");
    fprintf(out, "route          %s\n", or_dash(jstr(t, "route")));
    fprintf(out, "provider       %s\n", or_dash(jstr(t, "provider")));
    fprintf(out, "model          %s\n", or_dash(jstr(t, "model")));
    fmt_int(buf[0], sizeof(buf[0]), t, "status");
    fprintf(out, "status         %s\n", buf[0]);
    fprintf(out, "finish reason  %s\n", or_dash(jstr(t, "finish_reason")));
    fprintf(out, "cache hit      %s\n", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "cache_hit")) ? "yes" : "no");
    fprintf(out, "latency ms     %s\n", lat);
    fprintf(out, "ttft ms        %s\n", ttft);
    fmt_int(buf[0], sizeof(buf[0]), t, "prompt_tokens");
    fmt_int(buf[1], sizeof(buf[1]), t, "completion_tokens");
    fmt_int(buf[2], sizeof(buf[2]), t, "cached_tokens");
    fmt_int(buf[3], sizeof(buf[3]), t, "reasoning_tokens");
    fprintf(out, "tokens         prompt %s, completion %s, cached %s, reasoning %s\n", buf[0], buf[1], buf[2], buf[3]);
    fmt_cost(buf[0], sizeof(buf[0]), t, "cost_usd");
    fprintf(out, "cost usd       %s\n", buf[0]);
    fprintf(out, "session        %s\n", or_dash(jstr(t, "session")));
    fprintf(out, "agent          %s\n", or_dash(jstr(t, "agent")));
    fprintf(out, "user           %s\n", or_dash(jstr(t, "user")));

    fputs("tags           ", out);
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(t, "tags"))
    {
        if (cJSON_IsString(x))
            fprintf(out, "%s%s", n++ ? ", " : "", x->valuestring);
    }
    fputs(n ? "\n" : "-\n", out);
    fputs("meta           ", out);
    n = 0;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(t, "meta"))
    {
        if (cJSON_IsString(x))
            fprintf(out, "%s%s=%s", n++ ? ", " : "", x->string, x->valuestring);
    }
    fputs(n ? "\n" : "-\n", out);

    static const char *const hdr[] = {"#", "PROVIDER", "MODEL", "KEY", "STATUS", "LAT_MS", "ERROR"};
    static const char align[] = "rlllrrl", shrink[] = {0, 1, 1, 1, 0, 0, 1};
    gyre_cli_table_t tab;
    gyre_cli_table_init(&tab, 7, hdr, align, shrink);
    n = 0;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(t, "attempts"))
    {
        char num[16], st[16], alat[32];
        snprintf(num, sizeof(num), "%d", ++n);
        if (jnum(x, "status", &v) && v != 0)
            snprintf(st, sizeof(st), "%.0f", v);
        else
            snprintf(st, sizeof(st), "-"); /* none came: a connect error or a timeout */
        fmt_ms(alat, sizeof(alat), x, "latency_us");
        const char *cells[] = {
            num,  or_dash(jstr(x, "provider")), or_dash(jstr(x, "model")), or_dash(jstr(x, "key_id")), st,
            alat, or_dash(jstr(x, "error"))};
        gyre_cli_table_add(&tab, cells);
    }
    fprintf(out, "\nattempts (%d):\n", n);
    if (n)
        gyre_cli_table_print(&tab, out, 0);
    gyre_cli_table_dispose(&tab);

    print_loop(out, t);
    print_body(out, "request body", cJSON_GetObjectItemCaseSensitive(t, "request_body"));
    print_body(out, "response body", cJSON_GetObjectItemCaseSensitive(t, "response_body"));
}

typedef struct store_args {
    const char *config, *db;
    int json;
} store_args_t;

/* Reads --config, --db and --json; 1 when argv[*i] was one of them, 0 when not, -1 on a missing value. */
static int store_opt(const char *cmd, int argc, char **argv, int *i, store_args_t *a)
{
    int r;
    if (strcmp(argv[*i], "--json") == 0) {
        a->json = 1;
        return 1;
    }
    if ((r = gyre_cli_opt(cmd, argc, argv, i, "--config", &a->config)) != 0 ||
        (r = gyre_cli_opt(cmd, argc, argv, i, "-c", &a->config)) != 0 ||
        (r = gyre_cli_opt(cmd, argc, argv, i, "--db", &a->db)) != 0)
        return r;
    return 0;
}

static int bad_option(const char *cmd, const char *a, const char *usage)
{
    fprintf(stderr, "%s: unknown option '%s'\n\n%s", cmd, a, usage);
    return 2;
}

static int open_store(const char *cmd, const store_args_t *a, gyre_store_t **s)
{
    if (a->config != NULL && a->db != NULL) {
        fprintf(stderr, "%s: --db and --config both name the store; pass one\n", cmd);
        return 2;
    }
    return gyre_cli_store_open(cmd, a->config, a->db, s);
}

/*
 * The arguments of a `... show ID` command from argv[start]: the store flags and one id.  Returns -1 to go
 * on with `*id` set, or the exit status (0 after --help, 2 after a mistake, which it names).
 */
static int show_args(const char *cmd, int argc, char **argv, int start, const char *what, const char *usage,
                     store_args_t *a, const char **id)
{
    *id = NULL;
    for (int i = start; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if ((r = store_opt(cmd, argc, argv, &i, a)) != 0) {
            if (r < 0)
                return 2;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return bad_option(cmd, argv[i], usage);
        } else if (*id == NULL) {
            *id = argv[i];
        } else {
            fprintf(stderr, "%s: one %s id at a time, got '%s' and '%s'\n", cmd, what, *id, argv[i]);
            return 2;
        }
    }
    if (*id == NULL || (*id)[0] == '\0') {
        fprintf(stderr, "%s: which %s? usage: %s ID [--json]\n", cmd, what, cmd);
        return 2;
    }
    return -1;
}

static int cmd_traces_show(int argc, char **argv)
{
    static const char cmd[] = "gyre traces show";
    store_args_t a = {0};
    const char *id;
    int done = show_args(cmd, argc, argv, 0, "trace", gyre_traces_usage, &a, &id);
    if (done >= 0)
        return done;

    gyre_store_t *s = NULL;
    int rc = open_store(cmd, &a, &s);
    if (rc != 0)
        return rc;
    char full[33] = "", err[512] = "";
    size_t n = 0;
    rc = 1;
    if (!is_hex(id, &n) || n > 32 || n < CLI_PREFIX_MIN) {
        fprintf(stderr, "%s: trace %s: not found (ids are 32 hex digits, as x-gyre-trace-id; a short one needs %d)\n",
                cmd, id, CLI_PREFIX_MIN);
        goto out;
    }
    if (n == 32)
        memcpy(full, id, 33);
    else if (resolve_prefix(cmd, s, id, full) != 0)
        goto out;

    gyre_buf_t b;
    gyre_buf_init(&b, CLI_TRACE_MAX);
    int r = gyre_store_get_trace(s, full, &b, err, sizeof(err));
    if (r == -ENOENT) {
        fprintf(stderr, "%s: trace %s: not found\n", cmd, id);
    } else if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
    } else if (a.json) {
        fwrite(b.base, 1, b.len, stdout);
        fputc('\n', stdout);
        rc = 0;
    } else {
        cJSON *t = parse_answer(cmd, &b);
        if (t != NULL) {
            print_trace(stdout, t);
            cJSON_Delete(t);
            rc = 0;
        }
    }
    gyre_buf_dispose(&b);
out:
    gyre_store_close(s);
    return rc;
}

/* ---- gyre traces ---- */

/* A whole number in [lo, hi], digits only.  0, or -1. */
static int parse_bounded(const char *s, long long lo, long long hi, long long *out)
{
    long long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > hi)
            return -1;
    }
    if (v < lo)
        return -1;
    *out = v;
    return 0;
}

int gyre_cmd_traces(int argc, char **argv)
{
    static const char cmd[] = "gyre traces";
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return cmd_traces_show(argc - 1, argv + 1);

    gyre_trace_query_t q = {0};
    store_args_t a = {0};
    const char *since = NULL, *from = NULL, *to = NULL, *v = NULL;
    int wide = 0;
    long long num;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int r;
#define STRING_OPT(name, field)                                                                                        \
    if ((r = gyre_cli_opt(cmd, argc, argv, &i, name, &v)) != 0) {                                                      \
        if (r < 0)                                                                                                     \
            return 2;                                                                                                  \
        field = v;                                                                                                     \
        continue;                                                                                                      \
    }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(gyre_traces_usage, stdout);
            return 0;
        }
        if ((r = store_opt(cmd, argc, argv, &i, &a)) != 0) {
            if (r < 0)
                return 2;
            continue;
        }
        STRING_OPT("--since", since)
        STRING_OPT("--from", from)
        STRING_OPT("--to", to)
        STRING_OPT("--route", q.route)
        STRING_OPT("--provider", q.provider)
        STRING_OPT("--model", q.model)
        STRING_OPT("--agent", q.agent)
        STRING_OPT("--key", q.key_id)
        STRING_OPT("--team", q.team)
        STRING_OPT("--session", q.session)
        STRING_OPT("--user", q.user)
        STRING_OPT("--tag", q.tag)
        STRING_OPT("--text", q.text)
        STRING_OPT("--cursor", q.cursor)
        STRING_OPT("--otel-trace-id", q.otel_trace_id)
#undef STRING_OPT
        if (strcmp(arg, "--errors") == 0) {
            q.errors_only = 1;
        } else if (strcmp(arg, "--wide") == 0) {
            wide = 1;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--status", &v)) != 0) {
            if (r < 0)
                return 2;
            if (parse_bounded(v, 100, 599, &num) != 0) {
                fprintf(stderr, "%s: --status must be an HTTP status from 100 to 599, got '%s'\n", cmd, v);
                return 2;
            }
            q.status = (int)num;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--min-latency-ms", &v)) != 0) {
            if (r < 0)
                return 2;
            if (parse_bounded(v, 0, 1000000000000LL, &num) != 0) {
                fprintf(stderr, "%s: --min-latency-ms must be a whole number of milliseconds, got '%s'\n", cmd, v);
                return 2;
            }
            q.min_latency_us = (int64_t)num * 1000;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--cluster", &v)) != 0) {
            if (r < 0)
                return 2;
            if (parse_bounded(v, 0, 2147483647LL, &num) != 0) {
                fprintf(stderr, "%s: --cluster must be a cluster's id (a whole number), got '%s'\n", cmd, v);
                return 2;
            }
            q.has_cluster = 1;
            q.cluster = (int32_t)num;
        } else if ((r = gyre_cli_opt(cmd, argc, argv, &i, "--limit", &v)) != 0) {
            if (r < 0)
                return 2;
            if (parse_bounded(v, 1, 1000, &num) != 0) {
                fprintf(stderr, "%s: --limit must be a whole number from 1 to 1000, got '%s'\n", cmd, v);
                return 2;
            }
            q.limit = (size_t)num;
        } else if (arg[0] == '-') {
            return bad_option(cmd, arg, gyre_traces_usage);
        } else {
            fprintf(stderr, "%s: unexpected argument '%s' (did you mean `gyre traces show %s`?)\n", cmd, arg, arg);
            return 2;
        }
    }
    if (since != NULL && from != NULL) {
        fprintf(stderr, "%s: --since and --from both set the start; pass one\n", cmd);
        return 2;
    }
    if (since != NULL) {
        int64_t d;
        if (gyre_cli_parse_duration(since, &d) != 0) {
            fprintf(stderr, "%s: --since must be a duration such as 30s, 15m, 1h, 24h or 7d, got '%s'\n", cmd, since);
            return 2;
        }
        q.from_us = gyre_cli_now_us() - d;
    }
    if (from != NULL && gyre_cli_parse_time(from, &q.from_us) != 0) {
        fprintf(stderr, "%s: --from must be an RFC 3339 time (2026-12-01T10:00:00Z) or unix seconds, got '%s'\n", cmd,
                from);
        return 2;
    }
    if (to != NULL && gyre_cli_parse_time(to, &q.to_us) != 0) {
        fprintf(stderr, "%s: --to must be an RFC 3339 time (2026-12-01T10:00:00Z) or unix seconds, got '%s'\n", cmd,
                to);
        return 2;
    }
    if (q.from_us != 0 && q.to_us != 0 && q.to_us <= q.from_us) {
        fprintf(stderr, "%s: --to must be later than the start\n", cmd);
        return 2;
    }

    gyre_store_t *s = NULL;
    int rc = open_store(cmd, &a, &s);
    if (rc != 0)
        return rc;
    char err[512] = "";
    gyre_buf_t b;
    gyre_buf_init(&b, CLI_PAGE_MAX);
    int r = gyre_store_query_traces(s, &q, &b, err, sizeof(err));
    rc = 1;
    if (r == -EINVAL) {
        /* What only the store can check: the cursor's shape, the text's length. */
        fprintf(stderr, "%s: --%s\n", cmd, err);
        rc = 2;
    } else if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
    } else if (a.json) {
        fwrite(b.base, 1, b.len, stdout);
        fputc('\n', stdout);
        rc = 0;
    } else {
        cJSON *root = parse_answer(cmd, &b);
        if (root != NULL) {
            gyre_cli_table_t tab;
            gyre_cli_table_init(&tab, NCOLS, trace_headers, trace_align, trace_shrink);
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "data")) add_trace_row(&tab, t, wide);
            if (tab.nrows == 0)
                puts("no traces");
            else
                gyre_cli_table_print(&tab, stdout, wide ? 0 : GYRE_CLI_WIDTH);
            gyre_cli_table_dispose(&tab);
            const cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_cursor");
            if (cJSON_IsString(next)) {
                /* The same command with the next page's cursor, ready to paste. */
                fputs("more: gyre traces", stdout);
                for (int i = 0; i < argc; i++) {
                    if (strcmp(argv[i], "--cursor") == 0) {
                        i++;
                        continue;
                    }
                    if (strncmp(argv[i], "--cursor=", 9) == 0)
                        continue;
                    fputc(' ', stdout);
                    print_shell_word(stdout, argv[i]);
                }
                fputs(" --cursor ", stdout);
                print_shell_word(stdout, next->valuestring);
                fputc('\n', stdout);
            }
            cJSON_Delete(root);
            rc = 0;
        }
    }
    gyre_buf_dispose(&b);
    gyre_store_close(s);
    return rc;
}

/* ---- gyre sessions show ---- */

int gyre_cmd_sessions(int argc, char **argv)
{
    static const char cmd[] = "gyre sessions show";
    if (argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
        fputs(gyre_sessions_usage, stdout);
        return 0;
    }
    if (argc < 1 || strcmp(argv[0], "show") != 0) {
        fprintf(stderr, "gyre sessions: expected `show ID`%s%s%s\n\n%s", argc ? ", got '" : "", argc ? argv[0] : "",
                argc ? "'" : "", gyre_sessions_usage);
        return 2;
    }
    store_args_t a = {0};
    const char *id;
    int done = show_args(cmd, argc, argv, 1, "session", gyre_sessions_usage, &a, &id);
    if (done >= 0)
        return done;
    gyre_store_t *s = NULL;
    int rc = open_store(cmd, &a, &s);
    if (rc != 0)
        return rc;
    char err[512] = "";
    gyre_buf_t b;
    gyre_buf_init(&b, CLI_SESSION_MAX);
    int r = gyre_store_get_session(s, id, &b, err, sizeof(err));
    rc = 1;
    if (r == -ENOENT) {
        fprintf(stderr, "%s: session %s: not found\n", cmd, id);
    } else if (r != 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
    } else if (a.json) {
        fwrite(b.base, 1, b.len, stdout);
        fputc('\n', stdout);
        rc = 0;
    } else if (r == 0) {
        cJSON *root = parse_answer(cmd, &b);
        if (root != NULL) {
            gyre_cli_table_t tab;
            gyre_cli_table_init(&tab, NCOLS, trace_headers, trace_align, trace_shrink);
            const cJSON *t;
            double calls = 0, errors = 0, in = 0, out = 0, cost = 0, first = 0, last = 0, x;
            int in_known = 0, out_known = 0, cost_known = 0, cost_unknown = 0;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "traces"))
            {
                add_trace_row(&tab, t, 0);
                if (jnum(t, "status", &x) && x >= 400)
                    errors++;
                if (jnum(t, "prompt_tokens", &x))
                    in += x, in_known = 1;
                if (jnum(t, "completion_tokens", &x))
                    out += x, out_known = 1;
                if (jnum(t, "cost_usd", &x))
                    cost += x, cost_known = 1;
                else
                    cost_unknown = 1;
                if (jnum(t, "started_us", &x) && (calls == 0 || x < first))
                    first = x;
                if (jnum(t, "ended_us", &x) && x > last)
                    last = x;
                calls++;
            }
            printf("session %s: %.0f call%s, oldest first\n\n", id, calls, calls == 1 ? "" : "s");
            gyre_cli_table_print(&tab, stdout, GYRE_CLI_WIDTH);
            gyre_cli_table_dispose(&tab);
            char sin[32] = "-", sout[32] = "-", scost[48] = "-";
            if (in_known)
                snprintf(sin, sizeof(sin), "%.0f", in);
            if (out_known)
                snprintf(sout, sizeof(sout), "%.0f", out);
            /* A sum with an unknown part is a floor, and says so. */
            if (cost_known)
                snprintf(scost, sizeof(scost), "%.6f%s", cost, cost_unknown ? " (some unknown)" : "");
            printf("\ntotal: %.0f call%s, %.0f error%s, tokens in %s out %s, cost_usd %s, %.1f ms first start to last "
                   "end\n",
                   calls, calls == 1 ? "" : "s", errors, errors == 1 ? "" : "s", sin, sout, scost,
                   (last - first) / 1000.0);
            cJSON_Delete(root);
            rc = 0;
        }
    }
    gyre_buf_dispose(&b);
    gyre_store_close(s);
    return rc;
}
