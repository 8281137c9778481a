/* libFuzzer target for the emulator's HTTP/1.1 request reader (csrc/emulator/http1.c):
 * request line, header lines, Content-Length, chunked bodies with trailers, Expect:
 * 100-continue, keep-alive and pipelining; and, in one mode, the whole path of a request
 * behind it (dispatch, control channel, credential endpoints, authentication, the eleven
 * operations, the response writer). Built by .ci/run-fuzz against every emulator source
 * except main.c, srv_io.c (emu_fuzz_io.c stands in: reads come from the fuzz input in
 * slices, writes are collected) and http1.c, which is included below: its reader
 * read_request() is static and pulls bytes from the connection itself rather than
 * taking them (a pure head parser split out of it would let this target drop the
 * include).
 *
 * Input: one mode byte, then the bytes the client sends.
 *   bits 0-1  read slice: 1, 7, 100 or 16384 bytes per srv_io_read
 *   bit 2     1: serve (srv_http1_serve: the first request is read, dispatched and
 *             answered; srv_stopping() is on, so pacing and stall faults do not sleep);
 *             0: read requests only, pipelined, until the reader stops
 *   bit 3     serve with authentication on (default: --no-auth)
 * Checked on every input:
 *   - a read request has a method without spaces, a path and a query, lower-case header
 *     names without ':', a body within the 64 MiB limit; the reader consumes at most
 *     the input;
 *   - every response written starts with a valid status line, its header lines hold no
 *     bare CR or LF and no NUL (no response splitting from request bytes), a body
 *     sent as application/json parses as JSON, and a non-streamed response's body has exactly its Content-Length bytes
 *     (the last one may be cut only by the 1 MiB output cap). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* libc's strtoull is not instrumented and ASan does not intercept it: route the reader's
 * calls through a copy that first walks, with instrumented reads, every byte strtoull
 * looks at (leading white space, sign, 0x prefix, digits), so reads past the buffer are
 * caught. */
static unsigned long long fuzz_strtoull(const char *s, char **end, int base)
{
	const volatile char *p = s;
	while (isspace((unsigned char)*p)) p++;
	if (*p == '+' || *p == '-') p++;
	if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) p += 2;
	while (base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p)) p++;
	return strtoull(s, end, base);
}
#define strtoull fuzz_strtoull
#include "../emulator/http1.c"
#undef strtoull

#include "emu_fuzz_io.h"
#include "emulator/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	srv_cfg.skew_seconds = 300;
	srv_cfg.cred_ttl = 3600;
	srv_cfg.account_id = "123456789012";
	srv_cfg.role_name = "emulator-role";
	CHECK(srv_auth_add_key("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL) == 0);
	CHECK(srv_auth_add_bearer("ABSKZnV6ei1iZWFyZXI=") == 0);
	return 0;
}

static void check_request(const srv_request *rq)
{
	/* (the reader accepts an empty method and a target not starting with '/'; dispatch
	 * answers those 404, so only the shape is checked here) */
	CHECK(rq->method && !strchr(rq->method, ' '));
	CHECK(rq->path && rq->query);
	for (size_t i = 0; i < rq->nheaders; i++) {
		const char *n = rq->headers[i].name;
		CHECK(n && n[0] && rq->headers[i].value);
		for (const char *c = n; *c; c++) CHECK(*c != ':' && !(*c >= 'A' && *c <= 'Z'));
		CHECK(!strpbrk(rq->headers[i].value, "\r\n"));
	}
	CHECK(rq->body.len <= MAX_BODY);
}

/* A JSON body must parse (bytes >= 0x80 masked: messages may quote raw request bytes). */
static void check_json(const uint8_t *p, size_t n)
{
	char err[200];
	char *t = malloc(n);
	json *v;
	CHECK(t);
	for (size_t i = 0; i < n; i++) t[i] = p[i] >= 0x80 ? 'x' : (char)p[i];
	v = json_parse(t, n, err, sizeof err);
	if (!v) fprintf(stderr, "response body is not JSON (%s): %.*s\n", err, (int)n, (const char *)p);
	CHECK(v);
	json_free(v);
	free(t);
}

/* Walks the responses in the output: status line, headers, body by Content-Length or
 * chunked framing. */
static void check_output(const uint8_t *p, size_t n, int capped)
{
	size_t pos = 0;
	while (pos < n) {
		const char *s = (const char *)p + pos;
		size_t left = n - pos, head = 0, cl = 0, i;
		int has_cl = 0, chunked = 0, is_json = 0, status;
		for (i = 3; i < left; i++)
			if (memcmp(s + i - 3, "\r\n\r\n", 4) == 0) { head = i + 1; break; }
		if (!head) { CHECK(capped); return; }
		CHECK(left > 12 && memcmp(s, "HTTP/1.1 ", 9) == 0);
		CHECK(isdigit((unsigned char)s[9]) && isdigit((unsigned char)s[10]) &&
		      isdigit((unsigned char)s[11]) && s[12] == ' ');
		status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
		CHECK(status >= 100 && status <= 599);
		/* header lines: no bare CR/LF, no NUL (other control bytes of a request header
		 * value may be echoed, e.g. Accept into Content-Type: not a split) */
		for (i = 0; i + 2 < head; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\r') { CHECK(s[i + 1] == '\n'); i++; continue; }
			CHECK(c != '\n' && c != 0);
		}
		for (i = 0; i < head; i++) {
			if (i && s[i - 1] != '\n') continue;
			if (strncasecmp(s + i, "content-length:", 15) == 0) {
				has_cl = 1;
				cl = (size_t)strtoull(s + i + 15, NULL, 10);
			} else if (strncasecmp(s + i, "transfer-encoding: chunked", 26) == 0) {
				chunked = 1;
			} else if (strncasecmp(s + i, "content-type: application/json\r", 31) == 0) {
				is_json = 1;
			}
		}
		pos += head;
		if (status == 100) continue;
		if (chunked) {
			/* chunks up to the 0-size one; a stream may also end early (faults) */
			for (;;) {
				char *e;
				unsigned long long k;
				if (pos >= n) return;
				k = strtoull((const char *)p + pos, &e, 16);
				CHECK(e != (const char *)p + pos);
				if ((size_t)((const uint8_t *)e - p) + 2 > n) { CHECK(capped); return; }
				CHECK(memcmp(e, "\r\n", 2) == 0);
				pos = (size_t)((const uint8_t *)e - p) + 2;
				if (k == 0) { pos += 2; break; }
				if (pos + k + 2 > n) { CHECK(capped); return; }
				CHECK(memcmp(p + pos + k, "\r\n", 2) == 0);
				pos += k + 2;
			}
		} else {
			CHECK(has_cl);
			if (pos + cl > n) { CHECK(capped); return; }
			if (is_json && cl) check_json(p + pos, cl);
			pos += cl;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t slices[4] = {1, 7, 100, 16384};
	srv_conn c;
	uint8_t mode;

	if (size < 1 || size > 16384) return 0;
	mode = data[0];
	memset(&c, 0, sizeof c);
	c.id = 1;
	emu_fuzz_io_reset(data + 1, size - 1, slices[mode & 3]);
	if (mode & 4) {
		srv_cfg.no_auth = !(mode & 8);
		emu_fuzz_set_stopping(1);
		srv_http1_serve(&c);
		emu_fuzz_set_stopping(0);
		/* the control channel's state must not leak into the next input */
		srv_faults_clear();
		srv_pacing_set(0);
		srv_stats_reset();
	} else {
		for (int k = 0; k < 64; k++) {
			srv_request rq;
			int keep = 1, r;
			srv_request_init(&rq);
			r = read_request(&c, &rq, &keep);
			CHECK(r >= -1 && r <= 1);
			if (r == 1) check_request(&rq);
			srv_request_free(&rq);
			if (r != 1 || !keep) break;
		}
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "--- output (%zu bytes):\n%.*s\n", emu_fuzz_out.len,
			(int)emu_fuzz_out.len, (const char *)emu_fuzz_out.data);
	CHECK(c.in.len <= size - 1);
	check_output(emu_fuzz_out.data, emu_fuzz_out.len, emu_fuzz_out.len >= (1u << 20));
	br_buf_free(&c.in);
	return 0;
}
