/*
 * src/jsonread.c
 *
 * Typed fields of caller documents.  Every failure is an error with a
 * specific SQLSTATE whose message names the document and the field:
 *     receipt field "lines[2].qty" must be a number greater than 0
 */
#include "postgres.h"

#include "common/int.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "jsonread.h"

/*
 * The exact decimal num as an integer of 10^-exponent units.  Trailing zero
 * decimals are allowed; any other decimal beyond the exponent is not.
 */
ScaledResult
ScaledFromNumeric(Numeric num, int exponent, int64 *out)
{
	char	   *s;
	const char *p;
	bool		negative = false;
	int64		value = 0;
	int			decimals = 0;

	if (numeric_is_nan(num) || numeric_is_inf(num))
		return SCALED_OUT_OF_RANGE;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	p = s;
	if (*p == '-')
	{
		negative = true;
		p++;
	}
	for (; *p >= '0' && *p <= '9'; p++)
		if (pg_mul_s64_overflow(value, 10, &value) ||
			pg_add_s64_overflow(value, *p - '0', &value))
			return SCALED_OUT_OF_RANGE;
	if (*p == '.')
	{
		const char *frac = ++p;
		const char *end = frac + strlen(frac);

		while (end > frac && end[-1] == '0')
			end--;
		if (end - frac > exponent)
			return SCALED_TOO_PRECISE;
		for (; p < end; p++, decimals++)
			if (pg_mul_s64_overflow(value, 10, &value) ||
				pg_add_s64_overflow(value, *p - '0', &value))
				return SCALED_OUT_OF_RANGE;
	}
	for (; decimals < exponent; decimals++)
		if (pg_mul_s64_overflow(value, 10, &value))
			return SCALED_OUT_OF_RANGE;
	*out = negative ? -value : value;
	return SCALED_OK;
}

/* value * 10^-exponent as a numeric showing exactly exponent decimals */
Numeric
NumericFromScaled(int64 value, int exponent)
{
	return int64_div_fast_to_numeric(value, exponent);
}

/* The member key of an object container, if present */
bool
JrKey(JsonbContainer *obj, const char *key, JsonbValue *out)
{
	return obj != NULL &&
		getKeyJsonValueFromContainer(obj, key, strlen(key), out) != NULL;
}

/*
 * The string member key of an object document, or NULL (no document, no
 * such member, or one that is not a string)
 */
char *
JrMemberString(Jsonb *doc, const char *key)
{
	JsonbValue	v;

	if (doc == NULL || !JrKey(&doc->root, key, &v) || v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

bool
JrIsObject(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

bool
JrIsArray(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data);
}

/* Fail: the field is not what it must be */
void
JrFail(const JsonDoc *doc, const char *path, const char *must)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s field \"%s\" must be %s", doc->name, path, must)));
}

/* A non-empty string of at most maxlen bytes */
char *
JrString(const JsonDoc *doc, const char *path, const JsonbValue *v, int maxlen)
{
	if (v->type != jbvString || v->val.string.len == 0)
		JrFail(doc, path, "a non-empty string");
	if (v->val.string.len > maxlen)
		JrFail(doc, path, psprintf("a string of at most %d bytes", maxlen));
	if (memchr(v->val.string.val, '\0', v->val.string.len) != NULL)
		JrFail(doc, path, "a string without zero bytes");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A JSON number with at most exponent decimals, as an integer of
 * 10^-exponent units within [min, max].  unit names the decimals in the
 * message ("kopecks" is not known here: "2 decimals").
 */
int64
JrScaled(const JsonDoc *doc, const char *path, const JsonbValue *v,
		 int exponent, int64 min, int64 max, const char *unit)
{
	int64		value;

	if (v->type != jbvNumeric)
		JrFail(doc, path, "a number");
	switch (ScaledFromNumeric(v->val.numeric, exponent, &value))
	{
		case SCALED_OK:
			break;
		case SCALED_TOO_PRECISE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s field \"%s\" has more than %d decimal%s",
							doc->name, path, exponent, exponent == 1 ? "" : "s"),
					 unit ? errdetail("%s", unit) : 0));
			break;
		case SCALED_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("%s field \"%s\" is out of range", doc->name, path)));
	}
	if (value < min || value > max)
	{
		char	   *bound = DatumGetCString(DirectFunctionCall1(numeric_out,
																NumericGetDatum(NumericFromScaled(value < min ? min : max, exponent))));

		if (value < min && min == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("%s field \"%s\" must not be negative", doc->name, path)));
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s field \"%s\" must be at %s %s", doc->name, path,
						value < min ? "least" : "most", bound)));
	}
	return value;
}

/* A whole JSON number within [min, max] */
int32
JrInt(const JsonDoc *doc, const char *path, const JsonbValue *v, int32 min, int32 max)
{
	int64		value;

	if (v->type != jbvNumeric)
		JrFail(doc, path, "a number");
	if (ScaledFromNumeric(v->val.numeric, 0, &value) != SCALED_OK ||
		value < min || value > max)
		JrFail(doc, path, psprintf("a whole number from %d to %d", min, max));
	return (int32) value;
}

bool
JrBool(const JsonDoc *doc, const char *path, const JsonbValue *v)
{
	if (v->type != jbvBool)
		JrFail(doc, path, "true or false");
	return v->val.boolean;
}

/* Refuse a member whose key is not in known (a NULL-terminated list) */
void
JrUnknownKeys(const JsonDoc *doc, const char *path, JsonbContainer *obj,
			  const char *const *known)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		found = false;

		if (tok != WJB_KEY)
			continue;
		for (const char *const *k = known; *k; k++)
			if (strlen(*k) == (size_t) v.val.string.len &&
				memcmp(*k, v.val.string.val, v.val.string.len) == 0)
				found = true;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s%s%s has an unknown field \"%.*s\"", doc->name,
							path ? " field " : "", path ? psprintf("\"%s\"", path) : "",
							v.val.string.len, v.val.string.val)));
	}
}
