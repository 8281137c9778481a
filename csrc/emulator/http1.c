/* HTTP/1.1 on one connection: blocking reads of requests (Content-Length or chunked
 * bodies, Expect: 100-continue), keep-alive, and responses with Content-Length or, for
 * event streams, chunked transfer with pacing and mid-stream faults from the streamer. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEAD   (64u * 1024u)
#define MAX_BODY   (64u * 1024u * 1024u)

/* Reads until c->in holds at least n bytes: 0, or -1 when the peer left. */
static int fill(srv_conn *c, size_t n)
{
	uint8_t tmp[16384];
	while (c->in.len < n) {
		if (srv_io_wait_readable(&c->io, -1) != 1) return -1;
		long r = srv_io_read(&c->io, tmp, sizeof tmp);
		if (r <= 0) return -1;
		if (br_buf_append(&c->in, tmp, (size_t)r) != BR_OK) return -1;
	}
	return 0;
}

/* Index just past the first "\r\n" at or after from, or 0 when not there yet. */
static size_t find_crlf(const br_buf *b, size_t from)
{
	for (size_t i = from; i + 1 < b->len; i++)
		if (b->data[i] == '\r' && b->data[i + 1] == '\n') return i + 2;
	return 0;
}

static void simple_error(srv_conn *c, int status, const char *msg)
{
	char head[256];
	size_t n = strlen(msg);
	int len = snprintf(head, sizeof head,
			   "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n",
			   status, srv_reason(status), n);
	srv_io_write(&c->io, head, (size_t)len);
	srv_io_write(&c->io, msg, n);
}

/* Reads a chunked body into rq->body; 0 or -1 (error answered when it is the client's). */
static int read_chunked(srv_conn *c, srv_request *rq)
{
	for (;;) {
		size_t eol;
		while ((eol = find_crlf(&c->in, 0)) == 0) {
			if (c->in.len > 1024 || fill(c, c->in.len + 1) != 0) return -1;
		}
		/* chunk-size = 1*HEXDIG, then optional ";ext" up to the CRLF (RFC 9112 §7.1).
		 * Parsed inside the line only: the buffer is not NUL-terminated. */
		unsigned long long size = 0;
		size_t i = 0, digits = 0;
		for (; i < eol - 2; i++, digits++) {
			int v = srv_hexval(c->in.data[i]);
			if (v < 0 || size > MAX_BODY) break;
			size = size * 16 + (unsigned)v;
		}
		if (digits == 0 || (i < eol - 2 && c->in.data[i] != ';' && size <= MAX_BODY) ||
		    size > MAX_BODY || rq->body.len + size > MAX_BODY) {
			simple_error(c, size > MAX_BODY ? 413 : 400, "bad chunk");
			return -1;
		}
		br_buf_consume(&c->in, eol);
		if (size == 0) {
			/* Trailers, up to the empty line. */
			for (;;) {
				while ((eol = find_crlf(&c->in, 0)) == 0)
					if (c->in.len > MAX_HEAD || fill(c, c->in.len + 1) != 0) return -1;
				int empty = eol == 2;
				br_buf_consume(&c->in, eol);
				if (empty) return 0;
			}
		}
		if (fill(c, (size_t)size + 2) != 0) return -1;
		if (br_buf_append(&rq->body, c->in.data, (size_t)size) != BR_OK) return -1;
		br_buf_consume(&c->in, (size_t)size + 2);
	}
}

static int has_token_ci(const char *s, const char *tok);

/* Reads one request: 1 read, 0 the peer closed between requests, -1 error. Sets *keep. */
static int read_request(srv_conn *c, srv_request *rq, int *keep)
{
	size_t head_end = 0;
	for (;;) {
		for (size_t i = 3; i < c->in.len; i++) {
			if (memcmp(c->in.data + i - 3, "\r\n\r\n", 4) == 0) {
				head_end = i + 1;
				break;
			}
		}
		if (head_end) break;
		if (c->in.len > MAX_HEAD) {
			simple_error(c, 431, "request head too large");
			return -1;
		}
		size_t had = c->in.len;
		if (fill(c, had + 1) != 0) return had == 0 ? 0 : -1;
	}
	/* Tolerate blank lines before the request line (RFC 9112 2.2). */
	char *head = malloc(head_end + 1);
	if (!head) return -1;
	memcpy(head, c->in.data, head_end);
	head[head_end] = '\0';
	br_buf_consume(&c->in, head_end);
	int rc = -1;
	char *save = NULL;
	char *line = strtok_r(head, "\r\n", &save);
	char *sp1 = line ? strchr(line, ' ') : NULL;
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		simple_error(c, 400, "bad request line");
		goto done;
	}
	*sp1 = '\0';
	*sp2 = '\0';
	int http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
	rq->method = strdup(line);
	if (!rq->method || srv_request_set_target(rq, sp1 + 1, strlen(sp1 + 1)) != 0) goto done;
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		char *colon = strchr(line, ':');
		if (!colon || colon == line) {
			simple_error(c, 400, "bad header line");
			goto done;
		}
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t') v++;
		size_t vl = strlen(v);
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
		if (srv_request_add_header(rq, line, (size_t)(colon - line), v, vl) != 0) goto done;
	}
	const char *conn = srv_request_header(rq, "connection");
	*keep = http10 ? (conn && strcasecmp(conn, "keep-alive") == 0)
		       : !(conn && strcasecmp(conn, "close") == 0);

	/* The bidirectional operation needs HTTP/2: answer at once instead of waiting for a
	 * request body that would only end after the answer. The connection then closes. */
	if (srv_is_bidi(rq->method, rq->path)) {
		*keep = 0;
		rc = 1;
		goto done;
	}
	const char *te = srv_request_header(rq, "transfer-encoding");
	const char *cl = srv_request_header(rq, "content-length");
	int chunked = te && has_token_ci(te, "chunked");
	unsigned long long len = 0;
	if (!chunked && cl) {
		char *end = NULL;
		len = strtoull(cl, &end, 10);
		if (end == cl || *end != '\0') {
			simple_error(c, 400, "bad content-length");
			goto done;
		}
		if (len > MAX_BODY) {
			simple_error(c, 413, "body too large");
			goto done;
		}
	}
	const char *expect = srv_request_header(rq, "expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 && (chunked || len > 0)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (srv_io_write(&c->io, cont, sizeof cont - 1) != 0) goto done;
	}
	if (chunked) {
		if (read_chunked(c, rq) != 0) goto done;
	} else if (len > 0) {
		if (fill(c, (size_t)len) != 0) goto done;
		if (br_buf_append(&rq->body, c->in.data, (size_t)len) != BR_OK) goto done;
		br_buf_consume(&c->in, (size_t)len);
	}
	rc = 1;
done:
	free(head);
	return rc;
}

/* 1 when the comma-separated list s names tok (case-insensitive). */
static int has_token_ci(const char *s, const char *tok)
{
	size_t tl = strlen(tok);
	for (const char *p = s; *p; p++)
		if (strncasecmp(p, tok, tl) == 0) return 1;
	return 0;
}

/* Blocks until the client goes away (a hang fault). */
static void wait_for_disconnect(srv_conn *c)
{
	uint8_t tmp[4096];
	while (srv_io_wait_readable(&c->io, -1) == 1)
		if (srv_io_read(&c->io, tmp, sizeof tmp) <= 0) break;
}

/* The spelling the service uses on HTTP/1.1 for the headers it sends (names are stored
 * lower-case; HTTP/2 needs them so). Clients must not care, but some do. */
static const char *wire_name(const char *n)
{
	static const char *const names[] = {
		"x-amzn-RequestId", "x-amzn-ErrorType", "Content-Type", "Date",
		"X-Amzn-Bedrock-Content-Type", "X-Amzn-Bedrock-Input-Token-Count",
		"X-Amzn-Bedrock-Output-Token-Count", "X-Amzn-Bedrock-Invocation-Latency",
		"X-Amzn-Bedrock-PerformanceConfig-Latency", "X-Amzn-Bedrock-Service-Tier",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(n, names[i]) == 0) return names[i];
	return n;
}

static int write_head(srv_conn *c, const emu_response *rs, int stream, int keep, int head_only)
{
	br_buf h = BR_BUF_INIT;
	char line[128];
	snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", rs->status, srv_reason(rs->status));
	br_buf_append_str(&h, line);
	for (size_t i = 0; i < rs->nheaders; i++) {
		const char *n = rs->headers[i].name;
		if (strcasecmp(n, "content-length") == 0 || strcasecmp(n, "transfer-encoding") == 0 ||
		    strcasecmp(n, "connection") == 0)
			continue;
		br_buf_append_str(&h, wire_name(n));
		br_buf_append_str(&h, ": ");
		br_buf_append_str(&h, rs->headers[i].value);
		br_buf_append_str(&h, "\r\n");
	}
	if (stream) {
		br_buf_append_str(&h, "Transfer-Encoding: chunked\r\n");
	} else {
		snprintf(line, sizeof line, "Content-Length: %zu\r\n", head_only ? 0 : rs->body.len);
		br_buf_append_str(&h, line);
	}
	if (!keep) br_buf_append_str(&h, "Connection: close\r\n");
	br_buf_append_str(&h, "\r\n");
	int rc = srv_io_write(&c->io, h.data, h.len);
	br_buf_free(&h);
	return rc;
}

/* Writes the event stream as chunks; 0 when the connection may be reused, -1 not. */
static int write_stream(srv_conn *c, srv_reply *rep)
{
	srv_streamer s;
	srv_step st;
	br_buf out = BR_BUF_INIT;
	int rc = -1;
	srv_streamer_init(&s, rep);
	for (;;) {
		srv_streamer_step(&s, &st);
		if (st.kind == SRV_S_DATA) {
			char hdr[32];
			int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", st.n);
			if (st.n == 0) continue;
			br_buf_reset(&out);
			if (br_buf_reserve(&out, (size_t)hl + st.n + 2) != BR_OK) break;
			br_buf_append(&out, hdr, (size_t)hl);
			br_buf_append(&out, st.p, st.n);
			br_buf_append(&out, "\r\n", 2);
			if (srv_io_write(&c->io, out.data, out.len) != 0) break;
		} else if (st.kind == SRV_S_WAIT) {
			if (srv_sleep_ms(st.ms) != 0) break;
		} else if (st.kind == SRV_S_HANG) {
			wait_for_disconnect(c);
			break;
		} else if (st.kind == SRV_S_RESET || st.kind == SRV_S_GOAWAY) {
			srv_io_abort(&c->io);
			break;
		} else { /* END (IDLE cannot happen: no bidirectional streams on HTTP/1.1) */
			rc = srv_io_write(&c->io, "0\r\n\r\n", 5);
			break;
		}
	}
	br_buf_free(&out);
	srv_streamer_free(&s);
	if (rep->mid.kind == SRV_F_TRUNCATE) rc = -1;
	return rc;
}

/* Writes the reply; returns 1 when the connection stays open. */
static int write_reply(srv_conn *c, const srv_request *rq, srv_reply *rep, int keep)
{
	if (rep->pre_delay_ms < 0) {
		wait_for_disconnect(c);
		return 0;
	}
	if (rep->pre_delay_ms > 0 && srv_sleep_ms(rep->pre_delay_ms) != 0) return 0;
	if (rep->close_after) keep = 0;
	int head_only = strcmp(rq->method, "HEAD") == 0;
	int stream = rep->rs.is_stream && !head_only;
	if (write_head(c, &rep->rs, stream, keep, head_only) != 0) return 0;
	if (stream) return write_stream(c, rep) == 0 && keep;
	if (!head_only && rep->rs.body.len &&
	    srv_io_write(&c->io, rep->rs.body.data, rep->rs.body.len) != 0)
		return 0;
	return keep;
}

void srv_http1_serve(srv_conn *c)
{
	int used = 0;
	for (;;) {
		srv_request rq;
		srv_reply rep;
		int keep = 1;
		srv_request_init(&rq);
		rq.conn_id = c->id;
		rq.conn_used = &used;
		int r = read_request(c, &rq, &keep);
		if (r <= 0) {
			srv_request_free(&rq);
			break;
		}
		srv_reply_init(&rep);
		srv_dispatch(&rq, &rep);
		keep = write_reply(c, &rq, &rep, keep);
		srv_reply_free(&rep);
		srv_request_free(&rq);
		if (!keep || srv_stopping()) break;
	}
}
