/*
 * src/config/overlay.c: routes changed through the admin API laid over a
 * configuration's routes, read by the file's own route parser, their errors
 * named after the overlay; and a route written back as JSON reads as the same
 * route.
 */
#include "config/overlay.h"

#include <errno.h>
#include <string.h>

#include "test.h"

static const char yaml[] = "providers:\n"
                           "  - {name: p, kind: openai, base_url: \"http://127.0.0.1:9/v1\", keys: [sk-unit-a]}\n"
                           "routes:\n"
                           "  - name: chat\n"
                           "    targets: [{provider: p, model: a}]\n"
                           "  - name: embed\n"
                           "    targets: [{provider: p, model: e}]\n";

static gyre_config_t *base(void)
{
    gyre_config_errors_t errs = {0};
    gyre_config_t *c = gyre_config_parse("unit.yaml", yaml, strlen(yaml), &errs);
    gyre_config_errors_dispose(&errs);
    return c;
}

TEST(overlay_replaces_the_route_of_its_name_in_place_and_adds_a_new_one_after)
{
    gyre_config_t *c = base();
    const char *names[] = {"chat", "extra"};
    const char *jsons[] = {"{\"name\":\"chat\",\"targets\":[{\"provider\":\"p\",\"model\":\"b\",\"weight\":3}],"
                           "\"retries\":2}",
                           "{\"name\":\"extra\",\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}"};
    gyre_config_errors_t errs = {0};
    CHECK_INT(gyre_config_apply_routes(c, names, jsons, 2, &errs), 0);
    CHECK_INT(errs.count, 0);
    CHECK_INT(c->nroutes, 3);
    CHECK_STR(c->routes[0].name, "chat");
    CHECK_STR(c->routes[0].targets[0].model, "b");
    CHECK_INT(c->routes[0].targets[0].weight, 3);
    CHECK_INT(c->routes[0].retries, 2);
    CHECK_STR(c->routes[1].name, "embed");
    CHECK_STR(c->routes[2].name, "extra");
    gyre_config_errors_dispose(&errs);
    gyre_config_free(c);
}

TEST(overlay_errors_name_the_overlay_and_the_field)
{
    gyre_config_t *c = base();
    const char *names[] = {"chat", "other"};
    const char *jsons[] = {"{\"name\":\"chat\",\"targets\":[{\"provider\":\"nope\",\"model\":\"b\"}]}",
                           "{\"name\":\"chat\",\"targets\":[{\"provider\":\"p\",\"model\":\"b\"}]}"};
    gyre_config_errors_t errs = {0};
    CHECK_INT(gyre_config_apply_routes(c, names, jsons, 2, &errs), -EINVAL);
    CHECK_INT(errs.count, 2);
    CHECK_STR(errs.items[0], "route overlay 'chat':1: routes[0].targets[0].provider: no provider is named 'nope'");
    CHECK_STR(errs.items[1], "route overlay 'other': name: 'chat' is not the overlay's route (other)");
    gyre_config_errors_dispose(&errs);
    gyre_config_free(c);
}

TEST(overlay_route_json_reads_back_as_the_same_route)
{
    gyre_config_t *c = base();
    const char *names[] = {"chat"};
    const char *jsons[] = {"{\"name\":\"chat\",\"targets\":[{\"provider\":\"p\",\"model\":\"b\",\"weight\":3}],"
                           "\"fallbacks\":[{\"provider\":\"p\",\"model\":\"f\"}],\"strategy\":\"least_latency\","
                           "\"fallback_on\":[\"timeout\",503],\"deadline_ms\":9000,\"midstream\":\"resume\","
                           "\"cache\":{\"ttl_ms\":1000},\"capture\":false,\"redact\":[\"email\",\"card\"]}"};
    gyre_config_errors_t errs = {0};
    CHECK_INT(gyre_config_apply_routes(c, names, jsons, 1, &errs), 0);
    gyre_buf_t once, twice;
    gyre_buf_init(&once, 1 << 16);
    gyre_buf_init(&twice, 1 << 16);
    gyre_config_route_json(c, &c->routes[0], &once);
    CHECK_STR(once.base,
              "{\"name\":\"chat\",\"targets\":[{\"provider\":\"p\",\"model\":\"b\",\"weight\":3}],\"fallbacks\":[{"
              "\"provider\":\"p\",\"model\":\"f\",\"weight\":1}],\"strategy\":\"least_latency\",\"fallback_on\":["
              "\"timeout\",503],\"retries\":0,\"backoff_ms\":100,\"backoff_max_ms\":5000,\"deadline_ms\":9000,"
              "\"midstream\":\"resume\",\"affinity\":\"none\",\"cache\":{\"enabled\":true,\"ttl_ms\":1000,"
              "\"max_bytes\":67108864},\"capture\":false,\"redact\":[\"email\",\"card\"]}");
    const char *again[] = {once.base};
    CHECK_INT(gyre_config_apply_routes(c, names, again, 1, &errs), 0);
    gyre_config_route_json(c, &c->routes[0], &twice);
    CHECK_STR(twice.base, once.base);
    gyre_buf_dispose(&once);
    gyre_buf_dispose(&twice);
    gyre_config_errors_dispose(&errs);
    gyre_config_free(c);
}
