//! Per cloud, each connection signs in, asks for a token and sends in the same cloud: read off
//! the resolved model's plans (moved here from `connect.rs` with the plans).

use std::path::Path;

use url::Url;

use crate::config::{Config, ConnectionPlan};

/// A daemon and a delegated app in `cloud` (a name as a person writes it), each with a Graph
/// and an EWS source and an SMTP outbound, every endpoint left to its default.
fn config(cloud: &str) -> Config {
    Config::parse(&text(cloud), Path::new("clouds.toml")).unwrap()
}

/// The text of [`config`].
fn text(cloud: &str) -> String {
    let mut text = String::new();
    for (app, flow) in [("daemon", "client-credentials"), ("person", "device-code")] {
        text += &format!(
            "[[apps]]\nname = \"{app}\"\ntenant = \"contoso.example\"\nclient_id = \"c\"\n\
             client_secret_env = \"SECRET\"\nflow = \"{flow}\"\ncloud = \"{cloud}\"\n\n"
        );
    }
    for app in ["daemon", "person"] {
        for kind in ["graph", "ews"] {
            text += &format!(
                "[[sources]]\nname = \"{app}-{kind}\"\nkind = \"{kind}\"\napp = \"{app}\"\n\
                 mailbox = \"helpdesk@contoso.example\"\n\
                 [sources.routing.mailbox]\nprimary = \"helpdesk@contoso.example\"\n\
                 [[sources.routing.rules]]\nmatch = \"default\"\nproject = \"P\"\n\n"
            );
        }
        text += &format!(
            "[[outbounds]]\nname = \"{app}-smtp\"\nkind = \"smtp\"\napp = \"{app}\"\n\
             mailbox = \"helpdesk@contoso.example\"\n\n"
        );
    }
    text
}

/// The plan of the source called `name`.
fn plan_source(c: &Config, name: &str) -> ConnectionPlan {
    c.source(name).unwrap().plan()
}

/// The plan of the outbound called `name`.
fn plan_outbound(c: &Config, name: &str) -> ConnectionPlan {
    c.outbound(name).unwrap().plan()
}

/// The host a scope's resource names (`https://graph.microsoft.us/.default` → the host).
fn audience(scope: &str) -> String {
    Url::parse(scope).unwrap().host_str().unwrap().to_owned()
}

/// The last two labels of a host name: the domain a service is run under.
fn domain(host: &str) -> String {
    let labels: Vec<&str> = host.rsplitn(3, '.').take(2).collect();
    format!("{}.{}", labels[1], labels[0])
}

/// Per cloud name as written in the file: (login host, Graph base, Graph scope, EWS URL,
/// EWS scope, SMTP host, delegated SMTP scope). Written out here rather than read from
/// msauth's table, so a wrong entry there fails.
const CLOUDS: [(&str, [&str; 7]); 4] = [
    (
        "global",
        [
            "login.microsoftonline.com",
            "https://graph.microsoft.com/v1.0/",
            "https://graph.microsoft.com/.default",
            "https://outlook.office365.com/EWS/Exchange.asmx",
            "https://outlook.office365.com/.default",
            "smtp.office365.com:587",
            "https://outlook.office.com/SMTP.Send",
        ],
    ),
    (
        "us-government",
        [
            "login.microsoftonline.us",
            "https://graph.microsoft.us/v1.0/",
            "https://graph.microsoft.us/.default",
            "https://outlook.office365.us/EWS/Exchange.asmx",
            "https://outlook.office365.us/.default",
            "smtp.office365.us:587",
            "https://outlook.office365.us/SMTP.Send",
        ],
    ),
    (
        "dod",
        [
            "login.microsoftonline.us",
            "https://dod-graph.microsoft.us/v1.0/",
            "https://dod-graph.microsoft.us/.default",
            "https://outlook-dod.office365.us/EWS/Exchange.asmx",
            "https://outlook-dod.office365.us/.default",
            "outlook-dod.office365.us:587",
            "https://outlook-dod.office365.us/SMTP.Send",
        ],
    ),
    (
        "china",
        [
            "login.partner.microsoftonline.cn",
            "https://microsoftgraph.chinacloudapi.cn/v1.0/",
            "https://microsoftgraph.chinacloudapi.cn/.default",
            "https://partner.outlook.cn/EWS/Exchange.asmx",
            "https://partner.outlook.cn/.default",
            "smtp.partner.outlook.cn:587",
            "https://partner.outlook.cn/SMTP.Send",
        ],
    ),
];

/// Issue #16: the regression. `cloud = "us-government"` used to sign in at the US login
/// host and then ask for a *global* Graph token and call global Graph.
#[test]
fn a_us_government_app_reads_graph_in_its_own_cloud() {
    let c = config("us-government");
    let plan = plan_source(&c, "daemon-graph");
    assert_eq!(plan.endpoint, "https://graph.microsoft.us/v1.0/");
    assert_eq!(plan.scope, "https://graph.microsoft.us/.default");
    assert_eq!(
        plan.requested_scopes,
        ["https://graph.microsoft.us/.default"]
    );
    assert_eq!(
        plan.token_endpoint.as_str(),
        "https://login.microsoftonline.us/contoso.example/oauth2/v2.0/token"
    );
}

/// Per cloud: each connection's token is asked at the cloud's login host, for a resource of
/// the cloud, and sent to that resource's endpoint in the same cloud.
#[test]
fn each_cloud_signs_in_asks_and_sends_in_the_same_cloud() {
    for (
        name,
        [
            login,
            graph,
            graph_scope,
            ews,
            ews_scope,
            smtp,
            smtp_delegated,
        ],
    ) in CLOUDS
    {
        let c = config(name);
        let plans = [
            plan_source(&c, "daemon-graph"),
            plan_source(&c, "daemon-ews"),
            plan_outbound(&c, "daemon-smtp"),
        ];
        for p in &plans {
            assert_eq!(p.token_endpoint.host_str(), Some(login), "{name}: {p:?}");
            assert_eq!(p.requested_scopes, std::slice::from_ref(&p.scope), "{name}");
        }
        let [g, e, s] = plans;
        assert_eq!(
            (g.endpoint.as_str(), g.scope.as_str()),
            (graph, graph_scope)
        );
        assert_eq!((e.endpoint.as_str(), e.scope.as_str()), (ews, ews_scope));
        // SMTP.SendAsApp: Exchange Online's .default, the same token as EWS.
        assert_eq!((s.endpoint.as_str(), s.scope.as_str()), (smtp, ews_scope));

        // The audience and the endpoint belong together: Graph and EWS tokens go to the
        // very host they name, SMTP's to a host of the same Exchange Online domain.
        let host = |u: &str| Url::parse(u).unwrap().host_str().unwrap().to_owned();
        assert_eq!(audience(&g.scope), host(&g.endpoint), "{name}");
        assert_eq!(audience(&e.scope), host(&e.endpoint), "{name}");
        let smtp_host = s.endpoint.split(':').next().unwrap();
        assert_eq!(domain(&audience(&s.scope)), domain(smtp_host), "{name}");
        // ... and to the cloud the app signs in to (msauth's table agrees).
        let cloud = c.apps[0].cloud;
        assert_eq!(cloud.login_host(), login);
        for scope in [&g.scope, &e.scope, &s.scope] {
            let owner: Vec<_> = msauth::Cloud::ALL
                .into_iter()
                .filter(|o| [o.graph(), o.ews()].iter().any(|r| r.app_scope() == *scope))
                .collect();
            assert_eq!(owner, [cloud], "{name}: {scope}");
        }

        // Delegated: the same endpoints, permissions of the same resources.
        let g = plan_source(&c, "person-graph");
        let e = plan_source(&c, "person-ews");
        let s = plan_outbound(&c, "person-smtp");
        assert_eq!((g.endpoint.as_str(), e.endpoint.as_str()), (graph, ews));
        assert_eq!(s.endpoint, smtp);
        assert_eq!(s.requested_scopes, [smtp_delegated, "offline_access"]);
        let ews_resource = ews_scope.trim_end_matches("/.default");
        assert_eq!(
            e.requested_scopes,
            [
                format!("{ews_resource}/EWS.AccessAsUser.All"),
                "offline_access".into()
            ]
        );
        let graph_resource = graph_scope.trim_end_matches("/.default");
        let prefix = if name == "global" {
            String::new() // bare permissions are global Graph's
        } else {
            format!("{graph_resource}/")
        };
        assert_eq!(
            g.requested_scopes,
            [
                format!("{prefix}Mail.ReadWrite"),
                format!("{prefix}Mail.Send"),
                "offline_access".into()
            ]
        );
    }
}

/// A custom `url`, `host` or `authority_base` (the sandbox) still wins over the cloud; the
/// token is still for the cloud's resource.
#[test]
fn custom_endpoints_override_the_cloud() {
    let mut text = text("china");
    for (name, extra) in [
        ("daemon", "authority_base = \"http://127.0.0.1:9/\""),
        ("daemon-graph", "url = \"http://127.0.0.1:9/v1.0\""),
        (
            "daemon-ews",
            "url = \"http://127.0.0.1:9/EWS/Exchange.asmx\"",
        ),
        ("daemon-smtp", "host = \"127.0.0.1\"\nport = 2525"),
    ] {
        let line = format!("name = \"{name}\"\n");
        assert_eq!(text.matches(&line).count(), 1, "{name}");
        text = text.replace(&line, &format!("{line}{extra}\n"));
    }
    let c = Config::parse(&text, Path::new("clouds.toml")).unwrap();

    let g = plan_source(&c, "daemon-graph");
    assert_eq!(
        g.token_endpoint.as_str(),
        "http://127.0.0.1:9/contoso.example/oauth2/v2.0/token"
    );
    assert_eq!(g.endpoint, "http://127.0.0.1:9/v1.0/");
    assert_eq!(g.scope, "https://microsoftgraph.chinacloudapi.cn/.default");
    let e = plan_source(&c, "daemon-ews");
    assert_eq!(e.endpoint, "http://127.0.0.1:9/EWS/Exchange.asmx");
    assert_eq!(e.scope, "https://partner.outlook.cn/.default");
    let s = plan_outbound(&c, "daemon-smtp");
    assert_eq!(s.endpoint, "127.0.0.1:2525");
}

/// `[apps.endpoints]` names an identity provider without Microsoft's layout: the app signs in
/// exactly there (device code too), the tokens are still for the cloud's resources, and
/// `consent-url` has no admin consent endpoint unless one is named.
#[test]
fn endpoints_named_one_by_one_replace_the_sign_in_host() {
    let endpoints = "[apps.endpoints]\nauthorize = \"https://id.example/oauth/authorize\"\n\
                     token = \"https://id.example/oauth/token\"\n\
                     device = \"https://id.example/oauth/device\"\n";
    let line = "cloud = \"us-gov-l4\"\n\n";
    let text =
        text("us-gov-l4").replacen(line, &format!("cloud = \"us-gov-l4\"\n{endpoints}\n"), 1);
    let c = Config::parse(&text, Path::new("clouds.toml")).unwrap();
    let g = plan_source(&c, "daemon-graph");
    assert_eq!(g.token_endpoint.as_str(), "https://id.example/oauth/token");
    assert_eq!(audience(&g.scope), "graph.microsoft.us");
    let app = &c.apps[0];
    assert_eq!(app.name, "daemon");
    assert_eq!(
        app.authority.device_endpoint().unwrap().as_str(),
        "https://id.example/oauth/device"
    );
    assert!(app.authority.admin_consent_endpoint().is_err());
    // The other app keeps its cloud's login host.
    assert_eq!(
        c.apps[1].authority.token_endpoint().host_str(),
        Some("login.microsoftonline.us")
    );
}
