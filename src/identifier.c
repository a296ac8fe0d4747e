/*
 * src/identifier.c
 *
 * Normalisation of customer identifiers.  A phone number is written in many
 * ways ("8 (916) 123-45-67", "+7 916 123 45 67", "79161234567") and must be
 * stored once, in E.164 ("+79161234567"), so that every way finds the same
 * customer.  Card numbers keep their digits and are checked against the
 * programme's length and Luhn rule.  E-mail addresses are trimmed and
 * lower-cased.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "identifier.h"

/*
 * Numbering plans of the countries the programmes we know run in.  A number
 * written with "+" or an international prefix and a calling code not listed
 * here is still accepted when its length is plausible for E.164.
 */
static const PhoneCountry phone_countries[] = {
	/* iso, calling code, trunk prefix, international prefix, NSN digits */
	{"RU", "7", "8", "810", 10, 10},
	{"KZ", "7", "8", "810", 10, 10},
	{"BY", "375", "80", "810", 9, 9},
	{"UA", "380", "0", "", 9, 9},
	{"AM", "374", "0", "", 8, 8},
	{"AZ", "994", "0", "", 9, 9},
	{"GE", "995", "0", "", 9, 9},
	{"KG", "996", "0", "", 9, 9},
	{"US", "1", "1", "011", 10, 10},
	{"CA", "1", "1", "011", 10, 10},
	{"GB", "44", "0", "", 9, 10},
	{"DE", "49", "0", "", 6, 13},
	{"FR", "33", "0", "", 9, 9},
	{"IT", "39", "", "", 6, 11},
	{"ES", "34", "", "", 9, 9},
	{"NL", "31", "0", "", 9, 9},
	{"PL", "48", "", "", 9, 9},
	{"TR", "90", "0", "", 10, 10},
	{"AE", "971", "0", "", 8, 9},
	{"IL", "972", "0", "", 8, 9},
	{"IN", "91", "0", "", 10, 10},
	{"CN", "86", "0", "", 8, 11},
	{"JP", "81", "0", "010", 9, 10},
	{"AU", "61", "0", "0011", 9, 9},
	{"BR", "55", "0", "", 10, 11},
	{"MX", "52", "", "", 10, 10},
};

#define E164_MIN_DIGITS 8

static const char *const kind_names[] = {"card", "phone", "email", "id"};

PG_FUNCTION_INFO_V1(loyalty_normalize_phone);
PG_FUNCTION_INFO_V1(loyalty_normalize_card);
PG_FUNCTION_INFO_V1(loyalty_normalize_email);
PG_FUNCTION_INFO_V1(loyalty_phone_countries);
PG_FUNCTION_INFO_V1(loyalty_phone_country_valid);

/* Fill *err and return NULL, for the normalisers' failure paths */
static char *
Refuse(NormError *err, int sqlerrcode, char *message, char *detail, char *hint)
{
	err->sqlerrcode = sqlerrcode;
	err->message = message;
	err->detail = detail;
	err->hint = hint;
	return NULL;
}

/* The input as it may be quoted in a message: at most 64 characters */
static char *
Quoted(const char *in)
{
	int			len = strlen(in);
	int			clip = pg_mbcliplen(in, len, IDENTIFIER_MAX_INPUT);

	if (clip < len)
		return psprintf("%.*s...", clip, in);
	return pstrdup(in);
}

/* Describe the character at byte offset pos of in, with its 1-based position */
static char *
UnexpectedChar(const char *in, int pos)
{
	return psprintf("Unexpected character \"%.*s\" at position %d.",
					pg_mblen(in + pos), in + pos,
					pg_mbstrlen_with_len(in, pos) + 1);
}

static bool
StartsWith(const char *s, const char *prefix)
{
	return prefix[0] != '\0' && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The country of an ISO 3166-1 alpha-2 code (any case), or NULL */
const PhoneCountry *
LookupPhoneCountry(const char *iso)
{
	for (int i = 0; i < (int) lengthof(phone_countries); i++)
		if (pg_strcasecmp(phone_countries[i].iso, iso) == 0)
			return &phone_countries[i];
	return NULL;
}

/* The listed country whose calling code starts digits, home first */
static const PhoneCountry *
CountryOfDigits(const char *digits, const PhoneCountry *home)
{
	if (home && StartsWith(digits, home->cc))
		return home;
	for (int len = 3; len >= 1; len--)
		for (int i = 0; i < (int) lengthof(phone_countries); i++)
			if ((int) strlen(phone_countries[i].cc) == len &&
				strncmp(digits, phone_countries[i].cc, len) == 0)
				return &phone_countries[i];
	return NULL;
}

static bool
NsnLengthFits(const PhoneCountry *c, int len)
{
	return len >= c->nsn_min && len <= c->nsn_max;
}

/*
 * Normalise a phone number to E.164 ("+" and up to 15 digits).  Spaces,
 * hyphens, dots, slashes and parentheses are ignored.  Without "+", the
 * number is read in the home country: with its trunk prefix, with its calling
 * code but no "+", or as the bare national number, whichever fits the
 * country's length; "00" or the country's international prefix make it
 * international.  Returns a palloc'd string, or NULL with *err filled.
 */
char *
NormalizePhone(const char *in, const PhoneCountry *home, NormError *err)
{
	char		digits[IDENTIFIER_MAX_INPUT + 1];
	int			ndigits = 0;
	bool		plus = false;
	const char *d;
	int			dlen;
	int			inlen = strlen(in);

	if (pg_mbstrlen_with_len(in, inlen) > IDENTIFIER_MAX_INPUT)
		return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
					  psprintf("phone number \"%s\" is too long", Quoted(in)),
					  psprintf("It has %d characters; at most %d are accepted.",
							   pg_mbstrlen_with_len(in, inlen), IDENTIFIER_MAX_INPUT),
					  NULL);

	for (int i = 0; i < inlen; i++)
	{
		char		c = in[i];

		if (c >= '0' && c <= '9')
			digits[ndigits++] = c;
		else if (c == '+' && ndigits == 0 && !plus)
			plus = true;
		else if (c == '+')
			return Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION,
						  psprintf("invalid phone number \"%s\"", Quoted(in)),
						  psprintf("\"+\" may appear only once, before the digits, not at position %d.",
								   pg_mbstrlen_with_len(in, i) + 1),
						  NULL);
		else if (!(c == ' ' || c == '\t' || c == '-' || c == '(' || c == ')' ||
				   c == '.' || c == '/'))
			return Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION,
						  psprintf("invalid phone number \"%s\"", Quoted(in)),
						  UnexpectedChar(in, i),
						  pstrdup("A phone number has digits, and may have spaces, hyphens, dots, parentheses and a leading \"+\"."));
	}
	digits[ndigits] = '\0';

	if (ndigits == 0)
		return Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION,
					  psprintf("invalid phone number \"%s\"", Quoted(in)),
					  pstrdup("It has no digits."), NULL);

	d = digits;
	if (!plus && strncmp(d, "00", 2) == 0)
	{
		d += 2;
		plus = true;
	}
	else if (!plus && home && StartsWith(d, home->intl))
	{
		d += strlen(home->intl);
		plus = true;
	}
	dlen = strlen(d);

	if (plus)
	{
		const PhoneCountry *c;

		if (dlen == 0 || d[0] == '0')
			return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
						  psprintf("phone number \"%s\" has no valid country code", Quoted(in)),
						  pstrdup("A country calling code never starts with 0."),
						  NULL);
		c = CountryOfDigits(d, home);
		if (c != NULL)
		{
			int			cclen = strlen(c->cc);
			const char *nsn = d + cclen;
			int			nlen = dlen - cclen;
			int			tlen = strlen(c->trunk);

			/* "+44 (0)20 ...": a trunk prefix written after the calling code */
			if (!NsnLengthFits(c, nlen) && StartsWith(nsn, c->trunk) &&
				NsnLengthFits(c, nlen - tlen))
				return psprintf("+%s%s", c->cc, nsn + tlen);
			if (!NsnLengthFits(c, nlen))
				return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
							  psprintf("phone number \"%s\" has the wrong length", Quoted(in)),
							  c->nsn_min == c->nsn_max ?
							  psprintf("Numbers of %s (+%s) have %d digits after the country code; this one has %d.",
									   c->iso, c->cc, c->nsn_min, nlen) :
							  psprintf("Numbers of %s (+%s) have %d to %d digits after the country code; this one has %d.",
									   c->iso, c->cc, c->nsn_min, c->nsn_max, nlen),
							  NULL);
		}
		else if (dlen < E164_MIN_DIGITS || dlen > E164_MAX_DIGITS)
			return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
						  psprintf("phone number \"%s\" has the wrong length", Quoted(in)),
						  psprintf("An international number has %d to %d digits; this one has %d.",
								   E164_MIN_DIGITS, E164_MAX_DIGITS, dlen),
						  NULL);
		return psprintf("+%s", d);
	}

	if (home == NULL)
		return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
					  psprintf("phone number \"%s\" has no country code", Quoted(in)),
					  pstrdup("Without a home country only international numbers are understood."),
					  pstrdup("Write the number with a leading \"+\", or give the country (a programme's phone_country)."));

	/* national, with the trunk prefix: "8 916 123-45-67" */
	if (StartsWith(d, home->trunk) && NsnLengthFits(home, dlen - strlen(home->trunk)))
		return psprintf("+%s%s", home->cc, d + strlen(home->trunk));
	/* international without "+": "79161234567" */
	if (StartsWith(d, home->cc) && NsnLengthFits(home, dlen - strlen(home->cc)))
		return psprintf("+%s", d);
	/*
	 * The bare national number: "916 123 45 67".  Where the trunk prefix is
	 * 0, no national number starts with 0; in Italy, which has no trunk
	 * prefix, the 0 is part of the number.
	 */
	if (NsnLengthFits(home, dlen) && (d[0] != '0' || home->trunk[0] == '\0'))
		return psprintf("+%s%s", home->cc, d);

	return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
				  psprintf("phone number \"%s\" has the wrong length", Quoted(in)),
				  home->nsn_min == home->nsn_max ?
				  psprintf("Numbers of %s (+%s) have %d digits after the country code or trunk prefix; this one has %d digits.",
						   home->iso, home->cc, home->nsn_min, dlen) :
				  psprintf("Numbers of %s (+%s) have %d to %d digits after the country code or trunk prefix; this one has %d digits.",
						   home->iso, home->cc, home->nsn_min, home->nsn_max, dlen),
				  NULL);
}

/* The Luhn (mod 10) check over a string of len ASCII digits */
bool
LuhnValid(const char *digits, int len)
{
	int			sum = 0;
	bool		dbl = false;

	for (int i = len - 1; i >= 0; i--)
	{
		int			v = digits[i] - '0';

		if (dbl)
		{
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
		dbl = !dbl;
	}
	return sum % 10 == 0;
}

/* Refuse a card rule that no card could satisfy */
void
CheckCardRule(const CardRule *rule)
{
	if (rule->min_length < 1 || rule->max_length < rule->min_length ||
		rule->max_length > CARD_MAX_DIGITS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid card length range %d to %d",
						rule->min_length, rule->max_length),
				 errdetail("The lengths must satisfy 1 <= minimum <= maximum <= %d.",
						   CARD_MAX_DIGITS)));
}

/*
 * Normalise a card number: keep its digits (leading zeros too), dropping
 * spaces and hyphens; check the length and, if the rule asks, the Luhn digit.
 */
char *
NormalizeCard(const char *in, const CardRule *rule, NormError *err)
{
	char		digits[IDENTIFIER_MAX_INPUT + 1];
	int			ndigits = 0;
	int			inlen = strlen(in);

	if (pg_mbstrlen_with_len(in, inlen) > IDENTIFIER_MAX_INPUT)
		return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
					  psprintf("card number \"%s\" is too long", Quoted(in)),
					  psprintf("It has %d characters; at most %d are accepted.",
							   pg_mbstrlen_with_len(in, inlen), IDENTIFIER_MAX_INPUT),
					  NULL);

	for (int i = 0; i < inlen; i++)
	{
		char		c = in[i];

		if (c >= '0' && c <= '9')
			digits[ndigits++] = c;
		else if (c != ' ' && c != '\t' && c != '-')
			return Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION,
						  psprintf("invalid card number \"%s\"", Quoted(in)),
						  UnexpectedChar(in, i),
						  pstrdup("A card number has digits, and may have spaces and hyphens."));
	}
	digits[ndigits] = '\0';

	if (ndigits == 0)
		return Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION,
					  psprintf("invalid card number \"%s\"", Quoted(in)),
					  pstrdup("It has no digits."), NULL);
	if (ndigits < rule->min_length || ndigits > rule->max_length)
		return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
					  psprintf("card number \"%s\" has the wrong length", Quoted(in)),
					  rule->min_length == rule->max_length ?
					  psprintf("Cards have %d digits; this one has %d.",
							   rule->min_length, ndigits) :
					  psprintf("Cards have %d to %d digits; this one has %d.",
							   rule->min_length, rule->max_length, ndigits),
					  NULL);
	if (rule->luhn && !LuhnValid(digits, ndigits))
		return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
					  psprintf("card number \"%s\" fails the Luhn check", Quoted(in)),
					  NULL,
					  pstrdup("Check the number for a mistyped or swapped digit."));
	return pstrdup(digits);
}

static bool
EmailLocalChar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL);
}

static bool
DomainChar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '.';
}

/*
 * Normalise an e-mail address: trim surrounding white space and lower-case
 * it (mail providers treat the local part case-insensitively, and a till
 * must find the customer however the address was typed).  Checks the shape
 * that RFC 5321 allows for ASCII addresses.
 */
char *
NormalizeEmail(const char *in, NormError *err)
{
	const char *start = in;
	const char *end = in + strlen(in);
	const char *at = NULL;
	char	   *out;
	int			len;
	const char *domain;

#define BAD_EMAIL(detail) \
	Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION, \
		   psprintf("invalid e-mail address \"%s\"", Quoted(in)), (detail), NULL)

	while (start < end && isspace((unsigned char) *start))
		start++;
	while (end > start && isspace((unsigned char) end[-1]))
		end--;
	len = end - start;

	if (len == 0)
		return BAD_EMAIL(pstrdup("It is empty."));
	if (len > EMAIL_MAX_LENGTH)
		return Refuse(err, ERRCODE_INVALID_PARAMETER_VALUE,
					  psprintf("e-mail address \"%s\" is too long", Quoted(in)),
					  psprintf("It has %d characters; at most %d are allowed.",
							   len, EMAIL_MAX_LENGTH),
					  NULL);

	for (const char *p = start; p < end; p++)
	{
		if (IS_HIGHBIT_SET(*p))
			return Refuse(err, ERRCODE_INVALID_TEXT_REPRESENTATION,
						  psprintf("invalid e-mail address \"%s\"", Quoted(in)),
						  pstrdup("Only ASCII addresses are accepted."),
						  pstrdup("Write an internationalised domain in its ASCII (xn--) form."));
		if (*p == '@')
		{
			if (at != NULL)
				return BAD_EMAIL(pstrdup("It has more than one \"@\"."));
			at = p;
		}
	}
	if (at == NULL)
		return BAD_EMAIL(pstrdup("It has no \"@\"."));
	if (at == start || at - start > 64)
		return BAD_EMAIL(pstrdup("The part before \"@\" must have 1 to 64 characters."));
	for (const char *p = start; p < at; p++)
	{
		if (!EmailLocalChar(*p))
			return BAD_EMAIL(UnexpectedChar(in, p - in));
		if (*p == '.' && (p == start || p + 1 == at || p[1] == '.'))
			return BAD_EMAIL(pstrdup("A dot before \"@\" may not be first, last or doubled."));
	}

	domain = at + 1;
	if (domain == end)
		return BAD_EMAIL(pstrdup("It has no domain after \"@\"."));
	for (const char *label = domain; label <= end;)
	{
		const char *dot = label;

		while (dot < end && *dot != '.')
		{
			if (!DomainChar(*dot))
				return BAD_EMAIL(UnexpectedChar(in, dot - in));
			dot++;
		}
		if (dot == label || dot - label > 63)
			return BAD_EMAIL(pstrdup("Every part of the domain must have 1 to 63 characters."));
		if (*label == '-' || dot[-1] == '-')
			return BAD_EMAIL(pstrdup("A part of the domain may not begin or end with a hyphen."));
		if (dot == end)
		{
			if (label == domain)
				return BAD_EMAIL(pstrdup("The domain must have at least two parts, such as \"example.com\"."));
			break;
		}
		label = dot + 1;
	}

	out = palloc(len + 1);
	for (int i = 0; i < len; i++)
		out[i] = pg_ascii_tolower((unsigned char) start[i]);
	out[len] = '\0';
	return out;
#undef BAD_EMAIL
}

/* Parse an identifier kind name; "id" only where allow_id */
bool
ParseIdentKind(const char *name, bool allow_id, IdentKind *kind)
{
	for (int k = 0; k < (int) lengthof(kind_names); k++)
		if (strcmp(name, kind_names[k]) == 0 &&
			(allow_id || k != IDENT_CUSTOMER_ID))
		{
			*kind = (IdentKind) k;
			return true;
		}
	return false;
}

const char *
IdentKindName(IdentKind kind)
{
	return kind_names[kind];
}

/* Raise the error a normaliser described */
void
ReportNormError(const NormError *err)
{
	ereport(ERROR,
			(errcode(err->sqlerrcode),
			 errmsg_internal("%s", err->message),
			 err->detail ? errdetail_internal("%s", err->detail) : 0,
			 err->hint ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}

/* The home country named by an ISO code, or an error naming it */
static const PhoneCountry *
HomeCountryArg(text *arg)
{
	char	   *iso = text_to_cstring(arg);
	const PhoneCountry *c = LookupPhoneCountry(iso);

	if (c == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown phone country \"%s\"", Quoted(iso)),
				 errhint("SELECT * FROM loyalty.phone_countries() lists the countries whose numbering is known.")));
	return c;
}

/* loyalty.normalize_phone(phone text, country text default null) → E.164 */
Datum
loyalty_normalize_phone(PG_FUNCTION_ARGS)
{
	const PhoneCountry *home = NULL;
	NormError	err;
	char	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
		home = HomeCountryArg(PG_GETARG_TEXT_PP(1));
	out = NormalizePhone(text_to_cstring(PG_GETARG_TEXT_PP(0)), home, &err);
	if (out == NULL)
		ReportNormError(&err);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/* loyalty.normalize_card(card text, min_length, max_length, luhn) → digits */
Datum
loyalty_normalize_card(PG_FUNCTION_ARGS)
{
	CardRule	rule;
	NormError	err;
	char	   *out;

	rule.min_length = PG_GETARG_INT32(1);
	rule.max_length = PG_GETARG_INT32(2);
	rule.luhn = PG_GETARG_BOOL(3);
	CheckCardRule(&rule);
	out = NormalizeCard(text_to_cstring(PG_GETARG_TEXT_PP(0)), &rule, &err);
	if (out == NULL)
		ReportNormError(&err);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/* loyalty.normalize_email(email text) → trimmed, lower-case address */
Datum
loyalty_normalize_email(PG_FUNCTION_ARGS)
{
	NormError	err;
	char	   *out = NormalizeEmail(text_to_cstring(PG_GETARG_TEXT_PP(0)), &err);

	if (out == NULL)
		ReportNormError(&err);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/* loyalty.phone_country_valid(country text): is its numbering known? */
Datum
loyalty_phone_country_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(LookupPhoneCountry(text_to_cstring(PG_GETARG_TEXT_PP(0))) != NULL);
}

/* loyalty.phone_countries(): the numbering plans known to normalize_phone */
Datum
loyalty_phone_countries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < (int) lengthof(phone_countries); i++)
	{
		const PhoneCountry *c = &phone_countries[i];
		Datum		values[6];
		bool		nulls[6] = {false};

		values[0] = CStringGetTextDatum(c->iso);
		values[1] = CStringGetTextDatum(c->cc);
		values[2] = CStringGetTextDatum(c->trunk);
		values[3] = CStringGetTextDatum(c->intl[0] ? psprintf("00, %s", c->intl) : "00");
		values[4] = Int32GetDatum(c->nsn_min);
		values[5] = Int32GetDatum(c->nsn_max);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
