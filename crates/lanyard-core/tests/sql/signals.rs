//! `Db::streams` and `Db::events` (issue 25): streams with their push secret sealed, subject
//! rules replaced in place, and the event outbox: each channel in order, one holder at a
//! time, waiting after a failure, acknowledged by `jti`, pruned once done.

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::crypto::MasterKey;
use lanyard_core::db::Db;
use lanyard_core::model::{
    Channel, DefaultSubjects, DeliveryMethod, NewEvent, Stream, StreamConfig, StreamStatus,
    SubjectRule,
};
use lanyard_core::testing::TestDatabase;
use lanyard_store::Timestamp;
use serde_json::json;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn stream(id: &str, client: &str, header: Option<&str>) -> Stream {
    Stream {
        stream_id: id.to_owned(),
        client_id: client.to_owned(),
        config: StreamConfig {
            events_requested: vec!["https://example.com/e".to_owned()],
            description: None,
            method: DeliveryMethod::Push,
            endpoint_url: Some("https://receiver.example/events".to_owned()),
            default_subjects: DefaultSubjects::All,
        },
        authorization_header: header.map(str::to_owned),
        status: StreamStatus::Enabled,
        reason: None,
        created_at: at(1_000),
        updated_at: at(1_000),
        verified_at: None,
    }
}

fn event(channel: &Channel, jti: &str) -> NewEvent {
    NewEvent {
        channel: channel.clone(),
        jti: jti.to_owned(),
        payload: json!({ "jti": jti }),
    }
}

/// A stream reads back as written, its push secret sealed under the master key (moved by a
/// reseal); subject rules replace each other; deleting a stream takes its events along.
pub(crate) async fn streams_read_back_with_their_secret_sealed(db: Db) {
    let (master, _) = MasterKey::generate();
    let master = Arc::new(master);
    let db = db.with_master_key(master.clone());
    let streams = db.streams();
    let s1 = stream("s1", "saas", Some("Bearer receiver-secret"));
    streams.create(&s1).await.unwrap();
    streams.create(&stream("s2", "other", None)).await.unwrap();
    assert_eq!(streams.get("s1").await.unwrap().unwrap(), s1);
    assert_eq!(streams.of_client("saas").await.unwrap(), vec![s1.clone()]);
    assert_eq!(streams.all().await.unwrap().len(), 2);
    db.execute_unprepared("UPDATE ssf_streams SET status = 'paused' WHERE stream_id = 's2'")
        .await
        .unwrap();
    assert_eq!(
        streams.live().await.unwrap().len(),
        2,
        "paused streams still take events"
    );
    db.execute_unprepared("UPDATE ssf_streams SET status = 'disabled' WHERE stream_id = 's2'")
        .await
        .unwrap();
    assert_eq!(streams.live().await.unwrap(), vec![s1.clone()]);

    // The secret is sealed: another master key opens nothing until a reseal moves it there.
    let (next, _) = MasterKey::generate();
    let moved = db.clone().with_master_key(Arc::new(next));
    assert!(
        moved.streams().get("s1").await.is_err(),
        "another key opens nothing"
    );
    assert!(moved.keys().reseal(Some(&master)).await.unwrap() >= 1);
    assert_eq!(moved.streams().get("s1").await.unwrap().unwrap(), s1);
    assert!(
        streams.get("s1").await.is_err(),
        "the old key no longer opens it"
    );
    let db = moved;
    let streams = db.streams();

    let rule = |key: &str, included: bool| SubjectRule {
        stream_id: "s1".to_owned(),
        key: key.to_owned(),
        subject: json!({ "format": "email", "email": "a@example.com" }),
        included,
    };
    streams
        .set_subject(&rule("email a@example.com", true), at(2_000))
        .await
        .unwrap();
    streams
        .set_subject(&rule("email a@example.com", false), at(3_000))
        .await
        .unwrap();
    let rules = streams
        .subject_rules(
            &["s1".to_owned(), "s2".to_owned()],
            &["email a@example.com".to_owned(), "sub x".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(
        rules,
        vec![rule("email a@example.com", false)],
        "replaced in place"
    );

    let channel = Channel::Stream("s1".to_owned());
    db.events()
        .enqueue(&[event(&channel, "j1")], at(4_000))
        .await
        .unwrap();
    assert!(streams.delete("s1").await.unwrap());
    assert!(!streams.delete("s1").await.unwrap());
    assert!(db.events().pending(&channel, 10).await.unwrap().is_empty());
    assert!(
        streams
            .subject_rules(&["s1".to_owned()], &["email a@example.com".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Events of a channel leave in order, one holder at a time; a failure makes the channel
/// wait; delivered, acknowledged and dropped events are done; pruning removes only those.
pub(crate) async fn the_outbox_keeps_order_and_one_holder_per_channel(db: Db) {
    let events = db.events();
    let app = Channel::Backchannel("wiki".to_owned());
    events
        .enqueue(
            &[event(&app, "a1"), event(&app, "a2"), event(&app, "a3")],
            at(1_000),
        )
        .await
        .unwrap();
    let jtis = |list: Vec<lanyard_core::model::OutboxEvent>| {
        list.into_iter().map(|e| e.jti).collect::<Vec<_>>()
    };
    assert_eq!(
        jtis(events.pending(&app, 10).await.unwrap()),
        ["a1", "a2", "a3"]
    );
    assert_eq!(
        events.due_channels(at(1_000), 10).await.unwrap(),
        vec![app.clone()]
    );

    // One holder at a time, until the hold runs out.
    let hold = Duration::from_secs(60);
    let mut stale = events.claim(&app, at(1_000), hold).await.unwrap().unwrap();
    assert!(stale.until() >= at(61_000) && stale.until() < at(62_000));
    assert!(events.claim(&app, at(2_000), hold).await.unwrap().is_none());
    assert!(
        events.due_channels(at(2_000), 10).await.unwrap().is_empty(),
        "held"
    );
    let mut held = events
        .claim(&app, at(62_001), hold)
        .await
        .unwrap()
        .expect("a dead holder's claim runs out");

    // The holder whose hold ran out can no longer record anything, nor free the channel:
    // the new holder alone delivers it.
    let first = events.pending(&app, 1).await.unwrap().remove(0);
    assert!(
        !events
            .renew(&app, &mut stale, at(62_002), hold)
            .await
            .unwrap()
    );
    assert!(
        !events
            .finished(&app, stale, first.seq, "delivered", None, at(62_002))
            .await
            .unwrap()
    );
    assert!(
        !events
            .retry_at(&app, stale, first.seq, at(90_000), "late")
            .await
            .unwrap()
    );
    events.release(&app, stale).await.unwrap();
    assert!(
        events
            .claim(&app, at(62_003), hold)
            .await
            .unwrap()
            .is_none(),
        "still held by the new holder"
    );
    assert_eq!(
        jtis(events.pending(&app, 10).await.unwrap()),
        ["a1", "a2", "a3"]
    );
    let before = held;
    assert!(
        events
            .renew(&app, &mut held, at(63_000), hold)
            .await
            .unwrap()
    );
    assert_ne!(held, before);

    // The first fails: the channel waits, then the first is tried again.
    assert!(
        events
            .retry_at(&app, held, first.seq, at(70_000), "the app answered 503")
            .await
            .unwrap()
    );
    events.release(&app, held).await.unwrap();
    assert!(
        events
            .claim(&app, at(69_999), hold)
            .await
            .unwrap()
            .is_none(),
        "not due before its time"
    );
    assert!(
        events
            .due_channels(at(69_999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        events.due_channels(at(70_000), 10).await.unwrap(),
        vec![app.clone()]
    );
    let again = events.pending(&app, 1).await.unwrap().remove(0);
    assert_eq!((again.jti.as_str(), again.attempts), ("a1", 1));
    let state = &events
        .states(Some(std::slice::from_ref(&app)))
        .await
        .unwrap()[0];
    assert_eq!(
        (state.pending, state.attempts, state.kind.as_str()),
        (3, 1, "backchannel")
    );
    assert_eq!(state.last_error.as_deref(), Some("the app answered 503"));
    assert_eq!(state.next_attempt_at, Some(70));

    let held = events.claim(&app, at(70_000), hold).await.unwrap().unwrap();
    assert!(
        events
            .finished(&app, held, again.seq, "delivered", None, at(71_000))
            .await
            .unwrap()
    );
    events.release(&app, held).await.unwrap();
    let state = &events
        .states(Some(std::slice::from_ref(&app)))
        .await
        .unwrap()[0];
    assert_eq!(
        (state.pending, state.attempts, state.next_attempt_at),
        (2, 0, None)
    );
    assert_eq!(state.last_delivered_at, Some(71));
    assert_eq!(jtis(events.pending(&app, 10).await.unwrap()), ["a2", "a3"]);

    // A polled stream: never due for pushing; acknowledged by jti, its own only.
    let polled = Channel::Stream("p".to_owned());
    db.streams()
        .create(&Stream {
            config: StreamConfig {
                method: DeliveryMethod::Poll,
                endpoint_url: None,
                ..stream("p", "saas", None).config
            },
            ..stream("p", "saas", None)
        })
        .await
        .unwrap();
    events
        .enqueue(&[event(&polled, "p1"), event(&polled, "p2")], at(72_000))
        .await
        .unwrap();
    assert_eq!(
        events.due_channels(at(72_000), 10).await.unwrap(),
        vec![app.clone()]
    );
    let acked = events
        .acknowledge(
            &polled,
            &["p1".to_owned(), "a2".to_owned(), "nope".to_owned()],
            "delivered",
            None,
            at(73_000),
        )
        .await
        .unwrap();
    assert_eq!(acked, 1, "only this channel's");
    assert_eq!(jtis(events.pending(&polled, 10).await.unwrap()), ["p2"]);
    assert_eq!(jtis(events.pending(&app, 10).await.unwrap()), ["a2", "a3"]);

    // A jti is unique.
    assert!(
        events
            .enqueue(&[event(&app, "a3")], at(74_000))
            .await
            .is_err()
    );

    // Pruning: only what was done before the time given.
    assert_eq!(events.prune(at(72_000)).await.unwrap(), 1, "a1");
    assert_eq!(events.prune(at(80_000)).await.unwrap(), 1, "p1");
    assert_eq!(events.history(&app).await.unwrap().len(), 2);
}

/// Only what can be delivered is queued or taken: an event for a stream deleted meanwhile is
/// not queued; a paused stream is not taken, and its holder stops at the next event; stream
/// events nobody took within a day are given up, an app's logouts are not.
pub(crate) async fn the_outbox_takes_only_what_can_be_delivered(db: Db) {
    let events = db.events();
    let hold = Duration::from_secs(60);
    let gone = Channel::Stream("gone".to_owned());
    events
        .enqueue(&[event(&gone, "g1")], at(1_000))
        .await
        .unwrap();
    assert!(events.history(&gone).await.unwrap().is_empty());

    let pushed = Channel::Stream("s".to_owned());
    let mut s = stream("s", "saas", None);
    db.streams().create(&s).await.unwrap();
    let app = Channel::Backchannel("wiki".to_owned());
    events
        .enqueue(
            &[event(&pushed, "s1"), event(&gone, "g2"), event(&app, "w1")],
            at(2_000),
        )
        .await
        .unwrap();
    assert!(
        events.history(&gone).await.unwrap().is_empty(),
        "no channel is made for a stream"
    );
    let mut due = events.due_channels(at(2_000), 10).await.unwrap();
    due.sort_by_key(Channel::key);
    assert_eq!(due, vec![app.clone(), pushed.clone()]);

    let mut held = events
        .claim(&pushed, at(2_000), hold)
        .await
        .unwrap()
        .unwrap();
    s.status = StreamStatus::Paused;
    assert!(db.streams().save(&s, at(2_500)).await.unwrap());
    assert!(
        !events
            .renew(&pushed, &mut held, at(3_000), hold)
            .await
            .unwrap(),
        "a paused stream's holder stops"
    );
    events.release(&pushed, held).await.unwrap();
    assert!(
        events
            .claim(&pushed, at(3_000), hold)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        events.due_channels(at(3_000), 10).await.unwrap(),
        vec![app.clone()]
    );

    let day = 24 * 3600 * 1000;
    assert_eq!(
        events
            .expire_stream_events(at(2_000), at(day))
            .await
            .unwrap(),
        0,
        "not older than the limit"
    );
    assert_eq!(
        events
            .expire_stream_events(at(2_001), at(day + 2_001))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        events.history(&pushed).await.unwrap(),
        vec![("s1".to_owned(), Some("failed".to_owned()))]
    );
    assert_eq!(
        events.history(&app).await.unwrap(),
        vec![("w1".to_owned(), None)]
    );
}

/// On PostgreSQL, events of one channel are numbered in the order they commit: a writer
/// queueing for a channel waits for another transaction that holds it (on SQLite, for any
/// writer), so a reader never sees a later event before an earlier one commits.
pub(crate) async fn queueing_waits_for_an_earlier_writer_of_the_channel(kind: &str) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let database = match kind {
        "sqlite" => TestDatabase::sqlite("lanyard-sql"),
        _ => TestDatabase::postgres("lanyard_sql").await,
    };
    let db = database.open().await;
    db.streams()
        .create(&stream("s", "saas", None))
        .await
        .unwrap();
    let app = Channel::Stream("s".to_owned());
    db.events()
        .enqueue(&[event(&app, "a1")], at(1_000))
        .await
        .unwrap();

    // Another transaction holds the channel, as an enqueue does between its lock and its
    // commit, and has queued an event.
    let raw = sea_orm::Database::connect(&database.url).await.unwrap();
    let txn = raw.begin().await.unwrap();
    txn.execute_unprepared("UPDATE event_channels SET channel = channel WHERE channel = 'ssf s'")
        .await
        .unwrap();
    txn.execute_unprepared(
        "INSERT INTO event_outbox (channel, jti, payload, created_at, attempts) \
         VALUES ('ssf s', 'a2', '{}', 2000, 0)",
    )
    .await
    .unwrap();

    let later = tokio::spawn({
        let db = db.clone();
        let app = app.clone();
        async move { db.events().enqueue(&[event(&app, "a3")], at(3_000)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !later.is_finished(),
        "a writer for the channel waits for the transaction holding it"
    );
    txn.commit().await.unwrap();
    later.await.unwrap().unwrap();
    let pending = db.events().pending(&app, 10).await.unwrap();
    let jtis: Vec<_> = pending.iter().map(|e| e.jti.as_str()).collect();
    assert_eq!(jtis, ["a1", "a2", "a3"], "numbered in commit order");
    raw.close().await.unwrap();
    drop(db);
    database.remove().await;
}
