"""No secret is written in the compose file: every one comes from the environment."""

from __future__ import annotations

import re

from unit.deploy.compose_files import (
    COMPOSE,
    SERVICES,
    all_strings,
    compose_references,
    compose_variables,
    is_pure_reference,
    option_value,
)

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|AUTH", re.IGNORECASE)
URL_USERINFO = re.compile(r"://(?P<user>[^:@/\s]*):(?P<password>[^@\s]*)@")


def test_no_password_has_a_default_value() -> None:
    # Given every variable the compose file reads, with how it is used
    # Then secrets are required (${VAR:?...}) wherever they are used; only an API key may
    # default to empty (allowed with the simulator, documented in .env.example)
    for name, operators in compose_variables().items():
        if not SECRET_NAME.search(name):
            continue
        for match in compose_references():
            if match["name"] != name or match["op"] not in (":-", "-"):
                continue
            assert name.endswith("API_KEY") and match["arg"] == "", (
                f"${{{name}}} has the default {match['arg']!r}"
            )
        if "PASSWORD" in name:
            assert operators <= {":?", "?"}, f"${{{name}}} is not required everywhere"


def test_no_literal_password_is_written_in_the_compose_file() -> None:
    # Given every place a secret goes: secret-named variables, URL passwords, --requirepass
    # and --basic-auth values
    slots: list[tuple[str, str]] = []
    for service_name, service in SERVICES.items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        slots += [
            (f"{service_name}.{key}", str(value))
            for key, value in environment.items()
            if SECRET_NAME.search(key)
        ]
        command = [str(w) for w in service.get("command", [])]
        for option in ("--requirepass", "--basic-auth", "-a"):
            value = option_value(command, option)
            if value is not None:
                slots.append((f"{service_name} {option}", value))
    for text in all_strings(COMPOSE):
        slots += [("URL password", m["password"]) for m in URL_USERINFO.finditer(text)]

    # Then each is a reference to the environment, never a literal value
    assert slots
    for where, value in slots:
        if value == "":
            continue
        assert is_pure_reference(value), f"{where} holds a literal secret"
