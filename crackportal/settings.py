"""Settings, read from environment variables (see README "Configuration").

Without DATABASE_URL / REDIS_URL the portal runs embedded: a SQLite file and a Celery
broker on the local filesystem, both under VAR_DIR, with a real worker process.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from crackportal.env import env, envbool, envfloat, envint, envlist, s3_storage

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crackportal.accounts",
    "crackportal.assets",
    "crackportal.inspections",
    "crackportal.modelops",
    "crackportal.reports",
    "crackportal.api",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "crackportal.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crackportal.middleware.UploadSizeLimitMiddleware",  # before any view reads the body
    "crackportal.middleware.NulByteMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Only the project's own scripts run; styles may be inline (widths of progress bars, the
# libraries' own positioning); images may be data: and blob: (tiles, thumbnails, charts).
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

ROOT_URLCONF = "crackportal.urls"
WSGI_APPLICATION = "crackportal.wsgi.application"

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
                "crackportal.accounts.context_processors.role",
            ],
        },
    },
]

# -- database -------------------------------------------------------------------------
_sqlite_path = VAR_DIR / "crackportal.sqlite3"
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": environ.Env.db_url_config(env("DATABASE_URL", f"sqlite:///{_sqlite_path}"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share the file: wait for locks instead of failing,
    # and take the write lock up front so two writers never deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests share their database with a real worker process, so it must be a file.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-crackportal.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", envint("DB_CONN_MAX_AGE", 60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is locked out for LOGIN_COOLOFF_MINUTES (pages and API tokens).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "crackportal.accounts.roles.RoleBackend",  # the admin role may use the Django admin
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envfloat("LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tunnel-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# -- files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Every stored file (originals, masks, overlays, probability maps, deep-zoom tiles, thumbnails,
# annotations, reports) goes through the storage API (crackportal/media.py): the filesystem
# under MEDIA_ROOT, or with MEDIA_STORAGE=s3 an S3-compatible bucket (MinIO, AWS, …) that web
# and workers on several hosts share.
MEDIA_STORAGE = env("MEDIA_STORAGE", "filesystem")
if MEDIA_STORAGE == "s3":
    if not env("S3_BUCKET"):
        raise ImproperlyConfigured(
            "MEDIA_STORAGE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL for MinIO)"
        )
    STORAGES["default"] = s3_storage(
        env("S3_BUCKET"),
        env("S3_ENDPOINT_URL"),
        env("S3_ACCESS_KEY_ID") or env("AWS_ACCESS_KEY_ID"),
        env("S3_SECRET_ACCESS_KEY") or env("AWS_SECRET_ACCESS_KEY"),
        env("S3_REGION", "us-east-1"),
        envint("S3_URL_EXPIRE_S", 300),
    )
elif MEDIA_STORAGE != "filesystem":
    raise ImproperlyConfigured(f"MEDIA_STORAGE is filesystem or s3, not {MEDIA_STORAGE!r}")
# downloads of originals and reports: streamed through the portal, or (object storage) a
# redirect to a short-lived presigned URL after the same permission check
MEDIA_DOWNLOADS = env("MEDIA_DOWNLOADS", "stream")
if MEDIA_DOWNLOADS not in ("stream", "presigned"):
    raise ImproperlyConfigured(f"MEDIA_DOWNLOADS is stream or presigned, not {MEDIA_DOWNLOADS!r}")
# Large uploads stream to temporary files instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = envint("MAX_FILES_PER_UPLOAD", 2000)

# -- survey images -------------------------------------------------------------------------
MAX_IMAGE_BYTES = envint("MAX_IMAGE_BYTES", 200 * 1024 * 1024)
MAX_IMAGE_PIXELS = envint("MAX_IMAGE_PIXELS", 150_000_000)  # ~12000 x 12000
MAX_ZIP_BYTES = envint("MAX_ZIP_BYTES", 4 * 1024 * 1024 * 1024)
# a zip over either limit is stored as sent and unpacked by a worker, not in the request
ZIP_INLINE_MAX_MEMBERS = envint("ZIP_INLINE_MAX_MEMBERS", 200)
ZIP_INLINE_MAX_BYTES = envint("ZIP_INLINE_MAX_BYTES", 200 * 1024 * 1024)
MAX_UPLOAD_BYTES = envint("MAX_UPLOAD_BYTES", 4 * 1024 * 1024 * 1024)  # one request, all files
DEFAULT_MM_PER_PX = envfloat("DEFAULT_MM_PER_PX", 0.5)
DEFAULT_ARC_START_M = envfloat("DEFAULT_ARC_START_M", 0.0)
IMAGE_MAX_ATTEMPTS = envint("IMAGE_MAX_ATTEMPTS", 3)
# Small images go to the workers several to a task (services.image_batches): at most this
# many images and this many pixels per task; a bigger image goes alone.
IMAGE_BATCH_SIZE = envint("IMAGE_BATCH_SIZE", 8)
IMAGE_BATCH_PIXELS = envint("IMAGE_BATCH_PIXELS", 2_000_000)
# The sweeper (a Celery beat task) re-sends images whose message or worker was lost.
SWEEP_INTERVAL_S = envfloat("SWEEP_INTERVAL_S", 60)
IMAGE_QUEUED_TIMEOUT_S = envfloat("IMAGE_QUEUED_TIMEOUT_S", 1800)

# -- severity and growth alerts (crackportal/inspections/severity.py documents the defaults) --
if env("SEVERITY_CLASSES_MM"):
    # "0.2:hairline,0.5:minor,1:moderate,3:severe,inf:critical" (upper bound mm, exclusive)
    SEVERITY_CLASSES_MM = [
        (float(bound), name.strip())
        for bound, name in (item.split(":") for item in env("SEVERITY_CLASSES_MM").split(","))
    ]
GROWTH_ALERT_WIDTH_MM = envfloat("GROWTH_ALERT_WIDTH_MM", 0.1)
GROWTH_ALERT_LENGTH_FRACTION = envfloat("GROWTH_ALERT_LENGTH_FRACTION", 0.10)
if env("CONDITION_STATES"):
    # ring condition rules, worst first (crackportal/inspections/condition.py): JSON, e.g.
    # [["CS4","severe",{"width_mm":1.0,"length_per_m2":2.0,"growing":3}], ..., ["CS1","good",{}]]
    import json as _json

    from crackportal.inspections.condition import check_states as _check_states

    CONDITION_STATES = _check_states(_json.loads(env("CONDITION_STATES")))

# -- crack tracking across inspections (tunnel metres) ------------------------------------
TRACK_TOLERANCE_MM = envfloat("TRACK_TOLERANCE_MM", 50.0)  # polylines this close are the same crack
TRACK_MIN_OVERLAP = envfloat("TRACK_MIN_OVERLAP", 0.5)  # share of the shorter crack lying in it
# pieces of one crack cut by an image border meet within this (one inspection's images)
TRACK_STITCH_MM = envfloat("TRACK_STITCH_MM", 20.0)

# -- models --------------------------------------------------------------------------
MODEL_DIR = Path(env("MODEL_DIR", str(BASE_DIR / "models")))
DEFAULT_MODEL_NAME = env("DEFAULT_MODEL_NAME", "default")
TRAINED_MODEL_DIR = Path(
    env("TRAINED_MODEL_DIR", str(VAR_DIR / "models"))
)  # portal-trained versions

# -- REST API ------------------------------------------------------------------------------
API_TOKEN_TTL_HOURS = envint("API_TOKEN_TTL_HOURS", 24 * 30)  # then POST /api/token/ again
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crackportal.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "crackportal.api.parsers.SafeJSONParser",  # 400 for JSON too deep or holding NUL
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "crackportal.api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CrackPortal API",
    "DESCRIPTION": "Tunnels, inspection runs, survey upload, cracks, tracks, reports, models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "REDOC_DIST": "SIDECAR",  # served from static files, never a CDN
    "COMPONENT_SPLIT_REQUEST": True,
    # two models have a field named "kind": name each enum after its model
    "ENUM_NAME_OVERRIDES": {
        "ReportKindEnum": "crackportal.reports.models.Report.Kind",
        "TrainingRunKindEnum": "crackportal.modelops.models.TrainingRun.Kind",
    },
}

# -- Celery ----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # a message a lost worker held comes back after this long (keep it above the time limit)
        "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": envint("CELERY_UNACKED_RESTORE_INTERVAL_S", 10),
        "unacked_restore_throttle": envint("CELERY_UNACKED_RESTORE_THROTTLE", 10),
        # a worker killed while it scans for lost messages leaves the scan's lock this long
        "unacked_mutex_expire": envint("CELERY_UNACKED_MUTEX_EXPIRE_S", 300),
    }
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True  # pages read job state from the database, not a result store
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless
# this is set: a new PostgreSQL connection (and server process) per task, ~5 ms each. A
# worker keeps its connection as a web process does instead: CONN_MAX_AGE, health-checked
# at each task's start (crackportal/celery.py); Celery recycles it every this many tasks.
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 1000)
# several portals (or a test) on one Redis: queue names get this prefix; workers' -Q must match
CELERY_QUEUE_PREFIX = env("CELERY_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_QUEUE_PREFIX}inference"
CELERY_TASK_ROUTES = {  # first match wins
    "crackportal.inspections.tasks.sweep_stuck_images_task": {
        "queue": f"{CELERY_QUEUE_PREFIX}maintenance"
    },
    "crackportal.inspections.tasks.*": {"queue": f"{CELERY_QUEUE_PREFIX}inference"},
    "crackportal.modelops.tasks.*": {"queue": f"{CELERY_QUEUE_PREFIX}training"},
    "crackportal.reports.tasks.*": {"queue": f"{CELERY_QUEUE_PREFIX}inference"},
}
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 900)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 960)
# past the hard time limit a "processing" image cannot still be running: its worker was lost
IMAGE_PROCESSING_TIMEOUT_S = envfloat("IMAGE_PROCESSING_TIMEOUT_S", CELERY_TASK_TIME_LIMIT + 60)
# an image processing this long on a worker that does not answer the sweeper's ping is lost
IMAGE_LOST_AFTER_S = envfloat("IMAGE_LOST_AFTER_S", 60)
# training-time estimate on the training form: seconds per training crop and per validation
# image on this host (2-core CPU, batch 8 of 320 px: ~0.2 s; a GPU host: ~0.002)
TRAINING_SECONDS_PER_CROP = envfloat("TRAINING_SECONDS_PER_CROP", 0.2)
TRAINING_SECONDS_PER_VAL_IMAGE = envfloat("TRAINING_SECONDS_PER_VAL_IMAGE", 0.3)
# an adaptation judges the candidate against the active model on this many test images of
# each base dataset (besides the held-back fifth of the tunnels' annotated images)
ADAPT_TEST_IMAGES = envint("ADAPT_TEST_IMAGES", 20)
WORKER_PING_TIMEOUT_S = envfloat("WORKER_PING_TIMEOUT_S", 3)
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-images": {
        "task": "crackportal.inspections.tasks.sweep_stuck_images_task",
        "schedule": SWEEP_INTERVAL_S,
        "options": {"expires": SWEEP_INTERVAL_S},
    }
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# -- security when DEBUG is off ------------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # probes speak plain http inside the network
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},  # lockouts only, not every successful sign-in
}

# -- training from the portal ---------------------------------------------------------------
# The base datasets (training, an adaptation's rehearsal share, the shared test splits of its
# comparison): every folder of DATASETS_DIR with a train split, as `training.adapt_bench`
# takes the datasets beside a surface. It was cfd and deepcrack alone, so an adaptation in the
# portal rehearsed and was judged on two of the default's five surfaces. DATASET_<NAME> names
# one more folder, or another place for one.
_shared = Path(env("DATASETS_DIR", str(BASE_DIR.parent / "shared" / "datasets")))
TRAINING_DATASETS = {
    folder.name: str(folder)
    for folder in (sorted(_shared.iterdir()) if _shared.is_dir() else [])
    if (folder / "train").is_dir()
}
TRAINING_DATASETS.update(
    {
        key.removeprefix("DATASET_").lower().replace("_", "-"): value
        for key, value in os.environ.items()
        if key.startswith("DATASET_") and value
    }
)
