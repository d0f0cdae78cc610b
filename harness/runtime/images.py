"""Docker images of the pinned btcd and LND, built ``FROM scratch``.

No image registry is reachable here, so the images hold nothing but the
static binaries the toolchain built, a minimal ``/etc/passwd``, an empty
``/tmp`` and ``/data`` (the node's data directory, also ``HOME``). Each image
is labelled with the pin and the sha256 of its binaries; ``ensure_images()``
rebuilds an image only when those labels no longer match the binaries.

``python -m harness.runtime.images`` builds both (what ``lab setup`` will do
for the Docker runtime; ``docker-compose.regtest.yml`` needs them).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker import errors as docker_errors

from harness.errors import ToolchainError
from harness.runtime.docker_client import DockerError, docker_available, require_docker
from lsp.lnd.stubs import cache_root
from lsp.versions import BTCD_MODULE, BTCD_VERSION, LND_LAB_TAGS, LND_MODULE, LND_VERSION

IMAGE_REPO = "lightning-lab"
LABEL_IMAGE = "lightning-lab.image"  # "btcd" | "lnd"
LABEL_PIN = "lightning-lab.pin"
LABEL_SHA_PREFIX = "lightning-lab.sha256."  # + binary name
BUILD_TIMEOUT = 600

__all__ = [
    "BTCD_IMAGE",
    "LND_IMAGE",
    "ImageSpec",
    "LabImages",
    "docker_available",
    "ensure_images",
    "image_specs",
]

BTCD_IMAGE = f"{IMAGE_REPO}/btcd:{BTCD_VERSION}"
LND_IMAGE = f"{IMAGE_REPO}/lnd:{LND_VERSION}-lab"
FEESERVICE_IMAGE = f"{IMAGE_REPO}/feeservice:latest"

PASSWD = "root:x:0:0:root:/data:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class ImageSpec:
    """One image: its tag, the binaries it holds (name -> path), the pin and the entrypoint."""

    kind: str
    tag: str
    binaries: dict[str, Path]
    pin: str
    entrypoint: str
    expose: tuple[int, ...]

    def labels(self) -> dict[str, str]:
        labels = {LABEL_IMAGE: self.kind, LABEL_PIN: self.pin}
        for name, path in sorted(self.binaries.items()):
            labels[LABEL_SHA_PREFIX + name] = sha256_file(path)
        return labels


@dataclass(frozen=True)
class LabImages:
    """The tags ``ensure_images()`` made sure exist, and which of them it (re)built."""

    btcd: str
    lnd: str
    feeservice: str = FEESERVICE_IMAGE
    built: tuple[str, ...] = ()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _binary_paths() -> dict[str, Path]:
    """lnd, lncli, btcd, btcctl: the toolchain's final paths, else the prebuild directory."""
    from harness.toolchain.build import find_toolchain

    try:
        t = find_toolchain("lab")
        return {"lnd": t.lnd, "lncli": t.lncli, "btcd": t.btcd, "btcctl": t.btcctl, "feeservice": t.feeservice}
    except ToolchainError as exc:
        pre = cache_root() / "prebuild"
        paths = {name: pre / name for name in ("lnd", "lncli", "btcd", "btcctl")}
        if all(p.is_file() for p in paths.values()):
            return paths
        raise ToolchainError(f"{exc} (also not found in {pre})") from exc


def image_specs(binaries: dict[str, Path] | None = None) -> list[ImageSpec]:
    b = binaries or _binary_paths()
    return [
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
    """Build the btcd and LND images unless images with matching binary hashes exist."""
    client = client or require_docker()
    say = progress or (lambda _msg: None)
    built: list[str] = []
    for spec in image_specs():
        if _up_to_date(client, spec):
            say(f"{spec.tag}: up to date")
            continue
        started = time.monotonic()
        build_image(client, spec)
        say(f"{spec.tag}: built in {time.monotonic() - started:.1f}s")
        built.append(spec.tag)
    return LabImages(btcd=BTCD_IMAGE, lnd=LND_IMAGE, built=tuple(built))


def main() -> int:
    import sys

    try:
        images = ensure_images(progress=print)
    except (DockerError, ToolchainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"btcd image: {images.btcd}\nlnd image:  {images.lnd}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
