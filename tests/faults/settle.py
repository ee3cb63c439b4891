"""After the faults: run the sweeps as beat would, as if their grace periods had passed.

    DJANGO_SETTINGS_MODULE=skypemanager.settings ... python -m tests.faults.settle

The reconcile task (credit what Stripe took, settle what never reached it) and the auto-recharge
sweep (finish in-flight attempts, recharge who is due), each twice, with `now` moved past
every grace period they wait out (10 minutes), so the test does not wait for them. Prints what
each run did, as one JSON line.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta


def main() -> None:
    import django

    django.setup()
    from django.utils import timezone

    from apps.billing.purchases import services as purchases
    from apps.billing.recharge import sweep as recharge_sweep

    graces = [
        getattr(recharge_sweep, "STALE_AFTER", timedelta(minutes=10)),
        getattr(recharge_sweep, "SYNC_PENDING_AFTER", timedelta(minutes=10)),
        getattr(purchases, "RECONCILE_GRACE", timedelta(minutes=10)),
    ]
    later = timezone.now() + max(graces) + timedelta(minutes=1)
    runs = []
    for _ in range(2):
        runs.append(
            {
                "reconcile": purchases.purchases_reconcile(now=later),
                "sweep": recharge_sweep.auto_recharge_sweep(now=later),
            }
        )
    json.dump({"later_by_s": (later - timezone.now()).total_seconds(), "runs": runs}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
