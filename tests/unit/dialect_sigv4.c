/*
 * src/dialect/sigv4.c: AWS Signature Version 4, checked against values
 * gyre did not compute.  The vanilla cases are AWS's SigV4 test suite
 * (credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
 * service "service", us-east-1, 20150830T123600Z); the Bedrock-shaped ones
 * were signed by botocore 1.43 (SigV4Auth, service "bedrock") for the same
 * credentials and time.
 */
#include "dialect/sigv4.h"

#include <errno.h>
#include <string.h>

#include "test.h"

#define NOW 1440938160LL /* 2015-08-30T12:36:00Z */
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
/* The Bedrock-shaped body, and its SHA-256. */
#define BODY                                                                                                           \
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}],\"inferenceConfig\":{\"maxTokens\":512}}"
#define BODY_SHA256 "6def7c6359539009ac44de49a0f0ea85ca70bc19dab1bb6012799a505f6cff13"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const gyre_sigv4_creds_t example = {"AKIDEXAMPLE", SECRET, NULL};

static void sign_suite_case(const char *method, const char *path, gyre_buf_t *out)
{
    gyre_sigv4_request_t req = {
        .method = method, .host = "example.amazonaws.com", .path = path, .now = NOW, .without_content_sha256 = 1};
    CHECK_INT(gyre_sigv4_sign_request(&example, "us-east-1", "service", &req, out), 0);
}

/* --- AWS's test suite ------------------------------------------------------ */

TEST(sigv4_get_vanilla_matches_the_aws_test_suite)
{
    gyre_buf_t h;
    gyre_buf_init(&h, 4096);
    sign_suite_case("GET", "/", &h);
    CHECK_STR(h.base, "x-amz-date: 20150830T123600Z\r\n"
                      "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                      "SignedHeaders=host;x-amz-date, "
                      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\r\n");
    gyre_buf_dispose(&h);
}

TEST(sigv4_post_vanilla_matches_the_aws_test_suite)
{
    gyre_buf_t h;
    gyre_buf_init(&h, 4096);
    sign_suite_case("POST", "/", &h);
    CHECK_STR(h.base, "x-amz-date: 20150830T123600Z\r\n"
                      "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                      "SignedHeaders=host;x-amz-date, "
                      "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b\r\n");
    gyre_buf_dispose(&h);
}

TEST(sigv4_get_vanilla_query_order_key_case_sorts_the_parameters)
{
    gyre_buf_t h, creq;
    gyre_buf_init(&h, 4096);
    gyre_buf_init(&creq, 4096);
    sign_suite_case("GET", "/?Param2=value2&Param1=value1", &h);
    CHECK(strstr(h.base, "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500\r\n") != NULL);
    gyre_sigv4_request_t req = {.method = "GET",
                                .host = "example.amazonaws.com",
                                .path = "/?Param2=value2&Param1=value1",
                                .now = NOW,
                                .without_content_sha256 = 1};
    CHECK_INT(gyre_sigv4_canonical_request(&req, NULL, &creq), 0);
    CHECK_STR(creq.base,
              "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
              "\nhost;x-amz-date\n" EMPTY_SHA256);
    gyre_buf_dispose(&h);
    gyre_buf_dispose(&creq);
}

TEST(sigv4_canonical_query_gives_a_bare_key_an_empty_value_and_sorts_equal_keys_by_value)
{
    gyre_buf_t creq;
    gyre_buf_init(&creq, 4096);
    gyre_sigv4_request_t req = {
        .method = "GET", .host = "h", .path = "/p?b=2&a&b=1&&c=", .now = NOW, .without_content_sha256 = 1};
    CHECK_INT(gyre_sigv4_canonical_request(&req, NULL, &creq), 0);
    CHECK_STR(creq.base,
              "GET\n/p\na=&b=1&b=2&c=\nhost:h\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256);
    gyre_buf_dispose(&creq);
}

/* --- Bedrock-shaped requests (botocore's signatures) ----------------------- */

TEST(sigv4_bedrock_converse_post_double_encodes_the_model_id_colon)
{
    gyre_buf_t creq;
    gyre_buf_init(&creq, 4096);
    gyre_sigv4_request_t req = {.method = "POST",
                                .host = "bedrock-runtime.us-east-1.amazonaws.com",
                                .path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                                .content_type = "application/json",
                                .body = BODY,
                                .body_len = strlen(BODY),
                                .now = NOW};
    CHECK_INT(gyre_sigv4_canonical_request(&req, NULL, &creq), 0);
    CHECK_STR(creq.base, "POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n"
                         "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n"
                         "x-amz-content-sha256:" BODY_SHA256 "\nx-amz-date:20150830T123600Z\n\n"
                         "content-type;host;x-amz-content-sha256;x-amz-date\n" BODY_SHA256);
    gyre_buf_dispose(&creq);
}

TEST(sigv4_bedrock_converse_post_matches_botocore)
{
    gyre_buf_t h;
    gyre_buf_init(&h, 4096);
    CHECK_INT(gyre_sigv4_sign(&example, "us-east-1", "bedrock", "POST", "bedrock-runtime.us-east-1.amazonaws.com",
                              "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", "application/json", BODY,
                              strlen(BODY), NOW, &h),
              0);
    CHECK_STR(h.base, "x-amz-date: 20150830T123600Z\r\n"
                      "x-amz-content-sha256: " BODY_SHA256 "\r\n"
                      "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
                      "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
                      "Signature=e7d95d071b374b18c72c0fea28cc22c749348db95a845c8e457a636ba421de29\r\n");
    gyre_buf_dispose(&h);
}

TEST(sigv4_session_token_is_sent_and_signed_matching_botocore)
{
    char scratch[128];
    gyre_sigv4_creds_t creds;
    const char *key = "AKIDEXAMPLE:" SECRET ":FQoGZXIvYXdzEXAMPLETOKEN/+=";
    CHECK_INT(gyre_sigv4_parse_key(key, scratch, &creds), 0);
    gyre_buf_t h;
    gyre_buf_init(&h, 4096);
    CHECK_INT(gyre_sigv4_sign(&creds, "eu-west-3", "bedrock", "POST", "bedrock-runtime.eu-west-3.amazonaws.com",
                              "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream", "application/json",
                              BODY, strlen(BODY), NOW, &h),
              0);
    CHECK_STR(h.base, "x-amz-date: 20150830T123600Z\r\n"
                      "x-amz-content-sha256: " BODY_SHA256 "\r\n"
                      "x-amz-security-token: FQoGZXIvYXdzEXAMPLETOKEN/+=\r\n"
                      "authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-3/bedrock/aws4_request, "
                      "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
                      "Signature=08292d0926786adc6b3ca261856ac41da09862c44f111efdb9cd318397f869a5\r\n");
    gyre_buf_dispose(&h);
}

TEST(sigv4_a_full_header_buffer_fails_and_is_left_as_it_was)
{
    gyre_buf_t h;
    gyre_buf_init(&h, 64);
    gyre_buf_appends(&h, "accept: */*\r\n");
    CHECK_INT(gyre_sigv4_sign(&example, "us-east-1", "bedrock", "POST", "h", "/", NULL, "", 0, NOW, &h), -E2BIG);
    CHECK_STR(h.base, "accept: */*\r\n");
    gyre_buf_dispose(&h);
}

/* --- keys ----------------------------------------------------------------- */

TEST(sigv4_parse_key_splits_id_and_secret)
{
    char scratch[64];
    gyre_sigv4_creds_t c;
    CHECK_INT(gyre_sigv4_parse_key("AKID:se/cr+et", scratch, &c), 0);
    CHECK_STR(c.access_key_id, "AKID");
    CHECK_STR(c.secret_access_key, "se/cr+et");
    CHECK(c.session_token == NULL);
}

TEST(sigv4_parse_key_takes_a_third_part_as_the_session_token)
{
    char scratch[64];
    gyre_sigv4_creds_t c;
    CHECK_INT(gyre_sigv4_parse_key("AKID:SECRET:TOKEN==", scratch, &c), 0);
    CHECK_STR(c.access_key_id, "AKID");
    CHECK_STR(c.secret_access_key, "SECRET");
    CHECK_STR(c.session_token, "TOKEN==");
}

TEST(sigv4_parse_key_refuses_missing_or_empty_parts)
{
    char scratch[64];
    gyre_sigv4_creds_t c;
    CHECK_INT(gyre_sigv4_parse_key("no-colon", scratch, &c), -EINVAL);
    CHECK_INT(gyre_sigv4_parse_key(":SECRET", scratch, &c), -EINVAL);
    CHECK_INT(gyre_sigv4_parse_key("AKID:", scratch, &c), -EINVAL);
    CHECK_INT(gyre_sigv4_parse_key("AKID:SECRET:", scratch, &c), -EINVAL);
}

TEST(sigv4_bedrock_arn_model_id_is_encoded_once_on_the_wire_and_again_in_the_canonical_uri)
{
    /* The Bedrock dialect sends an ARN's ':' and '/' as %3A and %2F (one path segment); AWS's canonical URI
     * for services other than S3 encodes the path once more, so they are signed as %253A and %252F. */
    gyre_buf_t creq;
    gyre_buf_init(&creq, 4096);
    gyre_sigv4_request_t req = {.method = "POST",
                                .host = "bedrock-runtime.us-east-1.amazonaws.com",
                                .path = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
                                        "us.anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                                .content_type = "application/json",
                                .body = BODY,
                                .body_len = strlen(BODY),
                                .now = NOW};
    CHECK_INT(gyre_sigv4_canonical_request(&req, NULL, &creq), 0);
    CHECK_STR(creq.base, "POST\n/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile"
                         "%252Fus.anthropic.claude-3-haiku-20240307-v1%253A0/converse\n\n"
                         "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n"
                         "x-amz-content-sha256:" BODY_SHA256 "\nx-amz-date:20150830T123600Z\n\n"
                         "content-type;host;x-amz-content-sha256;x-amz-date\n" BODY_SHA256);
    gyre_buf_dispose(&creq);
}
