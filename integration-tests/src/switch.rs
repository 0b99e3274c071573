//! A TCP forwarder that a test can cut and restore: a dependency (PostgreSQL,
//! RabbitMQ) "goes down" for one service under test without stopping the
//! server that other tests share.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards `127.0.0.1:<port>` to a target while up; while down, drops every
/// open connection and refuses new ones (accepts and closes them at once).
pub struct Switch {
    pub port: u16,
    up: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Switch {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> std::io::Result<Switch> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let target: SocketAddr = tokio::net::lookup_host(target)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("target has no address"))?;
        let (up, _) = watch::channel(true);
        let up = Arc::new(up);
        let state = up.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut on = state.subscribe();
                if !*on.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = on.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(Switch { port, up, task })
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
