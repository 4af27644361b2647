/*
 * Serving a fine-tuned candidate (issue 15, point 2): where the loop's
 * artifact becomes a model name a route can target.
 *
 *   adapter none      a hosted fine-tuned model (OpenAI's fine_tuned_model, Together's output_name): nothing to
 *                     load; the artifact is the model name on serve.provider.
 *   adapter vllm      POST {base_url}/load_lora_adapter {"lora_name","lora_path"} (vLLM with --enable-lora and
 *                     VLLM_ALLOW_RUNTIME_LORA_UPDATING); the adapter is then the model `lora_name`; unloaded with
 *                     POST {base_url}/unload_lora_adapter {"lora_name"}.
 *   adapter llamacpp  llama.cpp's server loads its adapters at start (--lora PATH); GET {root}/lora-adapters lists
 *                     them as [{"id","path","scale"}], and POST {root}/lora-adapters [{"id","scale"}] sets their
 *                     scales.  Loading is finding the adapter whose path is the artifact and setting its scale to 1
 *                     (every other adapter to 0); unloading is setting it to 0.  {root} is base_url without its
 *                     trailing /v1.
 *
 * Each call is one or two blocking HTTP exchanges (otlp/httpc.h) with the provider's first key as a bearer
 * token, bounded by GYRE_SERVE_TIMEOUT_MS each and GYRE_SERVE_ANSWER_MAX bytes read; never on an event loop.
 */
#ifndef GYRE_LOOP_SERVE_H
#define GYRE_LOOP_SERVE_H

#include <stddef.h>

#include "config/config.h"
#include "loop/loopspec.h"

#define GYRE_SERVE_TIMEOUT_MS 30000u
#define GYRE_SERVE_ANSWER_MAX ((size_t)1 << 20)

/* Loads the candidate where it is served; *target_model gets the model name to route to (the artifact for a
 * hosted model, `name` for an adapter).  0, or a negative errno with `err` naming the provider and what failed
 * (-ENOENT: no such provider or no llama.cpp adapter with that path; -EPROTO: the server refused, its status in
 * err). */
int gyre_serve_load(const gyre_config_t *c, const gyre_serve_conf_t *conf, const char *artifact, const char *name,
                    char *target_model, size_t size, char *err, size_t errlen);
/* Unloads adapter `name` (a hosted model: nothing to do, 0).  For llama.cpp `name` is the artifact's path. */
int gyre_serve_unload(const gyre_config_t *c, const gyre_serve_conf_t *conf, const char *name, char *err,
                      size_t errlen);

/* llama.cpp: the id of the adapter whose path is `path` in GET /lora-adapters' answer ([{"id","path","scale"}]).
 * 0; -ENOENT (none has that path); -EPROTO (not such an array). */
int gyre_serve_llamacpp_id(const char *answer, size_t len, const char *path, long *id);

#endif
