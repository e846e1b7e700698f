//! `go tool covdata textfmt`: the text profile `go tool cover` reads.

use std::io::{self, Write};
use std::ops::Range;

use super::split;
use crate::model::Packages;

/// `mode: <mode>` then `file:sl.sc,el.ec stmts count` per block.
///
/// With two cores or more and enough blocks, the second half of the
/// packages (by block count) is formatted on another thread
/// ([`split::write_split`]): the output is the same, memory stays that
/// of two packages.
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "mode: {}", packages.mode().as_str())?;
    let sizes = packages.sizes();
    let total: usize = sizes.iter().sum();
    // Ranges run to the end whatever `sizes` says: no package is left out.
    if !split::worth_it(total) {
        return write_blocks(packages, 0..usize::MAX, w);
    }
    write_halves(packages, split::half(sizes), w)
}

/// The lines of packages `..half` on this thread, then those from `half`
/// on, formatted meanwhile on another.
fn write_halves(packages: &dyn Packages, half: usize, w: &mut dyn Write) -> io::Result<()> {
    split::write_split(
        w,
        |w| write_blocks(packages, 0..half, w),
        |w| write_blocks(packages, half..usize::MAX, w),
    )
}

/// The lines of the packages at `range`.
fn write_blocks(packages: &dyn Packages, range: Range<usize>, w: &mut dyn Write) -> io::Result<()> {
    // Lines are put together in one buffer, written out in large pieces.
    let mut out = Vec::with_capacity(1 << 16);
    packages.blocks(range, &mut |file, u| {
        out.extend_from_slice(file.as_bytes());
        // `:sl.sc,el.ec stmts count\n`, at most 6 * 11 bytes, put together
        // in place: one copy a line, not one a number.
        let mut tail = [0u8; 66];
        let mut n = 0;
        for (sep, v) in [
            (b':', u.start_line),
            (b'.', u.start_col),
            (b',', u.end_line),
            (b'.', u.end_col),
            (b' ', u.statements),
            (b' ', u.count),
        ] {
            tail[n] = sep;
            n = decimal(v, &mut tail, n + 1);
        }
        tail[n] = b'\n';
        out.extend_from_slice(&tail[..=n]);
        if out.len() >= 1 << 16 {
            w.write_all(&out)?;
            out.clear();
        }
        Ok(())
    })?;
    w.write_all(&out)
}

/// "00" to "99".
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `v` in decimal into `to` from `at` (room for 10 digits); returns where
/// it ends. Two digits at a time, back to front.
#[inline]
fn decimal(v: u32, to: &mut [u8], at: usize) -> usize {
    let end = at + digits(v);
    let (mut x, mut i) = (v as usize, end);
    while x >= 100 {
        let r = x % 100;
        x /= 100;
        i -= 2;
        to[i..i + 2].copy_from_slice(&PAIRS[2 * r..2 * r + 2]);
    }
    if x >= 10 {
        to[at..at + 2].copy_from_slice(&PAIRS[2 * x..2 * x + 2]);
    } else {
        to[at] = b'0' + x as u8;
    }
    end
}

/// The number of decimal digits of `v`: that of the smallest number with
/// as many bits, plus one if `v` reaches the next power of ten.
#[inline]
fn digits(v: u32) -> usize {
    const POW10: [u64; 11] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
        10_000_000_000,
    ];
    // Digits of 2^(bits - 1), for 1 to 32 bits (0 counts as 1 bit).
    const LEAST: [u8; 33] = [
        1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 9, 9,
        9, 10, 10,
    ];
    let d = LEAST[(32 - (v | 1).leading_zeros()) as usize] as usize;
    d + usize::from(u64::from(v) >= POW10[d])
}

#[cfg(test)]
mod tests {
    use crate::model::{Function, Package, Profile, Unit};

    /// Halves written on two threads join up to the one-thread output,
    /// wherever the cut.
    #[test]
    fn halves_join_up_to_the_whole() -> std::io::Result<()> {
        let package = |path: &str, n: u32| Package {
            path: path.into(),
            functions: vec![Function {
                name: "F".into(),
                file: format!("{path}/f.go"),
                literal: false,
                units: (0..n)
                    .rev()
                    .map(|i| Unit {
                        start_line: i + 1,
                        start_col: 2,
                        end_line: i + 2,
                        end_col: 3,
                        statements: i % 4,
                        count: i * 1000,
                    })
                    .collect(),
            }],
            ..Package::default()
        };
        let profile = Profile {
            mode: crate::model::CounterMode::Count,
            granularity: crate::model::Granularity::PerBlock,
            packages: vec![package("a", 3), package("b", 5000), package("c", 1)],
        };
        let mut whole = Vec::new();
        super::write_blocks(&profile, 0..3, &mut whole)?;
        for half in 0..=3 {
            let mut joined = Vec::new();
            super::write_halves(&profile, half, &mut joined)?;
            assert!(joined == whole, "cut at {half}");
        }
        Ok(())
    }
    /// A failure in the second half (here: data that cannot be read) is
    /// reported, after the first half was written.
    #[test]
    fn a_failing_second_half_is_an_error() {
        struct Failing;
        impl crate::model::Packages for Failing {
            fn mode(&self) -> crate::model::CounterMode {
                crate::model::CounterMode::Set
            }
            fn for_each(
                &self,
                _: &mut dyn FnMut(&Package) -> std::io::Result<()>,
            ) -> std::io::Result<()> {
                Ok(())
            }
            fn blocks(
                &self,
                range: std::ops::Range<usize>,
                visit: &mut dyn FnMut(&str, &Unit) -> std::io::Result<()>,
            ) -> std::io::Result<()> {
                if range.start > 0 {
                    return Err(std::io::Error::other("damaged"));
                }
                let unit = Unit {
                    start_line: 1,
                    start_col: 1,
                    end_line: 1,
                    end_col: 2,
                    statements: 1,
                    count: 0,
                };
                visit("a.go", &unit)
            }
        }
        let mut out = Vec::new();
        let err = super::write_halves(&Failing, 1, &mut out).unwrap_err();
        assert_eq!(err.to_string(), "damaged");
        assert_eq!(out, b"a.go:1.1,1.2 1 0\n");
    }

    /// Every length and the edges between them, as `to_string` writes.
    #[test]
    fn decimal_writes_what_to_string_writes() {
        let mut values = vec![0, u32::MAX];
        for p in 1..10 {
            let t = 10u32.pow(p);
            values.extend([t - 1, t, t + 1, t + 37]);
        }
        for v in values.iter().copied().chain((0..40_000).map(|i| i * 7919)) {
            assert_eq!(super::digits(v), v.to_string().len(), "{v}");
        }
        for v in values {
            let mut to = [b'x'; 14];
            let end = super::decimal(v, &mut to, 2);
            assert_eq!(&to[2..end], v.to_string().as_bytes());
            assert_eq!(to[end..], vec![b'x'; 14 - end][..]);
        }
    }
}
