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

/* Range of UNIX seconds that br_sigv4_amz_date can format (years 0000..9999). */
#define BR_SIGV4_TIME_MIN (-62167219200LL)
#define BR_SIGV4_TIME_MAX 253402300799LL
/* Longest X-Amz-Expires AWS accepts (7 days). */
#define BR_SIGV4_EXPIRES_MAX 604800L

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

/* Results point into the signer's own buffers: valid until the next call on it.
 * Every string is NUL-terminated; fields a call does not produce are NULL. */
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
 * for the signature plus the hashes. Not thread-safe; one per thread. Free wipes keys.
 * br_sigv4_new returns NULL when out of memory; br_sigv4_free(NULL) is a no-op. */
br_sigv4_signer *br_sigv4_new(void);
void br_sigv4_free(br_sigv4_signer *s);

/* Header signing. The signer signs exactly the headers it is given, so what is signed is
 * what is sent: the caller puts X-Amz-Date (and X-Amz-Security-Token when a token is
 * used) into req->headers itself. With sign_token == 0 an x-amz-security-token header is
 * left out of the signature (the caller still sends it). The payload hash is
 * req->payload_hash, else the value of an x-amz-content-sha256 header, else the hex
 * SHA-256 of the payload. The path must be empty or start with '/' and hold no raw '?'
 * or '#' (BR_BAD_PATH); a header list without host/:authority or with an empty or
 * malformed name is BR_BAD_HEADER; a bad amz_date is BR_BAD_DATE; missing credentials,
 * region or service are BR_INVAL. On error the out fields are unspecified. */
br_status br_sigv4_sign(br_sigv4_signer *s, const br_sigv4_params *p,
			const br_sigv4_request *req, br_sigv4_result *out);

/* Presigned URL: adds X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders (and the
 * token, signed or, with sign_token == 0, added after) to the request's own query
 * parameters, signs, and gives the full query string in out->query (canonical order,
 * X-Amz-Signature last). p->expires must be 1..BR_SIGV4_EXPIRES_MAX (else BR_RANGE).
 * Same input rules as br_sigv4_sign. */
br_status br_sigv4_presign(br_sigv4_signer *s, const br_sigv4_params *p,
			   const br_sigv4_request *req, br_sigv4_result *out);

/* The 32-byte signing key for (secret, yyyymmdd, region, service), from the cache
 * (derived and cached on a miss). date8 is exactly 8 digits; BR_INVAL otherwise. */
br_status br_sigv4_signing_key(br_sigv4_signer *s, const char *secret, const char *date8,
			       const char *region, const char *service, uint8_t key[32]);

/* Event signing: signature over one event-stream frame's :date header and payload,
 * chained from prior_sig_hex (the seed request signature, "" or NULL for none).
 * date_ms is the :date header value (ms since the epoch); the signing time (string to
 * sign, scope date, key) is date_ms truncated to seconds, and p->amz_date is ignored.
 * The 15 :date header bytes (05 ":date" 08 int64-BE) are built here. Uses access/secret
 * key, region and service from p. Writes 32 raw bytes to sig and, when sig_hex is not
 * NULL, 64 hex chars + NUL. out->string_to_sign and out->signature are also filled when
 * out is not NULL (other fields NULL). BR_RANGE when date_ms is outside years 0..9999. */
br_status br_sigv4_sign_event(br_sigv4_signer *s, const br_sigv4_params *p,
			      const char *prior_sig_hex, int64_t date_ms,
			      const uint8_t *payload, size_t payload_len,
			      uint8_t sig[32], char sig_hex[65], br_sigv4_result *out);

/* The general form of br_sigv4_sign_event: the signing time is amz_date
 * ("YYYYMMDDTHHMMSSZ", BR_BAD_DATE otherwise) and the hashed header block is hdr/hdr_len
 * taken verbatim (normally the encoded :date header; it may disagree with amz_date,
 * as some SDK vectors do). Same outputs as br_sigv4_sign_event. */
br_status br_sigv4_sign_event_raw(br_sigv4_signer *s, const br_sigv4_params *p,
				  const char *prior_sig_hex, const char *amz_date,
				  const uint8_t *hdr, size_t hdr_len,
				  const uint8_t *payload, size_t payload_len,
				  uint8_t sig[32], char sig_hex[65], br_sigv4_result *out);

/* Writes the 15-byte encoded :date event-stream header for date_ms into out. */
void br_sigv4_event_date_header(int64_t date_ms, uint8_t out[15]);

/* Appends s[0..n) percent-encoded: every byte outside A-Z a-z 0-9 - . _ ~ becomes %XX
 * (uppercase hex); '/' stays bare when keep_slash. Used for path labels and query
 * parts. BR_NOMEM when the buffer cannot grow (buffer unchanged). */
br_status br_sigv4_uri_encode(br_buf *b, const char *s, size_t n, int keep_slash);

/* Formats a UNIX time (seconds) as "YYYYMMDDTHHMMSSZ" + NUL into buf[17]. Times outside
 * BR_SIGV4_TIME_MIN..BR_SIGV4_TIME_MAX are clamped to that range. */
void br_sigv4_amz_date(int64_t unix_seconds, char buf[17]);

/* Lowercase hex SHA-256 of p[0..n) into hex[65] (NUL-terminated). */
void br_sigv4_sha256_hex(const void *p, size_t n, char hex[65]);

/* HMAC-SHA256(key, msg) into out[32]; any key length. */
void br_sigv4_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
			  uint8_t out[32]);

#endif
