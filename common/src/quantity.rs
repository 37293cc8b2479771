//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `2e3`)
//! as whole numbers in a resource's unit: millicores for cpu, units (bytes,
//! counts) for everything else; and back to the canonical text.

/// `quantity` in the unit of `name`: millicores for cpu, else whole units
/// (rounded up, as upstream's `Value()` does). None if it does not parse.
pub fn parse(name: &str, quantity: &str) -> Option<i64> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .or_else(|| q.find(['e', 'E']))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let units = number * scale;
    let amount = if name == "cpu" { units * 1000.0 } else { units };
    // Round up as upstream, but not past float noise: 1.9 * 1000 is
    // 1900.0000000000002, and 1900m is 1900 millicores.
    let near = amount.round();
    Some(if (amount - near).abs() < 1e-12 * near.abs().max(1.0) {
        near as i64
    } else {
        amount.ceil() as i64
    })
}

/// `amount` of resource `name` as upstream writes a canonical quantity:
/// cpu in cores or millicores, others with the largest exact binary suffix.
pub fn format(name: &str, amount: i64) -> String {
    if name == "cpu" || name.ends_with(".cpu") {
        return if amount % 1000 == 0 {
            (amount / 1000).to_string()
        } else {
            format!("{amount}m")
        };
    }
    if amount == 0 {
        return "0".into();
    }
    for (suffix, scale) in [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ] {
        if amount % (1i64 << scale) == 0 {
            return format!("{}{suffix}", amount >> scale);
        }
    }
    amount.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases = [
            ("cpu", "500m", Some(500)),
            ("cpu", "1", Some(1000)),
            ("cpu", "1.5", Some(1500)),
            ("cpu", "0.0001", Some(1)),
            // Not rounded up by float noise.
            ("cpu", "1900m", Some(1900)),
            ("cpu", "1.9", Some(1900)),
            ("cpu", "2100m", Some(2100)),
            ("memory", "1.1Gi", Some(1181116007)),
            ("memory", "128Mi", Some(128 << 20)),
            ("memory", "1G", Some(1_000_000_000)),
            ("memory", "2e3", Some(2000)),
            ("memory", "1Ki", Some(1024)),
            ("pods", "110", Some(110)),
            ("memory", "12x", None),
        ];
        for (name, q, want) in cases {
            assert_eq!(parse(name, q), want, "{name} {q}");
        }
    }

    #[test]
    fn canonical_text() {
        let cases = [
            ("cpu", 1500, "1500m"),
            ("cpu", 2000, "2"),
            ("requests.cpu", 250, "250m"),
            ("memory", 128 << 20, "128Mi"),
            ("memory", 1536 << 20, "1536Mi"),
            ("memory", 1000, "1000"),
            ("pods", 0, "0"),
        ];
        for (name, amount, want) in cases {
            assert_eq!(format(name, amount), want);
        }
    }
}
