//! Report maths: percentiles over durations and human-readable duration formatting.

use std::time::Duration;

/// min / p50 / p95 / max of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub count: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
}

/// Nearest-rank percentile (`p` in 0..=100) of sorted values; `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The spread of `values` (any order); `None` when empty.
pub fn spread(mut values: Vec<Duration>) -> Option<Spread> {
    values.sort_unstable();
    Some(Spread {
        count: values.len(),
        min: *values.first()?,
        p50: percentile(&values, 50.0)?,
        p95: percentile(&values, 95.0)?,
        max: *values.last()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&v, 50.0), Some(ms(50)));
        assert_eq!(percentile(&v, 95.0), Some(ms(95)));
        assert_eq!(percentile(&v, 100.0), Some(ms(100)));
        assert_eq!(percentile(&v, 0.0), Some(ms(1)));
        assert_eq!(percentile(&[ms(7)], 95.0), Some(ms(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn spread_of_unsorted() {
        let s = spread(vec![ms(30), ms(10), ms(20)]).unwrap();
        assert_eq!(
            (s.count, s.min, s.p50, s.p95, s.max),
            (3, ms(10), ms(20), ms(30), ms(30))
        );
        assert!(spread(vec![]).is_none());
    }
}
