/* SPDX-License-Identifier: MIT */
/*
 * output.c: presence changes as JSON lines, the file sink. Each line is the change's object
 * (cal/change.h) dumped compact, keys in their order, UTF-8 kept as UTF-8, and handed to write(2)
 * whole. A write that fails after part of a line went out leaves that part in the file; the next
 * line then starts with a newline, so the damage stays one unparsable line and never spreads into
 * the next one.
 */
#include "sync/output.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/change.h"

struct sync_output {
	int fd;
	bool is_stdout;
	char *path;   /* NULL for standard output */
	bool partial; /* the last line went out only in part: start the next on a fresh line */
};

static int open_file(const char *path, int *out_fd, struct err *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0) {
		int e = errno;

		return err_set(err, -e, "output '%s': cannot open: %s", path, strerror(e));
	}
	*out_fd = fd;
	return 0;
}

int output_open(const char *path, struct sync_output **out, struct err *err)
{
	struct sync_output *o;
	int fd = STDOUT_FILENO;
	bool is_stdout = path == NULL || strcmp(path, "-") == 0;

	if (!is_stdout) {
		int rc = open_file(path, &fd, err);

		if (rc < 0)
			return rc;
	}
	o = xcalloc(1, sizeof(*o));
	o->fd = fd;
	o->is_stdout = is_stdout;
	o->path = is_stdout ? NULL : xstrdup(path);
	*out = o;
	return 0;
}

/* The line, with its newline (and a leading one after a partial line). Owned. */
static int build_line(const struct sync_output *o, const struct cal_change *c, char **out_line,
                      size_t *out_len, struct err *err)
{
	json_t *j = NULL;
	char *text;
	char *line;
	size_t len;
	size_t lead = o->partial ? 1 : 0;
	int rc = cal_change_json(c, &j, err);

	if (rc != 0)
		return rc;
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return err_set(err, -ENOMEM, "output: change %lld: cannot serialize",
		               (long long)c->id);
	len = strlen(text);
	line = xmalloc(lead + len + 1);
	if (lead > 0)
		line[0] = '\n';
	memcpy(line + lead, text, len);
	line[lead + len] = '\n';
	free(text);
	*out_line = line;
	*out_len = lead + len + 1;
	return 0;
}

/* Writes all len bytes, retrying after EINTR and after a short write; *out_done says how many
 * went out. 0, or a negative errno (-EIO for a write that wrote nothing and set no error). */
static int write_all(int fd, const char *p, size_t len, size_t *out_done)
{
	size_t done = 0;
	int rc = 0;

	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		if (w == 0) {
			rc = -EIO;
			break;
		}
		done += (size_t)w;
	}
	*out_done = done;
	return rc;
}

int output_write(struct sync_output *o, const struct cal_change *c, struct err *err)
{
	char *line = NULL;
	size_t len = 0;
	size_t done = 0;
	size_t lead;
	int rc;

	assert(o != NULL && c != NULL);
	rc = build_line(o, c, &line, &len, err);
	if (rc != 0)
		return rc;
	lead = o->partial ? 1 : 0;
	rc = write_all(o->fd, line, len, &done);
	free(line);
	/* The leading newline (if any) ended the old partial line once it went out; the new line
	 * is partial when some but not all of it did. */
	if (done >= lead)
		o->partial = done > lead && done < len;
	if (rc != 0 && o->is_stdout)
		return err_set(err, rc,
		               "output to standard output: change %lld: write failed after %zu of "
		               "%zu bytes: %s",
		               (long long)c->id, done, len, strerror(-rc));
	if (rc != 0)
		return err_set(err, rc,
		               "output '%s': change %lld: write failed after %zu of %zu bytes: %s",
		               o->path, (long long)c->id, done, len, strerror(-rc));
	return 0;
}

int output_reopen(struct sync_output *o, struct err *err)
{
	struct stat old_st;
	struct stat new_st;
	bool same_file;
	int fd;
	int rc;

	assert(o != NULL);
	if (o->is_stdout)
		return 0;
	rc = open_file(o->path, &fd, err);
	if (rc < 0)
		return rc;
	/* Reopening the file that is still in place (no rotation) keeps a pending partial line. */
	same_file = fstat(o->fd, &old_st) == 0 && fstat(fd, &new_st) == 0 &&
	            old_st.st_dev == new_st.st_dev && old_st.st_ino == new_st.st_ino;
	(void)close(o->fd);
	o->fd = fd;
	if (!same_file)
		o->partial = false;
	return 0;
}

void output_close(struct sync_output *o)
{
	if (o == NULL)
		return;
	if (!o->is_stdout)
		(void)close(o->fd);
	free(o->path);
	free(o);
}
