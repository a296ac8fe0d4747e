/*
 * src/kinds/gift.c
 *
 * {"kind": "gift", "sku": "MUG-1", "value": 300.00, "name": "a mug"}: a gift
 * line, worth its value in the search.
 */
#include "postgres.h"

#include "../search.h"

static const char *const fields[] = {"kind", "sku", "value", "name", NULL};

static void
Parse(const BenefitReader *r, Benefit *out)
{
	JsonbValue	v;

	BenefitNeed(r, "sku", &v);
	out->sku = JrString(&r->doc, "sku", &v, 128);
	out->amount = BenefitMoney(r, "value", 0);
	if (BenefitHas(r, "name", &v) && v.type != jbvNull)
		out->name = JrString(&r->doc, "name", &v, 200);
}

static void
Render(JsonBuild *jb, const Benefit *b, const BenefitContext *ctx)
{
	JbText(jb, "sku", b->sku);
	BenefitRenderMoney(jb, "value", b->amount, ctx);
	JbText(jb, "name", b->name);
}

static int64
Prepare(const SProblem *p, SPromo *c)
{
	return c->benefit->amount * SEARCH_SCALE;
}

const BenefitOps BenefitKind_gift = {
	.name = "gift",
	.role = ROLE_GIFT,
	.fields = fields,
	.parse = Parse,
	.render = Render,
	.prepare = Prepare,
};
