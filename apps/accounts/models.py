from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from apps.companies.models import Capability, Company, CompanyOwnedQuerySet, Role, role_can
from apps.core.models import PublicModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with an e-mail address. Platform staff have is_staff."""

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[assignment,misc]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_unique_case_insensitive")]

    def __str__(self) -> str:
        return self.email


class ApiKey(PublicModel):
    """A company's API key. The key is shown once; only its SHA-256 is kept."""

    #: Keys act for the company, so they never hold ownership powers.
    ROLES: ClassVar[list[str]] = [Role.ADMIN, Role.BILLING, Role.VIEWER]
    #: How apps.core.actor tells an API key from other request.auth values without importing us.
    is_api_key: ClassVar[bool] = True

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=80)
    role = models.CharField(max_length=10, choices=[(r, Role(r).label) for r in ROLES])
    # The visible, non-secret start of the key ("sm_" + 8 characters), used to find it.
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=["admin", "billing", "viewer"]), name="api_key_role_allowed"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def rate_limit_ident(self) -> str:
        """Each key has an API rate-limit budget of its own (apps.core.throttling)."""
        return f"key:{self.pk}"

    def can(self, capability: Capability) -> bool:
        return role_can(self.role, capability)
