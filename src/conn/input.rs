//! The read buffer of a connection, sized by what arrives so that a quiet
//! connection holds a small one.
//!
//! A read needs free room in the buffer before it waits for the peer, and
//! that room stays allocated for as long as the peer is silent, which for
//! most connections is nearly all the time (thousands of idle networks and
//! clients). So the room offered to a read depends on the read before it:
//! one that filled its room means more is probably waiting in the socket,
//! and the next read gets twice the room; a short one means the socket was
//! drained and the next read will likely wait, so it gets the minimum. A
//! buffer grown for a burst or a long line is let go once it is drained.

use bytes::BytesMut;

/// Room offered to a read that is likely to wait for the peer. One
/// classic IRC line; longer input grows the room within a few reads.
pub(super) const MIN_ROOM: usize = 512;
/// Most room offered to one read while data keeps coming.
pub(super) const MAX_ROOM: usize = 16 * 1024;

/// Bytes read but not yet framed, plus the sizing state.
pub(super) struct InputBuffer {
    buf: BytesMut,
    /// Room to offer the next read.
    room: usize,
    /// Room the pending read was offered.
    offered: usize,
    /// The largest the allocation behind `buf` is known to be. Its own
    /// `capacity` only counts from the first unframed byte: once the
    /// decoder has split every line off, a large allocation reports next to
    /// nothing, and `reserve` would quietly reuse all of it.
    allocated: usize,
}

impl InputBuffer {
    /// An empty buffer; nothing is allocated before the first read.
    pub(super) fn new() -> InputBuffer {
        InputBuffer {
            buf: BytesMut::new(),
            room: MIN_ROOM,
            offered: 0,
            allocated: 0,
        }
    }

    /// The unframed bytes, for the decoder.
    pub(super) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Make room for the next read and return the buffer to read into.
    pub(super) fn for_read(&mut self) -> &mut BytesMut {
        if self.buf.is_empty() && self.allocated > 2 * self.room {
            // Drained, and well beyond what this read needs: an empty
            // replacement costs nothing until `reserve` sizes it.
            self.buf = BytesMut::new();
            self.allocated = 0;
        }
        self.buf.reserve(self.room);
        let spare = self.buf.capacity() - self.buf.len();
        self.allocated = self.allocated.max(self.buf.capacity());
        self.offered = spare;
        &mut self.buf
    }

    /// Size the next read's room after a read of `n` bytes.
    pub(super) fn after_read(&mut self, n: usize) {
        self.room = if n > 0 && n >= self.offered {
            (self.room * 2).min(MAX_ROOM)
        } else {
            MIN_ROOM
        };
    }

    /// Bytes allocated (as far as known), for tests.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.allocated.max(self.buf.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stand-in for a read: `n` bytes arrive (at most the room offered).
    fn read(input: &mut InputBuffer, n: usize) -> usize {
        let buf = input.for_read();
        let n = n.min(buf.capacity() - buf.len());
        buf.extend(std::iter::repeat_n(b'x', n));
        input.after_read(n);
        n
    }

    #[test]
    fn a_quiet_connection_offers_the_minimum() {
        let mut input = InputBuffer::new();
        assert_eq!(input.capacity(), 0);
        read(&mut input, 40);
        input.bytes().clear();
        input.for_read();
        assert!(input.capacity() >= MIN_ROOM && input.capacity() < 2 * MIN_ROOM);
    }

    #[test]
    fn reads_that_fill_their_room_double_it_up_to_the_cap() {
        let mut input = InputBuffer::new();
        let mut offered = Vec::new();
        for _ in 0..10 {
            let n = read(&mut input, usize::MAX);
            offered.push(n);
            input.bytes().clear();
        }
        assert_eq!(offered[0], MIN_ROOM);
        assert!(offered.windows(2).all(|w| w[1] >= w[0]), "{offered:?}");
        assert!(offered.iter().all(|n| *n <= 2 * MAX_ROOM), "{offered:?}");
        assert!(*offered.last().unwrap_or(&0) >= MAX_ROOM, "{offered:?}");
    }

    /// After a burst (or one long line) has been framed, a read that comes
    /// back short puts the buffer back to the minimum.
    #[test]
    fn the_buffer_shrinks_back_after_a_burst() {
        let mut input = InputBuffer::new();
        for _ in 0..8 {
            read(&mut input, usize::MAX);
        }
        assert!(input.capacity() > MAX_ROOM);
        input.bytes().clear();
        read(&mut input, 30);
        input.bytes().clear();
        input.for_read();
        assert!(input.capacity() < 2 * MIN_ROOM, "{}", input.capacity());
    }

    /// The decoder splits lines off the front, after which the buffer's
    /// own capacity no longer shows how large its allocation is.
    #[test]
    fn the_buffer_shrinks_back_after_lines_are_split_off() {
        let mut input = InputBuffer::new();
        for _ in 0..4 {
            read(&mut input, usize::MAX);
        }
        let len = input.bytes().len();
        drop(input.bytes().split_to(len));
        read(&mut input, 30);
        drop(input.bytes().split_to(30));
        input.for_read();
        assert!(input.capacity() < 2 * MIN_ROOM, "{}", input.capacity());
    }

    /// Reads that keep coming back short reuse the small buffer.
    #[test]
    fn a_small_buffer_is_reused() {
        let mut input = InputBuffer::new();
        read(&mut input, 40);
        let first = input.bytes().as_ptr();
        drop(input.bytes().split_to(40));
        read(&mut input, 40);
        assert_eq!(input.bytes().as_ptr(), first);
    }

    /// A partial line is never dropped to shrink the buffer.
    #[test]
    fn unframed_bytes_are_kept() {
        let mut input = InputBuffer::new();
        for _ in 0..6 {
            read(&mut input, usize::MAX);
        }
        let held = input.bytes().len();
        input.after_read(1);
        input.for_read();
        assert_eq!(input.bytes().len(), held);
    }
}
