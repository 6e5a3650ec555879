/* SPDX-License-Identifier: MIT */
/*
 * ews-try.c: a test tool that runs one EWS operation (or N of them on the same connection)
 * through the real client stack: ews-request.h writes the request, ews-transport.h sends it on a
 * libuv loop, ews-response.h parses the answer (streaming: ews-stream.h cuts the body into
 * envelopes, each parsed as it arrives). Prints one compact JSON line per response or envelope
 * on stdout and exits 0 when every answer was HTTP 200 and parsed, 1 otherwise, 2 on a bad
 * command line. With --concurrency K, repeat keeps K calls in flight on the one transport.
 * Used by tests/ews/test_transport.py and test_transport_extended_protection.py; not installed.
 */
#define _GNU_SOURCE /* strerrorname_np */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/compat.h"
#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "ews/ews-request.h"
#include "ews/ews-response.h"
#include "ews/ews-stream.h"
#include "ews/ews-transport.h"

#define EXIT_USAGE 2

/* Longest password or token we read from a file or the environment. */
#define MAX_SECRET 4096u

/* Largest request we write (a GetItem of 100 ids is about 20 KB; raw files are tests'). */
#define MAX_REQUEST (4u << 20)

/* SOAPAction of Autodiscover's GetUserSettings (WCF dispatches on it). */
#define GUS_ACTION \
	"http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"

enum op {
	OP_SUBSCRIBE_PULL,
	OP_SUBSCRIBE_STREAM,
	OP_GET_EVENTS,
	OP_STREAM,
	OP_UNSUBSCRIBE,
	OP_FIND_CALENDAR,
	OP_GET_ITEM,
	OP_SYNC,
	OP_GET_FOLDER,
	OP_AVAILABILITY,
	OP_USER_SETTINGS,
	OP_RAW,
};

static const struct {
	const char *name;
	enum op op;
	int min_args;
	int max_args; /* -1 = any */
} ops[] = {
	{"subscribe-pull", OP_SUBSCRIBE_PULL, 0, 0},
	{"subscribe-stream", OP_SUBSCRIBE_STREAM, 0, 0},
	{"get-events", OP_GET_EVENTS, 2, 2},
	{"stream", OP_STREAM, 1, -1},
	{"unsubscribe", OP_UNSUBSCRIBE, 1, 1},
	{"find-calendar", OP_FIND_CALENDAR, 2, 2},
	{"get-item", OP_GET_ITEM, 1, -1},
	{"sync", OP_SYNC, 0, 1},
	{"get-folder", OP_GET_FOLDER, 0, 0},
	{"availability", OP_AVAILABILITY, 3, -1},
	{"user-settings", OP_USER_SETTINGS, 1, -1},
	{"raw", OP_RAW, 1, 1},
};

struct
try {
	uv_loop_t loop;
	struct ews_transport *t;
	struct ews_transport_opts topts;
	struct ews_header hdr;
	const char *url;
	const char *anchor;
	bool prefer_affinity;
	bool replay_cookie;
	char *cookie; /* --cookie, or the last one the server set with --replay-cookie */
	const char *client_request_id;
	int64_t timeout_usec;
	int64_t idle_usec;
	unsigned stream_timeout_min;
	unsigned pull_timeout_min;
	unsigned max_envelopes;
	unsigned max_entries;
	unsigned max_changes;
	unsigned interval_min;

	enum op op;
	const char *op_name;
	char **args;
	int n_args;
	unsigned repeat;
	unsigned concurrency; /* calls in flight at once with repeat (not for stream) */
	unsigned started;
	unsigned in_flight;
	unsigned done_count;
	int64_t start_usec;
	bool failed;

	struct buf req;
	/* The current streaming call. */
	struct ews_call *call;
	struct ews_stream *stream;
	unsigned envelopes;
	unsigned chunks;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: ews-try --url URL [options] OP [args]\n"
	        "       ews-try --url URL [options] repeat N OP [args]\n"
	        "\n"
	        "OP: subscribe-pull | subscribe-stream | get-events ID WM | stream ID... |\n"
	        "    unsubscribe ID | find-calendar START END | get-item ID... | sync [STATE] |\n"
	        "    get-folder | availability SMTP... START END | user-settings SMTP... |\n"
	        "    raw FILE\n"
	        "\n"
	        "Options:\n"
	        "  --auth basic|ntlm|negotiate|bearer|none   (default: basic when --user is given)\n"
	        "  --user U  --password-env VAR | --password-file F  --token-env VAR\n"
	        "  --cacert F  --insecure  --proxy URL\n"
	        "  --anchor SMTP  --prefer-affinity  --cookie V  --replay-cookie\n"
	        "  --impersonate SMTP  --id-type smtp|primary|principal  --server-version V\n"
	        "  --client-request-id ID  --user-agent UA\n"
	        "  --timeout-ms N  --connect-timeout-ms N  --idle-timeout-ms N  --max-response N\n"
	        "  --max-connections N  --concurrency K (repeat: K calls in flight)\n"
	        "  --timeout-min N (stream ConnectionTimeout, default 1)  --max-envelopes K\n"
	        "  --pull-timeout-min N (default 10)  --max-entries N  --max-changes N (512)\n"
	        "  --interval-min N (availability, default 30)  --debug\n");
}

static int usage_error(const char *fmt, ...) ATTR_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ews-try: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ews-try --help'.\n");
	return EXIT_USAGE;
}

/* -- JSON ------------------------------------------------------------------------------------ */

static void set_str(json_t *o, const char *key, const char *s)
{
	json_t *v;

	if (s == NULL)
		return;
	v = json_string(s);
	(void)json_object_set_new(o, key, v != NULL ? v : json_string("<invalid UTF-8>"));
}

static void set_int(json_t *o, const char *key, int64_t v)
{
	(void)json_object_set_new(o, key, json_integer(v));
}

static void set_time(json_t *o, const char *key, int64_t utc)
{
	char s[ISO8601_FORMAT_SIZE];

	if (iso8601_format(utc, s, NULL) == 0)
		set_str(o, key, s);
}

static void print_line(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(s);
	}
	json_decref(o);
}

static json_t *json_strv(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		(void)json_array_append_new(a, json_string(v[i] != NULL ? v[i] : ""));
	return a;
}

static json_t *json_event(const struct ews_event *e)
{
	json_t *o = json_object();

	set_str(o, "type", ews_event_type_name(e->type));
	if (e->has_timestamp)
		set_time(o, "timestamp", e->timestamp_utc);
	set_str(o, "watermark", e->watermark);
	set_str(o, "item_id", e->item_id);
	set_str(o, "folder_id", e->folder_id);
	set_str(o, "parent_folder_id", e->parent_folder_id);
	set_str(o, "old_item_id", e->old_item_id);
	return o;
}

static json_t *json_message(const struct ews_message *m)
{
	json_t *o = json_object();

	set_str(o, "class", ews_response_class_name(m->cls));
	set_str(o, "code", m->code);
	set_str(o, "text", m->text);
	if (m->mx.back_off_ms >= 0)
		set_int(o, "back_off_ms", m->mx.back_off_ms);
	set_str(o, "subscription_id", m->subscription_id);
	set_str(o, "watermark", m->watermark);
	if (m->n_notifications > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < m->n_notifications; i++) {
			const struct ews_notification *n = &m->notifications[i];
			json_t *no = json_object();
			json_t *ev = json_array();
			set_str(no, "subscription_id", n->subscription_id);
			set_str(no, "previous_watermark", n->previous_watermark);
			(void)json_object_set_new(no, "more_events", json_boolean(n->more_events));
			for (size_t k = 0; k < n->n_events; k++)
				(void)json_array_append_new(ev, json_event(&n->events[k]));
			(void)json_object_set_new(no, "events", ev);
			(void)json_array_append_new(a, no);
		}
		(void)json_object_set_new(o, "notifications", a);
	}
	if (m->connection_status != EWS_CONN_NONE)
		set_str(o, "connection_status",
		        m->connection_status == EWS_CONN_OK ? "OK" : "Closed");
	if (m->n_error_subscription_ids > 0)
		(void)json_object_set_new(
			o, "error_subscription_ids",
			json_strv(m->error_subscription_ids, m->n_error_subscription_ids));
	if (m->items != NULL || m->n_items > 0) {
		json_t *ids = json_array();
		for (size_t i = 0; i < m->n_items; i++)
			(void)json_array_append_new(ids, json_string(m->items[i].item_id != NULL
			                                                     ? m->items[i].item_id
			                                                     : ""));
		set_int(o, "items", (int64_t)m->n_items);
		(void)json_object_set_new(o, "item_ids", ids);
		if (m->n_items > 0)
			set_str(o, "first_subject", m->items[0].subject);
	}
	if (m->total_items_in_view >= 0)
		set_int(o, "total_items_in_view", m->total_items_in_view);
	if (m->has_includes_last)
		(void)json_object_set_new(o, "includes_last",
		                          json_boolean(m->includes_last_item_in_range));
	set_str(o, "sync_state", m->sync_state);
	if (m->sync_state != NULL || m->n_changes > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < m->n_changes; i++) {
			json_t *c = json_object();
			set_str(c, "type", ews_change_type_name(m->changes[i].type));
			set_str(c, "item_id", m->changes[i].item_id);
			(void)json_array_append_new(a, c);
		}
		(void)json_object_set_new(o, "changes", a);
	}
	set_str(o, "folder_id", m->folder_id);
	if (m->total_count >= 0)
		set_int(o, "total_count", m->total_count);
	if (m->has_commit_time)
		set_time(o, "commit_time", m->commit_time_utc);
	if (m->deleted_count_total >= 0)
		set_int(o, "deleted_count_total", m->deleted_count_total);
	if (m->has_free_busy_view) {
		json_t *fb = json_object();
		set_str(fb, "type", m->free_busy_view.type);
		set_str(fb, "merged", m->free_busy_view.merged);
		set_int(fb, "events", (int64_t)m->free_busy_view.n_events);
		(void)json_object_set_new(o, "free_busy", fb);
	}
	return o;
}

static json_t *json_response(const struct ews_response *r)
{
	json_t *o = json_object();

	set_str(o, "operation", r->operation);
	set_str(o, "server_version", r->server_version);
	if (r->is_fault) {
		json_t *f = json_object();
		set_str(f, "faultcode", r->fault.faultcode);
		set_str(f, "faultstring", r->fault.faultstring);
		set_str(f, "code", r->fault.response_code);
		set_str(f, "message", r->fault.message);
		if (r->fault.mx.back_off_ms >= 0)
			set_int(f, "back_off_ms", r->fault.mx.back_off_ms);
		(void)json_object_set_new(o, "fault", f);
	}
	if (r->n_messages > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < r->n_messages; i++)
			(void)json_array_append_new(a, json_message(&r->messages[i]));
		(void)json_object_set_new(o, "messages", a);
	}
	set_str(o, "autodiscover_error", r->autodiscover_error);
	if (r->n_users > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < r->n_users; i++) {
			const struct ews_user_settings *u = &r->users[i];
			json_t *uo = json_object();
			set_str(uo, "mailbox", u->mailbox);
			set_str(uo, "error_code", u->error_code);
			set_str(uo, "internal_ews_url", u->internal_ews_url);
			set_str(uo, "external_ews_url", u->external_ews_url);
			set_str(uo, "grouping_information", u->grouping_information);
			set_str(uo, "cas_version", u->cas_version);
			(void)json_array_append_new(a, uo);
		}
		(void)json_object_set_new(o, "users", a);
	}
	return o;
}

/* Parses xml into line as "response", or records the parse error; false when it failed. */
static bool add_parsed(json_t *line, const char *xml, size_t len)
{
	struct ews_response r = {0};
	struct err err = {0};

	if (ews_response_parse(xml, len, &r, &err) < 0) {
		set_str(line, "parse_error", err.msg);
		return false;
	}
	(void)json_object_set_new(line, "response", json_response(&r));
	ews_response_clear(&r);
	return true;
}

/* The transport's view of a finished call. */
static json_t *result_line(struct try *x, const struct ews_result *r)
{
	json_t *o = json_object();

	set_str(o, "op", x->op_name);
	set_int(o, "n", x->done_count);
	set_int(o, "rc", r->rc);
	if (r->rc < 0) {
		set_str(o, "errno", strerrorname_np(-r->rc));
		set_str(o, "error", r->err.msg);
	}
	set_int(o, "http", r->http_status);
	set_str(o, "cookie", r->backend_cookie);
	set_str(o, "request_id", r->request_id);
	set_str(o, "client_request_id", r->client_request_id);
	set_str(o, "echoed_request_id", r->echoed_request_id);
	set_str(o, "be_server", r->be_server);
	set_str(o, "content_type", r->content_type);
	set_int(o, "new_connections", r->new_connections);
	set_int(o, "bytes", (int64_t)r->bytes);
	set_int(o, "elapsed_ms", r->elapsed_usec / 1000);
	return o;
}

/* -- requests -------------------------------------------------------------------------------- */

static int parse_time(const char *s, int64_t *out, struct err *err)
{
	int rc = iso8601_parse(s, strlen(s), out, NULL, err);

	if (rc < 0)
		return err_set(err, rc, "'%s': %s", s, err->msg);
	return 0;
}

static int read_file(const char *path, struct buf *out, struct err *err)
{
	FILE *f = fopen(path, "rb");
	char chunk[8192];
	size_t n;
	int rc = 0;

	if (f == NULL)
		return err_set(err, -errno, "cannot open '%s': %s", path, strerror(errno));
	buf_reset(out);
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_append(out, chunk, n, err);
	if (rc == 0 && ferror(f))
		rc = err_set(err, -EIO, "cannot read '%s'", path);
	fclose(f);
	return rc;
}

static int write_request(struct try *x, struct err *err)
{
	const struct ews_header *h = &x->hdr;
	const char *const *args = (const char *const *)x->args;

	switch (x->op) {
	case OP_SUBSCRIBE_PULL:
	case OP_SUBSCRIBE_STREAM: {
		struct ews_subscribe s = {
			.streaming = x->op == OP_SUBSCRIBE_STREAM,
			.timeout_min = x->op == OP_SUBSCRIBE_PULL ? x->pull_timeout_min : 0,
		};
		return ews_req_subscribe(h, &s, &x->req, err);
	}
	case OP_GET_EVENTS:
		return ews_req_get_events(h, args[0], args[1], &x->req, err);
	case OP_STREAM:
		return ews_req_get_streaming_events(h, args, (size_t)x->n_args,
		                                    x->stream_timeout_min, &x->req, err);
	case OP_UNSUBSCRIBE:
		return ews_req_unsubscribe(h, args[0], &x->req, err);
	case OP_FIND_CALENDAR: {
		struct ews_find_calendar f = {.max_entries = x->max_entries};
		int rc = parse_time(args[0], &f.start_utc, err);
		if (rc == 0)
			rc = parse_time(args[1], &f.end_utc, err);
		if (rc == 0)
			rc = ews_req_find_calendar(h, &f, &x->req, err);
		return rc;
	}
	case OP_GET_ITEM: {
		struct ews_item_ref *ids = xcalloc((size_t)x->n_args, sizeof(*ids));
		int rc;
		for (int i = 0; i < x->n_args; i++)
			ids[i].id = args[i];
		rc = ews_req_get_item(h, ids, (size_t)x->n_args, &x->req, err);
		free(ids);
		return rc;
	}
	case OP_SYNC:
		return ews_req_sync_folder_items(h, x->n_args > 0 ? args[0] : NULL, x->max_changes,
		                                 &x->req, err);
	case OP_GET_FOLDER:
		return ews_req_get_folder(h, true, &x->req, err);
	case OP_AVAILABILITY: {
		struct ews_availability a = {
			.mailboxes = args,
			.n_mailboxes = (size_t)x->n_args - 2,
			.interval_min = x->interval_min,
		};
		int rc = parse_time(args[x->n_args - 2], &a.start_utc, err);
		if (rc == 0)
			rc = parse_time(args[x->n_args - 1], &a.end_utc, err);
		if (rc == 0)
			rc = ews_req_get_user_availability(h, &a, &x->req, err);
		return rc;
	}
	case OP_USER_SETTINGS:
		return ews_req_get_user_settings(args, (size_t)x->n_args, x->url, NULL, &x->req,
		                                 err);
	case OP_RAW:
		return read_file(args[0], &x->req, err);
	}
	return err_set(err, -EINVAL, "unknown operation");
}

static int start_call(struct try *x, struct err *err);

static void finish_one(struct try *x)
{
	x->done_count++;
	x->in_flight--;
	if (x->started < x->repeat && !x->failed) {
		struct err err = {0};
		if (start_call(x, &err) == 0)
			return;
		json_t *o = json_object();
		set_str(o, "op", x->op_name);
		set_str(o, "error", err.msg);
		print_line(o);
		x->failed = true;
	}
	if (x->in_flight == 0)
		uv_stop(&x->loop);
}

/* A whole envelope of the stream. */
static int on_envelope(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct try *x = ctx;
	json_t *o;

	if (x->call == NULL)
		return -ECANCELED; /* cancelled below: stop the framer too */
	o = json_object();
	set_str(o, "op", x->op_name);
	set_int(o, "envelope", x->envelopes);
	set_int(o, "offset", (int64_t)offset);
	set_int(o, "chunk", x->chunks);
	set_int(o, "t_ms", (clock_now_usec() - x->start_usec) / 1000);
	if (!add_parsed(o, xml, len))
		x->failed = true;
	print_line(o);
	x->envelopes++;
	if (x->max_envelopes > 0 && x->envelopes >= x->max_envelopes) {
		/* Enough: cancel from inside the chunk callback, which the transport allows. */
		json_t *d = json_object();
		set_str(d, "op", x->op_name);
		(void)json_object_set_new(d, "done", json_true());
		(void)json_object_set_new(d, "cancelled", json_true());
		set_int(d, "envelopes", x->envelopes);
		set_int(d, "chunks", x->chunks);
		print_line(d);
		ews_transport_cancel(x->call);
		x->call = NULL;
		x->done_count = x->repeat; /* no more calls */
		x->started = x->repeat;
		uv_stop(&x->loop);
	}
	return 0;
}

static int on_chunk(void *ctx, const char *data, size_t len, struct err *err)
{
	struct try *x = ctx;

	x->chunks++;
	return ews_stream_feed(x->stream, data, len, err);
}

static void on_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct try *x = ctx;
	json_t *o = result_line(x, r);
	bool ok = r->rc == 0 && r->http_status == 200;

	(void)call;
	x->call = NULL;
	if (x->stream != NULL && r->http_status == 200) {
		struct err err = {0};
		(void)json_object_set_new(o, "done", json_true());
		set_int(o, "envelopes", x->envelopes);
		set_int(o, "chunks", x->chunks);
		if (r->rc == 0 && ews_stream_finish(x->stream, &err) < 0) {
			set_str(o, "stream_error", err.msg);
			ok = false;
		}
	} else if (r->rc == 0 || (r->body_len > 0 && r->content_type != NULL &&
	                          strstr(r->content_type, "xml") != NULL)) {
		if (!add_parsed(o, r->body, r->body_len))
			ok = false;
	}
	if (r->backend_cookie != NULL && x->replay_cookie) {
		free(x->cookie);
		x->cookie = xstrdup(r->backend_cookie);
	}
	print_line(o);
	if (!ok)
		x->failed = true;
	ews_stream_free(x->stream);
	x->stream = NULL;
	finish_one(x);
}

static int start_call(struct try *x, struct err *err)
{
	struct ews_call_opts o = {
		.url = x->url,
		.anchor_mailbox = x->anchor,
		.prefer_affinity = x->prefer_affinity,
		.backend_cookie = x->cookie,
		.client_request_id = x->client_request_id,
		.soap_action = x->op == OP_USER_SETTINGS ? GUS_ACTION : NULL,
		.timeout_usec = x->timeout_usec,
		.idle_timeout_usec = x->idle_usec,
		.chunk_fn = x->op == OP_STREAM ? on_chunk : NULL,
	};
	int rc = write_request(x, err);

	if (rc < 0)
		return rc;
	x->envelopes = 0;
	x->chunks = 0;
	x->start_usec = clock_now_usec();
	if (x->op == OP_STREAM)
		x->stream = ews_stream_new(EWS_MAX_ENVELOPE, on_envelope, x);
	rc = ews_transport_post(x->t, &o, x->req.data, x->req.len, on_done, x, &x->call, err);
	if (rc < 0) {
		ews_stream_free(x->stream);
		x->stream = NULL;
		return rc;
	}
	x->started++;
	x->in_flight++;
	return 0;
}

/* -- command line ---------------------------------------------------------------------------- */

static int read_secret_file(const char *path, char **out, struct err *err)
{
	struct buf b;
	int rc;

	buf_init(&b, MAX_SECRET);
	rc = read_file(path, &b, err);
	if (rc < 0) {
		buf_free(&b);
		return rc;
	}
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	*out = buf_take(&b);
	return 0;
}

static int secret_from_env(const char *var, char **out, struct err *err)
{
	const char *v = getenv(var);

	if (v == NULL)
		return err_set(err, -ENOENT, "environment variable '%s' is not set", var);
	if (strlen(v) > MAX_SECRET)
		return err_set(err, -EMSGSIZE, "environment variable '%s' is too long", var);
	*out = xstrdup(v);
	return 0;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	O_URL = 256,
	O_AUTH,
	O_USER,
	O_PASSWORD_ENV,
	O_PASSWORD_FILE,
	O_TOKEN_ENV,
	O_CACERT,
	O_INSECURE,
	O_PROXY,
	O_ANCHOR,
	O_PREFER,
	O_COOKIE,
	O_REPLAY,
	O_IMPERSONATE,
	O_ID_TYPE,
	O_SERVER_VERSION,
	O_CRID,
	O_UA,
	O_TIMEOUT_MS,
	O_CONNECT_MS,
	O_IDLE_MS,
	O_MAX_RESPONSE,
	O_MAX_CONN,
	O_CONCURRENCY,
	O_TIMEOUT_MIN,
	O_MAX_ENV,
	O_PULL_MIN,
	O_MAX_ENTRIES,
	O_MAX_CHANGES,
	O_INTERVAL,
	O_DEBUG,
	O_HELP,
};

static const struct option long_opts[] = {
	{"url", required_argument, NULL, O_URL},
	{"auth", required_argument, NULL, O_AUTH},
	{"user", required_argument, NULL, O_USER},
	{"password-env", required_argument, NULL, O_PASSWORD_ENV},
	{"password-file", required_argument, NULL, O_PASSWORD_FILE},
	{"token-env", required_argument, NULL, O_TOKEN_ENV},
	{"cacert", required_argument, NULL, O_CACERT},
	{"insecure", no_argument, NULL, O_INSECURE},
	{"proxy", required_argument, NULL, O_PROXY},
	{"anchor", required_argument, NULL, O_ANCHOR},
	{"prefer-affinity", no_argument, NULL, O_PREFER},
	{"cookie", required_argument, NULL, O_COOKIE},
	{"replay-cookie", no_argument, NULL, O_REPLAY},
	{"impersonate", required_argument, NULL, O_IMPERSONATE},
	{"id-type", required_argument, NULL, O_ID_TYPE},
	{"server-version", required_argument, NULL, O_SERVER_VERSION},
	{"client-request-id", required_argument, NULL, O_CRID},
	{"user-agent", required_argument, NULL, O_UA},
	{"timeout-ms", required_argument, NULL, O_TIMEOUT_MS},
	{"connect-timeout-ms", required_argument, NULL, O_CONNECT_MS},
	{"idle-timeout-ms", required_argument, NULL, O_IDLE_MS},
	{"max-response", required_argument, NULL, O_MAX_RESPONSE},
	{"max-connections", required_argument, NULL, O_MAX_CONN},
	{"concurrency", required_argument, NULL, O_CONCURRENCY},
	{"timeout-min", required_argument, NULL, O_TIMEOUT_MIN},
	{"max-envelopes", required_argument, NULL, O_MAX_ENV},
	{"pull-timeout-min", required_argument, NULL, O_PULL_MIN},
	{"max-entries", required_argument, NULL, O_MAX_ENTRIES},
	{"max-changes", required_argument, NULL, O_MAX_CHANGES},
	{"interval-min", required_argument, NULL, O_INTERVAL},
	{"debug", no_argument, NULL, O_DEBUG},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

/* Options that take a number, and where the number goes. */
static int number_option(struct try *x, int opt, const char *arg)
{
	unsigned long long v = 0;

	if (parse_uint(arg, INT32_MAX, &v) < 0)
		return usage_error("bad number '%s'", arg);
	switch (opt) {
	case O_TIMEOUT_MS:
		x->timeout_usec = (int64_t)v * 1000;
		break;
	case O_CONNECT_MS:
		x->topts.connect_timeout_usec = (int64_t)v * 1000;
		break;
	case O_IDLE_MS:
		x->idle_usec = (int64_t)v * 1000;
		break;
	case O_MAX_RESPONSE:
		x->topts.max_response = (size_t)v;
		break;
	case O_MAX_CONN:
		x->topts.max_host_connections = (unsigned)v;
		x->topts.max_total_connections = (unsigned)v;
		break;
	case O_CONCURRENCY:
		x->concurrency = (unsigned)v;
		break;
	case O_TIMEOUT_MIN:
		x->stream_timeout_min = (unsigned)v;
		break;
	case O_MAX_ENV:
		x->max_envelopes = (unsigned)v;
		break;
	case O_PULL_MIN:
		x->pull_timeout_min = (unsigned)v;
		break;
	case O_MAX_ENTRIES:
		x->max_entries = (unsigned)v;
		break;
	case O_MAX_CHANGES:
		x->max_changes = (unsigned)v;
		break;
	case O_INTERVAL:
		x->interval_min = (unsigned)v;
		break;
	default:
		return EXIT_USAGE;
	}
	return 0;
}

static int parse_args(struct try *x, int argc, char **argv, char **password, char **token)
{
	struct err err = {0};
	bool auth_set = false;
	int opt;
	int i;

	while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		int rc = 0;
		switch (opt) {
		case O_URL:
			x->url = optarg;
			break;
		case O_AUTH:
			rc = ews_auth_from_name(optarg, strlen(optarg), &x->topts.auth, &err);
			if (rc < 0)
				return usage_error("%s", err.msg);
			auth_set = true;
			break;
		case O_USER:
			x->topts.user = optarg;
			break;
		case O_PASSWORD_ENV:
		case O_PASSWORD_FILE:
			free(*password);
			*password = NULL;
			rc = opt == O_PASSWORD_ENV ? secret_from_env(optarg, password, &err)
			                           : read_secret_file(optarg, password, &err);
			if (rc < 0)
				return usage_error("%s", err.msg);
			break;
		case O_TOKEN_ENV:
			free(*token);
			*token = NULL;
			rc = secret_from_env(optarg, token, &err);
			if (rc < 0)
				return usage_error("%s", err.msg);
			break;
		case O_CACERT:
			x->topts.ca_file = optarg;
			break;
		case O_INSECURE:
			x->topts.insecure_skip_tls_verify = true;
			break;
		case O_PROXY:
			x->topts.proxy = optarg;
			break;
		case O_ANCHOR:
			x->anchor = optarg;
			break;
		case O_PREFER:
			x->prefer_affinity = true;
			break;
		case O_COOKIE:
			free(x->cookie);
			x->cookie = xstrdup(optarg);
			break;
		case O_REPLAY:
			x->replay_cookie = true;
			break;
		case O_IMPERSONATE:
			x->hdr.impersonate = optarg;
			break;
		case O_ID_TYPE:
			if (strcmp(optarg, "smtp") == 0)
				x->hdr.id_type = EWS_ID_SMTP;
			else if (strcmp(optarg, "primary") == 0)
				x->hdr.id_type = EWS_ID_PRIMARY_SMTP;
			else if (strcmp(optarg, "principal") == 0)
				x->hdr.id_type = EWS_ID_PRINCIPAL;
			else
				return usage_error("unknown --id-type '%s'", optarg);
			break;
		case O_SERVER_VERSION:
			x->hdr.version = optarg;
			break;
		case O_CRID:
			x->client_request_id = optarg;
			break;
		case O_UA:
			x->topts.user_agent = optarg;
			break;
		case O_DEBUG:
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		case '?':
			return EXIT_USAGE;
		default:
			rc = number_option(x, opt, optarg);
			if (rc != 0)
				return rc;
			break;
		}
	}
	if (!auth_set && x->topts.user != NULL)
		x->topts.auth = EWS_AUTH_BASIC;
	x->topts.password = *password;
	x->topts.token = *token;
	if (x->url == NULL)
		return usage_error("%s", "--url is required");
	i = optind;
	if (i < argc && strcmp(argv[i], "repeat") == 0) {
		unsigned long long n = 0;
		if (i + 1 >= argc || parse_uint(argv[i + 1], 100000, &n) < 0 || n == 0)
			return usage_error("%s", "repeat needs a count of 1 or more");
		x->repeat = (unsigned)n;
		i += 2;
	}
	if (i >= argc)
		return usage_error("%s", "no operation");
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		if (strcmp(ops[k].name, argv[i]) != 0)
			continue;
		x->op = ops[k].op;
		x->op_name = ops[k].name;
		x->args = argv + i + 1;
		x->n_args = argc - i - 1;
		if (x->n_args < ops[k].min_args ||
		    (ops[k].max_args >= 0 && x->n_args > ops[k].max_args))
			return usage_error("wrong number of arguments for '%s'", argv[i]);
		if (x->concurrency == 0)
			return usage_error("%s", "--concurrency must be 1 or more");
		if (x->concurrency > 1 && x->op == OP_STREAM)
			return usage_error("%s", "--concurrency does not work with stream");
		return 0;
	}
	return usage_error("unknown operation '%s'", argv[i]);
}

int main(int argc, char **argv)
{
	struct try x = {
		.repeat = 1,
		.concurrency = 1,
		.stream_timeout_min = 1,
		.pull_timeout_min = 10,
		.max_changes = EWS_MAX_SYNC_CHANGES,
		.interval_min = 30,
		.hdr = {.tz_utc = false},
	};
	struct err err = {0};
	char *password = NULL;
	char *token = NULL;
	int rc;

	log_set_prefix(LOG_PREFIX_NEVER);
	rc = parse_args(&x, argc, argv, &password, &token);
	if (rc != 0) {
		free(password);
		free(token);
		free(x.cookie);
		return rc;
	}
	buf_init(&x.req, MAX_REQUEST);
	(void)uv_loop_init(&x.loop);
	rc = ews_transport_new(&x.loop, &x.topts, &x.t, &err);
	/* The transport keeps its own copies: wipe ours now. */
	if (password != NULL)
		explicit_bzero(password, strlen(password));
	if (token != NULL)
		explicit_bzero(token, strlen(token));
	free(password);
	free(token);
	if (rc == 0)
		rc = start_call(&x, &err);
	/* With --concurrency, more calls at once; each finished one starts the next. */
	while (rc == 0 && x.started < x.repeat && x.started < x.concurrency)
		rc = start_call(&x, &err);
	if (rc < 0 && x.in_flight > 0) {
		json_t *o = json_object();
		set_str(o, "op", x.op_name);
		set_str(o, "error", err.msg);
		print_line(o);
		x.failed = true;
		rc = 0;
	}
	if (rc < 0) {
		json_t *o = json_object();
		set_str(o, "op", x.op_name);
		set_int(o, "rc", rc);
		set_str(o, "error", err.msg);
		print_line(o);
		x.failed = true;
	} else {
		(void)uv_run(&x.loop, UV_RUN_DEFAULT);
	}
	ews_stream_free(x.stream);
	ews_transport_free(x.t);
	/* Let the transport's handles finish closing, then check nothing is left. */
	(void)uv_run(&x.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&x.loop) != 0)
		fprintf(stderr, "ews-try: the loop still has handles\n");
	buf_free(&x.req);
	free(x.cookie);
	return x.failed ? 1 : 0;
}
