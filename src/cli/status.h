/* SPDX-License-Identifier: MIT */
/* status.h: `calsync status [-c FILE] [--json] [--insecure]`: what the daemon is doing, from its
 * API (GET /v1/status), or from the store when it is not running (docs/status.md). */
#pragma once

/*
 * Runs the command; argv[0] is "status". Returns the exit status: 0 when it could report (from
 * the API, or from the store when nothing listens on the API's address), 1 when neither could
 * be read (a refused token included), 2 for a configuration error or a command line it does not
 * understand.
 */
int status_main(int argc, char **argv);
