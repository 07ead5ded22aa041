//! SSH for one host at a time: the session steps ([`session`]), host key checking
//! ([`known_hosts`]) and key files ([`keys`]). Knows nothing of output or printing.

pub mod bound;
pub mod channel;
pub mod gate;
pub mod jump;
pub mod keys;
pub mod known_hosts;
pub mod session;
pub mod sign;
pub mod sudo;
pub mod transfer;

pub use known_hosts::{KnownHosts, Policy};
pub use session::{Settings, Shared, Target, Work};
