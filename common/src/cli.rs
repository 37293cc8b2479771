//! Flag parsing as every daemon does it: a bad flag exits with 64
//! (EX_USAGE) before anything is bound; --help and --version exit 0.

/// The parsed flags of this process, or exit.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() { 64 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}

/// The daemon's settings from its flags, or exit 64 (EX_USAGE) saying why.
pub fn settings_or_exit<T, E: std::fmt::Display>(daemon: &str, settings: Result<T, E>) -> T {
    settings.unwrap_or_else(|e| {
        eprintln!("{daemon}: {e}");
        std::process::exit(64);
    })
}

/// A client of the apiserver from `--kubeconfig`, or exit 1 saying why.
pub async fn client_or_exit(
    kubeconfig: Option<&std::path::Path>,
    user_agent: &str,
) -> kube::Client {
    match crate::client::from_kubeconfig(kubeconfig, user_agent).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the apiserver");
            std::process::exit(1);
        }
    }
}

/// The `--bind-address`/`--secure-port` listener (None when the port is
/// 0), or exit 1 saying why.
pub async fn listener_or_exit(
    address: std::net::IpAddr,
    port: u16,
) -> Option<tokio::net::TcpListener> {
    if port == 0 {
        return None;
    }
    let addr = std::net::SocketAddr::new(address, port);
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            std::process::exit(1);
        }
    }
}

/// A Go duration as upstream flags take it: `15s`, `100ms`, `1m30s`, `2h`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("an empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: a number without a unit"))?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("{s:?}: not a duration"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("{s:?}: unknown unit {unit:?}")),
        };
        total += number * scale;
        rest = tail;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        let cases = [
            ("15s", Ok(Duration::from_secs(15))),
            ("100ms", Ok(Duration::from_millis(100))),
            ("1m30s", Ok(Duration::from_secs(90))),
            ("0", Ok(Duration::ZERO)),
            ("1.5h", Ok(Duration::from_secs(5400))),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), want, "{s}");
        }
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
