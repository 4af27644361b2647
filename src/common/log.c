/* The logging hook: escaped, bounded, rate-limited lines (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <h2o/string_.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One call site's bucket, as a GCRA (the token bucket kept as one number, so a CAS updates it): `tat` is when
 * the bucket would be full again, in ns; a line passes while tat - now leaves room for one more. */
typedef struct log_site {
    _Atomic(const char *) fmt;
    _Atomic uint64_t tat;
    _Atomic uint64_t suppressed;
} log_site_t;

static log_site_t sites[GYRE_LOG_SITES];
static gyre_log_hook_t log_hook;
static void *log_hook_ctx;
static uint64_t (*log_clock)(void);

#define LOG_INTERVAL_NS (1000000000ull / GYRE_LOG_PER_SECOND)
#define LOG_TOLERANCE_NS ((GYRE_LOG_BURST - 1) * LOG_INTERVAL_NS)
/* What one line may occupy: the escaped text, the marker, the newline and a NUL. */
#define LOG_OUT_MAX (GYRE_LOG_LINE_MAX + sizeof(GYRE_LOG_TRUNCATED) + 1)

void gyre_log_set_hook(gyre_log_hook_t hook, void *ctx)
{
    log_hook = hook;
    log_hook_ctx = ctx;
}

void gyre_log_set_clock(uint64_t (*now_ns)(void))
{
    log_clock = now_ns;
}

void gyre_log_reset(void)
{
    for (size_t i = 0; i < GYRE_LOG_SITES; i++) {
        atomic_store(&sites[i].fmt, NULL);
        atomic_store(&sites[i].tat, 0);
        atomic_store(&sites[i].suppressed, 0);
    }
}

static uint64_t now_ns(void)
{
    if (log_clock != NULL)
        return log_clock();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The stderr hook: one write(2) per line, so lines of different threads never interleave. */
void gyre_log_to_stderr(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = write(2, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* stderr is gone: nothing else could say so */
        line += n;
        len -= (size_t)n;
    }
}

static void emit(const char *line, size_t len)
{
    if (log_hook != NULL)
        log_hook(log_hook_ctx, line, len);
    else
        gyre_log_to_stderr(NULL, line, len); /* no binary set one (a unit test, a fuzz driver) */
}

/* `cut`: the input was already cut short (the formatted text passed the raw buffer), so the marker is due. */
static size_t escape_line(char *out, size_t cap, const char *in, size_t n, int cut)
{
    const size_t tail = sizeof(GYRE_LOG_TRUNCATED) - 1 + 2; /* marker, '\n', NUL */
    size_t limit = cap - tail < GYRE_LOG_LINE_MAX ? cap - tail : GYRE_LOG_LINE_MAX;
    if (n > 0 && in[n - 1] == '\n')
        n--;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        char e[5]; /* "\\xNN" and the NUL h2o_hex_encode adds */
        size_t elen = 2;
        e[0] = '\\';
        if (c == '\\')
            e[1] = '\\';
        else if (c == '\n')
            e[1] = 'n';
        else if (c == '\r')
            e[1] = 'r';
        else if (c == '\t')
            e[1] = 't';
        else if (c >= 0x20 && c <= 0x7e)
            e[0] = (char)c, elen = 1;
        else
            e[1] = 'x', h2o_hex_encode(e + 2, &c, 1), elen = 4;
        /* At the bound the line stops at a whole escape and says so: a log line is for a person to read, and
         * 4 KiB of a hostile path is more than enough to see what it was. */
        if (o + elen > limit) {
            cut = 1;
            break;
        }
        memcpy(out + o, e, elen);
        o += elen;
    }
    if (cut) {
        memcpy(out + o, GYRE_LOG_TRUNCATED, sizeof(GYRE_LOG_TRUNCATED) - 1);
        o += sizeof(GYRE_LOG_TRUNCATED) - 1;
    }
    out[o++] = '\n';
    out[o] = '\0';
    return o;
}

size_t gyre_log_escape(char *out, size_t cap, const char *in, size_t n)
{
    return escape_line(out, cap, in, n, 0);
}

/* The bucket of `fmt`, claimed on first use; NULL when the table is full (that site is then not limited). */
static log_site_t *site_of(const char *fmt)
{
    uint64_t h = ((uint64_t)(uintptr_t)fmt >> 3) * 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < GYRE_LOG_SITES; k++) {
        log_site_t *s = &sites[(h + k) % GYRE_LOG_SITES];
        const char *f = atomic_load_explicit(&s->fmt, memory_order_acquire);
        if (f == fmt)
            return s;
        if (f == NULL) {
            const char *expected = NULL;
            if (atomic_compare_exchange_strong(&s->fmt, &expected, fmt) || expected == fmt)
                return s;
        }
    }
    return NULL;
}

static int site_take(log_site_t *s, uint64_t now)
{
    uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = tat > now ? tat : now;
        if (base - now > LOG_TOLERANCE_NS)
            return 0;
        if (atomic_compare_exchange_weak_explicit(&s->tat, &tat, base + LOG_INTERVAL_NS, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 1;
    }
}

static void emit_suppressed(const char *fmt, uint64_t n)
{
    char raw[512], out[LOG_OUT_MAX];
    /* The format names the site; its own "gyre: " would only repeat the prefix. */
    if (strncmp(fmt, "gyre: ", 6) == 0)
        fmt += 6;
    int len = snprintf(raw, sizeof(raw), "gyre: %llu similar line%s suppressed: %s", (unsigned long long)n,
                       n == 1 ? "" : "s", fmt);
    if (len < 0)
        return;
    int cut = (size_t)len >= sizeof(raw);
    emit(out, escape_line(out, sizeof(out), raw, cut ? sizeof(raw) - 1 : (size_t)len, cut));
}

void gyre_logf(const char *fmt, ...)
{
    log_site_t *s = site_of(fmt);
    if (s != NULL) {
        if (!site_take(s, now_ns())) {
            /* Over the limit: counted, not formatted. */
            atomic_fetch_add_explicit(&s->suppressed, 1, memory_order_relaxed);
            return;
        }
        uint64_t n = atomic_exchange_explicit(&s->suppressed, 0, memory_order_relaxed);
        if (n != 0)
            emit_suppressed(fmt, n);
    }
    char raw[GYRE_LOG_LINE_MAX + 1], out[LOG_OUT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    /* Formatted text past the raw buffer escapes to more than the line's bound anyway: cut, with the marker. */
    int cut = (size_t)len >= sizeof(raw);
    emit(out, escape_line(out, sizeof(out), raw, cut ? sizeof(raw) - 1 : (size_t)len, cut));
}

void gyre_log_flush(void)
{
    for (size_t i = 0; i < GYRE_LOG_SITES; i++) {
        const char *fmt = atomic_load_explicit(&sites[i].fmt, memory_order_acquire);
        if (fmt == NULL)
            continue;
        uint64_t n = atomic_exchange_explicit(&sites[i].suppressed, 0, memory_order_relaxed);
        if (n != 0)
            emit_suppressed(fmt, n);
    }
}

static void *flusher_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {GYRE_LOG_FLUSH_MS / 1000, (GYRE_LOG_FLUSH_MS % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        gyre_log_flush();
    }
    return NULL;
}

int gyre_log_start_flusher(void)
{
    /* The thread is created with every signal blocked, so SIGTERM still reaches the thread that waits for it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, NULL, flusher_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pthread_detach(t);
    return 0;
}
