"""The Kubernetes YAML of the docs: whole objects that the API server's schemas accept, so each
snippet can be applied as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")
yaml = pytest.importorskip("yaml")

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets"
KUBERNETES_SNIPPETS = sorted(SNIPPETS.glob("kubernetes*.yaml"))


def _objects(path: Path) -> list[Any]:
    return [document for document in yaml.safe_load_all(path.read_text("utf-8")) if document]


def test_there_are_kubernetes_snippets() -> None:
    assert [path.name for path in KUBERNETES_SNIPPETS] == [
        "kubernetes-drain.yaml",
        "kubernetes-exec-probe.yaml",
        "kubernetes-probes.yaml",
    ]


@pytest.mark.parametrize("path", KUBERNETES_SNIPPETS, ids=lambda path: path.name)
def test_each_snippet_is_a_whole_object_the_schemas_accept(path: Path) -> None:
    (document,) = _objects(path)
    assert {"apiVersion", "kind", "metadata", "spec"} <= set(document)
    assert document["kind"] in {"Deployment", "Pod"}
    # strict: a misspelt or misplaced field is an error, as kubectl's server-side validation.
    kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    """The check can fail: a probe's ``timeoutSecond`` is not a field."""
    (document,) = _objects(SNIPPETS / "kubernetes-probes.yaml")
    (container,) = document["spec"]["template"]["spec"]["containers"]
    container["livenessProbe"]["timeoutSecond"] = container["livenessProbe"].pop("timeoutSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
