/* SPDX-License-Identifier: MIT */
/* url.h: URLs fit to show in logs, metrics labels and status pages. Pure, libc only. */
#pragma once

#include <stddef.h>

/*
 * url without its user info, query and fragment (they may hold secrets) into out (size bytes,
 * NUL-terminated); cut at a UTF-8 boundary when it does not fit. The user info ends at the last
 * '@' before the path; an '@' in the path stays.
 */
void url_redact(const char *url, char *out, size_t size);
