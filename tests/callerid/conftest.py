from __future__ import annotations

import pytest

from apps.companies.models import Role
from tests.factories import UserFactory, member


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True, email="staff@platform.example")


@pytest.fixture
def company_admin(company):
    return member(company, Role.ADMIN)
