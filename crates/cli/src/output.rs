//! What the command prints: JSON lines for programs, readable lines for people.

use std::io::Write;

use serde_json::{Map, Value, json};

/// Where events go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    /// Print one event. In JSON mode, one object per line with `"event": name`
    /// first; otherwise `human` (when given) as a line for people.
    pub(crate) fn event(&self, name: &str, fields: Value, human: Option<String>) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), Value::String(name.into()));
            if let Value::Object(m) = fields {
                obj.extend(m);
            }
            let _ = writeln!(stdout, "{}", Value::Object(obj));
        } else if let Some(line) = human {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = stdout.flush();
    }

    /// A failure: one line on stderr, and an `error` event in JSON mode.
    pub(crate) fn error(&self, message: &str) {
        if self.json {
            self.event("error", json!({ "message": message }), None);
        }
        eprintln!("plexus: error: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_object_has_event_first_and_fields() {
        // Build the same object the printer builds and check its shape.
        let mut obj = Map::new();
        obj.insert("event".into(), Value::String("ping".into()));
        if let Value::Object(m) = json!({"peer_id": "x", "rtt_ms": 1.5}) {
            obj.extend(m);
        }
        let line = Value::Object(obj).to_string();
        assert!(line.starts_with(r#"{"event":"ping""#), "{line}");
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["rtt_ms"], json!(1.5));
    }
}
