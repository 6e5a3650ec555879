/* SPDX-License-Identifier: MIT */
/* compat.h: compiler attribute macros, and the poisoning of libc functions we ban (STYLE.md 5). */
#pragma once

/*
 * ATTR_NODISCARD goes at the start of a declaration, before the return type, because that is
 * where the standard [[nodiscard]] must stand. We prefer [[nodiscard]] where the compiler has it
 * (gcc 12 does, even in gnu17), since gcc ignores a (void) cast on warn_unused_result but honours
 * one on [[nodiscard]]. ATTR_PRINTF and ATTR_NORETURN may stand before or after the declarator.
 */
#if defined(__has_c_attribute)
#if __has_c_attribute(nodiscard)
#define ATTR_NODISCARD [[nodiscard]]
#endif
#endif

/* We build only with gcc and clang (gnu17), so GNU attributes are always available. */
#ifndef ATTR_NODISCARD
#define ATTR_NODISCARD __attribute__((warn_unused_result))
#endif
#define ATTR_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#define ATTR_NORETURN           __attribute__((noreturn))

/*
 * Banned: they write without a bound, parse without reporting errors, or keep hidden state.
 * Use snprintf, memcpy with an explicit length, strtoll with an end pointer, or a hand-written
 * parser instead.
 *
 * A poisoned identifier is an error wherever it appears later, even inside a system header. So
 * the headers that declare these functions are included here, before the pragma, and their
 * include guards keep later includes quiet. If another system header ever trips on the poison,
 * include it above the pragma as well. The #undefs drop the _FORTIFY_SOURCE wrapper macros that
 * glibc defines for clang; we never call these functions, so nothing is lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#undef sprintf
#undef strcpy
#undef strcat
#undef strncpy
#undef strncat
#undef strtok
#undef gets
#undef atoi
#undef sscanf
#pragma GCC poison sprintf strcpy strcat strncpy strncat strtok gets atoi sscanf
