"""WSGI entry point (gunicorn skypemanager.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skypemanager.settings")

application = get_wsgi_application()
