"""Every image of the compose file comes from a variable whose default is the official image,
and the build arguments it passes are the Dockerfile's, with the same defaults."""

from __future__ import annotations

import re

from test_dockerfile import build_args
from unit.deploy.compose_files import ROOT, SERVICES, VARIABLE, compose_variables, project_services

OFFICIAL = {"redis": "redis:7", "postgres": "postgres:16"}


def test_the_redis_and_postgres_images_are_variables_defaulting_to_the_official_ones() -> None:
    # Given the services that do not run the project image
    for name, official in OFFICIAL.items():
        image = SERVICES[name]["image"]

        # Then the image is one ${VAR:-default} whose default is the official image
        match = VARIABLE.fullmatch(image)
        assert match, f"{name}: the image {image!r} is not taken from a variable"
        assert match["op"] == ":-" and match["arg"] == official, image


def test_the_build_arguments_are_the_dockerfiles_with_its_defaults() -> None:
    # Given the Dockerfile's ARGs and the build arguments of the project services
    dockerfile = build_args()
    for name, service in project_services().items():
        args = service["build"].get("args", {})

        # Then each argument is one the Dockerfile declares, its default is the Dockerfile's
        # (a build without compose gives the same image), and a variable can change it
        assert args, f"{name} passes no build arguments"
        for arg, value in args.items():
            assert arg in dockerfile, f"{name}: the Dockerfile has no ARG {arg}"
            match = VARIABLE.fullmatch(str(value))
            assert match and match["op"] == ":-", f"{name}: {arg} is not from a variable"
            assert match["arg"] == dockerfile[arg], f"{name}: {arg} defaults differently"
    # and the base image's default is the official slim Python
    assert dockerfile["PYTHON_IMAGE"] == "python:3.11-slim"


def test_the_default_extra_ca_file_exists_is_empty_and_is_in_the_build_context() -> None:
    # Given the default of EXTRA_CA_CERTS and the .dockerignore patterns
    path = ROOT / build_args()["EXTRA_CA_CERTS"]
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8")

    # Then the file exists and adds no certificate, and no pattern drops docker/
    assert path.is_file() and path.read_text(encoding="utf-8") == ""
    assert not re.search(r"^/?docker/?$", ignored, re.MULTILINE)


def test_the_local_image_script_prints_the_variables_the_compose_file_reads() -> None:
    # Given what docker/build-local-images.sh prints and the images it builds
    script = (ROOT / "docker" / "build-local-images.sh").read_text(encoding="utf-8")
    printed = dict(re.findall(r'^echo "export (\w+)=([^"]+)"$', script, re.MULTILINE))
    built = set(re.findall(r'^build_image "([^"]+)"', script, re.MULTILINE))

    # Then it prints one value for each image variable of the compose file and the
    # Dockerfile's base, and each value is an image it builds
    assert set(printed) == {"EVALFLEET_PYTHON_IMAGE", "EVALFLEET_REDIS_IMAGE",
                            "EVALFLEET_POSTGRES_IMAGE"}  # fmt: skip
    assert set(printed) <= set(compose_variables())
    assert set(printed.values()) == built
