"""gunicorn's configuration: `gunicorn -c python:skypemanager.gunicorn_conf` (the Dockerfile,
docker-compose.yml and tests/faults use it). Every value can be changed from the environment.

Threaded workers (gthread): a request waiting on Stripe (at most its connect + read timeout)
holds one thread, not a whole process, so one slow or frozen Stripe call cannot stall other
pages or the health check. With the sync worker and 2 workers, two such calls stalled the portal.

    WEB_CONCURRENCY   worker processes (default 3)
    WEB_THREADS       threads per worker (default 8); PostgreSQL sees up to processes × threads
                      connections per machine (DATABASE_CONN_MAX_AGE keeps them open)
    WEB_TIMEOUT       seconds a worker may be silent before the arbiter kills and replaces it
                      (default 30; gthread workers notify from their main loop, so a thread stuck in
                      one request does not count, but a worker stuck as a whole does)
    WEB_LISTEN        address:port to listen on (default 0.0.0.0:8000)
    GUNICORN_CMD_ARGS any other flag, as on the command line
"""

from __future__ import annotations

from skypemanager.env import env_int, env_str

wsgi_app = "skypemanager.wsgi:application"
bind = [env_str("WEB_LISTEN", "0.0.0.0:8000")]
worker_class = "gthread"
workers = env_int("WEB_CONCURRENCY", 3, minimum=1)
threads = env_int("WEB_THREADS", 8, minimum=1, maximum=64)
timeout = env_int("WEB_TIMEOUT", 30, minimum=5)
# On a restart or `docker compose stop`, requests in progress get this long to finish.
graceful_timeout = env_int("WEB_GRACEFUL_TIMEOUT", 20, minimum=1)
keepalive = 5
# A worker is replaced after this many requests (with jitter, so not all at once): a leak
# cannot grow without bound.
max_requests = env_int("WEB_MAX_REQUESTS", 2000, minimum=0)
max_requests_jitter = 200
# The heartbeat file on tmpfs: on a slow disk, a worker's notify could stall it.
worker_tmp_dir = env_str("WEB_WORKER_TMP_DIR", "/dev/shm")  # noqa: S108 - a heartbeat, nothing secret
# One line per request on stdout, with the time taken in ms: a stalled dependency shows.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = env_str("WEB_LOG_LEVEL", "info")
# No control socket (gunicornc): nothing outside the container manages the arbiter.
control_socket_disable = True
