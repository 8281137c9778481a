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
		if (c->in.data[size] != '\r' || c->in.data[size + 1] != '\n') {
			simple_error(c, 400, "bad chunk");
			return -1;
		}
		if (br_buf_append(&rq->body, c->in.data, (size_t)size) != BR_OK) return -1;
		br_buf_consume(&c->in, (size_t)size + 2);
	}
}

/* RFC 9110 tchar: the characters of a method or a field name. */
static int is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
		return 1;
	return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Field-value characters: VCHAR, obs-text, SP and HTAB; no other control character. */
static int is_value_char(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || (ch > 0x20 && ch != 0x7f);
}

/* The framing of a request body as RFC 9112 §6 defines it, refusing what a lenient
 * parser would guess at (request smuggling material): Content-Length is 1*DIGIT, once;
 * Transfer-Encoding is a list whose only (hence final) coding is chunked; not both.
 * Returns 0 and sets *chunked / *len, or the status to answer with *why. */
static int body_framing(const srv_request *rq, int http10, int *chunked,
			unsigned long long *len, const char **why)
{
	const char *cl = NULL;
	int ncl = 0, nte = 0, codings = 0, seen_chunked = 0, other = 0;
	*chunked = 0;
	*len = 0;
	for (size_t i = 0; i < rq->nheaders; i++) {
		const char *n = rq->headers[i].name, *v = rq->headers[i].value;
		if (strcmp(n, "content-length") == 0) {
			cl = v;
			ncl++;
		} else if (strcmp(n, "transfer-encoding") == 0) {
			nte++;
			/* a comma-separated list of codings, OWS around each, empty elements allowed */
			const char *p = v;
			while (*p) {
				while (*p == ' ' || *p == '\t' || *p == ',') p++;
				const char *t = p;
				while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != ';') p++;
				size_t tl = (size_t)(p - t);
				if (tl == 0) {
					if (*p == ';') { *why = "bad transfer-encoding"; return 400; }
					continue;
				}
				codings++;
				if (tl == 7 && strncasecmp(t, "chunked", 7) == 0) {
					seen_chunked++;
				} else {
					other = 1;
				}
				while (*p == ' ' || *p == '\t') p++;
				if (*p && *p != ',') { *why = "bad transfer-encoding"; return 400; }
			}
		}
	}
	if (nte) {
		if (http10) { *why = "transfer-encoding in an HTTP/1.0 request"; return 400; }
		if (ncl) { *why = "both content-length and transfer-encoding"; return 400; }
		if (other) { *why = "unsupported transfer coding"; return 501; }
		if (seen_chunked != 1 || codings != 1) { *why = "bad transfer-encoding"; return 400; }
		*chunked = 1;
		return 0;
	}
	if (ncl > 1) { *why = "more than one content-length"; return 400; }
	if (ncl == 1) {
		size_t n = strlen(cl);
		if (n == 0 || n > 19 || strspn(cl, "0123456789") != n) {
			*why = "bad content-length";
			return 400;
		}
		*len = strtoull(cl, NULL, 10);
		if (*len > MAX_BODY) { *why = "body too large"; return 413; }
	}
	return 0;
}

/* Parses the request head (NUL-terminated copy of the bytes up to and including the
 * empty line) into rq, strictly: lines end with CRLF (no bare CR or LF), the request
 * line is `method SP target SP HTTP/1.x`, field names are tokens directly followed by a
 * colon, no obs-fold, no control characters in values, one Host on HTTP/1.1.
 * Returns 0, or the status to answer with *why. */
static int parse_head(char *head, size_t n, srv_request *rq, int *http10, const char **why)
{
	/* RFC 9112 §2.2: empty lines before the request line are ignored */
	size_t pos = 0;
	while (pos + 1 < n && head[pos] == '\r' && head[pos + 1] == '\n') pos += 2;
	for (size_t i = pos; i < n; i++) {
		if ((head[i] == '\r' && (i + 1 >= n || head[i + 1] != '\n')) ||
		    (head[i] == '\n' && (i == 0 || head[i - 1] != '\r'))) {
			*why = "bare CR or LF in the request head";
			return 400;
		}
	}
	char *line = head + pos;
	char *eol = strstr(line, "\r\n");
	if (!eol) { *why = "bad request line"; return 400; }
	*eol = '\0';
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 ||
	    (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)) {
		*why = "bad request line";
		return 400;
	}
	for (char *m = line; m < sp1; m++)
		if (!is_tchar((unsigned char)*m)) { *why = "bad request line"; return 400; }
	for (char *t = sp1 + 1; t < sp2; t++)
		if ((unsigned char)*t <= 0x20 || *t == 0x7f) { *why = "bad request line"; return 400; }
	*sp1 = '\0';
	*sp2 = '\0';
	*http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
	rq->method = strdup(line);
	if (!rq->method || srv_request_set_target(rq, sp1 + 1, strlen(sp1 + 1)) != 0) {
		*why = "out of memory";
		return 500;
	}
	int hosts = 0;
	for (line = eol + 2; *line; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (!eol) { *why = "bad header line"; return 400; }
		*eol = '\0';
		if (*line == '\0') break; /* the empty line ending the head */
		if (*line == ' ' || *line == '\t') { *why = "obsolete line folding"; return 400; }
		char *colon = line;
		while (is_tchar((unsigned char)*colon)) colon++;
		if (colon == line || *colon != ':') { *why = "bad header line"; return 400; }
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t') v++;
		size_t vl = strlen(v);
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
		for (size_t i = 0; i < vl; i++)
			if (!is_value_char((unsigned char)v[i])) { *why = "bad header value"; return 400; }
		if ((size_t)(colon - line) == 4 && strncasecmp(line, "host", 4) == 0) hosts++;
		if (srv_request_add_header(rq, line, (size_t)(colon - line), v, vl) != 0) {
			*why = "out of memory";
			return 500;
		}
	}
	if (hosts > 1 || (!*http10 && hosts == 0)) {
		*why = hosts ? "more than one host header" : "missing host header";
		return 400;
	}
	return 0;
}

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
	char *head = malloc(head_end + 1);
	if (!head) return -1;
	memcpy(head, c->in.data, head_end);
	head[head_end] = '\0';
	br_buf_consume(&c->in, head_end);
	int rc = -1, http10 = 0, st;
	const char *why = NULL;
	/* a NUL inside the head would hide the rest of it from the parser */
	if (memchr(head, '\0', head_end) != NULL) {
		simple_error(c, 400, "NUL in the request head");
		goto done;
	}
	if ((st = parse_head(head, head_end, rq, &http10, &why)) != 0) {
		simple_error(c, st, why);
		goto done;
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
	int chunked;
	unsigned long long len;
	if ((st = body_framing(rq, http10, &chunked, &len, &why)) != 0) {
		simple_error(c, st, why);
		goto done;
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
	if (rep->mid.kind == SRV_F_TRUNCATE || rep->mid.kind == SRV_F_OVERSIZE) rc = -1;
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
