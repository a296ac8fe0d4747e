/*
 * src/customer.c
 *
 * Finding a customer at the till: loyalty.identify(program, identifier [,
 * kind]) reads a card number, a phone number, an e-mail address or a
 * customer id and answers with the customer, or with why there is none.  An
 * unknown or mistyped card is routine at a till, so it is an answer, not an
 * error.  loyalty.normalize_identifier() gives the stored form of an
 * identifier under a programme's rules.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "customer.h"
#include "direct.h"
#include "jsonbuild.h"
#include "program.h"

PG_FUNCTION_INFO_V1(loyalty_identify);
PG_FUNCTION_INFO_V1(loyalty_normalize_identifier);

/* an identifier in its stored form, to look up */
typedef struct Candidate
{
	IdentKind	kind;
	char	   *value;
} Candidate;


/* Read an identifier kind argument, or fail naming it */
static IdentKind
KindArg(text *arg, bool allow_id)
{
	char	   *name = text_to_cstring(arg);
	IdentKind	kind;

	if (!ParseIdentKind(name, allow_id, &kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown identifier kind \"%s\"", name),
				 errhint(allow_id ? "The kinds are card, phone, email and id." :
						 "The kinds are card, phone and email.")));
	return kind;
}

/* The stored form of value as an identifier of kind, or NULL with *err */
static char *
NormalizeAs(const LoyaltyProgram *program, IdentKind kind, const char *value,
			NormError *err)
{
	switch (kind)
	{
		case IDENT_CARD:
			return NormalizeCard(value, &program->card, err);
		case IDENT_PHONE:
			return NormalizePhone(value, program->phone_country, err);
		case IDENT_EMAIL:
			return NormalizeEmail(value, err);
		case IDENT_CUSTOMER_ID:
			{
				char	   *end;
				long long	id;

				errno = 0;
				id = strtoll(value, &end, 10);
				if (errno != 0 || end == value || *end != '\0' || id <= 0)
				{
					err->sqlerrcode = ERRCODE_INVALID_TEXT_REPRESENTATION;
					err->message = psprintf("invalid customer id \"%s\"", value);
					err->detail = NULL;
					err->hint = NULL;
					return NULL;
				}
				return psprintf("%lld", id);
			}
	}
	pg_unreachable();
}


/* The customer row with this id: true and *found filled (but ident_status) */
static bool
ReadCustomerRow(int64 program_id, int64 id, bool follow_merge, FoundCustomer *found)
{
	DirectKey	key = DirectInt8Key(id);
	DirectScan *s = DirectReadBegin("customer", "customer_pkey", 1, &key);
	bool		isnull;
	Datum		d;

	if (DirectScanNext(s) == NULL || DirectReadInt8(s, "program_id", 0) != program_id)
	{
		DirectReadEnd(s);
		return false;
	}
	d = DirectReadGet(s, "merged_into", &isnull);
	if (follow_merge && !isnull)
	{
		int64		into = DatumGetInt64(d);

		DirectReadEnd(s);
		return ReadCustomerRow(program_id, into, false, found);
	}
	found->id = id;
	found->status = DirectReadText(s, "status");
	found->tier = DirectReadText(s, "tier");
	found->home_city = DirectReadText(s, "home_city");
	d = DirectReadGet(s, "birth_date", &isnull);
	found->birth_date = isnull ? NULL : FormatDate(DatumGetDateADT(d));
	d = DirectReadGet(s, "attributes", &isnull);
	found->attributes = isnull ? NULL : DatumGetJsonbPCopy(d);
	DirectReadEnd(s);
	return true;
}

/*
 * Look one candidate up; true and *found filled if it is bound to a
 * customer.  A customer id of a merged account leads to the account it was
 * merged into.  Reads by index with the statement's snapshot.
 */
static bool
LookupCandidate(const LoyaltyProgram *program, const Candidate *cand,
				MemoryContext resultcxt, FoundCustomer *found)
{
	MemoryContext old = MemoryContextSwitchTo(resultcxt);
	bool		ok;

	if (cand->kind == IDENT_CUSTOMER_ID)
	{
		ok = ReadCustomerRow(program->id, strtoll(cand->value, NULL, 10), true, found);
		found->ident_status = "active";
	}
	else
	{
		DirectKey	keys[3] = {DirectInt8Key(program->id),
			DirectTextKey(IdentKindName(cand->kind)), DirectTextKey(cand->value)};
		DirectScan *s = DirectReadBegin("identifier", "identifier_pkey", 3, keys);
		int64		id = 0;

		ok = DirectScanNext(s) != NULL;
		if (ok)
		{
			found->ident_status = DirectReadText(s, "status");
			id = DirectReadInt8(s, "customer_id", 0);
		}
		DirectReadEnd(s);
		if (ok && !ReadCustomerRow(program->id, id, false, found))
			elog(ERROR, "customer " INT64_FORMAT " of an identifier is missing", id);
	}
	MemoryContextSwitchTo(old);
	return ok;
}

/* The identifier object of an answer */
static void
AddIdentifier(JsonBuild *jb, const char *key, const Candidate *cand,
			  const char *status)
{
	JbBeginObject(jb, key);
	JbText(jb, "kind", IdentKindName(cand->kind));
	JbText(jb, "value", cand->value);
	if (status)
		JbText(jb, "status", status);
	JbEndObject(jb);
}

/*
 * loyalty.identify(program text, identifier text, kind text default null)
 * returns jsonb.  Without a kind, an input with "@" is an e-mail address;
 * otherwise it is tried as a card number, then as a phone number, and the
 * first that is bound to a customer answers.
 */
Datum
loyalty_identify(PG_FUNCTION_ARGS)
{
	char	   *code;
	char	   *input;
	LoyaltyProgram program;
	Candidate	cands[2];
	int			ncands = 0;
	NormError	err;
	const char *invalid = NULL;
	FoundCustomer found;
	int			hit = -1;
	JsonBuild	jb = NULL;
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	input = text_to_cstring(PG_GETARG_TEXT_PP(1));

	SPI_connect();
	LoadProgram(code, &program);

	if (!PG_ARGISNULL(2))
	{
		IdentKind	kind = KindArg(PG_GETARG_TEXT_PP(2), true);
		char	   *value = NormalizeAs(&program, kind, input, &err);

		if (value)
			cands[ncands++] = (Candidate) {kind, value};
		else
			invalid = err.message;
	}
	else if (strchr(input, '@') != NULL)
	{
		char	   *value = NormalizeEmail(input, &err);

		if (value)
			cands[ncands++] = (Candidate) {IDENT_EMAIL, value};
		else
			invalid = err.message;
	}
	else
	{
		NormError	phone_err;
		char	   *card = NormalizeCard(input, &program.card, &err);
		char	   *phone = NormalizePhone(input, program.phone_country, &phone_err);

		if (card)
			cands[ncands++] = (Candidate) {IDENT_CARD, card};
		if (phone)
			cands[ncands++] = (Candidate) {IDENT_PHONE, phone};
		if (ncands == 0)
			invalid = psprintf("%s; %s", err.message, phone_err.message);
	}

	/* candidate values live in the SPI context: copy them out */
	for (int i = 0; i < ncands; i++)
	{
		cands[i].value = MemoryContextStrdup(callcxt, cands[i].value);
		if (LookupCandidate(&program, &cands[i], callcxt, &found))
		{
			hit = i;
			break;
		}
	}
	if (invalid)
		invalid = MemoryContextStrdup(callcxt, invalid);
	SPI_finish();

	JbBeginObject(&jb, NULL);
	JbText(&jb, "program", code);
	if (hit >= 0 && strcmp(found.ident_status, "active") == 0)
	{
		JbBool(&jb, "found", true);
		JbInt(&jb, "customer_id", found.id);
		JbText(&jb, "status", found.status);
		JbText(&jb, "tier", found.tier);
		JbText(&jb, "birth_date", found.birth_date);
		JbText(&jb, "home_city", found.home_city);
		JbJsonb(&jb, "attributes", found.attributes);
		AddIdentifier(&jb, "identifier", &cands[hit], found.ident_status);
		if (cands[hit].kind == IDENT_CUSTOMER_ID &&
			found.id != strtoll(cands[hit].value, NULL, 10))
			JbInt(&jb, "merged_from", strtoll(cands[hit].value, NULL, 10));
	}
	else if (hit >= 0)
	{
		JbBool(&jb, "found", false);
		JbText(&jb, "reason", psprintf("identifier_%s", found.ident_status));
		AddIdentifier(&jb, "identifier", &cands[hit], found.ident_status);
	}
	else if (invalid)
	{
		JbBool(&jb, "found", false);
		JbText(&jb, "reason", "invalid_identifier");
		JbText(&jb, "detail", invalid);
	}
	else
	{
		JbBool(&jb, "found", false);
		JbText(&jb, "reason", "not_found");
		JbBeginArray(&jb, "tried");
		for (int i = 0; i < ncands; i++)
			AddIdentifier(&jb, NULL, &cands[i], NULL);
		JbEndArray(&jb);
	}
	PG_RETURN_JSONB_P(JbFinish(&jb));
}

/*
 * loyalty.normalize_identifier(program text, kind text, value text) returns
 * text: the form in which the programme stores the identifier, or an error
 * saying what is wrong with it.
 */
Datum
loyalty_normalize_identifier(PG_FUNCTION_ARGS)
{
	char	   *code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	IdentKind	kind = KindArg(PG_GETARG_TEXT_PP(1), false);
	char	   *value = text_to_cstring(PG_GETARG_TEXT_PP(2));
	LoyaltyProgram program;
	NormError	err;
	char	   *out;

	SPI_connect();
	LoadProgram(code, &program);
	SPI_finish();

	out = NormalizeAs(&program, kind, value, &err);
	if (out == NULL)
		ReportNormError(&err);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * The customer a receipt names by an identifier of the given kind (card,
 * phone, email or id): true with *id; false with *reason (invalid_identifier,
 * not_found, identifier_blocked, identifier_replaced).  What is found and
 * *reason are allocated in resultcxt.
 */
bool
FindReceiptCustomer(const LoyaltyProgram *program, const char *kind_name, const char *value,
					MemoryContext resultcxt, FoundCustomer *found, char **reason)
{
	IdentKind	kind;
	NormError	err;
	Candidate	cand;

	if (!ParseIdentKind(kind_name, true, &kind))
		elog(ERROR, "unknown identifier kind \"%s\"", kind_name);
	cand.kind = kind;
	cand.value = NormalizeAs(program, kind, value, &err);
	if (cand.value == NULL)
	{
		*reason = MemoryContextStrdup(resultcxt, "invalid_identifier");
		return false;
	}
	if (!LookupCandidate(program, &cand, resultcxt, found))
	{
		*reason = MemoryContextStrdup(resultcxt, "not_found");
		return false;
	}
	if (strcmp(found->ident_status, "active") != 0)
	{
		*reason = MemoryContextStrdup(resultcxt, psprintf("identifier_%s", found->ident_status));
		return false;
	}
	found->ident_kind = NULL;
	found->ident_value = NULL;
	if (kind != IDENT_CUSTOMER_ID)
	{
		found->ident_kind = MemoryContextStrdup(resultcxt, kind_name);
		found->ident_value = MemoryContextStrdup(resultcxt, cand.value);
	}
	return true;
}
