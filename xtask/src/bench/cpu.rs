//! The CPU each process of a benchmark used, read from `/proc` around a load run.
//!
//! Must not know: which benchmark asks.

/// CPU seconds each process of the memory benchmark has used so far, by part: the plugin,
/// workspace-server and PostgreSQL (the postmaster and its backends), and within PostgreSQL
/// the backends serving workspace-server's own database (its audit rows, tokens and tree).
/// Read from `/proc`, in the kernel's USER_HZ ticks, which Linux fixes at 100 on every
/// architecture it exposes to user space.
#[derive(Debug, Clone, Default)]
pub(super) struct CpuSplit(std::collections::HashMap<u32, (usize, bool, f64)>);

/// The parts, in [`CpuSplit`]'s order; the last is a share of `postgres`, not an addition.
const CPU_PARTS: [&str; 4] = [
    "plugin",
    "workspace_server",
    "postgres",
    "postgres_for_workspace_server_db",
];

impl CpuSplit {
    /// `server_db`: the database name workspace-server's backends show in their process title.
    pub(super) fn now(plugin: u32, server: u32, postmaster: u32, server_db: &str) -> Self {
        let mut split = Self::default();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return split;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the command name (which may hold spaces): state, ppid, … utime (14th), stime.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            let ppid = fields.get(1).and_then(|f| f.parse::<u32>().ok()).unwrap_or(0);
            let part = match pid {
                p if p == plugin => 0,
                p if p == server => 1,
                p if p == postmaster || ppid == postmaster => 2,
                _ => continue,
            };
            // A backend's title names its database: "postgres: <user> <database> <client>
            // <state>", or "postgres: autovacuum worker <database>".
            let for_server = part == 2
                && std::fs::read(entry.path().join("cmdline")).is_ok_and(|title| {
                    String::from_utf8_lossy(&title)
                        .split_whitespace()
                        .any(|w| w == server_db)
                });
            split.0.insert(pid, (part, for_server, (field(11) + field(12)) / 100.0));
        }
        split
    }

    /// Milliseconds of CPU per request between `self` and `later`, by part (a process that
    /// ended in between is left out; one that started counts whole).
    pub(super) fn per_request(&self, later: &Self, requests: f64) -> serde_json::Value {
        let mut used = [0.0_f64; 4];
        for (pid, (part, for_server, seconds)) in &later.0 {
            let before = self.0.get(pid).map_or(0.0, |(_, _, s)| *s);
            used[*part] += seconds - before;
            if *for_server {
                used[3] += seconds - before;
            }
        }
        let ms = |s: f64| (s * 1000.0 / requests.max(1.0) * 1000.0).round() / 1000.0;
        serde_json::Value::Object(
            CPU_PARTS
                .iter()
                .zip(used)
                .map(|(name, s)| ((*name).to_owned(), ms(s).into()))
                .collect(),
        )
    }
}
