//! Formatting helpers shared by the printers: ages (apimachinery
//! `duration.HumanDuration`), label maps and label selectors.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

/// Go's zero `time.Time` as RFC 3339; upstream treats it as "no timestamp".
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses an RFC 3339 `metav1.Time` / `metav1.MicroTime`. `None` for a
/// missing, unparsable or Go-zero timestamp (upstream's `IsZero()`).
pub fn parse_time(s: Option<&str>) -> Option<Timestamp> {
    let s = s?;
    if s.is_empty() || s == GO_ZERO_TIME {
        return None;
    }
    s.parse().ok()
}

/// Port of apimachinery `duration.HumanDuration`: ~2-3 significant figures.
pub fn human_duration(d: SignedDuration) -> String {
    // Go: int(d.Seconds()) truncates toward zero, as does as_secs().
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream `translateTimestampSince`: "<unknown>" when unset, else the
/// human duration elapsed until `now`.
pub fn translate_timestamp_since(ts: Option<&str>, now: Timestamp) -> String {
    match parse_time(ts) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// `labels.Set(m).String()`: `k=v` pairs sorted by key, comma separated.
fn label_set_string(m: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&str, &str)> = m
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// `labels.FormatLabels`: like `label_set_string`, "<none>" when empty.
pub fn format_labels(m: Option<&Value>) -> String {
    match m.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => label_set_string(m),
        _ => "<none>".to_string(),
    }
}

/// One parsed requirement of a label selector, rendered like
/// `labels.Requirement.String()`.
struct Requirement<'a> {
    key: &'a str,
    rendered: String,
}

/// `metav1.LabelSelectorAsSelector(sel).String()`. A missing selector is
/// `labels.Nothing()` and an empty one `labels.Everything()`: both render
/// as "". Errors mirror the operator/value checks of `NewRequirement`.
pub fn label_selector_string(sel: Option<&Value>) -> Result<String, String> {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return Ok(String::new());
    };
    let match_labels = sel.get("matchLabels").and_then(Value::as_object);
    let exprs = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut reqs = Vec::with_capacity(match_labels.map_or(0, Map::len) + exprs.len());
    if let Some(ml) = match_labels {
        for (k, v) in ml {
            reqs.push(Requirement {
                key: k,
                rendered: format!("{k}={}", v.as_str().unwrap_or("")),
            });
        }
    }
    for e in exprs {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let rendered = match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    return Err(format!("for '{op}' operator, values set can't be empty"));
                }
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(format!("values set must be empty for {op}"));
                }
                if op == "Exists" {
                    key.to_string()
                } else {
                    format!("!{key}")
                }
            }
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        reqs.push(Requirement { key, rendered });
    }
    // internalSelector.Add sorts requirements by key.
    reqs.sort_by(|a, b| a.key.cmp(b.key));
    let mut out = String::new();
    for (i, r) in reqs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.rendered);
    }
    Ok(out)
}

/// `metav1.FormatLabelSelector`: "<error>" on a bad selector, "<none>" when
/// it selects everything or nothing.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector_string(sel) {
        Err(_) => "<error>".to_string(),
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
    }
}

/// Upstream `listWithMoreString`: "a,b,c + N more..." or "<unset>".
pub fn list_with_more(list: &[&str], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_durations() {
        let cases: &[(i64, &str)] = &[
            (-3, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (310, "5m10s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 25 * 60, "3h25m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (2 * 86400 + 5 * 3600, "2d5h"),
            (7 * 86400 + 23 * 3600, "7d23h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400 + 86400, "20y"),
        ];
        for &(secs, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}s"
            );
        }
        // Sub-second negative skew truncates toward zero like Go.
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
    }

    #[test]
    fn timestamps_since() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let cases: &[(Option<&str>, &str)] = &[
            (None, "<unknown>"),
            (Some(""), "<unknown>"),
            (Some("0001-01-01T00:00:00Z"), "<unknown>"),
            (Some("garbage"), "<unknown>"),
            (Some("2024-05-01T11:54:50Z"), "5m10s"),
            (Some("2024-05-01T11:59:59.500000Z"), "0s"),
            (Some("2024-04-29T07:00:00Z"), "2d5h"),
            (Some("2024-05-01T12:00:05Z"), "<invalid>"),
        ];
        for &(ts, want) in cases {
            assert_eq!(translate_timestamp_since(ts, now), want, "{ts:?}");
        }
    }

    #[test]
    fn labels_and_selectors() {
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
        assert_eq!(format_labels(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");

        let cases: &[(Option<Value>, &str, &str)] = &[
            (None, "", "<none>"),
            (Some(json!({})), "", "<none>"),
            (
                Some(json!({"matchLabels": {"app": "web"}})),
                "app=web",
                "app=web",
            ),
            (
                Some(json!({
                    "matchLabels": {"tier": "fe", "app": "web"},
                    "matchExpressions": [
                        {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                        {"key": "zz", "operator": "DoesNotExist"},
                        {"key": "b", "operator": "Exists"},
                        {"key": "c", "operator": "NotIn", "values": ["x"]}
                    ]
                })),
                "app=web,b,c notin (x),env in (dev,prod),tier=fe,!zz",
                "app=web,b,c notin (x),env in (dev,prod),tier=fe,!zz",
            ),
            (
                Some(json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})),
                "<err>",
                "<error>",
            ),
        ];
        for (sel, raw, formatted) in cases {
            let got = label_selector_string(sel.as_ref()).unwrap_or_else(|_| "<err>".into());
            assert_eq!(got, *raw);
            assert_eq!(format_label_selector(sel.as_ref()), *formatted);
        }
    }
}
