//! The embosser file for the card bureau (protocol/embosser-file.md): its lines, which
//! hold no clear value, and the atomic write into the bureau directory.

use std::path::Path;

use super::MassIssue;
use crate::api::config::Product;
use crate::api::issuing::number;

/// What one card puts in the embosser file (no clear value).
#[derive(Debug, Clone)]
pub struct Line {
    /// Position in the batch.
    pub sequence: i64,
    /// Masked PAN.
    pub masked_pan: String,
    /// The PAN under the bureau's transport key, hex.
    pub encrypted_pan: String,
    /// `CVV=..;CVV2=..;ICVV=..;PIN=..` under the bureau's transport key, hex.
    pub encrypted_codes: String,
}

/// A field safe inside the `|`-separated format: printable ASCII without `|`.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '|' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The embosser file (protocol/embosser-file.md): header, one `D` line per card,
/// trailer with the count.
pub fn render(
    job: &MassIssue,
    product: &Product,
    transport_key: &str,
    expiry: &str,
    service_code: &str,
    lines: &[Line],
) -> String {
    let product_code = product.name.as_deref().map_or_else(
        || format!("{}-{}", product.organization, product.logo),
        field,
    );
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut out = String::with_capacity(64 + lines.len() * 160);
    out.push_str(&format!(
        "H|COFRE-EMBOSSER|1|{}|{}|{}|{}|{}|{created}|{}|{}\n",
        number(job.id),
        job.organization,
        job.logo,
        job.card_type,
        product_code,
        field(transport_key),
        lines.len(),
    ));
    for l in lines {
        out.push_str(&format!(
            "D|{:06}|{product_code}|{}|{expiry}|{service_code}|{}|{}\n",
            l.sequence, l.masked_pan, l.encrypted_pan, l.encrypted_codes
        ));
    }
    out.push_str(&format!("T|{:06}\n", lines.len()));
    out
}

/// Writes `dir/name` whole or not at all: a hidden temporary file, synced, renamed.
pub fn write_atomically(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
