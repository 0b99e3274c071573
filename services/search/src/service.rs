//! `facepass.search.v1.SearchService`: request validation, limits and
//! mapping onto the face store and the ranking logic.

use facepass_core::{parse_id, Error, ErrorCode};
use facepass_proto::domain::{self, FaceBox};
use facepass_proto::search::v1 as pb;
use facepass_proto::types::v1 as types;
use pb::search_service_server::SearchService;
use pgvector::Vector;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::rank::{self, Tier};
use crate::store::{FaceStore, NewFace, PhotoFaces};
use crate::SearchConfig;

/// The model pack this service stores faces of.
#[derive(Debug, Clone, PartialEq)]
pub struct PackInfo {
    /// `name@version` with a pack, the configured name otherwise ("" = any).
    pub model: String,
    pub match_similarity: f32,
    pub possible_similarity: f32,
    /// Of the embeddings requests carry (the face store keeps every event
    /// at its own pack's dimension and refuses to mix them).
    pub dimension: usize,
}

impl PackInfo {
    /// From `model.pack` (its manifest) or, without one, the plain settings.
    pub fn from_config(config: &SearchConfig) -> anyhow::Result<Self> {
        let m = &config.model;
        if m.pack.is_empty() {
            return Ok(PackInfo {
                model: m.name.clone(),
                match_similarity: m.match_similarity,
                possible_similarity: m.possible_similarity,
                dimension: m.dimension,
            });
        }
        // The manifest alone: the search service never opens model files.
        let manifest = facepass_core::pack::PackManifest::load(std::path::Path::new(&m.pack))
            .map_err(anyhow::Error::msg)?;
        let dimension = manifest.recogniser.dimension;
        if !(1..=crate::config::MAX_DIMENSION).contains(&dimension) {
            anyhow::bail!(
                "model pack {} makes {dimension}-dimensional embeddings; the face store takes 1 to {}",
                manifest.name,
                crate::config::MAX_DIMENSION
            );
        }
        Ok(PackInfo {
            model: manifest.model_id(),
            match_similarity: manifest.thresholds.match_similarity,
            possible_similarity: manifest.thresholds.possible_similarity,
            dimension,
        })
    }
}

/// A stored `[x1, y1, x2, y2]` as the contract's box (the store writes
/// exactly four values; anything else is a bug, logged and left out).
fn stored_box(bbox: &[f32]) -> Option<types::FaceBox> {
    match FaceBox::from_slice(bbox) {
        Ok(b) => Some(b.into()),
        Err(e) => {
            tracing::error!(error = %e, "stored face box is malformed");
            None
        }
    }
}

pub struct SearchApi {
    store: FaceStore,
    config: SearchConfig,
    pack: PackInfo,
}

const DEFAULT_PAGE: u32 = 100;

impl SearchApi {
    pub fn new(store: FaceStore, config: SearchConfig, pack: PackInfo) -> Self {
        SearchApi {
            store,
            config,
            pack,
        }
    }

    fn check_embedding(&self, what: &str, values: &[f32]) -> Result<(), Error> {
        if values.len() != self.pack.dimension {
            return Err(Error::invalid(format!(
                "{what} has {} dimensions, expected {} (model pack {})",
                values.len(),
                self.pack.dimension,
                self.pack.model
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

    /// The request's model must be this service's pack.
    fn check_model(&self, model: &str) -> Result<(), Error> {
        if model.is_empty() {
            return Err(Error::invalid_field("model", "model is required"));
        }
        // Stored with every face: text only, before it reaches PostgreSQL.
        facepass_core::text::text("model", model, 200)?;
        if !self.pack.model.is_empty() && model != self.pack.model {
            return Err(Error::new(
                ErrorCode::ModelMismatch,
                format!(
                    "embeddings made by model pack {model:?}; this face store holds {:?}",
                    self.pack.model
                ),
            ));
        }
        Ok(())
    }

    fn faces_to_rows(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        photo_id: Uuid,
        model: &str,
        faces: Vec<pb::Face>,
        what: &str,
    ) -> Result<Vec<NewFace>, Error> {
        if faces.len() > self.config.max_faces_per_photo {
            return Err(Error::invalid(format!(
                "{what}: {} faces exceed the limit of {} per photo",
                faces.len(),
                self.config.max_faces_per_photo
            )));
        }
        let mut rows = Vec::with_capacity(faces.len());
        let mut seen = std::collections::HashSet::new();
        for (i, face) in faces.into_iter().enumerate() {
            let pb::Face {
                face_index,
                embedding,
                face,
                quality,
            } = face;
            let field = format!("{what}.faces[{i}]");
            self.check_embedding(&format!("{field}.embedding"), &embedding)?;
            let face: domain::Face = domain::required(&format!("{field}.face"), face)?;
            if !quality.is_finite() {
                return Err(Error::invalid(format!(
                    "{field}.quality must be a finite number"
                )));
            }
            if !seen.insert(face_index) {
                return Err(Error::invalid(format!(
                    "{what}.faces[{i}]: face_index {face_index} appears twice"
                )));
            }
            rows.push(NewFace {
                event_id,
                photo_id,
                face_index: face_index as i32,
                studio_id,
                model: model.to_string(),
                embedding: Vector::from(embedding),
                bbox: face.face_box.to_array().to_vec(),
                landmarks: face.landmarks.flatten(),
                det_score: face.score,
                quality: quality.clamp(0.0, 1.0),
            });
        }
        Ok(rows)
    }

    /// One query per person: the normalised mean of their selfies.
    /// One query per person: the normalised mean of their selfies and of
    /// the stored faces they name (read here; embeddings never leave).
    async fn person_queries(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        people: Vec<pb::Person>,
    ) -> Result<Vec<Vec<f32>>, Error> {
        if people.is_empty() {
            return Err(Error::invalid(
                "people: at least one person (with a selfie or a face) is required",
            ));
        }
        if people.len() > self.config.max_people {
            return Err(Error::invalid(format!(
                "people: {} exceed the limit of {} per query",
                people.len(),
                self.config.max_people
            )));
        }
        let mut queries = Vec::with_capacity(people.len());
        for (p, person) in people.into_iter().enumerate() {
            let pb::Person { selfies, faces } = person;
            if selfies.is_empty() && faces.is_empty() {
                return Err(Error::invalid(format!(
                    "people[{p}] has no selfie and no face"
                )));
            }
            if selfies.len() + faces.len() > self.config.max_selfies_per_person {
                return Err(Error::invalid(format!(
                    "people[{p}]: {} selfies and faces exceed the limit of {} per person",
                    selfies.len() + faces.len(),
                    self.config.max_selfies_per_person
                )));
            }
            let mut vectors = Vec::with_capacity(selfies.len() + faces.len());
            for (s, e) in selfies.into_iter().enumerate() {
                self.check_embedding(&format!("people[{p}].selfies[{s}]"), &e.values)?;
                vectors.push(e.values);
            }
            if !faces.is_empty() {
                let mut refs = Vec::with_capacity(faces.len());
                for (i, f) in faces.into_iter().enumerate() {
                    refs.push((
                        parse_id(&format!("people[{p}].faces[{i}].photo_id"), &f.photo_id)?,
                        f.face_index as i32,
                    ));
                }
                vectors.extend(
                    self.store
                        .face_embeddings(studio_id, event_id, &refs)
                        .await?,
                );
            }
            queries.push(rank::combine(&vectors));
        }
        Ok(queries)
    }
}

fn tier(t: Tier) -> i32 {
    match t {
        Tier::Match => pb::MatchTier::Match as i32,
        Tier::Possible => pb::MatchTier::Possible as i32,
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
        self.check_model(&model)?;
        let rows = self.faces_to_rows(studio_id, event_id, photo_id, &model, faces, "photo")?;
        let (stored, replaced) = self
            .store
            .replace_faces(
                studio_id,
                event_id,
                &model,
                vec![PhotoFaces {
                    photo_id,
                    faces: rows,
                }],
            )
            .await?;
        tracing::info!(%photo_id, %event_id, stored, replaced, "photo faces replaced");
        Ok(Response::new(pb::UpsertPhotoFacesResponse {
            faces_stored: stored as u32,
            faces_replaced: replaced as u32,
        }))
    }

    async fn bulk_upsert_photo_faces(
        &self,
        request: Request<pb::BulkUpsertPhotoFacesRequest>,
    ) -> Result<Response<pb::BulkUpsertPhotoFacesResponse>, Status> {
        let pb::BulkUpsertPhotoFacesRequest {
            studio_id,
            event_id,
            model,
            photos,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        self.check_model(&model)?;
        if photos.is_empty() {
            return Err(Error::invalid("photos: at least one photo is required").into());
        }
        if photos.len() > self.config.max_bulk_photos {
            return Err(Error::invalid(format!(
                "photos: {} exceed the limit of {} per call",
                photos.len(),
                self.config.max_bulk_photos
            ))
            .into());
        }
        let mut batch = Vec::with_capacity(photos.len());
        let mut seen = std::collections::HashSet::new();
        for (i, p) in photos.into_iter().enumerate() {
            let photo_id = parse_id(&format!("photos[{i}].photo_id"), &p.photo_id)?;
            if !seen.insert(photo_id) {
                return Err(
                    Error::invalid(format!("photos[{i}]: photo {photo_id} appears twice")).into(),
                );
            }
            let rows = self.faces_to_rows(
                studio_id,
                event_id,
                photo_id,
                &model,
                p.faces,
                &format!("photos[{i}]"),
            )?;
            batch.push(PhotoFaces {
                photo_id,
                faces: rows,
            });
        }
        let n = batch.len();
        let (stored, replaced) = self
            .store
            .replace_faces(studio_id, event_id, &model, batch)
            .await?;
        tracing::info!(%event_id, photos = n, stored, replaced, "bulk faces replaced");
        Ok(Response::new(pb::BulkUpsertPhotoFacesResponse {
            photos: n as u32,
            faces_stored: stored as u32,
            faces_replaced: replaced as u32,
        }))
    }

    async fn mark_photo_failed(
        &self,
        request: Request<pb::MarkPhotoFailedRequest>,
    ) -> Result<Response<pb::MarkPhotoFailedResponse>, Status> {
        let pb::MarkPhotoFailedRequest {
            studio_id,
            event_id,
            photo_id,
            reason,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        let photo_id = parse_id("photo_id", &photo_id)?;
        // Recorded whatever it holds: odd characters (a NUL) are replaced.
        let reason = facepass_core::text::sanitize(&reason, 1000);
        let deleted = self
            .store
            .mark_failed(studio_id, event_id, photo_id, &reason)
            .await?;
        Ok(Response::new(pb::MarkPhotoFailedResponse {
            faces_deleted: deleted as u64,
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
            people,
            page_size,
            page_token,
            matches_only,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        self.check_model(&model)?;
        let queries = self.person_queries(studio_id, event_id, people).await?;
        let page_size = match page_size {
            0 => DEFAULT_PAGE.min(self.config.max_page_size),
            n if n > self.config.max_page_size => {
                return Err(Error::invalid(format!(
                    "page_size {n} exceeds the maximum of {}",
                    self.config.max_page_size
                ))
                .into())
            }
            n => n,
        };
        let digest = rank::query_digest(event_id, &model, &queries, matches_only);
        let cursor = if page_token.is_empty() {
            None
        } else {
            Some(rank::decode_token(&page_token, &digest).map_err(Error::invalid)?)
        };
        let event = self.store.event(studio_id, event_id).await?;
        event.check_model(&model)?;
        let (match_t, possible_t) = (self.pack.match_similarity, self.pack.possible_similarity);
        let floor = if matches_only { match_t } else { possible_t };
        let started = std::time::Instant::now();
        let (strategy, candidates) = self.store.candidates(&event, &queries, floor).await?;
        let people = queries.len();
        let ranked = rank::rank(candidates, people, match_t, floor);
        let total_matches = ranked.iter().filter(|r| r.tier == Tier::Match).count();
        let (slice, next) = rank::page(&ranked, cursor, page_size as usize);
        crate::metrics::event_seconds()
            .get_or_create(&crate::metrics::StrategyLabels {
                strategy: strategy.as_str(),
            })
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(%event_id, strategy = strategy.as_str(), people, photos = ranked.len(),
            ms = started.elapsed().as_secs_f64() * 1e3, "event searched");
        Ok(Response::new(pb::SearchEventResponse {
            hits: slice
                .iter()
                .map(|r| {
                    let best = &r.faces[0];
                    pb::PhotoHit {
                        photo_id: r.photo_id.to_string(),
                        similarity: r.score,
                        face_index: best.face_index as u32,
                        r#box: stored_box(&best.bbox),
                        tier: tier(r.tier),
                        faces: r
                            .faces
                            .iter()
                            .map(|f| pb::FaceHit {
                                face_index: f.face_index as u32,
                                r#box: stored_box(&f.bbox),
                                similarity: f.similarity,
                            })
                            .collect(),
                    }
                })
                .collect(),
            next_page_token: next
                .map(|c| rank::encode_token(c, &digest))
                .unwrap_or_default(),
            total_photos: ranked.len() as u32,
            total_matches: total_matches as u32,
            strategy: strategy.as_str().into(),
            match_threshold: match_t,
            possible_threshold: possible_t,
        }))
    }

    async fn delete_photo_faces(
        &self,
        request: Request<pb::DeletePhotoFacesRequest>,
    ) -> Result<Response<pb::DeletePhotoFacesResponse>, Status> {
        let pb::DeletePhotoFacesRequest {
            studio_id,
            photo_id,
            event_id,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let photo_id = parse_id("photo_id", &photo_id)?;
        let event_id = if event_id.is_empty() {
            match self.store.photo_event(studio_id, photo_id).await? {
                Some(e) => e,
                None => {
                    return Ok(Response::new(pb::DeletePhotoFacesResponse {
                        faces_deleted: 0,
                    }))
                }
            }
        } else {
            parse_id("event_id", &event_id)?
        };
        let deleted = self
            .store
            .delete_photo(studio_id, event_id, photo_id)
            .await?;
        Ok(Response::new(pb::DeletePhotoFacesResponse {
            faces_deleted: deleted as u64,
        }))
    }

    async fn list_photo_faces(
        &self,
        request: Request<pb::ListPhotoFacesRequest>,
    ) -> Result<Response<pb::ListPhotoFacesResponse>, Status> {
        let pb::ListPhotoFacesRequest {
            studio_id,
            event_id,
            photo_id,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        let photo_id = parse_id("photo_id", &photo_id)?;
        let (faces, model) = self
            .store
            .photo_faces(studio_id, event_id, photo_id)
            .await?;
        let faces = faces
            .into_iter()
            .map(|f| {
                let face = domain::Face {
                    face_box: FaceBox::from_slice(&f.bbox)?,
                    landmarks: domain::Landmarks::from_flat(&f.landmarks)?,
                    score: f.det_score,
                };
                Ok(pb::StoredFace {
                    face_index: f.face_index as u32,
                    face: Some(face.into()),
                    quality: f.quality,
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            // The store writes exactly these shapes; anything else is a bug.
            .map_err(|e| Error::internal(format!("stored face: {}", e.message)))?;
        Ok(Response::new(pb::ListPhotoFacesResponse { faces, model }))
    }

    async fn delete_faces(
        &self,
        request: Request<pb::DeleteFacesRequest>,
    ) -> Result<Response<pb::DeleteFacesResponse>, Status> {
        let pb::DeleteFacesRequest {
            studio_id,
            event_id,
            faces,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        if faces.is_empty() {
            return Err(Error::invalid("faces: at least one face is required").into());
        }
        if faces.len() > self.config.max_delete_faces {
            return Err(Error::invalid(format!(
                "faces: {} exceed the limit of {} per call",
                faces.len(),
                self.config.max_delete_faces
            ))
            .into());
        }
        let mut refs = Vec::with_capacity(faces.len());
        for (i, f) in faces.into_iter().enumerate() {
            refs.push((
                parse_id(&format!("faces[{i}].photo_id"), &f.photo_id)?,
                f.face_index as i32,
            ));
        }
        let deleted = self.store.delete_faces(studio_id, event_id, refs).await?;
        Ok(Response::new(pb::DeleteFacesResponse {
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
        tracing::info!(%event_id, faces = deleted, "event faces deleted");
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
            suppress,
        } = request.into_inner();
        let studio_id = parse_id("studio_id", &studio_id)?;
        let event_id = parse_id("event_id", &event_id)?;
        self.check_model(&model)?;
        let types::Embedding { values: embedding } =
            embedding.ok_or_else(|| Error::invalid("embedding is required"))?;
        self.check_embedding("embedding", &embedding)?;
        let min_similarity = if min_similarity == 0.0 {
            self.pack.match_similarity
        } else {
            min_similarity
        };
        // A low threshold would delete strangers' faces: refuse it.
        if !(0.2..=1.0).contains(&min_similarity) {
            return Err(
                Error::invalid("min_similarity must be within 0.2 and 1 for deletion").into(),
            );
        }
        let forgotten = self
            .store
            .forget(
                studio_id,
                event_id,
                &model,
                &embedding,
                min_similarity,
                suppress,
            )
            .await?;
        tracing::info!(%event_id, faces = forgotten.len(), suppress, "faces forgotten on request");
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
        let s = self.store.event_stats(studio_id, event_id).await?;
        Ok(Response::new(pb::GetEventStatsResponse {
            faces: s.faces as u64,
            photos_with_faces: s.photos_with_faces as u64,
            photos: s.photos as u64,
            photos_indexed: s.photos_indexed as u64,
            photos_failed: s.photos_failed as u64,
            model: s.model,
            strategy: s.strategy.as_str().into(),
        }))
    }
}
