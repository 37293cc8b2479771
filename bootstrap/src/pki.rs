//! Certificates: making a CA, issuing and renewing leaf certificates signed
//! by it, and reading existing ones to decide whether they still fit.
//!
//! New keys are ECDSA P-256 (ring generates no RSA keys). An existing key,
//! ECDSA or RSA, PKCS#8, is always reused: renewal re-signs the same public
//! key with the existing CA, so nothing that pinned the key breaks.

use crate::plan::{CaSpec, CertSpec, San};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// notBefore lies this far in the past, for machines whose clock is a little
/// behind (kubeadm backdates by the same amount).
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A CA that signs: its certificate as written and its key.
pub struct Ca {
    pub cert_pem: String,
    pub info: CertInfo,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("subject", &self.info.subject)
            .finish()
    }
}

/// What an existing certificate says, as far as deciding about it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub der: Vec<u8>,
    /// As openssl prints it: `O=system:nodes, CN=system:node:worker-0`.
    pub subject: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    pub common_name: Option<String>,
    pub organizations: Vec<String>,
    /// `DNS:name`, `IP:address`, or another type's name and value.
    pub sans: BTreeSet<String>,
    pub client_auth: bool,
    pub server_auth: bool,
    pub is_ca: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The raw subject public key (the BIT STRING's content).
    pub public_key: Vec<u8>,
}

/// The validity settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub now: OffsetDateTime,
    /// Of a new leaf certificate (capped at its CA's notAfter).
    pub leaf: Duration,
    /// Of a new CA.
    pub ca: Duration,
    /// A leaf expiring within this is renewed.
    pub renew_before: Duration,
}

impl Validity {
    /// `now` at whole seconds, as certificates store it.
    pub fn new(now: OffsetDateTime, leaf: Duration, ca: Duration, renew_before: Duration) -> Self {
        Validity {
            now: now.replace_nanosecond(0).unwrap_or(now),
            leaf,
            ca,
            renew_before,
        }
    }

    /// Whether a certificate ending at `not_after` is due for renewal.
    pub fn due(&self, not_after: OffsetDateTime) -> bool {
        after(not_after, self.renew_before, false).is_none_or(|at| self.now >= at)
    }

    fn not_before(&self) -> OffsetDateTime {
        after(self.now, BACKDATE, false).unwrap_or(self.now)
    }

    /// A new leaf's notAfter: `now + leaf`, but never after its CA's.
    fn leaf_not_after(&self, ca: &Ca) -> OffsetDateTime {
        after(self.now, self.leaf, true)
            .unwrap_or(ca.info.not_after)
            .min(ca.info.not_after)
    }
}

fn after(t: OffsetDateTime, d: Duration, forward: bool) -> Option<OffsetDateTime> {
    let d = time::Duration::try_from(d).ok()?;
    if forward {
        t.checked_add(d)
    } else {
        t.checked_sub(d)
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// A Go duration for messages: `720h`, `90m`, `45s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A new ECDSA P-256 key.
pub fn generate_key() -> Result<KeyPair, rcgen::Error> {
    KeyPair::generate()
}

/// An existing PKCS#8 PEM private key (ECDSA P-256/P-384, Ed25519 or RSA).
pub fn parse_key(pem: &str) -> Result<KeyPair, String> {
    for (label, format) in [("EC PRIVATE KEY", "SEC1"), ("RSA PRIVATE KEY", "PKCS#1")] {
        if pem.contains(&format!("-----BEGIN {label}-----")) {
            return Err(format!(
                "a {format} key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"
            ));
        }
    }
    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
        return Err("not a PEM \"PRIVATE KEY\" (PKCS#8)".into());
    }
    KeyPair::from_pem(pem).map_err(|e| format!("not a usable PKCS#8 private key: {e}"))
}

/// The raw key of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
pub fn parse_public_key(pem: &str) -> Result<Vec<u8>, String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
    if block.label != "PUBLIC KEY" {
        return Err(format!(
            "a PEM {:?}, not a \"PUBLIC KEY\" (SubjectPublicKeyInfo)",
            block.label
        ));
    }
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&block.contents)
        .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
    Ok(spki.subject_public_key.data.to_vec())
}

/// Reads the first certificate of a PEM file.
pub fn inspect(pem: &str) -> Result<CertInfo, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if block.label != "CERTIFICATE" {
        return Err(format!("a PEM {:?}, not a CERTIFICATE", block.label));
    }
    let cert = block
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut sans = BTreeSet::new();
    let san_ext = cert
        .subject_alternative_name()
        .map_err(|e| format!("its subjectAltName: {e}"))?;
    for name in san_ext.iter().flat_map(|e| &e.value.general_names) {
        sans.insert(match name {
            GeneralName::DNSName(d) => San::Dns(d.to_ascii_lowercase()).to_string(),
            GeneralName::IPAddress(b) => match ip_from_octets(b) {
                Some(ip) => San::Ip(ip).to_string(),
                None => format!("IP:{b:02x?}"),
            },
            other => format!("{other}"),
        });
    }
    let eku = cert
        .extended_key_usage()
        .map_err(|e| format!("its extendedKeyUsage: {e}"))?
        .map(|e| e.value);
    let subject = cert.subject();
    Ok(CertInfo {
        der: block.contents.clone(),
        subject: subject.to_string(),
        subject_raw: subject.as_raw().to_vec(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        common_name: subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(String::from),
        organizations: subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok().map(String::from))
            .collect(),
        sans,
        client_auth: eku.is_some_and(|e| e.client_auth || e.any),
        server_auth: eku.is_some_and(|e| e.server_auth || e.any),
        is_ca: cert.is_ca(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
    })
}

fn ip_from_octets(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(<[u8; 4]>::try_from(b).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(b).ok()?.into()),
        _ => None,
    }
}

impl CertInfo {
    /// Whether `ca` issued this certificate: the issuer name is the CA's
    /// subject and the signature verifies with the CA's key.
    pub fn signed_by(&self, ca: &CertInfo) -> bool {
        if self.issuer_raw != ca.subject_raw {
            return false;
        }
        let (Ok((_, cert)), Ok((_, ca))) = (
            x509_parser::parse_x509_certificate(&self.der),
            x509_parser::parse_x509_certificate(&ca.der),
        ) else {
            return false;
        };
        cert.verify_signature(Some(ca.public_key())).is_ok()
    }
}

impl Ca {
    /// A new self-signed CA with a new key: (the CA, its key's PEM).
    pub fn generate(spec: &CaSpec, validity: &Validity) -> Result<(Ca, String), rcgen::Error> {
        let key = generate_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = validity.not_before();
        params.not_after = after(validity.now, validity.ca, true).ok_or(rcgen::Error::Time)?;
        let cert_pem = params.self_signed(&key)?.pem();
        let key_pem = key.serialize_pem();
        let info = inspect(&cert_pem).map_err(rcgen::Error::X509)?;
        let ca = Ca::from_parts(cert_pem, info, key, "the new key").map_err(rcgen::Error::X509)?;
        Ok((ca, key_pem))
    }

    /// An existing CA: its certificate must be a CA's and `key` its key.
    /// The issuer of what it signs is taken from the certificate itself
    /// (subject bytes, key identifier), so a CA made by openssl works too.
    /// `key_file` names the key in the reason of an error.
    pub fn from_parts(
        cert_pem: String,
        info: CertInfo,
        key: KeyPair,
        key_file: &str,
    ) -> Result<Ca, String> {
        if !info.is_ca {
            return Err("not a CA certificate (no basicConstraints CA:TRUE)".into());
        }
        if key.public_key_raw() != info.public_key.as_slice() {
            return Err(format!(
                "{key_file} holds another key than this certificate's"
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&info.der.clone().into(), key)
            .map_err(|e| format!("cannot sign with it: {e}"))?;
        Ok(Ca {
            cert_pem,
            info,
            issuer,
        })
    }

    /// Signs `spec` for `key`: the certificate's PEM.
    pub fn issue(
        &self,
        spec: &CertSpec,
        key: &KeyPair,
        validity: &Validity,
    ) -> Result<String, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        // Go's order (kubeadm's certificates): O before CN.
        if let Some(org) = &spec.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org.as_str());
        }
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        params.subject_alt_names = spec
            .sans
            .iter()
            .map(|san| match san {
                San::Dns(name) => Ok(SanType::DnsName(name.as_str().try_into()?)),
                San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        // As kubeadm: keyEncipherment only for RSA keys.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if key.is_compatible(&rcgen::PKCS_RSA_SHA256) {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        if spec.usage.server() {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.usage.client() {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = validity.not_before();
        params.not_after = validity.leaf_not_after(self);
        Ok(params.signed_by(key, &self.issuer)?.pem())
    }
}

/// Why an existing certificate must be issued again, or None to keep it.
/// `key_file` and `ca_file` name the files in the reasons.
pub fn renewal_reason(
    cert: &CertInfo,
    spec: &CertSpec,
    key: &KeyPair,
    ca: &Ca,
    validity: &Validity,
    key_file: &str,
    ca_file: &str,
) -> Option<String> {
    if key.public_key_raw() != cert.public_key.as_slice() {
        return Some(format!("it is not the certificate of {key_file}"));
    }
    if !cert.signed_by(&ca.info) {
        return Some(format!("it is not signed by {ca_file}"));
    }
    let orgs: Vec<String> = spec.organization.iter().cloned().collect();
    if cert.common_name.as_deref() != Some(spec.common_name.as_str()) || cert.organizations != orgs
    {
        return Some(format!("its subject was {:?}", cert.subject));
    }
    let want: BTreeSet<String> = spec.sans.iter().map(ToString::to_string).collect();
    if cert.sans != want {
        let added: Vec<&str> = want.difference(&cert.sans).map(String::as_str).collect();
        let removed: Vec<&str> = cert.sans.difference(&want).map(String::as_str).collect();
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("added {}", added.join(", ")));
        }
        if !removed.is_empty() {
            parts.push(format!("removed {}", removed.join(", ")));
        }
        return Some(format!("SANs changed: {}", parts.join("; ")));
    }
    if cert.client_auth != spec.usage.client() || cert.server_auth != spec.usage.server() {
        return Some("its extended key usages changed".into());
    }
    if cert.is_ca {
        return Some("it is a CA certificate".into());
    }
    if !validity.due(cert.not_after) {
        return None;
    }
    // Re-signing only helps if the new certificate lasts longer: near the
    // end of its CA, the CA is what needs renewing.
    if validity.leaf_not_after(ca) <= cert.not_after {
        return None;
    }
    Some(if cert.not_after <= validity.now {
        format!("it expired at {}", rfc3339(cert.not_after))
    } else {
        format!(
            "it expires at {}, within {}",
            rfc3339(cert.not_after),
            go_duration(validity.renew_before)
        )
    })
}

/// 16 random bytes, positive and minimally encoded.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Authority, Usage};

    const HOUR: Duration = Duration::from_secs(3600);

    fn validity(now: OffsetDateTime, leaf_hours: u32) -> Validity {
        Validity::new(now, leaf_hours * HOUR, 87600 * HOUR, 720 * HOUR)
    }

    fn ca(v: &Validity) -> Ca {
        let spec = CaSpec {
            authority: Authority::Cluster,
            stem: "ca",
            common_name: "kubernetes-ca",
        };
        Ca::generate(&spec, v).unwrap().0
    }

    fn node() -> CertSpec {
        CertSpec {
            stem: "worker-0".into(),
            ca: Authority::Cluster,
            common_name: "system:node:worker-0".into(),
            organization: Some("system:nodes".into()),
            sans: vec![San::Dns("worker-0".into()), San::Ip([10, 0, 0, 1].into())],
            usage: Usage::ClientAndServer,
        }
    }

    #[test]
    fn issues_what_the_spec_says() {
        let v = validity(OffsetDateTime::now_utc(), 8760);
        let ca = ca(&v);
        let key = generate_key().unwrap();
        let info = inspect(&ca.issue(&node(), &key, &v).unwrap()).unwrap();
        assert_eq!(info.subject, "O=system:nodes, CN=system:node:worker-0");
        assert_eq!(
            info.sans.iter().collect::<Vec<_>>(),
            ["DNS:worker-0", "IP:10.0.0.1"]
        );
        assert!(info.client_auth && info.server_auth && !info.is_ca);
        assert!(info.signed_by(&ca.info));
        assert!(!ca.info.signed_by(&info));
        assert_eq!(info.public_key, key.public_key_raw());
        assert_eq!((info.not_after - v.now).whole_hours(), 8760);
        assert_eq!((v.now - info.not_before).whole_minutes(), 5);
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        let v = Validity::new(
            OffsetDateTime::now_utc(),
            8760 * HOUR,
            24 * HOUR,
            720 * HOUR,
        );
        let ca = ca(&v);
        let key = generate_key().unwrap();
        let info = inspect(&ca.issue(&node(), &key, &v).unwrap()).unwrap();
        assert_eq!(info.not_after, ca.info.not_after);
        // Renewing would not make it last longer: kept.
        let reason = renewal_reason(&info, &node(), &key, &ca, &v, "k", "ca.crt");
        assert_eq!(reason, None);
    }

    #[test]
    fn renewal_reasons() {
        let now = OffsetDateTime::now_utc();
        let v = validity(now, 8760);
        let ca = ca(&v);
        let other_ca = self::ca(&v);
        let key = generate_key().unwrap();
        let other_key = generate_key().unwrap();
        let issued = |spec: &CertSpec, ca: &Ca, v: &Validity| {
            inspect(&ca.issue(spec, &key, v).unwrap()).unwrap()
        };
        let mut renamed = node();
        renamed.common_name = "system:node:other".into();
        let mut more_sans = node();
        more_sans.sans.push(San::Ip([10, 0, 0, 2].into()));
        let mut client_only = node();
        client_only.usage = Usage::Client;
        let later = validity(now + time::Duration::days(340), 8760);
        let cases: [(&str, CertInfo, &KeyPair, &Validity, Option<&str>); 8] = [
            ("fits", issued(&node(), &ca, &v), &key, &v, None),
            (
                "other key",
                issued(&node(), &ca, &v),
                &other_key,
                &v,
                Some("not the certificate of k"),
            ),
            (
                "other CA",
                issued(&node(), &other_ca, &v),
                &key,
                &v,
                Some("not signed by ca.crt"),
            ),
            (
                "subject",
                issued(&renamed, &ca, &v),
                &key,
                &v,
                Some("subject was"),
            ),
            (
                "SAN removed",
                issued(&more_sans, &ca, &v),
                &key,
                &v,
                Some("SANs changed: removed IP:10.0.0.2"),
            ),
            (
                "usages",
                issued(&client_only, &ca, &v),
                &key,
                &v,
                Some("extended key usages"),
            ),
            (
                "within renew-before",
                issued(&node(), &ca, &v),
                &key,
                &later,
                Some("within 720h"),
            ),
            (
                "expired",
                issued(&node(), &ca, &validity(now, 1)),
                &key,
                &later,
                Some("it expired at"),
            ),
        ];
        for (name, cert, key, v, want) in cases {
            let got = renewal_reason(&cert, &node(), key, &ca, v, "k", "ca.crt");
            match (want, &got) {
                (None, None) => {}
                (Some(want), Some(got)) if got.contains(want) => {}
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let mut fewer = node();
        fewer.sans.pop();
        let got = renewal_reason(&issued(&fewer, &ca, &v), &node(), &key, &ca, &v, "k", "c");
        assert_eq!(got.as_deref(), Some("SANs changed: added IP:10.0.0.1"));
    }

    #[test]
    fn keys() {
        let key = generate_key().unwrap();
        let again = parse_key(&key.serialize_pem()).unwrap();
        assert_eq!(again.public_key_raw(), key.public_key_raw());
        assert_eq!(
            parse_public_key(&key.public_key_pem()).unwrap(),
            key.public_key_raw()
        );
        let cases = [
            ("garbage", "hello", "PKCS#8"),
            (
                "sec1",
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                "SEC1",
            ),
            (
                "bad pkcs8",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not a usable",
            ),
        ];
        for (name, pem, want) in cases {
            let err = parse_key(pem).unwrap_err();
            assert!(err.contains(want), "{name}: {err}");
        }
        assert!(parse_public_key(&key.serialize_pem()).is_err());
        assert!(
            inspect(&key.serialize_pem())
                .unwrap_err()
                .contains("not a CERTIFICATE")
        );
    }

    #[test]
    fn go_durations() {
        for (d, want) in [
            (720 * HOUR, "720h"),
            (HOUR / 2, "30m"),
            (Duration::from_secs(7), "7s"),
        ] {
            assert_eq!(go_duration(d), want);
        }
    }
}
