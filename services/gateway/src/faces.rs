//! Faces in the public API: a photo's faces, deleting one, and searches by
//! selfies and by indexed faces, for one person or several together. Selfie
//! bytes live only in the call's memory; stored embeddings never leave the
//! search service (a face is named by its id, and the store reads it).

use std::fmt;

use bytes::Bytes;
use facepass_analysis::peer;
use facepass_core::{Error, Result};
use facepass_proto::domain::{Face, FaceBox};
use facepass_proto::search::v1 as srch;
use uuid::Uuid;

use crate::catalog::{EventRow, PhotoRow};
use crate::domain::Gateway;
use crate::privacy::{consent_required, Channel};

/// Most selfies and faces naming one person (the face store's limit).
pub const MAX_PER_PERSON: usize = 5;
/// Most people in one "together" query, the searcher included.
pub const MAX_PEOPLE: usize = 4;
/// Default and largest number of photos a search returns.
pub const DEFAULT_LIMIT: u32 = 200;
pub const MAX_LIMIT: u32 = 1000;

/// A face's public id: `<photo id>.<face index>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaceId {
    pub photo_id: Uuid,
    pub index: u32,
}

impl FaceId {
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_field(
                field,
                format!("{field} {text:?} is not a face id (<photo id>.<face index>)"),
            )
        };
        let (photo, index) = text.rsplit_once('.').ok_or_else(bad)?;
        let photo_id = Uuid::parse_str(photo).map_err(|_| bad())?;
        // Digits only: no sign, no spaces.
        if index.is_empty() || index.len() > 4 || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let index = index.parse().map_err(|_| bad())?;
        Ok(FaceId { photo_id, index })
    }
}

impl fmt::Display for FaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.photo_id, self.index)
    }
}

/// A face of an indexed photo.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedFace {
    pub id: FaceId,
    pub face: Face,
    pub quality: f32,
}

/// One person to look for: selfies (encoded images) and/or indexed faces.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub selfies: Vec<Bytes>,
    pub faces: Vec<FaceId>,
}

/// Which tiers a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tiers {
    #[default]
    All,
    MatchOnly,
}

/// How strongly a photo matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Match,
    Possible,
}

/// One person's face in a matched photo.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceMatch {
    pub id: FaceId,
    pub face_box: FaceBox,
    pub similarity: f32,
}

/// A photo found by a search.
#[derive(Debug, Clone)]
pub struct PhotoMatch {
    pub photo: PhotoRow,
    /// The best face's similarity (one person), the weakest person's (several).
    pub similarity: f32,
    pub face_box: FaceBox,
    pub tier: Tier,
    /// One per person, in the order asked.
    pub faces: Vec<FaceMatch>,
}

/// The result of a search; `selfie_face` is the first selfie's face.
#[derive(Debug, Clone)]
pub struct Search {
    pub matches: Vec<PhotoMatch>,
    pub selfie_face: Option<FaceBox>,
}

/// The limit asked for, or INVALID_ARGUMENT.
pub fn check_limit(limit: u32) -> Result<u32> {
    match limit {
        0 => Ok(DEFAULT_LIMIT),
        n if n > MAX_LIMIT => Err(Error::invalid_field(
            "limit",
            format!("limit is at most {MAX_LIMIT}"),
        )),
        n => Ok(n),
    }
}

/// Checks the shape of a query: 1 to 4 people, each with 1 to 5 selfies and
/// faces. `what(p)` names person `p` in errors (`selfie`, `together[0]`).
pub fn check_people(people: &[Person], what: impl Fn(usize) -> String) -> Result<()> {
    if people.is_empty() || people.len() > MAX_PEOPLE {
        return Err(Error::invalid_field(
            "together",
            format!(
                "a search looks for 1 to {MAX_PEOPLE} people, not {}",
                people.len()
            ),
        ));
    }
    for (p, person) in people.iter().enumerate() {
        let n = person.selfies.len() + person.faces.len();
        if n == 0 {
            return Err(Error::invalid_field(
                what(p),
                format!("{} has no selfie and no face", what(p)),
            ));
        }
        if n > MAX_PER_PERSON {
            return Err(Error::invalid_field(
                what(p),
                format!(
                    "{} has {n} selfies and faces, the limit is {MAX_PER_PERSON}",
                    what(p)
                ),
            ));
        }
    }
    Ok(())
}

impl Gateway {
    /// The faces of one of the studio's photos.
    pub async fn photo_faces(&self, studio: Uuid, photo_id: Uuid) -> Result<Vec<IndexedFace>> {
        let photo = self.catalog.get_photo(studio, photo_id).await?;
        let response = self
            .peers
            .search
            .clone()
            .list_photo_faces(srch::ListPhotoFacesRequest {
                studio_id: studio.to_string(),
                event_id: photo.event_id.to_string(),
                photo_id: photo.id.to_string(),
            })
            .await
            .map_err(peer("search"))?
            .into_inner();
        response
            .faces
            .into_iter()
            .map(|f| {
                let srch::StoredFace {
                    face_index,
                    face,
                    quality,
                } = f;
                let face = face.ok_or_else(|| Error::internal("stored face without geometry"))?;
                Ok(IndexedFace {
                    id: FaceId {
                        photo_id: photo.id,
                        index: face_index,
                    },
                    face: Face::try_from(face)
                        .map_err(|e| Error::internal(format!("stored face: {}", e.message)))?,
                    quality,
                })
            })
            .collect()
    }

    /// Deletes one face of one of the studio's photos; returns 1, or 0 when
    /// it was already gone.
    pub async fn delete_face(&self, studio: Uuid, id: FaceId, actor: &str) -> Result<u64> {
        let photo = self.catalog.get_photo(studio, id.photo_id).await?;
        let deleted = self
            .peers
            .search
            .clone()
            .delete_faces(srch::DeleteFacesRequest {
                studio_id: studio.to_string(),
                event_id: photo.event_id.to_string(),
                faces: vec![srch::FaceRef {
                    photo_id: photo.id.to_string(),
                    face_index: id.index,
                }],
            })
            .await;
        let deleted = match deleted {
            Ok(r) => r.into_inner().faces_deleted,
            // The store never had faces of the event: nothing to delete.
            Err(status) if status.code() == tonic::Code::NotFound => 0,
            Err(status) => return Err(peer("search")(status)),
        };
        if deleted > 0 {
            self.catalog
                .subtract_faces(photo.id, deleted as i32)
                .await?;
        }
        tracing::info!(photo_id = %photo.id, face_index = id.index, deleted, "face deleted");
        self.catalog
            .audit(crate::privacy::Audit {
                studio,
                actor,
                action: "face.deleted",
                event_id: Some(photo.event_id),
                photo_id: Some(photo.id),
                counts: &[("faces", deleted)],
            })
            .await?;
        Ok(deleted)
    }

    /// The event a face belongs to (the studio's), for SearchByFace.
    pub async fn face_event(&self, studio: Uuid, id: FaceId) -> Result<EventRow> {
        let photo = self.catalog.get_photo(studio, id.photo_id).await?;
        self.catalog.get_event(studio, photo.event_id).await
    }

    /// The model pack of the event's stored faces.
    async fn event_model(&self, event: &EventRow) -> Result<String> {
        let stats = self
            .peers
            .search
            .clone()
            .get_event_stats(srch::GetEventStatsRequest {
                studio_id: event.studio_id.to_string(),
                event_id: event.id.to_string(),
            })
            .await
            .map_err(peer("search"))?
            .into_inner();
        Ok(stats.model)
    }

    /// Photos of `event` in which every one of `people` appears. Selfies
    /// are analysed (in memory, concurrently) and only their embeddings go
    /// on; faces are named by id and must be the event's. A query with any
    /// selfie needs the guest's `consent` (policy version, channel), which
    /// is recorded before the selfie is looked at; without it the search is
    /// CONSENT_REQUIRED, whichever route it came by.
    pub async fn search(
        &self,
        event: &EventRow,
        people: Vec<Person>,
        limit: u32,
        tiers: Tiers,
        consent: Option<(&str, Channel)>,
    ) -> Result<Search> {
        let limit = check_limit(limit)?;
        if people.iter().any(|p| !p.selfies.is_empty()) {
            let (version, channel) = consent.ok_or_else(consent_required)?;
            self.catalog.record_consent(event, version, channel).await?;
        }
        let mut query = Vec::with_capacity(people.len());
        let mut selfie_face = None;
        let mut model = None;
        for person in people {
            let analysed = futures::future::try_join_all(
                person.selfies.into_iter().map(|s| self.selfie_face(s)),
            )
            .await?;
            if let Some(first) = analysed.first() {
                selfie_face.get_or_insert(first.face.face_box);
                model.get_or_insert_with(|| first.embedding.model.to_string());
            }
            query.push(srch::Person {
                selfies: analysed.iter().map(|a| (&a.embedding).into()).collect(),
                faces: person
                    .faces
                    .iter()
                    .map(|f| srch::FaceRef {
                        photo_id: f.photo_id.to_string(),
                        face_index: f.index,
                    })
                    .collect(),
            });
        }
        let names_faces = query.iter().any(|p| !p.faces.is_empty());
        let model = match model {
            Some(model) => model,
            // Faces only: the query is in the event's own model.
            None => self.event_model(event).await?,
        };
        let started = std::time::Instant::now();
        let response = self
            .peers
            .search
            .clone()
            .search_event(srch::SearchEventRequest {
                studio_id: event.studio_id.to_string(),
                event_id: event.id.to_string(),
                model,
                people: query,
                page_size: limit,
                page_token: String::new(),
                matches_only: tiers == Tiers::MatchOnly,
            })
            .await;
        facepass_analysis::metrics::selfie_stage("search", started);
        let hits = match response {
            Ok(r) => r.into_inner().hits,
            // The store has no faces of the event yet: nobody is in it. (A
            // named face it does not have stays NOT_FOUND.)
            Err(status) if status.code() == tonic::Code::NotFound && !names_faces => Vec::new(),
            Err(status) => return Err(peer("search")(status)),
        };
        let ids: Vec<Uuid> = hits
            .iter()
            .filter_map(|h| Uuid::parse_str(&h.photo_id).ok())
            .collect();
        let photos = self.catalog.photos_in_event(event.id, &ids).await?;
        let matches = hits
            .into_iter()
            .filter_map(|hit| {
                let id = Uuid::parse_str(&hit.photo_id).ok()?;
                // A photo deleted since it was indexed is simply not shown.
                let photo = photos.get(&id)?.clone();
                // The store always names the best face's box.
                let face_box = FaceBox::try_from(hit.r#box?).ok()?;
                let faces = hit
                    .faces
                    .iter()
                    .filter_map(|f| {
                        Some(FaceMatch {
                            id: FaceId {
                                photo_id: id,
                                index: f.face_index,
                            },
                            face_box: FaceBox::try_from(f.r#box?).ok()?,
                            similarity: f.similarity,
                        })
                    })
                    .collect();
                Some(PhotoMatch {
                    photo,
                    similarity: hit.similarity,
                    face_box,
                    tier: if hit.tier == srch::MatchTier::Match as i32 {
                        Tier::Match
                    } else {
                        Tier::Possible
                    },
                    faces,
                })
            })
            .collect();
        Ok(Search {
            matches,
            selfie_face,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facepass_core::ErrorCode;

    #[test]
    fn face_ids_round_trip_and_refuse_anything_else() {
        let id = FaceId {
            photo_id: Uuid::new_v4(),
            index: 12,
        };
        assert_eq!(FaceId::parse("face_id", &id.to_string()).unwrap(), id);
        let photo = id.photo_id;
        for bad in [
            String::new(),
            photo.to_string(),
            format!("{photo}."),
            format!("{photo}.-1"),
            format!("{photo}.+1"),
            format!("{photo}. 1"),
            format!("{photo}.99999"),
            "x.1".to_string(),
        ] {
            let err = FaceId::parse("face_id", &bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument, "{bad:?}");
            assert_eq!(err.field.as_deref(), Some("face_id"));
        }
    }

    #[test]
    fn queries_are_checked_before_any_work() {
        let one = Person {
            selfies: vec![Bytes::from_static(b"x")],
            faces: vec![],
        };
        assert!(check_people(std::slice::from_ref(&one), |_| "selfie".into()).is_ok());
        assert!(check_people(&[], |_| "selfie".into()).is_err());
        assert!(check_people(&vec![one.clone(); 5], |_| "selfie".into()).is_err());
        let empty = Person::default();
        let err =
            check_people(&[one.clone(), empty], |p| format!("together[{}]", p - 1)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("together[0]"));
        let crowded = Person {
            selfies: vec![Bytes::from_static(b"x"); 6],
            faces: vec![],
        };
        assert!(check_people(&[crowded], |_| "selfie".into()).is_err());
        assert_eq!(check_limit(0).unwrap(), DEFAULT_LIMIT);
        assert!(check_limit(MAX_LIMIT + 1).is_err());
    }
}
