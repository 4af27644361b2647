/* zstd into bounded buffers (see zstd.h). */
#include "common/zstd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/log.h"

struct gyre_zstd {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level;
};

gyre_zstd_t *gyre_zstd_create(int level)
{
    gyre_zstd_t *z = gyre_calloc(1, sizeof(*z));
    z->level = level;
    /* Contexts are made on first use: a read handle never compresses. */
    return z;
}

void gyre_zstd_destroy(gyre_zstd_t *z)
{
    if (z == NULL)
        return;
    ZSTD_freeCCtx(z->cctx);
    ZSTD_freeDCtx(z->dctx);
    free(z);
}

static void *zstd_ctx_or_abort(void *ctx)
{
    /* zstd fails to make a context only when malloc fails: abort like gyre_malloc. */
    if (ctx == NULL) {
        gyre_logf("gyre: out of memory (zstd context)\n");
        abort();
    }
    return ctx;
}

int gyre_zstd_compress(gyre_zstd_t *z, gyre_buf_t *out, const void *src, size_t len)
{
    size_t bound = ZSTD_compressBound(len);
    int r;
    if (ZSTD_isError(bound))
        return -E2BIG;
    if ((r = gyre_buf_reserve(out, bound)) != 0)
        return r;
    size_t n;
    if (z != NULL) {
        if (z->cctx == NULL)
            z->cctx = zstd_ctx_or_abort(ZSTD_createCCtx());
        n = ZSTD_compressCCtx(z->cctx, out->base + out->len, bound, src, len, z->level);
    } else {
        n = ZSTD_compress(out->base + out->len, bound, src, len, GYRE_ZSTD_LEVEL_DEFAULT);
    }
    if (ZSTD_isError(n)) {
        out->base[out->len] = '\0';
        return -EINVAL;
    }
    out->len += n;
    out->base[out->len] = '\0';
    return 0;
}

int gyre_zstd_decompress(gyre_zstd_t *z, gyre_buf_t *out, const void *src, size_t len)
{
    /*
     * Streaming decompression, so the frame header's claimed size is never
     * trusted for an allocation: the output grows only as bytes really
     * come out, and stops at the buffer's maximum.
     */
    ZSTD_DCtx *dctx = z != NULL ? z->dctx : NULL;
    if (dctx == NULL) {
        dctx = zstd_ctx_or_abort(ZSTD_createDCtx());
        if (z != NULL)
            z->dctx = dctx;
    } else {
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    }
    size_t start = out->len;
    ZSTD_inBuffer in = {src, len, 0};
    size_t last = 1; /* 0 once a frame is complete */
    int r = 0;
    if (len == 0) {
        r = -EINVAL;
        goto out;
    }
    while (in.pos < in.size || last != 0) {
        size_t room = out->max - out->len;
        if (room == 0) {
            /* Full to the byte: fine only if the frame has nothing left to give. */
            ZSTD_outBuffer none = {NULL, 0, 0};
            last = ZSTD_decompressStream(dctx, &none, &in);
            if (!ZSTD_isError(last) && last == 0 && in.pos == in.size)
                break;
            r = ZSTD_isError(last) ? -EINVAL : -E2BIG;
            goto out;
        }
        size_t chunk = room < ZSTD_DStreamOutSize() ? room : ZSTD_DStreamOutSize();
        if ((r = gyre_buf_reserve(out, chunk)) != 0)
            goto out;
        ZSTD_outBuffer ob = {out->base + out->len, chunk, 0};
        size_t in_before = in.pos;
        last = ZSTD_decompressStream(dctx, &ob, &in);
        if (ZSTD_isError(last)) {
            r = -EINVAL;
            goto out;
        }
        out->len += ob.pos;
        /* No progress with input left over and output room to spare: truncated input. */
        if (ob.pos == 0 && in.pos == in_before && ob.pos < ob.size) {
            r = -EINVAL;
            goto out;
        }
        if (in.pos == in.size && last != 0 && ob.pos < ob.size) {
            r = -EINVAL; /* the input ended inside a frame */
            goto out;
        }
    }
out:
    if (r != 0)
        out->len = start;
    if (out->base != NULL)
        out->base[out->len] = '\0';
    if (z == NULL)
        ZSTD_freeDCtx(dctx);
    return r;
}
