"""Settings for the test suite: the production module plus test-only overrides.

The services themselves (PostgreSQL, Redis) come from the environment that
`make test` sets up; nothing here pretends to be one of them.
"""

import os

os.environ.setdefault("DEBUG", "true")

from skypemanager.settings import *  # noqa: F403
from skypemanager.settings import CACHES, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# locmem for the test process; a Celery worker started by a test writes files instead.
EMAIL_BACKEND = os.environ.get("TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
# Tasks run in-process unless a test starts a real worker and switches this off. The worker
# a test starts (TEST_CELERY_WORKER=1) queues its retries and follow-ups through the broker, as
# in production (eager, a retry would run at once, inline, ignoring its countdown).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("TEST_CELERY_WORKER") != "1"
# A worker a test starts (tests/helpers/workers.py) queues to the test's own queue.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEST_CELERY_QUEUE", "celery")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    # On disk: a Celery worker a test starts writes the file the test process serves.
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ.get("EXPORTS_ROOT", "/tmp/skypemanager-test-exports")},  # noqa: S108
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A fresh connection per request keeps threads in concurrency tests independent.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# The rate limits are out of the way of ordinary tests; tests/core/test_rate_limits.py sets
# them (and starts servers with production settings and real limits).
API_RATE_LIMIT = "100000/minute"
API_AUTH_FAILURE_RATE = "100000/minute"
SECURE_SSL_REDIRECT = False
ALLOW_PRIVATE_SIP_ADDRESSES = True

# Each pytest-xdist worker gets a Redis database of its own for the cache (rate
# limits live there), so clearing it between tests never touches another worker.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    _base, _, _db = CACHES["default"]["LOCATION"].rpartition("/")
    CACHES = {
        "default": {
            "BACKEND": CACHES["default"]["BACKEND"],
            "LOCATION": f"{_base}/{(int(_db or 0) + 1 + int(_worker or 0)) % 16}",
        }
    }
