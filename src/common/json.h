/*
 * JSON helpers on top of cJSON.
 *
 * gyre forwards request bodies as the client wrote them, changing only what
 * it must (the `model` value).  cJSON validates and reads the body; the span
 * finder below locates a top-level value's bytes in the original text so the
 * rewrite is a splice, not a re-serialisation.
 */
#ifndef GYRE_COMMON_JSON_H
#define GYRE_COMMON_JSON_H

#include <stddef.h>

/*
 * Finds the first top-level member named `key` in `json`, which must be a
 * well-formed object (validated beforehand by cJSON, whose idea of
 * whitespace, any byte up to 0x20, it shares).  On success sets [*start, *end)
 * to the value's bytes (quotes included for a string) and returns 0;
 * returns -1 when there is no such member.
 */
int gyre_json_find_member(const char *json, size_t len, const char *key, size_t *start, size_t *end);

/*
 * A per-thread arena for cJSON's allocations.  Reading a request body makes
 * one allocation per value; between gyre_json_arena_begin() and _end() they
 * come from a fixed per-thread block instead (falling back to malloc when it
 * is full), and their frees cost nothing.  Everything parsed inside a scope
 * must be deleted before the scope ends; gyre_json_init() installs the hooks
 * once, before any thread starts.
 */
void gyre_json_init(void);
void gyre_json_arena_begin(void);
void gyre_json_arena_end(void);
/* Begins a scope unless one is open already (a parse nested in a handler's scope uses that one): 1 when it
 * began one, which the caller then ends with gyre_json_arena_end(), else 0. */
int gyre_json_arena_enter(void);

/*
 * Whether json[0..len) is exactly one JSON text as RFC 8259 defines it,
 * whitespace around it allowed, in well-formed UTF-8 (common/utf8.h), nested
 * at most GYRE_JSON_VALID_DEPTH deep.  Stricter than cJSON, which takes any
 * byte up to 0x20 as whitespace, raw control bytes in strings, ill-formed
 * UTF-8 and numbers such as "01" or "1.": what passes here can be embedded
 * in a JSON answer as it is, and any strict parser reads it.
 */
#define GYRE_JSON_VALID_DEPTH 1000
int gyre_json_valid(const char *json, size_t len);

/* "a string", "a number", ... for errors that say what was found instead. */
struct cJSON;
const char *gyre_json_type_name(const struct cJSON *v);

/* Line and column (both from 1) of byte offset `off` in `text`. */
void gyre_json_position(const char *text, size_t len, size_t off, unsigned *line, unsigned *col);

#endif
