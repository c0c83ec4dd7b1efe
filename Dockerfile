# looptrack: one image for the ingest worker, the API and the command line. Every
# container runs a `looptrack` command (ENTRYPOINT), e.g. `ingest`, `api`, `db migrate`.
#
# Stage 1 builds the project's wheel (the step .ci/run repeats without Docker, and
# tests/cli/test_wheel.py checks: every SQL file, template, static file and scenario the
# program reads is in it) and installs it with its dependencies into a virtualenv.
# Stage 2 is a slim image with that virtualenv, no build tools, no pip cache, non-root.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# What the wheel is built from: the project metadata and the packages of
# [tool.setuptools.packages.find]. tests/cli/test_wheel.py builds from exactly these
# COPY lines, so a package missing here fails CI, not the image.
COPY pyproject.toml README.md LICENSE ./
COPY schemas schemas
COPY ingest ingest
COPY api api
COPY devices devices
COPY looptrack looptrack
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/looptrack \
 && /opt/looptrack/bin/pip install /wheels/looptrack-*.whl

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="looptrack" \
      org.opencontainers.image.description="Closed-loop packaging tracking: MQTT ingest, statistics API, GS1 Digital Link labels" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/looptrack/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --create-home --home-dir /app looptrack
# Same base image as the build stage, so the virtualenv's interpreter links still hold.
COPY --from=build /opt/looptrack /opt/looptrack
USER looptrack
WORKDIR /app
EXPOSE 8000
# No HEALTHCHECK here: the image runs a worker, an API and one-shot commands, which are
# healthy in different ways; docker-compose.yml gives each long-running service its own.
ENTRYPOINT ["looptrack"]
CMD ["--help"]
