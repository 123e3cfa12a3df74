# monitor: the ingestion daemon as a container service.
#   docker build -t monitor .
#   docker run -v monitor-data:/data monitor
# The SQLite database lives in the /data volume; set MONITOR_DATABASE_URL for PostgreSQL
# and mount your own config.toml at /etc/monitor/config.toml.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY monitor ./monitor
COPY migrations ./migrations
RUN python -m venv /opt/monitor \
    && /opt/monitor/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/monitor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONITOR_CONFIG=/etc/monitor/config.toml \
    MONITOR_DATABASE_URL=sqlite:////data/monitor.db
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin monitor \
    && mkdir -p /data \
    && chown monitor:monitor /data
COPY --from=build /opt/monitor /opt/monitor
COPY config.toml /etc/monitor/config.toml
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
CMD ["monitor", "run"]
