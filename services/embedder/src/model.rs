//! The ArcFace recogniser on ONNX Runtime: preprocessing of aligned crops
//! and the [`Model`] the batcher drives.

use facepass_inference::ort::session::Session;
use facepass_inference::ort::value::TensorRef;
use facepass_inference::{ModelCheck, TensorSpec};

use crate::batcher::Model;
use crate::config::EmbedderConfig;

/// Side of the aligned crops the recogniser takes.
pub const CROP: usize = 112;

/// What the recogniser file must look like: [N, 3, 112, 112] -> [N, dim].
pub fn model_check(config: &EmbedderConfig) -> ModelCheck {
    ModelCheck {
        path: config.model.path.clone().into(),
        sha256: config.model.sha256.clone(),
        inputs: vec![TensorSpec::new(&[
            None,
            Some(3),
            Some(CROP as i64),
            Some(CROP as i64),
        ])],
        outputs: vec![TensorSpec::new(&[
            None,
            Some(config.model.dimension as i64),
        ])],
        hint:
            "run scripts/setup.sh (generates the fixture models), or see README.md to use buffalo_l"
                .into(),
    }
}

/// RGB bytes of a 112x112 crop to the normalised NCHW planes ArcFace expects.
pub fn preprocess(rgb: &[u8], mean: f32, std: f32) -> Vec<f32> {
    let plane = CROP * CROP;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 - mean) / std;
        }
    }
    out
}

pub struct ArcFace {
    pub session: Session,
}

impl Model for ArcFace {
    fn infer(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let input = TensorRef::from_array_view(([batch, 3, CROP, CROP], inputs))
            .map_err(|e| e.to_string())?;
        let outputs = self
            .session
            .run(facepass_inference::ort::inputs![input])
            .map_err(|e| e.to_string())?;
        let (_, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        Ok(data.to_vec())
    }
}
