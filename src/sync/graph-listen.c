/* SPDX-License-Identifier: MIT */
/*
 * graph-listen.c: the notification endpoint (graph-listen.h). libmicrohttpd's thread answers
 * validations and queues bodies; the loop drains the queue on a uv_async_t.
 */
#include "sync/graph-listen.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/log.h"
#include "base/net.h"
#include "base/xalloc.h"

struct queued {
	struct list_node link;
	size_t len;
	char body[]; /* len bytes and a NUL */
};

struct graph_listen {
	struct MHD_Daemon *mhd;
	uv_async_t async;
	graph_listen_fn *fn;
	void *ctx;
	char *path;
	unsigned port;
	char *cert_pem, *key_pem; /* libmicrohttpd reads them while it runs */

	pthread_mutex_t mu;     /* guards everything below */
	struct list_node queue; /* of struct queued, oldest first */
	size_t queued_bytes;
	struct graph_listen_stats stats;
};

/* One request's state across libmicrohttpd's calls. */
struct req {
	struct buf body;
	bool too_large;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *text, const char *retry_after)
{
	size_t n = strlen(text);
	char *copy = xmemdup(text, n);
	struct MHD_Response *r = MHD_create_response_from_buffer(n, copy, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (retry_after != NULL)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* The validation handshake: Graph POSTs ?validationToken=... (URL-encoded; libmicrohttpd
 * decodes it) and wants it back as text/plain with 200. */
static enum MHD_Result validate(struct graph_listen *l, struct MHD_Connection *c, const char *token)
{
	size_t n = strlen(token);

	if (n == 0 || n > GRAPH_LISTEN_MAX_TOKEN)
		return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain", "bad validationToken\n", NULL);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)token[i] < 0x20 || token[i] == 0x7f)
			return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain", "bad validationToken\n",
			             NULL);
	}
	pthread_mutex_lock(&l->mu);
	l->stats.validations++;
	pthread_mutex_unlock(&l->mu);
	return reply(c, MHD_HTTP_OK, "text/plain", token, NULL);
}

/* Queues a body for the loop: 202, or 503 when the loop is too far behind. */
static enum MHD_Result enqueue(struct graph_listen *l, struct MHD_Connection *c, struct req *rq)
{
	size_t len = rq->body.len;
	struct queued *q;
	bool full;

	pthread_mutex_lock(&l->mu);
	full = l->queued_bytes + len > GRAPH_LISTEN_MAX_QUEUED;
	if (full) {
		l->stats.refused++;
	} else {
		q = xmalloc(sizeof(*q) + len + 1);
		q->link = (struct list_node){0};
		q->len = len;
		memcpy(q->body, rq->body.data, len);
		q->body[len] = '\0';
		list_append(&l->queue, &q->link);
		l->queued_bytes += len;
		l->stats.posts++;
	}
	pthread_mutex_unlock(&l->mu);
	if (full)
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "busy\n", "5");
	(void)uv_async_send(&l->async);
	return reply(c, MHD_HTTP_ACCEPTED, "text/plain", "", NULL);
}

static bool path_is(const struct graph_listen *l, const char *url)
{
	return strcmp(url, l->path) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct graph_listen *l = cls;
	struct req *rq = *con_cls;
	const char *token;

	if (rq == NULL) {
		rq = xcalloc(1, sizeof(*rq));
		buf_init(&rq->body, GRAPH_LISTEN_MAX_BODY);
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!rq->too_large &&
		    buf_append(&rq->body, upload_data, *upload_data_size, NULL) < 0)
			rq->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "POST only\n", NULL);
	if (!path_is(l, url))
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", NULL);
	token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "validationToken");
	if (token != NULL)
		return validate(l, c, token);
	if (rq->too_large) {
		pthread_mutex_lock(&l->mu);
		l->stats.refused++;
		pthread_mutex_unlock(&l->mu);
		return reply(c, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain", "too large\n", NULL);
	}
	return enqueue(l, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (rq == NULL)
		return;
	buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

ATTR_PRINTF(2, 0)

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t len;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_debug("graph: listener: libmicrohttpd: %s", msg);
}

/* The loop's side: every queued body, oldest first, outside the lock. */
static void on_async(uv_async_t *h)
{
	struct graph_listen *l = h->data;
	struct list_node batch;

	list_init(&batch);
	pthread_mutex_lock(&l->mu);
	while (!list_empty(&l->queue))
		list_append(&batch, list_pop(&l->queue));
	l->queued_bytes = 0;
	pthread_mutex_unlock(&l->mu);
	while (!list_empty(&batch)) {
		struct queued *q = container_of(batch.next, struct queued, link);

		list_unlink(&q->link);
		l->fn(l->ctx, q->body, q->len);
		free(q);
	}
}

static void drop_queue(struct graph_listen *l)
{
	while (!list_empty(&l->queue)) {
		struct queued *q = container_of(l->queue.next, struct queued, link);

		list_unlink(&q->link);
		free(q);
	}
	l->queued_bytes = 0;
}

static void on_closed(uv_handle_t *h)
{
	struct graph_listen *l = h->data;

	drop_queue(l);
	pthread_mutex_destroy(&l->mu);
	free(l->path);
	free(l->cert_pem);
	if (l->key_pem != NULL)
		explicit_bzero(l->key_pem, strlen(l->key_pem));
	free(l->key_pem);
	free(l);
}

static struct MHD_Daemon *start_mhd(struct graph_listen *l, int fd,
                                    const struct graph_listen_opts *o)
{
	/* poll, not select: calsync holds thousands of descriptors. */
	unsigned flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[8];
	size_t n = 0;

	if (o->tls_cert_pem != NULL)
		flags |= MHD_USE_TLS;
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
	                                    GRAPH_LISTEN_MAX_CONNECTIONS, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, GRAPH_LISTEN_TIMEOUT_SEC,
	                                    NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l};
	if (o->tls_cert_pem != NULL) {
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->cert_pem};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->key_pem};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER,
	                        mhd_log, NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

int graph_listen_start(struct uv_loop_s *loop, const struct graph_listen_opts *o,
                       graph_listen_fn *fn, void *ctx, struct graph_listen **out, struct err *err)
{
	struct graph_listen *l;
	int fd = -1;
	unsigned port = 0;
	int rc;

	if (o->path == NULL || o->path[0] != '/')
		return err_set(err, -EINVAL, "graph: listener: the path must start with '/'");
	if ((o->tls_cert_pem == NULL) != (o->tls_key_pem == NULL))
		return err_set(err, -EINVAL, "graph: listener: give both certificate and key");
	rc = net_listen_tcp("graph: listener", o->host, o->port, &fd, &port, err);
	if (rc < 0)
		return rc;
	l = xcalloc(1, sizeof(*l));
	l->fn = fn;
	l->ctx = ctx;
	l->path = xstrdup(o->path);
	l->port = port;
	l->cert_pem = o->tls_cert_pem != NULL ? xstrdup(o->tls_cert_pem) : NULL;
	l->key_pem = o->tls_key_pem != NULL ? xstrdup(o->tls_key_pem) : NULL;
	list_init(&l->queue);
	pthread_mutex_init(&l->mu, NULL);
	uv_async_init(loop, &l->async, on_async);
	l->async.data = l;
	l->mhd = start_mhd(l, fd, o);
	if (l->mhd == NULL) {
		close(fd); /* libmicrohttpd closes a socket it was given only once it started */
		uv_close((uv_handle_t *)&l->async, on_closed);
		return err_set(
			err, -EIO, "graph: listener: libmicrohttpd cannot serve on %s port %u%s",
			o->host, port,
			o->tls_cert_pem != NULL ? " (are the TLS certificate and key valid?)" : "");
	}
	log_info("graph: notifications listener on %s port %u%s", o->host, port,
	         o->tls_cert_pem != NULL ? " (TLS)" : " (plain HTTP: TLS must end before it)");
	*out = l;
	return 0;
}

unsigned graph_listen_port(const struct graph_listen *l)
{
	return l->port;
}

void graph_listen_stats(struct graph_listen *l, struct graph_listen_stats *out)
{
	pthread_mutex_lock(&l->mu);
	*out = l->stats;
	pthread_mutex_unlock(&l->mu);
}

void graph_listen_free(struct graph_listen *l)
{
	if (l == NULL)
		return;
	MHD_stop_daemon(l->mhd); /* joins its thread: nothing is queued after this */
	l->mhd = NULL;
	uv_close((uv_handle_t *)&l->async, on_closed);
}
