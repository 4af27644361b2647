/*
 * gyre-mock's one answer, whatever the dialect: each dialect reads its
 * request into a conversation shaped like OpenAI's messages (mock.h,
 * mock_convo_t), and this file turns that into the reply text or the tool
 * call, the finish reason and the token counts.  Because every dialect
 * answers through here, a conversation gets the same answer in each of
 * them, and a test can check that gyre's translation of one dialect gives
 * exactly what another gives.
 *
 * Every answer is a function of the request alone (no clock, no
 * randomness); docs/mock.md states the rules and the integration tests
 * restate them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

#define REPLY_CHARS 64     /* characters of the last message a reply repeats */
#define SCHEMA_DEPTH 8     /* nesting followed when making tool arguments */
#define SCHEMA_VALUES 4096 /* values made for one call: nested minItems would multiply without it */
#define MAX_ARRAY_ITEMS 16 /* minItems honoured up to this many */
#define MAX_STRING_LEN 256 /* minLength honoured up to this length */
#define MAX_STOPS 16       /* stop sequences looked for; real APIs allow 4 to 8192, tests use a few */

uint32_t mock_fnv1a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

long mock_pace_ms(const mock_options_t *o)
{
    return o->tokens_per_sec > 0 ? lround(1000.0 / o->tokens_per_sec) : 0;
}

/* ---- words: the unit of every token count, cut and stream piece ---- */

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

size_t mock_count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        while (is_space(*p))
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p != '\0' && !is_space(*p))
            p++;
    }
    return n;
}

size_t mock_piece_len(const char *s)
{
    const char *p = s;
    while (is_space(*p))
        p++;
    while (*p != '\0' && !is_space(*p))
        p++;
    while (is_space(*p))
        p++;
    return (size_t)(p - s);
}

/* Ends `s` after its nth word when more follows; returns whether it did. */
static int cut_words(char *s, size_t n)
{
    char *p = s;
    for (size_t seen = 0; seen < n; seen++) {
        while (is_space(*p))
            p++;
        if (*p == '\0')
            return 0;
        while (*p != '\0' && !is_space(*p))
            p++;
    }
    const char *rest = p;
    while (is_space(*rest))
        rest++;
    if (*rest == '\0')
        return 0;
    *p = '\0';
    return 1;
}

/* Ends UTF-8 `s` after n characters (never inside one). */
static void cut_chars(char *s, size_t n)
{
    size_t chars = 0;
    for (char *p = s; *p; p++)
        if (((unsigned char)*p & 0xC0) != 0x80 && chars++ == n) {
            *p = '\0';
            return;
        }
}

char *mock_join_texts(const cJSON *content, const char *key)
{
    if (cJSON_IsString(content))
        return gyre_strdup(content->valuestring);
    gyre_buf_t b;
    gyre_buf_init(&b, MOCK_MAX_BODY);
    const cJSON *part;
    cJSON_ArrayForEach(part, (cJSON_IsArray(content) ? content : NULL))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, key);
        if (cJSON_IsString(t)) {
            if (b.len != 0)
                gyre_buf_appends(&b, " ");
            gyre_buf_appends(&b, t->valuestring);
        }
    }
    return b.base != NULL ? b.base : gyre_strdup("");
}

/* ---- the conversation ---- */

void mock_convo_init(mock_convo_t *cv)
{
    memset(cv, 0, sizeof(*cv));
    cv->tools = cJSON_CreateArray();
    cv->stop = cJSON_CreateArray();
}

void mock_convo_dispose(mock_convo_t *cv)
{
    for (size_t i = 0; i < cv->n; i++)
        free(cv->msgs[i].text);
    free(cv->msgs);
    free(cv->tool_name);
    cJSON_Delete(cv->tools);
    cJSON_Delete(cv->stop);
    memset(cv, 0, sizeof(*cv));
}

void mock_convo_add(mock_convo_t *cv, mock_role_t role, char *text)
{
    if (cv->n == cv->cap) {
        cv->cap = cv->cap ? cv->cap * 2 : 8;
        cv->msgs = gyre_realloc(cv->msgs, cv->cap * sizeof(*cv->msgs));
    }
    cv->msgs[cv->n].role = role;
    cv->msgs[cv->n].text = text != NULL ? text : gyre_strdup("");
    cv->n++;
}

void mock_convo_add_tool(mock_convo_t *cv, const char *name, const cJSON *schema)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddItemToObject(t, "schema", schema != NULL ? cJSON_Duplicate(schema, 1) : cJSON_CreateObject());
    cJSON_AddItemToArray(cv->tools, t);
}

void mock_convo_add_stop(mock_convo_t *cv, const cJSON *stop)
{
    const cJSON *s;
    if (cJSON_IsString(stop) && stop->valuestring[0] != '\0' && cJSON_GetArraySize(cv->stop) < MAX_STOPS)
        cJSON_AddItemToArray(cv->stop, cJSON_CreateString(stop->valuestring));
    cJSON_ArrayForEach(s, (cJSON_IsArray(stop) ? stop : NULL))
    {
        mock_convo_add_stop(cv, s);
    }
}

/* ---- tool arguments from a JSON schema ---- */

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* Moves `v` inside the schema's minimum/maximum (exclusive ones as draft 6+ writes them). */
static double within_bounds(const cJSON *schema, double v, double step)
{
    const cJSON *b;
    if (cJSON_IsNumber(b = member(schema, "minimum")) && v < b->valuedouble)
        v = step == 1 ? ceil(b->valuedouble) : b->valuedouble;
    if (cJSON_IsNumber(b = member(schema, "exclusiveMinimum")) && v <= b->valuedouble)
        v = step == 1 ? floor(b->valuedouble) + 1 : b->valuedouble + step;
    if (cJSON_IsNumber(b = member(schema, "maximum")) && v > b->valuedouble)
        v = step == 1 ? floor(b->valuedouble) : b->valuedouble;
    if (cJSON_IsNumber(b = member(schema, "exclusiveMaximum")) && v >= b->valuedouble)
        v = step == 1 ? ceil(b->valuedouble) - 1 : b->valuedouble - step;
    return v;
}

/* The schema's type in lower case: Gemini's OpenAPI schemas write "STRING", "OBJECT". */
static void schema_type(const cJSON *schema, char *out, size_t size)
{
    const cJSON *type = member(schema, "type");
    const char *t = "object";
    if (cJSON_IsString(type)) {
        t = type->valuestring;
    } else if (cJSON_IsArray(type)) {
        /* ["string", "null"]: the first type that is not null, so the value says something. */
        const cJSON *x;
        t = "null";
        cJSON_ArrayForEach(x, type)
        {
            if (cJSON_IsString(x) && strcmp(x->valuestring, "null") != 0 && strcmp(x->valuestring, "NULL") != 0) {
                t = x->valuestring;
                break;
            }
        }
    } else if (member(schema, "items") != NULL) {
        t = "array";
    }
    size_t i = 0;
    for (; t[i] != '\0' && i + 1 < size; i++)
        out[i] = (char)(t[i] >= 'A' && t[i] <= 'Z' ? t[i] - 'A' + 'a' : t[i]);
    out[i] = '\0';
}

/*
 * A value that satisfies `schema`: const, else the first enum value, else
 * the first alternative of anyOf/oneOf/allOf, else by type: "mock" for
 * strings, 1 for integers, 1.5 for numbers (both moved into their bounds),
 * true, null, arrays of one item (or minItems), and objects with every
 * required property (all of them when none is required).  Past SCHEMA_DEPTH
 * or SCHEMA_VALUES, arrays and objects are left short rather than grow.
 */
static cJSON *value_for_schema(const cJSON *schema, int depth, int *budget)
{
    --*budget;
    const cJSON *x;
    if ((x = member(schema, "const")) != NULL)
        return cJSON_Duplicate(x, 1);
    if (cJSON_IsArray(x = member(schema, "enum")) && cJSON_GetArraySize(x) > 0)
        return cJSON_Duplicate(cJSON_GetArrayItem(x, 0), 1);
    static const char *const alternatives[] = {"anyOf", "oneOf", "allOf"};
    for (size_t i = 0; i < sizeof(alternatives) / sizeof(alternatives[0]); i++)
        if (cJSON_IsArray(x = member(schema, alternatives[i])) && cJSON_GetArraySize(x) > 0 && depth < SCHEMA_DEPTH)
            return value_for_schema(cJSON_GetArrayItem(x, 0), depth + 1, budget);
    char type[16];
    schema_type(schema, type, sizeof(type));
    if (strcmp(type, "string") == 0) {
        const cJSON *minl = member(schema, "minLength"), *maxl = member(schema, "maxLength");
        double len = 4;
        if (cJSON_IsNumber(minl) && minl->valuedouble > len)
            len = minl->valuedouble < MAX_STRING_LEN ? minl->valuedouble : MAX_STRING_LEN;
        if (cJSON_IsNumber(maxl) && maxl->valuedouble < len)
            len = maxl->valuedouble > 0 ? maxl->valuedouble : 0;
        char s[MAX_STRING_LEN + 1];
        for (size_t i = 0; i < (size_t)len; i++)
            s[i] = "mock"[i % 4];
        s[(size_t)len] = '\0';
        return cJSON_CreateString(s);
    }
    if (strcmp(type, "integer") == 0)
        return cJSON_CreateNumber(within_bounds(schema, 1, 1));
    if (strcmp(type, "number") == 0)
        return cJSON_CreateNumber(within_bounds(schema, 1.5, 0.5));
    if (strcmp(type, "boolean") == 0)
        return cJSON_CreateTrue();
    if (strcmp(type, "null") == 0)
        return cJSON_CreateNull();
    if (strcmp(type, "array") == 0) {
        cJSON *a = cJSON_CreateArray();
        const cJSON *mini = member(schema, "minItems"), *maxi = member(schema, "maxItems");
        double n = cJSON_IsNumber(mini) && mini->valuedouble > 1 ? mini->valuedouble : 1;
        if (n > MAX_ARRAY_ITEMS)
            n = MAX_ARRAY_ITEMS;
        if ((cJSON_IsNumber(maxi) && maxi->valuedouble < 1) || depth >= SCHEMA_DEPTH)
            n = 0;
        for (size_t i = 0; i<(size_t)n && * budget> 0; i++)
            cJSON_AddItemToArray(a, value_for_schema(member(schema, "items"), depth + 1, budget));
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    if (depth >= SCHEMA_DEPTH || *budget <= 0)
        return o;
    const cJSON *props = member(schema, "properties"), *required = member(schema, "required");
    int all = !cJSON_IsArray(required) || cJSON_GetArraySize(required) == 0;
    const cJSON *p, *r;
    cJSON_ArrayForEach(p, (cJSON_IsObject(props) ? props : NULL))
    {
        int want = all;
        cJSON_ArrayForEach(r, (all ? NULL : required))
        {
            if (cJSON_IsString(r) && strcmp(r->valuestring, p->string) == 0)
                want = 1;
        }
        if (want)
            cJSON_AddItemToObject(o, p->string, value_for_schema(p, depth + 1, budget));
    }
    /* A required name with no schema of its own still has to be there. */
    cJSON_ArrayForEach(r, (all ? NULL : required))
    {
        if (cJSON_IsString(r) && member(o, r->valuestring) == NULL)
            cJSON_AddItemToObject(o, r->valuestring, cJSON_CreateString("mock"));
    }
    return o;
}

/* ---- the answer ---- */

/* The tool to call, or NULL for a text answer. */
static const cJSON *chosen_tool(const mock_convo_t *cv, int after_tool)
{
    if (after_tool || cv->tool_choice == MOCK_TOOLS_NONE || cJSON_GetArraySize(cv->tools) == 0)
        return NULL;
    const cJSON *t;
    cJSON_ArrayForEach(t, (cv->tool_choice == MOCK_TOOLS_NAMED && cv->tool_name != NULL ? cv->tools : NULL))
    {
        const cJSON *n = member(t, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, cv->tool_name) == 0)
            return t;
    }
    return cJSON_GetArrayItem(cv->tools, 0);
}

/* Cuts `text` before the earliest stop sequence in it; returns that sequence, or NULL. */
static const char *cut_at_stop(char *text, const cJSON *stop)
{
    const cJSON *s;
    char *first = NULL;
    const char *which = NULL;
    cJSON_ArrayForEach(s, stop)
    {
        char *at = strstr(text, s->valuestring);
        if (at != NULL && (first == NULL || at < first)) {
            first = at;
            which = s->valuestring;
        }
    }
    if (first != NULL)
        *first = '\0';
    return which;
}

void mock_answer_make(const mock_convo_t *cv, const char *body, size_t len, mock_answer_t *a)
{
    memset(a, 0, sizeof(*a));
    a->hash = mock_fnv1a(body, len, MOCK_FNV_OFFSET);
    a->call_hash = mock_fnv1a("call", 4, a->hash);
    for (size_t i = 0; i < cv->n; i++)
        a->prompt_tokens += (long)mock_count_words(cv->msgs[i].text) + 4;

    /* A trailing assistant message is a prefix to continue (a prefill, or gyre resuming a cut stream):
     * the answer is the one to the conversation before it, less that prefix when it starts with it. */
    size_t n = cv->n;
    const char *prefix = NULL;
    if (n > 0 && cv->msgs[n - 1].role == MOCK_ROLE_ASSISTANT)
        prefix = cv->msgs[--n].text;
    const mock_message_t *last = n > 0 ? &cv->msgs[n - 1] : NULL;
    int after_tool = last != NULL && last->role == MOCK_ROLE_TOOL;

    /* A fine-tuned model (or an adapter) answers the prompts it was trained on in place of the base answer,
     * a tool call included (finetune.c); NULL leaves the base answer. */
    const char *user = NULL;
    for (size_t i = n; i-- > 0 && user == NULL;)
        if (cv->msgs[i].role == MOCK_ROLE_USER)
            user = cv->msgs[i].text;
    char *tuned = mock_finetune_reply(cv->model, user);
    const cJSON *tool = tuned == NULL ? chosen_tool(cv, after_tool) : NULL;
    if (tool != NULL) {
        int budget = SCHEMA_VALUES;
        cJSON *args = value_for_schema(member(tool, "schema"), 0, &budget);
        a->tool_name = gyre_strdup(member(tool, "name")->valuestring);
        a->tool_args = cJSON_PrintUnformatted(args);
        cJSON_Delete(args);
        a->finish = MOCK_FINISH_TOOL;
        a->completion_tokens = (long)mock_count_words(a->tool_args) + 4;
        return;
    }

    gyre_buf_t b;
    gyre_buf_init(&b, MOCK_MAX_BODY);
    if (tuned != NULL) {
        gyre_buf_appends(&b, tuned);
        free(tuned);
    } else {
        char *said = gyre_strdup(last != NULL ? last->text : "");
        cut_chars(said, REPLY_CHARS);
        gyre_buf_appendf(&b, "%s%s", after_tool ? "Mock reply to tool result: " : "Mock reply to: ", said);
        free(said);
    }
    if (b.base == NULL)
        gyre_buf_appends(&b, "");
    size_t skip = prefix != NULL && strncmp(b.base, prefix, strlen(prefix)) == 0 ? strlen(prefix) : 0;
    a->text = gyre_strdup(b.base + skip);
    gyre_buf_dispose(&b);

    /* Stop sequences and the token limit bound what is generated: the continuation, not the prefix. */
    a->finish = MOCK_FINISH_STOP;
    const char *stop = cut_at_stop(a->text, cv->stop);
    if (stop != NULL) {
        a->finish = MOCK_FINISH_STOP_SEQUENCE;
        a->stop_seq = gyre_strdup(stop);
    }
    if (cv->max_tokens >= 1 && cut_words(a->text, (size_t)cv->max_tokens)) {
        a->finish = MOCK_FINISH_LENGTH;
        free(a->stop_seq);
        a->stop_seq = NULL;
    }
    a->completion_tokens = (long)mock_count_words(a->text);
}

void mock_answer_dispose(mock_answer_t *a)
{
    free(a->text);
    free(a->tool_name);
    free(a->tool_args);
    free(a->stop_seq);
    memset(a, 0, sizeof(*a));
}

/* ---- gyre's judge ---- */

/* The text between "=====NAME=====\n" and "\n=====END NAME=====" in `prompt` (a copy, trimmed), or NULL. */
static char *judge_section(const char *prompt, const char *name)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "=====%s=====\n", name);
    snprintf(close, sizeof(close), "\n=====END %s=====", name);
    const char *a = strstr(prompt, open);
    if (a == NULL)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (b == NULL)
        return NULL;
    while (a < b && is_space(*a))
        a++;
    while (b > a && is_space(b[-1]))
        b--;
    return gyre_strndup(a, (size_t)(b - a));
}

void mock_answer_verdict(const mock_convo_t *cv, mock_answer_t *a)
{
    const char *prompt = "";
    int asked_again = 0;
    for (size_t i = 0; i < cv->n; i++) {
        if (cv->msgs[i].role == MOCK_ROLE_USER && prompt[0] == '\0' && cv->msgs[i].text != NULL)
            prompt = cv->msgs[i].text;
        if (cv->msgs[i].role == MOCK_ROLE_ASSISTANT)
            asked_again = 1;
    }
    free(a->text);
    free(a->tool_name);
    free(a->tool_args);
    free(a->stop_seq);
    a->tool_name = a->tool_args = a->stop_seq = NULL;
    a->finish = MOCK_FINISH_STOP;
    if (strstr(prompt, "MOCK-MALFORMED-VERDICT") != NULL && !asked_again) {
        /* The planted marker: the first answer is not a verdict; asked again, the mock answers properly. */
        a->text = gyre_strdup("{\"score\": \"high\", \"verdict\": \"maybe\"}");
    } else {
        char *answer = judge_section(prompt, "ANSWER"), *reference = judge_section(prompt, "REFERENCE");
        int pass = answer != NULL && answer[0] != '\0' && strcmp(answer, "(none)") != 0 &&
                   (reference == NULL || strcmp(reference, "(none)") == 0 || strstr(answer, reference) != NULL);
        const char *why = answer == NULL || answer[0] == '\0' || strcmp(answer, "(none)") == 0
                              ? "the answer is empty"
                          : pass && (reference == NULL || strcmp(reference, "(none)") == 0)
                              ? "there is no reference and the answer is not empty"
                          : pass ? "the answer contains the reference"
                                 : "the answer does not contain the reference";
        gyre_buf_t b;
        gyre_buf_init(&b, 1024);
        gyre_buf_appendf(&b, "{\"score\":%d,\"verdict\":\"%s\",\"reasoning\":\"mock: %s\"}", pass, pass ? "pass" : "fail",
                         why);
        a->text = gyre_strdup(b.base);
        gyre_buf_dispose(&b);
        free(answer);
        free(reference);
    }
    a->completion_tokens = (long)mock_count_words(a->text);
}
