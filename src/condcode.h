/*
 * src/condcode.h
 *
 * The bytecode of loyalty.condition, shared by the compiler (condparse.c),
 * the readers (condcode.c) and the evaluator (condeval.c, condindex.c).
 *
 * After the fixed header, data[] holds code_len bytes of code, then the
 * attribute table.  The code is the condition's tree in prefix order; every
 * integer is little-endian and unaligned, so the bytes mean the same on every
 * machine and at every address:
 *
 *   TRUE
 *   AND n child*n          OR n child*n          (n: u32, at least 2)
 *   NOT child
 *   CMP cmp attr lit       BETWEEN attr lit lit  (lit <= lit, same kind)
 *   IN neg attr n lit*n    (numbers ascending, then strings in byte order;
 *                           no duplicates)
 *   PREFIX attr str        HAS attr str          LIKE neg exact attr str
 *   ISNULL neg attr        BIRTHDAY days attr attr (customer.birthday,
 *                                                   receipt.date)
 *
 * attr is a u16 index into the attribute table; neg and exact are 0 or 1.
 * A literal is 'n' sign(u8: 0 negative, 1 zero, 2 positive) exp(i32)
 * ndigits(u32) digits, or 's' len(u32) bytes.  An attribute table entry is
 * scope(u8) len(u16) bytes.
 */
#ifndef LOYALTY_CONDCODE_H
#define LOYALTY_CONDCODE_H

#include "condition.h"

/* Node opcodes */
#define COP_TRUE		1
#define COP_AND			2
#define COP_OR			3
#define COP_NOT			4
#define COP_CMP			5
#define COP_BETWEEN		6
#define COP_IN			7
#define COP_PREFIX		8
#define COP_HAS			9
#define COP_LIKE		10
#define COP_ISNULL		11
#define COP_BIRTHDAY	12

/* Comparisons of COP_CMP */
#define CMP_EQ	0
#define CMP_NE	1
#define CMP_LT	2
#define CMP_LE	3
#define CMP_GT	4
#define CMP_GE	5

#define LIT_NUMBER	'n'
#define LIT_STRING	's'

/* A literal as read from the code */
typedef struct CondLit
{
	bool		is_num;
	CondNum		num;			/* is_num */
	int32		len;			/* !is_num: the string */
	const char *str;
} CondLit;

/* One node as read from the code; AND, OR and NOT leave the reader at their first child */
typedef struct CondNode
{
	uint8		op;
	uint8		cmp;
	bool		neg;
	bool		exact;
	int			attr;
	int			attr2;
	int			days;
	uint32		n;				/* AND/OR: children; IN: literals */
	CondLit		lit[2];
	const uint8 *list;			/* IN: where its n literals start */
} CondNode;

/* Bounds-checked reading of the code */
typedef struct CondReader
{
	const uint8 *p;
	const uint8 *end;
	int			nattrs;
} CondReader;

extern void cond_reader_init(CondReader *r, const Condition *c);
extern void cond_read_node(CondReader *r, CondNode *node);
extern void cond_read_lit(CondReader *r, CondLit *lit);
extern void cond_skip_node(CondReader *r);
extern pg_attribute_noreturn() void cond_corrupt(const char *what);

extern bool cond_is_keyword(const char *s, int len);
extern bool cond_attr_is(const CondAttr *a, CondScope scope, const char *name);

/* Literal order of IN lists: numbers ascending, then strings by bytes */
extern int	cond_litcmp(const CondLit *a, const CondLit *b);
extern int	cond_strcmp(const char *a, int alen, const char *b, int blen);

/* Canonical text of one node and what is under it */
extern void cond_print_node(StringInfo buf, CondReader *r, const CondAttr *attrs,
							int parent_prec);

/* Category paths: does value lie under prefix ('ski' holds 'ski/alpine')? */
static inline bool
cond_path_under(const char *value, int vlen, const char *prefix, int plen)
{
	return vlen >= plen && memcmp(value, prefix, plen) == 0 &&
		(vlen == plen || value[plen] == '/');
}

extern int	cond_weekday(int y, int m, int d);
extern bool cond_read_date(const char *s, int len, int *y, int *m, int *d);
extern uint32 cond_hash(uint32 seed, const char *s, int len);
extern const Condition *cond_program_code(const CondProgram *p, const int **ids);

/* A category path: names separated by single "/", none empty */
static inline bool
cond_path_valid(const char *s, int len)
{
	if (len == 0 || s[0] == '/' || s[len - 1] == '/')
		return false;
	for (int i = 1; i < len; i++)
		if (s[i] == '/' && s[i - 1] == '/')
			return false;
	return true;
}

/* Days from a receipt date to the nearest anniversary of a birthday, or -1 */
extern int	cond_birthday_distance(const CondValue *birthday, const CondValue *date);

#endif							/* LOYALTY_CONDCODE_H */
