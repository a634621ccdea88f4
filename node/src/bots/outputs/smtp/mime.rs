//! The MIME messages the SMTP outputs send, laid out as Python's `email` package writes them
//! (IntelMQ builds them with `MIMEMultipart`/`MIMEText` and `EmailMessage`): a `multipart/mixed`
//! message with a `===============<digits>==` boundary, parts with their headers in Python's order,
//! text parts as 7bit when they are ASCII (else base64 in UTF-8), binary attachments in base64
//! lines of 76 characters. Header values that are not ASCII are RFC 2047 encoded words (UTF-8,
//! base64). Lines end with "\n" here; the SMTP client sends them as CRLF.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

/// A header name and value.
pub type Header = (String, String);

/// One part of a multipart message: its headers and its encoded body.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub headers: Vec<Header>,
    pub body: String,
}

fn h(name: &str, value: impl Into<String>) -> Header {
    (name.to_string(), value.into())
}

/// `data` in base64 lines of at most 76 characters, each ending with "\n" (Python's
/// `encode_base64` for mail bodies).
pub fn base64_lines(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for chunk in data.chunks(57) {
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(chunk));
        out.push('\n');
    }
    out
}

/// A header value: as it is when ASCII, else RFC 2047 encoded words (`=?utf-8?b?...?=`, at most
/// 45 bytes of text each, cut at character boundaries).
pub fn encode_header(value: &str) -> String {
    if value.is_ascii() && !value.contains(['\r', '\n']) {
        return value.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars().filter(|c| *c != '\r' && *c != '\n') {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `MIMEText(text, subtype)`: `text/<subtype>; charset="us-ascii"` and 7bit when the
/// text is ASCII, else `charset="utf-8"` and base64. Headers: Content-Type, MIME-Version,
/// Content-Transfer-Encoding.
pub fn mime_text(text: &str, subtype: &str) -> Part {
    if text.is_ascii() {
        Part {
            headers: vec![
                h("Content-Type", format!("text/{subtype}; charset=\"us-ascii\"")),
                h("MIME-Version", "1.0"),
                h("Content-Transfer-Encoding", "7bit"),
            ],
            body: text.to_string(),
        }
    } else {
        Part {
            headers: vec![
                h("Content-Type", format!("text/{subtype}; charset=\"utf-8\"")),
                h("MIME-Version", "1.0"),
                h("Content-Transfer-Encoding", "base64"),
            ],
            body: base64_lines(text.as_bytes()),
        }
    }
}

/// Python's `EmailMessage.add_attachment(text, disposition='inline')` part: `text/plain;
/// charset="utf-8"`, the lines joined with "\n" and ending with "\n", 7bit when ASCII with lines
/// of at most 78 bytes, else base64 (Python may choose 8bit or quoted-printable there).
pub fn inline_text(text: &str) -> Part {
    let lines: Vec<&str> = text.lines().collect();
    let mut normal = lines.join("\n");
    normal.push('\n');
    let short = lines.iter().all(|l| l.len() <= 78);
    let (cte, body) =
        if normal.is_ascii() && short { ("7bit", normal) } else { ("base64", base64_lines(normal.as_bytes())) };
    Part {
        headers: vec![
            h("Content-Type", "text/plain; charset=\"utf-8\""),
            h("Content-Transfer-Encoding", cte),
            h("Content-Disposition", "inline"),
            h("MIME-Version", "1.0"),
        ],
        body,
    }
}

/// A `filename="..."` parameter value (quotes and backslashes escaped; non-ASCII as RFC 2047).
fn quoted_param(value: &str) -> String {
    let v = encode_header(value);
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Python's `EmailMessage.add_attachment(bytes, maintype, subtype, disposition='attachment',
/// filename=name)` part: base64 body.
pub fn attachment(data: &[u8], content_type: &str, filename: &str) -> Part {
    Part {
        headers: vec![
            h("Content-Type", content_type),
            h("Content-Transfer-Encoding", "base64"),
            h("Content-Disposition", format!("attachment; filename={}", quoted_param(filename))),
            h("MIME-Version", "1.0"),
        ],
        body: base64_lines(data),
    }
}

/// Adds `Content-Disposition: attachment; filename="<name>"` to a part (Python's `add_header`).
pub fn with_attachment_name(mut part: Part, filename: &str) -> Part {
    part.headers.push(h("Content-Disposition", format!("attachment; filename={}", quoted_param(filename))));
    part
}

/// A boundary as Python's `email.generator` makes them: 15 `=`, 19 digits, `==`.
fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut x = (nanos as u64) ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 for well-spread digits
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    format!("==============={:019}==", x % 10_000_000_000_000_000_000)
}

/// A `multipart/mixed` message. `top` holds the headers in order; the `Content-Type` header
/// (with the boundary) is put where `top` has a `Content-Type` entry (its value is replaced),
/// or first. Every header value is RFC 2047 encoded when needed.
pub fn multipart(top: &[Header], parts: &[Part]) -> String {
    let mut boundary = new_boundary();
    while parts.iter().any(|p| p.body.contains(&boundary)) {
        boundary = new_boundary();
    }
    let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
    let mut out = String::new();
    let mut placed = false;
    for (name, value) in top {
        if name.eq_ignore_ascii_case("Content-Type") {
            out.push_str(&format!("Content-Type: {content_type}\n"));
            placed = true;
        } else {
            out.push_str(&format!("{name}: {}\n", encode_header(value)));
        }
    }
    if !placed {
        out = format!("Content-Type: {content_type}\n{out}");
    }
    out.push('\n');
    for part in parts {
        out.push_str(&format!("--{boundary}\n"));
        for (name, value) in &part.headers {
            out.push_str(&format!("{name}: {}\n", encode_header(value)));
        }
        out.push('\n');
        out.push_str(&part.body);
        out.push('\n');
    }
    out.push_str(&format!("--{boundary}--\n"));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_are_76_characters() {
        let text = base64_lines(&[b'a'; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].len(), 76);
        assert!(text.ends_with('\n'));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn non_ascii_header_values_are_encoded_words() {
        assert_eq!(encode_header("plain"), "plain");
        assert_eq!(encode_header("Grüße"), "=?utf-8?b?R3LDvMOfZQ==?=");
    }

    #[test]
    fn mime_text_is_7bit_for_ascii_and_base64_otherwise() {
        assert_eq!(mime_text("foobar", "plain").headers[2].1, "7bit");
        let p = mime_text("ü", "csv");
        assert_eq!(p.headers[0].1, "text/csv; charset=\"utf-8\"");
        assert_eq!(p.body, "w7w=\n");
    }

    #[test]
    fn inline_text_ends_with_a_newline() {
        assert_eq!(inline_text("URL: x").body, "URL: x\n");
        assert_eq!(inline_text("a\r\nb\n").body, "a\nb\n");
    }

    #[test]
    fn multipart_puts_the_boundary_between_parts() {
        let text = multipart(
            &[("Subject".into(), "S".into()), ("Content-Type".into(), String::new())],
            &[mime_text("x", "plain")],
        );
        let boundary = text.split("boundary=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        assert!(boundary.starts_with("===============") && boundary.len() == 36, "{boundary}");
        assert!(text.starts_with("Subject: S\nContent-Type: multipart/mixed; boundary="));
        assert!(
            text.ends_with(&format!("\n\nx\n--{boundary}--\n"))
                || text.contains(&format!("7bit\n\nx\n--{boundary}--\n"))
        );
    }
}
