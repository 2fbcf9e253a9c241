//! Byte-pair merging of one pre-tokenized piece, counting only.
//!
//! tiktoken merges by rescanning every pair after each merge: O(n²) in the length of a
//! piece, and o200k keeps a run of letters, spaces or punctuation as one piece, so a
//! 100 kB line of `a` took seconds. Here short pieces use that same scan (fastest when
//! n is small) and longer ones a heap of candidate merges keyed by (rank, position),
//! which picks the same merge at every step (the lowest rank, leftmost on a tie) in
//! O(n log n). Pieces longer than [`WINDOW`] are merged window by window so the
//! scratch memory stays bounded; merges across a window edge are then missed, so such
//! a count is marked inexact (it is off by at most a token or two per window).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// Pieces up to this many bytes use the quadratic scan.
const SHORT: usize = 48;
/// The longest stretch merged as one; longer pieces are cut (on a character boundary).
pub const WINDOW: usize = 16 * 1024;
const NONE: u32 = u32::MAX;

/// Tokens of one piece and whether that is exactly what tiktoken gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceCount {
    pub tokens: u64,
    pub exact: bool,
}

/// Reusable buffers for merging, so a request's pieces do not allocate each time.
#[derive(Default)]
pub struct Scratch {
    parts: Vec<(u32, u32)>,
    next: Vec<u32>,
    prev: Vec<u32>,
    pair: Vec<u32>,
    heap: Vec<Reverse<u64>>,
}

/// Count the tokens of one piece; `on_window` is called after each window of a long
/// piece and may stop the count early by returning false (the rest is then not
/// counted and the result has `exact: false`; the caller estimates the remainder).
pub fn count_piece(
    vocab: &Vocab,
    piece: &[u8],
    scratch: &mut Scratch,
    mut on_window: impl FnMut(usize) -> bool,
) -> (PieceCount, usize) {
    if piece.is_empty() {
        return (
            PieceCount {
                tokens: 0,
                exact: true,
            },
            0,
        );
    }
    if vocab.rank(piece).is_some() {
        return (
            PieceCount {
                tokens: 1,
                exact: true,
            },
            piece.len(),
        );
    }
    if piece.len() <= WINDOW {
        let tokens = merge(vocab, piece, scratch);
        return (
            PieceCount {
                tokens,
                exact: true,
            },
            piece.len(),
        );
    }
    let mut tokens = 0;
    let mut done = 0;
    // A run of one character repeats the same window; count it once.
    let mut last: Option<(&[u8], u64)> = None;
    while done < piece.len() {
        let end = window_end(piece, done);
        let window = &piece[done..end];
        let n = match last {
            Some((seen, n)) if seen == window => n,
            _ => merge(vocab, window, scratch),
        };
        last = Some((window, n));
        tokens += n;
        done = end;
        if done < piece.len() && !on_window(done) {
            break;
        }
    }
    (
        PieceCount {
            tokens,
            exact: false,
        },
        done,
    )
}

/// Where the window starting at `start` ends: [`WINDOW`] bytes on, moved back to the
/// start of a UTF-8 character (a piece is a `&str`, so one is within 3 bytes).
fn window_end(piece: &[u8], start: usize) -> usize {
    let mut end = (start + WINDOW).min(piece.len());
    while end < piece.len() && end > start + 1 && (piece[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    end
}

/// Tokens of `bytes` under byte-pair merging.
pub fn merge(vocab: &Vocab, bytes: &[u8], scratch: &mut Scratch) -> u64 {
    match bytes.len() {
        0 => 0,
        1 => 1,
        n if n <= SHORT => merge_scan(vocab, bytes, &mut scratch.parts),
        _ => merge_heap(vocab, bytes, scratch),
    }
}

/// tiktoken's own loop: `parts` holds (start, rank of merging with the next part).
fn merge_scan(vocab: &Vocab, bytes: &[u8], parts: &mut Vec<(u32, u32)>) -> u64 {
    let rank = |a: usize, b: usize| vocab.rank(&bytes[a..b]).unwrap_or(NONE);
    parts.clear();
    for i in 0..bytes.len() - 1 {
        parts.push((i as u32, rank(i, i + 2)));
    }
    parts.push(((bytes.len() - 1) as u32, NONE));
    parts.push((bytes.len() as u32, NONE));
    loop {
        let mut best = (NONE, 0usize);
        for (i, &(_, r)) in parts[..parts.len() - 1].iter().enumerate() {
            if r < best.0 {
                best = (r, i);
            }
        }
        if best.0 == NONE {
            return (parts.len() - 1) as u64;
        }
        let i = best.1;
        let span = |p: &[(u32, u32)], a: usize| {
            if a + 3 < p.len() {
                rank(p[a].0 as usize, p[a + 3].0 as usize)
            } else {
                NONE
            }
        };
        if i > 0 {
            parts[i - 1].1 = span(parts, i - 1);
        }
        parts[i].1 = span(parts, i);
        parts.remove(i + 1);
    }
}

/// The same merges in O(n log n): parts are linked lists indexed by their start byte,
/// `pair[i]` is the rank of merging part `i` with its successor, and the heap holds
/// `rank << 32 | start` candidates, stale ones skipped when popped.
fn merge_heap(vocab: &Vocab, bytes: &[u8], s: &mut Scratch) -> u64 {
    let n = bytes.len();
    let end = n as u32;
    let rank = |a: u32, b: u32| vocab.rank(&bytes[a as usize..b as usize]).unwrap_or(NONE);
    s.next.clear();
    s.next.extend(1..=end);
    s.prev.clear();
    s.prev.extend((0..end).map(|i| i.wrapping_sub(1)));
    s.pair.clear();
    s.heap.clear();
    for i in 0..end {
        let r = if i + 1 < end { rank(i, i + 2) } else { NONE };
        s.pair.push(r);
        if r != NONE {
            s.heap.push(Reverse(u64::from(r) << 32 | u64::from(i)));
        }
    }
    let mut heap = BinaryHeap::from(std::mem::take(&mut s.heap));
    let mut parts = n as u64;
    while let Some(Reverse(key)) = heap.pop() {
        let (r, i) = ((key >> 32) as u32, key as u32);
        if s.pair[i as usize] != r {
            continue;
        }
        // Part i absorbs its successor j; k follows.
        let j = s.next[i as usize];
        let k = s.next[j as usize];
        s.next[i as usize] = k;
        if k < end {
            s.prev[k as usize] = i;
        }
        s.pair[j as usize] = NONE;
        parts -= 1;
        let after = if k < end {
            rank(i, s.next[k as usize])
        } else {
            NONE
        };
        s.pair[i as usize] = after;
        if after != NONE {
            heap.push(Reverse(u64::from(after) << 32 | u64::from(i)));
        }
        if i > 0 {
            let p = s.prev[i as usize];
            let before = rank(p, k);
            s.pair[p as usize] = before;
            if before != NONE {
                heap.push(Reverse(u64::from(before) << 32 | u64::from(p)));
            }
        }
    }
    s.heap = heap.into_vec();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> &'static Vocab {
        static V: std::sync::OnceLock<Vocab> = std::sync::OnceLock::new();
        V.get_or_init(Vocab::o200k_base)
    }

    /// The heap and the scan agree on every prefix of texts with ties and long tokens.
    #[test]
    fn heap_merges_like_the_scan() {
        let texts = [
            "a".repeat(47),
            "=".repeat(40),
            " ".repeat(45),
            "abcabcabcabcabcabcabcabcabcabcabcabcabcabcab".to_string(),
            "ééééééééééééééééééééé".to_string(),
            "--------=========--------_____****////".to_string(),
            "supercalifragilisticexpialidociousantidis".to_string(),
        ];
        let mut s = Scratch::default();
        for text in &texts {
            let b = text.as_bytes();
            for len in 2..=b.len() {
                let scan = merge_scan(vocab(), &b[..len], &mut Vec::new());
                assert_eq!(
                    merge_heap(vocab(), &b[..len], &mut s),
                    scan,
                    "{text:?}[..{len}]"
                );
            }
        }
    }

    #[test]
    fn long_pieces_go_by_window_and_can_stop() {
        let mut s = Scratch::default();
        let piece = "a".repeat(3 * WINDOW + 10);
        let (whole, done) = count_piece(vocab(), piece.as_bytes(), &mut s, |_| true);
        assert!(!whole.exact);
        assert_eq!(done, piece.len());
        let one = merge(vocab(), &piece.as_bytes()[..WINDOW], &mut s);
        assert_eq!(
            whole.tokens,
            3 * one + merge(vocab(), b"aaaaaaaaaa", &mut s)
        );
        let (part, done) = count_piece(vocab(), piece.as_bytes(), &mut s, |_| false);
        assert_eq!((part.tokens, done), (one, WINDOW));
    }

    #[test]
    fn windows_end_on_character_boundaries() {
        let piece = "é".repeat(WINDOW);
        let end = window_end(piece.as_bytes(), 0);
        assert!(piece.is_char_boundary(end) && (WINDOW - 3..=WINDOW).contains(&end));
    }
}
