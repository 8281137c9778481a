/* The bare C Converse loop the Lua client is compared with: sign with the project's C
 * signer, POST the same request with one reused libcurl easy handle (so one kept-alive
 * connection), read the whole response into memory, check the status. Nothing else:
 * no JSON encoding or decoding, no validation, no retries.
 *
 * Usage: bare_converse URL KEY_ID SECRET [calls [passes [body_file [label]]]]
 * body_file holds the exact request body to send (the Lua benchmark writes the body its
 * client sends, so both send the same bytes); by default a "hi" message. Prints seconds
 * per call (median over passes) and records it in $BENCH_FIGURES (c.converse.bare or,
 * with a label, c.converse.bare.<label>). */
#include "bench.h"
#include "br_sigv4.h"

#include <curl/curl.h>

#define MODEL_PATH "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
#define BODY "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}"

typedef struct {
	char *data;
	size_t len, cap;
} sink_buf;

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	sink_buf *b = ud;
	size_t n = size * nmemb;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;
		while (cap < b->len + n) cap *= 2;
		if (!(q = realloc(b->data, cap))) return 0;
		b->data = q;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return n;
}

int main(int argc, char **argv)
{
	const char *url, *key, *secret;
	char full[1024], host[256], amz[17], auth_hdr[1024], date_hdr[64];
	int calls, passes;
	double t[BENCH_MAX_PASSES], tc[BENCH_MAX_PASSES], med, medc;
	long conns_total = 0;
	sink_buf resp = {NULL, 0, 0}, body = {NULL, 0, 0};
	const char *label = argc > 7 ? argv[7] : NULL;
	char key_s[128], key_c[128];
	br_sigv4_signer *s;
	br_sigv4_params sp;
	br_sigv4_request rq;
	br_sigv4_header hdrs[3];
	br_sigv4_result res;
	CURL *h;

	if (argc < 4) {
		fprintf(stderr, "usage: bare_converse URL KEY_ID SECRET [calls [passes [body_file [label]]]]\n");
		return 2;
	}
	url = argv[1];
	key = argv[2];
	secret = argv[3];
	calls = argc > 4 ? atoi(argv[4]) : 2000;
	passes = argc > 5 ? atoi(argv[5]) : 5;
	if (passes < 1) passes = 1;
	if (passes > BENCH_MAX_PASSES) passes = BENCH_MAX_PASSES;
	if (argc > 6) {
		FILE *f = fopen(argv[6], "rb");
		char chunk[4096];
		size_t got;
		if (!f) {
			fprintf(stderr, "bare_converse: cannot open %s\n", argv[6]);
			return 2;
		}
		while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
			if (on_write(chunk, 1, got, &body) != got) return 1;
		fclose(f);
	} else {
		on_write((char *)BODY, 1, sizeof BODY - 1, &body);
	}
	snprintf(full, sizeof full, "%s%s", url, MODEL_PATH);
	/* host[:port] as curl sends it in Host: */
	{
		const char *p = strstr(url, "://");
		p = p ? p + 3 : url;
		snprintf(host, sizeof host, "%.*s", (int)strcspn(p, "/"), p);
	}

	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	s = br_sigv4_new();
	if (!h || !s) return 1;
	curl_easy_setopt(h, CURLOPT_URL, full);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body.len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);

	memset(&sp, 0, sizeof sp);
	sp.access_key = key;
	sp.secret_key = secret;
	sp.region = "us-east-1";
	sp.service = "bedrock";
	sp.normalize_path = 1;
	sp.sign_token = 1;
	memset(&rq, 0, sizeof rq);
	rq.method = "POST";
	rq.path = MODEL_PATH;
	rq.path_len = sizeof MODEL_PATH - 1;
	rq.headers = hdrs;
	rq.nheaders = 3;
	rq.payload = (const uint8_t *)body.data;
	rq.payload_len = body.len;

	for (int pass = -1; pass < passes; pass++) {   /* pass -1 is the warm-up */
		int n = pass < 0 ? calls / 10 + 1 : calls;
		double t0 = bench_now(), c0 = bench_cpu_now();
		for (int i = 0; i < n; i++) {
			struct curl_slist *sl = NULL;
			long status = 0, conns = 0;
			CURLcode rc;
			br_status st;
			br_sigv4_amz_date((int64_t)time(NULL), amz);
			sp.amz_date = amz;
			hdrs[0] = (br_sigv4_header){"content-type", 12, "application/json", 16};
			hdrs[1] = (br_sigv4_header){"host", 4, host, strlen(host)};
			hdrs[2] = (br_sigv4_header){"x-amz-date", 10, amz, 16};
			st = br_sigv4_sign(s, &sp, &rq, &res);
			if (st != BR_OK) {
				fprintf(stderr, "bare_converse: sign: %s\n", br_status_name(st));
				return 1;
			}
			snprintf(auth_hdr, sizeof auth_hdr, "Authorization: %s", res.authorization);
			snprintf(date_hdr, sizeof date_hdr, "X-Amz-Date: %s", amz);
			sl = curl_slist_append(sl, "Content-Type: application/json");
			sl = curl_slist_append(sl, date_hdr);
			sl = curl_slist_append(sl, auth_hdr);
			sl = curl_slist_append(sl, "Expect:");
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
			resp.len = 0;
			rc = curl_easy_perform(h);
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
			curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
			curl_slist_free_all(sl);
			if (rc != CURLE_OK || status != 200) {
				fprintf(stderr, "bare_converse: %s, HTTP %ld: %.*s\n",
					curl_easy_strerror(rc), status, (int)(resp.len > 300 ? 300 : resp.len),
					resp.data ? resp.data : "");
				return 1;
			}
			conns_total += conns;
			bench_sink += resp.len;
		}
		if (pass >= 0) {
			t[pass] = (bench_now() - t0) / n;
			tc[pass] = (bench_cpu_now() - c0) / n;
		}
	}
	med = bench_median(t, passes);
	medc = bench_median(tc, passes);
	printf("c.converse.bare%s%s %8.0f calls/s (%.1f us/call, CPU %.1f us/call) sign + libcurl POST "
	       "over one kept-alive connection (%ld new connections in %d calls) | request %zu B, response %zu B\n",
	       label ? "." : "", label ? label : "", 1.0 / med, med * 1e6, medc * 1e6, conns_total,
	       calls * passes + calls / 10 + 1, body.len, resp.len);
	snprintf(key_s, sizeof key_s, "c.converse.bare%s%s.s_per_call", label ? "." : "", label ? label : "");
	snprintf(key_c, sizeof key_c, "c.converse.bare%s%s.cpu_s_per_call", label ? "." : "", label ? label : "");
	bench_record(key_s, med);
	bench_record(key_c, medc);

	br_sigv4_free(s);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	free(resp.data);
	free(body.data);
	return 0;
}
