/* srv_request (one parsed request, owned) and srv_reply (the answer the transports
 * execute). Both transports build the same srv_request, so dispatch never cares whether
 * the bytes came over HTTP/1.1 or HTTP/2. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

void srv_request_init(srv_request *rq)
{
	memset(rq, 0, sizeof *rq);
}

void srv_request_free(srv_request *rq)
{
	free(rq->method);
	free(rq->path);
	free(rq->query);
	for (size_t i = 0; i < rq->nheaders; i++) {
		free(rq->headers[i].name);
		free(rq->headers[i].value);
	}
	free(rq->headers);
	br_buf_free(&rq->body);
	srv_request_init(rq);
}

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p) return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int srv_request_add_header(srv_request *rq, const char *name, size_t nlen,
			   const char *value, size_t vlen)
{
	if (rq->nheaders == rq->cap) {
		size_t cap = rq->cap ? rq->cap * 2 : 16;
		emu_header *h = realloc(rq->headers, cap * sizeof *h);
		if (!h) return -1;
		rq->headers = h;
		rq->cap = cap;
	}
	char *n = dupn(name, nlen), *v = dupn(value, vlen);
	if (!n || !v) {
		free(n);
		free(v);
		return -1;
	}
	for (char *c = n; *c; c++)
		if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
	rq->headers[rq->nheaders].name = n;
	rq->headers[rq->nheaders].value = v;
	rq->nheaders++;
	return 0;
}

const char *srv_request_header(const srv_request *rq, const char *lname)
{
	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcmp(rq->headers[i].name, lname) == 0) return rq->headers[i].value;
	return NULL;
}

int srv_request_set_target(srv_request *rq, const char *target, size_t n)
{
	const char *q = memchr(target, '?', n);
	size_t plen = q ? (size_t)(q - target) : n;
	free(rq->path);
	free(rq->query);
	rq->path = dupn(target, plen);
	rq->query = q ? dupn(q + 1, n - plen - 1) : dupn("", 0);
	return rq->path && rq->query ? 0 : -1;
}

/* emu.h's header lookup: the server owns the request, so it owns the lookup. */
const char *emu_request_header(const emu_request *rq, const char *lname)
{
	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcmp(rq->headers[i].name, lname) == 0) return rq->headers[i].value;
	return NULL;
}

void srv_request_view(const srv_request *rq, emu_request *out)
{
	out->method = rq->method ? rq->method : "";
	out->path = rq->path ? rq->path : "/";
	out->query = rq->query ? rq->query : "";
	out->headers = rq->headers;
	out->nheaders = rq->nheaders;
	out->body = rq->body.data ? rq->body.data : (const uint8_t *)"";
	out->body_len = rq->body.len;
	out->http2 = rq->http2;
	out->region = rq->region[0] ? rq->region : emu_cfg.default_region;
}

void srv_reply_init(srv_reply *r)
{
	memset(r, 0, sizeof *r);
	emu_response_init(&r->rs);
}

void srv_reply_free(srv_reply *r)
{
	emu_response_free(&r->rs);
	memset(r, 0, sizeof *r);
	emu_response_init(&r->rs);
}
