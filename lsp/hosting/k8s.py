"""Hosted nodes on Kubernetes: one StatefulSet, Service and Secret per node, through ``kubectl``.

For each node ``render`` builds three manifests in the namespace ``k8s_namespace``, all named
``lsp-<instance>-<node_id>`` and labelled with the LSP instance, the node and its client:

- a ``Secret`` holding the wallet's unlock password (key ``wallet-password``), mounted read-only
  at ``PASSWORD_FILE`` so LND unlocks its wallet by itself;
- a ``StatefulSet`` of one replica running the configured LND image with a read-only root file
  system, no Linux capabilities, no privilege escalation, guaranteed memory and CPU (requests =
  limits), no service-account token, and one ``ReadWriteOnce`` volume claim (``data``, the
  claim ``data-<name>-0``) at ``DATA_DIR``. LND listens on its standard ports on all interfaces
  of its pod; a readiness probe checks its gRPC port;
- a ``ClusterIP`` Service for the pod's gRPC (10009), REST (8080) and p2p (9735) ports.

The orchestrator drives ``kubectl`` (JSON in and out): create is a server-side ``apply`` of the
three (no ``last-applied-configuration`` annotation that would copy the password into the
Secret's metadata), start and stop scale the StatefulSet to 1 and 0, remove deletes the three and
the volume claim. A StatefulSet's pod always has ``restartPolicy: Always``, so unlike on Docker
the kubelet itself restarts an LND that crashed (reported as ``restarting``, with the crash's
exit code and reason); a node the client stopped has no pod and stays stopped.

This module is not run in this repository: there is no cluster on this machine, and CI only
renders the manifests and checks them (tests/unit/lsp/test_hosting_k8s.py, with a fake
``kubectl``). The operator of a cluster is responsible for:

- the namespace, and RBAC for the LSP's service account in it: get/list/create/patch/delete on
  statefulsets, services, secrets, persistentvolumeclaims and pods, patch on
  ``statefulsets/scale``, create on ``pods/exec``, and get on ``pods`` of ``metrics.k8s.io``
  (memory use; without a metrics-server ``memory_bytes`` is None);
- exposing each node to its client: ``addresses`` hands out ``<public_host>:<port>`` with the
  ports the LSP picked (``NodeSpec.ports``), so the operator maps them onto the node's Service
  (a LoadBalancer or NodePort per node, or a TCP proxy) and sets ``LSP_HOSTING_PUBLIC_HOST``
  (its default, ``publish_host``, is a Docker setting and means nothing in a cluster);
- the chain backend: Bitcoin Core's RPC and ZMQ (``bitcoind_rpc_host``, ``bitcoind_zmq_*``)
  must be reachable from pods in the namespace (network policies included);
- running the LSP inside the cluster: it dials each node's gRPC and p2p port at the Service's
  cluster DNS name (``<name>.<namespace>.svc``);
- an image that carries ``cat`` if the LSP is to read the node's TLS certificate
  (``read_file``); the lab's FROM-scratch LND image has none;
- who may read the StatefulSets: ``lnd_args`` puts Bitcoin Core's RPC password on LND's command
  line, so it is in each StatefulSet's spec (the wallet password is only in the Secret).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
from datetime import datetime
from typing import Any

from lsp.hosting.config import HostingSettings
from lsp.hosting.orchestrator import (
    CONFIG_FILE,
    DATA_DIR,
    GRPC_PORT,
    P2P_PORT,
    PASSWORD_FILE,
    REST_PORT,
    Addresses,
    NodeSpec,
    NodeStatus,
    OrchestratorError,
    OrchestratorUnavailable,
    Ports,
    lnd_args,
    lnd_conf,
)

Manifest = dict[str, Any]

LABEL_APP = "app.kubernetes.io/name"
LABEL_APP_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "lsp.hosting/instance"
LABEL_NODE = "lsp.hosting/node"
LABEL_CLIENT = "lsp.hosting/client"
APP_NAME = "lsp-hosted-node"
FIELD_MANAGER = "lsp-hosting"
CONTAINER = "lnd"
PASSWORD_KEY = "wallet-password"
CONFIG_KEY = "lnd.conf"  # the chain backend's credentials (orchestrator.lnd_conf), kept out of the spec
CLAIM = "data"
STOP_TIMEOUT_S = 30  # the pod's termination grace period: LND's clean shutdown
KUBECTL_TIMEOUT_S = 60.0
REMOVE_TIMEOUT_S = 120
# A StatefulSet's pods carry the label controller-revision-hash=<name>-<10 characters>, and a
# label value is at most 63 characters: a longer StatefulSet name is accepted and then never
# gets a pod. ("lsp-" + a 32-character instance + "-" + "hn-" and 12 hex digits is exactly 52.)
MAX_NAME = 52
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
# klog's prefix (E1205 00:07:13.796890 22335 memcache.go:265] ...): kubectl's log lines, which
# precede its own one-line verdict on stderr.
_KLOG_RE = re.compile(r"^[IWEF]\d{4} \d")
# kubectl's own words when it cannot talk to the API server at all.
_UNREACHABLE = (
    "Unable to connect to the server",
    "The connection to the server",
    "couldn't get current server API group list",
    "no configuration has been provided",
    "You must be logged in to the server",
    'error validating data: Get "',  # apply's schema download failing to reach the server
)
_QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 1e-3,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


class _NotFound(OrchestratorError):
    """kubectl answered NotFound for the object asked about."""


class KubernetesOrchestrator:
    name = "kubernetes"

    def __init__(self, settings: HostingSettings, *, kubectl: str = "kubectl", timeout_s: float = KUBECTL_TIMEOUT_S):
        self.settings = settings
        self.kubectl = kubectl
        self.timeout_s = timeout_s

    # -- names ---------------------------------------------------------------------------
    def resource_name(self, node_id: str) -> str:
        """The name of the node's StatefulSet, Service and Secret."""
        name = f"lsp-{self.settings.instance}-{node_id}"
        if len(name) > MAX_NAME or not _DNS_LABEL_RE.match(name) or not _label_value_ok(node_id):
            raise OrchestratorError(
                f"node id {node_id!r}: resource name {name!r} is not a DNS-1123 label (lowercase letters, "
                f"digits and '-') of at most {MAX_NAME} characters"
            )
        return name

    def pod_name(self, node_id: str) -> str:
        return f"{self.resource_name(node_id)}-0"

    def claim_name(self, node_id: str) -> str:
        return f"{CLAIM}-{self.resource_name(node_id)}-0"

    def service_host(self, node_id: str) -> str:
        """The Service's DNS name inside the cluster."""
        return f"{self.resource_name(node_id)}.{self.settings.k8s_namespace}.svc"

    def selector(self, spec: NodeSpec) -> dict[str, str]:
        """The labels of the node's pod: the StatefulSet's selector and the Service's."""
        if not _label_value_ok(spec.client_id):
            raise OrchestratorError(f"client id {spec.client_id!r} is not a valid Kubernetes label value")
        return {
            LABEL_APP: APP_NAME,
            LABEL_APP_INSTANCE: self.resource_name(spec.node_id),
            LABEL_INSTANCE: self.settings.instance,
            LABEL_NODE: spec.node_id,
            LABEL_CLIENT: spec.client_id,
        }

    # -- manifests -----------------------------------------------------------------------
    def command(self, spec: NodeSpec) -> list[str]:
        """LND's args: standard ports on all interfaces of the pod, TLS names of the Service and public host."""
        s = self.settings
        svc = self.resource_name(spec.node_id)
        ns = s.k8s_namespace
        names = list(dict.fromkeys(n for n in (svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", s.public_host) if n))
        inner = Ports(grpc=GRPC_PORT, rest=REST_PORT, p2p=P2P_PORT)
        return lnd_args(s, spec, listen_host="0.0.0.0", ports=inner, tls_names=names)

    def render(self, spec: NodeSpec) -> list[Manifest]:
        """The node's Secret, StatefulSet and Service (plain dicts, in that order)."""
        s = self.settings
        name = self.resource_name(spec.node_id)
        pod_labels = self.selector(spec)
        labels = {**pod_labels, LABEL_MANAGED_BY: FIELD_MANAGER}
        ns = s.k8s_namespace
        memory = f"{s.memory_mb}Mi"
        cpu = _cpu(s.cpus)

        secret: Manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "type": "Opaque",
            "data": {
                PASSWORD_KEY: base64.b64encode(spec.password).decode("ascii"),
                CONFIG_KEY: base64.b64encode(lnd_conf(s)).decode("ascii"),
            },
        }

        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{s.k8s_storage_gb}Gi"}},
        }
        if s.k8s_storage_class:
            claim_spec["storageClassName"] = s.k8s_storage_class

        container: Manifest = {
            "name": CONTAINER,
            "image": s.image,
            "args": self.command(spec),
            "ports": [
                {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                {"name": "rest", "containerPort": REST_PORT, "protocol": "TCP"},
                {"name": "p2p", "containerPort": P2P_PORT, "protocol": "TCP"},
            ],
            "resources": {
                "requests": {"memory": memory, "cpu": cpu},
                "limits": {"memory": memory, "cpu": cpu},
            },
            "securityContext": {
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [
                {"name": CLAIM, "mountPath": DATA_DIR},
                {"name": PASSWORD_KEY, "mountPath": PASSWORD_FILE, "subPath": PASSWORD_KEY, "readOnly": True},
                {"name": PASSWORD_KEY, "mountPath": CONFIG_FILE, "subPath": CONFIG_KEY, "readOnly": True},
            ],
            "readinessProbe": {
                "tcpSocket": {"port": "grpc"},
                "initialDelaySeconds": 2,
                "periodSeconds": 5,
                "failureThreshold": 3,
            },
        }

        statefulset: Manifest = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "serviceName": name,
                "selector": {"matchLabels": dict(pod_labels)},
                "template": {
                    "metadata": {"labels": dict(pod_labels)},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": STOP_TIMEOUT_S,
                        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [container],
                        "volumes": [
                            {
                                "name": PASSWORD_KEY,
                                "secret": {
                                    "secretName": name,
                                    "defaultMode": 0o400,
                                    "items": [
                                        {"key": PASSWORD_KEY, "path": PASSWORD_KEY},
                                        {"key": CONFIG_KEY, "path": CONFIG_KEY},
                                    ],
                                },
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {"metadata": {"name": CLAIM, "labels": dict(labels)}, "spec": claim_spec},
                ],
            },
        }

        service: Manifest = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(pod_labels),
                "ports": [
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                    {"name": "rest", "port": REST_PORT, "targetPort": "rest", "protocol": "TCP"},
                    {"name": "p2p", "port": P2P_PORT, "targetPort": "p2p", "protocol": "TCP"},
                ],
            },
        }
        return [secret, statefulset, service]

    # -- kubectl -------------------------------------------------------------------------
    def _kubectl(self, *args: str, stdin: bytes | None = None, timeout_s: float | None = None) -> bytes:
        """Run kubectl in the namespace; its stdout, or its stderr's verdict as an error."""
        timeout = timeout_s or self.timeout_s
        cmd = [self.kubectl, f"--namespace={self.settings.k8s_namespace}", *args]
        feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        try:
            proc: subprocess.CompletedProcess[bytes] = subprocess.run(
                cmd, capture_output=True, timeout=timeout, check=False, **feed
            )
        except OSError as exc:
            raise OrchestratorUnavailable(f"cannot run kubectl: {exc}") from None
        except subprocess.TimeoutExpired:
            raise OrchestratorUnavailable(f"kubectl {args[0]} did not answer in {timeout:g} s") from None
        if proc.returncode == 0:
            return proc.stdout
        err = proc.stderr.decode("utf-8", errors="replace")
        words = _words(err) or f"kubectl {args[0]} exited with status {proc.returncode}"
        if any(marker in err for marker in _UNREACHABLE):
            raise OrchestratorUnavailable(words)
        if "(NotFound)" in err:
            raise _NotFound(words)
        raise OrchestratorError(words)

    def _get(self, kind: str, name: str) -> Manifest | None:
        try:
            return _json(self._kubectl("get", kind, name, "-o", "json"))
        except _NotFound:
            return None

    def _list(self, kind: str) -> list[Manifest]:
        out = _json(self._kubectl("get", kind, "-l", f"{LABEL_INSTANCE}={self.settings.instance}", "-o", "json"))
        items = out.get("items") or []
        return [i for i in items if isinstance(i, dict)]

    # -- the interface -------------------------------------------------------------------
    def addresses(self, spec: NodeSpec) -> Addresses:
        """The LSP (in the cluster) dials the Service's DNS name on LND's own ports; clients get
        ``<public_host>:<port>`` with the ports the LSP picked, which the operator maps onto the
        Service (a LoadBalancer or NodePort per node, or a TCP proxy)."""
        host = self.service_host(spec.node_id)
        public = self.settings.public_host
        return Addresses(
            rpc=f"{host}:{GRPC_PORT}",
            endpoint_grpc=f"{public}:{spec.ports.grpc}",
            endpoint_rest=f"{public}:{spec.ports.rest}",
            peer=f"{host}:{P2P_PORT}",
        )

    def create(self, spec: NodeSpec) -> None:
        """Apply the node's manifests (its pod starts at once); on failure delete whatever was applied."""
        payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": self.render(spec)}).encode()
        try:
            self._kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", stdin=payload)
        except BaseException:
            with contextlib.suppress(Exception):
                self._kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=payload)
            with contextlib.suppress(Exception):
                self._kubectl(
                    "delete", "persistentvolumeclaim", self.claim_name(spec.node_id), "--ignore-not-found", "--wait=false"
                )
            raise

    def start(self, node_id: str) -> None:
        name = self.resource_name(node_id)
        try:
            self._kubectl("scale", f"statefulset/{name}", "--replicas=1")
        except _NotFound:
            raise OrchestratorError(f"statefulset {name} is gone") from None

    def stop(self, node_id: str) -> None:
        """Scale to 0: the pod gets ``STOP_TIMEOUT_S`` to shut LND down cleanly; returns at once."""
        with contextlib.suppress(_NotFound):
            self._kubectl("scale", f"statefulset/{self.resource_name(node_id)}", "--replicas=0")

    def remove(self, node_id: str) -> None:
        """Delete the StatefulSet first (no new pod), then the Service, the Secret and the data
        volume's claim; waits until they are gone (the claim outlives the pod)."""
        name = self.resource_name(node_id)
        self._kubectl(
            "delete",
            f"statefulset/{name}",
            f"service/{name}",
            f"secret/{name}",
            f"persistentvolumeclaim/{self.claim_name(node_id)}",
            "--ignore-not-found",
            f"--timeout={REMOVE_TIMEOUT_S}s",
            timeout_s=REMOVE_TIMEOUT_S + 30,
        )

    def status(self, node_id: str) -> NodeStatus:
        sts = self._get("statefulset", self.resource_name(node_id))
        if sts is None:
            return NodeStatus(state="missing")
        return node_status(sts, self._get("pod", self.pod_name(node_id)))

    def list_nodes(self) -> dict[str, NodeStatus]:
        pods: dict[str, Manifest] = {}
        for pod in self._list("pods"):
            node = _labels(pod).get(LABEL_NODE)
            if node:
                pods[node] = pod
        out: dict[str, NodeStatus] = {}
        for sts in self._list("statefulsets"):
            node = _labels(sts).get(LABEL_NODE)
            if node:
                out[node] = node_status(sts, pods.get(node))
        return out

    def read_file(self, node_id: str, path: str) -> bytes | None:
        """``kubectl exec <pod> -c lnd -- cat <path>``: the production image must carry ``cat``
        (the lab's FROM-scratch LND image does not, and there this raises OrchestratorError).
        None when the file, the pod or its running container is absent."""
        try:
            return self._kubectl("exec", self.pod_name(node_id), "-c", CONTAINER, "--", "cat", path)
        except _NotFound:
            return None
        except OrchestratorUnavailable:
            raise
        except OrchestratorError as exc:
            if "No such file" in exc.reason or "container not found" in exc.reason:
                return None
            raise

    def logs_tail(self, node_id: str, lines: int = 40) -> str:
        """``kubectl logs --tail``; "" when the pod is gone."""
        try:
            return self._kubectl("logs", self.pod_name(node_id), "-c", CONTAINER, f"--tail={lines}").decode(errors="replace")
        except _NotFound:
            return ""

    def memory_bytes(self, node_id: str) -> int | None:
        """From ``kubectl top pod``; None without a metrics-server (or before its first sample)."""
        try:
            out = self._kubectl("top", "pod", self.pod_name(node_id), "--no-headers")
        except _NotFound:
            return None
        except OrchestratorUnavailable:
            raise
        except OrchestratorError as exc:
            words = exc.reason.lower()
            if "metrics" in words or "could not find the requested resource" in words:
                return None
            raise
        fields = out.decode("utf-8", errors="replace").split()
        return quantity_bytes(fields[2]) if len(fields) >= 3 else None


# -- status ------------------------------------------------------------------------------
def node_status(sts: Manifest, pod: Manifest | None) -> NodeStatus:
    """A node's state from its StatefulSet and its pod (None when there is none)."""
    replicas = sts.get("spec", {}).get("replicas", 1)
    terminating = pod is not None and bool(pod.get("metadata", {}).get("deletionTimestamp"))
    if replicas == 0:
        return NodeStatus(state="stopped", detail="stopping" if pod is not None else "")
    if pod is None or terminating:
        detail = "the pod is being replaced" if terminating else "the pod is not created yet"
        return NodeStatus(state="restarting", detail=detail)
    st = pod.get("status", {})
    if st.get("phase") in ("Failed", "Succeeded"):  # evicted, or a node that went away
        return NodeStatus(state="restarting", detail=_join(st.get("reason"), st.get("message")) or str(st.get("phase")))
    cs = next((c for c in st.get("containerStatuses") or [] if c.get("name") == CONTAINER), None)
    if cs is None:  # not scheduled yet, or pulling nothing yet
        cond: Manifest = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
        detail = _join(cond.get("reason"), cond.get("message")) if cond.get("status") == "False" else ""
        return NodeStatus(state="restarting", detail=detail or str(st.get("phase") or "Pending"))
    state = cs.get("state") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    exit_code = last.get("exitCode")
    if "running" in state:
        started = _parse_time(state["running"].get("startedAt"))
        if cs.get("ready"):
            return NodeStatus(state="running", started_at=started)
        return NodeStatus(state="restarting", started_at=started, detail="started, not ready yet")
    if "terminated" in state:
        last = state["terminated"] or {}
        exit_code = last.get("exitCode")
    waiting = state.get("waiting") or {}
    if last.get("reason") == "OOMKilled":
        detail = "out of memory (OOMKilled)"
    else:
        detail = _join(waiting.get("reason"), waiting.get("message")) or _join(last.get("reason"), last.get("message"))
    return NodeStatus(
        state="restarting",
        started_at=_parse_time(last.get("startedAt")),
        exit_code=int(exit_code) if exit_code is not None else None,
        detail=detail,
    )


def _labels(obj: Manifest) -> dict[str, str]:
    labels = obj.get("metadata", {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def _join(reason: Any, message: Any) -> str:
    return ": ".join(str(p) for p in (reason, message) if p)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


# -- helpers -----------------------------------------------------------------------------
def _label_value_ok(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE_RE.match(value))


def _cpu(cpus: float) -> str:
    """A CPU quantity: whole cores as "2", else millicores ("500m")."""
    milli = max(1, round(cpus * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def quantity_bytes(quantity: str) -> int | None:
    """A Kubernetes memory quantity ("45Mi", "123456Ki", "1G", "1024") in bytes."""
    m = _QUANTITY_RE.match(quantity.strip())
    if m is None:
        return None
    return int(float(m.group(1)) * _SUFFIX.get(m.group(2) or "", 1))


def _json(out: bytes) -> Manifest:
    try:
        doc = json.loads(out)
    except ValueError as exc:
        raise OrchestratorError(f"kubectl printed something that is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OrchestratorError("kubectl printed JSON that is not an object")
    return doc


def _words(stderr: str) -> str:
    """kubectl's verdict: its first stderr line that is not a log or warning line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    plain = [ln for ln in lines if not _KLOG_RE.match(ln) and not ln.startswith("Warning:")]
    return (plain or lines or [""])[0][:300]
