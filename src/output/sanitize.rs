//! Escaping remote text shown on a terminal, so it cannot move the cursor, clear the screen
//! or redraw prun's progress line: C0 control characters other than tab and newline, DEL and
//! the C1 controls (U+0080–U+009F) become visible (`^[`, `^M`, `^?`, `\u{9b}`). Only for a
//! terminal: files and pipes get the bytes unchanged.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy)]
pub struct Sanitizer {
    enabled: bool,
}

impl Sanitizer {
    pub fn new(enabled: bool) -> Self {
        Sanitizer { enabled }
    }

    /// `data` with control characters made visible (unchanged when disabled or clean).
    pub fn clean<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.enabled {
            return Cow::Borrowed(data);
        }
        crate::text::escape(data, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_on_terminals_only() {
        let s = Sanitizer::new(true);
        assert_eq!(&*s.clean(b"plain\ttext\n"), b"plain\ttext\n");
        assert_eq!(&*s.clean(b"\x1b[2Jboom\r"), b"^[[2Jboom^M");
        assert_eq!(&*s.clean(b"del\x7f"), b"del^?");
        assert_eq!(&*s.clean("csi\u{9b}".as_bytes()), b"csi\\u{9b}");
        assert_eq!(&*s.clean("é ok".as_bytes()), "é ok".as_bytes());
        assert_eq!(&*Sanitizer::new(false).clean(b"\x1b[2J"), b"\x1b[2J");
    }
}
