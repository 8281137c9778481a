/* The streamer turns an event-stream reply into a sequence of steps (write these bytes,
 * wait, abort, end) with pacing and mid-stream faults applied, so that HTTP/1.1 (blocking
 * writes and sleeps) and HTTP/2 (deferred data, timers) inject faults identically.
 * Without pacing, consecutive frames are coalesced into one write of up to BATCH bytes. */
#include "server.h"

#include <stdio.h>
#include <string.h>
#include "../br_eventstream.h"

#define BATCH (256u * 1024u)
#define ENDLESS_BATCH (64u * 1024u)
/* kind=oversize: the announced frame length (32 MiB, past every decoder's limit) and
 * how many of its bytes are sent before the body ends. */
#define OVERSIZE_LEN (32u * 1024u * 1024u)
#define OVERSIZE_SENT (64u * 1024u)

void srv_streamer_init(srv_streamer *s, srv_reply *r)
{
	memset(s, 0, sizeof *s);
	s->r = r;
}

void srv_streamer_free(srv_streamer *s)
{
	br_buf_free(&s->scratch);
}

static void add_str_header(br_es_header *h, const char *name, const char *value)
{
	memset(h, 0, sizeof *h);
	h->name = name;
	h->name_len = (uint8_t)strlen(name);
	h->type = BR_ES_STRING;
	h->str = (const uint8_t *)value;
	h->len = (uint16_t)strlen(value);
}

/* Encodes the fault's exception message into b. */
static void encode_exception(const srv_fault *f, br_buf *b)
{
	br_buf payload = BR_BUF_INIT;
	const char *type = f->exception[0] ? f->exception : "internalServerException";
	const char *msg = f->message[0] ? f->message : "The emulator injected this exception.";
	br_buf_append_str(&payload, "{\"message\":\"");
	srv_json_escape(&payload, msg);
	br_buf_append_byte(&payload, '"');
	if (strcmp(type, "modelStreamErrorException") == 0) {
		char num[32];
		snprintf(num, sizeof num, "%ld", f->status > 0 ? f->status : 500);
		br_buf_append_str(&payload, ",\"originalStatusCode\":");
		br_buf_append_str(&payload, num);
		br_buf_append_str(&payload, ",\"originalMessage\":\"");
		srv_json_escape(&payload, msg);
		br_buf_append_byte(&payload, '"');
	}
	br_buf_append_byte(&payload, '}');
	br_es_header h[3];
	add_str_header(&h[0], ":exception-type", type);
	add_str_header(&h[1], ":content-type", "application/json");
	add_str_header(&h[2], ":message-type", "exception");
	br_buf_reset(b);
	br_es_encode(b, h, 3, payload.data, payload.len);
	br_buf_free(&payload);
}

/* Frees the frames already handed out (the last one may still be in use by the caller
 * until this step, so it is freed on the step after). */
static void release_sent(srv_streamer *s)
{
	emu_response_release_frames(&s->r->rs, s->next);
}

/* 1 when the stream has a frame number i, asking the producer for more as needed. The
 * frames array may move when it produces: take frame pointers after the last call. */
static int have(srv_streamer *s, size_t i)
{
	emu_response *rs = &s->r->rs;
	while (i >= emu_response_frames_total(rs) && rs->produce) emu_response_produce(rs);
	return i < emu_response_frames_total(rs);
}

static void data(srv_step *out, const br_buf *b)
{
	out->kind = SRV_S_DATA;
	out->p = b->data;
	out->n = b->len;
}

/* The pacing pause before the next frame, once per frame: 1 when out is that pause. */
static int paced(srv_streamer *s, const srv_reply *r, srv_step *out)
{
	if (r->event_delay_ms <= 0 || s->waited)
		return 0;
	s->waited = 1;
	out->kind = SRV_S_WAIT;
	out->ms = r->event_delay_ms;
	return 1;
}

void srv_streamer_step(srv_streamer *s, srv_step *out)
{
	srv_reply *r = s->r;
	emu_response *rs = &r->rs;
	const srv_fault *f = &r->mid;
	memset(out, 0, sizeof *out);
	release_sent(s);
	if (s->ended) {
		out->kind = SRV_S_END;
		return;
	}
	int open = r->bidi && !r->bidi_done;
	if (s->endless) {
		if (paced(s, r, out))
			return;
		s->waited = 0;
		data(out, &s->scratch);
		return;
	}
	int pending = f->kind != SRV_F_NONE && !s->fault_done;
	int more = have(s, s->next);   /* frame `next` exists */
	/* Where the fault strikes: before event `after`. An endless repeat needs an event to
	 * repeat, so past the stream's last event it repeats that one. */
	size_t at = (size_t)f->after;
	if (pending && f->kind == SRV_F_ENDLESS && more && at > s->next && !have(s, s->next + 1))
		at = s->next;
	/* A fault whose event index lies beyond a finished stream strikes at its end. */
	int due = pending && (at <= s->next || (!more && !open));

	/* When paced, a reset or GOAWAY comes where the next event would: after the pause. */
	if (due && (f->kind == SRV_F_RESET || f->kind == SRV_F_GOAWAY) && paced(s, r, out))
		return;
	if (due) {
		switch (f->kind) {
		case SRV_F_STREAM_STALL:
			s->fault_done = 1;
			if (f->ms < 0) {
				out->kind = SRV_S_HANG;
			} else {
				out->kind = SRV_S_WAIT;
				out->ms = f->ms;
			}
			return;
		case SRV_F_RESET:
			s->fault_done = 1;
			out->kind = SRV_S_RESET;
			return;
		case SRV_F_GOAWAY:
			s->fault_done = 1;
			out->kind = SRV_S_GOAWAY;
			return;
		default:
			break;
		}
	}
	/* An exception or an oversize prelude needs no frame of the stream: due past its last
	 * event, it is sent where the stream would end. */
	int frameless = due && (f->kind == SRV_F_EXCEPTION || f->kind == SRV_F_OVERSIZE);
	if (!more && rs->produce_failed && !frameless) {
		/* The producer failed (out of memory): the status line has gone, so the stream
		 * ends with the exception event the service sends for its own failures. */
		srv_fault oom;
		memset(&oom, 0, sizeof oom);
		oom.kind = SRV_F_EXCEPTION;
		snprintf(oom.message, sizeof oom.message, "%s",
			 "The emulator ran out of memory encoding the stream.");
		encode_exception(&oom, &s->scratch);
		s->ended = 1;
		data(out, &s->scratch);
		return;
	}
	if (!more && !frameless) {
		out->kind = open ? SRV_S_IDLE : SRV_S_END;
		if (!open) s->ended = 1;
		return;
	}
	if (paced(s, r, out))
		return;
	s->waited = 0;
	if (due && f->kind == SRV_F_ENDLESS) {
		/* Event `at`, then the same bytes again for ever (a valid event each time):
		 * one copy a step when paced, else batches of ENDLESS_BATCH bytes. */
		const br_buf *fr = emu_response_frame(rs, s->next);
		s->fault_done = 1;
		s->endless = 1;
		br_buf_reset(&s->scratch);
		do {
			if (br_buf_append(&s->scratch, fr->data, fr->len) != BR_OK) break;
		} while (r->event_delay_ms <= 0 && s->scratch.len + fr->len <= ENDLESS_BATCH);
		data(out, &s->scratch);
		return;
	}
	if (due && f->kind == SRV_F_OVERSIZE) {
		/* A prelude announcing a frame larger than any decoder accepts (valid prelude
		 * CRC, no headers), some of its body, then the end of the response body. */
		uint8_t pre[12];
		uint32_t total = OVERSIZE_LEN, crc;
		pre[0] = (uint8_t)(total >> 24); pre[1] = (uint8_t)(total >> 16);
		pre[2] = (uint8_t)(total >> 8); pre[3] = (uint8_t)total;
		memset(pre + 4, 0, 4);
		crc = br_crc32(0, pre, 8);
		pre[8] = (uint8_t)(crc >> 24); pre[9] = (uint8_t)(crc >> 16);
		pre[10] = (uint8_t)(crc >> 8); pre[11] = (uint8_t)crc;
		s->fault_done = 1;
		s->ended = 1;
		br_buf_reset(&s->scratch);
		if (br_buf_reserve(&s->scratch, sizeof pre + OVERSIZE_SENT) == BR_OK) {
			br_buf_append(&s->scratch, pre, sizeof pre);
			memset(s->scratch.data + s->scratch.len, 0, OVERSIZE_SENT);
			s->scratch.len += OVERSIZE_SENT;
		}
		data(out, &s->scratch);
		return;
	}
	if (due && f->kind == SRV_F_EXCEPTION) {
		s->fault_done = 1;
		encode_exception(f, &s->scratch);
		s->ended = 1;
		data(out, &s->scratch);
		return;
	}
	if (due && (f->kind == SRV_F_CRC || f->kind == SRV_F_TRUNCATE)) {
		const br_buf *fr = emu_response_frame(rs, s->next++);
		s->fault_done = 1;
		br_buf_reset(&s->scratch);
		if (f->kind == SRV_F_CRC) {
			br_buf_append(&s->scratch, fr->data, fr->len);
			if (s->scratch.len) s->scratch.data[s->scratch.len - 1] ^= 0x01;
		} else {
			br_buf_append(&s->scratch, fr->data, fr->len / 2);
			s->ended = 1;
		}
		data(out, &s->scratch);
		return;
	}
	/* Normal frames: one when paced, else a batch up to the next fault or BATCH bytes
	 * (the frame an endless fault repeats, the stream's last when it is past the end,
	 * starts a step of its own). */
	if (r->event_delay_ms > 0) {
		data(out, emu_response_frame(rs, s->next++));
		return;
	}
	br_buf_reset(&s->scratch);
	do {
		const br_buf *fr = emu_response_frame(rs, s->next);
		if (s->scratch.len && s->scratch.len + fr->len > BATCH) break;
		s->next++;
		if (br_buf_append(&s->scratch, fr->data, fr->len) != BR_OK) break;
	} while ((!pending || s->next < at) && have(s, s->next) &&
		 !(pending && f->kind == SRV_F_ENDLESS && !have(s, s->next + 1)));
	data(out, &s->scratch);
}
