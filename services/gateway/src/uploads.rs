//! Photo bytes into the object store as they arrive: every upload (gRPC
//! unary or client-streaming, REST) goes through [`Gateway::upload_stream`],
//! which writes the object in parts (`put_multipart`, 1 MiB parts, at most
//! two in flight) while it counts the bytes against `max_upload_bytes` and
//! hashes them, so a photo is never held whole in gateway memory. Also the
//! bulk registration of photos already in the store.

use bytes::Bytes;
use facepass_core::{Error, ErrorCode, Result};
use futures::{Stream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::WriteMultipart;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::catalog::PhotoRow;
use crate::domain::{Gateway, NewRegistration, NewUpload};

/// Size of the parts an upload is written in.
pub const PART_BYTES: usize = 1 << 20;
/// Parts of one upload written at once (memory: about this many + 1 parts).
const PARTS_IN_FLIGHT: usize = 2;
/// Most photos one RegisterPhotos call takes.
pub const MAX_BULK: usize = 1000;
/// Registrations of one bulk call checked at once.
const BULK_CONCURRENCY: usize = 16;

/// What streaming an upload found out about its bytes.
#[derive(Debug, Clone)]
pub struct Streamed {
    pub size: u64,
    pub sha256: String,
    /// From the first bytes.
    pub content_type: Option<String>,
}

fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::ImageTooLarge,
        format!("photo is larger than the limit of {limit} bytes"),
    )
}

/// Counts, hashes and sniffs the bytes of an upload as they pass.
struct Meter {
    size: u64,
    limit: usize,
    hasher: Sha256,
    head: Vec<u8>,
}

impl Meter {
    fn new(limit: usize) -> Self {
        Meter {
            size: 0,
            limit,
            hasher: Sha256::new(),
            head: Vec::with_capacity(32),
        }
    }

    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.limit as u64 {
            return Err(too_large(self.limit));
        }
        self.hasher.update(chunk);
        if self.head.len() < 32 {
            let n = (32 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }

    fn done(self) -> Result<Streamed> {
        if self.size == 0 {
            return Err(Error::invalid_field("content", "content is empty"));
        }
        Ok(Streamed {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            content_type: facepass_core::media::image_type(&self.head).map(str::to_string),
        })
    }
}

impl Gateway {
    /// Writes `chunks` to the object at `key`, part by part; on any error
    /// (the caller's stream, the limit, the store) the partial upload is
    /// aborted and nothing stays.
    async fn write_object<S>(&self, key: &str, mut chunks: S) -> Result<Streamed>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let path =
            ObjectPath::parse(key).map_err(|e| Error::internal(format!("object key: {e}")))?;
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| crate::domain::storage_unavailable("put", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut meter = Meter::new(self.config.max_upload_bytes);
        let failed = loop {
            let chunk = match chunks.next().await {
                None => break None,
                Some(Err(e)) => break Some(e),
                Some(Ok(chunk)) => chunk,
            };
            if let Err(e) = meter.take(&chunk) {
                break Some(e);
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                break Some(crate::domain::storage_unavailable("put part", e));
            }
            writer.put(chunk);
        };
        let streamed = match failed {
            Some(e) => Err(e),
            None => meter.done(),
        };
        match streamed {
            Ok(streamed) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| crate::domain::storage_unavailable("finish", e))?;
                Ok(streamed)
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting a failed upload");
                }
                Err(e)
            }
        }
    }

    /// Hashes an upload without storing it (a repeat of an existing one).
    async fn hash_only<S>(&self, mut chunks: S) -> Result<Streamed>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let mut meter = Meter::new(self.config.max_upload_bytes);
        while let Some(chunk) = chunks.next().await {
            meter.take(&chunk?)?;
        }
        meter.done()
    }

    /// Stores an upload arriving as `chunks`, then the photo row and its
    /// event. With an `external_id` the event already has: the existing
    /// photo when the bytes are the same (a retry), else ALREADY_EXISTS
    /// naming it. Returns (photo, whether it was created).
    pub async fn upload_stream<S>(
        &self,
        studio: Uuid,
        event_id: Uuid,
        new: NewUpload<'_>,
        chunks: S,
    ) -> Result<(PhotoRow, bool)>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        let external_id = Self::check_external_id(new.external_id)?;
        let file_name = Self::check_file_name(new.file_name)?;
        let event = self.catalog.get_event(studio, event_id).await?;
        let same = |existing: PhotoRow, sha256: &str| -> Result<PhotoRow> {
            if existing.content_sha256.as_deref() == Some(sha256) {
                Ok(existing)
            } else {
                Err(Self::conflict(&existing, "other content"))
            }
        };
        if let Some(external_id) = &external_id {
            if let Some(existing) = self
                .catalog
                .photo_by_external_id(event.id, external_id)
                .await?
            {
                let streamed = self.hash_only(chunks).await?;
                return same(existing, &streamed.sha256).map(|p| (p, false));
            }
        }
        let photo_id = Uuid::new_v4();
        let key = format!("studios/{studio}/events/{}/photos/{photo_id}", event.id);
        // Journaled first: if this process dies before the row commits, the
        // sweeper finds the object (or its staged parts) and removes it.
        self.catalog.journal_object(&key).await?;
        let streamed = match self.write_object(&key, chunks).await {
            Ok(streamed) => streamed,
            Err(e) => {
                // write_object removed what it wrote; the sweeper retries
                // if this fails too.
                let _ = self.catalog.forget_object(&key).await;
                return Err(e);
            }
        };
        let row = PhotoRow {
            file_name,
            content_type: streamed.content_type.clone(),
            content_sha256: Some(streamed.sha256.clone()),
            ..self.new_photo_row(
                photo_id,
                &event,
                external_id,
                key.clone(),
                true,
                streamed.size as i64,
            )
        };
        match self.insert_photo(&row, new.priority).await {
            Ok(Some(())) => Ok((row, true)),
            Ok(None) => {
                // A concurrent call with the same external_id won: its
                // photo is the one; this call's object must not stay.
                self.delete_object(&key).await?;
                self.catalog.forget_object(&key).await?;
                same(self.existing_photo(&row).await?, &streamed.sha256).map(|p| (p, false))
            }
            Err(e) => {
                // The row is not there, so the object must not stay either
                // (left to the sweeper if this fails too).
                if self.delete_object(&key).await.is_ok() {
                    let _ = self.catalog.forget_object(&key).await;
                }
                Err(e)
            }
        }
    }

    /// Registers up to 1000 objects of the studio in one call, each as
    /// RegisterPhoto would, 16 at a time; one result per item, in order.
    pub async fn register_many(
        &self,
        studio: Uuid,
        event_id: Uuid,
        items: &[NewRegistration<'_>],
    ) -> Result<Vec<Result<(PhotoRow, bool)>>> {
        if items.is_empty() || items.len() > MAX_BULK {
            return Err(Error::invalid_field(
                "items",
                format!(
                    "a call registers 1 to {MAX_BULK} photos, not {}",
                    items.len()
                ),
            ));
        }
        // The event once, before any item: a wrong event fails the call.
        self.catalog.get_event(studio, event_id).await?;
        Ok(futures::stream::iter(0..items.len())
            .map(|i| self.register_photo(studio, event_id, items[i]))
            .buffered(BULK_CONCURRENCY)
            .collect()
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_counts_hashes_and_sniffs() {
        let mut m = Meter::new(10);
        m.take(b"\xFF\xD8\xFF\xE0").unwrap();
        m.take(b"abcd").unwrap();
        let s = m.done().unwrap();
        assert_eq!(s.size, 8);
        assert_eq!(s.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(
            s.sha256,
            hex::encode(Sha256::digest(b"\xFF\xD8\xFF\xE0abcd"))
        );
        let mut m = Meter::new(10);
        m.take(b"0123456789").unwrap();
        assert_eq!(m.take(b"x").unwrap_err().code, ErrorCode::ImageTooLarge);
        assert_eq!(
            Meter::new(10).done().unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
