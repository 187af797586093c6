# syntax=docker/dockerfile:1
# The image-automation bot: `docker build -t image-automation-bot .`
#
# Stage 1 builds a wheel of the project and fetches binary wheels of every
# dependency; stage 2 installs those wheels and nothing else. Neither stage
# compiles anything: dependencies are taken as binary wheels only
# (--only-binary=:all:), so PyYAML comes with its libyaml C extension (the
# setters refuse to run without it) and google-re2 with its RE2 build. On a
# platform without such wheels the build fails here instead of producing an
# image that cannot start.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --only-binary=:all: --wheel-dir /wheels /wheels/image_automation_bot-*.whl


FROM python:3.11-slim AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json \
    PORT=3000 \
    DATABASE_URL=sqlite:////data/image-automation.db

# A fixed, numeric UID/GID, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 bot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin bot \
 && mkdir -p /data \
 && chown 10001:10001 /data

# Only the builder's wheels, from no index; then prove the C extensions are there.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --no-cache-dir --find-links=/wheels image-automation-bot \
 && python -c "import bot.update.yamlscan, re2, psycopg" \
 && image-automation-bot --help >/dev/null

# The default SQLite database lives here. It suits one process only: several
# replicas must share PostgreSQL (DATABASE_URL=postgresql://...).
WORKDIR /data
VOLUME /data

USER 10001:10001
EXPOSE 3000

# Kubernetes ignores this and uses its own probes (deploy/kubernetes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"

ENTRYPOINT ["image-automation-bot"]
CMD ["serve"]
