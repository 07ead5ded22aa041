//! What every step of every host of a run reads: the run's settings, the default keys, the
//! cancel and the start gate. Borrowed, copied freely; the bastion pool is not part of it
//! (it is [`super::host::Shared`]'s), so the steps below the host never reach up to it.

use super::gate::StartGate;
use super::keys::KeyFile;
use crate::cancel::Cancel;
use crate::target::Settings;
use std::sync::Arc;

/// The run-wide context of a host's steps.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    /// Default keys, tried after the agent.
    pub default_keys: &'a [Arc<KeyFile>],
    pub cancel: &'a Cancel,
    pub gate: &'a StartGate,
}
