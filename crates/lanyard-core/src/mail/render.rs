//! A mail's words, written once ([`Letter::of`]) and rendered twice: plain text
//! ([`Letter::text`]) and HTML in Lanyard's look ([`Letter::html`], `templates/mail.html`,
//! escaped by askama).

use std::time::Duration;

use askama::Template;

use super::{Message, Notice};
use crate::config::Config;

/// A button and the address behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The button's words.
    pub label: String,
    /// Where it goes (always under the issuer).
    pub url: String,
}

/// What a mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The subject line.
    pub subject: String,
    /// The heading.
    pub heading: String,
    /// "Hello Alice,".
    pub greeting: String,
    /// Paragraphs before the button.
    pub before: Vec<String>,
    /// The button, if any.
    pub action: Option<Action>,
    /// Paragraphs after it.
    pub after: Vec<String>,
}

#[derive(Template)]
#[template(path = "mail.html", escape = "html")]
struct Html<'a> {
    letter: &'a Letter,
    site: &'a str,
    footer: String,
}

/// "72 hours", "30 minutes", "7 days": a link's lifetime in words.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    // Up to three days in hours ("72 hours" reads better than "3 days" for a deadline).
    let (n, unit) = if s.is_multiple_of(86_400) && s > 3 * 86_400 {
        (s / 86_400, "day")
    } else if s.is_multiple_of(3600) && s >= 3600 {
        (s / 3600, "hour")
    } else {
        (s.div_ceil(60).max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

const NOT_YOU: &str = "If this was not you, change your password now and tell your IT help desk: someone may have your password.";

impl Letter {
    /// The letter for `message` to a person called `name`.
    pub fn of(message: &Message, name: &str, config: &Config) -> Self {
        let greeting = format!("Hello {name},");
        let account = config.url("/account");
        let mut letter = Self {
            subject: String::new(),
            heading: String::new(),
            greeting,
            before: Vec::new(),
            action: None,
            after: Vec::new(),
        };
        match message {
            Message::Invitation {
                username,
                link,
                valid_for,
            } => {
                letter.subject = "You are invited to sign in with Lanyard".to_owned();
                letter.heading = "Set up your account".to_owned();
                letter.before = vec![format!(
                    "An account was made for you. Your username is {username}. Follow the link to choose your password; you can add a passkey right after."
                )];
                letter.action = Some(Action {
                    label: "Set up my account".to_owned(),
                    url: link.clone(),
                });
                letter.after = vec![format!(
                    "The link works once, for {}. If it has run out, ask whoever invited you to send a new one.",
                    span(*valid_for)
                )];
            }
            Message::PasswordReset {
                username,
                link,
                valid_for,
            } => {
                letter.subject = "Reset your password".to_owned();
                letter.heading = "Reset your password".to_owned();
                letter.before = vec![format!(
                    "Someone asked to reset the password of the account {username}. Follow the link to choose a new one. Every device signed in to the account is signed out when you do."
                )];
                letter.action = Some(Action {
                    label: "Choose a new password".to_owned(),
                    url: link.clone(),
                });
                letter.after = vec![format!(
                    "The link works once, for {}. If you did not ask for it, ignore this mail: your password stays as it is.",
                    span(*valid_for)
                )];
            }
            Message::VerifyEmail { link, valid_for } => {
                letter.subject = "Confirm your e-mail address".to_owned();
                letter.heading = "Confirm your e-mail address".to_owned();
                letter.before = vec![
                    "Follow the link to confirm that this address is yours. Until you do, your apps are told it is not confirmed.".to_owned(),
                ];
                letter.action = Some(Action {
                    label: "Confirm my address".to_owned(),
                    url: link.clone(),
                });
                letter.after = vec![format!(
                    "The link works once, for {}. If you did not ask for it, ignore this mail.",
                    span(*valid_for)
                )];
            }
            Message::Notice(notice) => {
                let (subject, what) = match notice {
                    Notice::PasswordChanged { reset: true } => (
                        "Your password was reset",
                        "Your password was reset through a link sent to this address, and every device signed in to your account was signed out.".to_owned(),
                    ),
                    Notice::PasswordChanged { reset: false } => (
                        "Your password was changed",
                        "Your password was changed.".to_owned(),
                    ),
                    Notice::FactorAdded { what } => (
                        "A sign-in method was added to your account",
                        format!("{what} was added to your account as a way to sign in."),
                    ),
                    Notice::FactorRemoved { what } => (
                        "A sign-in method was removed from your account",
                        format!("{what} was removed from your account."),
                    ),
                    Notice::EmailChanging { new_address } => (
                        "Your e-mail address is being changed",
                        format!(
                            "Someone asked to change your account's address to {new_address}. It changes once a link sent there is followed; until then this address stays."
                        ),
                    ),
                };
                letter.subject = subject.to_owned();
                letter.heading = subject.to_owned();
                letter.before = vec![what];
                letter.action = Some(Action {
                    label: "Review my account".to_owned(),
                    url: account,
                });
                letter.after = vec![NOT_YOU.to_owned()];
            }
        }
        letter
    }

    fn footer(config: &Config) -> String {
        format!(
            "Sent by Lanyard, the sign-in service at {}. You get this mail because it concerns your account there.",
            config.issuer
        )
    }

    /// The plain-text part.
    pub fn text(&self, config: &Config) -> String {
        let mut out = format!("{}\n\n", self.greeting);
        for p in &self.before {
            out.push_str(p);
            out.push_str("\n\n");
        }
        if let Some(action) = &self.action {
            out.push_str(&format!("{}:\n{}\n\n", action.label, action.url));
        }
        for p in &self.after {
            out.push_str(p);
            out.push_str("\n\n");
        }
        out.push_str("-- \n");
        out.push_str(&Self::footer(config));
        out.push('\n');
        out
    }

    /// The HTML part.
    pub fn html(&self, config: &Config) -> String {
        let site = config
            .issuer
            .split_once("://")
            .map_or(config.issuer.as_str(), |(_, host)| host);
        let page = Html {
            letter: self,
            site,
            footer: Self::footer(config),
        };
        // A template that fails to render is a bug of ours: send the text alone then.
        page.render()
            .unwrap_or_else(|_| format!("<pre>{}</pre>", html_escape(&self.text(config))))
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(Duration::from_secs(72 * 3600)), "72 hours");
        assert_eq!(span(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(span(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(span(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(span(Duration::from_secs(60)), "1 minute");
    }

    #[test]
    fn both_parts_carry_the_link_and_the_html_escapes_what_people_typed() {
        let config = Config::default();
        let message = Message::Invitation {
            username: "<b>eve</b>".to_owned(),
            link: "http://localhost:8080/invitation?token=abc".to_owned(),
            valid_for: Duration::from_secs(72 * 3600),
        };
        let letter = Letter::of(&message, "Eve & <i>co</i>", &config);
        let text = letter.text(&config);
        let html = letter.html(&config);
        assert!(text.contains("http://localhost:8080/invitation?token=abc"));
        assert!(text.contains("72 hours"));
        assert!(html.contains("href=\"http://localhost:8080/invitation?token=abc\""));
        assert!(
            html.contains("Eve &#38; &#60;i&#62;co&#60;/i&#62;"),
            "{html}"
        );
        assert!(!html.contains("<b>eve</b>"));
    }
}
