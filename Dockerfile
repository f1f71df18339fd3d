# The example service as a Dockerflow container (https://github.com/mozilla-services/Dockerflow).
#
#   docker build -t dockerflow-wsgi-example \
#       --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#       --build-arg VERSION="$(git describe --tags --always)" \
#       --build-arg SOURCE_URL=https://github.com/OWNER/dockerflow-wsgi \
#       --build-arg BUILD_URL="$CI_JOB_URL" .
#   docker run --rm -p 8000:8000 dockerflow-wsgi-example
#
# With the default SQLite database the app migrates it at startup. With a real database
# (-e DATABASE_URL=postgresql://...), migrate once per release, before the new version serves:
#
#   docker run --rm -e DATABASE_URL=... --entrypoint alembic dockerflow-wsgi-example upgrade head
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown app:app /data

WORKDIR /app
COPY . /app
RUN pip install '.[example]'

# version.json, from the build arguments; last, so that a new commit rebuilds only this
# layer. Without GIT_COMMIT the command fails, and so does the build: an image that cannot
# say what it is never ships.
ARG GIT_COMMIT
ARG VERSION
ARG SOURCE_URL
ARG BUILD_URL
RUN dockerflow-wsgi version-json --output /app/version.json

# The code is root's and read-only to the app; its SQLite default lives in /data instead.
ENV PORT=8000 \
    DOCKERFLOW_VERSION_PATH=/app \
    DATABASE_URL=sqlite:////data/example.sqlite3

USER app
WORKDIR /app/example_app
EXPOSE 8000
ENTRYPOINT ["gunicorn", "--config", "/app/example_app/gunicorn.conf.py"]
CMD ["app:app"]
