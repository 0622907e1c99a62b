//! The pipeline a configuration describes: its handler (the output folder, and the webhook when
//! configured) and its sources with their routing and notifications. `run` and `worker` build
//! it the same way; they differ in where the state lives.

use std::sync::Arc;

use handler::{
    FolderHandler, Handler, HandlerError, Inbound, LedgerStore, Pipeline, SourceSpec,
    WebhookHandler,
};

use crate::config::{Config, Source};
use crate::connect::anyhow_lite::{Context, Result};
use crate::connect::{self, Providers};

/// The folder handler, and the webhook handler too when configured.
struct Both {
    folder: FolderHandler,
    webhook: Option<WebhookHandler>,
}

#[async_trait::async_trait]
impl Handler for Both {
    async fn handle(&self, m: &Inbound) -> std::result::Result<(), HandlerError> {
        self.folder.handle(m).await?;
        if let Some(w) = &self.webhook {
            w.handle(m).await?;
        }
        Ok(())
    }
}

/// The handler `cfg` describes: its output folder, and its webhook when configured.
pub fn handler(cfg: &Config) -> Result<Arc<dyn Handler>> {
    let webhook = match &cfg.handler.webhook {
        // Checked when the file was loaded; building the client can still fail.
        Some(url) => Some(WebhookHandler::new(url.clone()).context("handler.webhook")?),
        None => None,
    };
    Ok(Arc::new(Both {
        folder: FolderHandler::new(cfg.handler.output_dir.clone()),
        webhook,
    }))
}

/// The source `s` of `cfg` with its routing, acknowledgement and notifications, connected
/// through `providers`.
pub fn spec(cfg: &Config, s: &Source, providers: &mut Providers) -> Result<SourceSpec> {
    let source = connect::source(providers, s, cfg.handler.batch_size)?;
    let mut spec = SourceSpec::new(s.name.clone(), source, s.router.clone())
        .acknowledge_with(s.acknowledge.clone())
        .poison_folder(s.poison_folder.clone());
    if let Some(o) = &s.notify_through {
        let outbound = connect::outbound(providers, o)?;
        // One policy for every source, so that they share the per-recipient limit.
        spec = spec.notify_through(outbound, o.capabilities.clone(), cfg.notifications.clone());
    }
    Ok(spec)
}

/// The pipeline of `cfg`: messages written to its output folder (and posted to its webhook),
/// recorded in `ledger`, every source connected through `providers`.
pub fn pipeline(
    cfg: &Config,
    ledger: Arc<dyn LedgerStore>,
    providers: &mut Providers,
) -> Result<Pipeline> {
    let mut pipeline = Pipeline::with_store(handler(cfg)?, ledger, cfg.handler.options());
    for s in &cfg.sources {
        pipeline.add_source(spec(cfg, s, providers)?);
    }
    Ok(pipeline)
}

/// [`pipeline`], with the sources of `mode = "push"` woken by their change notifications and
/// polled at their safety interval; the returned [`Push`](crate::push::Push) is started (its
/// listeners) before the pipeline runs, which starts each source's subscriber. `run` uses it;
/// a fleet's workers attach their push sources through [`crate::push::FleetPush`].
pub fn pipeline_with_push(
    cfg: &Config,
    ledger: Arc<dyn LedgerStore>,
    providers: &mut Providers,
) -> Result<(Pipeline, crate::push::Push)> {
    let mut pipeline = Pipeline::with_store(handler(cfg)?, ledger, cfg.handler.options());
    let mut push = crate::push::Push::default();
    for s in &cfg.sources {
        let spec = spec(cfg, s, providers)?;
        pipeline.add_source(push.attach(s, spec, providers)?);
    }
    Ok((pipeline, push))
}
