/*
 * A small JSON Schema validator for the heuristics (src/loop/heuristic.c): the `json_schema` scorer's `schema:`
 * and the `parameters` of the tools a request declares (the `tool_args` scorer).  It knows the keywords
 * answers and tool schemas use in practice -- type, properties, required, additionalProperties, items, enum,
 * const, minimum/maximum, minLength/maxLength, minItems/maxItems, anyOf/oneOf/allOf -- and ignores every other
 * keyword (as a validator must for keywords it does not know: $schema, title, description, format, ...).
 *
 * A schema from a request is untrusted, so the walk is bounded twice: nesting (GYRE_JSONSCHEMA_MAX_DEPTH levels
 * of schema inside schema) and work (GYRE_JSONSCHEMA_MAX_STEPS keyword checks per validation: anyOf inside
 * anyOf is exponential otherwise).  Past either bound the document does not validate, and the reason says so:
 * a guardrail fails closed.  A keyword of the wrong shape in an untrusted schema ("required": 5) is ignored
 * when validating; gyre_jsonschema_check says what is wrong with one the operator wrote.
 */
#ifndef GYRE_LOOP_JSONSCHEMA_H
#define GYRE_LOOP_JSONSCHEMA_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define GYRE_JSONSCHEMA_MAX_DEPTH 32
#define GYRE_JSONSCHEMA_MAX_STEPS 100000

/* Whether `schema` is a schema this validator reads as written: 0, or -1 with `err` naming the keyword's path
 * ("properties.age.minimum: is not a number"). */
int gyre_jsonschema_check(const cJSON *schema, char *err, size_t errlen);

/* Whether `doc` validates against `schema`: 1, or 0 with `why` saying where and how it does not
 * ("$.items[2].name: is a number, not a string"). */
int gyre_jsonschema_validate(const cJSON *schema, const cJSON *doc, char *why, size_t whylen);

#endif
