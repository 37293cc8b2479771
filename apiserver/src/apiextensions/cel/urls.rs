//! Kubernetes' URL library (k8s.io/apiserver/pkg/cel/library/urls.go):
//! `url`, `isURL` and the `get*` accessors, with Go's `net/url` parsing
//! rules (what upstream runs), not WHATWG's, which normalizes hosts and
//! drops default ports.

use cel::common::functions::Function;
use cel::common::types::{DYN_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::objects::{Key, Map, Opaque};
use cel::{DeclarationError, Env, ExecutionError, Value as Cel};
use std::collections::HashMap;
use std::sync::Arc;

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// A URL's parts as Go's `url.Parse` splits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    /// `host[:port]` as written, IPv6 brackets included.
    host: String,
    raw_path: String,
    raw_query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.URL"
    }
}

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], to_url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    // The receiver is an opaque value: declared as dyn, checked inside.
    let getters: [(&str, Function); 6] = [
        ("getScheme", get_scheme),
        ("getHost", get_host),
        ("getHostname", get_hostname),
        ("getPort", get_port),
        ("getEscapedPath", get_escaped_path),
        ("getQuery", get_query),
    ];
    for (name, f) in getters {
        env.add_member_overload(name, &format!("url_{name}"), DYN_TYPE, vec![], f)?;
    }
    Ok(())
}

/// Go's `url.ParseRequestURI` acceptance (an absolute URI, or an absolute
/// path), then `url.Parse`'s split, which drops the fragment.
pub fn parse(s: &str) -> Result<Url, String> {
    let fail = |why: &str| format!("parse {s:?}: {why}");
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail("net/url: invalid control character in URL"));
    }
    let (scheme, rest) = split_scheme(s).map_err(fail)?;
    if scheme.is_empty() && !rest.starts_with('/') {
        return Err(fail("invalid URI for request"));
    }
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (rest, raw_query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, raw_path) = match rest.strip_prefix("//") {
        Some(auth_and_path) => {
            let end = auth_and_path.find('/').unwrap_or(auth_and_path.len());
            let (authority, path) = auth_and_path.split_at(end);
            (parse_authority(authority).map_err(|e| fail(&e))?, path)
        }
        None => ("", rest),
    };
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        host: host.to_string(),
        raw_path: raw_path.to_string(),
        raw_query: raw_query.to_string(),
    })
}

/// `scheme:rest`, or no scheme when what precedes the first `:` can't be
/// one (Go's `getScheme`).
fn split_scheme(s: &str) -> Result<(&str, &str), &'static str> {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme"),
            ':' => return Ok((&s[..i], &s[i + 1..])),
            _ => return Ok(("", s)),
        }
    }
    Ok(("", s))
}

/// The host of `[userinfo@]host[:port]`, checked as Go checks it.
fn parse_authority(authority: &str) -> Result<&str, String> {
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if let Some(v6) = host.strip_prefix('[') {
        let close = v6.find(']').ok_or("missing ']' in host")?;
        &v6[close + 1..]
    } else {
        host.find(':').map_or("", |i| &host[i..])
    };
    let numeric = port
        .strip_prefix(':')
        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if !port.is_empty() && !numeric {
        return Err(format!("invalid port {port:?} after host"));
    }
    if let Some(c) = host.chars().find(|c| " <>\"{}|\\^`".contains(*c)) {
        return Err(format!(
            "invalid character {:?} in host name",
            c.to_string()
        ));
    }
    Ok(host)
}

impl Url {
    fn hostname(&self) -> &str {
        match self.host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.host.split(':').next().unwrap_or(""),
        }
    }

    fn port(&self) -> &str {
        let after = match self.host.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or("", |(_, p)| p),
            None => self.host.find(':').map_or("", |i| &self.host[i..]),
        };
        after.strip_prefix(':').unwrap_or("")
    }

    /// Go's `EscapedPath`: the path with what a path may not hold escaped,
    /// valid `%XX` escapes kept as written.
    fn escaped_path(&self) -> String {
        let bytes = self.raw_path.as_bytes();
        let mut out = String::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let valid_escape = b == b'%'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if valid_escape || b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@!*'()".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
            i += 1;
        }
        out
    }

    /// Go's `Query()`: repeated keys collect their values; pairs that don't
    /// unescape, or hold a `;`, are dropped.
    fn query(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for pair in self.raw_query.split('&').filter(|p| !p.is_empty()) {
            if pair.contains(';') {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(k), Some(v)) = (query_unescape(k), query_unescape(v)) {
                out.entry(k).or_default().push(v);
            }
        }
        out
    }
}

fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn string_arg(args: &Args<'_, '_>, f: &str) -> Result<String, ExecutionError> {
    match Cel::try_from(args[0].as_ref())? {
        Cel::String(s) => Ok(s.to_string()),
        other => Err(ExecutionError::no_such_overload(
            f,
            vec![other.type_of().to_string()],
        )),
    }
}

fn url_arg(args: &Args<'_, '_>, f: &str) -> Result<Url, ExecutionError> {
    match Cel::try_from(args[0].as_ref())? {
        Cel::Opaque(o) => o.downcast_ref::<Url>().cloned(),
        _ => None,
    }
    .ok_or_else(|| ExecutionError::no_such_member_overload(f, vec!["dyn".into()]))
}

fn ret<'b, 'v>(v: Cel) -> Ret<'b, 'v> {
    let boxed: Box<dyn cel::common::value::Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn string<'b, 'v>(s: &str) -> Ret<'b, 'v> {
    ret(Cel::String(Arc::new(s.to_string())))
}

fn to_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = string_arg(&args, "url")?;
    let url = parse(&s).map_err(|e| {
        ExecutionError::function_error(
            "url",
            format!("URL parse error during conversion from string: {e}"),
        )
    })?;
    ret(Cel::Opaque(Arc::new(url)))
}

fn is_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = string_arg(&args, "isURL")?;
    ret(Cel::Bool(parse(&s).is_ok()))
}

fn get_scheme<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(&url_arg(&args, "getScheme")?.scheme)
}

fn get_host<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(&url_arg(&args, "getHost")?.host)
}

fn get_hostname<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(url_arg(&args, "getHostname")?.hostname())
}

fn get_port<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(url_arg(&args, "getPort")?.port())
}

fn get_escaped_path<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(&url_arg(&args, "getEscapedPath")?.escaped_path())
}

fn get_query<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let query = url_arg(&args, "getQuery")?.query();
    let map = query
        .into_iter()
        .map(|(k, vs)| {
            let values = vs.into_iter().map(|v| Cel::String(Arc::new(v))).collect();
            (Key::String(Arc::new(k)), Cel::List(Arc::new(values)))
        })
        .collect();
    ret(Cel::Map(Map { map: Arc::new(map) }))
}
