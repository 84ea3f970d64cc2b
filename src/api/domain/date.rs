//! Calendar dates (`YYYY-MM-DD`, ISO 8601), checked against the calendar by the `time`
//! crate: 2023-02-29 and 2024-02-30 do not exist and are refused. The only date type of
//! the facade; today is always a parameter.

use std::fmt;

use super::Invalid;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(time::Date);

impl Date {
    /// Parses `YYYY-MM-DD` (years 1900-2199: record dates, not history).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = Invalid("a date is YYYY-MM-DD and exists in the calendar");
        let b = text.as_bytes();
        if b.len() != 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !b
                .iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        {
            return Err(bad);
        }
        let y: i32 = text[0..4].parse().map_err(|_| bad.clone())?;
        let m: u8 = text[5..7].parse().map_err(|_| bad.clone())?;
        let d: u8 = text[8..10].parse().map_err(|_| bad.clone())?;
        if !(1900..=2199).contains(&y) {
            return Err(bad);
        }
        Self::from_ymd(y, m, d).ok_or(bad)
    }

    /// A date from its parts, if it exists.
    pub fn from_ymd(year: i32, month: u8, day: u8) -> Option<Self> {
        let month = time::Month::try_from(month).ok()?;
        time::Date::from_calendar_date(year, month, day)
            .ok()
            .map(Self)
    }

    /// The UTC date of a Unix time in milliseconds.
    pub fn from_unix_ms(ms: i64) -> Self {
        let days = ms.div_euclid(86_400_000);
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1)
            .unwrap_or(time::Date::MIN);
        Self(
            epoch
                .checked_add(time::Duration::days(days))
                .unwrap_or(time::Date::MAX),
        )
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1)
            .unwrap_or(time::Date::MIN);
        (self.0 - epoch).whole_days()
    }

    /// The date `days` later (earlier if negative), saturating at the calendar's ends.
    pub fn plus_days(self, days: i64) -> Self {
        Self(
            self.0
                .checked_add(time::Duration::days(days))
                .unwrap_or(if days < 0 {
                    time::Date::MIN
                } else {
                    time::Date::MAX
                }),
        )
    }

    /// Year.
    pub fn year(self) -> i32 {
        self.0.year()
    }

    /// Month, 1-12.
    pub fn month(self) -> u8 {
        u8::from(self.0.month())
    }

    /// Day of the month.
    pub fn day(self) -> u8 {
        self.0.day()
    }

    /// The last day of this date's month.
    pub fn end_of_month(self) -> Self {
        let last = self.0.month().length(self.0.year());
        Self::from_ymd(self.year(), self.month(), last).unwrap_or(self)
    }

    /// A card expiry `YYMM` as the last day of its month (`None`: not a month).
    pub fn from_expiry(yymm: &str) -> Option<Self> {
        if yymm.len() != 4 || !yymm.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let y: i32 = 2000 + yymm[..2].parse::<i32>().ok()?;
        let m: u8 = yymm[2..].parse().ok()?;
        Some(Self::from_ymd(y, m, 1)?.end_of_month())
    }

    /// This date's month as a card expiry `YYMM`.
    pub fn expiry(self) -> String {
        format!("{:02}{:02}", self.year().rem_euclid(100), self.month())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.year(),
            self.month(),
            self.day()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_checked() {
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2023-02-31",
            "2024-02-30",
            "2023-13-01",
            "2023-00-10",
            "23-01-01",
            "2023-1-01",
            "２023-01-01",
            "",
            "2023-04-31",
            "1899-12-31",
            "+023-01-01",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        let d = Date::parse("2026-11-29").unwrap();
        assert_eq!(Date::from_unix_ms(d.days_since_epoch() * 86_400_000 + 5), d);
        assert_eq!(Date::from_unix_ms(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_expiry("2802").unwrap().to_string(), "2028-02-29");
        assert_eq!(Date::from_expiry("2702").unwrap().to_string(), "2027-02-28");
        assert!(Date::from_expiry("2713").is_none() && Date::from_expiry("27a1").is_none());
        assert_eq!(d.plus_days(2).to_string(), "2026-12-01");
        assert_eq!(d.expiry(), "2611");
    }
}
