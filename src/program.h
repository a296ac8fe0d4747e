/*
 * src/program.h
 *
 * A loyalty programme as the C functions need it: its id and its rules for
 * reading identifiers.  Loaded by code through SPI.
 */
#ifndef LOYALTY_PROGRAM_H
#define LOYALTY_PROGRAM_H

#include "executor/spi.h"

#include "identifier.h"

typedef struct LoyaltyProgram
{
	int64		id;
	const char *code;
	const PhoneCountry *phone_country;	/* NULL: only international numbers */
	CardRule	card;
} LoyaltyProgram;

/* A statement prepared on first use and kept for the life of the backend */
typedef struct KeptQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[48];
	SPIPlanPtr	plan;
} KeptQuery;

extern void LoadProgram(const char *code, LoyaltyProgram *program);
extern SPIPlanPtr PrepareKept(const char *query, int nargs, Oid *argtypes);
extern int	RunKept(KeptQuery *query, Datum *values, const char *nulls, long tcount);
extern int	SpiArrayElements(HeapTuple row, TupleDesc desc, int column, Oid type, Datum **items);
extern int	SpiArrayElementsNulls(HeapTuple row, TupleDesc desc, int column, Oid type, Datum **items,
								  bool **nulls);
extern Datum SpiArray(Oid type, Datum *items, bool *nulls, int n);
extern Datum SpiTextArray(const char *const *items, int n);
extern Datum SpiInt8Array(const int64 *items, int n);
extern Datum SpiInt4Array(const int32 *items, int n);
extern int	Int64Cmp(const void *a, const void *b);

#endif
