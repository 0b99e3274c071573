//! REST for faces and searches (the studio's API key): a photo's faces,
//! deleting one, "more photos of this person", and the studio's own selfie
//! search with several selfies and "together" queries. The guest's search
//! (share link) is in `mod.rs`.

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use bytes::Bytes;
use facepass_core::{parse_id, Error};
use serde::Deserialize;
use utoipa::IntoParams;

use super::model::{Deleted, ErrorBody, PhotoFace, PhotoFaces, SearchForm, SearchResult};
use super::{caller, studio, ApiResult};
use crate::api::person_field;
use crate::domain::Gateway;
use crate::faces::{check_limit, check_people, FaceId, Person, Tiers, MAX_PEOPLE};
use crate::keys::Scope;
use crate::privacy::{Channel, MAX_POLICY_CHARS};

/// `?limit=&tiers=&consent=` of a search.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// At most this many photos (1 to 1000; 0 or absent: 200).
    #[serde(default)]
    #[param(maximum = 1000)]
    pub limit: u32,
    /// `all` (matches and possible matches, the default) or `match_only`.
    #[serde(default)]
    #[param(value_type = Option<super::model::TiersName>)]
    pub tiers: String,
    /// The version of the privacy policy the guest agreed to; selfie searches need it.
    #[serde(default)]
    #[param(max_length = 64)]
    pub consent: String,
}

impl SearchQuery {
    /// The policy version consented to (`?consent=`), None without it.
    pub fn consent(&self) -> Result<Option<&str>, Error> {
        if self.consent.trim().is_empty() {
            return Ok(None);
        }
        facepass_core::text::text("consent", self.consent.trim(), MAX_POLICY_CHARS)?;
        Ok(Some(self.consent.trim()))
    }

    pub fn tiers(&self) -> Result<Tiers, Error> {
        match self.tiers.as_str() {
            "" | "all" => Ok(Tiers::All),
            "match_only" => Ok(Tiers::MatchOnly),
            other => Err(Error::invalid_field(
                "tiers",
                format!("tiers is \"all\" or \"match_only\", not {other:?}"),
            )),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/photos/{photo_id}/faces",
    tag = "faces",
    operation_id = "photo_faces",
    summary = "The faces indexed in a photo",
    params(("photo_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The faces, in the detector's order", body = PhotoFaces),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
pub async fn photo_faces(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<Json<PhotoFaces>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let faces = gw.photo_faces(studio, photo_id).await?;
    Ok(Json(PhotoFaces {
        faces: faces.iter().map(PhotoFace::from).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/faces/{face_id}",
    tag = "faces",
    operation_id = "delete_face",
    summary = "Delete one face (it stays suppressed if the photo is indexed again)",
    params(("face_id" = String, Path, description = "`<photo id>.<index>`", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\.[0-9]{1,4}$")),
    responses(
        (status = 200, description = "What was deleted", body = Deleted),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
pub async fn delete_face(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(face_id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let caller = caller(&gw, &headers, Scope::Upload).await?;
    let face = FaceId::parse("face_id", &face_id)?;
    let faces_deleted = gw.delete_face(caller.studio, face, &caller.actor()).await?;
    Ok(Json(Deleted {
        photos_deleted: None,
        faces_deleted,
    }))
}

/// Photos of the face's event with its person.
#[utoipa::path(
    post,
    path = "/api/v1/faces/{face_id}/search",
    tag = "faces",
    operation_id = "search_by_face",
    summary = "More photos of this person: search by an indexed face",
    params(("face_id" = String, Path, description = "`<photo id>.<index>`", pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\.[0-9]{1,4}$"), SearchQuery),
    responses(
        (status = 200, description = "Photos of the person, best first", body = SearchResult),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["search"])),
)]
pub async fn search_by_face(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(face_id): Path<String>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResult>> {
    let studio = studio(&gw, &headers, Scope::Search).await?;
    let face = FaceId::parse("face_id", &face_id)?;
    let tiers = q.tiers()?;
    check_limit(q.limit)?;
    let event = gw.face_event(studio, face).await?;
    let people = vec![Person {
        selfies: Vec::new(),
        faces: vec![face],
    }];
    let result = gw.search(&event, people, q.limit, tiers, None).await?;
    Ok(Json(SearchResult::new(&result, None)))
}

/// A `multipart/form-data` body: `selfie` parts (1 to 5 selfies of the
/// person looked for), and for "together" queries `together.N` parts
/// (selfies of companion N, 0 to 2) and `together.N.face_id` text parts
/// (their indexed faces).
#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/search",
    tag = "faces",
    operation_id = "search_event",
    summary = "Search an event by selfies, alone or together with companions",
    description = "`selfie` parts: 1 to 5 selfies of the person looked for. \"Together\": \
        `together.N` parts (selfies of companion N, N = 0, 1 or 2) and `together.N.face_id` \
        text parts (a companion's indexed face); a photo matches when every person is in it.",
    params(("event_id" = Uuid, Path), SearchQuery),
    request_body(content = inline(SearchForm), content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The photos, best first", body = SearchResult),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 422, description = "IMAGE_UNDECODABLE, NO_FACE or SELFIE_UNUSABLE", body = ErrorBody),
        (status = 428, description = "CONSENT_REQUIRED: pass `consent`", body = ErrorBody),
    ),
    security(("api_key" = ["search"])),
)]
pub async fn search_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<SearchQuery>,
    multipart: Multipart,
) -> ApiResult<Json<SearchResult>> {
    let studio = studio(&gw, &headers, Scope::Search).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let tiers = q.tiers()?;
    let policy_version = q.consent()?;
    check_limit(q.limit)?;
    let people = read_people(multipart).await?;
    check_people(&people, person_field)?;
    let event = gw.catalog.get_event(studio, event_id).await?;
    let consent = policy_version.map(|v| (v, Channel::Api));
    let result = gw.search(&event, people, q.limit, tiers, consent).await?;
    Ok(Json(SearchResult::new(&result, None)))
}

/// The people of a multipart search body, the searcher first.
pub(crate) async fn read_people(mut multipart: Multipart) -> Result<Vec<Person>, Error> {
    let mut people = vec![Person::default()];
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            // Over the selfie limit (rest::selfies).
            Error::new(
                facepass_core::ErrorCode::ImageTooLarge,
                format!("the selfies are larger than the limit: {e}"),
            )
        } else {
            Error::invalid(format!("the body is not valid multipart/form-data: {e}"))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let (slot, is_face) = match name.as_str() {
            "selfie" => (0, false),
            other => match parse_companion(other) {
                Some(found) => found,
                None => {
                    return Err(Error::invalid_field(
                        other,
                        format!(
                            "unknown part {other:?}: send selfie, together.N or together.N.face_id"
                        ),
                    ))
                }
            },
        };
        if people.len() <= slot {
            people.resize_with(slot + 1, Person::default);
        }
        let data: Bytes = field.bytes().await.map_err(bad)?;
        if is_face {
            let text = std::str::from_utf8(&data)
                .map_err(|_| Error::invalid_field(name.as_str(), format!("{name} is not text")))?;
            people[slot].faces.push(FaceId::parse(&name, text.trim())?);
        } else {
            if data.is_empty() {
                return Err(Error::invalid_field(
                    name.as_str(),
                    format!("{name} is empty"),
                ));
            }
            people[slot].selfies.push(data);
        }
    }
    Ok(people)
}

/// `together.N` (a selfie) or `together.N.face_id` (a face) of companion N:
/// (person slot N + 1, whether a face).
fn parse_companion(name: &str) -> Option<(usize, bool)> {
    let rest = name.strip_prefix("together.")?;
    let (n, is_face) = match rest.strip_suffix(".face_id") {
        Some(n) => (n, true),
        None => (rest, false),
    };
    let n: usize = n.parse().ok().filter(|n| *n < MAX_PEOPLE - 1)?;
    Some((n + 1, is_face))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companion_parts_are_named_strictly() {
        assert_eq!(parse_companion("together.0"), Some((1, false)));
        assert_eq!(parse_companion("together.2.face_id"), Some((3, true)));
        assert_eq!(parse_companion("together.3"), None);
        assert_eq!(parse_companion("together.x"), None);
        assert_eq!(parse_companion("selfies"), None);
    }
}
