"""Throttling per user (per client address for anonymous calls). Rates are read from
settings.API_THROTTLE_RATES at each request (so they can be changed without a restart of the
class), and counted in a cache shared by every web process (Redis where the broker is Redis)."""

from functools import lru_cache

import environ
from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.throttling import SimpleRateThrottle


@lru_cache(maxsize=4)
def _cache(url: str):
    config = environ.Env.cache_url_config(url)
    backend = import_string(config.pop("BACKEND"))
    location = config.pop("LOCATION", "")
    return backend(location, {**config, "KEY_PREFIX": "api-throttle"})


class PerUserThrottle(SimpleRateThrottle):
    scope = "user"

    @property
    def cache(self):
        return _cache(settings.API_THROTTLE_CACHE_URL)

    def get_rate(self):
        return settings.API_THROTTLE_RATES["user"]

    def allow_request(self, request, view):
        self.scope = "user" if request.user and request.user.is_authenticated else "anon"
        self.rate = settings.API_THROTTLE_RATES[self.scope]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": "user", "ident": request.user.pk}
        return self.cache_format % {"scope": "anon", "ident": self.get_ident(request)}
