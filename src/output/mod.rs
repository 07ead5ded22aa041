//! Everything that shows remote output and progress: the `--output` printers (stream, json),
//! the `--out-dir` writer and the progress bar. Knows events (and the report records).

pub mod block;
pub mod json;
pub mod outdir;
pub mod progress;
pub mod sanitize;
pub mod spool;
pub mod stream;

pub use progress::Progress;
pub use stream::StreamPrinter;
