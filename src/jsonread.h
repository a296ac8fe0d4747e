/*
 * src/jsonread.h
 *
 * Reading the jsonb documents callers send (receipts, benefits): typed
 * fields with errors that name the document and the field, and exact
 * decimals converted to integers of minor units.
 */
#ifndef LOYALTY_JSONREAD_H
#define LOYALTY_JSONREAD_H

#include "utils/jsonb.h"

/* A document being read: its name in messages ("receipt", "benefit") */
typedef struct JsonDoc
{
	const char *name;
} JsonDoc;

/* How an exact decimal may not fit minor units */
typedef enum ScaledResult
{
	SCALED_OK,
	SCALED_TOO_PRECISE,			/* more decimals than the exponent allows */
	SCALED_OUT_OF_RANGE			/* NaN, infinite, or beyond int64 */
} ScaledResult;

extern ScaledResult ScaledFromNumeric(Numeric num, int exponent, int64 *out);
extern Numeric NumericFromScaled(int64 value, int exponent);

extern bool JrKey(JsonbContainer *obj, const char *key, JsonbValue *out);
extern char *JrMemberString(Jsonb *doc, const char *key);
extern bool JrIsObject(const JsonbValue *v);
extern bool JrIsArray(const JsonbValue *v);
extern char *JrString(const JsonDoc *doc, const char *path, const JsonbValue *v,
					  int maxlen);
extern int64 JrScaled(const JsonDoc *doc, const char *path, const JsonbValue *v,
					  int exponent, int64 min, int64 max, const char *unit);
extern int32 JrInt(const JsonDoc *doc, const char *path, const JsonbValue *v,
				   int32 min, int32 max);
extern bool JrBool(const JsonDoc *doc, const char *path, const JsonbValue *v);
extern void JrUnknownKeys(const JsonDoc *doc, const char *path, JsonbContainer *obj,
						  const char *const *known);
extern void JrFail(const JsonDoc *doc, const char *path, const char *must)
			pg_attribute_noreturn();

#endif
