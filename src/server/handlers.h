/*
 * The HTTP endpoints: one h2o handler that dispatches on the path, and an
 * output filter that gives every answer (h2o's own error pages included) an
 * x-request-id and an OpenAI-shaped JSON error body.
 */
#ifndef GYRE_SERVER_HANDLERS_H
#define GYRE_SERVER_HANDLERS_H

#include <h2o.h>

struct gyre_server;
void gyre_handlers_register(h2o_globalconf_t *conf, struct gyre_server *server);

#endif
