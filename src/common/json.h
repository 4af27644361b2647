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
#include <stdint.h>

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
 * one allocation per value; inside a scope they come from a fixed 64 KiB
 * per-thread block instead (falling back to malloc when it is full), and
 * their frees cost nothing.  gyre_json_init() installs the hooks once,
 * before any thread starts.
 *
 * The scope, and who may hold its pointers:
 *
 * - It is opened by the code that reads a request or an answer, on the
 *   worker's thread, and ended before that code returns to the event loop:
 *   server/handlers.c around a model request's synchronous part (parse,
 *   route, dispatch), trace/record.c around reading a finished answer when
 *   no scope is open.  It never spans a callback: nothing that runs later
 *   (a timer, an upstream's reply, another request) is inside it.
 * - Only code running inside the scope, on that thread, may hold a pointer
 *   into what was parsed inside it.  What must outlive it is copied (into
 *   the request's pool, as record.c copies finish_reason), and every cJSON
 *   value parsed inside it is deleted before it ends.
 * - Scopes nest: an inner begin/end (or enter) uses the outer one's arena
 *   and leaves it alone; the outermost end resets it.
 * - When the outermost scope ends, the bytes it used are overwritten with
 *   0xDB, so a pointer kept past its scope reads garbage at once rather than
 *   the next request's values; under ASan they are also poisoned (and so is
 *   each value at its cJSON_Delete), so such a use is reported where it
 *   happens (tests/unit/common_json_arena.c).
 */
void gyre_json_init(void);
void gyre_json_arena_begin(void);
void gyre_json_arena_end(void);
/* Begins a scope unless one is open already (a parse nested in a handler's scope uses that one): 1 when it
 * began one, which the caller then ends with gyre_json_arena_end(), else 0. */
int gyre_json_arena_enter(void);
/* Whether a scope is open on this thread. */
int gyre_json_arena_active(void);
/* Frees this thread's arena (no scope may be open): for a thread that ends before the process does (a worker's
 * arena lives as long as the process, and needs no call). */
void gyre_json_arena_release(void);
/* How many outermost scopes have ended on this thread: a value parsed when it was g is dead once it is not g. */
uint64_t gyre_json_arena_generation(void);

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

/* A token count: a whole, non-negative number that fits, else 0 (a provider's or a client's nonsense must not
 * become undefined behaviour in a cast). */
long long gyre_json_count(const struct cJSON *v);

#endif
