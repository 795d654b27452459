# The sidecar container: ships spooled audit records, serves /metrics and /healthz.
#   docker build --build-arg VERSION=0.1.0 -t registry.example.com/llm-audit-sidecar:0.1.0 .
#   docker run -v spool:/spool -e SIDECAR_ELASTICSEARCH_URL=http://elasticsearch:9200 \
#       registry.example.com/llm-audit-sidecar:0.1.0
# Tag the image with the package version (`sidecar --version`); deploy/ names that tag.
#
# Numeric user and group, so Kubernetes' runAsNonRoot can verify them: the sidecar runs as 10001:10001.
# GID 10001 ("llm-audit") is the group the application and the sidecar share on the spool volume: the
# application writes segments 0640 with that group into /spool (2770: setgid, so new files keep the
# group); the sidecar reads them through the group and deletes them once shipped. See deploy/README.md.
FROM python:3.12-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="llm-audit-sidecar" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SIDECAR_SPOOL_DIR=/spool \
    SIDECAR_SPOOL_GROUP=10001 \
    SIDECAR_STATE_DIR=/var/lib/sidecar \
    SIDECAR_LISTEN=0.0.0.0:9464

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY sidecar ./sidecar
COPY dashboards ./dashboards
COPY deploy ./deploy
RUN pip install . && rm -rf /src \
    && groupadd --system --gid 10001 llm-audit \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin sidecar \
    && mkdir -p /spool /var/lib/sidecar \
    && chown 10001:10001 /spool /var/lib/sidecar \
    && chmod 2770 /spool \
    && chmod 0700 /var/lib/sidecar

USER 10001:10001
WORKDIR /var/lib/sidecar
VOLUME ["/spool", "/var/lib/sidecar"]
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz/live', timeout=2).status == 200 else 1)"
ENTRYPOINT ["sidecar"]
CMD ["run"]
