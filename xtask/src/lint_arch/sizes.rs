//! Rule `crate-share`: no library crate holds more than [`MAX_SHARE`] of the workspace's
//! non-test lines, so no crate quietly becomes the place every wave lands in. Also the table
//! `cargo xtask sizes` prints.
//!
//! A non-test line is a line of a `.rs` file under a member's `src/`, up to the file's
//! `#[cfg(test)] mod tests` (integration tests, examples, benches and fixtures do not count).
//!
//! Must not know: what the crates do.

use std::path::Path;

use cargo_metadata::{Metadata, TargetKind};

use super::{Report, Violation};

/// The largest share of the non-test lines one library crate may hold.
pub const MAX_SHARE: f64 = 0.15;
/// Below this many non-test lines in all, a share says nothing (a young or miniature
/// workspace, such as the other rules' fixtures), and the rule does not apply.
pub const MIN_TOTAL: usize = 2_000;

/// One member's non-test lines.
#[derive(Debug, Clone)]
pub struct Size {
    pub name: String,
    pub lines: usize,
    pub library: bool,
    pub manifest: std::path::PathBuf,
}

fn non_test_lines(text: &str) -> usize {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end].lines().count()
}

fn count_dir(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            n += count_dir(&p);
        } else if p.extension().is_some_and(|x| x == "rs") {
            n += std::fs::read_to_string(&p).map_or(0, |t| non_test_lines(&t));
        }
    }
    n
}

/// Every member's non-test lines, largest first.
pub fn sizes(meta: &Metadata) -> Vec<Size> {
    let mut out: Vec<Size> = meta
        .workspace_packages()
        .iter()
        .map(|p| {
            let dir = p
                .manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
                .unwrap_or_default();
            Size {
                name: p.name.to_string(),
                lines: count_dir(&dir.join("src")),
                library: p.targets.iter().any(|t| t.kind.contains(&TargetKind::Lib)),
                manifest: p.manifest_path.clone().into_std_path_buf(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.lines.cmp(&a.lines).then_with(|| a.name.cmp(&b.name)));
    out
}

pub fn check(meta: &Metadata, report: &mut Report) {
    let all = sizes(meta);
    let total: usize = all.iter().map(|s| s.lines).sum();
    if total < MIN_TOTAL {
        return;
    }
    for s in all.iter().filter(|s| s.library) {
        #[allow(clippy::cast_precision_loss)] // line counts are far below 2^52
        let share = s.lines as f64 / total as f64;
        if share > MAX_SHARE {
            report.violations.push(Violation {
                file: s.manifest.clone(),
                line: 1,
                rule: "crate-share",
                message: format!(
                    "{} holds {} of {total} non-test lines ({:.1}%, over {:.0}%): split it by domain into crates of their own",
                    s.name,
                    s.lines,
                    share * 100.0,
                    MAX_SHARE * 100.0
                ),
            });
        }
    }
}
