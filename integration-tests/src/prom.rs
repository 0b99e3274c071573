//! Reading a service's Prometheus/OpenMetrics text in tests.

/// The sum of every sample of `name` whose labels include all of `labels`
/// (`None` when there is none).
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(pair) => pair,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels.iter().all(|(k, v)| {
            label_text
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        if matches {
            if let Ok(v) = value.parse::<f64>() {
                *total.get_or_insert(0.0) += v;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_matching_series() {
        let text = "# TYPE a counter\na_total{service=\"x\",code=\"OK\"} 2\na_total{service=\"x\",code=\"INTERNAL\"} 1\na_total{service=\"y\",code=\"OK\"} 5\nb 3\n";
        assert_eq!(super::sum(text, "a_total", &[("service", "x")]), Some(3.0));
        assert_eq!(super::sum(text, "a_total", &[("code", "OK")]), Some(7.0));
        assert_eq!(super::sum(text, "b", &[]), Some(3.0));
        assert_eq!(super::sum(text, "c", &[]), None);
    }
}
