//! Where a file or directory lives: a local path, or a key in an object store bucket.

use std::fmt;
use std::path::{Path, PathBuf};

/// An object store service, named by its URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Amazon S3 and S3-compatible stores (`s3://`, also `s3a://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage (`az://container/...`).
    Azure,
}

impl Scheme {
    /// The scheme as written in URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "az",
        }
    }
}

/// A location: a local path or an object-store key. Object keys never start or end with `/`;
/// an empty key is the bucket itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A path on the local file system.
    Local(PathBuf),
    /// A key in a bucket.
    Remote {
        /// The service.
        scheme: Scheme,
        /// Bucket (S3, GCS) or container (Azure).
        bucket: String,
        /// Key, or key prefix for a "directory".
        key: String,
    },
}

impl Location {
    /// Parses a local path or a `s3://`, `s3a://`, `gs://` or `az://` URI. Any other
    /// `scheme://` is refused rather than taken as a local path.
    pub fn parse(s: &str) -> Result<Location, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(s)));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" => Scheme::Azure,
            "file" => return Ok(Location::Local(PathBuf::from(rest))),
            other => {
                return Err(format!(
                    "{s}: unsupported scheme {other}:// (use a local path, s3://, gs:// or az://)"
                ))
            }
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{s}: no bucket name"));
        }
        Ok(Location::Remote {
            scheme,
            bucket: bucket.to_string(),
            key: key.trim_matches('/').to_string(),
        })
    }

    /// `self/rel`, where `rel` is a relative path with `/` separators.
    pub fn join(&self, rel: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(rel)),
            Location::Remote {
                scheme,
                bucket,
                key,
            } => {
                let rel = rel.trim_matches('/');
                let key = match (key.is_empty(), rel.is_empty()) {
                    (_, true) => key.clone(),
                    (true, false) => rel.to_string(),
                    (false, false) => format!("{key}/{rel}"),
                };
                Location::Remote {
                    scheme: *scheme,
                    bucket: bucket.clone(),
                    key,
                }
            }
        }
    }

    /// True for object-store locations.
    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Remote { .. })
    }

    /// The local path, if this is one.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Remote { .. } => None,
        }
    }

    /// The path without scheme and bucket: the key of a remote location, the path of a local
    /// one. `wdinfo.json`'s `root` is written with it (SPEC §7).
    pub fn path_str(&self) -> String {
        match self {
            Location::Local(p) => p.to_string_lossy().into_owned(),
            Location::Remote { key, .. } => key.clone(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote {
                scheme,
                bucket,
                key,
            } if key.is_empty() => write!(f, "{}://{bucket}", scheme.as_str()),
            Location::Remote {
                scheme,
                bucket,
                key,
            } => write!(f, "{}://{bucket}/{key}", scheme.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_uris() {
        assert_eq!(
            Location::parse("a/b").unwrap(),
            Location::Local("a/b".into())
        );
        assert_eq!(
            Location::parse("/abs").unwrap(),
            Location::Local("/abs".into())
        );
        let s3 = Location::parse("s3://bkt/pre/fix/").unwrap();
        assert_eq!(
            s3,
            Location::Remote {
                scheme: Scheme::S3,
                bucket: "bkt".into(),
                key: "pre/fix".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://bkt/pre/fix");
        assert_eq!(s3.path_str(), "pre/fix");
        let bare = Location::parse("s3a://bkt").unwrap();
        assert_eq!(bare.to_string(), "s3://bkt");
        assert_eq!(bare.join("metas/v0").to_string(), "s3://bkt/metas/v0");
        assert_eq!(Location::parse("gs://g/x").unwrap().to_string(), "gs://g/x");
        assert_eq!(Location::parse("az://c/x").unwrap().to_string(), "az://c/x");
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        assert!(Location::parse("http://h/x")
            .unwrap_err()
            .contains("unsupported scheme http://"));
        assert!(Location::parse("s3:///k")
            .unwrap_err()
            .contains("no bucket"));
    }

    #[test]
    fn joins() {
        let s3 = Location::parse("s3://b/p").unwrap();
        assert_eq!(s3.join("v0/x.tar").to_string(), "s3://b/p/v0/x.tar");
        assert_eq!(s3.join("").to_string(), "s3://b/p");
        let local = Location::parse("out").unwrap();
        assert_eq!(local.join("v0/x"), Location::Local("out/v0/x".into()));
        assert!(!local.is_remote() && s3.is_remote());
    }
}
