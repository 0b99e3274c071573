//! What a studio shows its guests: its name, an accent colour, a logo and a
//! link to its privacy text (the guest's consent step names the studio as
//! the one who processes the face). And editing an event's name and date.

use bytes::Bytes;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use facepass_core::{text, Error, ErrorCode, Result};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use uuid::Uuid;

use crate::catalog::{db, Catalog, EventRow};
use crate::domain::Gateway;
use crate::schema::{events, studios};

/// The largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;
/// The longest privacy URL.
pub const MAX_URL_CHARS: usize = 1024;

/// A studio's branding as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = studios)]
pub struct BrandingRow {
    pub id: Uuid,
    pub name: String,
    pub accent_color: Option<String>,
    pub privacy_url: Option<String>,
    pub logo_key: Option<String>,
}

/// A change of branding: `None` keeps a field, `Some("")` clears it.
#[derive(Debug, Default)]
pub struct BrandingChange<'a> {
    pub name: Option<&'a str>,
    pub accent_color: Option<&'a str>,
    pub privacy_url: Option<&'a str>,
}

/// `#rrggbb`, lower case.
pub fn check_color(color: &str) -> Result<String> {
    let c = color.trim().to_ascii_lowercase();
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(Error::invalid_field(
            "accent_color",
            format!("accent_color is a colour as #rrggbb, not {color:?}"),
        ));
    }
    Ok(c)
}

/// An https:// (or http://) URL without credentials.
pub fn check_url(url: &str) -> Result<String> {
    let url = url.trim();
    text::text("privacy_url", url, MAX_URL_CHARS)?;
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::invalid_field("privacy_url", format!("privacy_url is not a URL: {e}"))
    })?;
    if !matches!(parsed.scheme(), "https" | "http")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.host_str().is_none()
    {
        return Err(Error::invalid_field(
            "privacy_url",
            "privacy_url is an http(s):// address without credentials",
        ));
    }
    Ok(parsed.to_string())
}

impl Catalog {
    pub async fn branding(&self, studio: Uuid) -> Result<BrandingRow> {
        let mut conn = self.conn().await?;
        studios::table
            .find(studio)
            .select(BrandingRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found("studio not found"))
    }

    pub async fn set_branding(
        &self,
        studio: Uuid,
        change: BrandingChange<'_>,
    ) -> Result<BrandingRow> {
        let name = change
            .name
            .map(|n| {
                text::required_text("name", n.trim(), text::MAX_NAME_CHARS)?;
                Ok::<_, Error>(n.trim().to_string())
            })
            .transpose()?;
        let accent = change
            .accent_color
            .map(|c| {
                if c.trim().is_empty() {
                    Ok(None)
                } else {
                    check_color(c).map(Some)
                }
            })
            .transpose()?;
        let privacy = change
            .privacy_url
            .map(|u| {
                if u.trim().is_empty() {
                    Ok(None)
                } else {
                    check_url(u).map(Some)
                }
            })
            .transpose()?;
        let mut conn = self.conn().await?;
        let current = studios::table
            .find(studio)
            .select(BrandingRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found("studio not found"))?;
        diesel::update(studios::table.find(studio))
            .set((
                studios::name.eq(name.unwrap_or(current.name)),
                studios::accent_color.eq(accent.unwrap_or(current.accent_color)),
                studios::privacy_url.eq(privacy.unwrap_or(current.privacy_url)),
            ))
            .returning(BrandingRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db)
    }

    async fn set_logo_key(&self, studio: Uuid, key: Option<&str>) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::update(studios::table.find(studio))
            .set(studios::logo_key.eq(key))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Renames an event and/or sets its date (`Some(None)` clears it).
    pub async fn edit_event(
        &self,
        studio: Uuid,
        event_id: Uuid,
        name: Option<&str>,
        event_date: Option<Option<NaiveDate>>,
    ) -> Result<EventRow> {
        let name = name
            .map(|n| {
                text::required_text("name", n.trim(), text::MAX_NAME_CHARS)?;
                Ok::<_, Error>(n.trim().to_string())
            })
            .transpose()?;
        let mut conn = self.conn().await?;
        let current: EventRow = events::table
            .filter(events::id.eq(event_id))
            .filter(events::studio_id.eq(studio))
            .filter(events::deleting_at.is_null())
            .select(EventRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("event {event_id} not found")))?;
        diesel::update(events::table.find(event_id))
            .set((
                events::name.eq(name.unwrap_or(current.name)),
                events::event_date.eq(event_date.unwrap_or(current.event_date)),
            ))
            .returning(EventRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db)
    }
}

fn logo_key(studio: Uuid) -> String {
    format!("studios/{studio}/branding/logo")
}

impl Gateway {
    /// Stores a studio's logo (PNG, JPEG or WebP, at most 512 KiB).
    pub async fn set_logo(&self, studio: Uuid, bytes: Bytes) -> Result<()> {
        if bytes.is_empty() {
            return Err(Error::invalid_field("logo", "the logo is empty"));
        }
        if bytes.len() > MAX_LOGO_BYTES {
            return Err(Error::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "the logo is {} bytes, the limit is {MAX_LOGO_BYTES}",
                    bytes.len()
                ),
            ));
        }
        match facepass_core::media::image_type(&bytes) {
            Some("image/png" | "image/jpeg" | "image/webp") => {}
            _ => {
                return Err(Error::new(
                    ErrorCode::ImageUndecodable,
                    "a logo is a PNG, JPEG or WebP image",
                )
                .with_field("logo"))
            }
        }
        let key = logo_key(studio);
        self.store
            .put(&ObjectPath::from(key.as_str()), bytes.into())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "storing a logo failed");
                Error::unavailable("photo storage is unavailable, try again")
            })?;
        self.catalog.set_logo_key(studio, Some(&key)).await
    }

    pub async fn delete_logo(&self, studio: Uuid) -> Result<()> {
        self.catalog.set_logo_key(studio, None).await?;
        self.delete_object(&logo_key(studio)).await
    }

    /// The studio's logo, if it has one.
    pub async fn logo(&self, studio: Uuid) -> Result<Bytes> {
        let branding = self.catalog.branding(studio).await?;
        let key = branding
            .logo_key
            .ok_or_else(|| Error::not_found("the studio has no logo"))?;
        self.store
            .get(&ObjectPath::from(key.as_str()))
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => Error::not_found("the studio has no logo"),
                other => {
                    tracing::warn!(error = %other, "reading a logo failed");
                    Error::unavailable("photo storage is unavailable, try again")
                }
            })?
            .bytes()
            .await
            .map_err(|_| Error::unavailable("photo storage is unavailable, try again"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_urls_are_checked() {
        assert_eq!(check_color("#B45309").unwrap(), "#b45309");
        assert!(check_color("red").is_err());
        assert!(check_color("#12345").is_err());
        assert!(check_color("#12345g").is_err());
        assert_eq!(
            check_url("https://studio.example/privacy").unwrap(),
            "https://studio.example/privacy"
        );
        assert!(check_url("javascript:alert(1)").is_err());
        assert!(check_url("https://user:pw@studio.example/").is_err());
        assert!(check_url("not a url").is_err());
    }
}
