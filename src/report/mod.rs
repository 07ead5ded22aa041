//! Reports about a run: per-phase statistics, the end-of-run summary, the timing report
//! files and `--output json` (JSON Lines: the same records, streamed). Knows events only.

pub mod bench;
pub mod jsonl;
pub mod metrics;
pub mod stats;
pub mod summary;
pub mod timing;

pub use summary::Summary;
