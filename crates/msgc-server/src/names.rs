//! The names clients give the bus (groups, client names) and the checks that
//! refuse bad ones. Private names (`#<client>#<server>`) are made by
//! `msgc-core` when a session opens.

/// Longest group name, in bytes.
pub const MAX_GROUP_LEN: usize = 64;
/// Longest client name (the `<client>` of a private name), in bytes.
pub const MAX_CLIENT_NAME_LEN: usize = 32;

/// Why a name was refused; the text is sent to the client as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, too long, or holding whitespace or control bytes.
    #[error("bad group name {0:?}: a group name is 1-64 printable bytes with no whitespace")]
    Group(String),
    /// Not 1-32 bytes of `[A-Za-z0-9._-]`.
    #[error(
        "bad client name {0:?}: a client name is 1-32 bytes of letters, digits, '.', '_' or '-'"
    )]
    Client(String),
}

/// Checks a group name: 1-64 printable ASCII bytes, no whitespace.
pub fn check_group(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_GROUP_LEN
        && name.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(NameError::Group(name.to_owned()))
    }
}

/// Checks a client name: 1-32 bytes of `[A-Za-z0-9._-]`.
pub fn check_client(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CLIENT_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NameError::Client(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        assert!(check_group("ec_cluster").is_ok());
        assert!(check_group(&"g".repeat(64)).is_ok());
        for bad in ["", "has space", "tab\t", "nl\n", "é", &"g".repeat(65)] {
            assert!(check_group(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_names() {
        assert!(check_client("ec0-20768").is_ok());
        assert!(check_client("a#b").is_err());
        assert!(check_client("").is_err());
        assert!(check_client(&"c".repeat(33)).is_err());
    }
}
