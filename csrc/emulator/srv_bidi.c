/* Input side of InvokeModelWithBidirectionalStream: decodes the signed outer frames
 * (:date, :chunk-signature, payload = one inner message), verifies the chained
 * signatures (reference section 11: the seed is the request signature, each frame's hex
 * signature is the next one's prior), and hands each inner message to the operations.
 * Transport-free: h2.c feeds it the request body as it arrives. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "../br_eventstream.h"
#include "../br_sigv4.h"

struct srv_bidi {
	br_es_decoder *dec;
	br_sigv4_signer *signer;
	int verify;
	int done;
	char prior[65];
	char akid[128], secret[128], region[64];
};

srv_bidi *srv_bidi_new(const srv_auth *a, int verify)
{
	srv_bidi *b = calloc(1, sizeof *b);
	if (!b) return NULL;
	b->dec = br_es_decoder_new(0);
	b->signer = br_sigv4_new();
	if (!b->dec || !b->signer) {
		srv_bidi_free(b);
		return NULL;
	}
	b->verify = verify;
	snprintf(b->prior, sizeof b->prior, "%s", a->signature);
	snprintf(b->akid, sizeof b->akid, "%s", a->akid);
	snprintf(b->secret, sizeof b->secret, "%s", a->secret);
	snprintf(b->region, sizeof b->region, "%s", a->region);
	return b;
}

void srv_bidi_free(srv_bidi *b)
{
	if (!b) return;
	br_es_decoder_free(b->dec);
	br_sigv4_free(b->signer);
	OPENSSL_cleanse(b->secret, sizeof b->secret);
	free(b);
}

static void hdr(br_es_header *h, const char *name, const char *value)
{
	memset(h, 0, sizeof *h);
	h->name = name;
	h->name_len = (uint8_t)strlen(name);
	h->type = BR_ES_STRING;
	h->str = (const uint8_t *)value;
	h->len = (uint16_t)strlen(value);
}

/* Appends an unmodeled error message (":message-type error") to out. */
static void error_frame(emu_response *out, const char *code, const char *msg)
{
	br_es_header h[3];
	br_buf b = BR_BUF_INIT;
	hdr(&h[0], ":message-type", "error");
	hdr(&h[1], ":error-code", code);
	hdr(&h[2], ":error-message", msg);
	if (br_es_encode(&b, h, 3, NULL, 0) == BR_OK) emu_response_add_frame(out, b.data, b.len);
	br_buf_free(&b);
}

static const br_es_header *find(const br_es_message *m, const char *name, int type)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < m->nheaders; i++) {
		const br_es_header *h = &m->headers[i];
		if (h->name_len == nl && memcmp(h->name, name, nl) == 0 && h->type == type) return h;
	}
	return NULL;
}

/* Checks one outer frame's signature against the chain; 0 ok, -1 mismatch. */
static int verify_frame(srv_bidi *b, const br_es_message *m, const br_es_header *date,
			const br_es_header *sig)
{
	static const char hexd[] = "0123456789abcdef";
	char sent_hex[65];
	for (size_t i = 0; i < 32; i++) {
		sent_hex[2 * i] = hexd[sig->str[i] >> 4];
		sent_hex[2 * i + 1] = hexd[sig->str[i] & 15];
	}
	sent_hex[64] = '\0';
	if (b->verify) {
		br_sigv4_params p;
		uint8_t want[32];
		char want_hex[65];
		memset(&p, 0, sizeof p);
		p.access_key = b->akid;
		p.secret_key = b->secret;
		p.region = b->region;
		p.service = "bedrock";
		if (br_sigv4_sign_event(b->signer, &p, b->prior, date->i, m->payload, m->payload_len,
					want, want_hex, NULL) != BR_OK ||
		    CRYPTO_memcmp(want, sig->str, 32) != 0)
			return -1;
	}
	memcpy(b->prior, sent_hex, 65);
	return 0;
}

int srv_bidi_feed(srv_bidi *b, emu_bidi *ops, const uint8_t *p, size_t n, emu_response *out)
{
	br_es_message m;
	if (b->done) return 1;
	if (br_es_decoder_feed(b->dec, p, n) != BR_OK) goto bad_frame;
	for (;;) {
		br_status st = br_es_decoder_next(b->dec, &m);
		if (st == BR_AGAIN) return 0;
		if (st != BR_OK) goto bad_frame;
		const br_es_header *date = find(&m, ":date", BR_ES_TIMESTAMP);
		const br_es_header *sig = find(&m, ":chunk-signature", BR_ES_BYTES);
		if (!date || !sig || sig->len != 32) {
			b->done = 1;
			error_frame(out, "ValidationException",
				    "Each input frame must carry a :date timestamp and a 32-byte :chunk-signature.");
			return -1;
		}
		if (verify_frame(b, &m, date, sig) != 0) {
			b->done = 1;
			error_frame(out, "InvalidSignatureException",
				    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.");
			return -1;
		}
		if (m.payload_len == 0) {
			b->done = 1;
			emu_ops_bidi_end(ops, out);
			return 1;
		}
		emu_ops_bidi_input(ops, m.payload, m.payload_len, out);
	}
bad_frame:
	b->done = 1;
	{
		const char *detail = NULL;
		br_status e = br_es_decoder_error(b->dec, &detail);
		char msg[256];
		snprintf(msg, sizeof msg, "Malformed input frame: %s%s%s", br_status_message(e),
			 detail ? " at " : "", detail ? detail : "");
		error_frame(out, "ValidationException", msg);
	}
	return -1;
}
