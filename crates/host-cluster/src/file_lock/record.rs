//! What a lease file holds: its name, the last term's token, and the
//! holder with its expiry while held.

/// The first line of every lease file, naming the format.
const HEADER: &str = "host-cluster lease v1";

/// A lease file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// The lease name, to catch two names mapped to one file.
    pub(super) name: String,
    /// The last term's fencing token; the next term's is one larger.
    pub(super) token: u64,
    /// The holder and the expiry (milliseconds since the Unix epoch) while
    /// a term is held; `None` once released.
    pub(super) holder: Option<(String, u64)>,
}

impl Record {
    /// The text written to the file. Names and holders hold no control
    /// characters (checked on the way in), so one per line is unambiguous;
    /// the closing `end` line tells a whole record from one read mid-write.
    pub(super) fn encode(&self) -> String {
        let (holder, expires) = match &self.holder {
            Some((holder, expires)) => (holder.as_str(), *expires),
            None => ("", 0),
        };
        format!(
            "{HEADER}\nname={}\ntoken={}\nholder={holder}\nexpires_ms={expires}\nend\n",
            self.name, self.token
        )
    }

    /// Reads a record back; `Ok(None)` for an empty (new) file, `Err` with
    /// what was wrong for anything else it cannot read.
    pub(super) fn decode(text: &str) -> Result<Option<Self>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        let mut fields = Fields::after(text, HEADER)?;
        let name = fields.text("name")?.to_owned();
        let token = fields.number("token")?;
        let holder = fields.text("holder")?.to_owned();
        let expires = fields.number("expires_ms")?;
        if fields.rest().next() != Some("end") {
            return Err("it is cut short (no `end` line)".to_owned());
        }
        let holder = (!holder.is_empty()).then_some((holder, expires));
        Ok(Some(Self {
            name,
            token,
            holder,
        }))
    }
}

/// Reads a file's `key=value` lines in order, after its header line.
pub(super) struct Fields<'a> {
    lines: std::str::Lines<'a>,
}

impl<'a> Fields<'a> {
    /// The lines after `header`, or what is wrong when the text does not
    /// start with it.
    pub(super) fn after(text: &'a str, header: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(header) {
            return Err(format!("it does not start with {header:?}"));
        }
        Ok(Self { lines })
    }

    /// The next line's value, which must be `key`'s.
    pub(super) fn text(&mut self, key: &str) -> Result<&'a str, String> {
        self.lines
            .next()
            .and_then(|line| line.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("its `{key}` line is missing"))
    }

    /// The next line's value as a number.
    pub(super) fn number<T: std::str::FromStr>(&mut self, key: &str) -> Result<T, String> {
        let value = self.text(key)?;
        value
            .parse()
            .map_err(|_| format!("its {key} {value:?} is not a number"))
    }

    /// The lines after the fields read.
    pub(super) fn rest(self) -> std::str::Lines<'a> {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_and_released_records_read_back() {
        for holder in [Some(("host a=1".to_owned(), 1_700_000_000_123)), None] {
            let record = Record {
                name: "a/b c".to_owned(),
                token: 42,
                holder,
            };
            assert_eq!(Record::decode(&record.encode()), Ok(Some(record)));
        }
    }

    #[test]
    fn empty_is_new_and_partial_or_foreign_text_is_refused() {
        assert_eq!(Record::decode(""), Ok(None));
        let whole = Record {
            name: "n".to_owned(),
            token: 7,
            holder: None,
        }
        .encode();
        let cut = &whole[..whole.len() - 4];
        assert!(Record::decode(cut).unwrap_err().contains("cut short"));
        assert!(Record::decode("hello\n").unwrap_err().contains("start"));
        let bad = whole.replace("token=7", "token=x");
        assert!(Record::decode(&bad).unwrap_err().contains("token"));
    }
}
