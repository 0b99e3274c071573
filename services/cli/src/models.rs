//! `facepass models`: fetch and verify model packs. buffalo_l comes from
//! InsightFace's release archive: downloaded with curl, checked against the
//! published size and SHA-256, and only the two files FacePass needs are
//! kept. Offline, the download fails with a message that says where to put
//! the files by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use facepass_inference::pack::{verify_file, Pack, PackManifest};

/// Verifies a pack folder and returns its licence line.
pub fn verify(dir: &Path) -> anyhow::Result<String> {
    let pack = Pack::open(dir)?;
    pack.verify()?;
    Ok(pack.manifest.licence_line())
}

/// Fetches a built-in pack into `dir`.
pub fn fetch(name: &str, dir: &Path) -> anyhow::Result<String> {
    let manifest = PackManifest::builtin(name)
        .with_context(|| format!("no built-in model pack {name:?} (known: buffalo_l)"))?;
    let download = manifest
        .download
        .clone()
        .with_context(|| format!("model pack {name} has no download"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let detector = dir.join(&manifest.detector.file);
    let recogniser = dir.join(&manifest.recogniser.file);
    let have = |p: &Path, bytes, sha: &str| verify_file(p, bytes, sha).is_ok();
    if !(have(
        &detector,
        manifest.detector.bytes,
        &manifest.detector.sha256,
    ) && have(
        &recogniser,
        manifest.recogniser.bytes,
        &manifest.recogniser.sha256,
    )) {
        let archive = dir.join(format!("{name}.zip"));
        if verify_file(&archive, download.bytes, &download.sha256).is_err() {
            download_to(&download.url, &archive, dir, &manifest)?;
            verify_file(&archive, download.bytes, &download.sha256)
                .map_err(|e| anyhow::anyhow!("downloaded archive is not the published one: {e}"))?;
        }
        extract(
            &archive,
            dir,
            &[&manifest.detector.file, &manifest.recogniser.file],
        )?;
        std::fs::remove_file(&archive).ok();
    }
    std::fs::write(dir.join("manifest.toml"), toml::to_string(&manifest)?)?;
    verify(dir)
}

fn download_to(
    url: &str,
    archive: &Path,
    dir: &Path,
    manifest: &PackManifest,
) -> anyhow::Result<()> {
    let part: PathBuf = archive.with_extension("zip.part");
    eprintln!(
        "downloading {url} ({} MB) ...",
        manifest
            .download
            .as_ref()
            .map(|d| d.bytes / 1_000_000)
            .unwrap_or(0)
    );
    let output = Command::new("curl")
        .args(["-fsSL", "--retry", "2", "--connect-timeout", "20", "-o"])
        .arg(&part)
        .arg(url)
        .output();
    let failure = match output {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .to_string(),
        ),
        Err(e) => Some(format!("cannot run curl: {e}")),
    };
    if let Some(why) = failure {
        std::fs::remove_file(&part).ok();
        bail!(
            "cannot download {url}: {why}\n\
             Without internet access, get {name}.zip elsewhere and put it at {zip}, \
             or put {det} and {rec} from it into {dir}; then run this command again \
             (the files are checked against their published SHA-256).",
            name = manifest.name,
            zip = archive.display(),
            det = manifest.detector.file,
            rec = manifest.recogniser.file,
            dir = dir.display(),
        );
    }
    std::fs::rename(&part, archive)?;
    Ok(())
}

/// Extracts the named members (matched by file name) with Python's zipfile.
fn extract(archive: &Path, dir: &Path, members: &[&str]) -> anyhow::Result<()> {
    let script = "import sys, zipfile, os\n\
        z = zipfile.ZipFile(sys.argv[1]); out = sys.argv[2]; want = set(sys.argv[3:])\n\
        found = set()\n\
        for info in z.infolist():\n\
        \x20   base = os.path.basename(info.filename)\n\
        \x20   if base in want:\n\
        \x20       open(os.path.join(out, base), 'wb').write(z.read(info)); found.add(base)\n\
        missing = want - found\n\
        sys.exit('missing in archive: ' + ', '.join(sorted(missing)) if missing else 0)\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(archive)
        .arg(dir)
        .args(members)
        .status()
        .context("running python3 to unpack the archive")?;
    if !status.success() {
        bail!("unpacking {} failed", archive.display());
    }
    Ok(())
}
