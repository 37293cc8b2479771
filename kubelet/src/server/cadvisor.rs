//! `/metrics/cadvisor`: per-container CPU and memory in cAdvisor's metric
//! names, from the runtime's CRI stats (there is no cAdvisor here).

use super::{Body, full, text};
use crate::cri::{api, labels};
use crate::pods::Ctx;
use http::StatusCode;
use std::fmt::Write;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn render(ctx: &Ctx) -> http::Response<Body> {
    let stats = ctx
        .runtime
        .run("list_container_stats", |mut c| async move {
            c.list_container_stats(api::ListContainerStatsRequest { filter: None })
                .await
        })
        .await;
    let stats = match stats {
        Ok(s) => s.stats,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()),
    };
    let mut cpu = String::from(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n# TYPE container_cpu_usage_seconds_total counter\n",
    );
    let mut mem = String::from(
        "# HELP container_memory_working_set_bytes Current working set in bytes.\n# TYPE container_memory_working_set_bytes gauge\n",
    );
    let mut rss = String::from(
        "# HELP container_memory_rss Size of RSS in bytes.\n# TYPE container_memory_rss gauge\n",
    );
    for s in stats {
        let Some(attrs) = s.attributes else { continue };
        let label = |k: &str| escape(attrs.labels.get(k).map(String::as_str).unwrap_or_default());
        let set = format!(
            "container=\"{}\",id=\"{}\",namespace=\"{}\",pod=\"{}\"",
            label(labels::CONTAINER_NAME),
            escape(&attrs.id),
            label(labels::POD_NAMESPACE),
            label(labels::POD_NAME)
        );
        if let Some(c) = s.cpu.and_then(|c| c.usage_core_nano_seconds) {
            let _ = writeln!(
                cpu,
                "container_cpu_usage_seconds_total{{{set}}} {}",
                c.value as f64 / 1e9
            );
        }
        if let Some(m) = s.memory {
            if let Some(w) = m.working_set_bytes {
                let _ = writeln!(
                    mem,
                    "container_memory_working_set_bytes{{{set}}} {}",
                    w.value
                );
            }
            if let Some(r) = m.rss_bytes {
                let _ = writeln!(rss, "container_memory_rss{{{set}}} {}", r.value);
            }
        }
    }
    full(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        format!("{cpu}{mem}{rss}"),
    )
}
