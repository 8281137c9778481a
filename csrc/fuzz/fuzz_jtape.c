/* libFuzzer target: br_jtape (csrc/br_jtape.c), the JSON reader behind core.json_decode,
 * core.json_read and the event-stream decoder's event reading, in plain C.
 *
 * The input is up to eight JSON texts separated by 0x1e; the first byte picks the shape
 * each is read by (none, or one of a small rule set with a structure, a union, a list, an
 * integer member, a member not read here and recursion). Each text is read alone
 * (br_jtape_read); then all of them are appended to one tape as an event batch is
 * (br_jtape_mark + br_jtape_append + br_jtape_finish). The checks: every tape is well
 * formed (each container's n is its count of members or elements up to its END), a text
 * taken alone is taken in the batch with the very same entries (ops, counts, numbers and
 * string bytes, whether the strings lie in the text or in the scratch), and a text not
 * taken leaves the batch as it was. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "br_jtape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_TEXTS 8

static br_jr_set set;
static int ready;

/* node 0: struct { a: keep, b: int, c: node 1, l: node 2, u: node 3, n: none, r: node 0,
 *                  "": keep, abcdefgh: int, abcdefghijklmnopq: keep,
 *                  abcdefghijklmnopqrstuvwxyz: node 1 } (names of each length the reader
 *                  compares its own way: empty, short, up to two words, longer)
 * node 1: struct { text: keep, "k\"ey": keep }
 * node 2: list of node 1
 * node 3: union { text: keep, s: node 1 } */
static void setup(void)
{
	br_jr_set_init(&set);
	CHECK(br_jr_set_node(&set, BR_JR_STRUCT, 0) == 0);
	CHECK(br_jr_set_node(&set, BR_JR_STRUCT, 0) == 1);
	CHECK(br_jr_set_node(&set, BR_JR_LISTK, BR_JR_NODE + 1) == 2);
	CHECK(br_jr_set_node(&set, BR_JR_UNION, 0) == 3);
	CHECK(br_jr_set_member(&set, 0, "a", 1, BR_JR_KEEP) >= 0);
	CHECK(br_jr_set_member(&set, 0, "b", 1, BR_JR_INT) >= 0);
	CHECK(br_jr_set_member(&set, 0, "c", 1, BR_JR_NODE + 1) >= 0);
	CHECK(br_jr_set_member(&set, 0, "l", 1, BR_JR_NODE + 2) >= 0);
	CHECK(br_jr_set_member(&set, 0, "u", 1, BR_JR_NODE + 3) >= 0);
	CHECK(br_jr_set_member(&set, 0, "n", 1, BR_JR_NONE) >= 0);
	CHECK(br_jr_set_member(&set, 0, "r", 1, BR_JR_NODE + 0) >= 0);
	CHECK(br_jr_set_member(&set, 0, "", 0, BR_JR_KEEP) >= 0);
	CHECK(br_jr_set_member(&set, 0, "abcdefgh", 8, BR_JR_INT) >= 0);
	CHECK(br_jr_set_member(&set, 0, "abcdefghijklmnopq", 17, BR_JR_KEEP) >= 0);
	CHECK(br_jr_set_member(&set, 0, "abcdefghijklmnopqrstuvwxyz", 26, BR_JR_NODE + 1) >= 0);
	CHECK(br_jr_set_member(&set, 1, "text", 4, BR_JR_KEEP) >= 0);
	CHECK(br_jr_set_member(&set, 1, "k\"ey", 4, BR_JR_KEEP) >= 0);
	CHECK(br_jr_set_member(&set, 3, "text", 4, BR_JR_KEEP) >= 0);
	CHECK(br_jr_set_member(&set, 3, "s", 1, BR_JR_NODE + 1) >= 0);
	/* a member of an earlier node after another node's: refused */
	CHECK(br_jr_set_member(&set, 0, "z", 1, BR_JR_KEEP) < 0);
	ready = 1;
}

/* Checks the value at e[*i] is well formed; moves *i past it. */
static void well_formed(const br_jt_ent *e, size_t n, size_t *i, int depth)
{
	uint32_t op, count = 0;

	CHECK(*i < n && depth <= BR_JT_MAX_DEPTH + 1);
	op = e[*i].op;
	if (op == BR_JT_OBJ) {
		uint32_t want = e[*i].n;
		(*i)++;
		for (;;) {
			CHECK(*i < n);
			if (e[*i].op == BR_JT_END)
				break;
			CHECK(e[*i].op == BR_JT_KEY || e[*i].op == BR_JT_KEYS);
			CHECK(e[*i].op != BR_JT_KEY || e[*i].n < set.nmembers);
			CHECK(e[*i].op != BR_JT_KEYS || e[*i].s);
			(*i)++;
			CHECK(*i < n);
			if (e[*i].op == BR_JT_NIL)
				(*i)++;
			else
				well_formed(e, n, i, depth + 1);
			count++;
		}
		CHECK(count == want);
		(*i)++;
	} else if (op == BR_JT_ARR || op == BR_JT_LIST) {
		uint32_t want = e[*i].n;
		(*i)++;
		for (;;) {
			CHECK(*i < n);
			if (e[*i].op == BR_JT_END)
				break;
			well_formed(e, n, i, depth + 1);
			count++;
		}
		CHECK(count == want);
		(*i)++;
	} else {
		CHECK(op == BR_JT_STR || op == BR_JT_NUM || op == BR_JT_INT || op == BR_JT_TRUE ||
		      op == BR_JT_FALSE || op == BR_JT_NULL);
		CHECK(op != BR_JT_STR || e[*i].s);
		(*i)++;
	}
}

static int same_ent(const br_jt_ent *a, const br_jt_ent *b)
{
	if (a->op != b->op || a->n != b->n)
		return 0;
	if (a->op == BR_JT_STR || a->op == BR_JT_KEYS)
		return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
	if (a->op == BR_JT_NUM || a->op == BR_JT_INT)
		return memcmp(&a->num, &b->num, sizeof a->num) == 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *texts[MAX_TEXTS];
	size_t lens[MAX_TEXTS], start[MAX_TEXTS], count[MAX_TEXTS], nt = 0, i, j;
	int taken[MAX_TEXTS], node;
	br_jtape one, batch;

	if (!ready)
		setup();
	if (size < 1)
		return 0;
	node = data[0] % 3 == 0 ? -1 : 0;
	data++;
	size--;
	while (nt < MAX_TEXTS) {
		const uint8_t *sep = memchr(data, 0x1e, size);
		size_t len = sep ? (size_t)(sep - data) : size;
		texts[nt] = (const char *)data;
		lens[nt++] = len;
		if (!sep)
			break;
		data = sep + 1;
		size -= len + 1;
	}
	br_jtape_init(&one);
	br_jtape_init(&batch);
	br_jtape_clear(&batch);
	for (i = 0; i < nt; i++) {
		size_t before = batch.n;
		CHECK(br_jtape_mark(&batch, BR_JT_EVT, (uint32_t)i));
		start[i] = batch.n;
		taken[i] = br_jtape_append(&batch, node < 0 ? NULL : &set, node, texts[i], lens[i]);
		if (!taken[i]) {
			CHECK(batch.n == start[i]); /* nothing left behind */
			batch.n = before;
		}
		count[i] = batch.n - start[i];
	}
	br_jtape_finish(&batch);
	for (i = 0; i < nt; i++) {
		int ok = br_jtape_read(&one, node < 0 ? NULL : &set, node, texts[i], lens[i]);
		CHECK(ok == taken[i]);
		if (!ok) {
			CHECK(one.n == 0);
			continue;
		}
		j = 0;
		well_formed(one.ents, one.n, &j, 0);
		CHECK(j == one.n);
		CHECK(node < 0 || one.ents[0].op == BR_JT_OBJ);
		CHECK(count[i] == one.n);
		for (j = 0; j < one.n; j++)
			CHECK(same_ent(&one.ents[j], &batch.ents[start[i] + j]));
	}
	br_jtape_free(&one);
	br_jtape_free(&batch);
	return 0;
}
