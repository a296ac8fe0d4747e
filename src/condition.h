/*
 * src/condition.h
 *
 * The loyalty.condition type: a boolean rule over the attributes of a
 * receipt line, the receipt and the customer, such as
 *     category <@ 'ski/alpine' and brand in ('Atomic', 'Head') and price >= 1000
 * compiled once into a compact bytecode and evaluated many times.
 *
 * The C API, for code that matches rules without going through SQL:
 *
 *   Condition   *c = loyalty_cond_parse(text, len);   text -> stored bytecode
 *   CondDict    *d = loyalty_cond_dict_create();       interned attribute names
 *   CondProgram *p = loyalty_cond_load(c, d);          bytecode -> program over d
 *   CondValue row[loyalty_cond_dict_size(d)];          one value per attribute id,
 *                                                      filled once per line
 *   loyalty_cond_eval(p, row)                          no lookups by name
 *
 * and for many rules at once, an index over their equality, prefix and tag
 * tests (loyalty_cond_index_*), so that a line consults only the rules that
 * could match it.
 *
 * Everything here uses palloc and ereport only, so that the fuzz harness and
 * the micro-benchmark in test/ can run it outside the server.
 */
#ifndef LOYALTY_CONDITION_H
#define LOYALTY_CONDITION_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

/* The stored format: a varlena with a version byte and reserved flag bits */
#define COND_FORMAT_VERSION	1
#define COND_MAX_DEPTH		64			/* nested "(" and "not" in the text */
#define COND_MAX_TREE		(2 * COND_MAX_DEPTH + 4)	/* levels of the compiled tree */
#define COND_MAX_INPUT		65536		/* bytes of text */
#define COND_MAX_BIRTHDAY	366			/* days of customer.birthday_within(n) */

typedef struct Condition
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;		/* COND_FORMAT_VERSION */
	uint8		flags;			/* reserved: must be zero */
	uint16		nattrs;			/* entries of the attribute table */
	uint32		code_len;		/* bytes of code; the attribute table follows */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} Condition;

#define DatumGetConditionP(d)	((Condition *) PG_DETOAST_DATUM(d))
#define PG_GETARG_CONDITION_P(n) DatumGetConditionP(PG_GETARG_DATUM(n))

/* Whose attribute a name is: the line's, receipt.*, customer.* */
typedef enum CondScope
{
	COND_LINE = 0,
	COND_RECEIPT = 1,
	COND_CUSTOMER = 2
} CondScope;

#define COND_NSCOPES 3

/*
 * An exact decimal: sign * 0.d1d2...dn * 10^exp, with no leading or trailing
 * zero digit (zero has sign 0 and no digits).  Compared without floating
 * point, of any size.
 */
typedef struct CondNum
{
	int			sign;			/* -1, 0 or 1 */
	int32		exp;
	int32		ndigits;
	const char *digits;			/* ASCII digits, not terminated */
} CondNum;

/* What an attribute holds for one line */
typedef enum CondKind
{
	COND_MISSING = 0,			/* absent, or JSON null */
	COND_SCALAR,				/* a string, number or boolean */
	COND_ARRAY,					/* an array: its scalar elements */
	COND_OTHER					/* an object: compares with nothing */
} CondKind;

typedef struct CondValue
{
	CondKind	kind;
	bool		is_string;		/* SCALAR: a JSON string (what "?" finds) */
	bool		has_num;		/* SCALAR: a number, or a string that reads as one */
	int32		len;			/* SCALAR: its text, as ->> gives it */
	const char *str;
	CondNum		num;			/* SCALAR with has_num */
	int32		nelems;			/* ARRAY: its scalar elements */
	const struct CondValue *elems;
} CondValue;

/* An attribute a condition reads: its scope and name (not terminated) */
typedef struct CondAttr
{
	CondScope	scope;
	int32		len;
	const char *name;
} CondAttr;

typedef struct CondDict CondDict;
typedef struct CondProgram CondProgram;
typedef struct CondIndex CondIndex;

/* Text and bytecode (condparse.c, condcode.c) */
extern Condition *loyalty_cond_parse(const char *text, int len);
extern char *loyalty_cond_print(const Condition *c);
extern void loyalty_cond_verify(const Condition *c);
extern int	loyalty_cond_attrs(const Condition *c, CondAttr **attrs);
extern void loyalty_cond_attr_name(StringInfo buf, CondScope scope,
								   const char *name, int len);

/* Numbers and values (condcode.c) */
extern bool loyalty_cond_number(const char *s, int len, CondNum *out);
extern int	loyalty_cond_numcmp(const CondNum *a, const CondNum *b);
extern void loyalty_cond_set_text(CondValue *v, const char *s, int len,
								  bool is_string);

/* Interned attribute names (condcode.c) and programs (condeval.c);
 * row[] is indexed by dictionary id */
extern CondDict *loyalty_cond_dict_create(void);
extern int	loyalty_cond_dict_intern(CondDict *dict, CondScope scope,
									 const char *name, int len);
extern int	loyalty_cond_dict_size(const CondDict *dict);
extern void loyalty_cond_dict_name(const CondDict *dict, int id, CondScope *scope,
								   const char **name, int *len);
extern CondProgram *loyalty_cond_load(const Condition *c, CondDict *dict);
extern bool loyalty_cond_eval(const CondProgram *p, const CondValue *row);
extern bool loyalty_cond_reads_line(const CondProgram *p);

/* Each node of a program's condition with its result, parents first */
typedef void (*CondExplainFn) (void *arg, int depth, const char *clause,
							   int attr, bool result);
extern bool loyalty_cond_explain(const CondProgram *p, const CondValue *row,
								 CondExplainFn fn, void *arg);

/* Many programs at once (condindex.c) */
extern CondIndex *loyalty_cond_index_build(CondProgram *const *programs, int n,
										   const CondDict *dict);
extern void loyalty_cond_index_receipt(CondIndex *ix, const CondValue *row);
extern int	loyalty_cond_index_line(CondIndex *ix, const CondValue *row, int *out);
extern int	loyalty_cond_index_line_unordered(CondIndex *ix, const CondValue *row, int *out);
extern int	loyalty_cond_index_unindexed(const CondIndex *ix);
extern int64 loyalty_cond_index_evaluations(const CondIndex *ix);

#endif							/* LOYALTY_CONDITION_H */
