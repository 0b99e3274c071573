//! RabbitMQ for FacePass: the topology (declared idempotently by every
//! service that uses it), publishing with publisher confirms, and the event
//! envelope (protobuf body, `application/x-protobuf`, the message's full
//! name in the `type` property, persistent delivery).
//!
//! Topology, with `<ns>` the configured namespace (default `facepass`):
//!
//! | name | kind | purpose |
//! |---|---|---|
//! | `<ns>.events` | topic exchange | `photo.uploaded`, `photo.indexed`, `photo.failed`, `photo.retrying` |
//! | `<ns>.dlx` | topic exchange | dead letters (undecodable messages) |
//! | `<ns>.indexer.photos` | priority queue (`x-max-priority` [`MAX_PRIORITY`]), bound to `photo.uploaded` | the indexer's work: live uploads ([`PRIORITY_LIVE`]) before bulk imports ([`PRIORITY_BULK`]) |
//! | `<ns>.indexer.retry.<ms>ms` | one queue per retry delay, queue TTL `<ms>`, dead-letters back to `photo.uploaded` | delayed retries (declared by the indexer) |
//! | `<ns>.gateway.photo-outcomes` | queue, bound to `photo.indexed`, `photo.failed` and `photo.retrying` | status updates |
//! | `<ns>.dead-letters` | queue, bound to `<ns>.dlx` with `#` | kept for inspection |

use facepass_core::{Error, ErrorCode};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::{Deserialize, Serialize};

pub use lapin;

pub mod dead_letters;

/// Routing keys of the events.
pub const PHOTO_UPLOADED: &str = "photo.uploaded";
pub const PHOTO_INDEXED: &str = "photo.indexed";
pub const PHOTO_FAILED: &str = "photo.failed";
pub const PHOTO_RETRYING: &str = "photo.retrying";

/// The AMQP priority of a `photo.uploaded` message for a photo uploaded
/// live (during the event, one by one): delivered before every waiting
/// bulk message.
pub const PRIORITY_LIVE: u8 = 2;
/// The AMQP priority of a bulk import's `photo.uploaded` (and of messages
/// published before priorities existed, which carry none).
pub const PRIORITY_BULK: u8 = 0;
/// The indexer queue's `x-max-priority`: room above [`PRIORITY_LIVE`]
/// without declaring the queue again (its arguments are fixed for life).
pub const MAX_PRIORITY: u8 = 3;

/// A message carried on the events exchange: its routing key is here, its
/// type name (the AMQP `type` property) is the message's own full protobuf
/// name (`prost::Name`). This is the one place that pairs the two.
pub trait Event: prost::Message + prost::Name + Default {
    const ROUTING_KEY: &'static str;

    /// `facepass.events.v1.PhotoUploaded` and so on.
    fn type_name() -> String {
        Self::full_name()
    }
}

impl Event for facepass_proto::events::v1::PhotoUploaded {
    const ROUTING_KEY: &'static str = PHOTO_UPLOADED;
}

impl Event for facepass_proto::events::v1::PhotoIndexed {
    const ROUTING_KEY: &'static str = PHOTO_INDEXED;
}

impl Event for facepass_proto::events::v1::PhotoFailed {
    const ROUTING_KEY: &'static str = PHOTO_FAILED;
}

impl Event for facepass_proto::events::v1::PhotoRetrying {
    const ROUTING_KEY: &'static str = PHOTO_RETRYING;
}

/// Content type of every FacePass event.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// The `[amqp]` section of the gateway's and indexer's configs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    pub url: String,
    /// Prefix of every exchange and queue name (isolates test runs).
    pub namespace: String,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            namespace: "facepass".into(),
        }
    }
}

impl AmqpConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.url.starts_with("amqp://") && !self.url.starts_with("amqps://") {
            problems.push("amqp.url must be an amqp:// URL".into());
        }
        if self.namespace.is_empty()
            || !self
                .namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            problems.push("amqp.namespace must be letters, digits, '-', '_' or '.'".into());
        }
        problems
    }

    pub fn topology(&self) -> Topology {
        Topology {
            ns: self.namespace.clone(),
        }
    }
}

/// Names of the exchanges and queues in one namespace.
#[derive(Debug, Clone)]
pub struct Topology {
    ns: String,
}

impl Topology {
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.ns)
    }
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.ns)
    }
    /// The indexer's priority queue.
    pub fn indexer_queue(&self) -> String {
        format!("{}.indexer.photos", self.ns)
    }
    /// The indexer's queue before priorities (no `x-max-priority`; a
    /// queue's arguments cannot change): [`Topology::retire_legacy_queue`]
    /// empties it into [`Topology::indexer_queue`] and deletes it.
    pub fn legacy_indexer_queue(&self) -> String {
        format!("{}.indexer.photo-uploaded", self.ns)
    }

    /// Moves what waits in the pre-priority indexer queue, if it still
    /// exists, into the priority queue (confirmed, at bulk priority, in
    /// order), then deletes it if it is empty and unused; unbinds it first
    /// so nothing new arrives. Returns how many messages moved. Several
    /// indexers may run it at once: each message is taken by one of them,
    /// and one still being moved keeps the queue (it is not empty). An
    /// indexer of an older release still running during a rolling upgrade
    /// consumes the old queue (which is then not deleted) and binds it
    /// again when it reconnects; its messages are then indexed twice, which
    /// the indexer's idempotence makes harmless, and the indexer retires it
    /// again every 10 minutes.
    pub async fn retire_legacy_queue(&self, connection: &Connection) -> Result<u64, Error> {
        use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions};
        let legacy = self.legacy_indexer_queue();
        let unavailable = |e: lapin::Error| Error::unavailable(format!("rabbitmq: {e}"));
        // A passive declare of a missing queue closes its channel: a
        // channel of its own.
        let probe = connection.create_channel().await.map_err(unavailable)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if probe
            .queue_declare(legacy.as_str().into(), passive, FieldTable::default())
            .await
            .is_err()
        {
            return Ok(0);
        }
        let _ = probe.close(200, "".into()).await;
        let channel = confirmed_channel(connection).await.map_err(unavailable)?;
        channel
            .queue_unbind(
                legacy.as_str().into(),
                self.events_exchange().as_str().into(),
                PHOTO_UPLOADED.into(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let mut moved = 0u64;
        while let Some(message) = channel
            .basic_get(legacy.as_str().into(), BasicGetOptions::default())
            .await
            .map_err(unavailable)?
        {
            let delivery = message.delivery;
            let confirm = channel
                .basic_publish(
                    "".into(),
                    self.indexer_queue().as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &delivery.data,
                    delivery.properties.clone().with_priority(PRIORITY_BULK),
                )
                .await
                .map_err(unavailable)?
                .await
                .map_err(unavailable)?;
            if !matches!(confirm, lapin::Confirmation::Ack(None)) {
                return Err(Error::unavailable(format!(
                    "rabbitmq did not take a message moved from {legacy}"
                )));
            }
            delivery
                .ack(BasicAckOptions::default())
                .await
                .map_err(unavailable)?;
            moved += 1;
        }
        channel
            .queue_delete(
                legacy.as_str().into(),
                // Neither a message left nor a consumer (an indexer of the
                // older release, or another one moving it): else it stays,
                // for the next start.
                QueueDeleteOptions {
                    if_empty: true,
                    if_unused: true,
                    ..QueueDeleteOptions::default()
                },
            )
            .await
            .map_err(unavailable)?;
        Ok(moved)
    }
    /// The retry queue whose messages wait `delay_ms` before going back to
    /// `photo.uploaded`. One queue per delay: RabbitMQ expires messages only
    /// at a queue's head, so mixed per-message delays would block each other.
    pub fn retry_queue(&self, delay_ms: u64) -> String {
        format!("{}.indexer.retry.{delay_ms}ms", self.ns)
    }

    /// Declares the retry queues for the given delays.
    pub async fn declare_retry_queues(
        &self,
        channel: &Channel,
        delays_ms: &[u64],
    ) -> lapin::Result<()> {
        for &delay in delays_ms {
            let mut args = FieldTable::default();
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.events_exchange().as_str().into()),
            );
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(PHOTO_UPLOADED.into()),
            );
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(delay as i64));
            channel
                .queue_declare(
                    self.retry_queue(delay).as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    args,
                )
                .await?;
        }
        Ok(())
    }
    pub fn outcomes_queue(&self) -> String {
        format!("{}.gateway.photo-outcomes", self.ns)
    }
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letters", self.ns)
    }

    /// Declares everything; safe to call from every service at every start.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        for exchange in [self.events_exchange(), self.dead_letter_exchange()] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Topic,
                    durable_exchange,
                    FieldTable::default(),
                )
                .await?;
        }
        let mut dead_lettered = FieldTable::default();
        dead_lettered.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange().as_str().into()),
        );
        let mut prioritised = dead_lettered.clone();
        prioritised.insert(
            "x-max-priority".into(),
            AMQPValue::ShortShortUInt(MAX_PRIORITY),
        );
        let queues = [
            (
                self.indexer_queue(),
                prioritised,
                vec![(self.events_exchange(), PHOTO_UPLOADED)],
            ),
            (
                self.outcomes_queue(),
                dead_lettered,
                vec![
                    (self.events_exchange(), PHOTO_INDEXED),
                    (self.events_exchange(), PHOTO_FAILED),
                    (self.events_exchange(), PHOTO_RETRYING),
                ],
            ),
            (
                self.dead_letter_queue(),
                FieldTable::default(),
                vec![(self.dead_letter_exchange(), "#")],
            ),
        ];
        for (queue, args, bindings) in queues {
            channel
                .queue_declare(queue.as_str().into(), durable_queue, args)
                .await?;
            for (exchange, key) in bindings {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        exchange.as_str().into(),
                        key.into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// The delay before retry `attempt` (1-based): `base * 2^(attempt-1)`,
/// capped at `max`.
pub fn retry_delay_ms(base_ms: u64, max_ms: u64, attempt: u32) -> u64 {
    base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
        .min(max_ms)
}

/// Every distinct retry delay for `max_attempts` attempts; with
/// `max_attempts` 0 (no cap: retries are bounded by time), every delay up
/// to and including the ceiling `max_ms`.
pub fn retry_delays_ms(base_ms: u64, max_ms: u64, max_attempts: u32) -> Vec<u64> {
    let attempts = if max_attempts == 0 { 64 } else { max_attempts };
    let mut delays: Vec<u64> = (1..attempts)
        .map(|a| retry_delay_ms(base_ms, max_ms, a))
        .collect();
    delays.dedup();
    delays
}

/// Connects, naming the connection after the service for the broker's UI.
pub async fn connect(url: &str, service: &str) -> lapin::Result<Connection> {
    Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(service.into()),
    )
    .await
}

/// A channel in publisher-confirm mode.
pub async fn confirmed_channel(connection: &Connection) -> lapin::Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// One event to publish.
pub struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// Full protobuf name, e.g. `facepass.events.v1.PhotoUploaded`.
    pub message_type: &'a str,
    pub payload: &'a [u8],
    /// Per-message TTL (retry delay), in milliseconds.
    pub expiration_ms: Option<u64>,
    pub message_id: &'a str,
    /// Message headers: the W3C trace context (`traceparent`, `tracestate`)
    /// that continues the publisher's trace in the consumer.
    pub headers: &'a [(String, String)],
    /// The AMQP priority ([`PRIORITY_LIVE`], [`PRIORITY_BULK`]); none for
    /// messages to queues without priorities.
    pub priority: Option<u8>,
}

/// Publishes and waits for the broker's confirm. A message the broker
/// could not route (mandatory) or refused is an error: it must not be
/// considered sent.
pub async fn publish_confirmed(channel: &Channel, out: Outgoing<'_>) -> Result<(), Error> {
    let mut properties = BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_type(ShortString::from(out.message_type))
        .with_message_id(ShortString::from(out.message_id))
        .with_delivery_mode(2);
    if let Some(ms) = out.expiration_ms {
        properties = properties.with_expiration(ShortString::from(ms.to_string()));
    }
    if let Some(priority) = out.priority {
        properties = properties.with_priority(priority);
    }
    if !out.headers.is_empty() {
        let mut headers = FieldTable::default();
        for (key, value) in out.headers {
            headers.insert(
                ShortString::from(key.as_str()),
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        properties = properties.with_headers(headers);
    }
    let unavailable = |e: lapin::Error| Error::unavailable(format!("rabbitmq publish: {e}"));
    let confirm = channel
        .basic_publish(
            out.exchange.into(),
            out.routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            out.payload,
            properties,
        )
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;
    match confirm {
        lapin::Confirmation::Ack(None) => Ok(()),
        lapin::Confirmation::Ack(Some(_returned)) => Err(Error::new(
            ErrorCode::Unavailable,
            format!(
                "rabbitmq could not route {} to any queue on {}",
                out.routing_key, out.exchange
            ),
        )),
        lapin::Confirmation::Nack(_) => {
            Err(Error::unavailable("rabbitmq refused the message (nack)"))
        }
        lapin::Confirmation::NotRequested => Err(Error::internal(
            "publish on a channel without publisher confirms",
        )),
    }
}

/// A delivery's string headers (the trace context among them).
pub fn string_headers(properties: &BasicProperties) -> Vec<(String, String)> {
    let Some(headers) = properties.headers().as_ref() else {
        return Vec::new();
    };
    headers
        .inner()
        .iter()
        .filter_map(|(key, value)| match value {
            AMQPValue::LongString(s) => Some((
                key.as_str().to_string(),
                String::from_utf8_lossy(s.as_bytes()).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// The `type` property of a delivery, if it has one.
pub fn type_of(properties: &BasicProperties) -> Option<&str> {
    properties.kind().as_ref().map(|t| t.as_str())
}

/// Decodes a delivery's body after checking its content type and type name.
pub fn decode<M: Event>(properties: &BasicProperties, body: &[u8]) -> Result<M, String> {
    let expected_type = M::type_name();
    let expected_type = expected_type.as_str();
    if let Some(ct) = properties.content_type() {
        if ct.as_str() != CONTENT_TYPE {
            return Err(format!("unexpected content type {}", ct.as_str()));
        }
    }
    if let Some(t) = properties.kind() {
        if t.as_str() != expected_type {
            return Err(format!(
                "unexpected message type {}, expected {expected_type}",
                t.as_str()
            ));
        }
    }
    M::decode(body).map_err(|e| format!("undecodable {expected_type}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use facepass_proto::events::v1::{PhotoFailed, PhotoIndexed, PhotoUploaded};

    #[test]
    fn event_type_names_come_from_the_messages() {
        assert_eq!(
            PhotoUploaded::type_name(),
            "facepass.events.v1.PhotoUploaded"
        );
        assert_eq!(PhotoIndexed::type_name(), "facepass.events.v1.PhotoIndexed");
        assert_eq!(PhotoFailed::type_name(), "facepass.events.v1.PhotoFailed");
        assert_eq!(PhotoFailed::ROUTING_KEY, "photo.failed");
    }

    #[test]
    fn decode_checks_content_and_type_name() {
        let msg = PhotoIndexed {
            photo_id: "p".into(),
            ..Default::default()
        };
        let body = prost::Message::encode_to_vec(&msg);
        let props = BasicProperties::default()
            .with_content_type(CONTENT_TYPE.into())
            .with_type(ShortString::from(PhotoIndexed::type_name()));
        assert_eq!(decode::<PhotoIndexed>(&props, &body).unwrap(), msg);
        let err = decode::<PhotoFailed>(&props, &body).unwrap_err();
        assert!(
            err.contains("expected facepass.events.v1.PhotoFailed"),
            "{err}"
        );
        let json = props.with_content_type("application/json".into());
        assert!(decode::<PhotoIndexed>(&json, &body).is_err());
    }
}
