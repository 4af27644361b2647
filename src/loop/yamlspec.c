/* The loop specs' shared YAML getters (yamlspec.h). */
#include "loop/yamlspec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"



void gyre_ys_err(gyre_ys_t *c, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->source, n != NULL ? (int)n->start_mark.line + 1 : 0, field, msg);
}

const char *gyre_ys_scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

const char *gyre_ys_type_name(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? "a scalar" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
}

int gyre_ys_want(gyre_ys_t *c, const yaml_node_t *n, yaml_node_type_t t, const char *field)
{
    if (n->type == t)
        return 1;
    gyre_ys_err(c, n, field, "expected %s, found %s",
             t == YAML_SCALAR_NODE     ? "a scalar"
             : t == YAML_SEQUENCE_NODE ? "a list"
                                       : "a mapping",
             gyre_ys_type_name(n));
    return 0;
}



int gyre_ys_uint(gyre_ys_t *c, const yaml_node_t *n, const char *field, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_ys_scalar(n);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0) {
        gyre_ys_err(c, n, field, "expected a whole number, found '%s'", s);
        return 0;
    }
    if (v < min || v > max) {
        gyre_ys_err(c, n, field, "%llu is out of range (%llu to %llu)", v, (unsigned long long)min,
                 (unsigned long long)max);
        return 0;
    }
    *out = v;
    return 1;
}

/* A number in [min, max] (max_open: strictly below max). */
int gyre_ys_double(gyre_ys_t *c, const yaml_node_t *n, const char *field, double min, double max, int max_open,
                      double *out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    const char *s = gyre_ys_scalar(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || isspace((unsigned char)s[0]) || *end != '\0' || errno != 0 || !isfinite(v)) {
        gyre_ys_err(c, n, field, "expected a number, found '%s'", s);
        return 0;
    }
    if (v < min || v > max || (max_open && v >= max)) {
        gyre_ys_err(c, n, field, "%s is out of range (%g to %g%s)", s, min, max, max_open ? ", exclusive" : "");
        return 0;
    }
    *out = v;
    return 1;
}

/* 1/0 for a YAML boolean, -1 (no error recorded) for any other scalar. */
int gyre_ys_bool_of(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
        return 1;
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
        return 0;
    return -1;
}

int gyre_ys_bool(gyre_ys_t *c, const yaml_node_t *n, const char *field, int *out)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return 0;
    int b = gyre_ys_bool_of(gyre_ys_scalar(n));
    if (b < 0) {
        gyre_ys_err(c, n, field, "expected true or false, found '%s'", gyre_ys_scalar(n));
        return 0;
    }
    *out = b;
    return 1;
}

int gyre_ys_choice(gyre_ys_t *c, const yaml_node_t *n, const char *field, const char *const *names)
{
    if (!gyre_ys_want(c, n, YAML_SCALAR_NODE, field))
        return -1;
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(gyre_ys_scalar(n), names[i]) == 0)
            return i;
    char list[256] = "";
    for (int i = 0; names[i] != NULL; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", names[i]);
    gyre_ys_err(c, n, field, "unknown value '%s' (known: %s)", gyre_ys_scalar(n), list);
    return -1;
}

/* A list of scalars, or one scalar as a list of one. */
int gyre_ys_list(gyre_ys_t *c, yaml_node_t *n, const char *field, char ***out, size_t *count)
{
    yaml_node_item_t one = 0, *start = &one, *end = &one + 1;
    if (n->type == YAML_SEQUENCE_NODE) {
        start = n->data.sequence.items.start;
        end = n->data.sequence.items.top;
    } else if (n->type != YAML_SCALAR_NODE) {
        gyre_ys_err(c, n, field, "expected a list, found %s", gyre_ys_type_name(n));
        return 0;
    }
    if (end - start > GYRE_YS_MAX_LIST) {
        gyre_ys_err(c, n, field, "more than %d entries", GYRE_YS_MAX_LIST);
        return 0;
    }
    for (yaml_node_item_t *it = start; it < end; it++) {
        yaml_node_t *v = it == &one ? n : yaml_document_get_node(c->doc, *it);
        if (!gyre_ys_want(c, v, YAML_SCALAR_NODE, field))
            return 0;
        if (gyre_ys_scalar(v)[0] == '\0') {
            gyre_ys_err(c, v, field, "an empty entry");
            return 0;
        }
        *out = gyre_realloc(*out, sizeof(**out) * (*count + 1));
        (*out)[(*count)++] = gyre_strdup(gyre_ys_scalar(v));
    }
    return 1;
}

/* "90s", "15m", "24h", "7d", "2w" in microseconds; -1 when not a duration. */
int64_t gyre_ys_duration_us(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || errno != 0 || end[0] == '\0' || end[1] != '\0' || v > 100000000ULL)
        return -1;
    int64_t unit;
    switch (end[0]) {
    case 's': unit = 1000000LL; break;
    case 'm': unit = 60 * 1000000LL; break;
    case 'h': unit = 3600 * 1000000LL; break;
    case 'd': unit = 86400 * 1000000LL; break;
    case 'w': unit = 7 * 86400 * 1000000LL; break;
    default: return -1;
    }
    return (int64_t)v * unit;
}

void gyre_ys_unknown(gyre_ys_t *c, const yaml_node_t *k, const char *section, const char *known)
{
    if (gyre_ys_scalar(k) == NULL)
        gyre_ys_err(c, k, section, "a key must be a scalar");
    else
        gyre_ys_err(c, k, section, "unknown field '%s' (known: %s)", gyre_ys_scalar(k), known);
}

int gyre_ys_read_file(const char *path, size_t max, gyre_buf_t *b, char *err, size_t errlen)
{
    gyre_buf_init(b, max);
    int rc = gyre_buf_append_file(b, path);
    if (rc == -E2BIG)
        snprintf(err, errlen, "%s: larger than the %zu KB a spec may be", path, max / 1024);
    else if (rc != 0)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
}

void gyre_ys_free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
