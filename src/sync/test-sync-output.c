/* SPDX-License-Identifier: MIT */
/*
 * test-sync-output.c: the JSON-lines writer: the exact line, every field and every null, UTF-8
 * kept as is, escaping, refused strings and times, many lines in order, the file mode, reopening
 * after logrotate's rename and after a failed reopen, open errors that name the path, standard
 * output ("-" and NULL) with EPIPE, and the recovery after a line that went out only in part.
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */

#include "sync/output.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "cal/presence.h"
#include "harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* 2025-03-03T09:00:00Z */
#define T0 INT64_C(1740992400)

/* A fresh directory per test, emptied and removed afterwards. */
struct tmp {
	char dir[256];
	char path[300]; /* dir/presence.jsonl */
};

static void tmp_make(struct tmp *t)
{
	const char *base = getenv("TMPDIR");

	(void)snprintf(t->dir, sizeof(t->dir), "%s/test-sync-output-XXXXXX",
	               base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(t->dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	(void)snprintf(t->path, sizeof(t->path), "%s/presence.jsonl", t->dir);
}

static void tmp_remove(struct tmp *t)
{
	static const char *const names[] = {"presence.jsonl", "presence.jsonl.1", "sub", "file"};
	char p[320];

	for (size_t i = 0; i < N(names); i++) {
		(void)snprintf(p, sizeof(p), "%s/%s", t->dir, names[i]);
		if (unlink(p) != 0)
			(void)rmdir(p);
	}
	(void)rmdir(t->dir);
}

/* The whole file (NUL-terminated, owned), or NULL. */
static char *slurp(const char *path, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t len = 0;
	size_t cap = 0;
	size_t got;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap * 2 + 4096;
			data = xrealloc(data, cap + 1);
		}
		got = fread(data + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	data[len] = '\0';
	if (out_len != NULL)
		*out_len = len;
	return data;
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

/* A full change; the test changes what it needs. */
static struct cal_change change(int64_t id)
{
	return (struct cal_change){
		.id = id,
		.time_utc = T0 + 5,
		.user = "user00001@contoso.example",
		.state = "busy",
		.profile = "In a meeting",
		.forward = "+49301234567",
		.subject = "Standup",
		.since_utc = T0,
		.until_utc = T0 + 1800,
		.reason = "appointment-start",
	};
}

static struct sync_output *open_ok(const char *path)
{
	struct sync_output *o = NULL;
	struct err e = {0};
	int rc = output_open(path, &o, &e);

	if (rc != 0) {
		fprintf(stderr, "output_open: %d %s\n", rc, e.msg);
		abort();
	}
	return o;
}

static void write_ok(struct sync_output *o, const struct cal_change *c)
{
	struct err e = {0};
	int rc = output_write(o, c, &e);

	if (rc != 0)
		fprintf(stderr, "output_write: %d %s\n", rc, e.msg);
	CHECK_EQ(rc, 0);
}

/* Parses one line (without its newline) as a JSON object; NULL and a failure otherwise. */
static json_t *parse_line(const char *line, size_t len)
{
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL)
		harness_fail(__FILE__, __LINE__, "not JSON: %s (%.*s)", je.text, (int)len, line);
	else if (!json_is_object(j))
		harness_fail(__FILE__, __LINE__, "not an object: %.*s", (int)len, line);
	return j;
}

/* Checks that key holds a string equal to want, or JSON null when want is NULL. */
static void check_field(json_t *j, const char *key, const char *want)
{
	const json_t *v = json_object_get(j, key);

	if (v == NULL) {
		harness_fail(__FILE__, __LINE__, "key %s missing", key);
		return;
	}
	if (want == NULL) {
		if (!json_is_null(v))
			harness_fail(__FILE__, __LINE__, "key %s is not null", key);
		return;
	}
	CHECK(json_is_string(v));
	CHECK_STREQ(json_string_value(v), want);
}

/* Checks every field of line j against c. */
static void check_change(json_t *j, const struct cal_change *c)
{
	static const char *const keys[] = {"id",      "time",    "user",  "state", "profile",
	                                   "forward", "subject", "since", "until", "reason"};
	char t[ISO8601_FORMAT_SIZE];
	const char *key;
	size_t k = 0;
	json_t *v;

	/* Exactly these keys, in this order. */
	json_object_foreach(j, key, v)
	{
		if (k < N(keys))
			CHECK_STREQ(key, keys[k]);
		k++;
	}
	CHECK_EQ(k, N(keys));
	CHECK(json_is_integer(json_object_get(j, "id")));
	CHECK_EQ(json_integer_value(json_object_get(j, "id")), c->id);
	CHECK_EQ(iso8601_format(c->time_utc, t, NULL), 0);
	check_field(j, "time", t);
	check_field(j, "user", c->user);
	check_field(j, "state", c->state);
	check_field(j, "profile", c->profile);
	check_field(j, "forward", c->forward);
	check_field(j, "subject", c->subject);
	if (c->since_utc == PRESENCE_SINCE_ALWAYS) {
		check_field(j, "since", NULL);
	} else {
		CHECK_EQ(iso8601_format(c->since_utc, t, NULL), 0);
		check_field(j, "since", t);
	}
	if (c->until_utc == PRESENCE_NEVER) {
		check_field(j, "until", NULL);
	} else {
		CHECK_EQ(iso8601_format(c->until_utc, t, NULL), 0);
		check_field(j, "until", t);
	}
	check_field(j, "reason", c->reason);
}

/* Reads path and checks that it holds exactly the lines of c[0..n), each ending in '\n'. */
static void check_file(const char *path, const struct cal_change *c, size_t n)
{
	size_t len = 0;
	char *data = slurp(path, &len);
	const char *p = data;

	CHECK(data != NULL);
	if (data == NULL)
		return;
	CHECK_EQ(strlen(data), len); /* no NUL inside */
	CHECK_EQ(count_char(data, '\n'), n);
	CHECK(len == 0 || data[len - 1] == '\n');
	for (size_t i = 0; i < n && *p != '\0'; i++) {
		const char *nl = strchr(p, '\n');
		json_t *j;

		if (nl == NULL)
			break;
		j = parse_line(p, (size_t)(nl - p));
		if (j != NULL)
			check_change(j, &c[i]);
		json_decref(j);
		p = nl + 1;
	}
	free(data);
}

TEST(exact_line)
{
	struct tmp t;
	struct sync_output *o;
	struct cal_change c = change(7);
	char *data;

	tmp_make(&t);
	o = open_ok(t.path);
	write_ok(o, &c);
	output_close(o);
	data = slurp(t.path, NULL);
	CHECK_STREQ(data, "{\"id\":7,\"time\":\"2025-03-03T09:00:05Z\","
	                  "\"user\":\"user00001@contoso.example\",\"state\":\"busy\","
	                  "\"profile\":\"In a meeting\",\"forward\":\"+49301234567\","
	                  "\"subject\":\"Standup\",\"since\":\"2025-03-03T09:00:00Z\","
	                  "\"until\":\"2025-03-03T09:30:00Z\",\"reason\":\"appointment-start\"}\n");
	free(data);
	check_file(t.path, &c, 1);
	tmp_remove(&t);
}

TEST(nulls)
{
	struct tmp t;
	struct sync_output *o;
	struct cal_change c[3];
	char *data;

	/* Free since always, for ever: every optional field null. */
	c[0] = (struct cal_change){
		.id = 1,
		.time_utc = T0,
		.user = "a@contoso.example",
		.state = "free",
		.since_utc = PRESENCE_SINCE_ALWAYS,
		.until_utc = PRESENCE_NEVER,
		.reason = "initial",
	};
	/* Every string NULL. */
	c[1] = (struct cal_change){
		.id = 2,
		.time_utc = T0,
		.since_utc = PRESENCE_SINCE_ALWAYS,
		.until_utc = PRESENCE_NEVER,
	};
	/* Just inside the sentinels: real times; the epoch is a real time for "time". */
	c[2] = change(3);
	c[2].time_utc = 0;
	c[2].since_utc = 1;
	c[2].until_utc = ISO8601_MAX_UTC;
	tmp_make(&t);
	o = open_ok(t.path);
	for (size_t i = 0; i < N(c); i++)
		write_ok(o, &c[i]);
	output_close(o);
	check_file(t.path, c, N(c));
	data = slurp(t.path, NULL);
	CHECK(data != NULL && strstr(data, "\"profile\":null,\"forward\":null,\"subject\":null,"
	                                   "\"since\":null,\"until\":null,") != NULL);
	CHECK(data != NULL && strstr(data, "{\"id\":2,\"time\":\"2025-03-03T09:00:00Z\","
	                                   "\"user\":null,\"state\":null,") != NULL);
	CHECK(data != NULL && strstr(data, "\"time\":\"1970-01-01T00:00:00Z\"") != NULL);
	CHECK(data != NULL && strstr(data, "\"since\":\"1970-01-01T00:00:01Z\"") != NULL);
	CHECK(data != NULL && strstr(data, "\"until\":\"9999-12-31T23:59:59Z\"") != NULL);
	free(data);
	tmp_remove(&t);
}

TEST(utf8_stays_utf8)
{
	struct tmp t;
	struct sync_output *o;
	struct cal_change c = change(1);
	char *data;

	c.subject =
		"Kundentermin \303\234berlingen \342\200\224 \346\227\245\346\234\254 \360\237\232\200";
	c.profile = "Au\303\237er Haus";
	c.user = "j\xc3\xb6rg@contoso.example";
	tmp_make(&t);
	o = open_ok(t.path);
	write_ok(o, &c);
	output_close(o);
	check_file(t.path, &c, 1);
	data = slurp(t.path, NULL);
	/* The raw bytes, not \u escapes. */
	CHECK(data != NULL && strstr(data, c.subject) != NULL);
	CHECK(data != NULL && strstr(data, c.profile) != NULL);
	CHECK(data != NULL && strstr(data, c.user) != NULL);
	CHECK(data != NULL && strstr(data, "\\u") == NULL);
	free(data);
	tmp_remove(&t);
}

TEST(escaping)
{
	struct tmp t;
	struct sync_output *o;
	struct cal_change c = change(1);
	char *data;

	c.subject = "\"Quoted\" back\\slash\nsecond line\r\ttab \x01 </script> \xe2\x80\xa8";
	c.forward = "sip:\"x\"@y";
	tmp_make(&t);
	o = open_ok(t.path);
	write_ok(o, &c);
	output_close(o);
	check_file(t.path, &c, 1); /* one line: the newline in the subject is escaped */
	data = slurp(t.path, NULL);
	CHECK(data != NULL &&
	      strstr(data, "\"subject\":\"\\\"Quoted\\\" back\\\\slash\\nsecond "
	                   "line\\r\\ttab \\u0001 </script> \xe2\x80\xa8\"") != NULL);
	CHECK(data != NULL && strstr(data, "\"forward\":\"sip:\\\"x\\\"@y\"") != NULL);
	CHECK(data != NULL && strchr(data, '\r') == NULL);
	free(data);
	tmp_remove(&t);
}

TEST(refused_strings_and_times_write_nothing)
{
	static const struct {
		const char *field;
		size_t offset;
	} fields[] = {
		{"user", offsetof(struct cal_change, user)},
		{"state", offsetof(struct cal_change, state)},
		{"profile", offsetof(struct cal_change, profile)},
		{"forward", offsetof(struct cal_change, forward)},
		{"subject", offsetof(struct cal_change, subject)},
		{"reason", offsetof(struct cal_change, reason)},
	};
	struct tmp t;
	struct sync_output *o;
	struct cal_change good = change(9);
	struct cal_change c;
	struct err e = {0};
	char *data;

	tmp_make(&t);
	o = open_ok(t.path);
	/* Not UTF-8: a lone continuation byte, a truncated sequence, an overlong '/'. */
	for (size_t i = 0; i < N(fields); i++) {
		static const char *const bad[] = {"a\x80", "\xe2\x82", "\xc0\xaf"};

		for (size_t k = 0; k < N(bad); k++) {
			c = change(1);
			*(const char **)(void *)((char *)&c + fields[i].offset) = bad[k];
			e = (struct err){0};
			CHECK_EQ(output_write(o, &c, &e), -EINVAL);
			CHECK_EQ(e.code, -EINVAL);
			CHECK(strstr(e.msg, fields[i].field) != NULL);
			CHECK(strstr(e.msg, "UTF-8") != NULL);
		}
	}
	/* Times that xs:dateTime cannot hold. */
	c = change(2);
	c.time_utc = ISO8601_MAX_UTC + 1;
	CHECK_EQ(output_write(o, &c, &e), -ERANGE);
	CHECK(strstr(e.msg, "time") != NULL);
	c = change(3);
	c.since_utc = -INT64_C(62135596801);
	CHECK_EQ(output_write(o, &c, &e), -ERANGE);
	CHECK(strstr(e.msg, "since") != NULL);
	c = change(4);
	c.until_utc = PRESENCE_NEVER - 1;
	CHECK_EQ(output_write(o, &c, &e), -ERANGE);
	CHECK(strstr(e.msg, "until") != NULL);
	c = change(5);
	c.time_utc = PRESENCE_NEVER; /* "time" has no null */
	CHECK_EQ(output_write(o, &c, NULL), -ERANGE);
	/* Nothing was written, and the output still works. */
	data = slurp(t.path, NULL);
	CHECK_STREQ(data, "");
	free(data);
	write_ok(o, &good);
	output_close(o);
	check_file(t.path, &good, 1);
	tmp_remove(&t);
}

TEST(many_lines_in_order_and_append)
{
	enum {
		N_LINES = 1000
	};
	static struct cal_change c[N_LINES + 1];
	static char subjects[N_LINES + 1][32];
	struct tmp t;
	struct sync_output *o;

	tmp_make(&t);
	o = open_ok(t.path);
	for (size_t i = 0; i < N_LINES; i++) {
		c[i] = change((int64_t)i + 1);
		(void)snprintf(subjects[i], sizeof(subjects[i]), "meeting %zu", i);
		c[i].subject = subjects[i];
		c[i].time_utc = T0 + (int64_t)i;
		write_ok(o, &c[i]);
	}
	output_close(o);
	/* A second open appends; it never truncates. */
	c[N_LINES] = change(N_LINES + 1);
	o = open_ok(t.path);
	write_ok(o, &c[N_LINES]);
	output_close(o);
	check_file(t.path, c, N_LINES + 1);
	tmp_remove(&t);
}

TEST(file_mode)
{
	struct tmp t;
	struct sync_output *o;
	struct stat st;
	mode_t old = umask(022);

	tmp_make(&t);
	o = open_ok(t.path);
	CHECK_EQ(stat(t.path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK(S_ISREG(st.st_mode));
	output_close(o);
	/* An existing file keeps its mode. */
	CHECK_EQ(chmod(t.path, 0600), 0);
	o = open_ok(t.path);
	CHECK_EQ(stat(t.path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	output_close(o);
	(void)umask(old);
	tmp_remove(&t);
}

TEST(reopen_after_rename)
{
	struct tmp t;
	struct sync_output *o;
	struct cal_change c[4] = {change(1), change(2), change(3), change(4)};
	char rotated[320];
	struct err e = {0};

	tmp_make(&t);
	(void)snprintf(rotated, sizeof(rotated), "%s.1", t.path);
	o = open_ok(t.path);
	write_ok(o, &c[0]);
	/* logrotate renames; until the reopen, lines still go to the renamed file. */
	CHECK_EQ(rename(t.path, rotated), 0);
	write_ok(o, &c[1]);
	CHECK_EQ(access(t.path, F_OK), -1);
	CHECK_EQ(output_reopen(o, &e), 0);
	write_ok(o, &c[2]);
	/* A reopen without a rename keeps appending to the same file. */
	CHECK_EQ(output_reopen(o, &e), 0);
	write_ok(o, &c[3]);
	output_close(o);
	check_file(rotated, c, 2);
	check_file(t.path, c + 2, 2);
	tmp_remove(&t);
}

TEST(failed_reopen_keeps_the_old_file)
{
	struct tmp t;
	struct sync_output *o;
	struct cal_change c[2] = {change(1), change(2)};
	char rotated[320];
	struct err e = {0};

	tmp_make(&t);
	(void)snprintf(rotated, sizeof(rotated), "%s.1", t.path);
	o = open_ok(t.path);
	write_ok(o, &c[0]);
	CHECK_EQ(rename(t.path, rotated), 0);
	CHECK_EQ(mkdir(t.path, 0700), 0); /* the path cannot be opened for writing now */
	CHECK_EQ(output_reopen(o, &e), -EISDIR);
	CHECK_EQ(e.code, -EISDIR);
	CHECK(strstr(e.msg, t.path) != NULL);
	write_ok(o, &c[1]);
	output_close(o);
	check_file(rotated, c, 2);
	CHECK_EQ(rmdir(t.path), 0);
	tmp_remove(&t);
}

TEST(open_errors_name_the_path)
{
	struct tmp t;
	char p[400];
	struct sync_output *o = (struct sync_output *)&t; /* garbage, must stay */
	struct err e = {0};
	int fd;

	tmp_make(&t);
	/* A missing directory. */
	(void)snprintf(p, sizeof(p), "%s/sub/presence.jsonl", t.dir);
	CHECK_EQ(output_open(p, &o, &e), -ENOENT);
	CHECK_EQ(e.code, -ENOENT);
	CHECK(strstr(e.msg, p) != NULL);
	CHECK(o == (struct sync_output *)&t);
	/* A directory. */
	CHECK_EQ(output_open(t.dir, &o, &e), -EISDIR);
	CHECK(strstr(e.msg, t.dir) != NULL);
	/* A parent that is a file. */
	(void)snprintf(p, sizeof(p), "%s/file", t.dir);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		(void)close(fd);
	(void)snprintf(p, sizeof(p), "%s/file/presence.jsonl", t.dir);
	CHECK_EQ(output_open(p, &o, &e), -ENOTDIR);
	CHECK(strstr(e.msg, p) != NULL);
	/* Without err. */
	CHECK_EQ(output_open(p, &o, NULL), -ENOTDIR);
	CHECK(o == (struct sync_output *)&t);
	output_close(NULL);
	tmp_remove(&t);
}

/* Points standard output at fd for the duration of a test; returns the saved descriptor. */
static int stdout_to(int fd)
{
	int saved;

	(void)fflush(stdout);
	saved = dup(STDOUT_FILENO);
	if (saved < 0 || dup2(fd, STDOUT_FILENO) < 0) {
		perror("dup");
		abort();
	}
	return saved;
}

static void stdout_restore(int saved)
{
	if (dup2(saved, STDOUT_FILENO) < 0) {
		perror("dup2");
		abort();
	}
	(void)close(saved);
}

TEST(standard_output)
{
	const char *paths[] = {"-", NULL};
	struct cal_change c[2] = {change(1), change(2)};

	for (size_t i = 0; i < N(paths); i++) {
		struct tmp t;
		struct sync_output *o;
		struct err e = {0};
		int fd;
		int saved;
		bool still_open;

		tmp_make(&t);
		fd = open(t.path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		CHECK(fd >= 0);
		if (fd < 0)
			continue;
		saved = stdout_to(fd);
		o = open_ok(paths[i]);
		write_ok(o, &c[0]);
		CHECK_EQ(output_reopen(o, &e), 0); /* a no-op */
		write_ok(o, &c[1]);
		output_close(o);
		/* output_close never closes standard output. */
		still_open = fcntl(STDOUT_FILENO, F_GETFD) != -1;
		stdout_restore(saved);
		(void)close(fd);
		CHECK(still_open);
		check_file(t.path, c, 2);
		tmp_remove(&t);
	}
}

TEST(standard_output_epipe)
{
	struct sync_output *o;
	struct cal_change c = change(1);
	struct err e = {0};
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int p[2];
	int saved;
	int rc;

	CHECK_EQ(pipe(p), 0);
	(void)close(p[0]); /* the reader went away */
	saved = stdout_to(p[1]);
	o = open_ok(NULL);
	rc = output_write(o, &c, &e);
	output_close(o);
	stdout_restore(saved);
	(void)close(p[1]);
	(void)signal(SIGPIPE, old);
	CHECK_EQ(rc, -EPIPE);
	CHECK_EQ(e.code, -EPIPE);
	CHECK(strstr(e.msg, "standard output") != NULL);
	CHECK(strstr(e.msg, "change 1") != NULL);
}

/* Reads everything that is in the (non-blocking) pipe. */
static size_t drain(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		ssize_t r = read(fd, buf + len, cap - len);

		if (r <= 0)
			break;
		len += (size_t)r;
	}
	return len;
}

/*
 * A line that goes out only in part (a full non-blocking pipe gives a short write, then EAGAIN):
 * the error says how much went out, and the next line starts with a newline, so a reader loses
 * only the broken line.
 */
TEST(partial_line_is_isolated)
{
	enum {
		BIG = 200000
	}; /* more than a pipe holds, whatever F_SETPIPE_SZ does */

	static char subject[BIG];
	static char got[4 * BIG];
	struct sync_output *o;
	struct cal_change big = change(1);
	struct cal_change small[2] = {change(2), change(3)};
	struct err e = {0};
	int p[2];
	int saved;
	int rc;
	size_t len1;
	size_t len2;
	char *nl;
	json_t *j;

	memset(subject, 'x', BIG - 1);
	big.subject = subject;
	CHECK_EQ(pipe(p), 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 0);
	CHECK_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	saved = stdout_to(p[1]);
	o = open_ok("-");
	rc = output_write(o, &big, &e);
	len1 = drain(p[0], got, sizeof(got));
	/* Then two small lines, read after each. */
	write_ok(o, &small[0]);
	len2 = drain(p[0], got + len1, sizeof(got) - len1);
	write_ok(o, &small[1]);
	len2 += drain(p[0], got + len1 + len2, sizeof(got) - len1 - len2);
	output_close(o);
	stdout_restore(saved);
	(void)close(p[0]);
	(void)close(p[1]);

	CHECK_EQ(rc, -EAGAIN);
	CHECK(strstr(e.msg, "standard output") != NULL);
	CHECK(strstr(e.msg, "write failed after") != NULL);
	CHECK(len1 > 0 && len1 < BIG);
	CHECK(memchr(got, '\n', len1) == NULL);
	/* A newline ends the broken line, then the two lines follow whole. */
	CHECK(len2 > 0 && got[len1] == '\n');
	got[len1 + len2] = '\0';
	CHECK_EQ(count_char(got + len1, '\n'), 3);
	nl = strchr(got + len1 + 1, '\n');
	CHECK(nl != NULL);
	if (nl == NULL)
		return;
	j = parse_line(got + len1 + 1, (size_t)(nl - (got + len1 + 1)));
	if (j != NULL)
		check_change(j, &small[0]);
	json_decref(j);
	j = parse_line(nl + 1, strlen(nl + 1) - 1);
	if (j != NULL)
		check_change(j, &small[1]);
	json_decref(j);
}

int main(void)
{
	RUN(exact_line);
	RUN(nulls);
	RUN(utf8_stays_utf8);
	RUN(escaping);
	RUN(refused_strings_and_times_write_nothing);
	RUN(many_lines_in_order_and_append);
	RUN(file_mode);
	RUN(reopen_after_rename);
	RUN(failed_reopen_keeps_the_old_file);
	RUN(open_errors_name_the_path);
	RUN(standard_output);
	RUN(standard_output_epipe);
	RUN(partial_line_is_isolated);
	return harness_done();
}
