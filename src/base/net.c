/* SPDX-License-Identifier: MIT */
/*
 * net.c: a listening TCP socket on a numeric address, for the HTTP servers calsync runs (the
 * API, the Graph notification listener), which hand it to libmicrohttpd.
 */
#include "base/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int net_listen_tcp(const char *who, const char *host, unsigned port, int *out_fd,
                   unsigned *out_port, struct err *err)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	bool v6 = false;
	int fd, one = 1, e;

	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
		v6 = true;
	} else {
		return err_set(err, -EINVAL, "%s: %s is not a numeric IPv4 or IPv6 address", who,
		               host);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(err, -errno, "%s: socket: %s", who, strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
		e = errno;
		close(fd);
		return err_set(err, -e, "%s: cannot listen on %s%s%s:%u: %s", who, v6 ? "[" : "",
		               host, v6 ? "]" : "", port, strerror(e));
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		e = errno;
		close(fd);
		return err_set(err, -e, "%s: getsockname: %s", who, strerror(e));
	}
	*out_port = ntohs(v6 ? sin6->sin6_port : sin->sin_port);
	*out_fd = fd;
	return 0;
}
