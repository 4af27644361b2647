/*
 * The curation spec (issue 14, point 5): a YAML file that says which
 * stored traces become a dataset and how.  Every field is optional:
 *
 *   source:
 *     since: 7d                 # or a time: 2026-12-01T00:00:00Z (also `from:`); a duration is before now
 *     until: 2026-12-07T00:00:00Z   # (also `to:`); a duration is before now
 *     routes: [support, billing]
 *     agents: [triage]
 *     tags: [prod]              # every one of them
 *     metadata: {env: prod}     # every key=value
 *     clusters: [3, 7]          # only these clusters (of the clustering in use, below)
 *   clusters: auto              # auto: cluster in-process (default); stored: the newest stored run; or {k: 12}
 *   unit: trace                 # trace (default) | session: a session's last call, as one multi-turn example
 *   filter: "judge.correctness >= 0.8 and heuristic.refusal"   # predicate.h
 *   corrections: true           # or {use: true}: a feedback correction replaces the answer (default false)
 *   dedup: {threshold: 0.8, on: task, keep: judge.correctness}  # or `dedup: off`; on: task | task+answer
 *   selection: all              # all | {longest_n: N} | {judge: PREDICATE}
 *   balance: {cap: 500, floor: 20}
 *   target_size: 5000
 *   preference: {score: judge.correctness, margin: 0.3}   # pairs from score contrasts
 *   redaction: [email, phone]   # the redact kinds applied at export; default all; `none` for none
 *   heldout: 0.1                # or {fraction: 0.1}
 *   seed: 42
 *   formats: [openai, preference]
 *
 * Errors are "FILE:LINE: FIELD: message" (the first one found), and an
 * unknown field is an error, as in the config.  A spec file is at most
 * GYRE_CURATE_SPEC_MAX_BYTES (a bound on the parser's work).
 *
 * The canonical text (`canonical`) is the spec resolved (relative times
 * made absolute, defaults filled, predicates in canonical form) as compact
 * JSON with a fixed key order: two files that mean the same give the same
 * bytes, which is what a dataset's manifest and content id are made of.
 */
#ifndef GYRE_LOOP_SPEC_H
#define GYRE_LOOP_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "loop/predicate.h"

#define GYRE_CURATE_SPEC_MAX_BYTES (256 * 1024)

typedef enum gyre_curate_unit {
    GYRE_CURATE_UNIT_TRACE = 0,
    GYRE_CURATE_UNIT_SESSION = 1, /* one example per session: its last call, which holds the whole conversation */
} gyre_curate_unit_t;

typedef enum gyre_curate_clusters {
    GYRE_CURATE_CLUSTERS_AUTO = 0,   /* the clusterer runs in-process over the source (src/loop/cluster.h) */
    GYRE_CURATE_CLUSTERS_STORED = 1, /* the newest stored clustering run (gyre_example_t.cluster) */
} gyre_curate_clusters_t;

typedef enum gyre_curate_selection {
    GYRE_CURATE_SELECT_ALL = 0,       /* every example, in a seeded random order */
    GYRE_CURATE_SELECT_LONGEST_N = 1, /* the longest first, at most longest_n */
    GYRE_CURATE_SELECT_JUDGE = 2,     /* only the examples `judge` holds for, in a seeded random order */
} gyre_curate_selection_t;

typedef enum gyre_curate_dedup_on {
    GYRE_CURATE_DEDUP_TASK = 0,        /* the task text: the conversation up to the answer */
    GYRE_CURATE_DEDUP_TASK_ANSWER = 1, /* the task and the answer */
} gyre_curate_dedup_on_t;

/* What `formats:` names, as bits. */
#define GYRE_CURATE_FORMAT_OPENAI 0x1u     /* chat fine-tuning JSONL (the SFT examples) */
#define GYRE_CURATE_FORMAT_PREFERENCE 0x2u /* preference JSONL (the pairs) */

typedef struct gyre_curate_kv {
    char *key, *value;
} gyre_curate_kv_t;

/* A spec, parsed and resolved.  Owned by its parser's caller; free with gyre_curate_spec_free. */
typedef struct gyre_curate_spec {
    /* source */
    int64_t from_us, to_us; /* started_us in [from, to); 0: open */
    char **routes, **agents, **tags;
    size_t nroutes, nagents, ntags;
    gyre_curate_kv_t *metadata;
    size_t nmetadata;
    int32_t *clusters; /* only these clusters (NULL: any) */
    size_t nclusters;

    gyre_curate_clusters_t clustering;
    unsigned k; /* auto clustering's k (0: chosen by the clusterer) */
    gyre_curate_unit_t unit;

    gyre_predicate_t *filter; /* NULL: every example passes */
    int use_corrections;      /* a correction replaces the answer; a corrected example passes the filter */

    int dedup;              /* 0: off */
    double dedup_threshold; /* Jaccard in (0, 1]; default 0.8 */
    gyre_curate_dedup_on_t dedup_on;
    char *dedup_keep; /* the score a group keeps its best by (predicate.h names); NULL: the default order */
    gyre_predicate_t *dedup_keep_ref; /* the same, compiled (a one-name predicate) */

    gyre_curate_selection_t selection;
    uint64_t longest_n;
    gyre_predicate_t *judge; /* selection: judge */

    uint64_t cap, floor;  /* balance per cluster: at most cap, at least min(floor, what it has); 0: none */
    uint64_t target_size; /* SFT examples in all (0: every one selected) */

    char *contrast_score;           /* preference pairs from score contrasts: this score (NULL: none) */
    gyre_predicate_t *contrast_ref; /* the same, compiled (a one-name predicate) */
    double contrast_margin;         /* default 0.2 */

    unsigned redaction; /* GYRE_REDACT_* bits applied at export (config/redact_kinds.h); default all */
    double heldout;     /* the share of examples held out, in [0, 1) */
    uint64_t seed;      /* default 1 */
    unsigned formats;   /* GYRE_CURATE_FORMAT_*; default openai */

    char *canonical; /* the canonical text (NUL-terminated compact JSON) */
    size_t canonical_len;
} gyre_curate_spec_t;

/*
 * Parses a spec from yaml[0..len); `source` names it in errors (a file's
 * path); relative times are resolved against now_us.  NULL with err
 * ("FILE:LINE: FIELD: message") when it is wrong.
 */
gyre_curate_spec_t *gyre_curate_spec_parse(const char *yaml, size_t len, const char *source, int64_t now_us, char *err,
                                           size_t errlen);
/* The same from a file (at most GYRE_CURATE_SPEC_MAX_BYTES). */
gyre_curate_spec_t *gyre_curate_spec_load(const char *path, int64_t now_us, char *err, size_t errlen);
void gyre_curate_spec_free(gyre_curate_spec_t *spec);

#endif
