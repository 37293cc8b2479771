//! Cron schedules as CronJobs write them (upstream uses robfig/cron's
//! standard parser): five fields `minute hour day-of-month month
//! day-of-week` with `*`, `?`, lists, ranges, steps and month / weekday
//! names, or a macro (`@hourly`, `@daily`, `@midnight`, `@weekly`,
//! `@monthly`, `@yearly`, `@annually`). When both day fields are
//! restricted, either may match, as in Vixie cron.

use jiff::civil::{Date, Time};
use jiff::{ToSpan, Zoned};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Both day fields restricted: a day matches by either.
    days_or: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, min: u32, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    let _ = min;
    s.parse()
        .map_err(|_| format!("failed to parse int from {s}"))
}

/// One field as a bit set; `*` (or `?`) reports true as the second value.
fn field(
    spec: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("failed to parse int from {s}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            star |= step == 1;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, names, offset)?, value(b, min, names, offset)?)
        } else {
            let v = value(range, min, names, offset)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("beyond the range {min}-{max}: {part}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err(
                "CRON_TZ or TZ used in schedule is not supported, use timeZone instead".into(),
            );
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [m, h, dom, mon, dow] = fields.as_slice() else {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        };
        let (minutes, _) = field(m, 0, 59, &[], 0)?;
        let (hours, _) = field(h, 0, 23, &[], 0)?;
        let (days, dom_star) = field(dom, 1, 31, &[], 0)?;
        let (months, _) = field(mon, 1, 12, &MONTHS, 1)?;
        let (mut weekdays, dow_star) = field(dow, 0, 7, &WEEKDAYS, 0)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too.
        }
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_or: !dom_star && !dow_star,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        if self.days_or { dom || dow } else { dom && dow }
    }

    /// The first time after `t` (to the minute) that the schedule fires.
    pub fn next_after(&self, t: &Zoned) -> Option<Zoned> {
        let tz = t.time_zone().clone();
        let mut dt = t
            .datetime()
            .checked_add(1.minute())
            .ok()?
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        // Five years without a match: the schedule never fires (Feb 30).
        let limit = dt.checked_add(5.years()).ok()?;
        while dt < limit {
            if self.months & (1 << dt.month()) == 0 {
                let first = Date::new(dt.year(), dt.month(), 1)
                    .ok()?
                    .checked_add(1.month())
                    .ok()?;
                dt = first.to_datetime(Time::midnight());
                continue;
            }
            if !self.day_matches(dt.date()) {
                dt = dt
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(Time::midnight());
                continue;
            }
            if self.hours & (1 << dt.hour()) == 0 {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            let z = dt.to_zoned(tz.clone()).ok()?;
            // A time the clock skipped (DST) resolves later; keep order.
            if z.timestamp() > t.timestamp() {
                return Some(z);
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Zoned {
        s.parse().unwrap()
    }

    fn next(spec: &str, from: &str) -> String {
        Schedule::parse(spec)
            .unwrap()
            .next_after(&at(from))
            .unwrap()
            .to_string()
    }

    #[test]
    fn schedules_fire_when_cron_would() {
        let cases = [
            (
                "* * * * *",
                "2026-03-01T10:00:30+00:00[UTC]",
                "2026-03-01T10:01:00+00:00[UTC]",
            ),
            (
                "*/15 * * * *",
                "2026-03-01T10:16:00+00:00[UTC]",
                "2026-03-01T10:30:00+00:00[UTC]",
            ),
            (
                "0 9 * * mon-fri",
                "2026-03-06T10:00:00+00:00[UTC]",
                "2026-03-09T09:00:00+00:00[UTC]",
            ),
            (
                "@monthly",
                "2026-03-01T10:00:00+00:00[UTC]",
                "2026-04-01T00:00:00+00:00[UTC]",
            ),
            (
                "30 2 1 jan,jul *",
                "2026-03-01T00:00:00+00:00[UTC]",
                "2026-07-01T02:30:00+00:00[UTC]",
            ),
            // Both day fields: either matches (the 13th, or a Friday).
            (
                "0 0 13 * 5",
                "2026-03-01T00:00:00+00:00[UTC]",
                "2026-03-06T00:00:00+00:00[UTC]",
            ),
            (
                "0 0 * * 7",
                "2026-03-02T00:00:00+00:00[UTC]",
                "2026-03-08T00:00:00+00:00[UTC]",
            ),
            // In a time zone, across a DST change.
            (
                "0 12 * * *",
                "2026-03-07T13:00:00-05:00[America/New_York]",
                "2026-03-08T12:00:00-04:00[America/New_York]",
            ),
        ];
        for (spec, from, want) in cases {
            assert_eq!(next(spec, from), want, "{spec} after {from}");
        }
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in [
            "* * * *",
            "61 * * * *",
            "* * * * mon-xyz",
            "*/0 * * * *",
            "TZ=UTC * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next_after(&at("2026-01-01T00:00:00+00:00[UTC]")),
            None
        );
    }
}
