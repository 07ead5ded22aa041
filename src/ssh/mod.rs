//! SSH for one host at a time, in layers that import only downwards: plain data
//! ([`crate::target`]) ← waiting ([`io`], [`bound`]) and failures ([`fail`]) ← [`transport`]
//! ← [`login`] (with [`known_hosts`], [`keys`], [`sign`]) ← [`exec`] / [`transfer`] / [`jump`]
//! ← [`host`], which the runner calls. Knows nothing of output or printing.

pub mod agentfwd;
pub mod bound;
pub mod channel;
pub mod crypto;
pub mod ctx;
pub mod exec;
pub mod fail;
pub mod fiber;
pub mod gate;
pub mod host;
pub mod io;
pub mod jump;
pub mod keys;
pub mod known_hosts;
pub mod login;
pub mod memory;
pub mod pool;
pub mod sign;
pub mod sudo;
pub mod transfer;
pub mod transport;

pub use crate::target::{Settings, Target, Work};
pub use ctx::Ctx;
pub use host::{RunState, Shared};
pub use known_hosts::{KnownHosts, Policy};
pub use pool::{HeldInfo, Pool};
