# The sidecar container: ships spooled audit records, serves /metrics and /healthz.
#   docker build -t llm-audit-sidecar .
#   docker run -v spool:/spool -e SIDECAR_ELASTICSEARCH_URL=http://elasticsearch:9200 llm-audit-sidecar
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SIDECAR_SPOOL_DIR=/spool \
    SIDECAR_STATE_DIR=/var/lib/sidecar \
    SIDECAR_LISTEN=0.0.0.0:9464

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
COPY dashboards /usr/share/llm-audit-sidecar/dashboards
RUN pip install . && rm -rf /src \
    && useradd --system --uid 10001 --no-create-home sidecar \
    && mkdir -p /spool /var/lib/sidecar && chown sidecar /spool /var/lib/sidecar

USER sidecar
WORKDIR /var/lib/sidecar
VOLUME ["/spool", "/var/lib/sidecar"]
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz/live', timeout=2).status == 200 else 1)"
ENTRYPOINT ["sidecar"]
CMD ["run"]
