/*
 * src/condition.c
 *
 * The SQL face of loyalty.condition: input, output, send and receive,
 * equality and hashing, matches() and its operator, condition_attributes,
 * condition_explain and match_all.  Here jsonb documents become rows of
 * values; the language itself is in condparse.c, condcode.c, condeval.c and
 * condindex.c.
 *
 * An attribute is read from its document (the line, the receipt or the
 * customer) by its key, then from the document's "attributes" object.  When
 * neither has it, receipt.date, receipt.weekday and receipt.hour come from
 * the receipt's "at" as written (its local wall-clock time), receipt.line_count
 * from its "lines", and customer.age from the customer's "birthday" on the
 * receipt's date.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "condcode.h"
#include "conddocs.h"

PG_FUNCTION_INFO_V1(loyalty_condition_in);
PG_FUNCTION_INFO_V1(loyalty_condition_out);
PG_FUNCTION_INFO_V1(loyalty_condition_recv);
PG_FUNCTION_INFO_V1(loyalty_condition_send);
PG_FUNCTION_INFO_V1(loyalty_condition_cmp);
PG_FUNCTION_INFO_V1(loyalty_condition_eq);
PG_FUNCTION_INFO_V1(loyalty_condition_ne);
PG_FUNCTION_INFO_V1(loyalty_condition_lt);
PG_FUNCTION_INFO_V1(loyalty_condition_le);
PG_FUNCTION_INFO_V1(loyalty_condition_gt);
PG_FUNCTION_INFO_V1(loyalty_condition_ge);
PG_FUNCTION_INFO_V1(loyalty_condition_hash);
PG_FUNCTION_INFO_V1(loyalty_condition_hash_extended);
PG_FUNCTION_INFO_V1(loyalty_matches);
PG_FUNCTION_INFO_V1(loyalty_condition_attributes);
PG_FUNCTION_INFO_V1(loyalty_condition_explain);
PG_FUNCTION_INFO_V1(loyalty_match_all);

/* Binary format: this version byte, then the canonical text */
#define COND_SEND_VERSION 1

static const char *const weekday_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};


/* condition_in(cstring): parse and compile */
Datum
loyalty_condition_in(PG_FUNCTION_ARGS)
{
	char	   *text = PG_GETARG_CSTRING(0);

	PG_RETURN_POINTER(loyalty_cond_parse(text, strlen(text)));
}

/* condition_out: the canonical text */
Datum
loyalty_condition_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(loyalty_cond_print(PG_GETARG_CONDITION_P(0)));
}

/* condition_recv: a version byte and the text, parsed as input parses it */
Datum
loyalty_condition_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version;
	char	   *text;
	int			nbytes;

	if (buf->cursor >= buf->len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("binary loyalty.condition is empty"),
				 errdetail("It starts with a version byte, %d.", COND_SEND_VERSION)));
	version = pq_getmsgbyte(buf);
	if (version != COND_SEND_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported loyalty.condition binary format version %d", version),
				 errdetail("This build reads version %d.", COND_SEND_VERSION)));
	text = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);
	PG_RETURN_POINTER(loyalty_cond_parse(text, nbytes));
}

/* condition_send: a version byte and the canonical text */
Datum
loyalty_condition_send(PG_FUNCTION_ARGS)
{
	char	   *text = loyalty_cond_print(PG_GETARG_CONDITION_P(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, COND_SEND_VERSION);
	pq_sendtext(&buf, text, strlen(text));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * Equal canonical forms compile to equal bytes; other conditions are ordered
 * by their bytes, an order with no meaning beyond being total and stable.
 */
static int
condition_compare(FunctionCallInfo fcinfo)
{
	Condition  *a = PG_GETARG_CONDITION_P(0);
	Condition  *b = PG_GETARG_CONDITION_P(1);
	int			r = cond_strcmp((const char *) a, VARSIZE(a), (const char *) b, VARSIZE(b));

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return r;
}

Datum
loyalty_condition_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(condition_compare(fcinfo));
}

Datum
loyalty_condition_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(condition_compare(fcinfo) == 0);
}

Datum
loyalty_condition_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(condition_compare(fcinfo) != 0);
}

Datum
loyalty_condition_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(condition_compare(fcinfo) < 0);
}

Datum
loyalty_condition_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(condition_compare(fcinfo) <= 0);
}

Datum
loyalty_condition_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(condition_compare(fcinfo) > 0);
}

Datum
loyalty_condition_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(condition_compare(fcinfo) >= 0);
}

/* Hash of the compiled bytes, for hash joins and grouping */
Datum
loyalty_condition_hash(PG_FUNCTION_ARGS)
{
	Condition  *c = PG_GETARG_CONDITION_P(0);
	Datum		h = hash_any((unsigned char *) c + VARHDRSZ, VARSIZE(c) - VARHDRSZ);

	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_DATUM(h);
}

Datum
loyalty_condition_hash_extended(PG_FUNCTION_ARGS)
{
	Condition  *c = PG_GETARG_CONDITION_P(0);
	Datum		h = hash_any_extended((unsigned char *) c + VARHDRSZ,
									  VARSIZE(c) - VARHDRSZ, PG_GETARG_INT64(1));

	PG_FREE_IF_COPY(c, 0);
	PG_RETURN_DATUM(h);
}

/* Look a key up in doc, then in doc's "attributes" object */
static bool
find_in(Jsonb *doc, const char *name, int len, JsonbValue *out)
{
	JsonbValue	attrs;

	if (doc == NULL || !JB_ROOT_IS_OBJECT(doc))
		return false;
	if (getKeyJsonValueFromContainer(&doc->root, name, len, out))
		return true;
	if (!getKeyJsonValueFromContainer(&doc->root, "attributes", 10, &attrs) ||
		attrs.type != jbvBinary || !JsonContainerIsObject(attrs.val.binary.data))
		return false;
	return getKeyJsonValueFromContainer(attrs.val.binary.data, name, len, out) != NULL;
}

/* Look a key up in a scope's document, then in its fallback document */
static bool
find_key(const CondDocs *docs, CondScope scope, const char *name, int len, JsonbValue *out)
{
	return find_in(docs->doc[scope], name, len, out) ||
		find_in(docs->fallback[scope], name, len, out);
}

/* Make v what a jsonb value holds */
static void
set_jsonb_value(CondValue *v, JsonbValue *jv)
{
	memset(v, 0, sizeof(*v));
	switch (jv->type)
	{
		case jbvNull:
			v->kind = COND_MISSING;
			break;
		case jbvString:
			loyalty_cond_set_text(v, jv->val.string.val, jv->val.string.len, true);
			break;
		case jbvNumeric:
			{
				char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
																	NumericGetDatum(jv->val.numeric)));

				loyalty_cond_set_text(v, s, strlen(s), false);
				break;
			}
		case jbvBool:
			loyalty_cond_set_text(v, jv->val.boolean ? "true" : "false",
								  jv->val.boolean ? 4 : 5, false);
			break;
		case jbvBinary:
			if (JsonContainerIsArray(jv->val.binary.data) &&
				!JsonContainerIsScalar(jv->val.binary.data))
			{
				JsonbIterator *it = JsonbIteratorInit(jv->val.binary.data);
				CondValue  *elems = palloc((JsonContainerSize(jv->val.binary.data) + 1) * sizeof(CondValue));
				JsonbValue	e;
				JsonbIteratorToken tok;
				int			n = 0;

				while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
					if (tok == WJB_ELEM)
						set_jsonb_value(&elems[n++], &e);
				v->kind = COND_ARRAY;
				v->elems = elems;
				v->nelems = n;
			}
			else
				v->kind = COND_OTHER;
			break;
		default:
			v->kind = COND_OTHER;
	}
}

/* Read YYYY-MM-DD at the start of a jsonb string */
static bool
read_ymd(const JsonbValue *jv, int *y, int *m, int *d)
{
	return jv->type == jbvString && jv->val.string.len >= 10 &&
		cond_read_date(jv->val.string.val, 10, y, m, d);
}

/*
 * The receipt's date: its "date" (exactly YYYY-MM-DD), else the first ten
 * characters of its "at".  What weekday and age derive from.
 */
static bool
receipt_date(const CondDocs *docs, int *y, int *m, int *d)
{
	JsonbValue	jv;

	if (find_key(docs, COND_RECEIPT, "date", 4, &jv))
		return jv.type == jbvString && jv.val.string.len == 10 && read_ymd(&jv, y, m, d);
	return find_key(docs, COND_RECEIPT, "at", 2, &jv) && read_ymd(&jv, y, m, d);
}

/* Values that are derived when the documents do not give them */
static void
derive_value(CondValue *v, CondScope scope, const char *name, int len, const CondDocs *docs)
{
	JsonbValue	jv;
	int			y,
				m,
				d;

#define NAME_IS(s) (len == (int) strlen(s) && memcmp(name, s, len) == 0)
	if (scope == COND_RECEIPT && NAME_IS("date"))
	{
		/* only reached when the receipt gives no "date" */
		if (find_key(docs, COND_RECEIPT, "at", 2, &jv) && read_ymd(&jv, &y, &m, &d))
			loyalty_cond_set_text(v, jv.val.string.val, 10, true);
	}
	else if (scope == COND_RECEIPT && NAME_IS("weekday"))
	{
		if (receipt_date(docs, &y, &m, &d))
			loyalty_cond_set_text(v, weekday_names[cond_weekday(y, m, d)], 3, true);
	}
	else if (scope == COND_RECEIPT && NAME_IS("hour"))
	{
		if (find_key(docs, COND_RECEIPT, "at", 2, &jv) && read_ymd(&jv, &y, &m, &d) &&
			jv.val.string.len >= 13 &&
			(jv.val.string.val[10] == 'T' || jv.val.string.val[10] == ' '))
		{
			const char *h = jv.val.string.val + 11;
			int			hour = (h[0] - '0') * 10 + (h[1] - '0');

			if (h[0] >= '0' && h[0] <= '9' && h[1] >= '0' && h[1] <= '9' && hour <= 23)
			{
				char	   *s = psprintf("%d", hour);

				loyalty_cond_set_text(v, s, strlen(s), false);
			}
		}
	}
	else if (scope == COND_RECEIPT && NAME_IS("line_count"))
	{
		if (find_key(docs, COND_RECEIPT, "lines", 5, &jv) && jv.type == jbvBinary &&
			JsonContainerIsArray(jv.val.binary.data))
		{
			char	   *s = psprintf("%u", JsonContainerSize(jv.val.binary.data));

			loyalty_cond_set_text(v, s, strlen(s), false);
		}
	}
	else if (scope == COND_CUSTOMER && NAME_IS("age"))
	{
		int			by,
					bm,
					bd;
		JsonbValue	birthday;

		if (find_key(docs, COND_CUSTOMER, "birthday", 8, &birthday) &&
			birthday.type == jbvString && birthday.val.string.len == 10 &&
			read_ymd(&birthday, &by, &bm, &bd) && receipt_date(docs, &y, &m, &d))
		{
			int			age = y - by - ((m < bm || (m == bm && d < bd)) ? 1 : 0);
			char	   *s = psprintf("%d", age);

			if (age >= 0)
				loyalty_cond_set_text(v, s, strlen(s), false);
		}
	}
#undef NAME_IS
}

/* Fill one attribute's value from the documents */
static void
resolve_value(CondValue *v, CondScope scope, const char *name, int len, const CondDocs *docs)
{
	JsonbValue	jv;

	memset(v, 0, sizeof(*v));
	if (find_key(docs, scope, name, len, &jv))
		set_jsonb_value(v, &jv);
	else
		derive_value(v, scope, name, len, docs);
}

/* Fill row[] for every id of dict in one scope (or all, scope < 0) */
void
loyalty_cond_resolve_row(CondValue *row, const CondDict *dict, int scope, const CondDocs *docs)
{
	for (int id = 0; id < loyalty_cond_dict_size(dict); id++)
	{
		CondScope	s;
		const char *name;
		int			len;

		loyalty_cond_dict_name(dict, id, &s, &name, &len);
		if (scope < 0 || (int) s == scope)
			resolve_value(&row[id], s, name, len, docs);
	}
}

/* A program compiled once per distinct condition of a call site */
typedef struct ProgramCache
{
	MemoryContext cxt;
	Condition  *cond;
	CondDict   *dict;
	CondProgram *program;
} ProgramCache;

static ProgramCache *
cached_program(FunctionCallInfo fcinfo, Condition *c)
{
	ProgramCache *cache = fcinfo->flinfo->fn_extra;
	MemoryContext old;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ProgramCache));
		cache->cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "loyalty condition cache",
										   ALLOCSET_SMALL_SIZES);
		fcinfo->flinfo->fn_extra = cache;
	}
	else if (cache->cond && VARSIZE(cache->cond) == VARSIZE(c) &&
			 memcmp(cache->cond, c, VARSIZE(c)) == 0)
		return cache;
	MemoryContextReset(cache->cxt);
	cache->cond = NULL;
	old = MemoryContextSwitchTo(cache->cxt);
	cache->dict = loyalty_cond_dict_create();
	cache->program = loyalty_cond_load(c, cache->dict);
	cache->cond = palloc(VARSIZE(c));
	memcpy(cache->cond, c, VARSIZE(c));
	MemoryContextSwitchTo(old);
	return cache;
}

/* The documents of a call: line, then optional receipt and customer */
static void
call_docs(FunctionCallInfo fcinfo, int first, CondDocs *docs)
{
	memset(docs, 0, sizeof(*docs));
	for (int s = 0; s < COND_NSCOPES; s++)
		docs->doc[s] = (PG_NARGS() > first + s && !PG_ARGISNULL(first + s))
			? PG_GETARG_JSONB_P(first + s) : NULL;
}

/* matches(condition, line [, receipt, customer]) */
Datum
loyalty_matches(PG_FUNCTION_ARGS)
{
	Condition  *c = PG_GETARG_CONDITION_P(0);
	ProgramCache *cache = cached_program(fcinfo, c);
	CondDocs	docs;
	CondValue  *row;

	call_docs(fcinfo, 1, &docs);
	row = palloc((loyalty_cond_dict_size(cache->dict) + 1) * sizeof(CondValue));
	loyalty_cond_resolve_row(row, cache->dict, -1, &docs);
	PG_RETURN_BOOL(loyalty_cond_eval(cache->program, row));
}

static int
text_qsort_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* condition_attributes(condition): the names it reads, sorted */
Datum
loyalty_condition_attributes(PG_FUNCTION_ARGS)
{
	Condition  *c = PG_GETARG_CONDITION_P(0);
	CondAttr   *attrs;
	int			n;
	char	  **names;
	Datum	   *elems;

	loyalty_cond_verify(c);
	n = loyalty_cond_attrs(c, &attrs);
	names = palloc((n + 1) * sizeof(char *));
	elems = palloc((n + 1) * sizeof(Datum));
	for (int i = 0; i < n; i++)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		loyalty_cond_attr_name(&buf, attrs[i].scope, attrs[i].name, attrs[i].len);
		names[i] = buf.data;
	}
	qsort(names, n, sizeof(char *), text_qsort_cmp);
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* A value as jsonb, for explain: the document's own, or the derived one */
static Datum
value_jsonb(const CondValue *v, CondScope scope, const char *name, int len,
			const CondDocs *docs, bool *isnull)
{
	JsonbValue	jv;

	*isnull = false;
	if (find_key(docs, scope, name, len, &jv) && jv.type != jbvNull)
		return PointerGetDatum(JsonbValueToJsonb(&jv));
	if (v->kind != COND_SCALAR)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (v->is_string)
	{
		jv.type = jbvString;
		jv.val.string.val = (char *) v->str;
		jv.val.string.len = v->len;
	}
	else
	{
		jv.type = jbvNumeric;
		jv.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
															 CStringGetDatum(pnstrdup(v->str, v->len)),
															 ObjectIdGetDatum(InvalidOid),
															 Int32GetDatum(-1)));
	}
	return PointerGetDatum(JsonbValueToJsonb(&jv));
}

typedef struct ExplainOut
{
	ReturnSetInfo *rsinfo;
	const CondDict *dict;
	const CondValue *row;
	const CondDocs *docs;
} ExplainOut;

static void
explain_row(void *arg, int depth, const char *clause, int attr, bool result)
{
	ExplainOut *out = arg;
	Datum		values[4];
	bool		nulls[4] = {false, false, true, false};

	values[0] = Int32GetDatum(depth);
	values[1] = CStringGetTextDatum(clause);
	if (attr >= 0)
	{
		CondScope	scope;
		const char *name;
		int			len;

		loyalty_cond_dict_name(out->dict, attr, &scope, &name, &len);
		values[2] = value_jsonb(&out->row[attr], scope, name, len, out->docs, &nulls[2]);
	}
	values[3] = BoolGetDatum(result);
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

/* condition_explain(condition, line, receipt, customer): every clause with its result */
Datum
loyalty_condition_explain(PG_FUNCTION_ARGS)
{
	Condition  *c = PG_GETARG_CONDITION_P(0);
	CondDict   *dict = loyalty_cond_dict_create();
	CondProgram *program = loyalty_cond_load(c, dict);
	CondDocs	docs;
	CondValue  *row;
	ExplainOut	out;

	call_docs(fcinfo, 1, &docs);
	row = palloc((loyalty_cond_dict_size(dict) + 1) * sizeof(CondValue));
	loyalty_cond_resolve_row(row, dict, -1, &docs);
	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	out.dict = dict;
	out.row = row;
	out.docs = &docs;
	loyalty_cond_explain(program, row, explain_row, &out);
	return (Datum) 0;
}

/* match_all(conditions[], lines, receipt, customer): (line, condition) pairs that match */
Datum
loyalty_match_all(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Jsonb	   *lines = PG_GETARG_JSONB_P(1);
	ReturnSetInfo *rsinfo;
	CondDict   *dict = loyalty_cond_dict_create();
	CondProgram **programs;
	CondIndex  *index;
	CondDocs	docs;
	CondValue  *row;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int		   *matched;
	JsonbIterator *it;
	JsonbValue	line;
	JsonbIteratorToken tok;
	MemoryContext linecxt;
	int			lineno = 0;

	if (!JB_ROOT_IS_ARRAY(lines) || JB_ROOT_IS_SCALAR(lines))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lines must be a jsonb array of line objects")));
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("conditions must be a one-dimensional array")));
	deconstruct_array(arr, ARR_ELEMTYPE(arr), -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	programs = palloc((n + 1) * sizeof(CondProgram *));
	for (int i = 0; i < n; i++)
		programs[i] = nulls[i] ? NULL : loyalty_cond_load(DatumGetConditionP(elems[i]), dict);
	index = loyalty_cond_index_build(programs, n, dict);
	matched = palloc((n + 1) * sizeof(int));

	call_docs(fcinfo, 1, &docs);
	docs.doc[COND_LINE] = NULL;
	row = palloc0((loyalty_cond_dict_size(dict) + 1) * sizeof(CondValue));
	loyalty_cond_resolve_row(row, dict, COND_RECEIPT, &docs);
	loyalty_cond_resolve_row(row, dict, COND_CUSTOMER, &docs);
	loyalty_cond_index_receipt(index, row);

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	linecxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty match_all line",
									ALLOCSET_DEFAULT_SIZES);
	it = JsonbIteratorInit(&lines->root);
	while ((tok = JsonbIteratorNext(&it, &line, true)) != WJB_DONE)
	{
		MemoryContext old;
		int			count;

		if (tok != WJB_ELEM)
			continue;
		lineno++;
		if (line.type != jbvBinary || !JsonContainerIsObject(line.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("line %d is not a jsonb object", lineno)));
		/* what one line resolves to lives until the next line */
		MemoryContextReset(linecxt);
		old = MemoryContextSwitchTo(linecxt);
		docs.doc[COND_LINE] = JsonbValueToJsonb(&line);
		loyalty_cond_resolve_row(row, dict, COND_LINE, &docs);
		count = loyalty_cond_index_line(index, row, matched);
		MemoryContextSwitchTo(old);
		for (int i = 0; i < count; i++)
		{
			Datum		values[2] = {Int32GetDatum(lineno), Int32GetDatum(matched[i] + 1)};
			bool		isnull[2] = {false, false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
		}
	}
	MemoryContextDelete(linecxt);
	return (Datum) 0;
}
