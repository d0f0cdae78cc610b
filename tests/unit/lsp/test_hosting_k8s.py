"""The Kubernetes orchestrator (lsp/hosting/k8s.py) without a cluster: its rendered manifests,
its reading of pod states, and its kubectl calls against a fake ``kubectl`` script."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lsp.hosting.config import HostingSettings
from lsp.hosting.k8s import MAX_NAME, KubernetesOrchestrator, node_status, quantity_bytes
from lsp.hosting.orchestrator import (
    GRPC_PORT,
    P2P_PORT,
    PASSWORD_FILE,
    REST_PORT,
    NodeSpec,
    OrchestratorError,
    OrchestratorUnavailable,
    Ports,
)

pytestmark = pytest.mark.unit

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NODE_ID = "hn-3f9a1c2b7d4e"
CLIENT_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PASSWORD = b"correct horse battery staple"
RPC_PASS = "rpc-secret-pass"
NAME = f"lsp-t1-{NODE_ID}"


def settings(**overrides: Any) -> HostingSettings:
    kw: dict[str, Any] = {
        "orchestrator": "kubernetes",
        "instance": "t1",
        "image": "registry.example/lnd:v0.21.3",
        "public_host": "nodes.example.com",
        "k8s_namespace": "lsp-hosted",
        "k8s_storage_class": "fast-ssd",
        "k8s_storage_gb": 20,
        "memory_mb": 768,
        "cpus": 0.5,
        "bitcoind_rpc_host": "bitcoind:18443",
        "bitcoind_rpc_user": "lab",
        "bitcoind_rpc_pass": RPC_PASS,
        "bitcoind_zmq_block": "tcp://bitcoind:28332",
        "bitcoind_zmq_tx": "tcp://bitcoind:28333",
    }
    kw.update(overrides)
    return HostingSettings(**kw)


def spec(node_id: str = NODE_ID, client_id: str = CLIENT_ID) -> NodeSpec:
    return NodeSpec(
        node_id=node_id,
        client_id=client_id,
        alias="alice-node",
        color="#3399ff",
        ports=Ports(grpc=20009, rest=20080, p2p=29735),
        extra_flags=("--accept-keysend",),
        password=PASSWORD,
    )


def rendered(**overrides: Any) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in KubernetesOrchestrator(settings(**overrides)).render(spec())}


def lnd_container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = manifests["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


# -- the manifests ---------------------------------------------------------------------------
def test_renders_a_secret_a_statefulset_and_a_service() -> None:
    manifests = KubernetesOrchestrator(settings()).render(spec())
    assert [(m["apiVersion"], m["kind"]) for m in manifests] == [
        ("v1", "Secret"),
        ("apps/v1", "StatefulSet"),
        ("v1", "Service"),
    ]
    for m in manifests:
        assert m["metadata"]["namespace"] == "lsp-hosted"
        assert m["metadata"]["name"] == NAME
    assert manifests[0]["type"] == "Opaque"
    assert manifests[2]["spec"]["type"] == "ClusterIP"


def test_names_are_dns_1123_labels() -> None:
    orch = KubernetesOrchestrator(settings())
    for name in (orch.resource_name(NODE_ID), orch.pod_name(NODE_ID), orch.claim_name(NODE_ID)):
        assert DNS_LABEL.match(name), name
        assert len(name) <= 63
    assert orch.resource_name(NODE_ID) == NAME
    assert orch.claim_name(NODE_ID) == f"data-{NAME}-0"
    sts = rendered()["StatefulSet"]
    assert sts["spec"]["serviceName"] == NAME
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_the_longest_instance_and_node_id_still_fit() -> None:
    # controller-revision-hash=<statefulset>-<10 chars> must stay a valid (<= 63) label value.
    orch = KubernetesOrchestrator(settings(instance="a" * 32))
    name = orch.resource_name(NODE_ID)
    assert len(name) == MAX_NAME == 52
    assert len(f"{name}-{'x' * 10}") == 63


@pytest.mark.parametrize(
    "node_id",
    ["HN-3F9A1C2B7D4E", "hn_3f9a1c2b7d4e", "hn-3f9a1c2b7d4e-", "hn.3f9a", "hn-" + "a" * 60, "", "-hn-1"],
)
def test_a_node_id_that_gives_no_valid_name_is_refused(node_id: str) -> None:
    orch = KubernetesOrchestrator(settings())
    with pytest.raises(OrchestratorError):
        orch.render(spec(node_id=node_id))
    with pytest.raises(OrchestratorError):
        orch.resource_name(node_id)


def test_a_client_id_that_is_no_label_value_is_refused() -> None:
    with pytest.raises(OrchestratorError, match="client id"):
        KubernetesOrchestrator(settings()).render(spec(client_id="not a label!"))


def test_selector_matches_the_pod_template_and_the_service() -> None:
    m = rendered()
    selector = m["StatefulSet"]["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "lsp-hosted-node",
        "app.kubernetes.io/instance": NAME,
        "lsp.hosting/instance": "t1",
        "lsp.hosting/node": NODE_ID,
        "lsp.hosting/client": CLIENT_ID,
    }
    template_labels = m["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()
    assert m["Service"]["spec"]["selector"] == selector
    for kind in ("Secret", "StatefulSet", "Service"):  # every object says whose it is
        assert selector.items() <= m[kind]["metadata"]["labels"].items()


def test_service_exposes_grpc_rest_and_p2p() -> None:
    m = rendered()
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in m["Service"]["spec"]["ports"]}
    assert ports == {"grpc": (10009, "grpc"), "rest": (8080, "rest"), "p2p": (9735, "p2p")}
    container_ports = {p["name"]: p["containerPort"] for p in lnd_container(m)["ports"]}
    assert container_ports == {"grpc": GRPC_PORT, "rest": REST_PORT, "p2p": P2P_PORT}
    assert lnd_container(m)["readinessProbe"]["tcpSocket"] == {"port": "grpc"}


@pytest.mark.parametrize(("cpus", "quantity"), [(0.5, "500m"), (1.0, "1"), (2.0, "2"), (1.25, "1250m")])
def test_resources_match_settings(cpus: float, quantity: str) -> None:
    c = lnd_container(rendered(cpus=cpus, memory_mb=768))
    assert c["resources"]["requests"] == {"memory": "768Mi", "cpu": quantity}
    assert c["resources"]["limits"] == c["resources"]["requests"]
    assert c["image"] == "registry.example/lnd:v0.21.3"
    assert c["name"] == "lnd"


def test_storage_claim_has_the_size_and_class() -> None:
    claim = rendered()["StatefulSet"]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    assert claim["storageClassName"] == "fast-ssd"


def test_storage_class_is_absent_when_not_set() -> None:
    claim = rendered(k8s_storage_class="")["StatefulSet"]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert "storageClassName" not in claim


def test_the_password_is_only_in_the_secret() -> None:
    m = rendered()
    assert base64.b64decode(m["Secret"]["data"]["wallet-password"]) == PASSWORD
    encoded = base64.b64encode(PASSWORD).decode()
    for kind in ("StatefulSet", "Service"):
        text = json.dumps(m[kind])
        assert PASSWORD.decode() not in text
        assert encoded not in text
    assert not any(PASSWORD.decode() in a for a in lnd_container(m)["args"])


def test_the_password_file_is_the_secret_mounted_read_only() -> None:
    m = rendered()
    pod = m["StatefulSet"]["spec"]["template"]["spec"]
    mounts = {v["mountPath"]: v for v in lnd_container(m)["volumeMounts"]}
    assert mounts["/data"] == {"name": "data", "mountPath": "/data"}
    pw = mounts[PASSWORD_FILE]
    assert (pw["name"], pw["subPath"], pw["readOnly"]) == ("wallet-password", "wallet-password", True)
    conf = mounts["/data/lnd.conf"]
    assert (conf["name"], conf["subPath"], conf["readOnly"]) == ("wallet-password", "lnd.conf", True)
    (volume,) = pod["volumes"]
    assert volume["name"] == "wallet-password"
    assert volume["secret"]["secretName"] == NAME
    assert volume["secret"]["items"] == [
        {"key": "wallet-password", "path": "wallet-password"},
        {"key": "lnd.conf", "path": "lnd.conf"},
    ]
    assert pod["automountServiceAccountToken"] is False


def test_lnd_args() -> None:
    args = lnd_container(rendered())["args"]
    assert "--wallet-unlock-password-file=/data/wallet-password" in args
    assert "--lnddir=/data/lnd" in args
    assert "--bitcoind.rpchost=bitcoind:18443" in args
    assert "--bitcoind.zmqpubrawblock=tcp://bitcoind:28332" in args
    assert "--rpclisten=0.0.0.0:10009" in args
    assert "--restlisten=0.0.0.0:8080" in args
    assert "--listen=0.0.0.0:9735" in args
    assert "--alias=alice-node" in args
    assert "--accept-keysend" in args
    for name in (NAME, f"{NAME}.lsp-hosted", f"{NAME}.lsp-hosted.svc", "nodes.example.com"):
        assert f"--tlsextradomain={name}" in args
    # The ports the LSP picked are the public ones, never LND's own listeners in the pod.
    assert not any("20009" in a or "29735" in a for a in args)


def test_a_public_ip_becomes_a_tls_ip() -> None:
    args = lnd_container(rendered(public_host="203.0.113.7"))["args"]
    assert "--tlsextraip=203.0.113.7" in args
    assert "--tlsextradomain=203.0.113.7" not in args


def test_security_context() -> None:
    m = rendered()
    sc = lnd_container(m)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_manifests_round_trip_through_yaml() -> None:
    manifests = KubernetesOrchestrator(settings()).render(spec())
    text = yaml.safe_dump_all(manifests, sort_keys=False)
    assert list(yaml.safe_load_all(text)) == manifests


def test_addresses() -> None:
    a = KubernetesOrchestrator(settings()).addresses(spec())
    assert a.rpc == f"{NAME}.lsp-hosted.svc:10009"
    assert a.peer == f"{NAME}.lsp-hosted.svc:9735"
    assert a.endpoint_grpc == "nodes.example.com:20009"
    assert a.endpoint_rest == "nodes.example.com:20080"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("45Mi", 45 * 2**20), ("123456Ki", 123456 * 1024), ("1Gi", 2**30), ("1G", 10**9), ("2048", 2048), ("junk", None)],
)
def test_quantity_bytes(quantity: str, expected: int | None) -> None:
    assert quantity_bytes(quantity) == expected


# -- pod states ------------------------------------------------------------------------------
def sts_doc(replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": NAME, "labels": {"lsp.hosting/instance": "t1", "lsp.hosting/node": NODE_ID}},
        "spec": {"replicas": replicas},
    }


def pod_doc(container: dict[str, Any] | None, *, phase: str = "Running", **status: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"phase": phase, **status}
    if container is not None:
        st["containerStatuses"] = [{"name": "lnd", **container}]
    return {"kind": "Pod", "metadata": {"name": f"{NAME}-0", "labels": {"lsp.hosting/node": NODE_ID}}, "status": st}


RUNNING = {"ready": True, "state": {"running": {"startedAt": "2025-01-02T03:04:05Z"}}}
CRASHING = {
    "ready": False,
    "restartCount": 4,
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}},
    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2025-01-02T03:00:00Z"}},
}


def test_a_ready_pod_is_running() -> None:
    st = node_status(sts_doc(), pod_doc(RUNNING))
    assert st.state == "running"
    assert st.started_at is not None and st.started_at.isoformat() == "2025-01-02T03:04:05+00:00"


def test_a_started_pod_that_is_not_ready_is_coming_up() -> None:
    st = node_status(sts_doc(), pod_doc({**RUNNING, "ready": False}))
    assert (st.state, st.detail) == ("restarting", "started, not ready yet")


def test_a_crash_loop_is_restarting_with_the_crash() -> None:
    st = node_status(sts_doc(), pod_doc(CRASHING))
    assert st.state == "restarting"
    assert st.exit_code == 137
    assert st.detail == "out of memory (OOMKilled)"
    crash = {**CRASHING, "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    assert node_status(sts_doc(), pod_doc(crash)).detail.startswith("CrashLoopBackOff")


def test_an_unschedulable_pod_says_why() -> None:
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes: Insufficient memory"}
    st = node_status(sts_doc(), pod_doc(None, phase="Pending", conditions=[cond]))
    assert st.state == "restarting"
    assert "Insufficient memory" in st.detail


def test_no_pod_and_no_replicas_is_stopped() -> None:
    assert node_status(sts_doc(replicas=0), None).state == "stopped"
    assert node_status(sts_doc(replicas=0), pod_doc(RUNNING)).state == "stopped"  # shutting down
    assert node_status(sts_doc(replicas=1), None).state == "restarting"  # the controller makes one


# -- kubectl, faked ----------------------------------------------------------------------------
FAKE_KUBECTL = """#!{python}
# fake_kubectl: records its argv and stdin, answers from rules.json (first rule whose tokens all occur).
import json, sys
from pathlib import Path

here = Path({here!r})
args = sys.argv[1:]
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": args, "stdin": sys.stdin.read()}}) + "\\n")
for rule in json.loads((here / "rules.json").read_text()):
    if all(tok in args for tok in rule["match"]):
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("rc", 0))
"""


class FakeKubectl:
    """A ``kubectl`` script on disk (fake_kubectl) and the calls it saw."""

    def __init__(self, root: Path):
        self.dir = root
        self.path = root / "kubectl"
        self.path.write_text(FAKE_KUBECTL.format(python=sys.executable, here=str(root)))
        self.path.chmod(0o755)
        self.rules: list[dict[str, Any]] = []
        self._save()

    def on(self, *match: str, rc: int = 0, stdout: str | dict[str, Any] = "", stderr: str = "") -> None:
        out = stdout if isinstance(stdout, str) else json.dumps(stdout)
        self.rules.append({"match": list(match), "rc": rc, "stdout": out, "stderr": stderr})
        self._save()

    def _save(self) -> None:
        (self.dir / "rules.json").write_text(json.dumps(self.rules))

    def calls(self) -> list[dict[str, Any]]:
        log = self.dir / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls()]


NOT_FOUND = 'Error from server (NotFound): {what} "{name}" not found\n'


@pytest.fixture
def fake_kubectl(tmp_path: Path) -> FakeKubectl:
    root = tmp_path / "fake_kubectl"
    root.mkdir()
    return FakeKubectl(root)


@pytest.fixture
def k8s(fake_kubectl: FakeKubectl) -> Callable[..., KubernetesOrchestrator]:
    def make(**overrides: Any) -> KubernetesOrchestrator:
        return KubernetesOrchestrator(settings(**overrides), kubectl=str(fake_kubectl.path))

    return make


def test_create_applies_one_list_of_three(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    k8s().create(spec())
    (call,) = fake_kubectl.calls()
    argv = call["argv"]
    assert argv[0] == "--namespace=lsp-hosted"
    assert "apply" in argv
    assert argv[argv.index("-f") + 1] == "-"
    doc = json.loads(call["stdin"])
    assert doc["kind"] == "List"
    assert [i["kind"] for i in doc["items"]] == ["Secret", "StatefulSet", "Service"]


def test_a_failed_create_deletes_what_was_applied(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    fake_kubectl.on("apply", rc=1, stderr="Error from server (Forbidden): statefulsets.apps is forbidden: quota\nmore\n")
    with pytest.raises(OrchestratorError) as info:
        k8s().create(spec())
    assert not isinstance(info.value, OrchestratorUnavailable)
    assert info.value.reason == "Error from server (Forbidden): statefulsets.apps is forbidden: quota"
    apply, delete, delete_claim = fake_kubectl.calls()
    assert "delete" in delete["argv"] and "--ignore-not-found" in delete["argv"]
    assert json.loads(delete["stdin"]) == json.loads(apply["stdin"])
    assert delete_claim["argv"][1:4] == ["delete", "persistentvolumeclaim", f"data-{NAME}-0"]


def test_start_and_stop_scale_the_statefulset(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    orch = k8s()
    orch.stop(NODE_ID)
    orch.start(NODE_ID)
    assert [a[1:] for a in fake_kubectl.argvs()] == [
        ["scale", f"statefulset/{NAME}", "--replicas=0"],
        ["scale", f"statefulset/{NAME}", "--replicas=1"],
    ]


def test_stopping_a_missing_node_is_quiet_starting_it_is_not(
    fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]
) -> None:
    fake_kubectl.on("scale", rc=1, stderr=NOT_FOUND.format(what="statefulsets.apps", name=NAME))
    k8s().stop(NODE_ID)
    with pytest.raises(OrchestratorError, match="is gone"):
        k8s().start(NODE_ID)


def test_remove_deletes_the_four_objects(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    k8s().remove(NODE_ID)
    (argv,) = fake_kubectl.argvs()
    assert argv[1] == "delete"
    assert argv[2:6] == [f"statefulset/{NAME}", f"service/{NAME}", f"secret/{NAME}", f"persistentvolumeclaim/data-{NAME}-0"]
    assert "--ignore-not-found" in argv


def test_status_through_kubectl(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    fake_kubectl.on("get", "statefulset", NAME, stdout=sts_doc())
    fake_kubectl.on("get", "pod", f"{NAME}-0", stdout=pod_doc(RUNNING))
    assert k8s().status(NODE_ID).state == "running"
    assert ["--namespace=lsp-hosted", "get", "pod", f"{NAME}-0", "-o", "json"] in fake_kubectl.argvs()


def test_status_of_a_stopped_and_of_a_missing_node(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    fake_kubectl.on("get", "statefulset", NAME, stdout=sts_doc(replicas=0))
    fake_kubectl.on("get", "pod", rc=1, stderr=NOT_FOUND.format(what="pods", name=f"{NAME}-0"))
    assert k8s().status(NODE_ID).state == "stopped"
    fake_kubectl.rules.clear()
    fake_kubectl.on("get", rc=1, stderr=NOT_FOUND.format(what="statefulsets.apps", name=NAME))
    assert k8s().status(NODE_ID).state == "missing"


def test_list_nodes_is_this_instances_statefulsets(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    other = {
        **sts_doc(replicas=0),
        "metadata": {"name": "lsp-t1-hn-000000000000", "labels": {"lsp.hosting/node": "hn-000000000000"}},
    }
    fake_kubectl.on("get", "statefulsets", stdout={"kind": "List", "items": [sts_doc(), other]})
    fake_kubectl.on("get", "pods", stdout={"kind": "List", "items": [pod_doc(CRASHING)]})
    nodes = k8s().list_nodes()
    assert {k: v.state for k, v in nodes.items()} == {NODE_ID: "restarting", "hn-000000000000": "stopped"}
    assert all("lsp.hosting/instance=t1" in argv for argv in fake_kubectl.argvs())


def test_read_file_cats_through_exec(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    fake_kubectl.on("exec", "/data/lnd/tls.cert", stdout="-----BEGIN CERTIFICATE-----\n")
    fake_kubectl.on("exec", rc=1, stderr="cat: /data/nope: No such file or directory\ncommand terminated with exit code 1\n")
    orch = k8s()
    assert orch.read_file(NODE_ID, "/data/lnd/tls.cert") == b"-----BEGIN CERTIFICATE-----\n"
    assert orch.read_file(NODE_ID, "/data/nope") is None
    assert fake_kubectl.argvs()[0][1:] == ["exec", f"{NAME}-0", "-c", "lnd", "--", "cat", "/data/lnd/tls.cert"]


def test_read_file_without_cat_in_the_image_is_an_error(
    fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]
) -> None:
    fake_kubectl.on("exec", rc=1, stderr='error: exec: "cat": executable file not found in $PATH: unknown\n')
    with pytest.raises(OrchestratorError, match="executable file not found"):
        k8s().read_file(NODE_ID, "/data/lnd/tls.cert")


def test_memory_from_kubectl_top(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    fake_kubectl.on("top", stdout=f"{NAME}-0   3m   45Mi\n")
    assert k8s().memory_bytes(NODE_ID) == 45 * 2**20
    fake_kubectl.rules.clear()
    fake_kubectl.on("top", rc=1, stderr="error: Metrics API not available\n")
    assert k8s().memory_bytes(NODE_ID) is None


def test_a_missing_kubectl_is_unavailable() -> None:
    orch = KubernetesOrchestrator(settings(), kubectl="/nonexistent/kubectl")
    with pytest.raises(OrchestratorUnavailable, match="/nonexistent/kubectl"):
        orch.status(NODE_ID)
    with pytest.raises(OrchestratorUnavailable):
        orch.create(spec())


def test_a_failed_schema_download_is_unavailable(fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]) -> None:
    # What kubectl apply says first when the API server is down (its client-side validation).
    fake_kubectl.on(
        "apply",
        rc=1,
        stderr='error: error validating "STDIN": error validating data: Get "http://localhost:8080/openapi/v2?timeout=32s": '
        "dial tcp 127.0.0.1:8080: connect: connection refused; if you choose to ignore these errors, turn validation off "
        "with --validate=false\n",
    )
    with pytest.raises(OrchestratorUnavailable, match="connection refused"):
        k8s().create(spec())


def test_no_cluster_is_unavailable_in_kubectls_words(
    fake_kubectl: FakeKubectl, k8s: Callable[..., KubernetesOrchestrator]
) -> None:
    refused = (
        'E1205 00:07:13.796890   22335 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group '
        'list: Get \\"http://localhost:8080/api?timeout=32s\\": dial tcp 127.0.0.1:8080: connect: connection refused"\n'
        "The connection to the server localhost:8080 was refused - did you specify the right host or port?\n"
    )
    fake_kubectl.on("get", rc=1, stderr=refused)
    with pytest.raises(OrchestratorUnavailable) as info:
        k8s().list_nodes()
    assert info.value.reason == refused.splitlines()[-1]
    assert info.value.reason.startswith("The connection to the server localhost:8080 was refused")


def test_the_chain_rpc_password_is_in_the_secret_config_not_the_args() -> None:
    m = rendered()
    conf = base64.b64decode(m["Secret"]["data"]["lnd.conf"]).decode()
    assert conf.splitlines()[0] == "[Bitcoind]" and f"bitcoind.rpcpass={RPC_PASS}" in conf.splitlines()
    assert RPC_PASS not in json.dumps(m["StatefulSet"]) and RPC_PASS not in json.dumps(m["Service"])
    assert "--configfile=/data/lnd.conf" in lnd_container(m)["args"]
