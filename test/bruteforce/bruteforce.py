#!/usr/bin/env python3
"""An independent brute force for loyalty.calculate.

Everything below is written from docs/promotions.md ("The best combination",
"Points", "Spreading"), docs/points.md, docs/tables.md and docs/conditions.md
only; nothing of src/ was read, and the engine's own "search": "exhaustive"
is not used.  For random catalogues and receipts it computes the candidates,
evaluates every subset of them as the docs say, picks the best by the
documented order and compares the applied promotions, their discounts, the
receipt's discount, the candidates and their reasons, and the points earned
with what loyalty.calculate answers.

Usage: bruteforce.py [--seed N] [--catalogues 60] [--receipts 40] [--dsn DSN]
Prints "# seed N" first, then TAP-like lines "ok - ..." / "not ok - ...";
exits 1 when any check fails.  README.md lists the checks and the readings
chosen where the docs leave a choice.
"""

import argparse
import datetime as dt
import json
import random
import sys
import time
from decimal import Decimal
from fractions import Fraction

try:
    import psycopg
except ImportError:  # pragma: no cover
    sys.stderr.write("bruteforce.py needs psycopg (version 3)\n")
    sys.exit(2)

DBNAME = "loyalty_bruteforce"
PROGRAM = "bf"
AT = "2026-06-01T12:00:00+03:00"
AT_TS = dt.datetime(2026, 6, 1, 9, 0, 0, tzinfo=dt.timezone.utc)

MEXP = 2                      # money exponent of the programme (RUB)
MONEY = 10 ** MEXP
CURRENCIES = {                # code -> (exponent, money_per_unit)
    "pts": (0, Fraction(1)),
    "miles": (2, Fraction(1, 2)),
}
DEFAULT_CUR = "pts"

LINE_KINDS = ("percent_off", "amount_off", "fixed_price", "n_for_m", "bundle", "multiplier")
RECEIPT_KINDS = ("receipt_off", "points_per", "bonus_lot", "gift")
EARNING_KINDS = ("points_per", "multiplier", "bonus_lot")
INF = float("inf")


def vminor(cur):
    """Money (minor units) one minor unit of points of `cur` is worth."""
    exp, mpu = CURRENCIES[cur]
    return mpu * MONEY / (10 ** exp)


def to_minor(value, exp):
    """A decimal in major units to an integer of minor units (exact)."""
    q = Decimal(value) * (10 ** exp)
    if q != q.to_integral_value():
        raise ValueError("%s has more than %d decimals" % (value, exp))
    return int(q)


def round_half_up(x):
    """A non-negative Fraction rounded half up to an integer."""
    return int((x * 2 + 1) // 2)


def fmt(minor, exp):
    """Integer minor units -> Decimal in major units."""
    return (Decimal(minor) / (10 ** exp)).quantize(Decimal(1).scaleb(-exp)) if exp else Decimal(minor)


# ----------------------------------------------------------------------------
# JSON with exact decimals

def dumps(o):
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, (int, Decimal)):
        return str(o)
    if isinstance(o, str):
        return json.dumps(o, ensure_ascii=False)
    if isinstance(o, dict):
        return "{" + ", ".join(json.dumps(str(k)) + ": " + dumps(v) for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in o) + "]"
    if isinstance(o, Fraction):
        return str(o)
    raise TypeError(type(o))


def loads(s):
    return json.loads(s, parse_float=Decimal)


# ----------------------------------------------------------------------------
# Conditions: a small AST, rendered to the condition language and evaluated here

def c_render(c):
    op = c[0]
    if op == "eq":
        return "%s = %s" % (c[1], lit(c[2]))
    if op == "in":
        return "%s in (%s)" % (c[1], ", ".join(lit(v) for v in c[2]))
    if op == "under":
        return "%s <@ %s" % (c[1], lit(c[2]))
    if op in ("ge", "le"):
        return "%s %s %s" % (c[1], ">=" if op == "ge" else "<=", lit(c[2]))
    if op in ("and", "or"):
        return "(%s %s %s)" % (c_render(c[1]), op, c_render(c[2]))
    raise ValueError(op)


def lit(v):
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def c_eval(c, line):
    """conditions.md: a comparison with a missing attribute is false."""
    if c is None:
        return True
    op = c[0]
    if op == "and":
        return c_eval(c[1], line) and c_eval(c[2], line)
    if op == "or":
        return c_eval(c[1], line) or c_eval(c[2], line)
    v = line.get(c[1])
    if v is None:
        return False
    if op == "eq":
        return isinstance(v, str) and v == c[2]
    if op == "in":
        return isinstance(v, str) and v in c[2]
    if op == "under":
        return isinstance(v, str) and (v == c[2] or v.startswith(c[2] + "/"))
    if op == "ge":
        return isinstance(v, Decimal) and v >= c[2]
    if op == "le":
        return isinstance(v, Decimal) and v <= c[2]
    raise ValueError(op)


def c_parse(text):
    """Parses what c_render writes (for --replay)."""
    import re
    toks = re.findall(r"'(?:[^']|'')*'|<@|>=|<=|[()=,]|[A-Za-z_][A-Za-z0-9_]*|-?[0-9.]+", text)
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else None

    def take():
        pos[0] += 1
        return toks[pos[0] - 1]

    def value(t):
        if t.startswith("'"):
            return t[1:-1].replace("''", "'")
        return Decimal(t)

    def expr():
        left = term()
        while peek() in ("and", "or"):
            op = take()
            left = (op, left, term())
        return left

    def term():
        if peek() == "(":
            take()
            e = expr()
            take()
            return e
        attr = take()
        op = take()
        if op == "in":
            take()
            vals = []
            while True:
                vals.append(value(take()))
                if take() == ")":
                    break
            return ("in", attr, vals)
        v = value(take())
        return ({"=": "eq", "<@": "under", ">=": "ge", "<=": "le"}[op], attr, v)
    return expr()


CATEGORIES = ["a", "a/x", "a/y", "b", "b/x", "c"]
BRANDS = ["X", "Y", "Z"]


def rand_simple_cond(rng):
    r = rng.random()
    if r < 0.25:
        return ("eq", "category", rng.choice(CATEGORIES))
    if r < 0.45:
        return ("under", "category", rng.choice(["a", "b", "c"]))
    if r < 0.65:
        return ("in", "brand", sorted(rng.sample(BRANDS, rng.randint(1, 2))))
    if r < 0.8:
        return ("ge", "price", Decimal(rng.choice([20, 50, 100, 200, 300])))
    if r < 0.9:
        return ("ge", "qty", Decimal(rng.choice([2, 3])))
    return ("le", "price", Decimal(rng.choice([50, 100, 250])))


def rand_cond(rng, none_p=0.3):
    if rng.random() < none_p:
        return None
    r = rng.random()
    if r < 0.7:
        return rand_simple_cond(rng)
    return (rng.choice(["and", "or"]), rand_simple_cond(rng), rand_simple_cond(rng))


# ----------------------------------------------------------------------------
# Random catalogues and receipts

def rand_settings(rng):
    return {
        "max_discount_bp": rng.choice([10000, 10000, 10000, rng.randint(500, 9500), rng.choice([3000, 5000])]),
        "max_points_bp": rng.choice([10000, 10000, rng.randint(1000, 9500), 5000]),
        "min_line_price": rng.choice([Decimal("0"), Decimal("0"), Decimal("0"), Decimal("1.00"), Decimal("0.50"),
                                      Decimal("5.00"), Decimal("20.00")]),
        "discount_step": rng.choice([Decimal("0"), Decimal("0"), Decimal("0"), Decimal("1"), Decimal("0.10"),
                                     Decimal("5"), Decimal("10")]),
        "earn_weight": rng.choice([Decimal("1"), Decimal("1"), Decimal("0.5"), Decimal("0"), Decimal("0.25"),
                                   Decimal("0.3333")]),
        "accrual_rate_bp": rng.choice([0, 0, 100, 500, 1000, 250]),
        "points_excluded": rng.choice([None, None, None, None, ("under", "category", "c")]),
    }


def money(rng, lo, hi):
    """A random amount of money, lo to hi major units, sometimes round."""
    r = rng.random()
    if r < 0.3:
        return Decimal(rng.randint(lo, hi))
    if r < 0.5:
        return Decimal(rng.randint(lo * 10, hi * 10)) / 10
    return Decimal(rng.randint(lo * 100, hi * 100)) / 100


def rand_benefit(rng, kind):
    if kind == "percent_off":
        return {"kind": kind, "percent": rng.choice([Decimal(x) for x in ("5", "10", "12.5", "15", "20", "33.33",
                                                                          "50", "100", "7.77", "1", "0.5")])}
    if kind == "amount_off":
        if rng.random() < 0.3:          # small: less than a discount_step
            return {"kind": kind, "amount": Decimal(rng.randint(1, 500)) / 100}
        return {"kind": kind, "amount": money(rng, 1, 60)}
    if kind == "fixed_price":
        return {"kind": kind, "price": money(rng, 1, 300)}
    if kind == "fixed_price_points":
        cur = rng.choice(["pts", "miles"])
        if cur == "pts":
            pts = Decimal(rng.choice([rng.randint(1, 300), rng.randint(5, 60)]))
        else:
            pts = Decimal(rng.randint(100, 60000)) / 100
        return {"kind": "fixed_price", "points": pts, "currency": cur}
    if kind == "n_for_m":
        buy = rng.randint(2, 4)
        return {"kind": kind, "buy": buy, "pay": rng.randint(1, buy - 1)}
    if kind == "bundle":
        comps = []
        for _ in range(rng.choice([2, 2, 3])):
            comps.append({"condition": rand_simple_cond(rng), "qty": rng.choice([1, 1, 2])})
        return {"kind": kind, "price": money(rng, 10, 500), "components": comps}
    if kind == "receipt_off":
        b = {"kind": kind, "threshold": rng.choice([Decimal(0), money(rng, 10, 400), money(rng, 100, 1200)])}
        if rng.random() < 0.5:
            b["amount"] = money(rng, 1, 150)
        else:
            b["percent"] = rng.choice([Decimal(x) for x in ("3.33", "5", "10", "15", "25", "50")])
        return b
    if kind == "points_per":
        cur = rng.choice(["pts", "pts", "miles"])
        pts = Decimal(rng.randint(1, 10)) if cur == "pts" else Decimal(rng.randint(10, 1000)) / 100
        return {"kind": kind, "per": money(rng, 5, 100), "points": pts, "currency": cur}
    if kind == "multiplier":
        return {"kind": kind, "factor": rng.choice([Decimal("1.5"), Decimal("2"), Decimal("3"), Decimal("1.25")])}
    if kind == "bonus_lot":
        cur = rng.choice(["pts", "miles"])
        pts = Decimal(rng.randint(1, 200)) if cur == "pts" else Decimal(rng.randint(1, 50000)) / 100
        b = {"kind": kind, "points": pts, "currency": cur, "valid_days": rng.choice([30, 90])}
        if rng.random() < 0.3:
            b["restriction"] = c_render(rand_simple_cond(rng))
        return b
    if kind == "gift":
        return {"kind": kind, "sku": "GIFT-%d" % rng.randint(1, 9), "value": money(rng, 1, 50), "name": "Gift"}
    raise ValueError(kind)


ALL_KINDS = ["percent_off", "amount_off", "fixed_price", "fixed_price_points", "n_for_m", "bundle",
             "receipt_off", "points_per", "multiplier", "bonus_lot", "gift"]


def rand_catalogue(rng, ci, most=8):
    n = rng.choice(list(range(1, most + 1)) + list(range(max(1, most - 3), most + 1)) + [most])
    promos = []
    codes = set()
    for i in range(n):
        kind = rng.choice(ALL_KINDS + ["fixed_price_points", "receipt_off"])
        if promos and rng.random() < 0.12:
            # a twin of an earlier promotion (same benefit and lines): ties and equal candidates
            twin = rng.choice(promos)
            while True:
                code = rng.choice(["P", "Q", "R", "a", "b", "Z"]) + str(rng.randint(0, 99))
                if code not in codes:
                    codes.add(code)
                    break
            promos.append(dict(twin, code=code, priority=rng.choice([twin["priority"], 0, 1, 2]),
                               group=rng.choice([twin["group"], None, "g1"]), exclusive=rng.random() < 0.1))
            continue
        while True:
            code = rng.choice(["P", "Q", "R", "a", "b", "Z", "P-", "P_"]) + str(rng.randint(0, 99))
            if code not in codes:
                codes.add(code)
                break
        ben = rand_benefit(rng, kind)
        cond = None if kind == "bundle" and rng.random() < 0.8 else rand_cond(rng)
        promos.append({
            "code": code,
            "benefit": ben,
            "cond": cond,
            "group": rng.choice([None, None, "g1", "g2"]),
            "priority": rng.choice([0, 0, 1, 2]),
            "exclusive": rng.random() < 0.1,
        })
    return {"settings": rand_settings(rng), "promotions": promos}


def rand_receipt(rng):
    lines = []
    prices = []
    for i in range(rng.randint(1, 8)):
        if prices and rng.random() < 0.2:
            price = rng.choice(prices)        # equal prices: the tie rules of n_for_m and bundle
        else:
            price = money(rng, 1, 500)
        prices.append(price)
        r = rng.random()
        if r < 0.85:
            qty = Decimal(rng.choice([1, 1, 1, 2, 2, 3, 4]))
        else:
            qty = rng.choice([Decimal("0.5"), Decimal("1.25"), Decimal("2.125"), Decimal("0.333"), Decimal("1.5")])
        line = {"line": i + 1, "qty": qty, "price": price, "category": rng.choice(CATEGORIES)}
        if rng.random() < 0.85:
            line["brand"] = rng.choice(BRANDS)
        lines.append(line)
    rec = {"program": PROGRAM, "at": AT, "lines": lines, "explain": True}  # the whole answer: lines by promotion, not_applied
    r = rng.random()
    if r < 0.85:
        rec["customer"] = {"card": rng.choice(["10000001", "10000001", "10000001", "10000002", "10000002",
                                               "10000003", "10000004"])}
    pr = rng.random()
    if pr < 0.35:
        rec["points"] = "max"
    elif pr < 0.55:
        rec["points"] = Decimal(rng.randint(1, 400))
    elif pr < 0.85:
        obj = {}
        for cur in ("pts", "miles"):
            x = rng.random()
            if x < 0.4:
                obj[cur] = "max"
            elif x < 0.8:
                obj[cur] = Decimal(rng.randint(1, 400)) if cur == "pts" else Decimal(rng.randint(1, 80000)) / 100
        if not obj:
            obj["miles"] = "max"
        rec["points"] = obj
    return rec


# ----------------------------------------------------------------------------
# The model

class Promo:
    pass


class Lot:
    def __init__(self, lid, cur, remaining, valid_from, valid_to, priority, restriction_cond):
        self.id, self.cur, self.remaining = lid, cur, remaining
        self.valid_from, self.valid_to, self.priority = valid_from, valid_to, priority
        self.cond = restriction_cond

    def order_key(self):
        # restricted first, then the soonest to expire (never last), then priority, then the oldest
        return (0 if self.cond is not None else 1,
                self.valid_to.timestamp() if self.valid_to else INF, -self.priority, self.id)


def make_promos(cat):
    out = []
    for p in cat["promotions"]:
        b = p["benefit"]
        q = Promo()
        q.code, q.b, q.cond = p["code"], b, p["cond"]
        q.group, q.priority, q.exclusive = p["group"], p["priority"], p["exclusive"]
        q.kind = b["kind"]
        q.pp = q.kind == "fixed_price" and "points" in b
        q.line_benefit = q.kind in LINE_KINDS
        out.append(q)
    return out


def compute(cat, rec, customers, now_ts, opts):
    """Everything the docs say about one receipt: returns a dict."""
    st = cat["settings"]
    step = to_minor(st["discount_step"], MEXP) if st["discount_step"] else 0
    minp = to_minor(st["min_line_price"], MEXP)
    maxd, maxp, bp = st["max_discount_bp"], st["max_points_bp"], st["accrual_rate_bp"]
    ew = Fraction(st["earn_weight"])
    kval = {c: (vminor(c) * 10000 * ew).__floor__() for c in CURRENCIES}   # value of a point x 10000

    # lines
    L = []
    for ln in rec["lines"]:
        q = Decimal(ln["qty"])
        price_m = to_minor(ln["price"], MEXP)
        A = round_half_up(Fraction(price_m) * Fraction(q))
        u = int(q) if q == q.to_integral_value() and q <= 10000 else 0
        F = min(A, minp)
        attrs = {"category": ln.get("category"), "brand": ln.get("brand"), "price": Decimal(ln["price"]),
                 "qty": q}
        L.append({"A": A, "u": u, "F": F, "pm": price_m, "q": q, "attrs": attrs,
                  "excluded": st["points_excluded"] is not None and c_eval(st["points_excluded"], attrs)})
    n = len(L)
    T = sum(l["A"] for l in L)

    # customer and the points it may spend
    cust = None
    if "customer" in rec:
        cust = customers.get(rec["customer"]["card"])
    request = {}                                   # currency -> minor units or INF
    pr = rec.get("points")
    if cust is not None and pr is not None:
        if pr == "max":
            request[DEFAULT_CUR] = INF
        elif isinstance(pr, dict):
            for c, v in pr.items():
                request[c] = INF if v == "max" else to_minor(v, CURRENCIES[c][0])
        else:
            request[DEFAULT_CUR] = to_minor(pr, CURRENCIES[DEFAULT_CUR][0])
    lots = []
    if cust is not None:
        lo, hi = min(AT_TS, now_ts), max(AT_TS, now_ts)
        lots = [l for l in cust["lots"] if l.valid_from <= lo and (l.valid_to is None or l.valid_to > hi)]
        lots.sort(key=Lot.order_key)
    may_spend = cust is not None and cust["status"] == "active"

    promos = make_promos(cat)
    # what each benefit gives on its own
    for p in promos:
        b = p.b
        p.lines = [i for i in range(n) if c_eval(p.cond, L[i]["attrs"])]
        p.d = [0] * n
        p.worth = [0] * n
        if p.kind == "percent_off":
            pc = to_minor(b["percent"], 2)
            for i in p.lines:
                d = L[i]["A"] * pc // 10000
                if step:
                    d -= d % step
                p.d[i] = d
        elif p.kind == "amount_off":
            am = to_minor(b["amount"], MEXP)
            for i in p.lines:
                p.d[i] = min(L[i]["A"], round_half_up(am * Fraction(L[i]["q"])))
        elif p.kind == "fixed_price" and not p.pp:
            pm = to_minor(b["price"], MEXP)
            for i in p.lines:
                p.d[i] = max(0, L[i]["A"] - round_half_up(pm * Fraction(L[i]["q"])))
        elif p.pp:
            p.cur = b["currency"]
            per_unit = to_minor(b["points"], CURRENCIES[p.cur][0])
            p.P = [0] * n
            p.W = [0] * n
            p.pplines = []
            for i in p.lines:
                l = L[i]
                if l["u"] > 0 and not l["excluded"] and may_spend:
                    P = per_unit * l["u"]
                    W = (P * vminor(p.cur)).__floor__()
                    if W < l["A"]:
                        p.P[i], p.W[i], p.d[i] = P, W, l["A"] - W
                        p.pplines.append(i)
        elif p.kind == "n_for_m":
            buy, pay = b["buy"], b["pay"]
            units = sum(L[i]["u"] for i in p.lines)
            free = units // buy * (buy - pay)
            # the cheapest units; the lines at the price of the last free
            # unit share what is left of the free units, by their units,
            # each at most its room
            ulines = [i for i in p.lines if L[i]["u"] > 0]
            if free > 0:
                below = 0
                for E in sorted({L[i]["pm"] for i in ulines}):
                    at = [i for i in ulines if L[i]["pm"] == E]
                    n_at = sum(L[i]["u"] for i in at)
                    if below + n_at >= free:
                        break
                    below += n_at
                for i in ulines:
                    if L[i]["pm"] < E:
                        p.d[i] = L[i]["A"]
                parts = spread((free - below) * E, [L[i]["u"] for i in at],
                               [L[i]["A"] - L[i]["F"] for i in at])
                for i, part in zip(at, parts):
                    p.d[i] = part
        elif p.kind == "bundle":
            price = to_minor(b["price"], MEXP)
            left = [L[i]["u"] if i in p.lines else 0 for i in range(n)]
            for _ in range(10000):
                taken = []           # line of each unit of the set
                ok = True
                trial = left[:]
                for comp in b["components"]:
                    for _k in range(comp["qty"]):
                        best = None
                        for i in range(n):
                            if trial[i] > 0 and c_eval(comp["condition"], L[i]["attrs"]):
                                if best is None or L[i]["pm"] > L[best]["pm"]:
                                    best = i
                        if best is None:
                            ok = False
                            break
                        trial[best] -= 1
                        taken.append(best)
                    if not ok:
                        break
                if not ok:
                    break
                cost = sum(L[i]["pm"] for i in taken)
                if cost <= price:
                    break
                left = trial
                weights = {}
                for i in taken:
                    weights[i] = weights.get(i, 0) + L[i]["pm"]
                idx = sorted(weights)
                parts = spread(cost - price, [weights[i] for i in idx])
                for i, part in zip(idx, parts):
                    p.d[i] += part
        elif p.kind == "multiplier":
            fac = Fraction(b["factor"])
            p.mpts = [0] * n
            for i in p.lines:
                p.mpts[i] = (L[i]["A"] * bp * (fac - 1) / 10000 / vminor(DEFAULT_CUR)).__floor__()
        # worth
        for i in p.lines:
            if p.kind == "multiplier":
                v, kw = vminor(DEFAULT_CUR), Fraction(kval[DEFAULT_CUR], 10000)
                if opts.mult_worth == "a":      # (points + 1) at the money value of a point
                    p.worth[i] = max(1, ((p.mpts[i] + 1) * v).__floor__())
                elif opts.mult_worth == "b":    # points at the money value, plus 1
                    p.worth[i] = max(1, (p.mpts[i] * v).__floor__() + 1)
                elif opts.mult_worth == "c":    # (points + 1) at the value of step 6 (earn_weight)
                    p.worth[i] = max(1, ((p.mpts[i] + 1) * kw).__floor__())
                else:                           # points at the value of step 6, plus 1
                    p.worth[i] = max(1, (p.mpts[i] * kw).__floor__() + 1)
            else:
                p.worth[i] = p.d[i]

    # the checks
    reasons = {}
    cands = []
    for p in promos:
        if not p.lines:
            continue                  # not considered
        r = None
        if cust is None and p.kind in EARNING_KINDS:
            r = "customer_required"
        elif cust is not None and cust["status"] == "blocked" and p.kind in EARNING_KINDS:
            r = "customer_blocked"
        elif p.pp and not may_spend:
            r = "points_not_spendable"
        elif p.pp and not request.get(p.cur):
            r = "points_not_requested"
        elif p.line_benefit and p.kind != "multiplier" and not any(p.d[i] for i in p.lines):
            r = "no_benefit"
        elif p.kind == "multiplier" and opts.mult_nobenefit and not any(p.mpts[i] for i in p.lines):
            r = "no_benefit"
        elif p.kind == "points_per" and opts.pp_nobenefit and \
                sum(L[i]["A"] for i in p.lines) < to_minor(p.b["per"], MEXP):
            r = "no_benefit"
        elif p.kind == "receipt_off" and sum(L[i]["A"] for i in p.lines) < to_minor(p.b["threshold"], MEXP):
            r = "below_threshold"
        if r:
            reasons[p.code] = r
        else:
            cands.append(p)
    cands.sort(key=lambda p: (-p.priority, p.code.encode()))
    for k, p in enumerate(cands):
        p.k = k

    ctx = {"L": L, "T": T, "n": n, "lots": lots, "request": request, "step": step, "maxd": maxd,
           "maxp": maxp, "bp": bp, "kval": kval, "opts": opts}

    # The choices, in the candidates' order: a price in points (not exclusive)
    # that may take several lines is a choice on each, in line order.
    choices = []
    for p in cands:
        if p.pp and not p.exclusive and len(p.pplines) > 1:
            choices.extend((p, i) for i in p.pplines)
        else:
            choices.append((p, None))
    m = len(choices)
    if m > opts.max_choices:
        return None
    best = second = None
    evaluated = 0
    for mask in range(1 << m):
        S = []
        offer = {}
        for x in range(m):
            if mask >> x & 1:
                p, i = choices[x]
                if not S or S[-1] is not p:
                    S.append(p)
                if i is not None:
                    offer.setdefault(p.code, set()).add(i)
        if not valid_combination(S):
            continue
        ctx["offer"] = offer
        ev = evaluate(S, ctx)
        ev["offer"] = offer
        evaluated += 1
        if opts.trace:
            print("#   %-30s value %s before cut %s applies %s dropped %s" % (
                "{" + ", ".join(p.code + ("" if p.code not in offer else str(sorted(offer[p.code])))
                                for p in S) + "}", Decimal(ev["value"]).scaleb(-4 - MEXP),
                Decimal(ev["value_before"]).scaleb(-4 - MEXP), sorted(ev["applied"]), sorted(ev["capdropped"])))
        taken = {(c, i) for (_k, i, c, _t, _W) in ev["pp_taken"]}
        applied_bits = tuple(1 if (p.code in ev["applied"] if i is None else (p.code, i) in taken) else 0
                             for (p, i) in choices)
        incl_bits = tuple(-(mask >> k & 1) for k in range(m))
        key = (ev["value"], ev["value_before"], applied_bits, incl_bits)
        if best is None or key > best[0]:
            second = best[0] if best is not None else None
            best = (key, ev, S)
        elif second is None or key > second:
            second = key
    ev, S = best[1], best[2]
    ctx["offer"] = ev["offer"]
    flags = set(ev["flags"])
    if second is not None:
        for j, rule in enumerate(("value", "value before the cut", "tie rule (applied)",
                                  "rule 4 (included)")):
            if best[0][j] != second[j]:
                flags.add("best decided by " + rule)
                break
    if len(S) == 1 and S[0].exclusive:
        flags.add("best is an exclusive promotion")
    for p in S:
        if p.code in ev["applied"]:
            flags.add("best applies a " + ("fixed_price (points)" if p.pp else p.kind))
        if p.code in ev["applied"] and p.kind in ("multiplier", "points_per") and not p.pp:
            flags.add("best has an earning promotion (valued on the full amounts)")
    # reasons of the candidates the best does not apply
    # The points the receipt spends beyond the prices in points, and what is earned on the money
    # paid (Points).
    points = pay_and_earn(ev, S, ctx, cust, request, opts.keep_unused)
    # "The answer lists under applied the promotions of the best combination that give something
    # in the answer: money off after the cap, a price in points taken, points earned on the money
    # paid, a gift."
    pp_codes = {c for (_k, _i, c, _t, _W) in ev["pp_taken"]}
    applied = set()
    for p in S:
        if ev["promo_after"].get(p.code, 0) > 0 or p.code in pp_codes or p.kind == "gift" or \
                points["by_promo"].get(p.code, 0) > 0:
            applied.add(p.code)
    # "Every other candidate is listed under not_applied, with the reason it has when added to
    # the best combination: below_threshold (a receipt discount whose lines then come to less than
    # its threshold), cap (a price in points the caps then leave no room for, or a discount of the
    # best that the cap cut to nothing), else excluded_by_better."
    notes = {}
    for p in cands:
        if p.code in applied:
            continue
        ev2 = ev
        if p not in S:
            # joining the best, a price in points is offered every line it may take
            S2 = sorted(S + [p], key=lambda q: q.k)
            ctx["offer"] = ev["offer"]
            ev2 = evaluate(S2, ctx) if valid_combination(S2) else None
        if ev2 is not None and p.code in ev2["below"]:
            reasons[p.code] = "below_threshold"
        elif ev2 is not None and p.pp and p.code in ev2["capdropped"]:
            # read as: dropped by the caps from one of its lines at least
            reasons[p.code] = "cap"
        elif p in S and ev["promo_before"].get(p.code, 0) > 0 and ev["promo_after"].get(p.code, 0) == 0:
            reasons[p.code] = "cap"
        else:
            reasons[p.code] = "excluded_by_better"
            if ev2 is not None and ev2 is not ev and ev2["value"] <= ev["value"] < ev2["value_before"]:
                notes[p.code] = "joining the best would add something before the cap's cut, nothing after it"
    out = {
        "T": T,
        "candidates": [p.code for p in cands],
        "applied": applied,
        "applied_as_valued": ev["applied"],
        "discount": ev["discount"],
        "promo_discount": {c: ev["promo_after"].get(c, 0) for c in applied},
        # capped: the cut of step 4 took some of it, or (a reading: the docs say nothing of it)
        # the caps dropped a price in points from one of its lines
        "capped": sorted(c for c in applied if ev["promo_after"].get(c, 0) < ev["promo_before"].get(c, 0)
                         or c in ev["capdropped"]),
        "reasons": reasons,
        "reason_notes": notes,
        "value": ev["value"],
        "value_before": ev["value_before"],
        "included": [p.code for p in S],
        "evaluated": evaluated,
        "flags": flags,
        "lines": [{c: x for c, x in sorted(lp.items())} for lp in ev["line_promo"]],
        "kinds": {p.code: p.kind for p in promos},
        "opts_keep_unused": opts.keep_unused,
        "earn_cur": {p.code: (DEFAULT_CUR if p.kind == "multiplier" else p.b.get("currency"))
                     for p in promos if p.kind in EARNING_KINDS},
        "points": points,
        "points_alt": pay_and_earn(ev, S, ctx, cust, request, not opts.keep_unused),
    }
    return out


def valid_combination(S):
    """None with an exclusive promotion and anything else; at most one receipt
    benefit of each stacking group."""
    if len(S) > 1 and any(p.exclusive for p in S):
        return False
    groups = set()
    for p in S:
        if p.kind in RECEIPT_KINDS and p.group is not None:
            if p.group in groups:
                return False
            groups.add(p.group)
    return True


def spread(X, weights, caps=None):
    """Spreading: X over the weights, largest remainder (ties: the earlier),
    each part at most its cap.  Every line whose exact share of what is left
    (left x weight / the weights of the lines still in) reaches what it may
    still take takes that and drops out, and the rest is shared again among
    the others; when none does, each takes the floor of its share and the
    units left go to the largest remainders.  The parts add up to X unless
    every cap is reached."""
    k = len(weights)
    parts = [0] * k
    if X <= 0 or k == 0:
        return parts
    active = [i for i in range(k) if weights[i] > 0 and (caps is None or caps[i] > 0)]
    left = X
    while left > 0 and active:
        W = sum(weights[i] for i in active)
        if W == 0:
            break
        full = [] if caps is None else \
            [i for i in active if left * weights[i] >= (caps[i] - parts[i]) * W]
        if full:
            for i in full:
                left -= caps[i] - parts[i]
                parts[i] = caps[i]
            active = [i for i in active if i not in full]
            continue
        share = {i: left * weights[i] // W for i in active}
        rem = sorted((-(left * weights[i] % W), i) for i in active)
        extra = left - sum(share.values())
        for _r, i in rem[:extra]:
            share[i] += 1
        for i in active:
            parts[i] += share[i]
        left = 0
    return parts


def spread_nore(X, weights, caps):
    """The other reading: shares by weight, each cut to its cap, nothing moved."""
    parts = spread(X, weights)
    return [min(p, c) for p, c in zip(parts, caps)]


def evaluate(S, ctx):
    dropped = set()
    flags = set()
    while True:
        ev = evaluate_once(S, ctx, dropped)
        flags |= ev["flags"]
        if ev.get("drop") is None:
            ev["capdropped"] = {p for (p, _i) in dropped}
            ev["flags"] = flags
            return ev
        dropped.add(ev["drop"])


def lots_for(ctx, cur, attrs):
    return [l for l in ctx["lots"] if l.cur == cur and (l.cond is None or c_eval(l.cond, attrs))]


def evaluate_once(S, ctx, dropped):
    L, n, T = ctx["L"], ctx["n"], ctx["T"]
    opts = ctx["opts"]
    # 1. prices in points reserve their points
    lot_left = {l.id: l.remaining for l in ctx["lots"]}
    req_left = dict(ctx["request"])
    reserved = set()
    flags = set()
    for p in S:
        if not p.pp:
            continue
        offered = ctx.get("offer", {}).get(p.code)
        for i in p.pplines:
            if (p.code, i) in dropped or (offered is not None and i not in offered):
                continue
            P = p.P[i]
            if req_left.get(p.cur, 0) < P:
                flags.add("a price in points not reserved: beyond the request")
                continue
            elig = lots_for(ctx, p.cur, L[i]["attrs"])
            if sum(lot_left[l.id] for l in elig) < P:
                flags.add("a price in points not reserved: not enough in the lots")
                continue
            if any(l.cond is not None for l in elig):
                flags.add("a price in points reserved from a restricted lot")
            need = P
            for l in elig:
                t = min(need, lot_left[l.id])
                lot_left[l.id] -= t
                need -= t
                if need == 0:
                    break
            req_left[p.cur] -= P
            reserved.add((p.code, i))
    # 2. line benefits
    room = [l["A"] - l["F"] for l in L]
    off = [0] * n                    # money off so far (all)
    wpaid = [0] * n                  # points of prices in points
    parts = [dict() for _ in range(n)]   # non-pp money off per line per promotion
    pp_taken = []                     # (k, i, code, off, W)
    holds = set()
    for i in range(n):
        holders = []
        best = {}
        for p in S:
            if not p.line_benefit or i not in p.lines:
                continue
            if p.pp and (p.code, i) not in reserved:
                continue
            if p.group is None:
                holders.append(p)
            elif p.group not in best or p.worth[i] > best[p.group].worth[i]:
                best[p.group] = p
        holders += best.values()
        holders.sort(key=lambda p: p.k)
        for p in holders:
            holds.add((p.code, i))
            if p.kind == "multiplier":
                continue
            if p.pp:
                W = p.W[i]
                if room[i] >= W:
                    t = min(p.d[i], room[i] - W)
                    room[i] -= W + t
                    off[i] += t
                    wpaid[i] += W
                    pp_taken.append((p.k, i, p.code, t, W))
                else:
                    flags.add("a price in points refused for lack of room")
                continue
            t = min(p.d[i], room[i])
            room[i] -= t
            off[i] += t
            if t:
                parts[i][p.code] = parts[i].get(p.code, 0) + t
    # 3. receipt discounts
    below = set()
    for p in S:
        if p.kind != "receipt_off":
            continue
        now = [L[i]["A"] - off[i] - wpaid[i] for i in p.lines]
        base = sum(now)
        thr = to_minor(p.b["threshold"], MEXP)
        if base >= thr and base > 0:
            if "amount" in p.b and p.b["amount"] is not None:
                X = to_minor(p.b["amount"], MEXP)
            else:
                X = base * to_minor(p.b["percent"], 2) // 10000
                if ctx["step"]:
                    X -= X % ctx["step"]
            caps = [room[i] for i in p.lines]
            sp = spread(X, now, caps) if opts.spread == "redistribute" else spread_nore(X, now, caps)
            if any(t == c for t, c in zip(sp, caps)) and sum(sp) < X:
                flags.add("a receipt discount larger than its lines' room")
            elif any(t == c for t, c in zip(sp, caps)):
                flags.add("a receipt discount spread up to some line's room")
            for i, t in zip(p.lines, sp):
                if t:
                    room[i] -= t
                    off[i] += t
                    parts[i][p.code] = parts[i].get(p.code, 0) + t
        elif base < thr:
            below.add(p.code)
    # 4. the caps
    cap = T * ctx["maxd"] // 10000
    pp_sum = sum(t + W for (_k, _i, _c, t, W) in pp_taken)
    if pp_taken and pp_sum > cap:
        last = max(pp_taken, key=lambda x: (x[0], x[1]))
        return {"drop": (last[2], last[1]), "flags": {"a price in points dropped by max_discount_bp"}}
    remaining = cap - pp_sum
    O = sum(sum(pt.values()) for pt in parts)
    after = [dict(pt) for pt in parts]
    if O > remaining:
        flags.add("the cap cuts the other discounts" + (" to nothing" if remaining == 0 else ""))
        C = O - remaining
        line_o = [sum(pt.values()) for pt in parts]
        line_cut = spread(C, line_o)
        for i in range(n):
            if line_cut[i]:
                codes = sorted(parts[i], key=lambda c: ctx_k(S, c))
                cs = spread(line_cut[i], [parts[i][c] for c in codes])
                for c, x in zip(codes, cs):
                    after[i][c] -= x
    O_after = min(O, remaining)
    pp_off = sum(t for (_k, _i, _c, t, _W) in pp_taken)
    Wsum = sum(W for (_k, _i, _c, _t, W) in pp_taken)
    if pp_taken and Wsum * 10000 > ctx["maxp"] * (T - pp_off - O_after):
        last = max(pp_taken, key=lambda x: (x[0], x[1]))
        return {"drop": (last[2], last[1]), "flags": {"a price in points dropped by max_points_bp"}}
    # 5. points earned, on the full amounts
    earned = {}            # code -> (cur, minor points)
    for p in S:
        if p.kind == "multiplier":
            s = sum(L[i]["A"] for i in p.lines if (p.code, i) in holds)
            pts = (s * ctx["bp"] * (Fraction(p.b["factor"]) - 1) / 10000 / vminor(DEFAULT_CUR)).__floor__()
            earned[p.code] = (DEFAULT_CUR, pts)
        elif p.kind == "points_per":
            s = sum(L[i]["A"] for i in p.lines)
            per = to_minor(p.b["per"], MEXP)
            earned[p.code] = (p.b["currency"], s // per * to_minor(p.b["points"], CURRENCIES[p.b["currency"]][0]))
        elif p.kind == "bonus_lot":
            earned[p.code] = (p.b["currency"], to_minor(p.b["points"], CURRENCIES[p.b["currency"]][0]))
    # 6. its value (x 10000, exact)
    gifts = sum(to_minor(p.b["value"], MEXP) for p in S if p.kind == "gift")
    ptsval = sum(pts * ctx["kval"][cur] for (cur, pts) in earned.values())
    before = O + pp_off
    aft = O_after + pp_off
    value = 10000 * (aft + gifts) + ptsval
    value_before = 10000 * (before + gifts) + ptsval
    promo_before, promo_after = {}, {}
    for i in range(n):
        for c, x in parts[i].items():
            promo_before[c] = promo_before.get(c, 0) + x
        for c, x in after[i].items():
            promo_after[c] = promo_after.get(c, 0) + x
    pp_codes = set()
    for (_k, i, c, t, W) in pp_taken:
        promo_before[c] = promo_before.get(c, 0) + t
        promo_after[c] = promo_after.get(c, 0) + t
        pp_codes.add(c)
    applied = set()
    for p in S:
        if promo_before.get(p.code, 0) > 0 or p.code in pp_codes or p.kind == "gift" or \
                (p.code in earned and earned[p.code][1] > 0):
            applied.add(p.code)
    # the lines after the best, for the points the receipt spends
    line_off = [sum(after[i].values()) for i in range(n)]
    line_promo = [dict((c, x) for c, x in after[i].items() if x) for i in range(n)]
    for (_k, i, c, t, W) in pp_taken:
        line_off[i] += t
        if t:
            line_promo[i][c] = line_promo[i].get(c, 0) + t
    return {"value": value, "value_before": value_before, "applied": applied, "discount": aft,
            "promo_before": promo_before, "promo_after": promo_after, "below": below, "earned": earned,
            "line_off": line_off, "wpaid": wpaid, "pp_taken": pp_taken, "holds": holds, "pp_codes": pp_codes,
            "reserved": reserved, "flags": flags, "line_promo": line_promo,
            "reserved_lots": None, "Wsum": Wsum, "cap": cap}


def ctx_k(S, code):
    for p in S:
        if p.code == code:
            return p.k
    return 1 << 30


def pay_and_earn(ev, S, ctx, cust, request, keep_unused=False):
    """Points: the points the receipt asks to spend beyond prices in points,
    then the points earned on the money paid.  Returns {"spent": {cur: minor},
    "earned": {cur: minor}}."""
    L, n, T = ctx["L"], ctx["n"], ctx["T"]
    if cust is None:
        return {"spent": {}, "earned": {}, "by_promo": {}, "line_money": None}
    # step 1 again: every line a price in points reserved, in the candidates'
    # order then line order, from the lots that may pay it; then the points of
    # a line it did not take go back to the lots they came from
    lot_left = {l.id: l.remaining for l in ctx["lots"]}
    req_left = dict(request)
    spent = {}
    taken = {(c, i) for (_k, i, c, _t, _W) in ev["pp_taken"]}
    took = []
    for (code, i) in sorted(ev["reserved"] | taken, key=lambda x: (ctx_k(S, x[0]), x[1])):
        p = [q for q in S if q.code == code][0]
        need = p.P[i]
        parts = []
        for l in lots_for(ctx, p.cur, L[i]["attrs"]):
            t = min(need, lot_left[l.id])
            lot_left[l.id] -= t
            need -= t
            parts.append((l.id, t))
        took.append((code, i, p, parts))
    for (code, i, p, parts) in took:
        if (code, i) in taken:
            req_left[p.cur] -= p.P[i]
            spent[p.cur] = spent.get(p.cur, 0) + p.P[i]
        elif keep_unused:
            # the other reading: a line a price in points reserved in step 1 but did
            # not take keeps its points out of what the receipt may spend
            req_left[p.cur] -= p.P[i]
        else:
            for (lid, t) in parts:
                lot_left[lid] += t
    D = ev["discount"]
    # within the caps: discounts plus all points paid at most cap; points paid at most
    # max_points_bp of what is left after the discounts
    room_money = min(ev["cap"] - D - ev["Wsum"], ctx["maxp"] * (T - D) // 10000 - ev["Wsum"])
    room_money = max(0, room_money)
    left = [L[i]["A"] - ev["line_off"][i] - ev["wpaid"][i] for i in range(n)]
    pay = [0] * n
    if cust["status"] == "active" and request:
        # lot by lot in the spending order, each spread over the lines it may pay
        # (Points): each line at most the points its room above the floor buys;
        # the lot pays the least of its points, what the receipt may still spend,
        # the lines' most and what the caps leave; spread in proportion to what
        # the lines come to now; each line's part pays whole minor units of
        # money and takes only the points that money needs
        for l in ctx["lots"]:
            if l.cur not in req_left or lot_left[l.id] <= 0 or room_money <= 0:
                continue
            v = vminor(l.cur)
            most = [0] * n
            for i in range(n):
                if L[i]["excluded"] or (l.cond is not None and not c_eval(l.cond, L[i]["attrs"])):
                    continue
                room = left[i] - L[i]["F"] - pay[i]
                if room > 0:
                    most[i] = (room / v).__floor__()
            npts = min(lot_left[l.id], req_left[l.cur], sum(most), (room_money / v).__floor__())
            if npts <= 0:
                continue
            weights = [left[i] - pay[i] if most[i] > 0 else 0 for i in range(n)]
            parts = spread(npts, weights, most)
            for i in range(n):
                m = (parts[i] * v).__floor__()
                if m <= 0:
                    continue
                pts = (m / v).__ceil__()
                lot_left[l.id] -= pts
                req_left[l.cur] -= pts
                spent[l.cur] = spent.get(l.cur, 0) + pts
                pay[i] += m
                room_money -= m
    paid = [left[i] - pay[i] for i in range(n)]
    earned = {}
    by_promo = {}
    if cust["status"] != "blocked":
        bp = ctx["bp"]
        base = (Fraction(sum(paid) * bp, 10000) / vminor(DEFAULT_CUR)).__floor__()
        if base:
            earned[DEFAULT_CUR] = base
        for p in S:
            cur, pts = None, 0
            if p.kind == "multiplier":
                s = sum(paid[i] for i in p.lines if (p.code, i) in ev["holds"])
                cur = DEFAULT_CUR
                pts = (s * bp * (Fraction(p.b["factor"]) - 1) / 10000 / vminor(DEFAULT_CUR)).__floor__()
            elif p.kind == "points_per":
                s = sum(paid[i] for i in p.lines)
                cur = p.b["currency"]
                pts = s // to_minor(p.b["per"], MEXP) * to_minor(p.b["points"], CURRENCIES[cur][0])
            elif p.kind == "bonus_lot":
                cur = p.b["currency"]
                pts = to_minor(p.b["points"], CURRENCIES[cur][0])
            if cur is not None:
                by_promo[p.code] = pts
            if pts:
                earned[cur] = earned.get(cur, 0) + pts
    # each line's money paid with points, prices in points included
    line_money = [ev["wpaid"][i] + pay[i] for i in range(n)]
    return {"spent": spent, "earned": earned, "by_promo": by_promo, "line_money": line_money}


# ----------------------------------------------------------------------------
# The database

def catalogue_sql(cur, prog_id, cat):
    st = cat["settings"]
    cur.execute("DELETE FROM loyalty.promotion WHERE program_id = %s", (prog_id,))
    cur.execute("UPDATE loyalty.program SET max_discount_bp = %s, max_points_bp = %s, min_line_price = %s, "
                "discount_step = %s, earn_weight = %s, accrual_rate_bp = %s, points_excluded = %s "
                "WHERE id = %s",
                (st["max_discount_bp"], st["max_points_bp"], st["min_line_price"], st["discount_step"],
                 st["earn_weight"], st["accrual_rate_bp"],
                 c_render(st["points_excluded"]) if st["points_excluded"] else None, prog_id))
    for p in cat["promotions"]:
        cur.execute("INSERT INTO loyalty.promotion (program_id, code, name, status, line_condition, benefit, "
                    "stacking_group, priority, exclusive) VALUES (%s, %s, %s, 'active', %s, %s::jsonb, %s, %s, %s)",
                    (prog_id, p["code"], "promotion " + p["code"], c_render(p["cond"]) if p["cond"] else None,
                     dumps(benefit_json(p["benefit"])), p["group"], p["priority"], p["exclusive"]))


def benefit_json(b):
    b = dict(b)
    if b["kind"] == "bundle":
        b["components"] = [{"condition": c_render(c["condition"]), "qty": c["qty"]} for c in b["components"]]
    return b


def catalogue_doc(cat):
    st = dict(cat["settings"])
    st["points_excluded"] = c_render(st["points_excluded"]) if st["points_excluded"] else None
    return {"settings": st,
            "promotions": [{"code": p["code"], "benefit": benefit_json(p["benefit"]),
                            "line_condition": c_render(p["cond"]) if p["cond"] else None,
                            "stacking_group": p["group"], "priority": p["priority"],
                            "exclusive": p["exclusive"]} for p in cat["promotions"]]}


def setup(conn, rng):
    """The programme, its currencies, two customers and their lots."""
    cur = conn.cursor()
    with conn.transaction():
        cur.execute("INSERT INTO loyalty.program (code, name, default_currency) VALUES (%s, 'Brute force', 'pts') "
                    "RETURNING id", (PROGRAM,))
        prog_id = cur.fetchone()[0]
        cur.execute("INSERT INTO loyalty.currency (program_id, code, name, exponent, money_per_unit) "
                    "VALUES (%s, 'pts', 'Points', 0, 1.00), (%s, 'miles', 'Miles', 2, 0.5)", (prog_id, prog_id))
    customers = {}
    cur.execute("SELECT now()")
    now_ts = cur.fetchone()[0]
    lots_plan = {
        "10000001": [
            # (currency, major amount, valid_from, valid_to, priority, restriction)
            ("pts", rng.randint(100, 400), "past", "30d", 0, None),
            ("pts", rng.randint(100, 600), "past", None, 0, None),
            ("pts", rng.randint(50, 200), "past", "60d", 0, ("under", "category", "a")),
            ("pts", rng.randint(50, 150), "past", "day20", 5, None),
            ("pts", rng.randint(50, 150), "past", "day20", 0, None),
            ("pts", 1000, "after_at", None, 0, None),          # valid now, not at `at`
            ("pts", 1000, "future", None, 0, None),            # pending
            ("miles", Decimal(rng.randint(10000, 90000)) / 100, "past", None, 0, None),
            ("miles", Decimal(rng.randint(1000, 30000)) / 100, "past", "10d", 0, ("in", "brand", ["Y"])),
        ],
        "10000002": [
            ("pts", rng.randint(5, 40), "past", "30d", 0, None),
            ("pts", rng.randint(5, 60), "past", None, 0, ("under", "category", "b")),
            ("miles", Decimal(rng.randint(100, 6000)) / 100, "past", None, 0, None),
        ],
        "10000003": [            # fraud_hold: spends nothing, earns
            ("pts", 500, "past", None, 0, None),
            ("miles", Decimal(500), "past", None, 0, None),
        ],
        "10000004": [            # blocked: spends nothing, earns nothing
            ("pts", 500, "past", None, 0, None),
        ],
    }
    statuses = {"10000003": "fraud_hold", "10000004": "blocked"}
    for card, plan in lots_plan.items():
        cur.execute("SELECT loyalty.enroll(%s, card => %s)", (PROGRAM, card))
        cid = cur.fetchone()[0]
        lots = []
        for (c, amount, vf, vt, prio, restr) in plan:
            vf_sql = {"past": "'2026-05-01T00:00:00+03:00'::timestamptz",
                      "after_at": "'2026-07-01T00:00:00+03:00'::timestamptz",
                      "future": "now() + interval '1 day'"}[vf]
            vt_sql = {None: "NULL", "30d": "now() + interval '30 days'", "60d": "now() + interval '60 days'",
                      "10d": "now() + interval '10 days'",
                      "day20": "date_trunc('day', now()) + interval '20 days'"}[vt]
            cur.execute("SELECT lot_id FROM loyalty.accrue(customer => %%s, currency => %%s, amount => %%s, "
                        "valid_from => %s, valid_to => %s, priority => %%s, restriction => %%s)" % (vf_sql, vt_sql),
                        (cid, c, to_minor(amount, CURRENCIES[c][0]), prio, c_render(restr) if restr else None))
            lid = cur.fetchone()[0]
            cur.execute("SELECT remaining, valid_from, valid_to FROM loyalty.lot WHERE id = %s", (lid,))
            rem, vfrom, vto = cur.fetchone()
            lots.append(Lot(lid, c, rem, vfrom, vto, prio, restr))
        status = statuses.get(card, "active")
        if status != "active":
            cur.execute("SELECT loyalty.update_customer(%s, %s, 'brute force', status => %s)",
                        (PROGRAM, cid, status))
        customers[card] = {"id": cid, "status": status, "lots": lots}
    return prog_id, customers, now_ts


# ----------------------------------------------------------------------------
# Comparison

def answer_view(ans):
    def mm(x):
        return to_minor(x, MEXP)
    applied = {a["code"]: mm(a["discount"]) for a in ans["promotions"]["applied"]}
    promo_points = {a["code"]: Decimal(a["points_earned"]) for a in ans["promotions"]["applied"]
                    if "points_earned" in a}
    capped = sorted(a["code"] for a in ans["promotions"]["applied"] if a.get("capped"))
    reasons = {a["code"]: a["reason"] for a in ans["promotions"]["not_applied"]}
    earned = {c: to_minor(v, CURRENCIES[c][0]) for c, v in ans["totals"].get("points_earned", {}).items() if v}
    spent = {c: to_minor(v, CURRENCIES[c][0]) for c, v in ans["totals"].get("points_spent", {}).items() if v}
    lines = [{d["promotion"]: mm(d["amount"]) for d in ln["discounts"] if mm(d["amount"])}
             for ln in ans["lines"]]
    return {"applied": applied, "discount": mm(ans["totals"]["discount"]), "reasons": reasons, "capped": capped,
            "lines": lines, "optimal": ans.get("optimal"),
            "candidates": ans.get("candidates"), "earned": earned, "spent": spent, "promo_points": promo_points,
            "line_money": [mm(ln["points_amount"]) for ln in ans["lines"]]}


def promo_points(mine, pts):
    """The points each applied promotion earns on the money paid, in major units."""
    out = {}
    for c in mine["applied"]:
        if c in pts["by_promo"]:
            cur = mine["earn_cur"][c]
            out[c] = fmt(pts["by_promo"][c], CURRENCIES[cur][0])
    return out


def applied_class(mine, av):
    """A label for an applied-set mismatch: what each promotion in one set only is."""
    tags = set()
    for c in set(mine["applied"]) - set(av["applied"]):
        tags.add("the brute force applies a %s the engine lists as %s" % (mine["kinds"][c], av["reasons"].get(c)))
    for c in set(av["applied"]) - set(mine["applied"]):
        tags.add("the engine applies a %s the brute force lists as %s" % (mine["kinds"][c], mine["reasons"].get(c)))
    if mine["discount"] != av["discount"]:
        tags.add("totals.discount differs")
    return "; ".join(sorted(tags))


def compare(mine, av):
    """The checks that differ, each with a class: [(check, class)]."""
    bad = compare1(mine, av)
    if av.get("optimal") is False:
        bad = [(k, c + " (the engine's answer says optimal: false)") for k, c in bad]
    return bad


def compare1(mine, av):
    bad = []
    same_set = set(mine["applied"]) == set(av["applied"])
    if not same_set or mine["discount"] != av["discount"]:
        bad.append(("applied", applied_class(mine, av)))
    if same_set and mine["promo_discount"] != av["applied"]:
        bad.append(("promo_discount", "other"))
    elif same_set and mine["lines"] != av["lines"]:
        bad.append(("lines", "other"))
    if len(mine["candidates"]) != av["candidates"]:
        bad.append(("reasons", "number of candidates"))
    elif same_set and not reasons_agree(mine["reasons"], av["reasons"]):
        pairs = sorted("%s -> %s" % (mine["reasons"].get(c), av["reasons"].get(c))
                       for c in set(mine["reasons"]) | set(av["reasons"])
                       if mine["reasons"].get(c) != av["reasons"].get(c)
                       and av["reasons"].get(c) not in REASON_ALTERNATIVES.get(mine["reasons"].get(c), ()))
        noted = sorted({mine["reason_notes"][c] for c in mine["reason_notes"]
                        if av["reasons"].get(c) != mine["reasons"].get(c)})
        bad.append(("reasons", "brute force -> engine: " + ", ".join(sorted(set(pairs)))
                    + "".join(" (%s)" % n for n in noted)))
    if same_set and mine["capped"] != av["capped"]:
        bad.append(("capped", "other"))
    if same_set and mine["discount"] == av["discount"]:
        def pts_agree(pts):
            return pts["earned"] == av["earned"] and pts["spent"] == av["spent"] and \
                promo_points(mine, pts) == av["promo_points"] and \
                (pts["line_money"] is None or pts["line_money"] == av["line_money"])
        if not pts_agree(mine["points"]):
            if pts_agree(mine["points_alt"]):
                cls = "points spent (and so earned) agree only if the points a price in points reserved " \
                      "on a line it did not take %s what the receipt may spend" % \
                      ("do not reduce" if mine["opts_keep_unused"] else "still reduce")
            else:
                cls = "other"
            bad.append(("points", cls))
    return bad


# where the docs allow two reasons, either is accepted (see README.md)
REASON_ALTERNATIVES = {
    # a price in points on an anonymous receipt: "a price in points for a customer who may not
    # spend" (points_not_spendable) or, as the engine says, customer_required
    "points_not_spendable": {"points_not_spendable", "customer_required"},
}


def reasons_agree(mine, theirs):
    if set(mine) != set(theirs):
        return False
    for c, r in mine.items():
        if theirs[c] != r and theirs[c] not in REASON_ALTERNATIVES.get(r, ()):
            return False
    return True


CHECKS = [
    ("applied", "applied set and discount agree"),
    ("promo_discount", "each applied promotion's discount agrees (where the applied sets agree)"),
    ("lines", "each line's discount by promotion agrees (where the promotions' discounts agree)"),
    ("reasons", "candidates and the reasons of not_applied agree"),
    ("capped", "the promotions marked capped agree"),
    ("points", "totals.points_spent, totals.points_earned, each applied promotion's points_earned and each "
               "line's points_amount agree "
               "(where the applied sets and discounts agree)"),
]


def show(mine, av):
    def mj(d):
        return {c: fmt(v, MEXP) for c, v in sorted(d.items())}

    def pj(d):
        return {c: fmt(v, CURRENCIES[c][0]) for c, v in sorted(d.items())}
    return {
        "brute_force": {"applied": mj(mine["promo_discount"]), "discount": fmt(mine["discount"], MEXP),
                        "capped": mine["capped"], "candidates": mine["candidates"],
                        "not_applied": mine["reasons"], "included": mine["included"],
                        "value": Decimal(mine["value"]).scaleb(-4 - MEXP),
                        "value_before_cut": Decimal(mine["value_before"]).scaleb(-4 - MEXP),
                        "points_earned": pj(mine["points"]["earned"]),
                        "promotion_points": promo_points(mine, mine["points"]),
                        "points_spent": pj(mine["points"]["spent"]),
                        "lines": [mj(x) for x in mine["lines"]]},
        "engine": {"applied": mj(av["applied"]), "discount": fmt(av["discount"], MEXP), "capped": av["capped"],
                   "candidates": av["candidates"], "not_applied": av["reasons"],
                   "points_earned": pj(av["earned"]), "promotion_points": av["promo_points"],
                   "points_spent": pj(av["spent"]), "lines": [mj(x) for x in av["lines"]],
                   "optimal": av["optimal"]},
    }


class Runner:
    def __init__(self, conn, prog_id, customers, now_ts, opts):
        self.conn, self.prog_id, self.customers, self.now_ts, self.opts = conn, prog_id, customers, now_ts, opts
        self.cur = conn.cursor()

    def library(self):
        """The engine's shared library and when it was written (it may be rebuilt under a run)."""
        try:
            self.cur.execute("SELECT setting || '/loyalty.so', (pg_stat_file(setting || '/loyalty.so')).modification "
                             "FROM pg_config WHERE name = 'PKGLIBDIR'")
            return tuple(str(x) for x in self.cur.fetchone())
        except psycopg.Error:
            return ("loyalty.so", "unknown")

    def load(self, cat):
        with self.conn.transaction():
            catalogue_sql(self.cur, self.prog_id, cat)

    def calc(self, recs):
        self.cur.execute("SELECT r.ord, loyalty.calculate(r.doc::jsonb)::text FROM unnest(%s::text[]) "
                         "WITH ORDINALITY AS r(doc, ord) ORDER BY r.ord", ([dumps(r) for r in recs],))
        return [loads(t) for (_o, t) in self.cur.fetchall()]

    def check(self, cat, rec, ans=None):
        if ans is None:
            ans = self.calc([rec])[0]
        mine = compute(cat, rec, self.customers, self.now_ts, self.opts)
        av = answer_view(ans)
        if mine is None:
            return None, av, []
        return mine, av, compare(mine, av)

    def shrink(self, cat, rec, kind):
        """Drop promotions and lines while the same check (kind: a (check, class) pair)
        still fails."""
        cat = revive_cat(json.loads(json.dumps(cat, default=str)))  # a deep copy
        rec = revive_rec(json.loads(dumps(rec)))
        tries = 0

        def without_one(doc, key, still_fails):
            """doc without one of its doc[key] for which the check still fails, or None"""
            nonlocal tries
            for j in range(len(doc[key])):
                if len(doc[key]) <= 1:
                    break
                d2 = dict(doc)
                d2[key] = doc[key][:j] + doc[key][j + 1:]
                tries += 1
                if still_fails(d2):
                    return d2
            return None

        def fails(c2, r2):
            self.load(c2)
            return kind in self.check(c2, r2)[2]

        while tries < 60:
            c2 = without_one(cat, "promotions", lambda c: fails(c, rec))
            if c2 is not None:
                cat = c2
                continue
            r2 = without_one(rec, "lines", lambda r: fails(cat, r))
            if r2 is None:
                break
            rec = r2
        self.load(cat)
        mine, av, bad = self.check(cat, rec)
        return cat, rec, mine, av


def cat_from_doc(doc):
    """The inverse of catalogue_doc (numbers as Decimal)."""
    st = dict(doc["settings"])
    for k in ("min_line_price", "discount_step", "earn_weight"):
        st[k] = Decimal(str(st[k]))
    st["points_excluded"] = c_parse(st["points_excluded"]) if st["points_excluded"] else None
    promos = []
    for p in doc["promotions"]:
        b = dict(p["benefit"])
        if b["kind"] == "bundle":
            b["components"] = [{"condition": c_parse(c["condition"]), "qty": c["qty"]} for c in b["components"]]
        promos.append({"code": p["code"], "benefit": b,
                       "cond": c_parse(p["line_condition"]) if p["line_condition"] else None,
                       "group": p["stacking_group"], "priority": p["priority"], "exclusive": p["exclusive"]})
    return {"settings": st, "promotions": promos}

# ----------------------------------------------------------------------------
# Fixed cases: the examples of docs/promotions.md, with the result the page states, and the
# smallest receipts that show each disagreement found so far (the brute force must agree with
# the engine on them as on the random ones).

def _st(**kw):
    st = {"max_discount_bp": 10000, "max_points_bp": 10000, "min_line_price": Decimal(0),
          "discount_step": Decimal(0), "earn_weight": Decimal(1), "accrual_rate_bp": 0, "points_excluded": None}
    st.update(kw)
    return st


def _pr(code, benefit, cond=None, group=None, priority=0, exclusive=False):
    return {"code": code, "benefit": benefit, "line_condition": cond, "stacking_group": group,
            "priority": priority, "exclusive": exclusive}


def _rc(lines, **kw):
    r = {"program": PROGRAM, "at": AT, "explain": True,
         "lines": [dict({"line": i + 1, "qty": Decimal(q), "price": Decimal(pr)}, **attrs)
                   for i, (q, pr, attrs) in enumerate(lines)]}
    r.update(kw)
    return r


D = Decimal
RICH = {"card": "10000001"}
FIXED_CASES = [
    # (name, settings, promotions, receipt, what the docs say: {"applied": codes, "discount": ...,
    #  "lines": [line discounts in minor units], "not_applied": {code: reason}} or None)
    ("docs example: a fixed price 9.99 and 50.00 off a receipt above 16.98 on one line of 20.00: "
     "the receipt discount alone, 20.00",
     _st(), [_pr("FP", {"kind": "fixed_price", "price": D("9.99")}),
             _pr("RO", {"kind": "receipt_off", "threshold": D("16.98"), "amount": D("50.00")})],
     _rc([(1, "20.00", {})]), {"applied": {"RO"}, "discount": D("20.00")}),
    ("docs example: 3 x 100.00, 1.00 off each line and 3.33 % off a receipt of at least 300.00: 9.99",
     _st(), [_pr("AO", {"kind": "amount_off", "amount": D("1.00")}),
             _pr("RO", {"kind": "receipt_off", "threshold": D("300.00"), "percent": D("3.33")})],
     _rc([(1, "100.00", {}), (1, "100.00", {}), (1, "100.00", {})]), {"applied": {"RO"}, "discount": D("9.99")}),
    ("docs example: P1 10 % exclusive priority 0, P2 10 % priority 1 on one line of 20.00: P2",
     _st(), [_pr("P1", {"kind": "percent_off", "percent": D(10)}, exclusive=True),
             _pr("P2", {"kind": "percent_off", "percent": D(10)}, priority=1)],
     _rc([(1, "20.00", {})]), {"applied": {"P2"}, "discount": D("2.00")}),
    ("docs example: under a cap of 30 % of 1 000.00, receipt discounts of 300.00 (priority 1) and "
     "400.00 (priority 0) of one group: the second applies",
     _st(max_discount_bp=3000),
     [_pr("R300", {"kind": "receipt_off", "threshold": D(0), "amount": D("300.00")}, group="g1", priority=1),
      _pr("R400", {"kind": "receipt_off", "threshold": D(0), "amount": D("400.00")}, group="g1")],
     _rc([(1, "1000.00", {})]), {"applied": {"R400"}, "discount": D("300.00")}),
    ("docs example (Spreading): three lines of 0.05 with 0.10 off come to 0.04 + 0.03 + 0.03 off",
     _st(), [_pr("RO", {"kind": "receipt_off", "threshold": D(0), "amount": D("0.10")})],
     _rc([(1, "0.05", {}), (1, "0.05", {}), (1, "0.05", {})]),
     {"applied": {"RO"}, "discount": D("0.10"), "lines": [4, 3, 3]}),
    ("docs (applied): a multiplier worth points on the full amount, its line paid with points, is in "
     "the best but not applied (it earns nothing on the money paid)",
     _st(accrual_rate_bp=1000),
     [_pr("MULT", {"kind": "multiplier", "factor": D(2)})],
     _rc([(1, "100.00", {"category": "b"})], customer=RICH, points="max"),
     {"applied": set(), "discount": D("0.00"), "not_applied": {"MULT": "excluded_by_better"}}),
    ("docs (applied, cap): a discount of the best that the cap cuts to nothing is not applied, reason cap",
     _st(max_discount_bp=5000),
     [_pr("PCT", {"kind": "percent_off", "percent": D(10)}, "brand = 'X'", priority=1),
      _pr("PTS", {"kind": "fixed_price", "points": D(25), "currency": "pts"}, "brand = 'Z'")],
     _rc([(1, "50.00", {"category": "b", "brand": "Z"}), (1, "50.00", {"category": "b", "brand": "X"})],
         customer=RICH, points="max"),
     {"applied": {"PTS"}, "discount": D("25.00"), "not_applied": {"PCT": "cap"}}),
    ("docs (the best: greatest value): two equal receipt discounts of one group, priorities 2 and 0, "
     "and 10 % off the receipt at priority 1: the later one with the 10 % gives 40.00, the earlier 38.00",
     _st(),
     [_pr("R1", {"kind": "receipt_off", "threshold": D(0), "amount": D(20)}, "category = 'b'", "g1", 2),
      _pr("R2", {"kind": "receipt_off", "threshold": D(0), "amount": D(20)}, "category = 'b'", "g1", 0),
      _pr("ALL", {"kind": "receipt_off", "threshold": D(0), "percent": D(10)}, priority=1)],
     _rc([(1, "100.00", {"category": "a"}), (1, "100.00", {"category": "b"})]),
     {"applied": {"ALL", "R2"}, "discount": D("40.00")}),
    ("docs (the best: greatest value): 1.00 off a line of 100.00 and 50 % off the receipt with a "
     "discount_step of 5: the receipt discount alone gives 50.00, both 1.00 + 45.00",
     _st(discount_step=D(5)),
     [_pr("AO", {"kind": "amount_off", "amount": D(1)}),
      _pr("RO", {"kind": "receipt_off", "threshold": D(0), "percent": D(50)})],
     _rc([(1, "100.00", {"category": "a"})]),
     {"applied": {"RO"}, "discount": D("50.00")}),
    ("docs (not_applied): a receipt discount that, joining the best, displaces a better one and adds "
     "nothing after the cap is excluded_by_better (joining gives less), not cap",
     _st(max_discount_bp=2000),
     [_pr("A", {"kind": "receipt_off", "threshold": D(100), "amount": D(50)}),
      _pr("C", {"kind": "receipt_off", "threshold": D(0), "amount": D(25)}, priority=1)],
     _rc([(1, "100.00", {"category": "a"})]),
     {"applied": {"A"}, "discount": D("20.00"), "not_applied": {"C": "excluded_by_better"}}),
    ("reading (README: a multiplier's worth): x2 on 1 000.00 at 10 % accrual is worth (100 + 1) points; "
     "100.50 off the same line (same group) is worth less: the multiplier holds it",
     _st(accrual_rate_bp=1000),
     [_pr("M", {"kind": "multiplier", "factor": D(2)}, None, "g1"),
      _pr("P", {"kind": "amount_off", "amount": D("100.50")}, "category = 'a'", "g1")],
     _rc([(1, "1000.00", {"category": "a"}), (1, "100.00", {"category": "b"})], customer=RICH),
     {"applied": {"M"}, "discount": D("0.00")}),
    ("reading (README: a multiplier's worth): with earn_weight 0.5 the (100 + 1) points are worth 50.50: "
     "50.60 off holds the line, the multiplier the other",
     _st(accrual_rate_bp=1000, earn_weight=D("0.5")),
     [_pr("M", {"kind": "multiplier", "factor": D(2)}, None, "g1"),
      _pr("P", {"kind": "amount_off", "amount": D("50.60")}, "category = 'a'", "g1")],
     _rc([(1, "1000.00", {"category": "a"}), (1, "100.00", {"category": "b"})], customer=RICH),
     {"applied": {"M", "P"}, "discount": D("50.60")}),
    ("reading (README: reservations): a price in points that reserved a line it could not take: the points "
     "the receipt asks to spend (200) pay the other line (70.00) in full",
     _st(),
     [_pr("A", {"kind": "amount_off", "amount": D(30)}, "brand = 'X'"),
      _pr("B", {"kind": "fixed_price", "points": D(80), "currency": "pts"})],
     _rc([(1, "100.00", {"category": "b", "brand": "X"}), (1, "100.00", {"category": "b", "brand": "Y"})],
         customer=RICH, points=D(200)),
     {"applied": {"A", "B"}, "discount": D("50.00"), "spent": {"pts": 150}}),
]


def fixed_cases(runner):
    """Runs FIXED_CASES: returns the number of failures."""
    failures = 0
    for name, st, promos, rec, expect in FIXED_CASES:
        cat = cat_from_doc({"settings": st, "promotions": promos})
        runner.load(cat)
        mine, av, bad = runner.check(cat, rec)
        problems = ["%s (%s)" % kc for kc in bad]
        if expect is not None:
            said = []
            if set(mine["applied"]) != expect["applied"] or fmt(mine["discount"], MEXP) != expect["discount"]:
                said.append("applied %s, discount %s" % (sorted(expect["applied"]), expect["discount"]))
            if "lines" in expect and [sum(x.values()) for x in mine["lines"]] != expect["lines"]:
                said.append("lines' discounts %s" % expect["lines"])
            if "not_applied" in expect and mine["reasons"] != expect["not_applied"]:
                said.append("not_applied %s" % expect["not_applied"])
            if "spent" in expect and mine["points"]["spent"] != expect["spent"]:
                said.append("points spent %s" % expect["spent"])
            if said:
                problems.append("the brute force does not give what the docs say (%s)" % "; ".join(said))
        if problems:
            failures += 1
            print("not ok - fixed case: %s" % name)
            print("# %s" % dumps({"problems": problems, "catalogue": {"settings": st, "promotions": promos},
                                  "receipt": rec, **show(mine, av)}))
        else:
            print("ok - fixed case: %s" % name)
    return failures



def replay(opts, runner, path, seed):
    """--replay: each line of the file (or one JSON document) is a reproduction as printed."""
    text = open(path).read()
    try:
        docs = [loads(text)]                      # one JSON document
    except ValueError:
        docs = []                                 # else one per line, as printed
        for ln in text.splitlines():
            ln = ln.strip()
            for prefix in ("# mismatch: ", "# "):
                if ln.startswith(prefix):
                    ln = ln[len(prefix):]
            if ln.startswith("{"):
                docs.append(loads(ln))
    bad_any = 0
    for d in docs:
        cat = cat_from_doc(d["catalogue"])
        rec = d["receipt"]
        runner.load(cat)
        mine, av, bad = runner.check(cat, rec)
        out = {"check": [list(x) for x in bad]}
        out.update(show(mine, av))
        print(dumps(out))
        if opts.verbose:
            opts.trace = True
            compute(cat, rec, runner.customers, runner.now_ts, opts)
            opts.trace = False
        bad_any += bool(bad)
    print("%s - %d reproductions replayed" % ("not ok" if bad_any else "ok", len(docs)))
    return 1 if bad_any else 0


def revive_cond(c):
    if c is None:
        return None
    if c[0] in ("and", "or"):
        return (c[0], revive_cond(c[1]), revive_cond(c[2]))
    if c[0] in ("ge", "le"):
        return (c[0], c[1], Decimal(c[2]))
    if c[0] == "in":
        return (c[0], c[1], list(c[2]))
    return tuple(c)


def revive_dec(b, keys):
    for k in keys:
        if k in b and b[k] is not None and not isinstance(b[k], (int,)):
            b[k] = Decimal(str(b[k]))
    return b


def revive_cat(cat):
    st = cat["settings"]
    for k in ("min_line_price", "discount_step", "earn_weight"):
        st[k] = Decimal(str(st[k]))
    st["points_excluded"] = revive_cond(st["points_excluded"])
    for p in cat["promotions"]:
        p["cond"] = revive_cond(p["cond"])
        b = p["benefit"]
        revive_dec(b, ("percent", "amount", "price", "points", "threshold", "per", "factor", "value"))
        if b["kind"] == "bundle":
            for c in b["components"]:
                c["condition"] = revive_cond(c["condition"])
    return cat


def revive_rec(rec):
    for ln in rec["lines"]:
        ln["qty"] = Decimal(str(ln["qty"]))
        ln["price"] = Decimal(str(ln["price"]))
    if "points" in rec and not isinstance(rec["points"], (str, dict)):
        rec["points"] = Decimal(str(rec["points"]))
    if isinstance(rec.get("points"), dict):
        rec["points"] = {c: (v if v == "max" else Decimal(str(v))) for c, v in rec["points"].items()}
    return rec


# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--catalogues", type=int, default=60)
    ap.add_argument("--receipts", type=int, default=40, help="receipts per catalogue")
    ap.add_argument("--promotions", type=int, default=8, help="most promotions per catalogue")
    ap.add_argument("--dsn", default="", help="libpq connection string (default: the PG* variables)")
    ap.add_argument("--show", type=int, default=3,
                    help="reproductions printed per check and class, for the checks other than the applied set")
    ap.add_argument("--show-applied", type=int, default=-1,
                    help="reproductions printed per class of applied-set mismatch (default: all)")
    ap.add_argument("--budget-ms", type=int, default=2000,
                    help="loyalty.search_time_budget of the engine's session (milliseconds)")
    ap.add_argument("--max-choices", type=int, default=16,
                    help="receipts with more choices (a price in points is one per line) are not checked")
    ap.add_argument("--shrink", type=int, default=3, help="reproductions shrunk per check and class")
    ap.add_argument("--keep", action="store_true", help="keep the database at the end")
    ap.add_argument("--replay", metavar="FILE",
                    help="recompute the reproductions in FILE (lines as printed; use the seed they name)")
    ap.add_argument("--verbose", action="store_true", help="with --replay: every combination's value")
    ap.add_argument("--skip", action="append", default=[], choices=[k for k, _d in CHECKS],
                    help="report a check without failing on it (repeatable)")
    # the readings of the docs where they leave a choice (see README.md)
    ap.add_argument("--spread", choices=["redistribute", "cut"], default="redistribute")
    ap.add_argument("--mult-worth", choices=["a", "b", "c", "d"], default="c")
    ap.add_argument("--mult-nobenefit", action="store_true")
    ap.add_argument("--pp-nobenefit", action="store_true")
    ap.add_argument("--keep-unused", action="store_true",
                    help="a reservation a price in points did not use still limits the points spent")
    opts = ap.parse_args()
    opts.trace = False
    seed = opts.seed if opts.seed is not None else int(time.time() * 1000) % 1000000007
    if opts.replay and opts.seed is None:
        for ln in open(opts.replay):
            if '"seed": ' in ln:
                seed = int(ln.split('"seed": ', 1)[1].split(",")[0])
                break
    print("# seed %d" % seed, flush=True)
    rng = random.Random(seed)
    t0 = time.time()

    try:
        admin = psycopg.connect(opts.dsn, autocommit=True)
        admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DBNAME)
        admin.execute("CREATE DATABASE %s" % DBNAME)
    except psycopg.Error as e:
        print("not ok - connect and create the database %s: %s" % (DBNAME, str(e).strip().replace("\n", " ")))
        return 1
    failures = 0
    try:
        try:
            conn = psycopg.connect(opts.dsn, dbname=DBNAME, autocommit=True)
            conn.execute("CREATE EXTENSION loyalty")
            # the contract is the best combination: give the search the time to prove
            # it (the budget is its own, documented, behaviour)
            conn.execute("SET loyalty.search_time_budget = %d" % opts.budget_ms)
            prog_id, customers, now_ts = setup(conn, rng)
        except psycopg.Error as e:
            print("not ok - setup: %s" % str(e).strip().replace("\n", " "))
            return 1
        print("ok - setup: programme, currencies, %d customers, %d lots"
              % (len(customers), sum(len(c["lots"]) for c in customers.values())), flush=True)
        runner = Runner(conn, prog_id, customers, now_ts, opts)
        if opts.replay:
            failures = replay(opts, runner, opts.replay, seed)
            conn.close()
            return failures
        lib0 = runner.library()
        cur0 = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'loyalty'").fetchone()[0]
        print("# engine: loyalty %s, %s written %s" % (cur0, lib0[0], lib0[1]), flush=True)
        failures += fixed_cases(runner)
        not_optimal = 0
        too_many = 0
        counts = {}
        fails = {}
        coverage = {}
        total = 0
        errors = []
        max_cands = 0
        for ci in range(opts.catalogues):
            cat = rand_catalogue(rng, ci, opts.promotions)
            recs = [rand_receipt(rng) for _ in range(opts.receipts)]
            runner.load(cat)
            try:
                answers = runner.calc(recs)
            except psycopg.Error:
                answers = []
                for r in recs:
                    try:
                        answers.append(runner.calc([r])[0])
                    except psycopg.Error as e2:
                        answers.append(None)
                        errors.append({"catalogue": catalogue_doc(cat), "receipt": json.loads(dumps(r)),
                                       "error": str(e2).strip()})
            for rec, ans in zip(recs, answers):
                if ans is None:
                    continue
                mine, av, bad = runner.check(cat, rec, ans)
                if mine is None:
                    too_many += 1
                    continue
                total += 1
                max_cands = max(max_cands, len(mine["candidates"]))
                if av["optimal"] is False:
                    not_optimal += 1
                for f in mine["flags"] | {"%d candidates" % len(mine["candidates"])}:
                    coverage[f] = coverage.get(f, 0) + 1
                for kc in bad:
                    fails.setdefault(kc, []).append((cat, rec))
            # shrink and print a few of this catalogue's failures, per check and class
            for (k, cls) in list(fails):
                for (c, r) in [x for x in fails[(k, cls)] if x[0] is cat]:
                    shown = counts.get((k, cls), 0)
                    counts[(k, cls)] = shown + 1
                    # every mismatch of the applied set or discount; --show of each class of the others
                    if k != "applied" and shown >= opts.show or k == "applied" and 0 <= opts.show_applied <= shown:
                        continue
                    if shown < opts.shrink:
                        c2, r2, mine, av = runner.shrink(c, r, (k, cls))
                    else:
                        c2, r2 = c, r
                        mine, av, _b = runner.check(c, r)
                    repro = {"check": k, "class": cls, "seed": seed, "catalogue_no": ci,
                             "catalogue": catalogue_doc(c2), "receipt": r2}
                    repro.update(show(mine, av))
                    print("# mismatch: %s" % dumps(repro), flush=True)
            runner.load(cat)
            lib = runner.library()
            if lib != lib0:
                print("# warning: %s was rewritten during the run (now %s, at catalogue %d): the answers "
                      "may come from two builds; run again" % (lib[0], lib[1], ci), flush=True)
                lib0 = lib
        if too_many:
            print("# %d receipts not checked: more than %d choices to enumerate (--max-choices)"
                  % (too_many, opts.max_choices))
        if not_optimal:
            print("# %d answers say optimal: false (the search ran out of loyalty.search_time_budget)"
                  % not_optimal)
        print("# coverage (receipts whose best combination shows it):")
        for f, x in sorted(coverage.items(), key=lambda kv: (kv[0][0].isdigit(), kv[0])):
            print("#   %5d  %s" % (x, f))
        for k, desc in CHECKS:
            classes = sorted((cls, len(v)) for (kk, cls), v in fails.items() if kk == k)
            n_bad = sum(x for _c, x in classes)
            if k in opts.skip:
                print("# skipped: %d receipts: %s (%d differ)" % (total, desc, n_bad))
            elif n_bad:
                failures += 1
                print("not ok - %d receipts: %s (%d differ)" % (total, desc, n_bad))
                for cls, x in classes:
                    print("#   %5d  %s" % (x, cls))
            else:
                print("ok - %d receipts: %s" % (total, desc))
        if errors:
            failures += 1
            print("not ok - calculate raised an error on %d receipts" % len(errors))
            for e in errors[:3]:
                print("# error: %s" % json.dumps(e, default=str))
        else:
            print("ok - calculate answered every receipt (%d catalogues, up to %d candidates)"
                  % (opts.catalogues, max_cands))
        conn.close()
    except psycopg.OperationalError as e:
        failures += 1
        print("not ok - the connection to the server was lost (restarted?): %s"
              % str(e).strip().replace("\n", " "))
    finally:
        if not opts.keep:
            try:
                if admin.closed or admin.broken:
                    admin = psycopg.connect(opts.dsn, autocommit=True)
                admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DBNAME)
            except psycopg.Error as e:
                print("# could not drop the database %s: %s" % (DBNAME, str(e).strip().replace("\n", " ")))
        admin.close()
    print("# %.1f s" % (time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
