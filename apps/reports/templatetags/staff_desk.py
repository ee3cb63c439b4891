from __future__ import annotations

from typing import Any

from django import template

from apps.reports.staff_desk import staff_waiting_work

register = template.Library()


@register.inclusion_tag("admin/_waiting_work.html")
def staff_waiting_work_box() -> dict[str, Any]:
    """The admin index's first box: what needs a person, each a count linking to its list."""
    work = staff_waiting_work()
    return {"work": work, "total": sum(item.count for item in work)}
