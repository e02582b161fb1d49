//! Reading a child's output line by line without letting one line grow without bound.
//!
//! A line longer than the cap is dropped (reported as [`Line::TooLong`], with its last bytes when
//! the reader keeps tails) and reading goes on with the next line: the child must keep being
//! drained, or it blocks on a full pipe.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    /// A line longer than the cap: its last `max` bytes when the reader keeps tails (stderr,
    /// where the end of a long line says what failed), none otherwise.
    TooLong {
        tail: Vec<u8>,
    },
}

pub struct CappedLines<R> {
    reader: BufReader<R>,
    max: usize,
    keep_tails: bool,
}

impl<R: AsyncRead + Unpin> CappedLines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        CappedLines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            max,
            keep_tails: false,
        }
    }

    /// The same, but an overlong line reports its last `max` bytes.
    pub fn keeping_tails(reader: R, max: usize) -> Self {
        CappedLines {
            keep_tails: true,
            ..CappedLines::new(reader, max)
        }
    }

    /// The next line without its newline; `None` at the end of the output.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(match (too_long, line.is_empty()) {
                    (true, _) => Some(Line::TooLong { tail: line }),
                    (false, true) => None,
                    (false, false) => Some(Line::Complete(line)),
                });
            }
            let (chunk, used, ends_line) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long && line.len() + chunk.len() > self.max {
                too_long = true;
                if !self.keep_tails {
                    line = Vec::new();
                }
            }
            if !too_long || self.keep_tails {
                line.extend_from_slice(chunk);
                if line.len() > self.max {
                    line.drain(..line.len() - self.max);
                }
            }
            self.reader.consume(used);
            if ends_line {
                return Ok(Some(if too_long {
                    Line::TooLong { tail: line }
                } else {
                    Line::Complete(line)
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = CappedLines::new(input, max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn a_long_line_is_dropped_and_reading_goes_on() {
        let mut input = b"short\n".to_vec();
        input.extend(vec![b'x'; 200_000]);
        input.extend(b"\nafter\nlast");
        assert_eq!(
            lines(&input, 100).await,
            [
                Line::Complete(b"short".to_vec()),
                Line::TooLong { tail: Vec::new() },
                Line::Complete(b"after".to_vec()),
                Line::Complete(b"last".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn a_reader_that_keeps_tails_reports_the_end_of_a_long_line() {
        let mut input = vec![b'x'; 200_000];
        input.extend(b"the error at the end\nnext\n");
        let mut reader = CappedLines::keeping_tails(input.as_slice(), 10);
        assert_eq!(
            reader.next_line().await.unwrap(),
            Some(Line::TooLong {
                tail: b"at the end".to_vec()
            })
        );
        assert_eq!(
            reader.next_line().await.unwrap(),
            Some(Line::Complete(b"next".to_vec()))
        );
    }

    #[tokio::test]
    async fn a_line_at_the_cap_is_kept() {
        assert_eq!(
            lines(b"12345\n", 5).await,
            [Line::Complete(b"12345".to_vec())]
        );
        assert_eq!(
            lines(b"123456\n", 5).await,
            [Line::TooLong { tail: Vec::new() }]
        );
        assert_eq!(lines(b"", 5).await, []);
    }
}
