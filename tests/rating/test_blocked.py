from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.rating.models import BlockedPrefix
from apps.rating.selectors import number_blocked
from apps.rating.services import blocked_prefix_create, blocked_prefix_delete
from tests.factories import UserFactory
from tests.helpers.queries import expect_queries

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("dialled", "region", "kind", "reason"),
    [
        ("911", "US", "emergency", "Emergency services (911)"),
        ("411", "US", "special_service", "Directory assistance (411)"),
        ("611", "US", "special_service", "Carrier repair service (611)"),
        ("112", "DE", "emergency", "Emergency services (112)"),
        ("110", "DE", "emergency", "Police (110)"),
        ("999", "GB", "emergency", "Emergency services (999)"),
        ("112", "GB", "emergency", "Emergency services (112)"),
        ("118 118", "GB", "special_service", "Directory enquiries (118)"),
        ("000", "AU", "emergency", "Emergency services (000)"),
        ("0", "US", "operator", "Operator (0)"),
        ("00", "US", "operator", "Long-distance operator (00)"),
        ("+1 900 555 0123", "US", "premium_rate", "Premium rate (+1 900)"),
        ("+1 900 555 0123", "GB", "premium_rate", "Premium rate (+1 900)"),  # E.164 ranges, whoever dials
        ("1-900-555-0123", "US", "premium_rate", "Premium rate (+1 900)"),  # dialled nationally
        ("+44 909 879 0000", "US", "premium_rate", "Premium rate (+44 9…)"),
        ("09098790000", "GB", "premium_rate", "Premium rate (+44 9…)"),
        ("+49 900 1234567", "DE", "premium_rate", "Premium rate (+49 900)"),
    ],
)
def test_never_callable_numbers_are_refused_with_their_reason(
    dialled: str, region: str, kind: str, reason: str
) -> None:
    blocked = number_blocked(dialled, region=region)

    assert blocked is not None
    assert (blocked.kind, blocked.reason, str(blocked)) == (kind, reason, reason)


@pytest.mark.parametrize(
    ("dialled", "region"),
    [
        ("+12125550123", "US"),
        ("(212) 555-0123", "US"),
        ("+442079460958", "GB"),
        ("020 7946 0958", "GB"),  # starts with 0, the US operator code, but in GB
        ("+4930123456", "DE"),
        ("+18005550199", "US"),  # toll-free is callable
        ("011 44 20 7946 0958", "US"),  # international access, not the 0 operator
    ],
)
def test_ordinary_numbers_are_not_blocked(dialled: str, region: str) -> None:
    assert number_blocked(dialled, region=region) is None


def test_phonenumbers_metadata_covers_what_the_list_lacks() -> None:
    BlockedPrefix.objects.all().delete()

    assert number_blocked("911", region="US").kind == "emergency"  # type: ignore[union-attr]
    assert number_blocked("000", region="AU").kind == "emergency"  # type: ignore[union-attr]
    assert number_blocked("17", region="FR").kind == "emergency"  # type: ignore[union-attr]
    assert number_blocked("411", region="US").kind == "special_service"  # type: ignore[union-attr]
    assert number_blocked("+1 900 555 0123", region="US").kind == "premium_rate"  # type: ignore[union-attr]
    assert number_blocked("+12125550123", region="US") is None


def test_staff_add_and_remove_blocked_prefixes_with_an_audit_trail() -> None:
    actor = Actor(user=UserFactory(is_staff=True))
    assert number_blocked("+881 612 345 678", region="GB") is None

    blocked = blocked_prefix_create(
        actor=actor, country="*", prefix="+8816", kind="premium_rate", reason="Iridium satellite"
    )
    assert number_blocked("+881 612 345 678", region="GB").reason == "Iridium satellite"  # type: ignore[union-attr]
    with pytest.raises(ApplicationError, match="already blocked"):
        blocked_prefix_create(actor=actor, country="*", prefix="+8816", kind="premium_rate", reason="Again")
    with pytest.raises(ApplicationError) as bad:
        blocked_prefix_create(actor=actor, country="XX", prefix="12a", kind="nope", reason="")
    assert set(bad.value.errors) == {"country", "prefix", "kind", "reason"}

    blocked_prefix_delete(actor=actor, blocked=blocked)

    assert number_blocked("+881 612 345 678", region="GB") is None
    assert list(
        AuditEvent.objects.filter(action__startswith="blocked_prefix.").values_list("action", flat=True).order_by("id")
    ) == ["blocked_prefix.created", "blocked_prefix.deleted"]


def test_the_blocked_check_is_one_query() -> None:
    with expect_queries("the staff rules that could match (E.164 prefixes and dialled prefixes), by index"):
        number_blocked("+442079460958", region="GB")
