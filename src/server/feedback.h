/*
 * POST /v1/feedback (server/feedback.c; the checks and the store work are loop/feedback.h's).
 */
#ifndef GYRE_SERVER_FEEDBACK_H
#define GYRE_SERVER_FEEDBACK_H

#include <h2o.h>

#include "server/server.h"

/* 1 when the request is POST /v1/feedback (or another method on it) and was answered, else 0. */
int gyre_feedback_handle(gyre_worker_t *w, h2o_req_t *req);

#endif
