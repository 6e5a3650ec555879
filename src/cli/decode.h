/* SPDX-License-Identifier: MIT */
/* decode.h: `calsync decode [FILE]`: EWS responses as JSON lines (docs/decode.md). */
#pragma once

/*
 * Runs the command; argv[0] is "decode". Returns the exit status: 0 when every envelope
 * decoded (EWS errors inside them included), 1 on an I/O error, 2 on malformed input (the
 * message names the byte offset) or a command line it does not understand.
 */
int decode_main(int argc, char **argv);
