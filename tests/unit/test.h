/*
 * A very small unit-test harness.  TEST(name) defines and registers a test;
 * main.c runs each one in its own process (a crash or a hang fails that test
 * only, as in libuv's runner) and ends with "unit: N passed, N failed".
 * CHECK_* macros compare exact values and report the file, line and both
 * sides on failure.
 */
#ifndef GYRE_TEST_H
#define GYRE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*gyre_test_fn)(void);
void gyre_test_register(const char *name, gyre_test_fn fn);
extern int gyre_test_failures;

#define TEST(name)                                                                                                   \
    static void test_##name(void);                                                                                   \
    __attribute__((constructor)) static void register_##name(void) { gyre_test_register(#name, test_##name); }      \
    static void test_##name(void)

#define CHECK(cond)                                                                                                  \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                               \
            gyre_test_failures++;                                                                                    \
        }                                                                                                            \
    } while (0)

#define CHECK_INT(a, b)                                                                                              \
    do {                                                                                                             \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                          \
        if (a_ != b_) {                                                                                              \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_);                 \
            gyre_test_failures++;                                                                                    \
        }                                                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                                                              \
    do {                                                                                                             \
        const char *a_ = (a), *b_ = (b);                                                                             \
        if (a_ == NULL || b_ == NULL ? a_ != b_ : strcmp(a_, b_) != 0) {                                             \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)",  \
                    b_ ? b_ : "(null)");                                                                             \
            gyre_test_failures++;                                                                                    \
        }                                                                                                            \
    } while (0)

/* Compares a (pointer, length) pair with a C string. */
#define CHECK_MEM(p, n, s)                                                                                           \
    do {                                                                                                             \
        const char *p_ = (const char *)(p), *s_ = (s);                                                               \
        size_t n_ = (n);                                                                                             \
        if (n_ != strlen(s_) || memcmp(p_, s_, n_) != 0) {                                                           \
            fprintf(stderr, "  %s:%d: %s == \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__, #p, (int)n_, p_, s_);  \
            gyre_test_failures++;                                                                                    \
        }                                                                                                            \
    } while (0)

#endif
