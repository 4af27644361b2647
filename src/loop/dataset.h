/*
 * Datasets (issue 14, point 6): what a curation selected, written as files a
 * fine-tune reads, immutable and named by their content.
 *
 * A dataset is a folder datasets_dir/<id>/ holding
 *
 *   train.jsonl       OpenAI's chat fine-tuning JSONL: one {"messages": [...], "tools": [...]} per line
 *   heldout.jsonl     the held-out split, the same format
 *   preference.jsonl  OpenAI's preference (DPO) JSONL: {"input": {"messages", "tools"}, "preferred_output": [..],
 *                     "non_preferred_output": [..]}
 *   manifest.json     the id, when it was made, the spec's canonical text, counts per split and cluster, score
 *                     distributions, the provenance (the trace behind every line, the scorers and their
 *                     versions) and the formats' versions
 *
 * The id is BLAKE2b-256 (libsodium's crypto_generichash) over, in this
 * order, each data file's name, its length (8 bytes, little-endian) and its
 * own BLAKE2b-256, then the manifest without its `id` and `created` members;
 * the id is the first 16 bytes of that digest in lowercase hex (32 digits,
 * the same length as a trace id).  Nothing of the time or the machine enters
 * it, so the same curation over the same store gives the same bytes and the
 * same id, and a dataset that is there already is not written again.
 *
 * Writing is all or nothing: the files go to a temporary folder under
 * datasets_dir (".tmp-<pid>-<random>"), are synced, and the folder is renamed
 * to its id; a reader never sees half a dataset, and a crash leaves only a
 * ".tmp-" folder that the next write removes when it is over an hour old.
 *
 * Lines are written as they are added (a dataset of 100k examples is never
 * held in memory); only the provenance (one small record per line) is kept
 * until the manifest is written.
 */
#ifndef GYRE_LOOP_DATASET_H
#define GYRE_LOOP_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"
#include "loop/corpus.h"

/* The versions of what the files hold: bumped when a line's shape changes (they enter the manifest, so the id). */
#define GYRE_DATASET_FORMAT 1
#define GYRE_DATASET_SFT_FORMAT "openai-chat-jsonl/1"
#define GYRE_DATASET_PREFERENCE_FORMAT "openai-preference-jsonl/1"

/* The longest line a dataset holds: 8 MiB (the validator's bound too, loop/ftcheck.h).  An example whose line
 * would be longer is left out and counted (`skipped` in the manifest), never cut. */
#define GYRE_DATASET_LINE_MAX ((size_t)8 << 20)
/* The most examples one dataset holds (all files together): 10M, so that the provenance kept in memory stays
 * under about 1 GiB. */
#define GYRE_DATASET_EXAMPLES_MAX 10000000u

typedef enum gyre_dataset_split {
    GYRE_DATASET_TRAIN = 0,
    GYRE_DATASET_HELDOUT = 1,
} gyre_dataset_split_t;

/* The files, in the order the id reads them. */
#define GYRE_DATASET_NFILES 3
extern const char *const gyre_dataset_files[GYRE_DATASET_NFILES]; /* train.jsonl, heldout.jsonl, preference.jsonl */

/* ---- One line (pure functions: no files). ---- */

/*
 * The SFT line of one example: its request's messages and then its answer (or, when `correction` is not NULL,
 * an assistant message whose content is the correction: a demonstration replaces what the model said), with
 * `tools` at the top level when the request had tools.  Messages are written in a fixed shape (role, content,
 * name, tool_calls, tool_call_id: nothing else of the request's), text parts joined into one string, so
 * that the line passes OpenAI's format whatever the client sent.  `redact` (GYRE_REDACT_* bits) replaces
 * personal data in the whole line.  Appends the line and its '\n' to `out`: 0, or -EINVAL (err says why:
 * messages that are not an array, no answer) or -E2BIG (longer than GYRE_DATASET_LINE_MAX).
 */
int gyre_dataset_sft_line(const gyre_example_t *ex, const char *correction, unsigned redact, gyre_buf_t *out,
                          char *err, size_t errlen);

/*
 * The preference line: `ex`'s request as `input` and two assistant messages, each given as a JSON object
 * (corpus.h's answer shape) or, for `preferred_text`, as plain text (a correction).  Exactly one of
 * preferred_json and preferred_text is not NULL.  The same shape and errors as gyre_dataset_sft_line; OpenAI's
 * DPO takes text outputs only, so an output without text content is -EINVAL.
 */
int gyre_dataset_preference_line(const gyre_example_t *ex, const char *preferred_json, const char *preferred_text,
                                 const char *non_preferred_json, unsigned redact, gyre_buf_t *out, char *err,
                                 size_t errlen);

/* ---- Writing a dataset. ---- */

typedef struct gyre_dataset_writer gyre_dataset_writer_t;

/*
 * Begins a dataset under `dir` (made when missing, mode 0700: datasets hold what users said): opens the
 * temporary folder and its files.  `spec_text` is the spec's canonical text (copied), `redact` the spec's
 * redaction.  0 with *out set, or a negative errno with err naming the path.
 */
int gyre_dataset_begin(const char *dir, const char *spec_text, unsigned redact, gyre_dataset_writer_t **out,
                       char *err, size_t errlen);

/* Adds an SFT example to `split`; `correction` as in gyre_dataset_sft_line.  0; 1 when the example was left
 * out (no answer, a line over the bound, a line OpenAI's format refuses by loop/ftcheck.h's rules, such as a
 * tool message answering no call: counted in the manifest's `skipped`, err says why); a negative errno when the files
 * could not be written (the writer is then only good for gyre_dataset_abort). */
int gyre_dataset_add_sft(gyre_dataset_writer_t *w, gyre_dataset_split_t split, const gyre_example_t *ex,
                         const char *correction, char *err, size_t errlen);

/* Adds a preference pair with `ex`'s request as its input.  With a `correction`: preferred, the correction;
 * non-preferred, ex's answer.  Without (a score contrast): preferred, ex's answer; non-preferred,
 * `rejected_answer_json`, the answer of trace `rejected_id` to the same task (recorded in the manifest).
 * Returns as gyre_dataset_add_sft. */
int gyre_dataset_add_pair(gyre_dataset_writer_t *w, const gyre_example_t *ex, const char *correction,
                          const char *rejected_answer_json, const char *rejected_id, char *err, size_t errlen);

/* Optional: a JSON value the curation adds to the manifest under "curation" (dedup groups, phase counts...:
 * it enters the id, so it must not hold times).  Copied. */
void gyre_dataset_set_curation(gyre_dataset_writer_t *w, const char *json);

typedef struct gyre_dataset_result {
    char id[33];
    int existed;                         /* 1: a dataset with this id was there already; nothing was written */
    size_t lines[GYRE_DATASET_NFILES];   /* per file */
    size_t skipped;
    char path[4096];                     /* the dataset's folder */
} gyre_dataset_result_t;

/* Finishes the files, writes the manifest, names the dataset and renames it into place; frees the writer
 * whatever happens.  0 with *res filled, or a negative errno (err says what failed; nothing is left behind). */
int gyre_dataset_commit(gyre_dataset_writer_t *w, int64_t created_us, gyre_dataset_result_t *res, char *err,
                        size_t errlen);

/* Drops the dataset being written: its temporary folder is removed. */
void gyre_dataset_abort(gyre_dataset_writer_t *w);

/* ---- Reading datasets. ---- */

/* Where datasets are kept: `datasets:` or "<store sqlite path>.datasets"; NULL when neither is configured. */
const char *gyre_dataset_dir(const gyre_config_t *c, char *buf, size_t len);

/* Whether `id` is a dataset id's shape (32 lowercase hex digits): ids from the outside are checked with it
 * before they name a path. */
int gyre_dataset_id_valid(const char *id, size_t len);

/* The datasets in `dir` as a JSON object {"datasets": [{id, created, counts}, ...]}, newest first, appended to
 * out (bounded by out's maximum: -E2BIG).  A missing dir is an empty list.  0 or a negative errno. */
int gyre_dataset_list_json(const char *dir, gyre_buf_t *out, char *err, size_t errlen);

/* Appends the dataset's manifest.json (or the named file of gyre_dataset_files) to out: 0, -ENOENT (no such
 * dataset or file), -E2BIG (larger than out's maximum), or another negative errno. */
int gyre_dataset_read_file(const char *dir, const char *id, const char *file, gyre_buf_t *out, char *err,
                           size_t errlen);

#endif
