/*
 * src/identifier.h
 *
 * Customer identifiers: phone numbers normalised to E.164, card numbers
 * checked against a programme's rule, e-mail addresses.  The normalisers
 * report a failure in a NormError instead of raising it, so that identify()
 * can try an input as several kinds, and so that type input can later report
 * soft errors; ReportNormError() raises it.
 */
#ifndef LOYALTY_IDENTIFIER_H
#define LOYALTY_IDENTIFIER_H

/* longest raw identifier accepted before any parsing */
#define IDENTIFIER_MAX_INPUT	64
#define EMAIL_MAX_LENGTH		254
#define E164_MAX_DIGITS			15
#define CARD_MAX_DIGITS			32

typedef enum IdentKind
{
	IDENT_CARD,
	IDENT_PHONE,
	IDENT_EMAIL,
	IDENT_CUSTOMER_ID			/* identify() only: not stored as an identifier */
} IdentKind;

/* a country's telephone numbering plan, as far as E.164 needs it */
typedef struct PhoneCountry
{
	const char *iso;			/* ISO 3166-1 alpha-2 code */
	const char *cc;				/* country calling code */
	const char *trunk;			/* national trunk prefix, "" if none */
	const char *intl;			/* international prefix besides "00", "" if none */
	int			nsn_min;		/* digits of the national significant number */
	int			nsn_max;
} PhoneCountry;

/* a programme's rule for card numbers */
typedef struct CardRule
{
	int			min_length;
	int			max_length;
	bool		luhn;
} CardRule;

/* why an identifier was refused: what ereport would say */
typedef struct NormError
{
	int			sqlerrcode;
	char	   *message;
	char	   *detail;
	char	   *hint;
} NormError;

extern const PhoneCountry *LookupPhoneCountry(const char *iso);
extern char *NormalizePhone(const char *in, const PhoneCountry *home, NormError *err);
extern char *NormalizeCard(const char *in, const CardRule *rule, NormError *err);
extern char *NormalizeEmail(const char *in, NormError *err);
extern bool LuhnValid(const char *digits, int len);
extern bool ParseIdentKind(const char *name, bool allow_id, IdentKind *kind);
extern const char *IdentKindName(IdentKind kind);
extern void ReportNormError(const NormError *err) pg_attribute_noreturn();
extern void CheckCardRule(const CardRule *rule);

#endif
