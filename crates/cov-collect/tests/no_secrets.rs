//! No credential reaches any output, at -v and -vv, on the failure paths of
//! cluster access: a wrong token, a failing exec plugin that prints a
//! secret-looking value (and has one in its env), an expired client certificate.

use std::path::Path;
use std::process::Command;

use localkube::{LocalKube, Validity};

const SECRET: &str = "s3cr3t-Hunter2-value";
const ENV_SECRET: &str = "plugin-env-secret-77";

fn kubeconfig(kube: &LocalKube, dir: &Path, name: &str, user: &str) -> std::path::PathBuf {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, kube.ca_pem()).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n",
        kube.server_url(),
        ca.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn failures_never_print_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let kube = LocalKube::builder(dir.path().join("kube"))
        .start()
        .expect("localkube");
    let plugin = dir.path().join("cred-plugin.sh");
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\necho \"{{\\\"token\\\": \\\"{SECRET}\\\"}} $PLUGIN_SECRET\"\necho \"$PLUGIN_SECRET {SECRET}\" >&2\nexit 1\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (cert, key) = kube
        .client_certificate("expired-user", &[], Validity::Expired)
        .unwrap();
    std::fs::write(dir.path().join("c.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("c.key"), &key).unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let cases = [
        ("wrong-token", format!("    token: {SECRET}")),
        (
            "failing-plugin",
            format!(
                "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n      env:\n      - {{name: PLUGIN_SECRET, value: {ENV_SECRET}}}",
                plugin.display()
            ),
        ),
        (
            "expired-cert",
            format!(
                "    client-certificate: {}\n    client-key: {}",
                dir.path().join("c.crt").display(),
                dir.path().join("c.key").display()
            ),
        ),
    ];
    for (name, user) in cases {
        let cfg = kubeconfig(&kube, dir.path(), name, &user);
        for v in ["-v", "-vv"] {
            let out = Command::new(env!("CARGO_BIN_EXE_cov-collect"))
                .arg("--kubeconfig")
                .arg(&cfg)
                .args(["--run-id", "r", "--out"])
                .arg(dir.path().join("out"))
                .arg(v)
                .env_remove("KUBECONFIG")
                .env_remove("SKAFFOLD_KUBE_CONTEXT")
                .output()
                .expect("run cov-collect");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("{name} {v}:\n{text}");
            assert!(!out.status.success(), "{name} {v} must fail");
            for secret in [SECRET, ENV_SECRET, &key_body[..24]] {
                assert!(
                    !text.contains(secret),
                    "{name} {v} printed a secret:\n{text}"
                );
            }
        }
    }
}
