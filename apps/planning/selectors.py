from __future__ import annotations

from dataclasses import dataclass

from apps.companies.models import Company
from apps.planning.models import CHECKLIST_ITEMS, ReadinessChecklist


@dataclass(frozen=True)
class ChecklistItem:
    field: str
    label: str
    help: str
    done: bool


@dataclass(frozen=True)
class ChecklistState:
    items: list[ChecklistItem]

    @property
    def done_count(self) -> int:
        return sum(item.done for item in self.items)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def complete(self) -> bool:
        return self.done_count == self.total

    @property
    def next_items(self) -> list[ChecklistItem]:
        return [item for item in self.items if not item.done]


def readiness_checklist(company: Company) -> ChecklistState:
    """The company's checklist, every box unticked before anyone saved it (one query)."""
    row = ReadinessChecklist.objects.for_company(company).first()
    ticked = row.ticked() if row else {}
    return ChecklistState(
        items=[
            ChecklistItem(field=field, label=label, help=hint, done=ticked.get(field, False))
            for field, label, hint in CHECKLIST_ITEMS
        ]
    )


def readiness_checklist_open(company: Company) -> ChecklistState | None:
    """The checklist while some box is unticked (what the dashboard shows), else None (one query)."""
    state = readiness_checklist(company)
    return None if state.complete else state
