/*
 * picohttpparser's request parser, as built into libh2o-evloop (which exports
 * it) without its header in Debian's package: its declarations as in h2o
 * 2.2.5's deps/picohttpparser/picohttpparser.h.  gyre re-reads a client's
 * request head with the parser h2o read it with (server/head.c), and the
 * composer's fuzz target reads back every upstream request it writes.
 */
#ifndef GYRE_COMMON_PHR_H
#define GYRE_COMMON_PHR_H

#include <stddef.h>

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The head's length when it is complete, -2 when more bytes are needed, -1 when it is malformed. */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

#endif
