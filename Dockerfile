# driftline service image: slim, non-root, health-checked.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY collector ./collector
COPY detectors ./detectors
COPY alerts ./alerts
COPY sidecar ./sidecar
# One command: pip takes driftline-sidecar, which driftline depends on, from ./sidecar.
RUN pip install --no-cache-dir --prefix=/install ./sidecar .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 driftline
COPY --from=build /install /usr/local
WORKDIR /app
COPY examples ./examples
RUN mkdir -p /app/.driftline && chown -R driftline /app
USER driftline
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["driftline"]
CMD ["serve", "--config", "/app/driftline.yaml"]
