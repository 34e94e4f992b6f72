//! E-mail: the outbox (`mail_outbox`: each mail's body sealed under the master key with its
//! id as associated data, wiped once sent) and the links mails carry (`mail_links`, by the
//! SHA-256 hash of the token).
//!
//! Several nodes share one outbox: a node takes a due mail with one conditional `UPDATE`
//! (`claimed_until`), so two never send it at once; one that dies holding it lets it go when
//! the claim runs out.

use std::time::Duration;

use lanyard_store::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{mail_links, mail_outbox};
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{LinkPurpose, MailLink, MailStatus, NewMail, OutgoingMail};

/// The `mail_outbox` table ([`Db::outbox`]).
#[derive(Debug, Clone, Copy)]
pub struct Outbox<'a>(pub(super) &'a Db);

/// The name a mail's body is sealed under (its associated data).
pub(super) fn mail_name(id: &str) -> String {
    format!("mail:{id}")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Body {
    text: String,
    html: String,
}

impl Outbox<'_> {
    /// Queues `mail` under `id`, due at once.
    pub async fn enqueue(&self, id: &str, mail: &NewMail, now: Timestamp) -> Result<(), DbError> {
        let body = serde_json::to_vec(&Body {
            text: mail.text.clone(),
            html: mail.html.clone(),
        })
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
        mail_outbox::ActiveModel {
            id: Set(id.to_owned()),
            recipient: Set(mail.to.clone()),
            kind: Set(mail.kind.clone()),
            subject: Set(mail.subject.clone()),
            body: Set(Some(self.0.seal(&mail_name(id), &body))),
            created_at: Set(now.as_millis()),
            next_attempt_at: Set(now.as_millis()),
            attempts: Set(0),
            claimed_until: Set(None),
            sent_at: Set(None),
            failed_at: Set(None),
            last_error: Set(None),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable("a mail with this id"))?;
        Ok(())
    }

    /// Takes up to `limit` mails that are due at `now` and that no node holds, each held by
    /// this caller for `hold` (oldest due first).
    pub async fn claim_due(
        &self,
        now: Timestamp,
        hold: Duration,
        limit: u64,
    ) -> Result<Vec<OutgoingMail>, DbError> {
        let now_ms = now.as_millis();
        let free = || {
            Condition::any()
                .add(mail_outbox::Column::ClaimedUntil.is_null())
                .add(mail_outbox::Column::ClaimedUntil.lte(now_ms))
        };
        let due = mail_outbox::Entity::find()
            .select_only()
            .column(mail_outbox::Column::Id)
            .filter(mail_outbox::Column::SentAt.is_null())
            .filter(mail_outbox::Column::FailedAt.is_null())
            .filter(mail_outbox::Column::NextAttemptAt.lte(now_ms))
            .filter(free())
            .order_by_asc(mail_outbox::Column::NextAttemptAt)
            .limit(limit)
            .into_tuple::<String>()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        let until = now.plus(hold).as_millis();
        let mut taken = Vec::new();
        for id in due {
            let claimed = mail_outbox::Entity::update_many()
                .col_expr(mail_outbox::Column::ClaimedUntil, Expr::value(until))
                .filter(mail_outbox::Column::Id.eq(id.as_str()))
                .filter(mail_outbox::Column::SentAt.is_null())
                .filter(mail_outbox::Column::FailedAt.is_null())
                .filter(free())
                .exec(&self.0.conn)
                .await
                .map_err(unavailable)?;
            if claimed.rows_affected == 0 {
                continue; // another node took it first
            }
            let Some(row) = mail_outbox::Entity::find_by_id(id.clone())
                .one(&self.0.conn)
                .await
                .map_err(unavailable)?
            else {
                continue;
            };
            let Some(sealed) = row.body else { continue };
            let opened = self.0.open(&mail_name(&id), sealed).and_then(|plain| {
                serde_json::from_slice::<Body>(&plain).map_err(|e| DbError::Corrupt {
                    what: "mail",
                    detail: e.to_string(),
                })
            });
            let body = match opened {
                Ok(body) => body,
                Err(e) => {
                    // Not held by a node that cannot read it.
                    self.release(&id).await?;
                    return Err(e);
                }
            };
            taken.push(OutgoingMail {
                id,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                created_at: Timestamp::from_millis(row.created_at),
                mail: NewMail {
                    to: row.recipient,
                    kind: row.kind,
                    subject: row.subject,
                    text: body.text,
                    html: body.html,
                },
            });
        }
        Ok(taken)
    }

    /// Lets another take the mail now.
    async fn release(&self, id: &str) -> Result<(), DbError> {
        mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The relay took the mail: done, and its body (which may hold a link) is wiped.
    pub async fn sent(&self, id: &str, now: Timestamp) -> Result<(), DbError> {
        self.finish(id, mail_outbox::Column::SentAt, now, None)
            .await
    }

    /// Lanyard gives up on the mail (the relay refused it for good, or it kept failing too
    /// long): its body is wiped, the error kept.
    pub async fn give_up(&self, id: &str, now: Timestamp, error: &str) -> Result<(), DbError> {
        self.finish(id, mail_outbox::Column::FailedAt, now, Some(error))
            .await
    }

    async fn finish(
        &self,
        id: &str,
        column: mail_outbox::Column,
        now: Timestamp,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        let mut update = mail_outbox::Entity::update_many()
            .col_expr(column, Expr::value(now.as_millis()))
            .col_expr(mail_outbox::Column::Body, Expr::value(None::<Vec<u8>>))
            .col_expr(mail_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(
                mail_outbox::Column::Attempts,
                Expr::col(mail_outbox::Column::Attempts).add(1),
            );
        if let Some(error) = error {
            update = update.col_expr(mail_outbox::Column::LastError, Expr::value(error));
        }
        update
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The attempt failed for now: try again at `at`.
    pub async fn retry_at(&self, id: &str, at: Timestamp, error: &str) -> Result<(), DbError> {
        mail_outbox::Entity::update_many()
            .col_expr(
                mail_outbox::Column::NextAttemptAt,
                Expr::value(at.as_millis()),
            )
            .col_expr(mail_outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(mail_outbox::Column::LastError, Expr::value(error))
            .col_expr(
                mail_outbox::Column::Attempts,
                Expr::col(mail_outbox::Column::Attempts).add(1),
            )
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// How many mails wait to be sent.
    pub async fn waiting(&self) -> Result<u64, DbError> {
        mail_outbox::Entity::find()
            .filter(mail_outbox::Column::SentAt.is_null())
            .filter(mail_outbox::Column::FailedAt.is_null())
            .count(&self.0.conn)
            .await
            .map_err(unavailable)
    }

    /// The `limit` newest mails, newest first.
    pub async fn recent(&self, limit: u64) -> Result<Vec<MailStatus>, DbError> {
        let rows = mail_outbox::Entity::find()
            .order_by_desc(mail_outbox::Column::CreatedAt)
            .order_by_desc(mail_outbox::Column::Id)
            .limit(limit)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| MailStatus {
                id: r.id,
                to: r.recipient,
                kind: r.kind,
                subject: r.subject,
                created_at: Timestamp::from_millis(r.created_at),
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                next_attempt_at: Timestamp::from_millis(r.next_attempt_at),
                sent_at: r.sent_at.map(Timestamp::from_millis),
                failed_at: r.failed_at.map(Timestamp::from_millis),
                last_error: r.last_error,
            })
            .collect())
    }

    /// Every mail still holding a body: (id, sealed body), for `Keys::reseal`.
    pub(super) async fn bodies(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let rows = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::Body.is_not_null())
            .all(conn)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((r.id, r.body?)))
            .collect())
    }

    /// Stores a resealed body (`Keys::reseal`).
    pub(super) async fn set_body(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        id: &str,
        sealed: Vec<u8>,
    ) -> Result<(), DbError> {
        mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::Body, Expr::value(sealed))
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The `mail_links` table ([`Db::mail_links`]).
#[derive(Debug, Clone, Copy)]
pub struct MailLinks<'a>(pub(super) &'a Db);

impl MailLinks<'_> {
    /// Stores a link by the hash of its token.
    pub async fn insert(&self, token_hash: &str, link: &MailLink) -> Result<(), DbError> {
        mail_links::ActiveModel {
            token_hash: Set(token_hash.to_owned()),
            sub: Set(link.sub.clone()),
            purpose: Set(link.purpose.as_str().to_owned()),
            email: Set(link.email.clone()),
            created_at: Set(link.created_at.as_millis()),
            expires_at: Set(link.expires_at.as_millis()),
            used_at: Set(link.used_at.map(Timestamp::as_millis)),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable("a link with this token"))?;
        Ok(())
    }

    /// The link with this token hash, made for `purpose` (used or not).
    pub async fn find(
        &self,
        token_hash: &str,
        purpose: LinkPurpose,
    ) -> Result<Option<MailLink>, DbError> {
        let row = mail_links::Entity::find_by_id(token_hash.to_owned())
            .filter(mail_links::Column::Purpose.eq(purpose.as_str()))
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        row.map(link_from).transpose()
    }

    /// Uses the link: one conditional `UPDATE`, so of two requests with one link only one
    /// gets it. `None` if it is unknown, for another purpose, used, or expired at `now`.
    pub async fn take(
        &self,
        token_hash: &str,
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> Result<Option<MailLink>, DbError> {
        let taken = mail_links::Entity::update_many()
            .col_expr(mail_links::Column::UsedAt, Expr::value(now.as_millis()))
            .filter(mail_links::Column::TokenHash.eq(token_hash))
            .filter(mail_links::Column::Purpose.eq(purpose.as_str()))
            .filter(mail_links::Column::UsedAt.is_null())
            .filter(mail_links::Column::ExpiresAt.gt(now.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        if taken.rows_affected == 0 {
            return Ok(None);
        }
        self.find(token_hash, purpose).await
    }

    /// Makes every unused link of `sub` for `purpose` void (a newer one was sent, or one was
    /// used). Returns how many.
    pub async fn void(
        &self,
        sub: &str,
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> Result<u64, DbError> {
        let result = mail_links::Entity::update_many()
            .col_expr(mail_links::Column::UsedAt, Expr::value(now.as_millis()))
            .filter(mail_links::Column::Sub.eq(sub))
            .filter(mail_links::Column::Purpose.eq(purpose.as_str()))
            .filter(mail_links::Column::UsedAt.is_null())
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected)
    }

    /// Forgets every link of `sub` (the person is deleted).
    pub(super) async fn forget(&self, sub: &str) -> Result<(), DbError> {
        mail_links::Entity::delete_many()
            .filter(mail_links::Column::Sub.eq(sub))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deletes links that expired before `before`; returns how many.
    pub async fn prune(&self, before: Timestamp) -> Result<u64, DbError> {
        let result = mail_links::Entity::delete_many()
            .filter(mail_links::Column::ExpiresAt.lt(before.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected)
    }
}

fn link_from(m: mail_links::Model) -> Result<MailLink, DbError> {
    let purpose = LinkPurpose::parse(&m.purpose).ok_or_else(|| DbError::Corrupt {
        what: "mail link",
        detail: format!("unknown purpose {:?}", m.purpose),
    })?;
    Ok(MailLink {
        sub: m.sub,
        purpose,
        email: m.email,
        created_at: Timestamp::from_millis(m.created_at),
        expires_at: Timestamp::from_millis(m.expires_at),
        used_at: m.used_at.map(Timestamp::from_millis),
    })
}
