/*
 * Subcommands of the gyre tool, one file each (git's builtin/ layout).
 * Each takes the arguments after its name and returns the exit status.
 */
#ifndef GYRE_CLI_H
#define GYRE_CLI_H

int gyre_cmd_serve(int argc, char **argv);
int gyre_cmd_check_config(int argc, char **argv);

extern const char gyre_serve_usage[];
extern const char gyre_check_config_usage[];

#endif
