/* Injected faults and pacing, set through the admin channel and taken by dispatch.
 * Faults form one FIFO list; each has a remaining count (or is permanent) and an
 * optional model-id prefix. Pre-response faults (throttle, 5xx, error, stall, hang) are
 * taken before the operation runs; mid-stream ones only by responses that are event
 * streams. */
#include "server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fault_node {
	srv_fault f;
	long left;              /* remaining uses; <= 0 means permanent */
	char model[256];
	struct fault_node *next;
} fault_node;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static fault_node *head;
static long pacing_ms;
static int pacing_set;

static const struct { const char *name; int kind; } kinds[] = {
	{ "throttle", SRV_F_THROTTLE }, { "internal", SRV_F_INTERNAL },
	{ "500", SRV_F_INTERNAL }, { "unavailable", SRV_F_UNAVAILABLE },
	{ "503", SRV_F_UNAVAILABLE }, { "stall", SRV_F_STALL }, { "hang", SRV_F_HANG },
	{ "stream-stall", SRV_F_STREAM_STALL }, { "reset", SRV_F_RESET },
	{ "goaway", SRV_F_GOAWAY }, { "crc", SRV_F_CRC }, { "truncate", SRV_F_TRUNCATE },
	{ "exception", SRV_F_EXCEPTION }, { "error", SRV_F_ERROR },
	{ "oversize", SRV_F_OVERSIZE }, { "endless", SRV_F_ENDLESS }, { "oom", SRV_F_OOM },
};

static const char *kind_name(int k)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].kind == k) return kinds[i].name;
	return "?";
}

static int is_pre(int kind)
{
	return kind == SRV_F_THROTTLE || kind == SRV_F_INTERNAL || kind == SRV_F_UNAVAILABLE ||
	       kind == SRV_F_ERROR || kind == SRV_F_STALL || kind == SRV_F_HANG;
}

/* Reads an integer query parameter; 1 when present and valid, 0 absent, -1 invalid. */
static int qnum(const char *query, const char *key, long *out)
{
	char *v = srv_query_get(query, key, 1);
	if (!v) return 0;
	char *end = NULL;
	long n = strtol(v, &end, 10);
	int ok = *v && end && *end == '\0';
	free(v);
	if (!ok) return -1;
	*out = n;
	return 1;
}

/* A shape name fit for x-amzn-ErrorType: 1-63 characters of [A-Za-z0-9_.#-]. */
static int good_error_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof ((srv_fault *)0)->exception) return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '#' || c == '-'))
			return 0;
	}
	return 1;
}

int srv_fault_parse(const char *query, srv_fault *f, long *count, char *model,
		    size_t model_cap, const char **err)
{
	int rc = -1;
	char *kind = srv_query_get(query, "kind", 1);
	char *exc = srv_query_get(query, "exception", 1);
	char *msg = srv_query_get(query, "message", 1);
	char *mdl = srv_query_get(query, "model", 1);
	char *res = srv_query_get(query, "resourceName", 1);
	char *omsg = srv_query_get(query, "originalMessage", 1);
	memset(f, 0, sizeof *f);
	*count = 1;
	model[0] = '\0';
	if (!kind) {
		*err = "missing kind";
		goto done;
	}
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].name, kind) == 0) f->kind = kinds[i].kind;
	if (f->kind == SRV_F_NONE) {
		*err = "unknown kind";
		goto done;
	}
	f->ms = f->kind == SRV_F_STALL ? 1000 : -1;
	if (f->kind == SRV_F_HANG) f->ms = -1;
	if (qnum(query, "count", count) < 0 || qnum(query, "after", &f->after) < 0 ||
	    qnum(query, "ms", &f->ms) < 0 || qnum(query, "status", &f->status) < 0 ||
	    qnum(query, "originalStatusCode", &f->original_status) < 0) {
		*err = "count, after, ms, status and originalStatusCode must be integers";
		goto done;
	}
	if (f->after < 0) {
		*err = "after must be >= 0";
		goto done;
	}
	if (f->kind == SRV_F_EXCEPTION)
		snprintf(f->exception, sizeof f->exception, "%s", exc ? exc : "internalServerException");
	if (f->kind == SRV_F_ERROR) {
		if (!exc || !good_error_name(exc)) {
			*err = "kind=error needs exception=<ShapeName> (1-63 of A-Z a-z 0-9 _ . # -)";
			goto done;
		}
		if (f->status != 0 && (f->status < 400 || f->status > 599)) {
			*err = "status must be 400-599";
			goto done;
		}
		if (f->original_status != 0 && (f->original_status < 100 || f->original_status > 599)) {
			*err = "originalStatusCode must be 100-599";
			goto done;
		}
		snprintf(f->exception, sizeof f->exception, "%s", exc);
		if (res) snprintf(f->resource_name, sizeof f->resource_name, "%s", res);
		if (omsg) snprintf(f->original_message, sizeof f->original_message, "%s", omsg);
	}
	if (msg) snprintf(f->message, sizeof f->message, "%s", msg);
	if (mdl) snprintf(model, model_cap, "%s", mdl);
	rc = 0;
done:
	free(kind);
	free(exc);
	free(msg);
	free(mdl);
	free(res);
	free(omsg);
	return rc;
}

int srv_faults_add(const srv_fault *f, long count, const char *model)
{
	fault_node *n = calloc(1, sizeof *n);
	if (!n) return -1;
	n->f = *f;
	n->left = count;
	snprintf(n->model, sizeof n->model, "%s", model ? model : "");
	pthread_mutex_lock(&mu);
	fault_node **pp = &head;
	while (*pp) pp = &(*pp)->next;
	*pp = n;
	pthread_mutex_unlock(&mu);
	return 0;
}

void srv_faults_clear(void)
{
	pthread_mutex_lock(&mu);
	while (head) {
		fault_node *n = head;
		head = n->next;
		free(n);
	}
	pthread_mutex_unlock(&mu);
}

static int take(const char *model, int pre, srv_fault *f)
{
	int found = 0;
	pthread_mutex_lock(&mu);
	for (fault_node **pp = &head; *pp; pp = &(*pp)->next) {
		fault_node *n = *pp;
		if (is_pre(n->f.kind) != pre) continue;
		if (n->model[0] && strncmp(model ? model : "", n->model, strlen(n->model)) != 0)
			continue;
		*f = n->f;
		found = 1;
		if (n->left > 0 && --n->left == 0) {
			*pp = n->next;
			free(n);
		}
		break;
	}
	pthread_mutex_unlock(&mu);
	return found;
}

int srv_faults_take_pre(const char *model, srv_fault *f)
{
	return take(model, 1, f);
}

int srv_faults_take_mid(const char *model, srv_fault *f)
{
	return take(model, 0, f);
}

long srv_pacing_get(void)
{
	pthread_mutex_lock(&mu);
	long ms = pacing_set ? pacing_ms : srv_cfg.event_delay_ms;
	pthread_mutex_unlock(&mu);
	return ms;
}

void srv_pacing_set(long ms)
{
	pthread_mutex_lock(&mu);
	pacing_ms = ms < 0 ? 0 : ms;
	pacing_set = 1;
	pthread_mutex_unlock(&mu);
}

void srv_faults_json(br_buf *b)
{
	char line[256];
	br_buf_append_byte(b, '[');
	pthread_mutex_lock(&mu);
	for (fault_node *n = head; n; n = n->next) {
		snprintf(line, sizeof line,
			 "%s{\"kind\":\"%s\",\"count\":%ld,\"after\":%ld,\"ms\":%ld,\"status\":%ld,",
			 n == head ? "" : ",", kind_name(n->f.kind), n->left, n->f.after, n->f.ms,
			 n->f.status);
		br_buf_append_str(b, line);
		br_buf_append_str(b, "\"model\":\"");
		srv_json_escape(b, n->model);
		br_buf_append_str(b, "\",\"exception\":\"");
		srv_json_escape(b, n->f.exception);
		br_buf_append_str(b, "\"}");
	}
	pthread_mutex_unlock(&mu);
	br_buf_append_byte(b, ']');
}

void srv_faults_cleanup(void)
{
	srv_faults_clear();
}
