/* Authentication like the service: SigV4 verified by recomputing the signature from what
 * arrived (the signed headers named in Authorization, the raw path, the query, the
 * payload hash), a clock-skew window, session tokens bound to temporary keys, and
 * Bedrock API keys as bearer tokens. The key store holds the configured keys (main) and
 * the temporary keys the credential endpoints issue (behind a mutex). Error types and
 * messages are the ones AWS front ends answer with. */
#include "server.h"

#include <ctype.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include "../br_sigv4.h"
#include "../br_base64.h"

#define CORAL_SUFFIX "http://internal.amazon.com/coral/com.amazon.coral.service/"
#define MAX_SIGNED 64

typedef struct key {
	char *akid, *secret, *token;   /* token NULL: none required */
	long long expires;             /* UNIX seconds; 0: never */
	struct key *next;
} key;

static key *keys;                  /* configured + issued, newest first */
static char **bearers;
static size_t nbearers, nconfigured;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p) memcpy(p, s, n);
	return p;
}

static void key_free(key *k)
{
	if (!k) return;
	if (k->secret) OPENSSL_cleanse(k->secret, strlen(k->secret));
	free(k->akid);
	free(k->secret);
	free(k->token);
	free(k);
}

static int add_key(const char *akid, const char *secret, const char *token, long long expires)
{
	key *k = calloc(1, sizeof *k);
	if (!k) return -1;
	k->akid = dup_str(akid);
	k->secret = dup_str(secret);
	k->token = token && *token ? dup_str(token) : NULL;
	k->expires = expires;
	if (!k->akid || !k->secret || (token && *token && !k->token)) {
		key_free(k);
		return -1;
	}
	pthread_mutex_lock(&mu);
	k->next = keys;
	keys = k;
	pthread_mutex_unlock(&mu);
	return 0;
}

int srv_auth_add_key(const char *akid, const char *secret, const char *token)
{
	if (add_key(akid, secret, token, 0) != 0) return -1;
	nconfigured++;
	return 0;
}

int srv_auth_add_bearer(const char *token)
{
	char **b = realloc(bearers, (nbearers + 1) * sizeof *b);
	if (!b) return -1;
	bearers = b;
	if (!(bearers[nbearers] = dup_str(token))) return -1;
	nbearers++;
	nconfigured++;
	return 0;
}

size_t srv_auth_nkeys(void)
{
	return nconfigured;
}

static int store_issued(long ttl, const char *akid, const char *secret, const char *token,
			long long *expires);

int srv_auth_issue(long ttl, char akid[21], char secret[41], char token[161],
		   long long *expires)
{
	srv_random_alnum(akid, 20, "ASIA");
	srv_random_alnum(secret, 40, NULL);
	srv_random_alnum(token, 160, "IQoJb3JpZ2luX2VtdQ");
	return store_issued(ttl, akid, secret, token, expires);
}

/* n characters of SHA-256(seed "\n" label "\n" identity) in hex, chained for more. */
static void derive(const char *label, const char *identity, char *out, size_t n, int upper)
{
	br_buf b = BR_BUF_INIT;
	char hex[65];
	size_t done = 0;
	for (unsigned i = 0; done < n; i++) {
		char num[16];
		snprintf(num, sizeof num, "%u", i);
		b.len = 0;
		br_buf_append_str(&b, srv_cfg.cred_seed);
		br_buf_append_byte(&b, '\n');
		br_buf_append_str(&b, label);
		br_buf_append_str(&b, num);
		br_buf_append_byte(&b, '\n');
		br_buf_append_str(&b, identity);
		br_sigv4_sha256_hex(b.data ? (const void *)b.data : (const void *)"", b.len, hex);
		for (size_t j = 0; j < 64 && done < n; j++, done++)
			out[done] = upper && hex[j] >= 'a' ? (char)(hex[j] - 'a' + 'A') : hex[j];
	}
	out[n] = '\0';
	br_buf_free(&b);
}

int srv_auth_issue_for(long ttl, const char *identity, char akid[21], char secret[41],
		       char token[161], long long *expires)
{
	if (!srv_cfg.cred_seed) return srv_auth_issue(ttl, akid, secret, token, expires);
	memcpy(akid, "ASIA", 4);
	derive("akid", identity, akid + 4, 16, 1);
	derive("secret", identity, secret, 40, 0);
	memcpy(token, "IQoJb3JpZ2luX2VtdQ", 18);
	derive("token", identity, token + 18, 142, 0);
	return store_issued(ttl, akid, secret, token, expires);
}

static int store_issued(long ttl, const char *akid, const char *secret, const char *token,
			long long *expires)
{
	long long now = (long long)time(NULL);
	*expires = now + (ttl > 0 ? ttl : 3600);
	/* Drop issued keys that expired more than an hour ago. */
	pthread_mutex_lock(&mu);
	for (key **pp = &keys; *pp;) {
		key *k = *pp;
		if (k->expires && k->expires + 3600 < now) {
			*pp = k->next;
			key_free(k);
		} else {
			pp = &k->next;
		}
	}
	pthread_mutex_unlock(&mu);
	return add_key(akid, secret, token, *expires);
}

void srv_auth_cleanup(void)
{
	pthread_mutex_lock(&mu);
	while (keys) {
		key *k = keys;
		keys = k->next;
		key_free(k);
	}
	for (size_t i = 0; i < nbearers; i++) free(bearers[i]);
	free(bearers);
	bearers = NULL;
	nbearers = nconfigured = 0;
	pthread_mutex_unlock(&mu);
}

/* Copies the key for akid (secret, token, expiry) out of the store; 0 when found. */
static int find_key(const char *akid, char *secret, size_t scap, char *token, size_t tcap,
		    int *has_token, long long *expires)
{
	int found = -1;
	pthread_mutex_lock(&mu);
	for (key *k = keys; k; k = k->next) {
		if (strcmp(k->akid, akid) == 0) {
			snprintf(secret, scap, "%s", k->secret);
			snprintf(token, tcap, "%s", k->token ? k->token : "");
			*has_token = k->token != NULL;
			*expires = k->expires;
			found = 0;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return found;
}

/* Records the error answer in *a, wipes the secret copy, returns -1. */
__attribute__((format(printf, 5, 6)))
static int fail(srv_auth *a, int status, const char *type, int cap, const char *fmt, ...)
{
	va_list ap;
	a->err_status = status;
	snprintf(a->err_type, sizeof a->err_type, "%s", type);
	a->err_cap = cap;
	va_start(ap, fmt);
	vsnprintf(a->err_msg, sizeof a->err_msg, fmt, ap);
	va_end(ap);
	OPENSSL_cleanse(a->secret, sizeof a->secret);
	return -1;
}

void srv_auth_reply(const srv_auth *a, srv_reply *r)
{
	/* Authentication failures come from the AWS front end, not from Bedrock itself. */
	int coral = strcmp(a->err_type, "AccessDeniedException") != 0;
	srv_error(r, a->err_status, a->err_type, coral ? CORAL_SUFFIX : NULL, a->err_cap, a->err_msg);
}

/* Finds "name=" in the Authorization parameters; copies the value up to ',' or end. */
static int auth_param(const char *params, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = params; *p;) {
		while (*p == ' ' || *p == ',') p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl = len - nl - 1;
			while (vl > 0 && p[nl + 1 + vl - 1] == ' ') vl--;
			if (vl >= cap) return -1;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		p += len;
	}
	return -1;
}

static long long parse_amz_date(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z') return -1;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)s[i])) return -1;
	tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
	tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
	tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
	tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
	tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
	tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
	return (long long)timegm(&tm);
}

#define API_KEY_PREFIX "bedrock-api-key-"
#define API_KEY_HOST "bedrock.amazonaws.com"
#define API_KEY_MAX_EXPIRES 43200L

/* Query parameter `name` of q (percent-decoded, malloc'ed) or NULL; NULL too when the
 * parameter appears more than once. */
static char *key_param(const char *q, const char *name)
{
	char *v = srv_query_get(q, name, 0);
	if (!v) return NULL;
	/* a repeated parameter would let what is signed differ from what is read */
	size_t n = strlen(name);
	int seen = 0;
	for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == '=') seen++;
	if (seen != 1) {
		free(v);
		return NULL;
	}
	return v;
}

/* A short-term Bedrock API key: "bedrock-api-key-" + base64 of
 * "bedrock.amazonaws.com/?<SigV4 presigned query>&Version=1", the presign of
 * POST / Action=CallWithBearerToken for service bedrock, host bedrock.amazonaws.com. It is
 * verified like a presigned URL: a known access key (and its session token), the
 * signature recomputed, X-Amz-Date + X-Amz-Expires not passed, the key not expired. */
static int check_api_key(const char *tok, srv_auth *a)
{
	static const char invalid[] = "Authentication failed: Please make sure your API Key is valid.";
	const char *b64 = tok + strlen(API_KEY_PREFIX);
	size_t n = strlen(b64), len = 0, bad = 0;
	int rc = -1;
	if (n > 12000)
		return fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
	uint8_t *raw = malloc(br_base64_decoded_max(n) + 1);
	char *action = NULL, *alg = NULL, *cred = NULL, *date = NULL, *exp_s = NULL, *sh = NULL,
	     *tok_sent = NULL, *sig = NULL, *query = NULL;
	if (!raw) return fail(a, 500, "InternalServerException", 0, "out of memory");
	if (br_base64_decode(b64, n, raw, &len, &bad) != BR_OK) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
		goto done;
	}
	raw[len] = '\0';
	const char *pre = API_KEY_HOST "/?", *suf = "&Version=1";
	size_t pl = strlen(pre), sl = strlen(suf);
	if (strlen((char *)raw) != len || len < pl + sl || memcmp(raw, pre, pl) != 0 ||
	    memcmp(raw + len - sl, suf, sl) != 0) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
		goto done;
	}
	query = malloc(len - pl - sl + 1);
	if (!query) {
		fail(a, 500, "InternalServerException", 0, "out of memory");
		goto done;
	}
	memcpy(query, raw + pl, len - pl - sl);
	query[len - pl - sl] = '\0';
	action = key_param(query, "Action");
	alg = key_param(query, "X-Amz-Algorithm");
	cred = key_param(query, "X-Amz-Credential");
	date = key_param(query, "X-Amz-Date");
	exp_s = key_param(query, "X-Amz-Expires");
	sh = key_param(query, "X-Amz-SignedHeaders");
	sig = key_param(query, "X-Amz-Signature");
	tok_sent = srv_query_get(query, "X-Amz-Security-Token", 0);
	if (!action || strcmp(action, "CallWithBearerToken") != 0 || !alg ||
	    strcmp(alg, "AWS4-HMAC-SHA256") != 0 || !cred || !date || !exp_s || !sh ||
	    strcmp(sh, "host") != 0 || !sig || strlen(sig) != 64) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
		goto done;
	}
	/* AKID/yyyymmdd/region/bedrock/aws4_request */
	char *parts[5] = {0};
	int np = 0;
	for (char *p = cred; np < 5;) {
		parts[np++] = p;
		char *slash = strchr(p, '/');
		if (!slash) break;
		*slash = '\0';
		p = slash + 1;
	}
	long long t = parse_amz_date(date);
	char *end = NULL;
	long expires = strtol(exp_s, &end, 10);
	if (np != 5 || strcmp(parts[3], "bedrock") != 0 || strcmp(parts[4], "aws4_request") != 0 ||
	    strlen(parts[1]) != 8 || t < 0 || strncmp(parts[1], date, 8) != 0 || !*exp_s || *end ||
	    expires < 1 || expires > API_KEY_MAX_EXPIRES) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
		goto done;
	}
	snprintf(a->akid, sizeof a->akid, "%s", parts[0]);
	snprintf(a->region, sizeof a->region, "%s", parts[2]);
	char token[512];
	int has_token = 0;
	long long key_expires = 0;
	if (find_key(a->akid, a->secret, sizeof a->secret, token, sizeof token, &has_token,
		     &key_expires) != 0 ||
	    (has_token && (!tok_sent || !srv_secure_eq(tok_sent, token))) || (!has_token && tok_sent)) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
		goto done;
	}
	long long now = (long long)time(NULL);
	if (now >= t + expires || (key_expires && now >= key_expires)) {
		fail(a, 403, "AccessDeniedException", 1, "Authentication failed: the API key has expired.");
		goto done;
	}
	if (t > now + srv_cfg.skew_seconds) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
		goto done;
	}
	br_sigv4_header host = { "host", 4, API_KEY_HOST, strlen(API_KEY_HOST) };
	br_sigv4_params p;
	memset(&p, 0, sizeof p);
	p.access_key = a->akid;
	p.secret_key = a->secret;
	p.session_token = has_token ? token : NULL;
	p.region = a->region;
	p.service = "bedrock";
	p.amz_date = date;
	p.normalize_path = 1;
	p.sign_token = 1;
	p.expires = expires;
	br_sigv4_request req;
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.path = "/";
	req.path_len = 1;
	req.query = "Action=CallWithBearerToken";
	req.query_len = strlen(req.query);
	req.headers = &host;
	req.nheaders = 1;
	req.payload = (const uint8_t *)"";
	br_sigv4_signer *s = br_sigv4_new();
	br_sigv4_result res;
	memset(&res, 0, sizeof res);
	br_status st = s ? br_sigv4_presign(s, &p, &req, &res) : BR_NOMEM;
	const char *want = st == BR_OK && res.query ? strstr(res.query, "X-Amz-Signature=") : NULL;
	if (!want || !srv_secure_eq(want + 16, sig)) {
		fail(a, 403, "AccessDeniedException", 1, "%s", invalid);
	} else {
		OPENSSL_cleanse(a->secret, sizeof a->secret);
		a->bearer = 1;
		rc = 0;
	}
	br_sigv4_free(s);
done:
	free(raw);
	free(query);
	free(action);
	free(alg);
	free(cred);
	free(date);
	free(exp_s);
	free(sh);
	free(sig);
	free(tok_sent);
	return rc;
}

static int check_bearer(const char *authz, srv_auth *a)
{
	const char *tok = authz + 6;
	while (*tok == ' ') tok++;
	if (strncmp(tok, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) == 0) {
		for (size_t i = 0; i < nbearers; i++)
			if (srv_secure_eq(tok, bearers[i])) {
				a->bearer = 1;
				return 0;
			}
		return check_api_key(tok, a);
	}
	int ok = 0;
	for (size_t i = 0; i < nbearers; i++)
		if (*tok && srv_secure_eq(tok, bearers[i])) ok = 1;
	if (!ok)
		return fail(a, 403, "AccessDeniedException", 1,
			    "Authentication failed: Please make sure your API Key is valid.");
	a->bearer = 1;
	return 0;
}

/* Joins every value of header `name` with ','; on HTTP/2 "host" falls back to
 * ":authority" and the other way round on HTTP/1.1. */
static void header_values(const srv_request *rq, const char *name, br_buf *out)
{
	int n = 0;
	for (size_t i = 0; i < rq->nheaders; i++) {
		if (strcmp(rq->headers[i].name, name) != 0) continue;
		if (n++) br_buf_append_byte(out, ',');
		br_buf_append_str(out, rq->headers[i].value);
	}
	if (n == 0 && strcmp(name, "host") == 0) {
		const char *v = srv_request_header(rq, ":authority");
		if (v) br_buf_append_str(out, v);
	} else if (n == 0 && strcmp(name, ":authority") == 0) {
		const char *v = srv_request_header(rq, "host");
		if (v) br_buf_append_str(out, v);
	}
}

int srv_auth_check(const srv_request *rq, const char *service, int allow_bearer,
		   const char *payload_hash, int keep_secret, srv_auth *a)
{
	memset(a, 0, sizeof *a);
	const char *authz = srv_request_header(rq, "authorization");
	if (!authz || !*authz)
		return fail(a, 403, "AccessDeniedException", 1, "Authorization header is missing");
	if (strncasecmp(authz, "Bearer", 6) == 0 && (authz[6] == ' ' || authz[6] == '\0')) {
		if (allow_bearer) return check_bearer(authz, a);
		return fail(a, 403, "IncompleteSignatureException", 0,
			    "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer");
	}
	if (strncmp(authz, "AWS4-HMAC-SHA256 ", 17) != 0)
		return fail(a, 403, "IncompleteSignatureException", 0,
			    "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.");

	char cred[512], signed_hdrs[2048], sig[128];
	const char *params = authz + 17;
	int has_c = auth_param(params, "Credential", cred, sizeof cred) == 0;
	int has_h = auth_param(params, "SignedHeaders", signed_hdrs, sizeof signed_hdrs) == 0;
	int has_s = auth_param(params, "Signature", sig, sizeof sig) == 0;
	if (!has_c || !has_h || !has_s)
		return fail(a, 403, "IncompleteSignatureException", 0, "%s%s%sAuthorization=%.200s",
			    has_c ? "" : "Authorization header requires 'Credential' parameter. ",
			    has_s ? "" : "Authorization header requires 'Signature' parameter. ",
			    has_h ? "" : "Authorization header requires 'SignedHeaders' parameter. ",
			    authz);

	/* Credential=AKID/yyyymmdd/region/service/aws4_request */
	char *parts[5] = {0};
	int np = 0;
	for (char *p = cred; np < 5;) {
		parts[np++] = p;
		char *slash = strchr(p, '/');
		if (!slash) break;
		*slash = '\0';
		p = slash + 1;
	}
	if (np != 5 || strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8)
		return fail(a, 403, "IncompleteSignatureException", 0,
			    "Credential should be scoped to a valid region. ");
	snprintf(a->akid, sizeof a->akid, "%s", parts[0]);
	snprintf(a->region, sizeof a->region, "%s", parts[2]);
	if (strcmp(parts[3], service) != 0)
		return fail(a, 403, "InvalidSignatureException", 0,
			    "Credential should be scoped to correct service: '%s'. ", service);

	char token[512];
	int has_token = 0;
	long long expires = 0;
	if (find_key(a->akid, a->secret, sizeof a->secret, token, sizeof token, &has_token,
		     &expires) != 0)
		return fail(a, 403, "UnrecognizedClientException", 0,
			    "The security token included in the request is invalid.");
	const char *sent_token = srv_request_header(rq, "x-amz-security-token");
	if (has_token && (!sent_token || !srv_secure_eq(sent_token, token)))
		return fail(a, 403, "UnrecognizedClientException", 0,
			    "The security token included in the request is invalid.");
	if (!has_token && sent_token)
		return fail(a, 403, "UnrecognizedClientException", 0,
			    "The security token included in the request is invalid.");
	long long now = (long long)time(NULL);
	if (expires && now >= expires)
		return fail(a, 403, "ExpiredTokenException", 0,
			    "The security token included in the request is expired");

	const char *date = srv_request_header(rq, "x-amz-date");
	long long t = date ? parse_amz_date(date) : -1;
	if (t < 0)
		return fail(a, 403, "IncompleteSignatureException", 0,
			    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%.200s",
			    authz);
	snprintf(a->amz_date, sizeof a->amz_date, "%s", date);
	char now_s[17], lim_s[17];
	br_sigv4_amz_date(now, now_s);
	if (t < now - srv_cfg.skew_seconds) {
		br_sigv4_amz_date(now - srv_cfg.skew_seconds, lim_s);
		return fail(a, 403, "InvalidSignatureException", 0,
			    "Signature expired: %s is now earlier than %s (%s - 5 min.)", date, lim_s, now_s);
	}
	if (t > now + srv_cfg.skew_seconds) {
		br_sigv4_amz_date(now + srv_cfg.skew_seconds, lim_s);
		return fail(a, 403, "InvalidSignatureException", 0,
			    "Signature not yet current: %s is still later than %s (%s + 5 min.)", date, lim_s, now_s);
	}
	if (strncmp(parts[1], date, 8) != 0)
		return fail(a, 403, "InvalidSignatureException", 0,
			    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%.8s', from '%s'.",
			    parts[1], date, date);

	/* The signed headers, with the values that arrived. */
	br_sigv4_header hdrs[MAX_SIGNED];
	br_buf vals[MAX_SIGNED];
	size_t nh = 0;
	int rc = -1;
	char names[2048];
	snprintf(names, sizeof names, "%s", signed_hdrs);
	for (char *save = NULL, *nm = strtok_r(names, ";", &save); nm && nh < MAX_SIGNED;
	     nm = strtok_r(NULL, ";", &save)) {
		vals[nh] = (br_buf)BR_BUF_INIT;
		header_values(rq, nm, &vals[nh]);
		br_buf_append_byte(&vals[nh], '\0');
		hdrs[nh].name = nm;
		hdrs[nh].name_len = strlen(nm);
		hdrs[nh].value = (const char *)vals[nh].data;
		hdrs[nh].value_len = vals[nh].len - 1;
		nh++;
	}

	br_sigv4_params p;
	memset(&p, 0, sizeof p);
	p.access_key = a->akid;
	p.secret_key = a->secret;
	p.region = a->region;
	p.service = service;
	p.amz_date = date;
	p.normalize_path = 1;
	p.sign_token = 1;
	br_sigv4_request req;
	memset(&req, 0, sizeof req);
	req.method = rq->method;
	req.path = rq->path;
	req.path_len = strlen(rq->path);
	req.query = rq->query;
	req.query_len = strlen(rq->query);
	req.headers = hdrs;
	req.nheaders = nh;
	req.payload = rq->body.data ? rq->body.data : (const uint8_t *)"";
	req.payload_len = rq->body.len;
	req.payload_hash = payload_hash ? payload_hash : srv_request_header(rq, "x-amz-content-sha256");

	br_sigv4_signer *s = br_sigv4_new();
	br_sigv4_result res;
	memset(&res, 0, sizeof res);
	br_status st = s ? br_sigv4_sign(s, &p, &req, &res) : BR_NOMEM;
	if (st != BR_OK || !res.signature) {
		fail(a, 403, "InvalidSignatureException", 0,
		     "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details. (%s)",
		     br_status_message(st));
	} else if (!srv_secure_eq(res.signature, sig)) {
		fail(a, 403, "InvalidSignatureException", 0,
		     "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n",
		     res.canonical_request ? res.canonical_request : "",
		     res.string_to_sign ? res.string_to_sign : "");
	} else {
		snprintf(a->signature, sizeof a->signature, "%s", res.signature);
		if (!keep_secret) OPENSSL_cleanse(a->secret, sizeof a->secret);
		rc = 0;
	}
	br_sigv4_free(s);
	for (size_t i = 0; i < nh; i++) br_buf_free(&vals[i]);
	return rc;
}
