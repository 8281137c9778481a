/* bedrock-emulator: the contract between the server half (sockets, HTTP/1.1, HTTP/2,
 * TLS, authentication, faults, pacing, credential endpoints: server*.c, auth.c, ...) and
 * the operations half (JSON, validation from the service model, the eleven operations'
 * deterministic behaviour, guardrails, async jobs: ops*.c, json.c, model*.c).
 *
 * The server parses a request, authenticates it, applies any fault, and calls
 * emu_ops_handle(). The operation fills an emu_response: a status, headers, and either a
 * body or an event stream: encoded frames, and/or a producer that encodes the next frames
 * when the server asks for them (so a long stream starts leaving at once and never sits
 * whole in memory). The server writes the response, pacing frames and injecting
 * mid-stream faults itself, so operations never sleep or touch sockets. Operations may be
 * called from several threads at once; ops keep their shared state (async jobs) behind
 * their own lock. A producer runs on the thread that writes its response, one call at a
 * time. */
#ifndef EMU_H
#define EMU_H

#include <stddef.h>
#include <stdint.h>
#include "../br_buf.h"

typedef struct {
	char *name;   /* lower-case */
	char *value;
} emu_header;

typedef struct {
	const char *method;      /* "GET", "POST", ... */
	const char *path;        /* raw path as on the wire, still percent-encoded */
	const char *query;       /* raw query without '?', "" when none */
	const emu_header *headers;
	size_t nheaders;
	const uint8_t *body;
	size_t body_len;
	int http2;               /* 1 when the request came over HTTP/2 */
	const char *region;      /* region from the credential scope, or the default */
} emu_request;

/* Lookup of a request header by lower-case name; NULL when absent. */
const char *emu_request_header(const emu_request *rq, const char *lname);

typedef struct emu_response emu_response;

/* A producer encodes the next frames of a stream on demand: each call appends frames to
 * rs (emu_response_add_frame) and returns 1 (at least one frame appended, more to come),
 * 0 (the stream is complete; the call may have appended its last frames) or -1 (it
 * failed, e.g. out of memory; the stream ends there). A producer must not touch rs's
 * status or headers: they have been sent by the time it runs. */
typedef int (*emu_produce_fn)(void *state, emu_response *rs);

struct emu_response {
	int status;
	emu_header headers[24];  /* owned (malloc'd), freed by emu_response_free */
	size_t nheaders;
	br_buf body;             /* the body when !is_stream */
	int is_stream;           /* 1: frames (and the producer) hold the event-stream body */
	/* frames[i] is the stream's message number frames_base + i (each one whole encoded
	 * message, in order); the frames before frames_base were sent and released
	 * (emu_response_release_frames), the first frames_released entries of frames too. */
	br_buf *frames;
	size_t nframes, frames_cap;
	size_t frames_base, frames_released;
	/* The rest of the stream, encoded on demand (NULL when every frame is in frames). */
	emu_produce_fn produce;
	void (*produce_free)(void *state);
	void *produce_state;
	int produce_failed;      /* 1: the producer returned -1 */
	/* A test fault (kind=oom): when fail_set, adding frame number fail_from or any later
	 * one fails as if memory had run out, so the producer's failure path runs. */
	int fail_set;
	size_t fail_from;
};

void emu_response_init(emu_response *rs);
/* Releases everything rs owns, the producer's state included. */
void emu_response_free(emu_response *rs);
/* Adds a header (copies both strings); returns 0, or -1 when out of room/memory. */
int emu_response_add_header(emu_response *rs, const char *name, const char *value);
/* Appends an encoded frame (copied); returns 0 or -1. */
int emu_response_add_frame(emu_response *rs, const uint8_t *p, size_t n);
/* Makes rs an event stream whose frames (after any already added) come from fn(state);
 * free_state (may be NULL) releases state when the stream is complete or rs is freed.
 * rs owns state from then on. */
void emu_response_set_producer(emu_response *rs, emu_produce_fn fn, void *state,
			       void (*free_state)(void *state));
/* Calls the producer once. Returns 1 when frames were appended, 0 when the stream is
 * complete (no producer any more), -1 when it failed (produce_failed set; no producer
 * any more). A producer that claims more but appends nothing counts as failed. */
int emu_response_produce(emu_response *rs);
/* Number of frames of the stream known so far (sent, released or queued). */
size_t emu_response_frames_total(const emu_response *rs);
/* Frame number i of the stream (frames_base <= i < emu_response_frames_total). */
br_buf *emu_response_frame(emu_response *rs, size_t i);
/* Frees the frames numbered below upto (they were sent) and now and then moves the
 * rest to the front of the array, so that a long stream's array stays small. */
void emu_response_release_frames(emu_response *rs, size_t upto);
/* Fills rs with a service error: status, x-amzn-ErrorType, JSON {"message": ...}. */
void emu_response_error(emu_response *rs, int status, const char *type, const char *fmt, ...);

/* Global, process-wide configuration shared by both halves (set once in main). */
typedef struct {
	const char *default_region;
	/* guardrail configuration: words that block, and whether PII is anonymized */
	const char **guardrail_words;
	size_t nguardrail_words;
	/* time a StartAsyncInvoke job takes to finish (--async-ms), when async_ms_set;
	 * otherwise BEDROCK_EMULATOR_ASYNC_MS, else 2000 ms. Zero-initialized = unset. */
	int async_ms_set;
	long async_ms;
} emu_config;

extern emu_config emu_cfg;

/* The operations half. Returns 1 if it handled the request (rs filled), 0 when no
 * operation matches the method and path (the server then answers 404 or serves one of
 * its own endpoints). Must not block. */
int emu_ops_handle(const emu_request *rq, emu_response *rs);

/* Bidirectional stream, called by the server for InvokeModelWithBidirectionalStream
 * after it has checked the opening request and each input frame's chained signature.
 * open: validates the request (sets rs->status and headers; an error status ends it);
 * input: one inner message (the payload of a signed frame, already decoded), appends
 * output frames to rs->frames; end: the client's empty final frame arrived. */
typedef struct emu_bidi emu_bidi;
emu_bidi *emu_ops_bidi_open(const emu_request *rq, emu_response *rs);
void emu_ops_bidi_input(emu_bidi *b, const uint8_t *msg, size_t len, emu_response *out);
void emu_ops_bidi_end(emu_bidi *b, emu_response *out);
void emu_ops_bidi_free(emu_bidi *b);

#endif
