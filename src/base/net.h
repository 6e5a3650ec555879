/* SPDX-License-Identifier: MIT */
/* net.h: a listening TCP socket on a numeric address (net.c). */
#pragma once

#include "base/compat.h"
#include "base/err.h"

/*
 * Binds and listens on host (a numeric IPv4 or IPv6 address; IPv6 only for an IPv6 one) and
 * port (0: any free port), non-blocking and close-on-exec. 0 with *out_fd and the bound port in
 * *out_port, or a negative errno with err naming who ("api", "graph") and the address.
 */
ATTR_NODISCARD int net_listen_tcp(const char *who, const char *host, unsigned port, int *out_fd,
                                  unsigned *out_port, struct err *err);
