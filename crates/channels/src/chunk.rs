//! `chunk`: an agent's answer cut into the messages each vendor takes, at the original's
//! sizes and break points, so a long answer arrives whole and readable.
//!
//! Owns: Telegram (at most 4096 bytes, cut at the last blank line, else newline, else space;
//! chunks trimmed), Discord (at most 2000 bytes, cut at the last space or newline in the second
//! half of the window) and Slack (at most 3000 bytes, cut at the last newline). Where no break
//! point fits, the cut falls on the last character boundary, never inside a character.
//!
//! Must not know: how chunks are sent, or any vendor's other limits.

/// Telegram's `sendMessage` limit, in bytes (the original's).
pub const TELEGRAM_MAX: usize = 4096;
/// Discord's message limit, in bytes.
pub const DISCORD_MAX: usize = 2000;
/// The original's Slack chunk, in bytes.
pub const SLACK_MAX: usize = 3000;

/// Telegram's chunks.
pub fn telegram(text: &str) -> Vec<String> {
    split(text, TELEGRAM_MAX, |w| {
        w.rfind("\n\n").or_else(|| w.rfind('\n')).or_else(|| w.rfind(' '))
    })
}

/// Discord's chunks.
pub fn discord(text: &str) -> Vec<String> {
    split(text, DISCORD_MAX, |w| {
        w.rfind([' ', '\n']).filter(|&i| i >= w.len() / 2)
    })
}

/// Slack's chunks.
pub fn slack(text: &str) -> Vec<String> {
    split(text, SLACK_MAX, |w| w.rfind('\n'))
}

/// `text` trimmed and cut into pieces of at most `max` bytes: each at the break `cut` finds
/// in the window (a byte offset; 0 or none means no usable break), else at the window's end.
/// Pieces are trimmed; empty ones are dropped.
fn split(text: &str, max: usize, cut: impl Fn(&str) -> Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.len() > max {
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let window = &rest[..end];
        let at = cut(window).filter(|&i| i > 0).unwrap_or(end);
        let piece = rest[..at].trim();
        if !piece.is_empty() {
            out.push(piece.to_owned());
        }
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_answer_is_one_message_and_an_empty_one_none() {
        assert_eq!(telegram("  hello \n"), vec!["hello".to_owned()]);
        assert!(telegram(" \n ").is_empty());
        assert_eq!(slack("hi"), vec!["hi".to_owned()]);
        assert_eq!(discord("hi"), vec!["hi".to_owned()]);
    }

    #[test]
    fn telegram_cuts_at_the_last_blank_line_then_newline_then_space() {
        let para = "word ".repeat(500); // 2500 bytes
        let text = format!("{}\n\n{}\n\n{}", para.trim(), para.trim(), para.trim());
        let chunks = telegram(&text);
        assert_eq!(
            chunks.len(),
            3,
            "{:?}",
            chunks.iter().map(String::len).collect::<Vec<_>>()
        );
        assert!(chunks.iter().all(|c| c == para.trim()));
        // No blank line: a newline; no newline: a space.
        let lines = format!("{}\n{}", "a".repeat(3000), "b".repeat(3000));
        assert_eq!(telegram(&lines), vec!["a".repeat(3000), "b".repeat(3000)]);
        let spaced = format!("{} {}", "a".repeat(3000), "b".repeat(3000));
        assert_eq!(telegram(&spaced), vec!["a".repeat(3000), "b".repeat(3000)]);
    }

    #[test]
    fn without_a_break_the_cut_falls_between_characters() {
        let text = "é".repeat(5000); // 10,000 bytes, no break point
        let chunks = telegram(&text);
        assert!(
            chunks.iter().all(|c| c.len() <= TELEGRAM_MAX),
            "{:?}",
            chunks.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(chunks.concat(), text, "nothing lost or split inside a character");
        let slack_chunks = slack(&text);
        assert!(slack_chunks.iter().all(|c| c.len() <= SLACK_MAX));
        assert_eq!(slack_chunks.concat(), text);
    }

    #[test]
    fn discord_breaks_only_in_the_second_half_of_its_window() {
        // A space early in the window is not used: the cut is at the window's end.
        let early = format!("{} {}", "a".repeat(100), "b".repeat(3000));
        let chunks = discord(&early);
        assert_eq!(chunks[0].len(), DISCORD_MAX);
        // A space late in the window is.
        let late = format!("{} {}", "a".repeat(1500), "b".repeat(1000));
        assert_eq!(discord(&late), vec!["a".repeat(1500), "b".repeat(1000)]);
        assert!(discord(&"x ".repeat(5000)).iter().all(|c| c.len() <= DISCORD_MAX));
    }
}
