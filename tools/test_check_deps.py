"""Unit tests of tools/check_deps.py on made-up metadata: each rule catches
what it is for (scripts/check.sh deps runs them)."""
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_deps  # noqa: E402


def package(root: Path, name: str, deps: list[tuple[str, str | None]], code: str) -> dict:
    folder = root / name
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "lib.rs").write_text(code)
    return {
        "id": name,
        "name": name,
        "manifest_path": str(folder / "Cargo.toml"),
        "dependencies": [{"name": d, "kind": k, "rename": None} for d, k in deps],
    }


class CheckDepsTest(unittest.TestCase):
    def run_check(self, packages: list[dict]) -> list[str]:
        return check_deps.check({"packages": packages, "workspace_members": [p["id"] for p in packages]})

    def test_a_clean_map_passes(self):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            core = package(root, "facepass-core", [("serde", None)], "use serde::Serialize;")
            gateway = package(root, "facepass-gateway", [("facepass-core", None)], "use facepass_core::Error;")
            self.assertEqual(self.run_check([core, gateway]), [])

    def test_a_service_linking_another_is_caught(self):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            search = package(root, "facepass-search", [], "")
            gateway = package(root, "facepass-gateway", [("facepass-search", None)], "facepass_search::run();")
            problems = self.run_check([search, gateway])
            self.assertEqual(len(problems), 1, problems)
            self.assertIn("links the service library ['facepass-search']", problems[0])

    def test_core_depending_on_ours_is_caught(self):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            proto = package(root, "facepass-proto", [], "")
            core = package(root, "facepass-core", [("facepass-proto", None)], "use facepass_proto::x;")
            problems = self.run_check([proto, core])
            self.assertTrue(any("shared/core depends on no FacePass crate" in p for p in problems), problems)

    def test_an_unused_dependency_is_caught(self):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            cli = package(root, "facepass-cli", [("tokio", "dev"), ("anyhow", None)], "fn f() -> anyhow::Result<()> { Ok(()) }")
            problems = self.run_check([cli])
            self.assertEqual(problems, ["facepass-cli: dev dependency tokio is never named in its code (unused?)"])


if __name__ == "__main__":
    unittest.main()
