/* The async-invoke trio: StartAsyncInvoke (POST /async-invoke), GetAsyncInvoke
 * (GET /async-invoke/{invocationArn}) and ListAsyncInvokes (GET /async-invoke?...).
 * Jobs live in process memory behind one mutex; their status is computed from the wall
 * clock when read (InProgress until complete_ms() after submission, then Completed,
 * or Failed when the modelInput mentions "fail"). */
#include "ops.h"
#include "model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_COMPLETE_MS 2000
#define DEFAULT_MAX_RESULTS 1000

typedef struct {
	char id[16];
	char *arn, *model_arn, *token;   /* token may be NULL */
	char *output_cfg;                /* compact JSON of outputDataConfig */
	unsigned long long params_hash;  /* of modelId, modelInput, outputDataConfig, tags */
	long long submit_ms;
	unsigned long seq;
	int fails;
} job;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static job *g_jobs;
static size_t g_njobs, g_cap;
static unsigned long g_seq;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --async-ms, else BEDROCK_EMULATOR_ASYNC_MS, else DEFAULT_COMPLETE_MS. */
static long complete_ms(void)
{
	if (emu_cfg.async_ms_set && emu_cfg.async_ms >= 0) return emu_cfg.async_ms;
	const char *e = getenv("BEDROCK_EMULATOR_ASYNC_MS");
	if (e && *e) {
		long v = strtol(e, NULL, 10);
		if (v >= 0) return v;
	}
	return DEFAULT_COMPLETE_MS;
}

static void iso_time(char *out, size_t n, long long ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	/* fields are reduced modulo their range so the compiler can bound the output */
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
		 (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (int)(ms % 1000));
}

/* Parses YYYY-MM-DDTHH:MM:SS[.fff](Z|±hh:mm) into ms; -1 when malformed. */
static long long parse_iso(const char *s)
{
	int Y, M, D, h, m, sec, used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &used) != 6 || used != 19) return -1;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = Y - 1900; tm.tm_mon = M - 1; tm.tm_mday = D;
	tm.tm_hour = h; tm.tm_min = m; tm.tm_sec = sec;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -1;
	long long ms = (long long)timegm(&tm) * 1000;
	s += 19;
	if (*s == '.') {
		s++;
		int digits = 0, frac = 0;
		while (*s >= '0' && *s <= '9') { if (digits < 3) { frac = frac * 10 + (*s - '0'); digits++; } s++; }
		if (!digits) return -1;
		while (digits < 3) { frac *= 10; digits++; }
		ms += frac;
	}
	if (*s == 'Z' && !s[1]) return ms;
	int oh, om;
	if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2 && strlen(s) == 6)
		return ms - (*s == '+' ? 1 : -1) * ((long long)oh * 3600 + om * 60) * 1000;
	return -1;
}

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ULL;
	return h;
}

static unsigned long long hash_member(unsigned long long h, const json *body, const char *key)
{
	const json *v = json_get(body, key);
	br_buf t = BR_BUF_INIT;
	if (v) {
		json_writer w;
		jw_init(&w, &t);
		jw_value(&w, v);
	}
	h = fnv(h, key, strlen(key));
	h = fnv(h, t.data ? t.data : (const uint8_t *)"", t.len);
	br_buf_free(&t);
	return h;
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p) memcpy(p, s, n);
	return p;
}

/* Writes the members shared by GetAsyncInvoke and the list summaries. */
static void write_job(json_writer *w, const job *j, long long now)
{
	long delay = complete_ms();
	int done = now - j->submit_ms >= delay;
	char t[40];
	jw_obj(w);
	if (j->token) jw_kstr(w, "clientRequestToken", j->token);
	if (done) {
		iso_time(t, sizeof t, j->submit_ms + delay);
		jw_kstr(w, "endTime", t);
	}
	if (done && j->fails)
		jw_kstr(w, "failureMessage", "The model input asked the emulator to fail this job.");
	jw_kstr(w, "invocationArn", j->arn);
	iso_time(t, sizeof t, done ? j->submit_ms + delay : j->submit_ms);
	jw_kstr(w, "lastModifiedTime", t);
	jw_kstr(w, "modelArn", j->model_arn);
	jw_key(w, "outputDataConfig");
	jw_raw(w, j->output_cfg, strlen(j->output_cfg));
	jw_kstr(w, "status", !done ? "InProgress" : j->fails ? "Failed" : "Completed");
	iso_time(t, sizeof t, j->submit_ms);
	jw_kstr(w, "submitTime", t);
	jw_obj_end(w);
}

void ops_async_start(const emu_request *rq, emu_response *rs)
{
	json *body = ops_parse_body(rq, rs);
	if (!body) return;
	if (ops_validate("StartAsyncInvokeRequest", body, rs)) { json_free(body); return; }
	const char *model = json_get_str(body, "modelId");
	const char *token = json_get_str(body, "clientRequestToken");
	const char *uri = json_get_str(json_get(json_get(body, "outputDataConfig"), "s3OutputDataConfig"), "s3Uri");
	if (!ops_model_known(model)) {
		json_free(body);
		emu_response_error(rs, 400, "ValidationException", "The provided model identifier is invalid.");
		return;
	}
	if (!uri || strncmp(uri, "s3://", 5) || strlen(uri) < 8) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value '%s' at 'outputDataConfig.s3OutputDataConfig.s3Uri' failed to satisfy constraint: Member must satisfy regular expression pattern: s3://[a-z0-9][\\.\\-a-z0-9]{1,61}[a-z0-9](/.*)?", uri ? uri : "");
		json_free(body);
		return;
	}
	unsigned long long h = 1469598103934665603ULL;
	h = hash_member(h, body, "modelId");
	h = hash_member(h, body, "modelInput");
	h = hash_member(h, body, "outputDataConfig");
	h = hash_member(h, body, "tags");
	br_buf in = BR_BUF_INIT;
	json_writer w;
	jw_init(&w, &in);
	jw_value(&w, json_get(body, "modelInput"));
	br_buf_append_byte(&in, 0);
	int fails = strstr((const char *)in.data, "fail") != NULL;
	br_buf_free(&in);

	pthread_mutex_lock(&g_lock);
	const job *found = NULL;
	for (size_t i = 0; token && i < g_njobs; i++)
		if (g_jobs[i].token && !strcmp(g_jobs[i].token, token)) { found = &g_jobs[i]; break; }
	if (found && found->params_hash != h) {
		pthread_mutex_unlock(&g_lock);
		json_free(body);
		emu_response_error(rs, 400, "ConflictException",
			"The clientRequestToken was already used by a request with different parameters.");
		return;
	}
	char arn[512];
	if (found) {
		snprintf(arn, sizeof arn, "%s", found->arn);
	} else {
		if (g_njobs == g_cap) {
			size_t cap = g_cap ? g_cap * 2 : 16;
			job *nj = realloc(g_jobs, cap * sizeof *nj);
			if (!nj) {
				pthread_mutex_unlock(&g_lock);
				json_free(body);
				emu_response_error(rs, 500, "InternalServerException", "out of memory");
				return;
			}
			g_jobs = nj;
			g_cap = cap;
		}
		job *j = &g_jobs[g_njobs];
		memset(j, 0, sizeof *j);
		j->seq = ++g_seq;
		j->submit_ms = now_ms();
		j->fails = fails;
		j->params_hash = h;
		/* 12 characters of [a-z0-9], derived from the sequence number and the token */
		unsigned long long x = fnv(1469598103934665603ULL, &j->seq, sizeof j->seq);
		if (token) x = fnv(x, token, strlen(token));
		for (int i = 0; i < 12; i++) { j->id[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36]; x = x / 36 ^ (x << 29); }
		snprintf(arn, sizeof arn, "arn:aws:bedrock:%s:" OPS_ACCOUNT ":async-invoke/%s", ops_region(rq), j->id);
		char marn[600];
		if (!strncmp(model, "arn:", 4)) snprintf(marn, sizeof marn, "%s", model);
		else snprintf(marn, sizeof marn, "arn:aws:bedrock:%s::foundation-model/%s", ops_region(rq), model);
		br_buf oc = BR_BUF_INIT;
		jw_init(&w, &oc);
		jw_value(&w, json_get(body, "outputDataConfig"));
		br_buf_append_byte(&oc, 0);
		j->arn = dup_str(arn);
		j->model_arn = dup_str(marn);
		j->token = token ? dup_str(token) : NULL;
		j->output_cfg = (char *)oc.data;
		if (!j->arn || !j->model_arn || (token && !j->token) || !j->output_cfg) {
			free(j->arn); free(j->model_arn); free(j->token); free(j->output_cfg);
			pthread_mutex_unlock(&g_lock);
			json_free(body);
			emu_response_error(rs, 500, "InternalServerException", "out of memory");
			return;
		}
		g_njobs++;
	}
	pthread_mutex_unlock(&g_lock);
	jw_init(&w, &rs->body);
	jw_obj(&w);
	jw_kstr(&w, "invocationArn", arn);
	jw_obj_end(&w);
	emu_response_add_header(rs, "Content-Type", "application/json");
	json_free(body);
}

void ops_async_get(const emu_request *rq, emu_response *rs, const char *arn)
{
	(void)rq;
	if (strlen(arn) > 2048) {
		emu_response_error(rs, 400, "ValidationException",
			"1 validation error detected: Value at 'invocationArn' failed to satisfy constraint: Member must have length less than or equal to 2048");
		return;
	}
	pthread_mutex_lock(&g_lock);
	const job *j = NULL;
	for (size_t i = 0; i < g_njobs && !j; i++)
		if (!strcmp(g_jobs[i].arn, arn)) j = &g_jobs[i];
	if (j) {
		json_writer w;
		jw_init(&w, &rs->body);
		write_job(&w, j, now_ms());
	}
	pthread_mutex_unlock(&g_lock);
	if (!j) {
		emu_response_error(rs, 400, "ValidationException", "The specified async invocation %s does not exist.", arn);
		return;
	}
	emu_response_add_header(rs, "Content-Type", "application/json");
}

static int enum_ok(const char *v, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (!strcmp(v, set[i])) return 1;
	return 0;
}

typedef struct {
	long long sub_ms;
	unsigned long seq;
} cursor;

static int cmp_asc(const job *a, const job *b)
{
	if (a->submit_ms != b->submit_ms) return a->submit_ms < b->submit_ms ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int g_desc;
static int cmp_jobs(const void *x, const void *y)
{
	const job *a = *(const job *const *)x, *b = *(const job *const *)y;
	return g_desc ? -cmp_asc(a, b) : cmp_asc(a, b);
}

void ops_async_list(const emu_request *rq, emu_response *rs)
{
	static const char *const status_v[] = {"InProgress", "Completed", "Failed", NULL};
	static const char *const order_v[] = {"Ascending", "Descending", NULL};
	long long max = DEFAULT_MAX_RESULTS, after = -1, before = -1;
	const char *status = NULL;
	int desc = 1, have_cursor = 0;
	cursor cur = {0, 0};
	char *vals[8] = {0};   /* owned decoded values, freed at the end */
	size_t nvals = 0;
	const char *q = rq->query ? rq->query : "";
	char errmsg[600] = "";
	while (*q && !errmsg[0]) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t kl = eq ? (size_t)(eq - q) : len;
		char *key = ops_pct_decode(q, kl);
		char *val = eq ? ops_pct_decode(eq + 1, len - kl - 1) : ops_pct_decode("", 0);
		if (!key || !val) {
			snprintf(errmsg, sizeof errmsg, "The query string is not validly percent-encoded.");
		} else if (!strcmp(key, "maxResults")) {
			char *e;
			max = strtoll(val, &e, 10);
			if (!*val || *e) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must be an integer", val);
			else if (max < 1) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1", val);
			else if (max > 1000) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000", val);
		} else if (!strcmp(key, "statusEquals")) {
			if (!enum_ok(val, status_v)) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at 'statusEquals' failed to satisfy constraint: Member must satisfy enum value set: [InProgress, Completed, Failed]", val);
			else if (nvals < 8) { status = val; vals[nvals++] = val; val = NULL; }
		} else if (!strcmp(key, "sortBy")) {
			if (strcmp(val, "SubmissionTime")) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [SubmissionTime]", val);
		} else if (!strcmp(key, "sortOrder")) {
			if (!enum_ok(val, order_v)) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [Ascending, Descending]", val);
			else desc = !strcmp(val, "Descending");
		} else if (!strcmp(key, "submitTimeAfter") || !strcmp(key, "submitTimeBefore")) {
			long long t = parse_iso(val);
			if (t < 0) snprintf(errmsg, sizeof errmsg, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be an ISO 8601 timestamp", val, key);
			else if (key[10] == 'A') after = t;
			else before = t;
		} else if (!strcmp(key, "nextToken")) {
			br_buf raw = BR_BUF_INIT;
			int ok = !emu_b64_decode(val, strlen(val), &raw) && raw.len < 64;
			if (ok) {
				char t[64];
				if (raw.len) memcpy(t, raw.data, raw.len);   /* data is NULL when empty */
				t[raw.len] = 0;
				int used = 0;
				ok = sscanf(t, "v1:%lld:%lu%n", &cur.sub_ms, &cur.seq, &used) == 2 && (size_t)used == raw.len;
			}
			br_buf_free(&raw);
			if (!ok) snprintf(errmsg, sizeof errmsg, "The provided nextToken is invalid.");
			have_cursor = 1;
		}
		free(key);
		free(val);
		q = amp ? amp + 1 : q + len;
	}
	if (errmsg[0]) {
		for (size_t i = 0; i < nvals; i++) free(vals[i]);
		emu_response_error(rs, 400, "ValidationException", "%s", errmsg);
		return;
	}

	long long now = now_ms();
	long delay = complete_ms();
	pthread_mutex_lock(&g_lock);
	const job **sel = malloc((g_njobs ? g_njobs : 1) * sizeof *sel);
	size_t n = 0;
	for (size_t i = 0; sel && i < g_njobs; i++) {
		const job *j = &g_jobs[i];
		int done = now - j->submit_ms >= delay;
		const char *st = !done ? "InProgress" : j->fails ? "Failed" : "Completed";
		if (status && strcmp(status, st)) continue;
		if (after >= 0 && j->submit_ms <= after) continue;
		if (before >= 0 && j->submit_ms >= before) continue;
		sel[n++] = j;
	}
	g_desc = desc;   /* under g_lock, so the comparator's flag is not raced */
	if (sel) qsort(sel, n, sizeof *sel, cmp_jobs);
	size_t start = 0;
	if (have_cursor) {
		job key;
		memset(&key, 0, sizeof key);
		key.submit_ms = cur.sub_ms;
		key.seq = cur.seq;
		while (start < n && (desc ? cmp_asc(sel[start], &key) >= 0 : cmp_asc(sel[start], &key) <= 0)) start++;
	}
	json_writer w;
	jw_init(&w, &rs->body);
	jw_obj(&w);
	jw_key(&w, "asyncInvokeSummaries");
	jw_arr(&w);
	size_t end = start + (size_t)max < n ? start + (size_t)max : n;
	for (size_t i = start; i < end; i++) write_job(&w, sel[i], now);
	jw_arr_end(&w);
	if (end < n && end > start) {
		char t[64];
		snprintf(t, sizeof t, "v1:%lld:%lu", sel[end - 1]->submit_ms, sel[end - 1]->seq);
		br_buf tok = BR_BUF_INIT;
		emu_b64_encode((const uint8_t *)t, strlen(t), &tok);
		jw_key(&w, "nextToken");
		jw_strn(&w, (const char *)tok.data, tok.len);
		br_buf_free(&tok);
	}
	jw_obj_end(&w);
	pthread_mutex_unlock(&g_lock);
	free(sel);
	for (size_t i = 0; i < nvals; i++) free(vals[i]);
	emu_response_add_header(rs, "Content-Type", "application/json");
}
