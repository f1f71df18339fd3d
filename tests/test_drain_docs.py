"""The drain's configuration snippets in the docs are what they say: the Deployment drains in
``preStop`` within its grace period, HAProxy accepts its configuration, compose mounts it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets"


def test_the_deployment_drains_before_the_stop_within_its_grace_period() -> None:
    deployment = yaml.safe_load((SNIPPETS / "kubernetes-drain.yaml").read_text("utf-8"))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["dockerflow-wsgi", "drain"]
    drain_seconds = float(command[command.index("--seconds") + 1])
    gunicorn_graceful_timeout = 30
    assert pod["terminationGracePeriodSeconds"] > drain_seconds + gunicorn_graceful_timeout
    # Liveness fails only after longer than the drain: the kubelet never restarts a draining pod.
    liveness = container["livenessProbe"]
    assert liveness["httpGet"]["path"] == "/__lbheartbeat__"
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain_seconds
    assert container["readinessProbe"]["httpGet"]["path"] == "/__heartbeat__/readiness"


def test_haproxy_accepts_the_documented_configuration() -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is not installed (.ci/run installs it)")
        pytest.skip("haproxy is not installed")
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(SNIPPETS / "haproxy-drain.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_serves_the_haproxy_configuration_and_waits_for_the_drain() -> None:
    compose = yaml.safe_load((SNIPPETS / "compose-drain.yaml").read_text("utf-8"))
    web, lb = compose["services"]["web"], compose["services"]["lb"]
    assert "./haproxy-drain.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    drain_seconds = float(web["environment"]["DOCKERFLOW_DRAIN_SECONDS"])
    assert float(web["stop_grace_period"].removesuffix("s")) > drain_seconds + 30
    haproxy_cfg = (SNIPPETS / "haproxy-drain.cfg").read_text("utf-8")
    assert "option httpchk GET /__lbheartbeat__" in haproxy_cfg
    # The load balancer's probe fails twice 500 ms apart well within the drain.
    assert "inter 500ms fall 2" in haproxy_cfg
    assert drain_seconds > 2 * 0.5
