//! The counter reader's hot path (`CounterFile::merge_into`, which reads
//! headers and runs of one-byte values a word at a time, and stages the
//! entries it expects) must merge exactly what value-by-value decoding
//! (`next_function`) reads, and fail on the same damaged files: values of
//! every length, in every position, up to the end of the buffer; entries
//! in the expected order, out of it, repeated or missing.

use std::collections::HashMap;

use covdata::decode_counters::{self, Expectations, Flavor, Forecast, Place, Sums};
use covdata::encode::{CounterEntry, Segment, encode_counters};
use proptest::prelude::*;

/// Mostly one-byte values, as in real runs, and every longer length.
fn value() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => 0u32..128,
        3 => 128u32..16384,
        1 => 16384u32..(1 << 21),
        1 => any::<u32>(),
    ]
}

/// Package and function indexes of one to four bytes (headers of more
/// than 8 bytes are never expected).
fn index() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => 0u32..128,
        6 => 128u32..16384,
        2 => 16384u32..40000,
        1 => (1u32 << 21)..(1 << 22),
    ]
}

/// A function of the "meta-data" (its package, index and number of
/// slots), and the counter entries of one file: mostly those functions
/// with as many values as slots, some with more or fewer, some unknown.
fn case() -> impl Strategy<Value = (Vec<(u32, u32, usize)>, Vec<CounterEntry>)> {
    let funcs = || {
        let slots = prop_oneof![6 => 0usize..24, 1 => 24usize..40];
        proptest::collection::vec((index(), index(), slots), 1..40)
    };
    prop_oneof![1 => funcs().prop_flat_map(in_order), 1 => funcs().prop_flat_map(|funcs| {
        let n = funcs.len();
        let entry = (
            0..n + 2,
            prop_oneof![4 => Just(None), 1 => (0usize..30).prop_map(Some)],
            proptest::collection::vec(value(), 0..40),
            (index(), index()),
        );
        (Just(funcs), proptest::collection::vec(entry, 0..30)).prop_map(|(funcs, picks)| {
            let entries = picks
                .into_iter()
                .map(|(pick, count, mut values, (p, f))| {
                    let (package, function, slots) = funcs.get(pick).copied().unwrap_or((p, f, 0));
                    values.resize(count.unwrap_or(slots), 1);
                    counter_entry(package, function, values)
                })
                .collect();
            (funcs, entries)
        })
    })]
}

fn counter_entry(package: u32, function: u32, counters: Vec<u32>) -> CounterEntry {
    CounterEntry {
        package,
        function,
        counters,
    }
}

/// Entries of the functions in their order, as a run's files mostly
/// list them: some left out, values as many as slots.
fn in_order(
    funcs: Vec<(u32, u32, usize)>,
) -> impl Strategy<Value = (Vec<(u32, u32, usize)>, Vec<CounterEntry>)> {
    let n = funcs.len();
    (
        Just(funcs),
        proptest::collection::vec(
            (
                prop::bool::weighted(0.85),
                proptest::collection::vec(value(), 40),
            ),
            n,
        ),
    )
        .prop_map(|(funcs, picks)| {
            let entries = funcs
                .iter()
                .zip(picks)
                .filter(|(_, (keep, _))| *keep)
                .map(|(&(package, function, slots), (_, mut values))| {
                    values.truncate(slots);
                    counter_entry(package, function, values)
                })
                .collect();
            (funcs, entries)
        })
}

/// The sums per slot and the unknown (package, function) pairs.
type Merged = (Vec<u64>, Vec<(u32, u32)>);

/// What value-by-value decoding gives: the sums per slot and the unknown
/// functions, or `None` for a damaged file.
fn reference(
    bytes: &[u8],
    slots: &impl Fn(u32, u32) -> Option<(usize, usize)>,
    total: usize,
    set: bool,
) -> Option<Merged> {
    let mut cf = decode_counters::open(bytes).ok()?;
    let mut sums = vec![0u64; total];
    let mut unknown = Vec::new();
    let mut values = Vec::new();
    while let Some(h) = cf.next_function(&mut values).ok()? {
        let Some((start, len)) = slots(h.package, h.function) else {
            unknown.push((h.package, h.function));
            continue;
        };
        for (d, &v) in sums[start..start + len].iter_mut().zip(&values) {
            if set {
                *d |= u64::from(v != 0);
            } else {
                *d += u64::from(v);
            }
        }
    }
    Some((sums, unknown))
}

/// What the hot path gives, in the same form.
fn hot_path(
    bytes: &[u8],
    slots: &impl Fn(u32, u32) -> Option<Place>,
    expected: &Expectations,
    total: usize,
    set: bool,
) -> Option<Merged> {
    let mut cf = decode_counters::open(bytes).ok()?;
    let mut small = vec![0u32; total];
    let mut large = vec![0u64; total];
    let mut large_used = false;
    let mut written = 0;
    let mut unknown = Vec::new();
    cf.merge_into(
        slots,
        Sums {
            small: &mut small,
            large: &mut large,
            large_used: &mut large_used,
            written: &mut written,
        },
        Forecast {
            expected,
            staging: &mut Vec::new(),
        },
        set,
        &mut unknown,
    )
    .ok()?;
    assert!(
        large_used || large.iter().all(|&l| l == 0),
        "large written without large_used"
    );
    assert!(
        small[written.min(total)..].iter().all(|&s| s == 0),
        "small written past `written` ({written})"
    );
    let sums = small
        .iter()
        .zip(&large)
        .map(|(&s, &l)| {
            if set {
                u64::from(s != 0 || l != 0)
            } else {
                u64::from(s) + l
            }
        })
        .collect();
    Some((sums, unknown))
}

/// The index the last pushed function has in `expected`.
fn table_index(expected: &Expectations) -> usize {
    expected.len() - 1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hot_path_merges_what_plain_decoding_reads(
        (funcs, entries) in case(),
        set in any::<bool>(),
        cut in proptest::option::of((any::<prop::sample::Index>(), 1usize..6)),
    ) {
        // Slots laid out in order; the first of duplicate functions wins.
        // The first of duplicate functions wins, and is expected.
        let mut table = HashMap::new();
        let mut total = 0;
        let mut expected = Expectations::default();
        for &(p, f, n) in &funcs {
            table.entry((p, f)).or_insert_with(|| {
                expected.push(p, f, n);
                total += n;
                (total - n, n, table_index(&expected))
            });
        }
        let slots = |p: u32, f: u32| table.get(&(p, f)).map(|&(s, n, _)| (s, n));
        let places = |p: u32, f: u32| {
            table.get(&(p, f)).map(|&(start, len, i)| Place { start, len, listed: Some(i) })
        };
        let segment = Segment { args: Default::default(), entries };
        let mut bytes = encode_counters([7; 16], Flavor::Uleb128, &[segment]);
        if let Some((at, n)) = cut {
            // Bytes taken out of the body, the footer kept: entries then
            // run short, or into the footer.
            let body = 48..bytes.len() - 16;
            let at = body.start + at.index(body.len().max(1));
            let end = (at + n).min(body.end);
            bytes.drain(at..end);
        }
        let want = reference(&bytes, &slots, total, set);
        let got = hot_path(&bytes, &places, &expected, total, set);
        prop_assert_eq!(&got, &want);
        // And with nothing expected.
        let unlisted = |p: u32, f: u32| places(p, f).map(|p| Place { listed: None, ..p });
        let got = hot_path(&bytes, &unlisted, &Expectations::default(), total, set);
        prop_assert_eq!(got, want);
    }
}
