"""Published training runs: the self-trained MLM and its SimCSE runs, fetched instead of trained.

The MLM pre-training of the fine-tuning chapter takes about 40 minutes on 2 CPU cores, and every chapter
from 05 to 11 needs it. The book's workflow publishes the runs a build trained (``python -m
helpers.artifacts pack``: one ``<run>.tar.gz`` per run and a ``manifest.json`` with each file's
sha256) as release assets of the repository named by ``repository.url``. When a chapter needs a run
that is not on the machine, :func:`fetch_run` looks it up in the manifest and downloads it with
``pooch`` (the known sha256 is checked; a file that does not match is refused and deleted), so the
chapter starts in minutes. Without a network, when the run is not published or the fetch fails, the
chapter trains as before and a :class:`NotFetched` warning says why.

A run is named by its settings (``<kind>-<hash>``, the same hash that names its folder in
``.cache/runs/``), without the machine's own paths: a SimCSE run is named after its starting model's
fingerprint, not its folder, so a build elsewhere finds it.

``SENTENCE_ARTIFACTS_URL`` sets where the manifest and files are (a release download URL, a folder
served over HTTP, or ``off`` to never fetch); by default
``<repository.url>/releases/download/artifacts``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import warnings
import zlib
from pathlib import Path

from .config import cache_dir, settings_key

__all__ = ["URL_SETTING", "RELEASE_TAG", "MANIFEST", "NotFetched", "base_url", "run_key", "pack_run", "pack_cache",
           "fetch_run", "main", "checkpoints"]

URL_SETTING = "SENTENCE_ARTIFACTS_URL"
#: The release tag the workflow uploads to.
RELEASE_TAG = "artifacts"
MANIFEST = "manifest.json"


class NotFetched(UserWarning):
    """A published run could not be used: the chapter trains it here (the message says why)."""


def base_url() -> str | None:
    """Where the published runs are, or None when fetching is off."""
    value = os.environ.get(URL_SETTING)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "none", "0") else value.rstrip("/")
    from .publishing import repository_url

    try:
        return f"{repository_url()}/releases/download/{RELEASE_TAG}"
    except (ValueError, OSError):
        return None


def run_key(kind: str, settings: dict) -> str:
    """A run's portable name: its kind and the hash of its settings without paths of this machine."""
    portable = {k: v for k, v in settings.items() if k != "init" or "init_fingerprint" not in settings}
    return f"{kind}-{settings_key(portable, 12)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_run(run_dir: Path, key: str, out_dir: Path) -> Path:
    """Pack a finished run folder (its checkpoints and settings) as ``out_dir/<key>.tar.gz`` and record it, with
    its sha256 and steps, in ``out_dir/manifest.json``."""

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    steps = sorted(checkpoints(run_dir))
    if not steps:
        raise ValueError(f"{run_dir} has no complete checkpoint to publish.")
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{key}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for step in steps:
            tar.add(run_dir / f"step-{step}", arcname=f"step-{step}")
        if (run_dir / "settings.json").is_file():
            tar.add(run_dir / "settings.json", arcname="settings.json")
    manifest_path = out_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest[key] = {"file": archive.name, "sha256": _sha256(archive), "steps": steps,
                     "bytes": archive.stat().st_size}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return archive


def pack_cache(out_dir: Path, runs_dir: Path | None = None) -> dict:
    """Pack every finished run of ``.cache/runs`` that knows its portable name (``artifact.json``)."""
    runs_dir = Path(runs_dir) if runs_dir else cache_dir("runs")
    packed = {}
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        marker = folder / "artifact.json"
        if marker.is_file():
            key = json.loads(marker.read_text())["key"]
            try:
                packed[key] = pack_run(folder, key, out_dir)
            except ValueError:
                continue  # an unfinished run is not published
    return packed


def _manifest(base: str) -> dict:
    import pooch

    with tempfile.TemporaryDirectory() as tmp:
        path = pooch.retrieve(f"{base}/{MANIFEST}", known_hash=None, path=tmp, fname=MANIFEST, progressbar=False)
        return json.loads(Path(path).read_text())


def _entry_problem(entry: dict) -> str | None:
    """What makes a manifest entry unsafe or unusable (None: nothing). Its ``file`` becomes a path in the
    artifacts folder, so it must be a plain file name: ``../x`` or ``/etc/x`` would write outside it."""
    name, digest = entry.get("file"), entry.get("sha256")
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or name != Path(name).name or name.startswith(".") or "\x00" in name:
        return f"its file name {name!r} is not a plain file name (no folders, no '..')"
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        return f"its sha256 {digest!r} is not a sha256 digest"
    return None


class _Refused(Exception):
    """Why a published run is not used: :func:`fetch_run` warns it as :class:`NotFetched` and the caller trains."""


def fetch_run(key: str, run_dir: Path, step: int) -> bool:
    """Put the published run ``key`` into ``run_dir`` when it holds checkpoint ``step``; True when it did.

    Nothing is fetched when fetching is off or the run is not published; a manifest entry whose file is not a
    plain file name is refused (it could write outside the artifacts folder), a download whose sha256 differs
    from the manifest's is refused, and an archive that cannot be unpacked is deleted. Every way of not fetching
    warns (:class:`NotFetched`) and returns False: the caller trains.
    """
    from pooch import utils as pooch_utils

    base = base_url()
    if base is None:
        return False
    pooch_utils.get_logger().setLevel("WARNING")
    try:
        entry = _published_entry(base, key, step)
        _unpack(_download(base, entry, key), entry, Path(run_dir), key)
        if step not in checkpoints(run_dir):
            raise _Refused(f"The published {entry['file']} holds no checkpoint {step}; training {key} here instead.")
    except _Refused as why:
        warnings.warn(str(why), NotFetched, stacklevel=3)
        return False
    (Path(run_dir) / "fetched.json").write_text(json.dumps({"key": key, "from": base, "sha256": entry["sha256"]}))
    print(f"Fetched the published run {key} ({entry.get('bytes', 0) / 1e6:.0f} MB, sha256 checked) instead of "
          "training it.", file=sys.stderr, flush=True)
    return True


def _published_entry(base: str, key: str, step: int) -> dict:
    """The manifest's entry of ``key`` when it is published with checkpoint ``step`` and its entry is sound."""
    try:
        manifest = _manifest(base)
    except Exception as exc:  # noqa: BLE001 - no network, a 404, a proxy: all mean "train here"
        raise _Refused(f"The published runs at {base} could not be read ({type(exc).__name__}: {str(exc)[:120]}); "
                       f"training {key} here instead.") from None
    entry = manifest.get(key) if isinstance(manifest, dict) else None
    if not isinstance(entry, dict) or step not in entry.get("steps", []):
        raise _Refused(f"{key} (step {step}) is not among the published runs at {base}; training it here.")
    problem = _entry_problem(entry)
    if problem:
        raise _Refused(f"The manifest at {base} is refused for {key}: {problem}. Training {key} here instead.")
    return entry


def _download(base: str, entry: dict, key: str) -> str:
    """The entry's archive in the artifacts cache, its sha256 checked by pooch (which deletes a file that fails)."""
    import pooch

    try:
        return pooch.retrieve(f"{base}/{entry['file']}", known_hash=f"sha256:{entry['sha256']}",
                              path=cache_dir("artifacts"), fname=entry["file"], progressbar=False)
    except ValueError as exc:  # pooch: the file's hash is not the manifest's
        raise _Refused(f"The published {entry['file']} was refused: {exc} Training {key} here instead.") from None
    except Exception as exc:  # noqa: BLE001
        raise _Refused(f"The published {entry['file']} could not be downloaded ({type(exc).__name__}); training "
                       f"{key} here instead.") from None


def _unpack(archive: str, entry: dict, run_dir: Path, key: str) -> None:
    """The archive's checkpoints moved into ``run_dir``, each whole or not at all; an archive that cannot be
    unpacked is deleted (the next run downloads it again)."""
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=run_dir.parent))
    try:
        try:
            with tarfile.open(archive) as tar:
                # the data filter refuses absolute names, '..', links out of the folder and devices
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            Path(archive).unlink(missing_ok=True)
            raise _Refused(f"The published {entry['file']} could not be unpacked ({type(exc).__name__}: "
                           f"{str(exc)[:120]}): it is cut short or damaged although its sha256 is the manifest's, "
                           f"so the published copy itself is bad. It was deleted; training {key} here instead.") from None
        for folder in sorted(staging.glob("step-*")):
            target = run_dir / folder.name
            if not target.exists():
                folder.rename(target)  # a checkpoint appears whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.artifacts", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    pack = sub.add_parser("pack", help="pack every finished run of .cache/runs into a folder with its manifest")
    pack.add_argument("out", help="the folder to write (its files are the release assets)")
    args = parser.parse_args(argv)
    packed = pack_cache(Path(args.out))
    for key, path in packed.items():
        print(f"{key}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"{len(packed)} runs packed; manifest: {Path(args.out) / MANIFEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def checkpoints(run_dir: Path) -> dict[int, Path]:
    """The complete checkpoints of a run folder, by step."""
    out = {}
    for path in Path(run_dir).glob("step-*"):
        if path.suffix not in (".tmp", ".broken") and (path / "state.pt").is_file():
            out[int(path.name.split("-")[1])] = path
    return dict(sorted(out.items()))
