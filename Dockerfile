# syntax=docker/dockerfile:1
# Skype Manager image: one image for web (gunicorn), worker and beat (celery).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=skypemanager.settings

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

# Dependencies first, so code changes reuse this layer.
COPY requirements.txt .
RUN pip install -r requirements.txt

# Code stays owned by root (read-only for the app user); only media/ is writable.
COPY . .
# collectstatic reads the production settings, which want a 50+ character key.
RUN SECRET_KEY=collectstatic-only-dummy-key-0123456789-abcdefghijklmnopqrstuvwxyz \
        DEBUG=false ALLOWED_HOSTS=localhost \
        python manage.py collectstatic --noinput \
    && mkdir -p /app/media \
    && chown app:app /app/media

USER app
EXPOSE 8000

# Threaded workers, timeouts and logs: skypemanager/gunicorn_conf.py (WEB_CONCURRENCY,
# WEB_THREADS, WEB_TIMEOUT...); other flags: GUNICORN_CMD_ARGS.
CMD ["gunicorn", "-c", "python:skypemanager.gunicorn_conf"]
