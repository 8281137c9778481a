/* AWS Signature Version 4, built as the spec's stages (canonical request, string to
 * sign, signing key, signature, Authorization), each reachable for tests; presigned
 * query signing; and event-stream message signing (AWS4-HMAC-SHA256-PAYLOAD).
 * Plain C over OpenSSL's libcrypto; no Lua. */
#ifndef BR_SIGV4_H
#define BR_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include "br_buf.h"
#include "br_errors.h"

typedef struct {
	const char *name;   /* any case; canonicalised (lower-cased) by the signer */
	size_t name_len;
	const char *value;  /* trimmed, inner whitespace runs folded by the signer */
	size_t value_len;
} br_sigv4_header;

typedef struct {
	const char *access_key;
	const char *secret_key;
	const char *session_token;   /* NULL when none */
	const char *region;
	const char *service;         /* "bedrock" for Bedrock Runtime */
	const char *amz_date;        /* "YYYYMMDDTHHMMSSZ" */
	int normalize_path;          /* 1: drop empty, "." and ".." segments (non-S3 rule) */
	int sign_token;              /* 1: sign the token (default); 0: add it unsigned after */
	long expires;                /* presign only: X-Amz-Expires seconds */
} br_sigv4_params;

typedef struct {
	const char *method;
	const char *path;            /* as sent on the wire (already percent-encoded labels) */
	size_t path_len;
	const char *query;           /* raw query as sent, without '?'; NULL or "" for none */
	size_t query_len;
	const br_sigv4_header *headers;  /* must include host (or :authority) */
	size_t nheaders;
	const uint8_t *payload;      /* body bytes, hashed unless payload_hash is given */
	size_t payload_len;
	const char *payload_hash;    /* e.g. "STREAMING-AWS4-HMAC-SHA256-EVENTS"; NULL = hash */
} br_sigv4_request;

/* Results point into the signer's own buffers: valid until the next call on it. */
typedef struct {
	const char *canonical_request;
	const char *string_to_sign;
	const char *signed_headers;   /* "content-type;host;x-amz-date" */
	const char *signature;        /* 64 lowercase hex */
	const char *authorization;    /* header form: full Authorization value */
	const char *query;            /* presign form: the complete signed query string */
} br_sigv4_result;

typedef struct br_sigv4_signer br_sigv4_signer;

/* A signer holds scratch buffers and the signing-key cache keyed by
 * (secret, date, region, service): repeated signing with the same key costs one HMAC
 * for the signature plus the hashes. Not thread-safe; one per thread. Free wipes keys. */
br_sigv4_signer *br_sigv4_new(void);
void br_sigv4_free(br_sigv4_signer *s);

/* Header signing: the caller adds X-Amz-Date (and X-Amz-Security-Token when a token is
 * used and sign_token) to req->headers itself, so what is signed is what is sent. */
br_status br_sigv4_sign(br_sigv4_signer *s, const br_sigv4_params *p,
			const br_sigv4_request *req, br_sigv4_result *out);

/* Presigned URL: adds X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders (and the
 * token) to the query, signs, and gives the full query string in out->query. */
br_status br_sigv4_presign(br_sigv4_signer *s, const br_sigv4_params *p,
			   const br_sigv4_request *req, br_sigv4_result *out);

/* The 32-byte signing key for (secret, yyyymmdd, region, service), from the cache. */
br_status br_sigv4_signing_key(br_sigv4_signer *s, const char *secret, const char *date8,
			       const char *region, const char *service, uint8_t key[32]);

/* Event signing: signature over one event-stream frame's :date header and payload,
 * chained from prior_sig_hex (the seed request signature, "" for none). date_ms is the
 * :date header value; amz_date/date derived from it. Writes 32 raw bytes to sig and,
 * when sig_hex is not NULL, 64 hex chars + NUL. out->string_to_sign is also filled when
 * out is not NULL. */
br_status br_sigv4_sign_event(br_sigv4_signer *s, const br_sigv4_params *p,
			      const char *prior_sig_hex, int64_t date_ms,
			      const uint8_t *payload, size_t payload_len,
			      uint8_t sig[32], char sig_hex[65], br_sigv4_result *out);

/* Formats a UNIX time (seconds) as "YYYYMMDDTHHMMSSZ" into buf[17]. */
void br_sigv4_amz_date(int64_t unix_seconds, char buf[17]);

#endif
