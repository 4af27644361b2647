/*
 * Every field of the configuration file, in one table: its path ("providers[].max_tokens"), its type, its
 * default and what it means.  `gyre check-config --help` prints it and docs/config.md's field reference is
 * generated from it (`gyre check-config --fields-markdown`, scripts/gen-config-doc.sh), so the two cannot
 * disagree; tests/unit/config_fields.c checks that the table and the parser know the same fields, section by
 * section, and that docs/config.md is what the generator writes.
 *
 * Paths: "a.b" is field b of mapping a, "a[]" an element of list a, "a.*" the value of any key of mapping a
 * (a model name in `prices:`).  A field's section is its path up to the last '.'; the root's fields have the
 * section "".  Adding a field to the parser is adding its row here (the test names the row that is missing).
 * A row whose type is "list of mappings" or ends in "mapping" opens a section ("alerts[]", "limits") that the
 * test probes even before the section has rows of its own, so a new section's fields cannot be left out.
 */
#ifndef GYRE_CONFIG_FIELDS_H
#define GYRE_CONFIG_FIELDS_H

#include <stddef.h>

#include "common/buf.h"

typedef struct gyre_config_field {
    const char *path;        /* "providers[].max_tokens" */
    const char *type;        /* "integer 1-10000000", "bool", "secret", "list", "mapping", ... */
    const char *def;         /* the default as text; "" when there is none (required, or absent means off) */
    const char *description; /* one or two sentences */
} gyre_config_field_t;

extern const gyre_config_field_t gyre_config_fields[];
extern const size_t gyre_config_nfields;

/* The section of `path` (its part before the last '.', "" for a root field) into buf; returns buf. */
const char *gyre_config_field_section(const char *path, char *buf, size_t len);

/* The table as text for `check-config --help`: one entry per field, the description wrapped at 100 columns. */
void gyre_config_fields_text(gyre_buf_t *out);
/* The table as Markdown for docs/config.md: a heading and a table per section, in the table's order. */
void gyre_config_fields_markdown(gyre_buf_t *out);

#endif
