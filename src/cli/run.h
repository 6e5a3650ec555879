/* SPDX-License-Identifier: MIT */
/* run.h: `calsync run [-c FILE] [--check-config]`: the daemon (docs/running.md). */
#pragma once

/*
 * Runs the command; argv[0] is "run". Returns the exit status: 0 after a clean shutdown
 * (SIGTERM, SIGINT) or a valid --check-config, 1 when the store, the output or the loop fails,
 * 2 for a configuration error or a command line it does not understand.
 */
int run_main(int argc, char **argv);
