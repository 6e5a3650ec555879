/* SPDX-License-Identifier: MIT */
/*
 * config-secret.c: passwords, tokens and webhook secrets. The attributes that name where one
 * comes from (a file or an environment variable; never the value inline), and reading it once
 * the whole document was checked: one line, bounded, wiped when freed.
 */
#include "config/config-int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/xalloc.h"

void cfgp_wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Reads a secret from a file: at most CFG_MAX_SECRET bytes, one trailing newline dropped, not
 * empty, no other line break or NUL. */
int cfgp_read_secret_file(struct parser *p, xmlNode *n, const char *a, const char *path, char **dst)
{
	char *full = cfgp_resolve(p, path);
	char *buf = NULL;
	size_t len = 0;
	mode_t mode = 0;
	int rc = cfgp_read_whole(full, CFG_MAX_SECRET, &buf, &len, &mode);

	if (rc != 0) {
		rc = cfgp_fail_attr(p, n, a, path, "cannot read %s: %s", full,
		                    cfgp_read_problem(rc));
		goto out;
	}
	if ((mode & S_IROTH) != 0)
		cfgp_warn(p, "%s:%ld: <%s %s>: %s is readable by everyone; chmod o-r it", p->name,
		          line_of(n), name_of(n), a, full);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\n', len) != NULL || memchr(buf, '\0', len) != NULL) {
		rc = cfgp_fail_attr(p, n, a, path,
		                    "must hold the secret on one line, and nothing else");
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

int cfgp_read_pem(struct parser *p, xmlNode *n, const char *a, const char *path, char **dst)
{
	char *buf = NULL;
	size_t len = 0;
	mode_t mode = 0;
	int rc = cfgp_read_whole(path, CFG_MAX_PEM, &buf, &len, &mode);

	if (rc != 0)
		return cfgp_fail_attr(p, n, a, path, "cannot read: %s", cfgp_read_problem(rc));
	if (strcmp(a, "key") == 0 && (mode & S_IROTH) != 0)
		cfgp_warn(p, "%s:%ld: <%s %s>: %s is readable by everyone; chmod o-r it", p->name,
		          line_of(n), name_of(n), a, path);
	if (len == 0 || memchr(buf, '\0', len) != NULL || strstr(buf, "-----BEGIN ") == NULL) {
		explicit_bzero(buf, len);
		free(buf);
		return cfgp_fail_attr(p, n, a, path, "not a PEM file (no -----BEGIN line)");
	}
	*dst = buf;
	return 0;
}

int cfgp_read_secret_env(struct parser *p, xmlNode *n, const char *a, const char *var, char **dst)
{
	const char *v = getenv(var);

	if (v == NULL || v[0] == '\0')
		return cfgp_fail_attr(p, n, a, var, "the environment variable is not set or empty");
	if (strlen(v) > CFG_MAX_SECRET || strpbrk(v, "\r\n") != NULL)
		return cfgp_fail_attr(p, n, a, var,
		                      "the value must be one line of at most %u bytes",
		                      CFG_MAX_SECRET);
	*dst = xstrdup(v);
	return 0;
}

/* password_file / password_env (or token_*): at most one of them, and never the inline form. */
int cfgp_get_secret(struct parser *p, xmlNode *n, const char *what, const char *file_attr,
                    const char *env_attr, struct secret_src *src)
{
	const char *file = cfgp_attr(p, n, file_attr);
	const char *env = cfgp_attr(p, n, env_attr);
	char upper[16] = "";
	int rc;

	for (size_t i = 0; what[i] != '\0' && i + 1 < sizeof(upper); i++)
		upper[i] = (char)toupper((unsigned char)what[i]);
	if (cfgp_attr(p, n, what) != NULL)
		return cfgp_fail(p, n,
		                 "an inline %s is refused; put it in a file only calsync can read "
		                 "(%s=\"/etc/calsync/%s\", mode 0600) or an environment variable "
		                 "(%s=\"CALSYNC_%s\")",
		                 what, file_attr, what, env_attr, upper);
	if (file != NULL && env != NULL)
		return cfgp_fail(p, n, "give one of %s and %s, not both", file_attr, env_attr);
	if (file != NULL) {
		rc = cfgp_check_text(p, n, file_attr, file, false);
		*src = (struct secret_src){.attr = file_attr, .value = file, .is_file = true};
		return rc;
	}
	if (env != NULL) {
		if (env[0] == '\0' || strpbrk(env, "= ") != NULL)
			return cfgp_fail_attr(p, n, env_attr, env,
			                      "not an environment variable name");
		*src = (struct secret_src){.attr = env_attr, .value = env};
	}
	return 0;
}

int cfgp_read_secret(struct parser *p, const struct secret_src *src, char **dst)
{
	if (src->attr == NULL || p->offline)
		return 0;
	if (src->is_file)
		return cfgp_read_secret_file(p, p->account, src->attr, src->value, dst);
	return cfgp_read_secret_env(p, p->account, src->attr, src->value, dst);
}
