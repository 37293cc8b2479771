//! String formats (kube-openapi's strfmt registry, restricted to what
//! apiextensions supports at v1.33; other formats are ignored, as upstream
//! strips them from the schema before validating).
//!
//! Format names are compared with dashes removed, as go-openapi does, so
//! `date-time` and `datetime` are the same format.

use regex::Regex;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

/// Formats CRD schemas may use since v1.0 (upstream's supportedVersionedFormats).
const SUPPORTED: [&str; 24] = [
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

/// go-openapi's name normalisation.
pub fn normalize(format: &str) -> String {
    format.replace('-', "")
}

/// Whether a string format is validated at all.
pub fn is_supported(format: &str) -> bool {
    SUPPORTED.contains(&normalize(format).as_str())
}

/// Whether `s` is in `format`; unsupported formats accept everything.
pub fn validates(format: &str, s: &str) -> bool {
    match normalize(format).as_str() {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => parse_ip_sloppy(s).is_some() && s.contains('.'),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok() && s.contains(':'),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => UUID.is_match(s),
        "uuid3" => UUID3.is_match(s),
        "uuid4" => UUID4.is_match(s),
        "uuid5" => UUID5.is_match(s),
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        "creditcard" => is_credit_card(s),
        "ssn" => SSN.is_match(s),
        "hexcolor" => HEXCOLOR.is_match(s),
        "rgbcolor" => RGBCOLOR.is_match(s),
        "byte" => BASE64.is_match(s),
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        _ => true,
    }
}

/// The expressions are constants; a typo in them is a bug caught by the tests.
fn re(p: &str) -> Regex {
    Regex::new(p).unwrap_or_else(|e| panic!("format regex {p}: {e}"))
}

static UUID: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID3: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
});
static UUID4: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static UUID5: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}$"));
static HEXCOLOR: LazyLock<Regex> = LazyLock::new(|| re(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGBCOLOR: LazyLock<Regex> = LazyLock::new(|| {
    let n = r"(0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])";
    re(&format!(
        r"^rgb\([\t\n\f\r ]*{n}[\t\n\f\r ]*,[\t\n\f\r ]*{n}[\t\n\f\r ]*,[\t\n\f\r ]*{n}[\t\n\f\r ]*\)$"
    ))
});
static BASE64: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$")
});
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    )
});
static CREDIT_CARD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11})$",
    )
});
static DATE_TIME_CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
});
static GO_DURATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$"));
static LOOSE_DURATION: LazyLock<Regex> = LazyLock::new(|| re(r"([0-9]+)[\t\n\f\r ]*([A-Za-zµ]+)"));

/// Go's net/url.ParseRequestURI, the parts that decide valid or not.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if s == "*" {
        return true;
    }
    let (scheme, rest) = match split_scheme(s) {
        Ok(parts) => parts,
        Err(()) => return false,
    };
    // The query is kept raw, unchecked.
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    if !rest.starts_with('/') {
        // With a scheme, a rootless rest is opaque ("mailto:x"); without, it is no request URI.
        return !scheme.is_empty();
    }
    let path = match rest.strip_prefix("//").filter(|_| !scheme.is_empty()) {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            if !valid_authority(&after[..end]) {
                return false;
            }
            &after[end..]
        }
        None => rest,
    };
    valid_escapes(path)
}

/// `scheme:` if the string starts with one; a leading ':' is an error.
fn split_scheme(s: &str) -> Result<(&str, &str), ()> {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err(()),
            ':' => return Ok((&s[..i], &s[i + 1..])),
            _ => return Ok(("", s)),
        }
    }
    Ok(("", s))
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn valid_authority(auth: &str) -> bool {
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let port = if let Some(inner) = host.strip_prefix('[') {
        match inner.split_once(']') {
            Some((_, after)) => after,
            None => return false,
        }
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's net/mail.ParseAddress accepts `addr` and `Name <addr>`; this checks
/// the shape of the address part only.
fn is_email(s: &str) -> bool {
    let s = s.trim();
    let addr = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(i), Some(_)) => &s[i + 1..s.len() - 1],
        _ => s,
    };
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !addr
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

fn is_hostname(s: &str) -> bool {
    HOSTNAME.is_match(s) && s.len() <= 255 && s.split('.').all(|p| p.len() <= 63)
}

/// k8s.io/utils/net.ParseIPSloppy: IPv4 octets may have leading zeros.
fn parse_ip_sloppy(s: &str) -> Option<std::net::IpAddr> {
    if let Ok(v6) = s.parse::<Ipv6Addr>() {
        return Some(v6.into());
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets).into())
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let max = match parse_ip_sloppy(ip) {
        Some(std::net::IpAddr::V4(_)) => 32,
        Some(std::net::IpAddr::V6(_)) => 128,
        None => return false,
    };
    !prefix.is_empty()
        && prefix.len() <= 3
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && prefix.parse::<u32>().is_ok_and(|n| n <= max)
}

/// Go's net.ParseMAC: 6, 8 or 20 octets, as `aa:bb:..`, `aa-bb-..` or `aabb.ccdd...`.
fn is_mac(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 14 {
        return false;
    }
    let groups = |size: usize, sep: u8| {
        let stride = size + 1;
        if !(b.len() + 1).is_multiple_of(stride) {
            return None;
        }
        let ok = b.chunks(stride).all(|c| {
            c[..size].iter().all(u8::is_ascii_hexdigit) && (c.len() == size || c[size] == sep)
        });
        ok.then_some((b.len() + 1) / stride * size / 2)
    };
    let n = match (b[2], b[4]) {
        (b':', _) => groups(2, b':'),
        (b'-', _) => groups(2, b'-'),
        (_, b'.') => groups(4, b'.'),
        _ => None,
    };
    matches!(n, Some(6 | 8 | 20))
}

fn is_isbn10(s: &str) -> bool {
    let d: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
        .collect();
    let shape = d.len() == 10
        && d[..9].iter().all(u8::is_ascii_digit)
        && (d[9].is_ascii_digit() || d[9] == b'X');
    if !shape {
        return false;
    }
    let head: u32 = (0..9)
        .map(|i| (i as u32 + 1) * u32::from(d[i] - b'0'))
        .sum();
    let last = if d[9] == b'X' {
        10
    } else {
        u32::from(d[9] - b'0')
    };
    (head + 10 * last).is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d: Vec<u32> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
        .map(|b| u32::from(b.wrapping_sub(b'0')))
        .collect();
    if d.len() != 13 || d.iter().any(|x| *x > 9) {
        return false;
    }
    let sum: u32 = (0..12)
        .map(|i| if i % 2 == 0 { d[i] } else { 3 * d[i] })
        .sum();
    d[12] == (10 - sum % 10) % 10
}

fn is_credit_card(s: &str) -> bool {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if !CREDIT_CARD.is_match(&digits) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match (i % 2 == 1, d * 2) {
                (false, _) => d,
                (true, x) if x >= 10 => x % 10 + 1,
                (true, x) => x,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// RFC 3339 full-date, `2006-01-02`, with a real day of a real month.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        s[0..4].parse::<i16>(),
        s[5..7].parse::<i8>(),
        s[8..10].parse::<i8>(),
    ) else {
        return false;
    };
    jiff::civil::Date::new(y, m, d).is_ok()
}

/// strfmt.IsDateTime: a date, `t`, and a clock with a zone, compared loosely.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let mut parts = lower.split('t');
    let (Some(date), Some(clock)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    DATE_TIME_CLOCK.captures(clock).is_some_and(|c| {
        let at = |i| c.get(i).map_or("", |m| m.as_str());
        at(1) <= "23" && at(2) <= "59" && at(3) <= "59"
    })
}

/// Units of strfmt's lenient durations ("3 days"); the last spelling of each
/// unit also matches as a prefix ("hours").
const DURATION_UNITS: [&[&str]; 8] = [
    &["ns", "nano"],
    &["us", "µs", "micro"],
    &["ms", "milli"],
    &["s", "sec"],
    &["m", "min"],
    &["h", "hr", "hour"],
    &["d", "day"],
    &["w", "wk", "week"],
];

/// Go's time.ParseDuration syntax, else strfmt's lenient form anywhere in the string.
fn is_duration(s: &str) -> bool {
    if s == "0" || s == "+0" || s == "-0" || GO_DURATION.is_match(s) {
        return true;
    }
    LOOSE_DURATION.captures_iter(s).any(|c| {
        let count_ok = c.get(1).is_some_and(|n| n.as_str().parse::<i64>().is_ok());
        let unit = c
            .get(2)
            .map_or(String::new(), |u| u.as_str().to_lowercase());
        count_ok
            && DURATION_UNITS.iter().any(|variants| {
                variants
                    .iter()
                    .enumerate()
                    .any(|(i, v)| (i == variants.len() - 1 && unit.starts_with(v)) || unit == *v)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_accept_and_reject_like_strfmt() {
        let cases: &[(&str, &str, bool)] = &[
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
            ("uuid", "123E4567E89B12D3A456426614174000", true),
            ("uuid", "not-a-uuid", false),
            ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
            ("uuid4", "123e4567-e89b-12d3-a456-426614174000", false),
            ("date", "2024-02-29", true),
            ("date", "2023-02-29", false),
            ("date", "2024-1-01", false),
            ("date-time", "2024-01-02T15:04:05Z", true),
            ("date-time", "2024-01-02t15:04:05.123+02:00", true),
            ("datetime", "2024-01-02T25:04:05Z", false),
            ("date-time", "2024-01-02 15:04:05Z", false),
            ("byte", "aGVsbG8=", true),
            ("byte", "aGVsbG8", false),
            ("byte", "", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "010.0.0.1", true),
            ("ipv4", "::1", false),
            ("ipv6", "fe80::1", true),
            ("ipv6", "10.0.0.1", false),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0/33", false),
            ("cidr", "fd00::/64", true),
            ("mac", "00:1a:2b:3c:4d:5e", true),
            ("mac", "001a.2b3c.4d5e", true),
            ("mac", "00:1a:2b:3c:4d", false),
            ("hostname", "example.com", true),
            ("hostname", "-bad.com", false),
            ("uri", "https://example.com/a?b=c", true),
            ("uri", "/relative/path", true),
            ("uri", "mailto:a@b.c", true),
            ("uri", "relative", false),
            ("uri", "http://host:port/", false),
            ("uri", "/bad%zz", false),
            ("email", "a@b.c", true),
            ("email", "Joe <joe@example.com>", true),
            ("email", "joe", false),
            ("duration", "1h30m", true),
            ("duration", "3 days", true),
            ("duration", "soon", false),
            ("isbn10", "0-321-75104-3", true),
            ("isbn13", "978-0321751041", true),
            ("isbn", "978-0321751042", false),
            ("creditcard", "4111 1111 1111 1111", true),
            ("creditcard", "4111 1111 1111 1112", false),
            ("ssn", "123-45-6789", true),
            ("hexcolor", "#fff", true),
            ("rgbcolor", "rgb(255, 0, 12)", true),
            ("rgbcolor", "rgb(256,0,0)", false),
            ("bsonobjectid", "507f1f77bcf86cd799439011", true),
            ("password", "anything", true),
            ("k8s-short-name", "NOT A NAME", true), // not supported at v1.33: ignored
        ];
        for (format, input, want) in cases {
            assert_eq!(validates(format, input), *want, "{format} {input:?}");
        }
    }

    #[test]
    fn supported_names_ignore_dashes() {
        assert!(is_supported("date-time"));
        assert!(is_supported("uuid"));
        assert!(!is_supported("int32"));
        assert!(!is_supported("k8s-short-name"));
    }
}
