/* SPDX-License-Identifier: MIT */
/*
 * test-ews-stream.c: the streaming framer, fed the wire fixture and variants of it whole, one
 * byte at a time, split at every offset and at pairs of offsets. Every way of feeding must give
 * the same envelopes, byte for byte, at the same offsets, each during the feed that completes it.
 */
#include "ews/ews-stream.h"

#include <errno.h>
#include <stdbool.h>

#include <libxml/parser.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/xalloc.h"

#include "harness.h"

/* ---- building inputs and their expected envelopes ---- */

/* A broken test setup, not a failed check: stop. (assert() would vanish under NDEBUG.) */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct span {
	size_t offset;
	size_t len;
};

/* An input and where its envelopes are. */
struct input {
	char *data;
	size_t len;
	struct span want[64];
	size_t n_want;
};

static void input_add(struct input *in, const char *p, size_t n)
{
	in->data = xrealloc(in->data, in->len + n + 1);
	memcpy(in->data + in->len, p, n);
	in->len += n;
	in->data[in->len] = '\0';
}

/* Bytes between envelopes, or anything that is not an envelope. */
static void input_sep(struct input *in, const char *s)
{
	input_add(in, s, strlen(s));
}

/* An envelope: the framer must hand out exactly these bytes. */
static void input_env(struct input *in, const char *p, size_t n)
{
	REQUIRE(in->n_want < sizeof(in->want) / sizeof(in->want[0]));
	in->want[in->n_want].offset = in->len;
	in->want[in->n_want].len = n;
	in->n_want++;
	input_add(in, p, n);
}

static void input_env_str(struct input *in, const char *s)
{
	input_env(in, s, strlen(s));
}

static void input_free(struct input *in)
{
	free(in->data);
	*in = (struct input){0};
}

/* The wire fixture, and its five envelopes: back to back, each ending in "</Envelope>". */
static struct input fixture(void)
{
	static const char end_tag[] = "</Envelope>";
	const char *dir = getenv("EWS_FIXTURES_DIR");
	char path[4096];
	char chunk[4096];
	struct input in = {0};
	struct input raw = {0};
	size_t start = 0;
	size_t n;
	FILE *f;

	if (dir == NULL) {
		fputs("EWS_FIXTURES_DIR is not set: run this under meson test\n", stderr);
		exit(1);
	}
	(void)snprintf(path, sizeof(path), "%s/wire/getstreamingevents-stream.xmls", dir);
	f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		input_add(&raw, chunk, n);
	fclose(f);
	for (size_t i = 0; i + sizeof(end_tag) - 1 <= raw.len; i++) {
		if (memcmp(raw.data + i, end_tag, sizeof(end_tag) - 1) != 0)
			continue;
		i += sizeof(end_tag) - 1;
		input_env(&in, raw.data + start, i - start);
		start = i;
	}
	CHECK_EQ(start, raw.len);
	input_free(&raw);
	return in;
}

/* Envelope k of the fixture as a NUL-terminated copy. */
static char *fixture_env(const struct input *fx, size_t k)
{
	return xmemdup(fx->data + fx->want[k].offset, fx->want[k].len);
}

/* Rewrites the fixture envelope's unprefixed root as prefix:Envelope. */
static char *prefixed(const char *env, const char *prefix)
{
	static const char open[] = "<Envelope xmlns=";
	static const char close[] = "</Envelope>";
	size_t len = strlen(env);
	size_t inner;
	char *out;
	int n;

	REQUIRE(strncmp(env, open, sizeof(open) - 1) == 0);
	REQUIRE(strcmp(env + len - (sizeof(close) - 1), close) == 0);
	inner = len - (sizeof(open) - 1) - (sizeof(close) - 1);
	out = xmalloc(len + 3 * strlen(prefix) + 8);
	n = snprintf(out, len + 3 * strlen(prefix) + 8, "<%s:Envelope xmlns:%s=%.*s</%s:Envelope>",
	             prefix, prefix, (int)inner, env + sizeof(open) - 1, prefix);
	REQUIRE(n > 0 && (size_t)n < len + 3 * strlen(prefix) + 8);
	return out;
}

/* ---- feeding ---- */

struct seen {
	char *xml;
	size_t len;
	size_t offset;
	size_t chunk_from; /* the feed during which it arrived */
	size_t chunk_to;
};

struct got {
	struct seen v[64];
	size_t n;
	size_t chunk_from;
	size_t chunk_to;
	size_t fail_at; /* the callback fails on this envelope (1-based); 0: never */
	int fail_rc;
};

static int collect(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct got *g = ctx;
	struct seen *e;

	if (g->n == sizeof(g->v) / sizeof(g->v[0]))
		return -ENOBUFS;
	e = &g->v[g->n++];
	e->xml = xmemdup(xml, len);
	e->len = len;
	e->offset = offset;
	e->chunk_from = g->chunk_from;
	e->chunk_to = g->chunk_to;
	if (g->fail_at == g->n)
		return g->fail_rc;
	return 0;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i].xml);
	g->n = 0;
}

/* How many times an input was fed from start to finish, for the report at the end. */
static size_t total_runs;

/* Feeds in with a cut before each cuts[k] (ascending), then finishes; the first error. */
static int run_cuts(struct got *g, size_t max, const struct input *in, const size_t *cuts,
                    size_t n_cuts, struct err *err)
{
	struct ews_stream *s = ews_stream_new(max, collect, g);
	size_t from = 0;
	int rc = 0;

	total_runs++;
	for (size_t k = 0; k <= n_cuts && rc == 0; k++) {
		size_t to = k < n_cuts ? cuts[k] : in->len;

		g->chunk_from = from;
		g->chunk_to = to;
		rc = ews_stream_feed(s, in->data + from, to - from, err);
		if (rc == 0)
			CHECK_EQ(ews_stream_offset(s), to);
		from = to;
	}
	if (rc == 0)
		rc = ews_stream_finish(s, err);
	ews_stream_free(s);
	return rc;
}

static int run_whole(struct got *g, size_t max, const struct input *in, struct err *err)
{
	return run_cuts(g, max, in, NULL, 0, err);
}

static int run_bytewise(struct got *g, size_t max, const struct input *in, struct err *err)
{
	size_t *cuts = xcalloc(in->len + 1, sizeof(*cuts));
	int rc;

	for (size_t i = 1; i < in->len; i++)
		cuts[i - 1] = i;
	rc = run_cuts(g, max, in, cuts, in->len > 0 ? in->len - 1 : 0, err);
	free(cuts);
	return rc;
}

/*
 * Checks that g holds the first n_want envelopes of in, byte for byte at their offsets, each
 * handed out during the feed that held its last byte. Reports the first difference once, with
 * how the input was fed, and returns false.
 */
static bool same_envelopes(const struct got *g, const struct input *in, size_t n_want,
                           const char *how, size_t a, size_t b, int line)
{
	if (g->n != n_want) {
		harness_fail(__FILE__, line, "%s (%zu, %zu): %zu envelopes, want %zu", how, a, b,
		             g->n, n_want);
		return false;
	}
	for (size_t k = 0; k < n_want; k++) {
		const struct seen *e = &g->v[k];
		const struct span *w = &in->want[k];
		size_t end = w->offset + w->len;

		if (e->offset != w->offset || e->len != w->len ||
		    memcmp(e->xml, in->data + w->offset, w->len) != 0) {
			harness_fail(
				__FILE__, line,
				"%s (%zu, %zu): envelope %zu is %zu bytes at %zu, want %zu at %zu",
				how, a, b, k, e->len, e->offset, w->len, w->offset);
			return false;
		}
		if (end <= e->chunk_from || end > e->chunk_to) {
			harness_fail(
				__FILE__, line,
				"%s (%zu, %zu): envelope %zu (ends at %zu) came in feed [%zu, %zu)",
				how, a, b, k, end, e->chunk_from, e->chunk_to);
			return false;
		}
	}
	return true;
}

/*
 * Feeds in whole, byte by byte and split at every offset from `from` on, and expects rc (0 or
 * an error) and the first n_want of in's envelopes each time. Variants of an input that was
 * already split everywhere start at the part that differs. Returns the number of ways tried.
 */
static size_t check_splits_from(const struct input *in, size_t from, size_t max, size_t n_want,
                                int want_rc, int line)
{
	struct got g = {0};
	struct err err = {0};
	size_t runs = 0;
	int rc;

	rc = run_whole(&g, max, in, &err);
	runs++;
	if (rc != want_rc)
		harness_fail(__FILE__, line, "whole: rc %d, want %d (%s)", rc, want_rc, err.msg);
	(void)same_envelopes(&g, in, n_want, "whole", 0, 0, line);
	got_free(&g);

	rc = run_bytewise(&g, max, in, &err);
	runs++;
	if (rc != want_rc)
		harness_fail(__FILE__, line, "bytewise: rc %d, want %d (%s)", rc, want_rc, err.msg);
	(void)same_envelopes(&g, in, n_want, "bytewise", 0, 0, line);
	got_free(&g);

	for (size_t i = from; i <= in->len; i++) {
		bool ok;

		rc = run_cuts(&g, max, in, &i, 1, &err);
		runs++;
		ok = rc == want_rc;
		if (!ok)
			harness_fail(__FILE__, line, "split at %zu: rc %d, want %d (%s)", i, rc,
			             want_rc, err.msg);
		ok = same_envelopes(&g, in, n_want, "split", i, 0, line) && ok;
		got_free(&g);
		if (!ok)
			break;
	}
	return runs;
}

static size_t check_all_splits(const struct input *in, size_t max, size_t n_want, int want_rc,
                               int line)
{
	return check_splits_from(in, 0, max, n_want, want_rc, line);
}

/* Every pair of cut points among pos[0..n). */
static size_t check_pairs(const struct input *in, const size_t *pos, size_t n, int line)
{
	struct got g = {0};
	struct err err = {0};
	size_t runs = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t j = i; j < n; j++) {
			size_t cuts[2] = {pos[i], pos[j]};
			int rc = run_cuts(&g, EWS_MAX_ENVELOPE, in, cuts, 2, &err);
			bool ok = rc == 0;

			runs++;
			if (!ok)
				harness_fail(__FILE__, line, "pair (%zu, %zu): rc %d (%s)", cuts[0],
				             cuts[1], rc, err.msg);
			ok = same_envelopes(&g, in, in->n_want, "pair", cuts[0], cuts[1], line) &&
			     ok;
			got_free(&g);
			if (!ok)
				return runs;
		}
	}
	return runs;
}

/* A small xorshift generator, so that "random" chunkings are the same on every run. */
static uint64_t rand_state = 0x9e3779b97f4a7c15u;

static size_t rand_below(size_t n)
{
	rand_state ^= rand_state << 13;
	rand_state ^= rand_state >> 7;
	rand_state ^= rand_state << 17;
	return (size_t)(rand_state % n);
}

/* Cuts in at random points, chunks of 1 to max_chunk bytes; cuts has room for in->len. */
static size_t random_cuts(const struct input *in, size_t max_chunk, size_t *cuts)
{
	size_t n = 0;

	for (size_t at = 1 + rand_below(max_chunk); at < in->len; at += 1 + rand_below(max_chunk))
		cuts[n++] = at;
	return n;
}

/* ---- the wire fixture ---- */

TEST(fixture_has_five_envelopes)
{
	struct input in = fixture();

	CHECK_EQ(in.n_want, 5);
	for (size_t k = 0; k < in.n_want; k++)
		CHECK(strncmp(in.data + in.want[k].offset, "<Envelope xmlns=", 16) == 0);
	input_free(&in);
}

TEST(fixture_whole_bytewise_and_every_split)
{
	struct input in = fixture();
	size_t runs = check_all_splits(&in, EWS_MAX_ENVELOPE, in.n_want, 0, __LINE__);

	printf("# fixture: %zu bytes fed %zu ways\n", in.len, runs);
	input_free(&in);
}

TEST(fixture_pairs_of_splits)
{
	struct input in = fixture();
	size_t *pos = xcalloc(in.len + 1, sizeof(*pos));
	size_t n = 0;
	size_t runs;

	/* Every 89th offset, and every offset within 3 bytes of an envelope boundary. */
	for (size_t i = 0; i <= in.len; i++) {
		bool near = false;

		for (size_t k = 0; k < in.n_want; k++) {
			size_t a = in.want[k].offset;
			size_t b = a + in.want[k].len;

			near = near || (i + 3 >= a && i <= a + 3) || (i + 3 >= b && i <= b + 3);
		}
		if (near || i % 89 == 0)
			pos[n++] = i;
	}
	runs = check_pairs(&in, pos, n, __LINE__);
	printf("# fixture: %zu pairs of split points\n", runs);
	free(pos);
	input_free(&in);
}

TEST(fixture_random_chunks)
{
	struct input in = fixture();
	size_t *cuts = xcalloc(in.len + 1, sizeof(*cuts));
	struct got g = {0};
	struct err err = {0};

	for (size_t run = 0; run < 1000; run++) {
		size_t n = random_cuts(&in, run % 2 == 0 ? 16 : 2000, cuts);
		int rc = run_cuts(&g, EWS_MAX_ENVELOPE, &in, cuts, n, &err);
		bool ok = rc == 0;

		if (!ok)
			harness_fail(__FILE__, __LINE__, "random (%zu, %zu): rc %d (%s)", run, n,
			             rc, err.msg);
		ok = same_envelopes(&g, &in, in.n_want, "random", run, n, __LINE__) && ok;
		got_free(&g);
		if (!ok)
			break;
	}
	free(cuts);
	input_free(&in);
}

TEST(several_streams_in_one_chunk)
{
	struct input fx = fixture();
	struct input in = {0};
	struct got g = {0};
	struct err err = {0};

	for (size_t r = 0; r < 10; r++)
		for (size_t k = 0; k < fx.n_want; k++)
			input_env(&in, fx.data + fx.want[k].offset, fx.want[k].len);
	CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), 0);
	CHECK(same_envelopes(&g, &in, 50, "whole", 0, 0, __LINE__));
	got_free(&g);
	input_free(&in);
	input_free(&fx);
}

/* ---- variants ---- */

TEST(prefixed_roots)
{
	struct input fx = fixture();
	struct input in = {0};

	/* Each of the five with a different root: s:, soap:, none, s:, soap:. */
	for (size_t k = 0; k < fx.n_want; k++) {
		char *env = fixture_env(&fx, k);
		char *p = k % 3 == 2 ? NULL : prefixed(env, k % 3 == 0 ? "s" : "soap");

		input_env_str(&in, p != NULL ? p : env);
		free(p);
		free(env);
	}
	CHECK(strncmp(in.data, "<s:Envelope xmlns:s=", 20) == 0);
	CHECK(strncmp(in.data + in.want[1].offset, "<soap:Envelope xmlns:soap=", 26) == 0);
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, in.n_want, 0, __LINE__);
	input_free(&in);
	input_free(&fx);
}

TEST(between_envelopes)
{
	struct input fx = fixture();
	struct input in = {0};
	char *heartbeat = fixture_env(&fx, 2);
	char *closed = fixture_env(&fx, 4);
	char *s_heartbeat = prefixed(heartbeat, "s");

	input_sep(&in, "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>");
	input_env_str(&in, heartbeat);
	input_sep(&in, "\r\n");
	input_env_str(&in, s_heartbeat);
	input_sep(&in, " \t\r\n\xef\xbb\xbf\xef\xbb\xbf \n<?xml version=\"1.0\"?>\n");
	input_env_str(&in, heartbeat);
	/* Comments and processing instructions may stand before a root, and may hold '<' and '>'. */
	input_sep(&in, "<?xml version='1.0' standalone='yes'?>\r\n<!-- a <b> </Envelope> -->"
	               "<?calsync x<y>z?>\n");
	input_env_str(&in, s_heartbeat);
	input_sep(&in, "<!---->");
	input_env_str(&in, closed);
	input_sep(&in, "\n\n");
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, in.n_want, 0, __LINE__);
	free(s_heartbeat);
	free(closed);
	free(heartbeat);
	input_free(&in);
	input_free(&fx);
}

TEST(tricky_content)
{
	struct input in = {0};

	/* A naive "</Envelope>" search would cut each of these in the wrong place. */
	input_env_str(&in,
	              "<Envelope xmlns=\"urn:x\"><![CDATA[</Envelope>]]><!-- </Envelope> -->"
	              "<?pi </Envelope>?><a b=\"&gt;/>\" c='>'>&lt;/Envelope&gt;</a></Envelope>");
	input_env_str(&in, "<Envelope xmlns=\"urn:x\"/>");
	input_env_str(&in, "<s:Envelope xmlns:s=\"urn:x\" a = '1' \r\n b=\">\" />");
	input_env_str(&in,
	              "<Envelope\r\n xmlns=\"urn:x\"\r\n>\r\n<b>x\r\ny</b>\r\n</Envelope \r\n\t>");
	input_env_str(&in, "<Envelope>&#60;&#x3c;&amp;&quot;\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\x85"
	                   "</Envelope>");
	input_env_str(&in, "<E/>");
	input_env_str(&in, "<Envelope xmlns=\"urn:x\"><Envelope><Envelope/></Envelope></Envelope>");
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, in.n_want, 0, __LINE__);
	input_free(&in);
}

TEST(declared_encoding_is_ignored)
{
	struct input in = {0};

	/* EWS is UTF-8 whatever a declaration says; the bytes handed out are the bytes read. */
	input_sep(&in, "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>");
	input_env_str(&in, "<Envelope>caf\xc3\xa9</Envelope>");
	input_sep(&in, "<?xml version=\"1.0\" encoding=\"UTF-16\"?>");
	input_env_str(&in, "<Envelope>ascii</Envelope>");
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, in.n_want, 0, __LINE__);
	input_free(&in);
}

TEST(large_envelope_across_many_feeds)
{
	struct input in = {0};
	char *big = xmalloc(300001);
	size_t *cuts;
	struct got g = {0};
	struct err err = {0};
	size_t n;

	memcpy(big, "<Envelope><t>", 13);
	for (size_t i = 13; i < 300000 - 15; i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big + 300000 - 15, "</t></Envelope>", 15);
	big[300000] = '\0';
	input_sep(&in, "<?xml version=\"1.0\"?>\n<!-- before -->\n");
	input_env(&in, big, 300000);
	input_sep(&in, "\n");
	input_env_str(&in, "<Envelope/>");
	cuts = xcalloc(in.len + 1, sizeof(*cuts));
	for (size_t chunk = 1; chunk <= 100000; chunk *= 7) {
		n = 0;
		for (size_t at = chunk; at < in.len; at += chunk)
			cuts[n++] = at;
		CHECK_EQ(run_cuts(&g, 300000, &in, cuts, n, &err), 0);
		CHECK(same_envelopes(&g, &in, 2, "chunks of", chunk, 0, __LINE__));
		got_free(&g);
	}
	for (size_t run = 0; run < 20; run++) {
		n = random_cuts(&in, 70000, cuts);
		CHECK_EQ(run_cuts(&g, 300000, &in, cuts, n, &err), 0);
		CHECK(same_envelopes(&g, &in, 2, "random", run, n, __LINE__));
		got_free(&g);
	}
	free(cuts);
	free(big);
	input_free(&in);
}

/* Unique names in every envelope: the parser's name dictionary must not grow without end. */
TEST(many_envelopes_with_new_names)
{
	struct input in = {0};
	size_t *cuts;
	struct got g = {0};
	struct err err = {0};
	size_t delivered = 0;
	size_t n = 0;
	char env[512];

	for (size_t k = 0; k < 1500; k++) {
		int len = snprintf(
			env, sizeof(env),
			"<Envelope><n%zu_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			" x%zu_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb='1'/>"
			"</Envelope>",
			k, k);

		REQUIRE(len > 0 && (size_t)len < sizeof(env));
		input_add(&in, env, (size_t)len);
	}
	cuts = xcalloc(in.len + 1, sizeof(*cuts));
	for (size_t at = 4096; at < in.len; at += 4096)
		cuts[n++] = at;
	/* Only the count is kept: 1500 envelopes do not fit in struct got. About 250 bytes of new
	 * names each make the parser's dictionary pass its limit more than once. */
	{
		struct ews_stream *s = ews_stream_new(EWS_MAX_ENVELOPE, collect, &g);
		size_t from = 0;

		for (size_t k = 0; k <= n; k++) {
			size_t to = k < n ? cuts[k] : in.len;

			CHECK_EQ(ews_stream_feed(s, in.data + from, to - from, &err), 0);
			delivered += g.n;
			got_free(&g);
			from = to;
		}
		CHECK_EQ(ews_stream_finish(s, &err), 0);
		ews_stream_free(s);
	}
	CHECK_EQ(delivered, 1500);
	free(cuts);
	input_free(&in);
}

TEST(empty_and_blank_bodies)
{
	static const char *const bodies[] = {"", " ", "\r\n\t ", "\xef\xbb\xbf",
	                                     "\xef\xbb\xbf\n\xef\xbb\xbf"};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct input in = {0};

		input_sep(&in, bodies[i]);
		(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 0, 0, __LINE__);
		input_free(&in);
	}
}

/* ---- limits and errors ---- */

TEST(envelope_over_the_limit)
{
	struct input in = fixture();
	size_t largest = 0;
	size_t first_largest = 0;
	size_t from;

	for (size_t k = 0; k < in.n_want; k++) {
		if (in.want[k].len > largest) {
			largest = in.want[k].len;
			first_largest = k;
		}
	}
	/* Exactly the limit is fine; one byte less and the largest envelope is refused. Splits
	 * before the envelope ahead of the largest were tested with the fixture. */
	from = first_largest > 0 ? in.want[first_largest - 1].offset : 0;
	(void)check_splits_from(&in, from, largest, in.n_want, 0, __LINE__);
	(void)check_splits_from(&in, from, largest - 1, first_largest, -EMSGSIZE, __LINE__);
	input_free(&in);
}

TEST(limit_counts_the_envelope_not_the_declaration)
{
	struct input in = {0};
	char env[200];

	memset(env, ' ', sizeof(env));
	memcpy(env, "<Envelope>", 10);
	memcpy(env + sizeof(env) - 11, "</Envelope>", 11);
	input_sep(&in, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n");
	input_env(&in, env, sizeof(env));
	(void)check_all_splits(&in, sizeof(env), 1, 0, __LINE__);
	(void)check_all_splits(&in, sizeof(env) - 1, 0, -EMSGSIZE, __LINE__);
	input_free(&in);
}

/* An envelope that never ends fails as soon as it passes the limit: nothing is buffered past it. */
TEST(endless_envelope_fails_at_the_limit)
{
	static const size_t max = 4096;
	struct got g = {0};
	struct err err = {0};
	struct ews_stream *s = ews_stream_new(max, collect, &g);
	char chunk[100];
	size_t fed = 0;
	int rc = 0;

	memset(chunk, ' ', sizeof(chunk));
	memcpy(chunk + 50, "<a/>", 4);
	CHECK_EQ(ews_stream_feed(s, "\n<Envelope>", 11, &err), 0);
	fed = 11;
	while (rc == 0 && fed < 100 * max) {
		rc = ews_stream_feed(s, chunk, sizeof(chunk), &err);
		fed += sizeof(chunk);
	}
	CHECK_EQ(rc, -EMSGSIZE);
	/* The envelope starts at 1; its byte number max (counting from 0) lies at 1 + max. */
	CHECK(fed - sizeof(chunk) <= 1 + max && 1 + max < fed);
	CHECK(strstr(err.msg, "envelope at byte 1 ") != NULL);
	CHECK_EQ(g.n, 0);
	ews_stream_free(s);
}

TEST(garbage_between_envelopes)
{
	struct input fx = fixture();
	static const char *const junk[] = {"junk",      "</Envelope>", "x<Envelope/>", "&amp;",
	                                   "<!DOCTYPE", "\xef\xbb<",   "\xfe\xff",     "<1/>"};

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		struct input in = {0};
		struct got g = {0};
		struct err err = {0};
		char where[64];

		input_env(&in, fx.data, fx.want[0].len);
		(void)snprintf(where, sizeof(where), "byte %zu", in.len);
		input_sep(&in, junk[i]);
		input_env(&in, fx.data + fx.want[1].offset, fx.want[1].len);
		CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
		CHECK_EQ(err.code, -EPROTO);
		if (strstr(err.msg, where) == NULL)
			harness_fail(__FILE__, __LINE__, "junk %zu: \"%s\" does not name %s", i,
			             err.msg, where);
		got_free(&g);
		/* Splits inside the first envelope were tested with the fixture. */
		(void)check_splits_from(&in, fx.want[0].len - 16, EWS_MAX_ENVELOPE, 1, -EPROTO,
		                        __LINE__);
		input_free(&in);
	}
	input_free(&fx);
}

TEST(a_NUL_byte_between_envelopes)
{
	struct input in = {0};

	input_env_str(&in, "<Envelope/>");
	input_add(&in, "\0", 1);
	input_sep(&in, "<Envelope/>");
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 1, -EPROTO, __LINE__);
	input_free(&in);
}

TEST(truncated_final_envelope)
{
	struct input in = fixture();
	struct got g = {0};
	struct err err = {0};
	char where[64];

	/* Cut inside the last envelope's closing tag, then inside its start tag. */
	in.len -= 3;
	(void)snprintf(where, sizeof(where), "began at byte %zu", in.want[4].offset);
	CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
	CHECK(strstr(err.msg, where) != NULL);
	got_free(&g);
	(void)check_splits_from(&in, in.want[3].offset, EWS_MAX_ENVELOPE, 4, -EPROTO, __LINE__);
	in.len = in.want[4].offset + 5;
	(void)check_splits_from(&in, in.want[3].offset, EWS_MAX_ENVELOPE, 4, -EPROTO, __LINE__);
	in.len = in.want[4].offset;
	(void)check_splits_from(&in, in.want[3].offset, EWS_MAX_ENVELOPE, 4, 0, __LINE__);
	input_free(&in);
}

TEST(truncated_prolog_or_bom)
{
	static const char *const bodies[] = {"<Envelope/><?xml version", "<Envelope/>\xef\xbb",
	                                     "<Envelope/><!-- x", "<Envelope/><"};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct input in = {0};

		input_env_str(&in, "<Envelope/>");
		input_sep(&in, bodies[i] + 11);
		(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 1, -EPROTO, __LINE__);
		input_free(&in);
	}
}

TEST(callback_error_stops_the_stream)
{
	struct input in = fixture();
	struct got g = {.fail_at = 2, .fail_rc = -ECANCELED};
	struct err err = {0};
	struct err again = {0};
	struct ews_stream *s = ews_stream_new(EWS_MAX_ENVELOPE, collect, &g);

	g.chunk_to = in.len;
	CHECK_EQ(ews_stream_feed(s, in.data, in.len, &err), -ECANCELED);
	CHECK_EQ(err.code, -ECANCELED);
	CHECK_EQ(g.n, 2);
	CHECK(strstr(err.msg, "handler") != NULL);
	/* Dead: every later call gives the same error and no envelope. */
	CHECK_EQ(ews_stream_feed(s, in.data, in.len, &again), -ECANCELED);
	CHECK_STREQ(again.msg, err.msg);
	CHECK_EQ(ews_stream_feed(s, in.data, in.len, NULL), -ECANCELED);
	CHECK_EQ(ews_stream_finish(s, &again), -ECANCELED);
	CHECK_STREQ(again.msg, err.msg);
	CHECK_EQ(g.n, 2);
	ews_stream_free(s);
	got_free(&g);

	/* The same at every split: two envelopes, then the handler's error. */
	for (size_t i = 0; i <= in.want[2].offset + 16; i++) {
		struct got h = {.fail_at = 2, .fail_rc = -ECANCELED};
		int rc = run_cuts(&h, EWS_MAX_ENVELOPE, &in, &i, 1, &err);
		bool ok = rc == -ECANCELED && same_envelopes(&h, &in, 2, "split", i, 0, __LINE__);

		got_free(&h);
		if (!ok) {
			harness_fail(__FILE__, __LINE__, "split at %zu: rc %d", i, rc);
			break;
		}
	}
	input_free(&in);
}

static int loader_calls;

static xmlParserInputPtr counting_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	loader_calls++;
	return NULL;
}

TEST(dtd_and_entities_refused)
{
	static const char *const bodies[] = {
		"<!DOCTYPE Envelope [<!ENTITY x \"boom\">]><Envelope>&x;</Envelope>",
		"<!DOCTYPE Envelope SYSTEM \"http://127.0.0.1:9/x.dtd\"><Envelope/>",
		"<!DOCTYPE Envelope SYSTEM \"/etc/passwd\"><Envelope/>",
		"<!DOCTYPE Envelope [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><Envelope/>",
		("<!DOCTYPE Envelope [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>"
	         "<Envelope>&b;&b;&b;&b;</Envelope>"),
		"<Envelope>&x;</Envelope>",
		"<Envelope><!DOCTYPE x></Envelope>",
		"<?xml version=\"1.0\"?><!DOCTYPE Envelope><Envelope/>",
	};
	xmlExternalEntityLoader old = xmlGetExternalEntityLoader();

	xmlSetExternalEntityLoader(counting_loader);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct input in = {0};

		/* A good envelope first: it is handed out, then the DTD ends the stream. */
		input_env_str(&in, "<Envelope/>");
		input_sep(&in, bodies[i]);
		(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 1, -EPROTO, __LINE__);
		input_free(&in);
	}
	CHECK_EQ(loader_calls, 0);
	xmlSetExternalEntityLoader(old);
}

static char *nested(size_t depth)
{
	char *p = xmalloc(depth * 7 + 32);
	size_t n = 0;

	memcpy(p + n, "<Envelope>", 10);
	n += 10;
	for (size_t i = 0; i < depth; i++) {
		memcpy(p + n, "<a>", 3);
		n += 3;
	}
	for (size_t i = 0; i < depth; i++) {
		memcpy(p + n, "</a>", 4);
		n += 4;
	}
	memcpy(p + n, "</Envelope>", 12);
	return p;
}

TEST(deep_nesting)
{
	struct input in = {0};
	char *ok = nested(255);
	char *too_deep = nested(256);
	char *deep = nested(100000);
	struct got g = {0};
	struct err err = {0};

	/* 256 levels are allowed, 257 are not; libxml2 itself would not stop a SAX-only parse. */
	input_env_str(&in, ok);
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 1, 0, __LINE__);
	input_sep(&in, too_deep);
	(void)check_splits_from(&in, in.want[0].len, EWS_MAX_ENVELOPE, 1, -EPROTO, __LINE__);
	in.len = in.want[0].len;
	input_sep(&in, deep);
	CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
	CHECK_EQ(g.n, 1);
	CHECK(strstr(err.msg, "nested too deep") != NULL);
	got_free(&g);
	CHECK_EQ(run_bytewise(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
	CHECK_EQ(g.n, 1);
	got_free(&g);
	free(deep);
	free(too_deep);
	free(ok);
	input_free(&in);
}

TEST(malformed_envelopes)
{
	static const char *const bodies[] = {
		"<Envelope><a></b></Envelope>",
		"<s:Envelope><s:Body/></s:Envelope>", /* unbound prefix */
		"<Envelope><a x=\"1\" x=\"2\"/></Envelope>",
		"<Envelope a=\"<\"/>",
		"<Envelope>\xff\xfe</Envelope>",
		"<Envelope>\xc3</Envelope>",
		"<Envelope></Envelope",
		"<Envelope><![CDATA[x]></Envelope>",
		"<Envelope>\x01</Envelope>",
		"\xfe\xff\0<\0E\0/\0>",
		"<Envelope/ >",
		"<?xml?><Envelope/>",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct input in = {0};
		struct got g = {0};
		struct err err = {0};
		size_t len = strlen(bodies[i]);

		input_env_str(&in, "<Envelope/>");
		/* The UTF-16 one holds NULs. */
		input_add(&in, bodies[i], i == 9 ? 10 : len);
		CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
		if (strstr(err.msg, "byte") == NULL)
			harness_fail(__FILE__, __LINE__, "body %zu: \"%s\" names no byte", i,
			             err.msg);
		got_free(&g);
		(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 1, -EPROTO, __LINE__);
		input_free(&in);
	}
}

/*
 * A new parser context guesses the encoding from a document's first four bytes unless told;
 * UTF-16 or UCS-4 would then be converted, and byte counts would no longer be input bytes.
 * The first document of a stream, and the first after the context is replaced, use a new one.
 */
static const char utf16_doc[] = "<\0?\0x\0m\0l\0 \0v\0e\0r\0s\0i\0o\0n\0=\0'\0001\0.\0000\0'"
				"\0?\0>\0<\0E\0/\0>\0";

TEST(utf16_and_ucs4_are_never_decoded)
{
	static const char ucs4_doc[] = "<\0\0\0E\0\0\0/\0\0\0>\0\0\0";
	struct input in = {0};
	struct got g = {0};
	struct err err = {0};

	/* Read as UTF-8, each fails at its first NUL; decoded, each would be "<E/>". */
	input_add(&in, utf16_doc, sizeof(utf16_doc) - 1);
	CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
	CHECK(strstr(err.msg, "at byte 1 ") != NULL && strstr(err.msg, "Char 0x0") != NULL);
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 0, -EPROTO, __LINE__);
	input_free(&in);
	input_add(&in, ucs4_doc, sizeof(ucs4_doc) - 1);
	CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
	CHECK(strstr(err.msg, "at byte 1 ") != NULL && strstr(err.msg, "Char 0x0") != NULL);
	(void)check_all_splits(&in, EWS_MAX_ENVELOPE, 0, -EPROTO, __LINE__);
	input_free(&in);
}

TEST(a_new_context_mid_stream_guesses_nothing)
{
	/* Six names of 45,000 bytes (libxml2 allows 50,000) fill the parser's dictionary past
	 * its limit in one envelope, so the next document gets a new context. */
	static const size_t name_len = 45000;
	struct got g = {0};
	struct err err = {0};
	struct ews_stream *s = ews_stream_new(EWS_MAX_ENVELOPE, collect, &g);
	char *env = xmalloc(6 * (name_len + 4) + 32);
	size_t n = 0;

	memcpy(env, "<Envelope>", 10);
	n = 10;
	for (char c = 'a'; c < 'g'; c++) {
		env[n++] = '<';
		memset(env + n, c, name_len);
		n += name_len;
		memcpy(env + n, "/>", 2);
		n += 2;
	}
	memcpy(env + n, "</Envelope>", 11);
	n += 11;
	CHECK_EQ(ews_stream_feed(s, env, n, &err), 0);
	CHECK_EQ(g.n, 1);
	got_free(&g);
	CHECK_EQ(ews_stream_feed(s, utf16_doc, sizeof(utf16_doc) - 1, &err), -EPROTO);
	CHECK(strstr(err.msg, "Char 0x0") != NULL);
	CHECK_EQ(g.n, 0);
	ews_stream_free(s);
	free(env);
}

TEST(error_names_the_byte)
{
	struct input in = {0};
	struct got g = {0};
	struct err err = {0};

	input_env_str(&in, "<Envelope/>\n");
	input_sep(&in, "<Envelope><a></b></Envelope>");
	CHECK_EQ(run_whole(&g, EWS_MAX_ENVELOPE, &in, &err), -EPROTO);
	/* The mismatch is seen at the end tag "</b>", bytes 27..30; the document began at 12. */
	CHECK(strstr(err.msg, "document at byte 12") != NULL);
	CHECK(strstr(err.msg, "at byte 2") != NULL);
	printf("# %s\n", err.msg);
	got_free(&g);
	input_free(&in);
}

TEST(offset_and_empty_feeds)
{
	struct got g = {0};
	struct err err = {0};
	struct ews_stream *s = ews_stream_new(EWS_MAX_ENVELOPE, collect, &g);

	CHECK_EQ(ews_stream_offset(s), 0);
	CHECK_EQ(ews_stream_feed(s, NULL, 0, &err), 0);
	CHECK_EQ(ews_stream_feed(s, "  <Enve", 7, NULL), 0);
	CHECK_EQ(ews_stream_feed(s, NULL, 0, &err), 0);
	CHECK_EQ(ews_stream_offset(s), 7);
	CHECK_EQ(ews_stream_feed(s, "lope/> <E/>", 11, &err), 0);
	CHECK_EQ(ews_stream_offset(s), 18);
	CHECK_EQ(g.n, 2);
	CHECK_EQ(g.v[0].offset, 2);
	CHECK_EQ(g.v[1].offset, 14);
	CHECK_EQ(ews_stream_finish(s, &err), 0);
	/* Finishing between envelopes leaves the stream usable. */
	CHECK_EQ(ews_stream_feed(s, "<E/>", 4, &err), 0);
	CHECK_EQ(g.n, 3);
	CHECK_EQ(ews_stream_finish(s, NULL), 0);
	ews_stream_free(s);
	ews_stream_free(NULL);
	got_free(&g);
}

int main(void)
{
	RUN(fixture_has_five_envelopes);
	RUN(fixture_whole_bytewise_and_every_split);
	RUN(fixture_pairs_of_splits);
	RUN(fixture_random_chunks);
	RUN(several_streams_in_one_chunk);
	RUN(prefixed_roots);
	RUN(between_envelopes);
	RUN(tricky_content);
	RUN(declared_encoding_is_ignored);
	RUN(large_envelope_across_many_feeds);
	RUN(many_envelopes_with_new_names);
	RUN(empty_and_blank_bodies);
	RUN(envelope_over_the_limit);
	RUN(limit_counts_the_envelope_not_the_declaration);
	RUN(endless_envelope_fails_at_the_limit);
	RUN(garbage_between_envelopes);
	RUN(a_NUL_byte_between_envelopes);
	RUN(truncated_final_envelope);
	RUN(truncated_prolog_or_bom);
	RUN(callback_error_stops_the_stream);
	RUN(dtd_and_entities_refused);
	RUN(deep_nesting);
	RUN(malformed_envelopes);
	RUN(utf16_and_ucs4_are_never_decoded);
	RUN(a_new_context_mid_stream_guesses_nothing);
	RUN(error_names_the_byte);
	RUN(offset_and_empty_feeds);
	printf("# %zu inputs fed from start to finish\n", total_runs);
	return harness_done();
}
