/* Times as clients write them (see time.h). */
#include "common/time.h"

#include <string.h>

/* A whole number of at most `max` in decimal digits only (no sign, no spaces).  0, or -1. */
static int parse_ms(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Exactly `n` digits at `s`, as a number; -1 when any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse; no timegm, which C11 lacks). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return days[m - 1];
}

/* RFC 3339's date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 't' and 'z' in either case. */
static int parse_rfc3339(const char *s, int64_t *us)
{
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        sec < 0 || sec > 60) /* 60: a leap second, read as the next minute's first second */
        return -1;
    const char *p = s + 19;
    int64_t frac_us = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 6)
                frac_us = frac_us * 10 + (*p - '0');
        if (nd == 0)
            return -1;
        for (; nd < 6; nd++)
            frac_us *= 10;
    }
    int64_t offset_s = 0;
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        offset_s = 0;
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (p[0] == '+' ? 1 : -1);
    } else {
        return -1;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *us = secs * 1000000 + frac_us;
    return 0;
}

int gyre_time_parse(const char *s, int64_t *us)
{
    uint64_t ms;
    /* 10^15 ms is past the year 33000: far enough, and its microseconds still fit in 63 bits. */
    if (parse_ms(s, 1000000000000000ull, &ms) == 0) {
        *us = (int64_t)ms * 1000;
        return 0;
    }
    return parse_rfc3339(s, us);
}

