/* HTTP transport: libcurl multi transfers that the caller steps. Plain C, no Lua.
 *
 * Model: one br_http_multi per client holds one curl multi
 * handle, so connections are reused across transfers (HTTP/1.1 keep-alive) and HTTP/2
 * streams are multiplexed. A transfer (br_http_xfer) is started with br_http_xfer_new and
 * then advanced only by br_http_step: curl's callbacks run inside that call and do
 * nothing but copy bytes into per-transfer buffers, so no caller code ever runs while
 * libcurl is on the stack. The caller then takes what arrived (br_http_xfer_body,
 * br_http_xfer_consume), and for a streamed request body queues input with
 * br_http_xfer_send / br_http_xfer_close_input.
 *
 * Back-pressure: the response body buffer is capped (opts.buffer_cap). When a write would
 * take it past the cap, the write callback answers CURL_WRITEFUNC_PAUSE (curl keeps the
 * bytes, cw-out rule) and the transfer is unpaused as soon as the caller consumes.
 * Request body streaming works the other way round: the read callback answers
 * CURL_READFUNC_PAUSE when the input queue is empty and is resumed by the next send.
 * When the response is complete while the input is still open (a server answering, e.g.
 * with an error, before it read the whole body; complete = a status or method without
 * a body, or every byte of its Content-Length), the input is ended for the caller, so
 * that the transfer completes instead of waiting for input that no longer matters.
 *
 * Easy handles are reused: a completed transfer's handle is reset and kept by its multi
 * (a few at most) for the next transfer, which saves creating one per request.
 *
 * Timeouts are deadlines computed once from the transfer's start (total), from the
 * moment its connection is ready (first byte), and from the last byte received (idle);
 * the connect timeout is curl's CURLOPT_CONNECTTIMEOUT_MS. Each is reported distinctly.
 *
 * libcurl quirks handled here (found with 7.88, Debian 12): a reused HTTP/2
 * prior-knowledge (h2c) connection fails with "Error in the HTTP2 framing layer" before
 * 8.0.0 (curl issue #10634), so there each h2c transfer gets a fresh connection (h2 over
 * TLS is reused and multiplexed normally); and an HTTP/2 response whose END_STREAM
 * arrives before a streamed upload ends can be left unfinished, so the steps right after
 * the upload ended nudge curl to re-check the stream (see kick() in br_http.c).
 *
 * Never uses CURLOPT_AWS_SIGV4: the caller signs. Proxies come from the environment as
 * libcurl reads them (http_proxy, HTTPS_PROXY, no_proxy, ...). Not thread-safe: a multi
 * and its transfers belong to one thread at a time. */
#ifndef BR_HTTP_H
#define BR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "br_errors.h"

typedef struct br_http_multi br_http_multi;
typedef struct br_http_xfer br_http_xfer;

/* Default cap of a transfer's response body buffer, and the smallest accepted. */
#define BR_HTTP_BUFFER_CAP     (1024u * 1024u)
#define BR_HTTP_BUFFER_CAP_MIN (16u * 1024u)

/* One request header. name/value are borrowed for the duration of br_http_xfer_new
 * only (libcurl gets its own copy). Neither may contain CR, LF or NUL; name may not
 * contain ':' and may not be empty (BR_BAD_HEADER otherwise). An empty value is sent as
 * an empty header. */
typedef struct {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
} br_http_header;

typedef struct {
	const char *method;            /* "GET", "POST", ...; NULL = GET, or POST with a body */
	const char *url;               /* http:// or https:// (required, NUL-terminated) */
	const br_http_header *headers; /* sent in this order, names as given */
	size_t nheaders;
	const uint8_t *body;           /* request body, or NULL for none */
	size_t body_len;
	int body_borrow;               /* 0: body is copied; 1: borrowed, the caller keeps it
					* alive and unchanged until the transfer is freed */
	int body_stream;               /* 1: the body is streamed with br_http_xfer_send and
					* ends with br_http_xfer_close_input (no content-length;
					* chunked on HTTP/1.1); body must then be NULL */
	int http_version;              /* 1 (HTTP/1.1, default when 0) or 2 (prior knowledge
					* for http://, ALPN h2 for https:// falling back to 1.1) */
	int no_verify;                 /* 1 disables TLS peer and host verification */
	const char *cainfo;            /* CA bundle file (PEM), NULL = libcurl's default */
	const char *capath;            /* CA directory (hashed), NULL = libcurl's default */
	long connect_timeout_ms;       /* 0 = libcurl's default (300 s) */
	long first_byte_timeout_ms;    /* 0 = none: connection ready -> first response byte */
	long idle_timeout_ms;          /* 0 = none: no byte received for this long */
	long total_timeout_ms;         /* 0 = none: transfer start -> end */
	size_t buffer_cap;             /* 0 = BR_HTTP_BUFFER_CAP; raised to BR_HTTP_BUFFER_CAP_MIN */
} br_http_opts;

typedef enum {
	BR_HTTP_S_PENDING = 0,  /* running, response headers not complete yet */
	BR_HTTP_S_BODY,         /* response headers complete, body arriving */
	BR_HTTP_S_DONE,         /* response complete; buffered body may remain to be taken */
	BR_HTTP_S_FAILED,       /* failed: see br_http_xfer_error; buffered body may remain */
	BR_HTTP_S_CLOSED        /* closed by the caller (or its multi was freed) */
} br_http_state;

/* Why a transfer failed. */
typedef enum {
	BR_HTTP_ERR_NONE = 0,
	BR_HTTP_ERR_CONNECTION,         /* libcurl failed: refused, reset, TLS, protocol, ... */
	BR_HTTP_ERR_TIMEOUT_CONNECT,
	BR_HTTP_ERR_TIMEOUT_FIRST_BYTE,
	BR_HTTP_ERR_TIMEOUT_IDLE,
	BR_HTTP_ERR_TIMEOUT_TOTAL,
	BR_HTTP_ERR_NOMEM               /* a buffer could not grow */
} br_http_err;

/* 1 when h is a valid request header (the rules above), else 0: lets a caller that got
 * BR_BAD_HEADER from br_http_xfer_new find which one. */
int br_http_header_valid(const br_http_header *h);

/* New multi (calls curl_global_init once per process on first use). NULL when libcurl
 * cannot be initialised or memory is short. Free with br_http_multi_free. */
br_http_multi *br_http_multi_new(void);

/* Stops every transfer still attached (each becomes BR_HTTP_S_CLOSED but stays allocated:
 * its owner still frees it with br_http_xfer_free, which is then safe), closes the
 * connection cache and frees the multi. NULL is fine. */
void br_http_multi_free(br_http_multi *m);

/* Starts a transfer on m: the request is built from opts and added to the multi, but
 * no I/O happens until br_http_step. opts and everything it points to are only read
 * during this call, except a borrowed body (see body_borrow). On failure returns NULL
 * and sets *status (if not NULL) to BR_INVAL (bad opts: no url, body with body_stream,
 * http_version not 1 or 2, non-http(s) url), BR_BAD_HEADER, BR_NOMEM or BR_HTTP_INIT.
 * The transfer belongs to the caller: free it with br_http_xfer_free. */
br_http_xfer *br_http_xfer_new(br_http_multi *m, const br_http_opts *opts, br_status *status);

/* Detaches the transfer from its multi (aborting it if it still runs: an HTTP/1.1
 * connection is closed, an HTTP/2 stream is reset) and releases its buffers. The
 * transfer stays allocated and reports BR_HTTP_S_CLOSED. Idempotent. */
void br_http_xfer_close(br_http_xfer *x);

/* br_http_xfer_close, then frees the transfer. NULL is fine. */
void br_http_xfer_free(br_http_xfer *x);

/* Runs libcurl once: perform, and if nothing happened, waits up to timeout_ms (0 = do not
 * wait) for socket activity or the nearest transfer deadline, then performs again and
 * collects finished transfers and expired deadlines. *running (if not NULL) gets the
 * number of transfers still running. BR_OK, or BR_HTTP_FAILED when libcurl's multi
 * interface itself failed (transfers are unaffected). Never calls back into the caller. */
br_status br_http_step(br_http_multi *m, long timeout_ms, int *running);

/* Milliseconds until m next needs br_http_step even without socket activity: the
 * nearest transfer deadline or libcurl's own timer, whichever is first; -1 when there is
 * none, 0 when it is already due. For schedulers that wait elsewhere (a wait hook). */
long br_http_multi_timeout(br_http_multi *m);

/* A socket and what it waits for (BR_HTTP_IN, BR_HTTP_OUT or both). */
#define BR_HTTP_IN  1
#define BR_HTTP_OUT 2
typedef struct {
	int fd;
	int events;
} br_http_fd;

/* The sockets m's transfers wait on, with curl's read/write interest as of the last
 * br_http_step (curl reports them through CURLMOPT_SOCKETFUNCTION). *fds gets an array
 * owned by m, valid until the next call on m; the count is returned (0 when no transfer
 * runs). A host that waits on these with its own poller, and on br_http_multi_timeout,
 * then calls br_http_step(m, 0), never needs to block inside this module. */
size_t br_http_multi_fds(const br_http_multi *m, const br_http_fd **fds);

/* Waits up to timeout_ms (0 = just look) until one of the n sockets is ready for what it
 * waits for (poll(2); a signal ends the wait early). Returns how many are ready, or -1
 * when memory is short. Lets one wait cover the sockets of several multis. */
int br_http_poll(const br_http_fd *fds, size_t n, long timeout_ms);

/* A pollset: one file descriptor that is readable when any of a set of sockets is ready
 * for what it waits for (an epoll instance on Linux), for hosts whose loop takes one fd
 * per source (cqueues' pollable protocol). br_http_pollset_new returns NULL when memory
 * is short or the system has no epoll. */
typedef struct br_http_pollset br_http_pollset;
br_http_pollset *br_http_pollset_new(void);
int br_http_pollset_fd(const br_http_pollset *ps);
/* Makes the set exactly fds (a socket closed and reopened under the same number is
 * registered again). 0, or -1 when the kernel refused a registration (errno set). */
int br_http_pollset_sync(br_http_pollset *ps, const br_http_fd *fds, size_t n);
void br_http_pollset_free(br_http_pollset *ps);

/* Connections opened by finished or closed transfers of m (sum of CURLINFO_NUM_CONNECTS)
 * and transfers started on m. */
void br_http_multi_stats(const br_http_multi *m, uint64_t *connections, uint64_t *transfers);

/* Where the transfer is (see br_http_state). Advances only inside br_http_step (and
 * br_http_xfer_close). x must not be NULL (true of every br_http_xfer_* getter). */
br_http_state br_http_xfer_state(const br_http_xfer *x);

/* Response status code (0 until the status line arrived; 1xx responses are skipped). */
long br_http_xfer_status(const br_http_xfer *x);

/* Version of the response: 10, 11, 20 (0 until the status line arrived). */
int br_http_xfer_version(const br_http_xfer *x);

/* The response header block once complete (state != PENDING), else NULL: lines
 * "Name: value\n", names as received, values trimmed, status line excluded. Owned by the
 * transfer, valid until it is closed. *len gets its length. */
const char *br_http_xfer_headers(const br_http_xfer *x, size_t *len);

/* Walks a header block from br_http_xfer_headers: reads one line at *p (< end) and
 * advances *p. Returns 1 and sets name/value (borrowed, not NUL-terminated) or 0 at the
 * end. A line without ':' is skipped. */
int br_http_header_next(const char **p, const char *end, const char **name, size_t *name_len,
			const char **value, size_t *value_len);

/* The body length the response announced (its Content-Length), or -1 while unknown
 * (no such header yet, or none). */
int64_t br_http_xfer_content_length(const br_http_xfer *x);

/* Body bytes that arrived and were not consumed yet: *p gets a pointer owned by the
 * transfer, valid until the next call on this transfer or its multi; the length is
 * returned (0 when nothing is buffered). */
size_t br_http_xfer_body(const br_http_xfer *x, const uint8_t **p);

/* Drops the first n buffered body bytes (n <= buffered) and resumes a transfer that
 * was paused because its buffer was full. */
void br_http_xfer_consume(br_http_xfer *x, size_t n);

/* 1 when the response is complete and every body byte was consumed (clean end). */
int br_http_xfer_eof(const br_http_xfer *x);

/* Queues n bytes of request body (copied) on a body_stream transfer and resumes its
 * upload. BR_HTTP_STATE if the transfer has no streamed body, its input was closed, or
 * it is no longer running; BR_NOMEM. Queued input is not capped here: see
 * br_http_xfer_pending_input for the caller's back-pressure. */
br_status br_http_xfer_send(br_http_xfer *x, const uint8_t *p, size_t n);

/* Ends the streamed request body once the queued bytes are sent (HTTP/2 END_STREAM,
 * the last chunk on HTTP/1.1). Idempotent; BR_HTTP_STATE on a transfer without a
 * streamed body. */
br_status br_http_xfer_close_input(br_http_xfer *x);

/* 1 when the streamed input was ended for the caller because the response completed
 * while it was still open (see the top of this file); br_http_xfer_send then answers
 * BR_HTTP_STATE. */
int br_http_xfer_input_ended(const br_http_xfer *x);

/* Queued request body bytes not yet handed to libcurl. */
size_t br_http_xfer_pending_input(const br_http_xfer *x);

/* Failure of a FAILED transfer: returns the kind (BR_HTTP_ERR_NONE otherwise), *curl_code
 * gets libcurl's CURLcode (0 for our own timeouts) and *message a readable cause owned by
 * the transfer (curl's error buffer when it has one). Either pointer may be NULL. */
br_http_err br_http_xfer_error(const br_http_xfer *x, int *curl_code, const char **message);

typedef struct {
	double total;         /* seconds from start to end (or to now while running) */
	double connect;       /* start -> connection ready; -1 if not reached */
	double first_byte;    /* start -> first response byte; -1 if not reached */
	size_t buffer_cap;    /* the body buffer's cap */
	size_t buffer_peak;   /* largest number of bytes the body buffer held */
	long num_connects;    /* connections this transfer opened (after it finished) */
	uint64_t received;    /* body bytes received so far */
	uint64_t sent_stream; /* streamed body bytes handed to libcurl */
} br_http_info;

/* Fills *info with the transfer's timing and buffer figures (valid also after close,
 * except num_connects which is set when the transfer leaves the multi). */
void br_http_xfer_info(const br_http_xfer *x, br_http_info *info);

/* Monotonic clock in milliseconds (for callers computing their own deadlines). */
int64_t br_http_now_ms(void);

#endif
