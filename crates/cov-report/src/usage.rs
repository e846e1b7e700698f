//! Usage errors: a command line `go tool covdata` also refuses. They exit
//! 2, and their message starts with Go's own first line.

/// A bad command line; the message starts with Go's wording.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

impl Usage {
    pub fn err<T>(msg: impl Into<String>) -> anyhow::Result<T> {
        Err(Usage(msg.into()).into())
    }
}
