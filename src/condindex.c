/*
 * src/condindex.c
 *
 * Matching many conditions at once.  Each condition is filed under a set of
 * tests of the form (attribute, value) such that it can only hold when one of
 * them does: an equality or in-list, a category prefix, or a tag.  For "and"
 * the cheapest indexable operand is enough; for "or" every operand must be
 * indexable and the sets are joined.  A line then looks up its own values
 * (every prefix of its category path, every tag) and evaluates only the
 * conditions found there, plus those with no indexable test.
 *
 * Conditions that read nothing of the line are decided once per receipt.
 * Tests on receipt.* and customer.* are looked up once per receipt too; a
 * condition filed under them is evaluated on each line only if they hit.
 */
#include "postgres.h"

#include "port/pg_bitutils.h"

#include "condcode.h"

#define KEY_EQ_STR	0
#define KEY_EQ_NUM	1
#define KEY_PREFIX	2
#define KEY_HAS		3
#define KEY_KINDS	4

/* Relative cost of a test as an index entry: how many candidates it lets in */
#define COST_LINE		1
#define COST_RECEIPT	16		/* a hit is evaluated on every line */
#define COST_TAG		2
#define COST_SHALLOW	8		/* a one-name category path: 'ski' */
#define COST_MIDDLE		3		/* two names: 'ski/alpine' */

typedef struct IndexKey
{
	uint32		hash;
	uint8		kind;
	int			attr;
	int			len;
	const char *bytes;
	int			first;			/* postings: first and count, once built */
	int			count;
} IndexKey;

/* A key chosen for a program, before the index is built */
typedef struct KeyRef
{
	int			key;
	int			program;
} KeyRef;

/* The keys an operand would be filed under, and their cost */
typedef struct KeySet
{
	bool		indexable;
	int			cost;
	int			n;
	int			max;
	int		   *keys;
} KeySet;

struct CondIndex
{
	int			nprograms;
	CondProgram *const *programs;
	bool	   *reads_line;
	/* keys */
	int			nkeys;
	int			maxkeys;
	IndexKey   *keys;
	int		   *slots;
	int			nslots;
	int		   *postings;
	/* which attributes have keys, of which kinds (bit per KEY_*) */
	int			nattrs;
	uint8	   *kinds;
	int			nline_attrs;
	int		   *line_attrs;
	int			nreceipt_attrs;
	int		   *receipt_attrs;
	/* programs no key leads to */
	int			nunindexed_line;
	int		   *unindexed_line;
	int			nunindexed_receipt;
	int		   *unindexed_receipt;
	/* per receipt */
	int			nwords;
	uint64	   *receipt_matched;	/* receipt-only programs that hold */
	int			ncandidates;
	int		   *candidates;		/* line programs found by receipt keys */
	/* per line */
	uint64	   *matched;
	uint32	   *stamp;
	uint32		serial;
	int64		evaluations;
};

/* The bytes of a number key: sign, exponent, digits */
static char *
num_key(const CondNum *num, int *len)
{
	char	   *k = palloc(5 + num->ndigits);

	k[0] = (char) (num->sign + 1);
	memcpy(k + 1, &num->exp, 4);
	memcpy(k + 5, num->digits, num->ndigits);
	*len = 5 + num->ndigits;
	return k;
}

static uint32
key_hash(uint8 kind, int attr, const char *bytes, int len)
{
	return cond_hash((uint32) attr * KEY_KINDS + kind, bytes, len);
}

/* Find a key; with add, create it when it is missing.  Returns its number or -1. */
static int
find_key(CondIndex *ix, uint8 kind, int attr, const char *bytes, int len, bool add)
{
	uint32		h = key_hash(kind, attr, bytes, len);
	int			slot;

	if (add && ix->nkeys * 2 >= ix->nslots)
	{
		int			nslots = Max(256, ix->nslots * 2);

		ix->slots = palloc(nslots * sizeof(int));
		memset(ix->slots, -1, nslots * sizeof(int));
		ix->nslots = nslots;
		for (int i = 0; i < ix->nkeys; i++)
		{
			slot = ix->keys[i].hash & (nslots - 1);
			while (ix->slots[slot] >= 0)
				slot = (slot + 1) & (nslots - 1);
			ix->slots[slot] = i;
		}
	}
	if (ix->nslots == 0)
		return -1;
	for (slot = h & (ix->nslots - 1); ix->slots[slot] >= 0; slot = (slot + 1) & (ix->nslots - 1))
	{
		IndexKey   *k = &ix->keys[ix->slots[slot]];

		if (k->hash == h && k->kind == kind && k->attr == attr && k->len == len &&
			memcmp(k->bytes, bytes, len) == 0)
			return ix->slots[slot];
	}
	if (!add)
		return -1;
	if (ix->nkeys >= ix->maxkeys)
	{
		ix->maxkeys = Max(256, ix->maxkeys * 2);
		ix->keys = ix->keys ? repalloc(ix->keys, ix->maxkeys * sizeof(IndexKey))
			: palloc(ix->maxkeys * sizeof(IndexKey));
	}
	ix->keys[ix->nkeys] = (IndexKey) {.hash = h,.kind = kind,.attr = attr,.len = len,.bytes = bytes};
	ix->slots[slot] = ix->nkeys;
	return ix->nkeys++;
}

static void
keyset_add(KeySet *set, int key)
{
	if (set->n >= set->max)
	{
		set->max = Max(4, set->max * 2);
		set->keys = set->keys ? repalloc(set->keys, set->max * sizeof(int))
			: palloc(set->max * sizeof(int));
	}
	set->keys[set->n++] = key;
}

static int
scope_cost(const CondDict *dict, int attr)
{
	CondScope	scope;
	const char *name;
	int			len;

	loyalty_cond_dict_name(dict, attr, &scope, &name, &len);
	return scope == COND_LINE ? COST_LINE : COST_RECEIPT;
}

static void
add_literal_key(CondIndex *ix, KeySet *set, int attr, const CondLit *lit)
{
	if (lit->is_num)
	{
		int			len;
		char	   *k = num_key(&lit->num, &len);

		keyset_add(set, find_key(ix, KEY_EQ_NUM, attr, k, len, true));
	}
	else
		keyset_add(set, find_key(ix, KEY_EQ_STR, attr, lit->str, lit->len, true));
}

/* The keys a node can be filed under (reads the node and what is under it) */
static void
node_keys(CondIndex *ix, const CondDict *dict, CondReader *r, const int *ids, KeySet *out)
{
	CondNode	n;

	memset(out, 0, sizeof(*out));
	cond_read_node(r, &n);
	switch (n.op)
	{
		case COP_AND:
			for (uint32 i = 0; i < n.n; i++)
			{
				KeySet		child;

				node_keys(ix, dict, r, ids, &child);
				if (child.indexable && (!out->indexable || child.cost < out->cost))
					*out = child;
			}
			break;
		case COP_OR:
			out->indexable = true;
			for (uint32 i = 0; i < n.n; i++)
			{
				KeySet		child;

				node_keys(ix, dict, r, ids, &child);
				out->indexable &= child.indexable;
				out->cost += child.cost;
				for (int k = 0; k < child.n && out->indexable; k++)
					keyset_add(out, child.keys[k]);
			}
			break;
		case COP_NOT:
			cond_skip_node(r);
			break;
		case COP_CMP:
			if (n.cmp == CMP_EQ)
			{
				out->indexable = true;
				out->cost = scope_cost(dict, ids[n.attr]);
				add_literal_key(ix, out, ids[n.attr], &n.lit[0]);
			}
			break;
		case COP_IN:
			if (!n.neg)
			{
				CondReader	list = *r;

				list.p = n.list;
				out->indexable = true;
				out->cost = n.n * scope_cost(dict, ids[n.attr]);
				for (uint32 i = 0; i < n.n; i++)
				{
					CondLit		lit;

					cond_read_lit(&list, &lit);
					add_literal_key(ix, out, ids[n.attr], &lit);
				}
			}
			break;
		case COP_PREFIX:
			{
				int			names = 1;

				for (int i = 0; i < n.lit[0].len; i++)
					names += n.lit[0].str[i] == '/';
				out->indexable = true;
				out->cost = scope_cost(dict, ids[n.attr]) *
					(names == 1 ? COST_SHALLOW : names == 2 ? COST_MIDDLE : 1);
				keyset_add(out, find_key(ix, KEY_PREFIX, ids[n.attr], n.lit[0].str,
										 n.lit[0].len, true));
				break;
			}
		case COP_HAS:
			out->indexable = true;
			out->cost = scope_cost(dict, ids[n.attr]) * COST_TAG;
			keyset_add(out, find_key(ix, KEY_HAS, ids[n.attr], n.lit[0].str, n.lit[0].len, true));
			break;
		default:
			break;
	}
	if (!out->indexable)
		out->n = 0;
}

static int *
append_int(int *arr, int *n, int v)
{
	arr[(*n)++] = v;
	return arr;
}

/* Build the index over programs[0..n) (NULL entries never match) */
CondIndex *
loyalty_cond_index_build(CondProgram *const *programs, int n, const CondDict *dict)
{
	CondIndex  *ix = palloc0(sizeof(CondIndex));
	KeyRef	   *refs = NULL;
	int			nrefs = 0,
				maxrefs = 0;
	int		   *fill;

	ix->nprograms = n;
	ix->programs = programs;
	ix->reads_line = palloc0((n + 1) * sizeof(bool));
	ix->unindexed_line = palloc((n + 1) * sizeof(int));
	ix->unindexed_receipt = palloc((n + 1) * sizeof(int));
	ix->candidates = palloc((n + 1) * sizeof(int));
	ix->stamp = palloc0((n + 1) * sizeof(uint32));
	ix->nwords = (n + 63) / 64 + 1;
	ix->receipt_matched = palloc0(ix->nwords * sizeof(uint64));
	ix->matched = palloc0(ix->nwords * sizeof(uint64));

	for (int i = 0; i < n; i++)
	{
		const int  *ids;
		const Condition *code;
		CondReader	r;
		KeySet		set;

		if (programs[i] == NULL)
			continue;
		ix->reads_line[i] = loyalty_cond_reads_line(programs[i]);
		code = cond_program_code(programs[i], &ids);
		cond_reader_init(&r, code);
		node_keys(ix, dict, &r, ids, &set);
		if (!set.indexable)
		{
			if (ix->reads_line[i])
				append_int(ix->unindexed_line, &ix->nunindexed_line, i);
			else
				append_int(ix->unindexed_receipt, &ix->nunindexed_receipt, i);
			continue;
		}
		for (int k = 0; k < set.n; k++)
		{
			if (nrefs >= maxrefs)
			{
				maxrefs = Max(256, maxrefs * 2);
				refs = refs ? repalloc(refs, maxrefs * sizeof(KeyRef)) : palloc(maxrefs * sizeof(KeyRef));
			}
			refs[nrefs++] = (KeyRef) {.key = set.keys[k],.program = i};
		}
	}

	/* postings: the programs of each key, in program order, each once */
	for (int i = 0; i < ix->nkeys; i++)
		ix->keys[i].count = 0;
	for (int i = 0; i < nrefs; i++)
		ix->keys[refs[i].key].count++;
	fill = palloc((ix->nkeys + 1) * sizeof(int));
	for (int i = 0, at = 0; i < ix->nkeys; i++)
	{
		ix->keys[i].first = at;
		fill[i] = at;
		at += ix->keys[i].count;
	}
	ix->postings = palloc((nrefs + 1) * sizeof(int));
	for (int i = 0; i < nrefs; i++)
	{
		IndexKey   *k = &ix->keys[refs[i].key];
		int			at = fill[refs[i].key];

		if (at > k->first && ix->postings[at - 1] == refs[i].program)
			continue;			/* 'a' twice in one program's or */
		ix->postings[at] = refs[i].program;
		fill[refs[i].key]++;
	}
	for (int i = 0; i < ix->nkeys; i++)
		ix->keys[i].count = fill[i] - ix->keys[i].first;

	/* the attributes to look up, by scope */
	ix->nattrs = loyalty_cond_dict_size(dict);
	ix->kinds = palloc0(ix->nattrs + 1);
	ix->line_attrs = palloc((ix->nattrs + 1) * sizeof(int));
	ix->receipt_attrs = palloc((ix->nattrs + 1) * sizeof(int));
	for (int i = 0; i < ix->nkeys; i++)
		ix->kinds[ix->keys[i].attr] |= 1 << ix->keys[i].kind;
	for (int a = 0; a < ix->nattrs; a++)
		if (ix->kinds[a])
		{
			if (scope_cost(dict, a) == COST_LINE)
				append_int(ix->line_attrs, &ix->nline_attrs, a);
			else
				append_int(ix->receipt_attrs, &ix->nreceipt_attrs, a);
		}
	return ix;
}

/* Call fn for every program filed under a key that the value v of attr hits */
typedef void (*PostingFn) (CondIndex *ix, int program, const CondValue *row);

static void
probe_key(CondIndex *ix, uint8 kind, int attr, const char *bytes, int len,
		  PostingFn fn, const CondValue *row)
{
	int			k = find_key(ix, kind, attr, bytes, len, false);

	if (k < 0)
		return;
	for (int i = 0; i < ix->keys[k].count; i++)
		fn(ix, ix->postings[ix->keys[k].first + i], row);
}

static void
probe_value(CondIndex *ix, int attr, const CondValue *v, PostingFn fn, const CondValue *row)
{
	uint8		kinds = ix->kinds[attr];

	if (v->kind == COND_SCALAR)
	{
		if (kinds & (1 << KEY_EQ_STR))
			probe_key(ix, KEY_EQ_STR, attr, v->str, v->len, fn, row);
		if ((kinds & (1 << KEY_EQ_NUM)) && v->has_num)
		{
			int			len;
			char	   *k = num_key(&v->num, &len);

			probe_key(ix, KEY_EQ_NUM, attr, k, len, fn, row);
			pfree(k);
		}
		if (kinds & (1 << KEY_PREFIX))
		{
			for (int i = 1; i < v->len; i++)
				if (v->str[i] == '/')
					probe_key(ix, KEY_PREFIX, attr, v->str, i, fn, row);
			probe_key(ix, KEY_PREFIX, attr, v->str, v->len, fn, row);
		}
		if ((kinds & (1 << KEY_HAS)) && v->is_string)
			probe_key(ix, KEY_HAS, attr, v->str, v->len, fn, row);
	}
	else if (v->kind == COND_ARRAY && (kinds & (1 << KEY_HAS)))
	{
		for (int i = 0; i < v->nelems; i++)
			if (v->elems[i].kind == COND_SCALAR && v->elems[i].is_string)
				probe_key(ix, KEY_HAS, attr, v->elems[i].str, v->elems[i].len, fn, row);
	}
}

static bool
evaluate(CondIndex *ix, int program, const CondValue *row)
{
	ix->evaluations++;
	return loyalty_cond_eval(ix->programs[program], row);
}

static void
set_bit(uint64 *words, int i)
{
	words[i / 64] |= UINT64CONST(1) << (i % 64);
}

/* Receipt keys: decide receipt-only programs, remember line programs */
static void
receipt_posting(CondIndex *ix, int program, const CondValue *row)
{
	if (ix->stamp[program] == ix->serial)
		return;
	ix->stamp[program] = ix->serial;
	if (ix->reads_line[program])
		ix->candidates[ix->ncandidates++] = program;
	else if (evaluate(ix, program, row))
		set_bit(ix->receipt_matched, program);
}

/* Line keys, candidates and unindexed programs: evaluate each once per line */
static void
line_posting(CondIndex *ix, int program, const CondValue *row)
{
	if (ix->stamp[program] == ix->serial)
		return;
	ix->stamp[program] = ix->serial;
	if (evaluate(ix, program, row))
		set_bit(ix->matched, program);
}

static void
next_serial(CondIndex *ix)
{
	if (++ix->serial == 0)
	{
		memset(ix->stamp, 0, (ix->nprograms + 1) * sizeof(uint32));
		ix->serial = 1;
	}
}

/*
 * Start a receipt: row holds its receipt.* and customer.* values.  Decides
 * the programs that read nothing of the line.
 */
void
loyalty_cond_index_receipt(CondIndex *ix, const CondValue *row)
{
	next_serial(ix);
	memset(ix->receipt_matched, 0, ix->nwords * sizeof(uint64));
	ix->ncandidates = 0;
	for (int i = 0; i < ix->nreceipt_attrs; i++)
		probe_value(ix, ix->receipt_attrs[i], &row[ix->receipt_attrs[i]], receipt_posting, row);
	for (int i = 0; i < ix->nunindexed_receipt; i++)
		receipt_posting(ix, ix->unindexed_receipt[i], row);
}

/*
 * Match one line (row: its values and the receipt's).  Writes the numbers
 * of the programs that hold to out[], ascending; returns how many.
 */
int
loyalty_cond_index_line(CondIndex *ix, const CondValue *row, int *out)
{
	int			n = 0;

	next_serial(ix);
	memcpy(ix->matched, ix->receipt_matched, ix->nwords * sizeof(uint64));
	for (int i = 0; i < ix->nline_attrs; i++)
		probe_value(ix, ix->line_attrs[i], &row[ix->line_attrs[i]], line_posting, row);
	for (int i = 0; i < ix->ncandidates; i++)
		line_posting(ix, ix->candidates[i], row);
	for (int i = 0; i < ix->nunindexed_line; i++)
		line_posting(ix, ix->unindexed_line[i], row);
	for (int w = 0; w < ix->nwords; w++)
	{
		uint64		bits = ix->matched[w];

		while (bits)
		{
			int			b = pg_rightmost_one_pos64(bits);

			out[n++] = w * 64 + b;
			bits &= bits - 1;
		}
	}
	return n;
}

/* How many programs no index entry leads to (evaluated on every line or receipt) */
int
loyalty_cond_index_unindexed(const CondIndex *ix)
{
	return ix->nunindexed_line + ix->nunindexed_receipt;
}

/* Full evaluations so far: what the index saves is n * lines minus this */
int64
loyalty_cond_index_evaluations(const CondIndex *ix)
{
	return ix->evaluations;
}
