/*
 * gyre: an LLM gateway.  This file is only the command table; each command
 * lives in src/cli/, and the library code under src/ never sees argv.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/version.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *usage;
} commands[] = {
    {"serve", gyre_cmd_serve, "run the gateway", gyre_serve_usage},
    {"check-config", gyre_cmd_check_config, "check a configuration file and report every error",
     gyre_check_config_usage},
    {"traces", gyre_cmd_traces, "list stored traces, or show one (traces show ID)", gyre_traces_usage},
    {"sessions", gyre_cmd_sessions, "show a session's calls in order (sessions show ID)", gyre_sessions_usage},
    {"stats", gyre_cmd_stats, "requests, errors, latency, tokens and cost, grouped and in time", gyre_stats_usage},
    {"store", gyre_cmd_store, "the trace log and its index: store stats, store reindex", gyre_store_usage},
    {"audit", gyre_cmd_audit, "the audit log: who changed what, when, before and after", gyre_audit_usage},
    {"providers", gyre_cmd_providers, "provider keys of a running gyre: providers list, providers rotate-key",
     gyre_providers_usage},
    {"keys", gyre_cmd_keys, "managed gateway keys: create, list, show, revoke, rotate", gyre_keys_usage},
    {"alerts", gyre_cmd_alerts, "alerts firing now and the alert events, with what gyre did", gyre_alerts_usage},
    {"score", gyre_cmd_score, "run a scorer over stored calls and store its scores", gyre_score_usage},
    {"clusters", gyre_cmd_clusters, "what the agents do: clusters of their tasks (clusters --rebuild)",
     gyre_clusters_usage},
    {"feedback", gyre_cmd_feedback, "give feedback on a call or a session to a running gyre", gyre_feedback_usage},
    {"gate", gyre_cmd_gate, "the eval gate: gate run (candidate against incumbent), gate verify REPORT", gyre_gate_usage},
    {"curate", gyre_cmd_curate, "run a curation spec over the stored traces and write a dataset", gyre_curate_usage},
    {"datasets", gyre_cmd_datasets, "curated datasets: list, show, export; validate a fine-tuning file",
     gyre_datasets_usage},
    {"train", gyre_cmd_train, "run one fine-tuning job (openai, together, command) and print its model",
     gyre_train_usage},
    {"deploy", gyre_cmd_deploy, "canary deployments: deploy status, promote, rollback", gyre_deploy_usage},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: gyre COMMAND [OPTIONS]\n\n"
                 "An LLM gateway: OpenAI-compatible endpoints in front of your providers.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`gyre COMMAND --help` describes a command and its flags.\n"
                 "With no command, `gyre` is `gyre serve`.\n");
}

int main(int argc, char **argv)
{
    /* Where the library's lines go is the binary's choice (src/common/log.h): stderr, one write per line, which
     * systemd's journal and docker logs take as they are. */
    gyre_log_set_hook(gyre_log_to_stderr, NULL);
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
            printf("gyre %s\n", GYRE_VERSION);
            return 0;
        }
        /* `gyre --config FILE` reads as `gyre serve --config FILE`. */
        return gyre_cmd_serve(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "help") == 0) {
        for (size_t i = 0; argc > 2 && i < NCOMMANDS; i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                fputs(commands[i].usage, stdout);
                return 0;
            }
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "gyre: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
