//! The line codec fed arbitrary bytes in arbitrary chunks: never panics,
//! no frame exceeds the limit, buffered memory stays bounded, and the
//! frames do not depend on how the input was chunked.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether::proto::{Frame, LineDecoder};

/// The frames a stream must give, computed line by line without the
/// decoder's incremental state.
fn reference(input: &[u8], max: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    // The piece after the last newline is the unterminated final line.
    let last = lines.pop().unwrap_or(&[]);
    for line in lines.into_iter().chain(std::iter::once(last)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            out.push(Frame::TooLong);
        } else if !line.is_empty() {
            let text = String::from_utf8_lossy(line).into_owned();
            let lossy = std::str::from_utf8(line).is_err();
            out.push(Frame::Line { text, lossy });
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [max, cut, input @ ..] = data else {
        return;
    };
    let max = usize::from(*max % 64) + 1;
    let cut = usize::from(*cut % 32) + 1;
    let mut decoder = LineDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    // Chunk sizes vary from 1 to `cut` so splits land everywhere.
    let mut rest = input;
    let mut n = 0usize;
    while !rest.is_empty() {
        let size = (n % cut + 1).min(rest.len());
        n += 1;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf) {
            frames.push(frame);
        }
        assert!(buf.len() <= max + 1, "buffered {} > {}", buf.len(), max + 1);
    }
    while let Some(frame) = decoder.decode_eof(&mut buf) {
        frames.push(frame);
    }
    assert!(buf.is_empty());
    for frame in &frames {
        if let Frame::Line { text, lossy } = frame {
            assert!(!text.is_empty() && !text.contains('\n'));
            // A replacement character stands for at least one input byte.
            assert!(text.chars().count() <= max, "frame over the limit");
            assert!(*lossy || text.len() <= max, "frame over the limit");
        }
    }
    assert_eq!(frames, reference(input, max));
});
