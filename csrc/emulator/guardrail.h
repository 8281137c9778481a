/* The emulator's one guardrail policy (docs/emulator.md, "Deterministic behaviour"):
 * a word list (emu_cfg.guardrail_words plus built-in defaults) and a denied topic block;
 * e-mail addresses and phone numbers are anonymized ({EMAIL}, {PHONE}). Used by
 * ApplyGuardrail and by Converse/InvokeModel when a guardrail is named; InvokeGuardrailChecks
 * reports the PII findings' offsets. */
#ifndef EMU_GUARDRAIL_H
#define EMU_GUARDRAIL_H

#include <stddef.h>
#include "json.h"

#define EMU_GUARD_BLOCKED_MESSAGE "Sorry, the model cannot answer this question."

enum { EMU_GUARD_WORD, EMU_GUARD_TOPIC, EMU_GUARD_PII };

typedef struct {
	int policy;           /* EMU_GUARD_* */
	const char *type;     /* PII type (EMAIL, PHONE) or topic name; NULL for words */
	char *match;          /* owned: the matched text */
	const char *action;   /* BLOCKED or ANONYMIZED */
	size_t begin, end;    /* byte offsets of the match in the text scanned (end exclusive) */
} emu_guard_find;

typedef struct {
	int blocked;          /* a blocked word or the denied topic matched */
	int anonymized;       /* PII was found and masked */
	size_t chars;         /* characters scanned (for usage/coverage) */
	emu_guard_find *finds;
	size_t nfinds, cap;
} emu_guard;

void emu_guard_init(emu_guard *g);
/* Frees the findings; g can be reused after emu_guard_init. */
void emu_guard_free(emu_guard *g);
/* Scans one text, adding findings to g; appends the text with PII masked to masked
 * (when masked is not NULL). */
void emu_guard_scan(emu_guard *g, const char *s, size_t n, br_buf *masked);
/* "GUARDRAIL_INTERVENED" or "NONE". */
const char *emu_guard_action(const emu_guard *g);
/* Writes one GuardrailAssessment object (policies that found something, invocation
 * metrics, applied guardrail details) for guardrail id/version in region. */
void emu_guard_write_assessment(json_writer *w, const emu_guard *g, const char *id,
				const char *version, const char *region);
/* Writes a GuardrailUsage object. */
void emu_guard_write_usage(json_writer *w, const emu_guard *g);

#endif
