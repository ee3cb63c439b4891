"""Uploaded documents: the first bytes decide the type, never the browser's word."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from apps.core.exceptions import ApplicationError

_SIGNATURES = ((b"%PDF", "application/pdf"), (b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def validate_document(document: UploadedFile, *, field: str) -> str:
    """Check size and type (PDF, PNG or JPEG) and return the sniffed content type."""
    limit = settings.VERIFICATION_DOCUMENT_MAX_BYTES
    if document.size is None or document.size > limit:
        raise ApplicationError(f"{document.name} is larger than {limit // (1024 * 1024)} MB.", field=field)
    head = document.read(8)
    document.seek(0)
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            document.content_type = content_type
            return content_type
    raise ApplicationError(f"{document.name} is not a PDF, PNG or JPEG file.", field=field)
