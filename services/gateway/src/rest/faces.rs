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
use serde_json::{json, Value};

use super::{caller, photo_json, studio, ApiResult};
use crate::api::person_field;
use crate::domain::Gateway;
use crate::faces::{check_limit, check_people, FaceId, Person, Search, Tier, Tiers, MAX_PEOPLE};
use crate::keys::Scope;
use crate::privacy::{Channel, MAX_POLICY_CHARS};

/// `?limit=&tiers=&consent=` of a search. `consent` is the version of the
/// privacy policy the guest agreed to (selfie searches need it).
#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub limit: u32,
    #[serde(default)]
    pub tiers: String,
    #[serde(default)]
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

/// A search result as JSON. A guest (`guest_token`) gets each photo's
/// download URL and nothing of the studio's records; the studio gets the
/// photo records.
pub fn search_json(result: &Search, guest_token: Option<&str>) -> Value {
    json!({
        "selfie_face": result.selfie_face.map(|b| b.to_array()),
        "matches": result.matches.iter().map(|m| {
            let mut out = json!({
                "photo_id": m.photo.id,
                "similarity": m.similarity,
                "face_box": m.face_box.to_array(),
                "tier": match m.tier { Tier::Match => "match", Tier::Possible => "possible" },
                "faces": m.faces.iter().map(|f| json!({
                    "face_id": f.id.to_string(),
                    "face_box": f.face_box.to_array(),
                    "similarity": f.similarity,
                })).collect::<Vec<_>>(),
            });
            match guest_token {
                Some(token) => {
                    out["url"] = json!(format!("/api/v1/guest/{token}/photos/{}", m.photo.id));
                }
                None => out["photo"] = photo_json(&m.photo),
            }
            out
        }).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/photos/{photo_id}/faces`
pub async fn photo_faces(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let faces = gw.photo_faces(studio, photo_id).await?;
    Ok(Json(json!({
        "faces": faces.iter().map(|f| json!({
            "id": f.id.to_string(),
            "photo_id": f.id.photo_id,
            "box": f.face.face_box.to_array(),
            "landmarks": f.face.landmarks.0.iter().map(|p| [p.x, p.y]).collect::<Vec<_>>(),
            "score": f.face.score,
            "quality": f.quality,
        })).collect::<Vec<_>>(),
    })))
}

/// `DELETE /api/v1/faces/{face_id}`
pub async fn delete_face(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(face_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = caller(&gw, &headers, Scope::Upload).await?;
    let face = FaceId::parse("face_id", &face_id)?;
    let deleted = gw.delete_face(caller.studio, face, &caller.actor()).await?;
    Ok(Json(json!({"faces_deleted": deleted})))
}

/// `POST /api/v1/faces/{face_id}/search?limit=&tiers=`: photos of the face's
/// event with its person.
pub async fn search_by_face(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(face_id): Path<String>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(search_json(&result, None)))
}

/// `POST /api/v1/events/{event_id}/search?limit=&tiers=`, a
/// `multipart/form-data` body: `selfie` parts (1 to 5 selfies of the person
/// looked for), and for "together" queries `together.N` parts (selfies of
/// companion N, 0 to 2) and `together.N.face_id` text parts (their indexed
/// faces).
pub async fn search_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<SearchQuery>,
    multipart: Multipart,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(search_json(&result, None)))
}

/// The people of a multipart search body, the searcher first.
async fn read_people(mut multipart: Multipart) -> Result<Vec<Person>, Error> {
    let mut people = vec![Person::default()];
    let bad = |e: axum::extract::multipart::MultipartError| {
        Error::invalid(format!("the body is not valid multipart/form-data: {e}"))
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
