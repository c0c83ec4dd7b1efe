# looptrack: one image for the ingest worker, the API and the command line.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY ingest ingest
COPY api api
COPY devices devices
COPY looptrack looptrack
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app looptrack
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER looptrack
WORKDIR /app
ENTRYPOINT ["looptrack"]
CMD ["--help"]
