//! `facepass.search.v1.SearchService`: request validation and mapping onto
//! the face store.

use facepass_core::{parse_id, Error, ErrorCode};
use facepass_proto::search::v1 as pb;
use pb::search_service_server::SearchService;
use tonic::{Request, Response, Status};

use crate::store::{FaceStore, NewFace};
use crate::SearchConfig;

pub struct SearchApi {
    store: FaceStore,
    config: SearchConfig,
}

impl SearchApi {
    pub fn new(store: FaceStore, config: SearchConfig) -> Self {
        SearchApi { store, config }
    }

    fn check_embedding(&self, what: &str, values: &[f32]) -> Result<(), Error> {
        if values.len() != self.config.dimension {
            return Err(Error::invalid(format!(
                "{what} has {} dimensions, expected {}",
                values.len(),
                self.config.dimension
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "{what} contains a non-finite value"
            )));
        }
        let norm: f32 = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !(0.99..=1.01).contains(&norm) {
            return Err(Error::invalid(format!(
                "{what} is not L2-normalised (norm {norm:.3})"
            )));
        }
        Ok(())
    }
}

fn required_model(model: &str) -> Result<(), Error> {
    if model.is_empty() {
        Err(Error::invalid("model is required"))
    } else {
        Ok(())
    }
}

#[tonic::async_trait]
impl SearchService for SearchApi {
    async fn upsert_photo_faces(
        &self,
        request: Request<pb::UpsertPhotoFacesRequest>,
    ) -> Result<Response<pb::UpsertPhotoFacesResponse>, Status> {
        let pb::UpsertPhotoFacesRequest {
            studio_id,
            event_id,
            photo_id,
            model,
            faces,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        let photo_id = parse_id("photo_id", &photo_id)?;
        required_model(&model)?;
        if faces.len() > self.config.max_faces_per_photo {
            return Err(Error::invalid(format!(
                "{} faces exceed the limit of {} per photo",
                faces.len(),
                self.config.max_faces_per_photo
            ))
            .into());
        }
        let mut rows = Vec::with_capacity(faces.len());
        for (i, face) in faces.into_iter().enumerate() {
            let pb::Face {
                face_index,
                embedding,
                bbox,
                landmarks,
                det_score,
            } = face;
            self.check_embedding(&format!("faces[{i}].embedding"), &embedding)?;
            if bbox.len() != 4 {
                return Err(Error::invalid(format!("faces[{i}].bbox must have 4 values")).into());
            }
            if landmarks.len() != 10 {
                return Err(
                    Error::invalid(format!("faces[{i}].landmarks must have 10 values")).into(),
                );
            }
            rows.push(NewFace {
                studio_id,
                event_id,
                photo_id,
                face_index: face_index as i32,
                model: model.clone(),
                embedding: embedding.into(),
                bbox,
                landmarks,
                det_score,
            });
        }
        let (stored, replaced) = self
            .store
            .replace_photo_faces(studio_id, photo_id, &model, rows)
            .await?;
        tracing::info!(%photo_id, %event_id, stored, replaced, "photo faces replaced");
        Ok(Response::new(pb::UpsertPhotoFacesResponse {
            faces_stored: stored as u32,
            faces_replaced: replaced as u32,
        }))
    }

    async fn search_event(
        &self,
        request: Request<pb::SearchEventRequest>,
    ) -> Result<Response<pb::SearchEventResponse>, Status> {
        let pb::SearchEventRequest {
            studio_id,
            event_id,
            model,
            embedding,
            min_similarity,
            limit,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        required_model(&model)?;
        self.check_embedding("embedding", &embedding)?;
        if !(-1.0..=1.0).contains(&min_similarity) {
            return Err(Error::invalid("min_similarity must be within -1 and 1").into());
        }
        let limit = match limit {
            0 => self.config.max_results,
            n if n > self.config.max_results => {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "limit {n} exceeds the maximum of {}",
                        self.config.max_results
                    ),
                )
                .into())
            }
            n => n,
        };
        let hits = self
            .store
            .search_event(
                studio_id,
                event_id,
                &model,
                embedding,
                min_similarity,
                limit,
            )
            .await?;
        Ok(Response::new(pb::SearchEventResponse {
            hits: hits
                .into_iter()
                .map(|hit| pb::PhotoHit {
                    photo_id: hit.photo_id.to_string(),
                    similarity: hit.similarity,
                    face_index: hit.face_index as u32,
                    bbox: hit.bbox,
                })
                .collect(),
        }))
    }

    async fn delete_photo_faces(
        &self,
        request: Request<pb::DeletePhotoFacesRequest>,
    ) -> Result<Response<pb::DeletePhotoFacesResponse>, Status> {
        let pb::DeletePhotoFacesRequest {
            studio_id,
            photo_id,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let photo_id = parse_id("photo_id", &photo_id)?;
        let deleted = self.store.delete_photo(studio_id, photo_id).await?;
        Ok(Response::new(pb::DeletePhotoFacesResponse {
            faces_deleted: deleted as u64,
        }))
    }

    async fn delete_event_faces(
        &self,
        request: Request<pb::DeleteEventFacesRequest>,
    ) -> Result<Response<pb::DeleteEventFacesResponse>, Status> {
        let pb::DeleteEventFacesRequest {
            studio_id,
            event_id,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        let deleted = self.store.delete_event(studio_id, event_id).await?;
        Ok(Response::new(pb::DeleteEventFacesResponse {
            faces_deleted: deleted as u64,
        }))
    }

    async fn forget_faces(
        &self,
        request: Request<pb::ForgetFacesRequest>,
    ) -> Result<Response<pb::ForgetFacesResponse>, Status> {
        let pb::ForgetFacesRequest {
            studio_id,
            event_id,
            model,
            embedding,
            min_similarity,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        required_model(&model)?;
        self.check_embedding("embedding", &embedding)?;
        // A low threshold would delete strangers' faces: refuse it.
        if !(0.2..=1.0).contains(&min_similarity) {
            return Err(
                Error::invalid("min_similarity must be within 0.2 and 1 for deletion").into(),
            );
        }
        let forgotten = self
            .store
            .forget(studio_id, event_id, &model, embedding, min_similarity)
            .await?;
        tracing::info!(%event_id, faces = forgotten.len(), "faces forgotten on request");
        Ok(Response::new(pb::ForgetFacesResponse {
            faces: forgotten
                .into_iter()
                .map(|f| pb::ForgottenFace {
                    photo_id: f.photo_id.to_string(),
                    face_index: f.face_index as u32,
                    similarity: f.similarity,
                })
                .collect(),
        }))
    }

    async fn get_event_stats(
        &self,
        request: Request<pb::GetEventStatsRequest>,
    ) -> Result<Response<pb::GetEventStatsResponse>, Status> {
        let pb::GetEventStatsRequest {
            studio_id,
            event_id,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        let (faces, photos) = self.store.event_stats(studio_id, event_id).await?;
        Ok(Response::new(pb::GetEventStatsResponse {
            faces: faces as u64,
            photos_with_faces: photos as u64,
        }))
    }
}
