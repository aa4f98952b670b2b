"""deploy/: what can be validated without Docker: nginx, systemd, compose, Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import IN_CI

from aggregator.config import SCHEMA, env_name

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def need(binary: str) -> str:
    found = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if found is None:
        if IN_CI:
            pytest.fail(f"{binary} is missing (apt-get install {binary})")
        pytest.skip(f"{binary} is not installed")
    return found


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx = need("nginx")
    openssl = need("openssl")
    key, cert = tmp_path / "privkey.pem", tmp_path / "fullchain.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=backchannel.example.org", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "backchannel.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/backchannel.example.org/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    # Websockets need the upgrade headers and a long read timeout.
    ws = site[site.index("location /ws") :]
    ws = ws[: ws.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade" in ws
    assert "proxy_set_header Connection $connection_upgrade" in ws
    assert (
        re.search(r"proxy_read_timeout (\d+)s", ws)
        and int(
            re.search(r"proxy_read_timeout (\d+)s", ws).group(1)  # type: ignore[union-attr]
        )
        >= 600
    )


def _verify(unit: Path) -> str:
    analyze = need("systemd-analyze")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    return (result.stdout + result.stderr).strip() + ("" if result.returncode == 0 else " (failed)")


def test_the_systemd_unit_verifies_without_warnings(tmp_path: Path) -> None:
    text = (DEPLOY / "backchannel.service").read_text()
    # verify checks that ExecStart is executable: point it at this Python for the check.
    unit = tmp_path / "backchannel.service"
    unit.write_text(text.replace("/usr/local/bin/backchannel", sys.executable))
    assert _verify(unit) == ""
    # The check can fail: an unknown key is reported.
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    assert "Unknown key" in _verify(bad)
    for option in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
    ):
        assert option in text


def test_compose_has_the_nodes_databases_volumes_and_secrets() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"ingest", "serve-1", "serve-2", "postgres", "redis"}
    assert services["ingest"]["command"][0] == "ingest"
    assert services["serve-1"]["command"][0] == services["serve-2"]["command"][0] == "serve"
    env = services["serve-1"]["environment"]
    assert env["BACKCHANNEL_STORAGE_URL"].startswith("postgresql://")
    assert env["BACKCHANNEL_BUS_URL"].startswith("redis://")
    known = {env_name(section, key) for section, keys in SCHEMA.items() for key in keys}
    for name in env:
        assert name.removesuffix("_FILE") in known, f"{name} is not a config variable"
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert set(compose["secrets"]) == {"admin_token", "mastodon_token"}
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name]


def test_the_image_runs_unprivileged_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final = text[text.rindex("FROM ") :]
    assert final.startswith("FROM python:3.11-slim")
    users = re.findall(r"^USER (\S+)", final, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*healthz", final, re.M | re.S)
    assert "ENTRYPOINT" in final and "backchannel" in final
