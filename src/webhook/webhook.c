/* SPDX-License-Identifier: MIT */
/*
 * webhook.c: the webhook delivery thread. The outbox is presence_events; each target has a cursor
 * (webhook_cursors in the store). For each target in turn the thread reads the events after the
 * cursor and POSTs them one at a time, advancing and storing the cursor after each 2xx. A failed
 * POST is retried, the same event again, after a back-off: the thread never skips ahead, so the
 * receiver sees each user's changes in order. Only an event older than the target's retry_for is
 * given up (with the events behind it that are as old), so a receiver that is down for good does
 * not hold the log forever.
 *
 * The thread sleeps on a condition variable until the next retry is due or webhook_wake() says
 * there are new events; nothing polls. webhook_stop() wakes it, and an aborting progress callback
 * ends a POST in flight.
 */
#include "webhook/webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/url.h"
#include "base/xalloc.h"
#include "cal/change.h"
#include "cal/presence.h"
#include "calsync-config.h"
#include "config/config.h"
#include "store/store.h"

_Static_assert(WEBHOOK_MAX_TARGETS == CFG_MAX_WEBHOOKS, "one delivery state per <webhook>");

struct target {
	char *url;
	char *log_url; /* url without user info, query and fragment: for messages */
	char *secret;  /* NULL: no signature; wiped when freed */
	char *ca_file;
	int64_t retry_for_usec;
	int64_t cursor;        /* the last event delivered or given up */
	unsigned failures;     /* failed attempts since the last success */
	int64_t retry_at_usec; /* monotonic; 0: not waiting */
	int64_t warned_id;     /* the event whose failure was last logged as a warning */
	/* Under struct webhook's mu: */
	uint64_t delivered;
	uint64_t failed;
	uint64_t dropped;
	uint64_t pending;
	int64_t stats_cursor;
};

struct webhook {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool wake;           /* under mu: new events since the thread last looked */
	atomic_bool stop;    /* also read by the progress callback, without mu */
	struct store *store; /* the thread's own connection */
	CURL *curl;
	bool curl_global;
	char user_agent[64];
	uint64_t rng;
	size_t n;
	struct target t[WEBHOOK_MAX_TARGETS];
};

/* ---- pure helpers ---- */

/* The change a stored presence event records: time is its updated_utc, and a since or until of 0
 * (stored for "none") becomes PRESENCE_SINCE_ALWAYS / PRESENCE_NEVER. Strings are borrowed from
 * ev. */
static void change_of_event(const struct store_presence_event *ev, struct cal_change *out)
{
	const struct store_presence *p = &ev->presence;

	*out = (struct cal_change){
		.id = ev->id,
		.time_utc = p->updated_utc,
		.user = ev->smtp,
		.state = p->state,
		.profile = p->profile,
		.forward = p->forward,
		.subject = p->subject,
		.since_utc = p->since_utc,
		.until_utc = p->until_utc == 0 ? PRESENCE_NEVER : p->until_utc,
		.reason = ev->reason,
	};
}

int webhook_body(const struct store_presence_event *ev, char **out_body, size_t *out_len,
                 struct err *err)
{
	struct cal_change c;
	json_t *j = NULL;
	char *text;
	int rc;

	/* The same object as a docs/output.md line and a Server-Sent Event: one builder for all. */
	change_of_event(ev, &c);
	rc = cal_change_json(&c, &j, err);
	if (rc != 0)
		return rc;
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return err_set(err, -ENOMEM, "event %lld: cannot serialize", (long long)ev->id);
	*out_len = strlen(text);
	*out_body = text;
	return 0;
}

int webhook_signature(const char *secret, const char *body, size_t len,
                      char out[WEBHOOK_SIGNATURE_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	size_t o;

	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, md,
	         &md_len) == NULL ||
	    md_len != 32)
		return -EIO;
	memcpy(out, "sha256=", 7);
	o = 7;
	for (unsigned i = 0; i < md_len; i++) {
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 0xf];
	}
	out[o] = '\0';
	explicit_bzero(md, sizeof(md));
	return 0;
}

int64_t webhook_backoff_usec(unsigned failures, uint64_t rnd)
{
	return backoff_delay(WEBHOOK_RETRY_FIRST_USEC, WEBHOOK_RETRY_MAX_USEC, failures, rnd);
}

/* ---- the target ---- */

/* The URL for messages, without what may hold credentials (url_redact). Owned. */
static char *log_url(const char *url)
{
	size_t size = strlen(url) + 1;
	char *out = xmalloc(size);

	url_redact(url, out, size);
	return out;
}

static uint64_t rng_next(struct webhook *w)
{
	return backoff_rng_next(&w->rng);
}

static bool stopping(struct webhook *w)
{
	return atomic_load(&w->stop);
}

/* Moves the cursor past id and stores it. A failed store write is logged: the cursor moves on
 * in memory, and a restart delivers those events again (at least once). */
static void advance(struct webhook *w, struct target *t, int64_t id)
{
	struct err err = {0};

	t->cursor = id;
	if (store_webhook_cursor_set(w->store, t->url, id, &err) < 0)
		log_err("webhook '%s': cursor %lld not stored, a restart repeats events: %s",
		        t->log_url, (long long)id, err.msg);
	pthread_mutex_lock(&w->mu);
	t->stats_cursor = id;
	if (t->pending > 0)
		t->pending--;
	pthread_mutex_unlock(&w->mu);
}

static void count(struct webhook *w, uint64_t *counter)
{
	pthread_mutex_lock(&w->mu);
	(*counter)++;
	pthread_mutex_unlock(&w->mu);
}

/* The response body is not used; a receiver that sends more than WEBHOOK_MAX_RESPONSE ends the
 * transfer (returning less than given is a write error for curl). */
static size_t discard(char *data, size_t size, size_t nmemb, void *ctx)
{
	size_t *total = ctx;
	size_t n = size * nmemb;

	*total += n;
	return *total > WEBHOOK_MAX_RESPONSE ? 0 : n;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	return stopping(ctx) ? 1 : 0;
}

/* Appends a header line; like xmalloc, aborts when memory runs out (STYLE.md 4). */
static struct curl_slist *header(struct curl_slist *h, const char *line)
{
	struct curl_slist *n = curl_slist_append(h, line);

	if (n == NULL) {
		fprintf(stderr, "calsync: out of memory (webhook headers)\n");
		abort();
	}
	return n;
}

/* POSTs body. 0 for a 2xx; else -EIO with why ("HTTP 500", curl's message). */
static int post(struct webhook *w, struct target *t, int64_t id, const char *body, size_t len,
                char *why, size_t why_size)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	char id_hdr[64];
	char sig_hdr[32 + WEBHOOK_SIGNATURE_SIZE];
	struct curl_slist *h = NULL;
	size_t received = 0;
	long status = 0;
	CURLcode cc;
	CURL *c = w->curl;
	int rc = 0;

	(void)snprintf(id_hdr, sizeof(id_hdr), "X-Calsync-Event-Id: %lld", (long long)id);
	h = header(h, "Content-Type: application/json");
	h = header(h, id_hdr);
	/* No "Expect: 100-continue" round trip. */
	h = header(h, "Expect:");
	if (t->secret != NULL) {
		memcpy(sig_hdr, "X-Calsync-Signature: ", 21);
		if (webhook_signature(t->secret, body, len, sig_hdr + 21) != 0) {
			curl_slist_free_all(h);
			(void)snprintf(why, why_size, "cannot compute the signature");
			return -EIO;
		}
		h = header(h, sig_hdr);
		explicit_bzero(sig_hdr, sizeof(sig_hdr));
	}
	curl_easy_reset(c);
	(void)curl_easy_setopt(c, CURLOPT_URL, t->url);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_POST, 1L);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, w->user_agent);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(WEBHOOK_TIMEOUT_USEC / 1000));
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                       (long)(WEBHOOK_CONNECT_TIMEOUT_USEC / 1000));
	(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (t->ca_file != NULL)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &received);
	(void)curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	(void)curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		(void)snprintf(why, why_size, "%s",
		               curl_err[0] != '\0' ? curl_err : curl_easy_strerror(cc));
		rc = -EIO;
	} else if (status < 200 || status > 299) {
		(void)snprintf(why, why_size, "HTTP %ld", status);
		rc = -EIO;
	}
	/* The handle keeps pointers to the list, the error buffer and the counter: drop them. */
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_slist_free_all(h);
	return rc;
}

/* Whether ev, undelivered, has been waiting longer than the target's retry_for. Its age is
 * the wall clock minus the time the change was recorded. */
static bool expired(const struct target *t, const struct store_presence_event *ev, int64_t now_utc)
{
	return (now_utc - ev->presence.updated_utc) * USEC_PER_SEC > t->retry_for_usec;
}

static void drop(struct webhook *w, struct target *t, const struct store_presence_event *ev,
                 const char *why)
{
	log_warn("webhook '%s': event %lld (%s) dropped: %s", t->log_url, (long long)ev->id,
	         ev->smtp, why);
	count(w, &t->dropped);
	advance(w, t, ev->id);
}

/*
 * One pass over target t: delivers up to WEBHOOK_BATCH events after its cursor, in order, until
 * one fails. true when there may be more right away (a full batch went out).
 */
static bool deliver_target(struct webhook *w, struct target *t, int64_t now_usec)
{
	struct store_presence_event *evs = NULL;
	size_t n = 0;
	size_t i;
	struct err err = {0};
	bool failing = false;
	char why[CURL_ERROR_SIZE + 64] = "";

	if (t->retry_at_usec > now_usec)
		return false;
	t->retry_at_usec = 0;
	if (store_presence_events_after(w->store, t->cursor, WEBHOOK_BATCH, &evs, &n, &err) < 0) {
		log_warn("webhook '%s': cannot read the outbox, retrying in 1s: %s", t->log_url,
		         err.msg);
		t->retry_at_usec = now_usec + USEC_PER_SEC;
		return false;
	}
	for (i = 0; i < n && !stopping(w); i++) {
		const struct store_presence_event *ev = &evs[i];
		char *body = NULL;
		size_t len = 0;
		int64_t now_utc = clock_now_utc();
		char limit[64];

		(void)snprintf(limit, sizeof(limit), "undelivered for more than %llds (retry_for)",
		               (long long)(t->retry_for_usec / USEC_PER_SEC));
		/* After a failure, the events behind the dropped one that are as old go too,
		 * without an attempt each: the receiver has just failed. */
		if (failing) {
			if (!expired(t, ev, now_utc))
				break;
			drop(w, t, ev, limit);
			continue;
		}
		if (webhook_body(ev, &body, &len, &err) < 0) {
			drop(w, t, ev, err.msg);
			continue;
		}
		if (post(w, t, ev->id, body, len, why, sizeof(why)) == 0) {
			free(body);
			if (t->failures > 0)
				log_info("webhook '%s': delivering again after %u failed attempts",
				         t->log_url, t->failures);
			t->failures = 0;
			count(w, &t->delivered);
			advance(w, t, ev->id);
			continue;
		}
		free(body);
		if (stopping(w))
			break; /* aborted by webhook_stop: not the receiver's failure */
		t->failures++;
		count(w, &t->failed);
		if (expired(t, ev, now_utc)) {
			char msg[sizeof(why) + 80];

			(void)snprintf(msg, sizeof(msg), "%s; last attempt: %s", limit, why);
			drop(w, t, ev, msg);
			failing = true;
			continue;
		}
		failing = true;
		break;
	}
	if (failing && !stopping(w) && i == n && n < WEBHOOK_BATCH) {
		/* Every pending event was given up: the next change starts afresh, attempted at
		 * once and retried for its own retry_for. */
		t->failures = 0;
	} else if (failing && !stopping(w)) {
		int64_t delay = webhook_backoff_usec(t->failures, rng_next(w));

		/* Retry no later than just after the head event expires, so a dead receiver
		 * drops it on time. */
		if (i < n) {
			int64_t left = (evs[i].presence.updated_utc + 1) * USEC_PER_SEC +
			               t->retry_for_usec - clock_now_utc() * USEC_PER_SEC;

			if (left < delay)
				delay = left > 0 ? left : 0;
			if (t->warned_id != evs[i].id) {
				log_warn(
					"webhook '%s': event %lld not delivered, retrying in %.1fs: %s",
					t->log_url, (long long)evs[i].id, (double)delay / 1e6, why);
				t->warned_id = evs[i].id;
			} else {
				log_debug(
					"webhook '%s': event %lld: attempt %u failed, retrying in "
					"%.1fs: %s",
					t->log_url, (long long)evs[i].id, t->failures,
					(double)delay / 1e6, why);
			}
		}
		t->retry_at_usec = clock_now_usec() + delay;
		if (t->retry_at_usec == 0)
			t->retry_at_usec = 1;
	}
	store_presence_events_free(evs, n);
	return !failing && !stopping(w) && n == WEBHOOK_BATCH;
}

static void update_pending(struct webhook *w)
{
	int64_t last = 0;
	struct err err = {0};

	if (store_presence_events_last_id(w->store, &last, &err) < 0) {
		log_debug("webhook: cannot read the last event id: %s", err.msg);
		return;
	}
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n; i++)
		w->t[i].pending = last > w->t[i].cursor ? (uint64_t)(last - w->t[i].cursor) : 0;
	pthread_mutex_unlock(&w->mu);
}

static void *thread_main(void *arg)
{
	struct webhook *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!stopping(w)) {
		int64_t next = INT64_MAX;
		bool more = false;

		w->wake = false;
		pthread_mutex_unlock(&w->mu);
		update_pending(w);
		for (size_t i = 0; i < w->n && !stopping(w); i++) {
			struct target *t = &w->t[i];

			if (deliver_target(w, t, clock_now_usec()))
				more = true;
			if (t->retry_at_usec > 0 && t->retry_at_usec < next)
				next = t->retry_at_usec;
		}
		update_pending(w);
		pthread_mutex_lock(&w->mu);
		if (w->wake || more || stopping(w))
			continue;
		if (next == INT64_MAX) {
			pthread_cond_wait(&w->cond, &w->mu);
		} else {
			struct timespec ts = {
				.tv_sec = (time_t)(next / USEC_PER_SEC),
				.tv_nsec = (long)(next % USEC_PER_SEC) * 1000,
			};

			(void)pthread_cond_timedwait(&w->cond, &w->mu, &ts);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- the owner's side ---- */

static void free_webhook(struct webhook *w)
{
	if (w->curl != NULL)
		curl_easy_cleanup(w->curl);
	if (w->curl_global)
		curl_global_cleanup();
	store_close(w->store);
	for (size_t i = 0; i < w->n; i++) {
		struct target *t = &w->t[i];

		free(t->url);
		free(t->log_url);
		if (t->secret != NULL) {
			explicit_bzero(t->secret, strlen(t->secret));
			free(t->secret);
		}
		free(t->ca_file);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* Loads or creates t's cursor. */
static int load_cursor(struct webhook *w, struct target *t, struct err *err)
{
	int rc = store_webhook_cursor_get(w->store, t->url, &t->cursor, err);

	if (rc != -ENOENT)
		return rc;
	/* A new target gets the changes from now on; the cursor is stored at once, so a
	 * restart before the first delivery does not skip what happened meanwhile. */
	rc = store_presence_events_last_id(w->store, &t->cursor, err);
	if (rc == 0)
		rc = store_webhook_cursor_set(w->store, t->url, t->cursor, err);
	if (rc == 0)
		log_info("webhook '%s': new target, delivering the changes after event %lld",
		         t->log_url, (long long)t->cursor);
	return rc;
}

int webhook_start(const struct webhook_opts *o, struct webhook **out, struct err *err)
{
	struct webhook *w;
	pthread_condattr_t ca;
	sigset_t all;
	sigset_t old;
	int rc;

	if (o->n_targets == 0 || o->n_targets > WEBHOOK_MAX_TARGETS)
		return err_set(err, -EINVAL, "webhook: %zu targets, accepted 1 to %u", o->n_targets,
		               WEBHOOK_MAX_TARGETS);
	w = xcalloc(1, sizeof(*w));
	(void)pthread_mutex_init(&w->mu, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&w->cond, &ca);
	(void)pthread_condattr_destroy(&ca);
	atomic_init(&w->stop, false);
	(void)snprintf(w->user_agent, sizeof(w->user_agent), "calsync/%s", CALSYNC_VERSION);
	w->rng = (uint64_t)clock_now_usec() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)w;
	if (w->rng == 0)
		w->rng = 1;
	w->n = o->n_targets;
	for (size_t i = 0; i < w->n; i++) {
		const struct cfg_webhook *c = &o->targets[i];
		struct target *t = &w->t[i];

		t->url = xstrdup(c->url);
		t->log_url = log_url(c->url);
		t->secret = c->secret != NULL ? xstrdup(c->secret) : NULL;
		t->ca_file = c->ca_file != NULL ? xstrdup(c->ca_file) : NULL;
		t->retry_for_usec = c->retry_for_usec;
	}
	rc = store_open(o->store_path, &w->store, err);
	for (size_t i = 0; rc == 0 && i < w->n; i++) {
		rc = load_cursor(w, &w->t[i], err);
		w->t[i].stats_cursor = w->t[i].cursor;
	}
	if (rc < 0) {
		(void)err_set(err, rc, "webhook: %s", err != NULL ? err->msg : "");
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = err_set(err, -EIO, "webhook: curl_global_init failed");
		goto fail;
	}
	w->curl_global = true;
	w->curl = curl_easy_init();
	if (w->curl == NULL) {
		rc = err_set(err, -EIO, "webhook: curl_easy_init failed");
		goto fail;
	}
	/* Signals belong to the loop thread (libuv): the new thread blocks them all. */
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, thread_main, w);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		rc = err_set(err, -EIO, "webhook: cannot start the thread: %s", strerror(rc));
		goto fail;
	}
	w->started = true;
	*out = w;
	return 0;
fail:
	free_webhook(w);
	return rc;
}

void webhook_wake(struct webhook *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->wake = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

void webhook_stop(struct webhook *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stop, true);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
	if (w->started)
		(void)pthread_join(w->thread, NULL);
	free_webhook(w);
}

void webhook_stats(struct webhook *w, struct webhook_stats *out)
{
	*out = (struct webhook_stats){.n = w->n};
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n; i++) {
		const struct target *t = &w->t[i];

		out->targets[i] = (struct webhook_target_stats){
			.url = t->url,
			.delivered = t->delivered,
			.failures = t->failed,
			.dropped = t->dropped,
			.pending = t->pending,
			.cursor = t->stats_cursor,
		};
	}
	pthread_mutex_unlock(&w->mu);
}
