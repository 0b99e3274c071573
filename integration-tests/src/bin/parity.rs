//! facepass-parity: runs FacePass's own vision pipeline (decode, SCRFD,
//! alignment, ArcFace) in process over a folder of images and writes the
//! same JSON as tools/parity/reference.py writes for insightface 0.7.3, so
//! tools/parity/compare.py can hold the two side by side.
//!
//!   facepass-parity MODEL_DIR IMAGE_DIR OUT_JSON

use std::sync::Arc;

use anyhow::Context;
use facepass_detector::engine::{FaceDetector, Mode};
use facepass_detector::DetectorConfig;
use facepass_embedder::EmbedderConfig;
use serde_json::json;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, models, images, out] = args.as_slice() else {
        anyhow::bail!("usage: facepass-parity MODEL_DIR IMAGE_DIR OUT_JSON");
    };
    let dylib = facepass_integration_tests::ort_dylib()?;
    // With a pack manifest, its files, input spec and normalisation, as the
    // services read them; without one, det.onnx and rec.onnx as insightface's
    // defaults (127.5 / 127.5).
    let has_manifest = std::path::Path::new(models).join("manifest.toml").is_file();
    let mut det_config = DetectorConfig::default();
    det_config.model.path = format!("{models}/det.onnx");
    if has_manifest {
        det_config.model.pack = models.clone();
    }
    det_config.workers = 1;
    det_config.ort.intra_threads = 2;
    // insightface runs the single 640x640 pass only.
    det_config.fine_pass_side = 0;
    // insightface decodes every photo in full (cv2.imdecode).
    det_config.reduced_decode = false;
    // insightface's 640x640 letterbox; FACEPASS_PARITY_CANVAS=fitted
    // measures how far the services' default canvas is from it
    // (docs/benchmarks.md, "First pass canvas").
    det_config.first_pass_canvas = match std::env::var("FACEPASS_PARITY_CANVAS").as_deref() {
        Ok("fitted") => facepass_detector::config::Canvas::Fitted,
        _ => facepass_detector::config::Canvas::Square,
    };
    let detector = Arc::new(FaceDetector::load(&det_config, Some(&dylib))?);
    let mut rec_config = EmbedderConfig::default();
    rec_config.model.path = format!("{models}/rec.onnx");
    if has_manifest {
        rec_config.model.pack = models.clone();
        facepass_embedder::apply_pack(&mut rec_config)?;
    }
    let (mean, std) = (rec_config.model.input_mean, rec_config.model.input_std);
    let batcher = facepass_embedder::start_batcher(&rec_config, Some(&dylib))?;

    let mut names: Vec<String> = std::fs::read_dir(images)
        .with_context(|| format!("reading {images}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".jpeg"))
        .collect();
    names.sort();
    let mut results = Vec::new();
    for name in names {
        let bytes = std::fs::read(format!("{images}/{name}"))?;
        let found = detector
            .detect(bytes.into(), Mode::All)
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let inputs = found
            .faces
            .iter()
            .map(|f| facepass_embedder::model::preprocess(f.crop.as_raw(), mean, std))
            .collect();
        let embeddings = batcher
            .embed(inputs)
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let faces: Vec<_> = found
            .faces
            .iter()
            .zip(embeddings)
            .map(|(face, embedding)| {
                json!({
                    "bbox": face.detection.bbox,
                    "score": face.detection.score,
                    "landmarks": face.detection.landmarks,
                    "crop_rgb_b64": base64(face.crop.as_raw()),
                    "embedding": embedding,
                })
            })
            .collect();
        results.push(
            json!({"name": name, "width": found.width, "height": found.height, "faces": faces}),
        );
    }
    let doc = json!({"tool": format!("facepass-{}", env!("CARGO_PKG_VERSION")), "images": results});
    std::fs::write(out, serde_json::to_vec(&doc)?)?;
    println!("wrote {out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
