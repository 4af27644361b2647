/*
 * The `command` training backend: the team's own trainer (a TRL, Axolotl,
 * LLaMA-Factory or Unsloth script on its GPUs) run from a template.
 *
 * The child runs `sh -c` in its own session (so its process group is the
 * job: cancel kills all of it) with stdin /dev/null and stdout+stderr
 * appended to work_dir/train.log, under a small wrapper that writes the
 * command's exit status to work_dir/exit (through a rename, so a reader never
 * sees half of it).  Nothing but the files and the group's id is needed to
 * follow it: a restarted gyre (another process, not the child's parent) polls
 * the same job from its JSON.  The log's new lines are the job's events (the
 * cursor is the byte offset read so far); a line `GYRE_ARTIFACT: <path or
 * URL>` names the artifact (else the {out} folder is), `GYRE_PROGRESS: 0.4`
 * the progress.  Exit 0 succeeds; any other status fails with the log's last
 * line in the error; a group gone without an exit file failed too.
 */
#include <dirent.h>
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

#include "loop/train_int.h"

/* The bound on the log read in one poll (the rest waits for the next), and on one reported line (cut). */
#define COMMAND_LOG_PER_POLL ((size_t)1 << 20)
#define COMMAND_LINE_MAX 4096
/* How long cancel waits after SIGTERM before SIGKILL. */
#define COMMAND_TERM_GRACE_MS 2000
/* The bound on the composed command line. */
#define COMMAND_MAX ((size_t)64 * 1024)

/* Runs the command ($1) and leaves its exit status in $2, renamed into place whole. */
static const char wrapper[] = "/bin/sh -c \"$1\"; s=$?; printf '%s\\n' \"$s\" > \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"";

/* A value as one single-quoted sh word: a quote inside ends the quoting, is escaped, and quoting begins again. */
static void sh_quote(gyre_buf_t *out, const char *v)
{
    gyre_buf_appends(out, "'");
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\'')
            gyre_buf_appends(out, "'\\''");
        else
            gyre_buf_append(out, p, 1);
    }
    gyre_buf_appends(out, "'");
}

int gyre_train_command_compose(const char *tmpl, const gyre_train_vars_t *v, gyre_buf_t *out, char *err, size_t errlen)
{
    static const char *const names[] = {"train", "heldout", "preference", "out", "dataset", "run"};
    const char *const vals[] = {v->train, v->heldout, v->preference, v->out, v->dataset, v->run};
    gyre_buf_mark_t m = gyre_buf_mark(out);
    for (const char *p = tmpl; *p != '\0'; p++) {
        size_t n = 0;
        if (*p == '{' && (p == tmpl || p[-1] != '$'))
            while ((p[1 + n] >= 'a' && p[1 + n] <= 'z') || p[1 + n] == '_')
                n++;
        if (n == 0 || p[1 + n] != '}') {
            gyre_buf_append(out, p, 1);
            continue;
        }
        size_t k = 0;
        while (k < 6 && (strlen(names[k]) != n || memcmp(names[k], p + 1, n) != 0))
            k++;
        if (k == 6) {
            gyre_buf_rollback(out, m);
            snprintf(err, errlen,
                     "train.command: unknown placeholder {%.*s} (known: {train} {heldout} {preference} "
                     "{out} {dataset} {run})",
                     (int)(n > 32 ? 32 : n), p + 1);
            return -EINVAL;
        }
        sh_quote(out, vals[k] != NULL ? vals[k] : "");
        p += n + 1;
    }
    if (gyre_buf_failed(out) != 0) {
        gyre_buf_rollback(out, m);
        snprintf(err, errlen, "train.command: the command line is larger than %zu bytes", out->max);
        return -E2BIG;
    }
    return 0;
}

static int command_start(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen)
{
    char train[4096], heldout[4096], pref[4096], outdir[4096], logp[4096], exitp[4096], tmpp[4200];
    memset(job, 0, sizeof(*job));
    snprintf(job->backend, sizeof(job->backend), "command");
    job->progress = -1;
    if (env->conf->command == NULL || env->conf->command[0] == '\0') {
        snprintf(err, errlen, "train.command: missing (the command backend runs it)");
        return -EINVAL;
    }
    snprintf(train, sizeof(train), "%s/train.jsonl", env->dataset_dir);
    snprintf(heldout, sizeof(heldout), "%s/heldout.jsonl", env->dataset_dir);
    snprintf(pref, sizeof(pref), "%s/preference.jsonl", env->dataset_dir);
    snprintf(outdir, sizeof(outdir), "%s/out", env->work_dir);
    snprintf(logp, sizeof(logp), "%s/train.log", env->work_dir);
    snprintf(exitp, sizeof(exitp), "%s/exit", env->work_dir);
    snprintf(tmpp, sizeof(tmpp), "%s.tmp", exitp);
    if (mkdir(outdir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", outdir, strerror(errno));
        return -errno;
    }
    /* A status left by an earlier run in the same folder must not be read as this one's. */
    unlink(exitp);
    unlink(tmpp);
    gyre_buf_t cmd;
    gyre_buf_init(&cmd, COMMAND_MAX);
    gyre_train_vars_t v = {train, heldout, pref, outdir, env->dataset_dir, env->run_id != NULL ? env->run_id : ""};
    int rc = gyre_train_command_compose(env->conf->command, &v, &cmd, err, errlen);
    if (rc != 0 || (rc = gyre_buf_append(&cmd, "", 1)) != 0) {
        if (rc == -E2BIG)
            snprintf(err, errlen, "train.command: the command line is larger than %zu bytes", COMMAND_MAX);
        gyre_buf_dispose(&cmd);
        return rc;
    }
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", logfd < 0 ? logp : "/dev/null", strerror(errno));
        goto out;
    }
    /* The parent waits for the child's exec (the pipe's end closes with it), so that the process group exists
     * once start returns: a poll right after start must not find it missing. */
    int sync[2] = {-1, -1};
    if (pipe2(sync, O_CLOEXEC) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot start the command: %s", strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(sync[0]);
        close(sync[1]);
        rc = -errno;
        snprintf(err, errlen, "cannot start the command: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here on (the parent may have threads). */
        setsid();
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        /* Nothing of gyre's (sockets, the store) reaches the trainer.  sync[1] stays open until the exec closes it
         * (O_CLOEXEC): then the session exists and the process is the wrapper, which is how a later poll knows
         * the group for the job's (group_ours). */
        int keep = sync[1];
        if ((keep > 3 && close_range(3, (unsigned)keep - 1, 0) != 0) || close_range((unsigned)keep + 1, ~0u, 0) != 0)
            for (int fd = 3; fd < 65536; fd++)
                if (fd != keep)
                    close(fd);
        execl("/bin/sh", "sh", "-c", wrapper, "gyre-train", cmd.base, exitp, (char *)NULL);
        _exit(127);
    }
    close(sync[1]);
    char c;
    while (read(sync[0], &c, 1) < 0 && errno == EINTR)
        ;
    close(sync[0]);
    job->pid = pid;
    snprintf(job->id, sizeof(job->id), "cmd-%s", env->run_id != NULL ? env->run_id : "");
    snprintf(job->status, sizeof(job->status), "running");
    snprintf(job->cursor, sizeof(job->cursor), "0");
    job->started_us = gyre_train_now_us();
    rc = 0;
out:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    gyre_buf_dispose(&cmd);
    return rc;
}

/* One line of the log: a directive, and an event. */
static void log_line(gyre_train_job_t *job, char *line, gyre_train_event_cb cb, void *ctx)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        line[--n] = '\0';
    if (strncmp(line, "GYRE_ARTIFACT:", 14) == 0) {
        const char *a = line + 14;
        while (*a == ' ' || *a == '\t')
            a++;
        gyre_train_copy_text(job->model, sizeof(job->model), a);
    } else if (strncmp(line, "GYRE_PROGRESS:", 14) == 0) {
        char *end = NULL;
        double p = strtod(line + 14, &end);
        if (end != line + 14 && p >= 0 && p <= 1)
            job->progress = p;
    }
    if (cb != NULL) {
        char text[COMMAND_LINE_MAX];
        gyre_train_copy_text(text, sizeof(text), line);
        cb(ctx, gyre_train_now_us(), "info", text);
    }
}

/* Reads the log's lines after the cursor (up to the per-poll bound); `all` also takes a last line with no newline
 * (the command has ended: nothing more will come). */
static void read_log(const gyre_train_env_t *env, gyre_train_job_t *job, int all, gyre_train_event_cb cb, void *ctx)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/train.log", env->work_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    long long off = strtoll(job->cursor, NULL, 10);
    if (off < 0)
        off = 0;
    char buf[COMMAND_LINE_MAX]; /* on the stack: jobs may be polled from several threads */
    size_t have = 0, taken = 0;
    for (;;) {
        ssize_t r = pread(fd, buf + have, sizeof(buf) - 1 - have, (off_t)(off + (long long)have));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        size_t start = 0;
        for (char *nl; (nl = memchr(buf + start, '\n', have - start)) != NULL;) {
            *nl = '\0';
            log_line(job, buf + start, cb, ctx);
            start = (size_t)(nl - buf) + 1;
        }
        /* A line longer than the buffer is reported cut, and the rest of it as the next. */
        if (start == 0 && have == sizeof(buf) - 1) {
            log_line(job, buf, cb, ctx);
            start = have;
        }
        memmove(buf, buf + start, have - start);
        off += (long long)start;
        have -= start;
        taken += start;
        if (taken >= COMMAND_LOG_PER_POLL)
            break;
    }
    if (all && have > 0 && taken < COMMAND_LOG_PER_POLL) {
        buf[have] = '\0';
        log_line(job, buf, cb, ctx);
        off += (long long)have;
    }
    snprintf(job->cursor, sizeof(job->cursor), "%lld", off);
    close(fd);
}

/* The log's last non-empty line that is not a directive, cut and cleaned, into out ("" when there is none). */
static void last_line(const gyre_train_env_t *env, char *out, size_t size)
{
    char path[4096], buf[2048];
    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/train.log", env->work_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    ssize_t r = 0;
    if (fstat(fd, &st) == 0) {
        off_t from = st.st_size > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1 : 0;
        r = pread(fd, buf, sizeof(buf) - 1, from);
    }
    close(fd);
    if (r <= 0)
        return;
    buf[r] = '\0';
    for (;;) {
        size_t n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            buf[--n] = '\0';
        if (n == 0)
            return;
        char *nl = strrchr(buf, '\n');
        char *line = nl != NULL ? nl + 1 : buf;
        if (strncmp(line, "GYRE_", 5) != 0) {
            gyre_train_copy_text(out, size, line);
            return;
        }
        if (nl == NULL)
            return;
        *nl = '\0';
    }
}

/*
 * Whether a process of group `pgid` is still running.  kill(-pgid, 0) also answers yes for zombies, and a zombie
 * whose parent is gone stays one where process 1 does not reap (some containers' init): so /proc is read for a
 * member that is not a zombie, and kill's answer is used only where /proc cannot be read.
 */
static int group_alive(pid_t pgid)
{
    if (kill(-pgid, 0) != 0 && errno == ESRCH && kill(pgid, 0) != 0 && errno == ESRCH)
        return 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 1;
    int alive = 0;
    for (struct dirent *e; !alive && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0)
            continue;
        buf[r] = '\0';
        /* "pid (comm) state ppid pgrp ...": comm may hold anything, so the fields are read after its last ')'. */
        const char *p = strrchr(buf, ')');
        char state = 0;
        long ppid = 0, pgrp = 0;
        if (p != NULL && sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == (long)pgid &&
            state != 'Z' && state != 'X')
            alive = 1;
    }
    closedir(d);
    return alive;
}

/*
 * Whether process group `pgid` is still this job's.  After a reboot (or a long time) its number may belong to
 * another program, which must never be signalled.  The kernel does not reuse a number while a process or a group
 * holds it, so: a leader that is there and not a zombie must be the job's wrapper, whose command line holds the
 * job's exit path as an argument (1 when it does, 0 when it is someone else's); a zombie leader still holds the
 * number (1); with no leader, any member left of the group is the job's (1).
 */
static int group_ours(pid_t pgid, const gyre_train_env_t *env)
{
    char path[64], exitp[4200];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pgid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    char st[512];
    ssize_t r = read(fd, st, sizeof(st) - 1);
    close(fd);
    st[r > 0 ? r : 0] = '\0';
    const char *p = strrchr(st, ')');
    if (p != NULL && (p[2] == 'Z' || p[2] == 'X'))
        return 1;
    /* The wrapper's arguments: sh, -c, the wrapper, gyre-train, the command (up to 64 KiB), the exit path. */
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pgid);
    int n = snprintf(exitp, sizeof(exitp), "%s/exit", env->work_dir);
    size_t cap = COMMAND_MAX + sizeof(exitp) + 4096, got = 0;
    char *buf = malloc(cap);
    if (buf == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        free(buf);
        return 1;
    }
    while (got < cap && (r = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)r;
    close(fd);
    /* The last argument, whole: NUL before it and at its end. */
    int ours = n > 0 && got > (size_t)n + 1 && buf[got - 1] == '\0' && buf[got - (size_t)n - 2] == '\0' &&
               memcmp(buf + got - (size_t)n - 1, exitp, (size_t)n) == 0;
    free(buf);
    return ours;
}

/* The exit status the wrapper left: 0 with *status, or -ENOENT while there is none. */
static int read_exit(const gyre_train_env_t *env, int *status)
{
    char path[4096], buf[32];
    snprintf(path, sizeof(path), "%s/exit", env->work_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return -ENOENT;
    buf[r] = '\0';
    char *end = NULL;
    long s = strtol(buf, &end, 10);
    if (end == buf || s < 0 || s > 255)
        return -ENOENT;
    *status = (int)s;
    return 0;
}

static int command_poll(const gyre_train_env_t *env, gyre_train_job_t *job, gyre_train_event_cb cb, void *ctx,
                        char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    if (gyre_train_job_done(job))
        return 0;
    /* Reaps the wrapper when this process started it (a restarted gyre is not its parent: ECHILD, ignored). */
    if (job->pid > 0)
        waitpid((pid_t)job->pid, NULL, WNOHANG);
    int status = 0;
    int ended = read_exit(env, &status) == 0;
    if (!ended && job->pid > 0 && (!group_ours((pid_t)job->pid, env) || !group_alive((pid_t)job->pid)))
        ended = read_exit(env, &status) == 0 ? 1 : -1; /* it may have ended between the two looks */
    read_log(env, job, ended != 0, cb, ctx);
    if (ended == 0)
        return 0;
    /* The wrapper ends right after its exit file: reaped here when this process is its parent (else ECHILD at
     * once), so that a long-running gyre keeps no zombie per job.  Bounded: 1 s. */
    for (int i = 0; job->pid > 0 && i < 100; i++) {
        if (waitpid((pid_t)job->pid, NULL, WNOHANG) != 0)
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (ended < 0) {
        job->model[0] = '\0';
        snprintf(job->error, sizeof(job->error),
                 "the command's process group %ld is gone without an exit status (killed, or the machine restarted)",
                 job->pid);
        gyre_train_set_status(job, "failed");
    } else if (status == 0) {
        if (job->model[0] == '\0')
            snprintf(job->model, sizeof(job->model), "%s/out", env->work_dir);
        job->progress = 1;
        gyre_train_set_status(job, "succeeded");
    } else {
        char last[400];
        last_line(env, last, sizeof(last));
        job->model[0] = '\0';
        snprintf(job->error, sizeof(job->error), "the command exited with status %d%s%s", status,
                 last[0] != '\0' ? ": " : "", last);
        gyre_train_set_status(job, "failed");
    }
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int command_cancel(const gyre_train_env_t *env, gyre_train_job_t *job, char *err, size_t errlen)
{
    int rc = 0;
    if (job->pid > 0 && !group_ours((pid_t)job->pid, env)) {
        /* Not the job's any more: nothing of it is left to stop. */
    } else if (job->pid > 0 && kill(-(pid_t)job->pid, SIGTERM) == 0) {
        /* The group has the grace period to end; what is left of it then is killed. */
        int64_t until = mono_ms() + COMMAND_TERM_GRACE_MS;
        for (;;) {
            waitpid((pid_t)job->pid, NULL, WNOHANG);
            if (!group_alive((pid_t)job->pid))
                break;
            if (mono_ms() >= until) {
                kill(-(pid_t)job->pid, SIGKILL);
                waitpid((pid_t)job->pid, NULL, 0);
                break;
            }
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    } else if (job->pid > 0 && errno != ESRCH) {
        rc = -errno;
        snprintf(err, errlen, "cannot stop the command's process group %ld: %s", job->pid, strerror(errno));
    }
    if (rc == 0) {
        job->model[0] = '\0';
        gyre_train_set_status(job, "cancelled");
    }
    return rc;
}

const gyre_train_backend_t gyre_train_command = {"command", command_start, command_poll, command_cancel};
