//! batch/v1 printers.

use serde_json::Value;

use super::format::{format_label_selector, human_duration, parse_time, translate_timestamp_since};
use super::{
    AGE, CONTAINERS, Ctx, IMAGES, NAME, Printer, Row, age, arr_at, bool_at, col, container_cells,
    get, int, int_at, name, opt_str, print_bool, s, str_at, wide,
};

pub(super) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "jobs" => &JOBS,
        "cronjobs" => &CRON_JOBS,
        _ => return None,
    })
}

const SELECTOR_DESC: &str = "A label query over pods that should match the pod count.";

static JOBS: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the job."),
        col(
            "Completions",
            "string",
            "The number of pods which reached phase Succeeded.",
        ),
        col("Duration", "string", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", SELECTOR_DESC),
    ],
    row: job_row,
};

/// `hasJobCondition`: the first condition of `ty` decides.
fn has_condition(obj: &Value, ty: &str) -> bool {
    arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_row(obj: &Value, ctx: &Ctx) -> Row {
    let succeeded = int_at(obj, &["status", "succeeded"]).unwrap_or(0);
    let completions_spec = int_at(obj, &["spec", "completions"]);
    // SetDefaults_Job: parallelism defaults to 1 (and completions too when
    // both are unset, which prints the same "N/1").
    let parallelism = int_at(obj, &["spec", "parallelism"]).unwrap_or(1);
    let completions = match completions_spec {
        Some(c) => format!("{succeeded}/{c}"),
        None if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        None => format!("{succeeded}/1"),
    };
    let start = parse_time(opt_str(obj, &["status", "startTime"]));
    let end = parse_time(opt_str(obj, &["status", "completionTime"]));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(ctx.now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if get(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = container_cells(obj, &["spec", "template", "spec", "containers"]);
    vec![
        s(name(obj)),
        s(status),
        s(completions),
        s(duration),
        age(obj, ctx),
        names,
        images,
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
    .into()
}

static CRON_JOBS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Schedule",
            "string",
            "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        ),
        col(
            "Timezone",
            "string",
            "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
        ),
        col(
            "Suspend",
            "boolean",
            "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.",
        ),
        col(
            "Active",
            "integer",
            "A list of pointers to currently running jobs.",
        ),
        col(
            "Last Schedule",
            "string",
            "Information when was the last time the job was successfully scheduled.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", SELECTOR_DESC),
    ],
    row: cron_job_row,
};

fn cron_job_row(obj: &Value, ctx: &Ctx) -> Row {
    let last_schedule = match opt_str(obj, &["status", "lastScheduleTime"]) {
        Some(t) => translate_timestamp_since(Some(t), ctx.now),
        None => "<none>".to_string(),
    };
    let (names, images) = container_cells(
        obj,
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
    );
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "schedule"])),
        s(opt_str(obj, &["spec", "timeZone"]).unwrap_or("<none>")),
        // SetDefaults_CronJob defaults suspend to false.
        s(print_bool(
            bool_at(obj, &["spec", "suspend"]).unwrap_or(false),
        )),
        int(arr_at(obj, &["status", "active"]).len() as i64),
        s(last_schedule),
        age(obj, ctx),
        names,
        images,
        s(format_label_selector(get(
            obj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tables::testutil::check;

    const JOB_COLS: [&str; 8] = [
        "Name",
        "Status",
        "Completions",
        "Duration",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ];

    fn job(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}});
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}});
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:54:50Z"},
               "spec": spec, "status": status})
    }

    #[test]
    fn jobs() {
        let cases = [
            (
                json!({"completions": 1, "parallelism": 1}),
                json!({"succeeded": 1, "startTime": "2024-05-01T11:55:00Z", "completionTime": "2024-05-01T11:55:42Z",
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True"}]}),
                ["Complete", "1/1", "42s"],
            ),
            (
                json!({"completions": 5, "parallelism": 2}),
                json!({"succeeded": 2, "active": 2, "startTime": "2024-05-01T11:55:00Z"}),
                ["Running", "2/5", "5m"],
            ),
            (
                json!({"parallelism": 3}),
                json!({}),
                ["Running", "0/1 of 3", ""],
            ),
            (json!({}), json!({}), ["Running", "0/1", ""]),
            (
                json!({"completions": 1}),
                json!({"conditions": [{"type": "Failed", "status": "True"}]}),
                ["Failed", "0/1", ""],
            ),
            (
                json!({"completions": 1, "suspend": true}),
                json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
                ["Suspended", "0/1", ""],
            ),
            (
                json!({"completions": 1}),
                json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
                ["FailureTarget", "0/1", ""],
            ),
        ];
        for (spec, status, [st, completions, duration]) in cases {
            check(
                "batch",
                "jobs",
                job(spec, status),
                &JOB_COLS,
                json!([
                    "pi",
                    st,
                    completions,
                    duration,
                    "5m10s",
                    "pi",
                    "perl:5.34",
                    "batch.kubernetes.io/controller-uid=abc"
                ]),
            );
        }
        let mut terminating = job(json!({"completions": 1}), json!({}));
        terminating["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        check(
            "batch",
            "jobs",
            terminating,
            &JOB_COLS,
            json!([
                "pi",
                "Terminating",
                "0/1",
                "",
                "5m10s",
                "pi",
                "perl:5.34",
                "batch.kubernetes.io/controller-uid=abc"
            ]),
        );
    }

    #[test]
    fn cronjobs() {
        let cols = [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age",
            "Containers",
            "Images",
            "Selector",
        ];
        let cj = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "creationTimestamp": "2024-04-29T07:00:00Z"},
            "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}
        });
        check(
            "batch",
            "cronjobs",
            cj,
            &cols,
            json!([
                "hello",
                "*/5 * * * *",
                "Etc/UTC",
                "False",
                1,
                "5m",
                "2d5h",
                "hello",
                "busybox",
                "<none>"
            ]),
        );
        let bare =
            json!({"metadata": {"name": "b"}, "spec": {"schedule": "@hourly", "suspend": true}});
        check(
            "batch",
            "cronjobs",
            bare,
            &cols,
            json!([
                "b",
                "@hourly",
                "<none>",
                "True",
                0,
                "<none>",
                "<unknown>",
                "",
                "",
                "<none>"
            ]),
        );
    }
}
