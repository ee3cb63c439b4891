"""Django set up for a benchmark that times pages in process: production settings on the
given database, in-process jobs (no Redis), and plain static files storage."""

from __future__ import annotations

import os


def setup_django(database_url: str, **env: str) -> None:
    """`env`: more settings' environment variables (e.g. EMAIL_BACKEND)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
    os.environ["REDIS_URL"] = ""  # job lock in process memory, tasks in-process
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "skypemanager.settings"
    import django
    from django.conf import settings

    # Before setup: models read their storages while they load (the exports' file field), and
    # the storages are fixed from then on. Static files as collected by a deployment are not
    # needed to time the pages' server side.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    django.setup()
