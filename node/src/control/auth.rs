//! Bearer-token authentication of TCP control clients: metadata `authorization: Bearer <token>`,
//! compared in constant time. Calls without the right token get `UNAUTHENTICATED` and are logged.

use tonic::{Request, Status};

/// A tonic interceptor checking the bearer token (no token configured: everything passes).
#[derive(Clone)]
pub struct BearerAuth {
    expected: Option<Vec<u8>>,
}

impl BearerAuth {
    pub fn new(token: Option<String>) -> Self {
        BearerAuth { expected: token.map(|t| format!("Bearer {t}").into_bytes()) }
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let given = request.metadata().get("authorization").map(|v| v.as_bytes()).unwrap_or(b"");
        if constant_time_eq(given, expected) {
            return Ok(request);
        }
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
        let why = if given.is_empty() { "no token" } else { "wrong token" };
        tracing::warn!(peer = %peer, reason = why, "unauthenticated control call refused");
        Err(Status::unauthenticated(format!("{why}: send `authorization: Bearer <token>`")))
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    fn with_header(v: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(v) = v {
            r.metadata_mut().insert("authorization", v.parse().expect("ascii"));
        }
        r
    }

    #[test]
    fn only_the_right_token_passes() {
        let mut auth = BearerAuth::new(Some("s3cret".into()));
        assert!(auth.call(with_header(Some("Bearer s3cret"))).is_ok());
        assert_eq!(
            auth.call(with_header(Some("Bearer s3cre"))).err().map(|s| s.code()),
            Some(tonic::Code::Unauthenticated)
        );
        assert_eq!(auth.call(with_header(None)).err().map(|s| s.code()), Some(tonic::Code::Unauthenticated));
        let mut open = BearerAuth::new(None);
        assert!(open.call(with_header(None)).is_ok());
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
