/*
 * test/bench/condition_match.c
 *
 * Micro-benchmark of matching receipt lines against many loyalty.condition
 * rules with the index of src/condindex.c, outside the server (linked with
 * test/fuzz/shim.c).  test/bench/run.sh builds it with the server's CFLAGS
 * (gcc -O2, no sanitizers) and runs it before the pgbench part.
 *
 * With a fixed seed it makes a catalogue (a category tree of 20 x 10 x 10
 * names, 500 brands, 50 000 SKUs with a price, most with a size, some with
 * tags; 60 cities of 10 stores each), 200 receipts of 50 lines (popular SKUs
 * more often, a store, a channel, the customer's tier and birthday, a date
 * and an hour), and for N = 100, 1 000 and 10 000 a mix of rules like a
 * retailer's.  What a promotion catalogue grows by are narrow rules, spread
 * over the whole catalogue: a category two or three names deep, brand lists,
 * SKU lists, price ranges with a category or a brand, sizes; some for a
 * customer.tier or a receipt.channel; 40% of them only in some cities or
 * stores.  Broad rules (a whole department, a tag, the receipt alone, a test
 * with nothing to look up) are 15% of the rules but at most 60: a chain has
 * only so many departments.
 *
 * Each N: parse every rule (loyalty_cond_parse), load all into one
 * dictionary, build one index, then check on the first receipts (up to ten,
 * about a million evaluations) that the index reports exactly the rules
 * that loyalty_cond_eval accepts on every line (abort if not).  Timed: per
 * receipt, loyalty_cond_index_receipt, then for each line its values
 * (loyalty_cond_set_text for sku, category, brand, price and size, an array
 * for tags) and loyalty_cond_index_line, as match_all does.  Repetitions of all receipts go on for the given seconds;
 * the figure is the median over repetitions of microseconds per receipt.
 * Evaluating every rule on every line is timed beside it on a few receipts.
 *
 * Usage: condition_match [-t seconds per N] [-s seed]
 * Prints a table, then (the names are a contract; VALUE is microseconds per
 * receipt with one decimal, R has two):
 *   bench condition.match.100 VALUE us
 *   bench condition.match.1000 VALUE us
 *   bench condition.match.10000 VALUE us ratio R vs condition.match.1000
 */
#include "postgres.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "condition.h"
#include "lib/stringinfo.h"
#include "shim.h"

#undef printf
#undef fprintf

#define NTOP		20
#define NMID		10			/* per top category */
#define NLEAF		10			/* per middle category */
#define NCATEGORIES (NTOP * NMID * NLEAF)
#define NBRANDS		500
#define NSKUS		50000
#define NCITIES		60
#define NSTORES		600			/* ten per city */
#define MAX_BROAD	60			/* rules on a whole department, a tag, the receipt */
#define NRECEIPTS	200
#define NLINES		50
#define VERIFY_EVALS 1000000	/* about this many evals check the index */
#define MAX_VERIFY	10			/* receipts */
#define MAX_TAGS	3
#define MAX_REPS	100000

static const int sizes_of_n[] = {100, 1000, 10000};

#define NSIZES lengthof(sizes_of_n)

static const char *const top_names[NTOP] = {
	"ski", "snowboard", "bike", "run", "swim", "hike", "camping", "climb",
	"fitness", "yoga", "tennis", "football", "golf", "fishing", "skate",
	"surf", "dive", "kids", "outdoor", "outlet"
};
static const char *const syllables[] = {
	"ka", "lo", "mi", "ra", "te", "so", "vin", "dar", "el", "pu", "ny", "ber",
	"gal", "tor", "shi", "mon", "qua", "zen", "fel", "rix", "ast", "bro"
};
static const char *const size_names[] = {
	"XS", "S", "M", "L", "XL", "XXL", "36", "38", "40", "42", "44", "46"
};
static const char *const tag_names[] = {
	"new", "sale", "clearance", "eco", "bestseller", "limited", "online-only",
	"gift", "bundle", "pro", "junior", "waterproof", "light", "warm", "vegan",
	"recycled", "exclusive", "premium", "starter", "travel", "last-size",
	"outlet", "winter", "summer", "collab", "repair", "rental", "demo",
	"refurbished", "preorder"
};
static const char *const channels[] = {"store", "store", "store", "app", "web", "kiosk"};
static const char *const tiers[] = {"none", "none", "silver", "silver", "gold", "platinum"};
static const char *const weekday_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

typedef struct Sku
{
	char	   *code;
	int			category;		/* leaf */
	int			brand;
	char	   *price;
	const char *size;			/* NULL: none */
	int			ntags;
	const char *tags[MAX_TAGS];
} Sku;

typedef struct Receipt
{
	const char *city;
	const char *store;
	const char *channel;
	const char *tier;
	char	   *date;
	const char *weekday;
	char	   *hour;
	char	   *birthday;
	int			skus[NLINES];
} Receipt;

/* Attribute ids of the shared dictionary */
typedef struct Ids
{
	int			sku,
				category,
				brand,
				price,
				size,
				tags,
				channel,
				city,
				store,
				weekday,
				hour,
				date,
				tier,
				birthday;
} Ids;

static char *leaf_path[NCATEGORIES];	/* "top/mid/leaf" */
static int	leaf_len[NCATEGORIES];
static char *brand_names[NBRANDS];
static char *city_names[NCITIES];
static char *store_codes[NSTORES];
static Sku	skus[NSKUS];
static Receipt receipts[NRECEIPTS];
static uint64 rng_state;

/* splitmix64: a fixed sequence for a seed */
static uint64
next_random(void)
{
	uint64		z = (rng_state += UINT64CONST(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, n) */
static int
uniform(int n)
{
	return (int) (next_random() % (uint64) n);
}

/* In [0, n), the first ones much more often: popular items */
static int
skewed(int n)
{
	double		u = (double) (next_random() >> 11) / (double) (UINT64CONST(1) << 53);

	return Min(n - 1, (int) (n * u * u * u));
}

/* Uniform in [0, 1) */
static double
unit(void)
{
	return (double) (next_random() >> 11) / (double) (UINT64CONST(1) << 53);
}

/* A made-up word of two or three syllables */
static char *
make_word(bool capital)
{
	StringInfoData buf;
	int			n = 2 + uniform(2);

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfoString(&buf, syllables[uniform(lengthof(syllables))]);
	if (capital)
		buf.data[0] += 'A' - 'a';
	return buf.data;
}

/* A monotonic clock, in seconds */
static double
seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The catalogue and the receipts, in the current memory context */
static void
make_data(void)
{
	for (int t = 0; t < NTOP; t++)
		for (int m = 0; m < NMID; m++)
		{
			char	   *mid = make_word(false);

			for (int l = 0; l < NLEAF; l++)
			{
				int			i = (t * NMID + m) * NLEAF + l;

				leaf_path[i] = psprintf("%s/%s/%s", top_names[t], mid, make_word(false));
				leaf_len[i] = strlen(leaf_path[i]);
			}
		}
	for (int b = 0; b < NBRANDS; b++)
		brand_names[b] = make_word(true);
	for (int c = 0; c < NCITIES; c++)
		city_names[c] = make_word(true);
	for (int st = 0; st < NSTORES; st++)
		store_codes[st] = psprintf("S%03d", st);
	for (int s = 0; s < NSKUS; s++)
	{
		Sku		   *k = &skus[s];
		double		price = 5.0 * exp(unit() * 6.0);	/* 5 .. 2000, log-uniform */

		k->code = psprintf("SKU-%06d", 100000 + s);
		k->category = uniform(NCATEGORIES);
		k->brand = skewed(NBRANDS);
		if (uniform(3) == 0)
			k->price = psprintf("%d", (int) price);
		else
			k->price = psprintf("%d.%02d", (int) price, uniform(4) == 0 ? 50 : 99);
		k->size = uniform(5) == 0 ? NULL : size_names[uniform(lengthof(size_names))];
		k->ntags = uniform(4) == 0 ? 1 + uniform(MAX_TAGS) : 0;
		for (int i = 0; i < k->ntags; i++)
			k->tags[i] = tag_names[skewed(lengthof(tag_names))];
	}
	for (int r = 0; r < NRECEIPTS; r++)
	{
		Receipt    *rc = &receipts[r];
		int			month = 1 + uniform(12),
					day = 1 + uniform(28);

		{
			int			store = skewed(NSTORES);	/* big stores sell more */

			rc->store = store_codes[store];
			rc->city = city_names[store / (NSTORES / NCITIES)];
		}
		rc->channel = channels[uniform(lengthof(channels))];
		rc->tier = tiers[uniform(lengthof(tiers))];
		rc->date = psprintf("2025-%02d-%02d", month, day);
		rc->weekday = weekday_names[uniform(7)];
		rc->hour = psprintf("%d", 8 + uniform(14));
		rc->birthday = psprintf("%04d-%02d-%02d", 1950 + uniform(55), 1 + uniform(12), 1 + uniform(28));
		for (int l = 0; l < NLINES; l++)
			rc->skus[l] = skewed(NSKUS);
	}
}

/* A category path, cut to depth names; rules spread over the whole tree */
static char *
category_prefix(int depth)
{
	const char *path = leaf_path[uniform(NCATEGORIES)];
	int			len = 0,
				names = 0;

	while (path[len] && !(path[len] == '/' && ++names == depth))
		len++;
	return pnstrdup(path, len);
}

/* 'a', 'b', ...: count different popular brands */
static void
append_brands(StringInfo buf, int count)
{
	for (int i = 0; i < count; i++)
		appendStringInfo(buf, "%s'%s'", i ? ", " : "", brand_names[uniform(NBRANDS)]);
}

/* How many names a narrow category rule names: two or three */
static int
prefix_depth(void)
{
	return uniform(100) < 40 ? 2 : 3;
}

/*
 * A narrow rule: what a large promotion catalogue grows by.  A category two
 * or three names deep, brands, SKUs, prices with a category or a brand,
 * sizes; some for a tier or a channel; 40% only in some cities or stores.
 */
static char *
narrow_rule(void)
{
	StringInfoData buf;
	int			u = uniform(1000);
	int			v = uniform(4);

	initStringInfo(&buf);
	if (u < 300)
	{
		appendStringInfo(&buf, "category <@ '%s'", category_prefix(prefix_depth()));
		if (v == 0)
			appendStringInfo(&buf, " and brand <> '%s'", brand_names[uniform(NBRANDS)]);
	}
	else if (u < 470)
	{
		appendStringInfoString(&buf, "brand in (");
		append_brands(&buf, 1 + uniform(6));
		appendStringInfoChar(&buf, ')');
	}
	else if (u < 620)
	{
		int			n = 1 + uniform(20);

		appendStringInfoString(&buf, "sku in (");
		for (int i = 0; i < n; i++)
			appendStringInfo(&buf, "%s'%s'", i ? ", " : "", skus[uniform(NSKUS)].code);
		appendStringInfoChar(&buf, ')');
	}
	else if (u < 780)
	{
		int			lo = 10 * (1 + uniform(50));

		if (v < 2)
			appendStringInfo(&buf, "category <@ '%s' and price between %d and %d",
							 category_prefix(prefix_depth()), lo, lo * (2 + uniform(5)));
		else
			appendStringInfo(&buf, "brand = '%s' and price >= %d.99",
							 brand_names[uniform(NBRANDS)], lo * 5 - 1);
	}
	else if (u < 860)
	{
		if (v < 2)
			appendStringInfo(&buf, "customer.tier in ('gold', 'platinum') and category <@ '%s'",
							 category_prefix(prefix_depth()));
		else
		{
			appendStringInfo(&buf, "customer.tier = '%s' and brand in (", tiers[2 + uniform(4)]);
			append_brands(&buf, 1 + uniform(3));
			appendStringInfoChar(&buf, ')');
		}
	}
	else if (u < 940)
	{
		if (v < 3)
			appendStringInfo(&buf, "receipt.channel = 'app' and category <@ '%s'",
							 category_prefix(prefix_depth()));
		else
			appendStringInfo(&buf, "receipt.channel in ('web', 'app') and sku = '%s'",
							 skus[uniform(NSKUS)].code);
	}
	else
		appendStringInfo(&buf, "size in ('%s', '%s') and category <@ '%s'",
						 size_names[uniform(lengthof(size_names))],
						 size_names[uniform(lengthof(size_names))], category_prefix(3));
	if (uniform(10) < 4)
	{
		if (uniform(2) == 0)
			appendStringInfo(&buf, " and receipt.city = '%s'", city_names[uniform(NCITIES)]);
		else
			appendStringInfo(&buf, " and receipt.store in ('%s', '%s', '%s')",
							 store_codes[uniform(NSTORES)], store_codes[uniform(NSTORES)],
							 store_codes[uniform(NSTORES)]);
	}
	return buf.data;
}

/*
 * A broad rule: a whole department, a tag, the receipt alone, or a test
 * with nothing to look up.  A chain runs a few dozen of these at a time,
 * however many narrow ones it has: there are only so many departments.
 */
static char *
broad_rule(void)
{
	StringInfoData buf;
	int			u = uniform(100);
	int			v = uniform(4);

	initStringInfo(&buf);
	if (u < 35)
		appendStringInfo(&buf, "category <@ '%s'", category_prefix(1));
	else if (u < 45)
		appendStringInfo(&buf, "customer.tier in ('gold', 'platinum') and category <@ '%s'",
						 category_prefix(1));
	else if (u < 60)
	{
		if (v < 3)
			appendStringInfo(&buf, "tags ? '%s' and category <@ '%s'",
							 tag_names[uniform(lengthof(tag_names))], category_prefix(1));
		else
			appendStringInfo(&buf, "tags ? '%s'", tag_names[uniform(lengthof(tag_names))]);
	}
	else if (u < 85)
	{
		/* the receipt alone */
		switch (v)
		{
			case 0:
				appendStringInfoString(&buf, "customer.tier = 'platinum'");
				break;
			case 1:
				appendStringInfoString(&buf, "receipt.channel = 'app' and customer.tier in ('gold', 'platinum')");
				break;
			case 2:
				appendStringInfo(&buf, "customer.birthday_within(%d)", 3 + uniform(10));
				break;
			default:
				appendStringInfoString(&buf, "receipt.weekday in ('sat', 'sun') and receipt.hour between 10 and 14");
				break;
		}
	}
	else
	{
		/* nothing to look up: evaluated on every line */
		switch (v)
		{
			case 0:
				appendStringInfo(&buf, "price >= %d", 1000 + 100 * uniform(10));
				break;
			case 1:
				appendStringInfo(&buf, "not category <@ '%s' and price < 20", top_names[uniform(NTOP)]);
				break;
			case 2:
				appendStringInfo(&buf, "brand like '%.3s%%'", brand_names[uniform(NBRANDS)]);
				break;
			default:
				appendStringInfoString(&buf, "size is null and price < 15");
				break;
		}
	}
	return buf.data;
}

/* Rule i of n: the broad ones (15%, at most MAX_BROAD) spread among the narrow */
static char *
make_rule(int i, int n)
{
	int			broad = Min(n * 15 / 100, MAX_BROAD);

	return (i % Max(n / Max(broad, 1), 1) == 0 && i / Max(n / Max(broad, 1), 1) < broad)
		? broad_rule() : narrow_rule();
}

/* Intern the attributes the rows fill (before the rules, so ids are known) */
static void
intern_ids(CondDict *dict, Ids *ids)
{
#define INTERN(field, scope, name) (ids->field = loyalty_cond_dict_intern(dict, scope, name, strlen(name)))
	INTERN(sku, COND_LINE, "sku");
	INTERN(category, COND_LINE, "category");
	INTERN(brand, COND_LINE, "brand");
	INTERN(price, COND_LINE, "price");
	INTERN(size, COND_LINE, "size");
	INTERN(tags, COND_LINE, "tags");
	INTERN(channel, COND_RECEIPT, "channel");
	INTERN(city, COND_RECEIPT, "city");
	INTERN(store, COND_RECEIPT, "store");
	INTERN(weekday, COND_RECEIPT, "weekday");
	INTERN(hour, COND_RECEIPT, "hour");
	INTERN(date, COND_RECEIPT, "date");
	INTERN(tier, COND_CUSTOMER, "tier");
	INTERN(birthday, COND_CUSTOMER, "birthday");
#undef INTERN
}

/* The receipt's and customer's values; the line's are missing */
static void
fill_receipt(CondValue *row, int nattrs, const Ids *ids, const Receipt *rc)
{
	memset(row, 0, nattrs * sizeof(CondValue));
	loyalty_cond_set_text(&row[ids->channel], rc->channel, strlen(rc->channel), true);
	loyalty_cond_set_text(&row[ids->city], rc->city, strlen(rc->city), true);
	loyalty_cond_set_text(&row[ids->store], rc->store, strlen(rc->store), true);
	loyalty_cond_set_text(&row[ids->tier], rc->tier, strlen(rc->tier), true);
	loyalty_cond_set_text(&row[ids->date], rc->date, 10, true);
	loyalty_cond_set_text(&row[ids->weekday], rc->weekday, 3, true);
	loyalty_cond_set_text(&row[ids->hour], rc->hour, strlen(rc->hour), false);
	loyalty_cond_set_text(&row[ids->birthday], rc->birthday, 10, true);
}

/* One line's values (tags: elems has room for MAX_TAGS) */
static void
fill_line(CondValue *row, const Ids *ids, const Sku *k, CondValue *elems)
{
	loyalty_cond_set_text(&row[ids->sku], k->code, 10, true);
	loyalty_cond_set_text(&row[ids->category], leaf_path[k->category], leaf_len[k->category], true);
	loyalty_cond_set_text(&row[ids->brand], brand_names[k->brand], strlen(brand_names[k->brand]), true);
	loyalty_cond_set_text(&row[ids->price], k->price, strlen(k->price), false);
	if (k->size)
		loyalty_cond_set_text(&row[ids->size], k->size, strlen(k->size), true);
	else
		memset(&row[ids->size], 0, sizeof(CondValue));
	for (int i = 0; i < k->ntags; i++)
		loyalty_cond_set_text(&elems[i], k->tags[i], strlen(k->tags[i]), true);
	memset(&row[ids->tags], 0, sizeof(CondValue));
	row[ids->tags].kind = COND_ARRAY;
	row[ids->tags].nelems = k->ntags;
	row[ids->tags].elems = elems;
}

typedef struct Setup
{
	int			n;
	CondDict   *dict;
	Ids			ids;
	char	  **texts;
	CondProgram **programs;
	CondIndex  *index;
	int			nattrs;
	CondValue  *row;
	int		   *out;
	MemoryContext scratch;
	int64		matches;
} Setup;

/* One receipt through the index: what is timed */
static void
match_receipt(Setup *s, const Receipt *rc)
{
	CondValue	elems[MAX_TAGS];

	shim_context_reset(s->scratch);
	fill_receipt(s->row, s->nattrs, &s->ids, rc);
	loyalty_cond_index_receipt(s->index, s->row);
	for (int l = 0; l < NLINES; l++)
	{
		fill_line(s->row, &s->ids, &skus[rc->skus[l]], elems);
		s->matches += loyalty_cond_index_line(s->index, s->row, s->out);
	}
}

/* One receipt, every rule on every line */
static void
naive_receipt(Setup *s, const Receipt *rc)
{
	CondValue	elems[MAX_TAGS];

	shim_context_reset(s->scratch);
	fill_receipt(s->row, s->nattrs, &s->ids, rc);
	for (int l = 0; l < NLINES; l++)
	{
		fill_line(s->row, &s->ids, &skus[rc->skus[l]], elems);
		for (int i = 0; i < s->n; i++)
			s->matches += loyalty_cond_eval(s->programs[i], s->row);
	}
}

/* The index must report exactly the rules eval accepts, line by line */
static void
verify(Setup *s, int nreceipts)
{
	CondValue	elems[MAX_TAGS];

	for (int r = 0; r < nreceipts; r++)
	{
		const Receipt *rc = &receipts[r];

		shim_context_reset(s->scratch);
		fill_receipt(s->row, s->nattrs, &s->ids, rc);
		loyalty_cond_index_receipt(s->index, s->row);
		for (int l = 0; l < NLINES; l++)
		{
			int			count,
						at = 0;

			fill_line(s->row, &s->ids, &skus[rc->skus[l]], elems);
			count = loyalty_cond_index_line(s->index, s->row, s->out);
			for (int i = 0; i < s->n; i++)
			{
				bool		expect = loyalty_cond_eval(s->programs[i], s->row);
				bool		found = at < count && s->out[at] == i;

				at += found;
				if (found != expect)
				{
					fprintf(stderr, "condition_match: N %d, receipt %d, line %d (%s %s): rule %d "
							"is %s by eval but %s by the index: %s\n",
							s->n, r, l, skus[rc->skus[l]].code, leaf_path[skus[rc->skus[l]].category],
							i, expect ? "true" : "false", found ? "reported" : "not reported",
							s->texts[i]);
					abort();
				}
			}
			if (at != count)
			{
				fprintf(stderr, "condition_match: N %d, receipt %d, line %d: the index reports %d rules, eval %d\n",
						s->n, r, l, count, at);
				abort();
			}
		}
	}
}

/* qsort order of doubles */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Build, check and time each rule count, then print the table and figures */
int
main(int argc, char **argv)
{
	double		seconds = 1.0;
	uint64		seed = 20250101;
	MemoryContext data_cxt;
	double		figure[NSIZES];
	int			verified = 0;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else
		{
			fprintf(stderr, "usage: condition_match [-t seconds per N] [-s seed]\n");
			return 2;
		}
	}
	if (!(seconds > 0))
	{
		fprintf(stderr, "condition_match: -t needs a positive number of seconds\n");
		return 2;
	}

	rng_state = seed;
	data_cxt = shim_context_create("catalogue");
	CurrentMemoryContext = data_cxt;
	make_data();

	printf("== condition.match: %d SKUs in %d categories (%d x %d x %d), %d brands; %d receipts of %d lines; seed %llu; %.1f s per N\n",
		   NSKUS, NCATEGORIES, NTOP, NMID, NLEAF, NBRANDS, NRECEIPTS, NLINES,
		   (unsigned long long) seed, seconds);
	printf("%7s %9s %11s %9s %13s %12s %10s %13s %9s %11s\n",
		   "rules", "no index", "us/receipt", "reps", "evals/receipt", "naive evals", "evaluated",
		   "naive us", "speedup", "match/line");

	for (int k = 0; k < (int) NSIZES; k++)
	{
		MemoryContext rules_cxt = shim_context_create("rules");
		Setup		s;
		double		start,
					elapsed;
		double	   *reps = malloc(MAX_REPS * sizeof(double));
		int			nreps = 0;
		int64		evals_before;
		double		evals_per_receipt,
					naive_us;
		int			naive_receipts = 0;
		int64		matches_timed;
		long		passes = 0;
		int			nverify;

		memset(&s, 0, sizeof(s));
		s.n = sizes_of_n[k];
		CurrentMemoryContext = rules_cxt;
		s.dict = loyalty_cond_dict_create();
		intern_ids(s.dict, &s.ids);
		s.texts = palloc(s.n * sizeof(char *));
		s.programs = palloc(s.n * sizeof(CondProgram *));
		for (int i = 0; i < s.n; i++)
		{
			s.texts[i] = make_rule(i, s.n);
			s.programs[i] = loyalty_cond_load(loyalty_cond_parse(s.texts[i], strlen(s.texts[i])),
											  s.dict);
		}
		s.index = loyalty_cond_index_build(s.programs, s.n, s.dict);
		s.nattrs = loyalty_cond_dict_size(s.dict);
		s.row = palloc0(s.nattrs * sizeof(CondValue));
		s.out = palloc((s.n + 1) * sizeof(int));
		s.scratch = shim_context_create("receipt");
		CurrentMemoryContext = s.scratch;

		nverify = Max(1, Min(MAX_VERIFY, VERIFY_EVALS / (s.n * NLINES)));
		verify(&s, nverify);
		verified += nverify;

		/* evaluations per receipt, over one pass */
		evals_before = loyalty_cond_index_evaluations(s.index);
		for (int r = 0; r < NRECEIPTS; r++)
			match_receipt(&s, &receipts[r]);
		evals_per_receipt = (double) (loyalty_cond_index_evaluations(s.index) - evals_before) / NRECEIPTS;

		/* timed passes over all receipts */
		s.matches = 0;
		start = seconds_now();
		do
		{
			double		t0 = seconds_now();

			for (int r = 0; r < NRECEIPTS; r++)
				match_receipt(&s, &receipts[r]);
			reps[nreps++] = (seconds_now() - t0) * 1e6 / NRECEIPTS;
			passes++;
			elapsed = seconds_now() - start;
		} while ((elapsed < seconds || nreps < 3) && nreps < MAX_REPS);
		matches_timed = s.matches;
		qsort(reps, nreps, sizeof(double), cmp_double);
		figure[k] = nreps % 2 ? reps[nreps / 2] : (reps[nreps / 2 - 1] + reps[nreps / 2]) / 2;

		/* every rule on every line, on as many receipts as a fifth of the time allows */
		start = seconds_now();
		do
		{
			naive_receipt(&s, &receipts[naive_receipts % NRECEIPTS]);
			naive_receipts++;
			elapsed = seconds_now() - start;
		} while (elapsed < seconds / 5 && naive_receipts < NRECEIPTS);
		naive_us = elapsed * 1e6 / naive_receipts;

		printf("%7d %9d %11.1f %9d %13.0f %12d %9.1f%% %13.1f %8.1fx %11.2f\n",
			   s.n, loyalty_cond_index_unindexed(s.index), figure[k], nreps,
			   evals_per_receipt, s.n * NLINES, 100.0 * evals_per_receipt / (s.n * NLINES),
			   naive_us, naive_us / figure[k],
			   (double) matches_timed / ((double) passes * NRECEIPTS * NLINES));

		free(reps);
		CurrentMemoryContext = data_cxt;
		shim_context_delete(s.scratch);
		shim_context_delete(rules_cxt);
	}
	printf("(us/receipt: median over reps of one pass over all receipts; evals/receipt: full\n"
		   " evaluations the index made; naive: every rule on every line; the index agreed with\n"
		   " eval of every rule on every line of %d receipts)\n", verified);
	printf("\n");
	printf("bench condition.match.100 %.1f us\n", figure[0]);
	printf("bench condition.match.1000 %.1f us\n", figure[1]);
	printf("bench condition.match.10000 %.1f us ratio %.2f vs condition.match.1000\n",
		   figure[2], figure[2] / figure[1]);
	return 0;
}
