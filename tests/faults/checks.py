"""The invariants checked after the faults, with SQL on the stack's database, localstripe's API
and the portal's API. Each check returns the failures it found (sentences), never raises, so
one run reports every broken invariant at once."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from tests.faults.load import Call, Load
from tests.faults.stack import Stack

CREDITED = {"succeeded", "refunding", "refunded"}


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def fail(self, text: str, items: list[Any] | None = None) -> None:
        if items is not None:
            if not items:
                return
            text = f"{text} ({len(items)}): {items[:5]}"
        self.failures.append(text)


def check_everything(stack: Stack, world: dict[str, Any], load: Load) -> Report:
    report = Report()
    with stack.sql() as db:

        def rows(sql: str, *args: Any) -> list[tuple[Any, ...]]:
            return db.execute(sql, args).fetchall()  # type: ignore[arg-type]

        _ledger(report, rows)
        _moves(report, rows, world, load)
        intents = stack.stripe_objects("payment_intents")
        _purchases(report, rows, world, load, intents)
        _recharges(report, rows, world, intents)
    _api_balances(report, stack, world, rows_of=stack)
    return report


def _ledger(report: Report, rows: Any) -> None:
    unbalanced = rows(
        """SELECT t.idempotency_key, COALESCE(SUM(e.amount), 0), COUNT(e.id)
           FROM billing_ledgertransaction t LEFT JOIN billing_ledgerentry e ON e.transaction_id = t.id
           GROUP BY t.id HAVING COALESCE(SUM(e.amount), 0) <> 0 OR COUNT(e.id) < 2"""
    )
    report.fail("ledger transactions whose entries do not sum to zero (or have fewer than two)", unbalanced)
    off = rows(
        """SELECT a.id, a.kind, a.balance, COALESCE(SUM(e.amount), 0)
           FROM billing_ledgeraccount a LEFT JOIN billing_ledgerentry e ON e.account_id = a.id
           GROUP BY a.id HAVING a.balance <> COALESCE(SUM(e.amount), 0)"""
    )
    report.fail("ledger accounts whose cached balance is not the sum of their entries", off)
    last_after = rows(
        """SELECT a.id, a.balance, e.balance_after FROM billing_ledgeraccount a
           JOIN billing_ledgerentry e ON e.id = (SELECT MAX(id) FROM billing_ledgerentry WHERE account_id = a.id)
           WHERE e.balance_after <> a.balance"""
    )
    report.fail("ledger accounts whose last entry's balance_after is not the balance", last_after)
    report.stats["ledger transactions"] = rows("SELECT COUNT(*) FROM billing_ledgertransaction")[0][0]
    # Not an invariant: a request cut off by an outage may leave its claim, which answers 409
    # "in use" until it is stale (apps.billing.idempotency). Shown so that the number is known.
    report.stats["Idempotency-Key claims left unanswered"] = rows(
        "SELECT endpoint, COUNT(*) FROM billing_idempotentrequest WHERE response_status IS NULL GROUP BY endpoint"
    )


def _when(call: Call, load: Load) -> str:
    """When the call was sent, in seconds from the start of the load, and what it was answered."""
    first = call.attempts[0].start - load.t0 if call.attempts else 0.0
    return f"t+{first:.1f}s {'/'.join(a.label for a in call.attempts)}"


def _moves(report: Report, rows: Any, world: dict[str, Any], load: Load) -> None:
    calls = load.calls
    # apps.billing.ledger.api: the ledger key is credit:<company>:<Idempotency-Key>.
    prefix = f"credit:{world['company']}:"
    applied: dict[str, list[tuple[str, str, Decimal]]] = defaultdict(list)
    for key, kind, profile, amount in rows(
        """SELECT t.idempotency_key, t.kind, p.public_id::text, e.amount
           FROM billing_ledgertransaction t
           JOIN billing_ledgerentry e ON e.transaction_id = t.id
           JOIN billing_ledgeraccount a ON a.id = e.account_id
           JOIN sip_profiles_sipprofile p ON p.id = a.sip_profile_id
           WHERE t.kind IN ('allocation', 'take_back') AND t.company_id = %s""",
        world["company_id"],
    ):
        applied[key].append((kind, profile, amount))
    moves = [c for c in calls if c.kind in ("allocate", "take_back")]
    sent = {prefix + str(c.key) for c in moves}
    missing, wrong, refused_but_applied, unknown = [], [], [], 0
    for call in moves:
        key = prefix + str(call.key)
        final = call.final
        entries = applied.get(key, [])
        expected = (
            "allocation" if call.kind == "allocate" else "take_back",
            call.profile,
            call.amount if call.kind == "allocate" else -(call.amount or 0),
        )
        if final is None:
            unknown += 1
        elif final.ok:
            if not entries:
                missing.append((call.key, call.kind, str(call.amount), _when(call, load)))
            elif entries != [expected]:
                wrong.append((call.key, entries, expected, _when(call, load)))
        elif entries:
            refused_but_applied.append((call.key, entries, _when(call, load)))
    report.fail("moves answered 2xx that are not in the ledger", missing)
    report.fail("moves applied other than asked (or more than once)", wrong)
    report.fail("moves answered 4xx that were applied anyway", refused_but_applied)
    report.fail("ledger moves of the company that no request asked for", sorted(set(applied) - sent))
    retried = [c for c in moves if c.retried]
    report.stats["moves"] = {
        "sent": len(moves),
        "answered 2xx": sum(1 for c in moves if c.final is not None and c.final.ok),
        "answered 4xx": sum(1 for c in moves if c.final is not None and not c.final.ok),
        "retried after a lost answer": len(retried),
        "retried, then 2xx": sum(1 for c in retried if c.final is not None and c.final.ok),
        "never answered": unknown,
        "in the ledger": len(applied),
        "never answered, when": [_when(c, load) for c in moves if c.final is None][:10],
    }


def _purchases(report: Report, rows: Any, world: dict[str, Any], load: Load, intents: list[dict[str, Any]]) -> None:
    calls = load.calls
    purchases = {
        public_id: {"amount": amount, "status": status, "pi": pi, "recharge": recharge, "credit_key": credit_key}
        for public_id, amount, status, pi, recharge, credit_key in rows(
            """SELECT cp.public_id::text, cp.amount, cp.status, cp.stripe_payment_intent, ra.id IS NOT NULL,
                      t.idempotency_key
               FROM billing_creditpurchase cp
               LEFT JOIN billing_rechargeattempt ra ON ra.purchase_id = cp.id
               LEFT JOIN billing_ledgertransaction t ON t.id = cp.credit_transaction_id
               WHERE cp.company_id = %s""",
            world["company_id"],
        )
    }
    succeeded = [pi for pi in intents if pi["status"] == "succeeded"]
    succeeded_per_purchase = Counter((pi.get("metadata") or {}).get("purchase") for pi in succeeded)
    ledger_stripe_keys = Counter(
        key
        for (key,) in rows(
            "SELECT idempotency_key FROM billing_ledgertransaction WHERE idempotency_key LIKE 'stripe:%%'"
        )
    )

    # Every succeeded PaymentIntent credited once, to the purchase it was made for.
    not_credited, orphans = [], []
    for pi in succeeded:
        purchase_id = (pi.get("metadata") or {}).get("purchase")
        purchase = purchases.get(purchase_id or "")
        if purchase is None:
            orphans.append(pi["id"])
        elif (
            purchase["status"] not in CREDITED
            or purchase["pi"] != pi["id"]
            or ledger_stripe_keys[f"stripe:{pi['id']}"] != 1
        ):
            not_credited.append((pi["id"], purchase_id, purchase["status"], purchase["pi"]))
    report.fail("succeeded PaymentIntents not credited exactly once to their purchase", not_credited)
    report.fail("succeeded PaymentIntents of no purchase of ours", orphans)
    report.fail(
        "purchases charged more than once at Stripe",
        [(p, n) for p, n in succeeded_per_purchase.items() if n > 1],
    )
    by_id = {pi["id"]: pi for pi in intents}
    credited_without_payment = [
        (public_id, p["pi"])
        for public_id, p in purchases.items()
        if p["status"] in CREDITED and by_id.get(p["pi"] or "", {}).get("status") != "succeeded"
    ]
    report.fail("purchases credited without a succeeded PaymentIntent", credited_without_payment)

    # One charge per Idempotency-Key: each API purchase request has an amount of its own.
    buys = [c for c in calls if c.kind == "purchase"]
    by_amount: dict[Decimal, list[str]] = defaultdict(list)
    for public_id, p in purchases.items():
        if not p["recharge"]:
            by_amount[Decimal(p["amount"]).quantize(Decimal("0.01"))].append(public_id)
    twice, answered_missing, answered_not_credited = [], [], []
    for call in buys:
        mine = by_amount.get(Decimal(call.amount or 0), [])
        credited = [p for p in mine if purchases[p]["status"] in CREDITED]
        charges = sum(succeeded_per_purchase[p] for p in mine)
        if len(credited) > 1 or charges > 1:
            twice.append(
                (call.key, str(call.amount), [(p, purchases[p]["status"]) for p in mine], charges, _when(call, load))
            )
        final = call.final
        if final is not None and final.ok:
            answered = (call.body or {}).get("id")
            if answered not in mine:
                answered_missing.append((call.key, answered, _when(call, load)))
            elif (call.body or {}).get("status") == "succeeded" and purchases[answered]["status"] not in CREDITED:
                answered_not_credited.append((call.key, answered, purchases[answered]["status"]))
    report.fail("Idempotency-Keys that produced two charges or two credited purchases", twice)
    report.fail("purchases answered 2xx that are not in the database", answered_missing)
    report.fail("purchases answered 'succeeded' that are not credited", answered_not_credited)
    known = {Decimal(c.amount or 0) for c in buys}
    report.fail("API purchases that no request asked for", [a for a in by_amount if a not in known])
    pending_no_intent = [
        (public_id, "auto-recharge" if p["recharge"] else "API")
        for public_id, p in purchases.items()
        if p["status"] == "pending" and not p["pi"]
    ]
    report.fail("purchases left pending without a PaymentIntent after the sweeps", pending_no_intent)
    report.stats["purchases"] = {
        "requests": len(buys),
        "answered 2xx": sum(1 for c in buys if c.final is not None and c.final.ok),
        "answers": dict(Counter(c.final.label if c.final else "never answered" for c in buys)),
        "retried": sum(1 for c in buys if c.retried),
        "never answered, when": [_when(c, load) for c in buys if c.final is None][:10],
        "in the database": len(purchases),
        "by status": dict(Counter(p["status"] for p in purchases.values())),
        "succeeded PaymentIntents": len(succeeded),
    }


def _recharges(report: Report, rows: Any, world: dict[str, Any], intents: list[dict[str, Any]]) -> None:
    threshold, limit, amount = rows(
        "SELECT threshold, monthly_limit, amount FROM billing_autorecharge WHERE company_id = %s", world["company_id"]
    )[0]
    attempts = rows(
        """SELECT ra.public_id::text, ra.status, ra.amount, ra.month, ra.ledger_watermark, e.balance_after,
                  cp.public_id::text, cp.status, ra.error
           FROM billing_rechargeattempt ra
           LEFT JOIN billing_ledgerentry e ON e.id = ra.ledger_watermark
           LEFT JOIN billing_creditpurchase cp ON cp.id = ra.purchase_id
           WHERE ra.company_id = %s ORDER BY ra.id""",
        world["company_id"],
    )
    report.fail(
        "auto-recharge attempts still in flight after the sweeps",
        [a[:2] + a[6:8] for a in attempts if a[1] == "in_flight"],
    )
    per_month: dict[Any, Decimal] = defaultdict(Decimal)
    for a in attempts:
        if a[1] in ("succeeded", "in_flight"):
            per_month[a[3]] += a[2]
    report.fail(
        "months whose auto-recharges exceed the monthly limit",
        [(m, t, limit) for m, t in per_month.items() if t > limit],
    )
    recharge_purchases = {a[6] for a in attempts if a[6]}
    charged = sum(
        (Decimal(pi["amount"]) / 100 for pi in intents
         if pi["status"] == "succeeded" and (pi.get("metadata") or {}).get("purchase") in recharge_purchases),
        Decimal(0),
    )  # fmt: skip
    if charged > limit:
        report.fail(f"auto-recharge charged {charged} at Stripe, above the monthly limit {limit}")
    # Issue 16 (4): a claim only below the threshold, on the balance as it was when claimed
    # (the watermark is the company account's last ledger entry at the claim).
    above = [(a[0], a[4], a[5]) for a in attempts if a[5] is None or a[5] >= threshold]
    report.fail(f"auto-recharges claimed while the balance was not below the threshold {threshold}", above)
    succeeded_not_credited = [(a[0], a[6], a[7]) for a in attempts if a[1] == "succeeded" and a[7] not in CREDITED]
    report.fail("auto-recharges marked succeeded whose purchase is not credited", succeeded_not_credited)
    if not attempts:
        report.fail("the load never took the company balance below the auto-recharge threshold: nothing was tested")
    report.stats["auto-recharge"] = {
        "attempts": dict(Counter(a[1] for a in attempts)),
        "charged at Stripe": str(charged),
        "monthly limit": str(limit),
        "amount": str(amount),
        "errors": dict(Counter(a[8] for a in attempts if a[8])),
    }


def _api_balances(report: Report, stack: Stack, world: dict[str, Any], rows_of: Stack) -> None:
    """What an integrator reads back equals the ledger."""
    answer = requests.get(
        f"{stack.base}/api/v1/credit/", headers={"Authorization": f"Bearer {world['api_key']}"}, timeout=15
    )
    if answer.status_code != 200:
        report.fail(f"GET /api/v1/credit/ answered {answer.status_code} after the faults")
        return
    body = answer.json()
    with rows_of.sql() as db:
        company = db.execute(
            "SELECT balance FROM billing_ledgeraccount WHERE kind = 'company_balance' AND company_id = %s",
            (world["company_id"],),
        ).fetchone()
        profiles = dict(
            db.execute(
                """SELECT p.public_id::text, a.balance FROM billing_ledgeraccount a
                   JOIN sip_profiles_sipprofile p ON p.id = a.sip_profile_id WHERE a.company_id = %s""",
                (world["company_id"],),
            ).fetchall()
        )
    if company is None or Decimal(body["company_balance"]) != company[0]:
        report.fail(f"the API's company balance {body['company_balance']} is not the ledger's {company}")
    for profile in body["profiles"]:
        if Decimal(profile["balance"]) != profiles.get(profile["id"], Decimal(0)):
            report.fail(f"the API's balance of profile {profile['id']} is not the ledger's")
    report.stats["company balance"] = body["company_balance"]
