//! One output written by two threads, the same bytes as one thread's.
//!
//! - [`write_split`]: the second part is formatted on another thread into an
//!   unnamed temporary file (in `$TMPDIR`) while this one writes the first
//!   part, then copied after it: memory stays that of one thread's buffers;
//!   a temporary file that cannot be made or written means one thread, not
//!   an error. For outputs of a few megabytes under a memory budget.
//! - [`write_interleaved`]: numbered chunks, the odd ones rendered on
//!   another thread while this one renders and writes the even ones: no
//!   second copy of the output, memory of a few chunks. For large outputs
//!   cut into small chunks.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::mpsc;

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
        let spilled = spawn_elsewhere::spawn(s, || -> io::Result<File> {
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

/// Chunks `0..chunks` in order into `w`, each rendered by `render(chunk,
/// out, scratch)` appending to `out` (`scratch` is the calling thread's own,
/// kept from chunk to chunk). Odd chunks are rendered on another thread,
/// at most two ahead of the writing; the first error in chunk order is
/// returned, as one thread would return it.
pub fn write_interleaved(
    w: &mut dyn Write,
    chunks: usize,
    render: impl Fn(usize, &mut Vec<u8>, &mut Vec<u8>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    std::thread::scope(|s| {
        let (done, rendered) = mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
        let (give_back, returned) = mpsc::channel::<Vec<u8>>();
        let render = &render;
        spawn_elsewhere::spawn(s, move || {
            let mut scratch = Vec::new();
            for chunk in (1..chunks).step_by(2) {
                let mut out = returned.try_recv().unwrap_or_default();
                out.clear();
                let result = render(chunk, &mut out, &mut scratch).map(|()| out);
                let failed = result.is_err();
                // A closed channel: the writer stopped at an error.
                if done.send(result).is_err() || failed {
                    break;
                }
            }
        });
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for chunk in 0..chunks {
            if chunk % 2 == 0 {
                out.clear();
                render(chunk, &mut out, &mut scratch)?;
                w.write_all(&out)?;
            } else {
                let theirs = rendered
                    .recv()
                    .map_err(|_| io::Error::other("the rendering thread stopped"))??;
                w.write_all(&theirs)?;
                let _ = give_back.send(theirs);
            }
        }
        Ok(())
    })
}

/// `work` on the items `..cut` on this thread and on `cut..len` on
/// another, meanwhile (not at all when `cut` is `len`): the two results
/// in that order.
pub fn halves<T: Send>(
    len: usize,
    cut: usize,
    work: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> (T, Option<T>) {
    let cut = cut.min(len);
    std::thread::scope(|s| {
        let work = &work;
        let second = (cut < len).then(|| spawn_elsewhere::spawn(s, move || work(cut..len)));
        let first = work(0..cut);
        let second = second.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (first, second)
    })
}

/// Where to cut items of the given sizes into pieces of about `piece` each
/// (an item is never cut): `[0, …, len]`.
pub fn cuts(sizes: impl IntoIterator<Item = usize>, piece: usize) -> Vec<usize> {
    let mut bounds = vec![0];
    let (mut sum, mut len) = (0, 0);
    for (i, n) in sizes.into_iter().enumerate() {
        sum += n;
        len = i + 1;
        if sum >= piece {
            bounds.push(len);
            sum = 0;
        }
    }
    if bounds.last() != Some(&len) {
        bounds.push(len);
    }
    bounds
}

/// Whether a second thread is worth it for this much work: two cores at
/// least, and `blocks` coverage blocks at least [`MIN_BLOCKS`].
pub fn worth_it(blocks: usize) -> bool {
    blocks >= MIN_BLOCKS && two_cores()
}

/// Whether this process may run on two cores at least.
pub fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Below this many blocks one thread is quicker (a thread, and for
/// [`write_split`] a file, cost more than they save).
pub const MIN_BLOCKS: usize = 20_000;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(chunk: usize, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> io::Result<()> {
        scratch.push(b'.');
        if chunk == 7 {
            return Err(io::Error::other("chunk 7 is damaged"));
        }
        writeln!(out, "chunk {chunk}")
    }

    /// Interleaved chunks come out in order; the first failing chunk's
    /// error is returned and nothing after it is written.
    #[test]
    fn interleaved_chunks_in_order_and_errors_in_order() -> io::Result<()> {
        for chunks in [0, 1, 2, 5, 7] {
            let mut out = Vec::new();
            write_interleaved(&mut out, chunks, render)?;
            let want: String = (0..chunks).map(|c| format!("chunk {c}\n")).collect();
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
        let mut out = Vec::new();
        let err = write_interleaved(&mut out, 20, render).expect_err("chunk 7 fails");
        assert_eq!(err.to_string(), "chunk 7 is damaged");
        let want: String = (0..7).map(|c| format!("chunk {c}\n")).collect();
        assert_eq!(String::from_utf8_lossy(&out), want);
        Ok(())
    }

    #[test]
    fn cuts_cover_every_item_once() {
        assert_eq!(cuts([], 10), vec![0]);
        assert_eq!(cuts([3, 3, 3, 3], 6), vec![0, 2, 4]);
        assert_eq!(cuts([3, 3, 3, 3, 1], 6), vec![0, 2, 4, 5]);
        assert_eq!(cuts([50, 1], 6), vec![0, 1, 2]);
        assert_eq!(half([1, 1, 1, 1]), 2);
    }

    /// Halves cover every item once, in order, whatever the cut.
    #[test]
    fn halves_cover_every_item_once() {
        for cut in 0..=5 {
            let (first, second) = halves(4, cut, |r| r.collect::<Vec<_>>());
            let mut all = first;
            all.extend(second.unwrap_or_default());
            assert_eq!(all, vec![0, 1, 2, 3], "cut {cut}");
        }
    }
}
