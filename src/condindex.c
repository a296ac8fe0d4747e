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
 * Two things spare most evaluations:
 * - a condition that is nothing but its filed tests (category <@ 'ski',
 *   brand in (...), sku = 'x' or tags ? 'y') holds exactly when a test is
 *   found: it is not evaluated at all;
 * - an "and" filed under a line test may also carry a gate: its cheapest
 *   operand on the receipt or the customer alone (receipt.city = 'Kazan',
 *   customer.tier in (...)).  The gates are looked up once per receipt, and a
 *   condition whose gate is shut is passed over on every line.
 *
 * Conditions that read nothing of the line are decided once per receipt.
 * Tests on receipt.* and customer.* are looked up once per receipt too; a
 * condition filed under them is evaluated on each line only if they hit.
 */
#include "postgres.h"

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

/* Postings: the programs a key leads to, ascending, in one shared array */
typedef struct Postings
{
	int			first;
	int			count;
} Postings;

typedef struct IndexKey
{
	uint32		hash;
	uint8		kind;
	int			attr;
	int			len;
	const char *bytes;
	Postings	filed;			/* programs filed under the key */
	Postings	gated;			/* programs whose gate the key opens */
} IndexKey;

/* What a posting needs of its program, in one cache line */
typedef struct Slot
{
	uint32		stamp;			/* serial of the last line or receipt that saw it */
	bool		reads_line;
	bool		exact;			/* a filed key found is the program holding */
	bool		gated;			/* passed over unless its gate opened */
} Slot;

/* A key chosen for a program, before the index is built */
typedef struct KeyRef
{
	int			key;
	int			program;
	bool		gate;
} KeyRef;

#define SCOPE_LINE		1
#define SCOPE_RECEIPT	2

/* The keys an operand would be filed under, and their cost */
typedef struct KeySet
{
	bool		indexable;
	bool		exact;			/* the operand holds exactly when a key is found */
	uint8		scopes;			/* SCOPE_* of the keys */
	int			cost;
	int			n;
	int			max;
	int		   *keys;
} KeySet;

struct CondIndex
{
	int			nprograms;
	CondProgram *const *programs;
	Slot	   *slots_of;		/* per program: what a posting needs, in one place */
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
	int			nreceipt_matched;
	int		   *receipt_matched;	/* programs that hold on every line */
	uint64	   *open;			/* gated programs whose gate opened (a bitmap) */
	int			ncandidates;
	int		   *candidates;		/* line programs found by receipt keys */
	/* per line */
	int			nout;
	int		   *out;			/* the caller's array of matched programs */
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

static bool
is_line_attr(const CondDict *dict, int attr)
{
	CondScope	scope;
	const char *name;
	int			len;

	loyalty_cond_dict_name(dict, attr, &scope, &name, &len);
	return scope == COND_LINE;
}

/* A leaf's key set: exact, of its attribute's scope, at a cost per key */
static void
leaf_set(KeySet *out, const CondDict *dict, int attr, int cost_per_key, int nkeys)
{
	bool		line = is_line_attr(dict, attr);

	out->indexable = true;
	out->exact = true;
	out->scopes = line ? SCOPE_LINE : SCOPE_RECEIPT;
	out->cost = nkeys * cost_per_key * (line ? COST_LINE : COST_RECEIPT);
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

/*
 * The keys a node can be filed under (reads the node and what is under it).
 * For an "and", gate (when not NULL) gets its cheapest operand on the
 * receipt or the customer alone, other than the one chosen.
 */
static void
node_keys(CondIndex *ix, const CondDict *dict, CondReader *r, const int *ids,
		  KeySet *out, KeySet *gate)
{
	CondNode	n;

	memset(out, 0, sizeof(*out));
	if (gate)
		memset(gate, 0, sizeof(*gate));
	cond_read_node(r, &n);
	switch (n.op)
	{
		case COP_AND:
			{
				KeySet		best_receipt = {0};

				for (uint32 i = 0; i < n.n; i++)
				{
					KeySet		child;

					node_keys(ix, dict, r, ids, &child, NULL);
					if (!child.indexable)
						continue;
					if (!out->indexable || child.cost < out->cost)
					{
						if (out->indexable && out->scopes == SCOPE_RECEIPT &&
							(!best_receipt.indexable || out->cost < best_receipt.cost))
							best_receipt = *out;
						*out = child;
					}
					else if (child.scopes == SCOPE_RECEIPT &&
							 (!best_receipt.indexable || child.cost < best_receipt.cost))
						best_receipt = child;
				}
				out->exact = false;
				if (gate && out->indexable && out->scopes != SCOPE_RECEIPT)
					*gate = best_receipt;
				break;
			}
		case COP_OR:
			out->indexable = true;
			out->exact = true;
			for (uint32 i = 0; i < n.n; i++)
			{
				KeySet		child;

				node_keys(ix, dict, r, ids, &child, NULL);
				out->indexable &= child.indexable;
				out->exact &= child.exact;
				out->scopes |= child.scopes;
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
				leaf_set(out, dict, ids[n.attr], 1, 1);
				add_literal_key(ix, out, ids[n.attr], &n.lit[0]);
			}
			break;
		case COP_IN:
			if (!n.neg)
			{
				CondReader	list = *r;

				list.p = n.list;
				leaf_set(out, dict, ids[n.attr], 1, n.n);
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
				leaf_set(out, dict, ids[n.attr],
						 names == 1 ? COST_SHALLOW : names == 2 ? COST_MIDDLE : 1, 1);
				keyset_add(out, find_key(ix, KEY_PREFIX, ids[n.attr], n.lit[0].str,
										 n.lit[0].len, true));
				break;
			}
		case COP_HAS:
			leaf_set(out, dict, ids[n.attr], COST_TAG, 1);
			keyset_add(out, find_key(ix, KEY_HAS, ids[n.attr], n.lit[0].str, n.lit[0].len, true));
			break;
		default:
			break;
	}
	if (!out->indexable)
	{
		out->n = 0;
		out->exact = false;
	}
}

static int *
append_int(int *arr, int *n, int v)
{
	arr[(*n)++] = v;
	return arr;
}

static void
add_ref(KeyRef **refs, int *nrefs, int *maxrefs, int key, int program, bool gate)
{
	if (*nrefs >= *maxrefs)
	{
		*maxrefs = Max(256, *maxrefs * 2);
		*refs = *refs ? repalloc(*refs, *maxrefs * sizeof(KeyRef)) : palloc(*maxrefs * sizeof(KeyRef));
	}
	(*refs)[(*nrefs)++] = (KeyRef) {.key = key,.program = program,.gate = gate};
}

/* Lay out the postings of every key: programs ascending, each once */
static void
build_postings(CondIndex *ix, const KeyRef *refs, int nrefs)
{
	int		   *fill = palloc((2 * ix->nkeys + 1) * sizeof(int));
	int			at = 0;

	memset(fill, 0, (2 * ix->nkeys + 1) * sizeof(int));
	for (int i = 0; i < nrefs; i++)
		fill[2 * refs[i].key + refs[i].gate]++;
	for (int i = 0; i < 2 * ix->nkeys; i++)
	{
		int			count = fill[i];

		fill[i] = at;
		at += count;
	}
	for (int i = 0; i < ix->nkeys; i++)
	{
		ix->keys[i].filed.first = fill[2 * i];
		ix->keys[i].gated.first = fill[2 * i + 1];
	}
	ix->postings = palloc((nrefs + 1) * sizeof(int));
	for (int i = 0; i < nrefs; i++)
	{
		int			slot = 2 * refs[i].key + refs[i].gate;
		Postings   *p = refs[i].gate ? &ix->keys[refs[i].key].gated : &ix->keys[refs[i].key].filed;

		if (fill[slot] > p->first && ix->postings[fill[slot] - 1] == refs[i].program)
			continue;			/* 'a' twice in one program's or */
		ix->postings[fill[slot]++] = refs[i].program;
	}
	for (int i = 0; i < ix->nkeys; i++)
	{
		ix->keys[i].filed.count = fill[2 * i] - ix->keys[i].filed.first;
		ix->keys[i].gated.count = fill[2 * i + 1] - ix->keys[i].gated.first;
	}
}

/* Build the index over programs[0..n) (NULL entries never match) */
CondIndex *
loyalty_cond_index_build(CondProgram *const *programs, int n, const CondDict *dict)
{
	CondIndex  *ix = palloc0(sizeof(CondIndex));
	KeyRef	   *refs = NULL;
	int			nrefs = 0,
				maxrefs = 0;

	ix->nprograms = n;
	ix->programs = programs;
	ix->slots_of = palloc0((n + 1) * sizeof(Slot));
	ix->unindexed_line = palloc((n + 1) * sizeof(int));
	ix->unindexed_receipt = palloc((n + 1) * sizeof(int));
	ix->candidates = palloc((n + 1) * sizeof(int));
	ix->nwords = (n + 63) / 64 + 1;
	ix->receipt_matched = palloc((n + 1) * sizeof(int));
	ix->open = palloc0(ix->nwords * sizeof(uint64));

	for (int i = 0; i < n; i++)
	{
		const int  *ids;
		const Condition *code;
		CondReader	r;
		KeySet		set;
		KeySet		gate;

		if (programs[i] == NULL)
			continue;
		ix->slots_of[i].reads_line = loyalty_cond_reads_line(programs[i]);
		code = cond_program_code(programs[i], &ids);
		cond_reader_init(&r, code);
		node_keys(ix, dict, &r, ids, &set, &gate);
		if (!set.indexable)
		{
			if (ix->slots_of[i].reads_line)
				append_int(ix->unindexed_line, &ix->nunindexed_line, i);
			else
				append_int(ix->unindexed_receipt, &ix->nunindexed_receipt, i);
			continue;
		}
		ix->slots_of[i].exact = set.exact;
		for (int k = 0; k < set.n; k++)
			add_ref(&refs, &nrefs, &maxrefs, set.keys[k], i, false);
		ix->slots_of[i].gated = gate.indexable;
		for (int k = 0; k < gate.n; k++)
			add_ref(&refs, &nrefs, &maxrefs, gate.keys[k], i, true);
	}
	build_postings(ix, refs, nrefs);

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
			if (is_line_attr(dict, a))
				append_int(ix->line_attrs, &ix->nline_attrs, a);
			else
				append_int(ix->receipt_attrs, &ix->nreceipt_attrs, a);
		}
	return ix;
}

static int
int_cmp(const void *a, const void *b)
{
	int			x = *(const int *) a,
				y = *(const int *) b;

	return x < y ? -1 : x > y;
}

static inline void
set_bit(uint64 *words, int i)
{
	words[i / 64] |= UINT64CONST(1) << (i % 64);
}

static inline bool
bit_is_set(const uint64 *words, int i)
{
	return (words[i / 64] >> (i % 64)) & 1;
}

/* Call fn for every program filed under a key that the value v of attr hits */
typedef void (*PostingFn) (CondIndex *ix, int program, const CondValue *row);

static void
probe_key(CondIndex *ix, uint8 kind, int attr, const char *bytes, int len,
		  PostingFn fn, const CondValue *row)
{
	int			k = find_key(ix, kind, attr, bytes, len, false);
	const IndexKey *key;

	if (k < 0)
		return;
	key = &ix->keys[k];
	/* gates are on the receipt and the customer: found while starting a receipt */
	for (int i = 0; i < key->gated.count; i++)
		set_bit(ix->open, ix->postings[key->gated.first + i]);
	for (int i = 0; i < key->filed.count; i++)
		fn(ix, ix->postings[key->filed.first + i], row);
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

/* Receipt keys: decide receipt-only programs, remember line programs */
static void
receipt_posting(CondIndex *ix, int program, const CondValue *row)
{
	Slot	   *slot = &ix->slots_of[program];

	if (slot->stamp == ix->serial)
		return;
	slot->stamp = ix->serial;
	if (slot->exact || (!slot->reads_line && evaluate(ix, program, row)))
		ix->receipt_matched[ix->nreceipt_matched++] = program;	/* holds on every line */
	else if (slot->reads_line)
		ix->candidates[ix->ncandidates++] = program;
}

/* Line keys, candidates and unindexed programs: evaluate each once per line */
static void
line_posting(CondIndex *ix, int program, const CondValue *row)
{
	Slot	   *slot = &ix->slots_of[program];

	if (slot->stamp == ix->serial)
		return;
	slot->stamp = ix->serial;
	if (slot->gated && !bit_is_set(ix->open, program))
		return;
	if (slot->exact || evaluate(ix, program, row))
		ix->out[ix->nout++] = program;
}

static void
next_serial(CondIndex *ix)
{
	if (++ix->serial == 0)
	{
		for (int i = 0; i <= ix->nprograms; i++)
			ix->slots_of[i].stamp = 0;
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
	ix->nreceipt_matched = 0;
	memset(ix->open, 0, ix->nwords * sizeof(uint64));
	ix->ncandidates = 0;
	for (int i = 0; i < ix->nreceipt_attrs; i++)
		probe_value(ix, ix->receipt_attrs[i], &row[ix->receipt_attrs[i]], receipt_posting, row);
	for (int i = 0; i < ix->nunindexed_receipt; i++)
		receipt_posting(ix, ix->unindexed_receipt[i], row);
}

/*
 * Match one line (row: its values and the receipt's).  Writes the numbers
 * of the programs that hold to out[], each once, in no particular order;
 * returns how many.
 */
int
loyalty_cond_index_line_unordered(CondIndex *ix, const CondValue *row, int *out)
{
	next_serial(ix);
	ix->out = out;
	ix->nout = 0;
	for (int i = 0; i < ix->nreceipt_matched; i++)
	{
		int			program = ix->receipt_matched[i];

		ix->slots_of[program].stamp = ix->serial;
		out[ix->nout++] = program;
	}
	for (int i = 0; i < ix->nline_attrs; i++)
		probe_value(ix, ix->line_attrs[i], &row[ix->line_attrs[i]], line_posting, row);
	for (int i = 0; i < ix->ncandidates; i++)
		line_posting(ix, ix->candidates[i], row);
	for (int i = 0; i < ix->nunindexed_line; i++)
		line_posting(ix, ix->unindexed_line[i], row);
	return ix->nout;
}

/* The same, the numbers ascending */
int
loyalty_cond_index_line(CondIndex *ix, const CondValue *row, int *out)
{
	loyalty_cond_index_line_unordered(ix, row, out);
	if (ix->nout > 32)
		qsort(out, ix->nout, sizeof(int), int_cmp);
	else
		for (int i = 1; i < ix->nout; i++)
		{
			int			v = out[i],
						j = i;

			for (; j > 0 && out[j - 1] > v; j--)
				out[j] = out[j - 1];
			out[j] = v;
		}
	return ix->nout;
}

/* How many programs no index entry leads to (evaluated on every line or receipt) */
int
loyalty_cond_index_unindexed(const CondIndex *ix)
{
	return ix->nunindexed_line + ix->nunindexed_receipt;
}

/* Full evaluations so far: what the index saves is n * lines minus this
 * (programs found through an exact key are not evaluated) */
int64
loyalty_cond_index_evaluations(const CondIndex *ix)
{
	return ix->evaluations;
}
