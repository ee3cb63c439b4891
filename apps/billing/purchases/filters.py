"""The filters of the company's credit purchase list in the API."""

from __future__ import annotations

import django_filters

from apps.billing.models import CreditPurchase


class PurchaseFilter(django_filters.FilterSet):
    class Meta:
        model = CreditPurchase
        fields = ["status", "method"]
