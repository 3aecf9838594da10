//! A set of disjoint, sorted, half-open byte ranges: what a partial blob
//! holds, and what it still misses. Plain data; no I/O.

/// A set of disjoint, sorted, half-open byte ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// Adds `[start, end)`, merging with touching ranges, in place (a
    /// segment's every write lands here).
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // The ranges are sorted and apart: those from `lo` to `hi` touch
        // or overlap the new one.
        let lo = self.ranges.partition_point(|&(_, b)| b < start);
        let hi = self.ranges.partition_point(|&(a, _)| a <= end);
        if lo == hi {
            self.ranges.insert(lo, (start, end));
            return;
        }
        let merged = (start.min(self.ranges[lo].0), end.max(self.ranges[hi - 1].1));
        self.ranges.splice(lo..hi, std::iter::once(merged));
    }

    /// The bytes covered.
    pub fn covered(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().copied()
    }

    /// Where the range covering `at` ends (`at` itself when none does).
    pub fn end_from(&self, at: u64) -> u64 {
        self.ranges
            .iter()
            .find(|&&(a, b)| a <= at && at < b)
            .map_or(at, |&(_, b)| b)
    }

    /// Forgets everything below `at`.
    pub fn remove_below(&mut self, at: u64) {
        self.ranges.retain(|&(_, b)| b > at);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(at);
        }
    }

    /// The ranges of `[0, size)` not covered, in order.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for &(a, b) in &self.ranges {
            if a >= size {
                break;
            }
            if a > at {
                out.push((at, a));
            }
            at = at.max(b);
        }
        if at < size {
            out.push((at, size));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rangeset_merges() {
        let mut r = RangeSet::default();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(20, 30);
        assert_eq!(r.ranges, vec![(10, 40)]);
        r.insert(0, 5);
        r.insert(3, 12);
        assert_eq!(r.ranges, vec![(0, 40)]);
        r.insert(50, 50);
        assert_eq!(r.covered(), 40);
        assert_eq!(r.missing(100), vec![(40, 100)]);
    }

    #[test]
    fn rangeset_agrees_with_a_byte_map() {
        // Seeded: 2000 random inserts over 200 bytes, checked after each.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut r, mut map) = (RangeSet::default(), [false; 200]);
        for _ in 0..2000 {
            let a = next(200);
            let b = a + next(12).min(200 - a);
            r.insert(a, b);
            map[a as usize..b as usize].fill(true);
            let mut want = Vec::new();
            for (i, &held) in map.iter().enumerate() {
                match (held, want.last_mut()) {
                    (true, Some((_, e))) if *e == i as u64 => *e += 1,
                    (true, _) => want.push((i as u64, i as u64 + 1)),
                    (false, _) => {}
                }
            }
            assert_eq!(r.ranges, want);
        }
    }

    #[test]
    fn rangeset_ends_and_trims() {
        let mut r = RangeSet::default();
        r.insert(10, 20);
        r.insert(30, 40);
        assert_eq!(r.end_from(10), 20);
        assert_eq!(r.end_from(15), 20);
        assert_eq!(r.end_from(20), 20);
        assert_eq!(r.end_from(5), 5);
        r.remove_below(15);
        assert_eq!(r.ranges().collect::<Vec<_>>(), vec![(15, 20), (30, 40)]);
        r.remove_below(35);
        assert_eq!(r.ranges().collect::<Vec<_>>(), vec![(35, 40)]);
        r.remove_below(50);
        assert_eq!(r.covered(), 0);
    }

    #[test]
    fn rangeset_missing() {
        let mut r = RangeSet::default();
        assert_eq!(r.missing(10), vec![(0, 10)]);
        r.insert(2, 4);
        r.insert(6, 12);
        assert_eq!(r.missing(10), vec![(0, 2), (4, 6)]);
        assert_eq!(r.missing(0), vec![]);
    }
}
