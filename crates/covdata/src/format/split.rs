//! One output written by two threads: the second part is formatted on
//! another thread into an unnamed temporary file (in `$TMPDIR`) while this
//! one writes the first part, then copied after it. The output is the same
//! as one thread's, memory stays that of one thread's buffers, and a
//! temporary file that cannot be made or written means one thread, not an
//! error.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// `first` into `w`, then what `second` writes, the latter formatted
/// meanwhile on another thread. If that thread fails for any reason (no
/// temporary file, a full disk, damaged data), this thread runs `second`
/// into `w` itself, so a real error is reported as one thread would.
pub fn write_split(
    w: &mut dyn Write,
    first: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    second: impl Fn(&mut dyn Write) -> io::Result<()> + Sync,
) -> io::Result<()> {
    std::thread::scope(|s| {
        let spilled = s.spawn(|| -> io::Result<File> {
            let mut spill = tempfile::tempfile()?;
            second(&mut spill)?;
            spill.seek(SeekFrom::Start(0))?;
            Ok(spill)
        });
        first(w)?;
        match spilled
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        {
            Ok(mut spill) => io::copy(&mut spill, w).map(drop),
            Err(_) => second(w),
        }
    })
}

/// Whether splitting is worth a thread here: two cores at least.
pub fn worth_it() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// The index that cuts `sizes` into two halves of about equal sum: the
/// items before it hold at least half of the total.
pub fn half(sizes: impl IntoIterator<Item = usize>) -> usize {
    let sizes: Vec<usize> = sizes.into_iter().collect();
    let total: usize = sizes.iter().sum();
    let mut sum = 0;
    sizes
        .iter()
        .position(|&n| {
            sum += n;
            2 * sum >= total
        })
        .map_or(sizes.len(), |i| i + 1)
}
