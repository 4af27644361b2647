/*
 * Routing under alert overrides (route/override.h): a key out is skipped
 * like a resting key unless no other is usable, a provider held open has no
 * usable key, and a target out of rotation goes to the end of the plan.
 */
#include <errno.h>

#include "route/keys.h"
#include "route/override.h"
#include "route/route.h"
#include "test.h"

static char *ids[] = {"p#0", "p#1", "p#2"};
static char *secrets[] = {"k0", "k1", "k2"};

typedef struct fixture {
    gyre_provider_conf_t p[2];
    gyre_target_conf_t targets[2], fallbacks[1];
    gyre_route_conf_t r;
    gyre_config_t c;
    gyre_overrides_t *o;
    gyre_keypool_t kp;
} fixture_t;

static void setup(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 2; i++) {
        f->p[i].name = i ? "q" : "p";
        f->p[i].keys = secrets;
        f->p[i].key_ids = ids;
        f->p[i].nkeys = 3;
        f->p[i].breaker = (gyre_breaker_conf_t){.failures = 0};
    }
    f->targets[0] = (gyre_target_conf_t){0, "a", 1};
    f->targets[1] = (gyre_target_conf_t){1, "b", 1};
    f->fallbacks[0] = (gyre_target_conf_t){0, "c", 1};
    f->r = (gyre_route_conf_t){.name = "chat", .targets = f->targets, .ntargets = 2, .fallbacks = f->fallbacks,
                               .nfallbacks = 1};
    f->c.providers = f->p;
    f->c.nproviders = 2;
    f->c.routes = &f->r;
    f->c.nroutes = 1;
    f->o = gyre_overrides_create(&f->c);
    gyre_keypool_init(&f->kp, &f->p[0]);
    gyre_keypool_set_overrides(&f->kp, f->o, 0);
}

static void teardown(fixture_t *f)
{
    gyre_keypool_dispose(&f->kp);
    gyre_overrides_destroy(f->o);
}

TEST(route_overrides_a_key_out_is_skipped_by_round_robin)
{
    fixture_t f;
    setup(&f);
    CHECK_INT(gyre_overrides_set_key_out(f.o, 0, 1, 1), 0);
    int got[4];
    for (int i = 0; i < 4; i++) {
        got[i] = gyre_keypool_pick(&f.kp, 1000, 0, -1);
        gyre_keypool_record(&f.kp, got[i], 1, 1000);
    }
    CHECK_INT(got[0], 0);
    CHECK_INT(got[1], 2);
    CHECK_INT(got[2], 0);
    CHECK_INT(got[3], 2);
    /* Back in: round robin over all three again, from where it was (after key 2: key 0). */
    CHECK_INT(gyre_overrides_set_key_out(f.o, 0, 1, 0), 0);
    CHECK_INT(gyre_keypool_pick(&f.kp, 1000, 0, -1), 0);
    CHECK_INT(gyre_keypool_pick(&f.kp, 1000, 0, -1), 1);
    teardown(&f);
}

TEST(route_overrides_a_key_out_still_serves_when_every_other_key_rests)
{
    fixture_t f;
    setup(&f);
    CHECK_INT(gyre_overrides_set_key_out(f.o, 0, 1, 1), 0);
    gyre_keypool_cooldown(&f.kp, 0, 5000, 1000);
    gyre_keypool_cooldown(&f.kp, 2, 5000, 1000);
    CHECK_INT(gyre_keypool_available(&f.kp, 1000), 1);
    CHECK_INT(gyre_keypool_pick(&f.kp, 1000, 0, -1), 1);
    /* The others back: the key out is skipped again. */
    CHECK_INT(gyre_keypool_pick(&f.kp, 5000, 0, -1), 2);
    teardown(&f);
}

TEST(route_overrides_the_last_key_and_the_last_target_are_never_taken_out)
{
    fixture_t f;
    setup(&f);
    CHECK_INT(gyre_overrides_set_key_out(f.o, 0, 0, 1), 0);
    CHECK_INT(gyre_overrides_set_key_out(f.o, 0, 1, 1), 0);
    CHECK_INT(gyre_overrides_set_key_out(f.o, 0, 2, 1), -EBUSY);
    CHECK_INT(gyre_overrides_set_target_out(f.o, 0, 0, 1), 0);
    CHECK_INT(gyre_overrides_set_target_out(f.o, 0, 1, 1), 0);
    CHECK_INT(gyre_overrides_set_target_out(f.o, 0, 2, 1), -EBUSY);
    teardown(&f);
}

TEST(route_overrides_a_provider_held_open_has_no_usable_key_until_it_closes)
{
    fixture_t f;
    setup(&f);
    CHECK_INT(gyre_overrides_set_provider_open(f.o, 0, 1), 0);
    CHECK_INT(gyre_keypool_available(&f.kp, 1000), 0);
    CHECK_INT(gyre_keypool_pick(&f.kp, 1000, 0, -1), -1);
    CHECK_INT(gyre_keypool_next_usable_ms(&f.kp, 1000), 2000); /* the next evaluation, a second on */
    CHECK_INT(gyre_overrides_set_provider_open(f.o, 0, 0), 0);
    CHECK_INT(gyre_keypool_pick(&f.kp, 1000, 0, -1), 0);
    teardown(&f);
}

TEST(route_overrides_a_target_out_of_rotation_goes_to_the_end_of_the_plan)
{
    fixture_t f;
    setup(&f);
    gyre_target_state_t states[3] = {{0}};
    gyre_candidate_t c[3] = {{0, "a", 1, &states[0], 0}, {1, "b", 1, &states[1], 0}, {0, "c", 1, &states[2], 1}};
    CHECK_INT(gyre_overrides_set_target_out(f.o, 0, 0, 1), 0);
    gyre_route_plan_overrides(c, 3, states, f.o, 0);
    CHECK_STR(c[0].model, "b");
    CHECK_STR(c[1].model, "c");
    CHECK_STR(c[2].model, "a");
    CHECK(c[2].state == &states[0]);
    /* Nothing out: the order stays. */
    CHECK_INT(gyre_overrides_set_target_out(f.o, 0, 0, 0), 0);
    gyre_route_plan_overrides(c, 3, states, f.o, 0);
    CHECK_STR(c[0].model, "b");
    CHECK_STR(c[2].model, "a");
    teardown(&f);
}
