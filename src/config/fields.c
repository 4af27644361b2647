/*
 * The table of every configuration field (see fields.h), and its two renderings.  A row per field, in the
 * order a reader meets them: the root, then each section under the root field that opens it.  To add a field:
 * add its row next to its section's others; tests/unit/config_fields.c fails, naming the row, until the table
 * and the parser agree, and until docs/config.md is regenerated (scripts/gen-config-doc.sh).
 */
#include "config/fields.h"

#include <string.h>

#define SECRET "secret: literal, env:NAME or file:PATH"

const gyre_config_field_t gyre_config_fields[] = {
    /* ---- the root ---- */
    {"listen", "HOST:PORT", "127.0.0.1:8080",
     "Where gyre listens. Off loopback, `auth:` is required (or `auth: none` on purpose)."},
    {"workers", "integer 1-256", "one per core", "Event-loop threads."},
    {"auth", "`none` or mapping", "open, loopback only",
     "Who may use the gateway. Without it gyre runs open, which only a loopback listener may."},
    {"auth.keys", "list of " SECRET, "",
     "Client keys (`Authorization: Bearer KEY` or `x-api-key: KEY`) for model calls and POST /v1/traces. A "
     "`file:` holds one key a line ('#' and blank lines skipped). Each key and token: 16 to 512 printable "
     "characters, all distinct."},
    {"auth.read_token", SECRET, "", "Reads /api/* and /metrics."},
    {"auth.admin_token", SECRET, "", "Everything the read token may, and the admin API."},
    {"direct", "bool", "true", "Clients may send `model: PROVIDER/MODEL` (each provider may override it)."},
    {"passthrough", "list of /v1/ paths", "/v1/completions, /v1/moderations, /v1/images, /v1/audio, /v1/responses",
     "/v1 path prefixes passed to an OpenAI-compatible provider as they are. Files, batches, fine_tuning, ... "
     "only when listed; admin and organization paths never."},
    {"store", "mapping", "no store, no traces",
     "The trace store: with it every call is stored with its bodies. The file must be writable (check-config "
     "checks)."},
    {"store.sqlite", "path", "./gyre.db", "The SQLite file of the store (the trace log lives beside it)."},
    {"store.dsn", "DSN", "", "The store as a DSN; `sqlite:PATH` is the same as `sqlite: PATH`. Give this or sqlite:."},
    {"store.traces", "bool", "true", "`false` stores no trace."},
    {"store.capture", "bool", "true", "`false`: calls without a route (provider/model, pass-through) keep no bodies."},
    {"store.log", "directory", "the sqlite path + .log", "The trace log's directory (the source of truth; the store is its index)."},
    {"store.fsync_ms", "integer 1-3600000", "20", "The trace log is fsynced this often: the bound on what a power cut loses."},
    {"store.retention", "duration (30d, 12h, 15m)", "30d", "Closed log segments older than this leave the log and the index; 0 keeps all."},
    {"store.max_bytes", "size (20GB, 64MB)", "20GB", "The trace log's disk bound; the oldest segments go first."},
    {"store.segment_bytes", "size", "64MB, or max_bytes / 8 when smaller", "One log segment's size."},
    {"datasets", "directory", "the store's sqlite path + .datasets",
     "Where curated datasets are written (`gyre curate`, POST /api/datasets), one folder per dataset id (docs/datasets.md)."},
    {"loops", "list of paths", "none",
     "Loop specs `gyre serve` runs on their `schedule:` (every N hours, or N new traces of the route); docs/loop.md."},
    {"state", "path", "the store's sqlite path + .state", "The control plane's SQLite file (managed keys, alerts, audit)."},
    {"master_key_file", "path", "GYRE_MASTER_KEY_FILE, else none",
     "The 32-byte master key that seals provider keys added through the admin API (or GYRE_MASTER_KEY); "
     "group- or world-readable files are refused."},
    {"prices", "path", "data/prices.json as built in", "A JSON price table (USD per 1M tokens) replacing the shipped one."},
    {"redact", "bool, or list of email, phone, card, api_key", "all four",
     "What is redacted from stored and exported traces, for calls without a route and as every route's default."},
    {"max_body_bytes", "integer 1024-1073741824", "8388608", "A larger request body gets 413."},
    {"max_response_bytes", "integer 1024-1073741824", "67108864",
     "A larger whole (non-streamed) answer from a provider gets 502; every provider's default."},
    {"shutdown_grace_ms", "integer 0-3600000", "10000", "On SIGTERM, how long requests in flight may take to finish."},
    {"max_header_bytes", "integer 1024-417792", "32768", "A longer request head (request line and headers) gets 431."},
    {"max_connections", "integer 1-1000000", "4096", "Client connections at once, all workers; more wait to be accepted."},
    {"linger_ms", "integer 0-600000", "30000",
     "After an early answer (413), how long gyre reads what the client still sends, so that it gets the answer."},
    {"linger_bytes", "integer 0-1099511627776", "67108864", "... and how much it reads at most."},
    {"access_log", "`off`, `stderr`, PATH, or mapping", "off",
     "One JSON line per request (docs/access-log.md). A path is opened for appending."},
    {"access_log.path", "`stderr` or PATH", "", "Where the lines go (required in the mapping form)."},
    {"access_log.buffer_bytes", "size", "1MB",
     "Each worker's buffer of lines not yet written; a line that does not fit is dropped and counted, never waited for."},
    {"access_log.flush_ms", "integer 1-60000", "1000", "A buffer is written at least this often (and whenever half full)."},
    {"clusters", "mapping", "defaults below",
     "Clusters of what the agents do: `gyre clusters`, GET /api/clusters, `cluster` on every trace "
     "(docs/clusters.md)."},
    {"clusters.k", "integer 0-256", "0", "How many clusters; 0 chooses k in 2-24 by the silhouette on a sample."},
    {"clusters.min_sessions", "integer 1-1000000", "5",
     "A cluster of fewer distinct sessions is shown only as an id and a count: never its name, terms or examples."},
    {"clusters.embeddings", "route name", "none: the local featuriser",
     "Vectors from this route's embeddings (not implemented yet: the local featuriser is used)."},
    {"clusters.naming", "route name", "none: distinctive terms",
     "Names from an LLM through this route (not implemented yet: clusters are named by distinctive terms)."},
    {"clusters.every", "duration", "0", "gyre serve re-clusters this often, on a thread of its own; 0 only on demand, else at least 1m."},
    {"clusters.window", "duration", "7d", "A clustering reads the traces of this long before now (at most 366d)."},
    {"clusters.seed", "integer 1-4294967295", "1", "The seed of sampling and k-means: the same traces and seed give the same clusters."},
    {"feedback", "mapping", "none", "Feedback on traces (docs/api.md, POST /v1/feedback): the metrics it may be given on."},
    {"feedback.metrics", "list of mappings", "none",
     "The metrics feedback may be given on (POST /v1/feedback, gyre feedback); feedback on any other is a 400."},
    {"feedback.metrics[].name", "name (at most 64)", "", "Required, unique: the metric's name in feedback and in scores."},
    {"feedback.metrics[].type", "boolean, number or category", "", "Required: what a value must be."},
    {"feedback.metrics[].min", "number", "none", "A number metric's lowest value (with max; both included)."},
    {"feedback.metrics[].max", "number", "none", "A number metric's highest value (with min)."},
    {"feedback.metrics[].categories", "list of strings (1-64)", "", "Required for a category metric: its values."},
    {"feedback.metrics[].optimize", "max or min", "max", "Whether higher (max) or lower (min) values are better."},
    {"notifiers", "list of mappings", "none", "Where alerts and budget warnings are sent (docs/notifiers.md)."},
    {"notifiers[].name", "name", "", "Required; what an alert's action or a budget's notify: names."},
    {"notifiers[].kind", "webhook, slack, teams, pagerduty or log", "",
     "Required. webhook: Alertmanager's webhook body (version 4); slack and teams: their incoming-webhook bodies; "
     "pagerduty: Events API v2; log: a log line."},
    {"notifiers[].url", "URL, or " SECRET, "",
     "Required but for log: where the body is posted (PagerDuty's: https://events.pagerduty.com/v2/enqueue)."},
    {"notifiers[].routing_key", SECRET, "", "pagerduty: the integration's routing key (required)."},
    {"notifiers[].timeout", "duration", "5s", "One POST, connecting included."},
    {"notifiers[].retries", "integer", "5", "Tries after the first, backing off from 1 s (doubling, capped at 60 s)."},
    {"notifiers[].digest", "duration", "none", "Notices within this interval go as one body."},
    {"notifiers[].headers", "mapping of name to " SECRET, "", "Headers sent with every POST (never logged)."},
    {"notifiers[].ca_file", "path", "the system store", "Extra trust anchors for https."},
    {"alerts", "list of mappings", "none", "Rules evaluated in-process every second (docs/alerts.md)."},
    {"alerts[].name", "name", "", "Required."},
    {"alerts[].condition", "SIGNAL OP VALUE[UNIT]", "",
     "Required, e.g. `p95_latency > 5000ms`, `error_rate > 5%`, `cost_per_hour > $20`."},
    {"alerts[].window", "duration", "1m", "The rolling window the signal is computed over."},
    {"alerts[].for", "duration", "0", "How long the condition must hold before the alert fires."},
    {"alerts[].resolve_for", "duration", "for, or 30s when for is 0", "How long it must be false before it resolves."},
    {"alerts[].min_firing", "duration", "1m", "The shortest a firing alert lasts (no paging twice a minute)."},
    {"alerts[].by", "list of route, provider, key, agent", "what its actions need", "One alert per label set."},
    {"alerts[].severity", "string", "warning", "Passed to the notifiers."},
    {"alerts[].action", "action name", "", "failover_to_secondary, rotate_key, open_circuit, log, or a notifier."},
    {"alerts[].actions", "list of action names", "", "Several actions, in order."},
    {"limits", "mapping", "none", "Limits and budgets per key, team, agent and user (docs/limits.md)."},
    {"limits.default", "mapping (a limit rule)", "none", "The rule of every key without its own; every rule (here and in keys, teams, agents, users) takes the fields below."},
    {"limits.keys", "mapping of key id to limit rule", "none", "Per gateway key (its id; \"*\": each key its own)."},
    {"limits.teams", "mapping of team to limit rule", "none", "Per team."},
    {"limits.agents", "mapping of agent to limit rule", "none", "Per agent."},
    {"limits.users", "mapping of user to limit rule", "none", "Per user (x-gyre-user or the body's user)."},
    {"limits.reservation_ttl", "duration 1s-24h", "15m", "An unsettled reservation is given back after this long."},
    {"limits.default_max_tokens", "integer", "4096", "The output estimate of a request without max_tokens."},
    {"limits.notify", "notifier name", "none", "Where budgets' 50/80/100 % notices go unless a rule says."},
    {"limits.default.rpm", "integer", "none", "Requests per minute."},
    {"limits.default.tpm", "integer", "none", "Tokens per minute: reserved from an estimate, settled from the usage."},
    {"limits.default.concurrency", "integer", "none", "Requests in flight."},
    {"limits.default.budget_usd", "number", "none", "Spend per period (reserved, then settled)."},
    {"limits.default.budget_period", "day, week or month", "month", "UTC calendar periods."},
    {"limits.default.soft", "bool", "false", "The budget only notifies at 50/80/100 %, never refuses."},
    {"limits.default.notify", "notifier name", "limits.notify", "Where this rule's budget notices go."},
    {"scorers", "list of mappings", "none", "Checks that grade calls: offline, online on a sample, in-line as guardrails (docs/guardrails.md)."},
    {"scorers[].name", "name", "", "Required; what guardrails and stored scores name."},
    {"scorers[].type", "json_valid, json_schema, regex, refusal, tool_args, length, latency, cost, toxicity or judge", "",
     "Required; the kind of check. Every other field belongs to some types only."},
    {"scorers[].version", "string", "1", "Stored with every score."},
    {"scorers[].sample", "number 0-1", "0", "Online: the share of matching calls scored after the answer (0: offline only)."},
    {"scorers[].routes", "list of route names", "every route", "Online: only these routes."},
    {"scorers[].agents", "list of agents", "every agent", "Online: only these agents."},
    {"scorers[].schema", "mapping, or JSON as a string", "", "json_schema (required): the JSON Schema the answer must match."},
    {"scorers[].must", "list of POSIX extended regexes", "none", "regex: every pattern must match (the first 64 KiB read)."},
    {"scorers[].must_not", "list of POSIX extended regexes", "none", "regex: no pattern may match (the first 64 KiB read)."},
    {"scorers[].terms", "list of strings", "none", "refusal, toxicity: whole words or phrases added to the built-in lexicon."},
    {"scorers[].min_chars", "integer", "0", "length: the fewest characters."},
    {"scorers[].max_chars", "integer", "none", "length: the most characters."},
    {"scorers[].max_latency", "duration", "", "latency (required): the slowest call that passes."},
    {"scorers[].max_cost", "number (USD)", "", "cost (required): the dearest call that passes."},
    {"scorers[].route", "route name", "", "judge (required): the route the judge's calls go through."},
    {"scorers[].rubric", "correctness, instruction_following, grounding, toxicity, tool_use or custom", "",
     "judge (required): the rubric template."},
    {"scorers[].prompt", "string", "", "judge, rubric custom (required): the template ({{task}}, {{answer}}, {{reference}}, {{context}})."},
    {"scorers[].concurrency", "integer 1-256", "4", "judge: calls at once."},
    {"scorers[].retries", "integer 0-10", "2", "judge: a malformed verdict is asked again this many times."},
    {"scorers[].timeout", "duration 1ms-1h", "60s", "judge: one judge call."},
    {"otlp", "mapping", "no export", "Spans exported to an OpenTelemetry collector over OTLP/HTTP JSON."},
    {"otlp.endpoint", "URL", "", "http(s)://host[:port]/path, e.g. http://127.0.0.1:4318/v1/traces (required)."},
    {"otlp.headers", "mapping of name to " SECRET, "", "Headers sent with every POST (never logged)."},
    {"otlp.timeout_ms", "integer 1-600000", "10000", "One POST, connect to answer."},
    {"otlp.batch_max", "integer 1-65536", "512", "Spans per POST."},
    {"otlp.interval_ms", "integer 1-3600000", "1000", "A batch that is not full is posted this long after its first span."},
    {"otlp.queue_max", "integer 1-16777216", "65536", "Spans waiting, all workers together; past it they are dropped and counted."},
    {"otlp.service_name", "string", "gyre", "The resource's service.name."},
    {"otlp.ca_file", "path", "the system store", "Extra trust anchors for an https endpoint."},
    /* ---- providers ---- */
    {"providers", "list of mappings", "none", "The upstream APIs gyre calls."},
    {"providers[].name", "name ([A-Za-z0-9._:-])", "", "Required; what routes and `model: NAME/MODEL` refer to."},
    {"providers[].kind", "openai, azure, anthropic, gemini or bedrock", "",
     "Required; the API it speaks (`openai`: OpenAI and every OpenAI-compatible API)."},
    {"providers[].base_url", "URL", "", "Required; e.g. https://api.openai.com/v1."},
    {"providers[].keys", "list of " SECRET ", or of {key, weight}", "none",
     "The provider's API keys; traces, logs and metrics name them by id (NAME#INDEX). Bedrock: "
     "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] or a Bedrock API key."},
    {"providers[].keys[].key", SECRET, "", "The key (in the {key, weight} form)."},
    {"providers[].keys[].weight", "integer 0-1000000", "1", "The key's share under key_strategy: weighted."},
    {"providers[].key_strategy", "round_robin or weighted", "round_robin", "How the keys share the traffic."},
    {"providers[].breaker", "`off` or mapping", "on, with the defaults below", "A circuit breaker per key, per worker."},
    {"providers[].breaker.failures", "integer 0-1000000", "5", "Consecutive failures that open it; 0 disables the breaker."},
    {"providers[].breaker.error_rate_pct", "integer 0-100", "50", "... or this error rate over the window."},
    {"providers[].breaker.min_requests", "integer 1-1000000", "20", "Calls in the window before the rate counts."},
    {"providers[].breaker.window_ms", "integer 10-3600000", "10000", "The rate's window."},
    {"providers[].breaker.cooldown_ms", "integer 1-3600000", "5000", "Open this long, then one probe is let through."},
    {"providers[].ca_file", "path", "the system store", "Extra trust anchors for https."},
    {"providers[].tls_verify", "bool", "true", "`false` skips certificate verification (tests only)."},
    {"providers[].timeout_ms", "integer 1-3600000", "120000",
     "Connect and idle-read limit upstream, and the whole answer's until gyre sends its first byte on."},
    {"providers[].max_response_bytes", "integer 1024-1073741824", "the root's", "A larger whole answer gets 502."},
    {"providers[].api_version", "string", "anthropic: 2023-06-01; azure: 2024-10-21",
     "anthropic: the anthropic-version header; azure: the api-version query parameter."},
    {"providers[].max_tokens", "integer 1-10000000", "4096",
     "anthropic and bedrock: the max_tokens sent when a request has none (their APIs require one)."},
    {"providers[].region", "string", "from the host name, else us-east-1", "bedrock: the SigV4 signing region."},
    {"providers[].prices", "mapping of model to prices", "none",
     "What this provider charges, before the shared table, for the calls it answered."},
    {"providers[].prices.*.input", "price (USD per 1M tokens)", "", "Required: prompt tokens."},
    {"providers[].prices.*.output", "price", "", "Required: completion tokens."},
    {"providers[].prices.*.cached_input", "price", "input's", "Cached prompt tokens."},
    {"providers[].prices.*.cache_write", "price", "input's", "Prompt tokens written to the provider's cache."},
    {"providers[].direct", "bool", "the root's direct", "Clients may address this provider as NAME/MODEL."},
    {"providers[].health_check", "`true` or mapping", "none (no probe)",
     "An active probe: GET base_url + path with the first key, every interval; /readyz counts a failing provider's "
     "targets unusable (routing is unchanged)."},
    {"providers[].health_check.interval", "duration 10ms-1h", "30s", "Time between probes."},
    {"providers[].health_check.timeout", "duration 10ms-1h", "5s", "One probe's whole limit (connect, send, answer)."},
    {"providers[].health_check.path", "string", "/models", "Appended to base_url (a '/'-led path)."},
    {"providers[].health_check.unhealthy_after", "integer 1-1000", "2",
     "Consecutive failed probes (non-2xx, timeout, connection error) that make it unhealthy; one success heals."},
    /* ---- routes ---- */
    {"routes", "list of mappings", "none", "What clients name as `model:`, and where it goes."},
    {"routes[].name", "name ([A-Za-z0-9._:-])", "", "Required; clients send `model: NAME`."},
    {"routes[].targets", "list of mappings", "", "Required; the pool the strategy chooses from."},
    {"routes[].targets[].provider", "provider name", "", "Required."},
    {"routes[].targets[].model", "model name", "", "Required; sent upstream as the model."},
    {"routes[].targets[].weight", "integer 0-1000000", "1", "The target's share under strategy: weighted."},
    {"routes[].fallbacks", "list of mappings", "none", "Tried in order once the pool is exhausted."},
    {"routes[].fallbacks[].provider", "provider name", "", "Required."},
    {"routes[].fallbacks[].model", "model name", "", "Required."},
    {"routes[].fallbacks[].weight", "integer 0-1000000", "1", "Accepted, unused (fallbacks go in order)."},
    {"routes[].strategy", "weighted, least_latency, least_inflight or cheapest", "weighted", "How a target is chosen."},
    {"routes[].fallback_on", "list of connect, timeout, 408, 409, 429, 5xx", "connect, timeout, 429, 500, 502, 503, 504, 529",
     "The failures that move a request on to the next target."},
    {"routes[].retries", "integer 0-10", "0", "Extra tries of one target before moving on."},
    {"routes[].backoff_ms", "integer 0-600000", "100", "The first retry's backoff ceiling (full jitter), doubling."},
    {"routes[].backoff_max_ms", "integer 0-600000", "5000", "The ceiling's ceiling."},
    {"routes[].attempt_timeout_ms", "integer 1-3600000", "none", "One attempt, until its answer is complete."},
    {"routes[].deadline_ms", "integer 1-3600000", "none", "Every attempt together."},
    {"routes[].first_byte_timeout_ms", "integer 1-3600000", "none", "A stream's first event."},
    {"routes[].midstream", "error or resume", "error", "`resume`: a stream cut mid-answer continues on another target."},
    {"routes[].affinity", "none or session", "none", "`session`: a session's calls stay on one target."},
    {"routes[].cache", "bool or mapping", "off", "Answers kept and served again for identical requests."},
    {"routes[].cache.enabled", "bool", "true in the mapping form", "Turns the cache on or off."},
    {"routes[].cache.ttl_ms", "integer 1-2592000000", "300000", "How long an answer is served again."},
    {"routes[].cache.max_bytes", "integer 4096-68719476736", "67108864", "The cache's memory bound per worker."},
    {"routes[].capture", "bool", "true", "The route's traces keep request and response bodies."},
    {"routes[].redact", "bool, or list of email, phone, card, api_key", "the root's redact", "What is redacted from this route's traces."},
    {"routes[].guardrails", "list of mappings", "none",
     "Heuristic scorers run in-line on this route's calls, in order (docs/guardrails.md)."},
    {"routes[].guardrails[].check", "scorer name", "", "Required; a heuristic scorer of `scorers:` (not a judge)."},
    {"routes[].guardrails[].on", "request or response", "response",
     "`request`: the last user message, before any attempt; `response`: the answer, before it is sent (a stream's at its end)."},
    {"routes[].guardrails[].action", "deny, retry or flag", "",
     "Required. deny: 400 (request) or 422 (answer) naming the check; retry: the next target is tried (answers only); "
     "flag: the trace is marked. A stream's check can only flag."},
};

const size_t gyre_config_nfields = sizeof(gyre_config_fields) / sizeof(gyre_config_fields[0]);

const char *gyre_config_field_section(const char *path, char *buf, size_t len)
{
    const char *dot = strrchr(path, '.');
    size_t n = dot != NULL ? (size_t)(dot - path) : 0;
    if (n >= len)
        n = len - 1;
    memcpy(buf, path, n);
    buf[n] = '\0';
    return buf;
}

/* Appends `text` wrapped at `width` columns, each line starting with `indent` spaces. */
static void append_wrapped(gyre_buf_t *out, const char *text, size_t indent, size_t width)
{
    size_t col = 0;
    for (const char *p = text; *p != '\0';) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == 0)
            break;
        if (col == 0) {
            gyre_buf_appendf(out, "%*s", (int)indent, "");
            col = indent;
        } else if (col + 1 + w > width) {
            gyre_buf_appendf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else {
            gyre_buf_appends(out, " ");
            col++;
        }
        gyre_buf_append(out, p, w);
        col += w;
        p += w;
    }
    gyre_buf_appends(out, "\n");
}

void gyre_config_fields_text(gyre_buf_t *out)
{
    for (size_t i = 0; i < gyre_config_nfields; i++) {
        const gyre_config_field_t *f = &gyre_config_fields[i];
        gyre_buf_appendf(out, "  %s  (%s%s%s)\n", f->path, f->type, f->def[0] != '\0' ? "; default: " : "", f->def);
        append_wrapped(out, f->description, 6, 100);
    }
}

/* A table cell: '|' escaped, so that no text can add a column. */
static void append_cell(gyre_buf_t *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            gyre_buf_appends(out, "\\|");
        else
            gyre_buf_append(out, s, 1);
    }
}

void gyre_config_fields_markdown(gyre_buf_t *out)
{
    /* A section's rows are together in the docs even where the table interleaves them (a sub-section's rows
     * follow the field that opens it): sections in the order they first appear, each with all its rows. */
    char sec[128], other[128];
    for (size_t i = 0; i < gyre_config_nfields; i++) {
        gyre_config_field_section(gyre_config_fields[i].path, sec, sizeof(sec));
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(gyre_config_field_section(gyre_config_fields[j].path, other, sizeof(other)), sec) == 0;
        if (seen)
            continue;
        if (i != 0)
            gyre_buf_appends(out, "\n");
        if (sec[0] == '\0')
            gyre_buf_appends(out, "### The root\n\n");
        else
            gyre_buf_appendf(out, "### `%s`\n\n", sec);
        gyre_buf_appends(out, "| field | type | default | meaning |\n| --- | --- | --- | --- |\n");
        for (size_t j = i; j < gyre_config_nfields; j++) {
            const gyre_config_field_t *f = &gyre_config_fields[j];
            if (strcmp(gyre_config_field_section(f->path, other, sizeof(other)), sec) != 0)
                continue;
            gyre_buf_appends(out, "| `");
            append_cell(out, f->path);
            gyre_buf_appends(out, "` | ");
            append_cell(out, f->type);
            gyre_buf_appends(out, " | ");
            append_cell(out, f->def[0] != '\0' ? f->def : "-");
            gyre_buf_appends(out, " | ");
            append_cell(out, f->description);
            gyre_buf_appends(out, " |\n");
        }
    }
}
