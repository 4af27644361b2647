/*
 * libFuzzer driver for the encoders of text that leaves gyre for another
 * reader: the log line escaper (src/common/log.c) and the JSON string
 * encoder (src/common/buf.c, src/common/utf8.c).
 *
 * The promises checked, on any bytes:
 *   - a log line has exactly one newline, at its end, and only printable
 *     ASCII before it; it is at most GYRE_LOG_LINE_MAX bytes plus the
 *     truncation marker; when it is not truncated, undoing its escapes gives
 *     back the input (less one trailing newline), so nothing is lost or
 *     invented; gyre_logf() hands its hook the same line;
 *   - a JSON string literal is well-formed UTF-8 and one valid JSON text
 *     (gyre_json_valid), and input that is already well-formed UTF-8
 *     without control bytes, quotes or backslashes comes out unchanged.
 * Each input is copied into an allocation of its own size, so a read past
 * it is caught.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"

static char hooked[GYRE_LOG_LINE_MAX + 64];
static size_t hooked_len;

static void hook(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (len > sizeof(hooked))
        abort();
    memcpy(hooked, line, len);
    hooked_len = len;
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now += 1000000000ull; /* a second per line: the bucket never runs dry */
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void check_log_line(const char *in, size_t n, const char *out, size_t len)
{
    if (len == 0 || out[len - 1] != '\n' || out[len] != '\0')
        abort();
    const size_t marker = sizeof(GYRE_LOG_TRUNCATED) - 1;
    if (len - 1 > GYRE_LOG_LINE_MAX + marker)
        abort();
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            abort();
    int cut = len - 1 >= marker && memcmp(out + len - 1 - marker, GYRE_LOG_TRUNCATED, marker) == 0;
    if (cut)
        return;
    /* Undo the escapes: the input comes back exactly. */
    size_t m = n > 0 && in[n - 1] == '\n' ? n - 1 : n, j = 0;
    for (size_t i = 0; i + 1 < len; i++, j++) {
        char c = out[i];
        if (c == '\\') {
            char e = out[++i];
            if (e == 'x') {
                int hi = hexval(out[i + 1]), lo = hexval(out[i + 2]);
                if (hi < 0 || lo < 0)
                    abort();
                c = (char)(hi * 16 + lo);
                i += 2;
            } else {
                c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == '\\' ? '\\' : 0;
                if (c == 0)
                    abort();
            }
        }
        if (j >= m || in[j] != c)
            abort();
    }
    if (j != m)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);

    static char out[GYRE_LOG_LINE_MAX + 64];
    size_t len = gyre_log_escape(out, sizeof(out), in, size);
    check_log_line(in, size, out, len);

    gyre_log_set_clock(fake_clock);
    gyre_log_set_hook(hook, NULL);
    hooked_len = 0;
    gyre_logf("%.*s", (int)(size < 100000 ? size : 100000), in);
    if (size <= GYRE_LOG_LINE_MAX && memchr(in, '\0', size) == NULL &&
        (hooked_len != len || memcmp(hooked, out, len) != 0))
        abort();

    gyre_buf_t b;
    gyre_buf_init(&b, 8 * size + 16);
    if (gyre_buf_append_json_string(&b, in, size) != 0)
        abort();
    if (!gyre_utf8_valid(b.base, b.len) || !gyre_json_valid(b.base, b.len))
        abort();
    int plain = gyre_utf8_valid(in, size);
    for (size_t i = 0; i < size && plain; i++)
        if ((unsigned char)in[i] < 0x20 || in[i] == '"' || in[i] == '\\')
            plain = 0;
    if (plain && (b.len != size + 2 || memcmp(b.base + 1, in, size) != 0))
        abort();
    gyre_buf_dispose(&b);
    free(in);
    return 0;
}
