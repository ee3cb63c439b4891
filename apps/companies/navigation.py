"""The portal's sections, as the sidebar lists them: each link is shown only to a role that
may open it, decided by the very capability the linked page's view checks (its
`read_capability`), so the navigation and the access rules cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import resolve, reverse

from apps.companies.tenancy import Tenancy

# (label, URL name, the path prefix that marks it current, or "" for the exact path). A group
# starts after a divider. The pages belong to higher apps: they are named, never imported.
SECTIONS: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (
        ("Dashboard", "dashboard", ""),
        ("SIP Profiles", "sip-profile-list", "/sip-profiles/"),
        ("Business accounts", "business-account-list", ""),
        ("Numbers", "number-list", "/numbers/"),
        ("Caller ID", "callerid-list", ""),
        ("Credit", "credit", "/credit/"),
        ("Calls", "call-list", ""),
        ("Rates", "rates", ""),
        ("Planning", "planning", "/planning/"),
        ("Reports", "report-summary-page", "/reports/"),
    ),
    (
        ("Company", "company-settings", ""),
        ("Members", "member-list", ""),
        ("Verification", "verification", ""),
        ("API keys", "api-key-list", ""),
        ("Audit", "audit-list", "/audit/"),
        ("API docs", "v1:api-docs", ""),
        ("Status", "status", ""),
    ),
)


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    current: bool


def may_open(tenancy: Tenancy, url: str) -> bool:
    """Whether the role may GET the page at `url`: the capability its view asks for on a read
    (a page that is not a company page, such as the API docs, is open to every member)."""
    view_class: Any = getattr(resolve(url).func, "view_class", None)
    capability = getattr(view_class, "read_capability", None)
    return capability is None or tenancy.can(capability)


def navigation(*, tenancy: Tenancy, path: str) -> list[list[NavLink]]:
    """The sidebar's groups of links the role may open, with the current page marked."""
    groups = []
    for section in SECTIONS:
        links = []
        for label, name, prefix in section:
            url = reverse(name)
            if not may_open(tenancy, url):
                continue
            current = path.startswith(prefix) if prefix else path == url
            links.append(NavLink(label=label, url=url, current=current))
        if links:
            groups.append(links)
    return groups
