//! S3 credentials, region and endpoint, resolved the way the AWS CLI does.
//!
//! Sources, highest first:
//! - a profile named on the command line (`--input-s3-profile-name` / `--output-s3-profile-name`):
//!   its keys replace any `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in the environment;
//! - the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!   `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_S3`,
//!   `AWS_ALLOW_HTTP` (read by object_store itself);
//! - the profile `$AWS_PROFILE`, else `default`, from `~/.aws/credentials` and `~/.aws/config`
//!   (`$AWS_SHARED_CREDENTIALS_FILE`, `$AWS_CONFIG_FILE`): `aws_access_key_id`,
//!   `aws_secret_access_key`, `aws_session_token`, `region`, `endpoint_url`;
//! - object_store's own chain (web identity, ECS, instance metadata) when no keys were found.
//!
//! A custom endpoint gets path-style requests (`http://host:port/bucket/key`), which MinIO,
//! Ceph and other S3-compatible stores expect; an `http://` endpoint allows plain HTTP.

use std::path::PathBuf;

use ini::Ini;

/// What a profile contributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
}

/// The settings to apply on top of object_store's `from_env()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Keys `(access key id, secret, session token)` to set, if the profile supplies them.
    pub keys: Option<(String, String, Option<String>)>,
    /// Region to set, if the environment has none.
    pub region: Option<String>,
    /// Endpoint to set, if the environment has none.
    pub endpoint: Option<String>,
}

/// The credentials and config files: `$AWS_SHARED_CREDENTIALS_FILE` / `$AWS_CONFIG_FILE`, else
/// `~/.aws/credentials` and `~/.aws/config`.
pub fn profile_files(env: &dyn Fn(&str) -> Option<String>) -> (Option<PathBuf>, Option<PathBuf>) {
    let home = env("HOME").map(PathBuf::from);
    let creds = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    (creds, config)
}

/// Reads profile `name` from the two files' texts (either may be absent). The credentials
/// file names sections `[name]`; the config file `[profile name]` (and `[default]`). Keys in
/// the credentials file win. `None` when neither file has the profile.
pub fn read_profile(
    name: &str,
    credentials: Option<&str>,
    config: Option<&str>,
) -> Result<Option<Profile>, String> {
    let parse = |text: Option<&str>, what: &str| -> Result<Option<Ini>, String> {
        text.map(|t| Ini::load_from_str(t).map_err(|e| format!("{what}: {e}")))
            .transpose()
    };
    let creds = parse(credentials, "AWS credentials file")?;
    let conf = parse(config, "AWS config file")?;
    let cred_section = creds.as_ref().and_then(|i| i.section(Some(name)).cloned());
    let conf_name = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let conf_section = conf.as_ref().and_then(|i| {
        i.section(Some(conf_name.as_str()))
            .or_else(|| i.section(Some(name)))
            .cloned()
    });
    if cred_section.is_none() && conf_section.is_none() {
        return Ok(None);
    }
    let get = |key: &str| -> Option<String> {
        cred_section
            .as_ref()
            .and_then(|s| s.get(key))
            .or_else(|| conf_section.as_ref().and_then(|s| s.get(key)))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Ok(Some(Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
    }))
}

/// Decides what to apply over the environment. `explicit` is the profile named on the
/// command line, if any; `profile` is what the files hold for the profile in use.
pub fn resolve(
    explicit: Option<&str>,
    profile: Option<Profile>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Resolved {
    let Some(p) = profile else {
        return Resolved::default();
    };
    let env_has_keys = env("AWS_ACCESS_KEY_ID").is_some();
    let keys = match (p.access_key_id, p.secret_access_key) {
        (Some(k), Some(s)) if explicit.is_some() || !env_has_keys => Some((k, s, p.session_token)),
        _ => None,
    };
    let region = p
        .region
        .filter(|_| env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none());
    let endpoint = p
        .endpoint_url
        .filter(|_| env("AWS_ENDPOINT_URL").is_none() && env("AWS_ENDPOINT_URL_S3").is_none());
    Resolved {
        keys,
        region,
        endpoint,
    }
}

/// Loads the profile in use (`explicit`, else `$AWS_PROFILE`, else `default`) from the files.
/// A profile named on the command line that neither file has is an error; a missing default
/// is not.
pub fn load(
    explicit: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, String> {
    let name = explicit
        .map(str::to_string)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let (creds_path, config_path) = profile_files(env);
    let read = |p: &Option<PathBuf>| -> Result<Option<String>, String> {
        let Some(p) = p else { return Ok(None) };
        match std::fs::read_to_string(p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    };
    let creds = read(&creds_path)?;
    let config = read(&config_path)?;
    let profile = read_profile(&name, creds.as_deref(), config.as_deref())?;
    if profile.is_none() && explicit.is_some() {
        let shown = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(no HOME)".into())
        };
        return Err(format!(
            "S3 profile {name:?} is in neither {} nor {}",
            shown(&creds_path),
            shown(&config_path)
        ));
    }
    Ok(resolve(explicit, profile, env))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CREDS: &str = "[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n\n[team]\naws_access_key_id=TK\naws_secret_access_key=TS\naws_session_token=TT\n";
    const CONFIG: &str = "[default]\nregion = eu-west-1\n\n[profile team]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9000\n\n[profile only-config]\naws_access_key_id = CK\naws_secret_access_key = CS\n";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_profiles_from_both_files() {
        let team = read_profile("team", Some(CREDS), Some(CONFIG))
            .unwrap()
            .unwrap();
        assert_eq!(
            team,
            Profile {
                access_key_id: Some("TK".into()),
                secret_access_key: Some("TS".into()),
                session_token: Some("TT".into()),
                region: Some("us-west-2".into()),
                endpoint_url: Some("http://127.0.0.1:9000".into()),
            }
        );
        let d = read_profile("default", Some(CREDS), Some(CONFIG))
            .unwrap()
            .unwrap();
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert_eq!(d.access_key_id.as_deref(), Some("DK"));
        let c = read_profile("only-config", None, Some(CONFIG))
            .unwrap()
            .unwrap();
        assert_eq!(c.access_key_id.as_deref(), Some("CK"));
        assert_eq!(
            read_profile("nope", Some(CREDS), Some(CONFIG)).unwrap(),
            None
        );
        assert!(read_profile("x", Some("[broken"), None).is_err());
    }

    #[test]
    fn environment_keys_win_unless_a_profile_is_named() {
        let team = read_profile("team", Some(CREDS), Some(CONFIG)).unwrap();
        let env = env_of(&[("AWS_ACCESS_KEY_ID", "EK"), ("AWS_REGION", "ap-south-1")]);
        let implicit = resolve(None, team.clone(), &env);
        assert_eq!(implicit.keys, None);
        assert_eq!(implicit.region, None, "AWS_REGION wins");
        assert_eq!(implicit.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let named = resolve(Some("team"), team, &env);
        assert_eq!(
            named.keys,
            Some(("TK".into(), "TS".into(), Some("TT".into())))
        );
        let no_env = resolve(
            None,
            read_profile("default", Some(CREDS), None).unwrap(),
            &env_of(&[]),
        );
        assert_eq!(no_env.keys, Some(("DK".into(), "DS".into(), None)));
    }

    #[test]
    fn load_uses_aws_profile_and_refuses_a_missing_named_profile() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(&creds, CREDS).unwrap();
        std::fs::write(&config, CONFIG).unwrap();
        let (c, f) = (creds.to_string_lossy(), config.to_string_lossy());
        let env = env_of(&[
            ("AWS_SHARED_CREDENTIALS_FILE", &c),
            ("AWS_CONFIG_FILE", &f),
            ("AWS_PROFILE", "team"),
        ]);
        let r = load(None, &env).unwrap();
        assert_eq!(r.region.as_deref(), Some("us-west-2"));
        let err = load(Some("missing"), &env).unwrap_err();
        assert!(
            err.contains("\"missing\"") && err.contains("credentials"),
            "{err}"
        );
        // no files at all: the default profile is simply absent
        let none = env_of(&[("HOME", "/nonexistent-home")]);
        assert_eq!(load(None, &none).unwrap(), Resolved::default());
    }
}
