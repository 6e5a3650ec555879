/* SPDX-License-Identifier: MIT */
/*
 * decode.c: `calsync decode [FILE]`. Reads one EWS response, or a whole streamed body of many
 * envelopes, from FILE or standard input and prints one JSON object per envelope on its own
 * line, so that a captured Exchange answer can be inspected and compared. The input goes
 * through the stream framer as it arrives, so a live or endless stream works too, with at most
 * EWS_MAX_RESPONSE bytes held per envelope. The keys are documented in docs/decode.md.
 */
#include "cli/decode.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "ews/ews-response.h"
#include "ews/ews-stream.h"

#define EXIT_MALFORMED 2
#define EXIT_USAGE     2

/* Read size: large enough to be cheap, small enough that a live stream is decoded promptly
 * (read(2) returns what has arrived). */
#define READ_CHUNK (64u << 10)

/* --- JSON helpers: every absent value is null ------------------------------------------- */

static json_t *j_str(const char *s)
{
	json_t *j = s != NULL ? json_string(s) : NULL;

	/* libxml2 hands out valid UTF-8 only, so json_string() cannot fail here; null if it
	 * ever did, rather than a missing key. */
	return j != NULL ? j : json_null();
}

static json_t *j_time(bool has, int64_t utc)
{
	char text[ISO8601_FORMAT_SIZE];

	if (!has || iso8601_format(utc, text, NULL) != 0)
		return json_null();
	return json_string(text);
}

/* A count or limit that the reader keeps as -1 when absent. */
static json_t *j_count(int64_t v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

static json_t *j_bool(bool has, bool v)
{
	return has ? json_boolean(v) : json_null();
}

static json_t *j_strv(char *const *v, size_t n)
{
	json_t *a;

	if (n == 0)
		return json_null();
	a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, j_str(v[i]));
	return a;
}

static void set(json_t *o, const char *key, json_t *value)
{
	json_object_set_new(o, key, value);
}

/* --- the keys of issue 3, in its order -------------------------------------------------- */

static json_t *j_item(const struct ews_cal_item *it)
{
	json_t *o = json_object();

	set(o, "item_id", j_str(it->item_id));
	set(o, "change_key", j_str(it->change_key));
	set(o, "subject", j_str(it->subject));
	set(o, "start", j_time(it->has_start, it->start_utc));
	set(o, "end", j_time(it->has_end, it->end_utc));
	set(o, "all_day", j_bool(it->has_all_day, it->all_day));
	set(o, "free_busy", j_str(ews_free_busy_name(it->free_busy)));
	set(o, "sensitivity", j_str(ews_sensitivity_name(it->sensitivity)));
	set(o, "calendar_item_type", j_str(ews_item_type_name(it->item_type)));
	set(o, "is_cancelled", j_bool(it->has_cancelled, it->is_cancelled));
	set(o, "location", j_str(it->location));
	set(o, "organizer", j_str(it->organizer));
	set(o, "uid", j_str(it->uid));
	set(o, "categories", j_strv(it->categories, it->n_categories));
	return o;
}

static json_t *j_items(const struct ews_cal_item *items, size_t n)
{
	json_t *a;

	if (n == 0)
		return json_null();
	a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, j_item(&items[i]));
	return a;
}

static json_t *j_event(const struct ews_event *e)
{
	json_t *o = json_object();

	set(o, "type", j_str(ews_event_type_name(e->type)));
	set(o, "timestamp", j_time(e->has_timestamp, e->timestamp_utc));
	set(o, "watermark", j_str(e->watermark));
	set(o, "item_id", j_str(e->item_id));
	set(o, "folder_id", j_str(e->folder_id));
	set(o, "parent_folder_id", j_str(e->parent_folder_id));
	set(o, "old_item_id", j_str(e->old_item_id));
	set(o, "old_parent_folder_id", j_str(e->old_parent_folder_id));
	return o;
}

static json_t *j_notifications(const struct ews_notification *ns, size_t n)
{
	json_t *a;

	if (n == 0)
		return json_null();
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		json_t *events = ns[i].n_events > 0 ? json_array() : json_null();

		for (size_t k = 0; k < ns[i].n_events; k++)
			json_array_append_new(events, j_event(&ns[i].events[k]));
		set(o, "subscription_id", j_str(ns[i].subscription_id));
		set(o, "previous_watermark", j_str(ns[i].previous_watermark));
		/* MoreEvents is a pull notion; a streamed notification has none. */
		set(o, "more_events",
		    j_bool(ns[i].previous_watermark != NULL || ns[i].more_events,
		           ns[i].more_events));
		set(o, "events", events);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *j_changes(const struct ews_sync_change *ch, size_t n)
{
	json_t *a;

	if (n == 0)
		return json_null();
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		set(o, "type", j_str(ews_change_type_name(ch[i].type)));
		set(o, "item_id", j_str(ch[i].item_id));
		set(o, "item", ch[i].item != NULL ? j_item(ch[i].item) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *j_free_busy_view(const struct ews_message *m)
{
	const struct ews_free_busy_view *v = &m->free_busy_view;
	json_t *o;
	json_t *events;

	if (!m->has_free_busy_view)
		return json_null();
	o = json_object();
	events = v->n_events > 0 ? json_array() : json_null();
	for (size_t i = 0; i < v->n_events; i++) {
		json_t *e = json_object();

		set(e, "start", j_time(true, v->events[i].start_utc));
		set(e, "end", j_time(true, v->events[i].end_utc));
		set(e, "busy_type", j_str(ews_free_busy_name(v->events[i].busy_type)));
		json_array_append_new(events, e);
	}
	set(o, "type", j_str(v->type));
	set(o, "merged", j_str(v->merged));
	set(o, "events", events);
	return o;
}

/* Which of a message's optional keys apply: those of the operation, and for any operation
 * whatever the response actually carried, so that nothing read is hidden. */
enum {
	K_SUBSCRIPTION = 1u << 0, /* subscription_id, watermark */
	K_STREAM = 1u << 1,       /* connection_status, error_subscription_ids */
	K_NOTIFICATIONS = 1u << 2,
	K_ITEMS = 1u << 3,
	K_SYNC = 1u << 4,      /* sync_state, changes */
	K_LAST = 1u << 5,      /* includes_last_item_in_range */
	K_TOTAL = 1u << 6,     /* total_items_in_view */
	K_FREE_BUSY = 1u << 7, /* free_busy_view */
	K_FOLDER = 1u << 8,    /* GetFolder: folder_id, total_count, ... (not in issue 3) */
};

static const struct {
	const char *operation;
	unsigned keys;
} operation_keys[] = {
	{"Subscribe", K_SUBSCRIPTION},
	{"GetEvents", K_NOTIFICATIONS},
	{"GetStreamingEvents", K_STREAM | K_NOTIFICATIONS},
	{"FindItem", K_ITEMS | K_LAST | K_TOTAL},
	{"GetItem", K_ITEMS},
	{"SyncFolderItems", K_SYNC | K_LAST},
	{"GetUserAvailability", K_FREE_BUSY},
	{"GetFolder", K_FOLDER},
};

static unsigned keys_for(const char *operation, const struct ews_message *m)
{
	unsigned keys = 0;

	for (size_t i = 0;
	     operation != NULL && i < sizeof(operation_keys) / sizeof(operation_keys[0]); i++) {
		if (strcmp(operation, operation_keys[i].operation) == 0)
			keys = operation_keys[i].keys;
	}
	if (m->subscription_id != NULL || m->watermark != NULL)
		keys |= K_SUBSCRIPTION;
	if (m->connection_status != EWS_CONN_NONE || m->n_error_subscription_ids > 0)
		keys |= K_STREAM;
	if (m->n_notifications > 0)
		keys |= K_NOTIFICATIONS;
	if (m->n_items > 0)
		keys |= K_ITEMS;
	if (m->sync_state != NULL || m->n_changes > 0)
		keys |= K_SYNC;
	if (m->has_includes_last)
		keys |= K_LAST;
	if (m->total_items_in_view >= 0)
		keys |= K_TOTAL;
	if (m->has_free_busy_view)
		keys |= K_FREE_BUSY;
	if (m->folder_id != NULL || m->total_count >= 0 || m->has_commit_time ||
	    m->deleted_count_total >= 0)
		keys |= K_FOLDER;
	return keys;
}

static json_t *j_connection_status(enum ews_connection_status s)
{
	switch (s) {
	case EWS_CONN_OK:
		return json_string("OK");
	case EWS_CONN_CLOSED:
		return json_string("Closed");
	case EWS_CONN_NONE:
		break;
	}
	return json_null();
}

static json_t *j_message(const char *operation, const struct ews_message *m)
{
	unsigned keys = keys_for(operation, m);
	json_t *o = json_object();

	set(o, "class", j_str(ews_response_class_name(m->cls)));
	set(o, "code", j_str(m->code));
	set(o, "text", j_str(m->text));
	set(o, "back_off_ms", j_count(m->mx.back_off_ms));
	if (keys & K_SUBSCRIPTION) {
		set(o, "subscription_id", j_str(m->subscription_id));
		set(o, "watermark", j_str(m->watermark));
	}
	if (keys & K_STREAM) {
		set(o, "connection_status", j_connection_status(m->connection_status));
		set(o, "error_subscription_ids",
		    j_strv(m->error_subscription_ids, m->n_error_subscription_ids));
	}
	if (keys & K_NOTIFICATIONS)
		set(o, "notifications", j_notifications(m->notifications, m->n_notifications));
	if (keys & K_ITEMS)
		set(o, "items", j_items(m->items, m->n_items));
	if (keys & K_SYNC)
		set(o, "sync_state", j_str(m->sync_state));
	if (keys & K_LAST)
		set(o, "includes_last_item_in_range",
		    j_bool(m->has_includes_last, m->includes_last_item_in_range));
	if (keys & K_TOTAL)
		set(o, "total_items_in_view", j_count(m->total_items_in_view));
	if (keys & K_SYNC)
		set(o, "changes", j_changes(m->changes, m->n_changes));
	if (keys & K_FREE_BUSY)
		set(o, "free_busy_view", j_free_busy_view(m));
	if (keys & K_FOLDER) {
		set(o, "folder_id", j_str(m->folder_id));
		set(o, "folder_change_key", j_str(m->folder_change_key));
		set(o, "total_count", j_count(m->total_count));
		set(o, "commit_time", j_time(m->has_commit_time, m->commit_time_utc));
		set(o, "deleted_count_total", j_count(m->deleted_count_total));
	}
	return o;
}

static json_t *j_user(const struct ews_user_settings *u)
{
	json_t *o = json_object();

	set(o, "error_code", j_str(u->error_code));
	set(o, "error_message", j_str(u->error_message));
	set(o, "redirect_target", j_str(u->redirect_target));
	set(o, "internal_ews_url", j_str(u->internal_ews_url));
	set(o, "external_ews_url", j_str(u->external_ews_url));
	set(o, "grouping_information", j_str(u->grouping_information));
	set(o, "cas_version", j_str(u->cas_version));
	set(o, "ews_supported_schemas", j_str(u->ews_supported_schemas));
	return o;
}

static bool is_autodiscover(const struct ews_response *r)
{
	return r->autodiscover_error != NULL || r->n_users > 0 ||
	       (r->operation != NULL && strcmp(r->operation, "GetUserSettings") == 0);
}

static json_t *j_response(const struct ews_response *r)
{
	json_t *o = json_object();

	set(o, "operation", j_str(r->operation));
	set(o, "server_version", j_str(r->server_version));
	if (r->is_fault) {
		json_t *f = json_object();

		set(f, "code", j_str(r->fault.faultcode));
		set(f, "string", j_str(r->fault.faultstring));
		set(f, "response_code", j_str(r->fault.response_code));
		set(f, "back_off_ms", j_count(r->fault.mx.back_off_ms));
		set(o, "fault", f);
	} else if (is_autodiscover(r)) {
		json_t *users = r->n_users > 0 ? json_array() : json_null();

		for (size_t i = 0; i < r->n_users; i++)
			json_array_append_new(users, j_user(&r->users[i]));
		set(o, "error_code", j_str(r->autodiscover_error));
		set(o, "users", users);
	} else {
		json_t *messages = r->n_messages > 0 ? json_array() : json_null();

		for (size_t i = 0; i < r->n_messages; i++)
			json_array_append_new(messages, j_message(r->operation, &r->messages[i]));
		set(o, "messages", messages);
	}
	return o;
}

/* --- the input -------------------------------------------------------------------------- */

struct decode {
	const char *name; /* for messages: the file name, or "standard input" */
	size_t envelopes; /* decoded so far */
	size_t good_end;  /* offset just past the last decoded envelope */
	bool output_failed;
	/* For the line of a failed envelope: newlines before the current chunk, and the chunk. */
	size_t lines_before;
	const char *chunk;
	size_t chunk_off;
	size_t chunk_len;
	/* Set when an envelope did not parse: the message to print. */
	bool failed;
	char msg[512];
};

static size_t count_lines(const char *p, size_t n)
{
	size_t lines = 0;
	const char *end = p + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			break;
		lines++;
		p = nl + 1;
	}
	return lines;
}

/*
 * The reader's messages start "line N: " counted from the envelope's first byte; turn that
 * into the line of the whole input. The envelope ends inside the current chunk (the framer
 * hands it out during the feed that completes it), which gives its first line without keeping
 * any earlier input.
 */
static void describe_failure(struct decode *d, const char *xml, size_t len, size_t offset,
                             const char *msg)
{
	size_t end = offset + len;
	long line = 0;
	const char *rest = msg;

	if (strncmp(msg, "line ", 5) == 0) {
		char *after;

		line = strtol(msg + 5, &after, 10);
		if (after != msg + 5 && strncmp(after, ": ", 2) == 0)
			rest = after + 2;
		else
			line = 0;
	}
	if (line > 0 && end > d->chunk_off && end <= d->chunk_off + d->chunk_len) {
		size_t before_end = d->lines_before + count_lines(d->chunk, end - d->chunk_off);
		size_t first = before_end - count_lines(xml, len) + 1;

		snprintf(d->msg, sizeof(d->msg), "envelope %zu at byte offset %zu: line %zu: %s",
		         d->envelopes + 1, offset, first + (size_t)line - 1, rest);
	} else {
		snprintf(d->msg, sizeof(d->msg), "envelope %zu at byte offset %zu: %s",
		         d->envelopes + 1, offset, msg);
	}
}

static int on_envelope(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct decode *d = ctx;
	struct ews_response r;
	struct err err = {0};
	json_t *j;
	char *text;
	int rc;

	rc = ews_response_parse(xml, len, &r, &err);
	if (rc != 0) {
		d->failed = true;
		describe_failure(d, xml, len, offset, err.msg);
		return rc;
	}
	j = j_response(&r);
	ews_response_clear(&r);
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL) {
		fputs("calsync: out of memory (JSON)\n", stderr);
		abort();
	}
	/* One line per envelope, flushed, so that a live stream can be followed. */
	if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		d->output_failed = true;
		free(text);
		return -EIO;
	}
	free(text);
	d->envelopes++;
	d->good_end = offset + len;
	return 0;
}

/* The framer failed: malformed XML, an oversized envelope, or our callback's error. */
static int report(const struct decode *d, const struct err *err)
{
	/* main() reports a failed standard output, for every command alike. */
	if (d->output_failed)
		return EXIT_FAILURE;
	if (d->failed)
		fprintf(stderr, "calsync decode: %s: %s\n", d->name, d->msg);
	else
		fprintf(stderr, "calsync decode: %s: malformed input after byte offset %zu: %s\n",
		        d->name, d->good_end, err->msg);
	return EXIT_MALFORMED;
}

static int decode_fd(int fd, struct decode *d)
{
	struct ews_stream *s = ews_stream_new(EWS_MAX_RESPONSE, on_envelope, d);
	char *buf = xmalloc(READ_CHUNK);
	size_t offset = 0;
	struct err err = {0};
	int status = EXIT_SUCCESS;
	int rc;

	for (;;) {
		ssize_t n = read(fd, buf, READ_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "calsync decode: %s: read error at byte offset %zu: %s\n",
			        d->name, offset, strerror(errno));
			status = EXIT_FAILURE;
			goto out;
		}
		if (n == 0)
			break;
		d->chunk = buf;
		d->chunk_off = offset;
		d->chunk_len = (size_t)n;
		rc = ews_stream_feed(s, buf, (size_t)n, &err);
		if (rc != 0) {
			status = report(d, &err);
			goto out;
		}
		d->lines_before += count_lines(buf, (size_t)n);
		offset += (size_t)n;
	}
	rc = ews_stream_finish(s, &err);
	if (rc != 0) {
		fprintf(stderr, "calsync decode: %s: truncated input at byte offset %zu: %s\n",
		        d->name, offset, err.msg);
		status = EXIT_MALFORMED;
	} else if (d->envelopes == 0) {
		fprintf(stderr, "calsync decode: %s: no SOAP envelope in the input (%zu bytes)\n",
		        d->name, offset);
		status = EXIT_MALFORMED;
	}
out:
	ews_stream_free(s);
	free(buf);
	return status;
}

static void decode_usage(FILE *f)
{
	fprintf(f,
	        "Usage: calsync decode [FILE]\n"
	        "\n"
	        "Prints each EWS response envelope in FILE (or standard input, also with '-')\n"
	        "as one line of JSON: a single response, a SOAP fault, an Autodiscover\n"
	        "GetUserSettings answer, or a whole GetStreamingEvents body. See docs/decode.md.\n"
	        "Exit status: 0 every envelope decoded, 1 I/O error, 2 malformed input.\n");
}

int decode_main(int argc, char **argv)
{
	struct decode d = {.name = "standard input"};
	const char *path = NULL;
	int fd = STDIN_FILENO;
	int status;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			decode_usage(stdout);
			return EXIT_SUCCESS;
		}
		if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr,
			        "calsync decode: unknown option '%s'\n"
			        "Try 'calsync decode --help' for more information.\n",
			        a);
			return EXIT_USAGE;
		}
		if (path != NULL) {
			fprintf(stderr,
			        "calsync decode: unexpected argument '%s'\n"
			        "Try 'calsync decode --help' for more information.\n",
			        a);
			return EXIT_USAGE;
		}
		path = a;
	}
	if (path != NULL && strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "calsync decode: cannot open '%s': %s\n", path,
			        strerror(errno));
			return EXIT_FAILURE;
		}
		d.name = path;
	}
	status = decode_fd(fd, &d);
	if (fd != STDIN_FILENO)
		(void)close(fd);
	return status;
}
