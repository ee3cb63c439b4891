"""The static files go through production's storage (whitenoise's compressed manifest): every
file a stylesheet or script names must exist, or `collectstatic` (the Docker build) fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command


def test_collectstatic_with_the_production_storage_succeeds(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = str(tmp_path / "static")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

    call_command("collectstatic", "--noinput", verbosity=0)

    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert "vendor/chartjs/chart.umd.min.js" in manifest
    assert "css/app.css" in manifest
