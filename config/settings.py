"""Settings from the environment (12-factor). Embedded defaults: SQLite file, eager Celery."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DEBUG", default=False)
# Unset, the development key is used only with DEBUG or ALTPREF_LOCAL_DEV (make run, tests);
# anything else refuses to start (see the security block at the end).
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_htmx",
    "template_partials",
    "core",
    "annotate",
    "preferences",
    "modeltrain",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "snapshots",
    "api",
    "preferences.labelers",
    "preferences.consensus",
    "console",
    "benchmarks",  # the bench_* commands (benchmarks/)
    "axes",  # login and token throttling (security block below)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (CSS, keys.js, htmx) are served by the app itself: Django serves none with
    # DEBUG off, which left `make run` and the Docker stack without styles or keyboard map.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.security.JsonDepthLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ApplicationErrorMiddleware",
    "core.security.ContentSecurityPolicyMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    options = DATABASES["default"].setdefault("OPTIONS", {})
    # No JIT compilation: this app's queries are short, and the planner's row estimates for a
    # project with a long history pushed some over the JIT threshold, where compiling cost more
    # than running (the raters' waiting search at 1M judgements: 2.26 s, 1.03 s of it JIT).
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Django's own queries are never prepared (a threshold out of reach); the rating hot
        # path prepares its few statements explicitly (core.db.PreparedCursor). Set
        # DATABASE_PREPARED_STATEMENTS=false behind a pooler that cannot keep them
        # (PgBouncer < 1.21).
        options.setdefault("prepare_threshold", 2**31 - 1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the dev server and an eager task write without "database locked".
    # IMMEDIATE: a transaction takes the write lock when it begins, so it waits out the busy
    # timeout. A deferred one that read first and then wrote (update_or_create) failed at once
    # with "database is locked" whenever a job's heartbeat thread was writing (SQLite does not
    # wait when upgrading a read lock could deadlock); CI hit it in a round's evaluation.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# AxesStandaloneBackend first: it refuses locked-out credentials before any password check.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "core.auth.FastModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotate:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
# No translations are shipped: with i18n off every template variable, {% url %} and reverse
# skip the active-language lookup (about 7% of a rating cycle's CPU, bench_rating).
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise reads STATIC_ROOT (filled by `collectstatic`, as the Docker image does) and the
# apps' own static folders, so an edited file is served fresh without collecting again.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

# A shared cache (Redis: CACHE_URL=redis://host:6379/1) for sessions and the consensus drain's
# once-per-project debounce. Without one, each process has its own memory cache and sessions
# stay in the database only.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # --- faults (issue 19): a Redis outage degrades the cache instead of failing requests ---
    # DegradingRedisCache answers "miss" and drops writes while Redis is unreachable (and skips
    # it for a few seconds after a failure), so sessions fall back to the database copy.
    CACHES["default"]["BACKEND"] = "core.cache.DegradingRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": 1.0, "socket_timeout": 2.0}
    )
if not CACHES["default"]["BACKEND"].endswith(("LocMemCache", "DummyCache")):
    # Sessions read from the cache (no database query per request), written through to the
    # database, so a cache flush logs nobody out.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
# A failed CSRF check asks the rater to sign in again, and their answers survive (in the
# browser) instead of Django's bare 403 page.
CSRF_FAILURE_VIEW = "core.error_views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AltPref API",
    "DESCRIPTION": "Projects, items, judgements, consensus and TAlt/PAlt snapshots.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PlatformEnum": "annotate.models.Platform",
        "SplitEnum": "annotate.models.Split",
        "ChoiceEnum": "preferences.models.Choice",
        "JudgementKindEnum": "preferences.models.JudgementKind",
        "RatingKindEnum": ["human", "adjudication"],
        "SnapshotKindEnum": "snapshots.models.SnapshotKind",
        "RoundMethodEnum": "modeltrain.models.Method",
        "RoundStatusEnum": "modeltrain.models.RoundStatus",
    },
}

# --- Celery -----------------------------------------------------------------------------
# Without a broker URL the embedded default runs tasks eagerly in the web process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None) or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "cache+memory://"
)
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL.startswith("memory")
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Everything in modeltrain.tasks needs a GPU box; the web tier never consumes this queue.
CELERY_TASK_ROUTES = {"modeltrain.tasks.*": {"queue": "gpu"}}
# Long tasks: ack after the work so a killed worker's task is redelivered, not lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Must exceed the longest training round, or Redis redelivers a running task to another worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=48 * 3600),
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# --- faults (issue 19): outages and dead workers -----------------------------------------
# A worker keeps reconnecting through a broker outage instead of giving up after 100 tries.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Publishing while Redis is down fails within seconds (the job outbox then leaves the row for
# the sweep) instead of holding the request.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2.0
CELERY_REDIS_SOCKET_TIMEOUT = 10.0
# Long jobs (snapshot exports, LLM runs, training rounds) are claimed with a heartbeat; the
# sweep re-sends any job waiting without a message or whose worker's heartbeat is older than
# STALE_S, so a dead worker's job is taken over within STALE_S + SWEEP_S (rounds: 3 x their
# HEARTBEAT_S + SWEEP_S), not after the visibility timeout. RUNNER=thread (make run) runs eager
# jobs on a background thread so starting one never blocks the request.
ALTPREF_JOBS = {
    "HEARTBEAT_S": env.float("ALTPREF_JOB_HEARTBEAT_S", default=10.0),
    "STALE_S": env.float("ALTPREF_JOB_STALE_S", default=60.0),
    "SWEEP_S": env.float("ALTPREF_JOB_SWEEP_S", default=30.0),
    "SEND_GRACE_S": env.float("ALTPREF_JOB_SEND_GRACE_S", default=5.0),
    "REQUEUE_WAITING_S": env.float("ALTPREF_JOB_REQUEUE_WAITING_S", default=900.0),
    "MAX_TAKEOVERS": env.int("ALTPREF_JOB_MAX_TAKEOVERS", default=3),
    "RUNNER": env("ALTPREF_JOB_RUNNER", default="inline"),  # inline | thread (eager mode only)
}
# Fire-and-forget tasks (their rows are their results) publish without subscribing to a result
# channel: with a Redis result backend each send otherwise SUBSCRIBEs first, and while Redis is
# down that blocked a request ~15 s and then raised "must be restarted" (a rating submit's
# consensus drain turned a stored answer into a 500).
CELERY_TASK_ANNOTATIONS = {
    name: {"ignore_result": True}
    for name in (
        "consensus.refresh",
        "consensus.reliability_fit",
        "snapshots.run",
        "labelers.label_run_batch",
        "modeltrain.tasks.round_run_task",
        "core.jobs_sweep",
    )
}
CELERY_BEAT_SCHEDULE = {
    "jobs-sweep": {"task": "core.jobs_sweep", "schedule": ALTPREF_JOBS["SWEEP_S"]},
}

# --- AltPref ----------------------------------------------------------------------------
ALTPREF = {
    # Importer limits: records beyond these are rejected with a reason, never truncated.
    "MAX_CONTEXT_CHARS": env.int("ALTPREF_MAX_CONTEXT_CHARS", default=20_000),
    "MAX_ALT_TEXT_CHARS": env.int("ALTPREF_MAX_ALT_TEXT_CHARS", default=5_000),
    "MAX_IMAGE_BYTES": env.int("ALTPREF_MAX_IMAGE_BYTES", default=50 * 1024 * 1024),
    "MAX_IMAGE_PIXELS": env.int("ALTPREF_MAX_IMAGE_PIXELS", default=50_000_000),
    "IMPORT_BATCH_SIZE": env.int("ALTPREF_IMPORT_BATCH_SIZE", default=1000),
    # How long a submitted item stays editable from the rater's history after its reservation.
    "EDIT_WINDOW_SECONDS": env.int("ALTPREF_EDIT_WINDOW_SECONDS", default=15 * 60),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- LLM judge (Gemini, issue 4; providers: preferences/labelers/config.py) -------------
# Without GEMINI_API_KEY the LLM judge is "not configured": pages and commands say so.
GEMINI_API_KEY = env("GEMINI_API_KEY", default="")
GEMINI_MODEL = env("GEMINI_MODEL", default="gemini-2.5-flash")
GEMINI_BASE_URL = env("GEMINI_BASE_URL", default="")  # tests and demos: the fake server
GEMINI_RPM = env.int("GEMINI_RPM", default=60)
GEMINI_MAX_RETRIES = env.int("GEMINI_MAX_RETRIES", default=3)
GEMINI_BUDGET_USD = env("GEMINI_BUDGET_USD", default="5.00")  # per run, USD
GEMINI_TIMEOUT_S = env.float("GEMINI_TIMEOUT_S", default=60.0)
GEMINI_RETRY_BASE_DELAY_S = env.float("GEMINI_RETRY_BASE_DELAY_S", default=2.0)
GEMINI_BATCH_SIZE = env.int("GEMINI_BATCH_SIZE", default=10)
# An item whose answers were refused (invalid or hostile) this many times is flagged and left
# out of later runs, so one poisonous item never blocks a project's labelling.
GEMINI_ITEM_MAX_BAD_ANSWERS = env.int("GEMINI_ITEM_MAX_BAD_ANSWERS", default=3)
# Any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama): configured by a base
# URL (self-hosted, no key needed) or an API key (api.openai.com). Same knobs as Gemini's.
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="")  # e.g. http://127.0.0.1:8000/v1 (vLLM)
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_RPM = env.int("OPENAI_RPM", default=60)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=3)
OPENAI_BUDGET_USD = env("OPENAI_BUDGET_USD", default="5.00")
OPENAI_TIMEOUT_S = env.float("OPENAI_TIMEOUT_S", default=60.0)
OPENAI_RETRY_BASE_DELAY_S = env.float("OPENAI_RETRY_BASE_DELAY_S", default=2.0)
OPENAI_BATCH_SIZE = env.int("OPENAI_BATCH_SIZE", default=10)
# Which configured provider a run uses when none is picked (gemini, openai); empty: the first.
LLM_PROVIDER = env("LLM_PROVIDER", default="")

# --- Training rounds (issue 7) -------------------------------------------------------------
ALTPREF_ROUNDS = {
    "DIR": env("ALTPREF_ROUNDS_DIR", default=""),  # checkpoints; empty: MEDIA_ROOT/rounds
    "BASE_MODEL": env("ALTPREF_BASE_MODEL", default="tiny"),  # folder, hub id, or "tiny" (CPU demo)
    "MAX_ATTEMPTS": env.int("ALTPREF_ROUND_MAX_ATTEMPTS", default=3),  # worker deaths tolerated
    # A running round's worker touches heartbeat_at this often; a redelivered message takes the
    # round over only once the heartbeat is 3x this old (the old worker is gone).
    "HEARTBEAT_S": env.float("ALTPREF_ROUND_HEARTBEAT_S", default=30.0),
    "PROGRESS_EVERY": env.int("ALTPREF_ROUND_PROGRESS_EVERY", default=5),  # steps between writes
    # Cancel: how long the training processes get to stop at a step boundary after STOP before
    # they are sent SIGTERM (then SIGKILL).
    "STOP_GRACE_S": env.float("ALTPREF_ROUND_STOP_GRACE_S", default=30.0),
}

# --- Security and deployment (issue 19) --------------------------------------------------
# Every switch comes from the environment; `manage.py check --deploy` is clean with
#   SECRET_KEY=<50+ random chars> DEBUG=false SECURE_SSL_REDIRECT=true SECURE_HSTS_SECONDS=31536000
#   SECURE_HSTS_PRELOAD=true SESSION_COOKIE_SECURE=true CSRF_COOKIE_SECURE=true
# (plus SECURE_PROXY_SSL_HEADER=true behind a TLS-terminating proxy that sets X-Forwarded-Proto).
DEV_SECRET_KEY = "insecure-dev-key-set-SECRET_KEY-in-production"
LOCAL_DEV = env.bool("ALTPREF_LOCAL_DEV", default=False)
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    if not (DEBUG or LOCAL_DEV):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECRET_KEY is not set (or is the public development key) and DEBUG is off: "
            "refusing to start. Set SECRET_KEY to a long random value, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`; for a local "
            "development server only, set ALTPREF_LOCAL_DEV=true (make run does)."
        )
    SECRET_KEY = DEV_SECRET_KEY

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
# Trust X-Forwarded-Proto only behind a proxy that always sets it (else clients could spoof it).
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy (core.security.ContentSecurityPolicyMiddleware): no inline scripts
# or styles anywhere; templates load static files only.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'",
)

# Login and API-token throttling (django-axes): AXES_FAILURE_LIMIT wrong passwords for one
# username from one address lock that pair out for AXES_COOLOFF_MINUTES; a success resets it.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Password reset mails go through Django's email backend: console in make run and by default
# (the mail is printed), SMTP in production via EMAIL_URL (smtp+tls://user:pass@host:587).
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="altpref@localhost")
globals().update(env.email("EMAIL_URL", default="consolemail://"))
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 3600)
