/* Datasets (src/loop/dataset.h): the exact lines of each kind of example, and the versioned, content-named writer. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "loop/dataset.h"
#include "loop/ftcheck.h"
#include "trace/redact.h"
#include "test.h"

static const char SINGLE_MSGS[] = "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                  "{\"role\":\"user\",\"content\":\"Capital of France?\"}]";
static const char SINGLE_ANSWER[] = "{\"role\":\"assistant\",\"content\":\"Paris.\"}";

static const char TOOL_MSGS[] =
    "[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp_c\\\":3}\"}]";
static const char TOOL_TOOLS[] = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
                                 "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
static const char TOOL_ANSWER[] = "{\"role\":\"assistant\",\"content\":\"It is 3 \xc2\xb0" "C in Oslo.\"}";

static gyre_example_t example(const char *trace_id, const char *session, const char *msgs, const char *tools,
                              const char *answer)
{
    gyre_example_t ex;
    memset(&ex, 0, sizeof(ex));
    snprintf(ex.trace_id, sizeof(ex.trace_id), "%s", trace_id);
    ex.session = session;
    ex.messages_json = msgs;
    ex.tools_json = tools;
    ex.answer_json = answer;
    ex.cluster = -1;
    return ex;
}

static char *sft(const gyre_example_t *ex, const char *correction, unsigned redact)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    char err[256] = "";
    int r = gyre_dataset_sft_line(ex, correction, redact, &b, err, sizeof(err));
    char *s = r == 0 ? strdup(b.base) : NULL;
    if (r != 0)
        fprintf(stderr, "  sft_line: %d %s\n", r, err);
    gyre_buf_dispose(&b);
    return s;
}

TEST(dataset_single_turn_line_is_the_messages_then_the_answer)
{
    gyre_example_t ex = example("00000000000000000000000000000001", "s1", SINGLE_MSGS, NULL, SINGLE_ANSWER);
    char *s = sft(&ex, NULL, 0);
    CHECK_STR(s, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                 "\"Capital of France?\"},{\"role\":\"assistant\",\"content\":\"Paris.\"}]}\n");
    free(s);
}

TEST(dataset_multi_turn_line_keeps_tool_calls_tool_messages_and_tools)
{
    gyre_example_t ex = example("00000000000000000000000000000002", "s2", TOOL_MSGS, TOOL_TOOLS, TOOL_ANSWER);
    char *s = sft(&ex, NULL, 0);
    CHECK_STR(s, "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"role\":\"assistant\","
                 "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},{\"role\":\"tool\",\"content\":\"{\\\"temp_c\\\":"
                 "3}\",\"tool_call_id\":\"call_1\"},{\"role\":\"assistant\",\"content\":\"It is 3 \xc2\xb0"
                 "C in Oslo.\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]}\n");
    free(s);
}

TEST(dataset_correction_replaces_the_answer_in_the_sft_line)
{
    gyre_example_t ex = example("00000000000000000000000000000003", "s3", SINGLE_MSGS, NULL, SINGLE_ANSWER);
    char *s = sft(&ex, "Paris is the capital of France.", 0);
    CHECK_STR(s, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                 "\"Capital of France?\"},{\"role\":\"assistant\",\"content\":\"Paris is the capital of France.\"}]}\n");
    free(s);
}

TEST(dataset_correction_answer_with_tool_calls_becomes_text)
{
    const char ans[] = "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c9\",\"type\":\"function\","
                       "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}";
    gyre_example_t ex = example("00000000000000000000000000000004", NULL, SINGLE_MSGS, NULL, ans);
    char *s = sft(&ex, "Paris.", 0);
    CHECK_STR(s, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                 "\"Capital of France?\"},{\"role\":\"assistant\",\"content\":\"Paris.\"}]}\n");
    free(s);
}

TEST(dataset_preference_line_from_a_correction)
{
    gyre_example_t ex = example("00000000000000000000000000000005", "s5", SINGLE_MSGS, TOOL_TOOLS, SINGLE_ANSWER);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    char err[256] = "";
    CHECK_INT(gyre_dataset_preference_line(&ex, NULL, "Paris is the capital of France.", ex.answer_json, 0, &b, err,
                                           sizeof(err)),
              0);
    CHECK_STR(b.base, "{\"input\":{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                      "\"content\":\"Capital of France?\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                      "\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                      "\"string\"}}}}}]},\"preferred_output\":[{\"role\":\"assistant\",\"content\":\"Paris is the "
                      "capital of France.\"}],\"non_preferred_output\":[{\"role\":\"assistant\",\"content\":"
                      "\"Paris.\"}]}\n");
    gyre_buf_dispose(&b);
}

TEST(dataset_preference_line_refuses_equal_outputs_and_tool_call_outputs)
{
    gyre_example_t ex = example("00000000000000000000000000000006", NULL, SINGLE_MSGS, NULL, SINGLE_ANSWER);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    char err[256] = "";
    CHECK_INT(gyre_dataset_preference_line(&ex, NULL, "Paris.", ex.answer_json, 0, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "preferred_output: the same text as non_preferred_output: no preference to learn");
    const char calls[] = "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":"
                         "{\"name\":\"f\",\"arguments\":\"{}\"}}]}";
    CHECK_INT(gyre_dataset_preference_line(&ex, NULL, "Paris.", calls, 0, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "non_preferred_output: OpenAI's preference format takes text outputs only (this one has no text, "
                   "or tool calls)");
    CHECK_INT(b.len, 0);
    gyre_buf_dispose(&b);
}

TEST(dataset_line_is_redacted_and_text_parts_joined)
{
    const char msgs[] = "[{\"role\":\"developer\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                        "[{\"type\":\"text\",\"text\":\"Write to ann@example.com\"},{\"type\":\"text\",\"text\":"
                        "\"today\"}],\"cache_control\":{\"type\":\"ephemeral\"}}]";
    const char ans[] = "{\"role\":\"assistant\",\"content\":\"Done: ann@example.com\"}";
    gyre_example_t ex = example("00000000000000000000000000000007", NULL, msgs, NULL, ans);
    char *s = sft(&ex, NULL, GYRE_REDACT_EMAIL);
    CHECK_STR(s, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                 "\"Write to [email]\\ntoday\"},{\"role\":\"assistant\",\"content\":\"Done: [email]\"}]}\n");
    free(s);
}

TEST(dataset_line_without_an_answer_is_refused)
{
    gyre_example_t ex = example("00000000000000000000000000000008", NULL, SINGLE_MSGS, NULL, NULL);
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    char err[256] = "";
    CHECK_INT(gyre_dataset_sft_line(&ex, NULL, 0, &b, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "answer: the call has no answer");
    gyre_buf_dispose(&b);
}

/* ---- The writer. ---- */

static char *slurp(const char *path)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 24);
    char *s = gyre_buf_append_file(&b, path) == 0 ? strdup(b.base) : NULL;
    gyre_buf_dispose(&b);
    return s;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.' || strncmp(e->d_name, ".tmp-", 5) == 0;
    if (d != NULL)
        closedir(d);
    return n;
}

/* Writes the fixture dataset (two train lines, one held out, one pair, one example without an answer). */
static int write_fixture(const char *dir, int64_t created_us, const char *spec, gyre_dataset_result_t *res)
{
    gyre_example_t a = example("0000000000000000000000000000000a", "sa", SINGLE_MSGS, NULL, SINGLE_ANSWER);
    gyre_example_score_t sc[2] = {{"judge.correctness", 1, "2", 0.5, NULL}, {"heuristic.refusal", 0, "1", 1, NULL}};
    a.scores = sc;
    a.nscores = 2;
    a.cluster = 2;
    gyre_example_t b = example("0000000000000000000000000000000b", "sb", TOOL_MSGS, TOOL_TOOLS, TOOL_ANSWER);
    gyre_example_score_t sb[1] = {{"judge.correctness", 1, "2", 0.9, NULL}};
    b.scores = sb;
    b.nscores = 1;
    b.cluster = 0;
    gyre_example_t c = example("0000000000000000000000000000000c", "sc", SINGLE_MSGS, NULL, SINGLE_ANSWER);
    c.cluster = 2;
    gyre_example_t none = example("0000000000000000000000000000000d", "sd", SINGLE_MSGS, NULL, NULL);
    gyre_dataset_writer_t *w;
    char err[256] = "";
    int r = gyre_dataset_begin(dir, spec, 0, &w, err, sizeof(err));
    if (r != 0)
        return r;
    CHECK_INT(gyre_dataset_add_sft(w, GYRE_DATASET_TRAIN, &a, NULL, err, sizeof(err)), 0);
    CHECK_INT(gyre_dataset_add_sft(w, GYRE_DATASET_TRAIN, &b, NULL, err, sizeof(err)), 0);
    CHECK_INT(gyre_dataset_add_sft(w, GYRE_DATASET_HELDOUT, &c, "Paris is the capital of France.", err, sizeof(err)),
              0);
    CHECK_INT(gyre_dataset_add_sft(w, GYRE_DATASET_TRAIN, &none, NULL, err, sizeof(err)), 1);
    CHECK_INT(gyre_dataset_add_pair(w, &a, "Paris is the capital of France.", NULL, NULL, err, sizeof(err)), 0);
    return gyre_dataset_commit(w, created_us, res, err, sizeof(err));
}

TEST(dataset_writer_names_the_dataset_by_its_content_and_writes_it_once)
{
    char dir[] = "/tmp/gyre-dataset-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/datasets", dir);
    gyre_dataset_result_t r1, r2, r3;
    CHECK_INT(write_fixture(sub, 1765000000000000LL, "source: {}\n", &r1), 0);
    CHECK_INT(strlen(r1.id), 32);
    CHECK(gyre_dataset_id_valid(r1.id, 32));
    CHECK_INT(r1.existed, 0);
    CHECK_INT(r1.lines[0], 2);
    CHECK_INT(r1.lines[1], 1);
    CHECK_INT(r1.lines[2], 1);
    CHECK_INT(r1.skipped, 1);
    /* Later, the same curation: the same id, found, nothing written (no second folder, no temporary one). */
    CHECK_INT(write_fixture(sub, 1765000999000000LL, "source: {}\n", &r2), 0);
    CHECK_STR(r2.id, r1.id);
    CHECK_INT(r2.existed, 1);
    CHECK_INT(count_entries(sub), 1);
    /* Another spec text is another dataset. */
    CHECK_INT(write_fixture(sub, 1765000999000000LL, "source: {routes: [a]}\n", &r3), 0);
    CHECK(strcmp(r3.id, r1.id) != 0);
    CHECK_INT(count_entries(sub), 2);

    char p[4200];
    snprintf(p, sizeof(p), "%s/train.jsonl", r1.path);
    char *train = slurp(p);
    CHECK_STR(train,
              "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
              "\"Capital of France?\"},{\"role\":\"assistant\",\"content\":\"Paris.\"}]}\n"
              "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"role\":\"assistant\","
              "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
              "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},{\"role\":\"tool\",\"content\":\"{\\\"temp_c\\\":"
              "3}\",\"tool_call_id\":\"call_1\"},{\"role\":\"assistant\",\"content\":\"It is 3 \xc2\xb0"
              "C in Oslo.\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
              "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]}\n");
    free(train);
    snprintf(p, sizeof(p), "%s/heldout.jsonl", r1.path);
    char *held = slurp(p);
    CHECK_STR(held, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                    "\"Capital of France?\"},{\"role\":\"assistant\",\"content\":\"Paris is the capital of "
                    "France.\"}]}\n");
    free(held);

    snprintf(p, sizeof(p), "%s/manifest.json", r1.path);
    char *man = slurp(p);
    char head[256];
    snprintf(head, sizeof(head),
             "{\"id\":\"%s\",\"created\":\"2025-12-06T05:46:40Z\",\"counts\":{\"train\":2,\"heldout\":1,"
             "\"preference\":1,\"corrections\":1,\"skipped\":1},\n",
             r1.id);
    CHECK(man != NULL && strncmp(man, head, strlen(head)) == 0);
    CHECK(strstr(man, "\"clusters\":[{\"cluster\":0,\"train\":1,\"heldout\":0,\"preference\":0},{\"cluster\":2,"
                      "\"train\":1,\"heldout\":1,\"preference\":1}]") != NULL);
    CHECK(strstr(man, "\"scores\":{\"heuristic.refusal\":{\"n\":2,\"mean\":1,\"min\":1,\"p50\":1,\"max\":1},"
                      "\"judge.correctness\":{\"n\":3,\"mean\":0.633333,\"min\":0.5,\"p50\":0.5,\"max\":0.9}}") != NULL);
    CHECK(strstr(man, "\"scorers\":[{\"name\":\"heuristic.refusal\",\"version\":\"1\",\"source\":\"heuristic\"},"
                      "{\"name\":\"judge.correctness\",\"version\":\"2\",\"source\":\"judge\"}]") != NULL);
    CHECK(strstr(man, "{\"file\":\"heldout.jsonl\",\"line\":1,\"trace_id\":\"0000000000000000000000000000000c\","
                      "\"session\":\"sc\",\"cluster\":2,\"correction\":true}") != NULL);
    CHECK(strstr(man, "\"spec\":\"source: {}\\n\"") != NULL);
    free(man);

    /* The listing reads each manifest's first line: newest first. */
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 20);
    char err[256];
    CHECK_INT(gyre_dataset_list_json(sub, &b, err, sizeof(err)), 0);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"id\":\"%s\",\"created\":\"2025-12-06T05:46:40Z\",\"counts\":{\"train\":2,\"heldout\":1,"
             "\"preference\":1,\"corrections\":1,\"skipped\":1}}]}",
             r1.id);
    CHECK(strncmp(b.base, "{\"datasets\":[{\"id\":\"", 20) == 0);
    CHECK(strstr(b.base, r3.id) < strstr(b.base, r1.id));
    CHECK(b.len > strlen(want) && strcmp(b.base + b.len - strlen(want), want) == 0);
    gyre_buf_dispose(&b);

    /* The files are read by id; anything else is not found. */
    gyre_buf_init(&b, 1 << 20);
    CHECK_INT(gyre_dataset_read_file(sub, r1.id, "preference.jsonl", &b, err, sizeof(err)), 0);
    CHECK(strncmp(b.base, "{\"input\":{\"messages\":", 21) == 0);
    CHECK_INT(gyre_dataset_read_file(sub, r1.id, "../../etc/passwd", &b, err, sizeof(err)), -ENOENT);
    CHECK_INT(gyre_dataset_read_file(sub, "../datasets", "manifest.json", &b, err, sizeof(err)), -ENOENT);
    CHECK_INT(gyre_dataset_read_file(sub, "ffffffffffffffffffffffffffffffff", "manifest.json", &b, err, sizeof(err)),
              -ENOENT);
    gyre_buf_dispose(&b);
    gyre_buf_init(&b, 16);
    CHECK_INT(gyre_dataset_read_file(sub, r1.id, "train.jsonl", &b, err, sizeof(err)), -E2BIG);
    gyre_buf_dispose(&b);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

TEST(dataset_exported_lines_pass_the_format_validator)
{
    gyre_example_t a = example("00000000000000000000000000000001", NULL, SINGLE_MSGS, NULL, SINGLE_ANSWER);
    gyre_example_t b = example("00000000000000000000000000000002", NULL, TOOL_MSGS, TOOL_TOOLS, TOOL_ANSWER);
    gyre_ftcheck_t c, p;
    gyre_ftcheck_init(&c, GYRE_FT_OPENAI, 0, 1);
    gyre_ftcheck_init(&p, GYRE_FT_PREFERENCE, 0, 1);
    gyre_buf_t l;
    gyre_buf_init(&l, 1 << 20);
    char err[256];
    CHECK_INT(gyre_dataset_sft_line(&a, NULL, 0, &l, err, sizeof(err)), 0);
    CHECK_INT(gyre_ftcheck_line(&c, l.base, l.len - 1), 0);
    gyre_buf_reset(&l);
    CHECK_INT(gyre_dataset_sft_line(&b, NULL, 0, &l, err, sizeof(err)), 0);
    CHECK_INT(gyre_ftcheck_line(&c, l.base, l.len - 1), 0);
    gyre_buf_reset(&l);
    CHECK_INT(gyre_dataset_preference_line(&b, NULL, "3 degrees.", b.answer_json, 0, &l, err, sizeof(err)), 0);
    CHECK_INT(gyre_ftcheck_line(&p, l.base, l.len - 1), 0);
    CHECK_INT(c.report.len + p.report.len, 0);
    CHECK_INT(c.errors + p.errors, 0);
    gyre_buf_dispose(&l);
    gyre_ftcheck_dispose(&c);
    gyre_ftcheck_dispose(&p);
}

TEST(dataset_score_contrast_pair_prefers_the_better_answer_and_names_the_other_trace)
{
    char dir[] = "/tmp/gyre-dataset-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    gyre_example_t best = example("0000000000000000000000000000000e", "se", SINGLE_MSGS, NULL,
                                  "{\"role\":\"assistant\",\"content\":\"Paris is the capital.\"}");
    gyre_dataset_writer_t *w;
    gyre_dataset_result_t res;
    char err[256] = "";
    CHECK_INT(gyre_dataset_begin(dir, "{}", 0, &w, err, sizeof(err)), 0);
    CHECK_INT(gyre_dataset_add_pair(w, &best, NULL, SINGLE_ANSWER, "0000000000000000000000000000000f", err,
                                    sizeof(err)),
              0);
    CHECK_INT(gyre_dataset_commit(w, 0, &res, err, sizeof(err)), 0);
    char p[4200];
    snprintf(p, sizeof(p), "%s/preference.jsonl", res.path);
    char *pref = slurp(p);
    CHECK_STR(pref, "{\"input\":{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":"
                    "\"user\",\"content\":\"Capital of France?\"}]},\"preferred_output\":[{\"role\":"
                    "\"assistant\",\"content\":\"Paris is the capital.\"}],\"non_preferred_output\":[{\"role\":"
                    "\"assistant\",\"content\":\"Paris.\"}]}\n");
    free(pref);
    snprintf(p, sizeof(p), "%s/manifest.json", res.path);
    char *man = slurp(p);
    CHECK(strstr(man, "{\"file\":\"preference.jsonl\",\"line\":1,\"trace_id\":\"0000000000000000000000000000000e\","
                      "\"session\":\"se\",\"cluster\":-1,\"correction\":false,\"non_preferred_trace_id\":"
                      "\"0000000000000000000000000000000f\"}") != NULL);
    free(man);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

TEST(dataset_writer_leaves_out_a_line_the_format_refuses)
{
    char dir[] = "/tmp/gyre-dataset-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* A tool message that answers no call: the request as a client sent it, which OpenAI's format refuses. */
    gyre_example_t ex = example("00000000000000000000000000000010", "s", "[{\"role\":\"user\",\"content\":\"x\"},"
                                "{\"role\":\"tool\",\"tool_call_id\":\"c7\",\"content\":\"1\"}]", NULL,
                                SINGLE_ANSWER);
    gyre_dataset_writer_t *w;
    gyre_dataset_result_t res;
    char err[512] = "";
    CHECK_INT(gyre_dataset_begin(dir, "{}", 0, &w, err, sizeof(err)), 0);
    CHECK_INT(gyre_dataset_add_sft(w, GYRE_DATASET_TRAIN, &ex, NULL, err, sizeof(err)), 1);
    CHECK_STR(err, "trace 00000000000000000000000000000010: not a valid chat line: 1: messages[1].tool_call_id: 'c7' "
                   "answers no tool call made earlier in this example\n");
    CHECK_INT(gyre_dataset_commit(w, 0, &res, err, sizeof(err)), 0);
    CHECK_INT(res.lines[0], 0);
    CHECK_INT(res.skipped, 1);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}
