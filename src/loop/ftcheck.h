/*
 * A validator of OpenAI's fine-tuning files (issue 14, point 6): the chat
 * format (supervised fine-tuning) and the preference format (DPO), written
 * from OpenAI's documented rules, so that a dataset gyre exports is known to
 * be accepted before anyone uploads it, and so that a file made elsewhere
 * can be checked the same way (`gyre datasets validate FILE`).
 *
 * Each error names the line (from 1) and the field: "3: messages[1].role:
 * 'bot' is not a role of the chat format (system, user, assistant, tool)".
 * ftcheck.c lists every rule and the documents it comes from.
 */
#ifndef GYRE_LOOP_FTCHECK_H
#define GYRE_LOOP_FTCHECK_H

#include <stddef.h>

#include "common/buf.h"

typedef enum gyre_ft_format {
    GYRE_FT_OPENAI = 0,   /* {"messages": [...], "tools": [...], "parallel_tool_calls": bool} */
    GYRE_FT_PREFERENCE,   /* {"input": {"messages", "tools", "parallel_tool_calls"}, "preferred_output": [msg],
                             "non_preferred_output": [msg]} */
} gyre_ft_format_t;

/* OpenAI's training-example context of gpt-4o and gpt-4o-mini (ftcheck.c cites it): the default token limit. */
#define GYRE_FTCHECK_MAX_TOKENS 65536
/* OpenAI's minimum number of examples in a training file. */
#define GYRE_FTCHECK_MIN_EXAMPLES 10
/* The longest line read: 8 MiB (loop/dataset.h writes none longer); a longer line is one error, not read. */
#define GYRE_FTCHECK_LINE_MAX ((size_t)8 << 20)
/* The errors kept in the report (the count goes on past it): enough to fix a file by, never a flood. */
#define GYRE_FTCHECK_REPORT_MAX 200

typedef struct gyre_ftcheck {
    gyre_ft_format_t format;
    size_t max_tokens;   /* per example, estimated (ftcheck.c says how) */
    size_t min_examples; /* per file */
    size_t lines;        /* lines read so far */
    size_t examples;     /* of them, examples without an error */
    size_t errors;       /* all errors, reported or not */
    size_t max_example_tokens, total_tokens; /* estimates over the valid examples */
    gyre_buf_t report;   /* "LINE: FIELD: message\n" per error, up to GYRE_FTCHECK_REPORT_MAX of them */
} gyre_ftcheck_t;

/* max_tokens 0: GYRE_FTCHECK_MAX_TOKENS; min_examples 0: GYRE_FTCHECK_MIN_EXAMPLES. */
void gyre_ftcheck_init(gyre_ftcheck_t *c, gyre_ft_format_t format, size_t max_tokens, size_t min_examples);
void gyre_ftcheck_dispose(gyre_ftcheck_t *c);

/* Checks the next line (`len` bytes without its '\n'): returns the number of errors it has (0: a valid example). */
int gyre_ftcheck_line(gyre_ftcheck_t *c, const char *line, size_t len);

/* The rules over the whole file (the number of examples); call after the last line.  Returns c->errors. */
size_t gyre_ftcheck_finish(gyre_ftcheck_t *c);

/* Reads a file line by line through gyre_ftcheck_line and finishes: c->errors, or -1 with err set when the
 * file cannot be read. */
long gyre_ftcheck_file(gyre_ftcheck_t *c, const char *path, char *err, size_t errlen);

/* The token estimate of one example's text (the rule ftcheck.c documents): exposed for its tests. */
size_t gyre_ftcheck_estimate_tokens(size_t text_bytes, size_t messages);

#endif
