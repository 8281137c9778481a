/* Operations dispatch: method + path → one of the eleven operations (path labels are
 * percent-decoded here; the operations never see the raw path). */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

/* Splits the path into at most 8 segments (pointers into path, lengths). */
static size_t split(const char *path, const char **seg, size_t *len, size_t max)
{
	size_t n = 0;
	if (*path != '/') return 0;
	const char *p = path + 1;
	while (n < max) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		seg[n] = p;
		len[n] = l;
		n++;
		if (!e) break;
		p = e + 1;
	}
	return n;
}

static int seg_is(const char *s, size_t n, const char *lit) { return strlen(lit) == n && !memcmp(s, lit, n); }

static int bad_label(emu_response *rs, const char *what)
{
	emu_response_error(rs, 400, "ValidationException", "The %s in the request path is not validly percent-encoded.", what);
	return 1;
}

int emu_ops_handle(const emu_request *rq, emu_response *rs)
{
	const char *seg[9];
	size_t len[9];
	size_t n = split(rq->path, seg, len, 9);
	if (!n) return 0;
	if (!rs->status) rs->status = 200;
	int post = !strcmp(rq->method, "POST"), get = !strcmp(rq->method, "GET");
	if (n == 3 && seg_is(seg[0], len[0], "model") && post && len[1]) {
		static const char *ops[] = {"converse", "converse-stream", "invoke", "invoke-with-response-stream",
			"count-tokens", "invoke-with-bidirectional-stream", NULL};
		int op = -1;
		for (int i = 0; ops[i]; i++)
			if (seg_is(seg[2], len[2], ops[i])) op = i;
		if (op < 0) return 0;
		if (op == 5) {
			/* the server routes the bidirectional operation to emu_ops_bidi_* itself */
			emu_response_error(rs, 400, "ValidationException",
				"InvokeModelWithBidirectionalStream needs an event-stream request body (HTTP/2).");
			return 1;
		}
		char *id = ops_pct_decode(seg[1], len[1]);
		if (!id) return bad_label(rs, "modelId");
		if (!ops_model_known(id)) {
			emu_response_error(rs, 400, "ValidationException", "The provided model identifier is invalid.");
		} else if (op == 4 && strlen(id) > 256) {
			emu_response_error(rs, 400, "ValidationException",
				"1 validation error detected: Value '%s' at 'modelId' failed to satisfy constraint: Member must have length less than or equal to 256", id);
		} else switch (op) {
		case 0: ops_converse(rq, rs, id, 0); break;
		case 1: ops_converse(rq, rs, id, 1); break;
		case 2: ops_invoke(rq, rs, id, 0); break;
		case 3: ops_invoke(rq, rs, id, 1); break;
		case 4: ops_count_tokens(rq, rs, id); break;
		}
		free(id);
		return 1;
	}
	if (n == 5 && seg_is(seg[0], len[0], "guardrail") && seg_is(seg[2], len[2], "version") &&
	    seg_is(seg[4], len[4], "apply") && post) {
		char *id = ops_pct_decode(seg[1], len[1]);
		char *ver = ops_pct_decode(seg[3], len[3]);
		if (!id || !ver) bad_label(rs, "guardrail label");
		else ops_apply_guardrail(rq, rs, id, ver);
		free(id);
		free(ver);
		return 1;
	}
	if (n == 2 && seg_is(seg[0], len[0], "guardrail-checks") && seg_is(seg[1], len[1], "invoke") && post) {
		ops_guardrail_checks(rq, rs);
		return 1;
	}
	if (seg_is(seg[0], len[0], "async-invoke")) {
		if (n == 1 && post) { ops_async_start(rq, rs); return 1; }
		if (n == 1 && get) { ops_async_list(rq, rs); return 1; }
		if (n == 2 && get && len[1]) {
			char *arn = ops_pct_decode(seg[1], len[1]);
			if (!arn) return bad_label(rs, "invocationArn");
			ops_async_get(rq, rs, arn);
			free(arn);
			return 1;
		}
	}
	return 0;
}
