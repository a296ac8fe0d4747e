/*
 * src/kinds/bundle.c
 *
 * {"kind": "bundle", "price": 999.00,
 *  "components": [{"condition": "category <@ 'ski'", "qty": 1}, ...]}:
 * a set of components at a price.  The catalogue compiles each component's
 * condition; the search marks its lines (SPromo.part_elig).
 */
#include "postgres.h"

#include "miscadmin.h"

#include "../search.h"

static const char *const fields[] = {"kind", "price", "components", NULL};
static const char *const part_fields[] = {"condition", "qty", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	out->amount = BenefitMoney(r, "price", 0);
	BenefitNeed(r, "components", &v);
	if (!JrIsArray(&v) ||
		JsonContainerSize(v.val.binary.data) < 2 ||
		JsonContainerSize(v.val.binary.data) > BENEFIT_MAX_COMPONENTS)
		JrFail(&r->doc, "components",
			   psprintf("an array of 2 to %d components", BENEFIT_MAX_COMPONENTS));
	out->parts = palloc0(sizeof(BundlePart) * JsonContainerSize(v.val.binary.data));
	it = JsonbIteratorInit(v.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		JsonbValue	f;
		char	   *path;

		if (tok != WJB_ELEM)
			continue;
		path = psprintf("components[%d]", n);
		if (!JrIsObject(&e))
			JrFail(&r->doc, path, "an object with \"condition\" and \"qty\"");
		JrUnknownKeys(&r->doc, path, e.val.binary.data, part_fields);
		if (!JrKey(e.val.binary.data, "condition", &f))
			JrFail(&r->doc, psprintf("%s.condition", path), "a condition");
		out->parts[n].condition = BenefitCondition(r, psprintf("%s.condition", path), &f);
		out->parts[n].qty = 1;
		if (JrKey(e.val.binary.data, "qty", &f))
			out->parts[n].qty = JrInt(&r->doc, psprintf("%s.qty", path), &f, 1, 100);
		n++;
	}
	out->nparts = n;
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	BenefitRenderMoney(jb, "price", b->amount, ctx);
	JbBeginArray(jb, "components");
	for (int i = 0; i < b->nparts; i++)
	{
		JbBeginObject(jb, NULL);
		JbText(jb, "condition", loyalty_cond_print(b->parts[i].condition));
		JbInt(jb, "qty", b->parts[i].qty);
		JbEndObject(jb);
	}
	JbEndArray(jb);
}

/*
 * bundle: complete sets, one after the other, each component taking its
 * units from the dearest eligible lines left; a set is formed while its
 * units cost more than the bundle price, and the difference is spread over
 * its lines in proportion to their prices.
 */
static int64
Prepare(const SProblem *p, SPromo *c)
{
	const Benefit *b = c->benefit;
	int32	   *left = palloc(sizeof(int32) * p->nlines);
	int32	   *taken = palloc0(sizeof(int32) * p->nlines);
	int64	   *weight = palloc(sizeof(int64) * p->nlines);
	int64	   *part = palloc(sizeof(int64) * p->nlines);

	for (int i = 0; i < p->nlines; i++)
		left[i] = p->lines[i].units;
	for (int sets = 0; sets < 10000; sets++)
	{
		int64		value = 0;
		bool		complete = true;

		CHECK_FOR_INTERRUPTS();

		memset(taken, 0, sizeof(int32) * p->nlines);
		for (int k = 0; k < b->nparts && complete; k++)
			for (int q = 0; q < b->parts[k].qty; q++)
			{
				int			best = -1;

				for (int i = 0; i < p->nlines; i++)
					if (c->part_elig[k][i] && left[i] - taken[i] > 0 &&
						(best < 0 || p->lines[i].unit_price > p->lines[best].unit_price))
						best = i;
				if (best < 0)
				{
					complete = false;
					break;
				}
				taken[best]++;
				value += p->lines[best].unit_price;
			}
		if (!complete || value <= b->amount)
			break;
		for (int i = 0; i < p->nlines; i++)
		{
			weight[i] = taken[i] * p->lines[i].unit_price;
			left[i] -= taken[i];
		}
		SpreadLargestRemainder(value - b->amount, weight, NULL, p->nlines, part);
		for (int i = 0; i < p->nlines; i++)
			c->disc[i] += part[i];
	}
	pfree(left);
	pfree(taken);
	pfree(weight);
	pfree(part);
	return 0;
}

const BenefitOps BenefitKind_bundle = {
	.name = "bundle",
	.role = ROLE_LINE,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
