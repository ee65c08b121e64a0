//! The audit log as CSV, safe to open in a spreadsheet.
//!
//! Audit rows carry text an attacker chooses (user names, subjects, reasons). A spreadsheet
//! runs a cell that starts with a formula character, so every such cell is prefixed with
//! `'`, which makes it text. Every field is quoted, so commas, quotes and line breaks
//! inside a value stay inside its cell.

use crate::store::AuditRow;

/// The export's first line.
pub(crate) const HEADER: &str = "id,at,actor,action,subject,detail\n";

/// Leading characters a spreadsheet reads as the start of a formula (OWASP's list for CSV
/// injection): `=`, `+`, `-`, `@`, and tab and carriage return, which some spreadsheets
/// skip before looking at the next character.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

#[derive(Debug, thiserror::Error)]
pub enum AuditCsvError {
    #[error("writing the audit CSV: {0}")]
    Write(#[from] csv::Error),
    #[error("writing the audit CSV: {0}")]
    Flush(String),
}

/// `value` as a spreadsheet shows it as text.
fn neutralise(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// `rows` as CSV lines, every field quoted and neutralised.
pub(crate) fn rows(rows: &[AuditRow]) -> Result<String, AuditCsvError> {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for row in rows {
        let at = row.at.to_rfc3339();
        let detail = row.detail.to_string();
        writer.write_record(
            [
                row.id.as_str(),
                at.as_str(),
                row.actor.as_str(),
                row.action.as_str(),
                row.subject.as_str(),
                detail.as_str(),
            ]
            .map(neutralise)
            .iter()
            .map(|v| v.as_bytes()),
        )?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AuditCsvError::Flush(e.error().to_string()))?;
    // Every field came from a `&str` and the writer adds only ASCII.
    String::from_utf8(bytes).map_err(|e| AuditCsvError::Flush(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(subject: &str) -> AuditRow {
        AuditRow {
            id: "a1".into(),
            at: chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            actor: "alice".into(),
            action: "user.create".into(),
            subject: subject.into(),
            detail: serde_json::json!({}),
        }
    }

    /// The one `subject` cell of a one-row export.
    fn subject_cell(subject: &str) -> String {
        let line = rows(&[row(subject)]).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(record.len(), 6, "{line:?}");
        record[4].to_string()
    }

    #[test]
    fn every_formula_start_is_made_text() {
        for start in ['=', '+', '-', '@', '\t', '\r'] {
            let value = format!("{start}HYPERLINK(\"http://x\")");
            assert_eq!(subject_cell(&value), format!("'{value}"), "{start:?}");
        }
    }

    #[test]
    fn other_values_are_kept_as_they_are() {
        for value in ["plain", "a=b", " =1", "1+1", "", "'quoted"] {
            assert_eq!(subject_cell(value), value, "{value:?}");
        }
    }

    #[test]
    fn every_field_is_quoted_and_quotes_are_doubled() {
        let line = rows(&[row("say \"hi\", then\nleave")]).unwrap();
        assert_eq!(
            line,
            "\"a1\",\"2026-01-02T03:04:05+00:00\",\"alice\",\"user.create\",\
             \"say \"\"hi\"\", then\nleave\",\"{}\"\n"
        );
    }
}
