/* Counters the tests read through GET /_emulator/requests: connections accepted (all, and
 * those that carried at least one non-admin request), requests served (admin requests
 * excluded), and a log of the last LOG_MAX requests (with the Content-Type each carried, so
 * that tests can see what a client sent). */
#include "server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MAX 1000

typedef struct {
	unsigned long conn;
	char method[8];
	char path[200];
	char content_type[100];
	int status, http2, has_ct;
} log_entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long n_conns, n_conns_h2, n_api_conns, n_requests;
static log_entry log_ring[LOG_MAX];
static size_t log_start, log_len;

unsigned long srv_stats_connection(int http2)
{
	pthread_mutex_lock(&mu);
	unsigned long id = ++n_conns;
	if (http2) n_conns_h2++;
	pthread_mutex_unlock(&mu);
	return id;
}

void srv_stats_request(unsigned long conn, int first, const char *method, const char *path,
		       int status, int http2, const char *content_type)
{
	pthread_mutex_lock(&mu);
	n_requests++;
	if (first) n_api_conns++;
	log_entry *e;
	if (log_len < LOG_MAX) {
		e = &log_ring[(log_start + log_len++) % LOG_MAX];
	} else {
		e = &log_ring[log_start];
		log_start = (log_start + 1) % LOG_MAX;
	}
	e->conn = conn;
	snprintf(e->method, sizeof e->method, "%s", method ? method : "");
	snprintf(e->path, sizeof e->path, "%s", path ? path : "");
	e->status = status;
	e->http2 = http2;
	e->has_ct = content_type != NULL;
	snprintf(e->content_type, sizeof e->content_type, "%s", content_type ? content_type : "");
	pthread_mutex_unlock(&mu);
}

void srv_stats_json(br_buf *b)
{
	char line[128];
	pthread_mutex_lock(&mu);
	snprintf(line, sizeof line,
		 "{\"connections\":%lu,\"api_connections\":%lu,\"h2_connections\":%lu,\"requests\":%lu,\"log\":[",
		 n_conns, n_api_conns, n_conns_h2, n_requests);
	br_buf_append_str(b, line);
	for (size_t i = 0; i < log_len; i++) {
		const log_entry *e = &log_ring[(log_start + i) % LOG_MAX];
		snprintf(line, sizeof line, "%s{\"connection\":%lu,\"method\":\"%s\",\"status\":%d,\"http2\":%s,\"path\":\"",
			 i ? "," : "", e->conn, e->method, e->status, e->http2 ? "true" : "false");
		br_buf_append_str(b, line);
		srv_json_escape(b, e->path);
		br_buf_append_str(b, "\",\"content_type\":");
		if (e->has_ct) {
			br_buf_append_str(b, "\"");
			srv_json_escape(b, e->content_type);
			br_buf_append_str(b, "\"");
		} else {
			br_buf_append_str(b, "null");
		}
		br_buf_append_str(b, "}");
	}
	br_buf_append_str(b, "]}");
	pthread_mutex_unlock(&mu);
}

void srv_stats_reset(void)
{
	pthread_mutex_lock(&mu);
	n_conns = n_conns_h2 = n_api_conns = n_requests = 0;
	log_start = log_len = 0;
	pthread_mutex_unlock(&mu);
}

void srv_stats_cleanup(void)
{
	srv_stats_reset();
}
