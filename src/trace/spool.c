/* The append-only trace spool (see spool.h for the format and the recovery rules). */
#include "trace/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/alloc.h"
#include "common/fileio.h"
#include "common/log.h"

struct gyre_spool {
    int fd;
    uint64_t max_bytes;
    uint64_t end;          /* the file's size: every byte before it is a whole, checked record */
    uint64_t rd;           /* the first record not yet acked */
    uint64_t pending_rd;   /* where the last read stopped: rd after an ack */
    uint64_t pending_records;
    uint64_t records, recovered, truncated_bytes, dropped;
    int dirty;             /* appended or truncated since the last fdatasync */
    gyre_buf_t enc;        /* the record being appended */
    gyre_buf_t rec;        /* the record being read */
    int version;           /* the file's record format: 2, or 1 while an old spool is read to be upgraded */
};

/* Format 1 (GYRESPL1): the records before otel_trace_id. */
#define SPOOL_MAGIC_V1 "GYRESPL1"


/* --- encoding ------------------------------------------------------------ */

static void le32(uint8_t *d, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *s)
{
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

typedef struct {
    gyre_buf_t *b;
    int rc;
} enc_t;

static void put(enc_t *e, const void *p, size_t n)
{
    if (e->rc == 0 && n != 0)
        e->rc = gyre_buf_append(e->b, p, n);
}

static void put_u32(enc_t *e, uint32_t v)
{
    uint8_t d[4];
    le32(d, v);
    put(e, d, 4);
}

static void put_i64(enc_t *e, int64_t v)
{
    uint8_t d[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)(u >> (8 * i));
    put(e, d, 8);
}

static void put_i32(enc_t *e, int v)
{
    put_u32(e, (uint32_t)(int32_t)v);
}

static void put_bytes(enc_t *e, const char *p, size_t n)
{
    if (n > UINT32_MAX) {
        e->rc = -E2BIG;
        return;
    }
    put_u32(e, (uint32_t)n);
    put(e, p, n);
}

static void put_str(enc_t *e, const gyre_tstr_t *s)
{
    put_bytes(e, s->p, s->len);
}

static void put_id(enc_t *e, const char *id, size_t size)
{
    put_bytes(e, id, strnlen(id, size - 1));
}

/* zlib's CRC-32 (IEEE), over a length of any size. */
static uint32_t crc32_of(uint32_t crc, const void *p, size_t n)
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

int gyre_spool_encode(const gyre_trace_t *t, gyre_buf_t *out)
{
    size_t start = out->len;
    uint8_t hdr[GYRE_SPOOL_RECORD_HEADER_SIZE] = {0};
    int rc = gyre_buf_append(out, hdr, sizeof(hdr));
    if (rc == 0)
        rc = gyre_spool_encode_payload(t, out);
    if (rc != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
        return rc;
    }
    size_t plen = out->len - start - GYRE_SPOOL_RECORD_HEADER_SIZE;
    uint8_t *rec = (uint8_t *)out->base + start;
    le32(rec, (uint32_t)plen);
    uint32_t crc = crc32_of(0, rec, 4);
    le32(rec + 4, crc32_of(crc, rec + GYRE_SPOOL_RECORD_HEADER_SIZE, plen));
    return 0;
}

int gyre_spool_encode_payload(const gyre_trace_t *t, gyre_buf_t *out)
{
    if (t->nattempts > GYRE_TRACE_MAX_ATTEMPTS || t->ntags > GYRE_TRACE_MAX_TAGS || t->nmeta > GYRE_TRACE_MAX_META)
        return -EINVAL;
    size_t start = out->len;
    enc_t e = {out, 0};
    put_id(&e, t->trace_id, sizeof(t->trace_id));
    put_id(&e, t->otel_trace_id, sizeof(t->otel_trace_id));
    put_id(&e, t->span_id, sizeof(t->span_id));
    put_id(&e, t->parent_span_id, sizeof(t->parent_span_id));
    put_str(&e, &t->request_id);
    put_i64(&e, t->started_us);
    put_i64(&e, t->ended_us);
    put_i64(&e, t->ttft_us);
    put_str(&e, &t->endpoint);
    put_str(&e, &t->route);
    put_str(&e, &t->provider);
    put_str(&e, &t->model);
    put_i32(&e, t->status);
    put_i32(&e, t->stream);
    put_i32(&e, t->cache_hit);
    put_str(&e, &t->finish_reason);
    put_i64(&e, t->prompt_tokens);
    put_i64(&e, t->completion_tokens);
    put_i64(&e, t->cached_tokens);
    put_i64(&e, t->reasoning_tokens);
    put(&e, &t->cost_usd, sizeof(t->cost_usd)); /* the host's double; gyre's targets are all little-endian IEEE */
    put_u32(&e, (uint32_t)t->nattempts);
    for (size_t i = 0; i < t->nattempts; i++) {
        const gyre_trace_attempt_t *a = &t->attempts[i];
        put_str(&e, &a->provider);
        put_str(&e, &a->model);
        put_str(&e, &a->key_id);
        put_i32(&e, a->status);
        put_i64(&e, a->started_us);
        put_i64(&e, a->latency_us);
        put_str(&e, &a->error);
    }
    put_str(&e, &t->session);
    put_str(&e, &t->agent);
    put_str(&e, &t->user);
    put_u32(&e, (uint32_t)t->ntags);
    for (size_t i = 0; i < t->ntags; i++)
        put_str(&e, &t->tags[i]);
    put_u32(&e, (uint32_t)t->nmeta);
    for (size_t i = 0; i < t->nmeta; i++) {
        put_str(&e, &t->meta[i].key);
        put_str(&e, &t->meta[i].value);
    }
    put_str(&e, &t->request_body);
    put_str(&e, &t->response_body);
    /* Fields added since, each optional at the end so that a record written before it still reads: the
     * gateway key's id and team, then what a cache hit saved. */
    put_str(&e, &t->client_key_id);
    put_str(&e, &t->team);
    put(&e, &t->cost_saved_usd, sizeof(t->cost_saved_usd));
    size_t plen = out->len - start;
    if (e.rc == 0 && plen > GYRE_SPOOL_RECORD_MAX)
        e.rc = -E2BIG;
    if (e.rc != 0) {
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
        return e.rc;
    }
    return 0;
}

/* --- decoding ------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    int bad;
} dec_t;

static const uint8_t *take(dec_t *d, size_t n)
{
    if (d->bad || n > d->len - d->pos) {
        d->bad = 1;
        return NULL;
    }
    const uint8_t *r = d->p + d->pos;
    d->pos += n;
    return r;
}

static uint32_t get_u32(dec_t *d)
{
    const uint8_t *s = take(d, 4);
    return s ? rd32(s) : 0;
}

static int64_t get_i64(dec_t *d)
{
    const uint8_t *s = take(d, 8);
    uint64_t u = 0;
    for (int i = 0; s && i < 8; i++)
        u |= (uint64_t)s[i] << (8 * i);
    return (int64_t)u;
}

static int get_i32(dec_t *d)
{
    return (int)(int32_t)get_u32(d);
}

static void get_str(dec_t *d, gyre_tstr_t *s)
{
    uint32_t n = get_u32(d);
    const uint8_t *p = take(d, n);
    s->p = p ? (char *)p : (char *)"";
    s->len = p ? n : 0;
}

/* An id: at most size-1 bytes, no NUL among them (it would not survive the round trip). */
static void get_id(dec_t *d, char *id, size_t size)
{
    gyre_tstr_t s;
    get_str(d, &s);
    if (s.len > size - 1 || memchr(s.p, '\0', s.len) != NULL) {
        d->bad = 1;
        s.len = 0;
    }
    memcpy(id, s.p, s.len);
    id[s.len] = '\0';
}

static size_t get_count(dec_t *d, size_t max)
{
    uint32_t n = get_u32(d);
    if (n > max) {
        d->bad = 1;
        return 0;
    }
    return n;
}

static int decode_version(const void *p, size_t len, gyre_trace_t *t, int version);

int gyre_spool_decode(const void *p, size_t len, gyre_trace_t *t)
{
    return decode_version(p, len, t, 2);
}

static int decode_version(const void *p, size_t len, gyre_trace_t *t, int version)
{
    dec_t d = {p, len, 0, 0};
    memset(t, 0, sizeof(*t));
    get_id(&d, t->trace_id, sizeof(t->trace_id));
    if (version >= 2)
        get_id(&d, t->otel_trace_id, sizeof(t->otel_trace_id));
    else
        memcpy(t->otel_trace_id, t->trace_id, sizeof(t->otel_trace_id)); /* its own W3C trace */
    get_id(&d, t->span_id, sizeof(t->span_id));
    get_id(&d, t->parent_span_id, sizeof(t->parent_span_id));
    get_str(&d, &t->request_id);
    t->started_us = get_i64(&d);
    t->ended_us = get_i64(&d);
    t->ttft_us = get_i64(&d);
    get_str(&d, &t->endpoint);
    get_str(&d, &t->route);
    get_str(&d, &t->provider);
    get_str(&d, &t->model);
    t->status = get_i32(&d);
    t->stream = get_i32(&d);
    t->cache_hit = get_i32(&d);
    get_str(&d, &t->finish_reason);
    t->prompt_tokens = get_i64(&d);
    t->completion_tokens = get_i64(&d);
    t->cached_tokens = get_i64(&d);
    t->reasoning_tokens = get_i64(&d);
    const uint8_t *cost = take(&d, sizeof(t->cost_usd));
    if (cost != NULL)
        memcpy(&t->cost_usd, cost, sizeof(t->cost_usd));
    t->nattempts = get_count(&d, GYRE_TRACE_MAX_ATTEMPTS);
    for (size_t i = 0; i < t->nattempts; i++) {
        gyre_trace_attempt_t *a = &t->attempts[i];
        get_str(&d, &a->provider);
        get_str(&d, &a->model);
        get_str(&d, &a->key_id);
        a->status = get_i32(&d);
        a->started_us = get_i64(&d);
        a->latency_us = get_i64(&d);
        get_str(&d, &a->error);
    }
    get_str(&d, &t->session);
    get_str(&d, &t->agent);
    get_str(&d, &t->user);
    t->ntags = get_count(&d, GYRE_TRACE_MAX_TAGS);
    for (size_t i = 0; i < t->ntags; i++)
        get_str(&d, &t->tags[i]);
    t->nmeta = get_count(&d, GYRE_TRACE_MAX_META);
    for (size_t i = 0; i < t->nmeta; i++) {
        get_str(&d, &t->meta[i].key);
        get_str(&d, &t->meta[i].value);
    }
    get_str(&d, &t->request_body);
    get_str(&d, &t->response_body);
    /* Fields added since, each optional at the end (see the encoder): a record from before the gateway key's
     * id and team ends after the bodies; one from before cost_saved_usd after the team (nothing was saved). */
    t->cost_saved_usd = 0;
    if (!d.bad && d.pos < d.len) {
        get_str(&d, &t->client_key_id);
        get_str(&d, &t->team);
    }
    if (!d.bad && d.pos < d.len) {
        const uint8_t *saved = take(&d, sizeof(t->cost_saved_usd));
        if (saved != NULL)
            memcpy(&t->cost_saved_usd, saved, sizeof(t->cost_saved_usd));
    }
    return d.bad || d.pos != d.len ? -EINVAL : 0;
}

/* --- the file ------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, const char *path, int e)
{
    if (err != NULL && errlen != 0)
        snprintf(err, errlen, fmt, path, strerror(e));
}

/* Reads the record at `off` (ending at or before `limit`) into s->rec and checks it.
 * 0 with the payload and its length set; 1 when it is torn or corrupt; a negative errno when reading failed. */
static int read_record(gyre_spool_t *s, uint64_t off, uint64_t limit, const uint8_t **payload, size_t *plen)
{
    uint8_t hdr[GYRE_SPOOL_RECORD_HEADER_SIZE];
    size_t got;
    if (limit - off < sizeof(hdr))
        return 1;
    int rc = gyre_pread_full(s->fd, hdr, sizeof(hdr), off, &got);
    if (rc != 0)
        return rc;
    if (got < sizeof(hdr))
        return 1;
    uint32_t len = rd32(hdr), crc = rd32(hdr + 4);
    if (len > GYRE_SPOOL_RECORD_MAX || len > limit - off - sizeof(hdr))
        return 1;
    gyre_buf_reset(&s->rec);
    if (gyre_buf_reserve(&s->rec, len) != 0)
        return 1;
    rc = gyre_pread_full(s->fd, s->rec.base, len, off + sizeof(hdr), &got);
    if (rc != 0)
        return rc;
    if (got < len)
        return 1;
    if (crc32_of(crc32_of(0, hdr, 4), s->rec.base, len) != crc)
        return 1;
    *payload = (const uint8_t *)s->rec.base;
    *plen = len;
    return 0;
}

/* Cuts the file at `off` (a torn or corrupt tail, or a failed append). */
static int cut(gyre_spool_t *s, uint64_t off)
{
    if (ftruncate(s->fd, (off_t)off) != 0)
        return -errno;
    s->end = off;
    s->dirty = 1;
    return 0;
}

/*
 * A spool an older gyre left (format 1): its records are copied into a
 * format-2 spool beside it, which then takes its name, so that nothing it
 * held is lost and new records are never mixed with old ones.  The old file
 * stays whole until the rename, so a crash during the upgrade leaves it to
 * be upgraded again.
 */
static int upgrade_v1(gyre_spool_t *old, const char *path, uint64_t max_bytes, gyre_spool_t **out, char *err,
                      size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.upgrade", path) >= (int)sizeof(tmp)) {
        set_err(err, errlen, "trace spool %s: %s", path, ENAMETOOLONG);
        return -ENAMETOOLONG;
    }
    unlink(tmp);
    gyre_spool_t *up;
    int rc = gyre_spool_open(tmp, max_bytes, &up, err, errlen);
    if (rc != 0)
        return rc;
    uint64_t off = GYRE_SPOOL_HEADER_SIZE, n = 0;
    while (rc == 0) {
        const uint8_t *payload;
        size_t plen;
        gyre_trace_t view;
        int r = read_record(old, off, old->end, &payload, &plen);
        if (r != 0 || decode_version(payload, plen, &view, 1) != 0)
            break; /* the end: open already cut what did not decode */
        rc = gyre_spool_append(up, &view);
        off += GYRE_SPOOL_RECORD_HEADER_SIZE + plen;
        n++;
    }
    if (rc == 0)
        rc = gyre_spool_sync(up);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        set_err(err, errlen, "trace spool %s: upgrading it from format 1: %s", path, -rc);
        gyre_spool_close(up);
        unlink(tmp);
        return rc;
    }
    gyre_logf("gyre: trace spool %s: upgraded from format 1 (%llu records kept)\n", path, (unsigned long long)n);
    *out = up;
    return 0;
}

int gyre_spool_open(const char *path, uint64_t max_bytes, gyre_spool_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        set_err(err, errlen, "trace spool %s: %s", path, e);
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno == EWOULDBLOCK ? EBUSY : errno;
        set_err(err, errlen, "trace spool %s: another gyre has it open (%s)", path, e);
        close(fd);
        return -e;
    }
    gyre_spool_t *s = gyre_calloc(1, sizeof(*s));
    s->fd = fd;
    s->max_bytes = max_bytes != 0 ? max_bytes : GYRE_SPOOL_DEFAULT_MAX_BYTES;
    gyre_buf_init(&s->enc, GYRE_SPOOL_RECORD_MAX + GYRE_SPOOL_RECORD_HEADER_SIZE);
    gyre_buf_init(&s->rec, GYRE_SPOOL_RECORD_MAX);
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        set_err(err, errlen, "trace spool %s: %s", path, -rc);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    char magic[GYRE_SPOOL_HEADER_SIZE];
    size_t got = 0;
    if ((rc = gyre_pread_full(fd, magic, sizeof(magic), 0, &got)) != 0) {
        set_err(err, errlen, "trace spool %s: %s", path, -rc);
        goto out;
    }
    s->version = 2;
    if (got == sizeof(magic) && memcmp(magic, SPOOL_MAGIC_V1, sizeof(magic)) == 0) {
        s->version = 1; /* read as it is, then upgraded below */
    } else if (memcmp(magic, GYRE_SPOOL_MAGIC, got) != 0) {
        /* Someone else's file: never truncate it. */
        rc = -EINVAL;
        if (err != NULL && errlen != 0)
            snprintf(err, errlen, "trace spool %s: not a gyre spool (no %s header)", path, GYRE_SPOOL_MAGIC);
        goto out;
    }
    if (got < sizeof(magic)) {
        /* New, or a header torn by a crash right after creating it. */
        if ((rc = gyre_pwrite_full(fd, GYRE_SPOOL_MAGIC, GYRE_SPOOL_HEADER_SIZE, 0)) != 0) {
            set_err(err, errlen, "trace spool %s: %s", path, -rc);
            goto out;
        }
        size = GYRE_SPOOL_HEADER_SIZE;
        s->dirty = 1;
    }
    uint64_t off = GYRE_SPOOL_HEADER_SIZE;
    for (;;) {
        const uint8_t *payload;
        size_t plen;
        int r = read_record(s, off, size, &payload, &plen);
        if (r < 0) {
            rc = r;
            set_err(err, errlen, "trace spool %s: %s", path, -rc);
            goto out;
        }
        gyre_trace_t view;
        if (r == 1 || decode_version(payload, plen, &view, s->version) != 0)
            break;
        off += GYRE_SPOOL_RECORD_HEADER_SIZE + plen;
        s->recovered++;
    }
    s->end = size;
    if (off < size) {
        s->truncated_bytes = size - off;
        if ((rc = cut(s, off)) != 0) {
            set_err(err, errlen, "trace spool %s: cutting its torn tail: %s", path, -rc);
            goto out;
        }
        gyre_logf("gyre: trace spool %s: cut a torn or corrupt tail of %llu bytes after %llu whole records\n", path,
                  (unsigned long long)s->truncated_bytes, (unsigned long long)s->recovered);
    }
    s->records = s->recovered;
    s->rd = s->pending_rd = GYRE_SPOOL_HEADER_SIZE;
    if ((rc = gyre_spool_sync(s)) != 0)
        set_err(err, errlen, "trace spool %s: fdatasync: %s", path, -rc);
    if (rc == 0 && s->version == 1) {
        gyre_spool_t *up = NULL;
        if ((rc = upgrade_v1(s, path, max_bytes, &up, err, errlen)) == 0) {
            gyre_spool_close(s);
            s = up;
        }
    }
out:
    if (rc != 0) {
        gyre_spool_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void gyre_spool_close(gyre_spool_t *s)
{
    if (s == NULL)
        return;
    close(s->fd); /* releases the flock */
    gyre_buf_dispose(&s->enc);
    gyre_buf_dispose(&s->rec);
    free(s);
}

int gyre_spool_append(gyre_spool_t *s, const gyre_trace_t *t)
{
    gyre_buf_reset(&s->enc);
    int rc = gyre_spool_encode(t, &s->enc);
    if (rc != 0)
        return rc;
    if (s->end + s->enc.len > s->max_bytes) {
        s->dropped++;
        return -ENOSPC;
    }
    if ((rc = gyre_pwrite_full(s->fd, s->enc.base, s->enc.len, s->end)) != 0) {
        /* A disk full or an I/O error part-way: cut the partial record so the file stays whole. */
        cut(s, s->end);
        return rc;
    }
    s->end += s->enc.len;
    s->records++;
    s->dirty = 1;
    return 0;
}

int gyre_spool_sync(gyre_spool_t *s)
{
    if (!s->dirty)
        return 0;
    if (fdatasync(s->fd) != 0)
        return -errno;
    s->dirty = 0;
    return 0;
}

int gyre_spool_read(gyre_spool_t *s, gyre_trace_t **out, size_t max)
{
    uint64_t off = s->rd;
    size_t n = 0;
    while (n < max && off < s->end) {
        const uint8_t *payload;
        size_t plen;
        int r = read_record(s, off, s->end, &payload, &plen);
        if (r < 0) {
            for (size_t i = 0; i < n; i++)
                free(out[i]);
            return r;
        }
        gyre_trace_t view;
        if (r == 1 || decode_version(payload, plen, &view, s->version) != 0) {
            /* Checked at open and written by us since: only the disk could have changed it. */
            gyre_logf("gyre: trace spool: record at offset %llu went bad on disk; cutting the %llu bytes from it\n",
                      (unsigned long long)off, (unsigned long long)(s->end - off));
            cut(s, off);
            s->records = n;
            break;
        }
        out[n++] = gyre_trace_copy(&view);
        off += GYRE_SPOOL_RECORD_HEADER_SIZE + plen;
    }
    s->pending_rd = off;
    s->pending_records = n;
    return (int)n;
}

int gyre_spool_ack(gyre_spool_t *s)
{
    s->rd = s->pending_rd;
    s->records -= s->pending_records;
    s->pending_records = 0;
    if (s->rd == s->end && s->end > GYRE_SPOOL_HEADER_SIZE) {
        int rc = cut(s, GYRE_SPOOL_HEADER_SIZE);
        if (rc != 0)
            return rc;
        s->rd = s->pending_rd = GYRE_SPOOL_HEADER_SIZE;
        s->records = 0;
    }
    return 0;
}

void gyre_spool_stats(const gyre_spool_t *s, gyre_spool_stats_t *st)
{
    st->records = s->records;
    st->bytes = s->end - s->rd;
    st->recovered = s->recovered;
    st->truncated_bytes = s->truncated_bytes;
    st->dropped = s->dropped;
}
