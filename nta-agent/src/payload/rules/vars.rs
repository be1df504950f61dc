//! Rule variables (`$HOME_NET`, `$HTTP_PORTS`): Suricata's address and port
//! groups, with its defaults, overridden by the `[vars]` section.

use std::collections::HashMap;

/// Deepest chain of variables naming variables (`$EXTERNAL_NET` →
/// `$HOME_NET`): a cycle in the configuration stops here with an error.
const MAX_DEPTH: usize = 8;

/// Suricata's `suricata.yaml` address groups.
const ADDRESS_GROUPS: &[(&str, &str)] = &[
    ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
    ("EXTERNAL_NET", "!$HOME_NET"),
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
];

/// Suricata's `suricata.yaml` port groups.
const PORT_GROUPS: &[(&str, &str)] = &[
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
];

/// Variables by name (without the `$`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    values: HashMap<String, String>,
}

impl Default for Vars {
    /// Suricata's defaults.
    fn default() -> Self {
        let values = ADDRESS_GROUPS
            .iter()
            .chain(PORT_GROUPS)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Vars { values }
    }
}

impl Vars {
    /// Suricata's defaults with `overrides` (name → value) in place.
    pub fn with(overrides: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut vars = Vars::default();
        for (name, value) in overrides {
            vars.values
                .insert(name.trim_start_matches('$').to_owned(), value);
        }
        vars
    }

    /// `field` with every `$NAME` replaced by its value, recursively.
    pub fn expand(&self, field: &str) -> Result<String, String> {
        self.expand_at(field, 0)
    }

    fn expand_at(&self, field: &str, depth: usize) -> Result<String, String> {
        if !field.contains('$') {
            return Ok(field.to_owned());
        }
        if depth == MAX_DEPTH {
            return Err(format!(
                "variables nest more than {MAX_DEPTH} deep (a variable names itself?)"
            ));
        }
        let mut out = String::with_capacity(field.len());
        let mut rest = field;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let name_len = rest[at + 1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - at - 1);
            let name = &rest[at + 1..at + 1 + name_len];
            let value = self.values.get(name).ok_or_else(|| {
                format!("unknown variable `${name}` (define it under [vars] in the config)")
            })?;
            out.push_str(&self.expand_at(value, depth + 1)?);
            rest = &rest[at + 1 + name_len..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_expand_as_suricata_does() {
        let vars = Vars::default();
        assert_eq!(
            vars.expand("$EXTERNAL_NET").unwrap(),
            "![192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"
        );
        assert_eq!(vars.expand("[$HTTP_PORTS,8080]").unwrap(), "[80,8080]");
        assert_eq!(vars.expand("$FILE_DATA_PORTS").unwrap(), "[80,110,143]");
        assert_eq!(vars.expand("any").unwrap(), "any");
    }

    #[test]
    fn overrides_apply_and_unknown_or_cyclic_variables_are_named() {
        let vars = Vars::with([("HOME_NET".to_owned(), "198.18.0.0/15".to_owned())]);
        assert_eq!(vars.expand("!$HOME_NET").unwrap(), "!198.18.0.0/15");
        assert_eq!(vars.expand("$EXTERNAL_NET").unwrap(), "!198.18.0.0/15");
        let err = vars.expand("$NOPE").unwrap_err();
        assert!(err.contains("$NOPE"), "{err}");
        let cyclic = Vars::with([
            ("A".to_owned(), "$B".to_owned()),
            ("B".to_owned(), "$A".to_owned()),
        ]);
        assert!(cyclic.expand("$A").unwrap_err().contains("nest"));
    }
}
