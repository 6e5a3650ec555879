/* SPDX-License-Identifier: MIT */
/*
 * api.c: the HTTP API's daemon: libmicrohttpd set-up and shutdown, request bodies, the bearer
 * token, routing to the handlers, and /healthz, /readyz and /metrics. docs/api.md describes the
 * endpoints.
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api-int.h"
#include "api/api-json.h"
#include "api/api-metrics.h"
#include "api/api-page.h"
#include "api/api-route.h"
#include "base/err.h"
#include "base/log.h"
#include "base/net.h"
#include "base/xalloc.h"
#include "store/store.h"
#include "sync/engine.h"
#include "webhook/webhook.h"

/* ---- replies ----------------------------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (resp == NULL)
		return MHD_NO; /* out of memory in libmicrohttpd: it closes the connection */
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result api_reply_json(struct MHD_Connection *c, unsigned status, json_t *json,
                               const char *hdr, const char *val)
{
	struct MHD_Response *resp;
	char *text = NULL, *body;
	size_t len;

	if (json != NULL)
		text = json_dumps(json, JSON_COMPACT);
	json_decref(json);
	if (text == NULL) {
		static const char fail[] = "{\"error\":\"cannot build the answer\"}\n";

		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = MHD_create_response_from_buffer(sizeof(fail) - 1, (void *)(uintptr_t)fail,
		                                       MHD_RESPMEM_PERSISTENT);
		hdr = NULL;
	} else {
		/* A final newline, for people reading with curl. */
		len = strlen(text);
		body = xmalloc(len + 2);
		memcpy(body, text, len);
		body[len] = '\n';
		body[len + 1] = '\0';
		free(text);
		resp = MHD_create_response_from_buffer(len + 1, body, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			free(body);
	}
	if (resp == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (hdr != NULL)
		(void)MHD_add_response_header(resp, hdr, val);
	return queue(c, status, resp);
}

static enum MHD_Result reply_error_hdr(struct MHD_Connection *c, unsigned status, const char *hdr,
                                       const char *val, const char *msg)
{
	return api_reply_json(c, status, json_pack("{s:s}", "error", msg), hdr, val);
}

enum MHD_Result api_reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message quoting request bytes may not be UTF-8; then say less rather than nothing. */
	j = json_string(msg);
	if (j == NULL)
		j = json_string("bad request");
	return api_reply_json(c, status, json_pack("{s:o}", "error", j), NULL, NULL);
}

int api_query(struct MHD_Connection *c, const char *key, char *out, size_t size)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
	size_t len;

	if (v == NULL)
		return 0;
	if (api_url_decode(v, strlen(v), out, size, &len, NULL) < 0)
		return -1;
	return 1;
}

struct store *api_store_lock(struct api *a)
{
	pthread_mutex_lock(&a->store_mu);
	return a->store;
}

void api_store_unlock(struct api *a)
{
	pthread_mutex_unlock(&a->store_mu);
}

/* ---- /healthz, /readyz, /metrics ---------------------------------------------------------- */

static uint64_t ok_requests(const struct sync_stats *st)
{
	uint64_t n = 0;

	for (int i = 0; i < SYNC_OP_COUNT; i++)
		n += st->ops[i].ok;
	return n;
}

/* The enabled mailboxes in the store, and how many of them are live. */
static int count_live(struct store *s, size_t *out_n, size_t *out_live, struct err *err)
{
	struct store_mailbox *mbs = NULL;
	size_t n = 0, live = 0;
	int rc = store_mailbox_list(s, STORE_MB_ENABLED, &mbs, &n, err);

	for (size_t i = 0; rc == 0 && i < n; i++)
		live += mbs[i].state == STORE_MB_LIVE;
	store_mailboxes_free(mbs, n);
	if (rc == 0) {
		*out_n = n;
		*out_live = live;
	}
	return rc;
}

static enum MHD_Result readyz(struct api *a, struct MHD_Connection *c)
{
	struct sync_stats st;
	struct store_presence_event *evs = NULL;
	struct store *s;
	struct err err = {0};
	char reason[512];
	char all[1024] = "";
	size_t n = 0, used = 0;
	json_t *reasons = json_array();
	int rc;

	sync_engine_stats_snapshot(a->engine, &st);
	/* The store is readable when one indexed read works: the first event after the largest
	 * possible id, which is none. */
	s = api_store_lock(a);
	rc = store_presence_events_after(s, INT64_MAX - 1, 1, &evs, &n, &err);
	store_presence_events_free(evs, n);
	/* No mailboxes in the stats: nothing configured, or the loop has not published its first
	 * stats yet (it does every second). The store knows which. */
	if (rc == 0 && st.mailboxes == 0)
		rc = count_live(s, &st.mailboxes, &st.live, &err);
	api_store_unlock(a);
	if (rc < 0) {
		snprintf(reason, sizeof(reason), "store not readable: %s", err.msg);
		json_array_append_new(reasons, json_string(reason));
	}
	/* Exchange answered: an EWS request succeeded, or a mailbox is live, whose window was read
	 * in this run (the engine stores a mailbox stored live as syncing when it starts). The
	 * second is how a calsync with only Graph mailboxes, which sends no EWS request, gets
	 * ready: Graph's requests are not in the per-operation stats. */
	if (st.mailboxes > 0 && ok_requests(&st) == 0 && st.live == 0)
		json_array_append_new(
			reasons, json_string(a->graph ? "no EWS or Graph request has succeeded yet"
		                                      : "no EWS request has succeeded yet"));
	if (st.mailboxes > 0 && st.live * 100 < (size_t)a->ready_live * st.mailboxes) {
		snprintf(reason, sizeof(reason), "%zu of %zu mailboxes live, %u%% needed", st.live,
		         st.mailboxes, a->ready_live);
		json_array_append_new(reasons, json_string(reason));
	}
	if (json_array_size(reasons) == 0) {
		json_decref(reasons);
		return api_reply_json(c, MHD_HTTP_OK,
		                      json_pack("{s:s, s:I, s:I}", "status", "ready", "mailboxes",
		                                (json_int_t)st.mailboxes, "live",
		                                (json_int_t)st.live),
		                      NULL, NULL);
	}
	for (size_t i = 0; i < json_array_size(reasons); i++) {
		const char *r = json_string_value(json_array_get(reasons, i));
		int w = snprintf(all + used, sizeof(all) - used, "%s%s", i > 0 ? "; " : "",
		                 r != NULL ? r : "");

		if (w < 0 || (size_t)w >= sizeof(all) - used)
			break;
		used += (size_t)w;
	}
	return api_reply_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
	                      json_pack("{s:s, s:s, s:o, s:I, s:I}", "status", "not ready", "error",
	                                all, "reasons", reasons, "mailboxes",
	                                (json_int_t)st.mailboxes, "live", (json_int_t)st.live),
	                      NULL, NULL);
}

/* What /metrics reads from the store: the subscriptions by kind (one indexed read per mailbox)
 * and the enabled mailboxes by backend and state. */
static int metrics_store_read(struct api *a, struct api_metrics_in *in,
                              struct api_backend_counts *backends, struct err *err)
{
	struct store *s = api_store_lock(a);
	struct store_mailbox *mbs = NULL;
	size_t n = 0;
	int rc = store_subscription_count(s, &in->subs_streaming, &in->subs_pull, err);

	if (rc == 0)
		rc = store_mailbox_list(s, STORE_MB_ENABLED, &mbs, &n, err);
	api_store_unlock(a);
	if (rc == 0)
		api_backend_count(mbs, n, backends);
	store_mailboxes_free(mbs, n);
	return rc;
}

static enum MHD_Result metrics(struct api *a, struct MHD_Connection *c)
{
	struct api_backend_counts backends;
	struct sync_stats st;
	struct webhook_stats ws;
	struct api_metrics_in in = {.stats = &st};
	struct MHD_Response *resp;
	struct err err = {0};
	struct buf page;
	char *text;
	size_t len;
	int rc;

	sync_engine_stats_snapshot(a->engine, &st);
	if (a->webhook != NULL) {
		webhook_stats(a->webhook, &ws);
		in.webhooks = &ws;
	}
	in.graph = a->graph;
	in.backends = &backends;
	rc = metrics_store_read(a, &in, &backends, &err);
	if (rc < 0)
		return api_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store: %s", err.msg);
	pthread_mutex_lock(&a->mu);
	in.sse_clients = a->sse_clients;
	pthread_mutex_unlock(&a->mu);
	buf_init(&page, API_MAX_METRICS);
	rc = api_metrics_format(&in, &page, &err);
	if (rc < 0) {
		buf_free(&page);
		return api_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
	}
	len = page.len;
	text = buf_take(&page);
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                              "text/plain; version=0.0.4; charset=utf-8");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return queue(c, MHD_HTTP_OK, resp);
}

/* ---- requests ---------------------------------------------------------------------------- */

static enum MHD_Result unauthorized(struct MHD_Connection *c, bool had_header)
{
	return reply_error_hdr(c, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	                       had_header ? "Bearer realm=\"calsync\", error=\"invalid_token\""
	                                  : "Bearer realm=\"calsync\"",
	                       had_header ? "the bearer token is not valid"
	                                  : "this endpoint needs Authorization: Bearer <token>");
}

static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, struct api_req *rq,
                                const char *url, const char *method)
{
	struct api_route r = {0};
	struct err err = {0};
	int rc;

	/* The status page is static and holds no data: it needs no token (api-page.h). */
	if (strcmp(url, "/") == 0)
		return api_page(c, method);
	if (a->token != NULL && strcmp(url, "/healthz") != 0) {
		const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                               MHD_HTTP_HEADER_AUTHORIZATION);

		if (!api_bearer_ok(a->token, a->token_len, auth))
			return unauthorized(c, auth != NULL);
	}
	rc = api_route(method, url, strlen(url), &r, &err);
	if (rc == -ENOENT)
		return api_reply_error(c, MHD_HTTP_NOT_FOUND, "%s", err.msg);
	if (rc == -EOPNOTSUPP)
		return reply_error_hdr(c, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW,
		                       r.allow, err.msg);
	if (rc < 0)
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	if (api_route_changes(&r) && a->token == NULL)
		return api_reply_error(
			c, MHD_HTTP_FORBIDDEN,
			"changes are refused because no API token is configured; set "
			"token_file or token_env on <api> and restart calsync");
	switch (r.ep) {
	case API_EP_HEALTHZ:
		return api_reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"), NULL,
		                      NULL);
	case API_EP_READYZ:
		return readyz(a, c);
	case API_EP_METRICS:
		return metrics(a, c);
	case API_EP_USERS:
		return r.method == API_POST ? api_user_add(a, c, rq) : api_users_list(a, c);
	case API_EP_USER:
		return r.method == API_DELETE ? api_user_remove(a, c, &r) : api_user_get(a, c, &r);
	case API_EP_PRESENCE:
		return api_user_presence(a, c, &r);
	case API_EP_AGENDA:
		return api_user_agenda(a, c, &r);
	case API_EP_RESYNC:
		return api_user_resync(a, c, &r);
	case API_EP_EVENTS:
		return api_events(a, c);
	case API_EP_STATUS:
		return api_status(a, c);
	}
	return api_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct api *a = cls;
	struct api_req *rq = *con_cls;

	if (rq == NULL) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		int64_t n;

		rq = xcalloc(1, sizeof(*rq));
		buf_init(&rq->body, API_MAX_BODY);
		*con_cls = rq;
		/* A declared length over the limit is refused before its body is read;
		 * libmicrohttpd then closes the connection. */
		if (cl != NULL && (api_parse_int(cl, 0, INT64_MAX, &n) < 0 || n > API_MAX_BODY)) {
			rq->too_large = true;
			return api_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
			                       "request body larger than %u bytes", API_MAX_BODY);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* A chunked body over the limit is read to its end and then refused. */
		if (!rq->too_large &&
		    buf_append(&rq->body, upload_data, *upload_data_size, NULL) < 0)
			rq->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->too_large)
		return api_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
		                       "request body larger than %u bytes", API_MAX_BODY);
	return dispatch(a, c, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct api_req *rq = *con_cls;

	if (rq == NULL)
		return;
	buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

/* libmicrohttpd would decode the path before we see it, turning %2F into a '/' that routing
 * cannot tell from a separator. We keep it encoded and decode each part ourselves. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
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
	log_debug("api: libmicrohttpd: %s", msg);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static int read_pem(const char *what, const char *path, char **out, struct err *err)
{
	struct stat sb;
	char *data;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, -errno, "api: %s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)API_MAX_PEM) {
		close(fd);
		return err_set(err, -EINVAL, "api: %s %s: not a regular file of at most %u bytes",
		               what, path, API_MAX_PEM);
	}
	data = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, data + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	if (got == 0) {
		free(data);
		return err_set(err, -EINVAL, "api: %s %s: empty or unreadable", what, path);
	}
	*out = data;
	return 0;
}

/*
 * Binds and listens on host:port ourselves, so that a failure says why (libmicrohttpd loses the
 * errno) and port 0 tells us which port it got. 0 and *out_fd, *out_port, or a negative errno.
 */
static void api_free(struct api *a)
{
	if (a == NULL)
		return;
	store_close(a->store);
	if (a->token != NULL)
		explicit_bzero(a->token, a->token_len);
	free(a->token);
	if (a->tls_key_pem != NULL)
		explicit_bzero(a->tls_key_pem, strlen(a->tls_key_pem));
	free(a->tls_key_pem);
	free(a->tls_cert_pem);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->store_mu);
	free(a);
}

int api_start(const struct api_opts *o, struct api **out_api, struct err *err)
{
	struct api *a = xcalloc(1, sizeof(*a));
	struct MHD_OptionItem opts[10];
	pthread_condattr_t ca;
	/* poll, not select: calsync may hold thousands of descriptors (streams, the store), and
	 * select cannot watch one numbered past FD_SETSIZE. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	size_t n_opts = 0;
	int fd = -1, rc;

	a->engine = o->engine;
	a->webhook = o->webhook;
	a->graph = o->graph;
	a->ready_live = o->ready_live;
	a->keepalive_usec = o->keepalive_usec > 0 ? o->keepalive_usec : API_KEEPALIVE_USEC;
	if (o->token != NULL && o->token[0] != '\0') {
		a->token = xstrdup(o->token);
		a->token_len = strlen(o->token);
	}
	pthread_mutex_init(&a->store_mu, NULL);
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* jansson picks its hash seed once; doing it here keeps that off the request threads. */
	json_object_seed(0);

	rc = store_open(o->store_path, &a->store, err);
	if (rc < 0) {
		err_set(err, rc, "api: store %s: %s", o->store_path, err ? err->msg : "");
		goto fail;
	}
	if (o->tls_cert != NULL && o->tls_key != NULL) {
		rc = read_pem("tls_cert", o->tls_cert, &a->tls_cert_pem, err);
		if (rc == 0)
			rc = read_pem("tls_key", o->tls_key, &a->tls_key_pem, err);
		if (rc < 0)
			goto fail;
		flags |= MHD_USE_TLS;
	}
	rc = net_listen_tcp("api", o->host, o->port, &fd, &a->port, err);
	if (rc < 0)
		goto fail;

	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
	opts[n_opts++] =
		(struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, API_MAX_CONNECTIONS, NULL};
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
	                                         API_CONNECTION_TIMEOUT_SEC, NULL};
	opts[n_opts++] =
		(struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, a};
	opts[n_opts++] =
		(struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)keep_escaped, NULL};
	if (a->tls_cert_pem != NULL) {
		opts[n_opts++] =
			(struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert_pem};
		opts[n_opts++] =
			(struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key_pem};
	}
	opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	/* The logger first, so that libmicrohttpd reports the other options through it. */
	a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
	                          mhd_log, NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (a->mhd == NULL) {
		/* libmicrohttpd closes a socket it was given only once it started. */
		close(fd);
		rc = err_set(err, -EIO, "api: libmicrohttpd cannot serve on %s port %u%s", o->host,
		             a->port,
		             a->tls_cert_pem != NULL ? " (are the TLS certificate and key valid?)"
		                                     : "");
		goto fail;
	}
	*out_api = a;
	return 0;
fail:
	api_free(a);
	return rc;
}

unsigned api_port(const struct api *a)
{
	return a->port;
}

void api_wake(struct api *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->seq++;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

void api_stop(struct api *a)
{
	if (a == NULL)
		return;
	/* Event streams see stopping and end; then libmicrohttpd closes every connection and
	 * joins its threads. */
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
	if (a->mhd != NULL)
		MHD_stop_daemon(a->mhd);
	api_free(a);
}
