//! The conformance kit's harness over one sandbox mailbox: it seeds by delivering from outside,
//! locates by reading the sandbox's store (never through the source under test), and breaks
//! sign-in by withdrawing [`DEMO_APP`]'s consent.

use async_trait::async_trait;
use connector::conformance::{Harness, Location, Report};
use connector::{Error, MessageId, MessageOutbound, MessageSource};
use sandbox::store::ListQuery;
use sandbox::{Admin, Sandbox};

use crate::DEMO_APP;

/// A Graph message id that names no message.
pub const GRAPH_UNKNOWN_ID: &str = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWgaaaaaaaaaaaa";

/// An EWS item id that names no message.
pub const EWS_UNKNOWN_ID: &str = "AAMkAGNvbmZvcm1hbmNlLXVua25vd24tMDAwMDAw";

/// The sender [`SandboxHarness`] seeds the mailbox from.
pub const SEEDER: &str = "kit@fabrikam.example";

/// The kit's [`Harness`] for a source (and an outbound) reading one sandbox mailbox.
pub struct SandboxHarness {
    sb: Sandbox,
    address: String,
    source: Box<dyn MessageSource>,
    outbound: Option<Box<dyn MessageOutbound>>,
    unknown_id: &'static str,
    consent: Option<(Vec<String>, Vec<String>)>,
}

impl SandboxHarness {
    /// A harness for `source` on the mailbox `address`; `unknown_id` is shaped like its ids
    /// ([`GRAPH_UNKNOWN_ID`], [`EWS_UNKNOWN_ID`]).
    pub fn new(
        sb: Sandbox,
        address: &str,
        source: impl MessageSource + 'static,
        unknown_id: &'static str,
    ) -> Self {
        SandboxHarness {
            sb,
            address: address.to_owned(),
            source: Box::new(source),
            outbound: None,
            unknown_id,
            consent: None,
        }
    }

    /// With an outbound that sends as the mailbox.
    pub fn with_outbound(mut self, outbound: impl MessageOutbound + 'static) -> Self {
        self.outbound = Some(Box::new(outbound));
        self
    }

    /// Able to break sign-in (by revoking [`DEMO_APP`]'s admin consent) and to restore it by
    /// granting these delegated scopes and application permissions.
    pub fn breaking_auth(mut self, delegated: &[&str], application: &[&str]) -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        self.consent = Some((owned(delegated), owned(application)));
        self
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sb
    }
}

/// How many messages are in `mailbox`'s Inbox.
pub fn inbox_count(admin: &Admin, mailbox: &str) -> usize {
    let store = admin.store();
    let Ok(all) = store.list(mailbox, None, &ListQuery::default()) else {
        return 0;
    };
    all.items
        .iter()
        .filter(|m| {
            store
                .folder(mailbox, &m.folder_id)
                .ok()
                .and_then(|f| f.well_known)
                .is_some_and(|w| w.name() == "inbox")
        })
        .count()
}

/// Where the message with this `Message-ID` (angle brackets optional) is in `mailbox`; a
/// message the mailbox sent to itself is also in Sent Items, so the received copy is reported.
pub fn locate(admin: &Admin, mailbox: &str, imid: &str) -> Option<Location> {
    let store = admin.store();
    let all = store.list(mailbox, None, &ListQuery::default()).ok()?;
    let want = imid.trim_matches(['<', '>']);
    let mut found: Vec<Location> = all
        .items
        .into_iter()
        .filter(|m| {
            m.props
                .internet_message_id
                .as_deref()
                .map(|i| i.trim_matches(['<', '>']))
                == Some(want)
        })
        .filter_map(|m| {
            let f = store.folder(mailbox, &m.folder_id).ok()?;
            let name = f
                .well_known
                .map(|w| w.name().to_string())
                .unwrap_or(f.display_name);
            Some(Location::new(name, m.is_read))
        })
        .collect();
    found.sort_by_key(|l| l.folder == "sentitems");
    found.into_iter().next()
}

#[async_trait]
impl Harness for SandboxHarness {
    fn source(&self) -> &dyn MessageSource {
        self.source.as_ref()
    }

    fn outbound(&self) -> Option<&dyn MessageOutbound> {
        self.outbound.as_deref()
    }

    fn mailbox_address(&self) -> String {
        self.address.clone()
    }

    async fn seed(&self, messages: Vec<Vec<u8>>) -> Result<(), Error> {
        for m in messages {
            self.sb
                .admin()
                .inject(SEEDER, std::slice::from_ref(&self.address), &m)
                .map_err(|e| Error::configuration(e.to_string()))?;
        }
        Ok(())
    }

    async fn locate(&self, imid: &str) -> Result<Option<Location>, Error> {
        Ok(locate(&self.sb.admin(), &self.address, imid))
    }

    fn unknown_id(&self) -> MessageId {
        MessageId::new(self.unknown_id)
    }

    async fn break_auth(&self) -> bool {
        self.consent.is_some() && self.sb.admin().revoke_admin_consent(DEMO_APP).is_ok()
    }

    async fn restore_auth(&self) {
        if let Some((delegated, application)) = &self.consent {
            self.sb
                .admin()
                .grant_admin_consent(DEMO_APP, &strs(delegated), &strs(application))
                .expect("consent restored");
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Asserts that the kit ran each of these checks (whether they passed is the report's
/// [`passed`](Report::passed)).
pub fn assert_ran(report: &Report, names: &[&str]) {
    for name in names {
        assert!(
            report.checks.iter().any(|c| c.name == *name),
            "{name} did not run: {report}"
        );
    }
}
