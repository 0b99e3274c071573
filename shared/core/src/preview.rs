//! Where an event photo's previews live in the object store, and their
//! sizes. The indexer asks the detector for them, the gateway serves and
//! deletes them: one layout for both. Previews are always FacePass's own
//! objects, under the event's folder (so deleting the event's folder takes
//! them too), even for a photo registered from a key elsewhere.

/// A preview size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// About 400 px on the long side: the guest's grid.
    Thumb,
    /// About 1600 px: the viewer on a screen.
    Screen,
}

impl Size {
    pub const ALL: [Size; 2] = [Size::Thumb, Size::Screen];

    /// The long side, in pixels.
    pub const fn max_side(self) -> u32 {
        match self {
            Size::Thumb => 400,
            Size::Screen => 1600,
        }
    }

    /// The name in URLs (`?size=thumb`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Size::Thumb => "thumb",
            Size::Screen => "screen",
        }
    }

    pub fn parse(name: &str) -> Option<Size> {
        Size::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The folder of a photo's previews.
pub fn folder(
    studio: &impl std::fmt::Display,
    event: &impl std::fmt::Display,
    photo: &impl std::fmt::Display,
) -> String {
    format!("studios/{studio}/events/{event}/previews/{photo}")
}

/// The key of one preview (a JPEG).
pub fn key(
    studio: &impl std::fmt::Display,
    event: &impl std::fmt::Display,
    photo: &impl std::fmt::Display,
    size: Size,
) -> String {
    format!("{}/{}.jpg", folder(studio, event, photo), size.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_live_in_the_event_folder() {
        assert_eq!(
            key(&"s", &"e", &"p", Size::Thumb),
            "studios/s/events/e/previews/p/thumb.jpg"
        );
        assert_eq!(Size::parse("screen"), Some(Size::Screen));
        assert_eq!(Size::parse("original"), None);
        assert!(Size::Thumb.max_side() < Size::Screen.max_side());
    }
}
