//! `Db::audit`: the audit trail.

use lanyard_core::db::Db;
use lanyard_core::model::{AuditEvent, AuditFilter};
use lanyard_store::Timestamp;

fn event(at_s: i64, actor: &str, action: &str, target: &str) -> AuditEvent {
    AuditEvent::new(Timestamp::from_secs(at_s), actor, action)
        .target(target)
        .request_id(Some(format!("req-{at_s}")))
        .detail(serde_json::json!({ "n": at_s }))
}

pub(crate) async fn events_are_filtered_newest_first_and_paged(db: Db) {
    let events = [
        event(10, "alice", "signin", "wiki"),
        event(20, "client:wiki", "token.issue", "alice").outcome("failure"),
        event(30, "alice", "signin", "billing"),
        event(40, "bob", "signin", "wiki"),
    ];
    db.audit().insert(&events).await.unwrap();
    db.audit().insert(&[]).await.unwrap();
    let all = db
        .audit()
        .query(&AuditFilter::default(), None, None)
        .await
        .unwrap();
    let read: Vec<AuditEvent> = all.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        read,
        events.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first, every field"
    );
    let only = |filter: AuditFilter| {
        let db = db.clone();
        async move {
            let rows = db.audit().query(&filter, None, None).await.unwrap();
            rows.into_iter()
                .map(|(_, e)| e.at.as_secs())
                .collect::<Vec<_>>()
        }
    };
    let alice = AuditFilter {
        actor: Some("alice".into()),
        ..AuditFilter::default()
    };
    assert_eq!(only(alice).await, [30, 10]);
    let wiki_signins = AuditFilter {
        action: Some("signin".into()),
        target: Some("wiki".into()),
        ..AuditFilter::default()
    };
    assert_eq!(only(wiki_signins).await, [40, 10]);
    let window = AuditFilter {
        since: Some(Timestamp::from_secs(20)),
        until: Some(Timestamp::from_secs(40)),
        ..AuditFilter::default()
    };
    assert_eq!(
        only(window).await,
        [30, 20],
        "since inclusive, until exclusive"
    );
    // Pages: `limit` at a time, the next one below the last id seen.
    let first = db
        .audit()
        .query(&AuditFilter::default(), None, Some(3))
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    let cursor = first.last().map(|(id, _)| *id);
    let rest = db
        .audit()
        .query(&AuditFilter::default(), cursor, Some(3))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|(_, e)| e.at.as_secs()).collect::<Vec<_>>(),
        [10]
    );
    let signins = db.audit().by_action("signin").await.unwrap();
    let times: Vec<i64> = signins.iter().map(|e| e.at.as_secs()).collect();
    assert_eq!(times, [10, 30, 40], "oldest first");
}

pub(crate) async fn pruning_deletes_only_what_is_older_in_batches(db: Db) {
    let events: Vec<AuditEvent> = (0..25).map(|i| event(i, "a", "x", "t")).collect();
    db.audit().insert(&events).await.unwrap();
    // Batches of 4 (several statements) take everything before 21 s and nothing after.
    let deleted = db.audit().prune(Timestamp::from_secs(21), 4).await.unwrap();
    assert_eq!(deleted, 21);
    let left = db
        .audit()
        .query(&AuditFilter::default(), None, None)
        .await
        .unwrap();
    let times: Vec<i64> = left.iter().map(|(_, e)| e.at.as_secs()).collect();
    assert_eq!(times, [24, 23, 22, 21]);
    assert_eq!(
        db.audit().prune(Timestamp::from_secs(21), 4).await.unwrap(),
        0
    );
}
