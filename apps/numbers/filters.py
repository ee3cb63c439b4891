"""The filters of the Online Number lists in the API: the stock a company may buy, and the
numbers it holds."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from apps.core.filters import BooleanFilter, CleanedCharFilter
from apps.numbers import selectors
from apps.numbers.models import NumberSubscription, OnlineNumber


class AvailableNumberFilter(django_filters.FilterSet):
    country = CleanedCharFilter(clean_value=selectors.country_code, help_text="ISO 3166 code, e.g. GB.")
    area = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the area or city name.")
    contains = CleanedCharFilter(
        clean_value=selectors.digits_wanted,
        method="filter_contains",
        help_text="Digits anywhere in the E.164 number (spaces and dashes ignored); "
        "with a leading + they must start it, e.g. +4420.",
    )
    type = django_filters.ChoiceFilter(
        field_name="number_type",
        choices=OnlineNumber.Type.choices,
        error_messages={"invalid_choice": '"%(value)s" is not a valid choice.'},
    )

    class Meta:
        model = OnlineNumber
        fields = ["country", "area", "contains", "type"]

    def filter_contains(
        self, queryset: QuerySet[OnlineNumber], name: str, value: tuple[str, bool]
    ) -> QuerySet[OnlineNumber]:
        return selectors.with_digits(queryset, value)


class NumberSubscriptionFilter(django_filters.FilterSet):
    auto_renew = BooleanFilter(help_text="true: numbers that renew themselves; false: those that end.")

    class Meta:
        model = NumberSubscription
        fields = ["status", "auto_renew"]
