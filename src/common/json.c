/* JSON helpers (see json.h). */
#include "common/json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "common/wire.h"

#define ARENA_BYTES (64 * 1024)

/* GCC says it builds with ASan by __SANITIZE_ADDRESS__; clang (before 16)
 * only through __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define GYRE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GYRE_ASAN 1
#endif
#endif

#ifdef GYRE_ASAN
#include <sanitizer/asan_interface.h>
/* Under ASan the arena's free bytes are poisoned: a value used after its cJSON_Delete, or after its scope ended,
 * is reported as a use-after-poison.  Each value carries its size in a header, so that its free poisons it. */
#define ARENA_HEADER 16
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_HEADER 0
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The byte the used part of the arena is filled with when a scope ends: a pointer kept past its scope reads
 * 0xDB bytes (an invalid UTF-8 lead, an unlikely length), not the next request's data that looks right. */
#define ARENA_SCRIBBLE 0xDB

static __thread struct {
    char *base;
    size_t used;
    unsigned depth;      /* scopes open on this thread: the outermost one owns the arena */
    uint64_t generation; /* scopes ended on this thread (gyre_json_arena_generation) */
} arena;

/*
 * A thread's arena is freed when the thread ends (a key's destructor), so a
 * thread that parsed JSON (an API job, a scorer, a clustering) leaks nothing
 * whether or not it called gyre_json_arena_release; the workers' arenas live
 * as long as the process.
 */
static pthread_key_t arena_key;
static pthread_once_t arena_key_once = PTHREAD_ONCE_INIT;
static int arena_key_ok;

static void arena_key_free(void *p)
{
    UNPOISON(p, ARENA_BYTES);
    free(p);
}

static void arena_key_make(void)
{
    arena_key_ok = pthread_key_create(&arena_key, arena_key_free) == 0;
}

static void *arena_malloc(size_t n)
{
    if (arena.depth != 0 && arena.base != NULL) {
        size_t need = ARENA_HEADER + ((n + 15) & ~(size_t)15);
        if (need <= ARENA_BYTES - arena.used) {
            char *p = arena.base + arena.used;
            arena.used += need;
#ifdef GYRE_ASAN
            UNPOISON(p, need);
            memcpy(p, &n, sizeof(n));
#endif
            return p + ARENA_HEADER;
        }
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    /* Memory from the arena is given back all at once, at the end of its scope. */
    if (arena.base != NULL && (char *)p >= arena.base && (char *)p < arena.base + ARENA_BYTES) {
#ifdef GYRE_ASAN
        size_t n;
        memcpy(&n, (char *)p - ARENA_HEADER, sizeof(n));
        POISON(p, n);
#endif
        return;
    }
    free(p);
}

void gyre_json_init(void)
{
    cJSON_Hooks hooks = {arena_malloc, arena_free};
    cJSON_InitHooks(&hooks);
}

void gyre_json_arena_begin(void)
{
    if (arena.depth++ != 0)
        return; /* nested: the outer scope's arena serves it, and keeps what the outer scope holds */
    if (arena.base == NULL) {
        arena.base = malloc(ARENA_BYTES);
        if (arena.base == NULL)
            return; /* no arena: plain malloc, as without this */
        POISON(arena.base, ARENA_BYTES);
        pthread_once(&arena_key_once, arena_key_make);
        if (arena_key_ok)
            pthread_setspecific(arena_key, arena.base);
    }
    arena.used = 0;
}

int gyre_json_arena_enter(void)
{
    if (arena.depth != 0)
        return 0;
    gyre_json_arena_begin();
    return 1;
}

void gyre_json_arena_end(void)
{
    if (arena.depth == 0 || --arena.depth != 0)
        return;
    if (arena.base != NULL && arena.used != 0) {
        UNPOISON(arena.base, arena.used);
        memset(arena.base, ARENA_SCRIBBLE, arena.used);
        POISON(arena.base, ARENA_BYTES);
    }
    arena.used = 0;
    arena.generation++;
}

int gyre_json_arena_active(void)
{
    return arena.depth != 0;
}

void gyre_json_arena_release(void)
{
    if (arena.depth != 0)
        return;
    if (arena.base != NULL)
        UNPOISON(arena.base, ARENA_BYTES);
    if (arena.base != NULL && arena_key_ok)
        pthread_setspecific(arena_key, NULL);
    free(arena.base);
    arena.base = NULL;
    arena.used = 0;
}

uint64_t gyre_json_arena_generation(void)
{
    return arena.generation;
}

/* Whitespace as cJSON, which validated the text, reads it: every byte up to
 * 0x20 (NUL and other control bytes too).  Were the two to disagree, a value
 * would be located at the wrong bytes and the splice would corrupt the body. */
static int is_ws(char c)
{
    return (unsigned char)c <= ' ';
}

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

/* `i` is at an opening quote; returns the index just past the closing one. */
static size_t skip_string(const char *s, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

/* Returns the index just past the value that starts at `i`. */
static size_t skip_value(const char *s, size_t i, size_t len)
{
    if (i >= len)
        return len;
    if (s[i] == '"')
        return skip_string(s, i, len);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        for (; i < len; i++) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, len) - 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return len;
    }
    while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i]))
        i++;
    return i;
}

int gyre_json_find_member(const char *json, size_t len, const char *key, size_t *start, size_t *end)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(json, 0, len);
    if (i >= len || json[i] != '{')
        return -1;
    i++;
    for (;;) {
        i = skip_ws(json, i, len);
        if (i >= len || json[i] != '"')
            return -1;
        size_t kstart = i + 1;
        size_t kend = skip_string(json, i, len) - 1;
        i = skip_ws(json, kend + 1, len);
        if (i >= len || json[i] != ':')
            return -1;
        i = skip_ws(json, i + 1, len);
        size_t vend = skip_value(json, i, len);
        /* Keys are compared as written; an escaped spelling of "model" is not
         * matched, and cJSON's reading then decides (see openai.c). */
        if (kend - kstart == klen && memcmp(json + kstart, key, klen) == 0) {
            *start = i;
            *end = vend;
            return 0;
        }
        i = skip_ws(json, vend, len);
        if (i >= len || json[i] != ',')
            return -1;
        i++;
    }
}

void gyre_json_position(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

const char *gyre_json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "invalid";
}

/* ---- Strict validation (RFC 8259). ---- */

static const unsigned char *skip_json_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string from its opening quote: the byte after its closing quote, or NULL. */
static const unsigned char *valid_string(const unsigned char *p, const unsigned char *end)
{
    size_t bad;
    for (p++; p < end;) {
        unsigned char c = *p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p == end)
                return NULL;
            if (*p == 'u') {
                if (end - p < 5 || gyre_wire_hex_digit(p[1]) < 0 || gyre_wire_hex_digit(p[2]) < 0 ||
                    gyre_wire_hex_digit(p[3]) < 0 || gyre_wire_hex_digit(p[4]) < 0)
                    return NULL;
                p += 5;
            } else if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0') {
                p++;
            } else {
                return NULL;
            }
        } else if (c >= 0x80) {
            size_t len = gyre_utf8_next((const char *)p, (size_t)(end - p), &bad);
            if (len == 0)
                return NULL;
            p += len;
        } else {
            p++;
        }
    }
    return NULL;
}

static const unsigned char *digits(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p == start ? NULL : p;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static const unsigned char *valid_number(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if ((p = digits(p, end)) == NULL)
        return NULL;
    if (p < end && *p == '.' && (p = digits(p + 1, end)) == NULL)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if ((p = digits(p, end)) == NULL)
            return NULL;
    }
    return p;
}

int gyre_json_valid(const char *json, size_t len)
{
    const unsigned char *p = (const unsigned char *)json, *end = p + len;
    char open[GYRE_JSON_VALID_DEPTH]; /* '{' or '[' for each container the value is in */
    size_t depth = 0;
value:
    p = skip_json_ws(p, end);
    if (p == end)
        return 0;
    switch (*p) {
    case '{':
    case '[':
        if (depth == GYRE_JSON_VALID_DEPTH)
            return 0;
        open[depth++] = (char)*p;
        p = skip_json_ws(p + 1, end);
        if (p < end && *p == (open[depth - 1] == '{' ? '}' : ']')) {
            depth--;
            p++;
            goto after;
        }
        if (open[depth - 1] == '[')
            goto value;
        goto member;
    case '"': p = valid_string(p, end); break;
    case 't': p = end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL; break;
    case 'f': p = end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL; break;
    case 'n': p = end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL; break;
    default: p = valid_number(p, end);
    }
    if (p == NULL)
        return 0;
after:
    p = skip_json_ws(p, end);
    if (depth == 0)
        return p == end;
    if (p == end)
        return 0;
    if (*p == ',') {
        p = skip_json_ws(p + 1, end);
        if (open[depth - 1] == '[')
            goto value;
        goto member;
    }
    if (*p != (open[depth - 1] == '{' ? '}' : ']'))
        return 0;
    depth--;
    p++;
    goto after;
member:
    /* An object's member: a string, ':' and a value. */
    if (p == end || *p != '"' || (p = valid_string(p, end)) == NULL)
        return 0;
    p = skip_json_ws(p, end);
    if (p == end || *p != ':')
        return 0;
    p++;
    goto value;
}

long long gyre_json_count(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 9.0e15)
        return 0;
    return (long long)v->valuedouble;
}
