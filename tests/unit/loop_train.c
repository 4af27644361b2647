/* The training backends (src/loop/train*.c): the job's JSON, the services' answers, the command backend with a real
 * sh, and the multipart composer of otlp/httpc. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop/train.h"
#include "loop/train_int.h"
#include "otlp/httpc.h"
#include "test.h"

static void collect_cb(void *ctx, int64_t at_us, const char *level, const char *message)
{
    gyre_buf_t *b = ctx;
    gyre_buf_appendf(b, "%lld|%s|%s\n", (long long)(at_us / 1000000), level, message);
}

static gyre_train_job_t sample_job(void)
{
    gyre_train_job_t j;
    memset(&j, 0, sizeof(j));
    strcpy(j.backend, "together");
    strcpy(j.id, "ft-01234");
    strcpy(j.file_id, "file-9");
    strcpy(j.status, "failed");
    strcpy(j.model, "acct/Llama-3.1-8B-Instruct-support-v2");
    strcpy(j.error, "quote \" backslash \\ newline \n tab \t done");
    j.progress = 0.3333333333333333;
    strcpy(j.cursor, "ftevent-7");
    j.started_us = 1796600000123456;
    j.finished_us = 1796600300654321;
    j.pid = 4242;
    return j;
}

TEST(train_job_json_is_every_field_in_order)
{
    gyre_train_job_t j = sample_job();
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    gyre_train_job_json(&j, &b);
    CHECK_STR(b.base, "{\"backend\":\"together\",\"id\":\"ft-01234\",\"file_id\":\"file-9\",\"status\":\"failed\","
                      "\"model\":\"acct/Llama-3.1-8B-Instruct-support-v2\",\"error\":\"quote \\\" backslash \\\\ "
                      "newline \\n tab \\t done\",\"progress\":0.33333333333333331,\"cursor\":\"ftevent-7\","
                      "\"started_us\":1796600000123456,\"finished_us\":1796600300654321,\"pid\":4242}");
    gyre_buf_dispose(&b);
}

TEST(train_job_json_round_trip_is_exact)
{
    gyre_train_job_t j = sample_job(), back;
    gyre_buf_t b, b2;
    gyre_buf_init(&b, 1 << 16);
    gyre_buf_init(&b2, 1 << 16);
    gyre_train_job_json(&j, &b);
    CHECK_INT(gyre_train_job_from_json(b.base, b.len, &back), 0);
    CHECK(memcmp(&j, &back, sizeof(j)) == 0);
    gyre_train_job_json(&back, &b2);
    CHECK_STR(b2.base, b.base);
    /* -1 (the service does not say) survives too. */
    j.progress = -1;
    gyre_buf_reset(&b);
    gyre_train_job_json(&j, &b);
    CHECK_INT(gyre_train_job_from_json(b.base, b.len, &back), 0);
    CHECK(back.progress == -1);
    gyre_buf_dispose(&b);
    gyre_buf_dispose(&b2);
}

TEST(train_job_from_json_refuses_what_is_not_a_job)
{
    gyre_train_job_t j = sample_job(), back;
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    gyre_train_job_json(&j, &b);
    char *s = strdup(b.base);
    /* An unknown status. */
    char *st = strstr(s, "\"failed\"");
    memcpy(st, "\"faile!\"", 8);
    CHECK_INT(gyre_train_job_from_json(s, strlen(s), &back), -EINVAL);
    /* A string longer than its field. */
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    gyre_buf_reset(&b);
    gyre_buf_appendf(&b,
                     "{\"backend\":\"openai\",\"id\":\"%s\",\"file_id\":\"\",\"status\":\"queued\",\"model\":\"\","
                     "\"error\":\"\",\"progress\":-1,\"cursor\":\"\",\"started_us\":1,\"finished_us\":0,\"pid\":0}",
                     big);
    CHECK_INT(gyre_train_job_from_json(b.base, b.len, &back), -EINVAL);
    /* A progress past 1, a missing member, not JSON at all. */
    CHECK_INT(gyre_train_job_from_json("{\"backend\":\"openai\"}", 20, &back), -EINVAL);
    CHECK_INT(gyre_train_job_from_json("[1]", 3, &back), -EINVAL);
    free(s);
    gyre_buf_dispose(&b);
}

TEST(train_backends_are_found_by_name)
{
    CHECK_STR(gyre_train_backend_find("openai")->name, "openai");
    CHECK_STR(gyre_train_backend_find("together")->name, "together");
    CHECK_STR(gyre_train_backend_find("command")->name, "command");
    CHECK(gyre_train_backend_find("fireworks") == NULL);
    CHECK(gyre_train_backend_find(NULL) == NULL);
}

/* ---- the services' answers ---- */

TEST(train_openai_job_maps_statuses_model_and_error)
{
    gyre_train_job_t j;
    memset(&j, 0, sizeof(j));
    char err[256] = "";
    const char *q = "{\"object\":\"fine_tuning.job\",\"id\":\"ftjob-1\",\"status\":\"validating_files\"}";
    CHECK_INT(gyre_train_openai_parse_job(q, strlen(q), &j, err, sizeof(err)), 0);
    CHECK_STR(j.status, "queued");
    CHECK_STR(j.id, "ftjob-1");
    const char *ok =
        "{\"id\":\"ftjob-1\",\"status\":\"succeeded\",\"fine_tuned_model\":\"ft:gpt-4o-mini:org:s:ftjob-1\"}";
    CHECK_INT(gyre_train_openai_parse_job(ok, strlen(ok), &j, err, sizeof(err)), 0);
    CHECK_STR(j.status, "succeeded");
    CHECK_STR(j.model, "ft:gpt-4o-mini:org:s:ftjob-1");
    CHECK(j.finished_us > 0);
    gyre_train_job_t f;
    memset(&f, 0, sizeof(f));
    const char *bad = "{\"id\":\"ftjob-2\",\"status\":\"failed\",\"error\":{\"code\":\"invalid_training_file\","
                      "\"message\":\"line 3:\\nnot JSON\",\"param\":\"training_file\"}}";
    CHECK_INT(gyre_train_openai_parse_job(bad, strlen(bad), &f, err, sizeof(err)), 0);
    CHECK_STR(f.status, "failed");
    CHECK_STR(f.error, "line 3: not JSON");
    const char *odd = "{\"id\":\"ftjob-3\",\"status\":\"paused\"}";
    CHECK_INT(gyre_train_openai_parse_job(odd, strlen(odd), &f, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "the fine-tuning job has an unknown status \"paused\"");
    const char *noid = "{\"id\":\"../x\",\"status\":\"running\"}";
    CHECK_INT(gyre_train_openai_parse_job(noid, strlen(noid), &f, err, sizeof(err)), -EINVAL);
}

TEST(train_openai_events_newest_first_are_reported_oldest_first_once)
{
    gyre_train_job_t j;
    memset(&j, 0, sizeof(j));
    j.progress = -1;
    gyre_buf_t got;
    gyre_buf_init(&got, 1 << 16);
    const char *page1 =
        "{\"object\":\"list\",\"data\":["
        "{\"object\":\"fine_tuning.job.event\",\"id\":\"ev-2\",\"created_at\":1796600002,\"level\":"
        "\"info\",\"message\":\"Step 5/10\",\"type\":\"metrics\",\"data\":{\"step\":5,\"total_steps\":10}},"
        "{\"id\":\"ev-1\",\"created_at\":1796600001,\"level\":\"info\",\"message\":\"Created job\"}],"
        "\"has_more\":false}";
    CHECK_INT(gyre_train_openai_parse_events(page1, strlen(page1), &j, collect_cb, &got), 0);
    CHECK_STR(got.base, "1796600001|info|Created job\n1796600002|info|Step 5/10\n");
    CHECK_STR(j.cursor, "ev-2");
    CHECK(j.progress == 0.5);
    gyre_buf_reset(&got);
    const char *page2 = "{\"object\":\"list\",\"data\":["
                        "{\"id\":\"ev-4\",\"created_at\":1796600004,\"level\":\"warn\",\"message\":\"slow\"},"
                        "{\"id\":\"ev-3\",\"created_at\":1796600003,\"level\":\"info\",\"message\":\"Step 10/10\"},"
                        "{\"id\":\"ev-2\",\"created_at\":1796600002,\"level\":\"info\",\"message\":\"Step 5/10\"},"
                        "{\"id\":\"ev-1\",\"created_at\":1796600001,\"level\":\"info\",\"message\":\"Created job\"}]}";
    CHECK_INT(gyre_train_openai_parse_events(page2, strlen(page2), &j, collect_cb, &got), 0);
    CHECK_STR(got.base, "1796600003|info|Step 10/10\n1796600004|warn|slow\n");
    CHECK_STR(j.cursor, "ev-4");
    CHECK_INT(gyre_train_openai_parse_events("{\"data\":3}", 10, &j, collect_cb, &got), -EINVAL);
    gyre_buf_dispose(&got);
}

TEST(train_together_job_and_events_map_onto_the_same_job)
{
    gyre_train_job_t j;
    memset(&j, 0, sizeof(j));
    j.progress = -1;
    char err[256] = "";
    const char *run = "{\"id\":\"ft-abc\",\"status\":\"compressing\"}";
    CHECK_INT(gyre_train_together_parse_job(run, strlen(run), &j, err, sizeof(err)), 0);
    CHECK_STR(j.status, "running");
    const char *done =
        "{\"id\":\"ft-abc\",\"status\":\"completed\",\"output_name\":\"acct/Llama-3-8b-support-ft-abc\"}";
    CHECK_INT(gyre_train_together_parse_job(done, strlen(done), &j, err, sizeof(err)), 0);
    CHECK_STR(j.status, "succeeded");
    CHECK_STR(j.model, "acct/Llama-3-8b-support-ft-abc");
    gyre_train_job_t f;
    memset(&f, 0, sizeof(f));
    const char *bad = "{\"id\":\"ft-x\",\"status\":\"error\",\"events\":[{\"message\":\"queued\"},"
                      "{\"message\":\"Job failed: the training file has no assistant turn\"}]}";
    CHECK_INT(gyre_train_together_parse_job(bad, strlen(bad), &f, err, sizeof(err)), 0);
    CHECK_STR(f.status, "failed");
    CHECK_STR(f.error, "Job failed: the training file has no assistant turn");
    const char *nomodel = "{\"id\":\"ft-abc\",\"status\":\"completed\"}";
    CHECK_INT(gyre_train_together_parse_job(nomodel, strlen(nomodel), &f, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "the fine-tune completed without a usable output_name");

    gyre_buf_t got;
    gyre_buf_init(&got, 1 << 16);
    const char *ev1 = "{\"data\":[{\"object\":\"fine-tune-event\",\"created_at\":\"2026-12-07T06:00:00Z\",\"level\":"
                      "null,\"message\":\"Fine tune request created\",\"type\":\"job_pending\"}]}";
    CHECK_INT(gyre_train_together_parse_events(ev1, strlen(ev1), &j, collect_cb, &got), 0);
    const char *ev2 = "{\"data\":[{\"created_at\":\"2026-12-07T06:00:00Z\",\"message\":\"Fine tune request created\"},"
                      "{\"created_at\":\"2026-12-07T06:00:05Z\",\"message\":\"Epoch 1/2\",\"step\":3,\"total_steps\":"
                      "4}]}";
    CHECK_INT(gyre_train_together_parse_events(ev2, strlen(ev2), &j, collect_cb, &got), 0);
    CHECK_STR(got.base, "1796623200|info|Fine tune request created\n1796623205|info|Epoch 1/2\n");
    CHECK_STR(j.cursor, "2");
    CHECK(j.progress == 0.75);
    gyre_buf_dispose(&got);
}

TEST(train_job_requests_carry_the_conf)
{
    gyre_train_conf_t c = {0};
    c.base_model = "gpt-4o-mini";
    c.suffix = "support-v2";
    c.epochs = 3;
    c.batch_size = 8;
    c.learning_rate = 0.5;
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    CHECK_INT(gyre_train_openai_request(&c, "file-1", "file-2", &b), 0);
    CHECK_STR(b.base,
              "{\"model\":\"gpt-4o-mini\",\"training_file\":\"file-1\",\"validation_file\":\"file-2\","
              "\"suffix\":\"support-v2\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":"
              "{\"n_epochs\":3,\"batch_size\":8,\"learning_rate_multiplier\":0.5}}}}");
    gyre_buf_reset(&b);
    c.method = "dpo";
    c.lora_rank = 16;
    c.learning_rate = 1e-5;
    c.base_model = "meta-llama/Llama-3.1-8B-Instruct";
    CHECK_INT(gyre_train_together_request(&c, "file-1", NULL, &b), 0);
    CHECK_STR(b.base, "{\"training_file\":\"file-1\",\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"n_epochs\":3,"
                      "\"learning_rate\":1.0000000000000001e-05,\"batch_size\":8,\"suffix\":\"support-v2\","
                      "\"training_type\":{\"type\":\"Lora\",\"lora_r\":16},\"training_method\":{\"method\":\"dpo\"}}");
    gyre_buf_dispose(&b);
}

/* ---- the command backend ---- */

TEST(train_command_compose_quotes_hostile_paths_as_one_word_each)
{
    const char *hostile = "/tmp/a b/it's $(touch /tmp/gyre-pwned) `id`;\n\"x\"";
    gyre_train_vars_t v = {hostile, "/h", "/p", "/o", "/d", "run-1"};
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    char err[256] = "";
    CHECK_INT(gyre_train_command_compose("printf '%s|' {train} {run} ${HOME:+home}", &v, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "printf '%s|' '/tmp/a b/it'\\''s $(touch /tmp/gyre-pwned) `id`;\n\"x\"' 'run-1' ${HOME:+home}");
    /* sh reads each value back as it was, as one argument. */
    gyre_buf_t cmd;
    gyre_buf_init(&cmd, 1 << 16);
    gyre_train_command_compose("printf '%s|' {train} {run}", &v, &cmd, err, sizeof(err));
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/bin/sh", "sh", "-c", cmd.base, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char out[512];
    ssize_t n = 0, r;
    while ((r = read(fds[0], out + n, sizeof(out) - 1 - (size_t)n)) > 0)
        n += r;
    out[n] = '\0';
    waitpid(pid, NULL, 0);
    char want[512];
    snprintf(want, sizeof(want), "%s|run-1|", hostile);
    CHECK_STR(out, want);
    CHECK(access("/tmp/gyre-pwned", F_OK) != 0);
    gyre_buf_dispose(&b);
    gyre_buf_dispose(&cmd);
}

TEST(train_command_compose_refuses_an_unknown_placeholder)
{
    gyre_train_vars_t v = {"/t", "/h", "/p", "/o", "/d", "r"};
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 16);
    char err[256] = "";
    CHECK_INT(gyre_train_command_compose("python train.py --data {trian} --out {out}", &v, &b, err, sizeof(err)),
              -EINVAL);
    CHECK_STR(err, "train.command: unknown placeholder {trian} (known: {train} {heldout} {preference} {out} {dataset} "
                   "{run})");
    CHECK_INT((long long)b.len, 0);
    /* Braces that are not a placeholder's shape stay as they are. */
    CHECK_INT(gyre_train_command_compose("echo '{\"a\": 1}' {Out} {}", &v, &b, err, sizeof(err)), 0);
    CHECK_STR(b.base, "echo '{\"a\": 1}' {Out} {}");
    gyre_buf_dispose(&b);
}

/* A fresh folder for a command job: the dataset and the work folder. */
static void make_dirs(char *ds, char *wd)
{
    strcpy(ds, "/tmp/gyre-train-ds-XXXXXX");
    strcpy(wd, "/tmp/gyre-train-wd-XXXXXX");
    CHECK(mkdtemp(ds) != NULL);
    CHECK(mkdtemp(wd) != NULL);
    char p[256];
    snprintf(p, sizeof(p), "%s/train.jsonl", ds);
    FILE *f = fopen(p, "w");
    fputs("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n", f);
    fclose(f);
}

/* Removes what make_dirs made (the paths are mkdtemp's: no quoting needed). */
static void remove_dirs(const char *ds, const char *wd)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", ds, wd);
    CHECK_INT(system(cmd), 0);
}

/* Polls every 20 ms until the job is done or `ms` passed. */
static void poll_until_done(const gyre_train_env_t *env, gyre_train_job_t *job, gyre_buf_t *events, int ms)
{
    char err[256];
    for (int waited = 0; !gyre_train_job_done(job) && waited < ms; waited += 20) {
        CHECK_INT(gyre_train_command.poll(env, job, collect_cb, events, err, sizeof(err)), 0);
        if (!gyre_train_job_done(job)) {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

/* The events without their times (which are now's). */
static char *messages(const gyre_buf_t *b)
{
    char *out = calloc(1, b->len + 1), *o = out;
    for (const char *p = b->base != NULL ? b->base : ""; *p != '\0';) {
        const char *bar = strchr(p, '|');
        const char *nl = strchr(p, '\n');
        memcpy(o, bar + 1, (size_t)(nl - bar));
        o += nl - bar;
        p = nl + 1;
    }
    return out;
}

TEST(train_command_success_registers_the_printed_artifact)
{
    char ds[64], wd[64], err[256] = "";
    make_dirs(ds, wd);
    gyre_train_conf_t c = {0};
    c.command = "wc -l < {train}; echo GYRE_PROGRESS: 0.5; echo 'GYRE_ARTIFACT: http://gpu-1:8000/v1#support'";
    gyre_train_env_t env = {NULL, &c, ds, wd, "run-7"};
    gyre_train_job_t job;
    CHECK_INT(gyre_train_command.start(&env, &job, err, sizeof(err)), 0);
    CHECK_STR(job.status, "running");
    CHECK_STR(job.id, "cmd-run-7");
    gyre_buf_t ev;
    gyre_buf_init(&ev, 1 << 16);
    poll_until_done(&env, &job, &ev, 5000);
    CHECK_STR(job.status, "succeeded");
    CHECK_STR(job.model, "http://gpu-1:8000/v1#support");
    CHECK(job.progress == 1);
    char *m = messages(&ev);
    CHECK_STR(m, "info|1\ninfo|GYRE_PROGRESS: 0.5\ninfo|GYRE_ARTIFACT: http://gpu-1:8000/v1#support\n");
    free(m);
    gyre_buf_dispose(&ev);
    remove_dirs(ds, wd);
}

TEST(train_command_without_artifact_line_registers_the_out_folder)
{
    char ds[64], wd[64], err[256] = "";
    make_dirs(ds, wd);
    gyre_train_conf_t c = {0};
    c.command = "cp {train} {out}/adapter.jsonl";
    gyre_train_env_t env = {NULL, &c, ds, wd, "r"};
    gyre_train_job_t job;
    CHECK_INT(gyre_train_command.start(&env, &job, err, sizeof(err)), 0);
    gyre_buf_t ev;
    gyre_buf_init(&ev, 1 << 16);
    poll_until_done(&env, &job, &ev, 5000);
    CHECK_STR(job.status, "succeeded");
    char want[128], copied[160];
    snprintf(want, sizeof(want), "%s/out", wd);
    CHECK_STR(job.model, want);
    snprintf(copied, sizeof(copied), "%s/adapter.jsonl", want);
    CHECK_INT(access(copied, R_OK), 0);
    gyre_buf_dispose(&ev);
    remove_dirs(ds, wd);
}

TEST(train_command_exit_3_fails_with_the_logs_last_line)
{
    char ds[64], wd[64], err[256] = "";
    make_dirs(ds, wd);
    gyre_train_conf_t c = {0};
    c.command = "echo loading; echo 'CUDA out of memory' >&2; exit 3";
    gyre_train_env_t env = {NULL, &c, ds, wd, "r"};
    gyre_train_job_t job;
    CHECK_INT(gyre_train_command.start(&env, &job, err, sizeof(err)), 0);
    gyre_buf_t ev;
    gyre_buf_init(&ev, 1 << 16);
    poll_until_done(&env, &job, &ev, 5000);
    CHECK_STR(job.status, "failed");
    CHECK_STR(job.error, "the command exited with status 3: CUDA out of memory");
    CHECK_STR(job.model, "");
    char *m = messages(&ev);
    CHECK_STR(m, "info|loading\ninfo|CUDA out of memory\n");
    free(m);
    gyre_buf_dispose(&ev);
    remove_dirs(ds, wd);
}

/* Whether process `pid` runs (a zombie does not). */
static int running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL && p[2] != 'Z' && p[2] != 'X';
}

TEST(train_command_timeout_kills_the_process_group_and_fails)
{
    char ds[64], wd[64], err[256] = "", pidfile[128];
    make_dirs(ds, wd);
    snprintf(pidfile, sizeof(pidfile), "%s/sleeper", wd);
    gyre_train_conf_t c = {0};
    c.command = "sleep 30 & echo $! > {out}/../sleeper; wait";
    c.timeout_ms = 300;
    gyre_train_env_t env = {NULL, &c, ds, wd, "r"};
    gyre_train_job_t job;
    CHECK_INT(gyre_train_command.start(&env, &job, err, sizeof(err)), 0);
    int sleeper = 0;
    for (int i = 0; i < 250 && sleeper == 0; i++) {
        FILE *f = fopen(pidfile, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &sleeper) != 1)
                sleeper = 0;
            fclose(f);
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(sleeper > 0);
    CHECK(running(sleeper));
    CHECK_INT(gyre_train_timeout(&gyre_train_command, &env, &job, err, sizeof(err)), 0);
    CHECK_STR(job.status, "failed");
    CHECK_STR(job.error, "the job ran past train.timeout (0.3s) and was cancelled");
    CHECK(!running(sleeper));
    CHECK(!running((pid_t)job.pid));
    remove_dirs(ds, wd);
}

TEST(train_command_resumes_from_its_json_alone_in_another_process)
{
    char ds[64], wd[64], err[256] = "", saved[128];
    make_dirs(ds, wd);
    snprintf(saved, sizeof(saved), "%s/job.json", wd);
    gyre_train_conf_t c = {0};
    c.command = "echo epoch 1; sleep 0.4; echo epoch 2; echo GYRE_ARTIFACT: /models/support-v2";
    gyre_train_env_t env = {NULL, &c, ds, wd, "r"};
    /* The process that starts the job saves it and ends at once, as a gyre that is stopped mid-job. */
    pid_t starter = fork();
    if (starter == 0) {
        gyre_train_job_t job;
        if (gyre_train_command.start(&env, &job, err, sizeof(err)) != 0)
            _exit(1);
        gyre_buf_t b;
        gyre_buf_init(&b, 1 << 16);
        gyre_train_job_json(&job, &b);
        FILE *f = fopen(saved, "w");
        fwrite(b.base, 1, b.len, f);
        fclose(f);
        _exit(0);
    }
    int st = 0;
    waitpid(starter, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char json[4096];
    FILE *f = fopen(saved, "r");
    size_t n = f != NULL ? fread(json, 1, sizeof(json), f) : 0;
    if (f != NULL)
        fclose(f);
    gyre_train_job_t job;
    CHECK_INT(gyre_train_job_from_json(json, n, &job), 0);
    CHECK_STR(job.status, "running");
    gyre_buf_t ev;
    gyre_buf_init(&ev, 1 << 16);
    poll_until_done(&env, &job, &ev, 5000);
    CHECK_STR(job.status, "succeeded");
    CHECK_STR(job.model, "/models/support-v2");
    char *m = messages(&ev);
    CHECK_STR(m, "info|epoch 1\ninfo|epoch 2\ninfo|GYRE_ARTIFACT: /models/support-v2\n");
    free(m);
    gyre_buf_dispose(&ev);
    remove_dirs(ds, wd);
}

TEST(train_command_group_gone_without_exit_file_fails)
{
    char ds[64], wd[64], err[256] = "";
    make_dirs(ds, wd);
    gyre_train_conf_t c = {0};
    c.command = "sleep 30";
    gyre_train_env_t env = {NULL, &c, ds, wd, "r"};
    gyre_train_job_t job;
    CHECK_INT(gyre_train_command.start(&env, &job, err, sizeof(err)), 0);
    /* Killed from outside (the machine's OOM killer, a person): no wrapper is left to write the exit file. */
    kill(-(pid_t)job.pid, SIGKILL);
    waitpid((pid_t)job.pid, NULL, 0);
    gyre_buf_t ev;
    gyre_buf_init(&ev, 1 << 16);
    poll_until_done(&env, &job, &ev, 5000);
    CHECK_STR(job.status, "failed");
    char want[200];
    snprintf(want, sizeof(want),
             "the command's process group %ld is gone without an exit status (killed, or the machine restarted)",
             job.pid);
    CHECK_STR(job.error, want);
    gyre_buf_dispose(&ev);
    remove_dirs(ds, wd);
}

/* ---- the multipart composer ---- */

TEST(httpc_multipart_body_is_exact)
{
    gyre_buf_t o;
    gyre_buf_init(&o, 4096);
    char ct[128], err[256];
    gyre_httpc_part_t p[2] = {{"purpose", NULL, NULL, "fine-tune", 9},
                              {"file", "train.jsonl", "application/jsonl", "{\"a\":1}\n", 8}};
    CHECK_INT(gyre_httpc_multipart(p, 2, &o, ct, sizeof(ct), err, sizeof(err)), 0);
    CHECK_STR(ct, "multipart/form-data; boundary=gyre-form-e8c65162b944e28e63e3ae3df74c5e8e");
    CHECK_STR(o.base, "--gyre-form-e8c65162b944e28e63e3ae3df74c5e8e\r\n"
                      "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
                      "--gyre-form-e8c65162b944e28e63e3ae3df74c5e8e\r\n"
                      "Content-Disposition: form-data; name=\"file\"; filename=\"train.jsonl\"\r\n"
                      "Content-Type: application/jsonl\r\n\r\n{\"a\":1}\n\r\n"
                      "--gyre-form-e8c65162b944e28e63e3ae3df74c5e8e--\r\n");
    gyre_buf_dispose(&o);
}

TEST(httpc_multipart_refuses_names_that_would_break_the_header)
{
    gyre_buf_t o;
    gyre_buf_init(&o, 4096);
    char ct[128], err[256];
    gyre_httpc_part_t quote[1] = {{"file", "a\"; name=\"x", NULL, "d", 1}};
    CHECK_INT(gyre_httpc_multipart(quote, 1, &o, ct, sizeof(ct), err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "form part 1: its name, filename or content type is empty, too long, or has a byte other than "
                   "printable ASCII without '\"' and '\\'");
    gyre_httpc_part_t crlf[2] = {{"purpose", NULL, NULL, "x", 1}, {"a\r\nX-Evil: 1", NULL, NULL, "d", 1}};
    CHECK_INT(gyre_httpc_multipart(crlf, 2, &o, ct, sizeof(ct), err, sizeof(err)), -EINVAL);
    CHECK_INT((long long)o.len, 0);
    /* Past the buffer's bound: nothing is left half-written. */
    gyre_buf_t small;
    gyre_buf_init(&small, 64);
    gyre_httpc_part_t big[1] = {{"file", "f", NULL, "0123456789012345678901234567890123456789", 40}};
    CHECK_INT(gyre_httpc_multipart(big, 1, &small, ct, sizeof(ct), err, sizeof(err)), -E2BIG);
    CHECK_INT((long long)small.len, 0);
    gyre_buf_dispose(&o);
    gyre_buf_dispose(&small);
}

TEST(train_command_never_signals_a_process_group_that_is_not_its_own)
{
    char ds[64], wd[64], err[256] = "";
    make_dirs(ds, wd);
    /* Another program's process group, with the number a job's group had before a reboot. */
    pid_t other = fork();
    if (other == 0) {
        setsid();
        execl("/bin/sleep", "sleep", "5", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && getpgid(other) != other; i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    gyre_train_conf_t c = {0};
    c.command = "true";
    gyre_train_env_t env = {NULL, &c, ds, wd, "r"};
    gyre_train_job_t job;
    memset(&job, 0, sizeof(job));
    strcpy(job.backend, "command");
    strcpy(job.id, "cmd-r");
    strcpy(job.status, "running");
    strcpy(job.cursor, "0");
    job.progress = -1;
    job.started_us = 1;
    job.pid = other;
    CHECK_INT(gyre_train_command.cancel(&env, &job, err, sizeof(err)), 0);
    CHECK_STR(job.status, "cancelled");
    CHECK(running(other));
    strcpy(job.status, "running");
    job.finished_us = 0;
    gyre_buf_t ev;
    gyre_buf_init(&ev, 1 << 16);
    poll_until_done(&env, &job, &ev, 1000);
    CHECK_STR(job.status, "failed");
    CHECK(running(other));
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    gyre_buf_dispose(&ev);
    remove_dirs(ds, wd);
}
