//! The ArcFace recogniser on ONNX Runtime: preprocessing of aligned crops
//! and the [`Model`] the batcher drives.

use facepass_inference::ort::session::Session;
use facepass_inference::ort::value::TensorRef;
use facepass_inference::{ModelCheck, TensorSpec};

use crate::batcher::Model;
use crate::config::EmbedderConfig;

/// Side of the aligned crops the recogniser takes.
pub const CROP: usize = 112;

/// What the recogniser file must look like: [N, 3, 112, 112] -> [N, dim],
/// N fixed when the model's batch is.
pub fn model_check(config: &EmbedderConfig) -> ModelCheck {
    let batch = (config.model.fixed_batch > 0).then_some(config.model.fixed_batch as i64);
    ModelCheck {
        path: config.model.path.clone().into(),
        sha256: config.model.sha256.clone(),
        inputs: vec![TensorSpec::new(&[
            batch,
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
    /// The model's fixed batch size, or 0 when it takes any.
    pub fixed_batch: usize,
    pub dimension: usize,
}

impl ArcFace {
    fn run(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>, String> {
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

impl Model for ArcFace {
    fn infer(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        if self.fixed_batch == 0 {
            return self.run(inputs, batch);
        }
        fixed_batches(
            inputs,
            batch,
            self.fixed_batch,
            self.dimension,
            |slice, n| self.run(slice, n),
        )
    }
}

/// Runs `batch` inputs through `run` in slices of exactly `fixed` inputs
/// (the last one padded with zeros), and returns `batch` outputs of
/// `dimension` values.
pub fn fixed_batches(
    inputs: &[f32],
    batch: usize,
    fixed: usize,
    dimension: usize,
    mut run: impl FnMut(&[f32], usize) -> Result<Vec<f32>, String>,
) -> Result<Vec<f32>, String> {
    let per_input = inputs.len() / batch.max(1);
    let mut out = Vec::with_capacity(batch * dimension);
    let mut padded = Vec::new();
    for chunk in inputs.chunks(fixed * per_input) {
        let n = chunk.len() / per_input;
        let slice = if n == fixed {
            chunk
        } else {
            padded.clear();
            padded.extend_from_slice(chunk);
            padded.resize(fixed * per_input, 0.0);
            &padded
        };
        let values = run(slice, fixed)?;
        if values.len() != fixed * dimension {
            return Err(format!(
                "the model made {} values for {fixed} crops, expected {}",
                values.len(),
                fixed * dimension
            ));
        }
        out.extend_from_slice(&values[..n * dimension]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_batches_slice_pad_and_keep_the_order() {
        // 5 inputs of 2 values, a model fixed at batch 2 that outputs
        // (sum, first) per input.
        let inputs: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let mut calls = Vec::new();
        let out = fixed_batches(&inputs, 5, 2, 2, |slice, n| {
            calls.push(slice.len());
            assert_eq!(n, 2);
            Ok(slice.chunks(2).flat_map(|c| [c[0] + c[1], c[0]]).collect())
        })
        .unwrap();
        // three runs of exactly 2 inputs (the last padded), 5 outputs back
        assert_eq!(calls, vec![4, 4, 4]);
        assert_eq!(
            out,
            vec![1.0, 0.0, 5.0, 2.0, 9.0, 4.0, 13.0, 6.0, 17.0, 8.0]
        );
        // batch 1: one run per input
        let out = fixed_batches(&inputs, 5, 1, 2, |slice, _| Ok(vec![slice[0], slice[1]])).unwrap();
        assert_eq!(out, inputs);
        // a model that answers the wrong size is an error, not a panic
        assert!(fixed_batches(&inputs, 5, 2, 2, |_, _| Ok(vec![0.0])).is_err());
    }
}
