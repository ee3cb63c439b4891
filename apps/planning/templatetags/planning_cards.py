"""The readiness checklist's dashboard card: `{% load planning_cards %}{% readiness_checklist_card %}`
shows the company's open steps until every box is ticked, then nothing (one query). Any page of
a company can show it; it needs only the request's tenancy."""

from __future__ import annotations

from typing import Any

from django import template

from apps.planning.selectors import readiness_checklist_open

register = template.Library()


@register.inclusion_tag("planning/_checklist_card.html", takes_context=True)
def readiness_checklist_card(context: template.Context) -> dict[str, Any]:
    tenancy = context.get("tenancy") or getattr(context.get("request"), "tenancy", None)
    return {"checklist": readiness_checklist_open(tenancy.company) if tenancy else None}
