/* CountTokens: POST /model/{modelId}/count-tokens, with the emulator's tokenizer over
 * a Converse-shaped input or a model-native InvokeModel body (base64 in the JSON). */
#include "ops.h"
#include "model.h"

#include <string.h>

void ops_count_tokens(const emu_request *rq, emu_response *rs, const char *model_id)
{
	json *body = ops_parse_body(rq, rs);
	if (!body) return;
	if (ops_validate("CountTokensRequest", body, rs)) { json_free(body); return; }
	const json *in = json_get(body, "input");
	long long n = 0;
	const json *cv = json_get(in, "converse");
	if (cv) {
		n = (long long)ops_converse_input_tokens(cv);
	} else {
		const char *b64 = json_get_str(json_get(in, "invokeModel"), "body");
		br_buf raw = BR_BUF_INIT;
		long t = -1;
		if (b64 && !emu_b64_decode(b64, strlen(b64), &raw))
			t = ops_invoke_input_tokens(model_id, raw.data, raw.len);
		br_buf_free(&raw);
		if (t < 0) {
			json_free(body);
			emu_response_error(rs, 400, "ValidationException",
				"Malformed input request: the invokeModel body is not valid JSON for this model, please reformat your input and try again.");
			return;
		}
		n = t;
	}
	json_writer w;
	jw_init(&w, &rs->body);
	jw_obj(&w);
	jw_kint(&w, "inputTokens", n);
	jw_obj_end(&w);
	emu_response_add_header(rs, "Content-Type", "application/json");
	json_free(body);
}
