//! How keys and values are spelled on the command line: as text (their UTF-8 bytes) or, with
//! `--hex`, as hexadecimal; how keys are shown in reports (text when printable, else hex); and
//! how `scan` prints arbitrary bytes as one line of text ([`escape_text`]).

use crate::cli_error::{CliError, CliResult};

/// The spelling of keys and values in arguments and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The bytes of the UTF-8 text; values are printed as their raw bytes.
    Text,
    /// Hexadecimal digits, two per byte (an optional `0x` prefix is accepted on input).
    Hex,
}

impl Encoding {
    /// `Hex` if the `--hex` flag is set.
    pub fn from_hex_flag(hex: bool) -> Self {
        if hex {
            Encoding::Hex
        } else {
            Encoding::Text
        }
    }

    /// The bytes an argument spells; `what` names the argument in the error.
    pub fn decode(self, arg: &str, what: &str) -> CliResult<Vec<u8>> {
        match self {
            Encoding::Text => Ok(arg.as_bytes().to_vec()),
            Encoding::Hex => decode_hex(arg).map_err(|why| {
                CliError::usage(format!("{what} {arg:?} is not hexadecimal: {why}"))
            }),
        }
    }

    /// The bytes to print for `bytes` (without the trailing newline).
    pub fn encode(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Encoding::Text => bytes.to_vec(),
            Encoding::Hex => encode_hex(bytes).into_bytes(),
        }
    }
}

/// Lower-case hexadecimal of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The bytes of hexadecimal `s` (either case, optional `0x`).
pub fn decode_hex(s: &str) -> Result<Vec<u8>, &'static str> {
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return Err("odd number of digits");
    }
    let digit = |c: u8| -> Result<u8, &'static str> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or("a character is not a hexadecimal digit")
    };
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// `bytes` for a report: as text if every byte is printable ASCII, else `0x` and hex; cut to
/// about `max_chars` characters with a trailing `…`.
pub fn display_key(bytes: &[u8], max_chars: usize) -> String {
    let printable = !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    let full = if printable {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        format!("0x{}", encode_hex(bytes))
    };
    if full.chars().count() <= max_chars {
        full
    } else {
        let mut cut: String = full.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `bytes` as text that fits on one line of tab-separated output: valid UTF-8 as itself,
/// except `\\`, `\t`, `\n`, `\r`, and other control characters (`\xNN` below 0x80, else
/// `\u{NN}`); each byte that is not part of valid UTF-8 as `\xNN`. Appended to `out`.
pub fn escape_text(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() && c.is_ascii() => push_byte_escape(out, c as u8),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_byte_escape(out, b);
        }
    }
}

/// Appends `\xNN`.
fn push_byte_escape(out: &mut String, b: u8) {
    out.push_str("\\x");
    out.push_str(&encode_hex(&[b]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_digits() {
        // Proves encode/decode invert each other over all byte values and bad input is refused.
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex(&encode_hex(&all)).unwrap(), all);
        assert_eq!(decode_hex("0xABcd").unwrap(), vec![0xab, 0xcd]);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
        assert!(Encoding::Hex.decode("0g", "key").is_err());
        assert_eq!(Encoding::Text.decode("hé", "key").unwrap(), "hé".as_bytes());
    }

    #[test]
    fn escape_text_keeps_text_and_escapes_the_rest() {
        // Proves printable UTF-8 is unchanged and separators, controls and bad bytes are escaped.
        let esc = |b: &[u8]| {
            let mut s = String::new();
            escape_text(b, &mut s);
            s
        };
        assert_eq!(esc("héllo wörld".as_bytes()), "héllo wörld");
        assert_eq!(esc(b"a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
        assert_eq!(esc(b"\x00\x1f\x7f"), "\\x00\\x1f\\x7f");
        assert_eq!(esc(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(esc("\u{85}".as_bytes()), "\\u{85}");
        assert_eq!(esc(b""), "");
    }

    #[test]
    fn display_key_prefers_text_and_cuts_long_keys() {
        // Proves printable keys stay text, binary keys become hex, and long ones are cut.
        assert_eq!(display_key(b"user:1", 20), "user:1");
        assert_eq!(display_key(&[0, 255], 20), "0x00ff");
        assert_eq!(display_key(b"abcdefghij", 5), "abcd…");
    }
}
