/*
 * Reading datasets (dataset.h): where they are, the listing and one file.
 * The listing reads only each manifest's first line (id, created, totals),
 * so it stays cheap however large the provenance below it is.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/alloc.h"
#include "loop/dataset.h"

/* A manifest's first line (id, created and the totals) is at most this long (dataset.c writes it). */
#define MANIFEST_HEAD_MAX ((size_t)64 << 10)

const char *gyre_dataset_dir(const gyre_config_t *c, char *buf, size_t len)
{
    if (c->datasets_dir != NULL) {
        snprintf(buf, len, "%s", c->datasets_dir);
        return buf;
    }
    if (c->store_sqlite == NULL)
        return NULL;
    snprintf(buf, len, "%s.datasets", c->store_sqlite);
    return buf;
}

int gyre_dataset_id_valid(const char *id, size_t len)
{
    if (len != 32)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* The manifest's first line as a JSON object (its trailing ',' closed), or NULL. */
static cJSON *read_head(const char *dir, const char *id)
{
    char p[4096 + 64];
    snprintf(p, sizeof(p), "%s/%s/manifest.json", dir, id);
    FILE *f = fopen(p, "rb");
    if (f == NULL)
        return NULL;
    char *line = gyre_malloc(MANIFEST_HEAD_MAX + 1);
    cJSON *o = NULL;
    if (fgets(line, (int)MANIFEST_HEAD_MAX, f) != NULL) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ','))
            n--;
        line[n++] = '}';
        o = cJSON_ParseWithLength(line, n);
    }
    free(line);
    fclose(f);
    return o;
}

typedef struct listed {
    char id[33];
    char *created;
    cJSON *head;
} listed_t;

static int cmp_listed(const void *a, const void *b)
{
    const listed_t *x = a, *y = b;
    int c = strcmp(y->created, x->created); /* newest first */
    return c != 0 ? c : strcmp(x->id, y->id);
}

int gyre_dataset_list_json(const char *dir, gyre_buf_t *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL && errno != ENOENT) {
        int e = errno;
        gyre_errf(err, errlen, "datasets: cannot read %s: %s", dir, strerror(e));
        return -e;
    }
    listed_t *v = NULL;
    size_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (!gyre_dataset_id_valid(e->d_name, strlen(e->d_name)))
            continue;
        cJSON *head = read_head(dir, e->d_name);
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(head, "created");
        if (!cJSON_IsString(created)) {
            cJSON_Delete(head);
            continue; /* not a dataset this version wrote */
        }
        v = gyre_realloc(v, (n + 1) * sizeof(*v));
        memcpy(v[n].id, e->d_name, 32); /* an id: 32 hex digits (checked above) */
        v[n].id[32] = '\0';
        v[n].created = created->valuestring;
        v[n].head = head;
        n++;
    }
    if (d != NULL)
        closedir(d);
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_listed);
    gyre_buf_appends(out, "{\"datasets\":[");
    for (size_t i = 0; i < n; i++) {
        char *s = cJSON_PrintUnformatted(v[i].head);
        gyre_buf_appends(out, i ? "," : "");
        gyre_buf_appends(out, s != NULL ? s : "{}");
        cJSON_free(s);
        cJSON_Delete(v[i].head);
    }
    free(v);
    gyre_buf_appends(out, "]}");
    if (gyre_buf_failed(out)) {
        gyre_errf(err, errlen, "datasets: the list is over its bound");
        return -E2BIG;
    }
    return 0;
}

int gyre_dataset_read_file(const char *dir, const char *id, const char *file, gyre_buf_t *out, char *err,
                           size_t errlen)
{
    int known = strcmp(file, "manifest.json") == 0;
    for (int i = 0; i < GYRE_DATASET_NFILES; i++)
        known |= strcmp(file, gyre_dataset_files[i]) == 0;
    if (!known || !gyre_dataset_id_valid(id, strlen(id))) {
        gyre_errf(err, errlen, "no dataset file %.40s/%.40s", id, file);
        return -ENOENT;
    }
    char p[4096 + 64];
    snprintf(p, sizeof(p), "%s/%s/%s", dir, id, file);
    struct stat st;
    if (stat(p, &st) != 0) {
        gyre_errf(err, errlen, "no dataset '%s'", id);
        return -ENOENT;
    }
    if ((uint64_t)st.st_size > out->max - out->len) {
        gyre_errf(err, errlen, "%s is %lld bytes, over the %zu-byte bound of one answer", file, (long long)st.st_size,
                out->max);
        return -E2BIG;
    }
    int r = gyre_buf_append_file(out, p);
    if (r != 0)
        gyre_errf(err, errlen, "reading %s: %s", p, strerror(-r));
    return r;
}
