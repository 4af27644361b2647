/*
 * Subcommands of the gyre tool, one file each (git's builtin/ layout).
 * Each takes the arguments after its name and returns the exit status:
 * 0 done, 1 the work failed (a missing store, a trace not found), 2 the
 * command line was wrong.
 *
 * The gyre_cli_* helpers below are what the trace-reading commands
 * (traces.c, stats.c) share: opening the store the way `gyre serve` names
 * it, reading times and durations, and printing aligned tables.  They are
 * defined in traces.c.
 */
#ifndef GYRE_CLI_H
#define GYRE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "store/store.h"

/*
 * The HTTP/1.0 client of the commands that talk to a running gyre
 * (src/cli/http.c).  Every failure is said on stderr, prefixed with `cmd`.
 */
typedef struct gyre_cli_target {
    const char *cmd; /* "gyre providers": the prefix of every message */
    char host[256];
    char port[8];
    char *token; /* NULL: no Authorization */
    int timeout_ms;
} gyre_cli_target_t;

/* A secret from env:NAME or file:PATH (its last newlines dropped); NULL after saying why, naming `what`. */
char *gyre_cli_read_secret(const char *cmd, const char *what, const char *spec);
/* "http://HOST[:PORT][/...]" into t's host and port; 0, or -1. */
int gyre_cli_parse_url(const char *url, gyre_cli_target_t *t);
/* One request (body NULL: none, else JSON); 0 with *status and the answer's body appended to `answer` (read up
 * to answer_max bytes), or -1 after saying why. */
int gyre_cli_http(const gyre_cli_target_t *t, const char *method, const char *path, const char *body,
                  size_t answer_max, int *status, gyre_buf_t *answer);

int gyre_cmd_serve(int argc, char **argv);
int gyre_cmd_check_config(int argc, char **argv);
int gyre_cmd_traces(int argc, char **argv);
int gyre_cmd_sessions(int argc, char **argv);
int gyre_cmd_stats(int argc, char **argv);
int gyre_cmd_store(int argc, char **argv);
int gyre_cmd_audit(int argc, char **argv);
int gyre_cmd_providers(int argc, char **argv);
int gyre_cmd_keys(int argc, char **argv);
int gyre_cmd_alerts(int argc, char **argv);
int gyre_cmd_score(int argc, char **argv);
int gyre_cmd_clusters(int argc, char **argv);
int gyre_cmd_feedback(int argc, char **argv);
int gyre_cmd_datasets(int argc, char **argv);
int gyre_cmd_curate(int argc, char **argv);
int gyre_cmd_gate(int argc, char **argv);
int gyre_cmd_train(int argc, char **argv);
int gyre_cmd_deploy(int argc, char **argv);

extern const char gyre_serve_usage[];
extern const char gyre_check_config_usage[];
extern const char gyre_traces_usage[];
extern const char gyre_sessions_usage[];
extern const char gyre_stats_usage[];
extern const char gyre_store_usage[];
extern const char gyre_audit_usage[];
extern const char gyre_providers_usage[];
extern const char gyre_keys_usage[];
extern const char gyre_alerts_usage[];
extern const char gyre_score_usage[];
extern const char gyre_clusters_usage[];
extern const char gyre_feedback_usage[];
extern const char gyre_datasets_usage[];
extern const char gyre_curate_usage[];
extern const char gyre_gate_usage[];
extern const char gyre_train_usage[];
extern const char gyre_deploy_usage[];

/* ---- Shared by the trace-reading commands (defined in traces.c). ---- */

/*
 * Reads the option at argv[*i] when it is `name` ("--route VALUE" or
 * "--route=VALUE"): returns 1 with *value set and *i moved past what it
 * used; 0 when argv[*i] is another option; -1 after printing
 * "<cmd>: <name> needs a value" when the value is missing.
 */
int gyre_cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **value);

/*
 * Opens the trace store: the file `db_path` when given, else the
 * configuration's `store: {sqlite: PATH}` (`config_path` read as `gyre
 * serve --config` reads it, or the embedded default when NULL: ./gyre.db).
 * A file that does not exist is an error, never created.  Returns 0 with
 * *out set (close it with gyre_store_close), or 1 after printing why
 * on stderr, prefixed with `cmd`.
 */
int gyre_cli_store_open(const char *cmd, const char *config_path, const char *db_path, gyre_store_t **out);

/*
 * Whether the configured trace store can be opened and written (a
 * store that cannot is an error at start-up and in check-config, never a
 * silent empty store), asked without creating anything.  0 when it can or
 * when nothing is stored; -1 with `msg` set to "FILE:LINE: FIELD: why",
 * naming the path and the OS's reason.
 */
struct gyre_config;
int gyre_cli_check_store(const struct gyre_config *c, char *msg, size_t len);

/* A duration such as "90s", "15m", "1h", "1h30m", "24h", "7d", "2w" in microseconds (> 0).  0, or -1. */
int gyre_cli_parse_duration(const char *s, int64_t *us);
/* A time as unix seconds ("1764583200") or RFC 3339 ("2026-12-01T10:00:00Z") in unix microseconds.  0, or -1. */
int gyre_cli_parse_time(const char *s, int64_t *us);
int64_t gyre_cli_now_us(void);
/* "2026-12-01 10:00:00" (UTC) of unix microseconds, into buf (at least 20 bytes). */
void gyre_cli_format_time(int64_t us, char *buf, size_t len);

/*
 * A text table: columns with a header and an alignment, rows of cells
 * (copied).  Printing pads every column to its widest cell, two spaces
 * apart, no trailing spaces; when the table is wider than `max_width` (0:
 * no limit) the left-aligned columns that `shrink` marks are cut, widest
 * first, and their cut cells end in "~".  Widths count UTF-8 code points.
 * A cell's tabs and newlines print as spaces and its other control bytes
 * as '?', so that no value can break the columns or drive the terminal.
 */
typedef struct gyre_cli_table {
    size_t ncols;
    const char *const *headers;
    const char *align;  /* 'l' or 'r' per column */
    const char *shrink; /* per column: 1 when the column may be cut to fit */
    char **cells;       /* nrows * ncols, owned */
    size_t nrows, cap;
} gyre_cli_table_t;

void gyre_cli_table_init(gyre_cli_table_t *t, size_t ncols, const char *const *headers, const char *align,
                         const char *shrink);
void gyre_cli_table_add(gyre_cli_table_t *t, const char *const *cells);
void gyre_cli_table_print(const gyre_cli_table_t *t, FILE *out, size_t max_width);
void gyre_cli_table_dispose(gyre_cli_table_t *t);

/* The widest table the commands print: what a 120-column terminal shows without wrapping. */
#define GYRE_CLI_WIDTH 120

#endif
