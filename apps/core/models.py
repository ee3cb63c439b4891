import uuid

from django.db import models


class PublicModel(models.Model):
    """A row with a UUID public id: the only id that appears in URLs and the API."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
