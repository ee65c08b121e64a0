//! An error and its causes as one line, `: `-separated, as anyhow's `{:#}` shows them:
//! for log lines and API bodies built from errors that keep their cause as the source.

/// `error`'s message, then each source's in turn.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
