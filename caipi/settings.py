"""CAIPI settings, read from the environment only (see docs/configuration.md).

With nothing set CAIPI runs on embedded defaults — SQLite, a local-memory cache, Celery
tasks executed in-process, embedded Chroma — all under ``CAIPI_DATA_DIR``. Production sets
``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (cache, quotas, shared router state),
``CELERY_BROKER_URL`` (workers) and ``CHROMA_URL`` (a Chroma server).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from caipi.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(
    env_str(
        "CAIPI_DATA_DIR",
        str(BASE_DIR / "var"),
        "Folder for the embedded defaults: SQLite file, Chroma data, tool keys, logs.",
    )
    or BASE_DIR / "var"
).resolve()

DEBUG = env_bool("CAIPI_DEBUG", False, "Django debug mode. Never on in production.")


def _secret_key() -> str:
    """The configured key, or one generated once and kept (mode 0600) in the data folder."""
    configured = env_str(
        "SECRET_KEY",
        None,
        "Django secret key. When unset a random key is generated once into CAIPI_DATA_DIR.",
    )
    if configured:
        return configured
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"], "Host names this server answers to."
)
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", [], "Origins (https://host) allowed to post forms, e.g. behind a proxy."
)
SITE_URL: str = (
    env_url(
        "SITE_URL",
        "http://127.0.0.1:8000",
        "Public base URL of CAIPI, used in LTI registration and links.",
        schemes=("http", "https"),
    )
    or "http://127.0.0.1:8000"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "caipi.core",
    "caipi.governance",
    "caipi.gateway",
    "deploy",
    "lms_connectors",
    "prompts",
    "rag",
    "caipi.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "caipi.core.middleware.ApiErrorShapeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "caipi.core.i18n.UserLanguageMiddleware",  # the user's chosen or LMS language
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in (see "sign-in" below).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "caipi.urls"
ASGI_APPLICATION = "caipi.asgi.application"
WSGI_APPLICATION = "caipi.wsgi.application"
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "signin"  # "open CAIPI again from your course"; staff find the password login there
LOGIN_REDIRECT_URL = "/"
CSRF_FAILURE_VIEW = "caipi.core.errors.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # caipi/templates overrides other apps' templates (admin/base_site.html: notices).
        "DIRS": [BASE_DIR / "caipi" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "caipi.core.navigation.navigation",
                "caipi.demo.context.demo_notice",
                "caipi.core.notices.notices",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------

_database_url = env_url(
    "DATABASE_URL",
    None,
    "Database, e.g. postgresql://caipi@127.0.0.1:5432/caipi. Unset: SQLite in CAIPI_DATA_DIR.",
    schemes=("postgres", "postgresql", "sqlite"),
)
_conn_max_age = env_int(
    "DATABASE_CONN_MAX_AGE", 60, "Seconds to keep PostgreSQL connections open.", minimum=0
)
if _database_url:
    DATABASES = {
        "default": dj_database_url.parse(
            _database_url, conn_max_age=_conn_max_age, conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "caipi.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and Redis ------------------------------------------------------------------------

REDIS_URL = env_url(
    "REDIS_URL",
    None,
    "Redis for the cache, quotas and the router's shared state. Unset: in-process memory.",
    schemes=("redis", "rediss", "unix"),
)


def redis_caches(url: str) -> dict[str, dict[str, object]]:
    """``CACHES`` on Redis at ``url`` (tests start their own Redis and use this too).

    Resilient: while Redis is down, cache calls are misses and pages keep working
    (caipi/core/redis.py); short timeouts, as for CAIPI's own clients there.
    """
    return {
        "default": {
            "BACKEND": "caipi.core.redis.ResilientRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "caipi",
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0},
        }
    }


if REDIS_URL:
    CACHES = redis_caches(REDIS_URL)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = (
    env_url(
        "CELERY_BROKER_URL",
        None,
        "Celery broker. Defaults to REDIS_URL; unset too: tasks run in-process (no worker).",
        schemes=("redis", "rediss", "amqp", "amqps", "pyamqp"),
    )
    or REDIS_URL
)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "caipi"
CELERY_TIMEZONE = "UTC"

# --- Chroma ---------------------------------------------------------------------------------

CHROMA_URL = env_url(
    "CHROMA_URL",
    None,
    "Chroma server. Unset: embedded Chroma in CAIPI_DATA_DIR/chroma.",
    schemes=("http", "https"),
)
CHROMA_PATH = DATA_DIR / "chroma"
RAG_LEXICAL_PATH = DATA_DIR / "rag" / "bm25"  # saved BM25 indexes, one folder per course

# --- lecture notes (rag) ----------------------------------------------------------------------

RAG_EMBEDDING_URL = env_url(
    "CAIPI_RAG_EMBEDDING_URL",
    None,
    "OpenAI-compatible base URL (CAIPI's own /v1) for lecture-note embeddings. Unset: the "
    "bundled multilingual-e5-small model embeds in-process.",
    schemes=("http", "https"),
)
RAG_EMBEDDING_MODEL = env_str(
    "CAIPI_RAG_EMBEDDING_MODEL", None, "Embedding model name at CAIPI_RAG_EMBEDDING_URL."
)
RAG_EMBEDDING_API_KEY = env_str(
    "CAIPI_RAG_EMBEDDING_API_KEY", None, "API key for CAIPI_RAG_EMBEDDING_URL (a CAIPI key)."
)
RAG_EMBEDDING_QUERY_PREFIX = env_str(
    "CAIPI_RAG_EMBEDDING_QUERY_PREFIX",
    "query: ",
    "Text put before a question when embedding it (e5 models expect 'query: ').",
)
RAG_EMBEDDING_PASSAGE_PREFIX = env_str(
    "CAIPI_RAG_EMBEDDING_PASSAGE_PREFIX",
    "passage: ",
    "Text put before a passage when embedding it (e5 models expect 'passage: ').",
)
RAG_EMBEDDING_THREADS = env_int(
    "CAIPI_RAG_EMBEDDING_THREADS",
    1,
    "CPU threads of the bundled embedding model per process (more threads than free cores "
    "make it far slower).",
    minimum=1,
)
RAG_MIN_SIMILARITY = env_float(
    "CAIPI_RAG_MIN_SIMILARITY",
    0.0,
    "Cosine similarity below which a passage does not count as an answer. 0: the threshold "
    "calibrated for the embedding model (see docs/benchmarks.md).",
    minimum=0.0,
)
RAG_MAX_UPLOAD_BYTES = env_int(
    "CAIPI_RAG_MAX_UPLOAD_BYTES",
    50 * 1024 * 1024,
    "Largest lecture-note file (or zip archive) a lecturer may upload.",
    minimum=1024,
)
RAG_ARCHIVE_MAX_FILES = env_int(
    "CAIPI_RAG_ARCHIVE_MAX_FILES", 500, "Most files one zip archive may hold.", minimum=1
)
RAG_ARCHIVE_MAX_BYTES = env_int(
    "CAIPI_RAG_ARCHIVE_MAX_BYTES",
    200 * 1024 * 1024,
    "Most bytes the files of one zip archive (or one DOCX/PPTX) may unpack to.",
    minimum=1024,
)
RAG_CHUNK_TOKENS = env_int(
    "CAIPI_RAG_CHUNK_TOKENS", 200, "Token budget of one lecture-note passage.", minimum=32
)
RAG_CHUNK_OVERLAP = env_int(
    "CAIPI_RAG_CHUNK_OVERLAP",
    30,
    "Tokens a passage repeats from the end of the one before it (same section only).",
    minimum=0,
)
RAG_REWRITE_FOLLOW_UPS = env_bool(
    "CAIPI_RAG_REWRITE_FOLLOW_UPS",
    False,
    "Let the chat model rewrite follow-up questions before the notes are searched (one short "
    "extra call per follow-up). Off: the question is searched with and without the one before.",
)
RAG_MAX_PASSAGES = env_int(
    "CAIPI_RAG_MAX_PASSAGES",
    5,
    "Most passages the course assistant cites in one answer.",
    minimum=1,
)
RAG_CONTEXT_TOKENS = env_int(
    "CAIPI_RAG_CONTEXT_TOKENS",
    1200,
    "Tokens of lecture-note passages the course assistant puts into the model's context.",
    minimum=100,
)

# --- gateway --------------------------------------------------------------------------------

GATEWAY_MAX_BODY_BYTES = env_int(
    "CAIPI_MAX_BODY_BYTES", 1_048_576, "Largest request body the /v1 API accepts.", minimum=1024
)
GATEWAY_UPSTREAM_TIMEOUT = env_float(
    "CAIPI_UPSTREAM_TIMEOUT",
    300.0,
    "Seconds a call may take upstream before it is abandoned.",
    minimum=1.0,
)
GATEWAY_BODY_TIMEOUT = env_float(
    "CAIPI_BODY_TIMEOUT",
    30.0,
    "Seconds each part of a request body may take to arrive before the request is answered "
    "408 (every HTTP path; 0 waits for ever).",
    minimum=0.0,
)
GATEWAY_CONNECT_TIMEOUT = env_float(
    "CAIPI_CONNECT_TIMEOUT", 5.0, "Seconds to connect to an engine endpoint.", minimum=0.1
)
HEALTH_POLL_SECONDS = env_float(
    "CAIPI_HEALTH_POLL_SECONDS", 5.0, "Seconds between endpoint health polls.", minimum=0.5
)
HEALTH_TIMEOUT = env_float(
    "CAIPI_HEALTH_TIMEOUT", 2.0, "Seconds a health or metrics poll may take.", minimum=0.1
)
GATEWAY_MAX_ATTEMPTS = env_int(
    "CAIPI_GATEWAY_MAX_ATTEMPTS",
    3,
    "Endpoints one call may try before it fails; a stream broken mid-way is continued "
    "on at most this many endpoints in all.",
    minimum=1,
)
GATEWAY_CONTINUE_STREAMS = env_bool(
    "CAIPI_GATEWAY_CONTINUE_STREAMS",
    True,
    "Continue a plain text stream whose engine died mid-way on another endpoint of the "
    "model (off: it ends with an error event).",
)
GATEWAY_RETRY_AFTER = env_int(
    "CAIPI_GATEWAY_RETRY_AFTER",
    5,
    "Retry-After seconds sent with a 503 when no endpoint of a model can take a call.",
    minimum=1,
)
GATEWAY_CIRCUIT_FAILURES = env_int(
    "CAIPI_CIRCUIT_FAILURES",
    3,
    "Consecutive failed calls after which an endpoint is skipped for a cooldown.",
    minimum=1,
)
GATEWAY_CIRCUIT_COOLDOWN = env_float(
    "CAIPI_CIRCUIT_COOLDOWN",
    10.0,
    "Seconds a tripped endpoint is skipped before one probe call is let through.",
    minimum=0.1,
)
GATEWAY_ROUTING_MAX_AGE = env_float(
    "CAIPI_ROUTING_MAX_AGE",
    30.0,
    "Seconds after which a web process reloads models and endpoints even if unchanged.",
    minimum=1.0,
)
SHARED_STATE_POLL_SECONDS = env_float(
    "CAIPI_SHARED_STATE_POLL_SECONDS",
    1.0,
    "Bound within which every web process (any machine) honours a change made through another:"
    " a revoked key, a changed quota or model access, a model or endpoint changed or marked down.",
    minimum=0.1,
)
WEB_WORKERS = env_int(
    "CAIPI_WEB_WORKERS",
    0,
    "uvicorn worker processes of 'manage.py serve'. 0: one per CPU core.",
    minimum=0,
)
GATEWAY_DEFAULT_MAX_TOKENS = env_int(
    "CAIPI_DEFAULT_MAX_TOKENS",
    1024,
    "Tokens reserved from the quota for a call that does not set max_tokens.",
    minimum=1,
)
GATEWAY_TTFB_TIMEOUT = env_float(
    "CAIPI_TTFB_TIMEOUT",
    30.0,
    "Seconds an endpoint may take to the first byte of a stream before the call fails over "
    "to another endpoint (a whole answer also gets 0.2 s per token it may generate).",
    minimum=0.1,
)
GATEWAY_MAX_DECODE_RATE = env_float(
    "CAIPI_MAX_DECODE_RATE",
    200.0,
    "Tokens a second one sequence can be generated at, at most: a non-streamed call whose "
    "client leaves is charged its prompt and this rate for as long as it ran.",
    minimum=1.0,
)
GATEWAY_JOB_RESULT_HOURS = env_int(
    "CAIPI_JOB_RESULT_HOURS",
    24,
    "Hours the results of a queued job stay fetchable by its owner after it ends; then the "
    "retention task deletes them (a job's inputs are deleted as soon as it ends).",
    minimum=0,
)
GATEWAY_JOB_SLOTS_PER_ENDPOINT = env_int(
    "CAIPI_JOB_SLOTS_PER_ENDPOINT",
    4,
    "Calls queued jobs may run at once on one endpoint, minus interactive calls in flight.",
    minimum=1,
)
DEPLOY_RECONCILE_SECONDS = env_float(
    "CAIPI_RECONCILE_SECONDS",
    5.0,
    "Seconds between reconciler ticks (start, stop, scale the deployed engine instances).",
    minimum=0.5,
)
DEPLOY_DRAIN_TIMEOUT = env_float(
    "CAIPI_DRAIN_TIMEOUT",
    300.0,
    "Seconds a draining instance may finish its calls before it is stopped anyway.",
    minimum=1.0,
)
DEPLOY_RESTART_BACKOFF = env_float(
    "CAIPI_RESTART_BACKOFF",
    5.0,
    "Seconds before restarting after a failed start; doubles with each failure in a row.",
    minimum=0.0,
)
DEPLOY_RESTART_BACKOFF_MAX = env_float(
    "CAIPI_RESTART_BACKOFF_MAX",
    300.0,
    "Longest wait between restart attempts of a deployment whose instances keep failing.",
    minimum=0.0,
)
DEPLOY_PROMETHEUS_SD_TOKEN = env_str(
    "CAIPI_PROMETHEUS_SD_TOKEN",
    None,
    "Bearer token Prometheus sends to /api/deploy/sd (HTTP service discovery of the engines). "
    "Unset: the endpoint is off.",
)
GATEWAY_QUEUE_SIZE = env_int(
    "CAIPI_QUEUE_SIZE",
    1000,
    "Calls one web process holds per model while no instance is ready; more get 503.",
    minimum=1,
)
GATEWAY_QUEUE_MAX_WAIT = env_float(
    "CAIPI_QUEUE_MAX_WAIT",
    300.0,
    "Seconds a call waits for a starting or sleeping model before it gets 503.",
    minimum=1.0,
)
GATEWAY_QUEUE_RELEASE_PER_ENDPOINT = env_int(
    "CAIPI_QUEUE_RELEASE_PER_ENDPOINT",
    256,
    "Waiting calls sent at once per ready endpoint (each that gets its first byte lets "
    "the next one go), in round-robin order across courses; vLLM runs 256 by default.",
    minimum=1,
)
GATEWAY_QUEUE_PROBE_SECONDS = env_float(
    "CAIPI_QUEUE_PROBE_SECONDS",
    0.1,
    "Seconds between the waiting path's own readiness checks of a starting or waking engine.",
    minimum=0.01,
)
GATEWAY_QUEUE_STATUS_SECONDS = env_float(
    "CAIPI_QUEUE_STATUS_SECONDS",
    1.0,
    "Seconds between status updates to a waiting call (SSE comments keep /v1 streams alive).",
    minimum=0.1,
)
GATEWAY_QUEUE_START_ESTIMATE = env_float(
    "CAIPI_QUEUE_START_ESTIMATE",
    60.0,
    "Seconds an instance is expected to take to start, until one start was seen.",
    minimum=1.0,
)
GATEWAY_QUEUE_WAKE_ESTIMATE = env_float(
    "CAIPI_QUEUE_WAKE_ESTIMATE",
    10.0,
    "Seconds a sleeping instance is expected to take to wake, until one wake was seen.",
    minimum=1.0,
)
DEPLOY_SLEEP_TIMEOUT = env_float(
    "CAIPI_SLEEP_TIMEOUT",
    60.0,
    "Seconds an engine may take to go to sleep (vLLM sleep mode) before CAIPI gives up.",
    minimum=1.0,
)
DEPLOY_WAKE_TIMEOUT = env_float(
    "CAIPI_WAKE_TIMEOUT",
    120.0,
    "Seconds a sleeping engine may take to wake up before CAIPI gives up (it stays asleep).",
    minimum=1.0,
)
DEPLOY_WARMUP_LEAD_MINUTES = env_float(
    "CAIPI_WARMUP_LEAD_MINUTES",
    30.0,
    "Minutes before a course calendar event (lecture, due date, quiz) its models are woken.",
    minimum=0.0,
)
DEPLOY_WARMUP_REFRESH_SECONDS = env_float(
    "CAIPI_WARMUP_REFRESH_SECONDS",
    900.0,
    "Seconds between refreshes of the warm-ups read from the courses' Moodle calendars.",
    minimum=60.0,
)
CELERY_BEAT_SCHEDULE = {
    "calendar-warmups": {
        "task": "caipi.gateway.tasks.refresh_calendar_warmups",
        "schedule": DEPLOY_WARMUP_REFRESH_SECONDS,
        "options": {"expires": DEPLOY_WARMUP_REFRESH_SECONDS},
    },
    "deploy-poll-endpoints": {
        "task": "deploy.tasks.poll_endpoints",
        "schedule": HEALTH_POLL_SECONDS,
        "options": {"expires": HEALTH_POLL_SECONDS},
    },
    "deploy-reconcile": {
        "task": "deploy.tasks.reconcile_deployments",
        "schedule": DEPLOY_RECONCILE_SECONDS,
        "options": {"expires": DEPLOY_RECONCILE_SECONDS},
    },
}

# --- governance: keys, quotas, usage, privacy -----------------------------------------------

GOVERNANCE_KEY_PEPPER = env_str(
    "CAIPI_API_KEY_PEPPER",
    None,
    "Secret for hashing API keys. Unset: derived from SECRET_KEY (rotating it voids all keys).",
)
GOVERNANCE_QUOTA_FAIL_OPEN = env_bool(
    "CAIPI_QUOTA_FAIL_OPEN",
    False,
    "When Redis is down, let calls through without quota checks instead of refusing (503).",
)
GOVERNANCE_QUOTA_LEASES = env_bool(
    "CAIPI_QUOTA_LEASES",
    True,
    "Each web process reserves quota from slices it leases from Redis (large, busy limits only), "
    "saving a Redis round trip per call; off: every call reserves and settles on Redis.",
)
GOVERNANCE_QUOTA_LEASE_SLICES = env_int(
    "CAIPI_QUOTA_LEASE_SLICES",
    64,
    "A quota lease's slice is this fraction of its limit (1/N), and a limit leases only when a "
    "slice covers 4 calls: at most 1/N of a limit sits unused in each web process.",
    minimum=2,
)
GOVERNANCE_USAGE_FLUSH_SECONDS = env_float(
    "CAIPI_USAGE_FLUSH_SECONDS",
    1.0,
    "Seconds between batched writes of usage records; 0 disables the background writer.",
    minimum=0.0,
)
GOVERNANCE_KEY_SELF_SERVICE_ROLES = env_list(
    "CAIPI_KEY_SELF_SERVICE_ROLES",
    ["api_user", "admin"],
    "Site roles whose users may create their own API keys (admins can always create keys).",
)
CELERY_BEAT_SCHEDULE["gateway-purge-jobs"] = {
    "task": "caipi.gateway.tasks.jobs_purge_expired",
    "schedule": 600.0,
}
CELERY_BEAT_SCHEDULE["governance-purge-conversations"] = {
    "task": "caipi.governance.tasks.conversations_purge_expired",
    "schedule": 3600.0,
}

# --- prompt templates -----------------------------------------------------------------------

PROMPTS_BATCH_RETENTION_HOURS = env_int(
    "CAIPI_BATCH_RETENTION_HOURS",
    24,
    "Hours the results of a template batch run are kept after it ends, then deleted.",
    minimum=0,
)
CELERY_BEAT_SCHEDULE["prompts-purge-batches"] = {
    "task": "prompts.tasks.batches_purge_expired",
    "schedule": 3600.0,
}
RAG_JOB_STALE_SECONDS = env_float(
    "CAIPI_RAG_JOB_STALE_SECONDS",
    120.0,
    "Seconds without a heartbeat after which a running ingestion job counts as abandoned "
    "(its worker died) and is queued again.",
    minimum=1.0,
)
CELERY_BEAT_SCHEDULE["rag-reclaim-ingestion"] = {
    "task": "rag.tasks.ingestion_reclaim",
    "schedule": 60.0,
    "options": {"expires": 60.0},
}
CELERY_BEAT_SCHEDULE["rag-purge-unanswered"] = {
    "task": "rag.tasks.unanswered_purge_expired",
    "schedule": 3600.0,
}

# --- LTI ------------------------------------------------------------------------------------

LTI_TOOL_NAME = (
    env_str("CAIPI_LTI_TOOL_NAME", "CAIPI", "Tool name shown in the LMS (dynamic registration).")
    or "CAIPI"
)
LTI_PRIVATE_KEY_FILE = env_str(
    "CAIPI_LTI_PRIVATE_KEY_FILE",
    None,
    "PEM file with the LTI signing key. Unset: keys generated and kept encrypted in the database.",
)
LTI_KEY_GRACE_DAYS = env_int(
    "CAIPI_LTI_KEY_GRACE_DAYS",
    7,
    "Days a rotated-out LTI key stays published in /lti/jwks/.",
    minimum=0,
)
LTI_CLOCK_SKEW_SECONDS = env_int(
    "CAIPI_LTI_CLOCK_SKEW_SECONDS",
    60,
    "Seconds of clock difference with the LMS tolerated on token times (exp, iat).",
    minimum=0,
)
LTI_LAUNCH_DATA_SECONDS = env_int(
    "CAIPI_LTI_LAUNCH_DATA_SECONDS",
    7200,
    "Seconds a launch (and its login state and nonce) is kept server-side.",
    minimum=60,
)
LTI_HTTP_TIMEOUT = env_float(
    "CAIPI_LTI_HTTP_TIMEOUT",
    10.0,
    "Seconds a call to the LMS (configuration, JWKS, token, roster, grades) may take.",
    minimum=0.5,
)
LTI_TRUSTED_ISSUERS = env_list(
    "CAIPI_LTI_TRUSTED_ISSUERS",
    [],
    "LMS host names that may start a dynamic registration from the plain /lti/register/ URL "
    "and are active at once. Any other LMS must use a one-time registration URL an admin "
    "generates on /lti/setup/.",
)
LTI_REGISTRATION_URL_HOURS = env_int(
    "CAIPI_LTI_REGISTRATION_URL_HOURS",
    24,
    "Hours a one-time registration URL generated on /lti/setup/ stays valid.",
    minimum=1,
)
LTI_REGISTRATION_ALLOW_PRIVATE = env_bool(
    "CAIPI_LTI_REGISTRATION_ALLOW_PRIVATE",
    False,
    "Let dynamic registration call LMSs at private or loopback addresses (labs, the demo, "
    "tests). Off in production: registration calls only public addresses.",
)
LTI_ROSTER_SYNC_MINUTES = env_int(
    "CAIPI_LTI_ROSTER_SYNC_MINUTES",
    360,
    "Minutes between periodic roster (names and roles) syncs; 0 turns them off.",
    minimum=0,
)
LTI_DEV_PLATFORM = env_bool(
    "CAIPI_DEV_PLATFORM",
    False,
    "Enable the built-in development LMS at /lti/dev/ (demo launches). Never on in production.",
)
if LTI_ROSTER_SYNC_MINUTES:
    CELERY_BEAT_SCHEDULE["lti-roster-sync"] = {
        "task": "lms_connectors.tasks.roster_sync_all",
        "schedule": LTI_ROSTER_SYNC_MINUTES * 60.0,
    }
# LTI pages open in the LMS's iframe: frame-ancestors lists the registered LMS origins
# instead of X-Frame-Options: DENY (admin pages keep DENY). See lms_connectors/middleware.py.
MIDDLEWARE = [
    "lms_connectors.middleware.FrameAncestorsMiddleware"
    if name == "django.middleware.clickjacking.XFrameOptionsMiddleware"
    else name
    for name in MIDDLEWARE
]

# --- static files, i18n, security -----------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(
    env_str(
        "CAIPI_STATIC_ROOT", None, "Where collectstatic writes files. Unset: CAIPI_DATA_DIR/static."
    )
    or DATA_DIR / "static"
)
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # one German catalog for the whole UI: manage.py messages
TIME_ZONE = env_str("TIME_ZONE", "UTC", "Time zone for dates shown in pages.") or "UTC"
USE_I18N = True
USE_TZ = True

_BEHIND_TLS_PROXY = env_bool(
    "CAIPI_BEHIND_TLS_PROXY",
    False,
    "Trust X-Forwarded-Proto and (for the sign-in lockout) X-Forwarded-For from one TLS proxy "
    "in front of CAIPI. Only when a proxy sets them: clients could forge them otherwise.",
)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _BEHIND_TLS_PROXY else None
_https = bool(SITE_URL and SITE_URL.startswith("https://"))
# HTTPS: browsers are told to keep to it (HSTS), once a response came over HTTPS.
SECURE_HSTS_SECONDS = env_int(
    "CAIPI_HSTS_SECONDS",
    31_536_000 if _https else 0,
    "Strict-Transport-Security max-age sent over HTTPS. Default: a year when SITE_URL is "
    "https://, else 0 (off). Start lower (3600) on a new site.",
    minimum=0,
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(
    "CAIPI_HSTS_INCLUDE_SUBDOMAINS",
    False,
    "Extend HSTS to every subdomain of CAIPI's host (only if they all serve HTTPS).",
)
SECURE_HSTS_PRELOAD = env_bool(
    "CAIPI_HSTS_PRELOAD", False, "Ask browsers to preload HSTS for the host (hard to undo)."
)
SECURE_SSL_REDIRECT = env_bool(
    "CAIPI_SSL_REDIRECT",
    False,
    "Redirect plain HTTP to HTTPS in CAIPI itself (usually the TLS proxy does this).",
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# LTI launches happen inside Moodle's iframe: cookies must be SameSite=None (and so Secure).
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_SAMESITE = "None" if _https else "Lax"
CSRF_COOKIE_SAMESITE = "None" if _https else "Lax"
LANGUAGE_COOKIE_SECURE = _https  # the language switch's cookie works inside the LMS frame too
LANGUAGE_COOKIE_SAMESITE = "None" if _https else "Lax"

# --- sign-in: lockout after failed attempts (django-axes) --------------------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int(
    "CAIPI_LOGIN_FAILURE_LIMIT",
    5,
    "Failed sign-ins (login page or admin) after which that username is locked out from "
    "that address.",
    minimum=1,
)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int(
        "CAIPI_LOGIN_LOCKOUT_MINUTES",
        15,
        "Minutes a locked-out sign-in stays locked (an admin can unlock earlier: "
        "manage.py axes_reset).",
        minimum=1,
    )
)
# One username from one address: a stranger cannot lock a user out from everywhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "caipi.core.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if _BEHIND_TLS_PROXY else ("REMOTE_ADDR",)
)
AXES_IPWARE_PROXY_COUNT = 1 if _BEHIND_TLS_PROXY else None

# --- operations: who may read /metrics and the details of /readyz ---------------------------

SCRAPE_NETWORKS = env_list(
    "CAIPI_SCRAPE_NETWORKS",
    ["127.0.0.1/32", "::1/128"],
    "Networks (CIDR) whose clients may read /metrics and the checks of /readyz, e.g. the "
    "Prometheus hosts.",
)
SCRAPE_TOKEN = env_str(
    "CAIPI_SCRAPE_TOKEN",
    None,
    "Token that opens /metrics and the checks of /readyz from anywhere "
    "(Authorization: Bearer <token>).",
)

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "caipi.core.errors.api_exception_handler",
    # A personal API key first (read-only; its class answers anonymous callers 401 with
    # WWW-Authenticate: Bearer), then the signed-in session of the pages.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "caipi.governance.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Nesting bounded at parse time (a deep body is a 400, never a RecursionError's 500).
    "DEFAULT_PARSER_CLASSES": [
        "caipi.core.jsonbody.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "caipi.schema.CaipiAutoSchema",
}
# The OpenAPI schema of the session API under /api/ (/api/schema/, browsable at /api/docs/);
# Swagger UI is served from the installed sidecar package, not from a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "CAIPI REST API",
    "DESCRIPTION": "Session-authenticated API of CAIPI's pages (templates, runs, quotas, "
    "usage). The OpenAI-compatible API under /v1/ is documented by OpenAI's own reference.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["caipi.schema.only_api_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "caipi.schema.streaming_endpoints",
    ],
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR.") or "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # One line per outgoing request is noise next to CAIPI's own logs.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "bm25s": {"level": "WARNING"},
    },
}
