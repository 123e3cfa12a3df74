# monitor: the ingestion daemon as a container service. docs/operations.md has the details.
#   docker build -t monitor .
#   docker run -d --name monitor -v monitor-data:/data -p 127.0.0.1:8080:8080 monitor
# The SQLite database lives in the /data volume; set MONITOR_DATABASE__URL for PostgreSQL
# (compose.yaml) and mount your own config.toml at /etc/monitor/config.toml.

# Both stages must use the same base image: the venv's python is a link to its interpreter.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# README.md is the package's long description (pyproject.toml); .dockerignore lets
# nothing else in, tests and corpora above all.
COPY pyproject.toml README.md ./
COPY migrations ./migrations
COPY monitor ./monitor
RUN python -m venv /opt/monitor \
    && /opt/monitor/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm AS runtime
# A fixed numeric uid and gid, so that volumes and bind mounts can be prepared for them.
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /data \
       --no-create-home --shell /usr/sbin/nologin monitor \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/monitor /opt/monitor
COPY config.toml /etc/monitor/config.toml

ARG SOURCE_URL=https://github.com/monitor-news/monitor
LABEL org.opencontainers.image.title="monitor" \
      org.opencontainers.image.description="News-monitoring ingestion daemon: polls feeds, extracts, de-duplicates and stores articles." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

# The HTTP endpoint listens on every interface of the container: published ports and
# other containers reach it there, never on its loopback. Publish it on 127.0.0.1 only.
# The language model is unpacked once into XDG_CACHE_HOME and mapped from there
# (docs/operations.md, "Cores and memory"): on the volume, it outlives the container.
ENV PATH=/opt/monitor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/etc/monitor/config.toml \
    MONITOR_DATABASE__URL=sqlite:////data/monitor.db \
    MONITOR_HTTP__HOST=0.0.0.0 \
    MONITOR_HTTP__PORT=8080 \
    XDG_CACHE_HOME=/data/.cache

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# The daemon stops within 10 s of SIGTERM: give it more than Docker's default 10 s
# (docker stop -t 15, docker run --stop-timeout 15, compose stop_grace_period: 15s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["monitor", "healthcheck"]
CMD ["monitor", "run"]
