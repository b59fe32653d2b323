"""The deploy files validate against their published schemas and agree with the code they deploy.

Kubernetes manifests: every resource a kustomization lists, against the
Kubernetes OpenAPI schemas (`kubernetes-validate`, strict: unknown fields
fail). compose.yaml: against the Compose Specification's schema
(`check-jsonschema --builtin-schema vendor.compose-spec`, vendored, offline).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from memory.config import Settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomization_resources(folder: Path) -> list[Path]:
    """The manifest files a kustomization builds from, following `../base`-style folder references."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and kustomization["kind"] == "Kustomization"
    files: list[Path] = []
    for entry in kustomization["resources"]:
        target = (folder / entry).resolve()
        assert target.exists(), f"{folder.name}/kustomization.yaml lists {entry}, which does not exist"
        files += _kustomization_resources(target) if target.is_dir() else [target]
    return files


def _patches(folder: Path) -> list[Path]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [(folder / p["path"]).resolve() for p in kustomization.get("patches", [])]


def _resources(overlay: str) -> list[dict]:
    """What the overlay builds: its resources, with its strategic-merge patches applied (maps merged by key)."""
    docs = [doc for f in _kustomization_resources(K8S / overlay) for doc in _docs(f)]
    for patch in (p for f in _patches(K8S / overlay) for p in _docs(f)):
        target = next(
            d for d in docs if (d["kind"], d["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        )
        for field, value in patch.items():
            if isinstance(value, dict) and isinstance(target.get(field), dict):
                target[field] = {**target[field], **value}
    return docs


@pytest.mark.parametrize("overlay", ["base", "in-cluster"])
def test_every_manifest_validates_against_the_kubernetes_schemas(overlay):
    resources = _resources(overlay)
    assert resources
    for doc in resources:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_every_manifest_file_is_built_by_a_kustomization():
    built = {f for overlay in ("base", "in-cluster") for f in _kustomization_resources(K8S / overlay)}
    built |= set(_patches(K8S / "in-cluster"))
    present = {f.resolve() for f in K8S.rglob("*.yaml") if f.name != "kustomization.yaml"}
    assert present == built


def test_the_validator_rejects_a_broken_manifest():
    deployment = next(d for d in _resources("base") if d["metadata"]["name"] == "memlab-app")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_the_manifests_fit_together_and_with_the_settings():
    resources = {(d["kind"], d["metadata"]["name"]): d for d in _resources("in-cluster")}
    settings = resources[("ConfigMap", "memlab-settings")]["data"]
    parsed = Settings.from_env(settings)
    assert parsed.redis_url == "redis://memlab-redis:6379/0" and ("Service", "memlab-redis") in resources
    assert parsed.chroma_host == "memlab-chroma" and ("Service", parsed.chroma_host) in resources
    assert parsed.chroma_port == 8000 and parsed.upkeep_mode == "external", "app replicas enqueue; workers run upkeep"
    secret = resources[("Secret", "memlab-secrets")]["stringData"]
    audit_url = Settings.from_env(secret).audit_database_url or ""
    assert audit_url.startswith("postgresql://") and "@memlab-postgres:5432/" in audit_url
    assert ("Service", "memlab-postgres") in resources
    base_secret = next(d for d in _resources("base") if d["kind"] == "Secret")["stringData"]
    assert Settings.from_env(base_secret).audit_database_url is None, "base: set by the operator, else SQLite"

    app = resources[("Deployment", "memlab-app")]["spec"]
    assert app["replicas"] == 2
    container = app["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/_stcore/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/_stcore/health"
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    refs = {r.get("configMapRef", r.get("secretRef", {}))["name"] for r in container["envFrom"]}
    assert refs == {"memlab-settings", "memlab-secrets"} and ("Secret", "memlab-secrets") in resources
    assert resources[("Service", "memlab-app")]["spec"]["sessionAffinity"] == "ClientIP"

    worker = resources[("Deployment", "memlab-worker")]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["python", "-m", "memory", "worker"]
    for (kind, name), doc in resources.items():
        if kind == "Service" and "selector" in doc["spec"]:
            targets = [
                d
                for (k, _), d in resources.items()
                if k in ("Deployment", "StatefulSet")
                and doc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert targets, f"Service {name} selects no workload"
    chroma = resources[("StatefulSet", "memlab-chroma")]["spec"]
    assert chroma["volumeClaimTemplates"] and chroma["template"]["spec"]["containers"][0]["volumeMounts"]


def test_compose_validates_against_the_compose_specification():
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert {"app", "worker", "redis", "chroma", "postgres"} <= set(compose["services"])
    # As compose expands them from an empty shell: ${NAME:-default} is the default.
    declared = compose["services"]["app"]["environment"]
    app_env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in declared.items()}
    parsed = Settings.from_env(app_env)
    assert parsed.audit_database_url == "postgresql://memlab:memlab@postgres:5432/memlab"
    assert (
        parsed.redis_url == "redis://redis:6379/0"
        and parsed.chroma_host == "chroma"
        and parsed.upkeep_mode == "external"
    )
    assert compose["services"]["worker"]["command"] == ["python", "-m", "memory", "worker"]


def test_a_broken_compose_file_fails_the_same_check(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  app:\n    image: x\n    ports: 8501\n    restart: sometimes-maybe\n")
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode != 0


def test_the_image_holds_everything_the_app_imports():
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = {line.split()[1].rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert {"memory", "ui", "pages", "app.py", "assets", ".streamlit", "requirements.txt"} <= copied
    assert "python -m memory.backends.onnx_model" in dockerfile, "the model is exported at build time, not at run time"
    assert "HF_HUB_OFFLINE=1" in dockerfile and '"app.py"' in dockerfile and "/_stcore/health" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "data" in ignored
