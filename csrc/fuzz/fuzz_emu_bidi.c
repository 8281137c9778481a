/* libFuzzer target for the input side of InvokeModelWithBidirectionalStream: the signed
 * outer event-stream frames (srv_bidi.c: :date, :chunk-signature, the signature chain)
 * and the inner messages the operation reads (ops_bidi.c: one whole event-stream
 * message, :event-type chunk, {"bytes": base64} payload, the JSON inside). Built by
 * .ci/run-fuzz with every emulator source except main.c and srv_io.c.
 *
 * Input: one mode byte, then the body.
 *   mode & 1 == 0: the body is the raw outer stream, fed in slices (mode bits 2-3: 1, 7,
 *                  64 or all bytes at a time) with signature checks off (as with a bearer
 *                  token or --no-auth).
 *   mode & 1 == 1: the body is a list of pieces, each a 2-byte big-endian length and
 *                  bytes. The harness makes each piece an inner message (:event-type
 *                  chunk) whose payload is the piece as is (mode & 2) or
 *                  {"bytes":"<base64 of the piece>"} (otherwise), wraps it in an outer
 *                  frame signed with the real key and chain, adds the empty final frame,
 *                  and feeds the lot with signature checks on.
 * Checked: srv_bidi_feed returns 0, 1 (final frame) or -1 (bad frame, after which it
 * only answers 1); every output frame is one whole, valid event-stream message; with
 * frames signed by the harness the chain always verifies (no InvalidSignatureException)
 * and no frame is refused for its :date or :chunk-signature. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu_fuzz_io.h"
#include "br_eventstream.h"
#include "br_sigv4.h"
#include "emulator/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

#define SEED_SIG "0000000000000000000000000000000000000000000000000000000000000000"

static void set_hdr(br_es_header *h, const char *name, br_es_type type)
{
	memset(h, 0, sizeof *h);
	h->name = name;
	h->name_len = (uint8_t)strlen(name);
	h->type = type;
}

/* Checks the output frames; returns 1 when one is an error frame with that code. */
static int check_frames(const emu_response *rs, const char *code)
{
	int found = 0;
	for (size_t i = 0; i < rs->nframes; i++) {
		br_es_decoder *d = br_es_decoder_new(0);
		br_es_message m;
		CHECK(d);
		CHECK(br_es_decoder_feed(d, rs->frames[i].data, rs->frames[i].len) == BR_OK);
		CHECK(br_es_decoder_next(d, &m) == BR_OK);
		CHECK(br_es_decoder_pending(d) == 0);
		for (size_t k = 0; k < m.nheaders; k++) {
			const br_es_header *h = &m.headers[k];
			if (h->name_len == 11 && !memcmp(h->name, ":error-code", 11) &&
			    h->len == strlen(code) && !memcmp(h->str, code, h->len))
				found = 1;
		}
		br_es_decoder_free(d);
	}
	return found;
}

/* Builds the signed outer stream from the pieces. */
static void build_signed(const uint8_t *p, size_t n, int raw_payload, br_buf *out)
{
	br_sigv4_signer *s = br_sigv4_new();
	br_sigv4_params sp;
	char prior[65] = SEED_SIG;
	int64_t date = 1764060000000;   /* 2025-11-25 */
	br_buf inner = BR_BUF_INIT, pay = BR_BUF_INIT;
	int last = 0;
	CHECK(s);
	memset(&sp, 0, sizeof sp);
	sp.access_key = "AKIDEXAMPLE";
	sp.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	sp.region = "us-east-1";
	sp.service = "bedrock";
	while (!last) {
		br_es_header ih[3], oh[2];
		uint8_t sig[32];
		char hex[65];
		size_t len = 0;
		br_buf_reset(&inner);
		if (n >= 2) {
			len = (size_t)p[0] << 8 | p[1];
			p += 2;
			n -= 2;
			if (len > n) len = n;
			br_buf_reset(&pay);
			if (raw_payload) {
				br_buf_append(&pay, p, len);
			} else {
				br_buf_append_str(&pay, "{\"bytes\":\"");
				emu_b64_encode(p, len, &pay);
				br_buf_append_str(&pay, "\"}");
			}
			p += len;
			n -= len;
			set_hdr(&ih[0], ":event-type", BR_ES_STRING);
			ih[0].str = (const uint8_t *)"chunk";
			ih[0].len = 5;
			set_hdr(&ih[1], ":content-type", BR_ES_STRING);
			ih[1].str = (const uint8_t *)"application/json";
			ih[1].len = 16;
			set_hdr(&ih[2], ":message-type", BR_ES_STRING);
			ih[2].str = (const uint8_t *)"event";
			ih[2].len = 5;
			CHECK(br_es_encode(&inner, ih, 3, pay.data, pay.len) == BR_OK);
		} else {
			last = 1;   /* the empty final frame */
		}
		date += 1000;
		CHECK(br_sigv4_sign_event(s, &sp, prior, date, inner.data, inner.len, sig, hex,
					  NULL) == BR_OK);
		memcpy(prior, hex, 65);
		set_hdr(&oh[0], ":date", BR_ES_TIMESTAMP);
		oh[0].i = date;
		set_hdr(&oh[1], ":chunk-signature", BR_ES_BYTES);
		oh[1].str = sig;
		oh[1].len = 32;
		CHECK(br_es_encode(out, oh, 2, inner.data, inner.len) == BR_OK);
	}
	br_buf_free(&inner);
	br_buf_free(&pay);
	br_sigv4_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t slices[4] = {1, 7, 64, (size_t)-1};
	emu_request rq;
	emu_response open_rs, out;
	srv_auth a;
	srv_bidi *vb;
	emu_bidi *ops;
	br_buf stream = BR_BUF_INIT;
	int mode, signed_mode, rc = 0, finished = 0;

	if (size < 1 || size > 65536) return 0;
	mode = data[0];
	signed_mode = mode & 1;
	memset(&rq, 0, sizeof rq);
	rq.method = "POST";
	rq.path = "/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream";
	rq.query = "";
	rq.region = "us-east-1";
	emu_response_init(&open_rs);
	ops = emu_ops_bidi_open(&rq, &open_rs);
	CHECK(ops && open_rs.status == 200);

	memset(&a, 0, sizeof a);
	snprintf(a.akid, sizeof a.akid, "AKIDEXAMPLE");
	snprintf(a.secret, sizeof a.secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	snprintf(a.region, sizeof a.region, "us-east-1");
	snprintf(a.signature, sizeof a.signature, SEED_SIG);
	vb = srv_bidi_new(&a, signed_mode);
	CHECK(vb);
	emu_response_init(&out);

	if (signed_mode) {
		build_signed(data + 1, size - 1, mode & 2, &stream);
	} else {
		br_buf_append(&stream, data + 1, size - 1);
	}
	{
		size_t slice = signed_mode ? (size_t)-1 : slices[(mode >> 2) & 3];
		size_t pos = 0;
		while (pos < stream.len || (stream.len == 0 && pos == 0)) {
			size_t k = stream.len - pos < slice ? stream.len - pos : slice;
			/* each slice in its own exact-size block */
			uint8_t *chunk = malloc(k ? k : 1);
			CHECK(chunk);
			if (k) memcpy(chunk, stream.data + pos, k);
			rc = srv_bidi_feed(vb, ops, chunk, k, &out);
			free(chunk);
			CHECK(rc >= -1 && rc <= 1);
			if (rc == -1) CHECK(srv_bidi_feed(vb, ops, (const uint8_t *)"x", 1, &out) == 1);
			pos += k;
			if (rc != 0) { finished = 1; break; }
			if (k == 0) break;
		}
	}
	if (signed_mode) {
		CHECK(!check_frames(&out, "InvalidSignatureException"));
		/* the harness always ends with the final frame, properly signed */
		CHECK(finished);
	} else {
		check_frames(&out, "");
	}
	(void)finished;
	srv_bidi_free(vb);
	emu_ops_bidi_free(ops);
	emu_response_free(&open_rs);
	emu_response_free(&out);
	br_buf_free(&stream);
	return 0;
}
