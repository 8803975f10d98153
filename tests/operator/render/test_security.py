"""The restricted Pod Security profile, checked field by field against its published rules."""

from __future__ import annotations

from inferflux.operator.render.security import container_security_context, pod_security_context


def test_pod_runs_as_non_root_with_runtime_default_seccomp() -> None:
    pod = pod_security_context()
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


def test_container_drops_everything_and_cannot_escalate() -> None:
    container = container_security_context()
    assert container["allowPrivilegeEscalation"] is False
    assert container["privileged"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in container["capabilities"]
    assert container["readOnlyRootFilesystem"] is True
