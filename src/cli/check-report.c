/* SPDX-License-Identifier: MIT */
/*
 * check-report.c: the findings of `calsync check` and their one printer. A step (struct step)
 * is a status, a detail line and a fix (sentences and commands); for a person each is printed
 * as it is added, with a fix printed once however many mailboxes share it; with --json the
 * whole run is one document at the end. Also the text helpers every step uses, and progress on
 * stderr.
 */
#include "cli/check-int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/xalloc.h"

/* From this many mailboxes on, progress goes to stderr. */
#define CHECK_PROGRESS_MIN 10u

/* Plain progress lines (stderr not a terminal): about this many over the whole run. */
#define CHECK_PROGRESS_LINES 10u

static const char *const status_text[] = {"ok", "warn", "FAIL", "skip"};
static const char *const status_json[] = {"ok", "warn", "fail", "skip"};

/* ---- text ------------------------------------------------------------------------------------ */

ATTR_PRINTF(1, 0) char *check_vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *s;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return xstrdup("");
	s = xmalloc((size_t)n + 1);
	(void)vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

ATTR_PRINTF(1, 2) char *check_strf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = check_vfmt(fmt, ap);
	va_end(ap);
	return s;
}

/* Control characters (from a server's message, a file name) become spaces: one step is one
 * line, and nothing can move a terminal's cursor. */
void check_tame(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* s as a PowerShell single-quoted string: 'CONTOSO\svc', with ' doubled. Owned. */
char *check_ps_quote(const char *s)
{
	char *out = xmalloc(2 * strlen(s) + 3);
	size_t n = 0;

	out[n++] = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			out[n++] = '\'';
		out[n++] = *s;
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}

/* ---- steps and fixes ------------------------------------------------------------------------- */

static void fix_add(struct fix *f, bool command, char *text_take)
{
	f->lines = xreallocarray(f->lines, f->n + 1, sizeof(*f->lines));
	check_tame(text_take);
	f->lines[f->n++] = (struct fix_line){.command = command, .text = text_take};
}

ATTR_PRINTF(2, 3) void check_fix_say(struct fix *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fix_add(f, false, check_vfmt(fmt, ap));
	va_end(ap);
}

ATTR_PRINTF(2, 3) void check_fix_cmd(struct fix *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fix_add(f, true, check_vfmt(fmt, ap));
	va_end(ap);
}

void check_fix_clear(struct fix *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->lines[i].text);
	free(f->lines);
	f->lines = NULL;
	f->n = 0;
}

/* The fix as one text: sentences as they are, commands indented by two spaces. Owned. */
char *check_fix_text(const struct fix *f)
{
	struct buf b;

	buf_init(&b, SIZE_MAX / 4);
	for (size_t i = 0; i < f->n; i++) {
		if (i > 0)
			(void)buf_append(&b, "\n", 1, NULL);
		if (f->lines[i].command)
			(void)buf_append(&b, "  ", 2, NULL);
		(void)buf_append(&b, f->lines[i].text, strlen(f->lines[i].text), NULL);
	}
	return buf_take(&b);
}

static void progress_clear(struct check *c)
{
	if (c->progress_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		c->progress_shown = false;
	}
}

static void print_step(struct check *c, const struct step *s)
{
	char *key;
	bool seen = false;

	progress_clear(c);
	printf("%-5s %-14s %s%s%s\n", status_text[s->status], s->name,
	       s->mailbox != NULL ? s->mailbox : "", s->mailbox != NULL ? ": " : "", s->detail);
	if (s->fix.n > 0) {
		/* With many mailboxes failing alike, the same commands once are enough. */
		key = check_fix_text(&s->fix);
		for (size_t i = 0; i < c->n_printed_fixes && !seen; i++)
			seen = strcmp(c->printed_fixes[i], key) == 0;
		if (seen) {
			printf("      (fix: as above)\n");
			free(key);
		} else {
			c->printed_fixes = xreallocarray(c->printed_fixes, c->n_printed_fixes + 1,
			                                 sizeof(*c->printed_fixes));
			c->printed_fixes[c->n_printed_fixes++] = key;
			for (size_t i = 0; i < s->fix.n; i++)
				printf("%s%s\n", s->fix.lines[i].command ? "          " : "      ",
				       s->fix.lines[i].text);
		}
	}
	fflush(stdout);
}

/* Adds a step; takes f's lines (f is left empty; NULL for none). Printed at once for a person. */
ATTR_PRINTF(6, 7)

void check_step_add(struct check *c, const char *name, const char *mailbox, enum status st,
                    struct fix *f, const char *fmt, ...)
{
	struct step *s;
	va_list ap;

	c->steps = xreallocarray(c->steps, c->n_steps + 1, sizeof(*c->steps));
	s = &c->steps[c->n_steps++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL;
	s->status = st;
	va_start(ap, fmt);
	s->detail = check_vfmt(fmt, ap);
	va_end(ap);
	check_tame(s->detail);
	if (f != NULL) {
		s->fix = *f;
		memset(f, 0, sizeof(*f));
	}
	if (!c->json)
		print_step(c, s);
}

void check_skip(struct check *c, const char *name, const char *why)
{
	check_step_add(c, name, NULL, ST_SKIP, NULL, "not run: %s", why);
}

/* ---- progress -------------------------------------------------------------------------------- */

void check_progress(struct check *c, size_t done, const char *next)
{
	size_t n = c->n_mbx;
	size_t every = n / CHECK_PROGRESS_LINES > 0 ? n / CHECK_PROGRESS_LINES : 1;

	if (n < CHECK_PROGRESS_MIN)
		return;
	if (c->tty) {
		if (next != NULL) {
			fprintf(stderr, "\r\033[Kchecking mailbox %zu of %zu: %s", done + 1, n,
			        next);
			c->progress_shown = true;
		} else {
			progress_clear(c);
		}
		fflush(stderr);
	} else if (next == NULL && (done % every == 0 || done == n)) {
		fprintf(stderr, "calsync check: %zu of %zu mailboxes checked\n", done, n);
	}
}

/* ---- output ---------------------------------------------------------------------------------- */

static json_t *j_str(const char *s)
{
	json_t *j;
	char *copy;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	if (j != NULL)
		return j;
	/* Not UTF-8 (a file name in a config error): keep what is ASCII. */
	copy = xstrdup(s);
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j != NULL ? j : json_null();
}

static void count(const struct check *c, size_t out[4])
{
	memset(out, 0, 4 * sizeof(out[0]));
	for (size_t i = 0; i < c->n_steps; i++)
		out[c->steps[i].status]++;
}

static int print_json(const struct check *c, int status)
{
	json_t *root = json_object();
	json_t *counts = json_object();
	json_t *steps = json_array();
	size_t n[4];
	char *text;

	count(c, n);
	json_object_set_new(root, "config", j_str(c->cfg_path));
	json_object_set_new(root, "ok", json_boolean(status == 0));
	json_object_set_new(root, "exit_status", json_integer(status));
	for (int i = 0; i < 4; i++)
		json_object_set_new(counts, status_json[i], json_integer((json_int_t)n[i]));
	json_object_set_new(root, "counts", counts);
	for (size_t i = 0; i < c->n_steps; i++) {
		const struct step *s = &c->steps[i];
		json_t *o = json_object();
		json_t *cmds = json_array();

		json_object_set_new(o, "name", json_string(s->name));
		json_object_set_new(o, "mailbox", j_str(s->mailbox));
		json_object_set_new(o, "status", json_string(status_json[s->status]));
		json_object_set_new(o, "detail", j_str(s->detail));
		if (s->fix.n > 0) {
			char *t = check_fix_text(&s->fix);

			json_object_set_new(o, "fix", j_str(t));
			free(t);
		} else {
			json_object_set_new(o, "fix", json_null());
		}
		for (size_t k = 0; k < s->fix.n; k++)
			if (s->fix.lines[k].command)
				json_array_append_new(cmds, j_str(s->fix.lines[k].text));
		json_object_set_new(o, "commands", cmds);
		json_array_append_new(steps, o);
	}
	json_object_set_new(root, "steps", steps);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL) {
		fprintf(stderr, "calsync check: cannot encode the result as JSON\n");
		return EXIT_FAILURE;
	}
	printf("%s\n", text);
	free(text);
	return status;
}

int check_finish(struct check *c, int status)
{
	size_t n[4];

	progress_clear(c);
	if (c->json)
		return print_json(c, status);
	count(c, n);
	printf("\n%zu ok, %zu warn, %zu FAIL, %zu skipped: %s\n", n[ST_OK], n[ST_WARN], n[ST_FAIL],
	       n[ST_SKIP],
	       status == 0             ? (n[ST_WARN] > 0 ? "passed, with warnings" : "passed")
	       : status == EXIT_CONFIG ? "the configuration must be fixed first"
	                               : "failed");
	return status;
}

void check_report_clear(struct check *c)
{
	for (size_t i = 0; i < c->n_steps; i++) {
		free(c->steps[i].mailbox);
		free(c->steps[i].detail);
		check_fix_clear(&c->steps[i].fix);
	}
	free(c->steps);
	for (size_t i = 0; i < c->n_printed_fixes; i++)
		free(c->printed_fixes[i]);
	free(c->printed_fixes);
	c->steps = NULL;
	c->n_steps = 0;
	c->printed_fixes = NULL;
	c->n_printed_fixes = 0;
}
