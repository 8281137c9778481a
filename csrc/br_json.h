/* JSON byte work for the Lua layer's hot paths, over plain buffers:
 *   - string escaping, with exactly the escapes lua/bedrock/json.lua documents: `"` `\`
 *     and the short forms \b \f \n \r \t, every other byte below 0x20 and 0x7f as
 *     \u00XX (lower-case hex), every other byte (UTF-8 included) written raw;
 *   - a recognizer for event payloads of the form {"<key>":"<base64>", ...} whose
 *     values are all plain strings, which hands back where the base64 text of the key
 *     is, so that it can be decoded straight from the payload (InvokeModelWithResponseStream
 *     chunks). It accepts a strict subset of JSON and says "not mine" for everything else;
 *     the caller then takes the general JSON path (one JSON behaviour: the recognizer
 *     only ever answers where the general path would give the same result). */
#ifndef BR_JSON_H
#define BR_JSON_H

#include <stddef.h>

/* Length of the escaped form of s[0..n) (without quotes); equals n when nothing needs
 * escaping. */
size_t br_json_escaped_len(const char *s, size_t n);

/* Writes the escaped form of s[0..n) to dst (br_json_escaped_len(s, n) bytes, no NUL). */
void br_json_escape(const char *s, size_t n, char *dst);

/* Room dst needs for br_json_escape_into of n bytes: every byte as \u00XX, and 16 bytes
 * of slack (whole 16-byte blocks are stored before the escape in them is written);
 * the caller keeps 6 * n + 16 from overflowing. */
#define BR_JSON_ESCAPE_ROOM(n) (6 * (n) + 16)

/* The same bytes as br_json_escape in one pass, without knowing the length first:
 * writes into dst (BR_JSON_ESCAPE_ROOM(n) bytes of room) and returns the length of the
 * escaped form (n when nothing needed escaping). */
size_t br_json_escape_into(const char *s, size_t n, char *dst);

/* Is p[0..n) exactly a JSON object (blanks allowed where JSON allows them) whose keys and
 * values are all strings with the key `key` present once? Then 1, and
 * [*val, *val + *val_len) is the text between the quotes of the value of `key`.
 * Otherwise 0, for anything else, valid JSON or not. Keys and the other values must be
 * plain: no backslash, no byte below 0x20. The value of `key` is NOT checked for them
 * (it can be long: one pass less): the caller must refuse them in it, as base64 decoding
 * does; a value containing an escaped quote then shows up as one holding a backslash. */
int br_json_plain_member(const char *p, size_t n, const char *key, size_t key_len,
			 const char **val, size_t *val_len);

#endif
