//! The progress bar of `m365mail run` while a large mailbox drains.
//!
//! Human output only: [`wanted`] says no with `--json` and when stderr is not a terminal (a log
//! file, a pipe, a service manager), so scripts and logs never see it. One bar per source that
//! has more than a threshold of messages waiting (by default more than one batch), fed by the
//! pipeline's [`Progress`] events and drawn on stderr by `indicatif`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handler::{MessageOutcome, Pipeline, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw progress bars: never for `--json`, only when stderr is a terminal.
pub fn wanted(json: bool, stderr_is_terminal: bool) -> bool {
    !json && stderr_is_terminal
}

/// Progress bars on stderr, one per source draining a large mailbox.
#[derive(Debug, Clone)]
pub struct Bars {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    threshold: u64,
}

impl Bars {
    /// Bars on stderr for sources with more than `threshold` messages waiting at the start of a
    /// pass (indicatif draws nothing when stderr is not a terminal).
    pub fn stderr(threshold: u64) -> Self {
        Bars::with_target(ProgressDrawTarget::stderr(), threshold)
    }

    /// Bars drawn to `target` (tests use a hidden one).
    pub fn with_target(target: ProgressDrawTarget, threshold: u64) -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Arc::default(),
            threshold,
        }
    }

    /// Feeds the bars from `pipeline`'s progress events.
    pub fn attach(&self, pipeline: &mut Pipeline) {
        let bars = self.clone();
        pipeline.on_progress(move |event: &Progress| bars.observe(event));
    }

    /// Updates the bars with one event.
    pub fn observe(&self, event: &Progress) {
        let Ok(mut bars) = self.bars.lock() else {
            return; // a panicked observer: drawing is not worth a second panic
        };
        match event {
            Progress::Started { source, waiting } => {
                if let Some(old) = bars.remove(source) {
                    old.finish_and_clear();
                }
                let Some(waiting) = *waiting else { return };
                if waiting <= self.threshold {
                    return;
                }
                let bar = self.multi.add(ProgressBar::new(waiting));
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({per_sec}, {eta} left)",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(source.clone());
                bars.insert(source.clone(), bar);
            }
            Progress::Message { source, outcome } => {
                if let Some(bar) = bars.get(source) {
                    // Mail that arrived during the pass makes the pass longer than announced.
                    if bar.position() + 1 > bar.length().unwrap_or(0) {
                        bar.inc_length(1);
                    }
                    bar.inc(1);
                    match outcome {
                        MessageOutcome::Parked => bar.set_message("(parked some)"),
                        MessageOutcome::Failed | MessageOutcome::Error => {
                            bar.set_message("(some failed: retried later)")
                        }
                        _ => {}
                    }
                }
            }
            Progress::Finished { source } | Progress::Offline { source, .. } => {
                if let Some(bar) = bars.remove(source) {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }

    /// The position and length of `source`'s bar, if one is shown.
    pub fn position(&self, source: &str) -> Option<(u64, u64)> {
        let bars = self.bars.lock().ok()?;
        bars.get(source)
            .map(|b| (b.position(), b.length().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(n: Option<u64>) -> Progress {
        Progress::Started {
            source: "helpdesk".into(),
            waiting: n,
        }
    }
    fn message() -> Progress {
        Progress::Message {
            source: "helpdesk".into(),
            outcome: MessageOutcome::Handled,
        }
    }

    #[test]
    fn only_people_at_a_terminal_get_a_bar() {
        assert!(wanted(false, true));
        assert!(!wanted(true, true));
        assert!(!wanted(false, false));
        assert!(!wanted(true, false));
    }

    #[test]
    fn a_large_mailbox_gets_a_bar_that_counts_messages_and_goes_away_when_drained() {
        let bars = Bars::with_target(ProgressDrawTarget::hidden(), 50);
        bars.observe(&started(Some(120)));
        assert_eq!(bars.position("helpdesk"), Some((0, 120)));
        for _ in 0..30 {
            bars.observe(&message());
        }
        assert_eq!(bars.position("helpdesk"), Some((30, 120)));
        bars.observe(&Progress::Finished {
            source: "helpdesk".into(),
        });
        assert_eq!(bars.position("helpdesk"), None);
    }

    #[test]
    fn a_small_or_uncounted_mailbox_gets_none() {
        let bars = Bars::with_target(ProgressDrawTarget::hidden(), 50);
        bars.observe(&started(Some(50)));
        bars.observe(&message());
        assert_eq!(bars.position("helpdesk"), None);
        bars.observe(&started(None));
        assert_eq!(bars.position("helpdesk"), None);
    }

    #[test]
    fn mail_arriving_mid_pass_lengthens_the_bar() {
        let bars = Bars::with_target(ProgressDrawTarget::hidden(), 1);
        bars.observe(&started(Some(2)));
        for _ in 0..3 {
            bars.observe(&message());
        }
        assert_eq!(bars.position("helpdesk"), Some((3, 3)));
    }

    #[test]
    fn an_offline_source_loses_its_bar() {
        let bars = Bars::with_target(ProgressDrawTarget::hidden(), 1);
        bars.observe(&started(Some(10)));
        bars.observe(&Progress::Offline {
            source: "helpdesk".into(),
            reason: None,
        });
        assert_eq!(bars.position("helpdesk"), None);
    }
}
