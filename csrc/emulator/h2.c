/* HTTP/2 on one connection (cleartext prior knowledge or TLS ALPN h2) with a libnghttp2
 * server session. The connection thread runs a small event loop: flush what nghttp2
 * wants to send (coalesced into large writes), fire timers (pacing, stalls), wait for
 * input with poll. Streams are independent: pacing or a stall on one never blocks the
 * others. InvokeModelWithBidirectionalStream answers as soon as its HEADERS arrive and
 * writes output frames while the request body is still coming in. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <nghttp2/nghttp2.h>

#define MAX_BODY   (64u * 1024u * 1024u)
#define OUT_BATCH  (256u * 1024u)
#define MAX_NV     40

typedef struct h2_stream {
	int32_t id;
	srv_request rq;
	srv_reply rep;
	srv_streamer st;
	size_t body_off;        /* non-stream body: bytes already handed out */
	const uint8_t *pend;    /* stream: the rest of the current DATA step */
	size_t pend_n;
	long long due_ms;       /* timer: respond (pre_delay) or resume (pacing) at this time */
	int waiting_pre;        /* the response itself waits for due_ms */
	int deferred;           /* data deferred: waiting for due_ms, for input, or forever */
	int hang;
	int responded;
	int too_big;
	emu_bidi *ops;          /* bidirectional stream state of the operations */
	srv_bidi *vb;           /* bidirectional input verifier */
	char status[8], clen[24];
	struct h2_stream *next;
} h2_stream;

typedef struct {
	srv_conn *c;
	nghttp2_session *s;
	h2_stream *streams;
	int used;
	int abort_after_flush;  /* GOAWAY fault: drop the TCP connection once it is sent */
	br_buf out;
} h2_conn;

static h2_stream *stream_of(h2_conn *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

static void stream_free(h2_conn *h, h2_stream *st)
{
	for (h2_stream **pp = &h->streams; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
	srv_streamer_free(&st->st);
	if (st->ops) emu_ops_bidi_free(st->ops);
	srv_bidi_free(st->vb);
	srv_reply_free(&st->rep);
	srv_request_free(&st->rq);
	free(st);
}

static ssize_t data_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *source, void *user)
{
	h2_stream *st = source->ptr;
	h2_conn *h = user;
	(void)session;
	(void)id;
	if (!st->rep.rs.is_stream) {
		const br_buf *b = &st->rep.rs.body;
		size_t n = b->len - st->body_off;
		if (n > length) n = length;
		if (n) memcpy(buf, b->data + st->body_off, n);
		st->body_off += n;
		if (st->body_off == b->len) *flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	for (;;) {
		if (st->pend_n > 0) {
			size_t n = st->pend_n < length ? st->pend_n : length;
			memcpy(buf, st->pend, n);
			st->pend += n;
			st->pend_n -= n;
			return (ssize_t)n;
		}
		srv_step step;
		srv_streamer_step(&st->st, &step);
		switch (step.kind) {
		case SRV_S_DATA:
			st->pend = step.p;
			st->pend_n = step.n;
			continue;
		case SRV_S_WAIT:
			st->due_ms = srv_now_ms() + step.ms;
			st->deferred = 1;
			return NGHTTP2_ERR_DEFERRED;
		case SRV_S_IDLE:
			st->deferred = 1;
			return NGHTTP2_ERR_DEFERRED;
		case SRV_S_HANG:
			st->deferred = 1;
			st->hang = 1;
			return NGHTTP2_ERR_DEFERRED;
		case SRV_S_GOAWAY:
			nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
					      nghttp2_session_get_last_proc_stream_id(h->s),
					      NGHTTP2_INTERNAL_ERROR, NULL, 0);
			h->abort_after_flush = 1;
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		case SRV_S_RESET:
			/* nghttp2 answers this with RST_STREAM(INTERNAL_ERROR). */
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		default:
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return 0;
		}
	}
}

static int is_hop_header(const char *n)
{
	return strcmp(n, "connection") == 0 || strcmp(n, "transfer-encoding") == 0 ||
	       strcmp(n, "keep-alive") == 0 || strcmp(n, "upgrade") == 0 ||
	       strcmp(n, "proxy-connection") == 0 || strcmp(n, "content-length") == 0;
}

static void submit_response(h2_conn *h, h2_stream *st)
{
	nghttp2_nv nv[MAX_NV];
	size_t n = 0;
	emu_response *rs = &st->rep.rs;
	int head_only = strcmp(st->rq.method ? st->rq.method : "", "HEAD") == 0;
	snprintf(st->status, sizeof st->status, "%d", rs->status);
#define NV(nm, nl, v, vl) do { \
		nv[n].name = (uint8_t *)(nm); nv[n].namelen = (nl); \
		nv[n].value = (uint8_t *)(v); nv[n].valuelen = (vl); \
		nv[n].flags = NGHTTP2_NV_FLAG_NONE; n++; } while (0)
	NV(":status", 7, st->status, strlen(st->status));
	for (size_t i = 0; i < rs->nheaders && n < MAX_NV - 1; i++) {
		const char *nm = rs->headers[i].name;
		if (is_hop_header(nm)) continue;
		NV(nm, strlen(nm), rs->headers[i].value, strlen(rs->headers[i].value));
	}
	if (!rs->is_stream) {
		snprintf(st->clen, sizeof st->clen, "%zu", head_only ? 0 : rs->body.len);
		NV("content-length", 14, st->clen, strlen(st->clen));
	}
#undef NV
	nghttp2_data_provider prd;
	prd.source.ptr = st;
	prd.read_callback = data_read;
	int has_body = !head_only && (rs->is_stream || rs->body.len > 0);
	if (rs->is_stream) srv_streamer_init(&st->st, &st->rep);
	st->responded = 1;
	nghttp2_submit_response(h->s, st->id, nv, n, has_body ? &prd : NULL);
}

/* The request is complete (END_STREAM): dispatch it and answer, now or after a stall. */
static void request_done(h2_conn *h, h2_stream *st)
{
	if (st->ops) {
		/* Bidirectional: input ended, with or without the final empty frame. */
		if (!st->rep.bidi_done) {
			st->rep.bidi_done = 1;
			if (st->deferred && !st->hang && !st->due_ms) {
				st->deferred = 0;
				nghttp2_session_resume_data(h->s, st->id);
			}
		}
		return;
	}
	if (st->responded || st->waiting_pre) return;
	if (st->too_big) {
		srv_error(&st->rep, 413, "ValidationException", NULL, 0, "The request body is too large.");
		srv_finish_headers(&st->rep.rs);
		submit_response(h, st);
		return;
	}
	srv_dispatch(&st->rq, &st->rep);
	if (st->rep.pre_delay_ms < 0) {
		st->hang = 1;
		st->waiting_pre = 1;
	} else if (st->rep.pre_delay_ms > 0) {
		st->waiting_pre = 1;
		st->due_ms = srv_now_ms() + st->rep.pre_delay_ms;
	} else {
		submit_response(h, st);
	}
}

/* Moves bidirectional output forward after input produced frames. */
static void bidi_kick(h2_conn *h, h2_stream *st)
{
	if (st->deferred && !st->hang && !st->due_ms) {
		st->deferred = 0;
		nghttp2_session_resume_data(h->s, st->id);
	}
}

/* Opens the bidirectional stream and answers at once (or after a stall fault); on an
 * error answer, the rest of the request body is read and dropped. */
static void bidi_open(h2_conn *h, h2_stream *st)
{
	st->ops = srv_dispatch_bidi_open(&st->rq, &st->rep, &st->vb);
	if (st->rep.pre_delay_ms < 0) {
		st->hang = 1;
		st->waiting_pre = 1;
	} else if (st->rep.pre_delay_ms > 0) {
		st->waiting_pre = 1;
		st->due_ms = srv_now_ms() + st->rep.pre_delay_ms;
	} else {
		submit_response(h, st);
	}
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	h2_conn *h = user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	h2_stream *st = calloc(1, sizeof *st);
	if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->id = frame->hd.stream_id;
	srv_request_init(&st->rq);
	srv_reply_init(&st->rep);
	st->rq.http2 = 1;
	st->rq.conn_id = h->c->id;
	st->rq.conn_used = &h->used;
	st->next = h->streams;
	h->streams = st;
	nghttp2_session_set_stream_user_data(session, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	h2_conn *h = user;
	(void)session;
	(void)flags;
	if (frame->hd.type != NGHTTP2_HEADERS) return 0;
	h2_stream *st = stream_of(h, frame->hd.stream_id);
	if (!st || st->responded) return 0;
	if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
		free(st->rq.method);
		st->rq.method = strndup((const char *)value, valuelen);
		return st->rq.method ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (namelen == 5 && memcmp(name, ":path", 5) == 0)
		return srv_request_set_target(&st->rq, (const char *)value, valuelen) == 0
			       ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
	if (srv_request_add_header(&st->rq, (const char *)name, namelen, (const char *)value,
				   valuelen) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
	h2_conn *h = user;
	(void)session;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
	h2_stream *st = stream_of(h, frame->hd.stream_id);
	if (!st) return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
		if (!st->rq.method || !st->rq.path) {
			nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
			return 0;
		}
		if (srv_is_bidi(st->rq.method, st->rq.path)) bidi_open(h, st);
	}
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) request_done(h, st);
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	h2_conn *h = user;
	(void)session;
	(void)flags;
	h2_stream *st = stream_of(h, id);
	if (!st) return 0;
	if (st->ops && st->vb) {
		size_t before = emu_response_frames_total(&st->rep.rs);
		int r = srv_bidi_feed(st->vb, st->ops, data, len, &st->rep.rs);
		if (r != 0) st->rep.bidi_done = 1;
		if (r != 0 || emu_response_frames_total(&st->rep.rs) != before) bidi_kick(h, st);
		return 0;
	}
	if (st->responded || st->too_big) return 0;
	if (st->rq.body.len + len > MAX_BODY) {
		st->too_big = 1;
		br_buf_free(&st->rq.body);
		return 0;
	}
	if (br_buf_append(&st->rq.body, data, len) != BR_OK) return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
	h2_conn *h = user;
	(void)code;
	h2_stream *st = stream_of(h, id);
	if (!st) return 0;
	nghttp2_session_set_stream_user_data(session, id, NULL);
	stream_free(h, st);
	return 0;
}

/* Sends everything nghttp2 has queued, in writes of up to OUT_BATCH bytes. */
static int flush(h2_conn *h)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(h->s, &data);
		if (n < 0) return -1;
		if (n > 0 && br_buf_append(&h->out, data, (size_t)n) != BR_OK) return -1;
		if ((n == 0 && h->out.len > 0) || h->out.len >= OUT_BATCH) {
			if (srv_io_write(&h->c->io, h->out.data, h->out.len) != 0) return -1;
			br_buf_reset(&h->out);
		}
		if (n == 0) return 0;
	}
}

/* Fires due timers; returns the milliseconds until the next one (-1: none). */
static long timers(h2_conn *h)
{
	long long now = srv_now_ms();
	long next = -1;
	for (h2_stream *st = h->streams; st; st = st->next) {
		if (!st->due_ms || st->hang) continue;
		if (st->due_ms <= now) {
			st->due_ms = 0;
			if (st->waiting_pre) {
				st->waiting_pre = 0;
				submit_response(h, st);
			} else if (st->deferred) {
				st->deferred = 0;
				nghttp2_session_resume_data(h->s, st->id);
			}
			next = 0;
		} else {
			long left = (long)(st->due_ms - now);
			if (next < 0 || left < next) next = left;
		}
	}
	return next;
}

void srv_h2_serve(srv_conn *c)
{
	h2_conn h;
	nghttp2_session_callbacks *cb = NULL;
	memset(&h, 0, sizeof h);
	h.c = c;
	if (nghttp2_session_callbacks_new(&cb) != 0) return;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	int rc = nghttp2_session_server_new(&h.s, cb, &h);
	nghttp2_session_callbacks_del(cb);
	if (rc != 0) return;

	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 256 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
	};
	nghttp2_submit_settings(h.s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
	nghttp2_session_set_local_window_size(h.s, NGHTTP2_FLAG_NONE, 0, 16 << 20);
	/* Bytes read while telling h2 from HTTP/1.1 (the preface) go in first. */
	if (c->in.len && nghttp2_session_mem_recv(h.s, c->in.data, c->in.len) < 0) goto done;
	br_buf_reset(&c->in);

	uint8_t buf[65536];
	for (;;) {
		if (flush(&h) != 0) break;
		if (h.abort_after_flush) {
			srv_io_abort(&c->io);
			break;
		}
		if (!nghttp2_session_want_read(h.s) && !nghttp2_session_want_write(h.s)) break;
		long wait = timers(&h);
		if (wait == 0) continue;
		int r = srv_io_wait_readable(&c->io, (int)wait);
		if (r < 0) break;
		if (r == 0) continue;
		long n = srv_io_read(&c->io, buf, sizeof buf);
		if (n <= 0) break;
		if (nghttp2_session_mem_recv(h.s, buf, (size_t)n) < 0) break;
	}
done:
	/* Deleting the session closes the remaining streams through on_stream_close. */
	nghttp2_session_del(h.s);
	while (h.streams) stream_free(&h, h.streams);
	br_buf_free(&h.out);
}
