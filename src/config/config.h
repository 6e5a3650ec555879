/* SPDX-License-Identifier: MIT */
/*
 * config.h: CalendarSyncExchange.config.xml (PRODUCT.md) parsed into an immutable struct cfg.
 * The file of the commercial product, holding only <advise Object="EwsStream"/>, is valid;
 * calsync's own settings are optional elements under <configuration><calendar_sync><calsync>,
 * each with a default from one table in config-defaults.c (docs/configuration.md lists them).
 * Errors name file:line and the element and say what is accepted; unknown elements and
 * attributes are warnings returned to the caller, never logged here. Reload is: load a new cfg,
 * swap, free.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "cal/occurrence.h"
#include "ews/ews-types.h"

struct err;

/* Largest configuration file: a long mailbox list belongs in a mailbox file. */
#define CFG_MAX_FILE (1u << 20)

/* Largest mailbox file: 50,000 addresses of 60 bytes are 3 MB; 16 MiB leaves room. */
#define CFG_MAX_MAILBOX_FILE (16u << 20)

/* Most mailboxes in total; the product's target is 50,000 per process. */
#define CFG_MAX_MAILBOXES 200000u

/* Largest password or token file: an OAuth2 access token is a few kilobytes. */
#define CFG_MAX_SECRET (16u << 10)

/* Warnings kept; the rest are only counted, so a hostile file cannot make us allocate much. */
#define CFG_MAX_WARNINGS 64u

/* Longest URL, path, user, profile name or forward target we accept. */
#define CFG_MAX_STRING 1024u

/* Most category profiles. */
#define CFG_MAX_CATEGORIES 256u

/* Most <webhook> targets: each has its own delivery state and cursor in the store. */
#define CFG_MAX_WEBHOOKS 16u

/* The HTTP API's default address: loopback only. */
#define CFG_DEFAULT_API_HOST "127.0.0.1"
#define CFG_DEFAULT_API_PORT 8745u

/* Where the daemon looks without -c. */
#define CFG_DEFAULT_PATH "/etc/calsync/CalendarSyncExchange.config.xml"

/* <advise Object="...">: how calsync learns about changes. */
enum cfg_notify {
	CFG_NOTIFY_STREAM = 0, /* EwsStream: streaming notifications (the default) */
	CFG_NOTIFY_PULL,       /* EwsPull: pull notifications, polled every pull_interval */
};

/* How all-day appointments count for presence. */
enum cfg_all_day {
	CFG_ALL_DAY_COUNT = 0, /* like any other appointment (the default) */
	CFG_ALL_DAY_OOF_ONLY,  /* only an all-day OOF counts */
	CFG_ALL_DAY_IGNORE,    /* never */
};

/* A presence profile: the name the UC server shows, and an optional call-forwarding target that
 * is applied when it starts and reverted when it ends. */
struct cfg_profile {
	char *name;    /* NULL: no profile for this value */
	char *forward; /* NULL: no forwarding */
};

struct cfg_presence {
	/* Bit (1u << v) for each enum cal_fb value v that counts. Free, Unknown and NoData never do. */
	unsigned count;
	enum cfg_all_day all_day;
	/* Indexed by enum cal_fb; only Tentative, Busy, OOF and WorkingElsewhere are used. */
	struct cfg_profile state[CAL_FB_NO_DATA + 1];
	/* Extra profiles that an appointment selects by an Outlook category equal to their name. */
	struct cfg_profile *categories;
	size_t n_categories;
};

/* <webhook>: a URL that receives every presence change as a JSON POST (docs/webhooks.md). */
struct cfg_webhook {
	char *url;              /* http:// or https:// */
	char *secret;           /* HMAC-SHA256 key, or NULL: no signature; wiped by cfg_free() */
	char *ca_file;          /* NULL: the system's trust store */
	int64_t retry_for_usec; /* an event undelivered for this long is given up */
};

/* Which backend serves a mailbox: the one that holds it (Autodiscover decides), or the one the
 * configuration pins it to with <mailbox backend="...">. */
enum cfg_backend {
	CFG_BACKEND_AUTO = 0,
	CFG_BACKEND_EWS,
	CFG_BACKEND_GRAPH,
};

/* How Graph mailboxes' changes are followed: change notifications POSTed to calsync's own HTTPS
 * endpoint, or a delta query per mailbox per interval. */
enum cfg_graph_mode {
	CFG_GRAPH_DELTA = 0,
	CFG_GRAPH_NOTIFY,
};

/* Largest certificate or private key file of <graph>: PEM of a 4096-bit key and its chain. */
#define CFG_MAX_PEM (64u << 10)

/* <graph>: Microsoft Graph for mailboxes in Exchange Online (docs/graph.md). */
struct cfg_graph {
	char *tenant;        /* the directory (tenant) id or a verified domain */
	char *client_id;     /* the app registration's application (client) id */
	char *client_secret; /* read from a file or the environment; or NULL with a certificate */
	char *cert_pem;      /* the certificate's PEM and its private key's, both or neither */
	char *key_pem;       /* wiped by cfg_free() */
	char *authority;     /* default CFG_GRAPH_AUTHORITY */
	char *base_url;      /* default CFG_GRAPH_BASE_URL, no trailing '/' */
	char *scope;         /* default: the base URL's scheme and host + "/.default" */
	enum cfg_graph_mode mode;
	int64_t delta_interval_usec; /* delta mode: each mailbox's delta query */
	int64_t renew_before_usec;   /* notify mode: a subscription is renewed this long before
	                               * its expiry */
	int64_t subscription_usec;   /* notify mode: the lifetime asked for */
	/* notify mode: the listener for Microsoft's POSTs, and the URL Microsoft posts to */
	char *listen_host;
	unsigned listen_port;
	char *notify_url; /* https://host[:port]/path as Microsoft reaches the listener */
	/* The listener's certificate and key (PEM contents, read from tls_cert and tls_key): both
	 * or neither (plain HTTP behind a TLS-terminating proxy). The key is wiped by cfg_free(). */
	char *notify_tls_cert_pem;
	char *notify_tls_key_pem;
	int64_t concurrency; /* Graph requests in flight in all */
};

#define CFG_GRAPH_AUTHORITY "https://login.microsoftonline.com"
#define CFG_GRAPH_BASE_URL  "https://graph.microsoft.com/v1.0"

/*
 * Everything calsync reads from the file. Immutable once returned: share it by const pointer and
 * replace it as a whole. Strings are NUL-terminated; durations are microseconds (STYLE.md 6).
 */
struct cfg {
	char *path; /* the file it came from, for messages */
	enum cfg_notify notify;

	char *ews_url;             /* NULL: Autodiscover */
	char *autodiscover_url;    /* NULL: derived from autodiscover_domain */
	char *autodiscover_domain; /* NULL: the domain of the service account or first mailbox */
	char *server_version;      /* RequestServerVersion; default EWS_DEFAULT_VERSION */
	enum ews_id_type id_type;  /* default EWS_ID_SMTP */

	char *user; /* service account; NULL for none and bearer */
	enum ews_auth auth;
	char *password; /* read from a file or the environment; wiped by cfg_free() */
	char *token;    /* bearer only, from token_file or token_env; same */
	/* bearer with oauth="graph": tokens come from the OAuth client-credentials provider with
	 * <graph>'s app registration (token is NULL then), for token_scope: scope="..." or the
	 * EWS URL's (else the Autodiscover URL's) scheme and host + "/.default". */
	bool token_oauth;
	char *token_scope;
	char *ca_file; /* NULL: the system's trust store */
	bool insecure_skip_tls_verify;

	char **mailboxes; /* inline ones first, then the file's; duplicates removed */
	enum cfg_backend *mailbox_backends; /* index for index with mailboxes */
	size_t n_mailboxes;
	struct cfg_graph *graph; /* NULL: no <graph>, on-premises EWS only */

	int64_t window_past_days; /* the window starts this many days before today's midnight UTC */
	int64_t window_ahead_days; /* and ends this many days after now */
	int64_t debounce_usec;
	int64_t safety_refresh_usec;
	int64_t pull_interval_usec;
	int64_t stream_timeout_usec;  /* GetStreamingEvents ConnectionTimeout, whole minutes */
	int64_t stream_watchdog_usec; /* silence on a stream that means it is dead */
	int64_t concurrency;          /* EWS requests in flight per budget owner */

	char *store_path;
	char *output_path; /* JSON lines of presence changes; NULL: stdout */

	/* <api>: the HTTP API (docs/api.md). */
	bool api_enabled;   /* default true */
	char *api_host;     /* numeric address to bind, default CFG_DEFAULT_API_HOST */
	unsigned api_port;  /* default CFG_DEFAULT_API_PORT; 0 = any free port (logged) */
	char *api_token;    /* bearer token; NULL: reads open, changes refused */
	char *api_tls_cert; /* PEM files; both or neither */
	char *api_tls_key;
	int64_t api_ready_live; /* /readyz wants at least this percentage of mailboxes live */

	struct cfg_webhook *webhooks; /* <webhooks>, in file order; NULL when n_webhooks is 0 */
	size_t n_webhooks;
	struct cfg_presence presence;
};

/* Warnings of one load, in file order: "file:line: unknown element <x> in <y>, ignored". */
struct cfg_warnings {
	char **lines;
	size_t n;
	size_t dropped; /* beyond CFG_MAX_WARNINGS */
};

struct cfg_parse_opts {
	const char *name;     /* the file name in messages; NULL: "(memory)" */
	const char *base_dir; /* relative paths of referenced files start here; NULL: the cwd */
	/* Do not read referenced files or environment variables (mailbox and secret files,
	 * password_env): for fuzzing, where the file system must not matter. */
	bool offline;
};

/*
 * Reads and parses the file at path. Relative paths inside it are taken relative to the file's
 * directory. Returns 0 and *out_cfg (owned, free with cfg_free()), or a negative errno with err
 * naming file:line and the element: -ENOENT/-EACCES/... for an unreadable file, -EMSGSIZE for
 * one larger than CFG_MAX_FILE, -EINVAL for anything invalid. warnings may be NULL; when not, it
 * must be zeroed or cleared and receives the warnings, on failure too; clear it with
 * cfg_warnings_clear().
 */
ATTR_NODISCARD int cfg_load(const char *path, struct cfg **out_cfg, struct cfg_warnings *warnings,
                            struct err *err);

/* The same for len bytes at xml (no NUL needed, at most CFG_MAX_FILE). opts may be NULL. */
ATTR_NODISCARD int cfg_parse(const char *xml, size_t len, const struct cfg_parse_opts *opts,
                             struct cfg **out_cfg, struct cfg_warnings *warnings, struct err *err);

/* NULL when smtp is a mailbox address the configuration accepts, else what is wrong with it
 * ("no '@'", "not a valid domain", ...): for addresses that arrive at run time (the HTTP API). */
const char *cfg_address_problem(const char *smtp);

/*
 * The Autodiscover service URL for a mailbox (owned, free()): <autodiscover url> when set, else
 * https://autodiscover.<domain>/autodiscover/autodiscover.svc with <autodiscover domain>, the
 * service account's mail domain, or smtp's domain, the first of them that is known. NULL when
 * none is (smtp NULL or without '@' and nothing configured). The daemon and `calsync check` both
 * ask this, so that they reach the same server.
 */
char *cfg_autodiscover_url(const struct cfg *cfg, const char *smtp);

/* NULL-safe; wipes the secrets. */
void cfg_free(struct cfg *cfg);

/* Frees the lines and leaves w empty. */
void cfg_warnings_clear(struct cfg_warnings *w);

/* Whether addr (local@domain) is a mailbox's address in Exchange Online: a tenant's routing
 * domain (the targetAddress of a mailbox moved there), worldwide *.mail.onmicrosoft.com, US
 * Government *.mail.onmicrosoft.us, 21Vianet *.mail.partner.onmschina.cn. */
bool cfg_is_cloud_address(const char *addr);

/* Whether url is http:// on a loopback address (a simulator): the only http:// the Graph side
 * accepts for its token endpoint. */
bool cfg_is_loopback_http(const char *url);

/* The notification listener's address when <notifications> names none. */
#define CFG_GRAPH_LISTEN_HOST "0.0.0.0"
#define CFG_GRAPH_LISTEN_PORT 8443u

/* "auto", "ews", "graph". */
const char *cfg_backend_name(enum cfg_backend b);

/* "delta" or "notifications". */
const char *cfg_graph_mode_name(enum cfg_graph_mode m);

/* "EwsStream" or "EwsPull". */
const char *cfg_notify_name(enum cfg_notify n);
