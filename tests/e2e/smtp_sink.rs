//! The SMTP sink of the harness (`support::smtp`): a real SMTP client's mails arrive whole —
//! envelope, headers, text and HTML parts, links — and the sink can be stopped and restarted
//! on the same port, as tests of a mail server that goes away need.

use std::time::Duration;

use lettre::message::MultiPart;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::support::smtp::SmtpSink;

/// Sends `message` to the sink with a new connection (no pool: each send connects afresh).
async fn send(sink: &SmtpSink, message: Message) -> Result<(), lettre::transport::smtp::Error> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.port())
        .build()
        .send(message)
        .await
        .map(|_| ())
}

/// A plain-text mail from Lanyard to `to`.
fn plain(to: &str, subject: &str, text: &str) -> Message {
    Message::builder()
        .from("Lanyard <lanyard@example.test>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .message_id(None)
        .body(text.to_owned())
        .unwrap()
}

#[tokio::test]
async fn the_sink_keeps_what_smtp_delivers_and_comes_back_after_a_stop() {
    let mut sink = SmtpSink::start().await;
    assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
    assert!(sink.messages().is_empty());

    let reset = Message::builder()
        .from("Lanyard <lanyard@example.test>".parse().unwrap())
        .to("Alice <alice@example.test>".parse().unwrap())
        .cc("bob@example.test".parse().unwrap())
        .subject("Reset your password")
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(
            "Hello Alice,\n\nTo choose a new password, open (within an hour) \
             http://localhost:8080/signin/reset?token=abc.\n\nÜnless it was not you."
                .to_owned(),
            "<p>Hello Alice,</p><p><a href=\"http://localhost:8080/signin/reset?token=abc\">Choose a new password</a></p>"
                .to_owned(),
        ))
        .unwrap();
    send(&sink, reset).await.unwrap();
    send(
        &sink,
        plain("carol@example.test", "Welcome", "No link here."),
    )
    .await
    .unwrap();

    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2);
    let (first, second) = (&mails[0], &mails[1]);
    assert_eq!(first.subject, "Reset your password");
    assert_eq!(first.to, ["alice@example.test", "bob@example.test"]);
    assert_eq!(first.from, "lanyard@example.test");
    assert!(
        first.text.contains("Hello Alice,\n\nTo choose"),
        "{first:#?}"
    );
    assert!(first.text.contains("Ünless it was not you."), "{first:#?}");
    assert!(first.html.starts_with("<p>Hello Alice,</p>"), "{first:#?}");
    assert!(!first.message_id.is_empty());
    assert!(String::from_utf8_lossy(&first.raw).contains("multipart/alternative"));
    assert_eq!(
        first.links(),
        ["http://localhost:8080/signin/reset?token=abc"]
    );
    assert_eq!(
        first.link_to("/signin/reset"),
        "http://localhost:8080/signin/reset?token=abc"
    );
    assert_eq!(second.subject, "Welcome");
    assert_eq!(second.to, ["carol@example.test"]);
    assert_eq!(second.text.trim_end(), "No link here.");
    assert_eq!(second.html, "");
    assert!(second.links().is_empty());
    assert_ne!(first.message_id, second.message_id);

    // Stopped, the port refuses connections.
    sink.stop().await;
    let err = send(&sink, plain("dave@example.test", "Lost", "Never arrives."))
        .await
        .unwrap_err();
    let refused =
        std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source()).any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        });
    assert!(refused, "{err:?}");

    // Restarted, on the same port, with the same folder: the earlier mails are still there.
    sink.restart().await;
    send(&sink, plain("dave@example.test", "Back", "Arrives."))
        .await
        .unwrap();
    let mails = sink.wait_for(3, Duration::from_secs(10)).await;
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["Reset your password", "Welcome", "Back"]);
    assert_eq!(mails[2].to, ["dave@example.test"]);
}
