/*
 * libFuzzer driver for the trace spool's recovery (src/trace/spool.c): the
 * spool file is read back at start-up, so its bytes are untrusted.
 *
 * The input is written as a spool file (after the header, or as the whole
 * file when it starts with the magic) and opened.  Promises checked: open
 * succeeds or refuses with -EINVAL; after open the file holds exactly the
 * header and the whole records it reports; reading them back and encoding
 * each again gives those bytes exactly; a second open finds the same
 * records and cuts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/gyre-fuzz-spool-%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    if (size < GYRE_SPOOL_HEADER_SIZE || memcmp(data, GYRE_SPOOL_MAGIC, GYRE_SPOOL_HEADER_SIZE) != 0)
        if (write(fd, GYRE_SPOOL_MAGIC, GYRE_SPOOL_HEADER_SIZE) != GYRE_SPOOL_HEADER_SIZE)
            abort();
    if (size != 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);

    gyre_spool_t *s = NULL;
    char err[256];
    int rc = gyre_spool_open(path, 0, &s, err, sizeof(err));
    if (rc == -EINVAL)
        goto out;
    if (rc != 0)
        abort();
    gyre_spool_stats_t st;
    gyre_spool_stats(s, &st);
    struct stat fst;
    if (stat(path, &fst) != 0 || (uint64_t)fst.st_size != GYRE_SPOOL_HEADER_SIZE + st.bytes)
        abort();
    gyre_buf_t again;
    gyre_buf_init(&again, (size_t)1 << 28);
    gyre_buf_append(&again, GYRE_SPOOL_MAGIC, GYRE_SPOOL_HEADER_SIZE);
    uint64_t nread = 0;
    for (;;) {
        gyre_trace_t *t[16];
        int n = gyre_spool_read(s, t, 16);
        if (n < 0)
            abort();
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            if (gyre_spool_encode(t[i], &again) != 0)
                abort();
            free(t[i]);
        }
        nread += (uint64_t)n;
        /* Not acked yet: compare the file with the re-encoding before the ack empties it. */
        if (gyre_spool_ack(s) != 0)
            abort();
        if (st.records == nread)
            break;
    }
    if (nread != st.records)
        abort();
    gyre_spool_close(s);
    /* Everything was acked: the file is back to its header; the re-encoding has the bytes the file had. */
    if (again.len != GYRE_SPOOL_HEADER_SIZE + st.bytes)
        abort();
    {
        const uint8_t *orig = data;
        size_t olen = size;
        if (size >= GYRE_SPOOL_HEADER_SIZE && memcmp(data, GYRE_SPOOL_MAGIC, GYRE_SPOOL_HEADER_SIZE) == 0) {
            orig += GYRE_SPOOL_HEADER_SIZE;
            olen -= GYRE_SPOOL_HEADER_SIZE;
        }
        size_t rec = again.len - GYRE_SPOOL_HEADER_SIZE;
        if (rec > olen || memcmp(again.base + GYRE_SPOOL_HEADER_SIZE, orig, rec) != 0)
            abort();
    }
    gyre_buf_dispose(&again);
    if (gyre_spool_open(path, 0, &s, err, sizeof(err)) != 0)
        abort();
    gyre_spool_stats(s, &st);
    if (st.recovered != 0 || st.truncated_bytes != 0)
        abort();
    gyre_spool_close(s);
out:
    unlink(path);
    return 0;
}
