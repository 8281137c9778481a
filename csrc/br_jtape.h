/* Strict JSON to a tape: the one JSON reader behind core.json_decode, core.json_read and
 * the event-stream decoder's event reading, in plain C (no Lua).
 *
 * The text is checked and turned into a flat list of entries (the tape) that a binding then
 * builds its values from in one pass: through the Lua C API (lua_json.c) or, under LuaJIT,
 * from Lua through the FFI (lua/bedrock/jit_events.lua). The reader takes strict JSON only
 * (RFC 8259; raw control bytes in strings, lone surrogates, leading zeros, numbers longer
 * than 64 characters and nesting deeper than BR_JT_MAX_DEPTH are refused) and the caller
 * then decodes the text with lua-cjson, which gives its own result or error: this reader
 * only makes the common case faster and never decides a different value.
 *
 * With a shape (a br_jr_set node, compiled by the binding from the output shape's reader
 * rules as shapes.lua makes them from the service model), a JSON object is read as that
 * structure while the tape is written: members the model does not know are checked and
 * left out, null members become BR_JT_NIL, integer members with an integral value become
 * BR_JT_INT, lists are marked BR_JT_LIST. Anything such a rule cannot take (a member whose
 * reader is not a plain one, an unknown member of a union, an object given for a list or an
 * array for a structure) makes the read fail, and the caller reads the general way. */
#ifndef BR_JTAPE_H
#define BR_JTAPE_H

#include <stddef.h>
#include <stdint.h>

#define BR_JT_MAX_DEPTH 128

enum {
	BR_JT_OBJ = 1,  /* an object: n = members on the tape (KEY/KEYS + value pairs), END closes */
	BR_JT_ARR,      /* an array, no shape: n = elements, END closes (n == 0: the empty-array mark) */
	BR_JT_LIST,     /* an array read as a list: n = elements, END closes */
	BR_JT_END,
	BR_JT_KEY,      /* a member the shape knows: n = its key id (br_jr_set) */
	BR_JT_KEYS,     /* a member name, no shape: s, len */
	BR_JT_STR,      /* s, len */
	BR_JT_NUM,      /* num, a float */
	BR_JT_INT,      /* num, an integral value of an integer member */
	BR_JT_TRUE,
	BR_JT_FALSE,
	BR_JT_NULL,     /* a null kept as a value (no shape, or a list element) */
	BR_JT_NIL,      /* a null member of a shape: the member is removed */
	BR_JT_EVT       /* (event batches) the next value is an event of root n */
};

/* One entry. s points into the text read or into the tape's scratch: valid until the next
 * read on the tape (before br_jtape_finish, a string in the scratch has s NULL and its
 * offset in off). The layout is part of the FFI interface (jit_events.lua). */
typedef struct {
	uint32_t op;
	uint32_t n;
	uint32_t len;
	uint32_t off;
	const char *s;
	double num;
} br_jt_ent;

typedef struct br_jtape_s {
	br_jt_ent *ents;
	size_t n, cap;
	char *scratch;        /* unescaped strings; never longer than the text */
	size_t scratch_cap, scratch_len;
	int depth;
	int busy;             /* set by a binding while it builds values from the tape */
} br_jtape;

/* Reader rules (compiled from shapes.reader_desc). A member's rule: BR_JR_NONE (not read
 * here), BR_JR_KEEP (kept as decoded), BR_JR_INT (an integer member), or BR_JR_NODE + the
 * index of the node of a structure, union or list. */
enum { BR_JR_NONE = 0, BR_JR_KEEP = 1, BR_JR_INT = 2, BR_JR_NODE = 3 };
enum { BR_JR_STRUCT = 1, BR_JR_UNION = 2, BR_JR_LISTK = 3 };

typedef struct {
	uint32_t name_off;    /* into set->names */
	uint32_t name_len;
	int32_t rule;
	uint64_t w0, w1;      /* the name as two words: with its length, they tell names of up
	                       * to 16 bytes apart (br_jtape.c, name_words) */
} br_jr_member;           /* a member's key id is its index in set->members */

typedef struct {
	int kind;             /* BR_JR_STRUCT, BR_JR_UNION, BR_JR_LISTK */
	uint32_t first, count;/* members (structures and unions) */
	int32_t elem;         /* a list's element rule */
} br_jr_node;

typedef struct br_jr_set_s {
	br_jr_node *nodes;
	size_t nnodes, nodes_cap;
	br_jr_member *members;
	size_t nmembers, members_cap;
	char *names;
	size_t names_len, names_cap;
} br_jr_set;

void br_jtape_init(br_jtape *t);
void br_jtape_free(br_jtape *t);

/* Reads the JSON text s[0..n): with node < 0 any JSON value without a shape; else an
 * object read as set's node `node` (a structure or union). Returns 1 with the tape
 * filled, 0 when the text is not one this reader takes (or memory ran out). */
int br_jtape_read(br_jtape *t, const br_jr_set *set, int node, const char *s, size_t n);

/* Several values on one tape (an event batch): br_jtape_clear empties it, br_jtape_mark
 * adds an entry (op, n), br_jtape_append reads one more value after the others (1; or 0,
 * not taken, and the tape is as it was), br_jtape_finish points the strings at the
 * scratch once the last value is on (br_jtape_read does all of it for one value). */
void br_jtape_clear(br_jtape *t);
int br_jtape_mark(br_jtape *t, uint32_t op, uint32_t n);
int br_jtape_append(br_jtape *t, const br_jr_set *set, int node, const char *s, size_t n);
void br_jtape_finish(br_jtape *t);

void br_jr_set_init(br_jr_set *set);
void br_jr_set_free(br_jr_set *set);
/* Adds a node: its index, or -1 when out of memory. Members are added after it, in order,
 * with br_jr_set_member (they belong to the last node added with kind STRUCT/UNION). */
int br_jr_set_node(br_jr_set *set, int kind, int32_t elem);
/* Adds a member to node `node` (which must be the last node given members): its key id,
 * or -1 when out of memory or the name is too long. */
int br_jr_set_member(br_jr_set *set, int node, const char *name, size_t len, int32_t rule);

#endif
