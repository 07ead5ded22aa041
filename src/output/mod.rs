//! Everything that shows remote output and progress: the stream printer and the progress
//! bar. Knows events only.

pub mod progress;
pub mod stream;

pub use progress::Progress;
pub use stream::StreamPrinter;
