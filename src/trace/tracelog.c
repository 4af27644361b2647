/* The segmented trace log (see tracelog.h for the format and the rules). */
#include "trace/tracelog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zdict.h>
#include <zlib.h>
#include <zstd.h>

#include "common/err.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/zstd.h"
#include "trace/spool.h"

static const uint8_t SYNC[4] = {0xF7, 0x47, 0x4C, 0x52};

/* How far a resynchronising reader reads at a time while it scans for the next sync. */
#define SCAN_CHUNK ((size_t)64 << 10)

typedef struct seg {
    uint64_t seq;
    uint64_t bytes; /* closed: the file's size; the active one: see l->end */
    int64_t mtime_us;
} seg_t;

struct gyre_tracelog {
    char *dir;
    int lock_fd;
    int readonly;
    gyre_tracelog_config_t cfg;

    pthread_mutex_t mu; /* guards segs, nsegs, active_seq, closed_bytes */
    seg_t *segs;
    size_t nsegs, cap;
    uint64_t active_seq;   /* 0: no active segment (read-only, or it could not be created) */
    uint64_t closed_bytes; /* the closed segments' bytes together */
    _Atomic uint64_t end;  /* the active segment's size: every byte before it is a whole record */

    /* The appender's own. */
    int fd;
    int dirty;
    uint64_t next_seq;
    uint64_t retry_after_ms; /* when a segment could not be created: do not try on every append */
    gyre_zstd_t *zstd;
    gyre_buf_t payload, rec;

    /* The dictionary (tracelog.h): samples kept by the appender, trained by a helper thread. */
    int dict_on;
    gyre_buf_t samples;
    size_t *sample_sizes, nsamples;
    pthread_t trainer;
    int trainer_started;
    _Atomic int dict_ready; /* 0 collecting or training, 1 trained (dict, dict_len set), -1 failed */
    void *dict;
    size_t dict_len;
    ZSTD_CDict *cdict; /* the appender's, once it took the trained dictionary */
    ZSTD_CCtx *cctx;
    int seg_has_dict;  /* the active segment starts with the dictionary */

    _Atomic uint64_t appended, refused_bound, refused_io;
    _Atomic int last_errno;
    _Atomic uint64_t dmg_regions, dmg_bytes, dmg_headers, dmg_seq, dmg_off;
};

struct gyre_tracelog_reader {
    gyre_tracelog_t *l;
    int fd;
    uint64_t fd_seq; /* the segment fd is open on */
    gyre_buf_t rec, plain;
    gyre_zstd_t *zstd;
    uint8_t *scan;
    ZSTD_DDict *ddict;    /* the dictionary of segment ddict_seq */
    uint64_t ddict_seq;
    int ddict_looked;     /* the head of fd_seq was searched for one */
    ZSTD_DCtx *dctx;
};

/* ---- small helpers ---- */

static void le32(uint8_t *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *d, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *s)
{
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

static uint32_t crc_of(uint32_t crc, const void *p, size_t n)
{
    const Bytef *b = p;
    while (n > 0) {
        uInt chunk = n > UINT_MAX ? UINT_MAX : (uInt)n;
        crc = (uint32_t)crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t unix_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void seg_path(const gyre_tracelog_t *l, uint64_t seq, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%016" PRIx64 ".seg", l->dir, seq);
}

/* Parses "%016llx.seg"; 0 when the name is not a segment's. */
static uint64_t seg_seq_of(const char *name)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    return v;
}

static int seg_cmp_cb(const void *a, const void *b)
{
    const seg_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void segs_push(gyre_tracelog_t *l, seg_t s)
{
    if (l->nsegs == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->segs = gyre_realloc(l->segs, l->cap * sizeof(*l->segs));
    }
    l->segs[l->nsegs++] = s;
}

/* ---- the record ---- */

/* Fills the 16-byte header at rec->base for the payload after it. */
static void seal_record(gyre_buf_t *rec, uint8_t type, uint8_t codec)
{
    size_t plen = rec->len - GYRE_TRACELOG_RECORD_HEADER_SIZE;
    uint8_t *p = (uint8_t *)rec->base;
    memcpy(p, SYNC, 4);
    le32(p + 4, (uint32_t)plen);
    p[8] = type;
    p[9] = codec;
    p[10] = p[11] = 0;
    le32(p + 12, crc_of(crc_of(0, p + 4, 8), p + GYRE_TRACELOG_RECORD_HEADER_SIZE, plen));
}

/* Builds the whole record of `t` in `rec` (its payload in `payload`), with the dictionary when cdict is set. */
static int encode_record(gyre_buf_t *payload, gyre_buf_t *rec, gyre_zstd_t *z, ZSTD_CCtx *cctx,
                         const ZSTD_CDict *cdict, const gyre_trace_t *t)
{
    gyre_buf_reset(payload);
    gyre_buf_reset(rec);
    int rc = gyre_spool_encode_payload(t, payload);
    if (rc != 0)
        return rc;
    uint8_t h[GYRE_TRACELOG_RECORD_HEADER_SIZE] = {0};
    if ((rc = gyre_buf_append(rec, h, sizeof(h))) != 0)
        return rc;
    uint8_t codec = GYRE_TRACELOG_CODEC_RAW;
    size_t bound = ZSTD_compressBound(payload->len);
    if (cdict != NULL && gyre_buf_reserve(rec, bound) == 0) {
        size_t n = ZSTD_compress_usingCDict(cctx, rec->base + rec->len, bound, payload->base, payload->len, cdict);
        if (!ZSTD_isError(n) && n < payload->len) {
            rec->len += n;
            seal_record(rec, GYRE_TRACELOG_TYPE_TRACE, GYRE_TRACELOG_CODEC_ZSTD_DICT);
            return 0;
        }
    }
    /* Compressed when it helps: a tiny trace stays as it is. */
    if (z != NULL && gyre_zstd_compress(z, rec, payload->base, payload->len) == 0 &&
        rec->len - sizeof(h) < payload->len) {
        codec = GYRE_TRACELOG_CODEC_ZSTD;
    } else {
        rec->len = sizeof(h);
        if ((rc = gyre_buf_append(rec, payload->base, payload->len)) != 0)
            return rc;
    }
    if (rec->len - sizeof(h) > GYRE_TRACELOG_RECORD_MAX)
        return -E2BIG;
    seal_record(rec, GYRE_TRACELOG_TYPE_TRACE, codec);
    return 0;
}

int gyre_tracelog_encode(const gyre_trace_t *t, int zstd_level, gyre_buf_t *out_buf)
{
    gyre_buf_t payload;
    gyre_buf_init(&payload, GYRE_TRACELOG_RECORD_MAX);
    gyre_zstd_t *z = zstd_level >= 0 ? gyre_zstd_create(zstd_level ? zstd_level : 1) : NULL;
    gyre_buf_t rec;
    gyre_buf_init(&rec, GYRE_TRACELOG_RECORD_MAX + GYRE_TRACELOG_RECORD_HEADER_SIZE);
    int rc = encode_record(&payload, &rec, z, NULL, NULL, t);
    if (rc == 0)
        rc = gyre_buf_append(out_buf, rec.base, rec.len);
    gyre_buf_dispose(&payload);
    gyre_buf_dispose(&rec);
    gyre_zstd_destroy(z);
    return rc;
}

/* ---- open, segments ---- */

void gyre_tracelog_dir_for(const char *log, const char *store, char *buf, size_t len)
{
    if (log != NULL && log[0] != '\0')
        snprintf(buf, len, "%s", log);
    else
        snprintf(buf, len, "%s.log", store);
}

/* Creates segment next_seq and makes it the active one; a negative errno (logged by the caller) when the
 * directory refuses it. */
static int new_segment(gyre_tracelog_t *l)
{
    char path[4096];
    uint64_t seq = l->next_seq;
    seg_path(l, seq, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    uint8_t h[GYRE_TRACELOG_SEGMENT_HEADER_SIZE] = {0};
    memcpy(h, GYRE_TRACELOG_SEGMENT_MAGIC, 8);
    le64(h + 8, seq);
    le64(h + 16, (uint64_t)unix_us());
    h[24] = 1;
    le32(h + 28, crc_of(0, h, 28));
    int rc = gyre_pwrite_full(fd, h, sizeof(h), 0);
    uint64_t end = sizeof(h);
    if (rc == 0 && l->cdict != NULL) {
        /* The dictionary, twice, at the head: the segment's records need it, and one copy could go bad. */
        gyre_buf_t d;
        gyre_buf_init(&d, GYRE_TRACELOG_DICT_MAX + GYRE_TRACELOG_RECORD_HEADER_SIZE);
        uint8_t rh[GYRE_TRACELOG_RECORD_HEADER_SIZE] = {0};
        gyre_buf_append(&d, rh, sizeof(rh));
        gyre_buf_append(&d, l->dict, l->dict_len);
        seal_record(&d, GYRE_TRACELOG_TYPE_DICT, GYRE_TRACELOG_CODEC_RAW);
        for (int copy = 0; copy < 2 && rc == 0; copy++, end += d.len)
            rc = gyre_pwrite_full(fd, d.base, d.len, end);
        gyre_buf_dispose(&d);
    }
    if (rc != 0) {
        close(fd);
        unlink(path);
        return rc;
    }
    l->seg_has_dict = l->cdict != NULL;
    pthread_mutex_lock(&l->mu);
    if (l->active_seq != 0) {
        /* The old active segment is closed now: its size is final. */
        for (size_t i = 0; i < l->nsegs; i++)
            if (l->segs[i].seq == l->active_seq) {
                l->segs[i].bytes = atomic_load(&l->end);
                l->segs[i].mtime_us = unix_us();
                l->closed_bytes += l->segs[i].bytes;
            }
    }
    segs_push(l, (seg_t){seq, 0, unix_us()});
    l->active_seq = seq;
    atomic_store_explicit(&l->end, end, memory_order_release);
    pthread_mutex_unlock(&l->mu);
    if (l->fd >= 0) {
        if (l->dirty)
            fdatasync(l->fd);
        close(l->fd);
    }
    l->fd = fd;
    l->dirty = 1;
    l->next_seq = seq + 1;
    return 0;
}

int gyre_tracelog_open(const char *dir, const gyre_tracelog_config_t *cfg, int flags, gyre_tracelog_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    int readonly = (flags & GYRE_TRACELOG_READONLY) != 0;
    if (!readonly && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        gyre_errf(err, errlen, "trace log %s: creating the directory: %s", dir, strerror(e));
        return -e;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        int e = errno;
        gyre_errf(err, errlen, "trace log %s: %s", dir, strerror(e));
        return -e;
    }
    gyre_tracelog_t *l = gyre_calloc(1, sizeof(*l));
    l->dir = gyre_strdup(dir);
    l->lock_fd = -1;
    l->fd = -1;
    l->readonly = readonly;
    l->cfg = cfg != NULL ? *cfg : (gyre_tracelog_config_t){0};
    if (l->cfg.max_bytes == 0)
        l->cfg.max_bytes = GYRE_TRACELOG_DEFAULT_MAX_BYTES;
    if (l->cfg.segment_bytes == 0) {
        l->cfg.segment_bytes = GYRE_TRACELOG_DEFAULT_SEGMENT_BYTES;
        if (l->cfg.segment_bytes > l->cfg.max_bytes / 8)
            l->cfg.segment_bytes = l->cfg.max_bytes / 8;
    }
    if (l->cfg.segment_bytes < 4096)
        l->cfg.segment_bytes = 4096;
    /* The checkpoint keeps an offset in 32 bits. */
    if (l->cfg.segment_bytes > ((uint64_t)1 << 30))
        l->cfg.segment_bytes = (uint64_t)1 << 30;
    pthread_mutex_init(&l->mu, NULL);
    gyre_buf_init(&l->payload, GYRE_TRACELOG_RECORD_MAX);
    gyre_buf_init(&l->rec, GYRE_TRACELOG_RECORD_MAX + GYRE_TRACELOG_RECORD_HEADER_SIZE);
    if (l->cfg.zstd_level >= 0)
        l->zstd = gyre_zstd_create(l->cfg.zstd_level != 0 ? l->cfg.zstd_level : 1);
    if (l->cfg.dict_samples == 0)
        l->cfg.dict_samples = 2000;
    if (l->cfg.dict_bytes == 0 || l->cfg.dict_bytes > GYRE_TRACELOG_DICT_MAX)
        l->cfg.dict_bytes = 64 << 10;
    /* A dictionary is worth its two copies per segment only in segments much larger than it. */
    l->dict_on = !readonly && l->cfg.zstd_level >= 0 &&
                 (l->cfg.dict > 0 || (l->cfg.dict == 0 && l->cfg.segment_bytes >= ((uint64_t)4 << 20)));
    if (l->dict_on) {
        gyre_buf_init(&l->samples, (size_t)16 << 20);
        l->sample_sizes = gyre_calloc(l->cfg.dict_samples, sizeof(*l->sample_sizes));
    }

    int rc = 0;
    if (!readonly) {
        char lock[4096];
        snprintf(lock, sizeof(lock), "%s/LOCK", dir);
        l->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (l->lock_fd < 0 && errno != EROFS && errno != EACCES) {
            rc = -errno;
            gyre_errf(err, errlen, "trace log %s: %s: %s", dir, lock, strerror(-rc));
            goto out;
        }
        if (l->lock_fd >= 0 && flock(l->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
            gyre_errf(err, errlen, "trace log %s: another gyre has it open (%s)", dir, strerror(-rc));
            goto out;
        }
    }
    uint64_t maxseq = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        uint64_t seq = seg_seq_of(e->d_name);
        if (seq == 0)
            continue;
        char path[4096];
        seg_path(l, seq, path, sizeof(path));
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (seq > maxseq)
            maxseq = seq;
        /* A segment with no record (a start that wrote nothing) is left out, and removed when we may. */
        if ((uint64_t)st.st_size <= GYRE_TRACELOG_SEGMENT_HEADER_SIZE && !readonly) {
            unlink(path);
            continue;
        }
        segs_push(l, (seg_t){seq, (uint64_t)st.st_size,
                             (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000});
        l->closed_bytes += (uint64_t)st.st_size;
    }
    if (l->nsegs > 1)
        qsort(l->segs, l->nsegs, sizeof(*l->segs), seg_cmp_cb);
    l->next_seq = maxseq + 1;
    if (!readonly) {
        int r = new_segment(l);
        if (r != 0) {
            /* Not fatal: gyre serves traffic and says why traces are not kept (tracelog.h). */
            atomic_store(&l->last_errno, -r);
            l->retry_after_ms = mono_ms() + 1000;
            gyre_logf("gyre: trace log %s: cannot create a segment: %s; traces are DROPPED until it can\n", dir,
                      strerror(-r));
        }
    }
out:
    closedir(d);
    if (rc != 0) {
        gyre_tracelog_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

void gyre_tracelog_close(gyre_tracelog_t *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0) {
        if (l->dirty)
            fdatasync(l->fd);
        close(l->fd);
    }
    if (l->lock_fd >= 0)
        close(l->lock_fd);
    if (l->trainer_started)
        pthread_join(l->trainer, NULL);
    pthread_mutex_destroy(&l->mu);
    gyre_buf_dispose(&l->payload);
    gyre_buf_dispose(&l->rec);
    gyre_buf_dispose(&l->samples);
    free(l->sample_sizes);
    free(l->dict);
    ZSTD_freeCDict(l->cdict);
    ZSTD_freeCCtx(l->cctx);
    gyre_zstd_destroy(l->zstd);
    free(l->segs);
    free(l->dir);
    free(l);
}

const char *gyre_tracelog_dir(const gyre_tracelog_t *l)
{
    return l->dir;
}

/* ---- the dictionary ---- */

static void *train_main(void *arg)
{
    gyre_tracelog_t *l = arg;
    /* Seconds of CPU at most, once a run: below the workers, like the indexer. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0) {
        /* Best effort: it then trains at the workers' priority. */
    }
    void *dict = gyre_malloc(l->cfg.dict_bytes);
    size_t n = ZDICT_trainFromBuffer(dict, l->cfg.dict_bytes, l->samples.base, l->sample_sizes,
                                     (unsigned)l->nsamples);
    if (ZDICT_isError(n)) {
        gyre_logf("gyre: trace log %s: training a compression dictionary failed (%s); records stay compressed one "
                  "by one\n",
                  l->dir, ZDICT_getErrorName(n));
        free(dict);
        atomic_store_explicit(&l->dict_ready, -1, memory_order_release);
        return NULL;
    }
    l->dict = dict;
    l->dict_len = n;
    atomic_store_explicit(&l->dict_ready, 1, memory_order_release);
    return NULL;
}

/* The appender's part: keeps samples, starts the training, and takes the dictionary once it is ready. */
static void dict_step(gyre_tracelog_t *l)
{
    if (!l->dict_on || l->cdict != NULL)
        return;
    if (!l->trainer_started) {
        if (l->nsamples < l->cfg.dict_samples && gyre_buf_append(&l->samples, l->payload.base, l->payload.len) == 0)
            l->sample_sizes[l->nsamples++] = l->payload.len;
        else if (l->nsamples < l->cfg.dict_samples)
            l->cfg.dict_samples = l->nsamples; /* the sample buffer is full: train on what it holds */
        if (l->nsamples == l->cfg.dict_samples) {
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            l->trainer_started = pthread_create(&l->trainer, NULL, train_main, l) == 0;
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (!l->trainer_started)
                l->dict_on = 0;
        }
        return;
    }
    if (atomic_load_explicit(&l->dict_ready, memory_order_acquire) != 1)
        return;
    l->cdict = ZSTD_createCDict(l->dict, l->dict_len, l->cfg.zstd_level != 0 ? l->cfg.zstd_level : 1);
    l->cctx = ZSTD_createCCtx();
    if (l->cdict == NULL || l->cctx == NULL) {
        ZSTD_freeCDict(l->cdict);
        l->cdict = NULL;
        l->dict_on = 0;
        return;
    }
    /* A new segment, so that the dictionary is at its head. */
    if (new_segment(l) != 0)
        l->seg_has_dict = 0;
    gyre_buf_dispose(&l->samples);
}

int gyre_tracelog_dict_state(gyre_tracelog_t *l)
{
    if (l->cdict != NULL)
        return 1;
    return atomic_load(&l->dict_ready) < 0 ? -1 : 0;
}

/* ---- append ---- */

int gyre_tracelog_append(gyre_tracelog_t *l, const gyre_trace_t *t)
{
    if (l->readonly)
        return -EROFS;
    int rc = encode_record(&l->payload, &l->rec, l->zstd, l->cctx, l->seg_has_dict ? l->cdict : NULL, t);
    if (rc != 0) {
        atomic_fetch_add(&l->refused_io, 1);
        return rc;
    }
    if (l->dict_on && l->cdict == NULL) {
        dict_step(l);
        if (l->seg_has_dict) {
            /* The dictionary just arrived and this trace opens the segment that carries it. */
            if ((rc = encode_record(&l->payload, &l->rec, l->zstd, l->cctx, l->cdict, t)) != 0) {
                atomic_fetch_add(&l->refused_io, 1);
                return rc;
            }
        }
    }
    size_t n = l->rec.len;
    uint64_t end = atomic_load(&l->end);
    if (l->fd < 0 || (end + n > l->cfg.segment_bytes && end > GYRE_TRACELOG_SEGMENT_HEADER_SIZE)) {
        if (l->fd < 0 && mono_ms() < l->retry_after_ms) {
            atomic_fetch_add(&l->refused_io, 1);
            return -atomic_load(&l->last_errno);
        }
        if ((rc = new_segment(l)) != 0) {
            l->retry_after_ms = mono_ms() + 1000;
            atomic_store(&l->last_errno, -rc);
            atomic_fetch_add(&l->refused_io, 1);
            /* With no new segment, the old one grows past its size rather than lose the trace. */
            if (l->fd < 0)
                return rc;
        }
        end = atomic_load(&l->end);
    }
    pthread_mutex_lock(&l->mu);
    uint64_t total = l->closed_bytes + end;
    pthread_mutex_unlock(&l->mu);
    if (total + n > l->cfg.max_bytes) {
        atomic_fetch_add(&l->refused_bound, 1);
        atomic_store(&l->last_errno, EFBIG);
        return -EFBIG;
    }
    if ((rc = gyre_pwrite_full(l->fd, l->rec.base, n, end)) != 0) {
        /* A full disk or an I/O error part-way: cut the partial record so the segment stays whole. */
        if (ftruncate(l->fd, (off_t)end) != 0) {
            /* The partial record stays; a reader skips it as a bad region. */
        }
        atomic_fetch_add(&l->refused_io, 1);
        atomic_store(&l->last_errno, -rc);
        return rc;
    }
    atomic_store_explicit(&l->end, end + n, memory_order_release);
    atomic_fetch_add(&l->appended, 1);
    atomic_store(&l->last_errno, 0);
    l->dirty = 1;
    return 0;
}

int gyre_tracelog_sync(gyre_tracelog_t *l)
{
    if (!l->dirty || l->fd < 0)
        return 0;
    if (fdatasync(l->fd) != 0)
        return -errno;
    l->dirty = 0;
    return 0;
}

gyre_tracelog_pos_t gyre_tracelog_end(gyre_tracelog_t *l)
{
    pthread_mutex_lock(&l->mu);
    gyre_tracelog_pos_t p;
    if (l->active_seq != 0)
        p = (gyre_tracelog_pos_t){l->active_seq, atomic_load_explicit(&l->end, memory_order_acquire)};
    else if (l->nsegs != 0)
        p = (gyre_tracelog_pos_t){l->segs[l->nsegs - 1].seq, l->segs[l->nsegs - 1].bytes};
    else
        p = (gyre_tracelog_pos_t){l->next_seq, GYRE_TRACELOG_SEGMENT_HEADER_SIZE};
    pthread_mutex_unlock(&l->mu);
    return p;
}

gyre_tracelog_pos_t gyre_tracelog_start(gyre_tracelog_t *l)
{
    pthread_mutex_lock(&l->mu);
    gyre_tracelog_pos_t p = {l->nsegs != 0 ? l->segs[0].seq : l->next_seq, GYRE_TRACELOG_SEGMENT_HEADER_SIZE};
    pthread_mutex_unlock(&l->mu);
    return p;
}

size_t gyre_tracelog_segments(gyre_tracelog_t *l, gyre_tracelog_segment_info_t *info, size_t max)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->nsegs;
    for (size_t i = 0; i < n && i < max; i++) {
        info[i].seq = l->segs[i].seq;
        info[i].bytes = l->segs[i].seq == l->active_seq ? atomic_load(&l->end) : l->segs[i].bytes;
        info[i].mtime_us = l->segs[i].seq == l->active_seq ? unix_us() : l->segs[i].mtime_us;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

int gyre_tracelog_remove(gyre_tracelog_t *l, uint64_t seq)
{
    pthread_mutex_lock(&l->mu);
    int rc = -ENOENT;
    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i].seq != seq)
            continue;
        if (seq == l->active_seq) {
            rc = -EBUSY;
            break;
        }
        char path[4096];
        seg_path(l, seq, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = -errno;
            break;
        }
        l->closed_bytes -= l->segs[i].bytes;
        memmove(&l->segs[i], &l->segs[i + 1], (l->nsegs - i - 1) * sizeof(*l->segs));
        l->nsegs--;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void gyre_tracelog_stats(gyre_tracelog_t *l, gyre_tracelog_stats_t *st)
{
    pthread_mutex_lock(&l->mu);
    st->segments = l->nsegs;
    st->bytes = l->closed_bytes + (l->active_seq != 0 ? atomic_load(&l->end) : 0);
    pthread_mutex_unlock(&l->mu);
    st->appended = atomic_load(&l->appended);
    st->refused_bound = atomic_load(&l->refused_bound);
    st->refused_io = atomic_load(&l->refused_io);
    st->last_errno = atomic_load(&l->last_errno);
}

uint64_t gyre_tracelog_bytes_after(gyre_tracelog_t *l, gyre_tracelog_pos_t pos)
{
    uint64_t n = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nsegs; i++) {
        uint64_t size = l->segs[i].seq == l->active_seq ? atomic_load(&l->end) : l->segs[i].bytes;
        if (l->segs[i].seq > pos.seq)
            n += size - GYRE_TRACELOG_SEGMENT_HEADER_SIZE;
        else if (l->segs[i].seq == pos.seq && size > pos.off)
            n += size - pos.off;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

void gyre_tracelog_damage(gyre_tracelog_t *l, gyre_tracelog_damage_t *d)
{
    d->regions = atomic_load(&l->dmg_regions);
    d->bytes = atomic_load(&l->dmg_bytes);
    d->bad_headers = atomic_load(&l->dmg_headers);
    d->last_seq = atomic_load(&l->dmg_seq);
    d->last_off = atomic_load(&l->dmg_off);
}

/* ---- read ---- */

gyre_tracelog_reader_t *gyre_tracelog_reader_create(gyre_tracelog_t *l)
{
    gyre_tracelog_reader_t *r = gyre_calloc(1, sizeof(*r));
    r->l = l;
    r->fd = -1;
    gyre_buf_init(&r->rec, GYRE_TRACELOG_RECORD_MAX);
    gyre_buf_init(&r->plain, GYRE_TRACELOG_RECORD_MAX);
    r->zstd = gyre_zstd_create(1);
    r->scan = gyre_malloc(SCAN_CHUNK);
    return r;
}

void gyre_tracelog_reader_destroy(gyre_tracelog_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    gyre_buf_dispose(&r->rec);
    gyre_buf_dispose(&r->plain);
    gyre_zstd_destroy(r->zstd);
    ZSTD_freeDDict(r->ddict);
    ZSTD_freeDCtx(r->dctx);
    free(r->scan);
    free(r);
}

/* Where segment `seq` ends for a reader, and the next segment after it (0: none).  0, or -ENOENT when the
 * segment is gone (retention) with *next set. */
static int seg_limit(gyre_tracelog_t *l, uint64_t seq, uint64_t *limit, uint64_t *next, int *active)
{
    int rc = -ENOENT;
    *next = 0;
    *active = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i].seq == seq) {
            *active = seq == l->active_seq;
            *limit = *active ? atomic_load_explicit(&l->end, memory_order_acquire) : l->segs[i].bytes;
            rc = 0;
        } else if (l->segs[i].seq > seq) {
            *next = l->segs[i].seq;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int reader_open(gyre_tracelog_reader_t *r, uint64_t seq)
{
    if (r->fd >= 0 && r->fd_seq == seq)
        return 0;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    char path[4096];
    seg_path(r->l, seq, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r->fd = fd;
    r->fd_seq = seq;
    r->ddict_looked = 0;
    /* The header is checked for the report only: the records carry their own checks. */
    uint8_t h[GYRE_TRACELOG_SEGMENT_HEADER_SIZE];
    size_t got = 0;
    if (gyre_pread_full(fd, h, sizeof(h), 0, &got) == 0 &&
        (got < sizeof(h) || memcmp(h, GYRE_TRACELOG_SEGMENT_MAGIC, 8) != 0 || crc_of(0, h, 28) != rd32(h + 28))) {
        atomic_fetch_add(&r->l->dmg_headers, 1);
        gyre_logf("gyre: trace log %s: segment %016" PRIx64 ": its header is corrupt; reading its records by their "
                  "own checks\n",
                  r->l->dir, seq);
    }
    return 0;
}

/* Reads and checks the record at `off` (ending by `limit`): 0 with the record in r->rec (header and payload),
 * 1 when it does not check, or a negative errno. */
static int read_at(gyre_tracelog_reader_t *r, uint64_t off, uint64_t limit, size_t *reclen)
{
    uint8_t h[GYRE_TRACELOG_RECORD_HEADER_SIZE];
    size_t got;
    if (off >= limit || limit - off < sizeof(h))
        return 1;
    int rc = gyre_pread_full(r->fd, h, sizeof(h), off, &got);
    if (rc != 0)
        return rc;
    if (got < sizeof(h) || memcmp(h, SYNC, 4) != 0)
        return 1;
    uint32_t len = rd32(h + 4);
    if (len > GYRE_TRACELOG_RECORD_MAX || len > limit - off - sizeof(h) ||
        (h[8] != GYRE_TRACELOG_TYPE_TRACE && h[8] != GYRE_TRACELOG_TYPE_DICT) || h[9] > GYRE_TRACELOG_CODEC_ZSTD_DICT ||
        h[10] != 0 || h[11] != 0)
        return 1;
    gyre_buf_reset(&r->rec);
    if (gyre_buf_reserve(&r->rec, sizeof(h) + len) != 0)
        return 1;
    memcpy(r->rec.base, h, sizeof(h));
    if ((rc = gyre_pread_full(r->fd, r->rec.base + sizeof(h), len, off + sizeof(h), &got)) != 0)
        return rc;
    if (got < len)
        return 1;
    if (crc_of(crc_of(0, h + 4, 8), r->rec.base + sizeof(h), len) != rd32(h + 12))
        return 1;
    r->rec.len = sizeof(h) + len;
    *reclen = sizeof(h) + len;
    return 0;
}

static int read_at(gyre_tracelog_reader_t *r, uint64_t off, uint64_t limit, size_t *reclen);

/* Takes the dictionary in r->rec (a checked type-2 record) as segment fd_seq's. */
static void take_dict(gyre_tracelog_reader_t *r)
{
    ZSTD_freeDDict(r->ddict);
    r->ddict = ZSTD_createDDict(r->rec.base + GYRE_TRACELOG_RECORD_HEADER_SIZE,
                                r->rec.len - GYRE_TRACELOG_RECORD_HEADER_SIZE);
    r->ddict_seq = r->fd_seq;
}

/* Finds the dictionary at the head of segment fd_seq (either copy), when the reader started past it. */
static void find_dict(gyre_tracelog_reader_t *r, uint64_t limit)
{
    r->ddict_looked = 1;
    uint64_t off = GYRE_TRACELOG_SEGMENT_HEADER_SIZE;
    /* The copies are the first two records: a bad first one is skipped by its own length when that reads. */
    for (int i = 0; i < 2; i++) {
        size_t reclen = 0;
        int rc = read_at(r, off, limit, &reclen);
        if (rc == 0 && (uint8_t)r->rec.base[8] == GYRE_TRACELOG_TYPE_DICT) {
            take_dict(r);
            return;
        }
        if (rc == 0)
            return; /* a trace: this segment has no dictionary */
        uint8_t h[8];
        size_t got = 0;
        if (gyre_pread_full(r->fd, h, sizeof(h), off, &got) != 0 || got < sizeof(h))
            return;
        off += GYRE_TRACELOG_RECORD_HEADER_SIZE + rd32(h + 4);
    }
}

/* Decodes r->rec into a view whose strings point into r's buffers; 0 or -EINVAL. */
static int decode_rec(gyre_tracelog_reader_t *r, gyre_trace_t *view)
{
    const uint8_t *p = (const uint8_t *)r->rec.base + GYRE_TRACELOG_RECORD_HEADER_SIZE;
    size_t len = r->rec.len - GYRE_TRACELOG_RECORD_HEADER_SIZE;
    if (r->rec.base[9] == GYRE_TRACELOG_CODEC_ZSTD_DICT) {
        if (r->ddict == NULL || r->ddict_seq != r->fd_seq)
            return -EINVAL;
        unsigned long long size = ZSTD_getFrameContentSize(p, len);
        if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > GYRE_TRACELOG_RECORD_MAX)
            return -EINVAL;
        gyre_buf_reset(&r->plain);
        if (gyre_buf_reserve(&r->plain, (size_t)size) != 0)
            return -EINVAL;
        if (r->dctx == NULL)
            r->dctx = ZSTD_createDCtx();
        size_t n = r->dctx != NULL ? ZSTD_decompress_usingDDict(r->dctx, r->plain.base, (size_t)size, p, len, r->ddict)
                                   : (size_t)-1;
        if (ZSTD_isError(n) || n != size)
            return -EINVAL;
        r->plain.len = n;
        p = (const uint8_t *)r->plain.base;
        len = r->plain.len;
    } else if (r->rec.base[9] == GYRE_TRACELOG_CODEC_ZSTD) {
        gyre_buf_reset(&r->plain);
        if (gyre_zstd_decompress(r->zstd, &r->plain, p, len) != 0)
            return -EINVAL;
        p = (const uint8_t *)r->plain.base;
        len = r->plain.len;
    }
    return gyre_spool_decode(p, len, view);
}

/* The next offset after `off` where a record checks, or `limit`; a negative errno when reading failed. */
static int64_t resync(gyre_tracelog_reader_t *r, uint64_t off, uint64_t limit)
{
    uint64_t at = off + 1;
    while (at + 4 <= limit) {
        size_t want = limit - at < SCAN_CHUNK ? (size_t)(limit - at) : SCAN_CHUNK, got;
        int rc = gyre_pread_full(r->fd, r->scan, want, at, &got);
        if (rc != 0)
            return rc;
        if (got < 4)
            break;
        for (size_t i = 0; i + 4 <= got; i++) {
            if (r->scan[i] != SYNC[0] || memcmp(r->scan + i, SYNC, 4) != 0)
                continue;
            size_t reclen;
            int c = read_at(r, at + i, limit, &reclen);
            if (c < 0)
                return c;
            gyre_trace_t view;
            if (c == 0 && ((uint8_t)r->rec.base[8] == GYRE_TRACELOG_TYPE_DICT || decode_rec(r, &view) == 0))
                return (int64_t)(at + i);
        }
        /* The last 3 bytes may start a sync that this chunk cut. */
        at += got - 3;
    }
    return (int64_t)limit;
}

int gyre_tracelog_read(gyre_tracelog_reader_t *r, gyre_tracelog_pos_t *pos, gyre_trace_t **out, size_t max,
                       int one_segment)
{
    gyre_tracelog_t *l = r->l;
    size_t n = 0;
    while (n < max) {
        uint64_t limit = 0, next = 0;
        int active = 0;
        if (seg_limit(l, pos->seq, &limit, &next, &active) != 0) {
            /* Gone (dropped by retention) or never existed: on to the next one there is. */
            if (next == 0 || one_segment)
                break;
            *pos = (gyre_tracelog_pos_t){next, GYRE_TRACELOG_SEGMENT_HEADER_SIZE};
            continue;
        }
        if (pos->off < GYRE_TRACELOG_SEGMENT_HEADER_SIZE)
            pos->off = GYRE_TRACELOG_SEGMENT_HEADER_SIZE;
        if (pos->off >= limit) {
            if (active || next == 0 || one_segment)
                break;
            *pos = (gyre_tracelog_pos_t){next, GYRE_TRACELOG_SEGMENT_HEADER_SIZE};
            continue;
        }
        int rc = reader_open(r, pos->seq);
        if (rc != 0) {
            if (n == 0)
                return rc;
            break;
        }
        size_t reclen = 0;
        if (!r->ddict_looked && pos->off > GYRE_TRACELOG_SEGMENT_HEADER_SIZE &&
            (r->ddict == NULL || r->ddict_seq != pos->seq))
            find_dict(r, limit);
        rc = read_at(r, pos->off, limit, &reclen);
        if (rc == 0 && (uint8_t)r->rec.base[8] == GYRE_TRACELOG_TYPE_DICT) {
            if (r->ddict == NULL || r->ddict_seq != pos->seq)
                take_dict(r);
            pos->off += reclen;
            continue;
        }
        gyre_trace_t view;
        if (rc == 0 && decode_rec(r, &view) == 0) {
            out[n++] = gyre_trace_copy(&view);
            pos->off += reclen;
            continue;
        }
        if (rc < 0) {
            if (n == 0)
                return rc;
            break;
        }
        /* A record that does not check: skip to the next one that does. */
        int64_t to = resync(r, pos->off, limit);
        if (to < 0) {
            if (n == 0)
                return (int)to;
            break;
        }
        uint64_t skipped = (uint64_t)to - pos->off;
        atomic_fetch_add(&l->dmg_regions, 1);
        atomic_fetch_add(&l->dmg_bytes, skipped);
        atomic_store(&l->dmg_seq, pos->seq);
        atomic_store(&l->dmg_off, pos->off);
        gyre_logf("gyre: trace log %s: segment %016" PRIx64 ": %" PRIu64 " bad bytes at offset %" PRIu64
                  " skipped (corrupt or cut short); reading on from offset %" PRId64 "\n",
                  l->dir, pos->seq, skipped, pos->off, to);
        pos->off = (uint64_t)to;
    }
    return (int)n;
}

/* ---- the indexer's checkpoint ---- */

#define CP_SLOT 32

static void cp_path(const char *dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/index.pos", dir);
}

int gyre_tracelog_checkpoint_load(const char *dir, gyre_tracelog_checkpoint_t *cp)
{
    memset(cp, 0, sizeof(*cp));
    char path[4096];
    cp_path(dir, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    uint8_t b[2 * CP_SLOT];
    size_t got = 0;
    int rc = gyre_pread_full(fd, b, sizeof(b), 0, &got);
    close(fd);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i + CP_SLOT <= got; i += CP_SLOT) {
        const uint8_t *s = b + i;
        if (memcmp(s, "GYIP", 4) != 0 || crc_of(0, s, 28) != rd32(s + 28))
            continue;
        uint64_t gen = 0, seq = 0;
        for (int k = 7; k >= 0; k--) {
            gen = gen << 8 | s[8 + k];
            seq = seq << 8 | s[16 + k];
        }
        if (gen >= cp->gen && (cp->gen == 0 || gen > cp->gen)) {
            cp->gen = gen;
            cp->flags = rd32(s + 4);
            cp->pos.seq = seq;
            cp->pos.off = rd32(s + 24);
        }
    }
    return 0;
}

int gyre_tracelog_checkpoint_save(const char *dir, gyre_tracelog_checkpoint_t *cp)
{
    char path[4096];
    cp_path(dir, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    cp->gen++;
    uint8_t s[CP_SLOT] = {0};
    memcpy(s, "GYIP", 4);
    le32(s + 4, cp->flags);
    le64(s + 8, cp->gen);
    le64(s + 16, cp->pos.seq);
    le32(s + 24, (uint32_t)cp->pos.off);
    le32(s + 28, crc_of(0, s, 28));
    int rc = gyre_pwrite_full(fd, s, sizeof(s), (cp->gen & 1) * CP_SLOT);
    close(fd);
    return rc;
}
