//! The name embossed on a card: at most 26 characters (the embossing line of ISO/IEC
//! 7811 cards), upper case A-Z, space, apostrophe, hyphen and period, without accents.
//!
//! A name too long is shortened the way card bureaus shorten it, never cut mid-word:
//! the first and the last names stay whole; middle names become initials, from the
//! last middle name back (a particle such as DA, DE, DO, DAS, DOS or E before an
//! abbreviated name goes with it); if that is still too long the initials go, from the
//! last one back; then the first name becomes its initial; only a single name longer
//! than the line is cut.

/// The embossing line's length.
pub const EMBOSS_MAX: usize = 26;

const PARTICLES: [&str; 7] = ["DA", "DE", "DO", "DAS", "DOS", "E", "D'"];

/// Upper case without Portuguese diacritics, keeping letters, digits-free: letters,
/// spaces, apostrophes, hyphens and periods; whitespace collapsed.
fn plain(name: &str) -> String {
    let folded: String = name
        .chars()
        .flat_map(char::to_uppercase)
        .map(|c| match c {
            'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'A',
            'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
            'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'O',
            'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
            'Ç' => 'C',
            'Ñ' => 'N',
            '’' | '`' | '´' => '\'',
            other => other,
        })
        .filter(|c| c.is_ascii_uppercase() || matches!(c, ' ' | '\'' | '-' | '.'))
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone)]
struct Word {
    text: String,
    particle: bool,
    initial: bool,
    dropped: bool,
}

fn joined(words: &[Word]) -> String {
    words
        .iter()
        .filter(|w| !w.dropped)
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn initial(w: &mut Word) {
    w.text = w.text.chars().take(1).collect();
    w.initial = true;
}

/// The embossed form of `name` (see the module documentation).
pub fn embossed_name(name: &str) -> String {
    let text = plain(name);
    if text.len() <= EMBOSS_MAX {
        return text;
    }
    let mut words: Vec<Word> = text
        .split(' ')
        .map(|w| Word {
            text: w.to_owned(),
            particle: PARTICLES.contains(&w),
            initial: false,
            dropped: false,
        })
        .collect();
    let n = words.len();
    if n >= 3 {
        // Middle names to initials, last first; the particle before one goes too.
        for i in (1..n - 1).rev() {
            if joined(&words).len() <= EMBOSS_MAX {
                break;
            }
            if words[i].particle {
                continue;
            }
            initial(&mut words[i]);
            if i >= 2 && words[i - 1].particle {
                words[i - 1].dropped = true;
            }
        }
        // Then the initials and remaining particles go, last first.
        for i in (1..n - 1).rev() {
            if joined(&words).len() <= EMBOSS_MAX {
                break;
            }
            words[i].dropped = true;
        }
    }
    if joined(&words).len() > EMBOSS_MAX && n >= 2 {
        initial(&mut words[0]);
    }
    let mut out = joined(&words);
    if out.len() > EMBOSS_MAX {
        out.truncate(EMBOSS_MAX);
        out = out.trim_end().to_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bureau_style_shortening() {
        assert_eq!(embossed_name("José da Silva"), "JOSE DA SILVA");
        assert_eq!(embossed_name("  Ana   D'Ávila "), "ANA D'AVILA");
        assert_eq!(embossed_name("João O’Neil-Brás"), "JOAO O'NEIL-BRAS");
        // 28 characters: the middle name becomes an initial; the particle before the
        // last name stays.
        assert_eq!(
            embossed_name("Maria Aparecida da Conceição"),
            "MARIA A DA CONCEICAO"
        );
        assert_eq!(
            embossed_name("Maria Aparecida dos Santos da Conceição Oliveira"),
            "MARIA A S C OLIVEIRA"
        );
        assert_eq!(
            embossed_name("Pedro de Alcântara Francisco Antônio João Carlos Xavier de Paula"),
            "PEDRO A F A J C X DE PAULA"
        );
        assert_eq!(
            embossed_name("Maximiliano Bartolomeu Constantinopolitano"),
            "M CONSTANTINOPOLITANO"
        );
        assert_eq!(embossed_name(&"A".repeat(40)), "A".repeat(26));
        for name in [
            "Maria Aparecida da Conceição",
            "Pedro de Alcântara Francisco Antônio João Carlos Xavier de Paula",
            "X",
            "",
        ] {
            let e = embossed_name(name);
            assert!(e.len() <= EMBOSS_MAX, "{e}");
            assert!(!e.contains("  "));
        }
    }
}
