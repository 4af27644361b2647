/*
 * fill: writes N realistic agent traces straight into a store, for the
 * curation benchmark (issue 14's 1M target): sending 1M calls through gyre
 * on two cores takes far longer than curating them, so this writes what
 * bench/agentgen/agentgen.mjs would have sent, with the same families and
 * vocabulary (bench/agentgen/families.json, read by both) and the same
 * shares of failures, near-duplicates and feedback (vocab.mjs's SHARES),
 * through gyre_store_write_batch and gyre_store_write_scores.
 *
 *   fill --n N --db PATH [--seed S] [--truth FILE] [--families FILE] [--hours H] [--no-feedback]
 *
 * A session is an agent's trajectory: the system prompt and the user's task
 * with the family's two tools declared; a call to the first tool; its result
 * and a text answer; in a four-step session (35 %) a follow-up turn that
 * calls the second tool and its result with the final answer.  Each step is
 * one trace with the conversation so far (OpenAI chat bodies, 1 to 3 KB).
 * Planted on a session's last call: a refusal (5 %), text where JSON was
 * asked for (5 %, two-step sessions), a 500 from the provider (4 %), a slow
 * call of 2 to 8 s (3 %).  10 % of the sessions are near-duplicates of an
 * earlier one (the same task with a name or a number changed, or two
 * sentences swapped); 30 % get feedback on their last call (thumbs, a 1-5
 * rating, with a third of the thumbs down a correction).  --truth writes one
 * JSON line per trace in agentgen's truth.jsonl format.
 *
 * The database is removed first (it is the benchmark's, not yours).
 * FILL_VERSION changes whenever what is written changes, so a cached store
 * is rebuilt (bench/curate/run.sh keys its cache by `fill --version`, which adds the store's schema).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "store/store.h"

#define FILL_VERSION "fill-4"
#define BATCH 512
#define MAX_SLOTS 16
#define MAX_FAMILIES 64
#define MAX_ORIGINALS 4096 /* near-duplicates copy one of the last MAX_ORIGINALS originals */
/* A body is the conversation so far of at most four steps: about 3 KB, so 64 KB is a bound no template reaches; a
 * families.json whose bodies pass it stops the fill with a message (gen_step) instead of writing a cut body. */
#define BODY_MAX ((size_t)64 << 10)

/* The shares, as vocab.mjs's SHARES. */
#define P_DUP 0.10
#define P_REFUSAL 0.05
#define P_INVALID_JSON 0.05
#define P_ERROR 0.04
#define P_SLOW 0.03
#define P_FOUR_STEPS 0.35
#define P_STREAM 0.25
#define P_FEEDBACK 0.30

static uint64_t rng_state;
static uint64_t rng(void)
{
    /* xorshift64*: fast, and plenty for choosing words. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}
static double rnd(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}
static unsigned rint_(unsigned n)
{
    return (unsigned)(rng() % n);
}

static void die(const char *what)
{
    fprintf(stderr, "fill: %s\n", what);
    exit(1);
}

/* ---- The vocabulary (families.json). ---- */

typedef struct family {
    const char *name, *agent, *system, *json_ask;
    int weight;
    const cJSON *slots;     /* object: name -> spec */
    const cJSON *task;      /* 5 arrays of alternatives */
    const cJSON *tools;     /* array of {name, description, parameters, result} */
    const cJSON *followups, *answers;
    char *tools_json;       /* the request's `tools`, rendered once */
} family_t;

static cJSON *vocab_root;
static const cJSON *pools, *refusals, *contexts;
static family_t fams[MAX_FAMILIES];
static size_t nfams;
static int total_weight;

static const char *str_of(const cJSON *o, const char *k, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) {
        fprintf(stderr, "fill: families.json: %s: `%s` must be a string\n", where, k);
        exit(1);
    }
    return v->valuestring;
}

static void vocab_load(const char *path)
{
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)4 << 20); /* the vocabulary is a few tens of KB; 4 MB bounds a wrong file */
    int r = gyre_buf_append_file(&b, path);
    if (r != 0) {
        fprintf(stderr, "fill: %s: %s\n", path, strerror(-r));
        exit(1);
    }
    vocab_root = cJSON_ParseWithLength(b.base, b.len);
    gyre_buf_dispose(&b);
    if (vocab_root == NULL)
        die("families.json: not JSON");
    pools = cJSON_GetObjectItemCaseSensitive(vocab_root, "pools");
    refusals = cJSON_GetObjectItemCaseSensitive(vocab_root, "refusals");
    contexts = cJSON_GetObjectItemCaseSensitive(vocab_root, "context");
    const cJSON *agents = cJSON_GetObjectItemCaseSensitive(vocab_root, "agents");
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(vocab_root, "families");
    if (!cJSON_IsObject(pools) || !cJSON_IsArray(refusals) || !cJSON_IsArray(contexts) || !cJSON_IsArray(agents) ||
        !cJSON_IsArray(fl) || cJSON_GetArraySize(contexts) < 2)
        die("families.json: pools, refusals, context, agents and families are required");
    const cJSON *f;
    cJSON_ArrayForEach(f, fl)
    {
        if (nfams == MAX_FAMILIES)
            die("families.json: more than 64 families");
        family_t *x = &fams[nfams++];
        x->name = str_of(f, "name", "a family");
        x->agent = str_of(f, "agent", x->name);
        x->json_ask = str_of(f, "json_ask", x->name);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(f, "weight");
        x->weight = cJSON_IsNumber(w) && w->valueint > 0 ? w->valueint : 1;
        total_weight += x->weight;
        x->slots = cJSON_GetObjectItemCaseSensitive(f, "slots");
        x->task = cJSON_GetObjectItemCaseSensitive(f, "task");
        x->tools = cJSON_GetObjectItemCaseSensitive(f, "tools");
        x->followups = cJSON_GetObjectItemCaseSensitive(f, "followups");
        x->answers = cJSON_GetObjectItemCaseSensitive(f, "answers");
        if (!cJSON_IsObject(x->slots) || cJSON_GetArraySize(x->slots) > MAX_SLOTS || !cJSON_IsArray(x->task) ||
            cJSON_GetArraySize(x->task) != 5 || !cJSON_IsArray(x->tools) || cJSON_GetArraySize(x->tools) < 2 ||
            !cJSON_IsArray(x->followups) || !cJSON_IsArray(x->answers)) {
            fprintf(stderr, "fill: families.json: %s: slots (at most %d), 5 task lists, 2 tools, followups and answers\n",
                    x->name, MAX_SLOTS);
            exit(1);
        }
        const cJSON *a;
        cJSON_ArrayForEach(a, agents) if (strcmp(str_of(a, "name", "an agent"), x->agent) == 0) x->system =
            str_of(a, "system", x->agent);
        if (x->system == NULL) {
            fprintf(stderr, "fill: families.json: %s: unknown agent %s\n", x->name, x->agent);
            exit(1);
        }
        /* The tools as a request declares them, without the generator's `result` template. */
        cJSON *tools = cJSON_CreateArray();
        const cJSON *t;
        cJSON_ArrayForEach(t, x->tools)
        {
            cJSON *fn = cJSON_CreateObject();
            cJSON_AddStringToObject(fn, "name", str_of(t, "name", x->name));
            cJSON_AddStringToObject(fn, "description", str_of(t, "description", x->name));
            cJSON_AddItemToObject(fn, "parameters",
                                  cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(t, "parameters"), 1));
            cJSON *tool = cJSON_CreateObject();
            cJSON_AddStringToObject(tool, "type", "function");
            cJSON_AddItemToObject(tool, "function", fn);
            cJSON_AddItemToArray(tools, tool);
        }
        x->tools_json = cJSON_PrintUnformatted(tools);
        cJSON_Delete(tools);
    }
    if (nfams == 0)
        die("families.json: no family");
}

static const char *pick(const cJSON *list)
{
    int n = cJSON_GetArraySize(list);
    const cJSON *v = cJSON_GetArrayItem(list, (int)rint_((unsigned)n));
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* One value for a slot spec, as vocab.mjs's drawSlot. */
static void draw_slot(const cJSON *spec, char *out, size_t outlen)
{
    if (cJSON_IsArray(spec)) {
        snprintf(out, outlen, "%s", pick(spec));
        return;
    }
    const char *s = cJSON_IsString(spec) ? spec->valuestring : "";
    if (s[0] == '#') {
        unsigned n = (unsigned)atoi(s + 1);
        size_t k = 0;
        for (unsigned i = 0; i < n && k + 1 < outlen; i++)
            out[k++] = (char)('0' + (i == 0 ? 1 + rint_(9) : rint_(10)));
        out[k] = 0;
    } else if (strcmp(s, "@person") == 0) {
        const char *first = pick(cJSON_GetObjectItemCaseSensitive(pools, "first"));
        snprintf(out, outlen, "%s %s", first, pick(cJSON_GetObjectItemCaseSensitive(pools, "last")));
    } else if (strcmp(s, "@city") == 0) {
        snprintf(out, outlen, "%s", pick(cJSON_GetObjectItemCaseSensitive(pools, "city")));
    } else if (strcmp(s, "@month") == 0) {
        snprintf(out, outlen, "%s", pick(cJSON_GetObjectItemCaseSensitive(pools, "month")));
    } else if (strcmp(s, "@money") == 0) {
        snprintf(out, outlen, "%u.%02u", 19 + rint_(480), rint_(100));
    } else {
        fprintf(stderr, "fill: families.json: unknown slot spec %s\n", s);
        exit(1);
    }
}

/* ---- Sessions. ---- */

typedef struct plan {
    char id[32], user[16];
    unsigned fam, steps, refusal, followup, answer;
    unsigned parts[5], context[2], order[7];
    char slot_name[MAX_SLOTS][24];
    char slot_value[MAX_SLOTS][64];
    unsigned nslots;
    const char *failure; /* NULL, "refusal", "invalid_json", "error", "slow" */
    int stream;
    char dup_of[32];  /* "" when an original */
    char group[32];   /* the original's id: the near-duplicate group (the truth writes it only for dups and
                         originals that got one) */
    const char *edit; /* NULL, "reorder", "slot NAME" */
    char edit_buf[40];
} plan_t;

static plan_t originals[MAX_ORIGINALS];
static size_t norig_total;

static const char *slot(const plan_t *p, const char *name, size_t len)
{
    for (unsigned i = 0; i < p->nslots; i++)
        if (strlen(p->slot_name[i]) == len && memcmp(p->slot_name[i], name, len) == 0)
            return p->slot_value[i];
    return NULL;
}

/* Appends a template with each {slot} filled (vocab.mjs's expand). */
static void expand(gyre_buf_t *b, const plan_t *p, const char *t)
{
    while (*t) {
        const char *open = strchr(t, '{');
        if (open == NULL) {
            gyre_buf_appends(b, t);
            return;
        }
        const char *e = open + 1;
        while ((*e >= 'a' && *e <= 'z') || *e == '_')
            e++;
        const char *v = *e == '}' && e > open + 1 ? slot(p, open + 1, (size_t)(e - open - 1)) : NULL;
        gyre_buf_append(b, t, (size_t)(open - t));
        if (v != NULL) {
            gyre_buf_appends(b, v);
            t = e + 1;
        } else {
            gyre_buf_append(b, "{", 1);
            t = open + 1;
        }
    }
}

static const unsigned task_order[7] = {0, 1, 2, 5, 3, 6, 4};

static void task_text(gyre_buf_t *b, const plan_t *p)
{
    const family_t *f = &fams[p->fam];
    for (int i = 0; i < 7; i++) {
        unsigned k = p->order[i];
        const char *s = k < 5 ? cJSON_GetArrayItem(cJSON_GetArrayItem(f->task, (int)k), (int)p->parts[k])->valuestring
                              : cJSON_GetArrayItem(contexts, (int)p->context[k - 5])->valuestring;
        if (i > 0)
            gyre_buf_append(b, " ", 1);
        expand(b, p, s);
    }
}

static void plan_session(plan_t *p, uint64_t index, unsigned seed)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "fill%u-%07" PRIu64, seed, index);
    snprintf(p->user, sizeof(p->user), "user-%03u", rint_(400));
    size_t have = norig_total < MAX_ORIGINALS ? norig_total : MAX_ORIGINALS;
    if (have > 0 && rnd() < P_DUP) {
        const plan_t *o = &originals[rint_((unsigned)have)];
        char id[32], user[16];
        memcpy(id, p->id, sizeof(id));
        memcpy(user, p->user, sizeof(user));
        *p = *o;
        memcpy(p->id, id, sizeof(id));
        memcpy(p->user, user, sizeof(user));
        snprintf(p->dup_of, sizeof(p->dup_of), "%s", o->group);
        /* Half change a name or a number that the task holds, half swap two neighbouring middle sentences. */
        const family_t *f = &fams[p->fam];
        unsigned editable[MAX_SLOTS], ne = 0;
        gyre_buf_t t;
        gyre_buf_init(&t, BODY_MAX);
        task_text(&t, p);
        for (unsigned i = 0; i < p->nslots; i++) {
            const cJSON *spec = cJSON_GetObjectItemCaseSensitive(f->slots, p->slot_name[i]);
            const char *s = cJSON_IsString(spec) ? spec->valuestring : "";
            if ((s[0] == '#' || strcmp(s, "@person") == 0 || strcmp(s, "@money") == 0) &&
                strstr(t.base, p->slot_value[i]) != NULL)
                editable[ne++] = i;
        }
        gyre_buf_dispose(&t);
        if (ne > 0 && rnd() < 0.5) {
            unsigned i = editable[rint_(ne)];
            char v[64];
            snprintf(v, sizeof(v), "%s", p->slot_value[i]);
            for (int tries = 0; tries < 20 && strcmp(v, p->slot_value[i]) == 0; tries++)
                draw_slot(cJSON_GetObjectItemCaseSensitive(f->slots, p->slot_name[i]), v, sizeof(v));
            memcpy(p->slot_value[i], v, sizeof(v));
            snprintf(p->edit_buf, sizeof(p->edit_buf), "slot %s", p->slot_name[i]);
            p->edit = p->edit_buf;
        } else {
            unsigned j = 1 + rint_(4);
            unsigned x = p->order[j];
            p->order[j] = p->order[j + 1];
            p->order[j + 1] = x;
            p->edit = "reorder";
        }
        return;
    }
    int w = (int)rint_((unsigned)total_weight);
    unsigned fi = 0;
    while (fi + 1 < nfams && (w -= fams[fi].weight) >= 0)
        fi++;
    p->fam = fi;
    const family_t *f = &fams[fi];
    const cJSON *s;
    cJSON_ArrayForEach(s, f->slots)
    {
        snprintf(p->slot_name[p->nslots], sizeof(p->slot_name[0]), "%s", s->string);
        draw_slot(s, p->slot_value[p->nslots], sizeof(p->slot_value[0]));
        p->nslots++;
    }
    for (int i = 0; i < 5; i++)
        p->parts[i] = rint_((unsigned)cJSON_GetArraySize(cJSON_GetArrayItem(f->task, i)));
    unsigned nctx = (unsigned)cJSON_GetArraySize(contexts);
    p->context[0] = rint_(nctx);
    p->context[1] = (p->context[0] + 1 + rint_(nctx - 1)) % nctx;
    memcpy(p->order, task_order, sizeof(task_order));
    double x = rnd();
    p->failure = x < P_REFUSAL                                          ? "refusal"
                 : x < P_REFUSAL + P_INVALID_JSON                       ? "invalid_json"
                 : x < P_REFUSAL + P_INVALID_JSON + P_ERROR             ? "error"
                 : x < P_REFUSAL + P_INVALID_JSON + P_ERROR + P_SLOW    ? "slow"
                                                                        : NULL;
    p->steps = (p->failure == NULL || strcmp(p->failure, "invalid_json") != 0) && rnd() < P_FOUR_STEPS ? 4 : 2;
    p->stream = rnd() < P_STREAM;
    p->refusal = rint_((unsigned)cJSON_GetArraySize(refusals));
    p->followup = rint_((unsigned)cJSON_GetArraySize(f->followups));
    p->answer = rint_((unsigned)cJSON_GetArraySize(f->answers));
    memcpy(p->group, p->id, sizeof(p->group));
    originals[norig_total % MAX_ORIGINALS] = *p;
    norig_total++;
}

/* ---- Bodies. ---- */

/* Whether a value may be written as a JSON number: digits with at most one '.'. */
static int numeric(const char *v)
{
    int dots = 0;
    if (*v == 0)
        return 0;
    for (; *v; v++)
        if (*v == '.' ? ++dots > 1 : *v < '0' || *v > '9')
            return 0;
    return 1;
}

/* A tool call's arguments (families.json's `args`: a template per property), as the JSON string a call carries. */
static void tool_args(gyre_buf_t *b, const plan_t *p, const cJSON *tool)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tool, "parameters"),
                                                          "properties");
    gyre_buf_t a, v;
    gyre_buf_init(&a, BODY_MAX);
    gyre_buf_init(&v, BODY_MAX);
    gyre_buf_append(&a, "{", 1);
    const cJSON *arg;
    int first = 1;
    cJSON_ArrayForEach(arg, cJSON_GetObjectItemCaseSensitive(tool, "args"))
    {
        const char *type = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(props, arg->string), "type"));
        gyre_buf_reset(&v);
        expand(&v, p, cJSON_IsString(arg) ? arg->valuestring : "");
        if (!first)
            gyre_buf_append(&a, ",", 1);
        first = 0;
        gyre_buf_append_json_string(&a, arg->string, strlen(arg->string));
        gyre_buf_append(&a, ":", 1);
        int number = type != NULL && (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0);
        int boolean = type != NULL && strcmp(type, "boolean") == 0;
        if ((number && numeric(v.base)) || (boolean && (strcmp(v.base, "true") == 0 || strcmp(v.base, "false") == 0)))
            gyre_buf_append(&a, v.base, v.len);
        else
            gyre_buf_append_json_string(&a, v.base, v.len);
    }
    gyre_buf_append(&a, "}", 1);
    gyre_buf_append_json_string(b, a.base, a.len);
    gyre_buf_dispose(&a);
    gyre_buf_dispose(&v);
}

static void tool_call_json(gyre_buf_t *b, const plan_t *p, unsigned tool, const char *call_id)
{
    const cJSON *t = cJSON_GetArrayItem(fams[p->fam].tools, (int)tool);
    gyre_buf_appendf(b, "[{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":", call_id);
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
    gyre_buf_append_json_string(b, name, strlen(name));
    gyre_buf_appends(b, ",\"arguments\":");
    tool_args(b, p, t);
    gyre_buf_appends(b, "}}]");
}

static void json_text(gyre_buf_t *b, const char *s)
{
    gyre_buf_append_json_string(b, s, strlen(s));
}

/* The message objects of the conversation up to step `step` (1-based), each followed by a comma. */
static void conversation(gyre_buf_t *b, const plan_t *p, unsigned step, const char calls[2][40])
{
    const family_t *f = &fams[p->fam];
    gyre_buf_t t;
    gyre_buf_init(&t, BODY_MAX);
    gyre_buf_appends(b, "{\"role\":\"system\",\"content\":");
    json_text(b, f->system);
    gyre_buf_appends(b, "},{\"role\":\"user\",\"content\":");
    task_text(&t, p);
    if (p->failure != NULL && strcmp(p->failure, "invalid_json") == 0) {
        gyre_buf_append(&t, " ", 1);
        gyre_buf_appends(&t, f->json_ask);
    }
    gyre_buf_append_json_string(b, t.base, t.len);
    gyre_buf_appends(b, "}");
    for (unsigned k = 1; k < step; k++) {
        gyre_buf_reset(&t);
        if (k % 2 == 1) {
            /* The assistant's call and the tool's result (a refusal when one is planted on the last call). */
            gyre_buf_appends(b, ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":");
            tool_call_json(b, p, k == 1 ? 0 : 1, calls[k / 2]);
            gyre_buf_appendf(b, "},{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":", calls[k / 2]);
            if (k + 1 == p->steps && p->failure != NULL && strcmp(p->failure, "refusal") == 0)
                gyre_buf_appends(&t, cJSON_GetArrayItem(refusals, (int)p->refusal)->valuestring);
            else
                expand(&t, p, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetArrayItem(f->tools, k == 1 ? 0 : 1), "result")));
            gyre_buf_append_json_string(b, t.base, t.len);
            gyre_buf_appends(b, "}");
        } else {
            /* The text answer after the first result, then the follow-up turn. */
            gyre_buf_appends(b, ",{\"role\":\"assistant\",\"content\":");
            expand(&t, p, cJSON_GetArrayItem(f->answers, 0)->valuestring);
            gyre_buf_append_json_string(b, t.base, t.len);
            gyre_buf_reset(&t);
            gyre_buf_appends(b, "},{\"role\":\"user\",\"content\":");
            expand(&t, p, cJSON_GetArrayItem(f->followups, (int)p->followup)->valuestring);
            gyre_buf_append_json_string(b, t.base, t.len);
            gyre_buf_appends(b, "}");
        }
    }
    gyre_buf_dispose(&t);
}

/* ---- Traces. ---- */

typedef struct gen_trace {
    gyre_trace_t t;
    gyre_buf_t req, resp;
    char request_id[24], session[32], user[16];
    const plan_t *plan;
    unsigned step;
    const char *failure;
    int feedback; /* 0: none; else thumbs (1 up, 2 down) */
    int rating;
    int correction;
} gen_trace_t;

#define S(p) ((gyre_tstr_t){(char *)(p), strlen(p)})

static void gen_step(gen_trace_t *g, const plan_t *p, unsigned step, int64_t started_us, uint64_t n,
                     const char calls[2][40])
{
    gyre_trace_t *t = &g->t;
    memset(t, 0, sizeof(*t));
    g->plan = p;
    g->step = step;
    int last = step == p->steps;
    g->failure = last ? p->failure : NULL;
    const family_t *f = &fams[p->fam];
    /* gyre_trace_begin's ids: 48 bits of milliseconds, then random bits (and the count, so none repeats). */
    snprintf(t->trace_id, sizeof(t->trace_id), "%012" PRIx64 "%012" PRIx64 "%08" PRIx64,
             (uint64_t)(started_us / 1000) & UINT64_C(0xffffffffffff), rng() & UINT64_C(0xffffffffffff),
             n & UINT64_C(0xffffffff));
    memcpy(t->otel_trace_id, t->trace_id, sizeof(t->otel_trace_id));
    snprintf(t->span_id, sizeof(t->span_id), "%016" PRIx64, rng());
    snprintf(g->request_id, sizeof(g->request_id), "req-%" PRIu64, n);
    memcpy(g->session, p->id, sizeof(g->session));
    memcpy(g->user, p->user, sizeof(g->user));
    int failed = g->failure != NULL && strcmp(g->failure, "error") == 0;
    int slow = g->failure != NULL && strcmp(g->failure, "slow") == 0;
    int64_t latency = slow ? 2000000 + (int64_t)rint_(6000000) : 150000 + (int64_t)rint_(1200000);
    t->request_id = S(g->request_id);
    t->started_us = started_us;
    t->ended_us = started_us + latency;
    t->stream = last && p->stream;
    t->ttft_us = t->stream ? latency / 4 : -1;
    t->endpoint = S("/v1/chat/completions");
    t->route = S("agents");
    t->provider = S("openai");
    t->model = S("gpt-4o-mini");
    t->session = S(g->session);
    t->agent = S(f->agent);
    t->user = S(g->user);
    t->tags[0] = S("agentgen");
    t->ntags = 1;

    gyre_buf_reset(&g->req);
    gyre_buf_appends(&g->req, "{\"model\":\"agents\",\"messages\":[");
    conversation(&g->req, p, step, calls);
    gyre_buf_appends(&g->req, "],\"tools\":");
    gyre_buf_appends(&g->req, f->tools_json);
    if (step == 3) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(f->tools, 1), "name"));
        gyre_buf_appendf(&g->req, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"%s\"}}", name);
    }
    if (p->failure != NULL && strcmp(p->failure, "invalid_json") == 0)
        gyre_buf_appends(&g->req, ",\"response_format\":{\"type\":\"json_object\"}");
    if (t->stream)
        gyre_buf_appends(&g->req, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    gyre_buf_appends(&g->req, "}");

    gyre_buf_reset(&g->resp);
    int64_t prompt = (int64_t)g->req.len / 4;
    if (failed) {
        t->status = 500;
        t->finish_reason = S("");
        t->prompt_tokens = t->completion_tokens = t->cached_tokens = -1;
        t->cost_usd = NAN;
        gyre_buf_appends(&g->resp, "{\"error\":{\"message\":\"The server had an error while processing your request.\","
                                   "\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    } else {
        gyre_buf_t text;
        gyre_buf_init(&text, BODY_MAX);
        int call = step % 2 == 1;
        gyre_buf_appendf(&g->resp,
                         "{\"id\":\"chatcmpl-%.24s\",\"object\":\"chat.completion\",\"created\":%" PRId64
                         ",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                         "\"content\":",
                         t->trace_id, started_us / 1000000);
        if (call) {
            gyre_buf_appends(&g->resp, "null,\"tool_calls\":");
            tool_call_json(&g->resp, p, step == 1 ? 0 : 1, calls[step / 2]);
        } else {
            if (g->failure != NULL && strcmp(g->failure, "refusal") == 0)
                gyre_buf_appends(&text, cJSON_GetArrayItem(refusals, (int)p->refusal)->valuestring);
            else
                expand(&text, p, cJSON_GetArrayItem(f->answers, last ? (int)p->answer : 0)->valuestring);
            gyre_buf_append_json_string(&g->resp, text.base, text.len);
        }
        int64_t completion = call ? 40 : (int64_t)text.len / 4 + 1;
        gyre_buf_appendf(&g->resp,
                         "},\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":{\"prompt_tokens\":%" PRId64
                         ",\"completion_tokens\":%" PRId64 ",\"total_tokens\":%" PRId64 "}}",
                         call ? "tool_calls" : "stop", prompt, completion, prompt + completion);
        gyre_buf_dispose(&text);
        t->status = 200;
        t->finish_reason = S(call ? "tool_calls" : "stop");
        t->prompt_tokens = prompt;
        t->completion_tokens = completion;
        t->cached_tokens = 0;
        t->cost_usd = ((double)prompt * 0.15 + (double)completion * 0.6) / 1e6;
    }
    t->reasoning_tokens = -1;
    t->nattempts = 1;
    t->attempts[0] = (gyre_trace_attempt_t){t->provider,       t->model, S("openai#0"), t->status, started_us + 200,
                                            latency - 200, S(failed ? "upstream 500" : "")};
    if (gyre_buf_failed(&g->req) || gyre_buf_failed(&g->resp))
        die("a body passed 64 KB");
    t->request_body = (gyre_tstr_t){g->req.base, g->req.len};
    t->response_body = (gyre_tstr_t){g->resp.base, g->resp.len};
}

/* ---- The truth file. ---- */

/* One line of agentgen's truth.jsonl format.  An original's near-duplicates are made after it is written, so
 * here only a duplicate names its group (dup_group: the original's session and the step; dup_of: the original);
 * an original's group is its own session (bench/curate/score.mjs groups by dup_of, else session). */
static void truth_line(FILE *out, const gen_trace_t *g, int grouped)
{
    const plan_t *p = g->plan;
    fprintf(out,
            "{\"trace_id\":\"%s\",\"session\":\"%s\",\"agent\":\"%s\",\"family\":\"%s\",\"user\":\"%s\",\"step\":%u,"
            "\"steps\":%u,\"kind\":\"%s\",\"status\":%d,",
            g->t.trace_id, p->id, fams[p->fam].agent, fams[p->fam].name, p->user, g->step, p->steps,
            g->step % 2 == 1 ? "tool_call" : "answer", g->t.status);
    if (grouped)
        fprintf(out, "\"dup_group\":\"%s#%u\",", p->group, g->step);
    else
        fputs("\"dup_group\":null,", out);
    if (p->dup_of[0])
        fprintf(out, "\"dup_of\":\"%s\",\"edit\":\"%s\",", p->dup_of, p->edit);
    else
        fputs("\"dup_of\":null,\"edit\":null,", out);
    if (g->failure)
        fprintf(out, "\"failure\":\"%s\",", g->failure);
    else
        fputs("\"failure\":null,", out);
    fprintf(out, "\"latency_ms\":%" PRId64 ",", (g->t.ended_us - g->t.started_us) / 1000);
    if (g->feedback)
        fprintf(out, "\"feedback\":[{\"name\":\"thumbs\",\"value\":%s,\"correction\":%s},{\"name\":\"rating\",\"value\":%d}]}\n",
                g->feedback == 1 ? "true" : "false", g->correction ? "true" : "null", g->rating);
    else
        fputs("\"feedback\":null}\n", out);
}

/* ---- main. ---- */

int main(int argc, char **argv)
{
    uint64_t n = 0;
    unsigned seed = 1;
    const char *db = NULL, *truth = NULL, *families = "bench/agentgen/families.json";
    double hours = 24;
    int feedback = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--truth") == 0 && i + 1 < argc)
            truth = argv[++i];
        else if (strcmp(argv[i], "--families") == 0 && i + 1 < argc)
            families = argv[++i];
        else if (strcmp(argv[i], "--hours") == 0 && i + 1 < argc)
            hours = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--no-feedback") == 0)
            feedback = 0;
        else if (strcmp(argv[i], "--version") == 0) {
            /* The filler's version and the store's schema: a cached store is rebuilt when either changes (a
             * migration of 1M traces would be timed as part of the curation otherwise). */
            char err[256];
            gyre_store_t *m = NULL;
            if (gyre_store_open("sqlite::memory:", 0, &m, err, sizeof(err)) != 0) {
                fprintf(stderr, "fill: %s\n", err);
                return 1;
            }
            printf("%s-schema%d\n", FILL_VERSION, gyre_store_schema_version(m));
            gyre_store_close(m);
            return 0;
        } else {
            fprintf(stderr, "usage: fill --n N --db PATH [--seed S] [--truth FILE] [--families FILE] [--hours H] "
                            "[--no-feedback] | --version\n");
            return 2;
        }
    }
    if (n == 0 || db == NULL) {
        fprintf(stderr, "fill: --n N (at least 1) and --db PATH are required\n");
        return 2;
    }
    rng_state = UINT64_C(0x9e3779b97f4a7c15) ^ ((uint64_t)seed * UINT64_C(0xbf58476d1ce4e5b9));
    for (int i = 0; i < 4; i++)
        rng();
    vocab_load(families);

    char err[512] = "", side[4200];
    unlink(db);
    snprintf(side, sizeof(side), "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db);
    unlink(side);
    gyre_store_t *s = NULL;
    if (gyre_store_open(db, GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "fill: %s\n", err);
        return 1;
    }
    FILE *tf = NULL;
    if (truth != NULL && (tf = fopen(truth, "w")) == NULL) {
        fprintf(stderr, "fill: %s: %s\n", truth, strerror(errno));
        return 1;
    }

    /* A batch is whole sessions (at most 4 steps), so a feedback score is written after its trace. */
    static gen_trace_t g[BATCH + 4];
    static plan_t plans[BATCH + 4];
    const gyre_trace_t *batch[BATCH + 4];
    gyre_score_t scores[2 * (BATCH + 4)];
    char corrections[BATCH + 4][512];
    for (size_t i = 0; i < BATCH + 4; i++) {
        gyre_buf_init(&g[i].req, BODY_MAX);
        gyre_buf_init(&g[i].resp, BODY_MAX);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t span_us = (int64_t)(hours * 3600e6);
    uint64_t written = 0, sessions = 0, nscores = 0, dups = 0, failures = 0, bytes = 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, last_report = t0;
    while (written < n) {
        size_t k = 0, np = 0, ns = 0;
        while (k < BATCH && written + k < n) {
            plan_t *p = &plans[np++];
            plan_session(p, sessions++, seed);
            dups += p->dup_of[0] != 0;
            failures += p->failure != NULL;
            int64_t start = now_us - span_us + (int64_t)((double)(written + k) * (double)span_us / (double)n);
            char calls[2][40];
            snprintf(calls[0], sizeof(calls[0]), "call_%016" PRIx64, rng());
            snprintf(calls[1], sizeof(calls[1]), "call_%016" PRIx64, rng());
            for (unsigned step = 1; step <= p->steps && written + k < n; step++) {
                gen_trace_t *x = &g[k];
                gen_step(x, p, step, start, written + k, calls);
                start = x->t.ended_us + 1000 + (int64_t)rint_(3000000);
                x->feedback = 0;
                if (step == p->steps && feedback && rnd() < P_FEEDBACK) {
                    int bad = p->failure != NULL || rnd() < 0.15;
                    x->feedback = bad ? 2 : 1;
                    x->rating = bad ? 1 + (int)rint_(2) : 3 + (int)rint_(3);
                    x->correction = bad && rnd() < 0.34;
                    gyre_buf_t c;
                    gyre_buf_init(&c, sizeof(corrections[0]) - 1);
                    expand(&c, p, cJSON_GetArrayItem(fams[p->fam].answers, (int)p->answer)->valuestring);
                    snprintf(corrections[k], sizeof(corrections[0]), "%s", c.base != NULL ? c.base : "");
                    gyre_buf_dispose(&c);
                    int64_t at = x->t.ended_us + 30000000;
                    scores[ns++] = (gyre_score_t){x->t.trace_id, p->id, "thumbs", GYRE_SCORE_HUMAN, "",
                                                  x->feedback == 1 ? 1.0 : 0.0, NULL, NULL,
                                                  x->correction ? corrections[k] : NULL, at, x->t.started_us};
                    scores[ns++] = (gyre_score_t){x->t.trace_id, p->id, "rating", GYRE_SCORE_HUMAN, "",
                                                  (double)x->rating, NULL, NULL, NULL, at, x->t.started_us};
                }
                batch[k] = &x->t;
                bytes += x->t.request_body.len + x->t.response_body.len;
                k++;
            }
        }
        if (gyre_store_write_batch(s, batch, k, err, sizeof(err)) != 0) {
            fprintf(stderr, "fill: %s\n", err);
            return 1;
        }
        if (ns > 0) {
            int r = gyre_store_write_scores(s, scores, ns, err, sizeof(err));
            if (r == -ENOSYS) {
                fprintf(stderr, "fill: this store keeps no scores (%s): feedback left out\n", err);
                feedback = 0;
                for (size_t i = 0; i < k; i++)
                    g[i].feedback = 0;
            } else if (r != 0) {
                fprintf(stderr, "fill: scores: %s\n", err);
                return 1;
            } else {
                nscores += ns;
            }
        }
        if (tf != NULL)
            for (size_t i = 0; i < k; i++)
                truth_line(tf, &g[i], g[i].plan->dup_of[0] != 0);
        written += k;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        if (now - last_report > 5) {
            last_report = now;
            fprintf(stderr, "fill: %" PRIu64 " / %" PRIu64 " traces (%.0f/s)\n", written, n,
                    (double)written / (now - t0));
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double spent = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
    if (tf != NULL && fclose(tf) != 0) {
        fprintf(stderr, "fill: %s: %s\n", truth, strerror(errno));
        return 1;
    }
    gyre_store_close(s);
    fprintf(stderr,
            "fill: %" PRIu64 " traces of %" PRIu64 " sessions (%" PRIu64 " near-duplicates, %" PRIu64
            " planted failures, %" PRIu64 " scores) into %s in %.1f s (%.0f traces/s, %.0f body bytes each)\n",
            written, sessions, dups, failures, nscores, db, spent, (double)written / spent,
            (double)bytes / (double)written);
    for (size_t i = 0; i < nfams; i++)
        free(fams[i].tools_json);
    for (size_t i = 0; i < BATCH + 4; i++) {
        gyre_buf_dispose(&g[i].req);
        gyre_buf_dispose(&g[i].resp);
    }
    cJSON_Delete(vocab_root);
    return 0;
}
