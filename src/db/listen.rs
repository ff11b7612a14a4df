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

/// Relays notifications until the connection ends, or until its server is
/// found read-only after the pool met a read-only server (a demoted
/// primary): then it returns, and the caller connects again, to the new
/// primary. Notifications are relayed while its own statements run too.
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
    let mut forward = |message: AsyncMessage| {
        if let AsyncMessage::Notification(n) = message
            && n.channel() == channel
        {
            // No receivers is fine: nobody is subscribed right now.
            let _ = sender.send(Arc::from(n.payload()));
        }
    };
    let statement = format!("LISTEN {channel}");
    let Some(listened) = while_relaying(client.batch_execute(&statement), &mut messages, &mut forward).await? else {
        return Ok(());
    };
    listened?;
    let _ = connected.send(true);
    tracing::info!(channel, "listening for notifications");
    let mut seen = super::read_only_seen();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => forward(message?),
                None => break,
            },
            _ = tick.tick() => {
                if super::read_only_seen() == seen {
                    continue;
                }
                seen = super::read_only_seen();
                let check = client.query_one("SELECT current_setting('transaction_read_only') = 'on'", &[]);
                let Some(row) = while_relaying(check, &mut messages, &mut forward).await? else { break };
                if row?.get::<_, bool>(0) {
                    tracing::info!("the notification listener's server is read-only; connecting again");
                    break;
                }
            }
        }
    }
    drop(client);
    Ok(())
}

/// Runs `work` (a statement on the listening connection) while driving the
/// connection and relaying what it hears; `None` when the connection ended
/// first.
async fn while_relaying<F, M>(
    work: F,
    messages: &mut M,
    forward: &mut impl FnMut(AsyncMessage),
) -> Result<Option<F::Output>, tokio_postgres::Error>
where
    F: std::future::Future,
    M: futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Unpin,
{
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Ok(Some(done)),
            message = messages.next() => match message {
                Some(message) => forward(message?),
                None => return Ok(None),
            },
        }
    }
}
