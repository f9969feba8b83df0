# zerohour: one image for the gateway (default command) and the provider (`provider run`).
# UNTESTED: no Docker engine was available where this was written, so this image has never been
# built or run; `docker-compose config` parsing compose.yaml is all that was checked. See
# docs/operations.md, "Running in containers".
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# The scanner's shared libraries (scripts/runtime-deps): without them RAR, 7z, CAB, ISO, ...
# and CHM are reported as unsupported (held or quarantined, never passed as clean).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libarchive13 libmspack0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# A dedicated user; the folders exist in the image so that named volumes mounted on them
# inherit its ownership.
RUN groupadd --system zerohour \
    && useradd --system --gid zerohour --home-dir /var/lib/zerohour --shell /usr/sbin/nologin zerohour \
    && install -d -o zerohour -g zerohour -m 0750 \
        /var/lib/zerohour /var/lib/zerohour-provider /var/lib/zerohour-shared /var/cache/zerohour
USER zerohour
WORKDIR /var/lib/zerohour
# Settings by environment (docs/settings.md): SMTP on 2525 (no capability needed in the
# container; publish it as port 25), the data folder a volume.
ENV PYTHONUNBUFFERED=1 \
    ZEROHOUR_DATA_DIR=/var/lib/zerohour \
    ZEROHOUR_CACHE_DIR=/var/cache/zerohour/db \
    ZEROHOUR_PROVIDER_DIR=/var/lib/zerohour-provider \
    ZEROHOUR_SMTP_LISTEN=0.0.0.0:2525
VOLUME ["/var/lib/zerohour"]
# SMTP, admin API/dashboard, provider.
EXPOSE 2525 8025 8470
# The gateway answers SMTP once its database is loaded (a start can take a while on a first
# compile of a large database: the start period).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import smtplib; smtplib.SMTP('127.0.0.1', 2525, timeout=8).quit()"]
ENTRYPOINT ["zerohour"]
CMD ["gateway", "run"]
