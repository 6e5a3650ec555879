/* SPDX-License-Identifier: MIT */
/*
 * config.c: CalendarSyncExchange.config.xml into struct cfg. libxml2 builds a tree (no network,
 * no DTD: a DOCTYPE stops the parse, no entity substitution), then one function per element
 * walks it. Every element and attribute calsync knows is listed in a table beside the function
 * that reads it, so an unknown one becomes a warning and a repeated one an error.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-request.h"
#include "ews/ews-transport.h"

/* -- defaults: the one table -------------------------------------------------------------- */

#define USEC   INT64_C(1000000)
#define MINUTE (60 * USEC)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

#define DEFAULT_STORE_PATH "/var/lib/calsync/calsync.db"

/* <webhook retry_for>: how long an event is retried before it is given up. */
#define WEBHOOK_RETRY_FOR_DEFAULT (24 * HOUR)
#define WEBHOOK_RETRY_FOR_MIN     USEC
#define WEBHOOK_RETRY_FOR_MAX     (30 * DAY)

enum num_unit {
	NUM_DURATION, /* "2s", "60min"; stored in microseconds */
	NUM_MINUTES,  /* a duration in whole minutes; stored in microseconds */
	NUM_DAYS,     /* a duration in whole days; stored in days */
	NUM_COUNT,    /* a plain decimal number */
};

/* A numeric setting: where it sits in the file and in struct cfg, its default and range. For
 * durations, def/min/max are microseconds; for NUM_DAYS and NUM_COUNT the stored value. */
struct num_setting {
	const char *elem;
	const char *attr;
	enum num_unit unit;
	int64_t def;
	int64_t min;
	int64_t max;
	size_t offset;
};

static const struct num_setting num_settings[] = {
	{"window", "past", NUM_DAYS, 1, 0, 31, offsetof(struct cfg, window_past_days)},
	{"window", "ahead", NUM_DAYS, 14, 1, 366, offsetof(struct cfg, window_ahead_days)},
	{"sync", "debounce", NUM_DURATION, USEC / 4, 0, 5 * MINUTE,
         offsetof(struct cfg, debounce_usec)},
	{"sync", "safety_refresh", NUM_DURATION, 60 * MINUTE, 5 * MINUTE, 7 * DAY,
         offsetof(struct cfg, safety_refresh_usec)},
	{"sync", "pull_interval", NUM_DURATION, 60 * USEC, 5 * USEC, HOUR,
         offsetof(struct cfg, pull_interval_usec)},
	/* Exchange ends a streaming connection after at most 30 minutes (ConnectionTimeout). */
	{"sync", "stream_timeout", NUM_MINUTES, 30 * MINUTE, MINUTE, 30 * MINUTE,
         offsetof(struct cfg, stream_timeout_usec)},
	/* Silence on a streaming connection that counts as a dead one. Exchange sends a heartbeat
	 * every 45 s; the Managed API waits twice that. */
	{"sync", "stream_watchdog", NUM_DURATION, 90 * USEC, 5 * USEC, 30 * MINUTE,
         offsetof(struct cfg, stream_watchdog_usec)},
	/* EWSMaxConcurrency is 27 by default; 8 leaves room for other clients of the account. */
	{"sync", "concurrency", NUM_COUNT, 8, 1, 27, offsetof(struct cfg, concurrency)},
	{"api", "ready_live", NUM_COUNT, 90, 0, 100, offsetof(struct cfg, api_ready_live)},
};

#define N_NUM_SETTINGS (sizeof(num_settings) / sizeof(num_settings[0]))

/* Default presence profile per free/busy value; Free, Unknown and NoData have none. */
static const char *const default_profiles[CAL_FB_NO_DATA + 1] = {
	[CAL_FB_TENTATIVE] = "Tentative",
	[CAL_FB_BUSY] = "In a meeting",
	[CAL_FB_OOF] = "Out of office",
	[CAL_FB_WORKING_ELSEWHERE] = "Working elsewhere",
};

#define DEFAULT_COUNT ((1u << CAL_FB_BUSY) | (1u << CAL_FB_OOF))

static void set_defaults(struct cfg *cfg)
{
	for (size_t i = 0; i < N_NUM_SETTINGS; i++)
		*(int64_t *)(void *)((char *)cfg + num_settings[i].offset) = num_settings[i].def;
	cfg->notify = CFG_NOTIFY_STREAM;
	cfg->server_version = xstrdup(EWS_DEFAULT_VERSION);
	cfg->id_type = EWS_ID_SMTP;
	cfg->auth = EWS_AUTH_NONE;
	cfg->store_path = xstrdup(DEFAULT_STORE_PATH);
	cfg->api_enabled = true;
	cfg->api_host = xstrdup(CFG_DEFAULT_API_HOST);
	cfg->api_port = CFG_DEFAULT_API_PORT;
	cfg->presence.count = DEFAULT_COUNT;
	cfg->presence.all_day = CFG_ALL_DAY_COUNT;
	for (size_t v = 0; v <= CAL_FB_NO_DATA; v++) {
		if (default_profiles[v] != NULL)
			cfg->presence.state[v].name = xstrdup(default_profiles[v]);
	}
}

/* -- the parser state ---------------------------------------------------------------------- */

/* One mailbox address and where it was listed, until duplicates are removed. */
struct mbx {
	char *smtp;
	const char *file; /* borrowed from struct parser */
	long line;
	size_t order;
};

/* Where a secret comes from: file or environment variable, read after the whole document is
 * checked, so that a wrong combination is reported before any file is opened. */
struct secret_src {
	const char *attr;  /* "password_file", ..., NULL: none given */
	const char *value; /* the path or variable name, borrowed from the tree */
	bool is_file;
};

struct parser {
	const char *name;
	char *base_dir; /* owned; NULL: relative paths stay relative */
	bool offline;
	struct cfg *cfg;
	struct cfg_warnings *warn;
	struct err *err;
	/* Attribute values fetched from the tree, freed at the end. */
	xmlChar **tmp;
	size_t n_tmp;
	struct mbx *mbx;
	size_t n_mbx;
	char *mbx_file; /* the resolved mailbox file path, for messages */
	/* Secret sources, checked against auth after the walk. */
	xmlNode *account; /* NULL: no <account> */
	struct secret_src password_src;
	struct secret_src token_src;
	xmlNode *api; /* NULL: no <api> */
	struct secret_src api_token_src;
	/* <webhook> elements and their secret sources, index for index with cfg->webhooks. */
	xmlNode *hook_nodes[CFG_MAX_WEBHOOKS];
	struct secret_src hook_secret_src[CFG_MAX_WEBHOOKS];
	long autodiscover_line;
	bool ews_url_set;
};

static void warn_add(struct parser *p, const char *fmt, ...) ATTR_PRINTF(2, 3);

static void warn_add(struct parser *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (p->warn == NULL)
		return;
	if (p->warn->n >= CFG_MAX_WARNINGS) {
		p->warn->dropped++;
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->warn->lines = xreallocarray(p->warn->lines, p->warn->n + 1, sizeof(char *));
	p->warn->lines[p->warn->n++] = xstrdup(line);
}

static long line_of(const xmlNode *n)
{
	return xmlGetLineNo(n);
}

static const char *name_of(const xmlNode *n)
{
	return (const char *)n->name;
}

/* "file:line: <elem>: why" */
static int fail(struct parser *p, const xmlNode *n, const char *fmt, ...) ATTR_PRINTF(3, 4);

static int fail(struct parser *p, const xmlNode *n, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return err_set(p->err, -EINVAL, "%s:%ld: <%s>: %s", p->name, line_of(n), name_of(n), why);
}

/* "file:line: <elem attr="value">: why"; the value is cut at 60 bytes. */
static int fail_attr(struct parser *p, const xmlNode *n, const char *attr, const char *value,
                     const char *fmt, ...) ATTR_PRINTF(5, 6);

static int fail_attr(struct parser *p, const xmlNode *n, const char *attr, const char *value,
                     const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return err_set(p->err, -EINVAL, "%s:%ld: <%s %s=\"%.60s\">: %s", p->name, line_of(n),
	               name_of(n), attr, value, why);
}

/* -- attributes ---------------------------------------------------------------------------- */

/* Warns about every attribute of n that is not in known (NULL-terminated). */
static void check_attrs(struct parser *p, const xmlNode *n, const char *const *known)
{
	for (const xmlAttr *a = n->properties; a != NULL; a = a->next) {
		bool ok = false;

		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp((const char *)a->name, known[i]) == 0;
		if (!ok)
			warn_add(p, "%s:%ld: unknown attribute %.60s of <%s>, ignored", p->name,
			         line_of(n), (const char *)a->name, name_of(n));
	}
}

/* The value of attribute name, borrowed until the parse ends, or NULL when absent. */
static const char *attr(struct parser *p, xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);

	if (v == NULL)
		return NULL;
	p->tmp = xreallocarray(p->tmp, p->n_tmp + 1, sizeof(*p->tmp));
	p->tmp[p->n_tmp++] = v;
	return (const char *)v;
}

/* 1..CFG_MAX_STRING bytes without control characters (or empty when allowed). */
static int check_text(struct parser *p, xmlNode *n, const char *a, const char *v, bool empty_ok)
{
	size_t len = strlen(v);

	if (len == 0 && !empty_ok)
		return fail_attr(p, n, a, v, "must not be empty");
	if (len > CFG_MAX_STRING)
		return fail_attr(p, n, a, v, "longer than %u bytes", CFG_MAX_STRING);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return fail_attr(p, n, a, v, "contains a control character");
	}
	return 0;
}

/* Copies a text attribute, when present, into *dst (replacing the default). */
static int get_text(struct parser *p, xmlNode *n, const char *a, bool empty_ok, char **dst)
{
	const char *v = attr(p, n, a);
	int rc;

	if (v == NULL)
		return 0;
	rc = check_text(p, n, a, v, empty_ok);
	if (rc != 0)
		return rc;
	free(*dst);
	*dst = v[0] != '\0' ? xstrdup(v) : NULL;
	return 0;
}

static char *resolve(const struct parser *p, const char *path)
{
	size_t n;
	char *out;

	if (path[0] == '/' || p->base_dir == NULL)
		return xstrdup(path);
	n = strlen(p->base_dir) + 1 + strlen(path) + 1;
	out = xmalloc(n);
	(void)snprintf(out, n, "%s/%s", p->base_dir, path);
	return out;
}

static int get_path(struct parser *p, xmlNode *n, const char *a, char **dst)
{
	const char *v = attr(p, n, a);
	int rc;

	if (v == NULL)
		return 0;
	rc = check_text(p, n, a, v, false);
	if (rc != 0)
		return rc;
	free(*dst);
	*dst = resolve(p, v);
	return 0;
}

static bool ascii_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* An http(s) URL without spaces. */
static int get_url(struct parser *p, xmlNode *n, const char *a, char **dst)
{
	const char *v = attr(p, n, a);
	int rc;

	if (v == NULL)
		return 0;
	rc = check_text(p, n, a, v, false);
	if (rc != 0)
		return rc;
	if (strncasecmp(v, "https://", 8) != 0 && strncasecmp(v, "http://", 7) != 0)
		return fail_attr(p, n, a, v, "not a URL; accepted: https://host/path (or http://)");
	if (strchr(v, ' ') != NULL)
		return fail_attr(p, n, a, v, "a URL cannot contain spaces");
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

static int get_bool(struct parser *p, xmlNode *n, const char *a, bool *dst)
{
	const char *v = attr(p, n, a);

	if (v == NULL)
		return 0;
	if (ascii_ieq(v, "true")) {
		*dst = true;
	} else if (ascii_ieq(v, "false")) {
		*dst = false;
	} else {
		return fail_attr(p, n, a, v, "not a boolean; accepted: true, false");
	}
	return 0;
}

/* A value from names (NULL-terminated), any case; *dst is its index. */
static int get_enum(struct parser *p, xmlNode *n, const char *a, const char *const *names,
                    const char *accepted, int *dst)
{
	const char *v = attr(p, n, a);

	if (v == NULL)
		return 0;
	for (int i = 0; names[i] != NULL; i++) {
		if (ascii_ieq(v, names[i])) {
			*dst = i;
			return 0;
		}
	}
	return fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
}

/* -- durations ----------------------------------------------------------------------------- */

static const struct {
	const char *name;
	int64_t usec;
} units[] = {{"ms", USEC / 1000}, {"s", USEC}, {"min", MINUTE}, {"h", HOUR}, {"d", DAY}};

/* Writes usec in its largest whole unit, e.g. "30min", "7d", "0s". */
static void format_duration(int64_t usec, char *out, size_t size)
{
	size_t best = 1;

	/* Every unit divides 0; "0s" reads best. */
	for (size_t i = 0; usec != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (usec % units[i].usec == 0)
			best = i;
	}
	(void)snprintf(out, size, "%" PRId64 "%s", usec / units[best].usec, units[best].name);
}

/*
 * "<digits><unit>" exactly: 1 to 9 digits, a unit of ms, s, min, h or d, nothing else (no sign,
 * space, fraction or bare number). 0 and *out_usec, or -EINVAL with why.
 */
static int parse_duration(const char *v, int64_t *out_usec, const char **why)
{
	int64_t n = 0;
	size_t i = 0;

	while (isdigit((unsigned char)v[i]) && i < 9) {
		n = n * 10 + (v[i] - '0');
		i++;
	}
	if (i == 0) {
		*why = "not a duration; accepted: a number and a unit, e.g. 250ms, 2s, 60min, 1h, 14d";
		return -EINVAL;
	}
	if (isdigit((unsigned char)v[i])) {
		*why = "too many digits";
		return -EINVAL;
	}
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(v + i, units[u].name) == 0) {
			*out_usec = n * units[u].usec;
			return 0;
		}
	}
	*why = v[i] == '\0' ? "a duration needs a unit; accepted units: ms, s, min, h, d"
	                    : "unknown unit; accepted units: ms, s, min, h, d";
	return -EINVAL;
}

static int get_num(struct parser *p, xmlNode *n, const struct num_setting *s)
{
	const char *v = attr(p, n, s->attr);
	int64_t value = 0;
	int64_t *dst = (int64_t *)(void *)((char *)p->cfg + s->offset);
	const char *why = NULL;
	char lo[32];
	char hi[32];

	if (v == NULL)
		return 0;
	if (s->unit == NUM_COUNT) {
		size_t i = 0;

		while (isdigit((unsigned char)v[i]) && i < 9) {
			value = value * 10 + (v[i] - '0');
			i++;
		}
		if (i == 0 || v[i] != '\0')
			return fail_attr(p, n, s->attr, v,
			                 "not a number; accepted: %" PRId64 " to %" PRId64, s->min,
			                 s->max);
		if (value < s->min || value > s->max)
			return fail_attr(p, n, s->attr, v,
			                 "out of range; accepted: %" PRId64 " to %" PRId64, s->min,
			                 s->max);
		*dst = value;
		return 0;
	}
	if (parse_duration(v, &value, &why) != 0)
		return fail_attr(p, n, s->attr, v, "%s", why);
	if (s->unit == NUM_DAYS) {
		if (value % DAY != 0)
			return fail_attr(p, n, s->attr, v, "must be whole days, e.g. 14d");
		if (value / DAY < s->min || value / DAY > s->max)
			return fail_attr(p, n, s->attr, v,
			                 "out of range; accepted: %" PRId64 "d to %" PRId64 "d",
			                 s->min, s->max);
		*dst = value / DAY;
		return 0;
	}
	if (s->unit == NUM_MINUTES && value % MINUTE != 0)
		return fail_attr(p, n, s->attr, v, "must be whole minutes, e.g. 30min");
	format_duration(s->min, lo, sizeof(lo));
	format_duration(s->max, hi, sizeof(hi));
	if (value < s->min || value > s->max)
		return fail_attr(p, n, s->attr, v, "out of range; accepted: %s to %s", lo, hi);
	*dst = value;
	return 0;
}

/* Reads every numeric attribute of element n from the table. */
static int get_nums(struct parser *p, xmlNode *n)
{
	for (size_t i = 0; i < N_NUM_SETTINGS; i++) {
		if (strcmp(num_settings[i].elem, name_of(n)) == 0) {
			int rc = get_num(p, n, &num_settings[i]);

			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* -- children ------------------------------------------------------------------------------ */

typedef int element_fn(struct parser *p, xmlNode *n);

struct child {
	const char *name;
	element_fn *fn;
	bool repeat; /* may appear more than once */
};

#define MAX_CHILDREN 16

/* Calls each known child element's function in document order; warns about unknown ones and
 * refuses a repeated one. Text and comments are ignored. */
static int walk(struct parser *p, xmlNode *parent, const struct child *kids, size_t n_kids)
{
	long seen[MAX_CHILDREN] = {0};

	assert(n_kids <= MAX_CHILDREN);
	for (xmlNode *c = parent->children; c != NULL; c = c->next) {
		size_t i = 0;
		int rc;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		while (i < n_kids && strcmp(kids[i].name, name_of(c)) != 0)
			i++;
		if (i == n_kids) {
			warn_add(p, "%s:%ld: unknown element <%.60s> in <%s>, ignored", p->name,
			         line_of(c), name_of(c), name_of(parent));
			continue;
		}
		if (seen[i] != 0 && !kids[i].repeat)
			return fail(p, c, "given twice (first at line %ld); give it once", seen[i]);
		seen[i] = line_of(c);
		rc = kids[i].fn(p, c);
		if (rc != 0)
			return rc;
	}
	return 0;
}

#define WALK(p, n, kids) walk(p, n, kids, sizeof(kids) / sizeof(kids[0]))

/* -- the product's elements ---------------------------------------------------------------- */

static int el_advise(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"Object", NULL};
	static const char *const stream[] = {"EwsStream", "EWSStream", "EWStream"};
	static const char *const pull[] = {"EwsPull", "EWSPull"};
	const char *v;

	check_attrs(p, n, known);
	v = attr(p, n, "Object");
	if (v == NULL)
		return fail(p, n, "missing attribute Object; accepted: EwsStream, EwsPull");
	for (size_t i = 0; i < sizeof(stream) / sizeof(stream[0]); i++) {
		if (ascii_ieq(v, stream[i])) {
			p->cfg->notify = CFG_NOTIFY_STREAM;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(pull) / sizeof(pull[0]); i++) {
		if (ascii_ieq(v, pull[i])) {
			p->cfg->notify = CFG_NOTIFY_PULL;
			return 0;
		}
	}
	return fail_attr(p, n, "Object", v,
	                 "unknown notification mode; accepted: EwsStream, EWSStream, EWStream, "
	                 "EwsPull, EWSPull (any case)");
}

static int el_events(struct parser *p, xmlNode *n)
{
	static const struct child kids[] = {{"advise", el_advise, false}};

	return WALK(p, n, kids);
}

static int el_exchange(struct parser *p, xmlNode *n)
{
	static const struct child kids[] = {{"events", el_events, false}};

	return WALK(p, n, kids);
}

/* -- calsync's elements -------------------------------------------------------------------- */

static int el_ews(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"url", "version", "impersonation", NULL};
	static const char *const id_types[] = {"SmtpAddress", "PrimarySmtpAddress", "PrincipalName",
	                                       NULL};
	const char *v;
	int id = (int)p->cfg->id_type;
	int rc;

	check_attrs(p, n, known);
	rc = get_url(p, n, "url", &p->cfg->ews_url);
	if (rc != 0)
		return rc;
	p->ews_url_set = p->cfg->ews_url != NULL;
	v = attr(p, n, "version");
	if (v != NULL) {
		/* The writer's table decides; before Exchange2010_SP1 there are no streaming
		 * notifications and no FreeBusyChangedEvent, so calsync does not accept those. */
		const char *version = ews_version_known(v);

		if (version == NULL || !ews_version_streams(version))
			return fail_attr(
				p, n, "version", v,
				"unknown RequestServerVersion; accepted: Exchange2010_SP1, "
				"Exchange2010_SP2, Exchange2013, Exchange2013_SP1, "
				"Exchange2016, V2015_10_05 ... V2017_07_11");
		free(p->cfg->server_version);
		p->cfg->server_version = xstrdup(version);
	}
	rc = get_enum(p, n, "impersonation", id_types,
	              "SmtpAddress, PrimarySmtpAddress, PrincipalName", &id);
	if (rc != 0)
		return rc;
	p->cfg->id_type = (enum ews_id_type)id;
	return 0;
}

static int el_autodiscover(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"url", "domain", NULL};
	int rc;

	check_attrs(p, n, known);
	p->autodiscover_line = line_of(n);
	rc = get_url(p, n, "url", &p->cfg->autodiscover_url);
	if (rc == 0)
		rc = get_text(p, n, "domain", false, &p->cfg->autodiscover_domain);
	if (rc == 0 && p->cfg->autodiscover_domain != NULL &&
	    strpbrk(p->cfg->autodiscover_domain, " /@:") != NULL)
		return fail_attr(p, n, "domain", p->cfg->autodiscover_domain,
		                 "not a domain; accepted: e.g. contoso.example");
	return rc;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Reads a secret from a file: at most CFG_MAX_SECRET bytes, one trailing newline dropped, not
 * empty, no other line break or NUL. */
/*
 * Reads the whole regular file at path, at most max bytes, into an owned buffer with a NUL
 * after the data. 0, or a negative errno: from open() or read(), -EINVAL when it is not a
 * regular file, -EMSGSIZE when it is larger than max. out_mode (may be NULL) gets its mode.
 */
static int read_whole(const char *path, size_t max, char **out_data, size_t *out_len,
                      mode_t *out_mode)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if ((uintmax_t)st.st_size > max)
		rc = -EMSGSIZE;
	if (rc == 0)
		data = xmalloc((size_t)st.st_size + 1);
	while (rc == 0 && len < (size_t)st.st_size) {
		ssize_t got = read(fd, data + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = -errno;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (rc != 0) {
		free(data);
		return rc;
	}
	data[len] = '\0';
	*out_data = data;
	*out_len = len;
	if (out_mode != NULL)
		*out_mode = st.st_mode;
	return 0;
}

/* Why read_whole() failed, for a message. */
static const char *read_problem(int rc)
{
	if (rc == -EINVAL)
		return "not a regular file";
	if (rc == -EMSGSIZE)
		return "file too large";
	return strerror(-rc);
}

static int read_secret_file(struct parser *p, xmlNode *n, const char *a, const char *path,
                            char **dst)
{
	char *full = resolve(p, path);
	char *buf = NULL;
	size_t len = 0;
	mode_t mode = 0;
	int rc = read_whole(full, CFG_MAX_SECRET, &buf, &len, &mode);

	if (rc != 0) {
		rc = fail_attr(p, n, a, path, "cannot read %s: %s", full, read_problem(rc));
		goto out;
	}
	if ((mode & S_IROTH) != 0)
		warn_add(p, "%s:%ld: <%s %s>: %s is readable by everyone; chmod o-r it", p->name,
		         line_of(n), name_of(n), a, full);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\n', len) != NULL || memchr(buf, '\0', len) != NULL) {
		rc = fail_attr(p, n, a, path, "must hold the secret on one line, and nothing else");
		goto out;
	}
	*dst = buf;
	buf = NULL;
out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	free(full);
	return rc;
}

static int read_secret_env(struct parser *p, xmlNode *n, const char *a, const char *var, char **dst)
{
	const char *v = getenv(var);

	if (v == NULL || v[0] == '\0')
		return fail_attr(p, n, a, var, "the environment variable is not set or empty");
	if (strlen(v) > CFG_MAX_SECRET || strpbrk(v, "\r\n") != NULL)
		return fail_attr(p, n, a, var, "the value must be one line of at most %u bytes",
		                 CFG_MAX_SECRET);
	*dst = xstrdup(v);
	return 0;
}

/* password_file / password_env (or token_*): at most one of them, and never the inline form. */
static int get_secret(struct parser *p, xmlNode *n, const char *what, const char *file_attr,
                      const char *env_attr, struct secret_src *src)
{
	const char *file = attr(p, n, file_attr);
	const char *env = attr(p, n, env_attr);
	char upper[16] = "";
	int rc;

	for (size_t i = 0; what[i] != '\0' && i + 1 < sizeof(upper); i++)
		upper[i] = (char)toupper((unsigned char)what[i]);
	if (attr(p, n, what) != NULL)
		return fail(p, n,
		            "an inline %s is refused; put it in a file only calsync can read "
		            "(%s=\"/etc/calsync/%s\", mode 0600) or an environment variable "
		            "(%s=\"CALSYNC_%s\")",
		            what, file_attr, what, env_attr, upper);
	if (file != NULL && env != NULL)
		return fail(p, n, "give one of %s and %s, not both", file_attr, env_attr);
	if (file != NULL) {
		rc = check_text(p, n, file_attr, file, false);
		*src = (struct secret_src){.attr = file_attr, .value = file, .is_file = true};
		return rc;
	}
	if (env != NULL) {
		if (env[0] == '\0' || strpbrk(env, "= ") != NULL)
			return fail_attr(p, n, env_attr, env, "not an environment variable name");
		*src = (struct secret_src){.attr = env_attr, .value = env};
	}
	return 0;
}

static int read_secret(struct parser *p, const struct secret_src *src, char **dst)
{
	if (src->attr == NULL || p->offline)
		return 0;
	if (src->is_file)
		return read_secret_file(p, p->account, src->attr, src->value, dst);
	return read_secret_env(p, p->account, src->attr, src->value, dst);
}

static int el_account(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"user",         "auth",       "password_file",
	                                    "password_env", "token_file", "token_env",
	                                    "password",     "token",      NULL};
	const char *v;
	int rc;

	check_attrs(p, n, known);
	p->account = n;
	rc = get_text(p, n, "user", false, &p->cfg->user);
	if (rc != 0)
		return rc;
	/* With an <account>, NTLM is the default; without one, calsync sends no credentials. */
	p->cfg->auth = EWS_AUTH_NTLM;
	v = attr(p, n, "auth");
	if (v != NULL) {
		/* ews_auth_from_name() wants lower case; the file may say "NTLM". */
		char lower[16];
		size_t len = strlen(v);

		for (size_t i = 0; i < len && i < sizeof(lower); i++)
			lower[i] = (char)tolower((unsigned char)v[i]);
		if (len >= sizeof(lower) ||
		    ews_auth_from_name(lower, len, &p->cfg->auth, NULL) != 0)
			return fail_attr(
				p, n, "auth", v,
				"unknown authentication; accepted: basic, ntlm, negotiate, "
				"bearer, none (any case)");
	}
	rc = get_secret(p, n, "password", "password_file", "password_env", &p->password_src);
	if (rc == 0)
		rc = get_secret(p, n, "token", "token_file", "token_env", &p->token_src);
	return rc;
}

static int el_tls(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"ca_file", "insecure_skip_tls_verify", NULL};
	int rc;

	check_attrs(p, n, known);
	rc = get_path(p, n, "ca_file", &p->cfg->ca_file);
	if (rc == 0)
		rc = get_bool(p, n, "insecure_skip_tls_verify", &p->cfg->insecure_skip_tls_verify);
	if (rc == 0 && p->cfg->insecure_skip_tls_verify)
		warn_add(
			p,
			"%s:%ld: <tls insecure_skip_tls_verify=\"true\">: TLS certificates are NOT "
			"verified; anyone on the path can read the credentials",
			p->name, line_of(n));
	return rc;
}

/* -- mailboxes ----------------------------------------------------------------------------- */

static bool atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

static bool has_dot_dot(const char *s, size_t len)
{
	for (size_t i = 1; i < len; i++) {
		if (s[i] == '.' && s[i - 1] == '.')
			return true;
	}
	return false;
}

/* NULL when s (len bytes) is a plain ASCII address local@domain, else why not. */
static const char *address_problem(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	size_t local;
	size_t label = 0;

	if (len > 254)
		return "longer than 254 bytes";
	if (at == NULL)
		return "no '@'";
	local = (size_t)(at - s);
	if (local == 0 || local > 64)
		return "the part before '@' must have 1 to 64 characters";
	for (size_t i = 0; i < local; i++) {
		if (!atext((unsigned char)s[i]))
			return "a character not allowed before '@'";
	}
	if (s[0] == '.' || s[local - 1] == '.' || has_dot_dot(s, local))
		return "misplaced '.' before '@'";
	if (local + 1 == len)
		return "no domain after '@'";
	for (size_t i = local + 1; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return "not a valid domain after '@'";
			label = 0;
		} else if (isalnum(c) || c == '-') {
			label++;
		} else {
			return "a character not allowed in the domain";
		}
	}
	return NULL;
}

static int add_mailbox(struct parser *p, const char *s, size_t len, const char *file, long line)
{
	if (p->n_mbx >= CFG_MAX_MAILBOXES)
		return err_set(p->err, -EINVAL, "%s:%ld: more than %u mailboxes", file, line,
		               CFG_MAX_MAILBOXES);
	p->mbx = xreallocarray(p->mbx, p->n_mbx + 1, sizeof(*p->mbx));
	p->mbx[p->n_mbx] = (struct mbx){
		.smtp = xmemdup(s, len), .file = file, .line = line, .order = p->n_mbx};
	p->n_mbx++;
	return 0;
}

static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int el_mailbox(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {NULL};
	xmlChar *text = xmlNodeGetContent(n);
	const char *s = (const char *)text;
	size_t len;
	const char *why;

	check_attrs(p, n, known);
	if (text == NULL)
		return fail(p, n, "empty; accepted: an e-mail address, e.g. alice@contoso.example");
	p->tmp = xreallocarray(p->tmp, p->n_tmp + 1, sizeof(*p->tmp));
	p->tmp[p->n_tmp++] = text;
	len = strlen(s);
	while (len > 0 && space(s[0])) {
		s++;
		len--;
	}
	while (len > 0 && space(s[len - 1]))
		len--;
	why = address_problem(s, len);
	if (why != NULL)
		return fail(p, n, "'%.*s' is not a mailbox address: %s", (int)(len > 60 ? 60 : len),
		            s, why);
	return add_mailbox(p, s, len, p->name, line_of(n));
}

/* One address per line; blank lines and lines starting with '#' are skipped. */
static int read_mailbox_file(struct parser *p, xmlNode *n, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	long line = 0;
	int rc;

	p->mbx_file = resolve(p, path);
	rc = read_whole(p->mbx_file, CFG_MAX_MAILBOX_FILE, &data, &len, NULL);
	if (rc != 0)
		return fail_attr(p, n, "file", path, "cannot read %s: %s", p->mbx_file,
		                 read_problem(rc));
	for (size_t pos = 0; pos < len && rc == 0;) {
		const char *eol = memchr(data + pos, '\n', len - pos);
		size_t end = eol != NULL ? (size_t)(eol - data) : len;
		const char *s = data + pos;
		size_t l = end - pos;
		const char *why;

		line++;
		pos = end + 1;
		while (l > 0 && space(s[0])) {
			s++;
			l--;
		}
		while (l > 0 && space(s[l - 1]))
			l--;
		if (l == 0 || s[0] == '#')
			continue;
		why = address_problem(s, l);
		if (why != NULL)
			rc = err_set(
				p->err, -EINVAL,
				"%s:%ld: '%.*s' is not a mailbox address: %s (<mailboxes file> at "
				"%s:%ld)",
				p->mbx_file, line, (int)(l > 60 ? 60 : l), s, why, p->name,
				line_of(n));
		else
			rc = add_mailbox(p, s, l, p->mbx_file, line);
	}
	free(data);
	return rc;
}

static int el_mailboxes(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"file", NULL};
	static const struct child kids[] = {{"mailbox", el_mailbox, true}};
	const char *file;
	int rc;

	check_attrs(p, n, known);
	rc = WALK(p, n, kids);
	if (rc != 0)
		return rc;
	file = attr(p, n, "file");
	if (file == NULL)
		return 0;
	rc = check_text(p, n, "file", file, false);
	if (rc != 0 || p->offline)
		return rc;
	return read_mailbox_file(p, n, file);
}

static int mbx_cmp(const void *a, const void *b)
{
	const struct mbx *x = a;
	const struct mbx *y = b;
	int c = strcasecmp(x->smtp, y->smtp);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int mbx_order_cmp(const void *a, const void *b)
{
	const struct mbx *x = a;
	const struct mbx *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/* Drops later duplicates (compared without case) with a warning, keeping the list order. */
static void finish_mailboxes(struct parser *p)
{
	size_t kept = 0;

	/* qsort() wants a non-NULL array even for no elements. */
	if (p->n_mbx == 0)
		return;
	qsort(p->mbx, p->n_mbx, sizeof(*p->mbx), mbx_cmp);
	for (size_t i = 1, first = 0; i < p->n_mbx; i++) {
		if (strcasecmp(p->mbx[i].smtp, p->mbx[first].smtp) != 0) {
			first = i;
			continue;
		}
		warn_add(p, "%s:%ld: mailbox '%s' already listed at %s:%ld, ignored",
		         p->mbx[i].file, p->mbx[i].line, p->mbx[i].smtp, p->mbx[first].file,
		         p->mbx[first].line);
		free(p->mbx[i].smtp);
		p->mbx[i].smtp = NULL;
	}
	qsort(p->mbx, p->n_mbx, sizeof(*p->mbx), mbx_order_cmp);
	p->cfg->mailboxes = xcalloc(p->n_mbx, sizeof(char *));
	for (size_t i = 0; i < p->n_mbx; i++) {
		if (p->mbx[i].smtp != NULL)
			p->cfg->mailboxes[kept++] = p->mbx[i].smtp;
	}
	p->cfg->n_mailboxes = kept;
	free(p->mbx);
	p->mbx = NULL;
	p->n_mbx = 0;
}

/* -- timing, store, output ----------------------------------------------------------------- */

static int el_window(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"past", "ahead", NULL};

	check_attrs(p, n, known);
	return get_nums(p, n);
}

static int el_sync(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"debounce",
	                                    "safety_refresh",
	                                    "pull_interval",
	                                    "stream_timeout",
	                                    "stream_watchdog",
	                                    "concurrency",
	                                    NULL};

	check_attrs(p, n, known);
	return get_nums(p, n);
}

static int el_store(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"path", NULL};

	check_attrs(p, n, known);
	return get_path(p, n, "path", &p->cfg->store_path);
}

static int el_output(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"path", NULL};
	const char *v = attr(p, n, "path");

	check_attrs(p, n, known);
	if (v != NULL && strcmp(v, "-") == 0) {
		free(p->cfg->output_path);
		p->cfg->output_path = NULL;
		return 0;
	}
	return get_path(p, n, "path", &p->cfg->output_path);
}

/* -- api ----------------------------------------------------------------------------------- */

/* listen="HOST:PORT": a numeric IPv4 address or a bracketed IPv6 one, and a port 0..65535. */
static int get_listen(struct parser *p, xmlNode *n)
{
	static const char accepted[] =
		"HOST:PORT with a numeric address, e.g. 127.0.0.1:8745 or [::1]:8745 (port 0: any "
		"free port)";
	const char *v = attr(p, n, "listen");
	const char *colon, *host;
	size_t host_len;
	char *end;
	unsigned long port;
	unsigned char addr[16];
	char buf[64];

	if (v == NULL)
		return 0;
	colon = strrchr(v, ':');
	if (colon == NULL || colon == v || colon[1] == '\0')
		return fail_attr(p, n, "listen", v, "not accepted; accepted: %s", accepted);
	host = v;
	host_len = (size_t)(colon - v);
	if (host[0] == '[') {
		if (host_len < 3 || host[host_len - 1] != ']')
			return fail_attr(p, n, "listen", v, "not accepted; accepted: %s", accepted);
		host++;
		host_len -= 2;
	}
	if (host_len >= sizeof(buf))
		return fail_attr(p, n, "listen", v, "not accepted; accepted: %s", accepted);
	memcpy(buf, host, host_len);
	buf[host_len] = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1)
		return fail_attr(p, n, "listen", v, "not accepted; accepted: %s", accepted);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || port > 65535 || !isdigit((unsigned char)colon[1]))
		return fail_attr(p, n, "listen", v, "not accepted; accepted: %s", accepted);
	free(p->cfg->api_host);
	p->cfg->api_host = xstrdup(buf);
	p->cfg->api_port = (unsigned)port;
	return 0;
}

static int el_api(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"enabled",   "listen",     "token_file",
	                                    "token_env", "token",      "tls_cert",
	                                    "tls_key",   "ready_live", NULL};
	int rc;

	check_attrs(p, n, known);
	p->api = n;
	rc = get_bool(p, n, "enabled", &p->cfg->api_enabled);
	if (rc == 0)
		rc = get_listen(p, n);
	if (rc == 0)
		rc = get_secret(p, n, "token", "token_file", "token_env", &p->api_token_src);
	if (rc == 0)
		rc = get_path(p, n, "tls_cert", &p->cfg->api_tls_cert);
	if (rc == 0)
		rc = get_path(p, n, "tls_key", &p->cfg->api_tls_key);
	if (rc == 0 && (p->cfg->api_tls_cert == NULL) != (p->cfg->api_tls_key == NULL))
		rc = fail(p, n, "give both tls_cert and tls_key, or neither");
	if (rc == 0)
		rc = get_nums(p, n);
	return rc;
}

/* -- webhooks ------------------------------------------------------------------------------ */

/* <webhook url="..." secret_file="..." | secret_env="..." retry_for="24h" ca_file="..."/> */
static int el_webhook(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"url",       "secret_file", "secret_env", "secret",
	                                    "retry_for", "ca_file",     NULL};
	struct cfg *c = p->cfg;
	struct cfg_webhook *h;
	const char *v;
	const char *why = NULL;
	char lo[32];
	char hi[32];
	int rc;

	check_attrs(p, n, known);
	if (c->n_webhooks >= CFG_MAX_WEBHOOKS)
		return fail(p, n, "more than %u webhooks; give at most %u", CFG_MAX_WEBHOOKS,
		            CFG_MAX_WEBHOOKS);
	if (attr(p, n, "url") == NULL)
		return fail(p, n,
		            "missing attribute url; accepted: https://host/path (or http://)");
	c->webhooks = xreallocarray(c->webhooks, c->n_webhooks + 1, sizeof(*c->webhooks));
	h = &c->webhooks[c->n_webhooks];
	*h = (struct cfg_webhook){.retry_for_usec = WEBHOOK_RETRY_FOR_DEFAULT};
	p->hook_nodes[c->n_webhooks] = n;
	p->hook_secret_src[c->n_webhooks] = (struct secret_src){0};
	c->n_webhooks++;
	rc = get_url(p, n, "url", &h->url);
	if (rc != 0)
		return rc;
	/* The store keeps one cursor per URL: two targets with one URL would share it. */
	for (size_t i = 0; i + 1 < c->n_webhooks; i++) {
		if (strcmp(c->webhooks[i].url, h->url) == 0)
			return fail_attr(p, n, "url", h->url, "given twice (first at line %ld)",
			                 line_of(p->hook_nodes[i]));
	}
	rc = get_secret(p, n, "secret", "secret_file", "secret_env",
	                &p->hook_secret_src[c->n_webhooks - 1]);
	if (rc == 0)
		rc = get_path(p, n, "ca_file", &h->ca_file);
	if (rc != 0)
		return rc;
	v = attr(p, n, "retry_for");
	if (v == NULL)
		return 0;
	if (parse_duration(v, &h->retry_for_usec, &why) != 0)
		return fail_attr(p, n, "retry_for", v, "%s", why);
	format_duration(WEBHOOK_RETRY_FOR_MIN, lo, sizeof(lo));
	format_duration(WEBHOOK_RETRY_FOR_MAX, hi, sizeof(hi));
	if (h->retry_for_usec < WEBHOOK_RETRY_FOR_MIN || h->retry_for_usec > WEBHOOK_RETRY_FOR_MAX)
		return fail_attr(p, n, "retry_for", v, "out of range; accepted: %s to %s", lo, hi);
	return 0;
}

static int el_webhooks(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {NULL};
	static const struct child kids[] = {
		{"webhook", el_webhook, true},
	};

	check_attrs(p, n, known);
	return WALK(p, n, kids);
}

/* Reads each webhook's secret, after the whole document was checked. */
static int read_webhook_secrets(struct parser *p)
{
	for (size_t i = 0; i < p->cfg->n_webhooks && !p->offline; i++) {
		const struct secret_src *src = &p->hook_secret_src[i];
		char **dst = &p->cfg->webhooks[i].secret;
		int rc;

		if (src->attr == NULL)
			continue;
		rc = src->is_file
		             ? read_secret_file(p, p->hook_nodes[i], src->attr, src->value, dst)
		             : read_secret_env(p, p->hook_nodes[i], src->attr, src->value, dst);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* -- presence ------------------------------------------------------------------------------ */

/* <tentative>, <busy>, <oof>, <working_elsewhere>: count, profile, forward. */
static int presence_value(struct parser *p, xmlNode *n, enum cal_fb v)
{
	static const char *const known[] = {"count", "profile", "forward", NULL};
	struct cfg_profile *prof = &p->cfg->presence.state[v];
	bool count = (p->cfg->presence.count & (1u << v)) != 0;
	int rc;

	check_attrs(p, n, known);
	rc = get_bool(p, n, "count", &count);
	if (rc == 0)
		rc = get_text(p, n, "profile", true, &prof->name);
	if (rc == 0)
		rc = get_text(p, n, "forward", true, &prof->forward);
	if (rc != 0)
		return rc;
	if (count)
		p->cfg->presence.count |= 1u << v;
	else
		p->cfg->presence.count &= ~(1u << v);
	return 0;
}

static int el_tentative(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_TENTATIVE);
}

static int el_busy(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_BUSY);
}

static int el_oof(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_OOF);
}

static int el_working_elsewhere(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_WORKING_ELSEWHERE);
}

static int el_free(struct parser *p, xmlNode *n)
{
	return fail(p, n,
	            "Free appointments never count for presence; accepted here: "
	            "<tentative>, <busy>, <oof>, <working_elsewhere>, <category>");
}

static int el_category(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"name", "forward", NULL};
	struct cfg_presence *pr = &p->cfg->presence;
	struct cfg_profile prof = {0};
	int rc;

	check_attrs(p, n, known);
	rc = get_text(p, n, "name", false, &prof.name);
	if (rc == 0 && prof.name == NULL)
		rc = fail(p, n, "missing attribute name (the Outlook category and profile name)");
	for (size_t i = 0; rc == 0 && i < pr->n_categories; i++) {
		if (strcmp(pr->categories[i].name, prof.name) == 0)
			rc = fail_attr(p, n, "name", prof.name, "category given twice");
	}
	if (rc == 0 && pr->n_categories >= CFG_MAX_CATEGORIES)
		rc = fail(p, n, "more than %u categories", CFG_MAX_CATEGORIES);
	if (rc == 0)
		rc = get_text(p, n, "forward", true, &prof.forward);
	if (rc != 0) {
		free(prof.name);
		free(prof.forward);
		return rc;
	}
	pr->categories = xreallocarray(pr->categories, pr->n_categories + 1, sizeof(prof));
	pr->categories[pr->n_categories++] = prof;
	return 0;
}

static int el_presence(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"all_day", NULL};
	static const char *const all_day[] = {"count", "oof-only", "ignore", NULL};
	static const struct child kids[] = {
		{"tentative", el_tentative, false},
		{"busy", el_busy, false},
		{"oof", el_oof, false},
		{"working_elsewhere", el_working_elsewhere, false},
		{"free", el_free, false},
		{"category", el_category, true},
	};
	int ad = (int)p->cfg->presence.all_day;
	int rc;

	check_attrs(p, n, known);
	rc = get_enum(p, n, "all_day", all_day, "count, oof-only, ignore", &ad);
	if (rc != 0)
		return rc;
	p->cfg->presence.all_day = (enum cfg_all_day)ad;
	return WALK(p, n, kids);
}

/* -- the document -------------------------------------------------------------------------- */

static int el_calsync(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {NULL};
	static const struct child kids[] = {
		{"api", el_api, false},
		{"ews", el_ews, false},
		{"autodiscover", el_autodiscover, false},
		{"account", el_account, false},
		{"tls", el_tls, false},
		{"mailboxes", el_mailboxes, false},
		{"window", el_window, false},
		{"sync", el_sync, false},
		{"store", el_store, false},
		{"presence", el_presence, false},
		{"output", el_output, false},
		{"webhooks", el_webhooks, false},
	};

	check_attrs(p, n, known);
	return WALK(p, n, kids);
}

static int el_calendar_sync(struct parser *p, xmlNode *n)
{
	static const struct child kids[] = {
		{"exchange", el_exchange, false},
		{"calsync", el_calsync, false},
	};

	return WALK(p, n, kids);
}

/* Checks that need the whole document: which secrets the authentication method needs. */
static int validate(struct parser *p)
{
	struct cfg *c = p->cfg;
	const char *auth = ews_auth_name(c->auth);
	int rc;

	if (p->ews_url_set && p->autodiscover_line != 0)
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <autodiscover>: give either <ews url> or <autodiscover>, "
		               "not both",
		               p->name, p->autodiscover_line);
	if (p->api != NULL && p->api_token_src.attr != NULL && !p->offline) {
		rc = p->api_token_src.is_file
		             ? read_secret_file(p, p->api, p->api_token_src.attr,
		                                p->api_token_src.value, &c->api_token)
		             : read_secret_env(p, p->api, p->api_token_src.attr,
		                               p->api_token_src.value, &c->api_token);
		if (rc != 0)
			return rc;
	}
	rc = read_webhook_secrets(p);
	if (rc != 0)
		return rc;
	if (p->account == NULL)
		return 0;
	if ((c->auth == EWS_AUTH_BASIC || c->auth == EWS_AUTH_NTLM) &&
	    (c->user == NULL || !(p->password_src.attr != NULL)))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"%s\">: needs user and one of password_file "
		               "and password_env",
		               p->name, line_of(p->account), auth);
	if (c->auth == EWS_AUTH_BEARER && !(p->token_src.attr != NULL))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"bearer\">: needs one of token_file and "
		               "token_env",
		               p->name, line_of(p->account));
	if (c->auth != EWS_AUTH_BEARER && (p->token_src.attr != NULL))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"%s\">: a token is only used with "
		               "auth=\"bearer\"",
		               p->name, line_of(p->account), auth);
	if ((c->auth == EWS_AUTH_BEARER || c->auth == EWS_AUTH_NONE) &&
	    (p->password_src.attr != NULL))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"%s\">: a password is not used with this "
		               "authentication",
		               p->name, line_of(p->account), auth);
	rc = read_secret(p, &p->password_src, &c->password);
	if (rc == 0)
		rc = read_secret(p, &p->token_src, &c->token);
	return rc;
}

struct doctype {
	bool seen;
	long line;
};

static void sax_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct doctype *d = ctxt->_private;

	d->seen = true;
	d->line = ctxt->input != NULL ? ctxt->input->line : 0;
	xmlStopParser(ctxt);
}

#define PARSE_OPTIONS                                                                    \
	(XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES | XML_PARSE_NOERROR | \
	 XML_PARSE_NOWARNING)

static int read_doc(struct parser *p, const char *xml, size_t len, xmlDoc **out_doc)
{
	struct doctype d = {0};
	xmlParserCtxtPtr ctxt;
	xmlDoc *doc;
	int rc = 0;

	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		fprintf(stderr, "calsync: out of memory (libxml2 parser context)\n");
		abort();
	}
	ctxt->_private = &d;
	ctxt->sax->internalSubset = sax_subset;
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL, PARSE_OPTIONS);
	if (d.seen) {
		rc = err_set(p->err, -EINVAL,
		             "%s:%ld: <!DOCTYPE>: a DTD is not accepted; remove the DOCTYPE line",
		             p->name, d.line);
	} else if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[160];
		size_t n;

		(void)snprintf(msg, sizeof(msg), "%s",
		               e != NULL && e->message != NULL ? e->message : "empty document");
		n = strlen(msg);
		while (n > 0 && space(msg[n - 1]))
			msg[--n] = '\0';
		rc = err_set(p->err, -EINVAL, "%s:%d: not well-formed XML: %s", p->name,
		             e != NULL && e->line > 0 ? e->line : 1, msg);
	}
	if (rc != 0)
		xmlFreeDoc(doc);
	else
		*out_doc = doc;
	xmlFreeParserCtxt(ctxt);
	return rc;
}

int cfg_parse(const char *xml, size_t len, const struct cfg_parse_opts *opts, struct cfg **out_cfg,
              struct cfg_warnings *warnings, struct err *err)
{
	static const struct child top[] = {{"calendar_sync", el_calendar_sync, false}};
	struct parser p = {
		.name = opts != NULL && opts->name != NULL ? opts->name : "(memory)",
		.base_dir = opts != NULL && opts->base_dir != NULL ? xstrdup(opts->base_dir) : NULL,
		.offline = opts != NULL && opts->offline,
		.warn = warnings,
		.err = err,
	};
	xmlDoc *doc = NULL;
	xmlNode *root;
	int rc;

	if (len > CFG_MAX_FILE) {
		rc = err_set(err, -EMSGSIZE, "%s: larger than %u bytes", p.name, CFG_MAX_FILE);
		goto out;
	}
	p.cfg = xcalloc(1, sizeof(*p.cfg));
	p.cfg->path = xstrdup(p.name);
	set_defaults(p.cfg);
	rc = read_doc(&p, xml, len, &doc);
	if (rc != 0)
		goto out;
	root = xmlDocGetRootElement(doc);
	if (strcmp(name_of(root), "configuration") != 0) {
		rc = fail(&p, root, "wrong root element; accepted: <configuration>");
		goto out;
	}
	rc = walk(&p, root, top, 1);
	if (rc == 0)
		rc = validate(&p);
	if (rc == 0)
		finish_mailboxes(&p);
out:
	for (size_t i = 0; i < p.n_mbx; i++)
		free(p.mbx[i].smtp);
	free(p.mbx);
	free(p.mbx_file);
	for (size_t i = 0; i < p.n_tmp; i++)
		xmlFree(p.tmp[i]);
	free(p.tmp);
	free(p.base_dir);
	xmlFreeDoc(doc);
	if (rc != 0) {
		cfg_free(p.cfg);
		return rc;
	}
	*out_cfg = p.cfg;
	return 0;
}

int cfg_load(const char *path, struct cfg **out_cfg, struct cfg_warnings *warnings, struct err *err)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc = read_whole(path, CFG_MAX_FILE, &data, &len, NULL);

	if (rc != 0)
		return err_set(err, rc, "%s: cannot read: %s", path, read_problem(rc));
	/* Relative paths inside the file start at the file's own directory. */
	if (slash == NULL)
		dir = xstrdup(".");
	else
		dir = xmemdup(path, slash == path ? 1 : (size_t)(slash - path));
	rc = cfg_parse(data, len, &(struct cfg_parse_opts){.name = path, .base_dir = dir}, out_cfg,
	               warnings, err);
	free(data);
	free(dir);
	return rc;
}

char *cfg_autodiscover_url(const struct cfg *cfg, const char *smtp)
{
	const char *domain = cfg->autodiscover_domain;
	size_t n;
	char *url;

	if (cfg->autodiscover_url != NULL)
		return xstrdup(cfg->autodiscover_url);
	if (domain == NULL && cfg->user != NULL && strchr(cfg->user, '@') != NULL)
		domain = strchr(cfg->user, '@') + 1;
	if (domain == NULL && smtp != NULL && strchr(smtp, '@') != NULL)
		domain = strchr(smtp, '@') + 1;
	if (domain == NULL || *domain == '\0')
		return NULL;
	n = strlen(domain) + sizeof("https://autodiscover./autodiscover/autodiscover.svc");
	url = xmalloc(n);
	snprintf(url, n, "https://autodiscover.%s/autodiscover/autodiscover.svc", domain);
	return url;
}

const char *cfg_address_problem(const char *smtp)
{
	return address_problem(smtp, strlen(smtp));
}

void cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->ews_url);
	free(cfg->autodiscover_url);
	free(cfg->autodiscover_domain);
	free(cfg->server_version);
	free(cfg->user);
	wipe_free(cfg->password);
	wipe_free(cfg->token);
	free(cfg->ca_file);
	for (size_t i = 0; i < cfg->n_mailboxes; i++)
		free(cfg->mailboxes[i]);
	free(cfg->mailboxes);
	free(cfg->store_path);
	free(cfg->output_path);
	free(cfg->api_host);
	wipe_free(cfg->api_token);
	free(cfg->api_tls_cert);
	free(cfg->api_tls_key);
	for (size_t i = 0; i < cfg->n_webhooks; i++) {
		free(cfg->webhooks[i].url);
		wipe_free(cfg->webhooks[i].secret);
		free(cfg->webhooks[i].ca_file);
	}
	free(cfg->webhooks);
	for (size_t v = 0; v <= CAL_FB_NO_DATA; v++) {
		free(cfg->presence.state[v].name);
		free(cfg->presence.state[v].forward);
	}
	for (size_t i = 0; i < cfg->presence.n_categories; i++) {
		free(cfg->presence.categories[i].name);
		free(cfg->presence.categories[i].forward);
	}
	free(cfg->presence.categories);
	free(cfg);
}

void cfg_warnings_clear(struct cfg_warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->lines[i]);
	free(w->lines);
	*w = (struct cfg_warnings){0};
}

const char *cfg_notify_name(enum cfg_notify n)
{
	return n == CFG_NOTIFY_PULL ? "EwsPull" : "EwsStream";
}
