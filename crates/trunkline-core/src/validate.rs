//! Field validation shared by every service: presence (absent / null / value), length, allowed
//! characters, with messages phrased once (in Django REST framework's words, which Ultravox
//! clients already know) and collected per field so a client sees every problem at once.

use secrecy::{ExposeSecret, SecretString};

use crate::error::{FieldErrors, ServiceError};
use crate::input::Input;

/// Which characters a text field accepts.
#[derive(Debug, Clone, Copy)]
pub enum Charset {
    /// Any character but control characters (CR/LF can never reach a SIP header or a log line).
    Printable,
    /// RFC 3261 `user`: unreserved, escaped and user-unreserved characters.
    SipUser,
    /// `[A-Za-z0-9_.-]`, Vobiz usernames.
    Word,
    /// Characters allowed inside a quoted SIP header value: printable, no `"` or `\`.
    Quotable,
}

impl Charset {
    fn accepts(self, text: &str) -> bool {
        match self {
            Charset::Printable => !text.chars().any(char::is_control),
            Charset::SipUser => text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&b)),
            Charset::Word => text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
            Charset::Quotable => !text
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\'),
        }
    }

    fn complaint(self) -> &'static str {
        match self {
            Charset::Printable => "Must not contain control characters.",
            Charset::SipUser => "Must contain only characters allowed in a SIP user part.",
            Charset::Word => "Must contain only letters, digits, `_`, `.` and `-`.",
            Charset::Quotable => "Must not contain control characters, `\"` or `\\`.",
        }
    }
}

/// Length bounds (in characters) and character set of a text field.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    pub min: usize,
    pub max: usize,
    pub charset: Charset,
}

impl TextRule {
    pub const fn new(min: usize, max: usize, charset: Charset) -> Self {
        Self { min, max, charset }
    }
}

pub const REQUIRED: &str = "This field is required.";
pub const NOT_NULL: &str = "This field may not be null.";

/// Collects field errors while a request is checked.
#[derive(Debug, Default)]
pub struct Validator {
    errors: FieldErrors,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    pub fn finish(self) -> Result<(), ServiceError> {
        self.errors.into_result()
    }

    /// Checks a text value; records problems under `field`.
    pub fn check_text(&mut self, field: &str, text: &str, rule: TextRule) -> bool {
        let length = text.chars().count();
        let mut ok = true;
        if length == 0 && rule.min > 0 {
            self.error(field, "This field may not be blank.");
            return false;
        }
        if length < rule.min {
            self.error(
                field,
                format!("Ensure this field has at least {} characters.", rule.min),
            );
            ok = false;
        }
        if length > rule.max {
            self.error(
                field,
                format!(
                    "Ensure this field has no more than {} characters.",
                    rule.max
                ),
            );
            ok = false;
        }
        if !rule.charset.accepts(text) {
            self.error(field, rule.charset.complaint());
            ok = false;
        }
        ok
    }

    /// A field that must be present and non-null (create).
    pub fn required_text(
        &mut self,
        field: &str,
        input: Input<String>,
        rule: TextRule,
    ) -> Option<String> {
        match input {
            Input::Absent => {
                self.error(field, REQUIRED);
                None
            }
            Input::Null => {
                self.error(field, NOT_NULL);
                None
            }
            Input::Value(text) => self.check_text(field, &text, rule).then_some(text),
        }
    }

    /// A nullable field on create: absent and null both mean "none".
    pub fn optional_text(
        &mut self,
        field: &str,
        input: Input<String>,
        rule: TextRule,
    ) -> Option<String> {
        match input {
            Input::Value(text) => {
                self.check_text(field, &text, rule);
                Some(text)
            }
            Input::Absent | Input::Null => None,
        }
    }

    /// A field on a partial update: absent keeps, null clears (only if `nullable`), a value
    /// replaces.
    pub fn patch_text(
        &mut self,
        field: &str,
        input: Input<String>,
        rule: TextRule,
        nullable: bool,
    ) -> Input<String> {
        match input {
            Input::Null if !nullable => {
                self.error(field, NOT_NULL);
                Input::Absent
            }
            Input::Value(text) => {
                self.check_text(field, &text, rule);
                Input::Value(text)
            }
            other => other,
        }
    }

    /// A required secret (create).
    pub fn required_secret(
        &mut self,
        field: &str,
        input: Input<SecretString>,
        rule: TextRule,
    ) -> Option<SecretString> {
        match input {
            Input::Absent => {
                self.error(field, REQUIRED);
                None
            }
            Input::Null => {
                self.error(field, NOT_NULL);
                None
            }
            Input::Value(secret) => self.check_secret(field, secret, rule),
        }
    }

    /// Length and charset of a secret, without ever echoing it.
    pub fn check_secret(
        &mut self,
        field: &str,
        secret: SecretString,
        rule: TextRule,
    ) -> Option<SecretString> {
        self.check_text(field, secret.expose_secret(), rule)
            .then_some(secret)
    }

    /// A required boolean or other plain value (create).
    pub fn required<T>(&mut self, field: &str, input: Input<T>) -> Option<T> {
        match input {
            Input::Absent => {
                self.error(field, REQUIRED);
                None
            }
            Input::Null => {
                self.error(field, NOT_NULL);
                None
            }
            Input::Value(value) => Some(value),
        }
    }

    /// An optional boolean or other plain value (create): `default` when absent; `null` is an
    /// error (the value returned then is `default`, and `finish` fails).
    pub fn or_default<T>(&mut self, field: &str, input: Input<T>, default: T) -> T {
        match input {
            Input::Absent => default,
            Input::Null => {
                self.error(field, NOT_NULL);
                default
            }
            Input::Value(value) => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: TextRule = TextRule::new(1, 5, Charset::Word);

    #[test]
    fn reports_presence_length_and_charset_per_field() {
        let mut v = Validator::new();
        assert_eq!(v.required_text("a", Input::Absent, RULE), None);
        assert_eq!(v.required_text("b", Input::Null, RULE), None);
        assert_eq!(
            v.required_text("c", Input::Value("toolong".into()), RULE),
            None
        );
        assert_eq!(v.required_text("d", Input::Value("a b".into()), RULE), None);
        assert_eq!(
            v.required_text("e", Input::Value(String::new()), RULE),
            None
        );
        assert_eq!(
            v.required_text("f", Input::Value("ok".into()), RULE),
            Some("ok".into())
        );
        let Err(ServiceError::Validation(errors)) = v.finish() else {
            panic!("expected errors")
        };
        let fields: Vec<_> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn control_characters_never_pass() {
        let mut v = Validator::new();
        let rule = TextRule::new(0, 100, Charset::Printable);
        assert!(!v.check_text("x", "a\r\nVia: evil", rule));
        assert!(!Charset::SipUser.accepts("alice\r\n"));
        assert!(Charset::SipUser.accepts("+14155550123"));
        assert!(!Charset::Quotable.accepts("a\"b"));
    }
}
