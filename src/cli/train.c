/*
 * `gyre train`: runs one training job in the foreground (src/loop/train.h):
 * starts it, polls it every train.poll, prints its events as they come (and
 * a progress bar on a terminal), cancels it at train.timeout, and prints the
 * model it made.  The job's settings come from a loop spec's `train:` section
 * (--spec), from flags, or both (flags win).  What `gyre loop run` does inside
 * `gyre serve` for its train stage, for one job a person can watch.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "config/config.h"
#include "loop/dataset.h"
#include "loop/loopspec.h"
#include "loop/train.h"

const char gyre_train_usage[] =
    "usage: gyre train (--spec FILE | --backend NAME ...) [--dataset ID|DIR] [--config FILE] [--json]\n"
    "\n"
    "Runs one fine-tuning job in the foreground: uploads the curated dataset (or runs\n"
    "the training command on it), polls the job, prints its events, and prints the\n"
    "model it made.  Backends: openai (the OpenAI fine-tuning API), together\n"
    "(Together's), command (a command template run on this machine).\n"
    "\n"
    "  --spec FILE          a loop spec: its train: section, and its dataset: unless\n"
    "                       --dataset is given\n"
    "  --dataset ID|DIR     the dataset: an id under the configuration's datasets:, or a\n"
    "                       folder holding train.jsonl (and heldout.jsonl, preference.jsonl)\n"
    "  --config FILE        gyre's configuration: the providers (base_url and the first\n"
    "                       key) and datasets: (default: the embedded one)\n"
    "  --work-dir DIR       the job's folder: the command's train.log, exit and out/\n"
    "                       (default: ./gyre-train-RUN)\n"
    "  --run ID             the run's id, {run} in a command (default: train-<UTC time>)\n"
    "  --job FILE           keep the job's JSON in FILE (after each poll); run again with\n"
    "                       the same FILE, gyre train follows that job instead of starting one\n"
    "  --json               JSON lines: {\"type\":\"event\",...} per event, then\n"
    "                       {\"type\":\"job\",\"job\":{...}} at the end\n"
    "  -h, --help           this text\n"
    "\n"
    "Flags that set train: fields (over the spec's):\n"
    "  --backend NAME  --provider NAME  --base-model MODEL  --method sft|dpo\n"
    "  --training-type lora|full  --suffix TEXT  --command TEMPLATE  --epochs N\n"
    "  --learning-rate X  --batch-size N  --lora-rank N  --timeout DURATION  --poll DURATION\n"
    "(durations: 500ms, 10s, 5m, 6h; defaults: timeout 24h, poll 10s).\n"
    "\n"
    "A command template may use {train} {heldout} {preference} {out} {dataset} {run}\n"
    "(each replaced by the value quoted for sh); the command's output lines are the\n"
    "job's events; a line `GYRE_ARTIFACT: PATH-OR-URL` names its artifact (else the\n"
    "{out} folder), `GYRE_PROGRESS: 0.5` its progress.  Ctrl-C cancels the job.\n"
    "\n"
    "Exit status: 0 when the job succeeded, 1 when it failed, was cancelled or could\n"
    "not start (the reason on stderr), 2 for a wrong command line, 130 after Ctrl-C.\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct view {
    int json, tty;
    int bar_drawn;
} view_t;

static void clear_bar(view_t *v)
{
    if (v->bar_drawn) {
        fputs("\r\033[K", stderr);
        v->bar_drawn = 0;
    }
}

static void draw_bar(view_t *v, const gyre_train_job_t *job, double elapsed_s)
{
    if (!v->tty || v->json)
        return;
    char bar[21];
    int fill = job->progress >= 0 ? (int)(job->progress * 20 + 0.5) : 0;
    for (int i = 0; i < 20; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[20] = '\0';
    if (job->progress >= 0)
        fprintf(stderr, "\r%-9s [%s] %3d%% %7.0fs", job->status, bar, (int)(job->progress * 100 + 0.5), elapsed_s);
    else
        fprintf(stderr, "\r%-9s [%s]      %7.0fs", job->status, bar, elapsed_s);
    fflush(stderr);
    v->bar_drawn = 1;
}

static void event_cb(void *ctx, int64_t at_us, const char *level, const char *message)
{
    view_t *v = ctx;
    if (v->json) {
        gyre_buf_t b;
        gyre_buf_init(&b, 64 * 1024);
        gyre_buf_appendf(&b, "{\"type\":\"event\",\"at_us\":%lld,\"level\":", (long long)at_us);
        gyre_buf_append_json_string(&b, level, strlen(level));
        gyre_buf_appends(&b, ",\"message\":");
        gyre_buf_append_json_string(&b, message, strlen(message));
        gyre_buf_appends(&b, "}\n");
        if (gyre_buf_failed(&b) == 0)
            fwrite(b.base, 1, b.len, stdout);
        gyre_buf_dispose(&b);
    } else {
        clear_bar(v);
        char when[32] = "-";
        if (at_us > 0)
            gyre_cli_format_time(at_us, when, sizeof(when));
        printf("%s %-5s %s\n", when, level, message);
    }
    fflush(stdout);
}

/* "500ms", "10s", "1.5m", "6h" in milliseconds: 0, or -1. */
static int parse_ms(const char *s, uint64_t *ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v > 0))
        return -1;
    double unit = strcmp(end, "ms") == 0  ? 1
                  : strcmp(end, "s") == 0 ? 1000
                  : strcmp(end, "m") == 0 ? 60000
                  : strcmp(end, "h") == 0 ? 3600000
                  : strcmp(end, "d") == 0 ? 86400000
                                          : -1;
    if (unit < 0 || v * unit > 366.0 * 86400000 || v * unit < 1)
        return -1;
    *ms = (uint64_t)(v * unit);
    return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || s[0] == '-' || v == 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static void sleep_ms(uint64_t ms)
{
    /* In slices, so that Ctrl-C is seen within 50 ms. */
    for (uint64_t slept = 0; slept < ms && !interrupted; slept += 50) {
        uint64_t step = ms - slept < 50 ? ms - slept : 50;
        struct timespec ts = {0, (long)step * 1000000};
        nanosleep(&ts, NULL);
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --job FILE: the job as the loop runner persists it, written whole (through a rename) after the start and after
 * every poll, so that a gyre train stopped mid-job (Ctrl-\\, a reboot) and run again with the same FILE follows
 * the same job instead of starting another. */
static int save_job(const char *path, const gyre_train_job_t *job)
{
    char tmp[4200];
    gyre_buf_t b;
    gyre_buf_init(&b, 64 * 1024);
    gyre_train_job_json(job, &b);
    gyre_buf_appends(&b, "\n");
    int rc = -1;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = gyre_buf_failed(&b) == 0 ? fopen(tmp, "w") : NULL;
    if (f != NULL) {
        int ok = fwrite(b.base, 1, b.len, f) == b.len;
        ok &= fclose(f) == 0;
        rc = ok && rename(tmp, path) == 0 ? 0 : -1;
    }
    if (rc != 0)
        fprintf(stderr, "gyre train: cannot write the job to %s: %s\n", path, strerror(errno));
    gyre_buf_dispose(&b);
    return rc;
}

/* The job in FILE when there is one: 1 (job filled), 0 when the file does not exist, -1 after saying why. */
static int load_job(const char *path, const char *backend, gyre_train_job_t *job)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 64 * 1024); /* a job is under 3 KiB of JSON */
    int rc = gyre_buf_append_file(&b, path);
    if (rc == -ENOENT) {
        gyre_buf_dispose(&b);
        return 0;
    }
    if (rc != 0 || gyre_train_job_from_json(b.base, b.len, job) != 0) {
        fprintf(stderr, "gyre train: --job %s: %s\n", path, rc != 0 ? strerror(-rc) : "not a job's JSON");
        gyre_buf_dispose(&b);
        return -1;
    }
    gyre_buf_dispose(&b);
    if (strcmp(job->backend, backend) != 0) {
        fprintf(stderr, "gyre train: --job %s holds a %s job, not a %s one\n", path, job->backend, backend);
        return -1;
    }
    return 1;
}

/* Checks the job's settings as the spec's reader would (flags may have set them). 0, or 2 after saying why. */
static int check_conf(const gyre_train_conf_t *t)
{
    const char *bad = NULL;
    if (t->backend == NULL)
        bad = "--backend (or a --spec with train:) is needed: openai, together or command";
    else if (gyre_train_backend_find(t->backend) == NULL)
        bad = "--backend must be openai, together or command";
    else if (strcmp(t->backend, "command") == 0 && t->command == NULL)
        bad = "the command backend needs --command (or train.command)";
    else if (strcmp(t->backend, "command") != 0 && (t->provider == NULL || t->base_model == NULL))
        bad = "the openai and together backends need --provider and --base-model (or train.provider, train.base_model)";
    else if (t->method != NULL && strcmp(t->method, "sft") != 0 && strcmp(t->method, "dpo") != 0)
        bad = "--method must be sft or dpo";
    else if (t->training_type != NULL && strcmp(t->training_type, "lora") != 0 && strcmp(t->training_type, "full") != 0)
        bad = "--training-type must be lora or full";
    if (bad != NULL) {
        fprintf(stderr, "gyre train: %s\n", bad);
        return 2;
    }
    return 0;
}

int gyre_cmd_train(int argc, char **argv)
{
    const char *spec_path = NULL, *dataset = NULL, *config_path = NULL, *work_dir = NULL, *run = NULL, *job_path = NULL;
    const char *backend = NULL, *provider = NULL, *base_model = NULL, *method = NULL, *ttype = NULL, *suffix = NULL,
               *command = NULL, *epochs = NULL, *lr = NULL, *batch = NULL, *rank = NULL, *timeout = NULL, *poll = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(gyre_train_usage, stdout);
            return 0;
        }
        static const char *const names[] = {
            "--spec",       "--dataset",   "--config",        "--work-dir", "--run",     "--backend", "--provider",
            "--base-model", "--method",    "--training-type", "--suffix",   "--command", "--epochs",  "--learning-rate",
            "--batch-size", "--lora-rank", "--timeout",       "--poll",     "--job"};
        const char **slots[] = {&spec_path,  &dataset, &config_path, &work_dir, &run,     &backend, &provider,
                                &base_model, &method,  &ttype,       &suffix,   &command, &epochs,  &lr,
                                &batch,      &rank,    &timeout,     &poll,     &job_path};
        int matched = 0;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && !matched; k++) {
            const char *v;
            int r = gyre_cli_opt("gyre train", argc, argv, &i, names[k], &v);
            if (r < 0)
                return 2;
            if (r == 1) {
                *slots[k] = v;
                matched = 1;
            }
        }
        if (!matched) {
            fprintf(stderr, "gyre train: unexpected '%s'\n\n%s", argv[i], gyre_train_usage);
            return 2;
        }
    }

    int rc = 1;
    char err[1024] = "";
    gyre_loop_spec_t *spec = NULL;
    gyre_config_t *config = NULL;
    gyre_config_errors_t errs = {0};
    gyre_train_conf_t t = {0};
    if (spec_path != NULL) {
        if ((spec = gyre_loop_spec_load(spec_path, err, sizeof(err))) == NULL) {
            fprintf(stderr, "gyre train: %s\n", err);
            goto out;
        }
        t = spec->train;
        if (dataset == NULL)
            dataset = spec->dataset;
    }
    /* The flags over the spec.  The strings are argv's, which outlive the job. */
    if (backend != NULL)
        t.backend = (char *)backend;
    if (provider != NULL)
        t.provider = (char *)provider;
    if (base_model != NULL)
        t.base_model = (char *)base_model;
    if (method != NULL)
        t.method = (char *)method;
    if (ttype != NULL)
        t.training_type = (char *)ttype;
    if (suffix != NULL)
        t.suffix = (char *)suffix;
    if (command != NULL)
        t.command = (char *)command;
    if ((epochs != NULL && parse_uint(epochs, 100, &t.epochs) != 0) ||
        (batch != NULL && parse_uint(batch, 4096, &t.batch_size) != 0) ||
        (rank != NULL && parse_uint(rank, 1024, &t.lora_rank) != 0)) {
        fprintf(stderr, "gyre train: --epochs (1-100), --batch-size (1-4096) and --lora-rank (1-1024) take whole "
                        "numbers\n");
        rc = 2;
        goto out;
    }
    if (lr != NULL) {
        char *end = NULL;
        t.learning_rate = strtod(lr, &end);
        if (end == lr || *end != '\0' || !(t.learning_rate > 0) || t.learning_rate > 1) {
            fprintf(stderr, "gyre train: --learning-rate must be a number in (0, 1], got '%s'\n", lr);
            rc = 2;
            goto out;
        }
    }
    if ((timeout != NULL && parse_ms(timeout, &t.timeout_ms) != 0) ||
        (poll != NULL && parse_ms(poll, &t.poll_ms) != 0)) {
        fprintf(stderr, "gyre train: --timeout and --poll take durations such as 500ms, 10s, 5m or 6h\n");
        rc = 2;
        goto out;
    }
    if (t.timeout_ms == 0)
        t.timeout_ms = 24ull * 3600 * 1000;
    if (t.poll_ms == 0)
        t.poll_ms = 10000;
    if ((rc = check_conf(&t)) != 0)
        goto out;
    rc = 1;
    if (dataset == NULL) {
        fprintf(stderr, "gyre train: --dataset is needed (or a spec with dataset:)\n");
        rc = 2;
        goto out;
    }

    config = config_path != NULL ? gyre_config_load(config_path, &errs) : gyre_config_default(&errs);
    if (config == NULL) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i]);
        fprintf(stderr, "gyre train: %zu error%s in the configuration\n", errs.count, errs.count == 1 ? "" : "s");
        goto out;
    }
    char dir[4096], dsdir[4200], wd[4096], runbuf[64];
    /* An id names a dataset under datasets:; anything else is a folder's path. */
    if (strchr(dataset, '/') != NULL || !gyre_dataset_id_valid(dataset, strlen(dataset))) {
        snprintf(dsdir, sizeof(dsdir), "%s", dataset);
    } else {
        if (gyre_dataset_dir(config, dir, sizeof(dir)) == NULL) {
            fprintf(stderr, "gyre train: %s configures neither datasets: nor a store; pass --dataset DIR\n",
                    config->source);
            goto out;
        }
        snprintf(dsdir, sizeof(dsdir), "%s/%s", dir, dataset);
    }
    struct stat st;
    if (stat(dsdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "gyre train: no dataset at %s\n", dsdir);
        goto out;
    }
    if (run == NULL) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(runbuf, sizeof(runbuf), "train-%Y%m%dT%H%M%SZ", &tm);
        run = runbuf;
    }
    int wl =
        work_dir != NULL ? snprintf(wd, sizeof(wd), "%s", work_dir) : snprintf(wd, sizeof(wd), "gyre-train-%s", run);
    if (wl < 0 || (size_t)wl >= sizeof(wd) || strlen(run) > 100) {
        fprintf(stderr, "gyre train: --work-dir or --run is too long\n");
        rc = 2;
        goto out;
    }
    if (mkdir(wd, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gyre train: cannot make the work folder %s: %s\n", wd, strerror(errno));
        goto out;
    }

    const gyre_train_backend_t *b = gyre_train_backend_find(t.backend);
    gyre_train_env_t env = {config, &t, dsdir, wd, run};
    view_t v = {json, isatty(2), 0};
    gyre_train_job_t job;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double t0 = mono_s();
    int resumed = job_path != NULL ? load_job(job_path, t.backend, &job) : 0;
    if (resumed < 0)
        goto out;
    if (!resumed && b->start(&env, &job, err, sizeof(err)) != 0) {
        fprintf(stderr, "gyre train: the %s job could not start: %s\n", t.backend, err);
        goto out;
    }
    if (!resumed && job_path != NULL && save_job(job_path, &job) != 0)
        goto out;
    if (!json)
        printf("job %s %s (%s)\n", job.id, resumed ? "resumed" : "started", t.backend);
    fflush(stdout);
    unsigned failures = 0;
    for (int first = 1; !gyre_train_job_done(&job); first = 0) {
        if (!first)
            sleep_ms(t.poll_ms);
        if (interrupted) {
            clear_bar(&v);
            if (b->cancel(&env, &job, err, sizeof(err)) != 0)
                fprintf(stderr, "gyre train: cancelling job %s: %s\n", job.id, err);
            snprintf(job.error, sizeof(job.error), "interrupted: the job was cancelled");
            break;
        }
        /* From the job's start, which a resumed job kept. */
        if ((double)(wall_us() - job.started_us) / 1000 >= (double)t.timeout_ms) {
            clear_bar(&v);
            if (gyre_train_timeout(b, &env, &job, err, sizeof(err)) != 0)
                fprintf(stderr, "gyre train: cancelling job %s: %s\n", job.id, err);
            break;
        }
        if (b->poll(&env, &job, event_cb, &v, err, sizeof(err)) != 0) {
            /* The service may be away for a moment: asked again at the next poll, up to a bound. */
            clear_bar(&v);
            fprintf(stderr, "gyre train: polling job %s: %s\n", job.id, err);
            if (++failures >= 10) {
                fprintf(stderr, "gyre train: job %s could not be polled 10 times in a row; it may still run\n", job.id);
                goto out;
            }
            continue;
        }
        failures = 0;
        if (job_path != NULL && save_job(job_path, &job) != 0)
            goto out;
        draw_bar(&v, &job, mono_s() - t0);
    }
    clear_bar(&v);
    if (job_path != NULL && save_job(job_path, &job) != 0)
        goto out;
    if (json) {
        gyre_buf_t o;
        gyre_buf_init(&o, 64 * 1024);
        gyre_buf_appends(&o, "{\"type\":\"job\",\"job\":");
        gyre_train_job_json(&job, &o);
        gyre_buf_appends(&o, "}\n");
        fwrite(o.base, 1, o.len, stdout);
        gyre_buf_dispose(&o);
    }
    if (strcmp(job.status, "succeeded") == 0) {
        if (!json)
            printf("job %s succeeded in %.1fs: model %s\n", job.id, mono_s() - t0, job.model);
        rc = 0;
    } else {
        fprintf(stderr, "gyre train: job %s %s: %s\n", job.id, job.status,
                job.error[0] != '\0' ? job.error : "no reason given");
        rc = interrupted ? 130 : 1;
    }
    fflush(stdout);
out:
    gyre_config_free(config);
    gyre_config_errors_dispose(&errs);
    gyre_loop_spec_free(spec);
    return rc;
}
