/* The protobuf wire-format reader (see protobuf.h). */
#include "otlp/protobuf.h"

#include <string.h>

static int varint(gyre_pb_t *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    return -1; /* more than ten bytes */
}

static int fixed(gyre_pb_t *r, size_t n, uint64_t *out)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    *out = v;
    return 0;
}

int gyre_pb_next(gyre_pb_t *r, gyre_pb_field_t *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t tag;
    if (varint(r, &tag) != 0)
        return -1;
    memset(f, 0, sizeof(*f));
    f->number = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    if (f->number == 0 || tag >> 3 > 0x1fffffff)
        return -1;
    switch (f->wire) {
    case GYRE_PB_VARINT: return varint(r, &f->u) == 0 ? 1 : -1;
    case GYRE_PB_I64: return fixed(r, 8, &f->u) == 0 ? 1 : -1;
    case GYRE_PB_I32: return fixed(r, 4, &f->u) == 0 ? 1 : -1;
    case GYRE_PB_LEN: {
        uint64_t n;
        if (varint(r, &n) != 0 || n > (uint64_t)(r->end - r->p))
            return -1;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default: return -1; /* groups (3, 4) are not in OTLP; 6 and 7 do not exist */
    }
}

double gyre_pb_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}
