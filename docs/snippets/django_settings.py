# Dockerflow: Django's checks in /__heartbeat__, and the user's id and a view's exception in
# the request.summary log line (after AuthenticationMiddleware, which finds the user).
INSTALLED_APPS += ["dockerflow_wsgi.django"]
MIDDLEWARE += ["dockerflow_wsgi.django.DockerflowDjangoMiddleware"]

# Every logger's records, request.summary's included, as mozlog JSON lines on stdout, every
# other logger left enabled: dockerflow_wsgi.logging.configure(name="mysite", level="INFO")
# written as a setting.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "mozlog": {"class": "dockerflow_wsgi.logging.MozlogHandler", "name": "mysite"},
    },
    "root": {"handlers": ["mozlog"], "level": "INFO"},
}
