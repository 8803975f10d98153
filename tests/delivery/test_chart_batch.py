"""The chart's batch values: off by default; on, the router gets the Batch API's settings and volume."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest


def router_container(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    [deployment] = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("router")
    ]
    spec = deployment["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def test_batch_is_off_by_default(render_chart) -> None:
    spec, container = router_container(render_chart())
    assert not [env for env in container["env"] if env["name"].startswith("INFERFLUX_BATCH_")]
    assert "batch" not in {volume["name"] for volume in spec["volumes"]}


def test_batch_on_sets_the_router_up(render_chart) -> None:
    values = {"batch": {"enabled": True, "existingClaim": "batch-files", "workers": 0, "tenantQueued": 10}}
    spec, container = router_container(render_chart(values))
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["INFERFLUX_BATCH_DIR"] == "/var/lib/inferflux/batch"
    assert (env["INFERFLUX_BATCH_WORKERS"], env["INFERFLUX_BATCH_TENANT_QUEUED"]) == ("0", "10")
    assert "INFERFLUX_REDIS_URL" in env
    [volume] = [volume for volume in spec["volumes"] if volume["name"] == "batch"]
    assert volume["persistentVolumeClaim"]["claimName"] == "batch-files"
    assert {"name": "batch", "mountPath": "/var/lib/inferflux/batch"} in container["volumeMounts"]


def test_batch_without_redis_is_refused(render_chart) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        render_chart({"batch": {"enabled": True}, "redis": {"enabled": False}, "router": {"replicas": 1}})
    assert "batch.enabled needs a Redis" in failed.value.stderr
