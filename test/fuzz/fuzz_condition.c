/*
 * test/fuzz/fuzz_condition.c
 *
 * libFuzzer target for the loyalty.condition core (src/condparse.c,
 * condcode.c, condeval.c, condindex.c), linked with test/fuzz/shim.c instead
 * of the server.  Built and run by test/fuzz/run.sh (make fuzz).
 *
 * The first byte of an input chooses what it is:
 *
 *   0x00   stored bytes: 0x00 L values[L] payload, where payload is a
 *          Condition after its varlena header.  loyalty_cond_verify may
 *          reject it (data_corrupted and nothing else); if it accepts it,
 *          the value is printed, loaded and evaluated as below.
 *   0x01   damaged code: 0x01 text 0xFE F (pos_lo pos_hi xor)*F values: the
 *          text is compiled, F bytes of the stored value are changed, and the
 *          result is treated as stored bytes.
 *   other  text: cond (0xFF cond)* [0xFE values], up to 8 conditions (0xFE
 *          and 0xFF never occur in UTF-8, so any condition text fits); a
 *          condition ends at a NUL, as the cstring of condition_in does.
 *
 * For each condition text that parses, these must hold, or the target
 * aborts (and libFuzzer keeps the input):
 *   - the parse error, if any, is 22P02, 22023 or 54000, never internal;
 *   - verify accepts the compiled value; printing it, parsing the print and
 *     printing again gives the same text and the same compiled bytes;
 *   - it loads into the shared dictionary; loyalty_cond_reads_line says
 *     whether it names a line attribute.
 * Then, over all programs and two lines of one receipt whose values come
 * from the values bytes, for every program and line:
 *   - loyalty_cond_explain returns what loyalty_cond_eval returns, its first
 *     clause is the whole canonical text with that result, depths step by one;
 *   - loyalty_cond_index_receipt / _line over all the programs (and over
 *     each program alone) report exactly the programs that eval says hold.
 *
 * Values bytes, one value per dictionary id in id order for the first line,
 * then one per line attribute for the second line (the receipt's and the
 * customer's are shared); a value is a kind byte and, for some kinds, text
 * up to a newline:
 *   s<text>   a string            n<text>   a non-string scalar (number, true)
 *   a<a,b,c>  an array of strings A<k>...  an array of k (0-4) values
 *   o         an object           anything else, or no bytes left: missing
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "condition.h"
#include "shim.h"

#undef fprintf
#undef vfprintf

#define MODE_BYTES		0x00
#define MODE_DAMAGE		0x01
#define SEP_VALUES		0xFE
#define SEP_COND		0xFF
#define MAX_CONDS		8
#define NLINES			2
#define MAX_NESTING		3

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

/* Unread value bytes */
typedef struct Bytes
{
	const uint8 *p;
	const uint8 *end;
} Bytes;

/* Everything one input builds; the steps run under shim_try read it */
typedef struct Case
{
	/* the conditions */
	int			n;
	const char *text[MAX_CONDS];
	int			len[MAX_CONDS];
	Condition  *cond[MAX_CONDS];	/* NULL: did not parse */
	char	   *canonical[MAX_CONDS];
	bool		from_text;		/* conditions came from parsing, not bytes */
	int			current;		/* the condition a step works on */
	Bytes		values;
	/* the programs */
	CondDict   *dict;
	CondProgram *programs[MAX_CONDS];
	CondValue  *receipt_row;	/* line attributes missing */
	CondValue  *line_row[NLINES];
	/* explain's callback */
	int			nclauses;
	int			last_depth;
	bool		first_result;
	const char *first_clause;
} Case;

static MemoryContext fuzz_context = NULL;

static void fail(const struct Case *c, const char *fmt,...) pg_attribute_printf(2, 3)
			pg_attribute_noreturn();

/* Report a broken invariant with the input's conditions, then abort */
static void
fail(const Case *c, const char *fmt,...)
{
	va_list		args;

	fprintf(stderr, "\nfuzz_condition: ");
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fprintf(stderr, "\n");
	for (int i = 0; c && i < c->n; i++)
	{
		if (c->text[i])
			fprintf(stderr, "  condition %d text: \"%.*s\"\n", i, c->len[i], c->text[i]);
		if (c->canonical[i])
			fprintf(stderr, "  condition %d canonical: \"%s\"\n", i, c->canonical[i]);
	}
	abort();
}

/* Run a step that must not raise an error */
static void
must(Case *c, const char *what, void (*fn) (void *), void *arg)
{
	if (shim_try(fn, arg))
		fail(c, "%s raised %s: %s (%s) %s", what, shim_error_sqlstate(),
			 shim_error_message(), shim_error_location(), shim_error_detail());
}

/* Split off the next piece of text up to a byte in seps (or the end) */
static const uint8 *
next_piece(const uint8 *p, const uint8 *end, uint8 sep1, uint8 sep2)
{
	while (p < end && *p != sep1 && *p != sep2)
		p++;
	return p;
}

/* Values */

/* Text up to a newline, as a palloc'd copy sized exactly */
static const char *
take_text(Bytes *in, int *len)
{
	const uint8 *start = in->p;
	char	   *s;

	while (in->p < in->end && *in->p != '\n')
		in->p++;
	*len = in->p - start;
	s = palloc(*len + 1);
	memcpy(s, start, *len);
	s[*len] = '\0';
	if (in->p < in->end)
		in->p++;
	return s;
}

/* Read one value (see the head of this file); nesting bounds arrays in arrays */
static void
take_value(Bytes *in, CondValue *v, int nesting)
{
	uint8		kind;
	const char *s;
	int			len;

	memset(v, 0, sizeof(*v));
	v->kind = COND_MISSING;
	if (in->p >= in->end)
		return;
	kind = *in->p++;
	switch (kind)
	{
		case 's':
		case 'n':
			s = take_text(in, &len);
			loyalty_cond_set_text(v, s, len, kind == 's');
			break;
		case 'a':
			{
				CondValue  *elems;
				int			n = 1,
							at = 0;

				s = take_text(in, &len);
				for (int i = 0; i < len; i++)
					n += s[i] == ',';
				elems = palloc(n * sizeof(CondValue));
				for (int i = 0, start = 0; i <= len; i++)
					if (i == len || s[i] == ',')
					{
						loyalty_cond_set_text(&elems[at++], s + start, i - start, true);
						start = i + 1;
					}
				v->kind = COND_ARRAY;
				v->nelems = n;
				v->elems = elems;
				break;
			}
		case 'A':
			{
				CondValue  *elems;
				int			n = 0;

				if (in->p < in->end)
					n = *in->p++ % 5;
				elems = palloc((n + 1) * sizeof(CondValue));
				for (int i = 0; i < n; i++)
				{
					if (nesting < MAX_NESTING)
						take_value(in, &elems[i], nesting + 1);
					else
						loyalty_cond_set_text(&elems[i], "x", 1, true);
				}
				v->kind = COND_ARRAY;
				v->nelems = n;
				v->elems = elems;
				break;
			}
		case 'o':
			v->kind = COND_OTHER;
			break;
		default:
			break;
	}
}

/* The rows of the receipt and its lines, from the values bytes */
static void
fill_rows(Case *c)
{
	int			n = loyalty_cond_dict_size(c->dict);

	for (int l = 0; l < NLINES; l++)
		c->line_row[l] = palloc0((n + 1) * sizeof(CondValue));
	c->receipt_row = palloc0((n + 1) * sizeof(CondValue));
	for (int id = 0; id < n; id++)
		take_value(&c->values, &c->line_row[0][id], 0);
	for (int id = 0; id < n; id++)
	{
		CondScope	scope;
		const char *name;
		int			len;

		loyalty_cond_dict_name(c->dict, id, &scope, &name, &len);
		if (scope == COND_LINE)
		{
			take_value(&c->values, &c->line_row[1][id], 0);
			c->receipt_row[id].kind = COND_MISSING;
		}
		else
		{
			c->line_row[1][id] = c->line_row[0][id];
			c->receipt_row[id] = c->line_row[0][id];
		}
	}
}

/* Steps */

/* Parse the current condition's text */
static void
step_parse(void *arg)
{
	Case	   *c = arg;

	c->cond[c->current] = loyalty_cond_parse(c->text[c->current], c->len[c->current]);
}

/* Verify the current stored value */
static void
step_verify(void *arg)
{
	Case	   *c = arg;

	loyalty_cond_verify(c->cond[c->current]);
}

/* Verify, print, parse the print, print again: all must agree */
static void
step_canonical(void *arg)
{
	Case	   *c = arg;
	Condition  *first = c->cond[c->current];
	Condition  *again;
	char	   *reprint;

	loyalty_cond_verify(first);
	c->canonical[c->current] = loyalty_cond_print(first);
	again = loyalty_cond_parse(c->canonical[c->current], strlen(c->canonical[c->current]));
	reprint = loyalty_cond_print(again);
	if (strcmp(reprint, c->canonical[c->current]) != 0)
		fail(c, "the canonical text prints differently after a parse: \"%s\"", reprint);
	if (VARSIZE(again) != VARSIZE(first) || memcmp(again, first, VARSIZE(first)) != 0)
		fail(c, "the canonical text compiles to other bytes (%u, was %u)",
			 (unsigned) VARSIZE(again), (unsigned) VARSIZE(first));
}

/* Print a stored value (verify accepted it); its text need not parse */
static void
step_print(void *arg)
{
	Case	   *c = arg;

	c->canonical[c->current] = loyalty_cond_print(c->cond[c->current]);
}

/* Load the current condition into the shared dictionary */
static void
step_load(void *arg)
{
	Case	   *c = arg;
	CondProgram *p;
	CondAttr   *attrs;
	int			nattrs;
	bool		names_line = false;

	p = loyalty_cond_load(c->cond[c->current], c->dict);
	c->programs[c->current] = p;
	nattrs = loyalty_cond_attrs(c->cond[c->current], &attrs);
	for (int i = 0; i < nattrs; i++)
		names_line |= attrs[i].scope == COND_LINE;
	if (c->from_text && loyalty_cond_reads_line(p) != names_line)
		fail(c, "condition %d: reads_line is %d but it names %s line attribute",
			 c->current, loyalty_cond_reads_line(p), names_line ? "a" : "no");
}

/* Explain's callback: check each clause's depth and attribute */
static void
explain_clause(void *arg, int depth, const char *clause, int attr, bool result)
{
	Case	   *c = arg;

	if (clause == NULL)
		fail(c, "explain gave a clause without text");
	if (c->nclauses == 0)
	{
		if (depth != 0)
			fail(c, "explain's first clause has depth %d", depth);
		c->first_result = result;
		c->first_clause = clause;
	}
	else if (depth < 1 || depth > c->last_depth + 1)
		fail(c, "explain's clause \"%s\" has depth %d after depth %d", clause, depth,
			 c->last_depth);
	if (attr < -1 || attr >= loyalty_cond_dict_size(c->dict))
		fail(c, "explain's clause \"%s\" names attribute %d of %d", clause, attr,
			 loyalty_cond_dict_size(c->dict));
	c->last_depth = depth;
	c->nclauses++;
}

/* Match the index's answer for one line against eval of every program */
static void
check_index_line(Case *c, CondIndex *ix, CondProgram *const *programs, int n,
				 int first, const CondValue *row, int line, const bool *expect)
{
	int		   *out = palloc((n + 1) * sizeof(int));
	int			count = loyalty_cond_index_line(ix, row, out);
	int			at = 0;

	if (count < 0 || count > n)
		fail(c, "line %d: the index reports %d matches of %d programs", line, count, n);
	for (int i = 0; i < n; i++)
	{
		bool		found = at < count && out[at] == i;

		if (found)
			at++;
		if (found != expect[first + i])
			fail(c, "line %d, condition %d: eval says %s, the index says %s", line,
				 first + i, expect[first + i] ? "true" : "false", found ? "true" : "false");
	}
	if (at != count)
		fail(c, "line %d: the index reports programs out of order or out of range", line);
	pfree(out);
}

/* One receipt of NLINES lines through an index over programs[first..first+n) */
static void
check_index(Case *c, int first, int n, bool expect[NLINES][MAX_CONDS])
{
	CondIndex  *ix = loyalty_cond_index_build(c->programs + first, n, c->dict);

	if (loyalty_cond_index_unindexed(ix) < 0 || loyalty_cond_index_unindexed(ix) > n)
		fail(c, "the index has %d unindexed programs of %d", loyalty_cond_index_unindexed(ix), n);
	loyalty_cond_index_receipt(ix, c->receipt_row);
	for (int l = 0; l < NLINES; l++)
		check_index_line(c, ix, c->programs + first, n, first, c->line_row[l], l, expect[l]);
	if (loyalty_cond_index_evaluations(ix) > (int64) n * (NLINES + 1))
		fail(c, "the index evaluated %lld times for %d programs and %d lines",
			 (long long) loyalty_cond_index_evaluations(ix), n, NLINES);
}

/* Evaluate and explain every program on every line, then ask the indexes */
static void
step_evaluate(void *arg)
{
	Case	   *c = arg;
	bool		expect[NLINES][MAX_CONDS];

	fill_rows(c);
	for (int l = 0; l < NLINES; l++)
		for (int i = 0; i < c->n; i++)
		{
			bool		result,
						explained;

			expect[l][i] = false;
			if (c->programs[i] == NULL)
				continue;
			result = loyalty_cond_eval(c->programs[i], c->line_row[l]);
			c->nclauses = 0;
			c->last_depth = 0;
			explained = loyalty_cond_explain(c->programs[i], c->line_row[l], explain_clause, c);
			if (explained != result)
				fail(c, "line %d, condition %d: eval says %s, explain says %s", l, i,
					 result ? "true" : "false", explained ? "true" : "false");
			if (c->nclauses == 0 || c->first_result != result)
				fail(c, "line %d, condition %d: explain's first clause does not give the result",
					 l, i);
			if (c->canonical[i] && strcmp(c->first_clause, c->canonical[i]) != 0)
				fail(c, "condition %d: explain's first clause is \"%s\"", i, c->first_clause);
			expect[l][i] = result;
		}
	check_index(c, 0, c->n, expect);
	if (c->n > 1)
		for (int i = 0; i < c->n; i++)
			check_index(c, i, 1, expect);
}

/* Inputs */

/* Print, load, evaluate what verify accepted */
static void
run_stored(Case *c)
{
	c->n = 1;
	c->current = 0;
	if (shim_try(step_verify, c))
	{
		if (strcmp(shim_error_sqlstate(), "XX001") != 0)
			fail(c, "verify raised %s, not data_corrupted: %s", shim_error_sqlstate(),
				 shim_error_message());
		return;
	}
	must(c, "printing a verified value", step_print, c);
	must(c, "loading a verified value", step_load, c);
	must(c, "evaluating a verified value", step_evaluate, c);
}

/* 0x00 L values[L] payload */
static void
fuzz_bytes(Case *c, const uint8 *data, size_t size)
{
	size_t		vlen = size > 1 ? data[1] : 0;
	size_t		start = Min(size, 2 + vlen);
	Condition  *cond;

	c->values.p = data + Min(size, 2);
	c->values.end = data + start;
	cond = palloc(VARHDRSZ + size - start);
	SET_VARSIZE(cond, VARHDRSZ + size - start);
	memcpy((char *) cond + VARHDRSZ, data + start, size - start);
	c->cond[0] = cond;
	run_stored(c);
}

/* 0x01 text 0xFE F (pos_lo pos_hi xor)*F values */
static void
fuzz_damage(Case *c, const uint8 *data, size_t size)
{
	const uint8 *end = data + size;
	const uint8 *text = data + 1;
	const uint8 *stop = next_piece(text, end, SEP_VALUES, SEP_VALUES);
	const uint8 *p = stop < end ? stop + 1 : end;
	Condition  *cond;
	int			nflips = 0;
	Size		body;

	c->n = 1;
	c->current = 0;
	c->text[0] = (const char *) text;
	c->len[0] = strnlen((const char *) text, stop - text);
	if (shim_try(step_parse, c))
		return;
	cond = c->cond[0];
	body = VARSIZE(cond) - VARHDRSZ;
	if (p < end)
		nflips = *p++ % 8;
	for (int i = 0; i < nflips && p + 3 <= end && body > 0; i++, p += 3)
		((uint8 *) cond)[VARHDRSZ + (p[0] | (p[1] << 8)) % body] ^= p[2];
	c->values.p = p;
	c->values.end = end;
	run_stored(c);
}

/* cond (0xFF cond)* [0xFE values] */
static void
fuzz_text(Case *c, const uint8 *data, size_t size)
{
	const uint8 *end = data + size;
	const uint8 *p = data;
	const uint8 *conds_end = next_piece(data, end, SEP_VALUES, SEP_VALUES);

	c->from_text = true;
	while (c->n < MAX_CONDS)
	{
		const uint8 *stop = next_piece(p, conds_end, SEP_COND, SEP_COND);

		c->text[c->n] = (const char *) p;
		/* the server's text never holds a NUL: condition_in reads a cstring */
		c->len[c->n] = strnlen((const char *) p, stop - p);
		c->n++;
		if (stop >= conds_end)
			break;
		p = stop + 1;
	}
	c->values.p = conds_end < end ? conds_end + 1 : end;
	c->values.end = end;

	for (c->current = 0; c->current < c->n; c->current++)
	{
		const char *state;

		if (!shim_try(step_parse, c))
			continue;
		c->cond[c->current] = NULL;
		state = shim_error_sqlstate();
		if (strcmp(state, "22P02") != 0 && strcmp(state, "22023") != 0 &&
			strcmp(state, "54000") != 0)
			fail(c, "condition %d: parsing raised %s: %s (%s)", c->current, state,
				 shim_error_message(), shim_error_location());
		if (shim_error_message()[0] == '\0')
			fail(c, "condition %d: parsing raised %s without a message", c->current, state);
	}
	for (c->current = 0; c->current < c->n; c->current++)
		if (c->cond[c->current])
		{
			must(c, "the canonical round trip", step_canonical, c);
			must(c, "loading a parsed condition", step_load, c);
		}
	must(c, "evaluating", step_evaluate, c);
}

/* One input: pick the mode by the first byte, then free all it allocated */
int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	Case		c;

	if (fuzz_context == NULL)
		fuzz_context = shim_context_create("fuzz input");
	CurrentMemoryContext = fuzz_context;
	memset(&c, 0, sizeof(c));
	c.dict = loyalty_cond_dict_create();

	if (size > 0 && data[0] == MODE_BYTES)
		fuzz_bytes(&c, data, size);
	else if (size > 0 && data[0] == MODE_DAMAGE)
		fuzz_damage(&c, data, size);
	else
		fuzz_text(&c, data, size);

	shim_context_reset(fuzz_context);
	return 0;
}
