/* libFuzzer target for the emulator's model-driven request validator
 * (csrc/emulator/model_validate.c, model.c, model_pattern.c) on top of its JSON parser.
 * Built by .ci/run-fuzz with the embedded service model (generated model_data.c).
 *
 * Input: a request body. When it parses as JSON, it is validated against the input
 * shape of each of the eleven operations. Checked on every input:
 *   - emu_model_validate returns 0 with no message, or n > 0 with a message that starts
 *     "n validation error(s) detected: Value ", lists at most 10 violations and is valid
 *     UTF-8 (it goes into the JSON error body as is);
 *   - validating the same body again gives the same count and message (the pattern
 *     cache and the model's lazy load do not change results);
 *   - an unknown shape name is not an error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emulator/json.h"
#include "emulator/model.h"
#include "fuzz_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); __builtin_trap(); } } while (0)

static const char *const shapes[] = {
	"ConverseRequest", "ConverseStreamRequest", "InvokeModelRequest",
	"InvokeModelWithResponseStreamRequest", "CountTokensRequest",
	"InvokeModelWithBidirectionalStreamRequest", "ApplyGuardrailRequest",
	"StartAsyncInvokeRequest", "GetAsyncInvokeRequest", "ListAsyncInvokesRequest",
	"InvokeGuardrailChecksRequest",
};
#define NSHAPES (sizeof shapes / sizeof *shapes)


/* Violations are joined by "; Value "; user text can only add matches, so with n <= 10
 * at least n must be found. */
static size_t count_values(const char *msg)
{
	size_t k = 0;
	for (const char *p = msg; (p = strstr(p, "; Value ")) != NULL; p++) k++;
	return k + 1;
}

static void check_result(const char *shape, int n, const char *msg, const json *body)
{
	char head[64];
	(void)shape;
	(void)body;
	CHECK(n >= 0);
	if (n == 0) {
		CHECK(msg == NULL);
		return;
	}
	CHECK(msg != NULL);
	snprintf(head, sizeof head, "%d validation error%s detected: Value ", n, n == 1 ? "" : "s");
	CHECK(strncmp(msg, head, strlen(head)) == 0);
	CHECK(fuzz_utf8_valid((const unsigned char *)msg, strlen(msg)));
	CHECK(strstr(msg, "' failed to satisfy constraint: "));
	if (n <= 10)
		CHECK(count_values(msg) >= (size_t)n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	CHECK(emu_model() != NULL);
	for (size_t i = 0; i < NSHAPES; i++)
		CHECK(emu_model_shape(shapes[i]) != NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[200];
	json *body = json_parse((const char *)data, size, err, sizeof err);
	if (!body) return 0;
	for (size_t i = 0; i < NSHAPES; i++) {
		char *msg = NULL, *again = NULL;
		int n = emu_model_validate(shapes[i], body, &msg);
		check_result(shapes[i], n, msg, body);
		if (i == size % NSHAPES) {
			int n2 = emu_model_validate(shapes[i], body, &again);
			CHECK(n2 == n);
			CHECK((msg == NULL) == (again == NULL));
			CHECK(!msg || strcmp(msg, again) == 0);
			free(again);
		}
		free(msg);
	}
	{
		char *msg = (char *)1;
		CHECK(emu_model_validate("NoSuchShape", body, &msg) == 0 && msg == NULL);
	}
	json_free(body);
	return 0;
}
