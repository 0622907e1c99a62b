//! The scopes an app's tokens are asked for, per service, in the app's own cloud (msauth's
//! [`Cloud`] table): resolved with the file, so the audience of a token and the host it is sent
//! to come from the same row.

use msauth::Cloud;

use super::file::Flow;

/// The scope Graph tokens are asked for: the cloud's `{graph}/.default` (for delegated flows,
/// [`requested`] turns it into the permissions a person consents to).
pub fn graph(cloud: Cloud) -> &'static str {
    cloud.graph().app_scope()
}

/// The scope EWS tokens are asked for: the cloud's Exchange Online `.default`.
pub fn ews(cloud: Cloud) -> &'static str {
    cloud.ews().app_scope()
}

/// The scope SMTP tokens are asked for in `cloud`: app-only, `SMTP.SendAsApp` via Exchange
/// Online's `.default`; delegated, `SMTP.Send`.
pub fn smtp(cloud: Cloud, flow: Flow) -> String {
    match flow {
        Flow::ClientCredentials => cloud.smtp().app_scope().to_owned(),
        Flow::DeviceCode | Flow::Browser => cloud.smtp().delegated_scope("SMTP.Send"),
    }
}

/// The scopes a provider for `scope` asks for: `scope` itself for app-only tokens, the
/// [`delegated`] ones otherwise.
pub fn requested(flow: Flow, scope: &str) -> Vec<String> {
    match flow {
        Flow::ClientCredentials => vec![scope.to_owned()],
        Flow::DeviceCode | Flow::Browser => delegated(scope),
    }
}

/// The delegated scopes a person consents to for a resource (`{resource}/.default` in, or an
/// SMTP `…/SMTP.Send`), in the resource's own cloud. The global cloud's Graph permissions stay
/// bare (`Mail.ReadWrite`: bare means global Graph, and cached sign-ins keep their key); other
/// clouds' carry their Graph root.
pub fn delegated(resource_default_scope: &str) -> Vec<String> {
    if resource_default_scope.ends_with("/SMTP.Send") {
        return vec![resource_default_scope.to_owned(), "offline_access".into()];
    }
    let graph = Cloud::ALL
        .into_iter()
        .map(Cloud::graph)
        .find(|g| g.app_scope() == resource_default_scope);
    if let Some(graph) = graph {
        let permission = |p: &str| match graph.cloud() {
            Cloud::Global => p.to_owned(),
            _ => graph.delegated_scope(p),
        };
        vec![
            permission("Mail.ReadWrite"),
            permission("Mail.Send"),
            "offline_access".into(),
        ]
    } else {
        let resource = resource_default_scope.replace("/.default", "");
        vec![
            format!("{resource}/EWS.AccessAsUser.All"),
            "offline_access".into(),
        ]
    }
}

impl super::App {
    /// The scope this app's Graph tokens are asked for.
    pub fn graph_scope(&self) -> &'static str {
        graph(self.cloud)
    }

    /// The scope this app's EWS tokens are asked for.
    pub fn ews_scope(&self) -> &'static str {
        ews(self.cloud)
    }

    /// The scope this app's SMTP tokens are asked for.
    pub fn smtp_scope(&self) -> String {
        smtp(self.cloud, self.flow)
    }
}
