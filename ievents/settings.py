"""Settings for iEvents, read from the environment.

Every setting has one home here and is listed in the README. Development defaults are
safe to run on a laptop; production (``DEBUG=0``) refuses them.
"""

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IEVENTS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-8f1c2d"
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")

if not DEBUG:
    if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("Production needs SECRET_KEY: 50+ random characters, not the dev key.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("Production needs ALLOWED_HOSTS (comma-separated host names).")

# Keys for secrets at rest (Fernet). The first encrypts; all decrypt, so a new key can be
# put in front and the old ones retired after `manage.py rotate_encryption_keys`.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("Production needs FIELD_ENCRYPTION_KEYS (Fernet keys, comma-separated).")
    import base64

    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(("field-encryption:" + SECRET_KEY).encode()).digest()).decode()
    ]

INSTALLED_APPS = [
    "modeltranslation",  # the organizer's texts in each language (ievents/translation.py); before the admin
    "ievents.admin_apps.IEventsAdminConfig",  # django.contrib.admin with the iEvents site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",  # login throttling (ievents/sign_in.py)
    "django_otp",  # two-factor sign-in (ievents/two_factor.py)
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ievents",
    "checkout",
    "webhooks",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ievents.nul_bytes.RefuseNulBytesMiddleware",  # PostgreSQL cannot compare with NUL: 404/400, not 500
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # Accept-Language, or the switcher's cookie
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): signed in with a second factor
    "ievents.two_factor_views.TwoFactorMiddleware",  # the admin waits for the code, or for enrolment
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every page
    "ievents.idempotency.IdempotencyKeyMiddleware",  # replays repeated API POSTs
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the lock-out page
]

if not DEBUG:  # the dev server serves static files itself
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "ievents.urls"
WSGI_APPLICATION = "ievents.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two buyers serialise on
    # BEGIN instead of failing with "database is locked" half-way through a reservation.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # SQLite has no covering indexes: it builds them on their key columns alone (the same
    # answers; only PostgreSQL reads them without the table).
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
elif env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # PostgreSQL: parameters bound by the server, and a statement run twice on a connection
    # is prepared there, so it is not parsed and planned again (bench_inbound_webhooks: a
    # third less PostgreSQL CPU per webhook). Off behind a PgBouncer in transaction mode
    # older than 1.21, where a prepared statement may not find its server connection.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery ---------------------------------------------------------------------------
# With no broker configured, a filesystem transport lets `make run` start a real worker
# without Redis. Postgres stays the source of truth either way (see webhooks/outbox.py).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
BROKER_TIMEOUT_SECONDS = float(os.environ.get("BROKER_TIMEOUT_SECONDS", "2"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for sub in ("out", "processed"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    # kombu's filesystem transport, written atomically and skipping an unreadable message
    # instead of dying on it (ievents/broker_files.py).
    CELERY_BROKER_TRANSPORT = "ievents.broker_files:Transport"
else:
    # A broker that stalls without closing its connections (a frozen Redis, a network that
    # drops packets) must not hold an attendee's request: every socket operation gives up
    # after BROKER_TIMEOUT_SECONDS, and the outbox's sweep sends what could not be enqueued.
    # No acknowledgement emulation on Redis: it costs two Redis transactions per message
    # (about a third of a worker's CPU per delivery) to protect what needs no protection
    # here: every task is a delivery or a periodic job whose work the database still holds,
    # and the sweep re-enqueues what a crashed worker's lost messages carried. A warm
    # shutdown still hands its reserved messages back to the queue.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "ack_emulation": False,
        "socket_timeout": BROKER_TIMEOUT_SECONDS,
        "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
    }
# One immediate retry (a pooled connection that died with a broker restart), not Celery's
# default of three with waits: the request that publishes is an attendee's.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT_SECONDS
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless
# this is set, and reconnecting costs more than a webhook delivery does. Connections are
# still recycled every 2 × this many tasks (and by CONN_MAX_AGE and health checks).
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
CELERY_BEAT_SCHEDULE = {
    "release-expired-holds": {"task": "checkout.tasks.release_expired_holds", "schedule": 30.0},
}

# --- Checkout -------------------------------------------------------------------------
CHECKOUT_HOLD_MINUTES = int(os.environ.get("CHECKOUT_HOLD_MINUTES", "15"))
# The attendee's ticket email is sent at least once (checkout.emails.send_confirmation):
# a sender owns it this many seconds; the sweep, every CONFIRMATION_SWEEP_SECONDS, retries
# the ones not sent, for up to CONFIRMATION_GIVE_UP_HOURS after the purchase.
CONFIRMATION_LEASE_SECONDS = int(os.environ.get("CONFIRMATION_LEASE_SECONDS", "60"))
CONFIRMATION_SWEEP_SECONDS = float(os.environ.get("CONFIRMATION_SWEEP_SECONDS", "10"))
CONFIRMATION_GIVE_UP_HOURS = int(os.environ.get("CONFIRMATION_GIVE_UP_HOURS", "72"))
CELERY_BEAT_SCHEDULE["sweep-ticket-emails"] = {
    "task": "checkout.tasks.sweep_confirmations", "schedule": CONFIRMATION_SWEEP_SECONDS,
}
# Emails about an order after the purchase (checkout.attendee_emails): written with the
# change they tell, sent by a worker or by this sweep under the same lease and give-up time.
CELERY_BEAT_SCHEDULE["sweep-attendee-emails"] = {
    "task": "checkout.tasks.sweep_attendee_emails", "schedule": CONFIRMATION_SWEEP_SECONDS,
}
# A Multibanco reference not paid yet is recalled to the attendee this long before it expires.
PAYMENT_REMINDER_HOURS = int(os.environ.get("PAYMENT_REMINDER_HOURS", "24"))
CELERY_BEAT_SCHEDULE["remind-pending-payments"] = {
    "task": "payments.tasks.remind_pending_payments", "schedule": 600.0,
}
# Find my order: how long a link to an order works, and how many requests one address
# (and one client) may make in the window.
ORDER_LINK_MAX_AGE_DAYS = int(os.environ.get("ORDER_LINK_MAX_AGE_DAYS", "30"))
FIND_ORDER_MAX_PER_EMAIL = int(os.environ.get("FIND_ORDER_MAX_PER_EMAIL", "3"))
FIND_ORDER_MAX_PER_CLIENT = int(os.environ.get("FIND_ORDER_MAX_PER_CLIENT", "10"))
FIND_ORDER_WINDOW_SECONDS = int(os.environ.get("FIND_ORDER_WINDOW_SECONDS", "3600"))
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CHECKOUT_API_SECRET = os.environ.get("CHECKOUT_API_SECRET", "")

# --- Payment provider fallbacks (used for org "_" or when a tenant has no own secret) --
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# Where Stripe's API is; only tests and offline demos point it at a stand-in server.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
EASYPAY_ACCOUNT_ID = os.environ.get("EASYPAY_ACCOUNT_ID", "")
EASYPAY_API_KEY = os.environ.get("EASYPAY_API_KEY", "")
EASYPAY_WEBHOOK_SECRET = os.environ.get("EASYPAY_WEBHOOK_SECRET", "")
EASYPAY_API_BASE = os.environ.get("EASYPAY_API_BASE", "https://api.test.easypay.pt/2.0")
IFTHENPAY_ANTI_PHISHING_KEY = os.environ.get("IFTHENPAY_ANTI_PHISHING_KEY", "")
IFTHENPAY_MB_KEY = os.environ.get("IFTHENPAY_MB_KEY", "")
IFTHENPAY_MBWAY_KEY = os.environ.get("IFTHENPAY_MBWAY_KEY", "")
IFTHENPAY_ENTITY = os.environ.get("IFTHENPAY_ENTITY", "")
IFTHENPAY_SUB_ENTITY = os.environ.get("IFTHENPAY_SUB_ENTITY", "")
IFTHENPAY_API_BASE = os.environ.get("IFTHENPAY_API_BASE", "https://api.ifthenpay.com")
# Seconds we wait for a provider's API (connect + read) before calling it unavailable.
PAYMENT_PROVIDER_TIMEOUT = float(os.environ.get("PAYMENT_PROVIDER_TIMEOUT", "10"))
# How long a Multibanco reference stays payable; the ticket hold is extended to match.
MULTIBANCO_DEADLINE_HOURS = int(os.environ.get("MULTIBANCO_DEADLINE_HOURS", "48"))

# --- Limits on taking tickets from the attendee pages (checkout/limits.py) ------------------
# Per client address and event: tickets held at once, and checkouts opened in the window
# (0 turns a limit off). The API is exempt: its caller is the organizer's own server.
CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS = int(os.environ.get("CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS", "20"))
CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS = int(os.environ.get("CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS", "10"))
CHECKOUT_LIMIT_WINDOW_SECONDS = int(os.environ.get("CHECKOUT_LIMIT_WINDOW_SECONDS", "600"))
# Addresses or networks the limits never apply to (a box office's terminals behind one
# address); in development, the machine itself.
CHECKOUT_LIMITS_EXEMPT_ADDRESSES = env_list("CHECKOUT_LIMITS_EXEMPT_ADDRESSES", "127.0.0.1,::1" if DEBUG else "")
# A hold stretched for a pending payment (a Multibanco reference) ends at most this long
# after the checkout opened, whatever deadline the reference has.
CHECKOUT_MAX_PENDING_HOLD_HOURS = int(os.environ.get("CHECKOUT_MAX_PENDING_HOLD_HOURS",
                                                     str(MULTIBANCO_DEADLINE_HOURS)))
# Guessing promo codes (checkout.promo): wrong, expired or used-up codes typed on an event's
# page, per client address and per event (all addresses together), in a sliding window.
PROMO_CODE_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("PROMO_CODE_MAX_FAILURES_PER_ADDRESS", "10"))
PROMO_CODE_MAX_FAILURES_PER_EVENT = int(os.environ.get("PROMO_CODE_MAX_FAILURES_PER_EVENT", "500"))
PROMO_CODE_FAILURE_WINDOW_SECONDS = int(os.environ.get("PROMO_CODE_FAILURE_WINDOW_SECONDS", "900"))
# Proxies in front of the web processes that append the client's address to
# X-Forwarded-For (a load balancer: 1). 0: the connection's own address, X-Forwarded-For
# ignored (anyone can send one). Used for these limits and the gate's rate limit.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# --- Outbound webhooks ----------------------------------------------------------------
# Seconds between delivery attempts; the default sums to about a day over 8 attempts.
WEBHOOK_RETRY_SCHEDULE = [
    int(x) for x in env_list("WEBHOOK_RETRY_SCHEDULE", "30,120,600,1800,3600,10800,21600,43200")
]
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", DEBUG)
WEBHOOK_MAX_RESPONSE_BYTES = int(os.environ.get("WEBHOOK_MAX_RESPONSE_BYTES", str(64 * 1024)))
INBOUND_WEBHOOK_MAX_BYTES = int(os.environ.get("INBOUND_WEBHOOK_MAX_BYTES", str(256 * 1024)))

# --- Outbound delivery (webhooks/delivery.py; docs/notifications.md) ----------------------
# Total deadline of one delivery POST (connect, send, read the capped response).
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
# How long a worker owns a delivery it claimed; must exceed the timeout. A worker that dies
# mid-delivery only delays it by this much: the sweep hands it to another worker after.
WEBHOOK_LEASE_SECONDS = float(os.environ.get("WEBHOOK_LEASE_SECONDS", "60"))
# How often the sweep re-enqueues overdue deliveries (lost broker messages, dead workers).
WEBHOOK_SWEEP_SECONDS = float(os.environ.get("WEBHOOK_SWEEP_SECONDS", "15"))
# An endpoint failing without a single success for this long is disabled, its organizer told.
WEBHOOK_DISABLE_AFTER_DAYS = float(os.environ.get("WEBHOOK_DISABLE_AFTER_DAYS", "5"))
CELERY_BEAT_SCHEDULE["sweep-due-deliveries"] = {
    "task": "webhooks.tasks.sweep_deliveries", "schedule": WEBHOOK_SWEEP_SECONDS,
}

# --- Pre-payment gate (webhooks/gate.py; docs/gate.md) ----------------------------------
# Form submissions that may reach the gate per checkout session and per client IP within
# the window: stops an attendee probing a whitelist with hundreds of emails.
GATE_RATE_LIMIT_PER_SESSION = int(os.environ.get("GATE_RATE_LIMIT_PER_SESSION", "10"))
GATE_RATE_LIMIT_PER_IP = int(os.environ.get("GATE_RATE_LIMIT_PER_IP", "30"))
GATE_RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("GATE_RATE_LIMIT_WINDOW_SECONDS", "600"))
# Circuit breaker: after this many consecutive failed calls the gate is not called for the
# cool-down (its on-error policy applies at once); then one probe call decides.
GATE_BREAKER_FAILURES = int(os.environ.get("GATE_BREAKER_FAILURES", "5"))
GATE_BREAKER_COOLDOWN_SECONDS = float(os.environ.get("GATE_BREAKER_COOLDOWN_SECONDS", "30"))
# ... and only if those errors came from at least this many clients (address keys): one
# attendee whose details make the gate fail cannot open it for everyone.
GATE_BREAKER_MIN_CLIENTS = int(os.environ.get("GATE_BREAKER_MIN_CLIENTS", "3"))
# The gate's own message is shown to the attendee as plain text, cut to this length.
GATE_MESSAGE_MAX_CHARS = int(os.environ.get("GATE_MESSAGE_MAX_CHARS", "300"))
# CA bundle (a PEM file) that outbound https:// calls (gate and notifications) trust;
# empty: the usual public CAs (certifi). For receivers behind a private CA.
WEBHOOK_CA_BUNDLE = os.environ.get("WEBHOOK_CA_BUNDLE", "")

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["ievents.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["ievents.api_auth.HasOrganization"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ievents.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["ievents.api_parsers.SafeJSONParser"],  # JSONParser + a 400 for "[[[[…" bombs
    "UNAUTHENTICATED_USER": None,
}
# Cursor pagination of every list (ievents/api_pagination.py) and Idempotency-Key replay
# of every POST (ievents/idempotency.py): a repeat within the TTL returns the first response.
API_PAGE_SIZE = int(os.environ.get("API_PAGE_SIZE", "20"))
API_MAX_PAGE_SIZE = 100
IDEMPOTENCY_KEY_TTL_SECONDS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_SECONDS", str(24 * 3600)))
SPECTACULAR_SETTINGS = {
    "TITLE": "iEvents checkout API",
    "DESCRIPTION": "Events, checkout sessions, the pre-payment gate and webhook endpoints.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ievents.idempotency.document_idempotency_key",
    ],
}

# --- Auth, i18n, static, email ---------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en"
# The attendee's pages, emails and messages: English and European Portuguese. Translations
# live in locale/<locale>/LC_MESSAGES/django.po, compiled by `manage.py compilemessages`.
LANGUAGES = [("en", "English"), ("pt-pt", "Português")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The organizer's own texts (event name and description, ticket type names, questions and
# their choices) are written per language (``name_en``, ``name_pt_pt``: ievents/translation.py);
# ``name`` reads the active language's, else the other's, so nobody sees an empty name.
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_FALLBACK_LANGUAGES = {"default": ("en", "pt-pt"), "en": ("pt-pt",), "pt-pt": ("en",)}

# Dates and numbers as each language writes them in the back office (ievents/formats/).
FORMAT_MODULE_PATH = ["ievents.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "tickets@ievents.localhost")
# The file backend (EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend) writes
# every email into this folder, one file per connection.
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
LOGIN_URL = "admin:login"

# --- Signing in to the back office (ievents/sign_in.py, ievents/two_factor.py; docs/security.md)
# django-axes counts failed logins per account and per client address (the one the checkout
# limits trust, TRUSTED_PROXY_COUNT; an IPv6 address as its /64): after LOGIN_FAILURE_LIMIT
# failures within LOGIN_LOCKOUT_MINUTES, that account, or that address, cannot log in until
# LOGIN_LOCKOUT_MINUTES pass without another try. Operators unlock with `manage.py axes_reset_username`
# / `axes_reset_ip` (docs/operations.md).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login before the password is checked
    "django.contrib.auth.backends.ModelBackend",
    # A member of an organization holds the admin's permissions on its screens: membership
    # alone opens the back office, the role narrows it (ievents/auth.py).
    "ievents.auth.MembershipPermissions",
]
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_LOCKOUT_MINUTES = int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15"))
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: the account, and the address
AXES_CLIENT_IP_CALLABLE = "ievents.sign_in.login_address"
AXES_LOCKOUT_CALLABLE = "ievents.sign_in.locked_out"
# No table of every successful login (who, from where, forever): failures only, and they
# expire with the cool-off.
AXES_DISABLE_ACCESS_LOG = True
# Two-factor sign-in: the name an authenticator app shows beside the account.
OTP_TOTP_ISSUER = os.environ.get("TWO_FACTOR_ISSUER", "iEvents")

# --- Content-Security-Policy (django-csp; docs/security.md) ---------------------------------
# Scripts and styles from our own static files only: no inline script, no inline event
# handler, no inline style. Forms may post to this site and be redirected on: a payment
# starts on the provider's page and a cancel returns to the organizer's cancel_url, and
# Chromium applies form-action to that redirect too, so any https address is allowed
# there (plain http as well in development, where stand-in providers run on loopback).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https:", *(["http:"] if DEBUG else [])],
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "ievents_cache",
    }
}

# Every line is written through the RedactSecrets filter (ievents/log_redaction.py): a URL
# parameter that carries a secret (an Ifthenpay callback's key, an Easypay secret) is
# masked, in runserver's access log (django.server) as in everything else. Django's own
# loggers write through the root's handler, so no unfiltered handler of Django's defaults
# is left. gunicorn's logs get the same filter from gunicorn.conf.py.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "ievents.log_redaction.RedactSecrets"}},
    "formatters": {
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}",
                          "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server",
                          "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # django-axes says its version at every start; its lock-outs are warnings.
        "axes.apps": {"level": "WARNING"},
    },
}

# --- Production hardening (checked by `manage.py check --deploy`) ---------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Retention and personal data (ievents/operations/retention.py, ievents/operations/erasure.py; docs/operations.md)
# How many days each kind of log is kept. Orders, payments, tickets and their transition
# history are never deleted: they are the organizer's accounts.
RETENTION_GATE_CALL_DAYS = int(os.environ.get("RETENTION_GATE_CALL_DAYS", "30"))
# Promo codes that did not work (checkout.promo guessing limits): the client's address, kept a day.
RETENTION_PROMO_CODE_FAILURE_DAYS = int(os.environ.get("RETENTION_PROMO_CODE_FAILURE_DAYS", "1"))
RETENTION_INBOUND_WEBHOOK_DAYS = int(os.environ.get("RETENTION_INBOUND_WEBHOOK_DAYS", "90"))
RETENTION_DELIVERY_ATTEMPT_DAYS = int(os.environ.get("RETENTION_DELIVERY_ATTEMPT_DAYS", "90"))
RETENTION_OUTBOX_EVENT_DAYS = int(os.environ.get("RETENTION_OUTBOX_EVENT_DAYS", "90"))
# Days an Idempotency-Key's record is kept after its replay window closed (then deleted).
RETENTION_IDEMPOTENCY_RECORD_DAYS = int(os.environ.get("RETENTION_IDEMPOTENCY_RECORD_DAYS", "0"))
# Rows deleted per statement, each in its own short transaction.
RETENTION_BATCH_SIZE = int(os.environ.get("RETENTION_BATCH_SIZE", "1000"))
RETENTION_INTERVAL_SECONDS = float(os.environ.get("RETENTION_INTERVAL_SECONDS", str(60 * 60)))
# Abandoned orders (expired, canceled, never paid) lose the person after this many days;
# completed ones this many days after their event.
PERSONAL_DATA_ABANDONED_DAYS = int(os.environ.get("PERSONAL_DATA_ABANDONED_DAYS", "30"))
PERSONAL_DATA_AFTER_EVENT_DAYS = int(os.environ.get("PERSONAL_DATA_AFTER_EVENT_DAYS", "730"))
CELERY_BEAT_SCHEDULE["prune-records"] = {
    "task": "ievents.tasks.prune_records", "schedule": RETENTION_INTERVAL_SECONDS,
}
# Browser sessions past their expiry (an attendee's kept draft with their details, an
# organizer's login) are deleted daily: Django never deletes them by itself.
CLEAR_SESSIONS_INTERVAL_SECONDS = int(os.environ.get("CLEAR_SESSIONS_INTERVAL_SECONDS", str(24 * 3600)))
CELERY_BEAT_SCHEDULE["clear-expired-sessions"] = {
    "task": "ievents.tasks.clear_expired_sessions", "schedule": CLEAR_SESSIONS_INTERVAL_SECONDS,
}
# Payment starts per order (each may cost a provider call, a Multibanco reference, a push
# to a phone) within a sliding window; a repeat Pay reuses an open reference instead.
PAYMENT_STARTS_PER_ORDER = int(os.environ.get("PAYMENT_STARTS_PER_ORDER", "5"))
PAYMENT_STARTS_WINDOW_SECONDS = int(os.environ.get("PAYMENT_STARTS_WINDOW_SECONDS", "600"))
