/* libFuzzer target for the emulator's DPoP proof check (srv_dpop_check in
 * csrc/emulator/creds.c): splitting the compact JWS, base64url decoding, the JSON header
 * (typ, alg, the EC P-256 jwk) and claims (htm, htu, jti, iat), and the ES256 signature
 * through br_crypto. Built by .ci/run-fuzz against every emulator source except main.c
 * and srv_io.c (emu_fuzz_io.c stands in).
 *
 * Input: the proof text (a NUL ends it, as in a header value). Checked against method
 * POST, htu "http://127.0.0.1:8000/v1/token" and a clock window wide enough that any iat
 * passes. Checked on every input: the result is 0 or -1; on -1 the reason is a non-empty
 * NUL-terminated string inside its buffer; on 0 the input has three dot-separated parts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu_fuzz_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	char *proof;
	int rc;

	if (size > 16384) return 0;
	proof = malloc(size + 1);
	if (!proof) return 0;
	memcpy(proof, data, size);
	proof[size] = '\0';
	memset(why, 'x', sizeof why);
	rc = srv_dpop_check(proof, "POST", "http://127.0.0.1:8000/v1/token", 1767000000LL,
			    2000000000L, why, sizeof why);
	CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		CHECK(memchr(why, 0, sizeof why) != NULL);
		CHECK(why[0] != '\0');
	} else {
		const char *d1 = strchr(proof, '.');
		CHECK(d1 && strchr(d1 + 1, '.'));
	}
	free(proof);
	return 0;
}
