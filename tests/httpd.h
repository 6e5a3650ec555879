/* SPDX-License-Identifier: MIT */
/*
 * httpd.h: an in-process HTTP(S) server for the unit tests, header-only, on libmicrohttpd in
 * its own threads (one per connection, so that a handler may stall without stopping the
 * others). It listens on 127.0.0.1 on a port the kernel picks (httpd.port). Each request is
 * read whole (headers and body) and handed to the test's handler, which fills in the answer;
 * the server counts requests and open connections under its mutex, which the handler and the
 * test share (httpd_lock/httpd_unlock).
 */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <microhttpd.h>

#include "base/buf.h"
#include "base/compat.h"

#define HTTPD_MAX_BODY    (4u << 20)
#define HTTPD_MAX_HEADERS 16

struct httpd;

/* One request, valid during the handler. */
struct httpd_req {
	struct httpd *h;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;  /* the path, without the query */
	const char *body; /* NUL-terminated */
	size_t body_len;
};

/* The answer the handler fills in; it starts as an empty 200. */
struct httpd_resp {
	unsigned status;
	const char *content_type;
	const char *hdr_name[HTTPD_MAX_HEADERS];
	const char *hdr_value[HTTPD_MAX_HEADERS];
	unsigned n_hdrs;
	char *body; /* malloc'ed, freed by the server; NULL = empty */
	size_t body_len;
	bool chunked; /* send the body without Content-Length */
	/* Before answering, wait until httpd_release() or this many milliseconds. */
	unsigned stall_ms;
};

typedef void httpd_handler_fn(void *ctx, const struct httpd_req *req, struct httpd_resp *resp);

struct httpd {
	struct MHD_Daemon *d;
	int port;
	httpd_handler_fn *fn;
	void *ctx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned generation; /* httpd_release() counts it up: every stall waiting then ends */
	bool stopping;
	/* Counts, under mu. */
	int requests;  /* handled (the handler was called) */
	int stalled;   /* handlers waiting in a stall now */
	int in_flight; /* handlers running now */
	int max_in_flight;
	int conns_open;
	int conns_max;
	int conns_total;
};

/* Per request: the body as it arrives. */
struct httpd_upload {
	struct buf body;
};

static inline void httpd_lock(struct httpd *h)
{
	pthread_mutex_lock(&h->mu);
}

static inline void httpd_unlock(struct httpd *h)
{
	pthread_mutex_unlock(&h->mu);
}

/* A request header (case-insensitive), or NULL. */
static inline const char *httpd_header(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Lets every handler stalled now answer; later ones stall again. */
static inline void httpd_release(struct httpd *h)
{
	httpd_lock(h);
	h->generation++;
	pthread_cond_broadcast(&h->cv);
	httpd_unlock(h);
}

static inline void httpd_set_body(struct httpd_resp *resp, const char *text)
{
	free(resp->body);
	resp->body_len = strlen(text);
	resp->body = malloc(resp->body_len + 1);
	if (resp->body == NULL)
		abort();
	memcpy(resp->body, text, resp->body_len + 1);
}

static inline void httpd_add_header(struct httpd_resp *resp, const char *name, const char *v)
{
	if (resp->n_hdrs < HTTPD_MAX_HEADERS) {
		resp->hdr_name[resp->n_hdrs] = name;
		resp->hdr_value[resp->n_hdrs] = v;
		resp->n_hdrs++;
	}
}

static inline void httpd_stall(struct httpd *h, unsigned ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	unsigned gen;

	httpd_lock(h);
	gen = h->generation;
	h->stalled++;
	while (h->generation == gen && !h->stopping) {
		if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT)
			break;
	}
	h->stalled--;
	httpd_unlock(h);
}

/* A chunked body: the whole buffer in one piece, then the end. */
static inline ssize_t httpd_chunk_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct httpd_resp *r = cls;

	if (pos >= r->body_len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > r->body_len - pos)
		max = (size_t)(r->body_len - pos);
	memcpy(buf, r->body + pos, max);
	return (ssize_t)max;
}

static inline void httpd_chunk_free(void *cls)
{
	struct httpd_resp *r = cls;

	free(r->body);
	free(r);
}

static inline enum MHD_Result httpd_answer(struct httpd *h, struct MHD_Connection *conn,
                                           struct httpd_resp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (resp->stall_ms > 0)
		httpd_stall(h, resp->stall_ms);
	if (resp->chunked) {
		struct httpd_resp *copy = malloc(sizeof(*copy));
		if (copy == NULL)
			abort();
		*copy = *resp;
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, httpd_chunk_reader,
		                                      copy, httpd_chunk_free);
		resp->body = NULL;
	} else {
		static char empty[1];
		r = MHD_create_response_from_buffer(resp->body_len,
		                                    resp->body != NULL ? resp->body : empty,
		                                    MHD_RESPMEM_MUST_COPY);
	}
	if (r == NULL)
		abort();
	if (resp->content_type != NULL)
		(void)MHD_add_response_header(r, "Content-Type", resp->content_type);
	for (unsigned i = 0; i < resp->n_hdrs; i++)
		(void)MHD_add_response_header(r, resp->hdr_name[i], resp->hdr_value[i]);
	ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	free(resp->body);
	return ret;
}

static inline enum MHD_Result httpd_on_request(void *cls, struct MHD_Connection *conn,
                                               const char *url, const char *method,
                                               const char *version, const char *upload,
                                               size_t *upload_size, void **req_cls)
{
	struct httpd *h = cls;
	struct httpd_upload *u = *req_cls;
	struct httpd_resp resp = {.status = 200};
	struct httpd_req req;
	enum MHD_Result ret;

	(void)version;
	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		if (u == NULL)
			abort();
		buf_init(&u->body, HTTPD_MAX_BODY);
		*req_cls = u;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (buf_append(&u->body, upload, *upload_size, NULL) < 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	req = (struct httpd_req){
		.h = h,
		.conn = conn,
		.method = method,
		.url = url,
		.body = u->body.data != NULL ? u->body.data : "",
		.body_len = u->body.len,
	};
	httpd_lock(h);
	h->requests++;
	h->in_flight++;
	if (h->in_flight > h->max_in_flight)
		h->max_in_flight = h->in_flight;
	httpd_unlock(h);
	h->fn(h->ctx, &req, &resp);
	ret = httpd_answer(h, conn, &resp);
	httpd_lock(h);
	h->in_flight--;
	httpd_unlock(h);
	return ret;
}

static inline void httpd_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                                      enum MHD_RequestTerminationCode toe)
{
	struct httpd_upload *u = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (u != NULL) {
		buf_free(&u->body);
		free(u);
	}
	*req_cls = NULL;
}

static inline void httpd_on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                                       enum MHD_ConnectionNotificationCode toe)
{
	struct httpd *h = cls;

	(void)conn;
	(void)socket_ctx;
	httpd_lock(h);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		h->conns_open++;
		h->conns_total++;
		if (h->conns_open > h->conns_max)
			h->conns_max = h->conns_open;
	} else {
		h->conns_open--;
	}
	httpd_unlock(h);
}

/* Starts h on 127.0.0.1 with a port of the kernel's choice; over TLS when cert_pem and key_pem
 * are given. Aborts on failure. */
static inline void httpd_start(struct httpd *h, const char *cert_pem, const char *key_pem,
                               httpd_handler_fn *fn, void *ctx)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->fn = fn;
	h->ctx = ctx;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (cert_pem != NULL) {
		flags |= MHD_USE_TLS;
		h->d = MHD_start_daemon(
			flags, 0, NULL, NULL, httpd_on_request, h, MHD_OPTION_SOCK_ADDR,
			(struct sockaddr *)&sa, MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
			MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_NOTIFY_COMPLETED,
			httpd_on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, httpd_on_connection, h,
			MHD_OPTION_END);
	} else {
		h->d = MHD_start_daemon(
			flags, 0, NULL, NULL, httpd_on_request, h, MHD_OPTION_SOCK_ADDR,
			(struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, httpd_on_completed, h,
			MHD_OPTION_NOTIFY_CONNECTION, httpd_on_connection, h, MHD_OPTION_END);
	}
	if (h->d == NULL) {
		fprintf(stderr, "httpd: MHD_start_daemon failed\n");
		abort();
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0) {
		fprintf(stderr, "httpd: no port\n");
		abort();
	}
	h->port = info->port;
}

static inline void httpd_stop(struct httpd *h)
{
	httpd_lock(h);
	h->stopping = true;
	pthread_cond_broadcast(&h->cv);
	httpd_unlock(h);
	MHD_stop_daemon(h->d);
	h->d = NULL;
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
}

/* Counters read under the lock. */
static inline int httpd_get(struct httpd *h, const int *field)
{
	int v;

	httpd_lock(h);
	v = *field;
	httpd_unlock(h);
	return v;
}
