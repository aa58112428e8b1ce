//! Building object stores: S3 with AWS-style credentials, GCS and Azure from their
//! environment, all with the job's retry settings.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use super::{aws, Scheme, StorageOptions};

fn retry_config(opts: &StorageOptions) -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: opts.max_retries,
        retry_timeout: Duration::from_secs(opts.retry_timeout_s),
    }
}

pub(super) fn build_store(
    scheme: Scheme,
    bucket: &str,
    profile: Option<&str>,
    opts: &StorageOptions,
) -> Result<Arc<dyn ObjectStore>, String> {
    let retry = retry_config(opts);
    let env = |k: &str| std::env::var(k).ok();
    match scheme {
        Scheme::S3 => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let resolved = aws::load(profile, &env)?;
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry);
            if let Some((k, s, t)) = resolved.keys {
                b = b.with_access_key_id(k).with_secret_access_key(s);
                if let Some(t) = t {
                    b = b.with_token(t);
                }
            }
            if let Some(r) = resolved.region {
                b = b.with_region(r);
            }
            if let Some(e) = resolved.endpoint {
                b = b.with_endpoint(e);
            }
            let endpoint = b
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .or_else(|| env("AWS_ENDPOINT_URL_S3"));
            if let Some(e) = endpoint {
                b = b.with_endpoint(&e);
                if e.starts_with("http://") {
                    b = b.with_allow_http(true);
                }
                if env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_none() {
                    b = b.with_virtual_hosted_style_request(false);
                }
            }
            b.build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| format!("S3 bucket {bucket}: {e}"))
        }
        Scheme::Gcs => object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| format!("GCS bucket {bucket}: {e}")),
        Scheme::Azure => object_store::azure::MicrosoftAzureBuilder::from_env()
            .with_container_name(bucket)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| format!("Azure container {bucket}: {e}")),
    }
}
