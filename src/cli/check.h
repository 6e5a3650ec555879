/* SPDX-License-Identifier: MIT */
/*
 * check.h: `calsync check [-c FILE] [--mailbox SMTP ...] [--json]`: tests the configuration,
 * the network path, authentication, the server version, impersonation and subscriptions of
 * sample mailboxes, and throttling against the real server, and prints the Exchange Management
 * Shell commands that fix what is missing (docs/check.md).
 */
#pragma once

/*
 * Runs the command; argv[0] is "check". Returns the exit status: 0 when no check failed
 * (warnings allowed), 1 when one failed, 2 for a configuration error or a command line it does
 * not understand.
 */
int check_main(int argc, char **argv);
