/*
 * stream-cpu: what a translated stream costs gyre's CPU against an OpenAI
 * pass-through stream of the same events (issue 11's target: Gemini → an
 * Anthropic client, 1,000 events, at most 1.5× the pass-through's CPU).
 *
 * Both streams carry the same answer: a role piece, 1,000 text pieces, the
 * finish and the usage.  The pass-through is OpenAI chunks to an OpenAI
 * client, which gyre relays: the relay's SSE watcher (the client dialect's
 * stream_ends, the usage-chunk check) and the copy into the client's buffer.
 * The translation is Gemini's events to an Anthropic client, as the proxy's
 * stream pipeline does it: the Gemini reader (dialect/gemini.c), the
 * accumulator (the trace, the cache, a resume) and gyre_client_anthropic's
 * encoder, then the same copy.
 *
 * Two figures for each, thread CPU time (CLOCK_THREAD_CPUTIME_ID) per whole
 * stream, the median of the runs:
 *   pipeline   gyre's own per-event work alone (events from memory);
 *   with I/O   the same, each event arriving by one read(2) from a socket and
 *              leaving by one write(2) to another, which every gateway pays
 *              per event whatever it does with it.  The provider's whole
 *              stream is in its socket before the clock starts and the
 *              client's socket holds all that is written (buffers forced
 *              large), so no call blocks: the figure is the calls' own CPU,
 *              not the scheduler's (a feeder and a drainer thread take over
 *              only when the kernel refuses the large buffers).
 * h2o's own work (HTTP framing, the event loop) is in neither figure; it is
 * the same for both streams, so the with-I/O ratio is an upper bound of the
 * whole gateway's.
 *
 * Usage: stream-cpu [--events N] [--runs N] [--json]
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "dialect/openai_stream.h"
#include "common/sse.h"

typedef struct stream {
    gyre_buf_t bytes;   /* the provider's stream */
    size_t *ends;       /* where each event (one read each) ends in it */
    size_t nevents;
} stream_t;

static void add_event(stream_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_event(stream_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gyre_buf_vappendf(&s->bytes, fmt, ap);
    va_end(ap);
    s->ends = realloc(s->ends, (s->nevents + 1) * sizeof(*s->ends));
    s->ends[s->nevents++] = s->bytes.len;
}

/* The same answer as Gemini streams it (alt=sse; usageMetadata on every event, as Gemini sends it). */
static void gemini_stream(stream_t *s, int n)
{
    for (int i = 0; i < n; i++)
        add_event(s,
                  "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"word%d \"}],\"role\": \"model\"},"
                  "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"candidatesTokenCount\": %d,"
                  "\"totalTokenCount\": %d},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
                  i, i + 1, i + 13);
    add_event(s,
              "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},"
              "\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,"
              "\"candidatesTokenCount\": %d,\"totalTokenCount\": %d},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
              n, n + 12);
}

/* The same answer as OpenAI streams it, usage included. */
static void openai_stream(stream_t *s, int n)
{
    static const char head[] = "{\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion.chunk\","
                               "\"created\":1741569952,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":"
                               "\"fp_44709d6fcb\",\"choices\":";
    add_event(s, "data: %s[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
                 "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head);
    for (int i = 0; i < n; i++)
        add_event(s, "data: %s[{\"index\":0,\"delta\":{\"content\":\"word%d \"},\"logprobs\":null,"
                     "\"finish_reason\":null}],\"usage\":null}\n\n", head, i);
    add_event(s, "data: %s[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
              head);
    add_event(s, "data: %s[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":%d,\"total_tokens\":%d,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\ndata: [DONE]\n\n", head, n, n + 12);
}

/* ---- the two pipelines ---------------------------------------------------- */

typedef struct pass {
    gyre_sse_parser_t sse;
    int done, usage;
} pass_t;

/* What the proxy's relay does with each event of a pass-through stream (proxy/stream.c). */
static void pass_event_cb(void *ctx, const char *event, size_t elen, const char *data, size_t dlen)
{
    pass_t *p = ctx;
    if (dlen > 9 && memmem(data, dlen, "\"usage\":{", 9) != NULL)
        p->usage++;
    if (gyre_client_openai.stream_ends(event, elen, data, dlen))
        p->done = 1;
}

typedef struct translate {
    gyre_dialect_stream_t *s;
    gyre_openai_accum_t acc;
    unsigned char enc[256];
    gyre_buf_t scratch;
} translate_t;

static int translate_emit(void *ctx, const gyre_event_t *ev)
{
    translate_t *t = ctx;
    gyre_openai_accum_emit(&t->acc, ev);
    return gyre_client_anthropic.encode(t->enc, ev, &t->scratch);
}

typedef struct io {
    int up[2], client[2]; /* [0] gyre's end, [1] the provider's / the client's */
    const stream_t *stream;
    int threads;          /* the buffers could not hold a whole stream: a feeder and a drainer run alongside */
} io_t;

static void *feeder(void *arg)
{
    io_t *io = arg;
    const char *p = io->stream->bytes.base;
    size_t left = io->stream->bytes.len;
    while (left > 0) {
        ssize_t w = write(io->up[1], p, left);
        if (w <= 0)
            break;
        p += w, left -= (size_t)w;
    }
    return NULL;
}

static void *drainer(void *arg)
{
    io_t *io = arg;
    char buf[65536];
    while (read(io->client[1], buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

/* Makes a socket's buffers hold `n` bytes (SO_*BUFFORCE, past the sysctl maximum, needs CAP_NET_ADMIN). */
static int big_buffers(int fd, int n)
{
    int ok = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n)) == 0 &&
             setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof(n)) == 0;
    return ok ? 0 : -1;
}

static int blocked_runs; /* runs with a feeder and a drainer (the buffers were refused) */

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Reads exactly `n` bytes of the next event (one read(2) when the feeder is ahead, as a provider's chunk is). */
static int read_event(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror("stream-cpu: write");
            exit(1);
        }
        p += w, n -= (size_t)w;
    }
}

/* One stream through one pipeline; returns this thread's CPU ns.  `translated`: Gemini → Anthropic client. */
static double run_once(const stream_t *st, int translated, int with_io, size_t *out_bytes)
{
    io_t io = {.stream = st};
    pthread_t tf, td;
    char *in = malloc(1 << 20);
    gyre_buf_t out;
    gyre_buf_init(&out, (size_t)1 << 24);
    pass_t pass;
    translate_t tr;
    if (translated) {
        gyre_chat_call_t call = {.model = "gemini-2.0-flash", .stream = 1, .include_usage = 1,
                                 .id = "chatcmpl-gyre-0123456789abcdef", .created = 1741569952};
        tr.s = gyre_dialect_gemini.stream_create(&call);
        gyre_openai_accum_init(&tr.acc, 8 * 1024 * 1024);
        gyre_client_call_t cc = {.id = call.id, .created = call.created, .include_usage = 1};
        gyre_client_anthropic.encoder_init(tr.enc, &cc);
        gyre_buf_init(&tr.scratch, 8 * 1024 * 1024);
    } else {
        memset(&pass, 0, sizeof(pass));
        gyre_sse_init(&pass.sse, 8 * 1024 * 1024, pass_event_cb, &pass);
    }
    if (with_io) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, io.up) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, io.client) != 0) {
            perror("stream-cpu: socketpair");
            exit(1);
        }
        int need = (int)(4 * st->bytes.len + (1 << 20));
        io.threads = big_buffers(io.up[0], need) != 0 || big_buffers(io.up[1], need) != 0 ||
                     big_buffers(io.client[0], need) != 0 || big_buffers(io.client[1], need) != 0;
        if (io.threads) {
            pthread_create(&tf, NULL, feeder, &io);
            pthread_create(&td, NULL, drainer, &io);
        } else {
            feeder(&io); /* the whole stream waits in the provider's socket */
        }
    }
    size_t sent = 0;
    double t0 = thread_cpu_ns();
    for (size_t i = 0, at = 0; i < st->nevents; at = st->ends[i++]) {
        size_t n = st->ends[i] - at;
        const char *ev = st->bytes.base + at;
        if (with_io) {
            if (read_event(io.up[0], in, n) != 0) {
                fprintf(stderr, "stream-cpu: the feeder stopped early\n");
                exit(1);
            }
            ev = in;
        }
        gyre_buf_reset(&out);
        if (translated) {
            gyre_event_sink_t sink = {translate_emit, &tr};
            gyre_api_error_t err;
            gyre_buf_reset(&tr.scratch);
            if (gyre_dialect_gemini.stream_feed(tr.s, ev, n, &sink, &err) != 0) {
                fprintf(stderr, "stream-cpu: the Gemini stream failed: %s\n", err.message);
                exit(1);
            }
            gyre_buf_append(&out, tr.scratch.base, tr.scratch.len); /* the proxy's push_out */
        } else {
            gyre_sse_feed(&pass.sse, ev, n);
            gyre_buf_append(&out, ev, n); /* the proxy's push_out */
        }
        if (with_io && out.len != 0)
            write_all(io.client[0], out.base, out.len);
        sent += out.len;
    }
    double ns = thread_cpu_ns() - t0;
    if (with_io) {
        close(io.up[0]);
        close(io.client[0]);
        if (io.threads) {
            pthread_join(tf, NULL);
            pthread_join(td, NULL);
        } else {
            drainer(&io);
        }
        close(io.up[1]);
        close(io.client[1]);
        *out_bytes = sent;
        if (io.threads)
            blocked_runs++;
    }
    if (translated) {
        if (!gyre_client_anthropic.encoder_complete(tr.enc) || tr.acc.content.len == 0) {
            fprintf(stderr, "stream-cpu: the translated stream did not complete\n");
            exit(1);
        }
        gyre_dialect_gemini.stream_destroy(tr.s);
        gyre_openai_accum_dispose(&tr.acc);
        gyre_buf_dispose(&tr.scratch);
    } else {
        if (!pass.done) {
            fprintf(stderr, "stream-cpu: the pass-through stream did not end with [DONE]\n");
            exit(1);
        }
        gyre_sse_dispose(&pass.sse);
    }
    gyre_buf_dispose(&out);
    free(in);
    *out_bytes = sent;
    return ns;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_run(const stream_t *st, int translated, int with_io, int runs, size_t *out_bytes)
{
    double *v = malloc((size_t)runs * sizeof(*v));
    for (int i = 0; i < runs; i++)
        v[i] = run_once(st, translated, with_io, out_bytes);
    qsort(v, (size_t)runs, sizeof(*v), cmp_double);
    double m = v[runs / 2];
    free(v);
    return m;
}

int main(int argc, char **argv)
{
    int n = 1000, runs = 101, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: stream-cpu [--events N] [--runs N] [--json]\n");
            return 2;
        }
    }
    if (n < 1 || runs < 1) {
        fprintf(stderr, "stream-cpu: --events and --runs must be at least 1\n");
        return 2;
    }
    gyre_json_init(); /* cJSON's hooks, as gyre serve installs them */
    stream_t gem = {0}, oai = {0};
    gyre_buf_init(&gem.bytes, (size_t)1 << 28);
    gyre_buf_init(&oai.bytes, (size_t)1 << 28);
    gemini_stream(&gem, n);
    openai_stream(&oai, n);
    size_t pass_out, tr_out;
    /* A warm-up of each, off the record. */
    run_once(&oai, 0, 0, &pass_out);
    run_once(&gem, 1, 0, &tr_out);
    double pass_pipe = median_run(&oai, 0, 0, runs, &pass_out);
    double tr_pipe = median_run(&gem, 1, 0, runs, &tr_out);
    double pass_io = median_run(&oai, 0, 1, runs, &pass_out);
    double tr_io = median_run(&gem, 1, 1, runs, &tr_out);
    if (json) {
        printf("{\"events\":%d,\"runs\":%d,\"passthrough\":{\"in_bytes\":%zu,\"out_bytes\":%zu,\"pipeline_us\":%.1f,"
               "\"with_io_us\":%.1f},\"translated\":{\"in_bytes\":%zu,\"out_bytes\":%zu,\"pipeline_us\":%.1f,"
               "\"with_io_us\":%.1f},\"ratio_pipeline\":%.2f,\"ratio_with_io\":%.2f}\n",
               n, runs, oai.bytes.len, pass_out, pass_pipe / 1e3, pass_io / 1e3, gem.bytes.len, tr_out, tr_pipe / 1e3,
               tr_io / 1e3, tr_pipe / pass_pipe, tr_io / pass_io);
    } else {
        if (blocked_runs != 0)
            printf("stream-cpu: the kernel refused large socket buffers: %d runs had a feeder and a drainer thread "
                   "(their blocking reads count)\n", blocked_runs);
        printf("stream-cpu: %d text events per stream, median of %d streams, this thread's CPU per stream\n", n, runs);
        printf("  %-42s %10s %12s %12s\n", "", "pipeline", "with I/O", "per event");
        printf("  %-42s %8.0f us %9.0f us %9.2f us\n", "OpenAI pass-through (OpenAI client)", pass_pipe / 1e3,
               pass_io / 1e3, pass_io / 1e3 / n);
        printf("  %-42s %8.0f us %9.0f us %9.2f us\n", "Gemini -> Anthropic client (translated)", tr_pipe / 1e3,
               tr_io / 1e3, tr_io / 1e3 / n);
        printf("  %-42s %10.2fx %11.2fx   (target: <= 1.5x)\n", "translated / pass-through", tr_pipe / pass_pipe,
               tr_io / pass_io);
    }
    gyre_buf_dispose(&gem.bytes);
    gyre_buf_dispose(&oai.bytes);
    free(gem.ends);
    free(oai.ends);
    return 0;
}
