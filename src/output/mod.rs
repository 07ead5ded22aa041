//! Everything that shows remote output and progress: the `--output` printers (stream,
//! block, gather; json is a report, [`crate::report::jsonl`]), the `--out-dir` writer and
//! the progress bar. Knows events only.

pub mod ask;
pub mod block;
pub mod outdir;
pub mod progress;
pub mod sanitize;
pub mod spool;
pub mod stream;

pub use progress::Progress;
pub use stream::StreamPrinter;
