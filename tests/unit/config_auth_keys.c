/*
 * src/config/config.c, `auth: keys:` in its mapping form ({key, id, team,
 * agent}) beside plain strings: every config key has a stable id that traces
 * and stats show, and every error names its file:line and field, never the key.
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_test.h"
#include "test.h"

TEST(config_auth_keys_mapping_form_gives_id_team_and_agent_and_plain_keys_get_their_place_as_id)
{
    gyre_config_errors_t errs = {0};
    setenv("GYRE_T_SVC_KEY", "sk-service-key-0123456789", 1);
    gyre_config_t *c = parse("auth:\n"
                             "  keys:\n"
                             "    - sk-plain-key-0123456789\n"
                             "    - {key: env:GYRE_T_SVC_KEY, id: svc-a, team: search, agent: planner}\n"
                             "    - {key: sk-other-key-0123456789, id: svc-b}\n" PROVIDER_P,
                             &errs);
    CHECK(c != NULL);
    CHECK_INT(errs.count, 0);
    CHECK_INT(c->auth.nkeys, 3);
    CHECK_STR(c->auth.keys[0], "sk-plain-key-0123456789");
    CHECK_STR(c->auth.key_meta[0].id, "auth.keys[0]");
    CHECK_STR(c->auth.key_meta[0].team, "");
    CHECK_STR(c->auth.keys[1], "sk-service-key-0123456789");
    CHECK_STR(c->auth.key_meta[1].id, "svc-a");
    CHECK_STR(c->auth.key_meta[1].team, "search");
    CHECK_STR(c->auth.key_meta[1].agent, "planner");
    CHECK_STR(c->auth.keys[2], "sk-other-key-0123456789");
    CHECK_STR(c->auth.key_meta[2].id, "svc-b");
    CHECK_STR(c->auth.key_meta[2].team, "");
    CHECK_STR(c->auth.key_meta[2].agent, "");
    gyre_config_free(c);
}

TEST(config_auth_keys_mapping_errors_name_file_line_and_field_and_never_the_key)
{
    CHECK_ERRORS("auth:\n"
                 "  keys:\n"
                 "    - {id: svc-a}\n"
                 "    - {key: sk-a-key-0123456789}\n"
                 "    - {key: sk-b-key-0123456789, id: 'has space'}\n"
                 "    - {key: sk-c-key-0123456789, id: svc-c, colour: red}\n"
                 "    - {key: sk-short, id: svc-d}\n"
                 "  admin_token: admin-token-0123456789\n" PROVIDER_P,
                 "t.yaml:3: auth.keys[0]: has no 'key' (write {key: env:NAME, id: NAME, team: NAME, agent: NAME})\n"
                 "t.yaml:4: auth.keys[1]: has no 'id': a key in this form names its id, which traces and stats show\n"
                 "t.yaml:5: auth.keys[2].id: must be 1 to 63 characters of A-Z a-z 0-9 . _ : / -\n"
                 "t.yaml:6: auth.keys[3]: unknown field 'colour' (known: key, id, team, agent)\n"
                 "t.yaml:7: auth.keys[4].key: is shorter than 16 characters; use a long random value (openssl rand "
                 "-hex 32)\n");
}

TEST(config_auth_keys_two_keys_with_one_id_is_an_error)
{
    CHECK_ERRORS("auth:\n"
                 "  keys:\n"
                 "    - {key: sk-a-key-0123456789, id: svc-a}\n"
                 "    - {key: sk-b-key-0123456789, id: svc-a}\n" PROVIDER_P,
                 "t.yaml:4: auth.keys[1]: id 'svc-a' is the id of another key; each key's id must be distinct\n");
}
