/*
 * The JSON Schema subset of jsonschema.h: one recursive walk over the schema and the document together, with a
 * path for the reason and two bounds (nesting, steps) so that an untrusted schema cannot make it run long.
 */
#include "loop/jsonschema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct vctx {
    char path[160]; /* "$.a[2].b", cut when deeper than it holds (the reason is for people) */
    size_t plen;
    unsigned long steps;
    int bound; /* a bound was hit: the answer is "does not validate", whatever a branch says */
    char *why;
    size_t whylen;
} vctx_t;

static void fail(vctx_t *v, int report, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(vctx_t *v, int report, const char *fmt, ...)
{
    if (!report || v->why == NULL || v->whylen == 0)
        return;
    int n = snprintf(v->why, v->whylen, "%s: ", v->path);
    if (n < 0 || (size_t)n >= v->whylen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why + n, v->whylen - (size_t)n, fmt, ap);
    va_end(ap);
}

static size_t push(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(vctx_t *v, const char *fmt, ...)
{
    size_t at = v->plen;
    if (v->plen < sizeof(v->path) - 1) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(v->path + v->plen, sizeof(v->path) - v->plen, fmt, ap);
        va_end(ap);
        if (n > 0)
            v->plen += (size_t)n < sizeof(v->path) - v->plen ? (size_t)n : sizeof(v->path) - 1 - v->plen;
    }
    return at;
}

static void pop(vctx_t *v, size_t at)
{
    v->plen = at;
    v->path[at] = '\0';
}

/* The JSON Schema type name of a value. */
static const char *type_of(const cJSON *d)
{
    if (cJSON_IsObject(d))
        return "object";
    if (cJSON_IsArray(d))
        return "array";
    if (cJSON_IsString(d))
        return "string";
    if (cJSON_IsBool(d))
        return "boolean";
    if (cJSON_IsNull(d))
        return "null";
    if (cJSON_IsNumber(d))
        return isfinite(d->valuedouble) && d->valuedouble == floor(d->valuedouble) ? "integer" : "number";
    return "invalid";
}

static int type_matches(const char *want, const cJSON *d)
{
    const char *t = type_of(d);
    if (strcmp(want, t) == 0)
        return 1;
    return strcmp(want, "number") == 0 && strcmp(t, "integer") == 0; /* an integer is a number */
}

/* Characters (code points) of a UTF-8 string: what minLength and maxLength count. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int validate(const cJSON *schema, const cJSON *doc, unsigned depth, vctx_t *v, int report);

static int check_type(const cJSON *t, const cJSON *doc, vctx_t *v, int report)
{
    if (cJSON_IsString(t)) {
        if (type_matches(t->valuestring, doc))
            return 1;
        fail(v, report, "is %s %s, not %s %s", strchr("aeiou", type_of(doc)[0]) ? "an" : "a", type_of(doc),
             strchr("aeiou", t->valuestring[0]) ? "an" : "a", t->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(t))
        return 1; /* a malformed keyword in an untrusted schema is ignored */
    const cJSON *e;
    int any = 0;
    cJSON_ArrayForEach(e, t)
    {
        any = 1;
        if (cJSON_IsString(e) && type_matches(e->valuestring, doc))
            return 1;
    }
    if (any)
        fail(v, report, "is %s %s, none of the types allowed", strchr("aeiou", type_of(doc)[0]) ? "an" : "a",
             type_of(doc));
    return !any;
}

static int check_object(const cJSON *schema, const cJSON *doc, unsigned depth, vctx_t *v, int report)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    if (cJSON_IsArray(req)) {
        const cJSON *r;
        cJSON_ArrayForEach(r, req)
        {
            if (cJSON_IsString(r) && cJSON_GetObjectItemCaseSensitive(doc, r->valuestring) == NULL) {
                fail(v, report, "lacks the required property '%.40s'", r->valuestring);
                return 0;
            }
        }
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, doc)
    {
        if (++v->steps > GYRE_JSONSCHEMA_MAX_STEPS) {
            v->bound = 1;
            return 0;
        }
        const cJSON *ps = cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
        const cJSON *sub = ps != NULL ? ps : addl;
        if (sub == NULL)
            continue;
        if (ps == NULL && cJSON_IsFalse(addl)) {
            fail(v, report, "has the property '%.40s', which the schema does not allow", m->string);
            return 0;
        }
        size_t at = push(v, ".%.40s", m->string);
        int ok = validate(sub, m, depth + 1, v, report);
        pop(v, at);
        if (!ok)
            return 0;
    }
    return 1;
}

static int check_array(const cJSON *schema, const cJSON *doc, unsigned depth, vctx_t *v, int report)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minItems");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maxItems");
    int n = cJSON_GetArraySize(doc);
    if (cJSON_IsNumber(mn) && n < mn->valuedouble) {
        fail(v, report, "has %d items; the minimum is %g", n, mn->valuedouble);
        return 0;
    }
    if (cJSON_IsNumber(mx) && n > mx->valuedouble) {
        fail(v, report, "has %d items; the maximum is %g", n, mx->valuedouble);
        return 0;
    }
    if (items == NULL || cJSON_IsArray(items))
        return 1; /* tuple validation (items as a list) is not read */
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, doc)
    {
        size_t at = push(v, "[%d]", i++);
        int ok = validate(items, e, depth + 1, v, report);
        pop(v, at);
        if (!ok)
            return 0;
    }
    return 1;
}

/* allOf (all), anyOf (at least one), oneOf (exactly one). */
typedef enum combinator { ALL_OF = 0, ANY_OF, ONE_OF } combinator_t;

static int check_combinator(const cJSON *list, combinator_t kind, const cJSON *doc, unsigned depth, vctx_t *v,
                            int report)
{
    if (!cJSON_IsArray(list))
        return 1;
    int matched = 0, total = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, list)
    {
        total++;
        /* allOf reports its failing branch; anyOf and oneOf try branches quietly and say how many matched. */
        int ok = validate(s, doc, depth + 1, v, report && kind == ALL_OF);
        if (v->bound)
            return 0;
        matched += ok;
        if (kind == ALL_OF && !ok)
            return 0;
        if (kind == ANY_OF && ok)
            return 1;
    }
    if (kind == ALL_OF || total == 0)
        return 1;
    if (kind == ANY_OF) {
        fail(v, report, "matches none of the %d schemas of anyOf", total);
        return 0;
    }
    if (matched != 1) {
        fail(v, report, "matches %d of the %d schemas of oneOf; exactly one must match", matched, total);
        return 0;
    }
    return 1;
}

static int validate(const cJSON *schema, const cJSON *doc, unsigned depth, vctx_t *v, int report)
{
    if (v->bound)
        return 0;
    if (depth > GYRE_JSONSCHEMA_MAX_DEPTH || ++v->steps > GYRE_JSONSCHEMA_MAX_STEPS) {
        v->bound = 1;
        return 0;
    }
    if (cJSON_IsTrue(schema))
        return 1;
    if (cJSON_IsFalse(schema)) {
        fail(v, report, "is not allowed here (the schema is false)");
        return 0;
    }
    if (!cJSON_IsObject(schema))
        return 1;
    const cJSON *k;
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "type")) != NULL && !check_type(k, doc, v, report))
        return 0;
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "const")) != NULL && !cJSON_Compare(k, doc, 1)) {
        fail(v, report, "is not the value the schema's const requires");
        return 0;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "enum")) != NULL && cJSON_IsArray(k)) {
        const cJSON *e;
        int found = 0;
        cJSON_ArrayForEach(e, k)
        {
            if (++v->steps > GYRE_JSONSCHEMA_MAX_STEPS) {
                v->bound = 1;
                return 0;
            }
            if (cJSON_Compare(e, doc, 1)) {
                found = 1;
                break;
            }
        }
        if (!found) {
            fail(v, report, "is none of the schema's enum values");
            return 0;
        }
    }
    if (cJSON_IsNumber(doc)) {
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minimum");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maximum");
        if (cJSON_IsNumber(mn) && doc->valuedouble < mn->valuedouble) {
            fail(v, report, "is %g; the minimum is %g", doc->valuedouble, mn->valuedouble);
            return 0;
        }
        if (cJSON_IsNumber(mx) && doc->valuedouble > mx->valuedouble) {
            fail(v, report, "is %g; the maximum is %g", doc->valuedouble, mx->valuedouble);
            return 0;
        }
    } else if (cJSON_IsString(doc)) {
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minLength");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maxLength");
        if (cJSON_IsNumber(mn) || cJSON_IsNumber(mx)) {
            size_t n = utf8_chars(doc->valuestring);
            if (cJSON_IsNumber(mn) && (double)n < mn->valuedouble) {
                fail(v, report, "is %zu characters long; the minimum is %g", n, mn->valuedouble);
                return 0;
            }
            if (cJSON_IsNumber(mx) && (double)n > mx->valuedouble) {
                fail(v, report, "is %zu characters long; the maximum is %g", n, mx->valuedouble);
                return 0;
            }
        }
    } else if (cJSON_IsObject(doc)) {
        if (!check_object(schema, doc, depth, v, report))
            return 0;
    } else if (cJSON_IsArray(doc)) {
        if (!check_array(schema, doc, depth, v, report))
            return 0;
    }
    static const char *const combinators[] = {"allOf", "anyOf", "oneOf"};
    for (size_t i = 0; i < 3; i++)
        if ((k = cJSON_GetObjectItemCaseSensitive(schema, combinators[i])) != NULL &&
            !check_combinator(k, (combinator_t)i, doc, depth, v, report))
            return 0;
    return !v->bound;
}

int gyre_jsonschema_validate(const cJSON *schema, const cJSON *doc, char *why, size_t whylen)
{
    vctx_t v = {.path = "$", .plen = 1, .why = why, .whylen = whylen};
    if (why != NULL && whylen != 0)
        why[0] = '\0';
    int ok = validate(schema, doc, 0, &v, 1);
    if (v.bound) {
        if (why != NULL && whylen != 0)
            snprintf(why, whylen, "the schema is too deep or too complex to check (over %d levels or %d steps)",
                     GYRE_JSONSCHEMA_MAX_DEPTH, GYRE_JSONSCHEMA_MAX_STEPS);
        return 0;
    }
    return ok;
}

/* ---- checking a schema the operator wrote ---- */

static int check_err(char *err, size_t errlen, const char *path, const char *msg)
{
    snprintf(err, errlen, "%s%s%s", path, path[0] ? ": " : "", msg);
    return -1;
}

static int check_schema(const cJSON *s, char *path, size_t plen, size_t cap, unsigned depth, char *err, size_t errlen)
{
    if (cJSON_IsBool(s))
        return 0;
    if (!cJSON_IsObject(s))
        return check_err(err, errlen, path, "a schema is an object or a boolean");
    if (depth > GYRE_JSONSCHEMA_MAX_DEPTH)
        return check_err(err, errlen, path, "is nested deeper than 32 levels");
    static const char *const types[] = {"object", "array", "string", "number", "integer", "boolean", "null"};
    const cJSON *k;
#define SUB(fmt, ...) (snprintf(path + plen, cap - plen, fmt, __VA_ARGS__), path)
#define RESTORE() (path[plen] = '\0')
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "type")) != NULL) {
        int ok = 0;
        if (cJSON_IsString(k) || cJSON_IsArray(k)) {
            ok = 1;
            const cJSON *t = k;
            const cJSON *one = cJSON_IsString(k) ? k : k->child;
            for (; ok && one != NULL; one = cJSON_IsString(t) ? NULL : one->next) {
                int known = 0;
                for (size_t i = 0; cJSON_IsString(one) && i < sizeof(types) / sizeof(types[0]); i++)
                    known |= strcmp(one->valuestring, types[i]) == 0;
                ok = known;
            }
        }
        if (!ok) {
            int r = check_err(err, errlen, SUB("%stype", plen ? "." : ""),
                              "is not one of object, array, string, number, integer, boolean, null (or a list of them)");
            RESTORE();
            return r;
        }
    }
    static const char *const numbers[] = {"minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if ((k = cJSON_GetObjectItemCaseSensitive(s, numbers[i])) != NULL && !cJSON_IsNumber(k)) {
            int r = check_err(err, errlen, SUB("%s%s", plen ? "." : "", numbers[i]), "is not a number");
            RESTORE();
            return r;
        }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "required")) != NULL) {
        const cJSON *e;
        int ok = cJSON_IsArray(k);
        cJSON_ArrayForEach(e, k) ok &= cJSON_IsString(e);
        if (!ok) {
            int r = check_err(err, errlen, SUB("%srequired", plen ? "." : ""), "is not a list of property names");
            RESTORE();
            return r;
        }
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "enum")) != NULL && !cJSON_IsArray(k)) {
        int r = check_err(err, errlen, SUB("%senum", plen ? "." : ""), "is not a list");
        RESTORE();
        return r;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "properties")) != NULL) {
        if (!cJSON_IsObject(k)) {
            int r = check_err(err, errlen, SUB("%sproperties", plen ? "." : ""), "is not an object");
            RESTORE();
            return r;
        }
        const cJSON *p;
        cJSON_ArrayForEach(p, k)
        {
            (void)SUB("%sproperties.%.40s", plen ? "." : "", p->string);
            if (check_schema(p, path, strlen(path), cap, depth + 1, err, errlen) != 0)
                return -1;
            RESTORE();
        }
    }
    static const char *const subs[] = {"additionalProperties", "items"};
    for (size_t i = 0; i < 2; i++)
        if ((k = cJSON_GetObjectItemCaseSensitive(s, subs[i])) != NULL) {
            (void)SUB("%s%s", plen ? "." : "", subs[i]);
            if (check_schema(k, path, strlen(path), cap, depth + 1, err, errlen) != 0)
                return -1;
            RESTORE();
        }
    static const char *const lists[] = {"anyOf", "oneOf", "allOf"};
    for (size_t i = 0; i < 3; i++)
        if ((k = cJSON_GetObjectItemCaseSensitive(s, lists[i])) != NULL) {
            if (!cJSON_IsArray(k) || cJSON_GetArraySize(k) == 0) {
                int r = check_err(err, errlen, SUB("%s%s", plen ? "." : "", lists[i]), "is not a non-empty list of schemas");
                RESTORE();
                return r;
            }
            int j = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, k)
            {
                (void)SUB("%s%s[%d]", plen ? "." : "", lists[i], j++);
                if (check_schema(e, path, strlen(path), cap, depth + 1, err, errlen) != 0)
                    return -1;
                RESTORE();
            }
        }
#undef SUB
#undef RESTORE
    return 0;
}

int gyre_jsonschema_check(const cJSON *schema, char *err, size_t errlen)
{
    char path[256] = "";
    return check_schema(schema, path, 0, sizeof(path), 0, err, errlen);
}
