/* The control channel under /_emulator/: faults, pacing, counters. Every request needs
 * the header x-emulator-admin: 1, which no SDK sends, so ordinary traffic can never
 * reach it by accident; it is never authenticated and never forwarded to operations. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_reply(srv_reply *r, int status, br_buf *body)
{
	r->rs.status = status;
	emu_response_add_header(&r->rs, "content-type", "application/json");
	br_buf_free(&r->rs.body);
	r->rs.body = *body;
	memset(body, 0, sizeof *body);
}

static void admin_error(srv_reply *r, int status, const char *msg)
{
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, "{\"error\":\"");
	srv_json_escape(&b, msg);
	br_buf_append_str(&b, "\"}");
	json_reply(r, status, &b);
}

static void faults_reply(srv_reply *r)
{
	br_buf b = BR_BUF_INIT;
	char line[64];
	br_buf_append_str(&b, "{\"ok\":true,\"faults\":");
	srv_faults_json(&b);
	snprintf(line, sizeof line, ",\"pacing_ms\":%ld}", srv_pacing_get());
	br_buf_append_str(&b, line);
	json_reply(r, 200, &b);
}

int srv_admin_handle(srv_request *rq, srv_reply *r)
{
	if (strncmp(rq->path, "/_emulator/", 11) != 0 && strcmp(rq->path, "/_emulator") != 0)
		return 0;
	const char *flag = srv_request_header(rq, "x-emulator-admin");
	if (!flag || strcmp(flag, "1") != 0) {
		srv_error(r, 403, "AccessDeniedException", NULL, 0,
			  "The emulator control channel requires the header x-emulator-admin: 1.");
		return 1;
	}
	const char *what = rq->path + 11;
	const char *m = rq->method;
	if (strcmp(what, "faults") == 0) {
		if (strcmp(m, "POST") == 0) {
			srv_fault f;
			long count;
			char model[256];
			const char *err = "invalid fault";
			if (srv_fault_parse(rq->query, &f, &count, model, sizeof model, &err) != 0) {
				admin_error(r, 400, err);
				return 1;
			}
			if (srv_faults_add(&f, count, model) != 0) {
				admin_error(r, 500, "out of memory");
				return 1;
			}
			faults_reply(r);
		} else if (strcmp(m, "DELETE") == 0) {
			srv_faults_clear();
			faults_reply(r);
		} else if (strcmp(m, "GET") == 0) {
			faults_reply(r);
		} else {
			admin_error(r, 405, "use GET, POST or DELETE");
		}
	} else if (strcmp(what, "pacing") == 0) {
		if (strcmp(m, "POST") == 0) {
			char *ms = srv_query_get(rq->query, "ms", 1);
			char *end = NULL;
			long v = ms ? strtol(ms, &end, 10) : -1;
			int ok = ms && *ms && *end == '\0' && v >= 0;
			free(ms);
			if (!ok) {
				admin_error(r, 400, "ms must be an integer >= 0");
				return 1;
			}
			srv_pacing_set(v);
		} else if (strcmp(m, "GET") != 0) {
			admin_error(r, 405, "use GET or POST");
			return 1;
		}
		faults_reply(r);
	} else if (strcmp(what, "requests") == 0) {
		if (strcmp(m, "DELETE") == 0) {
			srv_stats_reset();
		} else if (strcmp(m, "GET") != 0) {
			admin_error(r, 405, "use GET or DELETE");
			return 1;
		}
		br_buf b = BR_BUF_INIT;
		srv_stats_json(&b);
		json_reply(r, 200, &b);
	} else if (strcmp(what, "reset") == 0 && strcmp(m, "POST") == 0) {
		srv_faults_clear();
		srv_pacing_set(srv_cfg.event_delay_ms);
		srv_stats_reset();
		faults_reply(r);
	} else if (strcmp(what, "health") == 0) {
		br_buf b = BR_BUF_INIT;
		br_buf_append_str(&b, "{\"ok\":true}");
		json_reply(r, 200, &b);
	} else {
		admin_error(r, 404, "unknown control endpoint");
	}
	return 1;
}
