/*
 * src/condeval.c
 *
 * Evaluating loyalty.condition.  Loading turns the stored tree into a
 * program of tests, one per predicate, each with the test to go to when it
 * holds and when it does not; "and", "or" and "not" become those jumps, so
 * evaluation is a loop with no stack that stops at the first decisive test.
 * Every jump goes forward, so the loop ends.  Attribute numbers are
 * dictionary ids: a row of values filled once per line serves every program
 * loaded with the same dictionary.
 *
 * Semantics: a comparison with a missing value (or one of the wrong kind) is
 * false, so "not in" and "<>" are false on a missing attribute too; "is
 * null" is what tests for absence.  A number literal compares numerically
 * with a number or with a string that reads as one; a string literal
 * compares bytewise with the value's text (as ->> gives it).
 */
#include "postgres.h"

#include "condcode.h"

#define T_ACCEPT	(-1)
#define T_REJECT	(-2)
#define T_LABEL(l)	(-3 - (l))		/* a jump to a place not yet known */

typedef struct CondTest
{
	uint8		op;				/* COP_* of a leaf */
	uint8		cmp;
	bool		neg;
	bool		exact;
	int			attr;			/* dictionary ids */
	int			attr2;
	int			days;
	int32		on_true;		/* next test, T_ACCEPT or T_REJECT */
	int32		on_false;
	CondLit		lit[2];
	int			nlits;			/* IN: its literals, numbers then strings, sorted */
	CondLit    *lits;
	bool		has_nums;		/* IN: it has a number literal */
	bool		has_strs;		/* IN: it has a string literal */
} CondTest;

struct CondProgram
{
	int			ntests;
	CondTest   *tests;
	bool		reads_line;
	Condition  *code;			/* a private copy: the literals point into it */
	int			nattrs;
	CondAttr   *attrs;			/* the condition's own table */
	int		   *ids;			/* its dictionary id of each */
	/* while loading */
	int			maxtests;
	int			nlabels;
	int			maxlabels;
	int		   *labels;
};

static int
new_label(CondProgram *p)
{
	if (p->nlabels >= p->maxlabels)
	{
		p->maxlabels = Max(16, p->maxlabels * 2);
		p->labels = p->labels ? repalloc(p->labels, p->maxlabels * sizeof(int))
			: palloc(p->maxlabels * sizeof(int));
	}
	p->labels[p->nlabels] = -1;
	return p->nlabels++;
}

static CondTest *
new_test(CondProgram *p, const CondNode *n, int32 on_true, int32 on_false)
{
	CondTest   *t;

	if (p->ntests >= p->maxtests)
	{
		p->maxtests = Max(8, p->maxtests * 2);
		p->tests = p->tests ? repalloc(p->tests, p->maxtests * sizeof(CondTest))
			: palloc(p->maxtests * sizeof(CondTest));
	}
	t = &p->tests[p->ntests++];
	memset(t, 0, sizeof(*t));
	t->op = n->op;
	t->cmp = n->cmp;
	t->neg = n->neg;
	t->exact = n->exact;
	t->attr = n->attr >= 0 ? p->ids[n->attr] : -1;
	t->attr2 = n->attr2 >= 0 ? p->ids[n->attr2] : -1;
	t->days = n->days;
	t->lit[0] = n->lit[0];
	t->lit[1] = n->lit[1];
	t->on_true = on_true;
	t->on_false = on_false;
	if ((n->attr >= 0 && p->attrs[n->attr].scope == COND_LINE) ||
		(n->attr2 >= 0 && p->attrs[n->attr2].scope == COND_LINE))
		p->reads_line = true;
	return t;
}

/* An IN node's literals, in their stored (sorted) order */
static void
load_list(CondTest *t, CondReader *r, const CondNode *n)
{
	CondReader	list = *r;

	list.p = n->list;
	t->lits = palloc(n->n * sizeof(CondLit));
	for (uint32 i = 0; i < n->n; i++)
	{
		cond_read_lit(&list, &t->lits[t->nlits]);
		t->has_nums |= t->lits[t->nlits].is_num;
		t->has_strs |= !t->lits[t->nlits].is_num;
		t->nlits++;
	}
}

/* Compile a node: jump to on_true when it holds, else to on_false */
static void
compile_node(CondProgram *p, CondReader *r, int32 on_true, int32 on_false)
{
	CondNode	n;

	cond_read_node(r, &n);
	switch (n.op)
	{
		case COP_AND:
		case COP_OR:
			for (uint32 i = 0; i < n.n; i++)
			{
				int			next;

				if (i == n.n - 1)
				{
					compile_node(p, r, on_true, on_false);
					break;
				}
				next = new_label(p);
				if (n.op == COP_AND)
					compile_node(p, r, T_LABEL(next), on_false);
				else
					compile_node(p, r, on_true, T_LABEL(next));
				p->labels[next] = p->ntests;
			}
			break;
		case COP_NOT:
			compile_node(p, r, on_false, on_true);
			break;
		case COP_IN:
			load_list(new_test(p, &n, on_true, on_false), r, &n);
			break;
		default:
			new_test(p, &n, on_true, on_false);
			break;
	}
}

static int32
resolve(const CondProgram *p, int32 target)
{
	return target <= T_LABEL(0) ? p->labels[T_LABEL(0) - target] : target;
}

/* Compile a stored condition into a program over dict's attribute ids */
CondProgram *
loyalty_cond_load(const Condition *c, CondDict *dict)
{
	CondProgram *p = palloc0(sizeof(CondProgram));
	CondReader	r;

	loyalty_cond_verify(c);
	p->code = palloc(VARSIZE(c));
	memcpy(p->code, c, VARSIZE(c));
	p->nattrs = loyalty_cond_attrs(p->code, &p->attrs);
	p->ids = palloc((p->nattrs + 1) * sizeof(int));
	for (int i = 0; i < p->nattrs; i++)
		p->ids[i] = loyalty_cond_dict_intern(dict, p->attrs[i].scope,
											 p->attrs[i].name, p->attrs[i].len);
	cond_reader_init(&r, p->code);
	compile_node(p, &r, T_ACCEPT, T_REJECT);
	for (int i = 0; i < p->ntests; i++)
	{
		p->tests[i].on_true = resolve(p, p->tests[i].on_true);
		p->tests[i].on_false = resolve(p, p->tests[i].on_false);
		Assert(p->tests[i].on_true > i || p->tests[i].on_true < 0);
		Assert(p->tests[i].on_false > i || p->tests[i].on_false < 0);
	}
	if (p->labels)
		pfree(p->labels);
	p->labels = NULL;
	return p;
}

/* The stored condition a program was loaded from, and its attributes' ids */
const Condition *
cond_program_code(const CondProgram *p, const int **ids)
{
	*ids = p->ids;
	return p->code;
}

/* Does the program read any attribute of the line (or only the receipt's and customer's)? */
bool
loyalty_cond_reads_line(const CondProgram *p)
{
	return p->reads_line;
}

/* Compare v with a literal: -1, 0, 1, or 2 when they do not compare */
static inline int
compare(const CondValue *v, const CondLit *lit)
{
	if (v->kind != COND_SCALAR)
		return 2;
	if (lit->is_num)
		return v->has_num ? loyalty_cond_numcmp(&v->num, &lit->num) : 2;
	return cond_strcmp(v->str, v->len, lit->str, lit->len);
}

/* Is the literal in the test's sorted list? */
static bool
in_list(const CondTest *t, const CondLit *probe)
{
	int			lo = 0,
				hi = t->nlits - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = cond_litcmp(&t->lits[mid], probe);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* Is the value the string tag, or an array with it as an element (as jsonb's ? finds)? */
static bool
is_tag(const CondValue *v, const CondLit *tag)
{
	return v->kind == COND_SCALAR && v->is_string &&
		cond_strcmp(v->str, v->len, tag->str, tag->len) == 0;
}

static bool
has_tag(const CondValue *v, const CondLit *tag)
{
	if (v->kind == COND_ARRAY)
		for (int i = 0; i < v->nelems; i++)
			if (is_tag(&v->elems[i], tag))
				return true;
	return is_tag(v, tag);
}

/* Run one test against a row */
static bool
run_test(const CondTest *t, const CondValue *row)
{
	const CondValue *v = t->attr >= 0 ? &row[t->attr] : NULL;
	int			c;
	bool		hit;

	switch (t->op)
	{
		case COP_TRUE:
			return true;
		case COP_CMP:
			c = compare(v, &t->lit[0]);
			if (c == 2)
				return false;
			switch (t->cmp)
			{
				case CMP_EQ:
					return c == 0;
				case CMP_NE:
					return c != 0;
				case CMP_LT:
					return c < 0;
				case CMP_LE:
					return c <= 0;
				case CMP_GT:
					return c > 0;
				default:
					return c >= 0;
			}
		case COP_BETWEEN:
			c = compare(v, &t->lit[0]);
			return c != 2 && c >= 0 && compare(v, &t->lit[1]) <= 0;
		case COP_IN:
			/* a value that compares with no literal of the list: false, in or not in */
			if (v->kind != COND_SCALAR || !(t->has_strs || (v->has_num && t->has_nums)))
				return false;
			{
				CondLit		as_num = {.is_num = true,.num = v->num};
				CondLit		as_str = {.is_num = false,.len = v->len,.str = v->str};

				hit = (v->has_num && in_list(t, &as_num)) || in_list(t, &as_str);
			}
			return hit != t->neg;
		case COP_PREFIX:
			return v->kind == COND_SCALAR &&
				cond_path_under(v->str, v->len, t->lit[0].str, t->lit[0].len);
		case COP_HAS:
			return has_tag(v, &t->lit[0]);
		case COP_LIKE:
			if (v->kind != COND_SCALAR)
				return false;
			hit = v->len >= t->lit[0].len && (!t->exact || v->len == t->lit[0].len) &&
				memcmp(v->str, t->lit[0].str, t->lit[0].len) == 0;
			return hit != t->neg;
		case COP_ISNULL:
			return (v->kind == COND_MISSING) != t->neg;
		case COP_BIRTHDAY:
			c = cond_birthday_distance(&row[t->attr], &row[t->attr2]);
			return c >= 0 && c <= t->days;
	}
	elog(ERROR, "unexpected condition test %d", t->op);
	return false;
}

/* Evaluate a program against a row of values indexed by dictionary id */
bool
loyalty_cond_eval(const CondProgram *p, const CondValue *row)
{
	int32		pc = 0;

	for (;;)
	{
		const CondTest *t = &p->tests[pc];

		pc = run_test(t, row) ? t->on_true : t->on_false;
		if (pc < 0)
			return pc == T_ACCEPT;
	}
}

typedef struct ExplainEntry
{
	int			depth;
	char	   *clause;
	int			attr;
	bool		result;
} ExplainEntry;

typedef struct ExplainState
{
	const CondProgram *p;
	const CondValue *row;
	int			leaf;			/* leaves are the tests, in the same order */
	int			n;
	int			max;
	ExplainEntry *entries;
} ExplainState;

/* Evaluate a node and everything under it, recording each with its result */
static bool
explain_node(ExplainState *st, CondReader *r, int depth)
{
	CondReader	peek = *r;
	StringInfoData clause;
	CondNode	n;
	int			me;
	bool		result;

	initStringInfo(&clause);
	cond_print_node(&clause, &peek, st->p->attrs, 0);
	if (st->n >= st->max)
	{
		st->max = Max(16, st->max * 2);
		st->entries = st->entries ? repalloc(st->entries, st->max * sizeof(ExplainEntry))
			: palloc(st->max * sizeof(ExplainEntry));
	}
	me = st->n++;
	st->entries[me].depth = depth;
	st->entries[me].clause = clause.data;
	st->entries[me].attr = -1;

	cond_read_node(r, &n);
	switch (n.op)
	{
		case COP_AND:
		case COP_OR:
			result = n.op == COP_AND;
			for (uint32 i = 0; i < n.n; i++)
			{
				bool		child = explain_node(st, r, depth + 1);

				result = n.op == COP_AND ? (result && child) : (result || child);
			}
			break;
		case COP_NOT:
			result = !explain_node(st, r, depth + 1);
			break;
		default:
			st->entries[me].attr = st->p->tests[st->leaf].attr;
			result = run_test(&st->p->tests[st->leaf++], st->row);
			break;
	}
	st->entries[me].result = result;
	return result;
}

/*
 * Evaluate every node (no short cut, so that each clause shows its own
 * result) and report them parents first; returns the condition's result.
 */
bool
loyalty_cond_explain(const CondProgram *p, const CondValue *row,
					 CondExplainFn fn, void *arg)
{
	ExplainState st = {.p = p,.row = row};
	CondReader	r;
	bool		result;

	cond_reader_init(&r, p->code);
	result = explain_node(&st, &r, 0);
	Assert(st.leaf == p->ntests);
	for (int i = 0; i < st.n; i++)
		fn(arg, st.entries[i].depth, st.entries[i].clause, st.entries[i].attr,
		   st.entries[i].result);
	return result;
}
