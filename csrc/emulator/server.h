/* bedrock-emulator, server half: the types and functions its files share (transport,
 * dispatch, authentication, faults, statistics, credential endpoints). The operations
 * half never sees this header; it only sees emu.h.
 *
 * Threading: one thread per connection. Everything reachable from several connections
 * (configuration after start-up is read-only; faults, statistics, issued credentials) is
 * behind its owner file's mutex. */
#ifndef SERVER_H
#define SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "emu.h"
#include "../br_buf.h"

/* ---- configuration (main.c fills it once, before the first connection) ---- */

typedef struct {
	const char *tls_cert, *tls_key;  /* both set: HTTPS with ALPN h2, http/1.1 */
	int no_auth;                     /* 1: no SigV4/bearer checks at all */
	int event_delay_ms;              /* start value of the pacing (--event-delay) */
	long cred_ttl;                   /* seconds issued credentials live (--cred-ttl) */
	const char *cred_seed;           /* --cred-seed: issued keys derived, not random */
	const char *container_token;     /* required Authorization on the container endpoint */
	const char *sso_token;           /* accepted x-amz-sso_bearer_token (NULL: any) */
	const char *sso_refresh_token;   /* accepted SSO-OIDC refresh token (NULL: any) */
	const char *login_refresh_token; /* accepted sign-in refresh token (NULL: any) */
	const char *web_identity_token;  /* accepted WebIdentityToken (NULL: any) */
	const char *role_name;           /* IMDS role name */
	const char *account_id;          /* account in ARNs and the SSO answer */
	int skew_seconds;                /* allowed clock skew for SigV4 (300) */
	int verbose;                     /* 1: one log line per request on stderr */
} srv_config;

extern srv_config srv_cfg;

/* 1 once SIGTERM/SIGINT arrived; waits and sleeps poll it. */
int srv_stopping(void);

/* ---- transport I/O over a plain socket or TLS (srv_io.c) ---- */

typedef struct {
	int fd;
	SSL *ssl;     /* NULL for cleartext */
	int dead;     /* set after a write error or a reset */
} srv_io;

/* Reads up to n bytes, blocking. Returns bytes read (>0), 0 at end of stream, -1 on
 * error. */
long srv_io_read(srv_io *io, void *p, size_t n);
/* Writes all n bytes, blocking. 0 on success, -1 (and io->dead) on error. */
int srv_io_write(srv_io *io, const void *p, size_t n);
/* 1 when decrypted bytes are already buffered inside TLS (poll would not see them). */
int srv_io_pending(srv_io *io);
/* Waits up to ms for readability (ms < 0: forever, still waking on shutdown). 1 readable,
 * 0 timeout, -1 error/shutdown. */
int srv_io_wait_readable(srv_io *io, int ms);
/* Sets SO_LINGER 0 so that the close that follows sends a TCP RST. */
void srv_io_abort(srv_io *io);

/* ---- TLS (tls.c) ---- */

/* Creates the server context from PEM files; ALPN offers h2 then http/1.1. NULL on
 * failure (reason printed on stderr). Free with SSL_CTX_free. */
SSL_CTX *srv_tls_new(const char *cert_file, const char *key_file);
/* 1 when the handshake negotiated "h2". */
int srv_tls_is_h2(SSL *ssl);

/* ---- one parsed request, owned (srv_request.c) ---- */

typedef struct {
	char *method, *path, *query;     /* path raw (percent-encoded), query without '?' */
	emu_header *headers;             /* names lower-case; h2 pseudo-headers kept as ":x" */
	size_t nheaders, cap;
	br_buf body;
	int http2;
	unsigned long conn_id;
	int *conn_used;                  /* the connection's "carried an API request" flag */
	char region[64];                 /* from the credential scope, or the default */
} srv_request;

/* Empties rq (no allocation). srv_request_free releases everything rq owns and leaves
 * it empty and reusable. */
void srv_request_init(srv_request *rq);
void srv_request_free(srv_request *rq);
/* Adds a header, copying both (name lower-cased). 0 or -1 on out of memory. */
int srv_request_add_header(srv_request *rq, const char *name, size_t nlen,
			   const char *value, size_t vlen);
/* First value of a header by lower-case name, or NULL. */
const char *srv_request_header(const srv_request *rq, const char *lname);
/* Splits "path?query" into rq->path and rq->query (copies). 0 or -1. */
int srv_request_set_target(srv_request *rq, const char *target, size_t n);
/* A borrowed emu_request view of rq (valid while rq lives). */
void srv_request_view(const srv_request *rq, emu_request *out);

/* ---- the answer to one request, as the transports execute it ---- */

enum { SRV_F_NONE, SRV_F_THROTTLE, SRV_F_INTERNAL, SRV_F_UNAVAILABLE, SRV_F_STALL,
       SRV_F_HANG, SRV_F_STREAM_STALL, SRV_F_RESET, SRV_F_GOAWAY, SRV_F_CRC,
       SRV_F_TRUNCATE, SRV_F_EXCEPTION, SRV_F_ERROR, SRV_F_OVERSIZE, SRV_F_ENDLESS,
       SRV_F_OOM };

typedef struct {
	int kind;            /* SRV_F_* */
	long after;          /* mid-stream faults: events sent before it strikes */
	long ms;             /* stall length; < 0 = hang until the client leaves */
	char exception[64];  /* SRV_F_EXCEPTION: :exception-type member name;
			      * SRV_F_ERROR: x-amzn-ErrorType shape name */
	char message[256];   /* SRV_F_EXCEPTION, SRV_F_ERROR: message ("" = default) */
	long status;         /* SRV_F_EXCEPTION: modelStreamErrorException originalStatusCode;
			      * SRV_F_ERROR: HTTP status (0 = the exception's own) */
	/* SRV_F_ERROR only: modeled extra members (0 / "" = defaults, see srv_error_fault) */
	long original_status;        /* originalStatusCode */
	char resource_name[256];     /* ModelErrorException resourceName */
	char original_message[256];  /* ModelStreamErrorException originalMessage */
} srv_fault;

typedef struct {
	emu_response rs;
	long pre_delay_ms;   /* stall before the status line/HEADERS; < 0 = never answer */
	long event_delay_ms; /* pacing between events (also before the first) */
	srv_fault mid;       /* mid-stream fault (kind SRV_F_NONE when none) */
	int close_after;     /* 1: close the connection after this response */
	int bidi;            /* 1: an open bidirectional stream (frames keep coming) */
	int bidi_done;       /* 1: the bidirectional stream's last frame is queued */
} srv_reply;

/* An empty reply (status 200, no fault). srv_reply_free releases the response it owns
 * (emu_response_free) and leaves an empty reply. */
void srv_reply_init(srv_reply *r);
void srv_reply_free(srv_reply *r);

/* ---- dispatch (srv_dispatch.c) ---- */

/* Answers one complete request: admin channel, credential endpoints, authentication,
 * faults, then the operations. Always fills r (status, x-amzn-RequestId, Date). */
void srv_dispatch(srv_request *rq, srv_reply *r);
/* Sets r->rs to a service error with x-amzn-ErrorType "<type>:<suffix>" and body
 * {"message": msg} (or {"Message": msg} when cap_message). suffix NULL = Bedrock's. */
void srv_error(srv_reply *r, int status, const char *type, const char *suffix,
	       int cap_message, const char *msg);
/* Sets r->rs to the answer of a kind=error fault: the status of f->exception in the
 * service's error table (f->status overrides, unknown names 400), the
 * Bedrock x-amzn-ErrorType, and a JSON body with message and the exception's modeled
 * extra members. model: the request's model id (resourceName's default). */
void srv_error_fault(const srv_fault *f, const char *model, srv_reply *r);
/* Adds x-amzn-RequestId and Date when the response lacks them. */
void srv_finish_headers(emu_response *rs);
/* Opens InvokeModelWithBidirectionalStream (HTTP/2 only): authenticates with the
 * streaming payload hash, applies pre-response faults, calls emu_ops_bidi_open. On
 * success returns the operation's stream, r is a 200 stream reply with r->bidi set and
 * *vb the input verifier (caller frees both); on failure NULL and r holds the error. */
struct srv_bidi;
emu_bidi *srv_dispatch_bidi_open(srv_request *rq, srv_reply *r, struct srv_bidi **vb);
/* 1 when path is POST /model/{id}/invoke-with-bidirectional-stream. */
int srv_is_bidi(const char *method, const char *path);
/* Value of one hex digit, or -1. */
int srv_hexval(int c);

/* ---- authentication (auth.c) ---- */

typedef struct {
	int bearer;          /* 1: via a bearer token (frames are then not verified) */
	char akid[128];
	char region[64];
	char amz_date[17];
	char signature[65];  /* the request signature: the bidi seed */
	char secret[128];    /* secret of the key (for bidi frame verification) */
	/* on failure: the service's answer */
	int err_status;
	char err_type[64];
	int err_cap;         /* 1: the body spells the member "Message" */
	char err_msg[8192];
} srv_auth;

/* Configures keys at start-up (not thread-safe: main only). 0 or -1. token may be NULL. */
int srv_auth_add_key(const char *akid, const char *secret, const char *token);
int srv_auth_add_bearer(const char *token);   /* copies token; 0 or -1 */
/* Number of configured keys plus bearer tokens. */
size_t srv_auth_nkeys(void);
/* Issues a temporary key ("ASIA" + 16), valid ttl seconds; thread-safe. Fills the
 * caller's buffers and the expiry (UNIX seconds). 0 or -1. */
int srv_auth_issue(long ttl, char akid[21], char secret[41], char token[161],
		   long long *expires);
/* As srv_auth_issue, but with --cred-seed the key, secret and token are derived from the
 * seed and `identity` (what was asked: endpoint, role, session, source key...), so the
 * same request gets the same key: two clients' results can be compared exactly. */
int srv_auth_issue_for(long ttl, const char *identity, char akid[21], char secret[41],
		       char token[161], long long *expires);
/* Verifies rq's SigV4 signature for `service` ("bedrock", "sts"), or its bearer token when
 * allow_bearer. payload_hash overrides the body hash (NULL: the x-amz-content-sha256
 * value, else the body's SHA-256). 0 and *a filled, or -1 with a->err_* set. Wipes the
 * secret from *a unless keep_secret. */
int srv_auth_check(const srv_request *rq, const char *service, int allow_bearer,
		   const char *payload_hash, int keep_secret, srv_auth *a);
/* Fills r with a's error as Bedrock's JSON error response. */
void srv_auth_reply(const srv_auth *a, srv_reply *r);
/* Frees the key store (at exit). */
void srv_auth_cleanup(void);

/* ---- faults and pacing (faults.c) ---- */

/* Adds count copies of a fault for requests whose model id starts with model (NULL or ""
 * = any). count <= 0 means until cleared. 0 or -1. */
int srv_faults_add(const srv_fault *f, long count, const char *model);
/* Drops every queued fault. Thread-safe, like every srv_faults_* and srv_pacing_*. */
void srv_faults_clear(void);
/* Takes a pre-response fault (throttle, 5xx, stall, hang) for model; 1 and *f when one
 * applies. */
int srv_faults_take_pre(const char *model, srv_fault *f);
/* Takes a mid-stream fault for a stream response for model; 1 and *f when one applies. */
int srv_faults_take_mid(const char *model, srv_fault *f);
/* Pacing in milliseconds before each event (global); before any set, --event-delay. */
long srv_pacing_get(void);
void srv_pacing_set(long ms);
/* Parses "kind=...&count=..." into a fault (see docs/emulator.md). 0 or -1 with *err. */
int srv_fault_parse(const char *query, srv_fault *f, long *count, char *model,
		    size_t model_cap, const char **err);
/* Appends the pending faults as a JSON array to b. */
void srv_faults_json(br_buf *b);
/* Frees the fault list (at exit). */
void srv_faults_cleanup(void);

/* ---- statistics (srv_stats.c) ---- */

/* Counts an accepted connection; returns its id (1, 2, ...). Thread-safe, like every
 * srv_stats_* function. */
unsigned long srv_stats_connection(int http2_hint);
/* Records one non-admin request; first = 1 for the first one on its connection;
 * content_type is the request's Content-Type header (NULL when it had none). */
void srv_stats_request(unsigned long conn, int first, const char *method, const char *path,
		       int status, int http2, const char *content_type);
/* Appends {"connections":…,"requests":…,"log":[…]} to b. */
void srv_stats_json(br_buf *b);
/* Zeroes the counters and empties the log; cleanup is the same, at exit. */
void srv_stats_reset(void);
void srv_stats_cleanup(void);

/* ---- credential endpoints (creds.c) ---- */

/* Serves IMDSv2, the container endpoint, STS and SSO when rq is one of theirs: 1 and r
 * filled; 0 when rq is not a credential request. */
int srv_creds_handle(srv_request *rq, srv_reply *r);
/* Verifies a DPoP proof (RFC 9449, ES256 only): typ, alg, the embedded P-256 jwk, htm,
 * htu, jti, iat within skew seconds of now, and the signature. 0, or -1 with the reason
 * in why (never key material). */
int srv_dpop_check(const char *proof, const char *htm, const char *htu, long long now,
		   long skew, char *why, size_t cap);

/* ---- admin channel (srv_admin.c) ---- */

/* Serves /_emulator/...; 1 when rq's path starts with /_emulator/ (always answered). */
int srv_admin_handle(srv_request *rq, srv_reply *r);

/* ---- event-stream writing with pacing and faults (srv_stream.c) ---- */

enum { SRV_S_DATA, SRV_S_WAIT, SRV_S_IDLE, SRV_S_HANG, SRV_S_RESET, SRV_S_GOAWAY,
       SRV_S_END };

typedef struct {
	int kind;            /* SRV_S_* */
	const uint8_t *p;    /* SRV_S_DATA: bytes, valid until the next step */
	size_t n;
	long ms;             /* SRV_S_WAIT: how long */
} srv_step;

typedef struct {
	srv_reply *r;
	size_t next;         /* index of the next frame */
	int waited;          /* pacing already waited for frame `next` */
	int fault_done;
	int ended;
	int endless;         /* SRV_F_ENDLESS struck: scratch holds the bytes repeated for ever */
	br_buf scratch;
} srv_streamer;

/* Starts walking r's frames (r is borrowed and must outlive s; sent frames are
 * released from r as the walk passes them, and r's producer is asked for more frames
 * only when the walk needs them: one frame beyond the next one to send, or the frames
 * of one write batch). free releases the scratch buffer. */
void srv_streamer_init(srv_streamer *s, srv_reply *r);
void srv_streamer_free(srv_streamer *s);
/* The next thing to do: DATA (write p/n), WAIT (ms, then step again), IDLE (open bidi
 * stream with nothing queued), HANG (never send more), RESET/GOAWAY (abort), END. */
void srv_streamer_step(srv_streamer *s, srv_step *out);

/* ---- bidirectional input verification (srv_bidi.c) ---- */

typedef struct srv_bidi srv_bidi;
/* Starts verifying a signed input stream. verify 0 skips signatures (bearer, --no-auth).
 * Copies what it needs from a. NULL on out of memory. */
srv_bidi *srv_bidi_new(const srv_auth *a, int verify);
void srv_bidi_free(srv_bidi *b);   /* NULL is fine; wipes the key copy */
/* Feeds request-body bytes. For each verified frame calls emu_ops_bidi_input (or
 * emu_ops_bidi_end for the empty final frame) on ops, appending to out. Returns 0, 1
 * after the final frame, or -1 on a bad frame/signature (an error frame appended). */
int srv_bidi_feed(srv_bidi *b, emu_bidi *ops, const uint8_t *p, size_t n,
		  emu_response *out);

/* ---- connections (srv_conn.c, http1.c, h2.c) ---- */

typedef struct {
	srv_io io;
	unsigned long id;
	br_buf in;            /* bytes read but not yet parsed */
} srv_conn;

/* Starts a thread serving fd (TLS when ctx). 0 or -1 (fd closed). */
int srv_conn_start(int fd, SSL_CTX *ctx);
/* Wakes every connection (shutdown) and waits up to ms for their threads to end.
 * Returns how many are still running. */
size_t srv_conn_shutdown_all(int ms);

/* Serve requests on c until the peer leaves, an error, or shutdown; c->in holds bytes
 * already read (the preface check). Neither closes the socket: srv_conn.c does. */
void srv_http1_serve(srv_conn *c);
void srv_h2_serve(srv_conn *c);

/* ---- small helpers (srv_util.c) ---- */

/* Random UUID v4 (OpenSSL RAND), lower-case, NUL-terminated. */
void srv_uuid(char out[37]);
/* n random characters into out[n + 1] (NUL-terminated), starting with prefix; upper-case
 * alphanumerics when prefix starts with 'A' (key ids), mixed case otherwise. */
void srv_random_alnum(char *out, size_t n, const char *prefix);
/* Now as an HTTP date ("Wed, 25 Nov 2026 08:00:00 GMT"); a time as ISO 8601 UTC
 * ("2026-11-25T08:00:00Z"); now in milliseconds since the epoch. */
void srv_http_date(char out[40]);
void srv_iso8601(long long unix_seconds, char out[32]);
long long srv_now_ms(void);
/* Sleeps ms in small steps; returns -1 early when stopping. */
int srv_sleep_ms(long ms);
/* Percent-decodes src[0..n) into a new string ('+' stays '+' unless form). NULL on OOM. */
char *srv_pct_decode(const char *src, size_t n, int form);
/* Value of key in a query/form string, decoded, newly allocated; NULL when absent. */
char *srv_query_get(const char *query, const char *key, int form);
/* Appends s escaped for a JSON string (no quotes). */
void srv_json_escape(br_buf *b, const char *s);
/* Appends s escaped for XML text. */
void srv_xml_escape(br_buf *b, const char *s);
/* Constant-time equality of two NUL-terminated strings. */
int srv_secure_eq(const char *a, const char *b);
/* The reason phrase for an HTTP status ("Unknown" for unlisted ones). */
const char *srv_reason(int status);
/* The model id from /model/{id}/..., percent-decoded into out (cap bytes); "" if none. */
void srv_model_of(const char *path, char *out, size_t cap);

#endif
