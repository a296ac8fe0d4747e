/*
 * src/condcode.c
 *
 * Reading the bytecode of loyalty.condition: bounds-checked decoding of its
 * nodes, the full check of a stored value (version, reserved bits, every
 * offset, order and limit), the canonical text, and the exact decimals and
 * values that conditions compare.
 */
#include "postgres.h"

#include "condcode.h"

static const char *const cmp_text[] = {"=", "<>", "<", "<=", ">", ">="};

/* A stored condition that does not read back: raise data_corrupted */
void
cond_corrupt(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("stored loyalty.condition is corrupted: %s", what)));
}

static inline uint8
get_u8(CondReader *r)
{
	if (r->p >= r->end)
		cond_corrupt("code ends inside a node");
	return *r->p++;
}

static inline uint16
get_u16(CondReader *r)
{
	uint16		lo = get_u8(r);

	return lo | ((uint16) get_u8(r) << 8);
}

static inline uint32
get_u32(CondReader *r)
{
	uint32		lo = get_u16(r);

	return lo | ((uint32) get_u16(r) << 16);
}

static const char *
get_bytes(CondReader *r, uint32 n)
{
	const char *s = (const char *) r->p;

	if (n > (uint32) (r->end - r->p))
		cond_corrupt("a literal runs past the code");
	r->p += n;
	return s;
}

static int
get_attr(CondReader *r)
{
	int			a = get_u16(r);

	if (a >= r->nattrs)
		cond_corrupt("an attribute number is out of range");
	return a;
}

static bool
get_flag(CondReader *r)
{
	uint8		v = get_u8(r);

	if (v > 1)
		cond_corrupt("a flag byte is not 0 or 1");
	return v == 1;
}

/* Start reading a condition's code, after checking its header */
void
cond_reader_init(CondReader *r, const Condition *c)
{
	Size		size = VARSIZE(c);

	if (size < offsetof(Condition, data))
		cond_corrupt("too short");
	if (c->version != COND_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored loyalty.condition has format version %d, this build reads version %d",
						c->version, COND_FORMAT_VERSION)));
	if (c->flags != 0)
		cond_corrupt("reserved flag bits are set");
	if (c->code_len > size - offsetof(Condition, data))
		cond_corrupt("the code runs past the value");
	r->p = (const uint8 *) c->data;
	r->end = r->p + c->code_len;
	r->nattrs = c->nattrs;
}

/* Read one literal */
void
cond_read_lit(CondReader *r, CondLit *lit)
{
	uint8		kind = get_u8(r);

	memset(lit, 0, sizeof(*lit));
	if (kind == LIT_STRING)
	{
		lit->len = get_u32(r);
		lit->str = get_bytes(r, lit->len);
		if (memchr(lit->str, '\0', lit->len) != NULL)
			cond_corrupt("a string holds a zero byte");
		return;
	}
	if (kind != LIT_NUMBER)
		cond_corrupt("a literal is neither a number nor a string");
	lit->is_num = true;
	lit->num.sign = (int) get_u8(r) - 1;
	lit->num.exp = (int32) get_u32(r);
	lit->num.ndigits = get_u32(r);
	lit->num.digits = get_bytes(r, lit->num.ndigits);
	if (lit->num.sign < -1 || lit->num.sign > 1 ||
		(lit->num.sign == 0) != (lit->num.ndigits == 0) ||
		(lit->num.sign == 0 && lit->num.exp != 0) ||
		lit->num.exp > COND_MAX_INPUT || lit->num.exp < -COND_MAX_INPUT)
		cond_corrupt("a number is malformed");
	for (int i = 0; i < lit->num.ndigits; i++)
		if (lit->num.digits[i] < '0' || lit->num.digits[i] > '9' ||
			((i == 0 || i == lit->num.ndigits - 1) && lit->num.digits[i] == '0'))
			cond_corrupt("a number is malformed");
}

/* Read one node; AND, OR and NOT stop before their first child */
void
cond_read_node(CondReader *r, CondNode *n)
{
	memset(n, 0, sizeof(*n));
	n->attr = -1;
	n->attr2 = -1;
	n->op = get_u8(r);
	switch (n->op)
	{
		case COP_TRUE:
		case COP_NOT:
			break;
		case COP_AND:
		case COP_OR:
			n->n = get_u32(r);
			if (n->n < 2 || n->n > (uint32) (r->end - r->p))
				cond_corrupt("an and/or node has a wrong number of children");
			break;
		case COP_CMP:
			n->cmp = get_u8(r);
			if (n->cmp > CMP_GE)
				cond_corrupt("unknown comparison");
			n->attr = get_attr(r);
			cond_read_lit(r, &n->lit[0]);
			break;
		case COP_BETWEEN:
			n->attr = get_attr(r);
			cond_read_lit(r, &n->lit[0]);
			cond_read_lit(r, &n->lit[1]);
			if (n->lit[0].is_num != n->lit[1].is_num || cond_litcmp(&n->lit[0], &n->lit[1]) > 0)
				cond_corrupt("between bounds are out of order");
			break;
		case COP_IN:
			{
				CondLit		prev;

				n->neg = get_flag(r);
				n->attr = get_attr(r);
				n->n = get_u32(r);
				if (n->n < 1 || n->n > (uint32) (r->end - r->p))
					cond_corrupt("an in-list has a wrong length");
				n->list = r->p;
				for (uint32 i = 0; i < n->n; i++)
				{
					CondLit		lit;

					cond_read_lit(r, &lit);
					if (i > 0 && cond_litcmp(&prev, &lit) >= 0)
						cond_corrupt("an in-list is not sorted");
					prev = lit;
				}
				break;
			}
		case COP_PREFIX:
		case COP_HAS:
			n->attr = get_attr(r);
			cond_read_lit(r, &n->lit[0]);
			if (n->lit[0].is_num)
				cond_corrupt("a path or tag is not a string");
			if (n->op == COP_PREFIX && !cond_path_valid(n->lit[0].str, n->lit[0].len))
				cond_corrupt("a category path has an empty name");
			break;
		case COP_LIKE:
			n->neg = get_flag(r);
			n->exact = get_flag(r);
			n->attr = get_attr(r);
			cond_read_lit(r, &n->lit[0]);
			if (n->lit[0].is_num)
				cond_corrupt("a like pattern is not a string");
			break;
		case COP_ISNULL:
			n->neg = get_flag(r);
			n->attr = get_attr(r);
			break;
		case COP_BIRTHDAY:
			n->days = get_u16(r);
			if (n->days > COND_MAX_BIRTHDAY)
				cond_corrupt("a birthday window is too wide");
			n->attr = get_attr(r);
			n->attr2 = get_attr(r);
			break;
		default:
			cond_corrupt("unknown node");
	}
}

/* Skip a node and everything under it (the tree's depth is checked already) */
void
cond_skip_node(CondReader *r)
{
	CondNode	n;

	cond_read_node(r, &n);
	if (n.op == COP_AND || n.op == COP_OR)
		for (uint32 i = 0; i < n.n; i++)
			cond_skip_node(r);
	else if (n.op == COP_NOT)
		cond_skip_node(r);
}

/* The attribute table, checked; returns its length */
int
loyalty_cond_attrs(const Condition *c, CondAttr **attrs)
{
	CondReader	r;
	CondAttr   *a;

	cond_reader_init(&r, c);
	r.p = r.end;
	r.end = (const uint8 *) c + VARSIZE(c);
	a = palloc((c->nattrs + 1) * sizeof(CondAttr));
	for (int i = 0; i < c->nattrs; i++)
	{
		uint8		scope = get_u8(&r);

		if (scope >= COND_NSCOPES)
			cond_corrupt("an attribute has an unknown scope");
		a[i].scope = (CondScope) scope;
		a[i].len = get_u16(&r);
		if (a[i].len == 0)
			cond_corrupt("an attribute name is empty");
		a[i].name = get_bytes(&r, a[i].len);
		if (memchr(a[i].name, '\0', a[i].len) != NULL)
			cond_corrupt("an attribute name holds a zero byte");
	}
	if (r.p != r.end)
		cond_corrupt("bytes follow the attribute table");
	*attrs = a;
	return c->nattrs;
}

/* Is the attribute scope.name? */
bool
cond_attr_is(const CondAttr *a, CondScope scope, const char *name)
{
	return a->scope == scope && a->len == (int) strlen(name) && memcmp(a->name, name, a->len) == 0;
}

/* Check every part of a stored condition; raise data_corrupted if one is wrong */
void
loyalty_cond_verify(const Condition *c)
{
	CondReader	r;
	CondAttr   *attrs;
	uint32		pending[COND_MAX_TREE + 1];
	uint8		parent[COND_MAX_TREE + 1];	/* the op whose children a level holds */
	int			sp = 0;

	loyalty_cond_attrs(c, &attrs);
	cond_reader_init(&r, c);
	pending[0] = 1;
	parent[0] = 0;
	while (sp >= 0)
	{
		CondNode	n;

		if (pending[sp] == 0)
		{
			sp--;
			continue;
		}
		pending[sp]--;
		cond_read_node(&r, &n);
		if (n.op == COP_BIRTHDAY &&
			!(cond_attr_is(&attrs[n.attr], COND_CUSTOMER, "birthday") &&
			  cond_attr_is(&attrs[n.attr2], COND_RECEIPT, "date")))
			cond_corrupt("a birthday window reads other attributes");
		if (n.op == COP_AND || n.op == COP_OR || n.op == COP_NOT)
		{
			/* canonical: and/or flattened, no double negation */
			if (parent[sp] == n.op)
				cond_corrupt("the tree is not in canonical form");
			if (sp >= COND_MAX_TREE)
				cond_corrupt("the tree is too deep");
			pending[++sp] = n.op == COP_NOT ? 1 : n.n;
			parent[sp] = n.op;
		}
	}
	if (r.p != r.end)
		cond_corrupt("bytes follow the code");
	pfree(attrs);
}

/*
 * Read an exact decimal: -?digits(.digits)?  The digits point into s unless
 * the significant ones straddle the point; then they are copied.
 */
bool
loyalty_cond_number(const char *s, int len, CondNum *out)
{
	int			i = 0;
	int			intstart,
				intend,
				fracstart,
				fracend;
	int			first,
				last;			/* significant digits, as positions in s */

	if (len > 0 && s[0] == '-')
		i++;
	intstart = i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	intend = i;
	if (intend == intstart)
		return false;
	fracstart = fracend = i;
	if (i < len && s[i] == '.')
	{
		fracstart = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		fracend = i;
		if (fracend == fracstart)
			return false;
	}
	if (i != len)
		return false;

	/* the first and last non-zero digits, skipping the point */
	first = -1;
	last = -1;
	for (int j = intstart; j < fracend; j++)
	{
		if (j == intend)
			continue;
		if (s[j] != '0')
		{
			if (first < 0)
				first = j;
			last = j;
		}
	}
	if (first < 0)
	{
		out->sign = 0;
		out->exp = 0;
		out->ndigits = 0;
		out->digits = "";
		return true;
	}
	out->sign = s[0] == '-' ? -1 : 1;
	/* exp: digits of the integer part from the first significant one */
	if (first < intend)
		out->exp = intend - first;
	else
		out->exp = -(first - fracstart);
	if (first < intend && last > intend)
	{
		char	   *d = palloc(last - first);
		int			k = 0;

		for (int j = first; j <= last; j++)
			if (j != intend)
				d[k++] = s[j];
		out->digits = d;
		out->ndigits = k;
	}
	else
	{
		out->digits = s + first;
		out->ndigits = last - first + 1;
	}
	return true;
}

/* Compare two exact decimals */
int
loyalty_cond_numcmp(const CondNum *a, const CondNum *b)
{
	int			r;

	if (a->sign != b->sign)
		return a->sign < b->sign ? -1 : 1;
	if (a->sign == 0)
		return 0;
	if (a->exp != b->exp)
		r = a->exp < b->exp ? -1 : 1;
	else
	{
		r = memcmp(a->digits, b->digits, Min(a->ndigits, b->ndigits));
		if (r == 0)
			r = a->ndigits == b->ndigits ? 0 : (a->ndigits < b->ndigits ? -1 : 1);
		else
			r = r < 0 ? -1 : 1;
	}
	return a->sign > 0 ? r : -r;
}

/* Byte order of two strings */
int
cond_strcmp(const char *a, int alen, const char *b, int blen)
{
	int			r = memcmp(a, b, Min(alen, blen));

	if (r != 0)
		return r < 0 ? -1 : 1;
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/* Literal order: numbers ascending, then strings in byte order */
int
cond_litcmp(const CondLit *a, const CondLit *b)
{
	if (a->is_num != b->is_num)
		return a->is_num ? -1 : 1;
	if (a->is_num)
		return loyalty_cond_numcmp(&a->num, &b->num);
	return cond_strcmp(a->str, a->len, b->str, b->len);
}

/* Make v the scalar whose text is s (a JSON string when is_string) */
void
loyalty_cond_set_text(CondValue *v, const char *s, int len, bool is_string)
{
	memset(v, 0, sizeof(*v));
	v->kind = COND_SCALAR;
	v->is_string = is_string;
	v->str = s;
	v->len = len;
	v->has_num = loyalty_cond_number(s, len, &v->num);
}

static void
print_number(StringInfo buf, const CondNum *n)
{
	if (n->sign == 0)
	{
		appendStringInfoChar(buf, '0');
		return;
	}
	if (n->sign < 0)
		appendStringInfoChar(buf, '-');
	if (n->exp <= 0)
	{
		appendStringInfoString(buf, "0.");
		for (int i = 0; i < -n->exp; i++)
			appendStringInfoChar(buf, '0');
		appendBinaryStringInfo(buf, n->digits, n->ndigits);
	}
	else if (n->exp >= n->ndigits)
	{
		appendBinaryStringInfo(buf, n->digits, n->ndigits);
		for (int i = n->ndigits; i < n->exp; i++)
			appendStringInfoChar(buf, '0');
	}
	else
	{
		appendBinaryStringInfo(buf, n->digits, n->exp);
		appendStringInfoChar(buf, '.');
		appendBinaryStringInfo(buf, n->digits + n->exp, n->ndigits - n->exp);
	}
}

/* Append s quoted with q, doubling q inside */
static void
print_quoted(StringInfo buf, const char *s, int len, char q)
{
	appendStringInfoChar(buf, q);
	for (int i = 0; i < len; i++)
	{
		if (s[i] == q)
			appendStringInfoChar(buf, q);
		appendStringInfoChar(buf, s[i]);
	}
	appendStringInfoChar(buf, q);
}

static void
print_lit(StringInfo buf, const CondLit *l)
{
	if (l->is_num)
		print_number(buf, &l->num);
	else
		print_quoted(buf, l->str, l->len, '\'');
}

/* An attribute as written: bare when it can be, else "quoted" */
void
loyalty_cond_attr_name(StringInfo buf, CondScope scope, const char *name, int len)
{
	bool		bare = len > 0 && !cond_is_keyword(name, len) &&
		!((unsigned char) name[0] >= '0' && (unsigned char) name[0] <= '9');

	if (scope == COND_RECEIPT)
		appendStringInfoString(buf, "receipt.");
	else if (scope == COND_CUSTOMER)
		appendStringInfoString(buf, "customer.");
	for (int i = 0; i < len && bare; i++)
	{
		unsigned char c = name[i];

		bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			c >= 0x80 || (c >= '0' && c <= '9');
	}
	if (bare)
		appendBinaryStringInfo(buf, name, len);
	else
		print_quoted(buf, name, len, '"');
}

static void
print_attr(StringInfo buf, const CondAttr *attrs, int i)
{
	loyalty_cond_attr_name(buf, attrs[i].scope, attrs[i].name, attrs[i].len);
}

/*
 * Print a node in canonical form.  Precedence: or 1, and 2, not 3, a
 * predicate 4; a node is parenthesised only when it binds less tightly than
 * its place needs.
 */
void
cond_print_node(StringInfo buf, CondReader *r, const CondAttr *attrs, int parent_prec)
{
	CondNode	n;

	cond_read_node(r, &n);
	switch (n.op)
	{
		case COP_TRUE:
			appendStringInfoString(buf, "true");
			break;
		case COP_AND:
		case COP_OR:
			{
				int			prec = n.op == COP_OR ? 1 : 2;

				if (prec < parent_prec)
					appendStringInfoChar(buf, '(');
				for (uint32 i = 0; i < n.n; i++)
				{
					if (i > 0)
						appendStringInfoString(buf, n.op == COP_OR ? " or " : " and ");
					cond_print_node(buf, r, attrs, prec + 1);
				}
				if (prec < parent_prec)
					appendStringInfoChar(buf, ')');
				break;
			}
		case COP_NOT:
			appendStringInfoString(buf, "not ");
			cond_print_node(buf, r, attrs, 3);
			break;
		case COP_CMP:
			print_attr(buf, attrs, n.attr);
			appendStringInfo(buf, " %s ", cmp_text[n.cmp]);
			print_lit(buf, &n.lit[0]);
			break;
		case COP_BETWEEN:
			print_attr(buf, attrs, n.attr);
			appendStringInfoString(buf, " between ");
			print_lit(buf, &n.lit[0]);
			appendStringInfoString(buf, " and ");
			print_lit(buf, &n.lit[1]);
			break;
		case COP_IN:
			{
				CondReader	list = *r;

				list.p = n.list;
				print_attr(buf, attrs, n.attr);
				appendStringInfoString(buf, n.neg ? " not in (" : " in (");
				for (uint32 i = 0; i < n.n; i++)
				{
					CondLit		lit;

					cond_read_lit(&list, &lit);
					if (i > 0)
						appendStringInfoString(buf, ", ");
					print_lit(buf, &lit);
				}
				appendStringInfoChar(buf, ')');
				break;
			}
		case COP_PREFIX:
		case COP_HAS:
			print_attr(buf, attrs, n.attr);
			appendStringInfoString(buf, n.op == COP_PREFIX ? " <@ " : " ? ");
			print_lit(buf, &n.lit[0]);
			break;
		case COP_LIKE:
			{
				StringInfoData pat;

				initStringInfo(&pat);
				for (int i = 0; i < n.lit[0].len; i++)
				{
					char		c = n.lit[0].str[i];

					if (c == '%' || c == '_' || c == '\\')
						appendStringInfoChar(&pat, '\\');
					appendStringInfoChar(&pat, c);
				}
				if (!n.exact)
					appendStringInfoChar(&pat, '%');
				print_attr(buf, attrs, n.attr);
				appendStringInfoString(buf, n.neg ? " not like " : " like ");
				print_quoted(buf, pat.data, pat.len, '\'');
				pfree(pat.data);
				break;
			}
		case COP_ISNULL:
			print_attr(buf, attrs, n.attr);
			appendStringInfoString(buf, n.neg ? " is not null" : " is null");
			break;
		case COP_BIRTHDAY:
			appendStringInfo(buf, "customer.birthday_within(%d)", n.days);
			break;
	}
}

/* The canonical text of a condition */
char *
loyalty_cond_print(const Condition *c)
{
	StringInfoData buf;
	CondReader	r;
	CondAttr   *attrs;

	loyalty_cond_verify(c);
	loyalty_cond_attrs(c, &attrs);
	cond_reader_init(&r, c);
	initStringInfo(&buf);
	cond_print_node(&buf, &r, attrs, 0);
	pfree(attrs);
	return buf.data;
}

/* Days since 1970-01-01 of a proleptic Gregorian date */
static int
days_from_civil(int y, int m, int d)
{
	int			era,
				yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Day of the week of a date: 0 Monday .. 6 Sunday */
int
cond_weekday(int y, int m, int d)
{
	/* 1970-01-01 was a Thursday */
	return ((days_from_civil(y, m, d) % 7) + 7 + 3) % 7;
}

static int
two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Is month m of year y (y < 0: any year) this long? */
static bool
valid_day(int y, int m, int d)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1] &&
		!(y >= 0 && m == 2 && d == 29 && !is_leap(y));
}

/* Read exactly 'YYYY-MM-DD', a real date */
bool
cond_read_date(const char *s, int len, int *y, int *m, int *d)
{
	if (len != 10 || s[4] != '-' || s[7] != '-' || two_digits(s) < 0 || two_digits(s + 2) < 0 ||
		(*m = two_digits(s + 5)) < 0 || (*d = two_digits(s + 8)) < 0)
		return false;
	*y = two_digits(s) * 100 + two_digits(s + 2);
	return valid_day(*y, *m, *d);
}

/* A birthday: 'YYYY-MM-DD', or 'MM-DD' (y = -1) */
static bool
read_birthday(const CondValue *v, int *y, int *m, int *d)
{
	if (v->kind != COND_SCALAR || !v->is_string)
		return false;
	if (v->len == 5 && v->str[2] == '-' &&
		(*m = two_digits(v->str)) >= 0 && (*d = two_digits(v->str + 3)) >= 0)
	{
		*y = -1;
		return valid_day(*y, *m, *d);
	}
	return cond_read_date(v->str, v->len, y, m, d);
}

/*
 * Days between a receipt date and the nearest anniversary of a birthday
 * (before or after it); 29 February is kept on the 28th in other years.
 * -1 when either date does not read.
 */
int
cond_birthday_distance(const CondValue *birthday, const CondValue *date)
{
	int			by,
				bm,
				bd,
				y,
				m,
				d,
				today,
				best = -1;

	if (!read_birthday(birthday, &by, &bm, &bd) || date->kind != COND_SCALAR || !date->is_string ||
		!cond_read_date(date->str, date->len, &y, &m, &d))
		return -1;
	today = days_from_civil(y, m, d);
	for (int year = y - 1; year <= y + 1; year++)
	{
		int			day = (bm == 2 && bd == 29 && !is_leap(year)) ? 28 : bd;
		int			dist = abs(days_from_civil(year, bm, day) - today);

		if (best < 0 || dist < best)
			best = dist;
	}
	return best;
}

struct CondDict
{
	MemoryContext cxt;
	int			n;
	int			max;
	CondAttr   *attrs;
	int		   *slots;			/* open addressing over attrs, -1 empty */
	int			nslots;
};

/* An empty dictionary, living in the current memory context */
CondDict *
loyalty_cond_dict_create(void)
{
	CondDict   *d = palloc0(sizeof(CondDict));

	d->cxt = CurrentMemoryContext;
	return d;
}

/* FNV-1a of a seed and some bytes: short names and values, no dependency */
uint32
cond_hash(uint32 seed, const char *s, int len)
{
	uint32		h = 2166136261u ^ seed;

	for (int i = 0; i < len; i++)
		h = (h ^ (unsigned char) s[i]) * 16777619u;
	return h;
}

/* The id of a name, added (and copied) when it is new */
int
loyalty_cond_dict_intern(CondDict *d, CondScope scope, const char *name, int len)
{
	int			slot;

	if (d->n * 2 >= d->nslots)
	{
		int			nslots = Max(64, d->nslots * 2);

		if (d->slots)
			pfree(d->slots);
		d->slots = MemoryContextAlloc(d->cxt, nslots * sizeof(int));
		memset(d->slots, -1, nslots * sizeof(int));
		d->nslots = nslots;
		for (int i = 0; i < d->n; i++)
		{
			slot = cond_hash(d->attrs[i].scope, d->attrs[i].name, d->attrs[i].len) & (nslots - 1);
			while (d->slots[slot] >= 0)
				slot = (slot + 1) & (nslots - 1);
			d->slots[slot] = i;
		}
	}
	for (slot = cond_hash(scope, name, len) & (d->nslots - 1); d->slots[slot] >= 0;
		 slot = (slot + 1) & (d->nslots - 1))
	{
		CondAttr   *a = &d->attrs[d->slots[slot]];

		if (a->scope == scope && a->len == len && memcmp(a->name, name, len) == 0)
			return d->slots[slot];
	}
	if (d->n >= d->max)
	{
		d->max = Max(16, d->max * 2);
		d->attrs = d->attrs ? repalloc(d->attrs, d->max * sizeof(CondAttr))
			: MemoryContextAlloc(d->cxt, d->max * sizeof(CondAttr));
	}
	d->attrs[d->n].scope = scope;
	d->attrs[d->n].len = len;
	d->attrs[d->n].name = MemoryContextAlloc(d->cxt, len + 1);
	memcpy((char *) d->attrs[d->n].name, name, len);
	((char *) d->attrs[d->n].name)[len] = '\0';
	d->slots[slot] = d->n;
	return d->n++;
}

/* How many names the dictionary holds */
int
loyalty_cond_dict_size(const CondDict *d)
{
	return d->n;
}

/* The scope and name of an id */
void
loyalty_cond_dict_name(const CondDict *d, int id, CondScope *scope,
					   const char **name, int *len)
{
	Assert(id >= 0 && id < d->n);
	*scope = d->attrs[id].scope;
	*name = d->attrs[id].name;
	*len = d->attrs[id].len;
}
