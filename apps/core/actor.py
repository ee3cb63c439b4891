"""Who is acting: a signed-in user, an API key, or the system (a scheduled task)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.accounts.models import ApiKey, User


@dataclass(frozen=True)
class Actor:
    user: User | None = None
    api_key: ApiKey | None = None
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls()

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        auth = getattr(request, "auth", None)
        # core imports no app: an API key says what it is (apps.accounts.models.ApiKey).
        api_key = auth if getattr(auth, "is_api_key", False) is True else None
        user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
        return cls(
            user=user,
            api_key=api_key,
            ip_address=getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"API key {self.api_key.name} ({self.api_key.prefix})"
        if self.user is not None:
            return self.user.email
        return "system"
