//! tmp
#![allow(missing_docs)]
use std::borrow::Cow;
pub const REDACTED: &str = "REDACTED";
#[derive(Debug, Clone, Default)]
pub struct Redactor;
impl Redactor {
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        name.contains("card")
    }
    pub fn mask_pan<'a>(&self, s: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(s)
    }
}
