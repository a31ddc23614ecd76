//! A Redis key prefix of the test's own: runs never meet, and its keys are
//! deleted when the test ends, passed or failed.

/// A prefix under one server; its keys are deleted when dropped.
#[derive(Debug)]
pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    pub fn new(url: &str, test: &str) -> Self {
        let prefix = format!("hc-test:{test}:{:08x}:", fastrand::u32(..));
        println!("{test}: Redis prefix {prefix}");
        Self {
            url: url.to_owned(),
            prefix,
        }
    }

    /// A plain connection, to look at (or set) the store's keys.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|error| panic!("{}: {error}", self.url))
    }

    /// `key` under the prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn delete_keys(&self) -> redis::RedisResult<usize> {
        let mut raw = redis::Client::open(self.url.as_str())?.get_connection()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut raw)?;
        if keys.is_empty() {
            return Ok(0);
        }
        redis::cmd("DEL").arg(&keys).query(&mut raw)
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Err(error) = self.delete_keys() {
            eprintln!("keys under {} were not deleted: {error}", self.prefix);
        }
    }
}
