/*
 * The `feedback:` section (src/config/feedback.c): every field read as
 * written with its defaults, and each error naming
 * feedback.metrics[i].field with its line.
 */
#include <stdlib.h>
#include <string.h>

#include "config_test.h"
#include "test.h"

TEST(config_feedback_metrics_read_every_type_range_category_and_direction)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("feedback:\n"
                             "  metrics:\n"
                             "    - {name: helpful, type: boolean}\n"
                             "    - {name: rating, type: number, min: -1.5, max: 5, optimize: max}\n"
                             "    - {name: wait, type: number, optimize: min}\n"
                             "    - name: tone\n"
                             "      type: category\n"
                             "      categories: [calm, rude]\n",
                             &e);
    CHECK(c != NULL);
    CHECK_INT(e.count, 0);
    CHECK_INT(c->nfeedback_metrics, 4);
    const gyre_feedback_metric_conf_t *m = c->feedback_metrics;
    CHECK_STR(m[0].name, "helpful");
    CHECK_INT(m[0].kind, GYRE_METRIC_BOOLEAN);
    CHECK_INT(m[0].higher_is_better, 1);
    CHECK_INT(m[0].line, 3);
    CHECK_STR(m[1].name, "rating");
    CHECK_INT(m[1].kind, GYRE_METRIC_NUMBER);
    CHECK(m[1].min == -1.5 && m[1].max == 5);
    CHECK_INT(m[2].kind, GYRE_METRIC_NUMBER);
    CHECK(m[2].min == 0 && m[2].max == 0);
    CHECK_INT(m[2].higher_is_better, 0);
    CHECK_STR(m[3].name, "tone");
    CHECK_INT(m[3].kind, GYRE_METRIC_CATEGORY);
    CHECK_INT(m[3].ncategories, 2);
    CHECK_STR(m[3].categories[0], "calm");
    CHECK_STR(m[3].categories[1], "rude");
    CHECK_INT(m[3].line, 6);
    gyre_config_free(c);
    gyre_config_errors_dispose(&e);
}

TEST(config_feedback_errors_name_the_metric_field_and_line)
{
    CHECK_ERRORS("feedback:\n"
                 "  metrics:\n"
                 "    - {name: 'a b', type: boolean}\n"
                 "    - {name: r, type: score}\n"
                 "    - {name: n, type: number, min: 3}\n"
                 "    - {name: m, type: number, min: 3, max: 1}\n"
                 "    - {name: t, type: category}\n"
                 "    - {name: u, type: category, categories: [x, x]}\n"
                 "    - {name: b, type: boolean, max: 2, colour: red}\n"
                 "    - {type: boolean}\n"
                 "    - {name: dup, type: boolean}\n"
                 "    - {name: dup, type: number, optimize: up}\n"
                 "  other: 1\n",
                 "t.yaml:3: feedback.metrics[0].name: 'a b' is not a metric name (1 to 64 of A-Z a-z 0-9 . _ : -)\n"
                 "t.yaml:4: feedback.metrics[1].type: unknown value 'score' (supported: boolean, number, category)\n"
                 "t.yaml:4: feedback.metrics[1]: needs a 'type' (boolean, number or category)\n"
                 "t.yaml:5: feedback.metrics[2]: a range needs both 'min' and 'max'\n"
                 "t.yaml:6: feedback.metrics[3].max: must be greater than min (3)\n"
                 "t.yaml:7: feedback.metrics[4]: a category metric needs 'categories' (a list of its values)\n"
                 "t.yaml:8: feedback.metrics[5].categories[1]: 'x' is listed twice\n"
                 "t.yaml:9: feedback.metrics[6]: unknown field 'colour' (known: name, type, min, max, categories, "
                 "optimize)\n"
                 "t.yaml:9: feedback.metrics[6].max: applies to a number metric only\n"
                 "t.yaml:10: feedback.metrics[7]: needs a 'name'\n"
                 "t.yaml:12: feedback.metrics[9].optimize: unknown value 'up' (supported: max, min)\n"
                 "t.yaml:12: feedback.metrics[9].name: 'dup' is declared twice (first at line 11)\n"
                 "t.yaml:13: feedback: unknown field 'other' (known: metrics)\n");
}
