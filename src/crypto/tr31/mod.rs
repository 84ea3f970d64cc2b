//! (being written)

/// Why a TR-31 key block was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tr31Error {
    /// The block's MAC does not verify under the given KBPK.
    #[error("key block MAC does not verify")]
    Mac,
}
