"""Docker images of the pinned Bitcoin Core, btcd and LND, built ``FROM scratch``.

No image registry is reachable here, so the images hold nothing but the
binaries the toolchain built, a minimal ``/etc/passwd``, an empty ``/tmp``
and ``/data`` (the node's data directory, also ``HOME``). LND, btcd and the
fee service are static Go binaries; ``bitcoind`` links Debian's libevent,
libzmq and the C++ runtime dynamically, so its image also holds exactly the
shared libraries ``ldd`` lists for its binaries (and the dynamic loader), at
the paths ``ldd`` names. Each image is labelled with the pin and the sha256
of its binaries and libraries; ``ensure_images()`` rebuilds an image only
when those labels no longer match.

``python -m harness.runtime.images`` builds both (what ``lab setup`` will do
for the Docker runtime; ``docker-compose.regtest.yml`` needs them).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker import errors as docker_errors

from harness.errors import ToolchainError
from harness.runtime.docker_client import DockerError, docker_available, require_docker
from harness.toolchain.build import sha256_file
from lncore.stubs import cache_root
from lncore.versions import (
    BITCOIN_CORE_SDIST_SHA256,
    BITCOIN_CORE_VERSION,
    BTCD_MODULE,
    BTCD_VERSION,
    LDK_NODE_VERSION,
    LND_LAB_TAGS,
    LND_MODULE,
    LND_VERSION,
)

IMAGE_REPO = "lightning-lab"
LABEL_IMAGE = "lightning-lab.image"  # "bitcoind" | "btcd" | "lnd" | "feeservice"
LABEL_PIN = "lightning-lab.pin"
LABEL_SHA_PREFIX = "lightning-lab.sha256."  # + binary name
LABEL_LIBS = "lightning-lab.sha256-libs"  # one hash over every shared library in the image
BUILD_TIMEOUT = 600

__all__ = [
    "BITCOIND_IMAGE",
    "BTCD_IMAGE",
    "LND_IMAGE",
    "ImageSpec",
    "LabImages",
    "docker_available",
    "ensure_images",
    "image_specs",
]

BITCOIND_IMAGE = f"{IMAGE_REPO}/bitcoind:{BITCOIN_CORE_VERSION}-{BITCOIN_CORE_SDIST_SHA256[:12]}"
BTCD_IMAGE = f"{IMAGE_REPO}/btcd:{BTCD_VERSION}"
LND_IMAGE = f"{IMAGE_REPO}/lnd:{LND_VERSION}-lab"
FEESERVICE_IMAGE = f"{IMAGE_REPO}/feeservice:latest"
LDK_IMAGE = f"{IMAGE_REPO}/lab-ldk:{LDK_NODE_VERSION}"

PASSWD = "root:x:0:0:root:/data:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class ImageSpec:
    """One image: its tag, the binaries it holds (name -> path), the shared
    libraries they load (path in the image -> file on the host), the pin and
    the entrypoint."""

    kind: str
    tag: str
    binaries: dict[str, Path]
    pin: str
    entrypoint: str
    expose: tuple[int, ...]
    libraries: dict[str, Path] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        labels = {LABEL_IMAGE: self.kind, LABEL_PIN: self.pin}
        for name, path in sorted(self.binaries.items()):
            labels[LABEL_SHA_PREFIX + name] = sha256_file(path)
        if self.libraries:
            h = hashlib.sha256()
            for dest, path in sorted(self.libraries.items()):
                h.update(f"{dest} {sha256_file(path)}\n".encode())
            labels[LABEL_LIBS] = h.hexdigest()
        return labels


@dataclass(frozen=True)
class LabImages:
    """The tags ``ensure_images()`` made sure exist, and which of them it (re)built."""

    btcd: str
    lnd: str
    feeservice: str = FEESERVICE_IMAGE
    bitcoind: str | None = None  # None: bitcoind is not built, so no image
    ldk: str | None = None  # None: the LDK driver is not built, so no image
    built: tuple[str, ...] = ()


_LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def shared_libraries(*binaries: Path) -> dict[str, Path]:
    """What ``ldd`` says ``binaries`` load: path in the image -> the file on
    this machine (symlinks resolved, so the image gets the content under the
    name the loader asks for). Empty for static binaries."""
    libs: dict[str, Path] = {}
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        text = proc.stdout + proc.stderr
        if "not a dynamic executable" in text or "statically linked" in text:
            continue
        if proc.returncode != 0 or "not found" in text:
            raise ToolchainError(f"ldd {binary} failed: {text.strip()[:500]}")
        for line in proc.stdout.splitlines():
            m = _LDD_LINE.match(line)
            if m:
                libs[m[1]] = Path(m[1]).resolve()
    return libs


def _binary_paths() -> dict[str, Path]:
    """The toolchain's final paths (Bitcoin Core's only if built), else the prebuild directory."""
    from harness.toolchain.build import find_toolchain

    try:
        t = find_toolchain("lab")
        paths = {"lnd": t.lnd, "lncli": t.lncli, "btcd": t.btcd, "btcctl": t.btcctl, "feeservice": t.feeservice}
        if t.bitcoind.exists() and t.bitcoin_cli.exists():
            paths |= {"bitcoind": t.bitcoind, "bitcoin-cli": t.bitcoin_cli}
        if t.ldk is not None:
            paths["lab-ldk"] = t.ldk
        return paths
    except ToolchainError as exc:
        pre = cache_root() / "prebuild"
        paths = {name: pre / name for name in ("lnd", "lncli", "btcd", "btcctl")}
        if all(p.is_file() for p in paths.values()):
            return paths
        raise ToolchainError(f"{exc} (also not found in {pre})") from exc


def image_specs(binaries: dict[str, Path] | None = None) -> list[ImageSpec]:
    b = binaries or _binary_paths()
    core = (
        [
            ImageSpec(
                kind="bitcoind",
                tag=BITCOIND_IMAGE,
                binaries={"bitcoind": b["bitcoind"], "bitcoin-cli": b["bitcoin-cli"]},
                pin=f"bitcoin-core {BITCOIN_CORE_VERSION} sdist-sha256={BITCOIN_CORE_SDIST_SHA256}",
                entrypoint="bitcoind",
                expose=(18443,),
                libraries=shared_libraries(b["bitcoind"], b["bitcoin-cli"]),
            )
        ]
        if "bitcoind" in b
        else []
    )
    ldk = (
        [
            ImageSpec(
                kind="ldk",
                tag=LDK_IMAGE,
                binaries={"lab-ldk": b["lab-ldk"]},
                pin=f"ldk-node {LDK_NODE_VERSION} interop/ldk",
                entrypoint="lab-ldk",
                expose=(9735,),
                libraries=shared_libraries(b["lab-ldk"]),
            )
        ]
        if "lab-ldk" in b
        else []
    )
    return [
        *core,
        *ldk,
        ImageSpec(
            kind="btcd",
            tag=BTCD_IMAGE,
            binaries={"btcd": b["btcd"], "btcctl": b["btcctl"]},
            pin=f"{BTCD_MODULE}@{BTCD_VERSION}",
            entrypoint="btcd",
            expose=(18334, 18444),
        ),
        ImageSpec(
            kind="lnd",
            tag=LND_IMAGE,
            binaries={"lnd": b["lnd"], "lncli": b["lncli"]},
            pin=f"{LND_MODULE}@{LND_VERSION} tags={LND_LAB_TAGS}",
            entrypoint="lnd",
            expose=(9735, 10009, 8080),
        ),
        *(
            [
                ImageSpec(
                    kind="feeservice",
                    tag=FEESERVICE_IMAGE,
                    binaries={"feeservice": b["feeservice"]},
                    pin="harness/feeservice",
                    entrypoint="feeservice",
                    expose=(8080,),
                )
            ]
            if "feeservice" in b
            else []
        ),
    ]


def dockerfile(spec: ImageSpec) -> str:
    labels = " ".join(f"{k}={json.dumps(v)}" for k, v in spec.labels().items())
    return (
        "FROM scratch\n"
        "COPY rootfs/ /\n"
        "ENV HOME=/data PATH=/bin\n"
        "WORKDIR /data\n"
        f"EXPOSE {' '.join(str(p) for p in spec.expose)}\n"
        f"LABEL {labels}\n"
        f'ENTRYPOINT ["/bin/{spec.entrypoint}"]\n'
    )


def _write_context(spec: ImageSpec, ctx: Path) -> None:
    root = ctx / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "data").mkdir()
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    for name, path in spec.binaries.items():
        if not path.is_file():
            raise ToolchainError(f"{spec.kind} image: binary {path} is missing; run `lab setup` first")
        dest = root / "bin" / name
        shutil.copyfile(path, dest)
        dest.chmod(0o755)
    for in_image, path in spec.libraries.items():
        dest = root / in_image.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        dest.chmod(0o755)
    (ctx / "Dockerfile").write_text(dockerfile(spec))


def _up_to_date(client: Any, spec: ImageSpec) -> bool:
    try:
        image = client.images.get(spec.tag)
    except docker_errors.ImageNotFound:
        return False
    have = image.labels or {}
    return all(have.get(k) == v for k, v in spec.labels().items())


def build_image(client: Any, spec: ImageSpec) -> str:
    """Build ``spec`` (always) and return the new image id."""
    with tempfile.TemporaryDirectory(prefix=f"lab-image-{spec.kind}-") as tmp:
        ctx = Path(tmp)
        _write_context(spec, ctx)
        try:
            image, _logs = client.images.build(
                path=str(ctx), tag=spec.tag, rm=True, forcerm=True, pull=False, timeout=BUILD_TIMEOUT
            )
        except docker_errors.BuildError as exc:
            log = io.StringIO()
            for chunk in exc.build_log:
                log.write(str(chunk.get("stream") or chunk.get("error") or ""))
            raise DockerError(f"building {spec.tag} failed: {exc.msg}\n{log.getvalue()[-2000:]}") from exc
    # The previous build of this tag is now dangling: drop it (and any other leftovers of ours).
    with contextlib.suppress(docker_errors.APIError):
        client.images.prune(filters={"dangling": True, "label": f"{LABEL_IMAGE}={spec.kind}"})
    return str(image.id)


def ensure_images(client: Any = None, *, progress: Any = None) -> LabImages:
    """Build the images (Bitcoin Core's when it is built) unless images with matching hashes exist."""
    client = client or require_docker()
    say = progress or (lambda _msg: None)
    built: list[str] = []
    specs = image_specs()
    for spec in specs:
        if _up_to_date(client, spec):
            say(f"{spec.tag}: up to date")
            continue
        started = time.monotonic()
        build_image(client, spec)
        say(f"{spec.tag}: built in {time.monotonic() - started:.1f}s")
        built.append(spec.tag)
    kinds = {spec.kind for spec in specs}
    return LabImages(btcd=BTCD_IMAGE, lnd=LND_IMAGE, bitcoind=BITCOIND_IMAGE if "bitcoind" in kinds else None,
                     ldk=LDK_IMAGE if "ldk" in kinds else None, built=tuple(built))


def main() -> int:
    import sys

    try:
        images = ensure_images(progress=print)
    except (DockerError, ToolchainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"bitcoind image: {images.bitcoind or '(not built: run `lab setup`)'}\nbtcd image:     {images.btcd}\n"
          f"lnd image:      {images.lnd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
