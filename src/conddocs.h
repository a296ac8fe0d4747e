/*
 * src/conddocs.h
 *
 * Rows of condition values read from jsonb documents (src/condition.c):
 * a line, a receipt and a customer, each with an optional fallback document
 * consulted when the first lacks a key (a line's product, for instance).
 */
#ifndef LOYALTY_CONDDOCS_H
#define LOYALTY_CONDDOCS_H

#include "utils/jsonb.h"

#include "condition.h"

typedef struct CondDocs
{
	Jsonb	   *doc[COND_NSCOPES];	/* line, receipt, customer; NULL if none */
	Jsonb	   *fallback[COND_NSCOPES];	/* read where doc lacks a key; NULL if none */
} CondDocs;

extern void loyalty_cond_resolve_row(CondValue *row, const CondDict *dict, int scope,
									 const CondDocs *docs);

#endif
