/*
 * src/proxy/gen.c: a generation of the configuration lives while anything
 * holds it (the server, a worker's state, a request through that state), and
 * a provider is down for /readyz only when it is down on every worker.
 */
#include "proxy/gen.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

static gyre_config_t *two_providers(void)
{
    static const char yaml[] = "providers:\n"
                               "  - {name: a, kind: openai, base_url: \"http://127.0.0.1:9/v1\", keys: [sk-unit-a]}\n"
                               "  - {name: b, kind: openai, base_url: \"http://127.0.0.1:9/v1\", keys: [sk-unit-b]}\n"
                               "routes:\n"
                               "  - name: chat\n"
                               "    targets: [{provider: a, model: m}]\n";
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("unit.yaml", yaml, strlen(yaml), &errs);
    gyre_config_errors_dispose(&errs);
    return c;
}

TEST(gen_worker_state_and_its_requests_hold_the_generation_until_the_last_lets_go)
{
    gyre_gen_t *g = gyre_gen_create(two_providers(), 1);
    CHECK_INT(g->refs, 1); /* the server's */
    h2o_loop_t *loop = h2o_evloop_create();
    gyre_wgen_t *w = gyre_wgen_create(g, 0, loop, NULL);
    CHECK_INT(g->refs, 2);   /* the server's and the worker state's */
    CHECK_INT(w->refs, 1);   /* the worker's, while current */
    gyre_wgen_retain(w);     /* a request begins under it */
    gyre_gen_release(g);     /* a new generation replaced it at the server */
    CHECK_INT(g->refs, 1);   /* the worker state still holds it */
    gyre_wgen_release(w);    /* the worker switched to the new one */
    CHECK_INT(w->refs, 1);   /* the request still runs on it */
    CHECK_INT(g->refs, 1);
    CHECK(strcmp(w->gen->config->providers[0].name, "a") == 0);
    CHECK(w->keypools[1].conf == &g->config->providers[1]);
    gyre_wgen_release(w); /* the request ends: the state and the generation go (the sanitizer build sees a leak
                           * or a use after free if not) */
    h2o_evloop_destroy(loop);
}

TEST(gen_provider_is_down_only_while_it_is_down_on_every_worker)
{
    gyre_gen_t *g = gyre_gen_create(two_providers(), 2);
    CHECK_INT(gyre_gen_provider_down(g, 0, 1000), 0); /* never used: usable */
    g->unusable_until[0 * 2 + 0] = 5000;               /* provider a, worker 0 */
    CHECK_INT(gyre_gen_provider_down(g, 0, 1000), 0);  /* worker 1 can still call it */
    g->unusable_until[0 * 2 + 1] = 3000;
    CHECK_INT(gyre_gen_provider_down(g, 0, 1000), 1);
    CHECK_INT(gyre_gen_provider_down(g, 1, 1000), 0); /* provider b is another slot */
    CHECK_INT(gyre_gen_provider_down(g, 0, 3000), 0); /* worker 1's rest is over */
    CHECK_INT(gyre_gen_provider_down(g, 7, 1000), 0); /* no such provider */
    gyre_gen_release(g);
}

TEST(gen_a_new_generation_inherits_the_breakers_of_providers_that_did_not_change)
{
    h2o_loop_t *loop = h2o_evloop_create();
    gyre_gen_t *g1 = gyre_gen_create(two_providers(), 1);
    gyre_wgen_t *w1 = gyre_wgen_create(g1, 0, loop, NULL);
    w1->keypools[0].keys[0].breaker.state = GYRE_BREAKER_OPEN;
    w1->keypools[0].keys[0].breaker.opened_at_ms = 900;
    w1->keypools[0].keys[0].breaker.probing = 1;
    w1->keypools[1].keys[0].cooldown_until_ms = 4000;
    /* The next configuration: provider a as it was, provider b with another key. */
    gyre_config_t *c2 = two_providers();
    free(c2->providers[1].keys[0]);
    c2->providers[1].keys[0] = strdup("sk-unit-other");
    gyre_gen_t *g2 = gyre_gen_create(c2, 1);
    gyre_wgen_t *w2 = gyre_wgen_create(g2, 0, loop, NULL);
    gyre_wgen_inherit(w2, w1, 1000);
    CHECK_INT(w2->keypools[0].keys[0].breaker.state, GYRE_BREAKER_OPEN);
    CHECK_INT(w2->keypools[0].keys[0].breaker.opened_at_ms, 900);
    CHECK_INT(w2->keypools[0].keys[0].breaker.probing, 0); /* the old pool's probe reports to the old pool */
    CHECK_INT(w2->keypools[1].keys[0].cooldown_until_ms, 0); /* b's key changed: it starts afresh */
    CHECK_INT(gyre_gen_provider_down(g2, 0, 1000), 1);      /* /readyz sees a's open breaker at once */
    CHECK_INT(gyre_gen_provider_down(g2, 1, 1000), 0);
    gyre_wgen_release(w1);
    gyre_gen_release(g1);
    gyre_wgen_release(w2);
    gyre_gen_release(g2);
    h2o_evloop_destroy(loop);
}
