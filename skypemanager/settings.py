"""Settings for every environment, read from environment variables.

With only DEBUG=true this is the laptop default (what `make run` uses): a SQLite
file, Celery tasks run in-process, e-mail printed to the console. Production sets
SECRET_KEY, DATABASE_URL, REDIS_URL and DEBUG=false (see README.md for the table).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from skypemanager.env import env_bool, env_choice, env_decimal, env_int, env_list, env_str
from skypemanager.schedule import BEAT_SCHEDULE

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless asked for: `make run` sets DEBUG=true for the laptop default, and a
# production host that forgets it gets the safe behaviour.
DEBUG = env_bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY", "insecure-laptop-only-key-" + "x" * 40)
else:
    SECRET_KEY = env_str("SECRET_KEY")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters outside debug.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The public base URL used in e-mailed links (invitations) when no request is at hand.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_celery_beat",
    "django_countries",
    "phonenumber_field",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "apps.core",
    "apps.accounts",
    "apps.companies",
    "apps.audit",
    "apps.billing",
    "apps.sip_profiles",
    "apps.business_accounts",
    "apps.numbers",
    "apps.callerid",
    "apps.rating",
    "apps.cdrs",
    "apps.bundles",
    "apps.edge",
    "apps.reports",
    "apps.planning",
    "apps.demo",
]

MIDDLEWARE = [
    # Outermost: while PostgreSQL is unreachable every layer below would fail with a 500.
    "apps.core.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below) and Permissions-Policy headers.
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Before sessions and authentication: an API body over the limit, or a NUL in a query
    # parameter, is refused in the API's error body before anything reads it.
    "apps.core.middleware.ApiInputMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The *ForBrowsers ones are Django's (and django-htmx's) skipped for API-key requests,
    # which never read a session, a CSRF cookie, messages or htmx headers (apps.core.middleware).
    "apps.core.middleware.SessionForBrowsers",
    "django.middleware.common.CommonMiddleware",
    "apps.core.middleware.CsrfForBrowsers",
    "apps.core.middleware.AuthenticationForBrowsers",
    "apps.core.middleware.MessagesForBrowsers",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.HtmxForBrowsers",
    "allauth.account.middleware.AccountMiddleware",
    "apps.core.middleware.ClientAddressMiddleware",
]
# Django's W003 looks for CsrfViewMiddleware by name; CsrfForBrowsers is a subclass of it, and
# apps.core.checks checks that by class (and CSRF_COOKIE_SECURE, W016, which W003 gates).
SILENCED_SYSTEM_CHECKS = ["security.W003"]

ROOT_URLCONF = "skypemanager.urls"
WSGI_APPLICATION = "skypemanager.wsgi.application"
ASGI_APPLICATION = "skypemanager.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.companies.context_processors.current_company",
                "apps.core.context_processors.product",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://) or SQLite (sqlite://).")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Seconds to wait for a connection: while PostgreSQL is unreachable a request answers 503
    # after at most this, instead of holding a web worker for libpq's default (forever).
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 3, minimum=2, maximum=60
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Redis and Celery ------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    # Redis down: reads are misses and writes are dropped, never a 500 (apps/core/cache.py).
    CACHES = {"default": {"BACKEND": "apps.core.cache.ResilientRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# No broker configured (the laptop default): tasks run in-process, synchronously.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
if CELERY_TASK_ALWAYS_EAGER and not CELERY_BROKER_URL:
    # In-process tasks still open a producer: an in-memory one, not a connection to a broker
    # with no host (kombu's "No hostname was supplied" warning on every task).
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# At-least-once delivery: a task is acknowledged after it ran, and a task whose
# worker died is put back. Tasks must therefore be idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis hands an unacknowledged task (its worker was killed) to another worker after
    # this. It must exceed the longest task's hard limit, or a task still running would be
    # run twice at once: the CSV imports' 900 s (tests/core/test_schedule.py checks every
    # task), plus a minute. So a killed task runs again within ~17 minutes, not an hour.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 960, minimum=60),
    # Look for such tasks every 10 s (kombu's default scans every 100 s).
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    # A dead or hung Redis fails a publish (a request queueing a task) or a worker's read
    # within seconds instead of never; idle connections are pinged, half-open ones dropped.
    "socket_connect_timeout": 3,
    "socket_timeout": 10,  # longer than the worker's 1 s BRPOP poll
    "socket_keepalive": True,
    "health_check_interval": 10,
}
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_TASK_TIME_LIMIT.")
# Redis restarted or unreachable: the worker (and beat) keep reconnecting, forever, also when
# Redis is not up yet at start. docker-compose's `restart: unless-stopped` restarts a worker
# that exits anyway; this keeps it from exiting in the first place.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# On a lost broker connection, tasks already running finish their work rather than being
# killed half-way (between a recharge claim and its Stripe call, say). Their acknowledgement
# is lost with the connection, so Redis redelivers them after the visibility timeout; every
# task is idempotent, and the rerun finds the work done. (Celery 6 will default to True.)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Authentication ---------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_choice("ACCOUNT_EMAIL_VERIFICATION", "mandatory", {"mandatory", "optional", "none"})
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_FORMS = {"signup": "apps.accounts.forms.CompanySignupForm"}
ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"
# The product's name in e-mails (subjects, signatures), page titles, allauth's e-mails (their
# subject prefix and "site name", never the host name), the TOTP issuer and the API's title.
PRODUCT_NAME = env_str("PRODUCT_NAME", "Skype Manager")
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{PRODUCT_NAME}] "
# allauth's defaults, written out so they are visible and tunable:
# failed logins per user/IP, sign-ups per IP, password resets per e-mail.
ACCOUNT_RATE_LIMITS = {
    "login": env_str("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": env_str("RATE_LIMIT_LOGIN_FAILED", "10/m/ip,5/5m/key"),
    "signup": env_str("RATE_LIMIT_SIGNUP", "20/m/ip"),
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = PRODUCT_NAME
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG

# --- REST API ---------------------------------------------------------------
# How many proxies in front of the app append to X-Forwarded-For (0: trust none).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=5)
# The API rate limit keeps its counters in Redis. While Redis is down it is either not
# enforced ("open", logged once per outage) or every API request answers 503 ("closed").
# allauth's login and sign-up limits always fail open (the password check still applies).
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "1200/minute")
# Failed API-key authentications per client address; past it every key from there gets 429.
API_AUTH_FAILURE_RATE = env_str("API_AUTH_FAILURE_RATE", "20/minute")
RATE_LIMIT_WHEN_REDIS_DOWN = env_choice("RATE_LIMIT_WHEN_REDIS_DOWN", "open", {"open", "closed"})
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Deny by default: every view opts in to what it allows.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.negotiation.ContentNegotiation",
    # DRF's parsers, with depth and NUL checks on every body (apps/core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.JSONParser",
        "apps.core.parsers.MultiPartParser",
        "apps.core.parsers.FormParser",
    ],
    # OPTIONS answers from the view's InputSerializer (DRF's default needs serializer_class).
    "DEFAULT_METADATA_CLASS": "apps.core.metadata.Metadata",
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    # Counted in Redis, one atomic increment per request, per API key or session user.
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.ApiRateThrottle"],
    # The client address for DRF is ours (apps.core.middleware.client_ip): only the last
    # TRUSTED_PROXY_COUNT hops of X-Forwarded-For are believed.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# The schema (/api/v1/schema/) and docs (/api/v1/docs/) need no sign-in unless this is off.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", default=True)
SPECTACULAR_SETTINGS = {
    "TITLE": f"{PRODUCT_NAME} API",
    "DESCRIPTION": (
        "Manage a company's SIP trunking service. Authenticate with an API key "
        "(`Authorization: Bearer <key>`) or a browser session. Errors always have the shape "
        '`{"detail": str, "code": str, "errors": {field: [str]}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.companies.models.Role",
        "ApiKeyRoleEnum": ["admin", "billing", "viewer"],
        "SipProfileStatusEnum": "apps.sip_profiles.models.SipProfile.Status",
        "ProvisioningStateEnum": "apps.sip_profiles.models.SipProfile.Provisioning",
        "EdgeNodeRoleEnum": "apps.edge.models.EdgeNode.Role",
        "CreditPurchaseStatusEnum": "apps.billing.models.CreditPurchase.Status",
        "CreditPurchaseMethodEnum": "apps.billing.models.CreditPurchase.Method",
        "ExportKindEnum": "apps.cdrs.models.Export.Kind",
        "ExportStatusEnum": "apps.cdrs.models.Export.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.describe_common_fields",
    ],
    "TAGS": [
        {"name": "company", "description": "The company the request acts for: its details and purchase policy."},
        {"name": "members", "description": "The company's members and their roles."},
        {"name": "invitations", "description": "Inviting people to the company by e-mail."},
        {"name": "verification", "description": "Company verification: higher limits, bank wire, landlines."},
        {"name": "api-keys", "description": "API keys: managed by signed-in owners and admins only."},
        {"name": "sip-profiles", "description": "SIP profiles (trunks): credentials, channels, credit, bundles."},
        {"name": "business-accounts", "description": "Callable names routed to a SIP profile."},
        {"name": "numbers", "description": "Online Numbers: buying, routing and releasing them."},
        {"name": "caller-ids", "description": "Caller IDs: Online Numbers and proven landlines."},
        {"name": "credit", "description": "Balances, credit purchases (Stripe, bank wire) and auto-recharge."},
        {"name": "payment-methods", "description": "Cards saved at Stripe for later payments."},
        {"name": "ledger", "description": "The company balance's statement."},
        {"name": "rates", "description": "What calls cost."},
        {"name": "calls", "description": "The company's calls: how each was paid and what it cost (JSON or CSV)."},
        {"name": "exports", "description": "Large CSV files written in the background, with progress; kept a day."},
        {"name": "reports", "description": "Monthly reports: summary, usage, purchases and allocations."},
        {"name": "audit-events", "description": "Who changed what, when and from where."},
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer", "description": "An API key."}}
    },
}

# --- Internationalisation -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ----------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads (verification documents) are private: never served under a public URL.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/media-not-public/"
# Background exports (apps.cdrs.models.Export): a folder every web and worker process reads.
EXPORTS_ROOT = Path(env_str("EXPORTS_ROOT", str(MEDIA_ROOT / "exports")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "exports": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": EXPORTS_ROOT}},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
VERIFICATION_DOCUMENT_MAX_BYTES = env_int("VERIFICATION_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)

# --- E-mail -----------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "apps.core.mail.ConsoleEmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "sent-mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{PRODUCT_NAME} <no-reply@skypemanager.invalid>")
# Who sells the credit, as printed on receipts: the business's name, its postal address (lines
# separated by newlines, or by "\n" in a one-line .env), its VAT or tax number and an e-mail.
SELLER_NAME = env_str("SELLER_NAME", PRODUCT_NAME)
SELLER_ADDRESS = tuple(
    line.strip() for line in env_str("SELLER_ADDRESS", "").replace("\\n", "\n").splitlines() if line.strip()
)
SELLER_TAX_NUMBER = env_str("SELLER_TAX_NUMBER", "")
SELLER_EMAIL = env_str("SELLER_EMAIL", "")
if SELLER_EMAIL and "@" not in SELLER_EMAIL.strip("@"):
    raise ImproperlyConfigured(f"SELLER_EMAIL must be an e-mail address, not {SELLER_EMAIL!r}.")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security -----------------------------------------------------------------
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env_bool("BEHIND_TLS_PROXY", default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health/$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12, minimum=300)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page: our own scripts, styles, images and fonts only, no inline script, no framing.
# Style attributes (style="...") are allowed; <style> elements and inline scripts are not.
# The payment pages add Stripe's origins (apps.billing.purchases.views).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Browser features the portal never uses are off for it and anything it embeds; WebAuthn
# (passkeys) and the Payment Request API (Stripe) stay with our own origin.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    "accelerometer": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "usb": [],
    "payment": ["self", "https://js.stripe.com"],
    "publickey-credentials-get": ["self"],
}

# --- Product settings ---------------------------------------------------------
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7, minimum=1, maximum=90)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# A process answers an API key it verified this many seconds ago from memory, without a query;
# a key revoked elsewhere stops working within this time (0: look every key up).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5, minimum=0, maximum=60)
# Stripe: card and PayPal purchases, saved cards for auto-recharge (apps.billing.purchases.clients).
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "")
# Seconds. A request that calls Stripe holds a web worker thread at most connect + read.
STRIPE_CONNECT_TIMEOUT = float(env_decimal("STRIPE_CONNECT_TIMEOUT", Decimal("3")))
STRIPE_READ_TIMEOUT = float(env_decimal("STRIPE_READ_TIMEOUT", Decimal("8")))
# Stripe.js for the card form. localstripe serves its mock of it under the API base.
STRIPE_JS_URL = env_str(
    "STRIPE_JS_URL",
    f"{STRIPE_API_BASE.rstrip('/')}/js.stripe.com/v3/" if STRIPE_API_BASE else "https://js.stripe.com/v3/",
)
# Shown with every bank-wire purchase, next to its reference. Set the real account in production.
BANK_WIRE_INSTRUCTIONS = env_str(
    "BANK_WIRE_INSTRUCTIONS",
    "Account name: Skype Manager Ltd (example)\nBank: Example Bank plc\n"
    "IBAN: GB00 EXMP 0000 0000 0000 00\nBIC: EXMPGB2L",
).replace("\\n", "\n")
# Card and PayPal purchases nobody paid for are canceled after this many hours.
CREDIT_PURCHASE_EXPIRY_HOURS = env_int("CREDIT_PURCHASE_EXPIRY_HOURS", 24, minimum=1)
# A bank-wire purchase whose money never arrived is canceled after this many days.
WIRE_PURCHASE_EXPIRY_DAYS = env_int("WIRE_PURCHASE_EXPIRY_DAYS", 30, minimum=1)
SIP_DOMAIN = env_str("SIP_DOMAIN", "sip.skypemanager.invalid")
# The edge's public host names, shown on the "Connect your PBX" page until edge
# nodes are managed in the portal (primary first).
EDGE_PUBLIC_HOSTS = env_list("EDGE_PUBLIC_HOSTS", ["sip1.skypemanager.invalid", "sip2.skypemanager.invalid"])
# Private, loopback, link-local, reserved and documentation-range source addresses are refused for IP
# authentication unless this is on (tests and lab set-ups on loopback).
ALLOW_PRIVATE_SIP_ADDRESSES = env_bool("ALLOW_PRIVATE_SIP_ADDRESSES", default=False)
# The SIP edge (apps.edge). Nodes and carriers are rows (admin, `manage.py edge_node`); sync
# pushes profile changes to every enabled node when on (off on a laptop: no node to reach).
EDGE_SYNC_ENABLED = env_bool("EDGE_SYNC_ENABLED", default=False)
# Seconds one JSON-RPC call or node database connection may take before the node counts as down.
EDGE_NODE_TIMEOUT = env_int("EDGE_NODE_TIMEOUT", 3, minimum=1)
# Milliseconds the live state of a profile (the profile page's card, GET sip-profiles/{id}/status/)
# waits for the nodes, asked in parallel: a node that has not answered by then is shown as not
# answering, so a slow node cannot hold the answer past a second (a node answers in
# milliseconds; the rest of the second is the request's own work on a busy server).
EDGE_STATUS_TIMEOUT_MS = env_int("EDGE_STATUS_TIMEOUT_MS", 600, minimum=50, maximum=950)
# rtpengine's media ports on every node (`edge_run` starts it with them; docker-compose passes the
# same variables): the range the "Connect your PBX" page tells PBX admins to allow media from.
EDGE_RTP_PORT_MIN = env_int("EDGE_RTP_PORT_MIN", 30000, minimum=1024, maximum=65534)
EDGE_RTP_PORT_MAX = env_int("EDGE_RTP_PORT_MAX", 40000, minimum=EDGE_RTP_PORT_MIN + 1, maximum=65535)
EDGE_KAMAILIO_CFG = env_str("EDGE_KAMAILIO_CFG", str(BASE_DIR / "deploy" / "kamailio" / "kamailio.cfg"))
# Kamailio's per-module SQL files (Debian: kamailio-postgres-modules).
EDGE_KAMAILIO_SQL_DIR = env_str("EDGE_KAMAILIO_SQL_DIR", "/usr/share/kamailio/postgres")
# CDR import from the nodes (apps.edge.cdr_import): records read per batch (one transaction
# each), and how old a record must be before a missing id before it is taken as an insert
# that rolled back rather than one still to commit (ids are not commit order).
EDGE_CDR_BATCH_SIZE = env_int("EDGE_CDR_BATCH_SIZE", 5000, minimum=1)
EDGE_CDR_SETTLE_SECONDS = env_int("EDGE_CDR_SETTLE_SECONDS", 10, minimum=1)
MINIMUM_PURCHASE = env_decimal("MINIMUM_PURCHASE", Decimal("10"))
# CDRs rated per database transaction. Larger batches rate faster (the ledger work of a batch
# grows with the profiles it touches, not its calls); smaller ones hold the profiles' balance
# rows locked for less time (about 1.3 s for 100,000 on 2 cores).
RATING_BATCH_SIZE = env_int("RATING_BATCH_SIZE", 100_000, minimum=1)
# Call detail records (CDRs and their ratings) are kept this many months, then deleted by a
# periodic task in bounded batches; the daily call figures the reports read are kept. Six
# months is the least the reports promise, so a smaller value stops the process at start.
CALL_RETENTION_MONTHS = env_int("CALL_RETENTION_MONTHS", 6, minimum=6, maximum=1200)
# CDRs deleted per transaction, and at most this many transactions per run (the task runs
# hourly, so a backlog is worked off over several runs without a long lock or a long run).
CALL_RETENTION_BATCH_SIZE = env_int("CALL_RETENTION_BATCH_SIZE", 10_000, minimum=1)
CALL_RETENTION_MAX_BATCHES = env_int("CALL_RETENTION_MAX_BATCHES", 50, minimum=1)
# A CSV of more rows than this (the Calls list's) is written by a background task, with a
# progress bar and a download link, instead of streamed to the browser; the file and its row
# are deleted EXPORT_TTL_HOURS later.
EXPORT_ASYNC_ROWS = env_int("EXPORT_ASYNC_ROWS", 10_000, minimum=1)
EXPORT_TTL_HOURS = env_int("EXPORT_TTL_HOURS", 24, minimum=1)
EXPORT_PROGRESS_EVERY = env_int("EXPORT_PROGRESS_EVERY", 1000, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own loggers print through the root's handler only (its default adds a second
        # console handler under DEBUG, so every line came twice).
        "django": {"handlers": [], "level": "INFO"},
        # 4xx answers (an expected 403, a 404 for a favicon) are the access log's business, not
        # warnings with a traceback; a 500 is still logged here, with its traceback.
        "django.request": {"level": "ERROR"},
        # Tasks run in-process (the laptop default) need no "Task ... succeeded" line each.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}
