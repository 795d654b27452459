# The demo application of `make demo`, as a container that writes to the shared spool.
FROM python:3.12-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
COPY examples ./examples
COPY tests/support ./tests/support
RUN pip install --no-cache-dir ".[test]"
CMD ["python", "examples/demo_app.py"]
