//! A bearer token read from a file, re-read whenever the file changes.
//!
//! Service-account tokens are rotated by the kubelet (a projected volume swaps
//! in a new file well before the old token expires); kubeconfig `tokenFile`s
//! are rotated by whatever wrote them. kube 5 re-reads a token file only once a
//! minute, so a tool that starts just before a rotation could keep sending a
//! revoked token. Here the file's identity (modification time, length, inode)
//! is checked on every request and the token re-read when it differs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http::{HeaderValue, Request, header::AUTHORIZATION};

#[derive(Default)]
struct Cached {
    stamp: Option<(i64, i64, u64, u64)>,
    header: Option<HeaderValue>,
}

/// Adds `Authorization: Bearer <token from file>` to every request.
#[derive(Clone)]
pub struct TokenFile {
    path: Arc<PathBuf>,
    cached: Arc<Mutex<Cached>>,
}

impl TokenFile {
    pub fn new(path: &Path) -> TokenFile {
        TokenFile {
            path: Arc::new(path.to_path_buf()),
            cached: Arc::new(Mutex::new(Cached::default())),
        }
    }

    /// The header for the file's current token (the last good one if it cannot be read now).
    pub fn header(&self) -> Option<HeaderValue> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = std::fs::metadata(&*self.path)
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec(), m.len(), m.ino()));
        if stamp.is_some() && stamp != cached.stamp {
            match std::fs::read_to_string(&*self.path) {
                Ok(text) => {
                    let token = text.trim();
                    match HeaderValue::try_from(format!("Bearer {token}")) {
                        Ok(mut v) => {
                            v.set_sensitive(true);
                            cached.header = Some(v);
                            cached.stamp = stamp;
                            tracing::debug!("read the bearer token from {}", self.path.display());
                        }
                        Err(_) => tracing::warn!(
                            "token file {} holds characters a header cannot carry",
                            self.path.display()
                        ),
                    }
                }
                Err(e) => tracing::warn!("cannot read token file {}: {e}", self.path.display()),
            }
        } else if stamp.is_none() && cached.header.is_none() {
            tracing::warn!("cannot read token file {}", self.path.display());
        }
        cached.header.clone()
    }

    /// The tower layer kube's client stack gets.
    pub fn layer<B>(
        self,
    ) -> tower::util::MapRequestLayer<impl Fn(Request<B>) -> Request<B> + Clone> {
        let this = self;
        tower::util::MapRequestLayer::new(move |mut req: Request<B>| {
            if let Some(h) = this.header() {
                req.headers_mut().insert(AUTHORIZATION, h);
            }
            req
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let t = TokenFile::new(&path);
        assert_eq!(t.header().unwrap(), "Bearer first");
        // A rotation the way the kubelet does it: a new file renamed into place.
        let tmp = dir.path().join("token.new");
        std::fs::write(&tmp, "second-token\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(t.header().unwrap(), "Bearer second-token");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(t.header().unwrap(), "Bearer second-token");
    }
}
