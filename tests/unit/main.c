/* Runs every registered unit test in a child process, with a time limit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 4096
#define TEST_TIMEOUT_S 20

static struct {
    const char *name;
    gyre_test_fn fn;
} tests[MAX_TESTS];
static size_t ntests;
int gyre_test_failures;

void gyre_test_register(const char *name, gyre_test_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "too many unit tests (raise MAX_TESTS)\n");
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

int main(int argc, char **argv)
{
    size_t passed = 0, failed = 0;
    const char *only = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < ntests; i++) {
        if (only != NULL && strstr(tests[i].name, only) == NULL)
            continue;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(TEST_TIMEOUT_S);
            tests[i].fn();
            exit(gyre_test_failures == 0 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("ok %s\n", tests[i].name);
            passed++;
        } else {
            if (WIFSIGNALED(status))
                printf("FAIL %s (signal %d%s)\n", tests[i].name, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? ": timed out" : "");
            else
                printf("FAIL %s\n", tests[i].name);
            failed++;
        }
    }
    printf("unit: %zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
