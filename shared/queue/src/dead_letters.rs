//! The dead-letter queue, for the operator (`facepass admin dead-letters`):
//! read what is in it without taking anything out, and send messages back
//! to the queue they were dead-lettered from.
//!
//! Listing gets each message without acknowledging it and then closes the
//! channel, so the broker puts every one back in place. Replaying publishes
//! a copy (publisher-confirmed, the `x-death` history dropped) to the queue
//! named by the message's last death, and only then acknowledges the
//! original: a crash in between leaves a duplicate, never a loss, and the
//! consumers' effects are idempotent.

use std::time::{Duration, SystemTime};

use facepass_core::Error;
use facepass_proto::events::v1::{PhotoFailed, PhotoIndexed, PhotoRetrying, PhotoUploaded};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};

use crate::{Event, Topology};

/// One dead-lettered message, as the operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub message_id: String,
    /// The AMQP `type` (the protobuf message name), if set.
    pub message_type: String,
    /// Why it was dead-lettered (`rejected`, `expired`, ...) and from which
    /// queue, by its most recent death.
    pub reason: String,
    pub queue: String,
    pub routing_key: String,
    pub died_at: Option<SystemTime>,
    /// How many times it died that way.
    pub deaths: i64,
    /// The photo it is about, when it is a FacePass event that decodes.
    pub photo_id: String,
    pub event_id: String,
    pub size_bytes: usize,
}

/// Which messages a replay sends back.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only messages with these message ids or about these photos; all
    /// when empty.
    pub message_ids: Vec<String>,
    /// At most this many.
    pub limit: usize,
}

/// Up to `limit` messages of the dead-letter queue, oldest first; nothing
/// leaves the queue.
pub async fn list(
    connection: &Connection,
    topology: &Topology,
    limit: usize,
) -> Result<Vec<DeadLetter>, Error> {
    let channel = connection.create_channel().await.map_err(unavailable)?;
    let mut letters = Vec::new();
    while letters.len() < limit {
        let Some(delivery) = next(&channel, topology).await? else {
            break;
        };
        letters.push(describe(&delivery.properties, &delivery.data));
    }
    // Unacknowledged: closing the channel returns them all to the queue.
    channel
        .close(200, "listed".into())
        .await
        .map_err(unavailable)?;
    Ok(letters)
}

/// Sends matching dead letters back to the queue they died in; returns
/// what was sent. Messages that do not match stay where they are.
pub async fn replay(
    connection: &Connection,
    topology: &Topology,
    filter: &ReplayFilter,
) -> Result<Vec<DeadLetter>, Error> {
    let channel = crate::confirmed_channel(connection)
        .await
        .map_err(unavailable)?;
    let mut replayed = Vec::new();
    // Every message is taken once (unacknowledged ones are not delivered
    // again on this channel), so the loop ends at the queue's end.
    while replayed.len() < filter.limit {
        let Some(delivery) = next(&channel, topology).await? else {
            break;
        };
        let letter = describe(&delivery.properties, &delivery.data);
        if !filter.message_ids.is_empty()
            && !filter
                .message_ids
                .iter()
                .any(|id| *id == letter.message_id || *id == letter.photo_id)
        {
            continue;
        }
        if letter.queue.is_empty() {
            // Never dead-lettered by the broker (published here by hand):
            // there is nowhere to send it back to.
            continue;
        }
        // A letter that died in the indexer queue of an earlier release
        // goes back to the queue that replaced it.
        let queue = if letter.queue == topology.legacy_indexer_queue() {
            topology.indexer_queue()
        } else {
            letter.queue.clone()
        };
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                without_deaths(&delivery.properties),
            )
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        match confirm {
            lapin::Confirmation::Ack(None) => {}
            _ => {
                return Err(Error::unavailable(format!(
                    "rabbitmq did not accept the message for queue {queue}"
                )))
            }
        }
        delivery
            .ack(BasicAckOptions::default())
            .await
            .map_err(unavailable)?;
        replayed.push(letter);
    }
    channel
        .close(200, "replayed".into())
        .await
        .map_err(unavailable)?;
    Ok(replayed)
}

/// The next dead letter, unacknowledged (it goes back to the queue unless
/// acknowledged before the channel closes); `None` at the queue's end.
async fn next(channel: &Channel, topology: &Topology) -> Result<Option<Delivery>, Error> {
    Ok(channel
        .basic_get(
            topology.dead_letter_queue().as_str().into(),
            BasicGetOptions { no_ack: false },
        )
        .await
        .map_err(unavailable)?
        .map(|message| message.delivery))
}

fn unavailable(e: lapin::Error) -> Error {
    Error::unavailable(format!("rabbitmq: {e}"))
}

/// The message's properties without the broker's death history.
fn without_deaths(properties: &BasicProperties) -> BasicProperties {
    let mut properties = properties.clone();
    if let Some(headers) = properties.headers().clone() {
        let mut kept = FieldTable::default();
        for (key, value) in headers.inner() {
            if !key.as_str().starts_with("x-death")
                && !key.as_str().starts_with("x-first-death")
                && !key.as_str().starts_with("x-last-death")
            {
                kept.insert(key.clone(), value.clone());
            }
        }
        properties = properties.with_headers(kept);
    }
    properties
}

/// What the operator needs to know of a message.
pub fn describe(properties: &BasicProperties, body: &[u8]) -> DeadLetter {
    let text = |s: &Option<ShortString>| s.as_ref().map(|s| s.to_string()).unwrap_or_default();
    let message_type = text(properties.kind());
    let mut letter = DeadLetter {
        message_id: text(properties.message_id()),
        message_type: message_type.clone(),
        reason: String::new(),
        queue: String::new(),
        routing_key: String::new(),
        died_at: None,
        deaths: 0,
        photo_id: String::new(),
        event_id: String::new(),
        size_bytes: body.len(),
    };
    // x-death: one table per (queue, reason), the most recent first.
    if let Some(AMQPValue::FieldArray(deaths)) = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-death").cloned())
    {
        if let Some(AMQPValue::FieldTable(last)) = deaths.as_slice().first() {
            let field = |name: &str| last.inner().get(name).cloned();
            letter.reason = string(field("reason"));
            letter.queue = string(field("queue"));
            if let Some(AMQPValue::FieldArray(keys)) = field("routing-keys") {
                letter.routing_key = keys
                    .as_slice()
                    .iter()
                    .map(|k| string(Some(k.clone())))
                    .collect::<Vec<_>>()
                    .join(",");
            }
            letter.deaths = match field("count") {
                Some(AMQPValue::LongLongInt(n)) => n,
                Some(AMQPValue::LongInt(n)) => n.into(),
                _ => 0,
            };
            if let Some(AMQPValue::Timestamp(t)) = field("time") {
                letter.died_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(t));
            }
        }
    }
    let ids = |photo: &str, event: &str| (photo.to_string(), event.to_string());
    let decoded = if message_type == PhotoUploaded::type_name() {
        prost::Message::decode(body)
            .ok()
            .map(|m: PhotoUploaded| ids(&m.photo_id, &m.event_id))
    } else if message_type == PhotoIndexed::type_name() {
        prost::Message::decode(body)
            .ok()
            .map(|m: PhotoIndexed| ids(&m.photo_id, &m.event_id))
    } else if message_type == PhotoFailed::type_name() {
        prost::Message::decode(body)
            .ok()
            .map(|m: PhotoFailed| ids(&m.photo_id, &m.event_id))
    } else if message_type == PhotoRetrying::type_name() {
        prost::Message::decode(body)
            .ok()
            .map(|m: PhotoRetrying| ids(&m.photo_id, &m.event_id))
    } else {
        None
    };
    if let Some((photo_id, event_id)) = decoded {
        letter.photo_id = photo_id;
        letter.event_id = event_id;
    }
    letter
}

fn string(value: Option<AMQPValue>) -> String {
    match value {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(queue: &str, reason: &str, count: i64) -> AMQPValue {
        let mut t = FieldTable::default();
        t.insert("queue".into(), AMQPValue::LongString(queue.into()));
        t.insert("reason".into(), AMQPValue::LongString(reason.into()));
        t.insert("count".into(), AMQPValue::LongLongInt(count));
        t.insert("time".into(), AMQPValue::Timestamp(1_700_000_000));
        t.insert(
            "routing-keys".into(),
            AMQPValue::FieldArray(vec![AMQPValue::LongString("photo.uploaded".into())].into()),
        );
        AMQPValue::FieldTable(t)
    }

    #[test]
    fn a_dead_letter_is_described_by_its_last_death_and_its_photo() {
        let body = prost::Message::encode_to_vec(&PhotoUploaded {
            photo_id: "p1".into(),
            event_id: "e1".into(),
            ..Default::default()
        });
        let mut headers = FieldTable::default();
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(
                vec![
                    death("facepass.indexer.photo-uploaded", "rejected", 2),
                    death("facepass.indexer.retry.1000ms", "expired", 1),
                ]
                .into(),
            ),
        );
        headers.insert("traceparent".into(), AMQPValue::LongString("00-x".into()));
        let props = BasicProperties::default()
            .with_type(PhotoUploaded::type_name().as_str().into())
            .with_message_id("p1".into())
            .with_headers(headers);
        let letter = describe(&props, &body);
        assert_eq!(letter.queue, "facepass.indexer.photo-uploaded");
        assert_eq!(letter.reason, "rejected");
        assert_eq!(letter.deaths, 2);
        assert_eq!(letter.routing_key, "photo.uploaded");
        assert_eq!(
            (letter.photo_id.as_str(), letter.event_id.as_str()),
            ("p1", "e1")
        );
        assert!(letter.died_at.is_some());
        // A replayed copy keeps the trace context, not the death history.
        let copy = without_deaths(&props);
        let kept = copy.headers().clone().unwrap();
        assert!(kept.inner().contains_key("traceparent"));
        assert!(!kept.inner().contains_key("x-death"));
    }

    #[test]
    fn an_unknown_message_is_described_without_a_photo() {
        let letter = describe(&BasicProperties::default(), b"\xff\x00garbage");
        assert_eq!(letter.photo_id, "");
        assert_eq!(letter.queue, "");
        assert_eq!(letter.size_bytes, 9);
    }
}
