/* libFuzzer target for the emulator's authentication (csrc/emulator/auth.c): the
 * Authorization header parsing (scheme, Credential/SignedHeaders/Signature parameters,
 * the credential scope), X-Amz-Date parsing, session-token and bearer checks (short-term
 * API keys included: base64, the presigned query, its signature recomputed), and the
 * canonical request rebuilt from what arrived (signed header values joined, raw path and
 * query, payload hash) through br_sigv4. Built by .ci/run-fuzz against every emulator
 * source except main.c and srv_io.c (emu_fuzz_io.c stands in).
 *
 * Input: a request as text, like the SigV4 test-suite .sreq files: a request line
 * "METHOD TARGET [HTTP/1.1]", then "name:value" header lines (LF or CRLF; lines without
 * a colon are skipped), an empty line, then the body. It is checked against a key store
 * holding the test-suite key (AKIDEXAMPLE, no token), a temporary key with a session
 * token and one bearer token, for service "service" (the suite's) and "bedrock" (bearer
 * allowed, with and without an overriding payload hash). The clock-skew window is wide
 * open so any well-formed X-Amz-Date reaches the signature. Checked on every input:
 *   - the result is 0 (then a 64-hex signature, no error) or -1 with a 4xx status, an
 *     error type and a message, all NUL-terminated inside their arrays;
 *   - the secret never appears in the error message (unless the request itself carries
 *     it: the message quotes the Authorization header), and the srv_auth copy of it is
 *     wiped unless kept on purpose;
 *   - the error reply (srv_auth_reply) is well-formed JSON (bytes >= 0x80 aside: the
 *     message quotes the header as it came) with a "message"/"Message" string. */
#define _GNU_SOURCE   /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu_fuzz_io.h"
#include "emulator/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

#define SECRET1 "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SECRET2 "fuzzSecretKeyForTheTemporaryCredential00"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	srv_cfg.skew_seconds = 2000000000;
	CHECK(srv_auth_add_key("AKIDEXAMPLE", SECRET1, NULL) == 0);
	CHECK(srv_auth_add_key("ASIAFUZZEXAMPLE", SECRET2, "fuzz-session-token") == 0);
	CHECK(srv_auth_add_bearer("ABSKZnV6ei1iZWFyZXI=") == 0);
	return 0;
}

static int all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i]) return 0;
	return 1;
}

static void check_reply(const srv_auth *a)
{
	srv_reply r;
	br_buf t = BR_BUF_INIT;
	char err[200];
	json *v;
	srv_reply_init(&r);
	srv_auth_reply(a, &r);
	CHECK(r.rs.status == a->err_status);
	/* the body quotes raw header bytes; judge the JSON structure with them masked */
	br_buf_append(&t, r.rs.body.data, r.rs.body.len);
	for (size_t i = 0; i < t.len; i++)
		if (t.data[i] >= 0x80) t.data[i] = 'x';
	v = json_parse((const char *)t.data, t.len, err, sizeof err);
	if (!v) fprintf(stderr, "error body is not JSON (%s): %.*s\n", err, (int)t.len, (const char *)t.data);
	CHECK(v && v->type == JSON_OBJECT);
	CHECK(json_get_str(v, a->err_cap ? "Message" : "message") != NULL);
	json_free(v);
	br_buf_free(&t);
	srv_reply_free(&r);
}

static int input_has_secret;

static void check(const srv_request *rq, const char *service, int bearer,
		  const char *hash, int keep)
{
	srv_auth a;
	int rc = srv_auth_check(rq, service, bearer, hash, keep, &a);
	static int verbose = -1;
	if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr, "%s: %d %d %s %.120s\n", service, rc, a.err_status, a.err_type, a.err_msg);
	CHECK(rc == 0 || rc == -1);
	CHECK(memchr(a.akid, 0, sizeof a.akid) && memchr(a.region, 0, sizeof a.region));
	CHECK(memchr(a.amz_date, 0, sizeof a.amz_date) && memchr(a.signature, 0, sizeof a.signature));
	CHECK(memchr(a.err_type, 0, sizeof a.err_type) && memchr(a.err_msg, 0, sizeof a.err_msg));
	CHECK(memchr(a.secret, 0, sizeof a.secret));
	if (rc == 0) {
		CHECK(a.err_status == 0);
		if (a.bearer) {
			CHECK(bearer);
		} else {
			CHECK(strlen(a.signature) == 64 && strspn(a.signature, "0123456789abcdef") == 64);
			if (!keep) CHECK(all_zero(a.secret, sizeof a.secret));
		}
	} else {
		CHECK(a.err_status == 400 || a.err_status == 403);
		CHECK(a.err_type[0] && a.err_msg[0]);
		CHECK(all_zero(a.secret, sizeof a.secret));
		if (!input_has_secret)
			CHECK(!strstr(a.err_msg, SECRET1) && !strstr(a.err_msg, SECRET2));
		check_reply(&a);
	}
	memset(&a, 0, sizeof a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	srv_request rq;
	const char *nl, *sp1, *sp2;
	size_t ll;

	if (size > 65536) return 0;
	input_has_secret = memmem(data, size, SECRET1, strlen(SECRET1)) ||
			   memmem(data, size, SECRET2, strlen(SECRET2));
	srv_request_init(&rq);
	/* request line */
	nl = memchr(p, '\n', size);
	ll = nl ? (size_t)(nl - p) : size;
	if (ll && p[ll - 1] == '\r') ll--;
	sp1 = memchr(p, ' ', ll);
	if (!sp1 || sp1 == p) goto out;
	sp2 = memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - p));
	if (!sp2) sp2 = p + ll;
	rq.method = malloc((size_t)(sp1 - p) + 1);
	if (!rq.method) goto out;
	memcpy(rq.method, p, (size_t)(sp1 - p));
	rq.method[sp1 - p] = 0;
	/* the server keeps C strings: a NUL inside ends them */
	if (memchr(p, 0, ll)) goto out;
	if (srv_request_set_target(&rq, sp1 + 1, (size_t)(sp2 - sp1 - 1)) != 0) goto out;
	p = nl ? nl + 1 : end;
	/* headers */
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p)), *colon, *v;
		size_t n = e ? (size_t)(e - p) : (size_t)(end - p), vl;
		const char *next = e ? e + 1 : end;
		if (n && p[n - 1] == '\r') n--;
		if (n == 0) { p = next; break; }
		colon = memchr(p, ':', n);
		if (colon && colon > p && !memchr(p, 0, n)) {
			v = colon + 1;
			while (v < p + n && (*v == ' ' || *v == '\t')) v++;
			vl = (size_t)(p + n - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
			if (srv_request_add_header(&rq, p, (size_t)(colon - p), v, vl) != 0) goto out;
		}
		p = next;
	}
	if (p < end) br_buf_append(&rq.body, p, (size_t)(end - p));

	check(&rq, "service", 0, NULL, 0);
	check(&rq, "bedrock", 1, NULL, size & 1);
	check(&rq, "bedrock", 1, size & 2 ? "UNSIGNED-PAYLOAD" : "STREAMING-AWS4-HMAC-SHA256-EVENTS", 0);
out:
	srv_request_free(&rq);
	return 0;
}
