//! RFC 3339 timestamps to [`UnixTime`] (for `--now`), without a date library.

use crate::error::{Error, Result};
use crate::UnixTime;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str, what: &'static str) -> Result<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::malformed("RFC 3339 time", format!("bad {what}")));
    }
    s.parse()
        .map_err(|_| Error::malformed("RFC 3339 time", format!("bad {what}")))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`; fractions are dropped.
pub fn parse_rfc3339(s: &str) -> Result<UnixTime> {
    let bad = |r: &str| Error::malformed("RFC 3339 time", r.to_string());
    let (date, rest) = s
        .split_once(['T', 't', ' '])
        .ok_or_else(|| bad("no 'T' between date and time"))?;
    let mut d = date.split('-');
    let (Some(y), Some(mo), Some(da), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad("date is not YYYY-MM-DD"));
    };
    let (y, mo, da) = (num(y, "year")?, num(mo, "month")?, num(da, "day")?);
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let pos = rest
            .rfind(['+', '-'])
            .ok_or_else(|| bad("no time zone (Z or +HH:MM)"))?;
        let (c, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off
            .get(1..)
            .and_then(|o| o.split_once(':'))
            .ok_or_else(|| bad("offset is not +HH:MM"))?;
        let (oh, om) = (num(oh, "offset hour")?, num(om, "offset minute")?);
        if oh > 23 || om > 59 {
            return Err(bad("offset out of range"));
        }
        (c, sign * (oh * 3600 + om * 60))
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let mut c = clock.split(':');
    let (Some(h), Some(mi), Some(se), None) = (c.next(), c.next(), c.next(), c.next()) else {
        return Err(bad("time is not HH:MM:SS"));
    };
    let (h, mi, se) = (num(h, "hour")?, num(mi, "minute")?, num(se, "second")?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = usize::try_from(mo - 1)
        .ok()
        .and_then(|i| mdays.get(i))
        .copied()
        .ok_or_else(|| bad("month out of range"))?;
    if da < 1 || da > max_day || h > 23 || mi > 59 || se > 60 {
        return Err(bad("field out of range"));
    }
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
    Ok(UnixTime::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap().secs(), 0);
        assert_eq!(
            parse_rfc3339("2025-06-19T11:16:03Z").unwrap().secs(),
            1_750_331_763
        );
        assert_eq!(
            parse_rfc3339("2025-06-19T13:16:03.123+02:00")
                .unwrap()
                .secs(),
            1_750_331_763
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z").unwrap().secs(),
            951_782_400
        );
        for bad in [
            "2025-06-19",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-06-19T24:00:00Z",
            "2025-06-19T10:00:00",
            "x025-06-19T10:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
