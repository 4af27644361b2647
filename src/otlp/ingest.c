/*
 * OTLP/HTTP bodies -> gyre traces (see otlp.h, docs/otlp.md).
 *
 * Two readers, one for each encoding, turn an ExportTraceServiceRequest
 * into the same small model (spans with typed attributes and events,
 * pointing into the body or the cJSON tree, allocated from one pool); the
 * whole body is read before any span is handed on, so a malformed request
 * stores nothing.  One mapping then reads a span into a trace:
 *
 * - a span from a gyre's own export (it has gyre.trace_id) reads back as
 *   the trace that was exported, from the gyre.* attributes;
 * - any other span is a model call when it says so in one of the four
 *   vocabularies (gen_ai.* current or older, OpenLLMetry's llm.* and
 *   traceloop.*, OpenInference's llm.* / openinference.span.kind LLM or
 *   EMBEDDING), and its trace_id is derived from (traceId, spanId), so a
 *   retried export stores one trace;
 * - other spans (an HTTP server span, a tool or chain span, an agent
 *   invocation) are not model calls: they are skipped, accepted but not
 *   stored, and counted in the result.
 *
 * Every string a trace gets is cut to GYRE_OTLP_FIELD_MAX (tags to 128,
 * bodies to GYRE_OTLP_BODY_MAX, past which a body is left out rather than
 * cut into invalid JSON).
 */
#include "otlp/otlp.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <h2o/memory.h>
#include <h2o/string_.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "otlp/protobuf.h"

/* How deep arrays and key-value lists may nest inside an attribute value. */
#define VALUE_DEPTH_MAX 8
#define TAG_MAX 128
/* The most gen_ai.prompt.N / llm.input_messages.N messages read from one span. */
#define INDEXED_MESSAGES_MAX 128

enum { V_NONE = 0, V_STR, V_BOOL, V_INT, V_DOUBLE, V_ARRAY, V_KVLIST, V_BYTES };

typedef struct value {
    int type;
    const char *s; /* V_STR, V_BYTES */
    size_t len;
    int64_t i;
    double d;
    struct value *items; /* V_ARRAY */
    size_t nitems;
} value_t;

typedef struct attr {
    const char *key;
    size_t klen;
    value_t v;
} attr_t;

typedef struct event {
    const char *name;
    size_t nlen;
    uint64_t time_ns;
    attr_t *attrs;
    size_t nattrs;
} event_t;

typedef struct span {
    uint8_t tid[16], sid[8], pid[8];
    int ids_ok; /* traceId and spanId have the right length and are not all zeros */
    int has_pid;
    const char *name;
    size_t nlen;
    uint64_t start_ns, end_ns;
    int status_code;
    attr_t *attrs;
    size_t nattrs;
    event_t *events;
    size_t nevents;
    const attr_t *res; /* the resource's attributes */
    size_t nres;
} span_t;

typedef struct reader {
    h2o_mem_pool_t pool;
    span_t *spans;
    size_t nspans, cap;
    char *msg;
    size_t msglen;
} reader_t;

static void fail(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(reader_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, r->msglen, fmt, ap);
    va_end(ap);
}

static span_t *add_span(reader_t *r)
{
    if (r->nspans == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->spans = gyre_realloc(r->spans, r->cap * sizeof(*r->spans));
    }
    span_t *s = &r->spans[r->nspans++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void *pool_alloc(reader_t *r, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = h2o_mem_alloc_pool(&r->pool, n * size);
    memset(p, 0, n * size);
    return p;
}


/* Hex text of exactly 2n digits (either case) into n bytes: 0, or -1.  OTLP/JSON ids have a fixed size. */
static int unhex(const char *s, size_t len, uint8_t *out, size_t n)
{
    return len == 2 * n ? h2o_hex_decode(out, s, len) : -1;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void check_ids(span_t *s)
{
    s->ids_ok = s->ids_ok && !all_zero(s->tid, 16) && !all_zero(s->sid, 8);
    if (s->has_pid && all_zero(s->pid, 8))
        s->has_pid = 0;
}

/* ---- The JSON reader. ---- */

/* An int64 written as a string ("123", as the JSON mapping says) or as a number. */
static int json_int(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= -9.2e18 && v->valuedouble <= 9.2e18))
            return -1;
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        long long x = strtoll(v->valuestring, &end, 10);
        if (end == v->valuestring || *end != '\0' || errno != 0)
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static int json_u64(const cJSON *v, uint64_t *out)
{
    if (v == NULL) {
        *out = 0;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= 0 && v->valuedouble < 1.8e19))
            return -1;
        *out = (uint64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        if (v->valuestring[0] == '-')
            return -1;
        unsigned long long x = strtoull(v->valuestring, &end, 10);
        if (end == v->valuestring || *end != '\0' || errno != 0)
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static int json_attrs(reader_t *r, const cJSON *list, attr_t **out, size_t *n, const char *where);

static int json_value(reader_t *r, const cJSON *v, value_t *out, int depth, const char *where)
{
    memset(out, 0, sizeof(*out));
    if (v == NULL || cJSON_IsNull(v))
        return 0; /* an empty AnyValue */
    if (!cJSON_IsObject(v) || depth > VALUE_DEPTH_MAX) {
        fail(r, "%s: a value must be an AnyValue object (at most %d levels deep)", where, VALUE_DEPTH_MAX);
        return -1;
    }
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(v, "stringValue")) != NULL) {
        if (!cJSON_IsString(x))
            goto bad;
        out->type = V_STR;
        out->s = x->valuestring;
        out->len = strlen(x->valuestring);
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "boolValue")) != NULL) {
        if (!cJSON_IsBool(x))
            goto bad;
        out->type = V_BOOL;
        out->i = cJSON_IsTrue(x);
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "intValue")) != NULL) {
        if (json_int(x, &out->i) != 0)
            goto bad;
        out->type = V_INT;
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "doubleValue")) != NULL) {
        if (cJSON_IsNumber(x))
            out->d = x->valuedouble;
        else if (cJSON_IsString(x) && (strcmp(x->valuestring, "NaN") == 0 || strcmp(x->valuestring, "Infinity") == 0 ||
                                       strcmp(x->valuestring, "-Infinity") == 0))
            out->d = NAN; /* not a cost anyone should store */
        else
            goto bad;
        out->type = V_DOUBLE;
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "arrayValue")) != NULL) {
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(x, "values");
        if (!cJSON_IsObject(x) || (vals != NULL && !cJSON_IsArray(vals)))
            goto bad;
        out->type = V_ARRAY;
        out->nitems = (size_t)cJSON_GetArraySize(vals);
        out->items = pool_alloc(r, out->nitems, sizeof(*out->items));
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, vals)
        {
            if (json_value(r, it, &out->items[i++], depth + 1, where) != 0)
                return -1;
        }
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "kvlistValue")) != NULL) {
        /* Read to check it; no field of a trace takes a key-value list. */
        attr_t *kv;
        size_t nkv;
        if (!cJSON_IsObject(x) || json_attrs(r, cJSON_GetObjectItemCaseSensitive(x, "values"), &kv, &nkv, where) != 0)
            goto bad;
        out->type = V_KVLIST;
    } else if ((x = cJSON_GetObjectItemCaseSensitive(v, "bytesValue")) != NULL) {
        if (!cJSON_IsString(x))
            goto bad;
        out->type = V_BYTES;
    }
    return 0;
bad:
    if (r->msg[0] == '\0')
        fail(r, "%s: a malformed %s", where, x->string ? x->string : "value");
    return -1;
}

static int json_attrs(reader_t *r, const cJSON *list, attr_t **out, size_t *n, const char *where)
{
    *out = NULL;
    *n = 0;
    if (list == NULL)
        return 0;
    if (!cJSON_IsArray(list)) {
        fail(r, "%s: attributes must be a list", where);
        return -1;
    }
    size_t cnt = (size_t)cJSON_GetArraySize(list), i = 0;
    attr_t *a = pool_alloc(r, cnt, sizeof(*a));
    const cJSON *kv;
    cJSON_ArrayForEach(kv, list)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(kv, "key");
        if (!cJSON_IsString(k)) {
            fail(r, "%s: attributes[%zu] has no string 'key'", where, i);
            return -1;
        }
        a[i].key = k->valuestring;
        a[i].klen = strlen(k->valuestring);
        char sub[320];
        snprintf(sub, sizeof(sub), "%s: attribute '%.100s'", where, k->valuestring);
        if (json_value(r, cJSON_GetObjectItemCaseSensitive(kv, "value"), &a[i].v, 0, sub) != 0)
            return -1;
        i++;
    }
    *out = a;
    *n = cnt;
    return 0;
}

/* kind and status.code may be numbers (as the JSON mapping says) or enum names. */
static int json_enum(const cJSON *v, const char *const *names, size_t nnames, int *out)
{
    if (v == NULL) {
        *out = 0;
        return 0;
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1000) {
        *out = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v))
        for (size_t i = 0; i < nnames; i++)
            if (strcmp(v->valuestring, names[i]) == 0) {
                *out = (int)i;
                return 0;
            }
    return -1;
}

static int json_id(const cJSON *v, uint8_t *out, size_t n)
{
    return cJSON_IsString(v) ? unhex(v->valuestring, strlen(v->valuestring), out, n) : -1;
}

static int json_span(reader_t *r, const cJSON *js, const attr_t *res, size_t nres, const char *where)
{
    static const char *const codes[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
    if (!cJSON_IsObject(js)) {
        fail(r, "%s: a span must be an object", where);
        return -1;
    }
    span_t *s = add_span(r);
    s->res = res;
    s->nres = nres;
    s->ids_ok = json_id(cJSON_GetObjectItemCaseSensitive(js, "traceId"), s->tid, 16) == 0 &&
                json_id(cJSON_GetObjectItemCaseSensitive(js, "spanId"), s->sid, 8) == 0;
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(js, "parentSpanId");
    if (cJSON_IsString(pid) && pid->valuestring[0] != '\0') {
        if (json_id(pid, s->pid, 8) != 0)
            s->ids_ok = 0;
        s->has_pid = 1;
    }
    check_ids(s);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(js, "name");
    if (cJSON_IsString(name)) {
        s->name = name->valuestring;
        s->nlen = strlen(name->valuestring);
    }
    if (json_u64(cJSON_GetObjectItemCaseSensitive(js, "startTimeUnixNano"), &s->start_ns) != 0 ||
        json_u64(cJSON_GetObjectItemCaseSensitive(js, "endTimeUnixNano"), &s->end_ns) != 0) {
        fail(r, "%s: startTimeUnixNano and endTimeUnixNano must be whole numbers of nanoseconds", where);
        return -1;
    }
    if (json_attrs(r, cJSON_GetObjectItemCaseSensitive(js, "attributes"), &s->attrs, &s->nattrs, where) != 0)
        return -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(js, "status");
    if (st != NULL && (!cJSON_IsObject(st) || json_enum(cJSON_GetObjectItemCaseSensitive(st, "code"), codes, 3,
                                                       &s->status_code) != 0)) {
        fail(r, "%s: status must be {code, message} with code 0, 1 or 2", where);
        return -1;
    }
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(js, "events");
    if (evs != NULL && !cJSON_IsArray(evs)) {
        fail(r, "%s: events must be a list", where);
        return -1;
    }
    s->nevents = (size_t)cJSON_GetArraySize(evs);
    s->events = pool_alloc(r, s->nevents, sizeof(*s->events));
    size_t i = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, evs)
    {
        event_t *e = &s->events[i++];
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(ev, "name");
        if (!cJSON_IsObject(ev) || json_u64(cJSON_GetObjectItemCaseSensitive(ev, "timeUnixNano"), &e->time_ns) != 0) {
            fail(r, "%s: events[%zu] is not an event", where, i - 1);
            return -1;
        }
        if (cJSON_IsString(en)) {
            e->name = en->valuestring;
            e->nlen = strlen(en->valuestring);
        }
        if (json_attrs(r, cJSON_GetObjectItemCaseSensitive(ev, "attributes"), &e->attrs, &e->nattrs, where) != 0)
            return -1;
    }
    return 0;
}

static int json_read(reader_t *r, const char *body, size_t len, cJSON **tree)
{
    cJSON *root = *tree = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        fail(r, "the body is not a JSON object (an ExportTraceServiceRequest)");
        return -1;
    }
    const cJSON *rss = cJSON_GetObjectItemCaseSensitive(root, "resourceSpans");
    if (rss != NULL && !cJSON_IsArray(rss)) {
        fail(r, "resourceSpans must be a list");
        return -1;
    }
    size_t ri = 0;
    const cJSON *rs;
    cJSON_ArrayForEach(rs, rss)
    {
        char where[160];
        snprintf(where, sizeof(where), "resourceSpans[%zu]", ri);
        if (!cJSON_IsObject(rs)) {
            fail(r, "%s must be an object", where);
            return -1;
        }
        attr_t *res = NULL;
        size_t nres = 0;
        const cJSON *resource = cJSON_GetObjectItemCaseSensitive(rs, "resource");
        if (resource != NULL &&
            json_attrs(r, cJSON_GetObjectItemCaseSensitive(resource, "attributes"), &res, &nres, where) != 0)
            return -1;
        const cJSON *sss = cJSON_GetObjectItemCaseSensitive(rs, "scopeSpans");
        if (sss != NULL && !cJSON_IsArray(sss)) {
            fail(r, "%s.scopeSpans must be a list", where);
            return -1;
        }
        size_t si = 0;
        const cJSON *ss;
        cJSON_ArrayForEach(ss, sss)
        {
            const cJSON *spans = cJSON_GetObjectItemCaseSensitive(ss, "spans");
            if (!cJSON_IsObject(ss) || (spans != NULL && !cJSON_IsArray(spans))) {
                fail(r, "%s.scopeSpans[%zu] must be an object with a list of spans", where, si);
                return -1;
            }
            size_t pi = 0;
            const cJSON *sp;
            cJSON_ArrayForEach(sp, spans)
            {
                char w2[200];
                snprintf(w2, sizeof(w2), "%s.scopeSpans[%zu].spans[%zu]", where, si, pi++);
                if (json_span(r, sp, res, nres, w2) != 0)
                    return -1;
            }
            si++;
        }
        ri++;
    }
    return 0;
}

/* ---- The protobuf reader (opentelemetry-proto: trace.proto, common.proto, resource.proto). ---- */

static int pb_attrs(reader_t *r, const uint8_t *p, size_t len, uint32_t field, attr_t **out, size_t *n, int depth);

/* AnyValue: 1 string, 2 bool, 3 int64, 4 double, 5 ArrayValue{1 values}, 6 KeyValueList{1 values}, 7 bytes. */
static int pb_value(reader_t *r, const uint8_t *p, size_t len, value_t *out, int depth)
{
    memset(out, 0, sizeof(*out));
    if (depth > VALUE_DEPTH_MAX)
        return -1;
    gyre_pb_t rd = gyre_pb_init(p, len);
    gyre_pb_field_t f;
    int rc;
    while ((rc = gyre_pb_next(&rd, &f)) == 1) {
        switch (f.number) {
        case 1:
            if (f.wire != GYRE_PB_LEN)
                return -1;
            out->type = V_STR;
            out->s = (const char *)f.data;
            out->len = f.len;
            break;
        case 2:
            if (f.wire != GYRE_PB_VARINT)
                return -1;
            out->type = V_BOOL;
            out->i = f.u != 0;
            break;
        case 3:
            if (f.wire != GYRE_PB_VARINT)
                return -1;
            out->type = V_INT;
            out->i = (int64_t)f.u;
            break;
        case 4:
            if (f.wire != GYRE_PB_I64)
                return -1;
            out->type = V_DOUBLE;
            out->d = gyre_pb_double(f.u);
            break;
        case 5: {
            if (f.wire != GYRE_PB_LEN)
                return -1;
            size_t cnt = 0;
            gyre_pb_t c = gyre_pb_init(f.data, f.len);
            gyre_pb_field_t g;
            int rc2;
            while ((rc2 = gyre_pb_next(&c, &g)) == 1)
                cnt += g.number == 1;
            if (rc2 < 0)
                return -1;
            out->type = V_ARRAY;
            out->items = pool_alloc(r, cnt, sizeof(*out->items));
            out->nitems = 0;
            c = gyre_pb_init(f.data, f.len);
            while (gyre_pb_next(&c, &g) == 1) {
                if (g.number != 1)
                    continue;
                if (g.wire != GYRE_PB_LEN || pb_value(r, g.data, g.len, &out->items[out->nitems++], depth + 1) != 0)
                    return -1;
            }
            break;
        }
        case 6: {
            if (f.wire != GYRE_PB_LEN)
                return -1;
            attr_t *kv;
            size_t nkv;
            if (pb_attrs(r, f.data, f.len, 1, &kv, &nkv, depth + 1) != 0)
                return -1;
            out->type = V_KVLIST;
            break;
        }
        case 7:
            if (f.wire != GYRE_PB_LEN)
                return -1;
            out->type = V_BYTES;
            out->s = (const char *)f.data;
            out->len = f.len;
            break;
        default: break; /* unknown fields are skipped, as protobuf readers do */
        }
    }
    return rc;
}

/* KeyValue: 1 key, 2 value. */
static int pb_keyvalue(reader_t *r, const uint8_t *p, size_t len, attr_t *a, int depth)
{
    gyre_pb_t rd = gyre_pb_init(p, len);
    gyre_pb_field_t f;
    int rc;
    memset(a, 0, sizeof(*a));
    a->key = "";
    while ((rc = gyre_pb_next(&rd, &f)) == 1) {
        if (f.number == 1 && f.wire == GYRE_PB_LEN) {
            a->key = (const char *)f.data;
            a->klen = f.len;
        } else if (f.number == 2 && f.wire == GYRE_PB_LEN) {
            if (pb_value(r, f.data, f.len, &a->v, depth) != 0)
                return -1;
        } else if (f.number == 1 || f.number == 2) {
            return -1;
        }
    }
    return rc;
}

/* The repeated KeyValue `field` of a message. */
static int pb_attrs(reader_t *r, const uint8_t *p, size_t len, uint32_t field, attr_t **out, size_t *n, int depth)
{
    gyre_pb_t rd = gyre_pb_init(p, len);
    gyre_pb_field_t f;
    size_t cnt = 0;
    int rc;
    while ((rc = gyre_pb_next(&rd, &f)) == 1)
        cnt += f.number == field;
    if (rc < 0)
        return -1;
    *out = pool_alloc(r, cnt, sizeof(**out));
    *n = 0;
    rd = gyre_pb_init(p, len);
    while (gyre_pb_next(&rd, &f) == 1) {
        if (f.number != field)
            continue;
        if (f.wire != GYRE_PB_LEN || pb_keyvalue(r, f.data, f.len, &(*out)[(*n)++], depth) != 0)
            return -1;
    }
    return 0;
}

static int pb_bytes_id(const gyre_pb_field_t *f, uint8_t *out, size_t n)
{
    if (f->wire != GYRE_PB_LEN || f->len != n)
        return -1;
    memcpy(out, f->data, n);
    return 0;
}

/* Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 7/8 start/end (fixed64), 9 attributes, 11 events, 15 status. */
static int pb_span(reader_t *r, const uint8_t *p, size_t len, const attr_t *res, size_t nres)
{
    span_t *s = add_span(r);
    s->res = res;
    s->nres = nres;
    int tid = 0, sid = 0, bad_id = 0;
    size_t nev = 0;
    gyre_pb_t rd = gyre_pb_init(p, len);
    gyre_pb_field_t f;
    int rc;
    while ((rc = gyre_pb_next(&rd, &f)) == 1) {
        switch (f.number) {
        case 1: tid = pb_bytes_id(&f, s->tid, 16) == 0; bad_id |= !tid; break;
        case 2: sid = pb_bytes_id(&f, s->sid, 8) == 0; bad_id |= !sid; break;
        case 4:
            if (f.wire == GYRE_PB_LEN && f.len == 0)
                break;
            s->has_pid = 1;
            bad_id |= pb_bytes_id(&f, s->pid, 8) != 0;
            break;
        case 5:
            if (f.wire != GYRE_PB_LEN)
                return -1;
            s->name = (const char *)f.data;
            s->nlen = f.len;
            break;
        case 7:
        case 8:
            if (f.wire != GYRE_PB_I64)
                return -1;
            *(f.number == 7 ? &s->start_ns : &s->end_ns) = f.u;
            break;
        case 11: nev++; break;
        case 15: {
            if (f.wire != GYRE_PB_LEN)
                return -1;
            gyre_pb_t st = gyre_pb_init(f.data, f.len);
            gyre_pb_field_t g;
            int rc2;
            while ((rc2 = gyre_pb_next(&st, &g)) == 1)
                if (g.number == 3 && g.wire == GYRE_PB_VARINT)
                    s->status_code = g.u <= 2 ? (int)g.u : 0;
            if (rc2 < 0)
                return -1;
            break;
        }
        default: break;
        }
    }
    if (rc < 0)
        return -1;
    s->ids_ok = tid && sid && !bad_id;
    check_ids(s);
    if (pb_attrs(r, p, len, 9, &s->attrs, &s->nattrs, 0) != 0)
        return -1;
    s->events = pool_alloc(r, nev, sizeof(*s->events));
    rd = gyre_pb_init(p, len);
    while (gyre_pb_next(&rd, &f) == 1) {
        if (f.number != 11)
            continue;
        if (f.wire != GYRE_PB_LEN)
            return -1;
        /* Event: 1 time_unix_nano (fixed64), 2 name, 3 attributes. */
        event_t *e = &s->events[s->nevents++];
        gyre_pb_t er = gyre_pb_init(f.data, f.len);
        gyre_pb_field_t g;
        while ((rc = gyre_pb_next(&er, &g)) == 1) {
            if (g.number == 1 && g.wire == GYRE_PB_I64)
                e->time_ns = g.u;
            else if (g.number == 2 && g.wire == GYRE_PB_LEN) {
                e->name = (const char *)g.data;
                e->nlen = g.len;
            }
        }
        if (rc < 0 || pb_attrs(r, f.data, f.len, 3, &e->attrs, &e->nattrs, 0) != 0)
            return -1;
    }
    return 0;
}

static int pb_read(reader_t *r, const char *body, size_t len)
{
    /* ExportTraceServiceRequest: 1 ResourceSpans{1 Resource{1 attributes}, 2 ScopeSpans{2 spans}}. */
    gyre_pb_t top = gyre_pb_init(body, len);
    gyre_pb_field_t f;
    int rc;
    size_t ri = 0;
    while ((rc = gyre_pb_next(&top, &f)) == 1) {
        if (f.number != 1)
            continue;
        if (f.wire != GYRE_PB_LEN)
            goto bad;
        attr_t *res = NULL;
        size_t nres = 0;
        gyre_pb_t rs = gyre_pb_init(f.data, f.len);
        gyre_pb_field_t g;
        int rc2;
        while ((rc2 = gyre_pb_next(&rs, &g)) == 1)
            if (g.number == 1 && (g.wire != GYRE_PB_LEN || pb_attrs(r, g.data, g.len, 1, &res, &nres, 0) != 0))
                goto bad;
        if (rc2 < 0)
            goto bad;
        rs = gyre_pb_init(f.data, f.len);
        while (gyre_pb_next(&rs, &g) == 1) {
            if (g.number != 2)
                continue;
            if (g.wire != GYRE_PB_LEN)
                goto bad;
            gyre_pb_t ss = gyre_pb_init(g.data, g.len);
            gyre_pb_field_t h;
            int rc3;
            while ((rc3 = gyre_pb_next(&ss, &h)) == 1)
                if (h.number == 2 && (h.wire != GYRE_PB_LEN || pb_span(r, h.data, h.len, res, nres) != 0))
                    goto bad;
            if (rc3 < 0)
                goto bad;
        }
        ri++;
    }
    if (rc == 0)
        return 0;
bad:
    fail(r, "the protobuf body is malformed (in resourceSpans[%zu], near span %zu)", ri, r->nspans);
    return -1;
}

/* ---- Mapping a span to a trace. ---- */

typedef struct mapper {
    const span_t *s;
    h2o_mem_pool_t *pool;
} mapper_t;

static int key_is(const attr_t *a, const char *k)
{
    size_t n = strlen(k);
    return a->klen == n && memcmp(a->key, k, n) == 0;
}

static const value_t *find_in(const attr_t *a, size_t n, const char *key)
{
    /* The last one wins, as in the SDKs' attribute maps. */
    for (size_t i = n; i-- > 0;)
        if (key_is(&a[i], key))
            return &a[i].v;
    return NULL;
}

static const value_t *get(const mapper_t *m, const char *key)
{
    return find_in(m->s->attrs, m->s->nattrs, key);
}

/* A string attribute (the first string of an array), or NULL. */
static const value_t *get_str(const mapper_t *m, const char *key)
{
    const value_t *v = get(m, key);
    if (v != NULL && v->type == V_ARRAY && v->nitems != 0)
        v = &v->items[0];
    return v != NULL && v->type == V_STR ? v : NULL;
}

/* An integer attribute (an int, a whole double, or a decimal string), or -1. */
static int64_t get_int(const mapper_t *m, const char *key)
{
    const value_t *v = get(m, key);
    if (v == NULL)
        return -1;
    if (v->type == V_INT)
        return v->i >= 0 ? v->i : -1;
    if (v->type == V_DOUBLE && v->d >= 0 && v->d < 9e15)
        return (int64_t)v->d;
    if (v->type == V_STR && v->len != 0 && v->len < 20) {
        char b[24];
        memcpy(b, v->s, v->len);
        b[v->len] = '\0';
        char *end;
        long long x = strtoll(b, &end, 10);
        return *end == '\0' && x >= 0 ? x : -1;
    }
    return -1;
}

static int64_t first_int(const mapper_t *m, const char *const *keys)
{
    for (; *keys != NULL; keys++) {
        int64_t v = get_int(m, *keys);
        if (v >= 0)
            return v;
    }
    return -1;
}

static gyre_tstr_t cut(h2o_mem_pool_t *pool, const char *p, size_t len, size_t max)
{
    gyre_tstr_t s = {NULL, 0};
    if (p == NULL || len == 0)
        return s;
    len = len > max ? max : len;
    s.p = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(s.p, p, len);
    s.p[len] = '\0';
    s.len = len;
    return s;
}

static gyre_tstr_t vstr(const mapper_t *m, const value_t *v, size_t max)
{
    return v != NULL ? cut(m->pool, v->s, v->len, max) : (gyre_tstr_t){NULL, 0};
}

static gyre_tstr_t first_str(const mapper_t *m, const char *const *keys)
{
    for (; *keys != NULL; keys++) {
        const value_t *v = get_str(m, *keys);
        if (v != NULL && v->len != 0)
            return vstr(m, v, GYRE_OTLP_FIELD_MAX);
    }
    return (gyre_tstr_t){NULL, 0};
}

static int has_prefix(const attr_t *a, const char *p)
{
    size_t n = strlen(p);
    return a->klen >= n && memcmp(a->key, p, n) == 0;
}

static int vis(const value_t *v, const char *s)
{
    return v != NULL && v->type == V_STR && v->len == strlen(s) && memcmp(v->s, s, v->len) == 0;
}

/* Whether a foreign span is a model call (see the header comment). */
static int is_model_call(const mapper_t *m)
{
    const value_t *kind = get_str(m, "openinference.span.kind");
    if (kind != NULL)
        return vis(kind, "LLM") || vis(kind, "EMBEDDING");
    const value_t *op = get_str(m, "gen_ai.operation.name");
    if (op != NULL && (vis(op, "execute_tool") || vis(op, "invoke_agent") || vis(op, "create_agent")))
        return 0;
    const value_t *rt = get_str(m, "traceloop.span.kind");
    if (rt != NULL && !vis(rt, "llm"))
        return 0;
    for (size_t i = 0; i < m->s->nattrs; i++)
        if (has_prefix(&m->s->attrs[i], "gen_ai.") || has_prefix(&m->s->attrs[i], "llm."))
            return 1;
    return 0;
}

/* Appends a JSON string of an attribute's text. */
static int append_vstr(gyre_buf_t *b, const value_t *v)
{
    return gyre_buf_append_json_string(b, v != NULL && v->type == V_STR ? v->s : "",
                                       v != NULL && v->type == V_STR ? v->len : 0);
}

/*
 * Indexed messages (gen_ai.prompt.0.role, llm.input_messages.0.message.content, ...): `prefix` N `role_key`.
 * Writes [{"role":..,"content":..},...] (or choices when `choices`) to b; returns how many were found.
 */
static size_t indexed_messages(const mapper_t *m, const char *prefix, const char *role_key, const char *content_key,
                               int choices, gyre_buf_t *b, int *rc)
{
    size_t n = 0;
    /* Each index costs a scan of the attributes: the bound keeps a span of many attributes linear. */
    for (size_t i = 0; i < INDEXED_MESSAGES_MAX; i++) {
        char kr[128], kc[128], kf[128];
        snprintf(kr, sizeof(kr), "%s%zu%s", prefix, i, role_key);
        snprintf(kc, sizeof(kc), "%s%zu%s", prefix, i, content_key);
        snprintf(kf, sizeof(kf), "%s%zu.finish_reason", prefix, i);
        const value_t *role = get_str(m, kr), *content = get_str(m, kc);
        if (role == NULL && content == NULL)
            break;
        *rc |= gyre_buf_appends(b, n ? "," : "");
        if (choices) {
            *rc |= gyre_buf_appendf(b, "{\"index\":%zu,\"message\":{\"role\":", i);
        } else {
            *rc |= gyre_buf_appends(b, "{\"role\":");
        }
        if (role != NULL)
            *rc |= append_vstr(b, role);
        else
            *rc |= gyre_buf_appends(b, choices ? "\"assistant\"" : "\"user\"");
        *rc |= gyre_buf_appends(b, ",\"content\":");
        *rc |= append_vstr(b, content);
        *rc |= gyre_buf_appends(b, "}");
        if (choices) {
            const value_t *fr = get_str(m, kf);
            *rc |= gyre_buf_appends(b, ",\"finish_reason\":");
            *rc |= fr != NULL ? append_vstr(b, fr) : gyre_buf_appends(b, "null");
            *rc |= gyre_buf_appends(b, "}");
        }
        n++;
    }
    return n;
}

static gyre_tstr_t buf_to_tstr(const mapper_t *m, gyre_buf_t *b, int rc)
{
    gyre_tstr_t s = rc == 0 && b->len != 0 ? cut(m->pool, b->base, b->len, GYRE_OTLP_BODY_MAX) : (gyre_tstr_t){NULL, 0};
    gyre_buf_dispose(b);
    return s;
}

/* The request body: input.value, else the messages in one of the vocabularies, as {"messages":[...]}. */
static gyre_tstr_t request_body(const mapper_t *m)
{
    const value_t *v = get_str(m, "input.value");
    if (v != NULL && v->len != 0 && v->len <= GYRE_OTLP_BODY_MAX)
        return vstr(m, v, GYRE_OTLP_BODY_MAX);
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_OTLP_BODY_MAX);
    int rc = 0;
    if ((v = get_str(m, "gen_ai.input.messages")) != NULL && v->len != 0) {
        rc |= gyre_buf_appends(&b, "{\"messages\":");
        rc |= gyre_buf_append(&b, v->s, v->len);
        rc |= gyre_buf_appends(&b, "}");
        return buf_to_tstr(m, &b, rc);
    }
    rc |= gyre_buf_appends(&b, "{\"messages\":[");
    size_t n = indexed_messages(m, "gen_ai.prompt.", ".role", ".content", 0, &b, &rc);
    if (n == 0)
        n = indexed_messages(m, "llm.input_messages.", ".message.role", ".message.content", 0, &b, &rc);
    if (n == 0)
        n = indexed_messages(m, "llm.prompts.", ".role", ".content", 0, &b, &rc);
    rc |= gyre_buf_appends(&b, "]}");
    return buf_to_tstr(m, &b, n != 0 ? rc : -1);
}

/* The response body: output.value, else {"messages":[...]} or OpenAI's {"choices":[...]}. */
static gyre_tstr_t response_body(const mapper_t *m)
{
    const value_t *v = get_str(m, "output.value");
    if (v != NULL && v->len != 0 && v->len <= GYRE_OTLP_BODY_MAX)
        return vstr(m, v, GYRE_OTLP_BODY_MAX);
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_OTLP_BODY_MAX);
    int rc = 0;
    if ((v = get_str(m, "gen_ai.output.messages")) != NULL && v->len != 0) {
        rc |= gyre_buf_appends(&b, "{\"messages\":");
        rc |= gyre_buf_append(&b, v->s, v->len);
        rc |= gyre_buf_appends(&b, "}");
        return buf_to_tstr(m, &b, rc);
    }
    rc |= gyre_buf_appends(&b, "{\"choices\":[");
    size_t n = indexed_messages(m, "gen_ai.completion.", ".role", ".content", 1, &b, &rc);
    if (n == 0)
        n = indexed_messages(m, "llm.output_messages.", ".message.role", ".message.content", 1, &b, &rc);
    rc |= gyre_buf_appends(&b, "]}");
    return buf_to_tstr(m, &b, n != 0 ? rc : -1);
}

static void add_meta(gyre_trace_t *t, const mapper_t *m, const char *k, size_t kl, const char *v, size_t vl)
{
    if (t->nmeta == GYRE_TRACE_MAX_META || kl == 0)
        return;
    t->meta[t->nmeta].key = cut(m->pool, k, kl, GYRE_OTLP_FIELD_MAX);
    t->meta[t->nmeta].value = cut(m->pool, v, vl, GYRE_OTLP_FIELD_MAX);
    t->nmeta++;
}

static void add_tags(gyre_trace_t *t, const mapper_t *m, const value_t *v)
{
    if (v == NULL)
        return;
    if (v->type == V_STR && v->len != 0 && t->ntags < GYRE_TRACE_MAX_TAGS)
        t->tags[t->ntags++] = cut(m->pool, v->s, v->len, TAG_MAX);
    if (v->type == V_ARRAY)
        for (size_t i = 0; i < v->nitems && t->ntags < GYRE_TRACE_MAX_TAGS; i++)
            if (v->items[i].type == V_STR && v->items[i].len != 0)
                t->tags[t->ntags++] = cut(m->pool, v->items[i].s, v->items[i].len, TAG_MAX);
}

static int64_t ns_to_us(uint64_t ns)
{
    return (int64_t)(ns / 1000 > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : ns / 1000);
}

/* What every span's trace starts with: ids, times, nothing known. */
static void map_common(const mapper_t *m, gyre_trace_t *t)
{
    const span_t *s = m->s;
    memset(t, 0, sizeof(*t));
    t->ttft_us = -1;
    t->prompt_tokens = t->completion_tokens = t->cached_tokens = t->reasoning_tokens = -1;
    t->cost_usd = NAN;
    h2o_hex_encode(t->otel_trace_id, s->tid, 16);
    h2o_hex_encode(t->span_id, s->sid, 8);
    if (s->has_pid)
        h2o_hex_encode(t->parent_span_id, s->pid, 8);
    t->started_us = ns_to_us(s->start_ns);
    t->ended_us = ns_to_us(s->end_ns);
    if (t->ended_us < t->started_us)
        t->ended_us = t->started_us;
    t->request_body = request_body(m);
    t->response_body = response_body(m);
}

static int is_hex32(const value_t *v)
{
    uint8_t tmp[16];
    return v != NULL && v->type == V_STR && unhex(v->s, v->len, tmp, 16) == 0;
}

/* A span of gyre's own export: every field from gyre.* (see encode.c). */
static void map_gyre(const mapper_t *m, gyre_trace_t *t, const value_t *gid)
{
    for (size_t i = 0; i < 32; i++) {
        char c = gid->s[i];
        t->trace_id[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
    }
    t->trace_id[32] = '\0';
    t->request_id = vstr(m, get_str(m, "gyre.request_id"), GYRE_OTLP_FIELD_MAX);
    t->endpoint = vstr(m, get_str(m, "gyre.endpoint"), GYRE_OTLP_FIELD_MAX);
    t->route = vstr(m, get_str(m, "gyre.route"), GYRE_OTLP_FIELD_MAX);
    t->provider = vstr(m, get_str(m, "gyre.provider"), GYRE_OTLP_FIELD_MAX);
    t->model = vstr(m, get_str(m, "gen_ai.request.model"), GYRE_OTLP_FIELD_MAX);
    int64_t st = get_int(m, "http.response.status_code");
    t->status = st >= 0 && st < 1000 ? (int)st : 0;
    const value_t *v;
    t->stream = (v = get(m, "gyre.stream")) != NULL && v->type == V_BOOL && v->i;
    t->cache_hit = (v = get(m, "gyre.cache_hit")) != NULL && v->type == V_BOOL && v->i;
    t->ttft_us = get_int(m, "gyre.ttft_us");
    if ((v = get(m, "gyre.cost_usd")) != NULL && v->type == V_DOUBLE && v->d >= 0 && isfinite(v->d))
        t->cost_usd = v->d;
    t->prompt_tokens = get_int(m, "gen_ai.usage.input_tokens");
    t->completion_tokens = get_int(m, "gen_ai.usage.output_tokens");
    t->cached_tokens = get_int(m, "gyre.usage.cached_tokens");
    t->reasoning_tokens = get_int(m, "gyre.usage.reasoning_tokens");
    t->finish_reason = vstr(m, get_str(m, "gen_ai.response.finish_reasons"), GYRE_OTLP_FIELD_MAX);
    t->session = vstr(m, get_str(m, "gen_ai.conversation.id"), GYRE_OTLP_FIELD_MAX);
    t->agent = vstr(m, get_str(m, "gyre.agent"), GYRE_OTLP_FIELD_MAX);
    t->user = vstr(m, get_str(m, "gyre.user"), GYRE_OTLP_FIELD_MAX);
    add_tags(t, m, get(m, "gyre.tags"));
    for (size_t i = 0; i < m->s->nattrs; i++) {
        const attr_t *a = &m->s->attrs[i];
        if (has_prefix(a, "gyre.meta.") && a->v.type == V_STR)
            add_meta(t, m, a->key + 10, a->klen - 10, a->v.s, a->v.len);
    }
    for (size_t i = 0; i < m->s->nevents && t->nattempts < GYRE_TRACE_MAX_ATTEMPTS; i++) {
        const event_t *e = &m->s->events[i];
        if (e->nlen != 12 || memcmp(e->name, "gyre.attempt", 12) != 0)
            continue;
        mapper_t em = {&(span_t){.attrs = e->attrs, .nattrs = e->nattrs}, m->pool};
        gyre_trace_attempt_t *a = &t->attempts[t->nattempts++];
        a->provider = vstr(m, get_str(&em, "gyre.attempt.provider"), GYRE_OTLP_FIELD_MAX);
        a->model = vstr(m, get_str(&em, "gyre.attempt.model"), GYRE_OTLP_FIELD_MAX);
        a->key_id = vstr(m, get_str(&em, "gyre.attempt.key_id"), GYRE_OTLP_FIELD_MAX);
        a->error = vstr(m, get_str(&em, "gyre.attempt.error"), GYRE_OTLP_FIELD_MAX);
        int64_t as = get_int(&em, "gyre.attempt.status");
        a->status = as >= 0 && as < 1000 ? (int)as : 0;
        a->started_us = ns_to_us(e->time_ns);
        a->latency_us = get_int(&em, "gyre.attempt.latency_us");
        if (a->latency_us < 0)
            a->latency_us = 0;
    }
}

/* OpenInference's `metadata` (a JSON object as a string): its scalar members become meta entries. */
static void map_metadata(const mapper_t *m, gyre_trace_t *t, const value_t *v)
{
    if (v == NULL || v->len == 0)
        return;
    cJSON *j = cJSON_ParseWithLength(v->s, v->len);
    const cJSON *obj = cJSON_IsObject(j) ? j : NULL, *it;
    cJSON_ArrayForEach(it, obj)
    {
        char num[64];
        if (cJSON_IsString(it)) {
            add_meta(t, m, it->string, strlen(it->string), it->valuestring, strlen(it->valuestring));
        } else if (cJSON_IsNumber(it) || cJSON_IsBool(it)) {
            if (cJSON_IsNumber(it))
                snprintf(num, sizeof(num), "%.17g", it->valuedouble);
            else
                snprintf(num, sizeof(num), "%s", cJSON_IsTrue(it) ? "true" : "false");
            add_meta(t, m, it->string, strlen(it->string), num, strlen(num));
        }
    }
    cJSON_Delete(j);
}

/* A span from an instrumented app, in any of the four vocabularies. */
static void map_foreign(const mapper_t *m, gyre_trace_t *t)
{
    static const char *const provider[] = {"gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system",
                                           NULL};
    static const char *const model[] = {"gen_ai.response.model", "gen_ai.request.model", "llm.model_name",
                                        "llm.response.model", "llm.request.model", NULL};
    static const char *const input[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                        "llm.token_count.prompt", "llm.usage.prompt_tokens", NULL};
    static const char *const output[] = {"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                         "llm.token_count.completion", "llm.usage.completion_tokens", NULL};
    static const char *const total[] = {"llm.usage.total_tokens", "llm.token_count.total", "gen_ai.usage.total_tokens",
                                        NULL};
    static const char *const cached[] = {"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                                         "llm.token_count.prompt_details.cache_read", NULL};
    static const char *const reasoning[] = {"gen_ai.usage.reasoning.output_tokens",
                                            "llm.token_count.completion_details.reasoning", NULL};
    static const char *const finish[] = {"gen_ai.response.finish_reasons", "gen_ai.completion.0.finish_reason",
                                         "llm.response.finish_reason", NULL};
    static const char *const session[] = {"gen_ai.conversation.id", "session.id",
                                          "traceloop.association.properties.session_id", NULL};
    static const char *const user[] = {"user.id", "enduser.id", "traceloop.association.properties.user_id", NULL};
    static const char *const agent[] = {"gen_ai.agent.name", "traceloop.workflow.name", NULL};
    gyre_otlp_derive_trace_id(m->s->tid, m->s->sid, t->trace_id);
    t->endpoint = cut(m->pool, "otlp", 4, 4);
    t->provider = first_str(m, provider);
    t->model = first_str(m, model);
    t->prompt_tokens = first_int(m, input);
    t->completion_tokens = first_int(m, output);
    int64_t tot = first_int(m, total);
    if (tot >= 0 && t->prompt_tokens >= 0 && t->completion_tokens < 0 && tot >= t->prompt_tokens)
        t->completion_tokens = tot - t->prompt_tokens;
    t->cached_tokens = first_int(m, cached);
    t->reasoning_tokens = first_int(m, reasoning);
    t->finish_reason = first_str(m, finish);
    t->session = first_str(m, session);
    t->user = first_str(m, user);
    t->agent = first_str(m, agent);
    if (t->agent.len == 0) {
        const value_t *svc = find_in(m->s->res, m->s->nres, "service.name");
        if (svc != NULL && svc->type == V_STR)
            t->agent = vstr(m, svc, GYRE_OTLP_FIELD_MAX);
    }
    const value_t *v;
    t->stream = ((v = get(m, "gen_ai.request.stream")) != NULL || (v = get(m, "llm.is_streaming")) != NULL) &&
                v->type == V_BOOL && v->i;
    if ((v = get(m, "llm.cost.total")) != NULL && v->type == V_DOUBLE && v->d >= 0 && isfinite(v->d))
        t->cost_usd = v->d;
    add_tags(t, m, get(m, "tag.tags"));
    map_metadata(m, t, get_str(m, "metadata"));
    for (size_t i = 0; i < m->s->nattrs; i++) {
        const attr_t *a = &m->s->attrs[i];
        static const char tp[] = "traceloop.association.properties.";
        if (has_prefix(a, tp) && a->v.type == V_STR && !key_is(a, "traceloop.association.properties.session_id") &&
            !key_is(a, "traceloop.association.properties.user_id"))
            add_meta(t, m, a->key + sizeof(tp) - 1, a->klen - (sizeof(tp) - 1), a->v.s, a->v.len);
    }
    if ((v = get_str(m, "gen_ai.response.id")) != NULL)
        add_meta(t, m, "gen_ai.response.id", 18, v->s, v->len);
    if (m->s->nlen != 0)
        add_meta(t, m, "otel.span_name", 14, m->s->name, m->s->nlen);
    /* The status: an HTTP status when the span has one; else the span status's ERROR, as 500 unless error.type is one. */
    int64_t st = get_int(m, "http.response.status_code");
    if (st < 0)
        st = get_int(m, "http.status_code");
    const value_t *et = get_str(m, "error.type");
    if (st >= 100 && st < 1000) {
        t->status = (int)st;
    } else if (m->s->status_code == 2 || et != NULL) {
        int64_t e = get_int(m, "error.type");
        t->status = e >= 400 && e < 600 ? (int)e : 500;
    } else {
        t->status = 200;
    }
}

void gyre_otlp_derive_trace_id(const uint8_t trace_id[16], const uint8_t span_id[8], char out[33])
{
    /* SHA-256 over a label and both ids; 128 bits of it name the trace. */
    uint8_t in[8 + 16 + 8], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    memcpy(in, "gyreotlp", 8);
    memcpy(in + 8, trace_id, 16);
    memcpy(in + 24, span_id, 8);
    EVP_Digest(in, sizeof(in), md, &mdlen, EVP_sha256(), NULL);
    h2o_hex_encode(out, md, 16);
}

int gyre_otlp_ingest(const char *body, size_t len, gyre_otlp_format_t format, gyre_otlp_trace_cb cb, void *ctx,
                     gyre_otlp_ingest_result_t *res)
{
    memset(res, 0, sizeof(*res));
    reader_t r = {.msg = res->message, .msglen = sizeof(res->message)};
    h2o_mem_init_pool(&r.pool);
    cJSON *tree = NULL;
    int rc = format == GYRE_OTLP_PROTOBUF ? pb_read(&r, body != NULL ? body : "", len)
                                          : json_read(&r, body != NULL ? body : "", len, &tree);
    if (rc != 0) {
        rc = -EINVAL;
        goto out;
    }
    res->spans = r.nspans;
    for (size_t i = 0; i < r.nspans; i++) {
        const span_t *s = &r.spans[i];
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        mapper_t m = {s, &pool};
        const value_t *gid = get_str(&m, "gyre.trace_id");
        if (!is_hex32(gid) && !is_model_call(&m)) {
            res->skipped++;
        } else if (!s->ids_ok) {
            if (res->rejected++ == 0)
                snprintf(res->message, sizeof(res->message),
                         "span %zu: traceId must be 16 bytes (32 hex digits) and spanId 8 (16 hex digits), not all "
                         "zeros",
                         i);
        } else {
            gyre_trace_t t;
            map_common(&m, &t);
            if (is_hex32(gid))
                map_gyre(&m, &t, gid);
            else
                map_foreign(&m, &t);
            cb(&t, ctx);
            res->stored++;
        }
        h2o_mem_clear_pool(&pool);
    }
out:
    cJSON_Delete(tree);
    free(r.spans);
    h2o_mem_clear_pool(&r.pool);
    return rc;
}
