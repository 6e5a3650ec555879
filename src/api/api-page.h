/* SPDX-License-Identifier: MIT */
/*
 * api-page.h: GET /, the status page (docs/status-page.md). The page is
 * src/api/status-page.html, compiled in by scripts/embed-page at build time together with its
 * Content-Security-Policy. It is static and holds no data: the browser reads the API with the
 * token the user gives it, so GET / needs no token.
 */
#pragma once

#include <microhttpd.h>
#include <stddef.h>

/* The page's bytes and its policy (generated: status-page.c in the build tree). */
extern const unsigned char api_page_html[];
extern const size_t api_page_html_len;
extern const char api_page_csp[];

/* Replies to a request for "/": the page for GET and HEAD, 405 for any other method. */
enum MHD_Result api_page(struct MHD_Connection *c, const char *method);
