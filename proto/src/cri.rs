//! The CRI v1 API (`runtime.v1`), generated from the vendored api.proto
//! (see cri/README.md): messages, and gRPC clients of `RuntimeService`
//! and `ImageService`.

#[allow(clippy::all, missing_docs)]
pub mod runtime {
    pub mod v1 {
        tonic::include_proto!("runtime.v1");
    }
}

pub use runtime::v1;

#[cfg(test)]
mod tests {
    use super::v1;
    use prost::Message;

    #[test]
    fn messages_have_the_wire_numbers_of_cri_api() {
        // VersionRequest.version is field 1; a string is length-delimited.
        let bytes = v1::VersionRequest {
            version: "v1".into(),
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x0a, 2, b'v', b'1']);
        // PodSandboxMetadata: name 1, uid 2, namespace 3, attempt 4.
        let meta = v1::PodSandboxMetadata {
            name: "p".into(),
            uid: "u".into(),
            namespace: "n".into(),
            attempt: 3,
        };
        assert_eq!(
            meta.encode_to_vec(),
            [0x0a, 1, b'p', 0x12, 1, b'u', 0x1a, 1, b'n', 0x20, 3]
        );
        let back = v1::PodSandboxMetadata::decode(&meta.encode_to_vec()[..]).unwrap();
        assert_eq!(back, meta);
    }
}
