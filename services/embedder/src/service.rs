//! `facepass.embedder.v1.EmbedderService`.

use std::sync::Arc;

use facepass_core::Error;
use facepass_proto::domain::{within, AlignedCrop};
use facepass_proto::embedder::v1 as pb;
use facepass_proto::types::v1 as types;
use pb::embedder_service_server::EmbedderService;
use tonic::{Request, Response, Status};

use crate::batcher::Batcher;
use crate::model::{preprocess, CROP};
use crate::EmbedderConfig;

pub struct EmbedderApi {
    batcher: Arc<Batcher>,
    config: EmbedderConfig,
}

impl EmbedderApi {
    pub fn new(batcher: Arc<Batcher>, config: EmbedderConfig) -> Self {
        EmbedderApi { batcher, config }
    }
}

#[tonic::async_trait]
impl EmbedderService for EmbedderApi {
    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let pb::EmbedRequest { faces, interactive } = request.into_inner();
        if faces.len() > self.config.max_faces_per_request {
            return Err(Error::invalid(format!(
                "{} faces exceed the limit of {} per request",
                faces.len(),
                self.config.max_faces_per_request
            ))
            .into());
        }
        let mut inputs = Vec::with_capacity(faces.len());
        for (i, face) in faces.into_iter().enumerate() {
            let crop = AlignedCrop::try_from(face).map_err(within(format!("faces[{i}]")))?;
            let (width, height) = (crop.width(), crop.height());
            if width as usize != CROP || height as usize != CROP {
                return Err(Error::invalid(format!(
                    "faces[{i}] is {width}x{height}, expected {CROP}x{CROP} aligned crops"
                ))
                .into());
            }
            inputs.push(preprocess(
                crop.rgb(),
                self.config.model.input_mean,
                self.config.model.input_std,
            ));
        }
        let requested = inputs.len() as u64;
        let embeddings = self.batcher.embed_with(inputs, interactive).await?;
        crate::metrics::get().faces.inc_by(requested);
        Ok(Response::new(pb::EmbedResponse {
            model: self.config.model.name.clone(),
            embeddings: embeddings
                .into_iter()
                .map(|values| types::Embedding { values })
                .collect(),
        }))
    }

    async fn get_model_info(
        &self,
        _request: Request<pb::GetModelInfoRequest>,
    ) -> Result<Response<pb::GetModelInfoResponse>, Status> {
        Ok(Response::new(pb::GetModelInfoResponse {
            model: self.config.model.name.clone(),
            dimension: self.config.model.dimension as u32,
            max_batch: self.config.batching.max_batch as u32,
            licence: self.config.licence.clone(),
            crop_side: CROP as u32,
        }))
    }
}
