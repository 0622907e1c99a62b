//! A throw-away PostgreSQL cluster for the `fleet` crate's tests: `initdb` into a temporary
//! directory (trust authentication, loopback only, its socket in that directory), started with
//! `pg_ctl`, stopped and deleted when the [`Cluster`] is dropped, whether the tests passed or
//! not. As root (CI runs as root, and PostgreSQL refuses to run as root) the cluster runs as the
//! `postgres` user Debian's package creates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable the `fleet` tests read the admin URL from.
pub(crate) const ENV: &str = "M365MAIL_TEST_POSTGRES";

/// What to tell someone whose machine has no PostgreSQL.
pub(crate) const INSTALL: &str = "PostgreSQL is needed by the fleet tests: install Debian's \
     `postgresql` (apt-get install postgresql), or set M365MAIL_TEST_POSTGRES to an admin URL";

/// A running cluster; stopped and deleted on drop.
pub(crate) struct Cluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    user: Option<&'static str>,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) url: String,
}

/// The directory holding `initdb` and `pg_ctl`: on the PATH, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them off the PATH).
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether `initdb` and `pg_ctl` can be found.
pub(crate) fn installed() -> bool {
    bin_dir().is_some()
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A port nobody listens on now (the kernel's pick; PostgreSQL binds it a moment later).
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs `program args` (as `user` when set), failing with its output.
pub(crate) fn run_as(user: Option<&str>, program: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args);
    let out = cmd
        .output()
        .map_err(|e| format!("could not start {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed with {}: {}{}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Cluster {
    /// Creates and starts a cluster, or says why not (no PostgreSQL: [`INSTALL`]).
    pub(crate) fn start() -> Result<Cluster, String> {
        let bin = bin_dir().ok_or(INSTALL)?;
        let user = if is_root() {
            if !Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Err(format!(
                    "running as root, and PostgreSQL refuses root: there is no `postgres` user to \
                     run it as ({INSTALL})"
                ));
            }
            Some("postgres")
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("xtask-postgres-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = Cluster {
            dir: dir.clone(),
            pg_ctl: bin.join("pg_ctl"),
            user,
            url: String::new(),
        };
        if let Some(u) = user {
            let owner = format!("{u}:");
            let ok = Command::new("chown")
                .args(["-R", &owner])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("could not chown {} to {u}", dir.display()));
            }
        }
        let data = dir.join("data");
        let data_s = data.to_string_lossy().into_owned();
        run_as(
            user,
            &bin.join("initdb"),
            &[
                "-D",
                &data_s,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let port = free_port()?;
        // Loopback only, the socket in the temporary directory (not /var/run/postgresql, which
        // may not exist or belong to a system cluster), no fsync: the data is thrown away. In
        // the cluster's own postgresql.conf (the last setting wins), so that a plain `pg_ctl
        // start` brings it back the same: the fleet chaos run stops and starts it mid-run.
        let settings = format!(
            "\n# xtask's throw-away cluster\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = off\nmax_connections = 200\n",
            dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, settings.as_bytes()))
            .map_err(|e| format!("{}: {e}", data.join("postgresql.conf").display()))?;
        let log = cluster.log().to_string_lossy().into_owned();
        if let Err(e) = run_as(
            user,
            &cluster.pg_ctl,
            &["-D", &data_s, "-l", &log, "-w", "-t", "60", "start"],
        ) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e}\nserver log:\n{log}"));
        }
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        eprintln!(
            "xtask: started a throw-away PostgreSQL ({}) at {}",
            bin.display(),
            cluster.url
        );
        Ok(cluster)
    }
}

impl Cluster {
    /// The data directory (`pg_ctl -D`).
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log file.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// `pg_ctl`.
    pub(crate) fn pg_ctl(&self) -> &Path {
        &self.pg_ctl
    }

    /// The user the server runs as, when not this process's (`postgres` as root).
    pub(crate) fn user(&self) -> Option<&'static str> {
        self.user
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let data_s = data.to_string_lossy().into_owned();
            if let Err(e) = run_as(
                self.user,
                &self.pg_ctl,
                &["-D", &data_s, "-m", "immediate", "-w", "stop"],
            ) {
                eprintln!("xtask: stopping the test PostgreSQL failed: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
