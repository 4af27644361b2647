/*
 * libFuzzer driver for the training backends (src/loop/train*.c) and the form
 * composer of otlp/httpc: the first byte picks the target, the rest is the
 * input.
 *   0-3  the services' answers: OpenAI's job and event page, Together's job and
 *        event page.  Check: a job that parses has a known status, a nonempty
 *        id, and a text with no control byte in its error and model.
 *   4    the job's JSON: what gyre_train_job_from_json accepts comes back
 *        byte for byte from gyre_train_job_json (the round trip is exact).
 *   5    multipart/form-data: parts split at NUL (name, filename, data, ...).
 *        Check: the boundary occurs in no part, and the body starts with it.
 *   6    the command template with hostile values.  Check: the composed line
 *        never holds a value's quote unescaped (each ' appears as '\'').
 *   7    the job requests with the conf's strings from the input.  Check: the
 *        body is JSON that cJSON reads back.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/train.h"
#include "loop/train_int.h"
#include "otlp/httpc.h"

static void ignore_cb(void *ctx, int64_t at_us, const char *level, const char *message)
{
    (void)ctx;
    (void)at_us;
    if (strlen(level) >= 16 || strlen(message) >= 1024)
        abort();
}

static void check_job(const gyre_train_job_t *j)
{
    if (j->id[0] == '\0')
        abort();
    if (strcmp(j->status, "queued") != 0 && strcmp(j->status, "running") != 0 && !gyre_train_job_done(j))
        abort();
    for (const char *p = j->error; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            abort();
    for (const char *p = j->model; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            abort();
}

/* The next NUL-terminated piece of in[*at, size): its start and length. */
static const char *piece(const char *in, size_t size, size_t *at, size_t *len)
{
    if (*at > size)
        return NULL;
    const char *p = in + *at, *nul = memchr(p, '\0', size - *at);
    *len = nul != NULL ? (size_t)(nul - p) : size - *at;
    *at += *len + 1;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int target = data[0] % 8;
    size--;
    /* A NUL-terminated copy of exactly the input, so that a read past the end is caught. */
    char *in = malloc(size + 1);
    memcpy(in, data + 1, size);
    in[size] = '\0';
    char err[512];
    gyre_train_job_t job;
    memset(&job, 0, sizeof(job));
    job.progress = -1;
    gyre_buf_t b, b2;
    gyre_buf_init(&b, 1 << 20);
    gyre_buf_init(&b2, 1 << 20);
    switch (target) {
    case 0:
        if (gyre_train_openai_parse_job(in, size, &job, err, sizeof(err)) == 0)
            check_job(&job);
        break;
    case 1:
        strcpy(job.cursor, "ev-2");
        gyre_train_openai_parse_events(in, size, &job, ignore_cb, NULL);
        if (!(job.progress == -1 || (job.progress >= 0 && job.progress <= 1)))
            abort();
        break;
    case 2:
        if (gyre_train_together_parse_job(in, size, &job, err, sizeof(err)) == 0)
            check_job(&job);
        break;
    case 3:
        strcpy(job.cursor, "1");
        gyre_train_together_parse_events(in, size, &job, ignore_cb, NULL);
        if (!(job.progress == -1 || (job.progress >= 0 && job.progress <= 1)))
            abort();
        break;
    case 4:
        if (gyre_train_job_from_json(in, size, &job) == 0) {
            gyre_train_job_t again;
            gyre_train_job_json(&job, &b);
            if (gyre_train_job_from_json(b.base, b.len, &again) != 0)
                abort();
            gyre_train_job_json(&again, &b2);
            if (b.len != b2.len || memcmp(b.base, b2.base, b.len) != 0)
                abort();
        }
        break;
    case 5: {
        gyre_httpc_part_t parts[4];
        char *names[4] = {0}, *files[4] = {0};
        size_t at = 0, n = 0, len;
        const char *p;
        while (n < 4 && (p = piece(in, size, &at, &len)) != NULL) {
            names[n] = strndup(p, len);
            const char *f = piece(in, size, &at, &len);
            files[n] = f != NULL && len > 0 ? strndup(f, len) : NULL;
            const char *d = piece(in, size, &at, &len);
            parts[n] = (gyre_httpc_part_t){names[n], files[n], NULL, d != NULL ? d : "", d != NULL ? len : 0};
            n++;
        }
        char ct[128];
        if (gyre_httpc_multipart(parts, n, &b, ct, sizeof(ct), err, sizeof(err)) == 0) {
            const char *boundary = strstr(ct, "boundary=") + 9;
            for (size_t i = 0; i < n; i++)
                if (parts[i].len != 0 && memmem(parts[i].data, parts[i].len, boundary, strlen(boundary)) != NULL)
                    abort();
            if (b.len < 2 + strlen(boundary) || memcmp(b.base + 2, boundary, strlen(boundary)) != 0)
                abort();
        }
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
            free(files[i]);
        }
        break;
    }
    case 6: {
        gyre_train_vars_t v = {"/d/it's", "/h h", "/p'p'", "/o", "/d", "r"};
        if (gyre_train_command_compose(in, &v, &b, err, sizeof(err)) == 0) {
            /* Each value's quote appears escaped; the template's own bytes are its author's. */
            int placed = 0;
            for (const char *t = strstr(in, "{train}"); t != NULL && !placed; t = strstr(t + 1, "{train}"))
                placed = t == in || t[-1] != '$';
            if (placed && strstr(b.base, "'/d/it'\\''s'") == NULL)
                abort();
        }
        break;
    }
    case 7: {
        size_t at = 0, len;
        char *s[3] = {0};
        for (int i = 0; i < 3; i++) {
            const char *p = piece(in, size, &at, &len);
            s[i] = p != NULL ? strndup(p, len) : NULL;
        }
        gyre_train_conf_t c = {0};
        c.base_model = s[0];
        c.suffix = s[1];
        c.method = s[2];
        c.epochs = 3;
        c.learning_rate = 1e-5;
        for (int k = 0; k < 2; k++) {
            gyre_buf_reset(&b);
            int rc = k == 0 ? gyre_train_openai_request(&c, "file-1", s[1], &b)
                            : gyre_train_together_request(&c, "file-1", s[1], &b);
            if (rc == 0) {
                cJSON *o = cJSON_ParseWithLength(b.base, b.len);
                if (!cJSON_IsObject(o))
                    abort();
                cJSON_Delete(o);
            }
        }
        for (int i = 0; i < 3; i++)
            free(s[i]);
        break;
    }
    }
    gyre_buf_dispose(&b);
    gyre_buf_dispose(&b2);
    free(in);
    return 0;
}
