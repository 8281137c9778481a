/* Credential endpoints the AWS credential providers talk to, all on the emulator's own
 * port: EC2 IMDSv2, the ECS/EKS container endpoint, STS AssumeRole and
 * AssumeRoleWithWebIdentity, the SSO portal's GetRoleCredentials, SSO-OIDC CreateToken
 * (refresh_token grant) and the sign-in service's CreateOAuth2Token (`aws login`
 * refresh, with its DPoP proof verified). Each issues a fresh temporary key
 * (srv_auth_issue) that the emulator then accepts, with its session token, for SigV4.
 * Shapes follow what botocore's providers parse. */
#include "server.h"
#include "json.h"
#include "../br_base64.h"
#include "../br_crypto.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STS_NS "https://sts.amazonaws.com/doc/2011-06-15/"
#define IMDS_TOKENS 256

typedef struct {
	char akid[21], secret[41], token[161];
	long long expires;
	char expiration[32];
} issued;

static pthread_mutex_t imds_mu = PTHREAD_MUTEX_INITIALIZER;

/* Tokens the emulator issued (SSO access and refresh tokens, sign-in refresh tokens),
 * accepted back on later calls: a small ring per kind. */
#define RING 64
typedef struct { char tok[RING][96]; size_t next; } token_ring;
static token_ring sso_access, sso_refresh, login_refresh;

static void ring_add(token_ring *r, const char *tok)
{
	pthread_mutex_lock(&imds_mu);
	snprintf(r->tok[r->next], sizeof r->tok[0], "%s", tok);
	r->next = (r->next + 1) % RING;
	pthread_mutex_unlock(&imds_mu);
}

static int ring_has(token_ring *r, const char *tok)
{
	int ok = 0;
	pthread_mutex_lock(&imds_mu);
	for (size_t i = 0; i < RING; i++)
		if (r->tok[i][0] && srv_secure_eq(r->tok[i], tok)) ok = 1;
	pthread_mutex_unlock(&imds_mu);
	return ok;
}
static struct { char tok[57]; long long expires; } imds_tokens[IMDS_TOKENS];
static size_t imds_next;

/* identity: what was asked, for --cred-seed's derived keys (see srv_auth_issue_for). */
static int issue(long ttl, const char *identity, issued *c)
{
	if (srv_auth_issue_for(ttl, identity, c->akid, c->secret, c->token, &c->expires) != 0) return -1;
	srv_iso8601(c->expires, c->expiration);
	return 0;
}

static void set_body(srv_reply *r, int status, const char *ctype, br_buf *b)
{
	emu_response_free(&r->rs);
	r->rs.status = status;
	emu_response_add_header(&r->rs, "content-type", ctype);
	r->rs.body = *b;
	memset(b, 0, sizeof *b);
}

static void text_reply(srv_reply *r, int status, const char *text)
{
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, text);
	set_body(r, status, "text/plain", &b);
}

/* ---- IMDSv2 ---- */

static int imds_token_ok(const char *tok)
{
	int ok = 0;
	long long now = (long long)time(NULL);
	if (!tok) return 0;
	pthread_mutex_lock(&imds_mu);
	for (size_t i = 0; i < IMDS_TOKENS; i++)
		if (imds_tokens[i].tok[0] && imds_tokens[i].expires > now &&
		    srv_secure_eq(imds_tokens[i].tok, tok))
			ok = 1;
	pthread_mutex_unlock(&imds_mu);
	return ok;
}

static void imds(srv_request *rq, srv_reply *r)
{
	const char *p = rq->path;
	if (strcmp(p, "/latest/api/token") == 0) {
		if (strcmp(rq->method, "PUT") != 0) {
			text_reply(r, 405, "");
			return;
		}
		const char *ttl_s = srv_request_header(rq, "x-aws-ec2-metadata-token-ttl-seconds");
		long ttl = ttl_s ? strtol(ttl_s, NULL, 10) : 0;
		if (ttl < 1 || ttl > 21600) {
			text_reply(r, 400, "");
			return;
		}
		char tok[57];
		srv_random_alnum(tok, 56, "AQAEA");
		pthread_mutex_lock(&imds_mu);
		snprintf(imds_tokens[imds_next].tok, sizeof imds_tokens[0].tok, "%s", tok);
		imds_tokens[imds_next].expires = (long long)time(NULL) + ttl;
		imds_next = (imds_next + 1) % IMDS_TOKENS;
		pthread_mutex_unlock(&imds_mu);
		text_reply(r, 200, tok);
		char ttl_h[24];
		snprintf(ttl_h, sizeof ttl_h, "%ld", ttl);
		emu_response_add_header(&r->rs, "x-aws-ec2-metadata-token-ttl-seconds", ttl_h);
		return;
	}
	if (strcmp(rq->method, "GET") != 0) {
		text_reply(r, 405, "");
		return;
	}
	if (!imds_token_ok(srv_request_header(rq, "x-aws-ec2-metadata-token"))) {
		text_reply(r, 401, "");
		return;
	}
	const char *base = "/latest/meta-data/iam/security-credentials";
	size_t bl = strlen(base);
	if (strcmp(p, base) == 0 || (strncmp(p, base, bl) == 0 && strcmp(p + bl, "/") == 0)) {
		text_reply(r, 200, srv_cfg.role_name);
		return;
	}
	if (strncmp(p, base, bl) != 0 || p[bl] != '/' || strcmp(p + bl + 1, srv_cfg.role_name) != 0) {
		text_reply(r, 404, "");
		return;
	}
	issued c;
	char now_s[32];
	srv_iso8601((long long)time(NULL), now_s);
	char ident[300];
	snprintf(ident, sizeof ident, "imds\n%s", srv_cfg.role_name);
	if (issue(srv_cfg.cred_ttl, ident, &c) != 0) {
		text_reply(r, 500, "");
		return;
	}
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"");
	br_buf_append_str(&b, now_s);
	br_buf_append_str(&b, "\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"");
	br_buf_append_str(&b, c.akid);
	br_buf_append_str(&b, "\",\n  \"SecretAccessKey\" : \"");
	br_buf_append_str(&b, c.secret);
	br_buf_append_str(&b, "\",\n  \"Token\" : \"");
	br_buf_append_str(&b, c.token);
	br_buf_append_str(&b, "\",\n  \"Expiration\" : \"");
	br_buf_append_str(&b, c.expiration);
	br_buf_append_str(&b, "\"\n}");
	set_body(r, 200, "text/plain", &b);
}

/* ---- ECS/EKS container endpoint ---- */

static void container(srv_request *rq, srv_reply *r)
{
	if (srv_cfg.container_token) {
		const char *auth = srv_request_header(rq, "authorization");
		if (!auth || !srv_secure_eq(auth, srv_cfg.container_token)) {
			br_buf b = BR_BUF_INIT;
			br_buf_append_str(&b, "{\"Code\":\"AccessDeniedException\",\"Message\":\"Invalid authorization token\"}");
			set_body(r, 401, "application/json", &b);
			return;
		}
	}
	issued c;
	if (issue(srv_cfg.cred_ttl, "container", &c) != 0) {
		text_reply(r, 500, "");
		return;
	}
	br_buf b = BR_BUF_INIT;
	char line[512];
	snprintf(line, sizeof line, "{\"RoleArn\":\"arn:aws:iam::%s:role/%s\",\"AccountId\":\"%s\",",
		 srv_cfg.account_id, srv_cfg.role_name, srv_cfg.account_id);
	br_buf_append_str(&b, line);
	snprintf(line, sizeof line, "\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\",", c.akid, c.secret);
	br_buf_append_str(&b, line);
	snprintf(line, sizeof line, "\"Token\":\"%s\",\"Expiration\":\"%s\"}", c.token, c.expiration);
	br_buf_append_str(&b, line);
	set_body(r, 200, "application/json", &b);
}

/* ---- STS ---- */

static void sts_error(srv_reply *r, int status, const char *type, const char *code,
		      const char *msg)
{
	char id[37];
	srv_uuid(id);
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, "<ErrorResponse xmlns=\"" STS_NS "\">\n  <Error>\n    <Type>");
	br_buf_append_str(&b, type);
	br_buf_append_str(&b, "</Type>\n    <Code>");
	br_buf_append_str(&b, code);
	br_buf_append_str(&b, "</Code>\n    <Message>");
	srv_xml_escape(&b, msg);
	br_buf_append_str(&b, "</Message>\n  </Error>\n  <RequestId>");
	br_buf_append_str(&b, id);
	br_buf_append_str(&b, "</RequestId>\n</ErrorResponse>\n");
	set_body(r, status, "text/xml", &b);
	emu_response_add_header(&r->rs, "x-amzn-RequestId", id);
}

/* STS spells the authentication errors its own way. */
static const char *sts_code(const char *type)
{
	if (strcmp(type, "UnrecognizedClientException") == 0) return "InvalidClientTokenId";
	if (strcmp(type, "InvalidSignatureException") == 0) return "SignatureDoesNotMatch";
	if (strcmp(type, "ExpiredTokenException") == 0) return "ExpiredToken";
	if (strcmp(type, "AccessDeniedException") == 0) return "MissingAuthenticationToken";
	if (strcmp(type, "IncompleteSignatureException") == 0) return "IncompleteSignature";
	return type;
}

static char *form_get(srv_request *rq, const char *key)
{
	char *v = NULL;
	if (rq->body.len) {
		char *body = malloc(rq->body.len + 1);
		if (!body) return NULL;
		memcpy(body, rq->body.data, rq->body.len);
		body[rq->body.len] = '\0';
		v = srv_query_get(body, key, 1);
		free(body);
	}
	return v ? v : srv_query_get(rq->query, key, 1);
}

static void sts(srv_request *rq, srv_reply *r, const char *action)
{
	int web = strcmp(action, "AssumeRoleWithWebIdentity") == 0;
	char *role_arn = form_get(rq, "RoleArn");
	char *session = form_get(rq, "RoleSessionName");
	char *web_token = web ? form_get(rq, "WebIdentityToken") : NULL;
	char *dur = form_get(rq, "DurationSeconds");
	long ttl = dur ? strtol(dur, NULL, 10) : srv_cfg.cred_ttl;
	if (ttl <= 0) ttl = srv_cfg.cred_ttl;

	char signer[128] = "";
	if (!web && !srv_cfg.no_auth) {
		srv_auth a;
		if (srv_auth_check(rq, "sts", 0, NULL, 0, &a) != 0) {
			sts_error(r, a.err_status, "Sender", sts_code(a.err_type), a.err_msg);
			goto done;
		}
		snprintf(signer, sizeof signer, "%s", a.akid);
	}
	if (!role_arn || !*role_arn || !session || !*session) {
		sts_error(r, 400, "Sender", "ValidationError",
			  !role_arn || !*role_arn
				  ? "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
				  : "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
		goto done;
	}
	if (web && (!web_token || !*web_token ||
		    (srv_cfg.web_identity_token && !srv_secure_eq(web_token, srv_cfg.web_identity_token)))) {
		sts_error(r, 400, "Sender", "InvalidIdentityToken",
			  "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.");
		goto done;
	}
	issued c;
	char *ext = web ? NULL : form_get(rq, "ExternalId");
	br_buf ident = BR_BUF_INIT;
	br_buf_append_str(&ident, action);
	const char *parts[] = { role_arn, session, dur ? dur : "", ext ? ext : "",
				web ? web_token : signer };
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		br_buf_append_byte(&ident, '\n');
		br_buf_append_str(&ident, parts[i]);
	}
	br_buf_append_byte(&ident, '\0');
	int rc = issue(ttl, (const char *)ident.data, &c);
	br_buf_free(&ident);
	free(ext);
	if (rc != 0) {
		sts_error(r, 500, "Receiver", "InternalFailure", "out of memory");
		goto done;
	}
	const char *slash = strrchr(role_arn, '/');
	const char *role = slash ? slash + 1 : role_arn;
	char id[37], role_id[22];
	srv_uuid(id);
	srv_random_alnum(role_id, 21, "AROA");
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, web ? "<AssumeRoleWithWebIdentityResponse" : "<AssumeRoleResponse");
	br_buf_append_str(&b, " xmlns=\"" STS_NS "\">\n  <");
	br_buf_append_str(&b, action);
	br_buf_append_str(&b, "Result>\n");
	if (web) {
		br_buf_append_str(&b, "    <SubjectFromWebIdentityToken>emulator-subject</SubjectFromWebIdentityToken>\n"
				      "    <Audience>sts.amazonaws.com</Audience>\n"
				      "    <Provider>emulator</Provider>\n");
	}
	br_buf_append_str(&b, "    <AssumedRoleUser>\n      <AssumedRoleId>");
	br_buf_append_str(&b, role_id);
	br_buf_append_byte(&b, ':');
	srv_xml_escape(&b, session);
	br_buf_append_str(&b, "</AssumedRoleId>\n      <Arn>arn:aws:sts::");
	br_buf_append_str(&b, srv_cfg.account_id);
	br_buf_append_str(&b, ":assumed-role/");
	srv_xml_escape(&b, role);
	br_buf_append_byte(&b, '/');
	srv_xml_escape(&b, session);
	br_buf_append_str(&b, "</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>");
	br_buf_append_str(&b, c.akid);
	br_buf_append_str(&b, "</AccessKeyId>\n      <SecretAccessKey>");
	br_buf_append_str(&b, c.secret);
	br_buf_append_str(&b, "</SecretAccessKey>\n      <SessionToken>");
	br_buf_append_str(&b, c.token);
	br_buf_append_str(&b, "</SessionToken>\n      <Expiration>");
	br_buf_append_str(&b, c.expiration);
	br_buf_append_str(&b, "</Expiration>\n    </Credentials>\n  </");
	br_buf_append_str(&b, action);
	br_buf_append_str(&b, "Result>\n  <ResponseMetadata>\n    <RequestId>");
	br_buf_append_str(&b, id);
	br_buf_append_str(&b, "</RequestId>\n  </ResponseMetadata>\n</");
	br_buf_append_str(&b, web ? "AssumeRoleWithWebIdentityResponse" : "AssumeRoleResponse");
	br_buf_append_str(&b, ">\n");
	set_body(r, 200, "text/xml", &b);
	emu_response_add_header(&r->rs, "x-amzn-RequestId", id);
done:
	free(role_arn);
	free(session);
	free(web_token);
	free(dur);
}

/* ---- SSO portal ---- */

static void sso_error(srv_reply *r, int status, const char *type, const char *msg)
{
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, "{\"message\":\"");
	srv_json_escape(&b, msg);
	br_buf_append_str(&b, "\"}");
	set_body(r, status, "application/json", &b);
	emu_response_add_header(&r->rs, "x-amzn-ErrorType", type);
}

static void sso(srv_request *rq, srv_reply *r)
{
	const char *tok = srv_request_header(rq, "x-amz-sso_bearer_token");
	char *role = srv_query_get(rq->query, "role_name", 0);
	char *acct = srv_query_get(rq->query, "account_id", 0);
	if (!tok || !*tok || (srv_cfg.sso_token && !srv_secure_eq(tok, srv_cfg.sso_token) &&
			      !ring_has(&sso_access, tok))) {
		sso_error(r, 401, "UnauthorizedException", "Session token not found or invalid");
	} else if (!role || !*role || !acct || !*acct) {
		sso_error(r, 400, "InvalidRequestException", "role_name and account_id are required");
	} else {
		issued c;
		char ident[600];
		snprintf(ident, sizeof ident, "sso\n%.250s\n%.250s", acct, role);
		if (issue(srv_cfg.cred_ttl, ident, &c) != 0) {
			sso_error(r, 500, "InternalServerException", "out of memory");
		} else {
			char line[512];
			br_buf b = BR_BUF_INIT;
			snprintf(line, sizeof line,
				 "{\"roleCredentials\":{\"accessKeyId\":\"%s\",\"secretAccessKey\":\"%s\",\"sessionToken\":\"",
				 c.akid, c.secret);
			br_buf_append_str(&b, line);
			br_buf_append_str(&b, c.token);
			snprintf(line, sizeof line, "\",\"expiration\":%lld}}", c.expires * 1000);
			br_buf_append_str(&b, line);
			set_body(r, 200, "application/json", &b);
		}
	}
	free(role);
	free(acct);
}

/* ---- SSO-OIDC CreateToken (refresh_token grant) ---- */

static void oidc_error(srv_reply *r, int status, const char *type, const char *err,
		       const char *desc)
{
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, "{\"error\":\"");
	br_buf_append_str(&b, err);
	br_buf_append_str(&b, "\",\"error_description\":\"");
	srv_json_escape(&b, desc);
	br_buf_append_str(&b, "\"}");
	set_body(r, status, "application/json", &b);
	emu_response_add_header(&r->rs, "x-amzn-ErrorType", type);
}

static void oidc_token(srv_request *rq, srv_reply *r)
{
	char perr[128];
	json *in = json_parse((const char *)rq->body.data, rq->body.len, perr, sizeof perr);
	const char *grant = json_get_str(in, "grantType"), *id = json_get_str(in, "clientId");
	const char *secret = json_get_str(in, "clientSecret"), *refresh = json_get_str(in, "refreshToken");
	if (!in || !id || !*id || !secret || !*secret || !grant) {
		oidc_error(r, 400, "InvalidRequestException", "invalid_request",
			   "clientId, clientSecret and grantType are required");
	} else if (strcmp(grant, "refresh_token") != 0) {
		oidc_error(r, 400, "UnsupportedGrantTypeException", "unsupported_grant_type",
			   "the emulator serves the refresh_token grant only");
	} else if (!refresh || !*refresh ||
		   (srv_cfg.sso_refresh_token && !srv_secure_eq(refresh, srv_cfg.sso_refresh_token) &&
		    !ring_has(&sso_refresh, refresh))) {
		oidc_error(r, 400, "InvalidGrantException", "invalid_grant", "Invalid refresh token provided");
	} else {
		char access[61], next[61];
		srv_random_alnum(access, 60, "aoaEMU");
		srv_random_alnum(next, 60, "aorEMU");
		ring_add(&sso_access, access);
		ring_add(&sso_refresh, next);
		br_buf b = BR_BUF_INIT;
		json_writer w;
		jw_init(&w, &b);
		jw_obj(&w);
		jw_key(&w, "accessToken");
		jw_str(&w, access);
		jw_key(&w, "tokenType");
		jw_str(&w, "Bearer");
		jw_key(&w, "expiresIn");
		jw_int(&w, srv_cfg.cred_ttl);
		jw_key(&w, "refreshToken");
		jw_str(&w, next);
		jw_obj_end(&w);
		set_body(r, 200, "application/json", &b);
	}
	json_free(in);
}

/* ---- sign-in CreateOAuth2Token (`aws login` refresh, DPoP-bound) ---- */

static void signin_error(srv_reply *r, int status, const char *type, const char *err,
			 const char *msg)
{
	br_buf b = BR_BUF_INIT;
	br_buf_append_str(&b, "{\"error\":\"");
	br_buf_append_str(&b, err);
	br_buf_append_str(&b, "\",\"message\":\"");
	srv_json_escape(&b, msg);
	br_buf_append_str(&b, "\"}");
	set_body(r, status, "application/json", &b);
	emu_response_add_header(&r->rs, "x-amzn-ErrorType", type);
}

/* base64url without padding -> bytes in out (cap); the length, or -1. */
static long b64url(const char *s, size_t n, uint8_t *out, size_t cap)
{
	char tmp[2048];
	size_t len = 0, bad = 0, m = 0;
	if (n + 3 > sizeof tmp || br_base64_decoded_max(n + 3) > cap) return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+' || c == '/' || c == '=') return -1;
		tmp[m++] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	while (m % 4) tmp[m++] = '=';
	if (br_base64_decode(tmp, m, out, &len, &bad) != BR_OK) return -1;
	return (long)len;
}

/* Decodes a base64url JSON part of a JWT; NULL when it is not a JSON object. */
static json *jwt_part(const char *s, size_t n)
{
	uint8_t buf[1600];
	char perr[64];
	long len = b64url(s, n, buf, sizeof buf);
	if (len < 0) return NULL;
	json *v = json_parse((const char *)buf, (size_t)len, perr, sizeof perr);
	if (v && v->type != JSON_OBJECT) {
		json_free(v);
		return NULL;
	}
	return v;
}

static int b64url_exact(const char *s, uint8_t *out, size_t want)
{
	uint8_t buf[128];
	long len = s ? b64url(s, strlen(s), buf, sizeof buf) : -1;
	if (len != (long)want) return -1;
	memcpy(out, buf, want);
	return 0;
}

int srv_dpop_check(const char *proof, const char *htm, const char *htu, long long now,
		   long skew, char *why, size_t cap)
{
	const char *d1 = proof ? strchr(proof, '.') : NULL;
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	json *hdr = NULL, *pl = NULL;
	uint8_t x[32], y[32], sig[64];
	int rc = -1;
	if (!d1 || !d2 || strchr(d2 + 1, '.')) {
		snprintf(why, cap, "the DPoP proof is not a compact JWS (three dot-separated parts)");
		goto done;
	}
	hdr = jwt_part(proof, (size_t)(d1 - proof));
	pl = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!hdr || !pl) {
		snprintf(why, cap, "the DPoP proof's header or payload is not base64url JSON");
		goto done;
	}
	const char *typ = json_get_str(hdr, "typ"), *alg = json_get_str(hdr, "alg");
	const json *jwk = json_get(hdr, "jwk");
	if (!typ || strcmp(typ, "dpop+jwt") != 0 || !alg || strcmp(alg, "ES256") != 0) {
		snprintf(why, cap, "the DPoP proof's header must have typ dpop+jwt and alg ES256");
		goto done;
	}
	const char *kty = json_get_str(jwk, "kty"), *crv = json_get_str(jwk, "crv");
	if (!kty || strcmp(kty, "EC") != 0 || !crv || strcmp(crv, "P-256") != 0 ||
	    b64url_exact(json_get_str(jwk, "x"), x, 32) != 0 ||
	    b64url_exact(json_get_str(jwk, "y"), y, 32) != 0) {
		snprintf(why, cap, "the DPoP proof's jwk must be an EC P-256 key with 32-byte x and y");
		goto done;
	}
	const char *p_htm = json_get_str(pl, "htm"), *p_htu = json_get_str(pl, "htu");
	const char *jti = json_get_str(pl, "jti");
	long long iat = 0;
	if (!p_htm || strcmp(p_htm, htm) != 0) {
		snprintf(why, cap, "the DPoP proof's htm must be %s", htm);
		goto done;
	}
	if (!p_htu || strcmp(p_htu, htu) != 0) {
		snprintf(why, cap, "the DPoP proof's htu must be %.200s", htu);
		goto done;
	}
	if (!jti || !*jti) {
		snprintf(why, cap, "the DPoP proof has no jti");
		goto done;
	}
	if (!json_int(json_get(pl, "iat"), &iat) || iat < now - skew || iat > now + skew) {
		snprintf(why, cap, "the DPoP proof's iat is missing or outside %ld s of the server's clock", skew);
		goto done;
	}
	if (b64url_exact(d2 + 1, sig, 64) != 0) {
		snprintf(why, cap, "the DPoP proof's signature is not 64 bytes of base64url");
		goto done;
	}
	br_status st = br_es256_verify(x, y, (const uint8_t *)proof, (size_t)(d2 - proof), sig);
	if (st != BR_OK) {
		snprintf(why, cap, "the DPoP proof's signature %s",
			 st == BR_BAD_SIGNATURE ? "does not verify with its jwk" : "cannot be checked: bad key");
		goto done;
	}
	rc = 0;
done:
	json_free(hdr);
	json_free(pl);
	return rc;
}

static void signin_token(srv_request *rq, srv_reply *r)
{
	char perr[128], why[256], htu[512];
	json *in = json_parse((const char *)rq->body.data, rq->body.len, perr, sizeof perr);
	const char *grant = json_get_str(in, "grantType"), *id = json_get_str(in, "clientId");
	const char *refresh = json_get_str(in, "refreshToken");
	const char *host = srv_request_header(rq, "host");
	if (!host) host = srv_request_header(rq, ":authority");
	snprintf(htu, sizeof htu, "%s://%s%s", srv_cfg.tls_cert ? "https" : "http", host ? host : "",
		 rq->path);
	if (!in || !id || !*id || !grant) {
		signin_error(r, 400, "ValidationException", "INVALID_REQUEST",
			     "clientId and grantType are required");
	} else if (strcmp(grant, "refresh_token") != 0) {
		signin_error(r, 400, "ValidationException", "INVALID_REQUEST",
			     "the emulator serves the refresh_token grant only");
	} else if (srv_dpop_check(srv_request_header(rq, "dpop"), "POST", htu, (long long)time(NULL),
				  srv_cfg.skew_seconds, why, sizeof why) != 0) {
		signin_error(r, 400, "ValidationException", "INVALID_REQUEST", why);
	} else if (!refresh || !*refresh ||
		   (srv_cfg.login_refresh_token && !srv_secure_eq(refresh, srv_cfg.login_refresh_token) &&
		    !ring_has(&login_refresh, refresh))) {
		signin_error(r, 401, "AccessDeniedException", "TOKEN_EXPIRED",
			     "The refresh token has expired. Run aws login again.");
	} else {
		issued c;
		long ttl = srv_cfg.cred_ttl < 900 ? srv_cfg.cred_ttl : 900;
		char ident[80];
		snprintf(ident, sizeof ident, "signin\n%.60s", refresh);
		if (issue(ttl, ident, &c) != 0) {
			signin_error(r, 500, "InternalServerException", "server_error", "out of memory");
		} else {
			/* The next refresh token follows from this one: same request, same answer. */
			char next[64], hex[41];
			br_crypto_sha1_hex(refresh, strlen(refresh), hex);
			snprintf(next, sizeof next, "emu-login-refresh-%s", hex);
			ring_add(&login_refresh, next);
			br_buf b = BR_BUF_INIT;
			json_writer w;
			jw_init(&w, &b);
			jw_obj(&w);
			jw_key(&w, "accessToken");
			jw_obj(&w);
			jw_key(&w, "accessKeyId");
			jw_str(&w, c.akid);
			jw_key(&w, "secretAccessKey");
			jw_str(&w, c.secret);
			jw_key(&w, "sessionToken");
			jw_str(&w, c.token);
			jw_obj_end(&w);
			jw_key(&w, "tokenType");
			jw_str(&w, "aws_sigv4");
			jw_key(&w, "expiresIn");
			jw_int(&w, ttl);
			jw_key(&w, "refreshToken");
			jw_str(&w, next);
			jw_obj_end(&w);
			set_body(r, 200, "application/json", &b);
		}
	}
	json_free(in);
}

int srv_creds_handle(srv_request *rq, srv_reply *r)
{
	const char *p = rq->path;
	if (strncmp(p, "/latest/", 8) == 0) {
		imds(rq, r);
		return 1;
	}
	if (strcmp(rq->method, "GET") == 0 &&
	    (strncmp(p, "/v2/credentials", 15) == 0 || strncmp(p, "/container-credentials", 22) == 0)) {
		container(rq, r);
		return 1;
	}
	if (strcmp(rq->method, "GET") == 0 && strcmp(p, "/federation/credentials") == 0) {
		sso(rq, r);
		return 1;
	}
	if (strcmp(rq->method, "POST") == 0 && strcmp(p, "/token") == 0) {
		oidc_token(rq, r);
		return 1;
	}
	if (strcmp(rq->method, "POST") == 0 && strcmp(p, "/v1/token") == 0) {
		signin_token(rq, r);
		return 1;
	}
	if (strcmp(p, "/") == 0 && (strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "GET") == 0)) {
		char *action = form_get(rq, "Action");
		int handled = 0;
		if (action && (strcmp(action, "AssumeRole") == 0 ||
			       strcmp(action, "AssumeRoleWithWebIdentity") == 0)) {
			sts(rq, r, action);
			handled = 1;
		} else if (action) {
			sts_error(r, 400, "Sender", "InvalidAction",
				  "Could not find operation for the emulator's STS endpoint.");
			handled = 1;
		}
		free(action);
		return handled;
	}
	return 0;
}
