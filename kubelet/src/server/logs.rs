//! `/containerLogs/{namespace}/{pod}/{container}`: a container's log as
//! the runtime wrote it (CRI format, `<RFC3339Nano> <stream> <P|F> <text>`),
//! with upstream's options: `follow`, `tailLines`, `previous`,
//! `timestamps`, `sinceSeconds`/`sinceTime` and `limitBytes`.

use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    /// Only lines at or after this time (unix nanoseconds).
    pub since: Option<i128>,
}

impl Options {
    /// From the query string; an invalid value is a 400 with why.
    pub fn parse(query: &str) -> Result<Options, String> {
        let mut o = Options::default();
        for (k, v) in url_pairs(query) {
            let flag = || v.is_empty() || v == "true" || v == "1";
            match k.as_str() {
                "follow" => o.follow = flag(),
                "previous" => o.previous = flag(),
                "timestamps" => o.timestamps = flag(),
                "tailLines" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("tailLines: {v:?} is not a number"))?;
                    o.tail_lines = Some(n.max(0) as usize);
                }
                "limitBytes" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("limitBytes: {v:?} is not a number"))?;
                    if n < 1 {
                        return Err("limitBytes: must be greater than 0".into());
                    }
                    o.limit_bytes = Some(n as usize);
                }
                "sinceSeconds" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("sinceSeconds: {v:?} is not a number"))?;
                    let now = jiff::Timestamp::now().as_nanosecond();
                    o.since = Some(now - i128::from(n.max(0)) * 1_000_000_000);
                }
                "sinceTime" => {
                    let t: jiff::Timestamp = v
                        .parse()
                        .map_err(|_| format!("sinceTime: {v:?} is not RFC3339"))?;
                    o.since = Some(t.as_nanosecond());
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// `a=b&c=d` with percent-decoding.
pub fn url_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One log line: its time, stream and text (a whole line, partial pieces
/// joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub time: String,
    pub nanos: i128,
    pub text: String,
}

/// Parses CRI log text into whole lines; the last piece of a partial line
/// without its end stays in `pending`.
pub fn parse(text: &str, pending: &mut Option<Line>) -> Vec<Line> {
    let mut out = Vec::new();
    for raw in text.split_inclusive('\n') {
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let mut parts = raw.splitn(4, ' ');
        let (Some(time), Some(_stream), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let content = parts.next().unwrap_or_default();
        let nanos = time
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_nanosecond())
            .unwrap_or(0);
        let line = match pending.take() {
            Some(mut p) => {
                p.text.push_str(content);
                p
            }
            None => Line {
                time: time.to_string(),
                nanos,
                text: content.to_string(),
            },
        };
        if tag == "P" {
            *pending = Some(line);
        } else {
            out.push(line);
        }
    }
    out
}

/// How a line is printed.
pub fn render(line: &Line, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}\n", line.time, line.text)
    } else {
        format!("{}\n", line.text)
    }
}

/// Applies since, tail and limit to the lines read so far.
pub fn select(lines: Vec<Line>, o: &Options) -> Vec<Line> {
    let mut lines: Vec<Line> = lines
        .into_iter()
        .filter(|l| o.since.is_none_or(|s| l.nanos >= s))
        .collect();
    if let Some(n) = o.tail_lines {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    lines
}

/// Streams the log at `path` into `tx`; with `follow`, keeps reading as
/// it grows until `running` says the container has stopped.
pub async fn stream(
    path: PathBuf,
    options: Options,
    running: impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + 'static,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            let _ = tx
                .send(Bytes::from(format!(
                    "failed to open log {}: {e}\n",
                    path.display()
                )))
                .await;
            return;
        }
    };
    let mut budget = options.limit_bytes.unwrap_or(usize::MAX);
    let mut pending = None;
    let mut text = String::new();
    if file.read_to_string(&mut text).await.is_err() {
        return;
    }
    let mut offset = text.len() as u64;
    // Keep a trailing piece without its newline for the next read.
    let mut carry = match text.rfind('\n') {
        Some(i) => text.split_off(i + 1),
        None => std::mem::take(&mut text),
    };
    let first = select(parse(&text, &mut pending), &options);
    let send = |s: String, budget: &mut usize| {
        let mut b = s.into_bytes();
        if b.len() > *budget {
            b.truncate(*budget);
        }
        *budget -= b.len();
        Bytes::from(b)
    };
    for line in first {
        if budget == 0
            || tx
                .send(send(render(&line, options.timestamps), &mut budget))
                .await
                .is_err()
        {
            return;
        }
    }
    if !options.follow {
        return;
    }
    let mut idle = 0u32;
    loop {
        if budget == 0 || tx.is_closed() {
            return;
        }
        let mut chunk = String::new();
        let _ = file.seek(std::io::SeekFrom::Start(offset)).await;
        let n = file.read_to_string(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            idle += 1;
            // Check now and then whether the container still runs.
            if idle.is_multiple_of(10) && !running().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle = 0;
        offset += n as u64;
        carry.push_str(&chunk);
        let complete = match carry.rfind('\n') {
            Some(i) => {
                let rest = carry.split_off(i + 1);
                std::mem::replace(&mut carry, rest)
            }
            None => continue,
        };
        for line in parse(&complete, &mut pending) {
            if options.since.is_some_and(|s| line.nanos < s) {
                continue;
            }
            if budget == 0
                || tx
                    .send(send(render(&line, options.timestamps), &mut budget))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-01-01T00:00:01.000000001Z stdout F one\n\
2026-01-01T00:00:02.000000000Z stderr P tw\n\
2026-01-01T00:00:02.100000000Z stderr F o\n\
2026-01-01T00:00:03.000000000Z stdout F three\n\
2026-01-01T00:00:04.000000000Z stdout P four-unfinished";

    #[test]
    fn joins_partial_lines_and_applies_options() {
        let mut pending = None;
        let lines = parse(LOG, &mut pending);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert_eq!(pending.as_ref().unwrap().text, "four-unfinished");
        let o = Options::parse("tailLines=2&timestamps=true").unwrap();
        let tail = select(lines.clone(), &o);
        assert_eq!(
            render(&tail[0], true),
            "2026-01-01T00:00:02.000000000Z two\n"
        );
        assert_eq!(tail.len(), 2);
        let since = Options::parse("sinceTime=2026-01-01T00:00:02.5Z").unwrap();
        assert_eq!(select(lines, &since).len(), 1);
        assert!(Options::parse("limitBytes=0").is_err());
        assert!(Options::parse("tailLines=x").is_err());
        assert!(Options::parse("follow=true").unwrap().follow);
    }

    #[tokio::test]
    async fn streams_with_a_byte_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, LOG).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let o = Options::parse("limitBytes=6").unwrap();
        stream(path, o, || Box::pin(async { false }), tx).await;
        let mut got = Vec::new();
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, b"one\ntw");
    }
}
