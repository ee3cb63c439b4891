from __future__ import annotations

from typing import Any

import pytest

from apps.companies.models import Company
from apps.sip_profiles.models import SipProfile
from tests.factories import UserFactory
from tests.sip_profiles.factories import digest_profile, ip_profile


@pytest.fixture
def staff(db: Any) -> Any:
    return UserFactory(is_staff=True, is_superuser=True, email="cdrs@platform.example")


@pytest.fixture
def profile(company: Company, owner: Any) -> SipProfile:
    profile, _ = digest_profile(company, owner)
    return profile


@pytest.fixture
def branch(company: Company, owner: Any) -> SipProfile:
    return ip_profile(company, owner)
