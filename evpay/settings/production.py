"""Production: secrets and hosts must come from the environment; JSON logs."""

from .base import *  # noqa: F403
from .base import LOGGING, env

SECRET_KEY = env("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CACHES = {"default": env.cache("CACHE_URL", default="redis://127.0.0.1:6379/1")}
WHITENOISE_AUTOREFRESH = False  # the image runs collectstatic
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
LOGGING["handlers"]["console"]["formatter"] = env("LOG_FORMAT", default="json")  # type: ignore[index]
