import uuid

from django.db import models


class PublicModel(models.Model):
    """A row with a UUID public id: the only id that appears in URLs and the API."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class ImportJob(PublicModel):
    """A staff CSV import run in the background, with progress the admin page polls."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (nothing imported)"

    kind = models.CharField(max_length=40)
    filename = models.CharField(max_length=200)
    # The uploaded text; kept so a retried task reads the same input.
    content = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    # [{"line": 3, "error": "..."}], every bad row.
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", null=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.filename} ({self.status})"

    @property
    def percent(self) -> int:
        return int(100 * self.processed_rows / self.total_rows) if self.total_rows else 0


class OnceToken(models.Model):
    """A page form's one-time token, claimed by the POST that acted on it (apps.core.once): the
    same form sent again finds it and is redirected to `location`, where the first went.
    A company page's tokens are the company's; a company-less page's, the user's."""

    endpoint = models.CharField(max_length=100)
    key = models.CharField(max_length=64)
    company = models.ForeignKey("companies.Company", on_delete=models.CASCADE, related_name="+", null=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+", null=True)
    location = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(company__isnull=True) ^ models.Q(user__isnull=True),
                name="once_token_company_or_user",
            ),
            models.UniqueConstraint(
                fields=["endpoint", "key", "company"],
                condition=models.Q(company__isnull=False),
                name="once_token_once_per_company",
            ),
            models.UniqueConstraint(
                fields=["endpoint", "key", "user"],
                condition=models.Q(company__isnull=True),
                name="once_token_once_per_user",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="once_token_age")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"
