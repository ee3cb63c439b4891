"""The API benchmark's baseline: a Django hello-world JSON view and nothing else (no
middleware, no database), served by the same gunicorn configuration as the portal:

    gunicorn -c python:skypemanager.gunicorn_conf benchmarks._hello:application
"""

from __future__ import annotations

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="benchmark-hello-world-" + "x" * 40,
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "world"})


urlpatterns = [path("", hello)]

django.setup()
application = get_wsgi_application()
