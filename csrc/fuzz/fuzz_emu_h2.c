/* libFuzzer target for the emulator's HTTP/2 side (csrc/emulator/h2.c): the nghttp2
 * server session, the request assembly from HEADERS/CONTINUATION/DATA, dispatch of every
 * operation behind it, the response writer with its data provider, pacing and fault
 * timers, and the bidirectional stream's input path. Transport-free: emu_fuzz_io.c
 * stands in for the socket (reads come from the fuzz input in slices, writes are
 * collected, srv_stopping() is on so no timer sleeps), and srv_h2_serve runs on it
 * until the input ends.
 *
 * Input: one mode byte, then the bytes the client sends after the connection preface
 * (the target sends the preface itself, so the fuzzer works on frames).
 *   bits 0-1  read slice: 1, 9, 100 or 16384 bytes per srv_io_read
 *   bit 2     authentication on (default: --no-auth; a bearer key is known either way)
 * Checked on every input: what the server wrote is a sequence of whole HTTP/2 frames
 * (the last one may be cut only by the 1 MiB output cap), starting with the server's
 * SETTINGS; connection-level frames (SETTINGS, PING, GOAWAY) are on stream 0 and
 * stream-level ones (HEADERS, DATA, RST_STREAM, CONTINUATION) on an odd, client-opened
 * stream; no PUSH_PROMISE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_fuzz_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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
	emu_fuzz_set_stopping(1);
	return 0;
}

static void check_output(const uint8_t *p, size_t n, int capped)
{
	size_t pos = 0;
	int first = 1;
	while (pos < n) {
		if (n - pos < 9) { CHECK(capped); return; }
		size_t len = ((size_t)p[pos] << 16) | ((size_t)p[pos + 1] << 8) | p[pos + 2];
		uint8_t type = p[pos + 3];
		uint32_t id = ((uint32_t)(p[pos + 5] & 0x7f) << 24) | ((uint32_t)p[pos + 6] << 16) |
			      ((uint32_t)p[pos + 7] << 8) | p[pos + 8];
		if (first) CHECK(type == 0x4 && id == 0);
		first = 0;
		switch (type) {
		case 0x0: case 0x1: case 0x3: case 0x9: /* DATA HEADERS RST_STREAM CONTINUATION */
			CHECK(id != 0 && (id & 1) == 1);
			break;
		case 0x4: case 0x6: case 0x7:            /* SETTINGS PING GOAWAY */
			CHECK(id == 0);
			break;
		case 0x5:                                /* PUSH_PROMISE: the server never pushes */
			CHECK(0);
			break;
		default:                                 /* WINDOW_UPDATE (any stream), PRIORITY */
			break;
		}
		if (n - pos - 9 < len) { CHECK(capped); return; }
		pos += 9 + len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t slices[4] = { 1, 9, 100, 16384 };
	if (size < 1) return 0;
	uint8_t mode = data[0];
	srv_cfg.no_auth = !(mode & 4);
	emu_fuzz_io_reset(data + 1, size - 1, slices[mode & 3]);

	srv_conn c;
	memset(&c, 0, sizeof c);
	c.id = 1;
	CHECK(br_buf_append(&c.in, PREFACE, sizeof PREFACE - 1) == BR_OK);
	srv_h2_serve(&c);
	br_buf_free(&c.in);
	check_output(emu_fuzz_out.data, emu_fuzz_out.len, emu_fuzz_out.len >= (1u << 20));
	return 0;
}
