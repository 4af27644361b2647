/*
 * bench-redact: what redaction (src/trace/redact.c) costs per 2 KB body, the
 * scanner gyre runs against the one it replaced (tests/unit/redact_reference.h,
 * compiled into this program at the same -O2), on four bodies of 2,048 bytes:
 *
 *   chat     chat JSON, English prose with dates, versions and amounts, no PII
 *   code     chat JSON asking about a Python snippet (\n and \" escapes, identifiers)
 *   numbers  a completion and a tool result: ids, timestamps, floats, counters
 *   pii      the chat body with an e-mail address, a phone, a card and an API key
 *
 * The machine is shared and noisy, so each round times every body with both
 * scanners back to back (alternating which goes first), and the figures are
 * the median over the rounds with their spread (min-max); the speed-up is
 * the median of the rounds' own ratios, which a change of load between
 * rounds does not skew.  Before timing,
 * every body is redacted by both and the outputs compared: a benchmark of a
 * scanner that answers differently would mean nothing.
 *
 *   bench-redact [--rounds N] [--iters N] [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact_reference.h"
#include "trace/redact.h"

#define BODY_LEN 2048
#define MAX_ROUNDS 64

typedef struct body {
    const char *name;
    char text[BODY_LEN + 1];
} body_t;

/* prefix, then sentences cycled until the body is BODY_LEN bytes with the suffix, padded with spaces. */
static void build(body_t *b, const char *name, const char *prefix, const char *const *sentences, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = 0, k = 0;
    b->name = name;
    memcpy(b->text, prefix, pl);
    n = pl;
    for (;;) {
        const char *s = sentences[k];
        size_t l = strlen(s);
        if (n + l + sl > BODY_LEN)
            break;
        memcpy(b->text + n, s, l);
        n += l;
        k = sentences[k + 1] != NULL ? k + 1 : 0;
    }
    memset(b->text + n, ' ', BODY_LEN - sl - n);
    memcpy(b->text + BODY_LEN - sl, suffix, sl);
    b->text[BODY_LEN] = '\0';
}

static const char *const prose[] = {
    "We moved the billing service to the new cluster on 2024-03-18 and the p99 latency went from 840 ms to 310 ms. ",
    "The team wants a short summary for the weekly review, written for people who were not in the incident call. ",
    "Version 2.14.1 of the client retries twice with a backoff of 250 ms, which doubled the load during the outage. ",
    "About 3,200 requests failed between 14:05 and 14:40 UTC; most of them came from the mobile app in Europe. ",
    "Please explain what changed, why it helped, and what we should watch over the next two weeks. ",
    "Keep it under 300 words, use plain language, and end with three concrete follow-up actions for the owners. ",
    "The database was not the bottleneck: CPU stayed below 45 percent and the connection pool never filled up. ",
    NULL};

static const char *const code[] = {
    "```python\\ndef load_settings(path: str) -> dict[str, str]:\\n    settings = {}\\n",
    "    with open(path, encoding=\\\"utf-8\\\") as handle:\\n        for line_number, line in enumerate(handle, "
    "1):\\n",
    "            key, sep, value = line.strip().partition(\\\"=\\\")\\n            if not sep:\\n",
    "                raise ValueError(f\\\"{path}:{line_number}: expected key=value\\\")\\n",
    "            settings[key.strip()] = value.strip()\\n    return settings\\n\\n",
    "max_retry_attempts_per_request = int(settings.get(\\\"retries\\\", \\\"3\\\"))\\n```\\n",
    "Why does this raise KeyError on the second call, and how would you test the parser? ",
    NULL};

static const char *const numbers[] = {"{\"ts\":1733059200123,\"host\":\"web-17\",\"cpu\":0.734,\"mem_kb\":5123456,"
                                      "\"rps\":1532.25,\"p99_ms\":48.7,\"errors\":3},",
                                      "{\"ts\":1733059260456,\"host\":\"web-18\",\"cpu\":0.412,\"mem_kb\":4987321,"
                                      "\"rps\":1498.5,\"p99_ms\":51.2,\"errors\":0},",
                                      "{\"ts\":1733059320789,\"host\":\"web-19\",\"cpu\":0.905,\"mem_kb\":6012345,"
                                      "\"rps\":1710.75,\"p99_ms\":63.9,\"errors\":12},",
                                      NULL};

static const char chat_prefix[] =
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"temperature\":0.7,\"messages\":[{\"role\":"
    "\"system\",\"content\":\"You are a concise assistant for a software team.\"},"
    "{\"role\":\"user\",\"content\":\"";
static const char chat_suffix[] = "\"}]}";
/* The chat body's prefix and then, once, an address, a phone, a card and a key (4 matches). */
static const char pii_prefix[] =
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"temperature\":0.7,\"messages\":[{\"role\":"
    "\"system\",\"content\":\"You are a concise assistant for a software team.\"},"
    "{\"role\":\"user\",\"content\":\"Send the summary to jane.doe@example.com and call me on +1 415-555-2671 "
    "if anything is unclear. The test card 4111 1111 1111 1111 was charged twice, and the key "
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z leaked in a log. ";
static const char numbers_prefix[] =
    "{\"id\":\"chatcmpl-9xYzAbCdEf0123456789QrStUv\",\"object\":\"chat.completion\",\"created\":1733059200,"
    "\"model\":\"gpt-4o-2024-08-06\",\"usage\":{\"prompt_tokens\":1834,\"completion_tokens\":212,\"total_tokens\":2046}"
    ","
    "\"tool_result\":[";
static const char numbers_suffix[] = "{\"ts\":0}]}";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

/* ns per body over `iters` redactions. */
static double time_one(int reference, const body_t *b, int iters)
{
    static char out[BODY_LEN * 2];
    double t0 = now_ns();
    for (int i = 0; i < iters; i++) {
        size_t n = reference ? redact_reference(GYRE_REDACT_ALL, b->text, BODY_LEN, out, sizeof(out), NULL)
                             : gyre_redact(GYRE_REDACT_ALL, b->text, BODY_LEN, out, sizeof(out), NULL);
        sink += n + (unsigned char)out[0];
    }
    return (now_ns() - t0) / iters;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int rounds = 9, iters = 20000, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: bench-redact [--rounds N] [--iters N] [--json]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || iters < 1) {
        fprintf(stderr, "bench-redact: --rounds is 1 to %d, --iters at least 1\n", MAX_ROUNDS);
        return 2;
    }
    static body_t bodies[4];
    build(&bodies[0], "chat", chat_prefix, prose, chat_suffix);
    build(&bodies[1], "code", chat_prefix, code, chat_suffix);
    build(&bodies[2], "numbers", numbers_prefix, numbers, numbers_suffix);
    build(&bodies[3], "pii", pii_prefix, prose, chat_suffix);
    size_t matches[4];
    for (int b = 0; b < 4; b++) {
        static char x[BODY_LEN * 2], y[BODY_LEN * 2];
        size_t cx, cy;
        size_t nx = redact_reference(GYRE_REDACT_ALL, bodies[b].text, BODY_LEN, x, sizeof(x), &cx);
        size_t ny = gyre_redact(GYRE_REDACT_ALL, bodies[b].text, BODY_LEN, y, sizeof(y), &cy);
        if (nx != ny || cx != cy || memcmp(x, y, nx) != 0) {
            fprintf(stderr, "bench-redact: the scanners disagree on the %s body\n", bodies[b].name);
            return 1;
        }
        matches[b] = cy;
    }
    double t[4][2][MAX_ROUNDS];
    for (int b = 0; b < 4; b++) /* warm-up */
        for (int r = 0; r < 2; r++)
            time_one(r, &bodies[b], iters / 10 + 1);
    for (int round = 0; round < rounds; round++)
        for (int b = 0; b < 4; b++)
            for (int k = 0; k < 2; k++) {
                int reference = (k + round) % 2; /* alternate which scanner runs first */
                t[b][reference][round] = time_one(reference, &bodies[b], iters);
            }
    if (json)
        printf("{\"body_bytes\":%d,\"rounds\":%d,\"iters\":%d,\"bodies\":[", BODY_LEN, rounds, iters);
    else
        printf("%-8s %7s  %-26s %-26s %s\n", "body", "matches", "before ns (median, min-max)",
               "after ns (median, min-max)", "speed-up");
    for (int b = 0; b < 4; b++) {
        double lo[2], hi[2], med[2], ratio[MAX_ROUNDS];
        for (int round = 0; round < rounds; round++)
            ratio[round] = t[b][1][round] / t[b][0][round];
        double speedup = median(ratio, rounds);
        for (int r = 0; r < 2; r++) {
            double v[MAX_ROUNDS];
            memcpy(v, t[b][r], sizeof(double) * (size_t)rounds);
            med[r] = median(v, rounds);
            lo[r] = v[0];
            hi[r] = v[rounds - 1];
        }
        if (json)
            printf("%s{\"name\":\"%s\",\"matches\":%zu,\"before_ns\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f},"
                   "\"after_ns\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f},\"speedup\":%.2f}",
                   b ? "," : "", bodies[b].name, matches[b], med[1], lo[1], hi[1], med[0], lo[0], hi[0], speedup);
        else {
            char before[64], after[64];
            snprintf(before, sizeof(before), "%.0f (%.0f-%.0f)", med[1], lo[1], hi[1]);
            snprintf(after, sizeof(after), "%.0f (%.0f-%.0f)", med[0], lo[0], hi[0]);
            printf("%-8s %7zu  %-26s %-26s %.1fx\n", bodies[b].name, matches[b], before, after, speedup);
        }
    }
    if (json)
        printf("]}\n");
    return 0;
}
