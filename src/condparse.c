/*
 * src/condparse.c
 *
 * Text to bytecode for loyalty.condition: the lexer, a recursive-descent
 * parser whose recursion is bounded by COND_MAX_DEPTH, the canonical form
 * (and/or flattened, double negation removed, in-lists sorted without
 * duplicates) and the writer of the stored varlena (layout in condcode.h).
 *
 * Errors name the character position and what was expected: 22P02 for
 * syntax, 22023 for a value that cannot be right, 54000 for the limits.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "condcode.h"

typedef enum TokKind
{
	T_END,
	T_IDENT,					/* a bare word: an attribute or a keyword */
	T_QIDENT,					/* a "quoted" attribute name */
	T_STRING,
	T_NUMBER,
	T_OP,						/* = <> != < <= > >= <@ */
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_DOT,
	T_QUESTION
} TokKind;

#define OPT_PREFIX	(CMP_GE + 1)	/* the "<@" of T_OP */

typedef struct Token
{
	TokKind		kind;
	int			start;			/* byte offset in the text */
	int			len;			/* bytes in the text */
	char	   *val;			/* T_STRING, T_QIDENT: unescaped; else the text */
	int			vlen;
	int			op;				/* T_OP: CMP_* or OPT_PREFIX */
} Token;

/* The tree before it is written */
typedef struct CNode
{
	uint8		op;
	uint8		cmp;
	bool		neg;
	bool		exact;
	int			attr;
	int			attr2;
	int			days;
	int			nlits;
	CondLit    *lits;
	int			nkids;
	int			maxkids;
	struct CNode **kids;
} CNode;

typedef struct Parser
{
	const char *text;
	int			len;
	int			pos;			/* next byte for the lexer */
	Token		tok;			/* the token being looked at */
	Token		prev;			/* the one before it */
	int			depth;
	CondDict   *dict;			/* the attribute table, in order of first appearance */
} Parser;

static const char *const weekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* 1-based character position of a byte offset */
static int
char_position(Parser *p, int offset)
{
	return pg_mbstrlen_with_len(p->text, offset) + 1;
}

/* Raise a syntax error at a token: what was expected after which text */
static pg_attribute_noreturn() void
expected(Parser *p, const char *what, const char *after)
{
	char	   *prev;

	if (after == NULL && p->prev.kind == T_END)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("syntax error at position %d: expected %s at the start",
						char_position(p, p->tok.start), what)));
	prev = after ? pstrdup(after) : pnstrdup(p->text + p->prev.start, p->prev.len);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("syntax error at position %d: expected %s after \"%s\"",
					char_position(p, p->tok.start), what, prev)));
}

/* Raise a bad-value error (22023) at a byte offset */
static pg_attribute_noreturn() void
bad_value(Parser *p, int offset, const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid condition at position %d: %s",
					char_position(p, offset), msg),
			 detail ? errdetail("%s", detail) : 0));
}

static bool
is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
is_ident_char(unsigned char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Read a quoted string or name whose closing quote doubles inside it */
static void
lex_quoted(Parser *p, char quote)
{
	Token	   *t = &p->tok;
	StringInfoData buf;
	int			i = p->pos + 1;

	initStringInfo(&buf);
	for (;;)
	{
		if (i >= p->len)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("syntax error at position %d: %s opened here is not closed",
							char_position(p, p->pos),
							quote == '\'' ? "the string" : "the quoted name")));
		if (p->text[i] == quote)
		{
			if (i + 1 < p->len && p->text[i + 1] == quote)
			{
				appendStringInfoChar(&buf, quote);
				i += 2;
				continue;
			}
			i++;
			break;
		}
		appendStringInfoChar(&buf, p->text[i]);
		i++;
	}
	t->kind = quote == '\'' ? T_STRING : T_QIDENT;
	t->val = buf.data;
	t->vlen = buf.len;
	t->len = i - p->pos;
	if (t->kind == T_QIDENT && t->vlen == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("syntax error at position %d: an attribute name cannot be empty",
						char_position(p, p->pos))));
}

/* Move to the next token */
static void
next_token(Parser *p)
{
	Token	   *t = &p->tok;
	const char *s = p->text;
	int			i;

	p->prev = *t;
	while (p->pos < p->len && strchr(" \t\n\r\f\v", s[p->pos]) && s[p->pos] != '\0')
		p->pos++;
	memset(t, 0, sizeof(*t));
	t->start = p->pos;
	if (p->pos >= p->len)
	{
		t->kind = T_END;
		return;
	}
	i = p->pos;
	switch (s[i])
	{
		case '(':
			t->kind = T_LPAREN;
			t->len = 1;
			break;
		case ')':
			t->kind = T_RPAREN;
			t->len = 1;
			break;
		case ',':
			t->kind = T_COMMA;
			t->len = 1;
			break;
		case '.':
			t->kind = T_DOT;
			t->len = 1;
			break;
		case '?':
			t->kind = T_QUESTION;
			t->len = 1;
			break;
		case '=':
			t->kind = T_OP;
			t->op = CMP_EQ;
			t->len = 1;
			break;
		case '<':
			t->kind = T_OP;
			t->len = 2;
			if (i + 1 < p->len && s[i + 1] == '>')
				t->op = CMP_NE;
			else if (i + 1 < p->len && s[i + 1] == '=')
				t->op = CMP_LE;
			else if (i + 1 < p->len && s[i + 1] == '@')
				t->op = OPT_PREFIX;
			else
			{
				t->op = CMP_LT;
				t->len = 1;
			}
			break;
		case '>':
			t->kind = T_OP;
			t->len = 2;
			if (i + 1 < p->len && s[i + 1] == '=')
				t->op = CMP_GE;
			else
			{
				t->op = CMP_GT;
				t->len = 1;
			}
			break;
		case '!':
			if (i + 1 < p->len && s[i + 1] == '=')
			{
				t->kind = T_OP;
				t->op = CMP_NE;
				t->len = 2;
				break;
			}
			goto unexpected;
		case '\'':
		case '"':
			lex_quoted(p, s[i]);
			break;
		default:
			if (is_digit(s[i]) || (s[i] == '-' && i + 1 < p->len && is_digit(s[i + 1])))
			{
				int			j = i + 1;

				while (j < p->len && is_digit(s[j]))
					j++;
				if (j < p->len && s[j] == '.')
				{
					j++;
					if (j >= p->len || !is_digit(s[j]))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
								 errmsg("syntax error at position %d: expected a digit after \"%.*s\"",
										char_position(p, j), j - i, s + i)));
					while (j < p->len && is_digit(s[j]))
						j++;
				}
				if (j < p->len && (is_ident_char((unsigned char) s[j]) || s[j] == '.'))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("syntax error at position %d: a number cannot go on with \"%.*s\"",
									char_position(p, j), pg_mblen(s + j), s + j),
							 errhint("Numbers are written like 1000, -5 or 19.99.")));
				t->kind = T_NUMBER;
				t->len = j - i;
				break;
			}
			if (is_ident_start((unsigned char) s[i]))
			{
				int			j = i + 1;

				while (j < p->len && is_ident_char((unsigned char) s[j]))
					j++;
				t->kind = T_IDENT;
				t->len = j - i;
				break;
			}
	unexpected:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("syntax error at position %d: unexpected character \"%.*s\"",
							char_position(p, i), pg_mblen(s + i), s + i)));
	}
	if (t->val == NULL)
	{
		t->val = (char *) s + t->start;
		t->vlen = t->len;
	}
	p->pos = t->start + t->len;
}

/* Is the current token the (case-insensitive) keyword kw? */
static bool
is_keyword(const Token *t, const char *kw)
{
	int			n = strlen(kw);

	if (t->kind != T_IDENT || t->len != n)
		return false;
	for (int i = 0; i < n; i++)
	{
		char		c = t->val[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != kw[i])
			return false;
	}
	return true;
}

static const char *const keywords[] = {
	"and", "or", "not", "in", "between", "like", "is", "null", "true"
};

/* Is this bare word one of the language's keywords? */
bool
cond_is_keyword(const char *s, int len)
{
	Token		t = {.kind = T_IDENT,.val = (char *) s,.len = len};

	for (int i = 0; i < (int) lengthof(keywords); i++)
		if (is_keyword(&t, keywords[i]))
			return true;
	return false;
}

/* Take the current token if it is the keyword kw */
static bool
accept_keyword(Parser *p, const char *kw)
{
	if (!is_keyword(&p->tok, kw))
		return false;
	next_token(p);
	return true;
}

static CNode *
new_node(uint8 op)
{
	CNode	   *n = palloc0(sizeof(CNode));

	n->op = op;
	n->attr = -1;
	n->attr2 = -1;
	return n;
}

/* Add a child to an and/or node, splicing in the children of a like node */
static void
add_child(CNode *parent, CNode *child)
{
	int			add = child->op == parent->op ? child->nkids : 1;

	if (parent->nkids + add > parent->maxkids)
	{
		parent->maxkids = Max(parent->maxkids * 2, parent->nkids + add);
		parent->kids = parent->kids
			? repalloc(parent->kids, parent->maxkids * sizeof(CNode *))
			: palloc(parent->maxkids * sizeof(CNode *));
	}
	if (child->op == parent->op)
	{
		memcpy(parent->kids + parent->nkids, child->kids, child->nkids * sizeof(CNode *));
		parent->nkids += child->nkids;
	}
	else
		parent->kids[parent->nkids++] = child;
}

/* The attribute table index of a name, added at its first appearance */
static int
add_attr(Parser *p, CondScope scope, const char *name, int len)
{
	int			before = loyalty_cond_dict_size(p->dict);
	int			id = loyalty_cond_dict_intern(p->dict, scope, name, len);

	if (id == before && before >= PG_UINT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("condition reads too many attributes (at most %d)", PG_UINT16_MAX)));
	return id;
}

/* Read a literal: a number or a string */
static void
parse_value(Parser *p, CondLit *lit, const char *after)
{
	memset(lit, 0, sizeof(*lit));
	if (p->tok.kind == T_NUMBER)
	{
		lit->is_num = true;
		if (!loyalty_cond_number(p->tok.val, p->tok.vlen, &lit->num))
			elog(ERROR, "number token \"%.*s\" does not read as a number", p->tok.vlen, p->tok.val);
	}
	else if (p->tok.kind == T_STRING)
	{
		lit->str = p->tok.val;
		lit->len = p->tok.vlen;
	}
	else
		expected(p, "a value", after);
	next_token(p);
}

/* Read a string literal */
static void
parse_string(Parser *p, CondLit *lit, const char *what)
{
	if (p->tok.kind != T_STRING)
		expected(p, what, NULL);
	parse_value(p, lit, NULL);
}

/*
 * The receipt attributes with a fixed domain check their literals:
 * receipt.weekday ('mon'..'sun', compared for equality only), receipt.hour
 * (whole numbers 0..23) and receipt.date ('YYYY-MM-DD').
 */
static void
check_known(Parser *p, const CNode *n, int offset)
{
	CondAttr	a;
	bool		ordered = n->op == COP_BETWEEN ||
		(n->op == COP_CMP && n->cmp != CMP_EQ && n->cmp != CMP_NE);

	loyalty_cond_dict_name(p->dict, n->attr, &a.scope, &a.name, &a.len);

	if (n->op != COP_CMP && n->op != COP_BETWEEN && n->op != COP_IN)
		return;
	for (int i = 0; i < n->nlits; i++)
	{
		const CondLit *l = &n->lits[i];

		if (cond_attr_is(&a, COND_RECEIPT, "weekday"))
		{
			bool		found = false;

			if (ordered)
				bad_value(p, offset, "receipt.weekday compares only with =, <>, in and not in", NULL);
			for (int d = 0; d < (int) lengthof(weekdays) && !l->is_num; d++)
				found |= (l->len == 3 && memcmp(l->str, weekdays[d], 3) == 0);
			if (!found)
				bad_value(p, offset, "receipt.weekday is a day name",
						  "The days are 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' and 'sun'.");
		}
		else if (cond_attr_is(&a, COND_RECEIPT, "hour"))
		{
			if (!l->is_num || l->num.sign < 0 || l->num.exp > 2 ||
				l->num.ndigits > Max(l->num.exp, 0) ||
				(l->num.exp == 2 && (l->num.digits[0] > '2' ||
									 (l->num.digits[0] == '2' && l->num.ndigits > 1 &&
									  l->num.digits[1] > '3'))))
				bad_value(p, offset, "receipt.hour is a whole number from 0 to 23", NULL);
		}
		else if (cond_attr_is(&a, COND_RECEIPT, "date"))
		{
			int			y,
						m,
						d;

			if (l->is_num || !cond_read_date(l->str, l->len, &y, &m, &d))
				bad_value(p, offset, "receipt.date is a date written 'YYYY-MM-DD'", NULL);
		}
	}
}

/* Sort an in-list (numbers, then strings) and drop duplicates */
static int
lit_qsort_cmp(const void *a, const void *b)
{
	return cond_litcmp((const CondLit *) a, (const CondLit *) b);
}

static void
sort_list(CNode *n)
{
	int			out = 0;

	qsort(n->lits, n->nlits, sizeof(CondLit), lit_qsort_cmp);
	for (int i = 0; i < n->nlits; i++)
		if (out == 0 || cond_litcmp(&n->lits[out - 1], &n->lits[i]) != 0)
			n->lits[out++] = n->lits[i];
	n->nlits = out;
}

/* in ( value [, value]* ) */
static void
parse_list(Parser *p, CNode *n)
{
	const char *open = n->neg ? "not in (" : "in (";
	int			max = 8;

	if (p->tok.kind != T_LPAREN)
		expected(p, "\"(\"", NULL);
	next_token(p);
	n->lits = palloc(max * sizeof(CondLit));
	for (;;)
	{
		if (n->nlits >= max)
		{
			max *= 2;
			n->lits = repalloc(n->lits, max * sizeof(CondLit));
		}
		parse_value(p, &n->lits[n->nlits], n->nlits == 0 ? open : NULL);
		n->nlits++;
		if (p->tok.kind == T_RPAREN)
			break;
		if (p->tok.kind != T_COMMA)
			expected(p, "\",\" or \")\"", NULL);
		next_token(p);
	}
	next_token(p);
	sort_list(n);
}

/* A like pattern: a prefix with an optional final %, \ escaping % _ and \ */
static void
parse_like(Parser *p, CNode *n)
{
	int			offset = p->tok.start;
	CondLit    *l;
	StringInfoData prefix;

	n->nlits = 1;
	n->lits = palloc0(sizeof(CondLit));
	parse_string(p, n->lits, "a pattern");
	l = n->lits;
	initStringInfo(&prefix);
	n->exact = true;
	for (int i = 0; i < l->len; i++)
	{
		char		c = l->str[i];

		if (c == '\\')
		{
			if (++i >= l->len)
				bad_value(p, offset, "a like pattern cannot end with \"\\\"", NULL);
			appendStringInfoChar(&prefix, l->str[i]);
		}
		else if (c == '%' && i == l->len - 1)
			n->exact = false;
		else if (c == '%' || c == '_')
			bad_value(p, offset, psprintf("like patterns are prefixes: \"%c\" may not stand there", c),
					  "Write 'prefix%' for a prefix; escape a literal % or _ with \\.");
		else
			appendStringInfoChar(&prefix, c);
	}
	l->str = prefix.data;
	l->len = prefix.len;
}

/* customer.birthday_within(days) */
static CNode *
parse_function(Parser *p, const Token *first, const Token *name)
{
	CNode	   *n;
	CondLit		days;
	int			offset;

	if (!(first && is_keyword(first, "customer") && name->kind == T_IDENT &&
		  name->vlen == 15 && memcmp(name->val, "birthday_within", 15) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("syntax error at position %d: unknown function \"%.*s\"",
						char_position(p, first ? first->start : name->start),
						(name->start + name->len) - (first ? first->start : name->start),
						p->text + (first ? first->start : name->start)),
				 errhint("The function is customer.birthday_within(days).")));
	next_token(p);
	offset = p->tok.start;
	if (p->tok.kind != T_NUMBER)
		expected(p, "a number of days", NULL);
	parse_value(p, &days, NULL);
	n = new_node(COP_BIRTHDAY);
	for (int i = 0; i < days.num.exp && i < 4; i++)
		n->days = n->days * 10 + (i < days.num.ndigits ? days.num.digits[i] - '0' : 0);
	/* a whole number (no digit past the point), not negative, at most 366 */
	if (days.num.sign < 0 || days.num.ndigits > Max(days.num.exp, 0) || days.num.exp > 3 ||
		n->days > COND_MAX_BIRTHDAY)
		bad_value(p, offset, "customer.birthday_within takes a whole number of days from 0 to 366", NULL);
	if (p->tok.kind != T_RPAREN)
		expected(p, "\")\"", NULL);
	next_token(p);
	n->attr = add_attr(p, COND_CUSTOMER, "birthday", 8);
	n->attr2 = add_attr(p, COND_RECEIPT, "date", 4);
	return n;
}

/* An attribute and what it is compared with */
static CNode *
parse_predicate(Parser *p)
{
	Token		first = p->tok;
	Token		name = p->tok;
	CondScope	scope = COND_LINE;
	CNode	   *n;
	char	   *attrtext;
	int			offset;

	next_token(p);
	if (p->tok.kind == T_DOT)
	{
		if (is_keyword(&first, "receipt"))
			scope = COND_RECEIPT;
		else if (is_keyword(&first, "customer"))
			scope = COND_CUSTOMER;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("syntax error at position %d: \"%.*s\" is not receipt or customer",
							char_position(p, first.start), first.len, p->text + first.start),
					 errhint("Line attributes have plain names; receipt.name and customer.name read the receipt and the customer.")));
		next_token(p);
		if (!(p->tok.kind == T_QIDENT ||
			  (p->tok.kind == T_IDENT && !cond_is_keyword(p->tok.val, p->tok.len))))
			expected(p, "an attribute name", NULL);
		name = p->tok;
		next_token(p);
	}
	if (p->tok.kind == T_LPAREN)
		return parse_function(p, scope == COND_LINE ? NULL : &first, &name);

	attrtext = pnstrdup(p->text + first.start, name.start + name.len - first.start);
	n = new_node(COP_CMP);
	n->attr = add_attr(p, scope, name.val, name.vlen);
	offset = p->tok.start;
	if (p->tok.kind == T_OP && p->tok.op != OPT_PREFIX)
	{
		n->cmp = p->tok.op;
		n->nlits = 1;
		n->lits = palloc(sizeof(CondLit));
		next_token(p);
		parse_value(p, n->lits, NULL);
	}
	else if (p->tok.kind == T_OP || p->tok.kind == T_QUESTION)
	{
		n->op = p->tok.kind == T_OP ? COP_PREFIX : COP_HAS;
		n->nlits = 1;
		n->lits = palloc(sizeof(CondLit));
		next_token(p);
		offset = p->tok.start;
		parse_string(p, n->lits, n->op == COP_PREFIX ? "a category path" : "a tag");
		if (n->op == COP_PREFIX)
		{
			const char *s = n->lits->str;
			int			len = n->lits->len;

			if (!cond_path_valid(s, len))
				bad_value(p, offset, psprintf("category path '%.*s' is not valid", len, s),
						  "A path is names separated by \"/\", such as 'ski/alpine'.");
		}
	}
	else if (accept_keyword(p, "between"))
	{
		n->op = COP_BETWEEN;
		n->nlits = 2;
		n->lits = palloc(2 * sizeof(CondLit));
		parse_value(p, &n->lits[0], NULL);
		if (!accept_keyword(p, "and"))
			expected(p, "\"and\"", NULL);
		parse_value(p, &n->lits[1], NULL);
		if (n->lits[0].is_num != n->lits[1].is_num)
			bad_value(p, offset, "the bounds of between must both be numbers or both be strings", NULL);
		if (cond_litcmp(&n->lits[0], &n->lits[1]) > 0)
			bad_value(p, offset, "the lower bound of between is greater than the upper bound",
					  psprintf("\"%s %s\" is never true.", attrtext,
							   pnstrdup(p->text + offset, p->prev.start + p->prev.len - offset)));
	}
	else if (accept_keyword(p, "in"))
	{
		n->op = COP_IN;
		parse_list(p, n);
	}
	else if (accept_keyword(p, "not"))
	{
		n->neg = true;
		if (accept_keyword(p, "in"))
		{
			n->op = COP_IN;
			parse_list(p, n);
		}
		else if (accept_keyword(p, "like"))
		{
			n->op = COP_LIKE;
			parse_like(p, n);
		}
		else
			expected(p, "\"in\" or \"like\"", NULL);
	}
	else if (accept_keyword(p, "like"))
	{
		n->op = COP_LIKE;
		parse_like(p, n);
	}
	else if (accept_keyword(p, "is"))
	{
		n->op = COP_ISNULL;
		n->neg = accept_keyword(p, "not");
		if (!accept_keyword(p, "null"))
			expected(p, "\"null\"", NULL);
	}
	else
		expected(p, "an operator", attrtext);
	check_known(p, n, offset);
	return n;
}

static CNode *parse_or(Parser *p);

/* Enter a nested "(" or "not", within the depth limit */
static void
enter(Parser *p)
{
	if (++p->depth > COND_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("condition nests deeper than %d levels at position %d",
						COND_MAX_DEPTH, char_position(p, p->tok.start)),
				 errhint("Each \"(\" and each \"not\" opens a level.")));
}

/* ( expr ) | true | predicate */
static CNode *
parse_primary(Parser *p)
{
	CNode	   *n;

	if (p->tok.kind == T_LPAREN)
	{
		enter(p);
		next_token(p);
		n = parse_or(p);
		if (p->tok.kind != T_RPAREN)
			expected(p, "\")\"", NULL);
		next_token(p);
		p->depth--;
		return n;
	}
	if (accept_keyword(p, "true"))
		return new_node(COP_TRUE);
	if (p->tok.kind == T_QIDENT ||
		(p->tok.kind == T_IDENT && !cond_is_keyword(p->tok.val, p->tok.len)))
		return parse_predicate(p);
	expected(p, "an attribute, \"(\", \"not\" or \"true\"", NULL);
}

/* not* primary; "not not x" is x */
static CNode *
parse_not(Parser *p)
{
	CNode	   *n;
	CNode	   *child;

	if (!is_keyword(&p->tok, "not"))
		return parse_primary(p);
	enter(p);
	next_token(p);
	child = parse_not(p);
	p->depth--;
	if (child->op == COP_NOT)
		return child->kids[0];
	n = new_node(COP_NOT);
	add_child(n, child);
	return n;
}

/* One level of "and" or "or": left-associative, flattened */
static CNode *
parse_binary(Parser *p, const char *kw, uint8 op, CNode *(*operand) (Parser *))
{
	CNode	   *first = operand(p);
	CNode	   *n;

	if (!is_keyword(&p->tok, kw))
		return first;
	n = new_node(op);
	add_child(n, first);
	while (accept_keyword(p, kw))
		add_child(n, operand(p));
	return n;
}

static CNode *
parse_and(Parser *p)
{
	return parse_binary(p, "and", COP_AND, parse_not);
}

static CNode *
parse_or(Parser *p)
{
	return parse_binary(p, "or", COP_OR, parse_and);
}

static void
put_u8(StringInfo buf, uint8 v)
{
	appendStringInfoChar(buf, (char) v);
}

static void
put_u16(StringInfo buf, uint16 v)
{
	put_u8(buf, v & 0xff);
	put_u8(buf, v >> 8);
}

static void
put_u32(StringInfo buf, uint32 v)
{
	put_u16(buf, v & 0xffff);
	put_u16(buf, v >> 16);
}

static void
put_lit(StringInfo buf, const CondLit *l)
{
	if (l->is_num)
	{
		put_u8(buf, LIT_NUMBER);
		put_u8(buf, (uint8) (l->num.sign + 1));
		put_u32(buf, (uint32) l->num.exp);
		put_u32(buf, (uint32) l->num.ndigits);
		appendBinaryStringInfo(buf, l->num.digits, l->num.ndigits);
	}
	else
	{
		put_u8(buf, LIT_STRING);
		put_u32(buf, (uint32) l->len);
		appendBinaryStringInfo(buf, l->str, l->len);
	}
}

/* Write a node and what is under it, in prefix order */
static void
write_node(StringInfo buf, const CNode *n)
{
	put_u8(buf, n->op);
	switch (n->op)
	{
		case COP_TRUE:
			break;
		case COP_AND:
		case COP_OR:
			put_u32(buf, n->nkids);
			for (int i = 0; i < n->nkids; i++)
				write_node(buf, n->kids[i]);
			break;
		case COP_NOT:
			write_node(buf, n->kids[0]);
			break;
		case COP_CMP:
			put_u8(buf, n->cmp);
			put_u16(buf, n->attr);
			put_lit(buf, &n->lits[0]);
			break;
		case COP_BETWEEN:
			put_u16(buf, n->attr);
			put_lit(buf, &n->lits[0]);
			put_lit(buf, &n->lits[1]);
			break;
		case COP_IN:
			put_u8(buf, n->neg);
			put_u16(buf, n->attr);
			put_u32(buf, n->nlits);
			for (int i = 0; i < n->nlits; i++)
				put_lit(buf, &n->lits[i]);
			break;
		case COP_PREFIX:
		case COP_HAS:
			put_u16(buf, n->attr);
			put_lit(buf, &n->lits[0]);
			break;
		case COP_LIKE:
			put_u8(buf, n->neg);
			put_u8(buf, n->exact);
			put_u16(buf, n->attr);
			put_lit(buf, &n->lits[0]);
			break;
		case COP_ISNULL:
			put_u8(buf, n->neg);
			put_u16(buf, n->attr);
			break;
		case COP_BIRTHDAY:
			put_u16(buf, n->days);
			put_u16(buf, n->attr);
			put_u16(buf, n->attr2);
			break;
		default:
			elog(ERROR, "unexpected condition node %d", n->op);
	}
}

/* Parse and compile a condition's text */
Condition *
loyalty_cond_parse(const char *text, int len)
{
	Parser		p;
	CNode	   *root;
	StringInfoData code;
	Condition  *c;
	Size		size;
	int			nattrs;
	CondAttr	attr;

	if (len > COND_MAX_INPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("condition is too long: %d bytes (at most %d)", len, COND_MAX_INPUT)));
	if (memchr(text, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("syntax error at position %d: a condition cannot contain a zero byte",
						pg_mbstrlen_with_len(text, (const char *) memchr(text, '\0', len) - text) + 1)));
	memset(&p, 0, sizeof(p));
	p.dict = loyalty_cond_dict_create();
	p.text = text;
	p.len = len;
	p.tok.kind = T_END;
	next_token(&p);
	if (p.tok.kind == T_END)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("syntax error at position 1: the condition is empty"),
				 errhint("A condition that always holds is written true.")));
	root = parse_or(&p);
	if (p.tok.kind != T_END)
	{
		if (p.tok.kind == T_RPAREN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("syntax error at position %d: \")\" closes nothing",
							char_position(&p, p.tok.start))));
		expected(&p, "\"and\", \"or\" or the end", NULL);
	}

	initStringInfo(&code);
	write_node(&code, root);
	nattrs = loyalty_cond_dict_size(p.dict);
	size = offsetof(Condition, data) + code.len;
	for (int i = 0; i < nattrs; i++)
	{
		loyalty_cond_dict_name(p.dict, i, &attr.scope, &attr.name, &attr.len);
		size += 3 + attr.len;
	}
	c = palloc0(size);
	SET_VARSIZE(c, size);
	c->version = COND_FORMAT_VERSION;
	c->flags = 0;
	c->nattrs = nattrs;
	c->code_len = code.len;
	memcpy(c->data, code.data, code.len);
	resetStringInfo(&code);
	for (int i = 0; i < nattrs; i++)
	{
		loyalty_cond_dict_name(p.dict, i, &attr.scope, &attr.name, &attr.len);
		put_u8(&code, attr.scope);
		put_u16(&code, attr.len);
		appendBinaryStringInfo(&code, attr.name, attr.len);
	}
	memcpy(c->data + c->code_len, code.data, code.len);

	/* the canonical text must read back too: it spaces what the input may not */
	if (strlen(loyalty_cond_print(c)) > COND_MAX_INPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("condition is too long: its canonical form has more than %d bytes", COND_MAX_INPUT)));
	return c;
}
