//! How mail leaves this node ([`Mailer`], held by `Core`): to the SMTP relay (`lettre`; STARTTLS, implicit TLS or plain as
//! `smtp_url` says), or, with no relay configured, as a `.eml` file in the outbox folder,
//! logged with its link (the embedded default and the playground: a developer follows it).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Config, SmtpTls};
use crate::model::OutgoingMail;

/// What a node's sender needs: how mail leaves, and a bell queued mail rings.
#[derive(Debug)]
pub struct Mailer {
    /// SMTP, or the folder.
    pub transport: Transport,
    /// Rung when a mail is queued on this node (the sender also looks every few seconds).
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Mailer {
    /// The mailer the configuration describes (nothing connects yet).
    pub fn new(config: &Config) -> Result<Self, TransportError> {
        Ok(Self {
            transport: Transport::new(config)?,
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// How long one SMTP conversation may take before it counts as failed (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes.
pub enum Transport {
    /// An SMTP relay.
    Smtp {
        /// The relay, as lettre speaks to it.
        relay: AsyncSmtpTransport<Tokio1Executor>,
        /// `host:port`, for logs.
        name: String,
    },
    /// A folder (no relay configured).
    Folder(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp { name, .. } => write!(f, "Smtp({name})"),
            Self::Folder(path) => write!(f, "Folder({})", path.display()),
        }
    }
}

/// Why the mailer cannot be set up (at start: a bad setting).
#[derive(Debug, thiserror::Error)]
#[error("mail: {0}")]
pub struct TransportError(String);

/// Why one attempt to send failed.
#[derive(Debug)]
pub struct Failure {
    /// The relay refused the mail for good (a 5xx answer, a malformed address): no retry.
    pub permanent: bool,
    /// What happened (no secret in it).
    pub message: String,
}

impl Transport {
    /// The transport `config.mail` describes. Reads `smtp_password_file` now, so a missing
    /// file stops the start rather than the first mail.
    pub fn new(config: &Config) -> Result<Self, TransportError> {
        let Some(relay) = &config.mail.smtp else {
            return Ok(Self::Folder(outbox_folder(config)));
        };
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| TransportError(format!("TLS for {host}: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&relay.host)
            .port(relay.port)
            .timeout(Some(SMTP_TIMEOUT))
            .tls(match relay.tls {
                SmtpTls::None => Tls::None,
                SmtpTls::StartTls => Tls::Required(tls(&relay.host)?),
                SmtpTls::Implicit => Tls::Wrapper(tls(&relay.host)?),
            });
        if let Some(user) = &relay.username {
            let password = match (&relay.password, &relay.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| {
                        TransportError(format!(
                            "cannot read smtp_password_file {}: {e}",
                            file.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                (None, None) => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self::Smtp {
            relay: builder.build(),
            name: format!("{}:{}", relay.host, relay.port),
        })
    }

    /// Sends one mail from `from`; `Ok` once the relay took it (or the file is written).
    pub async fn deliver(&self, config: &Config, outgoing: &OutgoingMail) -> Result<(), Failure> {
        let message = build(config, outgoing)?;
        match self {
            Self::Smtp { relay, .. } => {
                relay.send(message).await.map(|_| ()).map_err(|e| Failure {
                    permanent: e.is_permanent(),
                    message: e.to_string(),
                })
            }
            Self::Folder(dir) => {
                let transient = |e: std::io::Error| Failure {
                    permanent: false,
                    message: format!("cannot write to {}: {e}", dir.display()),
                };
                tokio::fs::create_dir_all(dir).await.map_err(transient)?;
                let path = dir.join(format!(
                    "{}-{}.eml",
                    outgoing.created_at.as_millis(),
                    outgoing.id
                ));
                let partial = path.with_extension("eml.partial");
                tokio::fs::write(&partial, message.formatted())
                    .await
                    .map_err(transient)?;
                tokio::fs::rename(&partial, &path)
                    .await
                    .map_err(transient)?;
                // No relay: the developer reading the log is the only way this link reaches
                // anyone (the folder is for development; configure smtp_url in production).
                let link = first_link(&outgoing.mail.text, &config.issuer);
                tracing::info!(
                    to = %outgoing.mail.to,
                    kind = %outgoing.mail.kind,
                    file = %path.display(),
                    link = link.unwrap_or("(none)"),
                    "mail written to the outbox folder (no smtp_url is set)"
                );
                Ok(())
            }
        }
    }

    /// For logs: the relay's `host:port`, or the folder.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { name, .. } => format!("SMTP relay {name}"),
            Self::Folder(path) => format!("the folder {}", path.display()),
        }
    }
}

/// The outbox folder: `mail_folder`, else beside a SQLite database, else `./lanyard-outbox`.
pub fn outbox_folder(config: &Config) -> PathBuf {
    if let Some(folder) = &config.mail.folder {
        return folder.clone();
    }
    match config.sqlite_file() {
        Some(file) => PathBuf::from(format!("{file}.outbox")),
        None => PathBuf::from("lanyard-outbox"),
    }
}

/// The first address under the issuer in `text`.
fn first_link<'a>(text: &'a str, issuer: &str) -> Option<&'a str> {
    text.split_whitespace().find(|w| w.starts_with(issuer))
}

/// The MIME message: `From`, `To`, `Subject`, a `Message-ID` made of the outbox id (a mail
/// retried after a lost answer carries the same one), text and HTML alternatives.
fn build(config: &Config, outgoing: &OutgoingMail) -> Result<lettre::Message, Failure> {
    let permanent = |what: &str, e: &dyn std::fmt::Display| Failure {
        permanent: true,
        message: format!("{what}: {e}"),
    };
    let from: Mailbox = config
        .mail
        .from
        .parse()
        .map_err(|e| permanent("mail_from", &e))?;
    let to: Mailbox = outgoing
        .mail
        .to
        .parse()
        .map_err(|e| permanent("the recipient's address", &e))?;
    let domain = from.email.domain().to_owned();
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(outgoing.mail.subject.clone())
        .message_id(Some(format!("<{}@{domain}>", outgoing.id)))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(outgoing.mail.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(outgoing.mail.html.clone()),
                ),
        )
        .map_err(|e| permanent("the message", &e))
}
