/*
 * Feedback (src/loop/feedback.c): a body checked against the declared
 * metrics, each refusal naming its field; the record found in the store
 * by trace or by session and written as a human score; the answer's exact
 * shape; and who may POST /v1/feedback (control/access.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config_test.h"
#include "control/access.h"
#include "loop/feedback.h"
#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

static gyre_config_t *metrics_config(void)
{
    gyre_config_errors_t e = {0};
    gyre_config_t *c = parse("feedback:\n"
                             "  metrics:\n"
                             "    - {name: helpful, type: boolean}\n"
                             "    - {name: rating, type: number, min: 1, max: 5}\n"
                             "    - {name: tone, type: category, categories: [calm, rude]}\n",
                             &e);
    CHECK(c != NULL);
    gyre_config_errors_dispose(&e);
    return c;
}

static void refused(const gyre_config_t *c, const char *body, const char *param, const char *msg)
{
    gyre_feedback_t f;
    const char *p = "unset";
    char err[256] = "";
    CHECK_INT(gyre_feedback_parse(c, body, strlen(body), &f, &p, err, sizeof(err)), -EINVAL);
    if (param == NULL)
        CHECK(p == NULL);
    else
        CHECK_STR(p != NULL ? p : "(null)", param);
    CHECK_STR(err, msg);
}

TEST(feedback_parse_reads_each_metric_type_and_the_optional_fields)
{
    gyre_config_t *c = metrics_config();
    gyre_feedback_t f;
    const char *p;
    char err[256];
    const char *b1 = "{\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"name\":\"helpful\",\"value\":true,"
                     "\"comment\":\"good\",\"correction\":\"Better.\"}";
    CHECK_INT(gyre_feedback_parse(c, b1, strlen(b1), &f, &p, err, sizeof(err)), 0);
    CHECK_STR(f.trace_id, "0123456789abcdef0123456789abcdef");
    CHECK(f.session == NULL);
    CHECK_STR(f.name, "helpful");
    CHECK(f.value == 1);
    CHECK(f.label == NULL);
    CHECK_STR(f.comment, "good");
    CHECK_STR(f.correction, "Better.");
    gyre_feedback_dispose(&f);
    const char *b2 = "{\"session_id\":\"s-1\",\"name\":\"tone\",\"value\":\"rude\",\"comment\":null}";
    CHECK_INT(gyre_feedback_parse(c, b2, strlen(b2), &f, &p, err, sizeof(err)), 0);
    CHECK_STR(f.trace_id, "");
    CHECK_STR(f.session, "s-1");
    CHECK(isnan(f.value));
    CHECK_STR(f.label, "rude");
    CHECK(f.comment == NULL);
    gyre_feedback_dispose(&f);
    const char *b3 = "{\"session_id\":\"s-1\",\"name\":\"rating\",\"value\":5}";
    CHECK_INT(gyre_feedback_parse(c, b3, strlen(b3), &f, &p, err, sizeof(err)), 0);
    CHECK(f.value == 5);
    gyre_feedback_dispose(&f);
    gyre_config_free(c);
}

TEST(feedback_parse_refusals_name_the_field_at_fault)
{
    gyre_config_t *c = metrics_config();
    const char *t = "\"trace_id\":\"0123456789abcdef0123456789abcdef\"";
    char b[512];
    refused(c, "[1]", NULL, "the body must be a JSON object");
    refused(c, "{\"name\":\"helpful\",\"value\":true}", "trace_id", "'trace_id' or 'session_id' is required");
    refused(c, "{\"trace_id\":\"0123456789abcdef0123456789abcdef\",\"session_id\":\"s\",\"name\":\"helpful\"}",
            "trace_id", "pass 'trace_id' or 'session_id', not both");
    refused(c, "{\"trace_id\":\"0123456789ABCDEF0123456789ABCDEF\",\"name\":\"helpful\",\"value\":true}", "trace_id",
            "'trace_id' must be 32 lowercase hex digits (the x-gyre-trace-id of the call)");
    refused(c, "{\"session_id\":\"\",\"name\":\"helpful\",\"value\":true}", "session_id",
            "'session_id' must be a string of 1 to 1024 bytes");
    snprintf(b, sizeof(b), "{%s,\"value\":true}", t);
    refused(c, b, "name", "'name' (the metric's) is required, a string");
    snprintf(b, sizeof(b), "{%s,\"name\":\"stars\",\"value\":true}", t);
    refused(c, b, "name", "unknown metric 'stars' (this gateway's metrics: helpful, rating, tone)");
    snprintf(b, sizeof(b), "{%s,\"name\":\"helpful\",\"value\":1}", t);
    refused(c, b, "value", "'value' must be true or false for the boolean metric 'helpful'");
    snprintf(b, sizeof(b), "{%s,\"name\":\"rating\",\"value\":0.5}", t);
    refused(c, b, "value", "'value' 0.5 is outside the range of 'rating' (1 to 5)");
    snprintf(b, sizeof(b), "{%s,\"name\":\"tone\",\"value\":\"loud\"}", t);
    refused(c, b, "value", "'value' must be one of the categories of 'tone': calm, rude");
    snprintf(b, sizeof(b), "{%s,\"name\":\"tone\",\"value\":\"calm\",\"correction\":[]}", t);
    refused(c, b, "correction", "'correction' must be a string");
    gyre_config_free(c);
    gyre_config_errors_t e = {0};
    gyre_config_t *none = parse("workers: 1\n", &e);
    CHECK(none != NULL);
    CHECK_INT(none->nfeedback_metrics, 0);
    gyre_config_errors_dispose(&e);
    snprintf(b, sizeof(b), "{%s,\"name\":\"helpful\",\"value\":true}", t);
    refused(none, b, "name",
            "unknown metric 'helpful': this gateway declares none (feedback: metrics: in the config)");
    gyre_config_free(none);
}

TEST(feedback_record_finds_the_trace_or_the_session_and_stores_a_human_score)
{
    gyre_store_t *s = NULL;
    char err[256] = "";
    CHECK_INT(gyre_store_open("sqlite::memory:", GYRE_STORE_OPEN_WRITE, &s, err, sizeof(err)), 0);
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    snprintf(t.trace_id, sizeof(t.trace_id), "%032x", 5);
    t.started_us = 777;
    t.ended_us = 778;
    t.ttft_us = t.prompt_tokens = t.completion_tokens = t.cached_tokens = t.reasoning_tokens = -1;
    t.cost_usd = NAN;
    t.endpoint = TS("/v1/chat/completions");
    t.session = TS("sess-9");
    t.status = 200;
    const gyre_trace_t *one[] = {&t};
    CHECK_INT(gyre_store_write_batch(s, one, 1, err, sizeof(err)), 0);
    gyre_config_t *c = metrics_config();
    gyre_feedback_t f;
    const char *p;
    const char *body = "{\"trace_id\":\"00000000000000000000000000000005\",\"name\":\"rating\",\"value\":3}";
    CHECK_INT(gyre_feedback_parse(c, body, strlen(body), &f, &p, err, sizeof(err)), 0);
    CHECK_INT(gyre_feedback_record(s, &f, 0, err, sizeof(err)), 0);
    CHECK_STR(f.session, "sess-9");
    CHECK_INT(f.trace_started_us, 777);
    CHECK(f.created_us > 0);
    gyre_buf_t out;
    gyre_buf_init(&out, 1 << 16);
    CHECK_INT(gyre_feedback_render(&f, &out), 0);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"trace_id\":\"00000000000000000000000000000005\",\"session_id\":\"sess-9\",\"name\":\"rating\","
             "\"value\":3,\"label\":null,\"comment\":null,\"correction\":null,\"created_us\":%lld}",
             (long long)f.created_us);
    CHECK_STR(out.base, want);
    gyre_feedback_dispose(&f);
    /* By session; and an unknown trace is -ENOENT after the wait (0 ms here). */
    const char *bs = "{\"session_id\":\"sess-9\",\"name\":\"tone\",\"value\":\"calm\"}";
    CHECK_INT(gyre_feedback_parse(c, bs, strlen(bs), &f, &p, err, sizeof(err)), 0);
    CHECK_INT(gyre_feedback_record(s, &f, 0, err, sizeof(err)), 0);
    gyre_feedback_dispose(&f);
    const char *bu = "{\"trace_id\":\"00000000000000000000000000000006\",\"name\":\"helpful\",\"value\":true}";
    CHECK_INT(gyre_feedback_parse(c, bu, strlen(bu), &f, &p, err, sizeof(err)), 0);
    CHECK_INT(gyre_feedback_record(s, &f, 0, err, sizeof(err)), -ENOENT);
    CHECK_STR(err, "no trace '00000000000000000000000000000006'");
    gyre_feedback_dispose(&f);
    gyre_buf_reset(&out);
    CHECK_INT(gyre_store_get_trace(s, "00000000000000000000000000000005", &out, err, sizeof(err)), 0);
    const char *fb = strstr(out.base, ",\"feedback\":[");
    CHECK(fb != NULL);
    static const char first[] = ",\"feedback\":[{\"name\":\"rating\",\"value\":3,\"label\":null,\"comment\":null,"
                                "\"correction\":null,\"session\":false,";
    CHECK(fb != NULL && strncmp(fb, first, strlen(first)) == 0);
    CHECK(strstr(out.base, "{\"name\":\"tone\",\"value\":null,\"label\":\"calm\",\"comment\":null,\"correction\":null,"
                           "\"session\":true,") != NULL);
    gyre_buf_dispose(&out);
    gyre_config_free(c);
    gyre_store_close(s);
}

TEST(feedback_is_open_to_a_client_key_the_read_token_and_the_admin_token)
{
    CHECK_INT(gyre_access_need_for("/v1/feedback", 12), GYRE_NEED_FEEDBACK);
    gyre_auth_conf_t auth;
    memset(&auth, 0, sizeof(auth));
    char *keys[] = {"gk-client-key-0123456789abcdef"};
    auth.mode = GYRE_AUTH_KEYS;
    auth.keys = keys;
    auth.nkeys = 1;
    auth.read_token = "rt-read-token-0123456789abcdef";
    auth.admin_token = "at-admin-token-0123456789abcde";
    gyre_access_t *a = gyre_access_create(&auth);
    CHECK_INT(gyre_access_decide_role(a, GYRE_NEED_FEEDBACK, GYRE_ROLE_CLIENT), GYRE_ACCESS_ALLOW);
    CHECK_INT(gyre_access_decide_role(a, GYRE_NEED_FEEDBACK, GYRE_ROLE_READ), GYRE_ACCESS_ALLOW);
    CHECK_INT(gyre_access_decide_role(a, GYRE_NEED_FEEDBACK, GYRE_ROLE_ADMIN), GYRE_ACCESS_ALLOW);
    CHECK_INT(gyre_access_decide_role(a, GYRE_NEED_FEEDBACK, GYRE_ROLE_NONE), GYRE_ACCESS_UNRECOGNISED);
    CHECK_STR(gyre_access_message(GYRE_ACCESS_NO_CREDENTIAL, GYRE_NEED_FEEDBACK),
              "no key was sent: POST /v1/feedback needs a client key, the read_token or the admin_token of this "
              "gateway, as 'Authorization: Bearer KEY'");
    /* The read token still makes no model call. */
    CHECK_INT(gyre_access_decide_role(a, GYRE_NEED_CLIENT, GYRE_ROLE_READ), GYRE_ACCESS_FORBIDDEN);
    gyre_access_destroy(a);
}
