/* SPDX-License-Identifier: MIT */
/*
 * config-int.h: what the files of the configuration parser share, and nothing else includes.
 * The public interface is config.h; the overview is atop config.c. The files:
 *
 *   config.c           cfg_load/cfg_parse: the bounded file read, the libxml2 parse (no DTD),
 *                      the document's walk, the checks across sections, cfg_free
 *   config-util.c      warnings and errors, attributes (text, paths, URLs, booleans, names),
 *                      durations and numbers, the walk of an element's children
 *   config-defaults.c  the one table of numeric settings with their defaults and ranges, and
 *                      every other default
 *   config-secret.c    passwords, tokens and webhook secrets from files or the environment
 *   config-sync.c      how changes are followed: <exchange><events><advise>, <window>, <sync>,
 *                      and where they go: <store>, <output>
 *   config-ews.c       the server: <ews>, <autodiscover>, <account> with its authentication,
 *                      <tls>
 *   config-mailbox.c   <mailboxes>, mailbox files, addresses, duplicates
 *   config-presence.c  <presence>: counted values, profiles, categories
 *   config-api.c       <api>
 *   config-webhook.c   <webhooks>
 *
 * An element function (element_fn) reads one element into p->cfg and returns 0 or -EINVAL with
 * p->err naming file:line and the element (cfgp_fail, cfgp_fail_attr). Internal names carry the
 * prefix cfgp_ (cfg_ is the module's public API); the node helpers below are static inline and
 * keep short names.
 */
#pragma once

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "base/compat.h"
#include "config/config.h"

/* -- durations, and the defaults that are not in the table ---------------------------------- */

#define USEC   INT64_C(1000000)
#define MINUTE (60 * USEC)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

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

/* -- the parser state ---------------------------------------------------------------------- */

/* One mailbox address and where it was listed, until duplicates are removed. */
struct mbx {
	char *smtp;
	enum cfg_backend backend;
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
	xmlNode *graph; /* NULL: no <graph> */
	struct secret_src graph_secret_src;
	long autodiscover_line;
	bool ews_url_set;
};

static inline long line_of(const xmlNode *n)
{
	return xmlGetLineNo(n);
}

static inline const char *name_of(const xmlNode *n)
{
	return (const char *)n->name;
}

static inline bool ascii_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static inline bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* -- config-util.c: warnings, errors, attributes, numbers, children ------------------------ */

/* Adds a warning line to p->warn (when not NULL), or counts it as dropped past the cap. */
void cfgp_warn(struct parser *p, const char *fmt, ...) ATTR_PRINTF(2, 3);

/* "file:line: <elem>: why"; returns -EINVAL. */
int cfgp_fail(struct parser *p, const xmlNode *n, const char *fmt, ...) ATTR_PRINTF(3, 4);

/* "file:line: <elem attr="value">: why"; the value is cut at 60 bytes. Returns -EINVAL. */
int cfgp_fail_attr(struct parser *p, const xmlNode *n, const char *attr, const char *value,
                   const char *fmt, ...) ATTR_PRINTF(5, 6);

/* Warns about every attribute of n that is not in known (NULL-terminated). */
void cfgp_check_attrs(struct parser *p, const xmlNode *n, const char *const *known);

/* The value of attribute name, borrowed until the parse ends, or NULL when absent. */
const char *cfgp_attr(struct parser *p, xmlNode *n, const char *name);

/* 1..CFG_MAX_STRING bytes without control characters (or empty when allowed). */
int cfgp_check_text(struct parser *p, xmlNode *n, const char *a, const char *v, bool empty_ok);

/* Copies a text attribute, when present, into *dst (replacing the default; "" gives NULL). */
int cfgp_get_text(struct parser *p, xmlNode *n, const char *a, bool empty_ok, char **dst);

/* path, or base_dir/path when it is relative and there is a base_dir; owned. */
char *cfgp_resolve(const struct parser *p, const char *path);

/* A path attribute, when present, resolved into *dst (replacing the default). */
int cfgp_get_path(struct parser *p, xmlNode *n, const char *a, char **dst);

/* An http(s) URL without spaces, when present, into *dst. */
int cfgp_get_url(struct parser *p, xmlNode *n, const char *a, char **dst);

/* true or false (any case), when present, into *dst. */
int cfgp_get_bool(struct parser *p, xmlNode *n, const char *a, bool *dst);

/* A value from names (NULL-terminated), any case; *dst is its index. accepted is for the
 * message. */
int cfgp_get_enum(struct parser *p, xmlNode *n, const char *a, const char *const *names,
                  const char *accepted, int *dst);

/* Writes usec in its largest whole unit, e.g. "30min", "7d", "0s". */
void cfgp_format_duration(int64_t usec, char *out, size_t size);

/*
 * "<digits><unit>" exactly: 1 to 9 digits, a unit of ms, s, min, h or d, nothing else (no sign,
 * space, fraction or bare number). 0 and *out_usec, -EINVAL with why, or -ERANGE with why when
 * the microseconds do not fit in int64_t (from 106751992d on: no setting allows that much).
 */
int cfgp_parse_duration(const char *v, int64_t *out_usec, const char **why);

/* Reads numeric setting s of element n, when present, into its field of p->cfg. */
int cfgp_get_num(struct parser *p, xmlNode *n, const struct num_setting *s);

typedef int element_fn(struct parser *p, xmlNode *n);

struct child {
	const char *name;
	element_fn *fn;
	bool repeat; /* may appear more than once */
};

#define MAX_CHILDREN 16

/* Calls each known child element's function in document order; warns about unknown ones and
 * refuses a repeated one. Text and comments are ignored. */
int cfgp_walk(struct parser *p, xmlNode *parent, const struct child *kids, size_t n_kids);

#define WALK(p, n, kids) cfgp_walk(p, n, kids, sizeof(kids) / sizeof(kids[0]))

/* -- config.c: files ------------------------------------------------------------------------ */

/*
 * Reads the whole regular file at path, at most max bytes, into an owned buffer with a NUL
 * after the data. 0, or a negative errno: from open() or read(), -EINVAL when it is not a
 * regular file, -EMSGSIZE when it is larger than max. out_mode (may be NULL) gets its mode.
 */
int cfgp_read_whole(const char *path, size_t max, char **out_data, size_t *out_len,
                    mode_t *out_mode);

/* Why cfgp_read_whole() failed, for a message. */
const char *cfgp_read_problem(int rc);

/* -- config-defaults.c ---------------------------------------------------------------------- */

/* Every default into a zeroed cfg. */
void cfgp_set_defaults(struct cfg *cfg);

/* Reads every numeric attribute of element n from the table. */
int cfgp_get_nums(struct parser *p, xmlNode *n);

/* -- config-secret.c ------------------------------------------------------------------------ */

/* Wipes and frees s; NULL-safe. */
void cfgp_wipe_free(char *s);

/* Reads a secret from a file: at most CFG_MAX_SECRET bytes, one trailing newline dropped, not
 * empty, no other line break or NUL. Messages name element n and attribute a. */
/* Reads a PEM file (path already resolved; at most CFG_MAX_PEM bytes, with a -----BEGIN line)
 * into *dst; warns when a key is readable by everyone. */
int cfgp_read_pem(struct parser *p, xmlNode *n, const char *a, const char *path, char **dst);
int cfgp_read_secret_file(struct parser *p, xmlNode *n, const char *a, const char *path,
                          char **dst);

/* The same from environment variable var. */
int cfgp_read_secret_env(struct parser *p, xmlNode *n, const char *a, const char *var, char **dst);

/* what_file / what_env (e.g. password_file, password_env): at most one of them, and never the
 * inline form (attribute what). Records the source in *src; nothing is read yet. */
int cfgp_get_secret(struct parser *p, xmlNode *n, const char *what, const char *file_attr,
                    const char *env_attr, struct secret_src *src);

/* Reads an <account> secret from its source into *dst; nothing when none is given or offline. */
int cfgp_read_secret(struct parser *p, const struct secret_src *src, char **dst);

/* -- the sections: each element function, and the checks after the walk -------------------- */

int cfgp_el_exchange(struct parser *p, xmlNode *n); /* config-sync.c */
int cfgp_el_window(struct parser *p, xmlNode *n);
int cfgp_el_sync(struct parser *p, xmlNode *n);
int cfgp_el_store(struct parser *p, xmlNode *n);
int cfgp_el_output(struct parser *p, xmlNode *n);

int cfgp_el_ews(struct parser *p, xmlNode *n); /* config-ews.c */
int cfgp_el_autodiscover(struct parser *p, xmlNode *n);
int cfgp_el_account(struct parser *p, xmlNode *n);
int cfgp_el_tls(struct parser *p, xmlNode *n);
/* Which secrets the authentication method needs; then reads them. */
int cfgp_account_finish(struct parser *p);

int cfgp_el_mailboxes(struct parser *p, xmlNode *n); /* config-mailbox.c */
/* Drops later duplicates (compared without case) with a warning, keeping the list order, and
 * moves the list into p->cfg. */
void cfgp_mailboxes_finish(struct parser *p);

int cfgp_el_presence(struct parser *p, xmlNode *n); /* config-presence.c */

int cfgp_el_api(struct parser *p, xmlNode *n); /* config-api.c */
/* Reads the API token, after the whole document was checked. */
int cfgp_api_finish(struct parser *p);

int cfgp_el_graph(struct parser *p, xmlNode *n); /* config-graph.c */
/* Reads <graph>'s secret, certificate and key, after the whole document was checked. */
int cfgp_graph_finish(struct parser *p);
void cfgp_graph_free(struct cfg_graph *g);

/* listen="HOST:PORT" (attribute a) with a numeric address, when present (config-api.c). */
int cfgp_get_listen(struct parser *p, xmlNode *n, const char *a, char **host, unsigned *port);

int cfgp_el_webhooks(struct parser *p, xmlNode *n); /* config-webhook.c */
/* Reads each webhook's secret, after the whole document was checked. */
int cfgp_webhooks_finish(struct parser *p);
