/* The loop spec (src/loop/loopspec.c): every section, the defaults, and exact errors. */
#include <string.h>

#include "loop/loopspec.h"
#include "test.h"

static gyre_loop_spec_t *parse(const char *yaml, char *err, size_t errlen)
{
    return gyre_loop_spec_parse(yaml, strlen(yaml), "/etc/gyre/loop.yaml", err, errlen);
}

static void check_error(const char *yaml, const char *want, int line)
{
    char err[512] = "";
    gyre_loop_spec_t *s = parse(yaml, err, sizeof(err));
    if (s != NULL || strcmp(err, want) != 0) {
        fprintf(stderr, "  line %d: got \"%s\", expected \"%s\"\n", line, s ? "(parsed)" : err, want);
        gyre_test_failures++;
    }
    gyre_loop_spec_free(s);
}
#define CHECK_ERROR(yaml, want) check_error(yaml, want, __LINE__)

TEST(loop_spec_reads_every_section)
{
    char err[512] = "";
    gyre_loop_spec_t *s = parse("name: support-v2\n"
                                "route: support\n"
                                "curate: specs/curate.yaml\n"
                                "train:\n"
                                "  backend: together\n"
                                "  provider: together\n"
                                "  base_model: meta-llama/Llama-3.1-8B-Instruct\n"
                                "  method: dpo\n"
                                "  training_type: full\n"
                                "  epochs: 3\n"
                                "  learning_rate: 1e-5\n"
                                "  batch_size: 8\n"
                                "  lora_rank: 16\n"
                                "  suffix: support-v2\n"
                                "  timeout: 6h\n"
                                "  poll: 500ms\n"
                                "serve: {provider: vllm, adapter: vllm, name: support-v2}\n"
                                "gate:\n"
                                "  scorers: [correctness, no_refusal]\n"
                                "  rules:\n"
                                "    - {metric: correctness, max_drop: 0.01}\n"
                                "    - {metric: cost, max_increase: 0.1}\n"
                                "    - {cluster_max_drop: 0.05}\n"
                                "  confidence: 0.9\n"
                                "  resamples: 500\n"
                                "  limit: 40\n"
                                "  concurrency: 2\n"
                                "  seed: 7\n"
                                "deploy:\n"
                                "  ramp: [10, 50, 100]\n"
                                "  min_requests: 20\n"
                                "  step_time: 2s\n"
                                "  metrics: [no_refusal]\n"
                                "  max_drop: 0.05\n"
                                "  alpha: 0.1\n"
                                "  rollback_on_alert: false\n"
                                "watch: {window: 30s}\n"
                                "schedule: {every: 24h, new_traces: 1000}\n",
                                err, sizeof(err));
    CHECK_STR(err, "");
    CHECK(s != NULL);
    CHECK_STR(s->name, "support-v2");
    CHECK_STR(s->route, "support");
    CHECK_STR(s->curate_path, "/etc/gyre/specs/curate.yaml");
    CHECK(s->dataset == NULL);
    CHECK_STR(s->train.backend, "together");
    CHECK_STR(s->train.provider, "together");
    CHECK_STR(s->train.base_model, "meta-llama/Llama-3.1-8B-Instruct");
    CHECK_STR(s->train.method, "dpo");
    CHECK_STR(s->train.training_type, "full");
    CHECK_INT(s->train.epochs, 3);
    CHECK(s->train.learning_rate == 1e-5);
    CHECK_INT(s->train.batch_size, 8);
    CHECK_INT(s->train.lora_rank, 16);
    CHECK_STR(s->train.suffix, "support-v2");
    CHECK_INT(s->train.timeout_ms, 6 * 3600 * 1000);
    CHECK_INT(s->train.poll_ms, 500);
    CHECK_STR(s->serve.provider, "vllm");
    CHECK_INT(s->serve.adapter, GYRE_ADAPTER_VLLM);
    CHECK_STR(s->serve.name, "support-v2");
    CHECK_INT(s->gate.nscorers, 2);
    CHECK_STR(s->gate.scorers[1], "no_refusal");
    CHECK_INT(s->gate.nrules, 3);
    CHECK_INT(s->gate.rules[0].kind, GYRE_GATE_SCORER);
    CHECK_STR(s->gate.rules[0].scorer, "correctness");
    CHECK(s->gate.rules[0].max_drop == 0.01);
    CHECK_INT(s->gate.rules[1].kind, GYRE_GATE_COST);
    CHECK(s->gate.rules[1].max_increase == 0.1);
    CHECK_INT(s->gate.rules[2].kind, GYRE_GATE_CLUSTER);
    CHECK(s->gate.rules[2].max_drop == 0.05);
    CHECK_INT(s->gate.rules[2].line, 23);
    CHECK(s->gate.confidence == 0.9);
    CHECK_INT(s->gate.resamples, 500);
    CHECK_INT(s->gate.limit, 40);
    CHECK_INT(s->gate.concurrency, 2);
    CHECK_INT(s->gate.seed, 7);
    CHECK_INT(s->deploy.nramp, 3);
    CHECK_INT(s->deploy.ramp[0], 10);
    CHECK_INT(s->deploy.ramp[2], 100);
    CHECK_INT(s->deploy.min_requests, 20);
    CHECK_INT(s->deploy.step_time_ms, 2000);
    CHECK_INT(s->deploy.nmetrics, 1);
    CHECK(s->deploy.max_drop == 0.05);
    CHECK(s->deploy.alpha == 0.1);
    CHECK_INT(s->deploy.rollback_on_alert, 0);
    CHECK_INT(s->watch_window_ms, 30000);
    CHECK_INT(s->every_ms, 24 * 3600 * 1000);
    CHECK_INT(s->new_traces, 1000);
    gyre_loop_spec_free(s);
}

TEST(loop_spec_fills_the_defaults)
{
    char err[512] = "";
    gyre_loop_spec_t *s = parse("route: support\ndataset: 3f0c\ntrain: {backend: command, command: \"true\"}\n", err,
                                sizeof(err));
    CHECK_STR(err, "");
    CHECK(s != NULL);
    CHECK_STR(s->name, "support");
    CHECK_STR(s->dataset, "3f0c");
    CHECK_STR(s->train.method, "sft");
    CHECK_STR(s->train.training_type, "lora");
    CHECK_INT(s->train.timeout_ms, 24 * 3600 * 1000);
    CHECK_INT(s->train.poll_ms, 10000);
    CHECK(s->serve.provider == NULL);
    CHECK_INT(s->serve.adapter, GYRE_ADAPTER_NONE);
    CHECK(s->gate.confidence == 0.95);
    CHECK_INT(s->gate.resamples, 2000);
    CHECK_INT(s->gate.limit, 500);
    CHECK_INT(s->gate.concurrency, 4);
    CHECK_INT(s->gate.seed, 1);
    CHECK_INT(s->deploy.nramp, 3);
    CHECK_INT(s->deploy.ramp[0], 5);
    CHECK_INT(s->deploy.ramp[1], 25);
    CHECK_INT(s->deploy.ramp[2], 100);
    CHECK_INT(s->deploy.min_requests, 50);
    CHECK_INT(s->deploy.step_time_ms, 600000);
    CHECK(s->deploy.max_drop == 0.02);
    CHECK(s->deploy.alpha == 0.05);
    CHECK_INT(s->deploy.rollback_on_alert, 1);
    CHECK_INT(s->watch_window_ms, 3600000);
    CHECK_INT(s->every_ms, 0);
    gyre_loop_spec_free(s);
}

TEST(loop_spec_errors_name_the_file_line_and_field)
{
    CHECK_ERROR("", "/etc/gyre/loop.yaml:0: (top level): the spec is empty: it needs at least `route`, `curate` or "
                    "`dataset`, and `train`");
    CHECK_ERROR("route: a\ndataset: x\n", "/etc/gyre/loop.yaml:1: train: missing: how the candidate is trained");
    CHECK_ERROR("dataset: x\ntrain: {backend: command, command: x}\n",
                "/etc/gyre/loop.yaml:1: route: missing: the route whose model the loop improves");
    CHECK_ERROR("route: a\ncurate: c.yaml\ndataset: x\ntrain: {backend: command, command: x}\n",
                "/etc/gyre/loop.yaml:1: dataset: give exactly one of `curate:` (a curation spec) and `dataset:` (a "
                "dataset's id)");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: tinker}\n",
                "/etc/gyre/loop.yaml:3: train.backend: unknown value 'tinker' (known: openai, together, command)");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: openai, provider: openai}\n",
                "/etc/gyre/loop.yaml:3: train.base_model: missing: the openai backend needs the provider that "
                "trains and the base model");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: command}\n",
                "/etc/gyre/loop.yaml:3: train.command: missing: the command backend runs it");
    CHECK_ERROR("route: \"a b\"\n",
                "/etc/gyre/loop.yaml:1: route: 'a b' is not a name (letters, digits, '-', '_', '.', '/', ':'; 1 to "
                "200)");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: command, command: x}\ndeploy: {ramp: [5, 5, 100]}\n",
                "/etc/gyre/loop.yaml:4: deploy.ramp: steps must increase (5 after 5)");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: command, command: x}\ndeploy: {ramp: [5, 50]}\n",
                "/etc/gyre/loop.yaml:4: deploy.ramp: the last step must be 100");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: command, command: x}\ndeploy: {step_time: soon}\n",
                "/etc/gyre/loop.yaml:4: deploy.step_time: expected a duration (500ms, 90s, 15m, 24h, 7d), found "
                "'soon'");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: command, command: x}\ngate: {rules: [{metric: cost, "
                "max_drop: 0.1}]}\n",
                "/etc/gyre/loop.yaml:4: gate.rules[].max_drop: cost, latency_p95 and error_rate take max_increase");
    CHECK_ERROR("route: a\ndataset: x\ntrain: {backend: command, command: x}\ngate: {scorers: [j], rules: [{metric: "
                "k, max_drop: 0.1}]}\n",
                "/etc/gyre/loop.yaml:4: gate.rules[].metric: 'k' is not one of gate.scorers");
    CHECK_ERROR("route: a\nroutes: b\n", "/etc/gyre/loop.yaml:2: (top level): unknown field 'routes' (known: name, "
                                         "route, curate, dataset, train, serve, gate, deploy, watch, schedule)");
}
