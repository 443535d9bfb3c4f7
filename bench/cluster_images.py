"""The images the cluster test's compose project uses: the official ones when they are here
or can be pulled, else the local stand-ins of docker/build-local-images.sh (no registry);
and the host's CA bundle for the project image's pip (TLS-intercepting proxies)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cluster_docker import ROOT, sh
from progress import say

OFFICIAL = {
    "EVALFLEET_PYTHON_IMAGE": "python:3.11-slim",
    "EVALFLEET_REDIS_IMAGE": "redis:7",
    "EVALFLEET_POSTGRES_IMAGE": "postgres:16",
}
BUILD_SCRIPT = ROOT / "docker" / "build-local-images.sh"
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IN_CONTEXT = "docker/ca/host-ca.pem"  # git-ignored; the build context holds only docker/ca
PULL_TIMEOUT_S = 90


def present(image: str) -> bool:
    return (
        sh("docker", "image", "inspect", image, timeout=60, check=False, quiet=True).returncode == 0
    )


def pulled(image: str) -> bool:
    try:
        return sh("docker", "pull", image, timeout=PULL_TIMEOUT_S, check=False).returncode == 0
    except subprocess.TimeoutExpired:  # no answer from a registry: as good as none
        return False


def choose_images() -> dict[str, str]:
    """Each image variable: set by the caller, else the official image when present or
    pullable, else the local stand-in (one failed pull means no registry: no more tries)."""
    chosen: dict[str, str] = {}
    registry = True
    for variable, official in OFFICIAL.items():
        if os.environ.get(variable):
            chosen[variable] = os.environ[variable]
        elif present(official) or (registry and pulled(official)):
            chosen[variable] = official
        else:
            registry = False
    missing = [variable for variable in OFFICIAL if variable not in chosen]
    if missing:
        say(f"no {', '.join(OFFICIAL[v] for v in missing)}: local stand-ins ({BUILD_SCRIPT.name})")
        out = sh(str(BUILD_SCRIPT), timeout=1800).stdout
        built = dict(
            line.removeprefix("export ").split("=", 1)
            for line in out.splitlines()
            if line.startswith("export ")
        )
        chosen.update({variable: built[variable] for variable in missing})
    return chosen


def extra_ca_certs() -> dict[str, str]:
    """EVALFLEET_EXTRA_CA_CERTS for the build: the caller's, else the host's bundle copied
    into the build context (containers reach PyPI through the host's TLS trust)."""
    if os.environ.get("EVALFLEET_EXTRA_CA_CERTS"):
        return {"EVALFLEET_EXTRA_CA_CERTS": os.environ["EVALFLEET_EXTRA_CA_CERTS"]}
    if not HOST_BUNDLE.is_file():
        return {}
    shutil.copyfile(HOST_BUNDLE, ROOT / CA_IN_CONTEXT)
    return {"EVALFLEET_EXTRA_CA_CERTS": CA_IN_CONTEXT}
