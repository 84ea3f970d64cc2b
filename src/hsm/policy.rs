//! The role policy: client identity (certificate Common Name) -> role -> the operations
//! and key ids it may use. Loaded from TOML; see protocol/README.md, "Roles".

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::protocol::Opcode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    clients: HashMap<String, String>,
    #[serde(default)]
    roles: HashMap<String, RoleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    operations: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
}

/// One role.
#[derive(Debug, Clone)]
pub struct Role {
    /// Its name.
    pub name: String,
    operations: Vec<String>,
    keys: Vec<String>,
}

fn matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

impl Role {
    /// Whether the role may perform the operation.
    pub fn allows_operation(&self, op: Opcode) -> bool {
        self.operations.iter().any(|p| matches(p, op.name()))
    }

    /// Whether the role may use the key id.
    pub fn allows_key(&self, id: &str) -> bool {
        self.keys.iter().any(|p| matches(p, id))
    }
}

/// The loaded policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    clients: HashMap<String, std::sync::Arc<Role>>,
}

impl Policy {
    /// Parses policy text. Every client must name a defined role; every operation
    /// pattern must match at least one operation (a typo would otherwise silently
    /// grant nothing).
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for (name, role) in &file.roles {
            for p in &role.operations {
                if !Opcode::ALL.iter().any(|op| matches(p, op.name())) {
                    return Err(format!("role {name}: operation {p:?} matches no operation"));
                }
            }
        }
        let mut clients = HashMap::new();
        for (identity, role_name) in file.clients {
            let role = file
                .roles
                .get(&role_name)
                .ok_or_else(|| format!("client {identity:?} names undefined role {role_name:?}"))?;
            clients.insert(
                identity,
                std::sync::Arc::new(Role {
                    name: role_name.clone(),
                    operations: role.operations.clone(),
                    keys: role.keys.clone(),
                }),
            );
        }
        Ok(Self { clients })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The role of an identity, if it has one (shared: cloning it is cheap).
    pub fn role(&self, identity: &str) -> Option<&std::sync::Arc<Role>> {
        self.clients.get(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_policy() {
        let text = include_str!("../../keys-example/policy.toml");
        let p = Policy::parse(text).unwrap();
        let atm = p.role("atm-switch-1").unwrap();
        assert!(atm.allows_operation(Opcode::PinVerify));
        assert!(!atm.allows_operation(Opcode::CvvGenerate));
        assert!(atm.allows_key("zpk.example"));
        assert!(!atm.allows_key("cvk.example"));
        assert!(p.role("no-role-1").is_none());
        let so = p.role("security-officer-1").unwrap();
        assert!(so.allows_operation(Opcode::KeyRotate));
        assert!(!so.allows_operation(Opcode::PinVerify));
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Policy::parse("[clients]\na = \"nope\"").is_err());
        assert!(Policy::parse("[roles.r]\noperations = [\"pin.verfy\"]").is_err());
        assert!(Policy::parse("surprise = 1").is_err());
    }
}
