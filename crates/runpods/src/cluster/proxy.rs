//! Which proxy (if any) reaches the API server, by the rules kubectl follows.
//!
//! A kubeconfig cluster's `proxy-url` is used as is, for every request, with
//! no `NO_PROXY` check (client-go `clientcmd` sets `rest.Config.Proxy` to it).
//! Otherwise kubectl uses Go's `http.ProxyFromEnvironment`
//! (golang.org/x/net/http/httpproxy `config.useProxy` and `parseNoProxy`):
//!
//! - `HTTPS_PROXY`/`https_proxy` for an `https` server, `HTTP_PROXY`/`http_proxy`
//!   for an `http` one (the upper-case name first; `HTTP_PROXY` is ignored when
//!   `REQUEST_METHOD` is set, as Go does for CGI);
//! - a proxy given without a scheme means `http://`;
//! - `localhost` and loopback addresses are never proxied;
//! - `NO_PROXY`/`no_proxy` is a comma list of `*` (nothing is proxied), IP
//!   addresses and CIDRs, and domains: `example.com` matches it and its
//!   subdomains, `.example.com` and `*.example.com` only subdomains; any entry
//!   may carry `:port`, which then must match the server's (default) port.
//!   Entries are matched against the API server's host, never the proxy's.
//!
//! kube 5 reads `HTTPS_PROXY` too but checks `NO_PROXY` against the proxy's own
//! address, treats `example.com` as exact, and rejects lists Go accepts (an
//! empty entry): so the choice is made here and handed to kube as `proxy_url`.

use std::net::IpAddr;

/// The proxy settings of the environment, read once.
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    pub https_proxy: Option<String>,
    pub http_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

fn var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|v| !v.is_empty())
}

impl ProxyEnv {
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (and their lower-case forms) as Go reads them.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv {
            https_proxy: var(&["HTTPS_PROXY", "https_proxy"]),
            http_proxy: if std::env::var_os("REQUEST_METHOD").is_some() {
                None
            } else {
                var(&["HTTP_PROXY", "http_proxy"])
            },
            no_proxy: var(&["NO_PROXY", "no_proxy"]),
        }
    }
}

/// Why a proxy setting cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid proxy URL in {source_name}: {message}")]
pub struct ProxyError {
    pub source_name: String,
    pub message: String,
}

/// The proxy for `server` (an `https://host:port` URL): the kubeconfig's
/// `proxy-url` when set, else the environment's unless `NO_PROXY` or loopback
/// exempts the server. Returns the proxy URL and where it came from.
pub fn choose(
    server: &http::Uri,
    kubeconfig_proxy: Option<&str>,
    env: &ProxyEnv,
) -> Result<Option<(http::Uri, &'static str)>, ProxyError> {
    if let Some(p) = kubeconfig_proxy.filter(|p| !p.is_empty()) {
        return parse_proxy(p, "the kubeconfig's proxy-url").map(|u| Some((u, "proxy-url")));
    }
    let https = server.scheme_str() != Some("http");
    let (value, name) = if https {
        (env.https_proxy.as_deref(), "HTTPS_PROXY")
    } else {
        (env.http_proxy.as_deref(), "HTTP_PROXY")
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let host = server.host().unwrap_or_default();
    let port = server.port_u16().unwrap_or(if https { 443 } else { 80 });
    if !use_proxy(host, port, env.no_proxy.as_deref().unwrap_or("")) {
        return Ok(None);
    }
    parse_proxy(value, name).map(|u| Some((u, name)))
}

/// Go's rule: no scheme means `http://`; `http`, `https`, `socks5` and `socks5h` are proxies.
fn parse_proxy(text: &str, source_name: &str) -> Result<http::Uri, ProxyError> {
    let err = |message: String| ProxyError {
        source_name: source_name.into(),
        message,
    };
    let full = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    // Never echo the value: it may carry a user and password.
    let uri: http::Uri = full
        .parse()
        .map_err(|_| err("not a URL (expected http://host:port)".into()))?;
    match uri.scheme_str() {
        Some("http" | "https" | "socks5") => {}
        Some("socks5h") => {}
        Some(other) => {
            return Err(err(format!(
                "scheme {other:?} is not a proxy scheme (use http, https or socks5)"
            )));
        }
        None => return Err(err("no scheme".into())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(err("no host".into()));
    }
    if uri.scheme_str() == Some("socks5h") {
        // kube's connector knows socks5 only; both resolve through the proxy there.
        let rest = full.split_once("://").map(|(_, r)| r).unwrap_or_default();
        return format!("socks5://{rest}")
            .parse()
            .map_err(|_| err("not a URL".into()));
    }
    Ok(uri)
}

/// Whether a request to `host:port` goes through the environment's proxy.
pub fn use_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host == "localhost" {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let port = port.to_string();
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some(net) = parse_cidr(&entry) {
            if ip.is_some_and(|ip| net.contains(ip)) {
                return false;
            }
            continue;
        }
        let (ehost, eport) = split_host_port(&entry);
        if ehost.is_empty() {
            continue;
        }
        let port_ok = eport.is_none_or(|p| p == port);
        if let Ok(eip) = ehost.parse::<IpAddr>() {
            if ip == Some(eip) && port_ok {
                return false;
            }
            continue;
        }
        // `*.d` and `.d` match subdomains only; `d` matches d and its subdomains.
        let ehost = ehost.strip_prefix('*').unwrap_or(ehost);
        let (suffix, match_host) = match ehost.strip_prefix('.') {
            Some(_) => (ehost.to_string(), false),
            None => (format!(".{ehost}"), true),
        };
        let matched = host.ends_with(&suffix) || (match_host && host == suffix[1..]);
        if matched && port_ok {
            return false;
        }
    }
    true
}

/// `host:port`, `[v6]:port` or a bare host, as Go's `net.SplitHostPort` sees a `NO_PROXY` entry.
fn split_host_port(entry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':').filter(|p| !p.is_empty()));
        }
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address, no port.
        Some((h, _)) if h.contains(':') => (entry, None),
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (entry, None),
    }
}

struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        let prefix = |a: &[u8], b: &[u8], bits: u8| {
            let full = usize::from(bits / 8);
            let rest = bits % 8;
            a[..full] == b[..full]
                && (rest == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rest)) == 0)
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => prefix(&n.octets(), &i.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix(&n.octets(), &i.octets(), self.bits),
            _ => false,
        }
    }
}

fn parse_cidr(entry: &str) -> Option<Cidr> {
    let (addr, bits) = entry.split_once('/')?;
    let net: IpAddr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Cidr { net, bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_localhost_are_never_proxied() {
        assert!(!use_proxy("127.0.0.1", 443, ""));
        assert!(!use_proxy("127.8.9.10", 443, ""));
        assert!(!use_proxy("[::1]", 443, ""));
        assert!(!use_proxy("localhost", 6443, ""));
        assert!(use_proxy("10.0.0.1", 443, ""));
    }

    // The cases of golang.org/x/net/http/httpproxy's TestUseProxy / TestInvalidNoProxy.
    #[test]
    fn no_proxy_forms_follow_go() {
        let np = "foobar.com, .barbaz.net, *.wildcard.com, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64, bar.com:80";
        let cases: &[(&str, u16, bool)] = &[
            ("foobar.com", 443, false),
            ("www.foobar.com", 443, false),
            ("xfoobar.com", 443, true),
            ("barbaz.net", 443, true),
            ("www.barbaz.net", 443, false),
            ("wildcard.com", 443, true),
            ("www.wildcard.com", 443, false),
            ("192.168.1.1", 443, false),
            ("192.168.1.2", 80, true),
            ("192.168.1.2", 81, false),
            ("192.168.1.3", 80, false),
            ("10.0.0.2", 443, false),
            ("10.0.0.4", 443, true),
            ("2001:db8::52:0:1", 443, false),
            ("2001:db8::52:0:2", 443, false),
            ("2001:db8::52:0:3", 443, true),
            ("2002:db8:a::123", 443, false),
            ("bar.com", 80, false),
            ("bar.com", 443, true),
            ("www.bar.com", 80, false),
            ("foo.com", 443, true),
        ];
        for (host, port, want) in cases {
            assert_eq!(use_proxy(host, *port, np), *want, "{host}:{port}");
        }
        assert!(!use_proxy("anything.example", 443, "*"));
        // Go skips empty entries rather than rejecting the list.
        assert!(!use_proxy("a.example", 443, "a.example,,"));
        assert!(!use_proxy("API.Example.COM", 443, "api.example.com"));
    }

    #[test]
    fn kubeconfig_proxy_wins_and_ignores_no_proxy() {
        let server: http::Uri = "https://10.1.2.3:6443".parse().unwrap();
        let env = ProxyEnv {
            https_proxy: Some("env-proxy:3128".into()),
            http_proxy: None,
            no_proxy: Some("10.0.0.0/8".into()),
        };
        let (u, from) = choose(&server, Some("http://kc-proxy:8080"), &env)
            .unwrap()
            .unwrap();
        assert_eq!((u.host(), from), (Some("kc-proxy"), "proxy-url"));
        assert!(choose(&server, None, &env).unwrap().is_none());
        let env = ProxyEnv {
            no_proxy: None,
            ..env
        };
        let (u, from) = choose(&server, None, &env).unwrap().unwrap();
        assert_eq!(u.to_string(), "http://env-proxy:3128/");
        assert_eq!(from, "HTTPS_PROXY");
    }

    #[test]
    fn http_proxy_is_for_http_servers_only() {
        let env = ProxyEnv {
            https_proxy: None,
            http_proxy: Some("http://p:1".into()),
            no_proxy: None,
        };
        let https: http::Uri = "https://10.1.2.3".parse().unwrap();
        let http: http::Uri = "http://10.1.2.3".parse().unwrap();
        assert!(choose(&https, None, &env).unwrap().is_none());
        assert!(choose(&http, None, &env).unwrap().is_some());
    }

    #[test]
    fn bad_proxy_urls_do_not_echo_credentials() {
        let server: http::Uri = "https://10.1.2.3".parse().unwrap();
        let env = ProxyEnv {
            https_proxy: Some("ftp://user:s3cret@p:1".into()),
            ..Default::default()
        };
        let e = choose(&server, None, &env).unwrap_err().to_string();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("s3cret"), "{e}");
    }
}
