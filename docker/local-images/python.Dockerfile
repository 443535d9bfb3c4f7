# Stand-in for python:3.11-slim: Debian bookworm's Python 3.11 with venv (the evalfleet
# Dockerfile installs into a venv, so the interpreter's own site-packages stay untouched).
ARG BASE
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 python3-venv; \
    ln -s python3 /usr/bin/python; \
    rm -rf /var/lib/apt/lists/*
CMD ["python3"]
