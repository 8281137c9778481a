/* Helpers the operations share: path-label decoding, the model-id rule, the tokenizer,
 * body parsing + validation, event-stream framing and padding, request copies for
 * stream producers. */
#include "ops.h"
#include "model.h"
#include "../br_eventstream.h"

#include <stdlib.h>
#include <string.h>

char *ops_pct_decode(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	if (!o) return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;
			if (i + 2 >= n) { free(o); return NULL; }
			char a = s[i + 1], b = s[i + 2];
			h = (a >= '0' && a <= '9') ? a - '0' : (a >= 'a' && a <= 'f') ? a - 'a' + 10 : (a >= 'A' && a <= 'F') ? a - 'A' + 10 : -1;
			l = (b >= '0' && b <= '9') ? b - '0' : (b >= 'a' && b <= 'f') ? b - 'a' + 10 : (b >= 'A' && b <= 'F') ? b - 'A' + 10 : -1;
			if (h < 0 || l < 0 || (h == 0 && l == 0)) { free(o); return NULL; }
			o[k++] = (char)(h * 16 + l);
			i += 2;
		} else {
			if (!s[i]) { free(o); return NULL; }
			o[k++] = s[i];
		}
	}
	o[k] = 0;
	return o;
}

const char *ops_region(const emu_request *rq)
{
	if (rq->region && rq->region[0]) return rq->region;
	if (emu_cfg.default_region && emu_cfg.default_region[0]) return emu_cfg.default_region;
	return "us-east-1";
}

const char *ops_model_base(const char *id)
{
	const char *s = strrchr(id, '/');
	s = s ? s + 1 : id;
	static const char *geo[] = {"us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.", NULL};
	for (int i = 0; geo[i]; i++)
		if (!strncmp(s, geo[i], strlen(geo[i]))) return s + strlen(geo[i]);
	return s;
}

static int prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

int ops_model_known(const char *id)
{
	static const char *families[] = {"anthropic.", "amazon.titan-text", "amazon.titan-embed",
		"amazon.nova", "meta.", "mistral.", "cohere.", NULL};
	if (!*id || strlen(id) > 2048) return 0;
	for (const char *c = id; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) return 0;
	if (prefix(id, "arn:")) {
		/* arn:aws:bedrock:<region>:<account?>:<kind>/<rest> */
		const char *p = id;
		int colons = 0;
		for (const char *c = id; *c && colons < 5; c++)
			if (*c == ':') { colons++; p = c + 1; }
		if (colons < 5 || (!prefix(id, "arn:aws:bedrock:") && !prefix(id, "arn:aws-us-gov:bedrock:") &&
				   !prefix(id, "arn:aws-cn:bedrock:")))
			return 0;
		static const char *kinds[] = {"inference-profile/", "application-inference-profile/",
			"provisioned-model/", "custom-model/", "imported-model/", "custom-model-deployment/",
			"prompt-router/", "default-prompt-router/", NULL};
		for (int i = 0; kinds[i]; i++)
			if (prefix(p, kinds[i]) && p[strlen(kinds[i])]) return 1;
		if (prefix(p, "foundation-model/")) {
			const char *b = p + strlen("foundation-model/");
			for (int i = 0; families[i]; i++)
				if (prefix(b, families[i])) return 1;
		}
		return 0;
	}
	const char *b = ops_model_base(id);
	for (int i = 0; families[i]; i++)
		if (prefix(b, families[i])) return 1;
	return 0;
}

static int word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

size_t ops_token_prefix(const char *s, size_t n, size_t max)
{
	size_t i = 0, t = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (space_byte(c)) { i++; continue; }
		if (t == max) return i;
		t++;
		if (word_byte(c)) while (i < n && word_byte((unsigned char)s[i])) i++;
		else i++;
	}
	return n;
}

size_t ops_tokens(const char *s, size_t n)
{
	size_t i = 0, t = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (space_byte(c)) { i++; continue; }
		t++;
		if (word_byte(c)) while (i < n && word_byte((unsigned char)s[i])) i++;
		else i++;
	}
	return t;
}

json *ops_parse_body(const emu_request *rq, emu_response *rs)
{
	char err[200];
	const char *p = (const char *)rq->body;
	size_t n = rq->body_len;
	if (!n) { p = "{}"; n = 2; }   /* rest-json: an empty body is an empty input */
	json *v = json_parse(p, n, err, sizeof err);
	if (!v) {
		emu_response_error(rs, 400, "ValidationException", "Malformed request body: %s", err);
		return NULL;
	}
	if (v->type != JSON_OBJECT) {
		json_free(v);
		emu_response_error(rs, 400, "ValidationException", "Malformed request body: a JSON object is expected");
		return NULL;
	}
	return v;
}

int ops_validate(const char *shape, const json *body, emu_response *rs)
{
	char *msg = NULL;
	if (!emu_model_validate(shape, body, &msg)) return 0;
	emu_response_error(rs, 400, "ValidationException", "%s", msg ? msg : "validation failed");
	free(msg);
	return -1;
}

int ops_add_event(emu_response *rs, br_buf *scratch, const char *event_type,
		  const uint8_t *payload, size_t n)
{
	br_es_header h[3];
	memset(h, 0, sizeof h);
	const char *names[3] = {":event-type", ":content-type", ":message-type"};
	const char *vals[3] = {event_type, "application/json", "event"};
	for (int i = 0; i < 3; i++) {
		h[i].name = names[i];
		h[i].name_len = (uint8_t)strlen(names[i]);
		h[i].type = BR_ES_STRING;
		h[i].str = (const uint8_t *)vals[i];
		h[i].len = (uint16_t)strlen(vals[i]);
	}
	br_buf_reset(scratch);
	if (br_es_encode(scratch, h, 3, payload, n) != BR_OK) return -1;
	return emu_response_add_frame(rs, scratch->data, scratch->len);
}

void ops_padding(json_writer *w, unsigned seed)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = 2 + (seed * 2654435761u >> 7) % 60;   /* 2..61 */
	jw_key(w, "p");
	jw_strn(w, alpha, n);
}

/* Appends NUL-terminated s at *at (inside one block sized for it); returns the copy. */
static const char *put_str(char **at, const char *s)
{
	char *d = *at;
	size_t n = strlen(s) + 1;
	memcpy(d, s, n);
	*at += n;
	return d;
}

emu_request *ops_request_copy(const emu_request *rq)
{
	const char *method = rq->method ? rq->method : "", *path = rq->path ? rq->path : "";
	const char *query = rq->query ? rq->query : "", *region = rq->region;
	size_t n = sizeof(emu_request) + rq->nheaders * sizeof(emu_header);
	n += strlen(method) + strlen(path) + strlen(query) + 3 + (region ? strlen(region) + 1 : 0);
	for (size_t i = 0; i < rq->nheaders; i++)
		n += strlen(rq->headers[i].name) + strlen(rq->headers[i].value) + 2;
	emu_request *c = malloc(n);
	if (!c) return NULL;
	emu_header *h = (emu_header *)(c + 1);
	char *at = (char *)(h + rq->nheaders);
	memset(c, 0, sizeof *c);
	c->method = put_str(&at, method);
	c->path = put_str(&at, path);
	c->query = put_str(&at, query);
	c->region = region ? put_str(&at, region) : NULL;
	for (size_t i = 0; i < rq->nheaders; i++) {
		h[i].name = (char *)put_str(&at, rq->headers[i].name);
		h[i].value = (char *)put_str(&at, rq->headers[i].value);
	}
	c->headers = h;
	c->nheaders = rq->nheaders;
	c->http2 = rq->http2;
	return c;
}
