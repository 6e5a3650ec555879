/* SPDX-License-Identifier: MIT */
/*
 * ews-request-notify.c: writes the notification requests: Subscribe (pull or streaming, on
 * the calendar folder), GetEvents, GetStreamingEvents and Unsubscribe.
 */
#include "ews/ews-request.h"

#include <errno.h>

#include "base/buf.h"
#include "base/err.h"
#include "ews/ews-request-int.h"

/* Pull subscription Timeout (t:SubscriptionTimeoutType) and GetStreamingEvents
 * ConnectionTimeout (t:StreamingSubscriptionConnectionTimeoutType), in minutes. */
#define PULL_TIMEOUT_MAX   1440u
#define STREAM_TIMEOUT_MAX 30u

/* t:EventType names, indexed by the bit number of enum ews_event_bits. */
static const char *const event_names[] = {
	"CreatedEvent", "DeletedEvent", "ModifiedEvent",        "MovedEvent",
	"CopiedEvent",  "NewMailEvent", "FreeBusyChangedEvent",
};

#define EVENTS_ALL ((1u << (sizeof(event_names) / sizeof(event_names[0]))) - 1u)

int ews_req_subscribe(const struct ews_header *h, const struct ews_subscribe *r, struct buf *out,
                      struct err *err)
{
	static const char op[] = "Subscribe";
	struct ews_req_header hd;
	struct ews_req_writer w;
	unsigned events;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	events = r->events != 0 ? r->events : EWS_EV_CALENDAR;
	if ((events & ~EVENTS_ALL) != 0)
		return err_set(err, -EINVAL, "%s: events 0x%x has unknown bits", op, events);
	if (r->streaming || (events & EWS_EV_FREEBUSY) != 0) {
		rc = ews_req_check_streaming(op, &hd, err);
		if (rc < 0)
			return rc;
	}
	if (r->streaming) {
		/* Streaming subscriptions have neither (schema, EWS-REFERENCE 2); a value here is
		 * a caller mixing up the two kinds. */
		if (r->watermark != NULL)
			return err_set(err, -EINVAL, "%s: watermark is for pull subscriptions only",
			               op);
	} else {
		rc = ews_req_check_text(op, r->watermark, true, err, "watermark");
		if (rc < 0)
			return rc;
		if (r->timeout_min < 1 || r->timeout_min > PULL_TIMEOUT_MAX)
			return err_set(err, -EINVAL, "%s: timeout_min %u is outside 1..%u", op,
			               r->timeout_min, PULL_TIMEOUT_MAX);
	}

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	start(&w, "m", r->streaming ? "StreamingSubscriptionRequest" : "PullSubscriptionRequest");
	start(&w, "t", "FolderIds");
	ews_req_calendar_folder(&w);
	end(&w);
	start(&w, "t", "EventTypes");
	for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++) {
		if ((events & 1u << i) != 0)
			text_elem(&w, "t", "EventType", event_names[i]);
	}
	end(&w);
	if (!r->streaming) {
		/* t:, not m: (schema; exchangelib's m:Watermark fails validation). */
		if (r->watermark != NULL)
			text_elem(&w, "t", "Watermark", r->watermark);
		uint_elem(&w, "t", "Timeout", r->timeout_min);
	}
	return ews_req_finish(&w, op, err);
}

int ews_req_get_events(const struct ews_header *h, const char *subscription_id,
                       const char *watermark, struct buf *out, struct err *err)
{
	static const char op[] = "GetEvents";
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	rc = ews_req_check_text(op, subscription_id, false, err, "subscription_id");
	if (rc < 0)
		return rc;
	rc = ews_req_check_text(op, watermark, false, err, "watermark");
	if (rc < 0)
		return rc;

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	text_elem(&w, "m", "SubscriptionId", subscription_id);
	text_elem(&w, "m", "Watermark", watermark);
	return ews_req_finish(&w, op, err);
}

int ews_req_get_streaming_events(const struct ews_header *h, const char *const *ids, size_t n_ids,
                                 unsigned timeout_min, struct buf *out, struct err *err)
{
	static const char op[] = "GetStreamingEvents";
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	rc = ews_req_check_streaming(op, &hd, err);
	if (rc < 0)
		return rc;
	if (n_ids < 1 || n_ids > EWS_MAX_STREAM_IDS || ids == NULL)
		return err_set(err, -EINVAL, "%s: n_ids %zu is outside 1..%u", op, n_ids,
		               EWS_MAX_STREAM_IDS);
	for (size_t i = 0; i < n_ids; i++) {
		rc = ews_req_check_text(op, ids[i], false, err, "ids[%zu]", i);
		if (rc < 0)
			return rc;
	}
	if (timeout_min < 1 || timeout_min > STREAM_TIMEOUT_MAX)
		return err_set(err, -EINVAL, "%s: timeout_min %u is outside 1..%u", op, timeout_min,
		               STREAM_TIMEOUT_MAX);

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	/* The ids are t:SubscriptionId inside m:SubscriptionIds; Microsoft's sample with
	 * m:SubscriptionId fails the schema (tests/fixtures/README.md). */
	start(&w, "m", "SubscriptionIds");
	for (size_t i = 0; i < n_ids; i++)
		text_elem(&w, "t", "SubscriptionId", ids[i]);
	end(&w);
	uint_elem(&w, "m", "ConnectionTimeout", timeout_min);
	return ews_req_finish(&w, op, err);
}

int ews_req_unsubscribe(const struct ews_header *h, const char *subscription_id, struct buf *out,
                        struct err *err)
{
	static const char op[] = "Unsubscribe";
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	rc = ews_req_check_text(op, subscription_id, false, err, "subscription_id");
	if (rc < 0)
		return rc;

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	text_elem(&w, "m", "SubscriptionId", subscription_id);
	return ews_req_finish(&w, op, err);
}
