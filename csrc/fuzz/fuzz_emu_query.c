/* libFuzzer target for the emulator's query-string and path-label parsing: the
 * ListAsyncInvokes query (maxResults, statusEquals, sortBy, sortOrder, submitTimeAfter/
 * Before, nextToken) and the percent-decoding of path labels (modelId, invocationArn,
 * guardrail labels) in the operations half (async.c, ops.c, ops_util.c), and the server
 * half's query helpers (srv_pct_decode, srv_query_get, srv_fault_parse in srv_util.c and
 * faults.c) that the control channel uses. Built by .ci/run-fuzz with every emulator
 * source except main.c and srv_io.c (emu_fuzz_io.c stands in).
 *
 * Input: one mode byte, then a query string (cut at a NUL: the server keeps C strings).
 *   mode & 3 == 0: GET /async-invoke?<query>   (ListAsyncInvokes)
 *   mode & 3 == 1: GET /async-invoke/<query>   (GetAsyncInvoke, the label decoded)
 *   mode & 3 == 2: POST /model/<query>/count-tokens with a small body (the model label)
 *   mode & 3 == 3: POST /guardrail/<query>/version/1/apply (the guardrail label)
 *   and in every mode the same bytes through srv_query_get and srv_fault_parse.
 * Checked: the operation answers 200 or a 4xx with a JSON error body (raw bytes >= 0x80
 * aside, as the message may quote a decoded value), a 200 list is JSON with an
 * asyncInvokeSummaries array; srv_pct_decode never grows the text; srv_fault_parse
 * returns 0 or -1 with an error string, and a NUL-terminated model within its buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu_fuzz_io.h"
#include "emulator/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

static json *parse_masked(const br_buf *b)
{
	br_buf t = BR_BUF_INIT;
	char err[200];
	json *v;
	br_buf_append(&t, b->data, b->len);
	for (size_t i = 0; i < t.len; i++)
		if (t.data[i] >= 0x80) t.data[i] = 'x';
	v = json_parse(t.data ? (const char *)t.data : "", t.len, err, sizeof err);
	if (!v) fprintf(stderr, "body is not JSON (%s): %.*s\n", err, (int)b->len, (const char *)b->data);
	br_buf_free(&t);
	return v;
}

static void run_op(const char *method, const char *path, const char *query, const char *body)
{
	emu_request rq;
	emu_response rs;
	json *v;
	memset(&rq, 0, sizeof rq);
	rq.method = method;
	rq.path = path;
	rq.query = query;
	rq.body = (const uint8_t *)body;
	rq.body_len = strlen(body);
	rq.region = "us-east-1";
	emu_response_init(&rs);
	CHECK(emu_ops_handle(&rq, &rs) == 1);
	CHECK(rs.status == 200 || (rs.status >= 400 && rs.status < 500));
	if (!rs.is_stream) {
		v = parse_masked(&rs.body);
		CHECK(v && v->type == JSON_OBJECT);
		if (rs.status >= 400) CHECK(json_get_str(v, "message"));
		else if (!strcmp(path, "/async-invoke")) {
			const json *a = json_get(v, "asyncInvokeSummaries");
			CHECK(a && a->type == JSON_ARRAY);
		}
		json_free(v);
	}
	emu_response_free(&rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q, *path;
	size_t n;
	int mode;

	if (size < 1 || size > 8192) return 0;
	mode = data[0];
	n = strnlen((const char *)data + 1, size - 1);
	q = malloc(n + 1);
	path = malloc(n + 64);
	CHECK(q && path);
	memcpy(q, data + 1, n);
	q[n] = 0;

	switch (mode & 3) {
	case 0:
		run_op("GET", "/async-invoke", q, "");
		break;
	case 1:
		snprintf(path, n + 64, "/async-invoke/%s", q);
		if (strlen(path) > 14 && !strchr(path + 14, '/')) run_op("GET", path, "", "");
		break;
	case 2:
		snprintf(path, n + 64, "/model/%s/count-tokens", q);
		if (n && !strchr(q, '/'))
			run_op("POST", path, "", "{\"input\":{\"converse\":{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}}}");
		break;
	case 3:
		snprintf(path, n + 64, "/guardrail/%s/version/1/apply", q);
		if (n && !strchr(q, '/'))
			run_op("POST", path, "", "{\"source\":\"INPUT\",\"content\":[{\"text\":{\"text\":\"hi\"}}]}");
		break;
	}

	/* the server half's helpers */
	for (int form = 0; form < 2; form++) {
		char *d = srv_pct_decode(q, n, form);
		CHECK(d && strlen(d) <= n);
		free(d);
		d = srv_query_get(q, "kind", form);
		CHECK(!d || strlen(d) <= n);
		free(d);
	}
	{
		srv_fault f;
		long count = 0;
		char model[16];
		const char *err = NULL;
		int rc = srv_fault_parse(q, &f, &count, model, sizeof model, &err);
		CHECK(rc == 0 || (rc == -1 && err && err[0]));
		CHECK(memchr(model, 0, sizeof model));
	}
	free(q);
	free(path);
	return 0;
}
