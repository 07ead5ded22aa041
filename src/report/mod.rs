//! Reports about a run: per-phase statistics and the end-of-run summary. Knows events only.

pub mod bench;
pub mod stats;
pub mod summary;
pub mod timing;

pub use summary::Summary;
