//! The billing cycle of an account (`GET /{idPortador}/ciclo` and the views' `ciclo`):
//! a pure function of the due day and today.
//!
//! The invoice is due on `diaVencimento` (1-28) and closes [`CLOSING_DAYS`] days
//! before. `dataFechamentoProxFatura` is the first closing date on or after today;
//! `diaCorte` its day of the month; `melhorDiaCompra` the day after it (a purchase
//! from then on falls in the following invoice: with a closing on the 30th of
//! November it is the 1st); `corteUltimoDiaMes` is `S` when the closing date is always
//! the last day of a month (due day 10), else `N`.

use serde_json::{Value, json};

use crate::api::domain::Date;

/// Days between an invoice's closing and its due date.
pub const CLOSING_DAYS: i64 = 10;

/// One account's cycle, as of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciclo {
    /// The due day of the month.
    pub due_day: u8,
    /// The next closing date (today or later).
    pub next_close: Date,
    /// The due date of the invoice it closes.
    pub next_due: Date,
}

fn due_in(year: i32, month: u8, day: u8) -> Date {
    Date::from_ymd(year, month, day).unwrap_or_else(|| {
        Date::from_ymd(year, month, 1).map_or(Date::from_unix_ms(0), Date::end_of_month)
    })
}

impl Ciclo {
    /// The cycle of due day `due_day` (clamped to 1-28) as of `today`.
    pub fn of(due_day: i64, today: Date) -> Self {
        let day = u8::try_from(due_day.clamp(1, 28)).unwrap_or(10);
        let (mut y, mut m) = (today.year(), today.month());
        loop {
            let due = due_in(y, m, day);
            let close = due.plus_days(-CLOSING_DAYS);
            if close >= today {
                return Self {
                    due_day: day,
                    next_close: close,
                    next_due: due,
                };
            }
            if m == 12 {
                (y, m) = (y + 1, 1);
            } else {
                m += 1;
            }
        }
    }

    /// The day after the closing.
    pub fn best_purchase_day(&self) -> u8 {
        self.next_close.plus_days(1).day()
    }

    /// Whether closings fall on the last day of the month.
    pub fn closes_last_day(&self) -> bool {
        i64::from(self.due_day) == CLOSING_DAYS
    }

    /// The document's `ciclo` object for account `id`.
    pub fn json(&self, id: i64) -> Value {
        json!({
            "id": id,
            "diaCorte": self.next_close.day(),
            "diaVencimento": self.due_day,
            "descricao": format!("Vencimento dia {}, corte {} dias antes", self.due_day, CLOSING_DAYS),
            "ativo": "S",
            "corteUltimoDiaMes": if self.closes_last_day() { "S" } else { "N" },
            "diasCarencia": 0,
            "descricaoContaBancariaCicloAtual": "Sem débito automático em conta",
            "descricaoContaBancariaProximoCiclo": "Sem débito automático em conta",
            "melhorDiaCompra": self.best_purchase_day(),
            "dataFechamentoProxFatura": self.next_close.to_string(),
            "dataVencimentoProxFatura": self.next_due.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn closing_and_best_day() {
        // Due on the 10th: closes on the last day of the month before.
        let c = Ciclo::of(10, d("2026-11-15"));
        assert_eq!(c.next_due, d("2026-12-10"));
        assert_eq!(c.next_close, d("2026-11-30"));
        assert_eq!(c.best_purchase_day(), 1);
        assert!(c.closes_last_day());
        let c = Ciclo::of(10, d("2027-02-03"));
        assert_eq!(c.next_close, d("2027-02-28"));
        assert_eq!(c.best_purchase_day(), 1);
        // Due on the 5th: closes 10 days before, in the month before.
        let c = Ciclo::of(5, d("2026-12-27"));
        assert_eq!(c.next_close, d("2027-01-26"));
        let c = Ciclo::of(5, d("2026-12-25"));
        assert_eq!(c.next_close, d("2026-12-26"));
        assert_eq!(c.best_purchase_day(), 27);
        assert!(!c.closes_last_day());
        // Due on the 28th: closes on the 18th of the same month; today is a closing day.
        let c = Ciclo::of(28, d("2026-03-18"));
        assert_eq!(c.next_close, d("2026-03-18"));
        assert_eq!(c.best_purchase_day(), 19);
        let c = Ciclo::of(28, d("2026-03-19"));
        assert_eq!(c.next_close, d("2026-04-18"));
        assert_eq!(c.json(7)["corteUltimoDiaMes"], "N");
    }
}
