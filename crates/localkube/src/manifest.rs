//! Reading Deployment, Pod and Service manifests into the pods localkube will
//! run and the Services it will serve (objects with Endpoints; no cluster IP
//! routes traffic through them).
//!
//! Everything is checked before anything starts: a bad document is an error that
//! names the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec, Service};
use rand::Rng;

use crate::Error;

/// One manifest file and how to load it.
#[derive(Debug, Clone)]
pub(crate) struct ManifestSource {
    pub path: PathBuf,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A pod to create: metadata decided, spec validated.
#[derive(Debug, Clone)]
pub(crate) struct PodDraft {
    pub file: PathBuf,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The Deployment that made it, if any (for `ownerReferences`-like bookkeeping).
    pub owner: Option<String>,
    pub spec: PodSpec,
}

/// What one manifest file holds.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub pods: Vec<PodDraft>,
    /// With their namespace set and the extra labels stamped on.
    pub services: Vec<(PathBuf, Service)>,
    /// With API defaults, and the extra labels stamped on their pod templates.
    pub deployments: Vec<(PathBuf, Deployment)>,
}

fn err(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Manifest {
        file: file.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

/// Characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn random_suffix(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char)
        .collect()
}

/// A UID shaped like the API server's.
pub(crate) fn random_uid() -> String {
    format!(
        "{}-{}-{}-{}",
        random_suffix(8),
        random_suffix(4),
        random_suffix(4),
        random_suffix(12)
    )
}

/// Load every document of one manifest file. `extra_labels` go on every pod
/// and Service (the per-manifest ones win over the global ones: the caller
/// merges them).
pub(crate) fn load(
    src: &ManifestSource,
    extra_labels: &BTreeMap<String, String>,
) -> Result<Loaded, Error> {
    let file = src.path.as_path();
    let text = std::fs::read_to_string(file).map_err(|e| err(file, "(file)", e.to_string()))?;
    let mut pods = Vec::new();
    let mut services = Vec::new();
    let mut deployments = Vec::new();
    let docs = crate::yaml::documents(&text).map_err(|e| err(file, "(YAML)", e))?;
    for (i, doc) in docs.iter().enumerate() {
        let where_ = format!("document {}", i + 1);
        let value = &doc.value;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| {
                err(
                    file,
                    format!("{where_}: kind"),
                    format!("missing (line {})", doc.line),
                )
            })?
            .to_string();
        let api_version = value
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        let labels_for = |mut labels: BTreeMap<String, String>| {
            labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels.extend(src.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels
        };
        match (kind.as_str(), api_version.as_str()) {
            ("Deployment", "apps/v1") => {
                let d: Deployment = doc
                    .to()
                    .map_err(|e| err(file, format!("{where_} (Deployment)"), e))?;
                let name = d
                    .metadata
                    .name
                    .clone()
                    .ok_or_else(|| err(file, "metadata.name", "missing"))?;
                let namespace = namespace_of(src, d.metadata.namespace.as_deref());
                let spec = d
                    .spec
                    .ok_or_else(|| err(file, format!("Deployment {name}: spec"), "missing"))?;
                let replicas = spec.replicas.unwrap_or(1);
                if replicas < 0 {
                    return Err(err(
                        file,
                        format!("Deployment {name}: spec.replicas"),
                        "must not be negative",
                    ));
                }
                let tmeta = spec.template.metadata.unwrap_or_default();
                let pod_spec = spec.template.spec.ok_or_else(|| {
                    err(
                        file,
                        format!("Deployment {name}: spec.template.spec"),
                        "missing",
                    )
                })?;
                validate_spec(
                    file,
                    &format!("Deployment {name}: spec.template.spec"),
                    &pod_spec,
                )?;
                let mut template_meta = tmeta;
                template_meta.labels = Some(labels_for(template_meta.labels.unwrap_or_default()));
                let object = crate::deployments::normalize(
                    Deployment {
                        metadata: d.metadata,
                        spec: Some(DeploymentSpec {
                            template: PodTemplateSpec {
                                metadata: Some(template_meta),
                                spec: Some(pod_spec),
                            },
                            ..spec
                        }),
                        status: None,
                    },
                    &namespace,
                );
                let count = usize::try_from(replicas).unwrap_or(0);
                pods.extend(crate::deployments::drafts(file, &object, count));
                deployments.push((file.to_path_buf(), object));
            }
            ("Pod", "v1") => {
                let p: Pod = doc
                    .to()
                    .map_err(|e| err(file, format!("{where_} (Pod)"), e))?;
                let name = p
                    .metadata
                    .name
                    .clone()
                    .ok_or_else(|| err(file, "metadata.name", "missing"))?;
                let spec = p
                    .spec
                    .ok_or_else(|| err(file, format!("Pod {name}: spec"), "missing"))?;
                validate_spec(file, &format!("Pod {name}: spec"), &spec)?;
                pods.push(PodDraft {
                    file: file.to_path_buf(),
                    namespace: namespace_of(src, p.metadata.namespace.as_deref()),
                    labels: labels_for(p.metadata.labels.unwrap_or_default()),
                    annotations: p.metadata.annotations.unwrap_or_default(),
                    name,
                    owner: None,
                    spec,
                });
            }
            ("Service", "v1") => {
                let mut svc: Service = doc
                    .to()
                    .map_err(|e| err(file, format!("{where_} (Service)"), e))?;
                if svc.metadata.name.as_deref().is_none_or(str::is_empty) {
                    return Err(err(file, "metadata.name", "missing"));
                }
                svc.metadata.namespace = Some(namespace_of(src, svc.metadata.namespace.as_deref()));
                svc.metadata.labels = Some(labels_for(svc.metadata.labels.unwrap_or_default()));
                services.push((file.to_path_buf(), svc));
            }
            _ => {
                return Err(err(
                    file,
                    format!("{where_}: kind"),
                    format!(
                        "{api_version} {kind} (line {}) is not supported; localkube runs apps/v1 Deployment and v1 Pod, and serves v1 Service",
                        doc.line
                    ),
                ));
            }
        }
    }
    if pods.is_empty() && services.is_empty() && deployments.is_empty() {
        return Err(err(
            file,
            "(file)",
            "no Deployment, Pod or Service in this manifest",
        ));
    }
    Ok(Loaded {
        pods,
        services,
        deployments,
    })
}

fn namespace_of(src: &ManifestSource, from_manifest: Option<&str>) -> String {
    src.namespace
        .clone()
        .or_else(|| from_manifest.map(str::to_string))
        .unwrap_or_else(|| "default".to_string())
}

/// The environment variable sources localkube can fill in.
pub(crate) const FIELD_REFS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.hostIP",
];

/// Reject what localkube cannot run faithfully, naming the field.
pub(crate) fn validate_spec(file: &Path, at: &str, spec: &PodSpec) -> Result<(), Error> {
    if spec.containers.is_empty() {
        return Err(err(file, format!("{at}.containers"), "must not be empty"));
    }
    if spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(err(
            file,
            format!("{at}.initContainers"),
            "init containers are not supported by localkube",
        ));
    }
    let mut volumes = Vec::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if v.empty_dir.is_none() {
            return Err(err(
                file,
                format!("{at}.volumes[{i}]"),
                format!(
                    "volume {:?}: only emptyDir volumes are supported by localkube",
                    v.name
                ),
            ));
        }
        if volumes.contains(&v.name.as_str()) {
            return Err(err(
                file,
                format!("{at}.volumes[{i}].name"),
                format!("duplicate volume name {:?}", v.name),
            ));
        }
        volumes.push(v.name.as_str());
    }
    let mut names = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let cat = format!("{at}.containers[{i}]");
        if c.name.is_empty() {
            return Err(err(file, format!("{cat}.name"), "must not be empty"));
        }
        if names.contains(&c.name.as_str()) {
            return Err(err(
                file,
                format!("{cat}.name"),
                format!("duplicate container name {:?}", c.name),
            ));
        }
        names.push(c.name.as_str());
        if c.image.as_deref().unwrap_or_default().is_empty() {
            return Err(err(file, format!("{cat}.image"), "must not be empty"));
        }
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            if !volumes.contains(&m.name.as_str()) {
                return Err(err(
                    file,
                    format!("{cat}.volumeMounts[{j}].name"),
                    format!("no volume named {:?} in the pod spec", m.name),
                ));
            }
            if !m.mount_path.starts_with('/') || m.mount_path.split('/').any(|p| p == "..") {
                return Err(err(
                    file,
                    format!("{cat}.volumeMounts[{j}].mountPath"),
                    format!("{:?} must be an absolute path without '..'", m.mount_path),
                ));
            }
            if let Some(sub) = &m.sub_path
                && (sub.starts_with('/') || sub.split('/').any(|p| p == ".."))
            {
                return Err(err(
                    file,
                    format!("{cat}.volumeMounts[{j}].subPath"),
                    format!("{sub:?} must be a relative path without '..'"),
                ));
            }
        }
        for (j, e) in c.env.iter().flatten().enumerate() {
            if let Some(from) = &e.value_from {
                let ok = from
                    .field_ref
                    .as_ref()
                    .is_some_and(|f| FIELD_REFS.contains(&f.field_path.as_str()));
                if !ok {
                    return Err(err(
                        file,
                        format!("{cat}.env[{j}].valueFrom"),
                        format!(
                            "env {:?}: only fieldRef to one of {} is supported by localkube",
                            e.name,
                            FIELD_REFS.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some((field, message)) = crate::lifecycle::unsupported_hook(c) {
            return Err(err(file, format!("{cat}.{field}"), message));
        }
        if c.tty == Some(true) {
            return Err(err(
                file,
                format!("{cat}.tty"),
                "terminals are not supported by localkube",
            ));
        }
    }
    Ok(())
}

/// The image name without tag or digest (`repo/app:v1@sha256:...` -> `repo/app`).
pub(crate) fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(colon) if !no_digest[colon..].contains('/') => &no_digest[..colon],
        _ => no_digest,
    }
}

/// Find the local image for an image name: exact name first, then without tag/digest.
pub(crate) fn resolve_image<'a, V>(images: &'a BTreeMap<String, V>, image: &str) -> Option<&'a V> {
    images
        .get(image)
        .or_else(|| images.get(image_repository(image)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        assert_eq!(image_repository("app"), "app");
        assert_eq!(image_repository("app:v1"), "app");
        assert_eq!(
            image_repository("reg:5000/team/app:v1"),
            "reg:5000/team/app"
        );
        assert_eq!(image_repository("reg:5000/team/app"), "reg:5000/team/app");
        assert_eq!(image_repository("app@sha256:abc"), "app");
        assert_eq!(image_repository("app:v1@sha256:abc"), "app");
    }
}
