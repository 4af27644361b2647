/* Datasets: the lines, the writer and the readers (dataset.h). */
#include "loop/dataset.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/alloc.h"
#include "loop/ftcheck.h"
#include "trace/redact.h"

const char *const gyre_dataset_files[GYRE_DATASET_NFILES] = {"train.jsonl", "heldout.jsonl", "preference.jsonl"};

enum { F_TRAIN = 0, F_HELDOUT = 1, F_PREFERENCE = 2 };

/* A manifest's first line (id, created and the totals) is read alone by the listing: it is at most this long. */
#define MANIFEST_HEAD_MAX ((size_t)64 << 10)
/* A manifest read whole (show, the API): the provenance of 10M examples is about 1.5 GiB; 256 MiB is 1.5M. */
#define MANIFEST_MAX ((size_t)256 << 20)
/* A temporary folder older than this is a crashed writer's, removed by the next write. */
#define STALE_TMP_SECONDS 3600

/* ---- Messages in the fixed shape. ---- */

/* A content value as one string: a string as it is, text parts joined by newlines; NULL for null, absent or
 * parts without text (the caller decides what that means for the role). */
static char *content_text(const cJSON *content)
{
    if (cJSON_IsString(content))
        return gyre_strdup(content->valuestring);
    if (!cJSON_IsArray(content))
        return NULL;
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_DATASET_LINE_MAX);
    int any = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(text))
            continue;
        if (any)
            gyre_buf_append(&b, "\n", 1);
        gyre_buf_appends(&b, text->valuestring);
        any = 1;
    }
    char *s = any && !gyre_buf_failed(&b) ? gyre_strdup(b.base) : NULL;
    gyre_buf_dispose(&b);
    return s;
}

/* One tool call in OpenAI's shape ({id, type: function, function: {name, arguments as a JSON string}}), or NULL
 * when it has no function name. */
static cJSON *norm_tool_call(const cJSON *tc)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_AddStringToObject(o, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(o, "function");
    cJSON_AddStringToObject(f, "name", name->valuestring);
    if (cJSON_IsString(args)) {
        cJSON_AddStringToObject(f, "arguments", args->valuestring);
    } else if (args != NULL && !cJSON_IsNull(args)) {
        /* Some clients send the arguments as an object; OpenAI's format wants the JSON text. */
        char *s = cJSON_PrintUnformatted(args);
        cJSON_AddStringToObject(f, "arguments", s != NULL ? s : "{}");
        cJSON_free(s);
    } else {
        cJSON_AddStringToObject(f, "arguments", "{}");
    }
    return o;
}

/*
 * One message in the fixed shape: role, content, name, tool_calls, tool_call_id, in that order, and nothing
 * else.  An assistant message with tool calls and no text has no content member (OpenAI's format allows
 * either); any other message without text gets "" (a tool's empty result is still an answer to its call).
 */
static cJSON *norm_message(const cJSON *m, const char *content_override, const char *where, char *err,
                           size_t errlen)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role)) {
        gyre_errf(err, errlen, "%s: a message has no role", where);
        return NULL;
    }
    const char *r = role->valuestring;
    int assistant = strcmp(r, "assistant") == 0, tool = strcmp(r, "tool") == 0;
    /* OpenAI's "developer" is its newer name for the system message; fine-tuning takes only "system". */
    if (strcmp(r, "developer") == 0)
        r = "system";
    else if (!assistant && !tool && strcmp(r, "system") != 0 && strcmp(r, "user") != 0) {
        gyre_errf(err, errlen, "%s: a message's role '%.32s' is none of system, user, assistant, tool", where, r);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", r);
    cJSON *calls = NULL;
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    if (assistant && content_override == NULL && cJSON_IsArray(tcs) && cJSON_GetArraySize(tcs) > 0) {
        calls = cJSON_CreateArray();
        const cJSON *tc;
        cJSON_ArrayForEach(tc, tcs)
        {
            cJSON *n = norm_tool_call(tc);
            if (n != NULL)
                cJSON_AddItemToArray(calls, n);
        }
        if (cJSON_GetArraySize(calls) == 0) {
            cJSON_Delete(calls);
            calls = NULL;
        }
    }
    char *text = content_override != NULL ? gyre_strdup(content_override)
                                          : content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
    if (text != NULL || calls == NULL)
        cJSON_AddStringToObject(o, "content", text != NULL ? text : "");
    free(text);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (cJSON_IsString(name) && name->valuestring[0] != '\0' && !tool)
        cJSON_AddStringToObject(o, "name", name->valuestring);
    if (calls != NULL)
        cJSON_AddItemToObject(o, "tool_calls", calls);
    if (tool) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        cJSON_AddStringToObject(o, "tool_call_id", cJSON_IsString(id) ? id->valuestring : "");
    }
    return o;
}

/* The request's messages in the fixed shape, as a new array; NULL with err set. */
static cJSON *norm_messages(const char *messages_json, char *err, size_t errlen)
{
    cJSON *in = messages_json != NULL ? cJSON_Parse(messages_json) : NULL;
    if (!cJSON_IsArray(in)) {
        cJSON_Delete(in);
        gyre_errf(err, errlen, "messages: the request's messages are not a JSON array");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, in)
    {
        char where[48];
        snprintf(where, sizeof(where), "messages[%d]", i++);
        cJSON *n = norm_message(m, NULL, where, err, errlen);
        if (n == NULL) {
            cJSON_Delete(in);
            cJSON_Delete(out);
            return NULL;
        }
        cJSON_AddItemToArray(out, n);
    }
    cJSON_Delete(in);
    return out;
}

/* The request's tools, when it had any: the array as it is (function definitions). */
static cJSON *parse_tools(const char *tools_json)
{
    if (tools_json == NULL)
        return NULL;
    cJSON *t = cJSON_Parse(tools_json);
    if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* An assistant answer (corpus.h's shape) in the fixed shape, or the correction as one; NULL with err set. */
static cJSON *norm_answer(const char *answer_json, const char *correction, const char *where, char *err,
                          size_t errlen)
{
    if (correction != NULL) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", "assistant");
        cJSON_AddStringToObject(o, "content", correction);
        return o;
    }
    cJSON *a = answer_json != NULL ? cJSON_Parse(answer_json) : NULL;
    if (!cJSON_IsObject(a)) {
        cJSON_Delete(a);
        gyre_errf(err, errlen, "%s: the call has no answer", where);
        return NULL;
    }
    cJSON *n = norm_message(a, NULL, where, err, errlen);
    cJSON_Delete(a);
    if (n != NULL && strcmp(cJSON_GetObjectItemCaseSensitive(n, "role")->valuestring, "assistant") != 0) {
        cJSON_Delete(n);
        gyre_errf(err, errlen, "%s: the answer is not an assistant message", where);
        return NULL;
    }
    return n;
}

/* Prints `line` compactly, redacted, with its '\n', to out. */
static int emit(cJSON *line, unsigned redact, gyre_buf_t *out, char *err, size_t errlen)
{
    char *s = cJSON_PrintUnformatted(line);
    if (s == NULL) {
        gyre_errf(err, errlen, "out of memory printing a line");
        return -ENOMEM;
    }
    size_t n = strlen(s);
    int r = 0;
    if (n >= GYRE_DATASET_LINE_MAX) {
        gyre_errf(err, errlen, "the line would be %zu bytes, over the %zu-byte bound", n, GYRE_DATASET_LINE_MAX);
        r = -E2BIG;
    } else if (redact != 0) {
        /* The line is JSON: redact.h's scanner keeps every string a valid string (a match never holds a quote,
         * a backslash or part of an escape), so the redacted line is still the same JSON shape. */
        size_t cap = gyre_redact_bound(n) + 1;
        char *red = gyre_malloc(cap);
        size_t m = gyre_redact(redact, s, n, red, cap, NULL);
        r = gyre_buf_append(out, red, m);
        free(red);
    } else {
        r = gyre_buf_append(out, s, n);
    }
    if (r == 0)
        r = gyre_buf_append(out, "\n", 1);
    if (r == -E2BIG)
        gyre_errf(err, errlen, "the line is over the output's bound");
    cJSON_free(s);
    return r;
}

int gyre_dataset_sft_line(const gyre_example_t *ex, const char *correction, unsigned redact, gyre_buf_t *out,
                          char *err, size_t errlen)
{
    cJSON *msgs = norm_messages(ex->messages_json, err, errlen);
    if (msgs == NULL)
        return -EINVAL;
    cJSON *ans = norm_answer(ex->answer_json, correction, "answer", err, errlen);
    if (ans == NULL) {
        cJSON_Delete(msgs);
        return -EINVAL;
    }
    cJSON_AddItemToArray(msgs, ans);
    cJSON *line = cJSON_CreateObject();
    cJSON_AddItemToObject(line, "messages", msgs);
    cJSON *tools = parse_tools(ex->tools_json);
    if (tools != NULL)
        cJSON_AddItemToObject(line, "tools", tools);
    int r = emit(line, redact, out, err, errlen);
    cJSON_Delete(line);
    return r;
}

/* Whether an output message has text (OpenAI's DPO takes text outputs only). */
static int has_text(const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    return cJSON_IsString(c) && c->valuestring[0] != '\0' && cJSON_GetObjectItemCaseSensitive(m, "tool_calls") == NULL;
}

int gyre_dataset_preference_line(const gyre_example_t *ex, const char *preferred_json, const char *preferred_text,
                                 const char *non_preferred_json, unsigned redact, gyre_buf_t *out, char *err,
                                 size_t errlen)
{
    cJSON *msgs = norm_messages(ex->messages_json, err, errlen);
    if (msgs == NULL)
        return -EINVAL;
    cJSON *pref = norm_answer(preferred_json, preferred_text, "preferred_output", err, errlen);
    cJSON *non = pref != NULL ? norm_answer(non_preferred_json, NULL, "non_preferred_output", err, errlen) : NULL;
    int r = 0;
    if (pref == NULL || non == NULL) {
        r = -EINVAL;
    } else if (!has_text(pref) || !has_text(non)) {
        gyre_errf(err, errlen, "%s: OpenAI's preference format takes text outputs only (this one has %s)",
                !has_text(pref) ? "preferred_output" : "non_preferred_output", "no text, or tool calls");
        r = -EINVAL;
    } else {
        const cJSON *pc = cJSON_GetObjectItemCaseSensitive(pref, "content"),
                    *nc = cJSON_GetObjectItemCaseSensitive(non, "content");
        if (strcmp(pc->valuestring, nc->valuestring) == 0) {
            gyre_errf(err, errlen, "preferred_output: the same text as non_preferred_output: no preference to learn");
            r = -EINVAL;
        }
    }
    if (r != 0) {
        cJSON_Delete(msgs);
        cJSON_Delete(pref);
        cJSON_Delete(non);
        return r;
    }
    cJSON *line = cJSON_CreateObject();
    cJSON *input = cJSON_AddObjectToObject(line, "input");
    cJSON_AddItemToObject(input, "messages", msgs);
    cJSON *tools = parse_tools(ex->tools_json);
    if (tools != NULL)
        cJSON_AddItemToObject(input, "tools", tools);
    cJSON *pa = cJSON_AddArrayToObject(line, "preferred_output");
    cJSON_AddItemToArray(pa, pref);
    cJSON *na = cJSON_AddArrayToObject(line, "non_preferred_output");
    cJSON_AddItemToArray(na, non);
    r = emit(line, redact, out, err, errlen);
    cJSON_Delete(line);
    return r;
}

/* ---- The writer. ---- */

/* What the manifest says of one line. */
typedef struct prov {
    char trace_id[33];
    char other[33]; /* a score contrast's non-preferred trace ("" otherwise) */
    char *session;
    int32_t cluster;
    uint8_t file;
    uint8_t correction;
} prov_t;

/* One score name's values over the dataset's examples (for its distribution), and its scorer's version. */
typedef struct score_dist {
    char *name, *version;
    int source;
    double *v;
    size_t n, cap;
} score_dist_t;

struct gyre_dataset_writer {
    char *dir, *tmp, *spec, *curation;
    unsigned redact;
    FILE *f[GYRE_DATASET_NFILES];
    crypto_generichash_state h[GYRE_DATASET_NFILES];
    uint64_t bytes[GYRE_DATASET_NFILES];
    size_t lines[GYRE_DATASET_NFILES];
    size_t skipped, corrections;
    prov_t *prov;
    size_t nprov, capprov;
    score_dist_t *scores;
    size_t nscores;
    gyre_buf_t line;
    /* Every line is checked against OpenAI's format before it is written (ftcheck.h): what the traffic held
     * that the format refuses (a tool message answering no call, say) is left out and counted, so an export
     * always passes `gyre datasets validate`. */
    gyre_ftcheck_t check[2];
};

static int mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Removes a folder of plain files (a dataset's temporary folder: it holds nothing else). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[4096 + 256];
            snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

/* A crashed writer's folders: ".tmp-" ones over an hour old (a younger one may be another writer's, at work). */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".tmp-", 5) != 0)
            continue;
        char p[4096 + 256];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && now - st.st_mtime > STALE_TMP_SECONDS)
            remove_tree(p);
    }
    closedir(d);
}

int gyre_dataset_begin(const char *dir, const char *spec_text, unsigned redact, gyre_dataset_writer_t **out,
                       char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        gyre_errf(err, errlen, "libsodium could not be initialised");
        return -EIO;
    }
    int r = mkdir_p(dir);
    if (r != 0) {
        gyre_errf(err, errlen, "datasets: cannot make %s: %s", dir, strerror(-r));
        return r;
    }
    remove_stale(dir);
    gyre_dataset_writer_t *w = gyre_calloc(1, sizeof(*w));
    w->dir = gyre_strdup(dir);
    w->spec = gyre_strdup(spec_text != NULL ? spec_text : "");
    w->redact = redact;
    gyre_buf_init(&w->line, GYRE_DATASET_LINE_MAX + 1);
    gyre_ftcheck_init(&w->check[0], GYRE_FT_OPENAI, 0, 0);
    gyre_ftcheck_init(&w->check[1], GYRE_FT_PREFERENCE, 0, 0);
    size_t tlen = strlen(dir) + 64;
    w->tmp = gyre_malloc(tlen);
    snprintf(w->tmp, tlen, "%s/.tmp-%ld-%08" PRIx32, dir, (long)getpid(), randombytes_random());
    if (mkdir(w->tmp, 0700) != 0) {
        r = -errno;
        gyre_errf(err, errlen, "datasets: cannot make %s: %s", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        gyre_dataset_abort(w);
        return r;
    }
    for (int i = 0; i < GYRE_DATASET_NFILES; i++) {
        char p[4096 + 64];
        snprintf(p, sizeof(p), "%s/%s", w->tmp, gyre_dataset_files[i]);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        w->f[i] = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (w->f[i] == NULL) {
            r = -errno;
            gyre_errf(err, errlen, "datasets: cannot write %s: %s", p, strerror(errno));
            if (fd >= 0)
                close(fd);
            gyre_dataset_abort(w);
            return r;
        }
        crypto_generichash_init(&w->h[i], NULL, 0, crypto_generichash_BYTES);
    }
    *out = w;
    return 0;
}

static void note_scores(gyre_dataset_writer_t *w, const gyre_example_t *ex)
{
    for (size_t i = 0; i < ex->nscores; i++) {
        const gyre_example_score_t *s = &ex->scores[i];
        if (s->name == NULL || isnan(s->value))
            continue;
        score_dist_t *d = NULL;
        for (size_t j = 0; j < w->nscores && d == NULL; j++)
            if (strcmp(w->scores[j].name, s->name) == 0)
                d = &w->scores[j];
        if (d == NULL) {
            w->scores = gyre_realloc(w->scores, (w->nscores + 1) * sizeof(*w->scores));
            d = &w->scores[w->nscores++];
            memset(d, 0, sizeof(*d));
            d->name = gyre_strdup(s->name);
            d->version = gyre_strdup(s->version != NULL ? s->version : "");
            d->source = s->source;
        }
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->v = gyre_realloc(d->v, d->cap * sizeof(*d->v));
        }
        d->v[d->n++] = s->value;
    }
}

/* Writes the line in w->line to file `fi` and records its provenance. */
static int put_line(gyre_dataset_writer_t *w, int fi, const gyre_example_t *ex, const char *other, int correction,
                    char *err, size_t errlen)
{
    if (w->nprov >= GYRE_DATASET_EXAMPLES_MAX) {
        gyre_errf(err, errlen, "a dataset holds at most %u examples", GYRE_DATASET_EXAMPLES_MAX);
        return -E2BIG;
    }
    gyre_ftcheck_t *c = &w->check[fi == F_PREFERENCE];
    gyre_buf_reset(&c->report);
    c->errors = 0;
    if (gyre_ftcheck_line(c, w->line.base, w->line.len - 1) != 0) {
        gyre_errf(err, errlen, "trace %.32s: not a valid %s line: %s", ex->trace_id,
                fi == F_PREFERENCE ? "preference" : "chat", c->report.base != NULL ? c->report.base : "");
        w->skipped++;
        return 1;
    }
    if (fwrite(w->line.base, 1, w->line.len, w->f[fi]) != w->line.len) {
        gyre_errf(err, errlen, "datasets: writing %s: %s", gyre_dataset_files[fi], strerror(errno));
        return -EIO;
    }
    crypto_generichash_update(&w->h[fi], (const unsigned char *)w->line.base, w->line.len);
    w->bytes[fi] += w->line.len;
    w->lines[fi]++;
    if (w->nprov == w->capprov) {
        w->capprov = w->capprov ? w->capprov * 2 : 256;
        w->prov = gyre_realloc(w->prov, w->capprov * sizeof(*w->prov));
    }
    prov_t *p = &w->prov[w->nprov++];
    memset(p, 0, sizeof(*p));
    memcpy(p->trace_id, ex->trace_id, sizeof(p->trace_id));
    p->trace_id[32] = '\0';
    if (other != NULL)
        snprintf(p->other, sizeof(p->other), "%s", other);
    p->session = ex->session != NULL ? gyre_strdup(ex->session) : NULL;
    p->cluster = ex->cluster;
    p->file = (uint8_t)fi;
    p->correction = (uint8_t)(correction != 0);
    w->corrections += correction != 0 && fi != F_PREFERENCE; /* SFT lines whose answer a correction replaced */
    note_scores(w, ex);
    return 0;
}

/* An example the line functions refused (no answer, too long) is left out and counted; 1. */
static int skipped(gyre_dataset_writer_t *w, int r)
{
    if (r == -EINVAL || r == -E2BIG) {
        w->skipped++;
        return 1;
    }
    return r;
}

int gyre_dataset_add_sft(gyre_dataset_writer_t *w, gyre_dataset_split_t split, const gyre_example_t *ex,
                         const char *correction, char *err, size_t errlen)
{
    gyre_buf_reset(&w->line);
    int r = gyre_dataset_sft_line(ex, correction, w->redact, &w->line, err, errlen);
    if (r != 0)
        return skipped(w, r);
    return put_line(w, split == GYRE_DATASET_HELDOUT ? F_HELDOUT : F_TRAIN, ex, NULL, correction != NULL, err,
                    errlen);
}

int gyre_dataset_add_pair(gyre_dataset_writer_t *w, const gyre_example_t *ex, const char *correction,
                          const char *rejected_answer_json, const char *rejected_id, char *err, size_t errlen)
{
    gyre_buf_reset(&w->line);
    int r;
    if (correction != NULL)
        r = gyre_dataset_preference_line(ex, NULL, correction, ex->answer_json, w->redact, &w->line, err, errlen);
    else
        r = gyre_dataset_preference_line(ex, ex->answer_json, NULL, rejected_answer_json, w->redact, &w->line, err,
                                         errlen);
    if (r != 0)
        return skipped(w, r);
    return put_line(w, F_PREFERENCE, ex, correction == NULL ? rejected_id : NULL, correction != NULL, err, errlen);
}

void gyre_dataset_set_curation(gyre_dataset_writer_t *w, const char *json)
{
    free(w->curation);
    w->curation = json != NULL ? gyre_strdup(json) : NULL;
}

static void writer_free(gyre_dataset_writer_t *w)
{
    for (int i = 0; i < GYRE_DATASET_NFILES; i++)
        if (w->f[i] != NULL)
            fclose(w->f[i]);
    for (size_t i = 0; i < w->nprov; i++)
        free(w->prov[i].session);
    for (size_t i = 0; i < w->nscores; i++) {
        free(w->scores[i].name);
        free(w->scores[i].version);
        free(w->scores[i].v);
    }
    free(w->scores);
    free(w->prov);
    free(w->dir);
    free(w->tmp);
    free(w->spec);
    free(w->curation);
    gyre_buf_dispose(&w->line);
    gyre_ftcheck_dispose(&w->check[0]);
    gyre_ftcheck_dispose(&w->check[1]);
    free(w);
}

void gyre_dataset_abort(gyre_dataset_writer_t *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < GYRE_DATASET_NFILES; i++)
        if (w->f[i] != NULL) {
            fclose(w->f[i]);
            w->f[i] = NULL;
        }
    if (w->tmp != NULL)
        remove_tree(w->tmp);
    writer_free(w);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_score(const void *a, const void *b)
{
    return strcmp(((const score_dist_t *)a)->name, ((const score_dist_t *)b)->name);
}

typedef struct cluster_count {
    int32_t cluster;
    size_t n[GYRE_DATASET_NFILES];
} cluster_count_t;

static int cmp_cluster(const void *a, const void *b)
{
    int32_t x = ((const cluster_count_t *)a)->cluster, y = ((const cluster_count_t *)b)->cluster;
    return x < y ? -1 : x > y;
}

static const char *const source_names[] = {"heuristic", "judge", "human"};

/* A number as the manifest writes it: 6 significant digits, the same on every run. */
static void append_num(gyre_buf_t *b, double v)
{
    if (!isfinite(v))
        gyre_buf_appends(b, "null");
    else
        gyre_buf_appendf(b, "%.6g", v);
}

/* The manifest's hashed members: `head` the totals (the listing's first line), `body` everything else. */
static void manifest_parts(gyre_dataset_writer_t *w, const unsigned char digests[][crypto_generichash_BYTES],
                           gyre_buf_t *head, gyre_buf_t *body)
{
    gyre_buf_appendf(head, "\"counts\":{\"train\":%zu,\"heldout\":%zu,\"preference\":%zu,\"corrections\":%zu,"
                           "\"skipped\":%zu}",
                     w->lines[F_TRAIN], w->lines[F_HELDOUT], w->lines[F_PREFERENCE], w->corrections, w->skipped);

    gyre_buf_appendf(body, "\"format\":{\"dataset\":%d,\"sft\":\"%s\",\"preference\":\"%s\",\"id\":\"blake2b-256/16\"},",
                     GYRE_DATASET_FORMAT, GYRE_DATASET_SFT_FORMAT, GYRE_DATASET_PREFERENCE_FORMAT);
    gyre_buf_appends(body, "\"spec\":");
    gyre_buf_append_json_string(body, w->spec, strlen(w->spec));

    /* Counts per cluster, by cluster id (-1: none). */
    cluster_count_t *cc = NULL;
    size_t ncc = 0;
    for (size_t i = 0; i < w->nprov; i++) {
        size_t j = 0;
        while (j < ncc && cc[j].cluster != w->prov[i].cluster)
            j++;
        if (j == ncc) {
            cc = gyre_realloc(cc, (ncc + 1) * sizeof(*cc));
            memset(&cc[ncc], 0, sizeof(*cc));
            cc[ncc++].cluster = w->prov[i].cluster;
        }
        cc[j].n[w->prov[i].file]++;
    }
    if (ncc > 0)
        qsort(cc, ncc, sizeof(*cc), cmp_cluster);
    gyre_buf_appends(body, ",\"clusters\":[");
    for (size_t j = 0; j < ncc; j++)
        gyre_buf_appendf(body, "%s{\"cluster\":%" PRId32 ",\"train\":%zu,\"heldout\":%zu,\"preference\":%zu}",
                         j ? "," : "", cc[j].cluster, cc[j].n[F_TRAIN], cc[j].n[F_HELDOUT], cc[j].n[F_PREFERENCE]);
    gyre_buf_appends(body, "]");
    free(cc);

    /* Score distributions and the scorers behind them. */
    if (w->nscores > 0)
        qsort(w->scores, w->nscores, sizeof(*w->scores), cmp_score);
    gyre_buf_appends(body, ",\"scores\":{");
    for (size_t j = 0; j < w->nscores; j++) {
        score_dist_t *d = &w->scores[j];
        qsort(d->v, d->n, sizeof(*d->v), cmp_double);
        double sum = 0;
        for (size_t k = 0; k < d->n; k++)
            sum += d->v[k];
        gyre_buf_appends(body, j ? "," : "");
        gyre_buf_append_json_string(body, d->name, strlen(d->name));
        gyre_buf_appendf(body, ":{\"n\":%zu,\"mean\":", d->n);
        append_num(body, sum / (double)d->n);
        gyre_buf_appends(body, ",\"min\":");
        append_num(body, d->v[0]);
        gyre_buf_appends(body, ",\"p50\":");
        append_num(body, d->v[(d->n - 1) / 2]);
        gyre_buf_appends(body, ",\"max\":");
        append_num(body, d->v[d->n - 1]);
        gyre_buf_appends(body, "}");
    }
    gyre_buf_appends(body, "},\"scorers\":[");
    for (size_t j = 0; j < w->nscores; j++) {
        score_dist_t *d = &w->scores[j];
        gyre_buf_appends(body, j ? ",{\"name\":" : "{\"name\":");
        gyre_buf_append_json_string(body, d->name, strlen(d->name));
        gyre_buf_appends(body, ",\"version\":");
        gyre_buf_append_json_string(body, d->version, strlen(d->version));
        gyre_buf_appendf(body, ",\"source\":\"%s\"}",
                         d->source >= 0 && d->source < 3 ? source_names[d->source] : "other");
    }
    gyre_buf_appends(body, "],\"files\":[");
    for (int i = 0; i < GYRE_DATASET_NFILES; i++) {
        char hex[crypto_generichash_BYTES * 2 + 1];
        sodium_bin2hex(hex, sizeof(hex), digests[i], crypto_generichash_BYTES);
        gyre_buf_appendf(body, "%s{\"name\":\"%s\",\"lines\":%zu,\"bytes\":%" PRIu64 ",\"blake2b\":\"%s\"}",
                         i ? "," : "", gyre_dataset_files[i], w->lines[i], w->bytes[i], hex);
    }
    /* The provenance: the trace behind every line, file by file, in the lines' order. */
    gyre_buf_appends(body, "],\"examples\":[");
    size_t line[GYRE_DATASET_NFILES] = {0};
    for (size_t i = 0; i < w->nprov; i++) {
        prov_t *p = &w->prov[i];
        gyre_buf_appendf(body, "%s{\"file\":\"%s\",\"line\":%zu,\"trace_id\":\"%s\",\"session\":", i ? "," : "",
                         gyre_dataset_files[p->file], ++line[p->file], p->trace_id);
        if (p->session != NULL)
            gyre_buf_append_json_string(body, p->session, strlen(p->session));
        else
            gyre_buf_appends(body, "null");
        gyre_buf_appendf(body, ",\"cluster\":%" PRId32 ",\"correction\":%s", p->cluster,
                         p->correction ? "true" : "false");
        if (p->other[0] != '\0')
            gyre_buf_appendf(body, ",\"non_preferred_trace_id\":\"%s\"", p->other);
        gyre_buf_appends(body, "}");
    }
    gyre_buf_appends(body, "]");
    if (w->curation != NULL) {
        gyre_buf_appends(body, ",\"curation\":");
        gyre_buf_appends(body, w->curation);
    }
}

static int write_file(const char *path, const char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(fd, p + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        off += (size_t)k;
    }
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

int gyre_dataset_commit(gyre_dataset_writer_t *w, int64_t created_us, gyre_dataset_result_t *res, char *err,
                        size_t errlen)
{
    memset(res, 0, sizeof(*res));
    unsigned char digests[GYRE_DATASET_NFILES][crypto_generichash_BYTES];
    int r = 0;
    for (int i = 0; i < GYRE_DATASET_NFILES; i++) {
        if (fflush(w->f[i]) != 0 || fsync(fileno(w->f[i])) != 0) {
            r = -errno;
            gyre_errf(err, errlen, "datasets: writing %s: %s", gyre_dataset_files[i], strerror(errno));
            gyre_dataset_abort(w);
            return r;
        }
        fclose(w->f[i]);
        w->f[i] = NULL;
        crypto_generichash_final(&w->h[i], digests[i], crypto_generichash_BYTES);
    }
    gyre_buf_t head, body, man;
    gyre_buf_init(&head, MANIFEST_HEAD_MAX - 128);
    gyre_buf_init(&body, MANIFEST_MAX);
    gyre_buf_init(&man, MANIFEST_MAX + MANIFEST_HEAD_MAX);
    manifest_parts(w, (const unsigned char(*)[crypto_generichash_BYTES])digests, &head, &body);
    if (gyre_buf_failed(&head) || gyre_buf_failed(&body)) {
        gyre_errf(err, errlen, "datasets: the manifest is over its %zu-byte bound", MANIFEST_MAX);
        r = -E2BIG;
        goto out;
    }
    /* The id: each file's name, length and digest, then the manifest's hashed members. */
    crypto_generichash_state h;
    unsigned char id[crypto_generichash_BYTES];
    crypto_generichash_init(&h, NULL, 0, crypto_generichash_BYTES);
    for (int i = 0; i < GYRE_DATASET_NFILES; i++) {
        unsigned char len[8];
        for (int k = 0; k < 8; k++)
            len[k] = (unsigned char)(w->bytes[i] >> (8 * k));
        crypto_generichash_update(&h, (const unsigned char *)gyre_dataset_files[i], strlen(gyre_dataset_files[i]) + 1);
        crypto_generichash_update(&h, len, sizeof(len));
        crypto_generichash_update(&h, digests[i], crypto_generichash_BYTES);
    }
    crypto_generichash_update(&h, (const unsigned char *)head.base, head.len);
    crypto_generichash_update(&h, (const unsigned char *)body.base, body.len);
    crypto_generichash_final(&h, id, sizeof(id));
    sodium_bin2hex(res->id, sizeof(res->id), id, 16);

    char created[32];
    time_t secs = (time_t)(created_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    gyre_buf_appendf(&man, "{\"id\":\"%s\",\"created\":\"%s\",", res->id, created);
    gyre_buf_append(&man, head.base, head.len);
    gyre_buf_appends(&man, ",\n");
    gyre_buf_append(&man, body.base, body.len);
    gyre_buf_appends(&man, "}\n");
    for (int i = 0; i < GYRE_DATASET_NFILES; i++)
        res->lines[i] = w->lines[i];
    res->skipped = w->skipped;
    snprintf(res->path, sizeof(res->path), "%s/%s", w->dir, res->id);

    struct stat st;
    if (stat(res->path, &st) == 0) {
        res->existed = 1; /* the same bytes are there: nothing to write */
        goto out;
    }
    char mp[4096 + 64];
    snprintf(mp, sizeof(mp), "%s/manifest.json", w->tmp);
    r = write_file(mp, man.base, man.len);
    if (r != 0) {
        gyre_errf(err, errlen, "datasets: writing %s: %s", mp, strerror(-r));
        goto out;
    }
    if (rename(w->tmp, res->path) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            res->existed = 1; /* another writer named the same dataset first */
        } else {
            r = -errno;
            gyre_errf(err, errlen, "datasets: renaming %s to %s: %s", w->tmp, res->path, strerror(errno));
        }
        goto out;
    }
    free(w->tmp);
    w->tmp = NULL;
    /* The rename is durable once the folder that holds it is synced. */
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    gyre_buf_dispose(&head);
    gyre_buf_dispose(&body);
    gyre_buf_dispose(&man);
    gyre_dataset_abort(w); /* removes the temporary folder when it is still there */
    return r;
}
