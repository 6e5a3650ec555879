/* SPDX-License-Identifier: MIT */
/*
 * graph-sub.h: Microsoft Graph change notifications for a mailbox's events: the bodies that
 * create and renew a subscription, the reading of a subscription answer, the reading of the
 * change and lifecycle notifications Graph POSTs to calsync, the notificationUrl validation
 * handshake, and the constant-time compare a clientState check needs. Pure: no I/O; "now" is
 * the caller's.
 *
 * Notifications are hints, never data (docs/architecture.md): a change notification says "read
 * this mailbox again"; a lifecycle notification says the subscription needs care:
 * reauthorizationRequired (renew it: a PATCH reauthorizes), subscriptionRemoved (create a new
 * one and re-read), missed (notifications were lost: re-read). Checking that each
 * notification's clientState is the one the subscription was created with is the caller's
 * (graph_sub_client_state_equal), as is answering within Graph's 3 seconds.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;
struct graph_schema_enum;
struct graph_schema_prop;

/* The longest lifetime Graph gives a subscription to Outlook events without resource data:
 * 10,080 minutes, under seven days (Graph's subscription docs; older versions of the page said
 * 4,230). Graph refuses a longer expirationDateTime. */
#define GRAPH_SUB_MAX_MINUTES 10080u
/* Graph's limit on clientState. */
#define GRAPH_SUB_MAX_CLIENT_STATE 128u
/* The largest notification POST read: Graph batches notifications, each well under 2 KiB. */
#define GRAPH_MAX_NOTIFICATION (1u << 20)
/* Notifications in one POST. */
#define GRAPH_MAX_NOTIFICATIONS 1000u
/* The longest validationToken taken, decoded (Graph's are about 200 bytes), and the longest
 * query string searched for it. */
#define GRAPH_MAX_VALIDATION_TOKEN 1024u
#define GRAPH_MAX_VALIDATION_QUERY 8192u

/* A subscription to create. */
struct graph_sub_create {
	const char *user;             /* id or userPrincipalName: resource "users/{user}/events" */
	const char *notification_url; /* where Graph POSTs change notifications */
	const char *lifecycle_url;    /* where it POSTs lifecycle notifications; NULL: none */
	const char *client_state;     /* the secret echoed in every notification (1..128 bytes) */
	int64_t now_utc;
	unsigned minutes; /* lifetime: 1..GRAPH_SUB_MAX_MINUTES */
	bool allow_http;  /* accept http:// URLs (a local simulator); Graph requires https */
};

/*
 * The body of POST /subscriptions for c as an owned JSON string: changeType
 * "created,updated,deleted", notificationUrl, lifecycleNotificationUrl (when given), resource,
 * expirationDateTime now + minutes ("2026-12-07T10:00:00Z") and clientState. -EINVAL with err
 * for a bad user (graph_url_user_path), a URL that is not https (or http with allow_http), is
 * over GRAPH_MAX_URL or has a control byte, a clientState that is empty, over
 * GRAPH_SUB_MAX_CLIENT_STATE bytes or not printable ASCII, or minutes out of range.
 */
ATTR_NODISCARD int graph_sub_create_body(const struct graph_sub_create *c, char **out_json,
                                         struct err *err);

/* The body of PATCH /subscriptions/{id} that renews (and so reauthorizes) it until now +
 * minutes. -EINVAL for minutes out of range. */
ATTR_NODISCARD int graph_sub_renew_body(int64_t now_utc, unsigned minutes, char **out_json,
                                        struct err *err);

/* A subscription as Graph answers a create or a renewal. Strings owned. */
struct graph_sub {
	char *id; /* never NULL */
	char *resource;
	char *change_type;
	char *client_state; /* Graph echoes it; NULL when it does not */
	int64_t expires_utc;
};

/* Reads a subscription answer into *out (written only on success). 0, -EMSGSIZE, or -EPROTO
 * when it has no non-empty id or no valid expirationDateTime, or a member of a wrong type. */
ATTR_NODISCARD int graph_sub_read(const char *json, size_t len, struct graph_sub *out,
                                  struct err *err);

void graph_sub_clear(struct graph_sub *s); /* NULL-safe; leaves s zeroed */

enum graph_change {
	GRAPH_CHANGE_NONE = 0, /* a lifecycle notification */
	GRAPH_CHANGE_CREATED,
	GRAPH_CHANGE_UPDATED,
	GRAPH_CHANGE_DELETED,
	GRAPH_CHANGE_UNKNOWN, /* a value calsync does not know: treat as "changed" */
};

enum graph_lifecycle {
	GRAPH_LIFECYCLE_NONE = 0, /* a change notification */
	GRAPH_LIFECYCLE_MISSED,
	GRAPH_LIFECYCLE_SUBSCRIPTION_REMOVED,
	GRAPH_LIFECYCLE_REAUTHORIZATION_REQUIRED,
	GRAPH_LIFECYCLE_UNKNOWN, /* a value calsync does not know: treat as missed */
};

/* One notification of a collection. Strings owned, NULL when absent. */
struct graph_notification {
	char *subscription_id; /* never NULL */
	char *client_state;
	char *tenant_id;
	char *resource;    /* "Users/{id}/Events/{id}" */
	char *resource_id; /* resourceData.id: the event's id */
	enum graph_change change;
	enum graph_lifecycle lifecycle;
	int64_t sub_expires_utc; /* subscriptionExpirationDateTime; 0 when absent */
};

struct graph_notifications {
	struct graph_notification *v;
	size_t n;
};

/*
 * Reads a changeNotificationCollection (the body Graph POSTs) into *out (zeroed first; clear it
 * with graph_notifications_clear() on success; left zeroed on failure). Each entry of value[]
 * needs a subscriptionId, and a changeType unless it is a lifecycle notification (which has a
 * lifecycleEvent instead); validationTokens and encryptedContent (rich notifications, which
 * calsync does not ask for) are ignored like every unknown member. 0; -EMSGSIZE over
 * GRAPH_MAX_NOTIFICATION bytes or GRAPH_MAX_NOTIFICATIONS entries; -EPROTO otherwise, with err
 * naming the entry and member.
 */
ATTR_NODISCARD int graph_notifications_read(const char *json, size_t len,
                                            struct graph_notifications *out, struct err *err);

void graph_notifications_clear(struct graph_notifications *ns); /* NULL-safe */

/*
 * Whether got (got_len bytes) equals expected, in time that depends only on the lengths, not
 * on where they differ, so that a forged notification learns nothing of the secret. false
 * when either is NULL.
 */
bool graph_sub_client_state_equal(const char *expected, const char *got, size_t got_len);

/*
 * The validation handshake: the decoded value of the validationToken parameter of query (len
 * bytes, the URL's query without its '?', as received), as an owned string to answer with
 * (200, text/plain). '+' is a space and %XX a byte (application/x-www-form-urlencoded; libcurl
 * decodes). -ENOENT when query has no validationToken (an ordinary notification); -EINVAL for
 * two of them, an empty one, one over GRAPH_MAX_VALIDATION_TOKEN decoded bytes or with a
 * control byte, or a query over GRAPH_MAX_VALIDATION_QUERY bytes.
 */
ATTR_NODISCARD int graph_sub_validation_token(const char *query, size_t len, char **out_token,
                                              struct err *err);

/* What the writers and readers above name of the CSDL (graph-schema.h). */
const struct graph_schema_prop *graph_sub_schema(size_t *out_n);
const struct graph_schema_enum *graph_sub_enums(size_t *out_n);
