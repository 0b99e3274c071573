//! From faces to photos: combining several selfies of one person, ranking
//! photos by their best face, "me and them" (several people on distinct
//! faces of one photo), tiers, and keyset pagination. Pure logic, no I/O.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::Candidate;

/// The normalised mean of several L2-normalised embeddings of one person:
/// one query that is closer to the person's other photos than any single
/// selfie tends to be.
pub fn combine(selfies: &[Vec<f32>]) -> Vec<f32> {
    let dim = selfies.first().map_or(0, Vec::len);
    let mut sum = vec![0f32; dim];
    for s in selfies {
        for (acc, v) in sum.iter_mut().zip(s) {
            *acc += v;
        }
    }
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|v| *v /= norm);
    }
    sum
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Match,
    Possible,
}

/// The face chosen for one person in a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceChoice {
    pub face_index: i32,
    pub bbox: Vec<f32>,
    pub similarity: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankedPhoto {
    pub photo_id: Uuid,
    /// The best face's similarity (one person) or the weakest person's.
    pub score: f32,
    pub tier: Tier,
    /// One face per person, in query order.
    pub faces: Vec<FaceChoice>,
}

/// Groups candidate faces by photo and ranks the photos: a photo qualifies
/// when every person can be given a different face at least `possible`
/// similar; among such assignments the one with the best weakest
/// similarity is kept. Ranked by score (descending), then photo id.
pub fn rank(
    candidates: Vec<Candidate>,
    people: usize,
    matched: f32,
    possible: f32,
) -> Vec<RankedPhoto> {
    let mut by_photo: BTreeMap<Uuid, Vec<Candidate>> = BTreeMap::new();
    for c in candidates {
        by_photo.entry(c.photo_id).or_default().push(c);
    }
    let mut ranked = Vec::with_capacity(by_photo.len());
    for (photo_id, faces) in by_photo {
        if let Some((score, chosen)) = best_assignment(&faces, people, possible) {
            ranked.push(RankedPhoto {
                photo_id,
                score,
                tier: if score >= matched {
                    Tier::Match
                } else {
                    Tier::Possible
                },
                faces: chosen
                    .into_iter()
                    .enumerate()
                    .map(|(person, fi)| FaceChoice {
                        face_index: faces[fi].face_index,
                        bbox: faces[fi].bbox.clone(),
                        similarity: faces[fi].similarities[person].unwrap_or(0.0),
                    })
                    .collect(),
            });
        }
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.photo_id.cmp(&b.photo_id))
    });
    ranked
}

/// The assignment of distinct faces to people that maximises the smallest
/// similarity (exhaustive search; people are few and so are faces above
/// the threshold in one photo).
fn best_assignment(faces: &[Candidate], people: usize, possible: f32) -> Option<(f32, Vec<usize>)> {
    fn sim(face: &Candidate, person: usize, possible: f32) -> Option<f32> {
        face.similarities
            .get(person)
            .copied()
            .flatten()
            .filter(|s| *s >= possible)
    }
    fn go(
        faces: &[Candidate],
        person: usize,
        people: usize,
        possible: f32,
        used: &mut Vec<usize>,
        floor: f32,
        best: &mut Option<(f32, Vec<usize>)>,
    ) {
        if person == people {
            if best
                .as_ref()
                .is_none_or(|(b, chosen)| floor > *b || (floor == *b && *used < *chosen))
            {
                *best = Some((floor, used.clone()));
            }
            return;
        }
        for (fi, face) in faces.iter().enumerate() {
            if used.contains(&fi) {
                continue;
            }
            if let Some(s) = sim(face, person, possible) {
                let floor = floor.min(s);
                if best.as_ref().is_some_and(|(b, _)| floor < *b) {
                    continue;
                }
                used.push(fi);
                go(faces, person + 1, people, possible, used, floor, best);
                used.pop();
            }
        }
    }
    let mut best = None;
    // Sorting by face index makes ties resolve the same way every time.
    let mut order: Vec<usize> = (0..faces.len()).collect();
    order.sort_by_key(|&i| faces[i].face_index);
    let sorted: Vec<Candidate> = order.iter().map(|&i| faces[i].clone()).collect();
    go(
        &sorted,
        0,
        people,
        possible,
        &mut Vec::new(),
        f32::INFINITY,
        &mut best,
    );
    best.map(|(score, chosen)| (score, chosen.into_iter().map(|i| order[i]).collect()))
}

/// Identifies a query, so a page token cannot be replayed against another.
pub fn query_digest(
    event_id: Uuid,
    model: &str,
    queries: &[Vec<f32>],
    matches_only: bool,
) -> String {
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update(model.as_bytes());
    h.update([matches_only as u8]);
    for q in queries {
        h.update((q.len() as u32).to_le_bytes());
        for v in q {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(&h.finalize()[..8])
}

/// Position after which the next page starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub score: f32,
    pub photo_id: Uuid,
}

pub fn encode_token(cursor: Cursor, digest: &str) -> String {
    format!(
        "{:08x}{}{}",
        cursor.score.to_bits(),
        cursor.photo_id.simple(),
        digest
    )
}

/// The cursor in `token`, or why the token is not valid for this query.
pub fn decode_token(token: &str, digest: &str) -> Result<Cursor, &'static str> {
    if token.len() != 8 + 32 + digest.len() || !token.is_ascii() {
        return Err("page_token is malformed");
    }
    let (score, rest) = token.split_at(8);
    let (photo, tail) = rest.split_at(32);
    if tail != digest {
        return Err("page_token belongs to a different query");
    }
    let bits = u32::from_str_radix(score, 16).map_err(|_| "page_token is malformed")?;
    let photo_id = Uuid::parse_str(photo).map_err(|_| "page_token is malformed")?;
    Ok(Cursor {
        score: f32::from_bits(bits),
        photo_id,
    })
}

/// The photos after `cursor` (all when None), at most `size` of them, and
/// the cursor of the next page when more remain.
pub fn page(
    ranked: &[RankedPhoto],
    cursor: Option<Cursor>,
    size: usize,
) -> (&[RankedPhoto], Option<Cursor>) {
    let start = match cursor {
        None => 0,
        Some(c) => ranked.partition_point(|p| {
            p.score > c.score || (p.score == c.score && p.photo_id <= c.photo_id)
        }),
    };
    let end = (start + size).min(ranked.len());
    let slice = &ranked[start..end];
    let next = (end < ranked.len()).then(|| {
        let last = &ranked[end - 1];
        Cursor {
            score: last.score,
            photo_id: last.photo_id,
        }
    });
    (slice, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(photo: u128, index: i32, sims: &[Option<f32>]) -> Candidate {
        Candidate {
            photo_id: Uuid::from_u128(photo),
            face_index: index,
            bbox: vec![index as f32, 0.0, 1.0, 1.0],
            similarities: sims.to_vec(),
        }
    }

    #[test]
    fn one_person_photos_are_ranked_by_their_best_face() {
        let ranked = rank(
            vec![
                face(1, 0, &[Some(0.45)]),
                face(1, 1, &[Some(0.8)]),
                face(2, 0, &[Some(0.6)]),
                face(3, 0, &[Some(0.41)]),
                face(4, 0, &[None]),
            ],
            1,
            0.5,
            0.4,
        );
        let ids: Vec<u128> = ranked.iter().map(|r| r.photo_id.as_u128()).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(ranked[0].faces[0].face_index, 1);
        assert_eq!(ranked[0].score, 0.8);
        assert_eq!(ranked[0].tier, Tier::Match);
        assert_eq!(ranked[2].tier, Tier::Possible);
    }

    #[test]
    fn me_and_them_needs_every_person_on_a_different_face() {
        let ranked = rank(
            vec![
                // photo 1: both people, on different faces
                face(1, 0, &[Some(0.9), None]),
                face(1, 1, &[None, Some(0.7)]),
                // photo 2: only the first person
                face(2, 0, &[Some(0.9), None]),
                // photo 3: one face resembling both: not two people
                face(3, 0, &[Some(0.8), Some(0.8)]),
                // photo 4: the assignment must not be greedy: face 0 suits
                // person 0 best but is the only face for person 1
                face(4, 0, &[Some(0.9), Some(0.6)]),
                face(4, 1, &[Some(0.7), None]),
            ],
            2,
            0.5,
            0.4,
        );
        let ids: Vec<u128> = ranked.iter().map(|r| r.photo_id.as_u128()).collect();
        assert_eq!(ids, [1, 4]);
        assert_eq!(ranked[0].score, 0.7);
        assert_eq!(ranked[1].score, 0.6);
        assert_eq!(ranked[1].faces[0].face_index, 1);
        assert_eq!(ranked[1].faces[1].face_index, 0);
    }

    #[test]
    fn combining_selfies_gives_a_unit_mean() {
        let a = vec![1.0, 0.0, 0.0];
        let b = vec![0.0, 1.0, 0.0];
        let c = combine(&[a, b]);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((c[0] - s).abs() < 1e-6 && (c[1] - s).abs() < 1e-6 && c[2] == 0.0);
    }

    #[test]
    fn pages_cover_every_photo_once_and_tokens_are_bound_to_the_query() {
        let candidates: Vec<Candidate> = (0..25u128)
            .map(|i| face(i, 0, &[Some(0.5 + (i % 7) as f32 / 100.0)]))
            .collect();
        let ranked = rank(candidates, 1, 0.5, 0.4);
        let digest = query_digest(Uuid::nil(), "m", &[vec![1.0]], false);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (slice, next) = page(&ranked, cursor, 10);
            seen.extend(slice.iter().map(|p| p.photo_id));
            match next {
                None => break,
                Some(c) => {
                    let token = encode_token(c, &digest);
                    cursor = Some(decode_token(&token, &digest).unwrap());
                    let other = query_digest(Uuid::nil(), "m", &[vec![0.5]], false);
                    assert!(decode_token(&token, &other).is_err());
                }
            }
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen, ranked.iter().map(|p| p.photo_id).collect::<Vec<_>>());
        assert!(decode_token("zz", &digest).is_err());
    }
}
