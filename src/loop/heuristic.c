/*
 * The heuristic checks of heuristic.h, one function per kind behind one table.  Each is bounded by what it reads
 * (GYRE_HEURISTIC_TEXT_MAX, GYRE_HEURISTIC_JSON_MAX) and does work linear in it: the lexicons are matched in one
 * pass at word starts, the patterns are POSIX extended expressions (glibc's ERE has no backreferences, so no
 * backtracking blow-up), and the schema walk has its own bounds (jsonschema.h).
 *
 * The lexicons are data in this file, lower case, matched as whole words (or phrases: a space in a term matches
 * any run of whitespace, an apostrophe also the typographic one), ASCII letters compared without case.  They are
 * heuristics: short lists that catch the common phrasings, not classifiers.
 */
#include "loop/heuristic.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "loop/jsonschema.h"

/* What answers say when they refuse. */
static const char *const refusal_lexicon[] = {
    "i'm sorry, but i can't",  "i'm sorry, but i cannot", "i am sorry, but i cannot", "i'm sorry, i can't",
    "i cannot help with",      "i can't help with",       "i cannot assist with",     "i can't assist with",
    "i'm unable to help",      "i am unable to help",     "i'm not able to help",     "i am not able to help",
    "i'm unable to provide",   "i cannot provide",        "i can't provide",          "i cannot comply",
    "i can't comply",          "i must decline",          "i won't be able to help",  "as an ai",
    "as a language model",     "as an ai language model",
};

/* Insults and profanity aimed at a person: a tame, small list (`terms:` adds the operator's own). */
static const char *const toxicity_lexicon[] = {
    "idiot",   "idiots",  "stupid",  "moron",   "morons",   "imbecile", "dumbass", "loser",     "worthless",
    "pathetic", "scumbag", "bastard", "asshole", "bitch",   "shut up",  "go to hell", "i hate you", "piece of garbage",
};

#define MAX_TERMS 512 /* builtin and `terms:` together, per check */

typedef struct lexicon {
    const char **terms; /* sorted by first byte; builtin ones point into the tables above, the rest are owned */
    size_t nterms;
    unsigned short first[257]; /* terms[first[b] .. first[b+1]) begin with byte b */
    unsigned char starts[256]; /* a term begins with this byte (either case; 0xE2 for a typographic apostrophe) */
    char **owned;
    size_t nowned;
} lexicon_t;

struct gyre_heuristic {
    gyre_scorer_kind_t kind;
    char *name;
    regex_t *must, *must_not; /* regex */
    char **must_src, **must_not_src;
    size_t nmust, nmust_not;
    cJSON *schema; /* json_schema */
    lexicon_t lex; /* refusal, toxicity */
    size_t min_chars, max_chars;
    uint64_t max_latency_ms;
    double max_cost_usd;
};

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Byte order (so by first byte, and the same order every time: the shorter of two terms that both match is found). */
static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void lexicon_init(lexicon_t *l, const char *const *builtin, size_t nbuiltin, char *const *extra, size_t nextra)
{
    memset(l, 0, sizeof(*l));
    l->terms = gyre_calloc(nbuiltin + nextra + 1, sizeof(*l->terms));
    l->owned = gyre_calloc(nextra + 1, sizeof(*l->owned));
    for (size_t i = 0; i < nbuiltin; i++)
        l->terms[l->nterms++] = builtin[i];
    for (size_t i = 0; i < nextra && l->nterms < MAX_TERMS; i++) {
        if (extra[i][0] == '\0')
            continue;
        char *t = gyre_strdup(extra[i]);
        for (char *p = t; *p; p++)
            *p = (char)lower((unsigned char)*p);
        l->owned[l->nowned++] = t;
        l->terms[l->nterms++] = t;
    }
    qsort(l->terms, l->nterms, sizeof(*l->terms), by_bytes);
    size_t j = 0;
    for (unsigned b = 0; b <= 256; b++) {
        while (j < l->nterms && (unsigned char)l->terms[j][0] < b)
            j++;
        l->first[b] = (unsigned short)j;
    }
    for (size_t i = 0; i < l->nterms; i++) {
        unsigned char b = (unsigned char)l->terms[i][0];
        l->starts[b] = 1;
        if (b >= 'a' && b <= 'z')
            l->starts[b - 32] = 1;
        if (b == '\'')
            l->starts[0xE2] = 1;
    }
}

static void lexicon_dispose(lexicon_t *l)
{
    for (size_t i = 0; i < l->nowned; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->terms);
}

/* Whether `term` is in s at i, ending at a word's end: the end's index, or 0. */
static size_t match_at(const char *s, size_t n, size_t i, const char *term)
{
    for (const char *t = term; *t != '\0'; t++) {
        if (i >= n)
            return 0;
        unsigned char c = (unsigned char)s[i];
        if (*t == ' ') {
            if (!is_space(c))
                return 0;
            while (i < n && is_space((unsigned char)s[i]))
                i++;
            continue;
        }
        /* ’ and ‘ (U+2019, U+2018) stand for the apostrophe, as answers often write it. */
        if (*t == '\'' && c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
            ((unsigned char)s[i + 2] == 0x98 || (unsigned char)s[i + 2] == 0x99)) {
            i += 3;
            continue;
        }
        if (lower(c) != (unsigned char)*t)
            return 0;
        i++;
    }
    return i < n && is_alnum((unsigned char)s[i]) && is_alnum((unsigned char)term[strlen(term) - 1]) ? 0 : i;
}

/* Byte classes, once: a letter or digit (or any byte of a multi-byte character), and a byte some term may begin
 * with (set per lexicon, both cases). */
static const unsigned char *alnum_table(void)
{
    static unsigned char t[256];
    static int made;
    if (!__atomic_load_n(&made, __ATOMIC_ACQUIRE)) {
        for (unsigned c = 0; c < 256; c++)
            t[c] = (unsigned char)is_alnum((unsigned char)c);
        __atomic_store_n(&made, 1, __ATOMIC_RELEASE); /* every thread writes the same bytes: a race is harmless */
    }
    return t;
}

/* The first term of `l` found in s (a whole word or phrase), or NULL.  One pass: a position is looked at only
 * where a word may begin (after a byte that is no letter or digit) and a term may begin with its byte. */
static const char *lexicon_find(const lexicon_t *l, const char *s, size_t n)
{
    const unsigned char *an = alnum_table();
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (!l->starts[u[i]] || (i > 0 && an[u[i - 1]] && an[u[i]]))
            continue;
        unsigned char b = lower(u[i]);
        for (size_t j = l->first[b]; j < l->first[b + 1]; j++)
            if (match_at(s, n, i, l->terms[j]) != 0)
                return l->terms[j];
        if (b == 0xE2) /* a term that begins with an apostrophe, written typographically */
            for (size_t j = l->first['\'']; j < l->first['\'' + 1]; j++)
                if (match_at(s, n, i, l->terms[j]) != 0)
                    return l->terms[j];
    }
    return NULL;
}

/* ---- compile ---- */

static int compile_patterns(char **src, size_t n, regex_t **out, char ***copy, const char *field, char *err,
                            size_t errlen)
{
    *out = gyre_calloc(n + 1, sizeof(**out));
    *copy = gyre_calloc(n + 1, sizeof(**copy));
    for (size_t i = 0; i < n; i++) {
        int rc = regcomp(&(*out)[i], src[i], REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &(*out)[i], msg, sizeof(msg));
            snprintf(err, errlen, "%s[%zu]: '%.100s' is not a POSIX extended regular expression: %s", field, i,
                     src[i], msg);
            for (size_t j = 0; j < i; j++)
                regfree(&(*out)[j]);
            free(*out);
            *out = NULL;
            for (size_t j = 0; j < i; j++)
                free((*copy)[j]);
            free(*copy);
            *copy = NULL;
            return -1;
        }
        (*copy)[i] = gyre_strdup(src[i]);
    }
    return 0;
}

gyre_heuristic_t *gyre_heuristic_compile(const gyre_scorer_conf_t *conf, char *err, size_t errlen)
{
    if (conf->kind == GYRE_SCORER_JUDGE || conf->kind < GYRE_SCORER_JSON_VALID || conf->kind > GYRE_SCORER_JUDGE) {
        snprintf(err, errlen, "type: '%s' is not a heuristic (a judge runs through a route)",
                 conf->name ? conf->name : "?");
        return NULL;
    }
    gyre_heuristic_t *h = gyre_calloc(1, sizeof(*h));
    h->kind = conf->kind;
    h->name = gyre_strdup(conf->name ? conf->name : "");
    h->min_chars = conf->min_chars;
    h->max_chars = conf->max_chars;
    h->max_latency_ms = conf->max_latency_ms;
    h->max_cost_usd = conf->max_cost_usd;
    switch (conf->kind) {
    case GYRE_SCORER_REGEX:
        if (compile_patterns(conf->must, conf->nmust, &h->must, &h->must_src, "must", err, errlen) != 0)
            goto fail;
        h->nmust = conf->nmust;
        if (compile_patterns(conf->must_not, conf->nmust_not, &h->must_not, &h->must_not_src, "must_not", err,
                             errlen) != 0)
            goto fail;
        h->nmust_not = conf->nmust_not;
        break;
    case GYRE_SCORER_JSON_SCHEMA: {
        const char *s = conf->schema_json ? conf->schema_json : "";
        h->schema = cJSON_Parse(s);
        if (h->schema == NULL) {
            snprintf(err, errlen, "schema: is not JSON");
            goto fail;
        }
        char why[200];
        if (gyre_jsonschema_check(h->schema, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "schema: %s", why);
            goto fail;
        }
        break;
    }
    case GYRE_SCORER_REFUSAL:
        lexicon_init(&h->lex, refusal_lexicon, sizeof(refusal_lexicon) / sizeof(refusal_lexicon[0]), conf->terms,
                     conf->nterms);
        break;
    case GYRE_SCORER_TOXICITY:
        lexicon_init(&h->lex, toxicity_lexicon, sizeof(toxicity_lexicon) / sizeof(toxicity_lexicon[0]), conf->terms,
                     conf->nterms);
        break;
    default: break;
    }
    return h;
fail:
    gyre_heuristic_free(h);
    return NULL;
}

void gyre_heuristic_free(gyre_heuristic_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nmust; i++) {
        regfree(&h->must[i]);
        free(h->must_src[i]);
    }
    for (size_t i = 0; i < h->nmust_not; i++) {
        regfree(&h->must_not[i]);
        free(h->must_not_src[i]);
    }
    free(h->must);
    free(h->must_src);
    free(h->must_not);
    free(h->must_not_src);
    cJSON_Delete(h->schema);
    if (h->lex.terms != NULL)
        lexicon_dispose(&h->lex);
    free(h->name);
    free(h);
}

/* ---- run ---- */

static void set_fail(gyre_check_result_t *out, double value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_fail(gyre_check_result_t *out, double value, const char *fmt, ...)
{
    out->pass = 0;
    out->value = value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

static void set_pass(gyre_check_result_t *out, double value)
{
    out->pass = 1;
    out->value = value;
    out->reason[0] = '\0';
}

static int regex_found(const regex_t *re, const char *s, size_t n)
{
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)n;
    return regexec(re, s, 1, m, REG_STARTEND) == 0;
}

static void run_regex(const gyre_heuristic_t *h, const char *s, size_t n, gyre_check_result_t *out)
{
    for (size_t i = 0; i < h->nmust; i++)
        if (!regex_found(&h->must[i], s, n)) {
            set_fail(out, 0, "must[%zu] '%.60s' does not match", i, h->must_src[i]);
            return;
        }
    for (size_t i = 0; i < h->nmust_not; i++)
        if (regex_found(&h->must_not[i], s, n)) {
            set_fail(out, 0, "must_not[%zu] '%.60s' matches", i, h->must_not_src[i]);
            return;
        }
    set_pass(out, 1);
}

/* A JSON text of at most GYRE_HEURISTIC_JSON_MAX bytes, parsed; NULL with the reason set. */
static cJSON *parse_bounded(const char *s, size_t n, const char *what, gyre_check_result_t *out)
{
    if (n > GYRE_HEURISTIC_JSON_MAX) {
        set_fail(out, 0, "%s is longer than the check reads (%zu bytes)", what, GYRE_HEURISTIC_JSON_MAX);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(s, n);
    if (j == NULL)
        set_fail(out, 0, "%s is not valid JSON", what);
    return j;
}

static void run_tool_args(const gyre_check_input_t *in, gyre_check_result_t *out)
{
    if (in->tool_calls_json == NULL) {
        set_pass(out, 1); /* no tool call: nothing to check */
        return;
    }
    cJSON *calls = parse_bounded(in->tool_calls_json, strlen(in->tool_calls_json), "the tool calls", out);
    if (calls == NULL)
        return;
    cJSON *tools = NULL;
    if (in->tools_json != NULL && (tools = parse_bounded(in->tools_json, strlen(in->tools_json), "the tools", out)) == NULL) {
        cJSON_Delete(calls);
        return;
    }
    set_pass(out, 1);
    const cJSON *call;
    int i = 0;
    cJSON_ArrayForEach(call, calls)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (!cJSON_IsString(name)) {
            set_fail(out, 0, "tool call %d has no function name", i);
            break;
        }
        const cJSON *params = NULL;
        int found = 0;
        const cJSON *tool;
        cJSON_ArrayForEach(tool, tools)
        {
            const cJSON *tf = cJSON_GetObjectItemCaseSensitive(tool, "function");
            const cJSON *tn = cJSON_GetObjectItemCaseSensitive(tf, "name");
            if (cJSON_IsString(tn) && strcmp(tn->valuestring, name->valuestring) == 0) {
                params = cJSON_GetObjectItemCaseSensitive(tf, "parameters");
                found = 1;
                break;
            }
        }
        if (!found) {
            set_fail(out, 0, "tool call '%.40s' names no tool of the request", name->valuestring);
            break;
        }
        /* OpenAI sends arguments as a JSON string; an object is taken as it is. */
        cJSON *parsed = NULL;
        const cJSON *doc = args;
        if (cJSON_IsString(args)) {
            parsed = cJSON_ParseWithLength(args->valuestring, strlen(args->valuestring));
            if (parsed == NULL) {
                set_fail(out, 0, "tool call '%.40s': the arguments are not valid JSON", name->valuestring);
                break;
            }
            doc = parsed;
        } else if (args == NULL) {
            set_fail(out, 0, "tool call '%.40s' has no arguments", name->valuestring);
            break;
        }
        char why[200];
        int ok = params == NULL || gyre_jsonschema_validate(params, doc, why, sizeof(why));
        cJSON_Delete(parsed);
        if (!ok) {
            set_fail(out, 0, "tool call '%.40s': %s", name->valuestring, why);
            break;
        }
        i++;
    }
    cJSON_Delete(tools);
    cJSON_Delete(calls);
}

/* Characters: the bytes that are not continuation bytes (10xxxxxx), eight at a time. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t cont = w & ~(w << 1) & 0x8080808080808080ull; /* bit 7 set, bit 6 clear */
        c += 8 - (size_t)__builtin_popcountll(cont);
    }
    for (; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

void gyre_heuristic_run(const gyre_heuristic_t *h, const gyre_check_input_t *in, gyre_check_result_t *out)
{
    const char *s = in->text != NULL ? in->text : "";
    size_t n = in->text != NULL ? in->len : 0;
    size_t tn = n < GYRE_HEURISTIC_TEXT_MAX ? n : GYRE_HEURISTIC_TEXT_MAX;
    switch (h->kind) {
    case GYRE_SCORER_JSON_VALID:
        if (n > GYRE_HEURISTIC_JSON_MAX)
            set_fail(out, 0, "the answer is longer than the check reads (%zu bytes)", GYRE_HEURISTIC_JSON_MAX);
        else if (gyre_json_valid(s, n))
            set_pass(out, 1);
        else
            set_fail(out, 0, "the answer is not valid JSON");
        return;
    case GYRE_SCORER_JSON_SCHEMA: {
        cJSON *doc = parse_bounded(s, n, "the answer", out);
        if (doc == NULL)
            return;
        char why[200];
        if (gyre_jsonschema_validate(h->schema, doc, why, sizeof(why)))
            set_pass(out, 1);
        else
            set_fail(out, 0, "the answer does not match the schema: %s", why);
        cJSON_Delete(doc);
        return;
    }
    case GYRE_SCORER_REGEX: run_regex(h, s, tn, out); return;
    case GYRE_SCORER_REFUSAL: {
        const char *t = lexicon_find(&h->lex, s, tn);
        /* The score measures what the check is named after: 1 when the answer refuses (the check fails), so a
         * curation filter reads `not heuristic.refusal` as "answers that do not refuse". */
        if (t != NULL)
            set_fail(out, 1, "the answer refuses ('%.80s')", t);
        else
            set_pass(out, 0);
        return;
    }
    case GYRE_SCORER_TOXICITY: {
        const char *t = lexicon_find(&h->lex, s, tn);
        if (t != NULL) /* 1 when a toxic term is found, as refusal's: the score names what it measures */
            set_fail(out, 1, "the text has a toxic term ('%.80s')", t);
        else
            set_pass(out, 0);
        return;
    }
    case GYRE_SCORER_TOOL_ARGS: run_tool_args(in, out); return;
    case GYRE_SCORER_LENGTH: {
        size_t c = utf8_chars(s, n);
        if (c < h->min_chars)
            set_fail(out, (double)c, "%zu characters; the minimum is %zu", c, h->min_chars);
        else if (h->max_chars != 0 && c > h->max_chars)
            set_fail(out, (double)c, "%zu characters; the maximum is %zu", c, h->max_chars);
        else
            set_pass(out, (double)c);
        return;
    }
    case GYRE_SCORER_LATENCY:
        if (in->latency_us < 0) {
            set_pass(out, NAN); /* unknown: nothing to judge */
            return;
        }
        if ((uint64_t)in->latency_us > h->max_latency_ms * 1000)
            set_fail(out, (double)in->latency_us / 1000.0, "took %.0f ms; the maximum is %llu ms",
                     (double)in->latency_us / 1000.0, (unsigned long long)h->max_latency_ms);
        else
            set_pass(out, (double)in->latency_us / 1000.0);
        return;
    case GYRE_SCORER_COST:
        if (isnan(in->cost_usd)) {
            set_pass(out, NAN);
            return;
        }
        if (in->cost_usd > h->max_cost_usd)
            set_fail(out, in->cost_usd, "cost $%.6f; the maximum is $%.6f", in->cost_usd, h->max_cost_usd);
        else
            set_pass(out, in->cost_usd);
        return;
    case GYRE_SCORER_JUDGE: break;
    }
    set_fail(out, 0, "not a heuristic check");
}
