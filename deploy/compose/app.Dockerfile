# The demo application of `make demo`, as a container that writes to the shared spool.
# It runs as its own user (10002), in the group it shares with the sidecar (10001, "llm-audit"), so
# the segments it writes (0640) are readable by the sidecar and by nobody else. /spool is prepared
# exactly as in the sidecar image (10001:10001, 2770), so the volume is right whichever starts first.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY sidecar ./sidecar
COPY dashboards ./dashboards
COPY deploy ./deploy
COPY examples ./examples
COPY tests/support ./tests/support
RUN pip install ".[test]" \
    && groupadd --system --gid 10001 llm-audit \
    && useradd --system --uid 10002 --gid 10001 --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /spool && chown 10001:10001 /spool && chmod 2770 /spool
USER 10002:10001
CMD ["python", "examples/demo_app.py"]
