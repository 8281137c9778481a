/* Dispatch of one complete request: control channel, credential endpoints,
 * authentication, pre-response faults, the operations, then mid-stream faults and the
 * headers every response carries (x-amzn-RequestId, Date). */
#include "server.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BEDROCK_SUFFIX "http://internal.amazon.com/coral/com.amazon.bedrock/"

void srv_error(srv_reply *r, int status, const char *type, const char *suffix,
	       int cap_message, const char *msg)
{
	char et[256];
	emu_response_free(&r->rs);
	r->rs.status = status;
	snprintf(et, sizeof et, "%s:%s", type, suffix ? suffix : BEDROCK_SUFFIX);
	emu_response_add_header(&r->rs, "x-amzn-ErrorType", et);
	emu_response_add_header(&r->rs, "content-type", "application/json");
	br_buf_append_str(&r->rs.body, cap_message ? "{\"Message\":\"" : "{\"message\":\"");
	srv_json_escape(&r->rs.body, msg);
	br_buf_append_str(&r->rs.body, "\"}");
}

/* The service's exceptions: HTTP status and a default message. */
static const struct {
	const char *name;
	int status;
	const char *message;
} service_errors[] = {
	{ "AccessDeniedException", 403, "You don't have access to the model with the specified model ID." },
	{ "ResourceNotFoundException", 404, "The specified resource could not be found." },
	{ "ValidationException", 400, "The input fails to satisfy the constraints specified by the service." },
	{ "ConflictException", 400, "The request conflicts with the current state of the resource." },
	{ "ServiceQuotaExceededException", 400, "Your request exceeds the service quota for your account." },
	{ "ThrottlingException", 429, "Too many requests, please wait before trying again." },
	{ "ModelNotReadyException", 429, "The model is not ready to serve inference requests. Try again later." },
	{ "ModelTimeoutException", 408, "Model has timed out in processing the request. Try your request again." },
	{ "ModelErrorException", 424, "The model returned an error while processing the request." },
	{ "ModelStreamErrorException", 424, "The model returned an error while streaming the response." },
	{ "InternalServerException", 500, "The server encountered an internal error while processing the request." },
	{ "ServiceUnavailableException", 503, "Bedrock is unable to process your request." },
};

void srv_error_fault(const srv_fault *f, const char *model, srv_reply *r)
{
	int status = 400;
	const char *msg = "The emulator injected this error.";
	for (size_t i = 0; i < sizeof service_errors / sizeof service_errors[0]; i++)
		if (strcmp(service_errors[i].name, f->exception) == 0) {
			status = service_errors[i].status;
			msg = service_errors[i].message;
		}
	if (f->status > 0) status = (int)f->status;
	if (f->message[0]) msg = f->message;
	srv_error(r, status, f->exception, NULL, 0, msg);

	int model_error = strcmp(f->exception, "ModelErrorException") == 0;
	int stream_error = strcmp(f->exception, "ModelStreamErrorException") == 0;
	if (!model_error && !stream_error) return;
	/* reopen the object srv_error closed, then add the modeled members */
	br_buf *b = &r->rs.body;
	if (b->len) b->len--;
	char num[32];
	snprintf(num, sizeof num, "%ld", f->original_status > 0 ? f->original_status : 500);
	br_buf_append_str(b, ",\"originalStatusCode\":");
	br_buf_append_str(b, num);
	if (model_error) {
		const char *res = f->resource_name[0] ? f->resource_name : model;
		if (res && res[0]) {
			br_buf_append_str(b, ",\"resourceName\":\"");
			srv_json_escape(b, res);
			br_buf_append_byte(b, '"');
		}
	} else {
		br_buf_append_str(b, ",\"originalMessage\":\"");
		srv_json_escape(b, f->original_message[0] ? f->original_message : msg);
		br_buf_append_byte(b, '"');
	}
	br_buf_append_byte(b, '}');
}

static int has_header(const emu_response *rs, const char *lname)
{
	for (size_t i = 0; i < rs->nheaders; i++)
		if (strcasecmp(rs->headers[i].name, lname) == 0) return 1;
	return 0;
}

void srv_finish_headers(emu_response *rs)
{
	if (!has_header(rs, "x-amzn-requestid")) {
		char id[37];
		srv_uuid(id);
		emu_response_add_header(rs, "x-amzn-RequestId", id);
	}
	if (!has_header(rs, "date")) {
		char d[40];
		srv_http_date(d);
		emu_response_add_header(rs, "Date", d);
	}
}

int srv_is_bidi(const char *method, const char *path)
{
	static const char suffix[] = "/invoke-with-bidirectional-stream";
	size_t n = strlen(path), ns = sizeof suffix - 1;
	return strcmp(method, "POST") == 0 && strncmp(path, "/model/", 7) == 0 && n > 7 + ns &&
	       strcmp(path + n - ns, suffix) == 0 && memchr(path + 7, '/', n - 7 - ns) == NULL;
}

/* Applies a pre-response fault; 1 when it produced the whole answer. */
static int apply_pre(const srv_fault *f, const char *model, srv_reply *r)
{
	const char *msg = f->message[0] ? f->message : NULL;
	switch (f->kind) {
	case SRV_F_THROTTLE:
		srv_error(r, 429, "ThrottlingException", NULL, 0,
			  msg ? msg : "Too many requests, please wait before trying again.");
		return 1;
	case SRV_F_INTERNAL:
		srv_error(r, 500, "InternalServerException", NULL, 0,
			  msg ? msg : "The server encountered an internal error while processing the request.");
		return 1;
	case SRV_F_UNAVAILABLE:
		srv_error(r, 503, "ServiceUnavailableException", NULL, 0,
			  msg ? msg : "Bedrock is unable to process your request.");
		return 1;
	case SRV_F_ERROR:
		srv_error_fault(f, model, r);
		return 1;
	case SRV_F_STALL:
		r->pre_delay_ms = f->ms;
		return 0;
	case SRV_F_HANG:
		r->pre_delay_ms = -1;
		return 0;
	default:
		return 0;
	}
}

static void record(srv_request *rq, srv_reply *r)
{
	int first = 0;
	if (rq->conn_used && !*rq->conn_used) {
		*rq->conn_used = 1;
		first = 1;
	}
	const char *ct = NULL;
	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcmp(rq->headers[i].name, "content-type") == 0) {
			ct = rq->headers[i].value;
			break;
		}
	srv_stats_request(rq->conn_id, first, rq->method, rq->path, r->rs.status, rq->http2, ct);
	if (srv_cfg.verbose)
		fprintf(stderr, "bedrock-emulator: conn %lu %s %s %s -> %d\n", rq->conn_id,
			rq->http2 ? "h2" : "h1", rq->method, rq->path, r->rs.status);
}

void srv_dispatch(srv_request *rq, srv_reply *r)
{
	char model[512];
	srv_fault f;
	r->event_delay_ms = srv_pacing_get();
	if (srv_admin_handle(rq, r)) {
		srv_finish_headers(&r->rs);
		return;
	}
	if (srv_creds_handle(rq, r)) goto done;
	if (srv_is_bidi(rq->method, rq->path)) {
		srv_error(r, 400, "ValidationException", NULL, 0,
			  "InvokeModelWithBidirectionalStream is only available over HTTP/2.");
		goto done;
	}
	if (!srv_cfg.no_auth) {
		srv_auth a;
		if (srv_auth_check(rq, "bedrock", 1, NULL, 0, &a) != 0) {
			srv_auth_reply(&a, r);
			goto done;
		}
		if (a.region[0]) snprintf(rq->region, sizeof rq->region, "%s", a.region);
	}
	srv_model_of(rq->path, model, sizeof model);
	if (srv_faults_take_pre(model, &f) && apply_pre(&f, model, r)) goto done;

	emu_request view;
	srv_request_view(rq, &view);
	if (!emu_ops_handle(&view, &r->rs)) {
		srv_error(r, 404, "UnknownOperationException", NULL, 0,
			  "The requested operation is not recognized by the service.");
		goto done;
	}
	if (r->rs.is_stream && r->rs.status == 200 && srv_faults_take_mid(model, &f)) {
		if (f.kind == SRV_F_OOM) {
			/* adding event `after` to the response fails, so the stream ends the way
			 * a producer that runs out of memory ends it */
			r->rs.fail_set = 1;
			r->rs.fail_from = (size_t)f.after;
		} else {
			r->mid = f;
		}
	}
done:
	srv_finish_headers(&r->rs);
	record(rq, r);
}

emu_bidi *srv_dispatch_bidi_open(srv_request *rq, srv_reply *r, srv_bidi **vb)
{
	char model[512];
	srv_fault f;
	srv_auth a;
	emu_bidi *b = NULL;
	*vb = NULL;
	memset(&a, 0, sizeof a);
	r->event_delay_ms = srv_pacing_get();
	if (!srv_cfg.no_auth) {
		if (srv_auth_check(rq, "bedrock", 1, "STREAMING-AWS4-HMAC-SHA256-EVENTS", 1, &a) != 0) {
			srv_auth_reply(&a, r);
			goto done;
		}
		if (a.region[0]) snprintf(rq->region, sizeof rq->region, "%s", a.region);
	}
	srv_model_of(rq->path, model, sizeof model);
	if (srv_faults_take_pre(model, &f) && apply_pre(&f, model, r)) goto done;
	emu_request view;
	srv_request_view(rq, &view);
	b = emu_ops_bidi_open(&view, &r->rs);
	if (!b || r->rs.status != 200) {
		if (b) emu_ops_bidi_free(b);
		b = NULL;
		if (r->rs.status == 200)
			srv_error(r, 500, "InternalServerException", NULL, 0, "could not open the stream");
		goto done;
	}
	*vb = srv_bidi_new(&a, !srv_cfg.no_auth && !a.bearer);
	if (!*vb) {
		emu_ops_bidi_free(b);
		b = NULL;
		srv_error(r, 500, "InternalServerException", NULL, 0, "out of memory");
		goto done;
	}
	r->bidi = 1;
	r->rs.is_stream = 1;
	/* kind=oom is for streams a producer encodes; this one's frames answer its input */
	if (srv_faults_take_mid(model, &f) && f.kind != SRV_F_OOM) r->mid = f;
done:
	memset(&a, 0, sizeof a);
	srv_finish_headers(&r->rs);
	record(rq, r);
	return b;
}
