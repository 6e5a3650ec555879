/* SPDX-License-Identifier: MIT */
/* api-page.c: GET /, the status page: the embedded HTML with headers that confine it. */
#include "api/api-page.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "api/api-int.h"

enum MHD_Result api_page(struct MHD_Connection *c, const char *method)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return api_reply_json(
			c, MHD_HTTP_METHOD_NOT_ALLOWED,
			json_pack("{s:s}", "error", "method not allowed; allowed: GET, HEAD"),
			MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	resp = MHD_create_response_from_buffer(api_page_html_len, (void *)(uintptr_t)api_page_html,
	                                       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                              "text/html; charset=utf-8");
	/* The policy allows the page's own inline script and style (by hash) and requests to its
	 * own origin, nothing else: data the page shows can never load or run anything. */
	(void)MHD_add_response_header(resp, "Content-Security-Policy", api_page_csp);
	(void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	(void)MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	r = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}
