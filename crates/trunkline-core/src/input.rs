//! [`Input`]: one request field as the client sent it — absent, `null`, or a value.
//!
//! Create and update calls need all three cases: "required" and "may not be null" are different
//! messages, and a partial update keeps absent fields but clears nulled ones. Dialect request
//! types declare fields as `#[serde(default)] Input<T>`.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Input<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Input<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Input::Absent)
    }

    pub fn as_ref(&self) -> Input<&T> {
        match self {
            Input::Absent => Input::Absent,
            Input::Null => Input::Null,
            Input::Value(v) => Input::Value(v),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Input<U> {
        match self {
            Input::Absent => Input::Absent,
            Input::Null => Input::Null,
            Input::Value(v) => Input::Value(f(v)),
        }
    }

    /// The value, if one was sent.
    pub fn value(self) -> Option<T> {
        match self {
            Input::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Input::Value(value),
            None => Input::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        a: Input<String>,
        #[serde(default)]
        b: Input<String>,
        #[serde(default)]
        c: Input<String>,
    }

    #[test]
    fn distinguishes_absent_null_and_value() {
        let body: Body = serde_json::from_str(r#"{"b": null, "c": "x"}"#).unwrap();
        assert_eq!(body.a, Input::Absent);
        assert_eq!(body.b, Input::Null);
        assert_eq!(body.c, Input::Value("x".to_owned()));
    }
}
