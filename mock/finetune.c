/*
 * gyre-mock as the test double of fine-tuning and adapter serving (issue 15,
 * docs/mock.md "Fine-tuning and adapters"):
 *
 *   OpenAI     POST /v1/files (multipart, purpose fine-tune), GET /v1/files/{id},
 *              POST /v1/fine_tuning/jobs, GET /v1/fine_tuning/jobs/{id},
 *              GET /v1/fine_tuning/jobs/{id}/events, POST /v1/fine_tuning/jobs/{id}/cancel
 *   Together   POST /v1/files/upload (multipart), POST /v1/fine-tunes, GET /v1/fine-tunes/{id},
 *              GET /v1/fine-tunes/{id}/events, POST /v1/fine-tunes/{id}/cancel
 *   vLLM       POST /v1/load_lora_adapter, POST /v1/unload_lora_adapter
 *   llama.cpp  GET /lora-adapters, POST /lora-adapters (adapters given with --lora)
 *
 * A job runs for --ft-seconds and moves through its statuses as time passes:
 * nothing runs in the background, a job is advanced to the present whenever
 * it is read (or a model is looked up), so its events and status are a
 * function of the time since it was created.  A job that succeeds registers
 * its model; a loaded adapter is a model at once.  A model "learned" its
 * training lines: mock_finetune_reply answers a conversation whose last user
 * message is a training prompt (or near one, by word-set Jaccard) with that
 * line's assistant answer, and leaves every other prompt to the base answer,
 * so a test can measure a real improvement on held-out prompts of the same
 * tasks.  Faults are named in the job's suffix or the adapter's name.
 *
 * Everything lives in memory behind one mutex (the mock is one thread per
 * connection; the lock is held for the bookkeeping and one scan of a
 * model's lines).  Every collection has a bound, decided below.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

/* Files, jobs and models held at once: far above what a test makes, low enough that a runaway client is
 * refused (400 mock_limit, until /_mock/reset) before it eats the machine's memory. */
#define FT_MAX_FILES 64
#define FT_MAX_JOBS 256
#define FT_MAX_MODELS 256
/* Lines of one training file: a test uses tens; 100k keeps the per-request scan under a few ms. */
#define FT_MAX_LINES 100000
/* An uploaded file is bounded by the request reader (MOCK_MAX_BODY, 16 MiB, 413 above); an adapter's
 * train.jsonl read from disk has the same bound. */
#define FT_MAX_FILE_BYTES ((size_t)MOCK_MAX_BODY)
/* Epochs a job may ask for (OpenAI's own bound on n_epochs is 50); each is one event. */
#define FT_MAX_EPOCHS 50
#define FT_DEFAULT_EPOCHS 3
/* Events of one job: the fixed ones (created, validating, queued, started, model, done) and the epochs. */
#define FT_MAX_EVENTS (8 + FT_MAX_EPOCHS)
/* Multipart bounds: parts of one upload and the bytes of one part's head. */
#define MP_MAX_PARTS 16
#define MP_MAX_HEAD 8192
/* --ft-seconds at most an hour: a typo cannot park a test for longer. */
#define FT_MAX_SECONDS 3600.0
/* The Jaccard similarity from which a prompt counts as "the same task": half the words shared. */
#define FT_NEAR 0.5
/* The refusal of the mock-bad and mock-ood-refuse models. */
#define FT_REFUSAL "I'm sorry, but I can't help with that."
#define FT_ORG "gyre-mock"

/* ---- what a model learned: its training lines ---- */

typedef struct ft_example {
    char *prompt;    /* the last user message before the final answer (owned) */
    char *answer;    /* the final assistant answer (owned) */
    uint32_t *words; /* the prompt's word hashes, sorted, unique (owned) */
    size_t nwords;
} ft_example_t;

/* Shared by a file, the jobs trained on it and their models: counted references, under the lock. */
typedef struct ft_brain {
    ft_example_t *ex;
    size_t n;
    int refs;
} ft_brain_t;

enum { FAULT_FAIL = 1, FAULT_HANG = 2, FAULT_BAD = 4, FAULT_OOD_REFUSE = 8, FAULT_REFUSE_LOAD = 16 };

typedef struct ft_file {
    char id[32];
    char filename[256];
    char purpose[32];
    size_t bytes;
    long created;
    size_t lines;      /* non-empty lines */
    ft_brain_t *brain; /* NULL when the file is not valid training data (error says why) */
    char error[256];
} ft_file_t;

typedef enum { API_OPENAI, API_TOGETHER } ft_api_t;

typedef struct ft_event {
    long at; /* unix seconds */
    char level[8];
    char type[32]; /* OpenAI: message | metrics; Together: job_pending, job_start, epoch_complete, ... */
    char message[600];
    int step, total; /* an epoch event's k/n; 0 otherwise */
} ft_event_t;

typedef enum { ST_VALIDATING, ST_QUEUED, ST_RUNNING, ST_SUCCEEDED, ST_FAILED, ST_CANCELLED } ft_state_t;

typedef struct ft_job {
    ft_api_t api;
    unsigned num;
    char id[32];
    char model[256];
    char suffix[72];
    char training_file[32], validation_file[32];
    char method[16];        /* supervised | dpo (OpenAI); sft | dpo (Together) */
    char training_type[16]; /* Together: Lora | Full */
    int epochs, batch_size;
    double learning_rate;
    char output[512]; /* the fine-tuned model's name */
    int fault;
    ft_brain_t *brain;
    char file_error[256]; /* the training file was not valid: the job fails at validation */
    long created;         /* unix seconds */
    struct timespec start;
    double cancelled_after; /* seconds after start it was cancelled at, or -1 */
    ft_state_t state;
    int stage; /* the next step of the timeline to happen */
    long finished;
    char error[400];
    long trained_tokens;
    ft_event_t ev[FT_MAX_EVENTS];
    size_t nev;
} ft_job_t;

typedef struct ft_model {
    char name[512];
    ft_brain_t *brain;
    int fault;
    int adapter; /* loaded by /v1/load_lora_adapter (unloadable), else a job's result */
    char path[1024];
    long created;
} ft_model_t;

typedef struct ft_lora {
    char path[1024];
    ft_brain_t *brain;
    int fault;
    double scale;
} ft_lora_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double ft_seconds = 2.0;
static unsigned counter; /* ids: never reset, so an id is not reused after /_mock/reset */
static ft_file_t *files[FT_MAX_FILES];
static ft_job_t *jobs[FT_MAX_JOBS];
static ft_model_t *models[FT_MAX_MODELS];
static ft_lora_t loras[16];
static size_t nloras;

/* ---- words and similarity ---- */

/* Words are runs of letters, digits and non-ASCII bytes, lower-cased: "Paris?" and "paris" are one word. */
static size_t word_hashes(const char *s, uint32_t **out)
{
    size_t n = 0, cap = 0;
    uint32_t *w = NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (!(isalnum(*p) || *p >= 0x80)) {
            p++;
            continue;
        }
        uint32_t h = MOCK_FNV_OFFSET;
        for (; *p && (isalnum(*p) || *p >= 0x80); p++) {
            char ch = (char)tolower(*p);
            h = mock_fnv1a(&ch, 1, h);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            w = gyre_realloc(w, cap * sizeof(*w));
        }
        w[n++] = h;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: prompts are short */
        for (size_t j = i; j > 0 && w[j - 1] > w[j]; j--) {
            uint32_t t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || w[u - 1] != w[i])
            w[u++] = w[i];
    *out = w;
    return u;
}

static double jaccard(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    if (na == 0 || nb == 0)
        return 0;
    size_t i = 0, j = 0, both = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            both++;
            i++;
            j++;
        } else if (a[i] < b[j]) {
            i++;
        } else {
            j++;
        }
    }
    return (double)both / (double)(na + nb - both);
}

/* ---- training data ---- */

static void brain_release(ft_brain_t *b)
{
    if (b == NULL || --b->refs > 0)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->ex[i].prompt);
        free(b->ex[i].answer);
        free(b->ex[i].words);
    }
    free(b->ex);
    free(b);
}

static ft_brain_t *brain_ref(ft_brain_t *b)
{
    if (b != NULL)
        b->refs++;
    return b;
}

/* A message's text: content as a string, or its parts' `text` joined by a space; NULL when there is none. */
static char *message_text(const cJSON *m)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!cJSON_IsString(content) && !cJSON_IsArray(content))
        return NULL;
    return mock_join_texts(content, "text");
}

static int role_is(const cJSON *m, const char *role)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(r) && strcmp(r->valuestring, role) == 0;
}

/* The last user message of `msgs` (an array), as text (owned), or NULL. */
static char *last_user(const cJSON *msgs, int upto)
{
    for (int i = upto - 1; i >= 0; i--) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        if (role_is(m, "user"))
            return message_text(m);
    }
    return NULL;
}

/*
 * One training line into (prompt, answer): a chat line {"messages":[...]}
 * whose last message is the assistant's answer, or a preference line
 * {"input":{"messages"},"preferred_output":[...]} whose preferred output's
 * last assistant message is the answer.  Returns 1 for an example, 0 for a
 * line with nothing to learn (no user message, or an answer without text:
 * a tool call), -1 when the line is not of either shape.
 */
static int read_line(const cJSON *line, char **prompt, char **answer)
{
    *prompt = *answer = NULL;
    if (!cJSON_IsObject(line))
        return -1;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(line, "messages");
    const cJSON *pref = cJSON_GetObjectItemCaseSensitive(line, "preferred_output");
    if (cJSON_IsArray(msgs)) {
        int n = cJSON_GetArraySize(msgs);
        const cJSON *final = n > 0 ? cJSON_GetArrayItem(msgs, n - 1) : NULL;
        if (final == NULL || !role_is(final, "assistant"))
            return 0;
        *answer = message_text(final);
        *prompt = last_user(msgs, n - 1);
    } else if (cJSON_IsArray(pref)) {
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(line, "input"), "messages");
        if (!cJSON_IsArray(in))
            return -1;
        for (int i = cJSON_GetArraySize(pref) - 1; i >= 0 && *answer == NULL; i--)
            if (role_is(cJSON_GetArrayItem(pref, i), "assistant"))
                *answer = message_text(cJSON_GetArrayItem(pref, i));
        *prompt = last_user(in, cJSON_GetArraySize(in));
    } else {
        return -1;
    }
    if (*prompt == NULL || *answer == NULL || (*answer)[0] == '\0') {
        free(*prompt);
        free(*answer);
        *prompt = *answer = NULL;
        return 0;
    }
    return 1;
}

/*
 * Parses JSONL training data.  Returns the brain (one reference), or NULL
 * with `err` saying which line is wrong; `*lines` counts non-empty lines.
 */
static ft_brain_t *brain_parse(const char *data, size_t len, size_t *lines, char *err, size_t errlen)
{
    ft_brain_t *b = gyre_calloc(1, sizeof(*b));
    b->refs = 1;
    size_t cap = 0, lineno = 0;
    *lines = 0;
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t end = nl != NULL ? (size_t)(nl - data) : len, n = end - off;
        const char *s = data + off;
        off = end + 1;
        lineno++;
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0)
            continue;
        if (++*lines > FT_MAX_LINES) {
            snprintf(err, errlen, "the file has more than %d lines (the mock's bound)", FT_MAX_LINES);
            goto fail;
        }
        cJSON *line = cJSON_ParseWithLength(s, n);
        char *prompt, *answer;
        int got = read_line(line, &prompt, &answer);
        cJSON_Delete(line);
        if (got < 0) {
            snprintf(err, errlen,
                     "line %zu is not a chat line ({\"messages\":[...]}) nor a preference line "
                     "({\"input\":{\"messages\":[...]},\"preferred_output\":[...]})",
                     lineno);
            goto fail;
        }
        if (got == 0)
            continue;
        if (b->n == cap) {
            cap = cap ? cap * 2 : 16;
            b->ex = gyre_realloc(b->ex, cap * sizeof(*b->ex));
        }
        ft_example_t *e = &b->ex[b->n++];
        e->prompt = prompt;
        e->answer = answer;
        e->nwords = word_hashes(prompt, &e->words);
    }
    if (b->n == 0) {
        snprintf(err, errlen, "no line has a user message followed by an assistant answer with text");
        goto fail;
    }
    return b;
fail:
    brain_release(b);
    return NULL;
}

/* Reads a LoRA path's training data: <path>/train.jsonl, or the path itself when it is a file.  Returns 0, or
 * -ENOENT (nothing there) / -EINVAL (err says why). */
static int brain_load(const char *path, ft_brain_t **out, char *err, size_t errlen)
{
    char file[1100];
    struct stat st;
    if (stat(path, &st) != 0)
        return -ENOENT;
    snprintf(file, sizeof(file), S_ISDIR(st.st_mode) ? "%s/train.jsonl" : "%s", path);
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return -ENOENT;
    gyre_buf_t b;
    gyre_buf_init(&b, FT_MAX_FILE_BYTES);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (gyre_buf_append(&b, chunk, n) != 0)
            break;
    fclose(f);
    if (gyre_buf_failed(&b)) {
        snprintf(err, errlen, "%s is larger than the mock's bound of %zu bytes", file, FT_MAX_FILE_BYTES);
        gyre_buf_dispose(&b);
        return -EINVAL;
    }
    size_t lines;
    char why[256];
    *out = brain_parse(b.base != NULL ? b.base : "", b.len, &lines, why, sizeof(why));
    gyre_buf_dispose(&b);
    if (*out == NULL) {
        snprintf(err, errlen, "%s: %s", file, why);
        return -EINVAL;
    }
    return 0;
}

static int faults_of(const char *name)
{
    int f = 0;
    if (strstr(name, "mock-fail") != NULL)
        f |= FAULT_FAIL;
    if (strstr(name, "mock-hang") != NULL)
        f |= FAULT_HANG;
    if (strstr(name, "mock-bad") != NULL)
        f |= FAULT_BAD;
    if (strstr(name, "mock-ood-refuse") != NULL)
        f |= FAULT_OOD_REFUSE;
    if (strstr(name, "mock-refuse-load") != NULL)
        f |= FAULT_REFUSE_LOAD;
    return f;
}

/* ---- models ---- */

static ft_model_t *model_find(const char *name)
{
    for (size_t i = 0; i < FT_MAX_MODELS; i++)
        if (models[i] != NULL && strcmp(models[i]->name, name) == 0)
            return models[i];
    return NULL;
}

/* Registers a model (takes a reference to brain); returns -1 at the bound. */
static int model_add(const char *name, ft_brain_t *brain, int fault, int adapter, const char *path)
{
    for (size_t i = 0; i < FT_MAX_MODELS; i++)
        if (models[i] == NULL) {
            ft_model_t *m = gyre_calloc(1, sizeof(*m));
            snprintf(m->name, sizeof(m->name), "%s", name);
            snprintf(m->path, sizeof(m->path), "%s", path != NULL ? path : "");
            m->brain = brain_ref(brain);
            m->fault = fault;
            m->adapter = adapter;
            m->created = (long)time(NULL);
            models[i] = m;
            return 0;
        }
    return -1;
}

static void model_free(ft_model_t *m)
{
    brain_release(m->brain);
    free(m);
}

/* The answer rule (docs/mock.md): exact prompt, else the nearest by Jaccard >= FT_NEAR, else NULL (or the refusal
 * for mock-ood-refuse); mock-bad refuses everything.  Returns a copy. */
static char *brain_answer(const ft_brain_t *b, int fault, const char *prompt)
{
    if (fault & FAULT_BAD)
        return gyre_strdup(FT_REFUSAL);
    if (b != NULL && prompt != NULL) {
        for (size_t i = 0; i < b->n; i++)
            if (strcmp(b->ex[i].prompt, prompt) == 0)
                return gyre_strdup(b->ex[i].answer);
        uint32_t *w;
        size_t nw = word_hashes(prompt, &w);
        double best = 0;
        const ft_example_t *near = NULL;
        for (size_t i = 0; i < b->n; i++) {
            double j = jaccard(w, nw, b->ex[i].words, b->ex[i].nwords);
            if (j > best) {
                best = j;
                near = &b->ex[i];
            }
        }
        free(w);
        if (near != NULL && best >= FT_NEAR)
            return gyre_strdup(near->answer);
    }
    return (fault & FAULT_OOD_REFUSE) ? gyre_strdup(FT_REFUSAL) : NULL;
}

/* ---- jobs: a timeline advanced when read ---- */

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void event_add(ft_job_t *j, double after, const char *level, const char *type, int step, int total,
                      const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void event_add(ft_job_t *j, double after, const char *level, const char *type, int step, int total,
                      const char *fmt, ...)
{
    if (j->nev == FT_MAX_EVENTS)
        return;
    ft_event_t *e = &j->ev[j->nev++];
    e->at = j->created + (long)floor(after);
    snprintf(e->level, sizeof(e->level), "%s", level);
    snprintf(e->type, sizeof(e->type), "%s", type);
    e->step = step;
    e->total = total;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

static int job_done(const ft_job_t *j)
{
    return j->state == ST_SUCCEEDED || j->state == ST_FAILED || j->state == ST_CANCELLED;
}

/*
 * The timeline, in shares of --ft-seconds T: created and validating at 0,
 * queued at 0.1 T (or failed, when the file was not valid), running at
 * 0.2 T, epoch k of n at 0.2 T + 0.8 T k/n, succeeded with the last epoch.
 * mock-fail fails where the first epoch would end; mock-hang stays running.
 */
static void job_advance(ft_job_t *j)
{
    int together = j->api == API_TOGETHER;
    while (!job_done(j)) {
        double now = seconds_since(&j->start), T = ft_seconds;
        if (j->cancelled_after >= 0)
            now = j->cancelled_after;
        double at;
        if (j->stage == 0)
            at = 0.1 * T;
        else if (j->stage == 1)
            at = 0.2 * T;
        else
            at = 0.2 * T + 0.8 * T * (j->stage - 1) / j->epochs;
        if (j->stage >= 2 && (j->fault & FAULT_HANG))
            return;
        if (now < at)
            return;
        if (j->stage == 0) {
            if (j->file_error[0] != '\0') {
                j->state = ST_FAILED;
                snprintf(j->error, sizeof(j->error), "The training file %s is not valid: %s", j->training_file,
                         j->file_error);
                event_add(j, at, "error", together ? "job_error" : "message", 0, 0, "%s", j->error);
                j->finished = j->created + (long)floor(at);
                return;
            }
            j->state = ST_QUEUED;
            if (together)
                event_add(j, at, "info", "job_pending", 0, 0, "Job is queued");
            else
                event_add(j, at, "info", "message", 0, 0, "Files validated, moving job to queued state");
        } else if (j->stage == 1) {
            j->state = ST_RUNNING;
            event_add(j, at, "info", together ? "job_start" : "message", 0, 0, "Fine-tuning job started");
        } else if (j->fault & FAULT_FAIL) {
            j->state = ST_FAILED;
            snprintf(j->error, sizeof(j->error), "The job failed during training (gyre-mock fault mock-fail).");
            event_add(j, at, "error", together ? "job_error" : "message", 0, 0, "%s", j->error);
            j->finished = j->created + (long)floor(at);
            return;
        } else {
            int k = j->stage - 1;
            j->trained_tokens = 0;
            for (size_t i = 0; j->brain != NULL && i < j->brain->n; i++)
                j->trained_tokens +=
                    (long)(mock_count_words(j->brain->ex[i].prompt) + mock_count_words(j->brain->ex[i].answer));
            j->trained_tokens *= k;
            event_add(j, at, "info", together ? "epoch_complete" : "metrics", k, j->epochs, "Epoch %d/%d completed", k,
                      j->epochs);
            if (k == j->epochs) {
                if (model_find(j->output) == NULL && model_add(j->output, j->brain, j->fault, 0, NULL) != 0) {
                    j->state = ST_FAILED;
                    snprintf(j->error, sizeof(j->error),
                             "The mock holds %d models at most: POST /_mock/reset forgets them.", FT_MAX_MODELS);
                    event_add(j, at, "error", together ? "job_error" : "message", 0, 0, "%s", j->error);
                } else {
                    j->state = ST_SUCCEEDED;
                    event_add(j, at, "info", together ? "model_upload_complete" : "message", 0, 0,
                              "New fine-tuned model created: %s", j->output);
                    event_add(j, at, "info", together ? "job_complete" : "message", 0, 0,
                              "The job has successfully completed");
                }
                j->finished = j->created + (long)floor(at);
                return;
            }
        }
        j->stage++;
    }
}

static void advance_all(void)
{
    for (size_t i = 0; i < FT_MAX_JOBS; i++)
        if (jobs[i] != NULL)
            job_advance(jobs[i]);
}

static void job_free(ft_job_t *j)
{
    brain_release(j->brain);
    free(j);
}

static ft_file_t *file_find(const char *id)
{
    for (size_t i = 0; i < FT_MAX_FILES; i++)
        if (files[i] != NULL && strcmp(files[i]->id, id) == 0)
            return files[i];
    return NULL;
}

static ft_job_t *job_find(ft_api_t api, const char *id)
{
    for (size_t i = 0; i < FT_MAX_JOBS; i++)
        if (jobs[i] != NULL && jobs[i]->api == api && strcmp(jobs[i]->id, id) == 0)
            return jobs[i];
    return NULL;
}

/* ---- the answer hook (answer.c) ---- */

char *mock_finetune_reply(const char *model, const char *prompt)
{
    char *out = NULL;
    pthread_mutex_lock(&lock);
    advance_all();
    ft_model_t *m = model != NULL ? model_find(model) : NULL;
    if (m != NULL) {
        out = brain_answer(m->brain, m->fault, prompt);
    } else {
        /* llama.cpp applies its adapters to every request: the first with a scale above 0 answers. */
        for (size_t i = 0; i < nloras; i++)
            if (loras[i].scale > 0) {
                out = brain_answer(loras[i].brain, loras[i].fault, prompt);
                break;
            }
    }
    pthread_mutex_unlock(&lock);
    return out;
}

void mock_finetune_models_json(cJSON *data)
{
    pthread_mutex_lock(&lock);
    advance_all();
    for (size_t i = 0; i < FT_MAX_MODELS; i++) {
        if (models[i] == NULL)
            continue;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", models[i]->name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", (double)models[i]->created);
        cJSON_AddStringToObject(m, "owned_by", FT_ORG);
        if (models[i]->adapter)
            cJSON_AddStringToObject(m, "root", models[i]->path);
        cJSON_AddItemToArray(data, m);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- multipart/form-data (RFC 7578): the bytes of an untrusted client, read within fixed bounds ---- */

typedef struct mp_part {
    char name[64];
    char filename[256];
    int has_filename;
    const char *data; /* into the request body */
    size_t len;
} mp_part_t;

/* The value of parameter `key` in a header value ("form-data; name=\"file\"; filename=\"a.jsonl\""), unquoted,
 * into out.  Returns 1 when present. */
static int header_param(const char *v, size_t vlen, const char *key, char *out, size_t size)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < vlen;) {
        while (i < vlen && (v[i] == ';' || v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < vlen && v[i] != '=' && v[i] != ';')
            i++;
        int match = i - start == kl && strncasecmp(v + start, key, kl) == 0;
        if (i >= vlen || v[i] != '=') {
            continue;
        }
        i++;
        size_t o = 0;
        if (i < vlen && v[i] == '"') {
            for (i++; i < vlen && v[i] != '"'; i++) {
                if (v[i] == '\\' && i + 1 < vlen)
                    i++;
                if (match && o + 1 < size)
                    out[o++] = v[i];
            }
            i++;
        } else {
            for (; i < vlen && v[i] != ';'; i++)
                if (match && o + 1 < size && v[i] != ' ')
                    out[o++] = v[i];
        }
        if (match) {
            out[o] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Splits `body` into its parts.  Returns NULL, or what is wrong with it. */
static const char *multipart_parse(const char *ctype, const char *body, size_t len, mp_part_t *parts, size_t *n)
{
    char boundary[80], delim[84];
    *n = 0;
    if (ctype == NULL || strncasecmp(ctype, "multipart/form-data", 19) != 0)
        return "the body must be multipart/form-data";
    if (!header_param(ctype + 19, strlen(ctype + 19), "boundary", boundary, sizeof(boundary)) || boundary[0] == '\0' ||
        strlen(boundary) > 70)
        return "the content-type has no boundary of 1 to 70 characters";
    int dl = snprintf(delim, sizeof(delim), "--%s", boundary);
    /* The first delimiter may follow a preamble; each later one follows a CRLF. */
    const char *p = memmem(body, len, delim, (size_t)dl), *end = body + len;
    if (p == NULL)
        return "the body has no boundary delimiter";
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return NULL; /* the close delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return "a boundary delimiter is not followed by CRLF";
        p += 2;
        if (*n == MP_MAX_PARTS)
            return "the body has more than 16 parts";
        size_t room = (size_t)(end - p) < MP_MAX_HEAD ? (size_t)(end - p) : MP_MAX_HEAD;
        const char *hend;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            hend = p - 2; /* a part without headers: its data starts after the empty line */
        else
            hend = memmem(p, room, "\r\n\r\n", 4);
        if (hend == NULL)
            return "a part's headers do not end within 8 KiB";
        mp_part_t *part = &parts[*n];
        memset(part, 0, sizeof(*part));
        for (const char *h = p; h < hend;) {
            const char *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
            if (eol == NULL)
                eol = hend;
            const char *colon = memchr(h, ':', (size_t)(eol - h));
            if (colon != NULL && (size_t)(colon - h) == 19 && strncasecmp(h, "content-disposition", 19) == 0) {
                size_t vl = (size_t)(eol - colon - 1);
                header_param(colon + 1, vl, "name", part->name, sizeof(part->name));
                part->has_filename = header_param(colon + 1, vl, "filename", part->filename, sizeof(part->filename));
            }
            h = eol + 2;
        }
        const char *data = hend + 4;
        char close[88];
        int cl = snprintf(close, sizeof(close), "\r\n%s", delim);
        const char *next = data <= end ? memmem(data, (size_t)(end - data), close, (size_t)cl) : NULL;
        if (next == NULL)
            return "a part is not closed by a boundary delimiter";
        part->data = data;
        part->len = (size_t)(next - data);
        (*n)++;
        p = next + 2;
    }
}

static const mp_part_t *part_named(const mp_part_t *parts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0)
            return &parts[i];
    return NULL;
}

/* ---- JSON shapes ---- */

static void iso_time(long t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static cJSON *file_json(const ft_file_t *f, int together)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", f->id);
    cJSON_AddStringToObject(o, "object", "file");
    cJSON_AddNumberToObject(o, "bytes", (double)f->bytes);
    cJSON_AddNumberToObject(o, "created_at", (double)f->created);
    cJSON_AddStringToObject(o, "filename", f->filename);
    cJSON_AddStringToObject(o, "purpose", f->purpose);
    if (together) {
        cJSON_AddBoolToObject(o, "Processed", 1);
        cJSON_AddStringToObject(o, "FileType", "jsonl");
        cJSON_AddNumberToObject(o, "LineCount", (double)f->lines);
    } else {
        cJSON_AddNullToObject(o, "expires_at");
        cJSON_AddStringToObject(o, "status", "processed");
        cJSON_AddNullToObject(o, "status_details");
    }
    return o;
}

static const char *openai_status(ft_state_t s)
{
    static const char *const names[] = {"validating_files", "queued", "running", "succeeded", "failed", "cancelled"};
    return names[s];
}

static const char *together_status(ft_state_t s)
{
    static const char *const names[] = {"pending", "queued", "running", "completed", "error", "cancelled"};
    return names[s];
}

static cJSON *openai_event_json(const ft_job_t *j, size_t i)
{
    const ft_event_t *e = &j->ev[i];
    cJSON *o = cJSON_CreateObject();
    char id[48];
    snprintf(id, sizeof(id), "ftevent-mock%06u%03zu", j->num, i);
    cJSON_AddStringToObject(o, "object", "fine_tuning.job.event");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "created_at", (double)e->at);
    cJSON_AddStringToObject(o, "level", e->level);
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type);
    cJSON *data = cJSON_AddObjectToObject(o, "data");
    if (e->step > 0) {
        cJSON_AddNumberToObject(data, "step", e->step);
        cJSON_AddNumberToObject(data, "total_steps", e->total);
        cJSON_AddNumberToObject(data, "train_loss", round(1e4 / (e->step + 1)) / 1e4);
    }
    return o;
}

static cJSON *together_event_json(const ft_job_t *j, size_t i)
{
    const ft_event_t *e = &j->ev[i];
    cJSON *o = cJSON_CreateObject();
    char at[40];
    iso_time(e->at, at, sizeof(at));
    cJSON_AddStringToObject(o, "object", "fine-tune-event");
    cJSON_AddStringToObject(o, "created_at", at);
    cJSON_AddStringToObject(o, "level", e->level);
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type);
    cJSON_AddNumberToObject(o, "step", e->step);
    cJSON_AddNumberToObject(o, "total_steps", e->total);
    cJSON_AddStringToObject(o, "hash", "");
    return o;
}

static cJSON *openai_job_json(const ft_job_t *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "fine_tuning.job");
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "model", j->model);
    cJSON_AddNumberToObject(o, "created_at", (double)j->created);
    if (job_done(j))
        cJSON_AddNumberToObject(o, "finished_at", (double)j->finished);
    else
        cJSON_AddNullToObject(o, "finished_at");
    if (j->state == ST_SUCCEEDED)
        cJSON_AddStringToObject(o, "fine_tuned_model", j->output);
    else
        cJSON_AddNullToObject(o, "fine_tuned_model");
    cJSON_AddStringToObject(o, "organization_id", "org-" FT_ORG);
    cJSON_AddArrayToObject(o, "result_files");
    cJSON_AddStringToObject(o, "status", openai_status(j->state));
    cJSON_AddStringToObject(o, "training_file", j->training_file);
    if (j->validation_file[0])
        cJSON_AddStringToObject(o, "validation_file", j->validation_file);
    else
        cJSON_AddNullToObject(o, "validation_file");
    cJSON *hp = cJSON_CreateObject();
    cJSON_AddNumberToObject(hp, "n_epochs", j->epochs);
    cJSON_AddNumberToObject(hp, "batch_size", j->batch_size);
    cJSON_AddNumberToObject(hp, "learning_rate_multiplier", j->learning_rate);
    cJSON_AddItemToObject(o, "hyperparameters", cJSON_Duplicate(hp, 1));
    if (j->state == ST_SUCCEEDED)
        cJSON_AddNumberToObject(o, "trained_tokens", (double)j->trained_tokens);
    else
        cJSON_AddNullToObject(o, "trained_tokens");
    if (j->state == ST_FAILED) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", j->file_error[0] ? "invalid_training_file" : "mock_failure");
        cJSON_AddStringToObject(e, "message", j->error);
        if (j->file_error[0])
            cJSON_AddStringToObject(e, "param", "training_file");
        else
            cJSON_AddNullToObject(e, "param");
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    if (j->suffix[0])
        cJSON_AddStringToObject(o, "user_provided_suffix", j->suffix);
    else
        cJSON_AddNullToObject(o, "user_provided_suffix");
    cJSON_AddNumberToObject(o, "seed", 0);
    cJSON_AddNullToObject(o, "estimated_finish");
    cJSON_AddArrayToObject(o, "integrations");
    cJSON_AddNullToObject(o, "metadata");
    cJSON *method = cJSON_AddObjectToObject(o, "method");
    cJSON_AddStringToObject(method, "type", j->method);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(method, j->method), "hyperparameters", hp);
    return o;
}

static cJSON *together_job_json(const ft_job_t *j)
{
    cJSON *o = cJSON_CreateObject();
    char created[40], updated[40];
    iso_time(j->created, created, sizeof(created));
    iso_time(j->nev > 0 ? j->ev[j->nev - 1].at : j->created, updated, sizeof(updated));
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", "fine-tune");
    cJSON_AddStringToObject(o, "status", together_status(j->state));
    cJSON_AddStringToObject(o, "created_at", created);
    cJSON_AddStringToObject(o, "updated_at", updated);
    cJSON_AddStringToObject(o, "model", j->model);
    cJSON_AddStringToObject(o, "output_name", j->output);
    cJSON_AddStringToObject(o, "model_output_name", j->output);
    cJSON_AddStringToObject(o, "suffix", j->suffix);
    cJSON_AddStringToObject(o, "training_file", j->training_file);
    cJSON_AddStringToObject(o, "validation_file", j->validation_file);
    cJSON_AddNumberToObject(o, "n_epochs", j->epochs);
    int done = 0;
    for (size_t i = 0; i < j->nev; i++)
        if (j->ev[i].step > done)
            done = j->ev[i].step;
    cJSON_AddNumberToObject(o, "epochs_completed", done);
    cJSON_AddNumberToObject(o, "batch_size", j->batch_size);
    cJSON_AddNumberToObject(o, "learning_rate", j->learning_rate);
    cJSON *tt = cJSON_AddObjectToObject(o, "training_type");
    cJSON_AddStringToObject(tt, "type", j->training_type);
    cJSON *tm = cJSON_AddObjectToObject(o, "training_method");
    cJSON_AddStringToObject(tm, "method", j->method);
    cJSON_AddNumberToObject(o, "token_count", (double)j->trained_tokens);
    cJSON_AddNumberToObject(o, "total_price", 0);
    if (j->state == ST_FAILED)
        cJSON_AddStringToObject(o, "error", j->error);
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; i < j->nev; i++)
        cJSON_AddItemToArray(ev, together_event_json(j, i));
    return o;
}

/* ---- handlers ---- */

static int respond_json_free(mock_conn_t *c, const mock_request_t *r, int status, cJSON *json)
{
    int ret = mock_http_respond_json(c, r, status, json);
    cJSON_Delete(json);
    return ret;
}

static int limit_error(mock_conn_t *c, const mock_request_t *r, const char *what, int max)
{
    return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "mock_limit", NULL,
                                   "The mock holds %d %s at most: POST /_mock/reset forgets them.", max, what);
}

/* POST /v1/files and /v1/files/upload. */
static int upload(mock_conn_t *c, const mock_request_t *r, int together)
{
    mp_part_t parts[MP_MAX_PARTS];
    size_t n;
    const char *err = multipart_parse(mock_request_header(r, "content-type"), r->body, r->body_len, parts, &n);
    if (err != NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_multipart", NULL,
                                       "Invalid multipart body: %s.", err);
    const mp_part_t *file = part_named(parts, n, "file"), *purpose = part_named(parts, n, "purpose");
    const mp_part_t *fname = part_named(parts, n, "file_name");
    if (file == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "file",
                                       "Missing required parameter: 'file'.");
    if (purpose == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter",
                                       "purpose", "Missing required parameter: 'purpose'.");
    if (purpose->len != 9 || memcmp(purpose->data, "fine-tune", 9) != 0)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", "purpose",
                                       "The mock accepts purpose 'fine-tune' only, got '%.*s'.",
                                       (int)(purpose->len < 64 ? purpose->len : 64), purpose->data);
    ft_file_t *f = gyre_calloc(1, sizeof(*f));
    snprintf(f->purpose, sizeof(f->purpose), "fine-tune");
    if (fname != NULL)
        snprintf(f->filename, sizeof(f->filename), "%.*s", (int)(fname->len < 255 ? fname->len : 255), fname->data);
    else
        snprintf(f->filename, sizeof(f->filename), "%s", file->has_filename ? file->filename : "file");
    f->bytes = file->len;
    f->created = (long)time(NULL);
    f->brain = brain_parse(file->data, file->len, &f->lines, f->error, sizeof(f->error));
    pthread_mutex_lock(&lock);
    size_t slot = FT_MAX_FILES;
    for (size_t i = 0; i < FT_MAX_FILES && slot == FT_MAX_FILES; i++)
        if (files[i] == NULL)
            slot = i;
    if (slot < FT_MAX_FILES) {
        snprintf(f->id, sizeof(f->id), "file-mock%06u", ++counter);
        files[slot] = f;
    }
    cJSON *out = slot < FT_MAX_FILES ? file_json(f, together) : NULL;
    pthread_mutex_unlock(&lock);
    if (out == NULL) {
        brain_release(f->brain);
        free(f);
        return limit_error(c, r, "files", FT_MAX_FILES);
    }
    return respond_json_free(c, r, 200, out);
}

static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A hyperparameter: a number in [min, max], "auto" (or absent) for `dflt`; -1 when invalid. */
static double hyper(const cJSON *o, const char *name, double min, double max, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL || cJSON_IsNull(v) || (cJSON_IsString(v) && strcmp(v->valuestring, "auto") == 0))
        return dflt;
    if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max)
        return -1;
    return v->valuedouble;
}

/* The base model's last path segment (Together's output names use it). */
static const char *base_name(const char *model)
{
    const char *s = strrchr(model, '/');
    return s != NULL ? s + 1 : model;
}

/* POST /v1/fine_tuning/jobs and POST /v1/fine-tunes. */
static int create_job(mock_conn_t *c, const mock_request_t *r, const cJSON *req, ft_api_t api)
{
    int together = api == API_TOGETHER;
    if (!cJSON_IsObject(req))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_json", NULL,
                                       "The body of the request is not a JSON object.");
    const char *model = str_member(req, "model"), *training = str_member(req, "training_file");
    const char *validation = str_member(req, "validation_file"), *suffix = str_member(req, "suffix");
    if (model == NULL || model[0] == '\0' || strlen(model) >= 256)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "model",
                                       "Missing required parameter: 'model' (a string of 1 to 255 bytes).");
    if (training == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter",
                                       "training_file", "Missing required parameter: 'training_file'.");
    if (suffix != NULL && strlen(suffix) > 64)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", "suffix",
                                       "Invalid 'suffix': at most 64 characters.");
    /* Hyperparameters: OpenAI's under hyperparameters or method.<type>.hyperparameters, Together's at the top. */
    const cJSON *hp = together ? req : cJSON_GetObjectItemCaseSensitive(req, "hyperparameters");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(req, together ? "training_method" : "method");
    const char *mtype = str_member(method, together ? "method" : "type");
    if (mtype == NULL)
        mtype = together ? "sft" : "supervised";
    if (together ? (strcmp(mtype, "sft") != 0 && strcmp(mtype, "dpo") != 0)
                 : (strcmp(mtype, "supervised") != 0 && strcmp(mtype, "dpo") != 0))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value",
                                       together ? "training_method.method" : "method.type",
                                       together ? "Invalid training method: sft or dpo."
                                                : "Invalid method type: supervised or dpo.");
    if (!together && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(method, mtype),
                                                                     "hyperparameters")))
        hp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(method, mtype), "hyperparameters");
    double epochs = hyper(hp, "n_epochs", 1, FT_MAX_EPOCHS, FT_DEFAULT_EPOCHS);
    double batch = hyper(hp, "batch_size", 1, 4096, together ? 8 : 1);
    double lr = hyper(hp, together ? "learning_rate" : "learning_rate_multiplier", 1e-9, 100, together ? 1e-5 : 2);
    if (epochs < 0 || epochs != floor(epochs))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", "n_epochs",
                                       "Invalid 'n_epochs': a whole number from 1 to %d, or \"auto\".", FT_MAX_EPOCHS);
    if (batch < 0 || lr < 0)
        return mock_http_respond_error(
            c, r, 400, NULL, "invalid_request_error", "invalid_value", batch < 0 ? "batch_size" : "learning_rate",
            "Invalid '%s': a positive number, or \"auto\".", batch < 0 ? "batch_size" : "learning_rate");
    const char *ttype = "Lora";
    if (together) {
        const char *t = str_member(cJSON_GetObjectItemCaseSensitive(req, "training_type"), "type");
        if (t != NULL && strcmp(t, "Lora") != 0 && strcmp(t, "Full") != 0)
            return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value",
                                           "training_type.type", "Invalid training type: Lora or Full.");
        if (t != NULL)
            ttype = t;
    }

    pthread_mutex_lock(&lock);
    int ret;
    ft_file_t *f = file_find(training);
    if (f == NULL) {
        pthread_mutex_unlock(&lock);
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_training_file",
                                       "training_file", "File '%.100s' not found.", training);
    }
    if (validation != NULL && file_find(validation) == NULL) {
        pthread_mutex_unlock(&lock);
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_validation_file",
                                       "validation_file", "File '%.100s' not found.", validation);
    }
    size_t slot = FT_MAX_JOBS;
    for (size_t i = 0; i < FT_MAX_JOBS && slot == FT_MAX_JOBS; i++)
        if (jobs[i] == NULL)
            slot = i;
    if (slot == FT_MAX_JOBS) {
        pthread_mutex_unlock(&lock);
        return limit_error(c, r, "jobs", FT_MAX_JOBS);
    }
    ft_job_t *j = gyre_calloc(1, sizeof(*j));
    j->api = api;
    j->num = ++counter;
    snprintf(j->id, sizeof(j->id), together ? "ft-mock%06u" : "ftjob-mock%06u", j->num);
    snprintf(j->model, sizeof(j->model), "%s", model);
    snprintf(j->suffix, sizeof(j->suffix), "%s", suffix != NULL ? suffix : "");
    snprintf(j->training_file, sizeof(j->training_file), "%s", training);
    snprintf(j->validation_file, sizeof(j->validation_file), "%s", validation != NULL ? validation : "");
    snprintf(j->method, sizeof(j->method), "%s", mtype);
    snprintf(j->training_type, sizeof(j->training_type), "%s", ttype);
    j->epochs = (int)epochs;
    j->batch_size = (int)batch;
    j->learning_rate = lr;
    j->fault = faults_of(j->suffix);
    j->brain = brain_ref(f->brain);
    if (f->brain == NULL)
        snprintf(j->file_error, sizeof(j->file_error), "%s", f->error);
    if (together)
        snprintf(j->output, sizeof(j->output), "%s/%s%s%s-%06u", FT_ORG, base_name(model), j->suffix[0] ? "-" : "",
                 j->suffix, j->num);
    else
        snprintf(j->output, sizeof(j->output), "ft:%s:%s:%s:mock%06u", model, FT_ORG, j->suffix, j->num);
    j->created = (long)time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &j->start);
    j->cancelled_after = -1;
    j->state = ST_VALIDATING;
    if (together) {
        event_add(j, 0, "info", "job_pending", 0, 0, "Fine tune request created");
    } else {
        event_add(j, 0, "info", "message", 0, 0, "Created fine-tuning job: %s", j->id);
        event_add(j, 0, "info", "message", 0, 0, "Validating training file: %s", j->training_file);
    }
    jobs[slot] = j;
    job_advance(j);
    cJSON *out = together ? together_job_json(j) : openai_job_json(j);
    pthread_mutex_unlock(&lock);
    ret = respond_json_free(c, r, 200, out);
    return ret;
}

static int job_not_found(mock_conn_t *c, const mock_request_t *r, const char *id)
{
    return mock_http_respond_error(c, r, 404, NULL, "invalid_request_error", "not_found", "id",
                                   "Fine-tuning job '%.100s' not found.", id);
}

/* GET a job, its events, or POST its cancel.  `id` is the job id from the path; `what` "", "events", "cancel". */
static int job_request(mock_conn_t *c, const mock_request_t *r, ft_api_t api, const char *id, const char *what)
{
    int together = api == API_TOGETHER;
    pthread_mutex_lock(&lock);
    ft_job_t *j = job_find(api, id);
    if (j == NULL) {
        pthread_mutex_unlock(&lock);
        return job_not_found(c, r, id);
    }
    job_advance(j);
    cJSON *out = NULL;
    int status = 200;
    if (strcmp(what, "cancel") == 0) {
        if (job_done(j)) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Job %s has already finished (status %s) and cannot be cancelled.", j->id,
                     together ? together_status(j->state) : openai_status(j->state));
            pthread_mutex_unlock(&lock);
            return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_state", NULL, "%s", msg);
        }
        j->cancelled_after = seconds_since(&j->start);
        j->state = ST_CANCELLED;
        j->finished = j->created + (long)floor(j->cancelled_after);
        event_add(j, j->cancelled_after, "info", together ? "job_stopped" : "message", 0, 0,
                  together ? "Job was stopped" : "Fine-tuning job cancelled");
        out = together ? together_job_json(j) : openai_job_json(j);
    } else if (strcmp(what, "events") == 0) {
        out = cJSON_CreateObject();
        if (!together)
            cJSON_AddStringToObject(out, "object", "list");
        cJSON *data = cJSON_AddArrayToObject(out, "data");
        if (together) {
            for (size_t i = 0; i < j->nev; i++)
                cJSON_AddItemToArray(data, together_event_json(j, i));
        } else {
            /* Newest first; `after` an event id: the events that follow it in that order (older ones). */
            char after[64], limit_s[16];
            long limit = 20;
            if (mock_request_query(r, "limit", limit_s, sizeof(limit_s)) > 0)
                limit = strtol(limit_s, NULL, 10);
            if (limit < 1 || limit > 100)
                limit = limit < 1 ? 1 : 100;
            int have_after = mock_request_query(r, "after", after, sizeof(after)) > 0;
            long taken = 0;
            int started = !have_after, more = 0;
            for (size_t k = j->nev; k-- > 0;) {
                char eid[48];
                snprintf(eid, sizeof(eid), "ftevent-mock%06u%03zu", j->num, k);
                if (!started) {
                    started = strcmp(eid, after) == 0;
                    continue;
                }
                if (taken == limit) {
                    more = 1;
                    break;
                }
                cJSON_AddItemToArray(data, openai_event_json(j, k));
                taken++;
            }
            cJSON_AddBoolToObject(out, "has_more", more);
        }
    } else {
        out = together ? together_job_json(j) : openai_job_json(j);
    }
    pthread_mutex_unlock(&lock);
    return respond_json_free(c, r, status, out);
}

/* vLLM's error body (vllm/entrypoints/openai/serving_models.py, ErrorResponse). */
static int vllm_error(mock_conn_t *c, const mock_request_t *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int vllm_error(mock_conn_t *c, const mock_request_t *r, int status, const char *type, const char *fmt, ...)
{
    char msg[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "error");
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNullToObject(o, "param");
    cJSON_AddNumberToObject(o, "code", status);
    return respond_json_free(c, r, status, o);
}

static int vllm_text(mock_conn_t *c, const mock_request_t *r, const char *fmt, const char *name)
{
    char msg[700];
    snprintf(msg, sizeof(msg), fmt, name);
    return mock_http_respond(c, r, 200, "content-type: text/plain; charset=utf-8\r\n", msg, strlen(msg));
}

static int lora_load(mock_conn_t *c, const mock_request_t *r, const cJSON *req)
{
    const char *name = str_member(req, "lora_name"), *path = str_member(req, "lora_path");
    if (name == NULL || name[0] == '\0' || path == NULL || path[0] == '\0')
        return vllm_error(c, r, 400, "InvalidUserInput", "Both 'lora_name' and 'lora_path' must be provided.");
    if (strlen(name) >= 512 || strlen(path) >= 1024)
        return vllm_error(c, r, 400, "InvalidUserInput", "'lora_name' or 'lora_path' is too long for the mock.");
    pthread_mutex_lock(&lock);
    int loaded = model_find(name) != NULL;
    pthread_mutex_unlock(&lock);
    if (loaded)
        return vllm_error(c, r, 400, "InvalidUserInput", "The lora adapter '%s' has already been loaded.", name);
    int fault = faults_of(name);
    if (fault & FAULT_REFUSE_LOAD)
        return vllm_error(c, r, 400, "BadRequestError",
                          "Loading lora %s failed: the adapter was refused (gyre-mock fault mock-refuse-load)", name);
    ft_brain_t *brain = NULL;
    char why[1400];
    int rc = brain_load(path, &brain, why, sizeof(why));
    if (rc == -ENOENT)
        return vllm_error(c, r, 404, "NotFoundError", "Loading lora %s failed: No adapter found for %s", name, path);
    if (rc != 0)
        return vllm_error(c, r, 400, "BadRequestError", "Loading lora %s failed: %s", name, why);
    pthread_mutex_lock(&lock);
    int added = model_find(name) == NULL ? model_add(name, brain, fault, 1, path) : -2;
    pthread_mutex_unlock(&lock);
    brain_release(brain);
    if (added == -2)
        return vllm_error(c, r, 400, "InvalidUserInput", "The lora adapter '%s' has already been loaded.", name);
    if (added != 0)
        return vllm_error(c, r, 400, "BadRequestError", "The mock holds %d models at most: POST /_mock/reset.",
                          FT_MAX_MODELS);
    return vllm_text(c, r, "Success: LoRA adapter '%s' added successfully.", name);
}

static int lora_unload(mock_conn_t *c, const mock_request_t *r, const cJSON *req)
{
    const char *name = str_member(req, "lora_name");
    if (name == NULL || name[0] == '\0')
        return vllm_error(c, r, 400, "InvalidUserInput", "either 'lora_name' and 'lora_int_id' needs to be provided.");
    int found = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < FT_MAX_MODELS; i++)
        if (models[i] != NULL && models[i]->adapter && strcmp(models[i]->name, name) == 0) {
            model_free(models[i]);
            models[i] = NULL;
            found = 1;
        }
    pthread_mutex_unlock(&lock);
    if (!found)
        return vllm_error(c, r, 404, "NotFoundError", "The lora adapter '%.400s' cannot be found.", name);
    return vllm_text(c, r, "Success: LoRA adapter '%s' removed successfully.", name);
}

/* llama.cpp's server: GET lists [{id, path, scale}]; POST sets scales from [{id, scale}], others to 0. */
static int llama_adapters(mock_conn_t *c, const mock_request_t *r)
{
    if (strcmp(r->method, "POST") == 0) {
        cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *e;
        int ok = cJSON_IsArray(req);
        cJSON_ArrayForEach(e, (ok ? req : NULL))
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"),
                        *scale = cJSON_GetObjectItemCaseSensitive(e, "scale");
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (double)nloras ||
                !cJSON_IsNumber(scale))
                ok = 0;
        }
        if (!ok) {
            cJSON_Delete(req);
            cJSON *o = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(o, "error");
            cJSON_AddNumberToObject(err, "code", 400);
            cJSON_AddStringToObject(err, "message", "Request body must be an array of {id, scale} with known ids");
            cJSON_AddStringToObject(err, "type", "invalid_request_error");
            return respond_json_free(c, r, 400, o);
        }
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < nloras; i++)
            loras[i].scale = 0;
        cJSON_ArrayForEach(e, req)
        {
            loras[(size_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble].scale =
                cJSON_GetObjectItemCaseSensitive(e, "scale")->valuedouble;
        }
        pthread_mutex_unlock(&lock);
        cJSON_Delete(req);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "success", 1);
        return respond_json_free(c, r, 200, o);
    }
    cJSON *list = cJSON_CreateArray();
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nloras; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", (double)i);
        cJSON_AddStringToObject(a, "path", loras[i].path);
        cJSON_AddNumberToObject(a, "scale", loras[i].scale);
        cJSON_AddItemToArray(list, a);
    }
    pthread_mutex_unlock(&lock);
    return respond_json_free(c, r, 200, list);
}

/* ---- routing ---- */

static int path_is(const mock_request_t *r, const char *path)
{
    size_t n = strlen(path);
    return strncmp(r->path, path, n) == 0 && (r->path[n] == '\0' || r->path[n] == '?');
}

/* Whether the path is `prefix` + an id (+ "/" + tail); the id goes to `id`, the tail to `tail` ("" when none). */
static int path_id(const mock_request_t *r, const char *prefix, char *id, size_t idsize, char *tail, size_t tsize)
{
    size_t pn = strlen(prefix), len = strcspn(r->path, "?");
    if (len <= pn || strncmp(r->path, prefix, pn) != 0)
        return 0;
    const char *s = r->path + pn;
    size_t il = strcspn(s, "/?");
    if (il == 0 || il >= idsize)
        return 0;
    memcpy(id, s, il);
    id[il] = '\0';
    size_t rest = len - pn - il;
    if (rest == 0) {
        tail[0] = '\0';
        return 1;
    }
    if (rest - 1 >= tsize)
        return 0;
    memcpy(tail, s + il + 1, rest - 1);
    tail[rest - 1] = '\0';
    return 1;
}

/* What a request asks of this file; FT_NONE leaves it to the rest of the mock (the /v1 echo among others). */
typedef enum {
    FT_NONE,
    FT_LLAMA_ADAPTERS,
    FT_UPLOAD_OPENAI,
    FT_UPLOAD_TOGETHER,
    FT_FILE_GET,
    FT_CREATE_OPENAI,
    FT_CREATE_TOGETHER,
    FT_LORA_LOAD,
    FT_LORA_UNLOAD,
    FT_JOB_OPENAI,
    FT_JOB_TOGETHER,
} ft_route_t;

static ft_route_t route(const mock_request_t *r, char *id, size_t idsize, char *tail, size_t tsize)
{
    int post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    if (path_is(r, "/lora-adapters") && (get || post))
        return FT_LLAMA_ADAPTERS;
    if (post && path_is(r, "/v1/files"))
        return FT_UPLOAD_OPENAI;
    if (post && path_is(r, "/v1/files/upload"))
        return FT_UPLOAD_TOGETHER;
    if (post && path_is(r, "/v1/fine_tuning/jobs"))
        return FT_CREATE_OPENAI;
    if (post && path_is(r, "/v1/fine-tunes"))
        return FT_CREATE_TOGETHER;
    if (post && path_is(r, "/v1/load_lora_adapter"))
        return FT_LORA_LOAD;
    if (post && path_is(r, "/v1/unload_lora_adapter"))
        return FT_LORA_UNLOAD;
    if (get && path_id(r, "/v1/files/", id, idsize, tail, tsize) && tail[0] == '\0')
        return FT_FILE_GET;
    if ((get || post) && path_id(r, "/v1/fine_tuning/jobs/", id, idsize, tail, tsize) &&
        ((get && (tail[0] == '\0' || strcmp(tail, "events") == 0)) || (post && strcmp(tail, "cancel") == 0)))
        return FT_JOB_OPENAI;
    if ((get || post) && path_id(r, "/v1/fine-tunes/", id, idsize, tail, tsize) &&
        ((get && (tail[0] == '\0' || strcmp(tail, "events") == 0)) || (post && strcmp(tail, "cancel") == 0)))
        return FT_JOB_TOGETHER;
    return FT_NONE;
}

int mock_finetune_match(const mock_request_t *r)
{
    char id[64], tail[32];
    return route(r, id, sizeof(id), tail, sizeof(tail)) != FT_NONE;
}

int mock_finetune_handle(mock_conn_t *c, const mock_request_t *r)
{
    char id[64], tail[32];
    ft_route_t rt = route(r, id, sizeof(id), tail, sizeof(tail));
    mock_state_record(r, NULL);
    if (rt == FT_LLAMA_ADAPTERS)
        return llama_adapters(c, r);
    if (rt == FT_UPLOAD_OPENAI || rt == FT_UPLOAD_TOGETHER)
        return upload(c, r, rt == FT_UPLOAD_TOGETHER);
    if (rt == FT_FILE_GET) {
        pthread_mutex_lock(&lock);
        ft_file_t *f = file_find(id);
        cJSON *out = f != NULL ? file_json(f, 0) : NULL;
        pthread_mutex_unlock(&lock);
        if (out == NULL)
            return mock_http_respond_error(c, r, 404, NULL, "invalid_request_error", "not_found", "id",
                                           "No such File object: %s", id);
        return respond_json_free(c, r, 200, out);
    }
    if (rt == FT_JOB_OPENAI || rt == FT_JOB_TOGETHER)
        return job_request(c, r, rt == FT_JOB_TOGETHER ? API_TOGETHER : API_OPENAI, id, tail);
    cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
    int ret;
    if (rt == FT_CREATE_OPENAI || rt == FT_CREATE_TOGETHER)
        ret = create_job(c, r, body, rt == FT_CREATE_TOGETHER ? API_TOGETHER : API_OPENAI);
    else if (rt == FT_LORA_LOAD)
        ret = lora_load(c, r, body);
    else if (rt == FT_LORA_UNLOAD)
        ret = lora_unload(c, r, body);
    else
        ret = mock_http_respond_error(c, r, 404, NULL, "invalid_request_error", "unknown_url", NULL,
                                      "Unknown path %s %s.", r->method, r->path);
    cJSON_Delete(body);
    return ret;
}

/* ---- options and lifetime ---- */

int mock_finetune_set_seconds(const char *v)
{
    char *end;
    errno = 0;
    double s = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(s >= 0 && s <= FT_MAX_SECONDS))
        return -1;
    ft_seconds = s;
    return 0;
}

int mock_finetune_add_lora(const char *path, char *err, size_t errlen)
{
    if (nloras == sizeof(loras) / sizeof(loras[0])) {
        snprintf(err, errlen, "at most %zu --lora adapters", sizeof(loras) / sizeof(loras[0]));
        return -1;
    }
    if (strlen(path) >= sizeof(loras[0].path)) {
        snprintf(err, errlen, "the path is too long");
        return -1;
    }
    ft_lora_t *l = &loras[nloras];
    int rc = brain_load(path, &l->brain, err, errlen);
    if (rc == -ENOENT)
        snprintf(err, errlen, "no adapter found at %s (a folder with train.jsonl, or a JSONL file)", path);
    if (rc != 0)
        return -1;
    snprintf(l->path, sizeof(l->path), "%s", path);
    const char *base = strrchr(path, '/');
    l->fault = faults_of(base != NULL ? base + 1 : path);
    l->scale = 0;
    nloras++;
    return 0;
}

void mock_finetune_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < FT_MAX_FILES; i++) {
        if (files[i] != NULL)
            brain_release(files[i]->brain);
        free(files[i]);
        files[i] = NULL;
    }
    for (size_t i = 0; i < FT_MAX_JOBS; i++) {
        if (jobs[i] != NULL)
            job_free(jobs[i]);
        jobs[i] = NULL;
    }
    for (size_t i = 0; i < FT_MAX_MODELS; i++) {
        if (models[i] != NULL)
            model_free(models[i]);
        models[i] = NULL;
    }
    for (size_t i = 0; i < nloras; i++)
        loras[i].scale = 0;
    pthread_mutex_unlock(&lock);
}

void mock_finetune_dispose(void)
{
    mock_finetune_reset();
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nloras; i++)
        brain_release(loras[i].brain);
    nloras = 0;
    pthread_mutex_unlock(&lock);
}
