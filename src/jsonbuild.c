/*
 * src/jsonbuild.c
 *
 * Small helpers over pushJsonbValue.  A NULL key adds an array element;
 * otherwise a key and its value are added to the open object.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/numeric.h"

#include "jsonbuild.h"

static void
Key(JsonBuild *jb, const char *key)
{
	JsonbValue	k;

	if (key == NULL)
		return;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(jb, WJB_KEY, &k);
}

static void
Value(JsonBuild *jb, const char *key, JsonbValue *v)
{
	Key(jb, key);
	pushJsonbValue(jb, key ? WJB_VALUE : WJB_ELEM, v);
}

/* Open an object: the result itself, a keyed member, or an array element */
void
JbBeginObject(JsonBuild *jb, const char *key)
{
	Key(jb, key);
	pushJsonbValue(jb, WJB_BEGIN_OBJECT, NULL);
}

void
JbEndObject(JsonBuild *jb)
{
	pushJsonbValue(jb, WJB_END_OBJECT, NULL);
}

void
JbBeginArray(JsonBuild *jb, const char *key)
{
	Key(jb, key);
	pushJsonbValue(jb, WJB_BEGIN_ARRAY, NULL);
}

void
JbEndArray(JsonBuild *jb)
{
	pushJsonbValue(jb, WJB_END_ARRAY, NULL);
}

/* A string member, left out when the value is NULL (as jsonb_strip_nulls would) */
void
JbTextIf(JsonBuild *jb, const char *key, const char *value)
{
	if (value)
		JbText(jb, key, value);
}

/* A string member; a NULL value gives JSON null */
void
JbText(JsonBuild *jb, const char *key, const char *value)
{
	JsonbValue	v;

	if (value == NULL)
	{
		JbNull(jb, key);
		return;
	}
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	Value(jb, key, &v);
}

void
JbInt(JsonBuild *jb, const char *key, int64 value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	Value(jb, key, &v);
}

/* A number member */
void
JbNumeric(JsonBuild *jb, const char *key, Numeric value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = value;
	Value(jb, key, &v);
}

void
JbBool(JsonBuild *jb, const char *key, bool value)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = value;
	Value(jb, key, &v);
}

void
JbNull(JsonBuild *jb, const char *key)
{
	JsonbValue	v;

	v.type = jbvNull;
	Value(jb, key, &v);
}

/* Embed a whole jsonb value; NULL gives JSON null */
void
JbJsonb(JsonBuild *jb, const char *key, Jsonb *value)
{
	JsonbValue	v;

	if (value == NULL)
	{
		JbNull(jb, key);
		return;
	}
	if (JB_ROOT_IS_SCALAR(value))
	{
		JsonbValue	scalar;

		if (!JsonbExtractScalar(&value->root, &scalar))
			elog(ERROR, "jsonb scalar expected");
		Value(jb, key, &scalar);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &value->root;
	v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	Value(jb, key, &v);
}

/* Close the outermost object and return the jsonb */
Jsonb *
JbFinish(JsonBuild *jb)
{
	JsonbValue *result = pushJsonbValue(jb, WJB_END_OBJECT, NULL);

	return JsonbValueToJsonb(result);
}

/* Close the array begun at the top (key NULL) and return it */
Jsonb *
JbFinishArray(JsonBuild *jb)
{
	JsonbValue *result = pushJsonbValue(jb, WJB_END_ARRAY, NULL);

	return JsonbValueToJsonb(result);
}

/* A copy of a jsonb value in cxt (to outlive the context it was built in) */
Jsonb *
JbCopy(MemoryContext cxt, const Jsonb *j)
{
	Jsonb	   *copy = MemoryContextAlloc(cxt, VARSIZE(j));

	memcpy(copy, j, VARSIZE(j));
	return copy;
}

/* A date as YYYY-MM-DD (as to_char would print it) */
char *
FormatDate(DateADT date)
{
	int			y,
				m,
				d;

	if (DATE_NOT_FINITE(date))
		return pstrdup(DATE_IS_NOBEGIN(date) ? "-infinity" : "infinity");
	j2date(date + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	return y > 0 ? psprintf("%04d-%02d-%02d", y, m, d) : psprintf("%04d-%02d-%02d BC", 1 - y, m, d);
}

/* A timestamp as to_jsonb writes it */
void
JbTimestamp(JsonBuild *jb, const char *key, TimestampTz t)
{
	JbText(jb, key, JsonEncodeDateTime(NULL, TimestampTzGetDatum(t), TIMESTAMPTZOID, NULL));
}
