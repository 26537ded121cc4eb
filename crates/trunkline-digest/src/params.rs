//! The `Digest k=v, k="quoted"` header syntax both sides read and write (RFC 7616 §3.3–3.4,
//! RFC 3261 §25.1), and the bounds on what the other side may make us keep: the header length,
//! the number of parameters and the length of every value.
//!
//! A challenge from a registrar and an answer from a device are read by the same code, so both
//! are bounded alike.

use std::borrow::Cow;

/// The largest header value (challenge or answer) read at all.
pub const MAX_HEADER_LEN: usize = 4096;
/// The most auth-params one header value may carry.
pub const MAX_PARAMS: usize = 32;
/// The longest realm kept.
pub const MAX_REALM_LEN: usize = 256;
/// The longest nonce, opaque or other parameter value kept.
pub const MAX_PARAM_LEN: usize = 1024;

/// Why a header value could not be read as `Digest` auth-params.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamError {
    #[error("not a Digest header")]
    NotDigest,
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("refused: {0}")]
    TooLarge(&'static str),
}

/// Reads a `Digest` header value and returns the values of the parameters named in `names`
/// (case-insensitively), in that order, unquoted and unescaped; other parameters are ignored,
/// and a named one given twice is malformed (which one would count?).
///
/// Refused before anything is kept: a value longer than [`MAX_HEADER_LEN`], more than
/// [`MAX_PARAMS`] parameters (ignored ones count too), a `realm` longer than [`MAX_REALM_LEN`]
/// or any value, ignored or not, longer than [`MAX_PARAM_LEN`] bytes once unescaped.
pub(crate) fn read_named<'a, const N: usize>(
    header_value: &'a str,
    names: [&str; N],
) -> Result<[Option<Cow<'a, str>>; N], ParamError> {
    if header_value.len() > MAX_HEADER_LEN {
        return Err(ParamError::TooLarge("header value longer than 4096 bytes"));
    }
    let value = header_value.trim_start_matches(is_lws);
    let scheme_end = value.find(is_lws).unwrap_or(value.len());
    if !value[..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(ParamError::NotDigest);
    }
    let mut values = std::array::from_fn(|_| None);
    let mut params = Params(&value[scheme_end..]);
    let mut count = 0;
    while let Some((name, value)) = params.next_param()? {
        count += 1;
        if count > MAX_PARAMS {
            return Err(ParamError::TooLarge("more than 32 parameters"));
        }
        if name.eq_ignore_ascii_case("realm") && value.len() > MAX_REALM_LEN {
            return Err(ParamError::TooLarge("realm longer than 256 bytes"));
        }
        if value.len() > MAX_PARAM_LEN {
            return Err(ParamError::TooLarge(
                "a parameter value longer than 1024 bytes",
            ));
        }
        let Some(slot) = names
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        if values[slot].replace(value).is_some() {
            return Err(ParamError::Malformed("a parameter is repeated"));
        }
    }
    Ok(values)
}

/// Appends `value` as a quoted string, escaping `"` and `\`.
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// SIP linear white space, once folded lines are joined.
pub(crate) fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// The comma-separated `name=value` auth-params after the scheme.
struct Params<'a>(&'a str);

impl<'a> Params<'a> {
    /// The next parameter, with the value unquoted and unescaped; `None` at the end.
    fn next_param(&mut self) -> Result<Option<(&'a str, Cow<'a, str>)>, ParamError> {
        let rest = self.0.trim_start_matches(|c| is_lws(c) || c == ',');
        if rest.is_empty() {
            return Ok(None);
        }
        let name_end = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
        if name_end == 0 {
            return Err(ParamError::Malformed("expected a parameter name"));
        }
        let name = &rest[..name_end];
        let rest = rest[name_end..]
            .trim_start_matches(is_lws)
            .strip_prefix('=')
            .ok_or(ParamError::Malformed("parameter without a value"))?
            .trim_start_matches(is_lws);
        let (value, rest) = match rest.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = rest.find(|c| is_lws(c) || c == ',').unwrap_or(rest.len());
                if end == 0 {
                    return Err(ParamError::Malformed("parameter without a value"));
                }
                (Cow::Borrowed(&rest[..end]), &rest[end..])
            }
        };
        let rest = rest.trim_start_matches(is_lws);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return Err(ParamError::Malformed("expected a comma between parameters"));
        }
        self.0 = rest;
        Ok(Some((name, value)))
    }
}

/// Reads a quoted string whose opening quote is already consumed: its unescaped value and what
/// follows the closing quote. Borrows unless there are escapes.
fn unquote(s: &str) -> Result<(Cow<'_, str>, &str), ParamError> {
    const UNTERMINATED: ParamError = ParamError::Malformed("unterminated quoted string");
    let mut owned: Option<String> = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = owned.map_or(Cow::Borrowed(&s[..i]), Cow::Owned);
                return Ok((value, &s[i + 1..]));
            }
            '\\' => {
                let (_, escaped) = chars.next().ok_or(UNTERMINATED)?;
                owned.get_or_insert_with(|| s[..i].to_owned()).push(escaped);
            }
            c => {
                if let Some(owned) = owned.as_mut() {
                    owned.push(c);
                }
            }
        }
    }
    Err(UNTERMINATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_parameters_whatever_their_order_and_case() {
        let [a, c, missing, d, e] = read_named(
            r#" digest e=f, C = "x, \"y\" \\z" ,,d="",ignored=1,a=b"#,
            ["a", "c", "missing", "d", "e"],
        )
        .unwrap();
        assert_eq!(a.as_deref(), Some("b"));
        assert_eq!(c.as_deref(), Some(r#"x, "y" \z"#));
        assert_eq!(missing, None);
        assert_eq!(d.as_deref(), Some(""));
        assert_eq!(e.as_deref(), Some("f"));
        assert_eq!(read_named("Digest", ["a"]).unwrap(), [None]);
    }

    #[test]
    fn a_named_parameter_twice_is_malformed_an_ignored_one_is_not() {
        assert_eq!(
            read_named("Digest a=1, A=2", ["a"]),
            Err(ParamError::Malformed("a parameter is repeated"))
        );
        let [a] = read_named("Digest x=1, a=1, x=2", ["a"]).unwrap();
        assert_eq!(a.as_deref(), Some("1"));
    }

    #[test]
    fn push_quoted_escapes_what_unquote_reads_back() {
        let mut out = String::new();
        push_quoted(&mut out, r#"a"b\c"#);
        assert_eq!(out, r#""a\"b\\c""#);
        let (value, rest) = unquote(&out[1..]).unwrap();
        assert_eq!((value.as_ref(), rest), (r#"a"b\c"#, ""));
    }
}
