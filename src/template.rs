//! `{name}` placeholders in a command, `--env` value or transfer path, and their rendering
//! per host. Pure text work: the plan decides what each name means for each host.
//!
//! Syntax: `{NAME}` where NAME is a var name (`[A-Za-z_][A-Za-z0-9_]*`) is replaced by the
//! host's value, shell-quoted when it is not made of safe characters only; `{NAME:raw}` puts
//! the value in as it is. `{{NAME}}` writes a literal `{NAME}`. Every other brace is left
//! alone — `${HOME}`, `{a,b}`, `{1..5}`, `find -exec {} +`, `jq '{a: 1}'` — so most commands
//! need no escaping; `awk '{print}'` does (`{{print}}`, or `--literal`).

use std::borrow::Cow;
use std::fmt;

/// A parsed template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var { name: String, raw: bool },
}

/// A placeholder whose name the host does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub String);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

/// How a value goes into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Shell-quoted when needed (commands), unless the placeholder says `:raw`.
    Shell,
    /// As it is (paths, `--env` values: no shell reads them here).
    Raw,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The placeholder at the start of `s` (which starts with `{`): its name, whether it is raw,
/// and its length in bytes.
fn placeholder(s: &str) -> Option<(&str, bool, usize)> {
    let b = s.as_bytes();
    if b.len() < 3 || !is_name_start(b[1]) {
        return None;
    }
    let mut end = 2;
    while end < b.len() && is_name(b[end]) {
        end += 1;
    }
    let name = &s[1..end];
    let rest = &s[end..];
    if rest.starts_with('}') {
        Some((name, false, end + 1))
    } else if rest.starts_with(":raw}") {
        Some((name, true, end + 5))
    } else {
        None
    }
}

impl Template {
    /// Parse `s`. Never fails: what is not a placeholder is text.
    pub fn parse(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            let Some(off) = rest.find('{') else {
                text.push_str(rest);
                break;
            };
            text.push_str(&rest[..off]);
            i += off;
            let rest = &s[i..];
            // `${NAME}` belongs to the shell
            if s[..i].ends_with('$') {
                text.push('{');
                i += 1;
                continue;
            }
            // `{{NAME}}` → a literal `{NAME}`
            if let Some(inner) = rest.strip_prefix('{')
                && let Some((_, _, len)) = placeholder(inner)
                && inner[len..].starts_with('}')
            {
                text.push_str(&inner[..len]);
                i += len + 2;
                continue;
            }
            match placeholder(rest) {
                Some((name, raw, len)) => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var {
                        name: name.to_string(),
                        raw,
                    });
                    i += len;
                }
                None => {
                    text.push('{');
                    i += 1;
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Template { parts }
    }

    /// A template of text only (what `--literal` makes of a command).
    pub fn literal(s: &str) -> Template {
        Template {
            parts: if s.is_empty() {
                vec![]
            } else {
                vec![Part::Text(s.to_string())]
            },
        }
    }

    /// Whether the template has no placeholder (it renders the same for every host).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The names used, in order of first use.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let Part::Var { name, .. } = p
                && !out.contains(&name.as_str())
            {
                out.push(name);
            }
        }
        out
    }

    /// The text with each placeholder replaced by `lookup(name)`.
    pub fn render<'v>(
        &self,
        quoting: Quoting,
        mut lookup: impl FnMut(&str) -> Option<Cow<'v, str>>,
    ) -> Result<String, Missing> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var { name, raw } => {
                    let v = lookup(name).ok_or_else(|| Missing(name.clone()))?;
                    if *raw || quoting == Quoting::Raw {
                        out.push_str(&v);
                    } else {
                        out.push_str(&quote_if_needed(&v));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `s` as one shell word: itself when it has only characters no shell treats specially,
/// else single-quoted.
pub fn quote_if_needed(s: &str) -> Cow<'_, str> {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-./:@%+=,".contains(&c));
    if safe {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(crate::target::shell_quote(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, q: Quoting) -> Result<String, Missing> {
        Template::parse(t).render(q, |n| match n {
            "host" => Some("web1".into()),
            "rack" => Some("r 1'$(x)".into()),
            "empty" => Some("".into()),
            _ => None,
        })
    }

    #[test]
    fn placeholders_are_replaced_and_quoted_when_needed() {
        assert_eq!(
            render("echo {host} {rack}", Quoting::Shell).unwrap(),
            "echo web1 'r 1'\\''$(x)'"
        );
        assert_eq!(
            render("echo {rack:raw}", Quoting::Shell).unwrap(),
            "echo r 1'$(x)"
        );
        assert_eq!(
            render("/srv/{rack}", Quoting::Raw).unwrap(),
            "/srv/r 1'$(x)"
        );
        assert_eq!(render("x{empty}y", Quoting::Shell).unwrap(), "x''y");
    }

    #[test]
    fn other_braces_are_text() {
        for t in [
            "echo ${HOME} ${host}",
            "echo {a,b} {1..5} {}",
            "find . -exec rm {} +",
            "jq '{a: {b: 1}}'",
            "echo {host",
            "echo {9x} {-x} { host }",
            "echo {host:upper}",
        ] {
            assert_eq!(render(t, Quoting::Shell).unwrap(), t, "{t}");
            assert!(Template::parse(t).is_constant(), "{t}");
        }
    }

    #[test]
    fn doubled_braces_write_a_literal_placeholder() {
        assert_eq!(
            render("awk '{{print}}' {{host}} {host}", Quoting::Shell).unwrap(),
            "awk '{print}' {host} web1"
        );
        // `{{` before something that is not a placeholder is text
        assert_eq!(render("{{a,b}}", Quoting::Shell).unwrap(), "{{a,b}}");
    }

    #[test]
    fn unknown_names_are_reported() {
        assert_eq!(
            render("awk '{print}'", Quoting::Shell),
            Err(Missing("print".into()))
        );
        let t = Template::parse("{b} {a} {b:raw}");
        assert_eq!(t.names(), ["b", "a"]);
        assert!(Template::literal("{a}").is_constant());
    }

    #[test]
    fn multibyte_text_survives() {
        assert_eq!(
            render("échо «{host}» ✓{", Quoting::Shell).unwrap(),
            "échо «web1» ✓{"
        );
    }
}
