//! Ctrl-C and SIGTERM during a remote run (virtual or cloud), with one meaning in both modes. The first signal stops the run: whatever the runner
//! was waiting for is abandoned, the machines are asked to stop, and everything the run created
//! is removed. A second signal skips asking the machines (their containers are killed) but the
//! removal still happens: the process never dies with containers behind it.

use std::future::Future;

use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::hardware::{HardwareError, StopSignal};

/// What the signals received so far ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nothing yet: run on.
    No,
    /// Stop the run, asking the machines to stop, then remove everything.
    Soon(StopSignal),
    /// Stop at once: kill the machines and remove everything (the first signal's kind is kept).
    Now(StopSignal),
}

impl Stop {
    /// The signal that stopped the run, if one did.
    pub fn signal(self) -> Option<StopSignal> {
        match self {
            Stop::No => None,
            Stop::Soon(signal) | Stop::Now(signal) => Some(signal),
        }
    }
}

/// The run's view of the signals: never set when the run does not listen for them.
#[derive(Clone)]
pub struct Stopper(Option<watch::Receiver<Stop>>);

impl Stopper {
    /// A stopper no signal sets (for programs that handle signals themselves).
    pub fn never() -> Self {
        Stopper(None)
    }

    /// Listens for SIGINT and SIGTERM on `runtime` from now on; they no longer end the process.
    pub fn listen(runtime: &Runtime) -> Result<Self, HardwareError> {
        let _context = runtime.enter();
        let cannot = |e: std::io::Error| HardwareError::Io {
            action: "listen for signals".into(),
            source: e,
        };
        let mut interrupt = signal(SignalKind::interrupt()).map_err(cannot)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(cannot)?;
        let (sender, receiver) = watch::channel(Stop::No);
        runtime.spawn(async move {
            loop {
                let received = tokio::select! {
                    Some(()) = interrupt.recv() => StopSignal::Interrupt,
                    Some(()) = terminate.recv() => StopSignal::Terminate,
                    else => return,
                };
                let next = match *sender.borrow() {
                    Stop::No => {
                        eprintln!(
                            "dist-zero: {received}: stopping the run and removing what it \
                             created (send it again to stop at once)"
                        );
                        Stop::Soon(received)
                    }
                    Stop::Soon(first) | Stop::Now(first) => {
                        eprintln!(
                            "dist-zero: {received} again: killing the machines; still removing \
                             everything the run created"
                        );
                        Stop::Now(first)
                    }
                };
                sender.send_replace(next);
            }
        });
        Ok(Stopper(Some(receiver)))
    }

    /// What the signals so far ask for.
    pub fn state(&self) -> Stop {
        self.0
            .as_ref()
            .map_or(Stop::No, |receiver| *receiver.borrow())
    }

    /// An error if a signal has asked the run to stop.
    pub fn check(&self) -> Result<(), HardwareError> {
        match self.state().signal() {
            Some(signal) => Err(HardwareError::Stopped(signal)),
            None => Ok(()),
        }
    }

    /// Resolves when the signals ask the run to stop: at the first signal when `at_once` is
    /// false, at the second when it is true. Never resolves without a listener.
    async fn asked(&self, at_once: bool) -> StopSignal {
        let Some(receiver) = self.0.as_ref() else {
            return std::future::pending().await;
        };
        let mut receiver = receiver.clone();
        let stop = receiver
            .wait_for(|stop| match stop {
                Stop::No => false,
                Stop::Soon(_) => !at_once,
                Stop::Now(_) => true,
            })
            .await
            .map(|stop| *stop);
        match stop.ok().and_then(Stop::signal) {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }

    /// Runs `future` on `runtime`, abandoning it with [`HardwareError::Stopped`] if a signal asks
    /// the run to stop first.
    pub fn block_on<T>(
        &self,
        runtime: &Runtime,
        future: impl Future<Output = Result<T, HardwareError>>,
    ) -> Result<T, HardwareError> {
        runtime.block_on(async {
            tokio::select! {
                biased;
                signal = self.asked(false) => Err(HardwareError::Stopped(signal)),
                result = future => result,
            }
        })
    }

    /// Runs `future` on `runtime` unless a second signal asks to stop at once.
    pub fn block_on_unless_urgent(&self, runtime: &Runtime, future: impl Future<Output = ()>) {
        runtime.block_on(async {
            tokio::select! {
                biased;
                _ = self.asked(true) => {}
                () = future => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_signals_map_to_the_shell_exit_statuses() {
        assert_eq!(StopSignal::Interrupt.exit_status(), 130);
        assert_eq!(StopSignal::Terminate.exit_status(), 143);
        assert_eq!(
            HardwareError::Stopped(StopSignal::Interrupt).to_string(),
            "the run was stopped by SIGINT"
        );
    }

    #[test]
    fn virtual_the_first_signal_names_the_stop() {
        assert_eq!(Stop::No.signal(), None);
        assert_eq!(
            Stop::Soon(StopSignal::Terminate).signal(),
            Some(StopSignal::Terminate)
        );
        assert_eq!(
            Stop::Now(StopSignal::Interrupt).signal(),
            Some(StopSignal::Interrupt)
        );
    }

    #[test]
    fn virtual_without_a_listener_nothing_stops_the_run() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let stopper = Stopper::never();
        assert_eq!(stopper.state(), Stop::No);
        assert!(stopper.check().is_ok());
        let answer = stopper.block_on(&runtime, async { Ok::<_, HardwareError>(7) });
        assert_eq!(answer.expect("runs to its end"), 7);
    }
}
