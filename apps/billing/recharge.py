"""Company and profile auto-recharge."""

from __future__ import annotations


def company_recharge_requested(*, company_id: int, trigger: str) -> None:
    """Start a company auto-recharge if one is set up and due (see the module docstring)."""
