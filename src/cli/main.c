/* SPDX-License-Identifier: MIT */
/* main.c: the calsync command line. Wiring only: each command lives in its own function. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <uv.h>

#include "base/compat.h"
#include "calsync-config.h"
#include "calsync-vcs.h"
#include "cli/check.h"
#include "cli/decode.h"
#include "cli/run.h"
#include "cli/status.h"

/* Exit status: 0 success, 1 failure, 2 a command line we do not understand (as GNU tools do). */
#define EXIT_USAGE 2

typedef int command_fn(int argc, char **argv);

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command {
	const char *name;
	const char *args;
	const char *summary;
	command_fn *run;
} commands[] = {
	{.name = "version",
         .args = "[--json]",
         .summary = "Print the versions of calsync and of the libraries it runs with.",
         .run = cmd_version},
	{.name = "run",
         .args = "[-c FILE]",
         .summary = "Run the daemon: mirror the configured calendars, write presence changes.",
         .run = run_main},
	{.name = "status",
         .args = "[-c FILE]",
         .summary = "Show mailboxes by state, parked ones, streams, last errors, webhooks.",
         .run = status_main},
	{.name = "check",
         .args = "[-c FILE]",
         .summary = "Test the server, account, impersonation and subscriptions; print fixes.",
         .run = check_main},
	{.name = "decode",
         .args = "[FILE]",
         .summary = "Decode EWS responses (FILE or stdin) to JSON, one line per envelope.",
         .run = decode_main},
	{.name = "help", .args = "", .summary = "Print this help.", .run = cmd_help},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: calsync <command> [options]\n"
	           "\n"
	           "calsync mirrors Exchange calendars over EWS and turns them into presence.\n"
	           "\n"
	           "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-7s %-9s %s\n", commands[i].name, commands[i].args,
		        commands[i].summary);
	fprintf(f, "\n"
	           "Options:\n"
	           "  -h, --help        Same as 'help'.\n"
	           "  --version         Same as 'version'.\n");
}

static int usage_error(const char *command, const char *what, const char *arg)
{
	fprintf(stderr, "calsync%s%s: %s '%s'\nTry 'calsync --help' for more information.\n",
	        command != NULL ? " " : "", command != NULL ? command : "", what, arg);
	return EXIT_USAGE;
}

static int cmd_help(int argc, char **argv)
{
	if (argc > 1)
		return usage_error("help", "unexpected argument", argv[1]);
	usage(stdout);
	return EXIT_SUCCESS;
}

/* The libraries whose versions `calsync version` reports, as they are at run time (which may
 * be newer than the headers we were built with). */
enum {
	LIB_CURL,
	LIB_XML2,
	LIB_SQLITE,
	LIB_MHD,
	LIB_UV,
	LIB_JANSSON,
	LIB_COUNT
};

struct lib_version {
	const char *name;
	char version[32];
};

static void lib_versions(struct lib_version out[LIB_COUNT])
{
	const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
	/* libxml2 reports itself as a number: 20914 is 2.9.14. */
	long xml = strtol(xmlParserVersion, NULL, 10);

	out[LIB_CURL].name = "libcurl";
	snprintf(out[LIB_CURL].version, sizeof(out[LIB_CURL].version), "%s", curl->version);
	out[LIB_XML2].name = "libxml2";
	snprintf(out[LIB_XML2].version, sizeof(out[LIB_XML2].version), "%ld.%ld.%ld", xml / 10000,
	         xml / 100 % 100, xml % 100);
	out[LIB_SQLITE].name = "sqlite";
	snprintf(out[LIB_SQLITE].version, sizeof(out[LIB_SQLITE].version), "%s",
	         sqlite3_libversion());
	out[LIB_MHD].name = "libmicrohttpd";
	snprintf(out[LIB_MHD].version, sizeof(out[LIB_MHD].version), "%s", MHD_get_version());
	out[LIB_UV].name = "libuv";
	snprintf(out[LIB_UV].version, sizeof(out[LIB_UV].version), "%s", uv_version_string());
	out[LIB_JANSSON].name = "jansson";
	snprintf(out[LIB_JANSSON].version, sizeof(out[LIB_JANSSON].version), "%s",
	         jansson_version_str());
}

static int print_version_json(const struct lib_version libs[LIB_COUNT])
{
	json_t *root = json_object();
	json_t *libraries = json_object();
	char *text;

	json_object_set_new(root, "name", json_string("calsync"));
	json_object_set_new(root, "version", json_string(CALSYNC_VERSION));
	json_object_set_new(root, "vcs", json_string(CALSYNC_VCS_TAG));
	for (int i = 0; i < LIB_COUNT; i++)
		json_object_set_new(libraries, libs[i].name, json_string(libs[i].version));
	json_object_set_new(root, "libraries", libraries);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL) {
		fprintf(stderr, "calsync: cannot encode the version as JSON\n");
		return EXIT_FAILURE;
	}
	printf("%s\n", text);
	free(text);
	return EXIT_SUCCESS;
}

static int cmd_version(int argc, char **argv)
{
	struct lib_version libs[LIB_COUNT];
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return usage_error("version", "unknown option", argv[i]);
	}
	lib_versions(libs);
	if (json)
		return print_version_json(libs);

	/* The git description only when it adds something, i.e. not in a release tarball. */
	if (strcmp(CALSYNC_VCS_TAG, CALSYNC_VERSION) == 0)
		printf("calsync %s\n", CALSYNC_VERSION);
	else
		printf("calsync %s (%s)\n", CALSYNC_VERSION, CALSYNC_VCS_TAG);
	for (int i = 0; i < LIB_COUNT; i++)
		printf("%s %s\n", libs[i].name, libs[i].version);
	return EXIT_SUCCESS;
}

static int run_command(int argc, char **argv)
{
	const char *name = argv[0];

	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
		name = "help";
	else if (strcmp(name, "--version") == 0)
		name = "version";
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].run(argc, argv);
	}
	return usage_error(NULL, name[0] == '-' ? "unknown option" : "unknown command", name);
}

/* libxml2 reports what matters to us through each parser's err; left alone, it would also
 * print some errors (encoding conversion failures) straight to stderr, where a daemon's
 * stray lines end up in journald without context. */
static void xml_quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int main(int argc, char **argv)
{
	int rc;

	xmlInitParser();
	xmlSetGenericErrorFunc(NULL, xml_quiet);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	rc = run_command(argc - 1, argv + 1);
	/* Output that did not arrive is a failure, e.g. `calsync version >/dev/full`. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "calsync: cannot write to standard output: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	return rc;
}
