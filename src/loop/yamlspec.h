/*
 * What the loop's YAML specs (the curation spec, src/loop/spec.c; the loop
 * spec, src/loop/loopspec.c) share to read libyaml's document API: the first
 * error found, as "FILE:LINE: FIELD: message", and typed getters that record
 * it.  The config (src/config) has its own, internal to config/.
 */
#ifndef GYRE_LOOP_YAMLSPEC_H
#define GYRE_LOOP_YAMLSPEC_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

/* Bounds on the lists a spec holds: a spec names a few routes, not thousands (the file's bound covers the rest). */
#define GYRE_YS_MAX_LIST 256

typedef struct gyre_ys {
    const char *source;
    yaml_document_t *doc;
    int64_t now_us;
    char *err;
    size_t errlen;
    int failed;
} gyre_ys_t;

#define PAIRS(n)                                                                                                       \
    yaml_node_pair_t *pair = (n)->data.mapping.pairs.start;                                                            \
    pair < (n)->data.mapping.pairs.top;                                                                                \
    pair++
#define KEY(c) yaml_document_get_node((c)->doc, pair->key)
#define VALUE(c) yaml_document_get_node((c)->doc, pair->value)

void gyre_ys_err(gyre_ys_t *c, const yaml_node_t *n, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A scalar's text, or NULL for another node. */
const char *gyre_ys_scalar(const yaml_node_t *n);
const char *gyre_ys_type_name(const yaml_node_t *n);
/* Whether n is of type t (an error recorded when not). */
int gyre_ys_want(gyre_ys_t *c, const yaml_node_t *n, yaml_node_type_t t, const char *field);
int gyre_ys_uint(gyre_ys_t *c, const yaml_node_t *n, const char *field, uint64_t min, uint64_t max, uint64_t *out);
/* A number in [min, max] (max_open: strictly below max). */
int gyre_ys_double(gyre_ys_t *c, const yaml_node_t *n, const char *field, double min, double max, int max_open,
                   double *out);
/* 1/0 for a YAML boolean, -1 (no error recorded) for any other scalar. */
int gyre_ys_bool_of(const char *s);
int gyre_ys_bool(gyre_ys_t *c, const yaml_node_t *n, const char *field, int *out);
/* The index of n's value in the NULL-terminated `names`, or -1 (recorded). */
int gyre_ys_choice(gyre_ys_t *c, const yaml_node_t *n, const char *field, const char *const *names);
/* A list of scalars, or one scalar as a list of one, appended to *out (malloc'd strings). */
int gyre_ys_list(gyre_ys_t *c, yaml_node_t *n, const char *field, char ***out, size_t *count);
/* "90s", "15m", "24h", "7d", "2w" in microseconds; -1 when not a duration. */
int64_t gyre_ys_duration_us(const char *s);

/* A spec file's bytes into b (initialised here with `max`; the caller disposes it).  0, or a negative errno with
 * err "PATH: why" (the bound named). */
struct gyre_buf;
int gyre_ys_read_file(const char *path, size_t max, struct gyre_buf *b, char *err, size_t errlen);

/* Frees a list gyre_ys_list made (each string, then the array). */
void gyre_ys_free_list(char **v, size_t n);

/* "unknown field 'K' (known: ...)" for key node k of `section`. */
void gyre_ys_unknown(gyre_ys_t *c, const yaml_node_t *k, const char *section, const char *known);

#endif
