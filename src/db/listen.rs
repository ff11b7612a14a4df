//! One dedicated connection per server process that `LISTEN`s on a channel
//! and hands each notification's payload to a `broadcast` channel, however
//! many subscribers there are. It reconnects on its own (with backoff) when
//! the database goes away; nothing is made up meanwhile.

use std::{str::FromStr, sync::Arc, time::Duration};

use futures_util::{StreamExt as _, stream};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{broadcast, watch},
};
use tokio_postgres::{AsyncMessage, Client, Connection};

use super::tls;

/// The payloads heard on one channel.
#[derive(Clone)]
pub struct Notifications {
    sender: broadcast::Sender<Arc<str>>,
    connected: watch::Receiver<bool>,
}

impl Notifications {
    /// A receiver of every payload from now on. A receiver that falls more
    /// than the channel's capacity behind is told how many it missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }

    /// How many receivers are live: one per running subscription.
    pub fn receivers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Waits until the listening connection is up.
    pub async fn listening(&self) {
        let mut connected = self.connected.clone();
        let _ = connected.wait_for(|up| *up).await;
    }
}

/// Starts listening on `channel` (a fixed identifier of ours) in the
/// background; the task ends when every `Notifications` is dropped.
pub fn spawn(url: &str, channel: &'static str, capacity: usize) -> anyhow::Result<Notifications> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL connection string"))?;
    let (sender, _) = broadcast::channel(capacity);
    let (connected_tx, connected) = watch::channel(false);
    let notifications = Notifications { sender, connected };
    let weak = notifications.sender.downgrade();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let Some(sender) = weak.upgrade() else { return };
            match listen(&config, channel, &sender, &connected_tx).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(err) => tracing::warn!(error = %err, "the notification listener lost its connection"),
            }
            let _ = connected_tx.send(false);
            drop(sender);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    Ok(notifications)
}

/// Listens until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    sender: &broadcast::Sender<Arc<str>>,
    connected: &watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.connect_timeout(Duration::from_secs(5));
    if config.get_application_name().is_none() {
        config.application_name("healthcare-api listener");
    }
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        Ok(relay(client, connection, channel, sender, connected).await?)
    } else {
        let (client, connection) = config.connect(tls::connector()?).await?;
        Ok(relay(client, connection, channel, sender, connected).await?)
    }
}

async fn relay<S, T>(
    client: Client,
    mut connection: Connection<S, T>,
    channel: &str,
    sender: &broadcast::Sender<Arc<str>>,
    connected: &watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {channel}");
    {
        let listen = client.batch_execute(&statement);
        tokio::pin!(listen);
        // The connection must be driven while LISTEN runs.
        loop {
            tokio::select! {
                done = &mut listen => { done?; break; }
                message = messages.next() => match message {
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(err),
                    None => return Ok(()),
                },
            }
        }
    }
    let _ = connected.send(true);
    tracing::info!(channel, "listening for notifications");
    while let Some(message) = messages.next().await {
        match message? {
            AsyncMessage::Notification(n) if n.channel() == channel => {
                // No receivers is fine: nobody is subscribed right now.
                let _ = sender.send(Arc::from(n.payload()));
            }
            _ => {}
        }
    }
    drop(client);
    Ok(())
}
