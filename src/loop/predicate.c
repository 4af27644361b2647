/*
 * The curation filter language (predicate.h says the grammar and the
 * meaning).  A recursive-descent parser over a token stream builds a tree
 * whose names are resolved at parse time (a field, or a score by source and
 * name), so evaluation is a walk that compares numbers and strings.  The
 * parser is strict: every error names the byte position and what was
 * expected, and it reads at most GYRE_PREDICATE_MAX_LEN bytes and nests at
 * most GYRE_PREDICATE_MAX_DEPTH deep.
 */
#include "loop/predicate.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* ---- Names. ---- */

typedef enum ref_kind {
    REF_SCORE = 0,
    /* numeric fields */
    REF_STATUS,
    REF_COST,
    REF_LATENCY_MS,
    REF_PROMPT_TOKENS,
    REF_COMPLETION_TOKENS,
    REF_STREAM,
    REF_CLUSTER,
    /* string fields (from here on) */
    REF_ROUTE,
    REF_AGENT,
    REF_MODEL,
    REF_PROVIDER,
    REF_SESSION,
    REF_USER,
    REF_TEAM,
    REF_ENDPOINT,
    REF_CORRECTION,
    REF_ANSWER,
} ref_kind_t;

#define REF_FIRST_STRING REF_ROUTE

static const struct {
    const char *name;
    ref_kind_t kind;
} fields[] = {
    {"status", REF_STATUS},
    {"cost_usd", REF_COST},
    {"latency_ms", REF_LATENCY_MS},
    {"prompt_tokens", REF_PROMPT_TOKENS},
    {"completion_tokens", REF_COMPLETION_TOKENS},
    {"stream", REF_STREAM},
    {"cluster", REF_CLUSTER},
    {"route", REF_ROUTE},
    {"agent", REF_AGENT},
    {"model", REF_MODEL},
    {"provider", REF_PROVIDER},
    {"session", REF_SESSION},
    {"user", REF_USER},
    {"team", REF_TEAM},
    {"endpoint", REF_ENDPOINT},
    {"correction", REF_CORRECTION},
    {"answer", REF_ANSWER},
};

static const struct {
    const char *prefix;
    int source; /* gyre_score_source_t; 0: any */
} sources[] = {
    {"judge", GYRE_SCORE_JUDGE},
    {"heuristic", GYRE_SCORE_HEURISTIC},
    {"feedback", GYRE_SCORE_HUMAN},
    {"guardrail", GYRE_SCORE_GUARDRAIL},
    {"score", 0},
};

typedef struct ref {
    ref_kind_t kind;
    int source; /* REF_SCORE: gyre_score_source_t, 0 for any */
    char *name; /* REF_SCORE: the score's name */
} ref_t;

/* ---- The tree. ---- */

typedef enum node_kind {
    N_OR,
    N_AND,
    N_NOT,
    N_HAS,   /* has(ref) */
    N_TRUTH, /* ref alone */
    N_CMP,   /* ref op value, or ref op ref */
} node_kind_t;

typedef enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op_t;
static const char *const op_text[] = {"==", "!=", "<", "<=", ">", ">="};

typedef enum lit_kind { LIT_NUM, LIT_STR, LIT_REF } lit_kind_t;

typedef struct node {
    node_kind_t kind;
    struct node *a, *b; /* OR, AND: both; NOT: a */
    ref_t ref;          /* HAS, TRUTH, CMP's left side */
    cmp_op_t op;
    lit_kind_t rhs_kind;
    double num;  /* LIT_NUM (a boolean is 0 or 1) */
    int is_bool; /* LIT_NUM written as true/false (for the canonical text) */
    char *str;   /* LIT_STR */
    ref_t rhs;   /* LIT_REF */
} node_t;

struct gyre_predicate {
    node_t *root;
};

/* ---- Tokens. ---- */

typedef enum tok_kind {
    T_END,
    T_LPAREN,
    T_RPAREN,
    T_CMP,
    T_NAME,
    T_NUM,
    T_STR,
    T_AND,
    T_OR,
    T_NOT,
    T_HAS,
    T_TRUE,
    T_FALSE,
} tok_kind_t;

typedef struct parser {
    const char *s;
    size_t len, pos;
    /* The current token. */
    tok_kind_t tok;
    size_t tok_pos, tok_len;
    cmp_op_t op;
    double num;
    char *str; /* T_STR's value (owned until taken) */
    int depth;
    char *err;
    size_t errlen;
    int failed;
} parser_t;

static void fail(parser_t *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser_t *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "position %zu: %s", pos + 1, msg);
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_byte(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
}

static const char *tok_desc(const parser_t *p, char *buf, size_t size)
{
    if (p->tok == T_END)
        return "the end";
    size_t n = p->tok_len > 40 ? 40 : p->tok_len;
    snprintf(buf, size, "'%.*s'", (int)n, p->s + p->tok_pos);
    return buf;
}

static void next(parser_t *p)
{
    free(p->str);
    p->str = NULL;
    while (p->pos < p->len &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
    p->tok_pos = p->pos;
    if (p->pos >= p->len) {
        p->tok = T_END;
        p->tok_len = 0;
        return;
    }
    const char *s = p->s;
    size_t i = p->pos;
    char c = s[i];
    if (c == '(' || c == ')') {
        p->tok = c == '(' ? T_LPAREN : T_RPAREN;
        p->pos = i + 1;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
        int eq = i + 1 < p->len && s[i + 1] == '=';
        if (c == '=' && eq)
            p->op = OP_EQ;
        else if (c == '!' && eq)
            p->op = OP_NE;
        else if (c == '<')
            p->op = eq ? OP_LE : OP_LT;
        else if (c == '>')
            p->op = eq ? OP_GE : OP_GT;
        else {
            fail(p, i, "'%c' is not an operator (comparisons are ==, !=, <, <=, >, >=)", c);
            p->tok = T_END;
            return;
        }
        p->tok = T_CMP;
        p->pos = i + 1 + (size_t)eq;
    } else if (c == '"' || c == '\'') {
        char q = c;
        char *out = gyre_malloc(p->len - i + 1);
        size_t o = 0;
        i++;
        for (;;) {
            if (i >= p->len) {
                free(out);
                fail(p, p->tok_pos, "a string that is never closed");
                p->tok = T_END;
                return;
            }
            char d = s[i];
            if (d == q) {
                i++;
                break;
            }
            if (d == '\\') {
                if (i + 1 >= p->len || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != '\'')) {
                    free(out);
                    fail(p, i, "an escape other than \\\\, \\\" or \\'");
                    p->tok = T_END;
                    return;
                }
                out[o++] = s[i + 1];
                i += 2;
                continue;
            }
            if ((unsigned char)d < 0x20) {
                free(out);
                fail(p, i, "a control character in a string");
                p->tok = T_END;
                return;
            }
            out[o++] = d;
            i++;
        }
        out[o] = '\0';
        p->str = out;
        p->tok = T_STR;
        p->pos = i;
    } else if ((c >= '0' && c <= '9') || c == '-' || c == '.') {
        /* [-] digits [. digits] [e [+-] digits], or [-] . digits */
        size_t j = i;
        if (s[j] == '-')
            j++;
        size_t digits = 0;
        while (j < p->len && s[j] >= '0' && s[j] <= '9')
            j++, digits++;
        if (j < p->len && s[j] == '.') {
            j++;
            while (j < p->len && s[j] >= '0' && s[j] <= '9')
                j++, digits++;
        }
        if (digits > 0 && j < p->len && (s[j] == 'e' || s[j] == 'E')) {
            size_t k = j + 1;
            if (k < p->len && (s[k] == '+' || s[k] == '-'))
                k++;
            size_t ed = 0;
            while (k < p->len && s[k] >= '0' && s[k] <= '9')
                k++, ed++;
            if (ed == 0) {
                fail(p, i, "a number with an empty exponent");
                p->tok = T_END;
                return;
            }
            j = k;
        }
        if (digits == 0 || (j < p->len && is_name_byte(s[j]) && s[j] != '.' && s[j] != '-' && s[j] != ':')) {
            fail(p, i, "not a number");
            p->tok = T_END;
            return;
        }
        char tmp[64];
        if (j - i >= sizeof(tmp)) {
            fail(p, i, "a number longer than 63 characters");
            p->tok = T_END;
            return;
        }
        memcpy(tmp, s + i, j - i);
        tmp[j - i] = '\0';
        p->num = strtod(tmp, NULL);
        if (!isfinite(p->num)) {
            fail(p, i, "a number out of range");
            p->tok = T_END;
            return;
        }
        p->tok = T_NUM;
        p->pos = j;
    } else if (is_name_start(c)) {
        size_t j = i;
        while (j < p->len && is_name_byte(s[j]))
            j++;
        size_t n = j - i;
        p->pos = j;
        p->tok = T_NAME;
        if (n == 3 && memcmp(s + i, "and", 3) == 0)
            p->tok = T_AND;
        else if (n == 2 && memcmp(s + i, "or", 2) == 0)
            p->tok = T_OR;
        else if (n == 3 && memcmp(s + i, "not", 3) == 0)
            p->tok = T_NOT;
        else if (n == 3 && memcmp(s + i, "has", 3) == 0)
            p->tok = T_HAS;
        else if (n == 4 && memcmp(s + i, "true", 4) == 0)
            p->tok = T_TRUE;
        else if (n == 5 && memcmp(s + i, "false", 5) == 0)
            p->tok = T_FALSE;
    } else {
        fail(p, i, "unexpected character '%c'", (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f ? c : '?');
        p->tok = T_END;
        return;
    }
    p->tok_len = p->pos - p->tok_pos;
}

/* ---- Parsing. ---- */

static void node_free(node_t *n)
{
    if (n == NULL)
        return;
    node_free(n->a);
    node_free(n->b);
    free(n->ref.name);
    free(n->rhs.name);
    free(n->str);
    free(n);
}

/* Resolves the current T_NAME token into a ref. */
static int resolve(parser_t *p, ref_t *r)
{
    const char *s = p->s + p->tok_pos;
    size_t n = p->tok_len;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strlen(fields[i].name) == n && memcmp(fields[i].name, s, n) == 0) {
            *r = (ref_t){fields[i].kind, 0, NULL};
            return 0;
        }
    const char *dot = memchr(s, '.', n);
    if (dot != NULL) {
        size_t pn = (size_t)(dot - s);
        for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
            if (strlen(sources[i].prefix) == pn && memcmp(sources[i].prefix, s, pn) == 0) {
                if (dot + 1 == s + n) {
                    fail(p, p->tok_pos, "'%.*s' names no score after the dot", (int)n, s);
                    return -1;
                }
                *r = (ref_t){REF_SCORE, sources[i].source, gyre_strndup(dot + 1, n - pn - 1)};
                return 0;
            }
    }
    if (s[n - 1] == '.' || s[n - 1] == '-' || s[n - 1] == ':') {
        fail(p, p->tok_pos, "a name cannot end with '%c'", s[n - 1]);
        return -1;
    }
    *r = (ref_t){REF_SCORE, 0, gyre_strndup(s, n)};
    return 0;
}

static int ref_is_string(const ref_t *r)
{
    return r->kind >= REF_FIRST_STRING;
}

static node_t *parse_or(parser_t *p);

static node_t *new_node(node_kind_t k)
{
    node_t *n = gyre_calloc(1, sizeof(*n));
    n->kind = k;
    return n;
}

static node_t *parse_unary(parser_t *p)
{
    char tb[64];
    if (p->failed)
        return NULL;
    if (++p->depth > GYRE_PREDICATE_MAX_DEPTH) {
        fail(p, p->tok_pos, "nested deeper than %d", GYRE_PREDICATE_MAX_DEPTH);
        return NULL;
    }
    node_t *n = NULL;
    switch (p->tok) {
    case T_NOT: {
        next(p);
        node_t *a = parse_unary(p);
        if (a == NULL)
            break;
        n = new_node(N_NOT);
        n->a = a;
        break;
    }
    case T_LPAREN: {
        size_t open = p->tok_pos;
        next(p);
        n = parse_or(p);
        if (n == NULL)
            break;
        if (p->tok != T_RPAREN) {
            fail(p, p->tok_pos, "expected ')' to close the '(' at position %zu, found %s", open + 1,
                 tok_desc(p, tb, sizeof(tb)));
            node_free(n);
            n = NULL;
            break;
        }
        next(p);
        break;
    }
    case T_HAS: {
        next(p);
        if (p->tok != T_LPAREN) {
            fail(p, p->tok_pos, "expected '(' after has, found %s", tok_desc(p, tb, sizeof(tb)));
            break;
        }
        next(p);
        if (p->tok != T_NAME) {
            fail(p, p->tok_pos, "expected a name in has(), found %s", tok_desc(p, tb, sizeof(tb)));
            break;
        }
        n = new_node(N_HAS);
        if (resolve(p, &n->ref) != 0) {
            node_free(n);
            n = NULL;
            break;
        }
        next(p);
        if (p->tok != T_RPAREN) {
            fail(p, p->tok_pos, "expected ')' after has's name, found %s", tok_desc(p, tb, sizeof(tb)));
            node_free(n);
            n = NULL;
            break;
        }
        next(p);
        break;
    }
    case T_NAME:
    case T_NUM:
    case T_STR:
    case T_TRUE:
    case T_FALSE: {
        /* operand [CMP operand]; a literal on the left is turned around (5 < x is x > 5). */
        node_t *m = new_node(N_TRUTH);
        int left_is_name = p->tok == T_NAME;
        size_t left_pos = p->tok_pos;
        if (left_is_name) {
            if (resolve(p, &m->ref) != 0) {
                node_free(m);
                break;
            }
        } else {
            m->rhs_kind = p->tok == T_STR ? LIT_STR : LIT_NUM;
            m->num = p->tok == T_TRUE ? 1 : p->tok == T_FALSE ? 0 : p->num;
            m->is_bool = p->tok == T_TRUE || p->tok == T_FALSE;
            if (p->tok == T_STR) {
                m->str = p->str;
                p->str = NULL;
            }
        }
        next(p);
        if (p->tok != T_CMP) {
            if (!left_is_name) {
                fail(p, left_pos, "a value alone is not a condition: compare it with a name");
                node_free(m);
                break;
            }
            n = m;
            break;
        }
        cmp_op_t op = p->op;
        size_t op_pos = p->tok_pos;
        next(p);
        if (p->tok != T_NAME && p->tok != T_NUM && p->tok != T_STR && p->tok != T_TRUE && p->tok != T_FALSE) {
            fail(p, p->tok_pos, "expected a value after '%s', found %s", op_text[op], tok_desc(p, tb, sizeof(tb)));
            node_free(m);
            break;
        }
        m->kind = N_CMP;
        if (p->tok == T_NAME) {
            ref_t r;
            if (resolve(p, &r) != 0) {
                node_free(m);
                break;
            }
            if (left_is_name) {
                m->rhs_kind = LIT_REF;
                m->rhs = r;
                m->op = op;
            } else {
                /* literal op name: swap the sides. */
                static const cmp_op_t flip[] = {OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE};
                m->ref = r;
                m->op = flip[op];
            }
        } else {
            if (!left_is_name) {
                fail(p, p->tok_pos, "two values compared: one side must be a name");
                node_free(m);
                break;
            }
            m->op = op;
            m->rhs_kind = p->tok == T_STR ? LIT_STR : LIT_NUM;
            m->num = p->tok == T_TRUE ? 1 : p->tok == T_FALSE ? 0 : p->num;
            m->is_bool = p->tok == T_TRUE || p->tok == T_FALSE;
            if (p->tok == T_STR) {
                m->str = p->str;
                p->str = NULL;
            }
        }
        /* Types that can never compare are errors now, not a silent false at every example. */
        if (m->rhs_kind == LIT_STR && m->op != OP_EQ && m->op != OP_NE) {
            fail(p, op_pos, "a string compares only with == or !=");
            node_free(m);
            break;
        }
        if (m->rhs_kind == LIT_STR && m->ref.kind != REF_SCORE && !ref_is_string(&m->ref)) {
            fail(p, left_pos, "%s is a number: compare it with a number", fields[m->ref.kind - 1].name);
            node_free(m);
            break;
        }
        if (m->rhs_kind == LIT_NUM && ref_is_string(&m->ref)) {
            fail(p, left_pos, "this field is a string: compare it with a quoted string");
            node_free(m);
            break;
        }
        next(p);
        n = m;
        break;
    }
    case T_END: fail(p, p->tok_pos, "expected a condition, found the end"); break;
    default: fail(p, p->tok_pos, "expected a condition, found %s", tok_desc(p, tb, sizeof(tb))); break;
    }
    p->depth--;
    if (p->failed) {
        node_free(n);
        return NULL;
    }
    return n;
}

static node_t *parse_and(parser_t *p)
{
    node_t *l = parse_unary(p);
    while (l != NULL && p->tok == T_AND) {
        next(p);
        node_t *r = parse_unary(p);
        if (r == NULL) {
            node_free(l);
            return NULL;
        }
        node_t *n = new_node(N_AND);
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static node_t *parse_or(parser_t *p)
{
    node_t *l = parse_and(p);
    while (l != NULL && p->tok == T_OR) {
        next(p);
        node_t *r = parse_and(p);
        if (r == NULL) {
            node_free(l);
            return NULL;
        }
        node_t *n = new_node(N_OR);
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

gyre_predicate_t *gyre_predicate_parse(const char *text, char *err, size_t errlen)
{
    size_t len = strlen(text);
    if (len > GYRE_PREDICATE_MAX_LEN) {
        snprintf(err, errlen, "position %d: longer than %d bytes", GYRE_PREDICATE_MAX_LEN + 1, GYRE_PREDICATE_MAX_LEN);
        return NULL;
    }
    parser_t p = {.s = text, .len = len, .err = err, .errlen = errlen};
    next(&p);
    node_t *root = p.failed ? NULL : parse_or(&p);
    if (root != NULL && p.tok != T_END) {
        char tb[64];
        fail(&p, p.tok_pos, "expected and, or or the end, found %s", tok_desc(&p, tb, sizeof(tb)));
    }
    free(p.str);
    if (p.failed) {
        node_free(root);
        return NULL;
    }
    gyre_predicate_t *pr = gyre_malloc(sizeof(*pr));
    pr->root = root;
    return pr;
}

void gyre_predicate_free(gyre_predicate_t *p)
{
    if (p == NULL)
        return;
    node_free(p->root);
    free(p);
}

/* ---- Evaluation. ---- */

typedef struct value {
    int present;
    int is_str;
    double num;      /* NaN: none (a category-only score) */
    const char *str; /* a string field, or a score's label */
} value_t;

static const gyre_example_score_t *find_score(const gyre_example_t *ex, const ref_t *r)
{
    const gyre_example_score_t *found = NULL;
    for (size_t i = 0; i < ex->nscores; i++) {
        const gyre_example_score_t *s = &ex->scores[i];
        if ((r->source == 0 || s->source == r->source) && s->name != NULL && strcmp(s->name, r->name) == 0)
            found = s;
    }
    return found;
}

static value_t ref_value(const ref_t *r, const gyre_example_t *ex)
{
    value_t v = {0, 0, NAN, NULL};
    const char *s = NULL;
    switch (r->kind) {
    case REF_SCORE: {
        const gyre_example_score_t *sc = find_score(ex, r);
        if (sc != NULL) {
            v.present = 1;
            v.num = sc->value;
            v.str = sc->label;
        }
        return v;
    }
    case REF_STATUS: v.num = ex->status; break;
    case REF_COST: v.num = ex->cost_usd; break;
    case REF_LATENCY_MS: v.num = ex->latency_us < 0 ? NAN : (double)ex->latency_us / 1000.0; break;
    case REF_PROMPT_TOKENS: v.num = ex->prompt_tokens < 0 ? NAN : (double)ex->prompt_tokens; break;
    case REF_COMPLETION_TOKENS: v.num = ex->completion_tokens < 0 ? NAN : (double)ex->completion_tokens; break;
    case REF_STREAM: v.num = ex->stream ? 1 : 0; break;
    case REF_CLUSTER: v.num = ex->cluster < 0 ? NAN : ex->cluster; break;
    case REF_ROUTE: s = ex->route; break;
    case REF_AGENT: s = ex->agent; break;
    case REF_MODEL: s = ex->model; break;
    case REF_PROVIDER: s = ex->provider; break;
    case REF_SESSION: s = ex->session; break;
    case REF_USER: s = ex->user; break;
    case REF_TEAM: s = ex->team; break;
    case REF_ENDPOINT: s = ex->endpoint; break;
    case REF_CORRECTION: s = ex->correction; break;
    case REF_ANSWER: s = ex->answer_json != NULL ? (ex->answer_text != NULL ? ex->answer_text : "") : NULL; break;
    }
    if (ref_is_string(r)) {
        v.is_str = 1;
        v.str = s;
        v.present = s != NULL;
    } else {
        v.present = !isnan(v.num);
    }
    return v;
}

static int cmp_num(double a, cmp_op_t op, double b)
{
    switch (op) {
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    }
    return 0;
}

static int cmp_str(const char *a, cmp_op_t op, const char *b)
{
    int c = strcmp(a, b);
    return op == OP_EQ ? c == 0 : op == OP_NE ? c != 0 : 0;
}

static int eval(const node_t *n, const gyre_example_t *ex)
{
    switch (n->kind) {
    case N_OR: return eval(n->a, ex) || eval(n->b, ex);
    case N_AND: return eval(n->a, ex) && eval(n->b, ex);
    case N_NOT: return !eval(n->a, ex);
    case N_HAS: {
        value_t v = ref_value(&n->ref, ex);
        return v.present && (!v.is_str || v.str[0] != '\0');
    }
    case N_TRUTH: {
        value_t v = ref_value(&n->ref, ex);
        if (!v.present)
            return 0;
        if (v.is_str)
            return v.str[0] != '\0';
        if (isnan(v.num))
            return v.str != NULL && v.str[0] != '\0'; /* a category only: its label */
        return v.num != 0;
    }
    case N_CMP: {
        value_t l = ref_value(&n->ref, ex);
        if (!l.present)
            return 0;
        if (n->rhs_kind == LIT_STR)
            return l.str != NULL && cmp_str(l.str, n->op, n->str);
        if (n->rhs_kind == LIT_NUM)
            return !l.is_str && !isnan(l.num) && cmp_num(l.num, n->op, n->num);
        value_t r = ref_value(&n->rhs, ex);
        if (!r.present)
            return 0;
        if (!l.is_str && !r.is_str && !isnan(l.num) && !isnan(r.num))
            return cmp_num(l.num, n->op, r.num);
        if (l.str != NULL && r.str != NULL && (l.is_str || isnan(l.num)) && (r.is_str || isnan(r.num)))
            return cmp_str(l.str, n->op, r.str);
        return 0;
    }
    }
    return 0;
}

int gyre_predicate_eval(const gyre_predicate_t *p, const gyre_example_t *ex)
{
    return eval(p->root, ex);
}

int gyre_predicate_is_name(const gyre_predicate_t *p)
{
    return p->root->kind == N_TRUTH;
}

double gyre_predicate_number(const gyre_predicate_t *p, const gyre_example_t *ex)
{
    if (p->root->kind != N_TRUTH)
        return NAN;
    value_t v = ref_value(&p->root->ref, ex);
    return v.present && !v.is_str ? v.num : NAN;
}

/* ---- The canonical text. ---- */

static void ref_canonical(const ref_t *r, gyre_buf_t *out)
{
    if (r->kind != REF_SCORE) {
        gyre_buf_appends(out, fields[r->kind - 1].name);
        return;
    }
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
        if (sources[i].source == r->source) {
            gyre_buf_appendf(out, "%s.%s", sources[i].prefix, r->name);
            return;
        }
}

static void num_canonical(double v, int is_bool, gyre_buf_t *out)
{
    if (is_bool)
        gyre_buf_appends(out, v != 0 ? "true" : "false");
    else
        gyre_buf_appendf(out, "%.17g", v == 0 ? 0.0 : v); /* -0 and 0 are one number */
}

/* Binding strength: or 1, and 2, not and the atoms 3. */
static int prec(const node_t *n)
{
    return n->kind == N_OR ? 1 : n->kind == N_AND ? 2 : 3;
}

/*
 * Parentheses only where the binding needs them (an `or` under an `and`,
 * an `and` or `or` under a `not`), and a chain of one operator flat.  So a
 * canonical text never nests deeper than the text it came from, and it
 * parses back to itself.
 */
static void canonical(const node_t *n, int need, gyre_buf_t *out)
{
    int paren = prec(n) < need;
    if (paren)
        gyre_buf_appends(out, "(");
    switch (n->kind) {
    case N_OR:
    case N_AND:
        canonical(n->a, prec(n), out);
        gyre_buf_appends(out, n->kind == N_OR ? " or " : " and ");
        canonical(n->b, prec(n), out);
        break;
    case N_NOT:
        gyre_buf_appends(out, "not ");
        canonical(n->a, 3, out);
        break;
    case N_HAS:
        gyre_buf_appends(out, "has(");
        ref_canonical(&n->ref, out);
        gyre_buf_appends(out, ")");
        break;
    case N_TRUTH: ref_canonical(&n->ref, out); break;
    case N_CMP:
        ref_canonical(&n->ref, out);
        gyre_buf_appendf(out, " %s ", op_text[n->op]);
        if (n->rhs_kind == LIT_REF) {
            ref_canonical(&n->rhs, out);
        } else if (n->rhs_kind == LIT_NUM) {
            num_canonical(n->num, n->is_bool, out);
        } else {
            gyre_buf_appends(out, "\"");
            for (const char *c = n->str; *c; c++) {
                if (*c == '"' || *c == '\\')
                    gyre_buf_append(out, "\\", 1);
                gyre_buf_append(out, c, 1);
            }
            gyre_buf_appends(out, "\"");
        }
        break;
    }
    if (paren)
        gyre_buf_appends(out, ")");
}

void gyre_predicate_canonical(const gyre_predicate_t *p, gyre_buf_t *out)
{
    canonical(p->root, 0, out);
}
