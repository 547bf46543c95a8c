//! The running bouncer: listeners and their accept loops ([`listener`]),
//! sockets inherited from systemd ([`activation`]), WebSocket clients
//! ([`websocket`], [`origin`]), TLS certificate reload ([`tls`]), client
//! certificates ([`client_cert`]), the admin socket ([`admin`]),
//! PROXY-protocol headers from trusted proxies ([`proxy_protocol`],
//! [`proxied`]) and HTTP forwarding headers from them ([`forwarded`]), the
//! ident server ([`ident`]), the metrics endpoint ([`prometheus`] over a
//! minimal [`http`]), the state every task shares ([`Shared`]:
//! configuration, database, the registry of user actors), configuration
//! reload ([`reload`], [`live`], [`conn_limit`]), service manager
//! notifications ([`sd_notify`]), the notification [`notifier`] and
//! graceful shutdown.

pub mod activation;
pub mod admin;
pub mod alloc;
pub mod client_cert;
pub mod conn_limit;
pub mod forwarded;
pub mod http;
pub mod ident;
pub mod listener;
pub mod live;
pub mod login_limit;
pub mod notifier;
pub mod origin;
pub mod prometheus;
pub mod proxied;
pub mod proxy_protocol;
pub mod reload;
pub mod retention;
pub mod sd_notify;
pub mod tls;
pub mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Listener, MessageStore};
use crate::db::{Db, DbError, UserRecord};
use crate::user::history::StoredHistory;
use crate::user::{LoadedNetwork, UserHandle, spawn_user};

/// Why the server could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("listen {uri}: {error}")]
    Bind { uri: String, error: std::io::Error },
    #[error("an ircs:// or wss:// listener needs a tls directive")]
    NoTls,
    #[error("no listener configured")]
    NoListener,
    #[error("password hashing: {0}")]
    Auth(#[from] crate::auth::AuthError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("Web Push VAPID key: {0}")]
    Vapid(#[from] crate::push::vapid::VapidError),
}

/// State shared by every task of the server.
pub struct Shared {
    /// The configuration the server started with. The values a reload can
    /// change are read from [`Shared::live`] instead.
    pub config: Config,
    /// The reloadable part of the configuration.
    live: ArcSwap<live::LiveConfig>,
    pub db: Db,
    /// When the server started, for 003.
    pub started: String,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Permits for open connections (`max-connections`).
    pub connection_limit: conn_limit::ConnectionLimit,
    /// IRCv3 STS policies of upstream hosts.
    pub sts: crate::upstream::sts::StsPolicies,
    /// Failed-login records (password guessing throttle).
    pub logins: login_limit::LoginThrottle,
    /// Open upstream connections, for the ident server.
    pub ident: Arc<ident::IdentRegistry>,
    /// Spaces out upstream connection attempts per host
    /// (`upstream-connect-spacing`).
    pub connects: Arc<crate::upstream::schedule::ConnectScheduler>,
    /// Counters and gauges served by the metrics listeners.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The Web Push VAPID key, generated on the first start and loaded from
    /// the database since; it never changes while running.
    pub vapid: crate::push::vapid::VapidKey,
    /// [`Shared::vapid`]'s public key, base64url: the `VAPID` ISUPPORT value.
    pub vapid_public: String,
    /// Where user actors hand notifications to be delivered.
    pub notifier: crate::delivery::NotifierHandle,
    /// What the notifier checks before each delivery: active clients and
    /// read markers, written by the user actors.
    pub notify_activity: Arc<crate::delivery::activity::Activity>,
    /// How many notification deliveries have ended and had their outcome
    /// handled (a gone subscription removed, a gone webhook cleared), for
    /// whoever waits on an outcome.
    pub notify_ended: tokio::sync::watch::Sender<u64>,
    users: Mutex<HashMap<String, UserHandle>>,
    user_tasks: Mutex<Vec<JoinHandle<()>>>,
    next_client: AtomicU64,
}

impl Shared {
    /// The reloadable configuration values in force now.
    pub fn live(&self) -> Arc<live::LiveConfig> {
        self.live.load_full()
    }

    /// A fresh client id.
    pub fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// The running actor of a user.
    pub fn user(&self, name: &str) -> Option<UserHandle> {
        self.users.lock().ok().and_then(|u| u.get(name).cloned())
    }

    /// Every running user actor.
    pub fn loaded_users(&self) -> Vec<UserHandle> {
        self.users
            .lock()
            .map(|u| u.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Start the actor of a user and register it.
    pub fn start_user(self: &Arc<Self>, record: UserRecord, networks: Vec<LoadedNetwork>) {
        let name = record.username.clone();
        let (handle, task) = spawn_user(self.clone(), record, networks);
        if let Ok(mut users) = self.users.lock() {
            users.insert(name, handle);
        }
        if let Ok(mut tasks) = self.user_tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Stop a user's actor (closing its connections) and unregister it.
    pub async fn stop_user(&self, name: &str, reason: &str) {
        let handle = self.users.lock().ok().and_then(|mut u| u.remove(name));
        if let Some(handle) = handle {
            handle.stop(reason).await;
        }
    }
}

/// What one listener ended up bound to.
#[derive(Debug, Clone)]
pub enum Bound {
    Tcp {
        listener: Listener,
        addr: SocketAddr,
    },
    Unix {
        listener: Listener,
        path: PathBuf,
    },
}

impl Bound {
    /// The configured listener.
    pub fn listener(&self) -> &Listener {
        match self {
            Bound::Tcp { listener, .. } | Bound::Unix { listener, .. } => listener,
        }
    }
}

/// A listener being served: where it is bound and its accept task.
#[derive(Debug)]
struct Running {
    bound: Bound,
    task: JoinHandle<()>,
    /// Its socket came from systemd: the socket file is not ours to
    /// delete.
    inherited: bool,
}

impl Running {
    /// Stop accepting (connections already accepted stay) and wait until
    /// the socket is closed.
    async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.remove_socket_file();
    }

    fn remove_socket_file(&self) {
        if let Bound::Unix { path, .. } = &self.bound
            && !self.inherited
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The stored VAPID key, generated and stored on the first start.
async fn load_vapid_key(db: &Db) -> Result<crate::push::vapid::VapidKey, ServerError> {
    let generated = crate::push::vapid::VapidKey::generate()?;
    let stored = db.vapid_key_or_insert(generated.private_base64()).await?;
    Ok(crate::push::vapid::VapidKey::from_private_base64(&stored)?)
}

/// A running bouncer.
pub struct Server {
    shared: Arc<Shared>,
    /// The configuration in force: the startup one, then each reload's.
    current: Config,
    listeners: Vec<Running>,
    certs: Option<Arc<tls::CertStore>>,
    first_run_password: Option<String>,
    connections: TaskTracker,
    /// Tasks other than accept loops (history retention).
    background: Vec<JoinHandle<()>>,
}

impl Server {
    /// Bind every listener, open the database, create the first
    /// administrator when there is no user yet, load the users and start
    /// serving.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        Server::start_with_sockets(config, activation::Inherited::default()).await
    }

    /// Like [`start`](Self::start), serving listeners on the matching
    /// sockets passed by systemd (socket activation) instead of binding
    /// them; sockets left over are closed.
    pub async fn start_with_sockets(
        config: Config,
        mut inherited: activation::Inherited,
    ) -> Result<Server, ServerError> {
        if config.listeners.is_empty() {
            return Err(ServerError::NoListener);
        }
        let certs = if config.listeners.iter().any(Listener::needs_tls) {
            let tls = config.tls.as_ref().ok_or(ServerError::NoTls)?;
            Some(tls::CertStore::load(&tls.cert, &tls.key)?)
        } else {
            None
        };
        let db = Db::open(&config.db_path)?;
        let first_run_password = create_first_admin(&db).await?;
        let connection_limit = conn_limit::ConnectionLimit::new(config.max_connections);
        let sts = crate::upstream::sts::StsPolicies::new(
            db.load_sts_policies(crate::upstream::sts::now()).await?,
        );
        let vapid = load_vapid_key(&db).await?;
        let notify_activity = Arc::new(crate::delivery::activity::Activity::default());
        let (notifier, notifier_task, notifier_reports) =
            notifier::spawn(&config, db.clone(), &vapid, notify_activity.clone());
        let shared = Arc::new(Shared {
            notifier,
            notify_activity,
            notify_ended: tokio::sync::watch::Sender::new(0),
            vapid_public: vapid.public_base64(),
            vapid,
            connection_limit,
            logins: login_limit::LoginThrottle::new(config.login_limit),
            ident: ident::IdentRegistry::new(),
            connects: Arc::new(crate::upstream::schedule::ConnectScheduler::new(
                config.upstream_connect_spacing,
            )),
            metrics: crate::metrics::Metrics::new(),
            sts,
            live: ArcSwap::from_pointee(live::LiveConfig::from_config(&config)),
            config,
            db,
            started: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            shutdown: CancellationToken::new(),
            users: Mutex::new(HashMap::new()),
            user_tasks: Mutex::new(Vec::new()),
            next_client: AtomicU64::new(1),
        });
        retention::run_once(&shared).await;
        load_users(&shared).await?;
        let mut server = Server {
            current: shared.config.clone(),
            background: vec![
                retention::spawn(shared.clone()),
                notifier_task,
                notifier::spawn_reports(&shared, notifier_reports),
            ],
            shared,
            listeners: Vec::new(),
            certs,
            first_run_password,
            connections: TaskTracker::new(),
        };
        for listener in server.current.listeners.clone() {
            let (socket, from_systemd) = match inherited.take(&listener).await {
                Some(socket) => (socket, true),
                None => (listener::open(&listener).await?, false),
            };
            server.serve_listener(listener, socket, from_systemd)?;
        }
        inherited.close_unclaimed();
        Ok(server)
    }

    /// The rustls configuration for a new `listener`, if it needs TLS.
    fn tls_for(
        &self,
        listener: &Listener,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
        match &self.certs {
            Some(store) if listener.needs_tls() => {
                let alpn = if listener.is_websocket() {
                    tls::ALPN_HTTP1
                } else {
                    tls::ALPN_IRC
                };
                // client-cert-auth is read at startup only.
                Ok(Some(store.server_config(
                    alpn,
                    self.shared.config.client_cert_auth,
                )?))
            }
            _ if listener.needs_tls() => Err(ServerError::NoTls),
            _ => Ok(None),
        }
    }

    /// Start accepting on `socket` for `listener`.
    fn serve_listener(
        &mut self,
        listener: Listener,
        socket: listener::Socket,
        inherited: bool,
    ) -> Result<&Bound, ServerError> {
        let tls = self.tls_for(&listener)?;
        let (bound, task) = listener::serve(
            self.shared.clone(),
            listener,
            socket,
            tls,
            self.connections.clone(),
        )?;
        self.listeners.push(Running {
            bound,
            task,
            inherited,
        });
        Ok(&self.listeners[self.listeners.len() - 1].bound)
    }

    /// Bound address of the first plain-text TCP listener.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .map(|r| &r.bound)
            .find_map(|b| match b {
                Bound::Tcp {
                    listener: Listener::Irc { .. } | Listener::IrcInsecure { .. },
                    addr,
                } => Some(*addr),
                _ => None,
            })
    }

    /// Bound address of the first WebSocket listener of any kind.
    pub fn websocket_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .map(|r| &r.bound)
            .find_map(|b| match b {
                Bound::Tcp { listener, addr } if listener.is_websocket() => Some(*addr),
                _ => None,
            })
    }

    /// Bound address of the first TLS listener.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .map(|r| &r.bound)
            .find_map(|b| match b {
                Bound::Tcp {
                    listener: Listener::Ircs { .. },
                    addr,
                } => Some(*addr),
                _ => None,
            })
    }

    /// Bound address of the first ident listener.
    pub fn ident_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .map(|r| &r.bound)
            .find_map(|b| match b {
                Bound::Tcp {
                    listener: Listener::Ident { .. },
                    addr,
                } => Some(*addr),
                _ => None,
            })
    }

    /// Path of the first admin socket.
    pub fn admin_path(&self) -> Option<PathBuf> {
        self.listeners
            .iter()
            .map(|r| &r.bound)
            .find_map(|b| match b {
                Bound::Unix {
                    listener: Listener::UnixAdmin { .. },
                    path,
                } => Some(path.clone()),
                _ => None,
            })
    }

    /// Every bound listener.
    pub fn bound(&self) -> Vec<Bound> {
        self.listeners.iter().map(|r| r.bound.clone()).collect()
    }

    /// A one-line summary of what the server serves, e.g. for the service
    /// manager's status.
    pub fn summary(&self) -> String {
        let users = self.shared.users.lock().map(|u| u.len()).unwrap_or(0);
        let listeners: Vec<String> = self
            .listeners
            .iter()
            .map(|r| r.bound.listener().to_string())
            .collect();
        format!("serving {users} users on {}", listeners.join(" "))
    }

    /// The password of the `admin` user created by this start, if any.
    pub fn first_run_password(&self) -> Option<&str> {
        self.first_run_password.as_deref()
    }

    /// The shared state (configuration, database, users).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Read the TLS certificate and key again. Established connections
    /// keep their session; new ones get the new certificate.
    pub fn reload_tls(&self) -> Result<(), ServerError> {
        if let Some(store) = &self.certs {
            store.reload()?;
            tracing::info!("TLS certificate reloaded");
        }
        Ok(())
    }

    /// Shut down gracefully: stop accepting, send clients `ERROR` and
    /// servers `QUIT`, wait for connections to close, flush the database.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.shared.shutdown.cancel();
        for task in &self.background {
            task.abort();
        }
        for running in &self.listeners {
            running.task.abort();
        }
        let users = self.shared.loaded_users();
        futures::future::join_all(users.iter().map(|u| u.stop("Server shutting down"))).await;
        self.connections.close();
        if tokio::time::timeout(Duration::from_secs(5), self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        let tasks: Vec<JoinHandle<()>> = self
            .shared
            .user_tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.shared.db.close().await;
        for running in &self.listeners {
            running.remove_socket_file();
        }
    }
}

/// Create `admin` with a random password when the database has no user.
async fn create_first_admin(db: &Db) -> Result<Option<String>, ServerError> {
    if db.count_users().await? > 0 {
        return Ok(None);
    }
    let password = crate::auth::random_password();
    let hash = crate::auth::hash_password_async(password.clone()).await?;
    db.create_user(UserRecord {
        username: "admin".to_string(),
        password_hash: Some(hash),
        admin: true,
        enabled: true,
        ..UserRecord::default()
    })
    .await?;
    tracing::warn!("created the first user \"admin\" with password: {password}");
    Ok(Some(password))
}

async fn load_users(shared: &Arc<Shared>) -> Result<(), ServerError> {
    let users = shared.db.list_users().await?;
    for user in users {
        let mut networks = Vec::new();
        for record in shared.db.list_networks(user.id).await? {
            let channels = shared.db.list_channels(record.id).await?;
            let history = match shared.config.message_store {
                MessageStore::Db => StoredHistory {
                    max_seq: shared.db.max_seq(record.id).await?,
                    cursors: shared.db.load_cursors(record.id).await?,
                    read_markers: shared.db.load_read_markers(record.id).await?,
                },
                MessageStore::Memory => StoredHistory::default(),
            };
            networks.push(LoadedNetwork {
                record,
                channels,
                history,
            });
        }
        shared.start_user(user, networks);
    }
    Ok(())
}
